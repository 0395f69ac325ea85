"""Observed traffic on the paths a change opens and closes (``diff --flows``).

Flows are placed on both trees (a workload the change removes exists only in the base,
one it adds only in the head), with the representatives a diff uses (derived from both
trees' selectors), so ids are the diff's own. External ends are matched by address
against each changed path's CIDRs: a diff cuts the address space by both trees, so its
ranges are not those of either tree alone.

A closed path that carried forwarded flows **breaks** them. JSON fields are only added:
each opened and closed path gains ``observed``; the report gains ``breaks`` and
``flows``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, replace

from analysis.diff import ChangeSet, PathChange
from analysis.flowmap import FlowMapping, MappedFlow, UnmappedFlow, map_flows
from analysis.flows import FORWARDED, format_time
from analysis.flowsummary import FlowStat, FlowSummary
from analysis.model import Tree
from analysis.outside import ClusterScope, outside_world
from analysis.reachability import Endpoint, ReachabilityMap, compute_map


@dataclass(frozen=True, slots=True)
class PathTraffic:
    change: PathChange
    kind: str  # opened | closed
    flows: tuple[MappedFlow, ...]  # on the changed ports, any verdict

    @property
    def forwarded(self) -> int:
        return sum(f.stat.count for f in self.flows if f.stat.key.verdict == FORWARDED)

    @property
    def last_seen(self) -> int:
        return max((f.stat.last for f in self.flows), default=0)

    def observed_json(self) -> dict[str, object]:
        return {
            "count": sum(f.stat.count for f in self.flows),
            "forwarded": self.forwarded,
            "last_seen": format_time(self.last_seen) if self.last_seen else None,
            "flows": [
                {
                    "protocol": f.stat.key.protocol,
                    "port": f.stat.key.port,
                    "verdict": f.stat.key.verdict,
                    "count": f.stat.count,
                    "first_seen": format_time(f.stat.first) if f.stat.first else None,
                    "last_seen": format_time(f.stat.last) if f.stat.last else None,
                }
                for f in self.flows
            ],
        }


@dataclass(frozen=True, slots=True)
class DiffTraffic:
    paths: tuple[PathTraffic, ...]  # every opened and closed path, in the diff's order
    mapping: FlowMapping  # the flows placed on the trees (head first, else base)
    summary: FlowSummary
    # The environment the summary names when no tree compared has it (its flows are then
    # matched in every environment); "" otherwise.
    unknown_environment: str = ""

    @property
    def breaks(self) -> tuple[PathTraffic, ...]:
        return tuple(p for p in self.paths if p.kind == "closed" and p.forwarded)

    @property
    def broken_flows(self) -> int:
        return sum(p.forwarded for p in self.breaks)


def trees_maps(
    base: Tree, head: Tree, scope: ClusterScope
) -> tuple[ReachabilityMap, ReachabilityMap, object, object]:
    if scope is ClusterScope.PARTIAL:
        base_world = outside_world(base, [base, head])
        head_world = outside_world(head, [base, head])
        return (
            compute_map(base_world.tree(base)),
            compute_map(head_world.tree(head)),
            base_world,
            head_world,
        )
    return compute_map(base), compute_map(head), None, None


def place_flows(summary: FlowSummary, base: Tree, head: Tree, scope: ClusterScope) -> FlowMapping:
    """Each flow on the head's endpoints, else on the base's; unmapped only if on neither."""
    base_map, head_map, base_world, head_world = trees_maps(base, head, scope)
    on_head = map_flows(summary, head_map, head_world)  # type: ignore[arg-type]
    if not on_head.unmapped:
        return on_head
    retry = FlowSummary(flows=tuple(u.stat for u in on_head.unmapped))
    on_base = map_flows(retry, base_map, base_world)  # type: ignore[arg-type]
    return FlowMapping(
        tuple(sorted((*on_head.mapped, *on_base.mapped), key=lambda m: m.stat.key)),
        on_base.unmapped,
    )


def _local_id(e: Endpoint) -> str:
    if e.environment is None:
        return e.id
    return e.id[len(e.environment or ".") + 1 :]


def _inside(ip: str, cidrs: Sequence[str]) -> bool:
    if not ip:
        return False
    net = ipaddress.ip_network(ip, strict=False)
    return any(
        net.version == c.version and net.subnet_of(c)  # type: ignore[arg-type]
        for c in map(ipaddress.ip_network, cidrs)
    )


def _end_matches(endpoint: Endpoint, mapped_id: str, ip: str) -> bool:
    if endpoint.is_external:
        return mapped_id.startswith("ip:") and _inside(ip, endpoint.cidrs)
    return mapped_id == _local_id(endpoint)


def diff_traffic(
    diff: ChangeSet,
    mapping: FlowMapping,
    summary: FlowSummary,
    environment: str | None = None,
) -> DiffTraffic:
    """Observed flows on every opened and closed path of ``diff`` (of ``environment``
    when the diff spans several: the flows come from one cluster)."""
    return _on_paths(diff, {environment or "": mapping}, mapping, summary, environment is None)


def diff_traffic_maps(
    diff: ChangeSet,
    environments: Sequence[tuple[str, ReachabilityMap, ReachabilityMap]],
    summary: FlowSummary,
) -> DiffTraffic:
    """The bot's case: flows placed on each environment's (base map, head map) of a diff
    (the worker has them). A summary naming one of the environments (``environment``) is
    matched there only; one that names none is matched in each: a path closed in any
    environment that carried such flows breaks them (more approval, never less). So is
    one naming an environment the diff does not have (``unknown_environment``)."""
    named = summary.environment
    unknown = ""
    selected = False  # the summary's environment only: the others' paths carry no flows
    if named and len(environments) > 1:
        # A directory of alternative deliverables is named with its "/" (``kubernetes-
        # manifests/``), which settings drop: the exact name first, then that one.
        chosen = [e for e in environments if e[0] == named] or [
            e for e in environments if e[0].endswith("/") and e[0][:-1] == named.rstrip("/")
        ]
        if chosen:
            environments = chosen
            selected = True
        else:
            unknown = named
    mappings: dict[str, FlowMapping] = {}
    for name, base, head in environments:
        on_head = map_flows(summary, head)
        retry = FlowSummary(flows=tuple(u.stat for u in on_head.unmapped))
        on_base = map_flows(retry, base)
        mappings[name] = FlowMapping((*on_head.mapped, *on_base.mapped), on_base.unmapped)
    # Unmapped: what no environment placed.
    placed = {m.stat for mapping in mappings.values() for m in mapping.mapped}
    unmapped = {
        u.stat: u for mapping in mappings.values() for u in mapping.unmapped if u.stat not in placed
    }
    overall = FlowMapping(
        tuple(m for mapping in mappings.values() for m in mapping.mapped),
        tuple(unmapped.values()),
    )
    on_paths = _on_paths(diff, mappings, overall, summary, len(mappings) == 1 and not selected)
    return replace(on_paths, unknown_environment=unknown)


def _on_paths(
    diff: ChangeSet,
    mappings: dict[str, FlowMapping],
    overall: FlowMapping,
    summary: FlowSummary,
    any_environment: bool,
) -> DiffTraffic:
    indexes = {name: _by_pair(mapping) for name, mapping in mappings.items()}
    only = next(iter(indexes.values())) if any_environment and indexes else None
    paths: list[PathTraffic] = []
    for kind, changes in (("opened", diff.opened), ("closed", diff.closed)):
        for c in changes:
            by_pair = only if only is not None else indexes.get(c.src.environment or "")
            if by_pair is None:
                paths.append(PathTraffic(c, kind, ()))
                continue
            src = "ip" if c.src.is_external else _local_id(c.src)
            dst = "ip" if c.dst.is_external else _local_id(c.dst)
            flows = tuple(
                m
                for m in by_pair.get((src, dst), ())
                if c.delta.allows(m.stat.key.protocol, m.stat.key.port)
                and _end_matches(c.src, m.src, m.stat.key.src.ip)
                and _end_matches(c.dst, m.dst, m.stat.key.dst.ip)
            )
            paths.append(PathTraffic(c, kind, flows))
    return DiffTraffic(tuple(paths), overall, summary)


def _by_pair(mapping: FlowMapping) -> dict[tuple[str, str], list[MappedFlow]]:
    by_pair: dict[tuple[str, str], list[MappedFlow]] = {}
    for m in mapping.mapped:
        src = "ip" if m.src.startswith("ip:") else m.src
        dst = "ip" if m.dst.startswith("ip:") else m.dst
        by_pair.setdefault((src, dst), []).append(m)
    return by_pair


def unmapped_stats(mapping: FlowMapping) -> tuple[FlowStat, ...]:
    return tuple(u.stat for u in mapping.unmapped)


def add_to_json(doc: dict[str, object], traffic: DiffTraffic, flows: dict[str, object]) -> None:
    """Adds ``observed`` to each path of a diff document, and ``breaks`` and ``flows``."""
    observed = {(p.kind, p.change.src.id, p.change.dst.id): p for p in traffic.paths}
    for kind in ("opened", "closed"):
        rows = doc.get(kind)
        if not isinstance(rows, list):
            continue
        for row in rows:
            found = observed.get((kind, row["src"], row["dst"]))
            if found is not None:
                row["observed"] = found.observed_json()
    doc["breaks"] = [
        {"src": p.change.src.id, "dst": p.change.dst.id, **p.observed_json()}
        for p in traffic.breaks
    ]
    doc["flows"] = flows


def breaks_lines(traffic: DiffTraffic) -> list[str]:
    """The text report's section: never "nothing breaks" without saying on what data."""
    s = traffic.summary
    lines = [f"Observed traffic: {s.records} records, {s.window()}"]
    breaks = traffic.breaks
    if breaks:
        lines.append(
            f"Would break {traffic.broken_flows} observed flows on {len(breaks)} closed paths:"
        )
        for p in breaks:
            last = format_time(p.last_seen) if p.last_seen else "unknown time"
            lines.append(
                f"  {p.change.src.id} -> {p.change.dst.id} ({p.change.delta}): "
                f"{p.forwarded} flows, last {last}"
            )
    else:
        lines.append("No closed path carried a forwarded flow in this window.")
    unmapped = traffic.mapping.unmapped
    if unmapped:
        total = sum(u.stat.count for u in unmapped)
        lines.append(
            f"{total} observed flows could not be placed on the trees (see --format json)."
        )
    return lines


__all__ = ["DiffTraffic", "PathTraffic", "UnmappedFlow", "diff_traffic", "place_flows"]
