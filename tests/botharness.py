"""Drives the real webhook server against the fake GitHub, for the end-to-end bot tests.

``Harness.deliver`` sends a signed example payload (GitHub's own, adapted) to the server;
``settle`` waits until every queued review has finished, so tests assert on final state.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer

from bot.app.config import ServerConfig
from bot.app.context import BotContext
from bot.app.server import BOT, make_app
from bot.render.posts import MARKER
from tests.fakegithub.payloads import make_payload, webhook_headers
from tests.fakegithub.server import FakeGitHub

SECRET = "webhook-secret-for-tests"
REPO = "octo-org/gitops"
NUMBER = 7
AUTHOR = "dana"


def sha(name: str) -> str:
    return hashlib.sha1(name.encode()).hexdigest()


BASE, HEAD, HEAD2, HEAD3, MERGE = (sha(n) for n in ("base", "head", "head2", "head3", "merge"))


def settings_for(fake: FakeGitHub, **overrides: Any) -> ServerConfig:
    values: dict[str, Any] = dict(
        app_id=str(fake.app_id),
        private_key=fake.private_key_pem,
        webhook_secret=SECRET,
        api_url=fake.url,
        analysis_workers=1,
        analysis_timeout=60.0,
        review_concurrency=2,
        api_max_retry_wait=5.0,
        mergeable_attempts=1,
        mergeable_delay=0.0,
        reconcile_interval=0.0,  # tests run a pass themselves (bot.reconcile.reconcile)
    )
    values.update(overrides)
    return ServerConfig(**values)


@dataclass
class Harness:
    fake: FakeGitHub
    client: TestClient[Any, Any]
    deliveries: list[str] = field(default_factory=list)

    @property
    def bot(self) -> BotContext:
        bot: BotContext = self.client.app[BOT]
        return bot

    async def deliver(
        self,
        event: str,
        action: str,
        *,
        head_sha: str | None = None,
        delivery_id: str | None = None,
        secret: str = SECRET,
        overrides: dict[str, Any] | None = None,
        number: int = NUMBER,
        **payload: Any,
    ) -> ClientResponse:
        pull = self.fake.pull(REPO, number)
        data = make_payload(
            event,
            action,
            full_name=REPO,
            number=number,
            head_sha=head_sha or pull.head_sha,
            installation_id=self.fake.installation_id,
            author=AUTHOR,
            api_url=self.fake.url,
            overrides=overrides,
            **payload,
        )
        return await self.post(event, data.body, secret, delivery_id)

    async def post(
        self, event: str, body: bytes, secret: str = SECRET, delivery_id: str | None = None
    ) -> ClientResponse:
        headers = webhook_headers(event, body, secret, delivery_id)
        self.deliveries.append(headers["X-GitHub-Delivery"])
        return await self.client.post("/webhook", data=body, headers=headers)

    async def settle(self, timeout: float = 60.0) -> None:
        await asyncio.wait_for(self.bot.jobs.join(), timeout)

    # -- what GitHub shows ----------------------------------------------------------------

    def check(self, head_sha: str) -> dict[str, Any]:
        """The latest ``reachdiff (main)`` run on a commit (what branch protection reads)."""
        runs = [
            r for r in self.fake.check_runs_for(REPO, head_sha) if r["name"] == "reachdiff (main)"
        ]
        assert runs, f"no reachdiff check run on {head_sha[:7]}"
        return runs[-1]

    def sticky(self) -> dict[str, Any]:
        mine = [c for c in self.fake.comments_on(REPO, NUMBER) if MARKER in c["body"]]
        assert len(mine) == 1, f"{len(mine)} sticky comments"
        return mine[0]

    def bot_reviews(self) -> list[dict[str, Any]]:
        return [r for r in self.fake.reviews if r["user"] == self.fake.bot_login]

    def bot_review_comments(self) -> list[dict[str, Any]]:
        return [c for c in self.fake.review_comments if c["user"] == self.fake.bot_login]


# -- manifests --------------------------------------------------------------------------

WORKLOADS = b"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: db
  namespace: shop
spec:
  selector:
    matchLabels: {app: db}
  template:
    metadata:
      labels: {app: db}
    spec:
      containers:
      - name: db
        image: postgres
"""


def db_policy(peer_app: str = "api", ports: tuple[int, ...] = (5432,)) -> bytes:
    """An ingress policy for db; its only peer selector is on line 14."""
    port_lines = "".join(f"    - port: {p}\n" for p in ports)
    return (
        "apiVersion: networking.k8s.io/v1\n"  # 1
        "kind: NetworkPolicy\n"
        "metadata:\n"
        "  name: db-ingress\n"
        "  namespace: shop\n"  # 5
        "spec:\n"
        "  podSelector:\n"
        "    matchLabels: {app: db}\n"
        "  policyTypes: [Ingress]\n"
        "  ingress:\n"  # 10
        "  - from:\n"
        "    - podSelector:\n"
        "        matchLabels:\n"
        f"          app: {peer_app}\n"  # 14
        "    ports:\n"
        f"{port_lines}"
    ).encode()


def base_tree(**extra: bytes) -> dict[str, bytes]:
    return {"apps/shop.yaml": WORKLOADS, "policies/db.yaml": db_policy(), **extra}


def setup_pull(
    fake: FakeGitHub,
    head_files: dict[str, bytes],
    *,
    base_files: dict[str, bytes] | None = None,
    collaborators: dict[str, str] | None = None,
    mergeable: bool = False,
) -> None:
    """Repository REPO with BASE on main and pull request NUMBER from HEAD."""
    people = {"alice": "write", AUTHOR: "write", "mallory": "read", "bob": "maintain"}
    fake.add_repo(REPO, collaborators=collaborators or people)
    fake.add_commit(REPO, BASE, base_files or base_tree(), branch="main")
    fake.add_commit(REPO, HEAD, head_files, parents=[BASE], branch="change")
    merge = None
    if mergeable:
        fake.add_commit(REPO, MERGE, head_files, parents=[BASE, HEAD])
        merge = MERGE
    fake.add_pull(
        REPO,
        NUMBER,
        base_ref="main",
        base_sha=BASE,
        head_sha=HEAD,
        author=AUTHOR,
        head_ref="change",
        merge_commit_sha=merge,
        mergeable=mergeable,
    )


def push(fake: FakeGitHub, sha_: str, files: dict[str, bytes], parent: str) -> None:
    fake.add_commit(REPO, sha_, files, parents=[parent])
    fake.set_pull_head(REPO, NUMBER, sha_, mergeable=False)


# -- fixtures (registered in tests/conftest.py) -------------------------------------------------

MakeHarness = Callable[..., Awaitable[Harness]]


@pytest.fixture
async def make_harness(fake_github: FakeGitHub, aiohttp_client: Any) -> AsyncIterator[MakeHarness]:
    """``await make_harness(**settings)``: a server on the fake; every request it sent must
    have matched GitHub's description when the test ends."""

    async def make(**overrides: Any) -> Harness:
        client = await aiohttp_client(make_app(settings_for(fake_github, **overrides)))
        return Harness(fake_github, client)

    yield make
    assert fake_github.validation_errors == []


@asynccontextmanager
async def running_harness(fake: FakeGitHub, **overrides: Any) -> AsyncIterator[Harness]:
    """A server on a started fake, outside pytest's fixtures (tests/scenarios' runner)."""
    client: TestClient[Any, Any] = TestClient(TestServer(make_app(settings_for(fake, **overrides))))
    await client.start_server()
    try:
        yield Harness(fake, client)
    finally:
        await client.close()


@pytest.fixture
async def harness(make_harness: MakeHarness) -> Harness:
    return await make_harness()


async def review(
    h: Harness, event: str = "pull_request", action: str = "opened", **kwargs: Any
) -> None:
    """Deliver one event and wait until every job it caused has finished."""
    response = await h.deliver(event, action, **kwargs)
    assert response.status == 202, await response.text()
    await h.settle()
