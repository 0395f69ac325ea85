"""``map --format html`` and ``diff --format html``: one self-contained page to look at.

The page (``templates/map.html.j2``) carries its data and its own SVG drawing code; its
Content-Security-Policy forbids every fetch, so opening it reaches no network.
"""

from __future__ import annotations

from collections.abc import Sequence

from jinja2 import Environment

from analysis.exposure import exposure_of
from analysis.htmlmap import diff_data, map_data, merge_maps, render_page
from analysis.reachability import ReachabilityMap
from analysis.trafficdiff import DiffTraffic
from bot.inputs.environment_diff import EnvironmentTree, MultiDiff
from bot.inputs.exposure import ExposureReview
from bot.render.templating import ResourceLoader
from bot.review.settings import RepoSettings

TEMPLATE = "map.html.j2"


def template() -> str:
    """The page template, found as the comment's templates are (``ResourceLoader``)."""
    source, _, _ = ResourceLoader().get_source(Environment(), TEMPLATE)
    return source


def map_page(
    maps: Sequence[tuple[EnvironmentTree, ReachabilityMap]], settings: RepoSettings, title: str
) -> str:
    """Every environment's map, with each workload's exposure."""
    parts = []
    for env, rmap in maps:
        found = exposure_of(rmap, env.frontends, settings.entry_points, settings.crown_jewels)
        parts.append((env.name, map_data(rmap, found, title)))
    data = parts[0][1] if [n for n, _ in parts] == [""] else merge_maps(parts)
    return render_page(template(), data)


def diff_page(
    diff: MultiDiff, review: ExposureReview, title: str, traffic: DiffTraffic | None = None
) -> str:
    """The opened and closed paths, and the exposure paths of what the change brought
    nearer an entry point; with ``traffic``, the observed flows on each path."""
    changes = [("opened", c) for c in diff.opened] + [("closed", c) for c in diff.closed]
    exposure = [c for c, _ in review.changes if c.closer]
    return render_page(template(), diff_data(changes, exposure, title, traffic))
