"""A pull request that changes Calico or Cilium policies (or Calico tiers) themselves: the
head compiled under the base's numbers and compared only where the changed policies and
tiers reach (``analysis.rederive.TierChange``) gives the diff of two maps computed in full,
causes included, over random mixed trees and random edits of their policies."""

from __future__ import annotations

import copy

import pytest
import yaml
from hypothesis import given, note
from hypothesis import strategies as st

from analysis import rederive
from analysis.compiler import compile_full, tree_networks
from analysis.diff import diff_trees
from analysis.manifests import load_files
from analysis.model import Direction
from analysis.outside import ClusterScope
from analysis.report import diff_to_json
from tests.calico_strategies import USER_TIERS, calico_objects, calico_policies, calico_selectors
from tests.strategies import NAMESPACES, Draw, Obj, defined_port_names, manifest_files, tree_pairs
from tests.strategies_cilium import cilium_policies, cilium_spec
from tests.test_properties_admin import admin_tiers
from tests.test_properties_calico import PROFILE
from tests.test_rederive import _full, check_diff_is_the_full_diff


@st.composite
def calico_edit(draw: Draw, objects: list[Obj], names: tuple[str, ...], new: str) -> list[Obj]:
    """One edit of a tree's Calico objects: a policy added, removed, redrawn, reordered or
    reselected; a tier added, removed or reordered, or its default action flipped. A policy
    drawn anew is named ``new``."""
    out = copy.deepcopy(objects)
    policies = [o for o in out if o["kind"] in ("NetworkPolicy", "GlobalNetworkPolicy")]
    tiers = [o for o in out if o["kind"] == "Tier"]
    op = draw(st.sampled_from(("add", "remove", "redraw", "order", "selector", "tier", "tier")))
    if op == "add" or not policies:
        return [*out, draw(calico_policies(new, [t["metadata"]["name"] for t in tiers], names))]
    policy = draw(st.sampled_from(policies))
    if op == "remove":
        out.remove(policy)
    elif op == "redraw":
        out[out.index(policy)] = draw(
            calico_policies(new, [t["metadata"]["name"] for t in tiers], names)
        )
    elif op == "order":
        policy["spec"]["order"] = draw(st.sampled_from((0, 1, 2.5, 1000, 5000)))
    elif op == "selector":
        policy["spec"]["selector"] = draw(calico_selectors())
    elif tiers and draw(st.booleans()):
        tier = draw(st.sampled_from(tiers))
        if draw(st.booleans()):
            out.remove(tier)  # its policies are then not evaluated (reported)
        elif draw(st.booleans()):
            tier["spec"]["defaultAction"] = {"Deny": "Pass", "Pass": "Deny"}.get(
                tier["spec"].get("defaultAction", "Deny"), "Deny"
            )
        else:
            tier["spec"]["order"] = draw(st.sampled_from((1, 150, 250, 3_000_000)))
    else:
        taken = {t["metadata"]["name"] for t in tiers}
        free = [(n, o) for n, o in USER_TIERS if n not in taken]
        if free:
            name, order = draw(st.sampled_from(free))
            spec: Obj = {"defaultAction": draw(st.sampled_from(("Deny", "Pass")))}
            if order is not None:
                spec["order"] = order
            out.append(
                {
                    "apiVersion": "projectcalico.org/v3",
                    "kind": "Tier",
                    "metadata": {"name": name},
                    "spec": spec,
                }
            )
    return out


@st.composite
def cilium_edit(draw: Draw, objects: list[Obj], names: tuple[str, ...], new: str) -> list[Obj]:
    """One edit of a tree's Cilium policies: some added (named ``new`` and a number), one
    removed, or one given a new spec."""
    out = copy.deepcopy(objects)
    op = draw(st.sampled_from(("add", "remove", "respec", "respec")))
    if op == "add" or not out:
        added: list[Obj] = draw(cilium_policies(names, NAMESPACES, prefix=new))
        return out + added
    policy = draw(st.sampled_from(out))
    if op == "remove":
        out.remove(policy)
    else:
        policy.pop("specs", None)
        policy["spec"] = draw(cilium_spec(names))
    return out


@st.composite
def changed_tier_pairs(draw: Draw) -> tuple[dict[str, str], dict[str, str]]:
    """Mixed trees whose Calico or Cilium objects (or both) differ by one or two edits;
    sometimes with a Kubernetes change as well, and the same admin tiers on both sides."""
    base, head = draw(tree_pairs())
    if draw(st.booleans()):
        head = copy.deepcopy(base)  # only the Calico or Cilium objects change
    names = tuple(sorted(defined_port_names(base)))
    admin: list[Obj] = draw(admin_tiers(names)) if draw(st.integers(0, 3)) == 0 else []
    kinds = draw(st.sampled_from(("calico", "cilium", "both")))
    calico_before = draw(calico_objects(names)) if kinds != "cilium" else []
    cilium_before = draw(cilium_policies(names, NAMESPACES)) if kinds != "calico" else []
    calico_after, cilium_after = calico_before, cilium_before
    for n in range(draw(st.integers(1, 2))):
        if kinds == "cilium" or (kinds == "both" and draw(st.booleans())):
            cilium_after = draw(cilium_edit(cilium_after, names, f"new{n}-"))
        else:
            calico_after = draw(calico_edit(calico_after, names, f"new{n}"))
    pair = draw(manifest_files(base)), draw(manifest_files(head))
    for files, objects in zip(
        pair,
        ([*admin, *calico_before, *cilium_before], [*admin, *calico_after, *cilium_after]),
        strict=True,
    ):
        # One object per file: an edit moves no other object's lines.
        for n, obj in enumerate(objects):
            files[f"tiers/{obj['kind']}-{obj['metadata']['name']}-{n}.yaml"] = yaml.safe_dump(
                obj, sort_keys=False
            )
    note(yaml.safe_dump_all([*calico_after, *cilium_after], sort_keys=False))
    return pair


@pytest.mark.parametrize("scope", list(ClusterScope), ids=lambda scope: scope.value)
@PROFILE
@given(changed_tier_pairs())
def test_a_changed_tier_diff_equals_the_full_diff(
    scope: ClusterScope, files: tuple[dict[str, str], dict[str, str]]
) -> None:
    check_diff_is_the_full_diff(files, scope)


POD = "apiVersion: v1\nkind: Pod\nmetadata: {name: %s, labels: {app: %s}}\nspec: {containers: []}\n"
CNP = (
    "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\n"
    "metadata: {name: p, namespace: default}\n"
    "spec: {endpointSelector: {matchLabels: {app: a}}, ingress: [{fromEndpoints: [%s]}]}\n"
)


def test_a_changed_cilium_policy_is_compared_where_it_selects(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pods = {f"{n}.yaml": POD % (n, n) for n in ("a", "b", "c")}
    base = load_files({**pods, "p.yaml": CNP % "{matchLabels: {app: b}}"})
    head = load_files({**pods, "p.yaml": CNP % "{}"})
    tiers = rederive.tier_change(base, head)
    assert tiers == rederive.TierChange(cilium=frozenset({"default/CiliumNetworkPolicy/p"}))
    expected = _full(base, head)

    def refuse(*_: object) -> None:
        raise AssertionError("mapped in full")

    monkeypatch.setattr("analysis.diff.compute_map", refuse)
    diff = diff_to_json(diff_trees(base, head))
    assert diff == expected
    opened = {(r["src"], r["dst"]) for r in diff["opened"]}
    assert opened == {("default/Pod/a", "default/Pod/a"), ("default/Pod/c", "default/Pod/a")}


GNP = (
    "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\n"
    "metadata: {name: %s}\n"
    "spec: {tier: %s, selector: app == '%s', types: [Ingress], ingress: [{action: %s}]}\n"
)
TIER = "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: t}\nspec: {order: %s}\n"


def test_a_reordered_calico_tier_reaches_every_endpoint_its_policies_select() -> None:
    pods = {f"{n}.yaml": POD % (n, n) for n in ("a", "b")}
    both = {
        **pods,
        "deny.yaml": GNP % ("t.deny", "t", "a", "Deny"),
        "allow.yaml": GNP % ("default.allow", "default", "a", "Allow"),
    }
    base = load_files({**both, "tier.yaml": TIER % 100})
    head = load_files({**both, "tier.yaml": TIER % 3_000_000})  # after the default tier
    tiers = rederive.tier_change(base, head)
    assert tiers == rederive.TierChange(tiers=frozenset({"t"}))
    compilation = compile_full(base, tree_networks(head))
    # Neither policy changed, yet the verdicts of what tier t's policy selects did.
    compiled = compile_full(head, numbered_as=compilation.matcher)
    cited = rederive._citing(compiled, tiers)
    a = next(e for c, e in compiled.class_index.items() if ("app", "a") in c.labels)
    assert cited[Direction.INGRESS] == {a}
    diff = diff_to_json(diff_trees(base, head))
    assert diff == _full(base, head)
    assert ("default/Pod/b", "default/Pod/a") in {(r["src"], r["dst"]) for r in diff["opened"]}


def test_a_changed_network_set_is_compared_in_full() -> None:
    net = (
        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\n"
        "metadata: {name: s, labels: {app: s}}\nspec: {nets: [%s]}\n"
    )
    both = {"a.yaml": POD % ("a", "a"), "p.yaml": GNP % ("default.p", "default", "a", "Allow")}
    base = load_files({**both, "s.yaml": net % "10.0.0.0/8"})
    head = load_files({**both, "s.yaml": net % "10.1.0.0/16"})
    assert rederive.tier_change(base, head) is None
    assert diff_to_json(diff_trees(base, head)) == _full(base, head)
