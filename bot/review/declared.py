"""What the declared communications and lint findings mean for a pull request's check
(``analysis.declared_review``): the decisions, apart from how they are shown."""

from __future__ import annotations

from typing import Literal

from analysis.declared_review import DeclaredReview
from analysis.lint import LintConfig
from bot.review.approvals import ApprovalStatus
from bot.review.settings import RepoSettings

Conclusion = Literal["success", "failure"]


def declared_of(diff: object) -> DeclaredReview | None:
    """The analysis result's review of the declarations (other diffs have none)."""
    found = getattr(diff, "declared", None)
    return found if isinstance(found, DeclaredReview) else None


def declared_conclusion(diff: object, approval: ApprovalStatus | None) -> Conclusion | None:
    """``failure`` when the declarations or the lint settings fail the check: a new
    forbidden path or a failing finding whatever the approvals, a violation or a change
    of the declarations without enough approvals. None: they decide nothing."""
    declared = declared_of(diff)
    if declared is None:
        return None
    if declared.fails:
        return "failure"
    # A path the base's intents forbid, lifted by the head's: only approvals let it in,
    # never a break-glass.
    if declared.lifted_count and not (approval is not None and approval.approved):
        return "failure"
    if declared.needs_approval and not (approval is not None and approval.satisfied):
        return "failure"
    return None


def approval_lines(diff: object) -> list[str]:
    """What an approval must have seen of the declarations (for the gated digest)."""
    declared = declared_of(diff)
    return declared.approval_lines() if declared is not None else []


def lint_config(settings: RepoSettings) -> LintConfig | None:
    """The pull request's lint, when the settings have a ``lint`` section (it is opt-in:
    findings a change introduces then show and fail at ``lint.fail_on``)."""
    if not settings.lint_enabled:
        return None
    return LintConfig(settings.lint_severities, settings.lint_fail_on)
