"""The rows and lists of a comment or check output: each path change, or each aggregated
group of alike workloads, as the templates show it (labels escaped, links checked).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from analysis import markdown
from analysis.aggregate import (
    Group,
    Populations,
    Row,
    aggregate,
    local,
    rows_of,
)
from analysis.decision import Explanation
from analysis.diff import PathChange, in_order
from analysis.explain import ALLOWS, Cause
from analysis.reachability import Endpoint
from bot.render.fit import Level
from bot.render.outputs import (
    CAUSES_PER_PATH,
    LABEL_LIMIT,
    MEMBERS_SHOWN,
    PORTS_LIMIT,
    ReviewContext,
)
from bot.render.templating import Md
from bot.review.verdict import Assessment


@dataclass(frozen=True, slots=True)
class EndpointView:
    label: str
    new: bool = False
    removed: bool = False
    namespace: str = ""  # with count: workloads of this namespace ("": of the environment)
    count: int = 0  # how many workloads an aggregated row stands for (0: one endpoint)
    of: int = 0  # how many the namespace holds, when not all of them are meant
    members: tuple[str, ...] = ()  # their "Kind/name", when not all (at most MEMBERS_SHOWN)
    tally: str = ""  # of an aggregated row's workloads, how many are new or removed
    words: str = ""  # a representative of pods outside the repository, in words
    environments: tuple[str, ...] = ()  # a line comment's destination: where, when named


@dataclass(frozen=True, slots=True)
class CauseView:
    policy: str
    rule: str
    detail: str  # why, when not simply "allows": "no longer isolates", an admin tier...
    url: str
    at_base: bool


@dataclass(frozen=True, slots=True)
class RowView:
    src: EndpointView
    dst: EndpointView
    ports: str
    causes: tuple[CauseView, ...]
    more_causes: int
    note: str  # why a path without causes changed: a workload came or went
    why: Md | None = None  # the decision step by step (``reachdiff explain``), if computed

    @property
    def source(self) -> Md:
        """The "from" cell: one endpoint, or the workloads an aggregated row stands for."""
        src = self.src
        if not src.count:
            flags = (" (new)" if src.new else "") + (" (removed)" if src.removed else "")
            words = f"<br>{markdown.text(src.words)}" if src.words else ""
            return Md(markdown.code(src.label, cell=True) + flags + words)
        if not src.members:
            out = f"all {src.count} workloads"
        else:
            out = f"{src.count} of {src.of} workloads" if src.of else f"{src.count} workloads"
        if src.namespace:
            out += " of " + markdown.code(src.namespace, cell=True)
        if src.tally:
            out += f" ({markdown.text(src.tally)})"
        if src.members:
            names = [
                markdown.text(m)
                if n == len(src.members) - 1 and m.startswith("and ")
                else markdown.code(m, cell=True)
                for n, m in enumerate(src.members)
            ]
            out += ": " + ", ".join(names)
        return Md(out)


@dataclass(frozen=True, slots=True)
class GroupView:
    dst: EndpointView
    rows: tuple[RowView, ...]
    environments: tuple[str, ...] = ()  # where the group's changes are, when named


@dataclass(frozen=True, slots=True)
class ListView:
    items: tuple[Any, ...]  # GroupView for paths, EndpointView for workloads
    total: int
    shown: int

    @property
    def more(self) -> int:
        return self.total - self.shown


def endpoint_label(endpoint: Endpoint) -> str:
    if endpoint.is_external:
        cidrs = endpoint.cidrs
        extra = f" (+{len(cidrs) - 3} more ranges)" if len(cidrs) > 3 else ""
        # Like a workload's id, a range of one of several environments names it: the same
        # CIDRs in two environments are two endpoints and must not look like one.
        env = "" if endpoint.environment is None else f"{endpoint.environment or '.'}:"
        return markdown.shorten(env + ",".join(cidrs[:3]), LABEL_LIMIT) + extra
    return markdown.shorten(endpoint.id, LABEL_LIMIT)


def cause_detail(c: Cause) -> str:
    parts = []
    if c.action:  # an admin tier's rule: which tier, and what it does
        named = f' "{c.rule_name}"' if c.rule_name else ""
        parts.append(f"{c.tier}{named}: {c.action}")
    if c.reason != ALLOWS:
        parts.append(c.reason)
    # A Cilium rule's conditions beyond L4: mutual authentication, L7 rules.
    parts += [q for q in (c.authentication, c.l7) if q]
    return markdown.shorten(", ".join(parts), LABEL_LIMIT)


def blob_url(ctx: ReviewContext, tree: str, file: str, line: int) -> str:
    sha = (ctx.analysed_head_sha or ctx.head_sha) if tree == "head" else ctx.base_sha
    anchor = f"#L{line}" if line > 0 else ""
    if not ctx.server_url:  # a local review: links relative to the repository root
        return f"{markdown.path_url(file)}{anchor}"
    return (
        f"{ctx.server_url.rstrip('/')}/{ctx.repository}/blob/{sha}/"
        f"{markdown.path_url(file)}{anchor}"
    )


def commit_link(ctx: ReviewContext, sha: str) -> Md:
    if not ctx.server_url:
        return Md(markdown.code(sha[:7]))
    target = f"{ctx.server_url.rstrip('/')}/{ctx.repository}/commit/{sha}"
    return Md(markdown.link(markdown.code(sha[:7]), target))


def safe_url(value: str | None) -> str | None:
    if value is None or not re.match(r"https?://", value):
        return None
    return markdown.url(value)


def change_row(change: PathChange, ctx: ReviewContext) -> RowView:
    causes = tuple(
        CauseView(
            policy=markdown.shorten(c.policy, LABEL_LIMIT),
            rule=c.rule,
            detail=cause_detail(c),
            url=blob_url(ctx, c.tree, c.file, c.line),
            at_base=c.tree != "head",
        )
        for c in change.because[:CAUSES_PER_PATH]
    )
    return RowView(
        src=EndpointView(
            endpoint_label(change.src),
            change.src_new,
            change.src_removed,
            words=change.src.description,
        ),
        dst=EndpointView(
            endpoint_label(change.dst),
            change.dst_new,
            change.dst_removed,
            words=change.dst.description,
        ),
        ports=markdown.shorten(str(change.delta), PORTS_LIMIT),
        causes=causes,
        more_causes=max(0, len(change.because) - CAUSES_PER_PATH),
        note=change_note(change),
    )


def explanation_md(e: Explanation) -> Md:
    """The steps of an explanation as a Markdown table: everything a manifest names is
    escaped (``analysis.markdown``), so it can sit in the comment."""
    lines = [
        "| # | direction | tier | policy, rule | verdict | why |",
        "| ---: | --- | --- | --- | --- | --- |",
    ]
    for n, s in enumerate(e.steps, 1):
        rule = f"{s.policy} {s.rule}".strip()
        if s.file:
            rule += f" ({s.file}:{s.line})"
        cells = [
            str(n),
            s.direction,
            markdown.text(s.tier),
            markdown.code(rule, cell=True) if rule else "",
            markdown.text(s.verdict),
            markdown.text(markdown.shorten(s.detail, 300)),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return Md("\n".join(lines))


def change_note(change: PathChange) -> str:
    if change.src_new or change.dst_new:
        return "new workload"
    if change.src_removed or change.dst_removed:
        return "workload removed"
    return ""


def by_destination(changes: Sequence[PathChange]) -> tuple[PathChange, ...]:
    # The engine orders by source; a reviewer asks "who can now reach X?": by destination.
    return in_order(changes, by_destination=True)


class Lists:
    """The report's lists, ordered and grouped once (alike changes said once, see
    ``analysis.aggregate``), rendered at any length."""

    def __init__(
        self,
        a: Assessment,
        ctx: ReviewContext,
        populations: Populations,
        why: Mapping[tuple[str, str], Md] | None = None,
    ) -> None:
        self.why = why or {}  # opened paths' explanations, by (src id, dst id)
        self.ctx = ctx
        self._views: dict[int, RowView] = {}
        self.opened = aggregate(by_destination(a.opened), populations.head)
        self.closed = aggregate(by_destination(a.closed), populations.base)
        self.new_workloads = a.new_workloads
        self.removed_workloads = a.removed_workloads
        self.rows = max(
            rows_of(self.opened),
            rows_of(self.closed),
            len(self.new_workloads),
            len(self.removed_workloads),
        )

    def at(self, level: Level) -> dict[str, Any]:
        return dict(
            collapse=level.collapse,
            summary_only=level.summary,
            opened=self._paths(self.opened, level.limit, self.why),
            closed=self._paths(self.closed, level.limit, {}),
            new_workloads=self._workloads(self.new_workloads, level.limit),
            removed_workloads=self._workloads(self.removed_workloads, level.limit),
        )

    def _paths(
        self, groups: Sequence[Group], limit: int | None, why: Mapping[tuple[str, str], Md]
    ) -> ListView:
        # Counts are of paths (a row may stand for many); ``limit`` cuts rows.
        left = rows_of(groups) if limit is None else limit
        shown: list[GroupView] = []
        paths_shown = 0
        for group in groups:
            if left <= 0:
                break
            kept = group.rows[:left]
            left -= len(kept)
            paths_shown += sum(len(r.changes) for r in kept) * len(group.environments)
            first = group.rows[0].first
            shown.append(
                GroupView(
                    dst=EndpointView(
                        endpoint_label(group.dst),
                        first.dst_new,
                        first.dst_removed,
                        words=group.dst.description,
                    ),
                    rows=tuple(
                        replace(self._view(r), why=why.get((r.first.src.id, r.first.dst.id)))
                        if not r.src.aggregated
                        else self._view(r)
                        for r in kept
                    ),
                    environments=tuple(
                        markdown.shorten(e or "plain manifests", LABEL_LIMIT)
                        for e in group.environments
                        if e is not None
                    ),
                )
            )
        total = sum(g.changes for g in groups)
        return ListView(items=tuple(shown), total=total, shown=paths_shown)

    def _view(self, row: Row) -> RowView:
        # Rendered once, whatever the number of sizes tried.
        view = self._views.get(id(row))
        if view is None:
            view = self._views[id(row)] = aggregated_row(row, self.ctx)
        return view

    @staticmethod
    def _workloads(endpoints: Sequence[Endpoint], limit: int | None) -> ListView:
        shown = endpoints[:limit]
        return ListView(
            items=tuple(EndpointView(endpoint_label(e)) for e in shown),
            total=len(endpoints),
            shown=len(shown),
        )


def aggregated_row(row: Row, ctx: ReviewContext) -> RowView:
    view = change_row(row.first, ctx)
    src = row.src
    if not src.aggregated:
        # The group names the environment: the source is written as the environment has it.
        return replace(view, src=replace(view.src, label=endpoint_label(local(row.first.src))))
    notes = [f"{src.new} new" if src.new else "", f"{src.removed} removed" if src.removed else ""]
    if src.ranges:
        labels = ", ".join(endpoint_label(local(c.src)) for c in row.changes[:MEMBERS_SHOWN])
        more = len(row.changes) - MEMBERS_SHOWN
        label = labels + (f" (+{more} more ranges)" if more > 0 else "")
        return replace(view, src=replace(view.src, label=label))
    members = tuple(markdown.shorten(m, LABEL_LIMIT) for m in src.members[:MEMBERS_SHOWN])
    if len(src.members) > MEMBERS_SHOWN:
        members += (f"and {len(src.members) - MEMBERS_SHOWN} more",)
    return replace(
        view,
        src=EndpointView(
            "",
            namespace=markdown.shorten(src.namespace, LABEL_LIMIT),
            count=src.count,
            of=0 if src.everyone else src.of,
            members=members,
            tally=", ".join(n for n in notes if n),
        ),
    )
