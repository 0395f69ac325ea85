"""One direction of a connection decided the way Calico's Felix decides it, for an
endpoint that some Calico policy selects in that direction.

Tiers come in order (``order``, none last, then name); a tier is skipped unless one of its
policies selects the endpoint for the direction. Within a tier the policies' rules are
tried in order, the first whose peer, protocol and ports match decides: ``Allow`` and
``Deny`` end the evaluation, ``Pass`` goes on to the next tier, ``Log`` goes on to the next
rule. What no rule of a tier decides gets the tier's ``defaultAction``: Deny (the default),
or Pass. What passes every tier reaches the endpoint's profiles, which allow everything
for a Kubernetes pod (the namespace's profile).

Kubernetes NetworkPolicies are policies of the ``default`` tier at order 1000; admin
policies those of ``kube-admin`` (order 1000) and ``kube-baseline`` (order 10,000,000), both
with defaultAction Pass (``analysis.calicocompile`` builds the rows).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from analysis.matcher import (
    AnyRule,
    CalicoTierRow,
    CompiledAdminRule,
    CompiledCalicoRule,
    Decision,
    Matcher,
    Verdict,
    bit_indexes,
)
from analysis.model import AdminAction, Direction

if TYPE_CHECKING:
    from analysis.reachability import ReachabilityMap
from analysis.ports import ALL_CONNECTIONS, NO_CONNECTIONS, ConnectionSet


def action_of(rule: AnyRule) -> str:
    """Allow, Deny, Pass or Log."""
    if isinstance(rule, CompiledCalicoRule):
        return rule.rule.action
    if isinstance(rule, CompiledAdminRule):
        return "Pass" if rule.rule.action is AdminAction.PASS else rule.rule.action.decision
    return "Allow"  # a Kubernetes NetworkPolicy rule


def decide(matcher: Matcher, rows: tuple[CalicoTierRow, ...], peer: int, dst: int) -> Verdict:
    decisions: list[Decision] = []
    allowed = NO_CONNECTIONS
    undecided = ALL_CONNECTIONS  # what reaches the current tier
    for row in rows:
        if not undecided:
            break
        label = row.tier.label
        passed = NO_CONNECTIONS
        for r in row.rules:
            if not undecided:
                break
            if not matcher.admits(r, peer):
                hit = _maybe_hit(matcher, r, peer, undecided, dst)
                if hit:
                    decisions.append(Decision("Unknown", hit, r, tier=label))
                continue
            hit = undecided & matcher.ports_at(r, dst)
            if not hit:
                continue
            action = action_of(r)
            if action == "Log":
                continue
            undecided = undecided - hit
            decisions.append(Decision(action, hit, r, tier=label))
            if action == "Allow":
                allowed = allowed | hit
            elif action == "Pass":
                passed = passed | hit
        if undecided:
            # The end of the tier: its default action on what its policies left undecided.
            end = row.tier.default_action
            decisions.append(
                Decision(
                    "Pass" if end == "Pass" else "Isolate",
                    undecided,
                    policies=row.policies,
                    tier=label,
                )
            )
            if end == "Pass":
                passed = passed | undecided
        undecided = passed
    if undecided:
        decisions.append(Decision("Default", undecided))  # the profile allows
        allowed = allowed | undecided
    return Verdict(allowed, tuple(decisions))


def _maybe_hit(
    matcher: Matcher, rule: AnyRule, peer: int, undecided: ConnectionSet, dst: int
) -> ConnectionSet:
    """What ``rule`` would decide if its `nets` held the peer's address (unknown)."""
    if rule.maybe < 0 or not (matcher.peer_sets[rule.maybe] >> peer) & 1:
        return NO_CONNECTIONS
    return undecided & matcher.ports_at(rule, dst)


def calico_unknowns(rmap: ReachabilityMap) -> tuple[str, ...]:
    """One message per Calico rule that traffic between workloads reaches undecided while
    its `nets`, `notNets` or `ipVersion` may or may not match the peer's address."""
    matcher = rmap.matcher
    if not matcher.calico:
        return ()
    first = matcher.first_class
    workloads = matcher.live & ((1 << matcher.size) - 1) & ~((1 << first) - 1)
    found: dict[int, tuple[CompiledCalicoRule, int, int, Direction, str]] = {}
    scanned: set[tuple[object, ...]] = set()
    for owner in bit_indexes(workloads):
        for direction, rows in matcher.calico[owner].items():
            rules = [r for row in rows for r in row.rules]
            if not any(r.maybe >= 0 for r in rules):
                continue
            key = (direction, *map(id, rules))
            if key in scanned:
                continue
            scanned.add(key)
            for bits, verdict in matcher.verdict_blocks(direction, owner, workloads):
                for decision in verdict.decisions:
                    rule = decision.rule
                    if decision.action == "Unknown" and isinstance(rule, CompiledCalicoRule):
                        peer = (bits & -bits).bit_length() - 1
                        found.setdefault(
                            id(rule), (rule, owner, peer, direction, str(decision.ports))
                        )
    out = []
    for rule, owner, peer, direction, ports in found.values():
        src, dst = (peer, owner) if direction is Direction.INGRESS else (owner, peer)
        out.append(
            f"{rule.rule.source}: {rule.policy.id} {rule.rule.label}: traffic from "
            f"{rmap.members[src][0].id} to {rmap.members[dst][0].id} ({ports}) reaches this "
            "rule undecided, and whether its nets, notNets or ipVersion match that workload's "
            "address depends on pod IPs, which a manifest does not fix; reachdiff evaluates "
            "it as not matching. Decide workload traffic in an earlier rule or by selector"
        )
    return tuple(sorted(out))
