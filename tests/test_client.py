"""When a GitHub answer is retried, and how long the bot waits first."""

from __future__ import annotations

import pytest

from bot.github.client import RetryPolicy, retry_delay

POLICY = RetryPolicy(max_attempts=4, max_wait=60.0, base_backoff=0.5)
NOW = 1_700_000_000.0
RESET_SOON, RESET_LATE = str(int(NOW) + 9), str(int(NOW) + 3600)


@pytest.mark.parametrize(
    ("status", "headers", "message", "attempt", "expected"),
    [
        (502, {}, "", 1, 0.5),
        (500, {}, "", 2, 1.0),
        (503, {}, "", 3, 2.0),
        (503, {}, "", 4, None),  # attempts exhausted
        (403, {"retry-after": "7"}, "", 1, 7.0),
        (429, {"retry-after": "0"}, "", 1, 0.0),
        (403, {"retry-after": "120"}, "", 1, None),  # longer than we are willing to wait
        (403, {"retry-after": "soon"}, "", 1, None),
        (403, {}, "You have exceeded a secondary rate limit", 1, 60.0),
        (403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(NOW) + 9)}, "", 1, 10.0),
        (
            403,
            {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(NOW) + 3600)},
            "",
            1,
            None,
        ),
        (403, {}, "Resource not accessible by integration", 1, None),
        (404, {}, "", 1, None),
        (422, {"retry-after": "1"}, "", 1, None),
    ],
)
def test_retry_delay(
    status: int, headers: dict[str, str], message: str, attempt: int, expected: float | None
) -> None:
    assert retry_delay(status, headers, message, attempt, POLICY, now=NOW) == expected
