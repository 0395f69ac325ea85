"""The reachability delta between two trees: paths opened, paths closed, and why.

Workloads are matched across trees by (namespace, kind, name); both trees are cut into the
same external ranges. Endpoints are grouped by the pair (class in base, class in head):
every endpoint of a group behaves alike on both sides, so each pair of groups is compared
once and only pairs that have a connection on either side are visited.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Protocol

from analysis import incremental
from analysis.compiler import tree_networks
from analysis.explain import Cause, explain_closed, explain_opened
from analysis.model import Tree
from analysis.ports import NO_CONNECTIONS, ConnectionSet
from analysis.reachability import Endpoint, ReachabilityMap, compute_map


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


def diff_trees(base: Tree, head: Tree) -> ReachabilityDiff:
    """The diff of two trees: the base map in full, the head map and the comparison only
    where the change can reach (``analysis.incremental``)."""
    base_map = compute_map(base, tree_networks(head))
    return diff_from_base(base_map, head)


def diff_from_base(base_map: ReachabilityMap, head: Tree) -> ReachabilityDiff:
    """The diff against an already computed base map (the bot caches those per base
    commit); ``base_map`` must be cut by the head's external ranges too, else this falls
    back to a full computation."""
    head_map, affected = incremental.head_map(base_map, head)
    if head_map.matcher.externals != base_map.matcher.externals:
        # The head names CIDRs the cached base map was not cut by: cut it again, so that
        # both sides have the same external ranges.
        base_map = compute_map(base_map.tree, tree_networks(head))
        head_map, affected = incremental.head_map(base_map, head)
    return diff_maps(base_map, head_map, affected)


def diff_maps(
    base: ReachabilityMap, head: ReachabilityMap, affected: incremental.Affected | None = None
) -> ReachabilityDiff:
    """Compare two maps: every pair with a connection on either side or, given the
    endpoints a change ``affected``, only the pairs touching them."""
    groups = _Groups(base, head)
    opened: list[PathChange] = []
    closed: list[PathChange] = []
    keys, members = groups.keys, groups.members
    base_conns, head_conns = base.class_connections, head.class_connections

    def compare(gs: int, gd: int) -> None:
        (bs, hs), (bd, hd) = keys[gs], keys[gd]
        before = NO_CONNECTIONS
        if bs is not None and bd is not None:
            before = base_conns.get((bs, bd), NO_CONNECTIONS)
        after = NO_CONNECTIONS
        if hs is not None and hd is not None:
            after = head_conns.get((hs, hd), NO_CONNECTIONS)
        if before == after:
            return
        more, less = after - before, before - after
        # Every member of a group has the same classes on both sides, so the same causes.
        first_src, first_dst = members[gs][0].id, members[gd][0].id
        why_opened = explain_opened(base, head, first_src, first_dst, more) if more else ()
        why_closed = explain_closed(base, head, first_src, first_dst, less) if less else ()
        for src in members[gs]:
            for dst in members[gd]:
                if more:
                    opened.append(_change(base, head, src, dst, more, before, after, why_opened))
                if less:
                    closed.append(_change(base, head, src, dst, less, before, after, why_closed))

    if affected is None:
        # Every pair with a connection on either side, each pair of groups once: pairs
        # found from the head side are skipped when the base side had (and compared) them.
        by_base, by_head = groups.by_base, groups.by_head
        for bs, bd in base_conns:
            for gs in by_base.get(bs, ()):
                for gd in by_base.get(bd, ()):
                    compare(gs, gd)
        for hs, hd in head_conns:
            for gs in by_head.get(hs, ()):
                src_base = keys[gs][0]
                for gd in by_head.get(hd, ()):
                    dst_base = keys[gd][0]
                    if (
                        src_base is None
                        or dst_base is None
                        or (src_base, dst_base) not in base_conns
                    ):
                        compare(gs, gd)
    else:
        # Only rows and columns of groups whose class changed or that the change affects.
        moved = {
            g
            for g, (b, h) in enumerate(keys)
            if b is None or h is None or affected.base_of.get(h) != b
        }
        rows = [g for g in range(len(keys)) if g in moved or keys[g][1] in affected.sources]
        cols = [g for g in range(len(keys)) if g in moved or keys[g][1] in affected.destinations]
        row_set = set(rows)
        for gs in rows:
            for gd in range(len(keys)):
                compare(gs, gd)
        for gd in cols:
            for gs in range(len(keys)):
                if gs not in row_set:
                    compare(gs, gd)
    order = groups.order
    opened.sort(key=lambda c: (order[c.src.id], order[c.dst.id]))
    closed.sort(key=lambda c: (order[c.src.id], order[c.dst.id]))
    return ReachabilityDiff(
        base=base,
        head=head,
        opened=tuple(opened),
        closed=tuple(closed),
        added_endpoints=tuple(e for e in head.endpoints if e.id in groups.only_head),
        removed_endpoints=tuple(e for e in base.endpoints if e.id in groups.only_base),
    )


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


class _Groups:
    """Endpoints grouped by (index in base or None, index in head or None)."""

    def __init__(self, base: ReachabilityMap, head: ReachabilityMap) -> None:
        ids: dict[str, Endpoint] = {}
        for e in head.endpoints:
            ids[e.id] = e
        for e in base.endpoints:
            ids.setdefault(e.id, e)
        self.only_head = {i for i in head.index_of if i not in base.index_of}
        self.only_base = {i for i in base.index_of if i not in head.index_of}
        ordered = sorted(ids.values(), key=endpoint_sort_key)
        self.order = {e.id: n for n, e in enumerate(ordered)}
        group_of: dict[tuple[int | None, int | None], int] = {}
        self.keys: list[tuple[int | None, int | None]] = []
        self.members: list[list[Endpoint]] = []
        self.by_base: dict[int, list[int]] = {}
        self.by_head: dict[int, list[int]] = {}
        for e in ordered:
            key = (base.index_of.get(e.id), head.index_of.get(e.id))
            g = group_of.get(key)
            if g is None:
                g = group_of[key] = len(self.keys)
                self.keys.append(key)
                self.members.append([])
                if key[0] is not None:
                    self.by_base.setdefault(key[0], []).append(g)
                if key[1] is not None:
                    self.by_head.setdefault(key[1], []).append(g)
            self.members[g].append(e)


def endpoint_sort_key(e: Endpoint) -> tuple[int, str, str, str, int, str]:
    if e.is_external:
        first = ipaddress.ip_network(e.cidrs[0])
        return (first.version, "", "", "", int(first.network_address), "")
    return (0, e.namespace, e.kind, e.name, 0, "")
