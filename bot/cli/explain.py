"""``reachdiff explain DIR SRC DST``: why one connection is allowed or denied, step by step."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from analysis.decision import explain_pair, explanation_json, explanation_markdown, explanation_text
from analysis.reachability import compute_map
from analysis.report import json_text
from bot.cli.options import (
    EXIT_OK,
    InputError,
    scope,
    scope_flag,
    settings_environments,
    settings_option,
)
from bot.inputs.files import read_directory

if TYPE_CHECKING:
    from bot.cli.options import Commands


class ExplainError(InputError):
    """SRC, DST or --port that name nothing: bad input (exit 2)."""


def register(commands: Commands) -> None:
    p = commands.add_parser("explain", help="why one connection is allowed or denied, step by step")
    p.add_argument("dir")
    p.add_argument("src", help="source id as `map` writes it (ns/Kind/name, ~ns[...]/*, ip:...)")
    p.add_argument("dst", help="destination id")
    p.add_argument("--port", default=None, help='one port, e.g. "TCP 5432" (default: every port)')
    p.add_argument("--format", choices=["text", "json", "md"], default="text")
    scope_flag(p)
    settings_option(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    settings, envs = settings_environments(args, read_directory(args.dir))
    src, dst, env = args.src, args.dst, envs[0]
    if [e.name for e in envs] != [""]:
        # Ids carry their environment, as `map` and `diff` write them: env:namespace/...
        names = {e.name or ".": e for e in envs}
        env_name, _, src = src.rpartition(":") if not src.startswith("ip:") else ("", "", src)
        dst_env, _, dst = dst.rpartition(":") if not dst.startswith("ip:") else ("", "", dst)
        chosen = env_name or dst_env
        if chosen not in names or (env_name and dst_env and env_name != dst_env):
            known = ", ".join(sorted(names))
            raise ExplainError(f"name the environment of SRC and DST as ENV:id (one of: {known})")
        env = names[chosen]
    rmap = compute_map(env.tree, scope=scope(args, settings))
    try:
        explanation = explain_pair(rmap, src, dst, args.port)
    except ValueError as err:
        raise ExplainError(str(err)) from None
    render = {
        "json": lambda e: json_text(explanation_json(e)),
        "md": explanation_markdown,
        "text": explanation_text,
    }[args.format]
    sys.stdout.write(render(explanation))
    return EXIT_OK
