"""Workloads: the pod template of each kind that runs pods, reduced to what policies see."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from analysis.model import ContainerPort, Source, Workload, labels_of
from analysis.ports import PROTOCOLS
from analysis.validation import Context, shown, string_map, type_name
from analysis.yamldoc import YMap

# kind -> path from the object to its pod template ("" = the object is the pod itself)
TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": (),
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "ReplicationController": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}
WORKLOAD_KINDS = frozenset(TEMPLATE_PATHS)


def parse_workload(ctx: Context, obj: YMap) -> Workload | None:
    kind = obj["kind"]
    if not isinstance(obj.get("apiVersion"), str):
        ctx.fail("`apiVersion` must be a string")
    meta = ctx.mapping(obj, "metadata")
    name = ctx.name(meta, "metadata.name")
    namespace = ctx.namespace(meta)
    template: YMap = obj
    for key in TEMPLATE_PATHS[kind]:
        template = ctx.at(template).mapping(template, key)
    if kind == "Pod":
        labels = string_map(ctx.at(meta), meta.get("labels"), "metadata.labels")
    else:
        tmeta = ctx.at(template).mapping(template, "metadata", required=False)
        labels = string_map(ctx.at(tmeta), tmeta.get("labels"), "template.metadata.labels")
    spec = ctx.at(template).mapping(template, "spec", required=False)
    host_network = spec.get("hostNetwork", False)
    if not isinstance(host_network, bool):
        ctx.at(spec).fail(f"`hostNetwork` must be true or false, not {type_name(host_network)}")
    return Workload(
        kind=kind,
        namespace=namespace,
        name=name,
        labels=labels_of(labels),
        ports=container_ports(ctx, spec),
        host_network=host_network,
        source=Source(ctx.file, ctx.line),
        service_account=service_account(ctx, spec),
    )


def service_account(ctx: Context, spec: YMap) -> str:
    """serviceAccountName, else its deprecated alias serviceAccount, else "default"."""
    for field in ("serviceAccountName", "serviceAccount"):
        value = spec.get(field)
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            ctx.at(spec).fail(f"`{field}` must be a string, not {type_name(value)}")
        return value
    return "default"


def container_ports(ctx: Context, spec: YMap) -> tuple[ContainerPort, ...]:
    """The ports a pod spec serves: its containers' and its native sidecars'."""
    ports: set[ContainerPort] = set()
    containers: list[Any] = list(ctx.at(spec).sequence(spec, "containers") or [])
    # Native sidecars (init containers that keep running) serve traffic like containers.
    for init in ctx.at(spec).sequence(spec, "initContainers") or []:
        if isinstance(init, dict) and init.get("restartPolicy") == "Always":
            containers.append(init)
    for container in containers:
        if not isinstance(container, dict):
            ctx.at(spec).fail(f"a container must be a mapping, not {type_name(container)}")
        cctx = ctx.at(container)
        for entry in cctx.sequence(container, "ports") or []:
            ports.add(container_port(cctx.at(entry), entry, "a container port"))
    return tuple(sorted(ports, key=lambda p: (p.protocol, p.port, p.name or "")))


def container_port(
    ctx: Context, entry: Any, where: str, number_fields: tuple[str, ...] = ("containerPort",)
) -> ContainerPort:
    """One port of a pod: the first of ``number_fields`` present (1..65535), ``protocol``
    (TCP unless said) and an optional ``name``. ``where`` names the entry in messages.
    Pod templates and the settings' custom workload kinds read ports alike."""
    if not isinstance(entry, Mapping):
        ctx.fail(f"{where} must be a mapping, not {type_name(entry)}")
    number = next((entry[f] for f in number_fields if f in entry), None)
    if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= 65535:
        ctx.fail(f"{where}: `{number_fields[0]}` must be a number in 1..65535, not {shown(number)}")
    protocol = entry.get("protocol", "TCP")
    if protocol not in PROTOCOLS:
        ctx.fail(f"{where}: protocol must be one of TCP, UDP, SCTP, not {shown(protocol)}")
    name = entry.get("name")
    if name is not None and not isinstance(name, str):
        ctx.fail(f"{where}: a port `name` must be a string, not {type_name(name)}")
    return ContainerPort(port=number, protocol=protocol, name=name or None)
