"""Calico policies compiled into the matcher: peer sets, and per endpoint and direction the
tiers that decide it (``Matcher.calico``; the walk is ``analysis.calicowalk``).

What Calico matches, as Felix gets it from libcalico-go's conversion
(libcalico-go/lib/backend/syncersv1/updateprocessors, Apache-2.0):

- A pod is an endpoint with its labels plus ``projectcalico.org/namespace``,
  ``projectcalico.org/orchestrator: k8s``, and, inherited from its namespace's profile where
  the pod does not set the same key, ``pcns.<label>`` for each namespace label and
  ``pcns.projectcalico.org/name``. A NetworkPolicy's ``selector`` is and-ed with
  ``projectcalico.org/namespace == '<its namespace>'``; a GlobalNetworkPolicy's
  ``namespaceSelector`` is read over the ``pcns.`` labels.
- A rule's peer matches with every field it sets: its selector, limited (once any selector
  field is set) to the policy's namespace or the namespaceSelector's namespaces (``all()``:
  every namespace; ``global()``: no namespace, i.e. global network sets); ``notSelector``
  excludes what it matches anywhere; ``nets``/``notNets`` and ``ipVersion`` test the peer's
  address. Network sets are the external ranges inside their nets, with their labels
  (a NetworkSet also carries its namespace, and inherits its namespace's labels).
- A rule with CIDRs matches only addresses of their family (Felix renders it for that IP
  version alone; Calico refuses a rule mixing IPv4 and IPv6 CIDRs).
- Pod and node addresses are not in a manifest: ``nets``, ``notNets`` and ``ipVersion``
  match external ranges exactly and workloads "maybe", as admin ``networks`` do: the rule
  is evaluated as not matching them, and reaching it undecided is reported.

Why one module of 460 lines: the peer sets, the tier rows and the conditions that split
pods outside the tree (``outside_selectors``) all read Calico's selectors as the conversion
above makes them; kept together, they cannot drift apart.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from analysis import calicoselector as cs
from analysis.calicoendpoints import endpoint_labels, entity_selector, policy_selector
from analysis.calicomodel import (
    DEFAULT_TIER,
    KUBE_ADMIN_TIER,
    KUBE_BASELINE_TIER,
    KUBERNETES_POLICY_ORDER,
    CalicoBackends,
    CalicoNetworkSet,
    CalicoObjects,
    CalicoPolicy,
    CalicoRule,
)
from analysis.calicotree import unsettled
from analysis.ciliummodel import SERVICE_ACCOUNT
from analysis.ipranges import ExternalRange
from analysis.matcher import (
    AnyRule,
    CalicoTierRow,
    CompiledAdminRule,
    CompiledCalicoRule,
    CompiledRule,
    PodClass,
    bit_indexes,
)
from analysis.model import (
    NAMESPACE_NAME_LABEL,
    AdminPolicy,
    Direction,
    IPNetwork,
    LabelRequirement,
    LabelSelector,
    NetworkPolicy,
    Tree,
)

PeerKey = tuple[object, ...]
Rows = dict[Direction, tuple[CalicoTierRow, ...]]


def calico_networks(tree: Tree) -> list[IPNetwork]:
    """Every CIDR of the tree's Calico rules and network sets: where ranges split."""
    calico = tree.calico
    if calico is None:
        return []
    nets: list[IPNetwork] = [n for s in calico.network_sets for n in s.nets]
    for policy in calico.policies:
        for rule in policy.ingress + policy.egress:
            for entity in (rule.src, rule.dst):
                nets.extend(entity.nets + entity.not_nets)
    return nets


def set_labels(network_set: CalicoNetworkSet, ns_labels: Mapping[str, str]) -> dict[str, str]:
    if not network_set.namespace:
        return dict(network_set.labels)
    labels = {f"{cs.NAMESPACE_PREFIX}{k}": v for k, v in ns_labels.items()}
    labels[cs.NAMESPACE_PREFIX + cs.LABEL_NAME] = network_set.namespace
    labels.update(network_set.labels)
    labels[cs.LABEL_NAMESPACE] = network_set.namespace
    return labels


class CalicoPeers:
    """Evaluates Calico peer keys over the matcher's endpoints: ranges ``0..R-1`` and pod
    classes; network sets are evaluated as items of their own, then become their ranges."""

    def __init__(
        self,
        classes: Sequence[tuple[int, PodClass]],
        ns_labels: Mapping[str, Mapping[str, str]],
        ranges: Sequence[ExternalRange],
        network_sets: Sequence[CalicoNetworkSet],
        size: int,
        accounts: Mapping[tuple[str, str], Mapping[str, str]] | None = None,
    ) -> None:
        self.ranges = ranges
        self.ns_labels = ns_labels
        self.range_bits = (1 << len(ranges)) - 1
        self.classes = classes
        self.workloads = 0
        items: list[tuple[int, Mapping[str, str]]] = []
        self.labels: dict[int, dict[str, str]] = {}
        for i, c in classes:
            self.workloads |= 1 << i
            if not c.host_network:  # not an endpoint Calico's selectors see
                labels = endpoint_labels(c, ns_labels.get(c.namespace, {}), accounts)
                self.labels[i] = labels
                items.append((i, labels))
        self.class_bits = self.workloads
        self.size = size
        self.set_ranges: list[int] = []
        for j, network_set in enumerate(network_sets):
            items.append(
                (size + j, set_labels(network_set, ns_labels.get(network_set.namespace, {})))
            )
            self.set_ranges.append(self._inside(network_set.nets))
        self.index = cs.LabelIndex(items)
        self.everyone = self.range_bits | self.workloads

    def backends(self, backends: CalicoBackends) -> int:
        """The pods a Service's selector selects (host-network ones too: their address,
        their node's, is in the Service's EndpointSlices). A namespace is known by its name
        label: a representative namespace (analysis.outside) carries the name it stands for."""
        bits = 0
        for i, c in self.classes:
            own = self.ns_labels.get(c.namespace, {}).get(NAMESPACE_NAME_LABEL, c.namespace)
            if backends.selects(own, c.labels):
                bits |= 1 << i
        return bits

    def _inside(self, nets: Sequence[IPNetwork]) -> int:
        bits = 0
        for j, ext in enumerate(self.ranges):
            if any(ext.inside(n) for n in nets):
                bits |= 1 << j
        return bits

    def selected(self, node: cs.Node) -> int:
        """Endpoints a selector matches: classes by their labels, ranges by the network
        sets holding them."""
        items = self.index.bits(node)
        bits = items & ((1 << self.size) - 1)
        sets = items >> self.size
        j = 0
        while sets:
            if sets & 1:
                bits |= self.set_ranges[j]
            sets >>= 1
            j += 1
        return bits

    def evaluate(self, key: PeerKey) -> int:
        _, part, selector, not_selector, nets, not_nets, ip_version, backends = key
        bits = self.everyone
        if backends is not None:
            bits &= self.backends(backends)  # type: ignore[arg-type]
        if selector is not None:
            bits &= self.selected(selector)  # type: ignore[arg-type]
        if not_selector is not None:
            bits &= ~self.selected(not_selector)  # type: ignore[arg-type]
        addressed = bool(nets or not_nets or ip_version)
        if part == "maybe":
            return bits & self.workloads if addressed else 0
        if not addressed:
            return bits
        ranges = self.range_bits
        # Felix renders a rule with CIDRs only for their address family (one per rule).
        for version in {n.version for n in (*nets, *not_nets)}:  # type: ignore[misc]
            ranges &= self._inside([n for n in _EVERY if n.version == version])
        if nets:
            ranges &= self._inside(nets)  # type: ignore[arg-type]
        if not_nets:
            ranges &= ~self._inside(not_nets)  # type: ignore[arg-type]
        if ip_version:
            ranges &= self._inside([n for n in _EVERY if n.version == ip_version])
        return bits & ranges


_EVERY: tuple[IPNetwork, ...] = (
    ipaddress.ip_network("0.0.0.0/0"),
    ipaddress.ip_network("::/0"),
)


def peer_key(rule: CalicoRule, policy: CalicoPolicy, part: str) -> PeerKey:
    peer = rule.peer
    return (
        "calico",
        part,
        entity_selector(peer, policy.namespace),
        peer.not_selector,
        peer.nets,
        peer.not_nets,
        rule.ip_version,
        peer.backends,
    )


def owner_matches(rule: CalicoRule, policy: CalicoPolicy, labels: Mapping[str, str]) -> bool:
    """Whether the rule's entity for the policy's own endpoint matches it."""
    own = rule.own
    selector = entity_selector(own, policy.namespace)
    if selector is not None and not cs.matches(selector, labels):
        return False
    return own.not_selector is None or not cs.matches(own.not_selector, labels)


def compile_rule(
    policy: CalicoPolicy, rule: CalicoRule, index: Callable[[PeerKey], int]
) -> CompiledCalicoRule:
    addressed = bool(rule.peer.nets or rule.peer.not_nets or rule.ip_version)
    return CompiledCalicoRule(
        policy=policy,
        rule=rule,
        peers=index(peer_key(rule, policy, "sure")),
        fixed_ports=None if rule.has_named_ports() else rule.connections(()),
        maybe=index(peer_key(rule, policy, "maybe")) if addressed else -1,
    )


# The kinds libcalico-go keys Kubernetes' admin policies by, which Felix's policy sorter
# compares in "name/namespace/kind" when orders are equal (felix/calc/policy_sorter.go
# PolKVLess; libcalico-go/lib/backend/model: KindKubernetesClusterNetworkPolicy, and
# KindKubernetesAdminNetworkPolicy / KindKubernetesBaselineAdminNetworkPolicy in the
# releases that read the v1alpha1 kinds).
FELIX_KINDS = {
    "AdminNetworkPolicy": "KubernetesAdminNetworkPolicy",
    "BaselineAdminNetworkPolicy": "KubernetesBaselineAdminNetworkPolicy",
    "ClusterNetworkPolicy": "KubernetesClusterNetworkPolicy",
}
Entry = tuple[tuple[float, str], tuple[AnyRule, ...], NetworkPolicy | AdminPolicy | CalicoPolicy]


def calico_rows(
    calico: CalicoObjects,
    peers: CalicoPeers,
    index: Callable[[PeerKey], int],
    size: int,
    skip: int,
    isolating: Sequence[Mapping[Direction, Sequence[NetworkPolicy]]],
    policy_rules: Mapping[str, Mapping[Direction, tuple[CompiledRule, ...]]],
    admin: Sequence[Mapping[Direction, Sequence[CompiledAdminRule]]],
    baseline: Sequence[Mapping[Direction, Sequence[CompiledAdminRule]]],
) -> tuple[Rows, ...]:
    """Per endpoint, the tiers of each direction a Calico policy selects it for (endpoints
    of ``skip``, outside namespaces, have unknown policies of their own and get none)."""
    tiers = {t.name: t for t in calico.tiers}
    compiled: dict[tuple[int, Direction], tuple[CompiledCalicoRule, ...]] = {}
    selected: list[tuple[CalicoPolicy, int]] = []
    for policy in calico.policies:
        if policy.tier not in tiers or policy.host_only:
            continue  # not evaluated (calicotree reports each)
        bits = peers.selected(policy_selector(policy)) & peers.class_bits & ~skip
        if not bits:
            continue
        selected.append((policy, bits))
        for direction in policy.types:
            compiled[(id(policy), direction)] = tuple(
                compile_rule(policy, r, index)
                for r in policy.rules(direction)
                if r.action != "Log" and not unsettled(r) and not r.port_protocol_only_elsewhere()
            )
    # Per class and direction, the policies selecting it in ``calico.policies`` order:
    # one pass over each policy's selected classes, not every policy per class (a tree
    # with thousands of both would spend most of its compilation here).
    selecting: dict[tuple[int, Direction], list[CalicoPolicy]] = {}
    for policy, bits in selected:
        for c in bit_indexes(bits):
            for direction in dict.fromkeys(policy.types):
                selecting.setdefault((c, direction), []).append(policy)
    rows: list[Rows] = [{} for _ in range(size)]
    for c, labels in peers.labels.items():
        if (skip >> c) & 1:
            continue
        for direction in Direction:
            mine = selecting.get((c, direction))
            if not mine:
                continue
            by_tier: dict[str, list[Entry]] = {}
            for p in mine:
                own = tuple(
                    r for r in compiled[(id(p), direction)] if owner_matches(r.rule, p, labels)
                )
                by_tier.setdefault(p.tier, []).append((p.sort_key, own, p))
            for np in isolating[c].get(direction, ()):
                key = (KUBERNETES_POLICY_ORDER, f"{np.name}/{np.namespace}/KubernetesNetworkPolicy")
                np_rules = policy_rules[np.id].get(direction, ())
                by_tier.setdefault(DEFAULT_TIER, []).append((key, np_rules, np))
            for tier, found in ((KUBE_ADMIN_TIER, admin[c]), (KUBE_BASELINE_TIER, baseline[c])):
                for apolicy, arules in _by_policy(found.get(direction, ())):
                    order = math.inf if apolicy.priority is None else float(apolicy.priority)
                    by_tier.setdefault(tier, []).append(
                        ((order, f"{apolicy.name}//{FELIX_KINDS[apolicy.kind]}"), arules, apolicy)
                    )
            row = []
            for tier_name, entries in by_tier.items():
                entries.sort(key=lambda e: e[0])
                row.append(
                    CalicoTierRow(
                        tiers[tier_name],
                        tuple(r for _, rs, _ in entries for r in rs),
                        tuple(p for _, _, p in entries),
                    )
                )
            row.sort(key=lambda r: r.tier.sort_key)
            rows[c][direction] = tuple(row)
    return tuple(rows)


def _by_policy(
    rules: Sequence[CompiledAdminRule],
) -> list[tuple[AdminPolicy, tuple[CompiledAdminRule, ...]]]:
    out: list[tuple[AdminPolicy, list[CompiledAdminRule]]] = []
    for r in rules:
        if not out or out[-1][0] is not r.policy:
            out.append((r.policy, []))
        out[-1][1].append(r)
    return [(p, tuple(rs)) for p, rs in out]


# --- representatives of pods outside the tree (analysis.outside) -------------------------

TEXT_OPERATORS = ("contains", "starts with", "ends with")


@dataclass(frozen=True, slots=True)
class TextRequirement(LabelRequirement):
    """Calico's ``contains``/``starts with``/``ends with`` on one label (``operator`` the
    Calico word, ``values`` the one string), which no Kubernetes operator says: made only
    by ``outside_selectors``, read only by ``analysis.outside`` (which splits a label's
    values by it exactly), and matching as Calico does (the label is needed)."""

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.key)
        return value is not None and cs.compare(self.operator, value, self.values[0])


def outside_selectors(
    tree: Tree,
) -> tuple[list[LabelSelector], list[tuple[str | None, LabelSelector | None, LabelSelector]]]:
    """The Calico selectors' conditions as Kubernetes label selectors, for making
    representatives: (namespace selectors, (namespace name or None, namespace selector or
    None, pod selector)).

    A selector that is a conjunction of conditions on one label each (``==``, ``!=``,
    ``in``, ``not in``, ``has``, ``!has``: most selectors written) becomes the one label
    selector it is, applying where its namespace selector (when that is one too) matches:
    pods are then told apart as the selector tells them apart, not by every combination of
    its conditions (a tree of 10,000 workloads whose policies name many apps and tiers
    called for more than 4,096 representatives). Any other selector is split into one
    requirement per condition (``contains``/``starts with``/``ends with`` as a
    ``TextRequirement``), applying in every namespace its policy's rules can reach, so
    representatives cover every combination of them that labels can reach. Conditions on
    the namespace (``pcns.`` labels, ``projectcalico.org/namespace``) are the same for
    every pod of a namespace and tell no two of them apart.

    A pod's service account is a condition too: its name (``serviceAccounts.names``,
    ``projectcalico.org/serviceaccount``) on the representatives' account key
    (``SERVICE_ACCOUNT``), its labels (``serviceAccountSelector``,
    ``serviceAccounts.selector``) as ``pcsa.`` keys, the labels pods inherit from it. A
    rule's ``services`` selects the pods its Service's selector selects in the Service's
    namespace, by name (the namespace may be one the tree does not define)."""
    calico = tree.calico
    if calico is None:
        return [], []
    namespaces: list[LabelSelector] = []
    pods: list[tuple[str | None, LabelSelector | None, LabelSelector]] = []
    every = LabelSelector()

    def namespace_scope(node: cs.Node) -> LabelSelector:
        """Where pod selectors under this namespace selector apply (a superset)."""
        whole = _as_label_selector(node, namespace=True)
        if whole is not None:
            namespaces.append(whole)
            return whole
        namespaces.extend(_requirements(node, namespace=True))
        return every

    def pod_selectors(node: cs.Node) -> list[LabelSelector]:
        # What it asks of the pod's namespace tells namespaces apart.
        namespaces.extend(_namespace_conditions(node))
        whole = _as_label_selector(node, namespace=False)
        return [whole] if whole is not None else _requirements(node, namespace=False)

    for policy in calico.policies:
        # Where the policy's own selector applies, and where a rule's peer selector without
        # a namespaceSelector does: the policy's namespace, or (global) every namespace.
        own_name = policy.namespace or None
        own: LabelSelector | None = None if policy.namespace else every
        if policy.namespace_selector is not None:
            own = namespace_scope(policy.namespace_selector)
        subjects = [policy.selector]
        if policy.service_account_selector is not None:
            subjects.append(cs.prefixed(policy.service_account_selector, cs.SERVICE_ACCOUNT_PREFIX))
        for selector in pod_selectors(cs.conjunction(subjects)):
            pods.append((own_name, own, selector))
        peer_scope = None if policy.namespace else every
        for rule in policy.ingress + policy.egress:
            for entity in (rule.src, rule.dst):
                where_name, where = own_name, peer_scope
                if entity.namespace_selector is not None:
                    where_name, where = None, namespace_scope(entity.namespace_selector)
                positive = [n for n in (entity.accounts, entity.selector) if n is not None]
                for node in (cs.conjunction(positive) if positive else None, entity.not_selector):
                    if node is not None:
                        pods.extend((where_name, where, sel) for sel in pod_selectors(node))
                if entity.backends is not None:
                    name = LabelRequirement(
                        NAMESPACE_NAME_LABEL, "In", (entity.backends.namespace,)
                    )
                    home = LabelSelector((), (name,))
                    namespaces.append(home)
                    pods.append((None, home, LabelSelector(entity.backends.selector)))
    return namespaces, pods


def _pod_key(key: str) -> str | None:
    """The key a pod selector's condition on ``key`` splits representatives by; None: a
    condition on the pod's namespace, the same for every pod of it. A pod's own labels
    never carry the ``pcns.``/``pcsa.`` prefixes (libcalico-go strips them), so ``pcsa.``
    keys are its account's labels."""
    if key.startswith(cs.NAMESPACE_PREFIX) or key in (cs.LABEL_NAMESPACE, cs.LABEL_ORCHESTRATOR):
        return None
    if key in (cs.LABEL_SERVICE_ACCOUNT, cs.SERVICE_ACCOUNT_PREFIX + cs.LABEL_NAME):
        return SERVICE_ACCOUNT
    return key


def _as_label_selector(node: cs.Node, namespace: bool) -> LabelSelector | None:
    """The label selector a conjunction of one-label conditions is (over a namespace's
    labels, or a pod's with its namespace's conditions left out), or None."""
    operands = node.operands if isinstance(node, cs.And) else (node,)
    found: list[LabelRequirement] = []
    for operand in operands:
        if isinstance(operand, cs.All):
            continue
        if isinstance(operand, cs.And):
            inner = _as_label_selector(operand, namespace)
            if inner is None:
                return None
            found.extend(inner.match_expressions)
            continue
        atom = _one_label(operand)
        if atom is None:
            return None
        key, op, values = atom
        if namespace and key == cs.LABEL_NAME:
            key = NAMESPACE_NAME_LABEL
        elif namespace and key.startswith("projectcalico.org/"):
            return None
        elif not namespace:
            mapped = _pod_key(key)
            if mapped is None:
                continue  # the same for every pod of a namespace
            if mapped.startswith("projectcalico.org/"):
                return None  # a label no pod carries
            key = mapped
        found.append(LabelRequirement(key, op, values))
    return LabelSelector((), tuple(found))


def _one_label(node: cs.Node) -> tuple[str, str, tuple[str, ...]] | None:
    """(key, Kubernetes operator, values) of a condition Kubernetes can say, or None."""
    negated = False
    if isinstance(node, cs.Not):
        node, negated = node.operand, True
    if isinstance(node, cs.Has):
        return node.key, "DoesNotExist" if negated else "Exists", ()
    if isinstance(node, cs.Compare) and node.op in ("==", "!="):
        positive = (node.op == "==") != negated
        return node.key, "In" if positive else "NotIn", (node.value,)
    if isinstance(node, cs.InSet) and node.values:
        positive = node.negated == negated
        return node.key, "In" if positive else "NotIn", tuple(sorted(node.values))
    return None


def _requirements(node: cs.Node, namespace: bool) -> list[LabelSelector]:
    out: list[LabelSelector] = []
    for key, op, values in _atoms(node):
        if namespace:
            if key == cs.LABEL_NAME:
                key = NAMESPACE_NAME_LABEL
            elif key.startswith(cs.NAMESPACE_PREFIX):
                continue
        else:
            mapped = _pod_key(key)
            if mapped is None:
                continue  # the namespace and orchestrator: not labels a representative carries
            key = mapped
        if key.startswith("projectcalico.org/"):
            continue  # a label no pod or namespace carries
        out.append(_one_requirement(key, op, values))
    return out


def _namespace_conditions(node: cs.Node) -> list[LabelSelector]:
    """A pod selector's conditions on the pod's namespace (``pcns.<label>``, its name as
    ``pcns.projectcalico.org/name`` or ``projectcalico.org/namespace``), one requirement
    each over the namespace's labels: they tell namespaces apart as a namespaceSelector
    does (``pcns.team == 'edge'`` in a GlobalNetworkPolicy's rule)."""
    name = cs.NAMESPACE_PREFIX + cs.LABEL_NAME
    out: list[LabelSelector] = []
    for key, op, values in _atoms(node):
        if key in (name, cs.LABEL_NAMESPACE):
            key = NAMESPACE_NAME_LABEL
        elif key.startswith(cs.NAMESPACE_PREFIX + "projectcalico.org/"):
            continue  # no namespace label
        elif key.startswith(cs.NAMESPACE_PREFIX):
            key = key[len(cs.NAMESPACE_PREFIX) :]
        else:
            continue
        out.append(_one_requirement(key, op, values))
    return out


def _one_requirement(key: str, op: str, values: tuple[str, ...]) -> LabelSelector:
    req = (
        TextRequirement(key, op, values)
        if op in TEXT_OPERATORS
        else LabelRequirement(key, op, values)
    )
    return LabelSelector((), (req,))


def _atoms(node: cs.Node) -> list[tuple[str, str, tuple[str, ...]]]:
    if isinstance(node, cs.Has):
        return [(node.key, "Exists", ())]
    if isinstance(node, cs.Compare):
        if node.op in TEXT_OPERATORS:
            return [(node.key, node.op, (node.value,))]
        return [(node.key, "NotIn" if node.op == "!=" else "In", (node.value,))]
    if isinstance(node, cs.InSet):
        values = tuple(sorted(node.values))
        if not values:
            return [(node.key, "Exists", ())]
        return [(node.key, "NotIn" if node.negated else "In", values)]
    if isinstance(node, cs.Not):
        return _atoms(node.operand)
    if isinstance(node, cs.And | cs.Or):
        return [a for o in node.operands for a in _atoms(o)]
    return []
