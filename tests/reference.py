"""A brute-force reference evaluator for NetworkPolicy reachability: the engine's test oracle.

Written straight from the Kubernetes ``networking.k8s.io/v1`` NetworkPolicy spec and
docs/semantics.md, and deliberately naive: it reads the raw object dicts (as parsed from
YAML) and decides every concrete (source, destination, protocol, port) by asking each policy
directly. It shares no code with ``analysis/`` and must never import it, so a mistake in the
engine's equivalence classes, bitsets or interval algebra cannot hide in both places.

Input objects are assumed valid (the engine's loader rejects invalid ones; the tests only
feed valid trees here).
"""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Obj = Mapping[str, Any]

PROTOCOLS: tuple[str, ...] = ("TCP", "UDP", "SCTP")
MIN_PORT, MAX_PORT = 1, 65535
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
FAMILY_SIZE: dict[int, int] = {4: 2**32, 6: 2**128}

# Where each workload kind keeps its pod template (the object whose metadata.labels and spec
# are the pods'). A Pod is its own template; a controller's own metadata.labels are not the
# pods' labels and must be ignored.
POD_TEMPLATE_PATH: dict[str, tuple[str, ...]] = {
    "Pod": (),
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "ReplicationController": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}


# ---------------------------------------------------------------------------- endpoints


@dataclass(frozen=True)
class RefWorkload:
    kind: str
    namespace: str
    name: str
    labels: tuple[tuple[str, str], ...]
    # (name or None, protocol, containerPort) of every container port of the pod template
    ports: tuple[tuple[str | None, str, int], ...]
    host_network: bool
    service_account: str = "default"  # the pod spec's (API default: "default")

    @property
    def id(self) -> str:
        return f"{self.namespace}/{self.kind}/{self.name}"

    def sort_key(self) -> tuple[Any, ...]:
        return (0, self.id)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "namespace": self.namespace, "name": self.name}


@dataclass(frozen=True)
class RefRange:
    """A contiguous range [first, last] of one address family's integer addresses."""

    version: int
    first: int
    last: int

    def cidrs(self) -> list[str]:
        cls = ipaddress.IPv4Address if self.version == 4 else ipaddress.IPv6Address
        nets = ipaddress.summarize_address_range(cls(self.first), cls(self.last))
        return [str(n) for n in nets]

    @property
    def id(self) -> str:
        return "ip:" + ",".join(self.cidrs())

    def sort_key(self) -> tuple[Any, ...]:
        return (1, self.version, self.first)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "kind": "External", "cidrs": self.cidrs()}


Endpoint = RefWorkload | RefRange


# ---------------------------------------------------------------------------- object access


def flatten(objects: Iterable[Obj]) -> list[Obj]:
    """Expand ``kind: List`` objects into their items (recursively)."""
    out: list[Obj] = []
    for obj in objects:
        if not isinstance(obj, Mapping):
            continue
        if obj.get("kind") == "List":
            out.extend(flatten(obj.get("items") or []))
        else:
            out.append(obj)
    return out


def _namespace_of(obj: Obj) -> str:
    return (obj.get("metadata") or {}).get("namespace") or "default"


def _dig(obj: Obj, path: Sequence[str]) -> Obj:
    for key in path:
        obj = obj.get(key) or {}
    return obj


def workloads_of(objects: Iterable[Obj]) -> list[RefWorkload]:
    out: list[RefWorkload] = []
    for obj in flatten(objects):
        kind = obj.get("kind")
        if is_operated(obj):
            out.extend(operated_workloads(obj))
            continue
        if kind not in POD_TEMPLATE_PATH:
            continue
        template = _dig(obj, POD_TEMPLATE_PATH[kind])
        labels = (template.get("metadata") or {}).get("labels") or {}
        spec = template.get("spec") or {}
        ports: list[tuple[str | None, str, int]] = []
        # Sidecars (init containers with restartPolicy Always) run beside the app
        # containers for the pod's whole life, so their ports are the pod's ports too;
        # ordinary init containers have exited before the pod serves anything.
        sidecars = [
            c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"
        ]
        for container in [*(spec.get("containers") or []), *sidecars]:
            for cp in container.get("ports") or []:
                ports.append((cp.get("name"), cp.get("protocol", "TCP"), int(cp["containerPort"])))
        out.append(
            RefWorkload(
                kind=kind,
                namespace=_namespace_of(obj),
                name=obj["metadata"]["name"],
                labels=tuple(sorted(labels.items())),
                ports=tuple(ports),
                host_network=bool(spec.get("hostNetwork", False)),
                service_account=(
                    spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
                ),
            )
        )
    return out


# ---------------------------------------------------------------------------- operated pods
# The Prometheus Operator (monitoring.coreos.com) runs pods for four of its kinds. Written
# from the operator's statefulset code and tests (prometheus-operator, Apache-2.0), as a
# table: the labels the operator puts over spec.podMetadata.labels ("{}" is the object's
# name), and the ports of its own containers. A port is (name, protocol, number, when),
# ``when`` one of "always", "served" (unless spec.listenLocal), "thanos" (spec.thanos set).

OPERATED_KINDS: dict[str, tuple[dict[str, str], tuple[tuple[str, str, int, str], ...]]] = {
    "Prometheus": (
        {
            "app.kubernetes.io/name": "prometheus",
            "app.kubernetes.io/instance": "{}",
            "app.kubernetes.io/managed-by": "prometheus-operator",
            "prometheus": "{}",
            "operator.prometheus.io/name": "{}",
        },
        (
            ("PORTNAME", "TCP", 9090, "served"),
            ("reloader-web", "TCP", 8080, "served"),
            ("http", "TCP", 10902, "thanos"),
            ("grpc", "TCP", 10901, "thanos"),
        ),
    ),
    "Alertmanager": (
        {
            "app.kubernetes.io/name": "alertmanager",
            "app.kubernetes.io/instance": "{}",
            "app.kubernetes.io/managed-by": "prometheus-operator",
            "alertmanager": "{}",
        },
        (
            ("PORTNAME", "TCP", 9093, "served"),
            ("reloader-web", "TCP", 8080, "served"),
            ("mesh-tcp", "TCP", 9094, "always"),
            ("mesh-udp", "UDP", 9094, "always"),
        ),
    ),
    "PrometheusAgent": (
        {
            "app.kubernetes.io/name": "prometheus-agent",
            "app.kubernetes.io/instance": "{}",
            "app.kubernetes.io/managed-by": "prometheus-operator",
            "operator.prometheus.io/name": "{}",
        },
        (
            ("PORTNAME", "TCP", 9090, "served"),
            ("reloader-web", "TCP", 8080, "served"),
        ),
    ),
    "ThanosRuler": (
        {
            "app.kubernetes.io/name": "thanos-ruler",
            "app.kubernetes.io/instance": "{}",
            "app.kubernetes.io/managed-by": "prometheus-operator",
            "thanos-ruler": "{}",
        },
        (
            ("grpc", "TCP", 10901, "always"),
            ("PORTNAME", "TCP", 10902, "served"),
            ("reloader-web", "TCP", 8080, "served"),
        ),
    ),
}
VERSION_LABEL = "app.kubernetes.io/version"


def operated_workloads(obj: Obj) -> list[RefWorkload]:
    """The pods the operator runs for one object: a workload per Prometheus shard."""
    kind = obj["kind"]
    fixed, own_ports = OPERATED_KINDS[kind]
    name = obj["metadata"]["name"]
    spec = obj.get("spec") or {}
    labels = dict((spec.get("podMetadata") or {}).get("labels") or {})
    version = spec.get("version")
    if kind == "Alertmanager":  # its version label is the operator's, over podMetadata's
        labels.pop(VERSION_LABEL, None)
        if version:
            labels[VERSION_LABEL] = version.lstrip("v")  # Go's strings.TrimLeft
    elif kind in ("Prometheus", "PrometheusAgent") and version and VERSION_LABEL not in labels:
        labels[VERSION_LABEL] = version[1:] if version.startswith("v") else version
    for key, value in fixed.items():
        labels[key] = name if value == "{}" else value
    ports = set()
    served = not spec.get("listenLocal", False)
    for port_name, protocol, number, when in own_ports:
        if when == "served" and not served:
            signal = kind.startswith("Prometheus") and spec.get("reloadStrategy") == "ProcessSignal"
            if port_name == "reloader-web" and signal:
                ports.add((port_name, protocol, number))
            continue
        if when == "thanos" and spec.get("thanos") is None:
            continue
        if port_name == "PORTNAME":
            port_name = spec.get("portName") or "web"
        ports.add((port_name, protocol, number))
    for container in [
        *(spec.get("containers") or []),
        *(c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"),
    ]:
        for cp in container.get("ports") or []:
            ports.add((cp.get("name"), cp.get("protocol", "TCP"), int(cp["containerPort"])))
    # A PrometheusAgent shards like Prometheus, except as a DaemonSet (one pod per node).
    daemons = kind == "PrometheusAgent" and spec.get("mode") == "DaemonSet"
    sharded = kind in ("Prometheus", "PrometheusAgent") and not daemons
    shards = max(1, spec.get("shards") or 1) if sharded else 1
    out = []
    for shard in range(shards):
        pod_labels = dict(labels)
        if sharded:
            pod_labels["operator.prometheus.io/shard"] = str(shard)
        out.append(
            RefWorkload(
                kind=kind,
                namespace=_namespace_of(obj),
                name=name if shard == 0 else f"{name}-shard-{shard}",
                labels=tuple(sorted(pod_labels.items())),
                ports=tuple(sorted(ports, key=repr)),
                host_network=bool(spec.get("hostNetwork", False)),
            )
        )
    return out


def is_operated(obj: Obj) -> bool:
    return obj.get("kind") in OPERATED_KINDS and str(obj.get("apiVersion", "")).startswith(
        "monitoring.coreos.com/"
    )


def policies_of(objects: Iterable[Obj]) -> list[Obj]:
    return [o for o in flatten(objects) if o.get("kind") == "NetworkPolicy"]


def namespace_labels(objects: Iterable[Obj]) -> dict[str, dict[str, str]]:
    """Labels of every namespace; the API server always sets the metadata.name label."""
    objs = flatten(objects)
    labels: dict[str, dict[str, str]] = {}
    for obj in objs:
        if obj.get("kind") == "Namespace":
            name = obj["metadata"]["name"]
            labels[name] = dict(obj["metadata"].get("labels") or {})
    for obj in objs:
        if (
            obj.get("kind") in POD_TEMPLATE_PATH
            or obj.get("kind") == "NetworkPolicy"
            or is_operated(obj)
        ):
            labels.setdefault(_namespace_of(obj), {})
    for name, ls in labels.items():
        ls[NAMESPACE_NAME_LABEL] = name
    return labels


# ---------------------------------------------------------------------------- external ranges


IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def ip_block_networks(objects: Iterable[Obj]) -> list[IPNetwork]:
    """Every ipBlock cidr and except in the policies (of any direction, listed or not)."""
    nets: list[IPNetwork] = []
    for pol in policies_of(objects):
        spec = pol.get("spec") or {}
        for direction, peer_field in (("ingress", "from"), ("egress", "to")):
            for rule in spec.get(direction) or []:
                for peer in (rule or {}).get(peer_field) or []:
                    block = peer.get("ipBlock")
                    if block is None:
                        continue
                    nets.append(ipaddress.ip_network(block["cidr"], strict=False))
                    for exc in block.get("except") or []:
                        nets.append(ipaddress.ip_network(exc, strict=False))
    return nets


def partition(networks: Iterable[IPNetwork]) -> list[RefRange]:
    """Cut both address families at every network's first address and one past its last."""
    cuts: dict[int, set[int]] = {4: {0, FAMILY_SIZE[4]}, 6: {0, FAMILY_SIZE[6]}}
    for net in networks:
        cuts[net.version].add(int(net.network_address))
        cuts[net.version].add(int(net.broadcast_address) + 1)
    out: list[RefRange] = []
    for version in (4, 6):
        points = sorted(cuts[version])
        out.extend(RefRange(version, a, b - 1) for a, b in itertools.pairwise(points))
    return out


def _range_in(rng: RefRange, cidr: str) -> bool:
    # Every cidr/except is a union of whole ranges of the partition, so one representative
    # address decides the whole range; ``partition`` is built from these very networks.
    net = ipaddress.ip_network(cidr, strict=False)
    if net.version != rng.version:
        return False
    return int(net.network_address) <= rng.first <= int(net.broadcast_address)


# ---------------------------------------------------------------------------- matching


def selector_matches(selector: Obj | None, labels: Mapping[str, str]) -> bool:
    """metav1.LabelSelector: the ANDed matchLabels and matchExpressions; {} matches all."""
    if selector is None:
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if key not in labels or labels[key] != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], list(expr.get("values") or [])
        present = key in labels
        if op == "In":
            ok = present and labels[key] in values
        elif op == "NotIn":
            ok = (not present) or labels[key] not in values
        elif op == "Exists":
            ok = present
        elif op == "DoesNotExist":
            ok = not present
        else:
            raise ValueError(f"operator {op}")
        if not ok:
            return False
    return True


def policy_types(policy: Obj) -> set[str]:
    spec = policy.get("spec") or {}
    listed = spec.get("policyTypes")
    if listed:
        return set(listed)
    # The API server's defaulting: Ingress always, Egress when there is an egress rule.
    # An empty list is defaulted like a missing one.
    types = {"Ingress"}
    if spec.get("egress"):
        types.add("Egress")
    return types


class Cluster:
    """One manifest tree, evaluated one concrete connection at a time."""

    def __init__(self, objects: Iterable[Obj], ranges: Sequence[RefRange] | None = None) -> None:
        objs = flatten(objects)
        self.workloads = workloads_of(objs)
        self.policies = policies_of(objs)
        self.ns_labels = namespace_labels(objs)
        self.ranges = list(ranges) if ranges is not None else partition(ip_block_networks(objs))

    # -- selection and isolation

    def _selecting(self, pod: RefWorkload, direction: str) -> list[Obj]:
        """Policies of ``direction``'s type that select ``pod`` (host-network pods: none)."""
        if pod.host_network:
            return []
        out = []
        for pol in self.policies:
            if _namespace_of(pol) != pod.namespace:
                continue
            if direction not in policy_types(pol):
                continue
            spec = pol.get("spec") or {}
            if selector_matches(spec.get("podSelector") or {}, dict(pod.labels)):
                out.append(pol)
        return out

    def _peer_matches(self, policy: Obj, peer: Obj, ep: Endpoint) -> bool:
        if "ipBlock" in peer:
            if not isinstance(ep, RefRange):
                return False  # ipBlocks never match pods (pod and node IPs are unknown)
            block = peer["ipBlock"]
            if not _range_in(ep, block["cidr"]):
                return False
            return not any(_range_in(ep, exc) for exc in block.get("except") or [])
        if not isinstance(ep, RefWorkload) or ep.host_network:
            return False  # selectors match only ordinary pods
        ns_sel = peer.get("namespaceSelector")
        pod_sel = peer.get("podSelector")
        if ns_sel is None:
            ns_ok = ep.namespace == _namespace_of(policy)
        else:
            ns_ok = selector_matches(ns_sel, self.ns_labels.get(ep.namespace, {}))
        return ns_ok and selector_matches(pod_sel, dict(ep.labels))

    @staticmethod
    def _port_matches(entry: Obj, protocol: str, port: int, dst: Endpoint) -> bool:
        if entry.get("protocol", "TCP") != protocol:
            return False
        number = entry.get("port")
        if number is None:
            return True
        if isinstance(number, int):
            end = entry.get("endPort")
            return number <= port <= (end if end is not None else number)
        # A named port is resolved on the destination pod, for this protocol only.
        if not isinstance(dst, RefWorkload):
            return False
        return any(n == number and p == protocol and c == port for n, p, c in dst.ports)

    def _rule_allows(
        self,
        policy: Obj,
        rule: Obj,
        peer_field: str,
        peer: Endpoint,
        protocol: str,
        port: int,
        dst: Endpoint,
    ) -> bool:
        rule = rule or {}
        peers = rule.get(peer_field) or []
        if peers and not any(self._peer_matches(policy, p, peer) for p in peers):
            return False
        entries = rule.get("ports") or []
        if not entries:
            return protocol in PROTOCOLS
        return any(self._port_matches(e, protocol, port, dst) for e in entries)

    def egress_allows(self, src: Endpoint, dst: Endpoint, protocol: str, port: int) -> bool:
        if isinstance(src, RefRange):
            return True
        selecting = self._selecting(src, "Egress")
        if not selecting:
            return True
        return any(
            self._rule_allows(pol, rule, "to", dst, protocol, port, dst)
            for pol in selecting
            for rule in (pol.get("spec") or {}).get("egress") or []
        )

    def ingress_allows(self, src: Endpoint, dst: Endpoint, protocol: str, port: int) -> bool:
        if isinstance(dst, RefRange):
            return True
        selecting = self._selecting(dst, "Ingress")
        if not selecting:
            return True
        return any(
            self._rule_allows(pol, rule, "from", src, protocol, port, dst)
            for pol in selecting
            for rule in (pol.get("spec") or {}).get("ingress") or []
        )

    def allows(self, src: Endpoint, dst: Endpoint, protocol: str, port: int) -> bool:
        return self.egress_allows(src, dst, protocol, port) and self.ingress_allows(
            src, dst, protocol, port
        )

    # -- admitting rules (for checking the engine's explanations)

    def admitting_rules(
        self, src: Endpoint, dst: Endpoint, protocol: str, port: int
    ) -> set[tuple[str, str, str]]:
        """(policy id, direction, rule label) of every rule that admits the connection."""
        out: set[tuple[str, str, str]] = set()
        if isinstance(src, RefWorkload):
            for pol in self._selecting(src, "Egress"):
                for i, rule in enumerate((pol.get("spec") or {}).get("egress") or []):
                    if self._rule_allows(pol, rule, "to", dst, protocol, port, dst):
                        out.add((policy_id(pol), "Egress", f"egress[{i}]"))
        if isinstance(dst, RefWorkload):
            for pol in self._selecting(dst, "Ingress"):
                for i, rule in enumerate((pol.get("spec") or {}).get("ingress") or []):
                    if self._rule_allows(pol, rule, "from", src, protocol, port, dst):
                        out.add((policy_id(pol), "Ingress", f"ingress[{i}]"))
        return out

    def isolated(self, ep: Endpoint, direction: str) -> bool:
        return isinstance(ep, RefWorkload) and bool(self._selecting(ep, direction))

    def endpoints(self) -> list[Endpoint]:
        return [*self.workloads, *self.ranges]

    def port_numbers(self) -> set[int]:
        """Every number a port predicate can compare against: see ``interesting_ports``."""
        nums: set[int] = set()
        for wl in self.workloads:
            nums.update(c for _, _, c in wl.ports)
        for pol in self.policies:
            spec = pol.get("spec") or {}
            for direction in ("ingress", "egress"):
                for rule in spec.get(direction) or []:
                    for entry in (rule or {}).get("ports") or []:
                        for key in ("port", "endPort"):
                            if isinstance(entry.get(key), int):
                                nums.add(entry[key])
        return nums


def policy_id(policy: Obj) -> str:
    return f"{_namespace_of(policy)}/NetworkPolicy/{policy['metadata']['name']}"


# ---------------------------------------------------------------------------- port sets


def interesting_ports(numbers: Iterable[int]) -> list[int]:
    """The ports at which an allowed/denied answer can change, ascending, starting at 1.

    For a fixed (source, destination, protocol), "port x is allowed" is a boolean combination
    of atoms of three shapes: a constant (an entry without ``port``, a rule without
    ``ports``, an unisolated side), ``x == c`` (a numeric ``port`` without ``endPort``, or a
    named port resolved to a containerPort c) and ``lo <= x <= hi`` (``port``/``endPort``).
    ``x == c`` only changes value between c-1 and c and between c and c+1; ``lo <= x <= hi``
    only between lo-1 and lo and between hi and hi+1. Every c, lo and hi is a containerPort,
    port or endPort in the tree, so with p and p+1 (and p-1) of each of them in the list,
    every atom, hence the answer, is constant from one listed port up to just before the
    next (or up to 65535 after the last). Evaluating at the listed ports is therefore exact.
    """
    points = {MIN_PORT, MAX_PORT}
    for n in numbers:
        points.update(p for p in (n - 1, n, n + 1) if MIN_PORT <= p <= MAX_PORT)
    return sorted(points)


def format_ports(points: Sequence[int], allowed: Sequence[bool]) -> str:
    """``all`` or ascending ``80,443,8000-8080`` from answers at ``interesting_ports``."""
    intervals: list[list[int]] = []
    for i, (start, ok) in enumerate(zip(points, allowed, strict=True)):
        if not ok:
            continue
        end = points[i + 1] - 1 if i + 1 < len(points) else MAX_PORT
        if intervals and intervals[-1][1] + 1 == start:
            intervals[-1][1] = end
        else:
            intervals.append([start, end])
    if intervals == [[MIN_PORT, MAX_PORT]]:
        return "all"
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in intervals)


Answers = dict[str, tuple[bool, ...]]  # protocol -> answer at each interesting port


def _evaluate(cluster: Cluster, points: Sequence[int]) -> dict[tuple[str, str], Answers]:
    out: dict[tuple[str, str], Answers] = {}
    eps = cluster.endpoints()
    for src in eps:
        for dst in eps:
            if isinstance(src, RefRange) and isinstance(dst, RefRange):
                continue  # traffic between external ranges is not NetworkPolicy's business
            out[(src.id, dst.id)] = {
                proto: tuple(cluster.allows(src, dst, proto, p) for p in points)
                for proto in PROTOCOLS
            }
    return out


def _allowed_json(points: Sequence[int], answers: Answers) -> dict[str, str]:
    return {proto: format_ports(points, bits) for proto, bits in answers.items() if any(bits)}


# ---------------------------------------------------------------------------- map and diff


def reference_map(objects: Iterable[Obj]) -> dict[str, Any]:
    """The reachability map in ``map_to_json``'s shape."""
    return cluster_map(Cluster(objects))


def cluster_map(cluster: Cluster) -> dict[str, Any]:
    """The map of one cluster (possibly cut by a diff's shared external ranges)."""
    points = interesting_ports(cluster.port_numbers())
    eps = sorted(cluster.endpoints(), key=lambda e: e.sort_key())
    by_id = {e.id: e for e in eps}
    answers = _evaluate(cluster, points)
    connections = []
    for (s, d), ans in sorted(
        answers.items(), key=lambda kv: (by_id[kv[0][0]].sort_key(), by_id[kv[0][1]].sort_key())
    ):
        allowed = _allowed_json(points, ans)
        if allowed:
            connections.append({"src": s, "dst": d, "allowed": allowed})
    return {"endpoints": [e.to_json() for e in eps], "connections": connections}


@dataclass(frozen=True)
class RefChange:
    src: str
    dst: str
    allowed: dict[str, str]  # the delta
    # per protocol, the interesting ports in the delta (for checking explanations)
    ports: dict[str, tuple[int, ...]]


@dataclass(frozen=True)
class RefDiff:
    opened: list[RefChange]
    closed: list[RefChange]
    base: Cluster
    head: Cluster
    endpoints: dict[str, Endpoint]

    def to_json(self) -> dict[str, Any]:
        def rows(changes: list[RefChange]) -> list[dict[str, Any]]:
            return [{"src": c.src, "dst": c.dst, "allowed": c.allowed} for c in changes]

        return {
            "widening": bool(self.opened),
            "opened": rows(self.opened),
            "closed": rows(self.closed),
        }


def reference_diff(base: Iterable[Obj], head: Iterable[Obj]) -> RefDiff:
    """Opened and closed connections per (src, dst); workloads match by namespace/kind/name
    and both trees are cut into external ranges by the union of both trees' ipBlocks."""
    base_objs, head_objs = flatten(base), flatten(head)
    ranges = partition([*ip_block_networks(base_objs), *ip_block_networks(head_objs)])
    b, h = Cluster(base_objs, ranges), Cluster(head_objs, ranges)
    # One point list for both trees: each tree's answers are constant between consecutive
    # points of a superset of its own interesting ports, so the delta is too.
    points = interesting_ports(b.port_numbers() | h.port_numbers())
    eb, eh = _evaluate(b, points), _evaluate(h, points)
    endpoints: dict[str, Endpoint] = {e.id: e for e in [*b.endpoints(), *h.endpoints()]}
    none = tuple(False for _ in points)
    opened: list[RefChange] = []
    closed: list[RefChange] = []
    keys = sorted(
        set(eb) | set(eh), key=lambda k: (endpoints[k[0]].sort_key(), endpoints[k[1]].sort_key())
    )
    for key in keys:
        ab, ah = eb.get(key, {}), eh.get(key, {})
        for out, new, old in ((opened, ah, ab), (closed, ab, ah)):
            delta = {
                proto: tuple(
                    n and not o
                    for n, o in zip(new.get(proto, none), old.get(proto, none), strict=True)
                )
                for proto in PROTOCOLS
            }
            allowed = _allowed_json(points, delta)
            if allowed:
                ports = {
                    proto: tuple(p for p, bit in zip(points, bits, strict=True) if bit)
                    for proto, bits in delta.items()
                    if any(bits)
                }
                out.append(RefChange(key[0], key[1], allowed, ports))
    return RefDiff(opened, closed, b, h, endpoints)
