"""What the approval decisions need from GitHub, gathered for one head: the reviews, the
deltas shown on this head (and, for carried approvals, on the older commits approved),
who may approve for each owner rule, and break-glass commands. The decisions themselves
are ``bot.review.approvals``, ``bot.review.owner_approvals`` and ``bot.review.breakglass``.

Every answer comes from GitHub at each evaluation (nothing is remembered across reviews),
so a restart changes no verdict.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from analysis.wording import counted
from bot.app.approvers import authorized_reviewers, is_active_member
from bot.app.audit import BREAK_GLASS, AuditEvent
from bot.github import rest as github
from bot.github.client import GitHubClient
from bot.inputs.analyze import DiffResult
from bot.review.approvals import (
    ApprovalStatus,
    Review,
    ShownDelta,
    carries_over,
    evaluate_approvals,
    latest_reviews,
    older_approvals,
    reviewers_to_check,
)
from bot.review.breakglass import MAX_REQUESTS, Request, decide
from bot.review.breaks import breaks_lines
from bot.review.declared import approval_lines
from bot.review.owner_approvals import owner_approvals, still_needed
from bot.review.owners import OwnerRule
from bot.review.owners_config import People
from bot.review.settings import RepoSettings
from bot.review.verdict import assess, more_approvals

if TYPE_CHECKING:
    from bot.app.context import BotContext, PullRequestRef

# Older commits whose check runs are read for carried approvals (one per approver at most).
MAX_CARRY_COMMITS = 20

# A completed review's check run records the deltas it showed, and when, in its
# ``external_id`` (only this app writes its runs):
# ``reachdiff-gated/v2/<gated digest>/<analysed digest>/<time>``; v1 records (before the
# analysed digest) have no analysed part and carry no approval over.
_V1 = "reachdiff-gated/v1/"
_V2 = "reachdiff-gated/v2/"


def shown_id(digest: str, analysed: str, now: str) -> str:
    return f"{_V2}{digest}/{analysed}/{now}"


def shown_delta(run: Mapping[str, Any]) -> ShownDelta | None:
    external_id = str(run.get("external_id") or "")
    if external_id.startswith(_V2):
        digest, _, rest = external_id[len(_V2) :].partition("/")
        analysed, _, at = rest.partition("/")
        return ShownDelta(at=at, digest=digest, analysed=analysed)
    if external_id.startswith(_V1):
        digest, _, at = external_id[len(_V1) :].partition("/")
        return ShownDelta(at=at, digest=digest)
    return None  # a failure before any delta was shown, or a withdrawn-base placeholder


async def shown_on(
    gh: GitHubClient, repo: github.Repository, commit: str, name: str, app_id: str
) -> list[ShownDelta] | None:
    """The deltas the app showed on ``commit`` in check run ``name``; None when the list
    was cut short (what was seen cannot be told)."""
    runs = await github.list_check_runs(gh, repo, commit, name, app_id=app_id)
    if len(runs) >= github.MAX_LISTED:
        return None
    return [d for r in runs if r.get("name") == name and (d := shown_delta(r)) is not None]


class Membership:
    """Team membership answers, asked once per (team, login) in one evaluation."""

    def __init__(self, gh: GitHubClient) -> None:
        self._gh = gh
        self._answers: dict[tuple[str, str], bool] = {}

    async def in_team(self, team: str, login: str) -> bool:
        key = (team, login.lower())
        if key not in self._answers:
            org, _, slug = team.partition("/")
            found = await github.get_team_membership(self._gh, org, slug, login)
            self._answers[key] = is_active_member(found)
        return self._answers[key]

    async def named(self, users: frozenset[str], teams: Iterable[str], login: str) -> bool:
        if login.lower() in users:
            return True
        for team in teams:
            if await self.in_team(team, login):
                return True
        return False


async def may_break_glass(membership: Membership, people: People | None, login: str) -> bool:
    return people is not None and await membership.named(people.users, people.teams, login)


async def break_glass_requests(
    gh: GitHubClient, repo: github.Repository, number: int, raw_reviews: Iterable[Any]
) -> list[Request]:
    """The newest break-glass commands of a pull request, from comments and reviews."""
    comments = await github.list_issue_comments(gh, repo, number)
    found = [r for c in comments if (r := Request.from_api(c, "comment")) is not None]
    found += [r for v in raw_reviews if (r := Request.from_api(v, "review")) is not None]
    return sorted(found, key=lambda r: (r.at, r.id))[-MAX_REQUESTS:]


async def approval_status(
    gh: GitHubClient,
    repo: github.Repository,
    number: int,
    settings: RepoSettings,
    head_sha: str,
    author: str,
    *,
    run_name: str,
    app_id: str,
    delta: str | None,
    pushers: Callable[[], Awaitable[tuple[str, ...] | None]],
    approvers_description: str,
    diff: DiffResult | None = None,
    settings_changed: bool = False,
    analysed: str | None = None,
) -> ApprovalStatus:
    """``delta``: the gated delta now; an approval counts only if its approver could have
    seen it on this head in ``run_name``. ``analysed``: the analysed delta now, for
    carried approvals. ``diff``: the analysis, whose gated paths owner rules divide."""
    raw = await github.list_pull_reviews(gh, repo, number)
    reviews = [r for r in (Review.from_api(item) for item in raw) if r is not None]
    carried: dict[str, str] = {}
    if settings.keep_approvals_when_delta_unchanged and analysed:
        older = older_approvals(reviews, head_sha=head_sha, author=author)
        latest = latest_reviews(reviews)
        for commit in sorted(set(older.values()))[:MAX_CARRY_COMMITS]:
            there = await shown_on(gh, repo, commit, run_name, app_id)
            for login, approved in older.items():
                if approved == commit and there and carries_over(latest[login], there, analysed):
                    carried[login] = commit
    candidates = reviewers_to_check(reviews, head_sha=head_sha, author=author, carried=carried)
    requests = await break_glass_requests(gh, repo, number, raw) if settings.break_glass else []
    pushed = await pushers() if candidates else ()
    shown: list[ShownDelta] = []
    if (candidates and delta is not None) or requests:
        shown = await shown_on(gh, repo, head_sha, run_name, app_id) or []
    membership = Membership(gh)
    common: dict[str, Any] = dict(
        head_sha=head_sha, author=author, pushers=pushed, delta=delta, shown=shown, carried=carried
    )
    fallback = await authorized_reviewers(gh, repo, settings, candidates)
    assessment = assess(diff, settings) if diff is not None else None
    gated = assessment.gated if assessment is not None else ()
    # What the intents, observed flows a closed path carried, or the blast radius ask
    # approval for: the fallback approvers' (no owner rule is about them).
    declared = diff is not None and (
        bool(approval_lines(diff) or breaks_lines(diff, settings))
        or (assessment is not None and assessment.exposure_gates)
    )
    if settings.owners.rules and (gated or settings_changed or declared):
        rules = settings.owners.rules
        owners_of: dict[int, set[str]] = {}
        for rule in rules:
            owners_of[rule.index] = await _owners_among(membership, rule, candidates)
        facts = {f.id: f for f in (diff.endpoint_facts if diff is not None else ())}
        status = owner_approvals(
            gated,
            settings.owners,
            facts,
            reviews,
            members=lambda rule, login: login in (fallback if rule is None else owners_of[rule]),
            fallback_required=settings.required_approvals,
            fallback_owners=approvers_description,
            settings_changed=settings_changed,
            declared=declared,
            **common,
        )
    else:
        status = evaluate_approvals(
            reviews,
            is_authorized=lambda login: login in fallback,
            required=settings.required_approvals,
            **common,
        )
    if requests and not status.approved:
        allowed = {
            r.login
            for r in requests
            if await may_break_glass(membership, settings.break_glass, r.login)
        }
        override = decide(requests, head_sha=head_sha, shown=shown, is_allowed=allowed.__contains__)
        if override is not None:
            status = dataclasses.replace(status, override=override)
    return status


async def _owners_among(membership: Membership, rule: OwnerRule, logins: Iterable[str]) -> set[str]:
    return {login for login in logins if await membership.named(rule.users, rule.teams, login)}


def waived(approval: ApprovalStatus) -> tuple[str, ...]:
    """What a break-glass waived, one line per owner group still lacking approvals."""
    groups = still_needed(approval)
    if not groups:
        return (f"needs {more_approvals(approval.missing)}",)
    return tuple(
        f"needs {g.owners} ({g.name}): {more_approvals(g.status.missing)}"
        + (f" for {counted(len(g.paths), 'path')}" if g.paths else f" ({g.why})" if g.why else "")
        for g in groups
    )


async def audit_override(
    bot: BotContext,
    pr: PullRequestRef,
    head_sha: str,
    base_ref: str,
    approval: ApprovalStatus,
    gates: tuple[str, ...] = (),
) -> None:
    """Emit the audit event of a check passed by break-glass (once per command);
    ``gates``: what the approvals were asked for (``waived_gates``)."""
    override = approval.override
    if override is None or approval.approved:
        return
    event = AuditEvent(
        event=BREAK_GLASS,
        repository=pr.repo.full_name,
        pull_request=pr.number,
        head_sha=head_sha,
        base_ref=base_ref,
        actor=override.login,
        at=override.at,
        reason=override.reason,
        check_conclusion="success",
        check_title="Overridden by break-glass",
        waived=waived(approval) + gates,
        url=override.url,
    )
    key = f"{BREAK_GLASS}:{pr.repo.full_name}#{pr.number}:{head_sha}:{override.login}:{override.at}"
    await bot.auditor.emit(event, key=key)
