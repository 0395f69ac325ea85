"""One review of a pull request, end to end: the orchestration, with no decisions of its own.

Order of writes, and why:
1. The ``reachdiff`` check run goes ``in_progress`` on the head first, so branch protection
   sees a pending check at once.
2. Settings come from the base side; a PR cannot loosen the rules it is judged by.
3. The engine runs in the process pool; its input is bounded by the tree limits.
4. The sticky comment and the review are written only while the analysed head is still the
   PR's head: a slower review of an outdated push never overwrites the newer result.
5. The check run is completed last, on its own head SHA, so it always says what was found
   for exactly that commit. Every failure path completes it too, as ``failure``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import gidgethub

from bot import github
from bot.analyze import AnalysisFailure, DiffResult, analyze
from bot.approvals import ApprovalStatus, Review, evaluate_approvals, reviewers_to_check
from bot.approvers import authorized_reviewers
from bot.client import DownloadTooLarge, GitHubClient
from bot.jobs import AnalysisTimeout
from bot.patches import PullFiles
from bot.render import (
    MARKER,
    CheckOutput,
    InputProblem,
    LineComment,
    ReviewContext,
    check_conclusion,
    render_check_output,
    render_comment,
    render_failure,
    render_line_comments,
    rule_marker,
)
from bot.settings import (
    SETTINGS_PATH,
    RepoSettings,
    SettingsError,
    describe_approvers,
    parse_repo_settings,
)
from bot.trees import TreeError, TreeLimits, read_tarball

if TYPE_CHECKING:
    from bot.context import BotContext, PullRequestRef

log = logging.getLogger(__name__)

CHECK_NAME = "reachdiff"
REVIEW_BODY = (
    "reachdiff: the rules commented on below open network paths that need approval "
    "(details in the pull request's reachdiff comment and check run)."
)


@dataclass(frozen=True, slots=True)
class CheckRun:
    id: int
    url: str | None


@dataclass(frozen=True, slots=True)
class Compared:
    base: str  # the commit whose tree is the "before"
    head: str  # the commit whose tree is the "after"
    settings_ref: str  # where .github/reachdiff.yml is read: the base branch
    description: str


@dataclass(frozen=True, slots=True)
class CachedReview:
    """An analysis of one head, kept so that approvals are re-evaluated without re-running."""

    diff: DiffResult
    context: ReviewContext  # approval is filled in per evaluation
    check_run: CheckRun
    author: str


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---- entry points (one job each) ------------------------------------------------------


async def review_pull_request(bot: BotContext, pr: PullRequestRef, head_sha: str | None) -> None:
    gh = await bot.client(pr.installation_id)
    pull = await github.get_pull(gh, pr.repo, pr.number)
    if pull.get("state") != "open":
        log.info("%s is %s; not reviewing", pr, pull.get("state"))
        return
    current = pull["head"]["sha"]
    if head_sha is not None and head_sha != current:
        log.info("%s: event for %s, reviewing the current head %s", pr, head_sha[:7], current[:7])
    check = await _start_check_run(gh, pr, current)
    try:
        await _review(bot, gh, pr, pull, check)
    except asyncio.CancelledError:
        # Superseded by a newer push: close this head's check rather than leave it pending.
        await asyncio.shield(
            _finish_quietly(
                gh,
                pr,
                check,
                "cancelled",
                CheckOutput(
                    title="Superseded by a newer push",
                    summary="A newer commit was pushed before this review finished; "
                    "see the check run on the latest commit.",
                ),
            )
        )
        raise
    except github.ListTruncated as err:
        output = CheckOutput(
            title="Too many reviews to read",
            summary=f"{err}: approvals cannot be verified, so the check fails.",
        )
        await _finish_quietly(gh, pr, check, "failure", output)
    except Exception as err:
        log.exception("%s: review failed", pr)
        await _finish_quietly(gh, pr, check, "failure", _internal_error(err))


async def reevaluate_approvals(bot: BotContext, pr: PullRequestRef, head_sha: str | None) -> None:
    gh = await bot.client(pr.installation_id)
    pull = await github.get_pull(gh, pr.repo, pr.number)
    if pull.get("state") != "open":
        return
    current = pull["head"]["sha"]
    cached = bot.reviews.get((*pr.key, current))
    if cached is None:
        # Restarted, evicted, or the event predates our review of this head: do it all.
        await review_pull_request(bot, pr, current)
        return
    try:
        approval = await _approval_status(
            bot, gh, pr, cached.context.settings, current, cached.author
        )
    except Exception as err:
        # The check may be green from an earlier evaluation: an approval that cannot be
        # re-checked (a revocation may be among what was not read) must not stay green.
        log.exception("%s: approvals could not be re-evaluated", pr)
        output = (
            CheckOutput(
                title="Too many reviews to read",
                summary=f"{err}: approvals cannot be verified, so the check fails.",
            )
            if isinstance(err, github.ListTruncated)
            else _internal_error(err)
        )
        await _finish_quietly(gh, pr, cached.check_run, "failure", output)
        return
    context = dataclasses.replace(cached.context, approval=approval)
    output = render_check_output(cached.diff, context)
    conclusion = check_conclusion(cached.diff, context)
    if await _still_head(gh, pr, current):
        await _upsert_sticky_comment(gh, pr, render_comment(cached.diff, context))
    # Annotations were sent with the first completion; PATCHing them again would add copies.
    await _finish(gh, pr, cached.check_run, conclusion, dataclasses.replace(output, annotations=()))


# ---- the review -----------------------------------------------------------------------


async def _review(
    bot: BotContext, gh: GitHubClient, pr: PullRequestRef, pull: dict[str, Any], check: CheckRun
) -> None:
    pull = await _with_mergeability(bot, gh, pr, pull)
    head_sha = pull["head"]["sha"]
    author = pull["user"]["login"]
    compared = await _compared_commits(gh, pr, pull)
    settings_text = await github.get_file_content(gh, pr.repo, SETTINGS_PATH, compared.settings_ref)
    context = ReviewContext(
        repository=pr.repo.full_name,
        server_url=_server_url(pull, pr),
        base_sha=compared.base,
        head_sha=head_sha,
        compared=compared.description,
        settings=RepoSettings(),
        settings_present=settings_text is not None,
        approval=None,
        approvers_description=describe_approvers(RepoSettings(), present=False),
        check_run_url=check.url,
        analysed_head_sha=compared.head if compared.head != head_sha else None,
    )
    try:
        settings = parse_repo_settings(settings_text)
    except SettingsError as err:
        message = f"{err.key}: {err.message}" if err.key else err.message
        problem = InputProblem(SETTINGS_PATH, err.line, message, tree="base")
        await _fail_input(gh, pr, check, context, f"Invalid {SETTINGS_PATH}", problem)
        return
    context = dataclasses.replace(
        context,
        settings=settings,
        approvers_description=describe_approvers(settings, present=settings_text is not None),
    )

    try:
        base_files, head_files = await _fetch_trees(bot, gh, pr, compared, settings)
    except TreeError as err:
        problem = InputProblem(err.path, None, err.message)
        await _fail_input(gh, pr, check, context, "Cannot read the manifests", problem)
        return
    except DownloadTooLarge as err:
        problem = InputProblem("", None, str(err))
        await _fail_input(gh, pr, check, context, "Repository archive too large", problem)
        return

    try:
        outcome = await bot.pool.run(
            analyze,
            base_files,
            head_files,
            bot.settings.analysis_timeout,
            settings.kustomize_roots,
            settings.helm_values,
            base_key=compared.base,
        )
    except AnalysisTimeout as err:
        outcome = AnalysisFailure("timeout", str(err))
    if isinstance(outcome, AnalysisFailure):
        await _fail_analysis(gh, pr, check, context, outcome)
        return

    approval = await _approval_status(bot, gh, pr, settings, head_sha, author)
    context = dataclasses.replace(context, approval=approval)
    bot.reviews[(*pr.key, head_sha)] = CachedReview(outcome, context, check, author)
    conclusion = check_conclusion(outcome, context)
    output = render_check_output(outcome, context)
    if await _still_head(gh, pr, head_sha):
        await _upsert_sticky_comment(gh, pr, render_comment(outcome, context))
        files = PullFiles.from_api(await github.list_pull_files(gh, pr.repo, pr.number))
        if compared.head != head_sha:
            # Lines come from the test merge commit; where the base branch changed a file
            # too, they may not be the head's lines: comment on such files as a whole.
            files = files.without_lines_in(_shifted_files(head_files, files.head_blobs))
        comments = render_line_comments(outcome, context, can_comment=files.can_comment)
        try:
            await _post_line_comments(gh, pr, head_sha, comments, files)
        except gidgethub.BadRequest as err:
            # GitHub may refuse a placement we thought valid; the sticky comment and the
            # check run carry the same findings, so the review goes on without them.
            log.warning("%s: line comments refused: %s", pr, err)
    await _finish(gh, pr, check, conclusion, output)


def _shifted_files(analysed: Mapping[str, bytes], head_blobs: Mapping[str, str]) -> list[str]:
    """Files whose analysed content differs from the head's (git blob ids compared)."""
    return [
        path
        for path, blob in head_blobs.items()
        if path in analysed and _git_blob_sha(analysed[path]) != blob
    ]


def _git_blob_sha(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


async def _with_mergeability(
    bot: BotContext, gh: GitHubClient, pr: PullRequestRef, pull: dict[str, Any]
) -> dict[str, Any]:
    """GitHub computes ``mergeable`` and the test merge commit in the background after a
    push (``null`` meanwhile); give it a moment before settling for the merge base."""
    for _ in range(bot.settings.mergeable_attempts - 1):
        if pull.get("mergeable") is not None:
            break
        await asyncio.sleep(bot.settings.mergeable_delay)
        fresh = await github.get_pull(gh, pr.repo, pr.number)
        if fresh["head"]["sha"] != pull["head"]["sha"]:
            break  # pushed meanwhile: this review stays on its head, the push brings another
        pull = fresh
    return pull


async def _compared_commits(gh: GitHubClient, pr: PullRequestRef, pull: dict[str, Any]) -> Compared:
    head = pull["head"]["sha"]
    merge = pull.get("merge_commit_sha")
    if pull.get("mergeable") and merge:
        parents = (await github.get_commit(gh, pr.repo, merge)).get("parents") or []
        if parents:
            base = parents[0]["sha"]  # the base branch head the merge was made on
            return Compared(
                base,
                merge,
                base,
                f"base branch head {base[:7]} vs test merge commit {merge[:7]}",
            )
    comparison = await github.compare_commits(gh, pr.repo, pull["base"]["sha"], head)
    base = comparison["merge_base_commit"]["sha"]
    return Compared(base, head, pull["base"]["sha"], f"merge base {base[:7]} vs head {head[:7]}")


async def _fetch_trees(
    bot: BotContext,
    gh: GitHubClient,
    pr: PullRequestRef,
    compared: Compared,
    settings: RepoSettings,
) -> tuple[dict[str, bytes], dict[str, bytes]]:
    limit = bot.settings.max_tarball_bytes
    base_tar, head_tar = await asyncio.gather(
        github.download_tarball(gh, pr.repo, compared.base, max_bytes=limit),
        github.download_tarball(gh, pr.repo, compared.head, max_bytes=limit),
    )
    limits = TreeLimits(
        max_file_bytes=bot.settings.max_file_bytes,
        max_total_bytes=bot.settings.max_total_bytes,
        max_files=bot.settings.max_files,
    )
    paths = settings.paths or None
    # Decompressing is CPU work: off the event loop, so other deliveries are answered.
    base_files = await asyncio.to_thread(read_tarball, base_tar, paths=paths, limits=limits)
    head_files = await asyncio.to_thread(read_tarball, head_tar, paths=paths, limits=limits)
    return base_files, head_files


async def _approval_status(
    bot: BotContext,
    gh: GitHubClient,
    pr: PullRequestRef,
    settings: RepoSettings,
    head_sha: str,
    author: str,
) -> ApprovalStatus:
    raw = await github.list_pull_reviews(gh, pr.repo, pr.number)
    reviews = [r for r in (Review.from_api(item) for item in raw) if r is not None]
    candidates = reviewers_to_check(reviews, head_sha=head_sha, author=author)
    pushers = await _head_pushers(bot, gh, pr, settings, head_sha) if candidates else ()
    authorized = await authorized_reviewers(gh, pr.repo, settings, candidates)
    return evaluate_approvals(
        reviews,
        head_sha=head_sha,
        author=author,
        is_authorized=lambda login: login in authorized,
        required=settings.required_approvals,
        pushers=pushers,
    )


async def _head_pushers(
    bot: BotContext, gh: GitHubClient, pr: PullRequestRef, settings: RepoSettings, head_sha: str
) -> tuple[str, ...] | None:
    """Whose approval does not count under ``exclude_last_pusher``: the sender of the
    ``opened``/``synchronize`` delivery of this head; when that was not seen (a restart),
    the head commit's author and committer as GitHub maps them to accounts; None when
    neither is known, and then no approval counts."""
    if not settings.exclude_last_pusher:
        return ()
    recorded = bot.pushers.get(pr, head_sha)
    if recorded is not None:
        return (recorded,)
    commit = await github.get_commit(gh, pr.repo, head_sha)
    logins = []
    for role in ("author", "committer"):
        account = commit.get(role)
        login = account.get("login") if isinstance(account, dict) else None
        # web-flow commits what people do in GitHub's web editor: it is never the pusher.
        if isinstance(login, str) and login and login != "web-flow":
            logins.append(login)
    return tuple(logins) or None


async def _still_head(gh: GitHubClient, pr: PullRequestRef, head_sha: str) -> bool:
    pull = await github.get_pull(gh, pr.repo, pr.number)
    if pull["head"]["sha"] != head_sha:
        log.info("%s moved on to %s; not posting for %s", pr, pull["head"]["sha"][:7], head_sha[:7])
        return False
    return True


def _server_url(pull: dict[str, Any], pr: PullRequestRef) -> str:
    html_url = str(pull.get("base", {}).get("repo", {}).get("html_url") or "")
    suffix = "/" + pr.repo.full_name
    if html_url.lower().endswith(suffix.lower()):
        return html_url[: -len(suffix)]
    return "https://github.com"


# ---- failures -------------------------------------------------------------------------


async def _fail_input(
    gh: GitHubClient,
    pr: PullRequestRef,
    check: CheckRun,
    context: ReviewContext,
    title: str,
    problem: InputProblem,
) -> None:
    comment, output = render_failure(
        context, title=title, message=problem.message, problems=[problem]
    )
    if await _still_head(gh, pr, context.head_sha):
        await _upsert_sticky_comment(gh, pr, comment)
    await _finish(gh, pr, check, "failure", output)


async def _fail_analysis(
    gh: GitHubClient,
    pr: PullRequestRef,
    check: CheckRun,
    context: ReviewContext,
    failure: AnalysisFailure,
) -> None:
    if failure.kind == "manifest":
        side = "pull request" if failure.tree == "head" else "base branch"
        problem = InputProblem(
            failure.file, failure.line or None, failure.message, tree=failure.tree or "head"
        )
        await _fail_input(gh, pr, check, context, f"Invalid manifest in the {side}", problem)
        return
    titles = {
        "timeout": "Analysis timed out",
        "memory": "Analysis ran out of memory",
        "unanalysed": "Part of the change could not be analysed",
    }
    title = titles.get(failure.kind, "Analysis failed")
    comment, output = render_failure(context, title=title, message=failure.message, problems=[])
    if await _still_head(gh, pr, context.head_sha):
        await _upsert_sticky_comment(gh, pr, comment)
    await _finish(gh, pr, check, "failure", output)


def _internal_error(err: BaseException) -> CheckOutput:
    return CheckOutput(
        title="reachdiff could not complete the review",
        summary=(
            "An internal error stopped the review, so the change is not verified. "
            "Re-run the check; if it persists, the app's logs have the details.\n\n"
            f"`{type(err).__name__}`"
        ),
    )


# ---- writes ---------------------------------------------------------------------------


async def _start_check_run(gh: GitHubClient, pr: PullRequestRef, head_sha: str) -> CheckRun:
    data = await github.create_check_run(
        gh,
        pr.repo,
        {
            "name": CHECK_NAME,
            "head_sha": head_sha,
            "status": "in_progress",
            "started_at": _now(),
            "output": {"title": "Analysing", "summary": "Computing the reachability change."},
        },
    )
    return CheckRun(int(data["id"]), data.get("html_url"))


async def _finish(
    gh: GitHubClient, pr: PullRequestRef, check: CheckRun, conclusion: str, output: CheckOutput
) -> None:
    await github.update_check_run(
        gh,
        pr.repo,
        check.id,
        {
            "status": "completed",
            "conclusion": conclusion,
            "completed_at": _now(),
            "output": output.to_api(),
        },
    )


async def _finish_quietly(
    gh: GitHubClient, pr: PullRequestRef, check: CheckRun, conclusion: str, output: CheckOutput
) -> None:
    """Complete the check run on a failure path; a second failure is only logged."""
    try:
        await _finish(gh, pr, check, conclusion, output)
    except Exception:
        log.exception("%s: could not complete check run %s", pr, check.id)


async def _upsert_sticky_comment(gh: GitHubClient, pr: PullRequestRef, body: str) -> None:
    for comment in await github.list_issue_comments(gh, pr.repo, pr.number):
        if _is_sticky(comment):
            if comment.get("body") != body:
                await github.update_issue_comment(gh, pr.repo, int(comment["id"]), body)
            return
    await github.create_issue_comment(gh, pr.repo, pr.number, body)


def _is_sticky(comment: dict[str, Any]) -> bool:
    # Only a bot's comment: a person quoting ours must not become the one we edit.
    user = comment.get("user") or {}
    return MARKER in str(comment.get("body") or "") and user.get("type") == "Bot"


async def _post_line_comments(
    gh: GitHubClient,
    pr: PullRequestRef,
    head_sha: str,
    comments: tuple[LineComment, ...],
    files: PullFiles,
) -> None:
    existing = await github.list_review_comments(gh, pr.repo, pr.number)
    posted = {rule_marker(str(c.get("body") or "")) for c in existing}
    fresh = [c for c in comments if c.marker not in posted]
    on_lines = [c for c in fresh if files.in_diff(c.path, c.line, c.side)]
    # File-level comments first and one at a time: a refused review must not take the
    # comments on rules outside the diff down with it.
    for c in fresh:
        if c not in on_lines and c.side == "RIGHT":
            try:
                await github.create_file_review_comment(
                    gh, pr.repo, pr.number, commit_id=head_sha, path=c.path, body=c.body
                )
            except gidgethub.HTTPException as err:
                log.warning("file comment on %s refused: %s", c.path, err)
    if on_lines:
        await github.create_review(
            gh,
            pr.repo,
            pr.number,
            commit_id=head_sha,
            body=REVIEW_BODY,
            comments=[
                {"path": c.path, "line": c.line, "side": c.side, "body": c.body} for c in on_lines
            ],
        )
