"""The benchmark generator: deterministic, valid, realistic, and variants that touch only
the files they mean to. Engine-dependent checks run once ``analysis.diff`` exists."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from benchmarks import generate
from benchmarks.generate import VARIANTS, derive_variant, generate_base, zipf_sizes
from benchmarks.run import Measured, Row, SizeResult, render_table

SMALL = 50
WORKLOAD_KINDS = {"Deployment", "StatefulSet"}
LAYOUT = re.compile(
    r"clusters/(?P<ns>[a-z0-9-]+)/(namespace\.yaml|networkpolicy-[a-z0-9-]+\.yaml|"
    r"[a-z0-9-]+/(deployment|statefulset|service|networkpolicy-[a-z0-9-]+)\.yaml)"
)


LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse(data: bytes) -> list[Any]:
    return list(yaml.load_all(data, Loader=LOADER))


def docs_of(files: dict[str, bytes]) -> list[tuple[str, dict[str, Any]]]:
    return [(path, doc) for path, data in files.items() for doc in parse(data) if doc is not None]


@pytest.fixture(scope="module")
def base() -> dict[str, bytes]:
    return generate_base(SMALL, seed=0)


@pytest.fixture(scope="module")
def medium() -> dict[str, bytes]:
    return generate_base(300, seed=1)


@pytest.fixture(scope="module")
def medium_docs(medium: dict[str, bytes]) -> list[tuple[str, dict[str, Any]]]:
    return docs_of(medium)


def test_same_seed_same_bytes_other_seed_other_tree(base: dict[str, bytes]) -> None:
    assert generate_base(SMALL, seed=0) == base
    assert generate_base(SMALL, seed=1) != base
    for name in VARIANTS:
        assert derive_variant(base, name, 0).files == derive_variant(base, name, 0).files


def test_workload_count_is_exact_and_kinds_are_expected(base: dict[str, bytes]) -> None:
    kinds = Counter(doc["kind"] for _, doc in docs_of(base))
    assert set(kinds) == {"Namespace", "Deployment", "StatefulSet", "Service", "NetworkPolicy"}
    assert kinds["Deployment"] + kinds["StatefulSet"] == SMALL


@pytest.mark.parametrize("workloads", [150, 300])
def test_policy_density_is_about_one_per_three_workloads(workloads: int) -> None:
    kinds = Counter(doc["kind"] for _, doc in docs_of(generate_base(workloads, seed=2)))
    assert kinds["Deployment"] + kinds["StatefulSet"] == workloads
    assert abs(kinds["NetworkPolicy"] - workloads / 3) <= 0.1 * workloads / 3


def test_objects_are_valid_kubernetes_in_the_gitops_layout(medium: dict[str, bytes]) -> None:
    multi_document = 0
    for path, data in medium.items():
        match = LAYOUT.fullmatch(path)
        assert match, path
        docs = [d for d in parse(data) if d is not None]
        multi_document += len(docs) > 1
        for doc in docs:
            assert doc["apiVersion"] and doc["metadata"]["name"], path
            if doc["kind"] == "Namespace":
                assert doc["metadata"]["name"] == match["ns"]
                assert set(doc["metadata"]["labels"]) == {"team", "env"}
                continue
            assert doc["metadata"]["namespace"] == match["ns"], path
            if doc["kind"] in WORKLOAD_KINDS:
                selector = doc["spec"]["selector"]["matchLabels"]
                template = doc["spec"]["template"]["metadata"]["labels"]
                # The API server rejects a controller whose selector misses its template.
                assert selector.items() <= template.items(), path
                assert doc["spec"]["replicas"] >= 1
    assert multi_document > 0


def test_namespace_sizes_are_skewed() -> None:
    sizes = zipf_sizes(10_000, 200)
    assert sum(sizes) == 10_000 and min(sizes) >= 1
    assert sizes == sorted(sizes, reverse=True)
    assert sizes[0] >= 20 * sizes[len(sizes) // 2]  # a few huge namespaces, many small
    with pytest.raises(ValueError):
        zipf_sizes(3, 4)


def policies_of(files: dict[str, bytes]) -> list[dict[str, Any]]:
    return [doc for _, doc in docs_of(files) if doc["kind"] == "NetworkPolicy"]


def peers(policy: dict[str, Any]) -> list[dict[str, Any]]:
    spec = policy["spec"]
    return [
        p
        for rule in spec.get("ingress", []) + spec.get("egress", [])
        for p in rule.get("from", []) + rule.get("to", [])
    ]


def ports(policy: dict[str, Any]) -> list[dict[str, Any]]:
    spec = policy["spec"]
    return [
        p
        for rule in spec.get("ingress", []) + spec.get("egress", [])
        for p in rule.get("ports", [])
    ]


def test_policies_cover_the_features_real_repositories_use(
    medium_docs: list[tuple[str, dict[str, Any]]],
) -> None:
    policies = [doc for _, doc in medium_docs if doc["kind"] == "NetworkPolicy"]
    all_peers = [p for pol in policies for p in peers(pol)]
    all_ports = [p for pol in policies for p in ports(pol)]
    default_deny = [p for p in policies if p["metadata"]["name"] == "default-deny"]
    namespaces = {d["metadata"]["name"] for _, d in medium_docs if d["kind"] == "Namespace"}
    assert {p["metadata"]["namespace"] for p in default_deny} == namespaces - {"ingress-nginx"}
    assert all(p["spec"]["podSelector"] == {} for p in default_deny)
    dns = [
        p
        for p in all_peers
        if p.get("namespaceSelector", {}).get("matchLabels")
        == {"kubernetes.io/metadata.name": "kube-system"}
    ]
    assert dns
    assert any(set(p) == {"namespaceSelector"} for p in all_peers)
    assert any(set(p) == {"namespaceSelector", "podSelector"} for p in all_peers)
    assert any(set(p) == {"podSelector"} for p in all_peers)
    assert any(p.get("ipBlock", {}).get("except") for p in all_peers)
    assert any(isinstance(p.get("port"), str) for p in all_ports)
    assert any("endPort" in p for p in all_ports)
    assert any(p.get("protocol") == "UDP" for p in all_ports)
    assert any(p["spec"]["policyTypes"] == ["Egress"] for p in policies)


def test_named_ports_in_policies_are_defined_by_some_container(
    medium_docs: list[tuple[str, dict[str, Any]]],
) -> None:
    # reachdiff rejects a named port that no container defines, as a certain typo.
    defined = {
        port["name"]
        for _, doc in medium_docs
        if doc["kind"] in WORKLOAD_KINDS
        for c in doc["spec"]["template"]["spec"]["containers"]
        for port in c.get("ports", [])
    }
    used = {
        p["port"]
        for _, pol in medium_docs
        if pol["kind"] == "NetworkPolicy"
        for p in ports(pol)
        if isinstance(p.get("port"), str)
    }
    assert used and used <= defined


@pytest.mark.parametrize("name", VARIANTS)
def test_variant_rewrites_only_the_files_it_reports(base: dict[str, bytes], name: str) -> None:
    variant = derive_variant(base, name, seed=0)
    assert variant.changed
    differing = {p for p in set(base) | set(variant.files) if base.get(p) != variant.files.get(p)}
    assert differing == set(variant.changed)
    for path in set(base) - differing:
        assert variant.files[path] == base[path]  # byte-identical
    for path in variant.changed:
        assert list(parse(variant.files[path]))


def test_widen_rule_replaces_a_pod_peer_with_every_namespace(base: dict[str, bytes]) -> None:
    variant = derive_variant(base, "widen-rule", seed=0)
    (path,) = variant.changed
    (before,) = parse(base[path])
    (after,) = parse(variant.files[path])
    assert {"namespaceSelector": {}} in peers(after)
    assert {"namespaceSelector": {}} not in peers(before)
    assert len(peers(after)) == len(peers(before))


def test_remove_rule_drops_exactly_one_ingress_rule(base: dict[str, bytes]) -> None:
    variant = derive_variant(base, "remove-rule", seed=0)
    (path,) = variant.changed
    (before,) = parse(base[path])
    (after,) = parse(variant.files[path])
    assert len(after["spec"]["ingress"]) == len(before["spec"]["ingress"]) - 1
    assert all(rule in before["spec"]["ingress"] for rule in after["spec"]["ingress"])


def test_relabel_changes_one_workloads_pod_labels_only(base: dict[str, bytes]) -> None:
    variant = derive_variant(base, "relabel-workload", seed=0)
    (path,) = variant.changed
    before = list(parse(base[path]))
    after = list(parse(variant.files[path]))
    changed = [(b, a) for b, a in zip(before, after, strict=True) if a != b]
    assert len(changed) == 1
    old, new = changed[0]
    old_labels = old["spec"]["template"]["metadata"]["labels"]
    new_labels = new["spec"]["template"]["metadata"]["labels"]
    assert new_labels["tier"] != old_labels["tier"]
    assert new["spec"]["selector"] == old["spec"]["selector"]
    assert new["spec"]["selector"]["matchLabels"].items() <= new_labels.items()


def test_new_app_only_adds_files_in_one_new_directory(base: dict[str, bytes]) -> None:
    variant = derive_variant(base, "new-app", seed=0)
    assert all(p not in base for p in variant.changed)
    (directory,) = {p.rsplit("/", 1)[0] for p in variant.changed}
    assert not any(p.startswith(directory + "/") for p in base)
    kinds = Counter(d["kind"] for p in variant.changed for d in parse(variant.files[p]))
    assert kinds["NetworkPolicy"] >= 1 and kinds["Deployment"] + kinds["StatefulSet"] >= 2


def test_refactor_rewrites_about_five_percent_of_policies(medium: dict[str, bytes]) -> None:
    variant = derive_variant(medium, "refactor-5pct", seed=0)
    total = len(policies_of(medium))
    assert 1 <= len(variant.changed) <= round(total * 0.05)
    assert all("/networkpolicy-" in p for p in variant.changed)
    assert len(policies_of(variant.files)) == total


def test_cli_writes_the_variant_tree(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        generate.main(
            ["--workloads", "30", "--out", str(tmp_path / "t"), "--variant", "widen-rule"]
        )
        == 0
    )
    expected = derive_variant(generate_base(30, 0), "widen-rule", 0).files
    assert generate.read_tree(tmp_path / "t") == expected
    assert '"variant": "widen-rule"' in capsys.readouterr().out


def test_table_marks_timeouts_and_full_diff_fallback() -> None:
    row = Row(
        "widen-rule",
        1,
        {
            "floor": Measured(seconds=2.0),
            "diff": Measured(seconds=0.5),
            "incremental": Measured(seconds=1.5, extra={"mode": "full"}),
        },
        Measured(seconds=8.0, maxrss_mib=300.0, exit_code=1),
        Measured(timed_out=True),
    )
    table = render_table(SizeResult(1000, {"files": 1100}, [row]), 600, with_nca=True)
    line = table.splitlines()[-1]
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[0] == "widen-rule"
    assert "8.00 s" in cells and "4.0x" in cells and "300 MiB" in cells
    assert "1.50 s (full)" in cells
    assert "> 600 s" in cells and "> 75.0x" in cells  # NCA hit the bound


# ------------------------------------------------------------------ with the engine


def load(files: dict[str, bytes]) -> Any:
    manifests = pytest.importorskip("analysis.manifests")
    return manifests.load_files(files)


def test_engine_loads_every_generated_tree(base: dict[str, bytes]) -> None:
    pytest.importorskip("analysis.diff")
    tree = load(base)
    assert len(tree.workloads) == SMALL
    for name in VARIANTS:
        load(derive_variant(base, name, 0).files)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_widen_rule_widens(seed: int) -> None:
    diff_mod = pytest.importorskip("analysis.diff")
    base = generate_base(SMALL, seed)
    head = derive_variant(base, "widen-rule", seed).files
    diff = diff_mod.diff_trees(load(base), load(head))
    assert diff.widening and diff.opened


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_remove_rule_closes_and_opens_nothing(seed: int) -> None:
    diff_mod = pytest.importorskip("analysis.diff")
    base = generate_base(SMALL, seed)
    head = derive_variant(base, "remove-rule", seed).files
    diff = diff_mod.diff_trees(load(base), load(head))
    assert diff.closed and not diff.opened and not diff.widening


def test_cilium_mixed_rewrites_policies_as_equivalent_cilium_policies(
    base: dict[str, bytes],
) -> None:
    from analysis.diff import diff_trees
    from analysis.manifests import load_files

    variant = derive_variant(base, "cilium-mixed", seed=0)
    head = load_files(variant.files)
    rewritten = [p for p in variant.changed if "networkpolicy-" in p]
    assert rewritten and len(head.cilium_policies) == len(rewritten) + 1
    assert head.unanalysed == ()
    # The CiliumNetworkPolicies mean what the NetworkPolicies they replace meant (at L4)...
    without_lockdown = {p: d for p, d in variant.files.items() if "lockdown" not in p}
    same = diff_trees(load_files(base), load_files(without_lockdown))
    assert not same.opened and not same.closed
    # ... and the clusterwide deny closes only paths from outside the cluster.
    changed = diff_trees(load_files(base), head)
    assert not changed.opened and changed.closed
    assert all(c.src.id.startswith("ip:") for c in changed.closed)


def test_small_files_shape_holds_the_same_objects_one_per_file(base: dict[str, bytes]) -> None:
    small = generate.shaped(base, "small-files")
    assert len(small) > len(base)
    assert all(len([d for d in parse(data) if d is not None]) == 1 for data in small.values())

    def objects(files: dict[str, bytes]) -> Counter[str]:
        return Counter(repr(sorted(doc.items())) for _, doc in docs_of(files))

    assert objects(small) == objects(base)
    # A file that already held one object keeps its path and bytes.
    assert all(small[p] == d for p, d in base.items() if len(parse(d)) == 1)


def test_small_files_variant_changes_the_paths_of_its_objects(base: dict[str, bytes]) -> None:
    small = generate.shaped(base, "small-files")
    for name in ("widen-rule", "new-app"):
        plain = derive_variant(base, name, seed=0)
        variant = generate.shaped_variant(plain, small, "small-files")
        assert variant.files == generate.shaped(plain.files, "small-files")
        changed = {p for p, d in variant.files.items() if small.get(p) != d}
        changed |= {p for p in small if p not in variant.files}
        assert set(variant.changed) == changed and changed
