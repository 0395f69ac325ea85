"""Golden outputs of ``check`` and ``lint`` on the shop example, and of the section the
app adds to its comment for the example's pull request (docs/intents.md).

Regenerate with ``REACHDIFF_UPDATE_GOLDEN=1`` when a change is intended, and read the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from analysis.lint import LintConfig
from bot.cli import main
from bot.inputs.analyze import DiffResult, analyze
from bot.render.declared import declared_section

ROOT = Path(__file__).resolve().parent.parent
SHOP = ROOT / "examples" / "shop"
GOLDEN = ROOT / "tests" / "fixtures" / "intents"


def matches_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("REACHDIFF_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), "regenerate with REACHDIFF_UPDATE_GOLDEN=1 if intended"


@pytest.mark.parametrize("fmt", ["text", "md"])
def test_check_of_the_shop_example(fmt: str, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["check", str(SHOP / "head"), "--intents", str(SHOP / "intents")]
    assert main([*args, "--cluster-scope", "complete", "--format", fmt]) == 1
    out = capsys.readouterr().out.replace(str(SHOP), "examples/shop")
    matches_golden(f"check.{'txt' if fmt == 'text' else 'md'}", out)


def test_lint_of_the_shop_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint", str(SHOP / "head"), "--format", "md"]) == 0
    matches_golden("lint.md", capsys.readouterr().out)


def files(side: str) -> dict[str, bytes]:
    root = SHOP / side
    out = {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*.yaml")}
    out["intents/payments.yaml"] = (SHOP / "intents" / "payments.yaml").read_bytes()
    return out


def test_comment_section_of_the_shop_pull_request() -> None:
    result = analyze(files("base"), files("head"), lint_config=LintConfig(fail_on="warning"))
    assert isinstance(result, DiffResult) and result.declared is not None
    declared = result.declared
    assert declared.hard_count == 4  # the four commerce workloads the deny names
    assert not declared.declarations_changed
    assert [f.rule for f in declared.failing_findings] == ["peer-matches-nothing"]
    matches_golden("comment-section.md", declared_section(declared, "@alice"))
