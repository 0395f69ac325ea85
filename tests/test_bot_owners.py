"""End to end with the fake GitHub: owner rules, approvals carried over an unchanged delta,
break-glass, and a merge past a red check.

Times are controlled as in test_bot_approval_delta: the bot's clock (what its check runs
record as shown) and every approval's or command's time are a minute apart.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bot.app import checks
from tests.botharness import (
    BASE,
    HEAD,
    HEAD2,
    HEAD3,
    NUMBER,
    REPO,
    WORKLOADS,
    Harness,
    MakeHarness,
    db_policy,
    push,
    setup_pull,
)
from tests.test_bot_approval_delta import Clock, deliver, latest

SETTINGS = ".github/reachdiff.yml"


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(checks, "now", c.now)
    return c


def web_policy(peer_app: str) -> bytes:
    return (
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
        "metadata: {name: web-ingress, namespace: shop}\n"
        "spec:\n  podSelector: {matchLabels: {app: web}}\n  policyTypes: [Ingress]\n"
        f"  ingress:\n  - from:\n    - podSelector: {{matchLabels: {{app: {peer_app}}}}}\n"
        "    ports: [{port: 80}]\n"
    ).encode()


def tree(
    settings: str, db_peer: str = "api", web_peer: str = "api", **extra: bytes
) -> dict[str, bytes]:
    return {
        SETTINGS: settings.encode(),
        "apps/shop.yaml": WORKLOADS,
        "policies/db.yaml": db_policy(db_peer),
        "policies/web.yaml": web_policy(web_peer),
        **extra,
    }


def summary(check: dict[str, Any]) -> str:
    return str(check["output"]["title"]) + "\n" + str(check["output"]["summary"])


async def approve(h: Harness, clock: Clock, user: str, commit: str = HEAD) -> None:
    added = h.fake.add_review(REPO, NUMBER, user=user, state="APPROVED", commit_id=commit)
    record = next(r for r in h.fake.reviews if r["id"] == added["id"])
    record["submitted_at"] = clock.tick()
    await deliver(h, "pull_request_review", "submitted", overrides={"review.state": "approved"})
    clock.tick()


# ---- several owner rules -----------------------------------------------------------------

OWNERS = """\
cluster_scope: complete
approvers: {users: [alice]}
owners:
  - name: database
    destination: {pod_labels: {app: db}}
    teams: [octo-org/dba]
    required_approvals: 2
  - name: storefront
    destination: {workloads: [shop/Deployment/web]}
    users: [carol]
  - name: egress
    destination: {cidrs: [0.0.0.0/0]}
    users: [plat]
"""


async def test_each_owner_rule_needs_its_own_approvals(harness: Harness, clock: Clock) -> None:
    fake = harness.fake
    fake.add_team("octo-org", "dba", ["pam", "pete", "dana"])  # dana is the author
    for login in ("carol", "plat"):
        fake.add_user(login)
    setup_pull(fake, tree(OWNERS, db_peer="web", web_peer="db"), base_files=tree(OWNERS))
    await deliver(harness)
    check = latest(harness, HEAD)
    assert check["conclusion"] == "failure"
    text = summary(check)
    assert "needs approvals: 2 from database; 1 from storefront" in text
    assert (
        "**database**: needs 2 of 2 from a member of @octo-org/dba "
        "for 1 path to `shop/Deployment/db`" in text
    )
    assert "**storefront**: needs 1 of 1 from @carol for 1 path to `shop/Deployment/web`" in text
    assert "No opened path matched the other owner rules: egress." in text
    comments = harness.bot_review_comments()
    assert any(
        "Owners of these paths: a member of @octo-org/dba (database)" in c["body"] for c in comments
    )
    clock.tick()

    await approve(harness, clock, "dana")  # the author, though a member of dba
    await approve(harness, clock, "pam")
    await approve(harness, clock, "carol")
    check = latest(harness, HEAD)
    assert check["conclusion"] == "failure"
    body = harness.sticky()["body"]
    assert (
        "✅ **storefront**: approved for 1 path to `shop/Deployment/web`; approved by `@carol`"
        in body
    )
    assert "❌ **database**: needs 1 more of 2 from a member of @octo-org/dba" in body
    assert "approved by `@pam`" in body
    assert "`@dana` (is the pull request's author)" in body

    await approve(harness, clock, "pete")
    check = latest(harness, HEAD)
    assert check["conclusion"] == "success", summary(check)
    assert "✅ **database**" in harness.sticky()["body"]


# ---- carry-over --------------------------------------------------------------------------

KEEP = """\
cluster_scope: complete
approvers: {users: [alice, bob]}
keep_approvals_when_delta_unchanged: true
"""
NOTES = b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes, namespace: shop}\ndata: {a: b}\n"


async def test_an_approval_carries_over_an_identical_delta_only(
    harness: Harness, clock: Clock
) -> None:
    fake = harness.fake
    head_files = tree(KEEP, db_peer="web")
    setup_pull(fake, head_files, base_files=tree(KEEP))
    await deliver(harness)
    clock.tick()
    await approve(harness, clock, "alice")
    assert latest(harness, HEAD)["conclusion"] == "success"

    # An unrelated commit: the same delta, so alice's approval of HEAD still counts.
    push(fake, HEAD2, {**head_files, "apps/notes.yaml": NOTES}, HEAD)
    await deliver(harness, "pull_request", "synchronize", sender="dana", before=HEAD)
    check = latest(harness, HEAD2)
    assert check["conclusion"] == "success", summary(check)
    assert f"`@alice` (carried over from `{HEAD[:7]}`)" in harness.sticky()["body"]
    clock.tick()

    # One port more: any difference voids it.
    wider = {
        **head_files,
        "apps/notes.yaml": NOTES,
        "policies/db.yaml": db_policy("web", ports=(5432, 5433)),
    }
    push(fake, HEAD3, wider, HEAD2)
    await deliver(harness, "pull_request", "synchronize", sender="dana", before=HEAD2)
    check = latest(harness, HEAD3)
    assert check["conclusion"] == "failure"
    assert "carried over" not in harness.sticky()["body"]
    assert f"approved an older commit ({HEAD[:7]})" in harness.sticky()["body"]


async def test_a_carried_approval_does_not_count_for_its_own_pusher(
    harness: Harness, clock: Clock
) -> None:
    fake = harness.fake
    head_files = tree(KEEP, db_peer="web")
    setup_pull(fake, head_files, base_files=tree(KEEP))
    await deliver(harness)
    clock.tick()
    await approve(harness, clock, "alice")
    push(fake, HEAD2, {**head_files, "apps/notes.yaml": NOTES}, HEAD)
    await deliver(harness, "pull_request", "synchronize", sender="alice", before=HEAD)
    check = latest(harness, HEAD2)
    assert check["conclusion"] == "failure"
    assert "`@alice` (pushed the head commit)" in harness.sticky()["body"]


# ---- break-glass ---------------------------------------------------------------------------

GLASS = """\
cluster_scope: complete
approvers: {users: [alice]}
break_glass: {users: [oncall]}
"""


async def command(h: Harness, clock: Clock, user: str, body: str, at: str = "") -> None:
    record = h.fake.add_issue_comment(REPO, NUMBER, user=user, body=body)
    record["created_at"] = record["updated_at"] = at or clock.tick()
    overrides = {
        "issue.pull_request": {"url": f"{h.fake.url}/repos/{REPO}/pulls/{NUMBER}"},
        "comment.id": record["id"],
        "comment.body": body,
        "comment.user.login": user,
        "comment.user.type": "User",
        "comment.created_at": record["created_at"],
    }
    response = await h.deliver("issue_comment", "created", overrides=overrides)
    assert response.status == 202, await response.text()
    await h.settle()
    clock.tick()


@pytest.fixture
async def receiver(aiohttp_server: Any) -> tuple[str, list[dict[str, Any]]]:
    """A loopback webhook that records what the audit POSTs."""
    received: list[dict[str, Any]] = []

    async def post(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/audit", post)
    server = await aiohttp_server(app)
    return str(server.make_url("/audit")), received


async def test_break_glass_by_an_allowed_user_and_a_refused_one(
    make_harness: MakeHarness,
    clock: Clock,
    tmp_path: Path,
    receiver: tuple[str, list[dict[str, Any]]],
) -> None:
    url, received = receiver
    audit = tmp_path / "audit.jsonl"
    harness = await make_harness(audit_file=str(audit), audit_webhook_url=url)
    fake = harness.fake
    fake.add_user("oncall")
    setup_pull(fake, tree(GLASS, db_peer="web"), base_files=tree(GLASS))
    await deliver(harness)
    assert latest(harness, HEAD)["conclusion"] == "failure"
    clock.tick()

    await command(harness, clock, "mallory", "/reachdiff break-glass let me in")
    replies = [
        c
        for c in fake.comments_on(REPO, NUMBER)
        if c["user"] == fake.bot_login and "break-glass refused" in c["body"]
    ]
    assert len(replies) == 1
    assert (
        "@mallory break-glass refused: @mallory is not named under `break_glass`"
        in replies[0]["body"]
    )
    assert latest(harness, HEAD)["conclusion"] == "failure"

    await command(harness, clock, "oncall", "/reachdiff break-glass")  # no reason
    replies = [c for c in fake.comments_on(REPO, NUMBER) if "a reason is required" in c["body"]]
    assert len(replies) == 1
    assert latest(harness, HEAD)["conclusion"] == "failure"

    await command(harness, clock, "oncall", "Paging.\n/reachdiff break-glass INC-42: checkout down")
    check = latest(harness, HEAD)
    assert check["conclusion"] == "success"
    assert check["output"]["title"].startswith("Overridden by break-glass (@oncall)")
    body = harness.sticky()["body"]
    assert "Overridden by break-glass:** `@oncall`" in body
    assert "INC-42: checkout down" in body
    assert "Waived:" in body and "1 more approval" in body
    (line,) = audit.read_text().splitlines()
    event = json.loads(line)
    assert event["event"] == "break_glass" and event["actor"] == "oncall"
    assert event["reason"] == "INC-42: checkout down" and event["head_sha"] == HEAD
    assert received == [event]
    # A re-evaluation (another review event) does not audit the same break-glass again.
    await deliver(
        harness, "pull_request_review", "submitted", overrides={"review.state": "approved"}
    )
    assert len(audit.read_text().splitlines()) == 1

    # A push brings a new head: the break-glass was about the old one.
    push(fake, HEAD2, {**tree(GLASS, db_peer="web"), "apps/x.yaml": NOTES}, HEAD)
    await deliver(harness, "pull_request", "synchronize", sender="dana", before=HEAD)
    assert latest(harness, HEAD2)["conclusion"] == "failure"
    # A command older than the new head's result is refused as about another head.
    await command(
        harness, clock, "oncall", "/reachdiff break-glass again", at="2026-01-01T11:00:00Z"
    )
    assert latest(harness, HEAD2)["conclusion"] == "failure"
    assert any(
        f"it is not about the current head {HEAD2[:7]}" in c["body"]
        for c in fake.comments_on(REPO, NUMBER)
    )


# ---- a merge past a red check ---------------------------------------------------------------


async def test_a_merge_past_a_red_check_is_audited(
    make_harness: MakeHarness, clock: Clock, tmp_path: Path
) -> None:
    audit = tmp_path / "audit.jsonl"
    harness = await make_harness(audit_file=str(audit))
    fake = harness.fake
    setup_pull(fake, tree(GLASS, db_peer="web"), base_files=tree(GLASS))
    await deliver(harness)
    red = latest(harness, HEAD)
    assert red["conclusion"] == "failure"
    fake.merge_pull(REPO, NUMBER, "9" * 40)
    await deliver(
        harness,
        "pull_request",
        "closed",
        overrides={
            "pull_request.merged": True,
            "pull_request.merged_by": {"login": "admin", "type": "User", "id": 99},
            "pull_request.merged_at": "2026-01-01T13:00:00Z",
        },
    )
    lines = [json.loads(x) for x in audit.read_text().splitlines()]
    assert [e["event"] for e in lines] == ["merged_not_green"]
    assert lines[0]["actor"] == "admin" and lines[0]["check_conclusion"] == "failure"
    assert lines[0]["head_sha"] == HEAD and lines[0]["check_title"] == red["output"]["title"]
    body = harness.sticky()["body"]
    assert "Merged while `reachdiff (main)` was not green" in body and "@admin" in body
    assert BASE  # the base the pull request was reviewed against


async def test_break_glass_by_review(harness: Harness, clock: Clock) -> None:
    """A review's body works too, and its commit says which head it is about."""
    fake = harness.fake
    fake.add_user("oncall")
    setup_pull(fake, tree(GLASS, db_peer="web"), base_files=tree(GLASS))
    await deliver(harness)
    clock.tick()
    added = fake.add_review(
        REPO,
        NUMBER,
        user="oncall",
        state="COMMENTED",
        commit_id=HEAD,
        body="/reachdiff break-glass db migration window",
    )
    record = next(r for r in fake.reviews if r["id"] == added["id"])
    record["submitted_at"] = clock.tick()
    await deliver(
        harness,
        "pull_request_review",
        "submitted",
        overrides={
            "review.state": "commented",
            "review.body": record["body"],
            "review.id": record["id"],
            "review.user.login": "oncall",
            "review.user.type": "User",
            "review.commit_id": HEAD,
            "review.submitted_at": record["submitted_at"],
        },
    )
    check = latest(harness, HEAD)
    assert check["conclusion"] == "success"
    assert "db migration window" in harness.sticky()["body"]
