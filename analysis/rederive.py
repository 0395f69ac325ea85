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
"""

from __future__ import annotations

from analysis.compiler import Compilation, compile_full
from analysis.incremental import Affected, TreeChange, mark_rows
from analysis.model import Direction, Tree
from analysis.reachability import ReachabilityMap, map_of


def same_tiers(base: Compilation, head: Tree) -> bool:
    """Whether the head has the base's admin, Calico and Cilium policies, and the same
    labels on every namespace both trees have: then ``rederive`` is exact."""
    if base.tree.admin_policies != head.admin_policies:
        return False
    if base.tree.calico != head.calico or base.tree.cilium_policies != head.cilium_policies:
        return False
    if base.tree.cilium_agent != head.cilium_agent:
        return False
    if base.tree.namespaces == head.namespaces:
        return True
    after = head.namespace_labels()
    return all(
        after.get(name, labels) == labels for name, labels in base.tree.namespace_labels().items()
    )


def rederive(
    base: Compilation, base_map: ReachabilityMap, head: Tree, change: TreeChange
) -> tuple[ReachabilityMap, Affected]:
    """The head's map under the base's endpoint numbers, and the rows and columns the
    change can reach (requires ``same_tiers``, and the base's external ranges cutting
    every CIDR of the head: ``incremental.same_ranges``)."""
    compiled = compile_full(head, numbered_as=base.matcher)
    head_map = map_of(head, compiled.matcher)
    rebuild: dict[Direction, set[int]] = {d: set() for d in Direction}
    for before, after in change.policies.values():
        if before is not None:
            mark_rows(rebuild, base.selectors.selected(before), before)
        if after is not None:
            mark_rows(rebuild, compiled.selectors.selected(after), after)
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
