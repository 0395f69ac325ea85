"""The brute-force reference, extended with CiliumNetworkPolicy and
CiliumClusterwideNetworkPolicy (cilium.io/v2), one concrete connection at a time.

Written from Cilium's documentation (docs.cilium.io, security/policy: language, deny,
intro) and its Go sources (pkg/k8s/apis/cilium.io/utils/utils.go, pkg/policy/rule.go,
pkg/policy/repository.go, pkg/policy/api/entity.go, pkg/labelsfilter/filter.go), sharing no
code with ``analysis/``. For one direction of a connection (the subject being the
destination for ingress, the source for egress):

1. a Cilium deny rule of a spec selecting the subject whose peer and port match denies
   (deny rules take precedence over every allow, of any kind);
2. the admin tier as in ``tests/reference_admin.py``;
3. if a NetworkPolicy, or a Cilium spec with rules in that direction whose
   ``enableDefaultDeny`` is not false, selects the subject, some NetworkPolicy rule or
   Cilium allow rule must admit the connection;
4. otherwise the baseline tier, then allowed.

A pod's identity: its labels (minus the agent's default label filter), plus
``io.kubernetes.pod.namespace``, ``io.cilium.k8s.namespace.labels.<k>`` and
``io.cilium.k8s.policy.cluster=default``, all of source ``k8s``. Host-network pods carry
the host's identity, which no endpoint selector here matches (entities ``cluster`` and
``all`` do). Peers the tree cannot tell (nodes, groups, services) match nothing.

A tree with a Cilium policy also has peers that are not pods (``RefPeer``): one per entity
that names something besides pods and ranges (host, remote-node, kube-apiserver, ingress,
health, init, unmanaged) and one per DNS name or pattern a ``toFQDNs`` names. No policy
governs them (nor traffic among them and the ranges); the entity ``cluster`` is every pod
and every such entity, ``world`` the ranges and the DNS names, ``all`` everything. A
``toFQDNs`` entry admits the DNS endpoints whose names it covers, but only for a pod
whose egress has a DNS rule (the agent's DNS proxy learns the addresses). The agent's
``allow-localhost`` default lets ``host`` into every pod, unless a deny rule denies it.

The agent's options (docs.cilium.io, *Policy Enforcement Modes*), passed as ``agent`` (the
settings file's words; none: the settings name no agent, upstream defaults): under
``enable-policy: never`` no NetworkPolicy and no Cilium rule of any kind applies (the admin
tiers still do); under ``always`` every pod (not host-network) needs an allow in each
direction, selected or not; ``allow-localhost: policy`` lets ``host`` in only where a rule
allows it. Settings naming the agent give a tree the entity peers even without a Cilium
policy.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tests.reference import (
    Cluster,
    Endpoint,
    IPNetwork,
    RefRange,
    RefWorkload,
    cluster_map,
    flatten,
    ip_block_networks,
    partition,
    selector_matches,
)
from tests.reference_admin import ALLOWING, TieredCluster, admin_networks

Obj = Mapping[str, Any]
CILIUM_KINDS = ("CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy")
NS_LABEL = "io.kubernetes.pod.namespace"
NS_LABELS = "io.cilium.k8s.namespace.labels"
KEEP = (NS_LABEL, NS_LABELS, "app.kubernetes.io", "io.cilium.k8s.policy.cluster")
DROP = (
    "io.kubernetes", "kubernetes.io", "k8s.io", "statefulset.kubernetes.io/pod-name",
    "apps.kubernetes.io/pod-index", "batch.kubernetes.io/job-completion-index",
    "pod-template-generation", "pod-template-hash", "controller-revision-hash",
    "annotation", "etcd_node",
)  # fmt: skip
SIDES = {"ingress": "from", "egress": "to"}


PEER_ENTITIES = ("host", "remote-node", "kube-apiserver", "ingress", "health", "init",
                 "unmanaged")  # fmt: skip


@dataclass(frozen=True)
class RefPeer(RefWorkload):
    """A Cilium entity or a DNS name (kind Entity / FQDN): an endpoint that is not a pod."""

    @property
    def id(self) -> str:
        return ("entity:" if self.kind == "Entity" else "fqdn:") + self.name

    def sort_key(self) -> tuple[Any, ...]:
        return (0, "", self.kind, self.name)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "namespace": "", "name": self.name}


def _dns(text: str) -> str:
    return text.lower().strip().removesuffix(".")


def fqdn_texts(objects: Iterable[Obj]) -> set[str]:
    out: set[str] = set()
    for pol in cilium_objects(objects):
        for spec in _specs(pol):
            for rule in spec.get("egress") or []:
                for item in (rule or {}).get("toFQDNs") or []:
                    out.add(_dns(item.get("matchName") or item.get("matchPattern")))
    return out


def peers_of(objects: Iterable[Obj], agent: dict[str, str] | None = None) -> list[RefPeer]:
    """The pseudo-endpoints of a tree (of two trees, for a diff: pass both)."""
    objs = list(objects)
    if not cilium_objects(objs) and agent is None:
        return []
    made = [RefPeer("Entity", "", e, (), (), True) for e in PEER_ENTITIES]
    return made + [RefPeer("FQDN", "", f, (), (), True) for f in sorted(fqdn_texts(objs))]


def _covers(selector: str, name: str) -> bool:
    """Whether every name the endpoint ``name`` stands for is one ``selector`` allows."""
    if selector in ("*", name):
        return True
    if "*" in name or "*" not in selector:
        return False
    # one `*` per DNS label position: letters, digits, `-`, `_` (no dot)
    pieces = selector.split("*")
    regex = "[a-z0-9_-]*".join(re.escape(p) for p in pieces)
    return re.fullmatch(regex, name) is not None


def _on_identity(reqs: list[tuple[str, str, list[str]]], identity: str) -> bool:
    """Whether every requirement holds on the labels {reserved:<identity>: ""}. A selector
    the agent scopes to a namespace never does (the identity has no namespace label); one
    naming the pod's namespace (or a reserved key, for a peer) is not scoped and may."""
    for key, op, values in reqs:
        source, name = _split(key)
        has = source in ("reserved", "any") and name == identity
        ok = {
            "In": has and "" in values,
            "NotIn": not has or "" not in values,
            "Exists": has,
            "DoesNotExist": not has,
        }[op]
        if not ok:
            return False
    return True


def cilium_objects(objects: Iterable[Obj]) -> list[Obj]:
    return [
        o for o in flatten(objects)
        if o.get("kind") in CILIUM_KINDS and o.get("apiVersion") == "cilium.io/v2"
    ]  # fmt: skip


def _specs(pol: Obj) -> list[Obj]:
    out = [pol["spec"]] if pol.get("spec") is not None else []
    return out + list(pol.get("specs") or [])


def _net(text: str) -> IPNetwork:
    if "/" in text:
        return ipaddress.ip_network(text, strict=False)
    return ipaddress.ip_network(ipaddress.ip_address(text))


def cilium_networks(objects: Iterable[Obj]) -> list[IPNetwork]:
    nets: list[IPNetwork] = []
    for pol in cilium_objects(objects):
        for spec in _specs(pol):
            for field in ("ingress", "ingressDeny", "egress", "egressDeny"):
                side = SIDES[field.removesuffix("Deny")]
                for rule in spec.get(field) or []:
                    nets.extend(_net(c) for c in (rule or {}).get(side + "CIDR") or [])
                    for item in (rule or {}).get(side + "CIDRSet") or []:
                        if "cidr" in item:
                            nets.append(_net(item["cidr"]))
                            nets.extend(_net(e) for e in item.get("except") or [])
    return nets


def _in_identity(key: str) -> bool:
    if key.startswith(KEEP):
        return True
    return not key.startswith(DROP) and "beta.kubernetes.io" not in key


def _split(key: str) -> tuple[str, str]:
    if ":" not in key:
        return "any", key
    source, _, rest = key.partition(":")
    return source, rest


def _requirements(sel: Obj) -> list[tuple[str, str, list[str]]]:
    reqs = [(k, "In", [v]) for k, v in (sel.get("matchLabels") or {}).items()]
    reqs += [
        (e["key"], e["operator"], list(e.get("values") or []))
        for e in sel.get("matchExpressions") or []
    ]
    return reqs


class CiliumCluster(TieredCluster):
    def __init__(
        self,
        objects: Iterable[Obj],
        ranges: Sequence[RefRange] | None = None,
        peers: Sequence[RefPeer] | None = None,
        agent: dict[str, str] | None = None,
    ) -> None:
        objs = flatten(objects)
        self.peers = list(peers) if peers is not None else peers_of(objs, agent)
        options = agent or {}
        self.mode = options.get("enable-policy", "default")
        self.localhost = options.get("allow-localhost", "auto") != "policy"
        self.services = [
            o for o in objs if o.get("kind") == "Service" and o.get("apiVersion") == "v1"
        ]
        if ranges is None:
            ranges = partition(
                [*ip_block_networks(objs), *admin_networks(objs), *cilium_networks(objs)]
            )
        super().__init__(objs, ranges)
        # (policy, spec) pairs; a clusterwide policy's namespace is None
        self.specs = [(p, s) for p in cilium_objects(objs) for s in _specs(p)]

    # -- identities and selectors

    def identity(self, ep: Endpoint) -> dict[str, str] | None:
        """The k8s-source identity labels of a pod; None for what has no pod identity."""
        if not isinstance(ep, RefWorkload) or ep.host_network:
            return None
        out = {k: v for k, v in ep.labels if _in_identity(k)}
        for k, v in self.ns_labels.get(ep.namespace, {}).items():
            out[f"{NS_LABELS}.{k}"] = v
        out[NS_LABEL] = ep.namespace
        out["io.cilium.k8s.policy.cluster"] = "default"
        out["io.cilium.k8s.policy.serviceaccount"] = ep.service_account
        return out

    @staticmethod
    def _matches(reqs: list[tuple[str, str, list[str]]], ident: dict[str, str] | None) -> bool:
        if ident is None:
            return False  # only pods are selected by labels here (reserved ones: not analysed)
        for key, op, values in reqs:
            source, name = _split(key)
            has = ident is not None and source in ("k8s", "any") and name in ident
            value = ident.get(name) if has and ident is not None else None
            ok = {
                "In": has and value in values,
                "NotIn": not has or value not in values,
                "Exists": has,
                "DoesNotExist": not has,
            }[op]
            if not ok:
                return False
        return True

    @staticmethod
    def _scoped(sel: Obj, namespace: str | None, peer: bool) -> list[tuple[str, str, list[str]]]:
        """getEndpointSelector: the namespace restriction Cilium adds to a peer selector."""
        reqs = _requirements(sel)
        keys = [k for k, _, _ in reqs]
        if peer and any(k.startswith("reserved:") for k in keys):
            return reqs
        named = any(k in (f"k8s:{NS_LABEL}", f"any:{NS_LABEL}", NS_LABEL) for k in keys)
        if named:
            return reqs
        if namespace is None:
            return [*reqs, (f"k8s:{NS_LABEL}", "Exists", [])]
        labels_key = any(
            k.startswith((f"k8s:{NS_LABELS}", f"any:{NS_LABELS}", NS_LABELS)) for k in keys
        )
        return reqs if labels_key else [*reqs, (f"k8s:{NS_LABEL}", "In", [namespace])]

    def _policy_namespace(self, pol: Obj) -> str | None:
        if pol["kind"] == "CiliumClusterwideNetworkPolicy":
            return None
        return (pol.get("metadata") or {}).get("namespace") or "default"

    def _selects(self, pol: Obj, spec: Obj, ep: Endpoint) -> bool:
        sel = spec.get("endpointSelector")
        if sel is None:
            return False  # a nodeSelector: nodes are not in the tree
        ns = self._policy_namespace(pol)
        if ns is not None:  # ParseToCiliumRule: the policy's namespace replaces any other
            labels = dict(sel.get("matchLabels") or {})
            labels.pop(f"k8s:{NS_LABEL}", None)
            sel = {**sel, "matchLabels": labels}
        reqs = _requirements(sel)
        if ns is not None:
            reqs.append((f"k8s:{NS_LABEL}", "In", [ns]))
        return self._matches(reqs, self.identity(ep))

    def _cilium_selecting(self, ep: Endpoint) -> list[tuple[Obj, Obj]]:
        return [(p, s) for p, s in self.specs if self._selects(p, s, ep)]

    # -- rules

    def _peer(
        self, pol: Obj, rule: Obj, side: str, peer: Endpoint, reqs: list[Obj], dns: bool
    ) -> bool:
        fields = ("Endpoints", "CIDR", "CIDRSet", "Entities", "Groups", "Nodes", "Services",
                  "FQDNs")  # fmt: skip
        given = [side + f for f in fields if side + f in rule]
        if any(rule[f] == [] for f in given):
            return False  # an empty list selects nothing
        if not given:
            return bool(rule.get("toPorts"))  # L4-only: every peer; nothing at all: none
        ns = self._policy_namespace(pol)
        ident = self.identity(peer)
        reserved = self._reserved_identity(peer)
        for sel in rule.get(side + "Endpoints") or []:
            own = self._scoped(sel or {}, ns, True)
            extra = [r for q in reqs for r in self._scoped(q or {}, ns, False)]
            if self._matches(own, ident) and self._matches(extra, ident):
                return True
            if reserved is not None and _on_identity(own + extra, reserved):
                return True
        if isinstance(peer, RefRange):
            blocks: list[tuple[str, list[str]]] = [(c, []) for c in rule.get(side + "CIDR") or []]
            blocks += [
                (i["cidr"], i.get("except") or [])
                for i in rule.get(side + "CIDRSet") or []
                if "cidr" in i
            ]
            for cidr, excepts in blocks:
                if self._in(peer, cidr) and not any(self._in(peer, e) for e in excepts):
                    return True
        is_dns = isinstance(peer, RefPeer) and peer.kind == "FQDN"
        for entity in rule.get(side + "Entities") or []:
            if entity == "all":
                return True
            if entity == "cluster" and isinstance(peer, RefWorkload) and not is_dns:
                return True
            if entity == "world" and is_dns:
                return True
            world = {"world": (4, 6), "world-ipv4": (4,), "world-ipv6": (6,)}.get(entity, ())
            if isinstance(peer, RefRange) and peer.version in world:
                return True
            if isinstance(peer, RefPeer) and peer.kind == "Entity" and peer.name == entity:
                return True
        for item in rule.get("toServices") or []:
            if self._backend(pol, item, peer):
                return True
        if dns and isinstance(peer, RefPeer) and peer.kind == "FQDN":  # is_dns, narrowed
            for item in rule.get("toFQDNs") or []:
                if _covers(_dns(item.get("matchName") or item.get("matchPattern")), peer.name):
                    return True
        return False

    def _backend(self, pol: Obj, item: Obj, peer: Endpoint) -> bool:
        """Whether ``peer`` is a pod a Service the toServices entry names selects."""
        if not isinstance(peer, RefWorkload) or peer.host_network:
            return False
        ref = item.get("k8sService") or item.get("k8sServiceSelector") or {}
        namespace = ref.get("namespace") or self._policy_namespace(pol)
        if "k8sService" in item and namespace is None:
            namespace = "default"  # a clusterwide policy's Service without a namespace
        for svc in self.services:
            meta = svc.get("metadata") or {}
            svc_ns = meta.get("namespace") or "default"
            if namespace is not None and svc_ns != namespace:
                continue
            if "k8sService" in item:
                if meta.get("name") != ref.get("serviceName"):
                    continue
            elif not selector_matches(ref.get("selector") or {}, meta.get("labels") or {}):
                continue
            wanted = (svc.get("spec") or {}).get("selector") or {}
            pod = dict(peer.labels)
            if (
                wanted
                and peer.namespace == svc_ns
                and all(pod.get(k) == v for k, v in wanted.items())
            ):
                return True
        return False

    @staticmethod
    def _reserved_identity(peer: Endpoint) -> str | None:
        """The reserved label a non-pod endpoint's identity carries (reserved:<it>)."""
        if isinstance(peer, RefRange):
            return "world"
        if isinstance(peer, RefPeer):
            return peer.name if peer.kind == "Entity" else "world"
        return None

    @staticmethod
    def _in(rng: RefRange, cidr: str) -> bool:
        net = _net(cidr)
        return net.version == rng.version and (
            int(net.network_address) <= rng.first and rng.last <= int(net.broadcast_address)
        )

    @staticmethod
    def _port(rule: Obj, protocol: str, port: int, dst: Endpoint) -> bool:
        entries = rule.get("toPorts")
        if not entries:
            return True
        for entry in entries:
            for p in entry.get("ports") or []:
                proto = p.get("protocol", "ANY")
                if proto not in ("ANY", protocol):
                    continue
                text = p.get("port")
                if text is None or text == "0":
                    return True
                if text.isdigit():
                    end = p.get("endPort") or int(text)
                    if int(text) <= port <= end:
                        return True
                elif isinstance(dst, RefWorkload) and any(
                    n == text.lower() and pr == protocol and c == port for n, pr, c in dst.ports
                ):
                    return True
        return False

    def _cilium_rules(
        self,
        field: str,
        specs: list[tuple[Obj, Obj]],
        peer: Endpoint,
        protocol: str,
        port: int,
        dst: Endpoint,
    ) -> list[tuple[Obj, str, int]]:
        """(policy, rule field, index) of the rules of ``field`` (ingress, egressDeny…)
        of ``specs`` that match the connection."""
        side = SIDES[field.removesuffix("Deny")]
        reqs = [q for _, s in specs for r in s.get(field) or [] for q in (r or {}).get(
            side + "Requires") or []]  # fmt: skip
        dns = any(
            (entry.get("rules") or {}).get("dns")
            for _, s in specs
            for r in s.get("egress") or []
            for entry in (r or {}).get("toPorts") or []
        )
        out = []
        for pol, spec in specs:
            for i, rule in enumerate(spec.get(field) or []):
                rule = rule or {}
                if self._peer(pol, rule, side, peer, reqs, dns) and self._port(
                    rule, protocol, port, dst
                ):
                    out.append((pol, field, i))
        return out

    @staticmethod
    def _default_deny(spec: Obj, direction: str) -> bool:
        has = bool(spec.get(direction)) or bool(spec.get(direction + "Deny"))
        return has and (spec.get("enableDefaultDeny") or {}).get(direction) is not False

    # -- the direction's verdict

    def _cilium_tiered(
        self,
        field: str,
        subject: Endpoint,
        peer: Endpoint,
        protocol: str,
        port: int,
        dst: Endpoint,
        network_policy: bool,
    ) -> bool:
        if self.mode == "never":  # nothing Cilium enforces: only the admin tiers
            action = self._first_match(self.anps, field, subject, peer, protocol, port, dst)
            if action in (*ALLOWING, "Deny"):
                return action in ALLOWING
            action = self._first_match(self.banps, field, subject, peer, protocol, port, dst)
            return action != "Deny"
        specs = self._cilium_selecting(subject) if isinstance(subject, RefWorkload) else []
        if self._cilium_rules(field + "Deny", specs, peer, protocol, port, dst):
            return False
        action = self._first_match(self.anps, field, subject, peer, protocol, port, dst)
        if action in (*ALLOWING, "Deny"):
            return action in ALLOWING
        direction = "Ingress" if field == "ingress" else "Egress"
        k8s = self.isolated(subject, direction)
        pod = self.identity(subject) is not None and not isinstance(subject, RefPeer)
        always = self.mode == "always" and pod
        if k8s or always or any(self._default_deny(s, field) for _, s in specs):
            allowed = k8s and network_policy
            # allow-localhost (the agent's default): the node reaches its pods
            local = (
                field == "ingress"
                and isinstance(peer, RefPeer)
                and peer.name == "host"
                and peer.kind == "Entity"
                and self.localhost
            )
            return (
                allowed
                or local
                or bool(self._cilium_rules(field, specs, peer, protocol, port, dst))
            )
        action = self._first_match(self.banps, field, subject, peer, protocol, port, dst)
        return action != "Deny"

    def endpoints(self) -> list[Endpoint]:
        return [*self.workloads, *self.peers, *self.ranges]

    def allows(self, src: Endpoint, dst: Endpoint, protocol: str, port: int) -> bool:
        outside = (RefRange, RefPeer)
        if isinstance(src, outside) and isinstance(dst, outside):
            return False  # no policy governs these pairs: not in the map
        return super().allows(src, dst, protocol, port)

    def egress_allows(self, src: Endpoint, dst: Endpoint, protocol: str, port: int) -> bool:
        np = Cluster.egress_allows(self, src, dst, protocol, port)
        return self._cilium_tiered("egress", src, dst, protocol, port, dst, np)

    def ingress_allows(self, src: Endpoint, dst: Endpoint, protocol: str, port: int) -> bool:
        np = Cluster.ingress_allows(self, src, dst, protocol, port)
        return self._cilium_tiered("ingress", dst, src, protocol, port, dst, np)

    def port_numbers(self) -> set[int]:
        nums = super().port_numbers()
        for _, spec in self.specs:
            for field in ("ingress", "ingressDeny", "egress", "egressDeny"):
                for rule in spec.get(field) or []:
                    for entry in (rule or {}).get("toPorts") or []:
                        for p in entry.get("ports") or []:
                            if str(p.get("port", "")).isdigit():
                                nums.add(int(p["port"]))
                            if p.get("endPort"):
                                nums.add(int(p["endPort"]))
        return nums


def cilium_reference_map(objects: Iterable[Obj]) -> dict[str, Any]:
    return cluster_map(CiliumCluster(objects))
