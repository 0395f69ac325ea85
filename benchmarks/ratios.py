"""``reachdiff diff`` against the parse floor, shape by shape, side by side in one run.

    python -m benchmarks.ratios --workloads 10000 --shapes apps,cilium,calico \
        [--variant widen-rule] [--repeat 3] [--out DIR] [--scope partial|complete]

For each repeat and each shape (``benchmarks.generate.SHAPES``: the generator's tree, and
the same tree with Cilium or Calico policies mixed in), the parse floor (every file of both
trees read and parsed by libyaml, nothing else) and then ``reachdiff diff BASE HEAD
--format json`` run one after the other, each in its own subprocess, so that both see the
same load. The machine is shared: the table gives the median over the repeats of each
figure and of the ratio of each repeat (review / floor, wall and CPU), and the CPU ratio is
the steadier one.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from benchmarks.generate import SHAPES, VARIANTS
from benchmarks.run import (
    DEFAULT_OUT,
    Measured,
    _child_env,
    ensure_trees,
    measure_phase,
    reachdiff_command,
    run_measured,
)


def review(command: list[str], base: Path, head: Path, scope: str, timeout: float) -> Measured:
    argv = [*command, "diff", str(base), str(head), "--format", "json", "--cluster-scope", scope]
    measured, _ = run_measured(argv, timeout, env=_child_env())  # this checkout's engine
    return measured


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ratios", description=__doc__)
    parser.add_argument("--workloads", type=int, default=10000)
    parser.add_argument("--shapes", default="apps,cilium,calico")
    parser.add_argument("--variant", choices=VARIANTS, default="widen-rule")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--scope", choices=("partial", "complete"), default="partial")
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--reachdiff", help="the CLI command (default: reachdiff on PATH)")
    args = parser.parse_args(argv)
    shapes = [s.strip() for s in args.shapes.split(",") if s.strip()]
    if any(s not in SHAPES for s in shapes):
        parser.error(f"--shapes: choose from {', '.join(SHAPES)}")
    command = reachdiff_command(args.reachdiff)
    if command is None:
        parser.error("reachdiff CLI not found: pip install -e . or --reachdiff")
    trees = {s: ensure_trees(args.out, args.workloads, 0, [args.variant], s) for s in shapes}
    runs: dict[str, list[tuple[Measured, Measured]]] = {s: [] for s in shapes}
    for n in range(args.repeat):
        for shape in shapes:
            base, head = trees[shape].base, trees[shape].head(args.variant)
            floor = measure_phase("floor", base, head, args.timeout)
            diff = review(command, base, head, args.scope, args.timeout)
            runs[shape].append((floor, diff))
            print(f"<!-- run {n + 1}, {shape}: floor {_cell(floor)}, review {_cell(diff)} -->")
            sys.stdout.flush()
    print(
        f"\n{args.workloads:,} workloads, `{args.variant}`, cluster_scope {args.scope}, "
        f"median of {args.repeat}\n"
    )
    print(
        "| shape | files changed | parse floor | review (CLI) | exit | peak RSS | review / floor |"
    )
    print("|---|---|---|---|---|---|---|")
    for shape in shapes:
        pairs = runs[shape]
        changed = len(trees[shape].changed[args.variant])
        print(
            f"| {shape} | {changed} | {_median_cell([f for f, _ in pairs])} | "
            f"{_median_cell([r for _, r in pairs])} | "
            f"{','.join(sorted({str(r.exit_code) for _, r in pairs}))} | "
            f"{_median([r.maxrss_mib for _, r in pairs], '{:.0f} MiB')} | {_ratios(pairs)} |"
        )
    return 0


def _cell(m: Measured) -> str:
    if m.error or m.timed_out or m.seconds is None:
        return "failed" if not m.timed_out else "timed out"
    return f"{m.seconds:.2f} s / cpu {m.cpu_seconds or 0:.2f} s"


def _median(values: list[float | None], form: str) -> str:
    found = [v for v in values if v is not None]
    return form.format(statistics.median(found)) if found else "-"


def _median_cell(ms: list[Measured]) -> str:
    return (
        f"{_median([m.seconds for m in ms], '{:.2f} s')} / "
        f"cpu {_median([m.cpu_seconds for m in ms], '{:.2f} s')}"
    )


def _ratios(pairs: list[tuple[Measured, Measured]]) -> str:
    wall = [r.seconds / f.seconds for f, r in pairs if r.seconds and f.seconds]
    cpu = [r.cpu_seconds / f.cpu_seconds for f, r in pairs if r.cpu_seconds and f.cpu_seconds]
    if not wall or not cpu:
        return "-"
    return f"**{statistics.median(wall):.2f}x / cpu {statistics.median(cpu):.2f}x**"


if __name__ == "__main__":
    raise SystemExit(main())
