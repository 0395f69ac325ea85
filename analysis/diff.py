"""The reachability delta between two trees: paths opened, paths closed, and why.

Workloads are matched across trees by (namespace, kind, name); both trees are cut into the
same external ranges. Endpoints are grouped by the pair (class in base, class in head):
every endpoint of a group behaves alike on both sides, so each pair of groups is compared
and explained once. Usually the head is derived from the base (``analysis.incremental``)
and only the rows and columns the change can touch are read and compared, so the cost of
a diff grows with the change, not with the cluster.

Why one module of 460 lines: ``_Comparison`` compares the two sides group by group;
its reads of rows and columns share the groups it builds.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from analysis import incremental, rederive
from analysis.ciliumpeers import with_pseudo
from analysis.compiler import Compilation, compile_full, tree_networks
from analysis.explain import (
    Cause,
    Memo,
    explain_closed,
    explain_closed_by,
    explain_opened,
    explain_opened_by,
)
from analysis.matcher import bitset_of
from analysis.model import Direction, Tree
from analysis.outside import ClusterScope, with_outside
from analysis.ports import NO_CONNECTIONS, ConnectionSet
from analysis.reachability import Endpoint, Line, ReachabilityMap, compute_map, map_of


@dataclass(frozen=True, slots=True)
class PathChange:
    src: Endpoint
    dst: Endpoint
    delta: ConnectionSet  # what opened (head - base) or closed (base - head)
    base: ConnectionSet
    head: ConnectionSet
    because: tuple[Cause, ...]
    src_new: bool = False
    dst_new: bool = False
    src_removed: bool = False
    dst_removed: bool = False

    @property
    def involves_new_endpoint(self) -> bool:
        return self.src_new or self.dst_new


class ChangeSet(Protocol):
    """What reports read of a diff (a ``ReachabilityDiff`` or several merged)."""

    @property
    def opened(self) -> tuple[PathChange, ...]: ...
    @property
    def closed(self) -> tuple[PathChange, ...]: ...
    @property
    def added_endpoints(self) -> tuple[Endpoint, ...]: ...
    @property
    def removed_endpoints(self) -> tuple[Endpoint, ...]: ...
    @property
    def widening(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class ReachabilityDiff:
    base: ReachabilityMap
    head: ReachabilityMap
    opened: tuple[PathChange, ...]
    closed: tuple[PathChange, ...]
    added_endpoints: tuple[Endpoint, ...]  # workloads only in head
    removed_endpoints: tuple[Endpoint, ...]  # workloads only in base

    @property
    def widening(self) -> bool:
        return bool(self.opened)

    @property
    def changed(self) -> bool:
        return bool(self.opened or self.closed)


def diff_trees(
    base: Tree, head: Tree, scope: ClusterScope = ClusterScope.COMPLETE
) -> ReachabilityDiff:
    """The diff of two trees: the base compiled in full, the head derived from it, and
    only the rows and columns the change can reach compared (``analysis.incremental``).
    Under a partial scope both trees get the representatives of both trees' selectors
    (``analysis.outside``), which pair up by id."""
    if scope is ClusterScope.PARTIAL:
        base, head = with_outside(base, (base, head)), with_outside(head, (base, head))
    base, head = with_pseudo(base, (base, head)), with_pseudo(head, (base, head))
    compilation = compile_full(base, tree_networks(head))
    return diff_compiled(compilation, map_of(base, compilation.matcher), head)


def diff_compiled(
    compilation: Compilation,
    base_map: ReachabilityMap,
    head: Tree,
    change: incremental.TreeChange | None = None,
) -> ReachabilityDiff:
    base = compilation.tree
    tiers = (
        None if incremental.same_context(compilation, head) else rederive.tier_change(base, head)
    )
    if tiers is not None:
        # Calico or Cilium policies: the head is compiled in full under the base's
        # numbers, and compared where the change (of any kind of policy) reaches.
        base, head = with_pseudo(base, (base, head)), with_pseudo(head, (base, head))
        if change is None:
            change = incremental.TreeChange.between(base, head)
        if base is not compilation.tree or not rederive.same_ranges(
            compilation, change, head, tiers
        ):
            # Compiled without the pseudo-endpoints, or not cut by the head's new CIDRs.
            compilation = compile_full(base, tree_networks(head))
            base_map = map_of(base, compilation.matcher)
        head_map, affected = rederive.rederive(compilation, base_map, head, change, tiers)
        return diff_maps(base_map, head_map, affected)
    if not incremental.same_context(compilation, head):
        # Admin policies, namespace labels or Calico network sets changed: any pair may
        # move. Map both in full, with the same Cilium pseudo-endpoints on both sides.
        base, head = with_pseudo(base, (base, head)), with_pseudo(head, (base, head))
        base_map = compute_map(base, tree_networks(head))
        return diff_maps(base_map, compute_map(head, tree_networks(base)))
    if change is None:
        change = incremental.TreeChange.between(base, head)
    if not incremental.same_ranges(compilation, change):
        # The head names CIDRs the base was not cut by: cut it again, so that both sides
        # have the same external ranges.
        compilation = compile_full(base, tree_networks(head))
        base_map = map_of(base, compilation.matcher)
    head_map, affected = incremental.derive(compilation, base_map, head, change)
    return diff_maps(base_map, head_map, affected)


def diff_maps(
    base: ReachabilityMap, head: ReachabilityMap, affected: incremental.Affected | None = None
) -> ReachabilityDiff:
    """Compare two maps cut by the same external ranges: every pair with a connection on
    either side or, for a head derived from the base (``affected`` given), only the pairs
    a change can touch."""
    if affected is None:
        return _full(base, head)
    return _Comparison(base, head).derived(affected)


def _full(base: ReachabilityMap, head: ReachabilityMap) -> ReachabilityDiff:
    # Endpoints grouped by (base endpoint, head endpoint): members of a group behave alike
    # on both sides. Each pair of groups with a connection on either side is compared once.
    groups: dict[tuple[int | None, int | None], list[Endpoint]] = {}
    ids = {e.id: e for e in base.endpoints} | {e.id: e for e in head.endpoints}
    for eid, e in ids.items():
        groups.setdefault((base.index_of.get(eid), head.index_of.get(eid)), []).append(e)
    by_base: dict[int, list[tuple[int | None, int | None]]] = {}
    by_head: dict[int, list[tuple[int | None, int | None]]] = {}
    for key in groups:
        if key[0] is not None:
            by_base.setdefault(key[0], []).append(key)
        if key[1] is not None:
            by_head.setdefault(key[1], []).append(key)
    comparison = _Comparison(base, head)
    base_conns, head_conns = base.class_connections, head.class_connections
    pairs = {
        (gs, gd)
        for (bs, bd) in base_conns
        for gs in by_base.get(bs, ())
        for gd in by_base.get(bd, ())
    }
    pairs.update(
        (gs, gd)
        for (hs, hd) in head_conns
        for gs in by_head.get(hs, ())
        for gd in by_head.get(hd, ())
    )
    for gs, gd in pairs:
        before = NO_CONNECTIONS
        if gs[0] is not None and gd[0] is not None:
            before = base_conns.get((gs[0], gd[0]), NO_CONNECTIONS)
        after = NO_CONNECTIONS
        if gs[1] is not None and gd[1] is not None:
            after = head_conns.get((gs[1], gd[1]), NO_CONNECTIONS)
        comparison.compare(groups[gs], groups[gd], before, after)
    return comparison.result(
        added=[e for eid, e in ids.items() if eid not in base.index_of],
        removed=[e for eid, e in ids.items() if eid not in head.index_of],
    )


class _Comparison:
    """Collects the path changes of compared pairs of endpoint groups, explained once per
    pair of groups (every member of a group has the same classes on both sides)."""

    def __init__(self, base: ReachabilityMap, head: ReachabilityMap) -> None:
        self.base, self.head = base, head
        self.opened: list[PathChange] = []
        self.closed: list[PathChange] = []
        self.explained: Memo = {}

    def compare(
        self,
        sources: Sequence[Endpoint],
        destinations: Sequence[Endpoint],
        before: ConnectionSet,
        after: ConnectionSet,
    ) -> None:
        if before == after:
            return
        base, head = self.base, self.head
        more, less = after - before, before - after
        first_src, first_dst = sources[0].id, destinations[0].id
        memo = self.explained
        why_opened = explain_opened(base, head, first_src, first_dst, more, memo) if more else ()
        why_closed = explain_closed(base, head, first_src, first_dst, less, memo) if less else ()
        self._record(sources, destinations, before, after, why_opened, why_closed, more, less)

    def _record(
        self,
        sources: Sequence[Endpoint],
        destinations: Sequence[Endpoint],
        before: ConnectionSet,
        after: ConnectionSet,
        why_opened: tuple[Cause, ...],
        why_closed: tuple[Cause, ...],
        more: ConnectionSet,
        less: ConnectionSet,
        staying: bool = False,
    ) -> None:
        """One change per pair of members; ``staying`` when every endpoint is on both
        sides (so none is new or removed)."""
        base, head = self.base, self.head
        for src in sources:
            for dst in destinations:
                if staying:
                    if more:
                        self.opened.append(PathChange(src, dst, more, before, after, why_opened))
                    if less:
                        self.closed.append(PathChange(src, dst, less, before, after, why_closed))
                    continue
                if more:
                    self.opened.append(
                        _change(base, head, src, dst, more, before, after, why_opened)
                    )
                if less:
                    self.closed.append(
                        _change(base, head, src, dst, less, before, after, why_closed)
                    )

    def derived(self, affected: incremental.Affected) -> ReachabilityDiff:
        """Compare the rows of affected sources and the columns of affected destinations
        (numbers are shared: an endpoint not ``moved`` has the same number on both sides)."""
        base, head = self.base, self.head
        moved = affected.moved

        def stay(k: int) -> tuple[Endpoint, ...]:
            members = head.members[k]
            if moved and any(m.id in moved for m in members):
                return tuple(m for m in members if m.id not in moved)
            return members

        movers: dict[tuple[int | None, int | None], list[Endpoint]] = {}
        for eid in moved:
            b, h = base.index_of.get(eid), head.index_of.get(eid)
            side, at = (head, h) if h is not None else (base, b)
            assert at is not None  # a moved endpoint is on at least one side
            endpoint = next(m for m in side.members[at] if m.id == eid)
            movers.setdefault((b, h), []).append(endpoint)

        # Row groups: the staying members of each affected source, and every mover.
        row_stays = {k for k in affected.sources if stay(k)}
        for k in row_stays:
            if k < base.matcher.size:
                self._owned(Direction.EGRESS, k, stay(k), movers, stay, affected.destinations)
            else:  # a class only the head has
                self._line(k, k, stay(k), movers, stay, skip=None, rows=True)
        for (b, h), group in movers.items():
            self._line(b, h, group, movers, stay, skip=None, rows=True)
        # Column groups: pairs with a source row group (any mover) were compared above.
        for k in affected.destinations:
            members = stay(k)
            if not members:
                continue
            if k < base.matcher.size:
                self._owned(Direction.INGRESS, k, members, {}, stay, (), skip=row_stays)
            else:
                self._line(k, k, members, {}, stay, skip=row_stays, rows=False)
        for (b, h), group in movers.items():
            self._line(b, h, group, {}, stay, skip=row_stays, rows=False)
        return self.result(
            added=[e for group in movers.values() for e in group if e.id not in base.index_of],
            removed=[e for group in movers.values() for e in group if e.id not in head.index_of],
        )

    def _line(
        self,
        b: int | None,
        h: int | None,
        group: Sequence[Endpoint],
        movers: _Movers,
        stay: Callable[[int], Sequence[Endpoint]],
        skip: Collection[int] | None,
        rows: bool,
    ) -> None:
        """Compare ``group``'s row (or column) with every other group: the staying members
        of each endpoint either side connects with, and the movers."""
        base, head = self.base, self.head
        if rows:
            before_line = base.row(b) if b is not None else {}
            after_line = head.row(h) if h is not None else {}
        else:
            before_line = base.column(b) if b is not None else {}
            after_line = head.column(h) if h is not None else {}
        for k, before, after in _differences(before_line, after_line):
            if skip is not None and k in skip:
                continue
            others = stay(k)
            if not others:
                continue
            self._compare_line(group, others, before, after, rows)
        self._against_movers(group, before_line, after_line, movers, rows)

    def _against_movers(
        self,
        group: Sequence[Endpoint],
        before_line: Line,
        after_line: Line,
        movers: _Movers,
        rows: bool,
    ) -> None:
        for (ob, oh), others in movers.items():
            before = before_line.get(ob, NO_CONNECTIONS) if ob is not None else NO_CONNECTIONS
            after = after_line.get(oh, NO_CONNECTIONS) if oh is not None else NO_CONNECTIONS
            self._compare_line(group, others, before, after, rows)

    def _compare_line(
        self,
        group: Sequence[Endpoint],
        others: Sequence[Endpoint],
        before: ConnectionSet,
        after: ConnectionSet,
        rows: bool,
    ) -> None:
        """``compare`` for ``group``'s row (it is the source) or column (the destination)."""
        if rows:
            self.compare(group, others, before, after)
        else:
            self.compare(others, group, before, after)

    def _owned(
        self,
        direction: Direction,
        owner: int,
        group: Sequence[Endpoint],
        movers: _Movers,
        stay: Callable[[int], Sequence[Endpoint]],
        affected: Collection[int],
        skip: Collection[int] = (),
    ) -> None:
        """``_line`` for the column (ingress) or row (egress) of a class the base has too.
        A staying class not ``affected`` on the other side has the same rules there and
        the same place in every peer set, so its side allows the pair the same on both
        sides, ``direction`` of ``owner`` made every difference, and the verdicts are
        reached per block of classes the owner's rules admit alike."""
        base, head = self.base, self.head
        rows = direction is Direction.EGRESS
        if rows:
            before_line, after_line = base.row(owner), head.row(owner)
        else:
            before_line, after_line = base.column(owner), head.column(owner)
        changed: list[tuple[int, Sequence[Endpoint], ConnectionSet, ConnectionSet]] = []
        for k, before, after in _differences(before_line, after_line):
            if k in skip:
                continue
            others = stay(k)
            if not others:
                continue
            if k in affected:  # both sides may have changed: explained pair by pair
                self._compare_line(group, others, before, after, rows)
            else:
                changed.append((k, others, before, after))
        self._against_movers(group, before_line, after_line, movers, rows)
        if not changed:
            return
        peers = bitset_of(k for k, *_ in changed)
        now_of = head.matcher.verdicts(direction, owner, peers)
        old_of = base.matcher.verdicts(direction, owner, peers)
        memo = self.explained
        # Keyed by identity: the lines and the matchers' verdict caches hold these objects
        # for the whole comparison, and equal sets behind other objects only cost a miss.
        seen: dict[tuple[int, int, int, int], tuple[_Explained, _Explained]] = {}
        for k, others, before, after in changed:
            now, old = now_of[k], old_of[k]
            key = (id(before), id(after), id(now), id(old))
            found = seen.get(key)
            if found is None:
                more, less = after - before, before - after
                found = seen[key] = (
                    (more, explain_opened_by(base, head, direction, more, now, old, owner, memo)),
                    (less, explain_closed_by(base, head, direction, less, now, old, owner, memo)),
                )
            (more, opened), (less, closed) = found
            sources, destinations = (group, others) if rows else (others, group)
            self._record(
                sources, destinations, before, after, opened, closed, more, less, staying=True
            )

    def result(self, added: Iterable[Endpoint], removed: Iterable[Endpoint]) -> ReachabilityDiff:
        return ReachabilityDiff(
            base=self.base,
            head=self.head,
            opened=in_order(self.opened),
            closed=in_order(self.closed),
            added_endpoints=tuple(sorted(added, key=endpoint_sort_key)),
            removed_endpoints=tuple(sorted(removed, key=endpoint_sort_key)),
        )


def _differences(
    before_line: Line, after_line: Line
) -> Iterator[tuple[int, ConnectionSet, ConnectionSet]]:
    """The endpoints whose connections differ between two lines, with both sides."""
    for k, after in after_line.items():
        before = before_line.get(k, NO_CONNECTIONS)
        if before != after:
            yield k, before, after
    for k, before in before_line.items():
        if k not in after_line:
            yield k, before, NO_CONNECTIONS


_Explained = tuple[ConnectionSet, tuple[Cause, ...]]
_Movers = Mapping[tuple[int | None, int | None], Sequence[Endpoint]]


def in_order(changes: Sequence[PathChange], by_destination: bool = False) -> tuple[PathChange, ...]:
    """Changes by source, then destination (``endpoint_sort_key``), or by destination
    first: the distinct endpoints are sorted once, and the changes by a pair of ranks."""
    endpoints = {c.src.id: c.src for c in changes}
    endpoints.update((c.dst.id, c.dst) for c in changes)
    ordered = sorted(endpoints.values(), key=endpoint_sort_key)
    rank = {e.id: n for n, e in enumerate(ordered)}
    width = len(rank)
    if by_destination:
        return tuple(sorted(changes, key=lambda c: rank[c.dst.id] * width + rank[c.src.id]))
    return tuple(sorted(changes, key=lambda c: rank[c.src.id] * width + rank[c.dst.id]))


def _change(
    base: ReachabilityMap,
    head: ReachabilityMap,
    src: Endpoint,
    dst: Endpoint,
    delta: ConnectionSet,
    before: ConnectionSet,
    after: ConnectionSet,
    because: tuple[Cause, ...],
) -> PathChange:
    return PathChange(
        src=src,
        dst=dst,
        delta=delta,
        base=before,
        head=after,
        because=because,
        src_new=src.id not in base.index_of,
        dst_new=dst.id not in base.index_of,
        src_removed=src.id not in head.index_of,
        dst_removed=dst.id not in head.index_of,
    )


def endpoint_sort_key(e: Endpoint) -> tuple[int, str, str, str, int, str]:
    if e.is_external:
        first = ipaddress.ip_network(e.cidrs[0])
        return (first.version, "", "", "", int(first.network_address), "")
    return (0, e.namespace, e.kind, e.name, 0, "")
