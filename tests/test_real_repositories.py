"""Regressions found by running reachdiff on real public repositories (docs/real-repositories.md).

Each fixture is written for these tests in the shape of the manifests that showed the
problem; the source repository, path, commit and licence are noted with it.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from analysis import unmodelled
from analysis.diff import diff_trees
from analysis.errors import ManifestError
from analysis.formats import map_text
from analysis.lint import lint
from analysis.manifests import exact_rule_source, load_files
from analysis.outside import ClusterScope
from analysis.reachability import compute_map
from analysis.report import map_to_json
from bot.cli import EXIT_INPUT, EXIT_OK, main
from tests.filetrees import write_files

# Shaped like argoproj/argocd-example-apps helm-hooks/manifests.yaml (commit
# 0d521c6e049889134f3122eb32d7ed342f43ca0d; the repository has no licence file, so only its
# shape is used): a hook Job named by `metadata.generateName` alone, as Argo CD and Helm
# create hooks. It was refused ("`metadata.name` must be a non-empty string").
GENERATED_HOOK = """\
apiVersion: batch/v1
kind: Job
metadata:
  generateName: upgrade-sql-schema-
  annotations: {argocd.argoproj.io/hook: PreSync}
spec:
  template:
    metadata: {labels: {app: schema}}
    spec:
      containers: [{name: upgrade, image: alpine, command: [sleep, "5"]}]
      restartPolicy: Never
---
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: frontend}
spec:
  selector: {matchLabels: {tier: frontend}}
  template:
    metadata: {labels: {tier: frontend}}
    spec: {containers: [{name: main, image: nginx, ports: [{containerPort: 80}]}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {generateName: frontend-ingress-}
spec:
  podSelector: {matchLabels: {tier: frontend}}
  ingress:
  - from: [{podSelector: {matchLabels: {app: schema}}}]
    ports: [{port: 80}]
"""


def test_objects_named_by_generate_name_alone_are_read() -> None:
    tree = load_files({"hooks.yaml": GENERATED_HOOK})
    assert {w.id for w in tree.workloads} == {
        "default/Job/upgrade-sql-schema-{hooks.yaml#1}",
        "default/ReplicaSet/frontend",
    }
    [policy] = tree.policies
    assert (policy.name, policy.source.line) == ("frontend-ingress-{hooks.yaml#1}", 22)
    doc = map_to_json(compute_map(tree))
    into = {c["src"]: c["allowed"] for c in doc["connections"] if c["dst"].endswith("frontend")}
    assert into == {"default/Job/upgrade-sql-schema-{hooks.yaml#1}": {"TCP": "80"}}


# Shaped like argoproj/argocd-example-apps helm-hooks/manifests.yaml (commit
# 5027f118dc2e61ff3e84c5ffb1c7a5a2ea7c4f53; no licence file, shape only), with its
# upgrade-sql-schema hook written as two hooks of one prefix (PreSync and PostSync), as
# Argo CD's resource-hooks documentation writes them: the API server makes two Jobs
# (db-migrate-x7k2p, db-migrate-q9fz4). Refused as a duplicate before.
TWO_HOOKS = """apiVersion: batch/v1
kind: Job
metadata:
  generateName: db-migrate-
  annotations: {argocd.argoproj.io/hook: PreSync}
spec:
  template:
    metadata: {labels: {app: migrate, phase: pre}}
    spec:
      containers: [{name: migrate, image: alpine, command: [sleep, "5"]}]
      restartPolicy: Never
---
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: backend}
spec:
  selector: {matchLabels: {tier: backend}}
  template:
    metadata: {labels: {tier: backend}}
    spec: {containers: [{name: main, image: nginx, ports: [{containerPort: 8080}]}]}
---
apiVersion: batch/v1
kind: Job
metadata:
  generateName: db-migrate-
  annotations: {argocd.argoproj.io/hook: PostSync}
spec:
  template:
    metadata: {labels: {app: migrate, phase: post}}
    spec:
      containers: [{name: migrate, image: alpine, command: [sleep, "5"]}]
      restartPolicy: Never
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: backend}
spec:
  podSelector: {matchLabels: {tier: backend}}
  ingress:
  - from: [{podSelector: {matchLabels: {phase: pre}}}]
    ports: [{port: 8080}]
"""
SERVICE = "apiVersion: v1\nkind: Service\nmetadata: {name: backend}\nspec: {ports: [{port: 80}]}\n"


def test_hooks_of_one_generate_name_prefix_are_distinct_objects() -> None:
    pre_hook = TWO_HOOKS.split("---\n")[0]  # one hook of the same prefix in another file
    tree = load_files({"hooks.yaml": TWO_HOOKS, "other/hooks.yaml": pre_hook})
    jobs = sorted(w.id for w in tree.workloads if w.kind == "Job")
    assert jobs == [
        "default/Job/db-migrate-{hooks.yaml#1}",
        "default/Job/db-migrate-{hooks.yaml#2}",
        "default/Job/db-migrate-{other/hooks.yaml#1}",
    ]
    doc = map_to_json(compute_map(load_files({"hooks.yaml": TWO_HOOKS})))
    into = {c["src"] for c in doc["connections"] if c["dst"] == "default/ReplicaSet/backend"}
    assert into == {"default/Job/db-migrate-{hooks.yaml#1}"}  # the PreSync hook only


@pytest.mark.parametrize(
    "head",
    [
        SERVICE + "---\n" + TWO_HOOKS,  # a document added above both hooks
        TWO_HOOKS.replace("image: nginx", "image: nginx:1.27"),  # an edit between them
    ],
)
def test_an_unchanged_generated_hook_is_the_same_object_in_base_and_head(head: str) -> None:
    diff = diff_trees(load_files({"hooks.yaml": TWO_HOOKS}), load_files({"hooks.yaml": head}))
    assert (diff.opened, diff.closed) == ((), ())
    assert (diff.added_endpoints, diff.removed_endpoints) == ((), ())


def test_a_generated_hook_the_policy_newly_admits_is_an_opened_path() -> None:
    head = TWO_HOOKS.replace("{phase: pre}", "{app: migrate}")
    diff = diff_trees(load_files({"hooks.yaml": TWO_HOOKS}), load_files({"hooks.yaml": head}))
    assert [(c.src.id, c.dst.id) for c in diff.opened] == [
        ("default/Job/db-migrate-{hooks.yaml#2}", "default/ReplicaSet/backend")
    ]
    assert diff.closed == ()


@pytest.mark.parametrize(
    ("meta", "says"),
    [
        ("{generateName: Upper-}", "`metadata.generateName` 'Upper-' is not a valid name prefix"),
        ("{generateName: [x]}", "`metadata.generateName` ['x'] is not a valid name prefix"),
        ("{}", "`metadata.name` must be a non-empty string"),
    ],
)
def test_an_invalid_generate_name_is_an_error_with_its_line(meta: str, says: str) -> None:
    text = f"apiVersion: v1\nkind: Pod\nmetadata: {meta}\nspec: {{containers: []}}\n"
    with pytest.raises(ManifestError) as err:
        load_files({"pod.yaml": text})
    assert says in err.value.message and err.value.line == 3


# Shaped like argoproj/argocd-example-apps jsonnet-guestbook/ (commit
# 0d521c6e049889134f3122eb32d7ed342f43ca0d): an Argo CD application written in jsonnet
# next to YAML ones. `reachdiff map` and `diff` of directories read only YAML and rendering
# inputs, so a jsonnet change passed unseen (`review` and the bot already reported it).
JSONNET_APP = """\
local params = import 'params.libsonnet';
[{apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy',
  metadata: {name: params.name}, spec: {podSelector: {}, ingress: [{}]}}]
"""
POD = "apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: n}\n"


def test_cli_map_and_diff_report_jsonnet_as_not_analysed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = write_files(tmp_path / "base", {"app.yaml": POD})
    head = write_files(
        tmp_path / "head",
        {
            "app.yaml": POD,
            "jsonnet-guestbook/guestbook-ui.jsonnet": JSONNET_APP,
            "jsonnet-guestbook/params.libsonnet": "{name: 'guestbook'}\n",
            ".hidden.jsonnet": "{}\n",  # hidden files are never read
        },
    )
    assert main(["diff", str(base), str(head)]) == EXIT_INPUT
    err = capsys.readouterr().err
    says = "not analysed: jsonnet-guestbook/{}: jsonnet is rendered by Argo CD, not by reachdiff"
    assert says.format("guestbook-ui.jsonnet") in err
    assert says.format("params.libsonnet") in err and "hidden" not in err
    assert main(["map", str(head)]) == EXIT_INPUT
    assert says.format("guestbook-ui.jsonnet") in capsys.readouterr().err
    assert main(["map", str(base)]) == EXIT_OK


# Shaped like prometheus-operator/kube-prometheus manifests/nodeExporter-daemonset.yaml and
# nodeExporter-networkPolicy.yaml (commit 4d719f1dea8853540b3823ab1fbe6be74a9953b3,
# Apache-2.0): the policy's labels are the DaemonSet's, but node-exporter runs with
# hostNetwork, so the policy isolates nothing. lint said to "fix the podSelector's labels".
NODE_EXPORTER = """\
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: node-exporter, namespace: monitoring}
spec:
  selector: {matchLabels: {app.kubernetes.io/name: node-exporter}}
  template:
    metadata:
      labels: {app.kubernetes.io/name: node-exporter, app.kubernetes.io/part-of: kube-prometheus}
    spec:
      hostNetwork: true
      containers: [{name: kube-rbac-proxy, image: x, ports: [{containerPort: 9100, name: https}]}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: node-exporter, namespace: monitoring}
spec:
  podSelector: {matchLabels: {app.kubernetes.io/name: node-exporter}}
  policyTypes: [Egress, Ingress]
  egress: [{}]
  ingress:
  - from: [{podSelector: {matchLabels: {app.kubernetes.io/name: prometheus}}}]
    ports: [{port: 9100, protocol: TCP}]
"""


def test_lint_says_a_policy_selects_only_host_network_pods() -> None:
    rmap = compute_map(load_files({"ne.yaml": NODE_EXPORTER}), scope=ClusterScope.PARTIAL)
    [found] = [f for f in lint(rmap) if f.rule == "policy-selects-nothing"]
    assert found.line == 13
    assert "selects only host-network pods (monitoring/DaemonSet/node-exporter)" in found.message
    assert "podSelector's labels" not in found.fix and "host firewall" in found.fix


# Shaped like onedr0p/home-ops kubernetes/apps/default/*/app/helmrelease.yaml (commit
# d9078e4dd52174ad68a4408ca3398f731b2f889e, WTFPL; only the shape is used)
# and argoproj/argocd-example-apps apps/templates: every workload of such a repository comes
# from a chart the HelmRelease or Application fetches, with values it holds. A change to
# those values passed as "access unchanged".
HELM_RELEASE = """\
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: plex, namespace: default}
spec:
  chartRef: {kind: OCIRepository, name: app-template}
  interval: 1h
  values:
    controllers:
      plex:
        containers:
          app: {image: {repository: ghcr.io/home-operations/plex, tag: 1.41.0}}
    service:
      app: {ports: {http: {port: 32400}}}
"""
APPLICATION = """\
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: guestbook, namespace: argocd}
spec:
  project: default
  source:
    repoURL: https://github.com/argoproj/argocd-example-apps
    path: guestbook
    targetRevision: HEAD
  destination: {server: https://kubernetes.default.svc, namespace: guestbook}
"""


def _diff_json(
    tmp_path: Path, base: dict[str, str], head: dict[str, str], *extra: str
) -> tuple[int, dict[str, Any]]:
    write_files(tmp_path / "base", base)
    write_files(tmp_path / "head", head)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(
            ["diff", str(tmp_path / "base"), str(tmp_path / "head"), "--format", "json", *extra]
        )
    return code, json.loads(out.getvalue())


def test_a_changed_helm_release_or_application_is_not_analysed(tmp_path: Path) -> None:
    files = {"pod.yaml": POD, "plex.yaml": HELM_RELEASE, "app.yaml": APPLICATION}
    changed = dict(files, **{"plex.yaml": HELM_RELEASE.replace("32400", "32401")})
    code, doc = _diff_json(tmp_path, files, changed)
    assert code == EXIT_INPUT
    [finding] = doc["not_analysed"]
    assert (finding["kind"], finding["name"], finding["status"], finding["line"]) == (
        "HelmRelease",
        "plex",
        "changed",
        1,
    )


def test_an_unchanged_helm_release_is_no_finding(tmp_path: Path) -> None:
    files = {"pod.yaml": POD, "plex.yaml": HELM_RELEASE, "app.yaml": APPLICATION}
    code, doc = _diff_json(
        tmp_path, files, dict(files, **{"pod.yaml": POD.replace("n}", "n, labels: {a: b}}")})
    )
    assert (code, doc["not_analysed"]) == (EXIT_OK, [])
    tree = load_files(files)
    assert len(tree.unmodelled) == 2 and unmodelled.tree_findings(tree.unmodelled) == ()
    assert "0 policies" in map_text(compute_map(tree))  # no policy, none "not analysed"


@pytest.mark.parametrize("status", ["added", "removed"])
def test_an_added_or_removed_application_is_not_analysed(tmp_path: Path, status: str) -> None:
    with_app = {"pod.yaml": POD, "app.yaml": APPLICATION}
    without = {"pod.yaml": POD}
    base, head = (without, with_app) if status == "added" else (with_app, without)
    code, doc = _diff_json(tmp_path, base, head, "--ignore-kind", "HelmRelease")
    assert code == EXIT_INPUT
    [finding] = doc["not_analysed"]
    assert (finding["kind"], finding["status"], finding["ignored"]) == (
        "Application",
        status,
        False,
    )
    code, doc = _diff_json(tmp_path, base, head, "--ignore-kind", "Application")
    assert code == EXIT_OK and doc["not_analysed"][0]["ignored"] is True


# Shaped like onedr0p/home-ops kubernetes/components/ (commit
# d9078e4dd52174ad68a4408ca3398f731b2f889e, WTFPL): Components that Flux Kustomizations
# list under spec.components, with ${APP} substituted by Flux. No kustomization of the
# repository includes them, so a NetworkPolicy in one was never rendered nor read as a
# plain manifest, and nothing said so.
COMPONENT = """\
apiVersion: kustomize.config.k8s.io/v1alpha1
kind: Component
resources:
  - ./networkpolicy.yaml
"""
COMPONENT_POLICY = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: ${APP}-ingress
spec:
  podSelector: {matchLabels: {app.kubernetes.io/name: "${APP}"}}
  ingress: [{}]
"""
FLUX_APP = """\
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: plex, namespace: flux-system}
spec:
  path: ./kubernetes/apps/default/plex/app
  components: [../../../../components/netpol]
  postBuild: {substitute: {APP: plex}}
  sourceRef: {kind: GitRepository, name: flux-system}
"""


def test_a_component_no_kustomization_includes_is_not_analysed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hpa = "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: x}\n"
    root = write_files(
        tmp_path / "repo",
        {
            "kubernetes/components/netpol/kustomization.yaml": COMPONENT,
            "kubernetes/components/netpol/networkpolicy.yaml": COMPONENT_POLICY,
            "kubernetes/components/hpa/kustomization.yaml": COMPONENT.replace(
                "networkpolicy", "hpa"
            ),
            "kubernetes/components/hpa/hpa.yaml": hpa,
            # Shaped like GoogleCloudPlatform/microservices-demo kustomize/components (commit
            # 34ffea9175946982c3088ed84994fe6019ad6e92, Apache-2.0): an optional Component
            # that a user enables by editing a kustomization, which nothing applies as it is.
            "optional/kustomization.yaml": COMPONENT,
            "optional/networkpolicy.yaml": COMPONENT_POLICY.replace("${APP}", "x"),
            "kubernetes/flux.yaml": FLUX_APP,
        },
    )
    assert main(["map", str(root)]) == EXIT_INPUT
    err = capsys.readouterr().err
    assert "optional" not in err
    assert (
        "not analysed: kubernetes/components/netpol/kustomization.yaml: a kustomize Component"
        in err
    )
    assert "it holds NetworkPolicy ${APP}-ingress, which reachdiff does not render" in err
    assert "components/hpa" not in err  # holds nothing reachdiff reads
    # Included by a kustomization, it is rendered with it: no finding.
    included = "resources: [../flux.yaml]\ncomponents: [../components/netpol]\n"
    write_files(
        root,
        {
            "kubernetes/app/kustomization.yaml": included,
            "kubernetes/components/netpol/networkpolicy.yaml": COMPONENT_POLICY.replace(
                "${APP}", "plex"
            ),
        },
    )
    main(["map", str(root)])
    assert "components/netpol" not in capsys.readouterr().err


# Shaped like prometheus-community/helm-charts charts/prometheus-postgres-exporter (commit
# cf408a290aec489277a94450bb3511432477a53a, Apache-2.0): a chart that `required`s a value.
# `map` and `diff` read no helm_values, so such a chart could only be reviewed by the app.
REQUIRING_CHART = {
    "charts/exporter/Chart.yaml": "apiVersion: v2\nname: exporter\nversion: 1.0.0\n",
    "charts/exporter/templates/networkpolicy.yaml": """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: exporter
  annotations:
    password: {{ required "config.datasource.password is required" .Values.password | quote }}
spec:
  podSelector: {matchLabels: {app: exporter}}
  ingress: [{ports: [{port: 9187}]}]
""",
    "charts/exporter/templates/deployment.yaml": """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: exporter}
spec:
  selector: {matchLabels: {app: exporter}}
  template:
    metadata: {labels: {app: exporter}}
    spec: {containers: [{name: e, image: x, ports: [{containerPort: 9187}]}]}
""",
    "values/exporter.yaml": "password: secret\n",
}


@pytest.mark.skipif(shutil.which("helm") is None, reason="helm is not installed")
def test_map_and_lint_read_helm_values_from_the_settings_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write_files(tmp_path / "repo", REQUIRING_CHART)
    assert main(["map", str(root)]) == EXIT_INPUT
    assert "config.datasource.password is required" in capsys.readouterr().err
    settings = tmp_path / "reachdiff.yml"
    settings.write_text('helm_values:\n  charts/exporter: ["values/exporter.yaml"]\n')
    assert main(["map", str(root), "--settings", str(settings)]) == EXIT_OK
    assert "exporter/templates/networkpolicy.yaml" not in capsys.readouterr().err
    assert main(["lint", str(root), "--settings", str(settings), "--fail-on", "never"]) == 0
    base = tmp_path / "base"
    base.mkdir()
    assert main(["diff", str(base), str(root), "--settings", str(settings)]) != EXIT_INPUT
    assert "required" not in capsys.readouterr().err


def test_policies_of_one_generate_name_prefix_cite_their_own_rules() -> None:
    policy = TWO_HOOKS.split("---\n")[-1].replace("{name: backend}", "{generateName: backend-}")
    text = policy + "---\n" + policy.replace("phase: pre", "phase: post")
    tree = load_files({"p.yaml": text})
    assert not any(p.exact_lines for p in tree.policies)  # read fast: lines read again
    cited = {p.name: [exact_rule_source(tree, p, r).line for r in p.ingress] for p in tree.policies}
    assert cited == {"backend-{p.yaml#1}": [7], "backend-{p.yaml#2}": [16]}
