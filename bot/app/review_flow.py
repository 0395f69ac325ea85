"""One review of a pull request, end to end: the orchestration, with no decisions of its own.

A check run belongs to a commit, and several pull requests (into several bases) can share
a head commit. So the check is named after the base branch (``reachdiff (main)``): on a
head it says what merging that head into that base's *current* head does, judged by that
base's settings, and no review of a pull request into another base can touch it. Pull
requests sharing both head and base get the strictest verdict of them all.

Order of writes, and why:
1. The ``reachdiff (<base>)`` check run goes ``in_progress`` on the head first, so branch
   protection sees a pending check at once.
2. Settings come from the base branch head; a PR cannot loosen the rules it is judged by.
   What is compared is that base head with what merging would produce: GitHub's test merge
   commit when its parents are exactly [base head, PR head], else that merge built here
   file by file (``bot.inputs.mergetree``), else nothing and the check fails closed.
3. The engine runs in the process pool; its input is bounded by the tree limits.
4. The sticky comment and the review are written only while the analysed head is still the
   PR's head: a slower review of an outdated push never overwrites the newer result.
5. The check run is completed last, on its own head SHA, so it always says what was found
   for exactly that commit. Every failure path completes it too, as ``failure``. A
   ``success`` is written only after checking that the head and the base branch head are
   still the analysed ones (else the review is repeated).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import gidgethub

from analysis.flowsummary import FlowSummary
from bot.app import gate
from bot.app.context import BotContext, PullRequestRef
from bot.app.flowsource import read_flow_data
from bot.app.jobs import AnalysisTimeout
from bot.app.review_cache import CHECK_NAME, CachedReview, CheckRun, ReviewKey
from bot.github import rest as github
from bot.github.client import DownloadTooLarge, GitHubClient
from bot.inputs.analyze import AnalysisFailure, DiffResult, analyze
from bot.inputs.mergetree import MergeConflict, merged_tree
from bot.inputs.trees import (
    TreeEntry,
    TreeError,
    TreeLimits,
    Unread,
    lfs_pointers,
    read_tarball,
    unread_in_listing,
)
from bot.render.posts import (
    COMMENT_LIMIT,
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
from bot.review.approvals import ApprovalStatus
from bot.review.breaks import breaks_lines
from bot.review.declared import approval_lines, lint_config
from bot.review.patches import PullFiles
from bot.review.settings import (
    SETTINGS_PATH,
    RepoSettings,
    SettingsError,
    describe_approvers,
    parse_repo_settings,
    path_ignored,
)
from bot.review.verdict import analysed_digest, assess, gated_digest

log = logging.getLogger(__name__)

COULD_NOT_MERGE = "Could not determine what will merge; re-run"


def check_name(base_ref: str) -> str:
    """The check run of pull requests into ``base_ref`` (what branch protection requires)."""
    return f"{CHECK_NAME} ({base_ref})"


def is_our_check_name(name: str) -> bool:
    return name == CHECK_NAME or (name.startswith(f"{CHECK_NAME} (") and name.endswith(")"))


REVIEW_BODY = (
    "reachdiff: the rules commented on below open network paths that need approval "
    "(details in the pull request's reachdiff comment and check run)."
)


@dataclass(frozen=True, slots=True)
class Compared:
    base: str  # the base branch head: the "before"
    head: str  # the commit whose tree is the "after" (the test merge commit, or the PR head)
    settings_ref: str  # where .github/reachdiff.yml is read: the base branch head
    description: str
    # Set when GitHub's test merge commit was not usable: the "after" tree is ``base`` plus
    # the pull request's changes since this merge base, merged here (bot.mergetree).
    merge_base: str | None = None


def settings_digest(text: bytes | None) -> str:
    return "absent" if text is None else hashlib.sha256(text).hexdigest()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _shown_id(digest: str, analysed: str) -> str:
    """What this review showed, recorded in its check run (``bot.app.gate.shown_id``)."""
    return gate.shown_id(digest, analysed, _now())


def _analysed(
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


def _gated(diff: DiffResult, settings: RepoSettings, settings_changed: bool) -> str | None:
    """The digest approvals must have seen (None: nothing needs approval)."""
    assessment = assess(diff, settings)
    # intents (docs/intents.md) and observed flows a closed path carried (docs/traffic.md)
    declared = approval_lines(diff) + breaks_lines(diff, settings)
    if not (settings_changed or assessment.needs_approval or declared):
        return None
    return gated_digest(assessment, settings_changed=settings_changed, declared=declared)


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
    check = await _open_check_run(
        gh, pr, head_sha, check_name(pull["base"]["ref"]), lambda: _cancelled(bot)
    )
    try:
        await _review(bot, gh, pr, pull, check)
    except asyncio.CancelledError:
        await asyncio.shield(_finish_quietly(gh, pr, check, *_cancelled(bot)))
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


async def _open_check_run(
    gh: GitHubClient,
    pr: PullRequestRef,
    head_sha: str,
    name: str,
    on_cancel: Callable[[], tuple[str, CheckOutput]],
) -> CheckRun:
    """Create the in-progress run. Shielded: a cancellation while GitHub creates it must
    not lose the run's id, or the run would stay in progress (and GitHub offers no
    "Re-run" on those); it is completed as ``on_cancel()`` says instead."""
    creating = asyncio.ensure_future(_start_check_run(gh, pr, head_sha, name))
    try:
        return await asyncio.shield(creating)
    except asyncio.CancelledError:
        try:
            check = await creating
        except Exception:
            log.exception("%s: creating the check run failed while cancelled", pr)
            raise asyncio.CancelledError from None
        await asyncio.shield(_finish_quietly(gh, pr, check, *on_cancel()))
        raise


def _cancelled(bot: BotContext) -> tuple[str, CheckOutput]:
    """How a cancelled review's check run completes: ``cancelled`` when a newer push
    superseded it; ``failure`` when the server is stopping, since this head is still the
    one branch protection reads until it is reviewed again."""
    if bot.jobs.closing:
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
    newest = await _newest_check_run_id(gh, pr, current, cached.check_run.name, bot.settings.app_id)
    if newest != cached.check_run.id:
        await review_pull_request(bot, pr, current)
        return
    try:
        approval = await _approval_status(
            bot,
            gh,
            pr,
            cached.context.settings,
            current,
            cached.author,
            base_ref=base_ref,
            delta=_gated(cached.diff, cached.context.settings, cached.settings_changed),
            diff=cached.diff,
            settings_changed=cached.settings_changed,
            analysed=_analysed(
                cached.diff, cached.context.settings, cached.settings_changed, settings_text
            ),
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
    conclusion: str = check_conclusion(cached.diff, context)
    conclusion, output, note = await _strictest(
        bot, gh, pr, cached.diff, context, conclusion, output, base_ref, cached.settings_changed
    )
    if conclusion == "success" and not await _still_current(gh, pr, current, base_ref, base_head):
        conclusion, output = "failure", _outdated(output)
        bot.submit_review(pr, None, "moved during re-evaluation")
    if await _still_head(gh, pr, current):
        comment = _with_note(render_comment(cached.diff, context), note)
        await _upsert_sticky_comment(bot, gh, pr, comment)
    # Annotations were sent with the first completion; PATCHing them again would add copies.
    await _finish(gh, pr, cached.check_run, conclusion, dataclasses.replace(output, annotations=()))
    if conclusion == "success":
        await gate.audit_override(bot, pr, current, base_ref, approval)


def review_key(
    pr: PullRequestRef, head_sha: str, base_head: str, settings_text: bytes | None
) -> ReviewKey:
    return (*pr.key, head_sha, base_head, settings_digest(settings_text))


# ---- the review -----------------------------------------------------------------------


async def _review(
    bot: BotContext, gh: GitHubClient, pr: PullRequestRef, pull: dict[str, Any], check: CheckRun
) -> None:
    head_sha = pull["head"]["sha"]
    base_ref = pull["base"]["ref"]
    author = pull["user"]["login"]
    compared = await _what_merges(bot, gh, pr, pull)
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
        await _fail_input(bot, gh, pr, check, context, f"Invalid {SETTINGS_PATH}", problem)
        return
    context = dataclasses.replace(
        context,
        settings=settings,
        approvers_description=describe_approvers(settings, present=settings_text is not None),
    )

    try:
        base_files, base_error, head_files, unread = await _fetch_trees(
            bot, gh, pr, compared, settings
        )
    except TreeError as err:
        problem = InputProblem(err.path, None, err.message, tree="head")
        await _fail_input(bot, gh, pr, check, context, "Cannot read the manifests", problem)
        return
    except DownloadTooLarge as err:
        problem = InputProblem("", None, str(err), tree="")
        await _fail_input(bot, gh, pr, check, context, "Repository archive too large", problem)
        return
    except MergeConflict as err:
        message = (
            f"could not determine what will merge; re-run: GitHub's test merge commit of the "
            f"base branch head {compared.base[:7]} and the head {head_sha[:7]} is not "
            f"available, and merging them file by file is not possible: {err}. Update the "
            "branch (or wait for GitHub) and re-run the check."
        )
        await _fail_input(
            bot, gh, pr, check, context, COULD_NOT_MERGE, InputProblem(err.paths[0], None, message)
        )
        return
    settings_changed = await _settings_changed(gh, pr, compared, head_sha, settings_text)

    failing = [(side, u) for side, u in unread if not path_ignored(settings, u.path)]
    if failing:
        comment, output = _not_analysed(context, failing)
        if await _still_head(gh, pr, context.head_sha):
            await _upsert_sticky_comment(bot, gh, pr, comment)
        await _finish(gh, pr, check, "failure", output)
        return
    # Each accepted path once: as the head has it, else as the base had it.
    accepted: dict[str, str] = {}
    for side, u in sorted(unread, key=lambda su: su[0] != "head"):
        accepted.setdefault(u.path, f"{u}" + (" (base branch)" if side == "base" else ""))
    context = dataclasses.replace(context, ignored_unread=tuple(accepted.values()))

    # The flow data the base branch's settings name (never the pull request's).
    flows, flow_data = await read_flow_data(
        bot.session, gh, pr.repo, settings, compared.settings_ref
    )
    context = dataclasses.replace(context, flow_data=flow_data)
    outcome = await _analyze(
        bot, settings, base_files, head_files, compared.base, base_error, flows=flows
    )
    if isinstance(outcome, AnalysisFailure):
        await _fail_analysis(bot, gh, pr, check, context, outcome)
        return
    context = dataclasses.replace(context, base_error=outcome.base_error)

    delta = _gated(outcome, settings, settings_changed)
    analysed = _analysed(outcome, settings, settings_changed, settings_text)
    approval = await _approval_status(
        bot,
        gh,
        pr,
        settings,
        head_sha,
        author,
        base_ref=base_ref,
        delta=delta,
        diff=outcome,
        settings_changed=settings_changed,
        analysed=analysed,
    )
    context = dataclasses.replace(context, approval=approval)
    key = review_key(pr, head_sha, compared.base, settings_text)
    bot.reviews[key] = CachedReview(outcome, context, check, author, settings_changed)
    conclusion: str = check_conclusion(outcome, context)
    output = render_check_output(outcome, context)
    conclusion, output, note = await _strictest(
        bot, gh, pr, outcome, context, conclusion, output, base_ref, settings_changed
    )
    if conclusion == "success" and not await _still_current(
        gh, pr, head_sha, base_ref, compared.base
    ):
        conclusion, output = "failure", _outdated(output)
        bot.submit_review(pr, None, "moved during the review")
    if await _still_head(gh, pr, head_sha):
        await _upsert_sticky_comment(
            bot, gh, pr, _with_note(render_comment(outcome, context), note)
        )
        files = PullFiles.from_api(await github.list_pull_files(gh, pr.repo, pr.number))
        if compared.head != head_sha:
            # Lines come from the test merge commit; where the base branch changed a file
            # too, they may not be the head's lines: comment on such files as a whole.
            files = files.without_lines_in(_shifted_files(head_files, files.head_blobs))
        comments = render_line_comments(outcome, context, can_comment=files.can_comment)
        try:
            await _post_line_comments(bot, gh, pr, head_sha, comments, files)
        except gidgethub.BadRequest as err:
            # GitHub may refuse a placement we thought valid; the sticky comment and the
            # check run carry the same findings, so the review goes on without them.
            log.warning("%s: line comments refused: %s", pr, err)
    shown = gated_digest(
        assess(outcome, settings),
        settings_changed=settings_changed,
        declared=approval_lines(outcome) + breaks_lines(outcome, settings),
    )
    await _finish(gh, pr, check, conclusion, output, external_id=_shown_id(shown, analysed))
    if conclusion == "success":
        await gate.audit_override(bot, pr, head_sha, base_ref, approval)


async def _strictest(
    bot: BotContext,
    gh: GitHubClient,
    pr: PullRequestRef,
    diff: DiffResult,
    context: ReviewContext,
    conclusion: str,
    output: CheckOutput,
    base_ref: str,
    settings_changed: bool,
) -> tuple[str, CheckOutput, str | None]:
    """Tighten a ``success`` that rests on this pull request's approvals; the third value
    says why, for the sticky comment (None: nothing tightened).

    - A change to ``.github/reachdiff.yml`` needs the same approval as a widening: it
      changes the rules every later pull request is judged by.
    - Other open pull requests with the same head and base share this check run, so each
      of them needs the approvals too (the strictest verdict of them all).
    """
    approval = context.approval
    if settings_changed and (approval is None or not approval.satisfied):
        missing = approval.missing if approval is not None else 1
        why = (
            f"This pull request changes `{SETTINGS_PATH}`, the rules later reviews are "
            f"judged by, so it needs approval from {context.approvers_description} "
            "like a widening does."
        )
        title = f"Changes {SETTINGS_PATH}: needs {missing} more approval(s)"
        return "failure", _prepend(output, title, why), why
    if conclusion != "success":
        return conclusion, output, None
    if not (
        settings_changed or assess(diff, context.settings).needs_approval or approval_lines(diff)
    ):
        return conclusion, output, None
    lacking = []
    # Every open pull request into the base (commits/{sha}/pulls would miss them when the
    # head is a commit of the default branch: it then lists only the merged one).
    for other in await github.list_open_pulls(gh, pr.repo, base_ref):
        if int(other["number"]) == pr.number or other["head"]["sha"] != context.head_sha:
            continue
        sibling = dataclasses.replace(pr, number=int(other["number"]))
        status = await _approval_status(
            bot,
            gh,
            sibling,
            context.settings,
            context.head_sha,
            other["user"]["login"],
            base_ref=base_ref,
            delta=_gated(diff, context.settings, settings_changed),
            diff=diff,
            settings_changed=settings_changed,
        )
        if not status.satisfied:
            lacking.append(int(other["number"]))
    if not lacking:
        return conclusion, output, None
    numbers = ", ".join(f"#{n}" for n in sorted(lacking))
    why = (
        f"Pull request(s) {numbers} merge this same commit into `{base_ref}` and share this "
        "check run, but lack the approvals this change needs: each must be approved (or "
        "closed) before the check passes."
    )
    title = f"Needs approval on {numbers} too (same head and base)"
    return "failure", _prepend(output, title, why), why


def _with_note(comment: str, note: str | None) -> str:
    """The sticky comment, with why the check is stricter than the comment's verdict."""
    if note is None:
        return comment
    noted = f"{comment.rstrip()}\n\n> [!IMPORTANT]\n> {note}\n"
    return noted if len(noted) <= COMMENT_LIMIT else comment


def _prepend(output: CheckOutput, title: str, why: str) -> CheckOutput:
    return dataclasses.replace(
        output, title=title[:255], summary=f"**{why}**\n\n{output.summary}"[:65535]
    )


def _outdated(output: CheckOutput) -> CheckOutput:
    return _prepend(
        output,
        "Outdated: the head or the base branch moved during the review",
        "The pull request's head or its base branch moved while this was being reviewed, "
        "so this result is not about what would merge now; a new review follows.",
    )


async def _settings_changed(
    gh: GitHubClient,
    pr: PullRequestRef,
    compared: Compared,
    head_sha: str,
    base_text: bytes | None,
) -> bool:
    """Does merging change ``.github/reachdiff.yml``? (From the merge base when the merge
    was built here: a change only the base branch made is not the pull request's.)"""
    before = base_text
    if compared.merge_base is not None:
        before = await github.get_file_content(gh, pr.repo, SETTINGS_PATH, compared.merge_base)
    after = await github.get_file_content(
        gh, pr.repo, SETTINGS_PATH, head_sha if compared.merge_base else compared.head
    )
    return before != after


async def _still_current(
    gh: GitHubClient, pr: PullRequestRef, head_sha: str, base_ref: str, base_head: str
) -> bool:
    """The pull request is open with the analysed head, base and base branch head."""
    pull = await github.get_pull(gh, pr.repo, pr.number)
    if (
        pull.get("state") != "open"
        or pull["head"]["sha"] != head_sha
        or pull["base"]["ref"] != base_ref
    ):
        return False
    return await github.get_branch_head(gh, pr.repo, base_ref) == base_head


async def _newest_check_run_id(
    gh: GitHubClient, pr: PullRequestRef, head_sha: str, name: str, app_id: str
) -> int | None:
    runs = await github.list_check_runs(gh, pr.repo, head_sha, name, app_id=app_id)
    ours = [int(r["id"]) for r in runs if r.get("name") == name]
    return max(ours, default=None)


def _shifted_files(analysed: Mapping[str, bytes], head_blobs: Mapping[str, str]) -> list[str]:
    """Files whose analysed content differs from the head's (git blob ids compared)."""
    return [
        path
        for path, blob in head_blobs.items()
        if path in analysed and _git_blob_sha(analysed[path]) != blob
    ]


def _git_blob_sha(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


async def _what_merges(
    bot: BotContext, gh: GitHubClient, pr: PullRequestRef, pull: dict[str, Any]
) -> Compared:
    """The base branch head now, and what merging the pull request into it produces.

    GitHub's test merge commit counts only when its parents are exactly [base branch head,
    pull request head]: GitHub computes it in the background (``mergeable: null``
    meanwhile), and an older one merges an older base. While it is missing or stale, ask
    again (``mergeable_attempts``); then merge here (``Compared.merge_base``).
    """
    head = pull["head"]["sha"]
    base_ref = pull["base"]["ref"]
    attempts = max(1, bot.settings.mergeable_attempts)
    for attempt in range(1, attempts + 1):
        base_head = await github.get_branch_head(gh, pr.repo, base_ref)
        merge = pull.get("merge_commit_sha")
        # The parents are the proof; ``mergeable`` may still say null while they match.
        if pull.get("mergeable") is not False and merge:
            try:
                commit = await github.get_commit(gh, pr.repo, merge)
            except gidgethub.BadRequest as err:  # gone already (superseded and collected)
                log.info("%s: test merge commit %s unreadable: %s", pr, merge[:7], err)
                commit = {}
            parents = [str(p.get("sha")) for p in commit.get("parents") or []]
            if parents == [base_head, head]:
                return Compared(
                    base_head,
                    merge,
                    base_head,
                    f"base branch head {base_head[:7]} vs test merge commit {merge[:7]}",
                )
            log.info(
                "%s: test merge commit %s merges %s, not the current heads", pr, merge[:7], parents
            )
        if pull.get("mergeable") is False or attempt == attempts:
            break  # conflicts (GitHub has no merge commit to offer), or out of patience
        await asyncio.sleep(bot.settings.mergeable_delay)
        fresh = await github.get_pull(gh, pr.repo, pr.number)
        if fresh["head"]["sha"] != head or fresh["base"]["ref"] != base_ref:
            break  # moved meanwhile: this review stays on its head, the push brings another
        pull = fresh
    comparison = await github.compare_commits(gh, pr.repo, base_head, head)
    merge_base = str(comparison["merge_base_commit"]["sha"])
    return Compared(
        base_head,
        head,
        base_head,
        f"base branch head {base_head[:7]} vs it merged with head {head[:7]} "
        f"(merged by reachdiff from merge base {merge_base[:7]})",
        merge_base=merge_base,
    )


async def _analyze(
    bot: BotContext,
    settings: RepoSettings,
    base_files: Mapping[str, bytes] | None,
    head_files: Mapping[str, bytes],
    base_key: str,
    base_error: str,
    flows: FlowSummary | None = None,
) -> DiffResult | AnalysisFailure:
    """The engine run in the analysis pool, under every setting that decides its result
    (pull requests and merge groups alike); a timeout is a failure like any other."""
    try:
        return await bot.pool.run(
            analyze,
            base_files,
            head_files,
            bot.settings.analysis_timeout,
            settings.kustomize_roots,
            settings.helm_values,
            base_key=base_key,
            base_error=base_error,
            cluster_scope=settings.cluster_scope,
            ignore_kinds=settings.ignore_kinds,
            workload_kinds=settings.workload_kinds,
            lint_config=lint_config(settings),
            flows=flows,
        )
    except AnalysisTimeout as err:
        return AnalysisFailure("timeout", str(err))


async def _fetch_trees(
    bot: BotContext,
    gh: GitHubClient,
    pr: PullRequestRef,
    compared: Compared,
    settings: RepoSettings,
) -> tuple[dict[str, bytes] | None, str, dict[str, bytes], list[tuple[str, Unread]]]:
    """The manifests before (base branch head) and after merging, and what inside
    ``paths`` each readable commit's archive does not show (by side). A base that cannot be
    read is None with the reason (``base: ...``), so that the pull request fixing it is
    still reviewed: its head is then analysed on its own. Raises ``TreeError`` for a head
    (or merge base) that cannot be read, ``MergeConflict``."""
    limit = bot.settings.max_tarball_bytes
    shas = list(dict.fromkeys(s for s in (compared.base, compared.head, compared.merge_base) if s))
    fetched = await asyncio.gather(
        *(github.download_tarball(gh, pr.repo, sha, max_bytes=limit) for sha in shas),
        # The git trees list submodules and every committed file: what archives leave out.
        *(github.get_tree(gh, pr.repo, sha) for sha in shas),
    )
    limits = TreeLimits(
        max_file_bytes=bot.settings.max_file_bytes,
        max_total_bytes=bot.settings.max_total_bytes,
        max_files=bot.settings.max_files,
    )
    paths = settings.paths or None
    archives = cast("list[bytes]", fetched[: len(shas)])
    listings = cast("list[dict[str, Any]]", fetched[len(shas) :])
    trees: dict[str, dict[str, bytes]] = {}
    unreadable: dict[str, TreeError] = {}
    unread: list[tuple[str, Unread]] = []
    for sha, archive, listing in zip(shas, archives, listings, strict=True):
        # Decompressing is CPU work: off the event loop, so other deliveries are answered.
        try:
            trees[sha] = await asyncio.to_thread(read_tarball, archive, paths=paths, limits=limits)
        except TreeError as err:
            unreadable[sha] = err
            continue
        side = "head" if sha == compared.head else "base"
        unread += [
            (side, u) for u in _unread(listing, trees[sha], paths) if (side, u) not in unread
        ]
    if compared.head in unreadable:
        raise unreadable[compared.head]
    if compared.base in unreadable:
        return None, f"base: {unreadable[compared.base]}", trees[compared.head], unread
    base_files, head_files = trees[compared.base], trees[compared.head]
    if compared.merge_base is not None:
        if compared.merge_base in unreadable:
            raise unreadable[compared.merge_base]
        head_files = merged_tree(trees[compared.merge_base], base_files, head_files)
    return base_files, "", head_files, unread


def _not_analysed(
    context: ReviewContext, failing: list[tuple[str, Unread]]
) -> tuple[str, CheckOutput]:
    """The comment and check output naming what inside ``paths`` could not be seen."""
    problems = [
        InputProblem(
            "",
            None,
            f"not analysed: {u}" + (" (base branch)" if side == "base" else ""),
            tree=side,
        )
        for side, u in failing
    ]
    return render_failure(
        context,
        title="Part of the repository could not be analysed",
        message="Inside the reviewed `paths`, reachdiff cannot see what these hold, so the "
        "change is not verified. To accept that on purpose, name them in `ignore_paths` in "
        f"{SETTINGS_PATH} on the base branch.",
        problems=problems,
    )


def _unread(
    listing: Mapping[str, Any], files: Mapping[str, bytes], paths: tuple[str, ...] | None
) -> list[Unread]:
    if listing.get("truncated"):
        # Could be walked directory by directory; until then, never assume it is complete.
        return [
            Unread(
                ".",
                "the repository's tree is too large for GitHub to list in one answer, so "
                "submodules and files left out of the archive cannot be ruled out",
            )
        ]
    entries = [
        TreeEntry(str(e["path"]), str(e["mode"]), str(e["type"]), str(e["sha"]))
        for e in listing.get("tree") or []
    ]
    return unread_in_listing(entries, files, paths) + lfs_pointers(files)


async def _approval_status(
    bot: BotContext,
    gh: GitHubClient,
    pr: PullRequestRef,
    settings: RepoSettings,
    head_sha: str,
    author: str,
    *,
    base_ref: str,
    delta: str | None,
    diff: DiffResult | None = None,
    settings_changed: bool = False,
    analysed: str | None = None,
) -> ApprovalStatus:
    """``delta``: the gated delta now (``_gated``); an approval counts only if its
    approver could have seen that delta on this head in ``reachdiff (base_ref)``. With
    ``diff``, owner rules divide its gated paths; with ``analysed``, approvals of older
    commits may carry over (``bot.app.gate``)."""
    return await gate.approval_status(
        gh,
        pr.repo,
        pr.number,
        settings,
        head_sha,
        author,
        run_name=check_name(base_ref),
        app_id=bot.settings.app_id,
        delta=delta,
        pushers=lambda: _head_pushers(bot, gh, pr, settings, head_sha),
        approvers_description=describe_approvers(settings, present=True),
        diff=diff,
        settings_changed=settings_changed,
        analysed=analysed,
    )


async def _head_pushers(
    bot: BotContext, gh: GitHubClient, pr: PullRequestRef, settings: RepoSettings, head_sha: str
) -> tuple[str, ...] | None:
    """Whose approval does not count under ``exclude_last_pusher``: the sender of the
    ``synchronize`` delivery of this head; else (only an ``opened`` seen, or nothing, after
    a restart) that sender and the head commit's author and committer as GitHub maps them
    to accounts; None when nobody is known, and then no approval counts."""
    if not settings.exclude_last_pusher:
        return ()
    recorded = bot.pushers.get(pr, head_sha)
    if recorded is not None and recorded[1]:
        return (recorded[0],)
    # Unknown, or only who opened the pull request (someone else may have pushed its
    # commits): the head commit's author and committer are excluded too.
    logins = [recorded[0]] if recorded is not None else []
    commit = await github.get_commit(gh, pr.repo, head_sha)
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
    bot: BotContext,
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
        await _upsert_sticky_comment(bot, gh, pr, comment)
    await _finish(gh, pr, check, "failure", output)


async def _fail_analysis(
    bot: BotContext,
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
        await _fail_input(bot, gh, pr, check, context, f"Invalid manifest in the {side}", problem)
        return
    titles = {
        "timeout": "Analysis timed out",
        "memory": "Analysis ran out of memory",
        "unanalysed": "Part of the change could not be analysed",
    }
    title = titles.get(failure.kind, "Analysis failed")
    problems = [
        InputProblem(u.file, u.line or None, f"not analysed: {u.message}", tree=u.tree)
        for u in failure.unanalysed
    ]
    comment, output = render_failure(
        context, title=title, message=failure.message, problems=problems
    )
    if await _still_head(gh, pr, context.head_sha):
        await _upsert_sticky_comment(bot, gh, pr, comment)
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


async def _start_check_run(
    gh: GitHubClient, pr: PullRequestRef, head_sha: str, name: str
) -> CheckRun:
    data = await github.create_check_run(
        gh,
        pr.repo,
        {
            "name": name,
            "head_sha": head_sha,
            "status": "in_progress",
            "started_at": _now(),
            "output": {"title": "Analysing", "summary": "Computing the reachability change."},
        },
    )
    return CheckRun(int(data["id"]), data.get("html_url"), name)


async def _finish(
    gh: GitHubClient,
    pr: PullRequestRef,
    check: CheckRun,
    conclusion: str,
    output: CheckOutput,
    *,
    external_id: str | None = None,
) -> None:
    body: dict[str, Any] = {
        "status": "completed",
        "conclusion": conclusion,
        "completed_at": _now(),
        "output": output.to_api(),
    }
    if external_id is not None:
        body["external_id"] = external_id
    await github.update_check_run(gh, pr.repo, check.id, body)


async def _finish_quietly(
    gh: GitHubClient, pr: PullRequestRef, check: CheckRun, conclusion: str, output: CheckOutput
) -> None:
    """Complete the check run on a failure path; a second failure is only logged."""
    try:
        await _finish(gh, pr, check, conclusion, output)
    except Exception:
        log.exception("%s: could not complete check run %s", pr, check.id)


async def _upsert_sticky_comment(
    bot: BotContext, gh: GitHubClient, pr: PullRequestRef, body: str
) -> None:
    login = await bot.app_login()
    for comment in await github.list_issue_comments(gh, pr.repo, pr.number):
        if _is_own(comment, login, bot.settings.app_id) and MARKER in str(
            comment.get("body") or ""
        ):
            if comment.get("body") != body:
                await github.update_issue_comment(gh, pr.repo, int(comment["id"]), body)
            return
    await github.create_issue_comment(gh, pr.repo, pr.number, body)


def _is_own(comment: Mapping[str, Any], login: str, app_id: str) -> bool:
    """Written by this app: its own bot account (``<slug>[bot]``, from ``GET /app``), or
    performed by this app's installation. Never "any bot with our marker": another app, or
    a workflow's token, could post a comment that we would then keep editing as the verdict
    while the real one stays hidden."""
    user = comment.get("user")
    if not isinstance(user, Mapping) or user.get("type") != "Bot":
        return False
    if str(user.get("login") or "").lower() == login.lower():
        return True
    app = comment.get("performed_via_github_app")
    return isinstance(app, Mapping) and str(app.get("id")) == app_id


async def _post_line_comments(
    bot: BotContext,
    gh: GitHubClient,
    pr: PullRequestRef,
    head_sha: str,
    comments: tuple[LineComment, ...],
    files: PullFiles,
) -> None:
    existing = await github.list_review_comments(gh, pr.repo, pr.number)
    # Only our own comments: anyone may quote a marker to keep a rule from being commented.
    login, app_id = await bot.app_login(), bot.settings.app_id
    posted = {rule_marker(str(c.get("body") or "")) for c in existing if _is_own(c, login, app_id)}
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


# ---- merge queues ---------------------------------------------------------------------

_QUEUE_PULL = re.compile(r"/pr-(\d+)-[0-9a-f]{40}$")


@dataclass(frozen=True, slots=True)
class MergeGroup:
    """A ``merge_group`` ``checks_requested``: GitHub's merge queue asks for the check on
    ``head_sha``, the commit that will become ``base_ref``'s head (it holds the pull
    requests queued ahead too), built on ``base_sha``."""

    head_sha: str
    head_ref: str  # refs/heads/gh-readonly-queue/main/pr-104-<sha>
    base_sha: str
    base_ref: str  # the branch name, without refs/heads/

    @property
    def pull_number(self) -> int | None:
        found = _QUEUE_PULL.search(self.head_ref)
        return int(found.group(1)) if found else None


async def review_merge_group(
    bot: BotContext, pr: PullRequestRef, group: MergeGroup, server_url: str
) -> None:
    """Review exactly what the queue will merge: ``base_sha`` against ``head_sha``, with the
    settings of ``base_sha``. A widening needs the approvals of the queued pull request
    (``pr``, named by the group's branch) on the head that is in the group."""
    gh = await bot.client(pr.installation_id)

    def stopped() -> tuple[str, CheckOutput]:
        return "failure", _internal_error(RuntimeError("stopped"))

    check = await _open_check_run(gh, pr, group.head_sha, check_name(group.base_ref), stopped)
    try:
        conclusion, output = await _judge_merge_group(bot, gh, pr, group, server_url, check)
    except asyncio.CancelledError:
        await asyncio.shield(_finish_quietly(gh, pr, check, *stopped()))
        raise
    except Exception as err:
        log.exception("%s: merge group review failed", pr)
        await _finish_quietly(gh, pr, check, "failure", _internal_error(err))
        return
    await _finish(gh, pr, check, conclusion, output)


async def _judge_merge_group(
    bot: BotContext,
    gh: GitHubClient,
    pr: PullRequestRef,
    group: MergeGroup,
    server_url: str,
    check: CheckRun,
) -> tuple[str, CheckOutput]:
    compared = Compared(
        group.base_sha,
        group.head_sha,
        group.base_sha,
        f"merge queue: base {group.base_sha[:7]} vs merge group {group.head_sha[:7]}",
    )
    settings_text = await github.get_file_content(gh, pr.repo, SETTINGS_PATH, group.base_sha)
    context = ReviewContext(
        repository=pr.repo.full_name,
        server_url=server_url,
        base_sha=group.base_sha,
        head_sha=group.head_sha,
        compared=compared.description,
        settings=RepoSettings(),
        settings_present=settings_text is not None,
        approval=None,
        approvers_description=describe_approvers(RepoSettings(), present=False),
        check_run_url=check.url,
    )
    try:
        settings = parse_repo_settings(settings_text)
    except SettingsError as err:
        message = f"{SETTINGS_PATH}: {err.key + ': ' if err.key else ''}{err.message}"
        return "failure", render_failure(
            context, title=f"Invalid {SETTINGS_PATH}", message=message, problems=[]
        )[1]
    context = dataclasses.replace(
        context,
        settings=settings,
        approvers_description=describe_approvers(settings, present=settings_text is not None),
    )
    try:
        base_files, base_error, head_files, unread = await _fetch_trees(
            bot, gh, pr, compared, settings
        )
    except (TreeError, DownloadTooLarge) as err:
        return "failure", render_failure(
            context, title="Cannot read the manifests", message=str(err), problems=[]
        )[1]
    failing = [(side, u) for side, u in unread if not path_ignored(settings, u.path)]
    if failing:
        return "failure", _not_analysed(context, failing)[1]
    outcome = await _analyze(bot, settings, base_files, head_files, compared.base, base_error)
    if isinstance(outcome, AnalysisFailure):
        where = f"{outcome.tree}: " if outcome.tree else ""
        where += f"{outcome.file}:{outcome.line}: " if outcome.file else ""
        return "failure", render_failure(
            context, title="Analysis failed", message=where + outcome.message, problems=[]
        )[1]
    context = dataclasses.replace(context, base_error=outcome.base_error)
    before = settings_text
    after = await github.get_file_content(gh, pr.repo, SETTINGS_PATH, group.head_sha)
    settings_changed = before != after
    if not (
        settings_changed or assess(outcome, settings).needs_approval or approval_lines(outcome)
    ):
        return check_conclusion(outcome, context), render_check_output(outcome, context)
    # Needs approval: of the queued pull request, on the head the group contains.
    problem = None
    approval = None
    if group.pull_number is None or group.pull_number != pr.number:
        problem = f"cannot tell which pull request {group.head_ref} merges"
    else:
        pull = await github.get_pull(gh, pr.repo, pr.number)
        head = pull["head"]["sha"]
        contained = await github.compare_commits(gh, pr.repo, head, group.head_sha)
        if pull.get("state") != "open" or pull["base"]["ref"] != group.base_ref:
            problem = f"#{pr.number} is not open into {group.base_ref}"
        elif contained.get("status") not in ("ahead", "identical"):
            problem = f"the merge group does not contain #{pr.number}'s head {head[:7]}"
        else:
            approval = await _approval_status(
                bot,
                gh,
                pr,
                settings,
                head,
                pull["user"]["login"],
                base_ref=group.base_ref,
                delta=_gated(outcome, settings, settings_changed),
                diff=outcome,
                settings_changed=settings_changed,
            )
            context = dataclasses.replace(context, approval=approval)
    conclusion: str = check_conclusion(outcome, context)
    output = render_check_output(outcome, context)
    if problem is not None:
        return "failure", _prepend(output, "Needs approval: " + problem, problem)
    if settings_changed:
        conclusion, output, _ = await _strictest(
            bot, gh, pr, outcome, context, conclusion, output, group.base_ref, settings_changed
        )
    return conclusion, output
