"""Reading manifest trees from git objects, in real temporary repositories."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from bot.inputs.files import FileLimits, read_directory
from bot.inputs.gitrefs import (
    CommitFiles,
    GitError,
    find_repository,
    merge_base,
    read_ref,
    resolve_commit,
)
from bot.inputs.tarball import read_tarball

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

GIT_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
    "GIT_AUTHOR_DATE": "2024-01-01T00:00:00Z",
    "GIT_COMMITTER_DATE": "2024-01-01T00:00:00Z",
}


def git(repo: Path, *args: str) -> str:
    env = {"PATH": os.environ["PATH"], **GIT_ENV}
    proc = subprocess.run(
        ["git", "-c", "init.defaultBranch=main", *args],
        cwd=repo,
        env=env,
        capture_output=True,
        check=True,
    )
    return proc.stdout.decode().strip()


def write(root: Path, rel: str, data: bytes | str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)


def commit_all(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    write(root, "namespaces.yaml", "kind: Namespace\n")
    write(root, "clusters/prod/web.yaml", "kind: Deployment\n")
    write(root, "clusters/prod/db.yml", "kind: StatefulSet\n")
    write(root, "clusters/dev/web.yaml", "kind: Deployment\n")  # same content as prod/web
    write(root, "clusters/prod/Kustomization", "resources: []\n")
    write(root, "README.md", "# shop\n")
    write(root, ".github/workflows/ci.yml", "on: push\n")
    commit_all(root, "base")
    git(root, "tag", "-a", "v1", "-m", "release 1")
    return root


def test_read_ref_reads_manifests_with_blob_ids(repo: Path) -> None:
    tree = read_ref(repo, "main")
    assert isinstance(tree, CommitFiles)
    assert tree.commit_sha == git(repo, "rev-parse", "main")
    assert tree.files == {
        "namespaces.yaml": b"kind: Namespace\n",
        "clusters/prod/web.yaml": b"kind: Deployment\n",
        "clusters/prod/db.yml": b"kind: StatefulSet\n",
        "clusters/dev/web.yaml": b"kind: Deployment\n",
        "clusters/prod/Kustomization": b"resources: []\n",
    }
    assert set(tree.blob_shas) == set(tree.files)
    for path, sha in tree.blob_shas.items():
        assert sha == git(repo, "rev-parse", f"main:{path}")
    assert tree.blob_shas["clusters/prod/web.yaml"] == tree.blob_shas["clusters/dev/web.yaml"]
    assert tree.warnings == ()


def test_read_ref_sees_the_commit_not_the_worktree(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    write(repo, "clusters/prod/web.yaml", "kind: Deployment\nreplicas: 3\n")
    (repo / "clusters/prod/db.yml").unlink()
    write(repo, "clusters/prod/cache.yaml", "kind: StatefulSet\n")
    head = commit_all(repo, "head")
    write(repo, "clusters/prod/uncommitted.yaml", "kind: Pod\n")

    old, new = read_ref(repo, base), read_ref(repo, "HEAD")
    assert old.commit_sha == base and new.commit_sha == head
    assert "clusters/prod/db.yml" in old.files and "clusters/prod/db.yml" not in new.files
    assert "clusters/prod/cache.yaml" in new.files
    assert "clusters/prod/uncommitted.yaml" not in new.files
    assert new.files["clusters/prod/web.yaml"].endswith(b"replicas: 3\n")
    assert old.blob_shas["namespaces.yaml"] == new.blob_shas["namespaces.yaml"]
    assert old.blob_shas["clusters/prod/web.yaml"] != new.blob_shas["clusters/prod/web.yaml"]
    # Refs of every shape resolve to the commit.
    assert read_ref(repo, "HEAD~1").commit_sha == base
    assert read_ref(repo, "v1").commit_sha == base  # an annotated tag is peeled
    assert read_ref(repo, base[:10]).commit_sha == base


def test_read_ref_below_a_path(repo: Path) -> None:
    tree = read_ref(repo, "main", "clusters/prod")
    assert set(tree.files) == {
        "clusters/prod/web.yaml",
        "clusters/prod/db.yml",
        "clusters/prod/Kustomization",
    }
    # Trailing slashes and a lone file work; a sibling with a common prefix is not included.
    write(repo, "clusters/prod-eu/web.yaml", "eu\n")
    commit_all(repo, "eu")
    assert set(read_ref(repo, "main", "clusters/prod/").files) == set(tree.files)
    assert set(read_ref(repo, "main", "namespaces.yaml").files) == {"namespaces.yaml"}
    assert set(read_ref(repo, "main", "./").files) == set(read_ref(repo, "main").files)


def test_read_ref_missing_path_is_empty_with_a_warning(repo: Path) -> None:
    tree = read_ref(repo, "main", "clusters/staging")
    assert tree.files == {} and tree.blob_shas == {}
    assert tree.warnings == ("clusters/staging: does not exist at main",)


def test_read_ref_path_is_literal_not_pathspec_magic(repo: Path) -> None:
    # ':(glob)**' would select everything if pathspec magic were on.
    assert read_ref(repo, "main", ":(glob)**").files == {}
    assert read_ref(repo, "main", "clusters/*").files == {}


def test_read_ref_refuses_escaping_path(repo: Path) -> None:
    with pytest.raises(GitError, match="invalid path"):
        read_ref(repo, "main", "../other")


def test_read_ref_lists_symlinks_and_submodules_as_unread(repo: Path, tmp_path: Path) -> None:
    os.symlink("/etc/passwd", repo / "clusters/prod/evil.yaml")
    os.symlink("web.yaml", repo / "clusters/prod/alias.yaml")
    os.symlink("README.md", repo / "docs-link")  # not a manifest name: skipped silently
    sub = tmp_path / "sub"
    sub.mkdir()
    git(sub, "init", "-q")
    write(sub, "x.yaml", "kind: Pod\n")
    sub_sha = commit_all(sub, "sub")
    # A gitlink entry, as `git submodule add` records it, without cloning anything.
    git(repo, "add", "-A")
    git(repo, "update-index", "--add", "--cacheinfo", f"160000,{sub_sha},vendor/charts")
    git(repo, "commit", "-q", "-m", "links")

    tree = read_ref(repo, "main")
    assert "clusters/prod/evil.yaml" not in tree.files
    assert "clusters/prod/alias.yaml" not in tree.files
    assert not any(path.startswith("vendor/") for path in tree.files)
    assert tree.warnings == ()
    assert sorted(tree.unread) == [
        "clusters/prod/alias.yaml: a symlink (not followed)",
        "clusters/prod/evil.yaml: a symlink (not followed)",
        f"vendor/charts: a git submodule (commit {sub_sha[:7]}): its content is not in the "
        "repository",
    ]
    assert tree.files["clusters/prod/web.yaml"] == b"kind: Deployment\n"


def test_read_ref_limits_name_the_file(repo: Path) -> None:
    write(repo, "clusters/prod/big.yaml", b"x" * 5000)
    commit_all(repo, "big")
    with pytest.raises(GitError, match=r"clusters/prod/big\.yaml: file is 5000 bytes"):
        read_ref(repo, "main", limits=FileLimits(max_file_bytes=4096))
    with pytest.raises(GitError, match="more than 2 files"):
        read_ref(repo, "main", limits=FileLimits(max_files=2))
    with pytest.raises(GitError, match="more than 1000 bytes"):
        read_ref(repo, "main", limits=FileLimits(max_total_bytes=1000))
    assert len(read_ref(repo, "main", limits=FileLimits(max_file_bytes=5000)).files) == 6


def test_unknown_ref_and_option_injection(repo: Path) -> None:
    with pytest.raises(GitError, match="'no-such-branch' does not name a commit"):
        read_ref(repo, "no-such-branch")
    with pytest.raises(GitError, match="invalid ref"):
        read_ref(repo, "--output=/tmp/x")
    with pytest.raises(GitError, match="invalid ref"):
        read_ref(repo, "")
    tree_sha = git(repo, "rev-parse", "main^{tree}")
    with pytest.raises(GitError, match="does not name a commit"):
        read_ref(repo, tree_sha)


def test_not_a_repository(tmp_path: Path) -> None:
    with pytest.raises(GitError, match="is not a git repository"):
        read_ref(tmp_path, "main")
    with pytest.raises(GitError, match="is not a directory"):
        read_ref(tmp_path / "missing", "main")


def test_subdirectory_of_a_repository_is_not_a_repository(repo: Path) -> None:
    # Discovery must not walk up: the caller names the repository itself.
    with pytest.raises(GitError, match="is not a git repository"):
        read_ref(repo / "clusters", "main")


def test_find_repository_walks_up_for_people(repo: Path, tmp_path: Path) -> None:
    assert find_repository(repo / "clusters" / "prod") == repo.resolve()
    assert find_repository(repo) == repo.resolve()
    assert (
        read_ref(find_repository(repo / "clusters"), "main").files == read_ref(repo, "main").files
    )
    outside = tmp_path / "plain"
    outside.mkdir()
    with pytest.raises(GitError, match="is not in a git repository"):
        find_repository(outside)


def test_bare_repository(repo: Path, tmp_path: Path) -> None:
    bare = tmp_path / "bare.git"
    git(tmp_path, "clone", "-q", "--bare", str(repo), str(bare))
    assert read_ref(bare, "main").files == read_ref(repo, "main").files
    assert find_repository(bare) == bare.resolve()


def test_repository_config_never_runs_programs(repo: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    script = tmp_path / "evil.sh"
    script.write_text(f"#!/bin/sh\ntouch {marker}\n")
    script.chmod(0o755)
    # Settings a hostile repository config could use to run something on a read.
    git(repo, "config", "core.fsmonitor", str(script))
    git(repo, "config", "core.pager", str(script))
    git(repo, "config", "core.hooksPath", str(tmp_path))
    git(repo, "config", "filter.evil.smudge", str(script))
    git(repo, "config", "diff.evil.textconv", str(script))
    write(repo, ".gitattributes", "*.yaml filter=evil diff=evil\n")
    for hook in ("post-checkout", "reference-transaction", "pre-auto-gc"):
        target = tmp_path / hook
        target.write_text(script.read_text())
        target.chmod(0o755)
    commit_all(repo, "attributes")
    marker.unlink(missing_ok=True)

    tree = read_ref(repo, "main")
    merge_base(repo, "main", "v1")
    assert tree.files["namespaces.yaml"] == b"kind: Namespace\n"  # no smudge filter applied
    assert not marker.exists()


def test_merge_base(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "-b", "feature")
    write(repo, "clusters/prod/web.yaml", "kind: Deployment\nreplicas: 2\n")
    feature = commit_all(repo, "feature")
    git(repo, "checkout", "-q", "main")
    write(repo, "namespaces.yaml", "kind: Namespace\nmetadata: {}\n")
    main = commit_all(repo, "main moves on")
    assert merge_base(repo, "main", "feature") == base
    assert merge_base(repo, main, feature) == base
    assert resolve_commit(repo, "feature") == feature

    git(repo, "checkout", "-q", "--orphan", "unrelated")
    commit_all(repo, "unrelated root")
    with pytest.raises(GitError, match="no common ancestor"):
        merge_base(repo, "main", "unrelated")
    with pytest.raises(GitError, match="does not name a commit"):
        merge_base(repo, "main", "nope")


def test_git_tree_directory_and_tarball_agree(repo: Path, tmp_path: Path) -> None:
    """A commit read from objects, from its checkout and from a GitHub-style tarball."""
    write(repo, "charts/shop/Chart.yaml", "name: shop\n")
    write(repo, "charts/shop/templates/_helpers.tpl", "{{/* */}}\n")
    write(repo, "apps/café.yaml", "kind: Pod\n")
    sha = commit_all(repo, "more")
    from_git = read_ref(repo, sha).files
    # GitHub's tarballs are `git archive` output under an owner-repo-sha/ directory.
    archive = subprocess.run(
        ["git", "archive", "--format=tar.gz", f"--prefix=acme-shop-{sha[:7]}/", sha],
        cwd=repo,
        env={"PATH": os.environ["PATH"], **GIT_ENV},
        capture_output=True,
        check=True,
    ).stdout
    assert read_tarball(archive) == from_git
    assert read_directory(repo) == from_git
    assert "apps/café.yaml" in from_git and "charts/shop/Chart.yaml" in from_git


def _shop_repo(root: Path) -> None:
    git(root, "init", "-q")
    write(
        root,
        "k8s/app.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: shop, labels: {app: web}}\n"
        "spec: {containers: [{name: c, image: nginx}]}\n",
    )
    commit_all(root, "base")


def test_cli_review_fails_closed_on_a_submodule_and_ignore_paths_accepts_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.cli import EXIT_INPUT, EXIT_OK, main

    root = tmp_path / "r"
    root.mkdir()
    _shop_repo(root)
    git(root, "checkout", "-q", "-b", "change")
    base_sha = git(root, "rev-parse", "main")
    git(root, "update-index", "--add", "--cacheinfo", f"160000,{base_sha},k8s/vendor")
    git(root, "commit", "-q", "-m", "add a submodule")
    args = ["review", "--repo", str(root), "--base", "main", "--head", "change", "--format", "text"]
    assert main(args) == EXIT_INPUT
    assert "not analysed: k8s/vendor: a git submodule" in capsys.readouterr().err

    git(root, "checkout", "-q", "main")
    write(root, ".github/reachdiff.yml", 'ignore_paths: ["k8s/vendor/**"]\n')
    commit_all(root, "accept the vendored submodule")
    git(root, "checkout", "-q", "change")
    git(root, "rebase", "-q", "main")
    assert main(args) == EXIT_OK
    assert "as ignore_paths allows: k8s/vendor" in capsys.readouterr().err


def test_cli_diff_fails_closed_on_an_lfs_pointer_and_a_missing_submodule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.cli import EXIT_INPUT, main

    base, head = tmp_path / "base", tmp_path / "head"
    for root in (base, head):
        write(root, "app.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: n}\n")
    write(
        head,
        "np.yaml",
        "version https://git-lfs.github.com/spec/v1\noid sha256:" + "a" * 64 + "\nsize 9\n",
    )
    write(
        head,
        ".gitmodules",
        '[submodule "policies"]\n\tpath = policies\n\turl = https://example.invalid/p\n',
    )
    (head / "policies").mkdir()
    assert main(["diff", str(base), str(head)]) == EXIT_INPUT
    err = capsys.readouterr().err
    assert "not analysed: np.yaml: a Git LFS pointer" in err
    assert "not analysed: policies: a git submodule that is not checked out" in err


def test_blobs_missing_from_the_object_store(repo: Path) -> None:
    # A mirror or partial clone without some blobs (GoogleCloudPlatform/microservices-demo's
    # snapshot lacked its docs/ images): `ls-tree --long` says "BAD" for their size, which
    # was an internal error (int("BAD")). A missing file reachdiff would not read is no
    # matter; a missing manifest is an error naming it.
    write(repo, "docs/diagram.png", b"\x89PNG not a manifest")
    write(repo, "clusters/prod/extra.yaml", "kind: ConfigMap\n")
    commit_all(repo, "more")

    def drop(rel: str) -> None:
        sha = git(repo, "rev-parse", f"HEAD:{rel}")
        (repo / ".git" / "objects" / sha[:2] / sha[2:]).unlink()

    drop("docs/diagram.png")
    assert "clusters/prod/extra.yaml" in read_ref(repo, "main").files
    drop("clusters/prod/extra.yaml")
    with pytest.raises(GitError) as err:
        read_ref(repo, "main")
    assert "clusters/prod/extra.yaml" in str(err.value) and "missing" in str(err.value)


def test_read_ref_reports_what_it_skips_that_other_tools_read(repo: Path) -> None:
    policy = (
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
        "metadata: {name: open, namespace: shop}\nspec: {podSelector: {}, ingress: [{}]}\n"
    )
    write(repo, "clusters/prod/.open.yaml", policy)  # kubectl apply -R applies it
    write(repo, "clusters/prod/.yamllint.yaml", "extends: default\n")  # tooling
    write(repo, "clusters/prod/.argocd-source.yaml", "helm: {}\n")
    write(repo, "charts/c/Chart.yaml", "apiVersion: v2\nname: c\nversion: 1.0.0\n")
    write(repo, "charts/c/templates/a.yaml", '{{ .Files.Get "open.flag" }}\n')
    write(repo, "charts/c/open.flag", "yes\n")
    write(repo, "charts/c/.helmignore", "templates/b.yaml\n")  # read, as helm reads it
    commit_all(repo, "skipped")
    tree = read_ref(repo, "main")
    assert "charts/c/.helmignore" in tree.files
    assert [u.split(":")[0] for u in sorted(tree.unread)] == [
        "charts/c/open.flag",
        "clusters/prod/.argocd-source.yaml",
        "clusters/prod/.open.yaml",
    ]
    assert "holds NetworkPolicy shop/open" in sorted(tree.unread)[2]
