"""The YAML reader: exact lines, the fast path's equivalence, and hostile-input bounds."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.errors import ManifestError
from analysis.manifests import build_tree, load_files, parse_file
from analysis.model import Tree
from analysis.parsecache import ParseCache
from analysis.yamldoc import (
    MAX_ALIAS_EXPANSION,
    MAX_DEPTH,
    YAMLSyntaxError,
    parse_documents,
    parse_documents_fast,
)

# Scalars chosen where YAML 1.1 (PyYAML, Kubernetes) and YAML 1.2 (yaml-rs) disagree.
TRICKY = [
    "yes",
    "no",
    "on",
    "off",
    "y",
    "017",
    "0o17",
    "0x1f",
    "1_000",
    "1e3",
    "1:30",
    ".inf",
    "2024-01-01",
    "~",
    "null",
    "true",
    "12",
    "-3",
    "0",
    "app",
    "a b",
    "*x",
    "&y",
]
scalars = st.one_of(
    st.sampled_from(TRICKY),
    st.integers(-5, 70000),
    st.booleans(),
    st.none(),
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
def test_fast_path_reads_structure_like_libyaml(docs: list[object], flow: bool) -> None:
    """Same documents and lines; scalars may differ only where YAML 1.1 and 1.2 do."""
    text = render(docs, flow)
    try:
        exact = parse_documents(text)
    except YAMLSyntaxError:
        return  # unquoting made it invalid YAML: not a case for equivalence
    fast = parse_documents_fast(text)
    if fast is not None:  # None: it handed the text to the exact path
        assert [d.line for d in fast] == [d.line for d in exact]
        assert [_shape(d.data) for d in fast] == [_shape(d.data) for d in exact]


def _shape(value: object) -> object:
    if isinstance(value, dict):
        return {"map": len(value)}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return "scalar"


WORKLOAD = """\
apiVersion: v1
kind: Pod
metadata:
  name: {name}
  labels: {{app: {label}, {key}: x}}
spec:
  containers:
  - name: c
    ports: [{{containerPort: {port}, name: {port_name}}}]
"""


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["web", "yes", "on", "017", "1_0", "2024-01-01", "1e3"]),
    st.sampled_from([*TRICKY, "a-b", "v1"]),
    st.sampled_from(["tier", "on", "yes", "NO", "0x1"]),
    st.sampled_from(["80", "017", "0o17", "1_000", "0x50", "8080"]),
    st.sampled_from(["http", "no", "off", "y", "metrics"]),
)
def test_fast_and_exact_loading_build_the_same_model(
    name: str, label: str, key: str, port: str, port_name: str
) -> None:
    """Whatever the text, the model (or the error) is what YAML 1.1, as Kubernetes reads
    manifests, gives: the fast path is only a shortcut."""
    text = WORKLOAD.format(name=name, label=label, key=key, port=port, port_name=port_name)
    outcomes: list[object] = []
    loaders: tuple[Callable[[], Tree], ...] = (
        lambda: build_tree(("pod.yaml", o) for o in parse_file("pod.yaml", text, exact=True)),
        lambda: load_files({"pod.yaml": text}),  # the fast path where it may be taken
    )
    for load in loaders:
        try:
            outcomes.append(load().workloads)
        except ManifestError as err:
            outcomes.append((err.line, err.message))
    assert outcomes[0] == outcomes[1]


def test_yaml_1_1_scalars_are_read_as_kubernetes_reads_them() -> None:
    text = WORKLOAD.format(name="web", label="yes", key="tier", port="80", port_name="http")
    try:
        load_files({"pod.yaml": text})
    except ManifestError as err:
        assert err.line == 5 and "must be a string" in err.message  # `yes` is a bool to 1.1
    else:
        raise AssertionError("an unquoted yes is a boolean label value")
    octal = WORKLOAD.format(name="web", label="a", key="tier", port="017", port_name="http")
    [pod] = load_files({"pod.yaml": octal}).workloads
    assert pod.ports[0].port == 15  # YAML 1.1 octal, as Kubernetes reads it


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
    deep_block = "".join(" " * i + "k:\n" for i in range(MAX_DEPTH + 1))
    # Levels add up: block levels, then flow collections inside the innermost.
    half = MAX_DEPTH * 3 // 4
    mixed = "".join(" " * i + "k:\n" for i in range(half)) + " " * half + "[" * (half // 2)
    for text in ("[" * 100_000, "x: [a'b, " + "[" * 500, deep_block, mixed, "- " * 300 + "x"):
        try:
            parse_file("deep.yaml", text)
        except ManifestError as err:
            assert err.file == "deep.yaml" and "deeper than" in err.message
        else:
            raise AssertionError("deep nesting must be refused")


def test_nesting_counts_levels_not_columns() -> None:
    # Deep indentation is not deep nesting; both parsers read it, and so does reachdiff.
    wide = "a:\n" + " " * 5000 + "b: 1\n"
    fast = parse_documents_fast(wide)
    assert fast is not None and [d.data for d in fast] == [{"a": {"b": 1}}]
    assert [d.data for d in parse_documents(wide)] == [{"a": {"b": 1}}]
    # Just under the limit, levels one column apart are read on both paths alike.
    text = "".join(" " * i + f"k{i}:\n" for i in range(MAX_DEPTH - 1)) + " " * 199 + "v: 1\n"
    fast, exact = parse_documents_fast(text), parse_documents(text)
    assert fast is not None and [d.data for d in fast] == [d.data for d in exact]
    assert exact[0].data["k0"]["k1"]["k2"] is not None


def test_block_scalar_lines_are_text_not_levels() -> None:
    # A ConfigMap holding an indented script: its lines open no levels.
    script = "".join(" " * (4 + i) + f"line{i}\n" for i in range(MAX_DEPTH * 2))
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n  s: |\n" + script
    text += "  t: >-\n" + script
    (doc,) = parse_documents(text)
    assert doc.data["data"]["s"].splitlines()[-1].strip() == f"line{MAX_DEPTH * 2 - 1}"


def test_merge_keys_apply_as_kubernetes_reads_them() -> None:
    # go-yaml v2 (sigs.k8s.io/yaml): in document order, a list of mappings last to first.
    text = (
        "a: &a {x: 1, y: 2}\n"
        "b: {<<: [*a, {x: 3, z: 4}], y: 5}\n"
        "c: {y: 9, <<: *a}\n"
        "d: {<<: {z: 1}, z: 2}\n"
    )
    (doc,) = parse_documents(text)
    assert doc.data["b"] == {"x": 1, "y": 5, "z": 4}
    assert doc.data["c"] == {"x": 1, "y": 2}
    assert doc.data["d"] == {"z": 2}


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("a: &a\n  b: 1\n  <<: *a\n", 3, "merges the mapping it is in"),
        ("a: &a [1]\nb: {<<: *a}\n", 2, "takes a mapping or a list of mappings"),
        ("a: {<<: [{x: 1}, 2]}\n", 1, "takes a mapping or a list of mappings"),
    ],
)
def test_merge_keys_of_what_cannot_merge_are_refused(text: str, line: int, words: str) -> None:
    with pytest.raises(YAMLSyntaxError) as info:
        parse_documents(text)
    assert info.value.line == line and words in info.value.message


def test_merged_pairs_count_against_the_alias_budget() -> None:
    lines = ["m0: &m0 {k0: v}"]
    lines += [
        f"m{i}: &m{i} {{<<: [{', '.join([f'*m{i - 1}'] * 9)}], k{i}: v}}" for i in range(1, 12)
    ]
    with pytest.raises(YAMLSyntaxError) as info:
        parse_documents("\n".join(lines) + "\n")
    assert str(MAX_ALIAS_EXPANSION) in info.value.message


def test_parse_results_are_shared_between_identical_files() -> None:
    text = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: []}\n"
    cache = ParseCache()  # owned by its user (analysis.parsecache): shared within it
    assert parse_file("a.yaml", text, exact=False, cache=cache) is parse_file(
        "b.yaml", text, exact=False, cache=cache
    )


POLICY = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db, namespace: shop}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress:
  - from: [{podSelector: {}}]
  - from:
    - podSelector: {matchLabels: {app: web}}
    ports: [{port: 5432}]
"""


def test_policies_read_fast_still_cite_their_rules_exact_lines() -> None:
    from analysis.manifests import exact_rule_source

    tree = load_files({"p.yaml": POLICY})
    [policy] = tree.policies
    assert policy.exact_lines is False  # the fast parser read it
    assert [r.source.line for r in policy.ingress] == [1, 1]  # the document's line only
    assert [exact_rule_source(tree, policy, r).line for r in policy.ingress] == [7, 8]
    # A value the two YAML versions read differently sends the file down the exact path.
    exact = load_files({"p.yaml": POLICY.replace("app: web", "app: 0o17")})  # a string to 1.1
    assert exact.policies[0].exact_lines is True


@settings(max_examples=300, derandomize=True)
@given(st.text(alphabet="-- \t\nab\r", max_size=40))
def test_document_separators_are_the_lines_starting_with_three_dashes_and_a_blank(
    text: str,
) -> None:
    from analysis.yamldoc import _separators

    expected = [m.start() for m in re.finditer(r"^---(?:[ \t]|$)", text, re.MULTILINE)]
    assert _separators(text) == expected


@settings(max_examples=500, derandomize=True)
@given(
    st.lists(
        st.one_of(
            st.text(alphabet="yYesnNoOTtrufalFL~=<0123456789x_.:+-eE \nabT", max_size=12),
            st.sampled_from(["yes", "017", "1:30", "2024-01-02", ".inf", "a\nyes", "yes\nb"]),
            st.integers(),
            st.none(),
        ),
        max_size=6,
    )
)
def test_the_batched_yaml11_screen_equals_the_screen_of_each_value(values: list[object]) -> None:
    from analysis.yamldoc import any_yaml11_differs, yaml11_differs

    assert any_yaml11_differs(values) == any(map(yaml11_differs, values))


def test_label_keys_that_are_not_strings_get_their_json_spelling_as_kubernetes_does() -> None:
    def labels(text: str) -> tuple[tuple[str, str], ...]:
        pod = f"apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n  labels: {text}\nspec: {{}}\n"
        return load_files({"pod.yaml": pod}).workloads[0].labels

    # YAML 1.1 reads these keys as a boolean and as octal 15; sigs.k8s.io/yaml spells them.
    assert labels("{yes: a, 017: b, tier: c}") == (("15", "b"), ("tier", "c"), ("true", "a"))
    assert labels('{"y": n}') == (("y", "n"),)  # the documented choice: y/n stay strings
    for bad in ("{1.5: a}", "{~: a}"):
        with pytest.raises(ManifestError, match=r"key .* must be a string"):
            labels(bad)


# A multi-document file as a Windows checkout writes it (CR LF), the case that was once
# dropped whole: the fast path saw no `---` separator and read one list-shaped document.
TWO_PODS = (
    "# two pods\n"
    "---\n"
    "apiVersion: v1\n"
    "kind: Pod\n"
    "metadata: {name: a, labels: {app: a}}\n"
    "spec:\n"
    "  containers:\n"
    "  - name: c\n"
    "    ports: [{containerPort: 80, name: http}]\n"
    "---\n"
    "\n"
    "apiVersion: v1\n"
    "kind: Pod\n"
    "metadata:\n"
    "  name: b\n"
    "  annotations:\n"
    "    note: |\n"
    "      two\n"
    "      lines\n"
)


@pytest.mark.parametrize("eol", ["\r\n", "\r"], ids=["CRLF", "CR"])
def test_crlf_and_cr_files_read_like_lf_on_both_paths_with_the_same_lines(eol: str) -> None:
    text = TWO_PODS.replace("\n", eol)
    lf_fast, lf_exact = parse_documents_fast(TWO_PODS), parse_documents(TWO_PODS)
    fast, exact = parse_documents_fast(text), parse_documents(text)
    assert lf_fast is not None and fast is not None  # the fast path takes such files too
    assert [(d.data, d.line) for d in fast] == [(d.data, d.line) for d in lf_fast]
    assert [(d.data, d.line) for d in exact] == [(d.data, d.line) for d in lf_exact]
    assert [d.line for d in exact] == [3, 12]
    assert exact[1].data["metadata"]["annotations"]["note"] == "two\nlines\n"
    for how in (False, True):
        objects = parse_file(f"pods-{how}.yaml", text.encode(), exact=how)
        assert [o["metadata"]["name"] for o in objects] == ["a", "b"]
    tree = load_files({"pods.yaml": text.encode()})
    assert [(w.name, w.source.line) for w in tree.workloads] == [("a", 3), ("b", 12)]


@pytest.mark.parametrize("eol", ["\r\n", "\r"], ids=["CRLF", "CR"])
def test_errors_in_crlf_files_name_the_line_an_editor_shows(eol: str) -> None:
    bad = TWO_PODS.replace("name: b", "name: [b").replace("\n", eol)
    with pytest.raises(ManifestError) as err:
        load_files({"pods.yaml": bad})
    lf = TWO_PODS.replace("name: b", "name: [b")
    with pytest.raises(ManifestError) as lf_err:
        load_files({"pods.yaml": lf})
    assert (err.value.line, err.value.message) == (lf_err.value.line, lf_err.value.message)
    assert 12 <= err.value.line <= TWO_PODS.count("\n")


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        # A tab indenting a line: invisible in most editors, so the message says it.
        ("a:\n  b:\n\t  c: 1\n", 3, "a tab at column 1 (YAML indents with spaces only)"),
        ("kind: Pod\nmetadata:\n  name: @web\n", 3, "'@' at column 9"),
    ],
)
def test_a_character_that_cannot_start_a_token_is_named(text: str, line: int, words: str) -> None:
    with pytest.raises(YAMLSyntaxError) as caught:
        parse_documents(text)
    assert caught.value.line == line
    assert str(caught.value).endswith(f"cannot start any token: {words}")
    # The whole file path reports the same line and words.
    with pytest.raises(ManifestError) as loaded:
        load_files({"pod.yaml": text})
    assert (loaded.value.file, loaded.value.line) == ("pod.yaml", line)
    assert words in loaded.value.message


def test_binary_and_timestamp_scalars_read_as_go_yaml_reads_them() -> None:
    # go-yaml: `!!binary` is the string of the decoded bytes (invalid UTF-8 as U+FFFD, as
    # JSON writes it), a timestamp in an untyped value the text as written.
    text = (
        "kind: !!binary TmV0d29ya1BvbGljeQ==\n"
        "odd: !!binary /w==\n"
        "date: 2024-01-01\n"
        "when: !!timestamp 2001-12-14t21:59:43.10-05:00\n"
    )
    [doc] = parse_documents(text)
    assert doc.data == {
        "kind": "NetworkPolicy",
        "odd": "\ufffd",
        "date": "2024-01-01",
        "when": "2001-12-14t21:59:43.10-05:00",
    }


def test_collection_tags_build_the_collection_they_are_written_as() -> None:
    text = "s: !!set {a, b}\no: !!omap [a: 1, b: 2]\np: !!pairs [a: 1]\n"
    [doc] = parse_documents(text)
    assert doc.data == {"s": {"a": None, "b": None}, "o": [{"a": 1}, {"b": 2}], "p": [{"a": 1}]}
    with pytest.raises(YAMLSyntaxError):
        parse_documents("s: !!set x\n")


# Shaped like argoproj/argo-cd manifests/install.yaml (commit 37ee0097,
# Apache-2.0): CRD descriptions are block scalars whose lines start with `* `; the fast
# path declined the whole 2 MB bundle for them (a `*` anywhere was taken for an alias).
APPPROJECT_CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: appprojects.argoproj.io}
spec:
  versions:
  - name: v1alpha1
    schema:
      openAPIV3Schema:
        description: |-
          AppProject provides a logical grouping of applications, providing controls for:
          * where the apps may deploy to (cluster whitelist)
          * what may be deployed (repository whitelist, resource whitelist/blacklist)
          &amp; who can access these applications !important
        type: object
  - name: v1beta1
    description: a & b, x != y, 2 * 3
"""


@pytest.mark.parametrize(
    ("text", "fast"),
    [
        (APPPROJECT_CRD, True),
        ("a: |\n  * item\nb: *x\n", False),  # the alias follows the scalar's content
        ("- a: |\n  b: *x\n", False),  # an empty scalar: `b` is the mapping's next key
        ("a: |2\n   *x\n", False),  # explicit indentation: left to libyaml
        ("a:\n # c: |\n     b: *x\n", False),  # a comment is no header
        ("a: [1, *x]\n", False),
        ("a: {b: !t c}\n", False),
        ("a: &x 1\n", False),
        ("--- &a\nb: 1\n", False),
        ("*x : 1\n", False),
        ("a: >-\n\n   *x\n  *y\n", False),  # less indented than the first line: not content
    ],
)
def test_fast_path_tells_text_from_anchors_aliases_and_tags(text: str, fast: bool) -> None:
    got = parse_documents_fast(text)
    assert (got is not None) == fast
    if got is not None:
        assert [d.data for d in got] == [d.data for d in parse_documents(text)]
