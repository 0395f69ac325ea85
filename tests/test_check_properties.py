"""``check`` against the brute-force oracle (tests/reference_intents.py) on random clusters
and random declarations."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import yaml
from hypothesis import given, note, settings
from hypothesis import strategies as st

from analysis.check import Violation, check, declared_map
from analysis.intents import load_declarations
from analysis.manifests import load_files
from analysis.outside import ClusterScope
from tests.intent_strategies import declarations
from tests.reference import PROTOCOLS, Cluster, RefWorkload, policy_id
from tests.reference_intents import Oracle, Record
from tests.strategies import Draw, Obj, clusters, manifest_files
from tests.test_properties import PROFILE, render


@st.composite
def cases(draw: Draw) -> tuple[list[Obj], Sequence[Obj], dict[str, str]]:
    objects = draw(clusters())
    docs = draw(declarations())
    files = draw(manifest_files(objects))
    files["intents/declared.yaml"] = "---\n".join(yaml.safe_dump(d, sort_keys=False) for d in docs)
    note(render(files))
    return objects, docs, files


def record(v: Violation) -> Record:
    return (
        v.type,
        v.src.id if v.src else None,
        v.dst.id if v.dst else None,
        tuple(v.ports.to_json().items()),
        v.intent.name,
        v.intent.entry,
    )


@settings(PROFILE, max_examples=min(PROFILE.max_examples, 80))
@given(cases())
def test_check_matches_oracle(case: tuple[list[Obj], Sequence[Obj], dict[str, str]]) -> None:
    objects, docs, files = case
    decls = load_declarations(files)
    result = check(declared_map(load_files(files), decls), decls)
    engine = [record(v) for v in result.violations]
    assert len(engine) == len(set(engine)), "a violation is reported twice"
    assert set(engine) == Oracle(objects, docs).check()


@settings(PROFILE, max_examples=min(PROFILE.max_examples, 80))
@given(cases())
def test_partial_scope_agrees_on_the_tree_s_own_workloads(
    case: tuple[list[Obj], Sequence[Obj], dict[str, str]],
) -> None:
    """Pods outside the tree add endpoints; they change nothing between the tree's own."""
    _, _, files = case
    tree, decls = load_files(files), load_declarations(files)
    complete = check(declared_map(tree, decls), decls)
    partial = check(declared_map(tree, decls, ClusterScope.PARTIAL), decls)

    def own(result_violations: Sequence[Violation]) -> set[Record]:
        return {
            record(v)
            for v in result_violations
            if v.src is not None
            and v.dst is not None
            and not v.src.is_outside
            and not v.dst.is_outside
        }

    assert own(partial.violations) == own(complete.violations)


@settings(PROFILE, max_examples=min(PROFILE.max_examples, 60))
@given(cases())
def test_causes_are_exactly_the_deciding_rules(
    case: tuple[list[Obj], Sequence[Obj], dict[str, str]],
) -> None:
    """An allowed path cites every rule that admits it on some of the ports at fault (and
    no other); a denied one every policy isolating an end that denies some of them."""
    objects, docs, files = case
    decls = load_declarations(files)
    result = check(declared_map(load_files(files), decls), decls)
    oracle = Oracle(objects, docs)
    cluster = oracle.cluster
    by_id = {e.id: e for e in oracle.endpoints}
    for v in result.violations:
        if v.src is None or v.dst is None:
            continue
        s, d = by_id[v.src.id], by_id[v.dst.id]
        samples = [
            (proto, p) for proto in PROTOCOLS for p in oracle.points if v.ports.allows(proto, p)
        ]
        assert samples
        cited = {(c.policy, c.direction, c.rule) for c in v.because}
        allowed_path = v.type in ("forbidden", "undeclared") or v.expect == "denied"
        if allowed_path:
            expected = set().union(*(cluster.admitting_rules(s, d, pr, p) for pr, p in samples))
            assert all(c.reason == "allows" for c in v.because)
        else:
            expected = set()
            for pr, p in samples:
                if not cluster.ingress_allows(s, d, pr, p):
                    expected |= {
                        (policy_id(x), "Ingress", "") for x in _selecting(cluster, d, "Ingress")
                    }
                if not cluster.egress_allows(s, d, pr, p):
                    expected |= {
                        (policy_id(x), "Egress", "") for x in _selecting(cluster, s, "Egress")
                    }
            assert all(c.reason == "isolates" for c in v.because)
        assert cited == expected, v


def _selecting(cluster: Cluster, ep: object, direction: str) -> list[Mapping[str, Any]]:
    return cluster._selecting(ep, direction) if isinstance(ep, RefWorkload) else []
