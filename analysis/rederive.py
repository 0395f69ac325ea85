"""The head of a tree with Calico or Cilium policies, compared where the change can reach.

``analysis.incremental`` derives a head's matcher from its base's row by row; Calico's tiers
and Cilium's rows are compiled per set of policies, so a tree holding either was compiled
anew on both sides and its two maps compared pair by pair: quadratic in the pod classes.

When those policies (and the admin policies, and the labels of the namespaces both sides
have) are the same on both sides, what differs is NetworkPolicies and workloads, as on the
incremental path. The head is then compiled in full, but under the base's endpoint numbers
(``compile_full(numbered_as=...)``), and only the rows and columns the change can reach are
compared (``Affected``), as for a derived head. Compiling in full costs what the base's
compilation costs; the comparison costs what the change touches.

Why the rows and columns of ``Affected`` are all that can differ: an endpoint's rows in a
direction are built from the NetworkPolicies selecting it (``isolating``, the rules), the
admin policies, Calico's tiers (which read the endpoint's NetworkPolicies as the default
tier's) and Cilium's rows (which read whether a NetworkPolicy isolates its ingress): with
the Calico, Cilium and admin policies unchanged, they differ only for an endpoint a changed
NetworkPolicy selects in that direction (on either side), or a class only the head has. A
peer set is evaluated over classes, whose labels and namespace labels are the same on both
sides for every class both sides have, so a rule admits the same classes on both sides.

A change to Calico or Cilium policies themselves (``TierChange``) reaches no further: a
Calico policy is part of an endpoint's tier rows only where it selects the endpoint (a tier
applies only through the policies of it selecting the endpoint), and a Cilium policy's
rules, its default deny and the requirements it folds into other rules all act on the
endpoints its specs select. So the endpoints whose rows (in either compilation) cite a
changed policy, or a tier whose declaration changed, are added to ``Affected`` in those
directions. A change to network sets (which move ranges in and out of the peer sets of
unchanged rules), admin policies or namespace labels is not followed: the caller compares
in full.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from analysis.calicocompile import calico_networks
from analysis.calicomodel import CalicoObjects
from analysis.ciliumcompile import cilium_networks
from analysis.compiler import Compilation, compile_full
from analysis.incremental import Affected, TreeChange, mark_rows
from analysis.model import Direction, IPNetwork, Tree
from analysis.reachability import ReachabilityMap, map_of


@dataclass(frozen=True, slots=True)
class TierChange:
    """The Calico and Cilium objects that differ between two trees: policies by id, and
    Calico tiers by name (a tier declared on one side only, or declared differently)."""

    calico: frozenset[str] = frozenset()
    tiers: frozenset[str] = frozenset()
    cilium: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.calico or self.tiers or self.cilium)


NO_TIER_CHANGE = TierChange()


def tier_change(base: Tree, head: Tree) -> TierChange | None:
    """What differs in the Calico and Cilium policies and tiers, when ``rederive`` can
    follow it: None when the admin policies, the network sets, the Cilium agent's options
    or the labels of a namespace both trees have differ (any pair may move: the caller
    compares in full)."""
    if base.admin_policies != head.admin_policies or base.cilium_agent != head.cilium_agent:
        return None
    before, after = base.calico, head.calico
    sets_before = before.network_sets if before is not None else ()
    if sets_before != (after.network_sets if after is not None else ()):
        return None
    if base.namespaces != head.namespaces:
        labels = head.namespace_labels()
        if any(labels.get(name, had) != had for name, had in base.namespace_labels().items()):
            return None
    if before == after and base.cilium_policies == head.cilium_policies:
        return NO_TIER_CHANGE
    return TierChange(
        calico=_differing(
            ((p.id, p) for p in before.policies) if before is not None else (),
            ((p.id, p) for p in after.policies) if after is not None else (),
        ),
        tiers=_differing(
            ((t.name, t) for t in before.tiers) if before is not None else (),
            ((t.name, t) for t in after.tiers) if after is not None else (),
        ),
        cilium=_differing(
            ((p.id, p) for p in base.cilium_policies), ((p.id, p) for p in head.cilium_policies)
        ),
    )


_T = TypeVar("_T")


def _differing(before: Iterable[tuple[str, _T]], after: Iterable[tuple[str, _T]]) -> frozenset[str]:
    """The keys whose objects differ (several objects under one key compared as a list)."""
    old: dict[str, list[_T]] = {}
    for key, value in before:
        old.setdefault(key, []).append(value)
    new: dict[str, list[_T]] = {}
    for key, value in after:
        new.setdefault(key, []).append(value)
    return frozenset(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))


def same_tiers(base: Compilation, head: Tree) -> bool:
    """Whether the head has the base's admin, Calico and Cilium policies, and the same
    labels on every namespace both trees have: then ``rederive`` is exact."""
    return tier_change(base.tree, head) == NO_TIER_CHANGE


def networks(head: Tree, tiers: TierChange) -> list[IPNetwork]:
    """The CIDRs of the head's changed Calico and Cilium policies (where its ranges must
    split, as ``TreeChange.networks`` for NetworkPolicies)."""
    if not tiers:
        return []
    calico = head.calico
    changed = Tree(
        calico=(
            CalicoObjects(tuple(p for p in calico.policies if p.id in tiers.calico))
            if calico is not None
            else None
        ),
        cilium_policies=tuple(p for p in head.cilium_policies if p.id in tiers.cilium),
    )
    return [*calico_networks(changed), *cilium_networks(changed)]


def same_ranges(base: Compilation, change: TreeChange, head: Tree, tiers: TierChange) -> bool:
    """Whether the base's external ranges are cut by every CIDR of a changed policy of
    any kind (``incremental.same_ranges`` for NetworkPolicies)."""
    cuts = {(r.version, r.first) for r in base.matcher.externals}
    cuts.update((r.version, r.last + 1) for r in base.matcher.externals)
    return all(
        (net.version, int(net.network_address)) in cuts
        and (net.version, int(net.broadcast_address) + 1) in cuts
        for net in [*change.networks(), *networks(head, tiers)]
    )


def rederive(
    base: Compilation,
    base_map: ReachabilityMap,
    head: Tree,
    change: TreeChange,
    tiers: TierChange = NO_TIER_CHANGE,
) -> tuple[ReachabilityMap, Affected]:
    """The head's map under the base's endpoint numbers, and the rows and columns the
    change can reach (requires ``tier_change`` to give ``tiers``, and ``same_ranges``)."""
    compiled = compile_full(head, numbered_as=base.matcher)
    head_map = map_of(head, compiled.matcher)
    rebuild: dict[Direction, set[int]] = {d: set() for d in Direction}
    for before, after in change.policies.values():
        if before is not None:
            mark_rows(rebuild, base.selectors.selected(before), before)
        if after is not None:
            mark_rows(rebuild, compiled.selectors.selected(after), after)
    if tiers:
        for side in (base, compiled):
            for d, owners in _citing(side, tiers).items():
                rebuild[d].update(owners)
    appended = set(range(base.matcher.size, compiled.matcher.size))
    moved = frozenset(
        wid for wid in change.workloads if base_map.index_of.get(wid) != head_map.index_of.get(wid)
    )
    affected = Affected(
        sources=frozenset(rebuild[Direction.EGRESS] | appended),
        destinations=frozenset(rebuild[Direction.INGRESS] | appended),
        moved=moved,
    )
    return head_map, affected


def _citing(compilation: Compilation, tiers: TierChange) -> Mapping[Direction, set[int]]:
    """Per direction, the endpoints whose Calico tier rows hold a changed policy or tier,
    or whose Cilium rows hold a changed policy's rules or default deny."""
    matcher = compilation.matcher
    out: dict[Direction, set[int]] = {d: set() for d in Direction}
    if (tiers.calico or tiers.tiers) and matcher.calico:
        for e, by_direction in enumerate(matcher.calico):
            for d, rows in by_direction.items():
                if any(
                    row.tier.name in tiers.tiers or any(p.id in tiers.calico for p in row.policies)
                    for row in rows
                ):
                    out[d].add(e)
    if tiers.cilium and matcher.cilium:
        cited: dict[int, bool] = {}  # rows are shared between endpoints: by identity
        for e, cilium_rows in enumerate(matcher.cilium):
            for d, cilium_row in cilium_rows.items():
                found = cited.get(id(cilium_row))
                if found is None:
                    found = cited[id(cilium_row)] = any(
                        r.policy.id in tiers.cilium for r in (*cilium_row.deny, *cilium_row.allow)
                    ) or any(p.id in tiers.cilium for p in cilium_row.isolating)
                if found:
                    out[d].add(e)
    return out
