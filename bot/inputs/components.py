"""Kustomize Components that no kustomization of the repository includes.

A Component builds only into another kustomization, so reachdiff renders it as part of
the roots that include it. One that no kustomization includes but a Flux
``Kustomization`` lists under ``spec.components`` is applied by Flux, which substitutes its
``${VARS}`` (``postBuild``); reachdiff does neither. Its files are not plain
manifests either (a kustomization consumes them), so without this check a NetworkPolicy
in such a Component was never read and never said so (onedr0p/home-ops keeps its shared
pieces in ``kubernetes/components/``). A Component holding nothing reachdiff reads (alert
rules, volume claims, autoscalers) is no finding.
"""

from __future__ import annotations

from collections.abc import Mapping

from analysis.errors import ManifestError
from analysis.frontends import ROUTE_KINDS
from analysis.manifests import MANIFEST_SUFFIXES, object_model, parse_file
from analysis.yamldoc import YMap
from bot.inputs import helm, kustomize
from bot.inputs.sandbox import normalise

# Besides what object_model reads: where traffic enters (exposure).
_FRONTEND_KINDS = frozenset({"Service", "Ingress", "Gateway", *ROUTE_KINDS})
_FLUX_PREFIX = "kustomize.toolkit.fluxcd.io/"
_FLUX_GROUP = _FLUX_PREFIX.encode()


def orphan_components(files: Mapping[str, bytes]) -> list[tuple[str, str]]:
    """``(kustomization path, why)`` for every Component that a Flux Kustomization of the
    repository applies, that no kustomization includes, and whose files hold an object
    reachdiff reads. (A Component nothing names is not deployed: microservices-demo keeps
    optional ones that a user enables by editing a kustomization.)"""
    applied = _flux_components(files)
    if not applied:
        return []
    try:
        kustomizations = kustomize.find_kustomizations(files)
    except ManifestError:
        return []  # the environments' own reading reports it
    charts = helm.chart_dirs(files)
    kustomizations = {d: k for d, k in kustomizations.items() if not helm.in_chart(k.path, charts)}
    included = {d for k in kustomizations.values() for d in kustomize.includes(k, kustomizations)}
    out = []
    for directory, k in sorted(kustomizations.items()):
        if k.kind != "Component" or directory in included or directory not in applied:
            continue
        found = [
            name
            for part in kustomize.reachable(directory, kustomizations)
            for entry in part.entries
            if entry.role == "resource" and not kustomize.is_remote(entry.value)
            for name in _readable(kustomize.resolve(part, entry), files)
        ]
        if found:
            more = f" and {len(found) - 1} more" if len(found) > 1 else ""
            out.append(
                (
                    k.path,
                    "a kustomize Component that no kustomization of the repository includes "
                    "(Flux applies such with a Kustomization's spec.components and "
                    f"substitutes its variables): it holds {found[0]}{more}, which reachdiff "
                    "does not render",
                )
            )
    return out


def _flux_components(files: Mapping[str, bytes]) -> set[str]:
    """Directories the Flux Kustomizations of the repository list under spec.components
    (relative to their spec.path, as kustomize-controller resolves them)."""
    out: set[str] = set()
    for path, data in files.items():
        if not path.endswith(MANIFEST_SUFFIXES) or _FLUX_GROUP not in data:
            continue
        try:
            objects = parse_file(path, data, exact=False)
        except ManifestError:
            continue
        for obj in objects:
            api_version, spec = obj.get("apiVersion"), obj.get("spec")
            if obj.get("kind") != "Kustomization" or not isinstance(spec, dict):
                continue
            if not (isinstance(api_version, str) and api_version.startswith(_FLUX_PREFIX)):
                continue
            path_field = spec.get("path")
            base = normalise("", path_field) if isinstance(path_field, str) else ""
            components = spec.get("components")
            for entry in components if isinstance(components, list) else ():
                if isinstance(entry, str):
                    target = normalise(base or "", entry)
                    if target is not None:
                        out.add(target)
    return out


def _readable(path: str | None, files: Mapping[str, bytes]) -> list[str]:
    if path is None or path not in files or not path.endswith(MANIFEST_SUFFIXES):
        return []
    try:
        objects = parse_file(path, files[path], exact=False)
    except ManifestError:
        return []  # not YAML: kustomize would refuse it too
    return [d for d in (_describe(path, obj) for obj in objects) if d]


def _describe(path: str, obj: YMap) -> str:
    kind = obj.get("kind")
    try:
        read = object_model(path, obj) is not None
    except ManifestError:
        read = True  # invalid (an unsubstituted ${VAR}), but of a kind reachdiff reads
    if not read and kind not in _FRONTEND_KINDS:
        return ""
    meta = obj.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    return f"{kind} {name}" if isinstance(name, str) else str(kind)
