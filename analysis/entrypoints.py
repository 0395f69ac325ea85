"""Entry points and crown jewels: which pod classes traffic from outside lands on, and which
ones hold what an attacker is after.

Entry points are found in the tree (``analysis.frontends``: the pods a LoadBalancer or
NodePort Service selects, and the pods behind every Service an Ingress or a Gateway API
route names) and named in the settings (``entry_points``); external address ranges that
may connect in are entry points too (``analysis.exposure`` adds them from the map).
Crown jewels are named in the settings only (``crown_jewels``).

Both are decided per pod class: a Service selects by the pods' labels in its namespace,
and a settings entry by namespace and labels, which every workload of a class shares.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from analysis.frontends import Frontends, Route, Service
from analysis.gateways import north_south
from analysis.matcher import PodClass
from analysis.model import Labels, LabelSelector
from analysis.policies import parse_selector
from analysis.validation import Context, fields_named, type_name
from analysis.yamldoc import line_of

MAX_SELECTORS = 200


@dataclass(frozen=True, slots=True)
class WorkloadSelector:
    """One entry of ``entry_points`` or ``crown_jewels``: pods in the namespace named
    ``namespace`` (if given), in namespaces ``namespace_selector`` matches (if given),
    with labels ``pod_selector`` matches (if given). Every given part must match."""

    where: str  # the setting's path, e.g. "crown_jewels[1]"
    namespace: str | None = None
    namespace_selector: LabelSelector | None = None
    pod_selector: LabelSelector | None = None

    def matches(
        self, namespace: str, namespace_labels: Mapping[str, str], pod_labels: Mapping[str, str]
    ) -> bool:
        if self.namespace is not None and namespace != self.namespace:
            return False
        if self.namespace_selector is not None and not self.namespace_selector.matches(
            namespace_labels
        ):
            return False
        return self.pod_selector is None or self.pod_selector.matches(pod_labels)

    def __str__(self) -> str:
        parts = []
        if self.namespace is not None:
            parts.append(f"namespace {self.namespace}")
        if self.namespace_selector is not None:
            parts.append(f"namespaces {self.namespace_selector}")
        if self.pod_selector is not None:
            parts.append(f"pods {self.pod_selector}")
        return " and ".join(parts)


_FIELDS = frozenset({"namespace", "namespaceSelector", "podSelector"})


def parse_workload_selectors(value: Any, key: str) -> tuple[WorkloadSelector, ...]:
    """The ``entry_points`` / ``crown_jewels`` setting: a list of mappings with
    ``namespace`` (a name), ``namespaceSelector`` and ``podSelector`` (label selectors as
    in a NetworkPolicy). Raises ``ManifestError`` naming the entry and what to fix, on the
    entry's line when ``value`` carries lines (``analysis.yamldoc``'s ``LineDict`` and
    ``LineList``; its ``file`` is ``key``)."""
    ctx = Context(key, line_of(value))
    if not isinstance(value, list):
        ctx.fail(f"`{key}` must be a list of selectors, not {type_name(value)}")
    if len(value) > MAX_SELECTORS:
        ctx.fail(f"`{key}` has more than {MAX_SELECTORS} entries")
    out = []
    for n, entry in enumerate(value):
        where = f"{key}[{n}]"
        at = ctx.at(entry)
        if not isinstance(entry, dict):
            at.fail(f"`{where}` must be a mapping, not {type_name(entry)}")
        unknown = set(entry) - _FIELDS
        if unknown:
            at.fail(
                f"`{where}` has unknown {fields_named(unknown)}; use namespace, "
                "namespaceSelector and podSelector"
            )
        if not entry:
            at.fail(
                f"`{where}` is empty, which would select every pod; name a namespace or "
                "give a selector (namespaceSelector: {} selects every pod on purpose)"
            )
        namespace = entry.get("namespace")
        if namespace is not None and (not isinstance(namespace, str) or not namespace):
            at.fail(f"`{where}.namespace` must be a namespace name")
        ns_sel = (
            parse_selector(at, entry["namespaceSelector"], f"{where}.namespaceSelector")
            if "namespaceSelector" in entry
            else None
        )
        pod_sel = (
            parse_selector(at, entry["podSelector"], f"{where}.podSelector")
            if "podSelector" in entry
            else None
        )
        out.append(WorkloadSelector(where, namespace, ns_sel, pod_sel))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class ClassMarks:
    """What marks each pod class: why it is an entry point, why a crown jewel."""

    entry: Mapping[int, tuple[str, ...]]  # matcher class index -> reasons
    jewels: Mapping[int, tuple[str, ...]]
    notes: tuple[str, ...]  # frontends whose pods are not in the tree, unreadable ones


def mark_classes(
    classes: Sequence[tuple[int, PodClass]],
    namespace_labels: Mapping[str, Mapping[str, str]],
    frontends: Frontends,
    entry_points: Sequence[WorkloadSelector] = (),
    crown_jewels: Sequence[WorkloadSelector] = (),
) -> ClassMarks:
    """Entry points and crown jewels among ``classes`` ((matcher index, class) pairs)."""
    by_namespace: dict[str, list[tuple[int, Labels]]] = {}
    for index, cls in classes:
        by_namespace.setdefault(cls.namespace, []).append((index, cls.labels))
    entry: dict[int, list[str]] = {}
    notes: list[str] = list(frontends.unread)

    def selected(service: Service) -> list[int]:
        wanted = service.selector
        return [
            i
            for i, labels in by_namespace.get(service.namespace, ())
            if all(pair in labels for pair in wanted)
        ]

    def expose(service: Service, why: str) -> None:
        if not service.selector:
            notes.append(
                f"{service.source}: {why}: Service {service.namespace}/"
                f"{service.name} has no selector, so its pods are not known"
            )
            return
        found = selected(service)
        if not found:
            notes.append(
                f"{service.source}: {why}: Service {service.namespace}/"
                f"{service.name} selects no workload of the tree"
            )
        for i in found:
            entry.setdefault(i, []).append(why)

    for service in frontends.services:
        if service.exposed:
            expose(service, f"Service {service.id} of type {service.type} ({service.source})")
    gateways = {(g.namespace, g.name): g for g in frontends.gateways}
    for route in frontends.routes:
        if route.parents is not None and not north_south(
            route.kind, route.namespace, route.parents, gateways, namespace_labels
        ):
            notes.append(f"{route.source}: {route.id} is no entry point: {_detached(route)}")
            continue
        for ref in route.backends:
            why = f"{route.id} ({route.source}) -> Service {ref.namespace}/{ref.name}"
            backend = frontends.service(ref.namespace, ref.name)
            if backend is None:
                notes.append(
                    f"{ref.source}: {route.id} names Service {ref.namespace}/"
                    f"{ref.name}, which is not in the tree"
                )
                continue
            expose(backend, why)
    for index, why in _matching(classes, namespace_labels, entry_points, "entry_points"):
        entry.setdefault(index, []).append(why)
    jewels: dict[int, list[str]] = {}
    for index, why in _matching(classes, namespace_labels, crown_jewels, "crown_jewels"):
        jewels.setdefault(index, []).append(why)
    return ClassMarks(
        {i: tuple(dict.fromkeys(w)) for i, w in entry.items()},
        {i: tuple(w) for i, w in jewels.items()},
        tuple(dict.fromkeys(notes)),
    )


def _detached(route: Route) -> str:
    """Why a route brings no traffic in from outside (``analysis.gateways``)."""
    if not route.parents:
        return "it names no parent (spec.parentRefs) and attaches to nothing"
    if all(p.group == "" and p.kind == "Service" for p in route.parents or ()):
        return "its parents are Services: the mesh's east-west traffic (GAMMA)"
    return (
        "no listener of its Gateways admits it (allowedRoutes namespaces and kinds, "
        "sectionName, port)"
    )


def _matching(
    classes: Sequence[tuple[int, PodClass]],
    namespace_labels: Mapping[str, Mapping[str, str]],
    selectors: Sequence[WorkloadSelector],
    setting: str,
) -> list[tuple[int, str]]:
    out = []
    for selector in selectors:
        for index, cls in classes:
            ns_labels = namespace_labels.get(cls.namespace, {})
            if selector.matches(cls.namespace, ns_labels, dict(cls.labels)):
                out.append((index, f"settings {selector.where} ({selector})"))
    return out
