"""Exposure in a review: how a change moves workloads nearer entry points, and whether that
needs approval (``exposure_widens``).

Exposure reads every allowed path of both trees (``analysis.exposure``), unlike the diff,
which reads only what the change can touch; above ``CLASS_LIMIT`` pod classes per side the
comparison is skipped and the report says so (``ExposureReview.skipped``). A skipped
comparison with crown jewels configured and ``exposure_widens`` on cannot clear the gate:
the review says what it could not check and needs approval (fail closed).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from analysis.exposure import Exposure, exposure_of
from analysis.exposure_report import ExposureChange, exposure_changes
from analysis.frontends import NO_FRONTENDS, Frontends, frontends_of_files
from analysis.reachability import ReachabilityMap
from bot.inputs.environment_diff import MultiDiff
from bot.review.settings import RepoSettings

CLASS_LIMIT = 5_000  # pod classes per side whose exposure a diff compares


@dataclass(frozen=True, slots=True)
class ExposureReview:
    changes: tuple[tuple[ExposureChange, ReachabilityMap], ...] = ()  # with the head's map
    skipped: str = ""  # why exposure was not compared ("" when it was)
    notes: tuple[str, ...] = ()  # frontends not resolved to pods, with file and line

    def alarming(self, settings: RepoSettings) -> tuple[ExposureChange, ...]:
        """The changes the PR's "Blast radius" section shows: a crown jewel nearer an entry
        point, or a blast radius growing past ``blast_radius_threshold``."""
        threshold = settings.blast_radius_threshold
        return tuple(
            c
            for c, _ in self.changes
            if (c.crown_jewel and c.closer)
            or (
                threshold is not None
                and c.head_blast > threshold
                and (c.base_blast is None or c.base_blast <= threshold)
            )
        )

    def needs_approval(self, settings: RepoSettings) -> bool:
        """Under ``exposure_widens``: something alarming, or exposure unknown where it
        was asked for."""
        if not settings.exposure_widens:
            return False
        if self.skipped and (settings.crown_jewels or settings.blast_radius_threshold is not None):
            return True
        return bool(self.alarming(settings))


def review_exposure(
    diff: MultiDiff,
    settings: RepoSettings,
    base_files: Mapping[str, bytes] | None = None,
    head_files: Mapping[str, bytes] | None = None,
) -> ExposureReview:
    """Compare the exposure of every environment of ``diff``. Plain manifests' frontends
    are read from ``base_files`` / ``head_files`` (a diff against a prepared base keeps
    none); environments rendered from kustomizations and charts carry theirs."""
    frontends = {name: (b, h) for name, b, h in diff.frontends}
    if diff.base_error:
        base_files = None  # the base was not read: nor are its frontends
    if diff.environments == ("",):
        frontends[""] = (
            frontends_of_files(base_files) if base_files is not None else NO_FRONTENDS,
            frontends_of_files(head_files) if head_files is not None else NO_FRONTENDS,
        )
    qualify = diff.environments != ("",)
    for _, one in diff.per_environment:
        for side in (one.base, one.head):
            classes = sum(1 for m in side.members[side.matcher.first_class :] if m)
            if classes > CLASS_LIMIT:
                return ExposureReview(
                    skipped=f"exposure not compared: {classes} pod classes, more than "
                    f"{CLASS_LIMIT} (run `reachdiff exposure` on each tree)"
                )
    out: list[tuple[ExposureChange, ReachabilityMap]] = []
    notes: list[str] = []
    for name, one in diff.per_environment:
        base_fe, head_fe = frontends.get(name, (NO_FRONTENDS, NO_FRONTENDS))
        before = _exposure(one.base, base_fe, settings) if not diff.base_error else None
        after = _exposure(one.head, head_fe, settings)
        notes += [f"{name}: {n}" if qualify else n for n in after.notes]
        out += [(c, one.head) for c in exposure_changes(before, after, name if qualify else None)]
    return ExposureReview(tuple(out), "", tuple(dict.fromkeys(notes)))


def _exposure(rmap: ReachabilityMap, frontends: Frontends, settings: RepoSettings) -> Exposure:
    return exposure_of(rmap, frontends, settings.entry_points, settings.crown_jewels)
