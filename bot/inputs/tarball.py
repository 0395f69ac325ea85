"""Manifest trees from a GitHub tarball, read without extracting and without ``tarfile``.

``tarfile`` buffers a whole pax or GNU long-name header in memory whatever size the header
claims, and the pax parser of older Python 3.11 releases has a quadratic-time regular
expression (CVE-2024-6232). A tar archive is a simple sequence of 512-byte headers and data
blocks, and reading only what we need keeps both memory and time proportional to the
limits (``bot.inputs.files.FileLimits``).
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import zlib
from typing import Protocol

from bot.inputs.files import (
    DEFAULT_LIMITS,
    MANIFEST_SUFFIXES,
    Budget,
    FileLimits,
    FilesError,
    GlobSet,
    MiB,
    committed_shas,
    is_hidden,
    is_manifest_path,
    within_file_limit,
)

_BLOCK = 512
_MAX_HEADER_DATA = 1 * MiB  # pax and GNU long-name records: a path, a few keywords
_REGULAR = frozenset({b"0", b"\0", b"7"})
MAX_HIDDEN = 1000  # hidden manifest-named files kept for a look (``read_tarball(hidden=)``)
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
            raise FilesError(what, f"archive unpacks to more than {self._limit} bytes")
        chunks: list[bytes] = []
        remaining = n
        while remaining:
            try:
                chunk = self._raw.read(min(remaining, MiB))
            except _DECOMPRESSION_ERRORS as err:
                raise FilesError(what, f"corrupt archive: {err}") from None
            if not chunk:
                raise FilesError(what, "archive ends in the middle of an entry")
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
            raise FilesError("archive", f"corrupt archive: {err}") from None
        if not first:
            return None
        self.consumed += len(first)
        if self.consumed > self._limit:
            raise FilesError("archive", f"archive unpacks to more than {self._limit} bytes")
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
            raise FilesError(what, "corrupt archive: invalid numeric field")
        return int.from_bytes(field[1:], "big")
    text = field.split(b"\0", 1)[0].strip(b" ")
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        raise FilesError(what, "corrupt archive: invalid numeric field") from None


_HIGH_BYTES = bytes(range(128, 256))


def _check_header(block: bytes) -> None:
    expected = _octal_field(block[148:156], "archive")
    # The checksum field counts as eight spaces. Some writers sum the bytes as signed
    # chars: each byte above 127 then counts 256 less. Both sums in C (``sum`` of bytes,
    # ``translate`` to count the high bytes): a 10,000-file archive has 10,000 headers.
    rest = block[:148] + block[156:]
    unsigned = sum(rest) + 8 * 0x20
    if expected == unsigned:
        return
    high = len(rest) - len(rest.translate(None, _HIGH_BYTES))
    if expected != unsigned - 256 * high:
        raise FilesError("archive", "not a tar archive, or a corrupt header")


def _parse_pax(data: bytes, what: str) -> dict[str, str]:
    records: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        if data[pos] == 0:  # padding some writers leave after the records
            break
        space = data.find(b" ", pos, pos + 24)
        if space == -1:
            raise FilesError(what, "corrupt archive: malformed pax header")
        try:
            length = int(data[pos:space])
        except ValueError:
            raise FilesError(what, "corrupt archive: malformed pax header") from None
        end = pos + length
        if length <= space - pos + 1 or end > len(data) or data[end - 1 : end] != b"\n":
            raise FilesError(what, "corrupt archive: malformed pax header")
        key, sep, value = data[space + 1 : end - 1].partition(b"=")
        if not sep:
            raise FilesError(what, "corrupt archive: malformed pax header")
        records[key.decode("utf-8", "replace")] = value.decode("utf-8", "surrogateescape")
        pos = end
    return records


def _clean_member_path(name: str, prefix_strip: bool, top: list[str]) -> str | None:
    """The member's path inside the tree; None for the top directory itself.

    Refuses what no honest archive of a repository contains: absolute paths and ``..``.
    """
    if name.startswith("/"):
        raise FilesError(name, "absolute path in archive")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise FilesError(name, "path escapes the archive (..)")
    if "\0" in name:
        raise FilesError(name, "NUL in path")
    if prefix_strip:
        if not parts:
            return None
        if not top:
            top.append(parts[0])
        elif parts[0] != top[0]:
            raise FilesError(name, f"archive has more than one top directory ({top[0]!r})")
        parts = parts[1:]
    if not parts:
        return None
    return "/".join(parts)


def read_tarball(
    data: bytes,
    *,
    prefix_strip: bool = True,
    paths: tuple[str, ...] | None = None,
    limits: FileLimits = DEFAULT_LIMITS,
    hidden: dict[str, bytes | None] | None = None,
    archived: dict[str, tuple[str, str]] | None = None,
) -> dict[str, bytes]:
    """The manifests in a tar archive (plain, gzip, bzip2 or xz), as GitHub serves a commit.

    ``prefix_strip`` drops the single top directory GitHub puts every entry under
    (``owner-repo-sha/``). ``paths`` are globs over the stripped paths (``clusters/**``); a
    pattern naming a directory selects everything below it. Only regular files with manifest
    names outside hidden directories are kept. An entry with an absolute path or ``..`` is
    an error wherever it is; links, devices and FIFOs are an error when they would have been
    kept (a manifest we cannot read would make the review silently incomplete) and ignored
    otherwise.

    ``hidden``, when given, receives the hidden files with manifest names inside ``paths``
    (``.allow-all.yaml``), None for those not read (over the file limit, or past
    ``MAX_HIDDEN`` of them): no reader takes them as manifests, but ``kubectl apply -R`` and
    Argo CD's directory applications apply them, so the caller checks them for objects
    (``unread.hidden_objects``).

    ``archived``, when given, receives the blob ids (``committed_shas``) of the archived
    content of each file kept with bodies set aside (over the file limit): what the git
    tree listing is compared with, since the kept bytes are no longer the committed ones.
    """
    stream = _BoundedStream(_decompressing(data), limits.max_archive_bytes)
    globs = GlobSet(paths) if paths is not None else None
    budget = Budget(limits)
    files: dict[str, bytes] = {}
    top: list[str] = []
    pax: dict[str, str] = {}
    long_name: str | None = None
    while True:
        block = stream.read_header()
        if block is None or block == bytes(_BLOCK):
            if pax or long_name is not None:
                raise FilesError("archive", "archive ends after an extended header")
            break
        _check_header(block)
        typeflag = block[156:157]
        size = _octal_field(block[124:136], "archive")
        padded = -(-size // _BLOCK) * _BLOCK
        if typeflag in (b"x", b"g", b"L", b"K"):
            if size > _MAX_HEADER_DATA:
                raise FilesError("archive", f"extended header of {size} bytes")
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
                raise FilesError(name, "corrupt archive: invalid pax size") from None
            if size < 0:
                raise FilesError(name, "corrupt archive: invalid pax size")
            padded = -(-size // _BLOCK) * _BLOCK
        pax, long_name = {}, None

        rel = _clean_member_path(name, prefix_strip, top)
        wanted = (
            rel is not None
            and typeflag != b"5"
            and is_manifest_path(rel)
            and (globs is None or globs.matches_or_under(rel))
        )
        if (
            not wanted
            and hidden is not None
            and rel is not None
            and typeflag in _REGULAR
            and is_hidden(rel)
            and rel.endswith(MANIFEST_SUFFIXES)
            and (globs is None or globs.matches_or_under(rel))
        ):
            if size <= limits.max_file_bytes and len(hidden) < MAX_HIDDEN:
                hidden[rel] = stream.read_exact(padded, rel)[:size]
            else:
                hidden[rel] = None
                stream.skip(padded, name)
            continue
        if not wanted or rel is None:
            stream.skip(padded, name)
            continue
        if typeflag in _LINKS:
            raise FilesError(rel, "links are not allowed in the archive")
        if typeflag not in _REGULAR:
            raise FilesError(rel, "not a regular file")
        if rel in files:
            raise FilesError(rel, "appears twice in the archive")
        budget.check_size(rel, size)
        payload = stream.read_exact(padded, rel)[:size]
        budget.add(rel, size)
        files[rel] = within_file_limit(rel, payload, limits)
        if archived is not None and files[rel] is not payload:
            archived[rel] = committed_shas(payload)
    return files
