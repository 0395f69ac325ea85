"""Property tests of Calico's policies: random clusters mixing Kubernetes NetworkPolicies,
admin policies (AdminNetworkPolicy, BaselineAdminNetworkPolicy, ClusterNetworkPolicy) and
Calico NetworkPolicies, GlobalNetworkPolicies, Tiers and network sets, the engine against
the brute-force reference of ``tests/reference_calico.py``."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.diff import diff_trees
from analysis.manifests import load_files
from analysis.reachability import compute_map
from analysis.report import diff_to_json, map_to_json
from tests.calico_strategies import calico_objects
from tests.reference import cluster_map, flatten, ip_block_networks, partition
from tests.reference_admin import ADMIN_KINDS, admin_networks
from tests.reference_calico import CalicoCluster, calico_networks, is_calico
from tests.strategies import (
    Draw,
    Obj,
    clusters,
    connections_by_pair,
    defined_port_names,
    examples,
    files_apart,
    tree_pairs,
)
from tests.strategies_cilium import with_service_accounts
from tests.test_properties_admin import admin_tiers

PROFILE = settings(max_examples=examples(150))  # the profile of tests/conftest.py


@st.composite
def mixed_clusters(draw: Draw) -> list[Obj]:
    objects: list[Obj] = draw(with_service_accounts(draw(clusters())))
    names = tuple(sorted(defined_port_names(objects)))
    if draw(st.integers(0, 2)) == 0:
        objects += draw(admin_tiers(names))
    calico: list[Obj] = draw(calico_objects(names))
    return objects + calico


def _files(draw: Draw, objects: list[Obj]) -> dict[str, str]:
    special = [("calico.yaml", lambda o: o["kind"] in ADMIN_KINDS or is_calico(o))]
    return files_apart(draw, objects, special)


_by_pair = connections_by_pair


@st.composite
def cases(draw: Draw) -> tuple[list[Obj], dict[str, str]]:
    objects = draw(mixed_clusters())
    return objects, _files(draw, objects)


@PROFILE
@given(cases())
def test_calico_map_matches_reference(case: tuple[list[Obj], dict[str, str]]) -> None:
    objects, files = case
    engine = map_to_json(compute_map(load_files(files)))
    expected = cluster_map(CalicoCluster(objects))
    assert engine["endpoints"] == expected["endpoints"]
    assert _by_pair(engine["connections"]) == _by_pair(expected["connections"])


@st.composite
def diff_cases(draw: Draw) -> tuple[list[Obj], list[Obj], dict[str, str], dict[str, str]]:
    base = draw(mixed_clusters())
    plain = [o for o in base if not is_calico(o) and o["kind"] not in ("ServiceAccount", "Service")]
    names = tuple(sorted(defined_port_names(plain)))
    head = plain + draw(calico_objects(names))
    return base, head, _files(draw, base), _files(draw, head)


@PROFILE
@given(diff_cases())
def test_calico_diff_matches_reference(
    case: tuple[list[Obj], list[Obj], dict[str, str], dict[str, str]],
) -> None:
    base, head, base_files, head_files = case
    engine = diff_to_json(diff_trees(load_files(base_files), load_files(head_files)))
    b, h = flatten(base), flatten(head)
    ranges = partition(
        [
            *(n for objs in (b, h) for n in ip_block_networks(objs)),
            *(n for objs in (b, h) for n in admin_networks(objs)),
            *(n for objs in (b, h) for n in calico_networks(objs)),
        ]
    )
    before = _by_pair(cluster_map(CalicoCluster(b, ranges))["connections"])
    after = _by_pair(cluster_map(CalicoCluster(h, ranges))["connections"])
    opened = {(r["src"], r["dst"]) for r in engine["opened"]}
    closed = {(r["src"], r["dst"]) for r in engine["closed"]}
    for pair in before.keys() | after.keys():
        if before.get(pair) == after.get(pair):
            assert pair not in opened and pair not in closed
    for row in engine["opened"] + engine["closed"]:
        pair = (row["src"], row["dst"])
        assert row["base"] == before.get(pair, {}) and row["head"] == after.get(pair, {})
        settled = not any(row[k] for k in ("src_new", "dst_new", "src_removed", "dst_removed"))
        if settled:  # a path of endpoints on both sides names its causes
            assert row["because"], row


@st.composite
def same_calico_cases(
    draw: Draw,
) -> tuple[list[Obj], list[Obj], dict[str, str], dict[str, str]]:
    """A Kubernetes change under unchanged Calico objects (the engine derives the head's
    matcher from the base's there, Calico's tiers included)."""
    base, head = draw(tree_pairs())
    calico = draw(calico_objects(tuple(sorted(defined_port_names(base)))))
    base, head = base + calico, head + calico
    return base, head, _files(draw, base), _files(draw, head)


@PROFILE
@given(same_calico_cases())
def test_calico_unchanged_diff_matches_reference(
    case: tuple[list[Obj], list[Obj], dict[str, str], dict[str, str]],
) -> None:
    test_calico_diff_matches_reference.hypothesis.inner_test(case)  # type: ignore[attr-defined]
