"""How ``reachdiff check`` and ``reachdiff lint`` write their results: JSON (a contract:
fields are only ever added), text and Markdown. SARIF is in ``analysis.sarif``."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from analysis import markdown
from analysis.check import TYPES, Violation
from analysis.declared_review import DeclaredReview
from analysis.formats import cause_text
from analysis.lint import Finding
from analysis.report import cause_json
from analysis.wording import counted

MAX_PAIRS_SHOWN = 20  # per group in text and Markdown (JSON has every one)


def violation_json(v: Violation) -> dict[str, Any]:
    return {
        "type": v.type,
        "src": v.src.id if v.src else None,
        "dst": v.dst.id if v.dst else None,
        "ports": v.ports.to_json(),
        "intent": {
            "name": v.intent.name,
            "kind": v.intent.kind,
            "entry": v.intent.entry,
            "file": v.intent.file,
            "line": v.intent.line,
        },
        "because": [cause_json(c) for c in v.because],
        "detail": v.detail,
        "expect": v.expect,
        "actual": v.actual,
    }


def check_json(
    violations: Sequence[Violation], intents: int, tests: int, *, limit: int | None = None
) -> dict[str, Any]:
    """``limit``: the violations listed (``counts`` and ``total`` count every one, and
    ``omitted`` says how many are not listed)."""
    shown = _capped(violations, limit)
    return {
        "passed": not violations,
        "declarations": {"intents": intents, "tests": tests},
        "counts": counts(violations),
        "violations": [violation_json(v) for v in shown],
        "total": len(violations),
        "omitted": len(violations) - len(shown),
    }


def _capped(violations: Sequence[Violation], limit: int | None) -> Sequence[Violation]:
    return violations if limit is None else violations[:limit]


def omitted_line(total: int, limit: int | None) -> str:
    """What a capped output says of the violations it leaves out ("" when none)."""
    if limit is None or total <= limit:
        return ""
    return (
        f"… and {counted(total - limit, 'more violation')} not shown: {limit} of {total} "
        "(--max-violations N shows N, 0 shows all)"
    )


def counts(violations: Iterable[Violation]) -> dict[str, int]:
    found = {t: 0 for t in TYPES}
    for v in violations:
        found[v.type] += 1
    return found


def summary(violations: Sequence[Violation]) -> str:
    if not violations:
        return "every declared communication and connectivity test holds"
    parts = ", ".join(f"{n} {t}" for t, n in counts(violations).items() if n)
    return f"{counted(len(violations), 'violation')} of declared communications ({parts})"


_WORDS = {
    "forbidden": "allowed although a deny forbids it",
    "undeclared": "allowed but declared by no allow",
    "blocked": "required but not allowed",
    "test": "connectivity test failed",
}


def groups(violations: Sequence[Violation]) -> Iterable[tuple[Violation, list[Violation]]]:
    """Violations of one declaration with the same ports and causes, in order."""

    def key(v: Violation) -> tuple[object, ...]:
        return (v.type, v.intent, v.ports, v.because, v.detail, v.expect, v.actual)

    groups: dict[tuple[object, ...], list[Violation]] = {}
    for v in violations:
        groups.setdefault(key(v), []).append(v)
    for group in groups.values():
        yield group[0], group


def _pair(v: Violation) -> str:
    if v.src is None or v.dst is None:
        return "(no endpoint)"
    return f"{v.src.id} -> {v.dst.id}"


@dataclass(frozen=True, slots=True)
class _Style:
    """How one format writes a group of violations: its first line (given the words for
    what is wrong), the prefix of the lines under it, code and prose."""

    head: Callable[[Violation, str], str]
    under: str
    code: Callable[[str], str]
    text: Callable[[str], str]
    detail: Callable[[str], str]


_TEXT = _Style(
    head=lambda first, what: (
        f"{first.type}: {what} on {first.ports}  ({first.intent.kind} {first.intent.name} "
        f"{first.intent.entry}, {first.intent.file}:{first.intent.line})"
    ),
    under="    ",
    code=str,
    text=str,
    detail=lambda detail: f"({detail})",
)
_MARKDOWN = _Style(
    head=lambda first, what: (
        f"- **{first.type}**: {what} on {markdown.code(first.ports)} — "
        f"{markdown.text(first.intent.kind)} {markdown.code(first.intent.name)} "
        f"{markdown.text(first.intent.entry)} "
        f"({markdown.code(f'{first.intent.file}:{first.intent.line}')})"
    ),
    under="  - ",
    code=markdown.code,
    text=markdown.text,
    detail=markdown.text,
)


def _violation_lines(
    violations: Sequence[Violation], limit: int | None, style: _Style
) -> list[str]:
    lines = []
    for first, group in groups(_capped(violations, limit)):
        what = _WORDS[first.type]
        if first.type == "test":
            what += f": expected {first.expect}, {style.text(first.actual)}"
        lines.append(style.head(first, what))
        lines.extend(style.under + style.code(_pair(v)) for v in group[:MAX_PAIRS_SHOWN])
        if len(group) > MAX_PAIRS_SHOWN:
            lines.append(f"{style.under}… and {len(group) - MAX_PAIRS_SHOWN} more")
        lines.extend(f"{style.under}because {style.text(cause_text(c))}" for c in first.because)
        if first.detail:
            lines.append(style.under + style.detail(first.detail))
    return lines


def check_text(violations: Sequence[Violation], *, limit: int | None = None) -> str:
    """``limit``: the violations listed; the summary counts every one."""
    lines = [f"reachdiff: {summary(violations)}", *_violation_lines(violations, limit, _TEXT)]
    if omitted := omitted_line(len(violations), limit):
        lines.append(omitted)
    return "\n".join(lines) + "\n"


def check_markdown(
    violations: Sequence[Violation], heading: str = "###", *, limit: int | None = None
) -> str:
    if not violations:
        return f"{heading} Declared communications\n\n✅ {summary(violations)}.\n"
    lines = [f"{heading} Declared communications\n", f"❌ {summary(violations)}.\n"]
    lines += _violation_lines(violations, limit, _MARKDOWN)
    if omitted := omitted_line(len(violations), limit):
        lines.append(f"\n{markdown.text(omitted)}")
    return "\n".join(lines) + "\n"


# -- lint


def finding_json(f: Finding) -> dict[str, Any]:
    return {
        "rule": f.rule,
        "severity": f.severity,
        "file": f.file,
        "line": f.line,
        "subject": f.subject,
        "message": f.message,
        "fix": f.fix,
    }


def lint_json(findings: Sequence[Finding], failed: bool, fail_on: str) -> dict[str, Any]:
    return {
        "failed": failed,
        "fail_on": fail_on,
        "findings": [finding_json(f) for f in findings],
    }


def lint_text(findings: Sequence[Finding]) -> str:
    lines = [
        f"{f.file}:{f.line}: {f.severity} [{f.rule}] {f.message}\n    fix: {f.fix}"
        for f in findings
    ]
    lines.append(f"reachdiff: {counted(len(findings), 'least-privilege finding')}")
    return "\n".join(lines) + "\n"


def lint_markdown(findings: Sequence[Finding], heading: str = "###") -> str:
    lines = [f"{heading} Least-privilege findings\n"]
    if not findings:
        lines.append("✅ none.")
        return "\n".join(lines) + "\n"
    lines += ["| severity | rule | where | finding | fix |", "|---|---|---|---|---|"]
    for f in findings:
        lines.append(
            f"| {f.severity} | {markdown.code(f.rule, cell=True)} | "
            f"{markdown.code(f'{f.file}:{f.line}', cell=True)} | "
            f"{markdown.text(f.message)} | {markdown.text(f.fix)} |"
        )
    return "\n".join(lines) + "\n"


def declared_json(d: DeclaredReview) -> dict[str, Any]:
    """A pull request's review of the declarations (``reachdiff review --format json``)."""
    return {
        "fails": d.fails,
        "needs_approval": d.needs_approval,
        "forbidden_new": {"count": d.hard_count, "violations": [violation_json(v) for v in d.hard]},
        "approval_new": {
            "count": d.gated_count,
            "violations": [violation_json(v) for v in d.gated],
        },
        "declarations_changed": d.declarations_changed,
        "declaration_diff": d.declaration_diff,
        "new_findings": [finding_json(f) for f in d.new_findings],
        "failing_findings": [finding_json(f) for f in d.failing_findings],
        "errors": list(d.errors),
    }
