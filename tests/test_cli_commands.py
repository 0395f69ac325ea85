"""The command registry of ``bot.cli``: every command module is registered, once."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
from pathlib import Path

import pytest

import bot.cli
from bot.cli import COMMANDS, build_parser, main


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
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for name in COMMANDS:
        sub = commands.choices[name]
        run = sub.get_default("run")
        assert run is importlib.import_module(f"bot.cli.{name}").run
        runs.add(run)
    assert len(runs) == len(COMMANDS)


def test_every_reader_error_is_one_input_error() -> None:
    """The CLI catches ``analysis.errors.InputError`` once (exit 2): each reader's error
    must derive from it, or bad input would be reported as a bug (exit 3)."""
    from analysis.errors import InputError, ManifestError
    from bot.cli.explain import ExplainError
    from bot.inputs.environment_diff import SideError
    from bot.inputs.files import FilesError
    from bot.inputs.gitrefs import GitError, GitTreeError
    from bot.review.settings import SettingsError

    for error in (ManifestError, SideError, FilesError, GitError, GitTreeError, SettingsError):
        assert issubclass(error, InputError), error
    assert issubclass(ExplainError, InputError)
    settings_error = SettingsError("paths", "not a list", line=3)
    assert (settings_error.file, settings_error.line, settings_error.side) == (
        ".github/reachdiff.yml",
        3,
        "base",
    )
    manifest = ManifestError("a.yaml", 4, "bad")
    assert (manifest.file, manifest.line, str(manifest)) == ("a.yaml", 4, "a.yaml:4: bad")


def test_bad_input_exits_2_and_names_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bad.yaml").write_text("kind: [unclosed\n")
    assert main(["map", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("reachdiff: error: ") and "bad.yaml:1" in err
