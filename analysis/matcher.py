"""A tree's policies compiled against its endpoints: who each policy selects, whom each rule
admits, on which ports.

Pods are grouped into ``PodClass``es: pods with the same namespace (and so the same
namespace labels), the same labels, the same named ports and the same hostNetwork flag are
treated identically by every policy, so selectors are evaluated once per class. Endpoints
are numbered: classes ``0..C-1``, then external ranges ``C..C+X-1``; a set of endpoints is
a Python int used as a bitset, so "which sources does this rule admit" is one integer and
combining rules is one ``|``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from analysis.ipranges import ExternalRange, block_networks, partition
from analysis.model import (
    Direction,
    IPNetwork,
    LabelRequirement,
    Labels,
    LabelSelector,
    NetworkPolicy,
    Peer,
    PolicyPort,
    PolicyRule,
    Tree,
    Workload,
)
from analysis.ports import (
    ALL_CONNECTIONS,
    ALL_PORTS,
    NO_CONNECTIONS,
    ConnectionSet,
    PortSet,
)


@dataclass(frozen=True, slots=True, order=True)
class PodClass:
    namespace: str
    labels: Labels
    named_ports: tuple[tuple[str, str, int], ...]  # (name, protocol, port)
    host_network: bool

    @staticmethod
    def of(workload: Workload) -> PodClass:
        named = tuple(sorted((p.name, p.protocol, p.port) for p in workload.ports if p.name))
        return PodClass(workload.namespace, workload.labels, named, workload.host_network)


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """A rule with its peers resolved to an endpoint bitset (``None``: every peer)."""

    policy: NetworkPolicy
    rule: PolicyRule
    peers: int | None
    fixed_ports: ConnectionSet | None  # the rule's ports when no entry is a named port

    def admits(self, endpoint: int) -> bool:
        return self.peers is None or (self.peers >> endpoint) & 1 == 1


@dataclass(frozen=True, slots=True)
class Matcher:
    classes: tuple[PodClass, ...]
    externals: tuple[ExternalRange, ...]
    # per class: the rules in force for each direction; None = not isolated in it
    ingress: tuple[tuple[CompiledRule, ...] | None, ...]
    egress: tuple[tuple[CompiledRule, ...] | None, ...]
    # per class: the policies selecting it for each direction (what isolates it)
    isolating: tuple[dict[Direction, tuple[NetworkPolicy, ...]], ...] = field(repr=False)

    @property
    def size(self) -> int:
        return len(self.classes) + len(self.externals)

    def is_external(self, endpoint: int) -> bool:
        return endpoint >= len(self.classes)

    def rules(self, direction: Direction, endpoint: int) -> tuple[CompiledRule, ...] | None:
        """Rules governing ``endpoint`` in ``direction``; None when it is not isolated."""
        if self.is_external(endpoint):
            return None
        table = self.ingress if direction is Direction.INGRESS else self.egress
        return table[endpoint]

    def ports_at(self, rule: CompiledRule, dst: int) -> ConnectionSet:
        """The rule's ports with named ports resolved on the destination ``dst``."""
        if rule.fixed_ports is not None:
            return rule.fixed_ports
        named = () if self.is_external(dst) else self.classes[dst].named_ports
        return resolve_ports(rule.rule.ports, named)

    def contributions(
        self, direction: Direction, src: int, dst: int
    ) -> list[tuple[CompiledRule, ConnectionSet]] | None:
        """Each rule that admits this pair in ``direction``, with the ports it allows."""
        owner, peer = (dst, src) if direction is Direction.INGRESS else (src, dst)
        rules = self.rules(direction, owner)
        if rules is None:
            return None
        out = []
        for r in rules:
            if r.admits(peer):
                ports = self.ports_at(r, dst)
                if ports:
                    out.append((r, ports))
        return out

    def allowed(self, direction: Direction, src: int, dst: int) -> ConnectionSet:
        parts = self.contributions(direction, src, dst)
        if parts is None:
            return ALL_CONNECTIONS
        out = NO_CONNECTIONS
        for _, ports in parts:
            out = out | ports
        return out


def resolve_ports(
    entries: Sequence[PolicyPort], named_ports: Sequence[tuple[str, str, int]]
) -> ConnectionSet:
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


def compile_tree(tree: Tree, extra_networks: Iterable[IPNetwork] = ()) -> Matcher:
    classes = tuple(sorted({PodClass.of(w) for w in tree.workloads}))
    blocks = [
        peer.ip_block
        for policy in tree.policies
        for rule in policy.ingress + policy.egress
        for peer in rule.peers
        if peer.ip_block is not None
    ]
    externals = partition([*block_networks(blocks), *extra_networks])
    ns_labels = tree.namespace_labels()
    compiler = _Compiler(classes, externals, ns_labels)

    ingress: list[list[CompiledRule] | None] = [None] * len(classes)
    egress: list[list[CompiledRule] | None] = [None] * len(classes)
    isolating: list[dict[Direction, list[NetworkPolicy]]] = [{} for _ in classes]
    for policy in tree.policies:
        selected = compiler.selected(policy)
        if not selected:
            continue
        for direction, table in ((Direction.INGRESS, ingress), (Direction.EGRESS, egress)):
            if direction not in policy.policy_types:
                continue
            compiled = [compiler.compile_rule(policy, r) for r in policy.rules(direction)]
            for c in selected:
                current = table[c]
                if current is None:
                    current = table[c] = []
                current.extend(compiled)
                isolating[c].setdefault(direction, []).append(policy)

    def freeze(
        table: list[list[CompiledRule] | None],
    ) -> tuple[tuple[CompiledRule, ...] | None, ...]:
        return tuple(None if rules is None else tuple(rules) for rules in table)

    return Matcher(
        classes=classes,
        externals=externals,
        ingress=freeze(ingress),
        egress=freeze(egress),
        isolating=tuple({d: tuple(ps) for d, ps in iso.items()} for iso in isolating),
    )


class _Compiler:
    """Evaluates selectors with inverted indexes (label -> class bitset), caching results."""

    def __init__(
        self,
        classes: tuple[PodClass, ...],
        externals: tuple[ExternalRange, ...],
        ns_labels: dict[str, dict[str, str]],
    ) -> None:
        self.classes = classes
        self.externals = externals
        self.ns_labels = ns_labels
        # Host-network pods carry labels but no policy can select them.
        self.selectable = 0
        self.by_label: dict[tuple[str, str], int] = {}
        self.by_key: dict[str, int] = {}
        self.by_namespace: dict[str, int] = {}
        for i, c in enumerate(classes):
            bit = 1 << i
            self.by_namespace[c.namespace] = self.by_namespace.get(c.namespace, 0) | bit
            if c.host_network:
                continue
            self.selectable |= bit
            for kv in c.labels:
                self.by_label[kv] = self.by_label.get(kv, 0) | bit
                self.by_key[kv[0]] = self.by_key.get(kv[0], 0) | bit
        self._namespace_cache: dict[LabelSelector, int] = {}
        self._pod_cache: dict[LabelSelector, int] = {}
        self._peer_cache: dict[tuple[object, ...], int] = {}

    def namespaces(self, selector: LabelSelector) -> int:
        """Bitset of the classes in namespaces whose labels match."""
        hit = self._namespace_cache.get(selector)
        if hit is None:
            hit = 0
            for name, labels in self.ns_labels.items():
                if selector.matches(labels):
                    hit |= self.by_namespace.get(name, 0)
            self._namespace_cache[selector] = hit
        return hit

    def pods(self, selector: LabelSelector) -> int:
        """Bitset of selectable classes whose labels match (any namespace)."""
        hit = self._pod_cache.get(selector)
        if hit is None:
            hit = self.selectable
            for kv in selector.match_labels:
                hit &= self.by_label.get(kv, 0)
            for req in selector.match_expressions:
                hit &= self._requirement(req)
            self._pod_cache[selector] = hit
        return hit

    def _requirement(self, req: LabelRequirement) -> int:
        if req.operator in ("In", "NotIn"):
            bits = 0
            for value in req.values:
                bits |= self.by_label.get((req.key, value), 0)
            return bits if req.operator == "In" else self.selectable & ~bits
        bits = self.by_key.get(req.key, 0)
        return bits if req.operator == "Exists" else self.selectable & ~bits

    def selected(self, policy: NetworkPolicy) -> list[int]:
        return bit_indexes(
            self.pods(policy.pod_selector) & self.by_namespace.get(policy.namespace, 0)
        )

    def peer(self, namespace: str, peer: Peer) -> int:
        # Keyed without the source line: the same peer written twice is evaluated once.
        key = (namespace, peer.pod_selector, peer.namespace_selector, peer.ip_block)
        hit = self._peer_cache.get(key)
        if hit is not None:
            return hit
        if peer.ip_block is not None:
            base = len(self.classes)
            hit = 0
            for j, ext in enumerate(self.externals):
                if ext.matched_by(peer.ip_block):
                    hit |= 1 << (base + j)
        else:
            in_namespaces = (
                self.by_namespace.get(namespace, 0)
                if peer.namespace_selector is None
                else self.namespaces(peer.namespace_selector)
            )
            hit = self.pods(peer.pod_selector or LabelSelector()) & in_namespaces
        self._peer_cache[key] = hit
        return hit

    def compile_rule(self, policy: NetworkPolicy, rule: PolicyRule) -> CompiledRule:
        peers: int | None = None
        if rule.peers:
            peers = 0
            for p in rule.peers:
                peers |= self.peer(policy.namespace, p)
        named = any(isinstance(p.port, str) for p in rule.ports)
        return CompiledRule(
            policy=policy,
            rule=rule,
            peers=peers,
            fixed_ports=None if named else resolve_ports(rule.ports, ()),
        )


def bit_indexes(bits: int) -> list[int]:
    """Positions of the set bits, ascending (linear in the bit length)."""
    return [i for i, b in enumerate(reversed(bin(bits)[2:])) if b == "1"]
