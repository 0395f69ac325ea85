"""Representatives (``cluster_scope: partial``) against the brute-force reference.

A random tree is extended with concrete pods it does not define, in namespaces it defines
and in namespaces it does not (with random labels); the reference (tests/reference_outside)
evaluates that concrete cluster. Every concrete pod's verdicts, to and from every endpoint
of the tree and every other concrete pod, must equal those of the endpoint that stands for
it in the engine's map (``OutsideWorld.locate``): a representative, or the workload labelled
exactly like it. And the diff of two partial trees, derived incrementally from a prepared
base, equals the diff of the two fully computed maps with representatives.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from hypothesis import event, given, note, settings
from hypothesis import strategies as st

from analysis import prepared
from analysis.compiler import tree_networks
from analysis.diff import diff_maps, diff_trees
from analysis.errors import ManifestError
from analysis.manifests import load_files
from analysis.outside import ClusterScope, outside_world
from analysis.reachability import compute_map
from analysis.report import diff_to_json
from tests.reference import Cluster, RefRange, RefWorkload, _allowed_json, interesting_ports
from tests.reference_outside import OutsideCluster, concrete_namespace, concrete_pod
from tests.strategies import NS_KEYS, POD_KEYS, Draw, Obj, label_maps, manifest_files, tree_pairs
from tests.test_properties import PROFILE
from tests.test_properties_admin import _files, tiered_clusters

OUTSIDE_NAMES = ("default", "alpha", "beta", "gamma", "zz-outside")


@st.composite
def partial_cases(draw: Draw) -> tuple[list[Obj], dict[str, str], list[Obj], list[Obj]]:
    objects = draw(tiered_clusters())
    files = _files(draw, objects)
    tree = load_files(files)
    defined = sorted(n.name for n in tree.namespaces)
    free = [n for n in OUTSIDE_NAMES if n not in defined]
    names = draw(st.lists(st.sampled_from(free), min_size=1, max_size=3, unique=True))
    namespaces = [
        concrete_namespace(n, draw(label_maps((*NS_KEYS, "zone"), max_size=3))) for n in names
    ]
    pods = [
        concrete_pod(
            draw(st.sampled_from(names if i == 0 else [*defined, *names])),
            f"zz-concrete-{i}",
            draw(label_maps((*POD_KEYS, "role"), max_size=3)),
        )
        for i in range(draw(st.integers(1, 5)))
    ]
    note(f"concrete: {namespaces} {pods}")
    return objects, files, namespaces, pods


def check_representatives(
    files: dict[str, str],
    objects: list[Obj],
    namespaces: list[Obj],
    concrete_objects: list[Obj],
    reference: Callable[[list[Mapping[str, Any]], set[str]], Cluster],
) -> None:
    """Every concrete pod of ``concrete_objects`` (pods, and the service accounts they run
    as) decides, to and from every other endpoint of the ``reference`` cluster (the tree's
    ``objects`` with the concrete ``namespaces`` and objects, the policies of those
    namespaces unknown), like the endpoint that stands for it in the engine's map of the
    tree (``files``) with representatives."""
    pods = [o for o in concrete_objects if o["kind"] == "Pod"]
    account_labels = {
        (o["metadata"]["namespace"], o["metadata"]["name"]): o["metadata"].get("labels", {})
        for o in concrete_objects
        if o["kind"] == "ServiceAccount"
    }
    tree = load_files(files)
    try:
        world = outside_world(tree, (tree,))
    except ManifestError as too_many:
        # Past the bound on representatives (many independent label and service-account
        # conditions multiply them) the tree is refused, naming the setting: fail closed.
        assert "cluster_scope: partial" in str(too_many)
        event("refused: too many representatives")
        return
    partial = world.tree(tree)
    engine = compute_map(partial)
    assert engine.tree is partial
    unknown = {ns["metadata"]["name"] for ns in namespaces}
    ns_labels = {ns["metadata"]["name"]: ns["metadata"]["labels"] for ns in namespaces}
    concrete = {f"{p['metadata']['namespace']}/Pod/{p['metadata']['name']}" for p in pods}
    stands_for: dict[str, str] = {}
    workloads = {w.id: w for w in tree.workloads}
    for manifest in pods:
        meta = manifest["metadata"]
        account = manifest["spec"].get("serviceAccountName", "default")
        found = stands_for[f"{meta['namespace']}/Pod/{meta['name']}"] = world.locate(
            meta["namespace"],
            ns_labels.get(meta["namespace"]),
            meta["labels"],
            partial,
            account,
            account_labels.get((meta["namespace"], account), {}),
        )
        if found in workloads:  # a pod like a workload is taken to have its named ports
            manifest["spec"]["containers"][0]["ports"] = [
                {
                    "containerPort": p.port,
                    "protocol": p.protocol,
                    **({"name": p.name} if p.name else {}),
                }
                for p in workloads[found].ports
            ]
    ref = reference([*objects, *namespaces, *concrete_objects], unknown)
    points = interesting_ports(ref.port_numbers())
    for rep in set(stands_for.values()):
        assert rep in engine.index_of, rep

    def beyond(e: RefWorkload | RefRange) -> bool:
        return isinstance(e, RefRange) or e.namespace in unknown

    def answer(src: RefWorkload | RefRange, dst: RefWorkload | RefRange) -> dict[str, str]:
        return _allowed_json(
            points,
            {p: tuple(ref.allows(src, dst, p, n) for n in points) for p in ("TCP", "UDP", "SCTP")},
        )

    for pod in (e for e in ref.endpoints() if e.id in concrete):
        assert isinstance(pod, RefWorkload)
        for other in ref.endpoints():
            if other.id == pod.id or (beyond(pod) and beyond(other)):
                continue
            mine, theirs = stands_for[pod.id], stands_for.get(other.id, other.id)
            got_out = engine.allowed(mine, theirs).to_json()
            got_in = engine.allowed(theirs, mine).to_json()
            assert got_out == answer(pod, other), (pod.id, mine, other.id, theirs)
            assert got_in == answer(other, pod), (other.id, theirs, pod.id, mine)


@settings(PROFILE, max_examples=min(PROFILE.max_examples, 120))
@given(partial_cases())
def test_a_representative_decides_like_every_pod_it_stands_for(
    case: tuple[list[Obj], dict[str, str], list[Obj], list[Obj]],
) -> None:
    objects, files, namespaces, pods = case
    check_representatives(files, objects, namespaces, pods, OutsideCluster)


def _json(diff: Any) -> dict[str, Any]:
    return diff_to_json(diff)


@st.composite
def partial_pairs(draw: Draw) -> tuple[dict[str, str], dict[str, str]]:
    base, head = draw(tree_pairs())
    return draw(manifest_files(base)), draw(manifest_files(head))


@PROFILE
@given(partial_pairs())
def test_a_partial_diff_derived_from_a_prepared_base_is_the_full_diff(
    files: tuple[dict[str, str], dict[str, str]],
) -> None:
    base, head = load_files(files[0]), load_files(files[1])
    both = (base, head)
    full_base = outside_world(base, both).tree(base)
    full_head = outside_world(head, both).tree(head)
    full = diff_maps(
        compute_map(full_base, tree_networks(full_head)),
        compute_map(full_head, tree_networks(full_base)),
    )
    expected = _json(full)
    assert _json(diff_trees(base, head, ClusterScope.PARTIAL)) == expected
    base_prepared = prepared.prepare(files[0], scope=ClusterScope.PARTIAL)
    changed: dict[str, bytes | str | None] = {
        p: t for p, t in files[1].items() if files[0].get(p) != t
    }
    changed.update((p, None) for p in files[0] if p not in files[1])
    assert _json(prepared.review(base_prepared, changed)) == expected


@settings(PROFILE, max_examples=min(PROFILE.max_examples, 40))
@given(partial_cases())
def test_explanations_tell_the_maps_verdict_for_every_pair(
    case: tuple[list[Obj], dict[str, str], list[Obj], list[Obj]],
) -> None:
    """``reachdiff explain`` walks the tiers itself; its answer (and its own check against
    the matcher's verdict, per direction) must agree with the map on every pair."""
    from analysis.decision import explain_pair

    _, files, _, _ = case
    rmap = compute_map(load_files(files), scope=ClusterScope.PARTIAL)
    ids = [e.id for e in rmap.endpoints]
    for s in ids:
        for d in ids:
            e = explain_pair(rmap, s, d)
            assert (
                e.allowed == rmap.allowed(s, d)
                or
                # pairs among outside representatives and ranges are not in the map
                (s.startswith(("ip:", "~ns[")) and d.startswith(("ip:", "~ns[")))
            ), (s, d)
            assert e.steps
