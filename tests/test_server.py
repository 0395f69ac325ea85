"""The webhook endpoint: signature first, fast answers, dedupe, routing to the right job."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.app.context import BotContext, Flows, PullRequestRef
from bot.app.server import BOT, make_app, signature_valid
from tests.botharness import SECRET, settings_for
from tests.fakegithub.payloads import make_payload, webhook_headers
from tests.fakegithub.server import FakeGitHub

REPO = "octo-org/gitops"


class RecordedFlows:
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
def flows() -> RecordedFlows:
    return RecordedFlows()


@pytest.fixture
async def client(
    fake_github: FakeGitHub, aiohttp_client: Any, flows: RecordedFlows
) -> AsyncIterator[TestClient[Any, Any]]:
    injected = Flows(review=flows.flow("review"), approvals=flows.flow("approvals"))
    yield await aiohttp_client(make_app(settings_for(fake_github, queue_size=2), flows=injected))
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
    client: TestClient[Any, Any], fake_github: FakeGitHub, flows: RecordedFlows, tamper: str
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


async def test_signed_garbage_is_a_client_error(
    client: TestClient[Any, Any], flows: RecordedFlows
) -> None:
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
    flows: RecordedFlows,
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
    client: TestClient[Any, Any],
    fake_github: FakeGitHub,
    flows: RecordedFlows,
    event: str,
    action: str,
) -> None:
    response = await post(client, *delivery(fake_github, event, action))
    assert response.status == 202
    await queued(client).jobs.join()
    assert flows.calls == []


async def test_answer_comes_at_once_while_reviews_run(
    client: TestClient[Any, Any], fake_github: FakeGitHub, flows: RecordedFlows
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
    client: TestClient[Any, Any], fake_github: FakeGitHub, flows: RecordedFlows
) -> None:
    body, headers = delivery(fake_github, "pull_request", "opened")
    first = await post(client, body, headers)
    second = await post(client, body, headers)
    assert (first.status, second.status) == (202, 200)
    assert await second.text() == "duplicate delivery\n"
    await queued(client).jobs.join()
    assert len(flows.calls) == 1


async def test_full_queue_answers_503_and_forgets_the_delivery(
    client: TestClient[Any, Any], fake_github: FakeGitHub, flows: RecordedFlows
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


# -- malformed bodies: always a 4xx, never a 500 ---------------------------------------------------


async def test_json_nested_too_deep_is_a_client_error(
    client: TestClient[Any, Any], flows: RecordedFlows
) -> None:
    for body in (b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 100_000 + b"1" + b"}" * 100_000):
        response = await post(client, body, webhook_headers("pull_request", body, SECRET))
        assert response.status == 400
    # Deep nesting inside an otherwise valid payload.
    data = make_payload("pull_request", "synchronize", full_name=REPO, installation_id=1).data
    body = json.dumps(data).encode()[:-1] + b', "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    response = await post(client, body, webhook_headers("pull_request", body, SECRET))
    assert response.status == 400
    assert flows.calls == []


_FUZZED = [
    ("pull_request", "synchronize"),
    ("pull_request", "opened"),
    ("pull_request_review", "submitted"),
    ("pull_request_review", "dismissed"),
    ("check_run", "rerequested"),
    ("check_suite", "rerequested"),
    ("pull_request", "closed"),
    ("push", "push"),
    ("merge_group", "checks_requested"),
]


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON document a value could be swapped (the root excluded)."""
    out = []
    items = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else ()
    )
    for key, value in items:
        out.append((*prefix, key))
        out += _paths(value, (*prefix, key))
    return out


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


def _mutated(event: str, action: str, fake_id: int, app_id: int) -> st.SearchStrategy[bytes]:
    base = make_payload(
        event,
        action,
        full_name=REPO,
        number=12,
        head_sha="1" * 40,
        installation_id=fake_id,
    ).data
    if event == "push":
        base["ref"] = "refs/heads/main"  # the example pushes a tag, which is ignored
    if event == "check_run":
        base["check_run"]["name"] = "reachdiff"
        base["check_run"]["app"]["id"] = app_id
        base["check_run"]["pull_requests"] = [{"number": 12, "head": {"sha": "1" * 40}}]
    paths = _paths(base)

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        data = json.loads(json.dumps(base))
        for _ in range(draw(st.integers(1, 3))):
            path = draw(st.sampled_from(paths))
            node = data
            try:
                for key in path[:-1]:
                    node = node[key]
                if draw(st.booleans()) and isinstance(node, dict):
                    node.pop(path[-1], None)
                else:
                    node[path[-1]] = draw(_json)
            except (KeyError, IndexError, TypeError):
                continue  # an earlier swap removed the way there
        return json.dumps(data).encode()

    return build()


@pytest.mark.parametrize(("event", "action"), _FUZZED)
async def test_fuzzed_payload_shapes_never_cause_a_server_error(
    client: TestClient[Any, Any],
    fake_github: FakeGitHub,
    flows: RecordedFlows,
    event: str,
    action: str,
) -> None:
    """Validly signed bodies with any field swapped for any JSON value (or removed): the
    answer is 2xx or 400, and whatever was queued names a real pull request and head."""
    bodies: list[bytes] = []

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(_mutated(event, action, fake_github.installation_id, fake_github.app_id))
    def collect(body: bytes) -> None:
        bodies.append(body)

    collect()
    for body in bodies:
        response = await post(client, body, webhook_headers(event, body, SECRET))
        assert response.status in (200, 202, 400), (response.status, body[:300])
        await queued(client).jobs.join()
    for _, repo, number, head in flows.calls:
        assert isinstance(repo, str) and isinstance(number, int) and number > 0
        assert isinstance(head, str) and len(head) == 40


@pytest.mark.parametrize(
    ("event", "action", "overrides"),
    [
        ("pull_request_review", "submitted", {"review": "approved"}),
        ("pull_request_review", "submitted", {"pull_request.head": ["sha"]}),
        ("pull_request", "synchronize", {"action": ["synchronize"]}),
        ("pull_request", "synchronize", {"pull_request.number": True}),
        ("pull_request", "synchronize", {"pull_request.head.sha": 7}),
        ("pull_request", "synchronize", {"installation": None}),
        ("check_suite", "rerequested", {"check_suite.pull_requests": [{"number": "x"}]}),
        ("check_suite", "rerequested", {"check_suite": "yes"}),
        ("push", "push", {"ref": "refs/heads/main", "after": 7}),
        ("merge_group", "checks_requested", {"merge_group.head_sha": "not a sha"}),
        ("pull_request", "closed", {"pull_request.merged": "yes"}),
    ],
)
async def test_wrong_types_anywhere_are_a_client_error(
    client: TestClient[Any, Any],
    fake_github: FakeGitHub,
    flows: RecordedFlows,
    event: str,
    action: str,
    overrides: dict[str, Any],
) -> None:
    body, _ = delivery(fake_github, event, action, number=12, head_sha="1" * 40)
    data = json.loads(body)
    for dotted, value in overrides.items():
        *parents, last = dotted.split(".")
        node = data
        for key in parents:
            node = node[key]
        node[last] = value
    body = json.dumps(data).encode()
    response = await post(client, body, webhook_headers(event, body, SECRET))
    assert response.status == 400
    await queued(client).jobs.join()
    assert flows.calls == []
