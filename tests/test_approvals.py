from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from bot.review.approvals import (
    APPROVED,
    WHY_AUTHOR,
    WHY_DELTA_CHANGED,
    WHY_DELTA_UNSEEN,
    WHY_NOT_AUTHORIZED,
    WHY_STALE,
    ApprovalStatus,
    Review,
    ShownDelta,
    approval_saw,
    evaluate_approvals,
    latest_reviews,
    reviewers_to_check,
)

HEAD = "h" * 40
OLD = "0" * 40
# The "review" objects of octokit/webhooks' pull_request_review/{submitted,dismissed}
# payload examples (MIT, Copyright (c) 2018 Gregor Martynus), trimmed to the fields read.
WEBHOOK_REVIEWS: dict[str, dict[str, Any]] = {
    "submitted": {
        "id": 237895671,
        "user": {"login": "Codertocat", "type": "User"},
        "body": None,
        "commit_id": "ec26c3e57ca3a959ca5aad62de7213c562f8c821",
        "submitted_at": "2019-05-15T15:20:38Z",
        "state": "commented",
    },
    "dismissed": {
        "id": 237895671,
        "user": {"login": "Codertocat", "type": "User"},
        "body": None,
        "commit_id": "ec26c3e57ca3a959ca5aad62de7213c562f8c821",
        "submitted_at": "2019-05-15T15:20:38Z",
        "state": "dismissed",
    },
}


def review(n: int, user: str, state: str, commit: str = HEAD, minute: int | None = None) -> Review:
    minute = n if minute is None else minute
    return Review(
        id=n,
        user=user,
        state=state,
        commit_id=commit,
        submitted_at=f"2024-05-01T12:{minute:02d}:00Z",
    )


def everyone(_: str) -> bool:
    return True


def only(*logins: str) -> Callable[[str], bool]:
    return lambda login: login.lower() in {x.lower() for x in logins}


def evaluate(
    reviews: list[Review],
    *,
    required: int = 1,
    author: str = "author",
    is_authorized: Callable[[str], bool] = everyone,
) -> ApprovalStatus:
    return evaluate_approvals(
        reviews, head_sha=HEAD, author=author, is_authorized=is_authorized, required=required
    )


def test_commented_does_not_change_a_prior_approval() -> None:
    reviews = [review(1, "bob", "APPROVED"), review(2, "bob", "COMMENTED")]
    assert latest_reviews(reviews)["bob"].id == 1
    assert evaluate(reviews).approved_by == ("bob",)


@pytest.mark.parametrize("revoking", ["CHANGES_REQUESTED", "DISMISSED"])
def test_a_later_state_bearing_review_revokes_an_approval(revoking: str) -> None:
    reviews = [review(1, "bob", "APPROVED"), review(2, "bob", revoking)]
    assert latest_reviews(reviews)["bob"].state == revoking
    status = evaluate(reviews)
    assert status.approved_by == ()
    assert not status.satisfied


def test_approval_after_changes_requested_counts() -> None:
    reviews = [review(1, "bob", "CHANGES_REQUESTED"), review(2, "bob", "APPROVED")]
    assert evaluate(reviews).approved_by == ("bob",)


def test_order_is_by_submission_time_not_list_order() -> None:
    reviews = [review(2, "bob", "APPROVED", minute=30), review(1, "bob", "DISMISSED", minute=10)]
    assert latest_reviews(reviews)["bob"].id == 2
    # Same second: the higher id (created later) wins.
    tied = [review(7, "bob", "APPROVED", minute=5), review(6, "bob", "CHANGES_REQUESTED", minute=5)]
    assert latest_reviews(tied)["bob"].state == "APPROVED"


def test_logins_are_case_insensitive() -> None:
    reviews = [review(1, "Bob", "APPROVED"), review(2, "bob", "CHANGES_REQUESTED")]
    assert set(latest_reviews(reviews)) == {"bob"}
    assert evaluate(reviews).approved_by == ()


def test_only_commented_is_no_latest_review() -> None:
    assert latest_reviews([review(1, "bob", "COMMENTED")]) == {}


def test_the_author_never_counts() -> None:
    status = evaluate([review(1, "Alice", "APPROVED")], author="alice")
    assert status.approved_by == ()
    assert status.ignored == (("Alice", WHY_AUTHOR),)


def test_an_approval_of_an_older_commit_does_not_count() -> None:
    status = evaluate([review(1, "bob", "APPROVED", commit=OLD)])
    assert status.approved_by == ()
    assert status.ignored == (("bob", f"{WHY_STALE} (0000000)"),)


def test_unauthorized_reviewers_do_not_count() -> None:
    asked: list[str] = []

    def authorized(login: str) -> bool:
        asked.append(login)
        return login == "carol"

    status = evaluate(
        [
            review(1, "bob", "APPROVED"),
            review(2, "carol", "APPROVED"),
            review(3, "alice", "APPROVED"),
            review(4, "dave", "APPROVED", commit=OLD),
        ],
        author="alice",
        is_authorized=authorized,
    )
    assert status.approved_by == ("carol",)
    assert ("bob", WHY_NOT_AUTHORIZED) in status.ignored
    # Authorization is only asked for approvals that could otherwise count.
    assert sorted(asked) == ["bob", "carol"]


def test_required_count() -> None:
    reviews = [review(1, "bob", "APPROVED"), review(2, "carol", "APPROVED")]
    assert evaluate(reviews, required=2).satisfied
    status = evaluate(reviews, required=3)
    assert not status.satisfied
    assert status.missing == 1
    assert evaluate(reviews, required=2, is_authorized=only("bob")).missing == 1


def test_reviewers_to_check() -> None:
    reviews = [
        review(1, "bob", "APPROVED"),
        review(2, "carol", "APPROVED"),
        review(3, "carol", "DISMISSED"),
        review(4, "dave", "COMMENTED"),
        review(5, "erin", "APPROVED", commit=OLD),
        review(6, "Alice", "APPROVED"),
    ]
    assert reviewers_to_check(reviews) == {"bob", "erin", "Alice"}
    assert reviewers_to_check(reviews, head_sha=HEAD, author="alice") == {"bob"}


def test_from_api_rest_and_webhook_shapes() -> None:
    rest = {
        "id": 80,
        "user": {"login": "octocat", "type": "User"},
        "state": "APPROVED",
        "commit_id": "ecdd80bb57125d7ba9641ffaa4d7d2c19d3f3091",
        "submitted_at": "2019-11-17T17:43:43Z",
    }
    assert Review.from_api(rest) == Review(
        80,
        "octocat",
        "APPROVED",
        "ecdd80bb57125d7ba9641ffaa4d7d2c19d3f3091",
        "2019-11-17T17:43:43Z",
    )
    assert Review.from_api({**rest, "state": "PENDING", "submitted_at": None}) is None
    assert Review.from_api({**rest, "user": None}) is None
    bot = Review.from_api({**rest, "user": {"login": "helper[bot]", "type": "Bot"}})
    assert bot is not None and bot.user_type == "Bot"
    untyped = Review.from_api({**rest, "user": {"login": "octocat"}})
    assert untyped is not None and untyped.user_type == ""


@pytest.mark.parametrize(
    ("login", "user_type"),
    [("helper[bot]", "Bot"), ("ci-bot", "Bot"), ("octo", ""), ("renovate[bot]", "User")],
)
def test_bot_accounts_never_approve(login: str, user_type: str) -> None:
    bot = Review(1, login, "APPROVED", HEAD, "2024-05-01T12:01:00Z", user_type=user_type)
    person = review(2, "bob", "APPROVED")
    status = evaluate([bot, person], required=2)
    assert status.approved_by == ("bob",) and not status.satisfied
    assert (login, "is a bot account") in status.ignored
    assert reviewers_to_check([bot, person], head_sha=HEAD, author="x") == {"bob"}


def test_the_heads_pusher_does_not_approve_it() -> None:
    reviews = [review(1, "bob", "APPROVED"), review(2, "Carol", "APPROVED")]
    status = evaluate_approvals(
        reviews,
        head_sha=HEAD,
        author="author",
        is_authorized=everyone,
        required=1,
        pushers=("carol",),
    )
    assert status.approved_by == ("bob",)
    assert ("Carol", "pushed the head commit") in status.ignored
    # Nobody known to have pushed: fail safe, nothing counts.
    unknown = evaluate_approvals(
        reviews, head_sha=HEAD, author="author", is_authorized=everyone, required=1, pushers=None
    )
    assert unknown.approved_by == () and not unknown.satisfied
    assert len(unknown.ignored) == 2
    # Without exclusion (the shell passes no pushers) both count.
    assert evaluate(reviews, required=2).satisfied


@pytest.mark.parametrize(
    ("action", "state"), [("submitted", "COMMENTED"), ("dismissed", "DISMISSED")]
)
def test_from_api_webhook_payloads(action: str, state: str) -> None:
    raw = WEBHOOK_REVIEWS[action]
    parsed = Review.from_api(raw)
    assert parsed is not None
    assert parsed.state == state  # webhooks send lowercase states
    assert parsed.user == "Codertocat"
    assert parsed.commit_id == raw["commit_id"]
    # A dismissed review is the same review whose state changed: it revokes.
    if action == "dismissed":
        approved = Review(
            parsed.id - 1, "Codertocat", "APPROVED", raw["commit_id"], "2019-05-15T15:00:00Z"
        )
        assert latest_reviews([approved, parsed])["codertocat"].state == "DISMISSED"


# ---- rule 6: an approval counts only for the gated delta its approver could have seen -----


def shown_at(minute: int, second: int, digest: str) -> ShownDelta:
    return ShownDelta(at=f"2024-05-01T12:{minute:02d}:{second:02d}Z", digest=digest)


def test_an_approval_counts_for_the_newest_delta_shown_before_it() -> None:
    shown = [shown_at(1, 0, "X"), shown_at(5, 0, "XY")]
    # minute 3: after X was shown, before XY was.
    assert approval_saw("2024-05-01T12:03:00Z", shown, "X") is True
    assert approval_saw("2024-05-01T12:03:00Z", shown, "XY") is False
    assert approval_saw("2024-05-01T12:07:00Z", shown, "XY") is True
    assert approval_saw("2024-05-01T12:07:00Z", shown, "X") is False


def test_deltas_shown_within_the_clock_margin_must_match_too() -> None:
    shown = [shown_at(1, 0, "X"), shown_at(3, 2, "XY")]  # 2 s after the approval
    assert approval_saw("2024-05-01T12:03:00Z", shown, "X") is False
    assert approval_saw("2024-05-01T12:03:00Z", shown, "XY") is False
    # Both within the margin and alike: seen.
    assert approval_saw("2024-05-01T12:03:00Z", [shown_at(3, 1, "X")], "X") is True


def test_nothing_shown_before_or_unreadable_times_is_not_seen() -> None:
    assert approval_saw("2024-05-01T12:03:00Z", [], "X") is None
    assert approval_saw("2024-05-01T12:03:00Z", [shown_at(9, 0, "X")], "X") is None
    assert approval_saw("yesterday", [shown_at(1, 0, "X")], "X") is None
    assert approval_saw("2024-05-01T12:03:00Z", [ShownDelta("soon", "X")], "X") is None


def test_evaluate_ignores_approvals_of_another_delta_and_says_why() -> None:
    reviews = [
        review(3, "alice", APPROVED),
        review(7, "bob", APPROVED),
        review(0, "carol", APPROVED),
    ]
    shown = [shown_at(1, 0, "X"), shown_at(5, 0, "XY")]
    status = evaluate_approvals(
        reviews,
        head_sha=HEAD,
        author="author",
        is_authorized=everyone,
        required=1,
        delta="XY",
        shown=shown,
    )
    assert status.approved_by == ("bob",)
    assert dict(status.ignored) == {"alice": WHY_DELTA_CHANGED, "carol": WHY_DELTA_UNSEEN}
    # Without a delta to check (nothing gated), rule 6 does not apply.
    unchecked = evaluate_approvals(
        reviews, head_sha=HEAD, author="author", is_authorized=everyone, required=1, shown=shown
    )
    assert set(unchecked.approved_by) == {"alice", "bob", "carol"}
