"""Workloads an operator creates from its own custom resources.

A ``Prometheus`` object is not a pod, but the Prometheus Operator turns it into a
StatefulSet (a ``PrometheusAgent`` into one, or a DaemonSet) whose pods carry labels and
ports the operator chooses; policies select those pods (kube-prometheus ships such
policies). Without these pods in the model, such a policy
selects nothing and a change to it is invisible.

Each kind here is modelled from its operator's source (prometheus-operator,
pkg/prometheus/server/statefulset.go, pkg/prometheus/agent/statefulset.go and
daemonset.go, pkg/prometheus/common.go,
pkg/alertmanager/statefulset.go, pkg/thanos/statefulset.go,
pkg/operator/config_reloader.go; Apache-2.0): the labels its pods get, in the order the
operator merges them (``spec.podMetadata.labels`` first, the operator's own labels over
them), the ports of the containers it adds, plus those of the containers
``spec.containers`` adds or patches, and ``spec.serviceAccountName``, which the operator
copies into the pod spec as it is (Cilium and Calico policies select by it). Only facts
that the object itself decides are used; what the operator's deployment decides
(``app.kubernetes.io/version`` without ``spec.version``) is left out, see
docs/semantics.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from analysis.model import ContainerPort, Source, Workload, labels_of
from analysis.validation import Context, string_map, type_name
from analysis.workloads import container_ports
from analysis.yamldoc import YMap

GROUP = "monitoring.coreos.com"
_MANAGED_BY = {"app.kubernetes.io/managed-by": "prometheus-operator"}
_RELOADER = ContainerPort(8080, "TCP", "reloader-web")  # config-reloader, unless listenLocal


@dataclass(frozen=True, slots=True)
class _Spec:
    """What the operator derives from one object of its kind."""

    selector_labels: Callable[[str], dict[str, str]]  # name -> the operator's labels
    ports: Callable[[Context, YMap], list[ContainerPort]]  # the operator's own containers
    # How the operator sets app.kubernetes.io/version from spec.version: "over" the
    # podMetadata labels, "under" them (they may set their own), or not at all ("").
    version_label: str


def _listen_local(ctx: Context, spec: YMap) -> bool:
    value = spec.get("listenLocal", False)
    if not isinstance(value, bool):
        ctx.at(spec).fail(f"`listenLocal` must be true or false, not {type_name(value)}")
    return value


def _port_name(ctx: Context, spec: YMap) -> str:
    value = spec.get("portName") or "web"
    if not isinstance(value, str):
        ctx.at(spec).fail(f"`portName` must be a string, not {type_name(value)}")
    return value


def _prometheus_ports(ctx: Context, spec: YMap) -> list[ContainerPort]:
    ports = []
    if not _listen_local(ctx, spec):
        ports += [ContainerPort(9090, "TCP", _port_name(ctx, spec)), _RELOADER]
    elif spec.get("reloadStrategy") == "ProcessSignal":  # the reloader then serves anyway
        ports.append(_RELOADER)
    if spec.get("thanos") is not None:  # the Thanos sidecar
        ports += [ContainerPort(10902, "TCP", "http"), ContainerPort(10901, "TCP", "grpc")]
    return ports


def _alertmanager_ports(ctx: Context, spec: YMap) -> list[ContainerPort]:
    ports = [ContainerPort(9094, "TCP", "mesh-tcp"), ContainerPort(9094, "UDP", "mesh-udp")]
    if not _listen_local(ctx, spec):
        ports += [ContainerPort(9093, "TCP", _port_name(ctx, spec)), _RELOADER]
    return ports


def _thanos_ruler_ports(ctx: Context, spec: YMap) -> list[ContainerPort]:
    ports = [ContainerPort(10901, "TCP", "grpc")]
    if not _listen_local(ctx, spec):
        ports += [ContainerPort(10902, "TCP", _port_name(ctx, spec)), _RELOADER]
    return ports


KINDS: dict[str, _Spec] = {
    "Prometheus": _Spec(
        lambda name: {
            "app.kubernetes.io/name": "prometheus",
            **_MANAGED_BY,
            "app.kubernetes.io/instance": name,
            "prometheus": name,
            "operator.prometheus.io/name": name,
        },
        _prometheus_ports,
        version_label="under",
    ),
    "Alertmanager": _Spec(
        lambda name: {
            "app.kubernetes.io/name": "alertmanager",
            **_MANAGED_BY,
            "app.kubernetes.io/instance": name,
            "alertmanager": name,
        },
        _alertmanager_ports,
        version_label="over",
    ),
    # pkg/prometheus/agent: the same containers as Prometheus (no Thanos sidecar in the
    # CRD), the name "prometheus-agent" and no `prometheus: <name>` label.
    "PrometheusAgent": _Spec(
        lambda name: {
            "app.kubernetes.io/name": "prometheus-agent",
            **_MANAGED_BY,
            "app.kubernetes.io/instance": name,
            "operator.prometheus.io/name": name,
        },
        _prometheus_ports,
        version_label="under",
    ),
    "ThanosRuler": _Spec(
        lambda name: {
            "app.kubernetes.io/name": "thanos-ruler",
            **_MANAGED_BY,
            "app.kubernetes.io/instance": name,
            "thanos-ruler": name,
        },
        _thanos_ruler_ports,
        version_label="",
    ),
}
_MAX_SHARDS = 1000


def is_operator_kind(kind: str, api_version: object) -> bool:
    return kind in KINDS and isinstance(api_version, str) and api_version.startswith(GROUP + "/")


def parse_operator_workloads(ctx: Context, obj: YMap) -> tuple[Workload, ...]:
    """The pods the operator makes of ``obj``: one workload, or one per Prometheus shard
    (``<name>``, ``<name>-shard-1``, ...: the shards' pods differ by a label)."""
    kind = obj["kind"]
    known = KINDS[kind]
    meta = ctx.mapping(obj, "metadata")
    name = ctx.name(meta, "metadata.name")
    namespace = ctx.namespace(meta)
    spec = ctx.mapping(obj, "spec", required=False)
    sctx = ctx.at(spec)
    pod_meta = sctx.mapping(spec, "podMetadata", required=False)
    labels = string_map(ctx.at(pod_meta), pod_meta.get("labels"), "spec.podMetadata.labels")
    version = spec.get("version")
    version = version if isinstance(version, str) else ""
    if known.version_label == "over":
        # Alertmanager: strings.TrimLeft(version, "v"); without spec.version the operator
        # writes its own default version here, which the tree cannot know: left out.
        labels.pop("app.kubernetes.io/version", None)
        if version:
            labels["app.kubernetes.io/version"] = version.lstrip("v")
    elif known.version_label == "under" and version:
        labels.setdefault("app.kubernetes.io/version", version.removeprefix("v"))
    labels.update(known.selector_labels(name))
    host_network = spec.get("hostNetwork", False)
    if not isinstance(host_network, bool):
        sctx.fail(f"`hostNetwork` must be true or false, not {type_name(host_network)}")
    account = spec.get("serviceAccountName")
    if account is not None and not isinstance(account, str):
        sctx.fail(f"`serviceAccountName` must be a string, not {type_name(account)}")
    ports = set(known.ports(ctx, spec)) | set(container_ports(ctx, spec))
    ordered = tuple(sorted(ports, key=lambda p: (p.protocol, p.port, p.name or "")))
    # A PrometheusAgent in DaemonSet mode runs one pod per node, without shards.
    sharded = kind == "Prometheus" or (
        kind == "PrometheusAgent" and spec.get("mode", "StatefulSet") != "DaemonSet"
    )
    shards = _shards(sctx, spec) if sharded else 1
    out = []
    for shard in range(shards):
        shard_labels = dict(labels)
        if sharded:
            shard_labels["operator.prometheus.io/shard"] = str(shard)
        out.append(
            Workload(
                kind=kind,
                namespace=namespace,
                name=name if shard == 0 else f"{name}-shard-{shard}",
                labels=labels_of(shard_labels),
                ports=ordered,
                host_network=host_network,
                source=Source(ctx.file, ctx.line),
                # Empty or unset: the API server defaults the pod's account to "default".
                service_account=account or "default",
            )
        )
    return tuple(out)


def _shards(ctx: Context, spec: YMap) -> int:
    value = spec.get("shards", 1)
    if value is None:
        return 1
    if isinstance(value, bool) or not isinstance(value, int):
        ctx.fail(f"`shards` must be a whole number, not {type_name(value)}")
    if value > _MAX_SHARDS:
        ctx.fail(f"`shards` above {_MAX_SHARDS} is not analysed")
    return max(1, value)  # the operator runs at least one shard
