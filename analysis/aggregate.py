"""Path changes grouped for people to read: the same change said once.

A repository turning its policies on changes hundreds of paths, most of them alike: every
workload of a namespace gains (or loses) the same ports to a destination, for the same
rules, and often in several environments at once. Reports (text, Markdown, the pull
request comment) list them through ``aggregate``:

- changes are grouped by destination, as before;
- within a destination, sources of one namespace with the same ports and the same causes
  become one row: ``all 11 workloads of shop`` when they are every workload of the
  namespace, else ``9 of 11 workloads of shop: Deployment/a, …``; when they are every
  workload of the environment, ``all 40 workloads``. "Every" is exact: it is counted
  against the side's ``Population`` (the head for opened paths, the base for closed ones);
- a destination whose rows are the same in several environments is one group that lists
  the environments.

Nothing is dropped or approximated: a row stands for exactly the changes it lists
(``Row.changes``), and JSON output stays one record per path.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from analysis.diff import PathChange
from analysis.model import Tree
from analysis.reachability import Endpoint


@dataclass(frozen=True, slots=True)
class Population:
    """How many workloads each namespace holds on one side, by environment (None when
    the report has only one, unnamed)."""

    counts: tuple[tuple[str | None, str, int], ...] = ()

    @staticmethod
    def of_tree(tree: Tree, environment: str | None) -> Population:
        # Representatives (kind Outside, ``analysis.outside``) are not workloads.
        ids = {(w.namespace, w.kind, w.name) for w in tree.workloads if w.kind != "Outside"}
        counted = Counter(namespace for namespace, _, _ in ids)
        return Population(tuple((environment, ns, n) for ns, n in sorted(counted.items())))

    def __add__(self, other: Population) -> Population:
        return Population(self.counts + other.counts)


@dataclass(frozen=True, slots=True)
class Populations:
    base: Population = Population()
    head: Population = Population()


NO_POPULATIONS = Populations()  # nothing known: no row says "all"


@dataclass(frozen=True, slots=True)
class Ends:
    """One side of a row: one endpoint, or every workload of a namespace or environment."""

    endpoint: Endpoint | None  # the endpoint (its id without environment) when one
    namespace: str = ""  # workloads of this namespace ("" with a count: of the environment)
    count: int = 0  # how many workloads the row stands for when aggregated
    of: int = 0  # how many the namespace holds (0: unknown); count == of: all of them
    members: tuple[str, ...] = ()  # "Kind/name" of each, when not all of them
    new: int = 0  # of them, how many only the head has
    removed: int = 0  # ... only the base has
    ranges: bool = False  # external ranges (``members`` their ids), not workloads

    @property
    def aggregated(self) -> bool:
        return self.endpoint is None

    @property
    def everyone(self) -> bool:
        return not self.members

    def text(self) -> str:
        if self.endpoint is not None:
            return self.endpoint.id
        if self.ranges:
            return ", ".join(self.members)
        if not self.namespace:
            return f"all {self.count} workloads"
        if self.everyone:
            return f"all {self.count} workloads of {self.namespace}"
        of = f" of {self.of}" if self.of else ""
        return f"{self.count}{of} workloads of {self.namespace}: {', '.join(self.members)}"


@dataclass(frozen=True, slots=True)
class Row:
    src: Ends
    changes: tuple[PathChange, ...]  # what the row stands for (all alike but the source)

    @property
    def first(self) -> PathChange:
        return self.changes[0]


@dataclass(frozen=True, slots=True)
class Group:
    dst: Endpoint  # without environment
    environments: tuple[str | None, ...]  # (None,) in a report of one environment
    rows: tuple[Row, ...]

    @property
    def changes(self) -> int:
        return sum(len(r.changes) for r in self.rows) * len(self.environments)


def local(endpoint: Endpoint) -> Endpoint:
    """The endpoint as its environment knows it (its id without the environment)."""
    if endpoint.environment is None:
        return endpoint
    prefix = f"{endpoint.environment or '.'}:"
    return replace(endpoint, id=endpoint.id.removeprefix(prefix), environment=None)


def aggregate(changes: Sequence[PathChange], population: Population) -> tuple[Group, ...]:
    """``changes`` (ordered by destination) as groups of rows; see the module docstring."""
    sizes = {(env, ns): n for env, ns, n in population.counts}
    totals: Counter[str | None] = Counter()
    for env, _, n in population.counts:
        totals[env] += n
    alike = _Alike()
    per_destination: dict[tuple[str | None, str], list[PathChange]] = {}
    for change in changes:
        per_destination.setdefault((change.dst.environment, change.dst.id), []).append(change)
    # Groups of several environments: the same destination with the same rows.
    merged: dict[tuple[object, ...], tuple[Endpoint, list[str | None], tuple[Row, ...]]] = {}
    for (env, _), same_dst in per_destination.items():
        rows = _rows(same_dst, env, sizes, totals[env], alike)
        dst = local(same_dst[0].dst)
        key = (dst.id, *(_row_key(r, alike) for r in rows))
        if key in merged:
            merged[key][1].append(env)
        else:
            merged[key] = (dst, [env], rows)
    return tuple(Group(dst, tuple(envs), rows) for dst, envs, rows in merged.values())


class _Alike:
    """Which changes a row may join: the same ports opened or closed, for the same causes
    (compared by every field; what each source had before may differ, JSON has it per
    path). Numbered by the objects' identity first, since the engine shares them: hashing
    a diff's thousands of port sets and causes again and again is what would cost."""

    def __init__(self) -> None:
        self._by_identity: dict[tuple[int, int], int] = {}
        self._by_value: dict[tuple[object, object], int] = {}

    def __call__(self, change: PathChange) -> int:
        identity = (id(change.delta), id(change.because))
        number = self._by_identity.get(identity)
        if number is None:
            value = (change.delta, change.because)
            number = self._by_value.setdefault(value, len(self._by_value))
            self._by_identity[identity] = number
        return number


def _row_key(row: Row, alike: _Alike) -> tuple[object, ...]:
    src = row.src
    who = src.endpoint.id if src.endpoint is not None else (src.namespace, src.members)
    return (who, len(row.changes), alike(row.first), src.new, src.removed)


def _rows(
    same_dst: Sequence[PathChange],
    env: str | None,
    sizes: dict[tuple[str | None, str], int],
    total: int,
    alike_number: _Alike,
) -> tuple[Row, ...]:
    alike: dict[int, list[PathChange]] = {}
    for change in same_dst:
        alike.setdefault(alike_number(change), []).append(change)
    whole: dict[int, Row] = {}  # position of a namespace's first source -> its row
    covered: set[int] = set()
    position = {id(c): n for n, c in enumerate(same_dst)}
    for members in alike.values():
        by_namespace: dict[str, list[PathChange]] = {}
        external: list[PathChange] = []
        for c in members:
            if c.src.is_external:
                external.append(c)
            elif c.src.is_outside or c.src.is_pseudo:
                continue  # not a workload (a representative, a Cilium entity): its own row
            else:
                by_namespace.setdefault(c.src.namespace, []).append(c)
        if len(external) >= 2:
            ids = tuple(local(c.src).id for c in external)
            whole[position[id(external[0])]] = Row(
                Ends(None, count=len(external), members=ids, ranges=True), tuple(external)
            )
            covered.update(id(c) for c in external)
        complete = {ns for ns, cs in by_namespace.items() if len(cs) == sizes.get((env, ns), -1)}
        workloads = sum(len(cs) for cs in by_namespace.values())
        if len(complete) >= 2 and len(complete) == len(by_namespace) and workloads == total:
            everyone = [c for cs in by_namespace.values() for c in cs]
            first = min(position[id(c)] for c in everyone)
            whole[first] = _aggregated(everyone, "", workloads, everyone=True)
            covered.update(id(c) for c in everyone)
            continue
        for ns, cs in by_namespace.items():
            if len(cs) < 2:
                continue
            size = sizes.get((env, ns), 0)
            whole[position[id(cs[0])]] = _aggregated(cs, ns, size, everyone=ns in complete)
            covered.update(id(c) for c in cs)
    out: list[Row] = []
    for n, change in enumerate(same_dst):
        if n in whole:
            out.append(whole[n])
        if id(change) not in covered:
            out.append(Row(Ends(local(change.src)), (change,)))
    return tuple(out)


def _aggregated(changes: Iterable[PathChange], namespace: str, size: int, *, everyone: bool) -> Row:
    cs = tuple(changes)
    ends = Ends(
        None,
        namespace=namespace,
        count=len(cs),
        of=size,
        members=() if everyone else tuple(f"{c.src.kind}/{c.src.name}" for c in cs),
        new=sum(1 for c in cs if c.src_new),
        removed=sum(1 for c in cs if c.src_removed),
    )
    return Row(ends, cs)


def rows_of(groups: Iterable[Group]) -> int:
    return sum(len(g.rows) for g in groups)


def describe_environments(environments: Sequence[str | None]) -> str:
    """``overlays/prod, overlays/staging``; "" for a report of one unnamed environment."""
    names = [e for e in environments if e is not None]
    return ", ".join(e or "plain manifests" for e in names)
