"""The brute-force reference, extended with AdminNetworkPolicy, BaselineAdminNetworkPolicy
and ClusterNetworkPolicy.

Written from the policy.networking.k8s.io/v1alpha1 and v1alpha2 APIs, one concrete
connection at a time, sharing no code with ``analysis/``. For one direction of a connection
(the subject being the destination for ingress, the source for egress):

1. the admin tier: the AdminNetworkPolicies and the ClusterNetworkPolicies with
   ``tier: Admin`` selecting the subject, lowest ``priority`` first (ties: by name, then
   kind), their rules in order: the first rule whose peer and port match decides: Allow
   (v1alpha1) or Accept (v1alpha2), Deny; Pass skips the rest of the admin tier;
2. NetworkPolicy: if any selects the subject for the direction, its rules decide;
3. the baseline tier: the ClusterNetworkPolicies with ``tier: Baseline`` by priority (ties
   by name), then the BaselineAdminNetworkPolicy ``default``: the first matching rule
   decides; a Pass (v1alpha2) skips the rest of the tier;
4. otherwise allowed.

Peers by node labels or domain names match nothing (a manifest has neither node IPs nor DNS
answers; the engine reports them as not analysed). `networks` match external ranges, and
workloads only when a rule's networks cover every IPv4 and IPv6 address (narrower ones may
or may not hold a pod's IP: the engine evaluates them as not matching and reports the
rules such traffic reaches).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tests.reference import (
    FAMILY_SIZE,
    PROTOCOLS,
    Cluster,
    Endpoint,
    IPNetwork,
    RefRange,
    RefWorkload,
    cluster_map,
    flatten,
    interesting_ports,
    ip_block_networks,
    partition,
    selector_matches,
)

Obj = Mapping[str, Any]
ADMIN_KINDS = ("AdminNetworkPolicy", "BaselineAdminNetworkPolicy", "ClusterNetworkPolicy")
ALLOWING = ("Allow", "Accept")


def admin_policies(objects: Iterable[Obj]) -> tuple[list[Obj], list[Obj]]:
    """(the admin tier, the baseline tier), each in evaluation order."""
    objs = [o for o in objects if o.get("kind") in ADMIN_KINDS]

    def in_admin_tier(o: Obj) -> bool:
        if o["kind"] == "ClusterNetworkPolicy":
            return bool(o["spec"]["tier"] == "Admin")
        return bool(o["kind"] == "AdminNetworkPolicy")

    admin = sorted(
        (o for o in objs if in_admin_tier(o)),
        key=lambda o: (o["spec"]["priority"], o["metadata"]["name"], o["kind"]),
    )
    baseline = sorted(
        (o for o in objs if o["kind"] == "ClusterNetworkPolicy" and not in_admin_tier(o)),
        key=lambda o: (o["spec"]["priority"], o["metadata"]["name"]),
    )
    return admin, baseline + [o for o in objs if o["kind"] == "BaselineAdminNetworkPolicy"]


def admin_networks(objects: Iterable[Obj]) -> list[IPNetwork]:
    nets: list[IPNetwork] = []
    anps, banps = admin_policies(objects)
    for pol in [*anps, *banps]:
        for rule in pol["spec"].get("egress") or []:
            for peer in rule["to"]:
                nets.extend(
                    ipaddress.ip_network(c, strict=False) for c in peer.get("networks") or []
                )
    return nets


class TieredCluster(Cluster):
    def __init__(self, objects: Iterable[Obj], ranges: Sequence[RefRange] | None = None) -> None:
        objs = flatten(objects)
        if ranges is None:
            ranges = partition([*ip_block_networks(objs), *admin_networks(objs)])
        super().__init__(objs, ranges)
        self.anps, self.banps = admin_policies(objs)

    # -- admin matching

    def _in_subject(self, pol: Obj, pod: Endpoint) -> bool:
        if not isinstance(pod, RefWorkload) or pod.host_network:
            return False
        subject = pol["spec"]["subject"]
        if "namespaces" in subject:
            return selector_matches(subject["namespaces"], self.ns_labels.get(pod.namespace, {}))
        pods = subject["pods"]
        # v1alpha2 lets namespaceSelector be left out: every namespace
        return selector_matches(
            pods.get("namespaceSelector") or {}, self.ns_labels.get(pod.namespace, {})
        ) and selector_matches(pods["podSelector"], dict(pod.labels))

    def _admin_peer(self, peer: Obj, ep: Endpoint) -> bool:
        if "networks" in peer:
            if not isinstance(ep, RefRange):
                return False
            return any(self._range_inside(ep, c) for c in peer["networks"])
        if "nodes" in peer or "domainNames" in peer:
            return False  # neither node IPs nor DNS answers are in a manifest
        if not isinstance(ep, RefWorkload) or ep.host_network:
            return False  # selectors match only ordinary pods
        ns_labels = self.ns_labels.get(ep.namespace, {})
        if "namespaces" in peer:
            return selector_matches(peer["namespaces"], ns_labels)
        pods = peer["pods"]
        return selector_matches(
            pods.get("namespaceSelector") or {}, ns_labels
        ) and selector_matches(pods["podSelector"], dict(ep.labels))

    @staticmethod
    def _every_address(peers: list[Obj]) -> bool:
        """`networks` of a rule covering all of IPv4 and IPv6 hold every workload's IP
        (cluster traffic is checked against them); narrower ones are taken to hold none."""
        spans: dict[int, list[tuple[int, int]]] = {4: [], 6: []}
        for p in peers:
            for cidr in p.get("networks") or []:
                net = ipaddress.ip_network(cidr, strict=False)
                spans[net.version].append((int(net.network_address), int(net.broadcast_address)))
        for version, size in FAMILY_SIZE.items():
            reach = 0  # the first address not yet covered
            for first, last in sorted(spans[version]):
                if first > reach:
                    return False
                reach = max(reach, last + 1)
            if reach != size:
                return False
        return True

    @staticmethod
    def _range_inside(rng: RefRange, cidr: str) -> bool:
        net = ipaddress.ip_network(cidr, strict=False)
        return net.version == rng.version and (
            int(net.network_address) <= rng.first and rng.last <= int(net.broadcast_address)
        )

    @staticmethod
    def _admin_port(entry: Obj, protocol: str, port: int, dst: Endpoint) -> bool:
        # v1alpha2 `protocols` entries: {tcp|udp|sctp: {destinationPort: {number | range}}}
        # or {destinationNamedPort: name}
        for key in ("tcp", "udp", "sctp"):
            if key in entry:
                if key.upper() != protocol:
                    return False
                where = entry[key]["destinationPort"]
                if "number" in where:
                    return bool(where["number"] == port)
                return bool(where["range"]["start"] <= port <= where["range"]["end"])
        if "destinationNamedPort" in entry:
            entry = {"namedPort": entry["destinationNamedPort"]}
        if "portNumber" in entry:
            p = entry["portNumber"]
            return bool(p.get("protocol", "TCP") == protocol and p["port"] == port)
        if "portRange" in entry:
            r = entry["portRange"]
            return bool(r.get("protocol", "TCP") == protocol and r["start"] <= port <= r["end"])
        # namedPort: the destination pod's container port of that name, whatever protocol
        if not isinstance(dst, RefWorkload):
            return False
        return any(n == entry["namedPort"] and p == protocol and c == port for n, p, c in dst.ports)

    def _first_match(
        self,
        policies: list[Obj],
        field: str,
        subject: Endpoint,
        peer: Endpoint,
        protocol: str,
        port: int,
        dst: Endpoint,
    ) -> str | None:
        peer_field = "from" if field == "ingress" else "to"
        for pol in policies:
            if not self._in_subject(pol, subject):
                continue
            for rule in pol["spec"].get(field) or []:
                everything = isinstance(peer, RefWorkload) and self._every_address(rule[peer_field])
                if not everything and not any(self._admin_peer(p, peer) for p in rule[peer_field]):
                    continue
                ports = rule.get("ports", rule.get("protocols"))
                if ports is not None and not any(
                    self._admin_port(e, protocol, port, dst) for e in ports
                ):
                    continue
                return str(rule["action"])
        return None

    def _tiered(
        self,
        field: str,
        subject: Endpoint,
        peer: Endpoint,
        protocol: str,
        port: int,
        dst: Endpoint,
        network_policy: bool,
    ) -> bool:
        action = self._first_match(self.anps, field, subject, peer, protocol, port, dst)
        if action in (*ALLOWING, "Deny"):
            return action in ALLOWING
        direction = "Ingress" if field == "ingress" else "Egress"
        if self.isolated(subject, direction):
            return network_policy
        action = self._first_match(self.banps, field, subject, peer, protocol, port, dst)
        return action != "Deny"  # Allow, Accept, Pass (to the default) or no match

    def egress_allows(self, src: Endpoint, dst: Endpoint, protocol: str, port: int) -> bool:
        return self._tiered(
            "egress",
            src,
            dst,
            protocol,
            port,
            dst,
            super().egress_allows(src, dst, protocol, port),
        )

    def ingress_allows(self, src: Endpoint, dst: Endpoint, protocol: str, port: int) -> bool:
        return self._tiered(
            "ingress",
            dst,
            src,
            protocol,
            port,
            dst,
            super().ingress_allows(src, dst, protocol, port),
        )

    def port_numbers(self) -> set[int]:
        nums = super().port_numbers()
        for pol in [*self.anps, *self.banps]:
            for field in ("ingress", "egress"):
                for rule in pol["spec"].get(field) or []:
                    for entry in rule.get("ports") or rule.get("protocols") or []:
                        if "portNumber" in entry:
                            nums.add(entry["portNumber"]["port"])
                        if "portRange" in entry:
                            nums.update((entry["portRange"]["start"], entry["portRange"]["end"]))
                        for key in ("tcp", "udp", "sctp"):
                            where = entry.get(key, {}).get("destinationPort", {})
                            if "number" in where:
                                nums.add(where["number"])
                            if "range" in where:
                                nums.update((where["range"]["start"], where["range"]["end"]))
        return nums

    # -- rules a manifest cannot settle

    def unknown_rules(self) -> set[str]:
        """``"<kind>/<name> egress[i]"`` of every egress rule with `networks` not holding
        every address that some (workload, workload, protocol, port) reaches while still
        undecided, and that no other peer of the rule matches for sure."""
        found: set[str] = set()
        ports = interesting_ports(self.port_numbers())
        for src in self.workloads:
            if src.host_network:
                continue
            for dst in self.workloads:
                for protocol in PROTOCOLS:
                    for port in ports:
                        found |= self._reached_unsure(src, dst, protocol, port)
        return found

    def _reached_unsure(
        self, src: RefWorkload, dst: RefWorkload, protocol: str, port: int
    ) -> set[str]:
        out: set[str] = set()
        for tier in ("admin", "baseline"):
            if tier == "baseline" and self.isolated(src, "Egress"):
                return out
            for pol in self.anps if tier == "admin" else self.banps:
                if not self._in_subject(pol, src):
                    continue
                for i, rule in enumerate(pol["spec"].get("egress") or []):
                    ports = rule.get("ports", rule.get("protocols"))
                    if ports is not None and not any(
                        self._admin_port(e, protocol, port, dst) for e in ports
                    ):
                        continue
                    sure = self._every_address(rule["to"]) or any(
                        self._admin_peer(p, dst) for p in rule["to"]
                    )
                    if not sure:
                        if any("networks" in p for p in rule["to"]):
                            out.add(f"{pol['kind']}/{pol['metadata']['name']} egress[{i}]")
                        continue
                    if rule["action"] == "Pass":
                        break  # the rest of this tier is skipped
                    return out  # decided
                else:
                    continue
                break  # passed: on to the next tier
        return out


def tiered_reference_map(objects: Iterable[Obj]) -> dict[str, Any]:
    return cluster_map(TieredCluster(objects))
