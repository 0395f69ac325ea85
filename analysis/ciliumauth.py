"""Changes of Cilium mutual authentication, which a map cannot show.

Rules:
- A rule with ``authentication: {mode: required}`` is evaluated as if every handshake
  succeeds: the map shows what it allows, and its causes say that the agent admits the
  traffic once the two identities authenticate (``analysis.explain.Cause.authentication``).
  Unchanged, such a rule is understood: its paths open and close with its peers and ports.
- A change of the mode alone (required added, removed, or replaced) leaves the map as it
  was while the cluster admits other traffic (a removed requirement admits an identity
  that could not authenticate). So each rule whose mode differs between the two trees is
  reported as not analysed, naming the policy, the rule, and its file and line in the
  head, with both modes.
- Rules are paired by policy and rule position (``specs[1].ingress[0]``). A rule or a
  policy only one tree has is no such change: what it allows opens or closes in the map,
  its causes naming its mode. A rule moved to another position is compared with what is
  there now, which may report a change that is none (never the reverse).
"""

from __future__ import annotations

from analysis.ciliummodel import CiliumRule
from analysis.model import Tree


def authentication_changes(base: Tree, head: Tree) -> tuple[str, ...]:
    """ "file:line: policy rule: …" for every rule of a policy in both trees whose mutual
    authentication mode the change adds, removes or replaces."""
    before = _rules(base)
    out: list[str] = []
    for (policy, label), rule in _rules(head).items():
        old = before.get((policy, label))
        if old is None or old.authentication == rule.authentication:
            continue
        out.append(
            f"{rule.source.file}:{rule.source.line}: {policy} {label}: authentication: "
            f"{_mode(old)} in the base, {_mode(rule)} in the head; mutual authentication is "
            "decided at run time, so what this changes is not in the map"
        )
    return tuple(out)


def _rules(tree: Tree) -> dict[tuple[str, str], CiliumRule]:
    return {
        (policy.id, rule.label): rule
        for policy in tree.cilium_policies
        for spec in policy.specs
        for rule in spec.rules
    }


def _mode(rule: CiliumRule) -> str:
    return f"mode {rule.authentication}" if rule.authentication else "none"
