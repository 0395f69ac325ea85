"""One step of an explanation (``reachdiff explain``): the verdict words and ``Step``,
shared by the walks of every kind of policy (``analysis.decision`` for Kubernetes and
admin tiers, ``analysis.calicoexplain`` for Calico's tiers), which build on no other."""

from __future__ import annotations

from dataclasses import dataclass

from analysis.ports import ConnectionSet

# Verdicts of a step
ALLOW, DENY, PASS, NO_MATCH, NOT_REACHED, NOT_ISOLATED, ISOLATED, DEFAULT, UNKNOWN = (
    "allow",
    "deny",
    "pass",
    "no match",
    "not reached",
    "not isolated",
    "isolated",
    "default allow",
    "unknown",
)


@dataclass(frozen=True, slots=True)
class Step:
    direction: str  # Egress (of the source) or Ingress (of the destination)
    # AdminNetworkPolicy (priority N), NetworkPolicy, BaselineAdminNetworkPolicy,
    # ClusterNetworkPolicy Admin|Baseline tier (priority N), ""
    tier: str
    policy: str  # the policy id, "" for a default
    file: str
    line: int
    rule: str  # egress[0], ingress[1]; "" for a whole policy or a default
    rule_name: str  # admin rules have names
    verdict: str  # allow, deny, pass, no match, not reached, isolated, not isolated, ...
    ports: ConnectionSet  # the ports this step decided (or admitted), within the question
    detail: str  # in words: which peer and port matched, or why not
