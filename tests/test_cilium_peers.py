"""Cilium's peers that are not pods (analysis.ciliumpeers): entities and DNS names as named
pseudo-endpoints of the map and the diff, each case asserted pair by pair.

Facts: docs.cilium.io, *Layer 3 Policies* (Entities Based, DNS based) and
pkg/policy/api/entity.go (Apache-2.0): `cluster` is host, remote-node, init, ingress,
health, unmanaged, kube-apiserver and the cluster's pods; `world` is outside the cluster;
`all` is everything; toFQDNs take effect through the DNS proxy (a DNS rule)."""

from __future__ import annotations

import pytest

from analysis.ciliumagent import CiliumAgent
from analysis.diff import diff_trees
from analysis.errors import ManifestError
from analysis.manifests import load_files
from analysis.reachability import compute_map
from analysis.report import diff_to_json, map_to_json

PODS = """\
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop, labels: {app: web}}
spec: {containers: [{name: c, image: x, ports: [{containerPort: 8080}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: db, namespace: shop, labels: {app: db}}
spec: {containers: [{name: c, image: x}]}
"""
ENTITIES = [
    "entity:host",
    "entity:remote-node",
    "entity:kube-apiserver",
    "entity:ingress",
    "entity:health",
    "entity:init",
    "entity:unmanaged",
]
WEB, DB = "shop/Pod/web", "shop/Pod/db"
DNS_UDP = (
    "    toPorts: [{ports: [{port: '53', protocol: UDP}], rules: {dns: [{matchPattern: '*'}]}}]\n"
)


def _cnp(spec: str, name: str = "p") -> str:
    return (
        "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\n"
        f"metadata: {{name: {name}, namespace: shop}}\nspec:\n"
        "  endpointSelector: {matchLabels: {app: web}}\n" + spec
    )


def _map(*policies: str) -> dict[str, dict[str, dict[str, str]]]:
    files = {"pods.yaml": PODS} | {f"p{i}.yaml": p for i, p in enumerate(policies)}
    doc = map_to_json(compute_map(load_files(files)))
    out: dict[str, dict[str, dict[str, str]]] = {}
    for c in doc["connections"]:
        out.setdefault(c["src"], {})[c["dst"]] = c["allowed"]
    return out


ALL = {"TCP": "all", "UDP": "all", "SCTP": "all"}


def test_entities_are_endpoints_only_where_cilium_policies_are() -> None:
    plain = map_to_json(compute_map(load_files({"pods.yaml": PODS})))
    assert not any(e["id"].startswith("entity:") for e in plain["endpoints"])
    doc = map_to_json(
        compute_map(load_files({"pods.yaml": PODS, "p.yaml": _cnp("  ingress: [{}]\n")}))
    )
    shown = {e["id"]: e for e in doc["endpoints"]}
    for eid in ENTITIES:
        assert shown[eid]["kind"] == "Entity" and shown[eid]["namespace"] == ""
        assert shown[eid]["name"] == eid.removeprefix("entity:")
        assert "Cilium entity" in shown[eid]["description"]


@pytest.mark.parametrize("entity", [e.removeprefix("entity:") for e in ENTITIES])
def test_each_entity_admits_its_endpoint_only(entity: str) -> None:
    into_web = _map(_cnp(f"  egress:\n  - toEntities: [{entity}]\n"))[WEB]
    assert into_web.get(f"entity:{entity}") == ALL
    for other in ENTITIES:
        if other != f"entity:{entity}":
            assert other not in into_web, other
    assert DB not in into_web and "ip:0.0.0.0/0" not in into_web


def test_cluster_is_every_pod_and_entity_but_no_range_nor_dns_name() -> None:
    m = _map(
        _cnp(
            "  egress:\n  - toEntities: [cluster]\n"
            "  - toFQDNs: [{matchName: api.example.com}]\n" + DNS_UDP
        )
    )[WEB]
    for eid in [*ENTITIES, DB, WEB]:
        assert m.get(eid) == ALL, eid
    assert "ip:0.0.0.0/0" not in m and "ip:::/0" not in m
    assert m.get("fqdn:api.example.com") == {"UDP": "53"}  # only the DNS rule's port


def test_world_is_the_ranges_and_the_dns_names_not_the_api_server() -> None:
    m = _map(
        _cnp(
            "  egress:\n  - toEntities: [world]\n"
            "  - toEndpoints: [{}]\n"
            "    toPorts: [{ports: [{port: '53', protocol: ANY}],"
            " rules: {dns: [{matchPattern: '*'}]}}]\n"
            "  - toFQDNs: [{matchPattern: '*.example.com'}]\n"
            "    toPorts: [{ports: [{port: '443'}]}]\n"
        )
    )[WEB]
    assert m["ip:0.0.0.0/0"] == ALL and m["ip:::/0"] == ALL
    assert m["fqdn:*.example.com"] == ALL
    for eid in ENTITIES:
        assert eid not in m, eid


def test_world_ipv4_holds_no_dns_name_and_all_holds_everything() -> None:
    fqdn = "  - toFQDNs: [{matchName: a.example.com}]\n"
    dns = "    toPorts: [{ports: [{port: '53'}], rules: {dns: [{matchPattern: '*'}]}}]\n"
    m = _map(_cnp(f"  egress:\n  - toEntities: [world-ipv4]\n{fqdn}{dns}"))[WEB]
    assert m["ip:0.0.0.0/0"] == ALL and "ip:::/0" not in m
    assert m["fqdn:a.example.com"] == {"TCP": "53", "UDP": "53", "SCTP": "53"}
    m = _map(_cnp(f"  egress:\n  - toEntities: [all]\n{fqdn}"))[WEB]
    for eid in [*ENTITIES, DB, "ip:0.0.0.0/0", "ip:::/0", "fqdn:a.example.com"]:
        assert m.get(eid) == ALL, eid


def test_to_fqdns_needs_a_dns_rule_for_the_pod() -> None:
    alone = _cnp("  egress:\n  - toFQDNs: [{matchName: api.github.com}]\n")
    m = _map(alone)
    assert "fqdn:api.github.com" not in m.get(WEB, {})
    dns = _cnp(
        "  egress:\n  - toEndpoints: [{}]\n"
        "    toPorts: [{ports: [{port: '53', protocol: UDP}],"
        " rules: {dns: [{matchName: api.github.com}]}}]\n",
        name="dns",
    )
    m = _map(alone, dns)  # another policy's DNS rule for the same pod is enough
    assert m[WEB]["fqdn:api.github.com"] == ALL


def test_fqdn_patterns_cover_names_within_one_label() -> None:
    m = _map(
        _cnp(
            "  egress:\n  - toFQDNs: [{matchPattern: '*.example.com'}]\n"
            "  - toFQDNs: [{matchName: API.Example.com.}, {matchName: a.b.example.com},"
            " {matchName: example.com}]\n    toPorts: [{ports: [{port: '1'}]}]\n"
            "  - toEndpoints: [{}]\n"
            "    toPorts: [{ports: [{port: '53'}], rules: {dns: [{matchPattern: '*'}]}}]\n"
        )
    )[WEB]
    assert m["fqdn:*.example.com"] == ALL
    assert m["fqdn:api.example.com"] == ALL  # normalized: lower case, no trailing dot
    one = {"TCP": "1", "UDP": "1", "SCTP": "1"}
    assert m["fqdn:a.b.example.com"] == one  # `*` does not cross a dot
    assert m["fqdn:example.com"] == one


def test_host_reaches_an_isolated_pod_unless_denied() -> None:
    m = _map(_cnp("  ingress:\n  - fromEndpoints: [{matchLabels: {app: db}}]\n"))
    assert m["entity:host"][WEB] == ALL  # allow-localhost
    assert WEB not in m["entity:remote-node"]
    m = _map(
        _cnp(
            "  ingress:\n  - fromEndpoints: [{matchLabels: {app: db}}]\n"
            "  ingressDeny:\n  - fromEntities: [host]\n    toPorts: [{ports: [{port: '22'}]}]\n"
        )
    )
    assert m["entity:host"][WEB] == {"TCP": "1-21,23-65535", "UDP": "1-21,23-65535",
                                     "SCTP": "1-21,23-65535"}  # fmt: skip


def test_pairs_between_entities_and_ranges_are_not_in_the_map() -> None:
    m = _map(_cnp("  ingress: [{}]\n"))
    for eid in ENTITIES:
        assert all(not d.startswith(("entity:", "ip:", "fqdn:")) for d in m.get(eid, {}))


def test_a_diff_adding_the_first_cilium_policy_pairs_entities_on_both_sides() -> None:
    base = load_files({"pods.yaml": PODS})
    head = load_files(
        {"pods.yaml": PODS, "p.yaml": _cnp("  egress:\n  - toEntities: [kube-apiserver]\n")}
    )
    doc = diff_to_json(diff_trees(base, head))
    closed = {(r["src"], r["dst"]) for r in doc["closed"]}
    assert (WEB, DB) in closed and (WEB, "entity:host") in closed
    assert (WEB, "entity:kube-apiserver") not in closed
    assert not any(e["id"].startswith("entity:") for e in doc.get("added_endpoints", []))
    row = next(r for r in doc["closed"] if (r["src"], r["dst"]) == (WEB, "entity:host"))
    assert not row["dst_new"] and row["because"]


@pytest.mark.parametrize(
    ("fqdn", "says"),
    [
        ("[{matchName: 'bad name'}]", "is not a DNS name"),
        ("[{matchPattern: 'a b*'}]", "is not a DNS name pattern"),
        ("[{matchName: a.com, matchPattern: '*.b.com'}]", "exactly one of"),
        ("[{}]", "exactly one of"),
        ("['a.com']", "mappings with matchName or matchPattern"),
    ],
)
def test_invalid_to_fqdns_is_an_error_with_file_and_line(fqdn: str, says: str) -> None:
    with pytest.raises(ManifestError) as e:
        load_files({"p.yaml": "# x\n---\n" + _cnp(f"  egress:\n  - toFQDNs: {fqdn}\n")})
    assert says in str(e.value) and "p.yaml" in str(e.value)


ACCOUNTS = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: shop}
spec:
  selector: {matchLabels: {app: client}}
  template:
    metadata: {labels: {app: client}}
    spec: {serviceAccountName: api, containers: [{name: c, image: x}]}
---
apiVersion: v1
kind: Pod
metadata: {name: old, namespace: shop, labels: {app: client}}
spec: {serviceAccount: legacy, containers: [{name: c, image: x}]}
---
apiVersion: v1
kind: Pod
metadata: {name: plain, namespace: shop, labels: {app: client}}
spec: {containers: [{name: c, image: x}]}
"""


@pytest.mark.parametrize(
    ("selector", "admitted"),
    [
        ("{matchLabels: {io.cilium.k8s.policy.serviceaccount: api}}", {"shop/Deployment/api"}),
        ("{matchLabels: {k8s:io.cilium.k8s.policy.serviceaccount: legacy}}", {"shop/Pod/old"}),
        (
            "{matchLabels: {io.cilium.k8s.policy.serviceaccount: default}}",
            {"shop/Pod/plain", WEB, DB},  # unset: "default"
        ),
        (
            "{matchExpressions: [{key: io.cilium.k8s.policy.serviceaccount, operator: NotIn,"
            " values: [api]}]}",
            {"shop/Pod/old", "shop/Pod/plain", WEB, DB},
        ),
        (
            "{matchExpressions: [{key: io.cilium.k8s.policy.serviceaccount,"
            " operator: DoesNotExist}]}",
            set(),
        ),
    ],
)
def test_service_account_selectors_read_the_pod_spec(selector: str, admitted: set[str]) -> None:
    files = {"pods.yaml": PODS, "accounts.yaml": ACCOUNTS}
    files["p.yaml"] = _cnp(f"  ingress:\n  - fromEndpoints: [{selector}]\n")
    doc = map_to_json(compute_map(load_files(files)))
    into_web = {c["src"] for c in doc["connections"] if c["dst"] == WEB}
    assert into_web - {"entity:host"} == admitted


def test_a_service_account_subject_selects_only_its_pods() -> None:
    files = {"pods.yaml": PODS, "accounts.yaml": ACCOUNTS}
    files["p.yaml"] = (
        "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\n"
        "metadata: {name: p, namespace: shop}\nspec:\n"
        "  endpointSelector: {matchLabels: {io.cilium.k8s.policy.serviceaccount: api}}\n"
        "  egress: [{}]\n"
    )
    doc = map_to_json(compute_map(load_files(files)))
    sources = {c["src"] for c in doc["connections"]}
    assert "shop/Deployment/api" not in sources
    assert {"shop/Pod/old", "shop/Pod/plain"} <= sources
    assert load_files(files).unanalysed == ()


SERVICES = """\
apiVersion: v1
kind: Service
metadata: {name: db, namespace: shop, labels: {tier: data}}
spec: {selector: {app: db}, ports: [{port: 5432}]}
---
apiVersion: v1
kind: Service
metadata: {name: legacy, namespace: shop, labels: {tier: data}}
spec: {ports: [{port: 443}]}
"""


def test_to_services_admits_the_pods_a_service_selects() -> None:
    m = _map(SERVICES, _cnp("  egress:\n  - toServices: [{k8sService: {serviceName: db}}]\n"))
    assert m[WEB].get(DB) == ALL
    assert not any(d.startswith("shop/") for d in m[WEB] if d != DB)
    sel = "{k8sServiceSelector: {selector: {matchLabels: {tier: data}}, namespace: shop}}"
    m = _map(SERVICES, _cnp(f"  egress:\n  - toServices: [{sel}]\n"))
    assert m[WEB].get(DB) == ALL


def test_a_service_without_selector_or_missing_is_not_analysed_by_name_file_and_line() -> None:
    files = {"pods.yaml": PODS, "svc.yaml": SERVICES}
    files["p.yaml"] = _cnp(
        "  egress:\n  - toServices: [{k8sService: {serviceName: legacy}},"
        " {k8sService: {serviceName: gone, namespace: other}}]\n"
    )
    tree = load_files(files)
    legacy, gone = tree.unanalysed
    assert legacy.startswith("p.yaml:7: shop/CiliumNetworkPolicy/p egress[0]: toServices")
    assert "Service shop/legacy (svc.yaml:6) has no selector" in legacy
    assert "Service other/gone is not in the tree" in gone
    doc = map_to_json(compute_map(tree))
    assert not any(c["src"] == WEB and c["dst"].startswith("shop/") for c in doc["connections"])


def test_to_services_needs_one_reference_per_entry() -> None:
    with pytest.raises(ManifestError) as e:
        load_files({"p.yaml": _cnp("  egress:\n  - toServices: [{k8sService: {}}]\n")})
    assert "serviceName" in str(e.value) and "p.yaml" in str(e.value)


@pytest.mark.parametrize(
    ("selector", "admitted"),
    [
        ("{matchLabels: {'reserved:host': ''}}", {"entity:host"}),
        ("{matchLabels: {'reserved:kube-apiserver': ''}}", {"entity:kube-apiserver"}),
        ("{matchLabels: {'reserved:world': ''}}", {"ip:0.0.0.0/0", "ip:::/0"}),
        # a reserved key with k8s requirements: no reserved identity has k8s labels
        ("{matchLabels: {'reserved:host': '', app: db}}", set()),
        ("{matchExpressions: [{key: 'reserved:host', operator: Exists}]}", {"entity:host"}),
    ],
)
def test_reserved_labels_select_the_entities(selector: str, admitted: set[str]) -> None:
    m = _map(_cnp(f"  ingress:\n  - fromEndpoints: [{selector}]\n"))
    into = {src for src, dsts in m.items() if WEB in dsts} - {"entity:host"}
    assert into == admitted - {"entity:host"}
    egress = _map(_cnp(f"  egress:\n  - toEndpoints: [{selector}]\n")).get(WEB, {})
    assert set(egress) == admitted


# `reserved:` keys where they select no peer (utils.go getEndpointSelector and
# ParseToCiliumRule, pkg/policy/repository.go; Apache-2.0, facts only): a namespaced
# policy's endpointSelector always gets the policy's namespace, so it selects pods only,
# which carry no reserved label; a clusterwide policy's gets none, and an endpointSelector
# never selects the host (nodeSelector policies do), but may select Cilium's own health,
# ingress and init endpoints. A fromRequires/toRequires selector gets the namespace
# requirement, which no reserved identity meets, unless it names the pod's namespace.


def _policy(kind: str, selector: str, rules: str) -> str:
    meta = "{name: p, namespace: shop}" if kind == "CiliumNetworkPolicy" else "{name: p}"
    return (
        f"apiVersion: cilium.io/v2\nkind: {kind}\nmetadata: {meta}\nspec:\n"
        f"  endpointSelector: {selector}\n{rules}"
    )


@pytest.mark.parametrize("kind", ["CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy"])
@pytest.mark.parametrize(
    ("selector", "isolated"),
    [
        ("{matchLabels: {'reserved:host': ''}}", set()),
        ("{matchExpressions: [{key: 'reserved:host', operator: Exists}]}", set()),
        ("{matchExpressions: [{key: 'reserved:host', operator: DoesNotExist}]}", {WEB, DB}),
        (
            "{matchLabels: {app: db}, matchExpressions: [{key: 'reserved:world', "
            "operator: NotIn, values: ['']}]}",
            {DB},
        ),
    ],
)
def test_a_reserved_key_in_an_endpoint_selector_is_evaluated_on_pods(
    kind: str, selector: str, isolated: set[str]
) -> None:
    tree = load_files({"pods.yaml": PODS, "p.yaml": _policy(kind, selector, "  ingress: [{}]\n")})
    # a clusterwide selector every reserved label may be absent from selects Cilium's own
    # endpoints too (not analysed); a namespaced one never does
    own = kind == "CiliumClusterwideNetworkPolicy" and "DoesNotExist" in selector
    assert [n.split(": ", 2)[2] for n in tree.unanalysed] == (
        [
            "selects Cilium's own health, ingress, init endpoints by a reserved label "
            "(!reserved:host), whose policies reachdiff does not model"
        ]
        if own
        else []
    )
    m = _map(_policy(kind, selector, "  ingress: [{}]\n"))
    # (the node reaches isolated pods too: allow-localhost)
    reached = {d for s, dsts in m.items() if not s.startswith("entity:") for d in dsts}
    assert {WEB, DB} - reached == isolated


def test_a_clusterwide_endpoint_selector_of_ciliums_own_endpoints_is_not_analysed() -> None:
    policy = _policy(
        "CiliumClusterwideNetworkPolicy",
        "{matchLabels: {'reserved:health': ''}}",
        "  ingress: [{fromEntities: [remote-node]}]\n",
    )
    [note] = load_files({"pods.yaml": PODS, "p.yaml": "# x\n---\n" + policy}).unanalysed
    assert note.startswith("p.yaml:7: CiliumClusterwideNetworkPolicy/p spec.endpointSelector:")
    assert "Cilium's own health endpoint" in note
    # the same selector in a namespaced policy selects nothing: no note
    namespaced = _policy("CiliumNetworkPolicy", "{matchLabels: {'reserved:health': ''}}", "")
    tree = load_files({"pods.yaml": PODS, "p.yaml": namespaced + "  ingress: [{}]\n"})
    assert tree.unanalysed == ()


@pytest.mark.parametrize(
    ("requires", "from_host"),
    [
        # scoped to the namespace: no reserved identity meets it, so host is not admitted
        ("{matchLabels: {'reserved:host': ''}}", False),
        ("{matchExpressions: [{key: 'reserved:host', operator: DoesNotExist}]}", False),
        # naming the pod's namespace leaves it unscoped: the identity has no namespace label
        (
            "{matchExpressions: [{key: io.kubernetes.pod.namespace, operator: NotIn, "
            "values: [other]}]}",
            True,
        ),
    ],
)
def test_a_reserved_key_in_from_requires_is_evaluated_exactly(
    requires: str, from_host: bool
) -> None:
    rules = (
        "  ingress:\n  - fromEndpoints: [{matchLabels: {'reserved:host': ''}}, "
        f"{{matchLabels: {{app: db}}}}]\n    fromRequires: [{requires}]\n"
    )
    policy = _policy("CiliumNetworkPolicy", "{matchLabels: {app: web}}", rules)
    tree = load_files({"pods.yaml": PODS, "p.yaml": policy})
    assert tree.unanalysed == ()
    # allow-localhost lets the node in anyway: deny it to see what the rule admits
    spec_deny = "  ingressDeny: [{fromEntities: [world]}]\n"
    m = _map(_policy("CiliumNetworkPolicy", "{matchLabels: {app: web}}", rules + spec_deny))
    assert (WEB in m.get("entity:host", {})) is True  # allow-localhost (agent default)
    strict = load_files(
        {"pods.yaml": PODS, "p.yaml": policy}, cilium_agent=CiliumAgent(allow_localhost="policy")
    )
    doc = map_to_json(compute_map(strict))
    pairs = {(c["src"], c["dst"]) for c in doc["connections"]}
    assert (("entity:host", WEB) in pairs) is from_host
    # db is admitted unless the requirement excludes pods (reserved:host: "" does)
    assert ((DB, WEB) in pairs) is ("'reserved:host': ''" not in requires)


def test_a_peer_naming_the_pod_namespace_may_select_reserved_identities() -> None:
    """Not scoped to a namespace, `io.kubernetes.pod.namespace NotIn [x]` holds on every
    reserved identity (no namespace label): the node, the world, the API server…"""
    selector = (
        "{matchExpressions: [{key: io.kubernetes.pod.namespace, operator: NotIn, values: [x]}]}"
    )
    egress = _map(_cnp(f"  egress:\n  - toEndpoints: [{selector}]\n")).get(WEB, {})
    assert {"entity:host", "entity:kube-apiserver", "ip:0.0.0.0/0", WEB, DB} <= set(egress)
