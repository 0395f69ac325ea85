"""The YAML reader: exact lines, the fast path's equivalence, and hostile-input bounds."""

from __future__ import annotations

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.errors import ManifestError
from analysis.manifests import load_files, parse_file
from analysis.yamldoc import (
    MAX_ALIAS_EXPANSION,
    YAMLSyntaxError,
    parse_documents,
    parse_documents_fast,
)

# Scalars chosen where YAML 1.1 (PyYAML, Kubernetes) and YAML 1.2 (yaml-rs) disagree.
TRICKY = ["yes", "no", "on", "off", "y", "017", "0o17", "0x1f", "1_000", "1e3", "1:30",
          ".inf", "2024-01-01", "~", "null", "true", "12", "-3", "0", "app", "a b", "*x", "&y"]
scalars = st.one_of(
    st.sampled_from(TRICKY), st.integers(-5, 70000), st.booleans(), st.none(),
    st.text("abcxyz-_.:/ 0123456789", max_size=8),
)
trees = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.text("abcdk", min_size=1, max_size=4), inner, max_size=3),
    ),
    max_leaves=12,
)


def render(docs: list[object], flow: bool) -> str:
    """Documents written the way people write them: unquoted where YAML allows it."""
    text = yaml.safe_dump_all(docs, default_flow_style=flow, explicit_start=True)
    # Drop the quotes PyYAML adds around tricky scalars, so both readers see them bare.
    for word in TRICKY:
        text = text.replace(f"'{word}'", word)
    return text


@settings(max_examples=300, deadline=None)
@given(st.lists(trees, min_size=1, max_size=3), st.booleans())
def test_fast_path_reads_what_libyaml_reads(docs: list[object], flow: bool) -> None:
    text = render(docs, flow)
    try:
        exact = [(d.data, d.line) for d in parse_documents(text)]
    except YAMLSyntaxError:
        return  # unquoting made it invalid YAML: not a case for equivalence
    fast = parse_documents_fast(text)
    if fast is not None:  # None: it handed the text to the exact path
        assert [(d.data, d.line) for d in fast] == exact


def test_fast_path_declines_yaml_1_1_scalars() -> None:
    assert parse_documents_fast("a: yes\n") is None
    assert parse_documents_fast("a: 017\n") is None
    assert parse_documents_fast("a: &x [1]\nb: *x\n") is None
    assert [d.data for d in parse_documents_fast("a: 'yes'\nb: x\n") or []] == [
        {"a": "yes", "b": "x"}
    ]


def test_document_lines_skip_separators_and_comments() -> None:
    text = "# header\n---\n# c\nkind: A\n---\n\n---\nkind: B\n"
    fast = parse_documents_fast(text)
    assert fast is not None
    assert [(d.data["kind"], d.line) for d in fast] == [("A", 4), ("B", 8)]
    assert [(d.data["kind"], d.line) for d in parse_documents(text)] == [("A", 4), ("B", 8)]


def test_errors_in_fast_path_files_name_the_exact_line() -> None:
    deployment = (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n"
        "    spec:\n      containers:\n      - name: c\n        ports:\n"
        "        - containerPort: 99999\n"
    )
    try:
        load_files({"web.yaml": deployment})
    except ManifestError as err:
        assert (err.file, err.line) == ("web.yaml", 10)
        assert "containerPort" in err.message
    else:
        raise AssertionError("an invalid containerPort must be rejected")


def test_alias_bomb_is_refused() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 12):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    try:
        parse_file("bomb.yaml", "\n".join(lines) + "\n")
    except ManifestError as err:
        assert err.file == "bomb.yaml" and str(MAX_ALIAS_EXPANSION) in err.message
    else:
        raise AssertionError("a billion-laughs document must be refused")


def test_deep_nesting_is_refused_before_libyaml() -> None:
    for text in ("[" * 100_000, "a:\n" + "  " * 5000 + "b: 1\n", "x: [a'b, " + "[" * 500):
        try:
            parse_file("deep.yaml", text)
        except ManifestError as err:
            assert err.file == "deep.yaml" and "deeper than" in err.message
        else:
            raise AssertionError("deep nesting must be refused")


def test_parse_results_are_shared_between_identical_files() -> None:
    text = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: []}\n"
    assert parse_file("a.yaml", text, exact=False) is parse_file("b.yaml", text, exact=False)
