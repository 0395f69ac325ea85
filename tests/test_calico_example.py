"""The Calico tiered example (examples/calico-tiers) as a golden scenario: what `reachdiff
diff` says about its pull request, in Markdown (what the bot posts) and JSON, kept in
tests/fixtures/calico-tiers/. Regenerate with REACHDIFF_UPDATE_GOLDEN=1 after checking the
difference by eye; the facts below are asserted on their own too."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bot.cli import main

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "calico-tiers"
GOLDEN = ROOT / "tests" / "fixtures" / "calico-tiers"


def _run(capsys: pytest.CaptureFixture[str], fmt: str) -> tuple[int, str]:
    code = main(["diff", str(EXAMPLE / "base"), str(EXAMPLE / "head"), "--format", fmt])
    return code, capsys.readouterr().out


@pytest.mark.parametrize("fmt", ["md", "json"])
def test_golden(capsys: pytest.CaptureFixture[str], fmt: str) -> None:
    code, out = _run(capsys, fmt)
    assert code == 1  # widened
    path = GOLDEN / f"diff.{fmt}"
    if os.environ.get("REACHDIFF_UPDATE_GOLDEN"):
        path.write_text(out)
    assert out == path.read_text()


def test_facts(capsys: pytest.CaptureFixture[str]) -> None:
    _, out = _run(capsys, "json")
    doc = json.loads(out)
    opened = {(r["src"], r["dst"]): r for r in doc["opened"]}
    closed = {(r["src"], r["dst"]): r for r in doc["closed"]}
    db = "shop/StatefulSet/db"
    # The new default-tier policy opens the database to the shop's web pods...
    web = opened[("shop/Deployment/web", db)]
    assert web["allowed"] == {"TCP": "5432"}
    [cause] = web["because"]
    assert cause["policy"] == "shop/NetworkPolicy.projectcalico.org/db-from-commerce"
    assert (cause["file"], cause["rule"], cause["action"]) == (
        "shop-policies.yaml",
        "ingress[0]",
        "Allow",
    )
    assert cause["tier"] == "Calico tier default (order 1000000)"
    lines = (EXAMPLE / "head" / "shop-policies.yaml").read_text().splitlines()
    assert lines[cause["line"] - 1].strip() == "- action: Allow"
    # ... and to pods of other commerce namespaces outside the repository, but the security
    # tier still denies the dev namespace (its order 100 comes before the default tier's).
    assert ("~ns[team=commerce]/*", db) in opened
    assert not any(src.startswith("dev/") for src, _ in opened)
    # The platform tier now admits only Prometheus: Grafana loses the metrics ports of the
    # pods the default tier isolates; the tier's rule in the base is cited.
    grafana = closed[("monitoring/Deployment/grafana", db)]
    assert grafana["allowed"] == {"TCP": "9187"}
    assert [c["policy"] for c in grafana["because"]] == [
        "GlobalNetworkPolicy/platform.allow-scraping"
    ]
    assert grafana["because"][0]["tree"] == "base"
    assert ("monitoring/Deployment/prometheus", db) not in closed
