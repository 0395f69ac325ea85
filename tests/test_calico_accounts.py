"""Calico's service-account matches: ``serviceAccountSelector`` and a rule's
``serviceAccounts`` (``names``, ``selector``), over the ServiceAccounts of the tree.

The policies are transcribed by hand from Calico's documentation, "Use service accounts
rules in policy" (docs.tigera.io/calico/latest/network-policy/policy-rules/service-accounts:
the demo-calico policies of prod-engineering and the restrict-intern-access global policy);
the pods and ServiceAccounts around them are made up to exercise each stated fact. The
conversion they follow is libcalico-go's (updateprocessors/rules.go parseServiceAccounts,
k8s/conversion ServiceAccountToProfile; Apache-2.0).
"""

from __future__ import annotations

import textwrap

import pytest

from analysis.errors import ManifestError
from analysis.manifests import load_files
from tests.calico_examples import ALL, allowed, checked_map, pod


def _account(name: str, namespace: str, labels: dict[str, str] | None = None) -> str:
    shown = ", ".join(f"{k}: {v}" for k, v in (labels or {}).items())
    return textwrap.dedent(f"""\
        apiVersion: v1
        kind: ServiceAccount
        metadata: {{name: {name}, namespace: {namespace}, labels: {{{shown}}}}}
        ---
        """)


BY_NAMES = textwrap.dedent("""\
    apiVersion: projectcalico.org/v3
    kind: NetworkPolicy
    metadata:
      name: demo-calico
      namespace: prod-engineering
    spec:
      ingress:
        - action: Allow
          source:
            serviceAccounts:
              names:
                - api-service
                - user-auth-service
      selector: 'app == "db"'
    """)

BY_LABELS = textwrap.dedent("""\
    apiVersion: projectcalico.org/v3
    kind: NetworkPolicy
    metadata:
      name: demo-calico
      namespace: prod-engineering
    spec:
      ingress:
        - action: Allow
          source:
            serviceAccounts:
              selector: 'app == "web-frontend"'
      selector: 'app == "db"'
    """)

INTERNS = textwrap.dedent("""\
    apiVersion: projectcalico.org/v3
    kind: GlobalNetworkPolicy
    metadata:
      name: restrict-intern-access
    spec:
      serviceAccountSelector: 'role == "intern"'
      ingress:
        - action: Allow
          source:
            serviceAccounts:
              selector: 'role == "intern"'
      egress:
        - action: Allow
          destination:
            serviceAccounts:
              selector: 'role == "intern"'
    """)

DB = "prod-engineering/Pod/db"


def test_names_allow_pods_running_as_the_named_accounts() -> None:
    # "ingress traffic is allowed from any pod running as the service account api-service
    # or user-auth-service to pods labelled app: db" (in the policy's namespace).
    tree, rmap = checked_map(
        pod("db", "prod-engineering", {"app": "db"}),
        pod("api", "prod-engineering", {"app": "api"}, "api-service"),
        pod("auth", "prod-engineering", {"app": "auth"}, "user-auth-service"),
        pod("other", "prod-engineering", {"app": "api"}, "batch"),
        pod("plain", "prod-engineering", {"app": "api"}),
        pod("api", "staging", {"app": "api"}, "api-service"),
        BY_NAMES,
    )
    assert allowed(rmap, "prod-engineering/Pod/api", DB) == ALL
    assert allowed(rmap, "prod-engineering/Pod/auth", DB) == ALL
    assert allowed(rmap, "prod-engineering/Pod/other", DB) == {}
    assert allowed(rmap, "prod-engineering/Pod/plain", DB) == {}  # runs as default
    assert allowed(rmap, "staging/Pod/api", DB) == {}  # the policy's namespace only
    assert allowed(rmap, "ip:0.0.0.0/0", DB) == {}
    # names read the pod spec: no ServiceAccount manifest is needed
    assert not tree.unanalysed


def test_selector_reads_the_accounts_labels_not_the_pods() -> None:
    # "ingress traffic is allowed from any pod whose service account is labelled
    # app: web-frontend" — the pod's own label app: web-frontend does not count.
    tree, rmap = checked_map(
        _account("frontend", "prod-engineering", {"app": "web-frontend"}),
        _account("backend", "prod-engineering", {"app": "backend"}),
        pod("db", "prod-engineering", {"app": "db"}),
        pod("web", "prod-engineering", {"app": "x"}, "frontend"),
        pod("impostor", "prod-engineering", {"app": "web-frontend"}, "backend"),
        pod("prefixed", "prod-engineering", {"pcsa.app": "web-frontend"}, "backend"),
        BY_LABELS,
    )
    assert allowed(rmap, "prod-engineering/Pod/web", DB) == ALL
    assert allowed(rmap, "prod-engineering/Pod/impostor", DB) == {}
    # libcalico-go strips a pod's own pcsa. labels: a pod cannot pose as its account
    assert allowed(rmap, "prod-engineering/Pod/prefixed", DB) == {}
    assert not tree.unanalysed


def test_service_account_selector_selects_the_policys_pods() -> None:
    tree, rmap = checked_map(
        _account("intern", "dev", {"role": "intern"}),
        _account("staff", "dev", {"role": "staff"}),
        pod("a", "dev", {"app": "a"}, "intern"),
        pod("b", "dev", {"app": "b"}, "intern"),
        pod("s", "dev", {"app": "s"}, "staff"),
        pod("d", "dev", {"app": "d"}),
        INTERNS,
    )
    a, b, s, d = "dev/Pod/a", "dev/Pod/b", "dev/Pod/s", "dev/Pod/d"
    # interns reach interns only, and only interns reach them
    assert allowed(rmap, a, b) == ALL
    assert allowed(rmap, a, s) == {}
    assert allowed(rmap, s, a) == {}
    assert allowed(rmap, a, "ip:0.0.0.0/0") == {}
    # pods running as other accounts are not selected: their profile allows
    assert allowed(rmap, s, d) == ALL
    assert allowed(rmap, d, s) == ALL
    assert not tree.unanalysed


def test_account_labels_the_tree_lacks_are_reported_by_name_file_and_line() -> None:
    tree, rmap = checked_map(
        pod("db", "prod-engineering", {"app": "db"}),
        pod("web", "prod-engineering", {"app": "x"}, "frontend"),
        pod("api", "prod-engineering", {"app": "x"}),  # default: no labels, not reported
        pod("far", "elsewhere", {"app": "x"}, "far"),  # out of the rule's scope
        BY_LABELS,
    )
    assert allowed(rmap, "prod-engineering/Pod/web", DB) == {}  # labels taken as none
    (note,) = tree.unanalysed
    assert note.startswith("cluster.yaml:")
    assert "NetworkPolicy.projectcalico.org/demo-calico ingress[0]" in note
    assert "`source.serviceAccounts.selector`" in note
    assert "ServiceAccount prod-engineering/frontend" in note


def test_unknown_accounts_of_pods_a_policy_does_not_select_are_not_reported() -> None:
    tree, _ = checked_map(
        pod("a", "dev", {"app": "a"}, "nobody-described"),
        INTERNS.replace("spec:\n", "spec:\n  selector: app == 'z'\n"),
    )
    # The global policy's rules read account labels of every pod: the unknown one shows,
    # its serviceAccountSelector does not (the policy's selector leaves the pod out).
    assert tree.unanalysed
    assert not any("`serviceAccountSelector`" in n for n in tree.unanalysed)


def test_empty_service_accounts_match_constrains_nothing() -> None:
    # serviceAccounts: {} adds no selector (parseServiceAccounts gives ""), so the rule
    # is not even scoped to the policy's namespace.
    names = "names:\n            - api-service\n            - user-auth-service"
    policy = BY_NAMES.replace(f"serviceAccounts:\n          {names}", "serviceAccounts: {}")
    assert policy != BY_NAMES
    _, rmap = checked_map(
        pod("db", "prod-engineering", {"app": "db"}),
        pod("api", "staging", {"app": "api"}, "api-service"),
        policy,
    )
    assert allowed(rmap, "staging/Pod/api", DB) == ALL
    assert allowed(rmap, "ip:0.0.0.0/0", DB) == ALL


def test_a_name_with_a_quote_is_refused() -> None:
    policy = BY_NAMES.replace("- api-service", '- "it\'s"')
    with pytest.raises(ManifestError, match=r"serviceAccounts\.names"):
        load_files({"p.yaml": policy})
