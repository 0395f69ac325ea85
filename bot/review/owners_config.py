"""Reading ``owners`` and ``break_glass`` of ``.github/reachdiff.yml`` from its YAML nodes.

Strict like the rest of the file: an unknown key, a wrong type, a malformed login, team,
glob or CIDR, an empty rule, or a rule whose approvals can never be given raises
``bot.review.yamlnodes.NodeError`` with the key (``owners.rules[2].destination.cidrs``) and
the line; the settings reader turns it into its own error. Two forms are accepted::

    owners:                 # rules matched in order; every matching rule must approve
      - name: payments
        destination: {namespaces: [payments]}
        teams: [acme/payments-owners]
        required_approvals: 2

    owners:                 # the same, with the mode spelled out
      mode: first           # all (default): every matching rule; first: the first only
      rules: [...]
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml

from analysis.model import Labels
from bot.review.owners import MODES, EndpointSelector, Mode, OwnerRule, Owners
from bot.review.yamlnodes import (
    NAMESPACE_GLOB,
    NodeError,
    NodeReader,
    check_glob,
    check_login,
    check_namespace,
    check_team,
)
from bot.review.yamlnodes import line as _line
from bot.review.yamlnodes import shown as _shown

MAX_RULES = 100
MAX_ITEMS = 200
MAX_REQUIRED = 50

_KIND = re.compile(r"[A-Za-z*?][A-Za-z0-9*?]{0,62}")
# Label keys and values as Kubernetes allows them (prefix/name, 63-character name).
_LABEL_NAME = re.compile(r"(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)")
_LABEL_PREFIX = re.compile(r"[a-z0-9](?:[-a-z0-9.]{0,251}[a-z0-9])?")
_NAME = re.compile(r"[^\x00-\x1f\x7f]{1,100}")

_RULE_KEYS = (
    "name",
    "destination",
    "source",
    "environments",
    "files",
    "users",
    "teams",
    "required_approvals",
)
_SELECTOR_KEYS = ("namespaces", "namespace_labels", "workloads", "pod_labels", "cidrs", "outside")


@dataclass(frozen=True, slots=True)
class People:
    users: frozenset[str] = frozenset()
    teams: tuple[str, ...] = ()


def read_owners(node: yaml.Node, construct: Callable[[yaml.Node], object]) -> Owners:
    """``construct`` turns a scalar node into its value (the settings file's loader)."""
    return _Reader(construct).owners(node)


def read_people(node: yaml.Node, key: str, construct: Callable[[yaml.Node], object]) -> People:
    """``break_glass: {users: [...], teams: [...]}``: at least one of them."""
    reader = _Reader(construct)
    fields = reader.mapping(node, key, ("users", "teams"))
    users, teams = reader.people(fields, key)
    if not users and not teams:
        raise NodeError(key, "name at least one user or team", _line(node))
    return People(frozenset(users), tuple(dict.fromkeys(teams)))


class _Reader(NodeReader):
    def strings(
        self,
        node: yaml.Node,
        key: str,
        check: Callable[[str], str],
        *,
        max_items: int = MAX_ITEMS,
        allow_empty: bool = False,
    ) -> list[str]:
        return super().strings(node, key, check, max_items=max_items, allow_empty=allow_empty)

    def owners(self, node: yaml.Node) -> Owners:
        mode: Mode = "all"
        rules_node = node
        if isinstance(node, yaml.MappingNode):
            fields = self.mapping(node, "owners", ("mode", "rules"))
            if "mode" in fields:
                value = self.scalar(fields["mode"])
                if value not in MODES:
                    raise NodeError(
                        "owners.mode",
                        f"must be all or first, got {_shown(value)}",
                        _line(fields["mode"]),
                    )
                mode = "first" if value == "first" else "all"
            if "rules" not in fields:
                raise NodeError("owners", "needs `rules`, a list of owner rules", _line(node))
            rules_node = fields["rules"]
        if not isinstance(rules_node, yaml.SequenceNode):
            raise NodeError(
                "owners", "must be a list of rules (or `mode` and `rules`)", _line(rules_node)
            )
        if len(rules_node.value) > MAX_RULES:
            raise NodeError("owners", f"has more than {MAX_RULES} rules", _line(rules_node))
        # A plain list is keyed owners[i]; under `rules`, owners.rules[i].
        prefix = "owners.rules" if rules_node is not node else "owners"
        rules = tuple(self.rule(i, item, prefix) for i, item in enumerate(rules_node.value))
        seen: set[str] = set()
        for rule in rules:
            if rule.name in seen:
                raise NodeError(
                    f"{prefix}[{rule.index}].name", f"{rule.name!r} names two rules", rule.line
                )
            seen.add(rule.name)
        return Owners(rules, mode)

    def rule(self, index: int, node: yaml.Node, prefix: str) -> OwnerRule:
        key = f"{prefix}[{index}]"
        fields = self.mapping(node, key, _RULE_KEYS)
        name = f"owners[{index}]"
        if "name" in fields:
            value = self.scalar(fields["name"])
            if not isinstance(value, str) or not _NAME.fullmatch(value):
                raise NodeError(
                    f"{key}.name", "must be a short one-line string", _line(fields["name"])
                )
            name = value
        users, teams = self.people(fields, key)
        if not users and not teams:
            raise NodeError(key, "name the owners: `users`, `teams` or both", _line(node))
        required = 1
        if "required_approvals" in fields:
            required = self.integer(
                fields["required_approvals"], f"{key}.required_approvals", 1, MAX_REQUIRED
            )
            if not teams and required > len(users):
                raise NodeError(
                    f"{key}.required_approvals",
                    f"{required} approvals can never come from the {len(users)} users listed",
                    _line(fields["required_approvals"]),
                )
        destination = source = None
        if "destination" in fields:
            destination = self.selector(fields["destination"], f"{key}.destination")
        if "source" in fields:
            source = self.selector(fields["source"], f"{key}.source")
        # An environment is a directory of the repository: "/overlays/prod" names it too.
        environments = tuple(
            e.strip("/") or "."
            for e in self.globs(fields.get("environments"), f"{key}.environments")
        )
        files = self.globs(fields.get("files"), f"{key}.files")
        if destination is None and source is None and not environments and not files:
            raise NodeError(
                key,
                "matches nothing in particular: give `destination`, `source`, "
                "`environments` or `files` (paths no rule matches go to `approvers`)",
                _line(node),
            )
        return OwnerRule(
            index=index,
            line=_line(node),
            name=name,
            users=frozenset(users),
            teams=tuple(dict.fromkeys(teams)),
            required_approvals=required,
            destination=destination,
            source=source,
            environments=environments,
            files=files,
        )

    def people(self, fields: dict[str, yaml.Node], key: str) -> tuple[list[str], list[str]]:
        users = (
            self.strings(fields["users"], f"{key}.users", check_login) if "users" in fields else []
        )
        teams = (
            self.strings(fields["teams"], f"{key}.teams", check_team) if "teams" in fields else []
        )
        return users, teams

    def selector(self, node: yaml.Node, key: str) -> EndpointSelector:
        fields = self.mapping(node, key, _SELECTOR_KEYS)
        if not fields:
            raise NodeError(key, f"give at least one of: {', '.join(_SELECTOR_KEYS)}", _line(node))
        out: dict[str, Any] = {}
        if "namespaces" in fields:
            out["namespaces"] = tuple(
                self.strings(fields["namespaces"], f"{key}.namespaces", check_namespace)
            )
        if "workloads" in fields:
            out["workloads"] = tuple(
                self.strings(fields["workloads"], f"{key}.workloads", _check_workload)
            )
        for name in ("namespace_labels", "pod_labels"):
            if name in fields:
                out[name] = self.labels(fields[name], f"{key}.{name}")
        if "cidrs" in fields:
            out["cidrs"] = tuple(self.strings(fields["cidrs"], f"{key}.cidrs", _check_cidr))
        if "outside" in fields:
            value = self.scalar(fields["outside"])
            if not isinstance(value, bool):
                raise NodeError(
                    f"{key}.outside",
                    f"must be true or false, got {_shown(value)}",
                    _line(fields["outside"]),
                )
            out["outside"] = value
        if "cidrs" in out and len(out) > 1:
            raise NodeError(
                f"{key}.cidrs",
                "external ranges have no namespace, labels or workload: use `cidrs` alone "
                "(another rule can name the workloads)",
                _line(fields["cidrs"]),
            )
        return EndpointSelector(**out)

    def labels(self, node: yaml.Node, key: str) -> Labels:
        if not isinstance(node, yaml.MappingNode) or not node.value:
            raise NodeError(
                key, "must map label keys to values, e.g. {team: payments}", _line(node)
            )
        out: dict[str, str] = {}
        for key_node, value_node in node.value:
            name, value = self.scalar(key_node), self.scalar(value_node)
            if not isinstance(name, str) or not _label_key(name):
                raise NodeError(key, f"{_shown(name)} is not a label key", _line(key_node))
            if not isinstance(value, str) or not (value == "" or _LABEL_NAME.fullmatch(value)):
                raise NodeError(
                    f"{key}.{name}",
                    f"{_shown(value)} is not a label value (quote numbers)",
                    _line(value_node),
                )
            if name in out:
                raise NodeError(f"{key}.{name}", "appears twice", _line(key_node))
            out[name] = value
        return tuple(sorted(out.items()))

    def globs(self, node: yaml.Node | None, key: str) -> tuple[str, ...]:
        if node is None:
            return ()
        return tuple(self.strings(node, key, check_glob))


def _label_key(name: str) -> bool:
    prefix, slash, rest = name.rpartition("/")
    if slash and (not prefix or not _LABEL_PREFIX.fullmatch(prefix)):
        return False
    return bool(_LABEL_NAME.fullmatch(rest))


def _check_workload(value: str) -> str:
    parts = value.split("/")
    if (
        len(parts) != 3
        or not NAMESPACE_GLOB.fullmatch(parts[0])
        or not _KIND.fullmatch(parts[1])
        or not re.fullmatch(r"[a-z0-9*?][-a-z0-9.*?]{0,252}", parts[2])
    ):
        raise ValueError(
            f"{_shown(value)} is not a workload as namespace/Kind/name "
            "(e.g. payments/StatefulSet/payments-db; '*' and '?' are wildcards)"
        )
    return value


def _check_cidr(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=True))
    except ValueError:
        raise ValueError(
            f"{_shown(value)} is not a CIDR like 10.0.0.0/8 (host bits zero)"
        ) from None
