"""``reachdiff exposure`` against ``reachdiff map`` of the same generated tree, side by side.

Exposure reads every allowed path of the tree, as ``map`` does, then searches the class
graph (entry hops) and folds its strongly connected components (blast radius); the target
is that the whole command costs at most what ``map`` costs. Both run as the CLI, process
start included, JSON to a file, alternately, best of ``--repeat`` (noise on a shared
machine only ever adds time), each in its own process (``benchmarks.run.run_measured``).

    python -m benchmarks.exposure --workloads 10000 [--repeat 3] [--out DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmarks.run import (
    DEFAULT_OUT,
    REPO_ROOT,
    Measured,
    _child_env,
    ensure_trees,
    run_measured,
)

COMMANDS = ("map", "exposure")


def measure(command: str, tree: Path, timeout: float) -> Measured:
    argv = [sys.executable, "-m", "bot.cli", command, str(tree), "--format", "json"]
    measured, stdout = run_measured(argv, timeout, cwd=REPO_ROOT, env=_child_env())
    measured.extra = {"output_bytes": len(stdout)}
    return measured


def side_by_side(tree: Path, repeat: int, timeout: float) -> dict[str, Measured]:
    best: dict[str, Measured] = {}
    for _ in range(repeat):
        for command in COMMANDS:  # alternately, so that a busy spell hits both
            m = measure(command, tree, timeout)
            if m.seconds is None:
                raise SystemExit(f"{command} failed: {m.error or 'timed out'}")
            if command not in best or m.seconds < (best[command].seconds or 0):
                best[command] = m
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--workloads", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    trees = ensure_trees(args.out, args.workloads, args.seed, ())
    best = side_by_side(trees.base, args.repeat, args.timeout)
    m, e = best["map"], best["exposure"]
    assert m.seconds and e.seconds
    print(
        "| workloads | `reachdiff map` (wall, CPU, RSS) | `reachdiff exposure` (wall, CPU, "
        "RSS) | exposure / map (wall) |"
    )
    print("|---|---|---|---|")
    print(
        f"| {args.workloads:,} | {m.seconds:.1f} s, {m.cpu_seconds or 0:.1f} s, "
        f"{m.maxrss_mib or 0:.0f} MiB | {e.seconds:.1f} s, {e.cpu_seconds or 0:.1f} s, "
        f"{e.maxrss_mib or 0:.0f} MiB | **{e.seconds / m.seconds:.2f}x** |"
    )
    return 0 if e.seconds <= m.seconds else 1


if __name__ == "__main__":
    sys.exit(main())
