"""Give rendered objects the line numbers of the files they came from.

A renderer's output has lines of its own output, which mean nothing to the author of a pull
request. ``transplant`` walks a rendered object and the original object in parallel and gives
each rendered mapping and list the line of the original node at the same place. Where a
patch changed the structure, the node is looked up in the patches that apply to the object
(so a rule a patch added points into the patch file); failing that, it takes the line of the
nearest enclosing node that could be traced, and is counted as approximate.

A node whose line refers to a file other than its object's carries that file in a ``file``
attribute (see ``file_of``).

Both sides may hold YAML aliases: digests are memoised per node and the walk follows the
rendered object only, so shared nodes never multiply the work.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict, deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from analysis.yamldoc import LineDict, LineList, YMap, line_of

Pattern = tuple[str, ...]  # a path in an object, list indices written as "*"
WILDCARD = "*"


def file_of(node: object, default: str) -> str:
    """The file a node's line refers to (``default``: its object's file)."""
    value = getattr(node, "file", None)
    return value if isinstance(value, str) and value else default


@dataclass(frozen=True, slots=True)
class Located:
    """A node of some source file; ``offset`` is added to its lines (inline patches)."""

    file: str
    node: Any
    offset: int = 0

    @property
    def line(self) -> int:
        return line_of(self.node, 1) + self.offset

    def child(self, key: Any) -> Located | None:
        if isinstance(self.node, dict) and key in self.node:
            return Located(self.file, self.node[key], self.offset)
        return None


class Digests:
    """Content digests of parsed YAML values, ignoring lines; memoised per node."""

    def __init__(self) -> None:
        self._memo: dict[int, bytes] = {}
        self._keep: list[Any] = []  # ids are only unique while their objects live

    def of(self, value: Any) -> bytes:
        if not isinstance(value, (dict, list)):
            return hashlib.blake2b(
                f"{type(value).__name__}:{value!r}".encode(), digest_size=16
            ).digest()
        key = id(value)
        cached = self._memo.get(key)
        if cached is not None:
            return cached
        h = hashlib.blake2b(digest_size=16)
        if isinstance(value, dict):
            h.update(b"{")
            for k, v in sorted(((self.of(k), self.of(v)) for k, v in value.items())):
                h.update(k)
                h.update(v)
        else:
            h.update(b"[")
            for item in value:
                h.update(self.of(item))
        digest = h.digest()
        self._memo[key] = digest
        self._keep.append(value)
        return digest


@dataclass(slots=True)
class Fragments:
    """Nodes of patches, findable by where they land in an object and by content."""

    digests: Digests
    by_content: dict[tuple[Pattern, bytes], list[Located]] = field(
        default_factory=lambda: defaultdict(list)
    )
    by_pattern: dict[tuple[Pattern, type[Any]], list[Located]] = field(
        default_factory=lambda: defaultdict(list)
    )

    def add(self, pattern: Pattern, located: Located) -> None:
        """Index ``located`` and every node under it, ``pattern`` being where it lands."""
        seen: set[int] = set()
        stack: list[tuple[Pattern, Any]] = [(pattern, located.node)]
        while stack:
            at, node = stack.pop()
            if not isinstance(node, (dict, list)) or id(node) in seen:
                continue
            seen.add(id(node))
            here = Located(located.file, node, located.offset)
            self.by_content[(at, self.digests.of(node))].append(here)
            self.by_pattern[(at, dict if isinstance(node, dict) else list)].append(here)
            if isinstance(node, dict):
                stack.extend(((*at, str(k)), v) for k, v in node.items())
            else:
                stack.extend(((*at, WILDCARD), v) for v in node)

    def add_json6902(self, ops: Sequence[Any], file: str, offset: int) -> None:
        for op in ops:
            if not isinstance(op, dict) or op.get("op") not in ("add", "replace"):
                continue
            path = op.get("path")
            if isinstance(path, str) and "value" in op:
                self.add(json_pointer_pattern(path), Located(file, op["value"], offset))

    def equal(self, pattern: Pattern, digest: bytes) -> Located | None:
        found = self.by_content.get((pattern, digest))
        return found[0] if found else None

    def similar(self, pattern: Pattern, kind: type[Any]) -> Located | None:
        found = self.by_pattern.get((pattern, kind))
        return found[0] if found else None


def json_pointer_pattern(pointer: str) -> Pattern:
    """``/spec/ingress/-`` as ``("spec", "ingress", "*")``."""
    parts = pointer.split("/")[1:] if pointer.startswith("/") else pointer.split("/")
    out: list[str] = []
    for part in parts:
        part = part.replace("~1", "/").replace("~0", "~")
        out.append(WILDCARD if part == "-" or part.isdigit() else part)
    return tuple(out)


@dataclass(slots=True)
class Transplant:
    """The outcome of one walk: how many objects or list items (rules, peers, ports…) had
    to borrow an enclosing line, and how many nodes were traced into patches."""

    approximate: int = 0
    from_patches: int = 0


def transplant(
    rendered: LineDict,
    original: Located | None,
    object_file: str,
    fragments: Fragments,
) -> Transplant:
    """Rewrite the lines of ``rendered`` in place to point into the source files."""
    result = Transplant()
    walker = _Walker(object_file, fragments, result)
    walker.visit(rendered, original, None, (), (object_file, original.line if original else 1))
    return result


class _Walker:
    def __init__(self, object_file: str, fragments: Fragments, result: Transplant) -> None:
        self.object_file = object_file
        self.fragments = fragments
        self.digests = fragments.digests
        self.result = result

    def visit(
        self,
        node: Any,
        exact: Located | None,
        loose: Located | None,
        pattern: Pattern,
        parent: tuple[str, int],
    ) -> None:
        if not isinstance(node, (LineDict, LineList)):
            return
        kind: type[Any] = dict if isinstance(node, dict) else list
        source = exact if exact is not None and isinstance(exact.node, kind) else None
        if source is None:
            source = self.fragments.equal(pattern, self.digests.of(node))
            if source is None and loose is not None and isinstance(loose.node, kind):
                source = loose
            if source is None:
                source = self.fragments.similar(pattern, kind)
            if source is not None and source.file != self.object_file:
                self.result.from_patches += 1
        if source is None:
            file, line = parent
            # List items (rules, peers, ports…) and whole objects are what explanations
            # point at; a label map a transformer added may well borrow its parent's line.
            if not pattern or pattern[-1] == WILDCARD:
                self.result.approximate += 1
        else:
            file, line = source.file, source.line
        node.line = line
        if file != self.object_file:
            node.file = file  # type: ignore[union-attr]
        here = (file, line)
        if isinstance(node, LineDict):
            for key, value in node.items():
                child = source.child(key) if source is not None else None
                self.visit(value, child, None, (*pattern, str(key)), here)
        else:
            for item, (exact_item, loose_item) in zip(node, self._align(node, source), strict=True):
                self.visit(item, exact_item, loose_item, (*pattern, WILDCARD), here)

    def _align(
        self, items: LineList, source: Located | None
    ) -> Iterator[tuple[Located | None, Located | None]]:
        """For each rendered item: an equal original item, else the one at its index."""
        if source is None or not isinstance(source.node, list):
            yield from ((None, None) for _ in items)
            return
        originals = source.node
        unused: dict[bytes, deque[int]] = defaultdict(deque)
        for i, original in enumerate(originals):
            unused[self.digests.of(original)].append(i)
        taken: set[int] = set()
        exact: list[int | None] = []
        for item in items:
            candidates = unused.get(self.digests.of(item))
            if candidates:
                i = candidates.popleft()
                taken.add(i)
                exact.append(i)
            else:
                exact.append(None)
        for index, match in enumerate(exact):
            if match is not None:
                yield Located(source.file, originals[match], source.offset), None
            elif index < len(originals) and index not in taken:
                yield None, Located(source.file, originals[index], source.offset)
            else:
                yield None, None


def patch_targets(doc: Any) -> tuple[str | None, str | None]:
    """The kind and name a strategic-merge patch document names."""
    if not isinstance(doc, dict):
        return None, None
    kind = doc.get("kind")
    meta = doc.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    return (kind if isinstance(kind, str) else None, name if isinstance(name, str) else None)


def objects_of_kind(
    candidates: Iterable[YMap], kind: str, name: str, namespace: str | None
) -> YMap | None:
    """The original object a rendered one was made from: same kind, name within its name.

    kustomize may add prefixes and suffixes (at several levels) and change the namespace,
    so the best candidate has the exact name, else the longest name contained in it.
    """
    best: tuple[int, int, YMap] | None = None
    for obj in candidates:
        if obj.get("kind") != kind:
            continue
        meta = obj.get("metadata")
        if not isinstance(meta, dict):
            continue
        original = meta.get("name")
        if not isinstance(original, str) or not original or original not in name:
            continue
        score = (
            2 * (original == name) + (meta.get("namespace") in (None, namespace)),
            len(original),
        )
        if best is None or score > best[:2]:
            best = (*score, obj)
    return best[2] if best is not None else None
