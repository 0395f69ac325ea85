"""Admin rules whose outcome a manifest cannot settle: a `networks` peer reached by traffic
to a pod or a host-network workload.

The network-policy-api checks cluster-internal traffic against `networks` peers too (a Deny
of 0.0.0.0/0 and ::/0 denies pod-to-pod traffic), but pod and node IPs are assigned at run
time. A peer holding every address matches every workload; any other `networks` peer is
evaluated as not matching a workload, and a verdict that reaches such a rule with ports
still undecided records an ``Unknown`` decision. This module finds those verdicts, so that
the run reports them (file and line of the rule, an example pair) and does not pass.
"""

from __future__ import annotations

from analysis.calicowalk import calico_unknowns
from analysis.matcher import CompiledAdminRule, bit_indexes
from analysis.model import Direction
from analysis.reachability import ReachabilityMap


def unknown_matches(rmap: ReachabilityMap) -> tuple[str, ...]:
    """One message per admin rule that some pair of live workloads reaches undecided while
    the rule's `networks` may hold the destination's IP."""
    matcher = rmap.matcher
    if not matcher.tiered:
        return ()
    calico = calico_unknowns(rmap)  # Calico rules' nets (analysis.calicowalk)
    first = matcher.first_class
    workloads = matcher.live & ((1 << matcher.size) - 1) & ~((1 << first) - 1)
    found: dict[int, tuple[CompiledAdminRule, int, int, str]] = {}
    # A source's egress verdicts depend on it only through its rules: sources under the
    # same rules are scanned once.
    scanned: set[tuple[int, ...]] = set()
    for owner in bit_indexes(workloads):
        admin = matcher.admin[owner].get(Direction.EGRESS, ())
        baseline = matcher.baseline[owner].get(Direction.EGRESS, ())
        if not any(r.maybe >= 0 for r in (*admin, *baseline)):
            continue
        key = (*map(id, admin), -1, id(matcher.egress[owner]), -1, *map(id, baseline))
        if key in scanned:
            continue
        scanned.add(key)
        for bits, verdict in matcher.verdict_blocks(Direction.EGRESS, owner, workloads):
            for decision in verdict.decisions:
                rule = decision.rule
                if decision.action == "Unknown" and isinstance(rule, CompiledAdminRule):
                    peer = (bits & -bits).bit_length() - 1
                    found.setdefault(id(rule), (rule, owner, peer, str(decision.ports)))
    out = []
    for rule, owner, peer, ports in found.values():
        a, policy = rule.rule, rule.policy
        named = f' "{a.name}"' if a.name else ""
        cidrs = ", ".join(str(n) for p in a.peers for n in p.networks)
        out.append(
            f"{a.source}: {policy.id} {a.label}{named}: traffic from "
            f"{rmap.members[owner][0].id} to {rmap.members[peer][0].id} ({ports}) reaches "
            f"this rule undecided, and its `networks` ({cidrs}) may hold that workload's IP, "
            "which a manifest does not fix (cluster traffic is checked against `networks`); "
            "reachdiff evaluates it as not matching. Decide workload traffic in an earlier "
            "rule, or list both 0.0.0.0/0 and ::/0 to match every workload"
        )
    return tuple(sorted(out)) + calico
