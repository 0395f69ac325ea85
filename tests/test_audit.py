"""Audit events are idempotent (bot/app/audit.py): the same event has the same id in any
process, a restart does not append or post what the audit file already holds, and the
webhook carries the id for its receiver."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.app.audit import BREAK_GLASS, MERGED_NOT_GREEN, AuditEvent, Auditor, event_id

EVENT = AuditEvent(BREAK_GLASS, "o/r", 7, "a" * 40, "main", "oncall", "2026-01-01T12:00:00Z")
KEY = f"{BREAK_GLASS}:o/r#7:{'a' * 40}:oncall:2026-01-01T12:00:00Z"


def ids(path: Path) -> list[str]:
    return [json.loads(line)["id"] for line in path.read_text().splitlines()]


async def test_a_restart_does_not_repeat_what_the_file_holds(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    assert await Auditor(None, path=str(path)).emit(EVENT, key=KEY)
    assert ids(path) == [event_id(KEY)]
    restarted = Auditor(None, path=str(path))  # a new process: nothing in memory
    assert not await restarted.emit(EVENT, key=KEY)
    assert restarted.seen(KEY)
    merged = AuditEvent(MERGED_NOT_GREEN, "o/r", 7, "a" * 40, "main", "admin", "t")
    assert await restarted.emit(merged, key=f"{MERGED_NOT_GREEN}:o/r#7:{'a' * 40}")
    assert len(ids(path)) == 2 and len(set(ids(path))) == 2


async def test_only_the_tail_of_a_large_file_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.app import audit

    path = tmp_path / "audit.jsonl"
    assert await Auditor(None, path=str(path)).emit(EVENT, key=KEY)
    with path.open("a") as out:  # later events push the first one out of the tail
        out.write("not json\n" + ('{"id": "x"}\n' * 200))
    monkeypatch.setattr(audit, "TAIL_BYTES", 1000)
    restarted = Auditor(None, path=str(path))
    assert await restarted.emit(EVENT, key=KEY)  # beyond the tail: written again, not lost
    assert not restarted.seen("never emitted")


async def test_the_webhook_carries_the_event_id(aiohttp_server: Any, tmp_path: Path) -> None:
    received: list[tuple[str, dict[str, Any]]] = []

    async def post(request: web.Request) -> web.Response:
        received.append((request.headers.get("Idempotency-Key", ""), await request.json()))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/audit", post)
    server = await aiohttp_server(app)
    async with aiohttp.ClientSession() as session:
        url = str(server.make_url("/audit"))
        path = str(tmp_path / "audit.jsonl")
        assert await Auditor(session, path=path, webhook_url=url).emit(EVENT, key=KEY)
        assert not await Auditor(session, path=path, webhook_url=url).emit(EVENT, key=KEY)
    ((header, body),) = received
    assert header == body["id"] == event_id(KEY)
