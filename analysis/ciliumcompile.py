"""Compile a tree's Cilium policies into per-endpoint rows of the matcher.

Cilium resolves, for each endpoint and direction, the rules of every policy selecting it;
the ``fromRequires``/``toRequires`` of those rules are folded into the endpoint selectors of
all of them (allow requirements into allow rules, deny into deny: pkg/policy/repository.go).
Endpoints selected by the same specs get the same rows, so rows are built once per set of
specs; peer sets are shared through the compiler's peer table like any other rule's.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from analysis.ciliumagent import DEFAULT_AGENT, CiliumAgent
from analysis.ciliummodel import (
    ENFORCEMENT_POLICY,
    LOCALHOST_POLICY,
    LOCALHOST_RULE,
    CiliumPolicy,
    CiliumRow,
    CiliumRule,
    CiliumSelector,
    CiliumSpec,
    CompiledCiliumRule,
    resolve_cilium_ports,
)
from analysis.ciliumpeers import FQDN_NAME, FQDN_PATTERN, RESERVED, fqdn_matches
from analysis.model import Direction, IPNetwork, Tree

if TYPE_CHECKING:
    from analysis.compiler import PeerKey, PeerTable, Selectors

KEY = "cilium"
Rows = tuple[dict[Direction, CiliumRow], ...]


def cilium_networks(tree: Tree) -> list[IPNetwork]:
    """Every CIDR the tree's Cilium rules name: where external ranges split."""
    nets: list[IPNetwork] = []
    for policy in tree.cilium_policies:
        for spec in policy.specs:
            for rule in spec.rules:
                for block in rule.blocks:
                    nets.append(block.cidr)
                    nets.extend(block.excepts)
    return nets


def selector_bits(selectors: Selectors, sel: CiliumSelector) -> int:
    reserved = 0
    for identity in sel.identities:  # a peer selector naming reserved: labels
        reserved |= entity_bits(selectors, identity)
    if sel.never:
        return reserved
    return reserved | _pod_bits(selectors, sel)


def _pod_bits(selectors: Selectors, sel: CiliumSelector) -> int:
    bits = selectors.pods(sel.pods)
    if not sel.namespaces.is_empty():
        bits &= selectors.namespaces(sel.namespaces)
    for req in sel.accounts:
        named = 0
        for account in req.values:
            named |= selectors.by_account.get(account, 0)
        bits &= {
            "In": named,
            "NotIn": ~named,
            "Exists": bits,  # every pod runs as some service account
            "DoesNotExist": 0,
        }[req.operator]
    return bits


def fqdn_bits(selectors: Selectors) -> int:
    """The FQDN pseudo-endpoints (``analysis.ciliumpeers``)."""
    bits = 0
    for (key, _), b in selectors.pseudo.items():
        if key in (FQDN_NAME, FQDN_PATTERN):
            bits |= b
    return bits


def entity_bits(selectors: Selectors, entity: str) -> int:
    """The endpoints an entity names (pkg/policy/api/entity.go): ``world`` the external
    ranges and the DNS names' addresses, ``cluster`` every workload and every entity
    endpoint, ``all`` everything, the others their pseudo-endpoint."""
    ranges = (1 << len(selectors.ranges)) - 1
    if entity == "all":
        return selectors.everyone
    if entity == "cluster":
        return selectors.everyone & ~ranges & ~fqdn_bits(selectors)
    if entity.startswith("world"):
        family = {"world": 0, "world-ipv4": 4, "world-ipv6": 6}[entity]
        bits = fqdn_bits(selectors) if family == 0 else 0
        for j, ext in enumerate(selectors.ranges):
            if family in (0, ext.version):
                bits |= 1 << j
        return bits
    return selectors.pseudo.get((RESERVED + entity, ""), 0)


def evaluate_key(selectors: Selectors, key: PeerKey) -> int:
    """The endpoints a Cilium rule admits (see ``rule_key``)."""
    _, endpoints, requires, blocks, entities, wildcard, fqdns, backends = key
    assert isinstance(backends, tuple)
    assert isinstance(endpoints, tuple) and isinstance(requires, tuple)
    assert isinstance(blocks, tuple) and isinstance(entities, tuple)
    assert isinstance(fqdns, tuple)
    if wildcard:
        return selectors.everyone
    required = selectors.everyone
    for req in requires:
        required &= selector_bits(selectors, req)
    bits = 0
    for sel in endpoints:
        bits |= selector_bits(selectors, sel) & required
    for sel in backends:  # toServices: a Service's pods (no requirements folded in)
        bits |= selector_bits(selectors, sel)
    for block in blocks:
        bits |= selectors.ranges_in(block)
    for entity in entities:
        bits |= entity_bits(selectors, entity)
    for (label, name), b in selectors.pseudo.items() if fqdns else ():
        if label in (FQDN_NAME, FQDN_PATTERN) and any(fqdn_matches(f, name) for f in fqdns):
            bits |= b
    return bits


def rule_key(
    rule: CiliumRule, requires: tuple[CiliumSelector, ...], dns_proxy: bool = False
) -> PeerKey:
    """What a rule admits, requirements folded in. With no L3 field, a rule with ports
    admits every endpoint and one without none; requirements apply to endpoint selectors
    only (not to CIDRs or entities). ``toFQDNs`` admit their names only where the agent's
    DNS proxy sees the endpoint's lookups (``dns_proxy``: a DNS rule applies to it)."""
    if rule.selects_nothing or (not rule.l3 and rule.ports is None):
        return (KEY, (), (), (), (), False, (), ())
    if not rule.l3:
        return (KEY, (), (), (), (), True, (), ())
    reqs = requires if rule.endpoints else ()
    fqdns = rule.fqdns if dns_proxy else ()
    return (KEY, rule.endpoints, reqs, rule.blocks, rule.entities, False, fqdns, rule.backends)


def compile_cilium(
    tree: Tree,
    selectors: Selectors,
    peers: PeerTable,
    size: int,
    beyond: int = 0,
    isolated_ingress: int = 0,
    agent: CiliumAgent = DEFAULT_AGENT,
) -> Rows:
    """Per endpoint (``size`` of them), per direction: the Cilium rules governing it.

    ``beyond``: representatives of namespaces outside the tree, whose own policies are
    unknown (``analysis.outside``): a clusterwide policy's deny rules apply to them, but
    whether they are isolated is unknown, so they are not (what is not denied passes).
    ``isolated_ingress``: the endpoints a NetworkPolicy isolates for ingress (where the
    agent's ``allow-localhost`` rule matters too). ``agent``: the agent's options
    (``enable-policy: never`` enforces nothing, ``always`` isolates every pod).
    """
    if not agent.enforces:
        return ()
    if not (tree.cilium_policies or selectors.pseudo or agent.isolates_every_pod):
        return ()  # (the other side of a diff may have Cilium policies: then the agent too)
    rows: list[dict[Direction, CiliumRow]] = [{} for _ in range(size)]
    specs: list[tuple[CiliumPolicy, CiliumSpec]] = [
        (p, s) for p in tree.cilium_policies for s in p.specs
    ]
    selecting: dict[int, list[int]] = {}
    for n, (_, spec) in enumerate(specs):
        bits = selector_bits(selectors, spec.subject)
        for c in _indexes(bits):
            selecting.setdefault(c, []).append(n)
    # allow-localhost: the node's own traffic reaches its pods whatever their ingress
    # policy says; it matters only where ingress is isolated (by any kind).
    localhost = None
    if agent.localhost_allowed and selectors.pseudo.get((RESERVED + "host", "")):
        localhost = CompiledCiliumRule(
            LOCALHOST_POLICY, LOCALHOST_RULE, peers.index(rule_key(LOCALHOST_RULE, ())), None
        )
        for c in _indexes(isolated_ingress & selectors.selectable & ~beyond):
            selecting.setdefault(c, [])
    if agent.isolates_every_pod:  # whether outside namespaces' pods are isolated is unknown
        for c in _indexes(selectors.selectable & ~beyond):
            selecting.setdefault(c, [])
    made: dict[tuple[bool | int, ...], dict[Direction, CiliumRow]] = {}
    compiled: dict[tuple[int, tuple[CiliumSelector, ...], bool], CompiledCiliumRule] = {}
    for c, chosen in selecting.items():
        outside = bool((beyond >> c) & 1)
        signature = (outside, *chosen)
        found = made.get(signature)
        if found is None:
            found = made[signature] = _rows(
                [specs[n] for n in chosen],
                peers,
                compiled,
                outside,
                localhost,
                agent.isolates_every_pod,
            )
        if found:
            rows[c] = found
    return tuple(rows) if any(rows) else ()


def _rows(
    chosen: list[tuple[CiliumPolicy, CiliumSpec]],
    peers: PeerTable,
    compiled: dict[tuple[int, tuple[CiliumSelector, ...], bool], CompiledCiliumRule],
    outside: bool = False,
    localhost: CompiledCiliumRule | None = None,
    always: bool = False,
) -> dict[Direction, CiliumRow]:
    out: dict[Direction, CiliumRow] = {}
    for direction in Direction:
        here = [(p, r) for p, s in chosen for r in s.rules if r.direction is direction]
        isolating = tuple(
            dict.fromkeys(p for p, s in chosen if direction in s.default_deny and not outside)
        )
        if always and not outside:
            isolating += (ENFORCEMENT_POLICY,)
        extra = localhost if direction is Direction.INGRESS and not outside else None
        if not here and not isolating and extra is None:
            continue
        need = {
            deny: tuple(req for _, r in here if r.deny is deny for req in r.requires)
            for deny in (False, True)
        }
        # toFQDNs take effect where the endpoint's lookups go through the DNS proxy.
        dns_proxy = any(r.dns for _, r in here if not r.deny)
        lists: dict[bool, list[CompiledCiliumRule]] = {False: [], True: []}
        for policy, rule in here:
            reqs = need[rule.deny]
            cache = (id(rule), reqs, dns_proxy)
            hit = compiled.get(cache)
            if hit is None or hit.rule is not rule:
                named = rule.ports is not None and any(isinstance(p.port, str) for p in rule.ports)
                hit = compiled[cache] = CompiledCiliumRule(
                    policy=policy,
                    rule=rule,
                    peers=peers.index(rule_key(rule, reqs, dns_proxy)),
                    fixed_ports=None if named else resolve_cilium_ports(rule.ports, ()),
                )
            lists[rule.deny].append(hit)
        if extra is not None:
            lists[False].append(extra)
        out[direction] = CiliumRow(tuple(lists[True]), tuple(lists[False]), isolating)
    return out


def _indexes(bits: int) -> Iterable[int]:
    text = bin(bits)[:1:-1]
    i = text.find("1")
    while i >= 0:
        yield i
        i = text.find("1", i + 1)
