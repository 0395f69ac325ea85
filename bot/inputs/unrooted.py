"""Kustomize overlays a pull request adds outside explicit ``kustomize_roots``.

With ``kustomize_roots`` set, only those roots are rendered: an overlay left out was left
out on purpose (``overlays/dev`` is not reviewed). A new overlay is not one the settings
could have considered, yet a tool may deploy it (an Argo CD Application or a Flux
Kustomization naming its path): one that patches the shared base's default-deny away
changes what that deployment gets while every rendered environment stays the same. Such
an overlay is reported as not analysed, naming it, until ``kustomize_roots`` lists it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from analysis.errors import ManifestError
from bot.inputs import kustomize


def unrooted_changes(
    base_files: Mapping[str, bytes],
    head_files: Mapping[str, bytes],
    kustomize_roots: Sequence[str] | None,
) -> list[str]:
    """Overlays of the head (``kustomize.default_roots``) that no configured root reaches
    and whose kustomization file the change adds."""
    if kustomize_roots is None:
        return []  # every overlay is rendered by default
    try:
        found = kustomize.find_kustomizations(head_files)
    except ManifestError:
        return []  # the head's own review reports it
    configured = {r.strip("/").removeprefix("./") for r in kustomize_roots}
    reached = {k.dir for root in configured for k in kustomize.reachable(root, found)}
    return [
        f"{root or '.'}: a kustomize overlay this pull request adds ({found[root].path}) that "
        "no `kustomize_roots` entry renders: what a tool deploying it gets is not analysed "
        "(list it under `kustomize_roots` in .github/reachdiff.yml)"
        for root in kustomize.default_roots(found)
        if root not in reached and found[root].path not in base_files
    ]
