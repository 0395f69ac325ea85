"""A repository tree's environments, modelled: rendered roots (kept by render key) and
the plain manifests.

``load_environments`` plans every root (``bot.inputs.environments``), takes from the
process's render cache (``bot.inputs.render_cache``) each one whose inputs it has seen,
renders the others concurrently, and models each environment once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from analysis.ciliumagent import CiliumAgent
from analysis.customkinds import WorkloadKinds
from analysis.errors import DuplicateObjectError
from analysis.frontends import NO_FRONTENDS, Frontends, frontends_of_files, read_frontends
from analysis.manifests import MANIFEST_SUFFIXES, build_tree, load_files
from analysis.model import Tree
from analysis.parsecache import ParseCache
from bot.inputs import helm, kustomize
from bot.inputs.alternatives import plain_alternatives
from bot.inputs.environments import PlannedRoot, plain_environment, plan_environments, render_all
from bot.inputs.render_cache import KeyBuilder, RenderCache
from bot.inputs.sandbox import Tools


@dataclass(frozen=True, slots=True)
class EnvironmentTree:
    name: str  # "" for plain manifests, else the kustomization or chart directory
    kind: str  # plain | kustomize | helm
    tree: Tree
    notes: tuple[str, ...] = ()
    unanalysed: tuple[str, ...] = ()
    # Services, Ingresses and routes: where traffic enters (``analysis.exposure``).
    frontends: Frontends = NO_FRONTENDS
    # The hash of everything the environment was read from (its renderer's inputs, or its
    # plain files) and of the settings it was modelled with; "" when not known. Equal keys
    # mean equal environments (``bot.inputs.render_cache``).
    key: str = ""
    # An alternative deliverable's own files, the ones defining objects other plain files
    # define too (``bot.inputs.alternatives``); () for any other environment.
    alternative: tuple[str, ...] = ()


# This process's rendered environments by render key (``bot.inputs.render_cache``):
# at most 100,000 rendered objects (their models: up to a few hundred MiB). Process-wide
# on purpose and safe to share: a key is the hash of everything an environment was
# rendered and modelled from, so an entry answers only for exactly those inputs, and an
# EnvironmentTree is frozen.
RENDER_CACHE: RenderCache[EnvironmentTree] = RenderCache()


def is_plain(files: Mapping[str, bytes]) -> bool:
    """Plain manifests: nothing to render, the files are what is applied."""
    return not kustomize.has_kustomizations(files) and not helm.chart_dirs(files)


def load_environments(
    files: Mapping[str, bytes],
    *,
    kustomize_roots: Sequence[str] | None = None,
    helm_values: Mapping[str, Sequence[str]] | None = None,
    workload_kinds: WorkloadKinds = (),
    cilium_agent: CiliumAgent | None = None,
    cache: RenderCache[EnvironmentTree] | None = RENDER_CACHE,
    workers: int | None = None,
    tools: Tools | None = None,
    parse_cache: ParseCache | None = None,
) -> list[EnvironmentTree]:
    """The environments of a tree, modelled. Roots are rendered ``workers`` at a time;
    those whose inputs ``cache`` has seen are not rendered again (``None``: no cache).
    ``parse_cache`` keeps what reading the files parsed (``analysis.parsecache``): pass
    the same one for both sides of a diff (None: one for this call)."""
    parse_cache = parse_cache if parse_cache is not None else ParseCache()
    # The settings a tree is modelled with are part of what its key names.
    kinds = repr(workload_kinds) + (repr(cilium_agent) if cilium_agent is not None else "")
    if is_plain(files):

        def read_files(
            name: str, paths: Sequence[str], own: Sequence[str], repeats: bool
        ) -> EnvironmentTree:
            # Alternatives are kept by key as rendered environments are: the bot reviews
            # every pull request of a branch against the same ones.
            key = _plain_key(files, name, paths, own, kinds) if name else ""
            found = cache.get(key) if cache is not None and key else None
            if found is not None:
                return found
            chosen = {p: files[p] for p in paths}
            tree = load_files(
                chosen,
                workload_kinds=workload_kinds,
                cache=parse_cache,
                cilium_agent=cilium_agent,
                repeats=repeats,
            )
            frontends = frontends_of_files(chosen, parse_cache)
            env = EnvironmentTree(
                name, "plain", tree, frontends=frontends, key=key, alternative=tuple(own)
            )
            if cache is not None and key:
                cache.put(key, env, len(tree.workloads) + len(tree.policies) + 1)
            return env

        return _plain_environments(
            files,
            sorted(p for p in files if p.endswith(MANIFEST_SUFFIXES)),
            read_files,
            workload_kinds,
            parse_cache,
        )
    plan = plan_environments(
        files, kustomize_roots=kustomize_roots, helm_values=helm_values, tools=tools
    )
    keys = [KeyBuilder(r.key, kinds).hexdigest() if r.key else "" for r in plan.roots]
    found: list[EnvironmentTree | None] = [
        cache.get(key) if cache is not None and key else None for key in keys
    ]

    def model(root: PlannedRoot, key: str) -> Callable[[], EnvironmentTree]:
        def read() -> EnvironmentTree:
            e = root.render()
            tree = build_tree(
                e.objects,
                workload_kinds=workload_kinds,
                cache=parse_cache,
                cilium_agent=cilium_agent,
            )
            env = EnvironmentTree(
                e.name, e.kind, tree, e.notes, e.unanalysed, read_frontends(e.objects), key
            )
            if cache is not None and key:
                cache.put(key, env, len(e.objects) + 1)
            return env

        return read

    missing = [i for i, env in enumerate(found) if env is None]
    rendered = render_all([model(plan.roots[i], keys[i]) for i in missing], workers)
    for i, env in zip(missing, rendered, strict=True):
        found[i] = env
    environments = [env for env in found if env is not None]

    def read_plain(
        name: str, paths: Sequence[str], own: Sequence[str], repeats: bool
    ) -> EnvironmentTree:
        key = _plain_key(files, name, paths, own, kinds) if paths else ""
        plain = cache.get(key) if cache is not None and key else None
        if plain is None:
            e = plain_environment(files, paths, parse_cache)
            tree = build_tree(
                e.objects,
                workload_kinds=workload_kinds,
                cache=parse_cache,
                cilium_agent=cilium_agent,
                repeats=repeats,
            )
            plain = EnvironmentTree(
                name,
                "plain",
                tree,
                frontends=read_frontends(e.objects),
                key=key,
                alternative=tuple(own),
            )
            if not e.objects:
                # No plain environment (unless there is nothing else): nothing to key.
                plain = dataclasses.replace(plain, key="")
            elif cache is not None:
                cache.put(key, plain, len(e.objects) + 1)
        return plain

    plain = _plain_environments(files, plan.plain_paths, read_plain, workload_kinds, parse_cache)
    environments.sort(key=lambda e: e.name)
    if len(plain) > 1 or plain[0].key or not environments:
        environments[:0] = plain
    return environments


def _plain_environments(
    files: Mapping[str, bytes],
    paths: Sequence[str],
    read: Callable[[str, Sequence[str], Sequence[str], bool], EnvironmentTree],
    workload_kinds: WorkloadKinds,
    parse_cache: ParseCache,
) -> list[EnvironmentTree]:
    """The plain manifests as one environment, or as one per alternative deliverable
    when files define the same object (``bot.inputs.alternatives``), by name. An object
    defined twice in one file stays an error."""
    try:
        return [read("", paths, (), False)]
    except DuplicateObjectError as err:
        if not err.across_files:
            raise
    # Objects defined in several files: alike, one object; otherwise, alternatives.
    split = plain_alternatives(files, paths, workload_kinds=workload_kinds, cache=parse_cache)
    if not split:
        return [read("", paths, (), True)]
    return [read(a.name, a.paths, a.own, True) for a in split]


def _plain_key(
    files: Mapping[str, bytes], name: str, paths: Sequence[str], own: Sequence[str], kinds: str
) -> str:
    """What plain manifests are read from: their files, and as what (the name and own
    files of an alternative, the settings)."""
    return KeyBuilder("plain", name, kinds, *own).files(files, paths).hexdigest()
