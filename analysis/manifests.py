"""Turn manifest files into a validated ``Tree``.

This is the only module that reads untrusted input. It accepts what the Kubernetes API
server accepts and rejects, with file, line and what to fix, what the API server would
reject (see docs/semantics.md), so the engine can trust every value it gets.

Why one module of 550 lines: it is the one gate of untrusted manifest text into the
engine (decoding, exactness checks, kinds, identity, the tree's assembly); keeping the
gate in one place is what lets every other module trust its input.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Container, Iterable, Mapping
from typing import Any, TypeVar

from analysis import (
    adminpolicies,
    calicopolicies,
    calicotree,
    ciliumpolicies,
    clusterpolicies,
    customkinds,
    operators,
    policies,
    unmodelled,
    workloads,
)
from analysis.calicoendpoints import service_account_model, with_accounts
from analysis.calicomodel import CalicoServiceAccount
from analysis.calicoservices import resolve_calico_services
from analysis.ciliumagent import CiliumAgent
from analysis.ciliummodel import CILIUM_KINDS, CiliumPolicy
from analysis.ciliumservices import ServiceModel, resolve_services, service_model
from analysis.customkinds import WorkloadKinds
from analysis.errors import DuplicateObjectError, ManifestError
from analysis.model import (
    CLUSTER_NETWORK_POLICY,
    NAMESPACE_NAME_LABEL,
    AdminPolicy,
    Namespace,
    NetworkPolicy,
    PolicyRule,
    Source,
    Tree,
    UnmodelledPolicy,
    Workload,
    labels_of,
)
from analysis.parsecache import ParseCache
from analysis.validation import Context, generated_name, number_generated, string_map
from analysis.yamldoc import (
    LineDict,
    YAMLSyntaxError,
    YMap,
    any_yaml11_differs,
    line_of,
    parse_documents,
    parse_documents_fast,
    unify_line_breaks,
)

__all__ = ["ManifestError", "load_files", "parse_file"]

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


def load_files(
    files: Mapping[str, bytes | str],
    *,
    workload_kinds: WorkloadKinds = (),
    cache: ParseCache | None = None,
    cilium_agent: CiliumAgent | None = None,
    repeats: bool = False,
) -> Tree:
    """Build the tree from ``{relative path: content}``; non-manifest paths are ignored.
    ``workload_kinds``: custom kinds whose objects run pods (``analysis.customkinds``);
    ``cache``: what earlier reads parsed (``analysis.parsecache``; default: none kept);
    ``cilium_agent``: the Cilium agent's options the tree is analysed under (settings);
    ``repeats``: as ``build_tree``'s."""
    cache = cache if cache is not None else ParseCache()
    paths = [p for p in sorted(files) if p.endswith(MANIFEST_SUFFIXES)]
    exact_kinds = custom_kind_names(workload_kinds)
    parsed = {
        p: parse_file(p, files[p], exact=False, exact_kinds=exact_kinds, cache=cache) for p in paths
    }
    while True:
        try:
            # Keep only the texts an explanation may need: files with fast-read policies.
            texts = {p: files[p] for p in paths if needs_text(parsed[p])}
            return build_tree(
                ((p, obj) for p in paths for obj in parsed[p]),
                texts=texts,
                workload_kinds=workload_kinds,
                cache=cache,
                cilium_agent=cilium_agent,
                repeats=repeats,
            )
        except ManifestError as err:
            # Files read by the fast parser know only document lines: parse the culprit
            # exactly and build again, so the error names the precise line.
            if err.file not in parsed or all(_is_exact(o) for o in parsed[err.file]):
                raise
            parsed[err.file] = parse_file(err.file, files[err.file], exact=True, cache=cache)


def custom_kind_names(workload_kinds: WorkloadKinds) -> frozenset[str]:
    """The kinds whose files the exact parser must read: the values a custom kind's pods
    take from its objects are not screened for what YAML 1.1 reads differently."""
    return frozenset(k.kind for k in workload_kinds)


def _is_exact(obj: YMap) -> bool:
    return getattr(obj, "exact", False)


def needs_text(objects: Iterable[YMap]) -> bool:
    """Whether a tree keeps a file's text: it holds a policy the fast parser read, whose
    rules know only their document's line until ``exact_rule_source`` reads it again."""
    return any(o.get("kind") == "NetworkPolicy" and not _is_exact(o) for o in objects)


def parse_file(
    path: str,
    content: bytes | str,
    *,
    exact: bool = True,
    exact_kinds: frozenset[str] = frozenset(),
    cache: ParseCache | None = None,
) -> list[YMap]:
    """The Kubernetes objects in one file (``kind: List`` flattened).

    With a ``cache``, results are kept by content: the two trees of a diff share most
    files, and the bot reviews many pull requests against one base. With ``exact=False`` a
    file without policies may be read by the fast parser, whose objects know only their
    document's line.
    """
    raw = content.encode() if isinstance(content, str) else content
    key = (hashlib.blake2b(raw, digest_size=20).digest(), exact)
    hit = cache.parsed(key) if cache is not None else None
    if hit is not None:
        if not exact and exact_kinds and _has_kind(hit, exact_kinds, fast_only=True):
            return parse_file(path, content, exact=True, cache=cache)
        return hit
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ManifestError(path, 1, f"not UTF-8 text ({exc.reason})") from None
    text = unify_line_breaks(text)  # so that `_last_line` counts lines as YAML does
    documents = None
    if (
        not exact
        and "AdminNetworkPolicy" not in text
        and "ClusterNetworkPolicy" not in text
        and "projectcalico.org" not in text  # Calico's kinds: every rule at its own line
        and "cilium.io/" not in text  # Cilium rules cite their own lines
    ):
        try:
            documents = parse_documents_fast(text)
        except YAMLSyntaxError as exc:
            raise ManifestError(path, min(exc.line, _last_line(text)), exc.message) from None
    precise = documents is None
    if documents is None:
        try:
            documents = parse_documents(text)
        except YAMLSyntaxError as exc:
            raise ManifestError(path, min(exc.line, _last_line(text)), exc.message) from None
    out: list[YMap] = []
    try:
        for doc in documents:
            for obj in _objects(path, doc.data, doc.line):
                if not precise and obj is not doc.data:
                    # An item of a List: only libyaml knows the line it starts on.
                    return parse_file(path, content, exact=True, cache=cache)
                if not isinstance(obj, LineDict):
                    line = doc.line
                    obj = LineDict(obj)
                    obj.line = line
                obj.exact = precise
                out.append(obj)
    except ManifestError:
        if precise:
            raise
        return parse_file(path, content, exact=True, cache=cache)  # the error names its line
    if not precise and (_CONTAINER_PORT_OCTAL.search(text) or any(map(_reads_differently, out))):
        return parse_file(path, content, exact=True, cache=cache)
    number_generated(out)
    if cache is not None:
        cache.keep_parsed(key, out)
    if not precise and exact_kinds and _has_kind(out, exact_kinds, fast_only=True):
        return parse_file(path, content, exact=True, cache=cache)
    return out


def _has_kind(objects: list[YMap], kinds: frozenset[str], *, fast_only: bool) -> bool:
    return any(
        isinstance(o.get("kind"), str) and o["kind"] in kinds and not (fast_only and _is_exact(o))
        for o in objects
    )


# "port: 017" is 15 to YAML 1.1 (Kubernetes) but 17 to YAML 1.2 (the fast parser).
_CONTAINER_PORT_OCTAL = re.compile(r"[pP]ort\W+0")


def _reads_differently(obj: YMap) -> bool:
    """Whether a YAML 1.1 reader could see another value in a field the model reads."""
    # A key that is not a string (`017:`, a number to both readers, but not the same
    # number) becomes a label key, so such objects take the exact path too.
    kind = obj.get("kind")
    if kind == "NetworkPolicy" or (isinstance(kind, str) and kind in operators.KINDS):
        found = _strings(obj)  # small objects, read almost entirely
        return found is None or any_yaml11_differs(found)
    meta = obj.get("metadata")
    values: list[object] = []
    if isinstance(meta, dict):
        values += [meta.get("name"), meta.get("generateName"), meta.get("namespace")]
        labels = meta.get("labels")
        if isinstance(labels, dict):
            values += [*labels, *labels.values()]
    kind = obj.get("kind")
    template: object = obj
    for key in workloads.TEMPLATE_PATHS.get(kind, ()) if isinstance(kind, str) else ():
        template = template.get(key) if isinstance(template, dict) else None
    if isinstance(template, dict):
        tmeta = template.get("metadata") if template is not obj else None
        labels = tmeta.get("labels") if isinstance(tmeta, dict) else None
        if isinstance(labels, dict):
            values += [*labels, *labels.values()]
        spec = template.get("spec")
        containers = [
            container
            for key in ("containers", "initContainers")  # native sidecars serve ports too
            for container in _list_at(spec, key)
        ]
        for container in containers:
            for port in _list_at(container, "ports"):
                if isinstance(port, dict):
                    values += [port.get("name"), port.get("protocol")]
    return any(isinstance(v, int | float) for v in values) or any_yaml11_differs(values)


def _list_at(value: object, key: str) -> list[Any]:
    found = value.get(key) if isinstance(value, dict) else None
    return found if isinstance(found, list) else []


def _strings(value: object) -> list[object] | None:
    """Every key and leaf value under ``value``; None if a key is not a string. A loop,
    not recursion: block nesting the pre-scan allows is deeper than Python's recursion
    limit."""
    out: list[object] = []
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            if not all(isinstance(k, str) for k in item):
                return None
            out.extend(item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        else:
            out.append(item)
    return out


def exact_rule_source(tree: Tree, policy: NetworkPolicy, rule: PolicyRule) -> Source:
    """The rule's own line, reading its file exactly if the fast parser read it."""
    exact = _exact_policy(tree.texts, policy, tree.exact_reads)
    if exact is None:
        return rule.source
    return exact.rules(rule.direction)[rule.index].source


def exact_policy(tree: Tree, policy: NetworkPolicy) -> NetworkPolicy:
    """The policy with every rule, peer and port at its own line (read again exactly if
    the fast parser read it)."""
    return _exact_policy(tree.texts, policy, tree.exact_reads) or policy


def named_port_warnings(
    sorted_policies: Iterable[NetworkPolicy],
    defined: Container[str],
    texts: Mapping[str, bytes | str],
    cache: ParseCache | None = None,
) -> tuple[str, ...]:
    """A warning, with the port entry's own line, for each named port no container of the
    tree defines (``policies.undefined_named_ports``)."""
    out = []
    for policy, rule, index in policies.undefined_named_ports(sorted_policies, defined):
        where = rule.ports[index].source
        exact = _exact_policy(texts, policy, cache)
        if exact is not None:
            where = getattr(exact, rule.direction.field)[rule.index].ports[index].source
        name = str(rule.ports[index].port)
        out.append(policies.undefined_port_warning(where, policy, rule, name))
    return tuple(out)


def _name_in(meta: YMap, file: str) -> object:
    if meta.get("name") or not isinstance(meta.get("generateName"), str):
        return meta.get("name")
    return generated_name(meta["generateName"], file, getattr(meta, "generated", 0) or 1)


def _exact_policy(
    texts: Mapping[str, bytes | str], policy: NetworkPolicy, cache: ParseCache | None
) -> NetworkPolicy | None:
    """The policy read again from its file by the exact parser, when the fast parser read
    it (its rules know only their document's line); None when its lines are exact."""
    text = texts.get(policy.source.file)
    if policy.exact_lines or text is None:
        return None
    for obj in parse_file(policy.source.file, text, exact=True, cache=cache):
        meta = obj.get("metadata")
        if obj.get("kind") != "NetworkPolicy" or not isinstance(meta, dict):
            continue
        if _name_in(meta, policy.source.file) == policy.name and (
            meta.get("namespace") or "default"
        ) == (policy.namespace):
            return _model(
                policy.source.file,
                obj,
                Context(policy.source.file, line_of(obj, 1)),
                policies.parse_network_policy,
                cache,
            )
    return None


def _last_line(text: str) -> int:
    # libyaml places errors at the end of a text without a final newline on the line after
    # it, which is not in the file (and which GitHub refuses to comment on).
    return max(1, text.count("\n") + (not text.endswith("\n")))


_MAX_LIST_NESTING = 16


def _objects(path: str, data: Any, line: int, depth: int = 0) -> Iterable[YMap]:
    # Documents that are not Kubernetes objects (Helm values, CI configs...) are skipped.
    if not isinstance(data, dict) or "apiVersion" not in data or "kind" not in data:
        return
    if data["kind"] == "List" or (
        isinstance(data["kind"], str)
        and data["kind"].endswith("List")
        and isinstance(data.get("items"), list)
    ):
        items = data.get("items") or []
        if not isinstance(items, list):
            raise ManifestError(path, line_of(data, line), "`items` of a List must be a list")
        if depth >= _MAX_LIST_NESTING:
            # Also where a YAML alias makes a List contain itself.
            raise ManifestError(
                path, line_of(data, line), f"Lists nested more than {_MAX_LIST_NESTING} deep"
            )
        for item in items:
            yield from _objects(path, item, line_of(item, line), depth + 1)
        return
    yield data


# A tuple: the workloads an operator makes of one custom resource (analysis.operators).
Model = (
    Namespace
    | Workload
    | NetworkPolicy
    | AdminPolicy
    | CiliumPolicy
    | UnmodelledPolicy
    | tuple[Workload, ...]
    | calicopolicies.CalicoModel
)


def build_tree(
    objects: Iterable[tuple[str, YMap]],
    *,
    texts: Mapping[str, bytes | str] | None = None,
    workload_kinds: WorkloadKinds = (),
    cache: ParseCache | None = None,
    cilium_agent: CiliumAgent | None = None,
    repeats: bool = False,
) -> Tree:
    """The tree of parsed objects; ``cache`` keeps their models (``analysis.parsecache``).
    With ``repeats``, an object that another file defines first exactly alike is that
    object (applying both files applies it once); otherwise, and always within one file,
    an object defined twice is a ``DuplicateObjectError``."""
    namespaces: dict[str, Namespace] = {}
    found_workloads: list[Workload] = []
    found_policies: list[NetworkPolicy] = []
    found_admin: list[AdminPolicy] = []
    found_unmodelled: list[UnmodelledPolicy] = []
    found_calico: list[calicopolicies.CalicoModel] = []
    found_cilium: list[CiliumPolicy] = []
    seen: dict[tuple[str, str, str], tuple[Source, YMap]] = {}
    services: list[ServiceModel] = []  # what Cilium's toServices name
    accounts: list[CalicoServiceAccount] = []  # whose labels Calico's selectors read
    for path, obj in objects:
        ctx = Context(path, line_of(obj, 1))
        model = object_model(path, obj, ctx, workload_kinds, cache)
        if model is None:
            service = service_model(path, obj)
            if service is not None:
                services.append(service)
            account = service_account_model(path, obj)
            if account is not None:
                accounts.append(account)
            continue
        if isinstance(model, UnmodelledPolicy):
            found_unmodelled.append(model)  # not validated, so not checked for duplicates
            continue
        keys = [identity(m) for m in model] if isinstance(model, tuple) else [identity(model)]
        if repeats and keys and all(_repeated(seen, key, obj, ctx) for key in keys):
            continue  # what another file defines alike: one object
        for key in keys:
            _check_unique(seen, key, obj, ctx)
        if isinstance(model, tuple):
            found_workloads.extend(model)
            continue
        if isinstance(model, calicopolicies.CalicoModel):
            found_calico.append(model)
        elif isinstance(model, Namespace):
            namespaces[model.name] = model
        elif isinstance(model, Workload):
            found_workloads.append(model)
        elif isinstance(model, NetworkPolicy):
            found_policies.append(model)
        elif isinstance(model, CiliumPolicy):
            found_cilium.append(model)
        else:
            found_admin.append(model)
    found_cilium = resolve_services(found_cilium, services)
    calico = calicotree.calico_objects(found_calico)
    implied = {w.namespace for w in found_workloads} | {p.namespace for p in found_policies}
    implied |= {p.namespace for p in calico.objects.policies if p.namespace}
    implied |= {p.namespace for p in found_cilium if p.namespace}
    for name in implied:
        if name not in namespaces:
            namespaces[name] = implicit_namespace(name)
    if found_calico:
        ns_labels = {n: dict(ns.labels) for n, ns in namespaces.items()}
        calico = resolve_calico_services(calico, services)
        calico = with_accounts(calico, accounts, found_workloads, ns_labels)
    admin = adminpolicies.evaluation_order(found_admin)
    sorted_policies = tuple(sorted(found_policies, key=lambda p: (p.namespace, p.name)))
    defined = {p.name for w in found_workloads for p in w.ports if p.name}
    return Tree(
        namespaces=tuple(sorted(namespaces.values(), key=lambda n: n.name)),
        workloads=tuple(sorted(found_workloads, key=lambda w: (w.namespace, w.kind, w.name))),
        policies=sorted_policies,
        admin_policies=admin.policies,
        warnings=(
            admin.warnings
            + named_port_warnings(sorted_policies, defined, texts or {}, cache)
            + calico.warnings
        ),
        unanalysed=(
            admin.unanalysed
            + calico.unanalysed
            + tuple(n for p in found_cilium for n in p.unanalysed)
        ),
        unmodelled=tuple(sorted(found_unmodelled)),
        texts=texts or {},
        calico=calico.objects if found_calico else None,
        cilium_policies=tuple(sorted(found_cilium, key=lambda p: (p.kind, p.namespace, p.name))),
        cilium_agent=cilium_agent,
    )


def object_model(
    path: str,
    obj: YMap,
    ctx: Context | None = None,
    workload_kinds: WorkloadKinds = (),
    cache: ParseCache | None = None,
) -> Model | None:
    """The model of one parsed object, or None for kinds reachdiff does not read (an
    ``UnmodelledPolicy`` for kinds that decide traffic but are not modelled).

    ``ctx`` is where the object starts (``Context(path, line_of(obj, 1))`` when omitted);
    ``workload_kinds`` the custom kinds whose objects run pods (settings); ``cache``
    keeps models by parsed object (``analysis.parsecache``).
    """
    kind = obj.get("kind")
    if not isinstance(kind, str):
        return None  # not an object of any kind reachdiff reads
    if _in_group(obj, "reachdiff.io/"):
        # Intents and connectivity tests (analysis.intents): declarations about the tree,
        # never objects of a cluster, whatever workload_kinds says.
        return None
    if ctx is None:
        ctx = Context(path, line_of(obj, 1))
    if kind == "Namespace" and _is_core(obj):
        return _model(path, obj, ctx, _namespace, cache)
    if kind in workloads.WORKLOAD_KINDS:
        return _model(path, obj, ctx, workloads.parse_workload, cache)
    if operators.is_operator_kind(kind, obj.get("apiVersion")):
        return _model(path, obj, ctx, operators.parse_operator_workloads, cache)
    custom = customkinds.find(workload_kinds, kind, obj.get("apiVersion"))
    if custom is not None:  # not memoized: the same object reads otherwise under other settings
        return customkinds.parse_custom_workload(custom, ctx, obj)
    if kind == "NetworkPolicy" and _in_group(obj, "networking.k8s.io/"):
        return _model(path, obj, ctx, policies.parse_network_policy, cache)
    if kind in adminpolicies.ADMIN_KINDS and _in_group(obj, "policy.networking.k8s.io/"):
        return _model(path, obj, ctx, adminpolicies.parse_admin_policy, cache)
    if kind == CLUSTER_NETWORK_POLICY and _in_group(obj, "policy.networking.k8s.io/"):
        return _model(path, obj, ctx, clusterpolicies.parse_cluster_network_policy, cache)
    if kind in calicopolicies.KINDS and _in_calico_group(obj):
        return _model(path, obj, ctx, calicopolicies.parse_calico, cache)
    if kind in CILIUM_KINDS and obj.get("apiVersion") == "cilium.io/v2":
        return _model(path, obj, ctx, ciliumpolicies.parse_cilium_policy, cache)
    # Last: a kind modelled above is never "not analysed".
    return unmodelled.unmodelled_policy(obj, Source(ctx.file, ctx.line))


def identity(
    model: Namespace
    | Workload
    | NetworkPolicy
    | AdminPolicy
    | CiliumPolicy
    | calicopolicies.CalicoModel,
) -> tuple[str, str, str]:
    """(namespace, kind, name): what must be unique in one tree ("" for cluster scope)."""
    if isinstance(model, CiliumPolicy):
        return (model.namespace, model.kind, model.name)
    if isinstance(model, calicopolicies.CalicoModel):
        return calicotree.identity(model)
    if isinstance(model, Namespace):
        return ("", "Namespace", model.name)
    if isinstance(model, Workload):
        return (model.namespace, model.kind, model.name)
    if isinstance(model, NetworkPolicy):
        return (model.namespace, "NetworkPolicy", model.name)
    return ("", model.kind, model.name)


def implicit_namespace(name: str) -> Namespace:
    """A namespace no manifest declares but some object is in: it has only the label the
    API server sets on every namespace."""
    return Namespace(name, labels_of({NAMESPACE_NAME_LABEL: name}))


_M = TypeVar("_M")


def _model(
    path: str,
    obj: YMap,
    ctx: Context,
    parse: Callable[[Context, YMap], _M],
    cache: ParseCache | None,
) -> _M:
    """Kept per parsed object in ``cache``: the head tree of a diff reuses the base's
    models for every file the change did not touch (parse_file hands out the same
    objects)."""
    if cache is None:
        return parse(ctx, obj)
    found, hit = cache.model(path, obj)
    if found:
        result: _M = hit
        return result
    made = parse(ctx, obj)
    cache.keep_model(path, obj, made)
    return made


def _is_core(obj: Mapping[str, Any]) -> bool:
    return obj.get("apiVersion") == "v1"


def _in_group(obj: Mapping[str, Any], group: str) -> bool:
    api_version = obj.get("apiVersion")
    return isinstance(api_version, str) and api_version.startswith(group)


def _in_calico_group(obj: Mapping[str, Any]) -> bool:
    return _in_group(obj, "projectcalico.org/") or _in_group(obj, "crd.projectcalico.org/")


def _repeated(
    seen: Mapping[tuple[str, str, str], tuple[Source, YMap]],
    key: tuple[str, str, str],
    obj: YMap,
    ctx: Context,
) -> bool:
    """Whether ``obj`` is an object another file defined first exactly alike."""
    first = seen.get(key)
    return first is not None and first[0].file != ctx.file and first[1] == obj


def _check_unique(
    seen: dict[tuple[str, str, str], tuple[Source, YMap]],
    key: tuple[str, str, str],
    obj: YMap,
    ctx: Context,
) -> None:
    if key in seen:
        ns, kind, name = key
        where = f"{ns}/{kind}/{name}" if ns else f"{kind}/{name}"
        first = seen[key][0]
        if first.file == ctx.file:
            # kubectl would apply both in turn (the second replacing the first), kustomize
            # refuses them: a file that defines an object twice contradicts itself.
            why = (
                "an object is defined once in a file (applied, the second would replace the first)"
            )
        else:
            # Plain files never reach this (bot.inputs.alternatives splits them); a chart's
            # templates or a list of objects given by a caller do.
            why = (
                "names must be unique in one tree (if these are two clusters, review each "
                "directory on its own, or use a kustomization per cluster)"
            )
        raise DuplicateObjectError(
            ctx.file,
            ctx.line,
            f"{where} is already defined at {first}; {why}",
            first.file,
            first.line,
        )
    seen[key] = (Source(ctx.file, ctx.line), obj)


def _namespace(ctx: Context, obj: YMap) -> Namespace:
    meta = ctx.mapping(obj, "metadata")
    name = ctx.name(meta, "metadata.name")
    labels = string_map(ctx.at(meta), meta.get("labels"), "metadata.labels")
    # The API server always sets this label to the namespace's own name.
    labels[NAMESPACE_NAME_LABEL] = name
    return Namespace(name, labels_of(labels), Source(ctx.file, ctx.line))
