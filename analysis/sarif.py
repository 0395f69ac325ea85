"""SARIF 2.1.0 logs of ``reachdiff check`` and ``reachdiff lint``, for GitHub code scanning.

The shape follows the OASIS SARIF 2.1.0 schema (validated in the tests against the
official schema, tests/fixtures/sarif) and what GitHub reads of it: one run per tool
invocation, every rule described in ``tool.driver.rules`` with a default level, each
result pointing at a repository-relative file and line (``%SRCROOT%``), and a
``partialFingerprints`` entry that stays the same when lines move, so an alert is tracked
across commits instead of reopened.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

from analysis.check import Violation
from analysis.check_report import groups
from analysis.formats import cause_text
from analysis.lint import RULES, Finding

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
VERSION = "2.1.0"
TOOL = "reachdiff"
MAX_PAIRS = 50  # listed in one result's message; the JSON output has every pair

# (id, name, short description, default level)
CHECK_RULES: tuple[tuple[str, str, str, str], ...] = (
    (
        "intent/forbidden",
        "ForbiddenCommunication",
        "A path the policies allow matches a deny entry of an Intent",
        "error",
    ),
    (
        "intent/undeclared",
        "UndeclaredCommunication",
        "A path to or from an Intent's scope that no allow entry declares",
        "error",
    ),
    (
        "intent/blocked",
        "BlockedRequiredCommunication",
        "A required allow entry of an Intent that the policies deny",
        "error",
    ),
    (
        "intent/test",
        "FailedConnectivityTest",
        "A ConnectivityTest case whose expectation does not hold",
        "error",
    ),
)


def _log(
    rules: list[dict[str, Any]], results: list[dict[str, Any]], version: str
) -> dict[str, Any]:
    driver: dict[str, Any] = {"name": TOOL, "rules": rules}
    if version:
        driver["semanticVersion"] = version
    return {
        "$schema": SCHEMA,
        "version": VERSION,
        "runs": [
            {
                "tool": {"driver": driver},
                "originalUriBaseIds": {
                    "%SRCROOT%": {"description": {"text": "the repository root"}}
                },
                "results": results,
            }
        ],
    }


def _location(file: str, line: int, text: str = "") -> dict[str, Any]:
    physical: dict[str, Any] = {
        "artifactLocation": {"uri": file, "uriBaseId": "%SRCROOT%"},
        "region": {"startLine": max(1, line)},
    }
    out: dict[str, Any] = {"physicalLocation": physical}
    if text:
        out["message"] = {"text": text}
    return out


def _fingerprint(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


# GitHub code scanning ranks security alerts by ``security-severity`` (0-10: above 7 high,
# 4 to 7 medium, below 4 low): a forbidden path is an exposure, an undeclared one an
# unreviewed opening, a blocked one an outage rather than a breach.
_SECURITY_SEVERITY = {
    "intent/forbidden": "8.0",
    "intent/undeclared": "5.0",
    "intent/blocked": "3.0",
    "intent/test": "5.0",
}
_LINT_SECURITY_SEVERITY = {"error": "7.0", "warning": "5.0", "note": "2.0"}


def _rule(rule_id: str, name: str, text: str, level: str, help_text: str) -> dict[str, Any]:
    severity = _SECURITY_SEVERITY.get(rule_id, _LINT_SECURITY_SEVERITY.get(level, "5.0"))
    return {
        "id": rule_id,
        "name": name,
        "shortDescription": {"text": text},
        "fullDescription": {"text": text},
        "help": {"text": help_text},
        "defaultConfiguration": {"level": level},
        "properties": {
            "tags": ["security", "kubernetes", "network-policy"],
            "security-severity": severity,
        },
    }


def check_sarif(violations: Sequence[Violation], version: str = "") -> dict[str, Any]:
    """One result per declaration entry, type, ports and causes; the message lists its
    pairs of endpoints, the related locations the policy rules that decided them."""
    rules = [
        _rule(rid, name, text, level, f"{text}. See docs/intents.md.")
        for rid, name, text, level in CHECK_RULES
    ]
    index = {rid: n for n, (rid, *_rest) in enumerate(CHECK_RULES)}
    results = []

    for first, group in groups(violations):
        rule_id = f"intent/{first.type}"
        d = first.intent
        pairs = [f"{v.src.id} -> {v.dst.id}" if v.src and v.dst else "(no endpoint)" for v in group]
        shown = "; ".join(pairs[:MAX_PAIRS])
        if len(pairs) > MAX_PAIRS:
            shown += f"; and {len(pairs) - MAX_PAIRS} more"
        what = {
            "forbidden": "allowed although denied by",
            "undeclared": "allowed but not declared by any allow; in the scope of",
            "blocked": "not allowed although required by",
            "test": f"expected {first.expect}, {first.actual}, in",
        }[first.type]
        message = f"{first.ports} {what} {d.kind} {d.name} {d.entry}: {shown}"
        if first.detail:
            message += f" ({first.detail})"
        result: dict[str, Any] = {
            "ruleId": rule_id,
            "ruleIndex": index[rule_id],
            "level": "error",
            "message": {"text": message},
            "locations": [_location(d.file, d.line)],
            "partialFingerprints": {
                "reachdiffViolation/v1": _fingerprint(
                    first.type, d.kind, d.name, d.entry, str(first.ports), *sorted(pairs)
                )
            },
        }
        related = [
            {**_location(c.file, c.line, cause_text(c)), "id": n}
            for n, c in enumerate(first.because)
            if c.file
        ]
        if related:
            result["relatedLocations"] = related
        results.append(result)
    return _log(rules, results, version)


_LEVELS = {"error": "error", "warning": "warning", "note": "note"}


def lint_sarif(findings: Iterable[Finding], version: str = "") -> dict[str, Any]:
    rules = [
        _rule(
            f"lint/{r.id}",
            r.id,
            r.summary,
            _LEVELS[r.severity],
            f"{r.summary}. See docs/intents.md.",
        )
        for r in RULES
    ]
    index = {r.id: n for n, r in enumerate(RULES)}
    results = [
        {
            "ruleId": f"lint/{f.rule}",
            "ruleIndex": index[f.rule],
            "level": _LEVELS[f.severity],
            "message": {"text": f"{f.message}. Fix: {f.fix}"},
            "locations": [_location(f.file, f.line)],
            "partialFingerprints": {
                "reachdiffFinding/v1": _fingerprint(f.rule, f.subject, f.message)
            },
        }
        for f in findings
    ]
    return _log(rules, results, version)
