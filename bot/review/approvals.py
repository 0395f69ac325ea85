"""Which pull request reviews count as approvals of a widening.

Rules, in the order they are applied to each reviewer's latest review:

1. Only a reviewer's latest *state-bearing* review counts: ``COMMENTED`` leaves an earlier
   approval standing, a later ``CHANGES_REQUESTED`` or ``DISMISSED`` revokes it (GitHub
   turns a dismissed review's own state into ``DISMISSED``).
2. The pull request's author never approves their own change.
3. An approval of an older commit does not count: the approver has not seen the head.
4. An account of type ``Bot`` never approves, whatever its permission: an app or a CI
   token a PR author can trigger is not a person who looked at the change.
5. With ``exclude_last_pusher`` (the default), whoever pushed the head does not approve
   it either: they could push a widening after a colleague's approval and approve it
   themselves. When the shell cannot tell who pushed, it passes the head commit's author
   and committer instead; when it knows nobody, no approval counts.
6. Given the gated delta now (``delta``, a digest of the paths that need approval) and
   the deltas the app showed on this head for this base (``shown``), an approval counts
   only for the delta its approver could have seen (``approval_saw``): an approval of a
   head is not an approval of whatever merging it into a later base head opens.
7. The reviewer must be authorized (``is_authorized``, which the shell answers from the
   repository settings or the reviewer's permission).

With ``keep_approvals_when_delta_unchanged``, rule 3 has one exception: an approval of an
older commit on which the app showed exactly the analysed delta the head has now (every
opened path, its ports, its causes' rules and the settings: ``carried``) carries over to
the head; rules 2, 4, 5 and 7 still apply to it (the head's pusher is excluded).

Logins are compared case-insensitively, as GitHub does.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from analysis.diff import PathChange

APPROVED = "APPROVED"
CHANGES_REQUESTED = "CHANGES_REQUESTED"
COMMENTED = "COMMENTED"
DISMISSED = "DISMISSED"
_STATE_BEARING = frozenset({APPROVED, CHANGES_REQUESTED, DISMISSED})

WHY_AUTHOR = "is the pull request's author"
WHY_BOT = "is a bot account"
WHY_PUSHER = "pushed the head commit"
WHY_PUSHER_UNKNOWN = "the head's pusher is unknown (push again, or re-run the check)"
WHY_NOT_AUTHORIZED = "is not an authorized approver"
WHY_STALE = "approved an older commit"
WHY_DELTA_CHANGED = "approved before the base moved; the paths below are new"
WHY_DELTA_UNSEEN = "approved before reachdiff showed the paths below (approve again)"
WHY_NOT_OWNER = "is not one of these owners"

# Review times are GitHub's, the times of shown deltas the app's own clock (second
# precision both): a delta shown this close to an approval may have been seen or not, so
# it must match too.
CLOCK_MARGIN = timedelta(seconds=5)


@dataclass(frozen=True, slots=True)
class Review:
    id: int
    user: str
    state: str  # as the REST API gives it: APPROVED, CHANGES_REQUESTED, COMMENTED, DISMISSED
    commit_id: str
    submitted_at: str  # ISO 8601, "2024-05-01T12:00:00Z"
    user_type: str = "User"  # GitHub's account type: User, Bot, Organization, Mannequin

    @staticmethod
    def from_api(obj: Mapping[str, Any]) -> Review | None:
        """A review from the REST API or a webhook payload (whose states are lowercase).

        ``None`` for reviews that cannot approve: pending ones (not submitted) and those
        of deleted accounts (``user`` is null).
        """
        user = obj.get("user") or {}
        login = user.get("login") if isinstance(user, Mapping) else None
        state = str(obj.get("state") or "").upper()
        if not login or state == "PENDING" or not obj.get("submitted_at"):
            return None
        # A missing type is not taken for a person: only "User" may approve.
        user_type = str(user.get("type") or "") if isinstance(user, Mapping) else ""
        return Review(
            id=int(obj["id"]),
            user=str(login),
            state=state,
            commit_id=str(obj.get("commit_id") or ""),
            submitted_at=str(obj["submitted_at"]),
            user_type=user_type,
        )


@dataclass(frozen=True, slots=True)
class Override:
    """A recorded break-glass: who waived the approvals, when, why, and how they said it."""

    login: str
    at: str  # ISO 8601, when the command was given (GitHub's time)
    reason: str
    source: str  # "comment" or "review"
    url: str = ""


@dataclass(frozen=True, slots=True)
class ApprovalStatus:
    required: int
    approved_by: tuple[str, ...]  # authorized approvers whose approval counts
    ignored: tuple[tuple[str, str], ...]  # (login, why): author / not authorized / stale
    # (login, commit): approvals of an older commit with the same analysed delta, counted
    # under keep_approvals_when_delta_unchanged.
    carried: tuple[tuple[str, str], ...] = ()
    # With owner rules: each group of paths and its approvals (the fallback ``approvers``
    # group included); the status is satisfied when every group is.
    owners: tuple[OwnerApproval, ...] = ()
    override: Override | None = None  # a break-glass passes the check without approvals

    @property
    def approved(self) -> bool:
        """Approved as configured, break-glass aside."""
        if self.owners:
            return all(g.status.approved for g in self.owners)
        return len(self.approved_by) >= self.required

    @property
    def satisfied(self) -> bool:
        return self.override is not None or self.approved

    @property
    def missing(self) -> int:
        if self.owners:
            return sum(g.status.missing for g in self.owners)
        return max(0, self.required - len(self.approved_by))


@dataclass(frozen=True, slots=True)
class OwnerApproval:
    """One owner rule's share of a review: its paths and who approved them. ``rule`` is the
    rule's index in ``owners.rules``; None for the fallback ``approvers``."""

    rule: int | None
    name: str  # the rule's name, or "approvers"
    owners: str  # Markdown naming who may approve ("@alice or a member of @acme/payments")
    paths: tuple[PathChange, ...]
    status: ApprovalStatus
    why: str = ""  # what the group is for when it is not paths ("changes the settings")


@dataclass(frozen=True, slots=True)
class ShownDelta:
    """A gated delta the app showed on a head (one completed check run): when, and the
    digest of its gated paths (``bot.review.verdict.gated_digest``)."""

    at: str  # ISO 8601, the app's clock when the check run was completed
    digest: str
    # The analysed delta's digest (``bot.verdict.analysed_digest``): every opened path,
    # its ports, its causes' rules and the settings. "" in records older than it.
    analysed: str = ""


def _parse_time(text: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def approval_saw(
    submitted_at: str, shown: Sequence[ShownDelta], delta: str, *, analysed: bool = False
) -> bool | None:
    """Did an approval submitted at ``submitted_at`` see the gated delta ``delta``?

    What its approver could have seen is the newest delta shown before it, and any shown
    within ``CLOCK_MARGIN`` of it (the order is not certain there): all of them must be
    ``delta``. ``None`` when nothing was shown before it (or a time cannot be read): the
    approver saw no delta at all. Fail closed both ways.
    """
    when = _parse_time(submitted_at)
    times = [(_parse_time(s.at), s) for s in shown]
    if when is None:
        return None
    if any(t is None for t, _ in times):
        return None
    dated = [(t, s) for t, s in times if t is not None]
    near = [s for t, s in dated if abs(t - when) <= CLOCK_MARGIN]
    earlier = [(t, s) for t, s in dated if t < when - CLOCK_MARGIN]
    newest = max((t for t, _ in earlier), default=None)
    candidates = near + [s for t, s in earlier if t == newest]
    if not candidates:
        return None
    if analysed:
        return all(s.analysed == delta and s.analysed for s in candidates)
    return all(s.digest == delta for s in candidates)


def carries_over(review: Review, shown: Sequence[ShownDelta], analysed: str) -> bool:
    """``keep_approvals_when_delta_unchanged``: does an approval of an older commit count
    for the head, whose analysed delta digest is ``analysed``? Only when everything its
    approver could have seen on that commit (``shown``: the deltas shown there, for this
    base) is exactly that delta. Anything else (a different delta, nothing shown before
    the approval, a record without the digest) voids it."""
    return approval_saw(review.submitted_at, shown, analysed, analysed=True) is True


def latest_reviews(reviews: Sequence[Review]) -> dict[str, Review]:
    """Each reviewer's latest state-bearing review, keyed by lowercased login."""
    latest: dict[str, Review] = {}
    # The API lists reviews oldest first; sorting makes that an invariant rather than an
    # assumption (the id breaks ties within one second, ids only grow).
    for review in sorted(reviews, key=lambda r: (r.submitted_at, r.id)):
        if review.state.upper() in _STATE_BEARING:
            latest[review.user.lower()] = review
    return latest


def evaluate_approvals(
    reviews: Sequence[Review],
    *,
    head_sha: str,
    author: str,
    is_authorized: Callable[[str], bool],
    required: int,
    pushers: Collection[str] | None = (),
    delta: str | None = None,
    shown: Sequence[ShownDelta] = (),
    carried: Mapping[str, str] | None = None,
) -> ApprovalStatus:
    """``carried``: lowercased login -> the older commit whose approval carries over to the
    head (``carries_over`` decided it). ``pushers``: logins whose approval does not count as
    the head's pushers; ``None`` when the pusher should be excluded but nobody is known
    (then no approval counts).
    ``delta``: the digest of the gated paths now (None: not checked), and ``shown`` the
    deltas the app showed on this head for this base (rule 6)."""
    approved: list[str] = []
    ignored: list[tuple[str, str]] = []
    kept: list[tuple[str, str]] = []
    excluded = None if pushers is None else {p.lower() for p in pushers}
    for login, review in sorted(latest_reviews(reviews).items()):
        if review.state.upper() != APPROVED:
            continue
        carries = (
            review.commit_id != head_sha
            and carried is not None
            and carried.get(login) == review.commit_id
        )
        if login == author.lower():
            ignored.append((review.user, WHY_AUTHOR))
        elif review.commit_id != head_sha and not carries:
            ignored.append((review.user, f"{WHY_STALE} ({review.commit_id[:7]})"))
        elif not is_person(review):
            ignored.append((review.user, WHY_BOT))
        elif excluded is None:
            ignored.append((review.user, WHY_PUSHER_UNKNOWN))
        elif login in excluded:
            ignored.append((review.user, WHY_PUSHER))
        elif (
            not carries
            and delta is not None
            and (saw := approval_saw(review.submitted_at, shown, delta)) is not True
        ):
            ignored.append((review.user, WHY_DELTA_UNSEEN if saw is None else WHY_DELTA_CHANGED))
        # Asked last: the answer may cost the shell an API call.
        elif not is_authorized(review.user):
            ignored.append((review.user, WHY_NOT_AUTHORIZED))
        else:
            approved.append(review.user)
            if carries:
                kept.append((review.user, review.commit_id))
    return ApprovalStatus(
        required=required, approved_by=tuple(approved), ignored=tuple(ignored), carried=tuple(kept)
    )


def is_person(review: Review) -> bool:
    """GitHub marks app accounts ``type: Bot`` (their logins end in ``[bot]``)."""
    return review.user_type == "User" and not review.user.lower().endswith("[bot]")


def reviewers_to_check(
    reviews: Iterable[Review],
    *,
    head_sha: str | None = None,
    author: str | None = None,
    carried: Mapping[str, str] | None = None,
) -> set[str]:
    """Logins whose authorization the shell must look up before ``evaluate_approvals``.

    Those whose latest review is an approval; given ``head_sha`` and ``author``, only those
    whose approval could still count (not the author's, not of an older commit unless
    ``carried`` carries it over).
    """
    out = set()
    for login, review in latest_reviews(list(reviews)).items():
        if review.state.upper() != APPROVED:
            continue
        if author is not None and login == author.lower():
            continue
        if (
            head_sha is not None
            and review.commit_id != head_sha
            and (carried or {}).get(login) != review.commit_id
        ):
            continue
        if not is_person(review):
            continue
        out.add(review.user)
    return out


def older_approvals(reviews: Iterable[Review], *, head_sha: str, author: str) -> dict[str, str]:
    """Lowercased login -> the older commit a person approved (not the author): the
    approvals that may carry over, whose commits' shown deltas the shell must read."""
    out = {}
    for login, review in latest_reviews(list(reviews)).items():
        if (
            review.state.upper() == APPROVED
            and review.commit_id
            and review.commit_id != head_sha
            and login != author.lower()
            and is_person(review)
        ):
            out[login] = review.commit_id
    return out
