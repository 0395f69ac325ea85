"""Reading Intent and ConnectivityTest documents: strict validation with file and line,
and the manifest reader leaving them alone."""

from __future__ import annotations

import pytest

from analysis.check import check, declared_map
from analysis.customkinds import WorkloadKind
from analysis.errors import ManifestError
from analysis.intents import load_declarations
from analysis.manifests import load_files
from analysis.ports import ConnectionSet, PortSet

POD = """\
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop, labels: {app: web}}
spec: {containers: [{name: c, image: x}]}
"""

INTENT = """\
apiVersion: reachdiff.io/v1alpha1
kind: Intent
metadata: {name: shop}
spec:
  scope:
  - namespace: shop
  allow:
  - from: {namespace: [shop, other], labels: {app: web}}
    to:
      namespaceSelector:
        matchExpressions: [{key: team, operator: In, values: [db]}]
    ports: TCP 5432,6000-6010; UDP 53
    required: true
  deny:
  - from: {cidr: 0.0.0.0/0}
    to: {workload: Pod/web}
"""


def test_reads_every_field() -> None:
    decls = load_declarations({"intents.yaml": INTENT, "pod.yaml": POD})
    (intent,) = decls.intents
    assert intent.name == "shop" and intent.source.line == 1
    (allow,) = intent.allow
    assert allow.required and allow.source.line == 8
    assert allow.src.namespaces == ("other", "shop")
    assert str(allow.src.pod_selector) == "app=web"
    assert str(allow.dst.namespace_selector) == "team in (db)"
    assert allow.ports == ConnectionSet.of(
        {"TCP": PortSet.of((5432, 5432), (6000, 6010)), "UDP": PortSet.single(53)}
    )
    (deny,) = intent.deny
    assert str(deny.src.cidr) == "0.0.0.0/0" and deny.dst.workloads == (("Pod", "web"),)
    assert deny.ports.is_all()


def test_declarations_are_neither_workloads_nor_unmodelled_kinds() -> None:
    tree = load_files({"intents.yaml": INTENT, "pod.yaml": POD})
    assert [w.id for w in tree.workloads] == ["shop/Pod/web"]
    assert tree.unmodelled == ()
    # Not even when the settings name the kind as one whose objects run pods.
    kinds = (WorkloadKind("Intent"), WorkloadKind("ConnectivityTest", "reachdiff.io"))
    tree = load_files({"intents.yaml": INTENT, "pod.yaml": POD}, workload_kinds=kinds)
    assert [w.id for w in tree.workloads] == ["shop/Pod/web"]
    # Any version of the group is the reader's: a future one is refused, not run as pods.
    future = INTENT.replace("v1alpha1", "v1beta1").replace("kind: Intent", "kind: NetworkPolicy")
    assert load_files({"intents.yaml": future, "pod.yaml": POD}).unmodelled == ()


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        (
            "apiVersion: reachdiff.io/v1\nkind: Intent\n",
            1,
            "write apiVersion: reachdiff.io/v1alpha1",
        ),
        ("apiVersion: reachdiff.io/v1alpha1\nkind: Policy\n", 1, "not a reachdiff.io kind"),
        (
            "apiVersion: reachdiff.io/v1alpha1\nkind: Intent\nmetadata: {name: a}\n"
            "spec:\n  allow:\n  - from: {}\n    to: {}\n    port: TCP 80\n",
            6,
            "unknown field port",
        ),
        (
            "apiVersion: reachdiff.io/v1alpha1\nkind: Intent\nmetadata: {name: a}\n"
            "spec:\n  deny:\n  - from: {}\n    to: {}\n    ports: tcp 80\n",
            6,
            "is not TCP, UDP or SCTP",
        ),
        (
            "apiVersion: reachdiff.io/v1alpha1\nkind: Intent\nmetadata: {name: a}\n"
            "spec:\n  deny:\n  - from: {}\n    to: {}\n    ports: TCP 0-80\n",
            6,
            "within 1-65535",
        ),
        (
            "apiVersion: reachdiff.io/v1alpha1\nkind: Intent\nmetadata: {name: a}\n"
            "spec:\n  deny:\n  - from:\n      cidr: 10.0.0.0/8\n      namespace: x\n    to: {}\n",
            7,
            "`cidr` with pod fields",
        ),
        (
            "apiVersion: reachdiff.io/v1alpha1\nkind: Intent\nmetadata: {name: a}\n"
            "spec:\n  deny:\n  - to: {}\n",
            6,
            "needs `from`",
        ),
        (
            "apiVersion: reachdiff.io/v1alpha1\nkind: Intent\nmetadata: {name: a}\nspec: {}\n",
            4,
            "declares nothing",
        ),
        (
            "apiVersion: reachdiff.io/v1alpha1\nkind: ConnectivityTest\nmetadata: {name: a}\n"
            "spec:\n  cases:\n  - {from: {}, to: {}, expect: open}\n",
            6,
            "must be allowed or denied",
        ),
        (
            "apiVersion: reachdiff.io/v1alpha1\nkind: Intent\nmetadata: {name: a}\n"
            "spec:\n  scope:\n  - {workload: deployment/web}\n",
            6,
            "write Kind/name",
        ),
        (
            "apiVersion: reachdiff.io/v1alpha1\nkind: Intent\nmetadata: {name: a}\n"
            "spec:\n  scope:\n  - podSelector:\n      matchExpressions:\n"
            "      - {key: app, operator: In}\n",
            8,
            "needs at least one value",
        ),
        (
            "apiVersion: reachdiff.io/v1alpha1\nkind: Intent\nmetadata: {name: a}\n"
            "spec:\n  scope:\n  - {namespace: shop, direction: Ingress}\n",
            6,
            "must be ingress (paths into the scope) or egress",
        ),
        (
            "apiVersion: reachdiff.io/v1alpha1\nkind: Intent\nmetadata: {name: a}\n"
            "spec:\n  allow:\n  - {from: {direction: egress}, to: {}}\n",
            6,
            "unknown field",
        ),
    ],
)
def test_strict_validation_names_file_line_and_fix(text: str, line: int, words: str) -> None:
    with pytest.raises(ManifestError) as caught:
        load_declarations({"declared/x.yaml": text})
    assert (caught.value.file, caught.value.line) == ("declared/x.yaml", line)
    assert words in caught.value.message


def test_duplicate_names_are_refused_with_the_first_place() -> None:
    doc = "apiVersion: reachdiff.io/v1alpha1\nkind: Intent\nmetadata: {name: a}\n"
    doc += "spec: {scope: [{}]}\n"
    with pytest.raises(ManifestError, match=r"already defined at a.yaml:1") as caught:
        load_declarations({"a.yaml": doc, "b.yaml": doc})
    assert caught.value.file == "b.yaml"


def test_a_file_without_the_group_is_not_read_again() -> None:
    # A broken file elsewhere is the manifest reader's business, not this one's.
    assert not load_declarations({"x.yaml": "a: [", "y.txt": "reachdiff.io"})


def test_shop_example_head_breaks_the_declared_payments_scope() -> None:
    from pathlib import Path

    root = Path(__file__).parent.parent / "examples" / "shop"
    declared = (root / "intents" / "payments.yaml").read_text()
    results = {}
    for side in ("base", "head"):
        files: dict[str, bytes | str] = {
            str(p.relative_to(root / side)): p.read_bytes() for p in (root / side).rglob("*.yaml")
        }
        files["intents/payments.yaml"] = declared
        decls = load_declarations(files)
        results[side] = check(declared_map(load_files(files), decls), decls)
    assert not [v for v in results["base"].violations if v.type == "forbidden"]
    forbidden = [v for v in results["head"].violations if v.type == "forbidden"]
    assert {v.src.id for v in forbidden if v.src} == {
        "catalog/Deployment/catalog-api",
        "catalog/StatefulSet/catalog-redis",
        "checkout/CronJob/order-reporter",
        "checkout/Deployment/cart",
    }
    assert all(v.dst and v.dst.id == "payments/StatefulSet/payments-db" for v in forbidden)
    cited = {(c.policy, c.file, c.line) for v in forbidden for c in v.because}
    assert ("payments/NetworkPolicy/payments-db", "policies/payments/payments-db.yaml", 24) in cited
    assert all((v.intent.entry, v.intent.line) == ("deny[0]", 16) for v in forbidden)


TWO_TEAMS = """\
apiVersion: reachdiff.io/v1alpha1
kind: Intent
metadata: {name: shop-team}
spec:
  scope: [{namespace: shop}]
  allow:
  - {from: {namespace: shop}, to: {namespace: db}, ports: TCP 5432}
---
apiVersion: reachdiff.io/v1alpha1
kind: Intent
metadata: {name: db-team}
spec:
  scope: [{namespace: db}]
"""
TWO_PODS = (
    POD
    + """\
---
apiVersion: v1
kind: Pod
metadata: {name: pg, namespace: db, labels: {app: pg}}
spec: {containers: [{name: c, image: x}]}
"""
)


def test_several_intents_share_their_declarations_and_each_owner_is_told() -> None:
    files = {"intents.yaml": TWO_TEAMS, "pods.yaml": TWO_PODS}
    decls = load_declarations(files)
    found = check(declared_map(load_files(files), decls), decls).violations
    web_to_pg = [
        (v.intent.name, str(v.ports))
        for v in found
        if v.src and v.dst and (v.src.id, v.dst.id) == ("shop/Pod/web", "db/Pod/pg")
    ]
    # The shop team's allow declares TCP 5432 for the db team's scope too; the rest of
    # the open path is undeclared for both teams, each told once.
    rest = "TCP 1-5431,5433-65535; UDP all; SCTP all"
    assert sorted(web_to_pg) == [("db-team", rest), ("shop-team", rest)]


def _web_pg_paths(scope: str) -> dict[str, set[tuple[str, str]]]:
    """Who is told of the undeclared paths between shop/web and db/pg, per intent."""
    text = TWO_TEAMS.replace("scope: [{namespace: db}]", f"scope: [{scope}]")
    files = {"intents.yaml": text, "pods.yaml": TWO_PODS}
    decls = load_declarations(files)
    found = check(declared_map(load_files(files), decls), decls).violations
    out: dict[str, set[tuple[str, str]]] = {}
    for v in found:
        if v.src and v.dst and {v.src.id, v.dst.id} == {"shop/Pod/web", "db/Pod/pg"}:
            out.setdefault(v.intent.name, set()).add((v.src.id, v.dst.id))
    return out


def test_a_scope_entry_s_direction_limits_the_paths_it_judges() -> None:
    both = {("shop/Pod/web", "db/Pod/pg"), ("db/Pod/pg", "shop/Pod/web")}
    assert _web_pg_paths("{namespace: db}")["db-team"] == both
    assert _web_pg_paths("{namespace: db, direction: ingress}")["db-team"] == {
        ("shop/Pod/web", "db/Pod/pg")
    }
    assert _web_pg_paths("{namespace: db, direction: egress}")["db-team"] == {
        ("db/Pod/pg", "shop/Pod/web")
    }
    decls = load_declarations({"i.yaml": TWO_TEAMS.replace("db}]", "db, direction: egress}]")})
    assert [i.direction(0) for i in decls.intents] == ["egress", ""]
