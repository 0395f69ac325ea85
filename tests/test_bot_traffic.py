"""End to end: a pull request closing a path that carried observed traffic (docs/traffic.md).
The flow summary lives on the base branch, named by the base branch's settings."""

from __future__ import annotations

import json

import pytest

from analysis.flows import FORWARDED, FlowEnd, FlowKey
from analysis.flowsummary import FlowStat, FlowSummary, summary_to_json
from bot.app import flowsource
from tests.botharness import (
    BASE,
    HEAD,
    NUMBER,
    REPO,
    Harness,
    MakeHarness,
    base_tree,
    db_policy,
    review,
    setup_pull,
    sha,
)
from tests.test_bot_merge_gate import deliver_merge_group, latest

# web -> db on TCP 5432 and 6432; the change keeps 6432 only: it narrows, nothing opens
APPROVED = {"review.state": "approved"}  # the webhook's lowercase review state
OPEN = base_tree(**{"policies/db.yaml": db_policy("web", ports=(5432, 6432))})
CLOSED = base_tree(**{"policies/db.yaml": db_policy("web", ports=(6432,))})


def summary(count: int = 12) -> bytes:
    key = FlowKey(
        FlowEnd("shop", workload="Deployment/web"),
        FlowEnd("shop", pod="db-7d4b9c8f5d-*"),
        "TCP",
        5432,
        FORWARDED,
    )
    doc = summary_to_json(FlowSummary(flows=(FlowStat(key, count, 1795600000, 1796000000),)))
    return json.dumps(doc).encode()


def base_with(settings: str, **extra: bytes) -> dict[str, bytes]:
    return {**OPEN, ".github/reachdiff.yml": settings.encode(), **extra}


async def test_closing_a_path_with_traffic_needs_approval(harness: Harness) -> None:
    base = base_with("flows: {path: ops/flows.json}\n", **{"ops/flows.json": summary()})
    setup_pull(harness.fake, {**base, **CLOSED}, base_files=base)
    await review(harness)
    check = harness.check(HEAD)
    # a narrowing alone passes; breaking observed traffic needs approval
    assert check["conclusion"] == "failure"
    assert check["output"]["title"].startswith("Would break 12 observed flows, needs approval")
    body = harness.sticky()["body"].replace("\\", "")
    assert "Would break 12 observed flows" in body
    assert "shop/Deployment/web" in body
    assert "2026-11-25T09:46:40Z to 2026-11-30T00:53:20Z (4.6 days)" in body  # the window
    assert "Would break 12 observed flows" in check["output"]["summary"].replace("\\", "")


async def test_breaking_without_approval_gate(make_harness: MakeHarness) -> None:
    harness = await make_harness()
    text = "flows: {path: ops/flows.json}\nbreaking_needs_approval: false\n"
    base = base_with(text, **{"ops/flows.json": summary()})
    setup_pull(harness.fake, {**base, **CLOSED}, base_files=base)
    await review(harness)
    assert harness.check(HEAD)["conclusion"] == "success"
    assert "Would break 12 observed flows" in harness.sticky()["body"].replace("\\", "")


async def test_missing_flow_data_is_said_never_nothing_breaks(harness: Harness) -> None:
    base = base_with("flows: {path: ops/flows.json}\n")
    setup_pull(harness.fake, {**base, **CLOSED}, base_files=base)
    await review(harness)
    body = harness.sticky()["body"].replace("\\", "")
    assert "No flow data" in body and "no such file on the base branch" in body
    assert "unknown" in body
    assert "No path this change closes" not in body


async def test_url_host_not_allowed_is_refused_without_fetching(harness: Harness) -> None:
    base = base_with('flows: {url: "https://flows.example/s.json?token=secret"}\n')
    setup_pull(harness.fake, {**base, **CLOSED}, base_files=base)
    await review(harness)
    body = harness.sticky()["body"].replace("\\", "")
    assert "does not allow fetching from flows.example" in body
    assert "secret" not in body


async def test_an_approval_of_the_shown_breaks_turns_it_green(harness: Harness) -> None:
    base = base_with("flows: {path: ops/flows.json}\n", **{"ops/flows.json": summary()})
    setup_pull(harness.fake, {**base, **CLOSED}, base_files=base)
    await review(harness)
    assert harness.check(HEAD)["conclusion"] == "failure"
    harness.fake.add_review(REPO, NUMBER, user="alice", state="APPROVED", commit_id=HEAD)
    await review(harness, "pull_request_review", "submitted", overrides=APPROVED)
    assert harness.check(HEAD)["conclusion"] == "success"


async def test_a_merge_group_breaking_observed_traffic_needs_the_pull_request_s_approval(
    harness: Harness,
) -> None:
    """The merge queue reads the base's flow data like the pull request's review does: a
    group closing a path that carried flows fails until the queued pull request is approved
    on the head the group contains."""
    fake = harness.fake
    base = base_with("flows: {path: ops/flows.json}\n", **{"ops/flows.json": summary()})
    head = {**base, **CLOSED}
    setup_pull(fake, head, base_files=base)
    group = sha("queue-breaks")
    fake.add_commit(REPO, group, head, parents=[BASE, HEAD], branch="gh-readonly-queue/x")
    await deliver_merge_group(harness, group, BASE)
    check = latest(harness, group)
    assert check["conclusion"] == "failure"
    assert "Would break 12 observed flows" in check["output"]["summary"].replace("\\", "")
    await review(harness)
    fake.add_review(REPO, NUMBER, user="alice", state="APPROVED", commit_id=HEAD)
    group2 = sha("queue-breaks-2")
    fake.add_commit(REPO, group2, head, parents=[BASE, HEAD])
    await deliver_merge_group(harness, group2, BASE)
    assert latest(harness, group2)["conclusion"] == "success"
    assert fake.validation_errors == []


async def test_a_merge_group_breaking_nothing_observed_passes(harness: Harness) -> None:
    fake = harness.fake
    other = summary().replace(b"5432", b"6432")  # the flows use the port that stays open
    base = base_with("flows: {path: ops/flows.json}\n", **{"ops/flows.json": other})
    head = {**base, **CLOSED}
    setup_pull(fake, head, base_files=base)
    group = sha("queue-keeps")
    fake.add_commit(REPO, group, head, parents=[BASE, HEAD], branch="gh-readonly-queue/y")
    await deliver_merge_group(harness, group, BASE)
    assert latest(harness, group)["conclusion"] == "success"


async def test_a_flow_summary_over_the_contents_api_s_1_mib_is_read_raw(harness: Harness) -> None:
    """GitHub inlines files up to 1 MiB in the contents API; a larger summary is read again
    with the raw media type (the fake answers as GitHub does: ``encoding: none``)."""
    padded = summary() + b" " * (3 * 1024 * 1024 // 2)  # JSON whitespace: still the summary
    base = base_with("flows: {path: ops/flows.json}\n", **{"ops/flows.json": padded})
    setup_pull(harness.fake, {**base, **CLOSED}, base_files=base)
    await review(harness)
    check = harness.check(HEAD)
    assert check["output"]["title"].startswith("Would break 12 observed flows, needs approval")
    raw = [r for r in harness.fake.requests if "flows.json" in r["path"]]
    assert any("vnd.github.raw" in r["headers"].get("accept", "") for r in raw)
    assert harness.fake.validation_errors == []


async def test_a_flow_summary_over_the_limit_is_refused_by_its_size(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # (the trees themselves refuse files past 2 MiB: the limit is lowered to test it)
    monkeypatch.setattr(flowsource, "MAX_FLOWS_BYTES", 1024 * 1024 + 1)
    padded = summary() + b" " * (3 * 1024 * 1024 // 2)
    base = base_with("flows: {path: ops/flows.json}\n", **{"ops/flows.json": padded})
    setup_pull(harness.fake, {**base, **CLOSED}, base_files=base)
    await review(harness)
    body = harness.sticky()["body"].replace("\\", "")
    assert "No flow data" in body and "larger than 1 MiB" in body
    accepts = [r["headers"].get("accept", "") for r in harness.fake.requests]
    assert not [a for a in accepts if "vnd.github.raw" in a]  # refused by the listed size
