"""The head matcher and map derived from the base's, in time that grows with the change.

The head keeps the base's endpoint numbers: every class of the base keeps its number (a
class the head no longer has stays, empty and not ``live``), new classes are appended, and
the external ranges are the base's. So a rule's peer set only gains the bits of new
classes, which one pass over the peer-set table adds, and only the rows of classes that a
changed NetworkPolicy selects (before or after) or that are new are rebuilt.

A pair of endpoints can only be treated differently by the head if

- one of them is new or changed class (a relabelled workload lands in another class);
- a NetworkPolicy that changed (added, removed or edited) selects the destination for
  ingress, or the source for egress, in the base or the head;

because everything else that decides the pair (the policies selecting each side, the peers
their rules admit, the named ports resolved on the destination) is then the same on both
sides. ``Affected`` names those rows and columns: a diff compares only them. Changes to
admin policies or namespace labels are not derived (the caller compiles the head anew):
they can move any pair, and they are rare.
"""

from __future__ import annotations

import bisect
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from analysis.compiler import (
    Compilation,
    PeerTable,
    PolicyRules,
    Selectors,
    compile_policy,
)
from analysis.ipranges import block_networks
from analysis.matcher import CompiledAdminRule, Matcher, PodClass, bitset_of
from analysis.model import Direction, IPNetwork, NetworkPolicy, Tree, Workload
from analysis.outside import OutsideWorld, is_outside_namespace
from analysis.reachability import Endpoint, ReachabilityMap
from analysis.treestate import TreeState


@dataclass(frozen=True, slots=True)
class Affected:
    """Endpoints (numbered alike on both sides) whose rows or columns may differ, and the
    ids of endpoints whose number differs or that exist on one side only."""

    sources: frozenset[int]
    destinations: frozenset[int]
    moved: frozenset[str]


@dataclass(frozen=True, slots=True)
class TreeChange:
    """What differs between two trees: NetworkPolicies by id (None: absent on that side)
    and the workloads that may have changed, by id."""

    policies: Mapping[str, tuple[NetworkPolicy | None, NetworkPolicy | None]]
    workloads: Mapping[str, tuple[Workload | None, Workload | None]]

    @staticmethod
    def between(base: Tree, head: Tree) -> TreeChange:
        return TreeChange(
            _differences({p.id: p for p in base.policies}, {p.id: p for p in head.policies}),
            _differences({w.id: w for w in base.workloads}, {w.id: w for w in head.workloads}),
        )

    @staticmethod
    def of_files(base: TreeState, head: TreeState, files: Collection[str]) -> TreeChange:
        """The differences in ``files`` (the paths whose content changed; every other
        file's objects are the same on both sides)."""
        before = [base.by_file[p] for p in files if p in base.by_file]
        after = [head.by_file[p] for p in files if p in head.by_file]
        return TreeChange(
            _differences(
                {p.id: p for m in before for p in m.policies},
                {p.id: p for m in after for p in m.policies},
            ),
            _differences(
                {w.id: w for m in before for w in m.workloads},
                {w.id: w for m in after for w in m.workloads},
            ),
        )

    def with_representatives(self, base: OutsideWorld, head: OutsideWorld) -> TreeChange:
        """This change and the representatives that differ (a namespace the head defines
        or no longer defines, a workload that now or no longer stands for some)."""
        before = {r.id: r.workload() for r in base.representatives}
        after = {r.id: r.workload() for r in head.representatives}
        moved = _differences(before, after)
        if not moved:
            return self
        return TreeChange(self.policies, {**self.workloads, **moved})

    def networks(self) -> list[IPNetwork]:
        """The CIDRs the changed policies name in the head (the base, cut by these too,
        has the ranges of both trees)."""
        blocks = [
            peer.ip_block
            for _, after in self.policies.values()
            if after is not None
            for rule in after.ingress + after.egress
            for peer in rule.peers
            if peer.ip_block is not None
        ]
        return block_networks(blocks)


_T = TypeVar("_T")


def _differences(
    before: Mapping[str, _T], after: Mapping[str, _T]
) -> dict[str, tuple[_T | None, _T | None]]:
    out: dict[str, tuple[_T | None, _T | None]] = {}
    for key in before.keys() | after.keys():
        b, a = before.get(key), after.get(key)
        if b is not a and b != a:
            out[key] = (b, a)
    return out


def same_context(base: Compilation, head: Tree) -> bool:
    """Whether the head has the base's admin policies, and the same labels on every
    namespace both trees have (else it is not derived: such a change can move any pair).
    A namespace only one side has holds only classes new or gone on that side."""
    if base.tree.admin_policies != head.admin_policies:
        return False
    if base.tree.calico or head.calico:
        return False  # Calico's tiers are compiled anew (analysis.calicocompile)
    if base.tree.cilium_policies or head.cilium_policies:
        return False  # Cilium rows are compiled per set of specs: compile the head anew
    if base.tree.cilium_agent is not None or head.cilium_agent is not None:
        return False  # the agent's options and its pseudo-endpoints: compiled anew too
    if base.tree.namespaces == head.namespaces:
        return True
    after = head.namespace_labels()
    return all(
        after.get(name, labels) == labels for name, labels in base.tree.namespace_labels().items()
    )


def same_ranges(base: Compilation, change: TreeChange) -> bool:
    """Whether every CIDR of a changed policy is already a boundary of the base's ranges."""
    cuts = {(r.version, r.first) for r in base.matcher.externals}
    cuts.update((r.version, r.last + 1) for r in base.matcher.externals)
    return all(
        (net.version, int(net.network_address)) in cuts
        and (net.version, int(net.broadcast_address) + 1) in cuts
        for net in change.networks()
    )


def mark_rows(
    rebuild: dict[Direction, set[int]], selected: Iterable[int], policy: NetworkPolicy
) -> list[tuple[int, Direction]]:
    """Mark for rebuilding the rows, in each direction ``policy`` isolates, of the
    endpoints it selects; returns them as (endpoint, direction)."""
    marked = [(e, d) for e in selected for d in policy.policy_types]
    for e, d in marked:
        rebuild[d].add(e)
    return marked


def derive(
    base: Compilation, base_map: ReachabilityMap, head: Tree, change: TreeChange
) -> tuple[ReachabilityMap, Affected]:
    """The head's map with the base's endpoint numbers (requires ``same_context`` and
    ``same_ranges``)."""
    bm = base.matcher
    size = bm.size

    # Where each changed workload is now; classes the base does not have are appended.
    new_classes: dict[PodClass, int] = {}
    moves: list[tuple[str, int | None, int | None, Endpoint]] = []
    for wid, (before, after) in change.workloads.items():
        old = base_map.index_of.get(wid)
        new = None
        if after is not None:
            pod_class = PodClass.of(after)
            new = base.class_index.get(pod_class)
            if new is None:
                new = new_classes.setdefault(pod_class, size + len(new_classes))
        if old != new:
            workload = after or before
            assert workload is not None
            moves.append((wid, old, new, Endpoint.of_workload(workload)))

    ns_labels = _labels_of(head, {c.namespace for c in new_classes})
    fresh = Selectors([(i, c) for c, i in new_classes.items()], ns_labels, ())
    sets = list(bm.peer_sets)
    candidates = set().union(*map(base.keys_for, new_classes)) if new_classes else set()
    for key in candidates:
        extra = fresh.evaluate(key)
        if extra:
            sets[base.peer_keys[key]] |= extra

    def evaluate(key: tuple[object, ...]) -> int:
        return base.selectors.evaluate(key) | fresh.evaluate(key)

    peers = PeerTable(evaluate, base.peer_keys, sets)
    rules: dict[str, PolicyRules] = {}  # head rules of changed (and newly needed) policies

    def rules_of(policy: NetworkPolicy) -> PolicyRules:
        found = rules.get(policy.id)
        if found is None:
            found = base.policy_rules.get(policy.id) if policy.id not in change.policies else None
            if found is None:
                found = compile_policy(policy, peers)
            rules[policy.id] = found
        return found

    # The rows to rebuild per direction, and the policies now isolating them.
    rebuild: dict[Direction, set[int]] = {d: set() for d in Direction}
    gained: dict[tuple[int, Direction], list[NetworkPolicy]] = {}
    for old_policy, new_policy in change.policies.values():
        if old_policy is not None:
            mark_rows(rebuild, base.selectors.selected(old_policy), old_policy)
        if new_policy is not None:
            for key in mark_rows(rebuild, base.selectors.selected(new_policy), new_policy):
                gained.setdefault(key, []).append(new_policy)
    for pod_class, e in new_classes.items():
        for policy in _in_namespace(head.policies, pod_class.namespace):
            if fresh.pods(policy.pod_selector) >> e & 1:
                for d in policy.policy_types:
                    rebuild[d].add(e)
                    gained.setdefault((e, d), []).append(policy)

    n_new = len(new_classes)
    tables = {
        Direction.INGRESS: [*bm.ingress, *([None] * n_new)],
        Direction.EGRESS: [*bm.egress, *([None] * n_new)],
    }
    isolating = [*bm.isolating, *([{}] * n_new)]
    for d, endpoints in rebuild.items():
        for e in endpoints:
            kept = [
                p
                for p in (bm.isolating[e].get(d, ()) if e < size else ())
                if p.id not in change.policies
            ]
            policies = sorted([*kept, *gained.get((e, d), ())], key=lambda p: (p.namespace, p.name))
            row = dict(isolating[e])
            if policies:
                row[d] = tuple(policies)
                tables[d][e] = tuple(r for p in policies for r in rules_of(p)[d])
            else:
                row.pop(d, None)
                tables[d][e] = None
            isolating[e] = row

    admin, baseline = [*bm.admin, *([{}] * n_new)], [*bm.baseline, *([{}] * n_new)]
    beyond = bm.beyond | bitset_of(
        e for c, e in new_classes.items() if is_outside_namespace(c.namespace)
    )
    for apolicy in head.admin_policies if new_classes else ():
        target = baseline if apolicy.is_baseline else admin
        subjects = fresh.subjects(apolicy)
        if apolicy.is_baseline:
            subjects &= ~beyond  # see ``compiler.compile_full``
        for e in new_classes.values():
            if subjects >> e & 1:
                row_a: dict[Direction, tuple[CompiledAdminRule, ...]] = dict(target[e])
                for d, arules in base.admin_rules[apolicy.id].items():
                    row_a[d] = row_a.get(d, ()) + arules
                target[e] = row_a

    members = [*base_map.members, *([()] * n_new)]
    index_of = dict(base_map.index_of)
    live = bm.live
    for wid, old, new, endpoint in moves:
        if old is not None:
            members[old] = tuple(m for m in members[old] if m.id != wid)
            if not members[old]:
                live &= ~(1 << old)
        if new is None:
            del index_of[wid]
            continue
        index_of[wid] = new
        group = list(members[new])
        bisect.insort(group, endpoint, key=lambda m: (m.namespace, m.kind, m.name))
        members[new] = tuple(group)
        live |= 1 << new

    matcher = Matcher(
        externals=bm.externals,
        classes=(*bm.classes, *new_classes),
        peer_sets=tuple(peers.sets),
        ingress=tuple(tables[Direction.INGRESS]),
        egress=tuple(tables[Direction.EGRESS]),
        isolating=tuple(isolating),
        admin=tuple(admin),
        baseline=tuple(baseline),
        live=live,
        tiered=bm.tiered,
        beyond=beyond,
    )
    appended = set(new_classes.values())
    affected = Affected(
        sources=frozenset(rebuild[Direction.EGRESS] | appended),
        destinations=frozenset(rebuild[Direction.INGRESS] | appended),
        moved=frozenset(wid for wid, *_ in moves),
    )
    return ReachabilityMap(head, matcher, tuple(members), index_of), affected


def _labels_of(tree: Tree, names: Iterable[str]) -> dict[str, dict[str, str]]:
    """The labels of some namespaces (``tree.namespaces`` is sorted by name)."""
    out = {}
    for name in names:
        at = bisect.bisect_left(tree.namespaces, name, key=lambda n: n.name)
        if at < len(tree.namespaces) and tree.namespaces[at].name == name:
            out[name] = dict(tree.namespaces[at].labels)
    return out


def _in_namespace(policies: tuple[NetworkPolicy, ...], namespace: str) -> Iterable[NetworkPolicy]:
    """The policies of one namespace (``policies`` is sorted by namespace, then name)."""
    start = bisect.bisect_left(policies, namespace, key=lambda p: p.namespace)
    for policy in policies[start:]:
        if policy.namespace != namespace:
            break
        yield policy
