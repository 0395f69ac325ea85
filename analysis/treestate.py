"""A loaded tree together with the index that derives the tree of a change from it.

The bot reviews many pull requests against one base, and a pull request changes a few
files of a tree that may hold tens of thousands. ``load_files`` assembles the whole tree
again (duplicate names, implicit namespaces, named ports, ordering), which costs time in
proportion to the tree; ``apply_changes`` does it in proportion to the change: it reads
and models only the changed files, and updates the sorted tuples of the base tree by
bisection (C-speed copies and moves, no Python-level pass over the unchanged objects).

The derived tree is the tree ``load_files`` reads from the changed file map, field by
field and in the same order, and a change that makes the tree invalid raises the error
``load_files`` raises: whenever the index sees something wrong it hands the whole file map
to the full loader, whose error (which file and line comes first) is the canonical one.

Why one module of 600 lines: ``_derive`` (the change) must build exactly what
``_assemble`` (the whole tree) builds, step by step; the two stay side by side so that a
change to one is made to the other, and the property tests compare their results.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import TypeVar

from analysis import adminpolicies, calicotree
from analysis.calicoendpoints import service_account_model, with_accounts
from analysis.calicomodel import CalicoPolicy, CalicoServiceAccount
from analysis.calicoservices import resolve_calico_services
from analysis.calicotree import CalicoModel
from analysis.ciliumagent import CiliumAgent
from analysis.ciliummodel import CiliumPolicy
from analysis.ciliumservices import ServiceModel, resolve_services, service_model
from analysis.customkinds import WorkloadKinds
from analysis.errors import ManifestError
from analysis.manifests import (
    MANIFEST_SUFFIXES,
    custom_kind_names,
    identity,
    implicit_namespace,
    load_files,
    named_port_warnings,
    needs_text,
    object_model,
    parse_file,
)
from analysis.model import (
    AdminPolicy,
    Namespace,
    NetworkPolicy,
    Tree,
    UnmodelledPolicy,
    Workload,
)
from analysis.parsecache import ParseCache
from analysis.yamldoc import YMap

__all__ = ["FileModels", "TreeState", "apply_changes", "load_state"]

WorkloadKey = tuple[str, str, str]  # (namespace, kind, name): the order of Tree.workloads
PolicyKey = tuple[str, str]  # (namespace, name): the order of Tree.policies


@dataclass(frozen=True, slots=True)
class FileModels:
    """What one manifest file contributes to its tree, in the file's order."""

    namespaces: tuple[Namespace, ...] = ()
    workloads: tuple[Workload, ...] = ()
    policies: tuple[NetworkPolicy, ...] = ()
    admin_policies: tuple[AdminPolicy, ...] = ()
    unmodelled: tuple[UnmodelledPolicy, ...] = ()
    calico: tuple[CalicoModel, ...] = ()  # Calico's policies, tiers and network sets
    cilium: tuple[CiliumPolicy, ...] = ()
    services: tuple[ServiceModel, ...] = ()  # what Cilium's toServices name
    service_accounts: tuple[CalicoServiceAccount, ...] = ()  # whose labels Calico reads


_NOTHING = FileModels()


@dataclass(frozen=True, slots=True)
class TreeState:
    """A tree and its index. Immutable: deriving a head leaves the base as it was, so one
    base serves any number of pull requests."""

    tree: Tree
    files: Mapping[str, bytes | str]  # the manifest files the tree was read from
    by_file: Mapping[str, FileModels]  # every manifest path -> its models
    # Namespaces declared by a manifest (the others are implied by the objects in them).
    declared_namespaces: Mapping[str, Namespace]
    # Namespace name -> how many workloads and policies are in it (names in use only).
    namespace_use: Mapping[str, int]
    # Parallel to tree.namespaces / tree.workloads / tree.policies: their sort keys.
    namespace_names: tuple[str, ...]
    workload_keys: tuple[WorkloadKey, ...]
    policy_keys: tuple[PolicyKey, ...]
    admin_files: tuple[str, ...]  # sorted paths of the files with admin policies
    unmodelled_files: tuple[str, ...]  # sorted paths of the files with unmodelled policies
    # Container port name -> how many container ports (of all workloads) bear it.
    port_definitions: Mapping[str, int]
    # Port name -> how many NetworkPolicy ports (of all rules) name it.
    port_references: Mapping[str, int]
    # tree.warnings is admin_warnings + port_warnings (named ports no container defines).
    admin_warnings: tuple[str, ...] = ()
    port_warnings: tuple[str, ...] = ()
    workload_kinds: WorkloadKinds = ()  # the settings' custom kinds the files were read with
    # What reading the files parsed and modelled: the states derived from this one read
    # their changed files with it, so a file that is back as it was is not read again.
    parse_cache: ParseCache = field(default_factory=ParseCache, compare=False, repr=False)
    cilium_agent: CiliumAgent | None = None  # the settings' Cilium agent options (on the tree)


class _Rebuild(Exception):
    """The change makes the tree invalid (or the index cannot follow it): load in full."""


FileEntry = tuple[FileModels, bool]  # a file's models, and whether the tree keeps its text


def read_file(
    path: str,
    content: bytes | str,
    workload_kinds: WorkloadKinds = (),
    cache: ParseCache | None = None,
) -> FileEntry:
    """One file's part of a state (files can be read apart, e.g. in parallel)."""
    objects = parse_file(
        path, content, exact=False, exact_kinds=custom_kind_names(workload_kinds), cache=cache
    )
    return _file_models(path, objects, workload_kinds, cache), needs_text(objects)


def load_state(
    files: Mapping[str, bytes | str],
    read: Mapping[str, FileEntry] | None = None,
    *,
    workload_kinds: WorkloadKinds = (),
    cache: ParseCache | None = None,
    cilium_agent: CiliumAgent | None = None,
) -> TreeState:
    """The state of ``load_files(files)``: the same tree, or the same ``ManifestError``.
    ``read`` holds files already read with ``read_file`` (and the same ``workload_kinds``);
    the state keeps ``cache`` (a new one when None: ``analysis.parsecache``)."""
    cache = cache if cache is not None else ParseCache()
    manifests = {p: files[p] for p in sorted(files) if p.endswith(MANIFEST_SUFFIXES)}
    read = read or {}
    try:
        by_file: dict[str, FileModels] = {}
        texts: dict[str, bytes | str] = {}
        for path, content in manifests.items():
            entry = read.get(path)
            if entry is None:
                entry = read_file(path, content, workload_kinds, cache)
            by_file[path], keep = entry
            if keep:
                texts[path] = content
        return _assemble(manifests, by_file, texts, workload_kinds, cache, cilium_agent)
    except (ManifestError, _Rebuild):
        pass
    # The full loader decides which of several errors comes first.
    load_files(manifests, workload_kinds=workload_kinds, cache=cache, cilium_agent=cilium_agent)
    raise AssertionError("load_files accepted a tree that load_state rejected")


def apply_changes(state: TreeState, changed: Mapping[str, bytes | str | None]) -> TreeState:
    """The state of ``state``'s files with ``changed`` applied (``None`` deletes a path).

    Equals ``load_state`` of the changed file map, or raises the same ``ManifestError``.
    Paths that are not manifests are ignored, as ``load_files`` ignores them.
    """
    edits = {
        path: content
        for path, content in changed.items()
        if path.endswith(MANIFEST_SUFFIXES) and (content is not None or path in state.files)
    }
    if not edits:
        return state
    files = dict(state.files)
    for path, content in edits.items():
        if content is None:
            del files[path]
        else:
            files[path] = content
    try:
        return _derive(state, edits, files)
    except (ManifestError, _Rebuild):
        pass
    # Assembled again, but only the edited files are read again: a file's models depend
    # on its path and content alone (a tree with Cilium policies always comes here; the
    # parse cache does not hold what the parallel read of a base parsed in its children).
    texts = state.tree.texts
    read = {p: (m, p in texts) for p, m in state.by_file.items() if p not in edits}
    return load_state(
        files,
        read,
        workload_kinds=state.workload_kinds,
        cache=state.parse_cache,
        cilium_agent=state.cilium_agent,
    )


# ---------------------------------------------------------------------------- full


def _file_models(
    path: str,
    objects: Iterable[YMap],
    workload_kinds: WorkloadKinds = (),
    cache: ParseCache | None = None,
) -> FileModels:
    namespaces: list[Namespace] = []
    found_workloads: list[Workload] = []
    found_policies: list[NetworkPolicy] = []
    found_admin: list[AdminPolicy] = []
    found_unmodelled: list[UnmodelledPolicy] = []
    found_calico: list[CalicoModel] = []
    found_cilium: list[CiliumPolicy] = []
    services: list[ServiceModel] = []
    accounts: list[CalicoServiceAccount] = []
    for obj in objects:
        model = object_model(path, obj, None, workload_kinds, cache)
        if model is None:
            service = service_model(path, obj)
            if service is not None:
                services.append(service)
            account = service_account_model(path, obj)
            if account is not None:
                accounts.append(account)
        elif isinstance(model, UnmodelledPolicy):
            found_unmodelled.append(model)
        elif isinstance(model, CalicoModel):
            found_calico.append(model)
        elif isinstance(model, CiliumPolicy):
            found_cilium.append(model)
        elif isinstance(model, tuple):
            found_workloads.extend(model)  # an operator's custom resource
        elif isinstance(model, Namespace):
            namespaces.append(model)
        elif isinstance(model, Workload):
            found_workloads.append(model)
        elif isinstance(model, NetworkPolicy):
            found_policies.append(model)
        elif model is not None:
            found_admin.append(model)
    if not (
        namespaces
        or found_workloads
        or found_policies
        or found_admin
        or found_unmodelled
        or found_calico
        or found_cilium
        or services
        or accounts
    ):
        return _NOTHING
    return FileModels(
        tuple(namespaces),
        tuple(found_workloads),
        tuple(found_policies),
        tuple(found_admin),
        tuple(found_unmodelled),
        tuple(found_calico),
        tuple(found_cilium),
        tuple(services),
        tuple(accounts),
    )


def _calico(
    by_file: Mapping[str, FileModels],
    workloads: Sequence[Workload],
    namespaces: Sequence[Namespace],
) -> calicotree.CalicoTree | None:
    """The tree's Calico objects, put together again from every file (few trees have
    any, and those few objects), with the tree's ServiceAccounts."""
    found = [c for models in by_file.values() for c in models.calico]
    if not found:
        return None
    if len({calicotree.identity(c) for c in found}) != len(found):
        raise _Rebuild  # a duplicate name: the full loader says where
    accounts = [a for models in by_file.values() for a in models.service_accounts]
    ns_labels = {ns.name: dict(ns.labels) for ns in namespaces}
    services = [s for models in by_file.values() for s in models.services]
    calico = resolve_calico_services(calicotree.calico_objects(found), services)
    return with_accounts(calico, accounts, workloads, ns_labels)


def _namespaced(models: FileModels) -> list[CalicoPolicy]:
    return [c for c in models.calico if isinstance(c, CalicoPolicy) and c.namespace]


def _assemble(
    files: dict[str, bytes | str],
    by_file: dict[str, FileModels],
    texts: dict[str, bytes | str],
    workload_kinds: WorkloadKinds = (),
    cache: ParseCache | None = None,
    cilium_agent: CiliumAgent | None = None,
) -> TreeState:
    """The state of files read in sorted path order (``by_file`` is in that order)."""
    cache = cache if cache is not None else ParseCache()
    declared: dict[str, Namespace] = {}
    use: dict[str, int] = {}
    workload_pairs: list[tuple[WorkloadKey, Workload]] = []
    policy_pairs: list[tuple[PolicyKey, NetworkPolicy]] = []
    admin_files: list[str] = []
    unmodelled_files: list[str] = []
    defined: dict[str, int] = {}
    referenced: dict[str, int] = {}
    found_cilium: list[CiliumPolicy] = []
    for path, models in by_file.items():
        if models is _NOTHING:
            continue
        for cnp in models.cilium:
            found_cilium.append(cnp)
            if cnp.namespace:
                use[cnp.namespace] = use.get(cnp.namespace, 0) + 1
        for ns in models.namespaces:
            if ns.name in declared:
                raise _Rebuild
            declared[ns.name] = ns
        for wl in models.workloads:
            workload_pairs.append(((wl.namespace, wl.kind, wl.name), wl))
            use[wl.namespace] = use.get(wl.namespace, 0) + 1
            _count(defined, _defined_port_names(wl), 1)
        for cpol in _namespaced(models):
            use[cpol.namespace] = use.get(cpol.namespace, 0) + 1
        for pol in models.policies:
            policy_pairs.append(((pol.namespace, pol.name), pol))
            use[pol.namespace] = use.get(pol.namespace, 0) + 1
            _count(referenced, _referenced_port_names(pol), 1)
        if models.admin_policies:
            admin_files.append(path)
        if models.unmodelled:
            unmodelled_files.append(path)
    workload_keys, found_workloads = _sorted_unique(workload_pairs)
    policy_keys, found_policies = _sorted_unique(policy_pairs)
    port_warnings = _port_warnings(found_policies, defined, referenced, texts, cache)
    names = tuple(sorted(declared.keys() | use.keys()))
    admin = _admin_order(by_file, admin_files)
    found_namespaces = tuple(declared.get(n) or implicit_namespace(n) for n in names)
    calico = _calico(by_file, found_workloads, found_namespaces)
    if len({identity(c) for c in found_cilium}) != len(found_cilium):
        raise _Rebuild  # a duplicate name
    if found_cilium:
        services = [s for models in by_file.values() for s in models.services]
        found_cilium = resolve_services(found_cilium, services)
    tree = Tree(
        namespaces=found_namespaces,
        workloads=found_workloads,
        policies=found_policies,
        admin_policies=admin.policies,
        warnings=admin.warnings + port_warnings + (calico.warnings if calico else ()),
        unanalysed=(
            admin.unanalysed
            + (calico.unanalysed if calico else ())
            + tuple(n for c in found_cilium for n in c.unanalysed)
        ),
        unmodelled=_unmodelled(by_file, unmodelled_files),
        texts=texts,
        calico=calico.objects if calico else None,
        cilium_policies=tuple(sorted(found_cilium, key=lambda p: (p.kind, p.namespace, p.name))),
        cilium_agent=cilium_agent,
    )
    return TreeState(
        tree=tree,
        files=files,
        by_file=by_file,
        declared_namespaces=declared,
        namespace_use=use,
        namespace_names=names,
        workload_keys=workload_keys,
        policy_keys=policy_keys,
        admin_files=tuple(admin_files),
        unmodelled_files=tuple(unmodelled_files),
        port_definitions=defined,
        port_references=referenced,
        admin_warnings=admin.warnings,
        port_warnings=port_warnings,
        workload_kinds=workload_kinds,
        parse_cache=cache,
        cilium_agent=cilium_agent,
    )


def _port_warnings(
    policies: Sequence[NetworkPolicy],
    defined: Mapping[str, int],
    referenced: Mapping[str, int],
    texts: Mapping[str, bytes | str],
    cache: ParseCache,
) -> tuple[str, ...]:
    if all(name in defined for name in referenced):
        return ()  # the usual case, without a pass over the policies
    return named_port_warnings(policies, defined, texts, cache)


_K = TypeVar("_K", WorkloadKey, PolicyKey)
_V = TypeVar("_V", Workload, NetworkPolicy)


def _sorted_unique(pairs: list[tuple[_K, _V]]) -> tuple[tuple[_K, ...], tuple[_V, ...]]:
    # Keys are unique in a valid tree, so this is the order build_tree's sort gives.
    pairs.sort(key=itemgetter(0))
    keys = tuple(map(itemgetter(0), pairs))
    if len(set(keys)) != len(keys):
        raise _Rebuild  # a duplicate name
    return keys, tuple(map(itemgetter(1), pairs))


def _admin_order(
    by_file: Mapping[str, FileModels], admin_files: Iterable[str]
) -> adminpolicies.AdminOrder:
    # Few admin policies exist in any tree: order them all again, in build_tree's order.
    found = [a for path in admin_files for a in by_file[path].admin_policies]
    if len({identity(a) for a in found}) != len(found):
        raise _Rebuild
    return adminpolicies.evaluation_order(found)


def _unmodelled(
    by_file: Mapping[str, FileModels], paths: Iterable[str]
) -> tuple[UnmodelledPolicy, ...]:
    return tuple(sorted(u for path in paths for u in by_file[path].unmodelled))


def _defined_port_names(workload: Workload) -> list[str]:
    return [p.name for p in workload.ports if p.name]


def _referenced_port_names(policy: NetworkPolicy) -> list[str]:
    return [
        port.port
        for rule in policy.ingress + policy.egress  # as check_named_ports: listed types or not
        for port in rule.ports
        if isinstance(port.port, str)
    ]


def _count(counts: dict[str, int], names: Iterable[str], step: int) -> None:
    for name in names:
        left = counts.get(name, 0) + step
        if left:
            counts[name] = left
        else:
            del counts[name]


# ---------------------------------------------------------------------------- derived

# Above this many removed plus added objects of one kind, merge by one sort rather than
# move the tail of the sorted tuple for each (quadratic in a change of the whole tree).
_BISECT_LIMIT = 256


def _derive(
    state: TreeState, edits: Mapping[str, bytes | str | None], files: dict[str, bytes | str]
) -> TreeState:
    tree = state.tree
    cache = state.parse_cache
    if tree.cilium_policies:
        raise _Rebuild  # Cilium policies are few: assemble the tree again
    before = [state.by_file[p] for p in edits if p in state.by_file]
    by_file = dict(state.by_file)
    after: list[FileModels] = []
    old_texts = tree.texts
    texts: dict[str, bytes | str] | None = None  # copied when the change touches it
    for path, content in edits.items():
        if content is None:
            del by_file[path]
            keep = False
        else:
            kinds = state.workload_kinds
            objects = parse_file(
                path, content, exact=False, exact_kinds=custom_kind_names(kinds), cache=cache
            )
            models = by_file[path] = _file_models(path, objects, kinds, cache)
            if models.cilium:
                raise _Rebuild
            after.append(models)
            keep = needs_text(objects)
        if keep or path in old_texts:
            if texts is None:
                texts = dict(old_texts)
            if keep and content is not None:
                texts[path] = content
            else:
                del texts[path]  # no policy of it is fast-read any more

    gone_workloads = [w for m in before for w in m.workloads]
    new_workloads = [w for m in after for w in m.workloads]
    gone_policies = [p for m in before for p in m.policies]
    new_policies = [p for m in after for p in m.policies]

    workload_keys, found_workloads = _update_sorted(
        state.workload_keys,
        tree.workloads,
        [((w.namespace, w.kind, w.name), w) for w in gone_workloads],
        [((w.namespace, w.kind, w.name), w) for w in new_workloads],
    )
    policy_keys, found_policies = _update_sorted(
        state.policy_keys,
        tree.policies,
        [((p.namespace, p.name), p) for p in gone_policies],
        [((p.namespace, p.name), p) for p in new_policies],
    )

    declared, use, names, found_namespaces = _update_namespaces(
        state,
        [n for m in before for n in m.namespaces],
        [n for m in after for n in m.namespaces],
        [*gone_workloads, *gone_policies, *(c for m in before for c in _namespaced(m))],
        [*new_workloads, *new_policies, *(c for m in after for c in _namespaced(m))],
    )

    defined, referenced = _update_ports(
        state, gone_workloads, new_workloads, gone_policies, new_policies
    )
    new_texts = old_texts if texts is None else texts
    port_warnings = state.port_warnings
    if defined is not state.port_definitions or referenced is not state.port_references:
        port_warnings = _port_warnings(found_policies, defined, referenced, new_texts, cache)
    elif port_warnings and (gone_policies or new_policies):
        # Same names, but a warned policy may have moved to other lines.
        port_warnings = _port_warnings(found_policies, defined, referenced, new_texts, cache)

    admin_files = state.admin_files
    admin = adminpolicies.AdminOrder(tree.admin_policies, state.admin_warnings, tree.unanalysed)
    if tree.calico is not None:
        # tree.unanalysed holds the Calico notes too: take the admin ones anew.
        admin = _admin_order(by_file, admin_files)
    if any(m.admin_policies for m in before) or any(m.admin_policies for m in after):
        with_admin = set(admin_files).difference(edits)
        with_admin.update(p for p in edits if p in by_file and by_file[p].admin_policies)
        admin_files = tuple(sorted(with_admin))
        admin = _admin_order(by_file, admin_files)
    unmodelled_files, found_unmodelled = state.unmodelled_files, tree.unmodelled
    if any(m.unmodelled for m in before) or any(m.unmodelled for m in after):
        with_unmodelled = set(unmodelled_files).difference(edits)
        with_unmodelled.update(p for p in edits if p in by_file and by_file[p].unmodelled)
        unmodelled_files = tuple(sorted(with_unmodelled))
        found_unmodelled = _unmodelled(by_file, unmodelled_files)

    calico = _calico(by_file, found_workloads, found_namespaces)
    return TreeState(
        tree=Tree(
            namespaces=found_namespaces,
            workloads=found_workloads,
            policies=found_policies,
            admin_policies=admin.policies,
            warnings=admin.warnings + port_warnings + (calico.warnings if calico else ()),
            unanalysed=admin.unanalysed + (calico.unanalysed if calico else ()),
            unmodelled=found_unmodelled,
            texts=new_texts,
            calico=calico.objects if calico else None,
            cilium_agent=state.cilium_agent,
        ),
        files=files,
        by_file=by_file,
        declared_namespaces=declared,
        namespace_use=use,
        namespace_names=names,
        workload_keys=workload_keys,
        policy_keys=policy_keys,
        admin_files=admin_files,
        unmodelled_files=unmodelled_files,
        port_definitions=defined,
        port_references=referenced,
        admin_warnings=admin.warnings,
        port_warnings=port_warnings,
        workload_kinds=state.workload_kinds,
        parse_cache=cache,
        cilium_agent=state.cilium_agent,
    )


def _update_sorted(
    keys: tuple[_K, ...],
    items: tuple[_V, ...],
    removed: Sequence[tuple[_K, _V]],
    added: Sequence[tuple[_K, _V]],
) -> tuple[tuple[_K, ...], tuple[_V, ...]]:
    """The sorted tuples without ``removed`` and with ``added``; a key added twice, or
    added while an unchanged file still defines it, is a duplicate name."""
    if not removed and not added:
        return keys, items
    if len(removed) + len(added) > _BISECT_LIMIT:
        gone = {k for k, _ in removed}
        pairs = [(k, v) for k, v in zip(keys, items, strict=True) if k not in gone]
        if len(pairs) != len(keys) - len(removed):
            raise _Rebuild  # the index lost track of an object
        pairs.extend(added)
        return _sorted_unique(pairs)
    key_list = list(keys)
    item_list = list(items)
    for key, _ in removed:
        at = bisect_left(key_list, key)
        if at == len(key_list) or key_list[at] != key:
            raise _Rebuild  # the index lost track of an object
        del key_list[at]
        del item_list[at]
    for key, item in added:
        at = bisect_left(key_list, key)
        if at < len(key_list) and key_list[at] == key:
            raise _Rebuild  # a duplicate name
        key_list.insert(at, key)
        item_list.insert(at, item)
    return tuple(key_list), tuple(item_list)


def _update_namespaces(
    state: TreeState,
    undeclared: Sequence[Namespace],
    declared_now: Sequence[Namespace],
    left: Sequence[Workload | NetworkPolicy | CalicoPolicy],
    entered: Sequence[Workload | NetworkPolicy | CalicoPolicy],
) -> tuple[Mapping[str, Namespace], Mapping[str, int], tuple[str, ...], tuple[Namespace, ...]]:
    declared = state.declared_namespaces
    use = state.namespace_use
    touched: set[str] = set()
    if undeclared or declared_now:
        new_declared = dict(declared)
        for ns in undeclared:
            del new_declared[ns.name]
            touched.add(ns.name)
        for ns in declared_now:
            if ns.name in new_declared:
                raise _Rebuild  # a duplicate name
            new_declared[ns.name] = ns
            touched.add(ns.name)
        declared = new_declared
    if left or entered:
        new_use = dict(use)
        _count(new_use, (o.namespace for o in left), -1)
        _count(new_use, (o.namespace for o in entered), 1)
        use = new_use
        touched.update(o.namespace for o in left)
        touched.update(o.namespace for o in entered)
    names = state.namespace_names
    found = state.tree.namespaces
    changes: list[tuple[str, Namespace | None]] = []
    for name in sorted(touched):
        want = declared.get(name) or (implicit_namespace(name) if name in use else None)
        at = bisect_left(names, name)
        have = found[at] if at < len(names) and names[at] == name else None
        if want != have:
            changes.append((name, want))
    if not changes:
        return declared, use, names, found
    name_list = list(names)
    ns_list = list(found)
    for name, want in changes:
        at = bisect_left(name_list, name)
        present = at < len(name_list) and name_list[at] == name
        if want is None:
            del name_list[at]
            del ns_list[at]
        elif present:
            ns_list[at] = want
        else:
            name_list.insert(at, name)
            ns_list.insert(at, want)
    return declared, use, tuple(name_list), tuple(ns_list)


def _update_ports(
    state: TreeState,
    gone_workloads: Sequence[Workload],
    new_workloads: Sequence[Workload],
    gone_policies: Sequence[NetworkPolicy],
    new_policies: Sequence[NetworkPolicy],
) -> tuple[Mapping[str, int], Mapping[str, int]]:
    """Port name counts after the change (the same mappings when no name was touched)."""
    lost = [n for w in gone_workloads for n in _defined_port_names(w)]
    gained = [n for p in new_policies for n in _referenced_port_names(p)]
    defined = _recount(
        state.port_definitions, lost, [n for w in new_workloads for n in _defined_port_names(w)]
    )
    referenced = _recount(
        state.port_references, [n for p in gone_policies for n in _referenced_port_names(p)], gained
    )
    return defined, referenced


def _recount(
    counts: Mapping[str, int], gone: Sequence[str], new: Sequence[str]
) -> Mapping[str, int]:
    """``counts`` less ``gone``, plus ``new`` (the same mapping when both are empty)."""
    if not gone and not new:
        return counts
    out = dict(counts)
    _count(out, gone, -1)
    _count(out, new, 1)
    return out
