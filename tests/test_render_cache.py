"""The render cache and the incremental review of rendered environments equal the full
computation: random edits of a generated kustomize repository (real ``kubectl kustomize``)
reviewed with warm caches give exactly what rendering and diffing both trees afresh
gives, and a root is rendered again exactly when a file it consumes changed."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from analysis.errors import ManifestError
from benchmarks.kustomize_repo import generate, variant
from bot.inputs.analyze import AnalysisFailure
from bot.inputs.environment_bases import EnvironmentBases
from bot.inputs.environment_diff import RENDER_CACHE as render_cache
from bot.inputs.environment_diff import (
    EnvironmentTree,
    MultiDiff,
    diff_environments,
    diff_files,
    load_environments,
)
from bot.inputs.environments import discover_environments, plan_environments, render_all
from bot.inputs.render_cache import KeyBuilder, RenderCache, tool_identity
from bot.inputs.sandbox import Tools
from tests.strategies import examples

needs_kubectl = pytest.mark.skipif(
    shutil.which("kubectl") is None and shutil.which("kustomize") is None,
    reason="neither kubectl nor kustomize is installed",
)

Files = dict[str, bytes]

# --- the pieces ---------------------------------------------------------------------------


def test_keys_tell_field_boundaries_apart() -> None:
    assert KeyBuilder("ab", "c").hexdigest() != KeyBuilder("a", "bc").hexdigest()
    files = {"a": b"1", "b": b"2"}
    one = KeyBuilder().files(files, ["a", "b"]).hexdigest()
    assert one == KeyBuilder().files(files, ["b", "a", "a"]).hexdigest()
    assert one != KeyBuilder().files({"a": b"1", "b": b"3"}, ["a", "b"]).hexdigest()
    assert one != KeyBuilder().files(files, ["a"]).hexdigest()


def test_a_renderer_replaced_in_place_has_another_identity(tmp_path: Path) -> None:
    tool = tmp_path / "kustomize"
    tool.write_text("#!/bin/sh\necho v5.4.0\n")
    tool.chmod(0o755)
    before = tool_identity((str(tool),), ("version",))
    assert "v5.4.0" in before
    assert tool_identity((str(tool),), ("version",)) == before  # asked once
    tool.write_text("#!/bin/sh\necho v5.5.0-upgraded\n")  # an upgrade, same path
    after = tool_identity((str(tool),), ("version",))
    assert after != before and "v5.5.0-upgraded" in after


def test_cache_keeps_the_most_recent_within_its_bounds() -> None:
    cache: RenderCache[str] = RenderCache(max_entries=2, max_weight=10)
    cache.put("a", "A", 4)
    cache.put("b", "B", 4)
    assert cache.get("a") == "A"  # a is now the most recent
    cache.put("c", "C", 4)  # 12 > 10: the least recent (b) goes
    assert cache.get("b") is None and cache.get("a") == "A" and cache.get("c") == "C"
    cache.put("d", "D", 1)  # 3 entries > 2: a goes
    assert len(cache) == 2 and cache.get("a") is None
    cache.put("huge", "H", 11)  # larger than the whole cache: not kept, nothing lost
    assert cache.get("huge") is None and len(cache) == 2
    assert cache.weight == 5
    assert (cache.stats.hits, cache.stats.misses) == (3, 3)


def test_render_all_raises_the_first_error_in_job_order() -> None:
    def fail(message: str) -> Any:
        def job() -> int:
            raise ValueError(message)

        return job

    assert render_all([lambda: 1, lambda: 2, lambda: 3], workers=2) == [1, 2, 3]
    with pytest.raises(ValueError, match="first"):
        render_all([lambda: 1, fail("first"), fail("second")], workers=3)

    def slow_failure() -> int:
        time.sleep(0.3)
        raise ValueError("earlier in order, later in time")

    with pytest.raises(ValueError, match="earlier in order"):
        render_all([slow_failure, fail("later in order, first in time")], workers=2)

    ran: list[int] = []

    def record(i: int) -> Any:
        def job() -> int:
            time.sleep(0.05)
            ran.append(i)
            return i

        return job

    with pytest.raises(ValueError, match="first"):
        render_all([fail("first"), *(record(i) for i in range(40))], workers=2)
    assert len(ran) < 40  # the jobs after a failure are not started


# --- random edits of a generated repository -------------------------------------------------

APPS = ("app00", "app01")


def _load(data: bytes) -> Any:
    return yaml.safe_load(data)


def _dump(doc: Any) -> bytes:
    return yaml.safe_dump(doc, sort_keys=False).encode()


def _repository() -> Files:
    """Two apps in three environments; app00's staging overlay also generates a ConfigMap
    from a file and copies one of its values into a NetworkPolicy (a generator's input
    that decides reachability)."""
    files = generate(len(APPS))
    overlay = "apps/app00/overlays/staging"
    k = _load(files[f"{overlay}/kustomization.yaml"])
    k["configMapGenerator"] = [{"name": "clients", "envs": ["clients.env"]}]
    k["replacements"] = [
        {
            "source": {"kind": "ConfigMap", "name": "clients", "fieldPath": "data.CLIENT_TIER"},
            "targets": [
                {
                    "select": {"kind": "NetworkPolicy", "name": "app00-db-ingress"},
                    "fieldPaths": ["spec.ingress.0.from.0.podSelector.matchLabels.tier"],
                }
            ],
        }
    ]
    files[f"{overlay}/kustomization.yaml"] = _dump(k)
    files[f"{overlay}/clients.env"] = b"CLIENT_TIER=api\n"
    return files


def _edit(files: Files, edit: tuple[str, str, str, int]) -> None:
    kind, app, env, n = edit
    base, overlay = f"apps/{app}/base", f"apps/{app}/overlays/{env}"
    if kind == "base-port":
        path = f"{base}/policies/api.yaml"
        doc = _load(files[path])
        doc["spec"]["ingress"][0]["ports"][0]["port"] = 9000 + n
        files[path] = _dump(doc)
    elif kind == "overlay-patch":
        path = f"{overlay}/replicas.yaml"
        doc = _load(files[path])
        doc["spec"]["template"] = {"metadata": {"labels": {"tier": ["web", "api", "db"][n % 3]}}}
        files[path] = _dump(doc)
    elif kind == "component":
        path = "components/monitoring/policy.yaml"
        doc = _load(files[path])
        doc["spec"]["ingress"][0]["ports"][0]["port"] = 9100 + n
        files[path] = _dump(doc)
    elif kind == "generator-input":
        files["apps/app00/overlays/staging/clients.env"] = (
            f"CLIENT_TIER={['web', 'api', 'db'][n % 3]}\n".encode()
        )
    elif kind == "drop-component":
        path = f"{overlay}/kustomization.yaml"
        k = _load(files[path])
        k["components"] = k["components"][: n % len(k["components"])]
        files[path] = _dump(k)
    elif kind == "namespace-label":
        path = f"{overlay}/namespace.yaml"
        doc = _load(files[path])
        doc["metadata"]["labels"]["app"] = APPS[n % len(APPS)]
        files[path] = _dump(doc)
    elif kind == "unrelated-file":
        files[f"{overlay}/NOTES.md"] = f"note {n}\n".encode()
    elif kind == "drop-policy":
        path = f"{base}/kustomization.yaml"
        k = _load(files[path])
        k["resources"] = [r for r in k["resources"] if r != "policies/web.yaml"]
        files[path] = _dump(k)
        files.pop(f"{base}/policies/web.yaml", None)
    elif kind == "new-overlay":  # a new root: an environment only the head has
        for path, content in list(files.items()):
            if path.startswith(overlay + "/"):
                files[path.replace(f"/overlays/{env}/", f"/overlays/{env}-copy{n}/")] = (
                    content.replace(f"{app}-{env}".encode(), f"{app}-{env}-copy{n}".encode())
                )
    elif kind == "drop-overlay":  # an environment only the base has
        for path in [p for p in files if p.startswith(overlay + "/")]:
            del files[path]


EDITS = st.tuples(
    st.sampled_from(
        [
            "base-port",
            "overlay-patch",
            "component",
            "generator-input",
            "drop-component",
            "namespace-label",
            "unrelated-file",
            "drop-policy",
            "new-overlay",
            "drop-overlay",
        ]
    ),
    st.sampled_from(APPS),
    st.sampled_from(("dev", "staging", "prod")),
    st.integers(0, 5),
)


def _summary(diff: MultiDiff) -> tuple[object, ...]:
    return (
        diff.opened,
        diff.closed,
        diff.added_endpoints,
        diff.removed_endpoints,
        diff.environments,
        diff.notes,
        diff.unanalysed,
        diff.populations,
        diff.unmodelled,
        diff.idle_policies,
        diff.frontends,
    )


def _fresh(files: Files) -> list[EnvironmentTree]:
    return load_environments(files, cache=None)


def _changed_roots(before: Files, after: Files) -> set[str]:
    """Roots whose planned inputs (the files their renderer may read) differ."""
    old = {r.name: r.key for r in plan_environments(before).roots}
    new = {r.name: r.key for r in plan_environments(after).roots}
    return {name for name, key in new.items() if old.get(name) != key}


BASE = _repository()
_WARM: dict[str, Any] = {}


def _warm() -> tuple[RenderCache[EnvironmentTree], EnvironmentBases, list[EnvironmentTree]]:
    """One cache (holding the base's roots) and one set of compiled bases for every
    example, as a worker keeps them across the pull requests of a branch."""
    if not _WARM:
        cache: RenderCache[EnvironmentTree] = RenderCache()
        load_environments(BASE, cache=cache)
        _WARM["cache"], _WARM["bases"] = cache, EnvironmentBases()
        _WARM["fresh"] = _fresh(BASE)
    return _WARM["cache"], _WARM["bases"], _WARM["fresh"]


@needs_kubectl
@settings(
    max_examples=examples(6),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(edits=st.lists(EDITS, min_size=1, max_size=3))
# Environments only one side has, and a generator's input, whatever the draw.
@example(edits=[("new-overlay", "app01", "prod", 2), ("drop-overlay", "app00", "dev", 0)])
@example(edits=[("generator-input", "app00", "staging", 2)])
def test_cached_incremental_review_equals_the_full_one(
    edits: list[tuple[str, str, str, int]],
) -> None:
    cache, bases, base_fresh = _warm()
    head = dict(BASE)
    for edit in edits:
        _edit(head, edit)

    # The reference: both trees rendered afresh, every environment diffed in full.
    head_fresh = _fresh(head)
    expected = diff_environments(base_fresh, head_fresh)

    misses = cache.stats.misses
    got = diff_files(BASE, head, bases=bases, cache=cache)
    assert _summary(got) == _summary(expected)
    # Only roots whose consumed files changed were rendered (fewer when an earlier
    # example rendered the same inputs).
    assert cache.stats.misses - misses <= len(_changed_roots(BASE, head))

    # Every environment served by the cache is the environment a fresh render gives.
    cached = load_environments(head, cache=cache)
    assert [(e.name, e.tree, e.notes, e.unanalysed, e.frontends) for e in cached] == [
        (e.name, e.tree, e.notes, e.unanalysed, e.frontends) for e in head_fresh
    ]
    # A second run over the same roots renders nothing.
    again = cache.stats.misses
    assert _summary(diff_files(BASE, head, bases=bases, cache=cache)) == _summary(expected)
    assert cache.stats.misses == again


@needs_kubectl
def test_a_pull_request_renders_only_the_roots_whose_consumed_files_changed() -> None:
    cache: RenderCache[EnvironmentTree] = RenderCache()
    bases = EnvironmentBases()
    base = _repository()
    load_environments(base, cache=cache)
    assert cache.stats.misses == 6  # every root once (there are no plain manifests)
    overlays = [f"apps/{a}/overlays/{e}" for a in APPS for e in ("dev", "staging", "prod")]
    for edit, roots in (
        (("base-port", "app01", "prod", 1), {r for r in overlays if "app01" in r}),
        (("overlay-patch", "app00", "prod", 1), {"apps/app00/overlays/prod"}),
        (("component", "app00", "prod", 1), {r for r in overlays if not r.endswith("dev")}),
        (("generator-input", "app00", "staging", 0), {"apps/app00/overlays/staging"}),
        # Not read by kustomize, but visible to it: rendered again, never served stale.
        (("unrelated-file", "app01", "dev", 0), {"apps/app01/overlays/dev"}),
    ):
        head = dict(base)
        _edit(head, edit)
        assert _changed_roots(base, head) == roots, edit
        before = cache.stats.misses
        diff = diff_files(base, head, bases=bases, cache=cache)
        assert cache.stats.misses - before == len(roots), edit
        if edit[0] == "generator-input":
            assert diff.opened  # web may now reach db in app00-staging
    # Every base environment was compiled once, on the first review.
    compiled = bases.compiled
    diff_files(base, head, bases=bases, cache=cache)
    assert bases.compiled == compiled


@pytest.mark.skipif(shutil.which("helm") is None, reason="helm is not installed")
def test_a_chart_is_rendered_again_only_when_its_files_or_values_change() -> None:
    cache: RenderCache[EnvironmentTree] = RenderCache()
    base = generate(1, charts=1)
    base["deploy/chart0-values.yaml"] = b"clients: frontend\n"
    values = {"charts/chart0": ["deploy/chart0-values.yaml"]}
    fresh = {e.name: e for e in load_environments(base, helm_values=values, cache=None)}
    if fresh["charts/chart0"].unanalysed:
        pytest.skip(f"helm cannot render here: {fresh['charts/chart0'].unanalysed}")
    load_environments(base, helm_values=values, cache=cache)
    for path, content, renders in (
        ("deploy/chart0-values.yaml", b"clients: backend\n", 1),  # the values file
        ("charts/chart0/values.yaml", b"port: 9443\nclients: frontend\n", 1),
        ("charts/chart0/templates/extra.yaml", b"# nothing\n", 1),
        (  # a kustomize root only
            "apps/app00/overlays/dev/replicas.yaml",
            b"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: app00-web}\n"
            b"spec: {replicas: 5}\n",
            1,
        ),
        ("deploy/README.md", b"# read by nothing\n", 0),
    ):
        head = {**base, path: content}
        before = cache.stats.misses
        cached = load_environments(head, helm_values=values, cache=cache)
        assert cache.stats.misses - before == renders, path
        expected = load_environments(head, helm_values=values, cache=None)
        assert [(e.name, e.tree, e.notes, e.unanalysed) for e in cached] == [
            (e.name, e.tree, e.notes, e.unanalysed) for e in expected
        ], path
    # The values file decides who may connect: its edit shows in the rendered tree.
    head = {**base, "deploy/chart0-values.yaml": b"clients: backend\n"}
    (chart,) = [
        e
        for e in load_environments(head, helm_values=values, cache=cache)
        if e.name == "charts/chart0"
    ]
    assert chart.tree != fresh["charts/chart0"].tree


@needs_kubectl
def test_the_workers_review_with_kept_environments_equals_a_fresh_one() -> None:
    # What the bot posts is made from DiffResult: explanations, same pods, populations,
    # declared review... all read the per-environment maps the kept bases provide.
    from bot.inputs.analyze import PreparedBases, analyze

    base = _repository()
    head = dict(base)
    _edit(head, ("generator-input", "app00", "staging", 0))
    _edit(head, ("namespace-label", "app01", "prod", 0))
    kept = PreparedBases(freeze=False)
    analyze(base, variant(base, "component"), base_key="main", bases=kept)  # an earlier PR
    warm = analyze(base, head, base_key="main", bases=kept)
    render_cache.clear()
    fresh = analyze(base, head, base_key="main", bases=PreparedBases(freeze=False))
    assert warm == fresh
    assert not isinstance(warm, AnalysisFailure) and warm.opened


# --- concurrency keeps every render's own bounds ---------------------------------------------


def _roots(n: int) -> Files:
    return {f"app{i}/kustomization.yaml": b"resources: []\n" for i in range(n)}


def test_roots_render_at_the_same_time(tmp_path: Path) -> None:
    # Each stand-in renderer marks itself running, waits (at most 20 s) for another to be
    # running too, and says whether it saw one: only overlapping renders can.
    running, seen = tmp_path / "running", tmp_path / "seen"
    running.mkdir()
    seen.mkdir()
    script = tmp_path / "kustomize"
    script.write_text(
        "#!/bin/sh\n"
        '[ "$1" = version ] && { echo v0; exit 0; }\n'
        f"touch {running}/$$\n"
        "i=0\n"
        f'while [ "$(ls {running} | wc -l)" -lt 2 ] && [ $i -lt 200 ]; do '
        "sleep 0.1; i=$((i+1)); done\n"
        f'[ "$(ls {running} | wc -l)" -ge 2 ] && touch {seen}/$$\n'
        "sleep 0.2\n"
        f"rm {running}/$$\n"
        "echo 'apiVersion: v1'\necho 'kind: Namespace'\necho 'metadata: {name: a}'\n"
    )
    script.chmod(0o755)
    tools = Tools(kustomize=(str(script), "build"))
    # Four roots, two at a time: pairs start together (an odd one out would wait alone).
    envs = discover_environments(_roots(4), tools=tools, workers=2)
    assert [e.name for e in envs] == ["app0", "app1", "app2", "app3"]
    assert len(list(seen.iterdir())) >= 2


def test_each_concurrent_render_keeps_its_own_timeout(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    pids.mkdir()
    script = tmp_path / "kustomize"
    script.write_text(
        '#!/bin/sh\n[ "$1" = version ] && { echo v0; exit 0; }\n'
        f"sleep 60 &\necho $! > {pids}/$$\nwait\n"
    )
    script.chmod(0o755)
    tools = Tools(kustomize=(str(script), "build"))
    with pytest.raises(ManifestError) as caught:
        discover_environments(_roots(2), tools=tools, timeout=0.5, workers=2)
    assert caught.value.file == "app0/kustomization.yaml"  # the first in order
    assert "took longer than 0.5 s" in caught.value.message
    for pid_file in pids.iterdir():  # every renderer's children were stopped with it
        status = Path(f"/proc/{int(pid_file.read_text())}/status")
        if status.exists():
            assert "State:\tZ" in status.read_text()
