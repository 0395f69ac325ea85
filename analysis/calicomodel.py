"""Calico's policy kinds as the engine reads them (projectcalico.org/v3, and
crd.projectcalico.org/v1 as stored): NetworkPolicy, GlobalNetworkPolicy, Tier, NetworkSet
and GlobalNetworkSet. Built only by ``analysis.calicopolicies`` from validated manifests.

Sources: Calico's API types (projectcalico/calico api/pkg/apis/projectcalico/v3, Apache-2.0)
and its resource reference (docs.tigera.io: network policy, global network policy, tier).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from analysis import calicoselector as cs
from analysis.calicoselector import Node
from analysis.model import Direction, IPNetwork, Labels, Source
from analysis.ports import ALL_PORTS, NO_CONNECTIONS, PROTOCOLS, ConnectionSet, PortSet

CALICO_GROUPS = ("projectcalico.org", "crd.projectcalico.org")
DEFAULT_TIER = "default"
# The tiers Calico always has, with their order and default action (api/pkg/apis/
# projectcalico/v3/tier.go): Kubernetes' admin policies go to kube-admin and kube-baseline,
# Kubernetes NetworkPolicies to default at order 1000.
KUBE_ADMIN_TIER = "kube-admin"
KUBE_BASELINE_TIER = "kube-baseline"
BUILT_IN_TIERS = {
    KUBE_ADMIN_TIER: (1_000.0, "Pass"),
    DEFAULT_TIER: (1_000_000.0, "Deny"),
    KUBE_BASELINE_TIER: (10_000_000.0, "Pass"),
}
KUBERNETES_POLICY_ORDER = 1000.0
ACTIONS = ("Allow", "Deny", "Log", "Pass")
# IP protocol numbers that carry ports, by name.
_PORT_PROTOCOLS = {6: "TCP", 17: "UDP", 132: "SCTP"}

PortEntry = tuple[int, int] | str  # an inclusive range, or a port name


@dataclass(frozen=True, slots=True)
class CalicoTier:
    name: str
    order: float | None  # None: after every tier with an order
    default_action: str  # Deny | Pass: for what no rule of an applying policy decides
    source: Source | None = None  # None for a built-in tier the tree does not declare

    @property
    def sort_key(self) -> tuple[float, str]:
        return (math.inf if self.order is None else self.order, self.name)

    @property
    def label(self) -> str:
        order = "no order" if self.order is None else f"order {self.order:.15g}"
        return f"Calico tier {self.name} ({order})"


@dataclass(frozen=True, slots=True)
class CalicoBackends:
    """What a rule's ``services`` matches, from the Service's manifest: the pods its
    ``selector`` selects in its namespace (its EndpointSlices' addresses) and, as a
    destination, only on their endpoint ports: each Service port's protocol with its
    ``targetPort`` (a number, or a container port name resolved on each pod)."""

    namespace: str
    selector: Labels
    ports: tuple[tuple[str, int | str], ...]  # (protocol, targetPort)

    def selects(self, namespace: str, labels: Labels) -> bool:
        have = dict(labels)
        return namespace == self.namespace and all(have.get(k) == v for k, v in self.selector)

    def connections(self, named: tuple[tuple[str, str, int], ...]) -> dict[str, set[int]]:
        out: dict[str, set[int]] = {}
        for protocol, target in self.ports:
            if isinstance(target, int):
                out.setdefault(protocol, set()).add(target)
            else:
                out.setdefault(protocol, set()).update(
                    n for name, p, n in named if name == target and p == protocol
                )
        return out


@dataclass(frozen=True, slots=True)
class CalicoEntity:
    """A rule's ``source`` or ``destination``: every field set must match."""

    nets: tuple[IPNetwork, ...] = ()
    not_nets: tuple[IPNetwork, ...] = ()
    selector: Node | None = None
    not_selector: Node | None = None
    namespace_selector: Node | None = None
    ports: tuple[PortEntry, ...] = ()
    not_ports: tuple[PortEntry, ...] = ()
    account_names: tuple[str, ...] = ()  # serviceAccounts.names
    account_selector: Node | None = None  # serviceAccounts.selector, over the accounts' labels
    # services: (namespace, name) of the Service as referenced (the namespace defaults to
    # a NetworkPolicy's own), and once resolved from the tree its endpoints (None: not)
    service: tuple[str, str] | None = None
    backends: CalicoBackends | None = None
    text: str = ""  # the fields as written, for explanations

    @property
    def services(self) -> bool:
        return self.service is not None

    @property
    def service_accounts(self) -> bool:
        """Whether ``serviceAccounts`` constrains anything (``{}`` or empty names and
        selector add nothing to the selector Felix gets)."""
        return bool(self.account_names) or self.account_selector is not None

    @property
    def accounts(self) -> Node | None:
        """``serviceAccounts`` as the selector over endpoints libcalico-go makes of it: the
        selector's labels prefixed ``pcsa.`` (endpoints inherit their account's labels so
        prefixed), and-ed with ``projectcalico.org/serviceaccount in {names}``."""
        parts: list[Node] = []
        if self.account_selector is not None:
            parts.append(cs.prefixed(self.account_selector, cs.SERVICE_ACCOUNT_PREFIX))
        if self.account_names:
            parts.append(cs.InSet(cs.LABEL_SERVICE_ACCOUNT, frozenset(self.account_names), False))
        return cs.conjunction(parts) if parts else None

    @property
    def selects(self) -> bool:
        """Whether any selector field is set (then a namespaced policy's rule is limited
        to its namespace, or to the namespaceSelector's namespaces)."""
        return (
            self.selector is not None
            or self.not_selector is not None
            or self.namespace_selector is not None
            or self.service_accounts
        )


@dataclass(frozen=True, slots=True)
class CalicoRule:
    direction: Direction
    index: int
    source: Source
    action: str  # Allow | Deny | Log | Pass
    protocol: int | None  # IP protocol number; None: any
    not_protocol: int | None
    ip_version: int | None
    src: CalicoEntity
    dst: CalicoEntity
    http: bool = False  # an application-layer match (not analysed)

    @property
    def label(self) -> str:
        return f"{self.direction.field}[{self.index}]"

    @property
    def peer(self) -> CalicoEntity:
        """The other end of the connection: the source of an ingress rule, the
        destination of an egress one."""
        return self.src if self.direction is Direction.INGRESS else self.dst

    @property
    def own(self) -> CalicoEntity:
        """The entity that matches the policy's own endpoint."""
        return self.dst if self.direction is Direction.INGRESS else self.src

    def protocols(self) -> tuple[str, ...]:
        """The protocols with ports (of TCP, UDP, SCTP) the rule can match."""
        allowed = PROTOCOLS if self.protocol is None else (_PORT_PROTOCOLS.get(self.protocol),)
        return tuple(
            p
            for p in PROTOCOLS
            if p in allowed and _PORT_PROTOCOLS.get(self.not_protocol or -1) != p
        )

    def port_protocol_only_elsewhere(self) -> bool:
        """Whether the rule matches only protocols without ports (ICMP, …)."""
        return not self.protocols()

    def has_named_ports(self) -> bool:
        """Whether the rule's ports depend on the destination pod's named ports."""
        backends = self.dst.backends
        if backends is not None and any(isinstance(t, str) for _, t in backends.ports):
            return True
        return any(isinstance(p, str) for p in self.dst.ports + self.dst.not_ports)

    def connections(self, named_ports: tuple[tuple[str, str, int], ...]) -> ConnectionSet:
        """What the rule's protocol and destination ports match on a destination with
        these named container ports (none for an external range)."""
        out: dict[str, PortSet] = {}
        backends = self.dst.backends
        if backends is not None:
            # A destination Service matches its endpoints' ports only (Felix's IP-port set);
            # Calico refuses ports and notPorts beside it.
            served = backends.connections(named_ports)
            for protocol in self.protocols():
                if served.get(protocol):
                    out[protocol] = PortSet.of(*((n, n) for n in sorted(served[protocol])))
            return ConnectionSet.of(out) if out else NO_CONNECTIONS
        for protocol in self.protocols():
            ports = _ports(self.dst.ports, protocol, named_ports) if self.dst.ports else ALL_PORTS
            if self.dst.not_ports:
                ports = ports - _ports(self.dst.not_ports, protocol, named_ports)
            if ports:
                out[protocol] = ports
        return ConnectionSet.of(out) if out else NO_CONNECTIONS


def _ports(
    entries: tuple[PortEntry, ...], protocol: str, named: tuple[tuple[str, str, int], ...]
) -> PortSet:
    found: list[tuple[int, int]] = []
    for entry in entries:
        if isinstance(entry, str):
            found.extend((n, n) for name, p, n in named if name == entry and p == protocol)
        else:
            found.append(entry)
    return PortSet.of(*found)


@dataclass(frozen=True, slots=True)
class CalicoPolicy:
    kind: str  # NetworkPolicy | GlobalNetworkPolicy
    api_version: str
    namespace: str  # "" for a GlobalNetworkPolicy
    name: str
    tier: str
    order: float | None  # None: after every policy of the tier with an order
    selector: Node
    namespace_selector: Node | None  # GlobalNetworkPolicy only
    types: frozenset[Direction]
    ingress: tuple[CalicoRule, ...]
    egress: tuple[CalicoRule, ...]
    source: Source
    selector_text: str = ""
    # serviceAccountSelector, over the labels of the pods' service accounts (None: unset)
    service_account_selector: Node | None = None
    host_only: bool = False  # doNotTrack or preDNAT: applies to host endpoints only

    @property
    def id(self) -> str:
        if self.namespace:
            return f"{self.namespace}/NetworkPolicy.projectcalico.org/{self.name}"
        return f"GlobalNetworkPolicy/{self.name}"

    @property
    def sort_key(self) -> tuple[float, str]:
        """Felix's order within a tier: ``order`` (none is last), then name, namespace and
        kind as one string (felix/calc/policy_sorter.go)."""
        order = math.inf if self.order is None else self.order
        return (order, f"{self.name}/{self.namespace}/{self.kind}")

    def rules(self, direction: Direction) -> tuple[CalicoRule, ...]:
        if direction not in self.types:
            return ()
        return self.ingress if direction is Direction.INGRESS else self.egress


@dataclass(frozen=True, slots=True)
class CalicoNetworkSet:
    """A GlobalNetworkSet (``namespace`` "") or a NetworkSet: labelled external ranges."""

    kind: str
    namespace: str
    name: str
    labels: Labels
    nets: tuple[IPNetwork, ...]
    source: Source

    @property
    def id(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{where}{self.kind}/{self.name}"


@dataclass(frozen=True, slots=True)
class CalicoServiceAccount:
    """A v1 ServiceAccount of the tree: Calico gives its labels, prefixed ``pcsa.``, to the
    pods running as it (libcalico-go's ServiceAccountToProfile)."""

    namespace: str
    name: str
    labels: Labels
    source: Source


@dataclass(frozen=True, slots=True)
class CalicoObjects:
    """A tree's Calico objects, with what the tree must say of them."""

    policies: tuple[CalicoPolicy, ...] = ()
    tiers: tuple[CalicoTier, ...] = ()
    network_sets: tuple[CalicoNetworkSet, ...] = ()
    # The tree's ServiceAccounts (whose labels service-account selectors read), sorted.
    service_accounts: tuple[CalicoServiceAccount, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.policies)
