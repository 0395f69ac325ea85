"""The outcomes of reviews that stop before a verdict, and how each failure is titled.

Every one fails the check (fail closed) and names what could not be read: the side (base
branch or pull request), the file and line where known, and the fix.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.inputs.analyze import AnalysisFailure
from bot.inputs.files import FilesError
from bot.inputs.mergetree import MergeConflict
from bot.inputs.unread import Unread
from bot.plan.review import ReviewOutcome
from bot.render.posts import CheckOutput, InputProblem, ReviewContext, render_failure
from bot.review.settings import SETTINGS_PATH, SettingsError

COULD_NOT_MERGE = "Could not determine what will merge; re-run"


def failure(context: ReviewContext, title: str, problems: Sequence[InputProblem]) -> ReviewOutcome:
    """A failed check and the sticky comment saying why; the message is the first
    problem's."""
    message = problems[0].message if problems else title
    comment, output = render_failure(context, title=title, message=message, problems=problems)
    return ReviewOutcome("failure", output, comment=comment)


def invalid_settings(
    context: ReviewContext, err: SettingsError, *, same_on_head: bool = False
) -> ReviewOutcome:
    """The settings file of the base branch named with the line of the offending key;
    ``same_on_head``: the head commit has the same file, so the check run annotates that
    line too (an annotation points into the head, where another version's lines differ)."""
    message = f"{err.key}: {err.message}" if err.key else err.message
    problem = InputProblem(SETTINGS_PATH, err.line, message, tree="base", same_on_head=same_on_head)
    return failure(context, f"Invalid {SETTINGS_PATH}", [problem])


def unreadable_files(context: ReviewContext, err: FilesError) -> ReviewOutcome:
    problem = InputProblem(err.path, None, err.message, tree="head")
    return failure(context, "Cannot read the manifests", [problem])


def archive_too_large(context: ReviewContext, why: str) -> ReviewOutcome:
    return failure(context, "Repository archive too large", [InputProblem("", None, why, tree="")])


def merge_conflict(context: ReviewContext, err: MergeConflict) -> ReviewOutcome:
    message = (
        f"could not determine what will merge; re-run: GitHub's test merge commit of the "
        f"base branch head {context.base_sha[:7]} and the head {context.head_sha[:7]} is not "
        f"available, and merging them file by file is not possible: {err}. Update the "
        "branch (or wait for GitHub) and re-run the check."
    )
    return failure(context, COULD_NOT_MERGE, [InputProblem(err.paths[0], None, message)])


def not_analysed(context: ReviewContext, failing: Sequence[tuple[str, Unread]]) -> ReviewOutcome:
    """What inside ``paths`` could not be seen (by side), and how to accept that."""
    problems = [
        InputProblem(
            "",
            None,
            f"not analysed: {u}" + (" (base branch)" if side == "base" else ""),
            tree=side,
        )
        for side, u in failing
    ]
    comment, output = render_failure(
        context,
        title="Part of the repository could not be analysed",
        message="Inside the reviewed `paths`, reachdiff cannot see what these hold, so the "
        "change is not verified. To accept that on purpose, name them in `ignore_paths` in "
        f"{SETTINGS_PATH} on the base branch.",
        problems=problems,
    )
    return ReviewOutcome("failure", output, comment=comment)


_ANALYSIS_TITLES = {
    "timeout": "Analysis timed out",
    "memory": "Analysis ran out of memory",
    "stopped": "The analysis process stopped",
    "unanalysed": "Part of the change could not be analysed",
}


UNCHANGED_INVALID = "Invalid manifest the pull request does not change (invalid on the base too)"


def analysis_failed(
    context: ReviewContext, failed: AnalysisFailure, *, unchanged: bool = False
) -> ReviewOutcome:
    """``unchanged``: the invalid file of the head is byte for byte the base branch's, so
    the pull request did not break it; the check still fails (what cannot be read is not
    verified), but the title and the comment say whose file it is."""
    if failed.kind == "manifest":
        side = "pull request" if failed.tree == "head" else "base branch"
        problem = InputProblem(
            failed.file, failed.line or None, failed.message, tree=failed.tree or "head"
        )
        if not (unchanged and failed.tree == "head" and failed.file):
            return failure(context, f"Invalid manifest in the {side}", [problem])
        message = (
            f"{failed.file} is the same on the base branch and in this pull request: the pull "
            f"request does not change it, and it is invalid on both sides ({failed.message}). "
            "The check cannot pass while a manifest it reviews cannot be read: fix the file "
            "on the base branch (or in this pull request) and re-run the check."
        )
        comment, output = render_failure(
            context, title=UNCHANGED_INVALID, message=message, problems=[problem]
        )
        return ReviewOutcome("failure", output, comment=comment)
    problems = [
        InputProblem(u.file, u.line or None, f"not analysed: {u.message}", tree=u.tree)
        for u in failed.unanalysed
    ]
    comment, output = render_failure(
        context,
        title=_ANALYSIS_TITLES.get(failed.kind, "Analysis failed"),
        message=failed.message,
        problems=problems,
    )
    return ReviewOutcome("failure", output, comment=comment)


def internal_error(err: BaseException) -> CheckOutput:
    if isinstance(err, TimeoutError):  # aiohttp's timeouts are TimeoutErrors too
        cause = (
            "A request to GitHub timed out (the app waits 30 s for a connection and 120 s "
            "for data), so the change is not verified. Re-run the check."
        )
    else:
        cause = (
            "An internal error stopped the review, so the change is not verified. "
            "Re-run the check; if it persists, the app's logs have the details."
        )
    return CheckOutput(
        title="reachdiff could not complete the review",
        summary=f"{cause}\n\n`{type(err).__name__}`",
    )


def too_many_reviews(err: BaseException) -> CheckOutput:
    return CheckOutput(
        title="Too many reviews to read",
        summary=f"{err}: approvals cannot be verified, so the check fails.",
    )


def interrupted(*, stopping: bool) -> tuple[str, CheckOutput]:
    """How a cancelled review's check run completes: ``cancelled`` when a newer push
    superseded it; ``failure`` when the server is stopping, since this head is still the
    one branch protection reads until it is reviewed again."""
    if stopping:
        return "failure", CheckOutput(
            title="Interrupted; re-reviewing",
            summary="The reachdiff server stopped during this review. It reviews this commit "
            "again when it is back; until then the change is not verified.",
        )
    return "cancelled", CheckOutput(
        title="Superseded by a newer push",
        summary="A newer commit was pushed before this review finished; "
        "see the check run on the latest commit.",
    )
