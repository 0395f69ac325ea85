"""``reachdiff exposure`` and the exposure part of ``reachdiff diff``, on the shop example."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli import main
from bot.review.settings import SettingsError, parse_repo_settings

SHOP = Path(__file__).resolve().parent.parent / "examples" / "shop"
SETTINGS = str(SHOP / "reachdiff.yml")
DB = "payments/StatefulSet/payments-db"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_exposure_json_of_the_shop(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "exposure", str(SHOP / "base"), "--format", "json", "--settings", SETTINGS
    )
    assert code == 0
    doc = json.loads(out)
    assert "storefront/Deployment/web" in doc["entry_points"]
    assert "LoadBalancer" in doc["entry_point_reasons"]["storefront/Deployment/web"][0]
    # ~payments/* too: pods of payments the repository does not define
    assert doc["crown_jewels"] == ["payments/Deployment/payments-api", "~payments/*", DB]
    by_id = {w["id"]: w for w in doc["workloads"]}
    db = by_id[DB]
    assert db["entry_hops"] == 4 and db["crown_jewel"] and len(db["entry_path"]) == 4
    assert db["entry_path"][-1]["dst"] == DB
    assert by_id["storefront/Deployment/web"]["entry_hops"] == 0
    # ids are the map's
    _, map_out, _ = run(capsys, "map", str(SHOP / "base"), "--format", "json")
    assert {w["id"] for w in doc["workloads"]} == {
        e["id"] for e in json.loads(map_out)["endpoints"] if e["kind"] != "External"
    }


def test_exposure_text_and_markdown(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "exposure", str(SHOP / "base"), "--settings", SETTINGS)
    assert code == 0
    assert f"{DB}: 4 hops from an entry point" in out
    code, out, _ = run(capsys, "exposure", str(SHOP / "base"), "--format", "md")
    assert code == 0 and out.startswith("## Exposure") and f"| `{DB}` | 4 |" in out


def test_diff_json_adds_exposure_changes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "diff",
        str(SHOP / "base"),
        str(SHOP / "head"),
        "--format",
        "json",
        "--settings",
        SETTINGS,
    )
    assert code == 1
    doc = json.loads(out)
    # The documented fields are all still there.
    assert {"widening", "opened", "closed", "added_endpoints", "removed_endpoints"} <= set(doc)
    changes = {c["id"]: c for c in doc["exposure_changes"]}
    db = changes[DB]
    assert db["entry_hops"] == {"base": 4, "head": 3} and db["closer"] and db["crown_jewel"]
    last = db["entry_path"][-1]
    assert last["dst"] == DB and last["allowed"] == {"TCP": "5432"}
    ingress = [b for b in last["because"] if b["direction"] == "Ingress"]
    assert ingress == [
        {
            "direction": "Ingress",
            "verdict": "allow",
            "tier": "NetworkPolicy",
            "policy": "payments/NetworkPolicy/payments-db",
            "rule": "ingress[1]",
            "file": "policies/payments/payments-db.yaml",
            "line": 24,
        }
    ]
    assert [b["direction"] for b in last["because"]] == ["Egress", "Ingress"]


def test_diff_text_has_a_short_exposure_section(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "diff", str(SHOP / "base"), str(SHOP / "head"), "--settings", SETTINGS)
    assert f"{DB} [crown jewel]: hops from an entry point 4 -> 3" in out
    _, out, _ = run(
        capsys,
        "diff",
        str(SHOP / "base"),
        str(SHOP / "head"),
        "--format",
        "md",
        "--settings",
        SETTINGS,
    )
    assert "### Exposure" in out


def test_exposure_settings_name_the_line_of_a_mistake() -> None:
    with pytest.raises(SettingsError) as err:
        parse_repo_settings("diagram: true\ncrown_jewels:\n  - {podSelectr: {}}\n")
    assert ".github/reachdiff.yml:3: crown_jewels: `crown_jewels[0]`" in str(err.value)
    assert "unknown field" in str(err.value)
    settings = parse_repo_settings(
        "crown_jewels: [{namespace: payments}]\nexposure_widens: false\n"
        "blast_radius_threshold: 10\n"
    )
    assert settings.crown_jewels[0].namespace == "payments"
    assert not settings.exposure_widens and settings.blast_radius_threshold == 10


def _page_data(html: str) -> dict[str, object]:
    start = html.index('<script type="application/json" id="data">') + len(
        '<script type="application/json" id="data">'
    )
    data: dict[str, object] = json.loads(html[start : html.index("</script>", start)])
    return data


def test_html_map_of_several_environments_holds_every_endpoint(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import shutil

    if shutil.which("kubectl") is None and shutil.which("kustomize") is None:
        pytest.skip("needs kubectl or kustomize")
    tree = str(Path(__file__).resolve().parent / "fixtures" / "kustomize" / "shop")
    _, html, _ = run(capsys, "map", tree, "--format", "html")
    _, out, _ = run(capsys, "map", tree, "--format", "json")
    doc, data = json.loads(out), _page_data(html)
    assert data["counts"] == {
        "endpoints": len(doc["endpoints"]),
        "connections": len(doc["connections"]),
    }
    nodes = data["nodes"]
    assert isinstance(nodes, list)
    assert sorted(n["id"] for n in nodes) == sorted(e["id"] for e in doc["endpoints"])
    assert (
        "<script"
        not in html[
            html.index('id="data">') + 10 : html.index("</script>", html.index('id="data">'))
        ]
    )


def test_page_data_cannot_end_its_script_element() -> None:
    from analysis.htmlmap import render_page

    hostile = "</script><script>alert(1)</script><!--"
    page = render_page(
        "<title>{{ title }}</title><script>{{ data }}</script>",
        {"title": hostile, "nodes": [{"id": hostile}]},
    )
    assert page.count("<script>") == 1 and page.count("</script>") == 1
    assert "&lt;/script&gt;" in page  # the title, as text
    assert json.loads(page[page.index("<script>") + 8 : page.index("</script>")])["nodes"] == [
        {"id": hostile}
    ]
