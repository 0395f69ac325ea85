"""Environments of a whole tree, the sandbox renderers run in, and line transplanting."""

from __future__ import annotations

import shutil
import socket
import sys
import threading
import time
from pathlib import Path

import pytest

from analysis.errors import ManifestError
from analysis.yamldoc import LineDict, YMap, parse_documents
from bot.inputs import kustomize_build
from bot.inputs.environments import discover_environments
from bot.inputs.files import read_directory
from bot.inputs.sandbox import (
    DEAD_PROXY,
    Limits,
    ToolError,
    Tools,
    checked_relative,
    normalise,
    readable_error,
    run_tool,
    workspace,
)
from bot.inputs.sourcemap import (
    Digests,
    Fragments,
    Located,
    file_of,
    json_pointer_pattern,
    transplant,
)

needs_kubectl = pytest.mark.skipif(
    shutil.which("kubectl") is None and shutil.which("kustomize") is None,
    reason="neither kubectl nor kustomize is installed",
)

NAMESPACE = b"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: NAME\n"


def doc(text: str) -> LineDict:
    (first,) = parse_documents(text)
    assert isinstance(first.data, LineDict)
    return first.data


def line_of(obj: YMap) -> int:
    assert isinstance(obj, LineDict)  # parsed exactly: it carries its line
    return obj.line


# --- discovering environments -----------------------------------------------------------


def test_plain_tree_is_one_plain_environment() -> None:
    files = {
        "a.yaml": NAMESPACE.replace(b"NAME", b"a"),
        "dir/b.yml": NAMESPACE.replace(b"NAME", b"b") + b"---\n" + NAMESPACE.replace(b"NAME", b"c"),
        "README.md": b"# not a manifest",
        "values.json": b'{"replicas": 3}',
    }
    (env,) = discover_environments(files, tools=Tools())
    assert (env.name, env.kind, env.notes, env.unanalysed) == ("", "plain", (), ())
    assert [(p, o["metadata"]["name"], line_of(o)) for p, o in env.objects] == [
        ("a.yaml", "a", 1),
        ("dir/b.yml", "b", 1),
        ("dir/b.yml", "c", 6),
    ]


def test_empty_tree_still_has_the_plain_environment() -> None:
    (env,) = discover_environments({}, tools=Tools())
    assert (env.name, env.objects) == ("", ())


def test_invalid_plain_manifest_names_file_and_line() -> None:
    files = {"ns.yaml": b"apiVersion: v1\nkind: Namespace\nmetadata: [\n"}
    with pytest.raises(ManifestError) as caught:
        discover_environments(files, tools=Tools())
    assert caught.value.file == "ns.yaml"


@needs_kubectl
def test_mixed_repository() -> None:
    files = {
        "clusters/ns.yaml": NAMESPACE.replace(b"NAME", b"web"),
        "apps/web/kustomization.yaml": b"namespace: web\nresources:\n- policy.yaml\n",
        "apps/web/policy.yaml": (
            b"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: deny\n"
            b"spec:\n  podSelector: {}\n"
        ),
        "apps/web/notes.yaml": NAMESPACE.replace(b"NAME", b"stray"),
        "charts/api/Chart.yaml": b"apiVersion: v2\nname: api\nversion: 1.0.0\n",
        "charts/api/templates/np.yaml": b"kind: {{ .Values.kind }}\n",
        "charts/api/values.yaml": b"kind: NetworkPolicy\n",
    }
    envs = discover_environments(files, tools=Tools.detect("/usr/bin:/bin"))
    assert [(e.name, e.kind) for e in envs] == [
        ("", "plain"),
        ("apps/web", "kustomize"),
        ("charts/api", "helm"),
    ]
    plain, web, api = envs
    # A file next to a kustomization that it does not name is still a plain manifest.
    assert [p for p, _ in plain.objects] == ["apps/web/notes.yaml", "clusters/ns.yaml"]
    assert [(p, o["metadata"]["namespace"]) for p, o in web.objects] == [
        ("apps/web/policy.yaml", "web")
    ]
    if Tools.detect("/usr/bin:/bin").helm is None:
        assert api.unanalysed == ("helm is not installed: chart charts/api was not analysed",)


@needs_kubectl
def test_kustomization_at_the_repository_root() -> None:
    files = {
        "kustomization.yaml": b"namePrefix: x-\nresources: [apps/ns.yaml]\n",
        "apps/ns.yaml": NAMESPACE.replace(b"NAME", b"web")
        + b"---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\n",
    }
    (env,) = discover_environments(files)
    assert (env.name, env.kind) == (".", "kustomize")
    # kustomize never prefixes Namespaces; the ConfigMap is found in spite of its prefix.
    assert sorted((p, o["metadata"]["name"], line_of(o)) for p, o in env.objects) == [
        ("apps/ns.yaml", "web", 1),
        ("apps/ns.yaml", "x-web", 6),
    ]


@needs_kubectl
def test_generated_objects_point_to_their_kustomization() -> None:
    files = {
        "app/kustomization.yaml": b"configMapGenerator:\n- name: settings\n  literals: [a=b]\n",
    }
    (env,) = discover_environments(files)
    ((path, obj),) = env.objects
    assert path == "app/kustomization.yaml"
    assert obj["kind"] == "ConfigMap" and obj["metadata"]["name"].startswith("settings-")
    assert "annotations" not in obj["metadata"]


# --- the sandbox ------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["", "/etc/passwd", "../x", "a/../../x", "a//b", "./a", "a\\b"])
def test_workspace_refuses_paths_outside_the_tree(path: str) -> None:
    with pytest.raises(ValueError):
        checked_relative(path)


def test_normalise() -> None:
    assert normalise("overlays/prod", "../../base") == "base"
    assert normalise("overlays/prod", "./patch.yaml") == "overlays/prod/patch.yaml"
    assert normalise("", ".") == ""
    assert normalise("a", "../../x") is None
    assert normalise("a", "/etc") is None


def test_readable_error_strips_klog_and_prefixes() -> None:
    stderr = (
        'E1121 23:34:03.873124   15663 run.go:72] "command failed" err="accumulating '
        "resources: 'x' not found\"\n"
        'Error: something \\"quoted\\"\n'
    )
    assert (
        readable_error(stderr, 200)
        == "accumulating resources: 'x' not found; something \\\"quoted\\\""
    )
    assert readable_error("x" * 50, 10) == "x" * 9 + "…"


def test_tool_error_scrubs_temporary_paths(tmp_path: Path) -> None:
    script = tmp_path / "tool"
    script.write_text('#!/bin/sh\necho "Error: cannot read $PWD/app/x.yaml in $HOME" >&2\nexit 3\n')
    script.chmod(0o755)
    with workspace({"app/x.yaml": b"{}"}, ["app/x.yaml"]) as ws, pytest.raises(ToolError) as caught:
        run_tool([str(script)], ws, what="tool", limits=Limits(), isolate_network=False)
    assert caught.value.message == "tool failed: cannot read app/x.yaml in $HOME"


def test_workspace_refuses_a_file_that_is_also_a_directory() -> None:
    files = {"a/b": b"x", "a": b"y"}
    with pytest.raises(ManifestError) as caught, workspace(files, files):
        pass
    assert caught.value.file == "a/b"
    with (
        pytest.raises(ManifestError, match="cannot be rendered"),
        workspace({"../x": b""}, ["../x"]),
    ):
        pass


def test_workspace_is_removed_afterwards() -> None:
    with workspace({"a/b.yaml": b"x"}, ["a/b.yaml"]) as ws:
        root = ws.root
        assert (ws.tree / "a" / "b.yaml").read_bytes() == b"x"
    assert not root.exists()


def test_proxy_variables_point_nowhere(tmp_path: Path) -> None:
    with workspace({}, []) as ws:
        done = run_tool(
            ["/bin/sh", "-c", "echo $HTTPS_PROXY $HOME $KUBECONFIG"],
            ws,
            what="env",
            limits=Limits(),
            isolate_network=False,
        )
    proxy, home, kubeconfig = done.stdout.split()
    assert proxy == DEAD_PROXY
    assert home.startswith(str(ws.root)) and kubeconfig.startswith(home)


@pytest.mark.skipif(not Tools.detect().isolate_network, reason="no network namespaces here")
def test_network_isolation_blocks_even_loopback(tmp_path: Path) -> None:
    accepted: list[object] = []
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    port = server.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            accepted.append(conn)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    script = tmp_path / "tool"
    script.write_text(
        f"#!{sys.executable}\nimport socket\n"
        "try:\n"
        f"    socket.create_connection(('127.0.0.1', {port}), timeout=2).close()\n"
        "    print('connected')\n"
        "except OSError as exc:\n"
        "    print('blocked', exc.errno)\n"
    )
    script.chmod(0o755)
    try:
        with workspace({}, []) as ws:
            isolated = run_tool(
                [str(script)], ws, what="probe", limits=Limits(), isolate_network=True
            )
            # The same probe outside a namespace connects: the test can tell the difference.
            open_net = run_tool(
                [str(script)], ws, what="probe", limits=Limits(), isolate_network=False
            )
        time.sleep(0.3)
    finally:
        stop.set()
        thread.join()
        server.close()
    assert isolated.stdout.startswith("blocked")
    assert open_net.stdout.strip() == "connected"
    assert len(accepted) == 1


# --- transplanting lines ----------------------------------------------------------------

BASE = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: db
spec:
  podSelector:
    matchLabels:
      app: db
  ingress:
  - from:
    - podSelector:
        matchLabels:
          app: web
  - from:
    - podSelector:
        matchLabels:
          app: api
"""


def rendered(text: str) -> LineDict:
    # Rendered output has lines of its own; the transplant must replace every one of them.
    return doc("\n" * 100 + text)


def test_transplant_unchanged_object_gets_original_lines() -> None:
    out = rendered(BASE)
    result = transplant(out, Located("base.yaml", doc(BASE)), "base.yaml", Fragments(Digests()))
    assert (result.approximate, result.from_patches) == (0, 0)
    assert out.line == 1
    assert out["spec"]["ingress"][1].line == 14
    assert out["spec"]["ingress"][1]["from"][0]["podSelector"]["matchLabels"].line == 17


def test_transplant_follows_reordered_and_removed_rules() -> None:
    # A patch removed the first rule: the remaining one keeps its own line, not index 0's.
    text = BASE.replace(
        "  - from:\n    - podSelector:\n        matchLabels:\n          app: web\n", ""
    )
    out = rendered(text)
    transplant(out, Located("base.yaml", doc(BASE)), "base.yaml", Fragments(Digests()))
    (rule,) = out["spec"]["ingress"]
    assert rule["from"][0]["podSelector"]["matchLabels"]["app"] == "api"
    assert rule.line == 14


def test_transplant_takes_added_nodes_from_patches() -> None:
    patch = parse_documents(
        "- op: add\n  path: /spec/ingress/-\n  value:\n    from:\n    - ipBlock:\n"
        "        cidr: 10.0.0.0/8\n"
    )[0].data
    fragments = Fragments(Digests())
    fragments.add_json6902(patch, "overlay/kustomization.yaml", 20)
    out = rendered(BASE + "  - from:\n    - ipBlock:\n        cidr: 10.0.0.0/8\n")
    result = transplant(out, Located("base.yaml", doc(BASE)), "base.yaml", fragments)
    added = out["spec"]["ingress"][2]
    assert file_of(added, "base.yaml") == "overlay/kustomization.yaml"
    assert added.line == 24  # line 4 of the inline patch, which starts after line 20
    assert file_of(out["spec"]["ingress"][0], "base.yaml") == "base.yaml"
    assert result.approximate == 0 and result.from_patches == 1


def test_transplant_without_a_source_borrows_the_enclosing_line() -> None:
    out = rendered(BASE + "  egress:\n  - to:\n    - podSelector: {}\n")
    result = transplant(out, Located("base.yaml", doc(BASE)), "base.yaml", Fragments(Digests()))
    egress = out["spec"]["egress"]
    assert egress.line == out["spec"].line == 6
    assert egress[0].line == 6
    assert result.approximate == 2  # the rule and its peer


def test_transplant_with_aliases_keeps_shared_nodes_shared() -> None:
    # Shared (aliased) nodes are digested once and indexed once, not once per reference.
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 4):
        refs = ", ".join(f"*a{i - 1}" for _ in range(10))
        levels.append(f"a{i}: &a{i} [{refs}]")
    shared = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata:\n" + "\n".join(
        "  " + line for line in levels
    )
    original = doc(shared)
    digests = Digests()
    fragments = Fragments(digests)
    fragments.add((), Located("p.yaml", original))
    # One index entry per distinct node: 4 levels + data + metadata + the object.
    assert sum(len(v) for v in fragments.by_pattern.values()) == 7
    out = rendered("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {}\n")
    transplant(out, Located("x.yaml", original), "x.yaml", fragments)
    assert out["data"].line == 5


def test_json_pointer_patterns() -> None:
    assert json_pointer_pattern("/spec/ingress/-") == ("spec", "ingress", "*")
    assert json_pointer_pattern("/spec/ingress/0/from/12") == ("spec", "ingress", "*", "from", "*")
    assert json_pointer_pattern("/metadata/labels/a~1b~0c") == ("metadata", "labels", "a/b~c")


def test_alias_bomb_in_a_kustomization_is_refused_before_rendering(tmp_path: Path) -> None:
    levels = ['l0: &l0 "lol"']
    for i in range(1, 10):
        refs = ", ".join(f"*l{i - 1}" for _ in range(10))
        levels.append(f"l{i}: &l{i} [{refs}]")
    text = ("resources: []\ncommonAnnotations:\n" + "\n".join("  " + x for x in levels)).encode()
    marker = tmp_path / "ran"
    script = tmp_path / "kustomize"
    script.write_text(f"#!/bin/sh\ntouch {marker}\n")
    script.chmod(0o755)
    started = time.monotonic()
    with pytest.raises(ManifestError) as caught:
        discover_environments(
            {"app/kustomization.yaml": text}, tools=Tools(kustomize=(str(script), "build"))
        )
    assert time.monotonic() - started < 5
    assert caught.value.file == "app/kustomization.yaml"
    assert "alias" in caught.value.message
    assert not marker.exists()


def test_origin_annotation_keeps_aliases_as_aliases() -> None:
    text = b"resources: []\ncommonLabels: &l {team: a}\nlabels:\n- pairs: *l\n"
    out = kustomize_build.with_origin_annotations("k/kustomization.yaml", text)
    assert out.count(b"team: a") == 1  # written once with an anchor, not expanded
    assert b"originAnnotations" in out


@needs_kubectl
def test_generator_sources_of_any_common_kind_are_read(tmp_path: Path) -> None:
    # Shaped like stefanprodan/podinfo's deploy/bases/frontend (Apache-2.0): a
    # configMapGenerator over shell scripts. The directory reader keeps them, so the
    # kustomization renders instead of failing on a file reachdiff left behind.
    (tmp_path / "base" / "scripts").mkdir(parents=True)
    (tmp_path / "base" / "scripts" / "warm-cache.sh").write_text("#!/bin/sh\necho warm\n")
    (tmp_path / "base" / "kustomization.yaml").write_text(
        "configMapGenerator:\n- name: redis-scripts\n  files: [scripts/warm-cache.sh]\n"
    )
    (env,) = discover_environments(read_directory(tmp_path))
    ((_, obj),) = env.objects
    assert obj["kind"] == "ConfigMap" and obj["data"] == {"warm-cache.sh": "#!/bin/sh\necho warm\n"}


def test_a_note_both_sides_make_is_said_once_and_one_side_s_note_names_its_side() -> None:
    from analysis.model import Tree
    from bot.inputs.environment_diff import EnvironmentTree, diff_environments

    approximate = "charts/web: lines in Helm templates are matched … and are approximate"
    base = EnvironmentTree("charts/web", "helm", Tree(), notes=(approximate, "only base"))
    head = EnvironmentTree("charts/web", "helm", Tree(), notes=(approximate, "only head"))
    notes = diff_environments([base], [head]).notes
    assert [n for n in notes if "approximate" in n] == [approximate]  # once, named once
    assert "charts/web (base): only base" in notes
    assert "charts/web (head): only head" in notes
    # A chart only the head has: its note is the head's.
    alone = diff_environments([], [head]).notes
    assert f"charts/web (head): {approximate}" in alone
    assert not any(n.startswith("charts/web:") for n in alone)
