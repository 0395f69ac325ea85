"""``reachdiff exposure DIR``: how far each workload is from where traffic enters, and how
much it could reach; and the exposure part of ``reachdiff diff``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

from analysis import unmodelled
from analysis.exposure import Exposure, exposure_of
from analysis.exposure_report import (
    Qualify,
    changes_json,
    changes_markdown,
    changes_text,
    exposure_json,
    exposure_markdown,
    exposure_text,
)
from analysis.reachability import Endpoint, compute_map
from analysis.report import json_text
from analysis.unknowns import unknown_matches
from bot.cli.options import (
    EXIT_OK,
    cilium_agent,
    environments,
    kind_options,
    scope,
    scope_flag,
    settings_of,
)
from bot.cli.output import report_unanalysed
from bot.inputs.environment_diff import MultiDiff
from bot.inputs.exposure import (
    CLASS_LIMIT,
    UNASKED_CLASS_LIMIT,
    ExposureReview,
    review_exposure,
)
from bot.inputs.files import read_directory
from bot.review.gating import exposure_settings
from bot.review.settings import RepoSettings

if TYPE_CHECKING:
    from bot.cli.options import Commands

FORMATS = {"text": exposure_text, "md": exposure_markdown}


def register(commands: Commands) -> None:
    p = commands.add_parser(
        "exposure",
        help="hops of each workload from the nearest entry point, and its blast radius",
    )
    p.add_argument("dir")
    p.add_argument("--format", choices=["text", "json", "md"], default="text")
    scope_flag(p)
    kind_options(p, settings_file=True)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    envs = environments(
        read_directory(args.dir), settings.workload_kinds, cilium_agent(args, settings), settings
    )
    ignore_kinds = [*settings.ignore_kinds, *args.ignore_kinds]
    findings = [f for e in envs for f in unmodelled.tree_findings(e.tree.unmodelled, e.name)]
    cluster_scope = scope(args, settings)
    named = [e.name for e in envs] != [""]
    parts: list[tuple[Exposure, Qualify]] = []
    unanalysed: list[str] = []
    for env in envs:
        rmap = compute_map(env.tree, scope=cluster_scope)
        found = exposure_of(rmap, env.frontends, settings.entry_points, settings.crown_jewels)
        parts.append((found, _qualifier(env.name) if named else _same))
        unanalysed += [*env.unanalysed, *env.tree.unanalysed, *unknown_matches(rmap)]
        label = f"{env.name}: " if named else ""
        for note in found.notes:
            print(f"reachdiff: note: {label}{note}", file=sys.stderr)
    if args.format == "json":
        sys.stdout.write(json_text(exposure_json(parts)))
    else:
        sys.stdout.write(FORMATS[args.format](parts))
    return report_unanalysed(unanalysed, findings, ignore_kinds) or EXIT_OK


def _same(e: Endpoint) -> Endpoint:
    return e


def _qualifier(name: str) -> Qualify:
    return lambda e: e.in_environment(name)


def diff_exposure(
    diff: MultiDiff,
    settings: RepoSettings,
    base_files: Mapping[str, bytes] | None,
    head_files: Mapping[str, bytes],
) -> ExposureReview:
    asked = exposure_settings(settings) is not None
    review = review_exposure(
        diff,
        settings.entry_points,
        settings.crown_jewels,
        base_files,
        head_files,
        CLASS_LIMIT if asked else UNASKED_CLASS_LIMIT,
    )
    if review.skipped:
        print(f"reachdiff: note: {review.skipped}", file=sys.stderr)
    return review


def with_exposure(output: str, fmt: str, review: ExposureReview) -> str:
    """``diff``'s output with its exposure part: JSON ``exposure_changes`` (and
    ``exposure_skipped`` when not compared), a short section in text and Markdown."""
    changes = [c for c, _ in review.changes]
    if fmt == "json":
        doc = json.loads(output)
        doc["exposure_changes"] = changes_json(review.changes)
        if review.skipped:
            doc["exposure_skipped"] = review.skipped
        return json_text(doc)
    if fmt == "md":
        section = changes_markdown(changes)
        if review.skipped:
            section += f"\n_{review.skipped}_\n"
        return output + section
    section = changes_text(changes)
    if review.skipped:
        section += f"\n{review.skipped}\n"
    return output + section
