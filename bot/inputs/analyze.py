"""The engine run of one review, as a top-level function the process pool can pickle.

``analyze`` never raises for bad input or an overrun: it returns either the diff or an
``AnalysisFailure`` saying what went wrong and where, so the caller can fail the check with
the file and line. It runs in a worker process with an alarm as its deadline, because a
process pool cannot interrupt a running call from outside.

Why one module of 440 lines: the run, its failure kinds, its deadline and the prepared
bases a worker keeps between runs serve the one function the process pool pickles.
"""

from __future__ import annotations

import gc
import os
import signal
import traceback
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

from analysis import unmodelled
from analysis.aggregate import NO_POPULATIONS, Populations
from analysis.ciliumagent import CiliumAgent
from analysis.customkinds import WorkloadKinds
from analysis.decision import Explanation
from analysis.declared_review import DeclaredReview, review_declared
from analysis.diff import PathChange
from analysis.endpoint_facts import EndpointFacts, endpoint_facts
from analysis.errors import ManifestError
from analysis.flowsummary import FlowSummary
from analysis.lint import LintConfig
from analysis.outside import OUTSIDE_KIND, ClusterScope
from analysis.parsecache import ParseCache
from analysis.prepared import PreparedBase
from analysis.prepared import prepared as prepare_state
from analysis.reachability import Endpoint
from analysis.trafficdiff import DiffTraffic, diff_traffic_maps
from bot.inputs.environment_bases import EnvironmentBases
from bot.inputs.environment_diff import (
    RENDER_CACHE,
    MultiDiff,
    SideError,
    changed_files,
    diff_files,
    diff_head_alone,
    diff_plain,
    explain_changes,
    is_plain,
    side,
)
from bot.inputs.exposure import ExposureReview, ExposureSettings, review_exposure
from bot.inputs.parallel_load import load_state_parallel

EXPLAINED_PATHS = 20  # opened paths the comment explains step by step


@dataclass(frozen=True, slots=True)
class Unanalysed:
    """One object that was not analysed, where it is."""

    tree: str  # "base" or "head"
    file: str
    line: int
    message: str
    namespace: str = ""  # the object's, when it has one


@dataclass(frozen=True, slots=True)
class DiffResult:
    """What the bot renders from a ``ReachabilityDiff``, without its two reachability maps.

    The maps (every class, connection and compiled rule of both trees) are most of a diff's
    size, and the result crosses a process boundary and sits in a cache.
    """

    opened: tuple[PathChange, ...]
    closed: tuple[PathChange, ...]
    added_endpoints: tuple[Endpoint, ...]
    removed_endpoints: tuple[Endpoint, ...]
    base_error: str = ""  # the base could not be read: the head was analysed on its own
    populations: Populations = NO_POPULATIONS  # workloads per namespace, for reports
    # Ids of added workloads that are the same pods as a workload of the base: a renamed
    # Deployment, or a renamed kustomize overlay. Not new for ``new_workloads_widen``.
    same_pods: frozenset[str] = frozenset()
    # What the report must say besides the paths: warnings about the trees, and what
    # ``ignore_kinds`` left out.
    notes: tuple[str, ...] = ()
    # Changed policies that select no workload in their tree: the check fails on them.
    unevaluated: tuple[Unanalysed, ...] = ()
    # (src id, dst id) -> the decision step by step, for the first opened paths (the
    # comment shows each in a collapsible section); computed here, where the maps are.
    explanations: tuple[tuple[str, str, Explanation], ...] = ()
    # Declared communications and least-privilege findings (analysis.declared_review):
    # None when the repository has no declarations and the settings ask for no lint.
    declared: DeclaredReview | None = None
    # The labels of the opened paths' endpoints, for owner rules (``bot.owners``).
    endpoint_facts: tuple[EndpointFacts, ...] = ()
    # Observed traffic on the changed paths (docs/traffic.md): None without flow data.
    traffic: DiffTraffic | None = None
    # How the change moves workloads relative to entry points (``bot.inputs.exposure``):
    # compared only when the settings name crown jewels or a blast radius threshold.
    exposure: ExposureReview | None = None

    @property
    def widening(self) -> bool:
        return bool(self.opened)


def _exposure(
    diff: MultiDiff,
    wanted: ExposureSettings | None,
    base_files: Mapping[str, bytes] | None,
    head_files: Mapping[str, bytes],
    parse_cache: ParseCache,
) -> ExposureReview | None:
    if wanted is None:
        return None
    found = review_exposure(
        diff,
        wanted.entry_points,
        wanted.crown_jewels,
        base_files,
        head_files,
        parse_cache=parse_cache,
    )
    return found.without_maps()  # the result crosses processes: the changes only


def _traffic(diff: MultiDiff, flows: FlowSummary | None) -> DiffTraffic | None:
    if flows is None:
        return None
    maps = [(name, one.base, one.head) for name, one in diff.per_environment]
    return diff_traffic_maps(diff, maps, flows)


def same_pods(diff: MultiDiff) -> frozenset[str]:
    """The added endpoints whose namespace and pod-template labels some base workload (in
    any environment) has too. Policies select pods by namespace and labels, never by the
    controller's name: such a workload is selected exactly as that one was, so paths to or
    from it are not "to a new workload" (a rename must not exempt a widening)."""
    qualify = diff.environments != ("",)
    before = {
        (w.namespace, w.labels)
        for _, env in diff.per_environment
        for w in env.base.tree.workloads
        if w.kind != OUTSIDE_KIND
    }
    identity = {}
    for name, env in diff.per_environment:
        for w in env.head.tree.workloads:
            if w.kind != OUTSIDE_KIND:
                identity[f"{name or '.'}:{w.id}" if qualify else w.id] = (w.namespace, w.labels)
    # A representative (cluster_scope: partial) stands for pods that may exist whatever the
    # tree says: it is never a workload the pull request adds (fail closed), and a workload
    # the pull request adds is new even where undefined pods labelled like it were.
    outside = {e.id for e in diff.added_endpoints if e.is_outside}
    return frozenset(
        e.id for e in diff.added_endpoints if identity.get(e.id) in before or e.id in outside
    )


@dataclass(frozen=True, slots=True)
class AnalysisFailure:
    # "manifest" (the tree is invalid), "unanalysed", "timeout", "memory", "internal";
    # "stopped": the process died (``bot.app.jobs.AnalysisStopped``)
    kind: str
    message: str
    tree: str = ""  # "base" or "head" for a manifest error
    file: str = ""
    line: int = 0
    unanalysed: tuple[Unanalysed, ...] = ()  # for "unanalysed": each object, with its line


class _Deadline(BaseException):  # not Exception: no `except Exception` may swallow it
    pass


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    raise _Deadline


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    if seconds <= 0:
        yield
        return
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class PreparedBases:
    """Prepared bases of plain manifests by base commit, at most ``limit`` of them (least
    recently used first out). The pull requests of a branch are all reviewed against the
    same base, which is then read and compiled once, and each review computes only what
    its changed files can change. Owned by whoever runs the analyses: each worker process
    of the pool has its own (``WORKER_BASES``), a test its own."""

    def __init__(self, limit: int = 1, *, freeze: bool = True) -> None:
        self.limit = limit
        # The base lives on in a worker: keep the cycle collector from rescanning it at
        # every review (not in a test process, which lives on after).
        self.freeze = freeze
        self._bases: OrderedDict[str, PreparedBase] = OrderedDict()
        # Rendered environments (kustomize roots, charts), compiled once per render key:
        # the bases of the branch's pull requests, and any head environment that did not
        # change (``bot.inputs.environment_bases``).
        self.environments = EnvironmentBases()
        # What reading trees other than the plain bases parsed (rendered environments,
        # plain trees next to them): a prepared base keeps its own (``TreeState``).
        self.parse_cache = ParseCache()
        # Base commits whose plain files hold alternative deliverables: reviewed as
        # environments (``bot.inputs.alternatives``), never prepared. Only a route: the
        # environments' path reads any tree exactly, so a key is trusted here.
        self.alternatives: OrderedDict[str, None] = OrderedDict()

    def holds_alternatives(self, key: str, *, found: bool = False) -> bool:
        """Whether the base of commit ``key`` holds alternatives (``found``: it does)."""
        if not key:
            return False
        if found:
            self.alternatives[key] = None
            while len(self.alternatives) > 64:
                self.alternatives.popitem(last=False)
        return key in self.alternatives

    def get(
        self,
        key: str,
        files: Mapping[str, bytes],
        scope: ClusterScope,
        workload_kinds: WorkloadKinds = (),
        cilium_agent: CiliumAgent | None = None,
    ) -> PreparedBase:
        """The base of ``files`` prepared; ``key`` ("": do not keep it) names its commit."""
        key = f"{key}:{scope.value}" if key else ""  # a base is prepared for one scope
        found = self._bases.get(key) if key else None
        # The commit id names the content, but never trust a key for what a check passes
        # on; nor reuse a base read under other settings.
        if (
            found is not None
            and found.state.workload_kinds == workload_kinds
            and found.state.cilium_agent == cilium_agent
            and not changed_files(found.files, files)
        ):
            self._bases.move_to_end(key)
            return found
        prepared = prepare(
            files, scope=scope, workload_kinds=workload_kinds, cilium_agent=cilium_agent
        )
        if key:
            self._bases[key] = prepared
            while len(self._bases) > self.limit:
                self._bases.popitem(last=False)
            if self.freeze:
                gc.collect()
                gc.freeze()
        return prepared

    def clear(self) -> None:
        self._bases.clear()
        self.alternatives.clear()
        self.environments.clear()
        self.parse_cache.clear()


def prepare(
    files: Mapping[str, bytes],
    *,
    scope: ClusterScope,
    workload_kinds: WorkloadKinds = (),
    cilium_agent: CiliumAgent | None = None,
) -> PreparedBase:
    """``analysis.prepared.prepare``, the files read on both cores as the CLI reads its
    base: the first review of a branch after a start waits for it."""
    return prepare_state(load_state_parallel(files, workload_kinds, cilium_agent), scope=scope)


# A 30,000-workload base holds about half a gigabyte of the worker's memory limit: one.
WORKER_BASES = PreparedBases(limit=1)


def _unanalysed(
    reasons: tuple[str, ...], findings: tuple[unmodelled.Finding, ...]
) -> AnalysisFailure:
    kinds = sorted({f.policy.kind for f in findings if not unmodelled.is_delivery(f.policy)})
    delivering = sorted(
        {f"{f.policy.kind}.{f.policy.group}" for f in findings if unmodelled.is_delivery(f.policy)}
    )
    lines = list(reasons)
    if kinds:
        lines.append(
            f"reachdiff does not model {', '.join(kinds)}: with such policies in the tree, "
            "the access it computes is not what the cluster enforces. List the kinds under "
            "`ignore_kinds` in .github/reachdiff.yml to review the NetworkPolicies alone."
        )
    if delivering:
        # Objects that deploy (or rewrite) what the tree shows: their change is the finding.
        lines.append(
            f"The change adds, removes or changes {', '.join(delivering)} objects, which "
            "deploy or rewrite what reachdiff renders (charts and manifests from elsewhere, "
            "values, patches, substitutions): what that does to pods and policies is not "
            "analysed. List the kinds under `ignore_kinds` in .github/reachdiff.yml to "
            "review without them."
        )
    return AnalysisFailure(
        "unanalysed",
        "\n".join(lines),
        unanalysed=tuple(
            Unanalysed(f.tree or "head", f.policy.source.file, f.policy.source.line, f.describe())
            for f in findings
        ),
    )


def _diff_plain_prepared(
    base_files: Mapping[str, bytes],
    head_files: Mapping[str, bytes],
    base_key: str,
    bases: PreparedBases,
    scope: ClusterScope,
    workload_kinds: WorkloadKinds,
    cilium_agent: CiliumAgent | None,
) -> tuple[MultiDiff | None, ParseCache | None]:
    """The diff of two trees of plain manifests against the prepared base, and the parse
    cache it was read with; None when a side holds alternative deliverables (files
    defining one object), which are reviewed as environments (``bot.inputs.alternatives``)."""
    if bases.holds_alternatives(base_key):
        return None, None
    try:
        with side("base"):
            prepared = bases.get(base_key, base_files, scope, workload_kinds, cilium_agent)
    except SideError as err:
        if err.alternatives:
            bases.holds_alternatives(base_key, found=True)
            return None, None
        alone = diff_head_alone(
            head_files,
            str(err),
            workload_kinds=workload_kinds,
            cilium_agent=cilium_agent,
            scope=scope,
        )
        return alone, None
    try:
        with side("head"):
            return diff_plain(prepared, head_files), prepared.state.parse_cache
    except SideError as err:
        if err.alternatives:
            return None, None
        raise


def analyze(
    base_files: Mapping[str, bytes] | None,
    head_files: Mapping[str, bytes],
    deadline: float = 0.0,
    kustomize_roots: tuple[str, ...] | None = None,
    helm_values: tuple[tuple[str, tuple[str, ...]], ...] = (),
    base_key: str = "",
    base_error: str = "",
    cluster_scope: str = "partial",
    ignore_kinds: tuple[str, ...] = (),
    workload_kinds: WorkloadKinds = (),
    cilium_agent: CiliumAgent | None = None,
    lint_config: LintConfig | None = None,
    flows: FlowSummary | None = None,
    bases: PreparedBases | None = None,
    exposure: ExposureSettings | None = None,
) -> DiffResult | AnalysisFailure:
    """The diff of the two trees; ``base_key`` (the base commit) lets this worker reuse
    the base it prepared for an earlier review. A base that cannot be read (``None``, with
    ``base_error`` saying why, or invalid) is reported and the head analysed on its own:
    the pull request that fixes a broken base must be reviewable. Policies of kinds
    reachdiff does not model fail the analysis unless ``ignore_kinds`` names them;
    ``workload_kinds`` are the settings' custom kinds that run pods; ``cilium_agent`` the
    settings' Cilium agent options (``analysis.ciliumagent``); ``lint_config`` asks
    for the least-privilege findings the change introduces; ``flows`` (a flow summary)
    for the observed traffic on the changed paths; ``bases`` keeps prepared bases
    (default: this worker process's); with ``exposure`` (entry point and crown jewel
    selectors) the exposure of both sides is compared too."""
    bases = bases if bases is not None else WORKER_BASES
    tree_name = "base"
    scope = ClusterScope(cluster_scope)
    collecting = gc.isenabled()
    gc.disable()  # the engine frees by reference counting; see bot.cli.main
    parse_cache = bases.parse_cache
    # Both sides are rendered with the base branch's settings.
    values = dict(helm_values)
    try:
        with _deadline(deadline):
            if base_files is None:
                tree_name = "head"
                diff = diff_head_alone(
                    head_files,
                    base_error,
                    kustomize_roots=kustomize_roots,
                    helm_values=values,
                    scope=scope,
                    workload_kinds=workload_kinds,
                    cilium_agent=cilium_agent,
                )
            else:
                plain: MultiDiff | None = None
                if is_plain(base_files) and is_plain(head_files):
                    plain, plain_cache = _diff_plain_prepared(
                        base_files, head_files, base_key, bases, scope, workload_kinds, cilium_agent
                    )
                    parse_cache = plain_cache or parse_cache
                if plain is not None:
                    tree_name = "head"
                    diff = plain
                else:
                    # Rendered environments, or plain files holding alternatives.
                    diff = diff_files(
                        base_files,
                        head_files,
                        kustomize_roots=kustomize_roots,
                        helm_values=values,
                        workload_kinds=workload_kinds,
                        cilium_agent=cilium_agent,
                        scope=scope,
                        bases=bases.environments,
                        parse_cache=parse_cache,
                        as_environments=True,
                    )
            tree_name = ""
            blocking, ignored = unmodelled.split(diff.unmodelled, ignore_kinds)
            if diff.unanalysed or blocking:
                # Never pass a change that was only partly reviewed (e.g. helm is missing,
                # a Cilium policy decides traffic next to the NetworkPolicies).
                return _unanalysed(diff.unanalysed, blocking)
            notes = diff.notes
            if ignored:
                notes += (unmodelled.ignored_summary(ignored),)
            unevaluated = tuple(
                Unanalysed(i.tree, i.source.file, i.source.line, i.message(), i.namespace)
                for i in diff.idle_policies
            )
            explained = explain_changes(diff, EXPLAINED_PATHS, kinds=("opened",))
            declared = review_declared(
                base_files,
                head_files,
                [(name, one.base, one.head) for name, one in diff.per_environment],
                scope,
                lint_config,
            )
            return DiffResult(
                diff.opened,
                diff.closed,
                diff.added_endpoints,
                diff.removed_endpoints,
                diff.base_error,
                diff.populations,
                same_pods(diff),
                notes,
                unevaluated,
                tuple((src, dst, e) for _, src, dst, e in explained),
                declared,
                endpoint_facts=endpoint_facts(
                    diff.opened, diff.per_environment, qualify=diff.environments != ("",)
                ),
                traffic=_traffic(diff, flows),
                exposure=_exposure(diff, exposure, base_files, head_files, parse_cache),
            )
    except SideError as err:
        return AnalysisFailure("manifest", err.message, err.side, err.file, err.line)
    except ManifestError as err:
        return AnalysisFailure("manifest", err.message, tree_name, err.file, err.line)
    except _Deadline:
        return AnalysisFailure("timeout", f"the analysis took longer than {deadline:g} s")
    except (MemoryError, RecursionError):
        bases.clear()  # the next review starts from an empty worker
        RENDER_CACHE.clear()
        return AnalysisFailure("memory", "the analysis ran out of memory")
    except Exception as err:
        # Anything else is a bug in reachdiff, not in the pull request: keep the trace short.
        where = traceback.extract_tb(err.__traceback__)[-1]
        place = f"{os.path.basename(where.filename)}:{where.lineno}"
        return AnalysisFailure("internal", f"{type(err).__name__}: {err} ({place})")
    finally:
        if collecting:
            gc.enable()
