"""Read CiliumNetworkPolicy / CiliumClusterwideNetworkPolicy objects (cilium.io/v2).

What the CRD's schema rejects is an error naming file, line and the fix. What is valid but
cannot be evaluated from manifests (node selectors, groups, ICMP, Services not in the
tree, reserved identities…) is kept on the policy as *not analysed*, naming file and line,
and evaluated as matching nothing (fail closed). A rule's mutual authentication mode is
kept on the rule: decided at run time, it qualifies what the rule allows
(``analysis.ciliumauth`` reports a change of it).
Field names and meanings: Cilium's ``pkg/policy/api`` (rule.go, ingress.go, egress.go,
l4.go, cidr.go; Apache-2.0), facts only.

Why one module of 400 lines: the strict reader of one CRD's spec, rule by rule.
"""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Any

from analysis.ciliummodel import (
    CCNP,
    ENTITIES,
    CiliumPolicy,
    CiliumPort,
    CiliumRule,
    CiliumSelector,
    CiliumServiceRef,
    CiliumSpec,
    subject,
    translate,
)
from analysis.ciliumpeers import normal_fqdn
from analysis.model import Direction, IPBlock, IPNetwork, LabelSelector, Source
from analysis.policies import parse_selector
from analysis.validation import Context, shown, type_name
from analysis.yamldoc import YMap

_SPEC_FIELDS = frozenset(
    {
        "endpointSelector",
        "nodeSelector",
        "ingress",
        "ingressDeny",
        "egress",
        "egressDeny",
        "labels",
        "description",
        "enableDefaultDeny",
        "log",
    }
)
_COMMON = {"toPorts", "icmps"}
_FIELDS = {
    (Direction.INGRESS, False): _COMMON
    | {"fromEndpoints", "fromRequires", "fromCIDR", "fromCIDRSet", "fromEntities"}
    | {"fromGroups", "fromNodes", "authentication"},
    (Direction.INGRESS, True): _COMMON
    | {"fromEndpoints", "fromRequires", "fromCIDR", "fromCIDRSet", "fromEntities"}
    | {"fromGroups", "fromNodes"},
    (Direction.EGRESS, False): _COMMON
    | {"toEndpoints", "toRequires", "toCIDR", "toCIDRSet", "toEntities", "toServices"}
    | {"toFQDNs", "toGroups", "toNodes", "authentication"},
    (Direction.EGRESS, True): _COMMON
    | {"toEndpoints", "toRequires", "toCIDR", "toCIDRSet", "toEntities", "toServices"}
    | {"toGroups", "toNodes"},
}
# Valid fields whose peers a manifest tree cannot tell (evaluated as matching nothing).
_UNEVALUABLE = {
    "fromGroups": "cloud provider groups are not in the tree",
    "toGroups": "cloud provider groups are not in the tree",
    "fromNodes": "nodes and their labels are not in the tree",
    "toNodes": "nodes and their labels are not in the tree",
    "icmps": "ICMP rules are not modelled (reachdiff models TCP, UDP and SCTP)",
}
# authentication.mode (the CRD's enum): "required" is evaluated as if the handshake
# succeeds and shown on the rule's causes; "test-always-fail" (a test mode of Cilium's,
# every handshake fails) is not analysed.
_AUTHENTICATION_MODES = ("disabled", "required", "test-always-fail")
_PROTOCOLS = ("TCP", "UDP", "SCTP", "ANY")
_MAX_L7_TEXT = 160


def _authentication(ctx: Context, given: Any, label: str, notes: list[str]) -> str:
    """The rule's mutual authentication mode ("" for none: absent or ``disabled``)."""
    if given is None:
        return ""
    if not isinstance(given, dict) or set(given) - {"mode"}:
        ctx.fail(f"{label}.authentication must be a mapping with `mode`, not {shown(given)}")
    mode = given.get("mode")
    if mode not in _AUTHENTICATION_MODES:
        ctx.fail(
            f"{label}.authentication.mode must be one of {', '.join(_AUTHENTICATION_MODES)}, "
            f"not {shown(mode)}"
        )
    if mode == "test-always-fail":
        notes.append(
            f"{ctx.file}:{ctx.line}: {{policy}} {label}: authentication: mode test-always-fail "
            "(Cilium's test mode: every handshake fails) is not modelled"
        )
    return "" if mode == "disabled" else str(mode)


def parse_cilium_policy(ctx: Context, obj: YMap) -> CiliumPolicy:
    kind = obj["kind"]
    meta = ctx.mapping(obj, "metadata")
    name = ctx.name(meta, "metadata.name")
    namespace = "" if kind == CCNP else ctx.namespace(meta)
    scope = None if kind == CCNP else namespace
    notes: list[str] = []
    specs: list[CiliumSpec] = []
    spec = obj.get("spec")
    if spec is not None:
        specs.append(_spec(ctx.at(spec), spec, scope, "", notes))
    listed = ctx.sequence(obj, "specs")
    for i, item in enumerate(listed or ()):
        specs.append(_spec(ctx.at(item), item, scope, f"specs[{i}].", notes))
    if spec is None and not listed:
        ctx.fail(f"a {kind} needs `spec` or `specs`")
    policy = CiliumPolicy(kind, namespace, name, tuple(specs), Source(ctx.file, ctx.line))
    return CiliumPolicy(
        policy.kind, policy.namespace, policy.name, policy.specs, policy.source,
        tuple(n.replace("{policy}", policy.id) for n in notes),
    )  # fmt: skip


def _spec(ctx: Context, spec: Any, scope: str | None, prefix: str, notes: list[str]) -> CiliumSpec:
    where = prefix.rstrip(".") or "spec"
    if not isinstance(spec, dict):
        ctx.fail(f"`{where}` must be a mapping, not {type_name(spec)}")
    for extra in sorted(set(spec) - _SPEC_FIELDS, key=str):
        notes.append(
            f"{ctx.file}:{ctx.line}: {{policy}} {where}: unknown field {shown(extra)} "
            "(the API server drops it; check its spelling)"
        )
    selector = spec.get("endpointSelector")
    if spec.get("nodeSelector") is not None:
        if selector is not None:
            ctx.fail(f"`{where}` sets both endpointSelector and nodeSelector; use one")
        notes.append(
            f"{ctx.file}:{ctx.line}: {{policy}} {where}: nodeSelector (a host policy) selects "
            "nodes, which are not in the tree"
        )
        chosen = CiliumSelector(LabelSelector(), LabelSelector(), never=True, text="nodes")
    elif selector is None:
        ctx.fail(f"`{where}` needs an endpointSelector (or a nodeSelector)")
    else:
        chosen = subject(cilium_selector(ctx, selector, f"{where}.endpointSelector"), scope)
        _check_selector(ctx, chosen, f"{where}.endpointSelector", notes)
    rules: list[CiliumRule] = []
    for direction in Direction:
        for deny in (False, True):
            field = direction.field + ("Deny" if deny else "")
            for i, rule in enumerate(ctx.sequence(spec, field) or ()):
                rules.append(_rule(ctx.at(rule), rule, direction, deny, i, prefix, scope, notes))
    if not rules:
        notes.append(
            f"{ctx.file}:{ctx.line}: {{policy}} {where}: has no ingress, ingressDeny, egress "
            "or egressDeny rule, so the Cilium agent rejects it"
        )
    defaults = ctx.at(spec).mapping(spec, "enableDefaultDeny", required=False)
    default_deny = set()
    for direction in Direction:
        has_rules = any(r.direction is direction for r in rules)
        value = defaults.get(direction.field)
        if value is not None and not isinstance(value, bool):
            ctx.at(defaults).fail(
                f"`enableDefaultDeny.{direction.field}` must be true or false, not "
                f"{type_name(value)}"
            )
        # Rule.Sanitize: unset means true for a direction with rules; a direction without
        # rules is never put in default deny (cilium/cilium#35558).
        if has_rules and value is not False:
            default_deny.add(direction)
    return CiliumSpec(chosen, tuple(rules), frozenset(default_deny), Source(ctx.file, ctx.line))


def _check_selector(ctx: Context, sel: CiliumSelector, where: str, notes: list[str]) -> None:
    if sel.unmodelled:
        notes.append(f"{ctx.file}:{ctx.line}: {{policy}} {where}: {sel.unmodelled}")
    if sel.reserved:
        notes.append(
            f"{ctx.file}:{ctx.line}: {{policy}} {where}: selects a reserved identity by label "
            f"({sel.text}), which the tree does not define"
        )


def _rule(
    ctx: Context,
    rule: Any,
    direction: Direction,
    deny: bool,
    index: int,
    prefix: str,
    scope: str | None,
    notes: list[str],
) -> CiliumRule:
    label = f"{prefix}{direction.field}{'Deny' if deny else ''}[{index}]"
    if rule is None:
        rule = {}
    if not isinstance(rule, dict):
        ctx.fail(f"{label} must be a mapping, not {type_name(rule)}")
    allowed = _FIELDS[(direction, deny)]
    for extra in sorted(set(rule) - allowed, key=str):
        ctx.fail(
            f"{label} has unknown field {shown(extra)}; a rule has {', '.join(sorted(allowed))}"
        )
    ingress = direction is Direction.INGRESS
    names = ("from" if ingress else "to", "Endpoints", "Requires", "CIDR", "CIDRSet", "Entities")
    side = names[0]
    l3_fields = [side + n for n in names[1:] if n != "Requires"]
    l3_fields += ["fromGroups", "fromNodes"] if ingress else ["toGroups", "toNodes"]
    l3_fields += [] if ingress else ["toServices", "toFQDNs"]
    given = [f for f in l3_fields if f in rule]
    empty = any(isinstance(rule[f], list) and not rule[f] for f in given)
    for field in sorted(set(rule) & set(_UNEVALUABLE)):
        if rule[field] is not None and rule[field] != []:
            notes.append(
                f"{ctx.file}:{ctx.line}: {{policy}} {label}: {field}: {_UNEVALUABLE[field]}"
            )
    endpoints = tuple(
        _selector(ctx, s, f"{label}.{side}Endpoints", scope, notes, peer=True)
        for s in ctx.sequence(rule, side + "Endpoints") or ()
    )
    requires = tuple(
        _selector(ctx, s, f"{label}.{side}Requires", scope, notes, peer=False)
        for s in ctx.sequence(rule, side + "Requires") or ()
    )
    blocks = [_cidr(ctx, c, f"{label}.{side}CIDR") for c in ctx.sequence(rule, side + "CIDR") or ()]
    for item in ctx.sequence(rule, side + "CIDRSet") or ():
        block = _cidr_set(ctx.at(item), item, f"{label}.{side}CIDRSet", notes)
        if block is not None:
            blocks.append(block)
    entities = []
    for e in ctx.sequence(rule, side + "Entities") or ():
        if e not in ENTITIES:
            known = ", ".join(sorted(ENTITIES))
            ctx.fail(f"{label}.{side}Entities: unknown entity {shown(e)}; one of {known}")
        entities.append(e)
    fqdns = tuple(
        _fqdn(ctx.at(item) if isinstance(item, dict) else ctx, item, f"{label}.toFQDNs")
        for item in ([] if ingress else ctx.sequence(rule, "toFQDNs") or ())
    )
    services = tuple(
        _service_ref(ctx.at(item) if isinstance(item, dict) else ctx, item, label, scope)
        for item in ([] if ingress else ctx.sequence(rule, "toServices") or ())
    )
    ports, l7 = _to_ports(ctx, rule, label, deny, notes)
    authentication = _authentication(ctx, rule.get("authentication"), label, notes)
    evaluable = bool(endpoints or blocks or entities or fqdns or services)
    return CiliumRule(
        direction=direction,
        deny=deny,
        index=index,
        source=Source(ctx.file, ctx.line),
        prefix=prefix,
        endpoints=endpoints,
        requires=requires,
        blocks=tuple(blocks),
        entities=tuple(entities),
        l3=bool(given),
        selects_nothing=empty or (bool(given) and not evaluable),
        ports=ports,
        l7=l7,
        authentication=authentication,
        fqdns=tuple(dict.fromkeys(fqdns)),
        dns=_has_dns(rule),
        services=services,
    )


def _service_ref(ctx: Context, item: Any, label: str, scope: str | None) -> CiliumServiceRef:
    """One toServices entry; a namespaced policy's reference without a namespace is to its
    own namespace."""
    where = f"{label}.toServices"
    if not isinstance(item, dict):
        ctx.fail(f"`{where}` entries must be mappings with k8sService or k8sServiceSelector")
    by_name, by_labels = item.get("k8sService"), item.get("k8sServiceSelector")
    if (by_name is None) == (by_labels is None):
        ctx.fail(f"`{where}` entry needs exactly one of k8sService and k8sServiceSelector")
    chosen = by_name if by_name is not None else by_labels
    if not isinstance(chosen, dict):
        ctx.fail(f"`{where}` entry must be a mapping, not {type_name(chosen)}")
    namespace = chosen.get("namespace") or scope
    if namespace is not None and not isinstance(namespace, str):
        ctx.fail(f"`{where}` namespace must be a string, not {type_name(namespace)}")
    if by_name is not None:
        name = chosen.get("serviceName")
        if not isinstance(name, str) or not name:
            ctx.fail(f"`{where}.k8sService` needs serviceName (a Service's name)")
        return CiliumServiceRef(namespace or "default", name)
    if chosen.get("selector") is None:
        ctx.fail(f"`{where}.k8sServiceSelector` needs selector (the Services' labels)")
    sctx = ctx.at(chosen)
    return CiliumServiceRef(
        namespace, selector=parse_selector(sctx, chosen["selector"], f"{where}.selector")
    )


# The CRD's patterns (pkg/policy/api/fqdn.go): letters, digits, `-`, `_` and dots; a
# pattern may use `*` too.
_FQDN_NAME = re.compile(r"^([-a-zA-Z0-9_]+[.]?)+$")
_FQDN_PATTERN = re.compile(r"^([-a-zA-Z0-9_*]+[.]?)+$")


def _fqdn(ctx: Context, item: Any, where: str) -> str:
    """One toFQDNs entry: its matchName or matchPattern, normalized (never resolved)."""
    if not isinstance(item, dict):
        ctx.fail(f"`{where}` entries must be mappings with matchName or matchPattern")
    name, pattern = item.get("matchName"), item.get("matchPattern")
    extra = sorted(set(item) - {"matchName", "matchPattern"}, key=str)
    if extra:
        ctx.fail(f"`{where}` entry has unknown field {shown(extra[0])}")
    if (name is None) == (pattern is None):
        ctx.fail(f"`{where}` entry needs exactly one of matchName and matchPattern")
    text = name if name is not None else pattern
    check = _FQDN_NAME if name is not None else _FQDN_PATTERN
    field = "matchName" if name is not None else "matchPattern"
    if not isinstance(text, str) or len(text) > 255 or not check.match(text):
        ctx.fail(f"`{where}.{field}` {shown(text)} is not a DNS name{'' if name else ' pattern'}")
    return normal_fqdn(text)


def _has_dns(rule: YMap) -> bool:
    """Whether the rule's toPorts carry DNS rules: traffic the agent's DNS proxy sees."""
    for entry in rule.get("toPorts") or ():
        rules = entry.get("rules") if isinstance(entry, dict) else None
        if isinstance(rules, dict) and rules.get("dns"):
            return True
    return False


# Cilium lowercases selector operators before reading them (its examples write `in`).
_OPERATORS = {op.lower(): op for op in ("In", "NotIn", "Exists", "DoesNotExist")}


def cilium_selector(ctx: Context, value: Any, where: str) -> LabelSelector:
    """A label selector as Cilium reads it: operators in any case."""
    if isinstance(value, dict) and isinstance(value.get("matchExpressions"), list):
        exprs = value["matchExpressions"]
        if any(isinstance(e, dict) and isinstance(e.get("operator"), str) for e in exprs):
            fixed = [
                {**e, "operator": _OPERATORS.get(e["operator"].lower(), e["operator"])}
                if isinstance(e, dict) and isinstance(e.get("operator"), str)
                else e
                for e in exprs
            ]
            copy = type(value)(value)
            copy["matchExpressions"] = type(exprs)(fixed)
            for attr in ("line", "file"):
                if hasattr(value, attr):
                    setattr(copy, attr, getattr(value, attr))
            value = copy
    return parse_selector(ctx, value, where)


def _selector(
    ctx: Context, value: Any, where: str, scope: str | None, notes: list[str], *, peer: bool
) -> CiliumSelector:
    sctx = ctx.at(value) if isinstance(value, dict) else ctx
    sel = translate(cilium_selector(sctx, value, where), scope, peer=peer)
    _check_selector(sctx, sel, where, notes)
    return sel


def _network(ctx: Context, text: Any, where: str) -> IPNetwork:
    if not isinstance(text, str):
        ctx.fail(f"`{where}` entries must be CIDRs like 10.0.0.0/8, not {type_name(text)}")
    try:
        if "/" in text:
            return ipaddress.ip_network(text, strict=False)
        return ipaddress.ip_network(ipaddress.ip_address(text))  # an address: one host
    except ValueError:
        ctx.fail(f"`{where}` {shown(text)} is not a valid CIDR or IP address")


def _cidr(ctx: Context, text: Any, where: str) -> IPBlock:
    return IPBlock(_network(ctx, text, where))


def _cidr_set(ctx: Context, item: Any, where: str, notes: list[str]) -> IPBlock | None:
    if not isinstance(item, dict):
        ctx.fail(f"`{where}` entries must be mappings with `cidr`, not {type_name(item)}")
    if item.get("cidr") is None:
        if item.get("cidrGroupRef") is not None or item.get("cidrGroupSelector") is not None:
            notes.append(
                f"{ctx.file}:{ctx.line}: {{policy}} {where}: a CiliumCIDRGroup reference is not "
                "modelled"
            )
            return None
        ctx.fail(f"`{where}` entry needs `cidr`, `cidrGroupRef` or `cidrGroupSelector`")
    cidr = _network(ctx, item.get("cidr"), f"{where}.cidr")
    excepts = tuple(_network(ctx, e, f"{where}.except") for e in ctx.sequence(item, "except") or ())
    return IPBlock(cidr, excepts)


def _to_ports(
    ctx: Context, rule: YMap, label: str, deny: bool, notes: list[str]
) -> tuple[tuple[CiliumPort, ...] | None, str]:
    entries = ctx.sequence(rule, "toPorts")
    if entries is None or not entries:
        return None, ""
    ports: list[CiliumPort] = []
    l7: list[str] = []
    for entry in entries:
        ectx = ctx.at(entry) if isinstance(entry, dict) else ctx
        if not isinstance(entry, dict):
            ectx.fail(f"{label}.toPorts entries must be mappings, not {type_name(entry)}")
        for p in ectx.sequence(entry, "ports") or ():
            ports.append(_port(ectx.at(p) if isinstance(p, dict) else ectx, p, label))
        rest = {k: v for k, v in entry.items() if k != "ports" and v is not None}
        if rest and deny:
            ectx.fail(
                f"{label}.toPorts of a deny rule has only `ports`, not {', '.join(map(str, rest))}"
            )
        if rest:
            # `http [{"method":"GET"}]`: each L7 protocol's rules, then TLS/SNI/listener.
            rules = rest.pop("rules", None)
            shown_rules = rules.items() if isinstance(rules, dict) else [("rules", rules)]
            l7.extend(f"{k} {_compact(v)}" for k, v in [*shown_rules, *sorted(rest.items())])
    text = "; ".join(l7)
    if len(text) > _MAX_L7_TEXT:
        text = text[: _MAX_L7_TEXT - 1] + "…"
    return tuple(ports), text


def _compact(value: object) -> str:
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    except (TypeError, ValueError, RecursionError):
        return "(L7 rules)"


def _port(ctx: Context, entry: Any, label: str) -> CiliumPort:
    if not isinstance(entry, dict):
        ctx.fail(f"{label}.toPorts.ports entries must be mappings, not {type_name(entry)}")
    protocol = entry.get("protocol", "ANY")
    if protocol not in _PROTOCOLS:
        ctx.fail(f"{label}: protocol must be TCP, UDP, SCTP or ANY, not {shown(protocol)}")
    port = entry.get("port")
    end = entry.get("endPort")
    if end is not None and (
        isinstance(end, bool) or not isinstance(end, int) or not 0 <= end <= 65535
    ):
        ctx.fail(f"{label}: endPort must be a number in 0..65535, not {type_name(end)}")
    if port is None:
        return CiliumPort(protocol)
    if isinstance(port, bool) or not isinstance(port, str):
        ctx.fail(f'{label}: port must be a string; quote it (port: "{shown(port)}")')
    if port.isascii() and port.isdigit():
        number = int(port)
        if number > 65535:
            ctx.fail(f"{label}: port {shown(port)} is outside 0..65535")
        if number == 0:
            return CiliumPort(protocol)  # "0": every port
        if end is not None and end != 0 and end < number:
            ctx.fail(f"{label}: endPort {end} is less than port {number}")
        return CiliumPort(protocol, number, end or None)
    if not port or len(port) > 15 or not any(c.isalpha() for c in port):
        ctx.fail(f"{label}: port {shown(port)} is neither a number nor a port name")
    return CiliumPort(protocol, port.lower())
