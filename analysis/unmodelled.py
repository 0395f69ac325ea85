"""Objects that enforce traffic in ways reachdiff does not model: CNI and mesh policy kinds.

A Cilium, Calico or Antrea policy, an Istio ``AuthorizationPolicy``… decides traffic next to
the NetworkPolicies reachdiff reads. Where one exists, the map computed without it is not
what the cluster enforces, so such objects are kept (by name, file and line) instead of
being skipped like ConfigMaps, and whoever renders a result says that it was **not
analysed** (docs/semantics.md, "Policy kinds reachdiff does not model").

The kinds are known by API group, and any other kind whose name says it is a network or
authorization policy is taken as one too: guessing "not a policy" would pass a change
silently, guessing "a policy" only asks for an ``ignore_kinds`` entry.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from analysis.model import Source, UnmodelledPolicy, group_of
from analysis.yamldoc import YMap

# API group -> the kinds of it that decide traffic. Sources: the CRDs of each project
# (cilium/cilium pkg/k8s/apis/cilium.io, projectcalico/api, antrea-io/antrea
# pkg/apis/crd, istio/api security, linkerd2 policy, network-policy-api, ...).
# Calico's NetworkPolicy and GlobalNetworkPolicy are modelled (analysis.calicopolicies);
# a HostEndpoint puts a node's interfaces under Calico policies, which no manifest settles.
_CALICO = frozenset({"HostEndpoint"})
_ANTREA = frozenset({"NetworkPolicy", "ClusterNetworkPolicy"})
POLICY_KINDS: dict[str, frozenset[str]] = {
    "cilium.io": frozenset({"CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy"}),
    "projectcalico.org": _CALICO,
    "crd.projectcalico.org": _CALICO,
    "crd.antrea.io": _ANTREA,
    "security.antrea.tanzu.vmware.com": _ANTREA,  # Antrea before v1.0
    "security.istio.io": frozenset({"AuthorizationPolicy", "PeerAuthentication"}),
    "policy.linkerd.io": frozenset(
        {"Server", "ServerAuthorization", "AuthorizationPolicy", "MeshTLSAuthentication"}
    ),
    "consul.hashicorp.com": frozenset({"ServiceIntentions"}),
    "kuma.io": frozenset({"TrafficPermission", "MeshTrafficPermission"}),
    "access.smi-spec.io": frozenset({"TrafficTarget"}),
    "k8s.cni.cncf.io": frozenset({"MultiNetworkPolicy"}),
    "k8s.ovn.org": frozenset({"EgressFirewall"}),
    "network.openshift.io": frozenset({"EgressNetworkPolicy"}),
    "networking.k8s.aws": frozenset({"ApplicationNetworkPolicy", "ClusterNetworkPolicy"}),
}
# Any other kind named like one of these decides traffic too (FQDNNetworkPolicy, a new
# policy.networking.k8s.io version, ...). Calico's staged policies are previews it does
# not enforce.
_POLICY_NAME = re.compile(r"(NetworkPolicy|AuthorizationPolicy|Firewall|TrafficPermission)$")
_NOT_ENFORCED = re.compile(r"^Staged")
MODELLED_NAMES = frozenset({"NetworkPolicy", "AdminNetworkPolicy", "ClusterNetworkPolicy"})
# Objects that deploy what reachdiff never sees: a chart or manifests fetched from a chart
# or OCI repository, another git repository or path, rendered with values and parameters
# the object holds (Flux's HelmRelease, Argo CD's Application and ApplicationSet). Their
# pods and policies are outside the tree (pods outside count as representatives), so an
# unchanged one is no finding; one the change adds, removes or changes changes what the
# cluster runs in ways the map cannot show, and is reported (onedr0p/home-ops: 69
# HelmReleases and no workload in the tree). Sources: the Flux helm-controller and Argo CD
# CRDs.
DELIVERY_KINDS: dict[str, frozenset[str]] = {
    "helm.toolkit.fluxcd.io": frozenset({"HelmRelease"}),
    "argoproj.io": frozenset({"Application", "ApplicationSet"}),
}
# Flux's Kustomization applies a path of this repository, which reachdiff renders with
# kustomize alone; these fields of it change what is applied (patches rewrite any object,
# a policy's selectors included; postBuild substitutes ${VARS}; targetNamespace moves
# every object). One whose fields the change adds, removes or changes is a delivery
# object as above; one without them, or with the same ones, deploys what the tree shows.
FLUX_KUSTOMIZE_GROUP = "kustomize.toolkit.fluxcd.io"
FLUX_RENDER_FIELDS = (
    "patches",
    "patchesStrategicMerge",
    "patchesJson6902",
    "postBuild",
    "targetNamespace",
    "components",
)
# `Kind` or `Kind.group`, as an ignore_kinds entry names kinds.
KIND_REFERENCE = re.compile(r"[A-Z][A-Za-z0-9]{0,62}(?:\.[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?)*")


def enforces_traffic(api_version: str, kind: str) -> bool:
    """Whether objects of this kind (not one reachdiff models) decide traffic."""
    group = group_of(api_version)
    if kind in POLICY_KINDS.get(group, ()):
        return True
    return _POLICY_NAME.search(kind) is not None and not _NOT_ENFORCED.match(kind)


def delivers(api_version: str, kind: str) -> bool:
    """Whether objects of this kind deploy content reachdiff does not render."""
    return kind in DELIVERY_KINDS.get(group_of(api_version), ())


def is_delivery(policy: UnmodelledPolicy) -> bool:
    return delivers(policy.api_version, policy.kind) or _is_flux_kustomization(
        policy.api_version, policy.kind
    )


def _is_flux_kustomization(api_version: str, kind: str) -> bool:
    return kind == "Kustomization" and group_of(api_version) == FLUX_KUSTOMIZE_GROUP


def _flux_render_fields(obj: YMap) -> dict[str, object] | None:
    """The fields of a Flux Kustomization that change what it applies; None if none."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return None
    found = {k: spec[k] for k in FLUX_RENDER_FIELDS if spec.get(k) not in (None, "", [], {})}
    return found or None


def unmodelled_policy(obj: YMap, source: Source) -> UnmodelledPolicy | None:
    """The object as an unmodelled policy (or delivery object), or None if its kind
    decides no traffic."""
    kind, api_version = obj.get("kind"), obj.get("apiVersion")
    if not isinstance(kind, str) or not isinstance(api_version, str):
        return None
    digested: object = obj
    if _is_flux_kustomization(api_version, kind):
        fields = _flux_render_fields(obj)
        if fields is None:
            return None
        digested = fields  # an interval or a label changed is no finding
    elif not enforces_traffic(api_version, kind) and not delivers(api_version, kind):
        return None
    meta = obj.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    namespace = meta.get("namespace") if isinstance(meta, dict) else None
    return UnmodelledPolicy(
        kind=kind,
        namespace=namespace if isinstance(namespace, str) else "",
        name=name if isinstance(name, str) else "(unnamed)",
        api_version=api_version,
        source=source,
        digest=_digest(digested),
    )


def _digest(obj: object) -> str:
    try:
        text = json.dumps(obj, sort_keys=True, default=str, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):  # keys of mixed types, deep nesting
        return ""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


# --- what a review says about them ---------------------------------------------------------

ADDED, REMOVED, CHANGED, UNCHANGED, PRESENT = "added", "removed", "changed", "unchanged", "present"


@dataclass(frozen=True, slots=True)
class Finding:
    """An unmodelled policy of a reviewed tree, and what the change did to it."""

    policy: UnmodelledPolicy
    tree: str  # where ``policy.source`` points: "head", "base" (removed), or "" for a map
    status: str  # added | removed | changed | unchanged | present (a map: one tree)
    environment: str = ""  # the kustomize or Helm environment, "" for plain manifests

    def describe(self) -> str:
        """``cilium.io/CiliumNetworkPolicy shop/allow-web (policies/cnp.yaml:3, unchanged)``"""
        where = f"{self.tree} " if self.tree == "base" else ""
        env = f"{self.environment}: " if self.environment else ""
        return f"{env}{self.policy.id} ({where}{self.policy.source}, {self.status})"

    def to_json(self, *, ignored: bool) -> dict[str, object]:
        p = self.policy
        return {
            "kind": p.kind,
            "api_version": p.api_version,
            "namespace": p.namespace,
            "name": p.name,
            "file": p.source.file,
            "line": p.source.line,
            "tree": self.tree,
            "status": self.status,
            "environment": self.environment,
            "ignored": ignored,
        }

    def message(self) -> str:
        p = self.policy
        if _is_flux_kustomization(p.api_version, p.kind):
            return (
                f"{self.describe()}: its {', '.join(FLUX_RENDER_FIELDS[:5])} or components "
                "change what Flux applies from this repository, which reachdiff renders with "
                "kustomize alone, so what this change does is not analysed; list "
                f"`Kustomization.{FLUX_KUSTOMIZE_GROUP}` under `ignore_kinds` in "
                ".github/reachdiff.yml to review without it"
            )
        if is_delivery(p):
            return (
                f"{self.describe()}: {p.kind} ({p.api_version}) deploys what reachdiff does "
                "not render (a chart or manifests from elsewhere, with its own values), so "
                "what this change does to those pods and policies is not analysed; list "
                f"`{p.kind}` under `ignore_kinds` in .github/reachdiff.yml to review without it"
            )
        # Calico's and Antrea's NetworkPolicy: the bare name would read as the core kind's.
        entry = f"{p.kind}.{p.group}" if p.kind in MODELLED_NAMES else p.kind
        return (
            f"{self.describe()}: reachdiff does not model {p.kind} ({p.api_version}), so "
            "the access shown is not what the cluster enforces; list "
            f"`{entry}` under `ignore_kinds` in .github/reachdiff.yml to review without it"
        )


def tree_findings(
    policies: Sequence[UnmodelledPolicy], environment: str = ""
) -> tuple[Finding, ...]:
    """The findings of one tree on its own (``reachdiff map``); delivery objects only
    matter when a change touches them."""
    return tuple(Finding(p, "", PRESENT, environment) for p in policies if not is_delivery(p))


def change_findings(
    base: Sequence[UnmodelledPolicy], head: Sequence[UnmodelledPolicy], environment: str = ""
) -> tuple[Finding, ...]:
    """Every unmodelled policy of either tree, with what the change did to it.

    Present means reported, changed or not: an unchanged Cilium policy still decides
    traffic the map does not show, so neither tree's map is the cluster's. An unchanged
    delivery object (``DELIVERY_KINDS``) is left out: it deploys what it deployed before.
    """
    key = _identity
    before = {key(p): p for p in base}
    out = []
    seen = set()
    for p in head:
        old = before.get(key(p))
        seen.add(key(p))
        if old is None:
            status = ADDED
        elif p.digest and p.digest == old.digest:
            status = UNCHANGED
        else:
            status = CHANGED
        if status == UNCHANGED and is_delivery(p):
            continue  # deploys the same as before: its pods are outside the tree either way
        out.append(Finding(p, "head", status, environment))
    out += [Finding(p, "base", REMOVED, environment) for p in base if key(p) not in seen]
    return tuple(out)


def _identity(p: UnmodelledPolicy) -> tuple[str, str, str, str]:
    return (p.group, p.kind, p.namespace, p.name)


def split(
    findings: Iterable[Finding], ignore_kinds: Iterable[str]
) -> tuple[tuple[Finding, ...], tuple[Finding, ...]]:
    """(not analysed, ignored): the findings ``ignore_kinds`` does not name, and those it does."""
    ignore = tuple(ignore_kinds)
    blocking: list[Finding] = []
    ignored: list[Finding] = []
    for f in findings:
        (ignored if f.policy.ignored_by(ignore) else blocking).append(f)
    return tuple(blocking), tuple(ignored)


def ignored_summary(ignored: Sequence[Finding]) -> str:
    """One line: ``ignored (ignore_kinds): 2 CiliumNetworkPolicy (1 changed by this change)``."""
    counts: dict[str, list[int]] = {}
    for f in ignored:
        entry = counts.setdefault(f.policy.kind, [0, 0])
        entry[0] += 1
        entry[1] += f.status in (ADDED, REMOVED, CHANGED)
    parts = []
    for kind, (total, changed) in sorted(counts.items()):
        note = f" ({changed} added, removed or changed)" if changed else ""
        parts.append(f"{total} {kind}{note}")
    return "not analysed, as ignore_kinds says: " + ", ".join(parts)
