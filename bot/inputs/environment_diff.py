"""Review what will actually be applied: one diff per environment, merged for reporting.

A repository of plain manifests is one environment, read with the engine's fast loader;
its head is read as a change to the base (``diff_plain``). Kustomize overlays and Helm
charts are rendered first (``bot.inputs.environments``), each root one environment. Environments
are paired by name across the two trees (a missing one is empty). When there is more than
one environment, or the only one is not the plain manifests, endpoint ids carry the
environment: ``overlays/prod:shop/Deployment/web``.

``EnvironmentTree``, ``load_environments``, ``is_plain`` and ``RENDER_CACHE`` live in
``bot.inputs.environment_trees`` and are re-exported here, where their readers import them.

Why one module of 510 lines: one flow, the diff of two repositories by environment
(pairing each side's environments, the plain and prepared paths, the merge into one
report), whose parts share ``MultiDiff`` and the side each error names.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from analysis import incremental, unmodelled
from analysis.aggregate import NO_POPULATIONS, Population, Populations
from analysis.ciliumagent import CiliumAgent
from analysis.ciliumauth import authentication_changes
from analysis.customkinds import WorkloadKinds
from analysis.decision import Explanation, explain_pair
from analysis.diff import PathChange, ReachabilityDiff
from analysis.errors import DuplicateObjectError, ManifestError
from analysis.frontends import NO_FRONTENDS, Frontends
from analysis.idle import IdlePolicy, idle_changed_policies
from analysis.manifests import MANIFEST_SUFFIXES
from analysis.model import Tree
from analysis.outside import ClusterScope
from analysis.parsecache import ParseCache
from analysis.prepared import PreparedBase, diff_prepared, prepared
from analysis.reachability import Endpoint
from analysis.treestate import TreeState, apply_changes
from analysis.unknowns import unknown_matches
from bot.inputs.chartfiles import unrendered_values_changes
from bot.inputs.environment_bases import EnvironmentBases, diff_environment
from bot.inputs.environment_trees import RENDER_CACHE as RENDER_CACHE
from bot.inputs.environment_trees import EnvironmentTree as EnvironmentTree
from bot.inputs.environment_trees import is_plain as is_plain
from bot.inputs.environment_trees import load_environments as load_environments
from bot.inputs.parallel_load import load_state_parallel
from bot.inputs.render_cache import RenderCache
from bot.inputs.unrooted import unrooted_changes

if TYPE_CHECKING:
    from bot.inputs.exposure import ExposureReview


@dataclass(frozen=True, slots=True)
class MultiDiff:
    """The diffs of every environment, endpoints qualified by environment when needed."""

    opened: tuple[PathChange, ...]
    closed: tuple[PathChange, ...]
    added_endpoints: tuple[Endpoint, ...]
    removed_endpoints: tuple[Endpoint, ...]
    environments: tuple[str, ...]
    notes: tuple[str, ...]
    unanalysed: tuple[str, ...]  # non-empty: part of the change could not be reviewed
    per_environment: tuple[tuple[str, ReachabilityDiff], ...] = ()
    # Why the base could not be read, when it could not: the head was then analysed on its
    # own, every path it allows counted as opened (see ``diff_head_alone``).
    base_error: str = ""
    # How many workloads each namespace holds on each side, for reports that say "all 11
    # workloads of shop" (``analysis.aggregate``).
    populations: Populations = NO_POPULATIONS
    # Policies of kinds reachdiff does not model, in either tree: not analysed unless the
    # settings' ignore_kinds names them (``unmodelled.split``).
    unmodelled: tuple[unmodelled.Finding, ...] = ()
    # Changed policies that select no workload of their tree: reported, never passed.
    idle_policies: tuple[IdlePolicy, ...] = ()
    # Per environment, the base's and the head's frontends (``EnvironmentTree.frontends``);
    # empty for plain manifests read as a change to a prepared base (read them from files).
    frontends: tuple[tuple[str, Frontends, Frontends], ...] = ()
    # The exposure comparison, when a caller made one (``bot.inputs.exposure``; read by
    # ``bot.review.verdict.assess`` as the bot's analysis result carries it).
    exposure: ExposureReview | None = None

    @property
    def widening(self) -> bool:
        return bool(self.opened)


class SideError(ManifestError):
    """Bad input on one side of a diff; ``str()`` starts with ``base:`` or ``head:``."""

    def __init__(
        self, side: str, file: str, line: int, message: str, *, alternatives: bool = False
    ) -> None:
        super().__init__(file, line, message)
        self.side = side
        self.args = (f"{side}: {file}:{line}: {message}",)
        # Two plain files define one object: alternatives, which the plain fast path does
        # not split (``load_environments`` does; ``bot.inputs.alternatives``).
        self.alternatives = alternatives

    def __reduce__(self) -> tuple[type[SideError], tuple[str, str, int, str]]:  # type: ignore[override]
        return (SideError, (self.side, self.file, self.line, self.message))


@contextmanager
def side(name: str) -> Iterator[None]:
    """Name the side ("base" or "head") of every manifest error raised inside."""
    try:
        yield
    except SideError:
        raise
    except ManifestError as err:
        split = isinstance(err, DuplicateObjectError) and err.across_files
        raise SideError(name, err.file, err.line, err.message, alternatives=split) from None


def diff_files(
    base_files: Mapping[str, bytes] | None,
    head_files: Mapping[str, bytes],
    *,
    kustomize_roots: Sequence[str] | None = None,
    helm_values: Mapping[str, Sequence[str]] | None = None,
    base_error: str = "",
    scope: ClusterScope = ClusterScope.PARTIAL,
    workload_kinds: WorkloadKinds = (),
    cilium_agent: CiliumAgent | None = None,
    bases: EnvironmentBases | None = None,
    cache: RenderCache[EnvironmentTree] | None = RENDER_CACHE,
    parse_cache: ParseCache | None = None,
    as_environments: bool = False,
) -> MultiDiff:
    """The diff of two repository trees, errors naming their side. With ``bases``,
    rendered environments are compiled once per render key and reviewed incrementally
    (``bot.inputs.environment_bases``). Both sides are read with ``parse_cache`` (None:
    one for this diff; ``analysis.parsecache``). ``as_environments`` skips the fast path
    of plain manifests (a caller knows a side holds alternatives: ``bot.inputs.alternatives``).

    A base that cannot be read (``None``, with ``base_error`` saying why, or invalid
    manifests) does not block the pull request that fixes it: the head is analysed on its
    own (``diff_head_alone``). An invalid head raises ``SideError`` naming ``head``.
    """

    def alone(why: str) -> MultiDiff:
        return diff_head_alone(
            head_files,
            why,
            kustomize_roots=kustomize_roots,
            helm_values=helm_values,
            workload_kinds=workload_kinds,
            cilium_agent=cilium_agent,
            scope=scope,
        )

    if base_files is None:
        return alone(base_error)
    parse_cache = parse_cache if parse_cache is not None else ParseCache()
    try:
        if not as_environments and is_plain(base_files) and is_plain(head_files):
            try:
                return diff_plain_files(
                    base_files,
                    head_files,
                    scope=scope,
                    workload_kinds=workload_kinds,
                    cilium_agent=cilium_agent,
                )
            except SideError as err:
                if not err.alternatives:
                    raise
                # Alternative deliverables: reviewed as environments, below.
        with side("base"):
            base = load_environments(
                base_files,
                kustomize_roots=kustomize_roots,
                helm_values=helm_values,
                workload_kinds=workload_kinds,
                cilium_agent=cilium_agent,
                cache=cache,
                parse_cache=parse_cache,
            )
    except SideError as err:
        if err.side != "base":
            raise
        return alone(str(err))
    with side("head"):
        head = load_environments(
            head_files,
            kustomize_roots=kustomize_roots,
            helm_values=helm_values,
            workload_kinds=workload_kinds,
            cilium_agent=cilium_agent,
            cache=cache,
            parse_cache=parse_cache,
        )
    diff = diff_environments(base, head, scope, bases)
    unrendered = unrendered_values_changes(base_files, head_files, helm_values)
    unrendered += unrooted_changes(base_files, head_files, kustomize_roots)
    if unrendered:
        diff = dataclasses.replace(diff, unanalysed=diff.unanalysed + tuple(unrendered))
    return diff


def diff_head_alone(
    head_files: Mapping[str, bytes],
    base_error: str,
    *,
    kustomize_roots: Sequence[str] | None = None,
    helm_values: Mapping[str, Sequence[str]] | None = None,
    scope: ClusterScope = ClusterScope.PARTIAL,
    workload_kinds: WorkloadKinds = (),
    cilium_agent: CiliumAgent | None = None,
) -> MultiDiff:
    """The review of a head whose base cannot be read: every path the head allows counts
    as opened. Nothing is called new or removed (the base is unknown), so no setting such
    as ``new_workloads_widen`` can wave a path through; ``base_error`` says why."""
    with side("head"):
        diff: MultiDiff | None = None
        if is_plain(head_files):
            try:
                diff = diff_plain_files(
                    {}, head_files, scope, workload_kinds=workload_kinds, cilium_agent=cilium_agent
                )
            except SideError as err:
                if not err.alternatives:
                    raise  # alternatives are read as environments, below
        if diff is None:
            head = load_environments(
                head_files,
                kustomize_roots=kustomize_roots,
                helm_values=helm_values,
                workload_kinds=workload_kinds,
                cilium_agent=cilium_agent,
            )
            diff = diff_environments([], head, scope)
    return dataclasses.replace(
        diff,
        opened=tuple(dataclasses.replace(c, src_new=False, dst_new=False) for c in diff.opened),
        added_endpoints=(),
        base_error=base_error or "the base could not be read",
    )


def diff_environments(
    base: Sequence[EnvironmentTree],
    head: Sequence[EnvironmentTree],
    scope: ClusterScope = ClusterScope.PARTIAL,
    bases: EnvironmentBases | None = None,
) -> MultiDiff:
    """The diffs of environments paired by name (``pair_environments``); with ``bases``,
    each environment's base is compiled once per key and one whose key did not change is
    not compared."""
    results = []
    pairs, notes = pair_environments(base, head)
    for name, b, h in pairs:
        diff = diff_environment(
            b.tree if b else Tree(),
            h.tree if h else Tree(),
            scope,
            base_key=b.key if b else "",
            head_key=h.key if h else "",
            bases=bases,
        )
        results.append((name, b, h, diff))
    merged = _merge(results)
    return dataclasses.replace(merged, notes=tuple(notes) + merged.notes)


def pair_environments(
    base: Sequence[EnvironmentTree], head: Sequence[EnvironmentTree]
) -> tuple[list[tuple[str, EnvironmentTree | None, EnvironmentTree | None]], list[str]]:
    """(name, base, head) of every environment to compare, by name, and notes saying
    which were not paired by name.

    Environments are paired by name. The plain manifests split into alternatives on one
    side only (``bot.inputs.alternatives``) are paired with the other side's plain
    manifests, whole: each alternative is what that side applied. An alternative renamed
    (``kubernetes-manifests/web.yaml`` grown into ``kubernetes-manifests/``) is paired with
    the one of the other side it alone shares files with, under its head name. An
    environment only one side has is compared with nothing (all its paths opened, or
    closed), and said so; not when a side has no environment at all (a base that cannot be
    read, reported apart).
    """
    by_name_base = {e.name: e for e in base}
    by_name_head = {e.name: e for e in head}
    renamed = _renamed_alternatives(by_name_base, by_name_head)
    names = sorted((by_name_base.keys() - renamed.values()) | by_name_head.keys())
    whole_base, whole_head = _whole_plain(by_name_base), _whole_plain(by_name_head)
    pairs: list[tuple[str, EnvironmentTree | None, EnvironmentTree | None]] = []
    notes: list[str] = []
    split: dict[str, list[str]] = {"base": [], "head": []}  # alternatives paired whole
    for name in names:
        b, h = by_name_base.get(name), by_name_head.get(name)
        label = name or "plain manifests"
        if name in renamed:
            b = by_name_base[renamed[name]]
            notes.append(
                f"{label}: compared with the base's alternative {renamed[name]}, the same "
                "files under another name"
            )
        elif b is None and h is not None and h.kind == "plain" and whole_base is not None:
            b = whole_base
            split["head"].append(name)
        elif h is None and b is not None and b.kind == "plain" and whole_head is not None:
            h = whole_head
            split["base"].append(name)
        elif name == "" and (whole_base is None) != (whole_head is None):
            continue  # the whole plain manifests are compared with each alternative
        elif b is None and base:
            notes.append(
                f"{label}: a new environment (not in the base): every path it allows counts "
                "as opened"
            )
        elif h is None and head:
            notes.append(
                f"{label}: no longer an environment (not in the head): every path it allowed "
                "counts as closed"
            )
        pairs.append((name, b, h))
    for side_name, other in (("base", "head"), ("head", "base")):
        if split[side_name]:
            notes.insert(
                0,
                f"The {side_name}'s plain manifests are alternative deliverables (files "
                f"defining the same objects): {', '.join(split[side_name])}, each compared "
                f"with the {other}'s plain manifests (one environment there)",
            )
    return pairs, notes


def _renamed_alternatives(
    base: Mapping[str, EnvironmentTree], head: Mapping[str, EnvironmentTree]
) -> dict[str, str]:
    """{head name: base name} of the alternatives each side names differently and that
    share files with each other and with no other unpaired alternative."""
    gone = [e for name, e in base.items() if e.alternative and name not in head]
    new = [e for name, e in head.items() if e.alternative and name not in base]

    def sharing(one: EnvironmentTree, others: list[EnvironmentTree]) -> list[EnvironmentTree]:
        return [o for o in others if set(o.alternative) & set(one.alternative)]

    out = {}
    for h in new:
        found = sharing(h, gone)
        if len(found) == 1 and len(sharing(found[0], new)) == 1:
            out[h.name] = found[0].name
    return out


def _whole_plain(by_name: Mapping[str, EnvironmentTree]) -> EnvironmentTree | None:
    """The side's plain manifests when the other side may have split them: "" while that
    side has no alternatives (``bot.inputs.alternatives``)."""
    split = any(e.kind == "plain" and e.name for e in by_name.values())
    whole = by_name.get("")
    return whole if whole is not None and whole.kind == "plain" and not split else None


def diff_plain(base: PreparedBase, head_files: Mapping[str, bytes]) -> MultiDiff:
    """The diff of plain manifests against a prepared base: only the files that differ
    are read, and only what they can change is computed."""
    changed = changed_files(base.files, head_files)
    head = apply_changes(base.state, changed)
    return _diff_plain(base, head, incremental.TreeChange.of_files(base.state, head, changed))


def diff_plain_files(
    base_files: Mapping[str, bytes],
    head_files: Mapping[str, bytes],
    scope: ClusterScope = ClusterScope.PARTIAL,
    workload_kinds: WorkloadKinds = (),
    cilium_agent: CiliumAgent | None = None,
) -> MultiDiff:
    """The same for two file trees: the base is read in full (on both cores), the head
    as a change to it."""
    with side("base"):
        state = load_state_parallel(base_files, workload_kinds, cilium_agent)
    changed = changed_files(state.files, head_files)
    with side("head"):
        head = apply_changes(state, changed)
    change = incremental.TreeChange.of_files(state, head, changed)
    # Cut the base by the head's new CIDRs too, so that it is compiled only once.
    # (And with the representatives the head's selectors call for.)
    base = prepared(state, change.networks(), scope, (head.tree,))
    return _diff_plain(base, head, change)


def _diff_plain(base: PreparedBase, head: TreeState, change: incremental.TreeChange) -> MultiDiff:
    diff = diff_prepared(base, head.tree, change)
    plain = (EnvironmentTree("", "plain", base.tree), EnvironmentTree("", "plain", head.tree))
    return _merge([("", *plain, diff)])


def explain_changes(
    diff: MultiDiff, limit: int, kinds: Sequence[str] = ("opened", "closed")
) -> list[tuple[str, str, str, Explanation]]:
    """(kind, src id, dst id as reported, explanation) of the first ``limit`` paths: an
    opened path explained in the head, a closed one in the head (why it is denied now)
    unless an endpoint is gone there, then in the base (why it was allowed)."""
    qualify = diff.environments != ("",)
    out: list[tuple[str, str, str, Explanation]] = []
    for env, one in diff.per_environment:
        for kind, changes in (("opened", one.opened), ("closed", one.closed)):
            if kind not in kinds:
                continue
            for c in changes:
                if len(out) >= limit:
                    return out
                gone = kind == "closed" and (c.src_removed or c.dst_removed)
                side_map = one.base if gone else one.head
                e = explain_pair(side_map, c.src.id, c.dst.id, question=c.delta)
                prefix = f"{env or '.'}:" if qualify else ""
                out.append((kind, prefix + c.src.id, prefix + c.dst.id, e))
    return out


def changed_files(
    before: Mapping[str, bytes | str], after: Mapping[str, bytes | str]
) -> dict[str, bytes | str | None]:
    """The manifest paths whose content differs (None: deleted)."""
    out: dict[str, bytes | str | None] = {
        p: c for p, c in after.items() if p.endswith(MANIFEST_SUFFIXES) and before.get(p) != c
    }
    out.update((p, None) for p in before if p not in after)
    return out


def _environment_notes(
    label: str, base: EnvironmentTree | None, head: EnvironmentTree | None
) -> list[str]:
    """An environment's notes, each said once: a note both sides make (a chart's lines
    are approximate on both) is the environment's, one only a side makes names that side."""
    on_base = base.notes if base is not None else ()
    on_head = head.notes if head is not None else ()
    out = []
    for note in dict.fromkeys((*on_base, *on_head)):
        if note in on_base and note in on_head:
            # A note that already starts with the environment's name is not named twice.
            out.append(note if note.startswith(f"{label}: ") else f"{label}: {note}")
        else:
            out.append(f"{label} ({'base' if note in on_base else 'head'}): {note}")
    return out


def _merge(
    results: Sequence[tuple[str, EnvironmentTree | None, EnvironmentTree | None, ReachabilityDiff]],
) -> MultiDiff:
    qualify = [name for name, *_ in results] != [""]
    opened: list[PathChange] = []
    closed: list[PathChange] = []
    added: list[Endpoint] = []
    removed: list[Endpoint] = []
    notes: list[str] = []
    unanalysed: list[str] = []
    findings: list[unmodelled.Finding] = []
    idle: list[IdlePolicy] = []
    diffs: list[tuple[str, ReachabilityDiff]] = []
    frontends: list[tuple[str, Frontends, Frontends]] = []
    base_population, head_population = Population(), Population()
    for name, b, h, diff in results:
        diffs.append((name, diff))
        frontends.append(
            (name, b.frontends if b else NO_FRONTENDS, h.frontends if h else NO_FRONTENDS)
        )
        findings += unmodelled.change_findings(
            b.tree.unmodelled if b else (), h.tree.unmodelled if h else (), name
        )
        idle += idle_changed_policies(b.tree if b else Tree(), h.tree if h else Tree(), name)
        env_name = name if qualify else None
        if b is not None:
            base_population += Population.of_tree(b.tree, env_name)
        if h is not None:
            head_population += Population.of_tree(h.tree, env_name)
        label = name or "plain manifests"
        notes += _environment_notes(label, b, h)
        for env, side in ((b, "base"), (h, "head")):
            if env is not None:
                unanalysed += [f"{label} ({side}): {u}" for u in env.unanalysed]
                unanalysed += [f"{label} ({side}): {u}" for u in env.tree.unanalysed]
                notes += [f"{label} ({side}): {w}" for w in env.tree.warnings]
        for rmap, side in ((diff.base, "base"), (diff.head, "head")):
            unanalysed += [f"{label} ({side}): {u}" for u in unknown_matches(rmap)]
        if b is not None and h is not None:
            changed = authentication_changes(b.tree, h.tree)
            unanalysed += [f"{label} (head): {u}" for u in changed]
        opened += [_qualify(c, name) if qualify else c for c in diff.opened]
        closed += [_qualify(c, name) if qualify else c for c in diff.closed]
        added += [_endpoint(e, name) if qualify else e for e in diff.added_endpoints]
        removed += [_endpoint(e, name) if qualify else e for e in diff.removed_endpoints]
    return MultiDiff(
        opened=tuple(opened),
        closed=tuple(closed),
        added_endpoints=tuple(added),
        removed_endpoints=tuple(removed),
        environments=tuple(name for name, *_ in results),
        notes=tuple(dict.fromkeys(notes)),
        unanalysed=tuple(dict.fromkeys(unanalysed)),
        per_environment=tuple(diffs),
        populations=Populations(base_population, head_population),
        unmodelled=tuple(findings),
        idle_policies=tuple(idle),
        frontends=tuple(frontends),
    )


def _endpoint(e: Endpoint, env: str) -> Endpoint:
    return e.in_environment(env)


def _qualify(change: PathChange, env: str) -> PathChange:
    return dataclasses.replace(
        change, src=_endpoint(change.src, env), dst=_endpoint(change.dst, env)
    )
