"""Escaping of untrusted text for GitHub-flavoured Markdown and mermaid.

Names, labels, file paths and loader messages come from the pull request, so a hostile
manifest could otherwise mention people (``@org/team``), reference issues (``#1``), inject
HTML, or break a table. Invariants of every function here:

- the result holds no raw ``<``, ``>`` or ``&`` that GitHub would read as HTML;
- it has no line break, so it cannot end a table row, a list item or a code fence, and
  no bidirectional override, so it displays in the order it is written;
- ``@`` and ``#`` never start a mention or a reference;
- every ``|`` is escaped, so the text can stand in a table cell (``code`` needs
  ``cell=True`` for that, since a code span shows its backslashes elsewhere).
"""

from __future__ import annotations

import html
import re
from urllib.parse import quote

# U+2060 WORD JOINER: invisible, and GitHub's mention and reference filters need a login
# or number right after the sign.
_JOINER = "\u2060"
# Line breaks and controls, and the bidirectional overrides that could make a file name
# display as something else.
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# What Markdown gives a meaning to ("." and "-" start lists, ":" autolinks); "&<>" are
# already entities when this applies.
_MD_PUNCTUATION = re.compile(r"([\\`*_{}\[\]()#+\-.!|~:=^])")
_BACKTICKS = re.compile(r"`+")
_URL_UNSAFE = re.compile(r"[^A-Za-z0-9\-._~:/?#@!$&*+,;=%]")
ELLIPSIS = "…"


def one_line(text: str) -> str:
    return _CONTROL.sub(" ", text)


def shorten(text: str, limit: int) -> str:
    """At most ``limit`` characters, ending in an ellipsis when cut."""
    return text if len(text) <= limit else text[: max(0, limit - 1)] + ELLIPSIS


def text(value: object, *, mentions: bool = False) -> str:
    """Plain text: every Markdown and HTML character escaped.

    ``mentions=True`` keeps ``@login`` live, for text the app itself built from validated
    logins (the approvers asked to review).
    """
    # Quotes only matter inside HTML attributes, which this text never is.
    out = html.escape(one_line(str(value)), quote=False)
    # html.escape has made &, <, > into entities; escape the rest of the punctuation, and
    # leave the entities' own "&" and ";" alone.
    out = re.sub(
        r"(&(?:amp|lt|gt);)|" + _MD_PUNCTUATION.pattern,
        lambda m: m.group(1) or "\\" + m.group(2),
        out,
    )
    if not mentions:
        out = out.replace("@", "@" + _JOINER)
    return out.replace("#", "#" + _JOINER)


def code(value: object, *, cell: bool = False) -> str:
    """An inline code span: shown verbatim, never a mention, link or HTML."""
    content = one_line(str(value))
    longest = max((len(run) for run in _BACKTICKS.findall(content)), default=0)
    fence = "`" * (longest + 1)
    # A span that starts or ends with a backtick (or is blank) needs padding spaces, which
    # the renderer strips again.
    if content.startswith("`") or content.endswith("`") or not content.strip():
        content = f" {content} "
    if cell:
        # GFM splits table cells before parsing code spans, and "\|" is the one escape it
        # honours inside them.
        content = content.replace("|", "\\|")
    return f"{fence}{content}{fence}"


def url(value: str) -> str:
    """A URL safe in ``[label](url)``: no spaces, parentheses, angle brackets or quotes."""
    return _URL_UNSAFE.sub(lambda m: quote(m.group(0), safe=""), one_line(value))


def path_url(path: str) -> str:
    """A repository file path as a URL path (every segment percent-encoded)."""
    return quote(one_line(path), safe="/")


def link(label_markdown: str, target: str) -> str:
    """``[label](target)``; the label must already be escaped Markdown."""
    return f"[{label_markdown}]({url(target)})"


def mermaid_label(value: object, limit: int = 80) -> str:
    """A quoted mermaid label: everything but plain characters as ``#code;`` entities."""
    shown = shorten(one_line(str(value)), limit)
    return (
        '"'
        + "".join(
            c if c.isascii() and (c.isalnum() or c in " ./:,_-") else f"#{ord(c)};" for c in shown
        )
        + '"'
    )


def html_comment_safe(value: str) -> str:
    """Text for inside ``<!-- -->``: percent-encoded, so it can never close the comment."""
    return quote(one_line(value), safe="/:@+,=")
