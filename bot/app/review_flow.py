"""One review of a pull request, end to end: reads, one plan, writes. No decisions here.

Order, and why:
1. The ``reachdiff (<base>)`` check run goes ``in_progress`` on the head first, so branch
   protection sees a pending check at once (``bot.app.checks``).
2. Settings come from the base branch head; a PR cannot loosen the rules it is judged by.
   What is compared is that base head with what merging would produce: GitHub's test merge
   commit when its parents are exactly [base head, PR head], else that merge built here
   file by file (``bot.inputs.mergetree``), else nothing and the check fails closed.
3. The engine runs in the process pool; its input is bounded by the tree limits.
4. The outcome is planned from what was read (``bot.plan``), then written
   (``bot.app.writes``): comments only while the analysed head is still the PR's head,
   the check run last. Every failure path completes it too, as ``failure``. A ``success``
   is written only after checking that the head and the base branch head are still the
   analysed ones (else the review is repeated).

Pull requests sharing both head and base get the strictest verdict of them all.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

from bot.app import facts, gate
from bot.app.checks import check_name, finish, finish_quietly, open_check_run
from bot.app.context import BotContext, PullRequestRef
from bot.app.facts import Compared
from bot.app.flowsource import read_flow_data
from bot.app.review_cache import CachedReview, CheckRun, ReviewKey
from bot.app.writes import perform, still_head, upsert_sticky_comment
from bot.github import rest as github
from bot.github.client import DownloadTooLarge, GitHubClient
from bot.inputs.analyze import AnalysisFailure, DiffResult
from bot.inputs.files import FilesError
from bot.inputs.mergetree import MergeConflict
from bot.plan import failures
from bot.plan.failures import COULD_NOT_MERGE
from bot.plan.review import (
    ReviewOutcome,
    analysed_delta,
    gated,
    needs_sibling_approvals,
    outdated,
    plan_review,
    settings_digest,
)
from bot.render.posts import CheckOutput, ReviewContext
from bot.review.breakglass import waived_gates
from bot.review.patches import PullFiles, shifted_files
from bot.review.settings import (
    SETTINGS_PATH,
    RepoSettings,
    SettingsError,
    describe_approvers,
    parse_repo_settings,
    path_ignored,
)

__all__ = ["COULD_NOT_MERGE", "reevaluate_approvals", "review_pull_request"]

log = logging.getLogger(__name__)


def review_key(
    pr: PullRequestRef, head_sha: str, base_head: str, settings_text: bytes | None
) -> ReviewKey:
    return (*pr.key, head_sha, base_head, settings_digest(settings_text))


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
    bot.reviewing[pr.key] = current
    try:
        await _review_head(bot, gh, pr, pull, current)
    finally:
        if bot.reviewing.get(pr.key) == current:
            del bot.reviewing[pr.key]


async def _review_head(
    bot: BotContext, gh: GitHubClient, pr: PullRequestRef, pull: dict[str, Any], head_sha: str
) -> None:
    check = await open_check_run(
        gh, pr, head_sha, check_name(pull["base"]["ref"]), lambda: _cancelled(bot)
    )
    try:
        await _review(bot, gh, pr, pull, check)
    except asyncio.CancelledError:
        await asyncio.shield(finish_quietly(gh, pr, check, *_cancelled(bot)))
        raise
    except github.ListTruncated as err:
        await finish_quietly(gh, pr, check, "failure", failures.too_many_reviews(err))
    except Exception as err:
        log.exception("%s: review failed", pr)
        await finish_quietly(gh, pr, check, "failure", failures.internal_error(err))


def _cancelled(bot: BotContext) -> tuple[str, CheckOutput]:
    return failures.interrupted(stopping=bot.jobs.closing)


async def reevaluate_approvals(bot: BotContext, pr: PullRequestRef, head_sha: str | None) -> None:
    """A review changed: re-judge the newest analysis of the current head against the
    current base branch head and settings. Anything else (no such analysis, or a newer
    check run on the head than the one it completed) gets a full review instead, so an
    approval never turns an older check run green."""
    gh = await bot.client(pr.installation_id)
    pull = await github.get_pull(gh, pr.repo, pr.number)
    if pull.get("state") != "open":
        return
    current = pull["head"]["sha"]
    base_ref = pull["base"]["ref"]
    base_head = await github.get_branch_head(gh, pr.repo, base_ref)
    settings_text = await github.get_file_content(gh, pr.repo, SETTINGS_PATH, base_head)
    cached = bot.reviews.get(review_key(pr, current, base_head, settings_text))
    if cached is None or cached.check_run.name != check_name(base_ref):
        # Restarted, evicted, or the base or settings moved since: do it all.
        await review_pull_request(bot, pr, current)
        return
    newest = await facts.newest_check_run_id(
        gh, pr, current, cached.check_run.name, bot.config.app_id
    )
    if newest != cached.check_run.id:
        await review_pull_request(bot, pr, current)
        return
    try:
        approval = await facts.approval_status(
            bot,
            gh,
            pr,
            cached.context.settings,
            current,
            cached.author,
            base_ref=base_ref,
            delta=gated(cached.diff, cached.context.settings, cached.settings_changed),
            diff=cached.diff,
            settings_changed=cached.settings_changed,
            analysed=analysed_delta(
                cached.diff, cached.context.settings, cached.settings_changed, settings_text
            ),
        )
    except Exception as err:
        # The check may be green from an earlier evaluation: an approval that cannot be
        # re-checked (a revocation may be among what was not read) must not stay green.
        log.exception("%s: approvals could not be re-evaluated", pr)
        output = (
            failures.too_many_reviews(err)
            if isinstance(err, github.ListTruncated)
            else failures.internal_error(err)
        )
        await finish_quietly(gh, pr, cached.check_run, "failure", output)
        return
    context = dataclasses.replace(cached.context, approval=approval)
    outcome = await _plan(
        bot, gh, pr, cached.diff, context, base_ref, cached.settings_changed, files=None
    )
    if outcome.conclusion == "success" and not await facts.still_current(
        gh, pr, current, base_ref, base_head
    ):
        outcome = outdated(outcome)
        bot.submit_review(pr, None, "moved during re-evaluation")
    if outcome.comment is not None and await still_head(gh, pr, current):
        await upsert_sticky_comment(bot, gh, pr, outcome.comment)
    # Annotations were sent with the first completion; PATCHing them again would add copies.
    output = dataclasses.replace(outcome.output, annotations=())
    await finish(gh, pr, cached.check_run, outcome.conclusion, output)
    if outcome.conclusion == "success":
        gates = waived_gates(
            cached.diff, context.settings, settings_changed=cached.settings_changed
        )
        await gate.audit_override(bot, pr, current, base_ref, approval, gates)


# ---- the review -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Analysed:
    """What one review read and the engine made of it."""

    diff: DiffResult
    context: ReviewContext  # settings, base error and accepted unread filled in
    settings_text: bytes | None
    head_files: dict[str, bytes]


async def analyse(
    bot: BotContext,
    gh: GitHubClient,
    pr: PullRequestRef,
    compared: Compared,
    context: ReviewContext,
    *,
    with_flows: bool = False,
) -> Analysed | ReviewOutcome:
    """Settings, both trees and the engine run, shared by pull requests and merge groups;
    a ``ReviewOutcome`` (a failure) when any of them cannot be read. ``with_flows``: read
    the observed traffic the settings name too (pull requests)."""
    settings_text = await github.get_file_content(gh, pr.repo, SETTINGS_PATH, compared.settings_ref)
    context = dataclasses.replace(context, settings_present=settings_text is not None)
    try:
        settings = parse_repo_settings(settings_text)
    except SettingsError as err:
        # The check run's annotation points into the head: only where the file is the same.
        same_on_head = err.line is not None and settings_text == (
            await github.get_file_content(gh, pr.repo, SETTINGS_PATH, context.head_sha)
        )
        return failures.invalid_settings(context, err, same_on_head=same_on_head)
    context = dataclasses.replace(
        context,
        settings=settings,
        approvers_description=describe_approvers(settings, present=settings_text is not None),
    )
    try:
        base_files, base_error, head_files, unread = await facts.fetch_files(
            bot, gh, pr, compared, settings
        )
    except FilesError as err:
        return failures.unreadable_files(context, err)
    except DownloadTooLarge as err:
        return failures.archive_too_large(context, str(err))
    except MergeConflict as err:
        return failures.merge_conflict(context, err)
    failing = [(side, u) for side, u in unread if not path_ignored(settings, u.path)]
    if failing:
        return failures.not_analysed(context, failing)
    # Each accepted path once: as the head has it, else as the base had it.
    accepted: dict[str, str] = {}
    for side, u in sorted(unread, key=lambda su: su[0] != "head"):
        accepted.setdefault(u.path, f"{u}" + (" (base branch)" if side == "base" else ""))
    context = dataclasses.replace(context, ignored_unread=tuple(accepted.values()))
    flows = None
    if with_flows:
        # The flow data the base branch's settings name (never the pull request's).
        flows, flow_data = await read_flow_data(
            bot.session, gh, pr.repo, settings, compared.settings_ref
        )
        context = dataclasses.replace(context, flow_data=flow_data)
    result = await facts.run_analysis(
        bot, settings, base_files, head_files, compared.base, base_error, flows=flows
    )
    if isinstance(result, AnalysisFailure):
        # A file the pull request leaves as the base branch has it is not its breakage.
        before = base_files.get(result.file) if base_files is not None else None
        unchanged = before is not None and before == head_files.get(result.file)
        return failures.analysis_failed(context, result, unchanged=unchanged)
    context = dataclasses.replace(context, base_error=result.base_error)
    return Analysed(result, context, settings_text, head_files)


def review_context(
    pr: PullRequestRef, compared: Compared, head_sha: str, server_url: str, check: CheckRun
) -> ReviewContext:
    """The context before the settings are read: the defaults'."""
    return ReviewContext(
        repository=pr.repo.full_name,
        server_url=server_url,
        base_sha=compared.base,
        head_sha=head_sha,
        compared=compared.description,
        settings=RepoSettings(),
        settings_present=False,
        approval=None,
        approvers_description=describe_approvers(RepoSettings(), present=False),
        check_run_url=check.url,
        analysed_head_sha=compared.head if compared.head != head_sha else None,
    )


async def _review(
    bot: BotContext, gh: GitHubClient, pr: PullRequestRef, pull: dict[str, Any], check: CheckRun
) -> None:
    head_sha = pull["head"]["sha"]
    base_ref = pull["base"]["ref"]
    author = pull["user"]["login"]
    compared = await facts.what_merges(bot, gh, pr, pull)
    context = review_context(pr, compared, head_sha, facts.server_url(pull, pr), check)
    analysed = await analyse(bot, gh, pr, compared, context, with_flows=True)
    if isinstance(analysed, ReviewOutcome):
        await perform(bot, gh, pr, check, analysed, head_sha=head_sha)
        return
    diff, context = analysed.diff, analysed.context
    settings_changed = await facts.settings_changed(
        gh, pr, compared, head_sha, analysed.settings_text
    )
    delta_now = analysed_delta(diff, context.settings, settings_changed, analysed.settings_text)
    approval = await facts.approval_status(
        bot,
        gh,
        pr,
        context.settings,
        head_sha,
        author,
        base_ref=base_ref,
        delta=gated(diff, context.settings, settings_changed),
        diff=diff,
        settings_changed=settings_changed,
        analysed=delta_now,
    )
    context = dataclasses.replace(context, approval=approval)
    key = review_key(pr, head_sha, compared.base, analysed.settings_text)
    bot.reviews[key] = CachedReview(diff, context, check, author, settings_changed)
    files = PullFiles.from_api(await github.list_pull_files(gh, pr.repo, pr.number))
    if compared.head != head_sha:
        # Lines come from the test merge commit; where the base branch changed a file
        # too, they may not be the head's lines: comment on such files as a whole.
        files = files.without_lines_in(shifted_files(analysed.head_files, files.head_blobs))
    outcome = await _plan(
        bot, gh, pr, diff, context, base_ref, settings_changed, files=files, analysed=delta_now
    )
    if outcome.conclusion == "success" and not await facts.still_current(
        gh, pr, head_sha, base_ref, compared.base
    ):
        outcome = outdated(outcome)
        bot.submit_review(pr, None, "moved during the review")
    await perform(bot, gh, pr, check, outcome, head_sha=head_sha, files=files)
    if outcome.conclusion == "success":
        gates = waived_gates(diff, context.settings, settings_changed=settings_changed)
        await gate.audit_override(bot, pr, head_sha, base_ref, approval, gates)


async def _plan(
    bot: BotContext,
    gh: GitHubClient,
    pr: PullRequestRef,
    diff: DiffResult,
    context: ReviewContext,
    base_ref: str,
    settings_changed: bool,
    *,
    files: PullFiles | None,
    analysed: str | None = None,
) -> ReviewOutcome:
    """The plan, after reading the approvals of the pull requests sharing this check run
    when the outcome hinges on them."""
    lacking: list[int] = []
    if needs_sibling_approvals(diff, context, settings_changed=settings_changed):
        lacking = await facts.lacking_siblings(
            bot, gh, pr, diff, context, base_ref=base_ref, settings_changed=settings_changed
        )
    return plan_review(
        diff,
        context,
        settings_changed=settings_changed,
        base_ref=base_ref,
        lacking=lacking,
        files=files,
        analysed=analysed,
    )
