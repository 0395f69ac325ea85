"""Break-glass: a named person passes the check without the owners' approvals, on record.

Pure. The command is a line of an issue comment or a review body::

    /reachdiff break-glass <reason>

It counts when (all of them):

- it has a reason (why the emergency cannot wait), of at most ``MAX_REASON`` characters;
- its author is a person (not a ``Bot`` account) named under ``break_glass`` (a user, or
  an active member of a team; the shell answers ``is_allowed``);
- it is about the current head: a review's commit is the head, and a comment was made
  after the app had shown its result for the head (a comment made before a push does not
  waive what the push brought).

The newest such command wins; the pull request's author may use it when named (an
emergency fix is often the on-call's own). A command that does not count is refused in a
reply, saying why. Everything is read back from GitHub at each review: a restart loses
nothing, and the comment stays the record.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from analysis.wording import counted
from bot.review.approvals import CLOCK_MARGIN, Override, ShownDelta, _parse_time
from bot.review.breaks import breaks_lines, traffic_of
from bot.review.declared import approval_lines
from bot.review.settings import RepoSettings
from bot.review.verdict import assess

COMMAND = "/reachdiff break-glass"
MAX_REASON = 500
MAX_REQUESTS = 100  # commands read per pull request (the newest ones)
_LINE = re.compile(r"^[ \t]{0,3}/reachdiff[ \t]+break-glass(?:[ \t]+(.*))?$", re.MULTILINE)

WHY_NO_REASON = "a reason is required: `/reachdiff break-glass <why this cannot wait>`"
WHY_REASON_LONG = f"the reason is longer than {MAX_REASON} characters"
WHY_BOT = "bot accounts cannot break glass"
WHY_NOT_ALLOWED = "is not named under `break_glass` in .github/reachdiff.yml"
WHY_NOT_HEAD = (
    "it is not about the current head {head}: a comment counts once reachdiff has shown "
    "its result for that head (repeat it then), a review only on that commit"
)
WHY_NOT_CONFIGURED = "break-glass is not configured (`break_glass` in .github/reachdiff.yml)"


@dataclass(frozen=True, slots=True)
class Request:
    """One break-glass command, from an issue comment or a review."""

    id: int
    login: str
    user_type: str  # GitHub's account type: only "User" may break glass
    at: str  # ISO 8601 (created_at / submitted_at)
    reason: str
    source: str  # "comment" or "review"
    commit: str = ""  # a review's commit; "" for a comment
    url: str = ""

    @staticmethod
    def from_api(obj: Mapping[str, Any], source: str) -> Request | None:
        """From a REST or webhook issue comment (``source="comment"``) or review
        (``"review"``); None when it holds no command or cannot be attributed."""
        reason = parse_command(str(obj.get("body") or ""))
        user = obj.get("user")
        if (
            reason is None
            or not isinstance(user, Mapping)
            or not isinstance(user.get("login"), str)
        ):
            return None
        ident = obj.get("id")
        if not isinstance(ident, int) or isinstance(ident, bool):
            return None
        at = obj.get("submitted_at") if source == "review" else obj.get("created_at")
        if not isinstance(at, str) or not at:
            return None
        if source == "review" and str(obj.get("state") or "").upper() == "PENDING":
            return None
        return Request(
            id=ident,
            login=str(user["login"]),
            user_type=str(user.get("type") or ""),
            at=at,
            reason=reason,
            source=source,
            commit=str(obj.get("commit_id") or "") if source == "review" else "",
            url=str(obj.get("html_url") or ""),
        )


def parse_command(body: str) -> str | None:
    """The reason given with the command (``""`` when none), or None without a command.

    The command must start a line (up to three spaces before it, as Markdown allows), so
    a quote (``> /reachdiff break-glass``) or an indented code block does not count;
    neither does a line inside a fenced code block.
    """
    fenced = False
    for line in body.splitlines():
        stripped = line.strip()
        if stripped.startswith(("```", "~~~")):
            fenced = not fenced
            continue
        if fenced:
            continue
        found = _LINE.match(line)
        if found:
            return (found.group(1) or "").strip()
    return None


def refusal(request: Request, *, allowed: bool, configured: bool = True) -> str | None:
    """Why a command does not count whoever's head it is about (None: it may)."""
    if request.user_type != "User" or request.login.lower().endswith("[bot]"):
        return WHY_BOT
    if not configured:
        return WHY_NOT_CONFIGURED
    if not allowed:
        return f"@{request.login} {WHY_NOT_ALLOWED}"
    if not request.reason:
        return WHY_NO_REASON
    if len(request.reason) > MAX_REASON:
        return WHY_REASON_LONG
    return None


def about_head(request: Request, head_sha: str, shown: Sequence[ShownDelta]) -> bool:
    """Is the command about ``head_sha``? A review names its commit; a comment must come
    after the app showed a result for the head (``shown``: this head's completed runs),
    by more than the clock margin (the app's clock and GitHub's may differ)."""
    if request.source == "review":
        return request.commit == head_sha
    when = _parse_time(request.at)
    if when is None:
        return False
    for s in shown:
        at = _parse_time(s.at)
        if at is not None and at + CLOCK_MARGIN < when:
            return True
    return False


def decide(
    requests: Sequence[Request],
    *,
    head_sha: str,
    shown: Sequence[ShownDelta],
    is_allowed: Callable[[str], bool],
) -> Override | None:
    """The break-glass that passes the head's check: the newest command that counts."""
    for request in sorted(requests, key=lambda r: (r.at, r.id), reverse=True):
        if not about_head(request, head_sha, shown):
            continue
        if refusal(request, allowed=is_allowed(request.login)) is not None:
            continue
        return Override(request.login, request.at, request.reason, request.source, request.url)
    return None


def refusal_reply(request: Request, why: str) -> str:
    """The reply to a refused command (``why`` from ``refusal``)."""
    return (
        f"@{request.login} break-glass refused: {why}. The check still needs the approvals "
        "listed in the reachdiff comment."
    )


def waived_gates(
    diff: object, settings: RepoSettings, *, settings_changed: bool
) -> tuple[str, ...]:
    """The gates whose approvals a break-glass waives on this change, one line each, for
    the audit record (what fails whatever the approvals is never waived: docs/bot.md)."""
    assessment = assess(diff, settings)  # type: ignore[arg-type]
    out = []
    if assessment.gated:
        out.append(f"{counted(len(assessment.gated), 'opened path')} needing approval")
    if settings_changed:
        out.append("a change to .github/reachdiff.yml")
    if breaks_lines(diff, settings):
        traffic = traffic_of(diff)
        flows = traffic.broken_flows if traffic is not None else 0
        out.append(f"would break {counted(flows, 'observed flow')} (breaking_needs_approval)")
    if assessment.exposure_gates:
        out.append("a widened blast radius (exposure_widens)")
    if approval_lines(diff):
        out.append("intent violations or declaration changes needing approval")
    return tuple(out)
