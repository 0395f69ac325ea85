"""``reachdiff map DIR``: who may connect to whom in one manifest tree."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from analysis import unmodelled
from analysis.formats import map_csv, map_dot, map_markdown, map_text, maps_dot
from analysis.reachability import ReachabilityMap, compute_map
from analysis.report import json_text, map_to_json
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
from bot.cli.output import not_analysed_json, report_unanalysed
from bot.inputs.environment_diff import EnvironmentTree
from bot.inputs.files import read_directory
from bot.inputs.unread import unread_in_directory

if TYPE_CHECKING:
    from bot.cli.options import Commands

MAP_FORMATS: dict[str, Callable[[ReachabilityMap], str]] = {
    "text": map_text,
    "json": lambda m: json_text(map_to_json(m)),
    "csv": map_csv,
    "md": map_markdown,
    "dot": map_dot,
}


def register(commands: Commands) -> None:
    p = commands.add_parser("map", help="who may connect to whom in one manifest tree")
    p.add_argument("dir")
    p.add_argument("--format", choices=[*sorted(MAP_FORMATS), "html"], default="text")
    scope_flag(p)
    kind_options(p, settings_file=True)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    files = read_directory(args.dir)
    envs = environments(files, settings.workload_kinds, cilium_agent(args, settings), settings)
    ignore_kinds = [*settings.ignore_kinds, *args.ignore_kinds]
    findings = [f for e in envs for f in unmodelled.tree_findings(e.tree.unmodelled, e.name)]
    for env in envs:
        label = f"{env.name}: " if env.name else ""
        for warning in (*env.notes, *env.tree.warnings):
            print(f"reachdiff: warning: {label}{warning}", file=sys.stderr)
    cluster_scope = scope(args, settings)
    maps = [(e, compute_map(e.tree, scope=cluster_scope)) for e in envs]
    if args.format == "html":
        from bot.cli.html import map_page  # the page's template: only here

        sys.stdout.write(map_page(maps, settings, f"reachdiff map {args.dir}"))
    elif [e.name for e in envs] == [""]:
        if args.format == "json":
            doc = map_to_json(maps[0][1])
            doc["not_analysed"] = not_analysed_json(findings, ignore_kinds)
            sys.stdout.write(json_text(doc))
        else:
            sys.stdout.write(MAP_FORMATS[args.format](maps[0][1]))
    else:
        output = _maps_output(maps, args.format)
        if args.format == "json":
            doc = json.loads(output)
            doc["not_analysed"] = not_analysed_json(findings, ignore_kinds)
            output = json_text(doc)
        sys.stdout.write(output)
    unanalysed = [
        u for e, m in maps for u in (*e.unanalysed, *e.tree.unanalysed, *unknown_matches(m))
    ]
    unanalysed += unread_in_directory(args.dir, files)  # LFS pointers, submodules, jsonnet
    return report_unanalysed(unanalysed, findings, ignore_kinds) or EXIT_OK


def _maps_output(maps: list[tuple[EnvironmentTree, ReachabilityMap]], fmt: str) -> str:
    """Several environments' maps: every endpoint id carries its environment, as in a diff,
    so no two endpoints (or headings) of different environments look the same."""
    if fmt == "json":
        # The documented top-level shape holds every environment; ``environments`` adds
        # each one's own map (ids as inside the environment), kept from earlier releases.
        doc: dict[str, Any] = {"endpoints": [], "connections": []}
        for env, rmap in maps:
            part = map_to_json(rmap, env.name)
            doc["endpoints"] += part["endpoints"]
            doc["connections"] += part["connections"]
        doc["environments"] = [
            {"environment": env.name, "kind": env.kind, **map_to_json(rmap)} for env, rmap in maps
        ]
        doc["unanalysed"] = [u for env, _ in maps for u in env.unanalysed]
        return json_text(doc)
    if fmt == "dot":
        return maps_dot([(rmap, env.name) for env, rmap in maps])
    if fmt == "csv":
        return "".join(map_csv(rmap, env.name, header=n == 0) for n, (env, rmap) in enumerate(maps))
    if fmt == "md":
        return "\n".join(map_markdown(rmap, env.name) for env, rmap in maps)
    return "\n".join(
        f"== environment {env.name or '(plain manifests)'} ({env.kind}) ==\n"
        + map_text(rmap, env.name)
        for env, rmap in maps
    )
