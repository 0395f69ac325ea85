"""The CLI contract: formats, exit codes, and errors that name file and line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import main

NS_AND_PODS = """\
apiVersion: v1
kind: Namespace
metadata: {name: db}
---
apiVersion: v1
kind: Pod
metadata: {name: api, namespace: shop, labels: {app: api}}
spec: {containers: [{name: c}]}
---
apiVersion: v1
kind: Pod
metadata: {name: batch, namespace: shop, labels: {app: batch}}
spec: {containers: [{name: c}]}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: pg, namespace: db}
spec:
  template:
    metadata: {labels: {app: pg}}
    spec: {containers: [{name: c, ports: [{containerPort: 5432, name: pg}]}]}
"""

POLICY = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: pg-ingress, namespace: db}
spec:
  podSelector: {matchLabels: {app: pg}}
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: shop}}
      podSelector: {matchLabels: {app: %s}}
    ports:
    - port: pg
"""


def write_tree(root: Path, selector: str) -> Path:
    root.mkdir(parents=True)
    (root / "workloads.yaml").write_text(NS_AND_PODS)
    (root / "policy.yml").write_text(POLICY % selector)
    return root


@pytest.fixture
def trees(tmp_path: Path) -> tuple[Path, Path]:
    return write_tree(tmp_path / "base", "api"), write_tree(tmp_path / "head", "batch")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_diff_json_reports_opened_and_closed_with_causes(trees, capsys) -> None:  # type: ignore[no-untyped-def]
    base, head = trees
    code, out, _ = run(capsys, "diff", str(base), str(head), "--format", "json")
    assert code == 1
    doc = json.loads(out)
    assert doc["widening"] is True
    [opened] = doc["opened"]
    assert (opened["src"], opened["dst"], opened["allowed"]) == (
        "shop/Pod/batch",
        "db/StatefulSet/pg",
        {"TCP": "5432"},
    )
    assert opened["because"][0]["policy"] == "db/NetworkPolicy/pg-ingress"
    assert (opened["because"][0]["file"], opened["because"][0]["line"]) == ("policy.yml", 7)
    [closed] = doc["closed"]
    assert (closed["src"], closed["dst"]) == ("shop/Pod/api", "db/StatefulSet/pg")
    assert closed["because"][0]["tree"] == "base"


def test_diff_exit_zero_when_nothing_widens(trees, capsys) -> None:  # type: ignore[no-untyped-def]
    base, head = trees
    code, out, _ = run(capsys, "diff", str(head), str(head))
    assert code == 0
    assert "unchanged" in out
    code, out, _ = run(capsys, "diff", str(head), str(base))  # api regains access: widened
    assert code == 1


def test_map_formats(trees, capsys) -> None:  # type: ignore[no-untyped-def]
    base, _ = trees
    code, out, _ = run(capsys, "map", str(base), "--format", "json")
    assert code == 0
    doc = json.loads(out)
    conns = {(c["src"], c["dst"]): c["allowed"] for c in doc["connections"]}
    assert conns[("shop/Pod/api", "db/StatefulSet/pg")] == {"TCP": "5432"}
    assert ("shop/Pod/batch", "db/StatefulSet/pg") not in conns
    assert {"id": "ip:0.0.0.0/0", "kind": "External", "cidrs": ["0.0.0.0/0"]} in doc["endpoints"]

    code, out, _ = run(capsys, "map", str(base), "--format", "csv")
    assert "shop/Pod/api,db/StatefulSet/pg,TCP,5432" in out.splitlines()
    code, out, _ = run(capsys, "map", str(base), "--format", "dot")
    assert '"shop/Pod/api" -> "db/StatefulSet/pg" [label="TCP 5432"];' in out
    code, out, _ = run(capsys, "map", str(base))
    assert "db/StatefulSet/pg  can be reached by" in out
    code, out, _ = run(capsys, "map", str(base), "--format", "md")
    assert "| `shop/Pod/api` | TCP 5432 |" in out


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("    - port: 99999\n", 11, "outside 1..65535"),
        ("    - port: 80\n      endPort: 70\n", 11, "endPort 70 is less than port 80"),
        ("    - port: '80'\n", 11, "quoted number"),
    ],
)
def test_input_errors_exit_2_with_file_and_line(tmp_path, capsys, text, line, fragment) -> None:  # type: ignore[no-untyped-def]
    root = write_tree(tmp_path / "t", "api")
    body = (POLICY % "api").replace("    - port: pg\n", text)
    (root / "policy.yml").write_text(body)
    code, out, err = run(capsys, "map", str(root))
    assert code == 2
    assert f"policy.yml:{line}:" in err and fragment in err
    assert "Traceback" not in err and out == ""


def test_a_port_name_no_container_defines_is_a_warning_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write_tree(tmp_path / "t", "api")
    typo = (POLICY % "api").replace("    - port: pg\n", "    - port: abc\n")
    (root / "policy.yml").write_text(typo)
    code, out, err = run(capsys, "map", str(root))
    assert code == 0
    assert "reachdiff: warning: policy.yml:11: db/NetworkPolicy/pg-ingress ingress[0]: " in err
    assert "'abc' is not defined" in err
    # It matches nothing here: pg is isolated and admits no one.
    assert "db/StatefulSet/pg  can be reached by" not in out


def test_invalid_yaml_and_unknown_operator(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    root = write_tree(tmp_path / "t", "api")
    (root / "broken.yaml").write_text("kind: Pod\napiVersion: v1\nmetadata: {name: x\n")
    code, _, err = run(capsys, "map", str(root))
    assert code == 2 and "broken.yaml:" in err and "invalid YAML" in err
    (root / "broken.yaml").unlink()
    body = (POLICY % "api").replace(
        "podSelector: {matchLabels: {app: pg}}",
        "podSelector:\n    matchExpressions: [{key: app, operator: Like, values: [pg]}]",
    )
    (root / "policy.yml").write_text(body)
    code, _, err = run(capsys, "map", str(root))
    assert code == 2 and "policy.yml:6:" in err and "unknown selector operator 'Like'" in err


def test_console_script_runs_as_module(trees) -> None:  # type: ignore[no-untyped-def]
    base, head = trees
    proc = subprocess.run(
        [sys.executable, "-m", "bot.cli", "diff", str(base), str(head)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert "+ shop/Pod/batch  TCP 5432" in proc.stdout
