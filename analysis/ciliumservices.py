"""Cilium's ``toServices``: a Service's backends, by the Service's selector.

``toServices`` names Kubernetes Services (``k8sService``: by name and namespace;
``k8sServiceSelector``: by the Services' own labels, in a namespace or all of them). A
Service with a selector sends traffic to the pods it selects, so the rule admits those pods
(the selector matches pod labels as Kubernetes matches them, in the Service's namespace).
A Service without a selector has its endpoints set by hand or by a controller, which the
manifests do not show: the rule is reported *not analysed* (name, file and line) and that
Service admits nothing; so is a Service the tree does not define. The namespace of a
namespaced policy's reference defaults to the policy's (Cilium's ParseToCiliumRule).

Source: Cilium's ``pkg/policy/api/service.go`` and docs.cilium.io, *Layer 3 Policies*,
*Services based* (Apache-2.0); facts only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from analysis.ciliummodel import CiliumPolicy, CiliumRule, CiliumSelector, CiliumServiceRef
from analysis.model import (
    NAMESPACE_NAME_LABEL,
    LabelRequirement,
    Labels,
    LabelSelector,
    Source,
    labels_of,
)
from analysis.validation import v1_object
from analysis.yamldoc import YMap, line_of


@dataclass(frozen=True, slots=True)
class ServiceModel:
    """A v1 Service as toServices reads it: its labels, and its selector (None: none)."""

    namespace: str
    name: str
    labels: Labels
    selector: Labels | None
    source: Source
    # (protocol, targetPort) of each port: what its EndpointSlices serve (Calico's
    # destination `services` match these ports only)
    ports: tuple[tuple[str, int | str], ...] = ()


def service_model(path: str, obj: YMap) -> ServiceModel | None:
    """The Service ``obj`` is (None for any other object, or one without a name)."""
    read = v1_object(obj, "Service")
    if read is None:
        return None
    namespace, name, labels = read
    spec = obj.get("spec")
    selector = spec.get("selector") if isinstance(spec, dict) else None
    chosen: Labels | None = None
    if isinstance(selector, dict) and selector:
        # keys and values the API server would refuse leave it matching nothing
        good = {k: v for k, v in selector.items() if isinstance(k, str) and isinstance(v, str)}
        chosen = labels_of(good) if len(good) == len(selector) else (("", "~invalid"),)
    ports = _ports(spec.get("ports") if isinstance(spec, dict) else None)
    where = Source(path, line_of(obj, 1))
    return ServiceModel(namespace, name, labels_of(labels), chosen, where, ports)


def _ports(ports: object) -> tuple[tuple[str, int | str], ...]:
    """Each port's protocol (default TCP) and targetPort (default: the port); entries the
    API server would refuse are left out."""
    out: list[tuple[str, int | str]] = []
    for entry in ports if isinstance(ports, list) else ():
        if not isinstance(entry, dict):
            continue
        protocol = entry.get("protocol", "TCP")
        port = entry.get("port")
        target = entry.get("targetPort", port)
        if protocol not in ("TCP", "UDP", "SCTP") or isinstance(target, bool):
            continue
        if isinstance(target, int) or (isinstance(target, str) and target):
            out.append((protocol, target))
    return tuple(out)


def resolve_services(
    policies: Sequence[CiliumPolicy], services: Iterable[ServiceModel]
) -> list[CiliumPolicy]:
    """The policies with each toServices reference turned into the backends it selects,
    and a not-analysed note for each Service whose backends the manifests cannot tell."""
    if not any(r.services for p in policies for s in p.specs for r in s.rules):
        return list(policies)
    known = tuple(services)
    out: list[CiliumPolicy] = []
    for policy in policies:
        notes: list[str] = []
        specs = tuple(
            replace(spec, rules=tuple(_resolved(policy, r, known, notes) for r in spec.rules))
            for spec in policy.specs
        )
        out.append(replace(policy, specs=specs, unanalysed=(*policy.unanalysed, *notes)))
    return out


def _resolved(
    policy: CiliumPolicy, rule: CiliumRule, services: Sequence[ServiceModel], notes: list[str]
) -> CiliumRule:
    if not rule.services:
        return rule
    backends: list[CiliumSelector] = []
    where = f"{rule.source.file}:{rule.source.line}: {policy.id} {rule.label}: toServices"
    for ref in rule.services:
        matched = [s for s in services if _names(ref, s)]
        if ref.name is not None and not matched:
            notes.append(
                f"{where}: Service {ref.namespace}/{ref.name} is not in the tree (its backends "
                "are unknown)"
            )
        for svc in matched:
            if svc.selector is None:
                notes.append(
                    f"{where}: Service {svc.namespace}/{svc.name} ({svc.source.file}:"
                    f"{svc.source.line}) has no selector: its endpoints are not in the manifests"
                )
                continue
            ns = LabelRequirement(NAMESPACE_NAME_LABEL, "In", (svc.namespace,))
            backends.append(
                CiliumSelector(
                    LabelSelector(svc.selector),
                    LabelSelector((), (ns,)),
                    text=f"Service {svc.namespace}/{svc.name}",
                )
            )
    return replace(rule, backends=tuple(dict.fromkeys(backends)))


def _names(ref: CiliumServiceRef, svc: ServiceModel) -> bool:
    if ref.namespace is not None and ref.namespace != svc.namespace:
        return False
    if ref.name is not None:
        return ref.name == svc.name
    return ref.selector is not None and ref.selector.matches(dict(svc.labels))
