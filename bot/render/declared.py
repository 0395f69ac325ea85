"""The pull request's declared communications and least-privilege findings as shown on
GitHub: a section of the sticky comment and check-run annotations at their lines."""

from __future__ import annotations

import re

from analysis import markdown
from analysis.check import Violation
from analysis.check_report import groups
from analysis.declared_review import DeclaredReview
from analysis.formats import cause_text
from analysis.wording import counted

MAX_GROUPS = 30  # per list in the comment; the check run's annotations and JSON have more
MAX_PAIRS = 10

_LEVEL = {"error": "failure", "warning": "warning", "note": "notice"}


def declared_section(d: DeclaredReview, approvers: str) -> str:
    """Markdown appended to the sticky comment (empty when there is nothing to say)."""
    parts: list[str] = []
    for error in d.errors:
        parts.append(f"- ⚠️ declarations not read: {code(error)}")
    if d.hard_count:
        parts.append(
            f"#### ⛔ {counted(d.hard_count, 'new violation')} no approval lifts\n\n"
            "Paths the base branch's intents forbid (or tests expecting `denied` now fail). "
            "Close them, or change the intent in this pull request (that change needs "
            "approval).\n"
        )
        parts.append(_violations(d.hard))
    if d.gated_count:
        parts.append(
            f"#### 🔐 {counted(d.gated_count, 'new violation')} needing approval from {approvers}\n"
        )
        parts.append(_violations(d.gated))
    if d.declarations_changed:
        parts.append(
            "#### ✏️ This pull request changes the declared communications\n\n"
            "Intents and connectivity tests are read from the base branch; changing them "
            f"changes what later pull requests are judged by, so it needs approval from "
            f"{approvers} like a widening.\n"
        )
        if d.declaration_diff:
            parts.append(_fenced(d.declaration_diff, "diff"))
    if d.new_findings:
        failing = len(d.failing_findings)
        verdict = (
            f"{failing} at or above {code(d.fail_on)} fail the check"
            if failing
            else f"none at or above {code(d.fail_on)}"
        )
        parts.append(
            f"#### Least-privilege findings this pull request introduces ({verdict})\n\n"
            "| severity | rule | where | finding | fix |\n|---|---|---|---|---|"
        )
        for f in d.new_findings[: MAX_GROUPS * 2]:
            parts.append(
                f"| {f.severity} | {code(f.rule, cell=True)} | "
                f"{code(f'{f.file}:{f.line}', cell=True)} | {_cell(f.message)} | {_cell(f.fix)} |"
            )
        parts.append("")
    if not parts:
        return ""
    return _bounded("### Declared communications\n\n" + "\n".join(parts) + "\n")


MAX_SECTION = 24_000  # characters: the rest of the comment keeps its room (64 KiB in all)


def _bounded(section: str) -> str:
    """The section, cut at a line when longer than ``MAX_SECTION`` (and a code fence the
    cut leaves open closed), saying where the rest is."""
    if len(section) <= MAX_SECTION:
        return section
    kept = section[:MAX_SECTION].rpartition("\n")[0]
    fences = re.findall(r"^(`{3,})", kept, flags=re.MULTILINE)
    if len(fences) % 2:
        kept += "\n" + fences[-1]
    return (
        kept + "\n\n… cut short: the check run's annotations and `reachdiff review "
        "--format json` list everything.\n"
    )


def _cell(value: str) -> str:
    return markdown.text(value).replace("|", "\\|")


def code(value: object, *, cell: bool = False) -> str:
    return markdown.code(value, cell=cell)


def _fenced(body: str, info: str) -> str:
    """A fenced block longer than any run of backticks in ``body`` (PR content)."""
    longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{body}\n{fence}\n"


def _violations(violations: tuple[Violation, ...]) -> str:
    lines = []
    grouped = list(groups(violations))
    for first, group in grouped[:MAX_GROUPS]:
        d = first.intent
        what = {
            "forbidden": "allowed although denied by",
            "undeclared": "allowed, undeclared, in the scope of",
            "blocked": "required by, but not allowed:",
            "test": f"expected {first.expect}, {first.actual}:",
        }[first.type]
        lines.append(
            f"- **{first.type}** {code(first.ports)} {what} {d.kind} {code(d.name)} "
            f"{d.entry} ({code(f'{d.file}:{d.line}')})"
        )
        for v in group[:MAX_PAIRS]:
            pair = f"{v.src.id} → {v.dst.id}" if v.src and v.dst else "no endpoint matches"
            lines.append(f"  - {code(pair)}")
        if len(group) > MAX_PAIRS:
            lines.append(f"  - … and {len(group) - MAX_PAIRS} more")
        for c in first.because:
            lines.append(f"  - because {markdown.text(cause_text(c))}")
        if first.detail:
            lines.append(f"  - {markdown.text(first.detail)}")
    if len(grouped) > MAX_GROUPS:
        lines.append(f"- … and {len(grouped) - MAX_GROUPS} more groups")
    return "\n".join(lines) + "\n"


# (path, line, annotation level, title, message): ``bot.render.posts`` makes them
# ``Annotation``s (this module is below it).
Note = tuple[str, int, str, str, str]


def declared_annotations(d: DeclaredReview) -> list[Note]:
    """The new lint findings at their lines, then the new violations at their
    declaration's line (failures first: the checks API keeps the first 50)."""
    out: list[Note] = []
    for first, group in groups(d.hard + d.gated):
        decl = first.intent
        if decl.line < 1 or not decl.file:
            continue
        level = "failure" if first in d.hard else "warning"
        example = (
            f"{first.src.id} -> {first.dst.id}" if first.src and first.dst else "(no endpoint)"
        )
        out.append(
            (
                decl.file,
                decl.line,
                level,
                f"{first.type}: {decl.kind} {decl.name} {decl.entry}",
                markdown.shorten(
                    f"{counted(len(group), 'path')} on {first.ports}, e.g. {example}", 4000
                ),
            )
        )
    for f in sorted(d.new_findings, key=lambda f: f not in d.failing_findings):
        if f.line < 1 or not f.file:
            continue
        out.append(
            (
                f.file,
                f.line,
                _LEVEL[f.severity],
                f"{f.severity} [{f.rule}]",
                markdown.shorten(f"{f.message}. Fix: {f.fix}", 4000),
            )
        )
    return out


def declared_title(d: DeclaredReview, overridden: bool = False) -> str | None:
    """The check run's title when the declarations fail it whatever the approvals (or
    the break-glass, ``overridden``)."""
    if d.head_invalid:
        return "Invalid Intent or ConnectivityTest in the head"
    if d.hard_count:
        return f"{counted(d.hard_count, 'new path')} the declared intents forbid"
    if d.failing_findings:
        findings = counted(len(d.failing_findings), "new least-privilege finding")
        return f"{findings} at or above {d.fail_on}"
    if overridden and d.lifted_count:
        return (
            f"{counted(d.lifted_count, 'path')} the base's intents forbid: break-glass does "
            "not waive them, approvals do"
        )
    return None
