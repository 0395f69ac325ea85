"""One scenario folder read into what the drivers need: trees, people and events.

``scenario.yml`` is optional; without it the pull request is opened once by its author and
nothing else happens. Its keys:

- the pull request's author is ``dana`` (``tests.botharness.AUTHOR``);
- ``collaborators``: login -> role (GitHub's admin, maintain, write, triage, read);
- ``teams``: ``org/slug`` -> member logins;
- ``mirror``: a folder of the repository (``examples/shop``) whose ``base/`` and ``head/``
  these trees copy; the test fails when the copy differs, ``--update`` refreshes it;
- ``events``: what happens, in order. ``{open: TREE}`` opens the pull request with its head
  at the folder TREE; ``{push: TREE, by: LOGIN}`` pushes a commit with that tree;
  ``{review: STATE, by: LOGIN, commit: TREE}`` submits a review (``approve``,
  ``request_changes`` or ``comment``) on the commit of TREE (default: the current head).
  Default: ``[{open: head}]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.botharness import AUTHOR

ROOT = Path(__file__).resolve().parent
REPOSITORY = ROOT.parent.parent
DEFAULT_COLLABORATORS = {"alice": "write", "bob": "maintain", "dana": "write", "mallory": "read"}
REVIEW_STATES = {
    "approve": "APPROVED",
    "request_changes": "CHANGES_REQUESTED",
    "comment": "COMMENTED",
}


@dataclass(frozen=True, slots=True)
class Event:
    kind: str  # open, push, review
    tree: str  # the folder whose tree the event's commit has
    by: str
    state: str = ""  # reviews: GitHub's review state


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    folder: Path
    author: str
    collaborators: dict[str, str]
    teams: dict[str, tuple[str, ...]]
    events: tuple[Event, ...]
    mirror: Path | None

    @property
    def settings(self) -> Path | None:
        """The base side's settings file, as the bot reads it."""
        path = self.folder / "base" / ".github" / "reachdiff.yml"
        return path if path.is_file() else None

    def tree(self, name: str) -> dict[str, bytes]:
        """The files of folder ``name`` (dotfiles included), by repository path."""
        top = self.folder / name
        if not top.is_dir():
            raise FileNotFoundError(f"{self.name}: no tree folder {name}/")
        return {
            path.relative_to(top).as_posix(): path.read_bytes()
            for path in sorted(top.rglob("*"))
            if path.is_file()
        }


def discover() -> list[Scenario]:
    return [load(folder) for folder in sorted(ROOT.iterdir()) if (folder / "base").is_dir()]


def load(folder: Path) -> Scenario:
    spec_file = folder / "scenario.yml"
    raw: dict[str, Any] = {}
    if spec_file.is_file():
        raw = yaml.safe_load(spec_file.read_text()) or {}
    unknown = set(raw) - {"collaborators", "teams", "events", "mirror"}
    if unknown:
        raise ValueError(f"{spec_file}: unknown keys {sorted(unknown)}")
    author = AUTHOR
    events = tuple(_event(e, author, spec_file) for e in raw.get("events", [{"open": "head"}]))
    if not events or events[0].kind != "open":
        raise ValueError(f"{spec_file}: the first event must open the pull request")
    mirror = raw.get("mirror")
    return Scenario(
        name=folder.name,
        folder=folder,
        author=author,
        collaborators=dict(raw.get("collaborators", DEFAULT_COLLABORATORS)),
        teams={k: tuple(v) for k, v in raw.get("teams", {}).items()},
        events=events,
        mirror=REPOSITORY / mirror if mirror else None,
    )


def _event(raw: dict[str, Any], author: str, where: Path) -> Event:
    if "open" in raw:
        return Event("open", str(raw["open"]), author)
    if "push" in raw:
        return Event("push", str(raw["push"]), str(raw.get("by", author)))
    if "review" in raw:
        state = REVIEW_STATES.get(str(raw["review"]))
        if state is None or "by" not in raw:
            raise ValueError(f"{where}: a review needs one of {sorted(REVIEW_STATES)} and by")
        return Event("review", str(raw.get("commit", "")), str(raw["by"]), state)
    raise ValueError(f"{where}: unknown event {raw!r}")
