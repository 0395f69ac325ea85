"""The ``lint`` section of ``.github/reachdiff.yml``: what least-privilege findings fail the
check (``fail_on``) and each rule's severity (docs/intents.md). Values are checked against
the rules and severities ``analysis.lint`` knows; a typo is an error naming key and line.
"""

from __future__ import annotations

from typing import Any

import yaml

from analysis.lint import RULE_IDS as LINT_RULE_IDS
from analysis.lint import SEVERITIES as LINT_SEVERITIES
from bot.review.yamlnodes import NodeError, NodeReader, line, shown


def read_lint(reader: NodeReader, node: yaml.Node) -> dict[str, Any]:
    """``RepoSettings`` fields of the section (its presence alone turns linting on)."""
    fields = reader.mapping(node, "lint", ("fail_on", "rules"))
    out: dict[str, Any] = {"lint_enabled": True}
    if "fail_on" in fields:
        value = reader.scalar(fields["fail_on"])
        if value not in (*LINT_SEVERITIES, "never"):
            raise NodeError(
                "lint.fail_on",
                f"must be error, warning, note or never, got {shown(value)}",
                line(fields["fail_on"]),
            )
        out["lint_fail_on"] = value
    if "rules" in fields:
        rules = reader.mapping(fields["rules"], "lint.rules", tuple(sorted(LINT_RULE_IDS)))
        severities = []
        for rule, value_node in rules.items():
            value = reader.scalar(value_node)
            if value is False:  # YAML 1.1 reads an unquoted `off` as false
                value = "off"
            if value not in (*LINT_SEVERITIES, "off"):
                raise NodeError(
                    f"lint.rules.{rule}",
                    f"must be off, note, warning or error, got {shown(value)}",
                    line(value_node),
                )
            severities.append((rule, str(value)))
        out["lint_severities"] = tuple(severities)
    return out
