"""``reachdiff check DIR``: do the policies keep the declared communications and pass the
connectivity tests? (docs/intents.md)

Exit 0: every declaration holds; 1: violations; 2: bad input, no declaration found, or
something the result depends on was not analysed (fail closed).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import json
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from analysis import unmodelled
from analysis.check import Declared, Violation, check, declared_map
from analysis.check_report import check_json, check_markdown, check_text, omitted_line
from analysis.intents import Declarations, load_declarations
from analysis.outside import ClusterScope
from analysis.report import json_text
from analysis.sarif import check_sarif
from analysis.unknowns import unknown_matches
from bot.cli.options import (
    EXIT_OK,
    EXIT_WIDENED,
    InputError,
    cilium_agent,
    environments,
    kind_options,
    scope,
    scope_flag,
    settings_of,
)
from bot.cli.output import report_unanalysed
from bot.inputs.environment_diff import EnvironmentTree
from bot.inputs.files import read_directory

if TYPE_CHECKING:
    from bot.cli.options import Commands

FORMATS = ("text", "json", "md", "sarif")
# Violations listed by default: a tree without declarations for most of its paths has
# thousands of undeclared ones, and an unreadable wall of output helps nobody.
MAX_VIOLATIONS = 200


def _version() -> str:
    """The installed distribution's version, for SARIF's ``semanticVersion``."""
    try:
        return importlib.metadata.version("reachdiff")
    except importlib.metadata.PackageNotFoundError:
        return ""


VERSION = _version()


def register(commands: Commands) -> None:
    p = commands.add_parser(
        "check", help="check the declared communications (Intent) and connectivity tests"
    )
    p.add_argument("dir")
    p.add_argument("--format", choices=FORMATS, default="text")
    p.add_argument(
        "--intents",
        metavar="PATH",
        action="append",
        default=[],
        help="read Intent and ConnectivityTest documents from this file or directory "
        "instead of DIR (repeatable)",
    )
    p.add_argument(
        "--max-violations",
        metavar="N",
        type=_count,
        default=MAX_VIOLATIONS,
        help=f"list at most N violations (default {MAX_VIOLATIONS}; 0: all); the counts, "
        "the total and the exit code always cover every one",
    )
    scope_flag(p)
    kind_options(p, settings_file=True)
    p.set_defaults(run=run)


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number (0: all)")
    return int(text)


def declarations_of(dir_files: dict[str, bytes], paths: Sequence[str]) -> Declarations:
    """The declarations of ``--intents`` paths, else of DIR itself."""
    if not paths:
        return load_declarations(dir_files)
    files: dict[str, bytes] = {}
    for path in paths:
        target = Path(path)
        if target.is_dir():
            files.update({f"{path}/{k}": v for k, v in read_directory(target).items()})
        else:
            try:
                files[path] = target.read_bytes()
            except OSError as err:
                raise InputError(f"--intents {path}: {err.strerror or err}") from None
    return load_declarations(files)


def evaluate(
    envs: Sequence[EnvironmentTree], decls: Declarations, cluster_scope: ClusterScope
) -> tuple[list[Violation], list[str], list[Declared]]:
    """Every environment's violations, ids qualified by the environment when there are
    several, and what could not be decided (admin ``networks`` rules workload traffic
    reaches). An entry that matches no endpoint counts only if it matches none anywhere."""
    unknown: list[str] = []
    unmatched: dict[Declared, int] = {}
    several = [e.name for e in envs] != [""]
    found: list[Violation] = []
    nothing: dict[tuple[str, str, str], list[Violation]] = {}
    matched: set[tuple[str, str, str]] = set()
    for env in envs:
        rmap = declared_map(env.tree, decls, cluster_scope)
        unknown += unknown_matches(rmap)
        result = check(rmap, decls)
        for d in result.unmatched:
            unmatched[d] = unmatched.get(d, 0) + 1
        for v in result.violations:
            where = (v.intent.kind, v.intent.name, v.intent.entry)
            if v.src is None or v.dst is None:
                nothing.setdefault(where, []).append(v)
                continue
            matched.add(where)
            if several:
                v = replace(
                    v, src=v.src.in_environment(env.name), dst=v.dst.in_environment(env.name)
                )
            found.append(v)
    for where, vs in nothing.items():
        if where not in matched and len(vs) == len(envs):
            found.append(vs[0])
    nowhere = [d for d, count in unmatched.items() if count == len(envs)]
    for d in nowhere:  # in no environment
        print(
            f"reachdiff: warning: {d.file}:{d.line}: {d.kind} {d.name} {d.entry} matches "
            "no workload of the tree (a typo? an entry that names nothing checks nothing)",
            file=sys.stderr,
        )
    return found, unknown, nowhere


def run(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    files = read_directory(args.dir)
    decls = declarations_of(files, args.intents)
    if not decls:
        where = ", ".join(args.intents) or args.dir
        raise InputError(
            f"no {', '.join(('Intent', 'ConnectivityTest'))} (apiVersion: reachdiff.io/v1alpha1) "
            f"found in {where}: there is nothing to check (see docs/intents.md)"
        )
    envs = environments(files, settings.workload_kinds, cilium_agent(args, settings), settings)
    ignore_kinds = [*settings.ignore_kinds, *args.ignore_kinds]
    findings = [f for e in envs for f in unmodelled.tree_findings(e.tree.unmodelled, e.name)]
    violations, unknown, unmatched = evaluate(envs, decls, scope(args, settings))
    cases = sum(len(t.cases) for t in decls.tests)
    limit = args.max_violations or None
    if args.format == "json":
        doc = check_json(violations, len(decls.intents), cases, limit=limit)
        doc["unmatched"] = [dataclasses.asdict(d) for d in unmatched]
        sys.stdout.write(json_text(doc))
    elif args.format == "sarif":
        shown = violations[:limit] if limit is not None else violations
        sys.stdout.write(json.dumps(check_sarif(shown, VERSION), indent=1) + "\n")
    elif args.format == "md":
        sys.stdout.write(check_markdown(violations, limit=limit))
    else:
        sys.stdout.write(check_text(violations, limit=limit))
    if args.format in ("json", "sarif") and (omitted := omitted_line(len(violations), limit)):
        print(f"reachdiff: {omitted}", file=sys.stderr)
    unanalysed = [u for e in envs for u in (*e.unanalysed, *e.tree.unanalysed)] + unknown
    blocked = report_unanalysed(unanalysed, findings, ignore_kinds)
    if blocked is not None:
        return blocked
    return EXIT_WIDENED if violations else EXIT_OK
