"""Validation of requests and responses against the committed GitHub OpenAPI subset.

The subset (tests/fixtures/github/openapi-subset.json, see scripts/update_github_openapi.py)
is OpenAPI 3.0, whose schema dialect differs from JSON Schema in ways that matter here:
`nullable: true` instead of a `"null"` type, `$ref` siblings ignored, `discriminator` as a
hint only. Schemas are converted once to draft-4 JSON Schema (the draft OpenAPI 3.0 builds
on) and validated with `jsonschema`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry
from referencing.jsonschema import DRAFT4

SUBSET_PATH = Path(__file__).resolve().parent.parent / "fixtures" / "github" / "openapi-subset.json"

# Every `#/components/...` pointer is rewritten to this base so that inline schemas (request
# bodies, parameters) resolve against the components and not against themselves.
_BASE_URI = "urn:reachdiff:github-openapi-subset"

_METHODS = ("get", "put", "post", "patch", "delete", "head", "options")

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not _RFC3339.match(value):
        return False
    try:
        datetime.fromisoformat(value.replace("z", "Z").replace("t", "T"))
    except ValueError:
        return False
    return True


_FORMATS = jsonschema.FormatChecker(formats=())
_FORMATS.checks("date-time")(_is_date_time)


def _convert(schema: Any) -> Any:
    """OpenAPI 3.0 schema object -> draft-4 JSON Schema."""
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        # OpenAPI 3.0 ignores siblings of $ref, except that GitHub's description relies on
        # a sibling `nullable` in a few places; honour that one.
        target = {"$ref": _rewrite_ref(schema["$ref"])}
        return {"anyOf": [{"type": "null"}, target]} if schema.get("nullable") else target
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in ("properties", "patternProperties"):
            out[key] = {name: _convert(sub) for name, sub in value.items()}
        elif key in ("items", "not") or (key == "additionalProperties" and isinstance(value, dict)):
            out[key] = _convert(value)
        elif key in ("allOf", "oneOf", "anyOf"):
            out[key] = [_convert(sub) for sub in value]
        elif key in ("discriminator", "nullable", "example", "examples", "externalDocs", "xml"):
            continue
        else:
            out[key] = value
    if schema.get("nullable"):
        if "type" in out:
            types = out["type"] if isinstance(out["type"], list) else [out["type"]]
            out["type"] = [*types, "null"] if "null" not in types else types
            if "enum" in out and None not in out["enum"]:
                out["enum"] = [*out["enum"], None]
        else:
            # `nullable` next to oneOf/allOf: null is allowed in addition to the composition.
            return {"anyOf": [{"type": "null"}, out]}
    return out


def _rewrite_ref(ref: str) -> str:
    if not ref.startswith("#/components/"):
        raise ValueError(f"unsupported $ref {ref!r}")
    return _BASE_URI + ref


def _format_path(path: Iterable[str | int]) -> str:
    out = "$"
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


@dataclass(frozen=True, slots=True)
class Operation:
    method: str  # lower case
    template: str  # e.g. /repos/{owner}/{repo}/pulls/{pull_number}
    operation_id: str
    spec: Mapping[str, Any]
    regex: re.Pattern[str]
    literal_weight: int  # characters outside {params}: more specific templates win


@dataclass(frozen=True, slots=True)
class Match:
    operation: Operation
    path_params: Mapping[str, str]


class OpenAPISubset:
    """The committed subset of GitHub's REST description, ready to validate against."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document = document
        self.info: Mapping[str, Any] = document["info"]
        components = {
            "components": {
                kind: (
                    {name: _convert(s) for name, s in entries.items()}
                    if kind == "schemas"
                    else entries
                )
                for kind, entries in document["components"].items()
            }
        }
        self._registry: Registry[Any] = Registry().with_resource(
            _BASE_URI, DRAFT4.create_resource(components)
        )
        self._validators: dict[int, jsonschema.Draft4Validator] = {}
        self._schema_keepalive: list[Any] = []
        self.operations: list[Operation] = []
        for template, item in document["paths"].items():
            for method in _METHODS:
                if method in item:
                    op = item[method]
                    self.operations.append(
                        Operation(
                            method=method,
                            template=template,
                            operation_id=op["operationId"],
                            spec=op,
                            regex=self._template_regex(template, op, item),
                            literal_weight=len(re.sub(r"\{[^}]+\}", "", template)),
                        )
                    )
        self.operations.sort(key=lambda o: -o.literal_weight)
        self.by_id = {o.operation_id: o for o in self.operations}

    @classmethod
    def load(cls, path: Path = SUBSET_PATH) -> OpenAPISubset:
        return cls(json.loads(path.read_bytes()))

    # -- components ---------------------------------------------------------------------------

    def _deref(self, node: Mapping[str, Any]) -> Mapping[str, Any]:
        """Follow a `#/components/<kind>/<name>` reference (parameters, responses...)."""
        while "$ref" in node:
            _, _, kind, name = node["$ref"].split("/")
            node = self.document["components"][kind][name]
        return node

    def parameters(self, operation: Operation) -> list[Mapping[str, Any]]:
        item = self.document["paths"][operation.template]
        params = [self._deref(p) for p in item.get("parameters", [])]
        params += [self._deref(p) for p in operation.spec.get("parameters", [])]
        return params

    def _template_regex(
        self, template: str, op: Mapping[str, Any], item: Mapping[str, Any]
    ) -> re.Pattern[str]:
        multi = {
            p["name"]
            for p in (
                self._deref(x) for x in [*item.get("parameters", []), *op.get("parameters", [])]
            )
            if p.get("in") == "path" and p.get("x-multi-segment")
        }
        pattern = ""
        for literal, name in re.findall(r"([^{]*)(?:\{([^}]+)\})?", template):
            pattern += re.escape(literal)
            if name:
                pattern += f"(?P<{name}>.+)" if name in multi else f"(?P<{name}>[^/]+)"
        return re.compile(f"^{pattern}$")

    def _validator(self, schema: Any) -> jsonschema.Draft4Validator:
        key = id(schema)
        validator = self._validators.get(key)
        if validator is None:
            converted = _convert(schema)
            validator = jsonschema.Draft4Validator(
                converted, registry=self._registry, format_checker=_FORMATS
            )
            self._validators[key] = validator
            # id() keys are only stable while the schema object lives.
            self._schema_keepalive.append(schema)
        return validator

    def schema_problems(self, schema: Any, instance: Any, where: str) -> list[str]:
        validator = self._validator(schema)
        errors = sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.path)))
        return [f"{where} {_format_path(e.absolute_path)}: {_short(e)}" for e in errors]

    def component_schema(self, name: str) -> Mapping[str, Any]:
        return self.document["components"]["schemas"][name]  # type: ignore[no-any-return]

    # -- requests -----------------------------------------------------------------------------

    def match(self, method: str, path: str) -> Match | None:
        method = method.lower()
        for op in self.operations:
            if op.method != method:
                continue
            m = op.regex.match(path)
            if m:
                return Match(op, m.groupdict())
        return None

    def validate_request(
        self,
        method: str,
        path: str,
        query: Mapping[str, str] | Iterable[tuple[str, str]] = (),
        headers: Mapping[str, str] | None = None,
        body: Any = None,
        *,
        has_body: bool | None = None,
    ) -> list[str]:
        """Problems with one request, as sentences; empty when it matches the description.

        `body` is the parsed JSON body (None and `has_body` False/None when there is none).
        """
        if has_body is None:
            has_body = body is not None
        found = self.match(method, path)
        if found is None:
            if any(op.regex.match(path) for op in self.operations):
                return [f"{method.upper()} {path}: method not defined for this path"]
            return [f"{method.upper()} {path}: no such operation in the OpenAPI subset"]
        op = found.operation
        where = f"{method.upper()} {op.template}"
        problems: list[str] = []
        pairs = list(query.items()) if isinstance(query, Mapping) else list(query)
        lower_headers = {k.lower(): v for k, v in (headers or {}).items()}
        declared_query: set[str] = set()
        for param in self.parameters(op):
            name, loc, schema = param["name"], param["in"], param.get("schema", {})
            if loc == "path":
                raw: str | None = found.path_params.get(name)
                values = [] if raw is None else [raw]
            elif loc == "query":
                declared_query.add(name)
                values = [v for k, v in pairs if k == name]
                if len(values) > 1 and schema.get("type") != "array":
                    problems.append(f"{where}: query parameter {name!r} given {len(values)} times")
            elif loc == "header":
                hv = lower_headers.get(name.lower())
                values = [] if hv is None else [hv]
            else:
                continue
            if not values:
                if param.get("required"):
                    problems.append(f"{where}: missing required {loc} parameter {name!r}")
                continue
            for value in values:
                coerced, ok = _coerce(value, schema)
                if not ok:
                    problems.append(
                        f"{where}: {loc} parameter {name!r}={value!r} is not a valid "
                        f"{schema.get('type', 'value')}"
                    )
                    continue
                problems += self.schema_problems(
                    schema, coerced, f"{where}: {loc} parameter {name!r}"
                )
        for name in sorted({k for k, _ in pairs} - declared_query):
            problems.append(f"{where}: unknown query parameter {name!r}")

        request_body = op.spec.get("requestBody")
        if request_body is None:
            if has_body:
                problems.append(f"{where}: takes no request body")
        elif not has_body:
            if request_body.get("required"):
                problems.append(f"{where}: request body is required")
        else:
            content = request_body.get("content", {})
            media = content.get("application/json")
            if media is None:
                problems.append(f"{where}: no JSON request body defined")
            else:
                problems += self.schema_problems(media.get("schema", {}), body, f"{where}: body")
        return problems

    # -- responses ----------------------------------------------------------------------------

    def validate_response(
        self, method: str, path: str, status: int, body: Any, content_type: str = "application/json"
    ) -> list[str]:
        """Problems with a response the fake produced, judged by the documented schema."""
        found = self.match(method, path)
        if found is None:
            return [f"{method.upper()} {path}: no such operation in the OpenAPI subset"]
        op = found.operation
        where = f"{method.upper()} {op.template} -> {status}"
        responses = op.spec.get("responses", {})
        response = responses.get(str(status))
        if response is None:
            # GitHub documents error statuses sparsely; an undocumented 4xx/5xx is not a
            # shape problem, an undocumented success is.
            return [] if status >= 400 else [f"{where}: status not documented"]
        response = self._deref(response)
        content = response.get("content")
        if not content:
            return []
        media = content.get(content_type.split(";")[0].strip()) or content.get("application/json")
        if media is None or "schema" not in media:
            return []
        return self.schema_problems(media["schema"], body, f"{where}: response")


def _coerce(value: str, schema: Mapping[str, Any]) -> tuple[Any, bool]:
    """A query/path string as the typed value its schema describes."""
    kind = schema.get("type")
    if kind == "integer":
        if re.fullmatch(r"-?\d+", value):
            return int(value), True
        return value, False
    if kind == "number":
        try:
            return float(value), True
        except ValueError:
            return value, False
    if kind == "boolean":
        if value in ("true", "false"):
            return value == "true", True
        return value, False
    return value, True


def _short(error: jsonschema.ValidationError) -> str:
    message = str(error.message)
    if error.validator in ("anyOf", "oneOf") and error.context:
        inner = sorted({e.message for e in error.context})
        message += " (" + "; ".join(m[:200] for m in inner[:4]) + ")"
    return message if len(message) <= 600 else message[:600] + "..."


@cache
def default_subset() -> OpenAPISubset:
    return OpenAPISubset.load()


def validate_request(
    method: str,
    path: str,
    query: Mapping[str, str] | Iterable[tuple[str, str]] = (),
    headers: Mapping[str, str] | None = None,
    body: Any = None,
    *,
    has_body: bool | None = None,
) -> list[str]:
    return default_subset().validate_request(method, path, query, headers, body, has_body=has_body)


def validate_response(
    method: str, path: str, status: int, body: Any, content_type: str = "application/json"
) -> list[str]:
    return default_subset().validate_response(method, path, status, body, content_type)
