"""Repository archives built the way GitHub's codeload builds them (`git archive`).

GitHub answers `GET /repos/{owner}/{repo}/tarball/{ref}` with a redirect to codeload,
which serves a gzip'd pax tar: a global header whose comment is the commit sha, then one
top directory `<owner>-<repo>-<7-char sha>/` holding every directory and file of the tree.
"""

from __future__ import annotations

import fnmatch
import gzip
import io
import tarfile
from collections.abc import Mapping
from datetime import datetime


def top_directory(owner: str, repo: str, sha: str) -> str:
    return f"{owner}-{repo}-{sha[:7]}"


def export_ignored(files: Mapping[str, bytes]) -> set[str]:
    """Paths the root `.gitattributes` marks `export-ignore` (git archive leaves them out).

    Patterns as gitattributes(5) reads them, simplified: a pattern without a slash matches
    the file name at any depth, one with a slash the whole path (`*` within a component,
    `**` across); a directory pattern (`dir/**`, or a pattern naming a directory) hides
    everything below it. Enough for tests; `-export-ignore` and macros are not modelled.
    """
    patterns = []
    for line in files.get(".gitattributes", b"").decode("utf-8", "replace").splitlines():
        fields = line.split()
        if len(fields) >= 2 and not fields[0].startswith("#") and "export-ignore" in fields[1:]:
            patterns.append(fields[0])
    hidden = set()
    for path in files:
        parts = path.split("/")
        prefixes = ["/".join(parts[:k]) for k in range(1, len(parts) + 1)]
        for pattern in patterns:
            pat = pattern.lstrip("/")
            if "/" not in pattern.rstrip("/"):
                if any(fnmatch.fnmatchcase(part, pat.rstrip("/")) for part in parts):
                    hidden.add(path)
            elif any(fnmatch.fnmatchcase(prefix, pat.replace("/**", "")) for prefix in prefixes):
                hidden.add(path)
    return hidden


def build_tarball(
    owner: str,
    repo: str,
    sha: str,
    files: Mapping[str, bytes],
    date: str,
    gitlinks: Mapping[str, str] | None = None,
) -> bytes:
    """The `.tar.gz` bytes of one commit's tree, as `git archive` writes it: files marked
    `export-ignore` are left out and a submodule is an empty directory."""
    mtime = int(datetime.fromisoformat(date.replace("Z", "+00:00")).timestamp())
    root = top_directory(owner, repo, sha)
    raw = io.BytesIO()
    with tarfile.open(
        fileobj=raw, mode="w", format=tarfile.PAX_FORMAT, pax_headers={"comment": sha}
    ) as tar:
        directories: set[str] = set()
        tar.addfile(_entry(root + "/", tarfile.DIRTYPE, 0o775, mtime))
        ignored = export_ignored(files)
        entries: dict[str, bytes | None] = {p: d for p, d in files.items() if p not in ignored}
        entries.update({p: None for p in gitlinks or {}})
        for path in sorted(entries):
            parts = path.split("/")
            for depth in range(1, len(parts)):
                directory = "/".join(parts[:depth])
                if directory not in directories:
                    directories.add(directory)
                    tar.addfile(_entry(f"{root}/{directory}/", tarfile.DIRTYPE, 0o775, mtime))
            data = entries[path]
            if data is None:  # a gitlink: git archive writes the directory, not its content
                tar.addfile(_entry(f"{root}/{path}/", tarfile.DIRTYPE, 0o775, mtime))
                continue
            info = _entry(f"{root}/{path}", tarfile.REGTYPE, 0o664, mtime)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=mtime)


def _entry(name: str, kind: bytes, mode: int, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.mtime = mtime
    info.uname = info.gname = "root"
    return info
