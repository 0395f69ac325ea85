"""Background work: the per-pull-request job queue, delivery dedupe and the analysis pool.

Invariants of ``JobQueue``:
- Jobs of one pull request never run concurrently, so a later job's writes (check run,
  sticky comment, review) always land after an earlier job's.
- At most one job per pull request waits. A new review replaces the waiting one, and a
  running review of a different head is cancelled: the latest push wins. A job may carry
  ``confirm``, asked before cancelling (the bot asks GitHub whether the running review's
  head is still the pull request's head): a late delivery naming an older head must never
  cancel the review of the current one. An approval re-evaluation waiting behind a review
  is dropped, since the review evaluates approvals too.
- ``close`` (shutdown) sets ``closing`` before cancelling anything, so a cancelled job can
  tell "interrupted" from "superseded".
- ``submit`` never waits: the webhook handler answers in milliseconds.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import enum
import functools
import importlib
import logging
import multiprocessing
import resource
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine, Hashable
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")


class JobKind(enum.Enum):
    REVIEW = "review"  # full analysis of the current head
    APPROVALS = "approvals"  # re-evaluate approvals against a cached analysis


@dataclass(frozen=True, slots=True)
class Job:
    key: Hashable  # one pull request, e.g. ("octo/repo", 12)
    kind: JobKind
    head_sha: str | None
    run: Callable[[], Coroutine[Any, Any, None]]
    description: str = ""
    # Whether a running review of another head should really be cancelled for this job;
    # None: cancel at once (the queue cannot tell which head is newer).
    confirm: Callable[[], Awaitable[bool]] | None = None


# Messages of the cancellations the queue makes (``asyncio.Task.cancel(msg)``).
SUPERSEDED = "superseded by a newer head"
SHUTDOWN = "the server is shutting down"


class QueueFull(Exception):
    pass


class JobQueue:
    def __init__(self, *, concurrency: int, max_pending: int) -> None:
        self._concurrency = concurrency
        self._max_pending = max_pending
        self._pending: OrderedDict[Hashable, Job] = OrderedDict()
        self._running: dict[Hashable, tuple[Job, asyncio.Task[None]]] = {}
        self._ready: asyncio.Queue[Hashable] = asyncio.Queue()
        self._workers: list[asyncio.Task[None]] = []
        self._idle = asyncio.Event()
        self._idle.set()
        self._confirming: set[asyncio.Task[None]] = set()
        self.completed = 0
        self.closing = False

    def start(self) -> None:
        self._workers = [
            asyncio.create_task(self._work(), name=f"reachdiff-worker-{i}")
            for i in range(self._concurrency)
        ]

    async def close(self, *, grace: float = 0.0) -> None:
        """Stop: drop waiting jobs, give running ones ``grace`` seconds, then cancel them."""
        self.closing = True
        for confirming in self._confirming:
            confirming.cancel()
        self._pending.clear()
        running = [task for _, task in self._running.values()]
        if running and grace > 0:
            await asyncio.wait(running, timeout=grace)
        for task in running:
            task.cancel(SHUTDOWN)
        if running:
            # Cancelled jobs close their check runs; give them a moment to do it.
            await asyncio.wait(running, timeout=5.0)
        for worker in self._workers:
            worker.cancel()
        for worker in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        self._workers = []

    def ready(self) -> bool:
        """Accepting work: every worker is alive and there is room in the queue."""
        alive = bool(self._workers) and not any(w.done() for w in self._workers)
        return alive and len(self._pending) < self._max_pending

    def has(self, key: Hashable) -> bool:
        """A job of ``key`` is waiting or running."""
        return key in self._pending or key in self._running

    def pending(self) -> list[Job]:
        return list(self._pending.values())

    def submit(self, job: Job) -> bool:
        """Queue ``job``; False when it was coalesced away. Raises ``QueueFull``."""
        waiting = self._pending.get(job.key)
        if waiting is None and len(self._pending) >= self._max_pending:
            raise QueueFull(f"{len(self._pending)} reviews already waiting")
        if (
            job.kind is JobKind.APPROVALS
            and waiting is not None
            and (waiting.kind is JobKind.REVIEW)
        ):
            return False
        if job.kind is JobKind.REVIEW:
            running = self._running.get(job.key)
            if running is not None and _superseded(running[0], job):
                if job.confirm is None:
                    log.info(
                        "cancelling %s: superseded by %s", running[0].description, job.head_sha
                    )
                    running[1].cancel(SUPERSEDED)
                else:
                    task = asyncio.create_task(self._cancel_if_confirmed(running, job))
                    self._confirming.add(task)
                    task.add_done_callback(self._confirming.discard)
        self._pending[job.key] = job
        self._idle.clear()
        if waiting is None and job.key not in self._running:
            self._ready.put_nowait(job.key)
        return True

    async def _cancel_if_confirmed(
        self, running: tuple[Job, asyncio.Task[None]], newer: Job
    ) -> None:
        assert newer.confirm is not None
        try:
            confirmed = await newer.confirm()
        except Exception:
            log.exception("could not tell whether %s is superseded", running[0].description)
            return  # the running review checks its head again before it writes
        if confirmed and self._running.get(newer.key) is running:
            log.info("cancelling %s: superseded by %s", running[0].description, newer.head_sha)
            running[1].cancel(SUPERSEDED)

    async def join(self) -> None:
        """Wait until nothing is waiting or running (tests and graceful shutdown)."""
        await self._idle.wait()

    async def _work(self) -> None:
        while True:
            key = await self._ready.get()
            job = self._pending.pop(key, None)
            if job is None:
                continue
            task = asyncio.create_task(job.run(), name=job.description or str(key))
            self._running[key] = (job, task)
            try:
                await asyncio.wait({task})
                if task.cancelled():
                    log.info("%s was cancelled", job.description)
                elif task.exception() is not None:
                    log.error("%s failed", job.description, exc_info=task.exception())
            finally:
                del self._running[key]
                self.completed += 1
                if key in self._pending:
                    self._ready.put_nowait(key)
                elif not self._pending and not self._running:
                    self._idle.set()


def _superseded(running: Job, newer: Job) -> bool:
    return (
        running.kind is JobKind.REVIEW
        and newer.head_sha is not None
        and running.head_sha != newer.head_sha
    )


class DeliveryLog:
    """The ids of recent deliveries (bounded, least recently seen forgotten first)."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._seen: OrderedDict[str, None] = OrderedDict()

    def add(self, delivery_id: str) -> bool:
        """Record a delivery; False when it was already recorded."""
        if delivery_id in self._seen:
            self._seen.move_to_end(delivery_id)
            return False
        self._seen[delivery_id] = None
        if len(self._seen) > self._size:
            self._seen.popitem(last=False)
        return True

    def discard(self, delivery_id: str) -> None:
        self._seen.pop(delivery_id, None)


class AnalysisTimeout(Exception):
    pass


class AnalysisStopped(Exception):
    """The analysis process died (twice): killed, or out of memory where the analysis
    cannot catch it (receiving the trees, sending the result back)."""


MIB = 1024 * 1024

# What every analysis imports (bot.inputs.analyze and the engine under it).
WORKER_PRELOAD = ("bot.inputs.analyze",)


def _mapped_bytes() -> int:
    """The address space this process has mapped now (0 where /proc cannot tell)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _limit_memory(memory_mb: int) -> None:
    """Let the analysis map ``memory_mb`` beyond what the warm worker holds at its start.

    RLIMIT_AS counts address space reserved as well as used, and the engine's libraries
    reserve much they never touch (yaml-rs maps a 1 GiB arena when it is imported, before
    any analysis): a limit on the whole would leave a 2048 MB worker about half of it, and
    a large repository would fail for a reason of the app's own.
    """
    for module in WORKER_PRELOAD:  # a no-op when the fork server preloaded them
        importlib.import_module(module)
    if memory_mb > 0:
        limit = _mapped_bytes() + memory_mb * MIB
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _ping() -> bool:
    return True


class AnalysisPool:
    """Runs CPU-bound functions in worker processes, with a wall-clock timeout.

    The function itself should honour the deadline (``bot.inputs.analyze`` does, with an alarm in
    the worker); if a worker overruns it anyway, the pool is torn down and rebuilt so that a
    stuck worker cannot hold a slot forever.
    """

    def __init__(
        self, *, workers: int, timeout: float, memory_mb: int, grace: float | None = None
    ) -> None:
        self.workers = workers
        self.timeout = timeout
        self.memory_mb = memory_mb
        # Beyond the function's own deadline: pickling, process start-up, the result's trip.
        self.grace = 5.0 + timeout * 0.1 if grace is None else grace
        self._executor: concurrent.futures.ProcessPoolExecutor | None = None

    def _pool(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._executor is None:
            # forkserver: never fork the event loop's process with its threads and sockets.
            context = multiprocessing.get_context("forkserver")
            # Workers fork from a server that has imported the engine once: a new (or
            # rebuilt) worker starts warm (takes effect when the fork server starts).
            context.set_forkserver_preload(list(WORKER_PRELOAD))
            self._executor = concurrent.futures.ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=context,
                initializer=_limit_memory,
                initargs=(self.memory_mb,),
            )
        return self._executor

    async def run(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        for attempt in (1, 2):
            try:
                return await self._run_once(fn, *args, **kwargs)
            except BrokenProcessPool:
                # Another job's overrun (or an OOM kill) broke the pool: rebuild and retry once.
                self._discard()
                if attempt == 2:
                    raise AnalysisStopped(self.stopped_message()) from None
        raise AssertionError("unreachable")

    async def _submit(self, fn: Callable[[], R]) -> asyncio.Future[R]:
        executor = self._pool()
        # Submitting may start a worker process, which waits for the fork server to have
        # imported the engine (seconds on a busy machine, at start-up): never on the event
        # loop, which must answer deliveries meanwhile.
        return asyncio.wrap_future(await asyncio.to_thread(executor.submit, fn))

    async def _run_once(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        async def result() -> R:
            return await (await self._submit(functools.partial(fn, *args, **kwargs)))

        try:
            return await asyncio.wait_for(result(), self.timeout + self.grace)
        except TimeoutError:
            log.error("analysis overran its deadline; restarting the process pool")
            self._discard(kill=True)
            raise AnalysisTimeout(f"analysis took longer than {self.timeout:g} s") from None

    def stopped_message(self) -> str:
        limit = (
            f"its memory limit of {self.memory_mb} MB (REACHDIFF_ANALYSIS_MEMORY_MB)"
            if self.memory_mb > 0
            else "the memory the system could give it"
        )
        return (
            "the analysis process stopped abruptly, twice: it most likely ran out of "
            f"{limit}, or the system killed it"
        )

    async def ready(self, timeout: float = 2.0) -> bool:
        """The pool can take work: a worker answers within ``timeout`` or all are busy."""
        try:
            future = await self._submit(_ping)
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            return True  # every worker is busy analysing, which is not a failure
        except (BrokenProcessPool, RuntimeError):
            self._discard()
            return False

    def _discard(self, *, kill: bool = False) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return
        if kill:
            # The executor has no public way to stop a running call; its processes do.
            for process in list(getattr(executor, "_processes", {}).values()):
                with contextlib.suppress(Exception):
                    process.kill()
        executor.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
