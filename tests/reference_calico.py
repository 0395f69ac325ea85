"""The brute-force reference, extended with Calico's NetworkPolicy, GlobalNetworkPolicy,
Tier, NetworkSet and GlobalNetworkSet (projectcalico.org/v3, crd.projectcalico.org/v1).

Written from Calico's reference documentation (policy, global policy, tier, selectors,
entity rules) one concrete connection at a time; it shares no code with ``analysis/``,
selector evaluation included (``_Selector`` below evaluates the text directly).

For one direction of a connection, for the endpoint whose direction it is:

- tiers by order (none: last), then name; the built-in ``kube-admin`` (1000, Pass),
  ``default`` (1,000,000, Deny) and ``kube-baseline`` (10,000,000, Pass);
- a tier takes part if one of its policies selects the endpoint for the direction: Calico
  policies of the tier, Kubernetes NetworkPolicies (tier default, order 1000), admin
  policies (kube-admin, order = priority) and the baseline ones (kube-baseline);
- its policies by order (none: last), then "name/namespace/kind"; their rules in order; the
  first rule that matches decides: Allow, Deny, or Pass (next tier); Log goes on;
- nothing decided: the tier's default action; passed through every tier: allowed.

Service accounts: a pod is labelled ``projectcalico.org/serviceaccount`` with its account,
and carries its account's labels (from the tree's ServiceAccounts; none for an account the
tree lacks) and name as ``pcsa.<key>`` / ``pcsa.projectcalico.org/name``; its own labels
with the ``pcns.`` or ``pcsa.`` prefix are dropped. ``serviceAccountSelector`` and
``serviceAccounts.selector`` are read over the ``pcsa.`` labels with the prefix taken off,
``serviceAccounts.names`` over the account label.

Services: a rule's ``services`` matches the pods the Service's selector selects in its
namespace, and as a destination only their ports the Service targets.

What a manifest cannot settle matches nothing here (as the engine evaluates it): `nets`,
`notNets` and `ipVersion` against a workload, a Service the cluster lacks or one without
a selector, source ports, nets of the policy's
own endpoint; policies of a tier the tree does not define, doNotTrack or preDNAT policies
are not evaluated.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tests.reference import (
    PROTOCOLS,
    Endpoint,
    IPNetwork,
    RefRange,
    RefWorkload,
    cluster_map,
    flatten,
    ip_block_networks,
    partition,
)
from tests.reference_admin import TieredCluster, admin_networks

Obj = Mapping[str, Any]
GROUPS = ("projectcalico.org/", "crd.projectcalico.org/")
BUILT_IN = {
    "kube-admin": (1000.0, "Pass"),
    "default": (1e6, "Deny"),
    "kube-baseline": (1e7, "Pass"),
}
PROTOCOL_NUMBERS = {"TCP": 6, "UDP": 17, "ICMP": 1, "ICMPv6": 58, "SCTP": 132, "UDPLite": 136}
WITH_PORTS = {6: "TCP", 17: "UDP", 132: "SCTP"}


def is_calico(obj: Obj) -> bool:
    return str(obj.get("apiVersion", "")).startswith(GROUPS)


# ---------------------------------------------------------------------------- selectors

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'[^']*'|\"[^\"]*\")|(?P<fn>(?:has|all|global)\(\s*[\w./-]*\s*\))"
    r"|(?P<op>==|!=|&&|\|\||!|\(|\)|\{|\}|,)|(?P<word>[\w./-]+))"
)


class _Selector:
    """A Calico selector evaluated straight from its text by precedence climbing."""

    def __init__(self, text: str) -> None:
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        text = text.strip(" \t")
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            assert m is not None and m.end() > pos, text
            kind = m.lastgroup or ""
            value = m.group(kind)
            self.tokens.append((kind, value[1:-1] if kind == "str" else value))
            pos = m.end()
            while pos < len(text) and text[pos] in " \t":
                pos += 1

    def matches(self, labels: Mapping[str, str], namespaced: bool | None = None) -> bool:
        """``namespaced``: for a rule's namespaceSelector, whether the thing is in a
        namespace (``all()`` then means "in one", ``global()`` "in none")."""
        if not self.tokens:
            return True
        self.at, self.labels, self.namespaced = 0, labels, namespaced
        return self._or()

    def _peek(self) -> str:
        return self.tokens[self.at][1] if self.at < len(self.tokens) else ""

    def _or(self) -> bool:
        value = self._and()
        while self._peek() == "||":
            self.at += 1
            right = self._and()
            value = value or right
        return value

    def _and(self) -> bool:
        value = self._not()
        while self._peek() == "&&":
            self.at += 1
            right = self._not()
            value = value and right
        return value

    def _not(self) -> bool:
        if self._peek() == "!":
            self.at += 1
            return not self._not()
        if self._peek() == "(":
            self.at += 1
            value = self._or()
            self.at += 1  # ")"
            return value
        kind, word = self.tokens[self.at]
        self.at += 1
        if kind == "fn":
            name, _, arg = word.partition("(")
            if name in ("all", "global"):
                if self.namespaced is None:
                    return True
                return self.namespaced == (name == "all")
            return arg[:-1].strip() in self.labels
        return self._compare(word)

    def _compare(self, key: str) -> bool:
        op = self.tokens[self.at][1]
        self.at += 1
        if op in ("starts", "ends", "not"):
            self.at += 1  # "with" / "in"
            op = {"starts": "startswith", "ends": "endswith", "not": "notin"}[op]
        if op in ("in", "notin"):
            values = set()
            self.at += 1  # "{"
            while self._peek() != "}":
                kind, value = self.tokens[self.at]
                if kind == "str":
                    values.add(value)
                self.at += 1
            self.at += 1
            present = key in self.labels and self.labels[key] in values
            return present if op == "in" else not present
        value = self.tokens[self.at][1]
        self.at += 1
        have = self.labels.get(key)
        if op == "==":
            return have == value
        if op == "!=":
            return have != value
        if have is None:
            return False
        if op == "contains":
            return value in have
        if op == "startswith":
            return have.startswith(value)
        return have.endswith(value)


def selects(text: str | None, labels: Mapping[str, str], namespaced: bool | None = None) -> bool:
    return _Selector(text or "").matches(labels, namespaced)


# ---------------------------------------------------------------------------- the cluster


def calico_networks(objects: Iterable[Obj]) -> list[IPNetwork]:
    out: list[IPNetwork] = []
    for obj in objects:
        if not is_calico(obj):
            continue
        spec = obj.get("spec") or {}
        texts = list(spec.get("nets") or [])
        for field in ("ingress", "egress"):
            for rule in spec.get(field) or []:
                for side in ("source", "destination"):
                    entity = rule.get(side) or {}
                    texts += entity.get("nets") or []
                    texts += entity.get("notNets") or []
        out.extend(ipaddress.ip_network(t, strict=False) for t in texts)
    return out


class CalicoCluster(TieredCluster):
    def __init__(self, objects: Iterable[Obj], ranges: Sequence[RefRange] | None = None) -> None:
        objs = flatten(objects)
        if ranges is None:
            ranges = partition(
                [*ip_block_networks(objs), *admin_networks(objs), *calico_networks(objs)]
            )
        plain = [o for o in objs if not is_calico(o)]
        super().__init__(plain, ranges)
        calico = [o for o in objs if is_calico(o)]
        self.tiers: dict[str, tuple[float, str]] = dict(BUILT_IN)
        for t in calico:
            if t["kind"] == "Tier":
                spec = t.get("spec") or {}
                order = spec.get("order")
                self.tiers[t["metadata"]["name"]] = (
                    math.inf if order is None else float(order),
                    spec.get("defaultAction", "Deny"),
                )
        self.calico_policies = [
            p for p in calico if p["kind"] in ("NetworkPolicy", "GlobalNetworkPolicy")
        ]
        self.sets = [s for s in calico if s["kind"] in ("NetworkSet", "GlobalNetworkSet")]
        self.services = {
            (o["metadata"].get("namespace") or "default", o["metadata"]["name"]): o
            for o in objs
            if o.get("kind") == "Service" and o.get("apiVersion") == "v1"
        }
        self.accounts = {
            (a["metadata"].get("namespace") or "default", a["metadata"]["name"]): dict(
                a["metadata"].get("labels") or {}
            )
            for a in objs
            if a.get("kind") == "ServiceAccount" and a.get("apiVersion") == "v1"
        }

    # -- endpoints as Calico's selectors see them

    def _ns(self, name: str) -> dict[str, str]:
        labels = dict(self.ns_labels.get(name, {}))
        labels["projectcalico.org/name"] = name
        return labels

    def _pod_labels(self, pod: RefWorkload) -> dict[str, str]:
        labels = {f"pcns.{k}": v for k, v in self._ns(pod.namespace).items()}
        account = dict(self.accounts.get((pod.namespace, pod.service_account), {}))
        account["projectcalico.org/name"] = pod.service_account
        labels.update({f"pcsa.{k}": v for k, v in account.items()})
        labels.update(
            (k, v) for k, v in pod.labels if not k.startswith("pcns.") and not k.startswith("pcsa.")
        )
        labels["projectcalico.org/namespace"] = pod.namespace
        labels["projectcalico.org/orchestrator"] = "k8s"
        labels["projectcalico.org/serviceaccount"] = pod.service_account
        return labels

    @staticmethod
    def _accounts_match(match: Obj | None, labels: Mapping[str, str]) -> bool:
        """A ``serviceAccounts`` match (or a policy's serviceAccountSelector as
        ``{"selector": …}``) on a thing with these labels."""
        if not match:
            return True
        names = match.get("names") or []
        if names and labels.get("projectcalico.org/serviceaccount") not in names:
            return False
        account = {k[5:]: v for k, v in labels.items() if k.startswith("pcsa.")}
        return selects(match.get("selector"), account)

    def _things(self, ep: Endpoint) -> list[tuple[str | None, dict[str, str]]]:
        """(namespace or None, labels) of what ``ep`` is to a selector: the pod, or the
        network sets whose nets hold the range."""
        if isinstance(ep, RefWorkload):
            return [] if ep.host_network else [(ep.namespace, self._pod_labels(ep))]
        out: list[tuple[str | None, dict[str, str]]] = []
        for s in self.sets:
            if not any(_inside(ep, n) for n in (s.get("spec") or {}).get("nets") or []):
                continue
            labels = dict(s["metadata"].get("labels") or {})
            if s["kind"] == "NetworkSet":
                ns = s["metadata"].get("namespace") or "default"
                full = {f"pcns.{k}": v for k, v in self._ns(ns).items()}
                full.update(labels)
                full["projectcalico.org/namespace"] = ns
                out.append((ns, full))
            else:
                out.append((None, labels))
        return out

    @staticmethod
    def _policy_ns(pol: Obj) -> str:
        if pol["kind"] == "GlobalNetworkPolicy":
            return ""
        return str(pol["metadata"].get("namespace") or "default")

    def _entity_selects(self, pol: Obj, entity: Obj, ep: Endpoint) -> bool:
        """The entity's selector fields (selector, notSelector, namespaceSelector)."""
        accounts = entity.get("serviceAccounts") or {}
        accounts = accounts if accounts.get("names") or accounts.get("selector") else None
        selector_fields = accounts is not None or any(
            entity.get(k) for k in ("selector", "notSelector", "namespaceSelector")
        )
        if not selector_fields:
            return True
        things = self._things(ep)
        ns_sel = entity.get("namespaceSelector")
        own_ns = self._policy_ns(pol)

        def in_scope(ns: str | None, labels: Mapping[str, str]) -> bool:
            if ns_sel:
                if ns is not None:
                    return selects(ns_sel, self._ns(ns), namespaced=True)
                # A global network set: Calico tests the selector, its labels prefixed
                # `pcns.`, on the set's own labels (which normally have none of them), so a
                # negation such as `!has(team)` holds for it.
                own = {k[5:]: v for k, v in labels.items() if k.startswith("pcns.")}
                return selects(ns_sel, own, namespaced=False)
            return own_ns == "" or ns == own_ns

        # A global policy's entity with only a notSelector has no positive condition (it
        # matches addresses outside every endpoint and set too); otherwise the endpoint or
        # a set holding the address must be in scope and match the selector.
        scoped = bool(entity.get("selector") or accounts or ns_sel or own_ns)
        positive = not scoped or any(
            in_scope(ns, labels)
            and selects(entity.get("selector"), labels)
            and self._accounts_match(accounts, labels)
            for ns, labels in things
        )
        if not positive:
            return False
        negative = entity.get("notSelector")
        return not (negative and any(selects(negative, labels) for _, labels in things))

    def _addresses(self, rule: Obj, entity: Obj, ep: Endpoint) -> bool:
        nets, not_nets = entity.get("nets") or [], entity.get("notNets") or []
        version = rule.get("ipVersion")
        if not (nets or not_nets or version):
            return True
        if not isinstance(ep, RefRange):
            return False  # a workload's address is not in a manifest
        if version and ep.version != version:
            return False
        # A rule with IPv4 CIDRs says nothing of IPv6 traffic (and the reverse): it does
        # not match it at all.
        if any(
            ipaddress.ip_network(_cidr(n), strict=False).version != ep.version
            for n in nets + not_nets
        ):
            return False
        if nets and not any(_inside(ep, n) for n in nets):
            return False
        return not any(_inside(ep, n) for n in not_nets)

    def _service(self, pol: Obj, entity: Obj) -> Obj | None:
        """The Service a ``services`` entity names, when it is in the cluster and has a
        selector (otherwise its endpoints are unknown and the rule matches nothing)."""
        ref = entity.get("services") or {}
        namespace = ref.get("namespace") or self._policy_ns(pol)
        svc = self.services.get((namespace, ref.get("name")))
        if svc is None or not (svc.get("spec") or {}).get("selector"):
            return None
        return svc

    def _service_matches(
        self, pol: Obj, entity: Obj, peer: Endpoint, protocol: str, port: int, destination: bool
    ) -> bool:
        """A ``services`` entity: the peer is one of the Service's endpoints (a pod its
        selector selects in its namespace) and, for a destination, the connection goes to
        one of that endpoint's ports (each Service port's targetPort on that pod)."""
        if "services" not in entity:
            return True
        svc = self._service(pol, entity)
        if svc is None or not isinstance(peer, RefWorkload):
            return False
        if peer.namespace != (svc["metadata"].get("namespace") or "default"):
            return False
        labels = dict(peer.labels)
        if any(labels.get(k) != v for k, v in svc["spec"]["selector"].items()):
            return False
        if not destination:
            return True
        for entry in svc["spec"].get("ports") or []:
            served = entry.get("protocol", "TCP")
            target = entry.get("targetPort", entry.get("port"))
            if served != protocol:
                continue
            if isinstance(target, int) and target == port:
                return True
            if isinstance(target, str) and (target, protocol, port) in peer.ports:
                return True
        return False

    def _unsettled(self, pol: Obj, rule: Obj, direction: str) -> bool:
        src, dst = rule.get("source") or {}, rule.get("destination") or {}
        own = dst if direction == "ingress" else src
        return bool(
            ("services" in src and self._service(pol, src) is None)
            or ("services" in dst and self._service(pol, dst) is None)
            or src.get("ports")
            or src.get("notPorts")
            or own.get("nets")
            or own.get("notNets")
        )

    @staticmethod
    def _protocol_matches(rule: Obj, protocol: str) -> bool:
        def number(value: Any) -> int:
            if isinstance(value, int):
                return value
            return int(value) if str(value).isdigit() else PROTOCOL_NUMBERS[value]

        if "protocol" in rule and WITH_PORTS.get(number(rule["protocol"])) != protocol:
            return False
        return not (
            "notProtocol" in rule and WITH_PORTS.get(number(rule["notProtocol"])) == protocol
        )

    @staticmethod
    def _port_in(entries: list[Any], protocol: str, port: int, dst: Endpoint) -> bool:
        for entry in entries:
            if isinstance(entry, int) or str(entry).isdigit():
                if int(entry) == port:
                    return True
            elif ":" in str(entry):
                low, high = str(entry).split(":")
                if int(low) <= port <= int(high):
                    return True
            elif isinstance(dst, RefWorkload) and any(
                n == entry and p == protocol and c == port for n, p, c in dst.ports
            ):
                return True
        return False

    def _rule_matches(
        self,
        pol: Obj,
        rule: Obj,
        direction: str,
        owner: Endpoint,
        peer: Endpoint,
        protocol: str,
        port: int,
        dst: Endpoint,
    ) -> bool:
        if self._unsettled(pol, rule, direction) or not self._protocol_matches(rule, protocol):
            return False
        src, dst_entity = rule.get("source") or {}, rule.get("destination") or {}
        own, other = (dst_entity, src) if direction == "ingress" else (src, dst_entity)
        if not self._entity_selects(pol, own, owner):
            return False
        if not self._service_matches(pol, other, peer, protocol, port, direction == "egress"):
            return False
        if not (self._entity_selects(pol, other, peer) and self._addresses(rule, other, peer)):
            return False
        ports, not_ports = dst_entity.get("ports") or [], dst_entity.get("notPorts") or []
        if ports and not self._port_in(ports, protocol, port, dst):
            return False
        return not self._port_in(not_ports, protocol, port, dst)

    # -- which policies apply

    def _types(self, pol: Obj) -> set[str]:
        spec = pol.get("spec") or {}
        if spec.get("types"):
            return set(spec["types"])
        if not spec.get("egress"):
            return {"Ingress"}
        return {"Egress"} if not spec.get("ingress") else {"Ingress", "Egress"}

    def _applies(self, pol: Obj, ep: RefWorkload, direction: str) -> bool:
        spec = pol.get("spec") or {}
        tier = spec.get("tier") or "default"
        if tier not in self.tiers or spec.get("doNotTrack") or spec.get("preDNAT"):
            return False
        if direction not in self._types(pol):
            return False
        if ep.host_network:
            return False
        own_ns = self._policy_ns(pol)
        if own_ns and ep.namespace != own_ns:
            return False
        ns_sel = spec.get("namespaceSelector")
        if ns_sel and not selects(ns_sel, self._ns(ep.namespace)):
            return False
        labels = self._pod_labels(ep)
        by_account = {"selector": spec.get("serviceAccountSelector")}
        return selects(spec.get("selector"), labels) and self._accounts_match(by_account, labels)

    def _walk(
        self,
        direction: str,
        owner: Endpoint,
        peer: Endpoint,
        protocol: str,
        port: int,
        dst: Endpoint,
    ) -> bool | None:
        """Calico's verdict, or None when no Calico policy selects ``owner`` (then the
        tiers of the Kubernetes kinds decide, as without Calico)."""
        if not isinstance(owner, RefWorkload):
            return None
        field = direction.lower()
        if not self.calico_policies:
            return None
        # With Calico in the tree every endpoint is walked through Calico's tiers, even one
        # no Calico policy selects (the engine takes a shorter path there: both must agree).
        mine = [p for p in self.calico_policies if self._applies(p, owner, direction)]
        members: dict[str, list[tuple[tuple[float, str], str, Obj]]] = {}
        for p in mine:
            order = (p.get("spec") or {}).get("order")
            key = (
                math.inf if order is None else float(order),
                f"{p['metadata']['name']}/{self._policy_ns(p)}/{p['kind']}",
            )
            members.setdefault((p.get("spec") or {}).get("tier") or "default", []).append(
                (key, "calico", p)
            )
        for np in self._selecting(owner, direction):
            key = (
                1000.0,
                (
                    f"{np['metadata']['name']}/{np['metadata'].get('namespace') or 'default'}"
                    "/KubernetesNetworkPolicy"
                ),
            )
            members.setdefault("default", []).append((key, "k8s", np))
        for tier, pols in (("kube-admin", self.anps), ("kube-baseline", self.banps)):
            for a in pols:
                if self._in_subject(a, owner) and (a.get("spec") or {}).get(field):
                    prio = (a.get("spec") or {}).get("priority")
                    key = (
                        math.inf if prio is None else float(prio),
                        f"{a['metadata']['name']}//Kubernetes{a['kind']}",
                    )
                    members.setdefault(tier, []).append((key, "admin", a))
        for tier in sorted(members, key=lambda t: (self.tiers[t][0], t)):
            action = None
            for _, kind, pol in sorted(members[tier], key=lambda m: m[0]):
                action = self._policy_action(kind, pol, direction, owner, peer, protocol, port, dst)
                if action is not None:
                    break
            if action is None:
                action = self.tiers[tier][1]
            if action in ("Allow", "Accept"):
                return True
            if action == "Deny":
                return False
        return True  # every tier passed: the profile allows

    def _policy_action(
        self,
        kind: str,
        pol: Obj,
        direction: str,
        owner: Endpoint,
        peer: Endpoint,
        protocol: str,
        port: int,
        dst: Endpoint,
    ) -> str | None:
        field = direction.lower()
        if kind == "k8s":
            peer_field = "from" if field == "ingress" else "to"
            rules = (pol.get("spec") or {}).get(field) or []
            if any(self._rule_allows(pol, r, peer_field, peer, protocol, port, dst) for r in rules):
                return "Allow"
            return None
        if kind == "admin":
            return self._first_match([pol], field, owner, peer, protocol, port, dst)
        for rule in (pol.get("spec") or {}).get(field) or []:
            matched = self._rule_matches(pol, rule, field, owner, peer, protocol, port, dst)
            if matched and rule["action"] != "Log":
                return str(rule["action"])
        return None

    def egress_allows(self, src: Endpoint, dst: Endpoint, protocol: str, port: int) -> bool:
        verdict = self._walk("Egress", src, dst, protocol, port, dst)
        return super().egress_allows(src, dst, protocol, port) if verdict is None else verdict

    def ingress_allows(self, src: Endpoint, dst: Endpoint, protocol: str, port: int) -> bool:
        verdict = self._walk("Ingress", dst, src, protocol, port, dst)
        return super().ingress_allows(src, dst, protocol, port) if verdict is None else verdict

    def port_numbers(self) -> set[int]:
        nums = super().port_numbers()
        for pol in self.calico_policies:
            for field in ("ingress", "egress"):
                for rule in (pol.get("spec") or {}).get(field) or []:
                    for side in ("source", "destination"):
                        entity = rule.get(side) or {}
                        for entry in (entity.get("ports") or []) + (entity.get("notPorts") or []):
                            for part in str(entry).split(":"):
                                if part.isdigit():
                                    nums.add(int(part))
        for svc in self.services.values():
            for entry in (svc.get("spec") or {}).get("ports") or []:
                target = entry.get("targetPort", entry.get("port"))
                if isinstance(target, int):
                    nums.add(target)
        return nums


def _cidr(text: str) -> str:
    return text if "/" in text else text + ("/128" if ":" in text else "/32")


def _inside(rng: RefRange, cidr: str) -> bool:
    cidr = _cidr(cidr)
    net = ipaddress.ip_network(cidr, strict=False)
    return net.version == rng.version and (
        int(net.network_address) <= rng.first and rng.last <= int(net.broadcast_address)
    )


def calico_reference_map(objects: Iterable[Obj]) -> dict[str, Any]:
    return cluster_map(CalicoCluster(objects))


__all__ = ["PROTOCOLS", "CalicoCluster", "calico_reference_map", "is_calico", "selects"]
