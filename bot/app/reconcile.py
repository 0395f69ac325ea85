"""Reconciliation: find the reviews a restart, a refused delivery or a crash left undone.

GitHub offers "Re-run" only on completed check runs, and a delivery that arrived while the
server was down is not sent again by itself. So at start-up and then every
``reconcile_interval`` seconds, every open pull request of every installation is looked at,
and one whose ``reachdiff (BASE)`` check run on its current head is missing, still queued or in
progress, or was cancelled, is reviewed again. Each pass is bounded (installations,
repositories and pull requests per repository), skips pull requests that already have a
job, and stops at a full queue: the next pass continues.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from bot.app.checks import check_name
from bot.app.context import BotContext, PullRequestRef
from bot.app.jobs import QueueFull
from bot.github import rest as github

log = logging.getLogger(__name__)

MAX_INSTALLATIONS = 1000
MAX_REPOSITORIES = 1000  # per installation
MAX_PULLS = 300  # open pull requests per repository
# A previous verdict stands only when it is one: these are not.
_NOT_A_VERDICT = frozenset({None, "cancelled", "stale"})


def needs_review(runs: list[Any]) -> bool:
    """Whether the latest ``reachdiff`` runs of this app on a head leave it unreviewed."""
    if not runs:
        return True
    return any(
        not isinstance(run, dict)
        or run.get("status") != "completed"
        or run.get("conclusion") in _NOT_A_VERDICT
        for run in runs
    )


async def reconcile(bot: BotContext) -> int:
    """One pass; the number of reviews it queued."""
    queued = 0
    installations = await github.list_installations(
        bot.app_client(), bot.tokens.jwt(), limit=MAX_INSTALLATIONS
    )
    for installation in installations:
        if not isinstance(installation, dict) or installation.get("suspended_at"):
            continue
        installation_id = int(installation["id"])
        gh = await bot.client(installation_id)
        for repository in await github.list_installation_repositories(gh, limit=MAX_REPOSITORIES):
            repo = github.Repository.from_payload(repository)
            for pull in await github.list_every_open_pull(gh, repo, limit=MAX_PULLS):
                pr = PullRequestRef(repo, int(pull["number"]), installation_id)
                if bot.jobs.has(pr.key):
                    continue
                head = str(pull["head"]["sha"])
                name = check_name(str(pull["base"]["ref"]))
                runs = await github.list_check_runs_for_ref(
                    gh, repo, head, check_name=name, app_id=bot.config.app_id
                )
                if not needs_review(runs):
                    continue
                try:
                    bot.submit_review(pr, head, "reconciliation")
                except QueueFull:
                    log.warning("reconciliation stopped at a full queue; the next pass goes on")
                    return queued
                queued += 1
    if queued:
        log.info("reconciliation queued %d reviews", queued)
    return queued


async def reconcile_forever(bot: BotContext, interval: float) -> None:
    while True:
        try:
            await reconcile(bot)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("reconciliation pass failed; the next one retries")
        await asyncio.sleep(interval)
