"""AdminNetworkPolicy / BaselineAdminNetworkPolicy tiers, written from the v1alpha1 API."""

from __future__ import annotations

import textwrap

import pytest

from analysis.diff import diff_trees
from analysis.errors import ManifestError
from analysis.manifests import load_files
from analysis.reachability import compute_map
from analysis.report import map_to_json

PODS = """\
apiVersion: v1
kind: Namespace
metadata: {name: db, labels: {tier: data}}
---
apiVersion: v1
kind: Namespace
metadata: {name: dev, labels: {env: dev}}
---
apiVersion: v1
kind: Pod
metadata: {name: pg, namespace: db, labels: {app: pg}}
spec:
  containers:
  - name: c
    ports: [{containerPort: 5432, name: sql}, {containerPort: 9187, name: metrics}]
---
apiVersion: v1
kind: Pod
metadata: {name: app, namespace: dev, labels: {app: app}}
spec: {containers: [{name: c}]}
"""

NP_ALLOW_DEV = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: pg, namespace: db}
spec:
  podSelector: {}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {env: dev}}}]
"""

NP_DENY_ALL = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny, namespace: db}
spec:
  podSelector: {}
  policyTypes: [Ingress]
"""


def anp(name: str, priority: int, rules: str, kind: str = "AdminNetworkPolicy") -> str:
    head = (
        f"apiVersion: policy.networking.k8s.io/v1alpha1\nkind: {kind}\n"
        f"metadata: {{name: {name}}}\nspec:\n"
    )
    if kind == "AdminNetworkPolicy":
        head += f"  priority: {priority}\n"
    head += "  subject: {namespaces: {matchLabels: {tier: data}}}\n  ingress:\n"
    return head + textwrap.indent(textwrap.dedent(rules), "  ")


def rule(action: str, ports: str = "") -> str:
    text = (
        f"- action: {action}\n  name: r-{action.lower()}\n"
        "  from: [{namespaces: {matchLabels: {env: dev}}}]\n"
    )
    if ports:
        text += f"  ports: {ports}\n"
    return text


def app_to_pg(*docs: str) -> dict[str, str] | None:
    files = {"pods.yaml": PODS}
    files.update({f"p{i}.yaml": d for i, d in enumerate(docs)})
    conns = map_to_json(compute_map(load_files(files)))["connections"]
    for c in conns:
        if (c["src"], c["dst"]) == ("dev/Pod/app", "db/Pod/pg"):
            return dict(c["allowed"])
    return None


ALL = {"TCP": "all", "UDP": "all", "SCTP": "all"}


def test_no_admin_policies_default_allow() -> None:
    assert app_to_pg() == ALL


def test_anp_deny_overrides_network_policy_allow() -> None:
    assert app_to_pg(NP_ALLOW_DEV, anp("a", 10, rule("Deny"))) is None


def test_anp_allow_overrides_network_policy_isolation() -> None:
    assert app_to_pg(NP_DENY_ALL) is None
    assert app_to_pg(NP_DENY_ALL, anp("a", 10, rule("Allow", "[{portNumber: {port: 5432}}]"))) == {
        "TCP": "5432"
    }


def test_pass_hands_over_to_network_policy_then_baseline() -> None:
    passing = anp("a", 10, rule("Pass"))
    banp_deny = anp("default", 0, rule("Deny"), kind="BaselineAdminNetworkPolicy")
    # NetworkPolicy isolates: it decides, the baseline is not consulted.
    assert app_to_pg(passing, NP_ALLOW_DEV, banp_deny) == ALL
    assert app_to_pg(passing, NP_DENY_ALL, banp_deny) is None
    # No NetworkPolicy selects the pod: the baseline decides.
    assert app_to_pg(passing, banp_deny) is None
    assert app_to_pg(banp_deny) is None


def test_lower_priority_number_wins_and_rules_apply_in_order() -> None:
    allow5 = anp("allow", 5, rule("Allow"))
    deny10 = anp("deny", 10, rule("Deny"))
    assert app_to_pg(allow5, deny10) == ALL
    assert app_to_pg(anp("allow", 20, rule("Allow")), deny10) is None
    both = anp("both", 1, rule("Deny", "[{portNumber: {port: 5432}}]") + rule("Allow"))
    assert app_to_pg(NP_DENY_ALL, both) == {"TCP": "1-5431,5433-65535", "UDP": "all", "SCTP": "all"}


def test_port_range_and_named_port_any_protocol() -> None:
    ranged = anp("r", 1, rule("Allow", "[{portRange: {protocol: UDP, start: 100, end: 200}}]"))
    assert app_to_pg(NP_DENY_ALL, ranged) == {"UDP": "100-200"}
    named = anp("n", 1, rule("Allow", "[{namedPort: metrics}]"))
    assert app_to_pg(NP_DENY_ALL, named) == {"TCP": "9187"}


def test_partial_deny_leaves_other_ports_to_lower_tiers() -> None:
    deny_sql = anp("d", 1, rule("Deny", "[{namedPort: sql}]"))
    assert app_to_pg(deny_sql) == {"TCP": "1-5431,5433-65535", "UDP": "all", "SCTP": "all"}


def test_egress_networks_peer_matches_external_ranges() -> None:
    egress = """\
apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: no-internet}
spec:
  priority: 3
  subject: {pods: {namespaceSelector: {matchLabels: {env: dev}}, podSelector: {}}}
  egress:
  - {action: Allow, to: [{networks: [10.0.0.0/8]}]}
  - {action: Deny, to: [{networks: [0.0.0.0/0]}]}
"""
    doc = map_to_json(compute_map(load_files({"pods.yaml": PODS, "e.yaml": egress})))
    reach = {c["dst"] for c in doc["connections"] if c["src"] == "dev/Pod/app"}
    assert "ip:10.0.0.0/8" in reach
    assert not any(d.startswith("ip:0.0.0.0") or d.startswith("ip:11.") for d in reach)
    assert "ip:::/0" in reach  # an IPv4 deny leaves IPv6 alone
    assert "db/Pod/pg" in reach  # networks peers never match pods


def test_diff_names_the_deciding_tier_and_rule() -> None:
    base = load_files({"pods.yaml": PODS, "np.yaml": NP_ALLOW_DEV})
    head = load_files(
        {
            "pods.yaml": PODS,
            "np.yaml": NP_ALLOW_DEV,
            "anp.yaml": anp("deny-db-from-dev", 10, rule("Deny")),
        }
    )
    diff = diff_trees(base, head)
    [closed] = [c for c in diff.closed if c.src.id == "dev/Pod/app"]
    [cause] = closed.because
    assert cause.policy == "AdminNetworkPolicy/deny-db-from-dev"
    assert (cause.tier, cause.action, cause.file, cause.line) == (
        "AdminNetworkPolicy (priority 10)",
        "Deny",
        "anp.yaml",
        8,
    )
    reopened = diff_trees(head, base)
    causes = {(c.policy, c.reason) for c in reopened.opened[0].because}
    assert ("AdminNetworkPolicy/deny-db-from-dev", "no longer denies") in causes


@pytest.mark.parametrize(
    ("doc", "fragment"),
    [
        (anp("x", 1, rule("Deny"), kind="BaselineAdminNetworkPolicy"), "must be named `default`"),
        (
            anp("default", 0, rule("Pass"), kind="BaselineAdminNetworkPolicy"),
            "must be one of Allow, Deny",
        ),
        (anp("x", 1001, rule("Deny")), "0..1000"),
        (anp("x", 1, "- action: Deny\n  from: []\n"), "at least one peer"),
        (anp("x", 1, rule("Deny", "[{portRange: {start: 9, end: 9}}]")), "greater than start"),
    ],
)
def test_invalid_admin_policies_are_errors(doc: str, fragment: str) -> None:
    with pytest.raises(ManifestError) as err:
        load_files({"pods.yaml": PODS, "anp.yaml": doc})
    assert err.value.file == "anp.yaml" and fragment in str(err.value)


def test_equal_priorities_warn() -> None:
    tree = load_files(
        {
            "pods.yaml": PODS,
            "a.yaml": anp("a", 7, rule("Deny")),
            "b.yaml": anp("b", 7, rule("Allow")),
        }
    )
    assert [p.name for p in tree.admin_policies] == ["a", "b"]
    assert any("share priority 7" in w for w in tree.warnings)
