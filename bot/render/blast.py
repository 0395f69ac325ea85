"""The comment's "Blast radius" section: crown jewels brought nearer an entry point and
blast radii grown past ``blast_radius_threshold`` (``bot.review.gating``), with the attack
path of the first few drawn as a mermaid chain (``templates/_blast.md.j2``)."""

from __future__ import annotations

from typing import Any

from analysis import markdown
from bot.render.views import endpoint_label
from bot.review.verdict import Assessment

BLAST_ROWS, BLAST_CHAINS = 10, 3


def blast_of(a: Assessment) -> dict[str, Any] | None:
    """The section's values, or None when there is nothing to show."""
    if not a.exposure and not (a.exposure_gates and a.exposure_skipped):
        return None
    rows = []
    for c in a.exposure[:BLAST_ROWS]:
        parts = []
        if c.base_hops != c.head_hops:
            before = "unreached" if c.base_hops is None else f"{c.base_hops}"
            hops = "hop" if c.head_hops == 1 else "hops"
            parts.append(f"{before} → {c.head_hops} {hops} from an entry point")
        if c.base_blast != c.head_blast:
            parts.append(f"blast radius {c.base_blast or 0} → {c.head_blast}")
        rows.append({"id": c.id, "jewel": c.crown_jewel, "what": "; ".join(parts)})
    chains = []
    for c in [c for c in a.exposure if c.path][:BLAST_CHAINS]:
        ends = [c.qualify(c.path[0].src)] + [c.qualify(h.dst) for h in c.path]
        nodes = [(f"n{n}", endpoint_label(e)) for n, e in enumerate(ends)]
        edges = [
            (f"n{n}", f"n{n + 1}", markdown.shorten(str(h.allowed), 40))
            for n, h in enumerate(c.path)
        ]
        chains.append({"target": c.id, "nodes": nodes, "edges": edges})
    return {
        "rows": rows,
        "more": max(0, len(a.exposure) - BLAST_ROWS),
        "chains": chains,
        "gates": a.exposure_gates,
        "skipped": a.exposure_skipped,
    }
