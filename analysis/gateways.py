"""Which Gateway API routes carry traffic from outside the cluster: their parents.

A route (``HTTPRoute``, ``GRPCRoute``, ``TLSRoute``, ``TCPRoute``, ``UDPRoute``) serves
requests only through the parents it attaches to (``spec.parentRefs``). A Gateway accepts
a route on a listener only when the listener's ``allowedRoutes`` admits the route's
namespace (``from``: ``Same``, the default, ``All``, or ``Selector`` on the namespace's
labels) and kind (``kinds``, or by default the kinds the listener's protocol carries), and
the parentRef's ``sectionName`` and ``port``, when given, name that listener. A parentRef to
a Service (group ``""``) is the GAMMA mesh binding: east-west traffic inside the cluster,
not an entry from outside. A route with no parentRefs attaches to nothing.

What the tree cannot settle is counted as attached, so exposure is over-stated rather
than under-stated: a Gateway that is not in the tree (a shared one, managed elsewhere), a
parent of another kind, a listener protocol the specification does not define. Hostnames
are not intersected (a route whose hostnames no listener serves is still counted).

Sources: the Gateway API specification (gateway.networking.k8s.io v1: ParentReference,
Listener, AllowedRoutes, RouteGroupKind; the GAMMA mesh binding, GEP-1426).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from analysis.errors import ManifestError
from analysis.model import LabelSelector, Source
from analysis.validation import Context

GATEWAY_GROUP = "gateway.networking.k8s.io"
MAX_LISTENERS = 64  # the Gateway CRD's own bound on spec.listeners
# The route kinds each standard listener protocol carries when allowedRoutes.kinds is empty.
_DEFAULT_KINDS: dict[str, frozenset[str]] = {
    "HTTP": frozenset({"HTTPRoute", "GRPCRoute"}),
    "HTTPS": frozenset({"HTTPRoute", "GRPCRoute"}),
    "TLS": frozenset({"TLSRoute", "TCPRoute"}),
    "TCP": frozenset({"TCPRoute"}),
    "UDP": frozenset({"UDPRoute"}),
}


@dataclass(frozen=True, slots=True)
class ParentRef:
    group: str
    kind: str
    namespace: str
    name: str
    section: str | None = None  # sectionName: one listener, by name
    port: int | None = None


@dataclass(frozen=True, slots=True)
class Listener:
    name: str
    port: int | None
    protocol: str
    namespaces_from: str  # Same | All | Selector (anything else admits nothing)
    selector: LabelSelector | None  # allowedRoutes.namespaces.selector; None: unreadable
    kinds: tuple[tuple[str, str], ...]  # (group, kind); () means by protocol


@dataclass(frozen=True, slots=True)
class Gateway:
    namespace: str
    name: str
    listeners: tuple[Listener, ...]
    source: Source


def parent_refs(namespace: str, spec: Any) -> tuple[ParentRef, ...]:
    """A route's parents, defaults applied (malformed entries are counted as unknown
    parents, and so as attached: see the module docstring)."""
    refs = spec.get("parentRefs") if isinstance(spec, dict) else None
    out: list[ParentRef] = []
    for ref in refs if isinstance(refs, list) else ():
        if not isinstance(ref, dict) or not isinstance(ref.get("name"), str):
            out.append(ParentRef("?", "?", namespace, "?"))  # unknown: attached
            continue
        group = ref.get("group", GATEWAY_GROUP)
        kind = ref.get("kind") or "Gateway"
        ns = ref.get("namespace") or namespace
        section, port = ref.get("sectionName"), ref.get("port")
        out.append(
            ParentRef(
                group if isinstance(group, str) else "?",
                kind if isinstance(kind, str) else "?",
                ns if isinstance(ns, str) else namespace,
                ref["name"],
                section if isinstance(section, str) else None,
                port if isinstance(port, int) and not isinstance(port, bool) else None,
            )
        )
    return tuple(out)


def read_gateway(namespace: str, name: str, obj: Any, source: Source) -> Gateway:
    spec = obj.get("spec") if isinstance(obj, dict) else None
    listeners = spec.get("listeners") if isinstance(spec, dict) else None
    return Gateway(
        namespace,
        name,
        tuple(_listeners(listeners if isinstance(listeners, list) else [])),
        source,
    )


def _listeners(entries: list[Any]) -> Iterator[Listener]:
    for entry in entries[:MAX_LISTENERS]:
        if not isinstance(entry, dict):
            continue
        allowed = entry.get("allowedRoutes")
        allowed = allowed if isinstance(allowed, dict) else {}
        namespaces = allowed.get("namespaces")
        namespaces = namespaces if isinstance(namespaces, dict) else {}
        selector = namespaces.get("selector")
        kinds = allowed.get("kinds")
        port, name, protocol = entry.get("port"), entry.get("name"), entry.get("protocol")
        yield Listener(
            name=name if isinstance(name, str) else "",
            port=port if isinstance(port, int) and not isinstance(port, bool) else None,
            protocol=protocol if isinstance(protocol, str) else "",
            namespaces_from=str(namespaces.get("from") or "Same"),
            selector=_selector(selector),
            kinds=tuple(
                (str(k.get("group", GATEWAY_GROUP) or ""), str(k.get("kind")))
                for k in (kinds if isinstance(kinds, list) else ())
                if isinstance(k, dict) and isinstance(k.get("kind"), str)
            ),
        )


def north_south(
    kind: str,
    namespace: str,
    parents: tuple[ParentRef, ...],
    gateways: Mapping[tuple[str, str], Gateway],
    namespace_labels: Mapping[str, Mapping[str, str]],
) -> bool:
    """Whether a route of ``kind`` in ``namespace`` attaches to some parent that may bring
    traffic in from outside the cluster."""
    for parent in parents:
        if parent.group == "" and parent.kind == "Service":
            continue  # GAMMA: the mesh's east-west traffic
        if parent.group != GATEWAY_GROUP or parent.kind != "Gateway":
            return True  # another kind of parent: not known here
        gateway = gateways.get((parent.namespace, parent.name))
        if gateway is None:
            return True  # not in the tree
        labels = namespace_labels.get(namespace, {"kubernetes.io/metadata.name": namespace})
        if any(
            _admits(listener, parent, kind, namespace, gateway.namespace, labels)
            for listener in gateway.listeners
        ):
            return True
    return False


def _admits(
    listener: Listener,
    parent: ParentRef,
    kind: str,
    namespace: str,
    gateway_namespace: str,
    labels: Mapping[str, str],
) -> bool:
    if parent.section is not None and parent.section != listener.name:
        return False
    if parent.port is not None and parent.port != listener.port:
        return False
    if listener.kinds:
        if (GATEWAY_GROUP, kind) not in listener.kinds:
            return False
    elif listener.protocol in _DEFAULT_KINDS and kind not in _DEFAULT_KINDS[listener.protocol]:
        return False
    if listener.namespaces_from == "All":
        return True
    if listener.namespaces_from == "Same":
        return namespace == gateway_namespace
    if listener.namespaces_from == "Selector":
        # A selector the API would refuse admits nothing it could not read: over-stated.
        return listener.selector is None or listener.selector.matches(labels)
    return False


def _selector(value: Any) -> LabelSelector | None:
    from analysis.policies import parse_selector  # policies imports much of the loader

    if value is None:
        return LabelSelector()  # `from: Selector` without one: the empty selector
    try:
        return parse_selector(Context("", 0), value, "selector")
    except ManifestError:
        return None
