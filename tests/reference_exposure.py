"""A brute-force reference for exposure and blast radius: the oracle of tests/test_exposure.py.

Deliberately naive and independent of ``analysis/``: it reads the raw objects and the
reference map (``reference_map``'s JSON), decides entry points and crown jewels workload
by workload, and runs a breadth-first search per workload over the endpoint-level graph.
External ranges start paths and end them, never carry them on (docs/semantics.md).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tests.reference import (
    Obj,
    flatten,
    namespace_labels,
    selector_matches,
    workloads_of,
)

ROUTE_KINDS = ("HTTPRoute", "GRPCRoute", "TLSRoute", "TCPRoute", "UDPRoute")


def _ns(obj: Obj) -> str:
    return (obj.get("metadata") or {}).get("namespace") or "default"


def _service_backends(obj: Obj) -> list[tuple[str, str]]:
    """(namespace, name) of every Service an Ingress or a route sends requests to."""
    ns, spec, out = _ns(obj), obj.get("spec") or {}, []
    if obj["kind"] == "Ingress":
        backends = [spec.get("defaultBackend")] + [
            p.get("backend")
            for r in spec.get("rules") or []
            for p in (r.get("http") or {}).get("paths") or []
        ]
        for b in backends:
            if b and "service" in b:
                out.append((ns, b["service"]["name"]))
        return out
    for rule in spec.get("rules") or []:
        refs = list(rule.get("backendRefs") or [])
        for f in [*(rule.get("filters") or []), *(f for r in refs for f in r.get("filters") or [])]:
            if "requestMirror" in f:
                refs.append(f["requestMirror"]["backendRef"])
        for ref in refs:
            if ref.get("kind", "Service") == "Service" and not ref.get("group"):
                out.append((ref.get("namespace") or ns, ref["name"]))
    return out


# Route kinds a listener protocol carries when allowedRoutes.kinds is empty (Gateway API).
_PROTOCOL_KINDS = {
    "HTTP": {"HTTPRoute", "GRPCRoute"},
    "HTTPS": {"HTTPRoute", "GRPCRoute"},
    "TLS": {"TLSRoute", "TCPRoute"},
    "TCP": {"TCPRoute"},
    "UDP": {"UDPRoute"},
}


def _brings_traffic_in(route: Obj, objs: list[Obj], ns_labels: Mapping[str, Any]) -> bool:
    """An Ingress always; a route when a parent may bring outside traffic: a Gateway not in
    the tree, or one with a listener admitting it; never a Service (mesh) parent."""
    if route["kind"] == "Ingress":
        return True
    ns = _ns(route)
    for parent in (route.get("spec") or {}).get("parentRefs") or []:
        group = parent.get("group", "gateway.networking.k8s.io")
        kind = parent.get("kind", "Gateway")
        if (group, kind) == ("", "Service"):
            continue
        if (group, kind) != ("gateway.networking.k8s.io", "Gateway"):
            return True
        gw_ns = parent.get("namespace") or ns
        gateways = [
            o
            for o in objs
            if o.get("kind") == "Gateway"
            and _ns(o) == gw_ns
            and o["metadata"]["name"] == parent["name"]
        ]
        if not gateways:
            return True
        for listener in (gateways[0].get("spec") or {}).get("listeners") or []:
            if "sectionName" in parent and parent["sectionName"] != listener.get("name"):
                continue
            if "port" in parent and parent["port"] != listener.get("port"):
                continue
            allowed = listener.get("allowedRoutes") or {}
            kinds = allowed.get("kinds") or []
            if kinds:
                if not any(
                    k["kind"] == route["kind"]
                    and k.get("group", "gateway.networking.k8s.io") == "gateway.networking.k8s.io"
                    for k in kinds
                ):
                    continue
            elif route["kind"] not in _PROTOCOL_KINDS.get(listener.get("protocol"), set()):
                continue
            frm = (allowed.get("namespaces") or {}).get("from", "Same")
            if frm == "All" or (frm == "Same" and ns == gw_ns):
                return True
            selector = (allowed.get("namespaces") or {}).get("selector") or {}
            if frm == "Selector" and selector_matches(selector, ns_labels.get(ns, {})):
                return True
    return False


def entry_and_jewels(
    objects: Iterable[Obj], entry_selectors: Sequence[Obj], jewel_selectors: Sequence[Obj]
) -> tuple[set[str], set[str]]:
    """Workload ids that are entry points (not counting external ranges), and crown jewels.
    A selector entry is a dict with optional namespace / namespaceSelector / podSelector."""
    objs = flatten(objects)
    ns_labels = namespace_labels(objs)
    services = {(_ns(o), o["metadata"]["name"]): o for o in objs if o.get("kind") == "Service"}
    exposed: list[Obj] = [
        s
        for s in services.values()
        if (s.get("spec") or {}).get("type") in ("LoadBalancer", "NodePort")
    ]
    for o in objs:
        if (o.get("kind") == "Ingress" or o.get("kind") in ROUTE_KINDS) and _brings_traffic_in(
            o, objs, ns_labels
        ):
            exposed += [services[k] for k in _service_backends(o) if k in services]

    def by_settings(selectors: Sequence[Obj], ns: str, labels: Mapping[str, str]) -> bool:
        for sel in selectors:
            if "namespace" in sel and sel["namespace"] != ns:
                continue
            if "namespaceSelector" in sel and not selector_matches(
                sel["namespaceSelector"], ns_labels.get(ns, {})
            ):
                continue
            if "podSelector" in sel and not selector_matches(sel["podSelector"], labels):
                continue
            return True
        return False

    entry, jewels = set(), set()
    for w in workloads_of(objs):
        labels = dict(w.labels)
        for svc in exposed:
            selector = (svc.get("spec") or {}).get("selector") or {}
            if (
                _ns(svc) == w.namespace
                and selector
                and all(labels.get(k) == v for k, v in selector.items())
            ):
                entry.add(w.id)
        if by_settings(entry_selectors, w.namespace, labels):
            entry.add(w.id)
        if by_settings(jewel_selectors, w.namespace, labels):
            jewels.add(w.id)
    return entry, jewels


def exposure(rmap: Mapping[str, Any], entry_workloads: set[str]) -> dict[str, dict[str, Any]]:
    """Per workload id: ``entry_hops`` (None: unreachable) and ``blast_radius``."""
    kinds = {e["id"]: e["kind"] for e in rmap["endpoints"]}
    succ: dict[str, list[str]] = {i: [] for i in kinds}
    for c in rmap["connections"]:
        if c["src"] != c["dst"]:
            succ[c["src"]].append(c["dst"])
    external = {i for i, k in kinds.items() if k == "External"}
    starts = set(entry_workloads) | {x for x in external if succ[x]}
    out: dict[str, dict[str, Any]] = {}
    for wid in kinds:
        if wid in external:
            continue
        out[wid] = {
            "entry_hops": _distance(succ, starts, wid, external),
            "blast_radius": len(_reached(succ, wid, external)),
            "blast_by_hops": _by_hops(succ, wid, external),
        }
    return out


def _by_hops(succ: Mapping[str, list[str]], start: str, external: set[str]) -> tuple[int, ...]:
    """How many endpoints ``start`` reaches first at each hop count (itself excluded)."""
    first = {start: 0}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        if node in external:
            continue
        for nxt in succ[node]:
            if nxt not in first:
                first[nxt] = first[node] + 1
                queue.append(nxt)
    counts: dict[int, int] = {}
    for node, k in first.items():
        if node != start:
            counts[k] = counts.get(k, 0) + 1
    # ``start`` itself is first at 0: its own class mates are counted like any endpoint.
    return tuple(counts.get(k, 0) for k in range(1, max(counts, default=0) + 1))


def _distance(
    succ: Mapping[str, list[str]], starts: set[str], target: str, external: set[str]
) -> int | None:
    best: int | None = None
    for start in starts:
        if start == target:
            return 0
        seen, queue = {start}, deque([(start, 0)])
        while queue:
            node, d = queue.popleft()
            if node != start and node in external:
                continue  # an external range ends a path
            for nxt in succ[node]:
                if nxt == target and (best is None or d + 1 < best):
                    best = d + 1
                if nxt not in seen:
                    seen.add(nxt)
                    queue.append((nxt, d + 1))
    return best


def _reached(succ: Mapping[str, list[str]], start: str, external: set[str]) -> set[str]:
    seen: set[str] = set()
    stack = [start]
    while stack:
        node = stack.pop()
        if node in external:
            continue
        for nxt in succ[node]:
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    seen.discard(start)
    return seen
