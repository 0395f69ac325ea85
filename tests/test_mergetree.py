"""The file-level three-way merge used when GitHub's test merge commit is not usable."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.inputs.mergetree import MergeConflict, merged_files

PATHS = st.sampled_from(["a.yaml", "b.yaml", "c/d.yaml"])
CONTENT = st.sampled_from([b"1", b"2", b"3"])
TREES = st.dictionaries(PATHS, CONTENT)


def test_each_side_keeps_what_only_it_changed() -> None:
    base = {"shared.yaml": b"old", "base-only.yaml": b"x"}
    ours = {"shared.yaml": b"old", "base-only.yaml": b"y", "added-by-base.yaml": b"b"}
    theirs = {"shared.yaml": b"new", "base-only.yaml": b"x", "added-by-pr.yaml": b"p"}
    assert merged_files(base, ours, theirs) == {
        "shared.yaml": b"new",
        "base-only.yaml": b"y",
        "added-by-base.yaml": b"b",
        "added-by-pr.yaml": b"p",
    }


def test_deletions_apply_and_a_delete_modify_is_a_conflict() -> None:
    assert merged_files({"x": b"1"}, {"x": b"1"}, {}) == {}
    assert merged_files({"x": b"1"}, {}, {"x": b"1"}) == {}
    with pytest.raises(MergeConflict) as caught:
        merged_files({"x": b"1", "y": b"1"}, {"x": b"2", "y": b"2"}, {"y": b"3"})
    assert caught.value.paths == ("x", "y")
    assert "x, y" in str(caught.value)


@given(TREES, TREES, TREES)
def test_merge_agrees_with_each_side_and_is_symmetric(
    was: dict[str, bytes], ours: dict[str, bytes], theirs: dict[str, bytes]
) -> None:
    try:
        merged = merged_files(was, ours, theirs)
    except MergeConflict as conflict:
        for path in conflict.paths:  # a conflict is a path both changed, differently
            assert ours.get(path) != was.get(path) != theirs.get(path) != ours.get(path)
        with pytest.raises(MergeConflict):
            merged_files(was, theirs, ours)
        return
    assert merged == merged_files(was, theirs, ours)
    for path in was.keys() | ours.keys() | theirs.keys():
        expected = theirs.get(path) if ours.get(path) == was.get(path) else ours.get(path)
        assert merged.get(path) == expected


@given(TREES, TREES)
def test_an_up_to_date_branch_merges_to_its_head(
    was: dict[str, bytes], head: dict[str, bytes]
) -> None:
    assert merged_files(was, was, head) == head
    assert merged_files(was, head, was) == head
