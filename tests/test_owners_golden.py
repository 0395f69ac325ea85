"""Golden outputs of what the app posts with owner rules, on the shop example's pull request
(examples/shop): the sticky comment, the check summary and a line comment, with partial
approvals (one carried over), and the same with the approvals overridden by break-glass.

Regenerate with ``REACHDIFF_UPDATE_GOLDEN=1`` when a change is intended, and read the diff.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from analysis.endpoint_facts import EndpointFacts
from bot.inputs.analyze import DiffResult, analyze
from bot.render.posts import (
    ReviewContext,
    render_check_output,
    render_comment,
    render_line_comments,
)
from bot.review.approvals import Override, Review, ShownDelta
from bot.review.owner_approvals import owner_approvals
from bot.review.settings import describe_approvers, parse_repo_settings
from bot.review.verdict import assess

ROOT = Path(__file__).resolve().parent.parent
SHOP = ROOT / "examples" / "shop"
GOLDEN = ROOT / "tests" / "fixtures" / "owners"
HEAD, OLD = "e" * 40, "c" * 40

SETTINGS = """\
cluster_scope: complete
approvers: {users: [alice, bob]}
keep_approvals_when_delta_unchanged: true
owners:
  - name: pci
    destination: {namespace_labels: {compliance: pci}}
    teams: [acme/payments-owners]
    required_approvals: 2
  - name: catalog-data
    source: {workloads: [catalog/StatefulSet/*]}
    users: [carol]
  - name: internet
    destination: {cidrs: [0.0.0.0/0]}
    teams: [acme/platform]
"""
MEMBERS = {0: {"pam", "pete"}, 1: {"carol"}, 2: {"plat"}, None: {"alice", "bob"}}


def matches_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("REACHDIFF_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert text == path.read_text(), "regenerate with REACHDIFF_UPDATE_GOLDEN=1 if intended"


def files(side: str) -> dict[str, bytes]:
    root = SHOP / side
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*.yaml")}


def review() -> tuple[DiffResult, ReviewContext]:
    settings = parse_repo_settings(SETTINGS)
    result = analyze(files("base"), files("head"), cluster_scope="complete")
    assert isinstance(result, DiffResult)
    facts: dict[str, EndpointFacts] = {f.id: f for f in result.endpoint_facts}
    at = "2026-01-01T12:{:02d}:00Z".format
    reviews = [
        Review(1, "pam", "APPROVED", OLD, at(10)),  # carried over from an identical delta
        Review(2, "carol", "APPROVED", HEAD, at(11)),
        Review(3, "dana", "APPROVED", HEAD, at(12)),  # the author
    ]
    approval = owner_approvals(
        assess(result, settings).gated,
        settings.owners,
        facts,
        reviews,
        members=lambda rule, login: login in MEMBERS[rule],
        fallback_required=1,
        fallback_owners=describe_approvers(settings, present=True),
        head_sha=HEAD,
        author="dana",
        pushers=(),
        delta="d",
        shown=[ShownDelta(at(1), "d")],
        carried={"pam": OLD},
    )
    context = ReviewContext(
        repository="acme/shop",
        server_url="https://github.com",
        base_sha="b" * 40,
        head_sha=HEAD,
        compared="base branch head bbbbbbb vs test merge commit eeeeeee",
        settings=settings,
        settings_present=True,
        approval=approval,
        approvers_description=describe_approvers(settings, present=True),
    )
    return result, context


def test_owner_groups_in_what_the_app_posts() -> None:
    result, context = review()
    approval = context.approval
    assert approval is not None
    groups = {g.name: g for g in approval.owners}
    assert list(groups) == ["pci", "catalog-data", "approvers"]
    # kube-system is only named here: it has just its name label, as the engine sees it.
    assert not any(p.dst.id.startswith("kube-system/") for p in groups["pci"].paths)
    assert any(p.dst.id.startswith("kube-system/") for p in groups["approvers"].paths)
    assert not groups["approvers"].status.approved
    assert groups["catalog-data"].status.approved
    assert groups["pci"].status.approved_by == ("pam",) and not approval.satisfied
    assert approval.carried == (("pam", OLD),)
    matches_golden("comment.md", render_comment(result, context))
    output = render_check_output(result, context)
    assert output.title.startswith("Widened:") and "1 from pci" in output.title
    matches_golden("check-summary.md", f"{output.title}\n\n{output.summary}")
    lines = render_line_comments(result, context)
    assert all("Owners of these paths:" in c.body for c in lines)
    matches_golden("line-comments.md", "\n----\n".join(c.body for c in lines))


def test_break_glass_in_what_the_app_posts() -> None:
    result, context = review()
    assert context.approval is not None
    glass = Override(
        "oncall",
        "2026-01-01T12:30:00Z",
        "INC-42: checkout down",
        "comment",
        "https://github.com/acme/shop/pull/7#issuecomment-9",
    )
    context = dataclasses.replace(
        context, approval=dataclasses.replace(context.approval, override=glass)
    )
    output = render_check_output(result, context)
    assert output.title.startswith("Overridden by break-glass (@oncall)")
    matches_golden("check-summary-overridden.md", f"{output.title}\n\n{output.summary}")
