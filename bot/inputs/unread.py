"""What a reader could not see inside the reviewed ``paths``: files a git tree lists that
the archive left out, submodules, Git LFS pointers; and the reviewed-path test itself.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from analysis.errors import ManifestError
from analysis.frontends import ROUTE_KINDS
from analysis.manifests import object_model, parse_file
from analysis.yamldoc import YMap
from bot.inputs.chartfiles import chart_files_unread
from bot.inputs.components import orphan_components
from bot.inputs.files import (
    DEFAULT_LIMITS,
    MANIFEST_SUFFIXES,
    GlobSet,
    committed_shas,
    is_hidden,
    is_manifest_path,
    read_directory,
)

# The first line of a Git LFS pointer file (git-lfs docs/spec.md).
LFS_POINTER_PREFIX = b"version https://git-lfs.github.com/spec/"
# Inputs Argo CD renders itself that reachdiff does not model.
UNMODELLED_SUFFIXES = (".jsonnet", ".libsonnet")
GITLINK_MODE = "160000"
# Argo CD's repo-server merges these into the Application's source before rendering the
# directory they are in (Helm parameters and values, Kustomize images and patches,
# directory include/exclude): what they change is not in any manifest reachdiff reads.
ARGOCD_SOURCE = re.compile(r"\.argocd-source(?:-[^/]+)?\.yaml")
_ARGOCD_SOURCE = (
    "Argo CD's parameter overrides for the application of this directory (Helm values, "
    "Kustomize images and patches, directory includes), which reachdiff does not apply"
)
MAX_GITMODULES_BYTES = 1024 * 1024
_JSONNET = "jsonnet is rendered by Argo CD, not by reachdiff"


@dataclass(frozen=True, slots=True)
class Unread:
    """A file or directory inside the reviewed ``paths`` whose content was not analysed."""

    path: str
    why: str

    def __str__(self) -> str:
        return f"{self.path}: {self.why}"


@dataclass(frozen=True, slots=True)
class TreeEntry:
    """One entry of a git tree listing (``GET .../git/trees/{sha}?recursive=1``)."""

    path: str
    mode: str  # "100644", "100755", "120000" (symlink), "040000" (tree), "160000" (gitlink)
    type: str  # "blob", "tree", "commit"
    sha: str


def selects(paths: tuple[str, ...] | None, path: str) -> bool:
    """Whether the reviewed ``paths`` (globs; None or empty: everything) cover ``path``."""
    return not paths or GlobSet(paths).matches_or_under(path)


def lfs_pointers(files: Mapping[str, bytes]) -> list[Unread]:
    """Manifests that are Git LFS pointers: the real file is stored outside the repository
    (GitHub's archive, and a clone without LFS, hold only the pointer)."""
    return [
        Unread(path, "a Git LFS pointer: the manifest itself is not in the repository")
        for path, data in sorted(files.items())
        if data.startswith(LFS_POINTER_PREFIX)
    ]


def unread_in_listing(
    entries: Iterable[TreeEntry],
    files: Mapping[str, bytes],
    paths: tuple[str, ...] | None,
    archived: Mapping[str, tuple[str, str]] | None = None,
) -> list[Unread]:
    """What the git tree holds inside ``paths`` that ``files`` (read from the commit's
    archive) does not show as committed: submodules (gitlinks, whose content archives
    leave out and Argo CD or Flux fetch), manifests the archive leaves out
    (``export-ignore``), manifests whose archived content is not the committed blob
    (``export-subst``, LFS content), and inputs reachdiff does not model (jsonnet)."""
    globs = GlobSet(paths) if paths else None
    out: list[Unread] = []
    blobs: list[str] = []
    for entry in entries:
        if globs is not None and not globs.matches_or_under(entry.path):
            continue
        if entry.type == "blob" and entry.mode != "120000":
            blobs.append(entry.path)
        if entry.mode == GITLINK_MODE or entry.type == "commit":
            if not is_hidden(entry.path):
                out.append(
                    Unread(
                        entry.path,
                        f"a git submodule (commit {entry.sha[:7]}): its content is not in "
                        "the repository, and the tools that deploy it fetch it",
                    )
                )
            continue
        if entry.type == "blob" and ARGOCD_SOURCE.fullmatch(entry.path.rpartition("/")[2]):
            out.append(Unread(entry.path, _ARGOCD_SOURCE))
            continue
        if entry.type != "blob" or (is_hidden(entry.path) and not is_manifest_path(entry.path)):
            continue
        if entry.path.endswith(UNMODELLED_SUFFIXES):
            out.append(Unread(entry.path, _JSONNET))
            continue
        if not is_manifest_path(entry.path) or entry.mode == "120000":
            continue  # links inside paths are refused by the archive reader itself
        data = files.get(entry.path)
        if data is None:
            out.append(
                Unread(
                    entry.path,
                    "left out of the repository archive (export-ignore in .gitattributes)",
                )
            )
        elif entry.sha not in (archived or {}).get(entry.path, ()) and not _same_blob(
            data, entry.sha
        ):
            out.append(
                Unread(
                    entry.path,
                    "the archive's content is not the committed file (export-subst or "
                    "another .gitattributes filter)",
                )
            )
    out += [Unread(path, _chart_file(chart)) for path, chart in chart_files_unread(blobs, files)]
    out += [Unread(path, why) for path, why in orphan_components(files)]
    return out


def _same_blob(data: bytes, sha: str) -> bool:
    # Line-ending conversion (``eol=crlf``) changes archive and checkout alike: not a
    # difference in what is deployed.
    return sha in committed_shas(data)


def gitmodules_paths(text: bytes) -> list[str]:
    """The ``path =`` entries of a ``.gitmodules`` file (git-config syntax, read simply)."""
    out = []
    for line in text.decode("utf-8", "replace").splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key.strip() == "path" and value.strip():
            out.append(value.strip().strip('"').strip("/"))
    return out


def unread_in_directory(root: str, files: Mapping[str, bytes]) -> list[str]:
    """What a directory holds that ``files`` (read from it) does not show: LFS pointers,
    submodules named in ``.gitmodules`` that are not checked out, and jsonnet, which the
    directory reader does not read (as ``unread_in_listing`` says of a git tree)."""
    out = [str(u) for u in lfs_pointers(files)]
    # The same walk (hidden paths skipped, links kept inside, limits) for the jsonnet names.
    jsonnet = read_directory(root, include=tuple(f"**/*{s}" for s in UNMODELLED_SUFFIXES))
    out += [str(Unread(path, _JSONNET)) for path in sorted(jsonnet)]
    out += [str(u) for u in _overrides_and_chart_files(root, files)]
    try:
        with open(os.path.join(root, ".gitmodules"), "rb") as f:
            gitmodules = f.read(MAX_GITMODULES_BYTES)
    except OSError:
        return out
    for path in gitmodules_paths(gitmodules):
        directory = os.path.join(root, path)
        if not os.path.isdir(directory) or not os.listdir(directory):
            out.append(f"{path}: a git submodule that is not checked out")
    return out


def _overrides_and_chart_files(root: str, files: Mapping[str, bytes]) -> list[Unread]:
    """Argo CD's parameter override files and the chart files templates may read that the
    directory reader skipped (hidden names, other suffixes), as ``unread_in_listing``."""
    listed: list[str] = []
    for directory, subdirectories, names in os.walk(root):
        subdirectories[:] = sorted(d for d in subdirectories if d != ".git")
        rel = os.path.relpath(directory, root)
        listed += [name if rel == "." else f"{rel}/{name}" for name in names]
    listed = [p.replace(os.sep, "/") for p in sorted(listed)]
    out = skipped_but_read_elsewhere(listed, files)
    hidden: dict[str, bytes | None] = {}
    for path in listed:
        if not is_hidden(path) or not path.endswith(MANIFEST_SUFFIXES):
            continue
        full = os.path.join(root, path)
        if os.path.islink(full):
            continue  # never followed out of the tree; the reader refuses links it needs
        if os.path.getsize(full) > DEFAULT_LIMITS.max_file_bytes:
            hidden[path] = None
            continue
        with open(full, "rb") as f:
            hidden[path] = f.read(DEFAULT_LIMITS.max_file_bytes + 1)
    return out + hidden_objects(hidden)


def skipped_but_read_elsewhere(listed: Iterable[str], files: Mapping[str, bytes]) -> list[Unread]:
    """Of every file ``listed``, those the readers skip that another tool reads: Argo CD's
    parameter overrides, and chart files the chart's templates may read."""
    listed = sorted(listed)
    out = [
        Unread(path, _ARGOCD_SOURCE)
        for path in listed
        if ARGOCD_SOURCE.fullmatch(path.rpartition("/")[2])
    ]
    charts = chart_files_unread(listed, files)
    out += [Unread(path, _chart_file(chart)) for path, chart in charts]
    return out + [Unread(path, why) for path, why in orphan_components(files)]


def _chart_file(chart: str) -> str:
    return (
        f"a file of Helm chart {chart} that its templates may read (.Files) and reachdiff "
        "does not (only manifests and render inputs are read): the render would be made "
        "without it"
    )


# Kinds that matter besides those ``object_model`` reads: where traffic enters (exposure).
_FRONTEND_KINDS = frozenset({"Service", "Ingress", "Gateway", *ROUTE_KINDS})


def hidden_objects(hidden: Mapping[str, bytes | None]) -> list[Unread]:
    """Hidden files (``.allow-all.yaml``, ``.x/policy.yaml``) that hold objects reachdiff
    would read in any other file: every reader skips hidden names, but ``kubectl apply -R``
    and Argo CD's directory applications apply them. A file that is not YAML, or holds no
    such object (a CI configuration, a linter's settings), is tooling and stays skipped."""
    out = []
    for path, data in sorted(hidden.items()):
        if ARGOCD_SOURCE.fullmatch(path.rpartition("/")[2]):
            continue  # reported by name (unread_in_listing)
        if data is None:
            out.append(Unread(path, f"{_HIDDEN}; too large to look into"))
            continue
        try:
            objects = parse_file(path, data, exact=False)
        except ManifestError:
            continue  # not YAML: kubectl and Argo CD would refuse it too
        named = [_describe(path, obj) for obj in objects]
        found = [n for n in named if n]
        if found:
            more = f" and {len(found) - 1} more" if len(found) > 1 else ""
            out.append(Unread(path, f"{_HIDDEN}, and it holds {found[0]}{more}"))
    return out


_HIDDEN = (
    "a hidden file (a name starting with `.`), which reachdiff never reads as a manifest "
    "but kubectl apply -R and Argo CD directory applications apply"
)


def _describe(path: str, obj: YMap) -> str:
    """``NetworkPolicy shop/open`` when reachdiff would read the object, else ""."""
    kind = obj.get("kind")
    try:
        read = object_model(path, obj) is not None
    except ManifestError:
        read = True  # invalid, but of a kind reachdiff reads
    if not read and kind not in _FRONTEND_KINDS:
        return ""
    meta = obj.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    namespace = meta.get("namespace") if isinstance(meta, dict) else None
    where = f"{namespace}/" if isinstance(namespace, str) else ""
    return f"{kind} {where}{name}" if isinstance(name, str) else str(kind)
