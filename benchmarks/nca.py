"""Optional comparison with IBM's network-config-analyzer (NCA), on the same trees.

NCA is installed into its own virtualenv under the benchmark output directory (it pins
its own PyYAML and networkx, which must not leak into reachdiff's environment), and its
semantic diff query is timed exactly like ``reachdiff diff``: wall time from process start,
peak RSS of that process, the same bound. Run it with ``python -m benchmarks --nca`` or on
its own:

    python -m benchmarks.nca --workloads 1000 [--variant widen-rule] [--timeout 600]

The query (from ``nca --help``, version 2.1): ``nca --semantic_diff HEAD --base_np_list
BASE`` with the pods and namespaces of each side read from the same directories
(``--pod_list``/``--ns_list`` and ``--base_pod_list``/``--base_ns_list``). NCA exits 0
when the two are equivalent and 1 when they differ, like reachdiff's 0/1 for widening.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import venv
from collections.abc import Callable
from pathlib import Path

from benchmarks.generate import VARIANTS
from benchmarks.run import (
    DEFAULT_OUT,
    Measured,
    ensure_trees,
    fmt_ratio,
    fmt_seconds,
    measure_review,
    reachdiff_command,
    run_measured,
)

PACKAGE = "network-config-analyzer"


class NCA:
    """NCA in a private virtualenv: ``<out>/nca-venv``."""

    def __init__(self, out: Path) -> None:
        self.venv = out / "nca-venv"
        self.executable = self.venv / "bin" / "nca"

    def ensure_installed(self, echo: Callable[[str], None] = print) -> None:
        if self.executable.exists():
            return
        echo(f"<!-- installing {PACKAGE} into {self.venv} -->")
        venv.EnvBuilder(with_pip=True, clear=True).create(self.venv)
        subprocess.run(
            [str(self.venv / "bin" / "python"), "-m", "pip", "install", "--quiet", PACKAGE],
            check=True,
        )

    def version(self) -> str:
        done = subprocess.run(
            [str(self.executable), "--version"], capture_output=True, text=True, check=False
        )
        lines = (done.stdout + done.stderr).strip().splitlines()
        return lines[-1] if lines else "?"

    def command(self, base: Path, head: Path) -> list[str]:
        return [
            str(self.executable),
            "--semantic_diff", str(head), "--base_np_list", str(base),
            "--pod_list", str(head), "--ns_list", str(head),
            "--base_pod_list", str(base), "--base_ns_list", str(base),
        ]  # fmt: skip

    def measure(self, base: Path, head: Path, timeout: float) -> Measured:
        measured, stdout = run_measured(self.command(base, head), timeout)
        text = stdout.decode(errors="replace")
        if measured.timed_out:
            return measured
        if "semantically equivalent" in text:  # "are (not) semantically equivalent"
            measured.error = None
            measured.extra = {
                "equivalent": "not semantically equivalent" not in text,
                "added": "Added connections" in text,
                "removed": "Removed connections" in text,
            }
        elif measured.error is None:
            measured.error = "no semantic-diff verdict in NCA's output: " + text[-300:]
        return measured


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.nca",
        description="Time NCA's semantic diff beside reachdiff diff on one generated tree.",
    )
    parser.add_argument("--workloads", type=int, default=1000)
    parser.add_argument("--variant", choices=VARIANTS, default="widen-rule")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--reachdiff", help="the CLI command (default: reachdiff on PATH)")
    args = parser.parse_args(argv)
    nca = NCA(args.out)
    nca.ensure_installed()
    trees = ensure_trees(args.out, args.workloads, args.seed, [args.variant])
    base, head = trees.base, trees.head(args.variant)
    command = reachdiff_command(args.reachdiff)
    review = (
        measure_review(command, base, head, args.timeout)
        if command
        else Measured(error="reachdiff CLI not found")
    )
    theirs = nca.measure(base, head, args.timeout)
    print(f"{args.workloads} workloads, {args.variant}; NCA {nca.version()}")
    print("| tool | wall | exit | peak RSS | verdict |")
    print("|---|---|---|---|---|")
    for name, m in (("reachdiff diff", review), ("nca --semantic_diff", theirs)):
        rss = "n/a" if m.maxrss_mib is None else f"{m.maxrss_mib:.0f} MiB"
        verdict = m.error or ", ".join(f"{k}={v}" for k, v in m.extra.items())
        print(f"| {name} | {fmt_seconds(m, args.timeout)} | {m.exit_code} | {rss} | {verdict} |")
    print(f"\nNCA / reachdiff: {fmt_ratio(theirs, review, args.timeout)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
