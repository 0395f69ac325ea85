"""A repository's files as the sets of objects each environment will actually apply.

An environment is one kustomization root (``overlays/prod``), one Helm chart
(``charts/shop``), or the plain manifests outside both (named ``""``; split into one
environment per alternative deliverable when files define the same object, each named
by its files: ``bot.inputs.alternatives``). Kustomize and Helm
output is traced back to the original files and lines (``bot.inputs.sourcemap``), so everything
downstream (the engine, review comments) names lines a pull request author can find.

Files a kustomization consumes (resources, patches, components…) and files inside a chart
are rendered, never also read as plain manifests.

Why one module of 420 lines: discovering, planning and rendering environments are one
step (a root's plan decides what it renders and which files it consumes).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import TypeVar

from analysis.errors import ManifestError
from analysis.manifests import MANIFEST_SUFFIXES, parse_file
from analysis.parsecache import ParseCache
from analysis.wording import counted
from analysis.yamldoc import LineDict, YAMLSyntaxError, YMap, parse_documents
from bot.inputs import helm, kustomize, kustomize_build
from bot.inputs.alternatives import plain_alternatives
from bot.inputs.kustomize import Kustomization, display_dir
from bot.inputs.render_cache import KeyBuilder, tool_identity
from bot.inputs.sandbox import Limits, Tools, normalise
from bot.inputs.sourcemap import (
    Digests,
    Fragments,
    Located,
    objects_of_kind,
    patch_targets,
    transplant,
)

__all__ = ["Environment", "Tools", "discover_environments"]


@dataclass(frozen=True, slots=True)
class Environment:
    # "" for plain manifests (an alternative's files: "install.yaml", "kubernetes-manifests/");
    # else the root directory ("overlays/prod", "charts/shop")
    name: str
    kind: str  # "plain" | "kustomize" | "helm"
    objects: tuple[tuple[str, YMap], ...]  # (source file, object with lines in that file)
    notes: tuple[str, ...] = ()  # caveats about the analysis, e.g. approximate lines
    unanalysed: tuple[str, ...] = ()  # why something was not analysed: the check must not pass


def discover_environments(
    files: Mapping[str, bytes],
    *,
    kustomize_roots: Sequence[str] | None = None,
    helm_values: Mapping[str, Sequence[str]] | None = None,
    helm_namespaces: Mapping[str, str] | None = None,
    tools: Tools | None = None,
    timeout: float = 60,
    limits: Limits | None = None,
    workers: int | None = None,
) -> list[Environment]:
    """Every environment of a repository tree, plain manifests first, then by name.

    ``kustomize_roots`` replaces the default roots (kustomizations no other includes);
    ``helm_values`` maps a chart directory to its values files (repository paths, or paths
    relative to the chart); ``helm_namespaces`` the namespace each chart is rendered for.
    ``tools`` defaults to what is installed here. Roots are rendered ``workers`` at a time
    (default: one per core). Raises ``ManifestError`` (file, line) for a kustomization or
    chart that is invalid or refused: the first in the order charts, then roots, by name.
    """
    plan = plan_environments(
        files,
        kustomize_roots=kustomize_roots,
        helm_values=helm_values,
        helm_namespaces=helm_namespaces,
        tools=tools,
        limits=limits if limits is not None else Limits(timeout=timeout),
    )
    rendered = render_all([r.render for r in plan.roots], workers)
    environments = [env for env in rendered if isinstance(env, Environment)]
    plain = plain_environments(files, plan.plain_paths)
    environments.sort(key=lambda e: e.name)
    if len(plain) > 1 or plain[0].objects or not environments:
        environments[:0] = plain
    return environments


@dataclass(frozen=True, slots=True)
class PlannedRoot:
    """One kustomize root or chart, ready to render: ``key`` hashes everything its renderer
    can read (``bot.inputs.render_cache``; "" when there is nothing to cache), ``render``
    renders it, or raises the error its planning found."""

    name: str
    kind: str  # "kustomize" | "helm"
    key: str
    render: Callable[[], Environment]


@dataclass(frozen=True, slots=True)
class EnvironmentPlan:
    roots: tuple[PlannedRoot, ...]  # charts first, then kustomize roots, by directory
    plain_paths: tuple[str, ...]  # manifests neither a kustomization nor a chart consumes


def plan_environments(
    files: Mapping[str, bytes],
    *,
    kustomize_roots: Sequence[str] | None = None,
    helm_values: Mapping[str, Sequence[str]] | None = None,
    helm_namespaces: Mapping[str, str] | None = None,
    tools: Tools | None = None,
    limits: Limits | None = None,
) -> EnvironmentPlan:
    """The roots of a tree and what each one's render reads, nothing run yet (the static
    checks are made: a root that fails them renders to its ``ManifestError``)."""
    tools = tools if tools is not None else Tools.detect()
    limits = limits if limits is not None else Limits()
    kustomizations = kustomize.find_kustomizations(files)
    charts = helm.chart_dirs(files)
    # Kustomizations inside a chart are the chart's business (e.g. a post-renderer's).
    kustomizations = {d: k for d, k in kustomizations.items() if not helm.in_chart(k.path, charts)}

    if kustomize_roots is None:
        roots = kustomize.default_roots(kustomizations)
    else:
        roots = [_explicit_root(r, kustomizations) for r in kustomize_roots]

    values = {_clean_dir(k): list(v) for k, v in (helm_values or {}).items()}
    namespaces = {_clean_dir(k): v for k, v in (helm_namespaces or {}).items()}
    index = kustomize_build.PathIndex(files)
    planned = [
        _plan_chart(c, files, values.get(c, ()), namespaces.get(c, "default"), tools, limits, index)
        for c in charts
    ]
    planned += [
        _plan_root(root, kustomizations, files, tools, limits, index) for root in sorted(set(roots))
    ]
    consumed = kustomize.consumed_files(kustomizations, files)
    consumed.update(p for chart_dir in charts for p in values.get(chart_dir, ()))
    plain = tuple(
        path
        for path in index.paths
        if path not in consumed
        and not helm.in_chart(path, charts)
        and path.endswith(MANIFEST_SUFFIXES)
    )
    return EnvironmentPlan(tuple(planned), plain)


def plain_environment(
    files: Mapping[str, bytes], paths: Sequence[str], cache: ParseCache | None = None
) -> Environment:
    plain: list[tuple[str, YMap]] = []
    for path in paths:
        plain.extend((path, obj) for obj in parse_file(path, files[path], cache=cache))
    return Environment("", "plain", tuple(plain))


def plain_environments(
    files: Mapping[str, bytes], paths: Sequence[str], cache: ParseCache | None = None
) -> list[Environment]:
    """The plain manifests as one environment (named ""), or one per alternative
    deliverable when files define the same object (``bot.inputs.alternatives``)."""
    cache = cache if cache is not None else ParseCache()
    split = plain_alternatives(files, paths, cache=cache)
    if not split:
        return [plain_environment(files, paths, cache)]
    return [
        dataclasses.replace(plain_environment(files, a.paths, cache), name=a.name) for a in split
    ]


_T = TypeVar("_T")

# Renderers are subprocesses that mostly wait (process start, file reads): a few more
# than the cores keeps every core busy; each keeps its own time and memory bounds.
RENDER_WORKERS = max(1, min(2 * (os.cpu_count() or 1), 16))


def render_all(jobs: Sequence[Callable[[], _T]], workers: int | None = None) -> list[_T]:
    """Every job's result, run ``workers`` at a time (default ``RENDER_WORKERS``). The
    error raised is the first in job order, whatever finished first: once a job fails,
    the jobs after it are not started (their outcome cannot change which error that is)."""
    workers = workers if workers is not None else RENDER_WORKERS
    if workers <= 1 or len(jobs) <= 1:
        return [job() for job in jobs]
    pool = ThreadPoolExecutor(max_workers=min(workers, len(jobs)), thread_name_prefix="render")
    try:
        futures = [pool.submit(job) for job in jobs]
        order = {future: i for i, future in enumerate(futures)}
        failed = len(jobs)  # the first job known to have failed
        for done in as_completed(futures):
            index = order[done]
            if index < failed and not done.cancelled() and done.exception() is not None:
                failed = index
                for later in futures[index + 1 :]:
                    later.cancel()
    except BaseException:
        # A deadline (``bot.inputs.analyze``): start nothing more; what runs stops
        # within its own time bound.
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    if failed < len(jobs):
        futures[failed].result()  # raises; every job before it succeeded
    return [f.result() for f in futures]


def _failed(error: ManifestError) -> Callable[[], Environment]:
    def fail() -> Environment:
        raise error

    return fail


def _plan_chart(
    chart_dir: str,
    files: Mapping[str, bytes],
    values: Sequence[str],
    namespace: str,
    tools: Tools,
    limits: Limits,
    index: kustomize_build.PathIndex,
) -> PlannedRoot:
    name = display_dir(chart_dir)
    # Each values file is looked for as a repository path, then relative to the chart
    # (``helm.resolve_values``): both candidates that exist are hashed and copied, so the
    # render resolves them exactly as it would against the whole tree.
    candidates = [
        c
        for value in values
        for c in (normalise("", value), normalise(chart_dir, value))
        if c is not None and c in files
    ]
    needed = [*index.under(chart_dir), *candidates]
    identity = (
        tool_identity((tools.helm,), ("version", "--short"), limits.timeout)
        if tools.helm
        else "no helm"
    )
    key = (
        KeyBuilder("helm", identity, f"isolated={tools.isolate_network}", chart_dir, namespace)
        .add(str(len(values)), *values)
        .limits(limits)
        .files(files, needed)
        .hexdigest()
    )
    # The render sees only what the key covers.
    scoped = {p: files[p] for p in needed}

    def render() -> Environment:
        result = helm.render_chart(
            chart_dir, scoped, values=values, namespace=namespace, tools=tools, limits=limits
        )
        return Environment(name, "helm", result.objects, result.notes, result.unanalysed)

    return PlannedRoot(name, "helm", key, render)


def _plan_root(
    root: str,
    kustomizations: Mapping[str, Kustomization],
    files: Mapping[str, bytes],
    tools: Tools,
    limits: Limits,
    index: kustomize_build.PathIndex,
) -> PlannedRoot:
    name = display_dir(root)
    try:
        build = kustomize_build.plan_build(
            root, kustomizations, files, tools=tools, limits=limits, index=index
        )
    except ManifestError as err:
        return PlannedRoot(name, "kustomize", "", _failed(err))
    if build is None:
        missing = Environment(
            name,
            "kustomize",
            (),
            unanalysed=(f"neither kustomize nor kubectl is installed: {name} was not analysed",),
        )
        return PlannedRoot(name, "kustomize", "", lambda: missing)
    # The render and the tracing of its lines see only what the key covers.
    scoped = {p: files[p] for p in build.paths}

    def render() -> Environment:
        rendered = kustomize_build.run_build(
            build, kustomizations, scoped, tools=tools, limits=limits
        )
        return _kustomize_environment(root, rendered, kustomizations, scoped)

    return PlannedRoot(name, "kustomize", build.key, render)


def _clean_dir(path: str) -> str:
    path = path.strip().strip("/")
    while path.startswith("./"):
        path = path[2:]
    return "" if path in (".", "") else path


def _explicit_root(root: str, kustomizations: Mapping[str, Kustomization]) -> str:
    clean = _clean_dir(root)
    if clean not in kustomizations:
        raise ManifestError(
            f"{clean}/kustomization.yaml" if clean else "kustomization.yaml",
            1,
            f"{root!r} is configured as a kustomize root but has no kustomization file",
        )
    return clean


def _kustomize_environment(
    root: str,
    rendered: kustomize_build.Rendered,
    kustomizations: Mapping[str, Kustomization],
    files: Mapping[str, bytes],
) -> Environment:
    chain = kustomize.reachable(root, kustomizations)
    patches = _parsed_patches(chain, files)
    digests = Digests()
    originals: dict[str, list[YMap]] = {}
    objects: list[tuple[str, YMap]] = []
    approximate: list[str] = []
    root_file = kustomizations[root].path
    for obj in rendered.documents:
        path, generated = kustomize_build.origin_of(obj, root)
        kustomize_build.strip_origin(obj)
        kind, name, namespace = _identity(obj)
        original: YMap | None = None
        if path is not None and path in files and not generated:
            if path not in originals:
                originals[path] = _objects(path, files[path])
            original = objects_of_kind(originals[path], kind, name, namespace)
        file = path if path is not None and path in files else root_file
        fragments = Fragments(digests)
        for patch in patches:
            patch.add_to(fragments, kind, name)
        outcome = transplant(
            obj, Located(file, original) if original is not None else None, file, fragments
        )
        if outcome.approximate:
            approximate.append(f"{namespace or 'default'}/{kind}/{name}")
        objects.append((file, obj))
    notes = list(rendered.warnings)
    if approximate:
        shown = ", ".join(approximate[:5]) + (", …" if len(approximate) > 5 else "")
        notes.append(
            f"{counted(len(approximate), 'object')} changed by kustomize in ways not traceable "
            f"line by line ({shown}): their lines point to the nearest enclosing original node and "
            "are approximate"
        )
    return Environment(display_dir(root), "kustomize", tuple(objects), tuple(notes))


def _identity(obj: LineDict) -> tuple[str, str, str | None]:
    meta = obj.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    namespace = meta.get("namespace") if isinstance(meta, dict) else None
    kind = obj.get("kind")
    return (
        kind if isinstance(kind, str) else "",
        name if isinstance(name, str) else "",
        namespace if isinstance(namespace, str) else None,
    )


def _objects(path: str, content: bytes) -> list[YMap]:
    try:
        return parse_file(path, content)
    except ManifestError:
        return []  # kustomize read it; tracing lines is best effort


@dataclass(frozen=True, slots=True)
class _ParsedPatch:
    patch: kustomize.Patch
    documents: tuple[object, ...]

    def add_to(self, fragments: Fragments, kind: str, name: str) -> None:
        p = self.patch
        if p.target_kind not in (None, kind) or (p.target_name and p.target_name not in name):
            return
        offset = p.first_line - 1
        for doc in self.documents:
            if isinstance(doc, list):
                fragments.add_json6902(doc, p.file, offset)
            elif isinstance(doc, dict):
                doc_kind, doc_name = patch_targets(doc)
                if doc_kind not in (None, kind) or (doc_name and doc_name not in name):
                    continue
                fragments.add((), Located(p.file, doc, offset))


def _parsed_patches(
    chain: Sequence[Kustomization], files: Mapping[str, bytes]
) -> list[_ParsedPatch]:
    """Patches of the chain, the root's first: the last applied wins where lines compete."""
    out: list[_ParsedPatch] = []
    for k in chain:
        for patch in k.patches:
            if patch.text:
                text = patch.text
            elif patch.file in files:
                text = files[patch.file].decode("utf-8", errors="replace")
            else:
                continue
            try:
                docs = tuple(d.data for d in parse_documents(text))
            except YAMLSyntaxError:
                continue
            out.append(_ParsedPatch(patch, docs))
    return out
