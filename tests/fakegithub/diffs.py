"""Git-like comparisons of two file snapshots, shaped the way GitHub reports them.

GitHub's `patch` fields are git's unified diff hunks (3 lines of context, no `---`/`+++`
header), and a review comment can only be placed on a line that appears in one of those
hunks. Both facts are reproduced here so that the fake rejects what GitHub rejects.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

CONTEXT_LINES = 3
NO_NEWLINE = "\\ No newline at end of file"


def blob_sha(data: bytes) -> str:
    """The git object id of a blob, as GitHub reports it in `sha` fields."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def is_binary(data: bytes) -> bool:
    # git's heuristic: a NUL byte in the first 8000 bytes.
    return b"\0" in data[:8000]


def _lines(data: bytes) -> list[str]:
    # Split on "\n" only, as git does (str.splitlines would also split on \r, \x0c...).
    return re.findall(r"[^\n]*\n|[^\n]+$", data.decode("utf-8", errors="replace"))


@dataclass(frozen=True, slots=True)
class PatchLine:
    kind: str  # " ", "-", "+"
    old_no: int | None  # 1-based line number in the old file
    new_no: int | None  # 1-based line number in the new file
    text: str  # without the trailing newline

    def render(self, missing_newline: bool) -> list[str]:
        out = [self.kind + self.text]
        if missing_newline:
            out.append(NO_NEWLINE)
        return out


@dataclass(frozen=True, slots=True)
class Hunk:
    header: str
    lines: tuple[tuple[PatchLine, bool], ...]  # (line, lacks trailing newline)

    def render(self) -> list[str]:
        out = [self.header]
        for line, missing in self.lines:
            out += line.render(missing)
        return out


@dataclass(frozen=True, slots=True)
class Patch:
    hunks: tuple[Hunk, ...] = ()
    additions: int = 0
    deletions: int = 0
    binary: bool = False

    @property
    def text(self) -> str | None:
        if self.binary or not self.hunks:
            return None
        return "\n".join(line for hunk in self.hunks for line in hunk.render())

    def commentable(self, side: str) -> frozenset[int]:
        """Line numbers a review comment may target on `side` (RIGHT: new file, LEFT: old)."""
        out: set[int] = set()
        for hunk in self.hunks:
            for line, _ in hunk.lines:
                if side == "RIGHT" and line.new_no is not None:
                    out.add(line.new_no)
                elif side == "LEFT" and line.old_no is not None:
                    out.add(line.old_no)
        return frozenset(out)

    def hunk_of(self, line_no: int, side: str) -> int | None:
        """Index of the hunk holding `line_no` on `side`, if any."""
        for index, hunk in enumerate(self.hunks):
            for line, _ in hunk.lines:
                if (line.new_no if side == "RIGHT" else line.old_no) == line_no:
                    return index
        return None

    def locate(self, line_no: int, side: str) -> tuple[int, str] | None:
        """(diff position, diff_hunk up to that line) of a commentable line, like GitHub."""
        position = 0
        for index, hunk in enumerate(self.hunks):
            if index:
                position += 1  # later hunk headers count as positions
            rendered = [hunk.header]
            for line, missing in hunk.lines:
                position += 1
                rendered += line.render(missing)
                number = line.new_no if side == "RIGHT" else line.old_no
                if number == line_no:
                    return position, "\n".join(rendered)
        return None


def at_position(patch: Patch, position: int) -> tuple[int, str] | None:
    """(line, side) at a legacy diff `position` (1 = the line below the first @@ header)."""
    current = 0
    for index, hunk in enumerate(patch.hunks):
        if index:
            current += 1
        for line, _ in hunk.lines:
            current += 1
            if current == position:
                if line.new_no is not None:
                    return line.new_no, "RIGHT"
                assert line.old_no is not None
                return line.old_no, "LEFT"
    return None


def _range(start0: int, count: int) -> str:
    if count == 0:
        return f"{start0},0"
    if count == 1:
        return f"{start0 + 1}"
    return f"{start0 + 1},{count}"


def make_patch(old: bytes | None, new: bytes | None) -> Patch:
    old_b, new_b = old or b"", new or b""
    if is_binary(old_b) or is_binary(new_b):
        return Patch(binary=old_b != new_b)
    a, b = _lines(old_b), _lines(new_b)
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    hunks: list[Hunk] = []
    additions = deletions = 0
    for group in matcher.get_grouped_opcodes(CONTEXT_LINES):
        if all(tag == "equal" for tag, *_ in group):
            continue
        i1, i2, j1, j2 = group[0][1], group[-1][2], group[0][3], group[-1][4]
        header = f"@@ -{_range(i1, i2 - i1)} +{_range(j1, j2 - j1)} @@"
        lines: list[tuple[PatchLine, bool]] = []
        for tag, ai, aj, bi, bj in group:
            if tag == "equal":
                for k in range(aj - ai):
                    text = b[bi + k]
                    lines.append(
                        (
                            PatchLine(" ", ai + k + 1, bi + k + 1, text.rstrip("\n")),
                            not text.endswith("\n"),
                        )
                    )
                continue
            for k in range(ai, aj):
                lines.append(
                    (PatchLine("-", k + 1, None, a[k].rstrip("\n")), not a[k].endswith("\n"))
                )
                deletions += 1
            for k in range(bi, bj):
                lines.append(
                    (PatchLine("+", None, k + 1, b[k].rstrip("\n")), not b[k].endswith("\n"))
                )
                additions += 1
        hunks.append(Hunk(header, tuple(lines)))
    return Patch(tuple(hunks), additions, deletions)


@dataclass(frozen=True, slots=True)
class FileChange:
    """One entry of GitHub's `files` list (pull request files, compare, commit)."""

    filename: str
    status: str  # added, removed, modified, renamed
    old: bytes | None
    new: bytes | None
    previous_filename: str | None = None
    patch: Patch = field(default_factory=Patch)

    @property
    def sha(self) -> str | None:
        data = self.new if self.new is not None else self.old
        return None if data is None else blob_sha(data)


def tree_changes(base: Mapping[str, bytes], head: Mapping[str, bytes]) -> list[FileChange]:
    """Changed files from `base` to `head`, sorted by path; exact renames are detected.

    GitHub also reports similarity-based renames (git's 50% rule); only identical-content
    renames are modelled here.
    """
    removed = {p for p in base if p not in head}
    added = {p for p in head if p not in base}
    by_blob: dict[bytes, list[str]] = {}
    for path in sorted(removed):
        by_blob.setdefault(base[path], []).append(path)
    changes: list[FileChange] = []
    for path in sorted(added):
        sources = by_blob.get(head[path])
        if sources:
            source = sources.pop(0)
            removed.discard(source)
            changes.append(
                FileChange(path, "renamed", base[source], head[path], previous_filename=source)
            )
        else:
            changes.append(
                FileChange(path, "added", None, head[path], patch=make_patch(None, head[path]))
            )
    for path in removed:
        changes.append(
            FileChange(path, "removed", base[path], None, patch=make_patch(base[path], None))
        )
    for path in base.keys() & head.keys():
        if base[path] != head[path]:
            changes.append(
                FileChange(
                    path,
                    "modified",
                    base[path],
                    head[path],
                    patch=make_patch(base[path], head[path]),
                )
            )
    changes.sort(key=lambda c: c.filename)
    return changes


def unified_diff(changes: list[FileChange]) -> str:
    """The `application/vnd.github.diff` text of a list of changes (git's format)."""
    out: list[str] = []
    for change in changes:
        old_name = change.previous_filename or change.filename
        old_id = blob_sha(change.old)[:7] if change.old is not None else "0000000"
        new_id = blob_sha(change.new)[:7] if change.new is not None else "0000000"
        out.append(f"diff --git a/{old_name} b/{change.filename}")
        if change.status == "added":
            out += [
                "new file mode 100644",
                f"index {old_id}..{new_id}",
                "--- /dev/null",
                f"+++ b/{change.filename}",
            ]
        elif change.status == "removed":
            out += [
                "deleted file mode 100644",
                f"index {old_id}..{new_id}",
                f"--- a/{old_name}",
                "+++ /dev/null",
            ]
        elif change.status == "renamed":
            out += [
                "similarity index 100%",
                f"rename from {old_name}",
                f"rename to {change.filename}",
            ]
        else:
            out += [
                f"index {old_id}..{new_id} 100644",
                f"--- a/{old_name}",
                f"+++ b/{change.filename}",
            ]
        if change.patch.binary:
            out.append(f"Binary files a/{old_name} and b/{change.filename} differ")
        elif change.patch.text is not None:
            out.append(change.patch.text)
    return "\n".join(out) + "\n" if out else ""


def line_count(data: bytes | None) -> int:
    return 0 if data is None else len(_lines(data))
