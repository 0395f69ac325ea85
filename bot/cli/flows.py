"""``reachdiff flows summarize RAW... -o SUMMARY.json``: raw flow logs (Hubble, Calico,
CSV; gzip or not) streamed into a bounded summary (docs/traffic.md)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import TYPE_CHECKING

from analysis.flowsummary import MAX_ENVIRONMENT, summary_to_json
from bot.cli.flowdata import load_flows, malformed_exit
from bot.cli.options import EXIT_OK, InputError

if TYPE_CHECKING:
    from bot.cli.options import Commands


def register(commands: Commands) -> None:
    p = commands.add_parser("flows", help="observed flow logs (Hubble, Calico, CSV)")
    actions = p.add_subparsers(dest="flows_command", required=True)
    s = actions.add_parser("summarize", help="stream raw flow logs into a bounded summary")
    s.add_argument("raw", nargs="+", help="Hubble or Calico JSON lines, or CSV; gzip or not")
    s.add_argument("-o", "--output", required=True, help="the summary file ('-': stdout)")
    s.add_argument(
        "--environment",
        default=None,
        help="the environment the flows were observed in, as the repository names it "
        "(a kustomize overlay or chart directory): reviews then match them there only",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    summary = load_flows(args.raw)
    if args.environment is not None:
        if not args.environment or len(args.environment) > MAX_ENVIRONMENT:
            raise InputError(
                f"--environment: a name of 1 to {MAX_ENVIRONMENT} characters, not "
                f"{args.environment[:40]!r}"
            )
        summary = dataclasses.replace(summary, environment=args.environment)
    text = json.dumps(summary_to_json(summary), separators=(",", ":")) + "\n"
    if args.output == "-":
        sys.stdout.write(text)
    else:
        with open(args.output, "w", encoding="utf-8") as out:
            out.write(text)
    skipped = sum(n for _, n in summary.skipped)
    print(
        f"reachdiff: {summary.records} records, {len(summary.flows)} flow patterns, "
        f"{skipped} not counted ({summary.window()})",
        file=sys.stderr,
    )
    return malformed_exit(summary) or EXIT_OK
