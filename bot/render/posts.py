"""What the app posts on a pull request, rendered from a reachability diff. Pure.

- ``render_comment``: the sticky issue comment (starts with ``MARKER``, which the shell
  uses to find and update it);
- ``render_check_output``: the ``reachdiff`` check run's title, summary, text and
  annotations; ``check_conclusion`` says whether it passes;
- ``render_line_comments``: one review comment per responsible rule, each with a stable
  hidden marker (``rule_marker``) so the shell never posts the same one twice;
- ``render_failure``: comment and check output when the input cannot be analyzed.

Size invariant: GitHub rejects a comment over 65,536 characters and a check summary or text
over 65,535. Every body here stays within its limit whatever the diff: rendering degrades
by collapsing sections into ``<details>``, then cutting lists with "and N more", then
summarizing and pointing to the check run and the JSON rendering, and as a last resort
truncates. Sizes are counted in UTF-16 code units, which is never less than characters
however GitHub counts them.

Why one module of 450 lines: every post (comment, check output, line comments,
failure) is fitted to GitHub's size limits the same way (``fit``), from the same context;
the views and rules it renders live in their own modules.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from analysis import markdown
from analysis.aggregate import (
    NO_POPULATIONS,
    Population,
    Populations,
    aggregate,
)
from analysis.diff import PathChange, ReachabilityDiff
from analysis.report import diff_to_json, json_text
from bot.render.blast import blast_of
from bot.render.declared import declared_annotations, declared_section, declared_title
from bot.render.fit import Level, fit, size, truncate
from bot.render.outputs import (
    CHECK_TEXT_LIMIT,
    CHECK_TITLE_LIMIT,
    COMMENT_LIMIT,
    EXPANDED_LIMIT,
    LABEL_LIMIT,
    MARKER,
    MAX_ANNOTATIONS,
    MESSAGE_LIMIT,
    PATHS_PER_RULE,
    PROBLEMS_SHOWN,
    RULE_MARKER,
    Annotation,
    CheckOutput,
    InputProblem,
    LineComment,
    ReviewContext,
)
from bot.render.owners_md import owner_variables, owners_of_paths
from bot.render.rules import graph_of, hit_plain, hit_title, rule_hits
from bot.render.templating import Md, render
from bot.render.views import (
    EndpointView,
    Lists,
    RowView,
    aggregated_row,
    blob_url,
    by_destination,
    commit_link,
    endpoint_label,
    explanation_md,
    safe_url,
)
from bot.review.breaks import breaks_conclusion, breaks_title
from bot.review.breaks import section as traffic_section
from bot.review.declared import declared_conclusion, declared_of
from bot.review.verdict import Assessment, Conclusion, Diff, assess, conclusion, verdict_text

# What the app, the plan and the tests import from here (defined in the modules above).
__all__ = [
    "CHECK_TEXT_LIMIT",
    "CHECK_TITLE_LIMIT",
    "COMMENT_LIMIT",
    "EXPANDED_LIMIT",
    "MARKER",
    "MAX_ANNOTATIONS",
    "Annotation",
    "CheckOutput",
    "InputProblem",
    "LineComment",
    "ReviewContext",
    "check_conclusion",
    "render_check_output",
    "render_comment",
    "render_diff_json",
    "render_failure",
    "render_line_comments",
    "rule_marker",
    "size",
    "verdict",
]


def verdict(diff: Diff, ctx: ReviewContext) -> str:
    """``widened: 2 paths opened, needs 1 approval from @alice`` and the like."""
    return verdict_text(
        assess(diff, ctx.settings),
        ctx.approval,
        required=ctx.settings.required_approvals,
        approvers=ctx.approvers_description,
    )


def check_conclusion(diff: Diff, ctx: ReviewContext) -> Conclusion:
    if _unevaluated(diff, ctx):
        return "failure"  # a change that could not be evaluated never passes silently
    # Declared communications and lint (docs/intents.md) can only make it stricter.
    return (
        declared_conclusion(diff, ctx.approval)
        or breaks_conclusion(diff, ctx.settings, ctx.approval)
        or conclusion(assess(diff, ctx.settings), ctx.approval)
    )


def verdict_fails(diff: Diff, ctx: ReviewContext) -> bool:
    """The gated paths alone fail the check (their title says so already)."""
    return conclusion(assess(diff, ctx.settings), ctx.approval) == "failure"


def _unevaluated(diff: Diff, ctx: ReviewContext) -> tuple[Any, ...]:
    """Changed policies selecting no workload in their tree (``DiffResult.unevaluated``),
    except in namespaces ``ignore_namespaces`` leaves out."""
    found = tuple(getattr(diff, "unevaluated", ()))
    return tuple(
        u for u in found if not (u.namespace and ctx.settings.namespace_ignored(u.namespace))
    )


def render_comment(diff: Diff, ctx: ReviewContext) -> str:
    a = assess(diff, ctx.settings)
    common = _common(a, ctx, _notes(diff), _unevaluated(diff, ctx))
    # The worker explains the first opened paths (``bot.inputs.analyze.DiffResult``).
    explained = getattr(diff, "explanations", ())
    why = {(src, dst): explanation_md(e) for src, dst, e in explained}
    lists = Lists(a, ctx, _populations(diff), why)
    graph = graph_of(a) if ctx.settings.diagram else None
    declared = declared_of(diff)
    section = declared_section(declared, ctx.approvers_description) if declared else ""
    section += traffic_section(diff, ctx.settings, ctx.flow_data)
    blast = blast_of(a)
    return fit(
        lambda lv: _with_section(
            render(
                "comment.md.j2",
                **common,
                **lists.at(lv),
                graph=None if lv.summary else graph,
                blast=blast,
            ),
            section,
        ),
        COMMENT_LIMIT,
        rows=lists.rows,
        expanded_limit=EXPANDED_LIMIT,
        can_summarize=True,
    )


def render_check_output(diff: Diff, ctx: ReviewContext) -> CheckOutput:
    a = assess(diff, ctx.settings)
    unevaluated = _unevaluated(diff, ctx)
    common = _common(a, ctx, _notes(diff), unevaluated)
    traffic = traffic_section(diff, ctx.settings, ctx.flow_data)
    summary = truncate(render("check_summary.md.j2", **common) + traffic, CHECK_TEXT_LIMIT)
    text = ""
    if a.opened or a.closed:
        lists = Lists(a, ctx, _populations(diff))
        # The check run's page is where the full lists are read: never collapsed.
        text = fit(
            lambda lv: render(
                "check_text.md.j2", **common, **lists.at(replace(lv, collapse=False))
            ),
            CHECK_TEXT_LIMIT,
            rows=lists.rows,
        )
    head_hits = [hit for hit in rule_hits(a) if hit.tree == "head"]
    annotations = tuple(
        Annotation(
            path=hit.file,
            start_line=hit.line,
            end_line=hit.line,
            annotation_level="warning",
            title=hit_title(hit),
            message=hit_plain(hit),
        )
        for hit in head_hits[:MAX_ANNOTATIONS]
    )
    annotations = (
        tuple(
            Annotation(
                path=u.file,
                start_line=u.line,
                end_line=u.line,
                annotation_level="failure",
                title="Change not evaluated",
                message=markdown.shorten(u.message, 4000),
            )
            for u in unevaluated
            if u.tree == "head" and u.line > 0
        )[:MAX_ANNOTATIONS]
        + annotations
    )
    declared = declared_of(diff)
    if declared is not None:
        notes = tuple(
            Annotation(p, n, n, level, m, t) for p, n, level, t, m in declared_annotations(declared)
        )
        annotations = notes + annotations
        summary = truncate(
            summary + "\n\n" + declared_section(declared, ctx.approvers_description),
            CHECK_TEXT_LIMIT,
        )
    annotations = annotations[:MAX_ANNOTATIONS]
    said = verdict(diff, ctx)
    if ctx.base_error:  # the check list shows titles only: say the comparison was partial
        said += " (the base cannot be read: head reviewed on its own)"
    title = markdown.shorten(said, CHECK_TITLE_LIMIT)
    approval = ctx.approval
    overridden = approval is not None and approval.override is not None and not approval.approved
    if declared is not None and declared_title(declared, overridden):
        title = str(declared_title(declared, overridden))
    elif breaks_conclusion(diff, ctx.settings, ctx.approval) and not verdict_fails(diff, ctx):
        title = breaks_title(diff) + "; " + title
    if unevaluated:
        n = len(unevaluated)
        policies = "policy selects" if n == 1 else "policies select"
        title = f"Not evaluated: {n} changed {policies} no workload in this tree"
    return CheckOutput(
        title=title[:1].upper() + title[1:], summary=summary, text=text, annotations=annotations
    )


def _with_section(comment: str, section: str) -> str:
    """The comment with the declared communications' section before its footer line."""
    if not section:
        return comment
    body, sep, footer = comment.rstrip("\n").rpartition("\n<sub>reachdiff")
    if not sep:
        return comment + "\n" + section
    return f"{body}\n\n{section}{sep}{footer}\n"


def _populations(diff: Diff) -> Populations:
    # Diffs that know how many workloads each namespace holds (every diff the CLI and the
    # bot make) let a report say "all 11 workloads of shop".
    if isinstance(diff, ReachabilityDiff):
        return Populations(
            Population.of_tree(diff.base.tree, None), Population.of_tree(diff.head.tree, None)
        )
    found = getattr(diff, "populations", None)
    return found if isinstance(found, Populations) else NO_POPULATIONS


def render_line_comments(
    diff: Diff, ctx: ReviewContext, *, can_comment: Callable[[str, int, str], bool] | None = None
) -> tuple[LineComment, ...]:
    """One comment per rule responsible for opening paths that need approval.

    ``can_comment(path, line, side)`` lets the shell keep only lines inside the pull
    request's diff (GitHub rejects others) before the ``max_line_comments`` cap applies.
    """
    out: list[LineComment] = []
    populations = _populations(diff)
    for hit in rule_hits(assess(diff, ctx.settings)):
        side = "RIGHT" if hit.tree == "head" else "LEFT"
        if can_comment is not None and not can_comment(hit.file, hit.line, side):
            continue
        if len(out) >= ctx.settings.max_line_comments:
            break
        marker = hit.marker()
        rows, shown = _rule_rows(hit.changes, ctx, populations)
        body = render(
            "line_comment.md.j2",
            marker=Md(marker),
            rules=sorted(hit.rules),
            rows=rows,
            shown=shown,
            total=len(hit.changes),
            owners=owners_of_paths(ctx.approval, hit.changes),
            check_run_url=safe_url(ctx.check_run_url),
        )
        out.append(
            LineComment(
                path=hit.file,
                line=hit.line,
                side=side,
                marker=marker,
                body=truncate(body, COMMENT_LIMIT),
            )
        )
    return tuple(out)


def _rule_rows(
    changes: Sequence[PathChange], ctx: ReviewContext, populations: Populations
) -> tuple[tuple[RowView, ...], int]:
    """A rule's paths as at most PATHS_PER_RULE rows, alike ones said once, and how many
    paths those rows stand for."""
    rows: list[RowView] = []
    shown = 0
    for group in aggregate(by_destination(changes), populations.head):
        label = markdown.shorten(endpoint_label(group.dst), LABEL_LIMIT)
        # Named apart from the id (not in its code span), as the sticky comment does.
        envs = tuple(
            markdown.shorten(e or "plain manifests", LABEL_LIMIT)
            for e in group.environments
            if e is not None
        )
        for row in group.rows:
            if len(rows) >= PATHS_PER_RULE:
                return tuple(rows), shown
            first = row.first
            view = aggregated_row(row, ctx)
            dst = EndpointView(label, first.dst_new, first.dst_removed, environments=envs)
            rows.append(replace(view, dst=dst))
            shown += len(row.changes) * len(group.environments)
    return tuple(rows), shown


def rule_marker(body: str) -> str | None:
    """The hidden marker of a line comment this module rendered, else None."""
    found = RULE_MARKER.search(body)
    return found.group(0) if found else None


def render_failure(
    ctx: ReviewContext, *, title: str, message: str, problems: Sequence[InputProblem]
) -> tuple[str, CheckOutput]:
    """The sticky comment and check output when the trees or settings cannot be read."""
    rows = [
        (
            replace(p, message=markdown.shorten(p.message, MESSAGE_LIMIT)),
            blob_url(ctx, p.tree, p.file, p.line or 0),
        )
        for p in problems[:PROBLEMS_SHOWN]
    ]
    values = dict(
        title=markdown.shorten(title, MESSAGE_LIMIT),
        message=markdown.shorten(message, MESSAGE_LIMIT),
        base_link=commit_link(ctx, ctx.base_sha),
        head_link=commit_link(ctx, ctx.head_sha),
        compared=ctx.compared,
    )

    def at(level: Level, marker: Md | None) -> str:
        shown = rows[: level.limit]
        return render(
            "failure.md.j2",
            marker=marker,
            problems=shown,
            more=len(problems) - len(shown),
            **values,
        )

    comment = fit(lambda lv: at(lv, Md(MARKER)), COMMENT_LIMIT, rows=len(rows))
    summary = fit(lambda lv: at(lv, None), CHECK_TEXT_LIMIT, rows=len(rows))
    annotations = tuple(
        Annotation(
            path=p.file,
            start_line=p.line,
            end_line=p.line,
            annotation_level="failure",
            message=markdown.shorten(p.message, 4000),
        )
        for p in problems
        if p.line and (p.tree == "head" or p.same_on_head)
    )[:MAX_ANNOTATIONS]
    check = CheckOutput(
        title=markdown.shorten(title, CHECK_TITLE_LIMIT), summary=summary, annotations=annotations
    )
    return comment, check


def render_diff_json(diff: ReachabilityDiff) -> str:
    """The documented JSON rendering of a diff (``reachdiff diff --format json``)."""

    return json_text(diff_to_json(diff))


# ---- sizing -------------------------------------------------------------------------


NOTES_SHOWN = 20


def _notes(diff: Diff) -> tuple[str, ...]:
    """What the report must say besides the paths (a diff may carry ``notes``: warnings
    about the trees, kinds ``ignore_kinds`` left out), shortened and counted."""
    notes = tuple(getattr(diff, "notes", ()))
    shown = tuple(markdown.shorten(n, MESSAGE_LIMIT) for n in notes[:NOTES_SHOWN])
    if len(notes) > NOTES_SHOWN:
        shown += (f"and {len(notes) - NOTES_SHOWN} more notes",)
    return shown


def _common(
    a: Assessment,
    ctx: ReviewContext,
    notes: tuple[str, ...] = (),
    unevaluated: tuple[Any, ...] = (),
) -> dict[str, Any]:
    approval = ctx.approval
    have = len(approval.approved_by) if approval is not None else 0
    required = approval.required if approval is not None else ctx.settings.required_approvals
    return dict(
        marker=Md(MARKER),
        kind=a.kind,
        opened_count=len(a.opened),
        closed_count=len(a.closed),
        gated_count=len(a.gated),
        hidden=a.hidden,
        new_count=len(a.new_workloads),
        removed_count=len(a.removed_workloads),
        needs_approval=a.needs_approval,
        exposure_gates=a.exposure_gates,
        satisfied=approval is not None and approval.satisfied,
        required=required,
        missing=max(0, required - have),
        have=have,
        approved_by=approval.approved_by if approval is not None else (),
        ignored=approval.ignored if approval is not None else (),
        approvers=Md(markdown.text(ctx.approvers_description, mentions=True)),
        compared=ctx.compared,
        base_link=commit_link(ctx, ctx.base_sha),
        head_link=commit_link(ctx, ctx.head_sha),
        head_short=ctx.head_sha[:7],
        settings_present=ctx.settings_present,
        check_run_url=safe_url(ctx.check_run_url),
        base_error=markdown.shorten(ctx.base_error, MESSAGE_LIMIT),
        ignored_unread=ctx.ignored_unread[:PROBLEMS_SHOWN],
        ignored_unread_more=max(0, len(ctx.ignored_unread) - PROBLEMS_SHOWN),
        outside=any(c.src.is_outside or c.dst.is_outside for c in (*a.opened, *a.closed)),
        notes=notes,
        unevaluated=tuple(
            (markdown.shorten(u.message, MESSAGE_LIMIT), blob_url(ctx, u.tree, u.file, u.line))
            for u in unevaluated[:PROBLEMS_SHOWN]
        ),
        unevaluated_more=max(0, len(unevaluated) - PROBLEMS_SHOWN),
        **owner_variables(approval, ctx.settings.owners),
    )
