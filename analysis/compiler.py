"""Compile a tree's policies into a ``Matcher``: selectors become endpoint bitsets.

Selectors are evaluated with inverted indexes (label -> bitset of classes, key -> bitset,
namespace -> bitset), so a selector costs a few big-int operations however many pods
there are, and every distinct selector is evaluated once.
"""

from __future__ import annotations

from collections.abc import Iterable

from analysis.ipranges import ExternalRange, block_networks, partition
from analysis.matcher import (
    CompiledAdminRule,
    CompiledRule,
    Matcher,
    PodClass,
    bit_indexes,
    resolve_admin_ports,
    resolve_ports,
)
from analysis.model import (
    AdminPeer,
    AdminPolicy,
    AdminRule,
    Direction,
    IPBlock,
    IPNetwork,
    LabelRequirement,
    LabelSelector,
    NetworkPolicy,
    Peer,
    PolicyRule,
    Tree,
)


def tree_networks(tree: Tree) -> list[IPNetwork]:
    """Every CIDR an ipBlock or an ANP `networks` peer names: where external ranges split."""
    blocks: list[IPBlock] = [
        peer.ip_block
        for policy in tree.policies
        for rule in policy.ingress + policy.egress
        for peer in rule.peers
        if peer.ip_block is not None
    ]
    nets = block_networks(blocks)
    for admin in tree.admin_policies:
        for arule in admin.ingress + admin.egress:
            for apeer in arule.peers:
                nets.extend(apeer.networks)
    return nets


def compile_tree(tree: Tree, extra_networks: Iterable[IPNetwork] = ()) -> Matcher:
    classes = tuple(sorted({PodClass.of(w) for w in tree.workloads}))
    externals = partition([*tree_networks(tree), *extra_networks])
    compiler = _Compiler(classes, externals, tree.namespace_labels())

    tables: dict[Direction, list[list[CompiledRule] | None]] = {
        d: [None] * len(classes) for d in Direction
    }
    isolating: list[dict[Direction, list[NetworkPolicy]]] = [{} for _ in classes]
    for policy in tree.policies:
        selected = compiler.selected(policy)
        if not selected:
            continue
        for direction in Direction:
            if direction not in policy.policy_types:
                continue
            compiled = [compiler.compile_rule(policy, r) for r in policy.rules(direction)]
            table = tables[direction]
            for c in selected:
                current = table[c]
                if current is None:
                    current = table[c] = []
                current.extend(compiled)
                isolating[c].setdefault(direction, []).append(policy)

    admin: list[dict[Direction, list[CompiledAdminRule]]] = [{} for _ in classes]
    baseline: list[dict[Direction, list[CompiledAdminRule]]] = [{} for _ in classes]
    for apolicy in tree.admin_policies:  # already in evaluation order
        target = baseline if apolicy.is_baseline else admin
        subjects = compiler.subjects(apolicy)
        for direction in Direction:
            compiled_admin = [
                compiler.compile_admin_rule(apolicy, r) for r in apolicy.rules(direction)
            ]
            if not compiled_admin:
                continue
            for c in subjects:
                target[c].setdefault(direction, []).extend(compiled_admin)

    def freeze(
        table: list[list[CompiledRule] | None],
    ) -> tuple[tuple[CompiledRule, ...] | None, ...]:
        return tuple(None if rules is None else tuple(rules) for rules in table)

    def freeze_admin(
        table: list[dict[Direction, list[CompiledAdminRule]]],
    ) -> tuple[dict[Direction, tuple[CompiledAdminRule, ...]], ...]:
        return tuple({d: tuple(rs) for d, rs in row.items()} for row in table)

    return Matcher(
        classes=classes,
        externals=externals,
        ingress=freeze(tables[Direction.INGRESS]),
        egress=freeze(tables[Direction.EGRESS]),
        isolating=tuple({d: tuple(ps) for d, ps in iso.items()} for iso in isolating),
        admin=freeze_admin(admin),
        baseline=freeze_admin(baseline),
    )


class _Compiler:
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
        """Bitset of the selectable classes in namespaces whose labels match."""
        hit = self._namespace_cache.get(selector)
        if hit is None:
            hit = 0
            for name, labels in self.ns_labels.items():
                if selector.matches(labels):
                    hit |= self.by_namespace.get(name, 0)
            hit &= self.selectable
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

    def subjects(self, policy: AdminPolicy) -> list[int]:
        bits = self.namespaces(policy.subject_namespaces)
        if policy.subject_pods is not None:
            bits &= self.pods(policy.subject_pods)
        return bit_indexes(bits)

    def _externals_in(self, match: object) -> int:
        base, bits = len(self.classes), 0
        for j, ext in enumerate(self.externals):
            if (
                ext.matched_by(match)
                if isinstance(match, IPBlock)
                else any(ext.inside(n) for n in match)  # type: ignore[attr-defined]
            ):
                bits |= 1 << (base + j)
        return bits

    def peer(self, namespace: str, peer: Peer) -> int:
        # Keyed without the source line: the same peer written twice is evaluated once.
        key = (namespace, peer.pod_selector, peer.namespace_selector, peer.ip_block)
        hit = self._peer_cache.get(key)
        if hit is None:
            if peer.ip_block is not None:
                hit = self._externals_in(peer.ip_block)
            else:
                in_namespaces = (
                    self.by_namespace.get(namespace, 0)
                    if peer.namespace_selector is None
                    else self.namespaces(peer.namespace_selector)
                )
                hit = self.pods(peer.pod_selector or LabelSelector()) & in_namespaces
            self._peer_cache[key] = hit
        return hit

    def admin_peer(self, peer: AdminPeer) -> int:
        if peer.kind == "networks":
            return self._externals_in(peer.networks)
        if peer.kind == "nodes":
            return 0  # nodes are not endpoints of a manifest tree
        assert peer.namespace_selector is not None
        bits = self.namespaces(peer.namespace_selector)
        if peer.kind == "pods" and peer.pod_selector is not None:
            bits &= self.pods(peer.pod_selector)
        return bits

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

    def compile_admin_rule(self, policy: AdminPolicy, rule: AdminRule) -> CompiledAdminRule:
        peers = 0
        for p in rule.peers:
            peers |= self.admin_peer(p)
        named = rule.ports is not None and any(p.name is not None for p in rule.ports)
        return CompiledAdminRule(
            policy=policy,
            rule=rule,
            peers=peers,
            fixed_ports=None if named else resolve_admin_ports(rule.ports, ()),
        )
