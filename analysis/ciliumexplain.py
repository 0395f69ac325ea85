"""The steps of ``reachdiff explain`` for Cilium rules (see ``analysis.decision``).

Deny rules come first (they take precedence over every allow); allow rules join the
NetworkPolicy tier; the policies putting the pod in default deny are its isolating steps.
"""

from __future__ import annotations

from collections.abc import Callable

from analysis.ciliummodel import (
    LOCALHOST_POLICY,
    CiliumPolicy,
    CompiledCiliumRule,
    authentication_words,
)
from analysis.matcher import Matcher
from analysis.model import Direction
from analysis.ports import NO_CONNECTIONS, ConnectionSet

Match = Callable[[CompiledCiliumRule, ConnectionSet], tuple[ConnectionSet, str]]
StepTuple = tuple[str, str, str, int, str, str, ConnectionSet, str]


def describe(rule: CompiledCiliumRule) -> str:
    """The rule's peers in words."""
    r = rule.rule
    if r.selects_nothing or (not r.l3 and r.ports is None):
        return "no peer (the rule selects nothing)"
    if not r.l3:
        return "every peer (no L3 selector, with toPorts)"
    parts = [f"endpoints {s}" for s in r.endpoints]
    parts += [f"CIDR {b}" for b in r.blocks]
    parts += [f"entity {e}" for e in r.entities]
    parts += [f"{b} backends" for b in r.backends]
    parts += [f"DNS {f}" for f in r.fqdns]
    text = "peer " + " or ".join(parts)
    if r.requires and r.endpoints:
        text += " (with the requirements " + ", ".join(map(str, r.requires)) + ")"
    return text


def rule_step(
    rule: CompiledCiliumRule, verdict: str, ports: ConnectionSet, detail: str
) -> StepTuple:
    """(tier, policy, file, line, rule, verdict, ports, detail) of one Cilium rule."""
    r = rule.rule
    action = "Deny" if r.deny else "Allow"
    if r.authentication and ports:
        detail += f"; {authentication_words(r)}"
    if r.l7 and not r.deny and ports:
        detail += f"; L7-filtered: {r.l7}"
    return (
        rule.policy.kind,
        rule.policy.id,
        r.source.file,
        r.source.line,
        r.label,
        verdict,
        ports,
        f"{action} rule: {detail}",
    )


def deny_steps(
    m: Matcher, direction: Direction, owner: int, undecided: ConnectionSet, match: Match
) -> tuple[ConnectionSet, list[StepTuple]]:
    """The deny rules' steps, and what they leave undecided."""
    row = m.cilium_row(direction, owner)
    steps: list[StepTuple] = []
    for c in row.deny if row is not None else ():
        hit, detail = match(c, undecided) if undecided else (NO_CONNECTIONS, "")
        if hit:
            undecided = undecided - hit
            steps.append(rule_step(c, "deny", hit, detail))
        else:
            steps.append(rule_step(c, "no match", NO_CONNECTIONS, detail or "nothing left"))
    return undecided, steps


def allow_steps(
    m: Matcher, direction: Direction, owner: int, remaining: ConnectionSet, match: Match
) -> tuple[ConnectionSet, list[StepTuple]]:
    """The allow rules' steps, and what they allow of ``remaining``."""
    row = m.cilium_row(direction, owner)
    allowed = NO_CONNECTIONS
    steps: list[StepTuple] = []
    for c in row.allow if row is not None else ():
        hit, detail = match(c, remaining) if remaining else (NO_CONNECTIONS, "nothing left")
        if not hit and c.policy is LOCALHOST_POLICY:
            continue  # the agent's rule for the node: told only where it allows
        allowed = allowed | hit
        steps.append(rule_step(c, "allow" if hit else "no match", hit, detail))
    return allowed, steps


def isolating(m: Matcher, direction: Direction, owner: int) -> tuple[CiliumPolicy, ...]:
    row = m.cilium_row(direction, owner)
    return row.isolating if row is not None else ()
