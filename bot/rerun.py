"""``check_run`` / ``check_suite`` re-run requests: review each pull request again.

GitHub lists in ``pull_requests`` only the open PRs whose head is in the same repository;
a re-run from a fork's PR has none, and the PR's next push reviews it.
"""

from __future__ import annotations

import logging
from typing import Any

from gidgethub import routing, sansio

from bot.context import BotContext, PullRequestRef
from bot.github import Repository
from bot.review_flow import CHECK_NAME

log = logging.getLogger(__name__)

router = routing.Router()


def _submit_all(event: sansio.Event, bot: BotContext, pulls: list[dict[str, Any]]) -> None:
    repo = Repository.from_payload(event.data["repository"])
    installation = int(event.data["installation"]["id"])
    if not pulls:
        log.info("re-run requested in %s for no open pull request", repo.full_name)
    for pull in pulls:
        pr = PullRequestRef(repo, int(pull["number"]), installation)
        bot.submit_review(pr, pull["head"]["sha"], f"{event.event} rerequested")


@router.register("check_run", action="rerequested")
async def check_run_rerequested(event: sansio.Event, bot: BotContext) -> None:
    check_run = event.data["check_run"]
    app = check_run.get("app") or {}
    if check_run.get("name") != CHECK_NAME or str(app.get("id")) != bot.settings.app_id:
        return  # another app's check
    _submit_all(event, bot, check_run.get("pull_requests") or [])


@router.register("check_suite", action="rerequested")
async def check_suite_rerequested(event: sansio.Event, bot: BotContext) -> None:
    _submit_all(event, bot, event.data["check_suite"].get("pull_requests") or [])
