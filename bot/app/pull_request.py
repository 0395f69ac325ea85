"""``pull_request`` deliveries: a new or changed head, or a new base, means a new review.

Payloads are read strictly (``PayloadError`` on a missing field or a wrong type): a
validly signed body is still only trusted to be JSON, and a malformed one must get a 400
rather than a job that fails later, or a 500.
"""

from __future__ import annotations

import re
from typing import Any

from gidgethub import routing, sansio

from bot.app.context import BotContext, PullRequestRef
from bot.github.rest import Repository

router = routing.Router()

_SHA = re.compile(r"[0-9a-f]{40}")


class PayloadError(ValueError):
    """A delivery whose body lacks a field the bot reads, or has it with the wrong type."""


def field(data: Any, *path: str) -> Any:
    """``data[path[0]][path[1]]...``, each step a JSON object."""
    node = data
    for i, key in enumerate(path):
        if not isinstance(node, dict) or key not in node:
            raise PayloadError(f"no {'.'.join(path[: i + 1])}")
        node = node[key]
    return node


def text_field(data: Any, *path: str) -> str:
    value = field(data, *path)
    if not isinstance(value, str) or not value:
        raise PayloadError(f"{'.'.join(path)} is not a non-empty string")
    return value


def int_field(data: Any, *path: str) -> int:
    value = field(data, *path)
    # bool is an int in Python, JSON's true is not a number.
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise PayloadError(f"{'.'.join(path)} is not a positive integer")
    return value


def sha_field(data: Any, *path: str) -> str:
    value = text_field(data, *path)
    if not _SHA.fullmatch(value):
        raise PayloadError(f"{'.'.join(path)} is not a commit sha")
    return value


def repository(data: Any) -> Repository:
    return Repository(
        text_field(data, "repository", "owner", "login"), text_field(data, "repository", "name")
    )


def pull_request_ref(event: sansio.Event) -> PullRequestRef:
    data = event.data
    return PullRequestRef(
        repository(data),
        int_field(data, "pull_request", "number"),
        int_field(data, "installation", "id"),
    )


def sender_login(data: Any) -> str | None:
    """Who caused the delivery; None when the payload does not say (it is optional)."""
    sender = data.get("sender") if isinstance(data, dict) else None
    login = sender.get("login") if isinstance(sender, dict) else None
    return login if isinstance(login, str) and login else None


@router.register("pull_request", action="opened")
@router.register("pull_request", action="synchronize")
@router.register("pull_request", action="reopened")
@router.register("pull_request", action="ready_for_review")
async def head_changed(event: sansio.Event, bot: BotContext) -> None:
    head = sha_field(event.data, "pull_request", "head", "sha")
    pr = pull_request_ref(event)
    if event.data["action"] in ("opened", "synchronize"):
        # The sender of these is who pushed the head (GitHub's "most recent reviewable push").
        exact = event.data["action"] == "synchronize"
        bot.pushers.record(pr, head, sender_login(event.data), exact=exact)
    bot.submit_review(pr, head, event.data["action"])


@router.register("pull_request", action="edited")
async def edited(event: sansio.Event, bot: BotContext) -> None:
    # A new title or body changes nothing; a new base branch changes what is compared.
    changes = event.data.get("changes")
    if isinstance(changes, dict) and "base" in changes:
        head = sha_field(event.data, "pull_request", "head", "sha")
        bot.submit_review(pull_request_ref(event), head, "base changed")
