"""The JSON contract of ``reachdiff map`` and ``reachdiff diff`` (docs/engine-api.md).

Other tools consume these shapes: fields are only ever added, never renamed or removed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from analysis.diff import ChangeSet, PathChange
from analysis.explain import Cause
from analysis.reachability import Endpoint, ReachabilityMap


def endpoint_json(e: Endpoint) -> dict[str, Any]:
    if e.is_external:
        out: dict[str, Any] = {"id": e.id, "kind": "External", "cidrs": list(e.cidrs)}
    else:
        out = {"id": e.id, "kind": e.kind, "namespace": e.namespace, "name": e.name}
        if e.is_outside or e.is_pseudo:  # representatives, Cilium entities and DNS names
            out["description"] = e.description
    if e.environment is not None:  # an added field: only where ids carry an environment
        out["environment"] = e.environment
    return out


def map_to_json(rmap: ReachabilityMap, environment: str | None = None) -> dict[str, Any]:
    """The map's endpoints and connections; with ``environment``, ids qualified by it."""
    endpoints = qualified(rmap.endpoints, environment)
    ids = {e.id: q.id for e, q in zip(rmap.endpoints, endpoints, strict=True)}
    return {
        "endpoints": [endpoint_json(e) for e in endpoints],
        "connections": [
            {"src": ids[s.id], "dst": ids[d.id], "allowed": conn.to_json()}
            for s, d, conn in rmap.connections()
        ],
    }


def qualified(endpoints: Iterable[Endpoint], environment: str | None) -> list[Endpoint]:
    if environment is None:
        return list(endpoints)
    return [e.in_environment(environment) for e in endpoints]


def cause_json(c: Cause) -> dict[str, Any]:
    return {
        "policy": c.policy,
        "file": c.file,
        "line": c.line,
        "direction": c.direction,
        "rule": c.rule,
        "tree": c.tree,
        "reason": c.reason,
        # README's contract: every cause carries its tier; admin rules their action and name.
        "tier": c.tier,
        "action": c.action,
        "rule_name": c.rule_name,
        # A Cilium rule with L7 rules: "L7-filtered: …" (allowed at L4, requests filtered).
        "l7": c.l7,
        # A Cilium rule requiring mutual authentication: allowed once its handshake succeeds.
        "authentication": c.authentication,
    }


def change_json(c: PathChange) -> dict[str, Any]:
    return {
        "src": c.src.id,
        "dst": c.dst.id,
        "allowed": c.delta.to_json(),
        "because": [cause_json(x) for x in c.because],
        "base": c.base.to_json(),
        "head": c.head.to_json(),
        "src_new": c.src_new,
        "dst_new": c.dst_new,
        "src_removed": c.src_removed,
        "dst_removed": c.dst_removed,
    }


def diff_to_json(diff: ChangeSet) -> dict[str, Any]:
    return {
        "widening": diff.widening,
        "opened": [change_json(c) for c in diff.opened],
        "closed": [change_json(c) for c in diff.closed],
        "added_endpoints": [endpoint_json(e) for e in diff.added_endpoints],
        "removed_endpoints": [endpoint_json(e) for e in diff.removed_endpoints],
    }


def json_text(doc: Any) -> str:
    """``doc`` as JSON text with records one per line: about as easy to read and to diff
    as fully indented JSON, but written by the C encoder (a big diff has thousands)."""
    return _json_text(doc, "") + "\n"


_RECORD_LINE = 4000  # longer records (a whole environment's map) are spelled out


def _json_text(value: Any, indent: str) -> str:
    inner = indent + "  "
    if isinstance(value, dict) and value:
        items = [f"{inner}{json.dumps(k)}: {_json_text(v, inner)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}"
    if isinstance(value, list) and value and isinstance(value[0], dict):
        lines = []
        for item in value:
            line = json.dumps(item)
            lines.append(inner + (line if len(line) <= _RECORD_LINE else _json_text(item, inner)))
        return "[\n" + ",\n".join(lines) + "\n" + indent + "]"
    return json.dumps(value)
