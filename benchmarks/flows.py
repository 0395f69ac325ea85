"""``python -m benchmarks.flows``: ``reachdiff flows summarize`` against the floor of reading
the same JSON, ``jq -c . FILE | wc -l``, side by side on one generated Hubble log.

The log is what ``hubble observe -o json`` prints (cilium ``api/v1/flow/flow.proto`` field
names): a cluster of ``--workloads`` pods sending to one another, each connection seen as
Hubble shows it (a policy verdict, ``TO_ENDPOINT``, an earlier trace point, the reply),
some policy drops, some traffic to the world. ``generate`` is also the test suite's
generator of large flow fixtures.

Each command runs in its own subprocess; wall time, CPU time (the children's rusage) and
peak RSS are reported, and the ratio of the two wall times is the result. Results go to
benchmarks/RESULTS.md by hand, with the command line.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

NAMESPACES = ("shop", "payments", "catalog", "monitoring", "web", "batch")
_SUFFIX = "bcdfghjklmnpqrstvwxz2456789"


def _pods(rng: random.Random, workloads: int) -> list[dict[str, object]]:
    pods: list[dict[str, object]] = []
    for n in range(workloads):
        ns = NAMESPACES[n % len(NAMESPACES)]
        name = f"app{n}"
        kind = "StatefulSet" if n % 7 == 0 else "Deployment"
        if kind == "StatefulSet":
            pod = f"{name}-{rng.randrange(3)}"
        else:
            hashed = "".join(rng.choice(_SUFFIX) for _ in range(9))
            pod = f"{name}-{hashed}-" + "".join(rng.choice(_SUFFIX) for _ in range(5))
        endpoint = {
            "ID": 1000 + n,
            "identity": 40000 + n,
            "namespace": ns,
            "labels": [
                f"k8s:app={name}",
                f"k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name={ns}",
                "k8s:io.cilium.k8s.policy.cluster=default",
                f"k8s:io.cilium.k8s.policy.serviceaccount={name}",
                f"k8s:io.kubernetes.pod.namespace={ns}",
            ],
            "pod_name": pod,
            "workloads": [{"name": name, "kind": kind}],
        }
        pods.append(
            {"endpoint": endpoint, "ip": f"10.{n // 250}.{n % 250}.{rng.randrange(2, 250)}"}
        )
    return pods


def _line(rng: random.Random, pods: list[dict[str, object]], second: int) -> str:
    src, dst = rng.choice(pods), rng.choice(pods)
    port = rng.choice((80, 443, 5432, 6379, 8080, 9090))
    variant = rng.random()
    flow: dict[str, object] = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)) + ".123456789Z",
        "uuid": f"{rng.getrandbits(64):016x}-{rng.getrandbits(32):08x}",
        "verdict": "FORWARDED",
        "ethernet": {"source": "0a:58:0a:00:01:0f", "destination": "0a:58:0a:00:02:1e"},
        "IP": {"source": src["ip"], "destination": dst["ip"], "ipVersion": "IPv4"},
        "l4": {
            "TCP": {
                "source_port": rng.randrange(32768, 60999),
                "destination_port": port,
                "flags": {"SYN": True},
            }
        },
        "source": src["endpoint"],
        "destination": dst["endpoint"],
        "Type": "L3_L4",
        "node_name": f"node-{rng.randrange(8)}",
        "event_type": {"type": 4},
        "traffic_direction": "INGRESS",
        "trace_observation_point": "TO_ENDPOINT",
        "is_reply": False,
        "interface": {"index": 17, "name": "lxc1a2b3c4d"},
        "Summary": "TCP Flags: SYN",
    }
    if variant < 0.25:
        flow["trace_observation_point"] = "TO_OVERLAY"
        flow["traffic_direction"] = "EGRESS"
    elif variant < 0.45:
        flow["is_reply"] = True
    elif variant < 0.6:
        flow["event_type"] = {"type": 5}
        del flow["trace_observation_point"]
    elif variant < 0.63:
        flow.update(
            verdict="DROPPED",
            drop_reason=133,
            drop_reason_desc="POLICY_DENIED",
            event_type={"type": 1, "sub_type": 133},
        )
    elif variant < 0.68:
        flow["destination"] = {"identity": 2, "labels": ["reserved:world"]}
        flow["IP"] = {
            "source": src["ip"],
            "destination": f"198.51.100.{rng.randrange(256)}",
            "ipVersion": "IPv4",
        }
        flow["trace_observation_point"] = "TO_STACK"
        flow["traffic_direction"] = "EGRESS"
    wrapper = {"flow": flow, "node_name": flow["node_name"], "time": flow["time"]}
    return json.dumps(wrapper, separators=(",", ":"))


def generate(path: Path, lines: int, workloads: int = 300, seed: int = 0) -> None:
    """``lines`` Hubble lines into ``path``: a pool of distinct lines written in random
    order (writing is then bounded by the disk, not by Python's JSON encoder)."""
    rng = random.Random(seed)
    pods = _pods(rng, workloads)
    start = 1_795_600_000
    pool = [_line(rng, pods, start + n * 7) + "\n" for n in range(min(lines, 50_000))]
    with open(path, "w", encoding="utf-8") as out:
        for chunk in _chunks(rng, pool, lines):
            out.write(chunk)


def _chunks(rng: random.Random, pool: list[str], lines: int) -> Iterator[str]:
    written = 0
    while written < lines:
        n = min(100_000, lines - written)
        yield "".join(rng.choices(pool, k=n))
        written += n


def _timed(command: list[str]) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds and peak RSS (KiB) of one command and its children (the
    rusage ``wait4`` gives for that process alone)."""
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{command[0]} failed with exit code {child.returncode}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.flows")
    parser.add_argument("--lines", type=int, default=10_000_000)
    parser.add_argument("--workloads", type=int, default=300)
    parser.add_argument(
        "--dir", default=None, help="where the log is written (default: a temp dir)"
    )
    parser.add_argument("--generate", default=None, metavar="PATH", help="only write the log")
    args = parser.parse_args(argv)
    if args.generate:
        generate(Path(args.generate), args.lines, args.workloads)
        return 0
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        log = Path(tmp) / "hubble.jsonl"
        started = time.perf_counter()
        # In a child: the measured commands are forked from this process, and a child's
        # peak RSS starts at its parent's.
        subprocess.run(
            [
                sys.executable,
                "-m",
                "benchmarks.flows",
                "--generate",
                str(log),
                "--lines",
                str(args.lines),
                "--workloads",
                str(args.workloads),
            ],
            check=True,
        )
        size = log.stat().st_size
        print(
            f"generated {args.lines:,} lines, {size / 2**30:.2f} GiB in "
            f"{time.perf_counter() - started:.0f} s",
            file=sys.stderr,
        )
        floor = _timed(["sh", "-c", f"jq -c . '{log}' | wc -l"])
        summary = Path(tmp) / "summary.json"
        ours = _timed(
            [sys.executable, "-m", "bot.cli", "flows", "summarize", str(log), "-o", str(summary)]
        )
        patterns = len(json.loads(summary.read_text())["flows"])
    print(
        "| lines | size | `jq -c . \\| wc -l` wall / CPU | `flows summarize` wall / CPU "
        "| ratio (wall / CPU) | peak RSS (jq / ours) | patterns |"
    )
    print("|---|---|---|---|---|---|---|")
    print(
        f"| {args.lines:,} | {size / 2**30:.2f} GiB | {floor[0]:.1f} s / {floor[1]:.1f} s "
        f"| {ours[0]:.1f} s / {ours[1]:.1f} s "
        f"| **{ours[0] / floor[0]:.2f} / {ours[1] / floor[1]:.2f}** "
        f"| {floor[2] / 1024:.0f} / {ours[2] / 1024:.0f} MiB | {patterns:,} |"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
