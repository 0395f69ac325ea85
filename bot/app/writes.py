"""A planned review (``bot.plan.ReviewOutcome``) performed on GitHub, as a list of writes.

Order, and why: the sticky comment and the line comments are written only while the
analysed head is still the pull request's head (a slower review of an outdated push never
overwrites the newer result); the check run is completed last, on its own head, so it
always says what was found for exactly that commit.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import gidgethub

from bot.app import checks, gate
from bot.app.context import BotContext, PullRequestRef
from bot.app.review_cache import CheckRun
from bot.github import rest as github
from bot.github.client import GitHubClient
from bot.plan.review import ReviewOutcome, place_line_comments
from bot.render.posts import MARKER, LineComment, rule_marker
from bot.review.patches import PullFiles

log = logging.getLogger(__name__)

REVIEW_BODY = (
    "reachdiff: the rules commented on below open network paths that need approval "
    "(details in the pull request's reachdiff comment and check run)."
)


async def perform(
    bot: BotContext,
    gh: GitHubClient,
    pr: PullRequestRef,
    check: CheckRun,
    outcome: ReviewOutcome,
    *,
    head_sha: str,
    files: PullFiles | None = None,
) -> None:
    """Write ``outcome``: the sticky comment, then the line comments (placed in
    ``files``), then the check run's completion."""
    if outcome.comment is not None and await still_head(gh, pr, head_sha):
        await upsert_sticky_comment(bot, gh, pr, outcome.comment)
        if files is not None and outcome.line_comments:
            try:
                await post_line_comments(bot, gh, pr, head_sha, outcome.line_comments, files)
            except gidgethub.BadRequest as err:
                # GitHub may refuse a placement we thought valid; the sticky comment and
                # the check run carry the same findings, so the review goes on without.
                log.warning("%s: line comments refused: %s", pr, err)
    external_id = None
    if outcome.shown is not None and outcome.analysed is not None:
        external_id = gate.shown_id(outcome.shown, outcome.analysed, checks.now())
    await checks.finish(gh, pr, check, outcome.conclusion, outcome.output, external_id=external_id)


async def still_head(gh: GitHubClient, pr: PullRequestRef, head_sha: str) -> bool:
    pull = await github.get_pull(gh, pr.repo, pr.number)
    if pull["head"]["sha"] != head_sha:
        log.info("%s moved on to %s; not posting for %s", pr, pull["head"]["sha"][:7], head_sha[:7])
        return False
    return True


async def upsert_sticky_comment(
    bot: BotContext, gh: GitHubClient, pr: PullRequestRef, body: str
) -> None:
    login = await bot.app_login()
    for comment in await github.list_issue_comments(gh, pr.repo, pr.number):
        if is_own(comment, login, bot.config.app_id) and MARKER in str(comment.get("body") or ""):
            if comment.get("body") != body:
                await github.update_issue_comment(gh, pr.repo, int(comment["id"]), body)
            return
    await github.create_issue_comment(gh, pr.repo, pr.number, body)


def is_own(comment: Mapping[str, Any], login: str, app_id: str) -> bool:
    """Written by this app: its own bot account (``<slug>[bot]``, from ``GET /app``), or
    performed by this app's installation. Never "any bot with our marker": another app, or
    a workflow's token, could post a comment that we would then keep editing as the verdict
    while the real one stays hidden."""
    user = comment.get("user")
    if not isinstance(user, Mapping) or user.get("type") != "Bot":
        return False
    if str(user.get("login") or "").lower() == login.lower():
        return True
    app = comment.get("performed_via_github_app")
    return isinstance(app, Mapping) and str(app.get("id")) == app_id


async def post_line_comments(
    bot: BotContext,
    gh: GitHubClient,
    pr: PullRequestRef,
    head_sha: str,
    comments: tuple[LineComment, ...],
    files: PullFiles,
) -> None:
    existing = await github.list_review_comments(gh, pr.repo, pr.number)
    # Only our own comments: anyone may quote a marker to keep a rule from being commented.
    login, app_id = await bot.app_login(), bot.config.app_id
    posted = {rule_marker(str(c.get("body") or "")) for c in existing if is_own(c, login, app_id)}
    on_files, on_lines = place_line_comments(comments, files, posted)
    # File-level comments first and one at a time: a refused review must not take the
    # comments on rules outside the diff down with it.
    for c in on_files:
        try:
            await github.create_file_review_comment(
                gh, pr.repo, pr.number, commit_id=head_sha, path=c.path, body=c.body
            )
        except gidgethub.HTTPException as err:
            log.warning("file comment on %s refused: %s", c.path, err)
    if on_lines:
        await github.create_review(
            gh,
            pr.repo,
            pr.number,
            commit_id=head_sha,
            body=REVIEW_BODY,
            comments=[
                {"path": c.path, "line": c.line, "side": c.side, "body": c.body} for c in on_lines
            ],
        )
