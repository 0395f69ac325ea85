"""What reading manifest files has computed, kept by whoever reads them.

Parsing YAML and modelling objects is most of reading a tree. The two trees of a diff
share most files, and the bot reviews many pull requests against one base: a
``ParseCache`` passed to every read of those trees parses each file content once and
models each parsed object once. It is an object, not module state, so that its owner
decides how long it lives and how large it grows: a ``TreeState`` keeps the one it was
read with (the heads derived from a base share the base's), a diff of two rendered trees
one for both sides, the bot's worker one next to its prepared bases. Nothing is kept
across owners, and an engine call without a cache reads everything afresh (same result).

Entries are pure functions of their keys: a file's parsed objects of its content's hash
(and the parser asked for), a model of the very object parsed (its id, with the object
held so that the id is never reused). The objects handed out are never mutated by their
readers, so sharing them is safe.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from analysis.yamldoc import YMap

__all__ = ["DEFAULT_LIMIT", "ParseCache"]

# Entries of each kind: about the files of the largest trees reviewed (30,000 workloads).
DEFAULT_LIMIT = 200_000

ParseKey = tuple[bytes, bool]  # (content digest, exact parser)


class ParseCache:
    """Parsed files by content and models by parsed object, each at most ``limit``
    entries (least recently used out). Not for sharing between threads that write at
    once beyond what a dict's single operations guarantee (each method is one lookup or
    one insertion and an eviction: a race loses an entry, never mixes two)."""

    __slots__ = ("_files", "_models", "limit")

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        if limit < 1:
            raise ValueError("a parse cache holds at least one entry")
        self.limit = limit
        self._files: OrderedDict[ParseKey, list[YMap]] = OrderedDict()
        self._models: OrderedDict[tuple[str, int], tuple[YMap, Any]] = OrderedDict()

    def parsed(self, key: ParseKey) -> list[YMap] | None:
        hit = self._files.get(key)
        if hit is not None:
            self._files.move_to_end(key)
        return hit

    def keep_parsed(self, key: ParseKey, objects: list[YMap]) -> None:
        self._files[key] = objects
        while len(self._files) > self.limit:
            self._files.popitem(last=False)

    def model(self, path: str, obj: YMap) -> tuple[bool, Any]:
        """(found, the model) of ``obj`` read from ``path``."""
        key = (path, id(obj))
        hit = self._models.get(key)
        if hit is None or hit[0] is not obj:
            return False, None
        self._models.move_to_end(key)
        return True, hit[1]

    def keep_model(self, path: str, obj: YMap, model: object) -> None:
        self._models[(path, id(obj))] = (obj, model)
        while len(self._models) > self.limit:
            self._models.popitem(last=False)

    def sizes(self) -> tuple[int, int]:
        """(parsed files, models) held."""
        return len(self._files), len(self._models)

    def clear(self) -> None:
        self._files.clear()
        self._models.clear()

    def __reduce__(self) -> tuple[type[ParseCache], tuple[int]]:
        # A cache crosses a process boundary empty: its entries are cheaper to compute
        # again than to pickle, and an object's id means nothing in another process.
        return (ParseCache, (self.limit,))
