"""Least-privilege findings over one tree (``reachdiff lint``).

Each rule has a stable id (tools and settings refer to it), a default severity, and
reports the file and line to change with a one-line fix. The findings are about what the
policies *say*, read as Kubernetes enforces them: a selector "matches nothing" when no
workload or namespace of the tree matches it (pods made elsewhere are the exception the
message names), and DNS is judged on the map, so an admin-tier rule that allows it counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from analysis.default_deny import denies_all
from analysis.manifests import exact_policy
from analysis.matcher import CompiledRule
from analysis.model import (
    Direction,
    NetworkPolicy,
    Peer,
    PolicyRule,
    Source,
    Tree,
    Workload,
)
from analysis.outside import OUTSIDE_KIND, is_outside_namespace
from analysis.reachability import ReachabilityMap
from analysis.shadowed import shadowed_rules

ERROR, WARNING, NOTE = "error", "warning", "note"
SEVERITIES = (NOTE, WARNING, ERROR)  # ascending
OFF, NEVER = "off", "never"


@dataclass(frozen=True, slots=True)
class LintRule:
    id: str
    severity: str  # the default
    summary: str  # one line, for rule metadata (SARIF) and docs


RULES: tuple[LintRule, ...] = (
    LintRule(
        "no-default-deny-ingress", WARNING, "A namespace with workloads has no ingress default-deny"
    ),
    LintRule(
        "no-default-deny-egress", WARNING, "A namespace with workloads has no egress default-deny"
    ),
    LintRule("unselected-workload", WARNING, "No NetworkPolicy selects the workload"),
    LintRule("policy-selects-nothing", WARNING, "The policy's podSelector selects no workload"),
    LintRule("peer-matches-nothing", WARNING, "A rule's peer matches no workload"),
    LintRule("undefined-named-port", WARNING, "A named port no container defines"),
    LintRule("allows-every-peer", WARNING, "A rule without from/to admits every peer"),
    LintRule(
        "allows-every-namespace", WARNING, "A peer's empty namespaceSelector admits every namespace"
    ),
    LintRule("allows-any-address", WARNING, "An ipBlock of 0.0.0.0/0 or ::/0"),
    LintRule("allows-every-port", NOTE, "A rule or port entry admits every port"),
    LintRule("shadowed-rule", NOTE, "A rule admits nothing another rule of its policy does not"),
    LintRule(
        "egress-deny-without-dns", ERROR, "Egress is isolated and no rule allows DNS (UDP 53)"
    ),
)
RULE_IDS = frozenset(r.id for r in RULES)
_DEFAULTS = {r.id: r.severity for r in RULES}


@dataclass(frozen=True, slots=True)
class LintConfig:
    """Severities per rule (``off`` disables one) and the lowest severity that fails."""

    severities: tuple[tuple[str, str], ...] = ()  # overrides of the defaults
    fail_on: str = ERROR  # a severity, or ``never``

    def severity(self, rule: str) -> str:
        return dict(self.severities).get(rule, _DEFAULTS[rule])

    def fails(self, severity: str) -> bool:
        if self.fail_on == NEVER or severity == OFF:
            return False
        return SEVERITIES.index(severity) >= SEVERITIES.index(self.fail_on)


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str
    severity: str
    file: str
    line: int
    subject: str  # what it is about: a namespace, workload or policy id (stable across lines)
    message: str
    fix: str

    @property
    def identity(self) -> tuple[str, str, str]:
        """What makes it the same finding in another version of the tree: lines move."""
        return (self.rule, self.subject, self.message)


def lint(rmap: ReachabilityMap, config: LintConfig = LintConfig()) -> tuple[Finding, ...]:
    """Every finding of ``rmap``'s tree, sorted by file and line. ``rmap`` should be the
    partial-scope map (pods outside the tree count as DNS servers)."""
    tree = rmap.tree
    found: list[Finding] = []
    for f in _all(rmap, tree):
        severity = config.severity(f.rule)
        if severity != OFF:
            found.append(Finding(f.rule, severity, f.file, f.line, f.subject, f.message, f.fix))
    return tuple(sorted(set(found), key=lambda f: (f.file, f.line, f.rule, f.subject, f.message)))


def fails(findings: Iterable[Finding], config: LintConfig) -> bool:
    return any(config.fails(f.severity) for f in findings)


def _finding(rule: str, where: Source, subject: str, message: str, fix: str) -> Finding:
    return Finding(rule, _DEFAULTS[rule], where.file, where.line, subject, message, fix)


def _all(rmap: ReachabilityMap, tree: Tree) -> Iterator[Finding]:
    workloads = [w for w in tree.workloads if w.kind != OUTSIDE_KIND]
    policies = [exact_policy(tree, p) for p in tree.policies]
    yield from _default_deny(tree, workloads, policies)
    yield from _unselected(workloads, policies)
    ns_labels = {
        ns: labels for ns, labels in tree.namespace_labels().items() if not is_outside_namespace(ns)
    }
    for policy in policies:
        yield from _policy(policy, workloads, ns_labels)
    yield from _shadowed(rmap, {p.id: p for p in policies})
    yield from _dns(rmap)


# -- namespaces and workloads


def _default_deny(
    tree: Tree, workloads: list[Workload], policies: list[NetworkPolicy]
) -> Iterator[Finding]:
    by_ns: dict[str, Workload] = {}
    for w in workloads:
        if not w.host_network:  # no policy can isolate a host-network pod
            by_ns.setdefault(w.namespace, w)
    declared = {ns.name: ns.source for ns in tree.namespaces if ns.source is not None}
    for ns, first in sorted(by_ns.items()):
        for direction in Direction:
            if any(
                p.namespace == ns and p.pod_selector.is_empty() and direction in p.policy_types
                for p in policies
            ) or denies_all(tree, ns, direction):
                continue
            rule = f"no-default-deny-{direction.field}"
            where = declared.get(ns, first.source)
            yield _finding(
                rule,
                where,
                ns,
                f"namespace {ns} has workloads ({first.id}…) but no policy isolates all of its "
                f"pods for {direction.value}: what no rule names is allowed",
                f"add a NetworkPolicy in {ns} with podSelector: {{}} and policyTypes: "
                f"[{direction.value}], then allow what is needed",
            )


def _unselected(workloads: list[Workload], policies: list[NetworkPolicy]) -> Iterator[Finding]:
    for w in workloads:
        if w.host_network:
            continue
        labels = dict(w.labels)
        if any(p.namespace == w.namespace and p.pod_selector.matches(labels) for p in policies):
            continue
        yield _finding(
            "unselected-workload",
            w.source,
            w.id,
            f"no NetworkPolicy selects {w.id}: every peer may reach it and it may reach every peer",
            f"select it with a policy (or a default-deny) in namespace {w.namespace}",
        )


# -- one policy


def _policy(
    policy: NetworkPolicy,
    workloads: list[Workload],
    ns_labels: Mapping[str, Mapping[str, str]],
) -> Iterator[Finding]:
    own = [w for w in workloads if w.namespace == policy.namespace and not w.host_network]
    host = [
        w
        for w in workloads
        if w.namespace == policy.namespace
        and w.host_network
        and policy.pod_selector.matches(dict(w.labels))
    ]
    if host and not any(policy.pod_selector.matches(dict(w.labels)) for w in own):
        # kube-prometheus's node-exporter policy: the labels are right, the pods are not
        # isolated; "fix the labels" would send the reader the wrong way.
        named = ", ".join(w.id for w in host[:3]) + (" …" if len(host) > 3 else "")
        yield _finding(
            "policy-selects-nothing",
            policy.source,
            policy.id,
            f"{policy.id} selects only host-network pods ({named}), which NetworkPolicies "
            "do not isolate (they share the node's network): it enforces nothing on them",
            "restrict them on the node (a host firewall, Calico HostEndpoint or Cilium "
            "host policy), or delete the policy",
        )
    elif not any(policy.pod_selector.matches(dict(w.labels)) for w in own):
        yield _finding(
            "policy-selects-nothing",
            policy.source,
            policy.id,
            f"{policy.id} selects no workload of this tree (podSelector "
            f"{policy.pod_selector}); it enforces nothing here unless pods are made elsewhere",
            "fix the podSelector's labels, or delete the policy",
        )
    defined = {p.name for w in workloads for p in w.ports if p.name}
    for direction in Direction:
        rules = policy.ingress if direction is Direction.INGRESS else policy.egress
        if direction not in policy.policy_types:
            continue
        for rule in rules:
            yield from _rule(policy, rule, workloads, ns_labels, defined)


def _rule(
    policy: NetworkPolicy,
    rule: PolicyRule,
    workloads: list[Workload],
    ns_labels: Mapping[str, Mapping[str, str]],
    defined: set[str],
) -> Iterator[Finding]:
    where = f"{policy.id} {rule.label}"
    peer_word = "from" if rule.direction is Direction.INGRESS else "to"
    if not rule.peers:
        yield _finding(
            "allows-every-peer",
            rule.source,
            where,
            f"{where} has no `{peer_word}`: it admits every pod of every namespace and every "
            "address",
            f"list the peers in `{peer_word}` (podSelector, namespaceSelector or ipBlock)",
        )
    for peer in rule.peers:
        yield from _peer(policy, where, peer, workloads, ns_labels)
    if not rule.ports:
        yield _finding(
            "allows-every-port",
            rule.source,
            where,
            f"{where} has no `ports`: it admits every port of every protocol",
            "list the ports the peers need under `ports`",
        )
    for port in rule.ports:
        if port.port is None:
            yield _finding(
                "allows-every-port",
                port.source,
                where,
                f"{where} admits every {port.protocol} port (an entry without `port`)",
                "give the entry a `port` (and `endPort` for a range)",
            )
        elif isinstance(port.port, str) and port.port not in defined:
            yield _finding(
                "undefined-named-port",
                port.source,
                where,
                f"{where}: no container of this tree names a port {port.port!r}, so it "
                "matches nothing here (pods made elsewhere may define it)",
                "use the containerPort's exact name, or its number",
            )


def _peer(
    policy: NetworkPolicy,
    where: str,
    peer: Peer,
    workloads: list[Workload],
    ns_labels: Mapping[str, Mapping[str, str]],
) -> Iterator[Finding]:
    block = peer.ip_block
    if block is not None:
        if block.cidr.prefixlen == 0:
            but = f" except {', '.join(map(str, block.excepts))}" if block.excepts else ""
            yield _finding(
                "allows-any-address",
                peer.source,
                where,
                f"{where} admits every address ({block.cidr}{but})",
                "narrow the ipBlock to the ranges the workloads need",
            )
        return
    if peer.namespace_selector is not None and peer.namespace_selector.is_empty():
        pods = f", pods {peer.pod_selector}" if peer.pod_selector is not None else ""
        yield _finding(
            "allows-every-namespace",
            peer.source,
            where,
            f"{where} admits every namespace (namespaceSelector: {{}}{pods})",
            "name the namespaces with namespaceSelector labels "
            "(kubernetes.io/metadata.name for one namespace)",
        )
    # A namespaceSelector no namespace of the tree matches names namespaces kept elsewhere
    # (kube-system for DNS, most often): only a peer that matches within the tree's
    # namespaces, and no pod there, is a likely mistake.
    in_tree = peer.namespace_selector is None or any(
        peer.namespace_selector.matches(labels) for labels in ns_labels.values()
    )
    if in_tree and not any(_peer_matches(policy, peer, w, ns_labels) for w in workloads):
        yield _finding(
            "peer-matches-nothing",
            peer.source,
            where,
            f"{where}: peer ({peer}) matches no workload of this tree",
            "fix the selector's labels, or remove the peer",
        )


def _peer_matches(
    policy: NetworkPolicy, peer: Peer, w: Workload, ns_labels: Mapping[str, Mapping[str, str]]
) -> bool:
    if w.host_network:
        return False
    if peer.namespace_selector is None:
        if w.namespace != policy.namespace:
            return False
    elif not peer.namespace_selector.matches(ns_labels.get(w.namespace, {})):
        return False
    return peer.pod_selector is None or peer.pod_selector.matches(dict(w.labels))


# -- shadowed rules


def _shadowed(rmap: ReachabilityMap, exact: Mapping[str, NetworkPolicy]) -> Iterator[Finding]:
    """Rules compared by what they admit (``analysis.shadowed``), reported at the line
    the exact parser gives them."""
    for found in shadowed_rules(rmap):
        policy = exact.get(found.policy.id, found.policy)
        if found.direction not in policy.policy_types:
            continue
        rules = policy.ingress if found.direction is Direction.INGRESS else policy.egress
        a, b = rules[found.by], rules[found.rule]
        where = f"{policy.id} {b.label}"
        yield _finding(
            "shadowed-rule",
            b.source,
            where,
            f"{where} admits nothing that {a.label} (line {a.source.line}) does not",
            f"delete {b.label}, or narrow {a.label} if {b.label} is the intended one",
        )


# -- DNS


def _dns(rmap: ReachabilityMap) -> Iterator[Finding]:
    """Workloads whose egress is isolated (by a NetworkPolicy) that reach nothing on UDP
    53, reported once per isolating policy."""
    matcher = rmap.matcher
    by_policy: dict[str, tuple[NetworkPolicy, list[str]]] = {}
    for k in range(matcher.first_class, matcher.size):
        members = [e for e in rmap.members[k] if not e.is_outside]
        rules: tuple[CompiledRule, ...] | None = matcher.egress[k]
        if not members or rules is None:
            continue
        if any(53 in conn.ports("UDP") for conn in rmap.row(k).values()):
            continue
        isolating = sorted(
            matcher.isolating[k].get(Direction.EGRESS, ()),
            key=lambda p: (not p.pod_selector.is_empty(), p.namespace, p.name),
        )
        if not isolating:
            continue
        policy = isolating[0]
        by_policy.setdefault(policy.id, (policy, []))[1].extend(e.id for e in members)
    for _, (policy, ids) in sorted(by_policy.items()):
        shown = ", ".join(sorted(ids)[:3]) + (f" and {len(ids) - 3} more" if len(ids) > 3 else "")
        yield _finding(
            "egress-deny-without-dns",
            policy.source,
            policy.id,
            f"{policy.id} isolates egress of {shown}, and no rule lets them reach anything on "
            "UDP 53: name lookups will fail",
            "allow egress to kube-dns (namespace kube-system, k8s-app: kube-dns) on UDP and TCP 53",
        )
