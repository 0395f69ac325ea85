"""``shadowed-rule``: a NetworkPolicy rule that admits nothing another rule of the same
policy and direction does not, compared by meaning rather than as written.

What a rule admits is read from the engine's compiled rules: for each endpoint of the map
(the tree's workload classes, the pods it does not define as representatives, the external
ranges cut at every CIDR) whether the rule's peers match it, and which ports it opens on
each destination with named ports resolved there. ``{app: db}`` and ``app in (db)``, a named
port and the number every selected pod gives it, or a namespaceSelector naming the policy's
own namespace next to a bare podSelector are then alike. Named ports resolve as the engine
resolves them (docs/semantics.md): undefined pods labelled like a workload are taken to be
like it, and a representative defines no container port.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from analysis.matcher import CompiledRule, Matcher, bit_indexes
from analysis.model import Direction, NetworkPolicy
from analysis.reachability import ReachabilityMap


@dataclass(frozen=True, slots=True)
class Shadowed:
    """``rule`` (a label such as ``ingress[1]``) admits nothing ``by`` does not."""

    policy: NetworkPolicy
    rule: int  # index into the direction's rules
    by: int
    direction: Direction


@dataclass(frozen=True, slots=True)
class _Owned:
    """One policy's compiled rules of one direction and the endpoints it selects."""

    rules: tuple[CompiledRule, ...]
    owners: tuple[int, ...]


def shadowed_rules(rmap: ReachabilityMap) -> Iterator[Shadowed]:
    """Every shadowed NetworkPolicy rule of the map's tree; of two alike rules the later
    one (the earlier is the one to keep), each reported once with the first rule that
    covers it."""
    matcher = rmap.matcher
    # endpoints standing for something (a derived map keeps empty classes)
    present = sum(1 << k for k, members in enumerate(rmap.members) if members)
    for direction in Direction:
        for owned in _by_policy(matcher, direction, present).values():
            rules = owned.rules
            for b in rules:
                for a in rules:
                    if a is b:
                        continue
                    if not _covers(matcher, direction, a, b, owned.owners, present):
                        continue
                    if a.rule.index > b.rule.index and _covers(
                        matcher, direction, b, a, owned.owners, present
                    ):
                        continue  # two alike rules: the later one is reported
                    yield Shadowed(b.policy, b.rule.index, a.rule.index, direction)
                    break


def _by_policy(
    matcher: Matcher, direction: Direction, present: int
) -> dict[tuple[str, str], _Owned]:
    """Per policy with two rules or more in ``direction``: its rules and the endpoints it
    selects, from one pass over the matcher's rows."""
    rules: dict[tuple[str, str], dict[int, CompiledRule]] = {}
    owners: dict[tuple[str, str], list[int]] = {}
    for k in range(matcher.first_class, matcher.size):
        row = matcher.rules(direction, k)
        if not row or not (present >> k) & 1:
            continue
        for r in row:
            key = (r.policy.namespace, r.policy.name)
            rules.setdefault(key, {})[r.rule.index] = r
            found = owners.setdefault(key, [])
            if not found or found[-1] != k:
                found.append(k)
    return {
        key: _Owned(tuple(by_index[i] for i in sorted(by_index)), tuple(owners[key]))
        for key, by_index in rules.items()
        if len(by_index) > 1
    }


def _covers(
    m: Matcher,
    direction: Direction,
    a: CompiledRule,
    b: CompiledRule,
    owners: Sequence[int],
    present: int,
) -> bool:
    """Whether ``a`` admits every peer on every port ``b`` admits, for every endpoint the
    policy selects (``owners``)."""
    peers_a = m.peer_sets[a.peers]
    peers_b = m.peer_sets[b.peers] & present
    if not peers_b:
        return True  # it admits nothing at all
    only_b = peers_b & ~peers_a
    if a.fixed_ports is not None and b.fixed_ports is not None:
        return not b.fixed_ports or (not only_b and not b.fixed_ports - a.fixed_ports)
    # Named ports resolve on the destination: the owner for ingress, the peer for egress.
    if direction is Direction.INGRESS:
        for owner in owners:
            ports_b = m.ports_at(b, owner)
            if ports_b and (only_b or ports_b - m.ports_at(a, owner)):
                return False
        return True
    for peer in bit_indexes(peers_b):
        ports_b = m.ports_at(b, peer)
        if not ports_b:
            continue
        if not (peers_a >> peer) & 1 or ports_b - m.ports_at(a, peer):
            return False
    return True
