"""Hypothesis strategies for random Intents and ConnectivityTests over a random cluster
(tests/strategies.py), drawn from the same tiny vocabularies so that they match often."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hypothesis import strategies as st

from tests.strategies import (
    NAMESPACES,
    NS_KEYS,
    POD_KEYS,
    PORT_NUMBERS,
    V4_CIDRS,
    V6_CIDRS,
    WORKLOAD_KINDS,
    WORKLOAD_NAMES,
    Draw,
    Obj,
    label_maps,
    selectors,
)

API_VERSION = "reachdiff.io/v1alpha1"


@st.composite
def endpoint_selectors(draw: Draw) -> Obj:
    style = draw(st.sampled_from(("pods", "pods", "pods", "cidr", "any")))
    if style == "any":
        return {}
    if style == "cidr":
        return {"cidr": draw(st.sampled_from(V4_CIDRS + V6_CIDRS))}
    sel: Obj = {}
    if draw(st.integers(0, 2)) == 0:
        names = draw(st.lists(st.sampled_from(NAMESPACES), min_size=1, max_size=2, unique=True))
        sel["namespace"] = names[0] if len(names) == 1 and draw(st.booleans()) else names
    if draw(st.integers(0, 3)) == 0:
        sel["namespaceLabels"] = draw(label_maps(NS_KEYS, min_size=1, max_size=1))
    if draw(st.integers(0, 4)) == 0:
        sel["namespaceSelector"] = draw(selectors(NS_KEYS))
    if draw(st.integers(0, 2)) == 0:
        name = draw(st.sampled_from(WORKLOAD_NAMES))
        if draw(st.booleans()):
            name = f"{draw(st.sampled_from(WORKLOAD_KINDS))}/{name}"
        sel["workload"] = name
    if draw(st.integers(0, 3)) == 0:
        sel["labels"] = draw(label_maps(POD_KEYS, min_size=1, max_size=1))
    if draw(st.integers(0, 4)) == 0:
        sel["podSelector"] = draw(selectors(POD_KEYS))
    return sel


@st.composite
def scope_entries(draw: Draw) -> Obj:
    entry = draw(endpoint_selectors())
    direction = draw(st.sampled_from((None, None, "ingress", "egress")))
    return entry if direction is None else {**entry, "direction": direction}


@st.composite
def port_texts(draw: Draw) -> Any:
    style = draw(st.sampled_from(("none", "one", "range", "two", "number", "all")))
    if style == "none":
        return None
    if style == "all":
        return "all"
    port = draw(st.sampled_from(PORT_NUMBERS))
    if style == "number":
        return port
    if style == "one":
        return f"{draw(st.sampled_from(('TCP', 'UDP', 'SCTP')))} {port}"
    if style == "range":
        return f"TCP {port}-{port + draw(st.integers(0, 500))}"
    other = draw(st.sampled_from(PORT_NUMBERS))
    return f"TCP {min(port, other)},{max(port, other) + 1}; UDP all"


@st.composite
def communications(draw: Draw, allow: bool) -> Obj:
    entry: Obj = {"from": draw(endpoint_selectors()), "to": draw(endpoint_selectors())}
    ports = draw(port_texts())
    if ports is not None:
        entry["ports"] = ports
    if allow and draw(st.integers(0, 2)) == 0:
        entry["required"] = True
    return entry


@st.composite
def intents(draw: Draw, name: str) -> Obj:
    spec: Obj = {}
    scope = draw(st.lists(scope_entries(), max_size=2))
    if scope:
        spec["scope"] = scope
    allow = draw(st.lists(communications(True), max_size=3))
    if allow:
        spec["allow"] = allow
    deny = draw(st.lists(communications(False), max_size=2))
    if deny or not spec:
        spec["deny"] = deny or [draw(communications(False))]
    return {"apiVersion": API_VERSION, "kind": "Intent", "metadata": {"name": name}, "spec": spec}


@st.composite
def connectivity_tests(draw: Draw, name: str) -> Obj:
    cases = []
    for _ in range(draw(st.integers(1, 3))):
        case: Obj = {
            "from": draw(endpoint_selectors()),
            "to": draw(endpoint_selectors()),
            "expect": draw(st.sampled_from(("allowed", "denied"))),
        }
        ports = draw(port_texts())
        if ports is not None:
            case[draw(st.sampled_from(("port", "ports")))] = ports
        cases.append(case)
    return {
        "apiVersion": API_VERSION,
        "kind": "ConnectivityTest",
        "metadata": {"name": name},
        "spec": {"cases": cases},
    }


@st.composite
def declarations(draw: Draw) -> Sequence[Obj]:
    docs = [
        draw(intents(name))
        for name in draw(
            st.lists(
                st.sampled_from(("payments", "shop", "web")), min_size=1, max_size=2, unique=True
            )
        )
    ]
    if draw(st.booleans()):
        docs.append(draw(connectivity_tests("smoke")))
    return docs
