"""Why one connection is allowed or denied: the decision step by step (``reachdiff explain``).

A connection needs the source's egress and the destination's ingress. Each direction is
walked in enforcement order for the pod whose direction it is: AdminNetworkPolicies by
priority (each rule considered, the first whose peer and port match decides: Allow, Deny,
or Pass to NetworkPolicy), then the NetworkPolicies selecting the pod (each rule: which
peer and port matched or why not; a pod selected by none is not isolated), then the
BaselineAdminNetworkPolicy (only for a pod no NetworkPolicy isolates), then the default.
Every step names its policy, tier, rule, file and line. The verdicts are the matcher's
own (``Matcher.verdict``); the steps only show how it got there.

Why one module of 500 lines: the walk of each tier and its steps are one algorithm,
asserted step by step against the matcher's verdict (``_walk``); its text, JSON and
Markdown renderings are short and share its step vocabulary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from analysis import ciliumexplain, markdown
from analysis.calicoexplain import calico_steps
from analysis.ciliummodel import CiliumPolicy, CompiledCiliumRule
from analysis.manifests import exact_rule_source
from analysis.matcher import CompiledAdminRule, CompiledRule, Matcher, Rows
from analysis.model import AdminAction, Direction, NetworkPolicy
from analysis.ports import ALL_CONNECTIONS, NO_CONNECTIONS, ConnectionSet, PortSet
from analysis.reachability import Endpoint, ReachabilityMap
from analysis.steps import (
    ALLOW,
    DEFAULT,
    DENY,
    ISOLATED,
    NO_MATCH,
    NOT_ISOLATED,
    NOT_REACHED,
    PASS,
    UNKNOWN,
    Step,
)


@dataclass(frozen=True, slots=True)
class Explanation:
    src: Endpoint
    dst: Endpoint
    question: ConnectionSet  # the ports asked about (everything when no port is given)
    port: str  # "TCP 5432", or "" for every port
    allowed: ConnectionSet  # what is allowed, within the question
    egress: ConnectionSet
    ingress: ConnectionSet
    steps: tuple[Step, ...]

    @property
    def is_allowed(self) -> bool:
        return bool(self.allowed)


class UnknownEndpoint(ValueError):
    """An id that is no endpoint of the map; ``str()`` says so and lists close ones."""


def parse_port(text: str) -> ConnectionSet:
    """``TCP 5432``, ``udp 53`` or ``5432`` (TCP) as a one-port connection set."""
    parts = text.split()
    if len(parts) == 1:
        parts = ["TCP", parts[0]]
    if (
        len(parts) != 2
        or not parts[1].isdigit()
        or parts[0].upper()
        not in (
            "TCP",
            "UDP",
            "SCTP",
        )
    ):
        raise ValueError(f'port {text!r}: write it as "TCP 5432" (TCP, UDP or SCTP, 1-65535)')
    number = int(parts[1])
    if not 1 <= number <= 65535:
        raise ValueError(f"port {text!r}: the number must be between 1 and 65535")
    return ConnectionSet.of({parts[0].upper(): PortSet.single(number)})


def endpoint(rmap: ReachabilityMap, eid: str) -> tuple[int, Endpoint]:
    found = rmap.index_of.get(eid)
    if found is None:
        close = sorted(e.id for e in rmap.endpoints if eid.split("/")[-1] in e.id)[:5]
        hint = f" (did you mean {', '.join(close)}?)" if close else " (see `reachdiff map`)"
        raise UnknownEndpoint(f"{eid} is not an endpoint of this tree{hint}")
    return found, next(e for e in rmap.members[found] if e.id == eid)


def explain_pair(
    rmap: ReachabilityMap,
    src_id: str,
    dst_id: str,
    port: str | None = None,
    question: ConnectionSet | None = None,
) -> Explanation:
    """The decision for ``src_id`` to ``dst_id`` (ids as ``reachdiff map`` writes them),
    on one port, on the ports of ``question`` (a diff's delta), or on every port."""
    s, src = endpoint(rmap, src_id)
    d, dst = endpoint(rmap, dst_id)
    if question is None:
        question = parse_port(port) if port else ALL_CONNECTIONS
    port = port or ("" if question.is_all() else str(question))
    m = rmap.matcher
    steps: list[Step] = []
    results: dict[Direction, ConnectionSet] = {}
    for direction, owner, who in (
        (Direction.EGRESS, s, src),
        (Direction.INGRESS, d, dst),
    ):
        if m.is_external(owner):
            results[direction] = question
            steps.append(
                _default(
                    direction,
                    question,
                    f"{who.id} is an external range: "
                    f"NetworkPolicy does not govern its {direction.field}",
                )
            )
            continue
        results[direction] = _walk(rmap, direction, owner, s, d, question, steps)
    allowed = results[Direction.EGRESS] & results[Direction.INGRESS]
    return Explanation(
        src=src,
        dst=dst,
        question=question,
        port=port,
        allowed=allowed,
        egress=results[Direction.EGRESS],
        ingress=results[Direction.INGRESS],
        steps=tuple(steps),
    )


def _default(
    direction: Direction, ports: ConnectionSet, detail: str, verdict: str = DEFAULT
) -> Step:
    return Step(direction.value, "", "", "", 0, "", "", verdict, ports, detail)


def _walk(
    rmap: ReachabilityMap,
    direction: Direction,
    owner: int,
    src: int,
    dst: int,
    question: ConnectionSet,
    steps: list[Step],
) -> ConnectionSet:
    """The steps of one direction, appended to ``steps``; what it allows of ``question``
    (checked against the matcher's own verdict)."""
    m = rmap.matcher
    if m.calico and direction in m.calico[owner]:
        return calico_steps(rmap, direction, owner, src, dst, question, steps)
    peer = dst if direction is Direction.EGRESS else src
    peer_id = rmap.members[peer][0].id if rmap.members[peer] else str(peer)
    undecided = question

    def cilium_match(c: CompiledCiliumRule, within: ConnectionSet) -> tuple[ConnectionSet, str]:
        return _match(m, c, peer, dst, within, peer_id)

    def tier(
        tiers: Rows, within: ConnectionSet, decided: str, passes: str
    ) -> tuple[ConnectionSet, ConnectionSet, ConnectionSet]:
        # The admin or the baseline tier of this direction: _tier_steps walks it.
        asked = (within, peer, dst, peer_id)
        rules = tiers[owner].get(direction, ())
        return _tier_steps(m, direction, rules, asked, steps, decided=decided, passes=passes)

    undecided, denials = ciliumexplain.deny_steps(m, direction, owner, undecided, cilium_match)
    steps.extend(Step(direction.value, *s) for s in _cilium(denials))
    undecided, allowed, passed = tier(
        m.admin,
        undecided,
        "the connection was decided by an earlier rule",
        "Pass hands these ports to NetworkPolicy",
    )
    remaining = undecided | passed
    rules = m.rules(direction, owner)
    cilium_isolating = ciliumexplain.isolating(m, direction, owner)
    if rules is not None or cilium_isolating:
        np_allowed = NO_CONNECTIONS
        for np_rule in rules or ():
            if not remaining:
                steps.append(
                    _np_step(
                        rmap,
                        direction,
                        np_rule,
                        NOT_REACHED,
                        NO_CONNECTIONS,
                        "the admin tier decided these ports",
                    )
                )
                continue
            hit, detail = _match(m, np_rule, peer, dst, remaining, peer_id)
            np_allowed = np_allowed | hit
            steps.append(
                _np_step(rmap, direction, np_rule, ALLOW if hit else NO_MATCH, hit, detail)
            )
        cilium_allowed, grants = ciliumexplain.allow_steps(
            m, direction, owner, remaining, cilium_match
        )
        np_allowed = np_allowed | cilium_allowed
        steps.extend(Step(direction.value, *s) for s in _cilium(grants))
        denied = remaining - np_allowed
        isolators: tuple[NetworkPolicy | CiliumPolicy, ...] = (
            *m.isolating[owner].get(direction, ()),
            *cilium_isolating,
        )
        for policy in isolators:
            # Each policy selecting the pod isolates it: what no rule allows is denied.
            detail = f"selects the pod for {direction.value}: isolated"
            if denied:
                detail += f"; no rule of the policies selecting it allows {denied}"
            steps.append(
                Step(
                    direction.value,
                    "NetworkPolicy" if isinstance(policy, NetworkPolicy) else policy.kind,
                    policy.id,
                    policy.source.file,
                    policy.source.line,
                    "",
                    "",
                    DENY if denied else ISOLATED,
                    denied,
                    detail,
                )
            )
        allowed = allowed | np_allowed
    else:
        if remaining and not (m.beyond >> owner) & 1:
            steps.append(
                _default(
                    direction,
                    remaining,
                    f"no NetworkPolicy selects the pod for {direction.value}: not isolated",
                    verdict=NOT_ISOLATED,
                )
            )
        remaining, baseline_allowed, baseline_passed = tier(
            m.baseline,
            remaining,
            "the connection was decided before the baseline",
            "Pass skips the rest of the baseline",  # v1alpha2: skips the rest of the baseline
        )
        allowed = allowed | baseline_allowed
        remaining = remaining | baseline_passed
        if remaining and (m.beyond >> owner) & 1:
            # A pod of a namespace outside the tree: its NetworkPolicies, and so whether
            # the baseline applies, are unknown (docs/semantics.md).
            who = rmap.members[owner][0]
            steps.append(
                _default(
                    direction,
                    remaining,
                    f"{who.id} is {who.description}: its namespace's policies are unknown, "
                    f"so its {direction.field} counts as allowed",
                    verdict=UNKNOWN,
                )
            )
            allowed = allowed | remaining
        elif remaining:
            steps.append(
                _default(direction, remaining, f"nothing decided {remaining}: allowed by default")
            )
            allowed = allowed | remaining
    expected = m.verdict(direction, src, dst).allowed & question
    assert allowed == expected, (allowed, expected)  # the steps must tell the verdict
    return allowed


def _tier_steps(
    m: Matcher,
    direction: Direction,
    rules: Sequence[CompiledAdminRule],
    asked: tuple[ConnectionSet, int, int, str],
    steps: list[Step],
    *,
    decided: str,
    passes: str,
) -> tuple[ConnectionSet, ConnectionSet, ConnectionSet]:
    """One admin tier's rules in priority order, the first match deciding each port:
    (what is still undecided, what the tier allows, what it passes on). ``asked``: the
    ports still undecided, the peer, the destination and the peer's id; ``decided`` and
    ``passes`` say why a rule was not reached and what its Pass does."""
    undecided, peer, dst, peer_id = asked
    allowed, passed = NO_CONNECTIONS, NO_CONNECTIONS
    for r in rules:
        if not undecided:
            steps.append(_admin_step(direction, r, NOT_REACHED, NO_CONNECTIONS, decided))
            continue
        hit, detail = _match(m, r, peer, dst, undecided, peer_id)
        if not hit:
            steps.append(_admin_miss(m, direction, r, peer, dst, undecided, detail))
            continue
        undecided = undecided - hit
        action = r.rule.action
        if action is AdminAction.PASS:
            passed = passed | hit
            steps.append(_admin_step(direction, r, PASS, hit, f"{detail}: {passes}"))
            continue
        if action.allows:
            allowed = allowed | hit
        steps.append(_admin_step(direction, r, action.decision.lower(), hit, detail))
    return undecided, allowed, passed


def _admin_miss(
    m: Matcher,
    direction: Direction,
    r: CompiledAdminRule,
    peer: int,
    dst: int,
    undecided: ConnectionSet,
    detail: str,
) -> Step:
    """The step of an admin rule whose peers do not match; when its ``networks`` may hold
    the pod's IP (unknown to a manifest), the run reports it as not analysed."""
    if r.maybe >= 0 and (m.peer_sets[r.maybe] >> peer) & 1:
        hit = undecided & m.ports_at(r, dst)
        if hit:
            why = "its networks may hold the pod's IP, which a manifest does not know"
            return _admin_step(direction, r, UNKNOWN, hit, f"{detail}; {why}")
    return _admin_step(direction, r, NO_MATCH, NO_CONNECTIONS, detail)


def _cilium(
    steps: list[ciliumexplain.StepTuple],
) -> list[tuple[str, str, str, int, str, str, str, ConnectionSet, str]]:
    """Cilium steps as Step fields after the direction (rule names are admin rules' only)."""
    return [(t, p, f, line, r, "", v, ports, d) for t, p, f, line, r, v, ports, d in steps]


def _match(
    m: Matcher,
    rule: CompiledRule | CompiledAdminRule | CompiledCiliumRule,
    peer: int,
    dst: int,
    within: ConnectionSet,
    peer_id: str,
) -> tuple[ConnectionSet, str]:
    """What of ``within`` the rule matches for the pair, and why (not)."""
    if not m.admits(rule, peer):
        return NO_CONNECTIONS, f"{_peers(rule)} does not match {peer_id}"
    ports = m.ports_at(rule, dst)
    hit = within & ports
    if not hit:
        return NO_CONNECTIONS, (
            f"{_peers(rule)} matches {peer_id}, but its ports ({ports or 'none here'}) "
            f"do not include {within}"
        )
    return hit, f"{_peers(rule)} matches {peer_id} on {hit}"


def _peers(rule: CompiledRule | CompiledAdminRule | CompiledCiliumRule) -> str:
    if isinstance(rule, CompiledCiliumRule):
        return ciliumexplain.describe(rule)
    if isinstance(rule, CompiledAdminRule):
        shown = []
        for p in rule.rule.peers:
            if p.kind == "networks":
                shown.append("networks " + ",".join(map(str, p.networks)))
            elif p.kind == "pods":
                shown.append(f"pods {p.pod_selector} in namespaces {p.namespace_selector}")
            else:
                shown.append(f"{p.kind} {p.namespace_selector}")
        return "peer " + " or ".join(shown)
    if not rule.rule.peers:
        return "every peer"
    return "peer " + " or ".join(str(p) for p in rule.rule.peers)


def _admin_step(
    direction: Direction, r: CompiledAdminRule, verdict: str, ports: ConnectionSet, detail: str
) -> Step:
    return Step(
        direction.value,
        r.policy.tier_label,  # as diffs cite it: a ClusterNetworkPolicy's tier is named
        r.policy.id,
        r.rule.source.file,
        r.rule.source.line,
        r.rule.label,
        r.rule.name,
        verdict,
        ports,
        f"{r.rule.action.value} rule: {detail}",
    )


def _np_step(
    rmap: ReachabilityMap,
    direction: Direction,
    r: CompiledRule,
    verdict: str,
    ports: ConnectionSet,
    detail: str,
) -> Step:
    where = exact_rule_source(rmap.tree, r.policy, r.rule)
    return Step(
        direction.value,
        "NetworkPolicy",
        r.policy.id,
        where.file,
        where.line,
        r.rule.label,
        "",
        verdict,
        ports,
        detail,
    )


# ---------------------------------------------------------------------------- rendering


def explanation_json(e: Explanation) -> dict[str, object]:
    return {
        "allowed": e.is_allowed,
        "src": e.src.id,
        "dst": e.dst.id,
        "port": e.port,
        "allowed_ports": e.allowed.to_json(),
        "egress": e.egress.to_json(),
        "ingress": e.ingress.to_json(),
        "steps": [
            {
                "direction": s.direction,
                "tier": s.tier,
                "policy": s.policy,
                "file": s.file,
                "line": s.line,
                "rule": s.rule,
                "rule_name": s.rule_name,
                "verdict": s.verdict,
                "ports": s.ports.to_json(),
                "detail": s.detail,
            }
            for s in e.steps
        ],
    }


def _headline(e: Explanation) -> str:
    what = e.port or "any port"
    if not e.is_allowed:
        return f"{e.src.id} -> {e.dst.id} on {what}: DENIED"
    if e.port or e.allowed == e.question:
        return f"{e.src.id} -> {e.dst.id} on {what}: allowed ({e.allowed})"
    return f"{e.src.id} -> {e.dst.id}: allowed on {e.allowed} only"


def _where(s: Step) -> str:
    return f" ({s.file}:{s.line})" if s.file else ""


def explanation_text(e: Explanation) -> str:
    lines = [_headline(e)]
    for who in (e.src, e.dst):
        if who.is_outside:
            lines.append(f"  {who.id}: {who.description}")
    for direction, result in (("Egress", e.egress), ("Ingress", e.ingress)):
        owner = e.src if direction == "Egress" else e.dst
        lines.append(f"{direction} of {owner.id}: {result or 'nothing'} allowed")
        for n, s in enumerate((s for s in e.steps if s.direction == direction), 1):
            name = f' "{s.rule_name}"' if s.rule_name else ""
            head = " ".join(x for x in (s.tier + ":" if s.tier else "", s.policy, s.rule) if x)
            head = head or "(no policy)"
            lines.append(f"  {n}. {head}{name} → {s.verdict}{_where(s)}")
            lines.append(f"       {s.detail}")
    return "\n".join(lines) + "\n"


def explanation_markdown(e: Explanation) -> str:
    """A Markdown table of the steps; what a manifest names is escaped."""
    lines = [f"**{markdown.text(_headline(e))}**", ""]
    lines += [
        "| # | direction | tier | policy / rule | verdict | where | why |",
        "| ---: | --- | --- | --- | --- | --- | --- |",
    ]
    for n, s in enumerate(e.steps, 1):
        rule = markdown.code(f"{s.policy} {s.rule}".strip(), cell=True) if s.policy else ""
        where = markdown.code(f"{s.file}:{s.line}", cell=True) if s.file else ""
        why = markdown.text(s.detail)
        tier = markdown.text(s.tier)
        lines.append(f"| {n} | {s.direction} | {tier} | {rule} | {s.verdict} | {where} | {why} |")
    return "\n".join(lines) + "\n"
