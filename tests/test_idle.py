"""A changed policy that selects no workload in its tree changes no path here, but its
change is real where its pods are: it is reported ("selects no workload in this tree: its
change could not be evaluated"), the CLI exits 2 and the check fails, never passing
silently as "unchanged"."""

from __future__ import annotations

from pathlib import Path

import pytest

from analysis.idle import REASON, idle_changed_policies
from analysis.manifests import load_files
from bot.cli import main
from bot.inputs.analyze import DiffResult, analyze
from bot.render.posts import check_conclusion, render_check_output, render_comment
from bot.review.settings import parse_repo_settings
from tests.test_render import ctx

APP = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, ports: [{containerPort: 80}]}]}
"""


def policy(app: str, port: int = 80, namespace: str = "shop") -> str:
    return f"""\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: np-{app}, namespace: {namespace}}}
spec:
  podSelector: {{matchLabels: {{app: {app}}}}}
  ingress:
  - ports: [{{port: {port}}}]
"""


def idle(base: dict[str, str], head: dict[str, str]) -> list[tuple[str, str, str, int]]:
    found = idle_changed_policies(load_files(base), load_files(head))
    return [(i.policy, i.status, i.source.file, i.source.line) for i in found]


def test_added_changed_and_removed_policies_selecting_nothing_are_reported() -> None:
    base = {"app.yaml": APP, "gone.yaml": policy("old"), "kept.yaml": policy("ghost")}
    head = {
        "app.yaml": APP,
        "new.yaml": "# new\n" + policy("exporter"),
        "kept.yaml": policy("ghost", port=81),
    }
    assert sorted(idle(base, head)) == [
        ("shop/NetworkPolicy/np-exporter", "added", "new.yaml", 2),
        ("shop/NetworkPolicy/np-ghost", "changed", "kept.yaml", 1),
        ("shop/NetworkPolicy/np-old", "removed", "gone.yaml", 1),
    ]


def test_unchanged_moved_or_selecting_policies_are_not_reported() -> None:
    base = {"app.yaml": APP, "a.yaml": policy("ghost"), "b.yaml": policy("web")}
    head = {
        "app.yaml": APP,
        "moved.yaml": "# moved, same meaning\n" + policy("ghost"),
        "b.yaml": policy("web", port=8080),  # changed, and selects web: evaluated
    }
    assert idle(base, head) == []
    # A policy selecting only a host-network pod selects nothing: no policy applies there.
    host = APP.replace("spec: {containers", "spec: {hostNetwork: true, containers")
    assert idle({"app.yaml": host}, {"app.yaml": host, "b.yaml": policy("web")}) == [
        ("shop/NetworkPolicy/np-web", "added", "b.yaml", 1)
    ]
    # Same labels, other namespace: selects nothing.
    assert idle({"app.yaml": APP}, {"app.yaml": APP, "b.yaml": policy("web", namespace="x")})


def test_admin_policy_whose_subject_selects_nothing_is_reported() -> None:
    anp = """\
apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: deny-ghosts}
spec:
  priority: 10
  subject: {namespaces: {matchLabels: {team: ghosts}}}
  ingress:
  - {name: deny, action: Deny, from: [{namespaces: {}}]}
"""
    assert idle({"app.yaml": APP}, {"app.yaml": APP, "anp.yaml": anp}) == [
        ("AdminNetworkPolicy/deny-ghosts", "added", "anp.yaml", 1)
    ]
    everyone = anp.replace("{matchLabels: {team: ghosts}}", "{}")
    assert idle({"app.yaml": APP}, {"app.yaml": APP, "anp.yaml": everyone}) == []


def test_cli_reports_it_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base, head = tmp_path / "base", tmp_path / "head"
    for root in (base, head):
        root.mkdir()
        (root / "app.yaml").write_text(APP)
    (head / "np.yaml").write_text(policy("exporter"))
    # The tree is the whole cluster here: under cluster_scope partial the policy would
    # select the undefined exporter pods (~shop/pod[app=exporter]) and close their paths.
    complete = ["--cluster-scope", "complete"]
    assert main(["diff", str(base), str(head), *complete]) == 2
    out, err = capsys.readouterr()
    message = f"shop/NetworkPolicy/np-exporter (np.yaml:1, added) {REASON}"
    assert "reachdiff: access unchanged" in out and message in out
    assert f"reachdiff: not analysed: {message}" in err
    # The Markdown review says it too, where the reader looks.
    assert main(["diff", str(base), str(head), "--format", "md", *complete]) == 2
    out, _ = capsys.readouterr()
    assert "not evaluated: shop/NetworkPolicy/np-exporter" in out  # escaped Markdown


def test_bot_fails_the_check_and_says_why_unless_the_namespace_is_ignored() -> None:
    base = {"app.yaml": APP.encode()}
    head = {**base, "np.yaml": policy("exporter").encode()}
    result = analyze(base, head, cluster_scope="complete")  # the tree is the cluster
    assert isinstance(result, DiffResult) and not result.opened and not result.closed
    [u] = result.unevaluated
    assert (u.tree, u.file, u.line, u.namespace) == ("head", "np.yaml", 1, "shop")
    assert check_conclusion(result, ctx()) == "failure"
    output = render_check_output(result, ctx())
    assert output.title == "Not evaluated: 1 changed policy selects no workload in this tree"
    assert [(a.path, a.start_line, a.annotation_level) for a in output.annotations] == [
        ("np.yaml", 1, "failure")
    ]
    comment = render_comment(result, ctx())
    assert "**Not evaluated:**" in comment
    assert "selects no workload in this tree" in comment and "np.yaml#L1" in comment
    ignoring = parse_repo_settings("ignore_namespaces: [shop]\n")
    assert check_conclusion(result, ctx(ignoring)) == "success"
    assert "Not evaluated" not in render_comment(result, ctx(ignoring))
