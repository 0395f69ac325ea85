"""Fitting a body into a size limit: expanded, collapsed, lists cut shorter, summarized,
and as a last resort truncated. Sizes are counted in UTF-16 code units, which is never
less than characters however GitHub counts them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot.render.outputs import ALL_ROWS, CUTS


@dataclass(frozen=True, slots=True)
class Level:
    collapse: bool = False
    limit: int | None = None  # rows per list; None: all
    summary: bool = False  # no lists at all


def size(text: str) -> int:
    """Length in UTF-16 code units: an upper bound of every count GitHub might use."""
    return len(text.encode("utf-16-le")) // 2


def fit(
    render_at: Callable[[Level], str],
    limit: int,
    *,
    rows: int,
    expanded_limit: int | None = None,
    can_summarize: bool = False,
) -> str:
    """The first rendering that fits: expanded (while short), collapsed, lists cut ever
    shorter, a summary, and as a last resort a truncation.

    ``rows`` is the length of the longest list. A body grows at least in proportion to
    the rows it shows, so a cut that cannot fit by that estimate is not even rendered.
    """
    out = ""
    shown, produced = rows, 0
    if rows <= ALL_ROWS:
        if expanded_limit is not None:
            out = render_at(Level())
            if size(out) <= min(expanded_limit, limit):
                return out
        out = render_at(Level(collapse=True))
        produced = size(out)
        if produced <= limit:
            return out
    for cut in CUTS:
        if cut >= rows or (produced and cut * produced > shown * limit):
            continue
        out = render_at(Level(collapse=True, limit=cut))
        shown, produced = cut, size(out)
        if produced <= limit:
            return out
    if can_summarize:
        out = render_at(Level(collapse=True, limit=0, summary=True))
    return truncate(out, limit)


def truncate(text: str, limit: int) -> str:
    if size(text) <= limit:
        return text
    suffix = "\n\n… (cut to GitHub's size limit)\n"
    budget = limit - size(suffix)
    text = text[:budget]
    while size(text) > budget:
        text = text[: len(text) - (size(text) - budget)]
    return text + suffix
