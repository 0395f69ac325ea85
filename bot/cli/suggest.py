"""``reachdiff suggest DIR --flows ... [--namespace NS]``: least-privilege NetworkPolicies
from observed traffic, verified with the engine (docs/traffic.md). Exit 0 when the tree
plus the suggestion allows exactly the observed flows between covered workloads, 1 when
it does not (the YAML header says where), 2 on bad input."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from analysis.flowmap import FlowMapping, map_flows
from analysis.manifests import load_files
from analysis.reachability import ReachabilityMap, compute_map
from analysis.suggest import suggest, verify
from bot.cli.flowdata import choose_environment, flows_option, load_flows, malformed_exit
from bot.cli.options import EXIT_OK, EXIT_WIDENED, settings_environments, settings_option
from bot.inputs.files import read_directory

if TYPE_CHECKING:
    from bot.cli.options import Commands

SUGGESTED_FILE = "reachdiff-suggested.yaml"


def register(commands: Commands) -> None:
    p = commands.add_parser("suggest", help="least-privilege NetworkPolicies from observed flows")
    p.add_argument("dir")
    flows_option(p, required=True)
    p.add_argument(
        "--namespace",
        action="append",
        default=[],
        help="a namespace to cover (repeatable; default: every namespace with workloads "
        "except kube-*)",
    )
    p.add_argument("-o", "--output", default="-", help="the YAML file ('-': stdout)")
    settings_option(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    summary = load_flows(args.flows)
    _, envs = settings_environments(args, read_directory(args.dir))
    env = choose_environment(envs, args.environment, summary)
    # The tree's own workloads only: a suggestion names real pods, not representatives.
    rmap = compute_map(env.tree)
    mapping = map_flows(summary, rmap)
    result = suggest(env.tree, mapping, args.namespace)
    text = result.yaml()
    added = load_files({SUGGESTED_FILE: text})

    def remap(combined: ReachabilityMap) -> FlowMapping:
        return map_flows(summary, combined)

    check = verify(env.tree, added, mapping, result.namespaces, remap)
    header = [
        "# Suggested by reachdiff from observed flows: " + summary.window(),
        f"# Covers namespaces: {', '.join(result.namespaces) or '(none)'}",
    ]
    if check.exact:
        header.append(
            "# Verified: the tree plus these policies allows every observed forwarded flow "
            "and nothing else between covered workloads (DNS to kube-dns kept)."
        )
    else:
        header.append("# NOT exact: the tree plus these policies differs from the traffic:")
        header += [f"#   still denied: {m}" for m in check.missing[:50]]
        header += [f"#   allowed, never observed: {e}" for e in check.extra[:50]]
    header += [f"#   not expressed: {n}" for n in result.not_expressed[:50]]
    document = "\n".join(header) + "\n" + text
    if args.output == "-":
        sys.stdout.write(document)
    else:
        with open(args.output, "w", encoding="utf-8") as out:
            out.write(document)
    if not check.exact:
        print("reachdiff: the suggestion is not exact (see the YAML header)", file=sys.stderr)
    return malformed_exit(summary) or (EXIT_OK if check.exact else EXIT_WIDENED)
