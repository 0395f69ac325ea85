"""The "Blast radius" section and ``exposure_widens``, end to end against the fake GitHub.

The pull request opens no path at all: it puts a LoadBalancer Service in front of ``web``,
which may reach the crown jewel ``db``. The jewel is now one hop from the internet, so
the change needs approval (``exposure_widens``, on by default).
"""

from __future__ import annotations

from analysis.exposure_report import ExposureChange
from analysis.reachability import Endpoint
from bot.inputs.exposure import ExposureReview
from bot.review.gating import alarming, exposure_needs_approval
from bot.review.settings import parse_repo_settings
from tests.botharness import (
    HEAD,
    NUMBER,
    REPO,
    Harness,
    base_tree,
    db_policy,
    review,
    setup_pull,
)
from tests.test_bot_e2e import APPROVED

DENY = (
    b"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
    b"metadata: {name: deny, namespace: shop}\n"
    b"spec:\n  podSelector: {}\n  policyTypes: [Ingress]\n"
)
LB = (
    b"apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\n"
    b"spec:\n  type: LoadBalancer\n  selector: {app: web}\n  ports: [{port: 80}]\n"
)
JEWELS = b"crown_jewels: [{podSelector: {matchLabels: {app: db}}}]\n"
DB = "shop/Deployment/db"


def trees(settings: bytes) -> tuple[dict[str, bytes], dict[str, bytes]]:
    base = base_tree(
        **{
            "policies/deny.yaml": DENY,
            "policies/db.yaml": db_policy("web"),
            ".github/reachdiff.yml": settings,
        }
    )
    return base, {**base, "apps/lb.yaml": LB}


async def test_a_crown_jewel_nearer_an_entry_point_needs_approval(harness: Harness) -> None:
    base, head = trees(JEWELS)
    setup_pull(harness.fake, head, base_files=base)
    await review(harness)
    assert harness.check(HEAD)["conclusion"] == "failure"
    body = harness.sticky()["body"]
    assert "Exposure widened: needs 1 approval" in body
    assert "### Blast radius" in body
    assert "(crown jewel): unreached → 1 hop from an entry point" in body
    assert "`exposure_widens`" in body
    chain = body[body.index("```mermaid", body.index("### Blast radius")) :]
    assert 'n0["shop/Deployment/web"]' in chain and 'n0 -->|"TCP 5432"| n1' in chain
    harness.fake.add_review(REPO, NUMBER, user="alice", state="APPROVED", commit_id=HEAD)
    await review(harness, "pull_request_review", "submitted", overrides=APPROVED)
    assert harness.check(HEAD)["conclusion"] == "success"


async def test_exposure_widens_false_shows_but_does_not_gate(harness: Harness) -> None:
    base, head = trees(JEWELS + b"exposure_widens: false\n")
    setup_pull(harness.fake, head, base_files=base)
    await review(harness)
    assert harness.check(HEAD)["conclusion"] == "success"
    body = harness.sticky()["body"]
    assert "### Blast radius" in body and "`exposure_widens`" not in body


async def test_without_crown_jewels_nothing_is_compared(harness: Harness) -> None:
    base, head = trees(b"diagram: true\n")
    setup_pull(harness.fake, head, base_files=base)
    await review(harness)
    assert harness.check(HEAD)["conclusion"] == "success"
    assert "Blast radius" not in harness.sticky()["body"]


def _change(
    jewel: bool, hops: tuple[int | None, int | None], blast: tuple[int | None, int]
) -> ExposureChange:
    return ExposureChange(
        Endpoint(DB, "Deployment", "shop", "db"), jewel, hops[0], hops[1], blast[0], blast[1], ()
    )


def test_gating_rules() -> None:
    jewels = parse_repo_settings(JEWELS)
    threshold = parse_repo_settings(b"blast_radius_threshold: 10\n")
    nearer = ExposureReview(((_change(True, (3, 2), (5, 5)), None),))
    farther = ExposureReview(((_change(True, (2, 3), (5, 5)), None),))
    grown = ExposureReview(((_change(False, (2, 2), (10, 11)), None),))
    above = ExposureReview(((_change(False, (2, 2), (11, 12)), None),))  # was past it already
    assert alarming(nearer, jewels) and exposure_needs_approval(nearer, jewels)
    assert not alarming(farther, jewels) and not exposure_needs_approval(farther, jewels)
    assert alarming(grown, threshold) and not alarming(grown, jewels)
    assert not alarming(above, threshold)
    # Not compared (too big) while the settings ask for it: fail closed.
    skipped = ExposureReview(skipped="exposure not compared: too many classes")
    assert exposure_needs_approval(skipped, jewels)
    assert not exposure_needs_approval(skipped, parse_repo_settings(b"diagram: true\n"))
    off = parse_repo_settings(JEWELS + b"exposure_widens: false\n")
    assert not exposure_needs_approval(nearer, off) and not exposure_needs_approval(skipped, off)
