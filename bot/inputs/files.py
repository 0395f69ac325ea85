"""Files (a map of repository path to bytes) from a directory on disk; the limits and path
rules every reader shares. ("Tree" is the cluster model the engine builds from files.)

Both readers turn a source of manifests into ``dict[path, bytes]`` (relative POSIX path ->
file contents) for ``analysis.manifests.load_files``. Everything they read comes from a pull
request and is hostile: a symlink may point at ``/etc``, a tarball may name ``../../x`` or
unpack to terabytes. So nothing is ever extracted to disk, every link is checked against the
root, and every read is bounded by ``FileLimits`` before the bytes are held in memory.

The tarball reader is ``bot.inputs.tarball``; what readers could not see inside the
reviewed paths (submodules, LFS pointers, files an archive left out) is ``bot.inputs.unread``.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

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
# Hidden files a renderer reads: `helm template` leaves out of a chart what its
# .helmignore names (templates included), so a chart rendered without it would show
# objects the cluster never gets (a default-deny the pull request ignored away).
HIDDEN_RENDER_INPUTS = frozenset({".helmignore"})
DEFAULT_INCLUDE = (
    *(f"**/*{suffix}" for suffix in MANIFEST_SUFFIXES + RENDER_INPUT_SUFFIXES),
    "**/Kustomization",
    *(f"**/{name}" for name in sorted(HIDDEN_RENDER_INPUTS)),
)


@dataclass(frozen=True, slots=True)
class FileLimits:
    """Bounds on the files of one side; exceeding any is an error naming the file.

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


DEFAULT_LIMITS = FileLimits()


class FilesError(InputError):
    """Files that cannot be read safely; ``path`` names the file or link responsible."""

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
    directory, _, name = path.rpartition("/")
    if name in HIDDEN_RENDER_INPUTS:
        return not is_hidden(directory)
    return not is_hidden(path) and (
        name.endswith(MANIFEST_SUFFIXES + RENDER_INPUT_SUFFIXES) or name in MANIFEST_NAMES
    )


# What reachdiff's path globs are made of; see ``compile_glob``.
_GLOB_REFUSED = re.compile(r"[\x00-\x1f\x7f\[\]\\]")


def check_glob_syntax(pattern: str) -> str:
    """Why ``pattern`` is not a path glob as ``compile_glob`` reads it ("" when it is).

    Settings (``paths``, ``ignore_paths``) and owner rules (``files``, ``environments``)
    refuse what this names rather than match it differently from what its writer meant.
    """
    if not pattern or len(pattern) > 500 or re.search(r"[\x00-\x1f\x7f]", pattern):
        return "is not a file glob"
    if ".." in pattern.split("/"):
        return "'..' is not allowed: globs name paths inside the repository"
    if pattern.startswith("!") or _GLOB_REFUSED.search(pattern):
        return (
            "'!' negation, '[ ]' character classes and '\\' escapes are not supported (as in "
            "CODEOWNERS): use '*', '?' and '**', or list the paths"
        )
    if any("**" in seg and seg != "**" for seg in pattern.strip("/").split("/")):
        return "'**' must be a whole path segment, as in 'a/**/b'"
    return ""


@functools.lru_cache(maxsize=1024)
def compile_glob(pattern: str) -> re.Pattern[str]:
    """The one path glob of reachdiff, as a regular expression matching a whole POSIX path.

    ``*`` and ``?`` never cross ``/``; ``**`` as a whole segment matches any number of
    directories, including none (``**/*.yaml`` matches ``a.yaml`` and ``x/y/a.yaml``,
    ``clusters/**`` everything under ``clusters``); a trailing ``/`` stands for everything
    below the directory (``vendor/`` is ``vendor/**``); a leading ``/`` or ``./`` is the
    repository root. Every other character is itself: there are no ``[ ]`` classes, no
    ``\\`` escapes and no ``!`` negation, as in GitHub's CODEOWNERS, and the settings refuse
    patterns that use them (``check_glob_syntax``).
    """
    pattern = pattern.removeprefix("./").lstrip("/")
    if pattern.endswith("/"):
        pattern += "**"
    out: list[str] = []
    segments = pattern.split("/")
    for i, segment in enumerate(segments):
        last = i == len(segments) - 1
        if segment == "**":
            out.append(".*" if last else "(?:[^/]*/)*")
            continue
        out.append(glob_segment(segment) + ("" if last else "/"))
    return re.compile("".join(out), re.DOTALL)


def glob_segment(segment: str) -> str:
    """One path segment of a glob: ``*`` any characters but ``/``, ``?`` one of them."""
    return "".join("[^/]*" if c == "*" else "[^/]" if c == "?" else re.escape(c) for c in segment)


def path_filter(patterns: Iterable[str]) -> Callable[[str], bool]:
    """Whether a path is selected by ``paths`` globs: it, or a directory above it, matches
    one (``clusters`` selects what is below), as the tarball reader selects."""
    return GlobSet(patterns).matches_or_under


class GlobSet:
    def __init__(self, patterns: Iterable[str]) -> None:
        self._regexes = tuple(compile_glob(p) for p in patterns)

    def matches(self, path: str) -> bool:
        return any(r.fullmatch(path) for r in self._regexes)

    def matches_or_under(self, path: str) -> bool:
        """The path or one of its directories matches: ``clusters`` selects what is below."""
        parts = path.split("/")
        return any(self.matches("/".join(parts[:k])) for k in range(len(parts), 0, -1))


class Budget:
    """Counts files and bytes kept against the limits."""

    def __init__(self, limits: FileLimits) -> None:
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
            raise FilesError(path, f"more than {self.limits.max_files} files in the tree")
        if self.total > self.limits.max_total_bytes:
            raise FilesError(
                path, f"tree holds more than {self.limits.max_total_bytes} bytes of manifests"
            )


def check_file_size(path: str, size: int, limits: FileLimits) -> None:
    """Refuse, before reading it, a file too large even to be scanned."""
    if size > limits.max_read_bytes:
        raise FilesError(path, f"file is {size} bytes, over the limit of {limits.max_file_bytes}")


def blob_sha(data: bytes) -> str:
    """Git's id of a blob with this content."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def committed_shas(data: bytes) -> tuple[str, str]:
    """The blob ids the archived ``data`` may have been committed as: as it is, or with
    CR LF as LF (``eol=crlf`` converts archives and checkouts alike)."""
    return blob_sha(data), blob_sha(data.replace(b"\r\n", b"\n"))


def within_file_limit(path: str, data: bytes, limits: FileLimits) -> bytes:
    """The file as the parser will see it: as it is, or, when it is over the limit, with
    the documents reachdiff never reads set aside; a ``FilesError`` if still over."""
    if len(data) <= limits.max_file_bytes:
        return data
    if len(data) > limits.max_read_bytes:
        raise FilesError(
            path, f"file is {len(data)} bytes, over the limit of {limits.max_file_bytes}"
        )
    scanned, kept = set_aside_unread(data)
    if kept > limits.max_file_bytes:
        raise FilesError(
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
    limits: FileLimits = DEFAULT_LIMITS,
) -> dict[str, bytes]:
    """Every file under ``root`` whose relative path matches one of ``include``.

    Hidden files and directories are skipped. Symlinks are followed only while they stay
    inside ``root``: one that resolves outside (or is dangling) is a ``FilesError`` when the
    walk would read it. Each real directory is walked once, at the first path (in sorted
    order) that reaches it, so a symlink back to an ancestor ends instead of looping and a
    lattice of links cannot multiply the work.
    """
    root_path = Path(root)
    try:
        real_root = root_path.resolve(strict=True)
    except OSError as err:
        raise FilesError(str(root), f"cannot read directory: {err.strerror or err}") from None
    if not real_root.is_dir():
        raise FilesError(str(root), "not a directory")
    globs = GlobSet(include)
    budget = Budget(limits)
    files: dict[str, bytes] = {}
    visited: set[tuple[int, int]] = set()
    _walk(real_root, real_root, "", globs, budget, files, visited)
    return files


def _walk(
    real_root: Path,
    directory: str | Path,
    rel_dir: str,
    globs: GlobSet,
    budget: Budget,
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
        raise FilesError(rel_dir or ".", f"cannot list directory: {err.strerror or err}") from None
    for entry in entries:
        if entry.name.startswith(".") and entry.name not in HIDDEN_RENDER_INPUTS:
            continue
        rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
        target: str | Path = entry.path  # a Path only where a link is resolved: they cost
        try:
            if entry.is_symlink():
                resolved = _resolve_inside(real_root, Path(entry.path), rel)
                if resolved is None:  # dangling: only an error if we would have read it
                    if globs.matches(rel):
                        raise FilesError(rel, "symlink points to nothing")
                    continue
                target = resolved
                st = os.stat(target)
            else:
                st = entry.stat()  # scandir's own stat: no path parsing, often cached
        except OSError as err:
            raise FilesError(rel, f"cannot read: {err.strerror or err}") from None
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
            outside = os.readlink(link)
            raise FilesError(rel, f"symlink points outside the tree ({outside})") from None
        return None
    except RuntimeError:  # a cycle made only of symlinks
        raise FilesError(rel, "symlink loop") from None
    except OSError as err:
        if err.errno == 40:  # ELOOP
            raise FilesError(rel, "symlink loop") from None
        raise FilesError(rel, f"cannot resolve symlink: {err.strerror or err}") from None
    if not resolved.is_relative_to(real_root):
        raise FilesError(rel, f"symlink points outside the tree ({os.readlink(link)})")
    return resolved


_READ_CHUNK = 1024 * 1024


def _read_bounded(path: str | Path, rel: str, max_bytes: int) -> bytes:
    # O_NONBLOCK: a FIFO swapped in after the stat must not hang the reader.
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as err:
        raise FilesError(rel, f"cannot read: {err.strerror or err}") from None
    chunks: list[bytes] = []
    size = 0
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise FilesError(rel, "not a regular file")
        # Ask for what the file holds (and one byte more, to see its end): ``os.read``
        # allocates as much as it is asked for, and asking for the limit (tens of MiB)
        # per small file costs more than reading it. The file may grow between stat and
        # read: never hold more than the limit.
        want = st.st_size + 1
        while size <= max_bytes:
            chunk = os.read(fd, min(want, max_bytes + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            want = max(want, _READ_CHUNK)  # it grew: read on in larger steps
    except OSError as err:
        raise FilesError(rel, f"cannot read: {err.strerror or err}") from None
    finally:
        os.close(fd)
    if size > max_bytes:
        raise FilesError(rel, f"file is over the limit of {max_bytes} bytes")
    return b"".join(chunks)
