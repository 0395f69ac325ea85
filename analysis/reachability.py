"""The reachability map: for every ordered pair of endpoints, the connections allowed.

A connection is allowed iff the source's egress allows it and the destination's ingress
allows it (docs/semantics.md). The map is computed per pair of pod classes, then read out
per workload: every workload of a class behaves like the class.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from analysis.compiler import compile_tree
from analysis.ipranges import ExternalRange
from analysis.matcher import Matcher, PodClass, bit_indexes
from analysis.model import Direction, IPNetwork, Tree, Workload
from analysis.ports import ALL_CONNECTIONS, NO_CONNECTIONS, ConnectionSet


@dataclass(frozen=True, slots=True)
class Endpoint:
    id: str
    kind: str  # the workload's Kubernetes kind, or "External"
    namespace: str = ""
    name: str = ""
    cidrs: tuple[str, ...] = ()

    @property
    def is_external(self) -> bool:
        return self.kind == "External"

    @staticmethod
    def of_workload(w: Workload) -> Endpoint:
        return Endpoint(w.id, w.kind, w.namespace, w.name)

    @staticmethod
    def of_range(r: ExternalRange) -> Endpoint:
        return Endpoint(r.id, "External", cidrs=r.cidrs)


@dataclass(frozen=True, slots=True)
class ReachabilityMap:
    """Read-only after construction; the dicts are never mutated."""

    tree: Tree
    matcher: Matcher
    endpoints: tuple[Endpoint, ...]  # workloads by (namespace, kind, name), then ranges
    index_of: dict[str, int]  # endpoint id -> matcher index (class or external range)
    members: tuple[tuple[int, ...], ...]  # matcher index -> positions in ``endpoints``
    class_connections: dict[tuple[int, int], ConnectionSet]

    def allowed(self, src_id: str, dst_id: str) -> ConnectionSet:
        key = (self.index_of[src_id], self.index_of[dst_id])
        return self.class_connections.get(key, NO_CONNECTIONS)

    def connections(self) -> Iterator[tuple[Endpoint, Endpoint, ConnectionSet]]:
        """Every pair with something allowed, by source then destination position."""
        by_src: dict[int, list[tuple[int, ConnectionSet]]] = {}
        for (s, d), conn in self.class_connections.items():
            by_src.setdefault(s, []).append((d, conn))
        for endpoint in self.endpoints:
            targets = by_src.get(self.index_of[endpoint.id], [])
            expanded = sorted((dpos, conn) for d, conn in targets for dpos in self.members[d])
            for dpos, conn in expanded:
                yield endpoint, self.endpoints[dpos], conn


def compute_map(tree: Tree, extra_networks: Iterable[IPNetwork] = ()) -> ReachabilityMap:
    """The map of ``tree``; ``extra_networks`` also cut the external ranges (for a diff)."""
    matcher = compile_tree(tree, extra_networks)
    return map_from(tree, matcher, class_connections(matcher))


def map_from(
    tree: Tree, matcher: Matcher, connections: dict[tuple[int, int], ConnectionSet]
) -> ReachabilityMap:
    """A map from its compiled tree and its class connections (computed however)."""
    workloads = sorted(tree.workloads, key=lambda w: (w.namespace, w.kind, w.name))
    class_index = {c: i for i, c in enumerate(matcher.classes)}
    endpoints: list[Endpoint] = []
    index_of: dict[str, int] = {}
    members: list[list[int]] = [[] for _ in range(matcher.size)]
    for w in workloads:
        idx = class_index[PodClass.of(w)]
        index_of[w.id] = idx
        members[idx].append(len(endpoints))
        endpoints.append(Endpoint.of_workload(w))
    base = len(matcher.classes)
    for j, ext in enumerate(matcher.externals):
        index_of[ext.id] = base + j
        members[base + j].append(len(endpoints))
        endpoints.append(Endpoint.of_range(ext))
    return ReachabilityMap(
        tree=tree,
        matcher=matcher,
        endpoints=tuple(endpoints),
        index_of=index_of,
        members=tuple(tuple(m) for m in members),
        class_connections=connections,
    )


def class_connections(matcher: Matcher) -> dict[tuple[int, int], ConnectionSet]:
    """Allowed connections per pair of endpoint indexes; pairs with nothing are absent."""
    column = ColumnReader(matcher)
    out: dict[tuple[int, int], ConnectionSet] = {}
    for dst in range(matcher.size):
        for src, conn in column(dst):
            out[(src, dst)] = conn
    return out


class ColumnReader:
    """Everything allowed into one destination.

    The sources are split into blocks that the destination's ingress treats alike (a
    partition refined rule by rule with bitsets), so the per-pair work is one egress check;
    endpoints under an admin policy take the general tiered path.
    """

    def __init__(self, matcher: Matcher) -> None:
        self.matcher = matcher
        n = len(matcher.classes)
        self.admin_egress = [matcher.has_admin(Direction.EGRESS, c) for c in range(n)]
        self.everyone = (1 << matcher.size) - 1
        self.pods_only = (1 << n) - 1

    def __call__(self, dst: int) -> Iterator[tuple[int, ConnectionSet]]:
        matcher = self.matcher
        n_classes = len(matcher.classes)
        scope = self.pods_only if dst >= n_classes else self.everyone  # no external<->external
        egress_rules, admin_egress, ports_at = matcher.egress, self.admin_egress, matcher.ports_at
        for sources, ingress in ingress_blocks(matcher, dst, scope):
            for src in bit_indexes(sources):
                conn = ingress
                if src < n_classes:  # external sources' egress is not governed
                    if admin_egress[src]:
                        conn = conn & matcher.allowed(Direction.EGRESS, src, dst)
                    elif (rules := egress_rules[src]) is not None:
                        allowed = NO_CONNECTIONS
                        for rule in rules:
                            if rule.peers is None or (rule.peers >> dst) & 1:
                                allowed = allowed | ports_at(rule, dst)
                        conn = conn & allowed
                if conn:
                    yield src, conn


def pair_connections(matcher: Matcher, src: int, dst: int) -> ConnectionSet:
    """One pair, both directions (used where only a few rows or columns are needed)."""
    if src >= len(matcher.classes) and dst >= len(matcher.classes):
        return NO_CONNECTIONS
    ingress = matcher.allowed(Direction.INGRESS, src, dst)
    if not ingress:
        return NO_CONNECTIONS
    return ingress & matcher.allowed(Direction.EGRESS, src, dst)


def ingress_blocks(matcher: Matcher, dst: int, scope: int) -> list[tuple[int, ConnectionSet]]:
    """Sources (as bitsets) and what ``dst``'s ingress allows each block of them."""
    if matcher.has_admin(Direction.INGRESS, dst):
        blocks: dict[ConnectionSet, int] = {}
        for src in bit_indexes(scope):
            conn = matcher.allowed(Direction.INGRESS, src, dst)
            if conn:
                blocks[conn] = blocks.get(conn, 0) | (1 << src)
        return [(bits, conn) for conn, bits in blocks.items()]
    rules = matcher.rules(Direction.INGRESS, dst)
    if rules is None:
        return [(scope, ALL_CONNECTIONS)]
    parts: list[tuple[int, ConnectionSet]] = [(scope, NO_CONNECTIONS)]
    for rule in rules:
        ports = matcher.ports_at(rule, dst)
        if not ports:
            continue
        peers = scope if rule.peers is None else rule.peers
        refined: list[tuple[int, ConnectionSet]] = []
        for bits, conn in parts:
            inside, outside = bits & peers, bits & ~peers
            if inside:
                refined.append((inside, conn | ports))
            if outside:
                refined.append((outside, conn))
        parts = refined
    merged: dict[ConnectionSet, int] = {}
    for bits, conn in parts:
        if conn:
            merged[conn] = merged.get(conn, 0) | bits
    return [(bits, conn) for conn, bits in merged.items()]
