"""What a reachability diff means for a pull request under the repository's settings.

- A change is *hidden* when every workload it connects lies in an ``ignore_namespaces``
  namespace (external ranges belong to no namespace): it is counted, not listed or gated.
- Every other opened path *gates* the check (needs approval), except, with
  ``new_workloads_widen: false``, paths to or from a workload that only the head has and
  that is really new: one with the namespace and pod-template labels of a base workload
  (a renamed Deployment or overlay, ``DiffResult.same_pods``) is the same pods.
- The verdict is ``widened`` when any path is opened, else ``narrowed`` when any is closed,
  else ``unchanged``. The check fails while gated paths lack enough approvals.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from analysis.diff import ChangeSet, PathChange
from analysis.exposure_report import ExposureChange
from analysis.reachability import Endpoint
from analysis.wording import counted
from bot.inputs.exposure import ExposureReview
from bot.review.approvals import ApprovalStatus
from bot.review.gating import alarming, exposure_needs_approval
from bot.review.settings import RepoSettings

Kind = Literal["widened", "narrowed", "unchanged"]
Conclusion = Literal["success", "failure"]


Diff = ChangeSet  # what this app reads of a diff: one environment's or several merged


@dataclass(frozen=True, slots=True)
class Assessment:
    opened: tuple[PathChange, ...]  # in the diff's order, hidden ones removed
    closed: tuple[PathChange, ...]
    gated: tuple[PathChange, ...]  # the opened paths that need approval
    hidden: int  # changes left out because of ignore_namespaces
    new_workloads: tuple[Endpoint, ...]  # in the diff's order, hidden ones removed
    removed_workloads: tuple[Endpoint, ...]
    # Crown jewels nearer an entry point, blast radii past the threshold (the comment's
    # "Blast radius" section), and whether they need approval (``bot.review.gating``).
    exposure: tuple[ExposureChange, ...] = ()
    exposure_gates: bool = False
    exposure_skipped: str = ""  # exposure was asked for but not compared: why

    @property
    def kind(self) -> Kind:
        if self.opened:
            return "widened"
        return "narrowed" if self.closed else "unchanged"

    @property
    def needs_approval(self) -> bool:
        return bool(self.gated) or self.exposure_gates


def _hidden(change: PathChange, settings: RepoSettings) -> bool:
    if not settings.ignore_namespaces:
        return False
    workloads = [e for e in (change.src, change.dst) if not e.is_external]
    return bool(workloads) and all(settings.namespace_ignored(e.namespace) for e in workloads)


def _gates(change: PathChange, settings: RepoSettings, renamed: frozenset[str]) -> bool:
    if settings.new_workloads_widen:
        return True
    src_new = change.src_new and change.src.id not in renamed
    dst_new = change.dst_new and change.dst.id not in renamed
    return not (src_new or dst_new)


def _shown(endpoints: Iterable[Endpoint], settings: RepoSettings) -> tuple[Endpoint, ...]:
    return tuple(e for e in endpoints if not settings.namespace_ignored(e.namespace))


def assess(diff: Diff, settings: RepoSettings) -> Assessment:
    # The analysis result carries it (``bot.inputs.analyze.DiffResult``); other diffs know none.
    renamed: frozenset[str] = getattr(diff, "same_pods", frozenset())
    opened = tuple(c for c in diff.opened if not _hidden(c, settings))
    closed = tuple(c for c in diff.closed if not _hidden(c, settings))
    hidden = len(diff.opened) + len(diff.closed) - len(opened) - len(closed)
    # The analysis result carries the exposure comparison when the settings ask for it.
    review: ExposureReview | None = getattr(diff, "exposure", None)
    exposure = alarming(review, settings) if review is not None else ()
    return Assessment(
        opened=opened,
        closed=closed,
        gated=tuple(c for c in opened if _gates(c, settings, renamed)),
        hidden=hidden,
        new_workloads=_shown(diff.added_endpoints, settings),
        removed_workloads=_shown(diff.removed_endpoints, settings),
        exposure=exposure,
        exposure_gates=review is not None and exposure_needs_approval(review, settings),
        exposure_skipped=review.skipped if review is not None else "",
    )


def gated_digest(
    assessment: Assessment, *, settings_changed: bool = False, declared: Iterable[str] = ()
) -> str:
    """What an approval approves: the gated paths (source, destination, the ports they
    open), whether ``.github/reachdiff.yml`` changes, and the ``declared`` lines (new
    violations of the intents needing approval, a change of the intents), as a digest that
    does not depend on their order. Equal digests: an approval of one covers the other."""
    lines = sorted({f"{c.src.id}\t{c.dst.id}\t{c.delta}" for c in assessment.gated})
    if assessment.exposure_gates:
        # An approval covers the exposure it saw: the same workloads at the same distances.
        lines += sorted(
            f"exposure\t{c.id}\t{c.base_hops}>{c.head_hops}\t{c.base_blast}>{c.head_blast}"
            for c in assessment.exposure
        )
        if assessment.exposure_skipped:
            lines.append("exposure not compared")
    if settings_changed:
        lines.append("settings changed")
    lines.extend(sorted(declared))
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def analysed_digest(
    diff: Diff,
    assessment: Assessment,
    *,
    settings: str,
    settings_changed: bool = False,
    declared: Iterable[str] = (),
) -> str:
    """The analysed delta, for ``keep_approvals_when_delta_unchanged``: every opened path
    (hidden ones too), the ports it opens, whether it is gated, the rules that cause it
    (policy, direction, rule, tier, action, name and reason; not files and lines, which
    an unrelated edit moves), the settings file's digest (``settings``) and whether the
    change edits it, and what the intents ask approval for (``declared``). Two heads with
    equal digests ask the same approval of the same people; any difference (a path or a
    port more or less, another rule) voids it."""
    gated = {(c.src.id, c.dst.id) for c in assessment.gated}
    lines = []
    for c in diff.opened:
        causes = sorted(
            {
                "|".join((k.policy, k.direction, k.rule, k.tier, k.action, k.rule_name, k.reason))
                for k in c.because
            }
        )
        gate = "gated" if (c.src.id, c.dst.id) in gated else "free"
        lines.append("\t".join((c.src.id, c.dst.id, str(c.delta), gate, *causes)))
    lines.sort()
    lines.append(f"settings {settings} changed={settings_changed}")
    lines.extend(f"declared {line}" for line in sorted(declared))  # intents (docs/intents.md)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def conclusion(assessment: Assessment, approval: ApprovalStatus | None) -> Conclusion:
    """The check run's conclusion: failure while gated paths lack approval."""
    if not assessment.needs_approval:
        return "success"
    return "success" if approval is not None and approval.satisfied else "failure"


def more_approvals(n: int) -> str:
    return counted(n, "more approval", "more approvals")


def verdict_text(
    assessment: Assessment,
    approval: ApprovalStatus | None,
    *,
    required: int,
    approvers: str,
) -> str:
    """One plain-text line: the verdict and what the check needs."""
    kind = assessment.kind
    if kind != "widened" and assessment.exposure_gates:
        # No path opened, yet a crown jewel is nearer an entry point (a new LoadBalancer,
        # a new route): the exposure widened.
        head = "exposure widened: " + (
            f"{counted(len(assessment.exposure), 'workload')} nearer an entry point"
            if assessment.exposure
            else "not compared"
        )
    elif kind == "unchanged":
        return "unchanged: no path opened or closed"
    elif kind == "narrowed":
        return f"narrowed: {counted(len(assessment.closed), 'path')} closed, none opened"
    else:
        head = f"widened: {counted(len(assessment.opened), 'path')} opened"
    if not assessment.needs_approval:
        return f"{head}, all to or from new workloads: no approval needed"
    if approval is not None and approval.override is not None and not approval.approved:
        who = approval.override.login
        return f"overridden by break-glass (@{who}): {head}, approvals waived"
    if approval is not None and approval.satisfied:
        return f"{head}, approved by {', '.join('@' + u for u in approval.approved_by)}"
    if approval is not None and approval.owners:
        needs = "; ".join(
            f"{g.status.missing} from {g.name}" for g in approval.owners if not g.status.approved
        )
        return f"{head}, needs approvals: {needs}"
    have = len(approval.approved_by) if approval is not None else 0
    need = (approval.required if approval is not None else required) - have
    more = " more" if have else ""
    return f"{head}, needs {need}{more} {'approval' if need == 1 else 'approvals'} from {approvers}"
