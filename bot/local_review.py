"""The Markdown review the bot would post, for a terminal: `reachdiff review` and
`reachdiff diff --format md`. Same templates, links relative to the repository root."""

from __future__ import annotations

from analysis.diff import ChangeSet
from bot.render import ReviewContext, render_comment
from bot.settings import RepoSettings, describe_approvers, parse_repo_settings


def diff_markdown(
    diff: ChangeSet,
    *,
    base_sha: str = "",
    head_sha: str = "",
    compared: str = "two directories",
    settings_text: bytes | None = None,
    base_error: str = "",
) -> str:
    settings = RepoSettings() if settings_text is None else parse_repo_settings(settings_text)
    ctx = ReviewContext(
        repository="",
        server_url="",  # no server: links are relative paths
        base_sha=base_sha or "base",
        head_sha=head_sha or "head",
        compared=compared,
        settings=settings,
        settings_present=settings_text is not None,
        approval=None,
        approvers_description=describe_approvers(settings, present=settings_text is not None),
        base_error=base_error,
    )
    return render_comment(diff, ctx)
