"""Alternative deliverables among plain manifests: files that define the same object.

Plain manifests are applied as one set, unless they hold alternatives: argo-cd's
``manifests/`` ships ``install.yaml``, ``namespace-install.yaml``, ``core-install.yaml``…
(each a whole Argo CD), microservices-demo ships its services one file each and as one
``release/kubernetes-manifests.yaml``. Two files that define the same object differently
cannot both be what a cluster runs (applied together, the second replaces the first), so
each is reviewed as its own environment.

Rules:

- Two files conflict when they define an object of one identity (what a tree must hold
  once: ``analysis.manifests.identity``, the namespaces, workloads and policies whose
  duplicates ``build_tree`` refuses) differently. Defined alike (two installs that both
  create the namespace they deploy to), it is one object: applying both files applies it
  once, and the tree is read with ``repeats``. An object defined twice in one file is not
  an alternative: the file contradicts itself, and stays an error.
- Alternatives: the conflicting files under a directory are one alternative when no two
  of them conflict (``kubernetes-manifests/``: a bundle split one service a file);
  otherwise each conflicting file directly in it is one, and each subdirectory is divided
  the same way. Files that conflict with nothing belong to every alternative.
- Names, stable while the alternatives are (a diff pairs environments by name): a file
  alternative is its path (``install.yaml``, ``ha/install.yaml``), a directory one its
  path and ``/`` (``kubernetes-manifests/``), never the name of a kustomization or chart
  root (directories, named without the ``/``) nor ``""`` (the plain manifests when they
  hold no alternatives).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from analysis.customkinds import WorkloadKinds
from analysis.errors import ManifestError
from analysis.manifests import custom_kind_names, identity, object_model, parse_file
from analysis.model import UnmodelledPolicy
from analysis.parsecache import ParseCache
from analysis.yamldoc import YMap

__all__ = ["Alternative", "Identity", "alternatives", "plain_alternatives"]

Identity = tuple[str, str, str]  # (namespace, kind, name), as analysis.manifests.identity


@dataclass(frozen=True, slots=True)
class Alternative:
    name: str  # "install.yaml", "ha/install.yaml", "kubernetes-manifests/"
    own: tuple[str, ...]  # the conflicting files it is made of
    paths: tuple[str, ...]  # what it applies: its own files and the shared ones, sorted


def plain_alternatives(
    files: Mapping[str, bytes | str],
    paths: Sequence[str],
    *,
    workload_kinds: WorkloadKinds = (),
    cache: ParseCache | None = None,
) -> list[Alternative]:
    """The alternatives among the plain manifests ``paths`` of ``files`` ([] when no two
    files define one object differently). Files are read as ``load_files`` reads them, so with the
    same ``cache`` nothing is parsed or modelled twice. An object that cannot be modelled
    counts for nothing here: reading its alternative reports it with its line."""
    kinds = custom_kind_names(workload_kinds)
    return alternatives(
        {
            path: _identities(
                path,
                parse_file(path, files[path], exact=False, exact_kinds=kinds, cache=cache),
                workload_kinds,
                cache,
            )
            for path in paths
        }
    )


def _identities(
    path: str, objects: Iterable[YMap], workload_kinds: WorkloadKinds, cache: ParseCache | None
) -> dict[Identity, object]:
    out: dict[Identity, object] = {}
    for obj in objects:
        try:
            model = object_model(path, obj, workload_kinds=workload_kinds, cache=cache)
        except ManifestError:
            continue
        if model is None or isinstance(model, UnmodelledPolicy):
            continue  # not checked for duplicates by the tree either
        out.update((identity(m), obj) for m in (model if isinstance(model, tuple) else (model,)))
    return out


def alternatives(defined: Mapping[str, Mapping[Identity, object]]) -> list[Alternative]:
    """The alternatives of files defining the given objects (identity: the object as
    parsed), by name ([] when no two files define one object otherwise)."""
    owners: dict[Identity, list[tuple[str, object]]] = {}
    for path in sorted(defined):
        for key, obj in defined[path].items():
            owners.setdefault(key, []).append((path, obj))
    conflicts: dict[str, set[str]] = {}
    for found in owners.values():
        for path, obj in found if len(found) > 1 else ():
            # Defined alike, an object is one object whichever file applies it.
            others = {q for q, other in found if q != path and other != obj}
            if others:
                conflicts.setdefault(path, set()).update(others)
    if not conflicts:
        return []
    shared = [p for p in defined if p not in conflicts]
    return [
        Alternative(name, tuple(own), tuple(sorted((*own, *shared))))
        for name, own in sorted(_units(sorted(conflicts), conflicts, ""))
    ]


def _units(
    paths: list[str], conflicts: Mapping[str, set[str]], directory: str
) -> list[tuple[str, list[str]]]:
    """(name, files) of the alternatives among ``paths``, all under ``directory``."""
    if len(paths) == 1:
        return [(paths[0], paths)]
    inside = set(paths)
    if directory and not any(conflicts[p] & inside for p in paths):
        return [(f"{directory}/", paths)]
    prefix = f"{directory}/" if directory else ""
    out: list[tuple[str, list[str]]] = []
    below: dict[str, list[str]] = {}
    for path in paths:
        child, sep, _ = path[len(prefix) :].partition("/")
        if sep:
            below.setdefault(prefix + child, []).append(path)
        else:
            out.append((path, [path]))
    for child_dir, under in below.items():
        out += _units(under, conflicts, child_dir)
    return out
