"""The audit trail of approvals waived: break-glass, and merges past a check that was not green.

Each event is one JSON object: a structured log line (logger ``reachdiff.audit``, always),
and, when the server's operator configured them (environment, never the repository or
the pull request), a line appended to a JSON-lines file and a POST to a webhook URL.
Delivery is best effort and never blocks or fails a review: a file or webhook that fails
is logged. Fields are only ever added, never renamed or removed.

An event is idempotent: its ``id`` is derived from what it is about (the break-glass
command, or the merged head), never from the delivery that made the app notice it, so a
redelivered webhook, a re-evaluation or a restart gives the same id. Within a process an
id is emitted once; after a restart, the ids already in the audit file (its last
``TAIL_BYTES``) are not appended or posted again, and the webhook carries the id as
``Idempotency-Key`` for a receiver to drop what it already has.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import aiohttp

log = logging.getLogger("reachdiff.audit")

BREAK_GLASS = "break_glass"
MERGED_NOT_GREEN = "merged_not_green"
WEBHOOK_TIMEOUT = 10.0
TAIL_BYTES = 4 * 1024 * 1024  # of the audit file, read once for the ids it holds


def event_id(key: str) -> str:
    """The id of the event ``key`` names (the same key: the same id, in any process)."""
    return hashlib.sha256(key.encode()).hexdigest()[:32]


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
    id: str = ""  # stable per event (``event_id``): the same event always has the same id

    def to_json(self) -> str:
        data = asdict(self)
        data["waived"] = list(self.waived)
        return json.dumps(data, sort_keys=True, ensure_ascii=False)


class Auditor:
    """Emits audit events; at most one per ``key`` (a re-evaluation of the same break-glass
    must not repeat it): per process, and across restarts for what the file holds."""

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
        self._seen: dict[str, None] = {}  # event ids
        self._remember = remember
        self._lock = asyncio.Lock()
        self._read_file = not path  # the file's ids are read at the first emit

    def seen(self, key: str) -> bool:
        return event_id(key) in self._seen

    async def emit(self, event: AuditEvent, *, key: str = "") -> bool:
        """False when the event of ``key`` was emitted before (nothing done)."""
        if key:
            event = replace(event, id=event.id or event_id(key))
        if event.id:
            async with self._lock:
                if not self._read_file:
                    self._read_file = True
                    for found in await asyncio.to_thread(_ids_in, Path(self._path)):
                        self._remember_id(found)
                if event.id in self._seen:
                    return False
                self._remember_id(event.id)
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
                headers = {"Content-Type": "application/json"}
                if event.id:
                    headers["Idempotency-Key"] = event.id
                async with self._session.post(
                    self._url,
                    data=line.encode(),
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=WEBHOOK_TIMEOUT),
                ) as response:
                    if response.status >= 300:
                        log.error("audit: webhook answered %s", response.status)
            except (aiohttp.ClientError, TimeoutError) as err:
                log.error("audit: webhook failed: %s", err)
        return True

    def _remember_id(self, ident: str) -> None:
        self._seen[ident] = None
        while len(self._seen) > self._remember:
            self._seen.pop(next(iter(self._seen)))


def _ids_in(path: Path) -> list[str]:
    """The ids of the events in the file's last ``TAIL_BYTES`` (none when it is missing or
    unreadable: then an event may be written twice, never lost)."""
    try:
        with path.open("rb") as source:
            size = source.seek(0, 2)
            source.seek(max(0, size - TAIL_BYTES))
            tail = source.read(TAIL_BYTES)
    except OSError:
        return []
    ids = []
    for raw in tail.splitlines()[1 if size > TAIL_BYTES else 0 :]:
        try:
            found = json.loads(raw)
        except ValueError:
            continue
        if isinstance(found, dict) and isinstance(found.get("id"), str) and found["id"]:
            ids.append(found["id"])
    return ids


def _append(path: Path, line: str) -> None:
    with path.open("a", encoding="utf-8") as out:
        out.write(line + "\n")
