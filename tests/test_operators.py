"""Workloads an operator creates: the Prometheus Operator's Prometheus, Alertmanager and
ThanosRuler run pods whose labels and ports the operator decides (analysis/operators.py),
and policies select them. Checked field by field against the operator's documented
behaviour, on a tree shaped like kube-prometheus (tests/fixtures/operators), and, in
tests/test_properties.py, against the brute-force reference."""

from __future__ import annotations

from pathlib import Path

import pytest

from analysis.errors import ManifestError
from analysis.manifests import load_files
from analysis.model import ContainerPort, Workload
from analysis.outside import ClusterScope
from analysis.reachability import compute_map
from analysis.report import map_to_json
from bot.cli import main

FIXTURE = Path(__file__).parent / "fixtures" / "operators" / "kube-prometheus"


def operated(text: str) -> tuple[Workload, ...]:
    return load_files({"m.yaml": text}).workloads


PROMETHEUS = """\
apiVersion: monitoring.coreos.com/v1
kind: Prometheus
metadata:
  name: k8s
  namespace: monitoring
  labels: {team: not-the-pods}
spec:
  podMetadata:
    labels: {app.kubernetes.io/part-of: kube-prometheus, prometheus: overridden}
  version: v2.40.1
"""


def test_prometheus_pods_carry_the_operators_labels_over_pod_metadata() -> None:
    [w] = operated(PROMETHEUS)
    assert (w.id, w.source.line) == ("monitoring/Prometheus/k8s", 1)
    assert dict(w.labels) == {
        "app.kubernetes.io/part-of": "kube-prometheus",
        "app.kubernetes.io/name": "prometheus",
        "app.kubernetes.io/managed-by": "prometheus-operator",
        "app.kubernetes.io/instance": "k8s",
        "app.kubernetes.io/version": "2.40.1",  # spec.version, without its "v"
        "prometheus": "k8s",  # the operator's, over podMetadata's
        "operator.prometheus.io/name": "k8s",
        "operator.prometheus.io/shard": "0",
    }
    assert set(w.ports) == {
        ContainerPort(9090, "TCP", "web"),
        ContainerPort(8080, "TCP", "reloader-web"),
    }
    assert not w.host_network


def test_prometheus_options_that_change_its_pods() -> None:
    text = (
        PROMETHEUS
        + """\
  portName: http-web
  thanos: {image: quay.io/thanos/thanos:v0.31.0}
  shards: 2
  hostNetwork: true
  containers:
  - name: oauth-proxy
    ports: [{containerPort: 9091, name: proxy}]
"""
    )
    first, second = operated(text)
    assert (first.name, second.name) == ("k8s", "k8s-shard-1")
    assert dict(second.labels)["operator.prometheus.io/shard"] == "1"
    assert set(first.ports) == {
        ContainerPort(9090, "TCP", "http-web"),
        ContainerPort(8080, "TCP", "reloader-web"),
        ContainerPort(10902, "TCP", "http"),
        ContainerPort(10901, "TCP", "grpc"),
        ContainerPort(9091, "TCP", "proxy"),
    }
    assert first.host_network
    # listenLocal: the web and reloader ports listen on localhost only.
    [local] = operated(PROMETHEUS + "  listenLocal: true\n")
    assert local.ports == ()


def test_pod_metadata_sets_the_prometheus_version_label_when_it_has_one() -> None:
    text = PROMETHEUS.replace("prometheus: overridden}", "app.kubernetes.io/version: x}")
    assert dict(operated(text)[0].labels)["app.kubernetes.io/version"] == "x"
    without = PROMETHEUS.replace("  version: v2.40.1\n", "")
    assert "app.kubernetes.io/version" not in dict(operated(without)[0].labels)


def test_alertmanager_and_thanos_ruler() -> None:
    [am] = operated("""\
apiVersion: monitoring.coreos.com/v1
kind: Alertmanager
metadata: {name: main, namespace: monitoring}
spec:
  podMetadata: {labels: {app.kubernetes.io/version: 0.1.0, app: alertmanager-main}}
  version: v0.28.1
""")
    assert dict(am.labels) == {
        "app": "alertmanager-main",
        "app.kubernetes.io/name": "alertmanager",
        "app.kubernetes.io/managed-by": "prometheus-operator",
        "app.kubernetes.io/instance": "main",
        "app.kubernetes.io/version": "0.28.1",  # the operator's, over podMetadata's
        "alertmanager": "main",
    }
    assert set(am.ports) == {
        ContainerPort(9093, "TCP", "web"),
        ContainerPort(8080, "TCP", "reloader-web"),
        ContainerPort(9094, "TCP", "mesh-tcp"),
        ContainerPort(9094, "UDP", "mesh-udp"),
    }
    [tr] = operated("""\
apiVersion: monitoring.coreos.com/v1
kind: ThanosRuler
metadata: {name: rules}
spec: {listenLocal: true}
""")
    assert tr.id == "default/ThanosRuler/rules"
    assert dict(tr.labels)["thanos-ruler"] == "rules"
    assert tr.ports == (ContainerPort(10901, "TCP", "grpc"),)


def test_operated_pods_run_under_the_objects_service_account() -> None:
    # The operator copies spec.serviceAccountName into the pod spec as it is
    # (prometheus-operator pkg/prometheus/server/statefulset.go, pkg/alertmanager and
    # pkg/thanos statefulset.go); kube-prometheus names prometheus-k8s and alertmanager-main.
    [prometheus] = operated(PROMETHEUS + "  serviceAccountName: prometheus-k8s\n")
    assert prometheus.service_account == "prometheus-k8s"
    [unset] = operated(PROMETHEUS)
    assert unset.service_account == "default"  # the API server's default
    [empty] = operated(PROMETHEUS + '  serviceAccountName: ""\n')
    assert empty.service_account == "default"
    for kind in ("Alertmanager", "ThanosRuler"):
        [w] = operated(
            f"apiVersion: monitoring.coreos.com/v1\nkind: {kind}\nmetadata: {{name: a}}\n"
            "spec: {serviceAccountName: sa}\n"
        )
        assert w.service_account == "sa"
    with pytest.raises(ManifestError) as err:
        operated(PROMETHEUS + "  serviceAccountName: [x]\n")
    assert err.value.line == 8 and "serviceAccountName" in err.value.message


def test_cilium_selects_operated_pods_by_their_service_account() -> None:
    # A Cilium policy in the style of kube-prometheus's own NetworkPolicies, but keyed by
    # service account: before the account was read, it selected no Prometheus pod and
    # grafana's egress to it looked closed.
    files = {
        "prometheus.yaml": PROMETHEUS + "  serviceAccountName: prometheus-k8s\n",
        "grafana.yaml": """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: grafana, namespace: monitoring}
spec:
  selector: {matchLabels: {app: grafana}}
  template:
    metadata: {labels: {app: grafana}}
    spec: {containers: [{name: g, image: grafana, ports: [{containerPort: 3000}]}]}
""",
        "policy.yaml": """\
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: prometheus, namespace: monitoring}
spec:
  endpointSelector:
    matchLabels: {io.cilium.k8s.policy.serviceaccount: prometheus-k8s}
  ingress:
  - fromEndpoints: [{matchLabels: {app: grafana}}]
    toPorts: [{ports: [{port: "9090", protocol: TCP}]}]
""",
    }
    tree = load_files(files)
    doc = map_to_json(compute_map(tree, scope=ClusterScope.COMPLETE))
    into = {
        c["src"]: c["allowed"]
        for c in doc["connections"]
        if c["dst"] == "monitoring/Prometheus/k8s" and not c["src"].startswith("entity:")
    }
    assert into == {"monitoring/Deployment/grafana": {"TCP": "9090"}}


def test_prometheus_agent_pods_as_a_statefulset_or_a_daemonset() -> None:
    # prometheus-operator pkg/prometheus/agent (statefulset.go, daemonset.go, operator.go's
    # makeSelectorLabels), commit 6adcebc5076c34f4f55f8f5f7b1e528929373ac7, Apache-2.0.
    text = """\
apiVersion: monitoring.coreos.com/v1alpha1
kind: PrometheusAgent
metadata: {name: agent, namespace: monitoring}
spec:
  podMetadata: {labels: {team: obs}}
  version: v3.5.0
  serviceAccountName: prometheus-agent
  shards: 2
"""
    first, second = operated(text)
    assert (first.id, second.id) == (
        "monitoring/PrometheusAgent/agent",
        "monitoring/PrometheusAgent/agent-shard-1",
    )
    assert dict(first.labels) == {
        "team": "obs",
        "app.kubernetes.io/version": "3.5.0",
        "app.kubernetes.io/name": "prometheus-agent",
        "app.kubernetes.io/managed-by": "prometheus-operator",
        "app.kubernetes.io/instance": "agent",
        "operator.prometheus.io/name": "agent",
        "operator.prometheus.io/shard": "0",
    }
    assert set(first.ports) == {
        ContainerPort(9090, "TCP", "web"),
        ContainerPort(8080, "TCP", "reloader-web"),
    }
    assert first.service_account == "prometheus-agent"
    daemons = operated(text.replace("  shards: 2\n", "  mode: DaemonSet\n"))
    assert [d.name for d in daemons] == ["agent"]
    assert "operator.prometheus.io/shard" not in dict(daemons[0].labels)


def test_other_groups_kinds_of_the_same_name_are_not_operated_workloads() -> None:
    text = PROMETHEUS.replace("monitoring.coreos.com/v1", "example.com/v1")
    assert operated(text) == ()


def test_invalid_operator_fields_are_errors_with_their_line() -> None:
    with pytest.raises(ManifestError) as err:
        operated(PROMETHEUS + "  shards: many\n")
    assert err.value.line == 8 and "shards" in err.value.message
    with pytest.raises(ManifestError) as err:
        operated(PROMETHEUS.replace("prometheus: overridden", "prometheus: 1"))
    assert err.value.line == 9


def test_kube_prometheus_tree_maps_the_operators_pods_and_their_policies(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # prometheus.yaml has CR LF line breaks.
    assert b"\r\n" in (FIXTURE / "base" / "prometheus.yaml").read_bytes()
    assert main(["map", str(FIXTURE / "base"), "--cluster-scope", "complete"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("Reachability map: 3 workloads, 2 external ranges, 3 policies")
    assert "monitoring/Alertmanager/main  can be reached by\n" in out
    assert "  monitoring/Prometheus/k8s     TCP 8080,9093\n" in out
    assert "  monitoring/Deployment/grafana  TCP 9090\n" in out
    assert err == ""


def test_kube_prometheus_change_to_an_operator_pods_policy_is_seen(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Before operator workloads were modelled, the Alertmanager policy selected nothing
    # and its `port: web` was refused: this widening went unseen.
    assert main(["diff", str(FIXTURE / "base"), str(FIXTURE / "head")]) == 1
    out, _ = capsys.readouterr()
    assert "    + monitoring/Deployment/grafana  TCP 9093\n" in out
    assert "monitoring/NetworkPolicy/alertmanager-main ingress[1] (alertmanager.yaml:35)" in out
