"""Exposure and blast radius against the brute-force reference, and the frontends reader."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

from analysis.entrypoints import parse_workload_selectors
from analysis.errors import ManifestError
from analysis.exposure import EXTERNAL_ENTRY, exposure_of
from analysis.frontends import read_frontends
from analysis.manifests import load_files, parse_file
from analysis.reachability import compute_map
from analysis.report import map_to_json
from tests import reference_exposure
from tests.reference import reference_map
from tests.strategies import (
    NAMESPACES,
    NS_KEYS,
    POD_KEYS,
    Draw,
    Obj,
    clusters,
    label_maps,
    manifest_files,
    selectors,
)
from tests.test_properties import PROFILE, render

ROUTE_API = "gateway.networking.k8s.io/v1"


@st.composite
def frontend_objects(draw: Draw, namespaces: list[str]) -> list[Obj]:
    """0-3 Services (some exposed on their own), and an Ingress or a route to some."""
    out: list[Obj] = []
    names = []
    for n in range(draw(st.integers(0, 3))):
        ns = draw(st.sampled_from(namespaces))
        spec: Obj = {"ports": [{"port": 80}]}
        selector = draw(label_maps(POD_KEYS))
        if selector or draw(st.booleans()):
            spec["selector"] = selector
        kind = draw(st.sampled_from(("ClusterIP", "NodePort", "LoadBalancer", None)))
        if kind:
            spec["type"] = kind
        out.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": f"s{n}", "namespace": ns},
                "spec": spec,
            }
        )
        names.append((ns, f"s{n}"))
    if names and draw(st.booleans()):
        ns, name = draw(st.sampled_from(names))
        out.append(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "Ingress",
                "metadata": {"name": "in", "namespace": ns},
                "spec": {
                    "rules": [
                        {
                            "http": {
                                "paths": [
                                    {
                                        "path": "/",
                                        "pathType": "Prefix",
                                        "backend": {
                                            "service": {"name": name, "port": {"number": 80}}
                                        },
                                    }
                                ]
                            }
                        }
                    ]
                },
            }
        )
    if names and draw(st.booleans()):
        ns, name = draw(st.sampled_from(names))
        home = draw(st.sampled_from(namespaces))
        ref: Obj = {"name": name, "port": 80}
        if home != ns:
            ref["namespace"] = ns
        rule: Obj = (
            {"backendRefs": [ref]}
            if draw(st.booleans())
            else {"filters": [{"type": "RequestMirror", "requestMirror": {"backendRef": ref}}]}
        )
        route_spec: Obj = {"rules": [rule]}
        parents = draw(route_parents(namespaces))
        if parents is not None:
            route_spec["parentRefs"] = parents
        out.append(
            {
                "apiVersion": ROUTE_API,
                "kind": draw(st.sampled_from(("HTTPRoute", "GRPCRoute", "TLSRoute"))),
                "metadata": {"name": "r", "namespace": home},
                "spec": route_spec,
            }
        )
        if draw(st.booleans()):
            out.append(draw(gateway_objects(namespaces)))
    return out


@st.composite
def route_parents(draw: Draw, namespaces: list[str]) -> list[Obj] | None:
    """None (no parentRefs), or parents: the Gateway "gw" (maybe in the tree), a Service
    (the mesh), another kind; with a sectionName or port at times."""
    if draw(st.integers(0, 4)) == 0:
        return None
    out: list[Obj] = []
    for _ in range(draw(st.integers(1, 2))):
        which = draw(st.sampled_from(("gateway", "gateway", "service", "other")))
        if which == "service":
            out.append({"group": "", "kind": "Service", "name": "s0"})
            continue
        if which == "other":
            out.append({"group": "example.com", "kind": "ListenerSet", "name": "ls"})
            continue
        ref: Obj = {"name": "gw"}
        if draw(st.booleans()):
            ref["namespace"] = draw(st.sampled_from(namespaces))
        if draw(st.booleans()):
            ref["sectionName"] = draw(st.sampled_from(("web", "tcp")))
        if draw(st.integers(0, 3)) == 0:
            ref["port"] = draw(st.sampled_from((80, 443)))
        out.append(ref)
    return out


@st.composite
def gateway_objects(draw: Draw, namespaces: list[str]) -> Obj:
    listeners = []
    for name, protocol, port in draw(
        st.lists(
            st.sampled_from((("web", "HTTP", 80), ("tcp", "TCP", 443), ("tls", "TLS", 443))),
            min_size=1,
            max_size=2,
            unique=True,
        )
    ):
        listener: Obj = {"name": name, "protocol": protocol, "port": port}
        allowed: Obj = {}
        frm = draw(st.sampled_from((None, "Same", "All", "Selector")))
        if frm is not None:
            allowed["namespaces"] = {"from": frm}
            if frm == "Selector":
                allowed["namespaces"]["selector"] = draw(selectors(NS_KEYS))
        if draw(st.booleans()):
            allowed["kinds"] = [
                {"kind": k}
                for k in draw(
                    st.lists(st.sampled_from(("HTTPRoute", "TLSRoute", "TCPRoute")), max_size=2)
                )
            ] or [{"kind": "UDPRoute"}]
        if allowed:
            listener["allowedRoutes"] = allowed
        listeners.append(listener)
    return {
        "apiVersion": ROUTE_API,
        "kind": "Gateway",
        "metadata": {"name": "gw", "namespace": draw(st.sampled_from(namespaces))},
        "spec": {"gatewayClassName": "example", "listeners": listeners},
    }


@st.composite
def settings_selectors(draw: Draw, namespaces: list[str]) -> list[Obj]:
    out = []
    for _ in range(draw(st.integers(0, 2))):
        entry: Obj = {}
        if draw(st.booleans()):
            entry["namespace"] = draw(st.sampled_from(namespaces))
        if draw(st.booleans()):
            entry["namespaceSelector"] = draw(selectors(NS_KEYS))
        if not entry or draw(st.booleans()):
            entry["podSelector"] = draw(selectors(POD_KEYS))
        out.append(entry)
    return out


@st.composite
def guards(draw: Draw, namespaces: list[str]) -> list[Obj]:
    """Per namespace, maybe a policy admitting only in-cluster pods of some labels: no
    external range gets in, and chains of several hops form between namespaces."""
    out = []
    for ns in namespaces:
        if draw(st.booleans()):
            peer = {"namespaceSelector": {}, "podSelector": draw(selectors(POD_KEYS))}
            out.append(
                {
                    "apiVersion": "networking.k8s.io/v1",
                    "kind": "NetworkPolicy",
                    "metadata": {"name": "guard", "namespace": ns},
                    "spec": {
                        "podSelector": {},
                        "policyTypes": ["Ingress"],
                        "ingress": [{"from": [peer]}],
                    },
                }
            )
    return out


@st.composite
def exposed_clusters(draw: Draw) -> tuple[list[Obj], dict[str, str], list[Obj], list[Obj]]:
    objects = draw(clusters())
    objects += draw(frontend_objects(list(NAMESPACES)))
    objects += draw(guards(list(NAMESPACES)))
    files = draw(manifest_files(objects))
    note(render(files))
    entry = draw(settings_selectors(list(NAMESPACES)))
    jewels = draw(settings_selectors(list(NAMESPACES)))
    note(f"entry_points: {entry}\ncrown_jewels: {jewels}")
    return objects, files, entry, jewels


def _frontends(files: dict[str, str]) -> Any:
    return read_frontends((p, o) for p in sorted(files) for o in parse_file(p, files[p]))


@settings(PROFILE)
@given(exposed_clusters())
def test_exposure_matches_brute_force(
    case: tuple[list[Obj], dict[str, str], list[Obj], list[Obj]],
) -> None:
    objects, files, entry_sel, jewel_sel = case
    rmap = compute_map(load_files(files))
    got = exposure_of(
        rmap,
        _frontends(files),
        parse_workload_selectors(entry_sel, "entry_points"),
        parse_workload_selectors(jewel_sel, "crown_jewels"),
    )
    ref_map = reference_map(objects)
    assert map_to_json(rmap)["connections"] == ref_map["connections"]  # the same graph
    entry, jewels = reference_exposure.entry_and_jewels(objects, entry_sel, jewel_sel)
    want = reference_exposure.exposure(ref_map, entry)
    allowed = {(c["src"], c["dst"]): c["allowed"] for c in ref_map["connections"]}
    assert {w.endpoint.id for w in got.workloads} == set(want)
    externals = {e["id"] for e in ref_map["endpoints"] if e["kind"] == "External"}
    starts = entry | {x for x in externals if any(s == x for s, _ in allowed)}
    assert {e.endpoint.id for e in got.entry_points} == starts
    for e in got.entry_points:
        assert (EXTERNAL_ENTRY in e.why) == (e.endpoint.id in externals)
    for w in got.workloads:
        wid = w.endpoint.id
        assert (w.entry_hops, w.blast_radius) == (
            want[wid]["entry_hops"],
            want[wid]["blast_radius"],
        ), wid
        assert w.entry_point == (wid in entry)
        assert w.crown_jewel == (wid in jewels)
        if w.crown_jewel:
            assert w.blast_by_hops == want[wid]["blast_by_hops"], wid
            assert sum(w.blast_by_hops) == w.blast_radius
        if not w.entry_hops:
            assert w.entry_path == ()
            continue
        path = w.entry_path
        assert len(path) == w.entry_hops
        assert path[0].src.id in starts and path[-1].dst.id == wid
        for a, b in itertools.pairwise(path):
            assert a.dst.id == b.src.id and a.dst.id not in externals
        for hop in path:
            assert hop.src.id != hop.dst.id
            assert hop.allowed.to_json() == allowed[hop.src.id, hop.dst.id]


def _objects(text: str) -> list[tuple[str, Any]]:
    return [("f.yaml", o) for o in parse_file("f.yaml", text)]


def test_frontends_read_every_kind_of_backend() -> None:
    text = """\
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, namespace: shop}
spec:
  defaultBackend: {service: {name: fallback, port: {number: 80}}}
  rules:
  - http:
      paths:
      - path: /
        pathType: Prefix
        backend: {service: {name: web, port: {number: 80}}}
      - path: /static
        pathType: Prefix
        backend: {resource: {apiGroup: k8s.example.com, kind: StorageBucket, name: b}}
---
apiVersion: extensions/v1beta1
kind: Ingress
metadata: {name: old}
spec:
  backend: {serviceName: legacy, servicePort: 80}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: gw}
spec:
  rules:
  - filters:
    - type: RequestMirror
      requestMirror: {backendRef: {name: shadow, namespace: shop, port: 80}}
    backendRefs:
    - {name: api, port: 8080}
    - {group: multicluster.x-k8s.io, kind: ServiceImport, name: remote, port: 80}
"""
    found = read_frontends(_objects(text))
    backends = {r.id: [(b.namespace, b.name) for b in r.backends] for r in found.routes}
    assert backends == {
        "shop/Ingress/web": [("shop", "fallback"), ("shop", "web")],
        "default/Ingress/old": [("default", "legacy")],
        "gw/HTTPRoute/r": [("shop", "shadow"), ("gw", "api")],
    }
    assert len(found.unread) == 2
    assert "f.yaml:14: an Ingress backend that is a resource" in found.unread[0]
    assert "ServiceImport gw/remote, not a Service" in found.unread[1]


def test_service_types_and_unresolved_backends_are_noted() -> None:
    text = """\
apiVersion: v1
kind: Service
metadata: {name: lb, namespace: shop}
spec: {type: LoadBalancer, selector: {app: web}}
---
apiVersion: v1
kind: Service
metadata: {name: headless, namespace: shop}
spec: {type: NodePort}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop, labels: {app: web}}
spec: {containers: [{name: c, image: i}]}
---
apiVersion: v1
kind: Pod
metadata: {name: db, namespace: shop, labels: {app: db}}
spec: {containers: [{name: c, image: i}]}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: i, namespace: shop}
spec: {defaultBackend: {service: {name: missing, port: {number: 80}}}}
"""
    files = {"f.yaml": text}
    got = exposure_of(compute_map(load_files(files)), _frontends(files))
    entry = {e.endpoint.id: e.why for e in got.entry_points}
    assert "shop/Pod/web" in entry and "shop/Pod/db" not in entry
    assert "LoadBalancer" in entry["shop/Pod/web"][0]
    assert any("headless has no selector" in n and n.startswith("f.yaml:6:") for n in got.notes)
    assert any("Service shop/missing, which is not in the tree" in n for n in got.notes)
    # No policy: the internet reaches both directly; each reaches the other.
    by_id = got.by_id()
    assert by_id["shop/Pod/db"].entry_hops == 1 and by_id["shop/Pod/web"].entry_hops == 0
    # web, and the two external ranges (every IPv4 and every IPv6 address)
    assert by_id["shop/Pod/db"].blast_radius == 3


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"namespace": "x"}, "must be a list"),
        ([{}], "is empty"),
        ([{"namespaces": "x"}], "unknown field"),
        ([{"podSelector": {"matchLabel": {}}}], "unknown field"),
        ([{"namespace": 3}], "namespace name"),
    ],
)
def test_selector_settings_are_strict(value: Any, message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        parse_workload_selectors(value, "crown_jewels")


# Gateway API attachment (analysis.gateways), shaped like the Gateway API's own examples
# (kubernetes-sigs/gateway-api site-src/guides, Apache-2.0): a shared Gateway in `infra`
# whose listener admits routes from namespaces labelled shared-gateway-access=true.
GATEWAY_TREE = """\
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {shared-gateway-access: "true"}}
---
apiVersion: v1
kind: Namespace
metadata: {name: internal}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: shared, namespace: infra}
spec:
  gatewayClassName: example
  listeners:
  - name: https
    protocol: HTTPS
    port: 443
    allowedRoutes:
      namespaces:
        from: Selector
        selector: {matchLabels: {shared-gateway-access: "true"}}
  - name: tcp
    protocol: TCP
    port: 5432
    allowedRoutes: {namespaces: {from: All}}
"""


def _workload(ns: str, app: str) -> str:
    return (
        f"---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {app}, namespace: {ns}}}\n"
        f"spec:\n  selector: {{matchLabels: {{app: {app}}}}}\n  template:\n"
        f"    metadata: {{labels: {{app: {app}}}}}\n"
        "    spec: {containers: [{name: c, image: x}]}\n"
        f"---\napiVersion: v1\nkind: Service\nmetadata: {{name: {app}, namespace: {ns}}}\n"
        f"spec: {{selector: {{app: {app}}}, ports: [{{port: 80}}]}}\n"
    )


def _route(ns: str, app: str, parents: str, kind: str = "HTTPRoute") -> str:
    return (
        f"---\napiVersion: gateway.networking.k8s.io/v1\nkind: {kind}\n"
        f"metadata: {{name: {app}, namespace: {ns}}}\n"
        f"spec:\n  parentRefs: {parents}\n  rules: [{{backendRefs: [{{name: {app}, port: 80}}]}}]\n"
    )


@pytest.mark.parametrize(
    ("route", "entry"),
    [
        (_route("shop", "web", "[{name: shared, namespace: infra}]"), True),
        # sectionName names the TCP listener, which carries TCPRoutes only
        (_route("shop", "web", "[{name: shared, namespace: infra, sectionName: tcp}]"), False),
        (_route("shop", "web", "[{name: shared, namespace: infra, port: 443}]"), True),
        # `internal` lacks the label the HTTPS listener selects; TCP takes no HTTPRoute
        (_route("internal", "web", "[{name: shared, namespace: infra}]"), False),
        (_route("internal", "web", "[{name: shared, namespace: infra}]", "TCPRoute"), True),
        # a Gateway not in the tree may admit it: counted
        (_route("internal", "web", "[{name: elsewhere, namespace: infra}]"), True),
        # the mesh (GAMMA): a Service parent is east-west traffic
        (_route("shop", "web", "[{group: '', kind: Service, name: web}]"), False),
        (_route("shop", "web", "[]"), False),  # attached to nothing
    ],
)
def test_routes_count_only_through_gateways_that_admit_them(route: str, entry: bool) -> None:
    ns = "internal" if "namespace: internal" in route else "shop"
    text = GATEWAY_TREE + _workload(ns, "web") + route
    files = {"t.yaml": text}
    got = exposure_of(compute_map(load_files(files)), _frontends(files))
    entries = {e.endpoint.id for e in got.entry_points}
    assert (f"{ns}/Deployment/web" in entries) is entry
    if not entry:
        assert any("is no entry point" in n for n in got.notes)
    objects = [o for _, o in _objects(text)]
    want, _ = reference_exposure.entry_and_jewels(objects, [], [])
    assert (f"{ns}/Deployment/web" in want) is entry
