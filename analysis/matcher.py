"""A tree's policies compiled against its endpoints, and the per-direction verdict.

Pods are grouped into ``PodClass``es: pods with the same namespace (and so the same
namespace labels), the same labels, the same named ports and the same hostNetwork flag are
treated identically by every policy, so selectors are evaluated once per class. Endpoints
are numbered: external ranges ``0..X-1``, then classes ``X..X+C-1``; a set of endpoints is
a Python int used as a bitset, so "which sources does this rule admit" is one integer.
Ranges come first so that a derived matcher (``analysis.incremental``) can append new
classes without renumbering anything; rules refer to their peers through ``peer_sets``
so that appending a class updates one table instead of every rule.

A direction's verdict walks the tiers exactly as the API defines them: the admin tier
(AdminNetworkPolicies and Admin-tier ClusterNetworkPolicies by priority: the first matching
rule decides: Allow/Accept, Deny, or Pass to the next tier), then NetworkPolicy (if any
selects the pod, the union of their rules decides), then the baseline tier (Baseline-tier
ClusterNetworkPolicies by priority, then the BaselineAdminNetworkPolicy: the first matching
rule decides, a Pass leaving the ports to the default), then the default: allow.

Why one module of 500 lines: ``Matcher`` is the verdict every engine module reads;
its tiers (admin, NetworkPolicy, Calico, Cilium, baseline) are evaluated in one order
that must be read as a whole to be checked against the API's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from analysis.ciliummodel import CiliumPolicy, CiliumRow, CompiledCiliumRule, resolve_cilium_ports
from analysis.ipranges import ExternalRange
from analysis.model import (
    AdminAction,
    AdminPolicy,
    AdminPort,
    AdminRule,
    Direction,
    Labels,
    NetworkPolicy,
    PolicyPort,
    PolicyRule,
    Workload,
)
from analysis.ports import ALL_CONNECTIONS, ALL_PORTS, NO_CONNECTIONS, ConnectionSet, PortSet

if TYPE_CHECKING:
    from analysis.calicomodel import CalicoPolicy, CalicoRule, CalicoTier


@dataclass(frozen=True, slots=True, order=True)
class PodClass:
    namespace: str
    labels: Labels
    named_ports: tuple[tuple[str, str, int], ...]  # (name, protocol, port)
    host_network: bool
    service_account: str = "default"  # Cilium selects by it (analysis.ciliummodel)
    account_labels: Labels = ()  # Calico reads them (analysis.calicoendpoints)

    @staticmethod
    def of(workload: Workload) -> PodClass:
        named = tuple(sorted((p.name, p.protocol, p.port) for p in workload.ports if p.name))
        return PodClass(
            workload.namespace,
            workload.labels,
            named,
            workload.host_network,
            workload.service_account,
            workload.account_labels,
        )


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """A NetworkPolicy rule; ``peers`` indexes the matcher's ``peer_sets``."""

    policy: NetworkPolicy
    rule: PolicyRule
    peers: int
    fixed_ports: ConnectionSet | None  # the rule's ports when no entry is a named port
    maybe: int = -1  # NetworkPolicy rules know their peers (see CompiledAdminRule)


@dataclass(frozen=True, slots=True)
class CompiledAdminRule:
    policy: AdminPolicy
    rule: AdminRule
    peers: int  # index into the matcher's ``peer_sets``: the endpoints it surely matches
    fixed_ports: ConnectionSet | None
    # For a rule with `networks` peers that do not cover every address: the endpoints whose
    # IPs (pods', nodes') it may or may not hold, unknown to a manifest; -1 for none.
    # Such a peer is evaluated as not matching, and reaching the rule is an "Unknown".
    maybe: int = -1


@dataclass(frozen=True, slots=True)
class CompiledCalicoRule:
    """A Calico NetworkPolicy or GlobalNetworkPolicy rule (``analysis.calicocompile``)."""

    policy: CalicoPolicy
    rule: CalicoRule
    peers: int
    fixed_ports: ConnectionSet | None
    maybe: int = -1  # the peers whose IPs its `nets` may or may not hold (as for admin)


AnyRule = CompiledRule | CompiledAdminRule | CompiledCalicoRule | CompiledCiliumRule


@dataclass(frozen=True, slots=True)
class CalicoTierRow:
    """One Calico tier as it applies to one endpoint in one direction: the rules of its
    policies selecting the endpoint, in Felix's order (Kubernetes NetworkPolicies in the
    default tier, admin policies in kube-admin and kube-baseline), and the policies."""

    tier: CalicoTier
    rules: tuple[AnyRule, ...]
    policies: tuple[NetworkPolicy | AdminPolicy | CalicoPolicy, ...]


@dataclass(frozen=True, slots=True)
class Decision:
    """One reason in a verdict: a rule or policy, the ports it decided, and how."""

    # Allow (an admin Allow/Accept or a NetworkPolicy rule), Deny, Pass (an admin rule handing
    # the ports to the next tier), Isolate (NetworkPolicy isolation), Default, Unknown (an
    # admin rule reached whose `networks` may hold the peer's IP: evaluated as not matching)
    action: str
    ports: ConnectionSet
    rule: AnyRule | None = None
    # for Isolate: the policies isolating the pod (NetworkPolicies, then Cilium policies);
    # for a Calico tier's end (Isolate or Pass, ``rule`` None), the policies of that tier
    # selecting it
    policies: tuple[NetworkPolicy | AdminPolicy | CalicoPolicy | CiliumPolicy, ...] = ()
    tier: str = ""  # a Calico tier's label, for its rules and its end


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: ConnectionSet
    decisions: tuple[Decision, ...]


Rows = tuple[dict[Direction, tuple["CompiledAdminRule", ...]], ...]
# One direction of a pair decided by Calico's tiers: (matcher, the owner's tier rows, the
# peer, the destination) -> verdict.
CalicoWalk = Callable[["Matcher", tuple[CalicoTierRow, ...], int, int], "Verdict"]


@dataclass(frozen=True, slots=True)
class Matcher:
    externals: tuple[ExternalRange, ...]  # endpoints 0..X-1
    classes: tuple[PodClass, ...]  # endpoints X..X+C-1
    # Endpoint bitsets; a compiled rule's ``peers`` is an index into this table.
    peer_sets: tuple[int, ...] = field(repr=False)
    # Tables indexed by endpoint (ranges have empty entries). The NetworkPolicy rules in
    # force per direction; None = no policy selects the pod for that direction.
    ingress: tuple[tuple[CompiledRule, ...] | None, ...] = field(repr=False)
    egress: tuple[tuple[CompiledRule, ...] | None, ...] = field(repr=False)
    # the NetworkPolicies selecting the endpoint per direction (what isolates it)
    isolating: tuple[dict[Direction, tuple[NetworkPolicy, ...]], ...] = field(repr=False)
    # ANP rules in evaluation order, and the BANP's rules, per direction
    admin: Rows = field(repr=False)
    baseline: Rows = field(repr=False)
    # Endpoints that stand for something: every range, and the classes with workloads (a
    # derived matcher keeps the classes its tree no longer has, empty, to keep numbers).
    live: int = field(repr=False)
    tiered: bool = False  # whether any endpoint is under an admin policy
    # Representatives of namespaces outside the tree (``analysis.outside``): their own
    # policies are unknown, and pairs among them and with ranges are not reported.
    beyond: int = field(default=0, repr=False)
    # Cilium's peers that are not pods (analysis.ciliumpeers): like the external ranges,
    # never paired with each other or with a range (no policy of the tree governs that).
    pseudo: int = field(default=0, repr=False)
    # Per endpoint, the Calico tiers deciding each direction where a Calico policy selects
    # it (``analysis.calicocompile``); empty when the tree has none.
    calico: tuple[dict[Direction, tuple[CalicoTierRow, ...]], ...] = field(default=(), repr=False)
    # How Calico's tiers decide (``analysis.calicowalk.decide``), handed in by whoever
    # compiles the rows: the walk builds on this module, so this module cannot import it.
    calico_walk: CalicoWalk | None = field(default=None, compare=False, repr=False)
    # Each endpoint's Calico rules of a direction in order, flattened once; a cache only.
    _calico_rules: dict[tuple[Direction, int], tuple[AnyRule, ...]] = field(
        default_factory=dict, compare=False, repr=False
    )
    # Per endpoint, per direction: what Cilium policies say (``analysis.ciliumcompile``);
    # empty when the tree has none.
    cilium: tuple[dict[Direction, CiliumRow], ...] = field(default=(), repr=False)
    # Verdicts already reached, by what decides them (see ``verdict``); a cache only.
    _verdicts: dict[tuple[object, ...], Verdict] = field(
        default_factory=dict, compare=False, repr=False
    )

    @property
    def size(self) -> int:
        return len(self.classes) + len(self.externals)

    @property
    def first_class(self) -> int:
        return len(self.externals)

    def is_external(self, endpoint: int) -> bool:
        return endpoint < len(self.externals)

    def pod_class(self, endpoint: int) -> PodClass:
        return self.classes[endpoint - len(self.externals)]

    def admits(self, rule: AnyRule, endpoint: int) -> bool:
        return (self.peer_sets[rule.peers] >> endpoint) & 1 == 1

    def rules(self, direction: Direction, endpoint: int) -> tuple[CompiledRule, ...] | None:
        """NetworkPolicy rules governing ``endpoint``; None when no policy isolates it."""
        table = self.ingress if direction is Direction.INGRESS else self.egress
        return table[endpoint]

    def has_admin(self, direction: Direction, endpoint: int) -> bool:
        """Whether a tier beyond NetworkPolicy (admin, baseline, Calico, Cilium) governs
        the endpoint in ``direction``: then its verdicts go through ``verdict``."""
        if self.calico and direction in self.calico[endpoint]:
            return True
        return bool(
            self.admin[endpoint].get(direction)
            or self.baseline[endpoint].get(direction)
            or (self.cilium and direction in self.cilium[endpoint])
        )

    def tier_key(self, direction: Direction, endpoint: int) -> tuple[int, int] | None:
        """What the endpoint's verdicts in ``direction`` depend on besides the peer (and
        the destination's named ports), when endpoints can share them: its NetworkPolicy
        rules and its Cilium row (both shared between endpoints under the same policies).
        None when an admin, baseline or Calico rule governs it (its rows are its own)."""
        if self.admin[endpoint].get(direction) or self.baseline[endpoint].get(direction):
            return None
        if self.calico and direction in self.calico[endpoint]:
            return None
        table = self.ingress if direction is Direction.INGRESS else self.egress
        return (id(table[endpoint]), id(self.cilium_row(direction, endpoint)))

    def cilium_row(self, direction: Direction, endpoint: int) -> CiliumRow | None:
        return self.cilium[endpoint].get(direction) if self.cilium else None

    def ports_at(self, rule: AnyRule, dst: int) -> ConnectionSet:
        """The rule's ports with named ports resolved on the destination ``dst``."""
        if rule.fixed_ports is not None:
            return rule.fixed_ports
        named = () if self.is_external(dst) else self.pod_class(dst).named_ports
        if isinstance(rule, CompiledCalicoRule):
            return rule.rule.connections(named)
        if isinstance(rule, CompiledAdminRule):
            return resolve_admin_ports(rule.rule.ports, named)
        if isinstance(rule, CompiledCiliumRule):
            return resolve_cilium_ports(rule.rule.ports, named)
        return resolve_ports(rule.rule.ports, named)

    def allowed(self, direction: Direction, src: int, dst: int) -> ConnectionSet:
        """What one direction allows the pair (runs once per pair a map reads: kept lean)."""
        if direction is Direction.INGRESS:
            owner, peer, rules = dst, src, self.ingress[dst]
        else:
            owner, peer, rules = src, dst, self.egress[src]
        if self.tiered and self.has_admin(direction, owner):
            return self.verdict(direction, src, dst).allowed
        if rules is None:
            return ALL_CONNECTIONS
        out = NO_CONNECTIONS
        peer_sets = self.peer_sets
        for r in rules:
            if (peer_sets[r.peers] >> peer) & 1:
                out = out | self.ports_at(r, dst)
        return out

    def verdict(self, direction: Direction, src: int, dst: int) -> Verdict:
        """The full tiered decision for one direction of the pair, with its reasons.

        A verdict depends on the peer only through which of the owner's rules admit it
        (and on the destination's named ports, where a rule names one), so peers alike in
        that are decided once: the same object comes back, which explanations rely on.
        """
        owner, peer = (dst, src) if direction is Direction.INGRESS else (src, dst)
        admitted, bit, named = 0, 1, False
        peer_sets = self.peer_sets
        for r in self._tiers(direction, owner):
            if (peer_sets[r.peers] >> peer) & 1:
                admitted |= bit
                named = named or r.fixed_ports is None
            bit <<= 1
            if r.maybe >= 0:
                if (peer_sets[r.maybe] >> peer) & 1:
                    admitted |= bit
                    named = named or r.fixed_ports is None
                bit <<= 1
        key = (direction, owner, admitted, dst if named else -1)
        found = self._verdicts.get(key)
        if found is None:
            found = self._verdicts[key] = self._decide(direction, owner, peer, dst)
        return found

    def verdicts(self, direction: Direction, owner: int, peers: int) -> dict[int, Verdict]:
        """``verdict`` for the owner paired with every endpoint of the bitset ``peers``:
        the peers are split by the owner's rules that admit them (bitset refinement, one
        step per rule), so each block is decided once rather than each peer."""
        out: dict[int, Verdict] = {}
        for bits, found in self.verdict_blocks(direction, owner, peers):
            out.update(dict.fromkeys(bit_indexes(bits), found))
        return out

    def verdict_blocks(
        self, direction: Direction, owner: int, peers: int
    ) -> Iterator[tuple[int, Verdict]]:
        """The peers of the bitset ``peers`` in blocks that share the owner's verdict."""
        peer_sets = self.peer_sets
        # The conditions ``verdict`` keys on, in its order: each rule's peers, and the
        # peers it may match where it has them; with whether the rule names a port.
        conditions: list[tuple[int, bool]] = []
        for r in self._tiers(direction, owner):
            conditions.append((peer_sets[r.peers], r.fixed_ports is None))
            if r.maybe >= 0:
                conditions.append((peer_sets[r.maybe], r.fixed_ports is None))
        blocks = [(peers, 0)]
        for n, (members, _) in enumerate(conditions):
            refined = []
            for bits, admitted in blocks:
                inside = bits & members
                if inside:
                    refined.append((inside, admitted | 1 << n))
                if inside != bits:
                    refined.append((bits ^ inside, admitted))
            blocks = refined
        for bits, admitted in blocks:
            named = any(admitted >> n & 1 and by_name for n, (_, by_name) in enumerate(conditions))
            if named and direction is Direction.EGRESS:
                # The destination is the peer: its named ports may differ from peer to peer.
                for p in bit_indexes(bits):
                    yield 1 << p, self.verdict(direction, owner, p)
                continue
            first = (bits & -bits).bit_length() - 1
            pair = (first, owner) if direction is Direction.INGRESS else (owner, first)
            yield bits, self.verdict(direction, *pair)

    def _tiers(self, direction: Direction, owner: int) -> tuple[AnyRule, ...]:
        """The rules that can decide for ``owner``, in the order the tiers apply them."""
        if self.calico and direction in self.calico[owner]:
            flat = self._calico_rules.get((direction, owner))
            if flat is None:
                rows = self.calico[owner][direction]
                flat = self._calico_rules[(direction, owner)] = tuple(
                    r for row in rows for r in row.rules
                )
            return flat
        row = self.cilium_row(direction, owner)
        return (
            *(row.deny if row else ()),
            *self.admin[owner].get(direction, ()),
            *(self.rules(direction, owner) or ()),
            *(row.allow if row else ()),
            *self.baseline[owner].get(direction, ()),
        )

    def _decide(self, direction: Direction, owner: int, peer: int, dst: int) -> Verdict:
        if self.calico and direction in self.calico[owner]:
            assert self.calico_walk is not None  # the compiler hands it in with the rows
            return self.calico_walk(self, self.calico[owner][direction], peer, dst)
        decisions: list[Decision] = []
        allowed = NO_CONNECTIONS
        undecided = ALL_CONNECTIONS
        passed = NO_CONNECTIONS
        row = self.cilium_row(direction, owner)
        if row is not None:
            # Cilium deny rules take precedence over every allow, of any kind or tier.
            for c in row.deny:
                if self.admits(c, peer):
                    hit = undecided & self.ports_at(c, dst)
                    if hit:
                        undecided = undecided - hit
                        decisions.append(Decision("Deny", hit, c))
        for r in self.admin[owner].get(direction, ()):
            if not undecided:
                break
            if not self.admits(r, peer):
                self._unknown(r, peer, undecided, dst, decisions)
                continue
            hit = undecided & self.ports_at(r, dst)
            if not hit:
                continue
            undecided = undecided - hit
            decisions.append(Decision(r.rule.action.decision, hit, r))
            if r.rule.action is AdminAction.PASS:
                passed = passed | hit
            elif r.rule.action.allows:
                allowed = allowed | hit
        remaining = undecided | passed  # what the NetworkPolicy tier decides
        if not remaining:
            return Verdict(allowed, tuple(decisions))
        rules = self.rules(direction, owner)
        cilium_isolating = row.isolating if row is not None else ()
        if rules is not None or cilium_isolating:
            # One NetworkPolicy tier: a pod selected by a NetworkPolicy or a default-deny
            # Cilium policy is isolated, and what any of their rules allows passes.
            np_allowed = NO_CONNECTIONS
            candidates: tuple[CompiledRule | CompiledCiliumRule, ...] = (
                *(rules or ()),
                *(row.allow if row is not None else ()),
            )
            for np_rule in candidates:
                if self.admits(np_rule, peer):
                    hit = remaining & self.ports_at(np_rule, dst)
                    if hit:
                        decisions.append(Decision("Allow", hit, np_rule))
                        np_allowed = np_allowed | hit
            denied = remaining - np_allowed
            if denied:
                isolating: tuple[NetworkPolicy | CiliumPolicy, ...] = (
                    *self.isolating[owner].get(direction, ()),
                    *cilium_isolating,
                )
                decisions.append(Decision("Isolate", denied, policies=isolating))
            return Verdict(allowed | np_allowed, tuple(decisions))
        # The baseline tier; a Pass there (v1alpha2) skips the rest of it: the default.
        passed = NO_CONNECTIONS
        for r in self.baseline[owner].get(direction, ()):
            if not remaining:
                break
            if not self.admits(r, peer):
                self._unknown(r, peer, remaining, dst, decisions)
            else:
                hit = remaining & self.ports_at(r, dst)
                if hit:
                    remaining = remaining - hit
                    decisions.append(Decision(r.rule.action.decision, hit, r))
                    if r.rule.action is AdminAction.PASS:
                        passed = passed | hit
                    elif r.rule.action.allows:
                        allowed = allowed | hit
        remaining = remaining | passed
        if remaining:
            decisions.append(Decision("Default", remaining))
        return Verdict(allowed | remaining, tuple(decisions))

    def _unknown(
        self,
        rule: AnyRule,
        peer: int,
        undecided: ConnectionSet,
        dst: int,
        decisions: list[Decision],
    ) -> None:
        """Record that ``rule`` is reached on ``undecided`` by a peer it may match."""
        hit = _unknown_hit(self, rule, peer, undecided, dst)
        if hit:
            decisions.append(Decision("Unknown", hit, rule))


def _unknown_hit(
    matcher: Matcher,
    rule: AnyRule,
    peer: int,
    undecided: ConnectionSet,
    dst: int,
) -> ConnectionSet:
    if rule.maybe < 0 or not (matcher.peer_sets[rule.maybe] >> peer) & 1:
        return NO_CONNECTIONS
    return undecided & matcher.ports_at(rule, dst)


def resolve_ports(
    entries: Sequence[PolicyPort], named_ports: Sequence[tuple[str, str, int]]
) -> ConnectionSet:
    """NetworkPolicy ports: a named port matches container ports of that name and protocol."""
    if not entries:
        return ALL_CONNECTIONS
    by_protocol: dict[str, PortSet] = {}
    for entry in entries:
        if entry.port is None:
            ports = ALL_PORTS
        elif isinstance(entry.port, int):
            ports = PortSet.of((entry.port, entry.end_port or entry.port))
        else:
            ports = PortSet.of(
                *(
                    (num, num)
                    for name, proto, num in named_ports
                    if name == entry.port and proto == entry.protocol
                )
            )
        by_protocol[entry.protocol] = by_protocol.get(entry.protocol, PortSet()) | ports
    return ConnectionSet.of(by_protocol)


def resolve_admin_ports(
    entries: Sequence[AdminPort] | None, named_ports: Sequence[tuple[str, str, int]]
) -> ConnectionSet:
    """ANP ports: a namedPort carries no protocol, so it matches the name under any protocol."""
    if entries is None:
        return ALL_CONNECTIONS
    by_protocol: dict[str, PortSet] = {}
    for entry in entries:
        if entry.name is None:
            pairs = [(entry.protocol, PortSet.of((entry.start, entry.end)))]
        else:
            pairs = [(p, PortSet.single(n)) for name, p, n in named_ports if name == entry.name]
        for protocol, ports in pairs:
            by_protocol[protocol] = by_protocol.get(protocol, PortSet()) | ports
    return ConnectionSet.of(by_protocol)


def bit_indexes(bits: int) -> list[int]:
    """Positions of the set bits, ascending: C-speed scans of the binary string, one
    Python step per set bit."""
    text = bin(bits)[:1:-1]  # least significant bit first, without "0b"
    out = []
    i = text.find("1")
    while i >= 0:
        out.append(i)
        i = text.find("1", i + 1)
    return out


def bitset_of(indexes: Iterable[int]) -> int:
    """The bitset of ``indexes``, built in one pass (or-ing in bits one at a time would
    copy the growing integer for each)."""
    positions = list(indexes)
    if not positions:
        return 0
    buffer = bytearray(max(positions) // 8 + 1)
    for i in positions:
        buffer[i >> 3] |= 1 << (i & 7)
    return int.from_bytes(buffer, "little")
