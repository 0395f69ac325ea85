"""Observed flows onto the endpoints of a reachability map (docs/traffic.md).

A pod end becomes the tree's workload that runs it, tried in this order: the workload the
CNI reported (Hubble's ``workloads``); the owner its name implies (``owner_candidates``:
the pod itself, a Deployment's ``name-<hash>-<id>``, a CronJob's, a StatefulSet's
``name-<ordinal>``, a DaemonSet's, Job's or ReplicaSet's ``name-<id>``); the one workload
of its namespace whose pod labels it carries. A pod the tree does not define becomes, when
the map has representatives (``cluster_scope: partial``) and the flow gives its labels,
the representative standing for it. An address becomes the external range holding it.

Anything else is ``Unmapped`` with the reason, and every report counts it: a flow is
never dropped silently.
"""

from __future__ import annotations

import bisect
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

from analysis.flows import FlowEnd, owner_candidates
from analysis.flowsummary import FlowStat, FlowSummary
from analysis.model import Workload
from analysis.outside import OUTSIDE_KIND, OutsideWorld
from analysis.reachability import ReachabilityMap


@dataclass(frozen=True, slots=True)
class MappedFlow:
    src: str  # endpoint ids as ``reachdiff map`` writes them (unqualified)
    dst: str
    stat: FlowStat


@dataclass(frozen=True, slots=True)
class UnmappedFlow:
    stat: FlowStat
    reason: str


@dataclass(frozen=True, slots=True)
class FlowMapping:
    mapped: tuple[MappedFlow, ...]
    unmapped: tuple[UnmappedFlow, ...]

    @property
    def unmapped_count(self) -> int:
        return sum(u.stat.count for u in self.unmapped)


class _Resolver:
    """Endpoint ids for flow ends, memoized (a summary repeats its ends many times)."""

    def __init__(self, rmap: ReachabilityMap, world: OutsideWorld | None) -> None:
        self.rmap = rmap
        self.world = world
        self.by_namespace: dict[str, list[Workload]] = {}
        for w in rmap.tree.workloads:
            if w.kind != OUTSIDE_KIND:
                self.by_namespace.setdefault(w.namespace, []).append(w)
        ranges = rmap.matcher.externals
        self.ranges = sorted(ranges)
        self.starts = [(r.version, r.first) for r in self.ranges]
        self.memo: dict[FlowEnd, str | UnmappedReason] = {}

    def resolve(self, end: FlowEnd) -> str | UnmappedReason:
        found = self.memo.get(end)
        if found is None:
            found = self.memo[end] = self._resolve(end)
        return found

    def _resolve(self, end: FlowEnd) -> str | UnmappedReason:
        if end.reserved.endswith("(aggregated)"):
            return UnmappedReason(f"{end}: the log aggregated its addresses away")
        if end.reserved:
            return UnmappedReason(
                f"{end}: the nodes, not pods (NetworkPolicy leaves node traffic to the CNI)"
            )
        if end.ip and not end.namespace:
            return self._range(end.ip)
        index = self.rmap.index_of
        if end.workload:
            wid = f"{end.namespace}/{end.workload}"
            if wid in index:
                return wid
        if end.pod:
            for kind, name in owner_candidates(end.pod):
                wid = f"{end.namespace}/{kind}/{name}"
                if wid in index:
                    return wid
        if end.labels:
            labels = dict(end.labels)
            carried = [
                w
                for w in self.by_namespace.get(end.namespace, [])
                if w.labels and all(labels.get(k) == v for k, v in w.labels)
            ]
            if len(carried) == 1:
                return carried[0].id
            if len(carried) > 1:
                names = ", ".join(w.id for w in carried[:3])
                return UnmappedReason(f"{end}: its labels fit several workloads ({names})")
        return self._outside(end)

    def _outside(self, end: FlowEnd) -> str | UnmappedReason:
        if self.world is None:
            return UnmappedReason(f"{end}: no workload of the tree runs this pod")
        if not end.labels and not end.workload:
            return UnmappedReason(
                f"{end}: not in the tree, and its labels are unknown (no pod to stand for it)"
            )
        defined = {n.name for n in self.rmap.tree.namespaces}
        if end.namespace not in defined and not end.namespace_labels:
            # Which selectors admit the namespace depends on labels the record lacks.
            return UnmappedReason(f"{end}: namespace not in the tree and its labels unknown")
        try:
            return self.world.locate(
                end.namespace,
                dict(end.namespace_labels),
                dict(end.labels),
                self.rmap.tree,
                end.service_account or None,
            )
        except LookupError as err:  # what the record does not say, or no endpoint at all
            return UnmappedReason(f"{end}: {err}")

    def _range(self, ip: str) -> str | UnmappedReason:
        net = ipaddress.ip_network(ip, strict=False)
        first, last = int(net.network_address), int(net.broadcast_address)
        at = bisect.bisect_right(self.starts, (net.version, first)) - 1
        if at >= 0:
            r = self.ranges[at]
            if r.version == net.version and r.first <= first and last <= r.last:
                return r.id
        return UnmappedReason(f"{ip}: the aggregated prefix spans several ranges of the tree")


@dataclass(frozen=True, slots=True)
class UnmappedReason:
    text: str


def map_flows(
    summary: FlowSummary, rmap: ReachabilityMap, world: OutsideWorld | None = None
) -> FlowMapping:
    """Every flow of ``summary`` placed on ``rmap``'s endpoints, or said why not."""
    resolver = _Resolver(rmap, world)
    mapped: list[MappedFlow] = []
    unmapped: list[UnmappedFlow] = []
    for stat in summary.flows:
        src, dst = resolver.resolve(stat.key.src), resolver.resolve(stat.key.dst)
        if isinstance(src, UnmappedReason):
            unmapped.append(UnmappedFlow(stat, f"source {src.text}"))
        elif isinstance(dst, UnmappedReason):
            unmapped.append(UnmappedFlow(stat, f"destination {dst.text}"))
        else:
            mapped.append(MappedFlow(src, dst, stat))
    return FlowMapping(tuple(mapped), tuple(unmapped))


def unmapped_reasons(mapping: FlowMapping) -> Mapping[str, int]:
    """Flows not mapped, counted per reason (for a report's one-line summary)."""
    out: dict[str, int] = {}
    for u in mapping.unmapped:
        out[u.reason] = out.get(u.reason, 0) + u.stat.count
    return out
