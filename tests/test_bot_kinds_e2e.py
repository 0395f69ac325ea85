"""The bot end to end (fake GitHub on loopback) on what reachdiff does not model or cannot
evaluate: a Cilium policy fails the check with an annotation on its line unless
``ignore_kinds`` names its kind (the comment then says what was ignored), and a new policy
selecting no workload of the tree fails it too."""

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


async def test_a_cilium_policy_fails_the_check_naming_its_file_and_line(harness: Harness) -> None:
    setup_pull(harness.fake, base_tree(**{"policies/cilium.yaml": b"# cilium\n" + CILIUM}))
    await review(harness)
    check = harness.check(HEAD)
    assert check["conclusion"] == "failure"
    assert check["output"]["title"] == "Part of the change could not be analysed"
    [annotation] = check["output"]["annotations"]
    assert (annotation["path"], annotation["start_line"]) == ("policies/cilium.yaml", 2)
    assert "CiliumNetworkPolicy shop/db-from-web" in annotation["message"]
    assert "added" in annotation["message"]
    body = harness.sticky()["body"]
    assert "policies/cilium.yaml:2" in body and "ignore\\_kinds" in body


async def test_ignore_kinds_from_the_base_lets_the_review_pass_and_says_so(
    harness: Harness,
) -> None:
    settings = {".github/reachdiff.yml": b"ignore_kinds: [CiliumNetworkPolicy]\n"}
    setup_pull(
        harness.fake,
        base_tree(**settings, **{"policies/cilium.yaml": CILIUM}),
        base_files=base_tree(**settings),
    )
    await review(harness)
    check = harness.check(HEAD)
    assert check["conclusion"] == "success", check["output"]
    assert "ignore\\_kinds says\\: 1 CiliumNetworkPolicy \\(1 added" in harness.sticky()["body"]


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
