"""Rendered environments kept by the content hash of everything their renderer could read.

A renderer runs in a workspace holding a copy of only the files it may read
(``bot.inputs.sandbox``): for a kustomize root, every file under the directories of the
kustomizations it reaches and every file they name; for a chart, the chart's directory and
its values files. Nothing else is visible to it (no checkout, an empty ``HOME``, no
network, the root-only load restrictor, no plugins), so its output is a function of the
copied files (paths and bytes), its command line, its environment (fixed by the sandbox),
its limits and the renderer binary itself. The key hashes exactly those, so an entry can
only be served for a render whose inputs are the same: a file a root consumes that
changes, appears or disappears (a generator's input, a values file, a patch, a component,
a base three directories away) changes the key, because the key covers the whole set
copied, which is a superset of what the renderer actually reads. Symbolic links never
reach a workspace (tree readers report them as not analysed), and remote bases are refused
before any key is made.

The cache holds what reachdiff builds from a render (the environment's model tree, its
notes and frontends), in memory, bounded by entry count and by the number of rendered
objects; errors and timeouts are never kept. Each process has one
(``bot.inputs.environment_diff.RENDER_CACHE``: the bot's worker keeps it across reviews;
the CLI shares it between the base and the head, so a root the change does not touch is
rendered once).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Generic, TypeVar

from bot.inputs.sandbox import Limits, ToolError, run_tool, workspace

# Bump when what reachdiff makes of a render changes (sourcemaps, notes...): entries made
# by another version of this code are then never served.
KEY_VERSION = "reachdiff-render-1"

_V = TypeVar("_V")


class KeyBuilder:
    """A SHA-256 over length-prefixed fields: no two field sequences hash alike."""

    def __init__(self, *fields: str) -> None:
        self._hash = hashlib.sha256()
        self.add(KEY_VERSION, *fields)

    def add(self, *fields: str | bytes) -> KeyBuilder:
        for value in fields:
            data = value.encode() if isinstance(value, str) else value
            self._hash.update(len(data).to_bytes(8, "big"))
            self._hash.update(data)
        return self

    def files(self, files: Mapping[str, bytes], paths: Iterable[str]) -> KeyBuilder:
        """Every path and the hash of its content, in path order."""
        chosen = sorted(set(paths))
        self.add(str(len(chosen)))
        for path in chosen:
            self.add(path, content_digest(files[path]))
        return self

    def limits(self, limits: Limits) -> KeyBuilder:
        # A render that succeeded within larger bounds may fail within smaller ones.
        return self.add(repr(limits))

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def content_digest(content: bytes) -> bytes:
    return hashlib.sha256(content).digest()


def tool_identity(
    argv: tuple[str, ...], version_args: tuple[str, ...], timeout: float = 30.0
) -> str:
    """Which renderer ``argv`` runs: its resolved binary (path, size, times, inode), its
    directory's (``kubectl`` is often a dispatcher running a sibling release binary,
    replaced there by an upgrade) and what it says its version is. The files are looked
    at on every call; the version is asked again only when they changed."""
    try:
        real = os.path.realpath(argv[0])
        stats = [os.stat(real), os.stat(os.path.dirname(real) or ".")]
        where = " ".join(
            f"{st.st_size} {st.st_mtime_ns} {st.st_ctime_ns} {st.st_ino}" for st in stats
        )
    except OSError:
        real, where = argv[0], "unknown binary"
    return _identity(argv, real, where, version_args, timeout)


@cache
def _identity(
    argv: tuple[str, ...], real: str, where: str, version_args: tuple[str, ...], timeout: float
) -> str:
    parts = [" ".join(argv), f"{real} {where}"]
    with workspace({}, []) as ws:
        try:
            done = run_tool(
                [argv[0], *version_args],
                ws,
                what=f"{argv[0]} version",
                limits=Limits(timeout=min(timeout, 30.0)),
                isolate_network=False,
            )
            parts.append(done.stdout.strip())
        except ToolError as err:
            parts.append(f"no version: {err.message}")
    return "\n".join(parts)


@dataclass(slots=True)
class CacheStats:
    hits: int = 0
    misses: int = 0


class RenderCache(Generic[_V]):
    """Values by render key, least recently used first out, at most ``max_entries`` of
    them and ``max_weight`` in total (an environment weighs its number of rendered
    objects, a measure of its model's size). Thread-safe."""

    def __init__(self, max_entries: int = 1024, max_weight: int = 100_000) -> None:
        self.max_entries = max_entries
        self.max_weight = max_weight
        self.stats = CacheStats()
        self._entries: OrderedDict[str, tuple[_V, int]] = OrderedDict()
        self._weight = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> _V | None:
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                self.stats.misses += 1
                return None
            self._entries.move_to_end(key)
            self.stats.hits += 1
            return found[0]

    def put(self, key: str, value: _V, weight: int) -> None:
        if weight > self.max_weight:
            return  # larger than the whole cache: keep the others instead
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._weight -= old[1]
            self._entries[key] = (value, weight)
            self._weight += weight
            while len(self._entries) > self.max_entries or self._weight > self.max_weight:
                _, (_, dropped) = self._entries.popitem(last=False)
                self._weight -= dropped

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def weight(self) -> int:
        return self._weight

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._weight = 0
