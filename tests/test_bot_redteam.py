"""Adversarial pull requests: each one widens access in a way an earlier reader missed.

Every test is a pull request an attacker with write access could open, reviewed end to end
by the real app against the fake GitHub; the check must not pass, and the review must not
call the change unchanged. docs/bot.md's threat model lists what each one is.
"""

from __future__ import annotations

import shutil

import pytest

from tests.botharness import (
    HEAD,
    WORKLOADS,
    Harness,
    MakeHarness,
    base_tree,
    review,
    setup_pull,
)

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


CHART = {
    "charts/shop/Chart.yaml": b"apiVersion: v2\nname: shop\nversion: 0.1.0\n",
    "charts/shop/templates/web.yaml": b"""\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: nginx}]
""",
    "charts/shop/templates/deny.yaml": b"""\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny, namespace: shop}
spec: {podSelector: {}, policyTypes: [Ingress]}
""",
}


@pytest.mark.skipif(shutil.which("helm") is None, reason="helm is not installed")
async def test_a_helmignore_that_drops_the_default_deny_is_rendered_as_helm_renders_it(
    harness: Harness,
) -> None:
    # helm template leaves out what .helmignore names: the chart loses its default-deny.
    # A reader that skips hidden files rendered the deny all the same: "unchanged".
    head = {**CHART, "charts/shop/.helmignore": b"# not ours\ntemplates/deny.yaml\n"}
    setup_pull(harness.fake, head, base_files=CHART)
    body = await assert_not_passed(harness)
    assert "default-deny" in body and "shop/Deployment/web" in body


@pytest.mark.skipif(shutil.which("helm") is None, reason="helm is not installed")
async def test_a_chart_file_its_templates_read_is_not_analysed_when_not_read(
    harness: Harness,
) -> None:
    # The template keeps its default-deny until a flag file exists; the readers keep only
    # manifests and render inputs, so the render never saw the file the pull request adds.
    base = {
        **CHART,
        "charts/shop/templates/deny.yaml": b'{{- if not (.Files.Get "open.flag") }}\n'
        + CHART["charts/shop/templates/deny.yaml"]
        + b"{{- end }}\n",
    }
    setup_pull(harness.fake, {**base, "charts/shop/open.flag": b"yes\n"}, base_files=base)
    body = await assert_not_passed(harness)
    assert "charts/shop/open.flag" in body
    assert "its templates may read" in body


async def test_argo_cd_parameter_overrides_are_not_analysed(harness: Harness) -> None:
    # Argo CD merges .argocd-source.yaml into the Application's source (Helm parameters and
    # values, Kustomize patches): hidden, it was never read, and the review said unchanged.
    override = b"helm:\n  parameters:\n  - name: networkPolicy.enabled\n    value: 'false'\n"
    setup_pull(harness.fake, base_tree(**{"apps/.argocd-source-shop.yaml": override}))
    body = await assert_not_passed(harness)
    assert "apps/.argocd-source-shop.yaml" in body and "parameter overrides" in body


async def test_a_hidden_manifest_file_holding_a_policy_is_not_analysed(harness: Harness) -> None:
    # kubectl apply -R and Argo CD directory applications apply `.open-db.yaml`; every
    # reader skips hidden names, so the review said unchanged.
    hidden = OPEN_DB.format(kind="NetworkPolicy").encode()
    head = base_tree(
        **{
            "policies/.open-db.yaml": hidden,
            ".github/workflows/ci.yml": b"on: push\njobs: {}\n",  # tooling: not reported
            "policies/.yamllint.yaml": b"extends: default\n",
        }
    )
    setup_pull(harness.fake, head)
    body = await assert_not_passed(harness)
    assert "policies/.open-db.yaml" in body and "NetworkPolicy shop/open-db" in body
    assert "ci.yml" not in body and ".yamllint" not in body


async def test_a_policy_behind_a_lone_carriage_return_in_an_oversized_file_is_not_set_aside(
    make_harness: MakeHarness,
) -> None:
    # Over the file limit, the bodies of ConfigMaps and the like are blanked by a scan of
    # LF-separated lines. A lone CR is a line break to every YAML reader: behind it, the
    # "ConfigMap" repeats apiVersion and kind (the last one wins) and carries a spec.
    harness = await make_harness(max_file_bytes=2048)
    padding = "".join(f"  k{i}: {'x' * 60}\n" for i in range(60))
    bundle = (
        f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: pad, namespace: shop}}\ndata:\n"
        f"{padding}---\napiVersion: v1\nkind: ConfigMap\n"
        "metadata: {name: open-db, namespace: shop}\n"
        "data: {}\rapiVersion: networking.k8s.io/v1\rkind: NetworkPolicy\r"
        "spec: {podSelector: {matchLabels: {app: db}}, ingress: [{}]}\n"
    )
    setup_pull(harness.fake, base_tree(**{"vendor/bundle.yaml": bundle.encode()}))
    body = await assert_not_passed(harness)
    # Left whole, the file is over the limit: refused, naming it.
    assert "vendor/bundle.yaml" in body and "split the file" in body


async def test_an_oversized_bundle_set_aside_is_analysed_not_taken_for_an_export_filter(
    make_harness: MakeHarness,
) -> None:
    # Its kept bytes (bodies blanked) are not the committed blob, but its archived bytes
    # are: comparing those, the file is analysed, and the policy in it seen.
    harness = await make_harness(max_file_bytes=2048)
    padding = "".join(f"  k{i}: {'x' * 60}\n" for i in range(60))
    bundle = (
        f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: pad, namespace: shop}}\ndata:\n"
        f"{padding}---\n" + OPEN_DB.format(kind="NetworkPolicy")
    )
    setup_pull(harness.fake, base_tree(**{"vendor/bundle.yaml": bundle.encode()}))
    body = await assert_not_passed(harness)
    assert "not the committed file" not in body and "open-db" in body


FLUX = """\
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {{name: apps, namespace: flux-system}}
spec:
  interval: {interval}
  path: ./policies
  prune: true
  sourceRef: {{kind: GitRepository, name: flux-system}}
{extra}"""
# A patch Flux applies to every NetworkPolicy under ./policies: db admits every pod.
PATCHES = """\
  patches:
  - target: {kind: NetworkPolicy}
    patch: |
      - op: replace
        path: /spec/ingress
        value: [{}]
"""


async def test_patches_added_to_a_flux_kustomization_are_not_analysed(harness: Harness) -> None:
    # Flux applies ./policies with these patches; reachdiff renders the path with kustomize
    # alone, so the widening was invisible and the review said unchanged.
    base = base_tree(**{"clusters/apps.yaml": FLUX.format(interval="10m", extra="").encode()})
    head = base_tree(**{"clusters/apps.yaml": FLUX.format(interval="10m", extra=PATCHES).encode()})
    setup_pull(harness.fake, head, base_files=base)
    body = await assert_not_passed(harness)
    assert "flux-system/apps" in body and "Kustomization.kustomize.toolkit.fluxcd.io" in body


async def test_a_flux_kustomization_changed_elsewhere_is_no_finding(harness: Harness) -> None:
    base = base_tree(**{"clusters/apps.yaml": FLUX.format(interval="10m", extra=PATCHES).encode()})
    head = base_tree(**{"clusters/apps.yaml": FLUX.format(interval="1h", extra=PATCHES).encode()})
    setup_pull(harness.fake, head, base_files=base)
    await review(harness)
    assert harness.check(HEAD)["conclusion"] == "success"


@pytest.mark.skipif(shutil.which("helm") is None, reason="helm is not installed")
async def test_an_edited_values_file_no_render_uses_is_not_analysed(harness: Harness) -> None:
    # An Argo CD Application deploys the chart with values-prod.yaml; without helm_values
    # naming it the chart was rendered with values.yaml alone: `deny: false` was unseen.
    deny = b"{{- if .Values.deny }}\n" + CHART["charts/shop/templates/deny.yaml"] + b"{{- end }}\n"
    base = {
        **CHART,
        "charts/shop/templates/deny.yaml": deny,
        "charts/shop/values.yaml": b"deny: true\n",
        "charts/shop/values-prod.yaml": b"deny: true\n",
    }
    setup_pull(
        harness.fake, {**base, "charts/shop/values-prod.yaml": b"deny: false\n"}, base_files=base
    )
    body = await assert_not_passed(harness)
    assert "charts/shop/values-prod.yaml" in body and "renders the chart with" in body


async def test_an_overlay_outside_explicit_kustomize_roots_changed_is_not_analysed(
    harness: Harness,
) -> None:
    # Only overlays/prod is rendered; a new overlay patching the shared base (deployed by
    # an Application or Flux Kustomization pointing at it) was rendered by nobody.
    deny = (
        b"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
        b"metadata: {name: deny, namespace: shop}\n"
        b"spec: {podSelector: {}, policyTypes: [Ingress]}\n"
    )
    base = {
        ".github/reachdiff.yml": b"kustomize_roots: [overlays/prod]\n",
        "base/kustomization.yaml": b"resources: [shop.yaml, deny.yaml]\n",
        "base/shop.yaml": WORKLOADS,
        "base/deny.yaml": deny,
        "overlays/prod/kustomization.yaml": b"resources: [../../base]\n",
    }
    evil = (
        b"resources: [../../base]\npatches:\n- target: {kind: NetworkPolicy}\n  patch: |-\n"
        b"    - op: add\n      path: /spec/ingress\n      value: [{}]\n"
    )
    setup_pull(harness.fake, {**base, "overlays/evil/kustomization.yaml": evil}, base_files=base)
    body = await assert_not_passed(harness)
    assert "overlays/evil" in body and "kustomize" in body
