"""The data of the self-contained HTML map (``map --format html``, ``diff --format html``).

The page (``templates/map.html.j2``) draws it with its own SVG code; nothing is fetched
when it is opened. The data is compact so that a 10,000-workload map opens in seconds:

- ``nodes``: every endpoint, with its group (namespace, or the external ranges), pod
  class, and exposure (entry point, crown jewel, hops and path from the nearest entry);
- ``classes``: page class -> its nodes; a map's allowed paths are per class pair
  (``out``: per source class, ``[port set, [first, last, ...]]`` runs of destination
  classes), so a namespace that allows itself is a handful of numbers, not n² pairs;
- ``rules`` and ``peers``: each NetworkPolicy rule in force (policy, rule, file:line) and
  the classes it admits, so the page names the rules of any path without n² causes;
- in a diff, ``changes``: each opened or closed path with its ports and causes (and,
  with flow data, the flows observed on it; ``traffic``: the observation window).

``counts`` holds what the JSON reports have (endpoints, connections), which the page
checks against what it decodes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from analysis.diff import PathChange
from analysis.exposure import Exposure
from analysis.exposure_report import ExposureChange
from analysis.flows import format_time
from analysis.manifests import exact_rule_source
from analysis.matcher import CompiledRule
from analysis.model import Direction
from analysis.reachability import Endpoint, ReachabilityMap
from analysis.trafficdiff import DiffTraffic

EXTERNAL_GROUP = "external ranges"
EXACT_LINES_UP_TO = 2_000  # policies whose rule lines are read exactly (else their document's)
_RUNS = re.compile("1+")


def _group(e: Endpoint) -> str:
    return EXTERNAL_GROUP if e.is_external else e.namespace


def runs(indexes: Sequence[int]) -> list[int]:
    """Ascending indexes as ``[first, last, first, last, ...]`` runs."""
    out: list[int] = []
    for i in indexes:
        if out and out[-1] == i - 1:
            out[-1] = i
        else:
            out += [i, i]
    return out


class _Interned:
    def __init__(self) -> None:
        self.items: list[str] = []
        self.index: dict[str, int] = {}

    def __call__(self, text: str) -> int:
        found = self.index.get(text)
        if found is None:
            found = self.index[text] = len(self.items)
            self.items.append(text)
        return found


def _nodes(
    endpoints: Sequence[Endpoint], exposure: Exposure | None, node_class: dict[str, int]
) -> tuple[list[str], list[dict[str, Any]]]:
    groups = sorted({_group(e) for e in endpoints if not e.is_external})
    if any(e.is_external for e in endpoints):
        groups.append(EXTERNAL_GROUP)
    group_of = {g: n for n, g in enumerate(groups)}
    position = {e.id: n for n, e in enumerate(endpoints)}
    found = exposure.by_id() if exposure is not None else {}
    entries = {e.endpoint.id: e.why for e in exposure.entry_points} if exposure else {}
    nodes: list[dict[str, Any]] = []
    for e in endpoints:
        node: dict[str, Any] = {
            "id": e.id,
            "kind": e.kind,
            "g": group_of[_group(e)],
            "c": node_class.get(e.id, -1),
        }
        if e.id in entries:
            node["entry"] = 1
            node["why"] = list(entries[e.id])
        w = found.get(e.id)
        if w is not None:
            node["hops"] = w.entry_hops
            node["blast"] = w.blast_radius
            if w.crown_jewel:
                node["jewel"] = 1
            if w.entry_path:
                node["path"] = [position[w.entry_path[0].src.id]] + [
                    position[h.dst.id] for h in w.entry_path
                ]
        nodes.append(node)
    return groups, nodes


def map_data(rmap: ReachabilityMap, exposure: Exposure | None, title: str) -> dict[str, Any]:
    """The page data of one tree's map."""
    matcher, members = rmap.matcher, rmap.members
    endpoints = rmap.endpoints
    live = [i for i in range(matcher.size) if members[i]]
    page_class = {m: n for n, m in enumerate(live)}
    node_class = {e.id: page_class[rmap.index_of[e.id]] for e in endpoints}
    groups, nodes = _nodes(endpoints, exposure, node_class)
    position = {e.id: n for n, e in enumerate(endpoints)}
    classes = [[position[e.id] for e in members[m]] for m in live]
    ports = _Interned()
    by_src: dict[int, dict[int, list[int]]] = {}
    connections = 0
    for (src, dst), conn in rmap.class_connections.items():
        by_src.setdefault(page_class[src], {}).setdefault(ports(str(conn)), []).append(
            page_class[dst]
        )
        connections += len(members[src]) * len(members[dst])
    out: list[list[Any]] = [[] for _ in live]
    for src, by_port in by_src.items():
        out[src] = [[p, runs(sorted(dsts))] for p, dsts in sorted(by_port.items())]
    rules, peers, ingress, egress = _rules(rmap, live, ports)
    return {
        "kind": "map",
        "title": title,
        "groups": groups,
        "ports": ports.items,
        "nodes": nodes,
        "classes": classes,
        "out": out,
        "rules": rules,
        "peers": peers,
        "ingress": ingress,
        "egress": egress,
        "counts": {"endpoints": len(endpoints), "connections": connections},
    }


def _rules(
    rmap: ReachabilityMap, live: Sequence[int], ports: _Interned
) -> tuple[list[list[Any]], list[list[int]], list[Any], list[Any]]:
    """Each class's NetworkPolicy rules per direction (None: not isolated; a string: an
    admin tier decides, see ``reachdiff explain``), as indexes into ``rules``, and each
    rule's admitted classes (``peers``, as runs).

    A rule is ``[name, file:line, peers, ports]``: the port set it opens (an index into
    ``ports``), or, when it names ports, null and a fifth item ``[[ports, runs of
    destination classes], ...]`` (a named port resolves on the destination: the owner for
    ingress, the peer for egress), so that the page cites a rule for a path only on the
    ports it opens there."""
    matcher, tree = rmap.matcher, rmap.tree
    page_class = {m: n for n, m in enumerate(live)}
    exact = len(tree.policies) <= EXACT_LINES_UP_TO
    rules: list[list[Any]] = []
    rule_index: dict[int, int] = {}
    peer_index: dict[int, int] = {}
    peers: list[list[int]] = []
    tables: dict[Direction, list[Any]] = {Direction.INGRESS: [], Direction.EGRESS: []}
    named: list[tuple[int, CompiledRule, Direction]] = []
    for m in live:
        for direction, table in tables.items():
            if matcher.tiered and matcher.has_admin(direction, m):
                table.append("an admin-tier policy decides first")
                continue
            compiled = matcher.rules(direction, m)
            if compiled is None:
                table.append(None)
                continue
            listed = []
            for rule in compiled:
                key = id(rule)
                if key not in rule_index:
                    source = (
                        exact_rule_source(tree, rule.policy, rule.rule)
                        if exact
                        else rule.rule.source
                    )
                    if rule.peers not in peer_index:
                        peer_index[rule.peers] = len(peers)
                        bits = matcher.peer_sets[rule.peers]
                        admitted = [page_class[i] for i in _bit_runs(bits) if i in page_class]
                        peers.append(runs(admitted))
                    rule_index[key] = len(rules)
                    fixed = rule.fixed_ports
                    rules.append(
                        [
                            f"{rule.policy.id} {rule.rule.label}",
                            str(source),
                            peer_index[rule.peers],
                            ports(str(fixed)) if fixed is not None else None,
                        ]
                    )
                    if fixed is None:
                        named.append((rule_index[key], rule, direction))
                listed.append(rule_index[key])
            table.append(listed)
    owners: dict[int, list[int]] = {}  # rule -> the classes it is in force for
    for table in tables.values():
        for m, listed in zip(live, table, strict=True):
            if isinstance(listed, list):
                for r in listed:
                    owners.setdefault(r, []).append(m)
    for r, rule, direction in named:
        if direction is Direction.INGRESS:
            destinations = owners.get(r, [])
        else:
            destinations = [i for i in _bit_runs(matcher.peer_sets[rule.peers]) if i in page_class]
        by_ports: dict[int, list[int]] = {}
        for d in destinations:
            at = matcher.ports_at(rule, d)
            if at:
                by_ports.setdefault(ports(str(at)), []).append(page_class[d])
        rules[r].append([[p, runs(sorted(set(ds)))] for p, ds in sorted(by_ports.items())])
    return rules, peers, tables[Direction.INGRESS], tables[Direction.EGRESS]


def _bit_runs(bits: int) -> list[int]:
    text = bin(bits)[:1:-1]
    out: list[int] = []
    for run in _RUNS.finditer(text):
        out.extend(range(run.start(), run.end()))
    return out


def diff_data(
    changes: Sequence[tuple[str, PathChange]],
    exposure: Sequence[ExposureChange],
    title: str,
    traffic: DiffTraffic | None = None,
) -> dict[str, Any]:
    """The page data of a diff: the endpoints of the changed paths (and of the exposure
    paths of ``exposure``), each change (``opened`` or ``closed``) with its delta and
    causes; ids as the diff reports them. With ``traffic`` (``diff --flows``), each
    change also carries ``[flows, forwarded, last seen]`` on its ports (0: none seen)."""
    found: dict[str, Endpoint] = {}
    for _, c in changes:
        found.setdefault(c.src.id, c.src)
        found.setdefault(c.dst.id, c.dst)
    for x in exposure:
        for hop in x.path:
            for e in (x.qualify(hop.src), x.qualify(hop.dst)):
                found.setdefault(e.id, e)
        found.setdefault(x.id, x.qualify(x.endpoint))
    endpoints = sorted(found.values(), key=lambda e: (e.is_external, e.namespace, e.id))
    groups, nodes = _nodes(endpoints, None, {})
    position = {e.id: n for n, e in enumerate(endpoints)}
    for x in exposure:
        node = nodes[position[x.id]]
        node.update(hops=x.head_hops, blast=x.head_blast, before=[x.base_hops, x.base_blast])
        if x.crown_jewel:
            node["jewel"] = 1
        if x.path:
            node["path"] = [position[x.qualify(x.path[0].src).id]] + [
                position[x.qualify(h.dst).id] for h in x.path
            ]
    ports, causes = _Interned(), _Interned()
    rows = []
    for status, c in changes:
        cited = [
            causes(
                " ".join(
                    filter(
                        None, (f"{x.file}:{x.line}", x.policy, x.rule, f"({x.tree}: {x.reason})")
                    )
                )
            )
            for x in c.because
        ]
        rows.append(
            [
                position[c.src.id],
                position[c.dst.id],
                ports(str(c.delta)),
                1 if status == "opened" else 2,
                cited,
            ]
        )
    data: dict[str, Any] = {
        "kind": "diff",
        "title": title,
        "groups": groups,
        "ports": ports.items,
        "nodes": nodes,
        "changes": rows,
        "causes": causes.items,
        "counts": {
            "endpoints": len(endpoints),
            "opened": sum(1 for s, _ in changes if s == "opened"),
            "closed": sum(1 for s, _ in changes if s == "closed"),
        },
    }
    if traffic is not None:
        _with_traffic(data, changes, traffic)
    return data


def _with_traffic(
    data: dict[str, Any], changes: Sequence[tuple[str, PathChange]], traffic: DiffTraffic
) -> None:
    """Observed flows on each change row, and the window they were observed in."""
    seen = {(p.kind, p.change.src.id, p.change.dst.id, p.change.delta): p for p in traffic.paths}
    for row, (status, c) in zip(data["changes"], changes, strict=True):
        path = seen.get((status, c.src.id, c.dst.id, c.delta))
        if path is None or not path.flows:
            row.append(0)
            continue
        last = format_time(path.last_seen) if path.last_seen else ""
        row.append([sum(f.stat.count for f in path.flows), path.forwarded, last])
    summary = traffic.summary
    data["traffic"] = {
        "records": summary.records,
        "window": summary.window(),
        "broken_flows": traffic.broken_flows,
        "breaks": len(traffic.breaks),
        "unmapped": sum(u.stat.count for u in traffic.mapping.unmapped),
    }


def merge_maps(parts: Sequence[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """Several environments' ``map_data`` as one page: ids and groups qualified by the
    environment (``overlays/prod:shop/Deployment/web``), indexes shifted."""
    out: dict[str, Any] = {
        "kind": "map",
        "title": "",
        "groups": [],
        "ports": [],
        "nodes": [],
        "classes": [],
        "out": [],
        "rules": [],
        "peers": [],
        "ingress": [],
        "egress": [],
        "counts": {"endpoints": 0, "connections": 0},
    }
    ports = _Interned()
    for env, d in parts:
        g0, n0, c0 = len(out["groups"]), len(out["nodes"]), len(out["classes"])
        r0, p0 = len(out["rules"]), len(out["peers"])
        remap = [ports(p) for p in d["ports"]]
        out["title"] = d["title"]
        out["groups"] += [f"{env or '.'}:{g}" for g in d["groups"]]
        for node in d["nodes"]:
            node = dict(node, id=f"{env or '.'}:{node['id']}", g=node["g"] + g0, c=node["c"] + c0)
            if "path" in node:
                node["path"] = [i + n0 for i in node["path"]]
            out["nodes"].append(node)
        out["classes"] += [[i + n0 for i in c] for c in d["classes"]]
        out["out"] += [[[remap[p], [i + c0 for i in r]] for p, r in row] for row in d["out"]]
        for rule in d["rules"]:
            name, where, peers, fixed = rule[:4]
            merged = [name, where, peers + p0, remap[fixed] if fixed is not None else None]
            if len(rule) > 4:  # named ports: [ports, runs of destination classes] each
                merged.append([[remap[q], [i + c0 for i in r]] for q, r in rule[4]])
            out["rules"].append(merged)
        out["peers"] += [[i + c0 for i in r] for r in d["peers"]]
        for key in ("ingress", "egress"):
            out[key] += [[i + r0 for i in x] if isinstance(x, list) else x for x in d[key]]
        for key in ("endpoints", "connections"):
            out["counts"][key] += d["counts"][key]
    out["ports"] = ports.items
    return out


_SLOT = re.compile(r"\{\{ (title|data) \}\}")


def render_page(template: str, data: dict[str, Any]) -> str:
    """The page: ``template`` with the data in place. Every ``<`` of the data is written
    ``\\u003c``, so no string in it (a file name, a label) can end the script element."""
    blob = json.dumps(data, separators=(",", ":")).replace("<", "\\u003c")
    title = str(data["title"]).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    slots = {"title": title, "data": blob}
    return _SLOT.sub(lambda m: slots[m.group(1)], template)
