"""Fixture trees as the readers hand them to the engine, and lines within them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from analysis.errors import ManifestError


def read_tree(root: Path) -> dict[str, bytes]:
    """Every file below ``root``, by its POSIX path relative to ``root``."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def write_files(root: Path, files: Mapping[str, str]) -> Path:
    """``files`` (by POSIX path relative to ``root``) written below ``root``, which it
    returns: ``read_tree``'s inverse."""
    root.mkdir(parents=True, exist_ok=True)
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def line_with(files: dict[str, bytes], path: str, needle: str, occurrence: int = 1) -> int:
    """The 1-based line of the ``occurrence``-th line of ``path`` containing ``needle``."""
    seen = 0
    for number, text in enumerate(files[path].decode().splitlines(), 1):
        if needle in text:
            seen += 1
            if seen == occurrence:
                return number
    raise AssertionError(f"{needle!r} not in {path}")


def same_error(expected: Callable[[], object], got: Callable[[], object]) -> ManifestError:
    """Both loaders reject their input with the same error (file, line and message);
    returns the first one's."""
    with pytest.raises(ManifestError) as first:
        expected()
    with pytest.raises(ManifestError) as second:
        got()
    assert (second.value.file, second.value.line, second.value.message) == (
        first.value.file,
        first.value.line,
        first.value.message,
    )
    return first.value
