"""Calico's documented examples, transcribed by hand and asserted pair by pair.

Facts and manifests come from Calico's documentation (tigera/docs, calico/…: the
NetworkPolicy reference sample, "Use namespace rules in policy", "Use external IPs or
networks rules in policy", "Get started with policy tiers", the Tier reference); the pods
around them are made up to exercise each stated fact. Each test names its page.
"""

from __future__ import annotations

import textwrap

import pytest

from analysis.decision import explain_pair
from analysis.errors import ManifestError
from analysis.manifests import load_files
from analysis.report import map_to_json
from analysis.unknowns import unknown_matches
from tests.calico_examples import ALL, allowed, engine_map, pod


def _namespace(name: str, labels: dict[str, str] | None = None) -> str:
    shown = ", ".join(f"{k}: {v}" for k, v in (labels or {}).items())
    return (
        f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {name}, labels: {{{shown}}}}}\n---\n"
    )


# --- the NetworkPolicy reference's sample ("allows TCP traffic from frontend endpoints to
# port 6379 on database endpoints"; types Ingress and Egress, egress: Allow) -------------

SAMPLE = textwrap.dedent("""\
    apiVersion: projectcalico.org/v3
    kind: NetworkPolicy
    metadata:
      name: allow-tcp-6379
      namespace: production
    spec:
      selector: role == 'database'
      types:
        - Ingress
        - Egress
      ingress:
        - action: Allow
          metadata:
            annotations:
              from: frontend
              to: database
          protocol: TCP
          source:
            selector: role == 'frontend'
          destination:
            ports:
              - 6379
      egress:
        - action: Allow
    """)


def test_reference_sample() -> None:
    _, rmap = engine_map(
        pod("db", "production", {"role": "database"}),
        pod("web", "production", {"role": "frontend"}),
        pod("other", "production", {"role": "batch"}),
        pod("web", "staging", {"role": "frontend"}),
        SAMPLE,
    )
    db, web, other = "production/Pod/db", "production/Pod/web", "production/Pod/other"
    assert allowed(rmap, web, db) == {"TCP": "6379"}  # frontend -> database, TCP 6379
    assert allowed(rmap, other, db) == {}  # the tier's implicit deny for the rest
    assert allowed(rmap, "staging/Pod/web", db) == {}  # selectors: the policy's namespace
    assert allowed(rmap, "ip:0.0.0.0/0", db) == {}
    assert allowed(rmap, db, other) == ALL  # egress: Allow
    assert allowed(rmap, db, "ip:0.0.0.0/0") == ALL
    assert allowed(rmap, other, web) == ALL  # pods no policy selects: the profile allows


# --- "Use namespace rules in policy" --------------------------------------------------

NAMESPACED = textwrap.dedent("""\
    apiVersion: projectcalico.org/v3
    kind: NetworkPolicy
    metadata:
      name: allow-tcp-6379
      namespace: production
    spec:
      selector: color == 'red'
      ingress:
        - action: Allow
          protocol: TCP
          source:
            selector: color == 'blue'{extra}
          destination:
            ports:
              - 6379
    """)


def _colours() -> list[str]:
    return [
        _namespace("production"),
        _namespace("circles", {"shape": "circle"}),
        _namespace("squares", {"shape": "square"}),
        pod("red", "production", {"color": "red"}),
        pod("blue", "production", {"color": "blue"}),
        pod("green", "production", {"color": "green"}),
        pod("blue", "circles", {"color": "blue"}),
        pod("blue", "squares", {"color": "blue"}),
    ]


def test_namespace_rules_same_namespace() -> None:
    # "ingress traffic is allowed to endpoints in the namespace: production with label
    # color: red, and only from a pod in the same namespace with color: blue, on port 6379"
    _, rmap = engine_map(*_colours(), NAMESPACED.format(extra=""))
    red = "production/Pod/red"
    assert allowed(rmap, "production/Pod/blue", red) == {"TCP": "6379"}
    assert allowed(rmap, "production/Pod/green", red) == {}
    assert allowed(rmap, "circles/Pod/blue", red) == {}
    assert allowed(rmap, "squares/Pod/blue", red) == {}
    assert allowed(rmap, red, "circles/Pod/blue") == ALL  # types default to Ingress only


def test_namespace_rules_namespace_selector() -> None:
    # "ingress traffic is also allowed from endpoints with color: blue in namespaces with
    # shape: circle" — the namespaceSelector is the rule's scope: production has no shape.
    policy = NAMESPACED.format(extra="\n        namespaceSelector: shape == 'circle'")
    _, rmap = engine_map(*_colours(), policy)
    red = "production/Pod/red"
    assert allowed(rmap, "circles/Pod/blue", red) == {"TCP": "6379"}
    assert allowed(rmap, "squares/Pod/blue", red) == {}
    assert allowed(rmap, "production/Pod/blue", red) == {}


def test_namespace_rules_global_policy() -> None:
    # "users in the development environment can communicate only with pods that have a
    # namespace labeled environment == "development""
    policy = textwrap.dedent("""\
        apiVersion: projectcalico.org/v3
        kind: GlobalNetworkPolicy
        metadata:
          name: restrict-development-access
        spec:
          namespaceSelector: 'environment == "development"'
          ingress:
            - action: Allow
              source:
                namespaceSelector: 'environment == "development"'
          egress:
            - action: Allow
              destination:
                namespaceSelector: 'environment == "development"'
        """)
    _, rmap = engine_map(
        _namespace("dev-a", {"environment": "development"}),
        _namespace("dev-b", {"environment": "development"}),
        _namespace("prod", {"environment": "production"}),
        pod("app", "dev-a", {"app": "a"}),
        pod("app", "dev-b", {"app": "b"}),
        pod("app", "prod", {"app": "c"}),
        policy,
    )
    a, b, p = "dev-a/Pod/app", "dev-b/Pod/app", "prod/Pod/app"
    assert allowed(rmap, a, b) == ALL and allowed(rmap, b, a) == ALL
    assert allowed(rmap, p, a) == {}  # ingress only from development namespaces
    assert allowed(rmap, a, p) == {}  # egress only to them
    assert allowed(rmap, a, "ip:0.0.0.0/0") == {}
    assert allowed(rmap, p, "ip:0.0.0.0/0") == ALL  # prod is not selected


# --- "Use external IPs or networks rules in policy" ------------------------------------


def test_external_ips_in_policy() -> None:
    # "allows egress traffic from pods with the label color: red, if it goes to an IP
    # address in the 192.0.2.0/24 CIDR block"
    policy = textwrap.dedent("""\
        apiVersion: projectcalico.org/v3
        kind: NetworkPolicy
        metadata:
          name: allow-egress-external
          namespace: production
        spec:
          selector: color == 'red'
          types:
            - Egress
          egress:
            - action: Allow
              destination:
                nets:
                  - 192.0.2.0/24
        """)
    _, rmap = engine_map(
        pod("red", "production", {"color": "red"}),
        pod("blue", "production", {"color": "blue"}),
        policy,
    )
    red, blue = "production/Pod/red", "production/Pod/blue"
    assert allowed(rmap, red, "ip:192.0.2.0/24") == ALL
    outside = [e["id"] for e in map_to_json(rmap)["endpoints"] if e["id"].startswith("ip:")]
    assert len(outside) == 4  # 192.0.2.0/24, the IPv4 space around it, and ::/0
    for rng in outside:
        if rng != "ip:192.0.2.0/24":
            assert allowed(rmap, red, rng) == {}, rng  # ::/0 too: an IPv4 rule
    assert allowed(rmap, blue, red) == ALL  # ingress is not governed
    # Pods' addresses are not in a manifest: red -> blue meets the nets rule undecided.
    assert allowed(rmap, red, blue) == {}
    [unknown] = unknown_matches(rmap)
    assert "allow-egress-external egress[0]" in unknown and "cluster.yaml:" in unknown


# The deny-list example: a GlobalNetworkSet of addresses, and the policy that denies them
# (the doNotTrack lines are the example's; a test leaves them out to see the rule applied).
IP_DENY_LIST = textwrap.dedent("""\
    apiVersion: projectcalico.org/v3
    kind: GlobalNetworkSet
    metadata:
      name: ip-protect
      labels:
        ip-deny-list: 'true'
    spec:
      nets:
        - 192.0.2.55/32
        - 203.0.113.0/24
    ---
    apiVersion: projectcalico.org/v3
    kind: GlobalNetworkPolicy
    metadata:
      name: ip-protect
    spec:
      selector: apply-ip-protect == 'true'
      order: 0
      doNotTrack: true
      applyOnForward: true
      types:
        - Ingress
      ingress:
        - action: Deny
          source:
            selector: ip-deny-list == 'true' && !has(projectcalico.org/namespace)
    """)


def test_global_network_set_with_do_not_track_is_not_analysed() -> None:
    # doNotTrack policies apply to host endpoints only.
    docs = IP_DENY_LIST
    tree, rmap = engine_map(pod("web", "default", {"apply-ip-protect": "'true'"}), docs)
    assert any("GlobalNetworkPolicy/ip-protect" in u and "doNotTrack" in u for u in tree.unanalysed)
    assert allowed(rmap, "ip:192.0.2.55/32", "default/Pod/web") == ALL  # not evaluated


def test_global_network_set_as_a_labelled_range() -> None:
    # The same set, selected by a policy that applies to pods (no doNotTrack): the set's
    # ranges are denied, other addresses are not; `!has(projectcalico.org/namespace)` keeps
    # pods out of the selector.
    docs = IP_DENY_LIST.replace("  doNotTrack: true\n  applyOnForward: true\n", "")
    docs += "    - action: Pass\n"
    _, rmap = engine_map(
        pod("web", "default", {"apply-ip-protect": "'true'", "ip-deny-list": "'true'"}), docs
    )
    web = "default/Pod/web"
    assert allowed(rmap, "ip:192.0.2.55/32", web) == {}
    assert allowed(rmap, "ip:203.0.113.0/24", web) == {}
    others = [e["id"] for e in map_to_json(rmap)["endpoints"] if e["id"].startswith("ip:")]
    assert len(others) == 6  # the two sets' ranges, three IPv4 ranges around them, ::/0
    for rng in others:
        if rng not in ("ip:192.0.2.55/32", "ip:203.0.113.0/24"):
            assert allowed(rmap, rng, web) == ALL, rng
    assert allowed(rmap, web, web) == ALL  # a pod is not in the set's selector


# --- "Get started with policy tiers" and the Tier reference ----------------------------

DEVOPS = textwrap.dedent("""\
    apiVersion: projectcalico.org/v3
    kind: Tier
    metadata:
      name: devops
    spec:
      order: 300{default_action}
    ---
    apiVersion: projectcalico.org/v3
    kind: GlobalNetworkPolicy
    metadata:
      name: devops.stage-env
    spec:
      tier: devops
      order: 255
      selector: env == "stage"
      ingress:
        - action: Deny
          source:
            selector: env != "stage"
        - action: Pass{more}
      egress:
        - action: Deny
          destination:
            selector: env != "stage"
        - action: Pass
      types:
        - Ingress
        - Egress
    """)

APP_POLICY = textwrap.dedent("""\
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: only-from-stage-api, namespace: shop}
    spec:
      podSelector: {matchLabels: {app: db}}
      ingress:
        - from: [{podSelector: {matchLabels: {app: api}}}]
    """)


def _stage() -> list[str]:
    return [
        pod("db", "shop", {"env": "stage", "app": "db"}),
        pod("api", "shop", {"env": "stage", "app": "api"}),
        pod("batch", "shop", {"env": "stage", "app": "batch"}),
        pod("prod", "shop", {"env": "prod", "app": "api"}),
    ]


def test_tiers_pass_rule_continues_to_the_next_tier() -> None:
    # "The policy denies ingress and egress traffic to workloads that match selector
    # env == "stage" ... the policy adds a Pass action for both ingress and egress", so
    # the Kubernetes NetworkPolicy of the default tier decides what passes.
    _, rmap = engine_map(*_stage(), DEVOPS.format(default_action="", more=""), "---\n" + APP_POLICY)
    db = "shop/Pod/db"
    assert allowed(rmap, "shop/Pod/prod", db) == {}  # devops: Deny (env != stage)
    assert allowed(rmap, "shop/Pod/api", db) == ALL  # Pass, then the NetworkPolicy allows
    assert allowed(rmap, "shop/Pod/batch", db) == {}  # Pass, then the default tier denies
    assert allowed(rmap, "shop/Pod/api", "shop/Pod/batch") == ALL  # Pass, then the profile
    assert allowed(rmap, "shop/Pod/batch", "shop/Pod/prod") == {}  # egress Deny


def test_tiers_implicit_default_deny_at_the_end_of_a_tier() -> None:
    # Without the Pass rule, what the policy does not decide is dropped at the end of the
    # devops tier ("at the end of each tier is an implicit default deny").
    docs = DEVOPS.format(default_action="", more="").replace(
        "    - action: Pass\n  egress", "  egress"
    )
    policy = docs.replace("        - action: Pass\n      egress:", "      egress:")
    _, rmap = engine_map(*_stage(), policy, "---\n" + APP_POLICY)
    assert allowed(rmap, "shop/Pod/api", "shop/Pod/db") == {}
    assert allowed(rmap, "shop/Pod/prod", "shop/Pod/db") == {}


def test_tiers_default_action_pass() -> None:
    # "The other option, is to update tier's default action to Pass"
    docs = DEVOPS.format(default_action="\n  defaultAction: Pass", more="")
    policy = docs.replace("        - action: Pass\n      egress:", "      egress:")
    _, rmap = engine_map(*_stage(), policy, "---\n" + APP_POLICY)
    assert allowed(rmap, "shop/Pod/api", "shop/Pod/db") == ALL
    assert allowed(rmap, "shop/Pod/batch", "shop/Pod/db") == {}
    assert allowed(rmap, "shop/Pod/prod", "shop/Pod/db") == {}


def test_tiers_a_tier_no_policy_of_which_applies_is_skipped() -> None:
    # "if no policies within a tier apply to endpoints, the tier is skipped, and the
    # tier's implicit deny behavior is not executed"
    docs = DEVOPS.format(default_action="", more="").replace(
        'env == "stage"\n  ingress', 'env == "qa"\n  ingress'
    )
    _, rmap = engine_map(*_stage(), docs)
    assert allowed(rmap, "shop/Pod/prod", "shop/Pod/db") == ALL


def test_tier_explanation_names_tier_order_rule_and_line() -> None:
    _, rmap = engine_map(*_stage(), DEVOPS.format(default_action="", more=""), "---\n" + APP_POLICY)
    e = explain_pair(rmap, "shop/Pod/prod", "shop/Pod/db", "TCP 80")
    [deny] = [s for s in e.steps if s.verdict == "deny"]
    assert deny.tier == "Calico tier devops (order 300), policy order 255"
    assert (deny.policy, deny.rule) == ("GlobalNetworkPolicy/devops.stage-env", "ingress[0]")
    text = "".join([*_stage(), DEVOPS.format(default_action="", more=""), "---\n", APP_POLICY])
    assert deny.file == "cluster.yaml"
    assert text.splitlines()[deny.line - 1].strip() == "- action: Deny"  # the rule's own line


def test_tier_validation_follows_the_tier_reference() -> None:
    bad = (
        "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: default}\n"
        "spec: {order: 5}\n"
    )
    with pytest.raises(ManifestError, match="default tier must have order 1000000"):
        load_files({"t.yaml": bad})
    dotted = "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: a.b}\nspec: {}\n"
    with pytest.raises(ManifestError, match="Tier name"):
        load_files({"t.yaml": dotted})


def test_policy_of_a_tier_not_in_the_tree_is_not_analysed() -> None:
    docs = DEVOPS.format(default_action="", more="").split("---\n", 1)[1]  # no Tier object
    tree, rmap = engine_map(*_stage(), docs)
    assert any("tier devops is not in the tree" in u for u in tree.unanalysed)
    assert allowed(rmap, "shop/Pod/prod", "shop/Pod/db") == ALL  # not evaluated
