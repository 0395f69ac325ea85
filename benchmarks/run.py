"""The benchmark harness: generated trees, phase timings, the CLI's wall time and memory.

Every measurement runs in its own subprocess so that its time and peak RSS are not
coloured by what ran before it (a warm import cache, a heap grown by a larger tree).
Phases are timed inside the subprocess with ``time.perf_counter``; the CLI's review is
timed from outside, process start included, and its peak RSS comes from ``os.wait4``.

Columns (every figure is for the base tree and one variant's head tree):
- parse floor: read every file of both trees and ``yaml.load_all`` them with libyaml's
  CSafeLoader, nothing else. No tool that reads these YAML files can beat it.
- load: read both trees and ``load_files`` them (parse, validate, build the model).
- map: ``compute_map`` of the head tree, already loaded, read in full (maps are lazy).
- diff: ``diff_trees`` of the two trees, already loaded.
- review: ``reachdiff diff BASE HEAD --format json`` from process start to exit.
- incremental: the review of a pull request when the base is prepared (as the bot's
  worker keeps it): ``analysis.prepared.review(prepared, changed files)``, which parses
  the changed files, derives the head and compares what they can change. Without that
  entry point it is the head load plus the full diff after a cached base load, "(full)".

The engine phases run with the cycle collector off, as the CLI and the bot's worker do.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import importlib
import json
import os
import platform
import resource
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from benchmarks.generate import (
    GENERATOR_VERSION,
    SHAPES,
    VARIANTS,
    derive_variant,
    generate_base,
    read_tree,
    shaped,
    shaped_variant,
    stats,
    write_tree,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "benchmarks" / "out"
DEFAULT_SIZES = (1000, 3000, 10000, 30000)
PHASES = ("floor", "load", "map", "diff", "incremental")


# --------------------------------------------------------------------------- trees


@dataclass(frozen=True)
class TreeSet:
    """A generated base tree and the head trees of its variants, on disk."""

    root: Path
    workloads: int
    seed: int
    base_stats: Mapping[str, int]
    changed: Mapping[str, tuple[str, ...]]  # variant -> changed paths
    summaries: Mapping[str, str]

    @property
    def base(self) -> Path:
        return self.root / "base"

    def head(self, variant: str) -> Path:
        return self.root / variant


def ensure_trees(
    out: Path, workloads: int, seed: int, variants: Sequence[str], shape: str = "apps"
) -> TreeSet:
    """Generate the trees unless a cache for this generator version already holds them."""
    root = out / (f"w{workloads}-s{seed}" + ("" if shape == "apps" else f"-{shape}"))
    stamp_path = root / "stamp.json"
    stamp: dict[str, Any] = {}
    if stamp_path.exists():
        stamp = json.loads(stamp_path.read_text())
    if stamp.get("generator") != GENERATOR_VERSION:
        if root.exists():
            shutil.rmtree(root)
        stamp = {
            "generator": GENERATOR_VERSION,
            "workloads": workloads,
            "seed": seed,
            "variants": {},
        }
    base_files = None  # the generator's own shape: variants are derived from it
    if "base_stats" not in stamp or not (root / "base").is_dir():
        base_files = generate_base(workloads, seed)
        write_tree(shaped(base_files, shape), root / "base")
        stamp["base_stats"] = stats(shaped(base_files, shape))
        stamp["variants"] = {}
    for name in variants:
        if name in stamp["variants"] and (root / name).is_dir():
            continue
        if base_files is None:
            base_files = (
                read_tree(root / "base") if shape == "apps" else generate_base(workloads, seed)
            )
        variant = derive_variant(base_files, name, seed)
        if shape != "apps":
            variant = shaped_variant(variant, shaped(base_files, shape), shape)
        write_tree(variant.files, root / name)
        stamp["variants"][name] = {"changed": list(variant.changed), "summary": variant.summary}
        stamp_path.parent.mkdir(parents=True, exist_ok=True)
        stamp_path.write_text(json.dumps(stamp, indent=1))
    stamp_path.parent.mkdir(parents=True, exist_ok=True)
    stamp_path.write_text(json.dumps(stamp, indent=1))
    return TreeSet(
        root=root,
        workloads=workloads,
        seed=seed,
        base_stats=stamp["base_stats"],
        changed={k: tuple(v["changed"]) for k, v in stamp["variants"].items()},
        summaries={k: v["summary"] for k, v in stamp["variants"].items()},
    )


# --------------------------------------------------------------------------- workers


def _read_all(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.suffix in (".yaml", ".yml")
    }


def incremental_entry() -> tuple[Callable[..., Any], Callable[..., Any]] | None:
    """The engine's incremental review, once it has one: ``(prepare, review)``.

    Expected shape: ``state = prepare(base_files)`` once per base commit, then
    ``review(state, changed) -> ReachabilityDiff`` where ``changed`` maps each added or
    modified path to its bytes and each deleted path to ``None``. Until a module
    ``analysis.prepared`` offers both, the harness measures the full diff instead.
    """
    try:
        module = importlib.import_module("analysis.prepared")
    except ImportError:
        return None
    prepare, review = getattr(module, "prepare", None), getattr(module, "review", None)
    return (prepare, review) if callable(prepare) and callable(review) else None


class _Clock:
    """Wall and CPU time of this process from construction to ``stop``."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def stop(self, result: dict[str, Any]) -> None:
        result["seconds"] = time.perf_counter() - self.wall
        result["cpu_seconds"] = time.process_time() - self.cpu


def worker(phase: str, base: Path, head: Path) -> dict[str, Any]:
    """Run one phase in this process and return its figures (called in a subprocess)."""
    result: dict[str, Any] = {"phase": phase}
    if phase == "floor":
        import yaml

        clock = _Clock()
        docs = 0
        for root in (base, head):
            for data in _read_all(root).values():
                docs += sum(1 for _ in yaml.load_all(data, Loader=yaml.CSafeLoader))
        clock.stop(result)
        result["documents"] = docs
    else:
        from analysis.diff import diff_trees
        from analysis.manifests import load_files
        from analysis.reachability import compute_map

        gc.disable()  # as the CLI and the bot's worker run the engine

        if phase == "load":
            clock = _Clock()
            load_files(_read_all(base))
            load_files(_read_all(head))
            clock.stop(result)
        elif phase == "map":
            head_tree = load_files(_read_all(head))
            clock = _Clock()
            rmap = compute_map(head_tree)
            rmap.class_connections  # maps are lazy: read all of it  # noqa: B018
            clock.stop(result)
            result["connections"] = _count(rmap, "connections")
        elif phase == "diff":
            base_tree = load_files(_read_all(base))
            head_tree = load_files(_read_all(head))
            clock = _Clock()
            diff = diff_trees(base_tree, head_tree)
            clock.stop(result)
            result["widening"] = bool(diff.widening)
            result["opened"] = len(diff.opened)
            result["closed"] = len(diff.closed)
        elif phase == "incremental":
            entry = incremental_entry()
            base_files = _read_all(base)
            if entry is None:
                base_tree = load_files(base_files)  # the cached base model
                clock = _Clock()
                diff = diff_trees(base_tree, load_files(_read_all(head)))
                result["mode"] = "full"
            else:
                prepare, review = entry
                state = prepare(base_files)
                gc.freeze()  # the bot's worker keeps the prepared base; so does this
                head_files = _read_all(head)
                changed: dict[str, bytes | None] = {
                    p: d for p, d in head_files.items() if base_files.get(p) != d
                }
                changed.update({p: None for p in base_files if p not in head_files})
                clock = _Clock()  # the review: parse the changed files, derive, compare
                diff = review(state, changed)
                result["mode"] = "incremental"
            clock.stop(result)
            result["widening"] = bool(diff.widening)
        elif phase == "profile":
            result["profile"] = profile_review(load_files, diff_trees, base, head)
            result["seconds"] = 0.0
        else:
            raise ValueError(f"unknown phase {phase!r}")
    result["maxrss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def profile_review(
    load_files: Callable[..., Any], diff_trees: Callable[..., Any], base: Path, head: Path
) -> str:
    """cProfile of what ``reachdiff diff`` does after reading: load both trees, diff."""
    import cProfile
    import io
    import pstats

    base_files, head_files = _read_all(base), _read_all(head)
    profiler = cProfile.Profile()
    profiler.enable()
    diff_trees(load_files(base_files), load_files(head_files))
    profiler.disable()
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text).strip_dirs()
    text.write("== by own time ==\n")
    stats.sort_stats("tottime").print_stats(25)
    text.write("== by cumulative time ==\n")
    stats.sort_stats("cumulative").print_stats(30)
    return text.getvalue()


def _count(value: Any, attr: str) -> int | None:
    items = getattr(value, attr, None)
    try:
        return len(items) if items is not None else None
    except TypeError:
        return None


# --------------------------------------------------------------------------- subprocesses


@dataclass
class Measured:
    seconds: float | None = None  # None: failed or timed out
    maxrss_mib: float | None = None
    cpu_seconds: float | None = None  # user + system: less swayed by a busy machine
    timed_out: bool = False
    error: str | None = None
    exit_code: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def run_measured(
    argv: Sequence[str],
    timeout: float,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> tuple[Measured, bytes]:
    """Run a process; wall time from spawn to exit, peak RSS of that process alone.

    ``os.wait4`` gives the rusage of exactly this child, where RUSAGE_CHILDREN would be
    the maximum over every child this harness ever reaped.
    """
    out_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"reachdiff-bench-{os.getpid()}.out"
    err_path = out_path.with_suffix(".err")
    with out_path.open("wb") as out, err_path.open("wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            argv, stdout=out, stderr=err, cwd=cwd, env=dict(env) if env is not None else None
        )
        deadline = start + timeout
        status = None
        usage = None
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                _, status, usage = os.wait4(proc.pid, 0)
                proc.returncode = -9
                out_path.unlink(missing_ok=True)
                err_path.unlink(missing_ok=True)
                return Measured(timed_out=True, maxrss_mib=usage.ru_maxrss / 1024), b""
            time.sleep(0.005)
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    stdout = out_path.read_bytes()
    stderr = err_path.read_bytes()
    out_path.unlink(missing_ok=True)
    err_path.unlink(missing_ok=True)
    measured = Measured(
        seconds=wall,
        maxrss_mib=usage.ru_maxrss / 1024,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        exit_code=proc.returncode,
    )
    if proc.returncode not in (0, 1):
        measured.error = stderr.decode(errors="replace").strip()[-400:] or f"exit {proc.returncode}"
    return measured, stdout


ENGINE_ROOT: Path | None = None  # --engine: another checkout's analysis/ and bot/ first


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    roots = [str(ENGINE_ROOT)] if ENGINE_ROOT else []
    env["PYTHONPATH"] = os.pathsep.join(
        [*roots, str(REPO_ROOT), *filter(None, [env.get("PYTHONPATH")])]
    )
    return env


def measure_phase(phase: str, base: Path, head: Path, timeout: float) -> Measured:
    argv = [sys.executable, "-m", "benchmarks.run", "--worker", phase, str(base), str(head)]
    # ``-m`` puts the working directory first on sys.path: run from the engine's root so
    # that its analysis/ wins over this checkout's (benchmarks/ comes via PYTHONPATH).
    outer, stdout = run_measured(argv, timeout, cwd=ENGINE_ROOT or REPO_ROOT, env=_child_env())
    if outer.timed_out or outer.error:
        return outer
    try:
        report = json.loads(stdout)
    except json.JSONDecodeError:
        return Measured(error=f"worker exit {outer.exit_code} without a report")
    if "error" in report:
        return Measured(error=report["error"])
    return Measured(
        seconds=report.pop("seconds"),
        cpu_seconds=report.pop("cpu_seconds", None),
        maxrss_mib=report.pop("maxrss_mib"),
        extra={k: v for k, v in report.items() if k != "phase"},
    )


def reachdiff_command(explicit: str | None) -> list[str] | None:
    if explicit:
        return shlex.split(explicit)
    found = shutil.which("reachdiff")
    if found:
        return [found]
    beside = Path(sys.executable).parent / "reachdiff"
    return [str(beside)] if beside.exists() else None


def measure_review(command: Sequence[str], base: Path, head: Path, timeout: float) -> Measured:
    measured, stdout = run_measured(
        [*command, "diff", str(base), str(head), "--format", "json"], timeout, env=_child_env()
    )
    if measured.error is None and measured.exit_code in (0, 1):
        try:
            report = json.loads(stdout)
            measured.extra = {
                "opened": len(report.get("opened", [])),
                "closed": len(report.get("closed", [])),
                "widening": report.get("widening"),
            }
        except (json.JSONDecodeError, AttributeError):
            measured.error = "output is not the documented JSON"
    return measured


def best_of(repeat: int, measure: Callable[[], Measured]) -> Measured:
    """The fastest of ``repeat`` runs: on a shared machine noise only ever adds time."""
    best = measure()
    for _ in range(repeat - 1):
        if best.seconds is None:
            break  # a failure or a timeout will not get better
        again = measure()
        if again.seconds is not None and again.seconds < best.seconds:
            best = again
    return best


# --------------------------------------------------------------------------- the run


@dataclass
class Row:
    variant: str
    changed_files: int
    phases: dict[str, Measured]
    review: Measured
    nca: Measured | None = None


@dataclass
class SizeResult:
    workloads: int
    stats: Mapping[str, int]
    rows: list[Row]


def _duration(s: float) -> str:
    return f"{s * 1000:.0f} ms" if s < 1 else f"{s:.2f} s" if s < 100 else f"{s:.0f} s"


def fmt_seconds(m: Measured | None, timeout: float | None = None) -> str:
    """Wall time, then CPU time when known: on a shared machine the two part ways."""
    if m is None:
        return "-"
    if m.timed_out:
        return f"> {timeout:.0f} s" if timeout else "timeout"
    if m.seconds is None:
        return "n/a"
    text = _duration(m.seconds)
    if m.cpu_seconds is not None:
        text += f" / cpu {_duration(m.cpu_seconds)}"
    if m.extra.get("mode") == "full":
        text += " (full)"
    return text


def fmt_ratio(num: Measured | None, den: Measured | None, timeout: float) -> str:
    if num is None or den is None or not den.seconds:
        return "-" if num is None or den is None else "n/a"
    if num.timed_out:
        return f"> {timeout / den.seconds:.1f}x"
    if not num.seconds:
        return "n/a"
    text = f"{num.seconds / den.seconds:.1f}x"
    if num.cpu_seconds and den.cpu_seconds:
        text += f" / cpu {num.cpu_seconds / den.cpu_seconds:.1f}x"
    return text


def render_table(result: SizeResult, timeout: float, with_nca: bool) -> str:
    s = result.stats
    title = (
        f"### {result.workloads:,} workloads — {s.get('files', 0):,} files, "
        f"{s.get('NetworkPolicy', 0):,} NetworkPolicies, "
        f"{s.get('Namespace', 0):,} Namespace objects, "
        f"{s.get('bytes', 0) / 2**20:.1f} MiB of YAML"
    )
    head = [
        "variant",
        "files changed",
        "parse floor",
        "load",
        "map",
        "diff",
        "review (CLI)",
        "exit",
        "peak RSS",
        "review / floor",
        "incremental",
    ]
    if with_nca:
        head += ["NCA", "NCA / review"]
    note = "Times are wall / CPU (user + system) of one subprocess each."
    lines = [
        title,
        "",
        note,
        "",
        "| " + " | ".join(head) + " |",
        "|" + "|".join("---" for _ in head) + "|",
    ]
    for row in result.rows:
        review = row.review
        cells = [
            row.variant,
            str(row.changed_files),
            fmt_seconds(row.phases.get("floor"), timeout),
            fmt_seconds(row.phases.get("load"), timeout),
            fmt_seconds(row.phases.get("map"), timeout),
            fmt_seconds(row.phases.get("diff"), timeout),
            fmt_seconds(review, timeout),
            "-" if review.exit_code is None else str(review.exit_code),
            "n/a" if review.maxrss_mib is None else f"{review.maxrss_mib:.0f} MiB",
            fmt_ratio(review, row.phases.get("floor"), timeout),
            fmt_seconds(row.phases.get("incremental"), timeout),
        ]
        if with_nca:
            cells += [fmt_seconds(row.nca, timeout), fmt_ratio(row.nca, review, timeout)]
        lines.append("| " + " | ".join(cells) + " |")
    errors = [
        (row.variant, name, m.error)
        for row in result.rows
        for name, m in [*row.phases.items(), ("review", row.review), ("nca", row.nca or Measured())]
        if m.error
    ]
    if errors:
        lines.append("")
        lines += [
            f"- {variant} {name}: {error.splitlines()[-1] if error else ''}"
            for variant, name, error in errors
        ]
    return "\n".join(lines)


def machine_line() -> str:
    return (
        f"Machine: {os.cpu_count()} cores (os.cpu_count()), {platform.machine()}, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}; "
        f"{dt.date.today().isoformat()}"
    )


def run(
    sizes: Sequence[int],
    variants: Sequence[str],
    out: Path,
    seed: int,
    timeout: float,
    command: list[str] | None,
    with_nca: bool,
    phases: Sequence[str] = PHASES,
    repeat: int = 1,
    echo: Callable[[str], None] = print,
    shape: str = "apps",
) -> list[SizeResult]:
    nca_runner = None
    if with_nca:
        from benchmarks.nca import NCA

        nca_runner = NCA(out)
        nca_runner.ensure_installed(echo)
    results: list[SizeResult] = []
    results_path = out / f"results-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    echo(machine_line())
    if command is None:
        echo("reachdiff CLI not found: review column is n/a (pip install -e . or --reachdiff)")
    for size in sizes:
        started = time.perf_counter()
        trees = ensure_trees(out, size, seed, variants, shape)
        echo(
            f"<!-- {size} workloads: trees ready in {time.perf_counter() - started:.1f} s "
            f"under {trees.root} -->"
        )
        rows: list[Row] = []
        for variant in variants:
            base, head = trees.base, trees.head(variant)
            measured = {
                p: best_of(repeat, partial(measure_phase, p, base, head, timeout)) for p in phases
            }
            review = (
                best_of(repeat, partial(measure_review, command, base, head, timeout))
                if command
                else Measured(error="reachdiff CLI not found")
            )
            nca_result = nca_runner.measure(base, head, timeout) if nca_runner else None
            rows.append(Row(variant, len(trees.changed[variant]), measured, review, nca_result))
        result = SizeResult(size, trees.base_stats, rows)
        results.append(result)
        save_results(results_path, seed, results)
        echo("")
        echo(render_table(result, timeout, with_nca))
        echo("")
    return results


def save_results(path: Path, seed: int, results: Sequence[SizeResult]) -> None:
    """Written after every size, so an interrupted run keeps what it measured."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "machine": machine_line(),
        "cores": os.cpu_count(),
        "seed": seed,
        "results": [asdict(r) for r in results],
    }
    path.write_text(json.dumps(document, indent=1, default=str))


def load_results(path: Path) -> list[SizeResult]:
    def measured(data: Mapping[str, Any] | None) -> Measured | None:
        return None if data is None else Measured(**data)

    results = []
    for r in json.loads(path.read_text())["results"]:
        rows = [
            Row(
                row["variant"],
                row["changed_files"],
                {k: Measured(**v) for k, v in row["phases"].items()},
                Measured(**row["review"]),
                measured(row.get("nca")),
            )
            for row in r["rows"]
        ]
        results.append(SizeResult(r["workloads"], r["stats"], rows))
    return results


def parse_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Time reachdiff on synthetic GitOps repositories of growing size.",
    )
    parser.add_argument(
        "--sizes",
        default=",".join(map(str, DEFAULT_SIZES)),
        help="comma-separated workload counts (default %(default)s)",
    )
    parser.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help="comma-separated pull-request variants (default: all)",
    )
    parser.add_argument(
        "--phases",
        default=",".join(PHASES),
        help="API phases to time in subprocesses (default: all)",
    )
    parser.add_argument(
        "--nca", action="store_true", help="also run IBM network-config-analyzer's semantic diff"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="cache of generated trees and results (default %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--shape",
        choices=SHAPES,
        default="apps",
        help="how the generated objects are spread over files (default %(default)s)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        help="bound on each measured process, seconds (default %(default)s)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="runs per measurement, the fastest kept (default %(default)s)",
    )
    parser.add_argument("--reachdiff", help="the CLI command (default: reachdiff on PATH)")
    parser.add_argument(
        "--render", type=Path, help="print the tables of a results-*.json file and exit"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="print a cProfile of load + diff per size (first variant) instead of timing",
    )
    parser.add_argument(
        "--engine",
        type=Path,
        help="source root whose analysis/ and bot/ to benchmark, e.g. a "
        "snapshot of a commit (default: this checkout)",
    )
    parser.add_argument(
        "--worker", nargs=3, metavar=("PHASE", "BASE", "HEAD"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.render:
        for result in load_results(args.render):
            with_nca = any(row.nca is not None for row in result.rows)
            print(render_table(result, args.timeout, with_nca) + "\n")
        return 0
    if args.worker:
        phase, base, head = args.worker
        try:
            report = worker(phase, Path(base), Path(head))
        except ImportError as err:  # the engine is not there (yet)
            report = {"error": f"engine not importable: {err}"}
        except Exception as err:  # reported in the table, not fatal to the whole run
            report = {"error": f"{type(err).__name__}: {err}"[:400]}
        json.dump(report, sys.stdout)
        return 0
    try:
        sizes = [int(s) for s in parse_list(args.sizes)]
    except ValueError:
        parser.error("--sizes takes comma-separated integers")
    variants = parse_list(args.variants)
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    global ENGINE_ROOT
    ENGINE_ROOT = args.engine.resolve() if args.engine else None
    phases = parse_list(args.phases)
    if any(p not in PHASES for p in phases):
        parser.error(f"--phases: choose from {', '.join(PHASES)}")
    if args.profile:
        for size in sizes:
            trees = ensure_trees(args.out, size, args.seed, variants[:1], args.shape)
            m = measure_phase("profile", trees.base, trees.head(variants[0]), args.timeout)
            print(f"## cProfile: {size:,} workloads, {variants[0]} (load both trees + diff)")
            print(m.extra.get("profile") or m.error or "timed out")
        return 0
    run(
        sizes,
        variants,
        args.out,
        args.seed,
        args.timeout,
        reachdiff_command(args.reachdiff),
        args.nca,
        phases,
        max(1, args.repeat),
        shape=args.shape,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
