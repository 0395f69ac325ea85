"""Compile a tree's policies into a ``Matcher``: selectors become endpoint bitsets.

Selectors are evaluated with inverted indexes (label -> bitset of classes, key -> bitset,
namespace -> bitset), so a selector costs a few big-int operations however many pods
there are, and every distinct selector is evaluated once.

A ``Compilation`` keeps what compiling produced besides the matcher (the peer-set table
by key, each policy's compiled rules, the indexes), so that ``analysis.incremental`` can
derive the matcher of a slightly different tree without compiling it again.

Why one module of 490 lines: the inverted indexes (``Selectors``, ``PeerTable``) and
the compilation that uses them are one mechanism; each policy kind's compile step is short
and goes through the same indexes.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from analysis import calicowalk, ciliumcompile
from analysis.calicocompile import CalicoPeers, calico_networks, calico_rows
from analysis.calicoendpoints import account_map
from analysis.ciliumagent import agent_of
from analysis.ipranges import ExternalRange, block_networks, partition
from analysis.matcher import (
    CalicoTierRow,
    CompiledAdminRule,
    CompiledRule,
    Matcher,
    PodClass,
    bit_indexes,
    bitset_of,
    resolve_admin_ports,
    resolve_ports,
)
from analysis.model import (
    AdminPeer,
    AdminPolicy,
    Direction,
    IPBlock,
    IPNetwork,
    LabelRequirement,
    LabelSelector,
    NetworkPolicy,
    Peer,
    Tree,
)
from analysis.outside import is_outside_namespace

# What a rule's peers are, without source lines: rules with the same key share an entry
# of the matcher's ``peer_sets``. ("all",) is every endpoint (a rule without from/to).
PeerKey = tuple[object, ...]
ALL_PEERS: PeerKey = ("all",)

PolicyRules = Mapping[Direction, tuple[CompiledRule, ...]]
AdminRules = Mapping[Direction, tuple[CompiledAdminRule, ...]]


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
    nets.extend(calico_networks(tree))
    nets.extend(ciliumcompile.cilium_networks(tree))
    return nets


@dataclass(frozen=True, slots=True)
class Compilation:
    """A compiled tree: its matcher and what deriving another matcher from it reuses."""

    tree: Tree
    matcher: Matcher
    peer_keys: Mapping[PeerKey, int]  # key -> index in matcher.peer_sets
    policy_rules: Mapping[str, PolicyRules]  # NetworkPolicy id -> its compiled rules
    admin_rules: Mapping[str, AdminRules]  # admin policy id -> its compiled rules
    selectors: Selectors
    class_index: Mapping[PodClass, int]  # class -> endpoint
    # Peer keys by anchor (see ``_anchors``), made on the first derivation: a cache only.
    _anchors: dict[tuple[str, str], list[PeerKey]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def keys_for(self, pod_class: PodClass) -> set[PeerKey]:
        """The peer keys that may admit a pod of ``pod_class`` (a superset): those with a
        peer in its namespace, with a pod label it has, or with no such anchor at all."""
        anchors = self._anchors
        if not anchors:
            for key in self.peer_keys:
                for anchor in _anchors(key):
                    anchors.setdefault(anchor, []).append(key)
        found = set(anchors.get(("", ""), ()))
        found.update(anchors.get(("namespace", pod_class.namespace), ()))
        for label in pod_class.labels:
            found.update(anchors.get(label, ()))
        return found


def _anchors(key: PeerKey) -> set[tuple[str, str]]:
    """Conditions one of which every pod the key admits meets: ("namespace", ns) for a
    peer of the policy's own namespace, a (key, value) label its pod selector requires,
    or ("", "") for none (ranges meet none: a key of ipBlocks only has no anchor)."""
    if key[0] != "rule":
        return {("", "")}  # every endpoint, or an admin peer
    namespace = key[1]
    assert isinstance(namespace, str) and isinstance(key[2], tuple)
    found: set[tuple[str, str]] = set()
    for pod_selector, namespace_selector, ip_block in key[2]:
        if ip_block is not None:
            continue  # ranges only
        if namespace_selector is None:
            found.add(("namespace", namespace))
        elif pod_selector is not None and pod_selector.match_labels:
            found.add(pod_selector.match_labels[0])
        else:
            found.add(("", ""))
    return found


def compile_tree(tree: Tree, extra_networks: Iterable[IPNetwork] = ()) -> Matcher:
    return compile_full(tree, extra_networks).matcher


def compile_full(
    tree: Tree, extra_networks: Iterable[IPNetwork] = (), *, numbered_as: Matcher | None = None
) -> Compilation:
    """``tree`` compiled. ``numbered_as``: with that matcher's endpoint numbers (its
    external ranges, which must cut the tree's CIDRs; its classes first, kept empty and not
    live where the tree has none; the tree's other classes appended), so that a head
    compiled in full compares with its base row by row (``analysis.rederive``)."""
    present = {PodClass.of(w) for w in tree.workloads}
    if numbered_as is None:
        externals = partition([*tree_networks(tree), *extra_networks])
        classes = tuple(sorted(present))
    else:
        externals = numbered_as.externals
        known = set(numbered_as.classes)
        classes = (*numbered_as.classes, *sorted(present - known))
    first = len(externals)
    selectors = Selectors(list(enumerate(classes, first)), tree.namespace_labels(), externals)
    peers = PeerTable(selectors.evaluate)
    size = first + len(classes)

    policy_rules: dict[str, PolicyRules] = {}
    tables: dict[Direction, list[list[CompiledRule] | None]] = {d: [None] * size for d in Direction}
    isolating: list[dict[Direction, list[NetworkPolicy]]] = [{} for _ in range(size)]
    agent = agent_of(tree.cilium_agent)
    # Under the Cilium agent's `enable-policy: never` no NetworkPolicy is enforced either.
    for policy in tree.policies if agent.enforces else ():
        selected = selectors.selected(policy)
        if not selected:
            continue
        compiled = policy_rules[policy.id] = compile_policy(policy, peers)
        for direction, rules in compiled.items():
            table = tables[direction]
            for c in selected:
                current = table[c]
                if current is None:
                    current = table[c] = []
                current.extend(rules)
                isolating[c].setdefault(direction, []).append(policy)

    admin_rules: dict[str, AdminRules] = {}
    admin: list[dict[Direction, list[CompiledAdminRule]]] = [{} for _ in range(size)]
    baseline: list[dict[Direction, list[CompiledAdminRule]]] = [{} for _ in range(size)]
    beyond = bitset_of(i for i, c in enumerate(classes, first) if is_outside_namespace(c.namespace))
    for apolicy in tree.admin_policies:  # already in evaluation order
        target = baseline if apolicy.is_baseline else admin
        compiled_admin = admin_rules[apolicy.id] = compile_admin_policy(apolicy, peers)
        subjects = selectors.subjects(apolicy)
        if apolicy.is_baseline:
            # Whether a NetworkPolicy isolates a pod of an outside namespace is unknown, so
            # whether the baseline applies is too: it is left undecided (allowed).
            subjects &= ~beyond
        for c in bit_indexes(subjects):
            for direction, arules in compiled_admin.items():
                target[c].setdefault(direction, []).extend(arules)

    calico: tuple[dict[Direction, tuple[CalicoTierRow, ...]], ...] = ()
    if tree.calico:
        cpeers = CalicoPeers(
            list(enumerate(classes, first)),
            tree.namespace_labels(),
            externals,
            tree.calico.network_sets,
            size,
            account_map(tree.calico),
        )
        plain = peers.evaluate
        peers.evaluate = lambda key: cpeers.evaluate(key) if key[0] == "calico" else plain(key)
        calico = calico_rows(
            tree.calico, cpeers, peers.index, size, beyond, isolating, policy_rules, admin, baseline
        )
    np_ingress = (
        bitset_of(c for c in range(size) if Direction.INGRESS in isolating[c])
        if tree.cilium_policies or selectors.pseudo
        else 0
    )
    cilium = ciliumcompile.compile_cilium(tree, selectors, peers, size, beyond, np_ingress, agent)

    # Classes under the same policies share one tuple of rules: a map's column reads each
    # source's egress once per tuple (see ``reachability.read_column``).
    shared: dict[tuple[int, ...], tuple[CompiledRule, ...]] = {}

    def interned(rules: list[CompiledRule] | None) -> tuple[CompiledRule, ...] | None:
        if rules is None:
            return None
        return shared.setdefault(tuple(map(id, rules)), tuple(rules))

    matcher = Matcher(
        externals=externals,
        classes=classes,
        peer_sets=tuple(peers.sets),
        ingress=tuple(map(interned, tables[Direction.INGRESS])),
        egress=tuple(map(interned, tables[Direction.EGRESS])),
        isolating=tuple({d: tuple(ps) for d, ps in iso.items()} for iso in isolating),
        admin=tuple({d: tuple(rs) for d, rs in row.items()} for row in admin),
        baseline=tuple({d: tuple(rs) for d, rs in row.items()} for row in baseline),
        live=(1 << size) - 1
        if numbered_as is None
        else (1 << first) - 1 | bitset_of(i for i, c in enumerate(classes, first) if c in present),
        tiered=bool(tree.admin_policies or tree.cilium_policies or cilium) or any(calico),
        beyond=beyond,
        calico=calico,
        calico_walk=calicowalk.decide,
        cilium=cilium,
        pseudo=bitset_of(i for bits in selectors.pseudo.values() for i in bit_indexes(bits)),
    )
    class_index = {c: i for i, c in enumerate(classes, first)}
    return Compilation(tree, matcher, peers.keys, policy_rules, admin_rules, selectors, class_index)


def compile_policy(policy: NetworkPolicy, peers: PeerTable) -> PolicyRules:
    """The policy's rules per direction it isolates (possibly none: deny all)."""
    out: dict[Direction, tuple[CompiledRule, ...]] = {}
    for direction in Direction:
        if direction in policy.policy_types:
            out[direction] = tuple(
                CompiledRule(
                    policy=policy,
                    rule=rule,
                    peers=peers.index(peers.rule_key(policy.namespace, rule.peers)),
                    fixed_ports=(
                        None
                        if any(isinstance(p.port, str) for p in rule.ports)
                        else resolve_ports(rule.ports, ())
                    ),
                )
                for rule in policy.rules(direction)
            )
    return out


def compile_admin_policy(policy: AdminPolicy, peers: PeerTable) -> AdminRules:
    out: dict[Direction, tuple[CompiledAdminRule, ...]] = {}
    for direction in Direction:
        rules = policy.rules(direction)
        if rules:
            out[direction] = tuple(
                CompiledAdminRule(
                    policy=policy,
                    rule=rule,
                    peers=peers.index(admin_key(rule.peers)),
                    fixed_ports=(
                        None
                        if rule.ports is not None and any(p.name is not None for p in rule.ports)
                        else resolve_admin_ports(rule.ports, ())
                    ),
                    maybe=-1 if not may_hold_pods(rule.peers) else peers.index(MAYBE_PODS),
                )
                for rule in rules
            )
    return out


def admin_key(peers: Sequence[AdminPeer]) -> PeerKey:
    return (
        "admin",
        tuple((p.kind, p.namespace_selector, p.pod_selector, p.networks) for p in peers),
    )


# Extension point for the CNI policy kinds (Cilium, Calico, …): a peer key whose first item
# names a kind here is evaluated by that kind's function (``Selectors.evaluate``).
KEY_EVALUATORS: dict[str, Callable[[Selectors, PeerKey], int]] = {
    ciliumcompile.KEY: ciliumcompile.evaluate_key,
}

# Every workload (host-network ones too): whose IPs a `networks` peer may hold.
MAYBE_PODS: PeerKey = ("maybe",)


def covers_every_address(networks: Iterable[IPNetwork]) -> bool:
    """Whether the CIDRs hold all of IPv4 and all of IPv6, so every pod's IP, whatever
    the cluster's families (the API: cluster-internal traffic is checked against them)."""
    nets = list(networks)
    v4 = ipaddress.collapse_addresses(n for n in nets if isinstance(n, ipaddress.IPv4Network))
    v6 = ipaddress.collapse_addresses(n for n in nets if isinstance(n, ipaddress.IPv6Network))
    return [str(n) for n in v4] == ["0.0.0.0/0"] and [str(n) for n in v6] == ["::/0"]


def may_hold_pods(peers: Sequence[AdminPeer]) -> bool:
    """A rule with `networks` peers that may or may not hold a pod's IP."""
    nets = [n for p in peers for n in p.networks]
    return bool(nets) and not covers_every_address(nets)


class PeerTable:
    """The peer sets of compiled rules, one entry per distinct key (grows as rules are
    compiled; a derived matcher copies its base's table and appends)."""

    def __init__(
        self,
        evaluate: Callable[[PeerKey], int],
        keys: Mapping[PeerKey, int] | None = None,
        sets: Sequence[int] = (),
    ) -> None:
        self.evaluate = evaluate
        self.keys: dict[PeerKey, int] = dict(keys or {})
        self.sets: list[int] = list(sets)

    @staticmethod
    def rule_key(namespace: str, peers: Sequence[Peer]) -> PeerKey:
        if not peers:
            return ALL_PEERS
        return (
            "rule",
            namespace,
            tuple((p.pod_selector, p.namespace_selector, p.ip_block) for p in peers),
        )

    def index(self, key: PeerKey) -> int:
        found = self.keys.get(key)
        if found is None:
            found = self.keys[key] = len(self.sets)
            self.sets.append(self.evaluate(key))
        return found


class Selectors:
    """Selector evaluation over inverted indexes of some pod classes, given with their
    endpoint numbers, and of the external ranges (endpoints ``0..len(ranges)-1``)."""

    def __init__(
        self,
        classes: Sequence[tuple[int, PodClass]],
        ns_labels: Mapping[str, Mapping[str, str]],
        ranges: Sequence[ExternalRange],
    ) -> None:
        self.ns_labels = ns_labels
        self.ranges = ranges
        self.everyone = (1 << len(ranges)) - 1
        # Host-network pods carry labels but no policy can select them.
        self.selectable = 0
        self.by_label: dict[tuple[str, str], int] = {}
        self.by_key: dict[str, int] = {}
        self.by_namespace: dict[str, int] = {}
        # Cilium's peers that are not pods (analysis.ciliumpeers), by their one label.
        self.pseudo: dict[tuple[str, str], int] = {}
        self.by_account: dict[str, int] = {}  # service account name -> selectable classes
        for i, c in classes:
            bit = 1 << i
            self.everyone |= bit
            self.by_namespace[c.namespace] = self.by_namespace.get(c.namespace, 0) | bit
            if c.host_network:
                if not c.namespace:
                    for kv in c.labels:
                        self.pseudo[kv] = self.pseudo.get(kv, 0) | bit
                continue
            self.selectable |= bit
            self.by_account[c.service_account] = self.by_account.get(c.service_account, 0) | bit
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
            for name, bits in self.by_namespace.items():
                labels = self.ns_labels.get(name)
                if labels is not None and selector.matches(labels):
                    hit |= bits
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

    def subjects(self, policy: AdminPolicy) -> int:
        bits = self.namespaces(policy.subject_namespaces)
        if policy.subject_pods is not None:
            bits &= self.pods(policy.subject_pods)
        return bits

    def ranges_in(self, match: IPBlock | tuple[IPNetwork, ...]) -> int:
        """Bitset of the external ranges an ipBlock (or any of some networks) holds."""
        return self._ranges_in(match)

    def _ranges_in(self, match: IPBlock | tuple[IPNetwork, ...]) -> int:
        bits = 0
        for j, ext in enumerate(self.ranges):
            if (
                ext.matched_by(match)
                if isinstance(match, IPBlock)
                else any(ext.inside(n) for n in match)
            ):
                bits |= 1 << j
        return bits

    def evaluate(self, key: PeerKey) -> int:
        """The endpoints a peer key admits."""
        if key == ALL_PEERS:
            return self.everyone
        custom = KEY_EVALUATORS.get(key[0]) if isinstance(key[0], str) else None
        if custom is not None:
            return custom(self, key)
        bits = 0
        if key[0] == "rule":
            namespace = key[1]
            assert isinstance(namespace, str) and isinstance(key[2], tuple)
            for peer in key[2]:
                bits |= self._peer(namespace, *peer)
        elif key == MAYBE_PODS:
            bits = self.everyone & ~((1 << len(self.ranges)) - 1)
        else:
            assert isinstance(key[1], tuple)
            every_network: list[IPNetwork] = []
            for kind, ns_selector, pod_selector, networks in key[1]:
                bits |= self._admin_peer(kind, ns_selector, pod_selector, networks)
                every_network.extend(networks)
            if every_network and covers_every_address(every_network):
                bits |= self.everyone  # every IP: every pod and node too
        return bits

    def _peer(
        self,
        namespace: str,
        pod_selector: LabelSelector | None,
        namespace_selector: LabelSelector | None,
        ip_block: IPBlock | None,
    ) -> int:
        key = (namespace, pod_selector, namespace_selector, ip_block)
        hit = self._peer_cache.get(key)
        if hit is None:
            if ip_block is not None:
                hit = self._ranges_in(ip_block)
            else:
                in_namespaces = (
                    self.by_namespace.get(namespace, 0)
                    if namespace_selector is None
                    else self.namespaces(namespace_selector)
                )
                hit = self.pods(pod_selector or LabelSelector()) & in_namespaces
            self._peer_cache[key] = hit
        return hit

    def _admin_peer(
        self,
        kind: str,
        namespace_selector: LabelSelector | None,
        pod_selector: LabelSelector | None,
        networks: tuple[IPNetwork, ...],
    ) -> int:
        if kind == "networks":
            return self._ranges_in(networks)
        if kind in ("nodes", "domainNames"):
            # Node IPs and DNS answers are not in a manifest tree: the tree reports these
            # peers as not analysed (``Tree.unanalysed``) and they match no endpoint.
            return 0
        assert namespace_selector is not None
        bits = self.namespaces(namespace_selector)
        if kind == "pods" and pod_selector is not None:
            bits &= self.pods(pod_selector)
        return bits
