"""Flow data for the CLI: reading ``--flows`` files, choosing the environment the flows
were observed in, and ``diff --flows`` (docs/traffic.md)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence

from analysis.ciliumagent import CiliumAgent
from analysis.diff import ChangeSet
from analysis.flowsummary import FlowSummary, SummaryTooLarge
from analysis.outside import ClusterScope
from analysis.parsecache import ParseCache
from analysis.report import json_text
from analysis.traffic import flows_json
from analysis.trafficdiff import (
    DiffTraffic,
    add_to_json,
    breaks_lines,
    diff_traffic,
    place_flows,
)
from bot.cli.options import EXIT_INPUT, InputError
from bot.inputs.environment_diff import EnvironmentTree, load_environments
from bot.inputs.flowfiles import FlowFileError, read_flows


def load_flows(paths: Sequence[str]) -> FlowSummary:
    try:
        summary = read_flows(paths)
    except (FlowFileError, SummaryTooLarge) as err:
        raise InputError(str(err)) from None
    for example in summary.malformed_examples:
        print(f"reachdiff: malformed flow record: {example}", file=sys.stderr)
    return summary


def malformed_exit(summary: FlowSummary) -> int | None:
    """Records that could not be read: the run does not pass on what it did not read."""
    if summary.malformed:
        print(
            f"reachdiff: not analysed: {summary.malformed} flow records could not be read",
            file=sys.stderr,
        )
        return EXIT_INPUT
    return None


def choose_environment(
    envs: Sequence[EnvironmentTree], name: str | None, summary: FlowSummary | None = None
) -> EnvironmentTree:
    """The environment the flows come from: flows are of one cluster. ``--environment``
    names it, else the summary (``flows summarize --environment``) when it does."""
    names = {e.name or ".": e for e in envs}
    named = summary.environment if summary is not None else ""
    if name is None and named and (len(envs) > 1 or named in names):
        if named not in names:
            known = ", ".join(sorted(names))
            raise InputError(
                f"the flow data was observed in environment {named}, which this tree does "
                f"not have ({known}); name one with --environment"
            )
        return names[named]
    if name is not None:
        if name not in names:
            known = ", ".join(sorted(names))
            raise InputError(f"--environment {name}: not an environment here ({known})")
        return names[name]
    if len(envs) == 1:
        return envs[0]
    raise InputError(
        "the tree has several environments (" + ", ".join(sorted(names)) + "): name the one "
        "the flows were observed in with --environment"
    )


def flows_option(p: argparse.ArgumentParser, required: bool = False) -> None:
    p.add_argument(
        "--flows",
        nargs="+",
        default=None,
        required=required,
        metavar="FILE",
        help="flow summaries or raw logs (Hubble, Calico, CSV; docs/traffic.md)",
    )
    p.add_argument(
        "--environment",
        default=None,
        help="with several environments: the one the flows were observed in (default: "
        "the one the summary names, see flows summarize --environment)",
    )


def traffic_of_diff(
    diff: ChangeSet,
    flows: Sequence[str],
    base_files: Mapping[str, bytes] | None,
    head_files: Mapping[str, bytes],
    scope: ClusterScope,
    environment: str | None,
    cilium_agent: CiliumAgent | None = None,
) -> DiffTraffic:
    """The ``--flows`` files placed on the environment they were observed in, and the
    observed flows on each opened and closed path of ``diff``."""
    summary = load_flows(flows)
    parse_cache = ParseCache()  # both sides: they share most files
    head_envs = load_environments(
        dict(head_files), parse_cache=parse_cache, cilium_agent=cilium_agent
    )
    head_env = choose_environment(head_envs, environment, summary)
    base_tree = head_env.tree.__class__()
    if base_files is not None:
        base_envs = {
            e.name: e
            for e in load_environments(
                dict(base_files), parse_cache=parse_cache, cilium_agent=cilium_agent
            )
        }
        if head_env.name in base_envs:
            base_tree = base_envs[head_env.name].tree
    mapping = place_flows(summary, base_tree, head_env.tree, scope)
    several = len(getattr(diff, "environments", ("",))) > 1
    return diff_traffic(diff, mapping, summary, head_env.name if several else None)


def diff_with_flows(
    diff: ChangeSet,
    output: str,
    fmt: str,
    flows: Sequence[str],
    base_files: Mapping[str, bytes] | None,
    head_files: Mapping[str, bytes],
    scope: ClusterScope,
    environment: str | None,
    cilium_agent: CiliumAgent | None = None,
) -> str:
    """The diff's output with observed traffic on each opened and closed path."""
    traffic = traffic_of_diff(diff, flows, base_files, head_files, scope, environment, cilium_agent)
    if fmt == "json":
        doc = json.loads(output)
        add_to_json(doc, traffic, flows_json(traffic.summary, traffic.mapping))
        return json_text(doc)
    lines = breaks_lines(traffic)
    if fmt == "md":
        return output + "\n### Observed traffic\n\n" + "\n".join(f"- {x}" for x in lines) + "\n"
    return output + "\n" + "\n".join(lines) + "\n"
