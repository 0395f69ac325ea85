"""The Markdown review the bot would post, for a terminal: `reachdiff review` and
`reachdiff diff --format md`. Same templates, links relative to the repository root."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from analysis import unmodelled
from analysis.diff import ChangeSet
from bot.inputs.environment_diff import MultiDiff
from bot.render.posts import ReviewContext, render_comment
from bot.review.settings import RepoSettings, describe_approvers, parse_repo_settings


def diff_markdown(
    diff: ChangeSet,
    *,
    base_sha: str = "",
    head_sha: str = "",
    compared: str = "two directories",
    settings_text: bytes | None = None,
    base_error: str = "",
    ignore_kinds: Sequence[str] = (),
) -> str:
    settings = RepoSettings() if settings_text is None else parse_repo_settings(settings_text)
    if isinstance(diff, MultiDiff):
        # What the bot would fail on or leave out, said where the reader looks.
        blocking, ignored = unmodelled.split(diff.unmodelled, ignore_kinds)
        extra = tuple(f"not analysed: {f.message()}" for f in blocking)
        extra += tuple(f"not evaluated: {i.message()}" for i in diff.idle_policies)
        if ignored:
            extra += (unmodelled.ignored_summary(ignored),)
        diff = dataclasses.replace(diff, notes=(*diff.notes, *extra))
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
