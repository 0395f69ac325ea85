"""ClusterNetworkPolicy (policy.networking.k8s.io/v1alpha2).

The scenarios are the upstream conformance suite's (kubernetes-sigs/network-policy-api,
``conformance/tests/*.go``, Apache-2.0): its manifests are in
``tests/fixtures/cnp-conformance`` (see the README there), and each test states the
connections the upstream test probes, with the answers it expects, plus the mutations it
applies (an action changed, a priority changed, a NetworkPolicy deleted).
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from analysis.decision import explain_pair
from analysis.diff import diff_trees
from analysis.errors import ManifestError
from analysis.manifests import load_files
from analysis.reachability import compute_map
from analysis.report import diff_to_json, map_to_json
from analysis.unknowns import unknown_matches
from bot.cli import main

FIXTURES = Path(__file__).parent / "fixtures" / "cnp-conformance"
HOUSES = (FIXTURES / "manifests.yaml").read_text()
G = "network-policy-conformance-gryffindor/StatefulSet/harry-potter"
S = "network-policy-conformance-slytherin/StatefulSet/draco-malfoy"
H = "network-policy-conformance-hufflepuff/StatefulSet/cedric-diggory"
R = "network-policy-conformance-ravenclaw/StatefulSet/luna-lovegood"

Probe = tuple[str, str, str, int, bool]  # src, dst, protocol, port, allowed


def fixture(name: str) -> str:
    return (FIXTURES / f"{name}.yaml").read_text()


def mutated(text: str, change: Callable[[list[dict[str, Any]]], None]) -> str:
    docs = [d for d in yaml.safe_load_all(text) if d]
    change(docs)
    return yaml.safe_dump_all(docs, sort_keys=False)


def by_name(docs: list[dict[str, Any]], name: str) -> dict[str, Any]:
    [doc] = [d for d in docs if d["metadata"]["name"] == name]
    return doc


def _ports_hold(text: str, port: int) -> bool:
    if text == "all":
        return True
    for part in text.split(","):
        low, _, high = part.partition("-")
        if int(low) <= port <= int(high or low):
            return True
    return False


def check(files: dict[str, str], probes: list[Probe]) -> None:
    doc = map_to_json(compute_map(load_files({"manifests.yaml": HOUSES, **files})))
    allowed = {(c["src"], c["dst"]): c["allowed"] for c in doc["connections"]}
    for src, dst, protocol, port, expected in probes:
        ports = allowed.get((src, dst), {}).get(protocol.upper())
        got = ports is not None and _ports_hold(ports, port)
        assert got is expected, (src, dst, protocol, port, allowed.get((src, dst)))


def both_ways(a: str, b: str, protocol: str, port: int, expected: bool) -> list[Probe]:
    return [(a, b, protocol, port, expected), (b, a, protocol, port, expected)]


# ------------------------------------------------------------------ CNPAdminTierGress


GRESS_PROBES = [
    # allow-gress across protocols: ravenclaw's first rule is Accept
    *both_ways(G, R, "tcp", 80, True),
    *both_ways(G, R, "udp", 53, True),
    *both_ways(G, R, "sctp", 9003, True),
    # allow-gress at the specified ports, the rest of hufflepuff denied
    (G, H, "tcp", 8080, True),
    (G, H, "tcp", 80, False),
    (G, H, "udp", 5353, True),
    (G, H, "udp", 53, False),
    (G, H, "sctp", 9003, True),
    (G, H, "sctp", 9005, False),
    (H, G, "tcp", 80, True),
    (H, G, "tcp", 8080, False),
    (H, G, "udp", 5353, True),
    (H, G, "udp", 53, False),
    (H, G, "sctp", 9003, True),
    (H, G, "sctp", 9005, False),
    # deny-gress at the specified ports of slytherin; the others reach the default
    *both_ways(G, S, "tcp", 80, False),
    *both_ways(G, S, "tcp", 8080, True),
    *both_ways(G, S, "udp", 53, False),
    *both_ways(G, S, "udp", 5353, True),
    *both_ways(G, S, "sctp", 9003, False),
    *both_ways(G, S, "sctp", 9005, True),
]


def test_admin_tier_gress_rules_combined() -> None:
    check({"cnp.yaml": fixture("admin_tier-standard-gress-rules-combined")}, GRESS_PROBES)


def _rule_actions(index: int, action: str) -> Callable[[list[dict[str, Any]]], None]:
    def change(docs: list[dict[str, Any]]) -> None:
        for field in ("ingress", "egress"):
            docs[0]["spec"][field][index]["action"] = action

    return change


def test_admin_tier_deny_and_pass_mutations() -> None:
    text = fixture("admin_tier-standard-gress-rules-combined")
    # 'deny-gress': the ravenclaw Accept becomes Deny.
    denied = mutated(text, _rule_actions(0, "Deny"))
    check(
        {"cnp.yaml": denied},
        [*both_ways(G, R, "tcp", 80, False), *both_ways(G, R, "sctp", 9003, False)],
    )
    # 'pass-gress': Accept and Deny become Pass: no NetworkPolicy, no baseline: allowed.
    passed = mutated(denied, _rule_actions(0, "Pass"))
    passed = mutated(passed, _rule_actions(1, "Pass"))
    check(
        {"cnp.yaml": passed},
        [*both_ways(G, R, "tcp", 80, True), *both_ways(G, R, "udp", 53, True)],
    )
    # The slytherin Deny at 80/53/9003 becomes Pass: those ports are allowed again.
    slytherin = mutated(text, _rule_actions(3, "Pass"))
    check(
        {"cnp.yaml": slytherin},
        [*both_ways(G, S, "tcp", 80, True), *both_ways(G, S, "sctp", 9003, True)],
    )


# ----------------------------------------------------------- CNPAdminTierPriorityField


def test_admin_tier_priority_field_and_a_pass_to_the_baseline() -> None:
    text = fixture("admin_tier-standard-priority-field")
    # Priority 50 (Deny) comes before priority 60 (Pass).
    check({"cnp.yaml": text}, both_ways(S, G, "tcp", 80, False))

    def to_40(docs: list[dict[str, Any]]) -> None:
        by_name(docs, "old-priority-60-new-priority-40-example")["spec"]["priority"] = 40

    raised = mutated(text, to_40)
    # Priority 40's Pass now comes first: the Baseline tier's Accept decides.
    check({"cnp.yaml": raised}, both_ways(S, G, "tcp", 80, True))

    diff = diff_to_json(
        diff_trees(
            load_files({"manifests.yaml": HOUSES, "cnp.yaml": text}),
            load_files({"manifests.yaml": HOUSES, "cnp.yaml": raised}),
        )
    )
    [opened] = [c for c in diff["opened"] if (c["src"], c["dst"]) == (S, G)]
    causes = {
        (c["policy"], c["reason"], c["tier"], c["action"], c["rule_name"])
        for c in opened["because"]
    }
    assert causes == {
        (
            "ClusterNetworkPolicy/old-priority-60-new-priority-40-example",
            "passes",
            "ClusterNetworkPolicy Admin tier (priority 40)",
            "Pass",
            "pass-all-ingress-from-slytherin",
        ),
        (
            "ClusterNetworkPolicy/priority-50-example",
            "no longer denies",
            "ClusterNetworkPolicy Admin tier (priority 50)",
            "Deny",
            "deny-all-ingress-from-slytherin",
        ),
        (
            "ClusterNetworkPolicy/default",
            "allows",
            "ClusterNetworkPolicy Baseline tier (priority 10)",
            "Accept",
            "allow-all-ingress-from-slytherin",
        ),
    }
    assert diff["widening"] is True


# ---------------------------------------------------------- CNPAdminTierIntegration


def test_admin_pass_hands_over_to_network_policy_then_to_the_baseline() -> None:
    text = fixture("api_integration-standard-anp-np-banp")
    check({"p.yaml": text}, both_ways(S, G, "tcp", 80, False) + both_ways(S, G, "tcp", 8080, False))

    def pass_all(docs: list[dict[str, Any]]) -> None:
        spec = by_name(docs, "pass-example")["spec"]
        spec["ingress"][0]["action"] = spec["egress"][0]["action"] = "Pass"

    passed = mutated(text, pass_all)
    # The NetworkPolicy in gryffindor allows slytherin both ways.
    check({"p.yaml": passed}, both_ways(S, G, "tcp", 80, True) + both_ways(S, G, "udp", 53, True))

    def drop_network_policy(docs: list[dict[str, Any]]) -> None:
        docs[:] = [d for d in docs if d["kind"] != "NetworkPolicy"]

    # Without it, the Baseline tier's Deny decides.
    check(
        {"p.yaml": mutated(passed, drop_network_policy)},
        both_ways(S, G, "tcp", 80, False) + both_ways(S, G, "tcp", 8080, False),
    )


# --------------------------------------------------------------- CNPBaselineTierGress


def test_baseline_tier_gress_rules_combined() -> None:
    text = fixture("baseline_tier-standard-gress-rules-combined")
    check(
        {"cnp.yaml": text},
        [p for p in GRESS_PROBES if not (p[1] == H and p[2] == "sctp")],  # 9003 both ways
    )


def test_network_policy_overrides_the_baseline_tier() -> None:
    allow_all = textwrap.dedent(
        """\
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: allow-all, namespace: network-policy-conformance-gryffindor}
        spec:
          podSelector: {}
          ingress: [{}]
        """
    )
    check(
        {"cnp.yaml": fixture("baseline_tier-standard-gress-rules-combined"), "np.yaml": allow_all},
        [(H, G, "tcp", 8080, True), (S, G, "tcp", 80, True), (G, H, "tcp", 80, False)],
    )


def test_a_baseline_pass_skips_the_rest_of_the_baseline_tier() -> None:
    def pass_hufflepuff(docs: list[dict[str, Any]]) -> None:
        spec = docs[0]["spec"]
        to = spec["egress"][-1]["to"]  # deny-to-hufflepuff-everything-else's peer
        spec["egress"].insert(0, {"name": "pass-hufflepuff", "action": "Pass", "to": to})

    text = mutated(fixture("baseline_tier-standard-gress-rules-combined"), pass_hufflepuff)
    check(
        {"cnp.yaml": text},
        [(G, H, "tcp", 80, True), (G, H, "udp", 53, True), (H, G, "tcp", 8080, False)],
    )


# ------------------------------------------------------------- networks and nodes peers


def test_inline_cidr_peers_holding_every_address_match_every_pod() -> None:
    # CNPAdminTierEgressInlineCIDRPeers: Accept slytherin, then Deny 0.0.0.0/0 and ::/0,
    # which holds every pod IP: ravenclaw and hufflepuff are denied too.
    text = fixture("admin_tier-standard-egress-inline-cidr-rules")
    probes = [
        (G, R, "tcp", 80, False),
        (G, R, "udp", 53, False),
        (G, R, "sctp", 9003, False),
        (G, H, "tcp", 80, False),
        (G, S, "tcp", 80, True),
        (G, S, "udp", 53, True),
        (G, S, "sctp", 9003, True),
    ]
    check({"cnp.yaml": text}, probes)
    tree = load_files({"manifests.yaml": HOUSES, "cnp.yaml": text})
    rmap = compute_map(tree)
    assert not [
        c for c in map_to_json(rmap)["connections"] if c["src"] == G and c["dst"].startswith("ip:")
    ]
    assert unknown_matches(rmap) == ()

    def relabel(docs: list[dict[str, Any]]) -> None:
        # The test relabels slytherin's namespace so the Accept no longer matches it.
        by_name(docs, "network-policy-conformance-slytherin")["metadata"]["labels"] = {
            "conformance-house": "denied-namespace-label"
        }

    check(
        {"cnp.yaml": text, "manifests.yaml": mutated(HOUSES, relabel)}, [(G, S, "tcp", 80, False)]
    )


def test_narrower_networks_reached_by_workload_traffic_are_not_analysed() -> None:
    rules = egress("{networks: [10.0.0.0/8]}")
    tree = load_files({"manifests.yaml": HOUSES, "cnp.yaml": cnp("Admin", 1, rules)})
    rmap = compute_map(tree)
    # Evaluated as not matching the workloads, and reported with the rule's line.
    check({"cnp.yaml": cnp("Admin", 1, rules)}, [(G, S, "tcp", 80, True)])
    [reason] = unknown_matches(rmap)
    assert reason.startswith("cnp.yaml:9: ClusterNetworkPolicy/x egress[0]: traffic from ")
    assert "10.0.0.0/8" in reason
    # Decided before it by a rule for every pod (and no host-network workload in the way):
    # nothing reaches it.
    decided = (
        "egress:\n- {action: Pass, to: [namespaces: {}]}\n"
        "- {action: Deny, to: [networks: [10.0.0.0/8]]}\n"
    )
    pods_only = "\n---\n".join(d for d in HOUSES.split("\n---\n") if "hostNetwork" not in d)
    tree = load_files({"manifests.yaml": pods_only, "cnp.yaml": cnp("Admin", 1, decided)})
    assert unknown_matches(compute_map(tree)) == ()


def test_nodes_peers_are_not_analysed_and_the_cli_fails_closed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = fixture("admin_tier-experimental-egress-selector-rules")
    tree = load_files({"manifests.yaml": HOUSES, "cnp.yaml": text})
    assert [u.split(": ")[0] for u in tree.unanalysed] == [
        "cnp.yaml:20",
        "cnp.yaml:30",
        "cnp.yaml:47",
    ]
    assert all("`nodes` peer" in u for u in tree.unanalysed)
    base, head = tmp_path / "base", tmp_path / "head"
    for side in (base, head):
        side.mkdir()
        (side / "manifests.yaml").write_text(HOUSES)
    (head / "cnp.yaml").write_text(text)
    assert main(["diff", str(base), str(head)]) == 2
    err = capsys.readouterr().err
    assert "not analysed" in err and "cnp.yaml:20" in err
    assert main(["map", str(head)]) == 2


def test_domain_names_are_not_analysed() -> None:
    tree = load_files({"manifests.yaml": HOUSES, "cnp.yaml": cnp("Admin", 3, EGRESS_DOMAINS)})
    [reason] = tree.unanalysed
    assert reason.startswith('cnp.yaml:12: ClusterNetworkPolicy/x egress[0] "dns"')
    assert "`domainNames`" in reason
    # Evaluated as matching nothing: the Accept changes no verdict.
    plain = map_to_json(compute_map(load_files({"manifests.yaml": HOUSES})))
    assert map_to_json(compute_map(tree)) == plain


# ------------------------------------------------------------------------ validation


def cnp(tier: str, priority: object, rules: str, subject: str = "{namespaces: {}}") -> str:
    return (
        "apiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicy\n"
        f"metadata: {{name: x}}\nspec:\n  tier: {tier}\n  priority: {priority}\n"
        f"  subject: {subject}\n" + textwrap.indent(textwrap.dedent(rules), "  ")
    )


EGRESS_DOMAINS = """\
egress:
- name: dns
  action: Accept
  to:
  - domainNames: ["*.kubernetes.io", example.com]
"""


def ingress(action: str = "Deny", peer: str = "{namespaces: {}}", protocols: str = "") -> str:
    text = f"ingress:\n- action: {action}\n  from: [{peer}]\n"
    return text + (f"  protocols: {protocols}\n" if protocols else "")


def egress(peer: str, protocols: str = "", action: str = "Deny") -> str:
    text = f"egress:\n- action: {action}\n  to: [{peer}]\n"
    return text + (f"  protocols: {protocols}\n" if protocols else "")


@pytest.mark.parametrize(
    ("doc", "line", "fragment"),
    [
        (cnp("Tenant", 1, ingress()), 5, "Admin or Baseline"),
        (cnp("Admin", 1001, ingress()), 5, "0..1000"),
        (cnp("Admin", -1, ingress()), 5, "0..1000"),
        (cnp("Admin", '"1"', ingress()), 5, "0..1000"),
        (cnp("Admin", 1, ingress("Allow")), 9, "Accept, Deny, Pass"),
        (cnp("Admin", 1, ingress(), "{namespaces: {}, pods: {podSelector: {}}}"), 7, "exactly one"),
        (
            cnp("Admin", 1, ingress(), "{pods: {namespaceSelector: {}}}"),
            7,
            "`podSelector` is missing",
        ),
        (cnp("Admin", 1, "ingress:\n- action: Deny\n  from: []\n"), 9, "at least one peer"),
        (cnp("Admin", 1, ingress(peer="{networks: [10.0.0.0/8]}")), 10, "exactly one of"),
        (
            cnp("Admin", 1, "ingress:\n" + "- {action: Deny, from: [namespaces: {}]}\n" * 26),
            5,
            "at most 25",
        ),
        (cnp("Admin", 1, ingress(protocols="[]")), 9, "must not be empty"),
        (cnp("Admin", 1, ingress(protocols="[{tcp: {}}]")), 11, "destinationPort"),
        (
            cnp("Admin", 1, ingress(protocols="[{tcp: {destinationPort: {number: 0}}}]")),
            11,
            "1..65535",
        ),
        (
            cnp(
                "Admin",
                1,
                ingress(protocols="[{udp: {destinationPort: {range: {start: 9, end: 9}}}}]"),
            ),
            11,
            "less than end",
        ),
        (
            cnp(
                "Admin",
                1,
                ingress(
                    protocols="[{tcp: {destinationPort: {number: 80}}, "
                    "udp: {destinationPort: {number: 53}}}]"
                ),
            ),
            11,
            "exactly one of",
        ),
        (cnp("Admin", 1, egress("{networks: [10.0.0.0/8, 10.0.0.0/8]}")), 10, "twice"),
        (cnp("Admin", 1, egress("{networks: [10.0.0.0/255.0.0.0]}")), 10, "not a valid CIDR"),
        (cnp("Admin", 1, egress('{networks: ["::ffff:10.0.0.0/104"]}')), 10, "not a valid CIDR"),
        (cnp("Admin", 1, egress("{domainNames: [foo]}")), 10, "not valid"),
        (cnp("Admin", 1, egress("{domainNames: [www.*.io]}")), 10, "not valid"),
        (
            cnp("Admin", 1, egress("{nodes: {}}", "[{destinationNamedPort: web}]")),
            9,
            "cannot be set with destinationNamedPort",
        ),
        (cnp("Admin", 1, "egres: []\n"), 5, "unknown field"),
        (
            cnp("Admin", 1, "ingress:\n- {action: Deny, from: [namespaces: {}], ports: []}\n"),
            9,
            "unknown field",
        ),
    ],
)
def test_invalid_cluster_network_policies_are_errors(doc: str, line: int, fragment: str) -> None:
    with pytest.raises(ManifestError) as err:
        load_files({"cnp.yaml": doc})
    assert (err.value.file, err.value.line) == ("cnp.yaml", line), str(err.value)
    assert fragment in str(err.value)


def test_valid_edge_cases_are_accepted() -> None:
    # namespaceSelector may be left out of `pods` (every namespace); any string may be a
    # destinationNamedPort (it matches no container port unless one bears the name); 25
    # rules; a range may span every port; host bits in a CIDR.
    rules = (
        "ingress:\n" + "- {action: Pass, from: [{pods: {podSelector: {}}}], "
        "protocols: [{destinationNamedPort: Not_A_Name}]}\n" * 25
    )
    rules += egress(
        "{networks: [10.0.0.1/8]}", "[{sctp: {destinationPort: {range: {start: 1, end: 65535}}}}]"
    )
    tree = load_files({"cnp.yaml": cnp("Baseline", 0, rules, "{pods: {podSelector: {}}}")})
    [policy] = tree.admin_policies
    assert policy.is_baseline and policy.subject_namespaces.is_empty()
    assert len(policy.ingress) == 25 and str(policy.egress[0].peers[0].networks[0]) == "10.0.0.0/8"


def test_networks_with_a_named_port_warn() -> None:
    rules = egress("{networks: [10.0.0.0/8]}", "[{destinationNamedPort: web}]", action="Accept")
    tree = load_files({"cnp.yaml": cnp("Admin", 1, rules)})
    assert any("never matches a `networks` peer" in w for w in tree.warnings)


# -------------------------------------------------------------------------- ordering


def test_equal_priorities_in_a_tier_are_ordered_by_name_and_warned() -> None:
    a = cnp("Admin", 7, ingress("Deny")).replace("name: x", "name: b")
    b = cnp("Admin", 7, ingress("Accept")).replace("name: x", "name: a")
    c = cnp("Baseline", 7, ingress("Deny")).replace("name: x", "name: c")
    tree = load_files({"a.yaml": a, "b.yaml": b, "c.yaml": c})
    assert [p.name for p in tree.admin_policies] == ["a", "b", "c"]
    [warning] = tree.warnings
    assert "ClusterNetworkPolicies a and b (Admin tier) share priority 7" in warning


def test_v1alpha1_and_v1alpha2_together_are_one_admin_tier_and_one_baseline_tier() -> None:
    anp = textwrap.dedent(
        """\
        apiVersion: policy.networking.k8s.io/v1alpha1
        kind: {kind}
        metadata: {{name: {name}}}
        spec:
          {priority}subject: {{namespaces: {{}}}}
          ingress: [{{action: {action}, from: [namespaces: {{}}]}}]
        """
    )
    files = {
        "anp.yaml": anp.format(
            kind="AdminNetworkPolicy", name="anp", priority="priority: 5\n  ", action="Pass"
        ),
        "banp.yaml": anp.format(
            kind="BaselineAdminNetworkPolicy", name="default", priority="", action="Allow"
        ),
        "admin.yaml": cnp("Admin", 9, ingress("Deny")).replace("name: x", "name: admin"),
        "baseline.yaml": cnp("Baseline", 900, ingress("Deny")).replace("name: x", "name: baseline"),
        "pod.yaml": "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: []}\n",
    }
    tree = load_files(files)
    assert [p.id for p in tree.admin_policies] == [
        "AdminNetworkPolicy/anp",
        "ClusterNetworkPolicy/admin",
        "ClusterNetworkPolicy/baseline",
        "BaselineAdminNetworkPolicy/default",
    ]
    assert any("v1alpha1" in w and "v1alpha2" in w for w in tree.warnings)
    # The ANP passes; no NetworkPolicy; the Baseline CNP denies before the BANP allows.
    doc = map_to_json(compute_map(tree))
    assert not [
        c for c in doc["connections"] if c["dst"] == "default/Pod/p" and c["src"] == "default/Pod/p"
    ]


def test_explanations_name_a_cluster_network_policys_tier_as_diffs_cite_it() -> None:
    """An explanation's steps say which tier a ClusterNetworkPolicy is in, worded like the
    ``tier`` a diff cites (``ClusterNetworkPolicy Baseline tier (priority 900)``)."""
    files = {
        "admin.yaml": cnp("Admin", 9, ingress("Pass")).replace("name: x", "name: admin"),
        "baseline.yaml": cnp("Baseline", 900, ingress("Deny")).replace("name: x", "name: baseline"),
        "pods.yaml": (
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: []}\n---\n"
            "apiVersion: v1\nkind: Pod\nmetadata: {name: q}\nspec: {containers: []}\n"
        ),
    }
    explained = explain_pair(compute_map(load_files(files)), "default/Pod/p", "default/Pod/q")
    admin_steps = [(s.policy, s.tier, s.verdict) for s in explained.steps if s.policy]
    admin, baseline = "ClusterNetworkPolicy/admin", "ClusterNetworkPolicy/baseline"
    assert admin_steps == [
        (admin, "ClusterNetworkPolicy Admin tier (priority 9)", "pass"),
        (baseline, "ClusterNetworkPolicy Baseline tier (priority 900)", "deny"),
    ]
    assert not explained.allowed
