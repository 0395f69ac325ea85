"""Rendered environments compiled once and reviewed incrementally, per render key.

An environment's key (``EnvironmentTree.key``) hashes everything its renderer could read
and the settings it was modelled with (``bot.inputs.render_cache``), so two environments
with one key are the same tree. Reviewing a pull request then costs, per environment:

- nothing when its key is the same on both sides: no path can differ, and the compiled
  base (kept here, by key) serves as both maps;
- for one whose render changed, what plain trees cost: the head is derived from the
  compiled base and only the rows and columns the change can reach are compared
  (``analysis.prepared.diff_prepared``).

The bot's worker keeps one ``EnvironmentBases`` with its prepared bases
(``bot.inputs.analyze.PreparedBases``): the pull requests of a branch share the base's
environments.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from analysis.diff import ReachabilityDiff, diff_trees
from analysis.model import Tree
from analysis.outside import ClusterScope
from analysis.prepared import CompiledTree, compile_tree, diff_prepared


class EnvironmentBases:
    """Compiled environments by (key, scope), least recently used first out: at most
    ``max_entries`` of them and ``max_weight`` workloads and policies in all."""

    def __init__(self, max_entries: int = 256, max_weight: int = 100_000) -> None:
        self.max_entries = max_entries
        self.max_weight = max_weight
        self.compiled = 0  # how many environments were compiled (for benchmarks and tests)
        self._entries: OrderedDict[tuple[str, ClusterScope], tuple[CompiledTree, int]] = (
            OrderedDict()
        )
        self._weight = 0
        self._lock = threading.Lock()

    def get(self, key: str, tree: Tree, scope: ClusterScope) -> CompiledTree:
        """The environment of ``key`` (whose tree is ``tree``) compiled."""
        with self._lock:
            found = self._entries.get((key, scope))
            if found is not None and (found[0].tree is tree or found[0].tree == tree):
                self._entries.move_to_end((key, scope))
                return found[0]
        compiled = compile_tree(tree, scope)
        weight = len(tree.workloads) + len(tree.policies) + 1
        with self._lock:
            self.compiled += 1
            if weight <= self.max_weight:
                old = self._entries.pop((key, scope), None)
                if old is not None:
                    self._weight -= old[1]
                self._entries[(key, scope)] = (compiled, weight)
                self._weight += weight
                while len(self._entries) > self.max_entries or self._weight > self.max_weight:
                    _, (_, dropped) = self._entries.popitem(last=False)
                    self._weight -= dropped
        return compiled

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._weight = 0


def diff_environment(
    base: Tree,
    head: Tree,
    scope: ClusterScope,
    *,
    base_key: str = "",
    head_key: str = "",
    bases: EnvironmentBases | None = None,
) -> ReachabilityDiff:
    """The diff of one environment's two trees; with ``bases`` and keys, the base side is
    compiled once per key and an environment whose key did not change is not compared."""
    if bases is None or not base_key:
        return diff_trees(base, head, scope)
    compiled = bases.get(base_key, base, scope)
    if base_key == head_key and (base is head or base == head):
        # The same inputs rendered and modelled alike (the render cache usually hands
        # out the very same tree): nothing moved.
        return ReachabilityDiff(compiled.map, compiled.map, (), (), (), ())
    return diff_prepared(compiled, head)
