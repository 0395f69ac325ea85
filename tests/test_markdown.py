"""The one Markdown escaper (analysis/markdown.py), against GitHub's own renderer.

cmarkgfm binds GitHub's fork of cmark with the extensions github.com enables (tables,
autolinks, tag filter, strikethrough, task lists). The property: whatever text a pull
request puts in a name, path or message, the escaped Markdown renders as that very text —
inline, in a table cell and in a code span — with no element of its own. The only
differences allowed are the ones the escaper documents: line breaks and controls become
spaces, and an invisible word joiner follows ``@`` and ``#`` so that nothing pings or
links an issue.
"""

from __future__ import annotations

import html.parser

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.internal.charmap import CategoryName

from analysis import markdown

cmarkgfm = pytest.importorskip("cmarkgfm")
from cmarkgfm.cmark import Options  # type: ignore[import-untyped]  # noqa: E402

JOINER = "\u2060"


class _Rendered(html.parser.HTMLParser):
    """The tags and the text of rendered HTML, and the text inside <code> apart."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.text: list[str] = []
        self.code: list[str] = []
        self._in_code = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self._in_code += tag == "code"

    def handle_endtag(self, tag: str) -> None:
        self._in_code -= tag == "code"

    def handle_data(self, data: str) -> None:
        (self.code if self._in_code else self.text).append(data)


def render(source: str) -> _Rendered:
    # UNSAFE keeps raw HTML in the output: any HTML the escaper let through shows up.
    out = _Rendered()
    out.feed(cmarkgfm.github_flavored_markdown_to_html(source, options=Options.CMARK_OPT_UNSAFE))
    return out


def shown(raw: str) -> str:
    """What a reader must see of ``raw``: one line, the joiners aside."""
    return markdown.one_line(raw)


SURROGATES: tuple[CategoryName, ...] = ("Cs",)

# Text as YAML can carry it (no lone surrogates), weighted towards what Markdown reads.
hostile = st.lists(
    st.one_of(
        st.sampled_from(
            [
                *"\\`*_{}[]()#+-.!|~:=^<>&@ \t\n\r\"'/;",
                "&amp;",
                "&#64;",
                "<b>",
                "www.",
                "http://",
                "@org/team",
                "#1",
                "\u2028",
                "\u202e",
                "\u3000",
                "    ",
            ]
        ),
        st.characters(exclude_categories=SURROGATES),
    ),
    max_size=20,
).map("".join)

TABLE_TAGS = ["table", "thead", "tr", "th", "tbody", "tr", "td"]


# Where the comment and the reports put text: mid-sentence, alone on a line, as a list
# item, in bold, after a paragraph line (where "=" or "-" alone would underline it).
INLINE_CONTEXTS = {
    "x{}x": "x{}x",
    "{}": "{}",
    "- {}": "{}",
    "1. {}": "{}",
    "**{}**": "{}",
    "x\n{}": "x\n{}",
    "- x\n  {}": "x\n{}",
}


@given(hostile, st.sampled_from(sorted(INLINE_CONTEXTS)))
def test_inline_text_renders_as_itself(raw: str, context: str) -> None:
    out = render(context.format(markdown.text(raw)))
    literal = INLINE_CONTEXTS[context].format(shown(raw))
    if not raw.strip() and context != "x{}x":
        return  # blank text alone shows nothing (or "****" a rule): checked in a sentence
    assert set(out.tags) <= {"p", "ul", "ol", "li", "strong"}
    assert out.tags.count("li") <= 1 and out.tags.count("strong") == context.count("**") // 2
    assert "".join(out.text).strip("\n").replace(JOINER, "") == literal.replace(JOINER, "")


@given(hostile)
def test_table_cell_text_renders_as_itself(raw: str) -> None:
    out = render(f"| h | i |\n| --- | --- |\n| x{markdown.text(raw)}x | z |\n")
    assert out.tags == [*TABLE_TAGS[:4], "th", *TABLE_TAGS[4:], "td"]
    cells = [t for t in out.text if t.strip("\n")]
    assert [c.replace(JOINER, "") for c in cells] == [
        "h",
        "i",
        f"x{shown(raw)}x".replace(JOINER, ""),
        "z",
    ]


@given(hostile, st.booleans())
def test_code_spans_render_as_themselves(raw: str, in_table: bool) -> None:
    if in_table:
        out = render(f"| h |\n| --- |\n| {markdown.code(raw, cell=True)} |\n")
    else:
        out = render(f"x {markdown.code(raw)} x")
    assert out.tags.count("code") == 1
    assert set(out.tags) <= {"p", "code", *TABLE_TAGS}
    # An empty span cannot be written: it shows as two spaces.
    assert "".join(out.code) == (shown(raw) or "  ")


@given(hostile)
def test_escaped_text_never_mentions_or_references(raw: str) -> None:
    # GitHub links @login, @org/team and #123 in text nodes when a word character
    # follows the sign; the joiner is not one.
    seen = "".join(render(f"x {markdown.text(raw)} x").text)
    for i, c in enumerate(seen):
        if c in "@#":
            assert seen[i + 1 : i + 2] in ("", JOINER), seen


def test_mentions_stay_live_when_asked() -> None:
    assert markdown.text("@alice and @acme/netsec", mentions=True) == "@alice and @acme/netsec"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("plain", "`plain`"),
        ("a`b", "``a`b``"),
        ("``x``", "``` ``x`` ```"),
        ("`", "`` ` ``"),
        ("", "`  `"),
        ("a\nb", "`a b`"),
        (" a ", "`  a  `"),
        ("   ", "`   `"),
    ],
)
def test_code_spans(raw: str, expected: str) -> None:
    assert markdown.code(raw) == expected


def test_controls_and_bidi_overrides_become_spaces() -> None:
    assert markdown.code("a\u202eb\u2066c\rd") == "`a b c d`"
    assert markdown.one_line("x\u2028y\x00z") == "x y z"


def test_links_encode_hostile_targets() -> None:
    assert markdown.link("x", "https://a/b c)d<e>") == "[x](https://a/b%20c%29d%3Ce%3E)"
    assert markdown.path_url("a b/c#d?.yaml") == "a%20b/c%23d%3F.yaml"


@given(st.lists(hostile, min_size=1, max_size=4))
def test_code_blocks_render_as_themselves(lines: list[str]) -> None:
    out = render("\n".join(["x", "", *markdown.code_block(lines), "", "y"]))
    assert out.tags == ["p", "pre", "code", "p"]
    assert "".join(out.code) == "".join(shown(line) + "\n" for line in lines)
