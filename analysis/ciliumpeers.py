"""Cilium's peers that are not pods: entities and DNS names, as named pseudo-endpoints.

Cilium policies name peers a manifest tree does not define as workloads: the node a pod runs
on (entity ``host``), the other nodes (``remote-node``), the API server
(``kube-apiserver``), Cilium's ingress proxy (``ingress``), its health endpoints
(``health``), endpoints still being set up (``init``), pods Cilium does not manage
(``unmanaged``), and, with ``toFQDNs``, the addresses DNS names resolve to. In a tree with
Cilium policies each of these is an endpoint of the map, named ``entity:host``,
``fqdn:*.example.com``…, so that a change of what reaches them is a path like any other.

They are synthetic workloads (kinds ``Entity`` and ``FQDN``, namespace ``""``) marked
host-network: no label selector of any kind selects them and no policy isolates them
(host policies, which could, are reported *not analysed*). Each carries one label telling
which it is (``reserved:host``…, ``fqdn:name``/``fqdn:pattern``), which the compiler
indexes for Cilium's entity and FQDN rules only.

Source of the entities and their grouping: Cilium's ``pkg/policy/api/entity.go`` (Apache-2.0)
and docs.cilium.io, *Layer 3 Policies*, *Entities Based*; facts only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import replace

from analysis.model import Source, Tree, Workload

ENTITY_KIND = "Entity"
FQDN_KIND = "FQDN"
PSEUDO_KINDS = frozenset({ENTITY_KIND, FQDN_KIND})
RESERVED = "reserved:"
FQDN_NAME = "fqdn:name"
FQDN_PATTERN = "fqdn:pattern"
_NO_SOURCE = Source("", 0)

# The entities that are endpoints of their own, in the order the map lists them. `cluster`
# is them all (except none) plus every pod; `all` is everything; `world` the outside.
ENTITY_ENDPOINTS = (
    "host",
    "remote-node",
    "kube-apiserver",
    "ingress",
    "health",
    "init",
    "unmanaged",
)
_MEANING = {
    "host": "the node the pod runs on (Cilium entity host)",
    "remote-node": "the cluster's other nodes (Cilium entity remote-node)",
    "kube-apiserver": "the Kubernetes API server, in or outside the cluster "
    "(Cilium entity kube-apiserver)",
    "ingress": "Cilium's ingress and Gateway API proxy (Cilium entity ingress)",
    "health": "Cilium's health-check endpoints (Cilium entity health)",
    "init": "endpoints whose identity is not yet known (Cilium entity init)",
    "unmanaged": "pods Cilium does not manage (Cilium entity unmanaged)",
}


def pseudo_id(kind: str, name: str) -> str:
    return f"{'entity' if kind == ENTITY_KIND else 'fqdn'}:{name}"


def describe(kind: str, name: str) -> str:
    if kind == ENTITY_KIND:
        return _MEANING.get(name, f"Cilium entity {name}")
    if "*" in name:
        return f"the addresses of DNS names matching {name} (Cilium toFQDNs, never resolved)"
    return f"the addresses {name} resolves to (Cilium toFQDNs, never resolved)"


def is_pseudo(w: Workload) -> bool:
    return w.kind in PSEUDO_KINDS


def normal_fqdn(text: str) -> str:
    """DNS names compare without case and without the root's trailing dot."""
    return text.strip().lower().rstrip(".")


def _entity(name: str) -> Workload:
    return Workload(ENTITY_KIND, "", name, ((RESERVED + name, ""),), (), True, _NO_SOURCE)


def _fqdn(text: str) -> Workload:
    key = FQDN_PATTERN if "*" in text else FQDN_NAME
    return Workload(FQDN_KIND, "", text, ((key, text),), (), True, _NO_SOURCE)


def fqdn_matches(selector: str, name: str) -> bool:
    """Whether the DNS names of the endpoint ``name`` (a name, or a pattern) are all among
    those ``selector`` (a matchName, or a matchPattern) admits. A pattern's ``*`` matches
    within one label (letters, digits, ``-``, ``_``); a lone ``*`` matches every name; a
    pattern endpoint is admitted only by the same pattern or by ``*``."""
    if selector == name or selector == "*":
        return True
    if "*" not in selector or "*" in name:
        return False
    return _glob(selector).fullmatch(name) is not None


def _glob(pattern: str) -> re.Pattern[str]:
    parts = (re.escape(p) for p in pattern.split("*"))
    return re.compile("[-a-z0-9_]*".join(parts))


def pseudo_workloads(trees: Iterable[Tree]) -> tuple[Workload, ...]:
    """The pseudo-endpoints the trees' Cilium policies call for: every entity endpoint once
    any tree has a Cilium policy (or its settings name the Cilium agent), and one per DNS
    name or pattern a ``toFQDNs`` names."""
    found = False
    names: set[str] = set()
    for tree in trees:
        # Settings naming the Cilium agent say the cluster runs it, policies or not.
        found = found or tree.cilium_agent is not None
        for policy in tree.cilium_policies:
            found = True
            for spec in policy.specs:
                for rule in spec.rules:
                    names.update(rule.fqdns)
    if not found:
        return ()
    return (*map(_entity, ENTITY_ENDPOINTS), *map(_fqdn, sorted(names)))


def with_pseudo(tree: Tree, compared: Sequence[Tree] | None = None) -> Tree:
    """``tree`` with the pseudo-endpoints of the trees ``compared`` (both sides of a diff get
    the same ones, so that they pair up by id); the tree itself when there are none."""
    wanted = pseudo_workloads(compared if compared is not None else (tree,))
    have = {(w.kind, w.name) for w in tree.workloads if is_pseudo(w)}
    missing = [w for w in wanted if (w.kind, w.name) not in have]
    if not missing:
        return tree
    workloads = sorted((*tree.workloads, *missing), key=lambda w: (w.namespace, w.kind, w.name))
    return replace(tree, workloads=tuple(workloads))
