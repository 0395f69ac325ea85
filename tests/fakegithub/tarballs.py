"""Repository archives built the way GitHub's codeload builds them (`git archive`).

GitHub answers `GET /repos/{owner}/{repo}/tarball/{ref}` with a redirect to codeload,
which serves a gzip'd pax tar: a global header whose comment is the commit sha, then one
top directory `<owner>-<repo>-<7-char sha>/` holding every directory and file of the tree.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import Mapping
from datetime import datetime


def top_directory(owner: str, repo: str, sha: str) -> str:
    return f"{owner}-{repo}-{sha[:7]}"


def build_tarball(owner: str, repo: str, sha: str, files: Mapping[str, bytes], date: str) -> bytes:
    """The `.tar.gz` bytes of one commit's tree."""
    mtime = int(datetime.fromisoformat(date.replace("Z", "+00:00")).timestamp())
    root = top_directory(owner, repo, sha)
    raw = io.BytesIO()
    with tarfile.open(
        fileobj=raw, mode="w", format=tarfile.PAX_FORMAT, pax_headers={"comment": sha}
    ) as tar:
        directories: set[str] = set()
        tar.addfile(_entry(root + "/", tarfile.DIRTYPE, 0o775, mtime))
        for path in sorted(files):
            parts = path.split("/")
            for depth in range(1, len(parts)):
                directory = "/".join(parts[:depth])
                if directory not in directories:
                    directories.add(directory)
                    tar.addfile(_entry(f"{root}/{directory}/", tarfile.DIRTYPE, 0o775, mtime))
            data = files[path]
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
