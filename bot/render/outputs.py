"""The values rendering takes and produces, and GitHub's limits on them.

``ReviewContext`` is everything a rendering needs besides the diff; ``CheckOutput``,
``Annotation`` and ``LineComment`` are what the app sends; the limits are GitHub's (a comment
over 65,536 characters or a check summary over 65,535 is refused) and this app's own caps.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bot.review.approvals import ApprovalStatus
from bot.review.breaks import FlowData
from bot.review.settings import RepoSettings

MARKER = "<!-- reachdiff:sticky-comment -->"
COMMENT_LIMIT = 65536
CHECK_TEXT_LIMIT = 65535
CHECK_TITLE_LIMIT = 255
MAX_ANNOTATIONS = 50  # per request to the checks API
GRAPH_EDGE_LIMIT = 30
CAUSES_PER_PATH = 3
PATHS_PER_RULE = 20
MEMBERS_SHOWN = 20  # workloads named in one aggregated row; the check run has them all
PROBLEMS_SHOWN = 100
MESSAGE_LIMIT = 1000
LABEL_LIMIT = 120
PORTS_LIMIT = 100
EXPANDED_LIMIT = 20_000  # a longer comment starts with its sections collapsed
ALL_ROWS = 2000  # above this many list rows, a full listing cannot fit in 64 KiB anyway
CUTS = (1000, 500, 300, 200, 150, 100, 70, 50, 30, 20, 10, 5)
RULE_MARKER = re.compile(r"<!-- reachdiff:rule (\S+) ([0-9a-f]{12}) -->")


@dataclass(frozen=True, slots=True)
class ReviewContext:
    repository: str  # "owner/repo"
    server_url: str  # "https://github.com"
    base_sha: str
    head_sha: str
    compared: str  # "base branch head a1b2c3d vs test merge commit e4f5a6b"
    settings: RepoSettings
    settings_present: bool
    approval: ApprovalStatus | None
    approvers_description: str  # trusted Markdown: "@alice or a member of @acme/netsec"
    check_run_url: str | None = None
    # The commit whose files were analysed on the head side when it is not the head (the
    # test merge commit): links to cited lines point there, where those lines are.
    analysed_head_sha: str | None = None
    # Why the base could not be read, when it could not: the head was analysed on its own
    # and every path it allows counts as opened.
    base_error: str = ""
    # "path: why (side)" of what ``ignore_paths`` lets go unanalysed, shown in the comment.
    ignored_unread: tuple[str, ...] = ()
    # The flow data the settings name and whether it could be read (docs/traffic.md).
    flow_data: FlowData | None = None


@dataclass(frozen=True, slots=True)
class InputProblem:
    file: str
    line: int | None
    message: str
    tree: str = "head"  # where file/line point: "head", or "base" (e.g. the settings file);
    # "" when the problem is not one side's
    # A base side's file that the head commit has byte for byte: the check run's annotation
    # (which points into the head) shows the line too.
    same_on_head: bool = False


@dataclass(frozen=True, slots=True)
class Annotation:
    path: str
    start_line: int
    end_line: int
    annotation_level: str  # notice, warning, failure
    message: str
    title: str = ""

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "path": self.path,
            "start_line": self.start_line,
            "end_line": self.end_line,
            "annotation_level": self.annotation_level,
            "message": self.message,
        }
        if self.title:
            out["title"] = self.title
        return out


@dataclass(frozen=True, slots=True)
class CheckOutput:
    title: str
    summary: str
    text: str = ""
    annotations: tuple[Annotation, ...] = ()  # at most MAX_ANNOTATIONS

    def to_api(self) -> dict[str, Any]:
        """The ``output`` object of a check run create/update request."""
        out: dict[str, Any] = {"title": self.title, "summary": self.summary}
        if self.text:
            out["text"] = self.text
        if self.annotations:
            out["annotations"] = [a.to_api() for a in self.annotations]
        return out


@dataclass(frozen=True, slots=True)
class LineComment:
    path: str
    line: int
    body: str
    side: str = "RIGHT"  # RIGHT: a line of the head; LEFT: a line the PR deletes
    marker: str = ""  # the hidden marker at the start of body
