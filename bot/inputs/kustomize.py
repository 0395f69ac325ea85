"""Kustomizations: finding them and checking them statically; ``kustomize_build`` renders.

A kustomization is read twice. First here, without running anything: every entry that names
a file or directory is collected with its line, so that a remote resource (a URL or a git
repository), a path leaving the repository, a Helm chart or a plugin is refused with the
file and line before any renderer starts, and so that the files a kustomization consumes
are known (they are not plain manifests). Then kustomize renders the root in a sandbox
(``bot.inputs.sandbox``) with the root-only load restrictor, no plugins and no exec or container
functions, in a copy of only the directories the root can reach.

The root's own kustomization is rendered with ``buildMetadata: [originAnnotations]`` added,
so kustomize names the source file of every object (``config.kubernetes.io/origin``);
``bot.inputs.sourcemap`` uses that to give rendered objects the lines of the original files.
The build is ``bot.inputs.kustomize_build``.

Why one module of 500 lines: everything a kustomization may name, and every refusal with
its line, is read in one place, so what reaches the renderer can be audited at a glance.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TypeVar

import yaml

from analysis.errors import ManifestError
from analysis.yamldoc import LineDict, YAMLSyntaxError, line_of, parse_documents
from bot.inputs.sandbox import normalise

try:
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - libyaml missing: same results, only slower
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
ORIGIN_ANNOTATION = "config.kubernetes.io/origin"

# Anything kustomize would fetch instead of reading from the directory: URLs of any scheme
# (file:// clones a local repository, which is no better), go-getter and scp-like git
# addresses, the hosts kustomize knows without a scheme, and git query parameters.
_REMOTE = re.compile(
    r"""^(?:[a-z][a-z0-9+.-]*://        # https://, ssh://, file://, git://...
        | git:: | git@ | gh: | [\w.-]+@[\w.-]+:     # go-getter, scp-like addresses
        | (?:www\.)?(?:github|gitlab|bitbucket)\.(?:com|org)(?:/|:)
        )
      | \?(?:ref|version|timeout|submodules)=
      | (?:^|/)_git/ | \.git(?:/|\?|$) | //""",
    re.IGNORECASE | re.VERBOSE,
)

# Annotations that make a resource a KRM function configuration (exec, container, starlark).
_FUNCTION_ANNOTATIONS = ("config.kubernetes.io/function", "config.k8s.io/function")

_PLUGIN_FIELDS = ("generators", "transformers", "validators")
_REFUSED_FIELDS = {
    "helmCharts": "renders Helm charts inside kustomize",
    "helmChartInflationGenerator": "renders Helm charts inside kustomize",
    "helmGlobals": "renders Helm charts inside kustomize",
}


@dataclass(frozen=True, slots=True)
class Entry:
    """One path a kustomization names."""

    field: str  # where, as a readable path: "resources", "patches[1].path"
    value: str
    line: int
    role: str  # "resource" (file or kustomization), "component", "file", "plugin"


@dataclass(frozen=True, slots=True)
class Patch:
    """A patch a kustomization applies, as text located in a repository file."""

    file: str  # the patch file, or the kustomization for an inline patch
    first_line: int  # line of ``file`` on which the patch text starts
    text: str
    target_kind: str | None  # from ``target`` (None: taken from the patch itself)
    target_name: str | None


@dataclass(frozen=True, slots=True)
class Kustomization:
    path: str  # repository path of the kustomization file
    dir: str  # its directory, "" at the repository root
    kind: str  # "Kustomization" or "Component"
    entries: tuple[Entry, ...]
    patches: tuple[Patch, ...]
    inline_plugins: tuple[tuple[str, int, str], ...]  # (field, line, YAML text)


def kustomization_dir(path: str) -> str | None:
    """The directory of a kustomization file, or ``None`` if ``path`` is not one."""
    directory, _, name = path.rpartition("/")
    return directory if name in KUSTOMIZATION_FILES else None


def display_dir(directory: str) -> str:
    return directory or "."


def find_kustomizations(files: Mapping[str, bytes]) -> dict[str, Kustomization]:
    """Every kustomization in ``files``, by directory."""
    found: dict[str, Kustomization] = {}
    for path in sorted(files):
        directory = kustomization_dir(path)
        if directory is None:
            continue
        if directory in found:
            raise ManifestError(
                path,
                1,
                f"{display_dir(directory)} has more than one kustomization file "
                f"({found[directory].path} and {path}); kustomize requires exactly one",
            )
        content = files[path]
        found[directory] = (
            _parse_cached(path, content)
            if len(content) <= _CACHED_SIZE
            else parse_kustomization(path, content)
        )
    return found


_CACHED_SIZE = 16 * 1024  # bytes: real kustomizations are a few hundred


@lru_cache(maxsize=512)
def _parse_cached(path: str, content: bytes) -> Kustomization:
    """``parse_kustomization``, kept process-wide. Both sides of every review parse the
    same kustomizations, and a worker's reviews of one branch too. Safe to share: the
    result is a frozen value of (path, content) alone, whoever asks; and bounded in bytes,
    not only in entries (512 files of at most ``_CACHED_SIZE``: a larger one, hostile or
    not, is parsed each time). Errors are not kept (lru_cache keeps nothing that raises)."""
    return parse_kustomization(path, content)


def has_kustomizations(files: Mapping[str, bytes]) -> bool:
    """Whether ``files`` holds a kustomization file (valid or not)."""
    return any(kustomization_dir(path) is not None for path in files)


def _decode(path: str, content: bytes) -> str:
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ManifestError(path, 1, f"not UTF-8 text ({exc.reason})") from None


def parse_kustomization(path: str, content: bytes) -> Kustomization:
    """The entries and patches of one kustomization file; ``ManifestError`` if malformed."""
    text = _decode(path, content)
    try:
        docs = parse_documents(text)
    except YAMLSyntaxError as exc:
        raise ManifestError(path, exc.line, exc.message) from None
    if len(docs) != 1 or not isinstance(docs[0].data, LineDict):
        raise ManifestError(path, 1, "a kustomization must be one YAML mapping")
    data: LineDict = docs[0].data
    scalars = _scalar_lines(text)
    directory = kustomization_dir(path) or ""
    kind = data.get("kind", "Kustomization")
    if kind not in ("Kustomization", "Component"):
        raise ManifestError(
            path, line_of(data, 1), f"kind must be Kustomization or Component, not {kind!r}"
        )

    for key, why in _REFUSED_FIELDS.items():
        if key in data:
            raise ManifestError(
                path,
                scalars.get((key,), line_of(data, 1)),
                f"`{key}` {why}; reachdiff does not run Helm from kustomize. Render the chart "
                "as a chart of its own (a directory with Chart.yaml) or commit its output",
            )

    entries: list[Entry] = []
    patches: list[Patch] = []
    plugins: list[tuple[str, int, str]] = []

    def line_at(*keys: str | int) -> int:
        return scalars.get(keys, 0) or _nearest_line(data, keys)

    def strings(key: str) -> Iterator[tuple[int, str]]:
        # Entries that must be strings (paths, or inline YAML for plugin configurations).
        return _items(path, data, key, line_at, str, ("a list of strings", "a string"))

    for key, role in (
        ("resources", "resource"),
        ("bases", "resource"),
        ("components", "component"),
        ("crds", "file"),
        ("configurations", "file"),
    ):
        for i, item in strings(key):
            entries.append(Entry(key, item, line_at(key, i), role))

    for key in _PLUGIN_FIELDS:
        for i, item in strings(key):
            if "\n" in item:
                plugins.append((f"{key}[{i}]", line_at(key, i), item))
            else:
                entries.append(Entry(key, item, line_at(key, i), "plugin"))

    for i, spec in enumerate(_mapping_list(path, data, "patches", line_at)):
        if "path" in spec:
            value = _string(path, spec, "path", f"patches[{i}].path", line_at("patches", i, "path"))
            entries.append(
                Entry(f"patches[{i}].path", value, line_at("patches", i, "path"), "file")
            )
            patches.append(_patch_file(directory, value, spec.get("target")))
        elif "patch" in spec:
            value = _string(
                path, spec, "patch", f"patches[{i}].patch", line_at("patches", i, "patch")
            )
            patches.append(
                _inline_patch(path, value, line_at("patches", i, "patch"), spec.get("target"))
            )

    for i, item in strings("patchesStrategicMerge"):
        if "\n" in item or item.lstrip().startswith("{"):
            patches.append(_inline_patch(path, item, line_at("patchesStrategicMerge", i), None))
        else:
            entries.append(
                Entry("patchesStrategicMerge", item, line_at("patchesStrategicMerge", i), "file")
            )
            patches.append(_patch_file(directory, item, None))

    for i, spec in enumerate(_mapping_list(path, data, "patchesJson6902", line_at)):
        target = spec.get("target")
        if "path" in spec:
            field = f"patchesJson6902[{i}].path"
            value = _string(path, spec, "path", field, line_at("patchesJson6902", i, "path"))
            entries.append(Entry(field, value, line_at("patchesJson6902", i, "path"), "file"))
            patches.append(_patch_file(directory, value, target))
        elif "patch" in spec:
            field = f"patchesJson6902[{i}].patch"
            value = _string(path, spec, "patch", field, line_at("patchesJson6902", i, "patch"))
            patches.append(
                _inline_patch(path, value, line_at("patchesJson6902", i, "patch"), target)
            )

    for i, spec in enumerate(_mapping_list(path, data, "replacements", line_at)):
        if "path" in spec:
            field = f"replacements[{i}].path"
            value = _string(path, spec, "path", field, line_at("replacements", i, "path"))
            entries.append(Entry(field, value, line_at("replacements", i, "path"), "file"))

    openapi = data.get("openapi")
    if isinstance(openapi, dict) and "path" in openapi:
        value = _string(path, openapi, "path", "openapi.path", line_at("openapi", "path"))
        entries.append(Entry("openapi.path", value, line_at("openapi", "path"), "file"))

    for key in ("configMapGenerator", "secretGenerator"):
        for i, spec in enumerate(_mapping_list(path, data, key, line_at)):
            for sub in ("files", "envs"):
                values = spec.get(sub) or []
                if not isinstance(values, list):
                    raise ManifestError(
                        path, line_at(key, i, sub), f"`{key}[{i}].{sub}` must be a list"
                    )
                for j, value in enumerate(values):
                    if not isinstance(value, str):
                        raise ManifestError(
                            path,
                            line_at(key, i, sub, j),
                            f"`{key}[{i}].{sub}[{j}]` must be a string",
                        )
                    # files entries may be "key=path".
                    file_part = value.split("=", 1)[1] if sub == "files" and "=" in value else value
                    entries.append(
                        Entry(f"{key}[{i}].{sub}", file_part, line_at(key, i, sub, j), "file")
                    )
            if "env" in spec:
                value = _string(path, spec, "env", f"{key}[{i}].env", line_at(key, i, "env"))
                entries.append(Entry(f"{key}[{i}].env", value, line_at(key, i, "env"), "file"))

    return Kustomization(path, directory, kind, tuple(entries), tuple(patches), tuple(plugins))


def _mapping_list(path: str, data: LineDict, key: str, line_at: Any) -> Iterator[LineDict]:
    for _, item in _items(path, data, key, line_at, LineDict, ("a list", "a mapping")):
        yield item


_Item = TypeVar("_Item")


def _items(
    path: str,
    data: LineDict,
    key: str,
    line_at: Any,
    kind: type[_Item],
    what: tuple[str, str],  # what the list and what each item must be
) -> Iterator[tuple[int, _Item]]:
    value = data.get(key)
    if value is None:
        return
    if not isinstance(value, list):
        raise ManifestError(path, line_at(key), f"`{key}` must be {what[0]}")
    for i, item in enumerate(value):
        if not isinstance(item, kind):
            raise ManifestError(path, line_at(key, i), f"`{key}[{i}]` must be {what[1]}")
        yield i, item


def _string(path: str, obj: Mapping[str, Any], key: str, field: str, line: int) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise ManifestError(path, line, f"`{field}` must be a non-empty string")
    return value


def _target(target: Any) -> tuple[str | None, str | None]:
    if not isinstance(target, dict):
        return None, None
    kind, name = target.get("kind"), target.get("name")
    return (kind if isinstance(kind, str) else None, name if isinstance(name, str) else None)


def _patch_file(directory: str, reference: str, target: Any) -> Patch:
    kind, name = _target(target)
    file = normalise(directory, reference) or reference
    return Patch(file, 1, "", kind, name)


def _inline_patch(path: str, text: str, line: int, target: Any) -> Patch:
    kind, name = _target(target)
    # A block scalar's text starts on the line after its indicator (`patch: |-`).
    return Patch(path, line + 1, text, kind, name)


def _nearest_line(data: LineDict, keys: Sequence[str | int]) -> int:
    node: Any = data
    line = line_of(data, 1)
    for key in keys:
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            break
        line = line_of(node, line)
    return line


def _scalar_lines(text: str, max_depth: int = 6) -> dict[tuple[str | int, ...], int]:
    """The 1-based line of every node down to ``max_depth``, scalars included.

    ``parse_documents`` keeps lines of mappings and lists only; refusals name the line of a
    single list entry, so the composed node graph is walked too. Each node is visited once,
    which keeps aliases from multiplying the work.
    """
    try:
        root = yaml.compose(text, Loader=_Loader)
    except (yaml.YAMLError, RecursionError):  # pragma: no cover - parse_documents ran first
        return {}
    lines: dict[tuple[str | int, ...], int] = {}
    seen: set[int] = set()
    stack: list[tuple[yaml.Node, tuple[str | int, ...]]] = [(root, ())] if root else []
    while stack:
        node, at = stack.pop()
        if id(node) in seen or len(at) > max_depth:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if isinstance(key_node, yaml.ScalarNode):
                    key_path = (*at, key_node.value)
                    lines.setdefault(key_path, key_node.start_mark.line + 1)
                    if isinstance(value_node, yaml.ScalarNode):
                        lines[key_path] = value_node.start_mark.line + 1
                    else:
                        stack.append((value_node, key_path))
        elif isinstance(node, yaml.SequenceNode):
            for i, child in enumerate(node.value):
                lines[(*at, i)] = child.start_mark.line + 1
                stack.append((child, (*at, i)))
    return lines


# ---------------------------------------------------------------------------------------
# The graph of kustomizations


def resolve(k: Kustomization, entry: Entry) -> str | None:
    """The repository path an entry names (``None`` outside the repository)."""
    return normalise(k.dir, entry.value)


def includes(k: Kustomization, kustomizations: Mapping[str, Kustomization]) -> list[str]:
    """Directories of the kustomizations ``k`` builds on (resources, bases, components…)."""
    out: list[str] = []
    for entry in k.entries:
        if entry.role in ("resource", "component", "plugin") and not is_remote(entry.value):
            target = resolve(k, entry)
            if target is not None and target in kustomizations:
                out.append(target)
    return out


def default_roots(kustomizations: Mapping[str, Kustomization]) -> list[str]:
    """Kustomizations no other includes; components only ever build into another."""
    included = {d for k in kustomizations.values() for d in includes(k, kustomizations)}
    return sorted(
        d for d, k in kustomizations.items() if d not in included and k.kind != "Component"
    )


def reachable(root: str, kustomizations: Mapping[str, Kustomization]) -> list[Kustomization]:
    """``root`` and every kustomization it includes, directly or not, root first."""
    order: list[Kustomization] = []
    seen: set[str] = set()
    stack = [root]
    while stack:
        d = stack.pop()
        if d in seen or d not in kustomizations:
            continue
        seen.add(d)
        order.append(kustomizations[d])
        stack.extend(reversed(includes(kustomizations[d], kustomizations)))
    return order


def consumed_files(
    kustomizations: Mapping[str, Kustomization], files: Mapping[str, bytes]
) -> set[str]:
    """Files read by some kustomization: they are rendered, not read as plain manifests."""
    out = {k.path for k in kustomizations.values()}
    for k in kustomizations.values():
        for entry in k.entries:
            if is_remote(entry.value):
                continue
            target = resolve(k, entry)
            if target is not None and target in files:
                out.add(target)
    return out


def is_remote(value: str) -> bool:
    return bool(_REMOTE.search(value.strip()))


def check_statically(
    chain: Sequence[Kustomization],
    kustomizations: Mapping[str, Kustomization],
    files: Mapping[str, bytes],
) -> None:
    """Refuse, before anything runs, what reachdiff will not let kustomize do."""
    for k in chain:
        for entry in k.entries:
            value = entry.value.strip()
            if is_remote(value):
                raise ManifestError(
                    k.path,
                    entry.line,
                    f"`{entry.field}` names the remote resource {value!r}; reachdiff never "
                    "fetches it. Vendor it into the repository and refer to the local copy",
                )
            target = resolve(k, entry)
            if target is None:
                raise ManifestError(
                    k.path,
                    entry.line,
                    f"`{entry.field}` entry {value!r} points outside the repository; reachdiff "
                    "only renders the files of the repository",
                )
            if entry.role == "plugin":
                if target in kustomizations:
                    # A kustomization used as a source of plugin configurations: everything
                    # it builds becomes a configuration.
                    sources = [
                        f
                        for c in reachable(target, kustomizations)
                        for f in _resource_files(c, files)
                    ]
                else:
                    sources = [target] if target in files else []
                for source in sources:
                    _check_plugin_config(
                        k.path, entry.line, entry.field, read_documents(source, files[source])
                    )
        for field, line, text in k.inline_plugins:
            _check_plugin_config(k.path, line, field, read_documents(k.path, text.encode(), line))


def _resource_files(k: Kustomization, files: Mapping[str, bytes]) -> Iterator[str]:
    for entry in k.entries:
        if entry.role == "resource" and not is_remote(entry.value):
            target = resolve(k, entry)
            if target is not None and target in files:
                yield target


def read_documents(path: str, content: bytes, base_line: int = 0) -> list[Any]:
    try:
        return [d.data for d in parse_documents(_decode(path, content))]
    except YAMLSyntaxError as exc:
        raise ManifestError(path, base_line + exc.line, exc.message) from None


def _check_plugin_config(kustomization: str, line: int, field: str, docs: list[Any]) -> None:
    """Only builtin generators and transformers run; plugins and KRM functions never do."""
    for doc in docs:
        if not isinstance(doc, LineDict):
            continue
        meta = doc.get("metadata")
        annotations = meta.get("annotations") if isinstance(meta, dict) else None
        for key in _FUNCTION_ANNOTATIONS:
            if isinstance(annotations, dict) and key in annotations:
                raise ManifestError(
                    kustomization,
                    line,
                    f"`{field}` configures a KRM function ({key}: exec or container); "
                    "reachdiff never runs functions or plugins from a repository",
                )
        if doc.get("apiVersion") != "builtin":
            raise ManifestError(
                kustomization,
                line,
                f"`{field}` configures the plugin {doc.get('apiVersion')}/{doc.get('kind')}; "
                "reachdiff runs kustomize without plugins, exec or container functions: only "
                "builtin generators and transformers (apiVersion: builtin) can be rendered",
            )
