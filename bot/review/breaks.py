"""What a pull request would break of the observed traffic (docs/traffic.md): the
comment's section, the lines an approval must have seen, and the check's part.

The section appears when the base branch's settings name flow data (``flows``). It always
states the observation window, and never says "nothing breaks" without data: when the
data could not be read, it says so and why. With ``breaking_needs_approval`` (default
true), closed paths that carried forwarded flows need approval like a widening.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from analysis import markdown
from analysis.flows import format_time
from analysis.trafficdiff import DiffTraffic
from analysis.wording import counted
from bot.review.approvals import ApprovalStatus
from bot.review.settings import RepoSettings

MAX_SHOWN = 50  # broken paths listed in the comment (all are counted and gated)


@dataclass(frozen=True, slots=True)
class FlowData:
    """What the app could read of the configured flow data: a problem, or nothing wrong."""

    source: str  # the path on the base branch, or the URL
    problem: str = ""  # why it could not be read ("" when it was)


def traffic_of(diff: object) -> DiffTraffic | None:
    found = getattr(diff, "traffic", None)
    return found if isinstance(found, DiffTraffic) else None


def breaks_lines(diff: object, settings: RepoSettings) -> list[str]:
    """What an approval must have seen of the broken paths (for the gated digest)."""
    traffic = traffic_of(diff)
    if traffic is None or not settings.breaking_needs_approval:
        return []
    return sorted(
        f"breaks\t{p.change.src.id}\t{p.change.dst.id}\t{p.change.delta}" for p in traffic.breaks
    )


def breaks_conclusion(
    diff: object, settings: RepoSettings, approval: ApprovalStatus | None
) -> Literal["failure"] | None:
    """``failure`` while observed flows would break without approval; else None."""
    if not breaks_lines(diff, settings):
        return None
    return None if approval is not None and approval.satisfied else "failure"


def breaks_title(diff: object) -> str:
    """The check's title when breaking observed traffic is what fails it."""
    traffic = traffic_of(diff)
    n = traffic.broken_flows if traffic is not None else 0
    return f"Would break {n:,} observed flows, needs approval"


def configured(settings: RepoSettings) -> bool:
    return settings.flows_path is not None or settings.flows_url is not None


def section(diff: object, settings: RepoSettings, data: FlowData | None) -> str:
    """The comment's "Observed traffic" section ("" when no flow data is configured)."""
    if not configured(settings):
        return ""
    source = markdown.code(data.source if data is not None else "")
    out = ["", "### Observed traffic", ""]
    traffic = traffic_of(diff)
    if data is not None and data.problem:
        out.append(
            f"**No flow data**: {source} could not be read ({markdown.text(data.problem)}). "
            "What this change would break of the cluster's traffic is **unknown**."
        )
        return "\n".join(out) + "\n"
    if traffic is None:
        out.append("**No flow data** was analysed: what this change would break is **unknown**.")
        return "\n".join(out) + "\n"
    summary = traffic.summary
    out.append(
        f"From {source}: {summary.records:,} records, observed {markdown.text(summary.window())}."
    )
    if traffic.unknown_environment:
        out.append(
            f"The data names environment {markdown.code(traffic.unknown_environment)}, which "
            "this change's trees do not have: its flows are matched in every environment."
        )
    elif summary.environment:
        out[-1] += f" Observed in environment {markdown.code(summary.environment)} only."
    breaks = traffic.breaks
    if breaks:
        gate = (
            " Closing them needs approval (`breaking_needs_approval`)."
            if settings.breaking_needs_approval
            else ""
        )
        out += [
            "",
            f"**Would break {traffic.broken_flows:,} observed flows** on "
            f"{counted(len(breaks), 'closed path')}.{gate}",
            "",
            "| Source | Destination | Closed | Flows | Last seen |",
            "|---|---|---|---|---|",
        ]
        for p in breaks[:MAX_SHOWN]:
            last = format_time(p.last_seen) if p.last_seen else ""
            out.append(
                f"| {markdown.code(p.change.src.id, cell=True)} "
                f"| {markdown.code(p.change.dst.id, cell=True)} "
                f"| {markdown.text(p.change.delta)} | {p.forwarded:,} | {last} |"
            )
        if len(breaks) > MAX_SHOWN:
            out.append(f"\n…and {len(breaks) - MAX_SHOWN} more closed paths that carried flows.")
    else:
        out.append(
            "No path this change closes carried a forwarded flow in this window "
            "(traffic outside the window, or not in the data, is not known)."
        )
    opened = [p for p in traffic.paths if p.kind == "opened" and p.flows]
    if opened:
        dropped = sum(f.stat.count for p in opened for f in p.flows)
        out.append(f"\n{dropped:,} observed flows were on paths this change opens.")
    unmapped = traffic.mapping.unmapped
    if unmapped:
        total = sum(u.stat.count for u in unmapped)
        out.append(
            f"\n{total:,} observed flows could not be placed on the trees' workloads "
            "(pods the repository does not define, nodes): they are not judged here."
        )
    return "\n".join(out) + "\n"
