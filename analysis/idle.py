"""Changed policies that select no workload of their tree: their change cannot be evaluated.

A policy whose selector matches no pod in the tree changes no path here, so a diff of
access says nothing about it; yet it may select pods the tree does not hold (an operator's,
another repository's), and there its change is real. Such a change must not pass as
"unchanged": it is reported by name, file and line (docs/semantics.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from analysis.ciliummodel import CiliumPolicy
from analysis.model import AdminPolicy, NetworkPolicy, Source, Tree

REASON = "selects no workload in this tree: its change could not be evaluated"


@dataclass(frozen=True, slots=True)
class IdlePolicy:
    policy: str  # the policy's id: "shop/NetworkPolicy/db", "AdminNetworkPolicy/x"
    source: Source
    tree: str  # "head" (added, changed) or "base" (removed)
    status: str  # added | changed | removed
    environment: str = ""
    namespace: str = ""  # a NetworkPolicy's; "" for cluster-scoped (admin) policies

    def message(self) -> str:
        env = f"{self.environment}: " if self.environment else ""
        where = "base " if self.tree == "base" else ""
        return f"{env}{self.policy} ({where}{self.source}, {self.status}) {REASON}"

    def to_json(self) -> dict[str, object]:
        return {
            "policy": self.policy,
            "file": self.source.file,
            "line": self.source.line,
            "tree": self.tree,
            "status": self.status,
            "environment": self.environment,
            "reason": REASON,
        }


Policy = NetworkPolicy | AdminPolicy | CiliumPolicy


def idle_changed_policies(base: Tree, head: Tree, environment: str = "") -> tuple[IdlePolicy, ...]:
    """The policies the change adds, changes (in meaning, not only in lines) or removes
    that select no workload of the tree they are in (the head; the base for removed ones)."""
    before = _by_id(base)
    after = _by_id(head)
    out: list[IdlePolicy] = []
    head_labels: dict[str, dict[str, str]] | None = None
    for key, policy in after.items():
        old = before.get(key)
        if old is not None and (old is policy or old == policy or _same_meaning(old, policy)):
            continue
        if head_labels is None:
            head_labels = head.namespace_labels()
        if not _selects_any(policy, head, head_labels):
            status = "added" if old is None else "changed"
            out.append(
                IdlePolicy(key, policy.source, "head", status, environment, _namespace(policy))
            )
    removed = [(key, p) for key, p in before.items() if key not in after]
    base_labels = base.namespace_labels() if removed else {}
    for key, policy in removed:
        if not _selects_any(policy, base, base_labels):
            out.append(
                IdlePolicy(key, policy.source, "base", "removed", environment, _namespace(policy))
            )
    return tuple(out)


def _namespace(policy: Policy) -> str:
    return policy.namespace if isinstance(policy, NetworkPolicy | CiliumPolicy) else ""


def _by_id(tree: Tree) -> dict[str, Policy]:
    out: dict[str, Policy] = {p.id: p for p in tree.policies}
    out.update((a.id, a) for a in tree.admin_policies)
    out.update((c.id, c) for c in tree.cilium_policies)
    return out


def _selects_any(policy: Policy, tree: Tree, ns_labels: Mapping[str, dict[str, str]]) -> bool:
    # Host-network pods share the node's network: no policy selects them.
    if isinstance(policy, NetworkPolicy):
        return any(
            w.namespace == policy.namespace
            and not w.host_network
            and policy.pod_selector.matches(dict(w.labels))
            for w in tree.workloads
        )
    if isinstance(policy, CiliumPolicy):
        # A spec's endpoint selector, as translated (analysis.ciliummodel): on the pod's
        # labels and on its namespace's (the policy's own namespace for the namespaced kind).
        return any(
            not w.host_network
            and not spec.subject.never
            and spec.subject.pods.matches(dict(w.labels))
            and spec.subject.namespaces.matches(ns_labels.get(w.namespace, {}))
            for spec in policy.specs
            for w in tree.workloads
        )
    return any(
        not w.host_network
        and policy.subject_namespaces.matches(ns_labels.get(w.namespace, {}))
        and (policy.subject_pods is None or policy.subject_pods.matches(dict(w.labels)))
        for w in tree.workloads
    )


def _same_meaning(a: Policy, b: Policy) -> bool:
    return bool(_meaning(a) == _meaning(b))


def _meaning(value: Any) -> Any:
    """The value without its sources (file and line): a policy moved, or re-read by the
    other parser, means the same."""
    if isinstance(value, Source):
        return None
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (
            type(value).__name__,
            tuple(_meaning(getattr(value, f.name)) for f in dataclasses.fields(value) if f.compare),
        )
    if isinstance(value, tuple | list):
        return tuple(_meaning(v) for v in value)
    if isinstance(value, frozenset):
        return frozenset(_meaning(v) for v in value)
    return value
