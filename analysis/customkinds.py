"""Custom kinds whose objects run pods, as the repository's settings describe them.

An operator turns its own custom resources into pods that policies select; reachdiff
models the well-known ones itself (``analysis.operators``) and the setting
``workload_kinds`` (docs/bot.md) describes any other: the labels its pods get (fixed, or
copied from a field of the object), their namespace and their ports. Values may name a
field of the object by its path: ``{metadata.name}``, ``{spec.cluster}``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from analysis.model import ContainerPort, Source, Workload, group_of, labels_of
from analysis.validation import Context, type_name
from analysis.workloads import container_port
from analysis.yamldoc import YMap

_FIELD = re.compile(r"\{([A-Za-z0-9_.-]+)\}")
FIELD_PATH = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*")


@dataclass(frozen=True, slots=True)
class WorkloadKind:
    """How one custom kind's objects become a workload (one pod template)."""

    kind: str
    group: str = ""  # "" matches the kind in any API group
    labels: tuple[tuple[str, str], ...] = ()  # values may hold {field.path}
    labels_from: tuple[str, ...] = ()  # field paths of label maps, copied under ``labels``
    namespace: str = ""  # a value that may hold {field.path}; "": the object's namespace
    ports: tuple[ContainerPort, ...] = ()
    ports_from: tuple[str, ...] = ()  # field paths of lists of container ports

    def matches(self, kind: str, api_version: str) -> bool:
        return kind == self.kind and (not self.group or group_of(api_version) == self.group)


WorkloadKinds = tuple[WorkloadKind, ...]


def find(kinds: WorkloadKinds, kind: str, api_version: object) -> WorkloadKind | None:
    if not kinds or not isinstance(api_version, str):
        return None
    for known in kinds:
        if known.matches(kind, api_version):
            return known
    return None


def parse_custom_workload(known: WorkloadKind, ctx: Context, obj: YMap) -> Workload:
    meta = ctx.mapping(obj, "metadata")
    name = ctx.name(meta, "metadata.name")
    namespace = ctx.namespace(meta)
    if known.namespace:
        namespace = _expand(known.namespace, obj, ctx, "namespace")
    labels: dict[str, str] = {}
    for path in known.labels_from:
        found = _field(obj, path)
        if found is None:
            continue  # an optional field, absent: no labels from it
        if not isinstance(found, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in found.items()
        ):
            ctx.fail(f"`{path}` must map label keys to string values (workload_kinds)")
        labels.update(found)
    for key, value in known.labels:
        labels[key] = _expand(value, obj, ctx, f"labels.{key}")
    ports = set(known.ports)
    for path in known.ports_from:
        found = _field(obj, path)
        if found is None:
            continue
        if not isinstance(found, list):
            ctx.fail(f"`{path}` must be a list of ports (workload_kinds), not {type_name(found)}")
        for entry in found:
            ports.add(
                container_port(ctx, entry, f"`{path}` (workload_kinds)", ("containerPort", "port"))
            )
    return Workload(
        kind=known.kind,
        namespace=namespace,
        name=name,
        labels=labels_of(labels),
        ports=tuple(sorted(ports, key=lambda p: (p.protocol, p.port, p.name or ""))),
        host_network=False,
        source=Source(ctx.file, ctx.line),
    )


def _field(obj: Any, path: str) -> Any:
    for key in path.split("."):
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def _expand(template: str, obj: YMap, ctx: Context, what: str) -> str:
    def value(match: re.Match[str]) -> str:
        found = _field(obj, match.group(1))
        if isinstance(found, bool) or not isinstance(found, str | int):
            ctx.fail(
                f"workload_kinds {what}: `{match.group(1)}` must be a string or a number, "
                f"not {type_name(found)}"
            )
        return str(found)

    return _FIELD.sub(value, template)
