"""The ``reachdiff (<base>)`` check run of a head: opened first, completed last.

A check run belongs to a commit, and several pull requests (into several bases) can share a
head commit. So the check is named after the base branch (``reachdiff (main)``): on a head
it says what merging that head into that base's current head does, and no review of a pull
request into another base can touch it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bot.app.context import PullRequestRef
from bot.app.review_cache import CHECK_NAME, CheckRun
from bot.github import rest as github
from bot.github.client import GitHubClient
from bot.render.posts import CheckOutput

log = logging.getLogger(__name__)


def check_name(base_ref: str) -> str:
    """The check run of pull requests into ``base_ref`` (what branch protection requires)."""
    return f"{CHECK_NAME} ({base_ref})"


def is_our_check_name(name: str) -> bool:
    return name == CHECK_NAME or (name.startswith(f"{CHECK_NAME} (") and name.endswith(")"))


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def open_check_run(
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
        await asyncio.shield(finish_quietly(gh, pr, check, *on_cancel()))
        raise


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
            "started_at": now(),
            "output": {"title": "Analysing", "summary": "Computing the reachability change."},
        },
    )
    return CheckRun(int(data["id"]), data.get("html_url"), name)


async def finish(
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
        "completed_at": now(),
        "output": output.to_api(),
    }
    if external_id is not None:
        body["external_id"] = external_id
    await github.update_check_run(gh, pr.repo, check.id, body)


async def finish_quietly(
    gh: GitHubClient, pr: PullRequestRef, check: CheckRun, conclusion: str, output: CheckOutput
) -> None:
    """Complete the check run on a failure path; a second failure is only logged."""
    try:
        await finish(gh, pr, check, conclusion, output)
    except Exception:
        log.exception("%s: could not complete check run %s", pr, check.id)
