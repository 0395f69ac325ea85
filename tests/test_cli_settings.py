"""`explain`, `traffic` and `suggest` read ``--settings FILE`` as map, diff, lint, check and
exposure do (bot.cli.options.settings_option): each test shows a setting changing the
answer."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.cli import EXIT_INPUT, EXIT_OK, main
from tests.test_workload_kinds import CLIENT, KAFKA, POLICY, SETTINGS

SHOP = Path(__file__).parent.parent / "examples" / "shop"
FLOWS = str(SHOP / "flows" / "hubble.jsonl")


@pytest.fixture
def kafka_settings(tmp_path: Path) -> str:
    path = tmp_path / "reachdiff.yml"
    path.write_text(SETTINGS)
    return str(path)


def test_explain_reads_workload_kinds(
    tmp_path: Path, kafka_settings: str, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "kafka.yaml").write_text(KAFKA)
    (tree / "client.yaml").write_text(CLIENT)
    (tree / "policy.yaml").write_text(POLICY % "shop")
    argv = ["explain", str(tree), "shop/Deployment/producer", "streaming/Kafka/events"]
    # Without the setting a Kafka is no workload: there is no such destination.
    assert main([*argv, "--port", "TCP 9092"]) == EXIT_INPUT
    assert "streaming/Kafka/events" in capsys.readouterr().err
    assert main([*argv, "--port", "TCP 9092", "--settings", kafka_settings]) == EXIT_OK
    out = capsys.readouterr().out
    assert out.startswith(f"{argv[2]} -> {argv[3]} on TCP 9092: allowed (TCP 9092)\n")
    assert "kafka-clients" in out
    assert main([*argv, "--port", "TCP 9404", "--settings", kafka_settings]) == EXIT_OK
    assert capsys.readouterr().out.startswith(f"{argv[2]} -> {argv[3]} on TCP 9404: DENIED\n")


def test_traffic_reads_cluster_scope(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["traffic", str(SHOP / "base"), "--flows", FLOWS]
    assert main(argv) == EXIT_OK
    partial = capsys.readouterr().out
    complete = tmp_path / "reachdiff.yml"
    complete.write_text("cluster_scope: complete\n")
    assert main([*argv, "--settings", str(complete)]) == EXIT_OK
    whole = capsys.readouterr().out
    # Partial scope counts pods the tree does not define (~catalog/*); complete does not.
    assert "~catalog/* -> kube-system/Deployment/kube-dns UDP 53" in partial
    assert "~catalog/*" not in whole and "Allowed but never observed" in whole


def test_suggest_reads_workload_kinds(
    tmp_path: Path, kafka_settings: str, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = tmp_path / "shop"
    shutil.copytree(SHOP / "base", tree)
    (tree / "kafka.yaml").write_text(KAFKA)
    argv = ["suggest", str(tree), "--flows", FLOWS]
    main(argv)
    without = capsys.readouterr().out
    main([*argv, "--settings", kafka_settings])
    with_kinds = capsys.readouterr().out
    # Namespaces with workloads are covered: the Kafka's only with the setting.
    assert "# Covers namespaces: catalog, checkout, monitoring, payments, storefront\n" in without
    assert ", storefront, streaming\n" in with_kinds


def test_a_settings_file_that_is_not_settings_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "reachdiff.yml"
    bad.write_text("cluster_scope: everything\n")
    for argv in (
        ["traffic", str(SHOP / "base"), "--flows", FLOWS],
        ["suggest", str(SHOP / "base"), "--flows", FLOWS],
        ["explain", str(SHOP / "base"), "a/Pod/a", "b/Pod/b"],
    ):
        assert main([*argv, "--settings", str(bad)]) == EXIT_INPUT
        assert "cluster_scope" in capsys.readouterr().err
