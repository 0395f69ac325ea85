"""Break-glass commands and merges past a check that was not green: the app's side.

- ``issue_comment`` created on a pull request, or a review whose body holds
  ``/reachdiff break-glass <reason>``: a command by someone ``break_glass`` (base branch
  settings) does not name, without a reason, or by a bot, is refused in a reply; any
  other re-evaluates the approvals, where ``bot.review.breakglass.decide`` finds it.
- A check that passes by break-glass is audited once (``audit_override``).
- ``pull_request`` closed with ``merged: true``: when the newest ``reachdiff (BASE)`` run
  of the merged head is not a success, the merge is audited and noted in the sticky comment.
"""

from __future__ import annotations

import logging
from typing import Any

from gidgethub import routing, sansio

from bot.app.audit import MERGED_NOT_GREEN, AuditEvent
from bot.app.checks import check_name
from bot.app.context import BotContext, PullRequestRef
from bot.app.gate import Membership, may_break_glass, shown_on
from bot.app.pull_request import (
    PayloadError,
    field,
    int_field,
    pull_request_ref,
    repository,
    sha_field,
    text_field,
)
from bot.app.writes import is_own
from bot.github import rest as github
from bot.render.posts import COMMENT_LIMIT, MARKER
from bot.review.breakglass import (
    WHY_NOT_HEAD,
    Request,
    about_head,
    parse_command,
    refusal,
    refusal_reply,
)
from bot.review.settings import SETTINGS_PATH, SettingsError, parse_repo_settings

log = logging.getLogger(__name__)
router = routing.Router()

MERGE_NOTE = "<!-- reachdiff:merged-not-green -->"


@router.register("issue_comment", action="created")
async def comment_created(event: sansio.Event, bot: BotContext) -> None:
    issue = field(event.data, "issue")
    if not isinstance(issue, dict) or not isinstance(issue.get("pull_request"), dict):
        return  # an issue, not a pull request
    comment = field(event.data, "comment")
    if not isinstance(comment, dict) or parse_command(str(comment.get("body") or "")) is None:
        return
    request = Request.from_api(comment, "comment")
    if request is None:
        raise PayloadError("comment.user or comment.created_at is missing")
    pr = PullRequestRef(
        repository(event.data),
        int_field(event.data, "issue", "number"),
        int_field(event.data, "installation", "id"),
    )
    _submit_command(bot, pr, request)


def review_command(event: sansio.Event, bot: BotContext) -> bool:
    """A submitted review holding the command (``bot.app.reviews`` asks): handled here."""
    review = field(event.data, "review")
    if not isinstance(review, dict) or parse_command(str(review.get("body") or "")) is None:
        return False
    request = Request.from_api(review, "review")
    if request is None:
        return False
    _submit_command(bot, pull_request_ref(event), request)
    return True


def _submit_command(bot: BotContext, pr: PullRequestRef, request: Request) -> None:
    if request.user_type != "User" or request.login.lower().endswith("[bot]"):
        # Never answered: a bot (this app's own replies included) could loop.
        log.info("%s: break-glass by bot %s ignored", pr, request.login)
        return

    async def run() -> None:
        await handle_command(bot, pr, request)

    bot.submit_other(
        ("break-glass", *map(str, pr.key), str(request.id)),
        None,
        f"break-glass by {request.login} on {pr}",
        run,
    )


async def handle_command(bot: BotContext, pr: PullRequestRef, request: Request) -> None:
    """Refuse in a reply, or re-evaluate the approvals (which honour the command)."""
    gh = await bot.client(pr.installation_id)
    pull = await github.get_pull(gh, pr.repo, pr.number)
    if pull.get("state") != "open":
        return
    base_head = await github.get_branch_head(gh, pr.repo, pull["base"]["ref"])
    text = await github.get_file_content(gh, pr.repo, SETTINGS_PATH, base_head)
    try:
        settings = parse_repo_settings(text)
    except SettingsError:
        why: str | None = f"{SETTINGS_PATH} on the base branch is invalid"
    else:
        allowed = await may_break_glass(Membership(gh), settings.break_glass, request.login)
        why = refusal(request, allowed=allowed, configured=settings.break_glass is not None)
    head = pull["head"]["sha"]
    if why is None:
        name = check_name(pull["base"]["ref"])
        shown = await shown_on(gh, pr.repo, head, name, bot.config.app_id) or []
        if not about_head(request, head, shown):
            why = WHY_NOT_HEAD.format(head=head[:7])
    if why is not None:
        log.warning("%s: break-glass by %s refused: %s", pr, request.login, why)
        await github.create_issue_comment(gh, pr.repo, pr.number, refusal_reply(request, why))
        return
    bot.submit_approvals(pr, head, f"break-glass by {request.login}")


@router.register("pull_request", action="closed")
async def closed(event: sansio.Event, bot: BotContext) -> None:
    merged = field(event.data, "pull_request").get("merged")
    if merged is not True:
        return
    pr = pull_request_ref(event)
    head = sha_field(event.data, "pull_request", "head", "sha")
    base = text_field(event.data, "pull_request", "base", "ref")
    merged_by: Any = field(event.data, "pull_request").get("merged_by")
    actor = merged_by.get("login") if isinstance(merged_by, dict) else None
    if not isinstance(actor, str) or not actor:
        sender = event.data.get("sender")
        actor = sender.get("login") if isinstance(sender, dict) else ""
    at = field(event.data, "pull_request").get("merged_at")

    async def run() -> None:
        await audit_merge(bot, pr, head, base, str(actor or ""), str(at or ""))

    bot.submit_other(("merged", *map(str, pr.key)), head, f"merge audit of {pr}", run)


async def audit_merge(
    bot: BotContext, pr: PullRequestRef, head_sha: str, base_ref: str, actor: str, at: str
) -> None:
    """A merge of a head whose newest check run was not a success is audited and noted."""
    gh = await bot.client(pr.installation_id)
    name = check_name(base_ref)
    runs = await github.list_check_runs(gh, pr.repo, head_sha, name, app_id=bot.config.app_id)
    ours = [r for r in runs if r.get("name") == name]
    newest = max(ours, key=lambda r: int(r["id"]), default=None)
    conclusion = str(newest.get("conclusion") or newest.get("status") or "") if newest else ""
    if conclusion == "success":
        return
    output = newest.get("output") if newest else None
    title = str(output.get("title") or "") if isinstance(output, dict) else ""
    shown = conclusion or "missing"
    await bot.auditor.emit(
        AuditEvent(
            event=MERGED_NOT_GREEN,
            repository=pr.repo.full_name,
            pull_request=pr.number,
            head_sha=head_sha,
            base_ref=base_ref,
            actor=actor,
            at=at,
            check_conclusion=shown,
            check_title=title,
            url=str(newest.get("html_url") or "") if newest else "",
        ),
        key=f"{MERGED_NOT_GREEN}:{pr.repo.full_name}#{pr.number}:{head_sha}",
    )
    note = (
        f"\n\n{MERGE_NOTE}\n> [!CAUTION]\n> **Merged while `{name}` was not green**: "
        f"@{actor} merged {head_sha[:7]} at {at or 'an unknown time'} while its check was "
        f"`{shown}`" + (f" ({title})" if title else "") + ". This was recorded in the audit log.\n"
    )
    login = await bot.app_login()
    for comment in await github.list_issue_comments(gh, pr.repo, pr.number):
        body = str(comment.get("body") or "")
        if is_own(comment, login, bot.config.app_id) and MARKER in body:
            if MERGE_NOTE not in body:
                body = body[: COMMENT_LIMIT - len(note) - 1]
                await github.update_issue_comment(gh, pr.repo, int(comment["id"]), body + note)
            return
    await github.create_issue_comment(gh, pr.repo, pr.number, f"{MARKER}{note}")
