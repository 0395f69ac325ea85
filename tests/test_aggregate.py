"""Reports at real sizes: alike changes said once, exactly (analysis.aggregate)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings

from analysis.aggregate import Population, aggregate
from analysis.diff import diff_trees, in_order
from analysis.manifests import load_files
from bot.cli import main
from bot.inputs.environment_diff import diff_plain_files
from bot.inputs.files import read_directory
from tests.test_properties import diff_cases

DEMO = Path(__file__).parent / "fixtures" / "demo-shop"
GOLDEN = DEMO / "comment.md"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    # The demo shop is the whole cluster: these tests count its own workloads' rows
    # (representatives of pods outside a repository are tests/test_outside.py's).
    code = main([*argv, "--cluster-scope", "complete"])
    return code, capsys.readouterr().out


def test_turning_policies_on_is_reported_in_few_rows(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "diff", str(DEMO / "base"), str(DEMO / "head"), "--format", "json")
    assert code == 0
    closed = json.loads(out)["closed"]
    assert len(closed) == 168  # JSON stays one record per path
    _, text = run(capsys, "diff", str(DEMO / "base"), str(DEMO / "head"))
    rows = [line for line in text.splitlines() if line.startswith("    - ")]
    # 12 destinations, each: those now refused, the allowed peers, the internet (fewer for
    # the frontend, open on its port, and the load generator, which accepts nothing).
    assert len(rows) == 34
    assert (
        "    - 11 of 12 workloads of shop: Deployment/adservice, Deployment/cartservice, " in text
    )
    assert "    - ip:0.0.0.0/0, ip:::/0  TCP all; UDP all; SCTP all\n" in text
    _, md = run(capsys, "diff", str(DEMO / "base"), str(DEMO / "head"), "--format", "md")
    assert len(md) < 16_000  # 57 KB when every path had its row


def test_every_change_is_in_exactly_one_row() -> None:
    diff = diff_plain_files(read_directory(DEMO / "base"), read_directory(DEMO / "head"))
    changes = in_order(diff.closed, by_destination=True)
    groups = aggregate(changes, diff.populations.base)
    listed = [id(c) for g in groups for r in g.rows for c in r.changes]
    assert sorted(listed) == sorted(id(c) for c in changes)
    for group in groups:
        for row in group.rows:
            first = row.first
            for c in row.changes:
                assert c.dst.id == first.dst.id and c.delta == first.delta
                assert c.because == first.because


def test_every_workload_of_a_namespace_is_said_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    head = tmp_path / "head"
    shutil.copytree(DEMO / "head", head)
    policy = head / "policies" / "adservice.yaml"
    text = policy.read_text()
    assert "  - from:\n    - podSelector:\n        matchLabels:\n          app: frontend\n" in text
    # adservice now accepts every pod of the namespace on its port.
    policy.write_text(
        text.replace(
            "    - podSelector:\n        matchLabels:\n          app: frontend\n",
            "    - podSelector: {}\n",
        )
    )
    code, out = run(capsys, "diff", str(DEMO / "head"), str(head))
    assert code == 1
    assert "reachdiff: access WIDENED: 11 paths opened, 0 closed" in out
    assert "    + 11 of 12 workloads of shop: " in out  # frontend had it already
    _, md = run(capsys, "diff", str(DEMO / "head"), str(head), "--format", "md")
    assert "| 11 of 12 workloads of `shop`: `Deployment/adservice`, " in md

    # Every workload, the frontend included, newly reaching a new port: "all".
    policy.write_text(policy.read_text().replace("port: 9555", "port: 9556"))
    code, out = run(capsys, "diff", str(DEMO / "head"), str(head))
    assert "    + all 12 workloads of shop  TCP 9556\n" in out


def test_every_workload_of_an_environment_is_said_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, head = tmp_path / "base", tmp_path / "head"
    for root in (base, head):
        shutil.copytree(DEMO / "head", root)
        (root / "ops.yaml").write_text(
            (DEMO / "base" / "shop.yaml")
            .read_text()
            .split("---\n")[2]
            .replace("namespace: shop", "namespace: ops")
            .replace("adservice", "probe")
        )
    policy = head / "policies" / "adservice.yaml"
    policy.write_text(
        policy.read_text()
        .replace(
            "    - podSelector:\n        matchLabels:\n          app: frontend\n",
            "    - namespaceSelector: {}\n",
        )
        .replace("port: 9555", "port: 9556")
    )
    code, out = run(capsys, "diff", str(base), str(head))
    assert code == 1
    assert "    + all 13 workloads  TCP 9556\n" in out


def test_the_same_change_in_several_environments_is_one_group(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if shutil.which("kubectl") is None and shutil.which("kustomize") is None:
        pytest.skip("needs kubectl or kustomize")
    trees = []
    for side in ("base", "head"):
        root = tmp_path / side
        shutil.copytree(DEMO / side, root / "app")
        resources = sorted(
            p.relative_to(root / "app").as_posix() for p in (root / "app").rglob("*.yaml")
        )
        (root / "app" / "kustomization.yaml").write_text(
            "resources:\n" + "".join(f"- {r}\n" for r in resources)
        )
        for env in ("prod", "staging"):
            (root / "overlays" / env).mkdir(parents=True)
            (root / "overlays" / env / "kustomization.yaml").write_text("resources:\n- ../../app\n")
        trees.append(root)
    code, out = run(capsys, "diff", *map(str, trees))
    assert code == 0
    assert "  shop/Deployment/adservice  (in overlays/prod, overlays/staging)\n" in out
    assert out.count("shop/Deployment/adservice  (in") == 1
    code, out = run(capsys, "diff", *map(str, trees), "--format", "json")
    assert len(json.loads(out)["closed"]) == 2 * 168  # JSON lists each environment's paths


def test_demo_shop_comment_golden(capsys: pytest.CaptureFixture[str]) -> None:
    _, md = run(capsys, "diff", str(DEMO / "base"), str(DEMO / "head"), "--format", "md")
    if os.environ.get("REACHDIFF_UPDATE_GOLDEN"):
        GOLDEN.write_text(md)
    assert md == GOLDEN.read_text(), "regenerate with REACHDIFF_UPDATE_GOLDEN=1 if intended"


@settings(max_examples=40, deadline=None)
@given(diff_cases())
def test_rows_stand_for_exactly_their_changes(
    case: tuple[list[Any], list[Any], dict[str, str], dict[str, str]],
) -> None:
    _, _, base_files, head_files = case
    base, head = load_files(base_files), load_files(head_files)
    diff = diff_trees(base, head)
    for changes, tree in ((diff.opened, head), (diff.closed, base)):
        ordered = in_order(changes, by_destination=True)
        groups = aggregate(ordered, Population.of_tree(tree, None))
        listed = [id(c) for g in groups for r in g.rows for c in r.changes]
        assert sorted(listed) == sorted(id(c) for c in changes)
        sizes: dict[str, int] = {}
        for w in tree.workloads:
            sizes[w.namespace] = sizes.get(w.namespace, 0) + 1
        for group in groups:
            for row in group.rows:
                assert all(
                    c.dst.id == group.dst.id
                    and c.delta == row.first.delta
                    and c.because == row.first.because
                    for c in row.changes
                )
                src = row.src
                if not src.aggregated:
                    assert len(row.changes) == 1
                    continue
                sources = {c.src.id for c in row.changes}
                assert len(sources) == len(row.changes) == src.count >= 2
                if src.ranges:
                    assert all(c.src.is_external for c in row.changes)
                elif not src.namespace:  # "all N workloads": the whole tree
                    assert src.count == len(tree.workloads)
                else:
                    assert {c.src.namespace for c in row.changes} == {src.namespace}
                    assert src.everyone == (src.count == sizes[src.namespace])
