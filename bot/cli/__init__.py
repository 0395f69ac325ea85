"""The ``reachdiff`` command line, one module per command family.

Exit codes are a contract CI gates on: 0 nothing widened, 1 access widened, 2 bad input
(the message names file, line and the fix), 3 an internal error (a bug: please report it).

Adding a command ``reachdiff NAME``:

1. write ``bot/cli/NAME.py`` with ``register(commands)``, which adds the sub-command and its
   flags and sets ``run``, and ``run(args) -> int``, which returns the exit code::

       def register(commands: Commands) -> None:
           p = commands.add_parser("NAME", help="one line for reachdiff --help")
           p.add_argument("dir")
           scope_flag(p)                      # shared flags: bot.cli.options
           p.set_defaults(run=run)

2. add ``"NAME",`` to ``COMMANDS`` below (the order of ``reachdiff --help``).

Bad input is raised, not printed: an ``analysis.errors.InputError`` (``ManifestError``,
``FilesError``, ``GitError``, ``SettingsError`` and the commands' own derive from it; also as
``bot.cli.options.InputError``) becomes ``reachdiff: error: ...`` and exit 2; anything else
is exit 3. Reporting helpers shared by diff-like commands: ``bot.cli.output``.
Command modules import what they need from ``analysis``, ``bot.inputs``, ``bot.review`` and
``bot.render``; ``serve`` alone loads ``bot.app``.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import sys
from collections.abc import Sequence

from analysis.errors import InputError
from bot.cli.options import EXIT_INPUT, EXIT_INTERNAL, EXIT_OK, EXIT_WIDENED

__all__ = ["EXIT_INPUT", "EXIT_INTERNAL", "EXIT_OK", "EXIT_WIDENED", "build_parser", "main"]

#: The command modules of ``bot.cli``, one line each, in the order ``--help`` lists them.
COMMANDS: tuple[str, ...] = (
    "map",
    "diff",
    "review",
    "explain",
    "check",
    "lint",
    "exposure",
    "flows",
    "traffic",
    "suggest",
    "serve",
)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or of command ``only`` alone (the command modules
    import much of the engine: a run imports only its own)."""
    parser = argparse.ArgumentParser(
        prog="reachdiff",
        description="Exact Kubernetes NetworkPolicy reachability: map a manifest tree, "
        "diff two, review a branch. Exit 0: nothing widened; 1: access widened; 2: bad input.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS if only is None else (only,):
        importlib.import_module(f"bot.cli.{name}").register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    asked = argv[0] if argv and argv[0] in COMMANDS else None
    args = build_parser(asked).parse_args(argv)
    collecting = gc.isenabled()
    if not getattr(args, "long_running", False):
        # A run builds millions of long-lived objects and exits: the cycle collector would
        # scan them again and again (a fifth of the run) for garbage the analysis does not
        # make (it frees by reference counting).
        gc.disable()
    try:
        code: int = args.run(args)
        return code
    except InputError as err:  # every reader's (analysis.errors)
        print(f"reachdiff: error: {err}", file=sys.stderr)
        return EXIT_INPUT
    except BrokenPipeError:
        return EXIT_OK
    except Exception as err:  # a bug: say so plainly, without a traceback wall
        print(f"reachdiff: internal error: {type(err).__name__}: {err}", file=sys.stderr)
        return EXIT_INTERNAL
    finally:
        if collecting:
            gc.enable()
