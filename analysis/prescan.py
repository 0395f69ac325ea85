"""Documents of kinds reachdiff never reads, set aside before a file is parsed.

A vendored operator bundle is mostly CustomResourceDefinition schemas: prometheus-operator's
``bundle.yaml`` is 4.5 MB, of which the Deployment, Service and RBAC objects are a few KB.
The per-file size limit bounds what the YAML parser is given, and such a file is over it
for text no reachability question depends on. ``set_aside_unread`` finds, by a linear scan
of lines (no parsing), the documents whose top-level ``apiVersion`` and ``kind`` name a kind
in ``UNREAD_KINDS``, and blanks every top-level field of them except ``apiVersion``,
``kind`` and ``metadata``:

- each object keeps its identity, so a kustomization can still select and patch it by name;
- every line keeps its number (a blanked line stays, empty), so what follows is cited at
  the line the author sees;
- whatever the scan is not sure about (flow or JSON documents, anchors and aliases, tags,
  directives, a second ``kind``) is left whole, to be parsed as before.

The blanked bodies are not parsed at all, so a syntax error inside one is not reported:
their content cannot change who may reach whom.
"""

from __future__ import annotations

import itertools
import re

from analysis.yamldoc import MAX_DOCUMENTS

# (API group, kind): objects that hold no pods, no policies and no namespaces. Core kinds
# have the group "". Deliberately short: every kind here is one no part of reachdiff reads.
UNREAD_KINDS = frozenset(
    {
        ("apiextensions.k8s.io", "CustomResourceDefinition"),
        ("", "ConfigMap"),
        ("", "Secret"),
        ("", "ServiceAccount"),
        ("rbac.authorization.k8s.io", "Role"),
        ("rbac.authorization.k8s.io", "ClusterRole"),
        ("rbac.authorization.k8s.io", "RoleBinding"),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
        ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
        ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"),
        ("apiregistration.k8s.io", "APIService"),
        ("scheduling.k8s.io", "PriorityClass"),
        ("storage.k8s.io", "StorageClass"),
        ("monitoring.coreos.com", "PrometheusRule"),
    }
)
KEPT_FIELDS = frozenset({b"apiVersion", b"kind", b"metadata"})
# Memory stays linear in the file with a small factor: at most MAX_DOCUMENTS pieces, and
# per document at most this many top-level fields are looked at.
_MAX_FIELDS = 64

# A document separator line ("---", maybe a comment); content after it on the same line
# (``--- !tag``, ``--- {``) is not matched, so such a document is never split off wrongly.
_SEPARATOR = re.compile(rb"^---[ \t]*(?:#[^\n]*)?\r?$", re.M)
# Lines starting in column 0 with anything but a space, a comment or a line end.
_TOP_LINE = re.compile(rb"^(?![ \r\n#])[^\n]*", re.M)
_KEY_LINE = re.compile(rb"([A-Za-z_][A-Za-z0-9_.-]*):(?:[ \t]+([^\n]*?))?[ \t]*\r?")
_PLAIN_WORD = re.compile(rb"[A-Za-z0-9][A-Za-z0-9./-]*")


# Line breaks YAML 1.1 (libyaml, go-yaml) knows besides LF and CR LF: a lone CR, NEL, LS
# and PS. The scan splits lines at LF only, so after one of these a `---` or a repeated
# `kind:` is hidden inside a line the scan takes for a blanked field's: a "ConfigMap"
# whose body is a NetworkPolicy to every YAML reader.
_OTHER_BREAK = re.compile(rb"\r(?!\n)|\xc2\x85|\xe2\x80[\xa8\xa9]")


def set_aside_unread(data: bytes) -> tuple[bytes, int]:
    """``data`` with the bodies of unread documents blanked, and how many bytes of it are
    left that are not blank padding (what the size limit then applies to). A text with
    line breaks other than LF and CR LF is left whole (``_OTHER_BREAK``)."""
    if _OTHER_BREAK.search(data):
        return data, len(data)
    out: list[bytes] = []
    padding = 0
    start = 0
    separators = _SEPARATOR.finditer(data)
    for count in itertools.count(1):
        if count > MAX_DOCUMENTS:
            return data, len(data)  # the parser's own limit: refused as it is
        found = next(separators, None)
        end = found.end() if found is not None else len(data)
        kept, blanked = _set_aside(data[start:end])
        out.append(kept)
        padding += blanked
        start = end
        if found is None:
            break
    result = b"".join(out)
    return result, len(result) - padding


def _set_aside(document: bytes) -> tuple[bytes, int]:
    """One document (with its trailing separator, if any) and its count of blank padding."""
    tops = _TOP_LINE.finditer(document)
    fields: list[tuple[bytes, int]] = []  # (key, offset of its line)
    values: dict[bytes, bytes] = {}
    for n, m in enumerate(tops):
        if n > _MAX_FIELDS:
            return document, 0  # no Kubernetes object has this many: parse it whole
        line = m.group(0)
        if not line or _SEPARATOR.fullmatch(line):
            continue  # the separator ending this document
        key = _KEY_LINE.fullmatch(line)
        if key is None:
            return document, 0  # flow, JSON, tags, directives, "...": parse it whole
        name = key.group(1)
        if name in values:
            return document, 0  # a repeated key: let the parser report it
        values[name] = key.group(2) or b""
        fields.append((name, m.start()))
    if _identity(values) not in UNREAD_KINDS:
        return document, 0
    separator = _SEPARATOR.search(document, fields[-1][1] if fields else 0)
    body_end = separator.start() if separator is not None else len(document)
    pieces: list[bytes] = [document[: fields[0][1]]]
    padding = 0
    for n, (name, offset) in enumerate(fields):
        end = fields[n + 1][1] if n + 1 < len(fields) else body_end
        block = document[offset:end]
        if name in KEPT_FIELDS:
            if b"*" in block or b"&" in block or b"!" in block:
                return document, 0  # an alias, anchor or tag could tie it to the rest
            pieces.append(block)
        else:
            newline = b"\r\n" if b"\r\n" in block else b"\n"
            lines = block.count(b"\n")
            pieces.append(newline * lines)
            padding += len(newline) * lines
    pieces.append(document[body_end:])
    return b"".join(pieces), padding


def _identity(values: dict[bytes, bytes]) -> tuple[str, str] | None:
    api_version = _scalar(values.get(b"apiVersion"))
    kind = _scalar(values.get(b"kind"))
    if api_version is None or kind is None:
        return None
    group = api_version.rpartition("/")[0] if "/" in api_version else ""
    return group, kind


def _scalar(value: bytes | None) -> str | None:
    """A one-word plain or quoted scalar (a trailing comment allowed); None otherwise."""
    if value is None:
        return None
    value = value.split(b" #", 1)[0].strip()
    if len(value) >= 2 and value[:1] == value[-1:] and value[:1] in (b'"', b"'"):
        value = value[1:-1]
    if not _PLAIN_WORD.fullmatch(value):
        return None
    return value.decode("ascii")
