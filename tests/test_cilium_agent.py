"""The Cilium agent's options as repository settings (analysis.ciliumagent,
bot.review.cilium_settings): read strictly, carried by the trees on every path the bot and
the CLI take (plain files read in full or as a change, rendered environments), and evaluated
as the independent reference (tests/reference_cilium.py) evaluates them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.ciliumagent import CiliumAgent
from analysis.diff import diff_trees
from analysis.manifests import load_files
from analysis.outside import ClusterScope
from analysis.reachability import compute_map
from analysis.report import diff_to_json, map_to_json
from bot.cli import main
from bot.inputs.environment_diff import diff_plain_files
from bot.review.settings import SettingsError, parse_repo_settings
from tests.reference import cluster_map, flatten, ip_block_networks, partition
from tests.reference_cilium import CiliumCluster, peers_of
from tests.strategies import connections_by_pair, examples, manifest_files, tree_pairs
from tests.test_properties_cilium import AGENTS, _options

Obj = dict[str, Any]

WEB, DB = "shop/Deployment/web", "shop/Deployment/db"
HOST = "entity:host"
ALL = {"TCP": "all", "UDP": "all", "SCTP": "all"}

SHOP = {
    "shop.yaml": """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: x}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: db, namespace: shop}
spec:
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: c, image: x}]}
""",
    "policy.yaml": """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db, namespace: shop}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress: [{from: [{podSelector: {matchLabels: {app: web}}}]}]
""",
}


def _map(files: dict[str, str], agent: CiliumAgent | None) -> dict[tuple[str, str], Any]:
    rmap = compute_map(load_files(files, cilium_agent=agent))
    return connections_by_pair(map_to_json(rmap)["connections"])


# ---------------------------------------------------------------------------- engine


def test_without_settings_a_networkpolicy_tree_has_no_cilium_endpoints() -> None:
    m = _map(SHOP, None)
    assert not any(HOST in pair for pair in m)
    assert m[(WEB, DB)] == ALL and (DB, WEB) in m


def test_the_default_agent_adds_the_node_and_its_allow_localhost() -> None:
    m = _map(SHOP, CiliumAgent())
    assert m[(HOST, DB)] == ALL  # isolated by the NetworkPolicy, but the node gets in
    assert m[(WEB, DB)] == ALL and (DB, WEB) in m


def test_enable_policy_always_isolates_every_pod_in_both_directions() -> None:
    m = _map(SHOP, CiliumAgent(enable_policy="always"))
    # web's egress is isolated by the agent and nothing allows it, though db admits web
    assert (WEB, DB) not in m and (DB, WEB) not in m and (WEB, WEB) not in m
    assert set(m) == {(HOST, WEB), (HOST, DB)}  # allow-localhost still holds


def test_enable_policy_always_is_cited_as_isolating() -> None:
    base = load_files(SHOP, cilium_agent=CiliumAgent())
    head = load_files(SHOP, cilium_agent=CiliumAgent(enable_policy="always"))
    closed = diff_to_json(diff_trees(base, head))["closed"]
    row = next(r for r in closed if (r["src"], r["dst"]) == (WEB, DB))
    assert [(c["policy"], c["reason"], c["file"]) for c in row["because"]] == [
        ("cilium-agent/enable-policy", "isolates", ".github/reachdiff.yml")
    ]


def test_enable_policy_never_enforces_no_networkpolicy() -> None:
    m = _map(SHOP, CiliumAgent(enable_policy="never"))
    assert m[("ip:0.0.0.0/0", DB)] == ALL  # the NetworkPolicy is not enforced
    assert m[(DB, WEB)] == ALL


def test_allow_localhost_policy_lets_the_node_in_only_where_a_rule_does() -> None:
    m = _map(SHOP, CiliumAgent(allow_localhost="policy"))
    assert (HOST, DB) not in m  # db's ingress admits web only
    assert m[(HOST, WEB)] == ALL  # web is not isolated


def test_a_networkpolicy_change_under_never_changes_nothing() -> None:
    head = dict(SHOP, **{"policy.yaml": SHOP["policy.yaml"].replace("app: web", "app: none")})
    never = CiliumAgent(enable_policy="never")
    diff = diff_to_json(diff_plain_files(_bytes(SHOP), _bytes(head), cilium_agent=never))
    assert diff["opened"] == [] and diff["closed"] == []
    default = diff_to_json(diff_plain_files(_bytes(SHOP), _bytes(head), cilium_agent=None))
    assert [(r["src"], r["dst"]) for r in default["closed"]] == [(WEB, DB)]


def _bytes(files: dict[str, str]) -> dict[str, bytes]:
    return {p: t.encode() for p, t in files.items()}


# The bot's plain path (the base read in full, the head read as a change to it and derived
# incrementally where it can be) against the reference, NetworkPolicy trees under any agent.
@settings(max_examples=examples(60))
@given(st.data(), AGENTS)
def test_plain_diffs_under_the_agent_match_reference(
    data: st.DataObject, agent: CiliumAgent | None
) -> None:
    base, head = data.draw(tree_pairs())
    base_files, head_files = data.draw(manifest_files(base)), data.draw(manifest_files(head))
    diff = diff_to_json(
        diff_plain_files(
            _bytes(base_files), _bytes(head_files), cilium_agent=agent, scope=_complete()
        )
    )
    b_objs, h_objs = flatten(base), flatten(head)
    ranges = partition([*ip_block_networks(b_objs), *ip_block_networks(h_objs)])
    options = _options(agent)
    peers = peers_of([*b_objs, *h_objs], options)
    before = connections_by_pair(
        cluster_map(CiliumCluster(b_objs, ranges, peers, options))["connections"]
    )
    after = connections_by_pair(
        cluster_map(CiliumCluster(h_objs, ranges, peers, options))["connections"]
    )
    changed = {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}
    rows = diff["opened"] + diff["closed"]
    assert {(r["src"], r["dst"]) for r in rows} == changed
    for row in rows:
        assert row["head"] == after.get((row["src"], row["dst"]), {})


def _complete() -> ClusterScope:
    return ClusterScope.COMPLETE


# ---------------------------------------------------------------------------- settings


def test_settings_read_the_agent_options() -> None:
    s = parse_repo_settings(
        "cilium_agent:\n  enable-policy: always\n  allow-localhost: policy\n"
        '  policy-cidr-match-mode: ""\n'
    )
    assert s.cilium_agent == CiliumAgent("always", "", "policy")
    assert parse_repo_settings("cilium_agent: {}\n").cilium_agent == CiliumAgent()
    assert parse_repo_settings("paths: [a/**]\n").cilium_agent is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "cilium_agent:\n  enable-policy: allways\n",
            ".github/reachdiff.yml:2: cilium_agent.enable-policy: must be one of default, "
            "always, never (the Cilium agent's enable-policy), got 'allways'",
        ),
        (
            "cilium_agent:\n  allow-localhost: yes\n",
            ".github/reachdiff.yml:2: cilium_agent.allow-localhost: must be one of auto, "
            "always, policy (the Cilium agent's allow-localhost), got True",
        ),
        (
            "cilium_agent:\n  enable_policy: never\n",
            ".github/reachdiff.yml:2: cilium_agent.enable_policy: unknown key (expected one "
            "of: enable-policy, policy-cidr-match-mode, allow-localhost)",
        ),
        ("cilium_agent: always\n", "cilium_agent must be a mapping"),
        (
            "\ncilium_agent:\n  policy-cidr-match-mode: nodes\n",
            ".github/reachdiff.yml:3: cilium_agent.policy-cidr-match-mode: CIDRs selecting the "
            "cluster's nodes by their addresses is not modelled",
        ),
    ],
)
def test_bad_agent_options_name_key_line_and_fix(text: str, expected: str) -> None:
    with pytest.raises(SettingsError) as err:
        parse_repo_settings(text)
    assert expected in str(err.value)


# ---------------------------------------------------------------------------- CLI


def _tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    root.mkdir()
    for name, text in SHOP.items():
        (root / name).write_text(text)
    return root


def _cli_map(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[tuple[str, str], Any]:
    assert main(["map", *argv, "--format", "json", "--cluster-scope", "complete"]) == 0
    return connections_by_pair(json.loads(capsys.readouterr().out)["connections"])


def test_the_cli_reads_the_agent_from_settings_and_flags(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _tree(tmp_path)
    config = tmp_path / "reachdiff.yml"
    config.write_text("cilium_agent: {enable-policy: always}\n")
    always = _cli_map(capsys, str(root), "--settings", str(config))
    assert set(always) == {(HOST, WEB), (HOST, DB)}
    # a flag overrides the file's option
    flagged = _cli_map(
        capsys, str(root), "--settings", str(config), "--cilium-agent", "enable-policy=never"
    )
    assert flagged[("ip:0.0.0.0/0", DB)] == ALL
    assert _cli_map(capsys, str(root)) == _map(SHOP, None)


def test_the_cli_refuses_an_unknown_agent_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _tree(tmp_path)
    with pytest.raises(SystemExit):
        main(["map", str(root), "--cilium-agent", "enable_policy=never"])
    assert "enable-policy" in capsys.readouterr().err
    assert main(["map", str(root), "--cilium-agent", "enable-policy=sometimes"]) == 2
    assert "must be one of default, always, never" in capsys.readouterr().err
