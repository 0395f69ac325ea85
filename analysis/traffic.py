"""A tree's policies against observed traffic (``reachdiff traffic``, docs/traffic.md).

1. ``denied_observed``: forwarded flows the tree's policies deny: what breaks when the
   tree is applied;
2. ``dropped``: flows the CNI dropped by policy, and whether the tree allows them;
3. ``unused``: what a rule allows that no observed flow used in the window (per rule:
   least-privilege candidates).

Each entry names the deciding rules (from ``analysis.decision``, the steps ``explain``
shows). Flows that map to no endpoint are listed apart, never dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from analysis import markdown
from analysis.decision import explain_pair
from analysis.flowmap import FlowMapping, MappedFlow
from analysis.flows import DROPPED, FORWARDED, format_time
from analysis.flowsummary import FlowSummary
from analysis.model import Direction
from analysis.ports import NO_CONNECTIONS, ConnectionSet, PortSet
from analysis.reachability import ReachabilityMap
from analysis.steps import ALLOW, DENY, Step
from analysis.wording import counted

MAX_UNUSED_PAIRS = 5000  # allowed pairs explained for `unused` (the rest are counted)


@dataclass(frozen=True, slots=True, order=True)
class RuleRef:
    policy: str
    file: str
    line: int
    direction: str
    rule: str
    verdict: str  # allow, deny, isolated

    def to_json(self) -> dict[str, object]:
        return {
            "policy": self.policy,
            "file": self.file,
            "line": self.line,
            "direction": self.direction,
            "rule": self.rule,
            "verdict": self.verdict,
        }

    def __str__(self) -> str:
        where = f"{self.policy} {self.rule}".strip()
        return f"{where} ({self.file}:{self.line})"


@dataclass(frozen=True, slots=True)
class ObservedPath:
    """Flows of one (source, destination, protocol, port, verdict) on the map."""

    src: str
    dst: str
    protocol: str
    port: int
    verdict: str
    count: int
    first_seen: int
    last_seen: int
    allowed: bool  # by the tree
    rules: tuple[RuleRef, ...]

    def to_json(self) -> dict[str, object]:
        return {
            "src": self.src,
            "dst": self.dst,
            "protocol": self.protocol,
            "port": self.port,
            "verdict": self.verdict,
            "count": self.count,
            "first_seen": format_time(self.first_seen) if self.first_seen else None,
            "last_seen": format_time(self.last_seen) if self.last_seen else None,
            "allowed": self.allowed,
            "rules": [r.to_json() for r in self.rules],
        }


@dataclass(frozen=True, slots=True)
class UnusedPath:
    """What ``rules`` allow from ``src`` to ``dst`` on ``protocol`` that no flow used."""

    src: str
    dst: str
    protocol: str
    ports: str  # a port set: 5432, 8000-8080, all
    rules: tuple[RuleRef, ...]

    def to_json(self) -> dict[str, object]:
        return {
            "src": self.src,
            "dst": self.dst,
            "protocol": self.protocol,
            "port": self.ports,
            "count": 0,
            "last_seen": None,
            "rules": [r.to_json() for r in self.rules],
        }


@dataclass(frozen=True, slots=True)
class TrafficReport:
    summary: FlowSummary
    mapping: FlowMapping
    denied_observed: tuple[ObservedPath, ...]
    dropped: tuple[ObservedPath, ...]
    unused: tuple[UnusedPath, ...]
    unused_not_examined: int  # allowed pairs past MAX_UNUSED_PAIRS


def observed_paths(mapped: Iterable[MappedFlow]) -> dict[tuple[str, str, str, int, str], list[int]]:
    """Mapped flows merged per (src, dst, protocol, port, verdict): [count, first, last]
    (several patterns of a summary can land on one pair)."""
    out: dict[tuple[str, str, str, int, str], list[int]] = {}
    for m in mapped:
        k = m.stat.key
        key = (m.src, m.dst, k.protocol, k.port, k.verdict)
        found = out.get(key)
        if found is None:
            out[key] = [m.stat.count, m.stat.first, m.stat.last]
        else:
            found[0] += m.stat.count
            if m.stat.first and (not found[1] or m.stat.first < found[1]):
                found[1] = m.stat.first
            found[2] = max(found[2], m.stat.last)
    return out


def _refs(steps: Sequence[Step], verdicts: tuple[str, ...]) -> tuple[RuleRef, ...]:
    return tuple(
        sorted(
            {
                RuleRef(s.policy, s.file, s.line, s.direction, s.rule, s.verdict)
                for s in steps
                if s.policy and s.verdict in verdicts
            }
        )
    )


def _one_port(protocol: str, port: int) -> ConnectionSet:
    return ConnectionSet.of({protocol: PortSet.single(port)})


def traffic_report(
    rmap: ReachabilityMap, summary: FlowSummary, mapping: FlowMapping
) -> TrafficReport:
    denied: list[ObservedPath] = []
    dropped: list[ObservedPath] = []
    used: dict[tuple[str, str], ConnectionSet] = {}
    for (src, dst, protocol, port, verdict), (count, first, last) in sorted(
        observed_paths(mapping.mapped).items()
    ):
        question = _one_port(protocol, port)
        explanation = explain_pair(rmap, src, dst, question=question)
        allowed = explanation.is_allowed
        if allowed:
            rules = _refs(explanation.steps, (ALLOW,))
        else:
            # Only the side that denies: the other side's policies are not why.
            failing = {
                d.value
                for d, ok in (
                    (Direction.EGRESS, explanation.egress),
                    (Direction.INGRESS, explanation.ingress),
                )
                if not ok
            }
            steps = [s for s in explanation.steps if s.direction in failing]
            rules = _refs(steps, (DENY,))
        path = ObservedPath(src, dst, protocol, port, verdict, count, first, last, allowed, rules)
        if verdict == FORWARDED:
            used[(src, dst)] = used.get((src, dst), NO_CONNECTIONS) | question
            if not allowed:
                denied.append(path)
        elif verdict == DROPPED:
            dropped.append(path)
    unused, skipped = _unused(rmap, used)
    return TrafficReport(summary, mapping, tuple(denied), tuple(dropped), unused, skipped)


def _unused(
    rmap: ReachabilityMap, used: dict[tuple[str, str], ConnectionSet]
) -> tuple[tuple[UnusedPath, ...], int]:
    m = rmap.matcher
    out: list[UnusedPath] = []
    examined = skipped = 0
    for src, dst, conn in rmap.connections():
        s, d = rmap.index_of[src.id], rmap.index_of[dst.id]
        governed = any(
            m.rules(direction, owner) is not None or m.has_admin(direction, owner)
            for direction, owner in ((Direction.EGRESS, s), (Direction.INGRESS, d))
            if not m.is_external(owner)
        )
        if not governed:
            continue  # allowed by default: no rule to tighten (see `suggest`)
        unused = conn - used.get((src.id, dst.id), NO_CONNECTIONS)
        if not unused:
            continue
        if examined >= MAX_UNUSED_PAIRS:
            skipped += 1
            continue
        examined += 1
        explanation = explain_pair(rmap, src.id, dst.id, question=unused)
        rules = _refs(explanation.steps, (ALLOW,))
        if not rules:
            continue
        for protocol, ports in unused.by_protocol:
            out.append(UnusedPath(src.id, dst.id, protocol, str(ports), rules))
    return tuple(out), skipped


# --- output ---------------------------------------------------------------------------


def flows_json(summary: FlowSummary, mapping: FlowMapping) -> dict[str, object]:
    """What every report says about its flows data: the window, and what was not used."""
    return {
        "first_seen": format_time(summary.first_seen) if summary.first_seen else None,
        "last_seen": format_time(summary.last_seen) if summary.last_seen else None,
        "records": summary.records,
        "patterns": len(summary.flows),
        "mapped": len(mapping.mapped),
        "unmapped": [
            {
                "src": str(u.stat.key.src),
                "dst": str(u.stat.key.dst),
                "protocol": u.stat.key.protocol,
                "port": u.stat.key.port,
                "verdict": u.stat.key.verdict,
                "count": u.stat.count,
                "reason": u.reason,
            }
            for u in mapping.unmapped
        ],
        "malformed": summary.malformed,
        "skipped": dict(summary.skipped),
    }


def traffic_json(report: TrafficReport) -> dict[str, object]:
    return {
        "denied_observed": [p.to_json() for p in report.denied_observed],
        "dropped": [p.to_json() for p in report.dropped],
        "unused": [u.to_json() for u in report.unused],
        "unused_not_examined": report.unused_not_examined,
        "flows": flows_json(report.summary, report.mapping),
    }


def _seen(p: ObservedPath) -> str:
    last = format_time(p.last_seen) if p.last_seen else "unknown time"
    return f"{counted(p.count, 'flow')}, last {last}"


def _unmapped_lines(mapping: FlowMapping) -> list[str]:
    if not mapping.unmapped:
        return []
    total = mapping.unmapped_count
    lines = [f"Not mapped to the tree ({total} flows, {len(mapping.unmapped)} patterns):"]
    for u in mapping.unmapped[:50]:
        k = u.stat.key
        lines.append(f"  {k.src} -> {k.dst} {k.protocol} {k.port} {k.verdict}: {u.reason}")
    if len(mapping.unmapped) > 50:
        lines.append(f"  …and {len(mapping.unmapped) - 50} more")
    return lines


def traffic_text(report: TrafficReport) -> str:
    s = report.summary
    lines = [f"Observed flows: {s.records} records, {s.window()}", ""]
    lines.append(f"Observed flows this tree denies ({len(report.denied_observed)}):")
    for p in report.denied_observed:
        why = "; ".join(map(str, p.rules)) or "denied"
        lines.append(f"  {p.src} -> {p.dst} {p.protocol} {p.port}: {_seen(p)}; {why}")
    lines += ["", f"Dropped by the CNI ({len(report.dropped)}):"]
    for p in report.dropped:
        now = (
            "now allowed by " + ("; ".join(map(str, p.rules)) or "default")
            if p.allowed
            else "still denied"
        )
        lines.append(f"  {p.src} -> {p.dst} {p.protocol} {p.port}: {_seen(p)}; {now}")
    lines += ["", f"Allowed but never observed ({len(report.unused)}):"]
    by_rule: dict[RuleRef, list[UnusedPath]] = {}
    for u in report.unused:
        for r in u.rules:
            by_rule.setdefault(r, []).append(u)
    for rule, paths in sorted(by_rule.items()):
        lines.append(f"  {rule}:")
        lines += [f"    {u.src} -> {u.dst} {u.protocol} {u.ports}" for u in paths]
    if report.unused_not_examined:
        lines.append(f"  …{report.unused_not_examined} more allowed pairs not examined")
    unmapped = _unmapped_lines(report.mapping)
    if unmapped:
        lines += ["", *unmapped]
    return "\n".join(lines) + "\n"


def traffic_markdown(report: TrafficReport) -> str:
    s = report.summary
    out = [f"**Observed flows**: {s.records} records, {markdown.text(s.window())}", ""]
    out += [f"### Observed flows this tree denies ({len(report.denied_observed)})", ""]
    if report.denied_observed:
        out += [
            "| Source | Destination | Port | Flows | Last seen | Why |",
            "|---|---|---|---|---|---|",
        ]
        for p in report.denied_observed:
            why = markdown.text("; ".join(map(str, p.rules)) or "denied")
            last = format_time(p.last_seen) if p.last_seen else ""
            src, dst = markdown.code(p.src, cell=True), markdown.code(p.dst, cell=True)
            out.append(f"| {src} | {dst} | {p.protocol} {p.port} | {p.count} | {last} | {why} |")
    out += ["", f"### Dropped by the CNI ({len(report.dropped)})", ""]
    for p in report.dropped:
        now = "now allowed" if p.allowed else "still denied"
        src, dst = markdown.code(p.src), markdown.code(p.dst)
        out.append(f"- {src} → {dst} {p.protocol} {p.port}: {_seen(p)}; {now}")
    out += ["", f"### Allowed but never observed ({len(report.unused)})", ""]
    for u in report.unused:
        rules = markdown.text("; ".join(map(str, u.rules)))
        src, dst = markdown.code(u.src), markdown.code(u.dst)
        out.append(f"- {src} → {dst} {u.protocol} {u.ports}: {rules}")
    unmapped = _unmapped_lines(report.mapping)
    if unmapped:
        out += ["", *markdown.code_block(unmapped)]
    return "\n".join(out) + "\n"
