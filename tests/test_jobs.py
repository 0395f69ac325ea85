"""The job queue (coalescing, latest push wins), delivery dedupe, and the analysis pool."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, cast

import pytest

import bot.inputs.analyze
from analysis.customkinds import WorkloadKind
from bot.app.jobs import (
    AnalysisPool,
    AnalysisStopped,
    AnalysisTimeout,
    DeliveryLog,
    Job,
    JobKind,
    JobQueue,
    QueueFull,
)
from bot.inputs.analyze import AnalysisFailure, DiffResult, PreparedBases, analyze
from tests.botharness import WORKLOADS, db_policy

if TYPE_CHECKING:
    from bot.app.context import BotContext


class Recorder:
    """Jobs that log start/finish and can be held at a gate."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.gates: dict[str, asyncio.Event] = {}

    def job(
        self, name: str, key: Any = "pr-1", kind: JobKind = JobKind.REVIEW, head: str | None = None
    ) -> Job:
        async def run() -> None:
            self.events.append(f"start {name}")
            try:
                if name in self.gates:
                    await self.gates[name].wait()
            except asyncio.CancelledError:
                self.events.append(f"cancelled {name}")
                raise
            self.events.append(f"end {name}")

        return Job(key, kind, head if head is not None else name, run, name)

    def hold(self, name: str) -> asyncio.Event:
        self.gates[name] = asyncio.Event()
        return self.gates[name]


@pytest.fixture
async def queue() -> AsyncIterator[JobQueue]:
    q = JobQueue(concurrency=2, max_pending=3)
    q.start()
    yield q
    await q.close()


async def until(predicate: Callable[[], bool]) -> None:
    for _ in range(400):
        if predicate():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition never became true")


async def test_waiting_reviews_of_one_pull_request_coalesce_to_the_latest(
    queue: JobQueue,
) -> None:
    rec = Recorder()
    gate = rec.hold("a")
    queue.submit(rec.job("a"))
    await until(lambda: rec.events == ["start a"])
    for name in ("b", "c", "d"):
        queue.submit(rec.job(name, head="a" if name == "b" else name))
    # "b" (the running head) waits; "c" (a new head) replaces it and cancels "a"; "d"
    # replaces "c". Only the latest runs.
    gate.set()
    await queue.join()
    assert rec.events == ["start a", "cancelled a", "start d", "end d"]


async def test_a_review_of_a_newer_head_cancels_the_running_one(queue: JobQueue) -> None:
    rec = Recorder()
    rec.hold("old")
    queue.submit(rec.job("old", head="sha1"))
    await until(lambda: rec.events == ["start old"])
    queue.submit(rec.job("new", head="sha2"))
    await queue.join()
    assert rec.events == ["start old", "cancelled old", "start new", "end new"]


async def test_a_review_of_the_same_head_waits_instead_of_cancelling(queue: JobQueue) -> None:
    rec = Recorder()
    gate = rec.hold("first")
    queue.submit(rec.job("first", head="sha1"))
    await until(lambda: rec.events == ["start first"])
    queue.submit(rec.job("rerun", head="sha1"))
    await asyncio.sleep(0.02)
    assert rec.events == ["start first"]  # never two jobs of one PR at once
    gate.set()
    await queue.join()
    assert rec.events == ["start first", "end first", "start rerun", "end rerun"]


async def test_approvals_waiting_behind_a_review_are_dropped(queue: JobQueue) -> None:
    rec = Recorder()
    gate = rec.hold("running")
    queue.submit(rec.job("running"))
    await until(lambda: rec.events == ["start running"])
    assert queue.submit(rec.job("review", head="x"))  # cancels "running" (different head)
    assert not queue.submit(rec.job("approvals", kind=JobKind.APPROVALS))
    gate.set()
    await queue.join()
    assert "start approvals" not in rec.events


async def test_approvals_after_a_running_review_run_after_it(queue: JobQueue) -> None:
    rec = Recorder()
    gate = rec.hold("review")
    queue.submit(rec.job("review"))
    await until(lambda: rec.events == ["start review"])
    assert queue.submit(rec.job("approvals", kind=JobKind.APPROVALS, head="other"))
    gate.set()
    await queue.join()
    # An approvals job never cancels a review: it runs once the review is done.
    assert rec.events == ["start review", "end review", "start approvals", "end approvals"]


async def test_different_pull_requests_run_concurrently_up_to_the_limit(
    queue: JobQueue,
) -> None:
    rec = Recorder()
    gates = [rec.hold(n) for n in ("p1", "p2", "p3")]
    for name in ("p1", "p2", "p3"):
        queue.submit(rec.job(name, key=name))
    await until(lambda: len(rec.events) == 2)
    await asyncio.sleep(0.02)
    assert sorted(rec.events) == ["start p1", "start p2"]  # concurrency is 2
    for gate in gates:
        gate.set()
    await queue.join()
    assert "end p3" in rec.events


async def test_a_full_queue_refuses_new_pull_requests_but_coalesces_known_ones(
    queue: JobQueue,
) -> None:
    rec = Recorder()
    gates = [rec.hold(n) for n in ("r1", "r2")]
    queue.submit(rec.job("r1", key="r1"))
    queue.submit(rec.job("r2", key="r2"))
    await until(lambda: len(rec.events) == 2)
    for key in ("w1", "w2", "w3"):
        queue.submit(rec.job(key, key=key))
    assert not queue.ready()
    with pytest.raises(QueueFull):
        queue.submit(rec.job("w4", key="w4"))
    queue.submit(rec.job("w3-again", key="w3"))  # replaces the waiting one: no new slot
    for gate in gates:
        gate.set()
    await queue.join()
    assert "start w3-again" in rec.events and "start w3" not in rec.events
    assert queue.ready()


async def test_a_failing_job_does_not_stop_the_workers(queue: JobQueue) -> None:
    async def boom() -> None:
        raise RuntimeError("boom")

    done: list[str] = []

    async def fine() -> None:
        done.append("fine")

    queue.submit(Job("k", JobKind.REVIEW, "a", boom, "boom"))
    await queue.join()
    queue.submit(Job("k", JobKind.REVIEW, "b", fine, "fine"))
    await queue.join()
    assert done == ["fine"] and queue.ready()


async def test_close_gives_running_jobs_a_grace_period_then_cancels() -> None:
    q = JobQueue(concurrency=1, max_pending=5)
    q.start()
    rec = Recorder()
    rec.hold("slow")
    q.submit(rec.job("slow"))
    q.submit(rec.job("queued", key="other"))
    await until(lambda: rec.events == ["start slow"])
    started = time.monotonic()
    await q.close(grace=0.05)
    assert time.monotonic() - started < 2
    assert rec.events == ["start slow", "cancelled slow"]
    assert not q.ready()


def test_delivery_log_remembers_a_bounded_number_of_ids() -> None:
    log = DeliveryLog(size=3)
    assert [log.add(d) for d in ("a", "b", "c")] == [True] * 3
    assert log.add("a") is False  # and "a" becomes the most recent
    assert log.add("d") is True  # evicts "b", the least recently seen
    assert log.add("b") is True
    assert log.add("a") is False
    log.discard("a")
    assert log.add("a") is True


# ---- the analysis function and pool ------------------------------------------------------

BASE = {"apps/shop.yaml": WORKLOADS, "policies/db.yaml": db_policy("api")}
HEAD = {"apps/shop.yaml": WORKLOADS, "policies/db.yaml": db_policy("web")}


def test_analyze_returns_the_diff_without_the_maps() -> None:
    result = analyze(BASE, HEAD)
    assert isinstance(result, DiffResult) and result.widening
    [change] = result.opened
    assert (change.src.id, change.dst.id, str(change.delta)) == (
        "shop/Deployment/web",
        "shop/Deployment/db",
        "TCP 5432",
    )
    assert [(c.file, c.line, c.tree) for c in change.because] == [("policies/db.yaml", 11, "head")]


def test_analyze_reports_an_invalid_head() -> None:
    broken = {**BASE, "policies/db.yaml": db_policy("web", (70000,))}
    result = analyze(BASE, broken)
    assert isinstance(result, AnalysisFailure)
    assert (result.kind, result.tree, result.file, result.line) == (
        "manifest",
        "head",
        "policies/db.yaml",
        16,
    )
    assert "70000" in result.message


@pytest.mark.parametrize("base_key", ["", "base-commit"])
def test_analyze_reviews_the_head_alone_when_the_base_is_invalid(base_key: str) -> None:
    broken = {**BASE, "policies/db.yaml": db_policy("web", (70000,))}
    result = analyze(broken, HEAD, base_key=base_key)
    assert isinstance(result, DiffResult)
    assert result.base_error == "base: policies/db.yaml:16: port 70000 is outside 1..65535"
    # Every path the head allows counts as opened, none as new.
    assert ("shop/Deployment/web", "shop/Deployment/db") in {
        (c.src.id, c.dst.id) for c in result.opened
    }
    assert not any(c.src_new or c.dst_new for c in result.opened)
    assert result.added_endpoints == ()


def test_analyze_stops_at_its_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    def slow(files: Any, **options: Any) -> Any:
        time.sleep(5)

    monkeypatch.setattr(bot.inputs.analyze, "prepare", slow)
    started = time.monotonic()
    result = analyze(BASE, HEAD, deadline=0.05)
    assert time.monotonic() - started < 2
    assert isinstance(result, AnalysisFailure) and result.kind == "timeout"


def test_analyze_turns_a_crash_into_an_internal_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(files: Any, **options: Any) -> Any:
        raise KeyError("surprise")

    monkeypatch.setattr(bot.inputs.analyze, "prepare", crash)
    result = analyze(BASE, HEAD)
    assert isinstance(result, AnalysisFailure) and result.kind == "internal"
    assert "KeyError" in result.message and "test_jobs.py" in result.message


def test_analyze_reuses_the_prepared_base_of_the_same_commit_and_content(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    prepared: list[int] = []
    real = bot.inputs.analyze.prepare

    def counting(files: Any, **kwargs: Any) -> Any:
        prepared.append(len(files))
        return real(files, **kwargs)

    monkeypatch.setattr(bot.inputs.analyze, "prepare", counting)
    bases = PreparedBases(limit=1, freeze=False)  # not this test process
    first = analyze(BASE, HEAD, base_key="sha-1", bases=bases)
    again = analyze(BASE, HEAD, base_key="sha-1", bases=bases)
    assert isinstance(first, DiffResult) and isinstance(again, DiffResult)
    assert first == again and len(prepared) == 1
    # Same key, other content (a force-pushed or forged key): prepared anew, never trusted.
    other = analyze(HEAD, HEAD, base_key="sha-1", bases=bases)
    assert isinstance(other, DiffResult) and len(prepared) == 2
    assert first.opened and not other.opened
    # Same key and content, other workload_kinds settings: read anew as well.
    kafka = WorkloadKind(kind="Kafka")
    analyze(HEAD, HEAD, base_key="sha-1", workload_kinds=(kafka,), bases=bases)
    assert len(prepared) == 3
    # A base is prepared for one cluster_scope: the other scope prepares its own.
    complete = analyze(HEAD, HEAD, base_key="sha-1", cluster_scope="complete", bases=bases)
    assert isinstance(complete, DiffResult) and len(prepared) == 4


async def test_pool_runs_analysis_in_another_process() -> None:
    pool = AnalysisPool(workers=1, timeout=30, memory_mb=2048)
    try:
        result = await pool.run(analyze, BASE, HEAD, 30.0)
        assert isinstance(result, DiffResult) and len(result.opened) == 1
        assert await pool.ready()
    finally:
        pool.close()


async def test_memory_limit_counts_what_the_analysis_maps_not_the_engines_reservations() -> None:
    # yaml-rs maps a 1 GiB arena when the engine is imported: under an address-space limit
    # on the whole worker, a 256 MB limit left nothing, and a 2048 MB one about half (a
    # 10,000-workload repository's first review died as "could not complete the review").
    pool = AnalysisPool(workers=1, timeout=60, memory_mb=256)
    try:
        result = await pool.run(analyze, BASE, HEAD, 60.0)
        assert isinstance(result, DiffResult) and len(result.opened) == 1
        # Still a limit: far more than 256 MB beyond the worker's start fails, caught.
        assert await pool.run(_allocate_mb, 1024) == "MemoryError"
    finally:
        pool.close()


def _allocate_mb(size: int) -> str:
    try:
        bytearray(size * 1024 * 1024)
    except MemoryError:
        return "MemoryError"
    return "allocated"


def _die() -> None:
    os._exit(1)


async def test_a_dying_analysis_process_is_named_with_the_limit_to_raise() -> None:
    pool = AnalysisPool(workers=1, timeout=60, memory_mb=512)
    try:
        with pytest.raises(AnalysisStopped, match=r"512 MB \(REACHDIFF_ANALYSIS_MEMORY_MB\)"):
            await pool.run(_die)
        result = await pool.run(analyze, BASE, HEAD, 60.0)  # the pool recovers
        assert isinstance(result, DiffResult)
    finally:
        pool.close()


async def test_pool_overrun_is_killed_and_the_pool_recovers() -> None:
    pool = AnalysisPool(workers=1, timeout=0.2, memory_mb=0, grace=0.2)
    try:
        started = time.monotonic()
        with pytest.raises(AnalysisTimeout):
            await pool.run(time.sleep, 30)  # ignores any deadline of its own
        assert time.monotonic() - started < 10
        pool.timeout = 30  # room for the new worker process to start
        result = await pool.run(analyze, BASE, HEAD)
        assert isinstance(result, DiffResult)
    finally:
        pool.close()


class _SlowToStart(concurrent.futures.ThreadPoolExecutor):
    """Submitting blocks, as starting a worker through a fork server still importing the
    engine does."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        time.sleep(1.0)
        return super().submit(fn, *args, **kwargs)


async def test_event_loop_answers_while_a_worker_process_starts() -> None:
    pool = AnalysisPool(workers=1, timeout=30, memory_mb=0)
    pool._executor = _SlowToStart(max_workers=1)  # type: ignore[assignment]
    try:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.05)
                ticks += 1

        ticking = asyncio.ensure_future(tick())
        assert await pool.ready(timeout=5.0)  # the start-up warm-up
        assert await pool.run(sum, (1, 2)) == 3
        ticking.cancel()
        assert ticks >= 20  # about 2 s of submitting, the loop ticking throughout
    finally:
        pool.close()


async def test_event_loop_stays_responsive_during_analysis() -> None:
    pool = AnalysisPool(workers=1, timeout=30, memory_mb=0)
    try:
        await pool.run(analyze, {}, {})  # start the worker process
        task = asyncio.ensure_future(pool.run(time.sleep, 0.5))
        started = time.monotonic()
        await asyncio.sleep(0.01)
        assert time.monotonic() - started < 0.5
        await task
    finally:
        pool.close()


class _FailingPool:
    def __init__(self, error: Exception) -> None:
        self.error = error

    async def run(self, *args: Any, **kwargs: Any) -> Any:
        raise self.error


@pytest.mark.parametrize(
    ("error", "kind", "named"),
    [
        (AnalysisStopped("the analysis process stopped abruptly"), "stopped", "2048 MB"),
        (AnalysisTimeout("analysis took longer than 120 s"), "timeout", "120 s"),
    ],
)
async def test_the_failure_names_the_apps_limit_and_how_to_raise_it(
    error: Exception, kind: str, named: str
) -> None:
    from types import SimpleNamespace

    from bot.app.facts import run_analysis
    from bot.review.settings import RepoSettings

    config = SimpleNamespace(analysis_timeout=120.0, analysis_memory_mb=2048)
    bot = cast("BotContext", SimpleNamespace(pool=_FailingPool(error), config=config))
    failed = await run_analysis(bot, RepoSettings(), BASE, HEAD, "sha-1", "")
    assert isinstance(failed, AnalysisFailure) and failed.kind == kind
    setting = "MEMORY_MB" if kind == "stopped" else "TIMEOUT"
    assert f"REACHDIFF_ANALYSIS_{setting}" in failed.message and named in failed.message
