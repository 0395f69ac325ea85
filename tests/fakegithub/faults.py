"""Scripted failures: make the next matching request(s) fail the way GitHub sometimes does."""

from __future__ import annotations

import asyncio
import fnmatch
import json
import re
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

# GitHub's documented answer when a client trips a secondary rate limit: 403 (or 429) with
# retry-after, while x-ratelimit-remaining is not zero.
SECONDARY_RATE_LIMIT_MESSAGE = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try "
    "again. If you reach out to GitHub Support for help, please include the request ID "
    "DEAD:BEEF:0000000:0000000:00000000."
)
SECONDARY_RATE_LIMIT_BODY = {
    "message": SECONDARY_RATE_LIMIT_MESSAGE,
    "documentation_url": (
        "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
        "#about-secondary-rate-limits"
    ),
    "status": "403",
}


@dataclass
class Fault:
    method: str  # upper case, or "*"
    pattern: str | re.Pattern[str]
    status: int
    remaining: int
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None

    def matches(self, method: str, path: str) -> bool:
        if self.method not in ("*", method.upper()):
            return False
        if isinstance(self.pattern, re.Pattern):
            return self.pattern.search(path) is not None
        return fnmatch.fnmatchcase(path, self.pattern)

    def payload(self) -> tuple[bytes, str]:
        """(body bytes, content type)."""
        body = self.body
        if body is None:
            try:
                phrase = HTTPStatus(self.status).phrase
            except ValueError:
                phrase = "Error"
            body = {"message": phrase, "status": str(self.status)}
        if isinstance(body, bytes):
            return body, "text/html; charset=utf-8"
        if isinstance(body, str):
            return body.encode(), "text/html; charset=utf-8"
        return json.dumps(body).encode(), "application/json; charset=utf-8"


class Faults:
    def __init__(self) -> None:
        self._queue: list[Fault] = []
        self.injected: list[dict[str, Any]] = []

    def add(
        self,
        method: str,
        pattern: str | re.Pattern[str],
        status: int,
        times: int,
        headers: dict[str, str] | None,
        body: Any,
    ) -> None:
        if times < 1:
            raise ValueError("times must be >= 1")
        self._queue.append(Fault(method.upper(), pattern, status, times, dict(headers or {}), body))

    def take(self, method: str, path: str) -> Fault | None:
        for fault in self._queue:
            if fault.matches(method, path):
                fault.remaining -= 1
                if fault.remaining == 0:
                    self._queue.remove(fault)
                self.injected.append({"method": method, "path": path, "status": fault.status})
                return fault
        return None

    @property
    def pending(self) -> int:
        return sum(f.remaining for f in self._queue)


@dataclass
class Pause:
    """Holds the next matching request until ``release`` is set (``arrived`` when it came);
    the request is then answered normally. For races: a cancellation mid-request."""

    method: str
    pattern: str | re.Pattern[str]
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def matches(self, method: str, path: str) -> bool:
        return Fault(self.method, self.pattern, 0, 1).matches(method, path)
