"""Regression cases of Calico diffs (causes that came out empty, a network set the
reference misread), each the shrunk form of a falsifying example of
``tests/test_properties_calico.py::test_calico_diff_matches_reference``."""

from __future__ import annotations

from typing import Any

import yaml

from analysis.diff import diff_trees
from analysis.manifests import load_files
from analysis.reachability import compute_map
from analysis.report import diff_to_json, map_to_json
from tests.reference import cluster_map
from tests.reference_calico import CalicoCluster

JOB = {
    "apiVersion": "batch/v1",
    "kind": "Job",
    "metadata": {"name": "db", "namespace": "beta"},
    "spec": {"template": {}},
}


def _diff(base: list[dict[str, Any]], head: list[dict[str, Any]]) -> dict[str, Any]:
    def files(objects: list[dict[str, Any]]) -> dict[str, str]:
        return {"m.yaml": yaml.safe_dump_all(objects, sort_keys=False)}

    return diff_to_json(diff_trees(load_files(files(base)), load_files(files(head))))


def _causes(row: dict[str, Any]) -> set[tuple[str, str, str, str, str]]:
    return {(c["policy"], c["rule"], c["tree"], c["reason"], c["action"]) for c in row["because"]}


def test_a_pass_replaced_by_a_tier_end_names_both() -> None:
    """The base's global policy passes every ingress of the default tier on to the profile
    (which allows it); the head drops it and adds a namespaced policy of the same tier
    without rules: the tier's end now denies. The tier applied in the base too, which made
    the engine cite nothing (neither the new isolation nor the pass that went)."""
    passing = {
        "apiVersion": "projectcalico.org/v3",
        "kind": "GlobalNetworkPolicy",
        "metadata": {"name": "c2"},
        "spec": {"ingress": [{"action": "Pass"}]},
    }
    isolating = {
        "apiVersion": "projectcalico.org/v3",
        "kind": "NetworkPolicy",
        "metadata": {"name": "c0", "namespace": "beta"},
    }
    doc = _diff([JOB, passing], [JOB, isolating])
    assert not doc["opened"]
    rows = {(r["src"], r["dst"]): r for r in doc["closed"]}
    assert set(rows) == {
        ("beta/Job/db", "beta/Job/db"),
        ("ip:0.0.0.0/0", "beta/Job/db"),
        ("ip:::/0", "beta/Job/db"),
    }
    for row in rows.values():
        assert row["allowed"] == {"TCP": "all", "UDP": "all", "SCTP": "all"}
        assert _causes(row) == {
            ("beta/NetworkPolicy.projectcalico.org/c0", "", "head", "isolates", "Deny"),
            ("GlobalNetworkPolicy/c2", "ingress[0]", "base", "no longer passes", "Pass"),
        }
        [isolates] = [c for c in row["because"] if c["reason"] == "isolates"]
        assert isolates["tier"] == "Calico tier default (order 1000000)"


def test_a_rule_change_in_a_tier_that_still_applies_cites_the_rule_only() -> None:
    """The same policy still selects the pod in the head; its Pass rule no longer matches
    UDP. The tier's end was there before: the rule is the cause, not a new isolation."""

    def policy(protocol: str) -> dict[str, Any]:
        return {
            "apiVersion": "projectcalico.org/v3",
            "kind": "GlobalNetworkPolicy",
            "metadata": {"name": "c2"},
            "spec": {"ingress": [{"action": "Pass", "protocol": protocol}]},
        }

    doc = _diff([JOB, policy("UDP")], [JOB, policy("TCP")])
    closed = {(r["src"], r["dst"]): r for r in doc["closed"]}
    row = closed[("beta/Job/db", "beta/Job/db")]
    assert row["allowed"] == {"UDP": "all"}
    assert _causes(row) == {
        ("GlobalNetworkPolicy/c2", "ingress[0]", "base", "no longer passes", "Pass")
    }
    opened = {(r["src"], r["dst"]): r for r in doc["opened"]}
    row = opened[("beta/Job/db", "beta/Job/db")]
    assert row["allowed"] == {"TCP": "all"}
    assert _causes(row) == {("GlobalNetworkPolicy/c2", "ingress[0]", "head", "passes", "Pass")}


def test_a_negated_namespace_selector_matches_a_global_network_set() -> None:
    """libcalico-go prefixes a rule's namespaceSelector with `pcns.` and tests it on the
    peer's labels (``updateprocessors/rules.go``, ``getEndpointSelector``); a
    GlobalNetworkSet carries no `pcns.` label, so `!has(team)` matches it and its range is
    passed on to the profile, which allows it. (The reference used to require a namespace.)"""
    objects: list[dict[str, Any]] = [
        {
            "apiVersion": "crd.projectcalico.org/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "c0", "namespace": "beta"},
            "spec": {
                "ingress": [{"action": "Pass", "source": {"namespaceSelector": "!has(team)"}}]
            },
        },
        {
            "apiVersion": "projectcalico.org/v3",
            "kind": "GlobalNetworkSet",
            "metadata": {"name": "set1"},
            "spec": {"nets": ["10.0.0.0/8"]},
        },
        {
            "apiVersion": "v1",
            "kind": "ReplicationController",
            "metadata": {"name": "db", "namespace": "beta"},
            "spec": {"template": {}},
        },
    ]
    engine = map_to_json(compute_map(load_files({"m.yaml": yaml.safe_dump_all(objects)})))
    into_db = {
        c["src"]: c["allowed"]
        for c in engine["connections"]
        if c["dst"] == "beta/ReplicationController/db"
    }
    everything = {"TCP": "all", "UDP": "all", "SCTP": "all"}
    # The set's range passes, and so does the pod itself (its namespace has no `team`
    # label); other ranges reach the tier's end (Deny).
    assert into_db["ip:10.0.0.0/8"] == everything
    assert into_db["beta/ReplicationController/db"] == everything
    assert not any(src.startswith("ip:") and src != "ip:10.0.0.0/8" for src in into_db)
    expected = cluster_map(CalicoCluster(objects))
    assert engine["connections"] == expected["connections"]
