"""``python -m benchmarks.intents``: the cost of ``check`` relative to the map it reads.

A generated tree (``benchmarks.generate``) gets declarations a platform team would write:
the largest namespace in scope with its own traffic declared, a deny from every
``env: dev`` namespace to every ``env: prod`` one, and connectivity test cases. Reported,
per size, in one run (read the ratios, the machine is shared): the time to compute the
whole map (every allowed pair of pod classes), the time of ``check`` (its own map with the
intents' representatives and ranges, and the evaluation), and their ratio. ``check``
reads only the rows and columns of the endpoints its entries name, per group of alike
endpoints, so the ratio stays well under the map's cost when the scope is a part of the
cluster.
"""

from __future__ import annotations

import argparse
import gc
import time
from collections import Counter

from analysis.check import check, declared_map
from analysis.intents import parse_declarations
from analysis.manifests import load_files
from analysis.reachability import compute_map
from analysis.yamldoc import LineDict
from benchmarks.generate import generate_base


def declarations(namespace: str) -> list[tuple[str, LineDict]]:
    def doc(value: dict[str, object]) -> LineDict:
        out = LineDict(value)
        out.line = 1
        return out

    intent: dict[str, object] = {
        "apiVersion": "reachdiff.io/v1alpha1",
        "kind": "Intent",
        "metadata": {"name": "bench"},
        "spec": {
            "scope": [{"namespace": namespace}],
            "allow": [
                {
                    "from": {"namespace": namespace},
                    "to": {"namespace": namespace},
                    "ports": "TCP 8080",
                },
                {
                    "from": {
                        "namespace": namespace,
                        "podSelector": {
                            "matchExpressions": [
                                {"key": "tier", "operator": "In", "values": ["web"]}
                            ]
                        },
                    },
                    "to": {"namespace": namespace, "labels": {"tier": "api"}},
                    "ports": "TCP 8080",
                    "required": True,
                },
            ],
            "deny": [
                {
                    "from": {"namespaceLabels": {"env": "dev"}},
                    "to": {"namespaceLabels": {"env": "prod"}},
                }
            ],
        },
    }
    test: dict[str, object] = {
        "apiVersion": "reachdiff.io/v1alpha1",
        "kind": "ConnectivityTest",
        "metadata": {"name": "bench"},
        "spec": {
            "cases": [
                {"from": {"namespace": namespace}, "to": {"cidr": "0.0.0.0/0"}, "expect": "denied"},
                {
                    "from": {"namespaceLabels": {"env": "dev"}},
                    "to": {"namespace": namespace},
                    "port": "TCP 8080",
                    "expect": "denied",
                },
            ]
        },
    }
    return [("bench.yaml", doc(intent)), ("bench.yaml", doc(test))]


def measure(workloads: int) -> str:
    tree = load_files(generate_base(workloads, 0))
    namespace = Counter(w.namespace for w in tree.workloads if "prod" in w.namespace).most_common(
        1
    )[0][0]
    decls = parse_declarations(declarations(namespace))
    gc.disable()
    start = time.perf_counter()
    rmap = compute_map(tree)
    pairs = len(rmap.class_connections)
    whole = time.perf_counter() - start
    start = time.perf_counter()
    result = check(declared_map(tree, decls), decls)
    checked = time.perf_counter() - start
    gc.enable()
    return (
        f"| {workloads:,} | {len(rmap.matcher.classes):,} | {pairs:,} | {whole:.2f} s | "
        f"{checked:.2f} s | {checked / whole:.2f}x | {len(result.violations):,} | "
        f"{checked / max(1, len(result.violations)) * 1e6:.0f} µs |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.intents")
    parser.add_argument("--workloads", default="1000,3000,10000")
    args = parser.parse_args(argv)
    print(
        "| workloads | pod classes | allowed class pairs | whole map | check | ratio "
        "| violations | per violation |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for n in (int(x) for x in args.workloads.split(",")):
        print(measure(n), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
