"""A tree's Calico objects put together: tiers in Felix's order (the built-in ones included),
and what the tree must say of them: each field a manifest cannot settle is reported as
not analysed with its file and line (the run then fails closed), ICMP rules as warnings.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from analysis.calicomodel import (
    BUILT_IN_TIERS,
    CalicoEntity,
    CalicoNetworkSet,
    CalicoObjects,
    CalicoPolicy,
    CalicoRule,
    CalicoTier,
)

CalicoModel = CalicoPolicy | CalicoTier | CalicoNetworkSet


@dataclass(frozen=True, slots=True)
class CalicoTree:
    objects: CalicoObjects
    warnings: tuple[str, ...]
    unanalysed: tuple[str, ...]


def identity(model: CalicoModel) -> tuple[str, str, str]:
    if isinstance(model, CalicoPolicy):
        return (model.namespace, f"{model.kind}.projectcalico.org", model.name)
    if isinstance(model, CalicoTier):
        return ("", "Tier.projectcalico.org", model.name)
    return (model.namespace, f"{model.kind}.projectcalico.org", model.name)


def calico_objects(found: Iterable[CalicoModel]) -> CalicoTree:
    items = list(found)
    tiers = {t.name: t for t in items if isinstance(t, CalicoTier)}
    for name, (order, action) in BUILT_IN_TIERS.items():
        tiers.setdefault(name, CalicoTier(name, order, action))
    policies = sorted(
        (p for p in items if isinstance(p, CalicoPolicy)), key=lambda p: (p.namespace, p.name)
    )
    sets = sorted(
        (s for s in items if isinstance(s, CalicoNetworkSet)),
        key=lambda s: (s.namespace, s.kind, s.name),
    )
    warnings: list[str] = []
    unanalysed: list[str] = []
    for policy in policies:
        unanalysed.extend(_policy_notes(policy, tiers))
        for rule in policy.ingress + policy.egress:
            if direction_ignored(policy, rule):
                continue
            unanalysed.extend(
                f"{rule.source}: {policy.id} {rule.label}: {n}" for n in rule_notes(rule)
            )
            if rule.port_protocol_only_elsewhere():
                warnings.append(
                    f"{rule.source}: {policy.id} {rule.label}: an {rule.action} rule for a "
                    "protocol without ports (ICMP, ICMPv6, UDPLite, …): outside the map, which "
                    "covers TCP, UDP and SCTP"
                )
    ordered = tuple(sorted(tiers.values(), key=lambda t: t.sort_key))
    return CalicoTree(
        CalicoObjects(tuple(policies), ordered, tuple(sets)), tuple(warnings), tuple(unanalysed)
    )


def direction_ignored(policy: CalicoPolicy, rule: CalicoRule) -> bool:
    return rule.direction not in policy.types


def _policy_notes(policy: CalicoPolicy, tiers: dict[str, CalicoTier]) -> list[str]:
    where = f"{policy.source}: {policy.id}"
    out = []
    if policy.tier not in tiers:
        out.append(
            f"{where}: its tier {policy.tier} is not in the tree (Calico needs the Tier to "
            "exist), so where it comes in the order is unknown: the policy is not evaluated"
        )
    if policy.host_only:
        out.append(
            f"{where}: a doNotTrack or preDNAT policy applies to host endpoints, which a "
            "manifest tree does not define: not evaluated"
        )
    return out


def rule_notes(rule: CalicoRule) -> list[str]:
    """Why a rule cannot be settled from manifests (empty: it can)."""
    out = []
    if rule.http:
        out.append(
            "an `http` match filters requests at the application layer, which is not "
            "analysed: the rule is evaluated as matching every connection it admits at L4"
        )
    if rule.src.ports or rule.src.not_ports:
        out.append(
            "`source.ports` match the source port, which a connection picks at run time: the "
            "rule is evaluated as matching nothing"
        )
    if rule.own.nets or rule.own.not_nets:
        side = "destination" if rule.own is rule.dst else "source"
        out.append(
            f"`{side}` nets of the policy's own endpoint depend on pod IPs, which a manifest "
            "does not fix: the rule is evaluated as matching nothing"
        )
    return out


def unsettled(rule: CalicoRule) -> bool:
    """Whether the rule is evaluated as matching nothing (see ``rule_notes``)."""
    return bool(
        unresolved(rule.src)
        or unresolved(rule.dst)
        or rule.src.ports
        or rule.src.not_ports
        or rule.own.nets
        or rule.own.not_nets
    )


def unresolved(entity: CalicoEntity) -> bool:
    """Whether the entity names a Service whose endpoints the tree does not tell (see
    ``analysis.calicoservices``, which reports it)."""
    return entity.service is not None and entity.backends is None
