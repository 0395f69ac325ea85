"""The brute-force reference, extended with AdminNetworkPolicy and BaselineAdminNetworkPolicy.

Written from the policy.networking.k8s.io/v1alpha1 API, one concrete connection at a time,
sharing no code with ``analysis/``. For one direction of a connection (the subject being the
destination for ingress, the source for egress):

1. the AdminNetworkPolicies selecting the subject, lowest ``priority`` first (ties: by
   name), their rules in order: the first rule whose peer and port match decides: Allow
   or Deny; Pass skips the rest of the admin tier;
2. NetworkPolicy: if any selects the subject for the direction, its rules decide;
3. the BaselineAdminNetworkPolicy ``default``: the first matching rule decides;
4. otherwise allowed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
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

Obj = dict[str, Any]
ADMIN_KINDS = ("AdminNetworkPolicy", "BaselineAdminNetworkPolicy")


def admin_policies(objects: Iterable[Obj]) -> tuple[list[Obj], list[Obj]]:
    objs = [o for o in objects if o.get("kind") in ADMIN_KINDS]
    anps = sorted(
        (o for o in objs if o["kind"] == "AdminNetworkPolicy"),
        key=lambda o: (o["spec"]["priority"], o["metadata"]["name"]),
    )
    return anps, [o for o in objs if o["kind"] == "BaselineAdminNetworkPolicy"]


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
        return selector_matches(
            pods["namespaceSelector"], self.ns_labels.get(pod.namespace, {})
        ) and selector_matches(pods["podSelector"], dict(pod.labels))

    def _admin_peer(self, peer: Obj, ep: Endpoint) -> bool:
        if "networks" in peer:
            if not isinstance(ep, RefRange):
                return False
            return any(self._range_inside(ep, c) for c in peer["networks"])
        if "nodes" in peer or not isinstance(ep, RefWorkload) or ep.host_network:
            return False  # nodes are not endpoints; selectors match only ordinary pods
        ns_labels = self.ns_labels.get(ep.namespace, {})
        if "namespaces" in peer:
            return selector_matches(peer["namespaces"], ns_labels)
        pods = peer["pods"]
        return selector_matches(pods["namespaceSelector"], ns_labels) and selector_matches(
            pods["podSelector"], dict(ep.labels)
        )

    @staticmethod
    def _range_inside(rng: RefRange, cidr: str) -> bool:
        net = ipaddress.ip_network(cidr, strict=False)
        return net.version == rng.version and (
            int(net.network_address) <= rng.first and rng.last <= int(net.broadcast_address)
        )

    @staticmethod
    def _admin_port(entry: Obj, protocol: str, port: int, dst: Endpoint) -> bool:
        if "portNumber" in entry:
            p = entry["portNumber"]
            return p.get("protocol", "TCP") == protocol and p["port"] == port
        if "portRange" in entry:
            r = entry["portRange"]
            return r.get("protocol", "TCP") == protocol and r["start"] <= port <= r["end"]
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
                if not any(self._admin_peer(p, peer) for p in rule[peer_field]):
                    continue
                ports = rule.get("ports")
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
        if action in ("Allow", "Deny"):
            return action == "Allow"
        direction = "Ingress" if field == "ingress" else "Egress"
        if self.isolated(subject, direction):
            return network_policy
        action = self._first_match(self.banps, field, subject, peer, protocol, port, dst)
        return action != "Deny"

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
                    for entry in rule.get("ports") or []:
                        if "portNumber" in entry:
                            nums.add(entry["portNumber"]["port"])
                        if "portRange" in entry:
                            nums.update((entry["portRange"]["start"], entry["portRange"]["end"]))
        return nums


def tiered_reference_map(objects: Iterable[Obj]) -> dict[str, Any]:
    return cluster_map(TieredCluster(objects))
