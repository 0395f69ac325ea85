"""The bot end to end (fake GitHub on loopback) on the CNI kinds and what reachdiff does not
model or cannot evaluate: a Cilium policy is reviewed like a NetworkPolicy (a widening
annotated on its rule's line); an unmodelled kind fails the check with an annotation on its
line unless ``ignore_kinds`` names its kind (the comment then says what was ignored); and a
new policy selecting no workload of the tree fails it too."""

from __future__ import annotations

from tests.botharness import BASE, HEAD, Harness, base_tree, review, setup_pull

CILIUM = b"""\
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: db-from-web
  namespace: shop
spec:
  endpointSelector:
    matchLabels: {app: db}
  ingress:
  - fromEndpoints:
    - matchLabels: {app: web}
"""

AUTHZ = b"""\
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: db-from-web
  namespace: shop
spec:
  selector:
    matchLabels: {app: db}
"""

GHOST = b"""\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: exporter
  namespace: shop
spec:
  podSelector:
    matchLabels: {app: node-exporter}
  ingress:
  - {}
"""


async def test_a_cilium_policy_is_reviewed_and_its_rule_annotated(harness: Harness) -> None:
    # The base isolates db to TCP 5432 from web; the CNP's L3-only rule opens every port.
    setup_pull(harness.fake, base_tree(**{"policies/cilium.yaml": b"# cilium\n" + CILIUM}))
    await review(harness)
    check = harness.check(HEAD)
    assert check["conclusion"] == "failure"
    assert check["output"]["title"].startswith("Widened: 1 path opened")
    [annotation] = check["output"]["annotations"]
    assert (annotation["path"], annotation["start_line"]) == ("policies/cilium.yaml", 11)
    body = harness.sticky()["body"]
    assert "CiliumNetworkPolicy" in body and "policies/cilium.yaml" in body


async def test_an_unmodelled_kind_fails_the_check_naming_its_file_and_line(
    harness: Harness,
) -> None:
    setup_pull(harness.fake, base_tree(**{"policies/authz.yaml": b"# istio\n" + AUTHZ}))
    await review(harness)
    check = harness.check(HEAD)
    assert check["conclusion"] == "failure"
    assert check["output"]["title"] == "Part of the change could not be analysed"
    [annotation] = check["output"]["annotations"]
    assert (annotation["path"], annotation["start_line"]) == ("policies/authz.yaml", 2)
    assert "AuthorizationPolicy shop/db-from-web" in annotation["message"]
    assert "added" in annotation["message"]
    body = harness.sticky()["body"]
    assert "policies/authz.yaml:2" in body and "ignore\\_kinds" in body


async def test_ignore_kinds_from_the_base_lets_the_review_pass_and_says_so(
    harness: Harness,
) -> None:
    settings = {".github/reachdiff.yml": b"ignore_kinds: [AuthorizationPolicy]\n"}
    setup_pull(
        harness.fake,
        base_tree(**settings, **{"policies/authz.yaml": AUTHZ}),
        base_files=base_tree(**settings),
    )
    await review(harness)
    check = harness.check(HEAD)
    assert check["conclusion"] == "success", check["output"]
    assert "ignore\\_kinds says: 1 AuthorizationPolicy (1 added" in harness.sticky()["body"]


async def test_a_new_policy_selecting_no_workload_fails_the_check(harness: Harness) -> None:
    setup_pull(harness.fake, base_tree(**{"policies/exporter.yaml": GHOST}))
    await review(harness)
    check = harness.check(HEAD)
    assert check["conclusion"] == "failure"
    assert check["output"]["title"].startswith("Not evaluated: 1 changed policy selects")
    [annotation] = check["output"]["annotations"]
    assert (annotation["path"], annotation["start_line"]) == ("policies/exporter.yaml", 1)
    body = harness.sticky()["body"]
    assert "selects no workload in this tree" in body
    assert f"/blob/{HEAD}/policies/exporter.yaml#L1" in body
    assert BASE[:7] in body
