"""What every handler and job shares: server configuration, HTTP session, tokens, queue, pool.

One ``BotContext`` lives as long as the server. Routers only turn a delivery into a
``Job`` through ``submit_review`` / ``submit_approvals``; the jobs do the work.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import aiohttp
import cachetools

from bot.app.audit import Auditor
from bot.app.config import ServerConfig
from bot.app.jobs import AnalysisPool, DeliveryLog, Job, JobKind, JobQueue
from bot.app.review_cache import CachedReview, ReviewKey
from bot.github import rest as github
from bot.github.auth import InstallationTokens, parse_token_response
from bot.github.client import GitHubClient, RetryPolicy

log = logging.getLogger(__name__)

# Analyses kept for approval re-evaluation; each holds both reachability maps, so few.
CACHED_REVIEWS = 32


@dataclass(frozen=True, slots=True)
class PullRequestRef:
    repo: github.Repository
    number: int
    installation_id: int

    @property
    def key(self) -> tuple[str, int]:
        return (self.repo.full_name.lower(), self.number)

    def __str__(self) -> str:
        return f"{self.repo.full_name}#{self.number}"


class Pushers:
    """Who pushed each head, from ``opened``/``synchronize`` senders (bounded, in memory).

    A ``synchronize`` sender is the pusher; an ``opened`` sender opened the pull request,
    maybe on commits someone else pushed, so that record is not ``exact``. Lost on restart:
    the review then falls back to the head commit's author and committer.
    """

    def __init__(self, size: int = 4096) -> None:
        self._by_head: cachetools.LRUCache[tuple[str, int, str], tuple[str, bool]] = (
            cachetools.LRUCache(maxsize=size)
        )

    def record(self, pr: PullRequestRef, head_sha: str, login: str | None, *, exact: bool) -> None:
        if login:
            key = (*pr.key, head_sha)
            if exact or key not in self._by_head:  # an opened after a synchronize adds nothing
                self._by_head[key] = (login, exact)

    def get(self, pr: PullRequestRef, head_sha: str) -> tuple[str, bool] | None:
        """(login, exact) of who pushed ``head_sha``, if a delivery said."""
        return self._by_head.get((*pr.key, head_sha))


#: A job on one pull request: a review, or the re-evaluation of its approvals.
Flow = Callable[["BotContext", PullRequestRef, "str | None"], Coroutine[Any, Any, None]]


@dataclass(frozen=True, slots=True)
class Flows:
    """The flows the routers' jobs run, passed in by ``make_app`` (the context does not
    import them: they import it). Tests pass recorders instead."""

    review: Flow
    approvals: Flow


class BotContext:
    def __init__(self, config: ServerConfig, session: aiohttp.ClientSession, flows: Flows) -> None:
        self.config = config
        self.flows = flows
        self.session = session
        self.retry = RetryPolicy(
            max_attempts=config.api_max_attempts, max_wait=config.api_max_retry_wait
        )
        self.tokens = InstallationTokens(config.app_id, config.private_key, self._exchange)
        self.jobs = JobQueue(concurrency=config.review_concurrency, max_pending=config.queue_size)
        self.pool = AnalysisPool(
            workers=config.analysis_workers,
            timeout=config.analysis_timeout,
            memory_mb=config.analysis_memory_mb,
        )
        self.deliveries = DeliveryLog()
        self.pushers = Pushers()
        self.auditor = Auditor(
            session, path=config.audit_file, webhook_url=config.audit_webhook_url
        )
        # pull request key -> the head its running review analyses (for ``confirm``).
        self.reviewing: dict[tuple[str, int], str] = {}
        self._app_login: str | None = None
        # (repo, number, head sha, base branch head sha, settings digest) -> the analysis
        # made for exactly those, for approval re-evaluation.
        self.reviews: cachetools.LRUCache[ReviewKey, CachedReview] = cachetools.LRUCache(
            maxsize=CACHED_REVIEWS
        )

    async def app_login(self) -> str:
        """The app's own account, ``<slug>[bot]``, from ``GET /app`` (asked once)."""
        if self._app_login is None:
            data = await github.get_authenticated_app(self.app_client(), self.tokens.jwt())
            slug = data.get("slug")
            if not isinstance(slug, str) or not slug:
                raise ValueError("GET /app answered without a slug")
            self._app_login = f"{slug}[bot]"
        return self._app_login

    def app_client(self) -> GitHubClient:
        return GitHubClient(self.session, base_url=self.config.api_url, retry=self.retry)

    async def _exchange(self, app_jwt: str, installation_id: int) -> Any:
        data = await github.create_installation_token(self.app_client(), installation_id, app_jwt)
        return parse_token_response(data)

    async def client(self, installation_id: int) -> GitHubClient:
        token = await self.tokens.token(installation_id)
        return GitHubClient(
            self.session,
            oauth_token=token,
            base_url=self.config.api_url,
            retry=self.retry,
            renew_token=functools.partial(self.tokens.renew, installation_id),
        )

    def submit_review(self, pr: PullRequestRef, head_sha: str | None, why: str) -> bool:
        return self._submit(pr, JobKind.REVIEW, head_sha, why, self.flows.review)

    def submit_approvals(self, pr: PullRequestRef, head_sha: str | None, why: str) -> bool:
        return self._submit(pr, JobKind.APPROVALS, head_sha, why, self.flows.approvals)

    def submit_other(
        self,
        key: tuple[str, ...],
        head_sha: str | None,
        description: str,
        run: Callable[[], Coroutine[Any, Any, None]],
    ) -> bool:
        """A job that is not one pull request's review: a merge group's check, or the
        fan-out of a moved base branch. ``key`` coalesces: a newer job replaces a waiting
        one with the same key."""
        log.info("queued %s", description)
        return self.jobs.submit(Job(key, JobKind.REVIEW, head_sha, run, description))

    def _submit(
        self,
        pr: PullRequestRef,
        kind: JobKind,
        head_sha: str | None,
        why: str,
        flow: Flow,
    ) -> bool:
        description = f"{kind.value} of {pr} at {(head_sha or '?')[:7]} ({why})"

        async def run() -> None:
            await flow(self, pr, head_sha)

        async def confirm() -> bool:
            """The running review's head is no longer the pull request's head."""
            reviewing = self.reviewing.get(pr.key)
            if reviewing is None:
                return False  # it has not read the head yet, and will read the current one
            gh = await self.client(pr.installation_id)
            pull = await github.get_pull(gh, pr.repo, pr.number)
            return bool(pull["head"]["sha"] != reviewing)

        log.info("queued %s", description)
        return self.jobs.submit(Job(pr.key, kind, head_sha, run, description, confirm=confirm))
