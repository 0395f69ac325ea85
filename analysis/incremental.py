"""The head map from the base map, recomputing only what a change can touch.

A pair of pod classes (S, D) can only be treated differently by the head tree if

- S or D is new: no class of the base tree has the same namespace, labels, named ports
  and hostNetwork flag (a relabelled workload lands in a new class);
- a NetworkPolicy that changed (added, removed or edited) selects D for ingress, or S for
  egress, in the base or the head tree;

because everything else that decides the pair (the policies selecting D and S, the peers
those rules admit, the named ports resolved on D) is then the same on both sides. So the
head map copies every other pair from the base map and computes only the rows of affected
sources and the columns of affected destinations. Changes to AdminNetworkPolicies, to
namespace labels or to the external ranges fall back to a full computation: they can move
any pair, and they are rare.

``affected`` is also what ``diff_maps`` needs: only pairs touching it can differ.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from analysis.compiler import compile_tree, tree_networks
from analysis.manifests import load_files
from analysis.matcher import Matcher
from analysis.model import Direction, NetworkPolicy, Tree
from analysis.ports import ConnectionSet
from analysis.reachability import (
    ColumnReader,
    ReachabilityMap,
    class_connections,
    compute_map,
    map_from,
    pair_connections,
)

if TYPE_CHECKING:
    from analysis.diff import ReachabilityDiff


@dataclass(frozen=True, slots=True)
class PreparedBase:
    """A base tree read and mapped once, to review many changes against (the bot reviews
    every pull request of a branch against the same base commit)."""

    files: Mapping[str, bytes | str]
    tree: Tree
    map: ReachabilityMap


def prepare(base_files: Mapping[str, bytes | str]) -> PreparedBase:
    tree = load_files(base_files)
    return PreparedBase(dict(base_files), tree, compute_map(tree))


def review(base: PreparedBase, changed: Mapping[str, bytes | str | None]) -> ReachabilityDiff:
    """The diff of ``base`` with ``changed`` applied (``None`` deletes a file). Unchanged
    files are neither parsed nor modelled again (both are memoized by content)."""
    from analysis.diff import diff_from_base  # diff builds on this module

    files = {**base.files, **{p: c for p, c in changed.items() if c is not None}}
    for path, content in changed.items():
        if content is None:
            files.pop(path, None)
    return diff_from_base(base.map, load_files(files))


@dataclass(frozen=True, slots=True)
class Affected:
    """Head endpoint indexes whose rows (sources) or columns (destinations) may differ."""

    sources: frozenset[int]
    destinations: frozenset[int]
    base_of: dict[int, int]  # head index -> base index of the same class or external range


def head_map(base: ReachabilityMap, head: Tree) -> tuple[ReachabilityMap, Affected | None]:
    """The head tree's map, cut by the same external ranges as ``base``.

    Returns the affected endpoints, or None when the change forced a full computation.
    """
    networks = tree_networks(base.tree)
    matcher = compile_tree(head, networks)
    if not _incremental_possible(base, head, matcher):
        return map_from(head, matcher, class_connections(matcher)), None
    affected = _affected(base, head, matcher)
    return map_from(head, matcher, _connections(base, matcher, affected)), affected


def _incremental_possible(base: ReachabilityMap, head: Tree, matcher: Matcher) -> bool:
    return (
        base.tree.admin_policies == head.admin_policies
        and base.tree.namespace_labels() == head.namespace_labels()
        and base.matcher.externals == matcher.externals
    )


def _affected(base: ReachabilityMap, head: Tree, matcher: Matcher) -> Affected:
    base_index = {c: i for i, c in enumerate(base.matcher.classes)}
    n_head, n_base = len(matcher.classes), len(base.matcher.classes)
    base_of: dict[int, int] = {}
    for i, c in enumerate(matcher.classes):
        if c in base_index:
            base_of[i] = base_index[c]
    for j in range(len(matcher.externals)):
        base_of[n_head + j] = n_base + j
    head_of = {b: h for h, b in base_of.items()}

    new = {i for i in range(n_head) if i not in base_of}
    sources, destinations = set(new), set(new)
    changed = _changed_policies(base.tree, head)
    if not changed:
        return Affected(frozenset(sources), frozenset(destinations), base_of)
    governed_now, governed_before = _governed(matcher, changed), _governed(base.matcher, changed)
    for policy_id in changed:
        for direction, bucket in ((Direction.INGRESS, destinations), (Direction.EGRESS, sources)):
            bucket.update(governed_now.get((policy_id, direction), ()))
            bucket.update(
                head_of[b] for b in governed_before.get((policy_id, direction), ()) if b in head_of
            )
    return Affected(frozenset(sources), frozenset(destinations), base_of)


def _changed_policies(
    base: Tree, head: Tree
) -> dict[str, tuple[NetworkPolicy | None, NetworkPolicy | None]]:
    before = {p.id: p for p in base.policies}
    after = {p.id: p for p in head.policies}
    return {
        pid: (before.get(pid), after.get(pid))
        for pid in before.keys() | after.keys()
        if before.get(pid) != after.get(pid)
    }


def _governed(
    matcher: Matcher, policy_ids: Iterable[str]
) -> dict[tuple[str, Direction], list[int]]:
    """The classes each of these policies governs per direction: a policy governs exactly
    the classes it isolates, which the matcher records per class. One pass for all."""
    wanted = set(policy_ids)
    out: dict[tuple[str, Direction], list[int]] = {}
    for i, iso in enumerate(matcher.isolating):
        for direction, isolating in iso.items():
            for p in isolating:
                if p.id in wanted:
                    out.setdefault((p.id, direction), []).append(i)
    return out


def _connections(
    base: ReachabilityMap, matcher: Matcher, affected: Affected
) -> dict[tuple[int, int], ConnectionSet]:
    base_of = affected.base_of
    head_of = {b: h for h, b in base_of.items()}
    sources, destinations = affected.sources, affected.destinations
    out: dict[tuple[int, int], ConnectionSet] = {}
    # Pairs untouched by the change: as in the base tree.
    for (bs, bd), conn in base.class_connections.items():
        hs, hd = head_of.get(bs), head_of.get(bd)
        if hs is None or hd is None or hs in sources or hd in destinations:
            continue
        out[(hs, hd)] = conn
    column = ColumnReader(matcher)
    for dst in destinations:
        for src, conn in column(dst):
            out[(src, dst)] = conn
    for src in sources:
        for dst in range(matcher.size):
            if dst in destinations:
                continue  # its whole column is done
            conn = pair_connections(matcher, src, dst)
            if conn:
                out[(src, dst)] = conn
    return out
