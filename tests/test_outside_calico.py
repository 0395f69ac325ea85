"""Representatives (``cluster_scope: partial``) of trees with Calico policies, against the
Calico brute-force reference: every concrete pod the tree does not define decides like the
endpoint that stands for it (as ``tests/test_outside_properties.py`` for the Kubernetes
kinds), now that Calico selectors split outside pods as the selectors they are."""

from __future__ import annotations

from typing import Any

from hypothesis import given, note, settings
from hypothesis import strategies as st

from analysis.calicocompile import outside_selectors
from analysis.ciliummodel import SERVICE_ACCOUNT
from analysis.manifests import load_files
from analysis.model import LabelRequirement, LabelSelector
from analysis.outside import outside_world
from analysis.reachability import compute_map
from tests.calico_strategies import ACCOUNT_KEYS
from tests.reference import Endpoint, Obj, RefWorkload
from tests.reference_calico import CalicoCluster
from tests.reference_outside import concrete_namespace, concrete_pod
from tests.strategies import NS_KEYS, POD_KEYS, VALUES, Draw
from tests.strategies_cilium import SERVICE_ACCOUNTS
from tests.test_outside_properties import check_representatives
from tests.test_properties_calico import PROFILE, _files, mixed_clusters

OUTSIDE_NAMES = ("default", "alpha", "beta", "gamma", "zz-outside")
# The strategies' values, and values that match Calico's string conditions (over 'a' and
# 'b') in every combination: one and not another (ab starts with a, does not end with it),
# both, neither (x), one inside (xab contains a and b, at neither end).
STRING_VALUES = (*VALUES, "ab", "ba", "aa", "abx", "xba", "xab", "x")


def concrete_labels(keys: tuple[str, ...]) -> st.SearchStrategy[dict[str, str]]:
    return st.dictionaries(st.sampled_from(keys), st.sampled_from(STRING_VALUES), max_size=3)


class OutsideCalicoCluster(CalicoCluster):
    """The Calico reference with namespaces whose policies are unknown (``unknown``): a pod
    there is under no Calico or Kubernetes policy of the tree (its own may be anywhere),
    only the AdminNetworkPolicies (a matching Allow or Deny), as in docs/semantics.md."""

    def __init__(self, objects: list[Obj], unknown: set[str]) -> None:
        super().__init__(objects)
        self.unknown = frozenset(unknown)

    def _walk(
        self,
        direction: str,
        owner: Endpoint,
        peer: Endpoint,
        protocol: str,
        port: int,
        dst: Endpoint,
    ) -> bool | None:
        if isinstance(owner, RefWorkload) and owner.namespace in self.unknown:
            field = direction.lower()
            action = self._first_match(self.anps, field, owner, peer, protocol, port, dst)
            return action != "Deny"
        return super()._walk(direction, owner, peer, protocol, port, dst)


Case = tuple[list[dict[str, Any]], dict[str, str], list[dict[str, Any]], list[dict[str, Any]]]
OTHER_ACCOUNT = "zz-sa"  # an account no selector of the strategies names


@st.composite
def partial_calico_cases(draw: Draw) -> Case:
    """A tree, and concrete namespaces, pods and service accounts it does not define: a
    pod runs as an account the tree defines, or as one it does not (labelled, but for
    ``default``: Kubernetes creates it without labels)."""
    objects = draw(mixed_clusters())
    files = _files(draw, objects)
    tree = load_files(files)
    defined = sorted(n.name for n in tree.namespaces)
    known = {(a.namespace, a.name) for a in tree.calico.service_accounts} if tree.calico else set()
    free = [n for n in OUTSIDE_NAMES if n not in defined]
    names = draw(st.lists(st.sampled_from(free), min_size=1, max_size=3, unique=True))
    namespaces = [concrete_namespace(n, draw(concrete_labels((*NS_KEYS, "zone")))) for n in names]
    extra: list[dict[str, Any]] = []
    pods = []
    beside = sorted({ns for ns, _ in known if ns in defined})
    for i in range(draw(st.integers(1, 5))):
        labels = draw(concrete_labels((*POD_KEYS, "role")))
        if i and beside and draw(st.booleans()):
            # Beside an account the tree labels, running as one it does not: selectors
            # naming both must still tell their pods apart.
            namespace = draw(st.sampled_from(beside))
            others = [a for a in (*SERVICE_ACCOUNTS, OTHER_ACCOUNT) if (namespace, a) not in known]
            account = draw(st.sampled_from(others))
        else:
            namespace = draw(st.sampled_from(names if i == 0 else [*defined, *names]))
            account = draw(st.sampled_from((*SERVICE_ACCOUNTS, OTHER_ACCOUNT)))
        pod = concrete_pod(namespace, f"zz-concrete-{i}", labels)
        pod["spec"]["serviceAccountName"] = account
        pods.append(pod)
        made = {(a["metadata"]["namespace"], a["metadata"]["name"]) for a in extra}
        if account == "default" or (namespace, account) in known | made:
            continue
        meta = {"name": account, "namespace": namespace}
        meta["labels"] = draw(concrete_labels(ACCOUNT_KEYS))
        extra.append({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta})
    note(f"concrete: {namespaces} {pods} {extra}")
    return objects, files, namespaces, [*pods, *extra]


@settings(PROFILE, max_examples=min(PROFILE.max_examples, 120))
@given(partial_calico_cases())
def test_a_representative_decides_like_every_pod_it_stands_for_under_calico(case: Case) -> None:
    objects, files, namespaces, concrete_objects = case
    check_representatives(files, objects, namespaces, concrete_objects, OutsideCalicoCluster)


CALICO_NP = (
    "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\n"
    "metadata: {name: p, namespace: shop}\n"
    "spec:\n  selector: app == 'web' && tier in {'api', 'db'}\n  types: [Ingress]\n"
    "  ingress:\n  - action: Allow\n    source:\n"
    "      namespaceSelector: team == 'edge'\n      selector: app == 'proxy' && !has(debug)\n"
)
GNP = (
    "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: g}\n"
    "spec:\n  namespaceSelector: team == 'edge' || zone == 'a'\n  selector: app == 'web'\n"
    "  types: [Ingress]\n  ingress: [{action: Deny}]\n"
)


def test_conjunctions_split_outside_pods_as_the_selectors_they_are() -> None:
    tree = load_files({"p.yaml": CALICO_NP})
    namespaces, pods = outside_selectors(tree)
    edge = LabelSelector((), (LabelRequirement("team", "In", ("edge",)),))
    assert namespaces == [edge]
    assert pods == [
        (
            "shop",
            None,
            LabelSelector(
                (),
                (
                    LabelRequirement("app", "In", ("web",)),
                    LabelRequirement("tier", "In", ("api", "db")),
                ),
            ),
        ),
        (
            None,
            edge,
            LabelSelector(
                (),
                (
                    LabelRequirement("app", "In", ("proxy",)),
                    LabelRequirement("debug", "DoesNotExist"),
                ),
            ),
        ),
    ]


def test_a_global_policys_disjunctive_namespace_selector_splits_pods_in_every_namespace() -> None:
    # `team == 'edge' || zone == 'a'` is no label selector: its pods' selector applies in
    # every namespace (it used to apply only where team == edge, not where zone == a).
    tree = load_files({"g.yaml": GNP})
    _, pods = outside_selectors(tree)
    assert pods == [
        (None, LabelSelector(), LabelSelector((), (LabelRequirement("app", "In", ("web",)),)))
    ]


ACCOUNTS_AND_SERVICES = (
    "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n---\n"
    "apiVersion: v1\nkind: Pod\nmetadata: {name: db, namespace: shop, labels: {app: db}}\n"
    "spec: {containers: [{name: c, image: x}]}\n---\n"
    "apiVersion: v1\nkind: Service\nmetadata: {name: ledger, namespace: finance}\n"
    "spec: {selector: {app: ledger}, ports: [{port: 80, targetPort: 8080}]}\n---\n"
    "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\n"
    "metadata: {name: db, namespace: shop}\n"
    "spec:\n  selector: app == 'db'\n  types: [Ingress, Egress]\n"
    "  ingress:\n  - action: Allow\n    source:\n      namespaceSelector: all()\n"
    "      serviceAccounts: {selector: role == 'reader'}\n"
    "  - action: Allow\n    source:\n      serviceAccounts: {names: [backup]}\n"
    "  egress:\n  - action: Allow\n    destination:\n"
    "      services: {name: ledger, namespace: finance}\n"
)


def test_outside_pods_are_split_by_their_accounts_and_by_the_services_that_select_them() -> None:
    tree = load_files({"tree.yaml": ACCOUNTS_AND_SERVICES})
    world = outside_world(tree, (tree,))
    partial = world.tree(tree)
    engine = compute_map(partial)
    reader = world.locate("other", {}, {}, partial, "etl", {"role": "reader"})
    backup = world.locate("shop", None, {}, partial, "backup", {})
    stranger = world.locate("other", {}, {}, partial, "etl", {"role": "writer"})
    ledger = world.locate("finance", {}, {"app": "ledger"}, partial)
    assert (reader, backup, stranger, ledger) == (
        "~ns[*]/pod[pcsa.role=reader]",
        "~shop/pod[serviceaccount=backup]",
        "~ns[*]/*",
        "~ns[kubernetes.io/metadata.name=finance]/pod[app=ledger]",
    )
    descriptions = {e.id: e.description for e in engine.endpoints}
    assert descriptions[reader] == (
        "pods running as a service account labelled role=reader in any other namespace "
        "(not in this repository)"
    )
    assert descriptions[backup].startswith("pods running as service account backup in")
    db = "shop/Pod/db"
    assert engine.allowed(reader, db).to_json() == {"TCP": "all", "UDP": "all", "SCTP": "all"}
    assert engine.allowed(backup, db).to_json() == {"TCP": "all", "UDP": "all", "SCTP": "all"}
    assert engine.allowed(stranger, db).to_json() == {}
    # The Service's endpoint port, on the pods it selects in a namespace the tree lacks.
    assert engine.allowed(db, ledger).to_json() == {"TCP": "8080"}
    other = world.locate("finance", {}, {"app": "web"}, partial)
    assert engine.allowed(db, other).to_json() == {}


NAMED_ACCOUNTS = (
    "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n---\n"
    "apiVersion: v1\nkind: ServiceAccount\n"
    "metadata: {name: api, namespace: shop, labels: {app: web}}\n---\n"
    "apiVersion: v1\nkind: Pod\nmetadata: {name: db, namespace: shop, labels: {app: db}}\n"
    "spec: {containers: [{name: c, image: x}]}\n---\n"
    "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\n"
    "metadata: {name: db, namespace: shop}\n"
    "spec:\n  selector: app == 'db'\n  types: [Ingress]\n"
    "  ingress:\n  - action: Allow\n    source:\n      serviceAccounts: {names: [api, auth]}\n"
    "  - action: Deny\n    source:\n      serviceAccounts: {selector: app == 'web'}\n"
)


def test_an_account_the_tree_lacks_is_split_from_one_it_labels_that_selectors_name_alike() -> None:
    # `names: [api, auth]` tells `api` and `auth` alike; the tree labels `api` app=web, so
    # a pod running as `api` without that label is none, and must not be the one label
    # set kept for the pods running as `auth` (which were then left out: fail open).
    tree = load_files({"tree.yaml": NAMED_ACCOUNTS})
    world = outside_world(tree, (tree,))
    partial = world.tree(tree)
    engine = compute_map(partial)
    auth = world.locate("shop", None, {}, partial, "auth", {})
    api = world.locate("shop", None, {}, partial, "api", {})
    assert auth == "~shop/pod[serviceaccount=auth]"
    assert api != auth
    assert engine.allowed(auth, "shop/Pod/db").to_json() == {
        "TCP": "all",
        "UDP": "all",
        "SCTP": "all",
    }
    # Every representative is a pod that can exist: none runs as `api` without app=web.
    for rep in world.representatives:
        labels = dict(rep.labels)
        if labels.get(SERVICE_ACCOUNT) == "api":
            assert labels.get("pcsa.app") == "web", rep.id
