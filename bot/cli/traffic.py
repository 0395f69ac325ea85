"""``reachdiff traffic DIR --flows ...``: a tree's policies against observed traffic:
observed flows it denies (exit 1), flows the CNI dropped, and what rules allow that no
flow used (docs/traffic.md)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from analysis.flowmap import map_flows
from analysis.outside import ClusterScope, outside_world
from analysis.reachability import compute_map
from analysis.report import json_text
from analysis.traffic import traffic_json, traffic_markdown, traffic_report, traffic_text
from bot.cli.flowdata import choose_environment, flows_option, load_flows, malformed_exit
from bot.cli.options import (
    EXIT_OK,
    EXIT_WIDENED,
    scope,
    scope_flag,
    settings_environments,
    settings_option,
)
from bot.inputs.files import read_directory

if TYPE_CHECKING:
    from bot.cli.options import Commands


def register(commands: Commands) -> None:
    p = commands.add_parser("traffic", help="a tree's policies against observed flows")
    p.add_argument("dir")
    flows_option(p, required=True)
    p.add_argument("--format", choices=["text", "json", "md"], default="text")
    scope_flag(p)
    settings_option(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    summary = load_flows(args.flows)
    settings, envs = settings_environments(args, read_directory(args.dir))
    env = choose_environment(envs, args.environment, summary)
    world = None
    tree = env.tree
    if scope(args, settings) is ClusterScope.PARTIAL:
        world = outside_world(tree, [tree])
        tree = world.tree(tree)
    rmap = compute_map(tree)
    mapping = map_flows(summary, rmap, world)
    report = traffic_report(rmap, summary, mapping)
    render = {
        "json": lambda r: json_text(traffic_json(r)),
        "md": traffic_markdown,
        "text": traffic_text,
    }[args.format]
    sys.stdout.write(render(report))
    if mapping.unmapped:
        print(
            f"reachdiff: note: {mapping.unmapped_count} observed flows map to no endpoint "
            "of the tree (listed in the report)",
            file=sys.stderr,
        )
    failed = malformed_exit(summary)
    if failed is not None:
        return failed
    # Exit 1, like a widening: applying this tree would cut traffic the cluster carries.
    return EXIT_WIDENED if report.denied_observed else EXIT_OK
