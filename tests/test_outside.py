"""Peers outside the repository (``cluster_scope: partial``) and ``reachdiff explain``.

Shapes from issue 18: a one-team repository (only ``payments``), mixed in-tree and outside
namespaces, NotIn/DoesNotExist selectors, admin tiers selecting outside namespaces; the CLI
end to end (exit codes, words, JSON), and explanations.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analysis.decision import explain_pair, explanation_json
from analysis.diff import diff_trees
from analysis.errors import ManifestError
from analysis.manifests import load_files
from analysis.model import Tree
from analysis.outside import ClusterScope, outside_world
from analysis.reachability import compute_map
from analysis.report import map_to_json
from bot.cli import main

PARTIAL, COMPLETE = ClusterScope.PARTIAL, ClusterScope.COMPLETE

DB = """\
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: payments-db, namespace: payments}
spec:
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: db, image: postgres, ports: [{containerPort: 5432}]}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db, namespace: payments}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress:
  - from: [{podSelector: {matchLabels: {app: api}}}]
    ports: [{port: 5432}]
"""

FRONTEND_RULE = """\
  - from: [{namespaceSelector: {matchLabels: {team: frontend}}}]
    ports: [{port: 5432}]
"""
EVERY_NAMESPACE_RULE = """\
  - from: [{namespaceSelector: {}}]
    ports: [{port: 5432}]
"""


def tree(*texts: str) -> Tree:
    return load_files({f"f{i}.yaml": t for i, t in enumerate(texts)})


def opened(base: str, head: str, scope: ClusterScope = PARTIAL) -> dict[tuple[str, str], str]:
    diff = diff_trees(load_files({"db.yaml": base}), load_files({"db.yaml": head}), scope)
    return {(c.src.id, c.dst.id): str(c.delta) for c in diff.opened}


DB_ID = "payments/StatefulSet/payments-db"


def test_one_team_repository_a_namespace_selector_opens_the_database_to_other_teams() -> None:
    got = opened(DB, DB + FRONTEND_RULE)
    assert got == {("~ns[team=frontend]/*", DB_ID): "TCP 5432"}
    # The complete world (today's behaviour) sees nothing: no such namespace in the tree.
    assert opened(DB, DB + FRONTEND_RULE, COMPLETE) == {}


def test_an_empty_namespace_selector_opens_to_every_other_namespace_and_undefined_pods() -> None:
    got = opened(DB, DB + EVERY_NAMESPACE_RULE)
    assert got == {
        ("~ns[*]/*", DB_ID): "TCP 5432",
        ("~payments/*", DB_ID): "TCP 5432",
        (DB_ID, DB_ID): "TCP 5432",  # replica to replica
    }
    # Pods labelled app=api (none in the tree) already had 5432 through ingress[0].
    assert opened(DB, DB + FRONTEND_RULE.replace("team: frontend", "app: api")) == {
        ("~ns[app=api]/*", DB_ID): "TCP 5432"
    }


def test_the_pods_a_representative_stands_for_are_in_words_and_json() -> None:
    rmap = compute_map(load_files({"db.yaml": DB + FRONTEND_RULE}), scope=PARTIAL)
    doc = map_to_json(rmap)
    outside = {e["id"]: e for e in doc["endpoints"] if e["kind"] == "Outside"}
    assert outside["~ns[team=frontend]/*"]["description"] == (
        "any pod in a namespace labelled team=frontend (not in this repository)"
    )
    assert outside["~ns[*]/*"]["description"] == (
        "any pod in any other namespace (not in this repository)"
    )
    assert outside["~payments/pod[app=api]"]["description"] == (
        "pods labelled app=api in namespace payments (not in this repository)"
    )
    assert outside["~payments/*"]["description"] == (
        "any other pod in namespace payments (not in this repository)"
    )
    pairs = {(c["src"], c["dst"]): c["allowed"] for c in doc["connections"]}
    assert pairs[("~ns[team=frontend]/*", DB_ID)] == {"TCP": "5432"}
    assert pairs[("~payments/pod[app=api]", DB_ID)] == {"TCP": "5432"}
    assert ("~ns[*]/*", DB_ID) not in pairs
    # Outside with outside, or with external ranges: governed by no policy of the tree.
    assert not any(s.startswith("~ns[") and d.startswith(("~ns[", "ip:")) for s, d in pairs)
    assert not any(s.startswith("ip:") and d.startswith("~ns[") for s, d in pairs)


MIXED = """\
apiVersion: v1
kind: Namespace
metadata: {name: web, labels: {team: frontend}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: shop, namespace: web}
spec:
  selector: {matchLabels: {app: shop}}
  template:
    metadata: {labels: {app: shop}}
    spec: {containers: [{name: c, image: x}]}
"""


def test_a_selector_matching_in_tree_and_outside_namespaces_shows_both() -> None:
    diff = diff_trees(tree(MIXED, DB), tree(MIXED, DB + FRONTEND_RULE), PARTIAL)
    got = {(c.src.id, c.dst.id) for c in diff.opened}
    # No selector tells web's pods apart, so shop stands for the others there (no ~web/*).
    assert got == {("web/Deployment/shop", DB_ID), ("~ns[team=frontend]/*", DB_ID)}
    assert diff.widening
    for change in diff.opened:
        assert [(c.policy, c.rule, c.line) for c in change.because] == [
            ("payments/NetworkPolicy/db", "ingress[1]", 18)
        ]


NOT_IN = """\
  - from:
    - namespaceSelector:
        matchExpressions:
        - {key: env, operator: NotIn, values: [dev]}
        - {key: quarantine, operator: DoesNotExist}
    ports: [{port: 5432}]
"""


def test_not_in_and_does_not_exist_get_a_representative_without_the_excluded_labels() -> None:
    got = opened(DB, DB + NOT_IN)
    # The namespace the rule admits carries neither env=dev nor quarantine; those that
    # carry them are represented apart (and stay denied).
    assert got == {
        ("~ns[*]/*", DB_ID): "TCP 5432",
        ("~payments/*", DB_ID): "TCP 5432",
        (DB_ID, DB_ID): "TCP 5432",
    }
    rmap = compute_map(load_files({"db.yaml": DB + NOT_IN}), scope=PARTIAL)
    ids = {e.id for e in rmap.endpoints if e.is_outside}
    # One selector: two verdicts, so two outside namespaces (the excluded one with the
    # fewest labels: env=dev and a quarantine label are treated alike, both excluded).
    assert {i for i in ids if i.startswith("~ns[")} == {"~ns[*]/*", "~ns[quarantine=*]/*"}
    assert rmap.allowed("~ns[quarantine=*]/*", DB_ID).to_json() == {}
    # Another env value is treated like none: no separate representative for it.
    assert not any(i.startswith("~ns[env!=") for i in ids)


ANP = """\
apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: quarantine}
spec:
  priority: 5
  subject: {namespaces: {matchLabels: {quarantine: "true"}}}
  egress:
  - name: nothing-out
    action: Deny
    to: [{namespaces: {}}]
---
apiVersion: policy.networking.k8s.io/v1alpha1
kind: BaselineAdminNetworkPolicy
metadata: {name: default}
spec:
  subject: {namespaces: {}}
  egress:
  - name: baseline-deny
    action: Deny
    to: [{namespaces: {matchLabels: {kubernetes.io/metadata.name: payments}}}]
"""


def test_admin_tiers_decide_for_outside_namespaces_but_the_baseline_does_not() -> None:
    rmap = compute_map(tree(DB + EVERY_NAMESPACE_RULE, ANP), scope=PARTIAL)
    # The ANP (cluster-scoped, in the tree) denies quarantined namespaces' egress.
    assert rmap.allowed("~ns[quarantine=true]/*", DB_ID).to_json() == {}
    # Whether a NetworkPolicy isolates an outside pod is unknown, so the baseline does not
    # decide for it: the path stays open (an upper bound), judged by the db's ingress.
    assert rmap.allowed("~ns[*]/*", DB_ID).to_json() == {"TCP": "5432"}
    # In-tree undefined pods of payments are under the baseline like any in-tree pod.
    assert rmap.allowed("~payments/*", DB_ID).to_json() == {}


def test_too_many_kinds_of_outside_pods_fail_closed_naming_the_setting() -> None:
    rules = "".join(
        f"  - from: [{{namespaceSelector: {{matchLabels: {{k{i}: v}}}}}}]\n" for i in range(14)
    )
    with pytest.raises(ManifestError) as info:
        compute_map(load_files({"db.yaml": DB + rules}), scope=PARTIAL)
    assert info.value.file == ".github/reachdiff.yml"
    assert "cluster_scope" in str(info.value) and "complete" in str(info.value)


def test_locate_finds_the_representative_of_concrete_pods() -> None:
    t = load_files({"db.yaml": DB + FRONTEND_RULE})
    world = outside_world(t, (t,))
    partial = world.tree(t)
    assert world.locate("web", {"team": "frontend", "x": "y"}, {"a": "b"}, partial) == (
        "~ns[team=frontend]/*"
    )
    assert world.locate("web", {}, {}, partial) == "~ns[*]/*"
    assert world.locate("payments", None, {"app": "batch"}, partial) == "~payments/*"
    assert world.locate("payments", None, {"app": "db", "v": "2"}, partial) == DB_ID


# ---------------------------------------------------------------------------- CLI


def _write(root: Path, text: str) -> Path:
    root.mkdir(parents=True)
    (root / "db.yaml").write_text(text)
    return root


def test_cli_diff_fails_on_an_outside_widening_and_complete_restores_the_old_view(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, head = _write(tmp_path / "b", DB), _write(tmp_path / "h", DB + FRONTEND_RULE)
    assert main(["diff", str(base), str(head)]) == 1
    out = capsys.readouterr().out
    assert "~ns[team=frontend]/*" in out
    assert "any pod in a namespace labelled team=frontend (not in this repository)" in out
    assert "judged by the destination's ingress alone" in out
    assert main(["diff", str(base), str(head), "--cluster-scope", "complete"]) == 0
    assert "unchanged" in capsys.readouterr().out
    assert main(["diff", str(base), str(head), "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert [(c["src"], c["dst"], c["allowed"]) for c in doc["opened"]] == [
        ("~ns[team=frontend]/*", DB_ID, {"TCP": "5432"})
    ]


def test_cli_map_counts_representatives_apart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    head = _write(tmp_path / "h", DB + FRONTEND_RULE)
    assert main(["map", str(head)]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith(
        "Reachability map: 1 workloads, 4 representatives of pods outside the tree, "
        "2 external ranges, 1 policy, "
    )
    assert main(["map", str(head), "--cluster-scope", "complete"]) == 0
    assert capsys.readouterr().out.startswith(
        "Reachability map: 1 workloads, 2 external ranges, 1 policy, "
    )


def test_cli_explain_text_json_md(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    head = _write(tmp_path / "h", DB + FRONTEND_RULE)
    src = "~ns[team=frontend]/*"
    assert main(["explain", str(head), src, DB_ID, "--port", "TCP 5432", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["allowed"] is True and doc["src"] == src and doc["dst"] == DB_ID
    assert doc["port"] == "TCP 5432"
    steps = [
        (s["direction"], s["policy"], s["rule"], s["line"], s["verdict"]) for s in doc["steps"]
    ]
    assert steps == [
        ("Egress", "", "", 0, "unknown"),
        ("Ingress", "payments/NetworkPolicy/db", "ingress[0]", 16, "no match"),
        ("Ingress", "payments/NetworkPolicy/db", "ingress[1]", 18, "allow"),
        ("Ingress", "payments/NetworkPolicy/db", "", 10, "isolated"),
    ]
    assert main(["explain", str(head), src, DB_ID, "--port", "TCP 5433"]) == 0
    text = capsys.readouterr().out
    assert "DENIED" in text and "payments/NetworkPolicy/db → deny (db.yaml:10)" in text
    assert main(["explain", str(head), "~ns[*]/*", DB_ID, "--format", "md"]) == 0
    assert "| 4 | Ingress | NetworkPolicy | `payments/NetworkPolicy/db` | deny |" in (
        capsys.readouterr().out
    )
    assert main(["explain", str(head), "nope/Pod/x", DB_ID]) == 2
    assert "nope/Pod/x is not an endpoint" in capsys.readouterr().err
    assert main(["explain", str(head), src, DB_ID, "--port", "HTTP 80"]) == 2


def test_explanations_agree_with_the_map_for_every_pair() -> None:
    rmap = compute_map(tree(MIXED, DB + FRONTEND_RULE, ANP), scope=PARTIAL)
    ids = [e.id for e in rmap.endpoints]
    for s in ids:
        for d in ids:
            if s.startswith(("ip:", "~ns[")) and d.startswith(("ip:", "~ns[")):
                continue
            e = explain_pair(rmap, s, d)
            assert e.allowed == rmap.allowed(s, d), (s, d)
            assert explanation_json(e)["allowed"] == bool(rmap.allowed(s, d))


# ---------------------------------------------------------------------------- the bot


def test_the_comment_shows_outside_paths_in_words_with_a_collapsible_explanation() -> None:
    from bot.inputs.analyze import DiffResult, analyze
    from bot.render.posts import render_comment, render_line_comments
    from tests.test_render import assert_safe, ctx

    base = {"db.yaml": DB.encode()}
    head = {"db.yaml": (DB + FRONTEND_RULE).encode()}
    result = analyze(base, head)
    assert isinstance(result, DiffResult) and result.widening
    assert [(s, d) for s, d, _ in result.explanations] == [("~ns[team=frontend]/*", DB_ID)]
    comment = render_comment(result, ctx())
    assert_safe(comment, mentions=("alice", "acme/netsec"))
    assert "`~ns[team=frontend]/*`<br>any pod in a namespace labelled team=frontend" in comment
    assert "The policies of namespaces outside the repository are unknown" in comment
    details = comment[comment.index("<details><summary>Why ") :]
    assert details.startswith(
        "<details><summary>Why <code>~ns[team=frontend]/*</code> reaches "
        "<code>payments/StatefulSet/payments-db</code></summary>"
    )
    assert "`payments/NetworkPolicy/db ingress[1] (db.yaml:18)` | allow |" in details
    # The rule that opened it gets its line comment, naming the representative.
    [line_comment] = render_line_comments(result, ctx())
    assert (line_comment.path, line_comment.line, line_comment.side) == ("db.yaml", 18, "RIGHT")
    assert "~ns[team=frontend]/*" in line_comment.body
    # Under complete, the repository is the cluster: nothing opened.
    complete = analyze(base, head, cluster_scope="complete")
    assert isinstance(complete, DiffResult) and not complete.widening


# ---------------------------------------------------------------------------- golden

SHOP = Path(__file__).resolve().parent.parent / "examples" / "shop" / "head"
GOLDEN = Path(__file__).resolve().parent / "fixtures" / "explain"
EXPLAINED = {
    "db-from-commerce": ("~ns[team=commerce]/*", DB_ID, "TCP 5432"),
    "db-from-other-ns": ("~ns[*]/*", DB_ID, None),
    "reporter-to-db": ("checkout/CronJob/order-reporter", DB_ID, "TCP 5432"),
}


@pytest.mark.parametrize("name", sorted(EXPLAINED))
@pytest.mark.parametrize("fmt", ["text", "json", "md"])
def test_golden_explanations_of_the_shop_example(
    name: str, fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    src, dst, port = EXPLAINED[name]
    args = ["explain", str(SHOP), src, dst, "--format", fmt]
    if port:
        args += ["--port", port]
    assert main(args) == 0
    golden = GOLDEN / f"{name}.{'txt' if fmt == 'text' else fmt}"
    assert capsys.readouterr().out == golden.read_text()
