"""Which policies other than a namespace's own NetworkPolicies are a default-deny for it
(``reachdiff lint``'s ``no-default-deny-*`` rules): written once for all namespaces by the
platform, or in another policy language the tree holds.

- an AdminNetworkPolicy, BaselineAdminNetworkPolicy or ClusterNetworkPolicy whose subject
  is every pod of the namespace and that denies every namespace on every port;
- a Calico NetworkPolicy of the namespace, or a GlobalNetworkPolicy whose namespaceSelector
  (if any) matches it, selecting every endpoint (``all()``, or no selector), of that
  direction's type, in a tier whose default action is Deny, with no Allow or Pass rule:
  whatever earlier tiers do not allow ends at its tier's default deny (Log and Deny
  rules do not change that). Policies reachdiff does not evaluate (host endpoints only,
  service-account selectors) do not count.
- a CiliumNetworkPolicy of the namespace, or a CiliumClusterwideNetworkPolicy, with a spec
  whose endpointSelector selects every pod of the namespace (``{}``, or only the
  namespace's name or labels) and that puts that direction in default deny: it has a rule
  of the direction (``ingress: [{}]``, allow or deny rules) and ``enableDefaultDeny`` does
  not turn it off (``ingress: []`` alone isolates nothing).
"""

from __future__ import annotations

from analysis import calicoselector as cs
from analysis.calicomodel import CalicoPolicy
from analysis.ciliummodel import CNP
from analysis.model import NAMESPACE_NAME_LABEL, AdminAction, Direction, Tree

_ALLOWING = ("Allow", "Pass")


def denies_all(tree: Tree, namespace: str, direction: Direction) -> bool:
    """Whether a cluster-wide or Calico policy is a default-deny of ``namespace``."""
    return (
        _admin_denies_all(tree, namespace, direction)
        or _calico_denies_all(tree, namespace, direction)
        or _cilium_denies_all(tree, namespace, direction)
    )


def _cilium_denies_all(tree: Tree, namespace: str, direction: Direction) -> bool:
    labels = {NAMESPACE_NAME_LABEL: namespace, **tree.namespace_labels().get(namespace, {})}
    for policy in tree.cilium_policies:
        if policy.kind == CNP and policy.namespace != namespace:
            continue
        for spec in policy.specs:
            sel = spec.subject
            if (
                direction in spec.default_deny
                and not sel.never
                and not sel.accounts
                and sel.pods.is_empty()
                and sel.namespaces.matches(labels)
            ):
                return True
    return False


def _admin_denies_all(tree: Tree, namespace: str, direction: Direction) -> bool:
    labels = dict(tree.namespace_labels().get(namespace, {}))
    for policy in tree.admin_policies:
        if not policy.subject_namespaces.matches(labels):
            continue
        if policy.subject_pods is not None and not policy.subject_pods.is_empty():
            continue
        for rule in policy.rules(direction):
            if (
                rule.action is AdminAction.DENY
                and rule.ports is None
                and any(
                    peer.kind == "namespaces"
                    and peer.namespace_selector is not None
                    and peer.namespace_selector.is_empty()
                    for peer in rule.peers
                )
            ):
                return True
    return False


def _calico_denies_all(tree: Tree, namespace: str, direction: Direction) -> bool:
    calico = tree.calico
    if not calico:
        return False
    denying_tiers = {t.name for t in calico.tiers if t.default_action == "Deny"}
    ns_labels = {
        f"{cs.NAMESPACE_PREFIX}{k}": v
        for k, v in tree.namespace_labels().get(namespace, {}).items()
    }
    ns_labels[cs.NAMESPACE_PREFIX + cs.LABEL_NAME] = namespace
    ns_labels[cs.LABEL_NAMESPACE] = namespace
    return any(
        _selects_the_namespace(p, namespace, ns_labels)
        and p.tier in denying_tiers
        and direction in p.types
        and not any(r.action in _ALLOWING for r in p.rules(direction))
        for p in calico.policies
    )


def _selects_the_namespace(policy: CalicoPolicy, namespace: str, ns_labels: dict[str, str]) -> bool:
    """Whether the policy selects every pod of ``namespace``."""
    if policy.host_only or policy.service_account_selector is not None:
        return False
    if not isinstance(policy.selector, cs.All):
        return False
    if policy.namespace:
        return policy.namespace == namespace
    selector = policy.namespace_selector
    return selector is None or cs.matches(cs.for_namespaces(selector), ns_labels)
