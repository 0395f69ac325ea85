"""The cluster model a manifest tree describes: namespaces, workloads and NetworkPolicies.

Everything here is immutable and already validated: the loader (``manifests``) is the only
place that turns untrusted YAML into these types, so the engine never re-checks input.
Every object keeps the ``Source`` (file and line) it came from, because every statement the
product makes about access must point at the line responsible for it.

Why one module of 410 lines: the engine's vocabulary, every type the other modules share,
in one place a newcomer reads first.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from analysis.parsecache import ParseCache

if TYPE_CHECKING:
    from analysis.calicomodel import CalicoObjects
    from analysis.ciliumagent import CiliumAgent
    from analysis.ciliummodel import CiliumPolicy

Labels = tuple[tuple[str, str], ...]  # sorted (key, value) pairs: hashable and canonical
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


def labels_of(mapping: Mapping[str, str]) -> Labels:
    return tuple(sorted(mapping.items()))


@dataclass(frozen=True, slots=True, order=True)
class Source:
    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


class Direction(enum.Enum):
    INGRESS = "Ingress"
    EGRESS = "Egress"

    # Members are singletons compared by identity; Enum's own hash runs Python code, and
    # directions key the matcher's tables, which the engine reads once per pair.
    __hash__ = object.__hash__

    @property
    def field(self) -> str:
        return self.value.lower()


@dataclass(frozen=True, slots=True)
class LabelRequirement:
    key: str
    operator: str  # In, NotIn, Exists, DoesNotExist
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.operator == "In":
            return self.key in labels and labels[self.key] in self.values
        if self.operator == "NotIn":
            return self.key not in labels or labels[self.key] not in self.values
        if self.operator == "Exists":
            return self.key in labels
        return self.key not in labels  # DoesNotExist


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """A metav1.LabelSelector; the empty selector matches everything."""

    match_labels: Labels = ()
    match_expressions: tuple[LabelRequirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        for key, value in self.match_labels:
            if labels.get(key) != value:
                return False
        return all(r.matches(labels) for r in self.match_expressions)

    def is_empty(self) -> bool:
        return not self.match_labels and not self.match_expressions

    def keys(self) -> frozenset[str]:
        return frozenset(k for k, _ in self.match_labels) | {r.key for r in self.match_expressions}

    def __str__(self) -> str:
        parts = [f"{k}={v}" for k, v in self.match_labels]
        for r in self.match_expressions:
            if r.operator in ("In", "NotIn"):
                parts.append(f"{r.key} {r.operator.lower()} ({','.join(r.values)})")
            elif r.operator == "Exists":
                parts.append(r.key)
            else:
                parts.append(f"!{r.key}")
        return ",".join(parts) if parts else "{}"


@dataclass(frozen=True, slots=True)
class ContainerPort:
    port: int
    protocol: str = "TCP"
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Namespace:
    name: str
    labels: Labels
    source: Source | None = None  # None when only implied by an object that names it


@dataclass(frozen=True, slots=True)
class Workload:
    """A Pod or a pod controller; all its replicas share one pod template."""

    kind: str
    namespace: str
    name: str
    labels: Labels
    ports: tuple[ContainerPort, ...]
    host_network: bool
    source: Source
    # The pod spec's serviceAccountName (its deprecated alias serviceAccount when unset),
    # "default" when neither is set: the API server's defaulting.
    service_account: str = "default"
    # The labels of that service account where the tree does not define it: set only on
    # representatives (analysis.outside), which stand for pods whose accounts are unknown.
    account_labels: Labels = ()

    @property
    def id(self) -> str:
        if self.kind == "Outside":  # a representative (analysis.outside): ~ns[...]/*
            prefix = "" if self.namespace.startswith("~") else "~"
            return f"{prefix}{self.namespace}/{self.name}"
        if not self.namespace and self.kind in ("Entity", "FQDN"):
            # A Cilium peer that is not a pod (analysis.ciliumpeers): entity:host, fqdn:…
            return f"{'entity' if self.kind == 'Entity' else 'fqdn'}:{self.name}"
        return f"{self.namespace}/{self.kind}/{self.name}"


@dataclass(frozen=True, slots=True)
class IPBlock:
    cidr: IPNetwork
    excepts: tuple[IPNetwork, ...] = ()

    def __str__(self) -> str:
        if not self.excepts:
            return str(self.cidr)
        return f"{self.cidr} except {', '.join(map(str, self.excepts))}"


@dataclass(frozen=True, slots=True)
class Peer:
    """One entry of a rule's ``from``/``to``. Either ip_block, or one or both selectors."""

    source: Source
    pod_selector: LabelSelector | None = None
    namespace_selector: LabelSelector | None = None
    ip_block: IPBlock | None = None

    def __str__(self) -> str:
        if self.ip_block is not None:
            return f"ipBlock {self.ip_block}"
        parts = []
        if self.namespace_selector is not None:
            parts.append(f"namespaces {self.namespace_selector}")
        if self.pod_selector is not None:
            parts.append(f"pods {self.pod_selector}")
        return " and ".join(parts)


@dataclass(frozen=True, slots=True)
class PolicyPort:
    """One entry of a rule's ``ports``: a number, a range, a name, or a whole protocol."""

    source: Source
    protocol: str = "TCP"
    port: int | str | None = None  # None: every port of the protocol
    end_port: int | None = None


@dataclass(frozen=True, slots=True)
class PolicyRule:
    """One ingress or egress rule. Empty ``peers``: every peer; empty ``ports``: every port."""

    direction: Direction
    index: int
    source: Source
    peers: tuple[Peer, ...] = ()
    ports: tuple[PolicyPort, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.direction.field}[{self.index}]"


@dataclass(frozen=True, slots=True)
class NetworkPolicy:
    namespace: str
    name: str
    pod_selector: LabelSelector
    policy_types: frozenset[Direction]
    ingress: tuple[PolicyRule, ...]
    egress: tuple[PolicyRule, ...]
    source: Source
    # False when read by the fast parser: rules carry the document's line until a cause
    # needs theirs (``manifests.exact_rule_source``). Not part of what the policy means.
    exact_lines: bool = field(default=True, compare=False)

    @property
    def id(self) -> str:
        return f"{self.namespace}/NetworkPolicy/{self.name}"

    def rules(self, direction: Direction) -> tuple[PolicyRule, ...]:
        """The rules in force for a direction (rules of an unlisted type are ignored)."""
        if direction not in self.policy_types:
            return ()
        return self.ingress if direction is Direction.INGRESS else self.egress


def group_of(api_version: str) -> str:
    """``cilium.io/v2`` -> ``cilium.io``; the core group (``v1``) is ``""``."""
    return api_version.rpartition("/")[0]


@dataclass(frozen=True, slots=True, order=True)
class UnmodelledPolicy:
    """One object of a kind that decides traffic and that reachdiff does not model."""

    kind: str
    namespace: str  # "" when the object names none (cluster-scoped kinds, or the default)
    name: str
    api_version: str
    source: Source
    # Fingerprint of the object's content, "" when it cannot be taken (then any two
    # versions count as different: "changed" is never claimed without proof).
    digest: str = ""

    @property
    def group(self) -> str:
        return group_of(self.api_version)

    @property
    def id(self) -> str:
        """``cilium.io/CiliumNetworkPolicy shop/allow-web``: the group is part of the
        identity, since Calico's and Antrea's ``NetworkPolicy`` share the core's name."""
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.group}/{self.kind} {where}"

    def ignored_by(self, ignore_kinds: Iterable[str]) -> bool:
        """An ``ignore_kinds`` entry names it: ``Kind`` (any group) or ``Kind.group``."""
        return any(entry in (self.kind, f"{self.kind}.{self.group}") for entry in ignore_kinds)


@dataclass(frozen=True, slots=True)
class Tree:
    """Everything one manifest tree declares."""

    namespaces: tuple[Namespace, ...] = ()
    workloads: tuple[Workload, ...] = ()
    policies: tuple[NetworkPolicy, ...] = ()
    # The admin tier (ANPs and Admin-tier ClusterNetworkPolicies) by priority, then the
    # baseline tier (Baseline-tier ClusterNetworkPolicies by priority, then the BANP).
    admin_policies: tuple[AdminPolicy, ...] = ()
    warnings: tuple[str, ...] = field(default=())
    # What the tree says that reachdiff cannot evaluate, each naming its file and line
    # (e.g. an egress peer by node labels or domain names): the result is computed as if
    # it matched nothing, so a check over this tree must not pass.
    unanalysed: tuple[str, ...] = field(default=())
    # Objects of kinds that decide traffic but are not modelled (Cilium, Calico, Istio...),
    # sorted: a result that shows access must say these were not analysed.
    unmodelled: tuple[UnmodelledPolicy, ...] = ()
    # The manifest files the tree was read from (path -> content), for finding exact lines
    # of objects the fast parser read. Empty for trees built from rendered objects.
    texts: Mapping[str, bytes | str] = field(default_factory=dict, compare=False, repr=False)
    # Those files read again exactly, when an explanation asks for a rule's own line
    # (``manifests.exact_rule_source``): kept with the tree they belong to, bounded by it.
    exact_reads: ParseCache = field(default_factory=ParseCache, compare=False, repr=False)
    # Calico's policies, tiers and network sets (``analysis.calicomodel``); None: none.
    calico: CalicoObjects | None = None
    # CiliumNetworkPolicies and CiliumClusterwideNetworkPolicies (analysis.ciliummodel).
    cilium_policies: tuple[CiliumPolicy, ...] = ()
    # How the cluster's Cilium agents are configured (repository settings, analysis.ciliumagent);
    # None: the settings name no agent, its upstream defaults apply, and only a tree with
    # Cilium policies has Cilium's pseudo-endpoints.
    cilium_agent: CiliumAgent | None = None

    def namespace_labels(self) -> dict[str, dict[str, str]]:
        return {ns.name: dict(ns.labels) for ns in self.namespaces}


# --- AdminNetworkPolicy / BaselineAdminNetworkPolicy (policy.networking.k8s.io/v1alpha1) ---
# --- and ClusterNetworkPolicy (policy.networking.k8s.io/v1alpha2) -------------------------


class AdminAction(enum.Enum):
    ALLOW = "Allow"  # v1alpha1
    ACCEPT = "Accept"  # v1alpha2: what Allow was
    DENY = "Deny"
    PASS = "Pass"  # skip the rest of the tier: Admin -> NetworkPolicy, Baseline -> default

    @property
    def allows(self) -> bool:
        return self is AdminAction.ALLOW or self is AdminAction.ACCEPT

    @property
    def decision(self) -> str:
        """The verdict word of the engine's decisions: Allow, Deny or Pass."""
        return "Allow" if self.allows else self.value


@dataclass(frozen=True, slots=True)
class AdminPeer:
    """One ANP/BANP/CNP peer. ``namespaces``: every pod in matching namespaces; ``pods``:
    the pod selector within matching namespaces; ``networks`` (egress): CIDRs; ``nodes``
    (egress; the node selector is kept in ``namespace_selector``) and ``domainNames``
    (egress, v1alpha2): node IPs and DNS names, which a manifest tree does not define, so
    they match no endpoint and the tree reports them as not analysed."""

    source: Source
    kind: str  # namespaces | pods | networks | nodes | domainNames
    namespace_selector: LabelSelector | None = None
    pod_selector: LabelSelector | None = None
    networks: tuple[IPNetwork, ...] = ()
    domain_names: tuple[str, ...] = ()

    @property
    def evaluable(self) -> bool:
        return self.kind not in ("nodes", "domainNames")


@dataclass(frozen=True, slots=True)
class AdminPort:
    """portNumber (start == end), portRange, or namedPort (``name``, any protocol); in
    v1alpha2 the same three as ``protocols`` entries (destinationPort number or range under
    tcp/udp/sctp, or destinationNamedPort)."""

    source: Source
    protocol: str = "TCP"
    start: int = 0
    end: int = 0
    name: str | None = None


@dataclass(frozen=True, slots=True)
class AdminRule:
    direction: Direction
    index: int
    name: str
    action: AdminAction
    source: Source
    peers: tuple[AdminPeer, ...]
    ports: tuple[AdminPort, ...] | None  # None: every port

    @property
    def label(self) -> str:
        return f"{self.direction.field}[{self.index}]"


CLUSTER_NETWORK_POLICY = "ClusterNetworkPolicy"


@dataclass(frozen=True, slots=True)
class AdminPolicy:
    """A cluster-scoped AdminNetworkPolicy, the BaselineAdminNetworkPolicy ``default``, or
    a ClusterNetworkPolicy of the Admin or the Baseline tier (``spec_tier``)."""

    kind: str  # AdminNetworkPolicy | BaselineAdminNetworkPolicy | ClusterNetworkPolicy
    name: str
    priority: int | None  # None for the BANP
    subject_namespaces: LabelSelector
    subject_pods: LabelSelector | None  # None: every pod of the subject namespaces
    ingress: tuple[AdminRule, ...]
    egress: tuple[AdminRule, ...]
    source: Source
    spec_tier: str = ""  # ClusterNetworkPolicy: Admin | Baseline; "" for v1alpha1 kinds

    @property
    def id(self) -> str:
        return f"{self.kind}/{self.name}"

    @property
    def is_baseline(self) -> bool:
        """In the tier after NetworkPolicy (the BANP, or a Baseline-tier CNP)."""
        return self.kind == "BaselineAdminNetworkPolicy" or self.spec_tier == "Baseline"

    @property
    def tier(self) -> str:
        if self.kind == CLUSTER_NETWORK_POLICY:
            return f"CNP {self.spec_tier} (priority {self.priority})"
        return "BANP" if self.is_baseline else f"ANP (priority {self.priority})"

    @property
    def tier_label(self) -> str:
        """How explanations name the tier: ``AdminNetworkPolicy (priority 10)``,
        ``BaselineAdminNetworkPolicy``, ``ClusterNetworkPolicy Admin tier (priority 10)``."""
        if self.kind == CLUSTER_NETWORK_POLICY:
            return f"{self.kind} {self.spec_tier} tier (priority {self.priority})"
        return self.kind if self.is_baseline else f"{self.kind} (priority {self.priority})"

    def rules(self, direction: Direction) -> tuple[AdminRule, ...]:
        return self.ingress if direction is Direction.INGRESS else self.egress
