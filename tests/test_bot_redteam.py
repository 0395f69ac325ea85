"""Adversarial pull requests: each one widens access in a way an earlier reader missed.

Every test is a pull request an attacker with write access could open, reviewed end to end
by the real app against the fake GitHub; the check must not pass, and the review must not
call the change unchanged. docs/bot.md's threat model lists what each one is.
"""

from __future__ import annotations

from tests.botharness import HEAD, Harness, base_tree, review, setup_pull

# Every pod of shop may connect to db on every port: a widening of the base's one rule.
OPEN_DB = """\
apiVersion: networking.k8s.io/v1
kind: {kind}
metadata:
  name: open-db
  namespace: shop
spec:
  podSelector:
    matchLabels: {{app: db}}
  ingress:
  - from:
    - podSelector: {{}}
"""


async def assert_not_passed(harness: Harness) -> str:
    """Review the pull request; the check must fail and the comment not say unchanged."""
    await review(harness)
    check = harness.check(HEAD)
    assert check["conclusion"] == "failure", check["output"]["title"]
    body: str = harness.sticky()["body"]
    assert "unchanged" not in check["output"]["title"].lower()
    return body


async def test_a_kind_spelled_as_yaml_binary_is_the_kind_kubernetes_reads(
    harness: Harness,
) -> None:
    # go-yaml (Kubernetes' YAML reader) decodes a !!binary scalar to the string of its bytes,
    # so this is a NetworkPolicy to the cluster; read as bytes it was no kind at all.
    head = base_tree(
        **{"policies/open.yaml": OPEN_DB.format(kind="!!binary TmV0d29ya1BvbGljeQ==").encode()}
    )
    setup_pull(harness.fake, head)
    body = await assert_not_passed(harness)
    assert "open-db" in body
