"""How reachdiff counts things in what it writes: ``1 path``, ``2 paths``, never a
plural in parentheses. One helper for the engine's texts (CLI output, check texts, errors) and
the bot's (comments, check runs, audit records); the HTML map's script has its own
``counted``, the same rule in JavaScript (templates/map.html.j2)."""

from __future__ import annotations

__all__ = ["counted"]


def counted(n: int, word: str, plural: str | None = None) -> str:
    """``1 approval``, ``2 approvals``, ``0 policies`` (with ``plural="policies"``)."""
    return f"{n} {word}" if n == 1 else f"{n} {plural or word + 's'}"
