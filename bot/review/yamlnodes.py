"""Strict reading of YAML nodes: the readers ``.github/reachdiff.yml`` (``settings``) and its
owner rules (``owners_config``) share.

Both walk the node tree rather than loaded values, so that every complaint names its key
(``owners.rules[2].destination.cidrs``) and line. A complaint is a ``NodeError``; the file's
parser turns it into its own input error (``SettingsError``), which names the file and side.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import yaml

from bot.inputs.files import check_glob_syntax

# GitHub's rules for logins and team slugs; namespace names as Kubernetes allows them, with
# "*" standing for any characters.
LOGIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}")
TEAM_SLUG = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,98}[A-Za-z0-9_])?")
NAMESPACE_GLOB = re.compile(r"[a-z0-9*](?:[-a-z0-9*]{0,61}[a-z0-9*])?")


class NodeError(Exception):
    """What is wrong at ``key`` (dotted, as written in the file), on ``line``."""

    def __init__(self, key: str, message: str, line: int | None) -> None:
        super().__init__(key, message, line)
        self.key = key
        self.message = message
        self.line = line


def line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def shown(value: object) -> str:
    """A value as an error message quotes it: short, and never a whole mapping."""
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if value is None:
        return "nothing"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_login(value: str) -> str:
    login = value.removeprefix("@")
    if not LOGIN.fullmatch(login):
        raise ValueError(f"{shown(value)} is not a GitHub login")
    return login.lower()


def check_team(value: str) -> str:
    org, slash, slug = value.removeprefix("@").partition("/")
    if not slash or not LOGIN.fullmatch(org) or not TEAM_SLUG.fullmatch(slug):
        raise ValueError(f"{shown(value)} is not a team as 'org/team-slug', e.g. acme/netsec")
    return f"{org}/{slug}".lower()


def check_namespace(value: str) -> str:
    if not NAMESPACE_GLOB.fullmatch(value):
        raise ValueError(
            f"{shown(value)} is not a namespace name (a '*' may stand for any characters)"
        )
    return value


def check_glob(value: str) -> str:
    """A path glob (``bot.inputs.files.compile_glob``), refused with the reason when it uses
    what reachdiff's globs do not have."""
    problem = check_glob_syntax(value)
    if problem:
        raise ValueError(f"{shown(value)}: {problem}")
    return value.removeprefix("./")


def check_depth(text: str, limit: int) -> None:
    """Refuse nesting deeper than ``limit`` from the event stream, before the (recursive)
    composer sees it: a small file of brackets must not exhaust the stack."""
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > limit:
                mark = event.start_mark
                raise NodeError(
                    "", "nested too deeply", mark.line + 1 if mark is not None else None
                )
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


class NodeReader:
    """Mappings, lists, numbers and booleans read strictly; ``construct`` turns a scalar
    node into its value (the file's loader)."""

    def __init__(self, construct: Callable[[yaml.Node], object]) -> None:
        self._construct = construct

    def scalar(self, node: yaml.Node) -> object:
        """A scalar's value; ``[]`` or ``{}`` for a collection, which no check accepts."""
        if not isinstance(node, yaml.ScalarNode):
            return [] if isinstance(node, yaml.SequenceNode) else {}
        try:
            return self._construct(node)
        except ValueError as err:  # e.g. an integer with more digits than Python converts
            raise NodeError("", f"invalid YAML value: {err}", line(node)) from None

    def mapping(self, node: yaml.Node, key: str, allowed: tuple[str, ...]) -> dict[str, yaml.Node]:
        """The mapping's value nodes by key; ``key`` "" is the whole file."""
        if not isinstance(node, yaml.MappingNode):
            what = f"{key} must be" if key else "the file must be"
            raise NodeError(key, f"{what} a mapping of keys to values", line(node))
        out: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            # Keys are taken as written: a merge key ("<<") is one more unknown key.
            name = key_node.value if isinstance(key_node, yaml.ScalarNode) else "?"
            full = f"{key}.{name}" if key else name
            if name not in allowed:
                choices = ", ".join(allowed)
                raise NodeError(full, f"unknown key (expected one of: {choices})", line(key_node))
            if name in out:
                raise NodeError(full, "appears twice", line(key_node))
            out[name] = value_node
        return out

    def strings(
        self,
        node: yaml.Node,
        key: str,
        check: Callable[[str], str],
        *,
        max_items: int,
        allow_empty: bool = True,
    ) -> list[str]:
        """A list of strings, each passed through ``check`` (a ``ValueError`` is the
        complaint)."""
        if not isinstance(node, yaml.SequenceNode):
            raise NodeError(key, "must be a list, e.g. [a, b]", line(node))
        if not node.value and not allow_empty:
            raise NodeError(key, "is empty (leave the key out instead)", line(node))
        if len(node.value) > max_items:
            raise NodeError(key, f"has more than {max_items} entries", line(node))
        out = []
        for item in node.value:
            value = self.scalar(item)
            if not isinstance(value, str):
                raise NodeError(
                    key, f"entries must be strings, got {shown(value)} (quote it)", line(item)
                )
            try:
                out.append(check(value))
            except ValueError as err:
                raise NodeError(key, str(err), line(item)) from None
        return out

    def integer(self, node: yaml.Node, key: str, low: int, high: int) -> int:
        value = self.scalar(node)
        # bool is an int in Python, but "required_approvals: yes" is a mistake.
        if not isinstance(value, int) or isinstance(value, bool):
            raise NodeError(key, f"must be a whole number, got {shown(value)}", line(node))
        if not low <= value <= high:
            raise NodeError(key, f"must be between {low} and {high}, got {value}", line(node))
        return value

    def boolean(self, node: yaml.Node, key: str) -> bool:
        value = self.scalar(node)
        if not isinstance(value, bool):
            raise NodeError(key, f"must be true or false, got {shown(value)}", line(node))
        return value
