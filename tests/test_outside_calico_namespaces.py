"""Representatives (``cluster_scope: partial``) of namespaces the tree does not define, as
Calico's selectors tell them apart, against the Calico reference: a pod selector's
conditions on its namespace (``pcns.team``, ``projectcalico.org/namespace``,
``pcns.projectcalico.org/name``) and a namespaceSelector's on the name
(``projectcalico.org/name``), with ``==``, ``!=`` and the string conditions. The general
property (tests/test_outside_calico.py) draws none of these.

Each example's check is that property's: every concrete pod decides like the endpoint that
stands for it.
"""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import given, note, settings
from hypothesis import strategies as st

from analysis.manifests import load_files
from analysis.outside import outside_world
from analysis.reachability import compute_map
from tests.reference_outside import concrete_namespace, concrete_pod
from tests.strategies import Draw, Obj, examples
from tests.test_outside_calico import (
    OUTSIDE_NAMES,
)
from tests.test_outside_calico import (
    test_a_representative_decides_like_every_pod_it_stands_for_under_calico as stands_for,
)

OPS = ("==", "!=", "contains", "starts with", "ends with")
# Pieces of the concrete namespaces' names (default, alpha, beta, gamma, zz-outside).
NAME_STRINGS = ("a", "al", "ta", "ma", "zz", "de", "alpha", "e")
TEAMS = ("a", "b", "ab", "ba")

Case = tuple[list[Obj], dict[str, str], list[dict[str, Any]], list[dict[str, Any]]]


@st.composite
def namespace_condition(draw: Draw, in_pod_selector: bool) -> str:
    keys = ["team", "projectcalico.org/name"]
    if in_pod_selector:
        keys = ["pcns.team", "projectcalico.org/namespace", "pcns.projectcalico.org/name"]
    key = draw(st.sampled_from(keys))
    value = draw(st.sampled_from(TEAMS if key.endswith("team") else NAME_STRINGS))
    condition = f"{key} {draw(st.sampled_from(OPS))} '{value}'"
    return f"!({condition})" if draw(st.integers(0, 3)) == 0 else condition


@st.composite
def sources(draw: Draw) -> Obj:
    source: Obj = {}
    if draw(st.booleans()):
        parts = draw(st.lists(namespace_condition(True), min_size=1, max_size=2))
        if draw(st.booleans()):
            parts.append("app == 'a'")
        source["selector"] = draw(st.sampled_from((" && ", " || "))).join(parts)
        source["namespaceSelector"] = "all()"
    if draw(st.booleans()) or not source:
        parts = draw(st.lists(namespace_condition(False), min_size=1, max_size=2))
        source["namespaceSelector"] = draw(st.sampled_from((" && ", " || "))).join(parts)
    return source


@st.composite
def cases(draw: Draw) -> Case:
    rules = [
        {"action": draw(st.sampled_from(("Allow", "Deny"))), "source": draw(sources())}
        for _ in range(draw(st.integers(1, 3)))
    ]
    spec: Obj = {"selector": "app == 'web'", "types": ["Ingress"], "ingress": rules}
    policy: Obj = {
        "apiVersion": "projectcalico.org/v3",
        "kind": "NetworkPolicy",
        "metadata": {"name": "p", "namespace": "shop"},
        "spec": spec,
    }
    if draw(st.booleans()):
        policy = {**policy, "kind": "GlobalNetworkPolicy", "metadata": {"name": "p"}}
    objects: list[Obj] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}},
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "containers": [
                            {"name": "c", "image": "x", "ports": [{"containerPort": 80}]}
                        ]
                    },
                },
            },
        },
        policy,
    ]
    files = {"tree.yaml": yaml.safe_dump_all(objects, sort_keys=False)}
    note(files["tree.yaml"])
    names = draw(st.lists(st.sampled_from(OUTSIDE_NAMES), min_size=1, max_size=3, unique=True))
    namespaces = [
        concrete_namespace(
            n, draw(st.dictionaries(st.just("team"), st.sampled_from(TEAMS), max_size=1))
        )
        for n in names
    ]
    pods = [
        concrete_pod(
            draw(st.sampled_from(names)),
            f"zz-concrete-{i}",
            draw(st.dictionaries(st.just("app"), st.sampled_from(("a", "b")), max_size=1)),
        )
        for i in range(draw(st.integers(1, 3)))
    ]
    note(f"concrete: {namespaces} {pods}")
    return objects, files, namespaces, pods


@settings(max_examples=examples(150))
@given(cases())
def test_outside_namespaces_are_told_apart_by_what_calico_selectors_ask_of_them(
    case: Case,
) -> None:
    stands_for.hypothesis.inner_test(case)  # type: ignore[attr-defined]


def test_a_pod_selectors_namespace_label_splits_outside_namespaces() -> None:
    # `pcns.team == 'edge'` (a GlobalNetworkPolicy's peer) asks for namespaces labelled
    # team=edge: their pods have a representative, allowed in (it used to be none).
    tree = load_files(
        {
            "tree.yaml": (
                "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n---\n"
                "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\n"
                "metadata: {name: p, namespace: shop}\nspec:\n  selector: all()\n"
                "  ingress:\n  - action: Allow\n    source:\n      namespaceSelector: all()\n"
                "      selector: pcns.team == 'edge' || projectcalico.org/namespace == 'foo'\n"
            )
        }
    )
    world = outside_world(tree, (tree,))
    engine = compute_map(world.tree(tree))
    edge = world.locate("bar", {"team": "edge"}, {}, world.tree(tree))
    foo = world.locate("foo", {}, {}, world.tree(tree))
    other = world.locate("bar", {}, {}, world.tree(tree))
    assert (edge, foo, other) == (
        "~ns[team=edge]/*",
        "~ns[kubernetes.io/metadata.name=foo]/*",
        "~ns[*]/*",
    )
    assert engine.allowed(edge, "~shop/*").to_json() != {}
    assert engine.allowed(foo, "~shop/*").to_json() != {}
    assert engine.allowed(other, "~shop/*").to_json() == {}
