"""Which lines of a pull request's files GitHub accepts review comments on.

A review comment with ``line`` and ``side: RIGHT`` must point at a line that the PR's diff
shows on the right: an added line or a context line inside a hunk. GitHub answers 422 for
any other line, so the bot comments on those lines of the file as a whole instead.
``patch`` is the unified diff GitHub gives for each entry of ``GET .../pulls/{n}/files``
(absent for binary or very large files).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.inputs.files import blob_sha

_HUNK = re.compile(r"@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


def diff_lines(patch: str) -> tuple[frozenset[int], frozenset[int]]:
    """The (left, right) line numbers a unified diff shows.

    Left: removed and context lines, numbered in the base file; right: added and context
    lines, numbered in the head file.
    """
    left: set[int] = set()
    right: set[int] = set()
    old = new = 0
    old_left = new_left = 0
    for text in patch.split("\n"):
        header = _HUNK.match(text)
        if header is not None:
            old, new = int(header.group(1)), int(header.group(3))
            old_left = int(header.group(2)) if header.group(2) is not None else 1
            new_left = int(header.group(4)) if header.group(4) is not None else 1
            continue
        if text.startswith("\\"):  # "\ No newline at end of file"
            continue
        if text.startswith("-") and old_left > 0:
            left.add(old)
            old, old_left = old + 1, old_left - 1
        elif text.startswith("+") and new_left > 0:
            right.add(new)
            new, new_left = new + 1, new_left - 1
        elif old_left > 0 and new_left > 0:
            # Context; GitHub may trim the leading space of an empty context line.
            left.add(old)
            right.add(new)
            old, old_left = old + 1, old_left - 1
            new, new_left = new + 1, new_left - 1
    return frozenset(left), frozenset(right)


@dataclass(frozen=True, slots=True)
class PullFiles:
    """The files of a pull request and the lines of each its diff shows, per side."""

    lines: Mapping[tuple[str, str], frozenset[int]]  # (path, "LEFT"/"RIGHT") -> lines
    head_blobs: Mapping[str, str] = dataclasses.field(default_factory=dict)  # path -> blob sha

    @classmethod
    def from_api(cls, files: Iterable[Mapping[str, Any]]) -> PullFiles:
        out: dict[tuple[str, str], frozenset[int]] = {}
        blobs: dict[str, str] = {}
        for entry in files:
            if entry.get("sha") and entry.get("status") != "removed":
                blobs[str(entry["filename"])] = str(entry["sha"])
            patch = entry.get("patch")
            left, right = diff_lines(patch) if patch else (frozenset(), frozenset())
            path = str(entry["filename"])
            out[(path, "LEFT")] = left
            if entry.get("status") != "removed":
                out[(path, "RIGHT")] = right
        return cls(out, blobs)

    def without_lines_in(self, paths: Iterable[str]) -> PullFiles:
        """The same files, but no line of ``paths`` counts as shown: comments there go on
        the file as a whole (used where the analysed lines may not be the head's)."""
        drop = set(paths)
        lines = {
            key: (frozenset() if key[0] in drop else value) for key, value in self.lines.items()
        }
        return PullFiles(lines, self.head_blobs)

    def in_diff(self, path: str, line: int, side: str = "RIGHT") -> bool:
        return line in self.lines.get((path, side), frozenset())

    def changed(self, path: str, side: str = "RIGHT") -> bool:
        """Whether the PR touches the file on that side (a file-level comment may go there)."""
        return (path, side) in self.lines

    def can_comment(self, path: str, line: int, side: str) -> bool:
        """On the line itself, or (head side only) on the file as a whole."""
        return self.in_diff(path, line, side) or (side == "RIGHT" and self.changed(path))


def shifted_files(analysed: Mapping[str, bytes], head_blobs: Mapping[str, str]) -> list[str]:
    """Files whose analysed content (the test merge commit's) differs from the head's, by
    git blob id: their lines may not be the head's, so comments go on the whole file."""
    return [
        path
        for path, blob in head_blobs.items()
        if path in analysed and blob_sha(analysed[path]) != blob
    ]
