"""Hypothesis strategies for CiliumNetworkPolicy / CiliumClusterwideNetworkPolicy objects,
added to the random clusters of ``tests.strategies`` (and their admin tiers).

Selectors use Cilium's key forms (``k8s:`` prefixes, ``io.kubernetes.pod.namespace``,
``io.cilium.k8s.namespace.labels.<key>``, a label the identity filter drops, a reserved
label); rules mix endpoints, CIDRs, CIDR sets with excepts, every entity, toFQDNs names and
patterns, requirements, ports by number, range, name and ANY, L7 rules (HTTP, DNS), and the
valid fields a tree cannot evaluate.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from tests.strategies import (
    NAMESPACES,
    NS_KEYS,
    POD_KEYS,
    PORT_NUMBERS,
    V4_CIDRS,
    V6_CIDRS,
    VALUES,
    Draw,
    Obj,
    cidrs_with_excepts,
)

NS_LABEL = "io.kubernetes.pod.namespace"
NS_LABELS = "io.cilium.k8s.namespace.labels."
SA_LABEL = "io.cilium.k8s.policy.serviceaccount"
SERVICE_ACCOUNTS = ("default", "api", "batch")
ENTITIES = (
    "world", "cluster", "all", "world-ipv4", "world-ipv6", "host", "none", "remote-node",
    "kube-apiserver", "ingress", "health", "init", "unmanaged",
)  # fmt: skip
# toFQDNs entries: names a pattern covers and one it does not, the catch-all, case and the
# root's trailing dot (all normalized alike).
FQDNS = (
    {"matchName": "api.example.com"},
    {"matchName": "API.Example.com."},
    {"matchName": "example.org"},
    {"matchPattern": "*.example.com"},
    {"matchPattern": "*"},
    {"matchPattern": "api.example.com"},
    {"matchPattern": "*.org"},
)


@st.composite
def cilium_selectors(draw: Draw) -> Obj:
    """A selector over a pod's Cilium identity labels."""
    keys = [
        *POD_KEYS,
        *(f"k8s:{k}" for k in POD_KEYS),
        NS_LABEL,
        f"k8s:{NS_LABEL}",
        *(NS_LABELS + k for k in NS_KEYS),
        f"k8s:{NS_LABELS}kubernetes.io/metadata.name",
        "pod-template-hash",  # not part of identities
        "reserved:host",
        "reserved:world",
        "reserved:kube-apiserver",
        SA_LABEL,
        f"k8s:{SA_LABEL}",
    ]
    sel: Obj = {}
    count = draw(st.sampled_from((0, 1, 1, 2)))
    labels: dict[str, str] = {}
    exprs: list[Obj] = []
    for _ in range(count):
        key = draw(st.sampled_from(keys))
        values = NAMESPACES if NS_LABEL in key or "metadata.name" in key else VALUES
        values = SERVICE_ACCOUNTS if SA_LABEL in key else values
        if draw(st.booleans()):
            labels[key] = draw(st.sampled_from(values))
        else:
            op = draw(st.sampled_from(("In", "NotIn", "Exists", "DoesNotExist")))
            expr: Obj = {"key": key, "operator": op}
            if op in ("In", "NotIn"):
                expr["values"] = draw(
                    st.lists(st.sampled_from(values), min_size=1, max_size=2, unique=True)
                )
            exprs.append(expr)
    if labels:
        sel["matchLabels"] = labels
    if exprs:
        sel["matchExpressions"] = exprs
    return sel


@st.composite
def cilium_ports(draw: Draw, names: tuple[str, ...], deny: bool) -> list[Obj]:
    out: list[Obj] = []
    for _ in range(draw(st.integers(1, 2))):
        entry: Obj = {}
        ports: list[Obj] = []
        for _ in range(draw(st.integers(0, 2))):
            port: Obj = {}
            proto = draw(st.sampled_from((None, "TCP", "UDP", "SCTP", "ANY")))
            if proto is not None:
                port["protocol"] = proto
            shape = draw(st.sampled_from(("number", "range", "zero", "name", "missing")))
            if shape == "name" and not names:
                shape = "number"
            if shape in ("number", "range"):
                start = draw(st.sampled_from(PORT_NUMBERS))
                port["port"] = str(start)
                if shape == "range":
                    port["endPort"] = start + draw(st.integers(0, 600))
            elif shape == "zero":
                port["port"] = "0"
            elif shape == "name":
                port["port"] = draw(st.sampled_from(names))
            ports.append(port)
        if ports or draw(st.booleans()):
            entry["ports"] = ports
        if not deny and draw(st.integers(0, 3)) == 0:
            entry["rules"] = draw(
                st.sampled_from(
                    (
                        {"http": [{"method": "GET", "path": "/public"}]},
                        {"dns": [{"matchPattern": "*"}]},
                    )
                )
            )
        out.append(entry)
    return out


@st.composite
def cilium_rules(draw: Draw, direction: str, names: tuple[str, ...], deny: bool) -> Obj:
    side = "from" if direction == "ingress" else "to"
    rule: Obj = {}
    fields = ["Endpoints", "Endpoints", "CIDR", "CIDRSet", "Entities", "Requires"]
    if direction == "egress" and not deny:
        fields += ["FQDNs", "Services"]
    for field in draw(st.lists(st.sampled_from(fields), max_size=2, unique=True)):
        if field == "FQDNs":
            rule["toFQDNs"] = draw(st.lists(st.sampled_from(FQDNS), min_size=1, max_size=2))
            continue
        if field == "Services":
            rule["toServices"] = draw(st.lists(service_refs(), min_size=1, max_size=2))
            continue
        if field == "Endpoints":
            rule[side + field] = draw(st.lists(cilium_selectors(), max_size=2))
        elif field == "Requires":
            rule[side + field] = draw(st.lists(cilium_selectors(), min_size=1, max_size=1))
        elif field == "CIDR":
            pool = V4_CIDRS + V6_CIDRS + ("10.1.2.3",)
            rule[side + field] = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=2))
        elif field == "CIDRSet":
            rule[side + field] = draw(st.lists(cidrs_with_excepts(), min_size=1, max_size=2))
        else:
            rule[side + field] = draw(
                st.lists(st.sampled_from(ENTITIES), min_size=1, max_size=2, unique=True)
            )
    if draw(st.booleans()):
        rule["toPorts"] = draw(cilium_ports(names, deny))
    return rule


@st.composite
def cilium_spec(draw: Draw, names: tuple[str, ...]) -> Obj:
    spec: Obj = {"endpointSelector": draw(cilium_selectors())}
    for direction in ("ingress", "egress"):
        for deny in (False, True):
            if draw(st.integers(0, 2 if deny else 1)) == 0:
                continue
            rules = draw(st.lists(cilium_rules(direction, names, deny), max_size=2))
            spec[direction + ("Deny" if deny else "")] = rules
    if not any(k in spec for k in ("ingress", "egress", "ingressDeny", "egressDeny")):
        spec["ingress"] = [{}]  # the agent refuses a spec without rules
    if draw(st.integers(0, 3)) == 0:
        spec["enableDefaultDeny"] = {
            d: draw(st.booleans()) for d in ("ingress", "egress") if draw(st.booleans())
        }
    return spec


@st.composite
def cilium_policies(
    draw: Draw, names: tuple[str, ...], namespaces: tuple[str, ...], prefix: str = "cnp"
) -> list[Obj]:
    out: list[Obj] = []
    for i in range(draw(st.integers(0, 3))):
        clusterwide = draw(st.integers(0, 2)) == 0
        meta: dict[str, Any] = {"name": f"{prefix}{i}"}
        if not clusterwide:
            meta["namespace"] = draw(st.sampled_from(namespaces))
        obj: Obj = {
            "apiVersion": "cilium.io/v2",
            "kind": "CiliumClusterwideNetworkPolicy" if clusterwide else "CiliumNetworkPolicy",
            "metadata": meta,
        }
        if draw(st.integers(0, 3)) == 0:
            obj["specs"] = draw(st.lists(cilium_spec(names), min_size=1, max_size=2))
        else:
            obj["spec"] = draw(cilium_spec(names))
        out.append(obj)
    return out


@st.composite
def with_service_accounts(draw: Draw, objects: list[Obj]) -> list[Obj]:
    """Some workloads run as a named service account (serviceAccountName, or its
    deprecated alias serviceAccount), the others as "default"."""
    for obj in objects:
        spec = _pod_spec(obj)
        if spec is None or draw(st.integers(0, 2)) == 0:
            continue
        field = draw(st.sampled_from(("serviceAccountName", "serviceAccount")))
        spec[field] = draw(st.sampled_from(SERVICE_ACCOUNTS))
    return objects


def _pod_spec(obj: Obj) -> Obj | None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return None
    if obj.get("kind") == "Pod":
        return spec
    if obj.get("kind") == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    template = spec.get("template")
    return template.get("spec") if isinstance(template, dict) else None


SERVICE_NAMES = ("svc-a", "svc-b", "svc-none")


@st.composite
def service_refs(draw: Draw) -> Obj:
    """A toServices entry: by name (the policy's namespace, or one named), or by labels."""
    if draw(st.booleans()):
        ref: Obj = {"serviceName": draw(st.sampled_from((*SERVICE_NAMES, "missing")))}
        if draw(st.booleans()):
            ref["namespace"] = draw(st.sampled_from(NAMESPACES))
        return {"k8sService": ref}
    sel: Obj = {"selector": {"matchLabels": {"tier": draw(st.sampled_from(VALUES))}}}
    if draw(st.booleans()):
        sel["namespace"] = draw(st.sampled_from(NAMESPACES))
    return {"k8sServiceSelector": sel}


@st.composite
def services(draw: Draw, namespaces: tuple[str, ...]) -> list[Obj]:
    """Services with selectors over pod labels (svc-none without one), labelled by tier."""
    out: list[Obj] = []
    for namespace in namespaces:
        for name in draw(st.lists(st.sampled_from(SERVICE_NAMES), max_size=2, unique=True)):
            meta: Obj = {"name": name, "namespace": namespace}
            if draw(st.booleans()):
                meta["labels"] = {"tier": draw(st.sampled_from(VALUES))}
            spec: Obj = {"ports": [{"port": 80}]}
            if name != "svc-none":
                spec["selector"] = {draw(st.sampled_from(POD_KEYS)): draw(st.sampled_from(VALUES))}
            out.append({"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": spec})
    return out
