"""CiliumNetworkPolicy reading: schema errors with file, line and the fix; what cannot be
evaluated from manifests reported as not analysed with file and line (and evaluated as
matching nothing); pods outside the repository under a clusterwide policy."""

from __future__ import annotations

import pytest

from analysis.errors import ManifestError
from analysis.manifests import load_files
from analysis.outside import ClusterScope
from analysis.reachability import compute_map

PODS = """\
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop, labels: {app: web}}
spec: {containers: [{name: c, image: x, ports: [{name: http, containerPort: 8080}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: db, namespace: shop, labels: {app: db}}
spec: {containers: [{name: c, image: x}]}
"""


def _cnp(rule: str, field: str = "egress") -> str:
    return (
        "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\n"
        "metadata: {name: p, namespace: shop}\nspec:\n"
        "  endpointSelector: {matchLabels: {app: web}}\n"
        f"  {field}:\n  - {rule}\n"
    )


@pytest.mark.parametrize(
    ("rule", "field", "says"),
    [
        (
            "{toServices: [{k8sService: {serviceName: db, namespace: shop}}]}",
            "egress",
            "toServices",
        ),
        ("{toNodes: [{matchLabels: {role: worker}}]}", "egress", "nodes"),
        ("{fromNodes: [{matchLabels: {role: worker}}]}", "ingress", "nodes"),
        ("{icmps: [{fields: [{type: 8}]}]}", "ingress", "ICMP"),
        ("{toCIDRSet: [{cidrGroupRef: corp}]}", "egress", "CiliumCIDRGroup"),
        ("{fromEndpoints: [{matchLabels: {'reserved:bogus': ''}}]}", "ingress", "reserved"),
    ],
)
def test_what_manifests_cannot_settle_is_not_analysed_with_file_and_line(
    rule: str, field: str, says: str
) -> None:
    tree = load_files({"pods.yaml": PODS, "p.yaml": "# a policy\n---\n" + _cnp(rule, field)})
    [note] = tree.unanalysed
    assert note.startswith("p.yaml:9: shop/CiliumNetworkPolicy/p ") and says in note
    # Evaluated as matching nothing: the rule allows web no peer here.
    rmap = compute_map(tree)
    pair = ("shop/Pod/web", "shop/Pod/db") if field == "egress" else ("shop/Pod/db", "shop/Pod/web")
    assert rmap.allowed(*pair).to_json() == {}


def test_node_selector_policies_select_no_pod_and_are_not_analysed() -> None:
    host = (
        "apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\n"
        "metadata: {name: host}\nspec:\n  nodeSelector: {}\n  ingress:\n  - {}\n"
    )
    tree = load_files({"pods.yaml": PODS, "host.yaml": host})
    assert any("nodeSelector" in n and n.startswith("host.yaml:5:") for n in tree.unanalysed)
    assert compute_map(tree).allowed("shop/Pod/db", "shop/Pod/web").to_json()["TCP"] == "all"


@pytest.mark.parametrize(
    ("rule", "line", "fix"),
    [
        ("{toPorts: [{ports: [{port: 80}]}]}", 9, 'quote it (port: "80")'),
        ("{toEntitties: [world]}", 9, "unknown field 'toEntitties'"),
        ("{toEntities: [galaxy]}", 9, "unknown entity 'galaxy'"),
        ("{toCIDR: [10.0.0.0/33]}", 9, "not a valid CIDR"),
        ("{toPorts: [{ports: [{port: '80', protocol: ICMPX}]}]}", 9, "TCP, UDP, SCTP or ANY"),
    ],
)
def test_schema_errors_name_file_line_and_fix(rule: str, line: int, fix: str) -> None:
    with pytest.raises(ManifestError) as err:
        load_files({"pods.yaml": PODS, "p.yaml": "# a policy\n---\n" + _cnp(rule)})
    assert (err.value.file, err.value.line) == ("p.yaml", line)
    assert fix in str(err.value)


def test_a_policy_needs_a_spec() -> None:
    with pytest.raises(ManifestError) as err:
        load_files(
            {"p.yaml": "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: p}\n"}
        )
    assert "needs `spec` or `specs`" in str(err.value)


def test_named_ports_resolve_on_the_destination() -> None:
    rule = "{toEndpoints: [{matchLabels: {app: web}}], toPorts: [{ports: [{port: http}]}]}"
    policy = _cnp(rule).replace("{app: web}}\n  egress", "{app: db}}\n  egress")
    rmap = compute_map(load_files({"pods.yaml": PODS, "p.yaml": policy}))
    # ANY (the default): the name on TCP, the only protocol web names it on.
    assert rmap.allowed("shop/Pod/db", "shop/Pod/web").to_json() == {"TCP": "8080"}


def test_outside_pods_under_a_clusterwide_policy_are_denied_but_not_isolated() -> None:
    ccnp = """\
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata: {name: all}
spec:
  endpointSelector: {}
  ingress:
  - fromEndpoints: [{matchLabels: {app: web}}]
  ingressDeny:
  - fromEntities: [world]
"""
    rmap = compute_map(load_files({"pods.yaml": PODS, "c.yaml": ccnp}), scope=ClusterScope.PARTIAL)
    # In the tree: isolated; web alone may connect (and nothing from outside the cluster).
    assert rmap.allowed("shop/Pod/db", "shop/Pod/web").to_json() == {}
    assert rmap.allowed("shop/Pod/web", "shop/Pod/db").to_json()["TCP"] == "all"
    # Another namespace's pods: their own policies are unknown, so they are not taken as
    # isolated by the clusterwide policy, whose deny rules still apply.
    outside = next(e.id for e in rmap.endpoints if e.id.startswith("~ns["))
    assert rmap.allowed("shop/Pod/db", outside).to_json()["TCP"] == "all"
    assert rmap.allowed("ip:0.0.0.0/0", "shop/Pod/web").to_json() == {}


def test_a_changed_cilium_policy_selecting_no_workload_is_reported() -> None:
    from analysis.idle import idle_changed_policies

    base = load_files({"pods.yaml": PODS})
    ghost = _cnp("{toEntities: [world]}").replace("{app: web}}", "{app: ghost}}")
    head = load_files({"pods.yaml": PODS, "p.yaml": ghost})
    [idle] = idle_changed_policies(base, head)
    assert (idle.policy, idle.source.file, idle.status) == (
        "shop/CiliumNetworkPolicy/p",
        "p.yaml",
        "added",
    )
    selecting = load_files({"pods.yaml": PODS, "p.yaml": _cnp("{toEntities: [world]}")})
    assert idle_changed_policies(base, selecting) == ()
