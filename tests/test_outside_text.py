"""Calico's string conditions (``contains``, ``starts with``, ``ends with``) splitting the
pods outside the tree (``cluster_scope: partial``, analysis/outside.py): the
representatives of one label key reach exactly the match vectors some real value (or no
label) reaches, against a brute force over every short value; and a pod whose value
matches one string condition and not another (``app=webserver`` under ``starts with
'web'`` and ``ends with 'web'``) has a representative, whose opened path the map shows.
"""

from __future__ import annotations

import itertools

from hypothesis import given, note, settings
from hypothesis import strategies as st

from analysis.calicocompile import TextRequirement
from analysis.ciliummodel import SERVICE_ACCOUNT
from analysis.manifests import load_files
from analysis.model import NAMESPACE_NAME_LABEL, LabelRequirement, LabelSelector
from analysis.outside import ACCOUNT_NAMES, LABEL_VALUES, OTHER_VALUE, _Space, outside_world
from analysis.reachability import compute_map
from tests.strategies import Draw, examples

KEY = "app"
TEXT_OPS = ("contains", "starts with", "ends with")
LITERALS = ("a", "b", "ab", "ba", "aa")
# Literals use only a and b; x stands for every character none of them has, so every
# value reaches the vector of the string over a, b, x it maps to (x is alphanumeric:
# still a valid value). Up to 7 characters reaches every vector of these conditions.
ALPHABET = "abx"
LONGEST = 7
Condition = tuple[str, tuple[str, ...]]  # (operator, values)


def holds(op: str, values: tuple[str, ...], value: str | None) -> bool:
    """Calico's and Kubernetes' semantics, written here without analysis/."""
    if value is None:
        return op in ("NotIn", "DoesNotExist")
    if op == "contains":
        return value.find(values[0]) >= 0
    if op == "starts with":
        return value[: len(values[0])] == values[0]
    if op == "ends with":
        return len(value) >= len(values[0]) and value[len(value) - len(values[0]) :] == values[0]
    if op == "In":
        return value in values
    if op == "NotIn":
        return value not in values
    return op == "Exists"


def brute_vectors(conditions: list[Condition], values: list[str | None]) -> set[int]:
    return {
        sum(1 << n for n, (op, vs) in enumerate(conditions) if holds(op, vs, value))
        for value in values
    }


def every_value(empty: bool) -> list[str]:
    return [
        "".join(chars)
        for length in range(0 if empty else 1, LONGEST + 1)
        for chars in itertools.product(ALPHABET, repeat=length)
    ]


def selectors(conditions: list[Condition], key: str = KEY) -> list[LabelSelector]:
    return [
        LabelSelector(
            (),
            (TextRequirement(key, op, vs) if op in TEXT_OPS else LabelRequirement(key, op, vs),),
        )
        for op, vs in conditions
    ]


@st.composite
def conditions(draw: Draw) -> list[Condition]:
    texts = draw(
        st.lists(
            st.tuples(st.sampled_from(TEXT_OPS), st.sampled_from(LITERALS).map(lambda v: (v,))),
            min_size=1,
            max_size=4,
        )
    )
    others = draw(
        st.lists(
            st.one_of(
                st.tuples(
                    st.sampled_from(("In", "NotIn")),
                    st.lists(st.sampled_from(("", "a", "ab", "bab", "x")), min_size=1, max_size=2)
                    .map(sorted)
                    .map(tuple),
                ),
                st.tuples(st.sampled_from(("Exists", "DoesNotExist")), st.just(())),
            ),
            max_size=2,
        )
    )
    out: list[Condition] = draw(st.permutations([*texts, *others]))
    return out


@settings(max_examples=examples(300))
@given(conditions())
def test_representatives_reach_exactly_the_vectors_values_reach(
    conds: list[Condition],
) -> None:
    space = _Space(selectors(conds), namespace=False)
    atoms = space.atoms()
    reached = [space.vector(dict(atom)) for atom in atoms]
    note(f"atoms: {atoms}")
    assert len(set(reached)) == len(reached)  # one representative per vector
    for atom in atoms:  # each a value a label can have (or "~other", standing for one)
        assert all(LABEL_VALUES.valid(v) or v == OTHER_VALUE for _, v in atom)
    expected = brute_vectors(conds, [None, *every_value(empty=True)])
    # vector() is over the selectors (bit set: matched), as brute_vectors.
    assert set(reached) == expected
    # Every concrete value is stood for by the representative of its vector (locate).
    for value in ("webserver", "aab", "xbax", "ba-ab", ""):
        assert space.vector({KEY: value}) in reached


@settings(max_examples=examples(150))
@given(conditions(), st.lists(st.sampled_from(("a", "ab", "ba", "x", "aa")), max_size=3))
def test_a_namespace_name_takes_no_defined_name(conds: list[Condition], defined: list[str]) -> None:
    # On the name label (a DNS-1123 label, never empty), no value may be a name the tree
    # defines (its namespace is the tree's, not a representative); every other is reached.
    space = _Space(selectors(conds, NAMESPACE_NAME_LABEL), namespace=True)
    atoms = space.atoms(defined)
    names = [dict(atom)[NAMESPACE_NAME_LABEL] for atom in atoms]
    assert not set(names) & set(defined)
    values: list[str | None] = [v for v in every_value(empty=False) if v not in defined]
    assert {space.vector(dict(atom)) for atom in atoms} == brute_vectors(conds, values)


@settings(max_examples=examples(100))
@given(conditions())
def test_a_service_account_is_always_a_real_name(conds: list[Condition]) -> None:
    # Split like a label (Representative.workload runs a pod as it), an account is always
    # there, and a real name: never "~other", which a string condition would read as is.
    space = _Space(selectors(conds, SERVICE_ACCOUNT), namespace=False)
    atoms = space.atoms()
    accounts = [dict(atom).get(SERVICE_ACCOUNT) for atom in atoms]
    assert all(a is not None and ACCOUNT_NAMES.valid(a) for a in accounts), accounts
    values: list[str | None] = list(every_value(empty=False))
    assert {space.vector(dict(atom)) for atom in atoms} == brute_vectors(conds, values)


def test_a_value_beyond_63_characters_is_no_representative() -> None:
    # Both 40-character strings, at both ends, need 80 characters: no label value has them.
    begin, end = "a" * 39 + "b", "c" + "a" * 39
    conds: list[Condition] = [("starts with", (begin,)), ("ends with", (end,))]
    space = _Space(selectors(conds), namespace=False)
    assert space.vector({KEY: begin + end}) not in {space.vector(dict(a)) for a in space.atoms()}
    assert {space.vector(dict(a)) for a in space.atoms()} == {0, 1, 2}


def test_the_representative_values_are_shown() -> None:
    # A value found by the search is shown as it is (it stands for every value alike);
    # one matching no condition as what it is not.
    conds: list[Condition] = [
        ("starts with", ("web",)),
        ("ends with", ("web",)),
        ("Exists", ()),
        ("NotIn", ("api",)),
    ]
    space = _Space(selectors(conds), namespace=False)
    assert [space.show(a) for a in space.atoms()] == [
        "",
        "app=api",
        "app=web",
        "app=webx",
        "app=xweb",
        "app!=api|web*|*web",
    ]


TREE = """\
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: db, namespace: shop}
spec:
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: c, image: x, ports: [{containerPort: 5432}]}]}
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: db, namespace: shop}
spec:
  selector: app == 'db'
  order: 10
  types: [Ingress]
  ingress:
  - action: Deny
    source: {selector: app ends with 'web'}
  - action: Allow
    source: {selector: app starts with 'web'}
"""


def test_a_pod_matching_one_string_condition_and_not_another_has_its_path() -> None:
    tree = load_files({"shop.yaml": TREE})
    world = outside_world(tree, (tree,))
    partial = world.tree(tree)
    engine = compute_map(partial)
    # A pod app=webserver starts with web and does not end with it: allowed, not denied.
    found = world.locate("shop", None, {"app": "webserver"}, partial)
    assert found == "~shop/pod[app=webx]"
    assert engine.allowed(found, "shop/Deployment/db").to_json() != {}
    # app=web ends with web: denied; a value neither starts nor ends with it: not allowed.
    for labels in ({"app": "web"}, {"app": "server"}, {"app": "serverweb"}, {}):
        other = world.locate("shop", None, labels, partial)
        assert other != found
        assert engine.allowed(other, "shop/Deployment/db").to_json() == {}
