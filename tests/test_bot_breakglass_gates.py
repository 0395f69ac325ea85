"""End to end: what a break-glass waives (docs/bot.md, "Break-glass"). It waives the
approvals every gate asks for (widenings, observed traffic a change breaks, intent
violations needing approval), never a path the base's intents forbid, not even one the
head's intents lift (that needs approvals)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bot.app import checks
from tests.botharness import (
    HEAD,
    NUMBER,
    REPO,
    Harness,
    MakeHarness,
    base_tree,
    db_policy,
    setup_pull,
)
from tests.test_bot_approval_delta import Clock, deliver, latest
from tests.test_bot_intents_e2e import DENY_WEB_TO_DB
from tests.test_bot_owners import command
from tests.test_bot_traffic import CLOSED, base_with, summary

GLASS = b"break_glass: {users: [oncall]}\n"
APPROVED = {"review.state": "approved"}


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(checks, "now", c.now)
    return c


async def break_glass(harness: Harness, clock: Clock) -> dict[str, Any]:
    await deliver(harness)
    assert latest(harness, HEAD)["conclusion"] == "failure"
    clock.tick()
    await command(harness, clock, "oncall", "/reachdiff break-glass INC-7: checkout down")
    return latest(harness, HEAD)


async def test_break_glass_waives_the_approval_of_breaking_observed_traffic(
    make_harness: MakeHarness, clock: Clock, tmp_path: Path
) -> None:
    audit = tmp_path / "audit.jsonl"
    harness = await make_harness(audit_file=str(audit))
    # The traffic tests' change: web -> db keeps 6432 only, and 5 flows went over 5432.
    settings = GLASS.decode() + "flows: {path: ops/flows.json}\n"
    base = base_with(settings, **{"ops/flows.json": summary(5)})
    harness.fake.add_user("oncall")
    setup_pull(harness.fake, {**base, **CLOSED}, base_files=base)
    check = await break_glass(harness, clock)
    assert check["conclusion"] == "success"
    (event,) = [json.loads(line) for line in audit.read_text().splitlines()]
    assert "would break 5 observed flows (breaking_needs_approval)" in event["waived"]
    assert harness.fake.validation_errors == []


async def test_break_glass_never_waives_a_forbidden_path(harness: Harness, clock: Clock) -> None:
    base = base_tree(**{".github/reachdiff.yml": GLASS, "intents/db.yaml": DENY_WEB_TO_DB})
    harness.fake.add_user("oncall")
    setup_pull(harness.fake, {**base, "policies/db.yaml": db_policy("web")}, base_files=base)
    check = await break_glass(harness, clock)
    assert check["conclusion"] == "failure"
    assert check["output"]["title"] == "1 new path the declared intents forbid"


async def test_break_glass_never_waives_a_forbidden_path_the_head_lifts(
    harness: Harness, clock: Clock
) -> None:
    """The head rewrites the intent that forbids what it opens: approvals may let that in
    (the declaration change is shown to them), a break-glass may not."""
    base = base_tree(**{".github/reachdiff.yml": GLASS, "intents/db.yaml": DENY_WEB_TO_DB})
    lifted = DENY_WEB_TO_DB.replace(b"TCP 5432", b"TCP 5433")
    head = {**base, "policies/db.yaml": db_policy("web"), "intents/db.yaml": lifted}
    harness.fake.add_user("oncall")
    setup_pull(harness.fake, head, base_files=base)
    check = await break_glass(harness, clock)
    assert check["conclusion"] == "failure"
    assert check["output"]["title"] == (
        "1 path the base's intents forbid: break-glass does not waive them, approvals do"
    )
    added = harness.fake.add_review(REPO, NUMBER, user="alice", state="APPROVED", commit_id=HEAD)
    record = next(r for r in harness.fake.reviews if r["id"] == added["id"])
    record["submitted_at"] = clock.tick()
    await deliver(harness, "pull_request_review", "submitted", overrides=APPROVED)
    assert latest(harness, HEAD)["conclusion"] == "success"
    assert harness.fake.validation_errors == []
