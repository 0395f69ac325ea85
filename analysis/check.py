"""Intents and connectivity tests evaluated over a tree's reachability (``reachdiff check``).

Work is done per *group*: the workloads of one pod class that the declarations' endpoint
selectors also treat alike (same matches). Every member of a group behaves like every
other under the policies and under the declarations, so each pair of groups is decided
once from the map's rows and columns (which are themselves computed per class) and only
then expanded into one violation per pair of endpoints, the way ``map`` reports paths.

- ``forbidden``: an allowed path a ``deny`` entry names (its ports included);
- ``undeclared``: an allowed path to or from an endpoint of an intent's ``scope`` on ports
  no ``allow`` entry of any intent covers (declarations are shared: an allow written in
  one intent declares the path for every intent whose scope it touches);
- ``blocked``: a ``required`` allow whose ports the policies do not all allow;
- ``test``: a connectivity test case whose expectation does not hold.

A pair neither side of which any policy of the tree governs (two external ranges, two
pods of namespaces outside the tree) is not a path of the map and is never judged.

Why one module of 550 lines: ``_Checker`` is one algorithm (groups of alike
workloads, then pairs of groups, then violations) whose steps share its group index;
split, each part would need that index passed through every call.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

from analysis.ciliumpeers import with_pseudo
from analysis.compiler import compile_tree
from analysis.explain import ALLOWS, DENIES, ISOLATES, Cause, decision_causes
from analysis.intents import (
    EGRESS,
    INGRESS,
    Declarations,
    EndpointSelector,
    Intent,
    namespace_name_selector,
)
from analysis.matcher import Decision, Matcher
from analysis.model import (
    NAMESPACE_NAME_LABEL,
    Direction,
    LabelSelector,
    NetworkPolicy,
    Peer,
    PolicyRule,
    Source,
    Tree,
)
from analysis.outside import OUTSIDE_KIND, ClusterScope, with_outside
from analysis.ports import NO_CONNECTIONS, ConnectionSet
from analysis.reachability import Endpoint, Line, ReachabilityMap, map_of

FORBIDDEN, UNDECLARED, BLOCKED, TEST = "forbidden", "undeclared", "blocked", "test"
TYPES = (FORBIDDEN, UNDECLARED, BLOCKED, TEST)


@dataclass(frozen=True, slots=True)
class Declared:
    """The declaration a violation is about: an intent's entry or a test case."""

    kind: str  # Intent | ConnectivityTest
    name: str
    entry: str  # deny[0], scope[1], allow[2], cases[0]
    file: str
    line: int


@dataclass(frozen=True, slots=True)
class Violation:
    type: str  # forbidden | undeclared | blocked | test
    src: Endpoint | None  # None: no endpoint matches the entry's `from`
    dst: Endpoint | None
    ports: ConnectionSet  # the ports at fault
    intent: Declared
    because: tuple[Cause, ...]
    detail: str = ""
    expect: str = ""  # test cases: allowed | denied
    actual: str = ""  # test cases: allowed | denied | partly allowed (…) | no endpoint


@dataclass(frozen=True, slots=True)
class CheckResult:
    violations: tuple[Violation, ...]
    declarations: Declarations
    # Endpoint selectors of scope, allow and deny entries that match no workload the
    # tree defines (pods outside it and ranges aside): valid, but most likely a typo,
    # and an entry that names nothing checks nothing. Each with the side it is in
    # (``scope[0]``, ``allow[1].from``); reported as warnings.
    unmatched: tuple[Declared, ...] = ()

    @property
    def passed(self) -> bool:
        return not self.violations


def declared_map(
    tree: Tree,
    declarations: Declarations,
    scope: ClusterScope = ClusterScope.COMPLETE,
    compared: Sequence[Tree] = (),
) -> ReachabilityMap:
    """The map the declarations are evaluated over: external ranges cut by their CIDRs
    and, under a partial scope, representatives split by their selectors too, so that
    every representative is wholly inside or outside each selector. ``compared``: the
    other trees whose representatives must be the same (both sides of a diff), so that
    a violation is new only when the pods it concerns are."""
    if scope is ClusterScope.PARTIAL:
        others = tuple(t for t in compared if t is not tree)
        trees = (tree, *others, selector_tree(declarations))
        tree = with_outside(tree, trees)
    tree = with_pseudo(tree, (tree, *compared))
    return map_of(tree, compile_tree(tree, declarations.networks()))


def selector_tree(declarations: Declarations) -> Tree:
    """The declarations' pod and namespace selectors as policy peers, for splitting the
    representatives of pods outside the tree (``analysis.outside``); never compiled."""
    rules = []
    for n, sel in enumerate(declarations.selectors()):
        if not sel.names_pods:
            continue
        namespaces = sel.namespace_selector
        if sel.namespaces:
            by_name = namespace_name_selector(sel.namespaces)
            base = namespaces or LabelSelector()
            namespaces = LabelSelector(
                base.match_labels, base.match_expressions + by_name.match_expressions
            )
        peer = Peer(sel.source, sel.pod_selector, namespaces or LabelSelector())
        rules.append(PolicyRule(Direction.INGRESS, n, sel.source, (peer,)))
    if not rules:
        return Tree()
    policy = NetworkPolicy(
        "~declarations",
        "selectors",
        LabelSelector((("~none", "~none"),)),
        frozenset({Direction.INGRESS}),
        tuple(rules),
        (),
        Source("", 0),
    )
    return Tree(policies=(policy,))


def check(rmap: ReachabilityMap, declarations: Declarations) -> CheckResult:
    """Every violation of the declarations in the map (made by ``declared_map``)."""
    checker = _Checker(rmap, declarations)
    return CheckResult(checker.run(), declarations, checker.unmatched())


_NO_SOURCE = Source("", 0)
_FEW_ROWS = 16


def _key(sel: EndpointSelector) -> EndpointSelector:
    return replace(sel, source=_NO_SOURCE)


class _Checker:
    def __init__(self, rmap: ReachabilityMap, declarations: Declarations) -> None:
        self.rmap, self.decls = rmap, declarations
        self.matcher: Matcher = rmap.matcher
        distinct: dict[EndpointSelector, int] = {}
        for sel in declarations.selectors():
            distinct.setdefault(_key(sel), len(distinct))
        self.bit = {k: 1 << n for k, n in distinct.items()}
        ns_labels = rmap.tree.namespace_labels()
        # (class or range, signature) -> members; per class, its groups
        self.groups: dict[int, list[tuple[int, tuple[Endpoint, ...]]]] = {}
        for k, members in enumerate(rmap.members):
            if not members:
                continue
            by_sig: dict[int, list[Endpoint]] = {}
            for e in members:
                sig = 0
                for sel, bit in self.bit.items():
                    if _matches(sel, e, self.matcher, k, ns_labels):
                        sig |= bit
                by_sig.setdefault(sig, []).append(e)
            self.groups[k] = [(sig, tuple(m)) for sig, m in by_sig.items()]
        self.out: list[Violation] = []
        self._rows: dict[int, Line] | None = None
        self._rows_read = 0
        self.cause_memo: dict[tuple[object, ...], tuple[Cause, ...]] = {}

    def of(self, sel: EndpointSelector) -> list[tuple[int, int, tuple[Endpoint, ...]]]:
        bit = self.bit[_key(sel)]
        return [
            (k, sig, members)
            for k, groups in self.groups.items()
            for sig, members in groups
            if sig & bit
        ]

    def run(self) -> tuple[Violation, ...]:
        for intent in self.decls.intents:
            for c in intent.deny:
                self._forbidden(intent, c.entry, c.src, c.dst, c.ports, c.source)
            for c in intent.allow:
                if c.required:
                    self._blocked(intent, c.entry, c.src, c.dst, c.ports, c.source)
        self._undeclared()
        for test in self.decls.tests:
            for case in test.cases:
                where = Declared(
                    "ConnectivityTest", test.name, case.entry, case.source.file, case.source.line
                )
                self._case(where, case.src, case.dst, case.ports, case.expect_allowed)
        rank = {e.id: n for n, e in enumerate(self.rmap.endpoints)}
        return tuple(sorted(self.out, key=lambda v: _order(v, rank)))

    def unmatched(self) -> tuple[Declared, ...]:
        """Pod selectors of the intents that match no workload of the tree itself."""
        defined = 0
        for groups in self.groups.values():
            for sig, members in groups:
                if any(not e.is_external and not e.is_outside for e in members):
                    defined |= sig
        out = []
        for intent in self.decls.intents:
            entries = [(f"scope[{n}]", sel, sel.source) for n, sel in enumerate(intent.scope)]
            for c in intent.allow + intent.deny:
                entries += [
                    (f"{c.entry}.from", c.src, c.source),
                    (f"{c.entry}.to", c.dst, c.source),
                ]
            for entry, sel, where in entries:
                if sel.names_pods and not defined & self.bit[_key(sel)]:
                    out.append(Declared("Intent", intent.name, entry, where.file, where.line))
        return tuple(out)

    # -- the rules

    def _forbidden(
        self,
        intent: Intent,
        entry: str,
        src: EndpointSelector,
        dst: EndpointSelector,
        ports: ConnectionSet,
        where: Source,
    ) -> None:
        declared = Declared("Intent", intent.name, entry, where.file, where.line)
        for s, ss, d, dd, allowed in self._allowed_pairs(self.of(src), self.of(dst)):
            hit = allowed & ports
            if hit:
                self._emit(FORBIDDEN, ss, dd, hit, declared, self._allowing(s, d, hit))

    def _blocked(
        self,
        intent: Intent,
        entry: str,
        src: EndpointSelector,
        dst: EndpointSelector,
        ports: ConnectionSet,
        where: Source,
    ) -> None:
        declared = Declared("Intent", intent.name, entry, where.file, where.line)
        sources, destinations = self.of(src), self.of(dst)
        if not sources or not destinations:
            self._nothing(BLOCKED, declared, ports, sources, destinations)
            return
        for s, ss, d, dd in self._governed(sources, destinations):
            missing = ports - self.column(d).get(s, NO_CONNECTIONS)
            if missing:
                self._emit(BLOCKED, ss, dd, missing, declared, self._denying(s, d, missing))

    def _case(
        self,
        declared: Declared,
        src: EndpointSelector,
        dst: EndpointSelector,
        ports: ConnectionSet,
        expect_allowed: bool,
    ) -> None:
        expect = "allowed" if expect_allowed else "denied"
        sources, destinations = self.of(src), self.of(dst)
        if not sources or not destinations:
            self._nothing(TEST, declared, ports, sources, destinations, expect)
            return
        if not expect_allowed:
            # Only allowed pairs can fail a test expecting `denied`.
            for s, ss, d, dd, allowed in self._allowed_pairs(sources, destinations):
                hit = allowed & ports
                if hit:
                    actual = "allowed" if hit == ports else f"partly allowed ({hit})"
                    because = self._allowing(s, d, hit)
                    self._emit(TEST, ss, dd, hit, declared, because, expect=expect, actual=actual)
            return
        for s, ss, d, dd in self._governed(sources, destinations):
            allowed = self.column(d).get(s, NO_CONNECTIONS) & ports
            if allowed != ports:
                missing = ports - allowed
                actual = f"partly allowed ({allowed})" if allowed else "denied"
                because = self._denying(s, d, missing)
                self._emit(TEST, ss, dd, missing, declared, because, expect=expect, actual=actual)

    def _undeclared(self) -> None:
        intents = self.decls.intents
        scoped: list[tuple[Intent, int, int, int]] = [
            (intent, n, *self._scope_bits(intent, n))
            for intent in intents
            for n in range(len(intent.scope))
        ]
        if not scoped:
            return
        allows = [
            (self.bit[_key(c.src)], self.bit[_key(c.dst)], c.ports)
            for intent in intents
            for c in intent.allow
        ]
        declared_memo: dict[tuple[int, int], ConnectionSet] = {}

        def declared(ss: int, ds: int) -> ConnectionSet:
            found = declared_memo.get((ss, ds))
            if found is None:
                found = NO_CONNECTIONS
                for sb, db, ports in allows:
                    if ss & sb and ds & db:
                        found = found | ports
                declared_memo[(ss, ds)] = found
            return found

        # Classes whose paths out of them (into them) some scope entry judges.
        egress_bits = ingress_bits = 0
        for _, _, out_bit, in_bit in scoped:
            egress_bits |= out_bit
            ingress_bits |= in_bit
        seen: set[tuple[int, int, int, int]] = set()
        for k, groups in self.groups.items():
            for sig, _ in groups:
                for d in (None, k):
                    if not sig & (egress_bits if d is None else ingress_bits):
                        continue
                    line = self.row(k) if d is None else self.column(k)
                    for other, allowed in line.items():
                        for osig, _ in self.groups.get(other, ()):
                            src, dst = (k, other) if d is None else (other, k)
                            ssig, dsig = (sig, osig) if d is None else (osig, sig)
                            if (src, ssig, dst, dsig) in seen:
                                continue
                            seen.add((src, ssig, dst, dsig))
                            rest = allowed - declared(ssig, dsig)
                            if rest:
                                self._undeclared_pair(scoped, src, ssig, dst, dsig, rest)

    def _scope_bits(self, intent: Intent, n: int) -> tuple[int, int]:
        """The selector bit of ``scope[n]`` as a source (egress judged) and as a
        destination (ingress judged); 0 for the direction it leaves out."""
        bit = self.bit[_key(intent.scope[n])]
        direction = intent.direction(n)
        return (0 if direction == INGRESS else bit), (0 if direction == EGRESS else bit)

    def _undeclared_pair(
        self,
        scoped: Sequence[tuple[Intent, int, int, int]],
        s: int,
        ssig: int,
        d: int,
        dsig: int,
        rest: ConnectionSet,
    ) -> None:
        sources = self._members(s, ssig)
        destinations = self._members(d, dsig)
        because = self._allowing(s, d, rest)
        reported: set[str] = set()
        for intent, n, out_bit, in_bit in scoped:
            if intent.name in reported or not (ssig & out_bit or dsig & in_bit):
                continue
            reported.add(intent.name)
            sel = intent.scope[n]
            declared = Declared(
                "Intent", intent.name, f"scope[{n}]", sel.source.file, sel.source.line
            )
            self._emit(UNDECLARED, sources, destinations, rest, declared, because)

    # -- pairs

    def column(self, d: int) -> Line:
        return self.rmap.column(d)

    def row(self, s: int) -> Line:
        """A row, from the whole map read column by column: the engine builds a column
        (one egress check per source block) several times faster than a row, so past a
        few rows reading everything once is the cheaper way."""
        if self._rows is None:
            self._rows_read += 1
            if self._rows_read <= _FEW_ROWS:
                return self.rmap.row(s)
            self._rows = {}
            for (src, dst), conn in self.rmap.class_connections.items():
                self._rows.setdefault(src, {})[dst] = conn
        return self._rows.get(s, {})

    def _members(self, k: int, sig: int) -> tuple[Endpoint, ...]:
        return next(m for s, m in self.groups[k] if s == sig)

    def _free(self, k: int) -> bool:
        """A range or a pod of a namespace outside the tree: no policy of it is known."""
        return self.matcher.is_external(k) or bool((self.matcher.beyond >> k) & 1)

    def _governed(
        self,
        sources: list[tuple[int, int, tuple[Endpoint, ...]]],
        destinations: list[tuple[int, int, tuple[Endpoint, ...]]],
    ) -> Iterator[tuple[int, tuple[Endpoint, ...], int, tuple[Endpoint, ...]]]:
        for s, _, ss in sources:
            for d, _, dd in destinations:
                if not (self._free(s) and self._free(d)):
                    yield s, ss, d, dd

    def _allowed_pairs(
        self,
        sources: list[tuple[int, int, tuple[Endpoint, ...]]],
        destinations: list[tuple[int, int, tuple[Endpoint, ...]]],
    ) -> Iterator[tuple[int, tuple[Endpoint, ...], int, tuple[Endpoint, ...], ConnectionSet]]:
        """Allowed pairs of groups: the lines of the smaller side (columns of the
        destinations, or rows of the sources), each read once and walked for what it
        allows, so the work is the allowed pairs, not every pair of the two sides."""
        by_src: dict[int, list[tuple[Endpoint, ...]]] = {}
        for k, _, members in sources:
            by_src.setdefault(k, []).append(members)
        by_dst: dict[int, list[tuple[Endpoint, ...]]] = {}
        for k, _, members in destinations:
            by_dst.setdefault(k, []).append(members)
        if len(by_src) < len(by_dst):
            for s, src_groups in by_src.items():
                for d, allowed in self.row(s).items():
                    for dd in by_dst.get(d, ()):
                        for ss in src_groups:
                            yield s, ss, d, dd, allowed
            return
        for d, dst_groups in by_dst.items():
            for s, allowed in self.column(d).items():
                for ss in by_src.get(s, ()):
                    for dd in dst_groups:
                        yield s, ss, d, dd, allowed

    # -- causes

    def _allowing(self, s: int, d: int, ports: ConnectionSet) -> tuple[Cause, ...]:
        """The rules that allow ``ports`` from ``s`` to ``d``, in both directions."""
        return self._causes(s, d, ports, allowing=True)

    def _denying(self, s: int, d: int, ports: ConnectionSet) -> tuple[Cause, ...]:
        """The admin Deny rules and the isolating policies that keep ``ports`` closed."""
        return self._causes(s, d, ports, allowing=False)

    def _causes(self, s: int, d: int, ports: ConnectionSet, allowing: bool) -> tuple[Cause, ...]:
        # Per direction: a verdict object stands for every pair its owner's rules treat
        # alike (``Matcher.verdict``), so its causes are found once per verdict and ports.
        ingress = self._direction_causes(Direction.INGRESS, s, d, ports, allowing)
        egress = self._direction_causes(Direction.EGRESS, s, d, ports, allowing)
        if not egress:
            return ingress
        if not ingress:
            return egress
        return tuple(dict.fromkeys(ingress + egress))

    def _direction_causes(
        self, direction: Direction, s: int, d: int, ports: ConnectionSet, allowing: bool
    ) -> tuple[Cause, ...]:
        verdict = self.matcher.verdict(direction, s, d)
        key = (allowing, direction, ports, id(verdict))
        found = self.cause_memo.get(key)
        if found is not None:
            return found
        out: list[Cause] = []
        for dec in verdict.decisions:
            if not dec.ports & ports:
                continue
            if allowing and dec.action == "Allow":
                out += self._cited(dec, direction, ALLOWS)
            elif not allowing and dec.action == "Deny":
                out += self._cited(dec, direction, DENIES)
            elif not allowing and dec.action == "Isolate":
                out += self._cited(dec, direction, ISOLATES)
        found = self.cause_memo[key] = tuple(dict.fromkeys(out))
        return found

    def _cited(self, dec: Decision, direction: Direction, reason: str) -> tuple[Cause, ...]:
        """A decision's causes, once per rule (or isolating policies): finding a rule's
        exact line may read its file again."""
        what: object = id(dec.rule) if dec.rule is not None else tuple(map(id, dec.policies))
        key = ("cited", what, direction, reason)
        found = self.cause_memo.get(key)
        if found is None:
            made = decision_causes(dec, direction, "head", reason, self.rmap)
            found = self.cause_memo[key] = tuple(made)
        return found

    # -- output

    def _emit(
        self,
        kind: str,
        sources: Sequence[Endpoint],
        destinations: Sequence[Endpoint],
        ports: ConnectionSet,
        declared: Declared,
        because: tuple[Cause, ...],
        expect: str = "",
        actual: str = "",
    ) -> None:
        detail = "" if because else _unexplained(kind)
        for src in sources:
            for dst in destinations:
                self.out.append(
                    Violation(kind, src, dst, ports, declared, because, detail, expect, actual)
                )

    def _nothing(
        self,
        kind: str,
        declared: Declared,
        ports: ConnectionSet,
        sources: Sequence[object],
        destinations: Sequence[object],
        expect: str = "",
    ) -> None:
        side = "from" if not sources else "to"
        outcome = expect or "allowed"
        detail = f"no endpoint of the tree matches `{side}`, so nothing can be {outcome}"
        self.out.append(
            Violation(kind, None, None, ports, declared, (), detail, expect, "no endpoint")
        )


def _unexplained(kind: str) -> str:
    if kind in (BLOCKED, TEST):
        return ""
    return "no policy isolates either end on these ports (allowed by default)"


def _matches(
    sel: EndpointSelector,
    e: Endpoint,
    matcher: Matcher,
    k: int,
    ns_labels: dict[str, dict[str, str]],
) -> bool:
    if e.is_external:
        if sel.names_pods:
            return False
        if sel.cidr is None:
            return True
        return all(
            (net := ipaddress.ip_network(c)).version == sel.cidr.version and net.subnet_of(sel.cidr)  # type: ignore[arg-type]
            for c in e.cidrs
        )
    if sel.cidr is not None:
        return False
    labels = ns_labels.get(e.namespace, {})
    if sel.namespaces and labels.get(NAMESPACE_NAME_LABEL) not in sel.namespaces:
        return False
    if sel.namespace_selector is not None and not sel.namespace_selector.matches(labels):
        return False
    if sel.workloads:
        if e.kind == OUTSIDE_KIND:
            return False  # pods the tree does not define are no workload of it
        if not any(name == e.name and kind in ("", e.kind) for kind, name in sel.workloads):
            return False
    if sel.pod_selector is not None:
        return sel.pod_selector.matches(dict(matcher.pod_class(k).labels))
    return True


_TYPE_ORDER = {t: n for n, t in enumerate(TYPES)}


def _order(v: Violation, rank: dict[str, int]) -> tuple[object, ...]:
    """By type, declaration, then source and destination as maps sort endpoints."""
    return (
        _TYPE_ORDER[v.type],
        v.intent.file,
        v.intent.line,
        v.intent.name,
        v.intent.entry,
        -1 if v.src is None else rank[v.src.id],
        -1 if v.dst is None else rank[v.dst.id],
    )
