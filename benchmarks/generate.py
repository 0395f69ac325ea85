"""Deterministic synthetic GitOps repositories, and pull-request variants of them.

A base repository is sized by its workload count and shaped like the clusters reachdiff
is meant for: team namespaces whose sizes follow a Zipf-like law (a few huge, many small),
apps of one to five components (Deployments, plus StatefulSets for stateful tiers) with
named container ports, a default-deny policy per namespace, DNS and same-namespace egress
in the namespaces that lock egress down, per-component ingress from labelled peers,
cross-namespace peers (namespace selector alone, and namespace AND pod selector), ipBlock
egress with ``except``, named ports, ``endPort`` ranges and some UDP. Density is about one
NetworkPolicy per three workloads, so 10,000 workloads give ~3,300 policies in ~10,500
files, one object per file apart from a few multi-document files.

A variant copies the base tree and rewrites only the files its change touches, so every
other file stays byte-identical, as in a real pull request.

    python -m benchmarks.generate --workloads 1000 --out DIR [--variant NAME] [--seed N]
        [--shape small-files]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import shutil
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# Bump whenever the output for a given (workloads, seed) changes: the harness keys its
# cache of generated trees on it.
GENERATOR_VERSION = 1

Files = dict[str, bytes]
Doc = dict[str, Any]

VARIANTS: tuple[str, ...] = (
    "widen-rule",
    "remove-rule",
    "relabel-workload",
    "new-app",
    "refactor-5pct",
    "cilium-mixed",
)

NAME_LABEL = "kubernetes.io/metadata.name"
TEAMS = (
    "payments",
    "checkout",
    "search",
    "identity",
    "platform",
    "data",
    "ml",
    "growth",
    "ads",
    "media",
    "messaging",
    "billing",
    "catalog",
    "risk",
    "support",
    "logistics",
)
ENVS = ("prod", "staging", "dev")
ENV_WEIGHTS = (5, 3, 2)
WORDS = (
    "api",
    "cart",
    "orders",
    "ledger",
    "invoice",
    "profile",
    "session",
    "auth",
    "token",
    "search",
    "index",
    "feed",
    "ranker",
    "recs",
    "notify",
    "mailer",
    "sms",
    "push",
    "chat",
    "inbox",
    "media",
    "thumbs",
    "upload",
    "cdn",
    "pricing",
    "quote",
    "tax",
    "fraud",
    "score",
    "audit",
    "report",
    "export",
    "import",
    "sync",
    "etl",
    "stream",
    "events",
    "ingest",
    "metrics",
    "tracker",
    "geo",
    "maps",
    "route",
    "fleet",
    "stock",
    "catalog",
    "review",
    "rating",
    "coupon",
    "promo",
    "wallet",
    "payout",
    "refund",
    "ship",
    "label",
    "kyc",
    "consent",
    "gdpr",
    "billing",
    "plans",
    "usage",
    "quota",
    "config",
    "flags",
    "gateway",
    "edge",
    "bff",
    "graph",
    "query",
    "cache",
    "store",
    "vault",
    "keys",
)

# Port name -> (number, protocol) per tier. The same name maps to different numbers on
# different tiers (metrics above all), so a named port in a policy resolves per pod.
TIER_PORTS: dict[str, tuple[tuple[str, int, str], ...]] = {
    "frontend": (("http", 8080, "TCP"), ("metrics", 9100, "TCP")),
    "api": (("http", 8080, "TCP"), ("grpc", 9090, "TCP"), ("metrics", 9100, "TCP")),
    "worker": (("metrics", 9100, "TCP"),),
    "db": (("postgres", 5432, "TCP"), ("metrics", 9187, "TCP")),
    "cache": (("redis", 6379, "TCP"), ("metrics", 9121, "TCP")),
    "queue": (("amqp", 5672, "TCP"), ("metrics", 15692, "TCP")),
    "ingest": (("statsd", 8125, "UDP"), ("http", 8080, "TCP"), ("metrics", 9102, "TCP")),
}
STATEFUL_TIERS = frozenset({"db", "cache", "queue"})
SERVED_TIERS = frozenset({"frontend", "api", "db", "cache", "queue", "ingest"})
TIER_SETS: dict[int, tuple[tuple[tuple[str, ...], int], ...]] = {
    1: ((("api",), 5), (("worker",), 2), (("frontend",), 2), (("ingest",), 1)),
    2: (
        (("api", "worker"), 3),
        (("frontend", "api"), 3),
        (("api", "db"), 2),
        (("api", "cache"), 1),
    ),
    3: ((("frontend", "api", "db"), 3), (("api", "worker", "db"), 2), (("api", "db", "cache"), 1)),
    4: ((("frontend", "api", "worker", "db"), 2), (("api", "worker", "db", "cache"), 1)),
    5: (
        (("frontend", "api", "worker", "db", "cache"), 2),
        (("api", "worker", "db", "cache", "queue"), 1),
    ),
}
COMPONENT_COUNT_WEIGHTS = ((1, 28), (2, 25), (3, 22), (4, 15), (5, 10))
PRIVATE_AND_METADATA = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.169.254/32")

try:  # libyaml when present: base trees of 30,000 workloads are ~30 MB of YAML
    _Dumper: type = yaml.CSafeDumper
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - pyyaml built without libyaml
    _Dumper = yaml.SafeDumper
    _Loader = yaml.SafeLoader


def dump_docs(docs: list[Doc]) -> bytes:
    """One file's bytes. Several documents get ``---`` separators, one gets none."""
    text = yaml.dump_all(
        docs,
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        explicit_start=len(docs) > 1,
        width=4096,
    )
    return text.encode()


def load_docs(data: bytes) -> list[Doc]:
    return [d for d in yaml.load_all(data, Loader=_Loader) if d is not None]


# --------------------------------------------------------------------------- the plan


@dataclass
class Component:
    tier: str
    name: str
    kind: str
    ports: tuple[tuple[str, int, str], ...]
    replicas: int
    version: str
    sidecar: bool


@dataclass
class App:
    namespace: str
    name: str
    components: list[Component]
    service_file: bool

    @property
    def dir(self) -> str:
        return f"clusters/{self.namespace}/{self.name}"

    def tiers(self) -> set[str]:
        return {c.tier for c in self.components}


@dataclass
class NamespacePlan:
    name: str
    team: str
    env: str
    strict: bool  # egress locked down as well as ingress
    baseline_multidoc: bool
    apps: list[App] = field(default_factory=list)

    @property
    def labels(self) -> dict[str, str]:
        return {"team": self.team, "env": self.env}


@dataclass
class Context:
    """What policy builders may point at outside the app they protect."""

    namespaces: list[NamespacePlan]
    db_namespaces: list[str]


def _weighted(rng: random.Random, pairs: Iterable[tuple[Any, int]]) -> Any:
    items = list(pairs)
    return rng.choices([v for v, _ in items], weights=[w for _, w in items])[0]


def zipf_sizes(total: int, buckets: int, exponent: float = 1.07) -> list[int]:
    """Split ``total`` into ``buckets`` positive sizes, largest first, by a Zipf law.

    Largest-remainder rounding keeps the sum exact.
    """
    if buckets <= 0 or total < buckets:
        raise ValueError(f"cannot split {total} workloads into {buckets} namespaces")
    weights = [1 / (rank**exponent) for rank in range(1, buckets + 1)]
    spare = total - buckets  # every namespace gets one before sharing the rest
    scale = spare / sum(weights)
    raw = [w * scale for w in weights]
    sizes = [1 + math.floor(r) for r in raw]
    short = total - sum(sizes)
    by_remainder = sorted(range(buckets), key=lambda i: (-(raw[i] - math.floor(raw[i])), i))
    for i in by_remainder[:short]:
        sizes[i] += 1
    return sizes


def namespace_count(workloads: int) -> int:
    scaled: float = 0.5 * math.pow(workloads, 0.65)
    return max(2, round(scaled))


def _unique(name: str, taken: set[str]) -> str:
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}-{n}", n + 1
    taken.add(candidate)
    return candidate


def _component(rng: random.Random, app: str, tier: str, single: bool) -> Component:
    ports = TIER_PORTS[tier]
    if tier in ("api", "frontend") and rng.random() < 0.2:
        # Some teams serve http on 8000: the same name, another number.
        ports = tuple(("http", 8000, p) if n == "http" else (n, num, p) for n, num, p in ports)
    return Component(
        tier=tier,
        name=app if single else f"{app}-{tier}",
        kind="StatefulSet" if tier in STATEFUL_TIERS else "Deployment",
        ports=ports,
        replicas=_weighted(rng, ((1, 3), (2, 4), (3, 4), (5, 2), (10, 1))),
        version=f"v{rng.randint(1, 4)}",
        sidecar=rng.random() < 0.15,
    )


def _make_app(rng: random.Random, ns: str, name: str, size: int) -> App:
    tiers: tuple[str, ...] = _weighted(rng, TIER_SETS[size])
    return App(
        namespace=ns,
        name=name,
        components=[_component(rng, name, t, len(tiers) == 1) for t in tiers],
        service_file=rng.random() < 0.3,
    )


def _system_namespaces() -> list[NamespacePlan]:
    def comp(tier: str, name: str, ports: tuple[tuple[str, int, str], ...]) -> Component:
        return Component(tier, name, "Deployment", ports, 2, "v1", False)

    monitoring = NamespacePlan("monitoring", "observability", "prod", False, False)
    monitoring.apps = [
        App(
            "monitoring",
            "prometheus",
            [comp("server", "prometheus", (("http", 9090, "TCP"),))],
            True,
        ),
        App(
            "monitoring",
            "alertmanager",
            [comp("server", "alertmanager", (("http", 9093, "TCP"),))],
            True,
        ),
        App("monitoring", "grafana", [comp("frontend", "grafana", (("http", 3000, "TCP"),))], True),
        App(
            "monitoring",
            "statsd-exporter",
            [
                comp(
                    "ingest", "statsd-exporter", (("statsd", 9125, "UDP"), ("metrics", 9102, "TCP"))
                )
            ],
            True,
        ),
    ]
    ingress = NamespacePlan("ingress-nginx", "platform", "prod", False, False)
    ingress.apps = [
        App(
            "ingress-nginx",
            "controller",
            [
                comp(
                    "edge",
                    "ingress-nginx-controller",
                    (("http", 80, "TCP"), ("https", 443, "TCP"), ("metrics", 10254, "TCP")),
                )
            ],
            True,
        ),
    ]
    kube_system = NamespacePlan("kube-system", "platform", "prod", False, False)
    kube_system.apps = [
        App(
            "kube-system",
            "coredns",
            [
                comp(
                    "dns",
                    "coredns",
                    (("dns", 53, "UDP"), ("dns-tcp", 53, "TCP"), ("metrics", 9153, "TCP")),
                )
            ],
            False,
        ),
    ]
    return [kube_system, monitoring, ingress]


SYSTEM_WORKLOADS = 6
MIN_WORKLOADS = SYSTEM_WORKLOADS + 4


def plan(workloads: int, seed: int) -> list[NamespacePlan]:
    """Decide every namespace, app and component; rendering is separate."""
    if workloads < MIN_WORKLOADS:
        raise ValueError(f"--workloads must be at least {MIN_WORKLOADS}")
    rng = random.Random(f"reachdiff-bench:{seed}:{workloads}")
    team_workloads = workloads - SYSTEM_WORKLOADS
    n_ns = min(namespace_count(workloads), team_workloads)
    sizes = zipf_sizes(team_workloads, n_ns)
    taken = {"kube-system", "monitoring", "ingress-nginx", "default"}
    namespaces = _system_namespaces()
    for size in sizes:
        team = rng.choice(TEAMS)
        env = _weighted(rng, zip(ENVS, ENV_WEIGHTS, strict=True))
        base = f"{team}-{env}" if rng.random() < 0.5 else f"{team}-{rng.choice(WORDS)}-{env}"
        name = _unique(base, taken)
        strict = rng.random() < (0.6 if env == "prod" else 0.25)
        ns = NamespacePlan(name, team, env, strict, rng.random() < 0.35)
        app_names: set[str] = set()
        left = size
        while left > 0:
            k = min(left, _weighted(rng, COMPONENT_COUNT_WEIGHTS))
            ns.apps.append(_make_app(rng, name, _unique(rng.choice(WORDS), app_names), k))
            left -= k
        namespaces.append(ns)
    return namespaces


# --------------------------------------------------------------------------- rendering


def _port_entry(rng: random.Random, name: str, number: int, protocol: str) -> Doc:
    """A policy port: by name or by number, with the TCP default sometimes left implicit."""
    entry: Doc = {}
    if protocol != "TCP" or rng.random() < 0.5:
        entry["protocol"] = protocol
    entry["port"] = name if rng.random() < 0.5 else number
    return entry


def _ports_of(comp: Component, *names: str) -> list[tuple[str, int, str]]:
    return [p for p in comp.ports if p[0] in names]


def _container(comp: Component, team: str, app: str) -> Doc:
    ports: list[Doc] = []
    for name, number, protocol in comp.ports:
        port: Doc = {"name": name, "containerPort": number}
        if protocol != "TCP" or number % 2:  # the default left implicit on some
            port["protocol"] = protocol
        ports.append(port)
    container: Doc = {
        "name": comp.tier if comp.tier != "server" else comp.name,
        "image": f"registry.example.com/{team}/{app}-{comp.tier}:{comp.version[1:]}.{len(app)}.0",
        "ports": ports,
        "env": [
            {"name": "LOG_LEVEL", "value": "info"},
            {"name": "APP_NAME", "value": comp.name},
        ],
        "resources": {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"memory": "512Mi"},
        },
    }
    probe_port = comp.ports[0]
    if probe_port[2] == "TCP":
        container["readinessProbe"] = {"tcpSocket": {"port": probe_port[0]}, "periodSeconds": 10}
    return container


def _pod_labels(app: App, comp: Component) -> tuple[dict[str, str], dict[str, str]]:
    """The workload's selector and its pod template labels (a superset of the selector)."""
    if app.namespace == "kube-system":
        return {"k8s-app": "kube-dns"}, {"k8s-app": "kube-dns", "version": comp.version}
    if app.namespace == "ingress-nginx":
        selector = {"app.kubernetes.io/name": "ingress-nginx"}
        return selector, {**selector, "app.kubernetes.io/component": "controller"}
    selector = {"app": app.name, "component": comp.tier}
    return selector, {**selector, "tier": comp.tier, "version": comp.version}


def workload_doc(ns: NamespacePlan, app: App, comp: Component) -> Doc:
    selector, pod_labels = _pod_labels(app, comp)
    containers = [_container(comp, ns.team, app.name)]
    if comp.sidecar:
        containers.append(
            {
                "name": "envoy",
                "image": "registry.example.com/platform/envoy:1.30.1",
                "ports": [{"name": "envoy-admin", "containerPort": 15000}],
            }
        )
    spec: Doc = {
        "replicas": comp.replicas,
        "selector": {"matchLabels": selector},
    }
    if comp.kind == "StatefulSet":
        spec["serviceName"] = comp.name
    spec["template"] = {
        "metadata": {"labels": pod_labels},
        "spec": {"containers": containers},
    }
    if comp.kind == "StatefulSet":
        spec["volumeClaimTemplates"] = [
            {
                "metadata": {"name": "data"},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "10Gi"}},
                },
            }
        ]
    return {
        "apiVersion": "apps/v1",
        "kind": comp.kind,
        "metadata": {
            "name": comp.name,
            "namespace": app.namespace,
            "labels": {"app": app.name, "team": ns.team},
        },
        "spec": spec,
    }


def service_doc(app: App, comp: Component, headless: bool = False) -> Doc:
    spec: Doc = {"clusterIP": "None"} if headless else {}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": comp.name, "namespace": app.namespace},
        "spec": {
            **spec,
            "selector": _pod_labels(app, comp)[0],
            "ports": [
                {"name": name, "port": number, "targetPort": name, "protocol": protocol}
                for name, number, protocol in comp.ports
            ],
        },
    }


def _policy(namespace: str, name: str, selector: Doc, types: list[str], body: Doc) -> Doc:
    spec: Doc = {"podSelector": selector, "policyTypes": types}
    spec.update(body)
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def baseline_policies(ns: NamespacePlan) -> list[Doc]:
    """Default deny, and in namespaces that lock egress, DNS and same-namespace egress."""
    docs = [
        _policy(
            ns.name, "default-deny", {}, ["Ingress", "Egress"] if ns.strict else ["Ingress"], {}
        ),
    ]
    if ns.strict:
        docs.append(
            _policy(
                ns.name,
                "allow-dns",
                {},
                ["Egress"],
                {
                    "egress": [
                        {
                            "to": [
                                {
                                    "namespaceSelector": {
                                        "matchLabels": {NAME_LABEL: "kube-system"}
                                    },
                                    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                                }
                            ],
                            "ports": [
                                {"protocol": "UDP", "port": 53},
                                {"protocol": "TCP", "port": 53},
                            ],
                        }
                    ]
                },
            )
        )
        docs.append(
            _policy(
                ns.name,
                "allow-same-namespace",
                {},
                ["Egress"],
                {
                    "egress": [
                        {
                            "to": [{"podSelector": {}}],
                        }
                    ]
                },
            )
        )
    return docs


def _app_selector(rng: random.Random, app: App, comp: Component) -> Doc:
    if rng.random() < 0.2:
        return {
            "matchLabels": {"app": app.name},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": [comp.tier]}],
        }
    return {"matchLabels": {"app": app.name, "tier": comp.tier}}


def ingress_policy(
    rng: random.Random, ctx: Context, ns: NamespacePlan, app: App, comp: Component
) -> Doc:
    rules: list[Doc] = []
    tiers = app.tiers()
    others = [a for a in ns.apps if a is not app]
    if comp.tier == "frontend":
        rules.append(
            {
                "from": [
                    {
                        "namespaceSelector": {"matchLabels": {NAME_LABEL: "ingress-nginx"}},
                        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "ingress-nginx"}},
                    }
                ],
                "ports": [_port_entry(rng, *p) for p in _ports_of(comp, "http")],
            }
        )
    elif comp.tier == "api":
        if "frontend" in tiers:
            peer: Doc = {"podSelector": {"matchLabels": {"app": app.name, "tier": "frontend"}}}
        elif others:
            callers = sorted({a.name for a in rng.sample(others, min(len(others), 3))})
            peer = {
                "podSelector": {
                    "matchExpressions": [{"key": "app", "operator": "In", "values": callers}]
                }
            }
        else:
            peer = {"podSelector": {"matchLabels": {"tier": "frontend"}}}
        rules.append(
            {"from": [peer], "ports": [_port_entry(rng, *p) for p in _ports_of(comp, "http")]}
        )
        if rng.random() < 0.35:  # the team's other namespaces, by namespace selector alone
            rules.append(
                {
                    "from": [
                        {
                            "namespaceSelector": {
                                "matchLabels": {"team": ns.team},
                                "matchExpressions": [
                                    {"key": NAME_LABEL, "operator": "NotIn", "values": [ns.name]}
                                ],
                            }
                        }
                    ],
                    "ports": [_port_entry(rng, *p) for p in _ports_of(comp, "grpc")],
                }
            )
        if rng.random() < 0.3:  # api pods of one other team, namespace AND pod selector
            team = rng.choice(TEAMS)
            rules.append(
                {
                    "from": [
                        {
                            "namespaceSelector": {"matchLabels": {"team": team, "env": ns.env}},
                            "podSelector": {"matchLabels": {"tier": "api"}},
                        }
                    ],
                    "ports": [_port_entry(rng, *p) for p in _ports_of(comp, "grpc")],
                }
            )
        if rng.random() < 0.15:  # a debug port range open to the app itself
            start = 40000 + 10 * rng.randint(0, 50)
            rules.append(
                {
                    "from": [{"podSelector": {"matchLabels": {"app": app.name}}}],
                    "ports": [{"protocol": "TCP", "port": start, "endPort": start + 9}],
                }
            )
    elif comp.tier == "db":
        callers = sorted(tiers & {"api", "worker"}) or ["api"]
        rules.append(
            {
                "from": [
                    {
                        "podSelector": {
                            "matchLabels": {"app": app.name},
                            "matchExpressions": [
                                {"key": "tier", "operator": "In", "values": callers}
                            ],
                        }
                    }
                ],
                "ports": [_port_entry(rng, *p) for p in _ports_of(comp, "postgres")],
            }
        )
        if rng.random() < 0.25:
            rules.append(
                {
                    "from": [
                        {
                            "namespaceSelector": {"matchLabels": {"env": ns.env}},
                            "podSelector": {"matchLabels": {"tier": "worker"}},
                        }
                    ],
                    "ports": [{"protocol": "TCP", "port": 5432}],
                }
            )
    elif comp.tier in ("cache", "queue"):
        rules.append(
            {
                "from": [{"podSelector": {"matchLabels": {"app": app.name}}}],
                "ports": [_port_entry(rng, *p) for p in _ports_of(comp, "redis", "amqp")],
            }
        )
    elif comp.tier == "ingest":
        rules.append(
            {
                "from": [{"namespaceSelector": {}}],
                "ports": [_port_entry(rng, *p) for p in _ports_of(comp, "statsd")],
            }
        )
        rules.append(
            {
                "from": [{"podSelector": {}}],
                "ports": [_port_entry(rng, *p) for p in _ports_of(comp, "http")],
            }
        )
    if not rules or rng.random() < 0.6:  # scraping, from the observability namespaces
        rules.append(
            {
                "from": [{"namespaceSelector": {"matchLabels": {"team": "observability"}}}],
                "ports": [{"port": "metrics"}],
            }
        )
    return _policy(
        ns.name,
        f"{comp.name}-ingress",
        _app_selector(rng, app, comp),
        ["Ingress"],
        {"ingress": rules},
    )


def egress_policy(
    rng: random.Random, ctx: Context, ns: NamespacePlan, app: App, comp: Component
) -> Doc:
    rules: list[Doc] = []
    if rng.random() < 0.5:  # third-party APIs: the internet but not private ranges
        rules.append(
            {
                "to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": list(PRIVATE_AND_METADATA)}}],
                "ports": [{"protocol": "TCP", "port": 443}],
            }
        )
    if ctx.db_namespaces and rng.random() < 0.35:
        target = rng.choice(ctx.db_namespaces)
        rules.append(
            {
                "to": [
                    {
                        "namespaceSelector": {"matchLabels": {NAME_LABEL: target}},
                        "podSelector": {"matchLabels": {"tier": "db"}},
                    }
                ],
                "ports": [{"protocol": "TCP", "port": "postgres" if rng.random() < 0.5 else 5432}],
            }
        )
    if rng.random() < 0.2:  # an on-premises service range
        rules.append(
            {
                "to": [{"ipBlock": {"cidr": "10.20.0.0/16"}}],
                "ports": [{"protocol": "TCP", "port": 8000, "endPort": 8100}],
            }
        )
    if rng.random() < 0.2:
        rules.append(
            {
                "to": [{"ipBlock": {"cidr": "10.30.1.0/24"}}],
                "ports": [{"protocol": "UDP", "port": 514}],
            }
        )
    if not rules or rng.random() < 0.3:
        rules.append(
            {
                "to": [
                    {
                        "namespaceSelector": {"matchLabels": {NAME_LABEL: "monitoring"}},
                        "podSelector": {"matchLabels": {"app": "statsd-exporter"}},
                    }
                ],
                "ports": [{"protocol": "UDP", "port": "statsd"}],
            }
        )
    return _policy(
        ns.name, f"{comp.name}-egress", _app_selector(rng, app, comp), ["Egress"], {"egress": rules}
    )


def system_policies(ns: NamespacePlan) -> Files:
    """The fixed policies of the monitoring and ingress namespaces."""
    files: Files = {}
    if ns.name == "monitoring":
        files["clusters/monitoring/networkpolicy-default-deny.yaml"] = dump_docs(
            baseline_policies(ns)
        )
        files["clusters/monitoring/grafana/networkpolicy-grafana-ingress.yaml"] = dump_docs(
            [
                _policy(
                    "monitoring",
                    "grafana-ingress",
                    {"matchLabels": {"app": "grafana"}},
                    ["Ingress"],
                    {
                        "ingress": [
                            {
                                "from": [
                                    {
                                        "namespaceSelector": {
                                            "matchLabels": {NAME_LABEL: "ingress-nginx"}
                                        },
                                        "podSelector": {
                                            "matchLabels": {
                                                "app.kubernetes.io/name": "ingress-nginx"
                                            }
                                        },
                                    }
                                ],
                                "ports": [{"port": "http"}],
                            }
                        ]
                    },
                )
            ]
        )
        files["clusters/monitoring/statsd-exporter/networkpolicy-statsd-ingress.yaml"] = dump_docs(
            [
                _policy(
                    "monitoring",
                    "statsd-ingress",
                    {"matchLabels": {"app": "statsd-exporter"}},
                    ["Ingress"],
                    {
                        "ingress": [
                            {
                                "from": [{"namespaceSelector": {}}],
                                "ports": [{"protocol": "UDP", "port": "statsd"}],
                            },
                            {
                                "from": [{"podSelector": {"matchLabels": {"app": "prometheus"}}}],
                                "ports": [{"port": "metrics"}],
                            },
                        ]
                    },
                )
            ]
        )
    elif ns.name == "ingress-nginx":
        files["clusters/ingress-nginx/networkpolicy-allow-web.yaml"] = dump_docs(
            [
                _policy(
                    "ingress-nginx",
                    "allow-web",
                    {},
                    ["Ingress"],
                    {
                        "ingress": [
                            {
                                "from": [
                                    {"ipBlock": {"cidr": "0.0.0.0/0"}},
                                    {"ipBlock": {"cidr": "::/0"}},
                                ],
                                "ports": [{"port": 80}, {"port": 443}],
                            },
                            {
                                "from": [
                                    {
                                        "namespaceSelector": {
                                            "matchLabels": {"team": "observability"}
                                        }
                                    }
                                ],
                                "ports": [{"port": "metrics"}],
                            },
                        ]
                    },
                )
            ]
        )
    return files


def namespace_doc(ns: NamespacePlan) -> Doc:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": ns.name, "labels": ns.labels},
    }


def render_app(ns: NamespacePlan, app: App, policies: list[Doc]) -> Files:
    files: Files = {}
    deployments = [workload_doc(ns, app, c) for c in app.components if c.kind == "Deployment"]
    stateful = [workload_doc(ns, app, c) for c in app.components if c.kind == "StatefulSet"]
    if deployments:
        files[f"{app.dir}/deployment.yaml"] = dump_docs(deployments)
    if stateful:
        # A StatefulSet ships with its governing (headless) Service in one file.
        headless = [
            service_doc(app, c, headless=True) for c in app.components if c.kind == "StatefulSet"
        ]
        files[f"{app.dir}/statefulset.yaml"] = dump_docs(
            [d for pair in zip(headless, stateful, strict=True) for d in pair]
        )
    served = [
        c
        for c in app.components
        if c.kind == "Deployment"
        and (c.tier in SERVED_TIERS or app.namespace in ("monitoring", "ingress-nginx"))
    ]
    if app.service_file and served:
        files[f"{app.dir}/service.yaml"] = dump_docs([service_doc(app, c) for c in served])
    for policy in policies:
        files[f"{app.dir}/networkpolicy-{policy['metadata']['name']}.yaml"] = dump_docs([policy])
    return files


def render(namespaces: list[NamespacePlan], workloads: int, seed: int) -> Files:
    rng = random.Random(f"reachdiff-bench-policies:{seed}:{workloads}")
    team_ns = [
        ns for ns in namespaces if ns.name not in ("kube-system", "monitoring", "ingress-nginx")
    ]
    ctx = Context(
        namespaces=namespaces,
        db_namespaces=[ns.name for ns in team_ns if any("db" in a.tiers() for a in ns.apps)],
    )
    files: Files = {}
    budget = round(workloads / 3)
    for ns in namespaces:
        if ns.name == "kube-system":
            continue  # implied by its workloads: its name label is all anyone selects it by
        files[f"clusters/{ns.name}/namespace.yaml"] = dump_docs([namespace_doc(ns)])
        files.update(system_policies(ns))
    baseline_count = 0
    for ns in team_ns:
        docs = baseline_policies(ns)
        baseline_count += len(docs)
        if ns.baseline_multidoc:
            files[f"clusters/{ns.name}/networkpolicy-baseline.yaml"] = dump_docs(docs)
        else:
            for doc in docs:
                files[f"clusters/{ns.name}/networkpolicy-{doc['metadata']['name']}.yaml"] = (
                    dump_docs([doc])
                )
    system_count = sum(
        1
        for p in files
        if "networkpolicy-" in p and p.split("/")[1] in ("monitoring", "ingress-nginx")
    )
    # The per-component policies fill the rest of the one-per-three-workloads budget.
    candidates: list[tuple[int, int, int, str]] = []
    for n_i, ns in enumerate(team_ns):
        for a_i, app in enumerate(ns.apps):
            for c_i, comp in enumerate(app.components):
                if comp.tier in SERVED_TIERS:
                    candidates.append((n_i, a_i, c_i, "ingress"))
                if ns.strict and comp.tier in ("api", "worker"):
                    candidates.append((n_i, a_i, c_i, "egress"))
    # A floor keeps tiny trees (tests) supplied with app policies for every variant.
    wanted = max(6, budget - baseline_count - system_count)
    chosen = set(rng.sample(candidates, min(wanted, len(candidates))))
    for n_i, ns in enumerate(team_ns):
        for a_i, app in enumerate(ns.apps):
            policies: list[Doc] = []
            for c_i, comp in enumerate(app.components):
                if (n_i, a_i, c_i, "ingress") in chosen:
                    policies.append(ingress_policy(rng, ctx, ns, app, comp))
                if (n_i, a_i, c_i, "egress") in chosen:
                    policies.append(egress_policy(rng, ctx, ns, app, comp))
            files.update(render_app(ns, app, policies))
    for ns in namespaces:
        if ns.name in ("kube-system", "monitoring", "ingress-nginx"):
            for app in ns.apps:
                files.update(render_app(ns, app, []))
    return dict(sorted(files.items()))


def generate_base(workloads: int, seed: int = 0) -> Files:
    """The base repository: path -> file bytes, sorted by path."""
    return render(plan(workloads, seed), workloads, seed)


# --------------------------------------------------------------------------- variants


@dataclass(frozen=True)
class Variant:
    name: str
    files: Files
    changed: tuple[str, ...]  # paths added, removed or rewritten relative to the base
    summary: str


def _policy_paths(files: Mapping[str, bytes]) -> list[str]:
    """Per-component policy files (one policy each), in path order."""
    return [p for p in files if re.search(r"/[^/]+/[^/]+/networkpolicy-[^/]+\.yaml$", p)]


def _port_numbers(entry: Doc, names: Mapping[str, set[int]]) -> set[int]:
    port = entry.get("port")
    if port is None:
        return set(range(1, 65536))
    if isinstance(port, str):
        return names.get(port, set())
    end: int = entry.get("endPort") or port
    return set(range(port, end + 1))


def _rule_numbers(rule: Doc) -> set[int]:
    names: dict[str, set[int]] = {}
    for ports in TIER_PORTS.values():
        for name, number, _ in ports:
            names.setdefault(name, set()).update({number, 8000} if name == "http" else {number})
    out: set[int] = set()
    for entry in rule.get("ports") or [{}]:
        out |= _port_numbers(entry, names)
    return out


def _is_pod_only(peer: Doc) -> bool:
    return set(peer) == {"podSelector"}


def widen_rule(base: Files, seed: int) -> Variant:
    """Replace one same-namespace pod peer with ``namespaceSelector: {}`` (every pod)."""
    rng = random.Random(f"widen-rule:{seed}")
    candidates: list[tuple[str, int, int]] = []
    for path in _policy_paths(base):
        (doc,) = load_docs(base[path])
        for r_i, rule in enumerate(doc["spec"].get("ingress") or []):
            if "metrics" in {str(e.get("port")) for e in rule.get("ports") or []}:
                continue  # the monitoring namespace may already reach metrics ports
            for p_i, peer in enumerate(rule.get("from") or []):
                if _is_pod_only(peer) and peer["podSelector"]:
                    candidates.append((path, r_i, p_i))
    path, r_i, p_i = rng.choice(candidates)
    (doc,) = load_docs(base[path])
    doc["spec"]["ingress"][r_i]["from"][p_i] = {"namespaceSelector": {}}
    files = dict(base)
    files[path] = dump_docs([doc])
    return Variant(
        "widen-rule",
        files,
        (path,),
        f"{path}: ingress[{r_i}].from[{p_i}] podSelector -> namespaceSelector {{}}",
    )


def remove_rule(base: Files, seed: int) -> Variant:
    """Delete one same-namespace ingress rule whose ports no other rule of the policy opens."""
    rng = random.Random(f"remove-rule:{seed}")
    candidates: list[tuple[str, int]] = []
    for path in _policy_paths(base):
        (doc,) = load_docs(base[path])
        rules = doc["spec"].get("ingress") or []
        for r_i, rule in enumerate(rules):
            peers = rule.get("from") or []
            if not peers or not all(_is_pod_only(p) for p in peers):
                continue
            mine = _rule_numbers(rule)
            if any(mine & _rule_numbers(o) for j, o in enumerate(rules) if j != r_i):
                continue
            candidates.append((path, r_i))
    path, r_i = rng.choice(candidates)
    (doc,) = load_docs(base[path])
    del doc["spec"]["ingress"][r_i]
    files = dict(base)
    files[path] = dump_docs([doc])
    return Variant("remove-rule", files, (path,), f"{path}: ingress[{r_i}] removed")


def relabel_workload(base: Files, seed: int) -> Variant:
    """Move one policy-selected workload to another tier and version (its pod labels only)."""
    rng = random.Random(f"relabel-workload:{seed}")
    selected: set[tuple[str, str, str]] = set()  # (namespace, app, tier) some policy selects
    for path in _policy_paths(base):
        (doc,) = load_docs(base[path])
        sel = doc["spec"]["podSelector"]
        labels = sel.get("matchLabels") or {}
        tiers = (
            [labels["tier"]]
            if "tier" in labels
            else [
                v
                for e in sel.get("matchExpressions") or []
                if e["key"] == "tier"
                for v in e["values"]
            ]
        )
        if "app" in labels:
            for tier in tiers:
                selected.add((doc["metadata"]["namespace"], labels["app"], tier))
    policed_dirs = {p.rsplit("/", 1)[0] for p in _policy_paths(base)}
    candidates: list[tuple[str, int]] = []
    for path, data in base.items():
        if not path.endswith(("/deployment.yaml", "/statefulset.yaml")):
            continue
        if path.rsplit("/", 1)[0] not in policed_dirs:
            continue  # cheap pre-filter: policies live beside the apps they select
        for d_i, doc in enumerate(load_docs(data)):
            if doc["kind"] not in ("Deployment", "StatefulSet"):
                continue  # the headless Service beside a StatefulSet
            pod = doc["spec"]["template"]["metadata"]["labels"]
            key = (doc["metadata"]["namespace"], pod.get("app"), pod.get("tier"))
            if key in selected:
                candidates.append((path, d_i))
    path, d_i = rng.choice(candidates)
    docs = load_docs(base[path])
    pod = docs[d_i]["spec"]["template"]["metadata"]["labels"]
    old = pod["tier"]
    pod["tier"] = "frontend" if old != "frontend" else "api"
    pod["version"] = f"v{int(pod['version'][1:]) + 1}"
    files = dict(base)
    files[path] = dump_docs(docs)
    name = docs[d_i]["metadata"]["name"]
    return Variant(
        "relabel-workload",
        files,
        (path,),
        f"{path}: {name} tier {old} -> {pod['tier']}, version -> {pod['version']}",
    )


def new_app(base: Files, seed: int) -> Variant:
    """Add an app (api + db, or frontend + api + db) with its Service and policies."""
    rng = random.Random(f"new-app:{seed}")
    ns_paths = sorted(p for p in base if re.fullmatch(r"clusters/[^/]+/namespace\.yaml", p))
    team_paths = [p for p in ns_paths if p.split("/")[1] not in ("monitoring", "ingress-nginx")]
    ns_doc = load_docs(base[rng.choice(team_paths)])[0]
    ns_name = ns_doc["metadata"]["name"]
    labels = ns_doc["metadata"].get("labels") or {}
    strict = any(
        "Egress" in d["spec"].get("policyTypes", [])
        for p, data in base.items()
        if p.startswith(f"clusters/{ns_name}/networkpolicy-") and p.count("/") == 2
        for d in load_docs(data)
        if d["spec"].get("podSelector") == {}
    )
    ns = NamespacePlan(
        ns_name, labels.get("team", "platform"), labels.get("env", "prod"), strict, False
    )
    taken = {
        p.split("/")[2] for p in base if p.startswith(f"clusters/{ns_name}/") and p.count("/") == 3
    }
    name = _unique(f"new-{rng.choice(WORDS)}", taken)
    app = App(
        ns_name, name, [_component(rng, name, t, False) for t in ("frontend", "api", "db")], True
    )
    ns.apps = [app]
    ctx = Context([ns], [])
    policies = [ingress_policy(rng, ctx, ns, app, c) for c in app.components]
    if strict:
        policies.append(egress_policy(rng, ctx, ns, app, app.components[1]))
    added = render_app(ns, app, policies)
    files = dict(base)
    files.update(added)
    return Variant(
        "new-app",
        dict(sorted(files.items())),
        tuple(sorted(added)),
        f"{app.dir}: new app with {len(policies)} policies",
    )


def _named_to_number(rule_ports: list[Doc], numbers: Mapping[str, int]) -> bool:
    changed = False
    for entry in rule_ports:
        if isinstance(entry.get("port"), str) and entry["port"] in numbers:
            entry["port"] = numbers[entry["port"]]
            changed = True
    return changed


def _refactor_policy(rng: random.Random, doc: Doc) -> str:
    """Rewrite one policy, mostly equivalently; returns what was done."""
    spec = doc["spec"]
    rules = spec.get("ingress") or spec.get("egress") or []
    by_number = {number: name for ports in TIER_PORTS.values() for name, number, _ in ports}
    by_name = {name: number for number, name in by_number.items()}
    done: list[str] = []
    for step in rng.sample(("name-ports", "number-ports", "expressions", "reorder", "tweak"), 2):
        if step == "name-ports":
            hit = False
            for rule in rules:
                for entry in rule.get("ports") or []:
                    port = entry.get("port")
                    if isinstance(port, int) and "endPort" not in entry and port in by_number:
                        entry["port"] = by_number[port]
                        hit = True
            if hit:
                done.append("numbered ports renamed to named ports")
        elif step == "number-ports":
            if any(_named_to_number(rule.get("ports") or [], by_name) for rule in rules):
                done.append("named ports written as numbers")
        elif step == "expressions":
            sel = spec["podSelector"]
            labels = sel.pop("matchLabels", None) or {}
            if labels:
                sel["matchExpressions"] = [
                    {"key": k, "operator": "In", "values": [v]} for k, v in labels.items()
                ] + list(sel.get("matchExpressions") or [])
                done.append("podSelector matchLabels as matchExpressions")
        elif step == "reorder":
            if len(rules) > 1:
                rules.reverse()
                done.append("rules reordered")
        else:  # slightly different: the selector narrowed to current versions
            sel = spec["podSelector"]
            sel.setdefault("matchExpressions", []).append(
                {"key": "version", "operator": "In", "values": ["v1", "v2", "v3", "v4"]}
            )
            done.append("podSelector narrowed by version")
    if not done:
        spec["podSelector"].setdefault("matchExpressions", []).append(
            {"key": "tier", "operator": "Exists"}
        )
        done.append("podSelector requires a tier")
    return ", ".join(done)


def refactor_5pct(base: Files, seed: int) -> Variant:
    """Rewrite 5% of the policy files, mostly equivalently, a few slightly differently."""
    rng = random.Random(f"refactor-5pct:{seed}")
    paths = _policy_paths(base)
    total_policies = sum(len(load_docs(d)) for p, d in base.items() if "networkpolicy-" in p)
    chosen = sorted(rng.sample(paths, min(len(paths), max(1, round(total_policies * 0.05)))))
    files = dict(base)
    for path in chosen:
        (doc,) = load_docs(base[path])
        _refactor_policy(rng, doc)
        files[path] = dump_docs([doc])
    changed = tuple(p for p in chosen if files[p] != base[p])
    return Variant("refactor-5pct", files, changed, f"{len(changed)} policy files rewritten")


# --------------------------------------------------------------------------- mixed kinds

_NS_LABELS = "io.cilium.k8s.namespace.labels."


def _cilium_selector(selector: Doc, prefix: str = "") -> Doc:
    """A label selector with its keys under ``prefix`` (namespace labels in Cilium)."""
    out: Doc = {}
    if selector.get("matchLabels"):
        out["matchLabels"] = {prefix + k: v for k, v in selector["matchLabels"].items()}
    if selector.get("matchExpressions"):
        out["matchExpressions"] = [
            {**e, "key": prefix + e["key"]} for e in selector["matchExpressions"]
        ]
    return out


def _cilium_rule(rule: Doc) -> Doc:
    """A NetworkPolicy ingress rule as a CiliumNetworkPolicy rule with the same peers."""
    out: Doc = {}
    endpoints: list[Doc] = []
    cidrs: list[Doc] = []
    for peer in rule.get("from") or []:
        if "ipBlock" in peer:
            cidrs.append(dict(peer["ipBlock"]))
            continue
        sel = _cilium_selector(peer.get("podSelector") or {})
        if "namespaceSelector" in peer:
            ns = _cilium_selector(peer["namespaceSelector"], _NS_LABELS)
            if not ns:  # every namespace: name the namespace key so none is added
                ns = {"matchExpressions": [{"key": "io.kubernetes.pod.namespace",
                                            "operator": "Exists"}]}  # fmt: skip
            for key in ("matchLabels", "matchExpressions"):
                if key in ns:
                    merged = sel.get(key, {} if key == "matchLabels" else [])
                    sel[key] = {**merged, **ns[key]} if key == "matchLabels" else merged + ns[key]
        endpoints.append(sel)
    if endpoints:
        out["fromEndpoints"] = endpoints
    if cidrs:
        out["fromCIDRSet"] = cidrs
    if not rule.get("from"):
        out["fromEntities"] = ["all"]
    ports = []
    for entry in rule.get("ports") or []:
        port: Doc = {"protocol": entry.get("protocol", "TCP")}
        if entry.get("port") is not None:
            port["port"] = str(entry["port"])
        if entry.get("endPort") is not None:
            port["endPort"] = entry["endPort"]
        ports.append(port)
    if ports:
        out["toPorts"] = [{"ports": ports}]
    return out


def cilium_mixed(base: Files, seed: int) -> Variant:
    """A tree mixing kinds: every tenth per-component ingress NetworkPolicy rewritten as the
    equivalent CiliumNetworkPolicy (an L7 rule on some), plus a clusterwide deny of ingress
    from outside the cluster to the ingress controller's namespace."""
    rng = random.Random(f"cilium-mixed:{seed}")
    files = dict(base)
    changed: list[str] = []
    for path in _policy_paths(base):
        (doc,) = load_docs(base[path])
        if doc["spec"].get("policyTypes") != ["Ingress"] or rng.random() >= 0.1:
            continue
        rules = [_cilium_rule(r) for r in doc["spec"].get("ingress") or []]
        if rules and "toPorts" in rules[0] and rng.random() < 0.3:
            rules[0]["toPorts"][0]["rules"] = {"http": [{"method": "GET", "path": "/api/.*"}]}
        spec: Doc = {"endpointSelector": _cilium_selector(doc["spec"]["podSelector"])}
        spec["ingress"] = rules or [{}]
        cnp = {
            "apiVersion": "cilium.io/v2",
            "kind": "CiliumNetworkPolicy",
            "metadata": {
                "name": doc["metadata"]["name"],
                "namespace": doc["metadata"]["namespace"],
            },
            "spec": spec,
        }
        files[path] = dump_docs([cnp])
        changed.append(path)
    # The ingress controller's namespace: the one outside traffic reaches.
    target = "ingress-nginx"
    lockdown = "clusters/cilium-lockdown.yaml"
    files[lockdown] = dump_docs(
        [
            {
                "apiVersion": "cilium.io/v2",
                "kind": "CiliumClusterwideNetworkPolicy",
                "metadata": {"name": "lockdown"},
                "spec": {
                    "endpointSelector": {"matchLabels": {"io.kubernetes.pod.namespace": target}},
                    "enableDefaultDeny": {"ingress": False},
                    "ingressDeny": [{"fromEntities": ["world"]}],
                },
            }
        ]
    )
    changed.append(lockdown)
    return Variant(
        "cilium-mixed",
        dict(sorted(files.items())),
        tuple(changed),
        f"{len(changed) - 1} NetworkPolicies rewritten as CiliumNetworkPolicies, and a "
        f"clusterwide deny of world to {target}",
    )


VARIANT_BUILDERS: dict[str, Callable[[Files, int], Variant]] = {
    "widen-rule": widen_rule,
    "remove-rule": remove_rule,
    "relabel-workload": relabel_workload,
    "new-app": new_app,
    "refactor-5pct": refactor_5pct,
    "cilium-mixed": cilium_mixed,
}


# --------------------------------------------------------------------------- shapes

# How objects are spread over files. "apps": as generated (an app's Deployments in one
# file, a StatefulSet beside its headless Service, a namespace's baseline policies
# sometimes in one file). "small-files": every object in a file of its own, as
# repositories written by generators or one-resource-per-file conventions are (10,000
# workloads give ~20,000 files): the cost per file (walking, reading, hashing,
# screening) weighs more against the parse. "cilium" and "calico": mixed kinds on both
# sides (``cilium_mixed``'s rewrite, ``benchmarks.calico.with_calico``), so that a
# variant changes NetworkPolicies of a tree that also holds Cilium or Calico policies.
SHAPES: tuple[str, ...] = ("apps", "small-files", "cilium", "calico")


def one_object_per_file(files: Mapping[str, bytes]) -> Files:
    """The same objects, each in a file of its own; single-object files keep their path.

    A file of several objects becomes ``<kind>-<name>.yaml`` per object, in the same
    directory, so a variant's change to a single-object file keeps its path.
    """
    out: Files = {}
    for path, data in files.items():
        docs = load_docs(data)
        if len(docs) <= 1:
            out[path] = data
            continue
        folder = path.rpartition("/")[0]
        for doc in docs:
            name = f"{folder}/{doc['kind'].lower()}-{doc['metadata']['name']}.yaml"
            if name in out or name in files:
                raise ValueError(f"{path}: two objects would share {name}")
            out[name] = dump_docs([doc])
    return dict(sorted(out.items()))


def shaped(files: Mapping[str, bytes], shape: str) -> Files:
    if shape == "apps":
        return dict(files)
    if shape == "small-files":
        return one_object_per_file(files)
    if shape == "cilium":
        return cilium_mixed(dict(files), 0).files
    if shape == "calico":
        from benchmarks.calico import with_calico  # it builds on this module

        return with_calico(dict(files), 0)
    raise ValueError(f"unknown shape {shape!r}; choose from {', '.join(SHAPES)}")


def shaped_variant(variant: Variant, base: Mapping[str, bytes], shape: str) -> Variant:
    """A variant of the plain shape, in ``shape``: its changed paths are recomputed."""
    files = shaped(variant.files, shape)
    changed = sorted(
        {p for p, d in files.items() if base.get(p) != d} | {p for p in base if p not in files}
    )
    return Variant(variant.name, files, tuple(changed), variant.summary)


def derive_variant(base: Files, name: str, seed: int = 0) -> Variant:
    if name not in VARIANT_BUILDERS:
        raise ValueError(f"unknown variant {name!r}; choose from {', '.join(VARIANTS)}")
    return VARIANT_BUILDERS[name](base, seed)


# --------------------------------------------------------------------------- files on disk


def write_tree(files: Mapping[str, bytes], out: Path) -> None:
    """Write a tree into an empty (or absent) directory."""
    if out.exists():
        shutil.rmtree(out)
    for path, data in files.items():
        target = out / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def read_tree(root: Path) -> Files:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*.yaml"))
        if p.is_file()
    }


def stats(files: Mapping[str, bytes]) -> dict[str, int]:
    counts: dict[str, int] = {"files": len(files), "bytes": sum(map(len, files.values()))}
    for data in files.values():
        for doc in load_docs(data):
            counts[doc["kind"]] = counts.get(doc["kind"], 0) + 1
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.generate",
        description="Write a synthetic GitOps repository (or a pull-request variant of it).",
    )
    parser.add_argument("--workloads", type=int, required=True)
    parser.add_argument(
        "--out", type=Path, required=True, help="directory to write (replaced if it exists)"
    )
    parser.add_argument(
        "--variant",
        choices=VARIANTS,
        help="write the head tree of this variant instead of the base",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--shape", choices=SHAPES, default="apps", help="how objects are spread over files"
    )
    args = parser.parse_args(argv)
    try:
        files = generate_base(args.workloads, args.seed)
    except ValueError as err:
        parser.error(str(err))
    summary = "base"
    changed: tuple[str, ...] = ()
    if args.variant:
        variant = derive_variant(files, args.variant, args.seed)
        if args.shape != "apps":
            variant = shaped_variant(variant, shaped(files, args.shape), args.shape)
        files, summary, changed = variant.files, variant.summary, variant.changed
    else:
        files = shaped(files, args.shape)
    write_tree(files, args.out)
    report = {
        "out": str(args.out),
        "variant": args.variant or "base",
        "summary": summary,
        "changed": list(changed),
        **stats(files),
    }
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
