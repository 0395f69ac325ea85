"""What a review reads from GitHub before it decides: what merging would produce, the
settings, both trees, the approvals, and whether the pull request is still what was read.

Reads only: every decision is in ``bot.plan`` and ``bot.review``, every write in
``bot.app.writes`` and ``bot.app.checks``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import gidgethub

from analysis.flowsummary import FlowSummary
from bot.app import gate
from bot.app.checks import check_name
from bot.app.context import BotContext, PullRequestRef
from bot.app.jobs import AnalysisStopped, AnalysisTimeout
from bot.github import rest as github
from bot.github.client import GitHubClient
from bot.inputs.analyze import AnalysisFailure, DiffResult, analyze
from bot.inputs.files import FileLimits, FilesError
from bot.inputs.mergetree import merged_files
from bot.inputs.tarball import read_tarball
from bot.inputs.unread import (
    TreeEntry,
    Unread,
    hidden_objects,
    lfs_pointers,
    unread_in_listing,
)
from bot.plan.review import gated
from bot.render.posts import ReviewContext
from bot.review.approvals import (
    ApprovalStatus,
)
from bot.review.declared import lint_config
from bot.review.gating import exposure_settings
from bot.review.settings import SETTINGS_PATH, RepoSettings, describe_approvers

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Compared:
    base: str  # the base branch head: the "before"
    head: str  # the commit whose tree is the "after" (the test merge commit, or the PR head)
    settings_ref: str  # where .github/reachdiff.yml is read: the base branch head
    description: str
    # Set when GitHub's test merge commit was not usable: the "after" tree is ``base`` plus
    # the pull request's changes since this merge base, merged here (``bot.inputs.mergetree``).
    merge_base: str | None = None


async def what_merges(
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
    attempts = max(1, bot.config.mergeable_attempts)
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
        await asyncio.sleep(bot.config.mergeable_delay)
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


async def settings_changed(
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


async def still_current(
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


async def newest_check_run_id(
    gh: GitHubClient, pr: PullRequestRef, head_sha: str, name: str, app_id: str
) -> int | None:
    runs = await github.list_check_runs(gh, pr.repo, head_sha, name, app_id=app_id)
    ours = [int(r["id"]) for r in runs if r.get("name") == name]
    return max(ours, default=None)


async def run_analysis(
    bot: BotContext,
    settings: RepoSettings,
    base_files: Mapping[str, bytes] | None,
    head_files: Mapping[str, bytes],
    base_key: str,
    base_error: str,
    flows: FlowSummary | None = None,
) -> DiffResult | AnalysisFailure:
    """The engine run in the analysis pool, under every setting that decides its result
    (pull requests and merge groups alike); a timeout is a failure like any other, and
    one of the server's own limits is named with the setting that raises it."""
    try:
        result = await bot.pool.run(
            analyze,
            base_files,
            head_files,
            bot.config.analysis_timeout,
            settings.kustomize_roots,
            settings.helm_values,
            base_key=base_key,
            base_error=base_error,
            cluster_scope=settings.cluster_scope,
            ignore_kinds=settings.ignore_kinds,
            workload_kinds=settings.workload_kinds,
            cilium_agent=settings.cilium_agent,
            lint_config=lint_config(settings),
            flows=flows,
            exposure=exposure_settings(settings),
        )
    except AnalysisTimeout as err:
        result = AnalysisFailure("timeout", str(err))
    except AnalysisStopped as err:
        result = AnalysisFailure("stopped", str(err))
    if isinstance(result, AnalysisFailure) and result.kind in ("timeout", "memory", "stopped"):
        result = dataclasses.replace(result, message=_server_limits(bot, result))
    return result


def _server_limits(bot: BotContext, failed: AnalysisFailure) -> str:
    """What the app's operator can raise: the repository is not at fault."""
    config = bot.config
    if failed.kind == "timeout":
        hint = (
            f"The app's limit is {config.analysis_timeout:g} s per analysis "
            "(REACHDIFF_ANALYSIS_TIMEOUT)"
        )
    else:
        memory = (
            f"{config.analysis_memory_mb} MB per analysis process"
            if config.analysis_memory_mb > 0
            else "no limit of its own"
        )
        hint = f"The app's memory limit is {memory} (REACHDIFF_ANALYSIS_MEMORY_MB)"
    return (
        f"{failed.message}. {hint}: the repository is not at fault; whoever runs the app "
        "can raise the limit, then re-run the check."
    )


async def fetch_files(
    bot: BotContext,
    gh: GitHubClient,
    pr: PullRequestRef,
    compared: Compared,
    settings: RepoSettings,
) -> tuple[dict[str, bytes] | None, str, dict[str, bytes], list[tuple[str, Unread]]]:
    """The manifests before (base branch head) and after merging, and what inside
    ``paths`` each readable commit's archive does not show (by side). A base that cannot be
    read is None with the reason (``base: ...``), so that the pull request fixing it is
    still reviewed: its head is then analysed on its own. Raises ``FilesError`` for a head
    (or merge base) that cannot be read, ``MergeConflict``."""
    limit = bot.config.max_tarball_bytes
    shas = list(dict.fromkeys(s for s in (compared.base, compared.head, compared.merge_base) if s))
    fetched = await asyncio.gather(
        *(github.download_tarball(gh, pr.repo, sha, max_bytes=limit) for sha in shas),
        # The git trees list submodules and every committed file: what archives leave out.
        *(github.get_tree(gh, pr.repo, sha) for sha in shas),
    )
    limits = FileLimits(
        max_file_bytes=bot.config.max_file_bytes,
        max_total_bytes=bot.config.max_total_bytes,
        max_files=bot.config.max_files,
    )
    paths = settings.paths or None
    archives = cast("list[bytes]", fetched[: len(shas)])
    listings = cast("list[dict[str, Any]]", fetched[len(shas) :])
    trees: dict[str, dict[str, bytes]] = {}
    unreadable: dict[str, FilesError] = {}
    unread: list[tuple[str, Unread]] = []
    for sha, archive, listing in zip(shas, archives, listings, strict=True):
        # Decompressing is CPU work: off the event loop, so other deliveries are answered.
        hidden: dict[str, bytes | None] = {}
        archived: dict[str, tuple[str, str]] = {}
        try:
            trees[sha] = await asyncio.to_thread(
                read_tarball, archive, paths=paths, limits=limits, hidden=hidden, archived=archived
            )
        except FilesError as err:
            unreadable[sha] = err
            continue
        side = "head" if sha == compared.head else "base"
        found = _unread(listing, trees[sha], paths, archived) + hidden_objects(hidden)
        unread += [(side, u) for u in found if (side, u) not in unread]
    if compared.head in unreadable:
        raise unreadable[compared.head]
    if compared.base in unreadable:
        return None, f"base: {unreadable[compared.base]}", trees[compared.head], unread
    base_files, head_files = trees[compared.base], trees[compared.head]
    if compared.merge_base is not None:
        if compared.merge_base in unreadable:
            raise unreadable[compared.merge_base]
        head_files = merged_files(trees[compared.merge_base], base_files, head_files)
    return base_files, "", head_files, unread


def _unread(
    listing: Mapping[str, Any],
    files: Mapping[str, bytes],
    paths: tuple[str, ...] | None,
    archived: Mapping[str, tuple[str, str]],
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
    return unread_in_listing(entries, files, paths, archived) + lfs_pointers(files)


async def approval_status(
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
    """``delta``: the gated delta now (``bot.plan.review.gated``); an approval counts only
    if its approver could have seen that delta on this head in ``reachdiff (base_ref)``.
    With ``diff``, owner rules divide its gated paths; with ``analysed``, approvals of
    older commits may carry over (``bot.app.gate``)."""
    return await gate.approval_status(
        gh,
        pr.repo,
        pr.number,
        settings,
        head_sha,
        author,
        run_name=check_name(base_ref),
        app_id=bot.config.app_id,
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


def server_url(pull: dict[str, Any], pr: PullRequestRef) -> str:
    html_url = str(pull.get("base", {}).get("repo", {}).get("html_url") or "")
    suffix = "/" + pr.repo.full_name
    if html_url.lower().endswith(suffix.lower()):
        return html_url[: -len(suffix)]
    return "https://github.com"


async def lacking_siblings(
    bot: BotContext,
    gh: GitHubClient,
    pr: PullRequestRef,
    diff: DiffResult,
    context: ReviewContext,
    *,
    base_ref: str,
    settings_changed: bool,
) -> list[int]:
    """The other open pull requests into ``base_ref`` with this head (they share the check
    run) whose approvals do not satisfy this change."""
    lacking = []
    # Every open pull request into the base (commits/{sha}/pulls would miss them when the
    # head is a commit of the default branch: it then lists only the merged one).
    for other in await github.list_open_pulls(gh, pr.repo, base_ref):
        if int(other["number"]) == pr.number or other["head"]["sha"] != context.head_sha:
            continue
        sibling = dataclasses.replace(pr, number=int(other["number"]))
        status = await approval_status(
            bot,
            gh,
            sibling,
            context.settings,
            context.head_sha,
            other["user"]["login"],
            base_ref=base_ref,
            delta=gated(diff, context.settings, settings_changed),
            diff=diff,
            settings_changed=settings_changed,
        )
        if not status.satisfied:
            lacking.append(int(other["number"]))
    return lacking
