"""What a finished review leaves behind for the next deliveries of the same pull request:
its check run, and its analysis, kept so approvals are re-evaluated without analysing again.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.inputs.analyze import DiffResult
from bot.render.posts import ReviewContext

CHECK_NAME = "reachdiff"


@dataclass(frozen=True, slots=True)
class CheckRun:
    id: int
    url: str | None
    name: str = CHECK_NAME


# (repo, number, head sha, base branch head sha, settings digest): everything the
# verdict depends on besides the reviews themselves.
ReviewKey = tuple[str, int, str, str, str]


@dataclass(frozen=True, slots=True)
class CachedReview:
    """An analysis of one head, kept so that approvals are re-evaluated without re-running."""

    diff: DiffResult
    context: ReviewContext  # approval is filled in per evaluation
    check_run: CheckRun
    author: str
    settings_changed: bool = False  # the pull request changes .github/reachdiff.yml
