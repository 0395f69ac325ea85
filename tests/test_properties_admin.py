"""Property tests of the admin tiers: random clusters with NetworkPolicies plus random
AdminNetworkPolicies, a BaselineAdminNetworkPolicy and ClusterNetworkPolicies of both
tiers (alone or mixed with the v1alpha1 kinds), the engine against the tiered brute-force
reference (``tests/reference_admin.py``)."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.diff import diff_trees
from analysis.manifests import load_files
from analysis.reachability import compute_map
from analysis.report import diff_to_json, map_to_json
from analysis.unknowns import unknown_matches
from tests.reference import cluster_map, flatten, ip_block_networks, partition
from tests.reference_admin import (
    ADMIN_KINDS,
    TieredCluster,
    admin_networks,
    tiered_reference_map,
)
from tests.strategies import (
    NAMESPACES,
    NS_KEYS,
    POD_KEYS,
    PORT_NUMBERS,
    PROTOCOLS,
    Draw,
    Obj,
    clusters,
    connections_by_pair,
    defined_port_names,
    examples,
    files_apart,
    selectors,
)

NS_NAME = {"kubernetes.io/metadata.name": NAMESPACES}
PROFILE = settings(max_examples=examples(150))  # the profile of tests/conftest.py
ADMIN_CIDRS = ("10.0.0.0/8", "10.1.0.0/16", "0.0.0.0/0", "2001:db8::/32")


@st.composite
def admin_ports(draw: Draw, names: tuple[str, ...]) -> list[Obj] | None:
    if draw(st.booleans()):
        return None
    out: list[Obj] = []
    for _ in range(draw(st.integers(1, 2))):
        style = draw(
            st.sampled_from(("number", "range", "named") if names else ("number", "range"))
        )
        protocol = draw(st.sampled_from(PROTOCOLS))
        if style == "number":
            out.append(
                {"portNumber": {"protocol": protocol, "port": draw(st.sampled_from(PORT_NUMBERS))}}
            )
        elif style == "range":
            start = draw(st.sampled_from(PORT_NUMBERS))
            out.append(
                {
                    "portRange": {
                        "protocol": protocol,
                        "start": start,
                        "end": start + draw(st.integers(1, 600)),
                    }
                }
            )
        else:
            out.append({"namedPort": draw(st.sampled_from(names))})
    return out


@st.composite
def admin_peer(draw: Draw, egress: bool) -> Obj:
    kinds = ("namespaces", "pods", "networks", "nodes") if egress else ("namespaces", "pods")
    kind = draw(st.sampled_from(kinds))
    if kind == "namespaces":
        return {"namespaces": draw(selectors(NS_KEYS, NS_NAME))}
    if kind == "pods":
        return {
            "pods": {
                "namespaceSelector": draw(selectors(NS_KEYS, NS_NAME)),
                "podSelector": draw(selectors(POD_KEYS)),
            }
        }
    if kind == "networks":
        return {
            "networks": draw(
                st.lists(st.sampled_from(ADMIN_CIDRS), min_size=1, max_size=2, unique=True)
            )
        }
    return {"nodes": {"matchLabels": {"node-role": "worker"}}}


@st.composite
def admin_policy(draw: Draw, name: str, baseline: bool, names: tuple[str, ...]) -> Obj:
    actions = ("Allow", "Deny") if baseline else ("Allow", "Deny", "Pass")
    spec: Obj = {}
    if not baseline:
        spec["priority"] = draw(st.integers(0, 3))
    if draw(st.booleans()):
        spec["subject"] = {"namespaces": draw(selectors(NS_KEYS, NS_NAME))}
    else:
        spec["subject"] = {
            "pods": {
                "namespaceSelector": draw(selectors(NS_KEYS, NS_NAME)),
                "podSelector": draw(selectors(POD_KEYS)),
            }
        }
    for field, peers in (("ingress", "from"), ("egress", "to")):
        rules = []
        for _ in range(draw(st.integers(0, 2))):
            rule: Obj = {
                "action": draw(st.sampled_from(actions)),
                peers: draw(st.lists(admin_peer(field == "egress"), min_size=1, max_size=2)),
            }
            ports = draw(admin_ports(names))
            if ports is not None:
                rule["ports"] = ports
            rules.append(rule)
        if rules:
            spec[field] = rules
    kind = "BaselineAdminNetworkPolicy" if baseline else "AdminNetworkPolicy"
    return {
        "apiVersion": "policy.networking.k8s.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": "default" if baseline else name},
        "spec": spec,
    }


@st.composite
def cnp_protocols(draw: Draw, names: tuple[str, ...]) -> list[Obj] | None:
    """A v1alpha2 `protocols` list (None: every port); names only where a pod may have them."""
    if draw(st.booleans()):
        return None
    out: list[Obj] = []
    for _ in range(draw(st.integers(1, 2))):
        style = draw(
            st.sampled_from(("number", "range", "named") if names else ("number", "range"))
        )
        if style == "named":
            out.append({"destinationNamedPort": draw(st.sampled_from(names))})
            continue
        start = draw(st.sampled_from(PORT_NUMBERS))
        port: Obj = (
            {"number": start}
            if style == "number"
            else {"range": {"start": start, "end": start + draw(st.integers(1, 600))}}
        )
        out.append({draw(st.sampled_from(("tcp", "udp", "sctp"))): {"destinationPort": port}})
    return out


@st.composite
def cnp_peer(draw: Draw, egress: bool) -> Obj:
    kinds: tuple[str, ...] = ("namespaces", "pods")
    if egress:
        kinds += ("networks", "nodes", "domainNames")
    kind = draw(st.sampled_from(kinds))
    if kind == "namespaces":
        return {"namespaces": draw(selectors(NS_KEYS, NS_NAME))}
    if kind == "pods":
        pods: Obj = {"podSelector": draw(selectors(POD_KEYS))}
        if draw(st.booleans()):  # optional in v1alpha2: every namespace
            pods["namespaceSelector"] = draw(selectors(NS_KEYS, NS_NAME))
        return {"pods": pods}
    if kind == "networks":
        return {
            "networks": draw(
                st.lists(st.sampled_from(ADMIN_CIDRS), min_size=1, max_size=2, unique=True)
            )
        }
    if kind == "nodes":
        return {"nodes": {"matchLabels": {"node-role": "worker"}}}
    return {"domainNames": ["*.example.com"]}


@st.composite
def cluster_network_policy(draw: Draw, name: str, names: tuple[str, ...]) -> Obj:
    spec: Obj = {
        "tier": draw(st.sampled_from(("Admin", "Baseline"))),
        "priority": draw(st.integers(0, 3)),
    }
    if draw(st.booleans()):
        spec["subject"] = {"namespaces": draw(selectors(NS_KEYS, NS_NAME))}
    else:
        pods: Obj = {"podSelector": draw(selectors(POD_KEYS))}
        if draw(st.booleans()):
            pods["namespaceSelector"] = draw(selectors(NS_KEYS, NS_NAME))
        spec["subject"] = {"pods": pods}
    for field, peers in (("ingress", "from"), ("egress", "to")):
        rules: list[Obj] = []
        for _ in range(draw(st.integers(0, 2))):
            to = draw(st.lists(cnp_peer(field == "egress"), min_size=1, max_size=2))
            rule: Obj = {"action": draw(st.sampled_from(("Accept", "Deny", "Pass"))), peers: to}
            if draw(st.booleans()):
                rule["name"] = f"{field}-{len(rules)}"
            # Named ports are refused next to nodes/domainNames peers (the CRD's CEL rule).
            unnamed = any("nodes" in p or "domainNames" in p for p in to)
            protocols = draw(cnp_protocols(() if unnamed else names))
            if protocols is not None:
                rule["protocols"] = protocols
            rules.append(rule)
        if rules:
            spec[field] = rules
    return {
        "apiVersion": "policy.networking.k8s.io/v1alpha2",
        "kind": "ClusterNetworkPolicy",
        "metadata": {"name": name},
        "spec": spec,
    }


@st.composite
def admin_tiers(draw: Draw, names: tuple[str, ...]) -> list[Obj]:
    """v1alpha1 policies, ClusterNetworkPolicies, or both."""
    flavour = draw(st.sampled_from(("v1alpha1", "v1alpha2", "both")))
    out: list[Obj] = []
    if flavour != "v1alpha2":
        for i in range(draw(st.integers(0, 2))):
            out.append(draw(admin_policy(f"anp{i}", False, names)))
        if draw(st.booleans()):
            out.append(draw(admin_policy("default", True, names)))
    if flavour != "v1alpha1":
        for i in range(draw(st.integers(0, 3))):
            out.append(draw(cluster_network_policy(f"cnp{i}", names)))
    return out


@st.composite
def tiered_clusters(draw: Draw) -> list[Obj]:
    objects: list[Obj] = draw(clusters())
    names = tuple(sorted(defined_port_names(objects)))
    tiers: list[Obj] = draw(admin_tiers(names))
    return objects + tiers


def _files(draw: Draw, objects: list[Obj]) -> dict[str, str]:
    return files_apart(draw, objects, [("admin.yaml", lambda o: o["kind"] in ADMIN_KINDS)])


@st.composite
def cases(draw: Draw) -> tuple[list[Obj], dict[str, str]]:
    objects = draw(tiered_clusters())
    return objects, _files(draw, objects)


_by_pair = connections_by_pair


@PROFILE
@given(cases())
def test_tiered_map_matches_reference(case: tuple[list[Obj], dict[str, str]]) -> None:
    objects, files = case
    engine = map_to_json(compute_map(load_files(files)))
    expected = tiered_reference_map(objects)
    assert engine["endpoints"] == expected["endpoints"]
    assert _by_pair(engine["connections"]) == _by_pair(expected["connections"])


@st.composite
def diff_cases(draw: Draw) -> tuple[list[Obj], list[Obj], dict[str, str], dict[str, str]]:
    base = draw(tiered_clusters())
    head = [o for o in base if o["kind"] not in ADMIN_KINDS]
    names = tuple(sorted(defined_port_names(head)))
    head += draw(admin_tiers(names))
    return base, head, _files(draw, base), _files(draw, head)


@PROFILE
@given(diff_cases())
def test_tiered_diff_matches_reference(
    case: tuple[list[Obj], list[Obj], dict[str, str], dict[str, str]],
) -> None:
    base, head, base_files, head_files = case
    engine = diff_to_json(diff_trees(load_files(base_files), load_files(head_files)))
    b_objs, h_objs = flatten(base), flatten(head)
    ranges = partition(
        [
            *ip_block_networks(b_objs),
            *admin_networks(b_objs),
            *ip_block_networks(h_objs),
            *admin_networks(h_objs),
        ]
    )
    before = _by_pair(cluster_map(TieredCluster(b_objs, ranges))["connections"])
    after = _by_pair(cluster_map(TieredCluster(h_objs, ranges))["connections"])
    for row in engine["opened"] + engine["closed"]:
        pair = (row["src"], row["dst"])
        assert row["base"] == before.get(pair, {}), pair
        assert row["head"] == after.get(pair, {}), pair
    changed = {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}
    reported = {(r["src"], r["dst"]) for r in engine["opened"] + engine["closed"]}
    assert reported == changed
    # Every change between endpoints both sides have cites a rule or policy of some tier.
    for row in engine["opened"] + engine["closed"]:
        if not any(row[k] for k in ("src_new", "dst_new", "src_removed", "dst_removed")):
            assert row["because"], row


@PROFILE
@given(cases())
def test_rows_hold_what_columns_hold(case: tuple[list[Obj], dict[str, str]]) -> None:
    """A row is read by the source's egress blocks, a column by the destination's ingress
    blocks; the two readings of one map must agree pair for pair."""
    _, files = case
    rmap = compute_map(load_files(files))
    by_source: dict[int, dict[int, object]] = {}
    for (src, dst), conn in rmap.class_connections.items():
        by_source.setdefault(src, {})[dst] = conn
    for endpoint in range(rmap.matcher.size):
        assert rmap.row(endpoint) == by_source.get(endpoint, {}), endpoint


@PROFILE
@given(cases())
def test_unsettled_networks_rules_match_reference(case: tuple[list[Obj], dict[str, str]]) -> None:
    """The rules reported as not analysed (narrower `networks` reached by workload
    traffic) are exactly those the reference finds reached, undecided, by some pair."""
    objects, files = case
    reported = unknown_matches(compute_map(load_files(files)))
    rules = {re.match(r"^\S+:\d+: (\S+ \S+?)(?: \"|:)", r).group(1) for r in reported}  # type: ignore[union-attr]
    assert rules == TieredCluster(objects).unknown_rules()
