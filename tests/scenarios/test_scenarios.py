"""The golden scenarios: what the bot posts and the CLI prints must match the folders.

On a difference the test prints a unified diff per file; if the change is intended,
``python -m tests.scenarios --update`` rewrites the expected files (review the diff).
"""

from __future__ import annotations

import pytest

from . import golden
from .drive import run_bot, run_cli
from .spec import Scenario, discover

SCENARIOS = discover()


def test_there_are_scenarios() -> None:
    assert len(SCENARIOS) >= 10


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
async def test_scenario(scenario: Scenario) -> None:
    missing = golden.missing_renderer(scenario)
    if missing:
        pytest.skip(missing)
    actual = golden.render(await run_bot(scenario), run_cli(scenario))
    problems = golden.differences(scenario, actual)
    if problems:
        pytest.fail(
            f"{scenario.name}: the outputs differ from the expected files "
            f"(if intended: {golden.UPDATE_COMMAND} {scenario.name}):\n\n" + "\n".join(problems),
            pytrace=False,
        )
