"""NetworkPolicy (networking.k8s.io/v1) objects, validated as the API server validates them."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Container, Iterable, Iterator
from typing import Any

from analysis.model import (
    Direction,
    IPBlock,
    IPNetwork,
    LabelRequirement,
    LabelSelector,
    NetworkPolicy,
    Peer,
    PolicyPort,
    PolicyRule,
    Source,
    labels_of,
)
from analysis.ports import PROTOCOLS
from analysis.validation import Context, fields_named, shown, string_map, type_name
from analysis.yamldoc import YMap

_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")
# IANA_SVC_NAME as the API server checks port names.
PORT_NAME = re.compile(r"^(?=.*[a-z])(?!.*--)[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def parse_network_policy(ctx: Context, obj: YMap) -> NetworkPolicy:
    meta = ctx.mapping(obj, "metadata")
    name = ctx.name(meta, "metadata.name")
    namespace = ctx.namespace(meta)
    spec = ctx.mapping(obj, "spec")
    sctx = ctx.at(spec)
    selector = spec.get("podSelector")
    pod_selector = (
        LabelSelector() if selector is None else parse_selector(sctx, selector, "podSelector")
    )
    ingress = _rules(sctx, spec, Direction.INGRESS)
    egress = _rules(sctx, spec, Direction.EGRESS)
    return NetworkPolicy(
        namespace=namespace,
        name=name,
        pod_selector=pod_selector,
        policy_types=_policy_types(sctx, spec, has_egress=bool(egress)),
        ingress=ingress,
        egress=egress,
        source=Source(ctx.file, ctx.line),
        exact_lines=getattr(obj, "exact", True),
    )


def _policy_types(ctx: Context, spec: YMap, *, has_egress: bool) -> frozenset[Direction]:
    listed = ctx.sequence(spec, "policyTypes")
    if listed is None or not listed:
        # Inferred: Ingress always, Egress only when there are egress rules.
        inferred = {Direction.INGRESS}
        if has_egress:
            inferred.add(Direction.EGRESS)
        return frozenset(inferred)
    out: set[Direction] = set()
    for value in listed:
        if value not in ("Ingress", "Egress"):
            ctx.at(listed).fail(
                f"policyTypes entries must be Ingress or Egress, not {shown(value)}"
            )
        out.add(Direction(value))
    return frozenset(out)


def _rules(ctx: Context, spec: YMap, direction: Direction) -> tuple[PolicyRule, ...]:
    rules = ctx.sequence(spec, direction.field)
    if rules is None:
        return ()
    peers_key = "from" if direction is Direction.INGRESS else "to"
    out = []
    for index, rule in enumerate(rules):
        rctx = ctx.at(rule) if isinstance(rule, dict) else ctx.at(rules)
        if rule is None:
            rule = {}  # `- ` with nothing: an empty rule, like {}
        if not isinstance(rule, dict):
            rctx.fail(f"{direction.field}[{index}] must be a mapping, not {type_name(rule)}")
        unknown = set(rule) - {peers_key, "ports"}
        if unknown:
            rctx.fail(
                f"{direction.field}[{index}] has unknown {fields_named(unknown)}; "
                f"a {direction.field} rule has `{peers_key}` and `ports`"
            )
        peers = rctx.sequence(rule, peers_key) or []
        ports = rctx.sequence(rule, "ports") or []
        out.append(
            PolicyRule(
                direction=direction,
                index=index,
                source=Source(rctx.file, rctx.line),
                peers=tuple(_peer(rctx.at(p), p, peers_key) for p in peers),
                ports=tuple(_port(rctx.at(p), p) for p in ports),
            )
        )
    return tuple(out)


def _peer(ctx: Context, peer: Any, key: str) -> Peer:
    if not isinstance(peer, dict):
        ctx.fail(f"a `{key}` entry must be a mapping, not {type_name(peer)}")
    unknown = set(peer) - {"podSelector", "namespaceSelector", "ipBlock"}
    if unknown:
        ctx.fail(f"unknown peer {fields_named(unknown)}")
    pods, namespaces, block = (
        peer.get("podSelector"),
        peer.get("namespaceSelector"),
        peer.get("ipBlock"),
    )
    if pods is None and namespaces is None and block is None:
        ctx.fail(f"a `{key}` entry must set podSelector, namespaceSelector or ipBlock")
    if block is not None and (pods is not None or namespaces is not None):
        ctx.fail("ipBlock cannot be combined with podSelector or namespaceSelector in one peer")
    source = Source(ctx.file, ctx.line)
    if block is not None:
        return Peer(source=source, ip_block=_ip_block(ctx.at(block), block))
    return Peer(
        source=source,
        pod_selector=None if pods is None else parse_selector(ctx, pods, "podSelector"),
        namespace_selector=(
            None if namespaces is None else parse_selector(ctx, namespaces, "namespaceSelector")
        ),
    )


def parse_cidr(ctx: Context, text: Any, field: str) -> IPNetwork:
    if not isinstance(text, str) or "/" not in text:
        ctx.fail(f"`{field}` must be a CIDR like 10.0.0.0/8, not {type_name(text)}")
    address, _, prefix = text.partition("/")
    # Python also reads netmasks (10.0.0.0/255.0.0.0) and zones (fe80::%eth0/64); the API
    # server does not.
    if not prefix.isascii() or not prefix.isdigit() or "%" in address:
        ctx.fail(f"`{field}` {shown(text)} is not a valid CIDR (address/prefix length)")
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        ctx.fail(f"`{field}` {shown(text)} is not a valid CIDR")


def _ip_block(ctx: Context, block: Any) -> IPBlock:
    if not isinstance(block, dict):
        ctx.fail(f"ipBlock must be a mapping, not {type_name(block)}")
    cidr = parse_cidr(ctx, block.get("cidr"), "ipBlock.cidr")
    excepts = []
    for text in ctx.sequence(block, "except") or ():
        net = parse_cidr(ctx, text, "ipBlock.except")
        if (
            net.version != cidr.version
            or not net.subnet_of(cidr)  # type: ignore[arg-type]
            or net.prefixlen <= cidr.prefixlen
        ):
            ctx.fail(f"ipBlock.except {text} must be a strict subset of cidr {cidr}")
        excepts.append(net)
    return IPBlock(cidr=cidr, excepts=tuple(sorted(set(excepts), key=_net_key)))


def _net_key(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> tuple[int, int, int]:
    return (net.version, int(net.network_address), net.prefixlen)


def _port(ctx: Context, entry: Any) -> PolicyPort:
    if entry is None:
        entry = {}
    if not isinstance(entry, dict):
        ctx.fail(f"a `ports` entry must be a mapping, not {type_name(entry)}")
    unknown = set(entry) - {"protocol", "port", "endPort"}
    if unknown:
        ctx.fail(f"unknown port {fields_named(unknown)}")
    protocol = entry.get("protocol", "TCP")
    if protocol not in PROTOCOLS:
        ctx.fail(f"protocol must be TCP, UDP or SCTP, not {shown(protocol)}")
    port = entry.get("port")
    end_port = entry.get("endPort")
    source = Source(ctx.file, ctx.line)
    if port is None:
        if end_port is not None:
            ctx.fail("endPort requires a numeric `port` (the start of the range)")
        return PolicyPort(source=source, protocol=protocol)
    if isinstance(port, bool) or not isinstance(port, (int, str)):
        ctx.fail(f"`port` must be a number or a port name, not {type_name(port)}")
    if isinstance(port, int):
        if not 1 <= port <= 65535:
            ctx.fail(f"port {shown(port)} is outside 1..65535")
    elif port.isascii() and port.isdigit():
        ctx.fail(f"port {shown(port)} is a quoted number; write it unquoted (port: {port[:60]})")
    elif len(port) > 15 or not PORT_NAME.match(port):
        ctx.fail(
            f"port {shown(port)} is neither a number nor a valid port name "
            "(at most 15 lowercase letters, digits and '-', with at least one letter)"
        )
    if end_port is not None:
        if isinstance(port, str):
            ctx.fail(f"endPort cannot be used with the named port {port!r}; use a number")
        if isinstance(end_port, bool) or not isinstance(end_port, int):
            ctx.fail(f"endPort must be a number, not {type_name(end_port)}")
        if not 1 <= end_port <= 65535:
            ctx.fail(f"endPort {shown(end_port)} is outside 1..65535")
        if end_port < port:
            ctx.fail(f"endPort {end_port} is less than port {port}")
    return PolicyPort(source=source, protocol=protocol, port=port, end_port=end_port)


def parse_selector(ctx: Context, value: Any, field: str) -> LabelSelector:
    if not isinstance(value, dict):
        ctx.fail(f"`{field}` must be a mapping (use {{}} to select everything)")
    sctx = ctx.at(value)
    unknown = set(value) - {"matchLabels", "matchExpressions"}
    if unknown:
        sctx.fail(
            f"`{field}` has unknown {fields_named(unknown)}; "
            "a selector has matchLabels and matchExpressions"
        )
    labels = string_map(sctx, value.get("matchLabels"), f"{field}.matchLabels")
    requirements = []
    for expr in sctx.sequence(value, "matchExpressions") or ():
        requirements.append(_requirement(sctx.at(expr), expr, field))
    return LabelSelector(labels_of(labels), tuple(requirements))


def _requirement(ctx: Context, expr: Any, field: str) -> LabelRequirement:
    where = f"{field}.matchExpressions"
    if not isinstance(expr, dict):
        ctx.fail(f"`{where}` entries must be mappings, not {type_name(expr)}")
    key, operator = expr.get("key"), expr.get("operator")
    if not isinstance(key, str) or not key:
        ctx.fail(f"`{where}` entry needs a string `key`")
    if operator not in _OPERATORS:
        ctx.fail(
            f"unknown selector operator {shown(operator)} in `{where}`; "
            "use In, NotIn, Exists or DoesNotExist"
        )
    values = expr.get("values")
    if values is None:
        values = []
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        ctx.fail(f"`values` of {shown(key)} must be a list of strings; quote numbers")
    if operator in ("In", "NotIn") and not values:
        ctx.fail(f"operator {operator} on {shown(key)} needs at least one value")
    if operator in ("Exists", "DoesNotExist") and values:
        ctx.fail(f"operator {operator} on {shown(key)} takes no values")
    return LabelRequirement(key, operator, tuple(sorted(set(values))))


def undefined_named_ports(
    policies: Iterable[NetworkPolicy], defined: Container[str]
) -> Iterator[tuple[NetworkPolicy, PolicyRule, int]]:
    """(policy, rule, index in ``rule.ports``) of every named port no container in the tree
    defines, in the policies' order. Valid Kubernetes (the pods may be created elsewhere,
    e.g. by an operator): such a port matches nothing here, and the report warns of it."""
    for policy in policies:
        for rule in policy.ingress + policy.egress:  # listed types or not: both are read
            for index, port in enumerate(rule.ports):
                if isinstance(port.port, str) and port.port not in defined:
                    yield policy, rule, index


def undefined_port_warning(
    where: Source, policy: NetworkPolicy, rule: PolicyRule, name: str
) -> str:
    return (
        f"{where}: {policy.id} {rule.label}: port name {name!r} is not defined by any "
        "container port in this tree, so it matches no pod here (pods made elsewhere, "
        "e.g. by an operator, may define it); check the name if that is not intended"
    )
