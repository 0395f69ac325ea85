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
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from analysis.aggregate import (
    NO_POPULATIONS,
    Group,
    Population,
    Populations,
    Row,
    aggregate,
    describe_environments,
    local,
    rows_of,
)
from analysis.decision import Explanation
from analysis.diff import PathChange, ReachabilityDiff, in_order
from analysis.explain import ALLOWS, Cause
from analysis.reachability import Endpoint
from analysis.report import diff_to_json, json_text
from bot.render import markdown
from bot.render.declared import declared_annotations, declared_section, declared_title
from bot.render.owners_md import owner_variables, owners_of_paths
from bot.render.templating import Md, render
from bot.review.approvals import ApprovalStatus
from bot.review.breaks import FlowData, breaks_conclusion, breaks_title
from bot.review.breaks import section as traffic_section
from bot.review.declared import declared_conclusion, declared_of
from bot.review.settings import RepoSettings
from bot.review.verdict import Assessment, Conclusion, Diff, assess, conclusion, verdict_text

MARKER = "<!-- reachdiff:sticky-comment -->"
COMMENT_LIMIT = 65536
CHECK_TEXT_LIMIT = 65535
CHECK_TITLE_LIMIT = 255
MAX_ANNOTATIONS = 50  # per request to the checks API
GRAPH_EDGE_LIMIT = 30
CAUSES_PER_PATH = 3
PATHS_PER_RULE = 20
MEMBERS_SHOWN = 20  # workloads named in one aggregated row; the check run has them all
PROBLEMS_SHOWN = 100
_MESSAGE_LIMIT = 1000
_LABEL_LIMIT = 120
_PORTS_LIMIT = 100
EXPANDED_LIMIT = 20_000  # a longer comment starts with its sections collapsed
_ALL_ROWS = 2000  # above this many list rows, a full listing cannot fit in 64 KiB anyway
_CUTS = (1000, 500, 300, 200, 150, 100, 70, 50, 30, 20, 10, 5)
_RULE_MARKER = re.compile(r"<!-- reachdiff:rule (\S+) ([0-9a-f]{12}) -->")


@dataclass(frozen=True, slots=True)
class ReviewContext:
    repository: str  # "owner/repo"
    server_url: str  # "https://github.com"
    base_sha: str
    head_sha: str
    compared: str  # "base branch head a1b2c3d vs test merge commit e4f5a6b"
    settings: RepoSettings
    settings_present: bool
    approval: ApprovalStatus | None
    approvers_description: str  # trusted Markdown: "@alice or a member of @acme/netsec"
    check_run_url: str | None = None
    # The commit whose files were analysed on the head side when it is not the head (the
    # test merge commit): links to cited lines point there, where those lines are.
    analysed_head_sha: str | None = None
    # Why the base could not be read, when it could not: the head was analysed on its own
    # and every path it allows counts as opened.
    base_error: str = ""
    # "path: why (side)" of what ``ignore_paths`` lets go unanalysed, shown in the comment.
    ignored_unread: tuple[str, ...] = ()
    # The flow data the settings name and whether it could be read (docs/traffic.md).
    flow_data: FlowData | None = None


@dataclass(frozen=True, slots=True)
class InputProblem:
    file: str
    line: int | None
    message: str
    tree: str = "head"  # where file/line point: "head", or "base" (e.g. the settings file);
    # "" when the problem is not one side's


@dataclass(frozen=True, slots=True)
class Annotation:
    path: str
    start_line: int
    end_line: int
    annotation_level: str  # notice, warning, failure
    message: str
    title: str = ""

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "path": self.path,
            "start_line": self.start_line,
            "end_line": self.end_line,
            "annotation_level": self.annotation_level,
            "message": self.message,
        }
        if self.title:
            out["title"] = self.title
        return out


@dataclass(frozen=True, slots=True)
class CheckOutput:
    title: str
    summary: str
    text: str = ""
    annotations: tuple[Annotation, ...] = ()  # at most MAX_ANNOTATIONS

    def to_api(self) -> dict[str, Any]:
        """The ``output`` object of a check run create/update request."""
        out: dict[str, Any] = {"title": self.title, "summary": self.summary}
        if self.text:
            out["text"] = self.text
        if self.annotations:
            out["annotations"] = [a.to_api() for a in self.annotations]
        return out


@dataclass(frozen=True, slots=True)
class LineComment:
    path: str
    line: int
    body: str
    side: str = "RIGHT"  # RIGHT: a line of the head; LEFT: a line the PR deletes
    marker: str = ""  # the hidden marker at the start of body


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
    lists = _Lists(a, ctx, _populations(diff), why)
    graph = _graph(a) if ctx.settings.diagram else None
    declared = declared_of(diff)
    section = declared_section(declared, ctx.approvers_description) if declared else ""
    section += traffic_section(diff, ctx.settings, ctx.flow_data)
    return _fit(
        lambda lv: _with_section(
            render("comment.md.j2", **common, **lists.at(lv), graph=None if lv.summary else graph),
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
    summary = _truncate(render("check_summary.md.j2", **common) + traffic, CHECK_TEXT_LIMIT)
    text = ""
    if a.opened or a.closed:
        lists = _Lists(a, ctx, _populations(diff))
        # The check run's page is where the full lists are read: never collapsed.
        text = _fit(
            lambda lv: render(
                "check_text.md.j2", **common, **lists.at(replace(lv, collapse=False))
            ),
            CHECK_TEXT_LIMIT,
            rows=lists.rows,
        )
    head_hits = [hit for hit in _rule_hits(a) if hit.tree == "head"]
    annotations = tuple(
        Annotation(
            path=hit.file,
            start_line=hit.line,
            end_line=hit.line,
            annotation_level="warning",
            title=_hit_title(hit),
            message=_hit_plain(hit),
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
        summary = _truncate(
            summary + "\n\n" + declared_section(declared, ctx.approvers_description),
            CHECK_TEXT_LIMIT,
        )
    annotations = annotations[:MAX_ANNOTATIONS]
    said = verdict(diff, ctx)
    if ctx.base_error:  # the check list shows titles only: say the comparison was partial
        said += " (the base cannot be read: head reviewed on its own)"
    title = markdown.shorten(said, CHECK_TITLE_LIMIT)
    if declared is not None and declared_title(declared):
        title = str(declared_title(declared))
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
    for hit in _rule_hits(assess(diff, ctx.settings)):
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
            check_run_url=_safe_url(ctx.check_run_url),
        )
        out.append(
            LineComment(
                path=hit.file,
                line=hit.line,
                side=side,
                marker=marker,
                body=_truncate(body, COMMENT_LIMIT),
            )
        )
    return tuple(out)


def _rule_rows(
    changes: Sequence[PathChange], ctx: ReviewContext, populations: Populations
) -> tuple[tuple[_Row, ...], int]:
    """A rule's paths as at most PATHS_PER_RULE rows, alike ones said once, and how many
    paths those rows stand for."""
    rows: list[_Row] = []
    shown = 0
    for group in aggregate(_by_destination(changes), populations.head):
        envs = describe_environments(group.environments)
        label = _label(group.dst) + (f" in {envs}" if envs else "")
        for row in group.rows:
            if len(rows) >= PATHS_PER_RULE:
                return tuple(rows), shown
            first = row.first
            view = _aggregated_row(row, ctx)
            dst = _Endpoint(markdown.shorten(label, _LABEL_LIMIT), first.dst_new, first.dst_removed)
            rows.append(replace(view, dst=dst))
            shown += len(row.changes) * len(group.environments)
    return tuple(rows), shown


def rule_marker(body: str) -> str | None:
    """The hidden marker of a line comment this module rendered, else None."""
    found = _RULE_MARKER.search(body)
    return found.group(0) if found else None


def render_failure(
    ctx: ReviewContext, *, title: str, message: str, problems: Sequence[InputProblem]
) -> tuple[str, CheckOutput]:
    """The sticky comment and check output when the trees or settings cannot be read."""
    rows = [
        (
            replace(p, message=markdown.shorten(p.message, _MESSAGE_LIMIT)),
            _blob_url(ctx, p.tree, p.file, p.line or 0),
        )
        for p in problems[:PROBLEMS_SHOWN]
    ]
    values = dict(
        title=markdown.shorten(title, _MESSAGE_LIMIT),
        message=markdown.shorten(message, _MESSAGE_LIMIT),
        base_link=_commit_link(ctx, ctx.base_sha),
        head_link=_commit_link(ctx, ctx.head_sha),
        compared=ctx.compared,
    )

    def at(level: _Level, marker: Md | None) -> str:
        shown = rows[: level.limit]
        return render(
            "failure.md.j2",
            marker=marker,
            problems=shown,
            more=len(problems) - len(shown),
            **values,
        )

    comment = _fit(lambda lv: at(lv, Md(MARKER)), COMMENT_LIMIT, rows=len(rows))
    summary = _fit(lambda lv: at(lv, None), CHECK_TEXT_LIMIT, rows=len(rows))
    annotations = tuple(
        Annotation(
            path=p.file,
            start_line=p.line,
            end_line=p.line,
            annotation_level="failure",
            message=markdown.shorten(p.message, 4000),
        )
        for p in problems
        if p.line and p.tree == "head"
    )[:MAX_ANNOTATIONS]
    check = CheckOutput(
        title=markdown.shorten(title, CHECK_TITLE_LIMIT), summary=summary, annotations=annotations
    )
    return comment, check


def render_diff_json(diff: ReachabilityDiff) -> str:
    """The documented JSON rendering of a diff (``reachdiff diff --format json``)."""

    return json_text(diff_to_json(diff))


# ---- sizing -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Level:
    collapse: bool = False
    limit: int | None = None  # rows per list; None: all
    summary: bool = False  # no lists at all


def size(text: str) -> int:
    """Length in UTF-16 code units: an upper bound of every count GitHub might use."""
    return len(text.encode("utf-16-le")) // 2


def _fit(
    render_at: Callable[[_Level], str],
    limit: int,
    *,
    rows: int,
    expanded_limit: int | None = None,
    can_summarize: bool = False,
) -> str:
    """The first rendering that fits: expanded (while short), collapsed, lists cut ever
    shorter, a summary, and as a last resort a truncation.

    ``rows`` is the length of the longest list. A body grows at least in proportion to
    the rows it shows, so a cut that cannot fit by that estimate is not even rendered.
    """
    out = ""
    shown, produced = rows, 0
    if rows <= _ALL_ROWS:
        if expanded_limit is not None:
            out = render_at(_Level())
            if size(out) <= min(expanded_limit, limit):
                return out
        out = render_at(_Level(collapse=True))
        produced = size(out)
        if produced <= limit:
            return out
    for cut in _CUTS:
        if cut >= rows or (produced and cut * produced > shown * limit):
            continue
        out = render_at(_Level(collapse=True, limit=cut))
        shown, produced = cut, size(out)
        if produced <= limit:
            return out
    if can_summarize:
        out = render_at(_Level(collapse=True, limit=0, summary=True))
    return _truncate(out, limit)


def _truncate(text: str, limit: int) -> str:
    if size(text) <= limit:
        return text
    suffix = "\n\n… (cut to GitHub's size limit)\n"
    budget = limit - size(suffix)
    text = text[:budget]
    while size(text) > budget:
        text = text[: len(text) - (size(text) - budget)]
    return text + suffix


# ---- views --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Endpoint:
    label: str
    new: bool = False
    removed: bool = False
    namespace: str = ""  # with count: workloads of this namespace ("": of the environment)
    count: int = 0  # how many workloads an aggregated row stands for (0: one endpoint)
    of: int = 0  # how many the namespace holds, when not all of them are meant
    members: tuple[str, ...] = ()  # their "Kind/name", when not all (at most MEMBERS_SHOWN)
    tally: str = ""  # of an aggregated row's workloads, how many are new or removed
    words: str = ""  # a representative of pods outside the repository, in words


@dataclass(frozen=True, slots=True)
class _Cause:
    policy: str
    rule: str
    detail: str  # why, when not simply "allows": "no longer isolates", an admin tier...
    url: str
    at_base: bool


@dataclass(frozen=True, slots=True)
class _Row:
    src: _Endpoint
    dst: _Endpoint
    ports: str
    causes: tuple[_Cause, ...]
    more_causes: int
    note: str  # why a path without causes changed: a workload came or went
    why: Md | None = None  # the decision step by step (``reachdiff explain``), if computed

    @property
    def source(self) -> Md:
        """The "from" cell: one endpoint, or the workloads an aggregated row stands for."""
        src = self.src
        if not src.count:
            flags = (" (new)" if src.new else "") + (" (removed)" if src.removed else "")
            words = f"<br>{markdown.text(src.words)}" if src.words else ""
            return Md(markdown.code(src.label, cell=True) + flags + words)
        if not src.members:
            out = f"all {src.count} workloads"
        else:
            out = f"{src.count} of {src.of} workloads" if src.of else f"{src.count} workloads"
        if src.namespace:
            out += " of " + markdown.code(src.namespace, cell=True)
        if src.tally:
            out += f" ({markdown.text(src.tally)})"
        if src.members:
            names = [
                markdown.text(m)
                if n == len(src.members) - 1 and m.startswith("and ")
                else markdown.code(m, cell=True)
                for n, m in enumerate(src.members)
            ]
            out += ": " + ", ".join(names)
        return Md(out)


@dataclass(frozen=True, slots=True)
class _Group:
    dst: _Endpoint
    rows: tuple[_Row, ...]
    environments: tuple[str, ...] = ()  # where the group's changes are, when named


@dataclass(frozen=True, slots=True)
class _List:
    items: tuple[Any, ...]  # _Group for paths, _Endpoint for workloads
    total: int
    shown: int

    @property
    def more(self) -> int:
        return self.total - self.shown


def _label(endpoint: Endpoint) -> str:
    if endpoint.is_external:
        cidrs = endpoint.cidrs
        extra = f" (+{len(cidrs) - 3} more ranges)" if len(cidrs) > 3 else ""
        # Like a workload's id, a range of one of several environments names it: the same
        # CIDRs in two environments are two endpoints and must not look like one.
        env = "" if endpoint.environment is None else f"{endpoint.environment or '.'}:"
        return markdown.shorten(env + ",".join(cidrs[:3]), _LABEL_LIMIT) + extra
    return markdown.shorten(endpoint.id, _LABEL_LIMIT)


def _cause_detail(c: Cause) -> str:
    parts = []
    if c.action:  # an admin tier's rule: which tier, and what it does
        named = f' "{c.rule_name}"' if c.rule_name else ""
        parts.append(f"{c.tier}{named}: {c.action}")
    if c.reason != ALLOWS:
        parts.append(c.reason)
    return markdown.shorten(", ".join(parts), _LABEL_LIMIT)


def _blob_url(ctx: ReviewContext, tree: str, file: str, line: int) -> str:
    sha = (ctx.analysed_head_sha or ctx.head_sha) if tree == "head" else ctx.base_sha
    anchor = f"#L{line}" if line > 0 else ""
    if not ctx.server_url:  # a local review: links relative to the repository root
        return f"{markdown.path_url(file)}{anchor}"
    return (
        f"{ctx.server_url.rstrip('/')}/{ctx.repository}/blob/{sha}/"
        f"{markdown.path_url(file)}{anchor}"
    )


def _commit_link(ctx: ReviewContext, sha: str) -> Md:
    if not ctx.server_url:
        return Md(markdown.code(sha[:7]))
    target = f"{ctx.server_url.rstrip('/')}/{ctx.repository}/commit/{sha}"
    return Md(markdown.link(markdown.code(sha[:7]), target))


def _safe_url(value: str | None) -> str | None:
    if value is None or not re.match(r"https?://", value):
        return None
    return markdown.url(value)


def _row(change: PathChange, ctx: ReviewContext) -> _Row:
    causes = tuple(
        _Cause(
            policy=markdown.shorten(c.policy, _LABEL_LIMIT),
            rule=c.rule,
            detail=_cause_detail(c),
            url=_blob_url(ctx, c.tree, c.file, c.line),
            at_base=c.tree != "head",
        )
        for c in change.because[:CAUSES_PER_PATH]
    )
    return _Row(
        src=_Endpoint(
            _label(change.src), change.src_new, change.src_removed, words=change.src.description
        ),
        dst=_Endpoint(
            _label(change.dst), change.dst_new, change.dst_removed, words=change.dst.description
        ),
        ports=markdown.shorten(str(change.delta), _PORTS_LIMIT),
        causes=causes,
        more_causes=max(0, len(change.because) - CAUSES_PER_PATH),
        note=_note(change),
    )


def explanation_md(e: Explanation) -> Md:
    """The steps of an explanation as a Markdown table: everything a manifest names is
    escaped (``bot.render.markdown``), so it can sit in the comment."""
    lines = [
        "| # | direction | tier | policy, rule | verdict | why |",
        "| ---: | --- | --- | --- | --- | --- |",
    ]
    for n, s in enumerate(e.steps, 1):
        rule = f"{s.policy} {s.rule}".strip()
        if s.file:
            rule += f" ({s.file}:{s.line})"
        cells = [
            str(n),
            s.direction,
            markdown.text(s.tier),
            markdown.code(rule, cell=True) if rule else "",
            markdown.text(s.verdict),
            markdown.text(markdown.shorten(s.detail, 300)),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return Md("\n".join(lines))


def _note(change: PathChange) -> str:
    if change.src_new or change.dst_new:
        return "new workload"
    if change.src_removed or change.dst_removed:
        return "workload removed"
    return ""


def _by_destination(changes: Sequence[PathChange]) -> tuple[PathChange, ...]:
    # The engine orders by source; a reviewer asks "who can now reach X?": by destination.
    return in_order(changes, by_destination=True)


class _Lists:
    """The report's lists, ordered and grouped once (alike changes said once, see
    ``analysis.aggregate``), rendered at any length."""

    def __init__(
        self,
        a: Assessment,
        ctx: ReviewContext,
        populations: Populations,
        why: Mapping[tuple[str, str], Md] | None = None,
    ) -> None:
        self.why = why or {}  # opened paths' explanations, by (src id, dst id)
        self.ctx = ctx
        self._views: dict[int, _Row] = {}
        self.opened = aggregate(_by_destination(a.opened), populations.head)
        self.closed = aggregate(_by_destination(a.closed), populations.base)
        self.new_workloads = a.new_workloads
        self.removed_workloads = a.removed_workloads
        self.rows = max(
            rows_of(self.opened),
            rows_of(self.closed),
            len(self.new_workloads),
            len(self.removed_workloads),
        )

    def at(self, level: _Level) -> dict[str, Any]:
        return dict(
            collapse=level.collapse,
            summary_only=level.summary,
            opened=self._paths(self.opened, level.limit, self.why),
            closed=self._paths(self.closed, level.limit, {}),
            new_workloads=self._workloads(self.new_workloads, level.limit),
            removed_workloads=self._workloads(self.removed_workloads, level.limit),
        )

    def _paths(
        self, groups: Sequence[Group], limit: int | None, why: Mapping[tuple[str, str], Md]
    ) -> _List:
        # Counts are of paths (a row may stand for many); ``limit`` cuts rows.
        left = rows_of(groups) if limit is None else limit
        shown: list[_Group] = []
        paths_shown = 0
        for group in groups:
            if left <= 0:
                break
            kept = group.rows[:left]
            left -= len(kept)
            paths_shown += sum(len(r.changes) for r in kept) * len(group.environments)
            first = group.rows[0].first
            shown.append(
                _Group(
                    dst=_Endpoint(
                        _label(group.dst),
                        first.dst_new,
                        first.dst_removed,
                        words=group.dst.description,
                    ),
                    rows=tuple(
                        replace(self._view(r), why=why.get((r.first.src.id, r.first.dst.id)))
                        if not r.src.aggregated
                        else self._view(r)
                        for r in kept
                    ),
                    environments=tuple(
                        markdown.shorten(e or "plain manifests", _LABEL_LIMIT)
                        for e in group.environments
                        if e is not None
                    ),
                )
            )
        total = sum(g.changes for g in groups)
        return _List(items=tuple(shown), total=total, shown=paths_shown)

    def _view(self, row: Row) -> _Row:
        # Rendered once, whatever the number of sizes tried.
        view = self._views.get(id(row))
        if view is None:
            view = self._views[id(row)] = _aggregated_row(row, self.ctx)
        return view

    @staticmethod
    def _workloads(endpoints: Sequence[Endpoint], limit: int | None) -> _List:
        shown = endpoints[:limit]
        return _List(
            items=tuple(_Endpoint(_label(e)) for e in shown), total=len(endpoints), shown=len(shown)
        )


def _aggregated_row(row: Row, ctx: ReviewContext) -> _Row:
    view = _row(row.first, ctx)
    src = row.src
    if not src.aggregated:
        # The group names the environment: the source is written as the environment has it.
        return replace(view, src=replace(view.src, label=_label(local(row.first.src))))
    notes = [f"{src.new} new" if src.new else "", f"{src.removed} removed" if src.removed else ""]
    if src.ranges:
        labels = ", ".join(_label(local(c.src)) for c in row.changes[:MEMBERS_SHOWN])
        more = len(row.changes) - MEMBERS_SHOWN
        label = labels + (f" (+{more} more ranges)" if more > 0 else "")
        return replace(view, src=replace(view.src, label=label))
    members = tuple(markdown.shorten(m, _LABEL_LIMIT) for m in src.members[:MEMBERS_SHOWN])
    if len(src.members) > MEMBERS_SHOWN:
        members += (f"and {len(src.members) - MEMBERS_SHOWN} more",)
    return replace(
        view,
        src=_Endpoint(
            "",
            namespace=markdown.shorten(src.namespace, _LABEL_LIMIT),
            count=src.count,
            of=0 if src.everyone else src.of,
            members=members,
            tally=", ".join(n for n in notes if n),
        ),
    )


NOTES_SHOWN = 20


def _notes(diff: Diff) -> tuple[str, ...]:
    """What the report must say besides the paths (a diff may carry ``notes``: warnings
    about the trees, kinds ``ignore_kinds`` left out), shortened and counted."""
    notes = tuple(getattr(diff, "notes", ()))
    shown = tuple(markdown.shorten(n, _MESSAGE_LIMIT) for n in notes[:NOTES_SHOWN])
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
        satisfied=approval is not None and approval.satisfied,
        required=required,
        missing=max(0, required - have),
        have=have,
        approved_by=approval.approved_by if approval is not None else (),
        ignored=approval.ignored if approval is not None else (),
        approvers=Md(markdown.text(ctx.approvers_description, mentions=True)),
        compared=ctx.compared,
        base_link=_commit_link(ctx, ctx.base_sha),
        head_link=_commit_link(ctx, ctx.head_sha),
        head_short=ctx.head_sha[:7],
        settings_present=ctx.settings_present,
        check_run_url=_safe_url(ctx.check_run_url),
        base_error=markdown.shorten(ctx.base_error, _MESSAGE_LIMIT),
        ignored_unread=ctx.ignored_unread[:PROBLEMS_SHOWN],
        ignored_unread_more=max(0, len(ctx.ignored_unread) - PROBLEMS_SHOWN),
        outside=any(c.src.is_outside or c.dst.is_outside for c in (*a.opened, *a.closed)),
        notes=notes,
        unevaluated=tuple(
            (markdown.shorten(u.message, _MESSAGE_LIMIT), _blob_url(ctx, u.tree, u.file, u.line))
            for u in unevaluated[:PROBLEMS_SHOWN]
        ),
        unevaluated_more=max(0, len(unevaluated) - PROBLEMS_SHOWN),
        **owner_variables(approval, ctx.settings.owners),
    )


@dataclass(frozen=True, slots=True)
class _Graph:
    nodes: tuple[tuple[str, str], ...]  # (mermaid id, label)
    edges: tuple[tuple[str, str, str, bool], ...]  # (from, to, ports, opened)
    more: int


def _graph(a: Assessment) -> _Graph | None:
    changes = [(c, True) for c in a.opened] + [(c, False) for c in a.closed]
    if not changes:
        return None
    ids: dict[str, str] = {}
    nodes: list[tuple[str, str]] = []
    edges: list[tuple[str, str, str, bool]] = []
    for change, opened in changes[:GRAPH_EDGE_LIMIT]:
        ends = []
        for endpoint, new in ((change.src, change.src_new), (change.dst, change.dst_new)):
            if endpoint.id not in ids:
                ids[endpoint.id] = f"n{len(ids)}"
                nodes.append((ids[endpoint.id], _label(endpoint) + (" (new)" if new else "")))
            ends.append(ids[endpoint.id])
        edges.append((ends[0], ends[1], markdown.shorten(str(change.delta), 40), opened))
    return _Graph(
        nodes=tuple(nodes), edges=tuple(edges), more=max(0, len(changes) - GRAPH_EDGE_LIMIT)
    )


# ---- responsible rules ----------------------------------------------------------------


@dataclass(slots=True)
class _RuleHit:
    """Every gated path one policy line is responsible for."""

    tree: str
    file: str
    line: int
    rules: set[tuple[str, str, str]] = field(default_factory=set)  # policy, rule, detail
    changes: list[PathChange] = field(default_factory=list)

    def marker(self) -> str:
        identity = "\0".join(
            [self.tree, self.file, str(self.line), *("|".join(r) for r in sorted(self.rules))]
        )
        digest = hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()[:12]
        where = markdown.html_comment_safe(f"{self.file}:{self.line}")
        return f"<!-- reachdiff:rule {where} {digest} -->"


def _rule_hits(a: Assessment) -> list[_RuleHit]:
    hits: dict[tuple[str, str, int], _RuleHit] = {}
    for change in a.gated:
        for cause in change.because:
            if not cause.file or cause.line < 1:
                continue
            key = (cause.tree, cause.file, cause.line)
            hit = hits.setdefault(key, _RuleHit(cause.tree, cause.file, cause.line))
            hit.rules.add((cause.policy, cause.rule, _cause_detail(cause)))
            if not hit.changes or hit.changes[-1] is not change:
                hit.changes.append(change)
    # The rules that open the most come first: they survive the max_line_comments cap.
    return sorted(hits.values(), key=lambda h: (-len(h.changes), h.tree != "head", h.file, h.line))


def _hit_title(hit: _RuleHit) -> str:
    n = len(hit.changes)
    if n == 1:
        return "Opens 1 path that needs approval"
    return f"Opens {n} paths that need approval"


def _hit_plain(hit: _RuleHit) -> str:
    lines = [
        " ".join(x for x in (policy, rule, f"({detail})" if detail else "") if x)
        for policy, rule, detail in sorted(hit.rules)
    ]
    lines += [
        f"{_label(c.src)} -> {_label(c.dst)}: {markdown.shorten(str(c.delta), 100)}"
        for c in hit.changes[:PATHS_PER_RULE]
    ]
    if len(hit.changes) > PATHS_PER_RULE:
        lines.append(f"and {len(hit.changes) - PATHS_PER_RULE} more")
    return "\n".join(markdown.one_line(line) for line in lines)
