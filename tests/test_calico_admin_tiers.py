"""Calico policies placed in the tiers Calico (3.30 and later) gives Kubernetes' admin
policies: `kube-admin` holds AdminNetworkPolicies and Admin-tier ClusterNetworkPolicies
with their `priority` as Calico's `order`, and Calico's own NetworkPolicies and
GlobalNetworkPolicies may be added to it (docs.tigera.io, "Get started with policy tiers",
kube-admin tier); so they interleave by order. Likewise `kube-baseline`."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from analysis.manifests import load_files
from analysis.reachability import compute_map
from analysis.report import map_to_json
from tests.reference import cluster_map
from tests.reference_calico import CalicoCluster

EVERYTHING = {"TCP": "all", "UDP": "all", "SCTP": "all"}


def _objects(tier: str, calico_order: int, admin_priority: int) -> list[dict[str, Any]]:
    admin_kind = "AdminNetworkPolicy" if tier == "kube-admin" else "ClusterNetworkPolicy"
    admin: dict[str, Any] = {
        "apiVersion": "policy.networking.k8s.io/v1alpha1",
        "kind": "AdminNetworkPolicy",
        "metadata": {"name": "allow-dev"},
        "spec": {
            "priority": admin_priority,
            "subject": {"namespaces": {}},
            "ingress": [
                {"action": "Allow", "from": [{"namespaces": {"matchLabels": {"team": "dev"}}}]}
            ],
        },
    }
    if admin_kind == "ClusterNetworkPolicy":
        admin = {
            "apiVersion": "policy.networking.k8s.io/v1alpha2",
            "kind": "ClusterNetworkPolicy",
            "metadata": {"name": "allow-dev"},
            "spec": {
                "tier": "Baseline",
                "priority": admin_priority,
                "subject": {"namespaces": {}},
                "ingress": [
                    {
                        "name": "dev",
                        "action": "Accept",
                        "from": [{"namespaces": {"matchLabels": {"team": "dev"}}}],
                    }
                ],
            },
        }
    return [
        {
            "apiVersion": "projectcalico.org/v3",
            "kind": "GlobalNetworkPolicy",
            "metadata": {"name": "deny-dev"},
            "spec": {
                "tier": tier,
                "order": calico_order,
                "selector": "all()",
                "ingress": [{"action": "Deny", "source": {"namespaceSelector": "team == 'dev'"}}],
            },
        },
        admin,
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "dev", "labels": {"team": "dev"}},
        },
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "prod"}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a", "namespace": "dev"}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "b", "namespace": "prod"}},
    ]


@pytest.mark.parametrize("tier", ["kube-admin", "kube-baseline"])
@pytest.mark.parametrize(
    ("calico_order", "admin_priority", "allowed"), [(5, 3, True), (3, 5, False)]
)
def test_calico_policies_interleave_with_admin_policies_by_order(
    tier: str, calico_order: int, admin_priority: int, allowed: bool
) -> None:
    objects = _objects(tier, calico_order, admin_priority)
    tree = load_files({"m.yaml": yaml.safe_dump_all(objects, sort_keys=False)})
    engine = map_to_json(compute_map(tree))
    pairs = {(c["src"], c["dst"]): c["allowed"] for c in engine["connections"]}
    # The one that comes first in the tier decides dev -> prod.
    assert pairs.get(("dev/Pod/a", "prod/Pod/b")) == (EVERYTHING if allowed else None)
    assert engine["connections"] == cluster_map(CalicoCluster(objects))["connections"]


@pytest.mark.parametrize("tier", ["kube-admin", "kube-baseline"])
@pytest.mark.parametrize(
    ("calico_name", "admin_name", "namespaced", "allowed"),
    [
        # Felix's policy sorter (felix/calc/policy_sorter.go PolKVLess): equal orders are
        # ordered by the string "name/namespace/kind", the kind as libcalico-go keys it
        # (KubernetesAdminNetworkPolicy, KubernetesClusterNetworkPolicy, ...).
        ("deny-dev", "allow-dev", False, True),  # "allow-dev//…" first
        ("a-deny", "allow-dev", False, False),  # "a-deny//…" first
        ("x", "x", False, False),  # "x//GlobalNetworkPolicy" < "x//Kubernetes…"
        ("x", "x", True, True),  # "x//Kubernetes…" < "x/prod/NetworkPolicy"
    ],
)
def test_equal_orders_follow_felixs_policy_sorter(
    tier: str, calico_name: str, admin_name: str, namespaced: bool, allowed: bool
) -> None:
    objects = _objects(tier, 5, 5)
    calico, admin = objects[0], objects[1]
    calico["metadata"]["name"] = calico_name
    admin["metadata"]["name"] = admin_name
    if namespaced:
        calico["kind"] = "NetworkPolicy"
        calico["metadata"]["namespace"] = "prod"
    tree = load_files({"m.yaml": yaml.safe_dump_all(objects, sort_keys=False)})
    engine = map_to_json(compute_map(tree))
    pairs = {(c["src"], c["dst"]): c["allowed"] for c in engine["connections"]}
    assert pairs.get(("dev/Pod/a", "prod/Pod/b")) == (EVERYTHING if allowed else None)
    assert engine["connections"] == cluster_map(CalicoCluster(objects))["connections"]
