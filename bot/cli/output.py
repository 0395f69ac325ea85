"""How ``diff`` and ``review`` (and ``map``, for what it could not analyse) report: the
output on stdout, notes and what was not analysed on stderr, and the exit code."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from analysis import unmodelled
from analysis.formats import diff_text
from analysis.report import diff_to_json, json_text
from bot.cli.options import EXIT_INPUT, EXIT_OK, EXIT_WIDENED
from bot.inputs.environment_diff import MultiDiff


def report_caveats(diff: MultiDiff, ignore_kinds: Sequence[str] = ()) -> int | None:
    """Notes go to stderr; anything left unanalysed makes the run fail closed (exit 2)."""
    for note in diff.notes:
        print(f"reachdiff: note: {note}", file=sys.stderr)
    reasons = [*diff.unanalysed, *(i.message() for i in diff.idle_policies)]
    return report_unanalysed(reasons, diff.unmodelled, ignore_kinds)


def report_unanalysed(
    reasons: Sequence[str], findings: Sequence[unmodelled.Finding], ignore_kinds: Sequence[str]
) -> int | None:
    blocking, ignored = unmodelled.split(findings, ignore_kinds)
    if ignored:
        print(f"reachdiff: note: {unmodelled.ignored_summary(ignored)}", file=sys.stderr)
    for reason in [*reasons, *(f.message() for f in blocking)]:
        print(f"reachdiff: not analysed: {reason}", file=sys.stderr)
    return EXIT_INPUT if reasons or blocking else None


def not_analysed_json(
    findings: Sequence[unmodelled.Finding], ignore_kinds: Sequence[str]
) -> list[dict[str, object]]:
    return [f.to_json(ignored=f.policy.ignored_by(ignore_kinds)) for f in findings]


def diff_output(
    diff: MultiDiff, fmt: str, ignore_kinds: Sequence[str] = (), **markdown: Any
) -> str:
    if fmt == "json":
        if diff.environments == ("",) and not diff.base_error:
            # plain manifests: exactly the documented contract (fields only added)
            doc = diff_to_json(diff.per_environment[0][1])
        else:
            doc = diff_to_json(diff)
            if diff.base_error:
                doc["base_error"] = diff.base_error
            doc.update(
                environments=list(diff.environments),
                notes=list(diff.notes),
                unanalysed=list(diff.unanalysed),
            )
        doc["not_analysed"] = not_analysed_json(diff.unmodelled, ignore_kinds)
        doc["unevaluated_policies"] = [i.to_json() for i in diff.idle_policies]
        return json_text(doc)
    if fmt == "md":
        from bot.render.local_review import diff_markdown  # jinja2 and the templates: only here

        return diff_markdown(
            diff, base_error=diff.base_error, ignore_kinds=ignore_kinds, **markdown
        )
    blocking, _ = unmodelled.split(diff.unmodelled, ignore_kinds)
    lines = []
    # The verdict above is only about what was analysed: say so where it is read.
    if blocking:
        lines += ["", "Not analysed (the access above is not what the cluster enforces):"]
        lines += [f"  {f.describe()}" for f in blocking]
    if diff.idle_policies:
        lines += ["", "Changed policies that select no workload in this tree:"]
        lines += [f"  {i.message()}" for i in diff.idle_policies]
    return diff_text(diff, diff.populations) + "".join(f"{line}\n" for line in lines)


def base_caveat(diff: MultiDiff) -> None:
    if diff.base_error:
        print(
            f"reachdiff: {diff.base_error}\n"
            "reachdiff: the base cannot be read, so the head is reviewed on its own: "
            "every path it allows is counted as opened",
            file=sys.stderr,
        )


_UNCHANGED = "reachdiff: access unchanged"


def finish(
    diff: MultiDiff, output: str, unread: Sequence[str] = (), ignore_kinds: Sequence[str] = ()
) -> int:
    blocking = unmodelled.split(diff.unmodelled, ignore_kinds)[0]
    partial = unread or diff.unanalysed or diff.idle_policies or blocking
    if partial and output.startswith(_UNCHANGED):
        # "Unchanged" means understood and unchanged: here part of it was not understood.
        output = output.replace(_UNCHANGED, f"{_UNCHANGED} in what was analysed, NOT VERIFIED", 1)
    sys.stdout.write(output)
    failed = report_caveats(diff, ignore_kinds)
    # What the readers could not see (submodules, LFS pointers, links): fail closed too.
    for reason in unread:
        print(f"reachdiff: not analysed: {reason}", file=sys.stderr)
    if failed is not None or unread:
        return EXIT_INPUT
    return EXIT_WIDENED if diff.widening else EXIT_OK
