"""What a scenario produces, as the files a reviewer reads, and their comparison.

Outputs are made deterministic without hiding anything a person would see: times become
``<time>`` and the fake's loopback address ``http://fake-github``. Everything else is as
posted (commit shas come from fixed names, ids from a fresh fake per scenario). The check
run's ``external_id`` (the app's own record of what each review showed, for the approval
rules) is left out: no person reads it, and tests/test_bot_approval_delta.py covers it.
"""

from __future__ import annotations

import difflib
import re
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .drive import CHECK_NAME, BotResult, CliResult, json_or_none
from .spec import Scenario

OUTPUTS = (
    "expected.md",  # the sticky comment, exactly as posted
    "expected-check.md",  # the check run on the head commit
    "expected-review.md",  # the bot's review and its line comments
    "expected.json",  # `reachdiff diff base head --format json` (when it prints JSON)
    "expected-cli.txt",  # that command's exit status and stderr
)
UPDATE_COMMAND = "python -m tests.scenarios --update"
# The renderers a scenario's trees need: without one, its outputs would be the "could not
# be analysed" failure, so the scenario is skipped rather than run or rewritten.
NEEDS = {"kustomize-environments": ("kubectl", "kustomize"), "helm-chart": ("helm",)}


def missing_renderer(scenario: Scenario) -> str | None:
    """Why ``scenario`` cannot run on this machine ("needs helm on PATH"), or None."""
    tools = NEEDS.get(scenario.name, ())
    if tools and not any(shutil.which(t) for t in tools):
        return f"needs {' or '.join(tools)} on PATH"
    return None


_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)")
_LOOPBACK = re.compile(r"http://127\.0\.0\.1:\d+")


def normalise(text: str) -> str:
    return _LOOPBACK.sub("http://fake-github", _TIME.sub("<time>", text))


def render(bot: BotResult, cli: CliResult) -> dict[str, str]:
    files = {
        "expected-check.md": check_file(bot),
        "expected-review.md": review_file(bot),
        "expected-cli.txt": cli_file(cli),
    }
    if bot.comment is not None:
        files["expected.md"] = bot.comment
    if json_or_none(cli.stdout) is not None:
        files["expected.json"] = cli.stdout
    return {name: normalise(text) for name, text in files.items()}


def check_file(bot: BotResult) -> str:
    check, output = bot.check, bot.check["output"]
    lines = [
        f"# Check run `{CHECK_NAME}` on the head commit {check['head_sha'][:7]}",
        "",
        f"- status: {check['status']}",
        f"- conclusion: **{check['conclusion']}**",
        f"- title: {output['title']}",
        "",
        "## After each event",
        "",
        *bot.timeline,
        "",
        f"## Annotations ({len(output['annotations'])})",
        "",
    ]
    for note in output["annotations"]:
        where = f"{note['path']}:{note['start_line']}"
        if note["end_line"] != note["start_line"]:
            where += f"-{note['end_line']}"
        lines += [
            f"### {note['annotation_level']} `{where}`"
            + (f": {note['title']}" if note.get("title") else ""),
            "",
            *_fenced(note["message"], "text"),
            "",
        ]
    lines += ["## Summary", "", *_fenced(output["summary"] or "", "markdown"), ""]
    lines += ["## Text", "", *_fenced(output.get("text") or "", "markdown")]
    return "\n".join(lines) + "\n"


def review_file(bot: BotResult) -> str:
    if not bot.reviews and not bot.review_comments:
        return "No review: the bot commented on no rule.\n"
    lines: list[str] = []
    for review in bot.reviews:
        lines += [
            f"# Review ({review['event']}) on {review['commit_id'][:7]}",
            "",
            *_fenced(review["body"] or "", "markdown"),
            "",
        ]
    lines += [f"## Line comments ({len(bot.review_comments)})", ""]
    for comment in bot.review_comments:
        lines += [f"### {_placement(comment)} on {comment['commit_id'][:7]}", ""]
        lines += [*_fenced(comment["body"], "markdown"), ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def _placement(comment: dict[str, Any]) -> str:
    if comment["subject_type"] == "file":
        return f"`{comment['path']}` (file)"
    return f"`{comment['path']}` line {comment['line']} ({comment['side']})"


def cli_file(cli: CliResult) -> str:
    lines = [f"$ reachdiff {' '.join(cli.argv)}", f"exit status {cli.status}"]
    if cli.stderr:
        lines += ["", "stderr:", cli.stderr.rstrip("\n")]
    if cli.stdout and json_or_none(cli.stdout) is None:
        lines += ["", "stdout:", cli.stdout.rstrip("\n")]
    return "\n".join(lines) + "\n"


def _fenced(text: str, language: str) -> list[str]:
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}{language}", *text.split("\n"), fence]


# -- comparing and updating -------------------------------------------------------------


def differences(scenario: Scenario, actual: dict[str, str]) -> list[str]:
    """A unified diff per output file that differs from what the folder holds."""
    problems = []
    for name in OUTPUTS:
        path = scenario.folder / name
        expected = path.read_text() if path.is_file() else None
        got = actual.get(name)
        if expected == got:
            continue
        diff = difflib.unified_diff(
            (expected or "").splitlines(keepends=True),
            (got or "").splitlines(keepends=True),
            f"{scenario.name}/{name} (expected)" if expected is not None else "/dev/null",
            f"{scenario.name}/{name} (actual)" if got is not None else "/dev/null",
        )
        problems.append("".join(diff))
    problems += mirror_differences(scenario)
    return problems


def write(scenario: Scenario, actual: dict[str, str]) -> list[str]:
    """Writes the outputs (and refreshes a mirrored copy); returns the files changed."""
    changed = []
    for name in OUTPUTS:
        path = scenario.folder / name
        before = path.read_text() if path.is_file() else None
        if name in actual and actual[name] != before:
            path.write_text(actual[name])
            changed.append(name)
        elif name not in actual and before is not None:
            path.unlink()
            changed.append(name)
    return changed


def refresh_mirror(scenario: Scenario) -> bool:
    if scenario.mirror is None or not mirror_differences(scenario):
        return False
    for side in ("base", "head"):
        shutil.rmtree(scenario.folder / side)
        shutil.copytree(scenario.mirror / side, scenario.folder / side)
    return True


def mirror_differences(scenario: Scenario) -> list[str]:
    if scenario.mirror is None:
        return []
    found = []
    for side in ("base", "head"):
        mine, theirs = _files(scenario.folder / side), _files(scenario.mirror / side)
        for path in sorted(mine.keys() | theirs.keys()):
            if mine.get(path) != theirs.get(path):
                found.append(f"{scenario.name}/{side}/{path} differs from {scenario.mirror}")
    return found


def _files(top: Path) -> dict[str, bytes]:
    return {p.relative_to(top).as_posix(): p.read_bytes() for p in _walk(top)}


def _walk(top: Path) -> Iterable[Path]:
    return sorted(p for p in top.rglob("*") if p.is_file()) if top.is_dir() else []
