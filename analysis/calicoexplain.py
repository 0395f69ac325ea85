"""``reachdiff explain`` for a direction Calico's tiers decide: each tier that applies, each
rule of its policies in Felix's order (which matched, on which ports, or why not), the
tier's end (its default action) and the profile's allow, each step with its policy, tier,
order, rule, file and line. The verdicts are the matcher's (``analysis.calicowalk``)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from analysis import ciliumexplain
from analysis.calicowalk import action_of
from analysis.ciliummodel import CompiledCiliumRule
from analysis.manifests import exact_rule_source
from analysis.matcher import (
    AnyRule,
    CalicoTierRow,
    CompiledAdminRule,
    CompiledCalicoRule,
    CompiledRule,
    Matcher,
)
from analysis.model import Direction, Source
from analysis.ports import NO_CONNECTIONS, ConnectionSet
from analysis.steps import ALLOW, DEFAULT, DENY, NO_MATCH, NOT_REACHED, PASS, UNKNOWN, Step

if TYPE_CHECKING:
    from analysis.reachability import ReachabilityMap

_VERDICT = {"Allow": ALLOW, "Deny": DENY, "Pass": PASS}


def calico_steps(
    rmap: ReachabilityMap,
    direction: Direction,
    owner: int,
    src: int,
    dst: int,
    question: ConnectionSet,
    steps: list[Step],
) -> ConnectionSet:
    """The steps of one direction, appended to ``steps``; what it allows of ``question``."""
    m = rmap.matcher
    peer = dst if direction is Direction.EGRESS else src
    peer_id = rmap.members[peer][0].id if rmap.members[peer] else str(peer)
    rows = m.calico[owner][direction]
    undecided, allowed = question, NO_CONNECTIONS
    for row in rows:
        passed = NO_CONNECTIONS
        for r in row.rules:
            if not undecided:
                steps.append(
                    _step(
                        rmap,
                        direction,
                        row,
                        r,
                        NOT_REACHED,
                        NO_CONNECTIONS,
                        "decided by an earlier rule",
                    )
                )
                continue
            action = action_of(r)
            if not m.admits(r, peer):
                maybe = _maybe(m, r, peer, undecided, dst)
                why = f"{_peer_text(r)} does not match {peer_id}"
                if maybe:
                    why += "; its nets may hold the pod's IP, which a manifest does not know"
                steps.append(
                    _step(
                        rmap,
                        direction,
                        row,
                        r,
                        UNKNOWN if maybe else NO_MATCH,
                        maybe,
                        f"{action} rule: {why}",
                    )
                )
                continue
            ports = m.ports_at(r, dst)
            hit = undecided & ports
            if not hit:
                steps.append(
                    _step(
                        rmap,
                        direction,
                        row,
                        r,
                        NO_MATCH,
                        NO_CONNECTIONS,
                        f"{action} rule: {_peer_text(r)} matches {peer_id}, but its "
                        f"protocols and ports ({ports or 'none here'}) do not "
                        f"include {undecided}",
                    )
                )
                continue
            undecided = undecided - hit
            detail = f"{action} rule: {_peer_text(r)} matches {peer_id} on {hit}"
            if action == "Pass":
                passed = passed | hit
                detail += ": Pass goes on to the next tier"
            elif action == "Allow":
                allowed = allowed | hit
            steps.append(_step(rmap, direction, row, r, _VERDICT[action], hit, detail))
        if undecided:
            end = row.tier.default_action
            first = row.policies[0].source
            where = row.tier.source or first
            names = ", ".join(p.id for p in row.policies)
            steps.append(
                Step(
                    direction.value,
                    row.tier.label,
                    row.policies[0].id if len(row.policies) == 1 else "",
                    where.file,
                    where.line,
                    "",
                    "",
                    PASS if end == "Pass" else DENY,
                    undecided,
                    f"end of the tier: no rule of the policies selecting the pod ({names}) "
                    f"decided {undecided}, so the tier's defaultAction {end} applies",
                )
            )
            if end == "Pass":
                passed = passed | undecided
        undecided = passed
    if undecided:
        steps.append(
            Step(
                direction.value,
                "",
                "",
                "",
                0,
                "",
                "",
                DEFAULT,
                undecided,
                f"every tier passed {undecided} on: the namespace's profile allows it",
            )
        )
        allowed = allowed | undecided
    expected = m.verdict(direction, src, dst).allowed & question
    assert allowed == expected, (allowed, expected)  # the steps must tell the verdict
    return allowed


def _maybe(m: Matcher, r: AnyRule, peer: int, undecided: ConnectionSet, dst: int) -> ConnectionSet:
    if r.maybe < 0 or not (m.peer_sets[r.maybe] >> peer) & 1:
        return NO_CONNECTIONS
    return undecided & m.ports_at(r, dst)


def _peer_text(r: AnyRule) -> str:
    if isinstance(r, CompiledCalicoRule):
        peer = r.rule.peer
        side = "source" if r.rule.direction is Direction.INGRESS else "destination"
        return f"{side} {{{peer.text}}}" if peer.text else f"every {side}"
    if isinstance(r, CompiledAdminRule):
        return "peer " + " or ".join(p.kind for p in r.rule.peers)
    if isinstance(r, CompiledCiliumRule):  # not in Calico's tiers; for completeness
        return ciliumexplain.describe(r)
    if not r.rule.peers:
        return "every peer"
    return "peer " + " or ".join(str(p) for p in r.rule.peers)


def _step(
    rmap: ReachabilityMap,
    direction: Direction,
    row: CalicoTierRow,
    r: AnyRule,
    verdict: str,
    ports: ConnectionSet,
    detail: str,
) -> Step:
    order: float | None
    if isinstance(r, CompiledCalicoRule):
        where: Source = r.rule.source
        order, name = r.policy.order, ""
    elif isinstance(r, CompiledAdminRule):
        where, name = r.rule.source, r.rule.name
        order = None if r.policy.priority is None else float(r.policy.priority)
    else:
        assert isinstance(r, CompiledRule)
        where, order, name = exact_rule_source(rmap.tree, r.policy, r.rule), 1000.0, ""
    shown = "no order" if order is None or math.isinf(order) else f"order {order:.15g}"
    return Step(
        direction.value,
        f"{row.tier.label}, policy {shown}",
        r.policy.id,
        where.file,
        where.line,
        r.rule.label,
        name,
        verdict,
        ports,
        detail,
    )
