"""Helm charts: rendered with a real ``helm`` when one is installed, else checked with a fake.

The fixture ``tests/fixtures/helm/shop`` (written for these tests) holds the chart
``charts/shop`` with a vendored subchart and a test hook, values for production under
``environments/``, and ``charts/legacy``, whose dependency is not vendored.

The real-binary tests skip when ``helm`` is not on PATH; the fake-``helm`` tests always run
and pin the command line, the refusals and the error path.
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path
from typing import Any

import pytest

from analysis.errors import ManifestError
from analysis.manifests import build_tree
from analysis.yamldoc import LineDict
from bot.inputs import helm
from bot.inputs.environments import Environment, discover_environments
from bot.inputs.sandbox import Tools
from tests.filetrees import line_with, read_tree

FIXTURES = Path(__file__).parent / "fixtures" / "helm"
HELM = shutil.which("helm")
needs_helm = pytest.mark.skipif(HELM is None, reason="helm is not installed")


def read_fixture(name: str) -> dict[str, bytes]:
    return read_tree(FIXTURES / name)


def envs_by_name(envs: list[Environment]) -> dict[str, Environment]:
    return {e.name: e for e in envs}


def find(env: Environment, kind: str) -> tuple[str, LineDict]:
    matches = [(p, o) for p, o in env.objects if o["kind"] == kind]
    assert len(matches) == 1, matches
    path, obj = matches[0]
    assert isinstance(obj, LineDict)  # parsed exactly: it carries lines
    return path, obj


@pytest.fixture(scope="module")
def shop() -> dict[str, bytes]:
    return read_fixture("shop")


# --- with the real helm -----------------------------------------------------------------


@needs_helm
def test_chart_rendered_with_values_and_namespace(shop: dict[str, bytes]) -> None:
    envs = envs_by_name(
        discover_environments(
            shop,
            helm_values={"charts/shop": ["environments/prod-values.yaml"]},
            helm_namespaces={"charts/shop": "shop-prod"},
        )
    )
    assert sorted(envs) == ["", "charts/legacy", "charts/shop"]
    chart = envs["charts/shop"]
    assert chart.kind == "helm" and chart.unanalysed == ()
    kinds = sorted((o["kind"], o["metadata"]["name"]) for _, o in chart.objects)
    # The test hook is skipped; the vendored subchart is rendered.
    assert kinds == [
        ("Deployment", "shop-shop-storefront"),
        ("NetworkPolicy", "shop-shop-db"),
        ("StatefulSet", "shop-cache"),
    ]
    path, policy = find(chart, "NetworkPolicy")
    assert path == "charts/shop/templates/networkpolicy.yaml"
    assert policy["metadata"]["namespace"] == "shop-prod"
    peers = [r["from"][0] for r in policy["spec"]["ingress"]]
    assert [p.get("namespaceSelector", {}).get("matchLabels") for p in peers[1:]] == [
        {"kubernetes.io/metadata.name": "monitoring"},
        {"kubernetes.io/metadata.name": "batch"},
    ]
    tree = build_tree(chart.objects)
    assert [(p.namespace, p.name) for p in tree.policies] == [("shop-prod", "shop-shop-db")]
    assert any("approximate" in n for n in chart.notes)
    sub_path, _ = find(chart, "StatefulSet")
    assert sub_path == "charts/shop/charts/cache/templates/statefulset.yaml"
    # Chart files and values files are not plain manifests.
    assert [p for p, _ in envs[""].objects] == ["namespaces.yaml"]


@needs_helm
def test_chart_lines_point_into_the_template(shop: dict[str, bytes]) -> None:
    envs = envs_by_name(
        discover_environments(shop, helm_values={"charts/shop": ["environments/prod-values.yaml"]})
    )
    path, policy = find(envs["charts/shop"], "NetworkPolicy")
    first, monitoring, batch = policy["spec"]["ingress"]
    assert first.line == line_with(shop, path, "- from:", 1)
    # Both rules of the `range` loop come from the loop body.
    assert monitoring.line == line_with(shop, path, "- from:", 2)
    assert batch.line == line_with(shop, path, "- from:", 2)
    assert first["ports"][0].line == line_with(shop, path, "- protocol: TCP", 1)
    assert policy["spec"]["podSelector"].line == line_with(shop, path, "matchLabels:", 1)


@needs_helm
def test_unvendored_dependency_is_reported_not_analysed(shop: dict[str, bytes]) -> None:
    legacy = envs_by_name(discover_environments(shop))["charts/legacy"]
    assert legacy.objects == ()
    (reason,) = legacy.unanalysed
    assert "chart charts/legacy was not analysed" in reason
    assert "postgresql from https://charts.example.com/stable" in reason
    assert "not vendored" in reason


@needs_helm
def test_template_error_names_the_template_and_line(shop: dict[str, bytes]) -> None:
    broken = dict(shop)
    template = "charts/shop/templates/deployment.yaml"
    broken[template] = shop[template] + b"---\n# extra\nvalue: {{ .Values.missing.field }}\n"
    with pytest.raises(ManifestError) as caught:
        discover_environments(broken)
    err = caught.value
    assert err.file == template
    assert err.line == len(broken[template].decode().splitlines())
    assert "nil pointer" in err.message
    assert "reachdiff-render-" not in err.message


# --- with a fake helm, always -----------------------------------------------------------

FAKE_OUTPUT = """\
---
# Source: shop/templates/networkpolicy.yaml
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: shop-shop-db
spec:
  podSelector:
    matchLabels:
      app: db
  ingress:
  - from:
    - podSelector:
        matchLabels:
          app: storefront
"""


def fake_helm(tmp_path: Path, *, version: str = "v3.14.0", template: str = "") -> tuple[str, Path]:
    """A ``helm`` that records each command line and answers ``version`` and ``template``."""
    log = tmp_path / "helm.log"
    out = tmp_path / "helm.out"
    out.write_text(FAKE_OUTPUT)
    script = tmp_path / "helm"
    body = template or f'cat "{out}"'
    script.write_text(
        textwrap.dedent(
            f"""\
            #!/bin/sh
            echo "$@" >> "{log}"
            case "$1" in
              version) echo "{version}+gabc" ;;
              template) {body} ;;
            esac
            """
        )
    )
    script.chmod(0o755)
    return str(script), log


def template_calls(log: Path) -> list[str]:
    """The ``helm template`` command lines a fake helm was run with."""
    return [line for line in log.read_text().splitlines() if line.startswith("template")]


def helm_error(
    shop: dict[str, bytes], tmp_path: Path, template: str = "", **options: Any
) -> ManifestError:
    """What reading ``shop`` raises with a fake helm whose ``template`` runs the shell
    ``template`` (default: a good rendering); ``options``: more arguments of
    ``discover_environments``."""
    binary, _ = fake_helm(tmp_path, template=template)
    with pytest.raises(ManifestError) as caught:
        discover_environments(shop, tools=Tools(helm=binary), **options)
    return caught.value


def test_command_line(shop: dict[str, bytes], tmp_path: Path) -> None:
    binary, log = fake_helm(tmp_path)
    tools = Tools(helm=binary, isolate_network=False)
    envs = envs_by_name(
        discover_environments(
            shop,
            tools=tools,
            helm_values={"./charts/shop/": ["environments/prod-values.yaml", "values.yaml"]},
            helm_namespaces={"charts/shop": "shop-prod"},
        )
    )
    template = [line.split() for line in template_calls(log)]
    assert len(template) == 1  # charts/legacy is never rendered: its dependency is missing
    argv = template[0]
    assert argv[:2] == ["template", "shop"]
    assert argv[2].endswith("/tree/charts/shop") and "reachdiff-render-" in argv[2]
    assert argv[3:] == [
        "--namespace",
        "shop-prod",
        "--skip-tests",
        "--kube-version",
        helm.KUBE_VERSION,
        "--values",
        argv[2].removesuffix("charts/shop") + "environments/prod-values.yaml",
        "--values",
        argv[2] + "/values.yaml",  # relative to the chart
    ]
    assert not any("dependency" in a or a == "--repo" for a in argv)
    path, policy = find(envs["charts/shop"], "NetworkPolicy")
    assert path == "charts/shop/templates/networkpolicy.yaml"
    assert policy["spec"]["ingress"][0].line == line_with(shop, path, "- from:")


def test_old_helm_without_network_isolation_is_not_run(
    shop: dict[str, bytes], tmp_path: Path
) -> None:
    helm.helm_version.cache_clear()
    binary, log = fake_helm(tmp_path, version="v3.6.2")
    envs = envs_by_name(
        discover_environments(shop, tools=Tools(helm=binary, isolate_network=False))
    )
    (reason,) = envs["charts/shop"].unanalysed
    assert "helm 3.6.2 lets templates make DNS lookups" in reason
    assert not template_calls(log)


def test_old_helm_runs_where_the_network_is_isolated(
    shop: dict[str, bytes], tmp_path: Path
) -> None:
    helm.helm_version.cache_clear()
    binary, log = fake_helm(tmp_path, version="v3.6.2")
    if not Tools.detect().isolate_network:
        pytest.skip("network namespaces are not available here")
    envs = envs_by_name(discover_environments(shop, tools=Tools(helm=binary, isolate_network=True)))
    assert envs["charts/shop"].unanalysed == ()
    assert template_calls(log)


def test_helm_older_than_the_kube_version_flag_keeps_its_default(
    shop: dict[str, bytes], tmp_path: Path
) -> None:
    helm.helm_version.cache_clear()
    binary, log = fake_helm(tmp_path, version="v3.5.4")
    if not Tools.detect().isolate_network:
        pytest.skip("network namespaces are not available here")
    discover_environments(shop, tools=Tools(helm=binary, isolate_network=True))
    helm.helm_version.cache_clear()
    template = template_calls(log)
    assert template and not any("--kube-version" in line for line in template)


# Modelled on stefanprodan/podinfo charts/podinfo/Chart.yaml (commit
# eec06d1ea459af4cb4e10e806f8be7c7bd58b361, Apache-2.0): `kubeVersion: ">=1.23.0-0"`, which
# helm 3.6.2's own default (v1.20.0) refuses, so the whole chart was not analysed.
KUBE_VERSION_CHART = {
    "charts/podinfo/Chart.yaml": b"""\
apiVersion: v1
version: 6.14.1
appVersion: 6.14.1
name: podinfo
kubeVersion: ">=1.23.0-0"
""",
    "charts/podinfo/templates/networkpolicy.yaml": b"""\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ .Release.Name }}
  labels:
    kube: {{ .Capabilities.KubeVersion.Version | quote }}
spec:
  podSelector: {matchLabels: {app: podinfo}}
  ingress:
  - ports: [{port: 9898}]
""",
}


@needs_helm
def test_charts_render_against_one_current_kubernetes_version() -> None:
    helm.helm_version.cache_clear()
    tools = Tools(helm=HELM, isolate_network=Tools.detect().isolate_network)
    [env] = discover_environments(KUBE_VERSION_CHART, tools=tools)
    assert env.unanalysed == ()
    _, policy = find(env, "NetworkPolicy")
    assert policy["metadata"]["labels"]["kube"] == helm.KUBE_VERSION


def test_helm_not_installed(shop: dict[str, bytes]) -> None:
    envs = envs_by_name(discover_environments(shop, tools=Tools(helm=None)))
    assert envs["charts/shop"].objects == ()
    assert envs["charts/shop"].unanalysed == (
        "helm is not installed: chart charts/shop was not analysed",
    )
    assert envs["charts/legacy"].unanalysed == (
        "helm is not installed: chart charts/legacy was not analysed",
    )
    assert [p for p, _ in envs[""].objects] == ["namespaces.yaml"]


def test_helm_error_becomes_a_manifest_error(shop: dict[str, bytes], tmp_path: Path) -> None:
    failing = (
        "echo 'Error: template: shop/templates/networkpolicy.yaml:18:21: executing "
        '"shop/templates/networkpolicy.yaml" at <.Values.db.port>: nil pointer\' >&2; '
        "echo 'Use --debug flag to render out invalid YAML' >&2; exit 1"
    )
    err = helm_error(shop, tmp_path, failing)
    assert (err.file, err.line) == ("charts/shop/templates/networkpolicy.yaml", 18)
    assert err.message.startswith("helm template of charts/shop failed: template: ")
    assert "--debug" not in err.message


def test_a_required_value_names_its_template_line_and_the_setting(
    shop: dict[str, bytes], tmp_path: Path
) -> None:
    # prometheus-community/helm-charts charts/prometheus-postgres-exporter (commit
    # cf408a290aec489277a94450bb3511432477a53a, Apache-2.0) `required`s a password: the
    # error was blamed on Chart.yaml:1 behind client-go's kubeconfig warnings.
    failing = (
        "echo 'W1202 16:21:27.973258    7289 loader.go:221] Config not found: "
        "$HOME/no-kubeconfig' >&2; "
        "echo 'Error: execution error at (shop/templates/networkpolicy.yaml:2:9): "
        "config.datasource.password is required' >&2; exit 1"
    )
    err = helm_error(shop, tmp_path, failing)
    assert (err.file, err.line) == ("charts/shop/templates/networkpolicy.yaml", 2)
    assert "Config not found" not in err.message
    assert "config.datasource.password is required" in err.message
    assert "under `helm_values` in .github/reachdiff.yml" in err.message


def test_helm_timeout(shop: dict[str, bytes], tmp_path: Path) -> None:
    err = helm_error(shop, tmp_path, "sleep 30", timeout=0.5)
    assert "took longer than 0.5 s" in err.message


def test_missing_values_file(shop: dict[str, bytes], tmp_path: Path) -> None:
    err = helm_error(shop, tmp_path, helm_values={"charts/shop": ["nope.yaml"]})
    assert "values file 'nope.yaml'" in err.message


def test_chart_discovery_and_dependencies(shop: dict[str, bytes]) -> None:
    assert helm.chart_dirs(shop) == ["charts/legacy", "charts/shop"]  # not the subchart
    assert helm.missing_dependencies("charts/shop", shop) == []
    assert helm.missing_dependencies("charts/legacy", shop) == [
        "postgresql from https://charts.example.com/stable"
    ]
    archived = {**shop, "charts/legacy/charts/postgresql-12.1.0.tgz": b"\x1f\x8b"}
    assert helm.missing_dependencies("charts/legacy", archived) == []


@pytest.mark.parametrize(
    ("directory", "release"),
    [("charts/shop", "shop"), ("", "release"), ("apps/My_App", "my-app"), ("x/--", "release")],
)
def test_release_name(directory: str, release: str) -> None:
    assert helm.release_name(directory) == release


def test_source_paths_map_subchart_names_to_directories(shop: dict[str, bytes]) -> None:
    chart = helm.Chart("charts/shop", "shop")
    assert (
        helm.source_path("shop/charts/cache/templates/statefulset.yaml", chart, shop)
        == "charts/shop/charts/cache/templates/statefulset.yaml"
    )
    assert helm.source_path("other/templates/x.yaml", chart, shop) is None


def test_documents_alike_at_the_top_are_traced_to_their_own_template_document() -> None:
    # Two NetworkPolicies of one template start alike; the second is cited at its own
    # apiVersion line, not at the first document's (no helm needed: the output is given).
    template = textwrap.dedent(
        """\
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata:
          name: {{ .Release.Name }}-cache
        spec:
          podSelector: {matchLabels: {component: cache}}
        ---
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata:
          name: {{ .Release.Name }}-server
        spec:
          podSelector: {matchLabels: {component: server}}
        """
    )
    files = {"charts/web/templates/np.yaml": template.encode()}
    output = textwrap.dedent(
        """\
        ---
        # Source: web/templates/np.yaml
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata:
          name: web-cache
        spec:
          podSelector: {matchLabels: {component: cache}}
        ---
        # Source: web/templates/np.yaml
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata:
          name: web-server
        spec:
          podSelector: {matchLabels: {component: server}}
        """
    )
    traced = helm.trace_sources(output, helm.Chart("charts/web", "web"), files)
    assert [(path, obj["metadata"]["name"], obj.line) for path, obj in traced] == [
        ("charts/web/templates/np.yaml", "web-cache", 1),
        ("charts/web/templates/np.yaml", "web-server", 8),
    ]
    assert traced[1][1]["spec"]["podSelector"].line == 13
