"""``bot.plan``: what one review writes, decided from one assessment, without any HTTP.

The e2e tests (tests/test_bot_*.py) check the same outcomes through the fake GitHub; these
pin the decisions themselves: the conclusion and title, the note on the sticky comment,
where line comments go, the recorded gated delta, and the titles of failures.
"""

from __future__ import annotations

import pytest

from bot.inputs.analyze import AnalysisFailure, DiffResult, Unanalysed, analyze
from bot.inputs.files import FilesError
from bot.inputs.mergetree import MergeConflict
from bot.inputs.unread import Unread
from bot.plan import failures
from bot.plan.review import (
    ReviewOutcome,
    needs_sibling_approvals,
    outdated,
    place_line_comments,
    plan_merge_group,
    plan_review,
)
from bot.render.posts import MARKER, LineComment
from bot.review.patches import PullFiles
from bot.review.settings import SETTINGS_PATH, SettingsError
from tests.botharness import base_tree, db_policy
from tests.test_render import approved_by, ctx

# The pull request's diff of policies/db.yaml: lines 10-16 of the head are in it.
PATCH = (
    "@@ -10,7 +10,7 @@\n   ingress:\n   - from:\n     - podSelector:\n         matchLabels:\n"
    "-          app: api\n+          app: web\n     ports:\n     - port: 5432\n"
)


def widened() -> DiffResult:
    """web may now reach db: a widening that needs approval (the rule on line 11)."""
    result = analyze(base_tree(), base_tree(**{"policies/db.yaml": db_policy("web")}))
    assert isinstance(result, DiffResult) and result.opened
    return result


def unchanged() -> DiffResult:
    result = analyze(base_tree(), base_tree())
    assert isinstance(result, DiffResult) and not result.opened
    return result


def files() -> PullFiles:
    return PullFiles.from_api(
        [{"filename": "policies/db.yaml", "status": "modified", "sha": "1" * 40, "patch": PATCH}]
    )


def test_a_widening_without_approval_fails_and_comments_on_its_rule() -> None:
    outcome = plan_review(widened(), ctx(), settings_changed=False, base_ref="main", files=files())
    assert outcome.conclusion == "failure"
    assert outcome.comment is not None and outcome.comment.startswith(MARKER)
    assert [(c.path, c.line, c.side) for c in outcome.line_comments] == [
        ("policies/db.yaml", 11, "RIGHT")
    ]
    assert outcome.shown is not None  # the gated delta, recorded for later approvals


def test_an_approved_widening_passes_unless_a_sibling_lacks_approval() -> None:
    context = ctx(approval=approved_by("alice"))
    diff = widened()
    assert needs_sibling_approvals(diff, context, settings_changed=False)
    alone = plan_review(diff, context, settings_changed=False, base_ref="main")
    assert alone.conclusion == "success" and alone.line_comments == ()
    shared = plan_review(diff, context, settings_changed=False, base_ref="main", lacking=[9, 7])
    assert shared.conclusion == "failure"
    assert shared.output.title == "Needs approval on #7, #9 too (same head and base)"
    assert shared.comment is not None and "> [!IMPORTANT]" in shared.comment
    assert "#7, #9" in shared.comment


def test_nothing_widened_passes_and_needs_no_siblings() -> None:
    diff = unchanged()
    assert not needs_sibling_approvals(diff, ctx(), settings_changed=False)
    outcome = plan_review(diff, ctx(), settings_changed=False, base_ref="main", lacking=[3])
    assert outcome.conclusion == "success"
    assert outcome.shown is not None


def test_a_settings_change_needs_approval_like_a_widening() -> None:
    diff = unchanged()
    outcome = plan_review(diff, ctx(), settings_changed=True, base_ref="main")
    assert outcome.conclusion == "failure"
    assert outcome.output.title == f"Changes {SETTINGS_PATH}: needs 1 more approval"
    two = plan_review(
        diff, ctx(approval=approved_by("bob", required=3)), settings_changed=True, base_ref="main"
    )
    assert two.output.title == f"Changes {SETTINGS_PATH}: needs 2 more approvals"
    assert not needs_sibling_approvals(diff, ctx(), settings_changed=True)
    approved = ctx(approval=approved_by("alice"))
    assert needs_sibling_approvals(diff, approved, settings_changed=True)
    assert plan_review(diff, approved, settings_changed=True, base_ref="main").conclusion == (
        "success"
    )


def test_an_approved_settings_change_says_what_the_approval_covered() -> None:
    approved = plan_review(
        unchanged(),
        ctx(approval=approved_by("alice", "bob", required=2)),
        settings_changed=True,
        base_ref="main",
    )
    assert approved.conclusion == "success"
    said = (
        f"This pull request changes `{SETTINGS_PATH}`, the rules later reviews are judged "
        "by; the approvals by `@alice`, `@bob` cover that change too."
    )
    assert approved.comment is not None and approved.comment.endswith(f"> [!NOTE]\n> {said}\n")
    assert approved.output.summary.startswith(f"**{said}**")
    # Without a settings change, nothing is said about it.
    plain = plan_review(
        unchanged(), ctx(approval=approved_by("alice")), settings_changed=False, base_ref="main"
    )
    assert plain.comment is not None and SETTINGS_PATH not in plain.comment


def test_an_outdated_success_fails_with_its_reason_first() -> None:
    outcome = plan_review(unchanged(), ctx(), settings_changed=False, base_ref="main")
    stale = outdated(outcome)
    assert stale.conclusion == "failure" and stale.comment == outcome.comment
    assert stale.output.title.startswith("Outdated")
    assert stale.output.summary.endswith(outcome.output.summary)


def test_merge_group_problems_fail_only_what_needs_approval() -> None:
    needs = plan_merge_group(
        widened(), ctx(), settings_changed=False, base_ref="main", problem="no such pull"
    )
    assert (needs.conclusion, needs.output.title) == ("failure", "Needs approval: no such pull")
    assert needs.comment is None
    fine = plan_merge_group(
        unchanged(), ctx(), settings_changed=False, base_ref="main", problem="no such pull"
    )
    assert fine.conclusion == "success"
    # Pull requests sharing the group's head count only for a settings change.
    approved = ctx(approval=approved_by("alice"))
    kept = plan_merge_group(widened(), approved, settings_changed=False, base_ref="m", lacking=[2])
    assert kept.conclusion == "success"
    tightened = plan_merge_group(
        unchanged(), approved, settings_changed=True, base_ref="m", lacking=[2]
    )
    assert tightened.conclusion == "failure"


def test_line_comments_go_to_lines_in_the_diff_else_to_their_file() -> None:
    in_diff = LineComment("policies/db.yaml", 11, "a", marker="m1")
    outside = LineComment("policies/db.yaml", 2, "b", marker="m2")
    deleted = LineComment("policies/db.yaml", 2, "c", side="LEFT", marker="m3")
    posted = LineComment("policies/db.yaml", 14, "d", marker="m4")
    on_files, on_lines = place_line_comments(
        [in_diff, outside, deleted, posted], files(), posted={"m4"}
    )
    assert on_files == [outside] and on_lines == [in_diff]


@pytest.mark.parametrize(
    ("outcome", "title", "file"),
    [
        (
            failures.invalid_settings(ctx(), SettingsError("paths", "not a list", line=3)),
            f"Invalid {SETTINGS_PATH}",
            SETTINGS_PATH,
        ),
        (failures.unreadable_files(ctx(), FilesError("a.yaml", "too big")), None, "a.yaml"),
        (failures.archive_too_large(ctx(), "over 1 MiB"), "Repository archive too large", ""),
        (failures.merge_conflict(ctx(), MergeConflict(("x.yaml",))), failures.COULD_NOT_MERGE, ""),
        (
            failures.analysis_failed(
                ctx(), AnalysisFailure("manifest", "bad", file="p.yaml", line=4, tree="head")
            ),
            "Invalid manifest in the pull request",
            "p.yaml",
        ),
        (
            failures.analysis_failed(
                ctx(),
                AnalysisFailure("manifest", "bad", file="p.yaml", line=4, tree="head"),
                unchanged=True,
            ),
            failures.UNCHANGED_INVALID,
            "p.yaml",
        ),
        (
            failures.analysis_failed(ctx(), AnalysisFailure("timeout", "took too long")),
            "Analysis timed out",
            "",
        ),
        (
            failures.not_analysed(ctx(), [("base", Unread("vendor", "a submodule"))]),
            "Part of the repository could not be analysed",
            "",
        ),
    ],
)
def test_failures_fail_the_check_and_say_why_in_the_comment(
    outcome: ReviewOutcome, title: str | None, file: str
) -> None:
    assert outcome.conclusion == "failure" and outcome.shown is None
    assert outcome.comment is not None and outcome.comment.startswith(MARKER)
    if title is not None:
        assert outcome.output.title == title
    if file:
        assert file in outcome.output.summary


def test_unanalysed_parts_are_listed_by_file_and_line() -> None:
    failed = AnalysisFailure(
        "unanalysed",
        "some of it could not be analysed",
        unanalysed=(Unanalysed("head", "cilium.yaml", 7, "a CiliumNetworkPolicy"),),
    )
    outcome = failures.analysis_failed(ctx(), failed)
    assert outcome.output.title == "Part of the change could not be analysed"
    assert [(a.path, a.start_line) for a in outcome.output.annotations] == [("cilium.yaml", 7)]
