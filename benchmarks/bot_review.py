"""The bot's first review of a large repository after start, against the CLI's diff.

The real webhook server (``bot.app.server.make_app``) starts with no prepared base, against
the fake GitHub (``tests/fakegithub``) serving the generated base and head trees as
tarballs on loopback; the clock runs from the ``pull_request opened`` delivery to the
completed check run. Side by side, in the same run, ``reachdiff diff BASE HEAD`` of the
same trees (process start to exit). Each measurement runs in its own subprocess.

    python -m benchmarks.bot_review --workloads 10000 [--variant widen-rule]
        [--shape apps|small-files] [--repeat N]

The fake GitHub serves from a thread of the measuring process; the bot's analysis runs in
its worker processes, as in production. What GitHub does on its side is not the bot's
time: the archives are built before the clock runs (codeload serves cached archives), the
fake does not check its own answers against the schema (it still checks every request),
and the bot's CPU is the server process's less the fake's thread, plus the workers'. The
workers start with the server and are warm when the pull request arrives.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.generate import SHAPES, read_tree
from benchmarks.run import (
    DEFAULT_OUT,
    Measured,
    _child_env,
    ensure_trees,
    fmt_seconds,
    measure_review,
    reachdiff_command,
    run_measured,
)

REPO_ROOT = Path(__file__).resolve().parent.parent


def _cpu_of_descendants(pid: int) -> float:
    """User + system seconds of every live descendant of ``pid`` and the children each
    has reaped (the analysis workers, their fork server, a worker's reading child)."""
    ticks = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        times[int(entry)] = sum(int(f) for f in fields[11:15]) / ticks
    total, todo = 0.0, [pid]
    while todo:
        parent = todo.pop()
        for child, its_parent in parents.items():
            if its_parent == parent:
                total += times[child]
                todo.append(child)
    return total


def _thread_cpu(name: str) -> float:
    for thread in threading.enumerate():
        if thread.name == name and thread.ident is not None:
            return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
    return 0.0


async def _first_review(base: Path, head: Path, timeout: float) -> dict[str, Any]:
    from aiohttp.test_utils import TestClient, TestServer

    from bot.app.server import make_app
    from tests.botharness import BASE, HEAD, REPO, Harness, settings_for, setup_pull
    from tests.fakegithub.server import FakeGitHub

    # The fake checks every request the bot sends; checking its own answers against the
    # schema (the test suite does) would be charged to the bot here.
    fake = FakeGitHub(validate_responses=False)
    setup_pull(fake, read_tree(head), base_files=read_tree(base))
    for sha in (BASE, HEAD):  # GitHub serves archives it has built: not the bot's time
        fake.archive(REPO, sha)
    with fake.serve_in_thread():
        config = settings_for(fake, analysis_workers=1, analysis_timeout=timeout)
        client: TestClient[Any, Any] = TestClient(TestServer(make_app(config)))
        await client.start_server()
        try:
            harness = Harness(fake, client)
            # After a deploy the workers start (and import the engine) with the server,
            # before any pull request arrives: the clock runs from the first delivery.
            await harness.bot.pool.ready(timeout=timeout)
            wall, cpu = time.perf_counter(), time.process_time()
            fake_cpu, workers_cpu = _thread_cpu("fake-github"), _cpu_of_descendants(os.getpid())
            response = await harness.deliver("pull_request", "opened")
            if response.status != 202:
                return {"error": f"webhook answered {response.status}"}
            await harness.settle(timeout)
            seconds = time.perf_counter() - wall
            fake_cpu = _thread_cpu("fake-github") - fake_cpu
            server_cpu = time.process_time() - cpu - fake_cpu
            workers_cpu = _cpu_of_descendants(os.getpid()) - workers_cpu
            check = harness.check(HEAD)
        finally:
            await client.close()
    return {
        "seconds": seconds,
        # The server process (less the fake GitHub's thread) and its analysis workers.
        "cpu_seconds": server_cpu + workers_cpu,
        "server_cpu": server_cpu,
        "workers_cpu": workers_cpu,
        "fake_github_cpu": fake_cpu,
        "conclusion": check.get("conclusion"),
        "title": check.get("output", {}).get("title", ""),
        "summary": check.get("output", {}).get("summary", "")[:400],
        "invalid_requests": len(fake.validation_errors),
    }


def measure_bot(base: Path, head: Path, timeout: float) -> Measured:
    argv = [sys.executable, "-m", "benchmarks.bot_review", "--worker", str(base), str(head)]
    outer, stdout = run_measured(argv, timeout + 60, cwd=REPO_ROOT, env=_child_env())
    if outer.timed_out or outer.error:
        return outer
    report = json.loads(stdout or b"{}")
    if "error" in report:
        return Measured(error=report["error"])
    return Measured(
        seconds=report.pop("seconds"),
        cpu_seconds=report.pop("cpu_seconds"),  # the server and its workers, not the fake
        maxrss_mib=outer.maxrss_mib,
        extra=report,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bot_review", description=__doc__)
    parser.add_argument("--workloads", type=int, default=10000)
    parser.add_argument("--variant", default="widen-rule")
    parser.add_argument("--shape", choices=SHAPES, default="apps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--worker", nargs=2, metavar=("BASE", "HEAD"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        report = asyncio.run(_first_review(Path(args.worker[0]), Path(args.worker[1]), 900.0))
        json.dump(report, sys.stdout)
        return 0
    trees = ensure_trees(args.out, args.workloads, args.seed, [args.variant], args.shape)
    base, head = trees.base, trees.head(args.variant)
    command = reachdiff_command(None)
    if command is None:
        parser.error("reachdiff CLI not found (pip install -e .)")
    print(f"{args.workloads:,} workloads, {args.shape}, {args.variant}: {trees.base_stats}")
    for _ in range(max(1, args.repeat)):  # alternately, so that both see the same load
        cli = measure_review(command, base, head, args.timeout)
        bot = measure_bot(base, head, args.timeout)
        ratio = f"{bot.seconds / cli.seconds:.2f}x" if bot.seconds and cli.seconds else "n/a"
        cpu_ratio = (
            f"{bot.cpu_seconds / cli.cpu_seconds:.2f}x"
            if bot.cpu_seconds and cli.cpu_seconds
            else "n/a"
        )
        print(
            f"| CLI {fmt_seconds(cli, args.timeout)} | bot first review "
            f"{fmt_seconds(bot, args.timeout)} | bot / CLI {ratio} (cpu {cpu_ratio}) | "
            f"server cpu {bot.extra.get('server_cpu', 0):.2f} s, workers "
            f"{bot.extra.get('workers_cpu', 0):.2f} s (fake GitHub "
            f"{bot.extra.get('fake_github_cpu', 0):.2f} s, not counted) | "
            f"{bot.extra.get('conclusion')}: {bot.extra.get('title', '')[:60]} | "
            f"{bot.error or cli.error or ''}"
        )
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
