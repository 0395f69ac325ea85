"""Exposure in a diff: how a change moves workloads nearer entry points or widens their
blast radius (``analysis.exposure`` on both sides of every environment).

Exposure reads every allowed path of both trees, unlike the diff, which reads only what
the change can touch; above ``CLASS_LIMIT`` pod classes per side the comparison is skipped
and says so (``ExposureReview.skipped``). What that means for approval is
``bot.review.gating``'s business.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from analysis.entrypoints import WorkloadSelector
from analysis.exposure import exposure_of
from analysis.exposure_report import ExposureChange, exposure_changes
from analysis.frontends import NO_FRONTENDS, frontends_of_files
from analysis.parsecache import ParseCache
from analysis.reachability import ReachabilityMap
from bot.inputs.environment_diff import MultiDiff

CLASS_LIMIT = 5_000  # pod classes per side whose exposure a diff compares when asked to
# ... and when nothing asks for it (no crown jewels, no threshold): ``reachdiff diff`` then
# adds it for the trees where it costs little next to the diff itself.
UNASKED_CLASS_LIMIT = 1_000


@dataclass(frozen=True, slots=True)
class ExposureSettings:
    """The settings exposure is computed under (sent to the analysis worker)."""

    entry_points: tuple[WorkloadSelector, ...] = ()
    crown_jewels: tuple[WorkloadSelector, ...] = ()


@dataclass(frozen=True, slots=True)
class ExposureReview:
    # Each change with the head's map it was found in (``without_maps`` drops them: a
    # review result crossing processes keeps only the changes).
    changes: tuple[tuple[ExposureChange, ReachabilityMap | None], ...] = ()
    skipped: str = ""  # why exposure was not compared ("" when it was)
    notes: tuple[str, ...] = ()  # frontends not resolved to pods, with file and line

    def without_maps(self) -> ExposureReview:
        return ExposureReview(tuple((c, None) for c, _ in self.changes), self.skipped, self.notes)


def review_exposure(
    diff: MultiDiff,
    entry_points: Sequence[WorkloadSelector] = (),
    crown_jewels: Sequence[WorkloadSelector] = (),
    base_files: Mapping[str, bytes] | None = None,
    head_files: Mapping[str, bytes] | None = None,
    limit: int = CLASS_LIMIT,
    parse_cache: ParseCache | None = None,
) -> ExposureReview:
    """Compare the exposure of every environment of ``diff``. Plain manifests' frontends
    are read from ``base_files`` / ``head_files`` (a diff against a prepared base keeps
    none), with ``parse_cache`` if the trees were read with one; environments rendered
    from kustomizations and charts carry theirs."""
    qualify = diff.environments != ("",)
    for _, one in diff.per_environment:
        for side in (one.base, one.head):
            classes = sum(1 for m in side.members[side.matcher.first_class :] if m)
            if classes > limit:
                more = (
                    f"; set crown_jewels to compare up to {CLASS_LIMIT}"
                    if limit < CLASS_LIMIT
                    else ""
                )
                return ExposureReview(
                    skipped=f"exposure not compared: {classes} pod classes, more than "
                    f"{limit}{more} (`reachdiff exposure` reads one tree of any size)"
                )
    # Read only once the classes are within the limit: every file of both trees is
    # looked at again, which a large tree whose exposure is not compared is spared.
    frontends = {name: (b, h) for name, b, h in diff.frontends}
    if diff.base_error:
        base_files = None  # the base was not read: nor are its frontends
    if diff.environments == ("",):
        frontends[""] = (
            frontends_of_files(base_files, parse_cache) if base_files is not None else NO_FRONTENDS,
            frontends_of_files(head_files, parse_cache) if head_files is not None else NO_FRONTENDS,
        )
    out: list[tuple[ExposureChange, ReachabilityMap | None]] = []
    notes: list[str] = []
    for name, one in diff.per_environment:
        base_fe, head_fe = frontends.get(name, (NO_FRONTENDS, NO_FRONTENDS))
        before = (
            exposure_of(one.base, base_fe, entry_points, crown_jewels)
            if not diff.base_error
            else None
        )
        after = exposure_of(one.head, head_fe, entry_points, crown_jewels)
        notes += [f"{name}: {n}" if qualify else n for n in after.notes]
        out += [(c, one.head) for c in exposure_changes(before, after, name if qualify else None)]
    return ExposureReview(tuple(out), "", tuple(dict.fromkeys(notes)))
