"""``shadowed-rule`` against the brute-force reference (tests/reference.py): a rule is
reported exactly when another rule of its policy and direction admits every peer on every
port it admits, for every pod the policy selects, asked one concrete connection at a time."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from hypothesis import given, note, settings
from hypothesis import strategies as st

from analysis.lint import lint
from analysis.manifests import load_files
from analysis.outside import ClusterScope
from analysis.reachability import compute_map
from tests.reference import (
    PROTOCOLS,
    Cluster,
    Endpoint,
    RefWorkload,
    interesting_ports,
    policy_id,
    policy_types,
)
from tests.strategies import Draw, Obj, clusters, manifest_files
from tests.test_properties import PROFILE, render

_FIELDS = {"Ingress": ("ingress", "from"), "Egress": ("egress", "to")}


@st.composite
def with_alike_rules(draw: Draw) -> tuple[list[Obj], dict[str, str]]:
    """A random cluster, where some policies repeat one of their rules (alike), or repeat
    it narrowed to one port (covered), so that shadowing is common."""
    objects = copy.deepcopy(draw(clusters()))
    for obj in objects:
        if obj.get("kind") != "NetworkPolicy" or not draw(st.booleans()):
            continue
        spec = obj.setdefault("spec", {})
        field = draw(st.sampled_from(("ingress", "egress")))
        rules = spec.get(field) or []
        if not rules:
            continue
        rule = copy.deepcopy(draw(st.sampled_from(rules))) or {}
        if draw(st.booleans()):
            rule["ports"] = [{"port": draw(st.sampled_from((53, 80, 8080)))}]
        spec[field] = [*rules, rule] if draw(st.booleans()) else [rule, *rules]
    files = draw(manifest_files(objects))
    note(render(files))
    return objects, files


def _admits(
    cluster: Cluster,
    policy: Mapping[str, Any],
    rule: Obj,
    direction: str,
    owner: RefWorkload,
    peer: Endpoint,
    protocol: str,
    port: int,
) -> bool:
    _, peer_field = _FIELDS[direction]
    dst = owner if direction == "Ingress" else peer
    return cluster._rule_allows(policy, rule, peer_field, peer, protocol, port, dst)


def expected_shadowed(objects: Sequence[Obj]) -> set[str]:
    cluster = Cluster(objects)
    points = interesting_ports(cluster.port_numbers())
    endpoints = cluster.endpoints()
    out: set[str] = set()
    for policy in cluster.policies:
        spec = policy.get("spec") or {}
        for direction in ("Ingress", "Egress"):
            field, _ = _FIELDS[direction]
            rules = spec.get(field) or []
            if direction not in policy_types(policy) or len(rules) < 2:
                continue
            owners = [w for w in cluster.workloads if policy in cluster._selecting(w, direction)]
            if not owners:
                continue

            def covers(a: int, b: int) -> bool:
                return all(
                    not _admits(cluster, policy, rules[b], direction, o, e, p, x)  # noqa: B023
                    or _admits(cluster, policy, rules[a], direction, o, e, p, x)  # noqa: B023
                    for o in owners  # noqa: B023
                    for e in endpoints
                    for p in PROTOCOLS
                    for x in points
                )

            for b in range(len(rules)):
                if any(
                    a != b and covers(a, b) and not (a > b and covers(b, a))
                    for a in range(len(rules))
                ):
                    out.add(f"{policy_id(policy)} {field}[{b}]")
    return out


@settings(PROFILE, max_examples=min(PROFILE.max_examples, 100))
@given(with_alike_rules())
def test_shadowed_rules_match_the_reference(case: tuple[list[Obj], dict[str, str]]) -> None:
    objects, files = case
    rmap = compute_map(load_files(files), scope=ClusterScope.COMPLETE)
    found = {f.subject for f in lint(rmap) if f.rule == "shadowed-rule"}
    assert found == expected_shadowed(objects)
