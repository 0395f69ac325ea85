"""Synthetic reachability diffs, for shapes and sizes no small manifest tree produces.

Path changes, endpoints and causes are the engine's own types; only ``ReachabilityDiff`` is
a stand-in, because the real one also carries both reachability maps, which the renderer
never reads. Tests of ordinary diffs use the engine on YAML trees instead (``real_diff``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from analysis.diff import PathChange, diff_trees
from analysis.explain import ALLOWS, NO_LONGER_ALLOWS, Cause
from analysis.manifests import load_files
from analysis.ports import ConnectionSet, PortSet
from analysis.reachability import Endpoint


@dataclass(frozen=True, slots=True)
class ReachabilityDiff:
    opened: tuple[PathChange, ...] = ()
    closed: tuple[PathChange, ...] = ()
    added_endpoints: tuple[Endpoint, ...] = ()
    removed_endpoints: tuple[Endpoint, ...] = ()

    @property
    def widening(self) -> bool:
        return bool(self.opened)


def real_diff(base: dict[str, str], head: dict[str, str]) -> Any:
    """The engine's diff of two manifest trees given as ``{path: YAML}``."""
    return diff_trees(load_files(base), load_files(head))


def cause(
    policy: str,
    file: str,
    line: int,
    rule: str = "ingress[0]",
    *,
    tree: str = "head",
    reason: str = ALLOWS,
) -> Cause:
    direction = "Egress" if rule.startswith("egress") else "Ingress"
    return Cause(policy, file, line, direction, rule, tree, reason)


def with_endpoints(diff: ReachabilityDiff) -> ReachabilityDiff:
    """The diff with added/removed endpoints taken from its changes' flags."""
    added: dict[str, Endpoint] = {}
    removed: dict[str, Endpoint] = {}
    for c in diff.opened + diff.closed:
        for e, new, gone in ((c.src, c.src_new, c.src_removed), (c.dst, c.dst_new, c.dst_removed)):
            if new:
                added.setdefault(e.id, e)
            if gone:
                removed.setdefault(e.id, e)
    return ReachabilityDiff(
        diff.opened, diff.closed, tuple(added.values()), tuple(removed.values())
    )


def workload(ref: str) -> Endpoint:
    """``workload("prod/Deployment/web")``."""
    namespace, kind, name = ref.split("/", 2)
    return Endpoint(id=ref, kind=kind, namespace=namespace, name=name)


def external(*cidrs: str) -> Endpoint:
    return Endpoint(id="ip:" + ",".join(cidrs), kind="External", cidrs=cidrs)


def tcp(*ports: int) -> ConnectionSet:
    return ConnectionSet.of({"TCP": PortSet.of(*((p, p) for p in ports))})


def opened(
    src: Endpoint,
    dst: Endpoint,
    delta: ConnectionSet,
    *because: Cause,
    base: ConnectionSet | None = None,
    **flags: bool,
) -> PathChange:
    base = base if base is not None else ConnectionSet()
    return PathChange(src, dst, delta, base, base | delta, tuple(because), **flags)


def closed(
    src: Endpoint,
    dst: Endpoint,
    delta: ConnectionSet,
    *because: Cause,
    head: ConnectionSet | None = None,
    **flags: bool,
) -> PathChange:
    head = head if head is not None else ConnectionSet()
    return PathChange(src, dst, delta, head | delta, head, tuple(because), **flags)


def synthetic_diff(
    seed: int, n_opened: int, n_closed: int, names: tuple[str, ...] = (), causes_per_path: int = 2
) -> ReachabilityDiff:
    """A large random diff; ``names`` (e.g. hostile strings) are mixed into endpoint names."""
    rng = random.Random(seed)
    pool = list(names) or ["web"]

    def endpoint() -> Endpoint:
        if rng.random() < 0.15:
            return external(
                *(f"10.{rng.randrange(256)}.{i}.0/24" for i in range(rng.randrange(1, 8)))
            )
        name = f"{rng.choice(pool)}-{rng.randrange(10**6)}"
        return Endpoint(
            id=f"ns{rng.randrange(50)}/Deployment/{name}",
            kind="Deployment",
            namespace=f"ns{rng.randrange(50)}",
            name=name,
        )

    # A pool of port sets: building thousands of distinct ones would dominate test time.
    deltas = [
        ConnectionSet.of(
            {
                "TCP": PortSet.of(
                    *((p, p) for p in rng.sample(range(1, 65536), rng.randrange(1, 40)))
                ),
                "UDP": PortSet.of((53, 53)),
            }
        )
        for _ in range(64)
    ]

    def delta() -> ConnectionSet:
        return rng.choice(deltas)

    def causes(tree: str) -> tuple[Cause, ...]:
        return tuple(
            cause(
                f"ns/NetworkPolicy/{rng.choice(pool)}",
                f"clusters/{rng.choice(pool)}/policy-{rng.randrange(100)}.yaml",
                rng.randrange(1, 500),
                tree=tree,
                reason=ALLOWS if tree == "head" else NO_LONGER_ALLOWS,
            )
            for _ in range(rng.randrange(1, causes_per_path + 1))
        )

    return with_endpoints(
        ReachabilityDiff(
            opened=tuple(
                opened(endpoint(), endpoint(), delta(), *causes("head"), dst_new=rng.random() < 0.1)
                for _ in range(n_opened)
            ),
            closed=tuple(
                closed(
                    endpoint(), endpoint(), delta(), *causes("base"), src_removed=rng.random() < 0.1
                )
                for _ in range(n_closed)
            ),
        )
    )
