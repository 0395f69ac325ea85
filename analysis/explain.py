"""Why a path opened or closed: the rules (file and line) responsible, with their tier.

A connection needs both the source's egress and the destination's ingress, so each
direction is examined on its own and blamed only for the part of the delta it changed; a
rule is cited only if it (or its absence) made the difference on those ports.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from analysis.ciliummodel import CiliumPolicy, CompiledCiliumRule, authentication_words
from analysis.manifests import exact_rule_source
from analysis.matcher import (
    CompiledAdminRule,
    CompiledCalicoRule,
    CompiledRule,
    Decision,
    Verdict,
)
from analysis.model import AdminPolicy, Direction, NetworkPolicy

if TYPE_CHECKING:
    from analysis.calicomodel import CalicoPolicy
from analysis.ports import NO_CONNECTIONS, ConnectionSet

if TYPE_CHECKING:
    from analysis.reachability import ReachabilityMap

ALLOWS = "allows"  # a head rule that admits the opened path
NO_LONGER_ISOLATES = "no longer isolates"  # a base policy that isolated the endpoint
NO_LONGER_DENIES = "no longer denies"  # a base admin rule that denied the path
NO_LONGER_ALLOWS = "no longer allows"  # a base rule that admitted the closed path
ISOLATES = "isolates"  # a head policy that newly isolates the endpoint
DENIES = "denies"  # a head admin rule that denies the path
PASSES = "passes"  # a head admin rule that newly hands the ports to the next tier
NO_LONGER_PASSES = "no longer passes"  # a base Pass (rule or tier end) the head lacks


@dataclass(frozen=True, slots=True)
class Cause:
    policy: str  # ns/NetworkPolicy/name, AdminNetworkPolicy/name, ClusterNetworkPolicy/name…
    file: str
    line: int
    direction: str  # Ingress / Egress
    rule: str  # ingress[0], egress[1]; "" when the whole policy is the cause
    tree: str  # base / head: which tree file and line point into
    reason: str
    # or "AdminNetworkPolicy (priority 10)", "BaselineAdminNetworkPolicy",
    # "ClusterNetworkPolicy Admin tier (priority 10)", "ClusterNetworkPolicy Baseline tier (…)"
    tier: str = "NetworkPolicy"
    # for admin and Calico rules, as the manifest spells it: Allow, Accept, Deny, Pass; for
    # the end of a Calico tier, its default action (Deny or Pass)
    action: str = ""
    rule_name: str = ""  # admin rules have names
    # Calico rules and tier ends carry tier "Calico tier <name> (order N)".
    # A Cilium rule whose toPorts carry L7 rules: allowed at L4, requests filtered by these
    # ("L7-filtered: …"); "" otherwise.
    l7: str = ""
    # A Cilium rule that requires mutual authentication: allowed once the handshake between
    # the two identities succeeds, at run time ("mutual authentication required: …").
    authentication: str = ""


def _causes(
    decision: Decision, direction: Direction, tree: str, reason: str, rmap: ReachabilityMap
) -> list[Cause]:
    rule = decision.rule
    if isinstance(rule, CompiledRule):
        r = rule.rule
        where = exact_rule_source(rmap.tree, rule.policy, r)
        return [
            Cause(rule.policy.id, where.file, where.line, direction.value, r.label, tree, reason)
        ]
    if isinstance(rule, CompiledAdminRule):
        a, p = rule.rule, rule.policy
        tier = p.tier_label
        return [
            Cause(
                p.id,
                a.source.file,
                a.source.line,
                direction.value,
                a.label,
                tree,
                reason,
                tier=tier,
                action=a.action.value,
                rule_name=a.name,
            )
        ]
    if isinstance(rule, CompiledCalicoRule):
        c = rule.rule
        return [
            Cause(
                rule.policy.id,
                c.source.file,
                c.source.line,
                direction.value,
                c.label,
                tree,
                reason,
                tier=decision.tier,
                action=c.action,
            )
        ]
    if isinstance(rule, CompiledCiliumRule):
        cr, cp = rule.rule, rule.policy
        return [
            Cause(
                cp.id,
                cr.source.file,
                cr.source.line,
                direction.value,
                cr.label,
                tree,
                reason,
                tier=cp.kind,
                action="Deny" if cr.deny else "Allow",
                l7=f"L7-filtered: {cr.l7}" if cr.l7 and not cr.deny else "",
                authentication=authentication_words(cr),
            )
        ]
    if decision.tier:  # the end of a Calico tier: its default action decided
        end = "Pass" if decision.action == "Pass" else "Deny"
        return [
            _policy_cause(p, direction, tree, reason, decision.tier, end) for p in decision.policies
        ]
    return [_policy_cause(p, direction, tree, reason) for p in decision.policies]


def decision_causes(
    decision: Decision, direction: Direction, tree: str, reason: str, rmap: ReachabilityMap
) -> list[Cause]:
    """The causes one decision of a verdict cites (its rule, or the isolating policies)."""
    return _causes(decision, direction, tree, reason, rmap)


def _policy_cause(
    policy: NetworkPolicy | AdminPolicy | CalicoPolicy | CiliumPolicy,
    direction: Direction,
    tree: str,
    reason: str,
    tier: str = "NetworkPolicy",
    action: str = "",
) -> Cause:
    s = policy.source
    if isinstance(policy, CiliumPolicy):
        tier = policy.kind
    return Cause(policy.id, s.file, s.line, direction.value, "", tree, reason, tier, action)


Memo = dict[tuple[object, ...], tuple[Cause, ...]]
# Per direction examined: the part of the delta it decided, its verdict in the head and
# (None for a pair the base does not have) in the base.
Needs = dict[Direction, tuple[ConnectionSet, Verdict, Verdict | None]]


def explain_opened(
    base: ReachabilityMap,
    head: ReachabilityMap,
    src: str,
    dst: str,
    delta: ConnectionSet,
    memo: Memo | None = None,
) -> tuple[Cause, ...]:
    """The causes of ``delta`` opening from ``src`` to ``dst``. Pairs decided by the same
    verdicts (``Matcher.verdict`` hands out one object per decision) share their causes
    through ``memo``."""
    hs, hd = head.index_of[src], head.index_of[dst]
    in_base = src in base.index_of and dst in base.index_of
    bs, bd = (base.index_of[src], base.index_of[dst]) if in_base else (-1, -1)
    # Per direction: the ports it no longer blocks, and the verdicts that decided them.
    needs: Needs = {}
    for direction in Direction:
        need = delta - base.matcher.allowed(direction, bs, bd) if in_base else delta
        if need:
            old = base.matcher.verdict(direction, bs, bd) if in_base else None
            needs[direction] = (need, head.matcher.verdict(direction, hs, hd), old)
    return _opened(base, head, needs, hs, hd, memo)


def explain_opened_by(
    base: ReachabilityMap,
    head: ReachabilityMap,
    direction: Direction,
    delta: ConnectionSet,
    now: Verdict,
    old: Verdict,
    owner: int,
    memo: Memo | None = None,
) -> tuple[Cause, ...]:
    """``explain_opened`` for a pair on both sides whose other direction allows the same
    on both sides (so ``delta`` is all this direction's doing), given its verdicts and
    its ``owner`` in the head."""
    if not delta:
        return ()
    need = delta - old.allowed
    needs: Needs = {direction: (need, now, old)} if need else {}
    return _opened(base, head, needs, owner, owner, memo)


def _opened(
    base: ReachabilityMap,
    head: ReachabilityMap,
    needs: Needs,
    hs: int,
    hd: int,
    memo: Memo | None,
) -> tuple[Cause, ...]:
    def causes() -> Iterator[Cause]:
        for direction, (need, now, old) in needs.items():
            defaulted = NO_CONNECTIONS
            for dec in now.decisions:
                if dec.action == "Allow" and dec.ports & need:
                    yield from _causes(dec, direction, "head", ALLOWS, head)
                elif dec.action == "Default":
                    defaulted = dec.ports & need
                elif dec.action == "Pass" and (dec.ports & need) - _same_passes(dec, old):
                    yield from _causes(dec, direction, "head", PASSES, head)
            if old is None:
                continue
            owner = hd if direction is Direction.INGRESS else hs
            tiers_now = _tier_policies(head, direction, owner)
            # What used to deny these ports: an admin Deny rule that no longer matches, or
            # (when nothing decides any more) the policies that isolated the endpoint.
            for dec in old.decisions:
                if dec.action == "Deny" and dec.ports & need:
                    yield from _causes(dec, direction, "base", NO_LONGER_DENIES, base)
                elif (
                    dec.action == "Isolate"
                    and dec.ports & defaulted
                    # A Calico tier that a policy still selecting the pod keeps applying
                    # still ends in Deny: a rule that now passes the ports is the cause.
                    and not {p.id for p in dec.policies} & tiers_now.get(dec.tier, set())
                ):
                    yield from _causes(dec, direction, "base", NO_LONGER_ISOLATES, base)

    return _remembered(memo, ("opened", *_decided_by(needs)), causes)


def explain_closed(
    base: ReachabilityMap,
    head: ReachabilityMap,
    src: str,
    dst: str,
    delta: ConnectionSet,
    memo: Memo | None = None,
) -> tuple[Cause, ...]:
    """The causes of ``delta`` closing from ``src`` to ``dst`` (``memo`` as for opened)."""
    if src not in head.index_of or dst not in head.index_of:
        return ()  # the endpoint is gone: the removal itself is the reason
    bs, bd = base.index_of[src], base.index_of[dst]
    hs, hd = head.index_of[src], head.index_of[dst]
    needs: Needs = {}
    for direction in Direction:
        need = delta - head.matcher.allowed(direction, hs, hd)
        if need:
            needs[direction] = (
                need,
                head.matcher.verdict(direction, hs, hd),
                base.matcher.verdict(direction, bs, bd),
            )
    return _closed(base, head, needs, bs, bd, memo)


def explain_closed_by(
    base: ReachabilityMap,
    head: ReachabilityMap,
    direction: Direction,
    delta: ConnectionSet,
    now: Verdict,
    old: Verdict,
    owner: int,
    memo: Memo | None = None,
) -> tuple[Cause, ...]:
    """``explain_closed`` for a pair on both sides whose other direction allows the same
    on both sides, given the verdicts of ``direction`` and its ``owner`` in the base."""
    if not delta:
        return ()
    need = delta - now.allowed
    needs: Needs = {direction: (need, now, old)} if need else {}
    return _closed(base, head, needs, owner, owner, memo)


def _closed(
    base: ReachabilityMap,
    head: ReachabilityMap,
    needs: Needs,
    bs: int,
    bd: int,
    memo: Memo | None,
) -> tuple[Cause, ...]:
    def causes() -> Iterator[Cause]:
        for direction, (need, now, old) in needs.items():
            assert old is not None  # a closed pair is in the base
            owner = bd if direction is Direction.INGRESS else bs
            was_isolated = {p.id for p in base.matcher.isolating[owner].get(direction, ())}
            # Per Calico tier that applied in the base: the policies selecting the owner.
            tiers_before = _tier_policies(base, direction, owner)
            was_isolated.update(i for ids in tiers_before.values() for i in ids)
            row = base.matcher.cilium_row(direction, owner)
            was_isolated.update(p.id for p in (row.isolating if row is not None else ()))
            explained = NO_CONNECTIONS
            for dec in now.decisions:
                if not dec.ports & need:
                    continue
                if dec.action == "Deny":
                    yield from _causes(dec, direction, "head", DENIES, head)
                    explained = explained | dec.ports
                elif dec.action == "Isolate":
                    # A Calico tier that some policy still selecting the pod made apply
                    # before isolated the pod before: what changed is a rule (cited
                    # below), not the isolation. A tier that applies only through new
                    # policies isolates anew.
                    held = {p.id for p in dec.policies} & tiers_before.get(dec.tier, set())
                    fresh = [p for p in dec.policies if p.id not in was_isolated and not held]
                    for p in fresh:
                        if dec.tier:  # the end of a Calico tier: its defaultAction Deny
                            yield _policy_cause(p, direction, "head", ISOLATES, dec.tier, "Deny")
                        else:
                            yield _policy_cause(p, direction, "head", ISOLATES)
                    if fresh:
                        explained = explained | dec.ports
                elif (
                    dec.action == "Pass"
                    and dec.rule is not None
                    and (dec.ports & need) - _same_passes(dec, old)
                ):
                    # The next tier closed it (its cause is cited too, or the base rule
                    # that no longer applies below). A tier's end that passes never
                    # closes anything: what the tier used to decide is cited below.
                    yield from _causes(dec, direction, "head", PASSES, head)
            # Ports a head rule does not explain closed because a base rule stopped applying.
            unexplained = need - explained
            for dec in old.decisions:
                if dec.action == "Allow" and dec.ports & unexplained:
                    yield from _causes(dec, direction, "base", NO_LONGER_ALLOWS, base)
                elif dec.action == "Pass" and (dec.ports & need) - _same_passes(dec, now):
                    # The base handed these ports on to a later tier (or the profile)
                    # that allowed them; the head no longer does.
                    yield from _causes(dec, direction, "base", NO_LONGER_PASSES, base)

    # A verdict object belongs to one owner, so the key also fixes the base owner above.
    return _remembered(memo, ("closed", *_decided_by(needs)), causes)


def _tier_policies(rmap: ReachabilityMap, direction: Direction, owner: int) -> dict[str, set[str]]:
    """Per Calico tier that applies to ``owner`` in ``direction``: the ids of its policies
    selecting the owner (none without Calico policies)."""
    if not rmap.matcher.calico:
        return {}
    rows = rmap.matcher.calico[owner].get(direction, ())
    return {row.tier.label: {p.id for p in row.policies} for row in rows}


def _same_passes(dec: Decision, other: Verdict | None) -> ConnectionSet:
    """The ports the same Pass as ``dec`` (the same rule, or the end of the same Calico
    tier) passes in the ``other`` side's verdict."""
    out = NO_CONNECTIONS
    if other is None:
        return out
    if dec.rule is None and dec.tier:
        # The end of a Calico tier with defaultAction Pass.
        for d in other.decisions:
            if d.action == "Pass" and d.rule is None and d.tier == dec.tier:
                out = out | d.ports
        return out
    if not isinstance(dec.rule, CompiledAdminRule | CompiledCalicoRule):
        return out
    policy_id, rule = dec.rule.policy.id, dec.rule.rule
    for d in other.decisions:
        if (
            d.action == "Pass"
            and isinstance(d.rule, CompiledAdminRule | CompiledCalicoRule)
            and d.rule.policy.id == policy_id
            and d.rule.rule == rule
        ):
            out = out | d.ports
    return out


def _decided_by(needs: Needs) -> Iterator[tuple[object, ...]]:
    """What an explanation depends on: per direction, the ports and the verdicts."""
    return ((d, need, id(now), id(old)) for d, (need, now, old) in needs.items())


def _remembered(
    memo: Memo | None, key: tuple[object, ...], causes: Callable[[], Iterable[Cause]]
) -> tuple[Cause, ...]:
    if memo is not None and key in memo:
        return memo[key]
    found = tuple(dict.fromkeys(causes()))
    if memo is not None:
        memo[key] = found
    return found
