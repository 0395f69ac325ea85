"""The audit trail of approvals waived: break-glass, and merges past a check that was not green.

Each event is one JSON object: a structured log line (logger ``reachdiff.audit``, always),
and, when the server's operator configured them (environment, never the repository or
the pull request), a line appended to a JSON-lines file and a POST to a webhook URL.
Delivery is best effort and never blocks or fails a review: a file or webhook that fails
is logged. Fields are only ever added, never renamed or removed.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import aiohttp

log = logging.getLogger("reachdiff.audit")

BREAK_GLASS = "break_glass"
MERGED_NOT_GREEN = "merged_not_green"
WEBHOOK_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class AuditEvent:
    event: str  # BREAK_GLASS or MERGED_NOT_GREEN
    repository: str  # owner/name
    pull_request: int
    head_sha: str
    base_ref: str
    actor: str  # who broke glass, or who merged
    at: str  # ISO 8601: when the command was given, or the merge happened
    reason: str = ""  # the break-glass reason
    check_conclusion: str = ""  # what the check said (merged_not_green), or would have said
    check_title: str = ""
    # What was waived: "needs @acme/payments: 2 more approvals (3 paths)", one per group.
    waived: tuple[str, ...] = field(default_factory=tuple)
    url: str = ""  # the command's comment or review, or the pull request

    def to_json(self) -> str:
        data = asdict(self)
        data["waived"] = list(self.waived)
        return json.dumps(data, sort_keys=True, ensure_ascii=False)


class Auditor:
    """Emits audit events; at most one per ``key`` per process (a re-evaluation of the same
    break-glass must not repeat it; after a restart it may be emitted again)."""

    def __init__(
        self,
        session: aiohttp.ClientSession | None,
        *,
        path: str = "",
        webhook_url: str = "",
        remember: int = 4096,
    ) -> None:
        self._session = session
        self._path = path
        self._url = webhook_url
        self._seen: dict[str, None] = {}
        self._remember = remember
        self._lock = asyncio.Lock()

    def seen(self, key: str) -> bool:
        return key in self._seen

    async def emit(self, event: AuditEvent, *, key: str = "") -> bool:
        """False when ``key`` was emitted before (nothing done)."""
        if key:
            if key in self._seen:
                return False
            self._seen[key] = None
            while len(self._seen) > self._remember:
                self._seen.pop(next(iter(self._seen)))
        line = event.to_json()
        log.warning("audit %s", line, extra={"audit": json.loads(line)})
        if self._path:
            try:
                async with self._lock:
                    await asyncio.to_thread(_append, Path(self._path), line)
            except OSError as err:
                log.error("audit: cannot append to %s: %s", self._path, err)
        if self._url and self._session is not None:
            try:
                async with self._session.post(
                    self._url,
                    data=line.encode(),
                    headers={"Content-Type": "application/json"},
                    timeout=aiohttp.ClientTimeout(total=WEBHOOK_TIMEOUT),
                ) as response:
                    if response.status >= 300:
                        log.error("audit: webhook answered %s", response.status)
            except (aiohttp.ClientError, TimeoutError) as err:
                log.error("audit: webhook failed: %s", err)
        return True


def _append(path: Path, line: str) -> None:
    with path.open("a", encoding="utf-8") as out:
        out.write(line + "\n")
