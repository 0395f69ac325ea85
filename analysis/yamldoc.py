"""YAML and JSON documents with line numbers, parsed with bounded cost.

libyaml (``CSafeLoader``) does the scanning; mappings and sequences are built as ``Node``
subclasses of dict/list that remember the 1-based line they start on, because every error
and every explanation must name a line. Aliases are the one way a small file can cost
unbounded memory ("billion laughs"), so the number of alias references is capped.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

try:
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # pragma: no cover - libyaml missing: same results, only slower
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]

MAX_ALIASES = 1_000
MAX_DEPTH = 200


class YAMLSyntaxError(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


class LineDict(dict[Any, Any]):
    line: int = 0


class LineList(list[Any]):
    line: int = 0


def line_of(value: object, default: int = 0) -> int:
    """The line a mapping or sequence starts on (``default`` for scalars)."""
    return getattr(value, "line", default) or default


class _Loader(_BaseLoader):
    aliases_seen = 0


def _check_alias(loader: _Loader, node: yaml.Node) -> None:
    # PyYAML returns the same object for every alias of an anchor, so only a walk over the
    # result can explode; the cap stops documents built to do exactly that.
    if node in loader.constructed_objects:
        loader.aliases_seen += 1
        if loader.aliases_seen > MAX_ALIASES:
            raise YAMLSyntaxError(
                node.start_mark.line + 1,
                f"more than {MAX_ALIASES} YAML alias references; expand the aliases",
            )


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> Iterator[LineDict]:
    data = LineDict()
    data.line = node.start_mark.line + 1
    yield data
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=False)
        if not isinstance(key, (str, int, float, bool)) and key is not None:
            raise YAMLSyntaxError(key_node.start_mark.line + 1, "mapping keys must be scalars")
        _check_alias(loader, value_node)
        data[key] = loader.construct_object(value_node, deep=False)


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> Iterator[LineList]:
    data = LineList()
    data.line = node.start_mark.line + 1
    yield data
    for child in node.value:
        _check_alias(loader, child)
        data.append(loader.construct_object(child, deep=False))


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
_Loader.add_constructor("tag:yaml.org,2002:seq", _construct_sequence)


@dataclass(frozen=True, slots=True)
class Document:
    data: Any
    line: int  # first line of the document's content


def parse_documents(text: str) -> list[Document]:
    """All documents of a YAML (or JSON) stream, empty ones dropped."""
    loader = _Loader(text)
    docs: list[Document] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:  # pragma: no cover - check_node() said there is one
                break
            _check_depth(node)
            data = loader.construct_document(node)
            if data is not None:
                docs.append(Document(data, node.start_mark.line + 1))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = exc.problem or exc.context or "invalid YAML"
        raise YAMLSyntaxError(line, f"invalid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise YAMLSyntaxError(1, f"invalid YAML: {exc}") from None
    except RecursionError:
        raise YAMLSyntaxError(1, "YAML nested too deeply") from None
    finally:
        loader.dispose()
    return docs


def _check_depth(root: yaml.Node) -> None:
    stack: list[tuple[yaml.Node, int]] = [(root, 1)]
    seen: set[int] = set()
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise YAMLSyntaxError(
                node.start_mark.line + 1, f"YAML nested deeper than {MAX_DEPTH} levels"
            )
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                stack.append((k, depth + 1))
                stack.append((v, depth + 1))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((child, depth + 1) for child in node.value)
