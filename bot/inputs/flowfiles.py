"""Reading flow logs and flow summaries from files, streamed in constant memory.

Each file is read line by line (gzip detected by its magic bytes) and each record is given
to ``analysis.flows``; the format (Hubble JSON, Calico JSON, the documented CSV, or a
summary written by ``reachdiff flows summarize``) is told from the file's first record.
Lines are bounded (``MAX_LINE``): a longer one is malformed, skipped without being held.
Malformed records are counted and the first few named by file and line.
"""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Iterable, Iterator
from typing import IO

from analysis.flows import BadRecord, csv_header, parse_calico, parse_csv_row, parse_hubble
from analysis.flowsummary import FlowSummary, Summarizer, summary_from_json

MAX_LINE = 1024 * 1024
MAX_SUMMARY_BYTES = 256 * 1024 * 1024
_GZIP_MAGIC = b"\x1f\x8b"
_SUMMARY_MARK = b'"reachdiff_flows"'


class FlowFileError(ValueError):
    """A flow file that cannot be read at all; ``str()`` names the file and the fix."""


def _open(path: str) -> IO[bytes]:
    try:
        raw = open(path, "rb")  # noqa: SIM115 - returned to the caller, closed there
    except OSError as err:
        raise FlowFileError(f"{path}: cannot read: {err.strerror}") from None
    if raw.peek(2)[:2] == _GZIP_MAGIC:
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    return raw


def _lines(handle: IO[bytes], path: str, summarizer: Summarizer) -> Iterator[tuple[int, bytes]]:
    number = 0
    readline = handle.readline
    while True:
        try:
            line = readline(MAX_LINE + 1)
        except (OSError, EOFError, gzip.BadGzipFile) as err:
            summarizer.malformed(f"{path}:{number + 1}: the file is cut or corrupt ({err})")
            return
        if not line:
            return
        number += 1
        if len(line) > MAX_LINE and not line.endswith(b"\n"):
            summarizer.malformed(f"{path}:{number}: a line over {MAX_LINE} bytes")
            while line and not line.endswith(b"\n"):
                line = readline(MAX_LINE)
            continue
        if line.strip():
            yield number, line


def _format_of(first: bytes) -> str:
    text = first.lstrip()
    if text.startswith(b"{"):
        if _SUMMARY_MARK in text[:64]:
            return "summary"
        try:
            doc = json.loads(text)
        except (ValueError, RecursionError):
            return "hubble"  # reported as malformed at its line
        if isinstance(doc, dict) and ("reporter" in doc or "source_namespace" in doc):
            return "calico"
        return "hubble"
    return "csv"


def read_into(path: str, summarizer: Summarizer) -> None:
    """Add the records of one file to ``summarizer``."""
    with _open(path) as handle:
        lines = _lines(handle, path, summarizer)
        first = next(lines, None)
        if first is None:
            summarizer.finished_input(path, "empty", 0)
            return
        fmt = _format_of(first[1])
        if fmt == "summary":
            summarizer.merge(_read_summary(path, first[1], handle))
            return
        records = _read_records(fmt, path, first, lines, summarizer)
        summarizer.finished_input(path, fmt, records)


def _read_records(
    fmt: str,
    path: str,
    first: tuple[int, bytes],
    lines: Iterator[tuple[int, bytes]],
    summarizer: Summarizer,
) -> int:
    records = 0
    if fmt == "csv":
        number, header = first
        try:
            where = csv_header(next(csv.reader([header.decode("utf-8", "replace")])))
        except BadRecord as err:
            raise FlowFileError(f"{path}:{number}: {err}") from None
        for number, line in lines:
            records += 1
            try:
                row = next(csv.reader([line.decode("utf-8")]))
                summarizer.add(parse_csv_row(where, row))
            except (BadRecord, UnicodeDecodeError, csv.Error) as err:
                summarizer.malformed(f"{path}:{number}: {err}")
        return records
    parse = parse_hubble if fmt == "hubble" else parse_calico
    loads, add = json.loads, summarizer.add
    for number, line in _chain(first, lines):
        records += 1
        try:
            add(parse(loads(line)))
        except (BadRecord, ValueError, RecursionError) as err:
            # ValueError: JSON that does not decode (json.JSONDecodeError is one)
            summarizer.malformed(f"{path}:{number}: {str(err)[:200]}")
    return records


def _chain(
    first: tuple[int, bytes], rest: Iterator[tuple[int, bytes]]
) -> Iterator[tuple[int, bytes]]:
    yield first
    yield from rest


def _read_summary(path: str, first: bytes, handle: IO[bytes]) -> FlowSummary:
    data = first + handle.read(MAX_SUMMARY_BYTES)
    if len(data) > MAX_SUMMARY_BYTES:
        raise FlowFileError(f"{path}: a flow summary over {MAX_SUMMARY_BYTES} bytes")
    try:
        return summary_from_json(json.loads(data))
    except (ValueError, RecursionError) as err:
        raise FlowFileError(f"{path}: not a readable flow summary: {err}") from None


def read_flows(paths: Iterable[str]) -> FlowSummary:
    """One summary of every file (raw logs of any supported format, or summaries)."""
    summarizer = Summarizer()
    for path in paths:
        read_into(path, summarizer)
    return summarizer.result()
