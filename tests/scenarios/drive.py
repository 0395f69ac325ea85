"""Runs one scenario through the real webhook server (GitHub faked on loopback) and the CLI.

The bot side replays the scenario's events as GitHub would deliver them and keeps what a
person would see on the pull request afterwards: the sticky comment, the check run on the
head commit (and its conclusion after each event), and the bot's review and line comments.
Every request the bot sends is checked against GitHub's OpenAPI description; a mismatch
fails the scenario.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from typing import Any

from tests.botharness import NUMBER, REPO, Harness, running_harness, sha
from tests.fakegithub import make_payload
from tests.fakegithub.server import FakeGitHub

from .spec import REPOSITORY, Event, Scenario

CHECK_NAME = "reachdiff (main)"
COMMIT_DATE = "2026-01-15T12:00:00Z"  # fixed, so nothing posted depends on today


@dataclass
class BotResult:
    comment: str | None
    check: dict[str, Any]
    timeline: list[str] = field(default_factory=list)
    reviews: list[dict[str, Any]] = field(default_factory=list)
    review_comments: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class CliResult:
    argv: tuple[str, ...]
    status: int
    stdout: str
    stderr: str


async def run_bot(scenario: Scenario) -> BotResult:
    async with FakeGitHub() as fake:
        fake.add_repo(REPO, collaborators=scenario.collaborators)
        for slug, members in scenario.teams.items():
            org, _, team = slug.partition("/")
            fake.add_team(org, team, list(members))
        fake.add_commit(REPO, sha("base"), scenario.tree("base"), branch="main", date=COMMIT_DATE)
        async with running_harness(fake) as harness:
            head = ""
            timeline = []
            for number, event in enumerate(scenario.events, 1):
                head = await _perform(harness, scenario, event, head)
                await harness.settle()
                check = harness.check(head)
                timeline.append(
                    f"{number}. {_describe(event, head)}: {check['conclusion']}, "
                    f"{check['output']['title']}"
                )
            problems = fake.validation_errors + fake.response_errors
            if problems:
                raise AssertionError(f"requests GitHub would refuse: {problems}")
            sticky = [
                c["body"] for c in fake.comments_on(REPO, NUMBER) if c["user"] == fake.bot_login
            ]
            return BotResult(
                comment=sticky[-1] if sticky else None,
                check=harness.check(head),
                timeline=timeline,
                reviews=harness.bot_reviews(),
                review_comments=harness.bot_review_comments(),
            )


async def _perform(harness: Harness, scenario: Scenario, event: Event, head: str) -> str:
    fake = harness.fake
    if event.kind == "open":
        new = sha(event.tree)
        files = scenario.tree(event.tree)
        fake.add_commit(REPO, new, files, parents=[sha("base")], author=event.by, date=COMMIT_DATE)
        fake.add_pull(
            REPO,
            NUMBER,
            base_ref="main",
            base_sha=sha("base"),
            head_sha=new,
            author=scenario.author,
            head_ref="change",
            mergeable=False,
        )
        await _deliver(harness, "pull_request", "opened", new, event.by)
        return new
    if event.kind == "push":
        new = sha(event.tree)
        fake.add_commit(
            REPO, new, scenario.tree(event.tree), parents=[head], author=event.by, date=COMMIT_DATE
        )
        fake.set_pull_head(REPO, NUMBER, new, mergeable=False)
        await _deliver(harness, "pull_request", "synchronize", new, event.by, before=head)
        return new
    commit = sha(event.tree) if event.tree else head
    fake.add_review(REPO, NUMBER, user=event.by, state=event.state, commit_id=commit)
    overrides = {"review.state": event.state.lower(), "review.commit_id": commit}
    await _deliver(harness, "pull_request_review", "submitted", head, event.by, overrides=overrides)
    return head


async def _deliver(
    harness: Harness, event: str, action: str, head: str, sender: str, **extra: Any
) -> None:
    payload = make_payload(
        event,
        action,
        full_name=REPO,
        number=NUMBER,
        head_sha=head,
        installation_id=harness.fake.installation_id,
        author=harness.fake.pull(REPO, NUMBER).author,
        sender=sender,
        api_url=harness.fake.url,
        **extra,
    )
    response = await harness.post(event, payload.body)
    if response.status != 202:
        raise AssertionError(f"{event}.{action} answered {response.status}")


def _describe(event: Event, head: str) -> str:
    if event.kind == "open":
        return f"@{event.by} opens the pull request at {head[:7]} ({event.tree}/)"
    if event.kind == "push":
        return f"@{event.by} pushes {head[:7]} ({event.tree}/)"
    on = f"{sha(event.tree)[:7]} ({event.tree}/)" if event.tree else f"the head {head[:7]}"
    verb = {"APPROVED": "approves", "CHANGES_REQUESTED": "requests changes on"}.get(
        event.state, "comments on"
    )
    return f"@{event.by} {verb} {on}"


def cli_argv(scenario: Scenario) -> tuple[str, ...]:
    """``reachdiff diff base head --format json``, with the base side's settings if any."""
    argv = ["diff", "base", "head", "--format", "json"]
    if scenario.settings is not None:
        argv += ["--settings", "base/.github/reachdiff.yml"]
    return tuple(argv)


def run_cli(scenario: Scenario) -> CliResult:
    """The ``reachdiff`` console script, as installed (pyproject's entry point), run in the
    scenario's folder on this checkout's code."""
    module, _, function = _entry_point().partition(":")
    argv = cli_argv(scenario)
    code = f"import sys, {module} as m; sys.exit(m.{function}())"
    env = {**os.environ, "PYTHONPATH": str(REPOSITORY), "COLUMNS": "100"}
    done = subprocess.run(
        [sys.executable, "-c", code, *argv],
        cwd=scenario.folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return CliResult(argv, done.returncode, done.stdout, done.stderr)


def _entry_point() -> str:
    project = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())
    entry: str = project["project"]["scripts"]["reachdiff"]
    return entry


def json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None
