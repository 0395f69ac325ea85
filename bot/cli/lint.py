"""``reachdiff lint DIR``: least-privilege findings (docs/intents.md).

Exit 0: no finding at or above the failing severity (``--fail-on``, else ``lint.fail_on``
of the settings, else ``error``); 1: some; 2: bad input or a policy kind not analysed.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from analysis import unmodelled
from analysis.check_report import lint_json, lint_markdown, lint_text
from analysis.lint import NEVER, SEVERITIES, Finding, LintConfig, fails, lint
from analysis.reachability import compute_map
from analysis.report import json_text
from analysis.sarif import lint_sarif
from bot.cli.check import VERSION
from bot.cli.options import (
    EXIT_OK,
    EXIT_WIDENED,
    cilium_agent,
    environments,
    kind_options,
    scope,
    scope_flag,
    settings_of,
)
from bot.cli.output import report_unanalysed
from bot.inputs.files import read_directory
from bot.review.settings import RepoSettings

if TYPE_CHECKING:
    from bot.cli.options import Commands

FORMATS = ("text", "json", "md", "sarif")


def register(commands: Commands) -> None:
    p = commands.add_parser("lint", help="least-privilege findings of one manifest tree")
    p.add_argument("dir")
    p.add_argument("--format", choices=FORMATS, default="text")
    p.add_argument(
        "--fail-on",
        choices=[*SEVERITIES, NEVER],
        default=None,
        help="the lowest severity that makes the run exit 1 (default: lint.fail_on of the "
        "settings, else error)",
    )
    scope_flag(p)
    kind_options(p, settings_file=True)
    p.set_defaults(run=run)


def config_of(settings: RepoSettings, fail_on: str | None = None) -> LintConfig:
    return LintConfig(settings.lint_severities, fail_on or settings.lint_fail_on)


def run(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    config = config_of(settings, args.fail_on)
    envs = environments(
        read_directory(args.dir), settings.workload_kinds, cilium_agent(args, settings), settings
    )
    ignore_kinds = [*settings.ignore_kinds, *args.ignore_kinds]
    kinds = [f for e in envs for f in unmodelled.tree_findings(e.tree.unmodelled, e.name)]
    cluster_scope = scope(args, settings)
    found: dict[tuple[str, str, int, str], Finding] = {}
    for env in envs:
        for f in lint(compute_map(env.tree, scope=cluster_scope), config):
            found.setdefault((f.rule, f.file, f.line, f.message), f)
    findings = sorted(found.values(), key=lambda f: (f.file, f.line, f.rule, f.message))
    failed = fails(findings, config)
    if args.format == "json":
        sys.stdout.write(json_text(lint_json(findings, failed, config.fail_on)))
    elif args.format == "sarif":
        sys.stdout.write(json.dumps(lint_sarif(findings, VERSION), indent=1) + "\n")
    elif args.format == "md":
        sys.stdout.write(lint_markdown(findings))
    else:
        sys.stdout.write(lint_text(findings))
    unanalysed = [u for e in envs for u in (*e.unanalysed, *e.tree.unanalysed)]
    blocked = report_unanalysed(unanalysed, kinds, ignore_kinds)
    if blocked is not None:
        return blocked
    return EXIT_WIDENED if failed else EXIT_OK
