"""A base tree read and compiled once, and the reviews of changes against it.

The bot's worker keeps one ``PreparedBase`` per base commit and reviews every pull request
of the branch against it: ``review(base, changed files)`` reads only the changed files and
computes only what they can change. This module sits above ``analysis.diff`` (which
compares) and ``analysis.incremental`` (which derives the head from the base), so that
each imports downwards only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from analysis.ciliumagent import CiliumAgent
from analysis.ciliumpeers import with_pseudo
from analysis.compiler import Compilation, compile_full, tree_networks
from analysis.customkinds import WorkloadKinds
from analysis.diff import ReachabilityDiff, diff_compiled
from analysis.incremental import TreeChange
from analysis.model import IPNetwork, Tree
from analysis.outside import ClusterScope, OutsideWorld, outside_world
from analysis.reachability import ReachabilityMap, map_of
from analysis.treestate import TreeState, apply_changes, load_state


@dataclass(frozen=True, slots=True)
class PreparedBase:
    """A base tree read and compiled once, to review many changes against (the bot reviews
    every pull request of a branch against the same base commit)."""

    state: TreeState
    compilation: Compilation
    map: ReachabilityMap
    scope: ClusterScope = ClusterScope.COMPLETE
    # Under a partial scope, the representatives the compilation holds (derived from the
    # base's selectors alone; a head with new selectors recompiles the base with them).
    outside: OutsideWorld | None = None
    # The trees whose selectors ``outside`` was derived from: a diff against exactly these
    # (the CLI prepares its base for the head it compares) reuses it as it is.
    outside_of: tuple[Tree, ...] = ()

    @property
    def tree(self) -> Tree:
        """The base tree as read (``compilation.tree`` adds the representatives)."""
        return self.state.tree

    @property
    def files(self) -> Mapping[str, bytes | str]:
        return self.state.files


class CompiledBase(Protocol):
    """What ``diff_prepared`` reads of a base: a ``PreparedBase`` (plain manifests, with the
    index that derives heads from changed files) or a ``CompiledTree`` (a rendered
    environment, whose heads come as trees)."""

    @property
    def tree(self) -> Tree: ...
    @property
    def compilation(self) -> Compilation: ...
    @property
    def map(self) -> ReachabilityMap: ...
    @property
    def outside(self) -> OutsideWorld | None: ...
    @property
    def outside_of(self) -> tuple[Tree, ...]: ...


@dataclass(frozen=True, slots=True)
class CompiledTree:
    """A tree compiled once to review many heads against (a rendered environment the bot
    keeps per render key, ``bot.inputs.environment_bases``)."""

    tree: Tree  # as read (``compilation.tree`` adds the representatives)
    compilation: Compilation
    map: ReachabilityMap
    scope: ClusterScope = ClusterScope.COMPLETE
    outside: OutsideWorld | None = None
    outside_of: tuple[Tree, ...] = ()  # as ``PreparedBase.outside_of``


def compile_tree(
    tree: Tree, scope: ClusterScope = ClusterScope.COMPLETE, compared: Sequence[Tree] = ()
) -> CompiledTree:
    """``tree`` compiled as ``prepared`` compiles a state's tree."""
    outside, compiled, outside_of = None, tree, (tree, *compared)
    if scope is ClusterScope.PARTIAL:
        outside = outside_world(tree, outside_of)
        compiled = outside.tree(tree)
    compiled = with_pseudo(compiled, (tree, *compared))
    compilation = compile_full(compiled, ())
    return CompiledTree(
        tree,
        compilation,
        map_of(compiled, compilation.matcher),
        scope,
        outside,
        outside_of if outside is not None else (),
    )


def prepare(
    base_files: Mapping[str, bytes | str],
    extra_networks: Iterable[IPNetwork] = (),
    scope: ClusterScope = ClusterScope.COMPLETE,
    *,
    workload_kinds: WorkloadKinds = (),
    cilium_agent: CiliumAgent | None = None,
) -> PreparedBase:
    state = load_state(base_files, workload_kinds=workload_kinds, cilium_agent=cilium_agent)
    return prepared(state, extra_networks, scope)


def prepared(
    state: TreeState,
    extra_networks: Iterable[IPNetwork] = (),
    scope: ClusterScope = ClusterScope.COMPLETE,
    compared: Sequence[Tree] = (),
) -> PreparedBase:
    """``state`` compiled; under a partial scope with the representatives the selectors of
    the base and of ``compared`` (heads about to be reviewed) call for."""
    tree, outside, outside_of = state.tree, None, (state.tree, *compared)
    if scope is ClusterScope.PARTIAL:
        outside = outside_world(tree, outside_of)
        tree = outside.tree(tree)
    tree = with_pseudo(tree, (tree, *compared))
    compilation = compile_full(tree, extra_networks)
    return PreparedBase(
        state,
        compilation,
        map_of(tree, compilation.matcher),
        scope,
        outside,
        outside_of if outside is not None else (),
    )


def review(base: PreparedBase, changed: Mapping[str, bytes | str | None]) -> ReachabilityDiff:
    """The diff of ``base`` with ``changed`` applied (``None`` deletes a file): only the
    changed files are read, and only what they can change is computed."""
    head = apply_changes(base.state, changed)
    return diff_prepared(base, head.tree, TreeChange.of_files(base.state, head, changed))


def diff_prepared(
    base: CompiledBase, head: Tree, change: TreeChange | None = None
) -> ReachabilityDiff:
    """The diff against a prepared base (the bot keeps one per base commit); ``change``,
    when known from the changed files, spares comparing every object."""
    if base.outside is None:
        return diff_compiled(base.compilation, base.map, head, change)
    compared = (base.tree, head)
    before = base.outside
    if not _same_trees(base.outside_of, compared):
        before = outside_world(base.tree, compared)
    # A tree's representatives depend on the trees compared and on its own namespaces
    # alone (names and labels): a head with the base's namespaces has the same ones.
    after = before if head.namespaces == base.tree.namespaces else outside_world(head, compared)
    head_tree = after.tree(head)
    if (before.representatives, before.namespaces) != (
        base.outside.representatives,
        base.outside.namespaces,
    ):
        # The head's selectors call for representatives the base was compiled without.
        base_tree = before.tree(base.tree)
        compilation = compile_full(base_tree, tree_networks(head_tree))
        return diff_compiled(compilation, map_of(base_tree, compilation.matcher), head_tree)
    if change is not None:
        change = change.with_representatives(before, after)
    return diff_compiled(base.compilation, base.map, head_tree, change)


def _same_trees(these: Sequence[Tree], those: Sequence[Tree]) -> bool:
    """The same tree objects (identity: comparing two trees field by field costs what
    deriving their representatives does)."""
    return len(these) == len(those) and all(a is b for a, b in zip(these, those, strict=True))
