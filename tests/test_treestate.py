"""A head tree derived from a cached base by ``apply_changes`` is the tree (or the error)
``load_files`` reads from the head's files, whatever the change."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping, Sequence
from unittest import mock

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis import treestate
from analysis.errors import ManifestError
from analysis.manifests import load_files
from analysis.model import Tree
from analysis.treestate import FileModels, TreeState, apply_changes, load_state
from tests.filetrees import same_error
from tests.strategies import Draw, Obj, examples, manifest_files, tree_pairs

PROFILE = settings(max_examples=examples(200))  # the profile of tests/conftest.py

Files = dict[str, str]
Changes = dict[str, str | None]


# ---------------------------------------------------------------------------- helpers


def outcome(load: Callable[[], Tree]) -> Tree | tuple[str, int, str]:
    try:
        return load()
    except ManifestError as err:
        return (err.file, err.line, err.message)


def head_of(files: Mapping[str, str], changed: Mapping[str, str | None]) -> Files:
    head = dict(files)
    for path, content in changed.items():
        if content is None:
            head.pop(path, None)
        else:
            head[path] = content
    return head


def assert_same_tree(got: Tree, want: Tree) -> None:
    assert got == want
    # Beyond Tree's own equality: what it leaves out, and each tuple element by element.
    assert got.namespaces == want.namespaces
    assert got.workloads == want.workloads
    assert got.policies == want.policies
    assert got.admin_policies == want.admin_policies
    assert got.warnings == want.warnings
    assert [p.exact_lines for p in got.policies] == [p.exact_lines for p in want.policies]
    assert dict(got.texts) == dict(want.texts)


def check_change(base_files: Mapping[str, str], changed: Mapping[str, str | None]) -> TreeState:
    """Apply ``changed`` to the state of ``base_files`` and compare with the full load;
    returns the derived state (fails the test if the full load raises)."""
    base = load_state(base_files)
    head_files = head_of(base_files, changed)
    want = outcome(lambda: load_files(head_files))
    got = outcome(lambda: apply_changes(base, changed).tree)
    if isinstance(want, tuple):
        assert got == want
        pytest.fail(f"the head is invalid: {want}")
    assert isinstance(got, Tree)
    assert_same_tree(got, want)
    derived = apply_changes(base, changed)
    assert derived == load_state(head_files)  # the index too, not only the tree
    return derived


def check_error(base_files: Mapping[str, str], changed: Mapping[str, str | None]) -> str:
    """Both loaders reject the head with the same error; returns its message."""
    base = load_state(base_files)
    head_files = head_of(base_files, changed)
    return same_error(lambda: load_files(head_files), lambda: apply_changes(base, changed)).message


def pod(name: str, namespace: str | None = None, port: str | None = None) -> str:
    ns = f", namespace: {namespace}" if namespace else ""
    ports = f", ports: [{{containerPort: 8080, name: {port}}}]" if port else ""
    return (
        f"apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}{ns}, labels: {{app: {name}}}}}\n"
        f"spec: {{containers: [{{name: c{ports}}}]}}\n"
    )


def policy(name: str, namespace: str | None = None, port: str | int = 80) -> str:
    ns = f", namespace: {namespace}" if namespace else ""
    return (
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
        f"metadata: {{name: {name}{ns}}}\nspec:\n  podSelector: {{}}\n"
        f"  ingress:\n  - ports: [{{port: {port}}}]\n"
    )


def namespace(name: str, team: str = "a") -> str:
    labels = f"labels: {{team: {team}}}"
    return f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {name}, {labels}}}\n"


def admin(name: str, priority: int) -> str:
    if name == "default":
        head = "kind: BaselineAdminNetworkPolicy\nmetadata: {name: default}\nspec:\n"
    else:
        head = f"kind: AdminNetworkPolicy\nmetadata: {{name: {name}}}\nspec:\n"
        head += f"  priority: {priority}\n"
    return (
        "apiVersion: policy.networking.k8s.io/v1alpha1\n" + head + "  subject: {namespaces: {}}\n"
        "  ingress:\n  - {action: Deny, name: r, from: [{namespaces: {}}]}\n"
    )


# ---------------------------------------------------------------------------- property

_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def _key(obj: Obj) -> str:
    meta = obj["metadata"]
    return f"{obj['kind']}/{meta.get('namespace') or 'default'}/{meta['name']}"


def keyed_files(objects: Sequence[Obj], count: int, salt: int) -> Files:
    """Objects spread over ``count`` files by their name, so that an unchanged object lands
    in the same file with the same neighbours in both trees (a file-sized change). Objects
    whose name hashes odd move to another file when ``salt`` changes."""
    spread: dict[str, list[Obj]] = {}
    for obj in sorted(objects, key=_key):
        key = _key(obj)
        moving = salt if zlib.crc32(key.encode()) % 2 else 0
        index = zlib.crc32(f"{moving}:{key}".encode()) % count
        spread.setdefault(f"k/f{index}.yaml", []).append(obj)
    return {
        path: "---\n".join(yaml.dump(o, Dumper=_DUMPER, sort_keys=False) for o in objs)
        for path, objs in spread.items()
    }


ADMIN_PATHS = ("admin/a.yaml", "admin/b.yaml", "z-admin.yaml")


@st.composite
def admin_files(draw: Draw, *, unique: bool = False) -> Files:
    """0-3 files of AdminNetworkPolicies and the baseline; names may repeat across files
    (a duplicate) unless ``unique``, and priorities often repeat (a warning)."""
    files: Files = {}
    taken: set[str] = set()
    for path in ADMIN_PATHS:
        if draw(st.integers(0, 2)) == 0:
            continue
        names = draw(
            st.lists(st.sampled_from(("x", "y", "default")), min_size=1, max_size=2, unique=True)
        )
        if unique and taken.intersection(names):
            continue
        taken.update(names)
        files[path] = "---\n".join(admin(n, draw(st.integers(1, 3))) for n in names)
    return files


@st.composite
def change_cases(draw: Draw) -> tuple[Files, Changes]:
    """A valid base file map and a change to it: a random edit of the objects written out
    as file-sized changes or as unrelated file maps, sometimes broken on purpose."""
    base_objects, head_objects = draw(tree_pairs())
    layout = draw(st.sampled_from(("keyed", "keyed", "moved", "spread")))
    if layout == "spread":
        base_files, head_files = (
            draw(manifest_files(base_objects)),
            draw(manifest_files(head_objects)),
        )
    else:
        count = draw(st.integers(1, 6))
        salt = draw(st.integers(1, 9)) if layout == "moved" else 0
        base_files = keyed_files(base_objects, count, 0)
        head_files = keyed_files(head_objects, count, salt)
    if draw(st.integers(0, 3)) == 0:
        base_admin = draw(admin_files(unique=True))
        base_files.update(base_admin)
        head_files.update(base_admin if draw(st.booleans()) else draw(admin_files()))
    if draw(st.integers(0, 3)) == 0:
        # A port name only this pod defines, named by a policy no edit touches.
        base_files["porter.yaml"] = head_files["porter.yaml"] = pod("porter", "beta", "zport")
        base_files["zport.yaml"] = head_files["zport.yaml"] = policy("zport", "alpha", "zport")
    for _ in range(draw(st.sampled_from((0, 0, 0, 1, 1, 2)))):
        broken = draw(
            st.sampled_from(("delete", "copy", "unport", "bad-port", "bad-yaml", "ignored"))
        )
        paths = sorted(head_files)
        if broken == "unport" and "porter.yaml" in head_files:
            head_files["porter.yaml"] = pod("porter", "beta")
        elif broken == "delete" and paths:
            # May remove the only definition of a port name, or a namespace's last object.
            del head_files[draw(st.sampled_from(paths))]
        elif broken == "copy" and paths:
            head_files["copy/of.yaml"] = head_files[draw(st.sampled_from(paths))]  # duplicates
        elif broken == "bad-port":
            head_files["bad/port.yaml"] = policy("bad", "beta", "nope")
        elif broken == "bad-yaml":
            head_files[draw(st.sampled_from(("a.yaml", "zz.yml")))] = "a: [1\n"
        else:
            head_files["README.md"] = "not: [yaml"
    changed: Changes = {
        path: head_files.get(path)
        for path in sorted(base_files.keys() | head_files.keys())
        if base_files.get(path) != head_files.get(path)
    }
    if draw(st.integers(0, 4)) == 0:
        changed["never/there.yaml"] = None  # deleting a path the base does not have
    return base_files, changed


@PROFILE
@given(change_cases())
def test_apply_changes_equals_the_full_load(case: tuple[Files, Changes]) -> None:
    base_files, changed = case
    base = load_state(base_files)
    assert_same_tree(base.tree, load_files(base_files))
    head_files = {p: c for p, c in head_of(base_files, changed).items() if p != "README.md"}
    want = outcome(lambda: load_files(head_files))
    got = outcome(lambda: apply_changes(base, changed).tree)
    if isinstance(want, tuple):
        assert got == want
        assert outcome(lambda: load_state(head_files).tree) == want
    else:
        assert isinstance(got, Tree)
        assert_same_tree(got, want)
        with mock.patch.object(treestate, "load_state", side_effect=AssertionError("fallback")):
            head = apply_changes(base, changed)  # a valid head is derived, never reloaded
        assert head == load_state(head_files)
        # And back: the head serves as a base too.
        back = apply_changes(head, {p: base_files.get(p) for p in changed})
        assert back == base
        assert_same_tree(back.tree, base.tree)
    assert base == load_state(base_files)  # deriving left the base as it was


# ---------------------------------------------------------------------------- targeted


def test_the_state_of_a_tree_is_its_tree() -> None:
    files = {
        "ns.yaml": namespace("shop"),
        "a.yaml": pod("a", "shop", port="http"),
        "b.yaml": pod("b", "other"),
        "np.yaml": policy("np", "shop", "http"),
        "anp.yaml": admin("x", 2) + "---\n" + admin("default", 0),
        "README.md": "ignored",
    }
    state = load_state(files)
    assert_same_tree(state.tree, load_files(files))
    assert set(state.files) == set(files) - {"README.md"}
    assert [w.name for w in state.by_file["a.yaml"].workloads] == ["a"]
    assert state.by_file["anp.yaml"].admin_policies[0].name == "x"
    assert state.by_file["ns.yaml"] == FileModels(namespaces=state.tree.namespaces[1:])
    assert [n.name for n in state.tree.namespaces] == ["other", "shop"]


def test_the_state_of_an_invalid_tree_is_its_error() -> None:
    files = {"a.yaml": pod("a"), "b.yaml": pod("a"), "c.yaml": "a: [1\n"}
    error = same_error(lambda: load_files(files), lambda: load_state(files))
    assert error.file == "c.yaml"  # every file is read before any is modelled


def test_a_changed_workload_replaces_its_model() -> None:
    base = {"a.yaml": pod("a"), "b.yaml": pod("b"), "np.yaml": policy("np")}
    derived = check_change(base, {"a.yaml": pod("a").replace("app: a", "app: z")})
    assert dict(derived.tree.workloads[0].labels) == {"app": "z"}


def test_deleting_the_last_definition_of_a_port_name_an_unchanged_policy_uses_warns() -> None:
    base = {
        "a.yaml": pod("a", port="http"),
        "b.yaml": pod("b", port="http"),
        "np.yaml": policy("np", port="http"),
    }
    assert check_change(base, {"a.yaml": None}).tree.warnings == ()  # b still defines it
    derived = check_change(base, {"a.yaml": None, "b.yaml": pod("b")})
    [warning] = derived.tree.warnings
    assert warning.startswith("np.yaml:7: default/NetworkPolicy/np ingress[0]: ")
    assert "port name 'http' is not defined" in warning
    # Defined again: the warning goes, in the derived tree as in a full load.
    again = apply_changes(derived, {"b.yaml": pod("b", port="http")})
    assert again.tree.warnings == () == load_files(again.files).warnings


def test_a_changed_policy_naming_an_undefined_port_warns_with_its_line() -> None:
    base = {"a.yaml": pod("a", port="http"), "np.yaml": policy("np")}
    assert check_change(base, {"np.yaml": policy("np", port="http")}).tree.warnings == ()
    derived = check_change(base, {"np.yaml": "# moved\n" + policy("np", port="metrics")})
    [warning] = derived.tree.warnings
    assert warning.startswith("np.yaml:8: ") and "'metrics'" in warning
    # The warned policy moves to another line: the warning follows it.
    moved = apply_changes(derived, {"np.yaml": "#\n#\n" + policy("np", port="metrics")})
    assert moved.tree.warnings == load_files(moved.files).warnings
    assert moved.tree.warnings[0].startswith("np.yaml:9: ")


def test_a_port_name_defined_again_elsewhere_in_the_same_change_keeps_the_tree_valid() -> None:
    base = {"a.yaml": pod("a", port="http"), "np.yaml": policy("np", port="http")}
    derived = check_change(base, {"a.yaml": None, "b.yaml": pod("b", port="http")})
    assert derived.port_definitions == {"http": 1}


def test_deleting_the_last_workload_of_an_undeclared_namespace_removes_the_namespace() -> None:
    base = {"a.yaml": pod("a", "x"), "b.yaml": pod("b", "y"), "c.yaml": pod("c", "y")}
    assert [n.name for n in load_state(base).tree.namespaces] == ["x", "y"]
    derived = check_change(base, {"a.yaml": None, "b.yaml": None})
    assert [n.name for n in derived.tree.namespaces] == ["y"]
    assert "x" not in derived.namespace_use


def test_a_policy_alone_keeps_its_namespace() -> None:
    base = {"a.yaml": pod("a", "x"), "np.yaml": policy("np", "x")}
    derived = check_change(base, {"a.yaml": None})
    assert [n.name for n in derived.tree.namespaces] == ["x"]


def test_a_declared_namespace_replaces_the_implied_one_and_back() -> None:
    base = {"a.yaml": pod("a", "shop")}
    implied = load_state(base).tree.namespaces[0]
    assert implied.source is None
    derived = check_change(base, {"ns.yaml": namespace("shop", "t")})
    [declared] = derived.tree.namespaces
    assert dict(declared.labels)["team"] == "t"
    assert declared.source is not None and declared.source.file == "ns.yaml"
    again = apply_changes(derived, {"ns.yaml": None})
    assert again.tree.namespaces == (implied,)
    assert again == load_state(base)


def test_a_declared_namespace_without_objects_stays_and_goes_with_its_file() -> None:
    base = {"ns.yaml": namespace("empty"), "a.yaml": pod("a")}
    derived = check_change(base, {"ns.yaml": namespace("empty", "b")})
    assert [n.name for n in derived.tree.namespaces] == ["default", "empty"]
    derived = check_change(base, {"ns.yaml": None})
    assert [n.name for n in derived.tree.namespaces] == ["default"]


def test_moving_objects_between_files_changes_only_their_source() -> None:
    both = pod("a") + "---\n" + policy("np")
    base = {"one.yaml": both, "b.yaml": pod("b")}
    derived = check_change(base, {"one.yaml": None, "two.yaml": both})
    assert {w.source.file for w in derived.tree.workloads} == {"two.yaml", "b.yaml"}
    assert derived.tree.policies[0].source.file == "two.yaml"
    assert "one.yaml" not in derived.by_file
    # Swapping the objects of two files.
    check_change(base, {"one.yaml": pod("b"), "b.yaml": both.replace("name: a", "name: x")})


@pytest.mark.parametrize(
    ("changed", "culprit"),
    [
        ({"c.yaml": pod("a")}, "c.yaml"),  # a new file repeats an unchanged one
        ({"0.yaml": pod("a")}, "a.yaml"),  # ... the first one read is the original
        ({"b.yaml": pod("a")}, "b.yaml"),  # a changed file repeats an unchanged one
        ({"c.yaml": pod("q") + "---\n" + pod("q")}, "c.yaml"),  # twice in a new file
        ({"c.yaml": pod("q"), "d.yaml": pod("q")}, "d.yaml"),  # in two new files
        ({"c.yaml": policy("np")}, "np.yaml"),
        ({"c.yaml": namespace("default")}, "ns.yaml"),
        ({"c.yaml": admin("x", 3)}, "c.yaml"),
    ],
)
def test_duplicate_names_across_changed_and_unchanged_files(changed: Changes, culprit: str) -> None:
    base = {
        "a.yaml": pod("a"),
        "b.yaml": pod("b"),
        "np.yaml": policy("np"),
        "ns.yaml": namespace("default"),
        "anp.yaml": admin("x", 1),
    }
    message = check_error(base, changed)
    assert "is already defined at" in message
    with pytest.raises(ManifestError) as err:
        apply_changes(load_state(base), changed)
    assert err.value.file == culprit


def test_a_name_freed_and_taken_in_one_change_is_no_duplicate() -> None:
    base = {"a.yaml": pod("a"), "b.yaml": pod("b"), "ns.yaml": namespace("default")}
    check_change(base, {"a.yaml": pod("c"), "b.yaml": pod("a")})
    check_change(base, {"ns.yaml": None, "ns2.yaml": namespace("default", "b")})


def test_admin_policies_are_ordered_again_when_they_change() -> None:
    base = {"a.yaml": pod("a"), "anp.yaml": admin("x", 2), "z.yaml": admin("default", 0)}
    derived = check_change(base, {"anp2.yaml": admin("y", 1)})
    assert [a.name for a in derived.tree.admin_policies] == ["y", "x", "default"]
    assert derived.admin_files == ("anp.yaml", "anp2.yaml", "z.yaml")
    derived = check_change(base, {"anp2.yaml": admin("y", 2)})
    assert len(derived.tree.warnings) == 1 and "share priority 2" in derived.tree.warnings[0]
    derived = check_change(base, {"anp.yaml": admin("x", 5), "z.yaml": None})
    assert [a.priority for a in derived.tree.admin_policies] == [5]
    assert derived.admin_files == ("anp.yaml",)
    derived = check_change(base, {"anp.yaml": pod("b")})
    assert [a.name for a in derived.tree.admin_policies] == ["default"]


def test_warnings_go_with_the_admin_policy_that_caused_them() -> None:
    base = {"anp.yaml": admin("x", 2), "anp2.yaml": admin("y", 2), "a.yaml": pod("a")}
    assert load_state(base).tree.warnings
    assert check_change(base, {"anp2.yaml": None}).tree.warnings == ()
    assert check_change(base, {"a.yaml": pod("b")}).tree.warnings  # unrelated: kept


def test_texts_follow_the_files_with_fast_read_policies() -> None:
    base = {"np.yaml": policy("np"), "a.yaml": pod("a")}
    assert set(load_state(base).tree.texts) == {"np.yaml"}
    derived = check_change(base, {"np.yaml": pod("b"), "np2.yaml": policy("np2")})
    assert dict(derived.tree.texts) == {"np2.yaml": policy("np2")}


def test_a_changed_file_that_does_not_parse_is_the_error() -> None:
    base = {"a.yaml": pod("a"), "np.yaml": policy("np")}
    check_error(base, {"b.yaml": "a: [1\n", "z.yaml": pod("a")})
    check_error(base, {"a.yaml": "kind: Pod\napiVersion: v1\nmetadata: {name: 5}\n"})


def test_paths_that_are_not_manifests_are_ignored() -> None:
    state = load_state({"a.yaml": pod("a")})
    assert apply_changes(state, {"README.md": "not: [yaml", "chart.tgz": None}) is state
    assert apply_changes(state, {"gone.yaml": None}) is state


def test_the_base_is_left_as_it_was() -> None:
    base_files = {"a.yaml": pod("a", port="http"), "np.yaml": policy("np", port="http")}
    base = load_state(base_files)
    texts = dict(base.tree.texts)
    apply_changes(base, {"a.yaml": pod("a", "x"), "np.yaml": policy("np2"), "b.yaml": pod("b")})
    assert base == load_state(base_files)
    assert dict(base.tree.texts) == texts


def test_many_changes_merge_by_one_sort(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(treestate, "_BISECT_LIMIT", 2)
    base = {f"p{i}.yaml": pod(f"p{i}", port="http") for i in range(6)}
    base["np.yaml"] = policy("np", port="http")
    check_change(base, {"p0.yaml": None, "p1.yaml": pod("q1"), "n.yaml": pod("n"), "o.yaml": None})
    check_change(base, {f"p{i}.yaml": None for i in range(5)})
    check_error(base, {"p0.yaml": None, "p1.yaml": None, "x.yaml": pod("p2"), "y.yaml": pod("y")})


def test_a_tree_with_cilium_policies_parses_only_the_changed_files_again() -> None:
    cnp = (
        "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: c}\n"
        "spec: {endpointSelector: {matchLabels: {app: %s}}, ingress: [{}]}\n"
    )
    base_files = {"c.yaml": cnp % "a", "np.yaml": policy("np"), "a.yaml": pod("a")}
    base_files.update({f"p{i}.yaml": pod(f"p{i}") for i in range(5)})
    base = load_state(base_files)
    parsed: list[str] = []
    read_file = treestate.read_file

    def counted(path: str, *args: object, **kwargs: object) -> object:
        parsed.append(path)
        return read_file(path, *args, **kwargs)  # type: ignore[arg-type]

    changed = {"c.yaml": cnp % "p1", "b.yaml": pod("b")}
    with mock.patch.object(treestate, "read_file", side_effect=counted):
        head = apply_changes(base, changed)
    assert sorted(parsed) == ["b.yaml", "c.yaml"]
    head_files = head_of(base_files, changed)
    assert head == load_state(head_files)
    assert_same_tree(head.tree, load_files(head_files))
