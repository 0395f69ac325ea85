"""Calico's label selector language: parsed and evaluated exactly as Calico does.

The grammar and its corner cases follow Calico's own tokenizer and parser
(projectcalico/calico libcalico-go/lib/selector, Apache-2.0) and its selector reference
(docs.tigera.io, "Selectors"); this is an independent implementation:

- whitespace is spaces and tabs only (a line break is an error, as in Calico);
- a label is a run of ``a-z A-Z 0-9 _ . / -`` (at most 512 characters); string literals are
  in ``'…'`` or ``"…"`` with no escapes;
- after a label come ``==``, ``!=``, ``in``, ``not in`` (also ``notin``), ``contains``,
  ``starts with`` / ``ends with`` (also without the space); ``has(label)``, ``all()`` and
  ``global()`` are written without a space before ``(``;
- ``!`` binds tighter than ``&&``, which binds tighter than ``||``; leading ``!`` repeat;
- ``in {}`` may be empty and its values may end with a comma; the empty selector is
  ``all()``;
- ``k != 'v'`` and ``k not in {…}`` match a resource without ``k``; ``contains``,
  ``starts with`` and ``ends with`` need the label; ``global()`` (meaningful only in a rule's
  ``namespaceSelector``, see ``for_namespaces``) and ``all()`` match everything in scope.

Why one module of 450 lines: tokenizer, parser, evaluator and label index of one
small language, kept together as Calico keeps them, so each corner case is read in one
place.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

MAX_LABEL_LENGTH = 512
# Calico has no limit, but its selectors are at most 1024 characters; Python recursion is
# bounded, so nesting is too (far beyond any real selector).
_MAX_DEPTH = 200
LABEL_NAMESPACE = "projectcalico.org/namespace"
LABEL_ORCHESTRATOR = "projectcalico.org/orchestrator"
LABEL_SERVICE_ACCOUNT = "projectcalico.org/serviceaccount"
LABEL_NAME = "projectcalico.org/name"
NAMESPACE_PREFIX = "pcns."  # namespace labels, as endpoints inherit them
SERVICE_ACCOUNT_PREFIX = "pcsa."  # service account labels, likewise


class SelectorError(ValueError):
    """A selector Calico would refuse; ``str()`` says why and where."""


@dataclass(frozen=True, slots=True)
class All:
    def __str__(self) -> str:
        return "all()"


@dataclass(frozen=True, slots=True)
class Global:
    def __str__(self) -> str:
        return "global()"


@dataclass(frozen=True, slots=True)
class Has:
    key: str

    def __str__(self) -> str:
        return f"has({self.key})"


@dataclass(frozen=True, slots=True)
class Compare:
    """``key OP 'value'`` for OP in ==, !=, contains, starts with, ends with."""

    op: str
    key: str
    value: str

    def __str__(self) -> str:
        return f"{self.key} {self.op} {_quoted(self.value)}"


@dataclass(frozen=True, slots=True)
class InSet:
    key: str
    values: frozenset[str]
    negated: bool  # not in

    def __str__(self) -> str:
        op = "not in" if self.negated else "in"
        return f"{self.key} {op} {{{', '.join(_quoted(v) for v in sorted(self.values))}}}"


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node

    def __str__(self) -> str:
        return f"!{_grouped(self.operand)}"


@dataclass(frozen=True, slots=True)
class And:
    operands: tuple[Node, ...]

    def __str__(self) -> str:
        return " && ".join(_grouped(o) for o in self.operands)


@dataclass(frozen=True, slots=True)
class Or:
    operands: tuple[Node, ...]

    def __str__(self) -> str:
        return " || ".join(_grouped(o) for o in self.operands)


Node = All | Global | Has | Compare | InSet | Not | And | Or


def _quoted(value: str) -> str:
    return f'"{value}"' if "'" in value else f"'{value}'"


def _grouped(node: Node) -> str:
    return f"({node})" if isinstance(node, And | Or) else str(node)


# --- tokens -----------------------------------------------------------------------------

_LABEL = re.compile(r"[a-zA-Z0-9_./-]+")
_BLANK = " \t"
# After a label: the word operators, each ending at a word boundary (Calico lets the two
# words of "starts with", "ends with", "not in" be written together).
_WORD_OPERATORS = (
    (re.compile(r"contains(?![a-zA-Z0-9_./-])"), "contains"),
    (re.compile(r"starts[ \t]*with(?![a-zA-Z0-9_./-])"), "starts with"),
    (re.compile(r"ends[ \t]*with(?![a-zA-Z0-9_./-])"), "ends with"),
    (re.compile(r"not[ \t]*in(?![a-zA-Z0-9_./-])"), "not in"),
    (re.compile(r"in(?![a-zA-Z0-9_./-])"), "in"),
)
_SYMBOLS = {"(": "(", ")": ")", "{": "{", "}": "}", ",": ","}

Token = tuple[str, str]  # (kind, value): kinds label, string, op, has, all, global, ...


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in _BLANK:
            i += 1
        if i >= n:
            tokens.append(("eof", ""))
            return tokens
        c = text[i]
        if c in _SYMBOLS:
            tokens.append((_SYMBOLS[c], c))
            i += 1
        elif c in "'\"":
            end = text.find(c, i + 1)
            if end < 0:
                raise SelectorError("unterminated string")
            tokens.append(("string", text[i + 1 : end]))
            i = end + 1
        elif text.startswith("==", i):
            tokens.append(("op", "=="))
            i += 2
        elif c == "=":
            raise SelectorError("expected ==")
        elif text.startswith("!=", i):
            tokens.append(("op", "!="))
            i += 2
        elif c == "!":
            tokens.append(("!", c))
            i += 1
        elif text.startswith("&&", i):
            tokens.append(("&&", "&&"))
            i += 2
        elif c == "&":
            raise SelectorError("expected &&")
        elif text.startswith("||", i):
            tokens.append(("||", "||"))
            i += 2
        elif c == "|":
            raise SelectorError("expected ||")
        elif tokens and tokens[-1][0] == "label":
            for pattern, op in _WORD_OPERATORS:
                found = pattern.match(text, i)
                if found:
                    tokens.append(("op", op))
                    i = found.end()
                    break
            else:
                raise SelectorError(f"expected an operator after label {tokens[-1][1]!r}")
        elif text.startswith("has(", i):
            i = _skip_blank(text, i + 4)
            key, i = _label(text, i)
            i = _skip_blank(text, i)
            if not text.startswith(")", i):
                raise SelectorError("no closing ')' after has(")
            tokens.append(("has", key))
            i += 1
        elif text.startswith("all(", i) or text.startswith("global(", i):
            word = "all" if text.startswith("all(", i) else "global"
            i = _skip_blank(text, i + len(word) + 1)
            if not text.startswith(")", i):
                raise SelectorError(f"no closing ')' after {word}(")
            tokens.append((word, ""))
            i += 1
        else:
            key, i = _label(text, i)
            tokens.append(("label", key))


def _skip_blank(text: str, i: int) -> int:
    while i < len(text) and text[i] in _BLANK:
        i += 1
    return i


def _label(text: str, i: int) -> tuple[str, int]:
    found = _LABEL.match(text, i)
    if found is None:
        raise SelectorError(f"expected a label at {text[i : i + 20]!r}")
    if len(found.group()) > MAX_LABEL_LENGTH:
        raise SelectorError(f"label too long ({len(found.group())} characters, at most 512)")
    return found.group(), found.end()


# --- parser -----------------------------------------------------------------------------


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.at = 0

    def peek(self) -> Token:
        return self.tokens[self.at]

    def take(self) -> Token:
        token = self.tokens[self.at]
        if token[0] != "eof":
            self.at += 1
        return token

    def disjunction(self, depth: int) -> Node:
        if depth > _MAX_DEPTH:
            raise SelectorError(f"parentheses nested more than {_MAX_DEPTH} deep")
        operands = [self.conjunction(depth)]
        while self.peek()[0] == "||":
            self.take()
            operands.append(self.conjunction(depth))
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def conjunction(self, depth: int) -> Node:
        operands = [self.operation(depth)]
        while self.peek()[0] == "&&":
            self.take()
            operands.append(self.operation(depth))
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def operation(self, depth: int) -> Node:
        negated = False
        while self.peek()[0] == "!":
            self.take()
            negated = not negated
        kind, value = self.take()
        node: Node
        if kind == "has":
            node = Has(value)
        elif kind == "all":
            node = All()
        elif kind == "global":
            node = Global()
        elif kind == "(":
            node = self.disjunction(depth + 1)
            if self.take()[0] != ")":
                raise SelectorError("expected )")
        elif kind == "label":
            node = self.comparison(value)
        elif kind == "eof":
            raise SelectorError("unexpected end of selector")
        else:
            raise SelectorError(f"unexpected {value!r}")
        return Not(node) if negated else node

    def comparison(self, key: str) -> Node:
        kind, op = self.take()
        if kind != "op":
            raise SelectorError(f"expected an operator after label {key!r}")
        if op in ("in", "not in"):
            if self.take()[0] != "{":
                raise SelectorError("expected set literal")
            values: list[str] = []
            while self.peek()[0] == "string":
                values.append(self.take()[1])
                if self.peek()[0] != ",":
                    break
                self.take()
            if self.take()[0] != "}":
                raise SelectorError("expected }")
            return InSet(key, frozenset(values), op == "not in")
        kind, value = self.take()
        if kind != "string":
            raise SelectorError(f"expected a quoted string after {key} {op}")
        return Compare(op, key, value)


def parse(text: str) -> Node:
    """The selector's syntax tree; raises ``SelectorError`` where Calico's parser does."""
    tokens = tokenize(text)
    if tokens[0][0] == "eof":
        return All()
    parser = _Parser(tokens)
    node = parser.disjunction(0)
    if parser.peek()[0] != "eof":
        raise SelectorError(f"unexpected content at end of selector: {parser.peek()[1]!r}")
    return node


def uses_global(node: Node) -> bool:
    """Whether ``global()`` appears (Calico allows it only in a rule's namespaceSelector)."""
    if isinstance(node, Global):
        return True
    if isinstance(node, Not):
        return uses_global(node.operand)
    if isinstance(node, And | Or):
        return any(uses_global(o) for o in node.operands)
    return False


# --- evaluation ---------------------------------------------------------------------------


def matches(node: Node, labels: Mapping[str, str]) -> bool:
    """Whether a resource with ``labels`` matches (``all()``/``global()`` match all)."""
    if isinstance(node, All | Global):
        return True
    if isinstance(node, Has):
        return node.key in labels
    if isinstance(node, Compare):
        value = labels.get(node.key)
        if node.op == "!=":
            return value != node.value
        if value is None:
            return False
        return _COMPARE[node.op](value, node.value)
    if isinstance(node, InSet):
        value = labels.get(node.key)
        if node.negated:
            return value is None or value not in node.values
        return value is not None and value in node.values
    if isinstance(node, Not):
        return not matches(node.operand, labels)
    if isinstance(node, And):
        return all(matches(o, labels) for o in node.operands)
    return any(matches(o, labels) for o in node.operands)


_COMPARE: dict[str, Callable[[str, str], bool]] = {
    "==": str.__eq__,
    "contains": lambda value, part: part in value,
    "starts with": str.startswith,
    "ends with": str.endswith,
}


def compare(op: str, value: str, literal: str) -> bool:
    """``value OP literal`` for a label that is there (OP ``==``, ``contains``, ``starts
    with``, ``ends with``)."""
    return _COMPARE[op](value, literal)


def for_namespaces(node: Node) -> Node:
    """A rule's ``namespaceSelector`` as the selector over endpoints Calico makes of it:
    every label gains the ``pcns.`` prefix (endpoints inherit their namespace's labels so
    prefixed), ``all()`` becomes "is in a namespace" and ``global()`` "is in none"."""
    if isinstance(node, All):
        return Has(LABEL_NAMESPACE)
    if isinstance(node, Global):
        return Not(Has(LABEL_NAMESPACE))
    return prefixed(node, NAMESPACE_PREFIX)


def prefixed(node: Node, prefix: str) -> Node:
    """The selector with ``prefix`` before every label (``all()`` and ``global()`` kept)."""
    if isinstance(node, Has):
        return Has(prefix + node.key)
    if isinstance(node, Compare):
        return Compare(node.op, prefix + node.key, node.value)
    if isinstance(node, InSet):
        return InSet(prefix + node.key, node.values, node.negated)
    if isinstance(node, Not):
        return Not(prefixed(node.operand, prefix))
    if isinstance(node, And):
        return And(tuple(prefixed(o, prefix) for o in node.operands))
    if isinstance(node, Or):
        return Or(tuple(prefixed(o, prefix) for o in node.operands))
    return node


def conjunction(nodes: Iterable[Node]) -> Node:
    parts = tuple(nodes)
    if not parts:
        return All()
    return parts[0] if len(parts) == 1 else And(parts)


class LabelIndex:
    """Selectors evaluated over many labelled items at once: items are numbered (bits of
    an int), and a selector's value is the bitset of the items it matches, computed from
    inverted indexes (label -> items, key -> items) with a few big-int operations."""

    def __init__(self, items: Iterable[tuple[int, Mapping[str, str]]]) -> None:
        self.universe = 0
        self.by_label: dict[tuple[str, str], int] = {}
        self.by_key: dict[str, int] = {}
        self.values: dict[str, dict[str, int]] = {}
        for i, labels in items:
            bit = 1 << i
            self.universe |= bit
            for key, value in labels.items():
                self.by_label[(key, value)] = self.by_label.get((key, value), 0) | bit
                self.by_key[key] = self.by_key.get(key, 0) | bit
                by_value = self.values.setdefault(key, {})
                by_value[value] = by_value.get(value, 0) | bit
        self._cache: dict[Node, int] = {}

    def bits(self, node: Node) -> int:
        hit = self._cache.get(node)
        if hit is None:
            hit = self._cache[node] = self._bits(node)
        return hit

    def _bits(self, node: Node) -> int:
        if isinstance(node, All | Global):
            return self.universe
        if isinstance(node, Has):
            return self.by_key.get(node.key, 0)
        if isinstance(node, Compare):
            if node.op == "==":
                return self.by_label.get((node.key, node.value), 0)
            if node.op == "!=":
                return self.universe & ~self.by_label.get((node.key, node.value), 0)
            test = _COMPARE[node.op]
            out = 0
            for value, bits in self.values.get(node.key, {}).items():
                if test(value, node.value):
                    out |= bits
            return out
        if isinstance(node, InSet):
            out = 0
            for value in node.values:
                out |= self.by_label.get((node.key, value), 0)
            return self.universe & ~out if node.negated else out
        if isinstance(node, Not):
            return self.universe & ~self.bits(node.operand)
        if isinstance(node, And):
            out = self.universe
            for operand in node.operands:
                out &= self.bits(operand)
            return out
        out = 0
        for operand in node.operands:
            out |= self.bits(operand)
        return out
