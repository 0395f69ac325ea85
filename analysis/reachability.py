"""The reachability map: for every ordered pair of endpoints, the connections allowed.

A connection is allowed iff the source's egress allows it and the destination's ingress
allows it (docs/semantics.md). The map is computed per pair of pod classes (every workload
of a class behaves like the class), lazily: a diff reads only the rows and columns a
change can touch, so a map is cheap to make and pays only for what is read of it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from analysis.ciliumpeers import PSEUDO_KINDS, is_pseudo, with_pseudo
from analysis.ciliumpeers import describe as describe_pseudo
from analysis.compiler import compile_tree
from analysis.ipranges import ExternalRange
from analysis.matcher import CompiledRule, Matcher, PodClass, bit_indexes
from analysis.model import Direction, IPNetwork, Tree, Workload
from analysis.outside import (
    OUTSIDE_KIND,
    ClusterScope,
    describe,
    is_outside_namespace,
    with_outside,
)
from analysis.ports import ALL_CONNECTIONS, NO_CONNECTIONS, ConnectionSet


@dataclass(frozen=True, slots=True)
class Endpoint:
    id: str
    kind: str  # the workload's Kubernetes kind, or "External"
    namespace: str = ""
    name: str = ""
    cidrs: tuple[str, ...] = ()
    # The environment the endpoint belongs to when a report spans several (None: it does
    # not); its id then starts with it, as in ``overlays/prod:shop/Deployment/web``.
    environment: str | None = None
    description: str = ""  # a representative (kind Outside) in words

    @property
    def is_external(self) -> bool:
        return self.kind == "External"

    @property
    def is_outside(self) -> bool:
        """A representative of pods the tree does not define (``analysis.outside``)."""
        return self.kind == OUTSIDE_KIND

    @property
    def is_pseudo(self) -> bool:
        """A Cilium peer that is not a pod: an entity or a DNS name (analysis.ciliumpeers)."""
        return self.kind in PSEUDO_KINDS and not self.namespace

    @property
    def beyond(self) -> bool:
        """A representative of a namespace outside the tree: its own policies are unknown."""
        return self.is_outside and is_outside_namespace(self.namespace)

    def in_environment(self, environment: str) -> Endpoint:
        """This endpoint qualified by ``environment`` ("" is the plain manifests: ``.``)."""
        return Endpoint(
            f"{environment or '.'}:{self.id}",
            self.kind,
            self.namespace,
            self.name,
            self.cidrs,
            environment,
            self.description,
        )

    @staticmethod
    def of_workload(w: Workload) -> Endpoint:
        if w.kind == OUTSIDE_KIND:
            return Endpoint(
                w.id, w.kind, w.namespace, w.name, description=describe(w.namespace, w.name)
            )
        if is_pseudo(w):
            return Endpoint(w.id, w.kind, "", w.name, description=describe_pseudo(w.kind, w.name))
        return Endpoint(w.id, w.kind, w.namespace, w.name)

    @staticmethod
    def of_range(r: ExternalRange) -> Endpoint:
        return Endpoint(r.id, "External", cidrs=r.cidrs)


Line = dict[int, ConnectionSet]  # a row or a column: the other endpoint -> what is allowed


class _Memo:
    """What a map has computed so far (a map is immutable; this only caches)."""

    __slots__ = ("columns", "endpoints", "everything", "rows")

    def __init__(self) -> None:
        self.columns: dict[int, Line] = {}
        self.rows: dict[int, Line] = {}
        self.endpoints: tuple[Endpoint, ...] | None = None
        self.everything: dict[tuple[int, int], ConnectionSet] | None = None


@dataclass(frozen=True, slots=True)
class ReachabilityMap:
    tree: Tree
    matcher: Matcher
    # matcher endpoint -> the endpoints it stands for: a class's workloads by (namespace,
    # kind, name), a range itself; derived maps may have classes without workloads
    members: tuple[tuple[Endpoint, ...], ...]
    index_of: Mapping[str, int]  # endpoint id -> matcher endpoint
    _memo: _Memo = field(default_factory=_Memo, compare=False, repr=False)

    @property
    def endpoints(self) -> tuple[Endpoint, ...]:
        """Workloads by (namespace, kind, name), then the external ranges."""
        memo = self._memo
        if memo.endpoints is None:
            n = self.matcher.first_class
            workloads = sorted(
                (e for m in self.members[n:] for e in m),
                key=lambda e: (e.namespace, e.kind, e.name),
            )
            memo.endpoints = (*workloads, *(m[0] for m in self.members[:n]))
        return memo.endpoints

    def column(self, dst: int) -> Line:
        """Every source allowed into ``dst``, with what it is allowed."""
        line = self._memo.columns.get(dst)
        if line is None:
            line = self._memo.columns[dst] = read_column(self.matcher, dst)
        return line

    def row(self, src: int) -> Line:
        """Every destination ``src`` may reach, with what it may open."""
        line = self._memo.rows.get(src)
        if line is None:
            line = self._memo.rows[src] = dict(read_row(self.matcher, src))
        return line

    @property
    def class_connections(self) -> dict[tuple[int, int], ConnectionSet]:
        """Every allowed pair of matcher endpoints (the whole map: as costly as it is big)."""
        memo = self._memo
        if memo.everything is None:
            # Read, not memoized per column: the pairs are kept once, here.
            memo.everything = {
                (src, dst): conn
                for dst in bit_indexes(self.matcher.live)
                for src, conn in read_column(self.matcher, dst).items()
            }
        return memo.everything

    def allowed(self, src_id: str, dst_id: str) -> ConnectionSet:
        return self.column(self.index_of[dst_id]).get(self.index_of[src_id], NO_CONNECTIONS)

    def connections(self) -> Iterator[tuple[Endpoint, Endpoint, ConnectionSet]]:
        """Every pair with something allowed, by source then destination position."""
        position = {e.id: n for n, e in enumerate(self.endpoints)}
        by_src: dict[int, list[tuple[int, ConnectionSet]]] = {}
        for (s, d), conn in self.class_connections.items():
            by_src.setdefault(s, []).append((d, conn))
        for endpoint in self.endpoints:
            targets = by_src.get(self.index_of[endpoint.id], [])
            expanded = sorted(
                (position[dst.id], dst, conn) for d, conn in targets for dst in self.members[d]
            )
            for _, dst, conn in expanded:
                yield endpoint, dst, conn


def compute_map(
    tree: Tree,
    extra_networks: Iterable[IPNetwork] = (),
    scope: ClusterScope = ClusterScope.COMPLETE,
) -> ReachabilityMap:
    """The map of ``tree``; ``extra_networks`` also cut the external ranges (for a diff).
    Under a partial scope the tree gets its representatives (``analysis.outside``)."""
    if scope is ClusterScope.PARTIAL:
        tree = with_outside(tree)
    tree = with_pseudo(tree)
    return map_of(tree, compile_tree(tree, extra_networks))


def map_of(tree: Tree, matcher: Matcher) -> ReachabilityMap:
    """The (lazy) map of a tree compiled into ``matcher``."""
    class_index = {c: i for i, c in enumerate(matcher.classes, matcher.first_class)}
    members: list[list[Endpoint]] = [[] for _ in range(matcher.size)]
    index_of: dict[str, int] = {}
    for w in tree.workloads:  # sorted by (namespace, kind, name)
        idx = class_index[PodClass.of(w)]
        endpoint = Endpoint.of_workload(w)
        index_of[endpoint.id] = idx
        members[idx].append(endpoint)
    for j, ext in enumerate(matcher.externals):
        endpoint = Endpoint.of_range(ext)
        index_of[endpoint.id] = j
        members[j].append(endpoint)
    return ReachabilityMap(tree, matcher, tuple(map(tuple, members)), index_of)


def read_column(matcher: Matcher, dst: int) -> Line:
    """Everything allowed into ``dst``. The sources are split into blocks that the
    destination's ingress treats alike, so the per-source work is one egress check."""
    scope = _scope(matcher, dst)
    if matcher.has_admin(Direction.INGRESS, dst):
        blocks = _tiered_blocks(matcher, Direction.INGRESS, dst, scope)
    else:
        blocks = _blocks(matcher, matcher.ingress[dst], scope, dst)[0]
    allowed, egress = matcher.allowed, Direction.EGRESS
    rules_of, tiered = matcher.egress, matcher.tiered
    # What a source's egress allows into ``dst`` depends only on its rules (sources under
    # the same policies share the tuple), unless an admin policy selects the source; so
    # does what it gets through a block of the ingress.
    by_rules: dict[object, ConnectionSet] = {}
    line: Line = {}
    for sources, ingress in blocks:
        in_block: dict[object, ConnectionSet] = {}
        for src in bit_indexes(sources):
            key: object
            if tiered and matcher.has_admin(egress, src):
                # Sources under the same NetworkPolicies and Cilium policies (and no admin
                # policy) share their verdicts too.
                key = matcher.tier_key(egress, src)
                if key is None:
                    conn = ingress & allowed(egress, src, dst)
                    if conn.by_protocol:
                        line[src] = conn
                    continue
            else:
                key = id(rules_of[src])
            known = in_block.get(key)
            if known is None:
                out = by_rules.get(key)
                if out is None:
                    out = by_rules[key] = allowed(egress, src, dst)
                known = in_block[key] = ingress & out
            conn = known
            if conn.by_protocol:
                line[src] = conn
    return line


def read_row(matcher: Matcher, src: int) -> Iterator[tuple[int, ConnectionSet]]:
    """Everything ``src`` may reach; the mirror image of ``read_column``. Egress rules with
    named ports resolve them on each destination, so they are applied per destination."""
    scope = _scope(matcher, src)
    named: Sequence[CompiledRule] = ()
    if matcher.has_admin(Direction.EGRESS, src):
        blocks = _tiered_blocks(matcher, Direction.EGRESS, src, scope)
    else:
        blocks, named = _blocks(matcher, matcher.egress[src], scope, None)
    allowed, ingress, peer_sets = matcher.allowed, Direction.INGRESS, matcher.peer_sets
    rules_of, tiered, classes = matcher.ingress, matcher.tiered, matcher.classes
    # As in ``read_column``, per tuple of rules; where one of them names a port, its
    # resolution depends on the destination's named ports too, so they join the key.
    by_rules: dict[object, ConnectionSet] = {}
    names_ports: dict[int, bool] = {}
    first = matcher.first_class
    for destinations, egress in blocks:
        for dst in bit_indexes(destinations):
            conn = egress
            for rule in named:
                if (peer_sets[rule.peers] >> dst) & 1:
                    conn = conn | matcher.ports_at(rule, dst)
            if not conn:
                continue
            governed = tiered and matcher.has_admin(ingress, dst)
            tier = matcher.tier_key(ingress, dst) if governed else 0
            if tier is None:
                into = allowed(ingress, src, dst)
            else:
                rules = rules_of[dst]
                naming = names_ports.get(id(rules))
                if naming is None:
                    naming = names_ports[id(rules)] = rules is not None and any(
                        r.fixed_ports is None for r in rules
                    )
                key: object = (id(rules), classes[dst - first].named_ports) if naming else id(rules)
                if tier:
                    # Under Cilium policies too: the row is part of the key, and its rules
                    # may name ports of the destination.
                    key = (tier, classes[dst - first].named_ports)
                found = by_rules.get(key)
                if found is None:
                    found = by_rules[key] = allowed(ingress, src, dst)
                into = found
            conn = conn & into
            if conn:
                yield dst, conn


def _scope(matcher: Matcher, endpoint: int) -> int:
    """The endpoints ``endpoint`` can be paired with: live ones, and no range, outside
    representative or Cilium pseudo-endpoint with one of those (no policy of the tree
    governs such a pair)."""
    everything = matcher.live & ((1 << matcher.size) - 1)
    if matcher.is_external(endpoint) or ((matcher.beyond | matcher.pseudo) >> endpoint) & 1:
        # Like a range, a Cilium entity or DNS name pairs with workloads only.
        ranges = (1 << matcher.first_class) - 1
        return everything & ~ranges & ~matcher.beyond & ~matcher.pseudo
    return everything


def _blocks(
    matcher: Matcher,
    rules: Sequence[CompiledRule] | None,
    scope: int,
    dst: int | None,
) -> tuple[list[tuple[int, ConnectionSet]], list[CompiledRule]]:
    """The endpoints of ``scope`` split by what NetworkPolicy ``rules`` allow them (a
    partition refined rule by rule with bitsets). With ``dst`` None (egress of one source)
    rules whose ports depend on the destination are returned apart, and blocks allowed
    nothing by the others are kept for them."""
    if rules is None:
        return [(scope, ALL_CONNECTIONS)], []
    apart: list[CompiledRule] = []
    parts: list[tuple[int, ConnectionSet]] = [(scope, NO_CONNECTIONS)]
    for rule in rules:
        if dst is not None:
            ports = matcher.ports_at(rule, dst)
        elif rule.fixed_ports is not None:
            ports = rule.fixed_ports
        else:
            apart.append(rule)
            continue
        if not ports:
            continue
        peers = matcher.peer_sets[rule.peers]
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
        if conn or apart:
            merged[conn] = merged.get(conn, 0) | bits
    if apart:
        # Only endpoints some destination-dependent rule admits can gain from it.
        reach = 0
        for rule in apart:
            reach |= matcher.peer_sets[rule.peers]
        empty = merged.pop(NO_CONNECTIONS, 0) & reach
        if empty:
            merged[NO_CONNECTIONS] = empty
    return [(bits, conn) for conn, bits in merged.items()], apart


def _tiered_blocks(
    matcher: Matcher, direction: Direction, owner: int, scope: int
) -> list[tuple[int, ConnectionSet]]:
    """Blocks for an endpoint under an admin or Cilium policy or Calico's tiers: the peers
    split by the owner's rules that admit them (``Matcher.verdict_blocks``), each decided
    once."""
    blocks: dict[ConnectionSet, int] = {}
    for bits, verdict in matcher.verdict_blocks(direction, owner, scope):
        conn = verdict.allowed
        if conn:
            blocks[conn] = blocks.get(conn, 0) | bits
    return [(bits, conn) for conn, bits in blocks.items()]
