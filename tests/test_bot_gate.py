"""End to end: the gate cannot be turned green without a person's approval of this head.

Scenarios of issue 11 (approvals, what the bot cannot see, delivery shapes, check runs
that must always complete), each against the fake GitHub with every request validated.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest

from bot.app.reconcile import reconcile
from bot.github import rest as github
from bot.github.rest import Repository
from bot.inputs.analyze import DiffResult, analyze
from bot.render.posts import MARKER
from bot.review.settings import parse_repo_settings
from bot.review.verdict import assess
from tests.botharness import (
    AUTHOR,
    BASE,
    HEAD,
    HEAD2,
    HEAD3,
    NUMBER,
    REPO,
    WORKLOADS,
    Harness,
    MakeHarness,
    base_tree,
    db_policy,
    review,
    setup_pull,
    sha,
)
from tests.fakegithub.server import FakeGitHub
from tests.test_bot_e2e import APPROVED, WIDENED

HEAD4 = sha("head4")
PEOPLE = {"alice": "write", AUTHOR: "write", "bob": "maintain", "deploy[bot]": "admin"}


def synchronize_by(
    fake: FakeGitHub, pusher: str, sha: str = HEAD2, *, author: str = AUTHOR
) -> None:
    fake.add_commit(
        REPO,
        sha,
        base_tree(**{"policies/db.yaml": db_policy("web", (5432, 5433))}),
        parents=[HEAD],
        author=author,
    )
    fake.set_pull_head(REPO, NUMBER, sha, mergeable=False)


# ---- approvals ----------------------------------------------------------------------------


async def test_every_page_of_reviews_is_read_and_a_late_revocation_counts(harness: Harness) -> None:
    fake = harness.fake
    setup_pull(fake, WIDENED, collaborators=PEOPLE)
    fake.add_review(REPO, NUMBER, user="alice", state="APPROVED", commit_id=HEAD)
    for _ in range(120):  # more than one page of 100
        fake.add_review(REPO, NUMBER, user="bob", state="COMMENTED", commit_id=HEAD)
    fake.add_review(REPO, NUMBER, user="alice", state="CHANGES_REQUESTED", commit_id=HEAD)
    await review(harness)
    assert harness.check(HEAD)["conclusion"] == "failure"
    pages = [r for r in fake.requests if r["operation"] == "pulls/list-reviews"]
    assert len(pages) == 2


async def test_more_reviews_than_the_bound_fail_closed(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = harness.fake
    setup_pull(fake, WIDENED, collaborators=PEOPLE)
    monkeypatch.setattr(github, "MAX_REVIEWS", 3)
    for _ in range(4):
        fake.add_review(REPO, NUMBER, user="alice", state="APPROVED", commit_id=HEAD)
    await review(harness)
    check = harness.check(HEAD)
    assert check["conclusion"] == "failure"
    assert "Too many reviews" in check["output"]["title"]
    # An approval event re-evaluating a green check fails it too.
    monkeypatch.setattr(github, "MAX_REVIEWS", 10)
    await review(harness)
    check = harness.check(HEAD)
    # Approved before any review showed the paths: they approved no delta.
    assert check["conclusion"] == "failure"
    assert "approved before reachdiff showed the paths" in harness.sticky()["body"]
    fake.add_review(REPO, NUMBER, user="alice", state="APPROVED", commit_id=HEAD)
    await review(harness, "pull_request_review", "submitted", overrides=APPROVED)
    assert harness.check(HEAD)["conclusion"] == "success"
    monkeypatch.setattr(github, "MAX_REVIEWS", 3)
    await review(harness, "pull_request_review", "submitted", overrides=APPROVED)
    assert harness.check(HEAD)["conclusion"] == "failure"


async def test_a_bot_account_never_approves_whatever_its_permission(harness: Harness) -> None:
    fake = harness.fake
    setup_pull(fake, WIDENED, collaborators=PEOPLE)
    await review(harness)
    fake.add_review(REPO, NUMBER, user="deploy[bot]", state="APPROVED", commit_id=HEAD)
    await review(harness, "pull_request_review", "submitted", overrides=APPROVED)
    check = harness.check(HEAD)
    assert check["conclusion"] == "failure"
    assert "is a bot account" in harness.sticky()["body"]
    permission_lookups = [
        r for r in fake.requests if r["operation"] == "repos/get-collaborator-permission-level"
    ]
    assert permission_lookups == []


async def test_the_last_pusher_cannot_approve_their_own_push(harness: Harness) -> None:
    fake = harness.fake
    setup_pull(fake, WIDENED, collaborators=PEOPLE)
    await review(harness)
    # alice approves, then pushes a further widening herself and approves again.
    synchronize_by(fake, "alice")
    await review(harness, "pull_request", "synchronize", head_sha=HEAD2, sender="alice")
    fake.add_review(REPO, NUMBER, user="alice", state="APPROVED", commit_id=HEAD2)
    await review(harness, "pull_request_review", "submitted", overrides=APPROVED)
    assert harness.check(HEAD2)["conclusion"] == "failure"
    assert "pushed the head commit" in harness.sticky()["body"]
    fake.add_review(REPO, NUMBER, user="bob", state="APPROVED", commit_id=HEAD2)
    await review(harness, "pull_request_review", "submitted", overrides=APPROVED)
    assert harness.check(HEAD2)["conclusion"] == "success"


async def test_exclude_last_pusher_can_be_turned_off(harness: Harness) -> None:
    fake = harness.fake
    settings = b"exclude_last_pusher: false\n"
    setup_pull(
        fake,
        WIDENED,
        collaborators=PEOPLE,
        base_files=base_tree(**{".github/reachdiff.yml": settings}),
    )
    synchronize_by(fake, "alice")
    await review(harness, "pull_request", "synchronize", head_sha=HEAD2, sender="alice")
    fake.add_review(REPO, NUMBER, user="alice", state="APPROVED", commit_id=HEAD2)
    await review(harness, "pull_request_review", "submitted", overrides=APPROVED)
    assert harness.check(HEAD2)["conclusion"] == "success"


async def test_unknown_pusher_falls_back_to_the_head_commits_author(harness: Harness) -> None:
    fake = harness.fake
    setup_pull(fake, WIDENED, collaborators=PEOPLE)
    synchronize_by(fake, "alice", author="alice")
    # No synchronize was seen (say the server restarted): a re-run reviews the head.
    fake.add_review(REPO, NUMBER, user="alice", state="APPROVED", commit_id=HEAD2)
    await review(harness, "check_suite", "rerequested", head_sha=HEAD2)
    assert harness.check(HEAD2)["conclusion"] == "failure"
    assert "pushed the head commit" in harness.sticky()["body"]
    fake.add_review(REPO, NUMBER, user="bob", state="APPROVED", commit_id=HEAD2)
    await review(harness, "pull_request_review", "submitted", overrides=APPROVED)
    assert harness.check(HEAD2)["conclusion"] == "success"
    assert fake.validation_errors == []


# ---- every check run completes; a stale delivery cancels nothing --------------------------


def runs_on(fake: FakeGitHub, sha: str) -> list[dict[str, Any]]:
    return [r for r in fake.check_runs_for(REPO, sha) if r["name"] == "reachdiff (main)"]


async def test_a_review_cancelled_while_its_check_run_is_created_completes_it(
    harness: Harness,
) -> None:
    fake = harness.fake
    setup_pull(fake, WIDENED, collaborators=PEOPLE)
    pause = fake.pause_next("POST", "/repos/*/check-runs")
    assert (await harness.deliver("pull_request", "opened")).status == 202
    await asyncio.wait_for(pause.arrived.wait(), 10)
    # A push while GitHub is still creating the first head's run supersedes that review.
    synchronize_by(fake, "alice")
    assert (await harness.deliver("pull_request", "synchronize", head_sha=HEAD2)).status == 202
    # The queue asks GitHub for the current head (a second pulls/get) before cancelling.
    for _ in range(500):
        if sum(r["operation"] == "pulls/get" for r in fake.requests) >= 2:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    pause.release.set()
    await harness.settle()
    [first] = runs_on(fake, HEAD)
    assert first["status"] == "completed" and first["conclusion"] == "cancelled"
    assert runs_on(fake, HEAD2)[-1]["status"] == "completed"
    assert all(r["status"] == "completed" for r in fake.check_runs)


async def test_a_delivery_naming_an_older_head_never_cancels_the_current_review(
    harness: Harness,
) -> None:
    fake = harness.fake
    setup_pull(fake, WIDENED, collaborators=PEOPLE)
    synchronize_by(fake, "alice")  # the pull request's head is now HEAD2
    pause = fake.pause_next("GET", "/_codeload/*")
    assert (await harness.deliver("pull_request", "synchronize", head_sha=HEAD2)).status == 202
    await asyncio.wait_for(pause.arrived.wait(), 10)
    # GitHub redelivers (or delays) the older head's delivery.
    assert (await harness.deliver("pull_request", "opened", head_sha=HEAD)).status == 202
    await asyncio.sleep(0.3)  # time for the queue to ask GitHub whether HEAD2 is outdated
    pause.release.set()
    await harness.settle()
    runs = runs_on(fake, HEAD2)
    assert [r["conclusion"] for r in runs] == ["failure", "failure"]  # reviewed, never cancelled
    assert runs_on(fake, HEAD) == []
    # The question went to GitHub: the queue asked for the pull request's current head.
    assert any(r["operation"] == "pulls/get" for r in fake.requests)


async def test_shutdown_completes_running_reviews_as_interrupted(harness: Harness) -> None:
    fake = harness.fake
    setup_pull(fake, WIDENED, collaborators=PEOPLE)
    pause = fake.pause_next("GET", "/_codeload/*")
    assert (await harness.deliver("pull_request", "opened")).status == 202
    await asyncio.wait_for(pause.arrived.wait(), 10)
    closing = asyncio.create_task(harness.bot.jobs.close(grace=0.2))
    await asyncio.sleep(0.05)
    # Stopping: no new work is accepted.
    response = await harness.deliver("pull_request", "synchronize")
    assert response.status == 503
    await closing
    pause.release.set()
    [run] = runs_on(fake, HEAD)
    assert run["status"] == "completed" and run["conclusion"] == "failure"
    assert run["output"]["title"] == "Interrupted; re-reviewing"


# ---- the sticky comment is the app's own ------------------------------------------------


async def test_another_bots_comment_with_our_marker_is_never_taken_for_ours(
    harness: Harness,
) -> None:
    fake = harness.fake
    setup_pull(fake, WIDENED, collaborators=PEOPLE)
    decoy = f"{MARKER}\nreachdiff: unchanged, nothing to approve"
    other = fake.add_issue_comment(REPO, NUMBER, user="helper[bot]", body=decoy)
    person = fake.add_issue_comment(REPO, NUMBER, user="alice", body=decoy, via_app=True)
    await review(harness)
    assert other["body"] == decoy and other["history"] == []
    assert person["body"] == decoy and person["history"] == []
    mine = [c for c in fake.comments_on(REPO, NUMBER) if c["user"] == fake.bot_login]
    assert len(mine) == 1 and "widened" in mine[0]["body"]
    # The next review edits that one comment, found by the app's own login from GET /app.
    synchronize_by(fake, "alice")
    await review(harness, "pull_request", "synchronize", head_sha=HEAD2)
    mine = [c for c in fake.comments_on(REPO, NUMBER) if c["user"] == fake.bot_login]
    assert len(mine) == 1 and mine[0]["history"]
    assert any(r["operation"] == "apps/get-authenticated" for r in fake.requests)


# ---- reconciliation -----------------------------------------------------------------------


async def test_reconciliation_reviews_heads_left_without_a_finished_check(
    harness: Harness,
) -> None:
    fake = harness.fake
    setup_pull(fake, WIDENED, collaborators=PEOPLE)
    await review(harness)  # #7: reviewed, its run completed
    fake.add_commit(REPO, HEAD3, WIDENED, parents=[BASE], branch="other")
    fake.add_pull(
        REPO, 8, base_ref="main", base_sha=BASE, head_sha=HEAD3, author=AUTHOR, head_ref="other"
    )  # #8: its delivery never arrived
    fake.add_commit(REPO, HEAD4, WIDENED, parents=[BASE], branch="third")
    fake.add_pull(
        REPO, 9, base_ref="main", base_sha=BASE, head_sha=HEAD4, author=AUTHOR, head_ref="third"
    )
    gh = await harness.bot.client(fake.installation_id)
    # #9: a run left in progress by a server that died mid-review.
    await github.create_check_run(
        gh,
        Repository("octo-org", "gitops"),
        {"name": "reachdiff (main)", "head_sha": HEAD4, "status": "in_progress"},
    )
    before = len(runs_on(fake, HEAD))
    assert await reconcile(harness.bot) == 2
    await harness.settle()
    assert len(runs_on(fake, HEAD)) == before  # #7 untouched
    assert runs_on(fake, HEAD3)[-1]["status"] == "completed"
    assert runs_on(fake, HEAD4)[-1]["status"] == "completed"
    assert runs_on(fake, HEAD4)[-1]["conclusion"] == "failure"
    assert await reconcile(harness.bot) == 0  # nothing left


# ---- what the bot cannot see fails closed -------------------------------------------------

LFS_POINTER = (
    b"version https://git-lfs.github.com/spec/v1\n"
    b"oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
    b"size 12345\n"
)


def failure_lines(harness: Harness, sha: str) -> str:
    check = harness.check(sha)
    assert check["conclusion"] == "failure"
    return str(check["output"]["summary"]).replace("\\", "")


async def test_a_submodule_inside_paths_fails_closed(harness: Harness) -> None:
    fake = harness.fake
    setup_pull(fake, base_tree(), collaborators=PEOPLE)
    # The head adds a submodule under policies/ (Argo CD would fetch and apply it).
    fake.add_commit(REPO, HEAD2, base_tree(), parents=[HEAD], gitlinks={"policies/shared": HEAD})
    fake.set_pull_head(REPO, NUMBER, HEAD2, mergeable=False)
    await review(harness, "pull_request", "synchronize", head_sha=HEAD2)
    summary = failure_lines(harness, HEAD2)
    assert "not analysed: policies/shared: a git submodule" in summary
    assert harness.check(HEAD2)["output"]["title"] == "Part of the repository could not be analysed"
    assert "not analysed: policies/shared" in harness.sticky()["body"].replace("\\", "")


async def test_a_submodule_accepted_by_ignore_paths_is_shown_not_failed(harness: Harness) -> None:
    fake = harness.fake
    settings = b'ignore_paths: ["policies/shared/**"]\n'
    base = base_tree(**{".github/reachdiff.yml": settings})
    setup_pull(fake, base, base_files=base, collaborators=PEOPLE)
    fake.add_commit(REPO, HEAD2, base, parents=[HEAD], gitlinks={"policies/shared": HEAD})
    fake.set_pull_head(REPO, NUMBER, HEAD2, mergeable=False)
    await review(harness, "pull_request", "synchronize", head_sha=HEAD2)
    assert harness.check(HEAD2)["conclusion"] == "success"
    body = harness.sticky()["body"]
    assert "ignore_paths" in body and "policies/shared" in body


async def test_an_lfs_pointer_in_place_of_a_manifest_fails_closed(harness: Harness) -> None:
    fake = harness.fake
    setup_pull(fake, base_tree(**{"policies/db.yaml": LFS_POINTER}), collaborators=PEOPLE)
    await review(harness)
    assert "not analysed: policies/db.yaml: a Git LFS pointer" in failure_lines(harness, HEAD)


async def test_a_manifest_the_archive_leaves_out_fails_closed(harness: Harness) -> None:
    """export-ignore hides a widened policy from the archive; it would look deleted (a
    narrowing) while Argo CD applies it from the checkout."""
    fake = harness.fake
    head = base_tree(
        **{
            "policies/db.yaml": db_policy("web"),
            ".gitattributes": b"policies/db.yaml export-ignore\n",
        }
    )
    setup_pull(fake, head, collaborators=PEOPLE)
    await review(harness)
    summary = failure_lines(harness, HEAD)
    assert "not analysed: policies/db.yaml: left out of the repository archive" in summary


async def test_a_truncated_tree_listing_fails_closed(harness: Harness) -> None:
    fake = harness.fake
    setup_pull(fake, WIDENED, collaborators=PEOPLE)
    fake.tree_entry_limit = 3
    await review(harness)
    assert "too large for GitHub to list" in failure_lines(harness, HEAD)


# ---- new_workloads_widen: false exempts only really new pods --------------------------------

RELAXED = b"new_workloads_widen: false\n"


def _renamed(text: bytes, old: bytes, new: bytes) -> bytes:
    return text.replace(b"name: " + old + b"\n", b"name: " + new + b"\n", 1)


async def test_a_renamed_deployment_is_not_a_new_workload(harness: Harness) -> None:
    fake = harness.fake
    base = base_tree(**{".github/reachdiff.yml": RELAXED})
    # The same pods (namespace shop, labels app: db) under a new name, and web let in.
    head = {
        **base,
        "apps/shop.yaml": _renamed(WORKLOADS, b"db", b"database"),
        "policies/db.yaml": db_policy("web"),
    }
    setup_pull(fake, head, base_files=base, collaborators=PEOPLE)
    await review(harness)
    check = harness.check(HEAD)
    assert check["conclusion"] == "failure"
    assert "needs 1 approval" in check["output"]["title"]


async def test_a_really_new_workload_is_exempt(harness: Harness) -> None:
    fake = harness.fake
    base = base_tree(**{".github/reachdiff.yml": RELAXED})
    cache = (
        WORKLOADS.split(b"---\n")[1]
        .replace(b"name: db", b"name: cache")
        .replace(b"app: db", b"app: cache")
    )
    head = {
        **base,
        "apps/cache.yaml": cache,
        "policies/cache.yaml": db_policy("web")
        .replace(b"app: db", b"app: cache")
        .replace(b"db-ingress", b"cache-ingress"),
    }
    setup_pull(fake, head, base_files=base, collaborators=PEOPLE)
    await review(harness)
    assert harness.check(HEAD)["conclusion"] == "success"


def test_a_renamed_kustomize_overlay_is_the_same_pods() -> None:
    """Every workload of a renamed overlay is new by name; by what selects them (namespace
    and pod-template labels) they are the base overlay's, so nothing is exempt."""

    def overlay(name: str, peer: str) -> dict[str, bytes]:
        return {
            f"overlays/{name}/kustomization.yaml": b"resources: [app.yaml, policy.yaml]\n",
            f"overlays/{name}/app.yaml": WORKLOADS,
            f"overlays/{name}/policy.yaml": db_policy(peer),
        }

    result = analyze(overlay("prod", "api"), overlay("production", "web"))
    assert isinstance(result, DiffResult) and result.opened
    assert {i for i in result.same_pods if "~" not in i} == {
        "overlays/production:shop/Deployment/db",
        "overlays/production:shop/Deployment/web",
    }
    # cluster_scope partial: the renamed overlay's representatives of pods it does not
    # define are never new workloads either.
    outside = {e.id for e in result.added_endpoints if e.is_outside}
    assert outside and outside <= result.same_pods
    relaxed = parse_repo_settings(RELAXED)
    assert assess(result, relaxed).gated == assess(result, relaxed).opened
    # Without the identity, every opened path would have been waved through as new.
    by_name = dataclasses.replace(result, same_pods=frozenset())
    assert assess(by_name, relaxed).gated == ()


# ---- further bypasses -------------------------------------------------------------------------


async def test_a_forged_check_run_of_our_name_does_not_keep_a_green_head_green(
    harness: Harness,
) -> None:
    """A workflow in the pull request can create a check run of any name. A failing
    `reachdiff (main)` of its own on a green head must not stop the bot from retiring its
    own green run when no open pull request merges that head any more."""
    fake = harness.fake
    setup_pull(fake, base_tree(), collaborators=PEOPLE)
    await review(harness)
    ours = [r for r in runs_on(fake, HEAD) if "foreign_app" not in r]
    assert ours[-1]["conclusion"] == "success"
    fake.add_foreign_check_run(REPO, HEAD, "reachdiff (main)", "failure")
    synchronize_by(fake, "alice")
    await review(
        harness, "pull_request", "synchronize", head_sha=HEAD2, before=HEAD, base_ref="main"
    )
    ours = [r for r in runs_on(fake, HEAD) if "foreign_app" not in r]
    assert ours[-1]["conclusion"] == "failure"


async def test_whoever_pushed_commits_a_colleague_opened_cannot_approve_them(
    harness: Harness,
) -> None:
    """The `opened` sender opened the pull request; the head commit's author (who pushed
    it) is excluded too."""
    fake = harness.fake
    setup_pull(fake, base_tree(), collaborators=PEOPLE)
    synchronize_by(fake, "bob", author="bob")
    await review(harness, "pull_request", "opened", head_sha=HEAD2, sender="alice")
    fake.add_review(REPO, NUMBER, user="bob", state="APPROVED", commit_id=HEAD2)
    await review(harness, "pull_request_review", "submitted", overrides=APPROVED)
    assert harness.check(HEAD2)["conclusion"] == "failure"
    assert "pushed the head commit" in harness.sticky()["body"]


async def test_the_server_reconciles_at_start_up(
    fake_github: FakeGitHub, make_harness: MakeHarness
) -> None:
    """A pull request whose delivery was missed while the server was down is reviewed by
    the first reconciliation pass, without any delivery."""
    fake = fake_github
    setup_pull(fake, WIDENED, collaborators=PEOPLE)
    await make_harness(reconcile_interval=3600.0)
    for _ in range(600):
        if runs_on(fake, HEAD) and runs_on(fake, HEAD)[-1]["status"] == "completed":
            break
        await asyncio.sleep(0.05)
    assert runs_on(fake, HEAD)[-1]["conclusion"] == "failure"
    assert any(r["operation"] == "apps/list-installations" for r in fake.requests)
