"""Human-readable renderings of maps and diffs for the terminal: text, CSV, Markdown, DOT.

Long outputs are grouped by destination: a reviewer asks "who can reach the database?",
not "whom can each pod reach?".
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from analysis.diff import ChangeSet, PathChange, endpoint_sort_key
from analysis.explain import Cause
from analysis.ports import ConnectionSet
from analysis.reachability import Endpoint, ReachabilityMap

if TYPE_CHECKING:
    from networkx import DiGraph

Edge = tuple[Endpoint, Endpoint, ConnectionSet]


def by_destination(
    edges: Iterable[Edge],
) -> list[tuple[Endpoint, list[tuple[Endpoint, ConnectionSet]]]]:
    groups: dict[str, tuple[Endpoint, list[tuple[Endpoint, ConnectionSet]]]] = {}
    order: list[str] = []
    for src, dst, conn in edges:
        if dst.id not in groups:
            groups[dst.id] = (dst, [])
            order.append(dst.id)
        groups[dst.id][1].append((src, conn))
    return [groups[i] for i in order]


def _sorted_edges(rmap: ReachabilityMap) -> list[Edge]:
    position = {e.id: n for n, e in enumerate(rmap.endpoints)}
    return sorted(rmap.connections(), key=lambda e: (position[e[1].id], position[e[0].id]))


def _summary(rmap: ReachabilityMap, edges: list[Edge]) -> str:
    workloads = sum(1 for e in rmap.endpoints if not e.is_external)
    ranges = len(rmap.endpoints) - workloads
    return (
        f"{workloads} workloads, {ranges} external ranges, "
        f"{len(rmap.tree.policies)} policies, {len(edges)} allowed pairs"
    )


def map_text(rmap: ReachabilityMap) -> str:
    edges = _sorted_edges(rmap)
    lines = [f"Reachability map: {_summary(rmap, edges)}"]
    for dst, sources in by_destination(edges):
        lines.append("")
        lines.append(f"{dst.id}  can be reached by")
        width = max(len(s.id) for s, _ in sources)
        lines.extend(f"  {src.id.ljust(width)}  {conn}" for src, conn in sources)
    return "\n".join(lines) + "\n"


def map_csv(rmap: ReachabilityMap) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["src", "dst", "protocol", "ports"])
    for src, dst, conn in rmap.connections():
        for protocol, ports in conn.by_protocol:
            writer.writerow([src.id, dst.id, protocol, str(ports)])
    return out.getvalue()


def md_escape(text: str) -> str:
    return (
        text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace("@", "@\u200b")
    )


def map_markdown(rmap: ReachabilityMap) -> str:
    edges = _sorted_edges(rmap)
    lines = ["# Reachability map", "", _summary(rmap, edges)]
    for dst, sources in by_destination(edges):
        lines += ["", f"## `{md_escape(dst.id)}`", "", "| from | allowed |", "|---|---|"]
        lines.extend(f"| `{md_escape(s.id)}` | {conn} |" for s, conn in sources)
    return "\n".join(lines) + "\n"


def map_dot(rmap: ReachabilityMap) -> str:
    import networkx as nx  # a slow import, needed only for this format

    graph: nx.DiGraph[str] = nx.DiGraph()
    for e in rmap.endpoints:
        graph.add_node(e.id, shape="box" if e.is_external else "ellipse")
    for src, dst, conn in rmap.connections():
        graph.add_edge(src.id, dst.id, label=str(conn))
    return to_dot(graph)


def to_dot(graph: DiGraph[str]) -> str:
    def quote(text: object) -> str:
        return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = ["digraph reachability {", "  rankdir=LR;"]
    for node, attrs in graph.nodes(data=True):
        extra = "".join(f", {k}={quote(v)}" for k, v in attrs.items())
        lines.append(f"  {quote(node)} [label={quote(node)}{extra}];")
    for src, dst, attrs in graph.edges(data=True):
        lines.append(f"  {quote(src)} -> {quote(dst)} [label={quote(attrs.get('label', ''))}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def cause_text(c: Cause) -> str:
    where = f"{c.file}:{c.line}"
    what = f"{c.policy} {c.rule}".rstrip()
    if c.action:
        named = f' "{c.rule_name}"' if c.rule_name else ""
        if c.tree == "base":
            return f"{c.tier}: {what}{named} → {c.action} no longer applies (base {where})"
        return f"{c.tier}: {what}{named} → {c.action} ({where})"
    if c.reason == "allows":
        return f"{what} ({where})"
    return f"{what} {c.reason} ({c.tree} {where})"


def verdict(diff: ChangeSet) -> str:
    if diff.widening:
        return "WIDENED"
    if diff.closed:
        return "narrowed"
    return "unchanged"


def diff_text(diff: ChangeSet) -> str:
    lines = [
        f"reachdiff: access {verdict(diff)}: {len(diff.opened)} path(s) opened, "
        f"{len(diff.closed)} closed"
    ]
    for title, sign, changes in (("Opened", "+", diff.opened), ("Closed", "-", diff.closed)):
        if not changes:
            continue
        lines += ["", f"{title} (by destination):"]
        for dst, entries in _changes_by_destination(changes):
            lines.append(f"  {dst.id}{_flag(dst, entries[0])}{_words(dst)}")
            for change in entries:
                note = "  [new workload]" if change.src_new else ""
                note = "  [removed workload]" if change.src_removed else note
                lines.append(
                    f"    {sign} {change.src.id}  {change.delta}{note}{_words(change.src)}"
                )
                lines.extend(f"        because {cause_text(c)}" for c in change.because)
    if any(c.src.beyond or c.dst.beyond for c in (*diff.opened, *diff.closed)):
        lines += ["", OUTSIDE_NOTE]
    for title, endpoints in (
        ("New workloads", diff.added_endpoints),
        ("Removed workloads", diff.removed_endpoints),
    ):
        if endpoints:
            lines += ["", f"{title}:"] + [f"  {e.id}" for e in endpoints]
    return "\n".join(lines) + "\n"


OUTSIDE_NOTE = (
    "Note: ~ endpoints stand for pods this repository does not define (cluster_scope: "
    "partial). The policies of namespaces outside it are unknown: a path from such a pod "
    "is judged by the destination's ingress alone, a path to it by the source's egress."
)


def _words(e: Endpoint) -> str:
    return f"  — {e.description}" if e.is_outside else ""


def _flag(dst: Endpoint, change: PathChange) -> str:
    if change.dst_new:
        return "  [new workload]"
    if change.dst_removed:
        return "  [removed workload]"
    return ""


def _changes_by_destination(
    changes: Iterable[PathChange],
) -> Iterator[tuple[Endpoint, list[PathChange]]]:
    groups: dict[str, list[PathChange]] = {}
    for change in changes:
        groups.setdefault(change.dst.id, []).append(change)
    for entries in sorted(groups.values(), key=lambda e: endpoint_sort_key(e[0].dst)):
        yield entries[0].dst, entries
