"""Cases transcribed from Cilium's documentation and examples, each asserted pair by pair.

Sources (Apache-2.0; the policies are the upstream examples, the expectations the facts the
pages state): docs.cilium.io *Getting Started with the Star Wars Demo* and
examples/minikube (http-sw-app.yaml, sw_l3_l4_policy.yaml, sw_l3_l4_l7_policy.yaml);
*Layer 3 Policies* and examples/policies/l3 (cidr, requires, egress-default-deny,
entities/from_world_deny, match-expressions/or-statement); *Layer 4 Policies*
(examples/policies/l4/l4.yaml); *Deny Policies* (the allow/deny table); *Policy Enforcement
Modes* (enableDefaultDeny); *Layer 3 Policies* entities (host, host and remote-node, world,
kube-apiserver), *Services based* (service-rule) and *DNS based* (to-fqdn). Pods are ours,
labelled as the pages describe them.
"""

from __future__ import annotations

import pytest

from analysis.decision import explain_pair
from analysis.diff import diff_trees
from analysis.manifests import load_files
from analysis.ports import ConnectionSet
from analysis.reachability import ReachabilityMap, compute_map
from analysis.report import diff_to_json

STARWARS_APP = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: deathstar, labels: {app.kubernetes.io/name: deathstar}}
spec:
  selector: {matchLabels: {org: empire, class: deathstar}}
  template:
    metadata: {labels: {org: empire, class: deathstar, app.kubernetes.io/name: deathstar}}
    spec: {containers: [{name: deathstar, image: quay.io/cilium/starwars}]}
---
apiVersion: v1
kind: Pod
metadata: {name: tiefighter, labels: {org: empire, class: tiefighter}}
spec: {containers: [{name: spaceship, image: quay.io/cilium/json-mock}]}
---
apiVersion: v1
kind: Pod
metadata: {name: xwing, labels: {org: alliance, class: xwing}}
spec: {containers: [{name: spaceship, image: quay.io/cilium/json-mock}]}
"""

SW_L3_L4 = """\
apiVersion: "cilium.io/v2"
kind: CiliumNetworkPolicy
metadata:
  name: "rule1"
spec:
  description: "L3-L4 policy to restrict deathstar access to empire ships only"
  endpointSelector:
    matchLabels:
      org: empire
      class: deathstar
  ingress:
  - fromEndpoints:
    - matchLabels:
        org: empire
    toPorts:
    - ports:
      - port: "80"
        protocol: TCP
"""

SW_L7 = SW_L3_L4.replace(
    "        protocol: TCP\n",
    '        protocol: TCP\n      rules:\n        http:\n        - method: "POST"\n'
    '          path: "/v1/request-landing"\n',
)

DEATHSTAR = "default/Deployment/deathstar"
TIE, XWING = "default/Pod/tiefighter", "default/Pod/xwing"
EVERYTHING = ConnectionSet.parse({"TCP": "all", "UDP": "all", "SCTP": "all"})


def _map(*texts: str) -> ReachabilityMap:
    return compute_map(load_files({f"f{i}.yaml": t for i, t in enumerate(texts)}))


def _allowed(rmap: ReachabilityMap, src: str, dst: str) -> dict[str, str]:
    return rmap.allowed(src, dst).to_json()


def test_star_wars_l3_l4_only_empire_ships_land_on_port_80() -> None:
    rmap = _map(STARWARS_APP, SW_L3_L4)
    # "tiefighter ... Ship landed"; "xwing ... hangs": the policy drops its packets.
    assert _allowed(rmap, TIE, DEATHSTAR) == {"TCP": "80"}
    assert _allowed(rmap, XWING, DEATHSTAR) == {}
    # Only deathstar's ingress is restricted.
    assert _allowed(rmap, DEATHSTAR, XWING) == EVERYTHING.to_json()
    assert _allowed(rmap, XWING, TIE) == EVERYTHING.to_json()
    assert _allowed(rmap, "ip:0.0.0.0/0", DEATHSTAR) == {}


def test_star_wars_l7_is_allowed_at_l4_and_cited_as_l7_filtered() -> None:
    base = load_files({"app.yaml": STARWARS_APP, "rule.yaml": SW_L3_L4})
    head = load_files({"app.yaml": STARWARS_APP, "rule.yaml": SW_L7})
    rmap = compute_map(head)
    # "POST /v1/request-landing ... Ship landed"; "PUT /v1/exhaust-port ... Access denied":
    # L7 decides requests, TCP 80 stays reachable.
    assert _allowed(rmap, TIE, DEATHSTAR) == {"TCP": "80"}
    assert _allowed(rmap, XWING, DEATHSTAR) == {}
    assert diff_to_json(diff_trees(base, head))["opened"] == []
    e = explain_pair(rmap, TIE, DEATHSTAR, "TCP 80")
    [allow] = [s for s in e.steps if s.verdict == "allow" and s.direction == "Ingress"]
    assert allow.tier == "CiliumNetworkPolicy" and allow.rule == "ingress[0]"
    assert "L7-filtered" in allow.detail and "/v1/request-landing" in allow.detail


def test_star_wars_adding_the_policy_closes_paths_citing_its_rule() -> None:
    doc = diff_to_json(
        diff_trees(
            load_files({"app.yaml": STARWARS_APP}),
            load_files({"app.yaml": STARWARS_APP, "rule.yaml": SW_L7}),
        )
    )
    closed = {(c["src"], c["dst"]): c for c in doc["closed"]}
    assert closed[(XWING, DEATHSTAR)]["allowed"] == EVERYTHING.to_json()
    assert closed[(TIE, DEATHSTAR)]["head"] == {"TCP": "80"}
    [cause] = closed[(XWING, DEATHSTAR)]["because"]
    assert (cause["policy"], cause["reason"], cause["tier"], cause["file"], cause["line"]) == (
        "default/CiliumNetworkPolicy/rule1",
        "isolates",
        "CiliumNetworkPolicy",
        "rule.yaml",
        1,
    )
    assert doc["opened"] == []


SERVICE = """\
apiVersion: v1
kind: Pod
metadata: {name: my-service, labels: {app: myService}}
spec: {containers: [{name: c, image: x}]}
---
apiVersion: v1
kind: Pod
metadata: {name: other, labels: {app: other}}
spec: {containers: [{name: c, image: x}]}
"""


# examples/policies/l3/cidr/cidr.yaml: "egress to 20.1.1.1/32 and 10.0.0.0/8 except
# 10.96.0.0/12"; nothing else, other pods included (CIDRs select outside the cluster).
CIDR_RULE = """\
apiVersion: "cilium.io/v2"
kind: CiliumNetworkPolicy
metadata:
  name: "cidr-rule"
spec:
  endpointSelector:
    matchLabels:
      app: myService
  egress:
  - toCIDR:
    - 20.1.1.1/32
  - toCIDRSet:
    - cidr: 10.0.0.0/8
      except:
      - 10.96.0.0/12
"""

PROD = """\
apiVersion: v1
kind: Pod
metadata: {name: prod-db, labels: {env: prod, app: db}}
spec: {containers: [{name: c, image: x}]}
---
apiVersion: v1
kind: Pod
metadata: {name: prod-web, labels: {env: prod}}
spec: {containers: [{name: c, image: x}]}
---
apiVersion: v1
kind: Pod
metadata: {name: dev-web, labels: {env: dev}}
spec: {containers: [{name: c, image: x}]}
"""
# "FromRequires ... do not by itself grant access privileges"
REQUIRES = """\
apiVersion: "cilium.io/v2"
kind: CiliumNetworkPolicy
description: "For endpoints with env=prod, only allow if source also has label env=prod"
metadata:
  name: "requires-rule"
specs:
  - endpointSelector:
      matchLabels:
        env: prod
    ingress:
    - fromRequires:
      - matchLabels:
          env: prod
"""
ALLOW_NAMESPACE = """\
apiVersion: "cilium.io/v2"
kind: CiliumNetworkPolicy
metadata:
  name: "allow-all-in-namespace"
spec:
  endpointSelector:
    matchLabels: {app: db}
  ingress:
  - fromEndpoints:
    - {}
"""

EGRESS_DENY = """\
apiVersion: "cilium.io/v2"
kind: CiliumNetworkPolicy
metadata:
  name: "deny-all-egress"
spec:
  endpointSelector:
    matchLabels:
      role: restricted
  egress:
  - {}
"""

# examples/policies/l3/entities/from_world_deny.yaml: "deny all ingress from world,
# allow everything else" (deny takes precedence over the allow of `all`).
LOCKDOWN = """\
apiVersion: "cilium.io/v2"
kind: CiliumClusterwideNetworkPolicy
metadata:
  name: "external-lockdown"
spec:
  endpointSelector: {}
  ingressDeny:
  - fromEntities:
    - "world"
  ingress:
  - fromEntities:
    - "all"
"""

# examples/policies/l3/match-expressions/or-statement.yaml, as written (lowercase
# operators, which Cilium reads; the first key, `k8s.io.kubernetes.pod.namespace`, is
# a pod label the identity filter drops, so that selector matches nothing).
OR_STATEMENT = """\
apiVersion: "cilium.io/v2"
kind: CiliumNetworkPolicy
metadata:
  name: "or-statement-policy"
spec:
  endpointSelector: {}
  ingress:
  - fromEndpoints:
    - matchExpressions:
      - key: "k8s.io.kubernetes.pod.namespace"
        operator: "in"
        values:
        - "production"
    - matchExpressions:
      - key: "k8s:cilium.example.com/policy"
        operator: "in"
        values:
        - "strict"
"""

# examples/policies/l4/l4.yaml: "emit packets using TCP on port 80, to any layer 3
# destination" (no L3 selector with toPorts: every peer).
L4_RULE = """\
apiVersion: "cilium.io/v2"
kind: CiliumNetworkPolicy
metadata:
  name: "l4-rule"
spec:
  endpointSelector:
    matchLabels:
      app: myService
  egress:
    - toPorts:
      - ports:
        - port: "80"
          protocol: TCP
"""

ALL = EVERYTHING.to_json()
MINE, OTHER = "default/Pod/my-service", "default/Pod/other"
PROD_DB, PROD_WEB, DEV_WEB = "default/Pod/prod-db", "default/Pod/prod-web", "default/Pod/dev-web"

# The documented examples that are a tree and what it allows pair by pair.
DOCUMENTED = [
    pytest.param(
        (SERVICE, CIDR_RULE),
        {
            (MINE, "ip:20.1.1.1/32"): ALL,
            (MINE, "ip:10.0.0.0/10,10.64.0.0/11"): ALL,
            (MINE, "ip:10.96.0.0/12"): {},
            (MINE, "ip:10.112.0.0/12,10.128.0.0/9"): ALL,
            (MINE, OTHER): {},
            (OTHER, MINE): ALL,
        },
        id="cidr-rule-allows-the-cidrs-except-the-excluded-range",
    ),
    pytest.param(
        (PROD, REQUIRES),
        {(PROD_WEB, PROD_DB): {}, (DEV_WEB, PROD_DB): {}},
        id="requires-alone-grants-nothing",
    ),
    pytest.param(
        (PROD, REQUIRES, ALLOW_NAMESPACE),  # only env=prod sources remain
        {(PROD_WEB, PROD_DB): ALL, (DEV_WEB, PROD_DB): {}, (DEV_WEB, PROD_WEB): {}},
        id="requires-narrows-the-other-rules",
    ),
    pytest.param(
        (SERVICE.replace("app: myService", "role: restricted"), EGRESS_DENY),
        {(MINE, OTHER): {}, (MINE, "ip:0.0.0.0/0"): {}, (OTHER, MINE): ALL},
        id="egress-default-deny-with-an-empty-rule",
    ),
    pytest.param(
        (SERVICE, LOCKDOWN),
        {
            **{(world, dst): {} for world in ("ip:0.0.0.0/0", "ip:::/0") for dst in (MINE, OTHER)},
            (OTHER, MINE): ALL,
        },
        id="external-lockdown-denies-world-whatever-allows-all",
    ),
    pytest.param(
        (SERVICE.replace("app: other", "cilium.example.com/policy: strict"), OR_STATEMENT),
        {(OTHER, MINE): ALL, (MINE, OTHER): {}},
        id="or-statement-selectors-either-matches",
    ),
    pytest.param(
        (SERVICE, L4_RULE),
        {(MINE, OTHER): {"TCP": "80"}, (MINE, "ip:0.0.0.0/0"): {"TCP": "80"}},
        id="l4-egress-only-tcp-80-anywhere",
    ),
]


@pytest.mark.parametrize(("manifests", "pairs"), DOCUMENTED)
def test_documented_pairs(
    manifests: tuple[str, ...], pairs: dict[tuple[str, str], dict[str, str]]
) -> None:
    rmap = _map(*manifests)
    assert {pair: _allowed(rmap, *pair) for pair in pairs} == pairs


def test_deny_table_second_column() -> None:
    # docs.cilium.io Deny Policies: allow L3 client and L4 80/81, deny L4 80/TCP:
    # "Curl to port 81 is allowed ...; Curl to port 80 is denied".
    pods = SERVICE.replace("my-service", "server").replace("name: other", "name: client")
    pods = pods.replace("app: other", "app: client").replace("app: myService", "app: server")
    allow = """\
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: allow}
spec:
  endpointSelector: {matchLabels: {app: server}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: client}}]
    toPorts: [{ports: [{port: "80", protocol: TCP}, {port: "81", protocol: TCP}]}]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: deny}
spec:
  endpointSelector: {matchLabels: {app: server}}
  ingressDeny:
  - fromEndpoints: [{matchLabels: {app: client}}]
    toPorts: [{ports: [{port: "80", protocol: TCP}]}]
"""
    rmap = _map(pods, allow)
    assert _allowed(rmap, "default/Pod/client", "default/Pod/server") == {"TCP": "81"}
    e = explain_pair(rmap, "default/Pod/client", "default/Pod/server", "TCP 80")
    [deny] = [s for s in e.steps if s.verdict == "deny"]
    assert (deny.policy, deny.rule) == ("default/CiliumNetworkPolicy/deny", "ingressDeny[0]")


def test_enable_default_deny_false_allows_without_isolating() -> None:
    # Policy Enforcement Modes: with enableDefaultDeny.ingress false the policy "does not
    # put the endpoint in default deny"; its rules add allows only.
    policy = """\
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: monitoring}
spec:
  endpointSelector: {matchLabels: {app: myService}}
  enableDefaultDeny: {ingress: false}
  ingress:
  - fromEndpoints: [{matchLabels: {app: prometheus}}]
    toPorts: [{ports: [{port: "9090"}]}]
"""
    rmap = _map(SERVICE, policy)
    assert _allowed(rmap, "default/Pod/other", "default/Pod/my-service") == EVERYTHING.to_json()
    # ... and combined with a NetworkPolicy isolating the pod, the allow applies.
    isolate = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: isolate}
spec: {podSelector: {matchLabels: {app: myService}}}
"""
    pods = SERVICE.replace("app: other", "app: prometheus")
    rmap = _map(pods, policy, isolate)
    assert _allowed(rmap, "default/Pod/other", "default/Pod/my-service") == {
        "TCP": "9090",
        "UDP": "9090",
        "SCTP": "9090",
    }


# -- Layer 3, entities, services and DNS (docs.cilium.io *Layer 3 Policies*: "Access to/from
# local host", "Access to/from all nodes in the cluster", "Access to/from outside cluster",
# kube-apiserver, "Services based", "DNS based"; the policies are the pages' examples).

DEV_PODS = """\
apiVersion: v1
kind: Pod
metadata: {name: dev, labels: {env: dev}}
spec: {containers: [{name: c, image: x}]}
---
apiVersion: v1
kind: Pod
metadata: {name: public, labels: {role: public}}
spec: {containers: [{name: c, image: x}]}
---
apiVersion: v1
kind: Pod
metadata: {name: app2, labels: {id: app2}}
spec: {containers: [{name: c, image: x}]}
---
apiVersion: v1
kind: Pod
metadata: {name: backend, namespace: another-namespace, labels: {run: backend}}
spec: {containers: [{name: c, image: x}]}
---
apiVersion: v1
kind: Pod
metadata: {name: mine, labels: {app: mine}}
spec: {containers: [{name: c, image: x}]}
"""
DEV, PUBLIC, APP2 = "default/Pod/dev", "default/Pod/public", "default/Pod/app2"
ENTITY_IDS = (
    "entity:host", "entity:remote-node", "entity:kube-apiserver", "entity:ingress",
    "entity:health", "entity:init", "entity:unmanaged",
)  # fmt: skip


def _cnp(name: str, body: str) -> str:
    head = 'apiVersion: "cilium.io/v2"\nkind: CiliumNetworkPolicy\n'
    return head + f'metadata:\n  name: "{name}"\nspec:\n{body}'


def _reached_from(rmap: ReachabilityMap, src: str) -> set[str]:
    return {e.id for e in rmap.endpoints if e.id != src and rmap.allowed(src, e.id)}


def test_dev_pods_may_reach_only_the_host() -> None:
    rmap = _map(DEV_PODS, _cnp("dev-to-host", """\
  endpointSelector:
    matchLabels:
      env: dev
  egress:
    - toEntities:
      - host
"""))  # fmt: skip
    assert _reached_from(rmap, DEV) == {"entity:host"}
    assert _allowed(rmap, DEV, "entity:host") == EVERYTHING.to_json()


def test_nodes_of_the_cluster_reach_dev_pods() -> None:
    rmap = _map(DEV_PODS, _cnp("to-dev-from-nodes-in-cluster", """\
  endpointSelector:
    matchLabels:
      env: dev
  ingress:
    - fromEntities:
      - host
      - remote-node
"""))  # fmt: skip
    into = {e.id for e in rmap.endpoints if rmap.allowed(e.id, DEV)}
    assert into == {"entity:host", "entity:remote-node"}


def test_the_world_reaches_public_pods() -> None:
    rmap = _map(DEV_PODS, _cnp("from-world-to-role-public", """\
  endpointSelector:
    matchLabels:
      role: public
  ingress:
    - fromEntities:
      - world
"""))  # fmt: skip
    into = {e.id for e in rmap.endpoints if rmap.allowed(e.id, PUBLIC)}
    # the world, and the node (allow-localhost); no other pod, no other entity
    assert into == {"ip:0.0.0.0/0", "ip:::/0", "entity:host"}


def test_dev_pods_may_reach_the_api_server_only() -> None:
    rmap = _map(DEV_PODS, _cnp("allow-to-apiserver", """\
  endpointSelector:
    matchLabels:
      env: dev
  egress:
    - toEntities:
      - kube-apiserver
"""))  # fmt: skip
    assert _reached_from(rmap, DEV) == {"entity:kube-apiserver"}


def test_services_by_name_and_by_labels_admit_their_backends() -> None:
    services = """\
apiVersion: v1
kind: Service
metadata: {name: myservice, namespace: default}
spec: {selector: {app: mine}, ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: backend, namespace: another-namespace, labels: {env: staging}}
spec: {selector: {run: backend}, ports: [{port: 80}]}
"""
    rmap = _map(DEV_PODS, services, _cnp("service-rule", """\
  endpointSelector:
    matchLabels:
      id: app2
  egress:
  - toServices:
    - k8sService:
        serviceName: myservice
        namespace: default
    - k8sServiceSelector:
        selector:
          matchLabels:
            env: staging
        namespace: another-namespace
"""))  # fmt: skip
    assert _reached_from(rmap, APP2) == {"default/Pod/mine", "another-namespace/Pod/backend"}


def test_to_fqdns_with_the_dns_rule_reaches_the_name_and_dns_only() -> None:
    rmap = _map(DEV_PODS, _cnp("to-fqdn", """\
  endpointSelector:
    matchLabels:
      app: mine
  egress:
    - toEndpoints:
      - matchLabels:
          "k8s:io.kubernetes.pod.namespace": kube-system
          "k8s:k8s-app": kube-dns
      toPorts:
        - ports:
           - port: "53"
             protocol: ANY
          rules:
            dns:
              - matchPattern: "*"
    - toFQDNs:
        - matchName: "my-remote-service.com"
"""))  # fmt: skip
    mine = "default/Pod/mine"
    assert _reached_from(rmap, mine) == {"fqdn:my-remote-service.com"}
    assert _allowed(rmap, mine, "fqdn:my-remote-service.com") == EVERYTHING.to_json()
    assert _allowed(rmap, mine, "ip:0.0.0.0/0") == {}
    assert not set(ENTITY_IDS) & _reached_from(rmap, mine)
