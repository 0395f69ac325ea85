"""The brute-force reference for a partial tree: the tree plus concrete pods it does not
define, in namespaces it defines and in namespaces it does not (``cluster_scope: partial``).

Like tests/reference.py it shares no code with ``analysis/``. A pod of a namespace the tree
does not define is under policies the tree does not hold: its own direction (egress for a
source, ingress for a destination) is decided by the tree's AdminNetworkPolicies alone (a
matching Allow or Deny), and is otherwise allowed, since its NetworkPolicies, and so
whether the baseline applies to it, are unknown (docs/semantics.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from tests.reference import Endpoint, Obj, RefRange, RefWorkload
from tests.reference_admin import TieredCluster


class OutsideCluster(TieredCluster):
    """The tree's objects plus concrete Namespace and Pod objects; ``unknown`` names the
    namespaces whose policies are unknown (those the tree does not define)."""

    def __init__(
        self,
        objects: Iterable[Obj],
        unknown: Iterable[str],
        ranges: Sequence[RefRange] | None = None,
    ) -> None:
        super().__init__(objects, ranges)
        self.unknown = frozenset(unknown)

    def _tiered(
        self,
        field: str,
        subject: Endpoint,
        peer: Endpoint,
        protocol: str,
        port: int,
        dst: Endpoint,
        network_policy: bool,
    ) -> bool:
        if isinstance(subject, RefWorkload) and subject.namespace in self.unknown:
            action = self._first_match(self.anps, field, subject, peer, protocol, port, dst)
            return action != "Deny"
        return super()._tiered(field, subject, peer, protocol, port, dst, network_policy)


def concrete_pod(namespace: str, name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {"containers": [{"name": "c", "image": "x"}]},
    }


def concrete_namespace(name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": dict(labels)},
    }
