"""`reachdiff flows summarize`, `reachdiff traffic` and `reachdiff diff --flows` on the shop
example, whose pull request closes a path that carried traffic (examples/shop/flows)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from bot.cli import main

SHOP = Path(__file__).parent.parent / "examples" / "shop"
FLOWS = SHOP / "flows" / "hubble.jsonl"
CLOSED = ("catalog/Deployment/catalog-api", "payments/Deployment/payments-api")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_summarize_then_traffic_on_head_finds_the_break(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    summary = tmp_path / "summary.json"
    gz = tmp_path / "flows.jsonl.gz"
    gz.write_bytes(gzip.compress(FLOWS.read_bytes()))
    code, _, err = run(capsys, "flows", "summarize", str(gz), "-o", str(summary))
    assert code == 0, err
    doc = json.loads(summary.read_text())
    assert doc["skipped"] == {
        "reply direction": 1,
        "trace-point duplicate (counted where it is delivered)": 1,
    }
    code, out, _ = run(
        capsys, "traffic", str(SHOP / "head"), "--flows", str(summary), "--format", "json"
    )
    assert code == 1
    report = json.loads(out)
    denied = [(d["src"], d["dst"], d["port"], d["count"]) for d in report["denied_observed"]]
    assert denied == [(*CLOSED, 8443, 29)]
    assert {r["policy"] for r in report["denied_observed"][0]["rules"]} >= {
        "payments/NetworkPolicy/payments-api"
    }
    # the head's split-selector rule lets catalog reach the database: allowed, never used
    unused = {(u["src"], u["dst"], u["port"]) for u in report["unused"]}
    assert (
        "catalog/StatefulSet/catalog-redis",
        "payments/StatefulSet/payments-db",
        "5432",
    ) in unused
    assert report["flows"]["unmapped"] == []


def test_traffic_on_base_passes_and_reports_the_drop(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "traffic", str(SHOP / "base"), "--flows", str(FLOWS), "--format", "json"
    )
    assert code == 0
    report = json.loads(out)
    assert report["denied_observed"] == []
    (drop,) = report["dropped"]
    assert (drop["src"], drop["dst"], drop["allowed"]) == (
        "storefront/Deployment/storefront-api",
        "payments/StatefulSet/payments-db",
        False,
    )
    # every flow observed on an allowed path is absent from `unused`
    used = {("storefront/Deployment/web", "storefront/Deployment/storefront-api", "TCP")}
    assert not any(
        (u["src"], u["dst"], u["protocol"]) in used and u["port"] == "8080"
        for u in report["unused"]
    )


def test_diff_with_flows(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "diff",
        str(SHOP / "base"),
        str(SHOP / "head"),
        "--flows",
        str(FLOWS),
        "--format",
        "json",
    )
    assert code == 1  # exit codes unchanged: the change widens
    doc = json.loads(out)
    (closed,) = doc["closed"]
    assert closed["observed"]["forwarded"] == 29
    assert closed["observed"]["last_seen"] == "2026-11-30T03:15:00Z"
    assert [(b["src"], b["dst"], b["forwarded"]) for b in doc["breaks"]] == [(*CLOSED, 29)]
    assert all("observed" in row for row in doc["opened"])
    assert doc["flows"]["first_seen"] == "2026-11-02T03:15:00Z"
    code, text, _ = run(
        capsys, "diff", str(SHOP / "base"), str(SHOP / "head"), "--flows", str(FLOWS)
    )
    assert "Would break 29 observed flows on 1 closed paths" in text
    assert "28.2 days" in text


def test_diff_without_breaks_says_on_what_data(capsys: pytest.CaptureFixture[str]) -> None:
    code, text, _ = run(
        capsys, "diff", str(SHOP / "base"), str(SHOP / "base"), "--flows", str(FLOWS)
    )
    assert code == 0
    assert "No closed path carried a forwarded flow in this window." in text
    assert "Observed traffic: 438 records" in text


def test_malformed_records_fail_closed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(FLOWS.read_bytes() + b"{oops\n")
    out = tmp_path / "s.json"
    code, _, err = run(capsys, "flows", "summarize", str(bad), "-o", str(out))
    assert code == 2
    assert f"{bad}:439:" in err
    assert json.loads(out.read_text())["malformed"]["count"] == 1
    code, _, err = run(capsys, "flows", "summarize", str(tmp_path / "missing"), "-o", str(out))
    assert code == 2 and "cannot read" in err


def test_deeply_nested_json_is_malformed_not_a_crash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deep = tmp_path / "deep.jsonl"
    deep.write_text('{"flow":' * 100_000 + "\n")
    code, _, err = run(capsys, "flows", "summarize", str(deep), "-o", str(tmp_path / "s.json"))
    assert code == 2 and f"{deep}:1:" in err
