"""YAML and JSON documents with line numbers, parsed with bounded cost.

libyaml (``CSafeLoader``) does the scanning; mappings and sequences are built as ``Node``
subclasses of dict/list that remember the 1-based line they start on, because every error
and every explanation must name a line. Aliases are the one way a small file can cost
unbounded memory ("billion laughs"), so the number of alias references is capped.

Why one module of 440 lines: the loader, its bounds (aliases, nesting) and the fast
path that must agree with it document by document are one reader.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import yaml

try:
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # pragma: no cover - libyaml missing: same results, only slower
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]

MAX_DOCUMENTS = 50_000  # per file
MAX_ALIAS_EXPANSION = 100_000  # nodes all aliases together may stand for
MAX_DEPTH = 200


class YAMLSyntaxError(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


YMap = dict[Any, Any]  # a parsed mapping: a LineDict, or a plain dict from the fast parser
YSeq = list[Any]


class LineDict(dict[Any, Any]):
    line: int = 0
    exact: bool = True  # False: from the fast parser, nested values carry no lines
    # On a `metadata` named by generateName alone: which one it is in its file (1, 2, ...)
    # among those of its kind, namespace and prefix (validation.number_generated).
    generated: int = 0


class LineList(list[Any]):
    line: int = 0


def line_of(value: object, default: int = 0) -> int:
    """The line a mapping or sequence starts on (``default`` for scalars)."""
    return getattr(value, "line", default) or default


_MERGE = "tag:yaml.org,2002:merge"


class _Loader(_BaseLoader):
    aliases_seen = 0

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.sizes: dict[int, int] = {}
        self.merging: set[int] = set()

    def expand(self, nodes: int, line: int) -> None:
        """Count ``nodes`` more that aliases stand for; refuse past the budget."""
        self.aliases_seen += nodes
        if self.aliases_seen > MAX_ALIAS_EXPANSION:
            raise YAMLSyntaxError(
                line, f"YAML aliases expand to more than {MAX_ALIAS_EXPANSION} nodes; expand them"
            )

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        """Expand merge keys (``<<``) in place, the way Kubernetes' reader (go-yaml v2)
        applies them: in document order, a list of mappings from last to first, so that a
        later key of the mapping and an earlier mapping of the list win. Each merged pair
        counts against the alias budget, like the alias it came from: merging a mapping
        nine times per level is a billion laughs too. Done here rather than by PyYAML,
        whose merging changed between releases."""
        if not any(key.tag == _MERGE for key, _ in node.value):
            return
        self.merging.add(id(node))
        pairs: list[tuple[yaml.Node, yaml.Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag != _MERGE:
                pairs.append((key_node, value_node))
                continue
            merged = (
                value_node.value[::-1]
                if isinstance(value_node, yaml.SequenceNode)
                else [value_node]
            )
            line = key_node.start_mark.line + 1  # where the merge is written
            for source in merged:
                if not isinstance(source, yaml.MappingNode):
                    raise YAMLSyntaxError(
                        line, "a merge key (<<) takes a mapping or a list of mappings"
                    )
                if id(source) in self.merging:
                    raise YAMLSyntaxError(line, "a merge key (<<) merges the mapping it is in")
                self.flatten_mapping(source)
                self.expand(len(source.value), line)
                pairs.extend(source.value)
        node.value = pairs
        self.merging.discard(id(node))


def _check_alias(loader: _Loader, node: yaml.Node) -> None:
    # PyYAML returns the same object for every alias of an anchor, so only a walk over the
    # result can explode; this budget counts what a full expansion would cost and stops
    # documents built to explode ("billion laughs") before anyone walks them.
    if node in loader.constructed_objects:
        loader.expand(_expanded_size(node, loader.sizes), node.start_mark.line + 1)


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    known = sizes.get(id(node))
    if known is not None:
        return known
    sizes[id(node)] = 1  # a recursive structure counts once per visit
    total = 1
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            total += _expanded_size(k, sizes) + _expanded_size(v, sizes)
    elif isinstance(node, yaml.SequenceNode):
        for child in node.value:
            total += _expanded_size(child, sizes)
    sizes[id(node)] = total
    return total


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
# YAML 1.1 resolves a plain `=` to !!value, which PyYAML cannot construct; Kubernetes'
# reader takes it as the string "=".
_Loader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: node.value)
_Loader.add_constructor("tag:yaml.org,2002:seq", _construct_sequence)


def _construct_binary(loader: _Loader, node: yaml.ScalarNode) -> str:
    # go-yaml, which Kubernetes' YAML reader is built on, decodes `!!binary` to a string of
    # the bytes (JSON then writes invalid UTF-8 as U+FFFD): `kind: !!binary TmV0...` is a
    # NetworkPolicy to the cluster. PyYAML's bytes would be no kind at all, skipped.
    raw: bytes = loader.construct_yaml_binary(node)
    return raw.decode("utf-8", errors="replace")


def _construct_timestamp(loader: _Loader, node: yaml.ScalarNode) -> str:
    # go-yaml keeps a timestamp decoded into an untyped value as the text written (also
    # under an explicit `!!timestamp`), so `date: 2024-01-01` is the label value
    # "2024-01-01" to Kubernetes, not a date.
    return str(node.value)


_Loader.add_constructor("tag:yaml.org,2002:binary", _construct_binary)
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)


# go-yaml builds collections by their node, whatever the tag: a `!!set` is the mapping it
# is written as (keys with null values), `!!omap` and `!!pairs` the sequence of one-pair
# mappings; PyYAML's Python set and tuples are shapes no field of an object takes.
def _construct_collection(loader: _Loader, node: yaml.Node) -> Iterator[LineDict | LineList]:
    if isinstance(node, yaml.MappingNode):
        return _construct_mapping(loader, node)
    if isinstance(node, yaml.SequenceNode):
        return _construct_sequence(loader, node)
    raise YAMLSyntaxError(node.start_mark.line + 1, f"{node.tag} takes a mapping or a sequence")


for _tag in ("set", "omap", "pairs"):
    _Loader.add_constructor(f"tag:yaml.org,2002:{_tag}", _construct_collection)


@dataclass(frozen=True, slots=True)
class Document:
    data: Any
    line: int  # first line of the document's content


def unify_line_breaks(text: str) -> str:
    """CR LF and a lone CR as LF. YAML counts each of the three as one line break and folds
    the breaks inside scalars to LF, so the text reads the same and every line keeps its
    number; the checks on the raw text below (separators, markers, nesting) then only
    need to know LF. A Windows checkout or editor writes CR LF files that Kubernetes reads.
    """
    if "\r" not in text:
        return text
    return text.replace("\r\n", "\n").replace("\r", "\n")


def parse_documents(text: str) -> list[Document]:
    """All documents of a YAML (or JSON) stream, empty ones dropped."""
    text = unify_line_breaks(text)
    check_nesting(text)
    loader = _Loader(text)
    docs: list[Document] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:  # pragma: no cover - check_node() said there is one
                break
            data = loader.construct_document(node)
            if data is not None:
                docs.append(Document(data, node.start_mark.line + 1))
                if len(docs) > MAX_DOCUMENTS:
                    raise YAMLSyntaxError(
                        node.start_mark.line + 1, f"more than {MAX_DOCUMENTS} documents in one file"
                    )
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = _name_character(exc.problem or exc.context or "invalid YAML", text, mark)
        raise YAMLSyntaxError(line, f"invalid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise YAMLSyntaxError(1, f"invalid YAML: {exc}") from None
    except RecursionError:
        raise YAMLSyntaxError(1, "YAML nested too deeply") from None
    except ValueError as exc:  # e.g. an integer longer than Python converts (int_max_str_digits)
        raise YAMLSyntaxError(1, f"invalid YAML value: {exc}") from None
    finally:
        loader.dispose()
    return docs


def _name_character(problem: str, text: str, mark: yaml.Mark | None) -> str:
    """libyaml says "found character that cannot start any token" without saying which.
    The usual one is a tab indenting a line, which most editors do not show, so the
    message names it and its column."""
    if mark is None or "cannot start any token" not in problem:
        return problem
    lines = text.split("\n")
    if mark.line >= len(lines) or mark.column >= len(lines[mark.line]):
        return problem
    char = lines[mark.line][mark.column]
    if char == "\t":
        return f"{problem}: a tab at column {mark.column + 1} (YAML indents with spaces only)"
    return f"{problem}: {char!r} at column {mark.column + 1}"


# Where a block scalar (`key: |`, `- >-`) starts: its lines are text, not nodes.
_BLOCK_SCALAR = re.compile(r"(?:^|[ \t])[|>][-+1-9]{0,2}[ \t]*(?:#.*)?$")
# A line whose indentation and compact indicators (`- `, `? `) reach this column may open
# that many block levels; below it (and with few brackets) no text can nest too deep.
_DEEP_PREFIX = re.compile(rf"^[ \t?-]{{{MAX_DEPTH // 2}}}", re.MULTILINE)


def check_nesting(text: str) -> None:
    """Refuse nesting deeper than ``MAX_DEPTH`` levels before either parser sees the text:
    libyaml's composer recurses on the C stack (a few hundred kilobytes of ``[`` crash the
    process), and newer libyaml releases refuse their own depth with other words. Both paths
    call this first, so they refuse the same text with the same error.

    A level is a block collection (a line indented deeper than the open ones, or a compact
    ``- ``/``? `` indicator) or a flow collection (``[``, ``{``); they add up, as in a
    parser. Block scalars' lines are text. The count may exceed a parser's by one per line
    (a compact entry's content counts as a level), never fall short of it."""
    flow = text.count("[") + text.count("{")
    if flow <= MAX_DEPTH // 2 and _DEEP_PREFIX.search(text) is None:
        return  # every line's content starts before column MAX_DEPTH / 2: few levels
    block: list[int] = []  # columns of the open block levels, innermost last
    depth = 0  # open flow collections
    quote = ""  # a double-quoted scalar may span lines
    scalar_parent = -1  # indentation of the line that opened a block scalar, if inside one
    for lineno, line in enumerate(text.splitlines(), 1):
        body = line.lstrip(" ")
        indent = len(line) - len(body)
        if scalar_parent >= 0:
            if not body.strip() or indent > scalar_parent:
                continue
            scalar_parent = -1
        if not quote and depth == 0 and body.strip() and not body.startswith("#"):
            while block and block[-1] >= indent:
                block.pop()
            block.append(indent)
            # Compact block nesting: `- - - x` and `? ? ? x` open one level per indicator.
            while body[:1] in ("-", "?") and body[1:2] in (" ", "\t"):
                rest = body[2:].lstrip(" \t")
                indent += len(body) - len(rest)
                body = rest
                block.append(indent)
                if len(block) > MAX_DEPTH:
                    raise YAMLSyntaxError(lineno, f"YAML nested deeper than {MAX_DEPTH} levels")
            if len(block) > MAX_DEPTH:
                raise YAMLSyntaxError(lineno, f"YAML nested deeper than {MAX_DEPTH} levels")
        if "[" not in line and "{" not in line and depth == 0 and not quote:
            if _BLOCK_SCALAR.search(body) and not body.startswith("#"):
                scalar_parent = len(line) - len(line.lstrip(" "))
            continue
        prev = " "  # a quote opens a quoted scalar only where a scalar can start
        for ch in line:
            if quote:
                if ch == quote:
                    quote = ""
            elif ch in "'\"" and prev in " \t[{,:-?":
                quote = ch
            elif ch == "#" and prev in " \t":
                break
            elif ch in "[{":
                depth += 1
                if depth + len(block) > MAX_DEPTH:
                    raise YAMLSyntaxError(lineno, f"YAML nested deeper than {MAX_DEPTH} levels")
            elif ch in "]}":
                depth = max(0, depth - 1)
            prev = ch
        quote = "" if quote == "'" else quote


# --- the fast path -------------------------------------------------------------------------
# yaml-rs (Rust) parses about eight times faster than libyaml, but knows neither lines nor
# YAML 1.1, which Kubernetes' YAML reader follows. It is used only for text in which the two
# cannot disagree, and its documents carry their first line from a scan of the separators;
# a caller that needs finer lines (an error) parses the file again with ``parse_documents``.
try:
    import yaml_rs

    _fast_loads: Any = yaml_rs.loads
except ImportError:  # pragma: no cover - optional accelerator
    _fast_loads = None

# Strings yaml-rs (YAML 1.2) returns where YAML 1.1 returns a bool, number, null or date.
_YAML11_SPECIAL = re.compile(
    r"y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF|true|True|TRUE|false|False|FALSE"
    r"|~|null|Null|NULL|=|<<"
    r"|[-+]?(?:0b[01_]+|0[0-7_]+|0x[0-9a-fA-F_]+|[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?)"
    r"|[-+]?[0-9][0-9_]*|[-+]?(?:[0-9][0-9_]*)?\.[0-9_.]*(?:[eE][-+][0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)"
    r"|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt ].*)?"
)


_YAML11_LINE = re.compile(f"^(?:{_YAML11_SPECIAL.pattern})$", re.MULTILINE)


def yaml11_differs(value: object) -> bool:
    """Whether a string from the fast parser may have been a plain scalar that Kubernetes'
    YAML 1.1 reader turns into something else (``yes`` -> true, ``017`` -> 15, ...)."""
    return isinstance(value, str) and _YAML11_SPECIAL.fullmatch(value) is not None


def any_yaml11_differs(values: Iterable[object]) -> bool:
    """``any(map(yaml11_differs, values))`` in one regex pass over the strings joined by
    line breaks (no special scalar spans a line, so each one matches a whole line)."""
    strings = [v for v in values if isinstance(v, str)]
    if not strings or _YAML11_LINE.search("\n".join(strings)) is None:
        return False
    return any(map(yaml11_differs, strings))  # the line may be part of a longer string


# What libyaml refuses and yaml-rs reads: characters YAML does not allow in a stream, and
# integers too long for Python to convert (so the exact path can say so).
_UNPRINTABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufffe\uffff]")
_LONG_NUMBER = re.compile(r"[0-9]{4000}")
_CONTENT = re.compile(r"^[ \t]*[^\s#]", re.MULTILINE)


def _has_marker(text: str) -> bool:
    """Whether the text needs the exact path for what yaml-rs reads differently or not at
    all: anchors, aliases, tags, merge keys, directives and document ends; and where
    libyaml refuses what yaml-rs reads: an empty implicit key (`: x` after a break or a
    blank) and the line breaks YAML 1.1 adds (NEL, LS, PS). Plain scalars that YAML 1.1
    and 1.2 read differently are checked on the values the model uses
    (``yaml11_differs``), which is exact for them and cheaper than scanning the text."""
    # Spelled out: a generator over the markers costs more than the scans themselves.
    return (
        (("&" in text or "*" in text or "!" in text) and _node_property(text))
        or "<<" in text
        or "\n..." in text
        or "\n%" in text
        or text.startswith(":")
        or " :" in text
        or "\t:" in text
        or "\n:" in text
        or "{:" in text
        or "[:" in text
        or ",:" in text
        or (not text.isascii() and ("\x85" in text or "\u2028" in text or "\u2029" in text))
    )


# Where an anchor, alias or tag can start a node: a line's first character, or after an
# indicator (`:`, `-`, `?`, `[`, `{`, `,`). Anywhere else `&`, `*` and `!` are text
# ("a & b", "x != y"); over-matching only sends the text to the exact path.
_PROPERTY_CHAR = re.compile(r"[&*!]")
_BLOCK_CHAR = re.compile(r"[|>]")
# A block scalar's header (`key: |`, `- >-`, `|`): its content lines are text, however
# they start (CRD descriptions hold `* item` lists). Headers with an explicit indentation
# indicator, a quoted or flow key or a comment before the indicator are not recognised,
# which only sends such texts to the exact path.
_BLOCK_HEADER = re.compile(
    r"( *)((?:-[ ]+)*)(?:[A-Za-z0-9_$][^#'\"{}\[\],&*!|>\n]*:[ ]+)?[|>][+-]?[ \t]*(?:#[^\n]*)?"
)
_BLANK_LINES = re.compile(r"(?:[ \t]*\n)*")
_SPACES = re.compile(" *")
_block_content: dict[int, re.Pattern[str]] = {}


def _content_end(text: str, start: int, indent: int) -> int:
    """Where the block scalar content starting at ``start``, indented ``indent``, ends:
    blank lines and lines indented at least as much are its content."""
    pattern = _block_content.get(indent)
    if pattern is None:
        pattern = re.compile(rf"(?:[ \t]*\n| {{{indent}}}[^\n]*(?:\n|\Z))*")
        _block_content[indent] = pattern
    found = pattern.match(text, start)
    return found.end() if found else start


def _starts_node(text: str, at: int) -> bool:
    """Whether ``at`` is where a line's content starts or follows an indicator (blanks
    between): the places an anchor, alias or tag can start a node."""
    before = at - 1
    while before >= 0 and text[before] in " \t":
        before -= 1
    return before < 0 or text[before] in "\n-?:,[{"


def _node_property(text: str) -> bool:
    """Whether an anchor, alias or tag may start a node anywhere outside block scalars'
    content (which ends where YAML ends it: at the first less indented line)."""
    hits = [m.start() for m in _PROPERTY_CHAR.finditer(text) if _starts_node(text, m.start())]
    if not hits:
        return False
    begins: list[int] = []
    ends: list[int] = []
    checked = 0  # lines before this were tried as headers already
    for indicator in _BLOCK_CHAR.finditer(text):
        if indicator.start() < checked:
            continue
        line_start = text.rfind("\n", 0, indicator.start()) + 1
        line_end = text.find("\n", indicator.start())
        checked = len(text) if line_end < 0 else line_end
        header = _BLOCK_HEADER.fullmatch(text, line_start, checked)
        if header is None:
            continue
        start = header.end() + 1
        if ends and start < ends[-1]:
            continue  # a header-like line inside the content skipped already
        # Content is indented more than the key (or the entry's content) the scalar
        # belongs to; its first non-blank line sets the indentation the rest keeps.
        parent = len(header.group(1)) + len(header.group(2))
        first = _BLANK_LINES.match(text, start)
        at = first.end() if first else start
        spaces = _SPACES.match(text, at)
        indent = spaces.end() - at if spaces else 0
        if indent > parent and at < len(text):
            begins.append(start)
            ends.append(_content_end(text, start, indent))
    for hit in hits:
        i = bisect.bisect_right(begins, hit) - 1  # the last content starting at or before
        if i < 0 or hit >= ends[i]:
            return True
    return False


def _separators(text: str) -> list[int]:
    """Offsets of the lines that separate documents: ``---`` then a blank or the end."""
    out = []
    at = 0 if text.startswith("---") else text.find("\n---") + 1 or -1
    while at >= 0:
        if text[at + 3 : at + 4] in ("", " ", "\t", "\n"):
            out.append(at)
        at = text.find("\n---", at + 3) + 1 or -1
    return out


def _multiline_flow(text: str) -> bool:
    """A flow collection spanning lines: yaml-rs and libyaml disagree on some of those."""
    if "{" not in text and "[" not in text:
        return False
    for line in text.splitlines():
        if ("{" in line or "[" in line or "}" in line or "]" in line) and (
            line.count("{") != line.count("}") or line.count("[") != line.count("]")
        ):
            return True
    return False


def parse_documents_fast(text: str) -> list[Document] | None:
    """Like ``parse_documents`` but each document only knows its first line; ``None`` when
    the text needs the exact (libyaml) path."""
    text = unify_line_breaks(text)
    if _fast_loads is None or _has_marker(text):
        return None
    if _UNPRINTABLE.search(text) or _LONG_NUMBER.search(text) or _multiline_flow(text):
        return None
    check_nesting(text)
    try:
        parsed: Any = _fast_loads(text, parse_datetime=False)
    except Exception:  # any refusal (the fuzz tests found several kinds): let libyaml judge
        return None
    starts = _separators(text)
    segments = [0, *[s for s in starts]]
    bounds = [(a, b) for a, b in zip(segments, [*segments[1:], len(text)], strict=True)]
    if starts and not _CONTENT.search(text, 0, starts[0]):
        bounds = bounds[1:]  # nothing before the first separator
    docs: list[Any]
    if len(bounds) > MAX_DOCUMENTS:
        return None  # the exact path says where the limit was passed
    if len(bounds) == 1:
        docs = [parsed]
    elif isinstance(parsed, list) and len(parsed) == len(bounds):
        docs = parsed
    else:
        return None
    out = []
    separators = set(starts)
    counted, newlines = 0, 0  # newlines before `counted`: lines found in one pass

    def line_at(offset: int) -> int:
        nonlocal counted, newlines
        newlines += text.count("\n", counted, offset)
        counted = offset
        return newlines + 1

    for (begin, end), data in zip(bounds, docs, strict=True):
        if data is None:
            continue
        if begin in separators:
            eol = text.find("\n", begin, end)
            eol = end if eol < 0 else eol
            rest = text[begin + 3 : eol].strip()
            if rest and not rest.startswith("#"):
                out.append(Document(data, line_at(begin)))  # `--- value`
                continue
            begin = min(eol + 1, end)
        first = _CONTENT.search(text, begin, end)
        out.append(Document(data, line_at(first.start() if first else begin)))
    return out
