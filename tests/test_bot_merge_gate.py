"""End to end: the gate cannot be turned green by another pull request, a stale base, a stale
test merge commit, or an approval of an older analysis (issue 11's first half).

Each test plays a determined author with write access against the real server and the
fake GitHub, and ends (through the fixture) by asserting that every request the bot sent
matched GitHub's OpenAPI description.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from bot.app import base_branch
from bot.app.review_flow import COULD_NOT_MERGE
from bot.github import rest as github
from tests.botharness import (
    AUTHOR,
    BASE,
    HEAD,
    HEAD2,
    MERGE,
    NUMBER,
    REPO,
    WORKLOADS,
    Harness,
    MakeHarness,
    base_tree,
    db_policy,
    setup_pull,
    sha,
)
from tests.fakegithub.payloads import make_payload
from tests.fakegithub.server import FakeGitHub

APPROVED = {"review.state": "approved"}
WIDENED = base_tree(**{"policies/db.yaml": db_policy("web")})  # web -> db TCP 5432 opens
MAIN = "reachdiff (main)"
# These tests are about the gate, with pods that appear in the tree later: the repository
# says it holds the whole cluster, so pods it does not define count for nothing.
COMPLETE = {".github/reachdiff.yml": b"cluster_scope: complete\n"}


def complete_tree(**extra: bytes) -> dict[str, bytes]:
    return base_tree(**COMPLETE, **extra)


# A Deployment "api" (app: api) in namespace shop: what db_policy("api") lets in.
API = WORKLOADS.split(b"---\n")[0].replace(b"web", b"api")


@pytest.fixture(autouse=True)
def _responses_match_the_description(fake_github: FakeGitHub) -> Iterator[None]:
    """Beyond the shared harness's request check: the fake's answers stayed realistic."""
    yield
    assert fake_github.response_errors == []


async def deliver(
    h: Harness, event: str = "pull_request", action: str = "opened", **kw: Any
) -> None:
    if event.startswith("pull_request"):
        kw.setdefault("base_ref", "main")  # the examples' base is "master"
    response = await h.deliver(event, action, **kw)
    assert response.status == 202, await response.text()
    await h.settle()


def runs(h: Harness, head: str, name: str = MAIN) -> list[dict[str, Any]]:
    return [r for r in h.fake.check_runs_for(REPO, head) if r["name"] == name]


def latest(h: Harness, head: str, name: str = MAIN) -> dict[str, Any]:
    """What branch protection reads: the newest run of that name on the commit."""
    found = runs(h, head, name)
    assert found, f"no {name} check run on {head[:7]}"
    return max(found, key=lambda r: int(r["id"]))


def shown(check: dict[str, Any]) -> str:
    """The check run's page: summary and details."""
    return str(check["output"]["summary"]) + str(check["output"].get("text") or "")


def add_pull(fake: FakeGitHub, number: int, head: str, base_ref: str = "main", **kw: Any) -> None:
    base_sha = fake.repo(REPO).branches[base_ref]
    fake.add_pull(
        REPO,
        number,
        base_ref=base_ref,
        base_sha=base_sha,
        head_sha=head,
        author=kw.pop("author", AUTHOR),
        head_ref=kw.pop("head_ref", f"copy-{number}"),
        **kw,
    )


async def push_branch(h: Harness, branch: str, before: str, after: str) -> None:
    payload = make_payload(
        "push",
        "push",
        full_name=REPO,
        installation_id=h.fake.installation_id,
        api_url=h.fake.url,
        overrides={"ref": f"refs/heads/{branch}", "before": before, "after": after},
    )
    response = await h.post("push", payload.body)
    assert response.status == 202, await response.text()
    await h.settle()


# ---- a check run belongs to a commit: one per base branch -----------------------------


async def test_a_pull_request_into_another_branch_never_judges_main(harness: Harness) -> None:
    """The same head opened into a branch that already holds the widening: that review is
    green, but only as ``reachdiff (evil)``; ``reachdiff (main)`` stays failing, also
    after the other pull request is closed."""
    fake = harness.fake
    setup_pull(fake, WIDENED)
    evil = sha("evil")
    fake.add_commit(REPO, evil, WIDENED, parents=[BASE], branch="evil")
    add_pull(fake, 8, HEAD, base_ref="evil", head_ref="change")

    await deliver(harness, number=8)  # the lax one first: its check on HEAD is green
    assert latest(harness, HEAD, "reachdiff (evil)")["conclusion"] == "success"
    assert runs(harness, HEAD) == []  # nothing main's protection could take for a pass

    await deliver(harness)
    await deliver(harness, number=8, action="synchronize")  # reviewed last: main unmoved
    assert latest(harness, HEAD)["conclusion"] == "failure"
    assert latest(harness, HEAD, "reachdiff (evil)")["conclusion"] == "success"

    fake.update_pull(REPO, 8, state="closed")
    await deliver(harness, "pull_request", "closed", number=8)
    assert all(r["conclusion"] == "failure" for r in runs(harness, HEAD))


async def test_pull_requests_sharing_head_and_base_get_the_strictest_verdict(
    harness: Harness,
) -> None:
    fake = harness.fake
    setup_pull(fake, WIDENED)
    add_pull(fake, 9, HEAD)
    await deliver(harness)
    await deliver(harness, number=9)
    fake.add_review(REPO, NUMBER, user="alice", state="APPROVED", commit_id=HEAD)
    await deliver(harness, "pull_request_review", "submitted", overrides=APPROVED)

    check = latest(harness, HEAD)
    assert check["conclusion"] == "failure"  # #9 merges the same commit without approval
    assert check["output"]["title"] == "Needs approval on #9 too (same head and base)"
    # the comment says why
    assert "Pull request #9 merges this same commit" in harness.sticky()["body"]
    assert all(r["conclusion"] == "failure" for r in runs(harness, HEAD))

    # Closing the approved one leaves the unapproved one: still never green.
    fake.update_pull(REPO, NUMBER, state="closed")
    await deliver(harness, "pull_request", "closed")
    assert latest(harness, HEAD)["conclusion"] == "failure"
    assert not any(r["conclusion"] == "success" for r in runs(harness, HEAD))

    # Reopened and #9 closed instead: now only the approved one merges this head.
    fake.update_pull(REPO, NUMBER, state="open")
    fake.update_pull(REPO, 9, state="closed")
    await deliver(harness, "pull_request", "closed", number=9)
    assert latest(harness, HEAD)["conclusion"] == "success"


async def test_a_head_no_open_pull_request_merges_is_not_left_green(harness: Harness) -> None:
    """#7 is green at HEAD, then closed; main gains the api workload, which makes HEAD widen.
    A new pull request with the same head must not find HEAD green before its review (with
    auto-merge on, that alone would merge it)."""
    fake = harness.fake
    setup_pull(
        fake,
        complete_tree(**{"policies/db.yaml": db_policy("api", (5432, 5433))}),
        base_files=complete_tree(),
    )
    await deliver(harness)
    assert latest(harness, HEAD)["conclusion"] == "success"

    fake.update_pull(REPO, NUMBER, state="closed")
    await deliver(harness, "pull_request", "closed")
    retired = latest(harness, HEAD)
    assert retired["conclusion"] == "failure"
    assert retired["output"]["title"].startswith("Not under review")

    moved = sha("main-later")
    fake.add_commit(REPO, moved, {**complete_tree(), "apps/api.yaml": API}, parents=[BASE])
    fake.set_branch(REPO, "main", moved)
    await push_branch(harness, "main", BASE, moved)  # #7 is closed: nothing to re-review
    assert latest(harness, HEAD)["id"] == retired["id"]
    add_pull(fake, 10, HEAD)
    assert latest(harness, HEAD)["conclusion"] == "failure"  # before its review
    await deliver(harness, number=10)
    assert latest(harness, HEAD)["conclusion"] == "failure"
    assert "TCP 5433" in shown(latest(harness, HEAD))


async def test_pushing_away_from_a_green_head_retires_it(harness: Harness) -> None:
    fake = harness.fake
    setup_pull(fake, base_tree())
    await deliver(harness)
    assert latest(harness, HEAD)["conclusion"] == "success"
    fake.add_commit(REPO, HEAD2, WIDENED, parents=[HEAD])
    fake.set_pull_head(REPO, NUMBER, HEAD2, mergeable=None)
    await deliver(harness, "pull_request", "synchronize", head_sha=HEAD2, before=HEAD)
    assert latest(harness, HEAD)["conclusion"] == "failure"
    assert latest(harness, HEAD2)["conclusion"] == "failure"


async def test_an_approval_never_flips_an_older_check_run(harness: Harness) -> None:
    """#7's cached analysis completed a run that is no longer the newest on the head (#9's
    review made one since): the approval gets a full review and a new run; the old run is
    never patched to success."""
    fake = harness.fake
    setup_pull(fake, WIDENED)
    add_pull(fake, 9, HEAD)
    await deliver(harness)
    first = latest(harness, HEAD)
    await deliver(harness, number=9)
    fake.add_review(REPO, NUMBER, user="alice", state="APPROVED", commit_id=HEAD)
    fake.add_review(REPO, 9, user="alice", state="APPROVED", commit_id=HEAD)
    await deliver(harness, "pull_request_review", "submitted", overrides=APPROVED)

    assert latest(harness, HEAD)["id"] > first["id"]
    assert latest(harness, HEAD)["conclusion"] == "success"
    first = next(r for r in fake.check_runs if r["id"] == first["id"])
    assert first["conclusion"] == "failure"
    assert [h["json"].get("conclusion") for h in first["history"] if h["method"] == "PATCH"] == [
        "failure"
    ]


async def green_then_base_gains_api(harness: Harness, moved_name: str) -> dict[str, Any]:
    """A green review (only TCP 5433 opened for api, which has no pods), then main gains
    the api workload without a push delivery (lost, or not subscribed): the green run."""
    fake = harness.fake
    setup_pull(
        fake,
        complete_tree(**{"policies/db.yaml": db_policy("api", (5432, 5433))}),
        base_files=complete_tree(),
    )
    await deliver(harness)
    green = latest(harness, HEAD)
    assert green["conclusion"] == "success"
    moved = sha(moved_name)
    fake.add_commit(REPO, moved, {**complete_tree(), "apps/api.yaml": API}, parents=[BASE])
    fake.set_branch(REPO, "main", moved)
    return green


async def test_rerun_of_an_old_check_run_reviews_the_current_state(harness: Harness) -> None:
    """A green run from before the base moved is re-run: the new run judges the current
    base, so re-running cannot bring the old outcome back on top."""
    fake = harness.fake
    green = await green_then_base_gains_api(harness, "main2")
    pull = {"number": NUMBER, "head": {"ref": "change", "sha": HEAD}, "id": 1, "url": "x"}
    pull["base"] = {"ref": "main", "sha": BASE}
    overrides = {
        "check_run.name": MAIN,
        "check_run.id": green["id"],
        "check_run.app.id": fake.app_id,
        "check_run.pull_requests": [pull],
    }
    await deliver(harness, "check_run", "rerequested", overrides=overrides)
    newest = latest(harness, HEAD)
    assert newest["id"] > green["id"] and newest["conclusion"] == "failure"
    assert "TCP 5433" in shown(newest)


# ---- what will merge: the base moves ---------------------------------------------------


def tier_policy() -> bytes:
    return db_policy("api").replace(b"app: api", b"tier: frontend")


@pytest.mark.parametrize("told_by", ["push", "closed"])
async def test_base_branch_push_re_reviews_pull_requests_that_became_widening(
    harness: Harness, told_by: str
) -> None:
    """#8 labels web tier=frontend, #7 lets tier=frontend reach db: each is harmless on its
    own. Once #8 merges, #7 opens web -> db and must not stay green, even though GitHub's
    test merge commit for #7 still merges the old base. Either delivery about the merge
    (the push to main, or #8's ``closed`` with ``merged: true``) is enough."""
    fake = harness.fake
    h7 = HEAD
    setup_pull(
        fake,
        complete_tree(**{"policies/db.yaml": tier_policy()}),
        mergeable=True,
        base_files=complete_tree(),
    )
    labelled = WORKLOADS.replace(b"labels: {app: web}", b"labels: {app: web, tier: frontend}")
    h8 = sha("labels")
    fake.add_commit(REPO, h8, complete_tree(**{"apps/shop.yaml": labelled}), parents=[BASE])
    add_pull(fake, 8, h8)
    await deliver(harness)
    await deliver(harness, number=8)
    green = latest(harness, h7)
    assert green["conclusion"] == "success"
    assert latest(harness, h8)["conclusion"] == "success"

    merged = sha("merged-8")
    fake.merge_pull(REPO, 8, merged)
    if told_by == "push":
        await push_branch(harness, "main", BASE, merged)
    else:
        overrides = {"pull_request.merged": True, "pull_request.merge_commit_sha": merged}
        await deliver(harness, "pull_request", "closed", number=8, overrides=overrides)

    check = latest(harness, h7)
    assert check["conclusion"] == "failure"
    assert "shop/Deployment/web" in shown(check)
    # The stale test merge commit (parents [BASE, h7]) was not used: merged here.
    assert f"base branch head {merged[:7]}" in shown(check)
    assert "merged by reachdiff" in shown(check)
    assert runs(harness, h8)[-1]["conclusion"] == "success"  # merged: not reviewed again
    # The run that judged the old base was withdrawn at once, before the re-review's turn.
    green = next(r for r in fake.check_runs if r["id"] == green["id"])
    assert green["conclusion"] == "failure"
    assert green["output"]["title"] == f"Base branch main moved to {merged[:7]}; re-reviewing"
    withdrawn = green["history"][-1]["at"]
    assert withdrawn <= next(h["at"] for h in check["history"] if h["method"] == "POST")


async def test_a_base_push_beyond_the_queue_fails_the_rest_closed(
    make_harness: MakeHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No room to re-review every pull request into the moved branch: those that could not
    be queued get a failing run instead of keeping the one that judged the old base."""
    monkeypatch.setattr(base_branch, "QUEUE_WAIT", 0.05)
    harness = await make_harness(queue_size=1, review_concurrency=1)
    fake = harness.fake
    setup_pull(fake, base_tree())
    h8 = sha("eight")
    fake.add_commit(REPO, h8, base_tree(**{"README.md": b"8\n"}), parents=[BASE])
    add_pull(fake, 8, h8)
    await deliver(harness)
    await deliver(harness, number=8)
    assert latest(harness, HEAD)["conclusion"] == latest(harness, h8)["conclusion"] == "success"

    moved = sha("main-busy")
    fake.add_commit(REPO, moved, base_tree(**{"README.md": b"main\n"}), parents=[BASE])
    fake.set_branch(REPO, "main", moved)
    await push_branch(harness, "main", BASE, moved)
    newest = [latest(harness, HEAD), latest(harness, h8)]
    stale = [r for r in newest if r["output"]["title"] == "Base branch main moved; re-run"]
    assert len(stale) == 1 and stale[0]["conclusion"] == "failure"
    reviewed = next(r for r in newest if r is not stale[0])
    assert reviewed["conclusion"] == "success" and moved[:7] in shown(reviewed)


async def test_a_base_that_moves_during_the_review_is_never_concluded_green(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """main gains the api workload right after the review read main's head (no push
    delivered): the review must not write its success, and the one it queues judges the
    new base."""
    fake = harness.fake
    setup_pull(
        fake,
        complete_tree(**{"policies/db.yaml": db_policy("api", (5432, 5433))}),
        base_files=complete_tree(),
    )
    moved = sha("main-during")
    fake.add_commit(REPO, moved, {**complete_tree(), "apps/api.yaml": API}, parents=[BASE])
    read = github.get_branch_head

    async def read_then_move(*args: Any, **kwargs: Any) -> str:
        head = await read(*args, **kwargs)
        fake.set_branch(REPO, "main", moved)
        return head

    monkeypatch.setattr(github, "get_branch_head", read_then_move)
    await deliver(harness)
    first, second = sorted(runs(harness, HEAD), key=lambda r: int(r["id"]))
    assert first["conclusion"] == "failure"
    assert first["output"]["title"].startswith("Outdated")
    assert second["conclusion"] == "failure" and "TCP 5433" in shown(second)


async def test_push_to_a_branch_without_pull_requests_or_a_tag_reviews_nothing(
    harness: Harness,
) -> None:
    fake = harness.fake
    setup_pull(fake, WIDENED)
    other = sha("other")
    fake.add_commit(REPO, other, base_tree(), parents=[BASE], branch="docs")
    await push_branch(harness, "docs", BASE, other)
    payload = make_payload(
        "push", "push", full_name=REPO, installation_id=fake.installation_id, api_url=fake.url
    )
    assert (await harness.post("push", payload.body)).status == 202  # refs/tags/simple-tag
    await harness.settle()
    assert fake.check_runs == []


async def test_a_test_merge_commit_with_other_parents_is_not_trusted(harness: Harness) -> None:
    """GitHub's merge_commit_sha still points at a merge of an older head (harmless tree):
    concluding from it would pass a widening head."""
    fake = harness.fake
    setup_pull(fake, WIDENED)
    old_head = sha("old-head")
    fake.add_commit(REPO, old_head, base_tree(), parents=[BASE])
    fake.add_commit(REPO, MERGE, base_tree(), parents=[BASE, old_head])
    fake.set_pull_head(REPO, NUMBER, HEAD, merge_commit_sha=MERGE, mergeable=True)
    await deliver(harness)
    check = latest(harness, HEAD)
    assert check["conclusion"] == "failure"
    assert "merged by reachdiff" in shown(check)
    downloaded = {
        r["path"].rsplit("/", 1)[-1] for r in fake.requests if r["operation"] == "codeload"
    }
    assert MERGE not in downloaded


async def test_when_what_merges_cannot_be_built_the_check_fails_closed(
    make_harness: MakeHarness,
) -> None:
    """No test merge commit after waiting, and both sides changed the policy file: the
    review says it could not determine what will merge instead of guessing."""
    harness = await make_harness(mergeable_attempts=2, mergeable_delay=0.01)
    fake = harness.fake
    setup_pull(fake, base_tree(**{"policies/db.yaml": db_policy("api", (5432, 5433))}))
    fake.update_pull(REPO, NUMBER, mergeable=None)
    moved = sha("main-conflict")
    fake.add_commit(
        REPO, moved, base_tree(**{"policies/db.yaml": db_policy("api", (5431,))}), parents=[BASE]
    )
    fake.set_branch(REPO, "main", moved)
    await deliver(harness)
    check = latest(harness, HEAD)
    assert (check["conclusion"], check["output"]["title"]) == ("failure", COULD_NOT_MERGE)
    assert "policies/db.yaml" in shown(check)
    assert "could not determine what will merge; re-run" in harness.sticky()["body"].replace(
        "\\", ""
    )
    polls = [r for r in fake.requests if r["operation"] == "pulls/get"]
    assert len(polls) >= 2  # asked GitHub again before merging by itself


async def test_the_merged_tree_keeps_what_only_the_base_changed(harness: Harness) -> None:
    """The base added the api workload after the branch point; the PR widens db to api.
    A merge base vs head comparison sees no api pod (nothing opens); what merges does."""
    fake = harness.fake
    setup_pull(fake, base_tree(**{"policies/db.yaml": db_policy("api", (5432, 5433))}))
    moved = sha("main-api")
    fake.add_commit(REPO, moved, {**base_tree(), "apps/api.yaml": API}, parents=[BASE])
    fake.set_branch(REPO, "main", moved)
    await deliver(harness)
    check = latest(harness, HEAD)
    assert check["conclusion"] == "failure"
    assert "TCP 5433" in shown(check)


# ---- caches keyed by everything that decides the verdict ------------------------------


async def test_an_approval_after_the_base_moved_reviews_again(harness: Harness) -> None:
    """The cached analysis judged the old base; the approval event must not re-use it."""
    fake = harness.fake
    green = await green_then_base_gains_api(harness, "main3")
    fake.add_review(REPO, NUMBER, user="mallory", state="APPROVED", commit_id=HEAD)  # read only
    await deliver(harness, "pull_request_review", "submitted", overrides=APPROVED)
    newest = latest(harness, HEAD)
    assert newest["id"] > green["id"] and newest["conclusion"] == "failure"


async def test_a_settings_change_needs_approval_like_a_widening(harness: Harness) -> None:
    fake = harness.fake
    lax = b"ignore_namespaces: [shop]\n"
    setup_pull(fake, base_tree(**{".github/reachdiff.yml": lax}))
    await deliver(harness)
    check = latest(harness, HEAD)
    assert check["conclusion"] == "failure"
    assert check["output"]["title"].startswith("Changes .github/reachdiff.yml")
    assert "the rules later reviews are judged by" in harness.sticky()["body"]
    fake.add_review(REPO, NUMBER, user="alice", state="APPROVED", commit_id=HEAD)
    await deliver(harness, "pull_request_review", "submitted", overrides=APPROVED)
    assert latest(harness, HEAD)["conclusion"] == "success"


# ---- merge queues -----------------------------------------------------------------------


async def deliver_merge_group(h: Harness, head: str, base: str, number: int = NUMBER) -> None:
    payload = make_payload(
        "merge_group",
        "checks_requested",
        full_name=REPO,
        head_sha=head,
        base_sha=base,
        installation_id=h.fake.installation_id,
        api_url=h.fake.url,
        overrides={
            "merge_group.head_ref": f"refs/heads/gh-readonly-queue/main/pr-{number}-{base}",
            "merge_group.base_ref": "refs/heads/main",
        },
    )
    response = await h.post("merge_group", payload.body)
    assert response.status == 202, await response.text()
    await h.settle()


async def test_merge_group_is_reviewed_against_its_base_and_reported_on_its_head(
    harness: Harness,
) -> None:
    fake = harness.fake
    setup_pull(fake, WIDENED)
    group = sha("queue-1")
    fake.add_commit(REPO, group, WIDENED, parents=[BASE, HEAD], branch="gh-readonly-queue/x")
    await deliver_merge_group(harness, group, BASE)
    check = latest(harness, group)
    assert check["conclusion"] == "failure"
    assert "shop/Deployment/web" in shown(check)
    assert runs(harness, HEAD) == []  # reported on the group's head only

    # The pull request's own review shows the paths; an approval after it counts.
    await deliver(harness)
    fake.add_review(REPO, NUMBER, user="alice", state="APPROVED", commit_id=HEAD)
    group2 = sha("queue-2")
    fake.add_commit(REPO, group2, WIDENED, parents=[BASE, HEAD])
    await deliver_merge_group(harness, group2, BASE)
    assert latest(harness, group2)["conclusion"] == "success"


async def test_merge_group_of_a_head_the_pull_request_no_longer_has_fails(
    harness: Harness,
) -> None:
    fake = harness.fake
    setup_pull(fake, WIDENED)
    fake.add_review(REPO, NUMBER, user="alice", state="APPROVED", commit_id=HEAD)
    sneaky = sha("sneaky")  # widens db to every port, not what was approved
    fake.add_commit(REPO, sneaky, base_tree(**{"policies/db.yaml": db_policy("web", ())}), [BASE])
    await deliver_merge_group(harness, sneaky, BASE)
    check = latest(harness, sneaky)
    assert check["conclusion"] == "failure"
    assert "does not contain" in check["output"]["title"]


async def test_harmless_merge_group_passes_without_approval(harness: Harness) -> None:
    fake = harness.fake
    setup_pull(fake, WIDENED)
    group = sha("queue-harmless")
    fake.add_commit(REPO, group, base_tree(**{"README.md": b"hi\n"}), parents=[BASE])
    await deliver_merge_group(harness, group, BASE)
    assert latest(harness, group)["conclusion"] == "success"
