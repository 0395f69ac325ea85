"""Kustomize overlays that explicit ``kustomize_roots`` leave unrendered, changed anyway.

With ``kustomize_roots`` set, only those roots are rendered. An overlay no other
kustomization includes and no configured root reaches is rendered by nobody here, yet a
tool may deploy it (an Argo CD Application or a Flux Kustomization naming its path): a
pull request adding one that patches the shared base's default-deny away, or editing one,
changes what that deployment gets while every rendered environment stays the same. Such a
change is reported as not analysed, naming the overlay, until ``kustomize_roots`` lists it.
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
    """Overlays (``kustomize.default_roots``) outside every configured root that the
    change adds, removes or edits a file of (their directory, or a file they name)."""
    if kustomize_roots is None:
        return []  # every overlay is rendered by default
    configured = {r.strip("/").removeprefix("./") for r in kustomize_roots}
    out: dict[str, str] = {}
    for files in (base_files, head_files):
        try:
            found = kustomize.find_kustomizations(files)
        except ManifestError:
            continue  # the side's own review reports it
        reached = {k.dir for root in configured for k in kustomize.reachable(root, found)}
        for root in kustomize.default_roots(found):
            if root in reached or root in out:
                continue
            own = {k.path for k in kustomize.reachable(root, found) if k.dir not in reached}
            prefix = f"{root}/" if root else ""
            changed = sorted(
                p
                for p in base_files.keys() | head_files.keys()
                if base_files.get(p) != head_files.get(p)
                and (p in own or (p.startswith(prefix) and p.count("/") == prefix.count("/")))
            )
            if changed:
                out[root] = (
                    f"{root or '.'}: a kustomize overlay no `kustomize_roots` entry renders, "
                    f"changed by this pull request ({changed[0]}"
                    + (f" and {len(changed) - 1} more" if len(changed) > 1 else "")
                    + "): what a tool deploying it gets is not analysed (list it under "
                    "`kustomize_roots` in .github/reachdiff.yml)"
                )
    return [out[r] for r in sorted(out)]
