"""What Calico's selectors see on a pod, and what a policy's or rule's selector fields
become once libcalico-go has converted them for Felix (libcalico-go/lib/backend/
syncersv1/updateprocessors: networkpolicyprocessor.go, globalnetworkpolicyprocessor.go,
rules.go; libcalico-go/lib/backend/k8s/conversion: ServiceAccountToProfile; Apache-2.0).

Service accounts: a pod carries ``projectcalico.org/serviceaccount: <its account>``, and
inherits from its account's profile the account's labels prefixed ``pcsa.`` with
``pcsa.projectcalico.org/name``. ``serviceAccountSelector`` and a rule's
``serviceAccounts.selector`` are read over those prefixed labels, ``serviceAccounts.names``
over the account label. The labels come from the tree's ServiceAccount manifests; a pod
running as an account the tree does not define (other than ``default``, which Kubernetes'
ServiceAccount controller creates without labels in every namespace) has unknown account
labels: reachdiff takes them as none, and a selector over account labels that is tested on
such a pod is reported not analysed (``account_notes``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

from analysis import calicoselector as cs
from analysis.calicomodel import (
    CalicoEntity,
    CalicoObjects,
    CalicoPolicy,
    CalicoServiceAccount,
)
from analysis.calicotree import CalicoTree
from analysis.matcher import PodClass
from analysis.model import NAMESPACE_NAME_LABEL, Labels, Source, Workload, labels_of
from analysis.validation import v1_object
from analysis.yamldoc import YMap, line_of

Accounts = Mapping[tuple[str, str], Mapping[str, str]]
_INHERITED = (cs.NAMESPACE_PREFIX, cs.SERVICE_ACCOUNT_PREFIX)


def service_account_model(path: str, obj: YMap) -> CalicoServiceAccount | None:
    """The v1 ServiceAccount ``obj`` is (None for any other object)."""
    read = v1_object(obj, "ServiceAccount")
    if read is None:
        return None
    namespace, name, labels = read
    return CalicoServiceAccount(namespace, name, labels_of(labels), Source(path, line_of(obj, 1)))


def account_map(objects: CalicoObjects) -> dict[tuple[str, str], dict[str, str]]:
    return {(a.namespace, a.name): dict(a.labels) for a in objects.service_accounts}


def account_labels(
    namespace: str, account: str, accounts: Accounts, unknown: Labels = ()
) -> dict[str, str]:
    """The labels a pod inherits from its service account's profile: the tree's account's,
    else ``unknown`` (a representative's: analysis.outside)."""
    own = accounts.get((namespace, account))
    if own is None:
        own = dict(unknown)
    labels = {f"{cs.SERVICE_ACCOUNT_PREFIX}{k}": v for k, v in own.items()}
    labels[cs.SERVICE_ACCOUNT_PREFIX + cs.LABEL_NAME] = account
    return labels


def endpoint_labels(
    pod_class: PodClass, ns_labels: Mapping[str, str], accounts: Accounts | None = None
) -> dict[str, str]:
    """The labels Calico's selectors see on a pod of this class: its own (but those with
    the ``pcns.``/``pcsa.`` prefixes, which libcalico-go strips so that a pod cannot pose
    as another namespace or account), its namespace, orchestrator and account, and the
    labels it inherits from its namespace and service account."""
    labels = {f"{cs.NAMESPACE_PREFIX}{k}": v for k, v in ns_labels.items()}
    # A namespace's name is its name label: the API server sets it to the name, and a
    # representative namespace (analysis.outside) carries the name of those it stands for.
    namespace = ns_labels.get(NAMESPACE_NAME_LABEL, pod_class.namespace)
    labels[cs.NAMESPACE_PREFIX + cs.LABEL_NAME] = namespace
    account = pod_class.service_account
    labels.update(
        account_labels(pod_class.namespace, account, accounts or {}, pod_class.account_labels)
    )
    labels.update((k, v) for k, v in pod_class.labels if not k.startswith(_INHERITED))
    labels[cs.LABEL_NAMESPACE] = namespace
    labels[cs.LABEL_ORCHESTRATOR] = "k8s"
    labels[cs.LABEL_SERVICE_ACCOUNT] = account
    return labels


def policy_selector(policy: CalicoPolicy) -> cs.Node:
    """The selector Felix gets for the policy's endpoints."""
    parts = [policy.selector]
    if policy.namespace:
        parts.append(cs.Compare("==", cs.LABEL_NAMESPACE, policy.namespace))
    if policy.namespace_selector is not None:
        parts.append(cs.for_namespaces(policy.namespace_selector))
    if policy.service_account_selector is not None:
        # (A GlobalNetworkPolicy's all() then becomes has(projectcalico.org/serviceaccount),
        # which every pod has: no difference for the endpoints of the map.)
        parts.append(cs.prefixed(policy.service_account_selector, cs.SERVICE_ACCOUNT_PREFIX))
    return cs.conjunction(parts)


def entity_selector(entity: CalicoEntity, namespace: str) -> cs.Node | None:
    """The entity's positive selector, scoped as libcalico-go scopes it (None: no
    selector constraint): the namespace scope and-ed with serviceAccounts and selector."""
    scope: cs.Node | None = None
    if entity.namespace_selector is not None:
        scope = cs.for_namespaces(entity.namespace_selector)
    elif namespace:
        scope = cs.Compare("==", cs.LABEL_NAMESPACE, namespace)
    positive = [n for n in (entity.accounts, entity.selector) if n is not None]
    if scope is not None and entity.selects:
        return cs.conjunction([scope, *positive])
    return cs.conjunction(positive) if positive else None


# --- accounts the tree does not define ----------------------------------------------------


def with_accounts(
    tree: CalicoTree,
    accounts: Iterable[CalicoServiceAccount],
    workloads: Sequence[Workload],
    ns_labels: Mapping[str, Mapping[str, str]],
) -> CalicoTree:
    """The tree's Calico objects with its ServiceAccounts, and a not-analysed note for
    each selector over account labels tested on a pod whose account is not in the tree."""
    ordered = tuple(sorted(accounts, key=lambda a: (a.namespace, a.name)))
    objects = replace(tree.objects, service_accounts=ordered)
    notes = account_notes(objects, workloads, ns_labels)
    return replace(tree, objects=objects, unanalysed=tree.unanalysed + notes)


def account_notes(
    objects: CalicoObjects,
    workloads: Sequence[Workload],
    ns_labels: Mapping[str, Mapping[str, str]],
) -> tuple[str, ...]:
    known = account_map(objects)
    unknown: dict[tuple[str, str], list[dict[str, str]]] = {}
    for w in workloads:
        key = (w.namespace, w.service_account)
        if w.host_network or w.service_account == "default" or key in known:
            continue
        labels = endpoint_labels(PodClass.of(w), ns_labels.get(w.namespace, {}), known)
        unknown.setdefault(key, []).append(labels)
    if not unknown:
        return ()
    out: list[str] = []
    for policy in objects.policies:
        if policy.host_only:
            continue
        own = policy_selector(replace(policy, service_account_selector=cs.All()))
        if _reads_labels(policy.service_account_selector):
            where = f"{policy.source}: {policy.id}: `serviceAccountSelector`"
            out.extend(_notes(where, own, None, unknown))
        for rule in policy.ingress + policy.egress:
            if rule.direction not in policy.types:
                continue
            for side, entity in (("source", rule.src), ("destination", rule.dst)):
                if not _reads_labels(entity.account_selector):
                    continue
                rest = entity_selector(replace(entity, account_selector=cs.All()), policy.namespace)
                where = (
                    f"{rule.source}: {policy.id} {rule.label}: `{side}.serviceAccounts.selector`"
                )
                out.extend(_notes(where, rest, own if entity is rule.own else None, unknown))
    return tuple(out)


def _notes(
    where: str,
    scope: cs.Node | None,
    policy: cs.Node | None,
    unknown: Mapping[tuple[str, str], list[dict[str, str]]],
) -> list[str]:
    out = []
    for (namespace, account), pods in unknown.items():
        if any(
            (scope is None or cs.matches(scope, labels))
            and (policy is None or cs.matches(policy, labels))
            for labels in pods
        ):
            out.append(
                f"{where} reads the labels of ServiceAccount {namespace}/{account}, which pods "
                "run as but the tree does not define: its labels are taken as none. Add the "
                "ServiceAccount to the tree"
            )
    return out


def _reads_labels(node: cs.Node | None) -> bool:
    if isinstance(node, cs.Has | cs.Compare | cs.InSet):
        return True
    if isinstance(node, cs.Not):
        return _reads_labels(node.operand)
    if isinstance(node, cs.And | cs.Or):
        return any(_reads_labels(o) for o in node.operands)
    return False
