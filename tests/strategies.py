"""Hypothesis strategies for small random clusters, and their rendering as manifest files.

Vocabularies are tiny on purpose: with two label keys and two values, selectors match,
miss and overlap often, and with a handful of port numbers, ranges and named ports
collide, which is where reachability engines go wrong.

Every generated tree is valid Kubernetes. A named port in a policy is mostly a name some
container defines; sometimes (``UNDEFINED_PORT``, or after an edit removed the last
container defining a name) one that none does, which matches nothing and is a warning.
"""

from __future__ import annotations

import copy
import ipaddress
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from hypothesis import note, settings
from hypothesis import strategies as st

from tests import reference

Obj = dict[str, Any]
Draw = Callable[[st.SearchStrategy[Any]], Any]


def examples(ci: int) -> int:
    """How many examples a property test runs: ``ci`` under the default profile, the
    profile's own count when it asks for more (``reachdiff-deep``, tests/conftest.py)."""
    profile = settings.default
    assert profile is not None  # tests/conftest.py loads a profile
    return ci if profile.derandomize else max(ci, profile.max_examples)


NAMESPACES = ("default", "alpha", "beta")
POD_KEYS = ("app", "tier")
NS_KEYS = ("team", "app")  # "app" on namespaces too, so pod/namespace selectors get mixed up
VALUES = ("a", "b", "")
PORT_NAMES = ("http", "metrics", "dns")
UNDEFINED_PORT = "htpp"  # a name no container ever defines (a typo, or pods made elsewhere)
PORT_NUMBERS = (53, 80, 81, 443, 8080, 9090)
PROTOCOLS = ("TCP", "UDP", "SCTP")
WORKLOAD_KINDS = (
    "Pod",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "Job",
    "CronJob",
    "ReplicaSet",
    "ReplicationController",
)
WORKLOAD_NAMES = ("web", "db", "api")
POLICY_NAMES = ("p1", "p2", "p3", "p4")
API_VERSION = {
    "Pod": "v1",
    "Namespace": "v1",
    "Deployment": "apps/v1",
    "StatefulSet": "apps/v1",
    "DaemonSet": "apps/v1",
    "Job": "batch/v1",
    "CronJob": "batch/v1",
    "ReplicaSet": "apps/v1",
    "ReplicationController": "v1",
    "Service": "v1",
    "ConfigMap": "v1",
    "NetworkPolicy": "networking.k8s.io/v1",
}
LINE_BREAKS = ("\n", "\n", "\r\n", "\r")  # LF first: examples shrink towards it
V4_CIDRS = ("0.0.0.0/0", "10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "192.168.0.0/16")
V6_CIDRS = ("::/0", "2001:db8::/32", "2001:db8:1::/48", "fd00::/8")


# ---------------------------------------------------------------------------- leaves


def label_maps(
    keys: Sequence[str], min_size: int = 0, max_size: int = 2
) -> st.SearchStrategy[dict[str, str]]:
    return st.dictionaries(
        st.sampled_from(keys), st.sampled_from(VALUES), min_size=min_size, max_size=max_size
    )


@st.composite
def selectors(
    draw: Draw,
    keys: Sequence[str],
    extra: Mapping[str, Sequence[str]] | None = None,
    seen: Sequence[Mapping[str, str]] = (),
) -> Obj:
    """A LabelSelector: {}, matchLabels, matchExpressions with all four operators, or both.

    ``extra`` adds keys with their own values (the namespace name label). With ``seen``
    label sets (of the tree's pods or namespaces), often picks part of one of them, since
    selectors drawn blindly rarely select anything and then nothing interesting happens."""
    style = draw(st.sampled_from(("empty", "seen", "seen", "random", "random")))
    if style == "empty":
        return {}
    if style == "seen" and any(seen):
        labels = draw(st.sampled_from([ls for ls in seen if ls]))
        chosen = draw(st.lists(st.sampled_from(sorted(labels)), min_size=1, unique=True))
        return {"matchLabels": {k: labels[k] for k in chosen}}
    extra = extra or {}
    all_keys = [*keys, *extra]

    def values_of(key: str) -> st.SearchStrategy[str]:
        return st.sampled_from(tuple(extra.get(key, VALUES)))

    sel: Obj = {}
    if draw(st.booleans()):
        key = draw(st.sampled_from(all_keys))
        sel["matchLabels"] = {key: draw(values_of(key))}
        if draw(st.integers(0, 3)) == 3:
            other = draw(st.sampled_from(all_keys))
            sel["matchLabels"][other] = draw(values_of(other))
    if draw(st.booleans()):
        exprs = []
        for _ in range(draw(st.integers(1, 2))):
            key = draw(st.sampled_from(all_keys))
            op = draw(st.sampled_from(("In", "NotIn", "Exists", "DoesNotExist")))
            expr: Obj = {"key": key, "operator": op}
            if op in ("In", "NotIn"):
                expr["values"] = draw(st.lists(values_of(key), min_size=1, max_size=2, unique=True))
            exprs.append(expr)
        sel["matchExpressions"] = exprs
    return sel


@st.composite
def container_ports(draw: Draw) -> list[list[Obj]]:
    """Ports of 1-2 containers; a port name is unique within the pod, as Kubernetes requires."""
    names = list(PORT_NAMES)
    containers = []
    for _ in range(draw(st.integers(1, 2))):
        ports = []
        for _ in range(draw(st.integers(0, 3))):
            port: Obj = {"containerPort": draw(st.sampled_from(PORT_NUMBERS))}
            proto = draw(st.sampled_from((None, *PROTOCOLS)))
            if proto is not None:
                port["protocol"] = proto
            if names and draw(st.integers(0, 2)) > 0:
                name = draw(st.sampled_from(names))
                names.remove(name)
                port["name"] = name
            ports.append(port)
        containers.append(ports)
    return containers


def defined_port_names(objects: Sequence[Obj]) -> set[str]:
    names: set[str] = set()
    for workload in reference.workloads_of(o for o in objects if reference.is_operated(o)):
        names.update(n for n, _, _ in workload.ports if n)
    for obj in objects:
        if obj["kind"] not in WORKLOAD_KINDS:
            continue
        spec = pod_template(obj).get("spec") or {}
        sidecars = [
            c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"
        ]
        for c in [*(spec.get("containers") or []), *sidecars]:
            names.update(p["name"] for p in c.get("ports") or [] if "name" in p)
    return names


def pod_template(obj: Obj) -> Obj:
    """The pod template inside a workload (the object itself for a Pod)."""
    kind = obj["kind"]
    if kind == "Pod":
        return obj
    if kind == "CronJob":
        template: Obj = obj["spec"]["jobTemplate"]["spec"]["template"]
    else:
        template = obj["spec"]["template"]
    return template


# ---------------------------------------------------------------------------- objects


@dataclass(frozen=True)
class Vocabulary:
    """What a policy drawn for a tree may refer to."""

    namespaces: tuple[str, ...]
    port_names: tuple[str, ...]  # names some container defines
    pod_labels: tuple[dict[str, str], ...]
    ns_labels: tuple[dict[str, str], ...]


def vocabulary(objects: Sequence[Obj], namespaces: Sequence[str]) -> Vocabulary:
    return Vocabulary(
        namespaces=tuple(namespaces),
        port_names=tuple(sorted(defined_port_names(objects))),
        pod_labels=tuple(
            (pod_template(o).get("metadata") or {}).get("labels") or {}
            for o in objects
            if o["kind"] in WORKLOAD_KINDS
        ),
        ns_labels=tuple(
            o["metadata"].get("labels") or {} for o in objects if o["kind"] == "Namespace"
        ),
    )


def namespace_object(name: str, labels: dict[str, str]) -> Obj:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def _metadata(name: str, namespace: str, omit_default: bool) -> Obj:
    meta: Obj = {"name": name}
    if not (namespace == "default" and omit_default):
        meta["namespace"] = namespace
    return meta


@st.composite
def workloads(draw: Draw, namespace: str, kind: str, name: str) -> Obj:
    labels = draw(label_maps(POD_KEYS))
    spec: Obj = {
        "containers": [
            {
                "name": f"c{i}",
                "image": "registry.example/app:1",
                **({"ports": ports} if ports else {}),
            }
            for i, ports in enumerate(draw(container_ports()))
        ]
    }
    if draw(st.integers(0, 5)) == 5:  # shrinks towards ordinary pods
        spec["hostNetwork"] = True
    if draw(st.integers(0, 5)) == 5:
        # Only a sidecar's ports belong to the pod; a plain init container's do not.
        init: Obj = {
            "name": "init",
            "image": "registry.example/init:1",
            "ports": [
                {
                    "name": draw(st.sampled_from(PORT_NAMES)),
                    "containerPort": draw(st.sampled_from(PORT_NUMBERS)),
                    "protocol": draw(st.sampled_from(PROTOCOLS)),
                }
            ],
        }
        if draw(st.booleans()):
            init["restartPolicy"] = "Always"
        spec["initContainers"] = [init]
    template: Obj = {
        "metadata": {"labels": labels} if labels or draw(st.booleans()) else {},
        "spec": spec,
    }
    meta = _metadata(name, namespace, draw(st.booleans()))
    obj: Obj = {"apiVersion": API_VERSION[kind], "kind": kind, "metadata": meta}
    if kind == "Pod":
        if template["metadata"]:
            meta["labels"] = labels
        obj["spec"] = spec
        return obj
    # A controller's own labels are not its pods' labels: give it decoy ones.
    decoy = draw(label_maps(POD_KEYS))
    if decoy:
        meta["labels"] = decoy
    selector = {"matchLabels": labels} if labels else {}
    if kind == "CronJob":
        obj["spec"] = {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": template}}}
    elif kind == "Job":
        obj["spec"] = {"template": template}
    elif kind == "ReplicationController":  # a plain label map, not a LabelSelector
        obj["spec"] = {"selector": dict(labels), "template": template}
    else:
        obj["spec"] = {"selector": selector, "template": template}
        if kind == "StatefulSet":
            obj["spec"]["serviceName"] = name
    return obj


OPERATED_KINDS = ("Prometheus", "Alertmanager", "ThanosRuler", "PrometheusAgent")


@st.composite
def operated(draw: Draw, namespace: str, kind: str, name: str) -> Obj:
    """A custom resource the Prometheus Operator runs pods for (tests.reference models
    them), with the fields that change the pods: podMetadata labels (a decoy version among
    them), version, listenLocal, portName, thanos, shards and extra containers."""
    spec: Obj = {}
    labels = draw(label_maps(POD_KEYS))
    if draw(st.booleans()):
        labels["app.kubernetes.io/version"] = "9.9.9"
    if labels or draw(st.booleans()):
        spec["podMetadata"] = {"labels": labels}
    if draw(st.booleans()):
        spec["version"] = draw(st.sampled_from(("v2.40.1", "0.28.1", "")))
    if draw(st.integers(0, 3)) == 3:
        spec["listenLocal"] = True
    if draw(st.integers(0, 3)) == 3:
        spec["portName"] = draw(st.sampled_from(PORT_NAMES))
    if kind in ("Prometheus", "PrometheusAgent"):
        if kind == "Prometheus" and draw(st.booleans()):
            spec["thanos"] = {"image": "quay.io/thanos/thanos:v0.31.0"}
        if kind == "PrometheusAgent" and draw(st.booleans()):
            spec["mode"] = draw(st.sampled_from(("StatefulSet", "DaemonSet")))
        if draw(st.integers(0, 3)) == 3 and spec.get("mode") != "DaemonSet":
            spec["shards"] = draw(st.integers(1, 2))
        if draw(st.integers(0, 4)) == 4:
            spec["reloadStrategy"] = "ProcessSignal"
    if draw(st.integers(0, 3)) == 3:
        spec["containers"] = [
            {
                "name": "proxy",
                "ports": [
                    {
                        "name": draw(st.sampled_from(PORT_NAMES)),
                        "containerPort": draw(st.sampled_from(PORT_NUMBERS)),
                    }
                ],
            }
        ]
    meta = _metadata(name, namespace, draw(st.booleans()))
    if draw(st.booleans()):
        meta["labels"] = draw(label_maps(POD_KEYS))  # the resource's own: not its pods'
    version = "v1alpha1" if kind == "PrometheusAgent" else "v1"
    return {
        "apiVersion": f"monitoring.coreos.com/{version}",
        "kind": kind,
        "metadata": meta,
        "spec": spec,
    }


@st.composite
def cidrs_with_excepts(draw: Draw) -> Obj:
    """An ipBlock: a cidr (v4 or v6) and 0-2 excepts strictly inside it."""
    pool = draw(st.sampled_from((V4_CIDRS, V6_CIDRS)))
    net = ipaddress.ip_network(draw(st.sampled_from(pool)))
    block: Obj = {"cidr": str(net)}
    excepts: list[str] = []
    for _ in range(draw(st.integers(0, 2))):
        inside = [
            c
            for c in pool
            if ipaddress.ip_network(c).subnet_of(net)  # type: ignore[arg-type]
            and ipaddress.ip_network(c) != net
        ]
        if inside and draw(st.booleans()):
            excepts.append(draw(st.sampled_from(inside)))
        else:
            # A random subnet a few bits longer, anywhere inside the cidr.
            new_prefix = min(net.max_prefixlen, net.prefixlen + draw(st.integers(1, 9)))
            count = 2 ** (new_prefix - net.prefixlen)
            index = draw(st.integers(0, count - 1))
            size = 2 ** (net.max_prefixlen - new_prefix)
            addr = net.network_address + index * size  # stays in the cidr's family
            excepts.append(str(ipaddress.ip_network(f"{addr}/{new_prefix}")))
    if excepts:
        block["except"] = sorted(set(excepts), key=excepts.index)
    return block


@st.composite
def peers(draw: Draw, vocab: Vocabulary) -> Obj:
    shape = draw(st.sampled_from(("pod", "ns", "both", "ip")))
    if shape == "ip":
        return {"ipBlock": draw(cidrs_with_excepts())}
    peer: Obj = {}
    if shape in ("ns", "both"):
        style = draw(st.sampled_from(("labels", "name", "labels", "name", "mixed")))
        if style == "labels":
            peer["namespaceSelector"] = draw(selectors(NS_KEYS, seen=vocab.ns_labels))
        elif style == "name":  # the usual idiom: one namespace by the label the API server sets
            name = draw(st.sampled_from(vocab.namespaces))
            peer["namespaceSelector"] = {"matchLabels": {"kubernetes.io/metadata.name": name}}
        else:
            extra = {"kubernetes.io/metadata.name": vocab.namespaces}
            peer["namespaceSelector"] = draw(selectors(NS_KEYS, extra))
    if shape in ("pod", "both"):
        peer["podSelector"] = draw(selectors(POD_KEYS, seen=vocab.pod_labels))
    return peer


@st.composite
def policy_ports(draw: Draw, names: Sequence[str]) -> Obj:
    entry: Obj = {}
    proto = draw(st.sampled_from((None, *PROTOCOLS)))
    if proto is not None:
        entry["protocol"] = proto
    shape = draw(st.sampled_from(("number", "range", "name", "none", "undefined")))
    if shape == "name" and not names:
        shape = "number"
    if shape == "number":
        entry["port"] = draw(st.sampled_from((*PORT_NUMBERS, 1, 65535)))
    elif shape == "range":
        start = draw(st.sampled_from((*PORT_NUMBERS, 1)))
        entry["port"] = start
        entry["endPort"] = draw(
            st.sampled_from([p for p in (*PORT_NUMBERS, 1, 65535) if p >= start])
        )
    elif shape == "name":
        entry["port"] = draw(st.sampled_from(tuple(names)))
    elif shape == "undefined":
        entry["port"] = UNDEFINED_PORT
    return entry  # possibly `{}`: TCP, every port


@st.composite
def rules(draw: Draw, vocab: Vocabulary, peer_field: str) -> Obj:
    rule: Obj = {}
    # Rules admitting every peer make the others moot, so keep them the minority.
    peer_shape = draw(st.sampled_from(("list", "list", "list", "missing", "empty")))
    if peer_shape == "empty":
        rule[peer_field] = []
    elif peer_shape == "list":
        rule[peer_field] = draw(st.lists(peers(vocab), min_size=1, max_size=2))
    port_shape = draw(st.sampled_from(("missing", "empty", "list", "list")))
    if port_shape == "empty":
        rule["ports"] = []
    elif port_shape == "list":
        rule["ports"] = draw(st.lists(policy_ports(vocab.port_names), min_size=1, max_size=2))
    return rule


@st.composite
def policies(draw: Draw, namespace: str, name: str, vocab: Vocabulary) -> Obj:
    spec: Obj = {"podSelector": draw(selectors(POD_KEYS, seen=vocab.pod_labels))}
    for direction, peer_field in (("ingress", "from"), ("egress", "to")):
        shape = draw(st.sampled_from(("missing", "empty", "rules", "rules")))
        if shape == "empty":
            spec[direction] = []
        elif shape == "rules":
            spec[direction] = draw(st.lists(rules(vocab, peer_field), min_size=1, max_size=2))
    types = draw(
        st.sampled_from(
            (None, None, [], ["Ingress"], ["Egress"], ["Ingress", "Egress"], ["Egress", "Ingress"])
        )
    )
    if types is not None:
        spec["policyTypes"] = types
    return {
        "apiVersion": API_VERSION["NetworkPolicy"],
        "kind": "NetworkPolicy",
        "metadata": _metadata(name, namespace, draw(st.booleans())),
        "spec": spec,
    }


@st.composite
def clusters(draw: Draw) -> list[Obj]:
    """A list of raw objects: namespaces, 1-5 workloads and 0-4 NetworkPolicies."""
    namespaces = draw(st.lists(st.sampled_from(NAMESPACES), min_size=1, max_size=3, unique=True))
    objects: list[Obj] = []
    for ns in namespaces:
        if draw(st.integers(0, 3)) > 0:  # else only implied by the objects in it
            labels = draw(label_maps(NS_KEYS, min_size=1))
            if draw(st.integers(0, 9)) == 9:
                # The API server owns this label; a manifest cannot rename the namespace.
                labels["kubernetes.io/metadata.name"] = "impostor"
            objects.append(namespace_object(ns, labels))
    # 1-5 workloads, mostly several (selectors only matter between pods); shrinks to two.
    count = draw(st.sampled_from((2, 3, 4, 5, 1)))
    ids = draw(
        st.lists(
            st.tuples(
                st.sampled_from(namespaces),
                st.sampled_from(WORKLOAD_KINDS),
                st.sampled_from(WORKLOAD_NAMES),
            ),
            min_size=count,
            max_size=count,
            unique=True,
        )
    )
    for ns, kind, name in ids:
        objects.append(draw(workloads(ns, kind, name)))
    if draw(st.integers(0, 3)) == 3:  # an operator's pods: Prometheus, Alertmanager...
        kind = draw(st.sampled_from(OPERATED_KINDS))
        objects.append(draw(operated(draw(st.sampled_from(namespaces)), kind, "main")))
    if draw(st.integers(0, 4)) == 4:
        # Objects that select pods or name ports but are not NetworkPolicies change nothing.
        ns = draw(st.sampled_from(namespaces))
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "svc", "namespace": ns},
                "spec": {
                    "selector": draw(label_maps(POD_KEYS)),
                    "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
                },
            }
        )
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "cfg", "namespace": ns},
                "data": {"port": "80"},
            }
        )
    vocab = vocabulary(objects, namespaces)
    # 0-4 policies, but rarely none (a tree without policies is trivially open).
    count = draw(st.sampled_from((2, 1, 3, 4, 0)))
    # A policy only selects pods of its own namespace: favour namespaces that have some.
    populated = sorted({ns for ns, _, _ in ids})
    pol_ids = draw(
        st.lists(
            st.tuples(
                st.sampled_from([*populated, *populated, *namespaces]),
                st.sampled_from(POLICY_NAMES),
            ),
            min_size=count,
            max_size=count,
            unique=True,
        )
    )
    for ns, name in pol_ids:
        objects.append(draw(policies(ns, name, vocab)))
    return objects


# ---------------------------------------------------------------------------- mutations


@st.composite
def tree_pairs(draw: Draw) -> tuple[list[Obj], list[Obj]]:
    """A base cluster and a head cluster derived from it by 1-3 edits."""
    base = draw(clusters())
    head = copy.deepcopy(base)
    namespaces = sorted(
        {(o["metadata"].get("namespace") or "default") for o in head}
        | {o["metadata"]["name"] for o in head if o["kind"] == "Namespace"}
    )
    for _ in range(draw(st.integers(1, 3))):
        pols = [o for o in head if o["kind"] == "NetworkPolicy"]
        wls = [o for o in head if o["kind"] in WORKLOAD_KINDS]
        op = draw(
            st.sampled_from(
                (
                    "add-policy",
                    "remove-policy",
                    "change-policy",
                    "change-selector",
                    "relabel",
                    "add-workload",
                    "remove-workload",
                    "relabel-namespace",
                )
            )
        )
        vocab = vocabulary(head, namespaces)
        if op == "add-policy" or (
            op in ("remove-policy", "change-policy", "change-selector") and not pols
        ):
            taken = {
                (o["metadata"].get("namespace") or "default", o["metadata"]["name"]) for o in pols
            }
            free = [(ns, n) for ns in namespaces for n in POLICY_NAMES if (ns, n) not in taken]
            if free:
                ns, n = draw(st.sampled_from(free))
                head.append(draw(policies(ns, n, vocab)))
        elif op == "remove-policy":
            head.remove(draw(st.sampled_from(pols)))
        elif op == "change-policy":
            old = draw(st.sampled_from(pols))
            ns = old["metadata"].get("namespace") or "default"
            new = draw(policies(ns, old["metadata"]["name"], vocab))
            head[head.index(old)] = new
        elif op == "change-selector":
            draw(st.sampled_from(pols))["spec"]["podSelector"] = draw(
                selectors(POD_KEYS, seen=vocab.pod_labels)
            )
        elif op == "relabel" and wls:
            template = pod_template(draw(st.sampled_from(wls)))
            template.setdefault("metadata", {})["labels"] = draw(label_maps(POD_KEYS))
        elif op == "add-workload":
            taken_w = {
                (o["metadata"].get("namespace") or "default", o["kind"], o["metadata"]["name"])
                for o in wls
            }
            ns = draw(st.sampled_from(namespaces))
            kind = draw(st.sampled_from(WORKLOAD_KINDS))
            name = draw(st.sampled_from(("web", "db", "api", "new")))
            if (ns, kind, name) not in taken_w:
                head.append(draw(workloads(ns, kind, name)))
        elif op == "remove-workload" and len(wls) > 1:
            head.remove(draw(st.sampled_from(wls)))
        elif op == "relabel-namespace":
            ns = draw(st.sampled_from(namespaces))
            labels = draw(label_maps(NS_KEYS))
            head = [
                o for o in head if not (o["kind"] == "Namespace" and o["metadata"]["name"] == ns)
            ]
            head.insert(0, namespace_object(ns, labels))
    # Names a removed or changed workload defined may now be defined by none: kept, as
    # Kubernetes keeps them (they match nothing).
    return base, head


# ---------------------------------------------------------------------------- files


# libyaml's emitter when PyYAML has it: dumping dominates example generation otherwise.
_DUMPER: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def _dump(obj: Obj) -> str:
    text: str = yaml.dump(obj, Dumper=_DUMPER, sort_keys=False, default_flow_style=False)
    return text


@st.composite
def manifest_files(draw: Draw, objects: Sequence[Obj]) -> dict[str, str]:
    """Spread the objects over YAML files: one per object, multi-document files, or a
    ``kind: List``; sometimes with a leading ``---``, comments or an empty document; and
    with the line breaks of Unix (LF), Windows (CR LF) or classic Mac OS (CR)."""
    files: dict[str, str] = {}
    remaining = list(objects)
    index = 0
    while remaining:
        take = draw(st.integers(1, len(remaining)))
        chunk, remaining = remaining[:take], remaining[take:]
        index += 1
        style = draw(st.sampled_from(("docs", "docs", "list")))
        path = draw(
            st.sampled_from((f"m{index}.yaml", f"dir/m{index}.yml", f"deep/er/m{index}.yaml"))
        )
        if style == "list":
            text = _dump({"apiVersion": "v1", "kind": "List", "items": list(chunk)})
        else:
            text = "---\n".join(_dump(o) for o in chunk)
        if draw(st.booleans()):
            text = "# generated\n---\n" + text
        if draw(st.integers(0, 4)) == 4:
            text += "---\n"  # a trailing empty document
        files[path] = text.replace("\n", draw(st.sampled_from(LINE_BREAKS)))
    return files


def files_apart(
    draw: Draw, objects: Sequence[Obj], apart: Sequence[tuple[str, Callable[[Obj], bool]]]
) -> dict[str, str]:
    """The objects as files: each entry of ``apart`` (a file name, which objects) gets one
    multi-document file of its own (the first entry taking an object keeps it), the rest
    are spread by ``manifest_files``. The files are noted, for a failing example."""
    taken: dict[str, list[Obj]] = {name: [] for name, _ in apart}
    rest: list[Obj] = []
    for obj in objects:
        name = next((n for n, wants in apart if wants(obj)), None)
        (taken[name] if name is not None else rest).append(obj)
    files: dict[str, str] = draw(manifest_files(rest))
    for name, chosen in taken.items():
        if chosen:
            files[name] = yaml.safe_dump_all(chosen, sort_keys=False)
    note("\n".join(f"# ==== {p}\n{t}" for p, t in sorted(files.items())))
    return files


def connections_by_pair(rows: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str], dict[str, str]]:
    """A map's JSON ``connections`` by (source, destination), to compare two maps."""
    return {(r["src"], r["dst"]): dict(r["allowed"]) for r in rows}
