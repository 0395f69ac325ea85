"""A ``ParseCache`` is owned and bounded by whoever reads trees, and changes no result:
a tree read with a warm cache (one that read other trees, or the same one, before) is the
tree read with a fresh one, and a cache never holds more entries than its limit."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.errors import ManifestError
from analysis.manifests import exact_rule_source, load_files, parse_file
from analysis.model import Tree
from analysis.parsecache import ParseCache
from analysis.treestate import apply_changes, load_state
from tests.strategies import Draw, examples, manifest_files, tree_pairs
from tests.test_treestate import assert_same_tree, outcome

PROFILE = settings(max_examples=examples(60))


@st.composite
def file_pairs(draw: Draw) -> tuple[dict[str, str], dict[str, str]]:
    base, head = draw(tree_pairs())
    return draw(manifest_files(base)), draw(manifest_files(head))


@PROFILE
@given(file_pairs(), st.integers(1, 6))
def test_a_warm_cache_reads_the_tree_a_fresh_one_reads(
    pair: tuple[dict[str, str], dict[str, str]], limit: int
) -> None:
    base_files, head_files = pair
    warm = ParseCache(limit)
    outcome(lambda: load_files(base_files, cache=warm))  # warms it with the other side
    want = outcome(lambda: load_files(head_files))
    got = outcome(lambda: load_files(head_files, cache=warm))
    again = outcome(lambda: load_files(head_files, cache=warm))  # now warm with the head too
    for found in (got, again):
        if isinstance(want, Tree):
            assert isinstance(found, Tree)
            assert_same_tree(found, want)
        else:
            assert found == want
    assert max(warm.sizes()) <= limit


@PROFILE
@given(file_pairs())
def test_a_head_derived_with_the_bases_cache_is_the_head_read_afresh(
    pair: tuple[dict[str, str], dict[str, str]],
) -> None:
    base_files, head_files = pair
    try:
        base = load_state(base_files)
    except ManifestError:
        return
    changed: dict[str, str | None] = {p: head_files.get(p) for p in base_files | head_files}
    want = outcome(lambda: load_state(head_files, cache=ParseCache()).tree)
    got = outcome(lambda: apply_changes(base, changed).tree)
    if isinstance(want, Tree):
        assert isinstance(got, Tree)
        assert_same_tree(got, want)
    else:
        assert got == want


def test_the_bound_holds_and_the_least_recently_used_go_first() -> None:
    cache = ParseCache(limit=3)
    texts = {
        f"ns{i}.yaml": f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ns{i}\n"
        for i in range(10)
    }
    first = parse_file("ns0.yaml", texts["ns0.yaml"], cache=cache)
    for path, text in texts.items():
        parse_file(path, text, cache=cache)
        assert cache.sizes()[0] <= 3
    # ns0 went first: asked again, it is parsed again (equal, but not the same objects).
    again = parse_file("ns0.yaml", texts["ns0.yaml"], cache=cache)
    assert again == first and again is not first
    # ns9 was used last: the same objects are handed out.
    assert parse_file("ns9.yaml", texts["ns9.yaml"], cache=cache) is parse_file(
        "ns9.yaml", texts["ns9.yaml"], cache=cache
    )
    tree = load_files(texts, cache=cache)
    assert [n.name for n in tree.namespaces] == [f"ns{i}" for i in range(10)]
    assert max(cache.sizes()) <= 3


def test_no_cache_keeps_nothing_and_a_state_owns_its_own() -> None:
    text = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n"
    assert parse_file("a.yaml", text) is not parse_file("a.yaml", text)
    one, two = load_state({"a.yaml": text}), load_state({"a.yaml": text})
    assert one == two and one.parse_cache is not two.parse_cache
    assert one.parse_cache.sizes() == (1, 1)
    head = apply_changes(one, {"b.yaml": text.replace("name: a", "name: b")})
    assert head.parse_cache is one.parse_cache  # a head reads with its base's cache
    assert one.parse_cache.sizes() == (2, 2)


def test_a_cache_crosses_processes_empty() -> None:
    cache = ParseCache(limit=7)
    parse_file("a.yaml", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n", cache=cache)
    copy = pickle.loads(pickle.dumps(cache))
    assert copy.limit == 7 and copy.sizes() == (0, 0)
    with pytest.raises(ValueError):
        ParseCache(0)


POLICY = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p, namespace: a}
spec:
  podSelector: {}
  ingress:
  - from:
    - podSelector: {}
  - from:
    - namespaceSelector: {}
"""


def test_exact_lines_are_read_once_per_tree_and_kept_with_it() -> None:
    tree = load_files({"p.yaml": POLICY})
    policy = tree.policies[0]
    assert not policy.exact_lines  # the fast parser read it: rules know their document
    lines = [exact_rule_source(tree, policy, r).line for r in policy.ingress]
    assert lines == [7, 9]
    assert tree.exact_reads.sizes() == (1, 1)  # one file read again, one policy modelled
    assert [exact_rule_source(tree, policy, r).line for r in policy.ingress] == lines
    assert tree.exact_reads.sizes() == (1, 1)
    assert load_files({"p.yaml": POLICY}).exact_reads.sizes() == (0, 0)  # another tree's
