"""Flow records (Hubble, Calico, CSV), their summary, and their mapping onto a tree."""

from __future__ import annotations

import contextlib
import gzip
import json
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from analysis.flowmap import map_flows, unmapped_reasons
from analysis.flows import (
    DROPPED,
    FORWARDED,
    BadRecord,
    FlowEnd,
    FlowKey,
    Skip,
    owner_candidates,
    parse_calico,
    parse_hubble,
    parse_time,
    pod_pattern,
)
from analysis.flowsummary import (
    FlowStat,
    FlowSummary,
    Summarizer,
    summary_from_json,
    summary_to_json,
)
from analysis.manifests import load_files
from analysis.outside import outside_world
from analysis.reachability import compute_map
from bot.inputs.flowfiles import read_flows

FIXTURES = Path(__file__).parent / "fixtures" / "flows"

TREE = {
    "apps.yaml": """
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Namespace
metadata: {name: payments}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: checkout, namespace: shop}
spec:
  template:
    metadata: {labels: {app: checkout}}
    spec: {containers: [{name: c, image: x}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: cart, namespace: shop}
spec:
  template:
    metadata: {labels: {app: cart, tier: web}}
    spec: {containers: [{name: c, image: x}]}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: payments-db, namespace: payments}
spec:
  template:
    metadata: {labels: {app: payments-db}}
    spec: {containers: [{name: c, image: x, ports: [{containerPort: 5432, name: pg}]}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: egress, namespace: shop}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress:
  - to: [{ipBlock: {cidr: 93.184.216.0/24}}]
"""
}


def test_pod_names_give_their_owners() -> None:
    assert ("Deployment", "checkout") in owner_candidates("checkout-7d4b9c8f5d-x2x9z")
    assert ("StatefulSet", "payments-db") in owner_candidates("payments-db-12")
    assert ("CronJob", "report") in owner_candidates("report-29123456-qw7p4")
    assert ("Job", "report-29123456") in owner_candidates("report-29123456-qw7p4")
    assert ("DaemonSet", "node-exporter") in owner_candidates("node-exporter-x2x9z")
    assert owner_candidates("solo")[0] == ("Pod", "solo")
    # vowels, 0, 1 and 3 are never in a generated suffix: a name, not an id
    assert ("DaemonSet", "web") not in owner_candidates("web-aeiou")
    assert pod_pattern("checkout-7d4b9c8f5d-x2x9z") == "checkout-7d4b9c8f5d-*"
    assert pod_pattern("payments-db-0") == "payments-db-0"


def test_times() -> None:
    assert parse_time("2026-11-20T10:00:00.123456789Z") == parse_time("2026-11-20T10:00:00Z")
    assert parse_time("2026-11-20T12:00:00+02:00") == parse_time("2026-11-20T10:00:00Z")
    assert parse_time(1795600000) == 1795600000
    with pytest.raises(BadRecord):
        parse_time("yesterday")


def _hubble(**flow: object) -> dict[str, object]:
    base: dict[str, object] = {
        "time": "2026-11-20T10:00:00Z",
        "verdict": "FORWARDED",
        "IP": {"source": "10.0.0.1", "destination": "10.0.0.2"},
        "l4": {"TCP": {"source_port": 40000, "destination_port": 80}},
        "source": {"namespace": "a", "pod_name": "web-0", "labels": ["k8s:app=web"]},
        "destination": {"namespace": "b", "pod_name": "db-0", "labels": ["k8s:app=db"]},
        "event_type": {"type": 4},
        "trace_observation_point": "TO_ENDPOINT",
    }
    base.update(flow)
    return base


def test_hubble_replies_and_trace_points() -> None:
    assert isinstance(parse_hubble(_hubble(is_reply=True)), Skip)
    # deprecated `reply` counts only when `is_reply` is absent
    assert isinstance(parse_hubble(_hubble(reply=True)), Skip)
    assert not isinstance(parse_hubble(_hubble(reply=True, is_reply=False)), Skip)
    for point in ("FROM_ENDPOINT", "TO_OVERLAY", "FROM_OVERLAY", "TO_STACK", "TO_PROXY"):
        assert isinstance(parse_hubble(_hubble(trace_observation_point=point)), Skip), point
    world = {"labels": ["reserved:world"], "identity": 2}
    out = parse_hubble(_hubble(destination=world, trace_observation_point="TO_STACK"))
    assert not isinstance(out, Skip) and out.key.dst == FlowEnd(ip="10.0.0.2")
    egress_verdict = _hubble(event_type={"type": 5}, traffic_direction="EGRESS")
    assert isinstance(parse_hubble(egress_verdict), Skip)  # ingress may still drop it
    ingress_verdict = _hubble(event_type={"type": 5}, traffic_direction="INGRESS")
    assert not isinstance(parse_hubble(ingress_verdict), Skip)


def test_hubble_drops_and_wrapping() -> None:
    drop = parse_hubble({"flow": _hubble(verdict="DROPPED", drop_reason_desc="POLICY_DENIED")})
    assert not isinstance(drop, Skip) and drop.key.verdict == DROPPED
    assert drop.key.dst == FlowEnd("b", pod="db-0", labels=(("app", "db"),))
    noise = parse_hubble(_hubble(verdict="DROPPED", drop_reason_desc="CT_MISSING_TCP_ACK_FLAG"))
    assert isinstance(noise, Skip)
    with pytest.raises(BadRecord):
        parse_hubble({"flow": {"time": "x"}})
    with pytest.raises(BadRecord):
        parse_hubble(_hubble(l4={"TCP": {"destination_port": 70000}}))


def test_calico_sides() -> None:
    rec = {
        "start_time": 100,
        "end_time": 200,
        "action": "allow",
        "proto": "tcp",
        "dest_port": 80,
        "reporter": "src",
        "num_flows": 2,
        "source_type": "wep",
        "source_namespace": "a",
        "source_name_aggr": "web-7d4b9c8f5d-*",
        "dest_type": "wep",
        "dest_namespace": "b",
        "dest_name_aggr": "db-*",
    }
    assert isinstance(parse_calico(rec), Skip)  # the destination's report decides
    denied = parse_calico({**rec, "action": "deny"})
    assert not isinstance(denied, Skip) and denied.key.verdict == DROPPED and denied.count == 2
    to_net = parse_calico({**rec, "dest_type": "net", "dest_namespace": "-", "dest_ip": "1.2.3.4"})
    assert not isinstance(to_net, Skip) and to_net.key.verdict == FORWARDED
    with pytest.raises(BadRecord):
        parse_calico({**rec, "proto": "gre"})


def test_fixtures_summarize_and_round_trip(tmp_path: Path) -> None:
    for name, flows in (("hubble.jsonl", 5), ("calico.jsonl", 5), ("flows.csv", 4)):
        summary = read_flows([str(FIXTURES / name)])
        assert summary.malformed == 0, summary.malformed_examples
        assert len(summary.flows) == flows, name
        doc = summary_to_json(summary)
        back = summary_from_json(json.loads(json.dumps(doc)))
        assert back.flows == summary.flows
        # a summary is read back as an input like any log
        out = tmp_path / f"{name}.summary.json"
        out.write_text(json.dumps(doc))
        assert read_flows([str(out)]).flows == summary.flows


def test_hubble_fixture_counts_one_connection_once() -> None:
    summary = read_flows([str(FIXTURES / "hubble.jsonl")])
    skipped = dict(summary.skipped)
    assert skipped["reply direction"] == 1
    assert skipped["trace-point duplicate (counted where it is delivered)"] == 1
    db = [
        f
        for f in summary.flows
        if f.key.src.workload == "Deployment/checkout" and f.key.port == 5432
    ]
    # seen by a policy verdict and at TO_ENDPOINT: one connection, counted once
    assert [f.count for f in db] == [1]


def test_gzip_and_malformed_lines(tmp_path: Path) -> None:
    raw = (FIXTURES / "hubble.jsonl").read_bytes()
    path = tmp_path / "flows.jsonl.gz"
    path.write_bytes(gzip.compress(raw + b"{not json\n" + b'{"verdict": 7}\n'))
    summary = read_flows([str(path)])
    assert len(summary.flows) == 5
    assert summary.malformed == 2
    assert summary.malformed_examples[0].startswith(f"{path}:13:")


def test_bounded_addresses() -> None:
    s = Summarizer(max_addresses=2)
    base = parse_hubble(
        _hubble(destination={"labels": ["reserved:world"]}, trace_observation_point="TO_STACK")
    )
    assert not isinstance(base, Skip)
    for n in range(5):
        dst = FlowEnd(ip=f"192.0.2.{n}")
        s.observe(replace(base, key=replace(base.key, dst=dst)))
    result = s.result()
    assert result.aggregated_addresses
    assert {f.key.dst.ip for f in result.flows} == {"192.0.2.0", "192.0.2.1", "192.0.2.0/24"}
    assert sum(f.count for f in result.flows) == 5


def test_mapping_onto_the_tree() -> None:
    tree = load_files(TREE)
    rmap = compute_map(tree)
    summary = read_flows([str(FIXTURES / "hubble.jsonl"), str(FIXTURES / "flows.csv")])
    mapping = map_flows(summary, rmap)
    pairs = {(m.src, m.dst, m.stat.key.port) for m in mapping.mapped}
    assert ("shop/Deployment/checkout", "payments/StatefulSet/payments-db", 5432) in pairs
    assert ("shop/Deployment/checkout", "ip:93.184.216.0/24", 443) in pairs
    # the coredns pod and the web namespace are not in this tree: counted, with reasons
    reasons = unmapped_reasons(mapping)
    assert sum(reasons.values()) == mapping.unmapped_count > 0
    assert any("kube-system" in r for r in reasons)
    assert len(mapping.mapped) + len(mapping.unmapped) == len(summary.flows)


def test_labels_place_pods_and_representatives() -> None:
    tree = load_files(TREE)
    world = outside_world(tree, [tree])
    rmap = compute_map(world.tree(tree))

    by_labels = FlowEnd("shop", pod="zzz", labels=(("app", "cart"), ("tier", "web"), ("x", "y")))
    outside = FlowEnd(
        "web",
        workload="Deployment/storefront",
        labels=(("app", "s"),),
        namespace_labels=(("team", "frontend"),),
    )
    unknown_ns = FlowEnd("web", workload="Deployment/storefront", labels=(("app", "s"),))
    db = FlowEnd("payments", workload="StatefulSet/payments-db")
    stats = tuple(
        FlowStat(FlowKey(src, db, "TCP", 5432, FORWARDED), 1, 1, 1)
        for src in (by_labels, outside, unknown_ns)
    )
    mapping = map_flows(FlowSummary(flows=stats), rmap, world)
    assert [m.src for m in mapping.mapped] == ["shop/Deployment/cart", "~ns[*]/*"]
    assert len(mapping.unmapped) == 1 and "labels unknown" in mapping.unmapped[0].reason


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-*", max_size=30))
def test_owner_candidates_never_crash(name: str) -> None:
    for kind, base in owner_candidates(name):
        # an owner's pods are named after it: its name, then a generated part
        assert base and kind and name.startswith(base)
        assert kind == "Pod" or name[len(base)] == "-"


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=5),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
        ),
        max_leaves=12,
    )
)
def test_hostile_summaries_are_refused_with_value_error(junk: object) -> None:
    for doc in (
        junk,
        {"reachdiff_flows": 1, "flows": [], "inputs": junk},
        {"reachdiff_flows": 1, "flows": [], "malformed": {"examples": junk, "count": junk}},
        {"reachdiff_flows": 1, "flows": [junk]},
    ):
        with contextlib.suppress(ValueError):
            summary_from_json(doc)


ACCOUNT_POLICIES = {
    **TREE,
    "db-clients.yaml": """
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: db-clients, namespace: payments}
spec:
  endpointSelector: {matchLabels: {app: payments-db}}
  ingress:
  - fromEndpoints:
    - matchLabels: {io.cilium.k8s.policy.serviceaccount: billing}
""",
}


def test_a_service_account_the_record_gives_places_pods_selectors_split_by_it() -> None:
    # Hubble's endpoint labels carry the pod's service account (a fact of Cilium's, not a
    # pod label): a pod the tree does not define is placed by it where selectors split by
    # it, and left unmapped, saying why, when the record does not say.
    labels = ["k8s:app=batch", "k8s:io.cilium.k8s.policy.serviceaccount=billing"]
    source = {"namespace": "payments", "pod_name": "batch-7d9f-x", "labels": labels}
    parsed = parse_hubble(_hubble(source=source))
    assert not isinstance(parsed, Skip)
    end = parsed.key.src
    assert (end.labels, end.service_account) == ((("app", "batch"),), "billing")
    assert FlowEnd.from_json(end.to_json()) == end
    tree = load_files(ACCOUNT_POLICIES)
    world = outside_world(tree, [tree])
    rmap = compute_map(world.tree(tree))
    db = FlowEnd("payments", workload="StatefulSet/payments-db")
    silent = FlowEnd("payments", pod="batch-*", labels=(("app", "batch"),))
    other = FlowEnd("payments", pod="batch-*", labels=(("app", "batch"),), service_account="etl")
    stats = tuple(
        FlowStat(FlowKey(src, db, "TCP", 5432, FORWARDED), 1, 1, 1) for src in (end, silent, other)
    )
    mapping = map_flows(FlowSummary(flows=stats), rmap, world)
    assert sorted(m.src for m in mapping.mapped) == [
        "~payments/*",
        "~payments/pod[serviceaccount=billing]",
    ]
    [unmapped] = mapping.unmapped
    assert "service account is unknown" in unmapped.reason
    assert rmap.allowed("~payments/pod[serviceaccount=billing]", "payments/StatefulSet/payments-db")
    assert not rmap.allowed("~payments/*", "payments/StatefulSet/payments-db")
