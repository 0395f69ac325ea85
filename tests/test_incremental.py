"""The incremental diff (head matcher and map derived from the base's, comparing only what
a change can touch) equals the diff of two fully computed maps, on random tree pairs."""

from __future__ import annotations

import yaml
from hypothesis import given, note, settings
from hypothesis import strategies as st

from analysis import incremental
from analysis.compiler import compile_full, tree_networks
from analysis.diff import diff_maps, diff_trees
from analysis.manifests import load_files
from analysis.reachability import compute_map, map_of
from analysis.report import diff_to_json, map_to_json
from tests.strategies import Draw, defined_port_names, examples, manifest_files, tree_pairs
from tests.test_properties_admin import admin_policy, admin_tiers

PROFILE = settings(max_examples=examples(200))  # the profile of tests/conftest.py


@st.composite
def tree_file_pairs(draw: Draw) -> tuple[dict[str, str], dict[str, str]]:
    base, head = draw(tree_pairs())
    return draw(manifest_files(base)), draw(manifest_files(head))


@PROFILE
@given(tree_file_pairs())
def test_incremental_diff_equals_the_full_diff(
    files: tuple[dict[str, str], dict[str, str]],
) -> None:
    _assert_derived_diff_is_the_full_diff(files)


def _assert_derived_diff_is_the_full_diff(files: tuple[dict[str, str], dict[str, str]]) -> None:
    base, head = load_files(files[0]), load_files(files[1])
    full = diff_maps(compute_map(base, tree_networks(head)), compute_map(head, tree_networks(base)))
    assert diff_to_json(diff_trees(base, head)) == diff_to_json(full)


@st.composite
def tiered_tree_file_pairs(draw: Draw) -> tuple[dict[str, str], dict[str, str]]:
    """Tree pairs under the same admin policies (v1alpha1, ClusterNetworkPolicies, or
    both): the head is derived (unless namespace labels change), and verdicts pass
    through the admin tiers."""
    base, head = draw(tree_pairs())
    names = tuple(sorted(defined_port_names(base)))
    admin = draw(admin_tiers(names))
    if not admin:
        admin.append(draw(admin_policy("anp", False, names)))
    admin_text = yaml.safe_dump_all(admin, sort_keys=False)
    note(admin_text)
    pair = draw(manifest_files(base)), draw(manifest_files(head))
    for files in pair:
        files["admin.yaml"] = admin_text
    return pair


@PROFILE
@given(tiered_tree_file_pairs())
def test_incremental_diff_equals_the_full_diff_under_admin_policies(
    files: tuple[dict[str, str], dict[str, str]],
) -> None:
    _assert_derived_diff_is_the_full_diff(files)


@PROFILE
@given(tree_file_pairs())
def test_incremental_head_map_equals_the_full_head_map(
    files: tuple[dict[str, str], dict[str, str]],
) -> None:
    base, head = load_files(files[0]), load_files(files[1])
    compilation = compile_full(base, tree_networks(head))
    change = incremental.TreeChange.between(base, head)
    if not incremental.same_context(compilation, head):
        return  # not derived: admin policies or namespace labels differ
    derived, affected = incremental.derive(
        compilation, map_of(base, compilation.matcher), head, change
    )
    full = compute_map(head, tree_networks(base))
    assert map_to_json(derived) == map_to_json(full)
    # Rows and columns outside ``affected`` are the base's.
    base_map = map_of(base, compilation.matcher)
    size = compilation.matcher.size
    for (s, d), conn in derived.class_connections.items():
        untouched = s not in affected.sources and d not in affected.destinations
        if s < size and d < size and untouched:
            assert base_map.class_connections.get((s, d)) == conn


def test_prepared_base_reviews_changes_and_new_cidrs() -> None:
    from analysis.prepared import prepare, review

    pod = (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: %s, labels: {app: %s}}\n"
        "spec: {containers: []}\n"
    )
    deny = (
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: egress}\n"
        "spec:\n  podSelector: {}\n  egress:\n  - to: [{ipBlock: {cidr: %s}}]\n"
    )
    base_files = {
        "a.yaml": pod % ("a", "a"),
        "b.yaml": pod % ("b", "b"),
        "np.yaml": deny % "10.0.0.0/8",
    }
    base = prepare(base_files)
    # The head names a CIDR the prepared base map was not cut by.
    np, c = deny % "10.1.0.0/16", pod % ("c", "c")
    changed = {"np.yaml": np, "b.yaml": None, "c.yaml": c}
    head_files = {"a.yaml": base_files["a.yaml"], "np.yaml": np, "c.yaml": c}
    expected = diff_trees(load_files(base_files), load_files(head_files))
    assert diff_to_json(review(base, changed)) == diff_to_json(expected)
    assert {c.dst.id for c in expected.closed} >= {"ip:10.0.0.0/16"}


def test_a_new_app_in_a_new_namespace_is_derived_and_equals_the_full_diff() -> None:
    pod = (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: %s, namespace: %s, labels: {app: %s}}\n"
        "spec: {containers: [{name: c, image: i, ports: [{name: http, containerPort: 80}]}]}\n"
    )
    ingress = (
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
        "metadata: {name: from-anywhere, namespace: shop}\n"
        "spec:\n  podSelector: {matchLabels: {app: db}}\n"
        "  ingress:\n  - from: [{namespaceSelector: {}, podSelector: {matchLabels: {app: api}}}]\n"
    )
    base_files = {"db.yaml": pod % ("db", "shop", "db"), "np.yaml": ingress}
    head_files = {**base_files, "api.yaml": pod % ("api", "payments", "api")}
    base, head = load_files(base_files), load_files(head_files)
    compilation = compile_full(base, tree_networks(head))
    assert incremental.same_context(compilation, head)  # a new namespace: still derived
    full = diff_maps(compute_map(base, tree_networks(head)), compute_map(head, tree_networks(base)))
    derived = diff_trees(base, head)
    assert diff_to_json(derived) == diff_to_json(full)
    assert ("payments/Pod/api", "shop/Pod/db") in {(c.src.id, c.dst.id) for c in derived.opened}
