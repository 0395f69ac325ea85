"""Calico's selector language: a table of cases from Calico's selector reference and
parser, and a property test against selectors generated together with their meaning.

The table's facts come from the Calico documentation (docs.tigera.io, "Selectors", and
the `selector` field of the NetworkPolicy reference) and from the behaviour of Calico's
tokenizer and parser (projectcalico/calico libcalico-go/lib/selector, Apache-2.0): what
parses, what is refused, and what matches.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from analysis.calicoselector import LabelIndex, SelectorError, matches, parse
from tests.strategies import examples

Labels = Mapping[str, str]

# (selector, labels, matches?)
MATCHES: list[tuple[str, dict[str, str], bool]] = [
    # The reference's table of operators.
    ("all()", {}, True),
    ("!all()", {"a": "b"}, False),
    ("k == 'v'", {"k": "v"}, True),
    ("k == 'v'", {"k": "w"}, False),
    ("k == 'v'", {}, False),
    ("k != 'v'", {}, True),  # "without label k or with a value not equal to v"
    ("k != 'v'", {"k": "w"}, True),
    ("k != 'v'", {"k": "v"}, False),
    ("has(k)", {"k": ""}, True),
    ("has(k)", {"j": "k"}, False),
    ("!has(k)", {}, True),
    ("k in { 'v1', 'v2' }", {"k": "v2"}, True),
    ("k in { 'v1', 'v2' }", {}, False),
    ("k not in { 'v1', 'v2' }", {}, True),
    ("k not in { 'v1', 'v2' }", {"k": "v1"}, False),
    ("k not in { 'v1', 'v2' }", {"k": "v3"}, True),
    ("k contains 's'", {"k": "ass"}, True),
    ("k contains 's'", {}, False),
    ("k starts with 's'", {"k": "sun"}, True),
    ("k starts with 's'", {"k": "us"}, False),
    ("k ends with 's'", {"k": "us"}, True),
    ("k ends with 's'", {"k": "sun"}, False),
    ("k in {}", {"k": ""}, False),
    ("k not in {}", {"k": ""}, True),
    # The reference's precedence example: ((!has(my-label)) || ((my-label starts with
    # 'prod') && (role in {...}))).
    (
        "! has(my-label) || my-label starts with 'prod' && role in {'frontend','business'}",
        {},
        True,
    ),
    (
        "! has(my-label) || my-label starts with 'prod' && role in {'frontend','business'}",
        {"my-label": "production", "role": "business"},
        True,
    ),
    (
        "! has(my-label) || my-label starts with 'prod' && role in {'frontend','business'}",
        {"my-label": "production", "role": "db"},
        False,
    ),
    (
        "! has(my-label) || my-label starts with 'prod' && role in {'frontend','business'}",
        {"my-label": "dev", "role": "business"},
        False,
    ),
    # The NetworkPolicy reference's examples (made-up labels).
    (
        'type == "webserver" && deployment == "prod"',
        {"type": "webserver", "deployment": "prod"},
        True,
    ),
    ('type == "webserver" && deployment == "prod"', {"type": "webserver"}, False),
    ('type in {"frontend", "backend"}', {"type": "backend"}, True),
    ('deployment != "dev"', {"deployment": "prod"}, True),
    ("! has(label_name)", {"label_name": "x"}, False),
    # Parser corner cases: repeated negation, grouping, spelling.
    ("!!has(a)", {"a": "1"}, True),
    ("!(a == '1' || b == '2')", {"b": "2"}, False),
    ("(a == '1' || b == '2') && c == '3'", {"b": "2", "c": "3"}, True),
    ("a == '1' || b == '2' && c == '3'", {"a": "1"}, True),  # && binds tighter
    ("a notin {'x'}", {"a": "y"}, True),  # Calico accepts the two words together
    ("a startswith 'x'", {"a": "xy"}, True),
    ("a endswith 'y'", {"a": "xy"}, True),
    ("a in {'x',}", {"a": "x"}, True),  # a trailing comma
    ("", {"anything": "at all"}, True),  # the empty selector is all()
    ("  \t ", {}, True),
    ('a == "it\'s"', {"a": "it's"}, True),  # the other quote inside a string
    ("projectcalico.org/namespace == 'prod'", {"projectcalico.org/namespace": "prod"}, True),
    ("has( a )", {"a": ""}, True),
    ("global()", {}, True),  # as a node it matches; its scope is the namespaceSelector's
    ("all == 'x'", {"all": "x"}, True),  # all/has are labels unless followed by "("
]

REFUSED = [
    "a",  # a label needs an operator
    "a = 'b'",
    "a == b",  # values must be quoted
    "a == 'b",  # unterminated
    "a in {'b' 'c'}",
    "a in 'b'",
    "(a == 'b'",
    "a == 'b')",
    "has (a)",  # "has(" with no space
    "all ()",
    "has()",
    "a & b",
    "a | b",
    "a == 'b' &&",
    "a == 'b'\n",  # only spaces and tabs are whitespace
    "a ~= 'b'",
    "x ends withy 'a'",
    "a == 'b' c == 'd'",
    "!",
    "a" * 513 + " == 'x'",  # labels are at most 512 characters
]


@pytest.mark.parametrize(("text", "labels", "expected"), MATCHES)
def test_selector_table(text: str, labels: dict[str, str], expected: bool) -> None:
    node = parse(text)
    assert matches(node, labels) is expected
    assert matches(parse(str(node)), labels) is expected  # rendering keeps the meaning
    index = LabelIndex([(0, labels), (1, {"unrelated": "x"})])
    assert (index.bits(node) & 1 == 1) is expected


@pytest.mark.parametrize("text", REFUSED)
def test_selector_refused(text: str) -> None:
    with pytest.raises(SelectorError):
        parse(text)


# --- generated selectors with their meaning ---------------------------------------------
# Each strategy draws the selector's text together with a predicate written here, from
# the reference's definitions, so the parser and evaluator are checked against them.

KEYS = ("a", "b", "x.io/c")
VALUES = ("", "p", "pq", "qp", "q")

Meaning = Callable[[Labels], bool]
Generated = tuple[str, Meaning]


def _quote(draw: st.DrawFn, value: str) -> str:
    return f'"{value}"' if draw(st.booleans()) else f"'{value}'"


@st.composite
def _atoms(draw: st.DrawFn) -> Generated:
    key = draw(st.sampled_from(KEYS))
    value = draw(st.sampled_from(VALUES))
    kind = draw(
        st.sampled_from(("==", "!=", "has", "in", "not in", "contains", "starts", "ends", "all"))
    )
    pad = draw(st.sampled_from(("", " ", "  ", "\t")))
    if kind == "all":
        return "all()", lambda labels: True
    if kind == "has":
        return f"has({pad}{key}{pad})", lambda labels: key in labels
    if kind in ("in", "not in"):
        values = draw(st.lists(st.sampled_from(VALUES), max_size=3))
        body = ", ".join(_quote(draw, v) for v in values)
        op = kind if draw(st.booleans()) else kind.replace(" ", "")
        text = f"{key} {op} {{{pad}{body}{pad}}}"
        if kind == "in":
            return text, lambda labels: key in labels and labels[key] in values
        return text, lambda labels: key not in labels or labels[key] not in values
    quoted = _quote(draw, value)
    if kind == "==":
        return f"{key}{pad}=={pad}{quoted}", lambda labels: labels.get(key) == value
    if kind == "!=":
        return f"{key}{pad}!={pad}{quoted}", lambda labels: labels.get(key) != value
    if kind == "contains":
        return f"{key} contains {quoted}", lambda labels: key in labels and value in labels[key]
    word = "starts with" if kind == "starts" else "ends with"
    if kind == "starts":
        return (
            f"{key} {word} {quoted}",
            lambda labels: key in labels and labels[key].startswith(value),
        )
    return f"{key} {word} {quoted}", lambda labels: key in labels and labels[key].endswith(value)


def _combine(children: st.SearchStrategy[Generated]) -> st.SearchStrategy[Generated]:
    def negate(child: Generated) -> Generated:
        text, meaning = child
        return f"!({text})", lambda labels: not meaning(labels)

    def both(pair: tuple[Generated, Generated]) -> Generated:
        (t1, m1), (t2, m2) = pair
        return f"({t1}) && ({t2})", lambda labels: m1(labels) and m2(labels)

    def either(pair: tuple[Generated, Generated]) -> Generated:
        (t1, m1), (t2, m2) = pair
        return f"({t1}) || ({t2})", lambda labels: m1(labels) or m2(labels)

    return st.one_of(
        children.map(negate),
        st.tuples(children, children).map(both),
        st.tuples(children, children).map(either),
    )


SELECTORS = st.recursive(_atoms(), _combine, max_leaves=8)
LABELS = st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES), max_size=3)


@settings(max_examples=400, deadline=None)
@given(SELECTORS, st.lists(LABELS, min_size=1, max_size=6))
def test_generated_selectors(generated: Generated, items: list[dict[str, str]]) -> None:
    text, meaning = generated
    node = parse(text)
    index = LabelIndex(enumerate(items))
    bits = index.bits(node)
    for i, labels in enumerate(items):
        assert matches(node, labels) is meaning(labels), (text, labels)
        assert (bits >> i & 1 == 1) is meaning(labels), (text, labels)
    assert parse(str(node)) == node or all(
        matches(parse(str(node)), labels) is meaning(labels) for labels in items
    )


# --- fuzzing: any text parses or is refused with a SelectorError ------------------------
# Seeds: hand-written adversarial texts around the tokenizer's and parser's edges (deep
# nesting and negation, huge sets, stray quotes, operators without operands, non-ASCII
# labels, control characters inside strings, whitespace Calico does not accept).

ADVERSARIAL = [
    "(" * 5000 + "all()" + ")" * 5000,  # nesting beyond the bound: refused, not a crash
    "!" * 20000 + "all()",
    "a in {" + ",".join(f"'{i}'" for i in range(5000)) + "}",
    "a == 'x' && " * 2000 + "all()",
    "a == '\x00'",
    "a == '''",
    'a == "\'"',
    "'x' == a",
    "has(a) has(b)",
    "()",
    "all()all()",
    "global() && !all()",
    "\u00e9 == 'x'",
    "a == '\u00e9'",
    "a !in {'x'}",
    "a in {,}",
    "a in {'x' , }",
    "has(/)",
    "has(a",
    "!(",
    "a == 'b' )(",
    "a not  in {'x'}",
    "a ==\v'b'",
    "a == 'x'" + " " * 10000,
]

TOKENS = st.sampled_from(
    [
        "a",
        "x.io/c",
        " ",
        "\t",
        "'",
        '"',
        "'p'",
        '"q"',
        "(",
        ")",
        "{",
        "}",
        ",",
        "!",
        "==",
        "!=",
        "&&",
        "||",
        "in",
        "not",
        "contains",
        "starts",
        "ends",
        "with",
        "has(",
        "has(a)",
        "all()",
        "global()",
        "\n",
        "\u00e9",
        "=",
    ]
)


def _seeded(test: Callable[[str], None]) -> Callable[[str], None]:
    for text in reversed(ADVERSARIAL):
        test = example(text)(test)
    return test


@settings(max_examples=examples(300), deadline=None)
@_seeded
@given(st.lists(TOKENS, max_size=14).map("".join) | st.text(max_size=30))
def test_any_text_parses_or_is_refused_clearly(text: str) -> None:
    try:
        node = parse(text)
    except SelectorError as e:
        assert str(e)  # says what is wrong
        return
    again = parse(str(node))  # its rendering parses back to the same meaning
    for labels in ({}, {"a": "p"}, {"a": "q", "x.io/c": ""}, {"a": "", "x.io/c": "pq"}):
        assert matches(again, labels) is matches(node, labels), (text, labels)
