"""``reachdiff serve``: the GitHub App webhook server (``bot.app``)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.cli.options import Commands


def register(commands: Commands) -> None:
    p = commands.add_parser("serve", help="run the GitHub App webhook server")
    p.add_argument("--port", type=int, default=None, help="default: $PORT or 8080")
    # A server lives long and makes cyclic garbage: keep the cycle collector (see main).
    p.set_defaults(run=run, long_running=True)


def run(args: argparse.Namespace) -> int:
    from bot.app.server import serve  # aiohttp and the app: not loaded by the other commands

    return serve(args.port)
