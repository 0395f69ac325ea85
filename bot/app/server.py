"""The webhook server: ``POST /webhook``, ``GET /healthz`` and ``GET /readyz``.

Invariants of ``/webhook``:
- The ``X-Hub-Signature-256`` HMAC of the raw body is verified before anything else is
  looked at; a missing or wrong signature gets 401 and causes no API call and no job.
- The answer comes in milliseconds: handlers only queue jobs (``bot.app.jobs``), which run in
  the background; analysis runs in a process pool, never on the event loop.
- A delivery id seen before (GitHub's redelivery, or a retried POST) is acknowledged and
  ignored, so it cannot cause a second review.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import sys
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web
from gidgethub import routing, sansio

from bot.app import base_branch, breakglass_flow, pull_request, rerun, reviews
from bot.app.config import ConfigError, ServerConfig
from bot.app.context import BotContext, Flows
from bot.app.jobs import QueueFull
from bot.app.reconcile import reconcile_forever
from bot.app.review_flow import reevaluate_approvals, review_pull_request

log = logging.getLogger(__name__)

router = routing.Router(
    pull_request.router,
    reviews.router,
    rerun.router,
    base_branch.router,
    breakglass_flow.router,
)

BOT: web.AppKey[BotContext] = web.AppKey("bot", BotContext)
# GitHub caps webhook payloads at 25 MB.
MAX_BODY = 25 * 1024 * 1024
SHUTDOWN_GRACE = 20.0
# No bound on a whole request: a large repository's archive on a slow link takes as long
# as it takes (its size is bounded); a connection that stalls fails.
GITHUB_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=120)
WARM_UP_SECONDS = 120.0  # how long the start-up ping may wait for the first worker


def signature_valid(secret: str, body: bytes, signature: str | None) -> bool:
    if not signature or not signature.startswith("sha256="):
        return False
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


async def webhook(request: web.Request) -> web.Response:
    bot = request.app[BOT]
    body = await request.read()
    if not signature_valid(
        bot.config.webhook_secret, body, request.headers.get("X-Hub-Signature-256")
    ):
        log.warning("rejected a delivery with a missing or wrong signature")
        return web.Response(status=401, text="invalid signature\n")
    if request.content_type != "application/json":
        return web.Response(status=415, text="expected application/json\n")
    name = request.headers.get("X-GitHub-Event")
    delivery_id = request.headers.get("X-GitHub-Delivery")
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nested too deep to parse
        data = None
    if not name or not delivery_id or not isinstance(data, dict):
        return web.Response(status=400, text="missing X-GitHub-Event/Delivery or bad JSON\n")
    event = sansio.Event(data, event=name, delivery_id=delivery_id)
    if event.event == "ping":
        return web.Response(status=200, text="pong\n")
    if bot.jobs.closing:
        # Stopping: GitHub keeps the delivery as failed; the reconciliation after the
        # restart reviews what it would have caused.
        return web.Response(status=503, text="shutting down\n")
    if not bot.deliveries.add(event.delivery_id):
        log.info("delivery %s seen before; ignored", event.delivery_id)
        return web.Response(status=200, text="duplicate delivery\n")
    try:
        await router.dispatch(event, bot)
    except QueueFull as err:
        bot.deliveries.discard(event.delivery_id)  # a redelivery may succeed later
        log.error("refused delivery %s: %s", event.delivery_id, err)
        return web.Response(status=503, text="busy, redeliver later\n")
    except Exception as err:
        # Handlers only read the payload and queue a job: whatever they raise means a body
        # of the wrong shape (``PayloadError``, or a type no handler expected), not a fault
        # of ours, so the answer is 400 and the delivery may come again once fixed.
        bot.deliveries.discard(event.delivery_id)
        log.warning("delivery %s has an unexpected shape: %r", event.delivery_id, err)
        return web.Response(status=400, text="unexpected payload shape\n")
    return web.Response(status=202, text="accepted\n")


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


async def readyz(request: web.Request) -> web.Response:
    bot = request.app[BOT]
    problems = []
    if not bot.jobs.ready():
        problems.append("job queue full or workers stopped")
    if not await bot.pool.ready():
        problems.append("analysis process pool broken")
    if problems:
        return web.Response(status=503, text="; ".join(problems) + "\n")
    return web.Response(text="ready\n")


def make_app(
    config: ServerConfig,
    *,
    github_session: aiohttp.ClientSession | None = None,
    flows: Flows | None = None,
) -> web.Application:
    """The server; ``flows`` replaces the review flows the jobs run (tests record them)."""
    flows = flows or Flows(review=review_pull_request, approvals=reevaluate_approvals)
    app = web.Application(client_max_size=MAX_BODY)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        session = github_session or aiohttp.ClientSession(timeout=GITHUB_TIMEOUT)
        bot = BotContext(config, session, flows)
        bot.jobs.start()
        app[BOT] = bot
        # Start the analysis workers now, not at the first review: the first pull request
        # after a start (a deploy) would wait for the fork server and the engine's import.
        warming = asyncio.create_task(bot.pool.ready(timeout=WARM_UP_SECONDS))
        reconciler = (
            asyncio.create_task(reconcile_forever(bot, config.reconcile_interval))
            if config.reconcile_interval > 0
            else None
        )
        yield
        # SIGTERM (aiohttp stops accepting connections first): no new passes, running
        # reviews get SHUTDOWN_GRACE seconds, the rest complete as "interrupted" and the
        # next start's reconciliation reviews them.
        if reconciler is not None:
            reconciler.cancel()
        warming.cancel()
        await bot.jobs.close(grace=SHUTDOWN_GRACE)
        bot.pool.close()
        if github_session is None:
            await session.close()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_post("/webhook", webhook)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app


def serve(argv_port: int | None = None) -> int:
    """``reachdiff serve``: run until SIGINT/SIGTERM; 2 when the environment is invalid."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        config = ServerConfig.from_env()
    except ConfigError as err:
        for problem in err.problems:
            print(f"reachdiff serve: {problem}", file=sys.stderr)
        return 2
    port = argv_port if argv_port is not None else config.port
    log.info("listening on port %d, GitHub API %s", port, config.api_url)
    web.run_app(make_app(config), port=port, print=None)
    return 0
