"""Escaping of untrusted text for GitHub-flavoured Markdown and mermaid: the one escaper.

It lives in ``analysis`` because the engine's own Markdown reports (``formats``,
``check_report``, ``decision``, ``traffic``, ``exposure_report``) need it as much as the
bot's comments (``bot/render``), and a layer may only import downwards.

Names, labels, file paths and loader messages come from the pull request, so a hostile
manifest could otherwise mention people (``@org/team``), reference issues (``#1``), inject
HTML, or break a table. Invariants of every function here:

- the result holds no raw ``<``, ``>`` or ``&`` that GitHub would read as HTML;
- it has no line break, so it cannot end a table row, a list item or a code fence, and
  no bidirectional override, so it displays in the order it is written;
- ``@`` and ``#`` never start a mention or a reference;
- every ``|`` is escaped, so the text can stand in a table cell (``code`` needs
  ``cell=True`` for that, since a code span shows its backslashes elsewhere);
- inside an HTML block such as ``<summary>`` GitHub reads no Markdown at all: there
  ``html_text`` and ``html_code`` apply, never ``text`` or ``code``.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from urllib.parse import quote

# U+2060 WORD JOINER: invisible, and GitHub's mention and reference filters need a login
# or number right after the sign.
_JOINER = "\u2060"
# Line breaks and controls, and the bidirectional overrides that could make a file name
# display as something else.
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# What Markdown reads anywhere in a line: emphasis, code, links and images (which need
# "[" or "]"), strikethrough, table cells, escapes. "&<>" are entities by then.
_INLINE = re.compile(r"[\\`*_\[\]|~]")
# What it reads only at the start of a line or of a list item's content: list markers,
# setext underlines ("-", "+", "="), ordered list items ("1." "1)").
_LEADING = re.compile(r"^(?:[-+=]|\d{1,9}(?=[.)]))")
# GFM's autolink extension links "www." and "http://" in plain text.
_AUTOLINK = re.compile(r"(?i)(?<=www)\.|:(?=//)")
_BACKTICKS = re.compile(r"`+")
_URL_UNSAFE = re.compile(r"[^A-Za-z0-9\-._~:/?#@!$&*+,;=%]")
ELLIPSIS = "…"


def one_line(text: str) -> str:
    return _CONTROL.sub(" ", text)


def shorten(text: str, limit: int) -> str:
    """At most ``limit`` characters, ending in an ellipsis when cut."""
    return text if len(text) <= limit else text[: max(0, limit - 1)] + ELLIPSIS


def text(value: object, *, mentions: bool = False) -> str:
    """Plain text: shown as written, wherever inline Markdown may stand (a sentence, a
    table cell, a list item, the start of a line), with nothing of it read as Markdown or
    HTML. Only what could mean something is escaped, so the source stays readable.

    ``mentions=True`` keeps ``@login`` live, for text the app itself built from validated
    logins (the approvers asked to review).
    """
    # Quotes only matter inside HTML attributes, which this text never is.
    out = html.escape(one_line(str(value)), quote=False)
    out = _INLINE.sub(lambda m: "\\" + m.group(0), out)
    out = _AUTOLINK.sub(lambda m: "\\" + m.group(0), out)
    leading = _LEADING.match(out)
    if leading:
        # "\-" and "1\." are the escapes CommonMark gives these; a digit cannot be escaped.
        end = leading.end()
        out = "\\" + out if not out[0].isdigit() else out[:end] + "\\" + out[end:]
    if not mentions:
        out = out.replace("@", "@" + _JOINER)
    # The joiner also keeps a "#" at the start of a line from making a heading.
    out = out.replace("#", "#" + _JOINER)
    # White space at either end would be stripped, make a code block (four spaces at the
    # start) or keep "**" around the text from being bold: as character references it is
    # none of that.
    stripped = out.strip()
    if stripped != out:
        start = len(out) - len(out.lstrip())
        end = start + len(stripped) if stripped else len(out)
        out = _references(out[:start]) + stripped + _references(out[end:])
    return out


def _references(spaces: str) -> str:
    return "".join(f"&#{ord(c)};" for c in spaces)


def code(value: object, *, cell: bool = False) -> str:
    """An inline code span: shown verbatim, never a mention, link or HTML."""
    content = one_line(str(value))
    longest = max((len(run) for run in _BACKTICKS.findall(content)), default=0)
    fence = "`" * (longest + 1)
    # A span that starts or ends with a backtick or a space gets one padding space a side:
    # the renderer strips exactly one a side when both are there (and none from a span of
    # spaces only), so what is shown is the content itself, its own edge spaces included.
    # An empty span cannot be written at all; it becomes two spaces.
    if not content or (content.strip(" ") and (content[0] in "` " or content[-1] in "` ")):
        content = f" {content} "
    if cell:
        # GFM splits table cells before parsing code spans, and "\|" is the one escape it
        # honours inside them.
        content = content.replace("|", "\\|")
    return f"{fence}{content}{fence}"


def html_text(value: object) -> str:
    """Text for inside an HTML block (``<summary>``), where GitHub reads no Markdown.

    Backslash escapes would show there, so only ``&``, ``<`` and ``>`` become entities;
    mentions and references are broken as in ``text``.
    """
    out = html.escape(one_line(str(value)), quote=False)
    return out.replace("@", "@" + _JOINER).replace("#", "#" + _JOINER)


def html_code(value: object) -> str:
    """``<code>`` for inside an HTML block: a Markdown code span would show its backticks."""
    return f"<code>{html_text(value)}</code>"


def code_block(lines: Sequence[str]) -> list[str]:
    """A fenced code block of ``lines``: its fence is longer than any backtick run in them."""
    shown = [one_line(line) for line in lines]
    longest = max((len(run) for line in shown for run in _BACKTICKS.findall(line)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence, *shown, fence]


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
