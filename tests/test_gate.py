"""The app's side of owners and break-glass that needs no GitHub: what a check run records
as shown, and the operator's audit settings."""

from __future__ import annotations

import socket
from pathlib import Path

import aiohttp
import pytest

from bot.app.audit import MERGED_NOT_GREEN, AuditEvent, Auditor
from bot.app.config import ConfigError, ServerConfig
from bot.app.gate import shown_delta, shown_id
from bot.review.approvals import ShownDelta
from tests.test_config import valid_env


def test_shown_records_read_back_in_both_versions() -> None:
    record = shown_id("g" * 64, "a" * 64, "2026-01-01T12:00:00Z")
    assert len(record) < 200
    assert shown_delta({"external_id": record}) == ShownDelta(
        "2026-01-01T12:00:00Z", "g" * 64, "a" * 64
    )
    old = {"external_id": "reachdiff-gated/v1/" + "g" * 64 + "/2026-01-01T12:00:00Z"}
    assert shown_delta(old) == ShownDelta("2026-01-01T12:00:00Z", "g" * 64, "")
    assert shown_delta({"external_id": None}) is None
    assert shown_delta({"external_id": "reachdiff-base-moved"}) is None


def test_audit_destinations_come_from_the_environment() -> None:
    settings = ServerConfig.from_env(valid_env())
    assert settings.audit_file == "" and settings.audit_webhook_url == ""
    settings = ServerConfig.from_env(
        valid_env(
            REACHDIFF_AUDIT_FILE="/var/log/reachdiff/audit.jsonl",
            REACHDIFF_AUDIT_WEBHOOK_URL="https://siem.example.com/hooks/reachdiff",
        )
    )
    assert settings.audit_file == "/var/log/reachdiff/audit.jsonl"
    assert settings.audit_webhook_url == "https://siem.example.com/hooks/reachdiff"
    with pytest.raises(ConfigError) as caught:
        ServerConfig.from_env(valid_env(REACHDIFF_AUDIT_WEBHOOK_URL="file:///etc/passwd"))
    assert caught.value.problems == (
        "REACHDIFF_AUDIT_WEBHOOK_URL: must be an http(s) URL, got 'file:///etc/passwd'",
    )


async def test_a_failing_audit_webhook_never_fails_the_caller(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A loopback port nothing listens on: the connection is refused at once.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with aiohttp.ClientSession() as session:
        auditor = Auditor(
            session, path=str(tmp_path / "audit.jsonl"), webhook_url=f"http://127.0.0.1:{port}/"
        )
        event = AuditEvent(MERGED_NOT_GREEN, "o/r", 7, "h" * 40, "main", "admin", "t")
        assert await auditor.emit(event)
    assert "audit: webhook failed" in caplog.text
    assert '"event": "merged_not_green"' in caplog.text  # the structured log line
    assert len((tmp_path / "audit.jsonl").read_text().splitlines()) == 1
