"""`diff` and `review`: errors name their side, a broken base does not block its fix, and
`review` reads `.github/reachdiff.yml` and finds the default branch as the bot would."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bot.cli import main
from tests.test_cli import NS_AND_PODS, POLICY, write_tree
from tests.test_gitrefs import commit_all, git, write

BROKEN = "apiVersion: v1\nkind: Pod\nmetadata: {name: x, namespace: shop\n"  # unclosed flow


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_head_error_names_the_head(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = write_tree(tmp_path / "base", "api")
    head = write_tree(tmp_path / "head", "api")
    (head / "broken.yaml").write_text(BROKEN)
    code, _, err = run(capsys, "diff", str(base), str(head))
    assert code == 2
    assert err.startswith("reachdiff: error: head: broken.yaml:")


@pytest.mark.parametrize("fmt", ["json", "text", "md"])
def test_a_broken_base_is_reported_and_the_head_reviewed_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    base = write_tree(tmp_path / "base", "api")
    (base / "broken.yaml").write_text(BROKEN)
    head = write_tree(tmp_path / "head", "api")  # the fix: the broken file is gone
    code, out, err = run(capsys, "diff", str(base), str(head), "--format", fmt)
    assert code == 1  # never a silent pass: everything the head allows counts as opened
    assert "reachdiff: base: broken.yaml:" in err
    assert "reviewed on its own" in err
    if fmt == "json":
        doc = json.loads(out)
        assert doc["base_error"].startswith("base: broken.yaml:")
        pairs = {(c["src"], c["dst"]) for c in doc["opened"]}
        assert ("shop/Pod/api", "db/StatefulSet/pg") in pairs
        assert ("shop/Pod/batch", "db/StatefulSet/pg") not in pairs  # the head's rule holds
        # Nothing is "new": the base is unknown, so new_workloads_widen cannot wave it through.
        assert not any(c["src_new"] or c["dst_new"] for c in doc["opened"])
        assert doc["added_endpoints"] == []
    elif fmt == "md":
        assert "The base cannot be read" in out and "broken.yaml" in out


def test_a_base_over_the_limits_is_reported_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = write_tree(tmp_path / "base", "api")
    (base / "huge.yaml").write_bytes(b"#" * (4 * 1024 * 1024 + 1))
    head = write_tree(tmp_path / "head", "api")
    code, out, err = run(capsys, "diff", str(base), str(head), "--format", "json")
    assert code == 1
    assert json.loads(out)["base_error"].startswith("base: huge.yaml: file is")
    assert "reachdiff: base: huge.yaml" in err


def test_a_missing_directory_is_an_error_not_a_broken_base(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    head = write_tree(tmp_path / "head", "api")
    code, _, err = run(capsys, "diff", str(tmp_path / "nope"), str(head))
    assert code == 2
    assert err == f"reachdiff: error: base: {tmp_path / 'nope'}: not a directory\n"


# ---- review ---------------------------------------------------------------------------


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    write(root, "clusters/prod/workloads.yaml", NS_AND_PODS)
    write(root, "clusters/prod/policy.yaml", POLICY % "api")
    write(root, "scratch/policy.yaml", "kind: NetworkPolicy\n")  # outside `paths`: not read
    write(root, ".github/reachdiff.yml", 'paths: ["clusters/**"]\n')
    commit_all(root, "base")
    git(root, "checkout", "-q", "-b", "feature")
    return root


def test_review_reads_paths_from_the_base_settings(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(repo, "clusters/prod/policy.yaml", POLICY % "batch")
    write(repo, "scratch/broken.yaml", BROKEN)  # would fail the review if it were read
    commit_all(repo, "widen")
    code, out, err = run(capsys, "review", "--repo", str(repo), "--format", "text")
    assert code == 1, err
    assert "shop/Pod/batch" in out


def test_review_settings_ignore_namespaces_decide_the_exit_code(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    git(repo, "checkout", "-q", "main")
    write(repo, ".github/reachdiff.yml", 'paths: ["clusters/**"]\nignore_namespaces: [db, shop]\n')
    commit_all(repo, "ignore")
    git(repo, "checkout", "-q", "feature")
    git(repo, "merge", "-q", "main")
    write(repo, "clusters/prod/policy.yaml", POLICY % "batch")
    commit_all(repo, "widen")
    code, out, err = run(capsys, "review", "--repo", str(repo))
    assert code == 0, (out, err)  # the bot's check passes: every change is among ignored ones
    assert "among ignored namespaces" in out


def test_review_settings_of_the_head_are_not_used(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(repo, ".github/reachdiff.yml", 'paths: ["clusters/**"]\nignore_namespaces: [db, shop]\n')
    write(repo, "clusters/prod/policy.yaml", POLICY % "batch")
    commit_all(repo, "widen and try to hide it")
    code, out, _ = run(capsys, "review", "--repo", str(repo))
    assert code == 1
    assert "among ignored namespaces" not in out  # the base's settings hide nothing


def test_review_a_settings_change_needs_approval_like_the_bot(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(repo, ".github/reachdiff.yml", 'paths: ["clusters/**"]\nrequired_approvals: 0\n')
    commit_all(repo, "loosen the rules")
    code, out, err = run(capsys, "review", "--repo", str(repo))
    assert code == 1
    assert "Reachability unchanged" in out and "edits .github/reachdiff.yml" in err


def test_review_invalid_base_settings_name_the_base(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    git(repo, "checkout", "-q", "main")
    write(repo, ".github/reachdiff.yml", "pathz: []\n")
    commit_all(repo, "typo")
    code, _, err = run(capsys, "review", "--repo", str(repo), "--head", "main")
    assert code == 2
    assert err.startswith("reachdiff: error: base: .github/reachdiff.yml")


def test_review_kustomize_roots_from_the_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if shutil.which("kubectl") is None and shutil.which("kustomize") is None:
        pytest.skip("needs kubectl or kustomize")
    fixture = Path(__file__).parent / "fixtures" / "kustomize" / "shop"
    root = tmp_path / "repo"
    shutil.copytree(fixture, root)
    write(root, ".github/reachdiff.yml", "kustomize_roots: [overlays/prod]\n")
    git(root, "init", "-q")
    commit_all(root, "base")
    git(root, "checkout", "-q", "-b", "feature")
    patch = root / "overlays" / "dev" / "debug-access.yaml"
    text = patch.read_text()
    assert "        matchLabels:\n          role: debug" in text
    # Widens dev (every pod of the namespace reaches the database): not a root here.
    patch.write_text(text.replace("        matchLabels:\n          role: debug", "        {}"))
    commit_all(root, "dev only")
    code, out, err = run(capsys, "review", "--repo", str(root), "--format", "json")
    doc = json.loads(out)
    assert "overlays/prod" in doc["environments"], err
    assert "overlays/dev" not in doc["environments"]  # not a root in these settings
    assert code == 0


def test_review_finds_master_when_there_is_no_main(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "master")
    write(root, "workloads.yaml", NS_AND_PODS)
    write(root, "policy.yaml", POLICY % "api")
    commit_all(root, "base")
    git(root, "checkout", "-q", "-b", "feature")
    write(root, "policy.yaml", POLICY % "batch")
    commit_all(root, "widen")
    code, out, err = run(capsys, "review", "--repo", str(root), "--format", "text")
    assert code == 1, err
    assert "shop/Pod/batch" in out


def test_review_follows_origin_head(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    upstream = tmp_path / "upstream"
    upstream.mkdir()
    git(upstream, "init", "-q", "-b", "trunk")
    write(upstream, "workloads.yaml", NS_AND_PODS)
    write(upstream, "policy.yaml", POLICY % "api")
    commit_all(upstream, "base")
    git(upstream, "branch", "main")  # a stale `main` that is not the default branch
    write(upstream, "policy.yaml", POLICY % "batch")
    commit_all(upstream, "trunk widens")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(upstream), str(clone))
    git(clone, "checkout", "-q", "-b", "feature")
    # Against origin/trunk (origin/HEAD) the feature branch changes nothing; against the
    # stale main it would widen.
    code, out, err = run(capsys, "review", "--repo", str(clone), "--format", "text")
    assert code == 0, (out, err)
    assert "origin/trunk" in run(capsys, "review", "--repo", str(clone))[1]


INTENT = """\
apiVersion: reachdiff.io/v1alpha1
kind: Intent
metadata: {name: db}
spec:
  deny:
  - from: {workload: batch}
    to: {namespace: db}
"""


def test_review_judges_by_the_base_intents_like_the_bot(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    git(repo, "checkout", "-q", "main")
    write(repo, "clusters/prod/intents.yaml", INTENT)
    commit_all(repo, "declare")
    git(repo, "checkout", "-q", "feature")
    git(repo, "merge", "-q", "main")
    # The change opens batch -> pg and tries to lift the deny in the same commit.
    write(repo, "clusters/prod/policy.yaml", POLICY % "batch")
    write(repo, "clusters/prod/intents.yaml", INTENT.replace("workload: batch", "workload: api"))
    commit_all(repo, "widen and redeclare")
    code, out, _ = run(capsys, "review", "--repo", str(repo), "--format", "json")
    assert code == 1
    declared = json.loads(out)["declared"]
    assert declared["declarations_changed"] and declared["needs_approval"]
    assert "-  - from: {workload: batch}" in declared["declaration_diff"]
    # The head's own intent no longer forbids it: approval, not a hard failure.
    assert declared["forbidden_new"]["count"] == 0
    assert declared["approval_new"]["count"] >= 1
    code, out, _ = run(capsys, "review", "--repo", str(repo), "--format", "md")
    assert "changes the declared communications" in out
