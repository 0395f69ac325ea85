"""A change to NetworkPolicies or workloads of a tree whose Calico or Cilium policies (and
admin policies) stay the same: the head compiled under the base's numbers and compared where
the change reaches (``analysis.rederive``) gives the diff of two maps computed in full,
causes included; and those diffs agree with the brute-force references
(``tests/test_properties_calico.py``, ``tests/test_properties_cilium.py``)."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import given, note
from hypothesis import strategies as st

from analysis import incremental, rederive
from analysis.ciliumpeers import with_pseudo
from analysis.compiler import compile_full, tree_networks
from analysis.diff import diff_maps, diff_trees
from analysis.errors import ManifestError
from analysis.manifests import load_files
from analysis.model import Tree
from analysis.outside import ClusterScope, with_outside
from analysis.reachability import compute_map
from analysis.report import diff_to_json
from tests.calico_strategies import calico_objects
from tests.reference_admin import ADMIN_KINDS
from tests.reference_cilium import CILIUM_KINDS
from tests.strategies import NAMESPACES, Draw, Obj, defined_port_names, manifest_files, tree_pairs
from tests.strategies_cilium import cilium_policies
from tests.test_properties_admin import admin_tiers
from tests.test_properties_calico import PROFILE

TIER_KINDS = (*ADMIN_KINDS, *CILIUM_KINDS)


@st.composite
def same_tier_pairs(draw: Draw) -> tuple[dict[str, str], dict[str, str]]:
    """A Kubernetes change (policies, workloads, namespaces) under the same Calico or
    Cilium policies on both sides, and sometimes the same admin tiers."""
    base, head = draw(tree_pairs())
    names = tuple(sorted(defined_port_names(base)))
    tiers: list[Obj] = draw(admin_tiers(names)) if draw(st.booleans()) else []
    if draw(st.booleans()):
        tiers += draw(calico_objects(names))
    else:
        tiers += draw(cilium_policies(names, NAMESPACES))
    text = yaml.safe_dump_all(tiers, sort_keys=False)
    pair = draw(manifest_files(base)), draw(manifest_files(head))
    for files in pair:
        files["tiers.yaml"] = text
    note(text)
    return pair


def _full(base: Tree, head: Tree) -> dict[str, object]:
    base, head = with_pseudo(base, (base, head)), with_pseudo(head, (base, head))
    return diff_to_json(
        diff_maps(compute_map(base, tree_networks(head)), compute_map(head, tree_networks(base)))
    )


def check_diff_is_the_full_diff(
    files: tuple[dict[str, str], dict[str, str]], scope: ClusterScope
) -> None:
    """The diff of two trees (``diff_trees``) is the diff of their maps computed in full;
    under a partial scope both maps get the representatives of both trees' selectors."""
    base, head = load_files(files[0]), load_files(files[1])
    if scope is ClusterScope.PARTIAL:
        try:
            expected = _full(with_outside(base, (base, head)), with_outside(head, (base, head)))
        except ManifestError as too_many:
            # The bound on representatives, reached: both ways refuse alike, naming the
            # setting (many random account and label conditions can multiply past it).
            assert "cluster_scope: partial" in str(too_many)
            with pytest.raises(ManifestError) as refused:
                diff_trees(base, head, scope)
            assert str(refused.value) == str(too_many)
            return
    else:
        expected = _full(base, head)
    assert diff_to_json(diff_trees(base, head, scope)) == expected


@pytest.mark.parametrize("scope", list(ClusterScope), ids=lambda scope: scope.value)
@PROFILE
@given(same_tier_pairs())
def test_rederived_diff_equals_the_full_diff(
    scope: ClusterScope, files: tuple[dict[str, str], dict[str, str]]
) -> None:
    check_diff_is_the_full_diff(files, scope)


POD = "apiVersion: v1\nkind: Pod\nmetadata: {name: %s, labels: {app: %s}}\nspec: {containers: []}\n"
CALICO = (
    "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\n"
    "metadata: {name: p, namespace: default}\n"
    "spec: {selector: app == 'a', types: [Ingress], ingress: [{action: %s}]}\n"
)
DENY_ALL = (
    "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny}\n"
    "spec: {podSelector: {matchLabels: {app: %s}}, policyTypes: [Ingress]}\n"
)


def test_a_networkpolicy_change_under_calico_is_not_mapped_in_full(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base_files = {"p.yaml": CALICO % "Pass", "a.yaml": POD % ("a", "a"), "b.yaml": POD % ("b", "b")}
    base = load_files(base_files)
    head = load_files({**base_files, "deny.yaml": DENY_ALL % "b", "c.yaml": POD % ("c", "c")})
    compilation = compile_full(base, tree_networks(head))
    assert rederive.same_tiers(compilation, head)
    assert not incremental.same_context(compilation, head)
    expected = _full(base, head)

    def refuse(*_: object) -> None:
        raise AssertionError("mapped in full")

    monkeypatch.setattr("analysis.diff.compute_map", refuse)
    diff = diff_to_json(diff_trees(base, head))
    assert diff == expected
    assert {(r["src"], r["dst"]) for r in diff["closed"]} >= {("default/Pod/a", "default/Pod/b")}


def test_a_changed_calico_policy_is_not_rederived() -> None:
    policy = (
        "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\n"
        "metadata: {name: p, namespace: default}\n"
        "spec: {selector: app == 'a', types: [Ingress], ingress: [{action: %s}]}\n"
    )
    pod = (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: a, labels: {app: a}}\nspec: {containers: []}\n"
    )
    base = load_files({"p.yaml": policy % "Allow", "a.yaml": pod})
    head = load_files({"p.yaml": policy % "Deny", "a.yaml": pod})
    assert not rederive.same_tiers(compile_full(base), head)
    assert diff_to_json(diff_trees(base, head)) == _full(base, head)
