"""Hypothesis strategies for Calico objects, added to the random clusters of
``tests/strategies.py`` (and the admin tiers of ``tests/test_properties_admin.py``).

Every object is one Calico accepts: numeric ports only with TCP, UDP or SCTP, one address
family per rule, no catch-all ``notNets``, ``global()`` only alone in a rule's
namespaceSelector. Vocabularies are the clusters' own (pod keys ``app``/``tier``, values
``a``/``b``/``""``), so selectors match, miss and overlap often.
"""

from __future__ import annotations

from hypothesis import strategies as st

from tests.strategies import NAMESPACES, NS_KEYS, POD_KEYS, PORT_NUMBERS, VALUES, Draw, Obj
from tests.strategies_cilium import SERVICE_ACCOUNTS

API_VERSIONS = ("projectcalico.org/v3", "crd.projectcalico.org/v1")
NETS = ("10.0.0.0/8", "10.1.0.0/16", "192.168.0.0/16", "0.0.0.0/0", "10.1.2.3")
USER_TIERS = (("security", 100), ("platform", None), ("late", 2_000_000))
# Service-account label keys: "app" is a pod key too, so a selector read over the wrong
# labels (the pod's instead of its account's) shows.
ACCOUNT_KEYS = ("role", "app")
SERVICE_NAMES = ("svc-a", "svc-b", "svc-none", "missing")  # svc-none has no selector


@st.composite
def calico_services(draw: Draw, names: tuple[str, ...]) -> list[Obj]:
    """v1 Services a rule's ``services`` may name: with a selector over pod labels (but
    svc-none), ports targeting numbers, names of the pods' container ports, or the port."""
    out: list[Obj] = []
    for namespace in NAMESPACES:
        for name in draw(st.lists(st.sampled_from(SERVICE_NAMES[:3]), max_size=2, unique=True)):
            ports: list[Obj] = []
            for _ in range(draw(st.integers(1, 2))):
                entry: Obj = {"port": draw(st.sampled_from(PORT_NUMBERS))}
                target = draw(st.sampled_from((None, *PORT_NUMBERS, *names)))
                if target is not None:
                    entry["targetPort"] = target
                protocol = draw(st.sampled_from((None, "TCP", "UDP")))
                if protocol is not None:
                    entry["protocol"] = protocol
                entry["name"] = f"p{len(ports)}"
                ports.append(entry)
            spec: Obj = {"ports": ports}
            if name != "svc-none":
                spec["selector"] = {draw(st.sampled_from(POD_KEYS)): draw(st.sampled_from(VALUES))}
            meta = {"name": name, "namespace": namespace}
            out.append({"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": spec})
    return out


@st.composite
def account_matches(draw: Draw) -> Obj:
    """A ``serviceAccounts`` match: names, a selector over the accounts' labels, both."""
    out: Obj = {}
    if draw(st.booleans()):
        out["names"] = draw(st.lists(st.sampled_from(SERVICE_ACCOUNTS), max_size=2, unique=True))
    if draw(st.booleans()):
        out["selector"] = draw(calico_selectors(ACCOUNT_KEYS))
    return out


def _quoted(draw: Draw, value: str) -> str:
    return f'"{value}"' if draw(st.booleans()) else f"'{value}'"


@st.composite
def calico_selectors(draw: Draw, keys: tuple[str, ...] = POD_KEYS, depth: int = 0) -> str:
    """Selector text with every operator, negation and grouping."""
    kind = draw(
        st.sampled_from(
            ("eq", "eq", "ne", "has", "!has", "in", "notin", "contains", "starts", "ends", "all")
            + (("and", "or", "not") if depth < 2 else ())
        )
    )
    key = draw(st.sampled_from(keys))
    value = draw(st.sampled_from(VALUES))
    if kind == "eq":
        return f"{key} == {_quoted(draw, value)}"
    if kind == "ne":
        return f"{key} != {_quoted(draw, value)}"
    if kind == "has":
        return f"has({key})"
    if kind == "!has":
        return f"!has({key})"
    if kind in ("in", "notin"):
        values = draw(st.lists(st.sampled_from(VALUES), max_size=2, unique=True))
        op = "in" if kind == "in" else draw(st.sampled_from(("not in", "notin")))
        return f"{key} {op} {{{', '.join(_quoted(draw, v) for v in values)}}}"
    if kind in ("contains", "starts", "ends"):
        op = {"contains": "contains", "starts": "starts with", "ends": "ends with"}[kind]
        return f"{key} {op} {_quoted(draw, draw(st.sampled_from(('a', 'b'))))}"
    if kind == "all":
        return "all()"
    left = draw(calico_selectors(keys, depth + 1))
    if kind == "not":
        return f"!({left})"
    right = draw(calico_selectors(keys, depth + 1))
    return f"({left}) {'&&' if kind == 'and' else '||'} ({right})"


@st.composite
def entities(draw: Draw, protocol: object, own: bool, names: tuple[str, ...]) -> Obj:
    out: Obj = {}
    with_ports = protocol in (None, "TCP", "UDP", "SCTP", 6)
    if draw(st.integers(0, 2)) == 0:
        out["selector"] = draw(calico_selectors())
    if draw(st.integers(0, 4)) == 0:
        out["notSelector"] = draw(calico_selectors())
    if not own and draw(st.integers(0, 3)) == 0:
        style = draw(st.sampled_from(("all()", "global()", "name", "labels", "labels")))
        if style == "name":
            style = f"projectcalico.org/name == '{draw(st.sampled_from(NAMESPACES))}'"
        elif style == "labels":
            style = draw(calico_selectors(NS_KEYS))
        out["namespaceSelector"] = style
    if not own and draw(st.integers(0, 5)) == 0:
        # services: alone (Calico refuses selectors, nets and accounts beside it)
        ref: Obj = {"name": draw(st.sampled_from(SERVICE_NAMES))}
        if draw(st.booleans()):
            ref["namespace"] = draw(st.sampled_from(NAMESPACES))
        return {"services": ref}
    if draw(st.integers(0, 4)) == 0:
        out["serviceAccounts"] = draw(account_matches())
    if not own and draw(st.integers(0, 3)) == 0:
        out["nets"] = draw(st.lists(st.sampled_from(NETS), min_size=1, max_size=2, unique=True))
    if not own and draw(st.integers(0, 5)) == 0:
        out["notNets"] = draw(st.lists(st.sampled_from(NETS[:3]), min_size=1, max_size=1))
    if own and with_ports:
        for field in ("ports", "notPorts"):
            if draw(st.integers(0, 2 if field == "ports" else 5)) == 0:
                out[field] = draw(port_lists(protocol is not None, names))
    return out


@st.composite
def port_lists(draw: Draw, numbered: bool, names: tuple[str, ...]) -> list[object]:
    choices = []
    if numbered:
        choices += ["number", "range", "string"]
    if names:
        choices.append("name")
    if not choices:
        return ["http"]
    out: list[object] = []
    for _ in range(draw(st.integers(1, 2))):
        kind = draw(st.sampled_from(choices))
        start = draw(st.sampled_from(PORT_NUMBERS))
        if kind == "number":
            out.append(start)
        elif kind == "string":
            out.append(str(start))
        elif kind == "range":
            out.append(f"{start}:{start + draw(st.integers(0, 600))}")
        else:
            out.append(draw(st.sampled_from(names)))
    return out


@st.composite
def calico_rules(draw: Draw, direction: str, names: tuple[str, ...]) -> Obj:
    rule: Obj = {"action": draw(st.sampled_from(("Allow", "Deny", "Pass", "Log", "Allow")))}
    protocol = draw(st.sampled_from((None, None, "TCP", "UDP", "SCTP", "ICMP", 6)))
    if protocol is not None:
        rule["protocol"] = protocol
    if draw(st.integers(0, 6)) == 0:
        rule["notProtocol"] = draw(st.sampled_from(("UDP", "TCP", 17)))
    peer, own = ("source", "destination") if direction == "ingress" else ("destination", "source")
    peer_entity = draw(entities(protocol, False, names))
    own_entity = draw(entities(protocol, True, names))
    # Destination ports live in `destination`: the own side for ingress, the peer for egress.
    if direction == "egress":
        for field in ("ports", "notPorts"):
            if field in own_entity:
                moved = own_entity.pop(field)
                if "services" not in peer_entity:  # Calico refuses ports beside services
                    peer_entity[field] = moved
    if peer_entity:
        rule[peer] = peer_entity
    if own_entity:
        rule[own] = own_entity
    if draw(st.integers(0, 12)) == 0:
        rule["ipVersion"] = 4
    return rule


@st.composite
def calico_policies(draw: Draw, name: str, tiers: list[str], names: tuple[str, ...]) -> Obj:
    global_ = draw(st.booleans())
    spec: Obj = {}
    tier = draw(st.sampled_from(["default", "default", *tiers]))
    if tier != "default" or draw(st.booleans()):
        spec["tier"] = tier
    order = draw(st.sampled_from((None, 0, 1, 2.5, 1000, 1000)))
    if order is not None:
        spec["order"] = order
    if draw(st.integers(0, 4)):
        spec["selector"] = draw(calico_selectors())
    if global_ and draw(st.integers(0, 3)) == 0:
        spec["namespaceSelector"] = draw(calico_selectors(NS_KEYS))
    if draw(st.integers(0, 4)) == 0:
        spec["serviceAccountSelector"] = draw(calico_selectors(ACCOUNT_KEYS))
    for direction in ("ingress", "egress"):
        count = draw(st.integers(0, 2))
        if count:
            spec[direction] = [draw(calico_rules(direction, names)) for _ in range(count)]
    if draw(st.booleans()):
        spec["types"] = draw(
            st.sampled_from((["Ingress"], ["Egress"], ["Ingress", "Egress"], ["Egress", "Ingress"]))
        )
    if global_:  # a GlobalNetworkPolicy's services name their namespace
        for direction in ("ingress", "egress"):
            for rule in spec.get(direction, []):
                for side in ("source", "destination"):
                    ref = (rule.get(side) or {}).get("services")
                    if ref is not None and "namespace" not in ref:
                        ref["namespace"] = draw(st.sampled_from(NAMESPACES))
    metadata: Obj = {"name": name if tier == "default" else f"{tier}.{name}"}
    if not global_:
        metadata["namespace"] = draw(st.sampled_from(NAMESPACES))
    return {
        "apiVersion": draw(st.sampled_from(API_VERSIONS)),
        "kind": "GlobalNetworkPolicy" if global_ else "NetworkPolicy",
        "metadata": metadata,
        "spec": spec,
    }


@st.composite
def calico_objects(draw: Draw, names: tuple[str, ...]) -> list[Obj]:
    """0-2 Tiers, 1-3 Calico policies, 0-2 network sets and 0-3 ServiceAccounts (the
    others the pods run as are not in the tree)."""
    out: list[Obj] = []
    tiers = []
    for tier, order in draw(st.lists(st.sampled_from(USER_TIERS), max_size=2, unique=True)):
        spec: Obj = {"defaultAction": draw(st.sampled_from(("Deny", "Pass")))}
        if order is not None:
            spec["order"] = order
        out.append(
            {
                "apiVersion": "projectcalico.org/v3",
                "kind": "Tier",
                "metadata": {"name": tier},
                "spec": spec,
            }
        )
        tiers.append(tier)
    for i in range(draw(st.integers(1, 3))):
        out.append(draw(calico_policies(f"c{i}", tiers, names)))
    for i in range(draw(st.integers(0, 2))):
        namespaced = draw(st.booleans())
        metadata: Obj = {"name": f"set{i}", "labels": {"app": draw(st.sampled_from(VALUES))}}
        if namespaced:
            metadata["namespace"] = draw(st.sampled_from(NAMESPACES))
        out.append(
            {
                "apiVersion": "projectcalico.org/v3",
                "kind": "NetworkSet" if namespaced else "GlobalNetworkSet",
                "metadata": metadata,
                "spec": {"nets": draw(st.lists(st.sampled_from(NETS), min_size=1, max_size=2))},
            }
        )
    out += draw(calico_services(names))
    accounts = st.tuples(st.sampled_from(NAMESPACES), st.sampled_from(SERVICE_ACCOUNTS))
    for namespace, name in draw(st.lists(accounts, max_size=3, unique=True)):
        metadata = {"name": name, "namespace": namespace}
        if draw(st.integers(0, 3)):
            keys = draw(st.lists(st.sampled_from(ACCOUNT_KEYS), max_size=2, unique=True))
            metadata["labels"] = {k: draw(st.sampled_from(VALUES)) for k in keys}
        out.append({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata})
    return out
