"""``pull_request_review`` deliveries: only the approval is re-evaluated, not the analysis."""

from __future__ import annotations

from gidgethub import routing, sansio

from bot.context import BotContext
from bot.pull_request import pull_request_ref

router = routing.Router()


@router.register("pull_request_review", action="submitted")
@router.register("pull_request_review", action="dismissed")
@router.register("pull_request_review", action="edited")
async def review_changed(event: sansio.Event, bot: BotContext) -> None:
    state = str(event.data["review"].get("state") or "").lower()
    if event.data["action"] == "submitted" and state == "commented":
        # A comment neither grants nor revokes approval; this is also our own review's echo.
        return
    head = event.data["pull_request"]["head"]["sha"]
    bot.submit_approvals(pull_request_ref(event), head, f"review {event.data['action']}")
