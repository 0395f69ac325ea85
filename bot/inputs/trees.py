"""Manifest trees from a directory on disk or from a GitHub tarball.

Both readers turn a source of manifests into ``dict[path, bytes]`` (relative POSIX path ->
file contents) for ``analysis.manifests.load_files``. Everything they read comes from a pull
request and is hostile: a symlink may point at ``/etc``, a tarball may name ``../../x`` or
unpack to terabytes. So nothing is ever extracted to disk, every link is checked against the
root, and every read is bounded by ``TreeLimits`` before the bytes are held in memory.

The tarball reader parses the tar format itself instead of using ``tarfile``: ``tarfile``
buffers a whole pax or GNU long-name header in memory whatever size the header claims, and
the pax parser of older Python 3.11 releases has a quadratic-time regular expression
(CVE-2024-6232). A tar archive is a simple sequence of 512-byte headers and data blocks, and
reading only what we need keeps both memory and time proportional to the limits.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import os
import re
import stat
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from analysis.errors import InputError
from analysis.prescan import set_aside_unread

MiB = 1024 * 1024

# Extensions and names kept from directories, tarballs and git trees: every manifest kubectl,
# kustomize or helm would read (Chart.yaml, values*.yaml and chart templates are .yaml), and
# the other inputs renderers take: helm helpers and files, kustomize generator sources
# (configMapGenerator files are often scripts, certificates, SQL or web content, as in
# stefanprodan/podinfo's deploy/bases/frontend). They are read as data, never run.
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
RENDER_INPUT_SUFFIXES = (
    ".tpl",
    ".tmpl",
    ".gotmpl",
    ".txt",
    ".env",
    ".properties",
    ".conf",
    ".ini",
    ".toml",
    ".cfg",
    ".sh",
    ".bash",
    ".py",
    ".lua",
    ".js",
    ".xml",
    ".html",
    ".sql",
    ".csv",
    ".rego",
    ".pem",
    ".crt",
    ".cert",
    ".key",
)
MANIFEST_NAMES = frozenset({"Kustomization"})
DEFAULT_INCLUDE = (
    *(f"**/*{suffix}" for suffix in MANIFEST_SUFFIXES + RENDER_INPUT_SUFFIXES),
    "**/Kustomization",
)


@dataclass(frozen=True, slots=True)
class TreeLimits:
    """Bounds on what one tree may hold; exceeding any is an error naming the file.

    ``max_archive_bytes`` bounds the decompressed tar stream, including the files that are
    not kept, since decompressing is what costs time on a compression bomb.

    ``max_file_bytes`` bounds what the YAML parser is given of one file. A larger file, up
    to ``max_scanned_file_bytes``, is read and scanned line by line (linear time, one copy
    in memory); the bodies of documents of kinds reachdiff never reads (a vendored bundle's
    CustomResourceDefinitions, ``analysis.prescan``) are blanked, and the file is kept when
    what is left is within ``max_file_bytes``.
    """

    max_file_bytes: int = 4 * MiB
    max_total_bytes: int = 512 * MiB
    max_files: int = 200_000
    max_archive_bytes: int = 2048 * MiB
    max_scanned_file_bytes: int = 64 * MiB

    @property
    def max_read_bytes(self) -> int:
        """The largest file read at all."""
        return max(self.max_file_bytes, self.max_scanned_file_bytes)


DEFAULT_LIMITS = TreeLimits()


class TreeError(InputError):
    """A tree that cannot be read safely; ``path`` names the file or link responsible."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(path, message)
        self.path = path
        self.message = message

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def is_hidden(path: str) -> bool:
    """Whether any component is a dot-file or dot-directory (``.git``, ``.github``, ...).

    Tooling configuration lives there, never cluster manifests; every reader skips these so
    that a checkout, a git tree and a tarball of the same commit give the same files.
    """
    return any(part.startswith(".") for part in path.split("/"))


def is_manifest_path(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return not is_hidden(path) and (
        name.endswith(MANIFEST_SUFFIXES + RENDER_INPUT_SUFFIXES) or name in MANIFEST_NAMES
    )


def compile_glob(pattern: str) -> re.Pattern[str]:
    """A glob over POSIX paths as a regular expression matching the whole path.

    ``*`` and ``?`` never cross ``/``; ``**`` as a whole component matches any number of
    directories, including none (``**/*.yaml`` matches ``a.yaml`` and ``x/y/a.yaml``,
    ``clusters/**`` everything under ``clusters``); ``[...]`` is a character class, ``[!...]``
    its complement.
    """
    pattern = pattern.lstrip("/")
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        at_component_start = i == 0 or pattern[i - 1] == "/"
        if pattern.startswith("**", i) and at_component_start:
            if i + 2 == n:
                out.append(".*")
                i += 2
                continue
            if pattern[i + 2] == "/":
                out.append("(?:[^/]*/)*")
                i += 3
                continue
        if c == "*":
            while i < n and pattern[i] == "*":
                i += 1
            out.append("[^/]*")
            continue
        if c == "?":
            out.append("[^/]")
        elif c == "[":
            negate = pattern.startswith("[!", i)
            start = i + 2 if negate else i + 1
            # A ']' right after the opening bracket is a member, as in POSIX globs.
            end = pattern.find("]", start + 1)
            if end == -1:
                out.append(re.escape(c))
            else:
                body = "".join(ch if ch == "-" else re.escape(ch) for ch in pattern[start:end])
                out.append(f"[^/{body}]" if negate else f"(?!/)[{body}]")
                i = end + 1
                continue
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out), re.DOTALL)


def path_filter(patterns: Iterable[str]) -> Callable[[str], bool]:
    """Whether a path is selected by ``paths`` globs: it, or a directory above it, matches
    one (``clusters`` selects what is below), as the tarball reader selects."""
    return _GlobSet(patterns).matches_or_under


class _GlobSet:
    def __init__(self, patterns: Iterable[str]) -> None:
        self._regexes = tuple(compile_glob(p) for p in patterns)

    def matches(self, path: str) -> bool:
        return any(r.fullmatch(path) for r in self._regexes)

    def matches_or_under(self, path: str) -> bool:
        """The path or one of its directories matches: ``clusters`` selects what is below."""
        parts = path.split("/")
        return any(self.matches("/".join(parts[:k])) for k in range(len(parts), 0, -1))


class _Budget:
    """Counts files and bytes kept against the limits."""

    def __init__(self, limits: TreeLimits) -> None:
        self.limits = limits
        self.files = 0
        self.total = 0

    def check_size(self, path: str, size: int) -> None:
        check_file_size(path, size, self.limits)

    def add(self, path: str, size: int) -> None:
        self.check_size(path, size)
        self.files += 1
        self.total += size
        if self.files > self.limits.max_files:
            raise TreeError(path, f"more than {self.limits.max_files} files in the tree")
        if self.total > self.limits.max_total_bytes:
            raise TreeError(
                path, f"tree holds more than {self.limits.max_total_bytes} bytes of manifests"
            )


def check_file_size(path: str, size: int, limits: TreeLimits) -> None:
    """Refuse, before reading it, a file too large even to be scanned."""
    if size > limits.max_read_bytes:
        raise TreeError(path, f"file is {size} bytes, over the limit of {limits.max_file_bytes}")


def within_file_limit(path: str, data: bytes, limits: TreeLimits) -> bytes:
    """The file as the parser will see it: as it is, or, when it is over the limit, with
    the documents reachdiff never reads set aside; a ``TreeError`` if still over."""
    if len(data) <= limits.max_file_bytes:
        return data
    if len(data) > limits.max_read_bytes:
        raise TreeError(
            path, f"file is {len(data)} bytes, over the limit of {limits.max_file_bytes}"
        )
    scanned, kept = set_aside_unread(data)
    if kept > limits.max_file_bytes:
        raise TreeError(
            path,
            f"file is {len(data)} bytes, over the limit of {limits.max_file_bytes}, and "
            f"{kept} bytes of it are objects reachdiff reads (only the bodies of "
            "CustomResourceDefinitions, RBAC objects, ConfigMaps, Secrets and the like are "
            "set aside): split the file",
        )
    return scanned


# --- directories ---------------------------------------------------------------------------


def read_directory(
    root: str | os.PathLike[str],
    *,
    include: tuple[str, ...] = DEFAULT_INCLUDE,
    limits: TreeLimits = DEFAULT_LIMITS,
) -> dict[str, bytes]:
    """Every file under ``root`` whose relative path matches one of ``include``.

    Hidden files and directories are skipped. Symlinks are followed only while they stay
    inside ``root``: one that resolves outside (or is dangling) is a ``TreeError`` when the
    walk would read it. Each real directory is walked once, at the first path (in sorted
    order) that reaches it, so a symlink back to an ancestor ends instead of looping and a
    lattice of links cannot multiply the work.
    """
    root_path = Path(root)
    try:
        real_root = root_path.resolve(strict=True)
    except OSError as err:
        raise TreeError(str(root), f"cannot read directory: {err.strerror or err}") from None
    if not real_root.is_dir():
        raise TreeError(str(root), "not a directory")
    globs = _GlobSet(include)
    budget = _Budget(limits)
    files: dict[str, bytes] = {}
    visited: set[tuple[int, int]] = set()
    _walk(real_root, real_root, "", globs, budget, files, visited)
    return files


def _walk(
    real_root: Path,
    directory: str | Path,
    rel_dir: str,
    globs: _GlobSet,
    budget: _Budget,
    files: dict[str, bytes],
    visited: set[tuple[int, int]],
) -> None:
    st = os.stat(directory)
    key = (st.st_dev, st.st_ino)
    if key in visited:
        return
    visited.add(key)
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError as err:
        raise TreeError(rel_dir or ".", f"cannot list directory: {err.strerror or err}") from None
    for entry in entries:
        if entry.name.startswith("."):
            continue
        rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
        target: str | Path = entry.path  # a Path only where a link is resolved: they cost
        try:
            if entry.is_symlink():
                resolved = _resolve_inside(real_root, Path(entry.path), rel)
                if resolved is None:  # dangling: only an error if we would have read it
                    if globs.matches(rel):
                        raise TreeError(rel, "symlink points to nothing")
                    continue
                target = resolved
                st = os.stat(target)
            else:
                st = entry.stat()  # scandir's own stat: no path parsing, often cached
        except OSError as err:
            raise TreeError(rel, f"cannot read: {err.strerror or err}") from None
        if stat.S_ISDIR(st.st_mode):
            _walk(real_root, target, rel, globs, budget, files, visited)
        elif stat.S_ISREG(st.st_mode) and globs.matches(rel):
            budget.check_size(rel, st.st_size)
            data = _read_bounded(target, rel, budget.limits.max_read_bytes)
            budget.add(rel, len(data))
            files[rel] = within_file_limit(rel, data, budget.limits)


def _resolve_inside(real_root: Path, link: Path, rel: str) -> Path | None:
    """The link's final target, refusing one outside the root; None when dangling."""
    try:
        resolved = link.resolve(strict=True)
    except FileNotFoundError:
        # Still refuse an escaping dangling link: its target could appear later.
        lexical = Path(os.path.realpath(link))
        if not lexical.is_relative_to(real_root):
            raise TreeError(rel, f"symlink points outside the tree ({os.readlink(link)})") from None
        return None
    except RuntimeError:  # a cycle made only of symlinks
        raise TreeError(rel, "symlink loop") from None
    except OSError as err:
        if err.errno == 40:  # ELOOP
            raise TreeError(rel, "symlink loop") from None
        raise TreeError(rel, f"cannot resolve symlink: {err.strerror or err}") from None
    if not resolved.is_relative_to(real_root):
        raise TreeError(rel, f"symlink points outside the tree ({os.readlink(link)})")
    return resolved


def _read_bounded(path: str | Path, rel: str, max_bytes: int) -> bytes:
    # O_NONBLOCK: a FIFO swapped in after the stat must not hang the reader.
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as err:
        raise TreeError(rel, f"cannot read: {err.strerror or err}") from None
    chunks: list[bytes] = []
    size = 0
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise TreeError(rel, "not a regular file")
        # The file may grow between stat and read: never hold more than the limit.
        while size <= max_bytes:
            chunk = os.read(fd, max_bytes + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as err:
        raise TreeError(rel, f"cannot read: {err.strerror or err}") from None
    finally:
        os.close(fd)
    if size > max_bytes:
        raise TreeError(rel, f"file is over the limit of {max_bytes} bytes")
    return b"".join(chunks)


# --- tarballs ------------------------------------------------------------------------------

_BLOCK = 512
_MAX_HEADER_DATA = 1 * MiB  # pax and GNU long-name records: a path, a few keywords
_REGULAR = frozenset({b"0", b"\0", b"7"})
_LINKS = frozenset({b"1", b"2"})


# What the incremental decompressors raise on a damaged stream (BadGzipFile is an OSError).
_DECOMPRESSION_ERRORS = (OSError, EOFError, lzma.LZMAError, zlib.error, ValueError)


class _Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


class _BoundedStream:
    """A decompressed byte stream that refuses to yield more than ``limit`` bytes."""

    def __init__(self, raw: _Readable, limit: int) -> None:
        self._raw = raw
        self._limit = limit
        self.consumed = 0

    def read_exact(self, n: int, what: str) -> bytes:
        if self.consumed + n > self._limit:
            raise TreeError(what, f"archive unpacks to more than {self._limit} bytes")
        chunks: list[bytes] = []
        remaining = n
        while remaining:
            try:
                chunk = self._raw.read(min(remaining, MiB))
            except _DECOMPRESSION_ERRORS as err:
                raise TreeError(what, f"corrupt archive: {err}") from None
            if not chunk:
                raise TreeError(what, "archive ends in the middle of an entry")
            chunks.append(chunk)
            remaining -= len(chunk)
        self.consumed += n
        return b"".join(chunks)

    def skip(self, n: int, what: str) -> None:
        while n:
            step = min(n, MiB)
            self.read_exact(step, what)
            n -= step

    def read_header(self) -> bytes | None:
        """The next 512-byte block, or None at a clean end of stream."""
        try:
            first = self._raw.read(_BLOCK)
        except _DECOMPRESSION_ERRORS as err:
            raise TreeError("archive", f"corrupt archive: {err}") from None
        if not first:
            return None
        self.consumed += len(first)
        if self.consumed > self._limit:
            raise TreeError("archive", f"archive unpacks to more than {self._limit} bytes")
        if len(first) < _BLOCK:
            rest = self.read_exact(_BLOCK - len(first), "archive")
            first += rest
        return first


def _decompressing(data: bytes) -> _Readable:
    raw = io.BytesIO(data)
    # Each of these decompresses incrementally: read(n) never inflates more than it returns.
    if data.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if data.startswith(b"BZh"):
        return bz2.BZ2File(raw, mode="rb")
    if data.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMAFile(raw, mode="rb")
    return raw


def _octal_field(field: bytes, what: str) -> int:
    if field and field[0] & 0x80:
        if field[0] != 0x80:  # base-256 negative numbers or absurd sizes
            raise TreeError(what, "corrupt archive: invalid numeric field")
        return int.from_bytes(field[1:], "big")
    text = field.split(b"\0", 1)[0].strip(b" ")
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        raise TreeError(what, "corrupt archive: invalid numeric field") from None


def _check_header(block: bytes) -> None:
    expected = _octal_field(block[148:156], "archive")
    unsigned = sum(block[:148]) + 8 * 0x20 + sum(block[156:])
    signed = sum((b - 256 if b > 127 else b) for b in block[:148] + b" " * 8 + block[156:])
    if expected not in (unsigned, signed):
        raise TreeError("archive", "not a tar archive, or a corrupt header")


def _parse_pax(data: bytes, what: str) -> dict[str, str]:
    records: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        if data[pos] == 0:  # padding some writers leave after the records
            break
        space = data.find(b" ", pos, pos + 24)
        if space == -1:
            raise TreeError(what, "corrupt archive: malformed pax header")
        try:
            length = int(data[pos:space])
        except ValueError:
            raise TreeError(what, "corrupt archive: malformed pax header") from None
        end = pos + length
        if length <= space - pos + 1 or end > len(data) or data[end - 1 : end] != b"\n":
            raise TreeError(what, "corrupt archive: malformed pax header")
        key, sep, value = data[space + 1 : end - 1].partition(b"=")
        if not sep:
            raise TreeError(what, "corrupt archive: malformed pax header")
        records[key.decode("utf-8", "replace")] = value.decode("utf-8", "surrogateescape")
        pos = end
    return records


def _clean_member_path(name: str, prefix_strip: bool, top: list[str]) -> str | None:
    """The member's path inside the tree; None for the top directory itself.

    Refuses what no honest archive of a repository contains: absolute paths and ``..``.
    """
    if name.startswith("/"):
        raise TreeError(name, "absolute path in archive")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise TreeError(name, "path escapes the archive (..)")
    if "\0" in name:
        raise TreeError(name, "NUL in path")
    if prefix_strip:
        if not parts:
            return None
        if not top:
            top.append(parts[0])
        elif parts[0] != top[0]:
            raise TreeError(name, f"archive has more than one top directory ({top[0]!r})")
        parts = parts[1:]
    if not parts:
        return None
    return "/".join(parts)


def read_tarball(
    data: bytes,
    *,
    prefix_strip: bool = True,
    paths: tuple[str, ...] | None = None,
    limits: TreeLimits = DEFAULT_LIMITS,
) -> dict[str, bytes]:
    """The manifests in a tar archive (plain, gzip, bzip2 or xz), as GitHub serves a commit.

    ``prefix_strip`` drops the single top directory GitHub puts every entry under
    (``owner-repo-sha/``). ``paths`` are globs over the stripped paths (``clusters/**``); a
    pattern naming a directory selects everything below it. Only regular files with manifest
    names outside hidden directories are kept. An entry with an absolute path or ``..`` is
    an error wherever it is; links, devices and FIFOs are an error when they would have been
    kept (a manifest we cannot read would make the review silently incomplete) and ignored
    otherwise.
    """
    stream = _BoundedStream(_decompressing(data), limits.max_archive_bytes)
    globs = _GlobSet(paths) if paths is not None else None
    budget = _Budget(limits)
    files: dict[str, bytes] = {}
    top: list[str] = []
    pax: dict[str, str] = {}
    long_name: str | None = None
    while True:
        block = stream.read_header()
        if block is None or block == bytes(_BLOCK):
            if pax or long_name is not None:
                raise TreeError("archive", "archive ends after an extended header")
            break
        _check_header(block)
        typeflag = block[156:157]
        size = _octal_field(block[124:136], "archive")
        padded = -(-size // _BLOCK) * _BLOCK
        if typeflag in (b"x", b"g", b"L", b"K"):
            if size > _MAX_HEADER_DATA:
                raise TreeError("archive", f"extended header of {size} bytes")
            payload = stream.read_exact(padded, "archive")[:size]
            if typeflag == b"x":
                pax = _parse_pax(payload, "archive")
            elif typeflag == b"L":
                long_name = payload.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
            elif typeflag == b"g":
                _parse_pax(payload, "archive")  # only validated: GitHub stores a comment there
            continue

        if "path" in pax:
            name = pax["path"]
        elif long_name is not None:
            name = long_name
        else:
            name = block[0:100].split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
            if block[257:262] == b"ustar":
                prefix = block[345:500].split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
                if prefix:
                    name = f"{prefix}/{name}"
        if "size" in pax:
            try:
                size = int(pax["size"])
            except ValueError:
                raise TreeError(name, "corrupt archive: invalid pax size") from None
            if size < 0:
                raise TreeError(name, "corrupt archive: invalid pax size")
            padded = -(-size // _BLOCK) * _BLOCK
        pax, long_name = {}, None

        rel = _clean_member_path(name, prefix_strip, top)
        wanted = (
            rel is not None
            and typeflag != b"5"
            and is_manifest_path(rel)
            and (globs is None or globs.matches_or_under(rel))
        )
        if not wanted or rel is None:
            stream.skip(padded, name)
            continue
        if typeflag in _LINKS:
            raise TreeError(rel, "links are not allowed in the archive")
        if typeflag not in _REGULAR:
            raise TreeError(rel, "not a regular file")
        if rel in files:
            raise TreeError(rel, "appears twice in the archive")
        budget.check_size(rel, size)
        payload = stream.read_exact(padded, rel)[:size]
        budget.add(rel, size)
        files[rel] = within_file_limit(rel, payload, limits)
    return files


# --- what a reader cannot see --------------------------------------------------------------

# The first line of a Git LFS pointer file (git-lfs docs/spec.md).
LFS_POINTER_PREFIX = b"version https://git-lfs.github.com/spec/"
# Inputs Argo CD renders itself that reachdiff does not model.
UNMODELLED_SUFFIXES = (".jsonnet", ".libsonnet")
GITLINK_MODE = "160000"


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
    return not paths or _GlobSet(paths).matches_or_under(path)


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
) -> list[Unread]:
    """What the git tree holds inside ``paths`` that ``files`` (read from the commit's
    archive) does not show as committed: submodules (gitlinks, whose content archives
    leave out and Argo CD or Flux fetch), manifests the archive leaves out
    (``export-ignore``), manifests whose archived content is not the committed blob
    (``export-subst``, LFS content), and inputs reachdiff does not model (jsonnet)."""
    globs = _GlobSet(paths) if paths else None
    out: list[Unread] = []
    for entry in entries:
        if globs is not None and not globs.matches_or_under(entry.path):
            continue
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
        if entry.type != "blob" or is_hidden(entry.path):
            continue
        if entry.path.endswith(UNMODELLED_SUFFIXES):
            out.append(Unread(entry.path, "jsonnet is rendered by Argo CD, not by reachdiff"))
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
        elif not _same_blob(data, entry.sha):
            out.append(
                Unread(
                    entry.path,
                    "the archive's content is not the committed file (export-subst or "
                    "another .gitattributes filter)",
                )
            )
    return out


def _same_blob(data: bytes, sha: str) -> bool:
    # Line-ending conversion (``eol=crlf``) changes archive and checkout alike: not a
    # difference in what is deployed.
    return sha in (_blob_sha(data), _blob_sha(data.replace(b"\r\n", b"\n")))


def _blob_sha(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def gitmodules_paths(text: bytes) -> list[str]:
    """The ``path =`` entries of a ``.gitmodules`` file (git-config syntax, read simply)."""
    out = []
    for line in text.decode("utf-8", "replace").splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key.strip() == "path" and value.strip():
            out.append(value.strip().strip('"').strip("/"))
    return out
