"""Mixed-kind trees: the generator's repositories with Calico policies added.

``with_calico`` adds what a cluster enforcing with Calico typically holds: a ``security``
tier (order 100) whose GlobalNetworkPolicy denies ingress from ``env: dev`` namespaces to
the others and passes the rest on; a ``platform`` tier (defaultAction Pass) whose policy
lets the observability team scrape ``metrics`` everywhere; and a share of the apps'
ingress NetworkPolicies rewritten as Calico NetworkPolicies of the default tier (the same
peers and ports in Calico's selector language), so Kubernetes and Calico policies select
the same pods side by side. A variant's edits are made to the plain tree, which is then
mixed like its base.

    python -m benchmarks.calico --workloads 10000 --out DIR [--variant NAME] [--seed N]
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path
from typing import Any

from benchmarks.generate import (
    VARIANTS,
    Files,
    derive_variant,
    dump_docs,
    generate_base,
    load_docs,
    write_tree,
)

Doc = dict[str, Any]

TIERS: list[Doc] = [
    {
        "apiVersion": "projectcalico.org/v3",
        "kind": "Tier",
        "metadata": {"name": "security"},
        "spec": {"order": 100},
    },
    {
        "apiVersion": "projectcalico.org/v3",
        "kind": "Tier",
        "metadata": {"name": "platform"},
        "spec": {"order": 200, "defaultAction": "Pass"},
    },
    {
        "apiVersion": "projectcalico.org/v3",
        "kind": "GlobalNetworkPolicy",
        "metadata": {"name": "security.dev-stays-in-dev"},
        "spec": {
            "tier": "security",
            "order": 10,
            "namespaceSelector": "env != 'dev'",
            "types": ["Ingress"],
            "ingress": [
                {"action": "Deny", "source": {"namespaceSelector": "env == 'dev'"}},
                {"action": "Pass"},
            ],
        },
    },
    {
        "apiVersion": "projectcalico.org/v3",
        "kind": "GlobalNetworkPolicy",
        "metadata": {"name": "platform.scraping"},
        "spec": {
            "tier": "platform",
            "order": 10,
            "selector": "has(app)",
            "types": ["Ingress"],
            "ingress": [
                {
                    "action": "Allow",
                    "protocol": "TCP",
                    "source": {"namespaceSelector": "team == 'observability'"},
                    "destination": {"ports": ["metrics"]},
                }
            ],
        },
    },
]


def _selector(sel: Doc) -> str | None:
    parts = [f"{k} == '{v}'" for k, v in sorted((sel.get("matchLabels") or {}).items())]
    for expr in sel.get("matchExpressions") or []:
        key, op = expr["key"], expr["operator"]
        values = ", ".join(f"'{v}'" for v in expr.get("values") or [])
        if op == "In":
            parts.append(f"{key} in {{{values}}}")
        elif op == "NotIn":
            parts.append(f"{key} not in {{{values}}}")
        elif op == "Exists":
            parts.append(f"has({key})")
        else:
            parts.append(f"!has({key})")
    return " && ".join(parts) if parts else "all()"


def _entity(peer: Doc) -> Doc | None:
    if "ipBlock" in peer:
        block = peer["ipBlock"]
        if block.get("except") or ":" in block["cidr"]:
            return None
        return {"nets": [block["cidr"]]}
    out: Doc = {}
    if "namespaceSelector" in peer:
        out["namespaceSelector"] = _selector(peer["namespaceSelector"])
    if "podSelector" in peer:
        out["selector"] = _selector(peer["podSelector"])
    elif "namespaceSelector" in peer:
        out["selector"] = "all()"
    return out


def as_calico(doc: Doc) -> Doc | None:
    """The NetworkPolicy as a Calico NetworkPolicy of the default tier (None: a shape this
    conversion keeps as it is: egress, ipBlock with except, IPv6, several protocols)."""
    spec = doc["spec"]
    if spec.get("policyTypes") != ["Ingress"] or not spec.get("ingress"):
        return None
    rules: list[Doc] = []
    for rule in spec["ingress"]:
        protocols = {p.get("protocol", "TCP") for p in rule.get("ports") or []}
        if len(protocols) > 1:
            return None
        protocol = protocols.pop() if protocols else None
        ports: list[object] = []
        for entry in rule.get("ports") or []:
            port = entry.get("port")
            if port is None:
                ports = []
                break
            ports.append(f"{port}:{entry['endPort']}" if "endPort" in entry else port)
        peers = rule.get("from") or [{}]
        for peer in peers:
            entity = _entity(peer) if peer else {}
            if entity is None:
                return None
            out: Doc = {"action": "Allow"}
            if protocol is not None:
                out["protocol"] = protocol
            if entity:
                out["source"] = entity
            if ports:
                out["destination"] = {"ports": ports}
            rules.append(out)
    return {
        "apiVersion": "projectcalico.org/v3",
        "kind": "NetworkPolicy",
        "metadata": {"name": doc["metadata"]["name"], "namespace": doc["metadata"]["namespace"]},
        "spec": {
            "selector": _selector(spec["podSelector"]),
            "types": ["Ingress"],
            "ingress": rules,
        },
    }


def with_calico(tree: Files, seed: int = 0, share: float = 0.2) -> Files:
    """The tree with the tiers added and ``share`` of its app policies rewritten; a file is
    chosen by its path alone, so a base and its variant are rewritten alike."""
    files = dict(tree)
    files["clusters/calico-tiers.yaml"] = dump_docs(TIERS)
    for path in sorted(tree):
        if "networkpolicy-" not in path or "baseline" in path:
            continue
        if random.Random(f"calico:{seed}:{path}").random() >= share:
            continue
        docs = load_docs(tree[path])
        if len(docs) != 1:
            continue
        converted = as_calico(docs[0])
        if converted is not None:
            files[path] = dump_docs([converted])
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.calico", description=__doc__)
    parser.add_argument("--workloads", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--variant", choices=VARIANTS)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    files = generate_base(args.workloads, args.seed)
    if args.variant:
        files = derive_variant(files, args.variant, args.seed).files
    files = with_calico(files, args.seed)  # after the variant: its edits are Kubernetes'
    write_tree(files, args.out)
    sys.stdout.write(f"{args.out}: {len(files)} files\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
