"""Owner rules: who must approve which opened paths (``owners`` in ``.github/reachdiff.yml``).

Pure: the rules, the facts about an endpoint they can match, and which rules match a path.

A rule matches an opened path when every criterion it names holds (criteria AND):

- ``destination`` / ``source``: an endpoint selector (below) on that end of the path;
- ``environments``: globs over the path's environment (``.`` is the plain manifests, and a
  repository with one environment has only ``.``);
- ``files``: CODEOWNERS-style globs over the files of the rules responsible for the path
  (any of its causes; a path with no cause matches no ``files`` rule).

An endpoint selector's keys AND too: ``namespaces`` (names, ``*`` globs),
``namespace_labels`` and ``pod_labels`` (every label given, as ``matchLabels``),
``workloads`` (``namespace/Kind/name`` globs; workloads of the repository only),
``outside`` (true: only representatives of pods the repository does not define; false:
never them) and ``cidrs`` (external ranges overlapping one of them; external endpoints only).

Representatives (``~…`` endpoints) stand for many pods whose labels are partly unknown: a
label the representative does not pin to one value (absent, or a value no policy names) may
be the one a rule asks for, so the rule matches it (fail closed: more owners, never fewer).
The same holds for the labels of a namespace the repository does not define.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from analysis.diff import PathChange
from analysis.endpoint_facts import EndpointFacts
from analysis.model import Labels
from analysis.reachability import Endpoint
from bot.inputs.files import compile_glob, glob_segment

Mode = Literal["all", "first"]
MODES: tuple[Mode, ...] = ("all", "first")
FALLBACK = "approvers"  # the group of paths no owner rule matches


@dataclass(frozen=True, slots=True)
class EndpointSelector:
    namespaces: tuple[str, ...] = ()
    namespace_labels: Labels = ()
    workloads: tuple[str, ...] = ()  # "namespace/Kind/name" globs
    pod_labels: Labels = ()
    cidrs: tuple[str, ...] = ()
    outside: bool | None = None


@dataclass(frozen=True, slots=True)
class OwnerRule:
    index: int  # position in ``owners.rules``, from 0
    line: int  # where it starts in the settings file
    name: str  # as configured, else "owners[i]"
    users: frozenset[str]  # lowercased logins
    teams: tuple[str, ...]  # "org/slug", lowercased
    required_approvals: int = 1
    destination: EndpointSelector | None = None
    source: EndpointSelector | None = None
    environments: tuple[str, ...] = ()
    files: tuple[str, ...] = ()

    @property
    def mentions(self) -> tuple[str, ...]:
        """``@alice``, ``@acme/payments``: the rule's owners, as the comment names them."""
        return tuple(f"@{u}" for u in sorted(self.users)) + tuple(f"@{t}" for t in self.teams)


@dataclass(frozen=True, slots=True)
class Owners:
    rules: tuple[OwnerRule, ...] = ()
    mode: Mode = "all"


NO_OWNERS = Owners()


# ---- matching --------------------------------------------------------------------------


def rules_for(
    change: PathChange, owners: Owners, facts: Mapping[str, EndpointFacts]
) -> tuple[OwnerRule, ...]:
    """The rules whose owners must approve ``change``: every matching rule, or the first
    (``mode: first``). Empty: the fallback ``approvers`` do."""
    found = []
    for rule in owners.rules:
        if rule_matches(rule, change, facts):
            found.append(rule)
            if owners.mode == "first":
                break
    return tuple(found)


def assign(
    changes: Iterable[PathChange], owners: Owners, facts: Mapping[str, EndpointFacts]
) -> tuple[dict[int, tuple[PathChange, ...]], tuple[PathChange, ...]]:
    """Each rule's paths (by rule index; only rules with paths), and the unmatched ones."""
    by_rule: dict[int, list[PathChange]] = {}
    unmatched: list[PathChange] = []
    for change in changes:
        rules = rules_for(change, owners, facts)
        if not rules:
            unmatched.append(change)
        for rule in rules:
            by_rule.setdefault(rule.index, []).append(change)
    return {i: tuple(v) for i, v in sorted(by_rule.items())}, tuple(unmatched)


def rule_matches(rule: OwnerRule, change: PathChange, facts: Mapping[str, EndpointFacts]) -> bool:
    if rule.destination is not None and not endpoint_matches(
        rule.destination, change.dst, facts.get(change.dst.id)
    ):
        return False
    if rule.source is not None and not endpoint_matches(
        rule.source, change.src, facts.get(change.src.id)
    ):
        return False
    if rule.environments and not any(
        compile_glob(p).fullmatch(environment_of(change)) for p in rule.environments
    ):
        return False
    if rule.files:
        files = {c.file for c in change.because if c.file}
        if not any(codeowners_match(p, f) for p in rule.files for f in files):
            return False
    return True


def environment_of(change: PathChange) -> str:
    """The path's environment as rules name it: ``.`` for the plain manifests (and for a
    report with a single environment, where endpoints carry none)."""
    return change.dst.environment or change.src.environment or "."


def endpoint_matches(
    selector: EndpointSelector, endpoint: Endpoint, facts: EndpointFacts | None
) -> bool:
    if endpoint.is_external:
        if not selector.cidrs:
            return False
        return _overlaps(endpoint.cidrs, selector.cidrs)
    if selector.cidrs:
        return False
    if selector.outside is not None and selector.outside != endpoint.is_outside:
        return False
    # Unknown facts (a report that carries none): every label may be anything.
    known = facts if facts is not None else EndpointFacts(endpoint.id, (), False, (), False)
    if selector.namespaces and not any(
        _namespace_could_be(p, endpoint.namespace, known) for p in selector.namespaces
    ):
        return False
    if selector.workloads:
        if endpoint.is_outside:
            return False
        local = f"{endpoint.namespace}/{endpoint.kind}/{endpoint.name}"
        if not any(_workload_glob(p).fullmatch(local) for p in selector.workloads):
            return False
    if not _labels_could_match(
        selector.namespace_labels, known.namespace_labels, known.namespace_exact
    ):
        return False
    return _labels_could_match(selector.pod_labels, known.pod_labels, known.pod_exact)


def _labels_could_match(wanted: Labels, have: Labels, exact: bool) -> bool:
    held = dict(have)
    for key, value in wanted:
        got = held.get(key)
        if got == value:
            continue
        # A representative's value starting with "~" is "a value no policy names": any.
        if not exact and (got is None or got.startswith("~")):
            continue
        return False
    return True


def _namespace_could_be(pattern: str, namespace: str, facts: EndpointFacts) -> bool:
    if _name_glob(pattern).fullmatch(namespace):
        return True
    # "~ns[team=x]" stands for namespaces the repository does not define, of any name its
    # policies do not tell apart: it may be the one the rule names.
    name = dict(facts.namespace_labels).get("kubernetes.io/metadata.name")
    if namespace.startswith("~"):
        return (
            name is None or name.startswith("~") or _name_glob(pattern).fullmatch(name) is not None
        )
    return False


def _overlaps(cidrs: Sequence[str], wanted: Sequence[str]) -> bool:
    have = [ipaddress.ip_network(c, strict=False) for c in cidrs]
    want = [ipaddress.ip_network(c, strict=False) for c in wanted]
    return any(a.version == b.version and a.overlaps(b) for a in have for b in want)


# ---- globs -----------------------------------------------------------------------------


@functools.lru_cache(maxsize=512)
def _name_glob(pattern: str) -> re.Pattern[str]:
    """A namespace name in which ``*`` stands for any characters. (The glob memos here
    are process-wide: compiled patterns are immutable pure functions of a short string,
    bounded in entries.)"""
    return re.compile(".*".join(re.escape(p) for p in pattern.split("*")), re.DOTALL)


@functools.lru_cache(maxsize=512)
def _workload_glob(pattern: str) -> re.Pattern[str]:
    """``namespace/Kind/name``; ``*`` and ``?`` within a part."""
    return re.compile("/".join(glob_segment(p) for p in pattern.split("/")), re.DOTALL)


@functools.lru_cache(maxsize=1024)
def _codeowners_regex(pattern: str) -> re.Pattern[str]:
    """CODEOWNERS (gitignore-like) semantics, as GitHub documents them:

    - a pattern with a ``/`` at its start or in its middle is anchored at the repository
      root; one without (``*.yaml``, ``payments/``) matches at any depth;
    - a pattern names a file or a directory, and a directory stands for everything below
      it; a trailing ``/`` names directories only;
    - ``*`` and ``?`` stay within a path segment, ``**`` spans segments;
    - ``docs/*`` matches the files directly in ``docs`` only, not deeper ones.
    """
    directory = pattern.endswith("/")
    core = pattern.strip("/")
    anchored = "/" in pattern.rstrip("/")
    segments = core.split("/")
    body = compile_glob(core).pattern  # the pattern itself, anchoring and directories aside
    prefix = "" if anchored else "(?:[^/]*/)*"
    if directory:
        suffix = "/.+"
    elif segments[-1] in ("*", "**"):
        suffix = ""
    else:
        suffix = "(?:/.+)?"
    return re.compile(prefix + body + suffix, re.DOTALL)


def codeowners_match(pattern: str, path: str) -> bool:
    return _codeowners_regex(pattern).fullmatch(path.removeprefix("./")) is not None
