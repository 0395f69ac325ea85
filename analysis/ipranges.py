"""External address ranges: the IPv4 and IPv6 spaces cut at every ipBlock boundary.

Each range is contiguous and every ipBlock in the tree either contains it entirely or not
at all, so one address decides a whole range. A diff cuts both trees at the boundaries of
both, so the same range has the same id on each side.
"""

from __future__ import annotations

import functools
import ipaddress
import itertools
from collections.abc import Iterable
from dataclasses import dataclass

from analysis.model import IPBlock, IPNetwork

_FAMILY_BITS = {4: 32, 6: 128}


@dataclass(frozen=True, slots=True, order=True)
class ExternalRange:
    version: int
    first: int
    last: int

    @property
    def cidrs(self) -> tuple[str, ...]:
        return _cidrs(self.version, self.first, self.last)

    @property
    def id(self) -> str:
        return "ip:" + ",".join(self.cidrs)

    def inside(self, net: IPNetwork) -> bool:
        return (
            net.version == self.version
            and int(net.network_address) <= self.first
            and self.last <= int(net.broadcast_address)
        )

    def matched_by(self, block: IPBlock) -> bool:
        return self.inside(block.cidr) and not any(self.inside(e) for e in block.excepts)


@functools.lru_cache(maxsize=1 << 16)
def _cidrs(version: int, first: int, last: int) -> tuple[str, ...]:
    """The CIDRs that cover a range exactly. Kept process-wide, not by an owner: it is a
    pure function of three integers whose result is an immutable tuple of short strings,
    so no caller can see another's entries; ids are asked for again and again while a
    diff is rendered, and the bound (65,536 entries, a few MiB) keeps a long-running
    worker from growing with every CIDR it has ever seen."""
    cls = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
    return tuple(str(n) for n in ipaddress.summarize_address_range(cls(first), cls(last)))


def partition(networks: Iterable[IPNetwork]) -> tuple[ExternalRange, ...]:
    """The ranges between consecutive boundaries of ``networks``, per address family."""
    cuts: dict[int, set[int]] = {4: {0, 1 << 32}, 6: {0, 1 << 128}}
    for net in networks:
        cuts[net.version].add(int(net.network_address))
        cuts[net.version].add(int(net.broadcast_address) + 1)
    out: list[ExternalRange] = []
    for version in (4, 6):
        points = sorted(cuts[version])
        out.extend(ExternalRange(version, a, b - 1) for a, b in itertools.pairwise(points))
    return tuple(out)


def block_networks(blocks: Iterable[IPBlock]) -> list[IPNetwork]:
    nets: list[IPNetwork] = []
    for block in blocks:
        nets.append(block.cidr)
        nets.extend(block.excepts)
    return nets
