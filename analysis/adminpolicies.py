"""AdminNetworkPolicy and BaselineAdminNetworkPolicy (policy.networking.k8s.io/v1alpha1),
validated as the CRD's schema and CEL rules validate them."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from analysis.model import (
    CLUSTER_NETWORK_POLICY,
    AdminAction,
    AdminPeer,
    AdminPolicy,
    AdminPort,
    AdminRule,
    Direction,
    LabelSelector,
    Source,
)
from analysis.policies import PORT_NAME, parse_cidr, parse_selector
from analysis.ports import PROTOCOLS
from analysis.validation import Context, fields_named, shown, type_name
from analysis.yamldoc import YMap

ADMIN_KINDS = frozenset({"AdminNetworkPolicy", "BaselineAdminNetworkPolicy"})
_MAX_RULES = 100


def parse_admin_policy(ctx: Context, obj: YMap) -> AdminPolicy:
    kind = obj["kind"]
    baseline = kind == "BaselineAdminNetworkPolicy"
    meta = ctx.mapping(obj, "metadata")
    name = ctx.name(meta, "metadata.name")
    if baseline and name != "default":
        ctx.at(meta).fail(
            "a BaselineAdminNetworkPolicy must be named `default` (it is a singleton)"
        )
    spec = ctx.mapping(obj, "spec")
    sctx = ctx.at(spec)
    priority = None
    if not baseline:
        priority = spec.get("priority")
        if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 1000:
            sctx.fail(f"`spec.priority` must be a number in 0..1000, not {type_name(priority)}")
    namespaces, pods = _subject(sctx, sctx.mapping(spec, "subject"))
    actions = ("Allow", "Deny") if baseline else ("Allow", "Deny", "Pass")
    return AdminPolicy(
        kind=kind,
        name=name,
        priority=priority,
        subject_namespaces=namespaces,
        subject_pods=pods,
        ingress=_rules(sctx, spec, Direction.INGRESS, actions),
        egress=_rules(sctx, spec, Direction.EGRESS, actions),
        source=Source(ctx.file, ctx.line),
    )


def one_of(ctx: Context, value: YMap, allowed: tuple[str, ...], what: str) -> str:
    present = [k for k in allowed if value.get(k) is not None]
    unknown = set(value) - set(allowed)
    if unknown:
        # Perhaps a field of a newer API version: never guess what it selects.
        ctx.fail(
            f"{what} has unknown {fields_named(unknown)}; it must set exactly one of "
            f"{', '.join(allowed)}"
        )
    if len(present) != 1:
        ctx.fail(f"{what} must set exactly one of {', '.join(allowed)}")
    return present[0]


def _subject(ctx: Context, subject: YMap) -> tuple[LabelSelector, LabelSelector | None]:
    sctx = ctx.at(subject)
    which = one_of(sctx, subject, ("namespaces", "pods"), "`spec.subject`")
    if which == "namespaces":
        return parse_selector(sctx, subject["namespaces"], "subject.namespaces"), None
    pods = sctx.mapping(subject, "pods")
    pctx = sctx.at(pods)
    return (
        parse_selector(pctx, pctx.mapping(pods, "namespaceSelector"), "namespaceSelector"),
        parse_selector(pctx, pctx.mapping(pods, "podSelector"), "podSelector"),
    )


def _rules(
    ctx: Context, spec: YMap, direction: Direction, actions: tuple[str, ...]
) -> tuple[AdminRule, ...]:
    rules: list[Any] = ctx.sequence(spec, direction.field) or []
    if len(rules) > _MAX_RULES:
        ctx.fail(f"at most {_MAX_RULES} {direction.field} rules are allowed")
    peers_key = "from" if direction is Direction.INGRESS else "to"
    peer_kinds = (
        ("namespaces", "pods")
        if direction is Direction.INGRESS
        else ("namespaces", "pods", "nodes", "networks")
    )
    out = []
    for index, rule in enumerate(rules):
        if not isinstance(rule, dict):
            ctx.at(rules).fail(f"{direction.field}[{index}] must be a mapping")
        rctx = ctx.at(rule)
        action, name = action_and_name(rctx, rule, actions)
        peers = rctx.sequence(rule, peers_key)
        if not peers:
            rctx.fail(f"`{peers_key}` needs at least one peer (ANP rules always name their peers)")
        ports = rctx.sequence(rule, "ports")
        if ports is not None and not ports:
            rctx.fail("`ports` must not be empty when present; omit it to match every port")
        out.append(
            AdminRule(
                direction=direction,
                index=index,
                name=name,
                action=action,
                source=Source(rctx.file, rctx.line),
                peers=tuple(_peer(rctx.at(p), p, peer_kinds) for p in peers),
                ports=None if ports is None else tuple(_port(rctx.at(p), p) for p in ports),
            )
        )
    return tuple(out)


def action_and_name(
    rctx: Context, rule: dict[str, Any], actions: Sequence[str]
) -> tuple[AdminAction, str]:
    """A rule's ``action`` (one of ``actions``) and optional ``name``, as both admin APIs
    (AdminNetworkPolicy, ClusterNetworkPolicy) spell them."""
    action = rule.get("action")
    if action not in actions:
        rctx.fail(f"`action` must be one of {', '.join(actions)}, not {shown(action)}")
    name = rule.get("name", "")
    if not isinstance(name, str) or len(name) > 100:
        rctx.fail("rule `name` must be a string of at most 100 characters")
    return AdminAction(action), name


PeerReader = Callable[[Context, Any, Source, str], AdminPeer]


def read_peer(
    ctx: Context, peer: Any, kinds: tuple[str, ...], readers: Mapping[str, PeerReader]
) -> AdminPeer:
    """A peer: a mapping with exactly one of ``kinds``. ``readers`` read the kinds that are
    not a plain namespace selector (``namespaces``, ``nodes``)."""
    if not isinstance(peer, dict):
        ctx.fail(f"a peer must be a mapping, not {type_name(peer)}")
    kind = one_of(ctx, peer, kinds, "a peer")
    source = Source(ctx.file, ctx.line)
    read = readers.get(kind)
    if read is not None:
        return read(ctx, peer[kind], source, kind)
    return AdminPeer(source, kind, namespace_selector=parse_selector(ctx, peer[kind], kind))


def _networks(ctx: Context, value: Any, source: Source, kind: str) -> AdminPeer:
    if not isinstance(value, list) or not 1 <= len(value) <= 25:
        ctx.fail("`networks` must list 1 to 25 CIDRs")
    return AdminPeer(source, kind, networks=tuple(parse_cidr(ctx, v, "networks") for v in value))


def _pods(ctx: Context, value: Any, source: Source, kind: str) -> AdminPeer:
    if not isinstance(value, dict):
        ctx.fail("`pods` must be a mapping with namespaceSelector and podSelector")
    pctx = ctx.at(value)
    return AdminPeer(
        source,
        kind,
        namespace_selector=parse_selector(
            pctx, pctx.mapping(value, "namespaceSelector"), "namespaceSelector"
        ),
        pod_selector=parse_selector(pctx, pctx.mapping(value, "podSelector"), "podSelector"),
    )


def _peer(ctx: Context, peer: Any, kinds: tuple[str, ...]) -> AdminPeer:
    return read_peer(ctx, peer, kinds, {"networks": _networks, "pods": _pods})


def _port(ctx: Context, entry: Any) -> AdminPort:
    if not isinstance(entry, dict):
        ctx.fail(f"a `ports` entry must be a mapping, not {type_name(entry)}")
    kind = one_of(ctx, entry, ("portNumber", "namedPort", "portRange"), "a `ports` entry")
    source = Source(ctx.file, ctx.line)
    value = entry[kind]
    if kind == "namedPort":
        if not isinstance(value, str) or len(value) > 15 or not PORT_NAME.match(value):
            ctx.fail(f"namedPort {shown(value)} is not a valid port name")
        return AdminPort(source, name=value)
    if not isinstance(value, dict):
        ctx.fail(f"`{kind}` must be a mapping")
    protocol = value.get("protocol", "TCP")
    if protocol not in PROTOCOLS:
        ctx.fail(f"protocol must be TCP, UDP or SCTP, not {shown(protocol)}")
    keys = ("port", "port") if kind == "portNumber" else ("start", "end")
    numbers = []
    for key in keys:
        number = value.get(key)
        if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= 65535:
            ctx.fail(f"`{kind}.{key}` must be a number in 1..65535, not {type_name(number)}")
        numbers.append(number)
    if kind == "portRange" and numbers[1] <= numbers[0]:
        ctx.fail(f"portRange end {numbers[1]} must be greater than start {numbers[0]}")
    return AdminPort(source, protocol, numbers[0], numbers[1])


@dataclass(frozen=True, slots=True)
class AdminOrder:
    """A tree's admin policies in evaluation order, with what the tree must say of them."""

    policies: tuple[AdminPolicy, ...]
    warnings: tuple[str, ...]
    unanalysed: tuple[str, ...]


def evaluation_order(found: list[AdminPolicy]) -> AdminOrder:
    """The admin tier (ANPs and Admin-tier ClusterNetworkPolicies) by priority, lowest
    number first; then the baseline tier: Baseline-tier ClusterNetworkPolicies by priority,
    then the BaselineAdminNetworkPolicy.

    Two policies of one tier with the same priority have no defined order in the API (an
    implementation "can apply any of the matching policies"); reachdiff orders them by name
    (then kind) so its answer is stable, and warns, because a cluster may not agree. The
    API does not relate v1alpha1 and v1alpha2 policies either: a tree with both is
    evaluated as one admin tier by priority and one baseline tier, the BANP last, and warned.
    """
    admin = sorted(
        (p for p in found if not p.is_baseline), key=lambda p: (p.priority, p.name, p.kind)
    )
    baseline = sorted(
        (p for p in found if p.is_baseline),
        key=lambda p: (p.priority is None, p.priority or 0, p.name),
    )
    warnings = [*_ties(admin), *_ties([p for p in baseline if p.priority is not None])]
    kinds = {p.kind for p in found}
    if CLUSTER_NETWORK_POLICY in kinds and len(kinds) > 1:
        warnings.append(
            "the tree has both v1alpha1 (AdminNetworkPolicy, BaselineAdminNetworkPolicy) and "
            "v1alpha2 (ClusterNetworkPolicy) admin policies, whose relative order Kubernetes "
            "does not define: reachdiff evaluates ANPs with Admin-tier CNPs by priority, and "
            "the BANP after the Baseline-tier CNPs"
        )
    unanalysed: list[str] = []
    for policy in found:
        for rule in policy.ingress + policy.egress:
            named = f' "{rule.name}"' if rule.name else ""
            where = f"{policy.id} {rule.label}{named}"
            for peer in rule.peers:
                if not peer.evaluable:
                    unanalysed.append(f"{peer.source}: {where}: {_UNEVALUABLE[peer.kind]}")
            if (
                policy.kind == CLUSTER_NETWORK_POLICY
                and rule.ports
                and any(p.name for p in rule.ports)
                and any(p.kind == "networks" for p in rule.peers)
            ):
                warnings.append(
                    f"{rule.source}: {where}: a destinationNamedPort never matches a `networks` "
                    "peer (the experimental channel's CRD refuses this rule; the standard one "
                    "accepts it, and the named port applies to the rule's pod peers only)"
                )
    return AdminOrder((*admin, *baseline), tuple(warnings), tuple(unanalysed))


_UNEVALUABLE = {
    "nodes": (
        "a `nodes` peer selects node IPs by node labels, and a manifest tree defines neither; "
        "reachdiff evaluates the peer as matching no destination, so its effect on traffic "
        "to nodes, host-network workloads and external addresses is not analysed"
    ),
    "domainNames": (
        "a `domainNames` peer matches the addresses DNS gives for those names, which a "
        "manifest tree does not define; reachdiff evaluates the peer as matching no "
        "destination, so its effect on traffic to external addresses is not analysed"
    ),
}


def _ties(ordered: list[AdminPolicy]) -> list[str]:
    out = []
    for a, b in itertools.pairwise(ordered):
        if a.priority != b.priority:
            continue
        if a.kind == b.kind == "AdminNetworkPolicy":
            what = f"AdminNetworkPolicies {a.name} and {b.name}"
        elif a.kind == b.kind == CLUSTER_NETWORK_POLICY:
            what = f"ClusterNetworkPolicies {a.name} and {b.name} ({a.spec_tier} tier)"
        else:
            what = f"{a.id} and {b.id}"
        out.append(
            f"{a.source}: {what} share priority {a.priority}; their order is undefined in "
            "Kubernetes (reachdiff uses name order)"
        )
    return out
