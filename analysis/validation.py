"""Small typed accessors over parsed YAML that fail with a ``ManifestError`` at the right line."""

from __future__ import annotations

import re
import reprlib
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from analysis.errors import ManifestError
from analysis.yamldoc import LineDict, YMap, YSeq, line_of

# RFC 1123 label (namespaces) and subdomain (object names), as the API server checks them.
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


@dataclass(frozen=True, slots=True)
class Context:
    """Where we are in the input: errors raised through it name this file and line."""

    file: str
    line: int

    def at(self, node: object) -> Context:
        line = line_of(node)
        # A node rendered by kustomize carries the file it came from (a patch, a base).
        file = getattr(node, "file", None)
        if isinstance(file, str) and file:
            return Context(file, line or self.line)
        return Context(self.file, line) if line else self

    def fail(self, message: str) -> NoReturn:
        raise ManifestError(self.file, self.line, message)

    def mapping(self, obj: YMap, key: str, *, required: bool = True) -> YMap:
        value = obj.get(key)
        if value is None:
            if required:
                self.at(obj).fail(f"`{key}` is missing")
            empty = LineDict()
            empty.line = line_of(obj, self.line)
            return empty
        if not isinstance(value, dict):
            self.at(obj).fail(f"`{key}` must be a mapping, not {type_name(value)}")
        return value

    def sequence(self, obj: YMap, key: str) -> YSeq | None:
        value = obj.get(key)
        if value is None:
            return None
        if not isinstance(value, list):
            self.at(obj).fail(f"`{key}` must be a list, not {type_name(value)}")
        return value

    def name(self, meta: YMap, field: str) -> str:
        value = meta.get("name")
        if (value is None or value == "") and meta.get("generateName"):
            return self._generated_name(meta)
        if not isinstance(value, str) or not value:
            self.at(meta).fail(f"`{field}` must be a non-empty string")
        if len(value) > 253 or not _DNS_SUBDOMAIN.match(value):
            self.at(meta).fail(
                f"`{field}` {shown(value)} is not a valid name "
                "(lowercase letters, digits, '-', '.')"
            )
        return value

    def _generated_name(self, meta: YMap) -> str:
        """An object named by ``metadata.generateName`` alone (created, not applied: Argo CD
        hooks, Helm hooks, kubectl create) gets the prefix and five random characters, so
        two with one prefix are two objects: each is named by its prefix, its file and
        which one it is there (docs/semantics.md)."""
        value = meta["generateName"]
        # The API server validates the prefix with a trailing '-' masked (maskTrailingDash).
        masked = value[:-1] + "a" if isinstance(value, str) and value.endswith("-") else value
        if not isinstance(value, str) or len(value) > 253 or not _DNS_SUBDOMAIN.match(masked):
            self.at(meta).fail(
                f"`metadata.generateName` {shown(value)} is not a valid name prefix "
                "(lowercase letters, digits, '-', '.')"
            )
        return generated_name(value, self.file, getattr(meta, "generated", 0) or 1)

    def namespace(self, meta: YMap) -> str:
        value = meta.get("namespace")
        if value is None or value == "":
            return "default"
        if not isinstance(value, str) or len(value) > 63 or not _DNS_LABEL.match(value):
            self.at(meta).fail(
                f"`metadata.namespace` {shown(value)} is not a valid namespace name "
                "(lowercase letters, digits and '-', at most 63)"
            )
        return value


def generated_name(prefix: str, file: str, ordinal: int) -> str:
    """The name reachdiff gives the ``ordinal``-th object of ``file`` named by the
    ``generateName`` ``prefix`` alone: the API server makes up the rest, so the file and
    the count (not the line, which moves when anything above it is edited) keep it the same
    object in both trees of a diff. Braces cannot occur in a Kubernetes name."""
    return f"{prefix}{{{file}#{ordinal}}}"


def _prefix_only(obj: YMap) -> tuple[object, object, str] | None:
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or meta.get("name") not in (None, ""):
        return None
    prefix = meta.get("generateName")
    if not isinstance(prefix, str) or not prefix:
        return None
    namespace = meta.get("namespace") or ""
    return (obj.get("kind"), namespace if isinstance(namespace, str) else "", prefix)


def number_generated(objects: Sequence[YMap]) -> None:
    """Counts the objects of one file named by ``generateName`` alone, per kind, namespace
    and prefix, on their ``metadata`` (``LineDict.generated``), in file order."""
    counts: dict[tuple[object, object, str], int] = {}
    for obj in objects:
        key = _prefix_only(obj)
        if key is None:
            continue
        counts[key] = counts.get(key, 0) + 1
        meta = obj["metadata"]
        if not isinstance(meta, LineDict):  # the fast parser's nested mappings are dicts
            meta = LineDict(meta)
            meta.line = line_of(obj)
            obj["metadata"] = meta
        meta.generated = counts[key]


class _ShortRepr(reprlib.Repr):
    # Parsed YAML is LineDict/LineList, which reprlib would print in full.
    def repr_LineDict(self, x: dict[Any, Any], level: int) -> str:
        return self.repr_dict(x, level)

    def repr_LineList(self, x: list[Any], level: int) -> str:
        return self.repr_list(x, level)


_SHORT = _ShortRepr()
_SHORT.maxstring = _SHORT.maxother = 60
_SHORT.maxlevel = 3


def shown(value: object) -> str:
    """``repr`` of an input value, cut short: messages quote what they reject, and what
    they reject may be a megabyte string, a nested structure or a 5000-digit number."""
    try:
        return _SHORT.repr(value)
    except ValueError:  # an int beyond sys.get_int_max_str_digits() cannot be printed
        return "a number too long to print"


def field_names(keys: Iterable[object]) -> str:
    """Unknown field names for a message: a few, each cut short."""
    names = sorted(k[:60] if isinstance(k, str) else shown(k) for k in keys)
    more = f" and {len(names) - 5} more" if len(names) > 5 else ""
    return ", ".join(names[:5]) + more


def fields_named(keys: Collection[object]) -> str:
    """``field x`` or ``fields x, y``: unknown field names for a message, counted."""
    return ("field " if len(keys) == 1 else "fields ") + field_names(keys)


def type_name(value: object) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    return f"{type(value).__name__} {shown(value)}"


def string_map(ctx: Context, value: Any, field: str) -> dict[str, str]:
    """A label map: string keys and string values, as the API server requires."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        ctx.at(value).fail(f"`{field}` must be a mapping of strings, not {type_name(value)}")
    out: dict[str, str] = {}
    for key, item in value.items():
        if isinstance(key, bool | int):
            # Kubernetes turns YAML map keys into JSON object keys: `yes:` is "true", `1:`
            # is "1" (sigs.k8s.io/yaml); other kinds of key it refuses.
            key = str(key).lower() if isinstance(key, bool) else str(key)
        if not isinstance(key, str):
            ctx.at(value).fail(f"`{field}` key {shown(key)} must be a string")
        if not isinstance(item, str):
            ctx.at(value).fail(
                f"`{field}.{key[:60]}` must be a string; quote the value "
                f'({key[:60]}: "{shown(item)}")'
            )
        out[key] = item
    return out


def v1_object(obj: YMap, kind: str) -> tuple[str, str, dict[str, str]] | None:
    """The namespace (default ``default``), name and labels of ``obj`` when it is a core
    (``v1``) object of ``kind`` with a string name and namespace; None otherwise. Lenient,
    for objects read beside the model: labels whose key or value is not a string are left
    out."""
    if obj.get("kind") != kind or obj.get("apiVersion") != "v1":
        return None
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
        return None
    namespace = meta.get("namespace") or "default"
    if not isinstance(namespace, str):
        return None
    labels = meta.get("labels")
    own = (
        {k: v for k, v in labels.items() if isinstance(k, str) and isinstance(v, str)}
        if isinstance(labels, dict)
        else {}
    )
    return namespace, meta["name"], own
