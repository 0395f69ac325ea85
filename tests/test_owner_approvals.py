"""Decisions about approvals with owner rules, carry-over and break-glass. All pure."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from analysis.endpoint_facts import EndpointFacts
from analysis.reachability import Endpoint
from bot.app.audit import BREAK_GLASS, AuditEvent, Auditor
from bot.render.owners_md import describe_paths
from bot.review.approvals import (
    WHY_AUTHOR,
    WHY_NOT_OWNER,
    WHY_PUSHER,
    Override,
    Review,
    ShownDelta,
    carries_over,
    evaluate_approvals,
    older_approvals,
    reviewers_to_check,
)
from bot.review.breakglass import (
    WHY_BOT,
    WHY_NO_REASON,
    Request,
    decide,
    parse_command,
    refusal,
)
from bot.review.owner_approvals import DECLARED, SETTINGS_CHANGE, owner_approvals, still_needed
from bot.review.owners import EndpointSelector, OwnerRule, Owners
from bot.review.settings import RepoSettings
from bot.review.verdict import analysed_digest, assess, verdict_text
from tests.diff_builders import ReachabilityDiff, cause, external, opened, tcp, workload

HEAD, OLD = "h" * 40, "o" * 40
DB = Endpoint("payments/StatefulSet/db", "StatefulSet", "payments", "db")
WEB = workload("shop/Deployment/web")
TO_DB = opened(WEB, DB, tcp(5432), cause("payments/NetworkPolicy/db", "pay/db.yaml", 9))
TO_NET = opened(WEB, external("0.0.0.0/0"), tcp(443), cause("shop/NetworkPolicy/out", "e.yaml", 2))
TO_WEB = opened(DB, WEB, tcp(80), cause("shop/NetworkPolicy/web", "shop/web.yaml", 4))
FACTS: dict[str, EndpointFacts] = {}


def rule(
    index: int,
    name: str,
    selector: EndpointSelector,
    *,
    users: tuple[str, ...] = (),
    teams: tuple[str, ...] = (),
    required: int = 1,
) -> OwnerRule:
    return OwnerRule(index, index + 1, name, frozenset(users), teams, required, selector)


PAYMENTS = rule(
    0, "payments", EndpointSelector(namespaces=("payments",)), teams=("acme/payments",), required=2
)
PLATFORM = rule(1, "platform", EndpointSelector(cidrs=("0.0.0.0/0",)), users=("plat",))
OWNERS = Owners((PAYMENTS, PLATFORM))
TEAM = {"acme/payments": {"pam", "pete", "dana"}}


def members(index: int | None, login: str) -> bool:
    if index is None:
        return login in {"alice", "bob"}
    r = OWNERS.rules[index]
    return login in r.users or any(login in TEAM.get(t, set()) for t in r.teams)


def approval(n: int, user: str, commit: str = HEAD, minute: int = 10) -> Review:
    return Review(n, user, "APPROVED", commit, f"2026-01-01T12:{minute:02d}:00Z")


def evaluate(reviews: list[Review], gated: tuple = (TO_DB, TO_NET, TO_WEB), **kw: object):  # type: ignore[no-untyped-def,type-arg]
    args: dict[str, object] = dict(
        members=members,
        fallback_required=1,
        fallback_owners="@alice or @bob",
        head_sha=HEAD,
        author="dana",
        pushers=(),
    )
    args.update(kw)
    return owner_approvals(gated, OWNERS, FACTS, reviews, **args)  # type: ignore[arg-type]


def test_each_owner_group_needs_its_own_approvals() -> None:
    status = evaluate([approval(1, "pam"), approval(2, "plat")])
    groups = {g.name: g for g in status.owners}
    assert list(groups) == ["payments", "platform", "approvers"]
    assert groups["payments"].paths == (TO_DB,) and groups["payments"].status.missing == 1
    assert groups["platform"].status.approved and groups["platform"].paths == (TO_NET,)
    assert groups["approvers"].paths == (TO_WEB,) and not groups["approvers"].status.approved
    assert not status.satisfied and status.missing == 2
    assert [g.name for g in still_needed(status)] == ["payments", "approvers"]
    # pam's approval does not count for the fallback group, and is not listed as ignored
    # overall, since it counts for payments.
    assert ("pam", WHY_NOT_OWNER) not in status.ignored
    assert set(status.approved_by) == {"pam", "plat"}

    done = evaluate(
        [approval(1, "pam"), approval(2, "plat"), approval(3, "pete"), approval(4, "alice")]
    )
    assert done.satisfied and done.missing == 0 and not still_needed(done)


def test_the_author_among_owners_does_not_approve() -> None:
    status = evaluate(
        [approval(1, "dana"), approval(2, "pam"), approval(3, "pete")], gated=(TO_DB,)
    )
    (payments,) = status.owners
    assert payments.status.approved_by == ("pam", "pete")
    assert ("dana", WHY_AUTHOR) in status.ignored
    status = evaluate([approval(1, "dana"), approval(2, "pam")], gated=(TO_DB,))
    assert not status.satisfied and status.missing == 1


def test_someone_else_is_not_an_owner() -> None:
    status = evaluate([approval(1, "alice")], gated=(TO_NET,))
    assert not status.satisfied and ("alice", WHY_NOT_OWNER) in status.ignored


def test_one_person_can_approve_for_several_groups() -> None:
    both = Owners(
        (
            rule(0, "a", EndpointSelector(namespaces=("payments",)), users=("x",)),
            rule(1, "b", EndpointSelector(namespaces=("shop",)), users=("x",)),
        )
    )
    status = owner_approvals(
        (TO_DB, TO_WEB),
        both,
        FACTS,
        [approval(1, "x")],
        members=lambda i, login: login == "x",
        fallback_required=1,
        fallback_owners="",
        head_sha=HEAD,
        author="dana",
        pushers=(),
    )
    assert [g.name for g in status.owners] == ["a", "b"] and status.satisfied


def test_a_settings_change_adds_the_fallback_group() -> None:
    status = evaluate([approval(1, "plat")], gated=(TO_NET,), settings_changed=True)
    assert [g.name for g in status.owners] == ["platform", "approvers"]
    assert status.owners[1].why == SETTINGS_CHANGE and not status.satisfied


def test_without_rules_nothing_changes() -> None:
    status = owner_approvals(
        (TO_DB,),
        Owners(),
        FACTS,
        [approval(1, "alice")],
        members=members,
        fallback_required=1,
        fallback_owners="",
        head_sha=HEAD,
        author="dana",
        pushers=(),
    )
    assert status.owners == () and status.satisfied and status.approved_by == ("alice",)


# ---- carry-over --------------------------------------------------------------------------


def shown(minute: int, digest: str = "g", analysed: str = "A") -> ShownDelta:
    return ShownDelta(f"2026-01-01T12:{minute:02d}:00Z", digest, analysed)


def test_carry_over_needs_exactly_the_same_analysed_delta_seen() -> None:
    old = approval(1, "alice", OLD, minute=10)
    assert carries_over(old, [shown(5)], "A")
    assert not carries_over(old, [shown(5, analysed="B")], "A")
    assert not carries_over(old, [shown(5, analysed="")], "A")  # an older record
    assert not carries_over(old, [shown(20)], "A")  # shown after the approval only
    # A newer delta shown before the approval is what the approver saw.
    assert not carries_over(old, [shown(2), shown(6, analysed="B")], "A")
    assert carries_over(old, [shown(2, analysed="B"), shown(6)], "A")


def test_a_carried_approval_counts_but_the_new_pusher_is_excluded() -> None:
    reviews = [approval(1, "alice", OLD), approval(2, "bob", OLD)]
    assert older_approvals(reviews, head_sha=HEAD, author="dana") == {"alice": OLD, "bob": OLD}
    carried = {"alice": OLD, "bob": OLD}
    assert reviewers_to_check(reviews, head_sha=HEAD, author="dana", carried=carried) == {
        "alice",
        "bob",
    }
    status = evaluate_approvals(
        reviews,
        head_sha=HEAD,
        author="dana",
        is_authorized=lambda _: True,
        required=1,
        pushers=("bob",),
        delta="g",
        shown=(),
        carried=carried,
    )
    assert status.approved_by == ("alice",) and status.carried == (("alice", OLD),)
    assert ("bob", WHY_PUSHER) in status.ignored
    # Without the carry-over, both are stale.
    plain = evaluate_approvals(
        reviews, head_sha=HEAD, author="dana", is_authorized=lambda _: True, required=1
    )
    assert plain.approved_by == () and not plain.satisfied


def test_the_analysed_digest_sees_every_difference() -> None:
    s = RepoSettings()

    def digest(*changes: object, settings: str = "x", changed: bool = False) -> str:
        diff = ReachabilityDiff(opened=tuple(changes))  # type: ignore[arg-type]
        return analysed_digest(diff, assess(diff, s), settings=settings, settings_changed=changed)

    base = digest(TO_DB, TO_NET)
    assert digest(TO_NET, TO_DB) == base  # order does not matter
    moved = opened(WEB, DB, tcp(5432), cause("payments/NetworkPolicy/db", "other.yaml", 40))
    assert digest(moved, TO_NET) == base  # nor where the rule's lines are
    assert digest(TO_DB) != base  # a path fewer
    assert digest(opened(WEB, DB, tcp(5432, 5433), *TO_DB.because), TO_NET) != base  # a port
    other_rule = opened(
        WEB, DB, tcp(5432), cause("payments/NetworkPolicy/db", "pay/db.yaml", 9, "ingress[1]")
    )
    assert digest(other_rule, TO_NET) != base
    assert digest(TO_DB, TO_NET, settings="y") != base
    assert digest(TO_DB, TO_NET, changed=True) != base


# ---- break-glass -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("/reachdiff break-glass prod is down, INC-42", "prod is down, INC-42"),
        ("Context first.\n\n  /reachdiff break-glass   db failover  \nthanks", "db failover"),
        ("/reachdiff break-glass", ""),
        ("> /reachdiff break-glass quoted", None),
        ("```\n/reachdiff break-glass in code\n```", None),
        ("    /reachdiff break-glass indented code", None),
        ("please /reachdiff break-glass now", None),
        ("/reachdiff break-glasses x", None),
    ],
)
def test_the_command_starts_a_line(body: str, reason: str | None) -> None:
    assert parse_command(body) == reason


def request(
    login: str = "oncall",
    at: str = "2026-01-01T12:10:00Z",
    source: str = "comment",
    reason: str = "INC-42",
    commit: str = "",
    user_type: str = "User",
) -> Request:
    return Request(1, login, user_type, at, reason, source, commit)


def test_refusals_say_why() -> None:
    assert refusal(request(), allowed=True) is None
    assert refusal(request(user_type="Bot"), allowed=True) == WHY_BOT
    assert "not named under `break_glass`" in str(refusal(request(), allowed=False))
    assert refusal(request(reason=""), allowed=True) == WHY_NO_REASON
    assert "not configured" in str(refusal(request(), allowed=True, configured=False))


def test_a_break_glass_is_about_the_head_it_followed() -> None:
    allowed = {"oncall"}.__contains__
    after = [shown(5)]
    found = decide([request()], head_sha=HEAD, shown=after, is_allowed=allowed)
    assert found is not None and found.login == "oncall" and found.reason == "INC-42"
    # A comment before the head's result was shown was about an earlier head.
    assert decide([request()], head_sha=HEAD, shown=[shown(20)], is_allowed=allowed) is None
    assert decide([request()], head_sha=HEAD, shown=[], is_allowed=allowed) is None
    # A review names its commit.
    review = request(source="review", commit=HEAD)
    assert decide([review], head_sha=HEAD, shown=[], is_allowed=allowed) is not None
    old = request(source="review", commit=OLD)
    assert decide([old], head_sha=HEAD, shown=after, is_allowed=allowed) is None
    # Nobody else's counts; the newest that counts wins.
    assert decide([request("mallory")], head_sha=HEAD, shown=after, is_allowed=allowed) is None
    newer = Request(2, "oncall", "User", "2026-01-01T12:30:00Z", "still down", "comment")
    found = decide([request(), newer], head_sha=HEAD, shown=after, is_allowed=allowed)
    assert found is not None and found.reason == "still down"


def test_requests_from_the_api() -> None:
    comment = {
        "id": 5,
        "body": "/reachdiff break-glass x",
        "created_at": "2026-01-01T12:00:00Z",
        "user": {"login": "oncall", "type": "User"},
        "html_url": "https://x/c/5",
    }
    found = Request.from_api(comment, "comment")
    assert found == Request(
        5, "oncall", "User", "2026-01-01T12:00:00Z", "x", "comment", "", "https://x/c/5"
    )
    assert Request.from_api({**comment, "body": "hello"}, "comment") is None
    assert Request.from_api({**comment, "user": None}, "comment") is None
    review = {
        **comment,
        "submitted_at": "2026-01-01T12:00:00Z",
        "commit_id": HEAD,
        "state": "COMMENTED",
    }
    found = Request.from_api(review, "review")
    assert found is not None and found.commit == HEAD and found.source == "review"
    assert Request.from_api({**review, "state": "PENDING"}, "review") is None


async def test_audit_lines_are_json_once_per_key(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    auditor = Auditor(None, path=str(path))
    event = AuditEvent(
        BREAK_GLASS,
        "o/r",
        7,
        HEAD,
        "main",
        "oncall",
        "2026-01-01T12:00:00Z",
        reason="INC-42",
        waived=("needs @acme/payments: 1 more approval",),
    )
    assert await auditor.emit(event, key="k")
    assert not await auditor.emit(event, key="k")
    (line,) = path.read_text().splitlines()
    data = json.loads(line)
    assert data["event"] == "break_glass" and data["actor"] == "oncall"
    assert data["waived"] == ["needs @acme/payments: 1 more approval"]


# ---- what is said ------------------------------------------------------------------------


def test_paths_are_described_by_destination() -> None:
    other = opened(DB, DB, tcp(1))
    assert describe_paths([TO_DB, other, TO_NET]) == (
        "2 paths to `payments/StatefulSet/db`, egress to `0.0.0.0/0`"
    )
    many = [opened(WEB, workload(f"ns/Deployment/w{i}"), tcp(1)) for i in range(5)]
    assert describe_paths(many).endswith("and 2 more destinations")


def test_verdicts_name_missing_owners_and_overrides() -> None:
    diff = ReachabilityDiff(opened=(TO_DB, TO_NET, TO_WEB))
    a = assess(diff, RepoSettings())
    status = evaluate([approval(1, "plat")])
    said = verdict_text(a, status, required=1, approvers="x")
    assert said == "widened: 3 paths opened, needs approvals: 2 from payments; 1 from approvers"
    glass = Override("oncall", "2026-01-01T12:00:00Z", "INC-42", "comment")
    overridden = replace(status, override=glass)
    assert overridden.satisfied and not overridden.approved
    said = verdict_text(a, overridden, required=1, approvers="x")
    assert said.startswith("overridden by break-glass (@oncall): widened: 3 paths opened")


def test_intents_needing_approval_add_the_fallback_group() -> None:
    status = evaluate([approval(1, "plat")], gated=(TO_NET,), declared=True)
    assert [g.name for g in status.owners] == ["platform", "approvers"]
    assert status.owners[1].why == DECLARED and not status.satisfied
