"""``kustomize build`` of one root, in the sandbox, and the source of each rendered object.

The static reading (``bot.inputs.kustomize``) has refused remote resources, paths leaving
the repository, Helm charts and plugins by then; the build runs in a copy of only the
directories the root can reach, with the root-only load restrictor, no plugins and no exec
or container functions (``bot.inputs.sandbox``). The root's kustomization gets
``buildMetadata: [originAnnotations]``, so kustomize names each object's source file, and
``bot.inputs.sourcemap`` gives rendered objects the lines of the original files.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from analysis.errors import ManifestError
from analysis.validation import number_generated
from analysis.yamldoc import LineDict, YAMLSyntaxError, parse_documents
from bot.inputs.render_cache import KeyBuilder, tool_identity
from bot.inputs.sandbox import Limits, ToolError, Tools, normalise, run_tool, workspace

try:
    from yaml import CSafeDumper as _Dumper
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - libyaml missing: same results, only slower
    from yaml import SafeDumper as _Dumper  # type: ignore[assignment]
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

from bot.inputs.kustomize import (
    ORIGIN_ANNOTATION,
    Kustomization,
    check_statically,
    display_dir,
    reachable,
    read_documents,
    resolve,
)


@dataclass(frozen=True, slots=True)
class Rendered:
    root: str
    documents: tuple[LineDict, ...]  # rendered objects, origin annotations still in place
    warnings: tuple[str, ...]


def _plain(value: Any, memo: dict[int, Any]) -> Any:
    # Shared (aliased) nodes stay shared, so the dumper writes them as aliases again
    # instead of expanding them.
    key = id(value)
    if key in memo:
        return memo[key]
    if isinstance(value, dict):
        out: Any = {}
        memo[key] = out
        for k, v in value.items():
            out[k] = _plain(v, memo)
        return out
    if isinstance(value, list):
        out = []
        memo[key] = out
        out.extend(_plain(v, memo) for v in value)
        return out
    return value


def with_origin_annotations(path: str, content: bytes) -> bytes:
    """The kustomization with ``originAnnotations`` added to its ``buildMetadata``."""
    data = read_documents(path, content)[0]
    plain = _plain(data, {})
    build = plain.get("buildMetadata")
    if not isinstance(build, list):
        build = []
    if "originAnnotations" not in build:
        build = [*build, "originAnnotations"]
    plain["buildMetadata"] = build
    return yaml.dump(plain, Dumper=_Dumper, sort_keys=False).encode()


@dataclass(frozen=True, slots=True)
class Build:
    """What one root's build will read: ``paths`` are all the files copied into its
    workspace (the renderer sees nothing else), ``key`` hashes them with the renderer's
    identity, flags and limits (``bot.inputs.render_cache``)."""

    root: str
    paths: tuple[str, ...]
    key: str


class PathIndex:
    """The paths of a tree in order, to list a directory's files without a full scan."""

    def __init__(self, files: Mapping[str, bytes]) -> None:
        self.paths = sorted(files)

    def under(self, directory: str) -> list[str]:
        if not directory:
            return list(self.paths)
        # "/" sorts right before "0": [dir + "/", dir + "0") is everything below dir.
        start = bisect.bisect_left(self.paths, directory + "/")
        end = bisect.bisect_left(self.paths, directory + "0", start)
        return self.paths[start:end]


KUSTOMIZE_FLAGS = ("--load-restrictor", "LoadRestrictionsRootOnly")


def plan_build(
    root: str,
    kustomizations: Mapping[str, Kustomization],
    files: Mapping[str, bytes],
    *,
    tools: Tools,
    limits: Limits,
    index: PathIndex | None = None,
) -> Build | None:
    """The static checks of one root, and what its build reads; ``None`` when no
    kustomize is installed. ``ManifestError`` for a refused or invalid kustomization."""
    chain = reachable(root, kustomizations)
    check_statically(chain, kustomizations, files)
    if tools.kustomize is None:
        return None
    index = index if index is not None else PathIndex(files)
    # Kustomizations only read under their own directory (the load restrictor), so the
    # directories of the reachable ones hold everything a build can read.
    needed = {p for c in chain for p in index.under(c.dir)}
    # Files named across directories are copied too, so that kustomize's load restrictor,
    # not a missing file, is what refuses them, with its clearer message.
    needed.update(
        t for c in chain for e in c.entries if (t := resolve(c, e)) is not None and t in files
    )
    version = ("version",) if tools.kustomize[-1] == "build" else ("version", "--client")
    key = (
        KeyBuilder(
            "kustomize",
            tool_identity(tools.kustomize[:1], version, limits.timeout),
            " ".join(tools.kustomize[1:]),
            *KUSTOMIZE_FLAGS,
            f"isolated={tools.isolate_network}",
            root,
        )
        .limits(limits)
        .files(files, needed)
        .hexdigest()
    )
    return Build(root, tuple(sorted(needed)), key)


def run_build(
    build: Build,
    kustomizations: Mapping[str, Kustomization],
    files: Mapping[str, bytes],
    *,
    tools: Tools,
    limits: Limits,
) -> Rendered:
    """Run a planned build (``plan_build``) in a workspace of ``build.paths``."""
    root = build.root
    k = kustomizations[root]
    assert tools.kustomize is not None
    chain = reachable(root, kustomizations)
    with workspace(files, [p for p in build.paths if p != k.path]) as ws:
        ws.write(k.path, with_origin_annotations(k.path, files[k.path]))
        argv = [
            *tools.kustomize,
            str(ws.tree / root) if root else str(ws.tree),
            *KUSTOMIZE_FLAGS,
        ]
        try:
            done = run_tool(
                argv,
                ws,
                what=f"kustomize build of {display_dir(root)}",
                limits=limits,
                isolate_network=tools.isolate_network,
                extra_env={"KUSTOMIZE_PLUGIN_HOME": str(ws.home / "no-plugins")},
            )
        except ToolError as err:
            file, line = _blame(err.message, chain)
            raise ManifestError(file, line, _explain(err.message)) from None
    try:
        docs = parse_documents(done.stdout)
    except YAMLSyntaxError as exc:  # pragma: no cover - kustomize writes valid YAML
        raise ManifestError(
            k.path, 1, f"kustomize output is not valid YAML: {exc.message}"
        ) from None
    objects = tuple(d.data for d in docs if isinstance(d.data, LineDict))
    number_generated(objects)  # hooks named by generateName alone are each their own
    warnings = tuple(
        line.strip().removeprefix("# ").strip()
        for line in done.stderr.splitlines()
        if line.strip() and "Warning" in line
    )
    return Rendered(root, objects, warnings)


_RESTRICTED = re.compile(r"security; file '([^']*)' is not in or below '([^']*)'")


def _explain(message: str) -> str:
    m = _RESTRICTED.search(message)
    if m is None:
        return message
    file, directory = m.group(1), display_dir(m.group(2))
    return (
        f"{file} is outside {directory}, the directory of the kustomization that names it: "
        "the load restrictor (LoadRestrictionsRootOnly) forbids reading it. Move the file "
        f"under {directory}, or give its directory a kustomization and name that directory "
        f"instead ({message})"
    )


def _blame(message: str, chain: Sequence[Kustomization]) -> tuple[str, int]:
    """The kustomization entry a kustomize error is most likely about."""
    best: tuple[int, str, int] | None = None
    for k in chain:
        for entry in k.entries:
            for form in {entry.value, entry.value.removeprefix("./")}:
                if form and (f"'{form}'" in message or f'"{form}"' in message):
                    score = len(form)
                    if best is None or score > best[0]:
                        best = (score, k.path, entry.line)
    if best is not None:
        return best[1], best[2]
    return chain[0].path, 1


def origin_of(obj: LineDict, root: str) -> tuple[str | None, bool]:
    """The repository file an object came from, per its origin annotation.

    Returns (path, generated): ``generated`` is true when a generator made the object, in
    which case the path is the kustomization that configured it.
    """
    meta = obj.get("metadata")
    annotations = meta.get("annotations") if isinstance(meta, dict) else None
    text = annotations.get(ORIGIN_ANNOTATION) if isinstance(annotations, dict) else None
    if not isinstance(text, str):
        return None, False
    try:
        origin = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError:
        return None, False
    if not isinstance(origin, dict):
        return None, False
    generated = "path" not in origin
    relative = origin.get("path") or origin.get("configuredIn")
    if not isinstance(relative, str) or "repo" in origin:
        return None, generated
    return normalise(root, relative), generated


def strip_origin(obj: LineDict) -> None:
    meta = obj.get("metadata")
    annotations = meta.get("annotations") if isinstance(meta, dict) else None
    if isinstance(annotations, dict) and ORIGIN_ANNOTATION in annotations:
        del annotations[ORIGIN_ANNOTATION]
        if not annotations and isinstance(meta, dict):
            del meta["annotations"]
