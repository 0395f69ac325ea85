"""A ``merge_group`` ``checks_requested``: review exactly what GitHub's merge queue merges.

The check is the pull request flow's (same reads, same plan, same failures), with three
differences: the base is the group's ``base_sha`` and its settings, the head is the group's
commit, and a widening needs the approvals of the queued pull request (named by the group's
branch) on the head that the group contains. Nothing is commented.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
from dataclasses import dataclass

from bot.app import facts
from bot.app.checks import check_name, finish, finish_quietly, open_check_run
from bot.app.context import BotContext, PullRequestRef
from bot.app.facts import Compared
from bot.app.review_cache import CheckRun
from bot.app.review_flow import analyse, review_context
from bot.github import rest as github
from bot.github.client import GitHubClient
from bot.plan import failures
from bot.plan.review import ReviewOutcome, gated, needs_sibling_approvals, plan_merge_group
from bot.render.posts import CheckOutput

log = logging.getLogger(__name__)

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
        return "failure", failures.internal_error(RuntimeError("stopped"))

    check = await open_check_run(gh, pr, group.head_sha, check_name(group.base_ref), stopped)
    try:
        outcome = await _judge(bot, gh, pr, group, server_url, check)
    except asyncio.CancelledError:
        await asyncio.shield(finish_quietly(gh, pr, check, *stopped()))
        raise
    except Exception as err:
        log.exception("%s: merge group review failed", pr)
        await finish_quietly(gh, pr, check, "failure", failures.internal_error(err))
        return
    await finish(gh, pr, check, outcome.conclusion, outcome.output)


async def _judge(
    bot: BotContext,
    gh: GitHubClient,
    pr: PullRequestRef,
    group: MergeGroup,
    server_url: str,
    check: CheckRun,
) -> ReviewOutcome:
    compared = Compared(
        group.base_sha,
        group.head_sha,
        group.base_sha,
        f"merge queue: base {group.base_sha[:7]} vs merge group {group.head_sha[:7]}",
    )
    context = review_context(pr, compared, group.head_sha, server_url, check)
    # The flow data of the group's base: a merge group breaking observed traffic needs the
    # same approval as the pull request (docs/traffic.md).
    analysed = await analyse(bot, gh, pr, compared, context, with_flows=True)
    if isinstance(analysed, ReviewOutcome):
        return analysed
    diff, context = analysed.diff, analysed.context
    settings_changed = await facts.settings_changed(
        gh, pr, compared, group.head_sha, analysed.settings_text
    )
    if gated(diff, context.settings, settings_changed) is None:
        return plan_merge_group(diff, context, settings_changed=False, base_ref=group.base_ref)
    # Needs approval: of the queued pull request, on the head the group contains.
    problem = None
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
            approval = await facts.approval_status(
                bot,
                gh,
                pr,
                context.settings,
                head,
                pull["user"]["login"],
                base_ref=group.base_ref,
                delta=gated(diff, context.settings, settings_changed),
                diff=diff,
                settings_changed=settings_changed,
            )
            context = dataclasses.replace(context, approval=approval)
    lacking: list[int] = []
    if (
        problem is None
        and settings_changed
        and needs_sibling_approvals(diff, context, settings_changed=True)
    ):
        lacking = await facts.lacking_siblings(
            bot, gh, pr, diff, context, base_ref=group.base_ref, settings_changed=True
        )
    return plan_merge_group(
        diff,
        context,
        settings_changed=settings_changed,
        base_ref=group.base_ref,
        problem=problem,
        lacking=lacking,
    )
