"""Exposure and blast radius: how far each workload is from where traffic enters the
cluster, and how much of the cluster it could move to.

The graph is the engine's class-level map: one node per pod class (workloads that behave
alike; ``analysis.matcher``), one edge per allowed pair of classes. Endpoint-level facts
follow from it exactly, because every workload of a class is allowed what the class is:

- an edge between two different classes joins every workload of one to every workload of
  the other; the edge of a class to itself joins its distinct workloads (replica to
  replica of one workload is loopback and is not a hop);
- external address ranges are where paths start (an entry point when they may connect in)
  and where they end (a blast radius counts them), never a hop in between: reachdiff
  knows nothing of what runs at an address outside the cluster.

``entry_hops`` is a breadth-first search from every entry point at once. The blast radius
(every endpoint a workload reaches through one hop or more) is computed once per strongly
connected component of the class graph, in reverse topological order of its condensation
(networkx), as bitsets over the endpoints: one union per edge of the condensation, so a
tree costs about what reading its map costs.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from analysis.entrypoints import WorkloadSelector, mark_classes
from analysis.frontends import NO_FRONTENDS, Frontends
from analysis.ports import ConnectionSet
from analysis.reachability import Endpoint, ReachabilityMap

if TYPE_CHECKING:
    import networkx as nx

EXTERNAL_ENTRY = "external range that may connect in"


def _pseudo(rmap: ReachabilityMap, endpoint: int) -> bool:
    return bool((rmap.matcher.pseudo >> endpoint) & 1)


@dataclass(frozen=True, slots=True)
class Hop:
    src: Endpoint
    dst: Endpoint
    allowed: ConnectionSet  # everything the pair is allowed


@dataclass(frozen=True, slots=True)
class EntryPoint:
    endpoint: Endpoint
    why: tuple[str, ...]  # an external range, a Service, a route, a settings entry


@dataclass(frozen=True, slots=True)
class WorkloadExposure:
    endpoint: Endpoint
    # Edges from the nearest entry point: 0 for an entry point itself, 1 when an entry
    # point reaches the workload directly, None when none does.
    entry_hops: int | None
    entry_path: tuple[Hop, ...]  # one shortest path from an entry point (empty: none/0)
    blast_radius: int  # endpoints it reaches through one hop or more (itself excluded)
    entry_point: bool
    crown_jewel: bool
    # For crown jewels (the first ``MAX_BY_HOPS``): how many endpoints it reaches first at
    # one hop, two hops... (they sum to the blast radius); empty for the others.
    blast_by_hops: tuple[int, ...] = ()


MAX_BY_HOPS = 50  # crown jewels whose blast radius is also counted by hops (a search each)


@dataclass(frozen=True, slots=True)
class Exposure:
    entry_points: tuple[EntryPoint, ...]  # workloads in map order, then external ranges
    workloads: tuple[WorkloadExposure, ...]  # every workload (and representative), map order
    notes: tuple[str, ...]  # frontends that could not be resolved, with file and line

    def by_id(self) -> dict[str, WorkloadExposure]:
        return {w.endpoint.id: w for w in self.workloads}

    @property
    def crown_jewels(self) -> tuple[WorkloadExposure, ...]:
        return tuple(w for w in self.workloads if w.crown_jewel)


def exposure_of(
    rmap: ReachabilityMap,
    frontends: Frontends = NO_FRONTENDS,
    entry_points: Sequence[WorkloadSelector] = (),
    crown_jewels: Sequence[WorkloadSelector] = (),
) -> Exposure:
    """The exposure of every workload of ``rmap`` (which is read in full)."""
    matcher, members = rmap.matcher, rmap.members
    first = matcher.first_class
    # Cilium's entities and DNS names (analysis.ciliumpeers) are, like ranges, where paths
    # end (a blast radius counts them), never hops nor entry points.
    classes = [i for i in range(first, matcher.size) if members[i] and not _pseudo(rmap, i)]
    marks = mark_classes(
        [(i, matcher.classes[i - first]) for i in classes],
        rmap.tree.namespace_labels(),
        frontends,
        entry_points,
        crown_jewels,
    )
    graph = _ClassGraph.of(rmap, classes)
    # Paths through workloads of the tree read better than through representatives of
    # pods outside it: among equally short ones, the search prefers them.
    rank = {c: (members[c][0].is_outside, c) for c in classes}
    distance, parent = graph.entry_distances(marks.entry, rank)
    reach = graph.reach()
    position = _positions(members)
    out: list[WorkloadExposure] = []
    by_hops_left = MAX_BY_HOPS
    for endpoint in rmap.endpoints:
        cls = rmap.index_of[endpoint.id]
        if cls < first or _pseudo(rmap, cls):
            continue
        bits = reach[graph.component[cls]]
        blast = bits.bit_count() - ((bits >> position[endpoint.id]) & 1)
        hops = distance.get(cls)
        path = _path(rmap, graph, parent, cls, endpoint) if hops else ()
        by_hops: tuple[int, ...] = ()
        if cls in marks.jewels and by_hops_left > 0:
            by_hops_left -= 1
            by_hops = graph.blast_by_hops(cls, members)
        out.append(
            WorkloadExposure(
                endpoint, hops, path, blast, cls in marks.entry, cls in marks.jewels, by_hops
            )
        )
    entries = [
        EntryPoint(e, marks.entry[rmap.index_of[e.id]])
        for e in rmap.endpoints
        if rmap.index_of[e.id] in marks.entry
    ]
    entries += [EntryPoint(members[x][0], (EXTERNAL_ENTRY,)) for x in sorted(graph.entering)]
    return Exposure(tuple(entries), tuple(out), marks.notes)


def _positions(members: Sequence[Sequence[Endpoint]]) -> dict[str, int]:
    """Each endpoint's bit: a class's workloads are consecutive bits."""
    out: dict[str, int] = {}
    for group in members:
        for e in group:
            out[e.id] = len(out)
    return out


@dataclass(slots=True)
class _ClassGraph:
    """The class-level graph: workload classes and the edges between different ones."""

    graph: nx.DiGraph  # type: ignore[type-arg]
    loops: set[int]  # classes of two workloads or more whose workloads reach each other
    external_out: dict[int, int]  # class -> bitset of the external ranges it reaches
    entering: dict[int, list[int]]  # external range -> the classes it reaches
    masks: list[int]  # matcher endpoint -> bitset of its endpoints
    component: dict[int, int]  # class -> its strongly connected component
    condensation: nx.DiGraph  # type: ignore[type-arg]

    @staticmethod
    def of(rmap: ReachabilityMap, classes: Sequence[int]) -> _ClassGraph:
        members, first = rmap.members, rmap.matcher.first_class
        masks: list[int] = []
        offset = 0
        for group in members:
            masks.append(((1 << len(group)) - 1) << offset)
            offset += len(group)
        import networkx as nx  # a slow import (a third of a second): only when compared

        graph: nx.DiGraph = nx.DiGraph()  # type: ignore[type-arg]
        graph.add_nodes_from(classes)
        loops: set[int] = set()
        external_out: dict[int, int] = {}
        entering: dict[int, list[int]] = {}
        inner: list[tuple[int, int]] = []
        for src, dst in rmap.class_connections:
            if not members[src] or not members[dst]:
                continue
            if _pseudo(rmap, src):
                continue
            if src < first:
                entering.setdefault(src, []).append(dst)
            elif dst < first or _pseudo(rmap, dst):
                external_out[src] = external_out.get(src, 0) | masks[dst]
            elif src != dst:
                inner.append((src, dst))
            elif len(members[src]) > 1:
                loops.add(src)
        graph.add_edges_from(inner)
        sccs = list(nx.strongly_connected_components(graph))
        condensation = nx.condensation(graph, sccs)
        component: dict[int, int] = condensation.graph["mapping"]
        return _ClassGraph(graph, loops, external_out, entering, masks, component, condensation)

    def entry_distances(
        self, entry: Mapping[int, object], rank: Mapping[int, tuple[bool, int]]
    ) -> tuple[dict[int, int], dict[int, int]]:
        """Breadth-first from every entry point at once: class -> hops, and class -> the
        endpoint (class or external range) it was first reached from (frontiers are
        walked in ``rank`` order)."""
        distance = {c: 0 for c in sorted(entry, key=rank.__getitem__)}
        parent: dict[int, int] = {}
        frontier = list(distance)
        for external in sorted(self.entering):
            for cls in self.entering[external]:
                if cls not in distance:
                    distance[cls] = 1
                    parent[cls] = external
        # Classes reached from an external range join the search at one hop.
        pending = [c for c, d in distance.items() if d == 1]
        hops = 0
        succ = self.graph.succ
        while frontier or pending:
            hops += 1
            reached: list[int] = []
            for cls in frontier:
                for nxt in succ[cls]:
                    if nxt not in distance:
                        distance[nxt] = hops
                        parent[nxt] = cls
                        reached.append(nxt)
            if hops == 1:
                reached += pending
                pending = []
            frontier = sorted(reached, key=rank.__getitem__)
        return distance, parent

    def blast_by_hops(self, cls: int, members: Sequence[Sequence[Endpoint]]) -> tuple[int, ...]:
        """How many endpoints a workload of ``cls`` reaches first at each hop count."""
        import networkx as nx

        distance: dict[int, int] = nx.single_source_shortest_path_length(self.graph, cls)
        counts: dict[int, int] = {}
        for other, k in distance.items():
            if other != cls:
                counts[k] = counts.get(k, 0) + len(members[other])
        # The other workloads of its own class: one hop if they reach each other directly,
        # else around the shortest cycle back to the class, if any.
        if len(members[cls]) > 1:
            back = (
                1
                if cls in self.loops
                else min(
                    (distance[p] + 1 for p in self.graph.pred[cls] if p in distance), default=0
                )
            )
            if back:
                counts[back] = counts.get(back, 0) + len(members[cls]) - 1
        external: dict[int, int] = {}  # external range's bit -> first hop reaching it
        for other, k in distance.items():
            bits = self.external_out.get(other, 0)
            while bits:
                low = bits & -bits
                external[low] = min(external.get(low, k + 1), k + 1)
                bits ^= low
        for k in external.values():
            counts[k] = counts.get(k, 0) + 1
        return tuple(counts.get(k, 0) for k in range(1, max(counts, default=0) + 1))

    def reach(self) -> dict[int, int]:
        """Component -> bitset of every endpoint reached from its workloads in one hop or
        more (its own workloads included when they reach each other)."""
        import networkx as nx

        dag = self.condensation
        masks, loops, external_out = self.masks, self.loops, self.external_out
        own: dict[int, int] = {}
        reach: dict[int, int] = {}
        for comp in reversed(list(nx.topological_sort(dag))):
            members = dag.nodes[comp]["members"]
            mask = out = 0
            for cls in members:
                mask |= masks[cls]
                out |= external_out.get(cls, 0)
            if len(members) > 1 or next(iter(members)) in loops:
                out |= mask
            for nxt in dag.succ[comp]:
                out |= reach[nxt] | own[nxt]
            own[comp], reach[comp] = mask, out
        return reach


def _path(
    rmap: ReachabilityMap,
    graph: _ClassGraph,
    parent: Mapping[int, int],
    cls: int,
    endpoint: Endpoint,
) -> tuple[Hop, ...]:
    """One shortest path to ``endpoint``: the classes of the search, each stood for by its
    first workload (a shortest path never passes a class twice)."""
    chain = [cls]
    while chain[-1] in parent:
        chain.append(parent[chain[-1]])
    chain.reverse()
    ends = [rmap.members[c][0] for c in chain[:-1]] + [endpoint]
    pairs = rmap.class_connections
    return tuple(
        Hop(a, b, pairs[chain[n], chain[n + 1]])
        for n, (a, b) in enumerate(itertools.pairwise(ends))
    )
