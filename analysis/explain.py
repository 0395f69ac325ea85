"""Why a path opened or closed: the policy rules (file and line) responsible.

A connection needs both the source's egress and the destination's ingress, so each
direction is examined on its own and blamed only for the part of the delta it changed:
a rule is cited only if it (or its absence) is what made the difference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from analysis.model import Direction, NetworkPolicy, PolicyRule
from analysis.ports import NO_CONNECTIONS, ConnectionSet

if TYPE_CHECKING:
    from analysis.reachability import ReachabilityMap

ALLOWS = "allows"  # a head rule that admits the opened path
NO_LONGER_ISOLATES = "no longer isolates"  # a base policy that isolated the endpoint
NO_LONGER_ALLOWS = "no longer allows"  # a base rule that admitted the closed path
ISOLATES = "isolates"  # a head policy that newly isolates the endpoint


@dataclass(frozen=True, slots=True)
class Cause:
    policy: str  # ns/NetworkPolicy/name
    file: str
    line: int
    direction: str  # Ingress / Egress
    rule: str  # ingress[0], egress[1]; "" when the whole policy is the cause
    tree: str  # base / head: which tree file and line point into
    reason: str

    @staticmethod
    def of_rule(policy: NetworkPolicy, rule: PolicyRule, tree: str, reason: str) -> Cause:
        return Cause(
            policy.id,
            rule.source.file,
            rule.source.line,
            rule.direction.value,
            rule.label,
            tree,
            reason,
        )

    @staticmethod
    def of_policy(policy: NetworkPolicy, direction: Direction, tree: str, reason: str) -> Cause:
        return Cause(
            policy.id, policy.source.file, policy.source.line, direction.value, "", tree, reason
        )


def _owner(direction: Direction, src: int, dst: int) -> int:
    return dst if direction is Direction.INGRESS else src


def explain_opened(
    base: ReachabilityMap, head: ReachabilityMap, src: str, dst: str, delta: ConnectionSet
) -> tuple[Cause, ...]:
    hs, hd = head.index_of[src], head.index_of[dst]
    in_base = src in base.index_of and dst in base.index_of
    causes: list[Cause] = []
    for direction in Direction:
        if in_base:
            bs, bd = base.index_of[src], base.index_of[dst]
            before = base.matcher.allowed(direction, bs, bd)
        else:
            before = NO_CONNECTIONS
        need = delta - before
        if not need:
            continue
        parts = head.matcher.contributions(direction, hs, hd)
        if parts is not None:
            causes.extend(
                Cause.of_rule(r.policy, r.rule, "head", ALLOWS)
                for r, ports in parts
                if ports & need
            )
        elif in_base:
            owner = _owner(direction, bs, bd)
            for policy in _isolating(base, direction, owner):
                causes.append(Cause.of_policy(policy, direction, "base", NO_LONGER_ISOLATES))
    return _unique(causes)


def explain_closed(
    base: ReachabilityMap, head: ReachabilityMap, src: str, dst: str, delta: ConnectionSet
) -> tuple[Cause, ...]:
    if src not in head.index_of or dst not in head.index_of:
        return ()  # the endpoint is gone: the removal itself is the reason
    bs, bd = base.index_of[src], base.index_of[dst]
    hs, hd = head.index_of[src], head.index_of[dst]
    causes: list[Cause] = []
    for direction in Direction:
        need = delta - head.matcher.allowed(direction, hs, hd)
        if not need:
            continue
        parts = base.matcher.contributions(direction, bs, bd)
        if parts is None:
            was = {p.id for p in _isolating(base, direction, _owner(direction, bs, bd))}
            for policy in _isolating(head, direction, _owner(direction, hs, hd)):
                if policy.id not in was:
                    causes.append(Cause.of_policy(policy, direction, "head", ISOLATES))
        else:
            causes.extend(
                Cause.of_rule(r.policy, r.rule, "base", NO_LONGER_ALLOWS)
                for r, ports in parts
                if ports & need
            )
    return _unique(causes)


def _isolating(
    rmap: ReachabilityMap, direction: Direction, owner: int
) -> tuple[NetworkPolicy, ...]:
    if rmap.matcher.is_external(owner):
        return ()
    return rmap.matcher.isolating[owner].get(direction, ())


def _unique(causes: list[Cause]) -> tuple[Cause, ...]:
    return tuple(dict.fromkeys(causes))
