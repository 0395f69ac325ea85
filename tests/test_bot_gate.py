"""End to end: the gate cannot be turned green without a person's approval of this head.

Scenarios of issue 11 (approvals, what the bot cannot see, delivery shapes, check runs
that must always complete), each against the fake GitHub with every request validated.
"""

from __future__ import annotations

import pytest

from bot import github
from tests.botharness import (
    AUTHOR,
    HEAD,
    HEAD2,
    NUMBER,
    REPO,
    Harness,
    base_tree,
    db_policy,
    review,
    setup_pull,
)
from tests.fakegithub.server import FakeGitHub
from tests.test_bot_e2e import APPROVED, WIDENED

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
