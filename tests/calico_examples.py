"""Helpers of the hand-transcribed Calico documentation tests (tests/test_calico_*.py): a
tree written as manifest text is mapped by the engine and, with ``checked_map``, compared
pair by pair with the independent reference (tests/reference_calico.py) first."""

from __future__ import annotations

import textwrap

import yaml

from analysis.manifests import load_files
from analysis.model import Tree
from analysis.reachability import ReachabilityMap, compute_map
from analysis.report import map_to_json
from tests.reference import flatten
from tests.reference_calico import calico_reference_map

ALL = {"TCP": "all", "UDP": "all", "SCTP": "all"}


def pod(
    name: str,
    namespace: str,
    labels: dict[str, str],
    account: str = "",
    *,
    ports: str = "{containerPort: 6379}",
) -> str:
    """A Pod's manifest text: ``account`` its serviceAccountName (none: ``default``),
    ``ports`` its container's port list (default: the reference sample's 6379)."""
    shown = ", ".join(f"{k}: {v}" for k, v in labels.items())
    runs_as = f"serviceAccountName: {account}, " if account else ""
    return textwrap.dedent(f"""\
        apiVersion: v1
        kind: Pod
        metadata: {{name: {name}, namespace: {namespace}, labels: {{{shown}}}}}
        spec: {{{runs_as}containers: [{{name: c, image: x, ports: [{ports}]}}]}}
        ---
        """)


def engine_map(*docs: str) -> tuple[Tree, ReachabilityMap]:
    tree = load_files({"cluster.yaml": "".join(docs)})
    return tree, compute_map(tree)


def checked_map(*docs: str) -> tuple[Tree, ReachabilityMap]:
    """``engine_map``, after asserting the reference allows exactly the same pairs."""
    tree, rmap = engine_map(*docs)
    objects = [o for o in yaml.safe_load_all("".join(docs)) if o]
    expected = calico_reference_map(flatten(objects))
    assert _pairs(map_to_json(rmap)["connections"]) == _pairs(expected["connections"])
    return tree, rmap


def _pairs(rows: list[dict[str, object]]) -> dict[tuple[object, object], object]:
    return {(r["src"], r["dst"]): r["allowed"] for r in rows if r["allowed"]}


def allowed(rmap: ReachabilityMap, src: str, dst: str) -> dict[str, str]:
    """What ``src`` may open to ``dst``, by protocol ({} when nothing)."""
    for row in map_to_json(rmap)["connections"]:
        if (row["src"], row["dst"]) == (src, dst):
            return dict(row["allowed"])
    return {}
