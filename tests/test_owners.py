"""Owner rules: reading them strictly, and which rules match which opened paths."""

from __future__ import annotations

import fnmatch
from typing import TypedDict, Unpack

import pytest
from hypothesis import given
from hypothesis import strategies as st

from analysis.endpoint_facts import EndpointFacts
from analysis.reachability import Endpoint
from bot.inputs.analyze import DiffResult, analyze
from bot.review.owners import (
    EndpointSelector,
    OwnerRule,
    Owners,
    assign,
    codeowners_match,
    endpoint_matches,
    rules_for,
)
from bot.review.settings import SettingsError, parse_repo_settings
from tests.diff_builders import cause, external, opened, tcp, workload

# ---- reading ---------------------------------------------------------------------------

EXAMPLE = """\
owners:
  mode: first
  rules:
    - name: payments
      destination:
        namespaces: [payments]
        pod_labels: {app: db}
      teams: ["@acme/payments-owners"]
      users: [Alice]
      required_approvals: 2
    - name: internet
      destination: {cidrs: [0.0.0.0/0, "::/0"]}
      users: [plat]
    - name: prod
      environments: [overlays/prod*]
      files: [/policies/prod/]
      teams: [acme/sre]
break_glass:
  users: [oncall]
keep_approvals_when_delta_unchanged: true
"""


def test_the_documented_form_reads_every_field() -> None:
    s = parse_repo_settings(EXAMPLE)
    assert s.owners.mode == "first"
    payments, internet, prod = s.owners.rules
    assert payments.name == "payments" and payments.line == 4
    assert payments.users == frozenset({"alice"}) and payments.teams == ("acme/payments-owners",)
    assert payments.required_approvals == 2
    assert payments.destination == EndpointSelector(
        namespaces=("payments",), pod_labels=(("app", "db"),)
    )
    assert internet.destination is not None and internet.destination.cidrs == ("0.0.0.0/0", "::/0")
    assert prod.environments == ("overlays/prod*",) and prod.files == ("/policies/prod/",)
    assert s.break_glass is not None and s.break_glass.users == frozenset({"oncall"})
    assert s.keep_approvals_when_delta_unchanged is True


def test_a_plain_list_is_every_matching_rule() -> None:
    s = parse_repo_settings("owners:\n  - destination: {outside: true}\n    users: [a]\n")
    assert s.owners.mode == "all" and s.owners.rules[0].name == "owners[0]"
    assert s.owners.rules[0].destination == EndpointSelector(outside=True)


def test_defaults_change_nothing() -> None:
    s = parse_repo_settings("required_approvals: 1\n")
    assert s.owners.rules == () and s.break_glass is None
    assert s.keep_approvals_when_delta_unchanged is False


@pytest.mark.parametrize(
    ("text", "key", "line"),
    [
        (
            "owners:\n  - destination: {namespace: [a]}\n    users: [a]\n",
            "owners[0].destination.namespace",
            2,
        ),
        ("owners:\n  - users: [a]\n", "owners[0]", 2),
        ("owners:\n  rules:\n  - destination: {namespaces: [a]}\n", "owners.rules[0]", 3),
        (
            "owners:\n  - destination: {cidrs: [10.0.0.1/8]}\n    users: [a]\n",
            "owners[0].destination.cidrs",
            2,
        ),
        (
            "owners:\n  - destination: {cidrs: [10.0.0.0/8], namespaces: [a]}\n    users: [a]\n",
            "owners[0].destination.cidrs",
            2,
        ),
        (
            "owners:\n  - destination: {namespaces: [a]}\n    users: [a]\n"
            "    required_approvals: 2\n",
            "owners[0].required_approvals",
            4,
        ),
        ("owners:\n  mode: any\n  rules: []\n", "owners.mode", 2),
        (
            "owners:\n  - name: x\n    files: ['**']\n    users: [a]\n"
            "  - name: x\n    files: ['*']\n    users: [b]\n",
            "owners[1].name",
            5,
        ),
        (
            "owners:\n  - source: {pod_labels: {app: 5}}\n    users: [a]\n",
            "owners[0].source.pod_labels.app",
            2,
        ),
        ("owners:\n  - files: ['!secret/**']\n    users: [a]\n", "owners[0].files", 2),
        ("owners:\n  - files: ['a/**b']\n    users: [a]\n", "owners[0].files", 2),
        (
            "owners:\n  - source: {workloads: [payments/db]}\n    users: [a]\n",
            "owners[0].source.workloads",
            2,
        ),
        (
            "owners:\n  - source: {outside: yes please}\n    users: [a]\n",
            "owners[0].source.outside",
            2,
        ),
        ("owners:\n  - files: ['**']\n    teams: [acme]\n", "owners[0].teams", 3),
        ("break_glass: {}\n", "break_glass", 1),
        ("break_glass: {users: [not a login]}\n", "break_glass.users", 1),
        ("keep_approvals_when_delta_unchanged: 1\n", "keep_approvals_when_delta_unchanged", 1),
    ],
)
def test_mistakes_name_the_key_and_line(text: str, key: str, line: int) -> None:
    with pytest.raises(SettingsError) as caught:
        parse_repo_settings(text)
    assert caught.value.key == key
    assert caught.value.line == line
    assert str(caught.value).startswith(f".github/reachdiff.yml:{line}: {key}: ")


# ---- matching --------------------------------------------------------------------------

DB = Endpoint("payments/StatefulSet/db", "StatefulSet", "payments", "db")
WEB = workload("shop/Deployment/web")
OUTSIDE_NS = Endpoint("~ns[team=frontend]/*", "Outside", "~ns[team=frontend]", "*")
OUTSIDE_ANY = Endpoint("~ns[*]/*", "Outside", "~ns[*]", "*")
OUTSIDE_PAYMENTS = Endpoint("~payments/*", "Outside", "payments", "*")
FACTS = {
    DB.id: EndpointFacts(
        DB.id,
        (("app", "db"),),
        True,
        (("kubernetes.io/metadata.name", "payments"), ("tier", "pci")),
        True,
    ),
    WEB.id: EndpointFacts(
        WEB.id, (("app", "web"),), True, (("kubernetes.io/metadata.name", "shop"),), False
    ),
    OUTSIDE_NS.id: EndpointFacts(
        OUTSIDE_NS.id,
        (),
        False,
        (("kubernetes.io/metadata.name", "~ns[team=frontend]"), ("team", "frontend")),
        False,
    ),
    OUTSIDE_ANY.id: EndpointFacts(
        OUTSIDE_ANY.id,
        (),
        False,
        (("kubernetes.io/metadata.name", "~ns[*]"), ("team", "~other")),
        False,
    ),
    OUTSIDE_PAYMENTS.id: EndpointFacts(
        OUTSIDE_PAYMENTS.id,
        (("app", "~other"),),
        False,
        FACTS_DB_NS := (("kubernetes.io/metadata.name", "payments"), ("tier", "pci")),
        True,
    ),
}


def matches(selector: EndpointSelector, endpoint: Endpoint) -> bool:
    return endpoint_matches(selector, endpoint, FACTS.get(endpoint.id))


def test_namespaces_by_name_and_glob() -> None:
    assert matches(EndpointSelector(namespaces=("payments",)), DB)
    assert matches(EndpointSelector(namespaces=("pay*",)), DB)
    assert not matches(EndpointSelector(namespaces=("shop",)), DB)
    assert matches(EndpointSelector(namespaces=("payments",)), OUTSIDE_PAYMENTS)
    # An undefined namespace outside the repository may have any name it does not define.
    assert matches(EndpointSelector(namespaces=("billing",)), OUTSIDE_NS)
    assert not matches(EndpointSelector(namespaces=("billing",)), external("0.0.0.0/0"))


def test_labels_exact_for_workloads_possible_for_representatives() -> None:
    pci = EndpointSelector(namespace_labels=(("tier", "pci"),))
    assert matches(pci, DB) and matches(pci, OUTSIDE_PAYMENTS)
    # Facts that do not know shop's labels (not exact): it may be pci.
    assert matches(pci, WEB)
    frontend = EndpointSelector(namespace_labels=(("team", "frontend"),))
    assert matches(frontend, OUTSIDE_NS)
    assert matches(frontend, OUTSIDE_ANY)  # team=~other: a value no policy names
    assert not matches(EndpointSelector(namespace_labels=(("team", "payments"),)), OUTSIDE_NS)
    assert not matches(frontend, DB)  # defined, and not labelled so
    db = EndpointSelector(pod_labels=(("app", "db"),))
    assert matches(db, DB) and not matches(db, WEB)
    assert matches(db, OUTSIDE_PAYMENTS) and matches(db, OUTSIDE_NS)


def test_workloads_outside_and_cidrs() -> None:
    assert matches(EndpointSelector(workloads=("payments/*/d?",)), DB)
    assert not matches(EndpointSelector(workloads=("payments/Deployment/*",)), DB)
    assert not matches(EndpointSelector(workloads=("payments/*/*",)), OUTSIDE_PAYMENTS)
    assert matches(EndpointSelector(outside=True), OUTSIDE_NS)
    assert not matches(EndpointSelector(outside=True), DB)
    assert matches(EndpointSelector(outside=False, namespaces=("payments",)), DB)
    internet = EndpointSelector(cidrs=("0.0.0.0/0",))
    assert matches(internet, external("203.0.113.0/24"))
    assert not matches(internet, external("2001:db8::/32"))
    assert not matches(internet, DB)
    assert matches(EndpointSelector(cidrs=("10.1.0.0/16",)), external("10.0.0.0/8"))
    assert not matches(EndpointSelector(cidrs=("10.1.0.0/16",)), external("192.168.0.0/16"))
    assert not matches(EndpointSelector(namespaces=("*",)), external("10.0.0.0/8"))


class RuleFields(TypedDict, total=False):
    """The optional fields of an OwnerRule a test sets."""

    required_approvals: int
    destination: EndpointSelector | None
    source: EndpointSelector | None
    environments: tuple[str, ...]
    files: tuple[str, ...]


def rule(index: int, **fields: Unpack[RuleFields]) -> OwnerRule:
    return OwnerRule(
        index=index, line=index + 1, name=f"r{index}", users=frozenset({"u"}), teams=(), **fields
    )


def test_rules_combine_their_criteria_and_mode_picks_all_or_first() -> None:
    to_db = opened(
        WEB, DB, tcp(5432), cause("payments/NetworkPolicy/db", "policies/pay/db.yaml", 9)
    )
    to_net = opened(
        WEB,
        external("0.0.0.0/0"),
        tcp(443),
        cause("shop/NetworkPolicy/egress", "policies/shop/egress.yaml", 3),
    )
    other = opened(OUTSIDE_ANY, WEB, tcp(80), cause("shop/NetworkPolicy/web", "shop/web.yaml", 1))
    payments = rule(0, destination=EndpointSelector(namespaces=("payments",)))
    from_shop = rule(1, source=EndpointSelector(namespaces=("shop",)), files=("policies/",))
    internet = rule(2, destination=EndpointSelector(cidrs=("0.0.0.0/0",)))
    everything = Owners((payments, from_shop, internet))
    assert [r.index for r in rules_for(to_db, everything, FACTS)] == [0, 1]
    assert [r.index for r in rules_for(to_net, everything, FACTS)] == [1, 2]
    assert rules_for(other, everything, FACTS) == ()
    first = Owners(everything.rules, "first")
    assert [r.index for r in rules_for(to_db, first, FACTS)] == [0]
    assert [r.index for r in rules_for(to_net, first, FACTS)] == [1]
    by_rule, unmatched = assign([to_db, to_net, other], everything, FACTS)
    assert by_rule == {0: (to_db,), 1: (to_db, to_net), 2: (to_net,)}
    assert unmatched == (other,)


def test_environments_and_files() -> None:
    prod = Endpoint(
        "overlays/prod:shop/Deployment/web", "Deployment", "shop", "web", (), "overlays/prod"
    )
    dev = Endpoint(
        "overlays/dev:shop/Deployment/web", "Deployment", "shop", "web", (), "overlays/dev"
    )
    c = cause("shop/NetworkPolicy/web", "overlays/prod/patch.yaml", 4)
    in_prod, in_dev = opened(prod, prod, tcp(80), c), opened(dev, dev, tcp(80))
    r = rule(0, environments=("overlays/prod*",))
    assert rules_for(in_prod, Owners((r,)), {}) and not rules_for(in_dev, Owners((r,)), {})
    anchored = parse_repo_settings(
        "owners:\n  - environments: [/overlays/prod*/]\n    users: [a]\n"
    ).owners.rules[0]
    assert anchored.environments == ("overlays/prod*",)
    assert rules_for(in_prod, Owners((anchored,)), {})
    plain = rule(0, environments=(".",))
    assert rules_for(opened(WEB, DB, tcp(1)), Owners((plain,)), FACTS)
    files = rule(0, files=("*.yaml",))
    assert rules_for(in_prod, Owners((files,)), {})
    assert not rules_for(in_dev, Owners((files,)), {})  # no cause, no file to match


# ---- CODEOWNERS globs ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [  # the examples of GitHub's CODEOWNERS documentation
        ("*.js", "src/app/main.js", True),
        ("*.js", "main.go", False),
        ("/build/logs/", "build/logs/a/b.log", True),
        ("/build/logs/", "x/build/logs/b.log", False),
        ("docs/*", "docs/getting-started.md", True),
        ("docs/*", "docs/build-app/troubleshooting.md", False),
        ("apps/", "apps/a.yaml", True),
        ("apps/", "deep/apps/x/a.yaml", True),
        ("apps/", "apps", False),
        ("/docs/", "docs/a.md", True),
        ("/docs/", "x/docs/a.md", False),
        ("/scripts/", "scripts/deep/x.sh", True),
        ("**/logs", "deep/logs/a.log", True),
        ("**/logs", "logs/a.log", True),
        ("/apps/github", "apps/github/x.yaml", True),
        ("/apps/github", "apps/github", True),
        ("apps/github", "x/apps/github/a.yaml", False),
        ("policies/**/db.yaml", "policies/db.yaml", True),
        ("policies/**/db.yaml", "policies/a/b/db.yaml", True),
        ("db.yaml", "policies/a/db.yaml", True),
        ("*", "anything/at/all.yaml", True),
        ("**", "anything/at/all.yaml", True),
        ("p?d/", "prd/x", True),
    ],
)
def test_codeowners_examples(pattern: str, path: str, expected: bool) -> None:
    assert codeowners_match(pattern, path) is expected


def reference_match(pattern: str, path: str) -> bool:
    """An independent reading of the same rules: segment by segment, recursively."""
    directory = pattern.endswith("/")
    anchored = "/" in pattern.rstrip("/")
    want = pattern.strip("/").split("/")
    have = path.split("/")

    def seg(p: str, s: str) -> bool:
        return fnmatch.fnmatchcase(s, p.replace("[", "[[]"))

    def walk(i: int, j: int) -> bool:
        if i == len(want):
            rest = len(have) - j
            if directory:
                return rest >= 1
            if want[-1] == "*":
                return rest == 0
            return True  # a file, or a directory with everything below it
        if want[i] == "**":
            if i == len(want) - 1:  # ** at the end: something below (a directory, then)
                return len(have) - j >= (2 if directory else 1)
            return any(walk(i + 1, k) for k in range(j, len(have)))
        return j < len(have) and seg(want[i], have[j]) and walk(i + 1, j + 1)

    starts = [0] if anchored else range(len(have))
    return any(walk(0, j) for j in starts)


_SEGMENTS = st.sampled_from(["a", "b", "ab", "x.yaml", "*", "a*", "?", "**", "*.yaml"])
_NAMES = st.sampled_from(["a", "b", "ab", "x.yaml", "b.yaml", "aa"])


@given(
    st.lists(_SEGMENTS, min_size=1, max_size=4),
    st.booleans(),
    st.booleans(),
    st.lists(_NAMES, min_size=1, max_size=5),
)
def test_codeowners_against_a_reference(
    segments: list[str], lead: bool, trail: bool, parts: list[str]
) -> None:
    pattern = ("/" if lead else "") + "/".join(segments) + ("/" if trail else "")
    path = "/".join(parts)
    assert codeowners_match(pattern, path) is reference_match(pattern, path), (pattern, path)


def test_facts_of_a_real_diff_know_what_is_exact() -> None:
    base = {
        "ns.yaml": b"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: payments\n"
        b"  labels: {tier: pci}\n",
        "db.yaml": b"apiVersion: v1\nkind: Pod\nmetadata: {name: db, namespace: payments, "
        b"labels: {app: db}}\nspec: {containers: [{name: c, image: i}]}\n",
        "web.yaml": b"apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: shop, "
        b"labels: {app: web}}\nspec: {containers: [{name: c, image: i}]}\n",
        "deny.yaml": b"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
        b"metadata: {name: db, namespace: payments}\n"
        b"spec: {podSelector: {matchLabels: {app: db}}, policyTypes: [Ingress]}\n",
    }
    head = dict(base)
    head["deny.yaml"] = (
        b"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
        b"metadata: {name: db, namespace: payments}\n"
        b"spec:\n  podSelector: {matchLabels: {app: db}}\n  policyTypes: [Ingress]\n"
        b"  ingress:\n  - from:\n    - namespaceSelector: {matchLabels: {team: frontend}}\n"
        b"    - podSelector: {matchLabels: {app: web}}\n"
        b"    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: shop}}\n"
    )
    result = analyze(base, head, cluster_scope="partial")
    assert isinstance(result, DiffResult)
    facts = {f.id: f for f in result.endpoint_facts}
    db, web = facts["payments/Pod/db"], facts["shop/Pod/web"]
    assert db.pod_exact and db.namespace_exact and ("tier", "pci") in db.namespace_labels
    # shop is only named: its name label alone, exactly (as the engine sees it)
    assert web.namespace_exact and web.namespace_labels == (
        ("kubernetes.io/metadata.name", "shop"),
    )
    outside = [f for f in facts.values() if f.id.startswith("~ns[")]
    assert outside and all(not f.pod_exact and not f.namespace_exact for f in outside)
    assert any(("team", "frontend") in f.namespace_labels for f in outside)
    pci = EndpointSelector(namespace_labels=(("tier", "pci"),))
    frontend = EndpointSelector(namespace_labels=(("team", "frontend"),))
    by_id = {c.src.id: c for c in result.opened}
    assert not endpoint_matches(pci, by_id["shop/Pod/web"].src, web)
    assert all(
        endpoint_matches(frontend, by_id[f.id].src, f)
        for f in outside
        if f.id in by_id and ("team", "frontend") in f.namespace_labels
    )
