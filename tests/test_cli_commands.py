"""The command registry of ``bot.cli``: every command module is registered, once."""

from __future__ import annotations

import importlib
import pkgutil

import bot.cli
from bot.cli import COMMANDS, build_parser


def test_every_command_module_is_registered() -> None:
    modules = {
        info.name
        for info in pkgutil.iter_modules(bot.cli.__path__)
        if info.name != "__main__"
        if hasattr(importlib.import_module(f"bot.cli.{info.name}"), "register")
    }
    assert modules == set(COMMANDS)
    assert len(COMMANDS) == len(set(COMMANDS))


def test_each_command_parses_to_its_own_run() -> None:
    parser = build_parser()
    runs = set()
    for name in COMMANDS:
        sub = parser._subparsers._group_actions[0].choices[name]  # type: ignore[union-attr]
        run = sub.get_default("run")
        assert run is importlib.import_module(f"bot.cli.{name}").run
        runs.add(run)
    assert len(runs) == len(COMMANDS)
