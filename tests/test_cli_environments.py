"""The CLI on kustomize overlays: one diff per environment, endpoints qualified by it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bot.cli import main

FIXTURE = Path(__file__).parent / "fixtures" / "kustomize" / "shop"


@pytest.fixture
def overlays(tmp_path: Path) -> tuple[Path, Path]:
    base, head = tmp_path / "base", tmp_path / "head"
    shutil.copytree(FIXTURE, base)
    shutil.copytree(FIXTURE, head)
    patch = head / "overlays" / "prod" / "metrics-access.yaml"
    text = patch.read_text()
    assert "        app: admin" in text
    # The prod overlay's patch now admits every pod of the namespace, not just admin.
    patch.write_text(
        text.replace(
            "    podSelector:\n      matchLabels:\n        app: admin", "    podSelector: {}"
        )
    )
    return base, head


def test_overlay_patch_widening_is_reported_for_that_environment(
    overlays: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    base, head = overlays
    code = main(["diff", str(base), str(head), "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 1 and doc["widening"] is True
    assert doc["environments"] == ["", "overlays/dev", "overlays/prod"]
    pairs = {(c["src"], c["dst"]): c["allowed"] for c in doc["opened"]}
    assert pairs == {
        (
            "overlays/prod:shop-prod/Deployment/prod-db",
            "overlays/prod:shop-prod/Deployment/prod-db",
        ): {"TCP": "5432"},
        # cluster_scope partial (the default): pods of shop-prod the overlay does not
        # define are opened to the database by the same rule.
        ("overlays/prod:~shop-prod/*", "overlays/prod:shop-prod/Deployment/prod-db"): {
            "TCP": "5432"
        },
    }
    for change in doc["opened"]:
        [cause] = change["because"]
        assert (cause["policy"], cause["file"]) == (
            "shop-prod/NetworkPolicy/prod-db",
            "base/db-policy.yaml",
        )
    complete = main(
        ["diff", str(base), str(head), "--format", "json", "--cluster-scope", "complete"]
    )
    doc = json.loads(capsys.readouterr().out)
    assert complete == 1
    assert [(c["src"], c["dst"]) for c in doc["opened"]] == [
        (
            "overlays/prod:shop-prod/Deployment/prod-db",
            "overlays/prod:shop-prod/Deployment/prod-db",
        )
    ]


def test_unchanged_overlays_exit_zero(
    overlays: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    base, _ = overlays
    assert main(["diff", str(base), str(base)]) == 0
    assert "unchanged" in capsys.readouterr().out


def test_map_lists_each_environment(
    overlays: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    base, _ = overlays
    assert main(["map", str(base), "--format", "json"]) == 0
    envs = json.loads(capsys.readouterr().out)["environments"]
    assert [e["environment"] for e in envs] == ["", "overlays/dev", "overlays/prod"]
    prod = next(e for e in envs if e["environment"] == "overlays/prod")
    assert any(ep["id"] == "shop-prod/Deployment/prod-db" for ep in prod["endpoints"])


def test_remote_resource_is_refused_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "repo"
    shutil.copytree(FIXTURE, root)
    kfile = root / "overlays" / "dev" / "kustomization.yaml"
    kfile.write_text(
        kfile.read_text().replace(
            "resources:\n", "resources:\n- https://example.com/evil.yaml\n", 1
        )
    )
    assert main(["map", str(root)]) == 2
    err = capsys.readouterr().err
    assert "overlays/dev/kustomization.yaml:" in err and "remote" in err


def test_rule_added_by_a_patch_is_traced_to_the_patch_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, head = tmp_path / "base", tmp_path / "head"
    shutil.copytree(FIXTURE, base)
    shutil.copytree(FIXTURE, head)
    patch = head / "overlays" / "prod" / "metrics-access.yaml"
    text = patch.read_text()
    widened = text.replace(
        "    - namespaceSelector:\n        matchLabels:\n"
        "          kubernetes.io/metadata.name: monitoring",
        "    - namespaceSelector: {}",
    )
    assert widened != text
    patch.write_text(widened)
    assert main(["diff", str(base), str(head), "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    causes = {(c["file"], c["line"], c["rule"]) for row in doc["opened"] for c in row["because"]}
    rule_line = widened.splitlines().index("    from:") + 1
    assert causes == {("overlays/prod/metrics-access.yaml", rule_line, "ingress[1]")}


def test_map_json_keeps_the_contract_with_environments(
    overlays: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    base, _ = overlays
    assert main(["map", str(base), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    # The documented top level holds every environment, ids qualified like a diff's ...
    ids = [e["id"] for e in doc["endpoints"]]
    assert len(ids) == len(set(ids))
    assert "overlays/prod:shop-prod/Deployment/prod-db" in ids
    assert "overlays/dev:shop-dev/Deployment/dev-db" in ids
    prod_db = next(e for e in doc["endpoints"] if e["id"].endswith("prod-db"))
    assert prod_db["environment"] == "overlays/prod" and prod_db["name"] == "prod-db"
    assert all(c["src"] in ids and c["dst"] in ids for c in doc["connections"])
    assert {
        "src": "overlays/prod:shop-prod/Deployment/prod-web",
        "dst": "overlays/prod:shop-prod/Deployment/prod-db",
        "allowed": {"TCP": "5432"},
    } in doc["connections"]
    # ... and `environments` is added, each with its own map as before.
    per_env = {e["environment"]: e for e in doc["environments"]}
    assert set(per_env) == {"", "overlays/dev", "overlays/prod"}
    total = sum(len(e["connections"]) for e in per_env.values())
    assert total == len(doc["connections"])


@pytest.mark.parametrize("fmt", ["md", "text"])
def test_map_headings_of_environments_never_look_the_same(
    overlays: tuple[Path, Path], capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    base, _ = overlays
    assert main(["map", str(base), "--format", fmt]) == 0
    out = capsys.readouterr().out
    if fmt == "md":
        headings = [line for line in out.splitlines() if line.startswith("#")]
    else:
        headings = [line for line in out.splitlines() if line.endswith("can be reached by")]
    assert len(headings) > 4
    assert len(headings) == len(set(headings)), headings
    assert any("overlays/prod:shop-prod/Deployment/prod-db" in h for h in headings)


def test_external_ranges_carry_their_environment(
    overlays: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    base, head = overlays
    (head / "base" / "kustomization.yaml").write_text(
        (head / "base" / "kustomization.yaml").read_text() + "- office-access.yaml\n"
    )
    (head / "base" / "office-access.yaml").write_text(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: office\n"
        "spec:\n  podSelector:\n    matchLabels:\n      app: db\n  ingress:\n  - from:\n"
        "    - ipBlock:\n        cidr: 192.0.2.0/24\n    ports:\n    - port: 5432\n"
    )
    assert main(["diff", str(base), str(head), "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    office = [(c["src"], c["dst"]) for c in doc["opened"] if c["src"].endswith("192.0.2.0/24")]
    assert sorted(office) == [
        ("overlays/dev:ip:192.0.2.0/24", "overlays/dev:shop-dev/Deployment/dev-db"),
        # cluster_scope partial: db pods of shop-dev the overlay does not define, which a
        # dev policy tells apart by role=debug, are opened too.
        ("overlays/dev:ip:192.0.2.0/24", "overlays/dev:~shop-dev/pod[app=db,role=debug]"),
        ("overlays/prod:ip:192.0.2.0/24", "overlays/prod:shop-prod/Deployment/prod-db"),
    ]
    assert main(["diff", str(base), str(head), "--format", "md"]) == 1
    md = capsys.readouterr().out
    assert "overlays/dev:192.0.2.0/24" in md and "overlays/prod:192.0.2.0/24" in md
    assert main(["diff", str(base), str(head)]) == 1
    text = capsys.readouterr().out
    # Each group names its environment: the same range in two of them never looks like one.
    assert "  shop-dev/Deployment/dev-db  (in overlays/dev)\n    + ip:192.0.2.0/24" in text
    assert "  shop-prod/Deployment/prod-db  (in overlays/prod)\n" in text
    assert text.count("    + ip:192.0.2.0/24  TCP 5432\n") == 3


def test_a_summary_naming_its_environment_needs_no_environment_flag(
    overlays: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    base, _ = overlays
    raw = Path(__file__).parent.parent / "examples" / "shop" / "flows" / "hubble.jsonl"
    named, unnamed = tmp_path / "prod.json", tmp_path / "any.json"
    argv = ["flows", "summarize", str(raw)]
    assert main([*argv, "-o", str(named), "--environment", "overlays/prod"]) == 0
    assert main([*argv, "-o", str(unnamed)]) == 0
    capsys.readouterr()
    assert json.loads(named.read_text())["environment"] == "overlays/prod"
    assert main(["traffic", str(base), "--flows", str(unnamed)]) == 2
    assert "name the one the flows were observed in" in capsys.readouterr().err
    assert main(["traffic", str(base), "--flows", str(named), "--format", "json"]) != 2
    capsys.readouterr()
    nowhere = tmp_path / "north.json"
    assert main([*argv, "-o", str(nowhere), "--environment", "overlays/north"]) == 0
    capsys.readouterr()
    assert main(["traffic", str(base), "--flows", str(nowhere)]) == 2
    assert "observed in environment overlays/north" in capsys.readouterr().err
