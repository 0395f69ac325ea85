"""Least-privilege NetworkPolicies from observed traffic (``reachdiff suggest``).

For each covered namespace: a default deny of both directions, DNS to the cluster DNS kept
(``allow-dns``), and per workload one policy whose ingress admits exactly the sources seen
reaching it and whose egress admits exactly the destinations it was seen reaching, peers
written as a person would (the fewest of the workload's labels that still tell it apart in
its namespace, a namespace by its ``kubernetes.io/metadata.name``, an address as a /32),
sources with the same ports in one rule, and a port by its name where the pod names it.

The result is verified with the engine: the tree plus the suggestion allows every observed
forwarded flow and, between covered workloads, nothing else (DNS apart); ``verify`` says
where it does not (e.g. a policy already in the tree allows more).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import yaml

from analysis.flowmap import FlowMapping
from analysis.flows import FORWARDED
from analysis.model import NAMESPACE_NAME_LABEL, Tree, Workload
from analysis.ports import ConnectionSet, PortSet
from analysis.reachability import ReachabilityMap, compute_map

PREFERRED_KEYS = (
    "app.kubernetes.io/name",
    "app",
    "k8s-app",
    "name",
    "app.kubernetes.io/component",
    "component",
    "app.kubernetes.io/instance",
    "tier",
    "role",
)
NAMESPACE_POLICIES = ("default-deny", "allow-dns")
DNS_NAMESPACE = "kube-system"
DNS_LABELS = {"k8s-app": "kube-dns"}
DNS_PORTS = ConnectionSet.of({"UDP": PortSet.single(53), "TCP": PortSet.single(53)})

Obj = dict[str, Any]
Port = tuple[str, int]  # (protocol, number)


@dataclass(frozen=True, slots=True)
class Suggestion:
    policies: tuple[Obj, ...]
    namespaces: tuple[str, ...]  # covered
    not_expressed: tuple[str, ...]  # observed flows no NetworkPolicy peer can name, and why

    def yaml(self) -> str:
        return yaml.safe_dump_all(self.policies, sort_keys=False, default_flow_style=False)


def covered_namespaces(tree: Tree, wanted: Sequence[str]) -> tuple[str, ...]:
    """The namespaces named, else every namespace with workloads except ``kube-*`` ones
    (a default deny there would cut the cluster's own services)."""
    if wanted:
        return tuple(sorted(set(wanted)))
    names = {w.namespace for w in tree.workloads if w.kind != "Outside"}
    return tuple(sorted(n for n in names if not n.startswith("kube-") and not n.startswith("~")))


def selector_labels(w: Workload, neighbours: Iterable[Workload]) -> dict[str, str]:
    """The fewest of ``w``'s labels that select what all its labels select among the
    workloads of its namespace (preferring ``app``-like keys)."""
    labels = dict(w.labels)
    others = [dict(o.labels) for o in neighbours if o.namespace == w.namespace]

    def selects(keys: Iterable[str]) -> frozenset[int]:
        return frozenset(
            n for n, o in enumerate(others) if all(o.get(k) == labels[k] for k in keys)
        )

    target = selects(labels)
    order = [k for k in PREFERRED_KEYS if k in labels] + sorted(
        k for k in labels if k not in PREFERRED_KEYS
    )
    for size in (1, 2):
        for keys in itertools.combinations(order, size):
            if selects(keys) == target:
                return {k: labels[k] for k in keys}
    return labels


def _ports(ports: Iterable[Port], named: Mapping[Port, str]) -> list[Obj]:
    out: list[Obj] = []
    for protocol, number in sorted(set(ports), key=lambda p: (p[0], p[1])):
        port: int | str = named.get((protocol, number), number)
        out.append({"protocol": protocol, "port": port})
    return out


def _named_ports(w: Workload) -> dict[Port, str]:
    return {(p.protocol, p.port): p.name for p in w.ports if p.name}


class _Builder:
    def __init__(self, tree: Tree, namespaces: Sequence[str]) -> None:
        self.tree = tree
        self.covered = set(namespaces)
        self.workloads = {w.id: w for w in tree.workloads if w.kind != "Outside"}
        self.selectors: dict[str, dict[str, str]] = {}
        # subject id -> direction -> peer key -> ports; peer keys are hashable renderings
        self.rules: dict[str, dict[str, dict[str, set[Port]]]] = {}
        self.peer_objects: dict[str, Obj] = {}
        self.peer_workload: dict[str, str] = {}
        self.not_expressed: list[str] = []

    def selector(self, w: Workload) -> dict[str, str]:
        found = self.selectors.get(w.id)
        if found is None:
            found = self.selectors[w.id] = selector_labels(w, self.workloads.values())
        return found

    def subject(self, wid: str) -> Workload | None:
        w = self.workloads.get(wid)
        if w is None or w.namespace not in self.covered or w.host_network or not w.labels:
            return None
        return w

    def peer(self, subject_ns: str, wid: str, ip: str) -> str | None:
        if wid.startswith("ip:"):
            cidr = ip if "/" in ip else f"{ip}/{32 if ':' not in ip else 128}"
            key = f"ip {cidr}"
            self.peer_objects[key] = {"ipBlock": {"cidr": cidr}}
            return key
        w = self.workloads.get(wid)
        if w is None or not w.labels:
            return None
        pods = {"podSelector": {"matchLabels": self.selector(w)}}
        if w.namespace == subject_ns:
            obj: Obj = pods
        else:
            ns = {"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: w.namespace}}}
            obj = {**ns, **pods}
        # The same workload is written differently from its own namespace and another's.
        key = f"{subject_ns}|{w.namespace}|{sorted(self.selector(w).items())}"
        self.peer_objects[key] = obj
        self.peer_workload[key] = wid
        return key

    def policy_name(self, w: Workload) -> str:
        """The workload's name, or ``name-kind`` when another workload of the namespace
        (or a namespace-wide policy) has it: policy names are unique per namespace."""
        clash = w.name in NAMESPACE_POLICIES or any(
            o.name == w.name and o.namespace == w.namespace and o.id != w.id
            for o in self.workloads.values()
        )
        return f"{w.name}-{w.kind.lower()}" if clash else w.name

    def add(self, subject: Workload, direction: str, peer: str, port: Port) -> None:
        by_dir = self.rules.setdefault(subject.id, {}).setdefault(direction, {})
        by_dir.setdefault(peer, set()).add(port)

    def policy(self, w: Workload) -> Obj | None:
        by_dir = self.rules.get(w.id, {})
        if not by_dir:
            return None
        spec: Obj = {"podSelector": {"matchLabels": self.selector(w)}, "policyTypes": []}
        for direction in ("ingress", "egress"):
            peers = by_dir.get(direction)
            if not peers:
                continue
            spec["policyTypes"].append(direction.capitalize())
            groups: dict[tuple[Port, ...], list[str]] = {}
            for key, seen in peers.items():
                groups.setdefault(tuple(sorted(seen)), []).append(key)
            rules = []
            for group, keys in sorted(groups.items()):
                if direction == "ingress":
                    named = _named_ports(w)
                else:
                    targets = {self.peer_workload.get(k) for k in keys}
                    only = next(iter(targets)) if len(targets) == 1 else None
                    named = _named_ports(self.workloads[only]) if only else {}
                peer_field = "from" if direction == "ingress" else "to"
                rules.append(
                    {
                        peer_field: [self.peer_objects[k] for k in sorted(keys)],
                        "ports": _ports(group, named),
                    }
                )
            spec[direction] = rules
        return {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": self.policy_name(w), "namespace": w.namespace},
            "spec": spec,
        }


def _is_dns(w: Workload | None, port: Port) -> bool:
    return (
        w is not None
        and w.namespace == DNS_NAMESPACE
        and port[1] == 53
        and all(dict(w.labels).get(k) == v for k, v in DNS_LABELS.items())
    )


def _namespace_policies(ns: str) -> list[Obj]:
    meta = {"namespace": ns}
    dns_peer = {
        "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: DNS_NAMESPACE}},
        "podSelector": {"matchLabels": dict(DNS_LABELS)},
    }
    return [
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "default-deny", **meta},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "allow-dns", **meta},
            "spec": {
                "podSelector": {},
                "policyTypes": ["Egress"],
                "egress": [
                    {
                        "to": [dns_peer],
                        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
                    }
                ],
            },
        },
    ]


def suggest(tree: Tree, mapping: FlowMapping, namespaces: Sequence[str] = ()) -> Suggestion:
    """Policies for the covered namespaces from the forwarded flows of ``mapping`` (flows
    placed on ``tree``'s own map, without representatives)."""
    covered = covered_namespaces(tree, namespaces)
    b = _Builder(tree, covered)
    for m in mapping.mapped:
        key = m.stat.key
        if key.verdict != FORWARDED:
            continue
        port = (key.protocol, key.port)
        src, dst = b.subject(m.src), b.subject(m.dst)
        if _is_dns(b.workloads.get(m.dst), port) and src is not None:
            continue  # allow-dns has it
        if src is not None:
            peer = b.peer(src.namespace, m.dst, key.dst.ip)
            if peer is None:
                b.not_expressed.append(f"{m.src} -> {m.dst} {key.protocol} {key.port}: no labels")
            else:
                b.add(src, "egress", peer, port)
        if dst is not None:
            peer = b.peer(dst.namespace, m.src, key.src.ip)
            if peer is None:
                b.not_expressed.append(f"{m.src} -> {m.dst} {key.protocol} {key.port}: no labels")
            else:
                b.add(dst, "ingress", peer, port)
    for u in mapping.unmapped:
        if u.stat.key.verdict == FORWARDED:
            k = u.stat.key
            b.not_expressed.append(f"{k.src} -> {k.dst} {k.protocol} {k.port}: {u.reason}")
    policies: list[Obj] = []
    for ns in covered:
        policies += _namespace_policies(ns)
        for w in sorted(b.workloads.values(), key=lambda w: (w.kind, w.name)):
            if w.namespace == ns and b.subject(w.id) is not None:
                found = b.policy(w)
                if found is not None:
                    policies.append(found)
    for w in b.workloads.values():
        if w.namespace in b.covered and (w.host_network or not w.labels):
            why = "host network: no policy selects it" if w.host_network else "no labels to select"
            b.not_expressed.append(f"{w.id}: {why}")
    return Suggestion(tuple(policies), covered, tuple(sorted(set(b.not_expressed))))


# --- verification ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Verification:
    exact: bool
    missing: tuple[str, ...]  # observed forwarded flows the tree + suggestion still denies
    extra: tuple[str, ...]  # allowed between covered workloads but never observed


def with_policies(tree: Tree, added: Tree) -> Tree:
    return replace(tree, policies=(*tree.policies, *added.policies))


def verify(
    tree: Tree,
    suggested: Tree,
    mapping: FlowMapping,
    covered: Sequence[str],
    remap: Any,
) -> Verification:
    """``remap(rmap)`` places the flows on the combined tree's map (ranges are cut anew)."""
    combined = with_policies(tree, suggested)
    rmap: ReachabilityMap = compute_map(combined)
    placed: FlowMapping = remap(rmap)
    inside = set(covered)
    workloads = {w.id: w for w in tree.workloads if w.kind != "Outside"}
    subjects = [
        w for w in workloads.values() if w.namespace in inside and w.labels and not w.host_network
    ]
    observed: dict[tuple[str, str], ConnectionSet] = {}
    missing = []
    for m in placed.mapped:
        k = m.stat.key
        if k.verdict != FORWARDED:
            continue
        one = ConnectionSet.of({k.protocol: PortSet.single(k.port)})
        observed[(m.src, m.dst)] = observed.get((m.src, m.dst), ConnectionSet()) | one
        # Covered namespaces deny by default: any flow with an end there must be allowed.
        touches = any(e in workloads and workloads[e].namespace in inside for e in (m.src, m.dst))
        if touches and not rmap.allowed(m.src, m.dst).allows(k.protocol, k.port):
            missing.append(f"{m.src} -> {m.dst} {k.protocol} {k.port}")
    extra = []
    for s in subjects:
        for d in subjects:
            allowed = rmap.allowed(s.id, d.id)
            if _is_dns(d, ("UDP", 53)):
                allowed = allowed - DNS_PORTS
            more = allowed - observed.get((s.id, d.id), ConnectionSet())
            if more:
                extra.append(f"{s.id} -> {d.id} {more}")
    return Verification(not missing and not extra, tuple(sorted(missing)), tuple(extra))
