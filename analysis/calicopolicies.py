"""Calico's NetworkPolicy, GlobalNetworkPolicy, Tier, NetworkSet and GlobalNetworkSet
(projectcalico.org/v3, and crd.projectcalico.org/v1 as stored), validated as Calico's API
validates them (projectcalico/calico api/pkg/apis/projectcalico/v3 and
libcalico-go/lib/validator/v3, Apache-2.0): what Calico refuses is an error naming the
file and line; what it accepts but a manifest cannot settle is kept for the tree to report
as not analysed (``notes``).

``projectcalico.org/v3`` and ``crd.projectcalico.org/v1`` NetworkPolicy share the kind name
NetworkPolicy with Kubernetes; ``analysis.manifests`` tells them apart by API group.

Why one module of 420 lines: the strict reader of one CRD family's spec (policies, rules,
entities, tiers, network sets), rule by rule, as ``analysis.ciliumpolicies`` is for Cilium's.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from analysis import calicoselector
from analysis.calicomodel import (
    ACTIONS,
    BUILT_IN_TIERS,
    DEFAULT_TIER,
    CalicoEntity,
    CalicoNetworkSet,
    CalicoPolicy,
    CalicoRule,
    CalicoTier,
    PortEntry,
)
from analysis.calicoselector import Node, SelectorError
from analysis.model import Direction, IPNetwork, Source, labels_of
from analysis.policies import PORT_NAME
from analysis.validation import Context, fields_named, shown, string_map, type_name
from analysis.yamldoc import YMap

cs_global = calicoselector.Global()
POLICY_KINDS = ("NetworkPolicy", "GlobalNetworkPolicy")
KINDS = frozenset({*POLICY_KINDS, "Tier", "NetworkSet", "GlobalNetworkSet"})
CalicoModel = CalicoPolicy | CalicoTier | CalicoNetworkSet

_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_SUBDOMAIN = f"{_LABEL}(\\.{_LABEL})*"
_POLICY_NAME = re.compile(f"^(({_LABEL})(\\.{_LABEL})?|((knp|ossg)\\.default\\.{_SUBDOMAIN}))$")
_GLOBAL_POLICY_NAME = re.compile(f"^({_LABEL}\\.)?{_LABEL}$")
_TIER_NAME = re.compile(f"^{_LABEL}$")
_MAX_SELECTOR = 1024
_MAX_RULES = 1024
_PROTOCOLS = {"TCP": 6, "UDP": 17, "ICMP": 1, "ICMPv6": 58, "SCTP": 132, "UDPLite": 136}
_PORT_PROTOCOLS = (6, 17, 132)
_SPEC = {
    "order", "tier", "selector", "types", "ingress", "egress", "serviceAccountSelector",
    "performanceHints",
}  # fmt: skip
_GLOBAL_SPEC = _SPEC | {"namespaceSelector", "doNotTrack", "preDNAT", "applyOnForward"}
_RULE = {
    "action", "ipVersion", "protocol", "notProtocol", "icmp", "notICMP", "source",
    "destination", "http", "metadata",
}  # fmt: skip
_ENTITY = {
    "nets", "notNets", "selector", "notSelector", "namespaceSelector", "ports", "notPorts",
    "serviceAccounts", "services",
}  # fmt: skip


def parse_calico(ctx: Context, obj: YMap) -> CalicoModel:
    kind = obj["kind"]
    if kind in POLICY_KINDS:
        return _policy(ctx, obj, kind)
    if kind == "Tier":
        return _tier(ctx, obj)
    return _network_set(ctx, obj, kind)


def _policy(ctx: Context, obj: YMap, kind: str) -> CalicoPolicy:
    meta = ctx.mapping(obj, "metadata")
    name = ctx.name(meta, "metadata.name")
    namespaced = kind == "NetworkPolicy"
    pattern = _POLICY_NAME if namespaced else _GLOBAL_POLICY_NAME
    if not pattern.match(name):
        ctx.at(meta).fail(
            f"{kind} name {shown(name)} is not valid: lowercase letters, digits and '-', with "
            "at most one '.' (the tier prefix, `<tier>.<name>`)"
        )
    namespace = ctx.namespace(meta) if namespaced else ""
    spec = ctx.mapping(obj, "spec", required=False)
    sctx = ctx.at(spec)
    unknown = set(spec) - (_SPEC if namespaced else _GLOBAL_SPEC)
    if unknown:
        sctx.fail(f"`spec` has unknown {fields_named(unknown)} for a Calico {kind}")
    tier = spec.get("tier") or DEFAULT_TIER
    if not isinstance(tier, str) or not _TIER_NAME.match(tier):
        sctx.fail(f"`spec.tier` {shown(tier)} is not a valid tier name")
    selector_text, selector = _selector(sctx, spec, "selector", top=True)
    _, namespace_selector = _selector(sctx, spec, "namespaceSelector", top=True)
    _, account_selector = _selector(sctx, spec, "serviceAccountSelector", top=True)
    ingress = _rules(sctx, spec, Direction.INGRESS)
    egress = _rules(sctx, spec, Direction.EGRESS)
    if not namespaced:
        for rule in ingress + egress:
            if any(e.service is not None and not e.service[0] for e in (rule.src, rule.dst)):
                sctx.fail(
                    f"{rule.label}: `services` must specify a namespace in a GlobalNetworkPolicy"
                )
    return CalicoPolicy(
        kind=kind,
        api_version=obj["apiVersion"],
        namespace=namespace,
        name=name,
        tier=tier,
        order=_order(sctx, spec),
        selector=selector if selector is not None else calicoselector.All(),
        namespace_selector=namespace_selector,
        types=_types(sctx, spec, ingress, egress),
        ingress=ingress,
        egress=egress,
        source=Source(ctx.file, ctx.line),
        selector_text=selector_text or "all()",
        service_account_selector=account_selector,
        host_only=spec.get("doNotTrack") is True or spec.get("preDNAT") is True,
    )


def _order(ctx: Context, spec: YMap) -> float | None:
    order = spec.get("order")
    if order is None:
        return None
    if isinstance(order, bool) or not isinstance(order, int | float) or order != order:
        ctx.fail(f"`order` must be a number, not {type_name(order)}")
    return float(order)


def _types(
    ctx: Context, spec: YMap, ingress: tuple[CalicoRule, ...], egress: tuple[CalicoRule, ...]
) -> frozenset[Direction]:
    """``types``, or Calico's default: Ingress, Egress if there are egress rules only, both
    if there are both (api/pkg/defaults/networkpolicy.go)."""
    types = ctx.sequence(spec, "types")
    if not types:
        if not egress:
            return frozenset({Direction.INGRESS})
        if not ingress:
            return frozenset({Direction.EGRESS})
        return frozenset(Direction)
    if len(types) > 2 or len(set(map(str, types))) != len(types):
        ctx.at(types).fail("`types` lists Ingress and/or Egress, each at most once")
    out = set()
    for value in types:
        if value not in ("Ingress", "Egress"):
            ctx.at(types).fail(f"`types` entries are Ingress or Egress, not {shown(value)}")
        out.add(Direction(value))
    return frozenset(out)


def _selector(ctx: Context, obj: YMap, key: str, *, top: bool = False) -> tuple[str, Node | None]:
    text = obj.get(key)
    if text is None or text == "":
        return "", None
    if not isinstance(text, str):
        ctx.fail(f"`{key}` must be a selector string, not {type_name(text)}")
    if top and len(text) > _MAX_SELECTOR:
        ctx.fail(f"`{key}` is longer than {_MAX_SELECTOR} characters")
    try:
        node = calicoselector.parse(text)
    except SelectorError as err:
        ctx.fail(f"`{key}` {shown(text)} is not a valid Calico selector: {err}")
    if calicoselector.uses_global(node) and (top or key != "namespaceSelector"):
        ctx.fail(f"`{key}`: global() can only be used in a rule's namespaceSelector")
    if key == "namespaceSelector" and calicoselector.uses_global(node) and node != cs_global:
        ctx.fail("`namespaceSelector`: global() must be used alone")
    return text, node


def _rules(ctx: Context, spec: YMap, direction: Direction) -> tuple[CalicoRule, ...]:
    rules = ctx.sequence(spec, direction.field) or []
    if len(rules) > _MAX_RULES:
        ctx.fail(f"at most {_MAX_RULES} {direction.field} rules are allowed")
    return tuple(_rule(ctx, rules, i, direction) for i in range(len(rules)))


def _rule(ctx: Context, rules: list[Any], index: int, direction: Direction) -> CalicoRule:
    rule = rules[index]
    if not isinstance(rule, dict):
        ctx.at(rules).fail(f"{direction.field}[{index}] must be a mapping")
    rctx = ctx.at(rule)
    unknown = set(rule) - _RULE
    if unknown:
        rctx.fail(f"{direction.field}[{index}] has unknown {fields_named(unknown)}")
    action = rule.get("action")
    if action not in ACTIONS:
        rctx.fail(f"`action` must be one of {', '.join(ACTIONS)}, not {shown(action)}")
    ip_version = rule.get("ipVersion")
    if ip_version is not None and (isinstance(ip_version, bool) or ip_version not in (4, 6)):
        rctx.fail(f"`ipVersion` must be 4 or 6, not {shown(ip_version)}")
    protocol = _protocol(rctx, rule, "protocol")
    not_protocol = _protocol(rctx, rule, "notProtocol")
    src = _entity(rctx, rule, "source")
    dst = _entity(rctx, rule, "destination")
    for entity, where in ((src, "source"), (dst, "destination")):
        numbered = any(not isinstance(p, str) for p in entity.ports + entity.not_ports)
        if protocol is None and numbered:
            rctx.fail(
                f"`{where}` ports: rules that specify numeric ports must set protocol to TCP, "
                "UDP or SCTP"
            )
        if (
            protocol is not None
            and protocol not in _PORT_PROTOCOLS
            and entity.ports + entity.not_ports
        ):
            rctx.fail("rules that specify ports must set protocol to TCP or UDP or SCTP")
    families = {n.version for n in src.nets + src.not_nets + dst.nets + dst.not_nets}
    if len(families) > 1:
        rctx.fail("rule contains both IPv4 and IPv6 CIDRs")
    if ip_version is not None and families and families != {ip_version}:
        rctx.fail("rule IP version doesn't match CIDR version")
    if rule.get("http") is not None and action != "Allow":
        rctx.fail("rules with an `http` match must have the action Allow")
    _check_services(rctx, direction, src, dst)
    return CalicoRule(
        direction=direction,
        index=index,
        source=Source(rctx.file, rctx.line),
        action=action,
        protocol=protocol,
        not_protocol=not_protocol,
        ip_version=ip_version,
        src=src,
        dst=dst,
        http=rule.get("http") is not None,
    )


def _check_services(
    ctx: Context, direction: Direction, src: CalicoEntity, dst: CalicoEntity
) -> None:
    """What Calico's validation refuses of ``services`` (api/pkg/apis/projectcalico/v3
    policy_common.go's rules, libcalico-go's validator)."""
    if direction is Direction.EGRESS and src.services:
        ctx.fail("`source.services` is not allowed in an egress rule (only `destination`)")
    if direction is Direction.INGRESS and dst.services:
        ctx.fail("`destination.services` is not allowed in an ingress rule (only `source`)")
    for entity, where in ((src, "source"), (dst, "destination")):
        if not entity.services:
            continue
        if (
            entity.selector is not None
            or entity.not_selector is not None
            or entity.namespace_selector is not None
            or entity.nets
            or entity.not_nets
            or entity.service_accounts
        ):
            ctx.fail(
                f"`{where}.services` cannot be set with selector, notSelector, "
                "namespaceSelector, nets, notNets or serviceAccounts"
            )
    if dst.services and (dst.ports or dst.not_ports):
        ctx.fail("`destination` ports and notPorts cannot be specified with services")


def _protocol(ctx: Context, rule: YMap, key: str) -> int | None:
    value = rule.get(key)
    if value is None:
        return None
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 255:
        return value
    if isinstance(value, str) and value in _PROTOCOLS:
        return _PROTOCOLS[value]
    ctx.fail(
        f"`{key}` must be TCP, UDP, ICMP, ICMPv6, SCTP, UDPLite or a number in 1..255, "
        f"not {shown(value)}"
    )


def _entity(ctx: Context, rule: YMap, key: str) -> CalicoEntity:
    entity = rule.get(key)
    if entity is None:
        return CalicoEntity()
    if not isinstance(entity, dict):
        ctx.fail(f"`{key}` must be a mapping, not {type_name(entity)}")
    ectx = ctx.at(entity)
    unknown = set(entity) - _ENTITY
    if unknown:
        ectx.fail(f"`{key}` has unknown {fields_named(unknown)}")
    not_nets = _nets(ectx, entity, "notNets")
    for net in not_nets:
        if net.prefixlen == 0:
            ectx.fail("a catch-all CIDR in `notNets` matches no traffic (Calico refuses it)")
    accounts = entity.get("serviceAccounts")
    account_names: tuple[str, ...] = ()
    account_selector = None
    if accounts is not None:
        if not isinstance(accounts, dict) or set(accounts) - {"names", "selector"}:
            ectx.fail("`serviceAccounts` must be a mapping with `names` and/or `selector`")
        actx = ectx.at(accounts)
        names = actx.sequence(accounts, "names") or []
        if not all(isinstance(n, str) and n and "'" not in n for n in names):
            # libcalico-go quotes the names into a selector; one with a quote fails to
            # parse there and the whole match is dropped (the rule matches any account).
            actx.fail("`serviceAccounts.names` entries must be service account names")
        account_names = tuple(dict.fromkeys(names))
        _, account_selector = _selector(actx, accounts, "selector")
    services = entity.get("services")
    service = None
    if services is not None:
        if not isinstance(services, dict) or set(services) - {"name", "namespace"}:
            ectx.fail("`services` must be a mapping with `name` and `namespace`")
        name, namespace = services.get("name"), services.get("namespace") or ""
        if not isinstance(name, str) or not name:
            ectx.at(services).fail("`services` must specify a service name")
        if not isinstance(namespace, str):
            ectx.at(services).fail(f"`services.namespace` must be a string, not {shown(namespace)}")
        service = (namespace, name)
    text = ", ".join(f"{k}: {_short(entity[k])}" for k in sorted(entity))
    return CalicoEntity(
        nets=_nets(ectx, entity, "nets"),
        not_nets=not_nets,
        selector=_selector(ectx, entity, "selector")[1],
        not_selector=_selector(ectx, entity, "notSelector")[1],
        namespace_selector=_selector(ectx, entity, "namespaceSelector")[1],
        ports=_ports(ectx, entity, "ports"),
        not_ports=_ports(ectx, entity, "notPorts"),
        account_names=account_names,
        account_selector=account_selector,
        service=service,
        text=text,
    )


def _short(value: object) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(map(str, value)) + "]"
    return str(value)


def _nets(ctx: Context, entity: YMap, key: str) -> tuple[IPNetwork, ...]:
    values = ctx.sequence(entity, key) or []
    out = []
    for value in values:
        if not isinstance(value, str):
            ctx.fail(f"`{key}` entries must be CIDRs or addresses, not {type_name(value)}")
        text = value if "/" in value else value + ("/128" if ":" in value else "/32")
        address, _, prefix = text.partition("/")
        if not prefix.isascii() or not prefix.isdigit() or "%" in address:
            ctx.fail(f"`{key}` {shown(value)} is not a valid CIDR")
        try:
            out.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            ctx.fail(f"`{key}` {shown(value)} is not a valid CIDR")
    return tuple(out)


def _ports(ctx: Context, entity: YMap, key: str) -> tuple[PortEntry, ...]:
    values = ctx.sequence(entity, key) or []
    out: list[PortEntry] = []
    for value in values:
        if isinstance(value, bool):
            ctx.fail(f"`{key}` entry {shown(value)} is not a port")
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        if isinstance(value, int):
            if not 0 <= value <= 65535:
                ctx.fail(f"`{key}` port {value} is not in 0..65535")
            out.append((value, value))
            continue
        if not isinstance(value, str):
            ctx.fail(
                f'`{key}` entries are numbers, ranges "1000:2000" or names, not {type_name(value)}'
            )
        low, colon, high = value.partition(":")
        if colon:
            if not (low.isdigit() and high.isdigit()) or not int(low) <= int(high) <= 65535:
                ctx.fail(f'`{key}` range {shown(value)} must be "first:last" within 0..65535')
            out.append((int(low), int(high)))
        elif len(value) > 15 or not PORT_NAME.match(value):
            ctx.fail(f"`{key}` {shown(value)} is not a valid port name")
        else:
            out.append(value)
    return tuple(out)


def _tier(ctx: Context, obj: YMap) -> CalicoTier:
    meta = ctx.mapping(obj, "metadata")
    name = ctx.name(meta, "metadata.name")
    if not _TIER_NAME.match(name):
        ctx.at(meta).fail(f"Tier name {shown(name)} is not valid (no '.': a DNS label)")
    spec = ctx.mapping(obj, "spec", required=False)
    sctx = ctx.at(spec)
    unknown = set(spec) - {"order", "defaultAction"}
    if unknown:
        sctx.fail(f"`spec` has unknown {fields_named(unknown)} for a Tier")
    order = _order(sctx, spec)
    action = spec.get("defaultAction", "Deny")
    if action not in ("Deny", "Pass"):
        sctx.fail(f"`defaultAction` must be Deny or Pass, not {shown(action)}")
    if name in BUILT_IN_TIERS and (order, action) != BUILT_IN_TIERS[name]:
        fixed, fixed_action = BUILT_IN_TIERS[name]
        sctx.fail(f"the {name} tier must have order {fixed:.15g} and defaultAction {fixed_action}")
    return CalicoTier(name, order, action, Source(ctx.file, ctx.line))


def _network_set(ctx: Context, obj: YMap, kind: str) -> CalicoNetworkSet:
    meta = ctx.mapping(obj, "metadata")
    name = ctx.name(meta, "metadata.name")
    namespace = ctx.namespace(meta) if kind == "NetworkSet" else ""
    labels = string_map(ctx.at(meta), meta.get("labels"), "metadata.labels")
    if calicoselector.LABEL_NAMESPACE in labels:
        ctx.at(meta).fail(f"{calicoselector.LABEL_NAMESPACE} is not a valid label name")
    spec = ctx.mapping(obj, "spec", required=False)
    sctx = ctx.at(spec)
    unknown = set(spec) - {"nets"}
    if unknown:
        sctx.fail(f"`spec` has unknown {fields_named(unknown)} for a {kind}")
    return CalicoNetworkSet(
        kind,
        namespace,
        name,
        labels_of(labels),
        _nets(sctx, spec, "nets"),
        Source(ctx.file, ctx.line),
    )
