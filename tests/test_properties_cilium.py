"""Property tests of Cilium's kinds: random clusters mixing NetworkPolicies, the admin tiers
and CiliumNetworkPolicies / CiliumClusterwideNetworkPolicies, the engine against the
brute-force reference (``tests/reference_cilium.py``), for maps, diffs (with their causes)
and explanations."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from analysis.ciliumagent import ALLOW_LOCALHOST, ENABLE_POLICY, CiliumAgent
from analysis.decision import explain_pair
from analysis.diff import diff_trees
from analysis.manifests import load_files
from analysis.reachability import compute_map
from analysis.report import diff_to_json, map_to_json
from tests.reference import cluster_map, flatten, ip_block_networks, partition
from tests.reference_admin import ADMIN_KINDS, admin_networks
from tests.reference_cilium import CILIUM_KINDS, CiliumCluster, cilium_networks, peers_of
from tests.strategies import (
    NAMESPACES,
    Draw,
    Obj,
    clusters,
    connections_by_pair,
    defined_port_names,
    examples,
    files_apart,
)
from tests.strategies_cilium import cilium_policies, services, with_service_accounts
from tests.test_properties_admin import admin_tiers

# The profile of tests/conftest.py (derandomized in CI; ``reachdiff-deep`` hunts with fresh
# seeds and its own count); REACHDIFF_CILIUM_EXAMPLES sets the CI count locally.
PROFILE = settings(
    max_examples=examples(int(os.environ.get("REACHDIFF_CILIUM_EXAMPLES", "150"))),
    # REACHDIFF_NO_SHRINK=1: report the first failing example as found (faster locally).
    phases=[p for p in Phase if p is not Phase.shrink or not os.environ.get("REACHDIFF_NO_SHRINK")],
)


@st.composite
def mixed_clusters(draw: Draw) -> list[Obj]:
    objects: list[Obj] = draw(with_service_accounts(draw(clusters())))
    objects += draw(services(NAMESPACES))
    names = tuple(sorted(defined_port_names(objects)))
    if draw(st.booleans()):
        objects += draw(admin_tiers(names))
    policies: list[Obj] = draw(cilium_policies(names, NAMESPACES))
    return objects + policies


def _files(draw: Draw, objects: list[Obj]) -> dict[str, str]:
    apart = [
        (name, lambda o, kinds=kinds: o["kind"] in kinds)
        for name, kinds in (("admin.yaml", ADMIN_KINDS), ("cilium.yaml", CILIUM_KINDS))
    ]
    return files_apart(draw, objects, apart)


# The Cilium agent's options as the settings give them: none (no `cilium_agent` section), or
# any of the values reachdiff models.
AGENTS = st.one_of(
    st.none(),
    st.builds(
        CiliumAgent,
        enable_policy=st.sampled_from(ENABLE_POLICY),
        allow_localhost=st.sampled_from(ALLOW_LOCALHOST),
    ),
)


def _options(agent: CiliumAgent | None) -> dict[str, str] | None:
    """The options in the settings file's words, for the reference."""
    if agent is None:
        return None
    return {"enable-policy": agent.enable_policy, "allow-localhost": agent.allow_localhost}


@st.composite
def cases(draw: Draw) -> tuple[list[Obj], dict[str, str]]:
    objects = draw(mixed_clusters())
    return objects, _files(draw, objects)


_by_pair = connections_by_pair


@PROFILE
@given(cases(), AGENTS)
def test_cilium_agent_options_match_reference(
    case: tuple[list[Obj], dict[str, str]], agent: CiliumAgent | None
) -> None:
    objects, files = case
    engine = map_to_json(compute_map(load_files(files, cilium_agent=agent)))
    expected = cluster_map(CiliumCluster(objects, agent=_options(agent)))
    shown = [{k: v for k, v in e.items() if k != "description"} for e in engine["endpoints"]]
    assert shown == expected["endpoints"]
    assert _by_pair(engine["connections"]) == _by_pair(expected["connections"])


@PROFILE
@given(cases())
def test_cilium_map_matches_reference(case: tuple[list[Obj], dict[str, str]]) -> None:
    objects, files = case
    engine = map_to_json(compute_map(load_files(files)))
    expected = cluster_map(CiliumCluster(objects))
    # Entities and DNS names carry a description (words of the engine's own) besides.
    shown = [{k: v for k, v in e.items() if k != "description"} for e in engine["endpoints"]]
    assert shown == expected["endpoints"]
    assert _by_pair(engine["connections"]) == _by_pair(expected["connections"])


@st.composite
def diff_cases(draw: Draw) -> tuple[list[Obj], list[Obj], dict[str, str], dict[str, str]]:
    base = draw(mixed_clusters())
    head = [o for o in base if o["kind"] not in CILIUM_KINDS]
    if draw(st.booleans()):
        head += [o for o in base if o["kind"] in CILIUM_KINDS][1:]  # one policy removed
    names = tuple(sorted(defined_port_names(head)))
    head += draw(cilium_policies(names, NAMESPACES, "new"))
    return base, head, _files(draw, base), _files(draw, head)


def _networks(objs: Sequence[Mapping[str, Any]]) -> list[Any]:
    return [*ip_block_networks(objs), *admin_networks(objs), *cilium_networks(objs)]


@PROFILE
@given(diff_cases(), AGENTS)
def test_cilium_diff_matches_reference(
    case: tuple[list[Obj], list[Obj], dict[str, str], dict[str, str]], agent: CiliumAgent | None
) -> None:
    base, head, base_files, head_files = case
    # Both sides under the base branch's settings, as the bot reads them.
    engine = diff_to_json(
        diff_trees(
            load_files(base_files, cilium_agent=agent), load_files(head_files, cilium_agent=agent)
        )
    )
    b_objs, h_objs = flatten(base), flatten(head)
    ranges = partition([*_networks(b_objs), *_networks(h_objs)])
    options = _options(agent)
    peers = peers_of([*b_objs, *h_objs], options)
    before = _by_pair(cluster_map(CiliumCluster(b_objs, ranges, peers, options))["connections"])
    after = _by_pair(cluster_map(CiliumCluster(h_objs, ranges, peers, options))["connections"])
    for row in engine["opened"] + engine["closed"]:
        pair = (row["src"], row["dst"])
        assert row["base"] == before.get(pair, {}), pair
        assert row["head"] == after.get(pair, {}), pair
    changed = {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}
    assert {(r["src"], r["dst"]) for r in engine["opened"] + engine["closed"]} == changed
    # Every change between endpoints both sides have cites a rule or policy of some kind.
    for row in engine["opened"] + engine["closed"]:
        if not any(row[k] for k in ("src_new", "dst_new", "src_removed", "dst_removed")):
            assert row["because"], row


@PROFILE
@given(cases())
def test_cilium_rows_hold_what_columns_hold(case: tuple[list[Obj], dict[str, str]]) -> None:
    _, files = case
    rmap = compute_map(load_files(files))
    by_source: dict[int, dict[int, object]] = {}
    for (src, dst), conn in rmap.class_connections.items():
        by_source.setdefault(src, {})[dst] = conn
    for endpoint in range(rmap.matcher.size):
        assert rmap.row(endpoint) == by_source.get(endpoint, {}), endpoint


@settings(PROFILE, max_examples=max(10, PROFILE.max_examples // 3))
@given(cases())
def test_cilium_explanations_tell_the_verdict(case: tuple[list[Obj], dict[str, str]]) -> None:
    """``explain`` walks every pair's steps and checks them against the matcher's verdict
    (``decision._walk`` asserts it); the answer is the map's."""
    _, files = case
    rmap = compute_map(load_files(files))
    ids = [e.id for e in rmap.endpoints]
    apart = ("ip:", "entity:", "fqdn:")  # pairs no policy governs are not in the map
    for src in ids:
        for dst in ids:
            if src.startswith(apart) and dst.startswith(apart):
                continue
            e = explain_pair(rmap, src, dst)
            assert e.allowed == rmap.allowed(src, dst)


def test_cilium_properties_follow_the_shared_profile() -> None:
    """REACHDIFF_HYPOTHESIS_PROFILE=reachdiff-deep must reach these tests too: fresh seeds
    and at least the profile's count (tests/conftest.py)."""
    shared = settings.default
    assert shared is not None  # tests/conftest.py loads a profile
    assert PROFILE.derandomize == shared.derandomize
    assert PROFILE.database == shared.database
    assert PROFILE.deadline == shared.deadline
    ci = int(os.environ.get("REACHDIFF_CILIUM_EXAMPLES", "150"))  # the CI count (local override)
    assert PROFILE.max_examples == (ci if shared.derandomize else max(ci, shared.max_examples))
