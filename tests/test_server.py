"""The webhook endpoint: signature first, fast answers, dedupe, routing to the right job."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

import bot.context
from bot.context import BotContext, PullRequestRef
from bot.server import BOT, make_app, signature_valid
from tests.botharness import SECRET, settings_for
from tests.fakegithub.payloads import make_payload, webhook_headers
from tests.fakegithub.server import FakeGitHub

REPO = "octo-org/gitops"


class Flows:
    """Stands in for the review flows: records each job and can hold it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int, str | None]] = []
        self.gate = asyncio.Event()
        self.gate.set()

    def flow(self, name: str) -> Any:
        async def run(bot: BotContext, pr: PullRequestRef, head_sha: str | None) -> None:
            self.calls.append((name, pr.repo.full_name, pr.number, head_sha))
            await self.gate.wait()

        return run


@pytest.fixture
async def flows(monkeypatch: pytest.MonkeyPatch) -> Flows:
    recorded = Flows()
    monkeypatch.setattr(bot.context, "review_pull_request", recorded.flow("review"))
    monkeypatch.setattr(bot.context, "reevaluate_approvals", recorded.flow("approvals"))
    return recorded


@pytest.fixture
async def client(
    fake_github: FakeGitHub, aiohttp_client: Any
) -> AsyncIterator[TestClient[Any, Any]]:
    yield await aiohttp_client(make_app(settings_for(fake_github, queue_size=2)))
    assert fake_github.validation_errors == []


def delivery(
    fake: FakeGitHub, event: str, action: str | None, *, secret: str = SECRET, **kw: Any
) -> tuple[bytes, dict[str, str]]:
    payload = make_payload(
        event, action, full_name=REPO, installation_id=fake.installation_id, **kw
    )
    return payload.body, webhook_headers(event, payload.body, secret)


async def post(client: TestClient[Any, Any], body: bytes, headers: dict[str, str]) -> Any:
    return await client.post("/webhook", data=body, headers=headers)


def queued(client: TestClient[Any, Any]) -> BotContext:
    context: BotContext = client.app[BOT]
    return context


def test_signature_check() -> None:
    body = b'{"a": 1}'
    good = "sha256=" + __import__("hmac").new(b"k", body, "sha256").hexdigest()
    assert signature_valid("k", body, good)
    assert not signature_valid("k", body + b" ", good)
    assert not signature_valid("other", body, good)
    assert not signature_valid("k", body, None)
    assert not signature_valid("k", body, good.replace("sha256=", "sha1="))
    assert not signature_valid("k", body, good.upper())


@pytest.mark.parametrize("tamper", ["wrong secret", "no signature", "sha1 only", "body changed"])
async def test_unsigned_or_badly_signed_delivery_is_refused(
    client: TestClient[Any, Any], fake_github: FakeGitHub, flows: Flows, tamper: str
) -> None:
    body, headers = delivery(
        fake_github,
        "pull_request",
        "opened",
        secret="wrong" if tamper == "wrong secret" else SECRET,
    )
    if tamper == "no signature":
        del headers["X-Hub-Signature-256"], headers["X-Hub-Signature"]
    if tamper == "sha1 only":
        del headers["X-Hub-Signature-256"]
    if tamper == "body changed":
        body = body.replace(b'"opened"', b'"closed"')
    response = await post(client, body, headers)
    assert response.status == 401
    await queued(client).jobs.join()
    assert flows.calls == []
    assert fake_github.requests == []


async def test_ping_is_answered(client: TestClient[Any, Any], fake_github: FakeGitHub) -> None:
    response = await post(client, *delivery(fake_github, "ping", None))
    assert response.status == 200 and await response.text() == "pong\n"


async def test_signed_garbage_is_a_client_error(client: TestClient[Any, Any], flows: Flows) -> None:
    body = b"{not json"
    headers = webhook_headers("pull_request", body, SECRET)
    assert (await post(client, body, headers)).status == 400
    headers = webhook_headers("pull_request", b"{}", SECRET)
    headers["Content-Type"] = "text/plain"
    assert (await post(client, b"{}", headers)).status == 415
    # Valid JSON, but not a pull_request payload.
    headers = webhook_headers("pull_request", b'{"action": "opened"}', SECRET)
    assert (await post(client, b'{"action": "opened"}', headers)).status == 400
    assert flows.calls == []


@pytest.mark.parametrize(
    ("event", "action", "flow"),
    [
        ("pull_request", "opened", "review"),
        ("pull_request", "synchronize", "review"),
        ("pull_request", "reopened", "review"),
        ("pull_request", "ready_for_review", "review"),
        ("pull_request_review", "submitted.approved", "approvals"),
        ("pull_request_review", "submitted.changes_requested", "approvals"),
        ("pull_request_review", "dismissed", "approvals"),
        ("check_suite", "rerequested", "review"),
    ],
)
async def test_events_queue_the_right_job(
    client: TestClient[Any, Any],
    fake_github: FakeGitHub,
    flows: Flows,
    event: str,
    action: str,
    flow: str,
) -> None:
    head = "1" * 40
    action, _, state = action.partition(".")
    overrides = {"review.state": state} if state else None
    response = await post(
        client,
        *delivery(fake_github, event, action, number=12, head_sha=head, overrides=overrides),
    )
    assert response.status == 202
    await queued(client).jobs.join()
    assert flows.calls == [(flow, REPO, 12, head)]


@pytest.mark.parametrize(
    ("event", "action"),
    [
        ("pull_request", "closed"),
        ("pull_request", "converted_to_draft"),
        ("pull_request_review", "submitted"),  # a plain comment, as in GitHub's example
        ("issue_comment", "created"),
        ("installation", "created"),
    ],
)
async def test_other_events_are_accepted_and_ignored(
    client: TestClient[Any, Any], fake_github: FakeGitHub, flows: Flows, event: str, action: str
) -> None:
    response = await post(client, *delivery(fake_github, event, action))
    assert response.status == 202
    await queued(client).jobs.join()
    assert flows.calls == []


async def test_answer_comes_at_once_while_reviews_run(
    client: TestClient[Any, Any], fake_github: FakeGitHub, flows: Flows
) -> None:
    flows.gate.clear()  # every review hangs until released
    timings = []
    for number in (1, 2):
        started = time.monotonic()
        response = await post(
            client, *delivery(fake_github, "pull_request", "opened", number=number)
        )
        timings.append(time.monotonic() - started)
        assert response.status == 202
    assert max(timings) < 0.5
    assert (await client.get("/healthz")).status == 200
    flows.gate.set()
    await queued(client).jobs.join()
    assert sorted(c[2] for c in flows.calls) == [1, 2]


async def test_redelivery_is_acknowledged_once(
    client: TestClient[Any, Any], fake_github: FakeGitHub, flows: Flows
) -> None:
    body, headers = delivery(fake_github, "pull_request", "opened")
    first = await post(client, body, headers)
    second = await post(client, body, headers)
    assert (first.status, second.status) == (202, 200)
    assert await second.text() == "duplicate delivery\n"
    await queued(client).jobs.join()
    assert len(flows.calls) == 1


async def test_full_queue_answers_503_and_forgets_the_delivery(
    client: TestClient[Any, Any], fake_github: FakeGitHub, flows: Flows
) -> None:
    flows.gate.clear()
    context = queued(client)
    # concurrency 2 running, queue_size 2 waiting: the fifth pull request has no room.
    statuses = []
    for number in range(1, 6):
        body, headers = delivery(fake_github, "pull_request", "opened", number=number)
        statuses.append((await post(client, body, headers)).status)
        await asyncio.sleep(0.01)
    assert statuses == [202, 202, 202, 202, 503]
    ready = await client.get("/readyz")
    assert ready.status == 503 and "queue" in await ready.text()
    flows.gate.set()
    await context.jobs.join()
    # The refused delivery may be redelivered, and then it is taken.
    assert (await post(client, body, headers)).status == 202
    await context.jobs.join()
    assert sorted(c[2] for c in flows.calls) == [1, 2, 3, 4, 5]


async def test_readiness_and_liveness(client: TestClient[Any, Any]) -> None:
    assert (await client.get("/healthz")).status == 200
    ready = await client.get("/readyz")
    assert ready.status == 200, await ready.text()
    await queued(client).jobs.close()
    stopped = await client.get("/readyz")
    assert stopped.status == 503 and "workers" in await stopped.text()
