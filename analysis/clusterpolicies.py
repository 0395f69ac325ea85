"""ClusterNetworkPolicy (policy.networking.k8s.io/v1alpha2), validated as its CRD's schema
and CEL rules validate it.

The CRD (kubernetes-sigs/network-policy-api, config/crd/{standard,experimental}, Apache-2.0)
comes in two channels; the experimental one adds the egress peers `nodes` and `domainNames`
and one CEL rule about them. reachdiff reads the experimental schema, a superset: a manifest
that uses `nodes` or `domainNames` can only be applied where it is installed.

A ClusterNetworkPolicy becomes the engine's ``AdminPolicy``: its tier decides whether its
rules join the admin tier (with the AdminNetworkPolicies) or the baseline tier, and
``Accept`` decides as ``Allow`` does.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from analysis.adminpolicies import action_and_name, one_of, read_peer
from analysis.model import (
    CLUSTER_NETWORK_POLICY,
    AdminPeer,
    AdminPolicy,
    AdminPort,
    AdminRule,
    Direction,
    IPNetwork,
    LabelSelector,
    Source,
)
from analysis.policies import parse_cidr, parse_selector
from analysis.validation import Context, fields_named, shown, type_name
from analysis.yamldoc import YMap

TIERS = ("Admin", "Baseline")
ACTIONS = ("Accept", "Deny", "Pass")
MAX_ITEMS = 25  # rules per direction, peers and protocols per rule, networks, domain names
_MAX_CIDR_LENGTH = 43
_PROTOCOLS = {"tcp": "TCP", "udp": "UDP", "sctp": "SCTP"}
# The CRD's pattern for a DomainName, as written there (its `A-z` also admits [\]^_`).
_DOMAIN_NAME = re.compile(
    r"(\*\.)?([a-zA-z0-9]([-a-zA-Z0-9_]*[a-zA-Z0-9])?\.)+[a-zA-z0-9]([-a-zA-Z0-9_]*[a-zA-Z0-9])?\.?"
)
_SPEC_FIELDS = frozenset({"tier", "priority", "subject", "ingress", "egress"})
_PEERS_WITHOUT_NAMED_PORTS = ("networks", "nodes", "domainNames")


def parse_cluster_network_policy(ctx: Context, obj: YMap) -> AdminPolicy:
    meta = ctx.mapping(obj, "metadata")
    name = ctx.name(meta, "metadata.name")
    spec = ctx.mapping(obj, "spec")
    sctx = ctx.at(spec)
    unknown = set(spec) - _SPEC_FIELDS
    if unknown:
        sctx.fail(
            f"`spec` has unknown {fields_named(unknown)}; a ClusterNetworkPolicy spec "
            "has tier, priority, subject, ingress and egress"
        )
    tier = spec.get("tier")
    if tier not in TIERS:
        sctx.fail(f"`spec.tier` must be Admin or Baseline, not {shown(tier)}")
    priority = spec.get("priority")
    if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 1000:
        sctx.fail(f"`spec.priority` must be a number in 0..1000, not {type_name(priority)}")
    namespaces, pods = _subject(sctx, sctx.mapping(spec, "subject"))
    return AdminPolicy(
        kind=CLUSTER_NETWORK_POLICY,
        name=name,
        priority=priority,
        subject_namespaces=namespaces,
        subject_pods=pods,
        ingress=_rules(sctx, spec, Direction.INGRESS),
        egress=_rules(sctx, spec, Direction.EGRESS),
        source=Source(ctx.file, ctx.line),
        spec_tier=tier,
    )


def _subject(ctx: Context, subject: YMap) -> tuple[LabelSelector, LabelSelector | None]:
    sctx = ctx.at(subject)
    which = one_of(sctx, subject, ("namespaces", "pods"), "`spec.subject`")
    if which == "namespaces":
        return parse_selector(sctx, subject["namespaces"], "subject.namespaces"), None
    return _namespaced_pod(sctx, subject["pods"], "subject.pods")


def _namespaced_pod(ctx: Context, value: Any, field: str) -> tuple[LabelSelector, LabelSelector]:
    """NamespacedPod: `podSelector` is required; `namespaceSelector` may be left out, and
    then selects every namespace (as the empty selector does)."""
    if not isinstance(value, dict):
        ctx.fail(f"`{field}` must be a mapping with podSelector (and namespaceSelector)")
    pctx = ctx.at(value)
    unknown = set(value) - {"namespaceSelector", "podSelector"}
    if unknown:
        pctx.fail(f"`{field}` has unknown {fields_named(unknown)}")
    namespaces = pctx.mapping(value, "namespaceSelector", required=False)
    return (
        parse_selector(pctx, namespaces, "namespaceSelector"),
        parse_selector(pctx, pctx.mapping(value, "podSelector"), "podSelector"),
    )


def _rules(ctx: Context, spec: YMap, direction: Direction) -> tuple[AdminRule, ...]:
    rules: list[Any] = ctx.sequence(spec, direction.field) or []
    if len(rules) > MAX_ITEMS:
        ctx.fail(f"at most {MAX_ITEMS} {direction.field} rules are allowed, not {len(rules)}")
    ingress = direction is Direction.INGRESS
    peers_key = "from" if ingress else "to"
    peer_kinds = (
        ("namespaces", "pods")
        if ingress
        else ("namespaces", "pods", "networks", "nodes", "domainNames")
    )
    out = []
    for index, rule in enumerate(rules):
        if not isinstance(rule, dict):
            ctx.at(rules).fail(f"{direction.field}[{index}] must be a mapping")
        rctx = ctx.at(rule)
        unknown = set(rule) - {"name", "action", peers_key, "protocols"}
        if unknown:
            rctx.fail(
                f"{direction.field}[{index}] has unknown {fields_named(unknown)}; "
                f"a rule has name, action, {peers_key} and protocols"
            )
        action, name = action_and_name(rctx, rule, ACTIONS)
        peers = rctx.sequence(rule, peers_key)
        if not peers:
            rctx.fail(
                f"`{peers_key}` needs at least one peer (ClusterNetworkPolicy rules always "
                "name their peers; use `namespaces: {}` for every pod)"
            )
        if len(peers) > MAX_ITEMS:
            rctx.fail(f"`{peers_key}` lists at most {MAX_ITEMS} peers, not {len(peers)}")
        protocols = rctx.sequence(rule, "protocols")
        if protocols is not None and not protocols:
            rctx.fail("`protocols` must not be empty when present; omit it to match every port")
        if protocols is not None and len(protocols) > MAX_ITEMS:
            rctx.fail(f"`protocols` lists at most {MAX_ITEMS} entries, not {len(protocols)}")
        parsed_peers = tuple(_peer(rctx.at(p), p, peer_kinds) for p in peers)
        ports = None if protocols is None else tuple(_protocol(rctx.at(p), p) for p in protocols)
        kinds = {p.kind for p in parsed_peers}
        if ports and any(p.name for p in ports) and kinds & {"nodes", "domainNames"}:
            # The experimental CRD's CEL rule (networks too; see adminpolicies' warnings).
            rctx.fail(
                "networks/nodes/domainNames peers cannot be set with destinationNamedPort, since "
                "they have no named ports"
            )
        out.append(
            AdminRule(
                direction=direction,
                index=index,
                name=name,
                action=action,
                source=Source(rctx.file, rctx.line),
                peers=parsed_peers,
                ports=ports,
            )
        )
    return tuple(out)


def _networks(ctx: Context, value: Any, source: Source, kind: str) -> AdminPeer:
    items = _set_of_strings(ctx, value, "networks", "CIDRs")
    return AdminPeer(source, kind, networks=tuple(_cidr(ctx, v) for v in items))


def _domain_names(ctx: Context, value: Any, source: Source, kind: str) -> AdminPeer:
    items = _set_of_strings(ctx, value, "domainNames", "domain names")
    for item in items:
        if not _DOMAIN_NAME.fullmatch(item):
            ctx.fail(
                f"domain name {shown(item)} is not valid (DNS labels separated by '.', "
                "optionally starting with '*.')"
            )
    return AdminPeer(source, kind, domain_names=tuple(items))


def _pods(ctx: Context, value: Any, source: Source, kind: str) -> AdminPeer:
    namespaces, pods = _namespaced_pod(ctx, value, "pods")
    return AdminPeer(source, kind, namespace_selector=namespaces, pod_selector=pods)


def _peer(ctx: Context, peer: Any, kinds: tuple[str, ...]) -> AdminPeer:
    readers = {"networks": _networks, "domainNames": _domain_names, "pods": _pods}
    return read_peer(ctx, peer, kinds, readers)


def _set_of_strings(ctx: Context, value: Any, field: str, what: str) -> list[str]:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_ITEMS:
        ctx.fail(f"`{field}` must list 1 to {MAX_ITEMS} {what}")
    for item in value:
        if not isinstance(item, str):
            ctx.fail(f"`{field}` entries must be strings, not {type_name(item)}")
    if len(set(value)) != len(value):
        duplicate = next(v for v in value if value.count(v) > 1)
        ctx.fail(f"`{field}` lists {shown(duplicate)} twice (it is a set)")
    return value


def _cidr(ctx: Context, text: str) -> IPNetwork:
    """``isCIDR`` as Kubernetes' CEL library reads it: address/prefix, no zone, no
    IPv4-mapped IPv6 address; host bits may be set (the network is what matches)."""
    if len(text) > _MAX_CIDR_LENGTH:
        ctx.fail(f"network {shown(text)} is longer than {_MAX_CIDR_LENGTH} characters")
    net = parse_cidr(ctx, text, "networks")
    prefix = text.partition("/")[2]
    if (len(prefix) > 1 and prefix.startswith("0")) or (
        isinstance(net, ipaddress.IPv6Network) and net.network_address.ipv4_mapped is not None
    ):
        ctx.fail(f"`networks` {shown(text)} is not a valid CIDR")
    return net


def _protocol(ctx: Context, entry: Any) -> AdminPort:
    if not isinstance(entry, dict):
        ctx.fail(f"a `protocols` entry must be a mapping, not {type_name(entry)}")
    kind = one_of(ctx, entry, ("tcp", "udp", "sctp", "destinationNamedPort"), "a `protocols` entry")
    source = Source(ctx.file, ctx.line)
    value = entry[kind]
    if kind == "destinationNamedPort":
        # The CRD sets no pattern: any name is valid, and matches only container ports so named.
        if not isinstance(value, str) or not value:
            ctx.fail(f"`destinationNamedPort` must be a port name, not {type_name(value)}")
        return AdminPort(source, name=value)
    protocol = _PROTOCOLS[kind]
    if not isinstance(value, dict) or set(value) != {"destinationPort"}:
        ctx.fail(
            f"`{kind}` must be a mapping with `destinationPort` (a number or a range); to match "
            f"every {protocol} port, drop `protocols` or list the range 1-65535"
        )
    port = value["destinationPort"]
    if not isinstance(port, dict):
        ctx.fail(f"`{kind}.destinationPort` must be a mapping with `number` or `range`")
    pctx = ctx.at(port)
    which = one_of(pctx, port, ("number", "range"), f"`{kind}.destinationPort`")
    if which == "number":
        number = _port_number(pctx, port["number"], "number")
        return AdminPort(source, protocol, number, number)
    span = port["range"]
    if not isinstance(span, dict) or set(span) - {"start", "end"}:
        pctx.fail("`range` must be a mapping with `start` and `end`")
    start = _port_number(pctx, span.get("start"), "range.start")
    end = _port_number(pctx, span.get("end"), "range.end")
    if not start < end:
        pctx.fail(f"range start {start} must be less than end {end}")
    return AdminPort(source, protocol, start, end)


def _port_number(ctx: Context, value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        ctx.fail(f"`{field}` must be a number in 1..65535, not {type_name(value)}")
    return value
