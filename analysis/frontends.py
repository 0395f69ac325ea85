"""Where a manifest tree lets traffic in from outside the cluster: its frontends.

A Service of type LoadBalancer or NodePort is reachable from outside the cluster on every
node; an Ingress, or a Gateway API route (``HTTPRoute``, ``GRPCRoute``, ``TLSRoute``, and
the experimental ``TCPRoute`` and ``UDPRoute``), hands outside requests to the Services it
names as backends. This module reads those objects; ``analysis.exposure`` turns them into
entry points (the pods the Services select).

These objects are not validated like policies are: they decide nothing about what
NetworkPolicy allows, and the loader accepts any of them. What cannot be read here (a
backend that is not a Service, a malformed field) is kept in ``Frontends.unread`` with
its file and line, never dropped silently.

Sources of the fields: the Kubernetes API reference for Service (``spec.type``,
``spec.selector``) and Ingress (``networking.k8s.io/v1``: ``spec.defaultBackend.service``,
``spec.rules[].http.paths[].backend.service``; ``v1beta1``: ``serviceName``), and the
Gateway API specification (``spec.rules[].backendRefs[]`` with ``group`` defaulting to
the core group, ``kind`` to ``Service`` and ``namespace`` to the route's; request
mirrors in ``filters[].requestMirror.backendRef`` also receive traffic). Which routes carry
traffic from outside at all (their ``parentRefs`` and the Gateways' listeners) is
``analysis.gateways``'s.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from analysis.gateways import GATEWAY_GROUP, Gateway, ParentRef, parent_refs, read_gateway
from analysis.model import Labels, Source, labels_of
from analysis.parsecache import ParseCache
from analysis.validation import Context
from analysis.yamldoc import YMap, line_of

EXPOSING_SERVICE_TYPES = ("LoadBalancer", "NodePort")
ROUTE_KINDS = ("HTTPRoute", "GRPCRoute", "TLSRoute", "TCPRoute", "UDPRoute")
INGRESS_GROUPS = ("networking.k8s.io", "extensions")
MAX_BACKENDS = 10_000  # per route: a hostile file cannot make the reader quadratic


@dataclass(frozen=True, slots=True)
class Service:
    namespace: str
    name: str
    type: str  # ClusterIP (the default), NodePort, LoadBalancer, ExternalName
    selector: Labels  # empty: none (the Service's endpoints are not made from pods)
    source: Source

    @property
    def id(self) -> str:
        return f"{self.namespace}/Service/{self.name}"

    @property
    def exposed(self) -> bool:
        """Reachable from outside the cluster on its own (a node port on every node)."""
        return self.type in EXPOSING_SERVICE_TYPES


@dataclass(frozen=True, slots=True)
class BackendRef:
    """A Service (or, unresolvable here, another kind) a route sends requests to."""

    namespace: str
    name: str
    source: Source
    group: str = ""
    kind: str = "Service"

    @property
    def is_service(self) -> bool:
        return self.group == "" and self.kind == "Service"


@dataclass(frozen=True, slots=True)
class Route:
    """An Ingress or a Gateway API route, with every backend it names."""

    kind: str
    namespace: str
    name: str
    backends: tuple[BackendRef, ...]
    source: Source
    # A Gateway API route's spec.parentRefs (analysis.gateways); None for an Ingress.
    parents: tuple[ParentRef, ...] | None = None

    @property
    def id(self) -> str:
        return f"{self.namespace}/{self.kind}/{self.name}"


@dataclass(frozen=True, slots=True)
class Frontends:
    services: tuple[Service, ...] = ()
    routes: tuple[Route, ...] = ()
    unread: tuple[str, ...] = ()  # "file:line: why", for what could not be read
    gateways: tuple[Gateway, ...] = ()  # what decides which routes attach (analysis.gateways)

    def service(self, namespace: str, name: str) -> Service | None:
        for s in self.services:
            if s.namespace == namespace and s.name == name:
                return s
        return None


NO_FRONTENDS = Frontends()


def read_frontends(objects: Iterable[tuple[str, YMap]]) -> Frontends:
    """The Services, Ingresses and routes among ``(path, object)`` pairs (parsed YAML, as
    ``manifests.parse_file`` or a renderer gives them)."""
    services: list[Service] = []
    routes: list[Route] = []
    gateways: list[Gateway] = []
    unread: list[str] = []
    for path, obj in objects:
        kind, api_version = obj.get("kind"), obj.get("apiVersion")
        if not isinstance(kind, str) or not isinstance(api_version, str):
            continue
        group = api_version.rpartition("/")[0]
        ctx = Context(path, line_of(obj, 1)).at(obj)
        meta = obj.get("metadata")
        if kind not in ("Service", "Ingress", "Gateway", *ROUTE_KINDS):
            continue
        if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
            if (kind == "Service" and group == "") or group in (*INGRESS_GROUPS, GATEWAY_GROUP):
                unread.append(f"{ctx.file}:{ctx.line}: {kind} without a metadata.name")
            continue
        namespace = meta.get("namespace") or "default"
        if not isinstance(namespace, str):
            unread.append(f"{ctx.file}:{ctx.line}: {kind} with a namespace that is no string")
            continue
        name: str = meta["name"]
        where = Source(ctx.file, ctx.line)
        if kind == "Service" and group == "":
            services.append(_service(namespace, name, obj, where, unread))
        elif kind == "Ingress" and group in INGRESS_GROUPS:
            refs = list(_ingress_backends(ctx, namespace, obj.get("spec")))
            routes.append(_route(kind, namespace, name, refs, where, unread))
        elif kind in ROUTE_KINDS and group == GATEWAY_GROUP:
            refs = list(_route_backends(ctx, namespace, obj.get("spec")))
            route = _route(kind, namespace, name, refs, where, unread)
            parents = parent_refs(namespace, obj.get("spec"))
            routes.append(replace(route, parents=parents))
        elif kind == "Gateway" and group == GATEWAY_GROUP:
            gateways.append(read_gateway(namespace, name, obj, where))
    return Frontends(tuple(services), tuple(routes), tuple(unread), tuple(gateways))


def _service(namespace: str, name: str, obj: YMap, where: Source, unread: list[str]) -> Service:
    spec = obj.get("spec")
    spec = spec if isinstance(spec, dict) else {}
    kind = spec.get("type")
    selector = spec.get("selector")
    labels: dict[str, str] = {}
    if isinstance(selector, dict):
        labels = {k: v for k, v in selector.items() if isinstance(k, str) and isinstance(v, str)}
        if len(labels) != len(selector):
            # The API server refuses such a selector; select nothing rather than guess.
            unread.append(
                f"{where}: Service {namespace}/{name} has a selector whose keys "
                "or values are not all strings (quote them)"
            )
            labels = {}
    return Service(
        namespace, name, kind if isinstance(kind, str) else "ClusterIP", labels_of(labels), where
    )


def _route(
    kind: str,
    namespace: str,
    name: str,
    refs: list[BackendRef | str],
    where: Source,
    unread: list[str],
) -> Route:
    backends: list[BackendRef] = []
    for ref in refs[:MAX_BACKENDS]:
        if isinstance(ref, str):
            unread.append(ref)
        else:
            backends.append(ref)
    if len(refs) > MAX_BACKENDS:
        unread.append(
            f"{where}: {kind} {namespace}/{name} names more than "
            f"{MAX_BACKENDS} backends; the rest were not read"
        )
    return Route(kind, namespace, name, tuple(backends), where)


def _ingress_backends(ctx: Context, namespace: str, spec: Any) -> Iterator[BackendRef | str]:
    if not isinstance(spec, dict):
        return
    for key in ("defaultBackend", "backend"):  # v1, and v1beta1's name for it
        if key in spec:
            yield _ingress_backend(ctx, namespace, spec[key])
    rules = spec.get("rules")
    for rule in rules if isinstance(rules, list) else ():
        http = rule.get("http") if isinstance(rule, dict) else None
        paths = http.get("paths") if isinstance(http, dict) else None
        for entry in paths if isinstance(paths, list) else ():
            if isinstance(entry, dict):
                yield _ingress_backend(ctx, namespace, entry.get("backend"))


def _ingress_backend(ctx: Context, namespace: str, backend: Any) -> BackendRef | str:
    at = ctx.at(backend)
    if not isinstance(backend, dict):
        return f"{at.file}:{at.line}: an Ingress backend that is not a mapping"
    service = backend.get("service")
    if isinstance(service, dict) and isinstance(service.get("name"), str):
        return BackendRef(namespace, service["name"], Source(at.file, at.line))
    if isinstance(backend.get("serviceName"), str):  # extensions/v1beta1, networking v1beta1
        return BackendRef(namespace, backend["serviceName"], Source(at.file, at.line))
    resource = backend.get("resource")
    if isinstance(resource, dict):
        group = resource.get("apiGroup") or ""
        return (
            f"{at.file}:{at.line}: an Ingress backend that is a resource "
            f"({group}/{resource.get('kind')} {resource.get('name')}), not a Service: "
            "what it sends traffic to is not known from the manifests"
        )
    return f"{at.file}:{at.line}: an Ingress backend naming no Service"


def _route_backends(ctx: Context, namespace: str, spec: Any) -> Iterator[BackendRef | str]:
    if not isinstance(spec, dict):
        return
    rules = spec.get("rules")
    for rule in rules if isinstance(rules, list) else ():
        if not isinstance(rule, dict):
            continue
        yield from _mirrors(ctx, namespace, rule.get("filters"))
        refs = rule.get("backendRefs")
        for ref in refs if isinstance(refs, list) else ():
            yield _backend_ref(ctx, namespace, ref)
            if isinstance(ref, dict):
                yield from _mirrors(ctx, namespace, ref.get("filters"))


def _mirrors(ctx: Context, namespace: str, filters: Any) -> Iterator[BackendRef | str]:
    for f in filters if isinstance(filters, list) else ():
        mirror = f.get("requestMirror") if isinstance(f, dict) else None
        if isinstance(mirror, dict) and "backendRef" in mirror:
            yield _backend_ref(ctx, namespace, mirror["backendRef"])


def _backend_ref(ctx: Context, namespace: str, ref: Any) -> BackendRef | str:
    at = ctx.at(ref)
    if not isinstance(ref, dict) or not isinstance(ref.get("name"), str):
        return f"{at.file}:{at.line}: a backendRef without a name"
    group, kind = ref.get("group") or "", ref.get("kind") or "Service"
    ref_namespace = ref.get("namespace") or namespace
    if not (isinstance(group, str) and isinstance(kind, str) and isinstance(ref_namespace, str)):
        return f"{at.file}:{at.line}: a backendRef whose group, kind or namespace is no string"
    where = Source(at.file, at.line)
    if group != "" or kind != "Service":
        return (
            f"{where}: a backendRef to {group or 'core'}/{kind} {ref_namespace}/"
            f"{ref['name']}, not a Service: what it sends traffic to is not known "
            "from the manifests"
        )
    return BackendRef(ref_namespace, ref["name"], where)


def frontends_of_files(
    files: Mapping[str, bytes | str], cache: ParseCache | None = None
) -> Frontends:
    """The frontends of plain manifest files (with the ``cache`` a tree was loaded with,
    its files are not parsed again: ``analysis.parsecache``)."""
    from analysis.manifests import MANIFEST_SUFFIXES, parse_file  # the loader imports a lot

    paths = [p for p in sorted(files) if p.endswith(MANIFEST_SUFFIXES)]
    return read_frontends(
        (p, obj) for p in paths for obj in parse_file(p, files[p], exact=False, cache=cache)
    )
