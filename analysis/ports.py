"""Port sets and connection sets: immutable interval sets with set algebra.

Invariant: a ``PortSet`` holds sorted, disjoint, non-adjacent closed intervals inside
1..65535, so two equal sets always compare (and hash) equal. A ``ConnectionSet`` maps each
protocol to a non-empty ``PortSet``; protocols with nothing allowed are absent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

MIN_PORT = 1
MAX_PORT = 65535
PROTOCOLS: tuple[str, ...] = ("TCP", "UDP", "SCTP")

Interval = tuple[int, int]


def _normalize(intervals: Iterable[Interval]) -> tuple[Interval, ...]:
    merged: list[list[int]] = []
    for lo, hi in sorted(intervals):
        lo, hi = max(lo, MIN_PORT), min(hi, MAX_PORT)
        if lo > hi:
            continue
        if merged and lo <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    return tuple((lo, hi) for lo, hi in merged)


@dataclass(frozen=True, slots=True)
class PortSet:
    intervals: tuple[Interval, ...] = ()

    @staticmethod
    def of(*intervals: Interval) -> PortSet:
        return PortSet(_normalize(intervals))

    @staticmethod
    def single(port: int) -> PortSet:
        return PortSet(((port, port),))

    @staticmethod
    def all() -> PortSet:
        return ALL_PORTS

    @staticmethod
    def parse(text: str) -> PortSet:
        """Inverse of ``str()``: ``all``, or ``80,443,8000-8080``."""
        if text == "all":
            return ALL_PORTS
        out: list[Interval] = []
        for part in text.split(","):
            lo, _, hi = part.partition("-")
            out.append((int(lo), int(hi or lo)))
        return PortSet.of(*out)

    def __bool__(self) -> bool:
        return bool(self.intervals)

    def __contains__(self, port: int) -> bool:
        return any(lo <= port <= hi for lo, hi in self.intervals)

    def is_all(self) -> bool:
        return self.intervals == ALL_PORTS.intervals

    def size(self) -> int:
        return sum(hi - lo + 1 for lo, hi in self.intervals)

    def __or__(self, other: PortSet) -> PortSet:
        if not other.intervals:
            return self
        if not self.intervals:
            return other
        return PortSet(_normalize(self.intervals + other.intervals))

    def __and__(self, other: PortSet) -> PortSet:
        out: list[Interval] = []
        a, b = self.intervals, other.intervals
        i = j = 0
        while i < len(a) and j < len(b):
            lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
            if lo <= hi:
                out.append((lo, hi))
            if a[i][1] < b[j][1]:
                i += 1
            else:
                j += 1
        return PortSet(tuple(out))

    def __sub__(self, other: PortSet) -> PortSet:
        out: list[Interval] = []
        for lo, hi in self.intervals:
            cur = lo
            for olo, ohi in other.intervals:
                if ohi < cur or olo > hi:
                    continue
                if olo > cur:
                    out.append((cur, olo - 1))
                cur = max(cur, ohi + 1)
                if cur > hi:
                    break
            if cur <= hi:
                out.append((cur, hi))
        return PortSet(tuple(out))

    def __str__(self) -> str:
        if self.is_all():
            return "all"
        return ",".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in self.intervals)


ALL_PORTS = PortSet(((MIN_PORT, MAX_PORT),))
NO_PORTS = PortSet()


@dataclass(frozen=True, slots=True)
class ConnectionSet:
    """Allowed ports per protocol, e.g. ``{TCP: 80,443; UDP: all}``."""

    by_protocol: tuple[tuple[str, PortSet], ...] = ()

    @staticmethod
    def of(mapping: Mapping[str, PortSet]) -> ConnectionSet:
        return ConnectionSet(tuple((p, mapping[p]) for p in PROTOCOLS if mapping.get(p)))

    @staticmethod
    def all() -> ConnectionSet:
        return ALL_CONNECTIONS

    @staticmethod
    def parse(mapping: Mapping[str, str]) -> ConnectionSet:
        """Inverse of ``to_json()``."""
        return ConnectionSet.of({p: PortSet.parse(t) for p, t in mapping.items()})

    def __bool__(self) -> bool:
        return bool(self.by_protocol)

    def ports(self, protocol: str) -> PortSet:
        for p, s in self.by_protocol:
            if p == protocol:
                return s
        return NO_PORTS

    def allows(self, protocol: str, port: int) -> bool:
        return port in self.ports(protocol)

    def is_all(self) -> bool:
        return self == ALL_CONNECTIONS

    def _combine(self, other: ConnectionSet, op: str) -> ConnectionSet:
        out: dict[str, PortSet] = {}
        for p in PROTOCOLS:
            a, b = self.ports(p), other.ports(p)
            if op == "|":
                out[p] = a | b
            elif op == "&":
                out[p] = a & b
            else:
                out[p] = a - b
        return ConnectionSet.of(out)

    # The fast paths matter: these run once per pair of endpoints.
    def __or__(self, other: ConnectionSet) -> ConnectionSet:
        if not other.by_protocol or other is self:
            return self
        if not self.by_protocol:
            return other
        if self is ALL_CONNECTIONS or other is ALL_CONNECTIONS:
            return ALL_CONNECTIONS
        return self._combine(other, "|")

    def __and__(self, other: ConnectionSet) -> ConnectionSet:
        if not self.by_protocol or not other.by_protocol:
            return NO_CONNECTIONS
        if other is ALL_CONNECTIONS or other is self:
            return self
        if self is ALL_CONNECTIONS:
            return other
        return self._combine(other, "&")

    def __sub__(self, other: ConnectionSet) -> ConnectionSet:
        if not other.by_protocol or not self.by_protocol:
            return self
        if other is ALL_CONNECTIONS or other is self:
            return NO_CONNECTIONS
        return self._combine(other, "-")

    def to_json(self) -> dict[str, str]:
        return {p: str(s) for p, s in self.by_protocol}

    def __str__(self) -> str:
        if not self.by_protocol:
            return "none"
        return "; ".join(f"{p} {s}" for p, s in self.by_protocol)


ALL_CONNECTIONS = ConnectionSet(tuple((p, ALL_PORTS) for p in PROTOCOLS))
NO_CONNECTIONS = ConnectionSet()
