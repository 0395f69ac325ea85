"""The facts owner rules match besides endpoint ids: pod and namespace labels.

Computed where the trees are (the analysis worker), for the endpoints of opened paths only:
a review's result carries them without the trees.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from analysis.diff import PathChange, ReachabilityDiff
from analysis.model import Labels
from analysis.outside import OUTSIDE_KIND, is_outside_namespace


@dataclass(frozen=True, slots=True)
class EndpointFacts:
    """What owner rules may match of one endpoint besides its id: its pod and namespace
    labels, and whether each set is exactly known (a workload of the repository, a
    namespace of the repository: defined by a ``Namespace`` object, or only named, then
    with just its name label as the engine models it) or only partly (a representative
    and its namespace): then a label it does not pin may be anything."""

    id: str  # as in the diff (environment-qualified when it is)
    pod_labels: Labels = ()
    pod_exact: bool = True
    namespace_labels: Labels = ()
    namespace_exact: bool = True


def endpoint_facts(
    opened: Sequence[PathChange],
    per_environment: Sequence[tuple[str, ReachabilityDiff]],
    *,
    qualify: bool,
) -> tuple[EndpointFacts, ...]:
    """Each workload or representative of an ``opened`` path, with its labels as the head
    tree has them (the base's for one only the base has); ``qualify``: ids carry their
    environment (``overlays/prod:shop/Deployment/web``; ``.`` for plain manifests)."""
    wanted = {e.id for c in opened for e in (c.src, c.dst) if not e.is_external}
    found: dict[str, EndpointFacts] = {}
    for name, env in per_environment:
        for tree in (env.head.tree, env.base.tree):
            namespaces = {n.name: n for n in tree.namespaces}
            for w in tree.workloads:
                key = f"{name or '.'}:{w.id}" if qualify else w.id
                if key not in wanted or key in found:
                    continue
                ns = namespaces.get(w.namespace)
                found[key] = EndpointFacts(
                    id=key,
                    pod_labels=w.labels,
                    pod_exact=w.kind != OUTSIDE_KIND,
                    namespace_labels=ns.labels if ns is not None else (),
                    # A namespace the tree only names has just its name label, as the
                    # engine models it; a representative one stands for many.
                    namespace_exact=ns is not None and not is_outside_namespace(ns.name),
                )
    return tuple(found[k] for k in sorted(found))
