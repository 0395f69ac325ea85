"""The engine against the brute-force reference on random clusters.

The engine (``analysis``) computes maps with pod equivalence classes and interval algebra;
the reference (tests/reference.py) asks every policy about every concrete connection. They
must agree exactly on random small clusters, rendered as YAML files in every layout the
loader accepts, and on the diff between a random tree and a random edit of it.

CI runs a fixed, derandomized set of examples (profile ``reachdiff-ci``) so a green run
stays green; ``REACHDIFF_HYPOTHESIS_PROFILE=reachdiff-deep`` hunts with fresh random seeds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import yaml
from hypothesis import given, note, settings
from hypothesis import strategies as st

from analysis.diff import ReachabilityDiff, diff_trees
from analysis.manifests import load_files
from analysis.reachability import compute_map
from analysis.report import diff_to_json, map_to_json
from tests.reference import (
    RefDiff,
    cluster_map,
    policy_id,
    reference_diff,
    reference_map,
)
from tests.strategies import (
    Draw,
    Obj,
    clusters,
    connections_by_pair,
    examples,
    manifest_files,
    tree_pairs,
)

PROFILE = settings(max_examples=examples(200))  # the profile of tests/conftest.py


def render(files: Mapping[str, str]) -> str:
    """The files as one readable block, for failure reports."""
    return "\n".join(f"# ==== {path}\n{text}" for path, text in sorted(files.items()))


@st.composite
def clusters_with_files(draw: Draw) -> tuple[list[Obj], dict[str, str]]:
    objects = draw(clusters())
    files = draw(manifest_files(objects))
    note(render(files))
    return objects, files


_by_pair = connections_by_pair


# ---------------------------------------------------------------------------- maps


@PROFILE
@given(clusters_with_files())
def test_map_matches_reference(case: tuple[list[Obj], dict[str, str]]) -> None:
    objects, files = case
    engine = map_to_json(compute_map(load_files(files)))
    expected = reference_map(objects)
    assert engine["endpoints"] == expected["endpoints"]
    # Compare as dicts first for a readable difference, then the exact (ordered) lists.
    assert _by_pair(engine["connections"]) == _by_pair(expected["connections"])
    assert engine["connections"] == expected["connections"]


# ---------------------------------------------------------------------------- diffs


@st.composite
def diff_cases(draw: Draw) -> tuple[list[Obj], list[Obj], dict[str, str], dict[str, str]]:
    base, head = draw(tree_pairs())
    base_files = draw(manifest_files(base))
    head_files = draw(manifest_files(head))
    note("BASE\n" + render(base_files))
    note("HEAD\n" + render(head_files))
    return base, head, base_files, head_files


def _changes(rows: Sequence[Mapping[str, Any]]) -> list[tuple[str, str, dict[str, str]]]:
    return [(r["src"], r["dst"], dict(r["allowed"])) for r in rows]


@PROFILE
@given(diff_cases())
def test_diff_matches_reference(
    case: tuple[list[Obj], list[Obj], dict[str, str], dict[str, str]],
) -> None:
    base, head, base_files, head_files = case
    diff = diff_trees(load_files(base_files), load_files(head_files))
    engine = diff_to_json(diff)
    ref = reference_diff(base, head)
    expected = ref.to_json()
    assert engine["widening"] == expected["widening"]
    assert _by_pair(engine["opened"]) == _by_pair(expected["opened"])
    assert _by_pair(engine["closed"]) == _by_pair(expected["closed"])
    assert _changes(engine["opened"]) == _changes(expected["opened"])
    assert _changes(engine["closed"]) == _changes(expected["closed"])

    # Each change also carries the pair's full sets on both sides and which of its
    # endpoints exist on one side only.
    base_map = _by_pair(cluster_map(ref.base)["connections"])
    head_map = _by_pair(cluster_map(ref.head)["connections"])
    base_ids = {e.id for e in ref.base.endpoints()}
    head_ids = {e.id for e in ref.head.endpoints()}
    for row in [*engine["opened"], *engine["closed"]]:
        pair = (row["src"], row["dst"])
        assert row["base"] == base_map.get(pair, {}), pair
        assert row["head"] == head_map.get(pair, {}), pair
        assert row["src_new"] == (row["src"] not in base_ids)
        assert row["dst_new"] == (row["dst"] not in base_ids)
        assert row["src_removed"] == (row["src"] not in head_ids)
        assert row["dst_removed"] == (row["dst"] not in head_ids)
        settled = not any(row[k] for k in ("src_new", "dst_new", "src_removed", "dst_removed"))
        if settled:  # a path between endpoints of both sides names its causes
            assert row["because"], row
    assert sorted(e["id"] for e in engine["added_endpoints"]) == sorted(head_ids - base_ids)
    assert sorted(e["id"] for e in engine["removed_endpoints"]) == sorted(base_ids - head_ids)
    check_causes(diff, ref, base_files, head_files)


def check_causes(
    diff: ReachabilityDiff,
    ref: RefDiff,
    base_files: Mapping[str, str],
    head_files: Mapping[str, str],
) -> None:
    """Every cause points at a real policy and file of its tree; and when traffic opens
    because a side that used to deny it is now admitted by a rule of a head policy (rather
    than because that side stopped being isolated), the change names such a rule."""
    b, h = ref.base, ref.head
    head_policies = {policy_id(p) for p in h.policies}
    base_policies = {policy_id(p) for p in b.policies}
    files = {"base": set(base_files), "head": set(head_files)}
    changes = {(c.src.id, c.dst.id): c for c in diff.opened}
    for change in ref.opened:
        engine_change = changes[(change.src, change.dst)]
        for cause in engine_change.because:
            known = head_policies if cause.tree == "head" else base_policies
            assert cause.tree in ("base", "head")
            assert cause.policy in known, cause
            assert cause.file in files[cause.tree], cause
            assert cause.line >= 1
        src, dst = ref.endpoints[change.src], ref.endpoints[change.dst]
        if src.id not in {e.id for e in b.endpoints()} or dst.id not in {
            e.id for e in b.endpoints()
        }:
            continue  # a new workload opens paths by existing, not by a rule
        admitting: set[tuple[str, str, str]] = set()
        for proto, ports in change.ports.items():
            for port in ports:
                rules = h.admitting_rules(src, dst, proto, port)
                if not b.egress_allows(src, dst, proto, port):
                    admitting |= {r for r in rules if r[1] == "Egress"}
                if not b.ingress_allows(src, dst, proto, port):
                    admitting |= {r for r in rules if r[1] == "Ingress"}
        if not admitting:
            continue
        cited = {(c.policy, c.direction, c.rule) for c in engine_change.because if c.tree == "head"}
        assert cited & admitting, (change, engine_change.because, admitting)


# ---------------------------------------------------------------------------- validation


@settings(PROFILE, max_examples=min(PROFILE.max_examples, 50))
@given(clusters(), st.sampled_from(("Ingress", "Egress")), st.sampled_from(("TCP", "UDP")))
def test_policy_naming_an_undefined_port_warns_with_file_and_line_and_matches_nothing(
    objects: list[Obj], direction: str, protocol: str
) -> None:
    """A named port no container in the tree defines is valid Kubernetes (the pods may be
    made elsewhere): it matches nothing here, exactly as the reference says, and the tree
    warns of it naming the port entry's file and line."""
    field = "ingress" if direction == "Ingress" else "egress"
    policy = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "typo", "namespace": "default"},
        "spec": {
            "podSelector": {},
            "policyTypes": [direction],
            field: [{"ports": [{"port": 80}, {"port": "htpp", "protocol": protocol}]}],
        },
    }
    cluster = "---\n".join(yaml.safe_dump(o, sort_keys=False) for o in objects)
    # A valid document first, so the line must be counted across documents.
    padding = "# policies\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: padding}\n---\n"
    bad = yaml.safe_dump(policy, sort_keys=False)
    bad_line = (
        padding.count("\n")
        + 1
        + next(i for i, line in enumerate(bad.splitlines()) if line.strip() == "- port: htpp")
    )
    padding_ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "padding"}}
    tree = load_files({"cluster.yaml": cluster, "policies/typo.yaml": padding + bad})
    warnings = [w for w in tree.warnings if "default/NetworkPolicy/typo " in w]
    assert len(warnings) == 1, tree.warnings
    assert warnings[0].startswith(f"policies/typo.yaml:{bad_line}: default/NetworkPolicy/typo ")
    assert "'htpp' is not defined" in warnings[0]
    engine = map_to_json(compute_map(tree))
    expected = reference_map([*objects, padding_ns, policy])
    assert _by_pair(engine["connections"]) == _by_pair(expected["connections"])


# ---------------------------------------------------------------------------- line breaks


@PROFILE
@given(clusters_with_files(), st.sampled_from(("\r\n", "\r")))
def test_a_tree_and_its_crlf_twin_map_the_same(
    case: tuple[list[Obj], dict[str, str]], eol: str
) -> None:
    """Line breaks are spelling: LF, CR LF and CR files give the same tree, objects on the
    same lines, and the same map."""
    _, files = case
    lf = {path: text.replace("\r\n", "\n").replace("\r", "\n") for path, text in files.items()}
    twin = {path: text.replace("\n", eol) for path, text in lf.items()}
    tree, twin_tree = load_files(lf), load_files(twin)
    assert twin_tree == tree
    assert [p.source for p in twin_tree.policies] == [p.source for p in tree.policies]
    assert [w.source for w in twin_tree.workloads] == [w.source for w in tree.workloads]
    assert map_to_json(compute_map(twin_tree)) == map_to_json(compute_map(tree))
    # And the diff between them is empty: nothing opened, closed, added or removed.
    assert diff_to_json(diff_trees(tree, twin_tree))["opened"] == []
    assert diff_to_json(diff_trees(twin_tree, tree))["closed"] == []
