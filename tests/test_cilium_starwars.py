"""Golden scenario: Cilium's Star Wars demo as a pull request (tests/fixtures/cilium-starwars,
see its README). What `reachdiff diff` prints in text, Markdown (the bot's comment body) and
JSON, and `reachdiff explain` for the new xwing path, word for word; plus the facts the
goldens must show, asserted on their own so a regenerated golden cannot hide a regression."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bot.cli import main

SCENARIO = Path(__file__).parent / "fixtures" / "cilium-starwars"
BASE, HEAD = str(SCENARIO / "base"), str(SCENARIO / "head")
DEATHSTAR = "default/Deployment/deathstar"
TIE, XWING = "default/Pod/tiefighter", "default/Pod/xwing"


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def _golden(name: str, text: str) -> None:
    path = SCENARIO / name
    if os.environ.get("REACHDIFF_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), f"regenerate {name} with REACHDIFF_UPDATE_GOLDEN=1"


@pytest.mark.parametrize(("fmt", "name"), [("text", "diff.txt"), ("md", "diff.md")])
def test_starwars_diff_golden(capsys: pytest.CaptureFixture[str], fmt: str, name: str) -> None:
    code, out = _run(capsys, "diff", BASE, HEAD, "--format", fmt)
    assert code == 1  # the xwing path is a widening
    _golden(name, out)


def test_starwars_diff_json_golden_and_facts(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(capsys, "diff", BASE, HEAD, "--format", "json")
    assert code == 1
    _golden("diff.json", out)
    doc = json.loads(out)
    [opened] = doc["opened"]
    assert (opened["src"], opened["dst"], opened["allowed"]) == (XWING, DEATHSTAR, {"TCP": "80"})
    [cause] = opened["because"]
    assert (cause["policy"], cause["rule"], cause["tier"], cause["action"]) == (
        "default/CiliumNetworkPolicy/rule1",
        "ingress[1]",
        "CiliumNetworkPolicy",
        "Allow",
    )
    assert cause["l7"].startswith("L7-filtered") and "/v1/exhaust-port" in cause["l7"]
    closed = {(c["src"], c["dst"]) for c in doc["closed"]}
    assert ("ip:0.0.0.0/0", TIE) in closed and ("ip:::/0", TIE) in closed
    egress = "default/CiliumNetworkPolicy/deathstar-egress"
    for change in doc["closed"]:
        [why] = change["because"]
        if change["src"] == DEATHSTAR:  # its new egress policy isolates it
            assert (why["policy"], why["reason"], why["line"]) == (egress, "isolates", 4)
            continue
        assert (why["policy"], why["action"], why["file"], why["line"]) == (
            "CiliumClusterwideNetworkPolicy/empire-lockdown",
            "Deny",
            "lockdown.yaml",
            14,
        )
    # The deathstar keeps TCP 443 to the API server and to *.empire.example (through the
    # DNS proxy its DNS rule sets up), and nothing else.
    left = {(c["dst"], c["head"].get("TCP")) for c in doc["closed"] if c["src"] == DEATHSTAR}
    assert ("entity:kube-apiserver", "443") in left and ("fqdn:*.empire.example", "443") in left
    assert ("entity:host", None) in left
    # The L7 restriction of the tiefighter's rule changes nothing at L4.
    assert all(c["src"] != TIE for c in doc["opened"] + doc["closed"])


def test_starwars_explain_golden(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(capsys, "explain", HEAD, XWING, DEATHSTAR, "--port", "TCP 80")
    assert code == 0
    _golden("explain.txt", out)
    assert "ingress[1] → allow (rule1.yaml:23)" in out and "L7-filtered" in out
