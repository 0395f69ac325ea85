"""Human-readable renderings of maps and diffs for the terminal: text, CSV, Markdown, DOT.

Long outputs are grouped by destination: a reviewer asks "who can reach the database?",
not "whom can each pod reach?".
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import TYPE_CHECKING

from analysis import markdown
from analysis.aggregate import Populations, Row, aggregate, describe_environments
from analysis.diff import ChangeSet, PathChange, in_order
from analysis.explain import Cause
from analysis.model import Tree
from analysis.ports import ConnectionSet
from analysis.reachability import Endpoint, ReachabilityMap
from analysis.unmodelled import MODELLED_NAMES, is_delivery
from analysis.wording import counted

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


def _edges(rmap: ReachabilityMap, environment: str | None) -> Iterable[Edge]:
    """The map's connections in its own order, qualified by ``environment`` if given."""
    if environment is None:
        return rmap.connections()
    named = {e.id: e.in_environment(environment) for e in rmap.endpoints}
    return ((named[s.id], named[d.id], conn) for s, d, conn in rmap.connections())


def _sorted_edges(rmap: ReachabilityMap, environment: str | None = None) -> list[Edge]:
    """Every allowed pair by destination, then source; with ``environment``, the endpoints
    qualified by it (a report of several environments never shows two alike)."""
    position = {e.id: n for n, e in enumerate(rmap.endpoints)}
    edges = sorted(rmap.connections(), key=lambda e: (position[e[1].id], position[e[0].id]))
    if environment is None:
        return edges
    named = {e.id: e.in_environment(environment) for e in rmap.endpoints}
    return [(named[s.id], named[d.id], conn) for s, d, conn in edges]


def _summary(rmap: ReachabilityMap, edges: list[Edge]) -> str:
    outside = sum(1 for e in rmap.endpoints if e.is_outside)
    pseudo = sum(1 for e in rmap.endpoints if e.is_pseudo)
    ranges = sum(1 for e in rmap.endpoints if e.is_external)
    workloads = len(rmap.endpoints) - outside - pseudo - ranges
    # Representatives (cluster_scope: partial) and Cilium's entities and DNS names are
    # counted apart: they are not workloads.
    shown = f"{outside} representatives of pods outside the tree, " if outside else ""
    shown += f"{pseudo} Cilium entities and DNS names, " if pseudo else ""
    return (
        f"{workloads} workloads, {shown}{ranges} external ranges, "
        f"{policy_counts(rmap.tree)}, {len(edges)} allowed pairs"
    )


def policy_counts(tree: Tree) -> str:
    """``5 policies (3 NetworkPolicy, 1 AdminNetworkPolicy, 1 CiliumNetworkPolicy not
    analysed)``: every policy object read, of every kind, modelled or not."""
    kinds: dict[str, int] = {}
    for kind in [
        *("NetworkPolicy" for _ in tree.policies),
        *(a.kind for a in tree.admin_policies),
        *(
            f"{p.kind}.projectcalico.org" if p.namespace else p.kind
            for p in (tree.calico.policies if tree.calico else ())
        ),
        *(c.kind for c in tree.cilium_policies),
    ]:
        kinds[kind] = kinds.get(kind, 0) + 1
    unmodelled: dict[str, int] = {}
    for u in tree.unmodelled:
        if is_delivery(u):
            continue  # a HelmRelease or Argo CD Application is no policy
        ambiguous = u.kind in kinds or u.kind in MODELLED_NAMES
        name = f"{u.kind}.{u.group}" if ambiguous else u.kind
        unmodelled[name] = unmodelled.get(name, 0) + 1
    total = sum(kinds.values()) + sum(unmodelled.values())
    parts = [f"{n} {kind}" for kind, n in kinds.items()]
    parts += [f"{n} {kind} not analysed" for kind, n in sorted(unmodelled.items())]
    head = f"{total} {'policy' if total == 1 else 'policies'}"
    if len(parts) > 1 or unmodelled:
        return f"{head} ({', '.join(parts)})"
    return head


def map_text(rmap: ReachabilityMap, environment: str | None = None) -> str:
    edges = _sorted_edges(rmap, environment)
    lines = [f"Reachability map{_of(environment)}: {_summary(rmap, edges)}"]
    for dst, sources in by_destination(edges):
        lines.append("")
        lines.append(f"{dst.id}  can be reached by")
        width = max(len(s.id) for s, _ in sources)
        lines.extend(f"  {src.id.ljust(width)}  {conn}" for src, conn in sources)
    return "\n".join(lines) + "\n"


def map_csv(rmap: ReachabilityMap, environment: str | None = None, header: bool = True) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if header:
        writer.writerow(["src", "dst", "protocol", "ports"])
    for src, dst, conn in _edges(rmap, environment):
        for protocol, ports in conn.by_protocol:
            writer.writerow([src.id, dst.id, protocol, str(ports)])
    return out.getvalue()


def _of(environment: str | None) -> str:
    if environment is None:
        return ""
    return f" of {environment}" if environment else " of the plain manifests"


def map_markdown(rmap: ReachabilityMap, environment: str | None = None) -> str:
    edges = _sorted_edges(rmap, environment)
    lines = [f"# Reachability map{_of(environment)}", "", _summary(rmap, edges)]
    for dst, sources in by_destination(edges):
        lines += ["", f"## {markdown.code(dst.id)}", "", "| from | allowed |", "|---|---|"]
        lines.extend(f"| {markdown.code(s.id, cell=True)} | {conn} |" for s, conn in sources)
    return "\n".join(lines) + "\n"


def map_dot(rmap: ReachabilityMap, environment: str | None = None) -> str:
    return maps_dot([(rmap, environment)])


def maps_dot(maps: Iterable[tuple[ReachabilityMap, str | None]]) -> str:
    """One graph of one or several maps (each qualified by its environment, if any)."""
    import networkx as nx  # a slow import, needed only for this format

    graph: nx.DiGraph[str] = nx.DiGraph()
    for rmap, environment in maps:
        for e in rmap.endpoints:
            e = e if environment is None else e.in_environment(environment)
            graph.add_node(e.id, shape="box" if e.is_external else "ellipse")
        for src, dst, conn in _edges(rmap, environment):
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
    text = _cause_text(c)
    return "".join([text, *(f" [{q}]" for q in (c.authentication, c.l7) if q)])


def _cause_text(c: Cause) -> str:
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


def diff_text(diff: ChangeSet, populations: Populations | None = None) -> str:
    """The diff for a terminal, alike changes said once (``analysis.aggregate``): with
    ``populations``, "all 11 workloads of shop"; the same change in several environments
    is one group listing them."""
    populations = populations or Populations()
    lines = [
        f"reachdiff: access {verdict(diff)}: {counted(len(diff.opened), 'path')} opened, "
        f"{len(diff.closed)} closed"
    ]
    sides = (
        ("Opened", "+", diff.opened, populations.head),
        ("Closed", "-", diff.closed, populations.base),
    )
    for title, sign, changes, population in sides:
        if not changes:
            continue
        lines += ["", f"{title} (by destination):"]
        ordered = in_order(changes, by_destination=True)
        for group in aggregate(ordered, population):
            where = describe_environments(group.environments)
            where = f"  (in {where})" if where else ""
            lines.append(f"  {group.dst.id}{_flag(group.rows[0].first)}{where}{_words(group.dst)}")
            for row in group.rows:
                words = _words(row.src.endpoint) if row.src.endpoint is not None else ""
                lines.append(
                    f"    {sign} {row.src.text()}  {row.first.delta}{_row_note(row)}{words}"
                )
                lines.extend(f"        because {cause_text(c)}" for c in row.first.because)
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


def _row_note(row: Row) -> str:
    src = row.src
    if not src.aggregated:
        change = row.first
        if change.src_new:
            return "  [new workload]"
        return "  [removed workload]" if change.src_removed else ""
    notes = [f"{src.new} new" if src.new else "", f"{src.removed} removed" if src.removed else ""]
    shown = ", ".join(n for n in notes if n)
    return f"  [{shown}]" if shown else ""


def _flag(change: PathChange) -> str:
    if change.dst_new:
        return "  [new workload]"
    if change.dst_removed:
        return "  [removed workload]"
    return ""
