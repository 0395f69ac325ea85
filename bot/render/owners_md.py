"""What the comment, the check run and line comments say about owners, carried approvals
and break-glass. Pure; the values are template variables (``_summary.md.j2``,
``line_comment.md.j2``), Markdown already escaped where marked ``Md``.

Per owner group: what it still needs, from whom, for which paths ("3 paths to
`payments/StatefulSet/db`", "egress to `0.0.0.0/0`"), and who approved (carried-over
approvals name the commit they were given on).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from analysis import markdown
from analysis.diff import PathChange
from analysis.reachability import Endpoint
from analysis.wording import counted
from bot.render.templating import Md
from bot.review.approvals import ApprovalStatus, OwnerApproval
from bot.review.owners import Owners
from bot.review.verdict import more_approvals

DESTINATIONS_SHOWN = 3
_LABEL_LIMIT = 80


@dataclass(frozen=True, slots=True)
class OwnerView:
    name: str
    owners: Md  # mentions: the rule's validated logins and teams
    approved: bool
    required: int
    have: int
    missing: int
    approvers: tuple[tuple[str, str], ...]  # (login, short commit it was carried from, or "")
    paths: Md  # "3 paths to `payments/StatefulSet/db`, egress to `0.0.0.0/0`"
    why: str  # a group without paths: what it is for


def _endpoint(e: Endpoint) -> str:
    if e.is_external:
        env = "" if e.environment is None else f"{e.environment or '.'}:"
        return env + ",".join(e.cidrs[:3]) + (" …" if len(e.cidrs) > 3 else "")
    return e.id


def describe_paths(paths: Sequence[PathChange]) -> Md:
    """The group's paths by destination, the most common first."""
    by_dst: dict[str, tuple[Endpoint, int]] = {}
    for c in paths:
        found = by_dst.get(c.dst.id)
        by_dst[c.dst.id] = (c.dst, (found[1] if found else 0) + 1)
    ordered = sorted(by_dst.values(), key=lambda v: (-v[1], v[0].id))
    parts = []
    for dst, n in ordered[:DESTINATIONS_SHOWN]:
        label = markdown.code(markdown.shorten(_endpoint(dst), _LABEL_LIMIT))
        if dst.is_external:
            parts.append(f"egress to {label}" + (f" ({n} paths)" if n > 1 else ""))
        else:
            parts.append(f"{counted(n, 'path')} to {label}")
    more = len(ordered) - DESTINATIONS_SHOWN
    if more > 0:
        parts.append(f"and {counted(more, 'more destination')}")
    return Md(", ".join(parts))


def _view(group: OwnerApproval) -> OwnerView:
    status = group.status
    carried = {login.lower(): commit for login, commit in status.carried}
    return OwnerView(
        name=group.name,
        owners=Md(markdown.text(group.owners, mentions=True)),
        approved=status.approved,
        required=status.required,
        have=len(status.approved_by),
        missing=status.missing,
        approvers=tuple((u, carried.get(u.lower(), "")[:7]) for u in status.approved_by),
        paths=describe_paths(group.paths),
        why=group.why,
    )


def owner_variables(approval: ApprovalStatus | None, owners: Owners) -> dict[str, Any]:
    """Template variables: ``owner_groups``, ``idle_rules`` (configured rules no opened
    path matched), ``carried`` ((login, short commit)) and ``override``."""
    groups = approval.owners if approval is not None else ()
    matched = {g.rule for g in groups}
    override = approval.override if approval is not None else None
    carried = tuple((u, c[:7]) for u, c in approval.carried) if approval is not None else ()
    waived: tuple[str, ...] = ()
    if override is not None and approval is not None and not approval.approved:
        waived = tuple(
            f"{g.name}: {g.status.missing} more from {g.owners}"
            for g in groups
            if not g.status.approved
        ) or (more_approvals(approval.missing),)
    return dict(
        owner_groups=tuple(_view(g) for g in groups),
        idle_rules=tuple(r.name for r in owners.rules if r.index not in matched) if groups else (),
        carried=carried,
        override=override if override is not None and waived else None,
        waived=tuple(Md(markdown.text(w, mentions=True)) for w in waived),
    )


def owners_of_paths(
    approval: ApprovalStatus | None, paths: Sequence[PathChange]
) -> tuple[tuple[str, Md], ...]:
    """(group name, its owners) for the groups holding any of ``paths``: who a line
    comment on the rule opening them asks to review."""
    if approval is None:
        return ()
    keys = {(c.src.id, c.dst.id) for c in paths}
    return tuple(
        (g.name, Md(markdown.text(g.owners, mentions=True)))
        for g in approval.owners
        if g.paths and any((c.src.id, c.dst.id) in keys for c in g.paths)
    )
