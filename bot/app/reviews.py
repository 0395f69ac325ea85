"""``pull_request_review`` deliveries: only the approval is re-evaluated, not the analysis."""

from __future__ import annotations

from gidgethub import routing, sansio

from bot.app import breakglass_flow
from bot.app.context import BotContext
from bot.app.pull_request import PayloadError, field, pull_request_ref, sha_field

router = routing.Router()


@router.register("pull_request_review", action="submitted")
@router.register("pull_request_review", action="dismissed")
@router.register("pull_request_review", action="edited")
async def review_changed(event: sansio.Event, bot: BotContext) -> None:
    state = field(event.data, "review", "state")
    if not isinstance(state, str):
        raise PayloadError("review.state is not a string")
    head = sha_field(event.data, "pull_request", "head", "sha")
    pr = pull_request_ref(event)
    if event.data["action"] == "submitted":
        # A break-glass command is refused in a reply, or re-evaluates the approvals itself.
        breakglass_flow.review_command(event, bot)
    if event.data["action"] == "submitted" and state.lower() == "commented":
        # A comment neither grants nor revokes approval; this is also our own review's echo.
        return
    bot.submit_approvals(pr, head, f"review {event.data['action']}")
