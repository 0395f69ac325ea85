"""Approvals per owner rule: each group of gated paths needs its own owners' approvals.

Pure. Every rule of ``bot.approvals.evaluate_approvals`` applies within each group (latest
review, author excluded, current head or a carried-over approval, people only, the head's
pusher excluded, the gated delta seen); only who is authorized differs: a rule's users and
the active members of its teams, and for the paths no rule matches (and a change to
``.github/reachdiff.yml``), the fallback ``approvers``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from analysis.diff import PathChange
from analysis.endpoint_facts import EndpointFacts
from bot.review.approvals import (
    WHY_NOT_AUTHORIZED,
    WHY_NOT_OWNER,
    ApprovalStatus,
    OwnerApproval,
    Review,
    evaluate_approvals,
)
from bot.review.owners import FALLBACK, OwnerRule, Owners, assign

SETTINGS_CHANGE = "changes .github/reachdiff.yml"
DECLARED = "the intents, observed traffic or the blast radius ask for approval"


def describe_owners(rule: OwnerRule) -> str:
    """``@alice, @bob or a member of @acme/payments`` (logins and teams are validated)."""
    names = [f"@{u}" for u in sorted(rule.users)] + [f"a member of @{t}" for t in rule.teams]
    if len(names) == 1:
        return names[0]
    return f"{', '.join(names[:-1])} or {names[-1]}"


def owner_approvals(
    gated: Sequence[PathChange],
    owners: Owners,
    facts: Mapping[str, EndpointFacts],
    reviews: Sequence[Review],
    *,
    members: Callable[[int | None, str], bool],
    fallback_required: int,
    fallback_owners: str,
    settings_changed: bool = False,
    declared: bool = False,
    **common: Any,
) -> ApprovalStatus:
    """The approval status of a review with owner rules. ``members(rule, login)``: whether
    ``login`` may approve for rule index ``rule`` (None: the fallback approvers).
    ``common``: the other arguments of ``evaluate_approvals`` (head_sha, author, pushers,
    delta, shown, carried). A settings change and what the intents ask approval for
    (``declared``, ``bot.review.declared``) need the fallback approvers too."""

    def status(rule: int | None, required: int) -> ApprovalStatus:
        found = evaluate_approvals(
            reviews, is_authorized=lambda login: members(rule, login), required=required, **common
        )
        if rule is None:
            return found
        ignored = tuple(
            (login, WHY_NOT_OWNER if why == WHY_NOT_AUTHORIZED else why)
            for login, why in found.ignored
        )
        return ApprovalStatus(found.required, found.approved_by, ignored, found.carried)

    if not owners.rules or not (gated or settings_changed or declared):
        return status(None, fallback_required)
    by_rule, unmatched = assign(gated, owners, facts)
    groups = [
        OwnerApproval(
            rule=i,
            name=owners.rules[i].name,
            owners=describe_owners(owners.rules[i]),
            paths=paths,
            status=status(i, owners.rules[i].required_approvals),
        )
        for i, paths in by_rule.items()
    ]
    if unmatched or settings_changed or declared:
        groups.append(
            OwnerApproval(
                rule=None,
                name=FALLBACK,
                owners=fallback_owners,
                paths=unmatched,
                status=status(None, fallback_required),
                why="" if unmatched else SETTINGS_CHANGE if settings_changed else DECLARED,
            )
        )
    return combine(groups)


def combine(groups: Sequence[OwnerApproval]) -> ApprovalStatus:
    """One status over the groups: who approved anything, and what was not counted (a
    login ignored in one group but counted in another is not listed as ignored)."""
    approved = tuple(dict.fromkeys(u for g in groups for u in g.status.approved_by))
    counted = {u.lower() for u in approved}
    ignored = tuple(
        dict.fromkeys(
            (u, why) for g in groups for u, why in g.status.ignored if u.lower() not in counted
        )
    )
    carried = tuple(dict.fromkeys(c for g in groups for c in g.status.carried))
    return ApprovalStatus(
        required=sum(g.status.required for g in groups),
        approved_by=approved,
        ignored=ignored,
        carried=carried,
        owners=tuple(groups),
    )


def still_needed(status: ApprovalStatus) -> tuple[OwnerApproval, ...]:
    """The groups that still lack approvals, in rule order (fallback last)."""
    return tuple(g for g in status.owners if not g.status.approved)
