"""``reachdiff diff BASE HEAD``: paths opened and closed between two manifest directories."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from analysis import markdown
from analysis.decision import explanation_json, explanation_markdown, explanation_text
from analysis.report import json_text
from bot.cli.exposure import diff_exposure, with_exposure
from bot.cli.flowdata import diff_with_flows, flows_option, traffic_of_diff
from bot.cli.html import diff_page
from bot.cli.options import (
    InputError,
    cilium_agent,
    kind_options,
    scope,
    scope_flag,
    settings_of,
)
from bot.cli.output import base_caveat, diff_output, finish
from bot.inputs.environment_bases import EnvironmentBases
from bot.inputs.environment_diff import MultiDiff, diff_files, explain_changes
from bot.inputs.files import FilesError, read_directory
from bot.inputs.unread import unread_in_directory

if TYPE_CHECKING:
    from bot.cli.options import Commands

MAX_EXPLAINED = 200  # paths explained by `diff --explain` (the rest are counted)


def register(commands: Commands) -> None:
    p = commands.add_parser("diff", help="paths opened and closed between two manifest trees")
    p.add_argument("base")
    p.add_argument("head")
    p.add_argument("--format", choices=["text", "json", "md", "html"], default="text")
    p.add_argument(
        "--explain",
        action="store_true",
        help="explain each opened and closed path step by step (JSON: an explanation field)",
    )
    scope_flag(p)
    kind_options(p, settings_file=True)
    flows_option(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    ignore_kinds = [*settings.ignore_kinds, *args.ignore_kinds]
    for side, directory in (("base", args.base), ("head", args.head)):
        # A mistyped argument is the caller's error, not a broken base to review around.
        if not os.path.isdir(directory):
            raise InputError(f"{side}: {directory}: not a directory")
    base, why = _read_base(lambda: read_directory(args.base))
    head = _read_head(lambda: read_directory(args.head))
    diff = diff_files(
        base,
        head,
        base_error=why,
        kustomize_roots=settings.kustomize_roots,
        helm_values=dict(settings.helm_values),
        workload_kinds=settings.workload_kinds,
        cilium_agent=cilium_agent(args, settings),
        scope=scope(args, settings),
        # Environments whose renders are the same on both sides are not compared.
        bases=EnvironmentBases(),
    )
    base_caveat(diff)
    exposure = diff_exposure(diff, settings, base, head)
    if args.format == "html":
        title = f"reachdiff diff {args.base} {args.head}"
        traffic = None
        if args.flows:
            traffic = traffic_of_diff(
                diff,
                args.flows,
                base,
                head,
                scope(args, settings),
                args.environment,
                cilium_agent(args, settings),
            )
        output = diff_page(diff, exposure, title, traffic)
    else:
        output = diff_output(diff, args.format, ignore_kinds)
        if args.explain:
            output = _with_explanations(diff, args.format, output)
        output = with_exposure(output, args.format, exposure)
    if args.flows and args.format != "html":
        output = diff_with_flows(
            diff,
            output,
            args.format,
            args.flows,
            base,
            head,
            scope(args, settings),
            args.environment,
            cilium_agent(args, settings),
        )
    unread = (
        [f"{u} (base)" for u in unread_in_directory(args.base, base)] if base is not None else []
    )
    unread += unread_in_directory(args.head, head)
    return finish(diff, output, unread, ignore_kinds)


def _read_base(read: Callable[[], dict[str, bytes]]) -> tuple[dict[str, bytes] | None, str]:
    """The base side's files, or None and why they cannot be read: a broken base is
    reported and the head reviewed on its own, so that the change fixing it can land."""
    try:
        return read(), ""
    except FilesError as err:
        return None, f"base: {err}"


def _read_head(read: Callable[[], dict[str, bytes]]) -> dict[str, bytes]:
    try:
        return read()
    except FilesError as err:
        raise InputError(f"head: {err}") from None


def _with_explanations(diff: MultiDiff, fmt: str, output: str) -> str:
    explained = explain_changes(diff, MAX_EXPLAINED)
    total = len(diff.opened) + len(diff.closed)
    more = total - len(explained)
    if fmt == "json":
        doc = json.loads(output)
        by_pair = {(k, s, d): explanation_json(e) for k, s, d, e in explained}
        for kind in ("opened", "closed"):
            for row in doc[kind]:
                found = by_pair.get((kind, row["src"], row["dst"]))
                if found is not None:
                    row["explanation"] = found
        return json_text(doc)
    if fmt == "md":
        parts = [output, "\n### Why, step by step\n"]
        for kind, s, d, e in explained:
            summary = markdown.html_text(f"{kind}: {s} → {d}")
            parts.append(
                f"<details><summary>{summary}</summary>\n\n{explanation_markdown(e)}\n</details>\n"
            )
        if more > 0:
            parts.append(f"\n…and {more} more paths not explained here.\n")
        return "".join(parts)
    lines = [output, "Why, step by step:", ""]
    for kind, _, _, e in explained:
        lines.append(f"[{kind}] " + explanation_text(e))
    if more > 0:
        lines.append(f"…and {more} more paths not explained here.")
    return "\n".join(lines) + "\n"
