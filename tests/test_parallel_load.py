"""Reading a tree on two cores gives the state (or the error) of reading it on one."""

from __future__ import annotations

import pytest

from analysis.treestate import load_state
from bot.inputs import parallel_load
from bot.inputs.parallel_load import load_state_parallel
from tests.filetrees import same_error


def _tree(n: int) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for i in range(n):
        files[f"apps/app-{i:03}.yaml"] = (
            f"apiVersion: v1\nkind: Pod\nmetadata: {{name: p{i}, namespace: ns{i % 7}, "
            f"labels: {{app: a{i % 5}}}}}\nspec: {{containers: [{{name: c, image: i, "
            f"ports: [{{name: http, containerPort: {8000 + i % 3}}}]}}]}}\n"
        ).encode()
        files[f"policies/np-{i:03}.yaml"] = (
            "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
            f"metadata: {{name: np{i}, namespace: ns{i % 7}}}\n"
            f"spec:\n  podSelector: {{matchLabels: {{app: a{i % 5}}}}}\n"
            "  ingress:\n  - ports: [{port: http}]\n"
        ).encode()
    files["README.md"] = b"not a manifest"
    return files


@pytest.fixture
def small_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel_load, "PARALLEL_FROM", 10)


def test_two_cores_read_the_same_state_as_one(small_threshold: None) -> None:
    files = _tree(40)
    state = load_state_parallel(files)
    expected = load_state(files, cache=state.parse_cache)
    assert state == expected
    assert state.tree == expected.tree and dict(state.tree.texts) == dict(expected.tree.texts)
    assert len(state.tree.workloads) == 40 and len(state.tree.policies) == 40
    # The first files came from the child (unpickled copies), the last were read here
    # (the objects the state's parse cache hands out again).
    first, last = "apps/app-000.yaml", "policies/np-039.yaml"
    assert state.by_file[first] == expected.by_file[first]
    assert state.by_file[first].workloads[0] is not expected.by_file[first].workloads[0]
    assert state.by_file[last].policies[0] is expected.by_file[last].policies[0]


@pytest.mark.parametrize("bad", ["apps/app-001.yaml", "policies/np-039.yaml"])
def test_a_bad_file_on_either_side_gives_the_error_of_one_reader(
    small_threshold: None, bad: str
) -> None:
    files = _tree(40)
    files[bad] = b"apiVersion: v1\nkind: Pod\nmetadata: {name: [\n"
    same_error(lambda: load_state(files), lambda: load_state_parallel(files))
