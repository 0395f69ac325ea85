"""What ``reachdiff exposure`` prints, and the exposure part of a diff (``exposure_changes``).

JSON (fields are only ever added)::

    {"entry_points": [ids], "entry_point_reasons": {id: [why, ...]},
     "crown_jewels": [ids],
     "workloads": [{"id", "entry_hops": 2 | null,
                    "entry_path": [{"src", "dst", "allowed": {"TCP": "8080"}}, ...],
                    "blast_radius": 17, "entry_point": bool, "crown_jewel": bool}],
     "notes": ["file:line: why"]}

A diff's ``exposure_changes``: one record per workload whose hops from an entry point or
whose blast radius differ between base and head, with both values, the head's shortest
path from an entry point and each hop's causes (the rules that allow it there).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from analysis import markdown
from analysis.decision import explain_pair
from analysis.exposure import Exposure, Hop, WorkloadExposure
from analysis.reachability import Endpoint, ReachabilityMap
from analysis.steps import ALLOW, DEFAULT, NOT_ISOLATED, Step

Qualify = Callable[[Endpoint], Endpoint]
MAX_EXPLAINED_HOPS = 2_000  # distinct hops whose causes a report names (the rest: counted)


def _same(e: Endpoint) -> Endpoint:
    return e


def hop_json(hop: Hop, qualify: Qualify = _same) -> dict[str, Any]:
    return {
        "src": qualify(hop.src).id,
        "dst": qualify(hop.dst).id,
        "allowed": hop.allowed.to_json(),
    }


def exposure_json(parts: Sequence[tuple[Exposure, Qualify]]) -> dict[str, Any]:
    """The JSON of one exposure, or of several environments' (``qualify`` names them)."""
    entries: list[str] = []
    reasons: dict[str, list[str]] = {}
    workloads: list[dict[str, Any]] = []
    notes: list[str] = []
    for exposure, q in parts:
        for entry in exposure.entry_points:
            eid = q(entry.endpoint).id
            entries.append(eid)
            reasons[eid] = list(entry.why)
        for w in exposure.workloads:
            workloads.append(
                {
                    "id": q(w.endpoint).id,
                    "entry_hops": w.entry_hops,
                    "entry_path": [hop_json(h, q) for h in w.entry_path],
                    "blast_radius": w.blast_radius,
                    "entry_point": w.entry_point,
                    "crown_jewel": w.crown_jewel,
                    **({"blast_by_hops": list(w.blast_by_hops)} if w.blast_by_hops else {}),
                }
            )
        notes += exposure.notes
    return {
        "entry_points": entries,
        "entry_point_reasons": reasons,
        "crown_jewels": [w["id"] for w in workloads if w["crown_jewel"]],
        "workloads": workloads,
        "notes": notes,
    }


def path_text(path: Sequence[Hop], qualify: Qualify = _same) -> str:
    if not path:
        return ""
    parts = [qualify(path[0].src).id]
    parts += [f"--({hop.allowed})--> {qualify(hop.dst).id}" for hop in path]
    return " ".join(parts)


def _hops(w: WorkloadExposure) -> str:
    return "unreached" if w.entry_hops is None else str(w.entry_hops)


def exposure_text(parts: Sequence[tuple[Exposure, Qualify]]) -> str:
    lines: list[str] = []
    entries = [(q(e.endpoint).id, e.why) for x, q in parts for e in x.entry_points]
    lines.append(f"Entry points ({len(entries)}):")
    lines += [f"  {eid}  ({'; '.join(why)})" for eid, why in entries] or ["  none"]
    jewels = [(w, q) for x, q in parts for w in x.crown_jewels]
    if jewels:
        lines += ["", f"Crown jewels ({len(jewels)}):"]
        for w, q in jewels:
            by_hops = (
                (f" ({', '.join(f'{n} at {k + 1}' for k, n in enumerate(w.blast_by_hops))} hops)")
                if w.blast_by_hops
                else ""
            )
            where = (
                "no entry point reaches it"
                if w.entry_hops is None
                else f"{w.entry_hops} hops from an entry point"
            )
            lines.append(f"  {q(w.endpoint).id}: {where}, blast radius {w.blast_radius}{by_hops}")
            if w.entry_path:
                lines.append(f"    {path_text(w.entry_path, q)}")
    lines += ["", "Workloads (hops from the nearest entry point, blast radius):"]
    for x, q in parts:
        for w in x.workloads:
            mark = " [crown jewel]" if w.crown_jewel else ""
            lines.append(
                f"  {q(w.endpoint).id}  hops {_hops(w)}  blast radius {w.blast_radius}{mark}"
            )
    notes = [n for x, _ in parts for n in x.notes]
    if notes:
        lines += ["", "Not resolved (entry points may be missing):"]
        lines += [f"  {n}" for n in notes]
    return "\n".join(lines) + "\n"


def exposure_markdown(parts: Sequence[tuple[Exposure, Qualify]]) -> str:
    out = ["## Exposure", ""]
    entries = [(q(e.endpoint).id, e.why) for x, q in parts for e in x.entry_points]
    out.append(f"**Entry points** ({len(entries)}):")
    out.append("")
    out += [f"- {markdown.code(eid)}: {markdown.text('; '.join(why))}" for eid, why in entries]
    out += [] if entries else ["- none"]
    out += [
        "",
        "| workload | hops from entry | blast radius | path from the nearest entry |",
        "|---|---|---|---|",
    ]
    for x, q in parts:
        for w in x.workloads:
            name = markdown.code(q(w.endpoint).id, cell=True)
            name += " (crown jewel)" if w.crown_jewel else ""
            out.append(
                f"| {name} | {_hops(w)} | {w.blast_radius} | "
                f"{markdown.text(path_text(w.entry_path, q))} |"
            )
    notes = [n for x, _ in parts for n in x.notes]
    if notes:
        out += ["", "**Not resolved** (entry points may be missing):", ""]
        out += [f"- {markdown.text(n)}" for n in notes]
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------- changes


@dataclass(frozen=True, slots=True)
class ExposureChange:
    endpoint: Endpoint  # as in the head (qualified when environments are named)
    crown_jewel: bool
    base_hops: int | None
    head_hops: int | None
    base_blast: int | None  # None: the workload is new
    head_blast: int
    path: tuple[Hop, ...]  # the head's shortest path from an entry point
    # The environment, when a report names them (ids are then qualified by it).
    environment: str | None = None

    def qualify(self, e: Endpoint) -> Endpoint:
        return e if self.environment is None else e.in_environment(self.environment)

    @property
    def id(self) -> str:
        return self.qualify(self.endpoint).id

    @property
    def closer(self) -> bool:
        """Nearer an entry point than before (or newly reached from one)."""
        return self.head_hops is not None and (
            self.base_hops is None or self.head_hops < self.base_hops
        )

    @property
    def blast_growth(self) -> int:
        return self.head_blast - (self.base_blast or 0)


def exposure_changes(
    base: Exposure | None, head: Exposure, environment: str | None = None
) -> tuple[ExposureChange, ...]:
    """Workloads of the head whose hops or blast radius differ from the base's."""
    before = base.by_id() if base is not None else {}
    out = []
    for w in head.workloads:
        b = before.get(w.endpoint.id)
        base_hops = b.entry_hops if b else None
        base_blast = b.blast_radius if b else None
        if b is not None and (base_hops, base_blast) == (w.entry_hops, w.blast_radius):
            continue
        if b is None and w.entry_hops is None and w.blast_radius == 0:
            continue  # a new workload nothing reaches and that reaches nothing
        out.append(
            ExposureChange(
                w.endpoint,
                w.crown_jewel,
                base_hops,
                w.entry_hops,
                base_blast,
                w.blast_radius,
                w.entry_path,
                environment,
            )
        )
    return tuple(out)


class HopCauses:
    """Each hop's causes in the head: the steps that allow it (memoized per pair; paths
    share hops)."""

    def __init__(self, limit: int = MAX_EXPLAINED_HOPS) -> None:
        self.limit = limit
        self.memo: dict[tuple[int, str, str], list[dict[str, Any]]] = {}

    def of(self, rmap: ReachabilityMap, hop: Hop) -> list[dict[str, Any]] | None:
        key = (id(rmap), hop.src.id, hop.dst.id)
        found = self.memo.get(key)
        if found is None:
            if len(self.memo) >= self.limit:
                return None
            e = explain_pair(rmap, hop.src.id, hop.dst.id)
            found = self.memo[key] = _causes(e.steps)
        return found


def _causes(steps: Sequence[Step]) -> list[dict[str, Any]]:
    """Per direction, the rules that allow the hop, or the one step saying that nothing
    isolates that side (no policy, or the default after the tiers)."""
    out: list[dict[str, Any]] = []
    for direction in ("Egress", "Ingress"):
        mine = [s for s in steps if s.direction == direction]
        allowing = [s for s in mine if s.verdict == ALLOW]
        if not allowing:
            allowing = [s for s in mine if s.verdict in (NOT_ISOLATED, DEFAULT)][-1:]
        for s in allowing:
            row: dict[str, Any] = {"direction": s.direction, "verdict": s.verdict}
            if s.policy:
                row.update(policy=s.policy, tier=s.tier, file=s.file, line=s.line, rule=s.rule)
            out.append(row)
    return out


def changes_json(
    changes: Sequence[tuple[ExposureChange, ReachabilityMap | None]],
    causes: HopCauses | None = None,
) -> list[dict[str, Any]]:
    """``changes`` with the head map each was found in (where hops are explained)."""
    causes = causes or HopCauses()
    out = []
    for c, head_map in changes:
        path = []
        for hop in c.path:
            row = hop_json(hop, c.qualify)
            because = causes.of(head_map, hop) if head_map is not None else None
            if because is not None:
                row["because"] = because
            path.append(row)
        out.append(
            {
                "id": c.id,
                "crown_jewel": c.crown_jewel,
                "entry_hops": {"base": c.base_hops, "head": c.head_hops},
                "blast_radius": {"base": c.base_blast, "head": c.head_blast},
                "closer": c.closer,
                "entry_path": path,
            }
        )
    return out


def _change_line(c: ExposureChange) -> str:
    hops = (
        ""
        if c.base_hops == c.head_hops
        else (f"hops from an entry point {_n(c.base_hops)} -> {_n(c.head_hops)}")
    )
    blast = (
        ""
        if c.base_blast == c.head_blast
        else (f"blast radius {_n(c.base_blast)} -> {c.head_blast}")
    )
    jewel = " [crown jewel]" if c.crown_jewel else ""
    return f"{c.id}{jewel}: " + ", ".join(p for p in (hops, blast) if p)


def _n(value: int | None) -> str:
    return "none" if value is None else str(value)


def _ranked(changes: Sequence[ExposureChange]) -> tuple[list[ExposureChange], int]:
    """What the short section lists (crown jewels, then workloads whose hops changed,
    nearer first) and how many changed their blast radius alone (counted)."""
    listed = [c for c in changes if c.crown_jewel or c.base_hops != c.head_hops]
    listed.sort(key=lambda c: (not c.crown_jewel, not c.closer, -c.blast_growth))
    return listed, len(changes) - len(listed)


def changes_text(changes: Sequence[ExposureChange], limit: int = 20) -> str:
    """The short section of ``diff``'s text: crown jewels and nearer workloads first."""
    listed, blast_only = _ranked(changes)
    if not changes:
        return ""
    lines = ["", f"Exposure changed for {len(changes)} workloads:"]
    for c in listed[:limit]:
        lines.append(f"  {_change_line(c)}")
        if c.closer and c.path:
            lines.append(f"    {path_text(c.path, c.qualify)}")
    if len(listed) > limit:
        lines.append(f"  …and {len(listed) - limit} more (JSON: exposure_changes)")
    if blast_only:
        lines.append(f"  {blast_only} changed their blast radius only (JSON: exposure_changes)")
    return "\n".join(lines) + "\n"


def changes_markdown(changes: Sequence[ExposureChange], limit: int = 20) -> str:
    listed, blast_only = _ranked(changes)
    if not changes:
        return ""
    lines = ["", "### Exposure", "", f"Exposure changed for {len(changes)} workloads:", ""]
    for c in listed[:limit]:
        lines.append(f"- {markdown.text(_change_line(c))}")
        if c.closer and c.path:
            lines.append(f"  - path: {markdown.text(path_text(c.path, c.qualify))}")
    if len(listed) > limit:
        lines.append(f"- …and {len(listed) - limit} more (JSON: `exposure_changes`)")
    if blast_only:
        lines.append(f"- {blast_only} changed their blast radius only (JSON: `exposure_changes`)")
    return "\n".join(lines) + "\n"
