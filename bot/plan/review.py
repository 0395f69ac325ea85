"""The outcome of one review of a pull request or merge group, from one assessment.

Rules, in the order they apply:

1. The check's conclusion and output are the verdict of the diff under the base branch's
   settings and the approvals that count (``bot.render.posts``).
2. A change to ``.github/reachdiff.yml`` needs the same approval as a widening: it changes
   the rules every later pull request is judged by.
3. A ``success`` that rests on approvals holds only if every other open pull request
   with the same head and base (they share this check run) is approved too.
4. The sticky comment says why the check is stricter than the comment's verdict, and,
   once a change to the settings is approved, that the approval covered it (the check's
   summary says so too).
5. Line comments go to the rules' lines inside the pull request's diff; a rule outside it
   gets a comment on its file; a rule already commented (by this app) is not again.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from analysis import markdown
from bot.inputs.analyze import DiffResult
from bot.render.posts import (
    COMMENT_LIMIT,
    CheckOutput,
    LineComment,
    ReviewContext,
    check_conclusion,
    render_check_output,
    render_comment,
    render_line_comments,
)
from bot.review.breaks import breaks_lines
from bot.review.declared import approval_lines
from bot.review.patches import PullFiles
from bot.review.settings import SETTINGS_PATH, RepoSettings
from bot.review.verdict import Assessment, analysed_digest, assess, gated_digest, more_approvals


@dataclass(frozen=True, slots=True)
class ReviewOutcome:
    """Everything one review writes. ``comment`` None: the sticky comment is left alone
    (merge groups have none); ``shown`` is the digest of the gated delta the check run
    shows, recorded in its ``external_id`` (None: not recorded)."""

    conclusion: str
    output: CheckOutput
    comment: str | None = None
    line_comments: tuple[LineComment, ...] = ()
    shown: str | None = None
    # The analysed delta (``analysed_delta``), recorded with ``shown`` so that approvals
    # of this head may carry over to a later one showing the same (``bot.app.gate``).
    analysed: str | None = None


def settings_digest(text: bytes | None) -> str:
    return "absent" if text is None else hashlib.sha256(text).hexdigest()


def analysed_delta(
    diff: DiffResult, settings: RepoSettings, settings_changed: bool, settings_text: bytes | None
) -> str:
    """The analysed delta (``bot.review.verdict.analysed_digest``) under these settings."""
    return analysed_digest(
        diff,
        assess(diff, settings),
        settings=settings_digest(settings_text),
        settings_changed=settings_changed,
        declared=approval_lines(diff) + breaks_lines(diff, settings),
    )


def gated(diff: DiffResult, settings: RepoSettings, settings_changed: bool) -> str | None:
    """The digest approvals must have seen (None: nothing needs approval)."""
    assessment = assess(diff, settings)
    # intents (docs/intents.md) and observed flows a closed path carried (docs/traffic.md)
    declared = approval_lines(diff) + breaks_lines(diff, settings)
    if not (settings_changed or assessment.needs_approval or declared):
        return None
    return gated_digest(assessment, settings_changed=settings_changed, declared=declared)


def needs_sibling_approvals(
    diff: DiffResult, context: ReviewContext, *, settings_changed: bool
) -> bool:
    """Does the outcome hinge on the other open pull requests of the same head and base
    (rule 3)? The flow lists them, and their approvals, only then."""
    approval = context.approval
    if settings_changed and (approval is None or not approval.satisfied):
        return False  # fails on its own (rule 2)
    if check_conclusion(diff, context) != "success":
        return False
    return (
        settings_changed
        or assess(diff, context.settings).needs_approval
        or bool(approval_lines(diff))
    )


def plan_review(
    diff: DiffResult,
    context: ReviewContext,
    *,
    settings_changed: bool,
    base_ref: str,
    lacking: Collection[int] = (),
    files: PullFiles | None = None,
    analysed: str | None = None,
) -> ReviewOutcome:
    """``context`` carries the approvals found; ``lacking``: the other open pull requests
    of the same head and base that lack them; ``files``: where line comments may go
    (None: no line comments); ``analysed``: the analysed delta, recorded with what the
    check shows."""
    assessment = assess(diff, context.settings)
    conclusion, output, note = _strictest(
        assessment,
        context,
        check_conclusion(diff, context),
        render_check_output(diff, context),
        base_ref=base_ref,
        settings_changed=settings_changed,
        lacking=lacking,
        declared=bool(approval_lines(diff)),
    )
    if settings_changed and note is None:
        note = _settings_approved(context)
        if note is not None:
            output = dataclasses.replace(output, summary=f"**{note}**\n\n{output.summary}"[:65535])
    comments = (
        render_line_comments(diff, context, can_comment=files.can_comment)
        if files is not None
        else ()
    )
    return ReviewOutcome(
        conclusion,
        output,
        comment=_with_note(render_comment(diff, context), note, important=conclusion != "success"),
        line_comments=comments,
        shown=gated_digest(
            assessment,
            settings_changed=settings_changed,
            declared=approval_lines(diff) + breaks_lines(diff, context.settings),
        ),
        analysed=analysed,
    )


def plan_merge_group(
    diff: DiffResult,
    context: ReviewContext,
    *,
    settings_changed: bool,
    base_ref: str,
    problem: str | None = None,
    lacking: Collection[int] = (),
) -> ReviewOutcome:
    """A merge group's check: as a pull request's, without comments. ``problem``: why the
    approvals of the queued pull request could not be read (then a change that needs
    them fails). Other pull requests sharing the group's head (``lacking``) count only
    for a change to the settings."""
    assessment = assess(diff, context.settings)
    output = render_check_output(diff, context)
    conclusion: str = check_conclusion(diff, context)
    declared = bool(approval_lines(diff) + breaks_lines(diff, context.settings))
    if problem is not None and (settings_changed or assessment.needs_approval or declared):
        return ReviewOutcome("failure", prepend(output, "Needs approval: " + problem, problem))
    conclusion, output, _ = _strictest(
        assessment,
        context,
        conclusion,
        output,
        base_ref=base_ref,
        settings_changed=settings_changed,
        lacking=lacking if settings_changed else (),
        declared=declared,
    )
    return ReviewOutcome(conclusion, output)


def _strictest(
    assessment: Assessment,
    context: ReviewContext,
    conclusion: str,
    output: CheckOutput,
    *,
    base_ref: str,
    settings_changed: bool,
    lacking: Collection[int],
    declared: bool,
) -> tuple[str, CheckOutput, str | None]:
    """Rules 2 and 3: tighten a ``success`` that rests on this pull request's approvals;
    the third value says why, for the sticky comment (None: nothing tightened)."""
    approval = context.approval
    if settings_changed and (approval is None or not approval.satisfied):
        missing = approval.missing if approval is not None else 1
        why = (
            f"This pull request changes `{SETTINGS_PATH}`, the rules later reviews are "
            f"judged by, so it needs approval from {context.approvers_description} "
            "like a widening does."
        )
        title = f"Changes {SETTINGS_PATH}: needs {more_approvals(missing)}"
        return "failure", prepend(output, title, why), why
    if conclusion != "success" or not (settings_changed or assessment.needs_approval or declared):
        return conclusion, output, None
    if not lacking:
        return conclusion, output, None
    numbers = ", ".join(f"#{n}" for n in sorted(lacking))
    if len(lacking) == 1:
        who, verbs, each = f"Pull request {numbers}", ("merges", "shares", "lacks"), "it"
    else:
        who, verbs, each = f"Pull requests {numbers}", ("merge", "share", "lack"), "each"
    why = (
        f"{who} {verbs[0]} this same commit into `{base_ref}` and {verbs[1]} this check run, "
        f"but {verbs[2]} the approvals this change needs: {each} must be approved (or closed) "
        "before the check passes."
    )
    title = f"Needs approval on {numbers} too (same head and base)"
    return "failure", prepend(output, title, why), why


def _settings_approved(context: ReviewContext) -> str | None:
    """Rule 4's second half: what an approved change to the settings rests on (None: the
    approvals do not satisfy it, and rule 2 has said so)."""
    approval = context.approval
    if approval is None or not approval.satisfied:
        return None
    about = f"This pull request changes `{SETTINGS_PATH}`, the rules later reviews are judged by"
    if approval.override is not None and not approval.approved:
        return f"{about}: it passes under the break-glass override, not an approval."
    logins = dict.fromkeys(
        [*approval.approved_by, *(u for g in approval.owners for u in g.status.approved_by)]
    )
    if not logins:
        return f"{about}; the settings ask for no approval, so none was needed."
    who = ", ".join(markdown.code(f"@{login}") for login in logins)
    approvals = "approval" if len(logins) == 1 else "approvals"
    return f"{about}; the {approvals} by {who} cover{'s' * (len(logins) == 1)} that change too."


def _with_note(comment: str, note: str | None, *, important: bool = True) -> str:
    """The sticky comment, with why the check is stricter than the comment's verdict (an
    important note), or what an approval covered (a note)."""
    if note is None:
        return comment
    kind = "IMPORTANT" if important else "NOTE"
    noted = f"{comment.rstrip()}\n\n> [!{kind}]\n> {note}\n"
    return noted if len(noted) <= COMMENT_LIMIT else comment


def prepend(output: CheckOutput, title: str, why: str) -> CheckOutput:
    """The output under a new title, with why first in its summary."""
    return dataclasses.replace(
        output, title=title[:255], summary=f"**{why}**\n\n{output.summary}"[:65535]
    )


def outdated(outcome: ReviewOutcome) -> ReviewOutcome:
    """A ``success`` whose head or base branch moved during the review does not stand."""
    output = prepend(
        outcome.output,
        "Outdated: the head or the base branch moved during the review",
        "The pull request's head or its base branch moved while this was being reviewed, "
        "so this result is not about what would merge now; a new review follows.",
    )
    return dataclasses.replace(outcome, conclusion="failure", output=output)


def place_line_comments(
    comments: Sequence[LineComment], files: PullFiles, posted: Collection[str | None]
) -> tuple[list[LineComment], list[LineComment]]:
    """Rule 5: (comments on whole files, comments on lines of the diff), leaving out those
    whose marker this app already posted. A comment on a line the pull request deletes
    (LEFT) cannot be moved to its file, so it goes only where its line is in the diff."""
    fresh = [c for c in comments if c.marker not in posted]
    on_lines = [c for c in fresh if files.in_diff(c.path, c.line, c.side)]
    on_files = [c for c in fresh if c not in on_lines and c.side == "RIGHT"]
    return on_files, on_lines
