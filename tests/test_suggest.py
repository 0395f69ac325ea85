"""`reachdiff suggest`: least-privilege policies from observed flows, checked against the
brute-force reference (tests/reference.py) over random clusters and random flows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis.flowmap import map_flows
from analysis.flows import FORWARDED, FlowEnd, FlowKey
from analysis.flowsummary import FlowStat, FlowSummary
from analysis.manifests import load_files
from analysis.ports import ConnectionSet, PortSet
from analysis.reachability import compute_map
from analysis.suggest import covered_namespaces, suggest, verify
from bot.cli import main
from tests import reference, strategies

SHOP = Path(__file__).parent.parent / "examples" / "shop"


def _without_policies(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in objects if o.get("kind") != "NetworkPolicy"]


@st.composite
def clusters_and_flows(draw: Any) -> tuple[list[dict[str, Any]], list[tuple[int, int, str, int]]]:
    objects = _without_policies(draw(strategies.clusters()))
    flows = draw(
        st.lists(
            st.tuples(
                st.integers(0, 7),
                st.integers(0, 7),
                st.sampled_from(strategies.PROTOCOLS),
                st.sampled_from(strategies.PORT_NUMBERS),
            ),
            max_size=8,
        )
    )
    return objects, flows


@given(clusters_and_flows())
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_suggestion_allows_exactly_the_observed_flows(
    case: tuple[list[dict[str, Any]], list[tuple[int, int, str, int]]],
) -> None:
    objects, drawn = case
    text = yaml.safe_dump_all(objects)
    tree = load_files({"tree.yaml": text})
    workloads = [w for w in tree.workloads if w.kind != "Outside"]
    if not workloads:
        return
    stats = []
    observed: dict[tuple[str, str], ConnectionSet] = {}
    for s, d, protocol, port in drawn:
        src, dst = workloads[s % len(workloads)], workloads[d % len(workloads)]
        key = FlowKey(
            FlowEnd(src.namespace, workload=f"{src.kind}/{src.name}"),
            FlowEnd(dst.namespace, workload=f"{dst.kind}/{dst.name}"),
            protocol,
            port,
            FORWARDED,
        )
        stats.append(FlowStat(key, 1, 1, 1))
        one = ConnectionSet.of({protocol: PortSet.single(port)})
        observed[(src.id, dst.id)] = observed.get((src.id, dst.id), ConnectionSet()) | one
    summary = FlowSummary(flows=tuple(sorted(set(stats), key=lambda f: f.key)))
    mapping = map_flows(summary, compute_map(tree))
    result = suggest(tree, mapping)
    suggested = list(yaml.safe_load_all(result.yaml()))
    # The independent reference evaluates the tree plus the suggestion.
    ref = reference.reference_map([*objects, *suggested])
    allowed = {(c["src"], c["dst"]): ConnectionSet.parse(c["allowed"]) for c in ref["connections"]}
    covered = set(covered_namespaces(tree, ()))
    subjects = [w for w in workloads if w.namespace in covered and w.labels and not w.host_network]
    label_sets = [(w.namespace, w.labels) for w in subjects]
    distinct = len(set(label_sets)) == len(label_sets) and all(
        w.labels and not w.host_network for w in workloads
    )
    exact_by_reference = all(
        allowed.get((s.id, d.id), ConnectionSet()) == observed.get((s.id, d.id), ConnectionSet())
        for s in subjects
        for d in subjects
    ) and all(
        allowed.get(pair, ConnectionSet()).allows(p, n)
        for pair, conn in observed.items()
        for p, ports in conn.by_protocol
        for n, _ in ports.intervals
    )
    added = load_files({"s.yaml": result.yaml()})
    check = verify(tree, added, mapping, result.namespaces, lambda m: map_flows(summary, m))
    assert check.exact == exact_by_reference, (check, result.yaml())
    if distinct:
        # every workload can be told apart by its labels: the suggestion must be exact
        assert check.exact, (check, result.yaml())


def test_suggest_on_the_shop(capsys: pytest.CaptureFixture[str]) -> None:
    flows = SHOP / "flows" / "hubble.jsonl"
    code = main(["suggest", str(SHOP / "base"), "--flows", str(flows), "--namespace", "payments"])
    out, _ = capsys.readouterr()
    assert code == 0
    assert "# Verified:" in out
    docs = [d for d in yaml.safe_load_all(out) if d]
    by_name = {d["metadata"]["name"]: d for d in docs}
    assert set(by_name) == {"default-deny", "allow-dns", "payments-api", "payments-db"}
    db = by_name["payments-db"]["spec"]
    # a label selector a person would write, and the pod's own port name
    assert db["podSelector"] == {"matchLabels": {"app": "payments-db"}}
    assert db["ingress"] == [
        {
            "from": [{"podSelector": {"matchLabels": {"app": "payments-api"}}}],
            "ports": [{"protocol": "TCP", "port": "postgres"}],
        }
    ]
    api = by_name["payments-api"]["spec"]
    assert {"ipBlock": {"cidr": "203.0.113.10/32"}} in api["egress"][0]["to"]


@given(st.tuples(strategies.clusters(), clusters_and_flows()))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_traffic_denied_observed_agrees_with_the_reference(case: Any) -> None:
    """`reachdiff traffic`: an observed forwarded flow is denied exactly when the
    independent reference evaluator denies it."""
    from analysis.traffic import traffic_report

    objects, (_, drawn) = case
    tree = load_files({"tree.yaml": yaml.safe_dump_all(objects)})
    workloads = [w for w in tree.workloads if w.kind != "Outside"]
    if not workloads:
        return
    stats = set()
    for s, d, protocol, port in drawn:
        src, dst = workloads[s % len(workloads)], workloads[d % len(workloads)]
        key = FlowKey(
            FlowEnd(src.namespace, workload=f"{src.kind}/{src.name}"),
            FlowEnd(dst.namespace, workload=f"{dst.kind}/{dst.name}"),
            protocol,
            port,
            FORWARDED,
        )
        stats.add(FlowStat(key, 1, 1, 1))
    summary = FlowSummary(flows=tuple(sorted(stats, key=lambda f: f.key)))
    rmap = compute_map(tree)
    report = traffic_report(rmap, summary, map_flows(summary, rmap))
    ref = reference.reference_map(objects)
    allowed = {(c["src"], c["dst"]): ConnectionSet.parse(c["allowed"]) for c in ref["connections"]}
    expected = {
        (
            f"{k.src.namespace}/{k.src.workload}",
            f"{k.dst.namespace}/{k.dst.workload}",
            k.protocol,
            k.port,
        )
        for k in (s.key for s in summary.flows)
        if not allowed.get(
            (f"{k.src.namespace}/{k.src.workload}", f"{k.dst.namespace}/{k.dst.workload}"),
            ConnectionSet(),
        ).allows(k.protocol, k.port)
    }
    assert {(p.src, p.dst, p.protocol, p.port) for p in report.denied_observed} == expected
