"""The HTML map's data (analysis/htmlmap.py) without a browser: rules carry the ports they
open, and merging environments keeps every index pointing at the same thing."""

from __future__ import annotations

from analysis.htmlmap import map_data, merge_maps
from analysis.manifests import load_files
from analysis.outside import ClusterScope
from analysis.reachability import compute_map
from tests.test_html_map import PER_PORT_TREE


def _data(extra_port: str = "") -> dict[str, object]:
    files = dict(PER_PORT_TREE)
    if extra_port:  # another environment: another port set first in its table
        files["policies.yaml"] = files["policies.yaml"].replace("{port: 7000}", extra_port)
    rmap = compute_map(load_files(files), scope=ClusterScope.COMPLETE)
    return map_data(rmap, None, "t")


def _rules(data: dict[str, object]) -> list[tuple[str, str | None, list[tuple[str, list[str]]]]]:
    """Each rule as (name, its ports' text, [(named ports' text, destination node ids)])."""
    ports, classes, nodes = data["ports"], data["classes"], data["nodes"]
    out = []
    for rule in data["rules"]:  # type: ignore[attr-defined]
        named = []
        for q, runs in rule[4] if len(rule) > 4 else []:
            members = [
                nodes[n]["id"]  # type: ignore[index]
                for i in range(0, len(runs), 2)
                for c in range(runs[i], runs[i + 1] + 1)
                for n in classes[c]  # type: ignore[index]
            ]
            named.append((ports[q], sorted(members)))  # type: ignore[index]
        fixed = ports[rule[3]] if rule[3] is not None else None  # type: ignore[index]
        out.append((rule[0], fixed, named))
    return out


def test_rules_carry_their_ports_and_named_ports_their_destinations() -> None:
    rules = dict((name, (fixed, named)) for name, fixed, named in _rules(_data()))
    assert rules["shop/NetworkPolicy/db ingress[0]"] == (None, [("TCP 5432", ["shop/Pod/db"])])
    assert rules["shop/NetworkPolicy/db ingress[1]"] == ("TCP 9000", [])
    assert rules["shop/NetworkPolicy/web egress[0]"] == ("TCP 5432,8000-9100", [])


def test_merged_environments_keep_each_rule_s_ports() -> None:
    one, two = _data(), _data("{port: 7001}")
    merged = merge_maps([("a", one), ("b", two)])
    expected = [
        (name, fixed, [(p, [f"{env}:{i}" for i in ids]) for p, ids in named])
        for env, data in (("a", one), ("b", two))
        for name, fixed, named in _rules(data)
    ]
    assert _rules(merged) == expected
