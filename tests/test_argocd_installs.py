"""A repository shaped like Argo CD's kustomize installs (tests/fixtures/argocd-installs):
three environments rendering the same base, reported once where they change alike."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bot.cli import main

FIXTURE = Path(__file__).parent / "fixtures" / "argocd-installs"
INSTALLS = ["cluster-install", "ha/namespace-install", "namespace-install"]

pytestmark = pytest.mark.skipif(
    shutil.which("kubectl") is None and shutil.which("kustomize") is None,
    reason="needs kubectl or kustomize",
)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    # About environments and grouping: the installs are declared the whole cluster, so the
    # counts are of their own workloads (outside pods are tests/test_outside*.py's subject).
    code = main([*argv, "--cluster-scope", "complete"])
    return code, capsys.readouterr().out


def test_the_three_installs_are_three_environments(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "map", str(FIXTURE), "--format", "json")
    assert code == 0
    doc = json.loads(out)
    assert [e["environment"] for e in doc["environments"]] == INSTALLS
    ids = [e["id"] for e in doc["endpoints"]]
    assert len(ids) == len(set(ids)) == 3 * 5  # 3 workloads and 2 ranges in each
    for install in INSTALLS:
        assert {
            "src": f"{install}:default/Deployment/argocd-server",
            "dst": f"{install}:default/Deployment/argocd-repo-server",
            "allowed": {"TCP": "8081,8084"},
        } in doc["connections"]


@pytest.fixture
def change(tmp_path: Path) -> tuple[Path, Path]:
    base, head = tmp_path / "base", tmp_path / "head"
    shutil.copytree(FIXTURE, base)
    shutil.copytree(FIXTURE, head)
    return base, head


def test_a_base_change_is_one_group_listing_the_installs(
    change: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    base, head = change
    # The application controller's policy goes: everything may reach it, in every install.
    (head / "base" / "argocd-application-controller-network-policy.yaml").unlink()
    kustomization = head / "base" / "kustomization.yaml"
    kustomization.write_text(
        kustomization.read_text().replace(
            "- argocd-application-controller-network-policy.yaml\n", ""
        )
    )
    code, out = run(capsys, "diff", str(base), str(head))
    assert code == 1
    assert out.splitlines()[:6] == [
        "reachdiff: access WIDENED: 15 paths opened, 0 closed",
        "",
        "Opened (by destination):",
        "  default/StatefulSet/argocd-application-controller  "
        "(in cluster-install, ha/namespace-install, namespace-install)",
        "    + all 3 workloads of default  TCP 1-8081,8083-65535; UDP all; SCTP all",
        "        because default/NetworkPolicy/argocd-application-controller-network-policy "
        "no longer isolates (base base/argocd-application-controller-network-policy.yaml:1)",
    ]
    assert out.count("(in cluster-install, ha/namespace-install, namespace-install)") == 1
    code, md = run(capsys, "diff", str(base), str(head), "--format", "md")
    assert md.count("**to `default/StatefulSet/argocd-application-controller`**") == 1
    assert (
        "**to `default/StatefulSet/argocd-application-controller`** in `cluster-install`, "
        "`ha/namespace-install`, `namespace-install`" in md
    )
    assert "| all 3 workloads of `default` |" in md
    # JSON stays complete: every environment's every path.
    code, out = run(capsys, "diff", str(base), str(head), "--format", "json")
    opened = json.loads(out)["opened"]
    assert len(opened) == 15
    assert {c["dst"].split(":", 1)[0] for c in opened} == set(INSTALLS)
