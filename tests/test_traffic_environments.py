"""Flows and environments (docs/traffic.md): a summary naming the environment it was
observed in is matched there only; one naming none, or one the diff does not have, is
matched in every environment (more approval, never less)."""

from __future__ import annotations

import json

import pytest

from analysis.flows import FORWARDED, FlowEnd, FlowKey
from analysis.flowsummary import FlowStat, FlowSummary, summary_from_json, summary_to_json
from analysis.manifests import load_files
from analysis.outside import ClusterScope
from analysis.trafficdiff import diff_traffic_maps
from bot.inputs.environment_diff import EnvironmentTree, diff_environments
from tests.botharness import WORKLOADS, db_policy

EAST, WEST = "clusters/east", "clusters/west"


def _environments(
    ports: tuple[int, ...], names: tuple[str, str] = (EAST, WEST), kind: str = "kustomize"
) -> list[EnvironmentTree]:
    files = {"apps.yaml": WORKLOADS, "db.yaml": db_policy("web", ports=ports)}
    return [EnvironmentTree(name, kind, load_files(files)) for name in names]


def _summary(environment: str) -> FlowSummary:
    key = FlowKey(
        FlowEnd("shop", workload="Deployment/web"),
        FlowEnd("shop", workload="Deployment/db"),
        "TCP",
        5432,
        FORWARDED,
    )
    return FlowSummary(flows=(FlowStat(key, 7, 1, 2),), environment=environment)


def _broken(
    environment: str, names: tuple[str, str] = (EAST, WEST), kind: str = "kustomize"
) -> tuple[set[str | None], str]:
    # Both environments close web -> db on TCP 5432 (6432 stays open).
    diff = diff_environments(
        _environments((5432, 6432), names, kind),
        _environments((6432,), names, kind),
        ClusterScope.COMPLETE,
    )
    maps = [(name, one.base, one.head) for name, one in diff.per_environment]
    traffic = diff_traffic_maps(diff, maps, _summary(environment))
    return {p.change.src.environment for p in traffic.breaks}, traffic.unknown_environment


@pytest.mark.parametrize(
    ("named", "broken", "unknown"),
    [
        (EAST, {EAST}, ""),  # observed in east: west's change breaks none of them
        ("", {EAST, WEST}, ""),  # the data does not say: every environment
        ("clusters/north", {EAST, WEST}, "clusters/north"),  # not compared: every one, said
    ],
)
def test_flows_break_only_in_the_environment_they_were_observed_in(
    named: str, broken: set[str], unknown: str
) -> None:
    assert _broken(named) == (broken, unknown)


@pytest.mark.parametrize("named", ["kubernetes-manifests/", "kubernetes-manifests"])
def test_a_directory_of_alternatives_is_named_with_or_without_its_slash(named: str) -> None:
    # Alternative deliverables (bot.inputs.alternatives); settings strip the "/".
    bundles = ("kubernetes-manifests/", "release/kubernetes-manifests.yaml")
    assert _broken(named, bundles, "plain") == ({"kubernetes-manifests/"}, "")


def test_the_environment_is_kept_in_the_summary_and_checked() -> None:
    doc = summary_to_json(_summary(EAST))
    assert doc["environment"] == EAST
    assert summary_from_json(json.loads(json.dumps(doc))).environment == EAST
    assert "environment" not in summary_to_json(_summary(""))
    with pytest.raises(ValueError, match="environment"):
        summary_from_json({**doc, "environment": ["east"]})


def test_the_comment_says_where_the_flows_were_observed() -> None:
    from bot.review.breaks import FlowData, section
    from bot.review.settings import RepoSettings

    settings = RepoSettings(flows_path="ops/flows.json")
    for named, words in (
        (EAST, "Observed in environment `clusters/east` only."),
        ("clusters/north", "names environment `clusters/north`, which this change's trees"),
    ):
        diff = diff_environments(
            _environments((5432, 6432)), _environments((6432,)), ClusterScope.COMPLETE
        )
        maps = [(name, one.base, one.head) for name, one in diff.per_environment]

        class Diff:
            traffic = diff_traffic_maps(diff, maps, _summary(named))

        text = section(Diff(), settings, FlowData("ops/flows.json")).replace("\\", "")
        assert words in text


def test_the_flows_setting_names_the_environment_whatever_the_summary_says() -> None:
    from bot.app.flowsource import observed_in
    from bot.review.settings import SettingsError, parse_repo_settings

    settings = parse_repo_settings(b"flows: {path: ops/east.json, environment: clusters/east/}\n")
    assert (settings.flows_path, settings.flows_environment) == ("ops/east.json", EAST)
    # A summary of east that does not say so, or says another: east's, as configured.
    for said in ("", WEST):
        summary = observed_in(_summary(said), settings)
        assert summary is not None and summary.environment == EAST
        assert _broken(summary.environment) == ({EAST}, "")
    unset = parse_repo_settings(b"flows: {url: https://flows.example.com/s.json}\n")
    assert unset.flows_environment is None
    assert observed_in(_summary(WEST), unset) == _summary(WEST)
    for bad in (b"flows: {environment: x}\n", b"flows: {path: a.json, environment: ''}\n"):
        with pytest.raises(SettingsError, match="flows"):
            parse_repo_settings(bad)
