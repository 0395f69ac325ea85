"""Declared communications (``Intent``) and connectivity tests (``ConnectivityTest``).

Both are ``reachdiff.io/v1alpha1`` documents kept in the repository next to the manifests
(docs/intents.md). They are not Kubernetes objects: the manifest reader skips them (they
are neither workloads nor policy kinds reachdiff does not model), and this module reads
them from the same files, strictly: an unknown field, a bad port or an ambiguous selector
is an error naming the file, the line and the fix, because a declaration that is silently
read otherwise than written would pass a check it should fail.

Why one module of 480 lines: it is the strict reader of one document family
(``Intent``, ``ConnectivityTest``): its parts share one budget and one error style.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from analysis.manifests import MANIFEST_SUFFIXES, parse_file
from analysis.model import (
    NAMESPACE_NAME_LABEL,
    IPNetwork,
    LabelRequirement,
    LabelSelector,
    Source,
    labels_of,
)
from analysis.policies import parse_cidr, parse_selector
from analysis.ports import ALL_CONNECTIONS, PROTOCOLS, ConnectionSet, PortSet
from analysis.validation import Context, fields_named, shown, string_map, type_name
from analysis.yamldoc import YMap

GROUP = "reachdiff.io"
API_VERSION = "reachdiff.io/v1alpha1"
INTENT = "Intent"
CONNECTIVITY_TEST = "ConnectivityTest"
KINDS = (INTENT, CONNECTIVITY_TEST)
MAX_ENTRIES = 10_000  # per tree, all lists together: bounded work on hostile input

_ENDPOINT_FIELDS = (
    "namespace",
    "namespaceLabels",
    "namespaceSelector",
    "workload",
    "labels",
    "podSelector",
    "cidr",
)
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_KIND = re.compile(r"^[A-Z][A-Za-z0-9]{0,62}$")


def is_declaration(obj: Mapping[str, Any]) -> bool:
    """Whether a parsed document belongs to reachdiff's own API group (any version)."""
    api_version = obj.get("apiVersion")
    return isinstance(api_version, str) and api_version.partition("/")[0] == GROUP


@dataclass(frozen=True, slots=True)
class EndpointSelector:
    """Which endpoints an entry names; every field given must hold (an empty selector
    names every endpoint: workloads, pods outside the tree and external ranges).

    ``namespaces``: one of these names; ``namespace_selector``: the namespace's labels
    (``namespaceLabels`` and ``namespaceSelector`` together); ``workloads``: (kind or "",
    name); ``pod_selector``: the pod's labels; ``cidr``: external ranges inside it (never
    a pod: pod addresses are not in a manifest)."""

    source: Source
    namespaces: tuple[str, ...] = ()
    namespace_selector: LabelSelector | None = None
    workloads: tuple[tuple[str, str], ...] = ()
    pod_selector: LabelSelector | None = None
    cidr: IPNetwork | None = None

    @property
    def names_pods(self) -> bool:
        """Whether it can only match workloads (it has a pod or namespace field)."""
        return bool(self.namespaces or self.workloads) or (
            self.namespace_selector is not None or self.pod_selector is not None
        )

    def __str__(self) -> str:
        if self.cidr is not None:
            return f"cidr {self.cidr}"
        parts = []
        if self.namespaces:
            parts.append("namespace " + "|".join(self.namespaces))
        if self.namespace_selector is not None:
            parts.append(f"namespaces [{self.namespace_selector}]")
        if self.workloads:
            parts.append("workload " + "|".join(f"{k}/{n}" if k else n for k, n in self.workloads))
        if self.pod_selector is not None:
            parts.append(f"pods [{self.pod_selector}]")
        return ", ".join(parts) or "any endpoint"


@dataclass(frozen=True, slots=True)
class Communication:
    """One ``allow`` or ``deny`` entry: ``src`` may (must not) reach ``dst`` on ``ports``."""

    entry: str  # allow[0], deny[1]: where in its intent
    src: EndpointSelector
    dst: EndpointSelector
    ports: ConnectionSet
    source: Source
    required: bool = False  # an allow that must stay possible
    description: str = ""


# A scope entry's `direction`: which of its endpoints' paths must be declared.
BOTH, INGRESS, EGRESS = "", "ingress", "egress"
DIRECTIONS = (INGRESS, EGRESS)


@dataclass(frozen=True, slots=True)
class Intent:
    """``directions[i]`` is ``scope[i]``'s: ``ingress`` (paths into its endpoints only),
    ``egress`` (out of them only) or "" (both), kept apart from the selectors because a
    direction says which paths are judged, not which endpoints are named."""

    name: str
    source: Source
    scope: tuple[EndpointSelector, ...]
    allow: tuple[Communication, ...]
    deny: tuple[Communication, ...]
    directions: tuple[str, ...] = ()

    def direction(self, index: int) -> str:
        """The direction of ``scope[index]`` (both when not given)."""
        return self.directions[index] if index < len(self.directions) else BOTH


@dataclass(frozen=True, slots=True)
class TestCase:
    entry: str  # cases[0]
    name: str
    src: EndpointSelector
    dst: EndpointSelector
    ports: ConnectionSet
    expect_allowed: bool
    source: Source


@dataclass(frozen=True, slots=True)
class ConnectivityTest:
    name: str
    source: Source
    cases: tuple[TestCase, ...]


@dataclass(frozen=True, slots=True)
class Declarations:
    """Every Intent and ConnectivityTest of one tree, sorted by name."""

    intents: tuple[Intent, ...] = ()
    tests: tuple[ConnectivityTest, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.intents or self.tests)

    def selectors(self) -> tuple[EndpointSelector, ...]:
        """Every endpoint selector, in a fixed order (intents, then tests)."""
        out: list[EndpointSelector] = []
        for intent in self.intents:
            out.extend(intent.scope)
            for c in intent.allow + intent.deny:
                out.extend((c.src, c.dst))
        for test in self.tests:
            for case in test.cases:
                out.extend((case.src, case.dst))
        return tuple(out)

    def networks(self) -> tuple[IPNetwork, ...]:
        """The CIDRs the declarations name: the map's external ranges are cut by them, so
        each range is wholly inside or outside every one."""
        return tuple(dict.fromkeys(s.cidr for s in self.selectors() if s.cidr is not None))


def load_declarations(files: Mapping[str, bytes | str]) -> Declarations:
    """The declarations in ``{path: content}`` (manifest files only; a file without the
    group's name is not parsed again). Raises ``ManifestError`` with file and line."""
    found: list[tuple[str, YMap]] = []
    for path in sorted(files):
        if not path.endswith(MANIFEST_SUFFIXES):
            continue
        content = files[path]
        marker = GROUP.encode() if isinstance(content, bytes) else GROUP
        if marker not in content:  # type: ignore[operator]
            continue
        found.extend((path, obj) for obj in parse_file(path, content) if is_declaration(obj))
    return parse_declarations(found)


def parse_declarations(objects: Iterable[tuple[str, YMap]]) -> Declarations:
    intents: dict[str, Intent] = {}
    tests: dict[str, ConnectivityTest] = {}
    budget = _Budget()
    for path, obj in objects:
        ctx = Context(path, getattr(obj, "line", 1) or 1)
        if obj.get("apiVersion") != API_VERSION:
            ctx.fail(
                f"apiVersion {shown(obj.get('apiVersion'))} is not supported; "
                f"write apiVersion: {API_VERSION}"
            )
        kind = obj.get("kind")
        if kind not in KINDS:
            ctx.fail(f"kind {shown(kind)} is not a {GROUP} kind; use Intent or ConnectivityTest")
        _only(ctx, obj, ("apiVersion", "kind", "metadata", "spec"), "the document")
        meta = ctx.mapping(obj, "metadata")
        name = ctx.name(meta, "metadata.name")
        spec = ctx.mapping(obj, "spec")
        known: Mapping[str, Intent | ConnectivityTest] = intents if kind == INTENT else tests
        if name in known:
            ctx.fail(
                f"{kind} {name} is already defined at {known[name].source}; names must be unique"
            )
        if kind == INTENT:
            intents[name] = _intent(ctx, name, spec, budget)
        else:
            tests[name] = _test(ctx, name, spec, budget)
    return Declarations(
        tuple(intents[n] for n in sorted(intents)), tuple(tests[n] for n in sorted(tests))
    )


class _Budget:
    __slots__ = ("left",)

    def __init__(self) -> None:
        self.left = MAX_ENTRIES

    def take(self, ctx: Context, count: int) -> None:
        self.left -= count
        if self.left < 0:
            ctx.fail(f"more than {MAX_ENTRIES} scope, allow, deny and case entries in one tree")


def _only(ctx: Context, value: YMap, allowed: Iterable[str], where: str) -> None:
    unknown = set(value) - set(allowed)
    if unknown:
        ctx.at(value).fail(
            f"unknown {fields_named(unknown)} in {where}; allowed: {', '.join(allowed)}"
        )


def _entries(ctx: Context, spec: YMap, key: str, budget: _Budget) -> list[tuple[int, Any]]:
    items = ctx.sequence(spec, key) or []
    budget.take(ctx, len(items))
    return list(enumerate(items))


def _intent(ctx: Context, name: str, spec: YMap, budget: _Budget) -> Intent:
    sctx = ctx.at(spec)
    _only(sctx, spec, ("scope", "allow", "deny", "description"), "an Intent's spec")
    scoped = [
        _scope_entry(sctx.at(item), item, f"scope[{i}]")
        for i, item in _entries(sctx, spec, "scope", budget)
    ]
    scope = tuple(sel for sel, _ in scoped)
    allow = tuple(
        _communication(sctx.at(item), item, f"allow[{i}]", allow=True)
        for i, item in _entries(sctx, spec, "allow", budget)
    )
    deny = tuple(
        _communication(sctx.at(item), item, f"deny[{i}]", allow=False)
        for i, item in _entries(sctx, spec, "deny", budget)
    )
    if not (scope or allow or deny):
        sctx.fail(f"Intent {name} declares nothing: give `scope`, `allow` or `deny` entries")
    directions = tuple(d for _, d in scoped)
    return Intent(name, Source(ctx.file, ctx.line), scope, allow, deny, directions)


def _scope_entry(ctx: Context, item: Any, field: str) -> tuple[EndpointSelector, str]:
    """An endpoint selector with an optional ``direction`` (ingress or egress)."""
    direction = BOTH
    if isinstance(item, dict) and "direction" in item:
        direction = item["direction"]
        if direction not in DIRECTIONS:
            ctx.fail(
                f"`{field}.direction` must be ingress (paths into the scope) or egress (paths "
                f"out of it), not {shown(direction)}; leave it out for both"
            )
    return endpoint_selector(ctx, item, field, extra=("direction",)), direction


def _communication(ctx: Context, item: Any, entry: str, *, allow: bool) -> Communication:
    if not isinstance(item, dict):
        ctx.fail(f"`{entry}` must be a mapping with `from` and `to`, not {type_name(item)}")
    fields = ("from", "to", "ports", "description") + (("required",) if allow else ())
    _only(ctx, item, fields, f"`{entry}`")
    required = item.get("required", False)
    if not isinstance(required, bool):
        ctx.fail(f"`{entry}.required` must be true or false, not {type_name(required)}")
    return Communication(
        entry=entry,
        src=_side(ctx, item, "from", entry),
        dst=_side(ctx, item, "to", entry),
        ports=parse_ports(ctx, item.get("ports"), f"{entry}.ports"),
        source=Source(ctx.file, ctx.line),
        required=required,
        description=_description(ctx, item, entry),
    )


def _description(ctx: Context, item: YMap, entry: str) -> str:
    text = item.get("description", "")
    if not isinstance(text, str):
        ctx.fail(f"`{entry}.description` must be a string, not {type_name(text)}")
    return text[:500]


def _side(ctx: Context, item: YMap, key: str, entry: str) -> EndpointSelector:
    if key not in item:
        ctx.fail(f"`{entry}` needs `{key}` (an endpoint selector; {{}} names every endpoint)")
    return endpoint_selector(ctx.at(item[key]), item[key], f"{entry}.{key}")


def _test(ctx: Context, name: str, spec: YMap, budget: _Budget) -> ConnectivityTest:
    sctx = ctx.at(spec)
    _only(sctx, spec, ("cases", "description"), "a ConnectivityTest's spec")
    cases = tuple(
        _case(sctx.at(item), item, f"cases[{i}]")
        for i, item in _entries(sctx, spec, "cases", budget)
    )
    if not cases:
        sctx.fail(f"ConnectivityTest {name} has no `cases`")
    return ConnectivityTest(name, Source(ctx.file, ctx.line), cases)


def _case(ctx: Context, item: Any, entry: str) -> TestCase:
    if not isinstance(item, dict):
        ctx.fail(
            f"`{entry}` must be a mapping with `from`, `to` and `expect`, not {type_name(item)}"
        )
    _only(ctx, item, ("name", "from", "to", "port", "ports", "expect", "description"), f"`{entry}`")
    if "port" in item and "ports" in item:
        ctx.fail(f"`{entry}` has both `port` and `ports`; keep one")
    expect = item.get("expect")
    if expect not in ("allowed", "denied"):
        ctx.fail(f"`{entry}.expect` must be allowed or denied, not {shown(expect)}")
    name = item.get("name", "")
    if not isinstance(name, str):
        ctx.fail(f"`{entry}.name` must be a string, not {type_name(name)}")
    key = "port" if "port" in item else "ports"
    return TestCase(
        entry=entry,
        name=name[:200],
        src=_side(ctx, item, "from", entry),
        dst=_side(ctx, item, "to", entry),
        ports=parse_ports(ctx, item.get(key), f"{entry}.{key}"),
        expect_allowed=expect == "allowed",
        source=Source(ctx.file, ctx.line),
    )


def endpoint_selector(
    ctx: Context, value: Any, field: str, *, extra: tuple[str, ...] = ()
) -> EndpointSelector:
    """``extra``: fields the caller reads itself (a scope entry's ``direction``)."""
    if value is None:
        value = {}
    if not isinstance(value, dict):
        ctx.fail(f"`{field}` must be a mapping (an endpoint selector), not {type_name(value)}")
    _only(ctx, value, _ENDPOINT_FIELDS + extra, f"`{field}`")
    cidr = None
    if "cidr" in value:
        cidr = parse_cidr(ctx, value["cidr"], f"{field}.cidr")
        if len(set(value) - set(extra)) > 1:
            ctx.fail(
                f"`{field}` has `cidr` with pod fields; pod addresses are not in a manifest, "
                "so write the external range and the pods as separate entries"
            )
    namespaces = tuple(sorted(set(_names(ctx, value.get("namespace"), f"{field}.namespace"))))
    for ns in namespaces:
        if len(ns) > 63 or not _DNS_LABEL.match(ns):
            ctx.fail(f"`{field}.namespace` {shown(ns)} is not a valid namespace name")
    ns_selector = _merged(
        ctx,
        value,
        "namespaceLabels",
        "namespaceSelector",
        field,
    )
    pod_selector = _merged(ctx, value, "labels", "podSelector", field)
    where = f"{field}.workload"
    workloads = tuple(
        sorted({_workload(ctx, w, where) for w in _names(ctx, value.get("workload"), where)})
    )
    return EndpointSelector(
        Source(ctx.file, ctx.line), namespaces, ns_selector, workloads, pod_selector, cidr
    )


def _names(ctx: Context, value: Any, field: str) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(v, str) and v for v in items):
        ctx.fail(f"`{field}` must be a name or a non-empty list of names, not {shown(value)}")
    return list(items)


def _workload(ctx: Context, text: str, field: str) -> tuple[str, str]:
    kind, _, name = text.rpartition("/")
    if kind and not _KIND.match(kind):
        ctx.fail(f"`{field}` {shown(text)}: write Kind/name (Deployment/web) or just the name")
    if len(name) > 253 or not _NAME.match(name):
        ctx.fail(f"`{field}` {shown(text)}: {shown(name)} is not a valid object name")
    return kind, name


def _merged(ctx: Context, value: YMap, short: str, full: str, field: str) -> LabelSelector | None:
    """``namespaceLabels`` (a label map) and ``namespaceSelector`` (a LabelSelector with
    matchExpressions), both required when both are given; likewise labels/podSelector."""
    if short not in value and full not in value:
        return None
    labels = string_map(ctx.at(value), value.get(short), f"{field}.{short}")
    selector = (
        parse_selector(ctx.at(value[full]), value[full], f"{field}.{full}")
        if full in value
        else LabelSelector()
    )
    # Both must hold: the selector's own matchLabels join as In requirements (a key both
    # name with different values matches nothing, as the same selector would in a policy).
    both = tuple(LabelRequirement(k, "In", (v,)) for k, v in selector.match_labels)
    return LabelSelector(labels_of(labels), selector.match_expressions + both)


def parse_ports(ctx: Context, value: Any, field: str) -> ConnectionSet:
    """The report notation: ``TCP 80,443,8000-8080; UDP 53``, ``all`` (the default), or a
    bare number (TCP)."""
    if value is None:
        return ALL_CONNECTIONS
    if isinstance(value, int) and not isinstance(value, bool):
        value = f"TCP {value}"
    if not isinstance(value, str):
        ctx.fail(f'`{field}` must be written like "TCP 80,443; UDP 53", not {type_name(value)}')
    text = value.strip()
    if text == "all":
        return ALL_CONNECTIONS
    by_protocol: dict[str, PortSet] = {}
    for part in text.split(";"):
        protocol, _, numbers = part.strip().partition(" ")
        if protocol not in PROTOCOLS:
            ctx.fail(
                f"`{field}` {shown(value)}: {shown(protocol)} is not TCP, UDP or SCTP "
                '(write "TCP 80,443; UDP 53", protocols in capitals)'
            )
        ports = _port_set(numbers.strip())
        if ports is None:
            ctx.fail(
                f"`{field}` {shown(value)}: write the ports of {protocol} as numbers and ranges "
                "within 1-65535 (80,443,8000-8080) or `all`"
            )
        by_protocol[protocol] = by_protocol.get(protocol, PortSet()) | ports
    return ConnectionSet.of(by_protocol)


def _port_set(text: str) -> PortSet | None:
    if text == "all":
        return PortSet.all()
    intervals = []
    for piece in text.replace(" ", "").split(","):
        lo, dash, hi = piece.partition("-")
        if not lo.isdigit() or (dash and not hi.isdigit()) or len(lo) > 5 or len(hi) > 5:
            return None
        first, last = int(lo), int(hi) if dash else int(lo)
        if not 1 <= first <= last <= 65535:
            return None
        intervals.append((first, last))
    return PortSet.of(*intervals)


def namespace_name_selector(names: Iterable[str]) -> LabelSelector:
    """The namespace names as a selector on the label the API server sets to the name."""
    return LabelSelector((), (LabelRequirement(NAMESPACE_NAME_LABEL, "In", tuple(sorted(names))),))
