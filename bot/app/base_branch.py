"""Deliveries that move what a pull request would merge into, or share its head commit.

- ``push`` to a branch: every open pull request into it is reviewed again (its check run
  judged the old base head); first, at once, the green runs of their heads are turned to
  failure, so that none passes while the re-reviews wait their turn. One fan-out job per
  branch, coalesced: a burst of pushes fans out once for the newest.
- ``merge_group`` ``checks_requested``: the merge queue's group commit is reviewed
  against its base (``bot.app.merge_group.review_merge_group``).
- ``pull_request`` closed / retargeted / pushed (next to ``bot.app.pull_request``'s own
  handlers): the other open pull requests with the same head and base (they share its
  check run) are re-evaluated, so that closing the one that
  lacked approval frees the others and nothing is left judged by a pull request that is
  gone.
"""

from __future__ import annotations

import asyncio
import logging

from gidgethub import routing, sansio

from bot.app.checks import check_name
from bot.app.context import BotContext, PullRequestRef
from bot.app.jobs import QueueFull
from bot.app.merge_group import MergeGroup, review_merge_group
from bot.app.pull_request import (
    PayloadError,
    field,
    int_field,
    pull_request_ref,
    repository,
    sha_field,
    text_field,
)
from bot.github import rest as github
from bot.github.client import GitHubClient
from bot.github.rest import Repository

log = logging.getLogger(__name__)

router = routing.Router()

# Merge queues build their groups on these branches; pull requests never target them.
QUEUE_BRANCH_PREFIX = "gh-readonly-queue/"
# How long a fan-out waits for room in a full queue before failing the rest closed.
QUEUE_WAIT = 30.0
NULL_SHA = "0" * 40


def _repository(event: sansio.Event) -> tuple[Repository, int]:
    return repository(event.data), int_field(event.data, "installation", "id")


@router.register("push")
async def pushed(event: sansio.Event, bot: BotContext) -> None:
    data = event.data
    ref = text_field(data, "ref")
    after = text_field(data, "after")
    if not ref.startswith("refs/heads/") or data.get("deleted") is True or after == NULL_SHA:
        return  # tags, and deleted branches (their pull requests are closed by GitHub)
    branch = ref.removeprefix("refs/heads/")
    if branch.startswith(QUEUE_BRANCH_PREFIX):
        return
    repo, installation = _repository(event)
    submit_base_moved(bot, repo, installation, branch, sha_field(data, "after"))


def submit_base_moved(
    bot: BotContext, repo: Repository, installation: int, branch: str, after: str
) -> None:
    async def run() -> None:
        await review_pulls_into(bot, repo, installation, branch, after)

    bot.submit_other(
        ("base-moved", repo.full_name.lower(), branch),
        None,
        f"re-review of pull requests into {repo.full_name}:{branch} (now {after[:7]})",
        run,
    )


async def review_pulls_into(
    bot: BotContext, repo: Repository, installation: int, branch: str, after: str
) -> None:
    gh = await bot.client(installation)
    pulls = await github.list_open_pulls(gh, repo, branch)
    log.info(
        "%s:%s moved to %s: %d open pull requests", repo.full_name, branch, after[:7], len(pulls)
    )
    heads = {str(pull["head"]["sha"]) for pull in pulls}
    for head in sorted(heads):
        # First, at once: the green runs judged the old base head. Until each pull request's
        # re-review (queued behind others, maybe) writes a new run, they must not pass.
        await _withdraw_success(gh, repo, head, branch, after, bot.config.app_id)
    for pull in pulls:
        pr = PullRequestRef(repo, int(pull["number"]), installation)
        head = str(pull["head"]["sha"])
        if not await _submit_waiting(bot, pr, head, f"base branch {branch} moved"):
            # No room: never leave the check that judged the old base head standing.
            await _fail_stale(gh, pr, head, branch)


async def _withdraw_success(
    gh: GitHubClient, repo: Repository, head: str, branch: str, after: str, app_id: str
) -> None:
    """Turn the newest ``reachdiff (branch)`` run on ``head`` from success to failure."""
    # Our own runs only: another app's run of that name is neither ours to edit nor what
    # branch protection pinned to this app reads.
    found = await github.list_check_runs(gh, repo, head, check_name(branch), app_id=app_id)
    newest = max(found, key=lambda r: int(r["id"]), default=None)
    if newest is None or newest.get("conclusion") != "success":
        return
    await github.update_check_run(
        gh,
        repo,
        int(newest["id"]),
        {
            "status": "completed",
            "conclusion": "failure",
            "output": {
                "title": f"Base branch {branch} moved to {after[:7]}; re-reviewing",
                "summary": "This result judged an older head of the base branch. A review of "
                "what merging into the new one produces follows.",
            },
        },
    )


async def _submit_waiting(
    bot: BotContext, pr: PullRequestRef, head: str, why: str, *, approvals_only: bool = False
) -> bool:
    submit = bot.submit_approvals if approvals_only else bot.submit_review
    loop = asyncio.get_running_loop()
    deadline = loop.time() + QUEUE_WAIT
    while True:
        try:
            submit(pr, head, why)
            return True
        except QueueFull:
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(1.0)


async def _fail_stale(gh: GitHubClient, pr: PullRequestRef, head: str, branch: str) -> None:
    await github.create_check_run(
        gh,
        pr.repo,
        {
            "name": check_name(branch),
            "head_sha": head,
            "status": "completed",
            "conclusion": "failure",
            "output": {
                "title": f"Base branch {branch} moved; re-run",
                "summary": "The base branch moved and reachdiff is too busy to review this "
                "pull request again now. Re-run the check.",
            },
        },
    )


@router.register("merge_group", action="checks_requested")
async def merge_group_checks_requested(event: sansio.Event, bot: BotContext) -> None:
    data = field(event.data, "merge_group")
    group = MergeGroup(
        head_sha=sha_field(data, "head_sha"),
        head_ref=text_field(data, "head_ref"),
        base_sha=sha_field(data, "base_sha"),
        base_ref=text_field(data, "base_ref").removeprefix("refs/heads/"),
    )
    repo, installation = _repository(event)
    pr = PullRequestRef(repo, group.pull_number or 0, installation)
    html_url = str(field(event.data, "repository").get("html_url") or "")
    suffix = "/" + repo.full_name
    server_url = (
        html_url[: -len(suffix)]
        if html_url.lower().endswith(suffix.lower())
        else "https://github.com"
    )

    async def run() -> None:
        await review_merge_group(bot, pr, group, server_url)

    bot.submit_other(
        ("merge-group", repo.full_name.lower(), group.head_sha),
        group.head_sha,
        f"merge group {group.head_sha[:7]} into {repo.full_name}:{group.base_ref}",
        run,
    )


@router.register("pull_request", action="synchronize")
async def pushed_away(event: sansio.Event, bot: BotContext) -> None:
    """The pull request left its previous head (``before``); its own review of the new head
    is queued by ``bot.app.pull_request``."""
    before = event.data.get("before")
    head = sha_field(event.data, "pull_request", "head", "sha")
    if isinstance(before, str) and before != head and before != NULL_SHA:
        pr = pull_request_ref(event)
        base = text_field(event.data, "pull_request", "base", "ref")
        submit_sharing_head(bot, pr.repo, pr.installation_id, before, base, f"#{pr.number} left it")


@router.register("pull_request", action="edited")
async def retargeted(event: sansio.Event, bot: BotContext) -> None:
    changes = event.data.get("changes")
    base_change = changes.get("base") if isinstance(changes, dict) else None
    old = field(base_change, "ref", "from") if isinstance(base_change, dict) else None
    if isinstance(old, str) and old:
        pr = pull_request_ref(event)
        head = sha_field(event.data, "pull_request", "head", "sha")
        submit_sharing_head(bot, pr.repo, pr.installation_id, head, old, f"#{pr.number} retargeted")


@router.register("pull_request", action="closed")
async def closed(event: sansio.Event, bot: BotContext) -> None:
    pr = pull_request_ref(event)
    merged = field(event.data, "pull_request").get("merged")
    if merged is not None and not isinstance(merged, bool):
        raise PayloadError("pull_request.merged is not a boolean")
    base = text_field(event.data, "pull_request", "base", "ref")
    head = sha_field(event.data, "pull_request", "head", "sha")
    submit_sharing_head(
        bot,
        pr.repo,
        pr.installation_id,
        head,
        base,
        f"#{pr.number} closed",
        # A merged head is in the base branch now: no later pull request merges it again.
        left=not merged,
    )
    if merged:
        # The base branch moved. The push delivery says so too, but it may come later,
        # not at all (not subscribed after an upgrade), or be lost; both share one job.
        merge = field(event.data, "pull_request").get("merge_commit_sha")
        after = merge if isinstance(merge, str) and merge else head
        submit_base_moved(bot, pr.repo, pr.installation_id, base, after)


def submit_sharing_head(
    bot: BotContext,
    repo: Repository,
    installation: int,
    head_sha: str,
    base_ref: str,
    why: str,
    *,
    left: bool = True,
) -> None:
    """Re-evaluate the open pull requests into ``base_ref`` whose head is ``head_sha``: they
    share one check run, whose strictest verdict changed because a pull request left it.

    ``left``: that pull request no longer merges this head into ``base_ref`` (closed
    unmerged, retargeted, pushed to). If no open one does any more, a green
    ``reachdiff (base_ref)`` run on the commit is superseded by a failing one: otherwise a
    later pull request with this head (reopened, or a new branch at the commit) would find
    it green before its own review starts, judged against a base that may have moved.
    """

    async def run() -> None:
        gh = await bot.client(installation)
        # The open pull requests into the base, not commits/{sha}/pulls: for a commit that
        # is on the default branch that lists only the pull request that merged it.
        sharing = [
            pull
            for pull in await github.list_open_pulls(gh, repo, base_ref)
            if pull["head"]["sha"] == head_sha
        ]
        for pull in sharing:
            pr = PullRequestRef(repo, int(pull["number"]), installation)
            # The cached analysis still holds; only who shares the check changed.
            await _submit_waiting(bot, pr, head_sha, why, approvals_only=True)
        if left and not sharing:
            await _retire(gh, repo, head_sha, base_ref, bot.config.app_id)

    bot.submit_other(
        ("sharing-head", repo.full_name.lower(), head_sha, base_ref),
        None,
        f"re-evaluation of pull requests into {repo.full_name}:{base_ref} at "
        f"{head_sha[:7]} ({why})",
        run,
    )


async def _retire(
    gh: GitHubClient, repo: Repository, head_sha: str, base_ref: str, app_id: str
) -> None:
    name = check_name(base_ref)
    # Our own runs only: a failing run some workflow made must not hide our green one.
    found = await github.list_check_runs(gh, repo, head_sha, name, app_id=app_id)
    newest = max(found, key=lambda r: int(r["id"]), default=None)
    if newest is None or newest.get("conclusion") not in ("success", None):
        return  # nothing green (or pending) to supersede
    await github.create_check_run(
        gh,
        repo,
        {
            "name": name,
            "head_sha": head_sha,
            "status": "completed",
            "conclusion": "failure",
            "output": {
                "title": f"Not under review: no open pull request into {base_ref} has this head",
                "summary": f"The pull request that was reviewed with this commit as its head "
                f"no longer merges it into `{base_ref}` (closed, retargeted or pushed to). "
                "A pull request that brings it back is reviewed again from scratch.",
            },
        },
    )
