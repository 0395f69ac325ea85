"""Rendered environments: serial against concurrent renders, the render cache, and a pull
request touching one overlay, side by side in one run.

The repository is ``benchmarks.kustomize_repo`` (``--apps`` apps x 3 environments, shared
components, patches; ``--charts`` Helm charts when ``helm`` is installed). Phases, each
timed on wall clock in this process, one after another:

- ``serial``: both trees rendered one root at a time, no cache, then every environment
  diffed in full (``diff_trees``): what reachdiff did before concurrent rendering;
- ``concurrent``: the same with the roots rendered ``--workers`` at a time (no cache);
- ``cli``: ``diff_files`` in a fresh process state (empty caches): the base and the head
  share the render cache, so a root the change does not touch is rendered once;
- ``pr``: the bot's worker reviewing the pull request (``analyze``), after it reviewed
  another pull request of the same base (render cache and compiled environment bases warm
  with the base's roots): only the roots whose consumed files changed are rendered;
- ``again``: the same review once more: nothing is rendered.

Ratios are against ``serial`` (render + diff of both trees in full).

    python -m benchmarks.rendering [--apps 20] [--charts 3] [--variant one-overlay]
        [--workers N] [--repeat 2] [--json OUT]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from analysis.diff import diff_trees
from analysis.outside import ClusterScope
from benchmarks.kustomize_repo import VARIANTS, generate, variant
from bot.inputs.analyze import AnalysisFailure, PreparedBases, analyze
from bot.inputs.environment_bases import EnvironmentBases
from bot.inputs.environment_diff import RENDER_CACHE, diff_files, load_environments
from bot.inputs.environments import RENDER_WORKERS, plan_environments
from bot.inputs.sandbox import Tools

Files = dict[str, bytes]


def _timed(run: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    start = time.perf_counter()
    result = run()
    return time.perf_counter() - start, result


def _full(base: Files, head: Files, workers: int) -> tuple[float, float, int]:
    """(render seconds, total seconds, paths changed): both trees rendered without a
    cache, every environment diffed in full."""
    start = time.perf_counter()
    b = load_environments(base, cache=None, workers=workers)
    h = load_environments(head, cache=None, workers=workers)
    rendered = time.perf_counter() - start
    by_name = {e.name: e for e in b}
    changed = 0
    for env in h:
        diff = diff_trees(by_name[env.name].tree, env.tree, ClusterScope.PARTIAL)
        changed += len(diff.opened) + len(diff.closed)
    return rendered, time.perf_counter() - start, changed


def _renders() -> int:
    return RENDER_CACHE.stats.misses


def run(apps: int, charts: int, name: str, workers: int, repeat: int) -> dict[str, Any]:
    tools = Tools.detect()
    charts = charts if tools.helm else 0
    base = generate(apps, charts)
    head = variant(base, name)
    plan = plan_environments(base)
    rows: list[dict[str, Any]] = []
    for attempt in range(repeat):
        row: dict[str, Any] = {"attempt": attempt}
        # Serial and concurrent alternate, so that the load of a shared machine hits both.
        for label, n in (("serial", 1), ("concurrent", workers)):
            gc.collect()
            rendered, total, changed = _full(base, head, n)
            row[label] = {"render_s": rendered, "total_s": total, "paths": changed}

        RENDER_CACHE.clear()
        # As `reachdiff diff` runs it: one process, environments compiled per run.
        seconds, diff = _timed(lambda: diff_files(base, head, bases=EnvironmentBases()))
        row["cli"] = {"total_s": seconds, "renders": _renders(), "paths": len(diff.opened)}

        RENDER_CACHE.clear()
        RENDER_CACHE.stats.misses = 0
        bases = PreparedBases(limit=1, freeze=False)
        # Another pull request of the same base, reviewed earlier by this worker.
        warm = analyze(base, variant(base, "component"), base_key="main", bases=bases)
        assert not isinstance(warm, AnalysisFailure), warm
        for label in ("pr", "again"):
            before = _renders()
            compiled = bases.environments.compiled
            seconds, result = _timed(
                lambda: analyze(base, head, base_key="main", bases=bases)  # noqa: B023
            )
            assert not isinstance(result, AnalysisFailure), result
            row[label] = {
                "total_s": seconds,
                "renders": _renders() - before,
                "compiled": bases.environments.compiled - compiled,
                "paths": len(result.opened) + len(result.closed),
            }
        rows.append(row)
    return {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load": os.getloadavg(),
            "kustomize": " ".join(tools.kustomize or ()),
            "helm": tools.helm or "",
        },
        "repository": {
            "apps": apps,
            "charts": charts,
            "roots": len(plan.roots),
            "files": len(base),
            "variant": name,
        },
        "workers": workers,
        "rows": rows,
    }


def table(report: dict[str, Any]) -> str:
    repo = report["repository"]
    lines = [
        f"{repo['roots']} roots ({repo['apps']} apps x 3 environments, {repo['charts']} "
        f"charts), {repo['files']} files, variant `{repo['variant']}`; "
        f"{report['machine']['cpus']} cores, {report['workers']} render workers, load "
        f"{', '.join(f'{x:.1f}' for x in report['machine']['load'])}",
        "",
        "| run | serial render+diff | concurrent render (x serial render) | concurrent "
        "render+diff (x serial) | CLI diff, shared cache (x) | PR, one overlay (x) | "
        "renders | again (x) | renders |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in report["rows"]:
        serial = row["serial"]["total_s"]
        conc = row["concurrent"]
        lines.append(
            f"| {row['attempt'] + 1} | {serial:.2f} s | {conc['render_s']:.2f} s "
            f"({conc['render_s'] / row['serial']['render_s']:.2f}x) | {conc['total_s']:.2f} s "
            f"({conc['total_s'] / serial:.2f}x) | {row['cli']['total_s']:.2f} s "
            f"({row['cli']['total_s'] / serial:.2f}x) | {row['pr']['total_s']:.3f} s "
            f"({row['pr']['total_s'] / serial:.3f}x) | {row['pr']['renders']} | "
            f"{row['again']['total_s']:.3f} s ({row['again']['total_s'] / serial:.3f}x) | "
            f"{row['again']['renders']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=20)
    parser.add_argument("--charts", type=int, default=3)
    parser.add_argument("--variant", choices=VARIANTS, default="one-overlay")
    parser.add_argument("--workers", type=int, default=RENDER_WORKERS)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    report = run(args.apps, args.charts, args.variant, args.workers, args.repeat)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    print(table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
