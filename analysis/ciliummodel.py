"""CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy (cilium.io/v2), as the engine reads them.

Cilium matches endpoints by their *identity labels*: the pod's labels (source ``k8s``, minus
those the agent's default label filter leaves out of identities), plus
``io.kubernetes.pod.namespace``, ``io.cilium.k8s.namespace.labels.<key>`` for each label of
the pod's namespace, ``io.cilium.k8s.policy.serviceaccount`` and
``io.cilium.k8s.policy.cluster``. A selector key may carry a source (``k8s:app``,
``reserved:host``); without one it matches any source. Each selector is translated here into
what it asks of the pod's labels and of its namespace's labels (the namespace name being the
``kubernetes.io/metadata.name`` label), so the engine evaluates it with the same indexes as
a NetworkPolicy's selectors.

Sources: Cilium's ``pkg/k8s/apis/cilium.io/utils/utils.go`` (namespace scoping of
selectors), ``pkg/labelsfilter/filter.go`` (default identity label filter),
``pkg/policy/api/entity.go`` (entities); Apache-2.0; facts only.

Why one module of 440 lines: the selector translation and the rule model it serves are
one reading of Cilium's identity labels, which the reader, the compiler, the outside
representatives and the explanations all take from here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

from analysis.model import (
    NAMESPACE_NAME_LABEL,
    Direction,
    IPBlock,
    LabelRequirement,
    LabelSelector,
    Source,
    Tree,
)
from analysis.ports import ALL_CONNECTIONS, ALL_PORTS, ConnectionSet, PortSet

CNP = "CiliumNetworkPolicy"
CCNP = "CiliumClusterwideNetworkPolicy"
CILIUM_KINDS = frozenset({CNP, CCNP})

POD_NAMESPACE = "io.kubernetes.pod.namespace"
NAMESPACE_LABELS = "io.cilium.k8s.namespace.labels"
SERVICE_ACCOUNT = "io.cilium.k8s.policy.serviceaccount"
CLUSTER = "io.cilium.k8s.policy.cluster"
DEFAULT_CLUSTER_NAME = "default"  # the agent's `cluster-name` default

# The agent's default identity label filter (labelsfilter.defaultLabelPrefixCfg): a pod label
# whose key starts with an ignored pattern is not part of the identity, unless an included
# pattern matches a longer part of it. Patterns match at the start of the key.
_INCLUDED = tuple(
    re.compile(p)
    for p in (
        re.escape(POD_NAMESPACE),
        re.escape(NAMESPACE_LABELS),
        re.escape("app.kubernetes.io"),
        re.escape(CLUSTER),
    )
)
_IGNORED = tuple(
    re.compile(p)
    for p in (
        r"io\.kubernetes",
        r"kubernetes\.io",
        re.escape("statefulset.kubernetes.io/pod-name"),
        re.escape("apps.kubernetes.io/pod-index"),
        re.escape("batch.kubernetes.io/job-completion-index"),
        r".*beta\.kubernetes\.io",
        r"k8s\.io",
        r"pod-template-generation",
        r"pod-template-hash",
        r"controller-revision-hash",
        r"annotation.*",
        r"etcd_node",
    )
)


def in_identity(key: str) -> bool:
    """Whether a pod label with this key is part of the pod's Cilium identity."""

    def longest(patterns: tuple[re.Pattern[str], ...]) -> int:
        best = 0
        for p in patterns:
            m = p.match(key)
            if m is not None:
                best = max(best, m.end())
        return best

    ignored = 0
    for p in _IGNORED:
        m = p.match(key)
        if m is not None and (ignored == 0 or m.end() < ignored):
            ignored = m.end()
    return ignored == 0 or longest(_INCLUDED) > ignored


def split_key(key: str) -> tuple[str, str]:
    """``k8s:app`` -> (``k8s``, ``app``); ``app`` -> (``any``, ``app``); ``$host`` -> reserved."""
    if key.startswith("$"):
        return "reserved", key[1:]
    source, sep, rest = key.partition(":")
    return (source, rest) if sep else ("any", key)


@dataclass(frozen=True, slots=True)
class CiliumSelector:
    """An endpoint selector as requirements on a pod's labels and on its namespace's labels.
    ``never``: some requirement no pod meets; ``reserved``: it selects a reserved identity
    (host, world, …) by label, which the tree does not model."""

    pods: LabelSelector
    namespaces: LabelSelector
    never: bool = False
    reserved: bool = False
    # Requirements on the pod's service account (io.cilium.k8s.policy.serviceaccount),
    # keyed by that label: evaluated over PodClass.service_account.
    accounts: tuple[LabelRequirement, ...] = ()
    text: str = "{}"
    # The reserved identities a peer or requirement selector selects (host, world…: the
    # pseudo-endpoints and ranges of ``ciliumcompile.entity_bits``): only one the agent adds
    # no namespace requirement to can (utils.getEndpointSelector).
    identities: tuple[str, ...] = ()
    # Why the selector is not analysed (an endpointSelector selecting Cilium's own
    # endpoints); "" when it is.
    unmodelled: str = ""

    def __str__(self) -> str:
        return self.text


def _absent(op: str) -> bool:
    """Whether a requirement holds for a key the labels do not have."""
    return op in ("NotIn", "DoesNotExist")


def _holds(op: str, values: tuple[str, ...], value: str) -> bool:
    return LabelRequirement("k", op, values).matches({"k": value})


def translate(
    written: LabelSelector,
    namespace: str | None,
    *,
    peer: bool,
    cluster_name: str = DEFAULT_CLUSTER_NAME,
    subject: bool = False,
) -> CiliumSelector:
    """The selector as Cilium applies it. ``namespace``: the CiliumNetworkPolicy's namespace,
    None for a clusterwide policy. ``peer``: a fromEndpoints/toEndpoints selector (one naming a
    reserved label is left unscoped); otherwise a fromRequires/toRequires selector, or with
    ``subject`` an endpointSelector (which never selects a reserved identity here: see
    ``subject``)."""
    reqs = [LabelRequirement(k, "In", (v,)) for k, v in written.match_labels]
    reqs += list(written.match_expressions)
    parsed = [(*split_key(r.key), r) for r in reqs]
    reserved_key = any(src == "reserved" for src, _, _ in parsed)
    names_namespace = any(
        src in ("k8s", "any") and (name == POD_NAMESPACE or name.startswith(NAMESPACE_LABELS))
        for src, name, _ in parsed
    )
    has_pod_namespace = any(
        src in ("k8s", "any") and name == POD_NAMESPACE for src, name, _ in parsed
    )
    pod_side: list[LabelRequirement] = []
    ns_side: list[LabelRequirement] = []
    never = reserved = False
    accounts: list[LabelRequirement] = []
    identities: tuple[str, ...] = ()
    # utils.getEndpointSelector adds a namespace requirement (the policy's namespace, or
    # Exists for a clusterwide policy) unless the selector names the pod's namespace (or,
    # in a namespaced policy, a namespace label), or is a peer selector naming a reserved
    # label. A reserved identity has no namespace label: only an unscoped selector can
    # select it, by what its requirements say of the identity's one label.
    unscoped = (peer and reserved_key) or has_pod_namespace
    unscoped = unscoped or (namespace is not None and names_namespace)
    if unscoped and not subject:
        # A reserved identity carries one label, reserved:<name> = "" (nothing of k8s).
        identities = tuple(
            e for e in RESERVED_IDENTITIES if all(_on_reserved(s, n, r, e) for s, n, r in parsed)
        )
    if reserved_key and peer:
        known = {n for s, n, _ in parsed if s == "reserved"} <= set(RESERVED_IDENTITIES)
        reserved = not known
    for src, name, r in parsed:
        if src not in ("k8s", "any"):
            # reserved:, container:, cidr:, fqdn: … labels: no pod has them.
            never = never or not _absent(r.operator)
            continue
        if name == POD_NAMESPACE:
            ns_side.append(LabelRequirement(NAMESPACE_NAME_LABEL, r.operator, r.values))
        elif name.startswith(NAMESPACE_LABELS + "."):
            ns_side.append(
                LabelRequirement(name[len(NAMESPACE_LABELS) + 1 :], r.operator, r.values)
            )
        elif name == SERVICE_ACCOUNT:
            # Every pod has one (the pod spec's serviceAccountName, "default" when unset).
            accounts.append(LabelRequirement(SERVICE_ACCOUNT, r.operator, r.values))
        elif name == CLUSTER:
            never = never or not _holds(r.operator, r.values, cluster_name)
        elif not in_identity(name) or name.startswith(NAMESPACE_LABELS):
            never = never or not _absent(r.operator)
        else:
            pod_side.append(LabelRequirement(name, r.operator, r.values))
    # Namespace scoping (utils.getEndpointSelector): a CiliumNetworkPolicy's selectors apply
    # in its namespace unless they name one; a clusterwide policy's select pods of any
    # namespace (it requires the namespace label, which every pod has).
    scoped = namespace is not None and not (peer and reserved_key)
    if scoped and not has_pod_namespace and not names_namespace:
        assert namespace is not None
        ns_side.append(LabelRequirement(NAMESPACE_NAME_LABEL, "In", (namespace,)))
    return CiliumSelector(
        pods=LabelSelector((), tuple(pod_side)),
        namespaces=LabelSelector((), tuple(ns_side)),
        never=never,
        reserved=reserved,
        accounts=tuple(accounts),
        text=str(written),
        identities=identities,
    )


# The reserved identities a tree has endpoints for (host… as pseudo-endpoints, world as the
# external ranges and DNS names' addresses).
RESERVED_IDENTITIES = (
    "host", "remote-node", "kube-apiserver", "ingress", "health", "init", "unmanaged", "world",
)  # fmt: skip


def _on_reserved(source: str, name: str, r: LabelRequirement, identity: str) -> bool:
    """Whether a requirement holds on the labels of a reserved identity."""
    present = source in ("reserved", "any") and name == identity
    if not present:
        return _absent(r.operator)
    return _holds(r.operator, r.values, "")


# The reserved identities of endpoints an endpointSelector can select: Cilium's own
# endpoints on each node (the host endpoint is selected by nodeSelector policies only:
# pkg/policy/repository.go, "NodeSelector can only match nodes, EndpointSelector only pods").
LOCAL_ENDPOINTS = ("health", "ingress", "init")


def subject(written: LabelSelector, namespace: str | None) -> CiliumSelector:
    """An endpointSelector: a CiliumNetworkPolicy's always applies in its own namespace
    (a namespace the selector names is replaced, utils.ParseToCiliumRule), so it selects
    pods only; a clusterwide policy's gets no namespace requirement, so one naming a reserved
    label may select Cilium's own endpoints (``LOCAL_ENDPOINTS``), whose policies reachdiff
    does not model (not analysed). Pods never carry reserved labels."""
    if namespace is None:
        found = translate(written, None, peer=False, subject=True)
        keys = [k for k, _ in written.match_labels] + [r.key for r in written.match_expressions]
        if not any(split_key(k)[0] == "reserved" for k in keys):
            return found
        reqs = [LabelRequirement(k, "In", (v,)) for k, v in written.match_labels]
        reqs += list(written.match_expressions)
        local = [
            e for e in LOCAL_ENDPOINTS if all(_on_reserved(*split_key(r.key), r, e) for r in reqs)
        ]
        if not local:
            return found
        why = (
            f"selects Cilium's own {', '.join(local)} endpoint{'s' if len(local) > 1 else ''} "
            f"by a reserved label ({written}), whose policies reachdiff does not model"
        )
        return replace(found, unmodelled=why)
    kept = LabelSelector(
        tuple((k, v) for k, v in written.match_labels if k != f"k8s:{POD_NAMESPACE}"),
        written.match_expressions,
    )
    scoped = translate(kept, None, peer=False, subject=True)
    ns = LabelRequirement(NAMESPACE_NAME_LABEL, "In", (namespace,))
    return CiliumSelector(
        scoped.pods,
        LabelSelector((), (*scoped.namespaces.match_expressions, ns)),
        scoped.never,
        scoped.reserved,
        scoped.accounts,
        str(written),
    )


# Entities (pkg/policy/api/entity.go): the external ranges (world…), every endpoint (all),
# the workloads and pseudo-endpoints of the cluster (cluster), nothing (none), and the
# pseudo-endpoints of ``analysis.ciliumpeers`` (host, remote-node, kube-apiserver, …).
ENTITIES = frozenset(
    {"all", "world", "world-ipv4", "world-ipv6", "cluster", "none"}
    | {"host", "remote-node", "kube-apiserver", "ingress", "health", "init", "unmanaged"}
)
PROTOCOLS_ANY = ("TCP", "UDP", "SCTP")


@dataclass(frozen=True, slots=True)
class CiliumPort:
    """A ``toPorts.ports`` entry: ``port`` None for every port ("0"), a number or a name."""

    protocol: str  # TCP, UDP, SCTP or ANY
    port: int | str | None = None
    end_port: int | None = None


@dataclass(frozen=True, slots=True)
class CiliumServiceRef:
    """A ``toServices`` entry: a Service by name, or Services by their labels; ``namespace``
    None for every namespace (a clusterwide policy's selector without one)."""

    namespace: str | None
    name: str | None = None
    selector: LabelSelector | None = None


@dataclass(frozen=True, slots=True)
class CiliumRule:
    """One ingress/ingressDeny/egress/egressDeny rule of a policy spec.

    Peers as Cilium aggregates them: ``endpoints`` (with the requirements of the endpoint's
    other rules folded in when compiled), ``blocks`` (CIDR, CIDRSet), ``entities``.
    ``selects_nothing``: an L3 field is given but empty, or only with peers reachdiff cannot
    evaluate. With no L3 field at all, a rule with ports admits every peer and one without
    admits none (pkg/policy/rule.go, mergeIngress)."""

    direction: Direction
    deny: bool
    index: int
    source: Source
    prefix: str  # "" or "specs[1]." for a rule of the spec list
    endpoints: tuple[CiliumSelector, ...] = ()
    requires: tuple[CiliumSelector, ...] = ()
    blocks: tuple[IPBlock, ...] = ()
    entities: tuple[str, ...] = ()
    l3: bool = False  # whether any L3 field is given
    selects_nothing: bool = False
    ports: tuple[CiliumPort, ...] | None = None  # None: no toPorts (every port)
    l7: str = ""  # the L7 rules of its toPorts, in words ("" for none)
    # authentication.mode when not "disabled": the agent admits the rule's traffic once a
    # mutual authentication handshake between the two identities succeeds (decided at run
    # time; the map shows the rule as allowing, its causes say so)
    authentication: str = ""
    # toFQDNs: DNS names and patterns (lower case, no trailing dot), never resolved
    fqdns: tuple[str, ...] = ()
    dns: bool = False  # whether its toPorts carry DNS rules (the agent's DNS proxy)
    services: tuple[CiliumServiceRef, ...] = ()  # toServices, as written
    # toServices resolved (analysis.ciliumservices): the pods each Service selects
    backends: tuple[CiliumSelector, ...] = ()

    @property
    def label(self) -> str:
        field = self.direction.field + ("Deny" if self.deny else "")
        return f"{self.prefix}{field}[{self.index}]"


def authentication_words(rule: CiliumRule) -> str:
    """What a rule's authentication mode means for the traffic it allows ("" for none)."""
    if not rule.authentication:
        return ""
    return (
        f"mutual authentication {rule.authentication}: allowed once the two identities' "
        "handshake succeeds (decided at run time)"
    )


@dataclass(frozen=True, slots=True)
class CiliumSpec:
    subject: CiliumSelector
    rules: tuple[CiliumRule, ...]
    default_deny: frozenset[Direction]  # directions where selecting a pod isolates it
    source: Source


@dataclass(frozen=True, slots=True)
class CiliumPolicy:
    kind: str  # CiliumNetworkPolicy | CiliumClusterwideNetworkPolicy
    namespace: str  # "" for the clusterwide kind
    name: str
    specs: tuple[CiliumSpec, ...]
    source: Source
    # What the policy says that reachdiff cannot evaluate ("file:line: … why"), evaluated
    # as matching nothing.
    unanalysed: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        if self.kind == CCNP:
            return f"{CCNP}/{self.name}"
        if self.kind == AGENT:
            return f"{AGENT}/{self.name}"
        return f"{self.namespace}/{CNP}/{self.name}"

    @property
    def scope(self) -> str | None:
        """The namespace its selectors are scoped to; None for the clusterwide kind."""
        return None if self.kind == CCNP else self.namespace


# The agent's `allow-localhost` (default: always): the node a pod runs on reaches it
# whatever its ingress policy says. Cited like a rule, pointing at the repository settings
# that say how the agent is configured (docs/semantics.md).
AGENT = "cilium-agent"
AGENT_SETTINGS = Source(".github/reachdiff.yml", 0)
LOCALHOST_RULE = CiliumRule(
    Direction.INGRESS, False, 0, AGENT_SETTINGS, "", entities=("host",), l3=True
)
LOCALHOST_POLICY = CiliumPolicy(AGENT, "", "allow-localhost", (), AGENT_SETTINGS)
# `enable-policy: always`: every pod is default-deny in both directions, cited as isolating
# it like a policy (analysis.ciliumagent).
ENFORCEMENT_POLICY = CiliumPolicy(AGENT, "", "enable-policy", (), AGENT_SETTINGS)


def cilium_selectors(tree: Tree) -> Iterator[CiliumSelector]:
    """Every selector of the tree's Cilium policies (subjects, peers, requirements)."""
    for policy in tree.cilium_policies:
        for spec in policy.specs:
            yield spec.subject
            for rule in spec.rules:
                yield from rule.endpoints
                yield from rule.requires
                yield from rule.backends


@dataclass(frozen=True, slots=True)
class CompiledCiliumRule:
    """A Cilium rule compiled for the endpoints it governs: ``peers`` indexes the matcher's
    ``peer_sets`` (requirements of the endpoint's other rules folded in)."""

    policy: CiliumPolicy
    rule: CiliumRule
    peers: int
    fixed_ports: ConnectionSet | None  # the rule's ports when none is named
    maybe: int = -1  # every peer is known (see CompiledAdminRule)


@dataclass(frozen=True, slots=True)
class CiliumRow:
    """What Cilium policies say about one endpoint in one direction."""

    deny: tuple[CompiledCiliumRule, ...]
    allow: tuple[CompiledCiliumRule, ...]
    isolating: tuple[CiliumPolicy, ...]  # the policies putting it in default deny


def resolve_cilium_ports(
    entries: tuple[CiliumPort, ...] | None, named_ports: Sequence[tuple[str, str, int]]
) -> ConnectionSet:
    """``toPorts``: ANY is TCP, UDP and SCTP; a named port matches the destination's
    container ports of that name (of the protocol, unless ANY)."""
    if entries is None:
        return ALL_CONNECTIONS
    by_protocol: dict[str, PortSet] = {}
    for entry in entries:
        protocols = PROTOCOLS_ANY if entry.protocol == "ANY" else (entry.protocol,)
        for protocol in protocols:
            if entry.port is None:
                ports = ALL_PORTS
            elif isinstance(entry.port, int):
                ports = PortSet.of((entry.port, entry.end_port or entry.port))
            else:
                ports = PortSet.of(
                    *((n, n) for name, p, n in named_ports if name == entry.port and p == protocol)
                )
            by_protocol[protocol] = by_protocol.get(protocol, PortSet()) | ports
    return ConnectionSet.of({p: s for p, s in by_protocol.items() if s})
