"""Alternative deliverables among plain manifests (bot.inputs.alternatives): files that
define the same object are reviewed as environments, one per alternative, instead of
refused; a duplicate inside one file stays an error.

The shapes are argo-cd's ``manifests/`` (Apache-2.0: install.yaml, namespace-install.yaml,
ha/install.yaml… each a whole Argo CD) and microservices-demo's root (Apache-2.0: the
services one file each in ``kubernetes-manifests/`` and all of them in
``release/kubernetes-manifests.yaml``; tests/fixtures/alternative-bundles)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from analysis.errors import DuplicateObjectError
from analysis.model import Source
from bot.cli import main
from bot.inputs.alternatives import Alternative, Identity, alternatives, plain_alternatives
from bot.inputs.analyze import DiffResult, PreparedBases, analyze
from bot.inputs.environment_diff import diff_environments, diff_files, load_environments
from bot.inputs.environments import discover_environments
from bot.inputs.files import read_directory
from bot.inputs.sandbox import Tools

FIXTURE = Path(__file__).parent / "fixtures" / "alternative-bundles"
RELEASE = "release/kubernetes-manifests.yaml"
SPLIT = "kubernetes-manifests/"


def deployment(name: str, namespace: str = "argocd", port: int = 8080) -> str:
    return f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec: {{containers: [{{name: c, image: i, ports: [{{containerPort: {port}}}]}}]}}
"""


def ingress_from(name: str, peer: str, namespace: str = "argocd", port: int = 8080) -> str:
    return f"""apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  podSelector: {{matchLabels: {{app: {name}}}}}
  ingress:
  - from: [{{podSelector: {{matchLabels: {{app: {peer}}}}}}}]
    ports: [{{port: {port}}}]
"""


def bundle(*docs: str) -> bytes:
    return "---\n".join(docs).encode()


SERVER = deployment("argocd-server")
REPO = deployment("argocd-repo-server", port=8081)
REPO_POLICY = ingress_from("argocd-repo-server", "argocd-server", port=8081)


def variant(doc: str, mark: str) -> str:
    """The same object defined otherwise (upstream: other arguments, replicas, roles)."""
    return doc.replace("metadata: {name:", f"metadata: {{labels: {{variant: {mark}}}, name:", 1)


# argo-cd's manifests/: every install is a whole Argo CD (core-install without the server),
# each defining the workloads its own way.
ARGOCD = {
    "install.yaml": bundle(SERVER, REPO, REPO_POLICY),
    "namespace-install.yaml": bundle(variant(SERVER, "ns"), variant(REPO, "ns"), REPO_POLICY),
    "core-install.yaml": bundle(variant(REPO, "core"), REPO_POLICY),
    "ha/install.yaml": bundle(variant(SERVER, "ha"), variant(REPO, "ha"), REPO_POLICY),
    "ha/namespace-install.yaml": bundle(
        variant(SERVER, "ha-ns"), variant(REPO, "ha-ns"), REPO_POLICY
    ),
    "README.md": b"# not a manifest\n",
}


def names(found: list[Alternative]) -> list[str]:
    return [a.name for a in found]


def defined(files: dict[str, list[Identity]]) -> list[Alternative]:
    """The alternatives of files each defining its objects its own way."""
    return alternatives({path: dict.fromkeys(keys, path) for path, keys in files.items()})


# The grouping, on what each file defines


def test_no_file_defines_an_object_twice_no_alternatives() -> None:
    assert defined({"a.yaml": [("x", "Deployment", "a")], "b.yaml": []}) == []


def test_each_conflicting_file_is_an_alternative_with_the_files_that_conflict_with_nothing() -> (
    None
):
    web = ("shop", "Deployment", "web")
    found = defined(
        {
            "a.yaml": [web],
            "b.yaml": [web, ("shop", "NetworkPolicy", "p")],
            "shared.yaml": [("shop", "Deployment", "db")],
        }
    )
    assert found == [
        Alternative("a.yaml", ("a.yaml",), ("a.yaml", "shared.yaml")),
        Alternative("b.yaml", ("b.yaml",), ("b.yaml", "shared.yaml")),
    ]


def test_a_directory_whose_conflicting_files_do_not_conflict_is_one_alternative() -> None:
    web, db = ("shop", "Deployment", "web"), ("shop", "Deployment", "db")
    found = defined(
        {
            "kubernetes-manifests/web.yaml": [web],
            "kubernetes-manifests/db.yaml": [db],
            "kubernetes-manifests/extra.yaml": [("shop", "Deployment", "extra")],
            "release/all.yaml": [web, db],
        }
    )
    assert names(found) == ["kubernetes-manifests/", "release/all.yaml"]
    assert found[0].own == ("kubernetes-manifests/db.yaml", "kubernetes-manifests/web.yaml")
    # extra.yaml conflicts with nothing: in both, even though it is in the directory.
    assert "kubernetes-manifests/extra.yaml" in found[1].paths


def test_a_directory_whose_files_conflict_among_themselves_is_divided_down() -> None:
    web = ("shop", "Deployment", "web")
    found = defined(
        {
            "deploy/all.yaml": [web],
            "deploy/prod/app/web.yaml": [web],
            "deploy/prod/app/web-hpa.yaml": [],
            "deploy/staging/web.yaml": [web],
        }
    )
    assert names(found) == [
        "deploy/all.yaml",
        "deploy/prod/app/web.yaml",
        "deploy/staging/web.yaml",
    ]
    web_db = [web, ("shop", "Deployment", "db")]
    nested = defined(
        {"all.yaml": web_db, "split/app/web.yaml": [web], "split/db/db.yaml": web_db[1:]}
    )
    assert names(nested) == ["all.yaml", "split/"]  # app/ and db/ together


def test_argocd_installs_are_one_alternative_each() -> None:
    found = plain_alternatives(ARGOCD, sorted(p for p in ARGOCD if p.endswith(".yaml")))
    assert names(found) == [
        "core-install.yaml",
        "ha/install.yaml",
        "ha/namespace-install.yaml",
        "install.yaml",
        "namespace-install.yaml",
    ]
    assert all(a.paths == a.own == (a.name,) for a in found)


def test_only_objects_the_tree_must_hold_once_conflict() -> None:
    # Two files with one Service (which reachdiff does not require unique) are not
    # alternatives: the tree reads both today, as before.
    service = b"apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{port: 80}]}\n"
    files = {"a.yaml": service, "b.yaml": service}
    assert plain_alternatives(files, sorted(files)) == []


# Environments


def test_alternatives_are_plain_environments_named_by_their_files() -> None:
    envs = load_environments(ARGOCD, cache=None)
    assert [(e.name, e.kind) for e in envs] == [
        (n, "plain")
        for n in [
            "core-install.yaml",
            "ha/install.yaml",
            "ha/namespace-install.yaml",
            "install.yaml",
            "namespace-install.yaml",
        ]
    ]
    assert [w.name for w in envs[0].tree.workloads] == ["argocd-repo-server"]
    assert len(envs[3].tree.workloads) == 2
    discovered = discover_environments(ARGOCD, tools=Tools())
    assert [e.name for e in discovered] == [e.name for e in envs]


def test_alternatives_next_to_rendered_environments() -> None:
    files = {
        **{k: v for k, v in ARGOCD.items() if not k.startswith("ha/")},
        "overlays/prod/kustomization.yaml": b"resources: [app.yaml]\n",
        "overlays/prod/app.yaml": deployment("web", "shop").encode(),
    }
    discovered = discover_environments(files, tools=Tools())
    assert [(e.name, e.kind) for e in discovered] == [
        ("core-install.yaml", "plain"),
        ("install.yaml", "plain"),
        ("namespace-install.yaml", "plain"),
        ("overlays/prod", "kustomize"),
    ]


NAMESPACE = "apiVersion: v1\nkind: Namespace\nmetadata: {name: argocd}\n"


def test_an_object_defined_alike_in_two_files_is_one_object() -> None:
    # Two deliverables that each create the namespace they deploy to (calico's
    # csi-driver.yaml and tigera-operator.yaml both create calico-system): applying both
    # applies it once. They are read together, as one set: the server reaches the
    # repo-server across the two files.
    files = {
        "server.yaml": bundle(NAMESPACE, SERVER),
        "repo-server.yaml": bundle(NAMESPACE, REPO, REPO_POLICY),
    }
    assert plain_alternatives(files, sorted(files)) == []
    (env,) = load_environments(files, cache=None)
    assert (env.name, [w.name for w in env.tree.workloads]) == (
        "",
        ["argocd-repo-server", "argocd-server"],
    )
    assert [n.source for n in env.tree.namespaces] == [Source("repo-server.yaml", 1)]  # the first
    same = diff_files(files, files, cache=None)
    assert same.environments == ("",) and same.opened == same.closed == ()
    # Defined otherwise, they are alternatives.
    files["server.yaml"] = bundle(variant(NAMESPACE, "other"), SERVER)
    assert names(plain_alternatives(files, sorted(files))) == ["repo-server.yaml", "server.yaml"]


@pytest.mark.parametrize("split", [False, True])
def test_a_duplicate_inside_one_file_stays_an_error(split: bool) -> None:
    # kubectl apply would apply both in turn (the second replacing the first) and kustomize
    # refuses them: the file contradicts itself, alternatives next to it or not.
    files = {"install.yaml": bundle(SERVER, REPO, SERVER)}
    if split:
        files["namespace-install.yaml"] = bundle(SERVER)
    with pytest.raises(DuplicateObjectError) as caught:
        load_environments(files, cache=None)
    assert (caught.value.file, caught.value.line) == ("install.yaml", 19)
    assert "argocd/Deployment/argocd-server is already defined at install.yaml:1" in str(
        caught.value
    )
    assert "an object is defined once in a file" in caught.value.message


# Pairing base and head


def test_alternatives_pair_by_name_and_one_on_one_side_is_said_so() -> None:
    head = dict(ARGOCD)
    del head["core-install.yaml"]
    head["ha/core-install.yaml"] = ARGOCD["core-install.yaml"]
    diff = diff_environments(
        load_environments(ARGOCD, cache=None), load_environments(head, cache=None)
    )
    assert (
        "core-install.yaml: no longer an environment (not in the head): every path it "
        "allowed counts as closed" in diff.notes
    )
    assert (
        "ha/core-install.yaml: a new environment (not in the base): every path it allows "
        "counts as opened" in diff.notes
    )
    assert {c.dst.environment for c in diff.opened} == {"ha/core-install.yaml"}
    assert {c.dst.environment for c in diff.closed} == {"core-install.yaml"}
    # Environments on both sides and unchanged are compared, and say nothing.
    assert not any(n.startswith("install.yaml") for n in diff.notes)
    assert "install.yaml" in diff.environments


def test_a_side_without_alternatives_is_compared_whole_with_each_alternative() -> None:
    base = {"install.yaml": ARGOCD["install.yaml"]}
    head = {**base, "namespace-install.yaml": ARGOCD["namespace-install.yaml"]}
    # The head adds an install that is an alternative to the first: applying either one
    # allows what the base allowed.
    diff = diff_files(base, head, cache=None)
    assert diff.environments == ("install.yaml", "namespace-install.yaml")
    assert diff.opened == diff.closed == ()
    assert diff.notes[0] == (
        "The head's plain manifests are alternative deliverables (files defining the same "
        "objects): install.yaml, namespace-install.yaml, each compared with the base's plain "
        "manifests (one environment there)"
    )
    # And back, with core-install (no argocd-server) among the base's alternatives: each
    # is compared with the head's plain manifests, which have the server.
    back = diff_files({**head, "core-install.yaml": ARGOCD["core-install.yaml"]}, base, cache=None)
    assert back.closed == ()
    server = "core-install.yaml:argocd/Deployment/argocd-server"
    assert back.opened
    assert all(
        (c.src.id, c.src_new) == (server, True) or (c.dst.id, c.dst_new) == (server, True)
        for c in back.opened
    )
    assert back.notes[0].startswith(
        "The base's plain manifests are alternative deliverables (files defining the same "
        "objects): core-install.yaml, install.yaml, namespace-install.yaml, each compared "
        "with the head's plain manifests"
    )


# The command line on the fixture


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_map_of_two_alternative_bundles(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "map", str(FIXTURE), "--format", "json")
    assert code == 0
    doc = json.loads(out)
    assert [e["environment"] for e in doc["environments"]] == [SPLIT, RELEASE]
    for env in (SPLIT, RELEASE):
        # The shared policy (network-policies/frontend.yaml) is in both bundles.
        assert {
            "src": f"{env}:default/Deployment/loadgenerator",
            "dst": f"{env}:default/Deployment/frontend",
            "allowed": {"TCP": "8080"},
        } in doc["connections"]
        assert not any(
            c["src"] == f"{env}:default/Deployment/loadgenerator"
            and c["dst"] == f"{env}:default/Deployment/cartservice"
            for c in doc["connections"]
        )


@pytest.fixture
def widened(tmp_path: Path) -> tuple[Path, Path]:
    base, head = tmp_path / "base", tmp_path / "head"
    shutil.copytree(FIXTURE, base)
    shutil.copytree(FIXTURE, head)
    release = head / RELEASE
    text = release.read_text()
    rule = "          app: frontend\n    ports:"
    assert rule in text
    release.write_text(
        text.replace(rule, "          app: frontend\n    - namespaceSelector: {}\n    ports:")
    )
    return base, head


def test_diff_names_the_bundle_a_path_opens_in(
    widened: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    base, head = widened
    code, out, err = run(capsys, "diff", str(base), str(head), "--format", "json")
    assert code == 1
    doc = json.loads(out)
    opened = {(p["src"], p["dst"]) for p in doc["opened"]}
    assert (
        f"{RELEASE}:default/Deployment/loadgenerator",
        f"{RELEASE}:default/Deployment/cartservice",
    ) in opened
    assert all(p["dst"].startswith(f"{RELEASE}:") for p in doc["opened"])
    assert doc["closed"] == []
    assert "alternative" not in err and "new environment" not in err
    code, out, _ = run(capsys, "diff", str(base), str(head))
    assert "(in release/kubernetes-manifests.yaml)" in out
    assert "release/kubernetes-manifests.yaml:35" in out


def test_diff_that_adds_the_second_bundle(
    widened: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    base, head = widened
    shutil.rmtree(base / "release")
    code, out, err = run(capsys, "diff", str(base), str(head), "--format", "json")
    assert code == 1
    doc = json.loads(out)
    # kubernetes-manifests/ is what the base applied: compared, nothing changed there.
    assert {p["dst"].split(":")[0] for p in doc["opened"]} == {RELEASE}
    assert f": {SPLIT}, {RELEASE}, each compared with the base's plain manifests" in err


def test_the_bot_reviews_a_base_holding_alternatives_as_environments(
    widened: tuple[Path, Path],
) -> None:
    base, head = (read_directory(p) for p in widened)
    bases = PreparedBases(freeze=False)
    first = analyze(base, head, base_key="c1", bases=bases)
    assert isinstance(first, DiffResult)
    assert bases.holds_alternatives("c1")  # the next review goes straight to environments
    again = analyze(base, head, base_key="c1", bases=bases)
    assert isinstance(again, DiffResult)
    for result in (first, again):
        assert result.opened and all(c.dst.environment == RELEASE for c in result.opened)
    assert [c.src.id for c in again.opened] == [c.src.id for c in first.opened]
    # A plain base without alternatives is prepared as before.
    plain = {k: v for k, v in base.items() if not k.startswith("release/")}
    assert isinstance(analyze(plain, plain, base_key="c2", bases=bases), DiffResult)
    assert not bases.holds_alternatives("c2")


def test_an_alternative_renamed_is_paired_with_the_one_it_shares_files_with() -> None:
    head = read_directory(FIXTURE)
    # The base's kubernetes-manifests/ held only loadgenerator.yaml: an alternative named by
    # that file, which the head's directory alternative grew from.
    base = {k: v for k, v in head.items() if not k.endswith(("frontend.yaml", "cartservice.yaml"))}
    base["network-policies/frontend.yaml"] = head["network-policies/frontend.yaml"]
    diff = diff_files(base, head, cache=None)
    assert diff.environments == (SPLIT, RELEASE)
    assert diff.notes[0] == (
        f"{SPLIT}: compared with the base's alternative kubernetes-manifests/loadgenerator.yaml, "
        "the same files under another name"
    )
    assert not any("new environment" in n or "no longer" in n for n in diff.notes)
    # Compared, not emptied and refilled: loadgenerator is in both, the workloads the
    # directory brings are new there, and the release bundle is unchanged.
    assert not any(e.name == "loadgenerator" for e in diff.added_endpoints + diff.removed_endpoints)
    assert {e.name for e in diff.added_endpoints} == {"frontend", "cartservice"}
    assert {c.dst.environment for c in diff.opened + diff.closed} == {SPLIT}


# The grouping's invariants, on random trees of files


PATHS = st.sampled_from(
    ["a.yaml", "b.yaml", "d/a.yaml", "d/b.yaml", "d/e/a.yaml", "d/e/b.yaml", "f/a.yaml"]
)
KEYS = st.sampled_from([("ns", "Deployment", n) for n in "xyz"] + [("", "Namespace", "ns")])


@given(
    st.dictionaries(
        PATHS, st.dictionaries(KEYS, st.integers(0, 2), max_size=3), min_size=1, max_size=7
    )
)
def test_alternatives_hold_no_conflict_and_every_file(
    files: dict[str, dict[Identity, int]],
) -> None:
    def conflict(p: str, q: str) -> bool:  # the rule, pair by pair
        return p != q and any(k in files[q] and files[q][k] != v for k, v in files[p].items())

    conflicting = {p for p in files if any(conflict(p, q) for q in files)}
    found = alternatives(files)
    assert (found == []) == (not conflicting)
    for alt in found:
        assert not any(conflict(p, q) for p in alt.paths for q in alt.paths)
        assert set(alt.paths) == set(alt.own) | (set(files) - conflicting)
        assert alt.name in alt.own or (
            alt.name.endswith("/") and all(p.startswith(alt.name) for p in alt.own)
        )
    owns = [p for alt in found for p in alt.own]
    assert sorted(owns) == sorted(conflicting)  # each conflicting file in exactly one
    assert len({alt.name for alt in found}) == len(found)
