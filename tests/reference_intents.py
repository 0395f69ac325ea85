"""A brute-force evaluation of Intents and ConnectivityTests: the oracle of ``check``.

It reads the raw ``reachdiff.io/v1alpha1`` documents (as dicts), asks the reference
cluster (tests/reference.py) about every concrete (source, destination, protocol, port)
at the ports where an answer can change, and applies docs/intents.md word for word. It
shares no code with ``analysis/`` (no classes, no groups, no interval algebra).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tests.reference import (
    NAMESPACE_NAME_LABEL,
    PROTOCOLS,
    Cluster,
    Endpoint,
    RefRange,
    RefWorkload,
    _range_in,
    flatten,
    format_ports,
    interesting_ports,
    ip_block_networks,
    partition,
    selector_matches,
)

Obj = Mapping[str, Any]
Bits = dict[str, tuple[bool, ...]]  # protocol -> answer at each interesting port
# (type, src or None, dst or None, ports JSON as sorted items, declaration name, entry)
Record = tuple[str, str | None, str | None, tuple[tuple[str, str], ...], str, str]


def _ports_text(value: Any) -> list[tuple[str, int, int]]:
    """``TCP 80,443; UDP 53-60`` / ``all`` / 5432 as (protocol, first, last) triples."""
    if value is None or value == "all":
        return [(p, 1, 65535) for p in PROTOCOLS]
    if isinstance(value, int):
        return [("TCP", value, value)]
    out = []
    for part in str(value).split(";"):
        proto, numbers = part.strip().split(" ", 1)
        for piece in numbers.replace(" ", "").split(","):
            if piece == "all":
                out.append((proto, 1, 65535))
                continue
            lo, _, hi = piece.partition("-")
            out.append((proto, int(lo), int(hi or lo)))
    return out


def _bits(value: Any, points: Sequence[int]) -> Bits:
    triples = _ports_text(value)
    return {
        p: tuple(any(q == p and lo <= x <= hi for q, lo, hi in triples) for x in points)
        for p in PROTOCOLS
    }


def _numbers(value: Any) -> set[int]:
    return {n for _, lo, hi in _ports_text(value) for n in (lo, hi)}


def _labels_of(selector_map: Any) -> dict[str, str]:
    return dict(selector_map or {})


class Oracle:
    def __init__(self, objects: Iterable[Obj], documents: Iterable[Obj]) -> None:
        objs = flatten(objects)
        self.docs = list(documents)
        cidrs = [
            ipaddress.ip_network(s["cidr"], strict=False) for s in self._selectors() if "cidr" in s
        ]
        self.cluster = Cluster(objs, partition([*ip_block_networks(objs), *cidrs]))
        numbers = set(self.cluster.port_numbers())
        for doc in self.docs:
            spec = doc["spec"]
            for entry in [*(spec.get("allow") or []), *(spec.get("deny") or [])]:
                numbers |= _numbers(entry.get("ports"))
            for case in spec.get("cases") or []:
                numbers |= _numbers(case.get("port", case.get("ports")))
        self.points = interesting_ports(numbers)
        self.endpoints: list[Endpoint] = self.cluster.endpoints()

    def _selectors(self) -> list[Obj]:
        out: list[Obj] = []
        for doc in self.docs:
            spec = doc["spec"]
            out.extend(_selector(entry) for entry in spec.get("scope") or [])
            for entry in [
                *(spec.get("allow") or []),
                *(spec.get("deny") or []),
                *(spec.get("cases") or []),
            ]:
                out.extend((entry.get("from") or {}, entry.get("to") or {}))
        return out

    # -- the meaning of one endpoint selector

    def matches(self, sel: Obj | None, ep: Endpoint) -> bool:
        sel = sel or {}
        if isinstance(ep, RefRange):
            if set(sel) - {"cidr"}:
                return False
            return "cidr" not in sel or _range_in(ep, sel["cidr"])
        if "cidr" in sel:
            return False
        ns_labels = self.cluster.ns_labels.get(ep.namespace, {NAMESPACE_NAME_LABEL: ep.namespace})
        names = sel.get("namespace")
        if names is not None:
            names = names if isinstance(names, list) else [names]
            if ep.namespace not in names:
                return False
        if not selector_matches({"matchLabels": _labels_of(sel.get("namespaceLabels"))}, ns_labels):
            return False
        if not selector_matches(sel.get("namespaceSelector"), ns_labels):
            return False
        wanted = sel.get("workload")
        if wanted is not None:
            wanted = wanted if isinstance(wanted, list) else [wanted]
            if not any(w in (ep.name, f"{ep.kind}/{ep.name}") for w in wanted):
                return False
        pod_labels = dict(ep.labels)
        if not selector_matches({"matchLabels": _labels_of(sel.get("labels"))}, pod_labels):
            return False
        return selector_matches(sel.get("podSelector"), pod_labels)

    # -- answers

    def allowed(self, src: Endpoint, dst: Endpoint) -> Bits:
        return {
            p: tuple(self.cluster.allows(src, dst, p, x) for x in self.points) for p in PROTOCOLS
        }

    def pairs(self) -> list[tuple[Endpoint, Endpoint]]:
        return [
            (s, d)
            for s in self.endpoints
            for d in self.endpoints
            if not (isinstance(s, RefRange) and isinstance(d, RefRange))
        ]

    def _json(self, bits: Bits) -> tuple[tuple[str, str], ...]:
        return tuple((p, format_ports(self.points, b)) for p, b in bits.items() if any(b))

    def check(self) -> set[Record]:
        out: set[Record] = set()
        pairs = self.pairs()
        answers = {(s.id, d.id): self.allowed(s, d) for s, d in pairs}
        intents = sorted(
            (d for d in self.docs if d["kind"] == "Intent"), key=lambda d: d["metadata"]["name"]
        )
        declared_by = [
            (a.get("from"), a.get("to"), _bits(a.get("ports"), self.points))
            for doc in intents
            for a in doc["spec"].get("allow") or []
        ]
        for doc in intents:
            name, spec = doc["metadata"]["name"], doc["spec"]
            for i, entry in enumerate(spec.get("deny") or []):
                want = _bits(entry.get("ports"), self.points)
                for s, d in pairs:
                    if self.matches(entry.get("from"), s) and self.matches(entry.get("to"), d):
                        hit = _and(answers[(s.id, d.id)], want)
                        if _any(hit):
                            out.add(("forbidden", s.id, d.id, self._json(hit), name, f"deny[{i}]"))
            for i, entry in enumerate(spec.get("allow") or []):
                if entry.get("required"):
                    want = _bits(entry.get("ports"), self.points)
                    self._expect(out, entry, want, True, "blocked", name, f"allow[{i}]", answers)
        for s, d in pairs:
            rest = answers[(s.id, d.id)]
            for src_sel, dst_sel, ports in declared_by:
                if self.matches(src_sel, s) and self.matches(dst_sel, d):
                    rest = _and(rest, _not(ports))
            if not _any(rest):
                continue
            for doc in intents:
                scope = doc["spec"].get("scope") or []
                # `direction`: ingress judges paths into the entry's endpoints, egress out.
                hits = [
                    i
                    for i, entry in enumerate(scope)
                    if (entry.get("direction") != "ingress" and self.matches(_selector(entry), s))
                    or (entry.get("direction") != "egress" and self.matches(_selector(entry), d))
                ]
                if hits:
                    out.add(
                        (
                            "undeclared",
                            s.id,
                            d.id,
                            self._json(rest),
                            doc["metadata"]["name"],
                            f"scope[{hits[0]}]",
                        )
                    )
        for doc in self.docs:
            if doc["kind"] != "ConnectivityTest":
                continue
            for i, case in enumerate(doc["spec"]["cases"]):
                want = _bits(case.get("port", case.get("ports")), self.points)
                self._expect(
                    out,
                    case,
                    want,
                    case["expect"] == "allowed",
                    "test",
                    doc["metadata"]["name"],
                    f"cases[{i}]",
                    answers,
                )
        return out

    def _expect(
        self,
        out: set[Record],
        entry: Obj,
        want: Bits,
        allowed: bool,
        kind: str,
        name: str,
        where: str,
        answers: Mapping[tuple[str, str], Bits],
    ) -> None:
        sources = [e for e in self.endpoints if self.matches(entry.get("from"), e)]
        destinations = [e for e in self.endpoints if self.matches(entry.get("to"), e)]
        if not sources or not destinations:
            out.add((kind, None, None, self._json(want), name, where))
            return
        for s in sources:
            for d in destinations:
                if isinstance(s, RefRange) and isinstance(d, RefRange):
                    continue
                got = answers[(s.id, d.id)]
                bad = _and(want, _not(got)) if allowed else _and(want, got)
                if _any(bad):
                    out.add((kind, s.id, d.id, self._json(bad), name, where))


def _selector(scope_entry: Obj) -> Obj:
    """A scope entry without its direction: the endpoint selector it names."""
    return {k: v for k, v in scope_entry.items() if k != "direction"}


def _and(a: Bits, b: Bits) -> Bits:
    return {p: tuple(x and y for x, y in zip(a[p], b[p], strict=True)) for p in PROTOCOLS}


def _not(a: Bits) -> Bits:
    return {p: tuple(not x for x in a[p]) for p in PROTOCOLS}


def _any(a: Bits) -> bool:
    return any(any(v) for v in a.values())


__all__ = ["Oracle", "Record", "RefWorkload"]
