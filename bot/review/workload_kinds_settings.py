"""The ``workload_kinds`` section of ``.github/reachdiff.yml``: custom kinds whose objects
run pods (``analysis.customkinds``; docs/bot.md), each with the labels, namespace and ports
its pods take, fixed or read from ``{field.path}`` values of the object.

Read strictly, like every section: an unknown key, a kind given twice, a port out of range
or a field path that is not one is an error naming the key and line (``NodeError``, which
``bot.review.settings`` reports as a ``SettingsError``).
"""

from __future__ import annotations

import yaml

from analysis.customkinds import FIELD_PATH, WorkloadKind
from analysis.model import ContainerPort
from analysis.unmodelled import KIND_REFERENCE
from bot.review.yamlnodes import NodeError, NodeReader, line, shown

SECTION = "workload_kinds"
_KEYS = ("kind", "labels", "labels_from", "namespace", "ports", "ports_from")
MAX_PATHS = 200  # field paths in one labels_from / ports_from


def read_workload_kinds(
    reader: NodeReader, node: yaml.Node, max_items: int
) -> tuple[WorkloadKind, ...]:
    """The section's kinds, each at most once; ``max_items`` bounds the list and each of
    its lists of field paths."""
    if not isinstance(node, yaml.SequenceNode):
        raise NodeError("workload_kinds", "must be a list of kinds", line(node))
    if len(node.value) > max_items:
        raise NodeError("workload_kinds", f"has more than {max_items} entries", line(node))
    out: list[WorkloadKind] = []
    for item in node.value:
        fields = reader.mapping(item, "workload_kinds[]", _KEYS)
        if "kind" not in fields:
            raise NodeError("workload_kinds", "each entry needs `kind`", line(item))
        reference = reader.scalar(fields["kind"])
        if not isinstance(reference, str) or not KIND_REFERENCE.fullmatch(reference):
            raise NodeError(
                "workload_kinds.kind",
                f"{shown(reference)} is not a kind (Kafka, or Kafka.kafka.strimzi.io)",
                line(fields["kind"]),
            )
        kind, _, group = reference.partition(".")
        if any(k.kind == kind and k.group == group for k in out):
            raise NodeError("workload_kinds", f"{reference} appears twice", line(item))
        out.append(
            WorkloadKind(
                kind=kind,
                group=group,
                labels=_labels(reader, fields.get("labels")),
                labels_from=_paths(reader, fields.get("labels_from"), "labels_from"),
                namespace=_template(reader, fields.get("namespace"), "namespace"),
                ports=_ports(reader, fields.get("ports")),
                ports_from=_paths(reader, fields.get("ports_from"), "ports_from"),
            )
        )
    return tuple(out)


def _labels(reader: NodeReader, node: yaml.Node | None) -> tuple[tuple[str, str], ...]:
    if node is None:
        return ()
    if not isinstance(node, yaml.MappingNode):
        raise NodeError("workload_kinds.labels", "must map label keys to values", line(node))
    out = {}
    for key_node, value_node in node.value:
        key, value = reader.scalar(key_node), reader.scalar(value_node)
        if not isinstance(key, str) or not isinstance(value, str):
            raise NodeError(
                "workload_kinds.labels",
                "keys and values must be strings (quote them)",
                line(key_node),
            )
        out[key] = value
    return tuple(sorted(out.items()))


def _paths(reader: NodeReader, node: yaml.Node | None, key: str) -> tuple[str, ...]:
    if node is None:
        return ()
    return tuple(
        reader.strings(node, f"workload_kinds.{key}", _check_field_path, max_items=MAX_PATHS)
    )


def _template(reader: NodeReader, node: yaml.Node | None, key: str) -> str:
    if node is None:
        return ""
    value = reader.scalar(node)
    if not isinstance(value, str):
        raise NodeError(f"workload_kinds.{key}", "must be a string", line(node))
    return value


def _ports(reader: NodeReader, node: yaml.Node | None) -> tuple[ContainerPort, ...]:
    if node is None:
        return ()
    if not isinstance(node, yaml.SequenceNode):
        raise NodeError("workload_kinds.ports", "must be a list of ports", line(node))
    out = []
    for item in node.value:
        fields = reader.mapping(item, "workload_kinds.ports[]", ("port", "protocol", "name"))
        port = reader.scalar(fields["port"]) if "port" in fields else None
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise NodeError(
                "workload_kinds.ports", "each needs `port`, a number in 1..65535", line(item)
            )
        protocol = reader.scalar(fields["protocol"]) if "protocol" in fields else "TCP"
        if protocol not in ("TCP", "UDP", "SCTP"):
            raise NodeError(
                "workload_kinds.ports", "`protocol` must be TCP, UDP or SCTP", line(item)
            )
        name = reader.scalar(fields["name"]) if "name" in fields else None
        if name is not None and not isinstance(name, str):
            raise NodeError("workload_kinds.ports", "`name` must be a string", line(item))
        out.append(ContainerPort(port, str(protocol), name or None))
    return tuple(out)


def _check_field_path(value: str) -> str:
    if not FIELD_PATH.fullmatch(value):
        raise ValueError(f"{shown(value)} is not a field path like spec.podMetadata.labels")
    return value
