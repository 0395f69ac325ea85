"""What exposure changes mean for approval (``exposure_widens``): a crown jewel brought
nearer an entry point, or a blast radius growing past ``blast_radius_threshold``, needs
approval even when no path to the crown jewel itself opened.

Fail closed: when exposure could not be compared (``ExposureReview.skipped``) and the
settings ask for it (crown jewels or a threshold), the change needs approval too.
"""

from __future__ import annotations

from analysis.exposure_report import ExposureChange
from bot.inputs.exposure import ExposureReview, ExposureSettings
from bot.review.settings import RepoSettings


def alarming(review: ExposureReview, settings: RepoSettings) -> tuple[ExposureChange, ...]:
    """What the pull request's "Blast radius" section shows."""
    threshold = settings.blast_radius_threshold
    return tuple(
        c
        for c, _ in review.changes
        if (c.crown_jewel and c.closer)
        or (
            threshold is not None
            and c.head_blast > threshold
            and (c.base_blast is None or c.base_blast <= threshold)
        )
    )


def exposure_needs_approval(review: ExposureReview, settings: RepoSettings) -> bool:
    if not settings.exposure_widens:
        return False
    asked = bool(settings.crown_jewels) or settings.blast_radius_threshold is not None
    if review.skipped and asked:
        return True
    return bool(alarming(review, settings))


def exposure_settings(settings: RepoSettings) -> ExposureSettings | None:
    """What the analysis needs to compare exposure, or None when nothing asks for it
    (no crown jewels, no threshold): reading both trees' whole maps is then skipped."""
    if not settings.crown_jewels and settings.blast_radius_threshold is None:
        return None
    return ExposureSettings(settings.entry_points, settings.crown_jewels)
