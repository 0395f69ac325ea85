"""``pull_request`` deliveries: a new or changed head, or a new base, means a new review."""

from __future__ import annotations

from gidgethub import routing, sansio

from bot.context import BotContext, PullRequestRef
from bot.github import Repository

router = routing.Router()


def pull_request_ref(event: sansio.Event) -> PullRequestRef:
    data = event.data
    return PullRequestRef(
        Repository.from_payload(data["repository"]),
        int(data["pull_request"]["number"]),
        int(data["installation"]["id"]),
    )


@router.register("pull_request", action="opened")
@router.register("pull_request", action="synchronize")
@router.register("pull_request", action="reopened")
@router.register("pull_request", action="ready_for_review")
async def head_changed(event: sansio.Event, bot: BotContext) -> None:
    head = event.data["pull_request"]["head"]["sha"]
    bot.submit_review(pull_request_ref(event), head, event.data["action"])


@router.register("pull_request", action="edited")
async def edited(event: sansio.Event, bot: BotContext) -> None:
    # A new title or body changes nothing; a new base branch changes what is compared.
    if "base" in (event.data.get("changes") or {}):
        head = event.data["pull_request"]["head"]["sha"]
        bot.submit_review(pull_request_ref(event), head, "base changed")
