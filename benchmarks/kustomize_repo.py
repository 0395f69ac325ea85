"""A deterministic kustomize repository shaped like a GitOps monorepo, and PRs against it.

One base per app (``apps/<app>/base``: Deployments, Services, a NetworkPolicy per
component), one overlay per app and environment (``apps/<app>/overlays/<env>``: a
namespace, labels, replica and resource patches, a JSON 6902 patch widening a rule in
production), shared components (``components/default-deny``, ``components/monitoring``
and ``components/dns-egress``) and, when asked for, a few Helm charts (``charts/<name>``).
With the defaults: 20 apps x 3 environments = 60 kustomize roots.

Variants change the files a pull request would change, leaving every other file
byte-identical:

- ``one-overlay``: the production overlay of one app opens one more port to its clients
  (a JSON 6902 patch in that overlay only);
- ``one-base``: one app's base gains a rule (every environment of that app re-renders);
- ``component``: a shared component changes (every root using it re-renders).

    python -m benchmarks.kustomize_repo --apps 20 --out DIR [--variant NAME] [--charts N]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

Files = dict[str, bytes]
Doc = dict[str, Any]

ENVIRONMENTS = ("dev", "staging", "prod")
TIERS = ("web", "api", "db")
PORTS = {"web": 8080, "api": 9090, "db": 5432}
VARIANTS = ("one-overlay", "one-base", "component")


def _dump(docs: list[Any]) -> bytes:
    return yaml.safe_dump_all(docs, sort_keys=False).encode()


def _deployment(app: str, tier: str) -> Doc:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"{app}-{tier}", "labels": {"app": app, "tier": tier}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": app, "tier": tier}},
            "template": {
                "metadata": {"labels": {"app": app, "tier": tier}},
                "spec": {
                    "containers": [
                        {
                            "name": tier,
                            "image": f"registry.example/{app}-{tier}:1.0",
                            "ports": [{"name": "serve", "containerPort": PORTS[tier]}],
                        }
                    ]
                },
            },
        },
    }


def _service(app: str, tier: str) -> Doc:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": f"{app}-{tier}"},
        "spec": {
            "selector": {"app": app, "tier": tier},
            "ports": [{"port": PORTS[tier], "targetPort": "serve"}],
        },
    }


def _policy(app: str, tier: str, client: str) -> Doc:
    # web is reached by the previous app's api across namespaces of the same environment;
    # api by web, db by api, inside the namespace.
    if tier == "web":
        peer: Doc = {
            "namespaceSelector": {"matchLabels": {"app": client}},
            "podSelector": {"matchLabels": {"tier": "api"}},
        }
    else:
        peer = {"podSelector": {"matchLabels": {"tier": "web" if tier == "api" else "api"}}}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": f"{app}-{tier}-ingress"},
        "spec": {
            "podSelector": {"matchLabels": {"app": app, "tier": tier}},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [peer], "ports": [{"protocol": "TCP", "port": PORTS[tier]}]}],
        },
    }


def _components() -> Files:
    deny = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "default-deny"},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
    }
    monitoring = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "allow-prometheus"},
        "spec": {
            "podSelector": {},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [
                        {
                            "namespaceSelector": {"matchLabels": {"team": "observability"}},
                            "podSelector": {"matchLabels": {"app": "prometheus"}},
                        }
                    ],
                    "ports": [{"protocol": "TCP", "port": 9100}],
                }
            ],
        },
    }
    dns = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "allow-egress"},
        "spec": {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [
                {"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]},
                {"to": [{"namespaceSelector": {}}]},
            ],
        },
    }
    component = {"apiVersion": "kustomize.config.k8s.io/v1alpha1", "kind": "Component"}
    files: Files = {}
    for name, doc in (("default-deny", deny), ("monitoring", monitoring), ("dns-egress", dns)):
        files[f"components/{name}/kustomization.yaml"] = _dump(
            [{**component, "resources": ["policy.yaml"]}]
        )
        files[f"components/{name}/policy.yaml"] = _dump([doc])
    return files


def _app(app: str, client: str) -> Files:
    base = f"apps/{app}/base"
    files: Files = {
        f"{base}/deployments.yaml": _dump([_deployment(app, t) for t in TIERS]),
        f"{base}/services.yaml": _dump([_service(app, t) for t in TIERS]),
    }
    for tier in TIERS:
        files[f"{base}/policies/{tier}.yaml"] = _dump([_policy(app, tier, client)])
    files[f"{base}/kustomization.yaml"] = _dump(
        [
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [
                    "deployments.yaml",
                    "services.yaml",
                    *(f"policies/{t}.yaml" for t in TIERS),
                ],
            }
        ]
    )
    for env in ENVIRONMENTS:
        overlay = f"apps/{app}/overlays/{env}"
        namespace = f"{app}-{env}"
        files[f"{overlay}/namespace.yaml"] = _dump(
            [
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {"name": namespace, "labels": {"app": app, "env": env}},
                }
            ]
        )
        files[f"{overlay}/replicas.yaml"] = _dump(
            [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "metadata": {"name": f"{app}-web"},
                    "spec": {"replicas": 3 if env == "prod" else 1},
                }
            ]
        )
        kustomization: Doc = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "namespace": namespace,
            "labels": [{"pairs": {"env": env}, "includeSelectors": False}],
            "resources": ["../../base", "namespace.yaml"],
            "components": [
                "../../../../components/default-deny",
                "../../../../components/dns-egress",
                *(["../../../../components/monitoring"] if env != "dev" else []),
            ],
            "patches": [{"path": "replicas.yaml"}],
        }
        if env == "prod":
            files[f"{overlay}/api-port.yaml"] = _dump(
                [[{"op": "replace", "path": "/spec/ingress/0/ports/0/port", "value": 9091}]]
            )
            kustomization["patches"].append(
                {
                    "path": "api-port.yaml",
                    "target": {"kind": "NetworkPolicy", "name": f"{app}-api-ingress"},
                }
            )
        files[f"{overlay}/kustomization.yaml"] = _dump([kustomization])
    return files


def _chart(name: str) -> Files:
    root = f"charts/{name}"
    values = {"port": 8443, "clients": "frontend"}
    deployment = (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\n"
        "spec:\n  selector:\n    matchLabels:\n      app: {{ .Release.Name }}\n"
        "  template:\n    metadata:\n      labels:\n        app: {{ .Release.Name }}\n"
        "    spec:\n      containers:\n        - name: main\n          image: example/main\n"
        "          ports:\n            - containerPort: {{ .Values.port }}\n"
    )
    policy = (
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n"
        "  name: {{ .Release.Name }}-ingress\nspec:\n  podSelector:\n    matchLabels:\n"
        "      app: {{ .Release.Name }}\n  ingress:\n    - from:\n        - podSelector:\n"
        "            matchLabels:\n              app: {{ .Values.clients }}\n"
        "      ports:\n        - port: {{ .Values.port }}\n"
    )
    return {
        f"{root}/Chart.yaml": _dump([{"apiVersion": "v2", "name": name, "version": "0.1.0"}]),
        f"{root}/values.yaml": _dump([values]),
        f"{root}/templates/deployment.yaml": deployment.encode(),
        f"{root}/templates/networkpolicy.yaml": policy.encode(),
    }


def generate(apps: int = 20, charts: int = 0) -> Files:
    """The base repository: ``apps`` apps in every environment, ``charts`` Helm charts."""
    names = [f"app{i:02d}" for i in range(apps)]
    files = _components()
    for i, app in enumerate(names):
        files.update(_app(app, names[i - 1]))
    for i in range(charts):
        files.update(_chart(f"chart{i}"))
    return files


def variant(files: Files, name: str) -> Files:
    """The base with one pull request's change applied."""
    out = dict(files)
    if name == "one-overlay":
        path = "apps/app03/overlays/prod/api-port.yaml"
        out[path] = _dump(
            [
                [
                    {"op": "replace", "path": "/spec/ingress/0/ports/0/port", "value": 9091},
                    {"op": "add", "path": "/spec/ingress/0/ports/-", "value": {"port": 9443}},
                ]
            ]
        )
    elif name == "one-base":
        path = "apps/app05/base/policies/db.yaml"
        doc = yaml.safe_load(out[path])
        doc["spec"]["ingress"].append({"from": [{"podSelector": {"matchLabels": {"tier": "web"}}}]})
        out[path] = _dump([doc])
    elif name == "component":
        path = "components/monitoring/policy.yaml"
        doc = yaml.safe_load(out[path])
        doc["spec"]["ingress"][0]["ports"].append({"protocol": "TCP", "port": 9102})
        out[path] = _dump([doc])
    else:
        raise ValueError(f"unknown variant {name!r} (one of {', '.join(VARIANTS)})")
    return out


def write(files: Files, out: Path) -> None:
    for path, content in files.items():
        target = out / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=20)
    parser.add_argument("--charts", type=int, default=0)
    parser.add_argument("--variant", choices=VARIANTS)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    files = generate(args.apps, args.charts)
    write(variant(files, args.variant) if args.variant else files, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
