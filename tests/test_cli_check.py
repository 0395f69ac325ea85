"""``reachdiff check`` and ``reachdiff lint``: formats, exit codes, errors, and SARIF valid
against the official SARIF 2.1.0 schema (tests/fixtures/sarif, vendored with its license)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import pytest

from bot.cli import main

ROOT = Path(__file__).parent.parent
SCHEMA = json.loads((ROOT / "tests/fixtures/sarif/sarif-schema-2.1.0.json").read_text())
SHOP = ROOT / "examples" / "shop"

PODS = """\
apiVersion: v1
kind: Pod
metadata: {name: api, namespace: shop, labels: {app: api}}
spec: {containers: [{name: c, image: x, ports: [{containerPort: 8080}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: pg, namespace: db, labels: {app: pg}}
spec: {containers: [{name: c, image: x, ports: [{containerPort: 5432}]}]}
"""
POLICY = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: pg, namespace: db}
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]  # nothing out of db
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: shop}}
    ports: [{port: 5432}]
"""
INTENT = """\
apiVersion: reachdiff.io/v1alpha1
kind: Intent
metadata: {name: db}
spec:
  scope: [{namespace: db}]
  allow:
  - from: {namespace: shop}
    to: {namespace: db, workload: Pod/pg}
    ports: TCP 5432
    required: true
---
apiVersion: reachdiff.io/v1alpha1
kind: ConnectivityTest
metadata: {name: db}
spec:
  cases:
  - {name: api reads pg, from: {workload: api}, to: {workload: pg}, port: TCP 5432, expect: allowed}
  - {from: {workload: api}, to: {workload: pg}, port: TCP 22, expect: denied}
"""


def tree(tmp_path: Path, policy: str = POLICY, intent: str = INTENT) -> Path:
    root = tmp_path / "tree"
    root.mkdir()
    (root / "pods.yaml").write_text(PODS)
    (root / "policy.yaml").write_text(policy)
    (root / "intents.yaml").write_text(intent)
    return root


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_a_tree_keeping_its_declarations_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "check", str(tree(tmp_path)), "--cluster-scope", "complete")
    assert code == 0
    assert "every declared communication and connectivity test holds" in out


def test_json_contract(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    widened = POLICY.replace("    ports: [{port: 5432}]\n", "")
    code, out, _ = run(
        capsys,
        "check",
        str(tree(tmp_path, widened)),
        "--format",
        "json",
        "--cluster-scope",
        "complete",
    )
    assert code == 1
    doc = json.loads(out)
    assert doc["passed"] is False and doc["declarations"] == {"intents": 1, "tests": 2}
    kinds = {(v["type"], v["src"], v["dst"], json.dumps(v["ports"])) for v in doc["violations"]}
    assert (
        "undeclared",
        "shop/Pod/api",
        "db/Pod/pg",
        '{"TCP": "1-5431,5433-65535", "UDP": "all", "SCTP": "all"}',
    ) in kinds
    test = next(v for v in doc["violations"] if v["type"] == "test")
    assert test["intent"] == {
        "name": "db",
        "kind": "ConnectivityTest",
        "entry": "cases[1]",
        "file": "intents.yaml",
        "line": 18,
    }
    assert (test["expect"], test["actual"]) == ("denied", "allowed")
    assert test["because"][0]["policy"] == "db/NetworkPolicy/pg"
    assert test["because"][0]["rule"] == "ingress[0]"
    assert set(test["because"][0]) >= {"file", "line", "direction", "tree", "reason", "tier"}


def test_blocked_required_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    closed = POLICY.replace("5432}", "5433}")
    code, out, _ = run(capsys, "check", str(tree(tmp_path, closed)), "--cluster-scope", "complete")
    assert code == 1
    assert (
        "blocked: required but not allowed on TCP 5432  (Intent db allow[0], intents.yaml:7)" in out
    )
    assert "because db/NetworkPolicy/pg isolates (head policy.yaml:1)" in out


@pytest.mark.parametrize("fmt", ["text", "md", "json", "sarif"])
def test_every_format_of_the_shop_example(
    fmt: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "shop"
    shutil.copytree(SHOP / "head", root)
    code, out, err = run(
        capsys, "check", str(root), "--intents", str(SHOP / "intents"), "--format", fmt
    )
    assert code == 1, err
    assert "payments-db" in out


def validate(doc: dict[str, object]) -> None:
    jsonschema.Draft4Validator.check_schema(SCHEMA)
    jsonschema.Draft4Validator(SCHEMA).validate(doc)


def test_check_sarif_is_valid_and_points_at_the_declaration(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "shop"
    shutil.copytree(SHOP / "head", root)
    shutil.copy(SHOP / "intents" / "payments.yaml", root / "payments.yaml")
    code, out, _ = run(capsys, "check", str(root), "--format", "sarif")
    assert code == 1
    doc = json.loads(out)
    validate(doc)
    (run_,) = doc["runs"]
    rules = [r["id"] for r in run_["tool"]["driver"]["rules"]]
    assert rules == ["intent/forbidden", "intent/undeclared", "intent/blocked", "intent/test"]
    forbidden = [r for r in run_["results"] if r["ruleId"] == "intent/forbidden"]
    assert forbidden
    location = forbidden[0]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "payments.yaml"
    assert location["region"]["startLine"] == 16
    related = {
        (
            r["physicalLocation"]["artifactLocation"]["uri"],
            r["physicalLocation"]["region"]["startLine"],
        )
        for r in forbidden[0]["relatedLocations"]
    }
    assert ("policies/payments/payments-db.yaml", 24) in related
    assert all(rules[r["ruleIndex"]] == r["ruleId"] for r in run_["results"])
    severities = {
        r["id"]: float(r["properties"]["security-severity"])
        for r in run_["tool"]["driver"]["rules"]
    }
    assert severities["intent/forbidden"] > 7 > severities["intent/undeclared"] > 4


def test_lint_sarif_is_valid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "lint", str(SHOP / "head"), "--format", "sarif")
    assert code == 0  # warnings and notes only; the default fails on errors
    doc = json.loads(out)
    validate(doc)
    results = doc["runs"][0]["results"]
    peer = next(r for r in results if r["ruleId"] == "lint/peer-matches-nothing")
    region = peer["locations"][0]["physicalLocation"]
    assert (region["artifactLocation"]["uri"], region["region"]["startLine"]) == (
        "policies/payments/payments-db.yaml",
        28,
    )
    assert {r["level"] for r in results} <= {"warning", "note"}


def test_lint_fails_at_the_configured_severity(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shop = str(SHOP / "head")
    assert run(capsys, "lint", shop, "--fail-on", "warning")[0] == 1
    assert run(capsys, "lint", shop, "--fail-on", "never")[0] == 0
    settings = tmp_path / "reachdiff.yml"
    settings.write_text("lint:\n  fail_on: note\n  rules: {allows-every-port: off}\n")
    code, out, _ = run(capsys, "lint", shop, "--settings", str(settings), "--format", "json")
    doc = json.loads(out)
    assert code == 1 and doc["failed"] and doc["fail_on"] == "note"
    assert "allows-every-port" not in {f["rule"] for f in doc["findings"]}
    assert set(doc["findings"][0]) == {
        "rule",
        "severity",
        "file",
        "line",
        "subject",
        "message",
        "fix",
    }


def test_no_declaration_is_an_input_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "check", str(SHOP / "head"))
    assert code == 2
    assert "there is nothing to check" in err


def test_a_bad_declaration_names_file_line_and_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(
        capsys, "check", str(tree(tmp_path, intent=INTENT.replace("TCP 5432", "tcp/5432")))
    )
    assert code == 2
    assert "intents.yaml:7:" in err and 'write "TCP 80,443; UDP 53"' in err


def test_unmodelled_policy_kinds_fail_closed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tree(tmp_path)
    # An Istio AuthorizationPolicy (Cilium's and Calico's kinds are modelled).
    (root / "authz.yaml").write_text(
        "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
        "metadata: {name: x, namespace: db}\nspec: {}\n"
    )
    code, _, err = run(capsys, "check", str(root), "--cluster-scope", "complete")
    assert code == 2 and "not analysed" in err
    assert (
        run(
            capsys,
            "check",
            str(root),
            "--cluster-scope",
            "complete",
            "--ignore-kind",
            "AuthorizationPolicy",
        )[0]
        == 0
    )


def test_an_entry_naming_no_workload_is_warned_of(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    typo = INTENT.replace("scope: [{namespace: db}]", "scope: [{namespace: bd}]")
    code, _, err = run(
        capsys, "check", str(tree(tmp_path, intent=typo)), "--cluster-scope", "complete"
    )
    assert code == 0
    assert "intents.yaml:5: Intent db scope[0] matches no workload of the tree" in err
    _, out, _ = run(
        capsys, "check", str(tmp_path / "tree"), "--cluster-scope", "complete", "--format", "json"
    )
    assert json.loads(out)["unmatched"] == [
        {"kind": "Intent", "name": "db", "entry": "scope[0]", "file": "intents.yaml", "line": 5}
    ]
    (tmp_path / "ok").mkdir()
    code, _, err = run(capsys, "check", str(tree(tmp_path / "ok")), "--cluster-scope", "complete")
    assert "matches no workload" not in err


@pytest.mark.parametrize("fmt", ["text", "md", "json", "sarif"])
def test_the_violations_listed_are_capped_and_the_total_is_shown(
    fmt: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "shop"
    shutil.copytree(SHOP / "head", root)
    argv = ["check", str(root), "--intents", str(SHOP / "intents"), "--format", fmt]
    code, every, _ = run(capsys, *argv, "--max-violations", "0")
    assert code == 1
    total = json.loads(run(capsys, *argv[:-1], "json", "--max-violations", "0")[1])["total"]
    assert total > 3
    code, capped, err = run(capsys, *argv, "--max-violations", "2")
    assert code == 1  # the exit code covers every violation
    if fmt == "json":
        doc = json.loads(capped)
        assert len(doc["violations"]) == 2 and doc["total"] == total
        assert doc["omitted"] == total - 2 and sum(doc["counts"].values()) == total
        assert json.loads(every)["violations"][:2] == doc["violations"]
    else:
        assert len(capped) < len(every)
    said = capped if fmt in ("text", "md") else err
    assert f"{total - 2} more violations not shown: 2 of {total}" in said.replace("\\", "")
    if fmt in ("text", "md"):
        assert f"{total} violations of declared communications" in capped


def test_max_violations_must_be_a_count(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["check", str(tree(tmp_path)), "--max-violations", "-1"])
    assert caught.value.code == 2
    assert "not a whole number" in capsys.readouterr().err
