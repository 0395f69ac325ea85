"""Calico rules' ``services``: a Kubernetes Service's endpoints, from its manifest.

A rule's ``source.services`` (ingress) or ``destination.services`` (egress) names one
Service (its namespace defaults to a NetworkPolicy's own). Felix matches the addresses of
the Service's EndpointSlices, and as a destination only each endpoint's port
(felix/calc/rule_scanner.go: an IP-port set for a destination Service, an IP set for a
source one). The EndpointSlice controller fills them from the Service's ``selector``: the
pods it selects in the Service's namespace, on each port's ``targetPort`` (a number, or
the container port of that name and protocol on each pod). A Service without a selector
has endpoints set by hand or by a controller, which the manifests do not show; so has one
the tree does not define: the rule is reported *not analysed* (name, file and line) and
matches nothing. The Services are read as for Cilium's toServices
(``analysis.ciliumservices.service_model``).

Source: projectcalico/calico libcalico-go/lib/backend/syncersv1/updateprocessors/rules.go,
felix/calc/rule_scanner.go, api/pkg/apis/projectcalico/v3/policy_common.go (Apache-2.0);
docs.tigera.io, *Use service rules in policy*. Facts only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from analysis.calicomodel import CalicoBackends, CalicoEntity, CalicoPolicy, CalicoRule
from analysis.calicotree import CalicoTree
from analysis.ciliumservices import ServiceModel


def resolve_calico_services(tree: CalicoTree, services: Sequence[ServiceModel]) -> CalicoTree:
    """The tree with each rule's ``services`` resolved into the Service's endpoints, and
    a not-analysed note for each Service whose endpoints the manifests cannot tell."""
    policies = tree.objects.policies
    if not any(e.services for p in policies for r in p.ingress + p.egress for e in (r.src, r.dst)):
        return tree
    known: dict[tuple[str, str], ServiceModel] = {}
    for svc in services:
        known.setdefault((svc.namespace, svc.name), svc)
    notes: list[str] = []
    resolved = tuple(_policy(p, known, notes) for p in policies)
    objects = replace(tree.objects, policies=resolved)
    return replace(tree, objects=objects, unanalysed=tree.unanalysed + tuple(notes))


def _policy(
    policy: CalicoPolicy, known: dict[tuple[str, str], ServiceModel], notes: list[str]
) -> CalicoPolicy:
    def rules(found: tuple[CalicoRule, ...]) -> tuple[CalicoRule, ...]:
        return tuple(_rule(policy, r, known, notes) for r in found)

    return replace(policy, ingress=rules(policy.ingress), egress=rules(policy.egress))


def _rule(
    policy: CalicoPolicy,
    rule: CalicoRule,
    known: dict[tuple[str, str], ServiceModel],
    notes: list[str],
) -> CalicoRule:
    src = _entity(policy, rule, rule.src, "source", known, notes)
    dst = _entity(policy, rule, rule.dst, "destination", known, notes)
    return rule if (src, dst) == (rule.src, rule.dst) else replace(rule, src=src, dst=dst)


def _entity(
    policy: CalicoPolicy,
    rule: CalicoRule,
    entity: CalicoEntity,
    side: str,
    known: dict[tuple[str, str], ServiceModel],
    notes: list[str],
) -> CalicoEntity:
    if entity.service is None:
        return entity
    namespace = entity.service[0] or policy.namespace
    name = entity.service[1]
    svc = known.get((namespace, name))
    where = f"{rule.source}: {policy.id} {rule.label}: `{side}.services`"
    counted = rule.direction in policy.types  # rules of other directions are ignored
    if svc is None:
        if counted:
            notes.append(
                f"{where}: Service {namespace}/{name} is not in the tree (its endpoints are "
                "unknown): the rule is evaluated as matching nothing"
            )
        return replace(entity, service=(namespace, name))
    if svc.selector is None:
        if counted:
            notes.append(
                f"{where}: Service {namespace}/{name} ({svc.source.file}:{svc.source.line}) "
                "has no selector: its endpoints are not in the manifests, and the rule is "
                "evaluated as matching nothing"
            )
        return replace(entity, service=(namespace, name))
    backends = CalicoBackends(namespace, svc.selector, svc.ports)
    return replace(entity, service=(namespace, name), backends=backends)
