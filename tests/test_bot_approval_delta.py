"""End to end: an approval counts only for the gated delta its approver could have seen.

The same head, approved, is merged into a base branch that moves under it: a move that makes
the head open more paths withdraws the approval (the check fails and the comment says
which paths are new), a move that leaves the gated paths as they were keeps it.

Times are controlled: the bot's clock (what its check runs record as shown) and each
approval's ``submitted_at`` are a minute apart, so what was seen before what is certain.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.app import checks
from bot.review.approvals import WHY_DELTA_CHANGED
from tests.botharness import (
    BASE,
    HEAD,
    NUMBER,
    REPO,
    WORKLOADS,
    Harness,
    base_tree,
    db_policy,
    setup_pull,
    sha,
)
from tests.fakegithub.payloads import make_payload
from tests.fakegithub.server import FakeGitHub
from tests.test_bot_merge_gate import deliver_merge_group

APPROVED = {"review.state": "approved"}
MAIN = "reachdiff (main)"
WEB, DB = (WORKLOADS.split(b"---\n")[i] for i in (0, 1))
# Another merged pull request's workload with web's pod labels: the head's rule admits it.
CANARY = WEB.replace(b"name: web\n  namespace", b"name: web-canary\n  namespace")
# One that no rule of the head concerns.
CACHE = DB.replace(b"db", b"cache")


class Clock:
    def __init__(self) -> None:
        self.at = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    def now(self) -> str:
        return self.at.strftime("%Y-%m-%dT%H:%M:%SZ")

    def tick(self) -> str:
        self.at += timedelta(minutes=1)
        return self.now()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(checks, "now", c.now)
    return c


def latest(h: Harness, head: str) -> dict[str, Any]:
    found = [r for r in h.fake.check_runs_for(REPO, head) if r["name"] == MAIN]
    assert found, f"no {MAIN} check run on {head[:7]}"
    return max(found, key=lambda r: int(r["id"]))


def shown(check: dict[str, Any]) -> str:
    return str(check["output"]["summary"]) + str(check["output"].get("text") or "")


async def deliver(
    h: Harness, event: str = "pull_request", action: str = "opened", **kw: Any
) -> None:
    kw.setdefault("base_ref", "main")
    response = await h.deliver(event, action, **kw)
    assert response.status == 202, await response.text()
    await h.settle()


async def approve(h: Harness, clock: Clock, user: str) -> None:
    """``user`` approves HEAD a minute after everything so far, and GitHub says so."""
    added = h.fake.add_review(REPO, NUMBER, user=user, state="APPROVED", commit_id=HEAD)
    record = next(r for r in h.fake.reviews if r["id"] == added["id"])
    record["submitted_at"] = clock.tick()
    await deliver(h, "pull_request_review", "submitted", overrides=APPROVED)
    clock.tick()


async def move_main(h: Harness, fake: FakeGitHub, before: str, name: str, **files: bytes) -> str:
    """Another pull request merges into main (adding ``files``); main's push is delivered."""
    after = sha(name)
    tree = {**fake.repo(REPO).commits[before].files, **files}
    fake.add_commit(REPO, after, tree, parents=[before])
    fake.set_branch(REPO, "main", after)
    payload = make_payload(
        "push",
        "push",
        full_name=REPO,
        installation_id=fake.installation_id,
        api_url=fake.url,
        overrides={"ref": "refs/heads/main", "before": before, "after": after},
    )
    response = await h.post("push", payload.body)
    assert response.status == 202, await response.text()
    await h.settle()
    return after


async def test_an_approval_does_not_cover_paths_a_later_base_opens(
    harness: Harness, clock: Clock
) -> None:
    fake = harness.fake
    setup_pull(fake, base_tree(**{"policies/db.yaml": db_policy("web")}))  # web -> db opens
    await deliver(harness)
    first = latest(harness, HEAD)
    assert first["conclusion"] == "failure"
    clock.tick()
    await approve(harness, clock, "alice")
    assert latest(harness, HEAD)["conclusion"] == "success"

    # The base moves without changing what the head opens: the approval still counts.
    main2 = await move_main(harness, fake, BASE, "main-cache", **{"apps/cache.yaml": CACHE})
    unchanged = latest(harness, HEAD)
    assert unchanged["id"] > first["id"]  # reviewed again against the new base head
    assert f"base branch head {main2[:7]}" in shown(unchanged)
    assert unchanged["conclusion"] == "success"
    assert WHY_DELTA_CHANGED not in harness.sticky()["body"]
    clock.tick()

    # Another merged pull request adds web-canary (app: web): the same head now also opens
    # web-canary -> db, which alice never saw.
    main3 = await move_main(harness, fake, main2, "main-canary", **{"apps/canary.yaml": CANARY})
    widened = latest(harness, HEAD)
    assert widened["id"] > unchanged["id"]
    assert f"base branch head {main3[:7]}" in shown(widened)
    assert widened["conclusion"] == "failure"
    assert "web-canary" in shown(widened)
    body = harness.sticky()["body"]
    assert WHY_DELTA_CHANGED in body and "alice" in body
    # An approval event re-evaluates against the same history: still not alice's.
    await deliver(harness, "pull_request_review", "submitted", overrides=APPROVED)
    assert latest(harness, HEAD)["conclusion"] == "failure"
    clock.tick()

    # Approved again, after the new paths were shown: green.
    await approve(harness, clock, "alice")
    final = latest(harness, HEAD)
    assert final["conclusion"] == "success"
    assert WHY_DELTA_CHANGED not in harness.sticky()["body"]
    # Every completed review recorded what it showed: the digest differs across the move.
    ids = [str(r["external_id"]).split("/") for r in (unchanged, final)]
    assert ids[0][0] == ids[1][0] == "reachdiff-gated" and ids[0][2] != ids[1][2]
    assert fake.validation_errors == []


async def test_a_merge_group_opening_more_than_was_approved_fails(
    harness: Harness, clock: Clock
) -> None:
    """The queued pull request's approval covers the group only when the group opens the
    same gated paths as that pull request's own review showed before the approval."""
    fake = harness.fake
    head_files = base_tree(**{"policies/db.yaml": db_policy("web")})
    setup_pull(fake, head_files)
    await deliver(harness)
    clock.tick()
    await approve(harness, clock, "alice")
    assert latest(harness, HEAD)["conclusion"] == "success"

    alone = sha("queue-alone")
    fake.add_commit(REPO, alone, head_files, parents=[BASE, HEAD])
    await deliver_merge_group(harness, alone, BASE)
    assert latest(harness, alone)["conclusion"] == "success"

    # A pull request queued ahead adds web-canary: the group also opens web-canary -> db.
    more = sha("queue-more")
    fake.add_commit(REPO, more, {**head_files, "apps/canary.yaml": CANARY}, parents=[BASE, HEAD])
    await deliver_merge_group(harness, more, BASE)
    check = latest(harness, more)
    assert check["conclusion"] == "failure"
    assert "web-canary" in shown(check)
    assert WHY_DELTA_CHANGED in shown(check)
