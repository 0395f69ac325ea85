"""Cilium mutual authentication (``authentication: {mode: required}``): a rule requiring it
allows as if the handshake succeeds, its causes saying so; a change of a rule's mode alone,
which the map cannot show, is reported as not analysed with the rule's file and line."""

from __future__ import annotations

import pytest

from analysis.errors import ManifestError
from analysis.manifests import load_files
from analysis.reachability import compute_map
from bot.inputs.environment_diff import diff_files

PODS = (
    "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: shop, labels: {app: web}}\n"
    "spec: {containers: [{name: c, image: x}]}\n---\n"
    "apiVersion: v1\nkind: Pod\nmetadata: {name: db, namespace: shop, labels: {app: db}}\n"
    "spec: {containers: [{name: c, image: x}]}\n---\n"
    "apiVersion: v1\nkind: Pod\nmetadata: {name: batch, namespace: shop, labels: {app: batch}}\n"
    "spec: {containers: [{name: c, image: x}]}\n"
)


def _policy(peers: str, authentication: str | None) -> str:
    auth = f"\n    authentication: {{mode: {authentication}}}" if authentication else ""
    return (
        "# the database's clients\n"
        "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\n"
        "metadata: {name: db-clients, namespace: shop}\nspec:\n"
        "  endpointSelector: {matchLabels: {app: db}}\n"
        "  ingress:\n"
        f"  - fromEndpoints: [{peers}]{auth}\n"
        "    toPorts: [{ports: [{port: '5432', protocol: TCP}]}]\n"
    )


def _files(peers: str, authentication: str | None) -> dict[str, bytes]:
    return {"pods.yaml": PODS.encode(), "policy.yaml": _policy(peers, authentication).encode()}


WEB = "{matchLabels: {app: web}}"
WEB_AND_BATCH = "{matchExpressions: [{key: app, operator: In, values: [web, batch]}]}"


def test_a_rule_requiring_authentication_allows_and_is_no_finding_on_its_own() -> None:
    tree = load_files({"pods.yaml": PODS, "policy.yaml": _policy(WEB, "required")})
    assert tree.unanalysed == ()
    rmap = compute_map(tree)
    assert rmap.allowed("shop/Pod/web", "shop/Pod/db").to_json() == {"TCP": "5432"}
    assert rmap.allowed("shop/Pod/batch", "shop/Pod/db").to_json() == {}


def test_a_widened_rule_requiring_authentication_opens_paths_its_causes_qualify() -> None:
    diff = diff_files(_files(WEB, "required"), _files(WEB_AND_BATCH, "required"), cache=None)
    assert diff.unanalysed == ()
    [opened] = diff.opened
    assert (opened.src.id, opened.dst.id) == ("shop/Pod/batch", "shop/Pod/db")
    [cause] = opened.because
    assert (cause.policy, cause.rule, cause.file, cause.line) == (
        "shop/CiliumNetworkPolicy/db-clients",
        "ingress[0]",
        "policy.yaml",
        8,
    )
    assert cause.authentication.startswith("mutual authentication required: allowed once")
    assert cause.l7 == ""


@pytest.mark.parametrize(
    ("before", "after"),
    [("required", None), (None, "required"), ("required", "disabled"), ("disabled", "required")],
)
def test_a_change_of_the_mode_alone_is_not_analysed_naming_the_rule(
    before: str | None, after: str | None
) -> None:
    diff = diff_files(_files(WEB, before), _files(WEB, after), cache=None)
    assert diff.opened == diff.closed == ()  # the map cannot show it ...
    [note] = diff.unanalysed  # ... so the run does not pass on it
    old = "mode required" if before == "required" else "none"
    new = "mode required" if after == "required" else "none"
    assert note == (
        "plain manifests (head): policy.yaml:8: shop/CiliumNetworkPolicy/db-clients "
        f"ingress[0]: authentication: {old} in the base, {new} in the head; mutual "
        "authentication is decided at run time, so what this changes is not in the map"
    )


def test_disabled_is_no_authentication_and_the_same_mode_is_no_change() -> None:
    assert diff_files(_files(WEB, "disabled"), _files(WEB, None), cache=None).unanalysed == ()
    same = diff_files(_files(WEB, "required"), _files(WEB, "required"), cache=None)
    assert (same.unanalysed, same.opened, same.closed) == ((), (), ())


def test_the_test_mode_that_always_fails_is_not_analysed() -> None:
    tree = load_files({"policy.yaml": _policy(WEB, "test-always-fail"), "pods.yaml": PODS})
    [note] = tree.unanalysed
    assert note.startswith("policy.yaml:8: shop/CiliumNetworkPolicy/db-clients ingress[0]: ")
    assert "test-always-fail" in note


@pytest.mark.parametrize("value", ["{mode: optional}", "{}", "required", "{mode: required, x: 1}"])
def test_an_authentication_the_crd_refuses_is_a_clear_error(value: str) -> None:
    text = _policy(WEB, None).replace("    toPorts:", f"    authentication: {value}\n    toPorts:")
    with pytest.raises(ManifestError, match=r"ingress\[0\]\.authentication"):
        load_files({"policy.yaml": text})
