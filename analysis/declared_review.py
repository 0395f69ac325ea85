"""What a pull request does to the declared communications and to least privilege.

The declarations that gate are the **base** branch's: a pull request cannot declare its
own widening. Both trees are checked against them, and what is violated in the head but
not in the base is the pull request's doing:

- a new ``forbidden`` path, or a new failure of a test expecting ``denied``, fails the
  check and no approval overrides it, unless the pull request also changes the
  declarations so that the head's no longer forbid it: then it needs approval with that
  change (only an approved change of the intent lifts a deny);
- a new ``undeclared`` or ``blocked`` path, or a test expecting ``allowed`` that now fails,
  needs approval like a widening;
- a change of the declarations themselves needs approval like a widening (the comment
  shows their diff).

Least-privilege findings (``analysis.lint``) of the head that the base does not have are
the pull request's; those at or above the configured severity fail the check.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from analysis.check import FORBIDDEN, TEST, Violation, check, declared_map
from analysis.errors import ManifestError
from analysis.intents import GROUP, Declarations, load_declarations
from analysis.lint import Finding, LintConfig, lint
from analysis.model import Tree
from analysis.outside import OUTSIDE_KIND, ClusterScope, is_outside_namespace
from analysis.reachability import ReachabilityMap

MAX_VIOLATIONS = 2000  # kept per kind of outcome; the counts say how many there were
MAX_DIFF_LINES = 400


@dataclass(frozen=True, slots=True)
class DeclaredReview:
    hard: tuple[Violation, ...]  # new violations no approval lifts
    gated: tuple[Violation, ...]  # new violations that need approval
    hard_count: int
    gated_count: int
    declarations_changed: bool
    declaration_diff: str  # unified diff of the files holding declarations, base -> head
    new_findings: tuple[Finding, ...]  # lint findings the pull request introduces
    failing_findings: tuple[Finding, ...]  # those at or above ``fail_on``
    fail_on: str = ""
    errors: tuple[str, ...] = ()  # declarations that could not be read, side first
    # Of ``gated``: paths the base's declarations forbid that the head's lift. They need
    # approvals; a break-glass never waives them (docs/bot.md).
    lifted_count: int = 0

    @property
    def needs_approval(self) -> bool:
        return bool(self.gated_count) or self.declarations_changed

    @property
    def head_invalid(self) -> bool:
        """The head's declarations cannot be read: merging them would break every later
        review, so no approval lets them in (a base that cannot be read only asks for
        approval, so that the pull request fixing it can merge)."""
        return any(e.startswith("head:") for e in self.errors)

    @property
    def fails(self) -> bool:
        """Whether the check fails whatever the approvals."""
        return bool(self.hard_count or self.failing_findings or self.head_invalid)

    def approval_lines(self) -> list[str]:
        """What an approval approves, for the gated digest: violations and the change."""
        lines = [f"declared\t{_identity(v)}" for v in self.gated]
        if self.declarations_changed:
            lines.append(f"declarations changed\t{self.declaration_diff}")
        return lines


def own_tree(tree: Tree) -> Tree:
    """The tree without representatives of pods outside it (a diff's maps carry those of
    both sides' selectors; ``declared_map`` adds its own)."""
    return dataclasses.replace(
        tree,
        workloads=tuple(w for w in tree.workloads if w.kind != OUTSIDE_KIND),
        namespaces=tuple(n for n in tree.namespaces if not is_outside_namespace(n.name)),
    )


Environment = tuple[str, ReachabilityMap | None, ReachabilityMap]  # name, base map, head map


def review_declared(
    base_files: Mapping[str, bytes] | None,
    head_files: Mapping[str, bytes],
    environments: Sequence[Environment],
    scope: ClusterScope,
    lint_config: LintConfig | None,
) -> DeclaredReview | None:
    """None when there is nothing to say: no declarations on either side and no lint."""
    errors: list[str] = []
    base_decls = _read("base", base_files or {}, errors)
    head_decls = _read("head", head_files, errors)
    if not (base_decls or head_decls or errors or lint_config is not None):
        return None
    changed = (
        base_decls is None or head_decls is None or _canonical(base_decls) != _canonical(head_decls)
    )
    gate = base_decls if base_decls is not None else Declarations()
    several = [name for name, _, _ in environments] != [""]
    hard: list[Violation] = []
    gated: list[Violation] = []
    lifted_count = 0
    new_findings: dict[tuple[str, str, str], Finding] = {}
    for name, base_map, head_map in environments:
        head_tree = own_tree(head_map.tree)
        base_tree = own_tree(base_map.tree) if base_map is not None else None
        if gate:
            sides = (head_tree,) if base_tree is None else (base_tree, head_tree)
            before = _violations(base_tree, gate, scope, sides) if base_tree is not None else []
            after = _violations(head_tree, gate, scope, sides)
            known = {_identity(v) for v in before}
            lifted = _forbidden_pairs(head_tree, head_decls, scope, sides) if changed else None
            for v in after:
                if _identity(v) in known:
                    continue
                v = _qualified(v, name) if several else v
                blocks = v.type == FORBIDDEN or (v.type == TEST and v.expect == "denied")
                if blocks and (lifted is None or _still(v, lifted)):
                    hard.append(v)
                else:
                    lifted_count += blocks
                    gated.append(v)
        if lint_config is not None:
            old = {f.identity for f in lint(base_map, lint_config)} if base_map else set()
            for f in lint(head_map, lint_config):
                if f.identity not in old:
                    new_findings.setdefault(f.identity, f)
    findings = tuple(sorted(new_findings.values(), key=lambda f: (f.file, f.line, f.rule)))
    failing = tuple(
        f for f in findings if lint_config is not None and lint_config.fails(f.severity)
    )
    return DeclaredReview(
        hard=tuple(hard[:MAX_VIOLATIONS]),
        gated=tuple(gated[:MAX_VIOLATIONS]),
        hard_count=len(hard),
        gated_count=len(gated),
        declarations_changed=changed and bool(base_decls or head_decls or errors),
        declaration_diff=declaration_diff(base_files or {}, head_files) if changed else "",
        new_findings=findings,
        failing_findings=failing,
        fail_on=lint_config.fail_on if lint_config is not None else "",
        errors=tuple(errors),
        lifted_count=lifted_count,
    )


def _read(side: str, files: Mapping[str, bytes], errors: list[str]) -> Declarations | None:
    try:
        return load_declarations(files)
    except ManifestError as err:
        errors.append(f"{side}: {err}")
        return None


def _violations(
    tree: Tree, decls: Declarations, scope: ClusterScope, sides: Sequence[Tree]
) -> list[Violation]:
    return list(check(declared_map(tree, decls, scope, sides), decls).violations)


def _forbidden_pairs(
    tree: Tree, decls: Declarations | None, scope: ClusterScope, sides: Sequence[Tree]
) -> dict[tuple[str, str], list[Violation]]:
    """The head's own declarations' forbidden paths (by pair), when they can be read."""
    out: dict[tuple[str, str], list[Violation]] = {}
    if not decls:
        return out
    for v in _violations(tree, decls, scope, sides):
        if v.type == FORBIDDEN or (v.type == TEST and v.expect == "denied"):
            out.setdefault((_id(v.src), _id(v.dst)), []).append(v)
    return out


def _still(v: Violation, lifted: Mapping[tuple[str, str], list[Violation]]) -> bool:
    """Whether the head's declarations still forbid some of ``v``'s ports on its pair."""
    return any(w.ports & v.ports for w in lifted.get((_id(v.src), _id(v.dst)), ()))


def _id(e: object) -> str:
    return getattr(e, "id", "")


def _identity(v: Violation) -> str:
    return "\t".join(
        (v.type, _id(v.src), _id(v.dst), str(v.ports), v.intent.kind, v.intent.name, v.intent.entry)
    )


def _qualified(v: Violation, environment: str) -> Violation:
    if v.src is None or v.dst is None:
        return v
    return dataclasses.replace(
        v, src=v.src.in_environment(environment), dst=v.dst.in_environment(environment)
    )


def _canonical(decls: Declarations) -> str:
    """The declarations without their lines: moving a document is no change of scope."""

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k != "source"}
        if isinstance(value, list | tuple):
            return [strip(v) for v in value]
        return value

    return json.dumps(strip(dataclasses.asdict(decls)), default=str, sort_keys=True)


def declaration_diff(base: Mapping[str, bytes], head: Mapping[str, bytes]) -> str:
    """A unified diff of the files that hold declarations on either side."""
    marker = GROUP.encode()
    paths = sorted(
        {p for p, data in base.items() if marker in data}
        | {p for p, data in head.items() if marker in data}
    )
    lines: list[str] = []
    for path in paths:
        old = _text(base.get(path))
        new = _text(head.get(path))
        if old == new:
            continue
        lines.extend(
            difflib.unified_diff(
                old.splitlines(), new.splitlines(), f"base/{path}", f"head/{path}", lineterm=""
            )
        )
        if len(lines) > MAX_DIFF_LINES:
            lines = [*lines[:MAX_DIFF_LINES], "… (diff cut short)"]
            break
    return "\n".join(lines)


def _text(data: bytes | None) -> str:
    return "" if data is None else data.decode("utf-8", "replace")
