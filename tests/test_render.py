from __future__ import annotations

import html.parser
import json
import re
from dataclasses import replace

import jinja2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis import markdown
from analysis.report import diff_to_json
from bot.render.posts import (
    CHECK_TEXT_LIMIT,
    CHECK_TITLE_LIMIT,
    COMMENT_LIMIT,
    EXPANDED_LIMIT,
    MARKER,
    MAX_ANNOTATIONS,
    InputProblem,
    ReviewContext,
    check_conclusion,
    render_check_output,
    render_comment,
    render_diff_json,
    render_failure,
    render_line_comments,
    rule_marker,
    size,
    verdict,
)
from bot.render.templating import ResourceLoader, environment
from bot.review.approvals import ApprovalStatus, Review, evaluate_approvals
from bot.review.settings import SETTINGS_PATH, RepoSettings, describe_approvers, parse_repo_settings
from tests.diff_builders import (
    ReachabilityDiff,
    cause,
    external,
    opened,
    real_diff,
    synthetic_diff,
    tcp,
    with_endpoints,
    workload,
)

BASE = "b" * 40
HEAD = "e" * 40
SERVER = "https://github.com"
REPO = "acme/k8s"

# ---- tiny manifest trees ---------------------------------------------------------------

WORKLOADS = """\
apiVersion: v1
kind: Namespace
metadata: {name: prod}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: prod}
spec:
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: x}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: db, namespace: prod}
spec:
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: c, image: x}]}
"""

API = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: prod}
spec:
  template:
    metadata: {labels: {app: api}}
    spec: {containers: [{name: c, image: x}]}
"""

DB_ISOLATED = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db-ingress, namespace: prod}
spec:
  podSelector: {matchLabels: {app: db}}
  policyTypes: [Ingress]
"""

# The rules start at lines 8 ("- from:" for web) and 13 (for api).
DB_FROM_WEB = (
    DB_ISOLATED
    + """\
  ingress:
  - from:
    - podSelector: {matchLabels: {app: web}}
    ports:
    - port: 5432
    - port: 6432
"""
)

DB_FROM_WEB_AND_API = (
    DB_FROM_WEB
    + """\
  - from:
    - podSelector: {matchLabels: {app: api}}
    ports:
    - port: 5432
"""
)

ISOLATED: dict[str, str] = {"apps.yaml": WORKLOADS, "policies/db.yaml": DB_ISOLATED}
WEB_OPEN: dict[str, str] = {"apps.yaml": WORKLOADS, "policies/db.yaml": DB_FROM_WEB}


def ctx(
    settings: RepoSettings | None = None,
    *,
    present: bool = True,
    approval: ApprovalStatus | None = None,
    check_run_url: str | None = None,
) -> ReviewContext:
    settings = (
        settings
        if settings is not None
        else parse_repo_settings("approvers:\n  users: [alice]\n  teams: [acme/netsec]\n")
    )
    return ReviewContext(
        repository=REPO,
        server_url=SERVER,
        base_sha=BASE,
        head_sha=HEAD,
        compared="base branch head bbbbbbb vs test merge commit eeeeeee",
        settings=settings,
        settings_present=present,
        approval=approval,
        approvers_description=describe_approvers(settings, present=present),
        check_run_url=check_run_url,
    )


def approved_by(*logins: str, required: int = 1) -> ApprovalStatus:
    reviews = [
        Review(n, login, "APPROVED", HEAD, f"2024-01-01T00:00:0{n}Z")
        for n, login in enumerate(logins)
    ]
    return evaluate_approvals(
        reviews, head_sha=HEAD, author="author", is_authorized=lambda _: True, required=required
    )


def blob(sha: str, path: str, line: int) -> str:
    return f"{SERVER}/{REPO}/blob/{sha}/{path}#L{line}"


# ---- GitHub's Markdown, for checking what the escaping achieves ---------------------------


class _Shape(html.parser.HTMLParser):
    """Tags, table rows, and the text a reader sees outside code."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.rows: list[int] = []  # cells per table row
        self.prose: list[str] = []
        self._code = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag in ("code", "pre"):
            self._code += 1
        if tag == "tr":
            self.rows.append(0)
        if tag in ("td", "th"):
            self.rows[-1] += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("code", "pre"):
            self._code -= 1

    def handle_data(self, data: str) -> None:
        if not self._code:
            self.prose.append(data)


def gfm(text: str) -> _Shape:
    cmarkgfm = pytest.importorskip("cmarkgfm")
    from cmarkgfm.cmark import Options  # type: ignore[import-untyped]

    # UNSAFE keeps raw HTML in the output, so any HTML that got through shows up here.
    rendered = cmarkgfm.github_flavored_markdown_to_html(text, options=Options.CMARK_OPT_UNSAFE)
    shape = _Shape()
    shape.feed(rendered)
    return shape


OUR_TAGS = {
    "h3",
    "h4",
    "p",
    "strong",
    "em",
    "code",
    "a",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "ul",
    "li",
    "details",
    "summary",
    "br",
    "sub",
    "pre",
    "blockquote",
}
MENTION = re.compile(r"(?<![\w`])[@#][A-Za-z0-9]")


def assert_safe(text: str, *, mentions: tuple[str, ...] = ()) -> _Shape:
    shape = gfm(text)
    assert set(shape.tags) <= OUR_TAGS, set(shape.tags) - OUR_TAGS
    prose = "".join(shape.prose)
    for allowed in mentions:
        prose = prose.replace(allowed, "")
    assert not MENTION.search(prose), MENTION.search(prose)
    return shape


# ---- verdicts and conclusions ---------------------------------------------------------


def test_widened_needs_approval_from_the_configured_approvers() -> None:
    diff = real_diff(ISOLATED, WEB_OPEN)
    c = ctx()
    assert verdict(diff, c) == (
        "widened: 1 path opened, needs 1 approval from @alice or a member of @acme/netsec"
    )
    assert check_conclusion(diff, c) == "failure"
    comment = render_comment(diff, c)
    assert comment.startswith(MARKER + "\n")
    assert "Access widened: needs 1 approval from @alice or a member of @acme/netsec" in comment
    assert "**Approvals:** 0 of 1" in comment


def test_approved_widening_passes_and_names_the_approver() -> None:
    diff = real_diff(ISOLATED, WEB_OPEN)
    c = ctx(approval=approved_by("bob"))
    assert check_conclusion(diff, c) == "success"
    assert verdict(diff, c) == "widened: 1 path opened, approved by @bob"
    comment = render_comment(diff, c)
    # The approver is shown, not pinged: the login sits in a code span.
    assert "Access widened, approved by `@bob`" in comment


def test_partial_approval_says_how_many_more() -> None:
    diff = real_diff(ISOLATED, WEB_OPEN)
    c = ctx(approval=approved_by("bob", required=2))
    assert check_conclusion(diff, c) == "failure"
    assert verdict(diff, c).endswith(
        "needs 1 more approval from @alice or a member of @acme/netsec"
    )
    assert "**Approvals:** 1 of 2" in render_comment(diff, c)


def test_ignored_approvals_are_explained() -> None:
    reviews = [
        Review(1, "author", "APPROVED", HEAD, "2024-01-01T00:00:01Z"),
        Review(2, "carol", "APPROVED", "1234567" + "0" * 33, "2024-01-01T00:00:02Z"),
    ]
    status = evaluate_approvals(
        reviews, head_sha=HEAD, author="author", is_authorized=lambda _: True, required=1
    )
    comment = render_comment(real_diff(ISOLATED, WEB_OPEN), ctx(approval=status))
    assert "`@author` (is the pull request's author)" in comment
    assert "`@carol` (approved an older commit (1234567))" in comment


def test_narrowed() -> None:
    diff = real_diff(WEB_OPEN, ISOLATED)
    c = ctx()
    assert verdict(diff, c) == "narrowed: 1 path closed, none opened"
    assert check_conclusion(diff, c) == "success"
    comment = render_comment(diff, c)
    assert "Access narrowed" in comment
    assert "#### Closed paths (1)" in comment
    # A closed path's cause is a rule that only the base has: linked at the base commit.
    assert (
        f"]({blob(BASE, 'policies/db.yaml', 8)}) ingress\\[0\\]: no longer allows (base)" in comment
    )
    assert render_line_comments(diff, c) == ()


def test_unchanged() -> None:
    diff = real_diff(WEB_OPEN, WEB_OPEN)
    c = ctx()
    assert verdict(diff, c) == "unchanged: no path opened or closed"
    assert check_conclusion(diff, c) == "success"
    comment = render_comment(diff, c)
    assert "Reachability unchanged" in comment
    assert "mermaid" not in comment
    output = render_check_output(diff, c)
    assert output.text == ""
    assert "text" not in output.to_api()


# ---- content of the comment -------------------------------------------------------------


def test_comment_lists_paths_by_destination_with_ports_and_linked_rules() -> None:
    diff = real_diff(
        ISOLATED, {"apps.yaml": WORKLOADS + "---\n" + API, "policies/db.yaml": DB_FROM_WEB_AND_API}
    )
    comment = render_comment(diff, ctx())
    # The new api is not isolated: besides the db rule's, 8 paths to and from it open.
    assert "| opened paths | closed paths | new workloads | removed workloads |" in comment
    assert "| 10 | 0 | 1 | 0 |" in comment
    db = comment.split("**to `prod/Deployment/db`**\n\n", 1)[1].split("\n\n", 1)[0]
    assert db.splitlines() == [
        "| from | ports | because |",
        "| --- | --- | --- |",
        "| `prod/Deployment/api` (new) | `TCP 5432` | [`prod/NetworkPolicy/db-ingress`]"
        f"({blob(HEAD, 'policies/db.yaml', 13)}) ingress\\[1\\] |",
        "| `prod/Deployment/web` | `TCP 5432,6432` | [`prod/NetworkPolicy/db-ingress`]"
        f"({blob(HEAD, 'policies/db.yaml', 8)}) ingress\\[0\\] |",
    ]
    # Destinations: workloads by name, then external ranges in address order.
    order = re.findall(r"^\*\*to `([^`]+)`\*\*", comment, re.M)
    assert order == [
        "prod/Deployment/api",
        "prod/Deployment/db",
        "prod/Deployment/web",
        "0.0.0.0/0",
        "::/0",
    ]
    # Every workload of prod newly reaches the new api, for the same reason: one row.
    assert (
        "| all 3 workloads of `prod` (1 new) | `TCP all; UDP all; SCTP all` | new workload |"
        in comment
    )
    assert "#### New workloads (1)\n\n- `prod/Deployment/api`" in comment


def test_comment_parses_as_github_does() -> None:
    diff = real_diff(
        ISOLATED, {"apps.yaml": WORKLOADS + "---\n" + API, "policies/db.yaml": DB_FROM_WEB_AND_API}
    )
    comment = render_comment(diff, ctx(approval=approved_by("bob")))
    shape = assert_safe(comment, mentions=("@alice", "@acme/netsec"))
    assert shape.rows[:2] == [4, 4]  # the counts table
    # 10 paths in 7 rows (3 to the api said as "all 3 workloads of prod", the two ranges
    # as one row) in 5 tables, each with its header row: each row has 3 cells.
    assert shape.rows[2:] == [3] * (7 + 5)
    assert shape.tags.count("details") == 1  # the graph


def test_comment_names_the_commits_compared() -> None:
    comment = render_comment(real_diff(ISOLATED, WEB_OPEN), ctx())
    assert f"[`bbbbbbb`]({SERVER}/{REPO}/commit/{BASE}) (base)" in comment
    assert f"[`eeeeeee`]({SERVER}/{REPO}/commit/{HEAD}) (head)" in comment
    assert "base branch head bbbbbbb vs test merge commit eeeeeee" in comment


def test_without_a_server_links_are_relative_to_the_repository_root() -> None:
    local = replace(ctx(), server_url="", repository="")
    comment = render_comment(real_diff(ISOLATED, WEB_OPEN), local)
    assert "Compared `bbbbbbb` (base) with `eeeeeee` (head)" in comment
    assert "[`prod/NetworkPolicy/db-ingress`](policies/db.yaml#L8) ingress\\[0\\]" in comment
    assert "https://" not in comment


def test_mermaid_graph_of_changed_edges() -> None:
    diff = real_diff(ISOLATED, WEB_OPEN)
    comment = render_comment(diff, ctx())
    graph = comment.split("```mermaid\n", 1)[1].split("```", 1)[0]
    assert graph.splitlines() == [
        "flowchart LR",
        '  n0["prod/Deployment/web"]',
        '  n1["prod/Deployment/db"]',
        '  n0 -->|"TCP 5432,6432"| n1',
    ]
    closed = render_comment(real_diff(WEB_OPEN, ISOLATED), ctx())
    assert '  n0 -.->|"TCP 5432,6432"| n1' in closed
    off = ctx(parse_repo_settings("diagram: false\n"))
    assert "mermaid" not in render_comment(diff, off)


def test_mermaid_graph_is_capped_and_escaped() -> None:
    hostile = workload('x/Pod/a"] --> evil["<b>@acme')
    changes = tuple(opened(hostile, workload(f"y/Pod/p{i}"), tcp(80)) for i in range(45))
    comment = render_comment(ReachabilityDiff(opened=changes), ctx())
    graph = comment.split("```mermaid\n", 1)[1].split("```", 1)[0]
    assert graph.count("-->") == 30
    assert "…and 15 more changed paths, not drawn." in comment
    label = graph.splitlines()[1]
    assert label == '  n0["x/Pod/a#34;#93; --#62; evil#91;#34;#60;b#62;#64;acme"]'


def test_no_settings_file_note() -> None:
    diff = real_diff(ISOLATED, WEB_OPEN)
    c = ctx(RepoSettings(), present=False)
    assert verdict(diff, c).endswith(
        "needs 1 approval from anyone with write access (no .github/reachdiff.yml)"
    )
    comment = render_comment(diff, c)
    assert (
        "> [!NOTE]\n> There is no `.github/reachdiff.yml` on the base branch, so anyone "
        "with write access may approve" in comment
    )
    assert "[!NOTE]" not in render_comment(diff, ctx())


def test_paths_involving_new_workloads_need_no_approval_when_configured() -> None:
    head = {"apps.yaml": WORKLOADS + "---\n" + API, "policies/db.yaml": DB_FROM_WEB_AND_API}
    only_new = real_diff({"apps.yaml": WORKLOADS, "policies/db.yaml": DB_FROM_WEB}, head)
    relaxed = ctx(parse_repo_settings("new_workloads_widen: false\n"))
    assert check_conclusion(only_new, relaxed) == "success"
    assert verdict(only_new, relaxed) == (
        "widened: 9 paths opened, all to or from new workloads: no approval needed"
    )
    comment = render_comment(only_new, relaxed)
    assert "Access widened only to or from new workloads: no approval needed" in comment
    assert "9 of the opened paths lead to or from workloads this pull request adds" in comment
    assert render_line_comments(only_new, relaxed) == ()
    # By default a new workload's access is a widening like any other.
    assert check_conclusion(only_new, ctx()) == "failure"
    # An existing workload's new access still needs approval under the relaxed setting.
    both = real_diff(ISOLATED, head)
    assert check_conclusion(both, relaxed) == "failure"


def test_ignored_namespaces_are_counted_not_listed() -> None:
    diff = with_endpoints(
        ReachabilityDiff(
            opened=(
                opened(workload("sandbox-1/Pod/a"), external("0.0.0.0/0"), tcp(443)),
                opened(
                    workload("sandbox-1/Pod/a"), workload("sandbox-2/Pod/b"), tcp(80), dst_new=True
                ),
                opened(workload("sandbox-1/Pod/a"), workload("prod/Deployment/db"), tcp(5432)),
            )
        )
    )
    c = ctx(parse_repo_settings("ignore_namespaces: ['sandbox-*']\n"))
    comment = render_comment(diff, c)
    assert "2 changed paths among ignored namespaces (`ignore_namespaces`) not shown." in comment
    assert "#### Opened paths (1)" in comment
    assert "sandbox-2/Pod/b" not in comment  # nor in the new workloads
    assert "| 1 | 0 | 0 | 0 |" in comment
    assert check_conclusion(diff, c) == "failure"  # into prod: not ignored
    only_sandbox = ReachabilityDiff(opened=diff.opened[:2])
    assert check_conclusion(only_sandbox, c) == "success"
    assert verdict(only_sandbox, c) == "unchanged: no path opened or closed"


def test_removing_an_isolating_policy_blames_the_base_line() -> None:
    diff = real_diff(ISOLATED, {"apps.yaml": WORKLOADS})
    comment = render_comment(diff, ctx())
    assert f"]({blob(BASE, 'policies/db.yaml', 1)}): no longer isolates (base)" in comment
    comments = render_line_comments(diff, ctx())
    assert len(comments) == 1
    only = comments[0]
    assert (only.path, only.line, only.side) == ("policies/db.yaml", 1, "LEFT")
    assert "`prod/NetworkPolicy/db-ingress` (no longer isolates) opens" in only.body
    # Annotations can only point into the head commit.
    assert render_check_output(diff, ctx()).annotations == ()


def test_hostile_names_cannot_mention_inject_html_or_break_tables() -> None:
    evil = (
        "x/Pod/@acme/all <img src=x onerror=alert(1)> | `code` ``more`` "
        "#1 owner/repo#2 <!-- --> [link](http://evil) **bold**\nnewline"
    )
    change = opened(
        workload(evil),
        workload("prod/Deployment/db"),
        tcp(80),
        cause(evil.replace("Pod", "NetworkPolicy"), "we|rd <b>@acme/x`.yaml", 3),
    )
    diff = with_endpoints(ReachabilityDiff(opened=(change,)))
    c = ctx(check_run_url="https://github.com/acme/k8s/runs/1")
    comment = render_comment(diff, c)
    shape = assert_safe(comment, mentions=("@alice", "@acme/netsec"))
    assert all(cells == 3 for cells in shape.rows[2:]), shape.rows  # after the counts table
    assert "we%7Crd%20%3Cb%3E%40acme/x%60.yaml#L3" in comment
    output = render_check_output(diff, c)
    assert_safe(output.summary, mentions=("@alice", "@acme/netsec"))
    assert_safe(output.text)
    for line_comment in render_line_comments(diff, c):
        assert_safe(line_comment.body)
        assert rule_marker(line_comment.body) == line_comment.marker


def test_compared_text_and_approvers_description_are_escaped() -> None:
    c = replace(
        ctx(), compared="<script>@everyone</script> | #5", approvers_description="@alice <b>x</b>"
    )
    comment = render_comment(real_diff(ISOLATED, WEB_OPEN), c)
    assert "<script>" not in comment and "<b>" not in comment
    assert_safe(comment, mentions=("@alice",))


# ---- line comments ----------------------------------------------------------------------


def test_one_line_comment_per_responsible_rule() -> None:
    diff = real_diff(
        ISOLATED, {"apps.yaml": WORKLOADS + "---\n" + API, "policies/db.yaml": DB_FROM_WEB_AND_API}
    )
    comments = render_line_comments(diff, ctx())
    assert [(x.path, x.line, x.side) for x in comments] == [
        ("policies/db.yaml", 8, "RIGHT"),
        ("policies/db.yaml", 13, "RIGHT"),
    ]
    first = comments[0].body
    assert first.startswith("<!-- reachdiff:rule policies/db.yaml:8 ")
    assert (
        "`prod/NetworkPolicy/db-ingress` ingress\\[0\\] opens 1 path that needs approval" in first
    )
    assert "| `prod/Deployment/web` | `prod/Deployment/db` | `TCP 5432,6432` |" in first


def test_line_comments_dedupe_by_file_and_line() -> None:
    rule = cause("prod/NetworkPolicy/db", "db.yaml", 9)
    changes = tuple(
        opened(workload(f"prod/Pod/p{i}"), workload("prod/Deployment/db"), tcp(5432), rule)
        for i in range(25)
    )
    comments = render_line_comments(ReachabilityDiff(opened=changes), ctx())
    assert len(comments) == 1
    body = comments[0].body
    assert "opens 25 paths that need approval" in body
    # 25 sources of one namespace, alike: one row naming 20 of them.
    assert body.count("| 25 workloads of `prod`: `Pod/p0`, `Pod/p1`, ") == 1
    assert body.count("`Pod/p") == 20 and ", and 5 more | `prod/Deployment/db` |" in body
    assert "more: see the pull request's reachdiff comment." not in body


def test_line_comments_list_at_most_20_rows() -> None:
    rule = cause("prod/NetworkPolicy/db", "db.yaml", 9)
    changes = tuple(
        opened(workload("prod/Pod/p"), workload(f"prod/Deployment/d{i:02}"), tcp(5432), rule)
        for i in range(25)
    )
    [comment] = render_line_comments(ReachabilityDiff(opened=changes), ctx())
    assert comment.body.count("| `prod/Pod/p` | `prod/Deployment/d") == 20
    assert "…and 5 more: see the pull request's reachdiff comment." in comment.body


def test_line_comment_markers_are_stable_and_distinct() -> None:
    diff = real_diff(
        ISOLATED, {"apps.yaml": WORKLOADS + "---\n" + API, "policies/db.yaml": DB_FROM_WEB_AND_API}
    )
    first = render_line_comments(diff, ctx())
    again = render_line_comments(diff, ctx(approval=approved_by("bob")))
    assert [x.marker for x in first] == [x.marker for x in again]
    assert len({x.marker for x in first}) == 2
    assert all(rule_marker(x.body) == x.marker for x in first)
    assert rule_marker("an ordinary comment") is None


def test_marker_survives_a_file_name_that_would_close_the_comment() -> None:
    change = opened(
        workload("a/Pod/b"),
        workload("a/Pod/c"),
        tcp(1),
        cause("a/NetworkPolicy/p", "x --> <b>y.yaml", 4),
    )
    (only,) = render_line_comments(ReachabilityDiff(opened=(change,)), ctx())
    assert only.path == "x --> <b>y.yaml"
    assert only.marker.count("-->") == 1 and only.marker.endswith(" -->")
    assert rule_marker(only.body) == only.marker


def test_line_comments_capped_and_filtered() -> None:
    changes = tuple(
        opened(
            workload(f"a/Pod/p{i}"),
            workload("a/Pod/db"),
            tcp(80),
            *(cause("a/NetworkPolicy/x", "x.yaml", line) for line in range(1, i + 2)),
        )
        for i in range(10)
    )
    diff = ReachabilityDiff(opened=changes)
    capped = ctx(parse_repo_settings("max_line_comments: 3\n"))
    comments = render_line_comments(diff, capped)
    # The lines responsible for the most paths come first.
    assert [x.line for x in comments] == [1, 2, 3]
    assert render_line_comments(diff, ctx(parse_repo_settings("max_line_comments: 0\n"))) == ()
    in_diff = render_line_comments(diff, capped, can_comment=lambda path, line, side: line > 5)
    assert [x.line for x in in_diff] == [6, 7, 8]


def test_annotations_for_head_rules() -> None:
    diff = real_diff(ISOLATED, WEB_OPEN)
    output = render_check_output(diff, ctx())
    (note,) = output.annotations
    assert note.to_api() == {
        "path": "policies/db.yaml",
        "start_line": 8,
        "end_line": 8,
        "annotation_level": "warning",
        "title": "Opens 1 path that needs approval",
        "message": "prod/NetworkPolicy/db-ingress ingress[0]\n"
        "prod/Deployment/web -> prod/Deployment/db: TCP 5432,6432",
    }
    many = synthetic_diff(3, 400, 0)
    assert len(render_check_output(many, ctx()).annotations) == MAX_ANNOTATIONS


# ---- check output -------------------------------------------------------------------------


def test_check_output() -> None:
    diff = real_diff(ISOLATED, WEB_OPEN)
    output = render_check_output(diff, ctx(check_run_url="https://github.com/a/b/runs/1"))
    assert output.title == (
        "Widened: 1 path opened, needs 1 approval from @alice or a member of @acme/netsec"
    )
    assert output.summary.startswith("### 🔓 Access widened")
    assert MARKER not in output.summary
    assert "#### Opened paths (1)" in output.text
    api = output.to_api()
    assert set(api) == {"title", "summary", "text", "annotations"}
    long = ctx(
        parse_repo_settings(
            "approvers:\n  users: [" + ", ".join(f"user{i}" for i in range(150)) + "]\n"
        )
    )
    assert len(render_check_output(diff, long).title) == CHECK_TITLE_LIMIT


# ---- sizes --------------------------------------------------------------------------------


def _well_formed(text: str) -> None:
    assert text.count("<details") == text.count("</details>")
    assert text.count("```") % 2 == 0


def test_size_degrades_step_by_step() -> None:
    c = ctx(check_run_url="https://github.com/acme/k8s/runs/9")
    small = render_comment(synthetic_diff(1, 20, 5), c)
    assert size(small) <= EXPANDED_LIMIT
    assert "<details><summary>Opened paths" not in small
    assert "#### Opened paths (20)" in small

    # Too long to read expanded, short enough to list in full.
    medium = render_comment(synthetic_diff(1, 60, 10), c)
    assert EXPANDED_LIMIT < size(medium) <= COMMENT_LIMIT
    assert "<details><summary>Opened paths (60)</summary>" in medium
    assert "more, listed in" not in medium

    large = render_comment(synthetic_diff(1, 3000, 1000), c)
    assert size(large) <= COMMENT_LIMIT
    assert "<details><summary>Opened paths (3000)</summary>" in large
    assert re.search(
        r"…and \d+ more, listed in \[the check run\]"
        r"\(https://github.com/acme/k8s/runs/9\) and in `reachdiff diff",
        large,
    )
    _well_formed(large)


def test_size_falls_back_to_a_summary() -> None:
    # Rows so long that even ten per list cannot fit.
    names = ("x" * 200,)
    diff = synthetic_diff(2, 50, 50, names=names, causes_per_path=3)
    long_ctx = replace(ctx(), compared="c" * 20000, approvers_description="a" * 20000)
    comment = render_comment(diff, long_ctx)
    assert size(comment) <= COMMENT_LIMIT
    assert "The lists of changes are too long for a comment" in comment
    assert comment.startswith(MARKER)


def test_last_resort_truncation_keeps_the_marker() -> None:
    huge = replace(ctx(), compared="z" * (COMMENT_LIMIT + 10))
    comment = render_comment(real_diff(ISOLATED, WEB_OPEN), huge)
    assert size(comment) <= COMMENT_LIMIT
    assert comment.startswith(MARKER)
    assert comment.endswith("… (cut to GitHub's size limit)\n")


def test_size_counts_utf16_units() -> None:
    assert size("a") == 1
    assert size("é") == 1
    assert size("😀") == 2


hostile = st.text(
    alphabet=st.sampled_from([*"ab|`<>@#*_[]()\\\n&;-!", "😀", "\u202e", "é"]),
    min_size=1,
    max_size=40,
)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10**6),
    n_opened=st.integers(0, 5000),
    n_closed=st.integers(0, 2500),
    names=st.lists(hostile, min_size=1, max_size=4),
    causes=st.integers(1, 8),
)
def test_every_body_stays_within_githubs_limits(
    seed: int, n_opened: int, n_closed: int, names: list[str], causes: int
) -> None:
    diff = synthetic_diff(seed, n_opened, n_closed, names=tuple(names), causes_per_path=causes)
    c = ctx(
        parse_repo_settings("max_line_comments: 100\n"),
        check_run_url="https://github.com/acme/k8s/runs/1",
    )
    comment = render_comment(diff, c)
    assert size(comment) <= COMMENT_LIMIT
    assert comment.startswith(MARKER)
    _well_formed(comment)
    output = render_check_output(diff, c)
    assert size(output.summary) <= CHECK_TEXT_LIMIT
    assert size(output.text) <= CHECK_TEXT_LIMIT
    assert len(output.title) <= CHECK_TITLE_LIMIT
    assert len(output.annotations) <= MAX_ANNOTATIONS
    for line_comment in render_line_comments(diff, c):
        assert size(line_comment.body) <= COMMENT_LIMIT


# ---- failures -----------------------------------------------------------------------------


def test_render_failure() -> None:
    problems = [
        InputProblem("apps/web.yaml", 12, "port 'http-<b>' is not a valid port name @acme/x"),
        InputProblem(SETTINGS_PATH, 3, "approvers.teams: 'netsec' is not a team", tree="base"),
        InputProblem("broken.yaml", None, "not UTF-8"),
        InputProblem("", None, "the archive is larger than 100 MiB", tree=""),
    ]
    comment, output = render_failure(
        ctx(), title="invalid manifests", message="2 files could not be read.", problems=problems
    )
    assert comment.startswith(MARKER + "\n")
    assert "### ❌ reachdiff could not analyze this pull request: invalid manifests" in comment
    # Each problem names its side, as the CLI's errors do.
    assert f"- head: [`apps/web.yaml:12`]({blob(HEAD, 'apps/web.yaml', 12)}): port" in comment
    assert f"- base: [`{SETTINGS_PATH}:3`]({blob(BASE, SETTINGS_PATH, 3)}): " in comment
    broken = f"{SERVER}/{REPO}/blob/{HEAD}/broken.yaml"
    assert f"- head: [`broken.yaml`]({broken}): not UTF-8" in comment
    assert "\n- the archive is larger than 100 MiB\n" in comment
    assert_safe(comment)
    assert output.title == "invalid manifests"
    assert MARKER not in output.summary
    assert [a.to_api() for a in output.annotations] == [
        {
            "path": "apps/web.yaml",
            "start_line": 12,
            "end_line": 12,
            "annotation_level": "failure",
            "message": "port 'http-<b>' is not a valid port name @acme/x",
        }
    ]


def test_render_failure_stays_within_limits() -> None:
    problems = [InputProblem(f"f{i}.yaml", i + 1, "m" * 3000) for i in range(500)]
    comment, output = render_failure(ctx(), title="t" * 1000, message="x", problems=problems)
    assert size(comment) <= COMMENT_LIMIT
    assert size(output.summary) <= CHECK_TEXT_LIMIT
    assert len(output.title) <= CHECK_TITLE_LIMIT
    assert len(output.annotations) == MAX_ANNOTATIONS
    more = re.search(r"^- …and (\d+) more$", comment, re.M)
    assert more is not None
    assert comment.count("\n- head: [`f") + int(more.group(1)) == 500


# ---- JSON ---------------------------------------------------------------------------------


def test_render_diff_json_is_the_engine_contract() -> None:
    diff = real_diff(ISOLATED, WEB_OPEN)
    text = render_diff_json(diff)
    assert json.loads(text) == diff_to_json(diff)
    assert json.loads(text)["opened"][0]["allowed"] == {"TCP": "5432,6432"}


# ---- escaping helpers ---------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["a|b", "a`|`b", "|", "x\\|y"])
def test_code_in_cells_keeps_the_table(raw: str) -> None:
    table = f"| h | i |\n| --- | --- |\n| {markdown.code(raw, cell=True)} | z |\n"
    shape = gfm(table)
    assert shape.rows == [2, 2]


def test_text_escapes_markdown_html_and_mentions() -> None:
    escaped = markdown.text("<b>@octo #1 *x* [a](b) | c\nd")
    assert "<" not in escaped and "\n" not in escaped
    assert_safe(f"| h |\n| --- |\n| {escaped} |\n")
    assert markdown.text("@alice", mentions=True) == "@alice"


# ---- templates ----------------------------------------------------------------------------


def test_templates_load_through_importlib_resources() -> None:
    names = ResourceLoader().list_templates()
    for expected in (
        "comment.md.j2",
        "check_summary.md.j2",
        "check_text.md.j2",
        "line_comment.md.j2",
        "failure.md.j2",
    ):
        assert expected in names
        environment().get_template(expected)
    with pytest.raises(jinja2.TemplateNotFound):
        environment().get_template("../bot/render/posts.py")


def test_templates_survive_an_editable_install_path_hook(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import templates

    # pip install -e adds a non-directory entry that Python 3.11's resources reject.
    monkeypatch.setattr(templates, "__path__", [*templates.__path__, "__editable__.hook__"])
    source, filename, _ = ResourceLoader().get_source(environment(), "comment.md.j2")
    assert "{{ marker }}" in source
    assert filename is not None and filename.endswith("comment.md.j2")


def test_templates_refuse_to_print_unescaped_booleans() -> None:
    env = environment()
    with pytest.raises(TypeError):
        env.from_string("{{ flag }}").render(flag=True)
    assert env.from_string("{{ name }}").render(name="<b>@x") == "&lt;b&gt;@\u2060x"


def test_aggregated_rows_at_any_size_stay_within_limits() -> None:
    # 300 destinations, each reached by 40 of its namespace's workloads (long names) for the
    # same rule: rows name 20 each; the comment still fits, cutting rows as it must.
    rule = cause("big/NetworkPolicy/open", "open.yaml", 3)
    name = "w" * 90
    changes = tuple(
        opened(
            workload(f"big/Deployment/{name}{i:03}"),
            workload(f"big/Deployment/d{d:03}"),
            tcp(443),
            rule,
        )
        for d in range(300)
        for i in range(40)
    )
    diff = ReachabilityDiff(opened=changes)
    comment = render_comment(diff, ctx())
    output = render_check_output(diff, ctx())
    assert size(comment) <= COMMENT_LIMIT
    assert size(output.summary) <= CHECK_TEXT_LIMIT and size(output.text) <= CHECK_TEXT_LIMIT
    assert "| 40 workloads of `big`: " in comment
    for body in (c.body for c in render_line_comments(diff, ctx())):
        assert size(body) <= COMMENT_LIMIT
