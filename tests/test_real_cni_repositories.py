"""Cilium and Calico changes of real repositories, reviewed as reachdiff reviews them
(docs/real-repositories.md, session of 2026-12-03).

The trees are in tests/fixtures/real-cni (its README names each repository, path and
commit). Each test states what Cilium or Calico enforces before and after the change, path
by path, under both cluster scopes; the complete scope is also checked against the
brute-force references.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from analysis.diff import PathChange, diff_trees
from analysis.manifests import load_files
from analysis.model import Tree
from analysis.outside import ClusterScope
from analysis.reachability import compute_map
from analysis.report import map_to_json
from tests.filetrees import read_tree
from tests.reference_calico import calico_reference_map
from tests.reference_cilium import cilium_reference_map

FIXTURES = Path(__file__).parent / "fixtures" / "real-cni"


def _tree(case: str, side: str) -> Tree:
    return load_files(read_tree(FIXTURES / case / side))


def _changes(paths: tuple[PathChange, ...]) -> dict[tuple[str, str], str]:
    return {(p.src.id, p.dst.id): str(p.delta) for p in paths}


def _pairs(rows: list[dict[str, object]]) -> dict[tuple[str, str], object]:
    """Each allowed (source id, destination id) of a map's JSON rows, with what it allows."""
    return {(str(r["src"]), str(r["dst"])): r["allowed"] for r in rows if r["allowed"]}


def _objects(*where: str) -> list[dict[str, object]]:
    """The documents of the fixture tree at ``FIXTURES/where``, for the references."""
    return [
        doc
        for text in read_tree(FIXTURES.joinpath(*where)).values()
        for doc in yaml.safe_load_all(text)
        if doc
    ]


@pytest.mark.parametrize("side", ["base", "head"])
def test_keycloak_maps_as_the_cilium_reference_does(side: str) -> None:
    engine = map_to_json(compute_map(_tree("keycloak-namespace", side)))
    reference = cilium_reference_map(_objects("keycloak-namespace", side))
    assert _pairs(engine["connections"]) == _pairs(reference["connections"])


def test_a_cross_namespace_from_endpoints_fix_opens_the_controllers_namespace() -> None:
    """ytkcore/meta-iac-x4 c2558375: without `k8s:io.kubernetes.pod.namespace`, a
    namespaced policy's `fromEndpoints` selects pods of its own namespace only, so the
    ingress controllers (in ingress-nginx) timed out; with it, they reach keycloak on TCP
    8080 and pods of keycloak's namespace so labelled no longer do."""
    base, head = _tree("keycloak-namespace", "base"), _tree("keycloak-namespace", "head")
    diff = diff_trees(base, head, ClusterScope.PARTIAL)
    controller = "pod[app.kubernetes.io/instance={},app.kubernetes.io/name=ingress-nginx]"
    public, internal = (
        controller.format("nginx-ingress"),
        controller.format("nginx-ingress-internal"),
    )
    keycloak = "keycloak/Deployment/keycloak"
    opened = {k: v for k, v in _changes(diff.opened).items() if k[1] == keycloak}
    closed = {k: v for k, v in _changes(diff.closed).items() if k[1] == keycloak}
    assert opened == {
        (f"~ns[kubernetes.io/metadata.name=ingress-nginx]/{public}", keycloak): "TCP 8080",
        (f"~ns[kubernetes.io/metadata.name=ingress-nginx]/{internal}", keycloak): "TCP 8080",
    }
    # Pods of keycloak's namespace labelled as a controller (some also app=keycloak, so
    # selected by the policy themselves) lose what the base gave them.
    assert closed == {
        (f"~keycloak/{labels}", keycloak): "TCP 8080"
        for controller_labels in (public, internal)
        for labels in (
            controller_labels,
            controller_labels.replace("pod[", "pod[app=keycloak,"),
        )
    }
    # Every other change is the same pairs towards pods of keycloak's namespace that the
    # tree does not define but the policy selects (labelled app=keycloak).
    assert {src.rsplit("/pod[", 1)[0] for src, _ in _changes(diff.opened)} == {
        "~ns[kubernetes.io/metadata.name=ingress-nginx]"
    }
    assert {src.rsplit("/pod[", 1)[0] for src, _ in _changes(diff.closed)} == {"~keycloak"}
    # The public controller's rule filters requests: the opened path says so.
    [cause] = next(
        p for p in diff.opened if p.src.id.endswith(public) and p.dst.id == keycloak
    ).because
    assert cause.l7 and "/realms/" in cause.l7
    # The tree defines no controller: under a complete scope nothing changes.
    assert not diff_trees(base, head, ClusterScope.COMPLETE).changed


@pytest.mark.parametrize("case", ["yaobank-accounts", "tiers-pass"])
@pytest.mark.parametrize("side", ["base", "head"])
def test_calico_trees_map_as_the_calico_reference_does(case: str, side: str) -> None:
    engine = map_to_json(compute_map(_tree(case, side)))
    reference = calico_reference_map(_objects(case, side))
    assert _pairs(engine["connections"]) == _pairs(reference["connections"])


def test_a_service_account_match_admits_other_pods_than_a_label_match() -> None:
    """tigera/ccol2azure week2: `selector: app == "summary"` replaced by the account
    `summary` (the course's text). Inside the tree the summary pods run as that account and
    carry that label: nothing changes. Outside it, pods running as `summary` without the
    label are newly admitted, and pods labelled so running as another account no longer."""
    base, head = _tree("yaobank-accounts", "base"), _tree("yaobank-accounts", "head")
    assert not diff_trees(base, head, ClusterScope.COMPLETE).changed
    diff = diff_trees(base, head, ClusterScope.PARTIAL)
    customer = "yaobank-customer/Deployment/customer"
    assert _changes(diff.opened) == {
        (customer, "~yaobank-summary/pod[serviceaccount=summary]"): "TCP all",
        (customer, "~ns[ns=summary]/pod[serviceaccount=summary]"): "TCP all",
    }
    # The summary namespace's own policy admits only TCP 80 to pods labelled app=summary;
    # in namespaces outside the tree nothing is known to isolate them.
    assert _changes(diff.closed) == {
        (customer, "~yaobank-summary/pod[app=summary]"): "TCP 80",
        (customer, "~ns[ns=summary]/pod[app=summary]"): "TCP all",
    }


def test_an_allow_turned_pass_hands_pci_pods_to_the_application_tier() -> None:
    """mapgirll/Tigera-LevelUp-Workshop: `security.pci-restrict` allowed PCI pods to each
    other in the security tier; its update passes them on, and the application tier's
    policies decide: checkoutservice keeps TCP 50051 to paymentservice (its egress rule and
    paymentservice's ingress rule), loses every other port; paymentservice (whose policy
    has no egress) loses checkoutservice, whose ingress admits only the frontend; each
    loses itself."""
    base, head = _tree("tiers-pass", "base"), _tree("tiers-pass", "head")
    diff = diff_trees(base, head, ClusterScope.COMPLETE)
    checkout, payment = (
        "hipstershop/Deployment/checkoutservice",
        "hipstershop/Deployment/paymentservice",
    )
    assert diff.opened == ()
    everything = "TCP all; UDP all; SCTP all"
    assert _changes(diff.closed) == {
        (checkout, payment): "TCP 1-50050,50052-65535; UDP all; SCTP all",
        (payment, checkout): everything,
        (checkout, checkout): everything,
        (payment, payment): everything,
    }
    [kept] = [c for c in diff.closed if (c.src.id, c.dst.id) == (checkout, payment)]
    assert str(kept.head) == "TCP 50051"
    # Under a partial scope the same pairs close, and others with the representatives of
    # PCI pods the tree does not define; nothing opens.
    partial = diff_trees(base, head, ClusterScope.PARTIAL)
    assert partial.opened == ()
    assert _changes(diff.closed).items() <= _changes(partial.closed).items()


def test_deny_only_clusterwide_policies_isolate_and_keep_environments_apart() -> None:
    """nickromney/public-cloud-experiments cluster-policies/cilium/dev-uat-isolation.yaml:
    clusterwide policies with only `ingressDeny`/`egressDeny` put the pods they select in
    default deny both ways (so only what the apps' own policies allow passes) and deny the
    other environment even where an app's rule admits it; the node reaches every pod
    (`allow-localhost`)."""
    tree = load_files(read_tree(FIXTURES / "dev-uat-isolation"))
    engine = map_to_json(compute_map(tree))
    reference = cilium_reference_map(_objects("dev-uat-isolation"))
    assert _pairs(engine["connections"]) == _pairs(reference["connections"])
    pods = [f"{env}/Deployment/{name}" for env in ("dev", "uat") for name in ("api", "frontend")]
    between = {k: v for k, v in _pairs(engine["connections"]).items() if k[0] in pods}
    assert between == {
        ("dev/Deployment/frontend", "dev/Deployment/api"): {"TCP": "8080"},
        ("uat/Deployment/frontend", "uat/Deployment/api"): {"TCP": "8080"},
    }
    everything = {"TCP": "all", "UDP": "all", "SCTP": "all"}
    assert {
        dst: allowed
        for (src, dst), allowed in _pairs(engine["connections"]).items()
        if src == "entity:host"
    } == dict.fromkeys(pods, everything)
    # Under a partial scope the pods of dev and uat the tree does not define are isolated
    # alike: nothing but the node reaches them.
    partial = map_to_json(compute_map(tree, scope=ClusterScope.PARTIAL))
    into_outside = {
        src for (src, dst) in _pairs(partial["connections"]) if dst.startswith(("~dev/", "~uat/"))
    }
    assert into_outside == {"entity:host"}
