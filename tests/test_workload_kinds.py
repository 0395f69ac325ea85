"""The ``workload_kinds`` setting: any other custom kind mapped to the pods it runs (labels,
namespace, ports; values may name fields of the object), so the policies selecting them
are evaluated. Shaped like Strimzi's Kafka (strimzi/strimzi-kafka-operator, Apache-2.0:
its pods carry `strimzi.io/cluster: <name>` and `strimzi.io/kind: Kafka`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from analysis.customkinds import WorkloadKinds
from analysis.manifests import load_files
from analysis.model import ContainerPort
from analysis.treestate import apply_changes, load_state
from bot.cli import main
from bot.inputs.analyze import DiffResult, analyze
from bot.review.settings import SettingsError, parse_repo_settings

SETTINGS = """\
workload_kinds:
  - kind: Kafka.kafka.strimzi.io
    labels:
      strimzi.io/cluster: "{metadata.name}"
      strimzi.io/kind: Kafka
    labels_from: [spec.kafka.template.pod.metadata.labels]
    ports:
      - {port: 9092, name: tcp-clients}
    ports_from: [spec.kafka.extraPorts]
"""

KAFKA = """\
apiVersion: kafka.strimzi.io/v1beta2
kind: Kafka
metadata:
  name: events
  namespace: streaming
spec:
  kafka:
    replicas: 3
    template:
      pod:
        metadata:
          labels: {team: data, on-call: "yes"}
    extraPorts:
    - {containerPort: 9404, name: metrics}
"""

CLIENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: producer, namespace: shop}
spec:
  template:
    metadata: {labels: {app: producer}}
    spec: {containers: [{name: c}]}
"""

POLICY = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: kafka-clients, namespace: streaming}
spec:
  podSelector: {matchLabels: {strimzi.io/cluster: events}}
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: %s}}
    ports: [{port: tcp-clients}]
"""


def kinds() -> WorkloadKinds:
    return parse_repo_settings(SETTINGS).workload_kinds


def test_settings_describe_a_custom_kind() -> None:
    [kafka] = parse_repo_settings(SETTINGS).workload_kinds
    assert (kafka.kind, kafka.group) == ("Kafka", "kafka.strimzi.io")
    assert kafka.labels == (("strimzi.io/cluster", "{metadata.name}"), ("strimzi.io/kind", "Kafka"))
    assert kafka.ports == (ContainerPort(9092, "TCP", "tcp-clients"),)
    for bad, line in (
        ("workload_kinds:\n  - labels: {a: b}\n", 2),
        ("workload_kinds:\n  - kind: kafka\n", 2),
        ("workload_kinds:\n  - kind: Kafka\n    ports: [{port: 0}]\n", 3),
        ("workload_kinds:\n  - kind: Kafka\n    labels_from: [spec..x]\n", 3),
        ("workload_kinds:\n  - kind: Kafka\n    colour: red\n", 3),
    ):
        with pytest.raises(SettingsError) as err:
            parse_repo_settings(bad)
        assert err.value.key.startswith("workload_kinds") and err.value.line == line, bad


def test_objects_of_a_custom_kind_become_workloads() -> None:
    tree = load_files({"kafka.yaml": KAFKA}, workload_kinds=kinds())
    [kafka] = tree.workloads
    assert (kafka.id, kafka.source.line) == ("streaming/Kafka/events", 1)
    assert dict(kafka.labels) == {
        "team": "data",
        "on-call": "yes",  # quoted in the file; read exactly, never as a boolean
        "strimzi.io/cluster": "events",
        "strimzi.io/kind": "Kafka",
    }
    assert set(kafka.ports) == {
        ContainerPort(9092, "TCP", "tcp-clients"),
        ContainerPort(9404, "TCP", "metrics"),
    }
    # Without the setting, or for another group's Kafka, it runs no pods here.
    assert load_files({"kafka.yaml": KAFKA}).workloads == ()
    other = KAFKA.replace("kafka.strimzi.io/v1beta2", "example.com/v1")
    assert load_files({"k.yaml": other}, workload_kinds=kinds()).workloads == ()


def test_a_field_a_template_names_must_be_there() -> None:
    from analysis.errors import ManifestError

    [kafka] = kinds()
    broken = type(kafka)(kind="Kafka", labels=(("x", "{spec.missing}"),))
    with pytest.raises(ManifestError) as err:
        load_files({"kafka.yaml": KAFKA}, workload_kinds=(broken,))
    assert err.value.file == "kafka.yaml" and err.value.line == 1
    assert "spec.missing" in err.value.message


def test_derived_trees_read_custom_kinds_like_a_full_load() -> None:
    files = {"kafka.yaml": KAFKA, "client.yaml": CLIENT}
    state = load_state(files, workload_kinds=kinds())
    assert state.tree == load_files(files, workload_kinds=kinds())
    changed = {"kafka.yaml": KAFKA.replace("team: data", "team: infra")}
    derived = apply_changes(state, changed)
    assert derived.tree == load_files({**files, **changed}, workload_kinds=kinds())
    assert dict(derived.tree.workloads[1].labels)["team"] == "infra"


def test_bot_and_cli_evaluate_policies_selecting_a_custom_kind(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = {
        "kafka.yaml": KAFKA.encode(),
        "client.yaml": CLIENT.encode(),
        "policy.yaml": (POLICY % "billing").encode(),
    }
    head = {**base, "policy.yaml": (POLICY % "shop").encode()}
    # Without the mapping the policy selects nothing: its change is not evaluated.
    blind = analyze(base, head)
    assert isinstance(blind, DiffResult) and blind.unevaluated and not blind.opened
    seen = analyze(base, head, workload_kinds=kinds())
    assert isinstance(seen, DiffResult) and not seen.unevaluated
    assert [(c.src.id, c.dst.id, str(c.delta)) for c in seen.opened] == [
        ("shop/Deployment/producer", "streaming/Kafka/events", "TCP 9092")
    ]

    for side, files in (("base", base), ("head", head)):
        (tmp_path / side).mkdir()
        for name, content in files.items():
            (tmp_path / side / name).write_bytes(content)
    settings = tmp_path / "reachdiff.yml"
    settings.write_text(SETTINGS)
    code = main(
        ["diff", str(tmp_path / "base"), str(tmp_path / "head"), "--settings", str(settings)]
    )
    out, _ = capsys.readouterr()
    assert code == 1
    assert "streaming/Kafka/events" in out and "+ shop/Deployment/producer  TCP 9092" in out
