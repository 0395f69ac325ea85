"""The rules responsible for opened paths (for line comments) and the graph of a change
(for the mermaid diagram in the comment).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from analysis import markdown
from analysis.diff import PathChange
from bot.render.outputs import GRAPH_EDGE_LIMIT, PATHS_PER_RULE
from bot.render.views import cause_detail, endpoint_label
from bot.review.verdict import Assessment


@dataclass(frozen=True, slots=True)
class Graph:
    nodes: tuple[tuple[str, str], ...]  # (mermaid id, label)
    edges: tuple[tuple[str, str, str, bool], ...]  # (from, to, ports, opened)
    more: int


def graph_of(a: Assessment) -> Graph | None:
    changes = [(c, True) for c in a.opened] + [(c, False) for c in a.closed]
    if not changes:
        return None
    ids: dict[str, str] = {}
    nodes: list[tuple[str, str]] = []
    edges: list[tuple[str, str, str, bool]] = []
    for change, opened in changes[:GRAPH_EDGE_LIMIT]:
        ends = []
        for endpoint, new in ((change.src, change.src_new), (change.dst, change.dst_new)):
            if endpoint.id not in ids:
                ids[endpoint.id] = f"n{len(ids)}"
                nodes.append(
                    (ids[endpoint.id], endpoint_label(endpoint) + (" (new)" if new else ""))
                )
            ends.append(ids[endpoint.id])
        edges.append((ends[0], ends[1], markdown.shorten(str(change.delta), 40), opened))
    return Graph(
        nodes=tuple(nodes), edges=tuple(edges), more=max(0, len(changes) - GRAPH_EDGE_LIMIT)
    )


# ---- responsible rules ----------------------------------------------------------------


@dataclass(slots=True)
class RuleHit:
    """Every gated path one policy line is responsible for."""

    tree: str
    file: str
    line: int
    rules: set[tuple[str, str, str]] = field(default_factory=set)  # policy, rule, detail
    changes: list[PathChange] = field(default_factory=list)

    def marker(self) -> str:
        identity = "\0".join(
            [self.tree, self.file, str(self.line), *("|".join(r) for r in sorted(self.rules))]
        )
        digest = hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()[:12]
        where = markdown.html_comment_safe(f"{self.file}:{self.line}")
        return f"<!-- reachdiff:rule {where} {digest} -->"


def rule_hits(a: Assessment) -> list[RuleHit]:
    hits: dict[tuple[str, str, int], RuleHit] = {}
    for change in a.gated:
        for cause in change.because:
            if not cause.file or cause.line < 1:
                continue
            key = (cause.tree, cause.file, cause.line)
            hit = hits.setdefault(key, RuleHit(cause.tree, cause.file, cause.line))
            hit.rules.add((cause.policy, cause.rule, cause_detail(cause)))
            if not hit.changes or hit.changes[-1] is not change:
                hit.changes.append(change)
    # The rules that open the most come first: they survive the max_line_comments cap.
    return sorted(hits.values(), key=lambda h: (-len(h.changes), h.tree != "head", h.file, h.line))


def hit_title(hit: RuleHit) -> str:
    n = len(hit.changes)
    if n == 1:
        return "Opens 1 path that needs approval"
    return f"Opens {n} paths that need approval"


def hit_plain(hit: RuleHit) -> str:
    lines = [
        " ".join(x for x in (policy, rule, f"({detail})" if detail else "") if x)
        for policy, rule, detail in sorted(hit.rules)
    ]
    lines += [
        f"{endpoint_label(c.src)} -> {endpoint_label(c.dst)}: {markdown.shorten(str(c.delta), 100)}"
        for c in hit.changes[:PATHS_PER_RULE]
    ]
    if len(hit.changes) > PATHS_PER_RULE:
        lines.append(f"and {len(hit.changes) - PATHS_PER_RULE} more")
    return "\n".join(markdown.one_line(line) for line in lines)
