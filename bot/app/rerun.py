"""``check_run`` / ``check_suite`` re-run requests: review each pull request again.

GitHub lists in ``pull_requests`` only the open PRs whose head is in the same repository;
a re-run from a fork's PR has none, and the PR's next push reviews it.
"""

from __future__ import annotations

import logging
from typing import Any

from gidgethub import routing, sansio

from bot.app.checks import is_our_check_name
from bot.app.context import BotContext, PullRequestRef
from bot.app.pull_request import PayloadError, field, int_field, repository, sha_field

log = logging.getLogger(__name__)

router = routing.Router()


def _submit_all(event: sansio.Event, bot: BotContext, pulls: Any) -> None:
    repo = repository(event.data)
    installation = int_field(event.data, "installation", "id")
    if pulls is None:
        pulls = []
    if not isinstance(pulls, list):
        raise PayloadError("pull_requests is not a list")
    # Every entry is read before any job is queued: a malformed one refuses the whole delivery.
    wanted = [(int_field(p, "number"), sha_field(p, "head", "sha")) for p in pulls]
    if not wanted:
        log.info("re-run requested in %s for no open pull request", repo.full_name)
    for number, head in wanted:
        bot.submit_review(
            PullRequestRef(repo, number, installation), head, f"{event.event} rerequested"
        )


@router.register("check_run", action="rerequested")
async def check_run_rerequested(event: sansio.Event, bot: BotContext) -> None:
    check_run = field(event.data, "check_run")
    app = field(check_run, "app")
    if (
        not is_our_check_name(str(check_run.get("name")))
        or str(field(app, "id")) != bot.config.app_id
    ):
        return  # another app's check
    _submit_all(event, bot, check_run.get("pull_requests"))


@router.register("check_suite", action="rerequested")
async def check_suite_rerequested(event: sansio.Event, bot: BotContext) -> None:
    _submit_all(event, bot, field(event.data, "check_suite").get("pull_requests"))
