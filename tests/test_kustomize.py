"""Kustomize roots rendered with the real ``kubectl kustomize``, traced back to their sources.

The fixture ``tests/fixtures/kustomize/shop`` (written for these tests) has a base and two
overlays: dev replaces the database policy's rules with a strategic merge patch, prod adds a
rule and a peer with a JSON6902 patch, and both set a name prefix and a namespace.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from analysis.errors import ManifestError
from analysis.manifests import build_tree
from analysis.yamldoc import LineDict
from bot.inputs import kustomize, kustomize_build
from bot.inputs.environments import Environment, discover_environments
from bot.inputs.sandbox import Limits, Tools
from bot.inputs.sourcemap import file_of
from tests.filetrees import line_with, read_tree

FIXTURES = Path(__file__).parent / "fixtures" / "kustomize"

needs_kubectl = pytest.mark.skipif(
    shutil.which("kubectl") is None and shutil.which("kustomize") is None,
    reason="neither kubectl nor kustomize is installed",
)


POLICY = (
    b"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: NAME}\n"
    b"spec:\n  podSelector: {}\n"
)


def read_fixture(name: str) -> dict[str, bytes]:
    return read_tree(FIXTURES / name)


def by_name(env: Environment, kind: str, name: str) -> tuple[str, LineDict]:
    for path, obj in env.objects:
        if obj["kind"] == kind and obj["metadata"]["name"] == name:
            assert isinstance(obj, LineDict)  # parsed exactly: it carries lines
            return path, obj
    raise AssertionError(
        f"{kind}/{name} not in {env.name}: {[o['metadata']['name'] for _, o in env.objects]}"
    )


@pytest.fixture(scope="module")
def shop() -> dict[str, bytes]:
    return read_fixture("shop")


@pytest.fixture(scope="module")
def shop_envs(shop: dict[str, bytes]) -> dict[str, Environment]:
    if shutil.which("kubectl") is None and shutil.which("kustomize") is None:
        pytest.skip("neither kubectl nor kustomize is installed")
    return {e.name: e for e in discover_environments(shop)}


@needs_kubectl
def test_default_roots_are_the_overlays_and_the_rest_is_plain(
    shop_envs: dict[str, Environment],
) -> None:
    assert sorted(shop_envs) == ["", "overlays/dev", "overlays/prod"]
    assert [e.kind for e in shop_envs.values()] == ["plain", "kustomize", "kustomize"]
    plain = shop_envs[""]
    # Only the file no kustomization consumes; base files are not counted twice.
    assert {path for path, _ in plain.objects} == {"cluster/monitoring.yaml"}
    assert sorted(o["kind"] for _, o in plain.objects) == ["Deployment", "Namespace"]


@needs_kubectl
def test_overlays_apply_prefix_namespace_and_patches(shop_envs: dict[str, Environment]) -> None:
    prod = shop_envs["overlays/prod"]
    names = sorted(
        (o["metadata"]["namespace"], o["kind"], o["metadata"]["name"]) for _, o in prod.objects
    )
    assert names == [
        ("shop-prod", "Deployment", "prod-db"),
        ("shop-prod", "Deployment", "prod-web"),
        ("shop-prod", "NetworkPolicy", "prod-db"),
    ]
    _, web = by_name(prod, "Deployment", "prod-web")
    assert web["spec"]["replicas"] == 3  # the strategic merge patch on the Deployment
    _, policy = by_name(prod, "NetworkPolicy", "prod-db")
    rules = policy["spec"]["ingress"]
    assert len(rules) == 2
    assert [p["podSelector"]["matchLabels"]["app"] for p in rules[0]["from"]] == ["web", "admin"]
    assert rules[1]["ports"] == [{"protocol": "TCP", "port": "metrics"}]
    # The origin annotation used for tracing is not part of the result.
    assert "annotations" not in policy["metadata"]

    dev = shop_envs["overlays/dev"]
    _, dev_policy = by_name(dev, "NetworkPolicy", "dev-db")
    assert dev_policy["metadata"]["namespace"] == "shop-dev"
    assert [r["from"][0]["podSelector"]["matchLabels"] for r in dev_policy["spec"]["ingress"]] == [
        {"app": "web"},
        {"role": "debug"},
    ]


@needs_kubectl
def test_rendered_objects_build_a_tree(shop_envs: dict[str, Environment]) -> None:
    tree = build_tree(shop_envs["overlays/prod"].objects)
    assert [(p.namespace, p.name) for p in tree.policies] == [("shop-prod", "prod-db")]
    assert {(w.namespace, w.name) for w in tree.workloads} == {
        ("shop-prod", "prod-db"),
        ("shop-prod", "prod-web"),
    }


@needs_kubectl
def test_base_rule_patched_by_an_overlay_keeps_its_base_line(
    shop: dict[str, bytes], shop_envs: dict[str, Environment]
) -> None:
    path, policy = by_name(shop_envs["overlays/prod"], "NetworkPolicy", "prod-db")
    assert path == "base/db-policy.yaml"
    assert policy.line == 1
    rule = policy["spec"]["ingress"][0]
    # The JSON6902 patch added a peer to this rule: the rule itself is still the base's.
    assert file_of(rule, path) == "base/db-policy.yaml"
    assert rule.line == line_with(shop, path, "- from:")
    web_peer, admin_peer = rule["from"]
    assert file_of(web_peer, path) == "base/db-policy.yaml"
    assert web_peer.line == line_with(shop, path, "- podSelector:")
    assert rule["ports"][0].line == line_with(shop, path, "- protocol: TCP")
    # ...while the peer the patch added points into the patch file.
    patch = "overlays/prod/metrics-access.yaml"
    assert file_of(admin_peer, path) == patch
    assert admin_peer.line == line_with(shop, patch, "podSelector:")
    assert policy["spec"]["podSelector"].line == line_with(shop, path, "matchLabels:")


@needs_kubectl
def test_rule_added_by_json6902_patch_points_to_the_patch(
    shop: dict[str, bytes], shop_envs: dict[str, Environment]
) -> None:
    path, policy = by_name(shop_envs["overlays/prod"], "NetworkPolicy", "prod-db")
    added = policy["spec"]["ingress"][1]
    patch = "overlays/prod/metrics-access.yaml"
    assert file_of(added, path) == patch
    assert added.line == line_with(shop, patch, "from:")
    assert file_of(added["ports"][0], path) == patch
    assert added["ports"][0].line == line_with(shop, patch, "- protocol: TCP")
    assert not [n for n in shop_envs["overlays/prod"].notes if "approximate" in n]


@needs_kubectl
def test_rules_replaced_by_strategic_merge_patch(
    shop: dict[str, bytes], shop_envs: dict[str, Environment]
) -> None:
    path, policy = by_name(shop_envs["overlays/dev"], "NetworkPolicy", "dev-db")
    same, debug = policy["spec"]["ingress"]
    # The patch repeats the base rule verbatim: the base's line is where it is defined.
    assert file_of(same, path) == "base/db-policy.yaml"
    assert same.line == line_with(shop, "base/db-policy.yaml", "- from:")
    patch = "overlays/dev/debug-access.yaml"
    assert file_of(debug, path) == patch
    assert debug.line == line_with(shop, patch, "- from:", occurrence=2)
    assert debug["from"][0]["podSelector"]["matchLabels"].line == line_with(
        shop, patch, "role: debug"
    )


@needs_kubectl
def test_workload_lines_point_to_the_base(
    shop: dict[str, bytes], shop_envs: dict[str, Environment]
) -> None:
    path, db = by_name(shop_envs["overlays/dev"], "Deployment", "dev-db")
    assert path == "base/workloads.yaml"
    assert db.line == line_with(shop, path, "apiVersion: apps/v1", occurrence=2)
    ports = db["spec"]["template"]["spec"]["containers"][0]["ports"]
    assert ports[1].line == line_with(shop, path, "containerPort: 9187")


@needs_kubectl
def test_explicit_roots(shop: dict[str, bytes]) -> None:
    envs = discover_environments(shop, kustomize_roots=["./overlays/prod/", "base"])
    assert [e.name for e in envs] == ["", "base", "overlays/prod"]
    _, policy = by_name(envs[1], "NetworkPolicy", "db")
    assert "namespace" not in policy["metadata"]
    with pytest.raises(ManifestError, match="has no kustomization file"):
        discover_environments(shop, kustomize_roots=["overlays/staging"])


def _marker_tool(tmp_path: Path) -> tuple[Tools, Path]:
    """A stand-in for kustomize that records that it ran."""
    marker = tmp_path / "ran"
    script = tmp_path / "kustomize"
    script.write_text(f"#!/bin/sh\ntouch {marker}\necho 'apiVersion: v1'\n")
    script.chmod(0o755)
    return Tools(kustomize=(str(script), "build")), marker


REMOTES = [
    "github.com/acme/shop//base?ref=v1.2.0",
    "https://raw.githubusercontent.com/acme/shop/main/policy.yaml",
    "git::https://example.com/acme/shop.git//base",
    "ssh://git@example.com/acme/shop.git",
    "git@github.com:acme/shop.git/base",
    "file:///etc/kubernetes",
    "../../base?ref=main",
]


@pytest.mark.parametrize("remote", REMOTES)
def test_remote_resource_is_refused_without_running_kustomize(tmp_path: Path, remote: str) -> None:
    tools, marker = _marker_tool(tmp_path)
    files = {
        "base/kustomization.yaml": b"resources: [np.yaml]\n",
        "base/np.yaml": b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
        "overlays/prod/kustomization.yaml": (
            f"namePrefix: prod-\nresources:\n- ../../base\n- {remote}\n".encode()
        ),
    }
    with pytest.raises(ManifestError) as caught:
        discover_environments(files, tools=tools)
    err = caught.value
    assert (err.file, err.line) == ("overlays/prod/kustomization.yaml", 4)
    assert "remote resource" in err.message and "never fetches" in err.message
    assert not marker.exists()


def test_remote_resource_in_an_included_base_is_refused(tmp_path: Path) -> None:
    tools, marker = _marker_tool(tmp_path)
    files = {
        "base/kustomization.yaml": b"components:\n  - ./local\npatches:\n  - path: https://example.com/p.yaml\n",
        "base/local/kustomization.yaml": b"kind: Component\n",
        "overlays/prod/kustomization.yaml": b"resources: [../../base]\n",
    }
    with pytest.raises(ManifestError) as caught:
        discover_environments(files, tools=tools)
    assert (caught.value.file, caught.value.line) == ("base/kustomization.yaml", 4)
    assert "patches[0].path" in caught.value.message
    assert not marker.exists()


def test_path_leaving_the_repository_is_refused(tmp_path: Path) -> None:
    tools, marker = _marker_tool(tmp_path)
    files = {
        "app/kustomization.yaml": b"resources:\n- deploy.yaml\n- ../../../etc/secrets\n",
        "app/deploy.yaml": b"{}",
    }
    with pytest.raises(ManifestError) as caught:
        discover_environments(files, tools=tools)
    assert (caught.value.file, caught.value.line) == ("app/kustomization.yaml", 3)
    assert "outside the repository" in caught.value.message
    assert not marker.exists()


@pytest.mark.parametrize(
    ("text", "line", "expected"),
    [
        (
            b"resources: [a.yaml]\nhelmCharts:\n- name: redis\n  repo: https://charts.example.com\n",
            2,
            "helmCharts",
        ),
        (b"transformers:\n- exec-fn.yaml\n", 2, "KRM function"),
        (b"generators:\n- plugin.yaml\n", 2, "plugin someteam.example.com/v1/SecretsFromVault"),
        (
            b"transformers:\n- |-\n  apiVersion: fn.example.com/v1\n  kind: Mutate\n  metadata:\n"
            b"    name: m\n    annotations:\n      config.kubernetes.io/function: |\n"
            b"        container: {image: evil}\n",
            2,
            "KRM function",
        ),
    ],
)
def test_plugins_functions_and_helm_are_refused(
    tmp_path: Path, text: bytes, line: int, expected: str
) -> None:
    tools, marker = _marker_tool(tmp_path)
    files = {
        "app/kustomization.yaml": text,
        "app/a.yaml": b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
        "app/exec-fn.yaml": (
            b"apiVersion: fn.example.com/v1\nkind: Mutate\nmetadata:\n  name: m\n  annotations:\n"
            b"    config.kubernetes.io/function: |\n      exec: {path: ./run.sh}\n"
        ),
        "app/plugin.yaml": (
            b"apiVersion: someteam.example.com/v1\nkind: SecretsFromVault\nmetadata: {name: s}\n"
        ),
    }
    with pytest.raises(ManifestError) as caught:
        discover_environments(files, tools=tools)
    assert (caught.value.file, caught.value.line) == ("app/kustomization.yaml", line)
    assert expected in caught.value.message
    assert not marker.exists()


@needs_kubectl
def test_builtin_transformer_is_rendered() -> None:
    files = {
        "app/kustomization.yaml": b"resources: [np.yaml]\ntransformers: [prefix.yaml]\n",
        "app/prefix.yaml": (
            b"apiVersion: builtin\nkind: PrefixSuffixTransformer\nmetadata: {name: p}\nprefix: x-\n"
            b"fieldSpecs: [{path: metadata/name}]\n"
        ),
        "app/np.yaml": POLICY.replace(b"NAME", b"deny"),
    }
    (env,) = discover_environments(files)
    assert env.name == "app"
    assert [(p, o["metadata"]["name"]) for p, o in env.objects] == [("app/np.yaml", "x-deny")]


@needs_kubectl
def test_escaping_the_kustomization_root_is_refused_by_the_load_restrictor() -> None:
    files = {
        "shared/policy.yaml": POLICY.replace(b"NAME", b"p"),
        "overlays/prod/kustomization.yaml": (
            b"namespace: prod\nresources:\n- ../../shared/policy.yaml\n"
        ),
    }
    with pytest.raises(ManifestError) as caught:
        discover_environments(files)
    err = caught.value
    assert (err.file, err.line) == ("overlays/prod/kustomization.yaml", 3)
    assert "shared/policy.yaml is outside overlays/prod" in err.message
    assert "load restrictor" in err.message
    assert "reachdiff-render-" not in err.message  # temporary paths are not shown


@needs_kubectl
def test_kustomize_error_is_readable() -> None:
    files = {"app/kustomization.yaml": b"resources:\n- missing.yaml\n"}
    with pytest.raises(ManifestError) as caught:
        discover_environments(files)
    err = caught.value
    assert (err.file, err.line) == ("app/kustomization.yaml", 2)
    assert err.message.startswith("kustomize build of app failed: ")
    assert "missing.yaml" in err.message
    assert "/tmp" not in err.message and "run.go" not in err.message


def test_timeout_stops_kustomize_and_its_children(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    script = tmp_path / "kustomize"
    script.write_text(f"#!/bin/sh\nsleep 60 &\necho $! > {pid_file}\nwait\n")
    script.chmod(0o755)
    files = {"app/kustomization.yaml": b"resources: []\n"}
    with pytest.raises(ManifestError) as caught:
        discover_environments(files, tools=Tools(kustomize=(str(script), "build")), timeout=0.5)
    assert caught.value.file == "app/kustomization.yaml"
    assert "took longer than 0.5 s" in caught.value.message
    child = int(pid_file.read_text())
    status = Path(f"/proc/{child}/status")
    if status.exists():  # reaped lazily where PID 1 does not reap: a zombie is not running
        assert "State:\tZ" in status.read_text()


def test_no_kustomize_installed_leaves_the_root_unanalysed() -> None:
    files = {
        "app/kustomization.yaml": b"resources: [np.yaml]\n",
        "app/np.yaml": b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
        "other.yaml": b"apiVersion: v1\nkind: Namespace\nmetadata: {name: other}\n",
    }
    envs = discover_environments(files, tools=Tools())
    assert [(e.name, e.kind) for e in envs] == [("", "plain"), ("app", "kustomize")]
    assert envs[1].objects == ()
    assert envs[1].unanalysed == (
        "neither kustomize nor kubectl is installed: app was not analysed",
    )
    assert [p for p, _ in envs[0].objects] == ["other.yaml"]


def test_consumed_files_and_default_roots() -> None:
    files = {
        "base/kustomization.yaml": (
            b"resources: [a.yaml, sub]\nconfigMapGenerator:\n- name: c\n  files: [k=conf.yaml]\n"
        ),
        "base/a.yaml": b"{}",
        "base/conf.yaml": b"{}",
        "base/stray.yaml": b"{}",
        "base/sub/Kustomization": b"resources: [b.yaml]\npatchesStrategicMerge:\n- p.yaml\n",
        "base/sub/b.yaml": b"{}",
        "base/sub/p.yaml": b"{}",
        "comp/kustomization.yaml": b"kind: Component\n",
        "overlays/x/kustomization.yml": (
            b"resources: [../../base]\ncomponents: [../../comp]\n"
            b"patchesJson6902:\n- target: {kind: X, name: y}\n  path: ops.yaml\n"
        ),
        "overlays/x/ops.yaml": b"[]",
    }
    ks = kustomize.find_kustomizations(files)
    assert kustomize.default_roots(ks) == ["overlays/x"]
    assert [k.dir for k in kustomize.reachable("overlays/x", ks)] == [
        "overlays/x",
        "base",
        "base/sub",
        "comp",
    ]
    consumed = kustomize.consumed_files(ks, files)
    assert set(files) - consumed == {"base/stray.yaml"}


def test_two_kustomization_files_in_one_directory() -> None:
    files = {"a/kustomization.yaml": b"resources: []\n", "a/kustomization.yml": b"resources: []\n"}
    with pytest.raises(ManifestError, match="more than one kustomization file"):
        kustomize.find_kustomizations(files)


def test_renderer_sees_only_the_given_files_and_no_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "do-not-leak")
    report = tmp_path / "report"
    script = tmp_path / "kustomize"
    script.write_text(
        f'#!/bin/sh\n{{ env; echo ARGS "$@"; cd "$1/.." && find . -type f | sort; }} > {report}\n'
    )
    script.chmod(0o755)
    files = {
        "app/kustomization.yaml": b"resources: [np.yaml]\n",
        "app/np.yaml": b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
        "unrelated/secret.yaml": b"apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n",
    }
    discover_environments(files, tools=Tools(kustomize=(str(script), "build")))
    text = report.read_text()
    assert "do-not-leak" not in text
    assert "HTTPS_PROXY=http://127.0.0.1:9" in text
    assert "GIT_ALLOW_PROTOCOL=reachdiff-none" in text
    home = next(line for line in text.splitlines() if line.startswith("HOME="))
    assert "reachdiff-render-" in home
    assert "--load-restrictor LoadRestrictionsRootOnly" in text
    assert "--enable-alpha-plugins" not in text and "--enable-exec" not in text
    listed = [line for line in text.splitlines() if line.startswith("./")]
    assert listed == ["./app/kustomization.yaml", "./app/np.yaml"]  # not unrelated/secret.yaml


def test_root_kustomization_gets_origin_annotations_only() -> None:
    text = (
        b"# comment\nresources: [a.yaml]\nbuildMetadata: [managedByLabel]\n"
        b"commonLabels: &l {a: b}\nlabels:\n- pairs: *l\n"
    )
    out = kustomize_build.with_origin_annotations("k/kustomization.yaml", text).decode()
    import yaml

    data = yaml.safe_load(out)
    assert data["buildMetadata"] == ["managedByLabel", "originAnnotations"]
    assert data["resources"] == ["a.yaml"] and data["labels"] == [{"pairs": {"a": "b"}}]


def test_origin_paths_are_resolved_against_the_root() -> None:
    obj = LineDict(
        metadata=LineDict(
            name="x",
            annotations=LineDict({kustomize.ORIGIN_ANNOTATION: "path: ../../base/np.yaml\n"}),
        )
    )
    assert kustomize_build.origin_of(obj, "overlays/prod") == ("base/np.yaml", False)
    kustomize_build.strip_origin(obj)
    assert "annotations" not in obj["metadata"]
    generated = LineDict(
        metadata=LineDict(
            annotations=LineDict(
                {
                    kustomize.ORIGIN_ANNOTATION: (
                        "configuredIn: kustomization.yaml\nconfiguredBy: {kind: X}\n"
                    )
                }
            )
        )
    )
    assert kustomize_build.origin_of(generated, "app") == ("app/kustomization.yaml", True)


@pytest.mark.parametrize(
    "value",
    ["base", "../base", "./patch.yaml", "deploy.git.yaml", "a/b", "k=v.yaml"],
)
def test_local_paths_are_not_remote(value: str) -> None:
    assert not kustomize.is_remote(value)


@pytest.mark.parametrize("value", REMOTES)
def test_remote_forms(value: str) -> None:
    assert kustomize.is_remote(value)


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs /proc")
def test_memory_bound_stops_a_greedy_renderer(tmp_path: Path) -> None:
    import sys

    script = tmp_path / "kustomize"
    script.write_text(f"#!{sys.executable}\nblob = bytearray(1 << 30)\n")
    script.chmod(0o755)
    files = {"app/kustomization.yaml": b"resources: []\n"}
    with pytest.raises(ManifestError) as caught:
        discover_environments(
            files,
            tools=Tools(kustomize=(str(script), "build")),
            limits=Limits(memory_bytes=256 << 20),
        )
    assert "kustomize build of app" in caught.value.message
    assert "MemoryError" in caught.value.message


def test_output_bound(tmp_path: Path) -> None:
    script = tmp_path / "kustomize"
    script.write_text("#!/bin/sh\nhead -c 3000000 /dev/zero | tr '\\0' 'a'\n")
    script.chmod(0o755)
    files = {"app/kustomization.yaml": b"resources: []\n"}
    with pytest.raises(ManifestError, match="more than 1 MiB of output"):
        discover_environments(
            files,
            tools=Tools(kustomize=(str(script), "build")),
            limits=Limits(output_bytes=1 << 20),
        )
