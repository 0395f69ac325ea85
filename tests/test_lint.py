"""Each least-privilege rule of ``reachdiff lint`` with a case that triggers it and a
close case that does not."""

from __future__ import annotations

import textwrap

import pytest

from analysis.lint import ERROR, NEVER, NOTE, OFF, RULES, WARNING, LintConfig, fails, lint
from analysis.manifests import load_files
from analysis.outside import ClusterScope
from analysis.reachability import compute_map

NAMESPACE = """\
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {team: web}}
"""
WEB = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: c
        image: x
        ports: [{name: http, containerPort: 8080}]
"""
DB = WEB.replace("name: web,", "name: db,").replace("app: web", "app: db")
DENY_ALL = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny, namespace: shop}
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
  egress:
  - to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}}]
    ports: [{protocol: UDP, port: 53}]
"""


def policy(body: str, name: str = "p") -> str:
    head = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
    head += f"metadata: {{name: {name}, namespace: shop}}\nspec:\n"
    return head + textwrap.indent(textwrap.dedent(body), "  ")


def findings(*docs: str) -> list[tuple[str, str, int]]:
    files = {"ns.yaml": NAMESPACE, "web.yaml": WEB, "db.yaml": DB}
    files.update({f"p{n}.yaml": d for n, d in enumerate(docs)})
    rmap = compute_map(load_files(files), scope=ClusterScope.PARTIAL)
    return [(f.rule, f.file, f.line) for f in lint(rmap)]


def rules_of(*docs: str) -> set[str]:
    return {r for r, _, _ in findings(*docs)}


WEB_FROM_DB = """\
podSelector: {matchLabels: {app: web}}
ingress:
- from: [{podSelector: {matchLabels: {app: db}}}]
  ports: [{port: 8080}]
"""

CASES = {
    # rule: (documents that trigger it, documents that do not)
    "no-default-deny-ingress": ((), (DENY_ALL,)),
    "no-default-deny-egress": ((), (DENY_ALL,)),
    "unselected-workload": ((policy(WEB_FROM_DB),), (DENY_ALL,)),
    "policy-selects-nothing": (
        (DENY_ALL, policy("podSelector: {matchLabels: {app: wbe}}\n")),
        (DENY_ALL, policy("podSelector: {matchLabels: {app: web}}\n")),
    ),
    "peer-matches-nothing": (
        (DENY_ALL, policy(WEB_FROM_DB.replace("app: db", "app: bd"))),
        (DENY_ALL, policy(WEB_FROM_DB)),
    ),
    "undefined-named-port": (
        (DENY_ALL, policy(WEB_FROM_DB.replace("port: 8080", "port: htpp"))),
        (DENY_ALL, policy(WEB_FROM_DB.replace("port: 8080", "port: http"))),
    ),
    "allows-every-peer": (
        (DENY_ALL, policy("podSelector: {}\ningress:\n- ports: [{port: 8080}]\n")),
        (DENY_ALL, policy(WEB_FROM_DB)),
    ),
    "allows-every-namespace": (
        (DENY_ALL, policy(WEB_FROM_DB.replace("- from: [{", "- from: [{namespaceSelector: {}, "))),
        (
            DENY_ALL,
            policy(
                WEB_FROM_DB.replace(
                    "- from: [{", "- from: [{namespaceSelector: {matchLabels: {team: web}}, "
                )
            ),
        ),
    ),
    "allows-any-address": (
        (
            DENY_ALL,
            policy(
                WEB_FROM_DB.replace(
                    "podSelector: {matchLabels: {app: db}}", "ipBlock: {cidr: 0.0.0.0/0}"
                )
            ),
        ),
        (
            DENY_ALL,
            policy(
                WEB_FROM_DB.replace(
                    "podSelector: {matchLabels: {app: db}}", "ipBlock: {cidr: 10.0.0.0/8}"
                )
            ),
        ),
    ),
    "allows-every-port": (
        (DENY_ALL, policy(WEB_FROM_DB.replace("  ports: [{port: 8080}]\n", ""))),
        (DENY_ALL, policy(WEB_FROM_DB)),
    ),
    "shadowed-rule": (
        (
            DENY_ALL,
            policy(
                WEB_FROM_DB + "- from: [{podSelector: {matchLabels: {app: db, tier: x}}}]\n"
                "  ports: [{port: 8080}]\n"
            ),
        ),
        (
            DENY_ALL,
            policy(
                WEB_FROM_DB + "- from: [{podSelector: {matchLabels: {app: db, tier: x}}}]\n"
                "  ports: [{port: 9090}]\n"
            ),
        ),
    ),
    "egress-deny-without-dns": (
        (DENY_ALL.replace("protocol: UDP, port: 53", "protocol: TCP, port: 443"),),
        (DENY_ALL,),
    ),
}


def test_every_rule_has_a_case() -> None:
    assert set(CASES) == {r.id for r in RULES}


@pytest.mark.parametrize("rule", sorted(CASES))
def test_rule_fires_on_its_positive_case_only(rule: str) -> None:
    positive, negative = CASES[rule]
    assert rule in rules_of(*positive)
    assert rule not in rules_of(*negative)


def test_findings_point_at_the_line_to_change() -> None:
    doc = policy(
        WEB_FROM_DB.replace("podSelector: {matchLabels: {app: db}}", "ipBlock: {cidr: 0.0.0.0/0}")
    )
    found = findings(DENY_ALL, doc)
    assert ("allows-any-address", "p1.yaml", 7) in found
    assert ("no-default-deny-ingress", "ns.yaml", 1) not in found
    assert ("no-default-deny-ingress", "ns.yaml", 1) in findings()


def test_config_switches_rules_and_sets_the_failing_severity() -> None:
    files = {"ns.yaml": NAMESPACE, "web.yaml": WEB}
    rmap = compute_map(load_files(files), scope=ClusterScope.PARTIAL)
    everything = lint(rmap)
    assert {f.severity for f in everything} == {WARNING}
    assert not fails(everything, LintConfig())  # default: fail on errors only
    assert fails(everything, LintConfig(fail_on=WARNING))
    assert fails(everything, LintConfig(fail_on=NOTE))
    assert not fails(everything, LintConfig(fail_on=NEVER))
    quiet = LintConfig((("unselected-workload", OFF), ("no-default-deny-egress", ERROR)))
    found = lint(rmap, quiet)
    assert "unselected-workload" not in {f.rule for f in found}
    assert {f.severity for f in found if f.rule == "no-default-deny-egress"} == {ERROR}
    assert fails(found, quiet)


def test_every_finding_has_a_fix_and_a_stable_identity() -> None:
    files = {"ns.yaml": NAMESPACE, "web.yaml": WEB}
    moved = {"ns.yaml": "# moved\n" + NAMESPACE, "web.yaml": WEB}
    one = lint(compute_map(load_files(files), scope=ClusterScope.PARTIAL))
    two = lint(compute_map(load_files(moved), scope=ClusterScope.PARTIAL))
    assert all(f.fix for f in one)
    assert [f.line for f in one] != [f.line for f in two]
    assert {f.identity for f in one} == {f.identity for f in two}


BANP = """\
apiVersion: policy.networking.k8s.io/v1alpha1
kind: BaselineAdminNetworkPolicy
metadata: {name: default}
spec:
  subject: {namespaces: {}}
  ingress:
  - {name: deny-all, action: Deny, from: [{namespaces: {}}]}
"""


def test_a_cluster_wide_baseline_deny_is_a_default_deny() -> None:
    found = rules_of(BANP)
    assert "no-default-deny-ingress" not in found
    assert "no-default-deny-egress" in found  # the baseline says nothing of egress
    narrow = BANP.replace("from: [{namespaces: {}}]", "from: [{namespaces: {matchLabels: {a: b}}}]")
    assert "no-default-deny-ingress" in rules_of(narrow)


def shadowed(*docs: str, scope: ClusterScope = ClusterScope.PARTIAL) -> list[tuple[str, int]]:
    files = {"ns.yaml": NAMESPACE, "web.yaml": WEB, "db.yaml": DB}
    files.update({f"p{n}.yaml": d for n, d in enumerate(docs)})
    rmap = compute_map(load_files(files), scope=scope)
    return [(f.subject, f.line) for f in lint(rmap) if f.rule == "shadowed-rule"]


ALIKE_PEERS = (
    "{podSelector: {matchExpressions: [{key: app, operator: In, values: [db]}]}}",
    "{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: shop}}, "
    "podSelector: {matchLabels: {app: db}}}",
)


@pytest.mark.parametrize("peer", ALIKE_PEERS)
def test_rules_written_differently_but_alike_are_shadowed(peer: str) -> None:
    """Compared by what they admit, not as written: the later of two alike rules."""
    second = f"- from: [{peer}]\n  ports: [{{port: 8080}}]\n"
    assert shadowed(DENY_ALL, policy(WEB_FROM_DB + second)) == [
        ("shop/NetworkPolicy/p ingress[1]", 9)
    ]
    wider = second.replace("8080", "8081")
    assert shadowed(DENY_ALL, policy(WEB_FROM_DB + wider)) == []


def test_a_wider_rule_written_later_shadows_the_earlier_one() -> None:
    later = "- from: [{namespaceSelector: {matchLabels: {team: web}}}]\n"
    assert shadowed(DENY_ALL, policy(WEB_FROM_DB + later)) == [
        ("shop/NetworkPolicy/p ingress[0]", 7)
    ]


def test_a_named_port_is_compared_by_the_number_the_selected_pods_give_it() -> None:
    named = "- from: [{podSelector: {matchLabels: {app: db}}}]\n  ports: [{port: http}]\n"
    doc = policy(WEB_FROM_DB + named)
    complete = shadowed(DENY_ALL, doc, scope=ClusterScope.COMPLETE)
    assert complete == [("shop/NetworkPolicy/p ingress[1]", 9)]  # http is 8080 on web
    # Undefined pods labelled like web are taken to be like it (docs/semantics.md).
    assert shadowed(DENY_ALL, doc) == complete
    other = policy(WEB_FROM_DB.replace("8080", "8081") + named)
    assert shadowed(DENY_ALL, other, scope=ClusterScope.COMPLETE) == []
    # No container names a UDP port http: that rule admits nothing at all.
    udp = policy(WEB_FROM_DB.replace("8080", "8081") + named.replace("http", "http, protocol: UDP"))
    assert shadowed(DENY_ALL, udp, scope=ClusterScope.COMPLETE) == complete


def test_egress_named_ports_resolve_on_each_destination() -> None:
    body = (
        "podSelector: {matchLabels: {app: web}}\npolicyTypes: [Egress]\negress:\n"
        "- to: [{podSelector: {matchLabels: {app: db}}}]\n  ports: [{port: 8080}]\n"
        "- to: [{podSelector: {matchLabels: {app: db}}}]\n  ports: [{port: http}]\n"
    )
    assert shadowed(DENY_ALL, policy(body), scope=ClusterScope.COMPLETE) == [
        ("shop/NetworkPolicy/p egress[1]", 10)
    ]
    wider = body.replace(
        "[{podSelector: {matchLabels: {app: db}}}]\n  ports: [{port: http}]",
        "[{podSelector: {}}]\n  ports: [{port: http}]",
    )
    assert shadowed(DENY_ALL, policy(wider), scope=ClusterScope.COMPLETE) == [
        ("shop/NetworkPolicy/p egress[0]", 8)
    ]


GLOBAL_DENY = """\
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: default-deny}
spec:
  selector: all()
  types: [Ingress, Egress]
"""
CALICO_DENY = """\
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: default-deny, namespace: shop}
spec:
  types: [Ingress]
"""
DEFAULT_DENY_RULES = {"no-default-deny-ingress", "no-default-deny-egress"}


@pytest.mark.parametrize(
    ("docs", "missing"),
    [
        ((GLOBAL_DENY,), set()),
        # Deny and Log rules end at the tier's default deny like no rule does
        (
            (
                GLOBAL_DENY
                + "  ingress: [{action: Log}, {action: Deny, source: {nets: [10.0.0.0/8]}}]\n",
            ),
            set(),
        ),
        ((CALICO_DENY,), {"no-default-deny-egress"}),
        ((CALICO_DENY.replace("namespace: shop", "namespace: other"),), DEFAULT_DENY_RULES),
        ((GLOBAL_DENY.replace("all()", "app == 'web'"),), DEFAULT_DENY_RULES),
        ((GLOBAL_DENY + "  ingress: [{action: Allow}]\n",), {"no-default-deny-ingress"}),
        ((GLOBAL_DENY + "  egress: [{action: Pass}]\n",), {"no-default-deny-egress"}),
        ((GLOBAL_DENY + "  namespaceSelector: team == 'web'\n",), set()),
        ((GLOBAL_DENY + "  namespaceSelector: team == 'db'\n",), DEFAULT_DENY_RULES),
        (
            (
                GLOBAL_DENY + "  tier: platform\n",
                "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: platform}\n"
                "spec: {order: 100, defaultAction: Pass}\n",
            ),
            DEFAULT_DENY_RULES,
        ),
    ],
)
def test_a_calico_policy_selecting_all_without_allow_rules_is_a_default_deny(
    docs: tuple[str, ...], missing: set[str]
) -> None:
    assert rules_of(*docs) & DEFAULT_DENY_RULES == missing


CILIUM_DENY = """\
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: default-deny, namespace: shop}
spec:
  endpointSelector: {}
"""
CILIUM_WIDE = CILIUM_DENY.replace("CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy")
CILIUM_WIDE = CILIUM_WIDE.replace(", namespace: shop", "")


@pytest.mark.parametrize(
    ("doc", "missing"),
    [
        (CILIUM_DENY + "  ingress: [{}]\n  egress: [{}]\n", set()),
        (CILIUM_DENY + "  ingress: [{}]\n", {"no-default-deny-egress"}),
        # a deny rule puts the direction in default deny too; allow rules do not undo it
        (CILIUM_DENY + "  egressDeny: [{toEntities: [world]}]\n", {"no-default-deny-ingress"}),
        (
            CILIUM_DENY + "  ingress: [{fromEndpoints: [{}]}]\n  egress: [{toEntities: [all]}]\n",
            set(),
        ),
        # no rule of a direction, or enableDefaultDeny false: not a default deny there
        (CILIUM_DENY + "  ingress: []\n  egress: [{}]\n", {"no-default-deny-ingress"}),
        (
            CILIUM_DENY + "  ingress: [{}]\n  egress: [{}]\n  enableDefaultDeny: {egress: false}\n",
            {"no-default-deny-egress"},
        ),
        (
            CILIUM_DENY.replace("namespace: shop", "namespace: other") + "  ingress: [{}]\n",
            DEFAULT_DENY_RULES,
        ),
        (
            CILIUM_DENY.replace("{}", "{matchLabels: {app: web}}") + "  ingress: [{}]\n",
            DEFAULT_DENY_RULES,
        ),
        (CILIUM_WIDE + "  ingress: [{}]\n  egress: [{}]\n", set()),
        (
            CILIUM_WIDE.replace("{}", "{matchLabels: {io.kubernetes.pod.namespace: shop}}")
            + "  ingress: [{}]\n",
            {"no-default-deny-egress"},
        ),
        (
            CILIUM_WIDE.replace("{}", "{matchLabels: {io.cilium.k8s.namespace.labels.team: db}}")
            + "  ingress: [{}]\n",
            DEFAULT_DENY_RULES,
        ),
        (
            CILIUM_WIDE.replace("{}", "{matchLabels: {io.cilium.k8s.policy.serviceaccount: api}}")
            + "  ingress: [{}]\n",
            DEFAULT_DENY_RULES,
        ),
    ],
)
def test_a_cilium_policy_isolating_every_pod_is_a_default_deny(doc: str, missing: set[str]) -> None:
    assert rules_of(doc) & DEFAULT_DENY_RULES == missing
