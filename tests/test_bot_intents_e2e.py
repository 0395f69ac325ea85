"""End to end: declared communications and lint findings in a pull request's review.

The intents that gate are the base branch's; what the head violates and the base does not
is the pull request's. A forbidden path fails whatever the approvals, unless the pull
request changes the intent (then that change needs approval); an undeclared path needs
approval like a widening; lint findings the change introduces show as a section and as
annotations, and fail only at ``lint.fail_on``.
"""

from __future__ import annotations

from tests.botharness import (
    BASE,
    HEAD,
    NUMBER,
    REPO,
    Harness,
    base_tree,
    db_policy,
    review,
    setup_pull,
    sha,
)
from tests.test_bot_merge_gate import deliver_merge_group, latest

APPROVED = {"review.state": "approved"}
DENY_WEB_TO_DB = b"""\
apiVersion: reachdiff.io/v1alpha1
kind: Intent
metadata: {name: db}
spec:
  deny:
  - from: {namespace: shop, workload: Deployment/web}
    to: {namespace: shop, workload: Deployment/db}
    ports: TCP 5432
"""
SCOPE_SHOP = b"""\
apiVersion: reachdiff.io/v1alpha1
kind: Intent
metadata: {name: shop}
spec:
  scope: [{namespace: shop, workload: db}]
"""


async def approve(harness: Harness) -> None:
    harness.fake.add_review(REPO, NUMBER, user="alice", state="APPROVED", commit_id=HEAD)
    await review(harness, "pull_request_review", "submitted", overrides=APPROVED)


async def test_forbidden_path_fails_whatever_the_approvals(harness: Harness) -> None:
    base = base_tree(**{"intents/db.yaml": DENY_WEB_TO_DB})
    setup_pull(harness.fake, {**base, "policies/db.yaml": db_policy("web")}, base_files=base)
    await review(harness)
    check = harness.check(HEAD)
    assert check["conclusion"] == "failure"
    assert check["output"]["title"] == "1 new path the declared intents forbid"
    notes = {
        (a["path"], a["start_line"], a["annotation_level"]) for a in check["output"]["annotations"]
    }
    assert ("intents/db.yaml", 6, "failure") in notes
    body = harness.sticky()["body"]
    assert "no approval lifts" in body
    assert "shop/Deployment/web → shop/Deployment/db" in body
    assert "intents/db.yaml:6" in body
    await approve(harness)
    assert harness.check(HEAD)["conclusion"] == "failure"
    assert harness.fake.validation_errors == []


async def test_undeclared_path_needs_approval_like_a_widening(harness: Harness) -> None:
    base = base_tree(**{"intents/shop.yaml": SCOPE_SHOP})
    setup_pull(harness.fake, {**base, "policies/db.yaml": db_policy("web")}, base_files=base)
    await review(harness)
    assert harness.check(HEAD)["conclusion"] == "failure"
    body = harness.sticky()["body"]
    assert "new violations needing approval" in body and "undeclared" in body
    await approve(harness)
    assert harness.check(HEAD)["conclusion"] == "success"
    assert harness.fake.validation_errors == []


async def test_changing_the_intent_needs_approval_and_shows_its_diff(harness: Harness) -> None:
    base = base_tree(**{"intents/db.yaml": DENY_WEB_TO_DB})
    allowed = DENY_WEB_TO_DB.replace(b"deny:", b"allow:")
    head = {**base, "intents/db.yaml": allowed, "policies/db.yaml": db_policy("web")}
    setup_pull(harness.fake, head, base_files=base)
    await review(harness)
    check = harness.check(HEAD)
    assert check["conclusion"] == "failure"
    body = harness.sticky()["body"]
    assert "changes the declared communications" in body
    assert "-  deny:" in body and "+  allow:" in body
    assert "no approval lifts" not in body  # the head's intent no longer forbids it
    await approve(harness)
    assert harness.check(HEAD)["conclusion"] == "success"
    assert harness.fake.validation_errors == []


async def test_a_pull_request_only_editing_an_intent_needs_approval(harness: Harness) -> None:
    base = base_tree(**{"intents/db.yaml": DENY_WEB_TO_DB})
    head = {**base, "intents/db.yaml": DENY_WEB_TO_DB.replace(b"TCP 5432", b"TCP 5433")}
    setup_pull(harness.fake, head, base_files=base)
    await review(harness)
    assert harness.check(HEAD)["conclusion"] == "failure"
    await approve(harness)
    assert harness.check(HEAD)["conclusion"] == "success"


async def test_lint_findings_the_change_introduces(harness: Harness) -> None:
    settings = b"lint:\n  fail_on: warning\n"
    base = base_tree(**{".github/reachdiff.yml": settings})
    wide = db_policy("web").replace(
        b"    - podSelector:\n        matchLabels:\n          app: web\n",
        b"    - ipBlock: {cidr: 0.0.0.0/0}\n",
    )
    setup_pull(harness.fake, {**base, "policies/db.yaml": wide}, base_files=base)
    await review(harness)
    check = harness.check(HEAD)
    assert check["conclusion"] == "failure"
    notes = {
        (a["path"], a["start_line"], a["annotation_level"], a["title"])
        for a in check["output"]["annotations"]
    }
    assert ("policies/db.yaml", 12, "warning", "warning [allows-any-address]") in notes
    body = harness.sticky()["body"]
    assert "Least-privilege findings this pull request introduces" in body
    # Findings the base already had are not the pull request's.
    assert "unselected-workload" not in body
    await approve(harness)
    assert harness.check(HEAD)["conclusion"] == "failure"  # only the severity setting lifts it


async def test_without_declarations_or_lint_nothing_changes(harness: Harness) -> None:
    setup_pull(harness.fake, base_tree(**{"policies/db.yaml": db_policy("web")}))
    await review(harness)
    assert "Declared communications" not in harness.sticky()["body"]


async def test_an_invalid_intent_in_the_head_fails_naming_side_file_and_line(
    harness: Harness,
) -> None:
    base = base_tree(**{"intents/db.yaml": DENY_WEB_TO_DB})
    broken = DENY_WEB_TO_DB.replace(b"ports: TCP 5432", b"ports: tcp/5432")
    setup_pull(harness.fake, {**base, "intents/db.yaml": broken}, base_files=base)
    await review(harness)
    check = harness.check(HEAD)
    assert check["conclusion"] == "failure"
    assert check["output"]["title"] == "Invalid Intent or ConnectivityTest in the head"
    assert "head: intents/db.yaml:6:" in harness.sticky()["body"]
    await approve(harness)
    assert harness.check(HEAD)["conclusion"] == "failure"


async def test_an_invalid_base_intent_does_not_block_its_fix(harness: Harness) -> None:
    broken = DENY_WEB_TO_DB.replace(b"ports: TCP 5432", b"ports: tcp/5432")
    base = base_tree(**{"intents/db.yaml": broken})
    setup_pull(harness.fake, {**base, "intents/db.yaml": DENY_WEB_TO_DB}, base_files=base)
    await review(harness)
    assert harness.check(HEAD)["conclusion"] == "failure"
    assert "base: intents/db.yaml:6:" in harness.sticky()["body"]
    await approve(harness)
    assert harness.check(HEAD)["conclusion"] == "success"


async def test_a_merge_group_changing_an_intent_needs_the_pull_request_s_approval(
    harness: Harness,
) -> None:
    fake = harness.fake
    base = base_tree(**{"intents/db.yaml": DENY_WEB_TO_DB})
    head = {**base, "intents/db.yaml": DENY_WEB_TO_DB.replace(b"TCP 5432", b"TCP 5433")}
    setup_pull(fake, head, base_files=base)
    group = sha("queue-intent")
    fake.add_commit(REPO, group, head, parents=[BASE, HEAD], branch="gh-readonly-queue/x")
    await deliver_merge_group(harness, group, BASE)
    assert latest(harness, group)["conclusion"] == "failure"
    # The pull request's review shows the change; an approval after it lets the queue pass.
    await review(harness)
    await approve(harness)
    group2 = sha("queue-intent-2")
    fake.add_commit(REPO, group2, head, parents=[BASE, HEAD])
    await deliver_merge_group(harness, group2, BASE)
    assert latest(harness, group2)["conclusion"] == "success"
    assert fake.validation_errors == []
