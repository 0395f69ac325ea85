"""NetworkPolicy semantics, one rule at a time, with the expected answer written by hand.

Every cluster here is tiny and its expected connections are worked out from the Kubernetes
NetworkPolicy spec and docs/semantics.md, not from any implementation. Each case runs
against both the engine and the brute-force reference (tests/reference.py), so the
hand-written answers pin down the reference that the property tests then trust.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pytest
import yaml

from tests.reference import format_ports, interesting_ports, reference_diff, reference_map

Files = Mapping[str, str]
Pair = tuple[str, str]
Allowed = dict[str, str]
Connections = dict[Pair, Allowed]

ALL: Allowed = {"TCP": "all", "UDP": "all", "SCTP": "all"}
V4, V6 = "ip:0.0.0.0/0", "ip:::/0"
EXTERNAL = (V4, V6)


# ---------------------------------------------------------------------------- evaluators


def engine_map(files: Files) -> dict[str, Any]:
    from analysis.manifests import load_files
    from analysis.reachability import compute_map
    from analysis.report import map_to_json

    return map_to_json(compute_map(load_files(dict(files))))


def reference_map_of(files: Files) -> dict[str, Any]:
    objects: list[Any] = []
    for _, text in sorted(files.items()):
        objects.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return reference_map(objects)


@pytest.fixture(params=["engine", "reference"])
def reach(request: pytest.FixtureRequest) -> Callable[[Files], dict[str, Any]]:
    return engine_map if request.param == "engine" else reference_map_of


def connections(result: Mapping[str, Any]) -> Connections:
    return {(c["src"], c["dst"]): dict(c["allowed"]) for c in result["connections"]}


def y(text: str) -> Files:
    return {"cluster.yaml": textwrap.dedent(text)}


def everything_open(workloads: Iterable[str], external: Iterable[str] = EXTERNAL) -> Connections:
    """The map of a cluster no policy isolates: every pair but external-to-external."""
    ws, es = list(workloads), list(external)
    out: Connections = {(a, b): ALL for a in ws for b in ws}
    out.update({(w, e): ALL for w in ws for e in es})
    out.update({(e, w): ALL for w in ws for e in es})
    return out


def with_changes(base: Connections, changes: Mapping[Pair, Allowed | None]) -> Connections:
    """``base`` with some pairs replaced (None: nothing allowed, so the pair is absent)."""
    out = dict(base)
    for pair, allowed in changes.items():
        if allowed is None:
            out.pop(pair, None)
        else:
            out[pair] = allowed
    return out


def denied_into(dst: str, sources: Iterable[str]) -> dict[Pair, None]:
    return {(s, dst): None for s in sources}


def denied_out_of(src: str, dests: Iterable[str]) -> dict[Pair, None]:
    return {(src, d): None for d in dests}


def pod(
    name: str,
    labels: str = "{}",
    ns: str = "x",
    containers: str = "[{name: c, image: app}]",
    extra: str = "",
) -> str:
    """A Pod document; ``containers`` is a YAML flow sequence, ``extra`` one more spec line."""
    text = (
        f"apiVersion: v1\nkind: Pod\n"
        f"metadata: {{name: {name}, namespace: {ns}, labels: {labels}}}\n"
        f"spec:\n  containers: {containers}\n"
    )
    return text + (f"  {extra}\n" if extra else "")


def docs(*parts: str) -> Files:
    return {"cluster.yaml": "---\n".join(textwrap.dedent(p) for p in parts)}


A, B, C = "x/Pod/a", "x/Pod/b", "x/Pod/c"


# ---------------------------------------------------------------------------- selectors


def test_no_policies_everything_open(reach: Callable[[Files], dict[str, Any]]) -> None:
    result = reach(docs(pod("a"), pod("b")))
    assert result["endpoints"] == [
        {"id": A, "kind": "Pod", "namespace": "x", "name": "a"},
        {"id": B, "kind": "Pod", "namespace": "x", "name": "b"},
        {"id": V4, "kind": "External", "cidrs": ["0.0.0.0/0"]},
        {"id": V6, "kind": "External", "cidrs": ["::/0"]},
    ]
    assert connections(result) == everything_open([A, B])


DENY_INGRESS = """\
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {{name: deny, namespace: x}}
    spec:
      podSelector: {selector}
      policyTypes: [Ingress]
    """

SELECTOR_PODS = [
    pod("a", "{app: a}"),
    pod("b", "{app: b, tier: ''}"),
    pod("c", "{}"),
]


@pytest.mark.parametrize(
    ("selector", "isolated"),
    [
        ("{}", [A, B, C]),
        ("{matchLabels: {app: a}}", [A]),
        ("{matchLabels: {app: b, tier: ''}}", [B]),
        ("{matchLabels: {app: a, tier: ''}}", []),
        ("{matchExpressions: [{key: app, operator: In, values: [a, b]}]}", [A, B]),
        ("{matchExpressions: [{key: tier, operator: In, values: ['']}]}", [B]),
        # NotIn matches a pod that lacks the key entirely
        ("{matchExpressions: [{key: app, operator: NotIn, values: [a]}]}", [B, C]),
        ("{matchExpressions: [{key: tier, operator: Exists}]}", [B]),
        ("{matchExpressions: [{key: app, operator: DoesNotExist}]}", [C]),
        # matchLabels and matchExpressions are ANDed, as are the expressions
        ("{matchLabels: {app: b}, matchExpressions: [{key: tier, operator: DoesNotExist}]}", []),
        (
            "{matchExpressions: [{key: app, operator: Exists}, "
            "{key: app, operator: NotIn, values: [b]}]}",
            [A],
        ),
    ],
)
def test_pod_selector_isolates_exactly_the_matching_pods(
    reach: Callable[[Files], dict[str, Any]], selector: str, isolated: list[str]
) -> None:
    result = reach(docs(*SELECTOR_PODS, DENY_INGRESS.format(selector=selector)))
    everyone = [A, B, C, *EXTERNAL]
    expected = everything_open([A, B, C])
    for dst in isolated:
        expected = with_changes(expected, denied_into(dst, everyone))
    assert connections(result) == expected


# ---------------------------------------------------------------------------- policyTypes


TWO_PODS = (pod("a", "{app: a}"), pod("b", "{app: b}"))


@pytest.mark.parametrize("types", ["", "  policyTypes: []\n"])
def test_policy_types_inferred_from_egress_rules_isolate_both_directions(
    reach: Callable[[Files], dict[str, Any]], types: str
) -> None:
    # No policyTypes and an egress rule: the policy is [Ingress, Egress], so with no
    # ingress rules it also denies all ingress to a. The API server defaults an empty
    # policyTypes list exactly like a missing one.
    result = reach(
        docs(
            *TWO_PODS,
            """\
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: p, namespace: x}
        spec:
          podSelector: {matchLabels: {app: a}}
          egress:
          - to: [{podSelector: {matchLabels: {app: b}}}]
        """
            + types,
        )
    )
    assert connections(result) == {
        (A, B): ALL,
        (B, B): ALL,
        (B, V4): ALL,
        (B, V6): ALL,
        (V4, B): ALL,
        (V6, B): ALL,
    }


def test_policy_types_inferred_without_egress_rules_is_ingress_only(
    reach: Callable[[Files], dict[str, Any]],
) -> None:
    # `egress: []` has no rule, so the inferred types are [Ingress] and egress stays open.
    result = reach(
        docs(
            *TWO_PODS,
            """\
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: p, namespace: x}
        spec:
          podSelector: {matchLabels: {app: a}}
          ingress: []
          egress: []
        """,
        )
    )
    expected = with_changes(everything_open([A, B]), denied_into(A, [A, B, *EXTERNAL]))
    assert connections(result) == expected


def test_policy_types_egress_only_ignores_ingress_rules(
    reach: Callable[[Files], dict[str, Any]],
) -> None:
    # The ingress rule would allow only b; policyTypes [Egress] makes it dead, so a is not
    # isolated for ingress at all, while its egress (no egress rule) is fully denied.
    result = reach(
        docs(
            *TWO_PODS,
            """\
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: p, namespace: x}
        spec:
          podSelector: {matchLabels: {app: a}}
          policyTypes: [Egress]
          ingress:
          - from: [{podSelector: {matchLabels: {app: b}}}]
        """,
        )
    )
    expected = with_changes(everything_open([A, B]), denied_out_of(A, [A, B, *EXTERNAL]))
    assert connections(result) == expected


def test_policy_types_both_without_rules_isolate_completely(
    reach: Callable[[Files], dict[str, Any]],
) -> None:
    result = reach(
        docs(
            *TWO_PODS,
            """\
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: p, namespace: x}
        spec:
          podSelector: {matchLabels: {app: a}}
          policyTypes: [Ingress, Egress]
        """,
        )
    )
    expected = with_changes(
        everything_open([A, B]),
        {**denied_out_of(A, [A, B, *EXTERNAL]), **denied_into(A, [B, *EXTERNAL])},
    )
    assert connections(result) == expected


# ---------------------------------------------------------------------------- peers


PEER_CLUSTER = (
    """\
    apiVersion: v1
    kind: Namespace
    metadata: {name: y, labels: {team: t}}
    """,
    pod("a", "{app: a}"),
    pod("b", "{app: b}"),
    pod("b", "{app: b}", ns="y"),
    pod("c", "{app: c}", ns="y"),
    pod("b", "{app: b}", ns="z"),
)
XA, XB, YB, YC, ZB = "x/Pod/a", "x/Pod/b", "y/Pod/b", "y/Pod/c", "z/Pod/b"
PEER_PODS = [XA, XB, YB, YC, ZB]


def ingress_to_a(from_: str) -> str:
    return f"""\
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {{name: p, namespace: x}}
        spec:
          podSelector: {{matchLabels: {{app: a}}}}
          ingress:
          - from: {from_}
        """


@pytest.mark.parametrize(
    ("from_", "admitted"),
    [
        # podSelector alone: only pods of the policy's own namespace
        ("[{podSelector: {matchLabels: {app: b}}}]", [XB]),
        ("[{podSelector: {}}]", [XA, XB]),
        # namespaceSelector alone: every pod of the matching namespaces
        ("[{namespaceSelector: {matchLabels: {team: t}}}]", [YB, YC]),
        ("[{namespaceSelector: {}}]", PEER_PODS),
        # both in one peer: AND
        (
            "[{namespaceSelector: {matchLabels: {team: t}}, podSelector: {matchLabels: {app: b}}}]",
            [YB],
        ),
        ("[{namespaceSelector: {}, podSelector: {matchLabels: {app: b}}}]", [XB, YB, ZB]),
        # separate peers: OR
        (
            "[{namespaceSelector: {matchLabels: {team: t}}},"
            " {podSelector: {matchLabels: {app: b}}}]",
            [XB, YB, YC],
        ),
        # a selector peer never matches an external range, and a rule with a peer list
        # that matches nothing admits nothing
        ("[{podSelector: {matchLabels: {app: nobody}}}]", []),
    ],
)
def test_peer_selectors(
    reach: Callable[[Files], dict[str, Any]], from_: str, admitted: list[str]
) -> None:
    result = reach(docs(*PEER_CLUSTER, ingress_to_a(from_)))
    expected = with_changes(
        everything_open(PEER_PODS),
        denied_into(XA, [p for p in [*PEER_PODS, *EXTERNAL] if p not in admitted]),
    )
    assert connections(result) == expected


def test_missing_from_admits_every_peer_including_external(
    reach: Callable[[Files], dict[str, Any]],
) -> None:
    result = reach(
        docs(
            *TWO_PODS,
            """\
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: p, namespace: x}
        spec:
          podSelector: {matchLabels: {app: a}}
          ingress:
          - ports: [{port: 80}]
        """,
        )
    )
    tcp80 = {"TCP": "80"}
    expected = with_changes(
        everything_open([A, B]), {(A, A): tcp80, (B, A): tcp80, (V4, A): tcp80, (V6, A): tcp80}
    )
    assert connections(result) == expected


def test_empty_from_list_admits_every_peer(reach: Callable[[Files], dict[str, Any]]) -> None:
    result = reach(docs(*TWO_PODS, ingress_to_a("[]")))
    assert connections(result) == everything_open([A, B])


def test_ingress_empty_rule_allows_everything(reach: Callable[[Files], dict[str, Any]]) -> None:
    result = reach(
        docs(
            *TWO_PODS,
            """\
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: p, namespace: x}
        spec:
          podSelector: {}
          ingress: [{}]
        """,
        )
    )
    assert connections(result) == everything_open([A, B])


def test_isolated_pod_with_no_matching_rule_gets_nothing(
    reach: Callable[[Files], dict[str, Any]],
) -> None:
    result = reach(docs(*TWO_PODS, ingress_to_a("[{podSelector: {matchLabels: {app: c}}}]")))
    expected = with_changes(everything_open([A, B]), denied_into(A, [A, B, *EXTERNAL]))
    assert connections(result) == expected


# ---------------------------------------------------------------------------- ipBlock


def test_ip_block_with_except_partitions_and_matches_ranges_only(
    reach: Callable[[Files], dict[str, Any]],
) -> None:
    result = reach(
        docs(
            *TWO_PODS,
            """\
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: p, namespace: x}
        spec:
          podSelector: {matchLabels: {app: a}}
          policyTypes: [Egress]
          egress:
          - to:
            - ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}
            - ipBlock: {cidr: 'fd00::/8'}
        """,
        )
    )
    below = "ip:0.0.0.0/5,8.0.0.0/7"
    ten0 = "ip:10.0.0.0/16"
    ten1 = "ip:10.1.0.0/16"
    ten_rest = (
        "ip:10.2.0.0/15,10.4.0.0/14,10.8.0.0/13,10.16.0.0/12,10.32.0.0/11,10.64.0.0/10,10.128.0.0/9"
    )
    above = "ip:11.0.0.0/8,12.0.0.0/6,16.0.0.0/4,32.0.0.0/3,64.0.0.0/2,128.0.0.0/1"
    v6_below = "ip:::/1,8000::/2,c000::/3,e000::/4,f000::/5,f800::/6,fc00::/8"
    ula = "ip:fd00::/8"
    v6_above = "ip:fe00::/7"
    external = [below, ten0, ten1, ten_rest, above, v6_below, ula, v6_above]
    assert [e["id"] for e in result["endpoints"]] == [A, B, *external]
    assert result["endpoints"][5] == {
        "id": ten_rest,
        "kind": "External",
        "cidrs": ten_rest[3:].split(","),
    }
    # ipBlocks never match pods: a reaches neither b nor itself.
    expected = with_changes(
        everything_open([A, B], external),
        denied_out_of(A, [A, B, below, ten1, above, v6_below, v6_above]),
    )
    assert connections(result) == expected


# ---------------------------------------------------------------------------- ports


def ingress_ports(ports: str) -> str:
    return f"""\
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {{name: p, namespace: x}}
        spec:
          podSelector: {{matchLabels: {{app: a}}}}
          ingress:
          - from: [{{podSelector: {{matchLabels: {{app: b}}}}}}]
            ports: {ports}
        """


@pytest.mark.parametrize(
    ("ports", "allowed"),
    [
        ("[{port: 80}]", {"TCP": "80"}),
        ("[{port: 80, protocol: TCP}, {port: 443}]", {"TCP": "80,443"}),
        ("[{port: 8000, endPort: 8080}, {port: 80}]", {"TCP": "80,8000-8080"}),
        ("[{port: 1, endPort: 65535}]", {"TCP": "all"}),
        ("[{port: 65535}, {port: 1}]", {"TCP": "1,65535"}),
        ("[{port: 80, endPort: 80}, {port: 81}]", {"TCP": "80-81"}),
        ("[{protocol: UDP, port: 53}]", {"UDP": "53"}),
        ("[{protocol: SCTP, port: 9999, endPort: 10001}]", {"SCTP": "9999-10001"}),
        ("[{protocol: UDP}]", {"UDP": "all"}),
        ("[{}]", {"TCP": "all"}),
        ("[{protocol: SCTP}, {port: 22}]", {"TCP": "22", "SCTP": "all"}),
        ("[]", ALL),
    ],
)
def test_port_entries(
    reach: Callable[[Files], dict[str, Any]], ports: str, allowed: Allowed
) -> None:
    result = reach(docs(*TWO_PODS, ingress_ports(ports)))
    expected = with_changes(
        everything_open([A, B]), {**denied_into(A, [A, *EXTERNAL]), (B, A): allowed}
    )
    assert connections(result) == expected


NAMED_PORT_PODS = (
    pod(
        "a1",
        "{app: a}",
        containers="[{name: c, image: app, ports: ["
        "{name: http, containerPort: 8080}, {name: dns, containerPort: 53, protocol: UDP}]}]",
    ),
    pod(
        "a2",
        "{app: a}",
        containers="[{name: c, image: app, ports: "
        "[{name: metrics, containerPort: 9090}]}, {name: d, image: app, ports: "
        "[{name: http, containerPort: 9000, protocol: TCP}]}]",
    ),
    pod(
        "a3",
        "{app: a}",
        containers="[{name: c, image: app, ports: "
        "[{name: http, containerPort: 8080, protocol: UDP}]}]",
    ),
    pod("a4", "{app: a}", containers="[{name: c, image: app, ports: [{containerPort: 8080}]}]"),
    pod("b", "{app: b}"),
)
A1, A2, A3, A4 = "x/Pod/a1", "x/Pod/a2", "x/Pod/a3", "x/Pod/a4"


@pytest.mark.parametrize(
    ("ports", "per_pod"),
    [
        # resolved on each destination pod separately; a3's http is UDP, a4 has no name
        ("[{port: http}]", {A1: {"TCP": "8080"}, A2: {"TCP": "9000"}}),
        ("[{port: http, protocol: UDP}]", {A3: {"UDP": "8080"}}),
        ("[{port: dns, protocol: UDP}, {port: metrics}]", {A1: {"UDP": "53"}, A2: {"TCP": "9090"}}),
        # dns is only defined for UDP, so a TCP entry for it matches nothing anywhere
        ("[{port: dns}]", {}),
        (
            "[{port: http}, {port: 8080, protocol: UDP}]",
            {
                A1: {"TCP": "8080", "UDP": "8080"},
                A2: {"TCP": "9000", "UDP": "8080"},
                A3: {"UDP": "8080"},
                A4: {"UDP": "8080"},
            },
        ),
    ],
)
def test_named_ports_resolve_per_destination_pod_and_protocol(
    reach: Callable[[Files], dict[str, Any]], ports: str, per_pod: dict[str, Allowed]
) -> None:
    result = reach(docs(*NAMED_PORT_PODS, ingress_ports(ports)))
    pods = [A1, A2, A3, A4, B]
    expected = everything_open(pods)
    for dst in (A1, A2, A3, A4):
        expected = with_changes(expected, denied_into(dst, [*pods, *EXTERNAL]))
        if dst in per_pod:
            expected[(B, dst)] = per_pod[dst]
    assert connections(result) == expected


def test_a_row_resolves_named_ports_on_each_destination() -> None:
    """Destinations under the same policies share their ingress rules; a row (read by the
    source's egress) must still resolve ``http`` on each of them: 8080 on a1, 9000 on a2."""
    from analysis.manifests import load_files
    from analysis.reachability import compute_map

    rmap = compute_map(load_files(dict(docs(*NAMED_PORT_PODS, ingress_ports("[{port: http}]")))))
    by_source: dict[int, dict[int, object]] = {}
    for (src, dst), conn in rmap.class_connections.items():
        by_source.setdefault(src, {})[dst] = conn
    source = rmap.index_of[B]
    row = rmap.row(source)
    assert row == by_source[source]
    ports = {str(row[rmap.index_of[a]]) for a in (A1, A2)}
    assert ports == {"TCP 8080", "TCP 9000"}


def test_named_port_in_egress_resolves_on_the_destination_not_the_source(
    reach: Callable[[Files], dict[str, Any]],
) -> None:
    result = reach(
        docs(
            *NAMED_PORT_PODS,
            """\
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: p, namespace: x}
        spec:
          podSelector: {matchLabels: {app: b}}
          policyTypes: [Egress]
          egress:
          - ports: [{port: http}]
        """,
        )
    )
    pods = [A1, A2, A3, A4, B]
    # b defines no ports at all; a named port never matches an external range.
    expected = with_changes(
        everything_open(pods),
        {
            **denied_out_of(B, [*pods, *EXTERNAL]),
            (B, A1): {"TCP": "8080"},
            (B, A2): {"TCP": "9000"},
        },
    )
    assert connections(result) == expected


def test_named_ports_of_sidecars_count_but_not_of_init_containers(
    reach: Callable[[Files], dict[str, Any]],
) -> None:
    # A sidecar (an init container with restartPolicy Always) serves for the pod's whole
    # life; an ordinary init container has exited before the pod serves anything.
    a = pod(
        "a",
        "{app: a}",
        extra=(
            "initContainers: [{name: sidecar, image: proxy, restartPolicy: Always, ports: "
            "[{name: metrics, containerPort: 9090}]}, {name: setup, image: setup, ports: "
            "[{name: http, containerPort: 8080}]}]"
        ),
    )
    b = pod(
        "b",
        "{app: b}",
        containers="[{name: c, image: app, ports: [{name: http, containerPort: 80}]}]",
    )
    policy = """\
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: p, namespace: x}
        spec:
          podSelector: {matchLabels: {app: a}}
          ingress:
          - ports: [{port: metrics}, {port: http}]
        """
    result = reach(docs(a, b, policy))
    tcp9090 = {"TCP": "9090"}
    expected = with_changes(
        everything_open([A, B]),
        {(A, A): tcp9090, (B, A): tcp9090, (V4, A): tcp9090, (V6, A): tcp9090},
    )
    assert connections(result) == expected


def test_egress_and_ingress_must_both_allow(reach: Callable[[Files], dict[str, Any]]) -> None:
    result = reach(
        docs(
            *TWO_PODS,
            """\
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: out, namespace: x}
        spec:
          podSelector: {matchLabels: {app: a}}
          policyTypes: [Egress]
          egress:
          - to: [{podSelector: {matchLabels: {app: b}}}]
            ports: [{port: 80, endPort: 90}, {protocol: UDP}]
        """,
            """\
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: in, namespace: x}
        spec:
          podSelector: {matchLabels: {app: b}}
          ingress:
          - from: [{podSelector: {matchLabels: {app: a}}}]
            ports: [{port: 85, endPort: 100}, {protocol: SCTP}]
        """,
        )
    )
    assert connections(result) == {
        (A, B): {"TCP": "85-90"},
        (B, A): ALL,
        (B, V4): ALL,
        (B, V6): ALL,
        (V4, A): ALL,
        (V6, A): ALL,
    }


def test_policies_selecting_a_pod_add_up(reach: Callable[[Files], dict[str, Any]]) -> None:
    three = (*TWO_PODS, pod("c", "{app: c}"))
    result = reach(
        docs(
            *three,
            """\
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: p1, namespace: x}
        spec:
          podSelector: {matchLabels: {app: a}}
          ingress:
          - from: [{podSelector: {matchLabels: {app: b}}}]
            ports: [{port: 80}]
          - from: [{podSelector: {matchLabels: {app: c}}}]
            ports: [{port: 53, protocol: UDP}]
        """,
            """\
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: p2, namespace: x}
        spec:
          podSelector: {}
          ingress:
          - from: [{podSelector: {matchLabels: {app: b}}}]
            ports: [{port: 443}]
        """,
        )
    )
    # p2 isolates every pod; only b gets in anywhere, on 443, plus p1's extra rules on a.
    expected = with_changes(
        everything_open([A, B, C]),
        {
            **denied_into(A, [A, C, *EXTERNAL]),
            **denied_into(B, [A, C, *EXTERNAL]),
            **denied_into(C, [A, C, *EXTERNAL]),
            (B, A): {"TCP": "80,443"},
            (C, A): {"UDP": "53"},
            (B, B): {"TCP": "443"},
            (B, C): {"TCP": "443"},
        },
    )
    assert connections(result) == expected


# ---------------------------------------------------------------------------- special pods


HOST = "x/Pod/h"
HOST_POD = pod("h", "{app: a}", extra="hostNetwork: true")


@pytest.mark.parametrize(
    "from_",
    [
        "[{podSelector: {}}]",
        "[{namespaceSelector: {}}]",
        "[{ipBlock: {cidr: 0.0.0.0/0}}, {ipBlock: {cidr: '::/0'}}]",
    ],
)
def test_host_network_pods_match_no_selector_or_ip_block(
    reach: Callable[[Files], dict[str, Any]], from_: str
) -> None:
    result = reach(docs(pod("a", "{app: a}"), HOST_POD, ingress_to_a(from_)))
    conns = connections(result)
    assert (HOST, A) not in conns
    # h carries app=a but is never selected, so it is not isolated itself.
    assert conns[(A, HOST)] == ALL and conns[(HOST, HOST)] == ALL
    assert conns[(V4, HOST)] == ALL


def test_host_network_pods_are_peers_of_rules_without_from(
    reach: Callable[[Files], dict[str, Any]],
) -> None:
    result = reach(
        docs(
            pod("a", "{app: a}"),
            HOST_POD,
            """\
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: p, namespace: x}
        spec:
          podSelector: {}
          policyTypes: [Ingress, Egress]
          ingress:
          - ports: [{port: 80}]
        """,
        )
    )
    # The policy selects every pod, but host-network h is never isolated.
    expected = with_changes(
        everything_open([A, HOST]),
        {
            **denied_out_of(A, [A, HOST, *EXTERNAL]),
            (HOST, A): {"TCP": "80"},
            (V4, A): {"TCP": "80"},
            (V6, A): {"TCP": "80"},
        },
    )
    assert connections(result) == expected


def test_self_pair_is_governed_like_any_other_pair(
    reach: Callable[[Files], dict[str, Any]],
) -> None:
    deployment = """\
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: web, namespace: x}
        spec:
          selector: {matchLabels: {app: web}}
          template:
            metadata: {labels: {app: web}}
            spec: {containers: [{name: c, image: app}]}
        """
    web = "x/Deployment/web"
    allow_self = (
        ingress_ports("[{port: 80}]").replace("app: a", "app: web").replace("app: b", "app: web")
    )
    result = reach(docs(deployment, allow_self))
    assert connections(result) == {(web, web): {"TCP": "80"}, (web, V4): ALL, (web, V6): ALL}
    deny = DENY_INGRESS.format(selector="{}")
    result = reach(docs(deployment, deny))
    assert connections(result) == {(web, V4): ALL, (web, V6): ALL}


# ---------------------------------------------------------------------------- namespaces


def test_objects_without_namespace_are_in_default(reach: Callable[[Files], dict[str, Any]]) -> None:
    result = reach(
        docs(
            """\
        apiVersion: v1
        kind: Pod
        metadata: {name: a, labels: {app: a}}
        spec: {containers: [{name: c, image: app}]}
        """,
            pod("b", "{app: b}", ns="default"),
            pod("c", "{app: b}", ns="other"),
            """\
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: p}
        spec:
          podSelector: {matchLabels: {app: a}}
          ingress:
          - from:
            - podSelector: {matchLabels: {app: b}}
            - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: default}}
              podSelector: {matchLabels: {app: a}}
        """,
        )
    )
    a, b, c = "default/Pod/a", "default/Pod/b", "other/Pod/c"
    assert [e["id"] for e in result["endpoints"]][:3] == [a, b, c]
    assert result["endpoints"][0] == {"id": a, "kind": "Pod", "namespace": "default", "name": "a"}
    expected = with_changes(everything_open([a, b, c]), denied_into(a, [c, *EXTERNAL]))
    assert connections(result) == expected


def test_namespace_name_label_is_always_set_and_cannot_be_overridden(
    reach: Callable[[Files], dict[str, Any]],
) -> None:
    result = reach(
        docs(
            """\
        apiVersion: v1
        kind: Namespace
        metadata: {name: y, labels: {kubernetes.io/metadata.name: z, team: t}}
        """,
            pod("a", "{app: a}"),
            pod("b", "{app: b}", ns="y"),
            pod("b", "{app: b}", ns="z"),  # z has no Namespace object: implied by the pod
            ingress_to_a("[{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: z}}}]"),
        )
    )
    yb, zb = "y/Pod/b", "z/Pod/b"
    expected = with_changes(everything_open([A, yb, zb]), denied_into(A, [A, yb, *EXTERNAL]))
    assert connections(result) == expected


@pytest.mark.parametrize(
    ("kind", "api", "body"),
    [
        ("Deployment", "apps/v1", "selector: {{}}\ntemplate: {t}"),
        ("StatefulSet", "apps/v1", "serviceName: s\nselector: {{}}\ntemplate: {t}"),
        ("DaemonSet", "apps/v1", "selector: {{}}\ntemplate: {t}"),
        ("ReplicaSet", "apps/v1", "selector: {{}}\ntemplate: {t}"),
        ("ReplicationController", "v1", "template: {t}"),
        ("Job", "batch/v1", "template: {t}"),
        ("CronJob", "batch/v1", "schedule: '@daily'\njobTemplate: {{spec: {{template: {t}}}}}"),
    ],
)
def test_workload_kinds_use_their_pod_template_labels(
    reach: Callable[[Files], dict[str, Any]], kind: str, api: str, body: str
) -> None:
    # The controller's own labels say app=a, its pods' say app=b: only the latter count.
    template = "{metadata: {labels: {app: b}}, spec: {containers: [{name: c, image: app}]}}"
    spec = textwrap.indent(body.format(t=template), "  ")
    workload = (
        f"apiVersion: {api}\nkind: {kind}\n"
        f"metadata: {{name: w, namespace: x, labels: {{app: a}}}}\nspec:\n{spec}\n"
    )
    result = reach(docs(workload, DENY_INGRESS.format(selector="{matchLabels: {app: b}}")))
    w = f"x/{kind}/w"
    assert connections(result) == {(w, V4): ALL, (w, V6): ALL}


# ---------------------------------------------------------------------------- reference internals


def test_interesting_ports_cover_every_change_point() -> None:
    assert interesting_ports([80, 65535, 1]) == [1, 2, 79, 80, 81, 65534, 65535]
    points = interesting_ports([80, 90])
    assert format_ports(points, [p in (80, 81, 82) or p >= 90 for p in points]) == "80-88,90-65535"
    assert format_ports(points, [True] * len(points)) == "all"
    assert format_ports(points, [False] * len(points)) == ""


# ---------------------------------------------------------------------------- errors


PREAMBLE = textwrap.dedent("""\
    # a valid document first, so line numbers must count across documents
    apiVersion: v1
    kind: Pod
    metadata: {name: a, namespace: x, labels: {app: a}}
    spec:
      containers:
      - name: c
        image: app
        ports: [{name: http, containerPort: 8080}]
    ---
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: p, namespace: x}
    spec:
      podSelector: {}
    """)
PREAMBLE_LINES = PREAMBLE.count("\n")  # the policy body starts on line PREAMBLE_LINES + 1


@pytest.mark.parametrize(
    ("body", "bad_lines"),
    [
        # body lines are numbered from 1; the error must point at one of bad_lines
        ("  ingress:\n  - ports:\n    - port: 90\n      endPort: 80\n", [3, 4]),
        ("  ingress:\n  - ports:\n    - port: http\n      endPort: 9000\n", [3, 4]),
        ("  ingress:\n  - ports:\n    - protocol: ICMP\n      port: 80\n", [3]),
        ("  ingress:\n  - ports:\n    - port: 0\n", [3]),
        ("  ingress:\n  - ports:\n    - port: 65536\n", [3]),
        (
            "  ingress:\n  - from:\n    - podSelector:\n        matchExpressions:\n"
            "        - key: app\n          operator: Near\n          values: [a]\n",
            [5, 6],
        ),
        (
            "  ingress:\n  - from:\n    - podSelector:\n        matchExpressions:\n"
            "        - key: app\n          operator: In\n",
            [5, 6],
        ),
        (
            "  ingress:\n  - from:\n    - podSelector:\n        matchExpressions:\n"
            "        - {key: app, operator: Exists, values: [a]}\n",
            [5],
        ),
        (
            "  ingress:\n  - from:\n    - ipBlock: {cidr: 10.0.0.0/8}\n      podSelector: {}\n",
            [3, 4],
        ),
        (
            "  egress:\n  - to:\n    - namespaceSelector: {}\n      ipBlock: {cidr: 10.0.0.0/8}\n",
            [3, 4],
        ),
        (
            "  ingress:\n  - from:\n    - ipBlock:\n        cidr: 10.0.0.0/16\n"
            "        except: [10.1.0.0/24]\n",
            [3, 4, 5],
        ),
        (
            "  ingress:\n  - from:\n    - ipBlock:\n        cidr: 10.0.0.0/16\n"
            "        except: [10.0.0.0/16]\n",
            [3, 4, 5],
        ),
        ("  ingress:\n  - from:\n    - ipBlock: {cidr: 10.0.0.0/33}\n", [3]),
        ("  ingress:\n  - from:\n    - {}\n", [3]),
        ("  policyTypes: [Ingress, Sideways]\n", [1]),
    ],
)
def test_invalid_policies_are_rejected_with_file_and_line(body: str, bad_lines: list[int]) -> None:
    from analysis.manifests import ManifestError, load_files

    text = PREAMBLE + body
    with pytest.raises(ManifestError) as info:
        load_files({"ok.yaml": pod("z"), "apps/bad.yaml": text})
    err = info.value
    assert err.file == "apps/bad.yaml"
    assert err.line in [PREAMBLE_LINES + n for n in bad_lines], str(err)
    assert str(err).startswith(f"apps/bad.yaml:{err.line}: ")


def test_an_undefined_port_name_is_a_warning_on_its_line_not_an_error() -> None:
    from analysis.manifests import load_files

    text = PREAMBLE + "  ingress:\n  - ports:\n    - port: abc\n"
    tree = load_files({"ok.yaml": pod("z"), "apps/bad.yaml": text})
    [warning] = tree.warnings
    assert warning.startswith(f"apps/bad.yaml:{PREAMBLE_LINES + 3}: x/NetworkPolicy/p ingress[0]: ")
    assert "'abc' is not defined" in warning


def test_invalid_yaml_is_rejected_with_file_and_line() -> None:
    from analysis.manifests import ManifestError, load_files

    text = "apiVersion: v1\nkind: Pod\nmetadata: name: a\n"
    with pytest.raises(ManifestError) as info:
        load_files({"ok.yaml": pod("z"), "broken.yaml": text})
    assert info.value.file == "broken.yaml"
    assert info.value.line == 3
    assert str(info.value).startswith("broken.yaml:3: ")


def test_non_string_label_value_is_rejected_with_file_and_line() -> None:
    from analysis.manifests import ManifestError, load_files

    text = PREAMBLE.replace("labels: {app: a}", "labels: {app: 1}")
    with pytest.raises(ManifestError) as info:
        load_files({"labels.yaml": text})
    assert info.value.file == "labels.yaml"
    assert info.value.line == 4, str(info.value)


# ---------------------------------------------------------------------------- diffs


def engine_diff(base: Files, head: Files) -> dict[str, Any]:
    from analysis.diff import diff_trees
    from analysis.manifests import load_files
    from analysis.report import diff_to_json

    return diff_to_json(diff_trees(load_files(dict(base)), load_files(dict(head))))


def reference_diff_of(base: Files, head: Files) -> dict[str, Any]:
    def objects(files: Files) -> list[Any]:
        return [d for _, t in sorted(files.items()) for d in yaml.safe_load_all(t) if d]

    return reference_diff(objects(base), objects(head)).to_json()


@pytest.fixture(params=["engine", "reference"])
def delta(request: pytest.FixtureRequest) -> Callable[[Files, Files], dict[str, Any]]:
    return engine_diff if request.param == "engine" else reference_diff_of


def changes(rows: Iterable[Mapping[str, Any]]) -> list[tuple[str, str, Allowed]]:
    return [(r["src"], r["dst"], dict(r["allowed"])) for r in rows]


DENY_A = ingress_to_a("[{podSelector: {matchLabels: {app: nobody}}}]")


def test_diff_opening_a_port_reports_exactly_the_delta(
    delta: Callable[[Files, Files], dict[str, Any]],
) -> None:
    base = docs(*TWO_PODS, ingress_ports("[{port: 80}]"))
    head = docs(*TWO_PODS, ingress_ports("[{port: 80, endPort: 90}, {protocol: UDP}]"))
    result = delta(base, head)
    assert result["widening"] is True
    assert changes(result["opened"]) == [(B, A, {"TCP": "81-90", "UDP": "all"})]
    assert changes(result["closed"]) == []


def test_diff_default_deny_closes_everything_into_the_pod(
    delta: Callable[[Files, Files], dict[str, Any]],
) -> None:
    result = delta(docs(*TWO_PODS), docs(*TWO_PODS, DENY_A))
    assert result["widening"] is False
    assert changes(result["opened"]) == []
    assert changes(result["closed"]) == [(A, A, ALL), (B, A, ALL), (V4, A, ALL), (V6, A, ALL)]


def test_diff_cuts_both_trees_by_the_union_of_their_ip_blocks(
    delta: Callable[[Files, Files], dict[str, Any]],
) -> None:
    # base allows 10.0.0.0/8 out of a, head only 10.0.0.0/16: the range 10.0.0.0/8 minus
    # 10.0.0.0/16 closes, and both trees are compared on the same ranges.
    egress = """\
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {{name: p, namespace: x}}
        spec:
          podSelector: {{matchLabels: {{app: a}}}}
          policyTypes: [Egress]
          egress:
          - to: [{{ipBlock: {{cidr: {cidr}}}}}]
        """
    result = delta(
        docs(*TWO_PODS, egress.format(cidr="10.0.0.0/8")),
        docs(*TWO_PODS, egress.format(cidr="10.0.0.0/16")),
    )
    rest = (
        "ip:10.1.0.0/16,10.2.0.0/15,10.4.0.0/14,10.8.0.0/13,10.16.0.0/12,10.32.0.0/11,"
        "10.64.0.0/10,10.128.0.0/9"
    )
    assert changes(result["closed"]) == [(A, rest, ALL)]
    assert changes(result["opened"]) == []


def test_diff_new_workload_opens_its_paths(
    delta: Callable[[Files, Files], dict[str, Any]],
) -> None:
    result = delta(docs(pod("a", "{app: a}"), DENY_A), docs(*TWO_PODS, DENY_A))
    # a's egress is open, so a reaches the newcomer too; nothing reaches a (isolated)
    assert changes(result["opened"]) == [
        (A, B, ALL),
        (B, B, ALL),
        (B, V4, ALL),
        (B, V6, ALL),
        (V4, B, ALL),
        (V6, B, ALL),
    ]
    assert changes(result["closed"]) == []


def test_diff_cites_the_head_rule_that_opens_a_path() -> None:
    base = docs(*TWO_PODS, DENY_A)
    head_policy = ingress_to_a("[{podSelector: {matchLabels: {app: b}}}]")
    head = docs(*TWO_PODS, head_policy)
    result = engine_diff(base, head)
    (opened,) = result["opened"]
    assert (opened["src"], opened["dst"]) == (B, A)
    # The rule `- from: ...` is on the line after `ingress:` in the policy document.
    text = head["cluster.yaml"]
    rule_line = text.splitlines().index("  - from: [{podSelector: {matchLabels: {app: b}}}]") + 1
    cited = [(c["policy"], c["file"], c["line"], c.get("tree")) for c in opened["because"]]
    assert ("x/NetworkPolicy/p", "cluster.yaml", rule_line, "head") in cited, cited
