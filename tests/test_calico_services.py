"""Calico rules' ``services``: a Kubernetes Service's endpoints, from its manifest.

The policies are transcribed by hand from Calico's documentation, "Use service rules in
policy" (docs.tigera.io/calico/latest/network-policy/policy-rules/service-policy: the
allow-api-access, allow-kube-dns and allow-frontend-service-access examples); the pods and
Services around them are made up to exercise each stated fact ("endpoint addresses and
ports to allow will be automatically detected from the service"). Felix's matching is
felix/calc/rule_scanner.go's (an IP-port set for a destination Service, an IP set for a
source one); Calico's validation is api/pkg/apis/projectcalico/v3/policy_common.go's
(Apache-2.0).
"""

from __future__ import annotations

import functools
import textwrap

import pytest

from analysis.errors import ManifestError
from analysis.manifests import load_files
from tests.calico_examples import ALL, allowed, checked_map, pod

# what the Services below serve: http on 8080, DNS on 53/UDP
_pod = functools.partial(
    pod, ports="{containerPort: 8080, name: http}, {containerPort: 53, protocol: UDP}"
)


def _service(name: str, namespace: str, selector: str, ports: str) -> str:
    chosen = f"selector: {{{selector}}}, " if selector else ""
    return textwrap.dedent(f"""\
        apiVersion: v1
        kind: Service
        metadata: {{name: {name}, namespace: {namespace}}}
        spec: {{{chosen}ports: [{ports}]}}
        ---
        """)


API_ACCESS = textwrap.dedent("""\
    apiVersion: projectcalico.org/v3
    kind: NetworkPolicy
    metadata:
      name: allow-api-access
      namespace: my-app
    spec:
      selector: all()
      egress:
        - action: Allow
          destination:
            services:
              name: kubernetes
              namespace: default
    ---
    """)

KUBE_DNS = textwrap.dedent("""\
    apiVersion: projectcalico.org/v3
    kind: GlobalNetworkPolicy
    metadata:
      name: allow-kube-dns
    spec:
      selector: all()
      egress:
        - action: Allow
          destination:
            services:
              name: kube-dns
              namespace: kube-system
    ---
    """)

FROM_FRONTEND = textwrap.dedent("""\
    apiVersion: projectcalico.org/v3
    kind: NetworkPolicy
    metadata:
      name: allow-frontend-service-access
      namespace: backend
    spec:
      selector: all()
      ingress:
        - action: Allow
          source:
            services:
              name: frontend-service
              namespace: frontend
    ---
    """)


def test_destination_service_allows_its_endpoints_on_their_ports_only() -> None:
    _, rmap = checked_map(
        _pod("dns", "kube-system", {"k8s-app": "kube-dns"}),
        _pod("other", "kube-system", {"k8s-app": "other"}),
        _pod("app", "shop", {"app": "shop"}),
        _service(
            "kube-dns",
            "kube-system",
            "k8s-app: kube-dns",
            "{name: dns, port: 53, protocol: UDP}, {name: metrics, port: 9153, targetPort: http}",
        ),
        KUBE_DNS,
    )
    dns = "kube-system/Pod/dns"
    # UDP 53 (targetPort defaults to the port) and the container port named http (8080)
    assert allowed(rmap, "shop/Pod/app", dns) == {"TCP": "8080", "UDP": "53"}
    assert allowed(rmap, "shop/Pod/app", "kube-system/Pod/other") == {}
    assert allowed(rmap, "shop/Pod/app", "ip:0.0.0.0/0") == {}
    assert allowed(rmap, dns, "shop/Pod/app") == {}  # every pod is selected, dns too


def test_a_named_target_port_only_on_pods_that_have_it() -> None:
    _, rmap = checked_map(
        _pod("web", "shop", {"app": "web"}),
        _pod("bare", "shop", {"app": "web"}, ports="{containerPort: 7000}"),
        _pod("client", "shop", {"app": "client"}),
        _service("web", "shop", "app: web", "{port: 80, targetPort: http}"),
        KUBE_DNS.replace("kube-dns", "web").replace("kube-system", "shop"),
    )
    assert allowed(rmap, "shop/Pod/client", "shop/Pod/web") == {"TCP": "8080"}
    assert allowed(rmap, "shop/Pod/client", "shop/Pod/bare") == {}


def test_source_service_allows_its_endpoints_on_any_port() -> None:
    _, rmap = checked_map(
        _pod("ui", "frontend", {"app": "ui"}),
        _pod("job", "frontend", {"app": "job"}),
        _pod("api", "backend", {"app": "api"}),
        _service("frontend-service", "frontend", "app: ui", "{port: 80, targetPort: 8080}"),
        FROM_FRONTEND,
    )
    api = "backend/Pod/api"
    assert allowed(rmap, "frontend/Pod/ui", api) == ALL
    assert allowed(rmap, "frontend/Pod/job", api) == {}
    assert allowed(rmap, "ip:0.0.0.0/0", api) == {}


def test_a_service_without_selector_is_not_analysed() -> None:
    # The kubernetes Service's endpoints are the API servers, set by the API server
    # itself: no manifest shows them.
    tree, rmap = checked_map(
        _pod("app", "my-app", {"app": "a"}),
        _service("kubernetes", "default", "", "{name: https, port: 443, targetPort: 6443}"),
        API_ACCESS,
    )
    assert allowed(rmap, "my-app/Pod/app", "ip:0.0.0.0/0") == {}
    (note,) = tree.unanalysed
    assert note.startswith("cluster.yaml:")
    assert "my-app/NetworkPolicy.projectcalico.org/allow-api-access egress[0]" in note
    assert "Service default/kubernetes (cluster.yaml:" in note
    assert "has no selector" in note


def test_a_service_the_tree_lacks_is_not_analysed() -> None:
    tree, _ = checked_map(_pod("api", "backend", {"app": "api"}), FROM_FRONTEND)
    (note,) = tree.unanalysed
    assert "`source.services`: Service frontend/frontend-service is not in the tree" in note


def test_a_namespaced_policys_service_defaults_to_its_namespace() -> None:
    policy = FROM_FRONTEND.replace("          namespace: frontend\n", "")
    assert policy != FROM_FRONTEND
    _, rmap = checked_map(
        _pod("ui", "backend", {"app": "ui"}),
        _pod("ui", "frontend", {"app": "ui"}),
        _pod("api", "backend", {"app": "api"}),
        _service("frontend-service", "backend", "app: ui", "{port: 80}"),
        _service("frontend-service", "frontend", "app: ui", "{port: 80}"),
        policy,
    )
    assert allowed(rmap, "backend/Pod/ui", "backend/Pod/api") == ALL
    assert allowed(rmap, "frontend/Pod/ui", "backend/Pod/api") == {}


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("egress: [{action: Allow, source: {services: {name: a, namespace: b}}}]", "egress"),
        ("ingress: [{action: Allow, destination: {services: {name: a, namespace: b}}}]", "ingress"),
        (
            "ingress: [{action: Allow, source: {services: {name: a}, selector: all()}}]",
            "cannot be set with",
        ),
        (
            "egress: [{action: Allow, protocol: TCP, destination: "
            "{services: {name: a}, ports: [80]}}]",
            "ports and notPorts",
        ),
        ("ingress: [{action: Allow, source: {services: {namespace: b}}}]", "service name"),
    ],
)
def test_what_calico_refuses_of_services(rule: str, message: str) -> None:
    policy = (
        "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\n"
        f"metadata: {{name: p, namespace: n}}\nspec:\n  {rule}\n"
    )
    with pytest.raises(ManifestError, match=message):
        load_files({"p.yaml": policy})


def test_a_global_policys_service_needs_a_namespace() -> None:
    policy = KUBE_DNS.replace("          namespace: kube-system\n", "")
    with pytest.raises(ManifestError, match="must specify a namespace"):
        load_files({"p.yaml": policy})
