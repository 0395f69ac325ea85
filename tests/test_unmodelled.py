"""Policy kinds reachdiff does not model (Cilium, Calico, Antrea, Istio, ...): never dropped
silently. Their presence is reported by kind, file and line; the CLI exits 2 and the bot's
check fails, unless ``ignore_kinds`` names the kind, and then the report says so.

The objects are shaped like the projects' own examples (cilium/cilium examples/policies,
projectcalico docs, antrea-io/antrea docs/antrea-network-policy.md, istio.io security
docs); all Apache-2.0, facts of their schemas only.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analysis.formats import policy_counts
from analysis.manifests import load_files
from analysis.treestate import apply_changes, load_state
from analysis.unmodelled import change_findings, enforces_traffic, split
from bot.cli import main
from bot.inputs.analyze import AnalysisFailure, DiffResult, analyze
from bot.render.posts import render_check_output, render_comment
from bot.review.settings import SettingsError, parse_repo_settings
from tests.test_render import ctx

WEB = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, ports: [{containerPort: 8080, name: http}]}]}
"""

# Istio's AuthorizationPolicy in the shape of istio.io's security examples (the example
# kind of these tests: Cilium's and Calico's kinds are modelled, see test_cilium*.py and
# test_calico*.py).
AUTHZ = """\
# an AuthorizationPolicy in the shape of istio.io's examples
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: allow-frontend
  namespace: shop
spec:
  selector:
    matchLabels: {app: web}
  rules:
  - from:
    - source: {principals: [{app: frontend}]}
"""

# (apiVersion, kind, namespaced): one of each family the issue names, and one only the
# name rule catches (GKE's FQDNNetworkPolicy).
POLICY_KINDS = [
    # cilium.io/v2 is modelled (analysis.ciliumpolicies); another version is not.
    ("cilium.io/v3alpha1", "CiliumNetworkPolicy", True),
    # Calico's NetworkPolicy and GlobalNetworkPolicy are modelled (tests/test_calico*.py);
    # a HostEndpoint puts node interfaces under them, which no manifest settles.
    ("projectcalico.org/v3", "HostEndpoint", False),
    ("crd.projectcalico.org/v1", "HostEndpoint", False),
    ("crd.antrea.io/v1beta1", "ClusterNetworkPolicy", False),
    ("crd.antrea.io/v1beta1", "NetworkPolicy", True),
    ("security.istio.io/v1", "AuthorizationPolicy", True),
    ("policy.linkerd.io/v1beta3", "Server", True),
    ("networking.gke.io/v1alpha3", "FQDNNetworkPolicy", True),
]


def _object(api_version: str, kind: str, namespaced: bool, name: str = "p") -> str:
    namespace = "\n  namespace: shop" if namespaced else ""
    return (
        f"apiVersion: {api_version}\nkind: {kind}\nmetadata:\n  name: {name}{namespace}\n"
        "spec: {}\n"
    )


@pytest.mark.parametrize(("api_version", "kind", "namespaced"), POLICY_KINDS)
def test_each_policy_kind_not_modelled_is_kept_with_its_file_and_line(
    api_version: str, kind: str, namespaced: bool
) -> None:
    text = "# padding\n---\n" + _object(api_version, kind, namespaced)
    tree = load_files({"apps.yaml": WEB, "policies/p.yaml": text})
    [found] = tree.unmodelled
    assert (found.kind, found.api_version, found.name) == (kind, api_version, "p")
    assert found.namespace == ("shop" if namespaced else "")
    assert (found.source.file, found.source.line) == ("policies/p.yaml", 3)
    assert tree.policies == ()  # never mistaken for the core NetworkPolicy
    assert "not analysed" in policy_counts(tree)


@pytest.mark.parametrize(
    ("api_version", "kind"),
    [
        ("projectcalico.org/v3", "StagedNetworkPolicy"),  # a preview Calico does not enforce
        ("projectcalico.org/v3", "GlobalNetworkSet"),
        ("v1", "ConfigMap"),
        ("monitoring.coreos.com/v1", "ServiceMonitor"),
        ("networking.k8s.io/v1", "Ingress"),
    ],
)
def test_kinds_that_decide_no_traffic_are_not_reported(api_version: str, kind: str) -> None:
    assert not enforces_traffic(api_version, kind)
    tree = load_files({"x.yaml": _object(api_version, kind, True)})
    assert tree.unmodelled == ()


def test_a_new_policy_api_version_the_engine_does_not_read_is_not_analysed() -> None:
    # v1alpha1's kinds are modelled; another kind of the group is not silently skipped.
    assert enforces_traffic("policy.networking.k8s.io/v1alpha9", "FutureNetworkPolicy")


def test_findings_say_what_the_change_did_to_each_object() -> None:
    base = load_files(
        {
            "a.yaml": AUTHZ,
            "b.yaml": _object("crd.antrea.io/v1beta1", "NetworkPolicy", True, "kept"),
            "c.yaml": _object("policy.linkerd.io/v1beta3", "Server", True, "gone"),
        }
    )
    head = load_files(
        {
            "a.yaml": AUTHZ.replace("{app: frontend}", "{app: anyone}"),
            "b.yaml": _object("crd.antrea.io/v1beta1", "NetworkPolicy", True, "kept"),
            "d.yaml": _object("crd.antrea.io/v1beta1", "ClusterNetworkPolicy", False, "new"),
        }
    )
    found = {
        (f.policy.kind, f.policy.name): (f.status, f.tree, f.policy.source.file)
        for f in change_findings(base.unmodelled, head.unmodelled)
    }
    assert found == {
        ("AuthorizationPolicy", "allow-frontend"): ("changed", "head", "a.yaml"),
        ("NetworkPolicy", "kept"): ("unchanged", "head", "b.yaml"),
        ("ClusterNetworkPolicy", "new"): ("added", "head", "d.yaml"),
        ("Server", "gone"): ("removed", "base", "c.yaml"),
    }
    # ignore_kinds names a kind, or a kind of one API group only.
    findings = change_findings(base.unmodelled, head.unmodelled)
    blocking, ignored = split(findings, ["AuthorizationPolicy", "NetworkPolicy.crd.antrea.io"])
    assert {f.policy.kind for f in blocking} == {"Server", "ClusterNetworkPolicy"}
    assert len(ignored) == 2
    blocking, _ = split(findings, ["NetworkPolicy.projectcalico.org"])
    assert len(blocking) == 4


def test_the_derived_tree_of_a_change_keeps_unmodelled_policies_like_a_full_load() -> None:
    files = {"apps.yaml": WEB, "authz.yaml": AUTHZ}
    state = load_state(files)
    for change in (
        {"authz.yaml": None},
        {"authz.yaml": AUTHZ.replace("{app: frontend}", "{app: x}")},
        {"more.yaml": _object("crd.antrea.io/v1beta1", "ClusterNetworkPolicy", False)},
        {"apps.yaml": WEB.replace("8080", "8081")},
    ):
        after = {**files, **{p: c for p, c in change.items() if c is not None}}
        after = {p: c for p, c in after.items() if change.get(p, "") is not None}
        assert apply_changes(state, change).tree == load_files(after)


# ---- the CLI ------------------------------------------------------------------------------


def _trees(tmp_path: Path) -> tuple[Path, Path]:
    base, head = tmp_path / "base", tmp_path / "head"
    changed = AUTHZ.replace("{app: frontend}", "{app: anyone}")
    for root, authz in ((base, AUTHZ), (head, changed)):
        root.mkdir()
        (root / "apps.yaml").write_text(WEB)
        # CR LF, as a Windows checkout writes it: read all the same.
        (root / "authz.yaml").write_bytes(authz.replace("\n", "\r\n").encode())
    return base, head


def test_cli_says_not_analysed_with_kind_file_and_line_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, head = _trees(tmp_path)
    assert main(["diff", str(base), str(head)]) == 2
    out, err = capsys.readouterr()
    assert "Not analysed" in out
    assert (
        "not analysed: security.istio.io/AuthorizationPolicy shop/allow-frontend "
        "(authz.yaml:2, changed)"
    ) in err
    assert "ignore_kinds" in err
    assert main(["map", str(base)]) == 2
    out, err = capsys.readouterr()
    assert "1 policy (1 AuthorizationPolicy not analysed)" in out
    assert "(authz.yaml:2, present)" in err


def test_cli_ignore_kind_passes_and_says_what_was_ignored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, head = _trees(tmp_path)
    assert (
        main(
            [
                "diff",
                str(base),
                str(head),
                "--ignore-kind",
                "AuthorizationPolicy",
                "--format",
                "json",
            ]
        )
        == 0
    )
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert doc["opened"] == [] and doc["closed"] == []  # the documented fields stay
    assert doc["not_analysed"] == [
        {
            "kind": "AuthorizationPolicy",
            "api_version": "security.istio.io/v1",
            "namespace": "shop",
            "name": "allow-frontend",
            "file": "authz.yaml",
            "line": 2,
            "tree": "head",
            "status": "changed",
            "environment": "",
            "ignored": True,
        }
    ]
    assert "note: not analysed, as ignore_kinds says: 1 AuthorizationPolicy" in err
    assert "not analysed: security.istio.io" not in err


# ---- settings and the bot ---------------------------------------------------------------


def test_ignore_kinds_setting_is_validated_with_its_line() -> None:
    settings = parse_repo_settings(
        "ignore_kinds: [CiliumNetworkPolicy, NetworkPolicy.projectcalico.org]\n"
    )
    assert settings.ignore_kinds == ("CiliumNetworkPolicy", "NetworkPolicy.projectcalico.org")
    with pytest.raises(SettingsError) as err:
        parse_repo_settings("ignore_kinds:\n  - CiliumNetworkPolicy\n  - cilium network\n")
    assert err.value.key == "ignore_kinds" and err.value.line == 3


def test_bot_fails_the_check_naming_each_object_unless_ignore_kinds_lists_its_kind() -> None:
    base = {"apps.yaml": WEB.encode(), "authz.yaml": AUTHZ.encode()}
    head = {**base, "authz.yaml": AUTHZ.replace("{app: frontend}", "{app: anyone}").encode()}
    failed = analyze(base, head)
    assert isinstance(failed, AnalysisFailure) and failed.kind == "unanalysed"
    assert "AuthorizationPolicy" in failed.message and "ignore_kinds" in failed.message
    [where] = failed.unanalysed
    assert (where.tree, where.file, where.line) == ("head", "authz.yaml", 2)

    passed = analyze(base, head, ignore_kinds=("AuthorizationPolicy",))
    assert isinstance(passed, DiffResult)
    assert any("ignore_kinds" in n and "AuthorizationPolicy" in n for n in passed.notes)
    settings = parse_repo_settings("ignore_kinds: [AuthorizationPolicy]\n")
    comment = render_comment(passed, ctx(settings))
    # Escaped for GitHub's Markdown, word for word.
    assert "not analysed, as ignore\\_kinds says: 1 AuthorizationPolicy" in comment
    output = render_check_output(passed, ctx(settings))
    assert "ignore\\_kinds says" in output.summary
