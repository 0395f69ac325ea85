"""End to end: signed deliveries into the real server, GitHub played by the fake.

Every test ends by asserting ``validation_errors == []``: each request the bot sent matched
GitHub's published OpenAPI description.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from bot.render.posts import COMMENT_LIMIT
from tests.botharness import (
    AUTHOR,
    BASE,
    HEAD,
    HEAD2,
    HEAD3,
    MERGE,
    NUMBER,
    REPO,
    WORKLOADS,
    Harness,
    MakeHarness,
    base_tree,
    db_policy,
    push,
    review,
    setup_pull,
)
from tests.fakegithub.server import FakeGitHub

APPROVED = {"review.state": "approved"}  # the webhook's lowercase review state
WIDENED = base_tree(**{"policies/db.yaml": db_policy("web")})  # web -> db TCP 5432 opens


def unescape(markdown: str) -> str:
    return markdown.replace("\\", "")


def codeload_downloads(fake: FakeGitHub) -> int:
    return sum(1 for r in fake.requests if r["operation"] == "codeload")


# ---- the approval lifecycle -----------------------------------------------------------


async def test_widening_pull_request_fails_with_sticky_comment_and_line_comment(
    harness: Harness,
) -> None:
    setup_pull(harness.fake, WIDENED)
    await review(harness)

    check = harness.check(HEAD)
    assert (check["status"], check["conclusion"]) == ("completed", "failure")
    assert check["output"]["title"].startswith("Widened: 1 path opened, needs 1 approval")
    annotations = check["output"]["annotations"]
    assert [(a["path"], a["start_line"]) for a in annotations] == [("policies/db.yaml", 11)]

    body = harness.sticky()["body"]
    assert "shop/Deployment/web" in body and "shop/Deployment/db" in body
    assert "TCP 5432" in body
    assert f"blob/{HEAD}/policies/db.yaml#L11" in body
    assert "merge base" in body and HEAD[:7] in body

    [bot_review] = harness.bot_reviews()
    assert bot_review["event"] == "COMMENT" and bot_review["commit_id"] == HEAD
    [comment] = harness.bot_review_comments()
    assert (comment["path"], comment["line"], comment["side"]) == ("policies/db.yaml", 11, "RIGHT")
    assert "db-ingress" in comment["body"]


def db_file(owner: str) -> bytes:
    """db_policy("api") (its rule on line 11) and, from line 18, a policy no pod matches."""
    return (
        db_policy("api")
        + (
            "---\n"  # 17
            "apiVersion: networking.k8s.io/v1\n"
            "kind: NetworkPolicy\n"
            "metadata:\n"  # 20
            "  name: cache-ingress\n"
            "  namespace: shop\n"
            f"  labels: {{owner: {owner}}}\n"  # 23
            "spec:\n"
            "  podSelector:\n"
            "    matchLabels: {app: cache}\n"
            "  policyTypes: [Ingress]\n"
        ).encode()
    )


async def test_rule_outside_the_diff_gets_one_file_level_comment(harness: Harness) -> None:
    """web takes db-ingress's peer label: the rule that lets it in is untouched, and the
    only edit to its file is 12 lines below it, so GitHub would refuse a line comment."""
    fake = harness.fake
    relabeled = WORKLOADS.replace(b"{app: web}", b"{app: api}")
    setup_pull(
        fake,
        base_tree(**{"apps/shop.yaml": relabeled, "policies/db.yaml": db_file("team-b")}),
        base_files=base_tree(**{"policies/db.yaml": db_file("team-a")}),
    )
    await review(harness)

    check = harness.check(HEAD)
    assert check["conclusion"] == "failure"
    assert [(a["path"], a["start_line"]) for a in check["output"]["annotations"]] == [
        ("policies/db.yaml", 11)
    ]
    [change] = [
        c
        for c in fake.pull_changes(fake.repo(REPO), fake.pull(REPO, NUMBER))
        if c.filename == "policies/db.yaml"
    ]
    assert 11 not in change.patch.commentable("RIGHT")  # the premise: outside every hunk

    [comment] = harness.bot_review_comments()
    assert (comment["path"], comment["subject_type"], comment["line"]) == (
        "policies/db.yaml",
        "file",
        None,
    )
    assert comment["commit_id"] == HEAD
    body = unescape(comment["body"])
    assert "`shop/NetworkPolicy/db-ingress` ingress[0]" in body
    assert "`shop/Deployment/web` | `shop/Deployment/db` | `TCP 5432`" in body
    posted = [r for r in fake.requests if r["operation"] == "pulls/create-review-comment"]
    assert [(r["status"], r["json"]["subject_type"]) for r in posted] == [(201, "file")]
    assert not any(r["operation"] == "pulls/create-review" for r in fake.requests)

    # A re-run reviews again, finds its marker on the file comment, and does not repeat it.
    await review(harness, "check_suite", "rerequested")
    listings = [r for r in fake.requests if r["operation"] == "pulls/list-review-comments"]
    assert len(listings) == 2
    assert len(harness.bot_review_comments()) == 1
    assert sum(r["operation"] == "pulls/create-review-comment" for r in fake.requests) == 1
    assert fake.validation_errors == []


async def test_authorized_approval_turns_the_check_green(harness: Harness) -> None:
    fake = harness.fake
    setup_pull(fake, WIDENED)
    await review(harness)
    downloads = codeload_downloads(fake)

    fake.add_review(REPO, NUMBER, user="alice", state="APPROVED", commit_id=HEAD)
    await review(harness, "pull_request_review", "submitted", overrides=APPROVED)

    check = harness.check(HEAD)
    assert check["conclusion"] == "success"
    assert len(fake.check_runs_for(REPO, HEAD)) == 1  # the same run, updated
    assert "alice" in harness.sticky()["body"]
    assert "approved by @alice" in check["output"]["title"]
    # Re-evaluated from the cached analysis: no tree downloaded again, no second review.
    assert codeload_downloads(fake) == downloads
    assert len(harness.bot_reviews()) == 1

    # Dismissing the approval revokes it.
    [approval] = [r for r in fake.reviews if r["user"] == "alice"]
    fake.dismiss_review(REPO, NUMBER, approval["id"])
    await review(harness, "pull_request_review", "dismissed")
    assert harness.check(HEAD)["conclusion"] == "failure"


async def test_new_push_after_approval_fails_again(harness: Harness) -> None:
    fake = harness.fake
    setup_pull(fake, WIDENED)
    await review(harness)
    fake.add_review(REPO, NUMBER, user="alice", state="APPROVED", commit_id=HEAD)
    await review(harness, "pull_request_review", "submitted", overrides=APPROVED)
    assert harness.check(HEAD)["conclusion"] == "success"

    push(fake, HEAD2, base_tree(**{"policies/db.yaml": db_policy("web", (5432, 5433))}), HEAD)
    await review(harness, "pull_request", "synchronize", head_sha=HEAD2)

    assert harness.check(HEAD2)["conclusion"] == "failure"
    assert "approved an older commit" in harness.sticky()["body"]
    assert HEAD2[:7] in harness.sticky()["body"]
    # The same rule is responsible: its line comment is not posted a second time.
    assert len(harness.bot_review_comments()) == 1


async def test_the_sticky_comment_past_the_first_page_is_edited_not_posted_again(
    harness: Harness,
) -> None:
    """A busy pull request: 150 comments before the bot's, so a re-review finds it on the
    second page of 100 (GitHub lists them oldest first)."""
    fake = harness.fake
    setup_pull(fake, WIDENED)
    for i in range(150):
        fake.add_issue_comment(REPO, NUMBER, user="carol", body=f"comment {i}")
    await review(harness)
    sticky = harness.sticky()
    push(fake, HEAD2, base_tree(**{"policies/db.yaml": db_policy("web", (5432, 5433))}), HEAD)
    await review(harness, "pull_request", "synchronize", head_sha=HEAD2)
    assert harness.sticky()["id"] == sticky["id"] and HEAD2[:7] in harness.sticky()["body"]
    pages = [r["query"] for r in fake.requests if r["operation"] == "issues/list-comments"]
    assert {"per_page": "100", "page": "2"} in pages


@pytest.mark.parametrize("approver", [AUTHOR, "mallory"])
async def test_approval_by_author_or_without_write_access_does_not_count(
    harness: Harness, approver: str
) -> None:
    fake = harness.fake
    setup_pull(fake, WIDENED)
    await review(harness)
    fake.add_review(REPO, NUMBER, user=approver, state="APPROVED", commit_id=HEAD)
    await review(harness, "pull_request_review", "submitted", overrides=APPROVED)

    assert harness.check(HEAD)["conclusion"] == "failure"
    why = "author" if approver == AUTHOR else "not an authorized approver"
    body = harness.sticky()["body"]
    assert approver in body and why in body


SETTINGS = b"""\
approvers:
  users: [alice]
  teams: [octo-org/netsec]
required_approvals: 1
"""


@pytest.mark.parametrize(
    ("approver", "conclusion"), [("carol", "success"), ("alice", "success"), ("bob", "failure")]
)
async def test_configured_approvers_only(harness: Harness, approver: str, conclusion: str) -> None:
    fake = harness.fake
    fake.add_team("octo-org", "netsec", ["carol"])
    fake.add_team("octo-org", "pending-only", {"bob": "member"})
    setup_pull(
        fake,
        {**WIDENED, ".github/reachdiff.yml": SETTINGS},
        base_files=base_tree(**{".github/reachdiff.yml": SETTINGS}),
    )
    await review(harness)
    fake.add_review(REPO, NUMBER, user=approver, state="APPROVED", commit_id=HEAD)
    await review(harness, "pull_request_review", "submitted", overrides=APPROVED)
    # bob maintains the repository but is not a configured approver.
    assert harness.check(HEAD)["conclusion"] == conclusion


async def test_settings_come_from_the_base_branch(harness: Harness) -> None:
    fake = harness.fake
    sneaky = b"approvers:\n  users: [mallory]\n"
    setup_pull(fake, {**WIDENED, ".github/reachdiff.yml": sneaky})
    await review(harness)
    fake.add_review(REPO, NUMBER, user="mallory", state="APPROVED", commit_id=HEAD)
    await review(harness, "pull_request_review", "submitted", overrides=APPROVED)
    assert harness.check(HEAD)["conclusion"] == "failure"


async def test_narrowing_only_pull_request_passes(harness: Harness) -> None:
    fake = harness.fake
    setup_pull(
        fake,
        base_tree(**{"policies/db.yaml": db_policy("web", (5432,))}),
        base_files=base_tree(**{"policies/db.yaml": db_policy("web", (5432, 5433))}),
    )
    await review(harness)
    check = harness.check(HEAD)
    assert check["conclusion"] == "success"
    assert check["output"]["title"].startswith("Narrowed: 1 path closed")
    assert "TCP 5433" in harness.sticky()["body"]
    assert harness.bot_reviews() == []


async def test_test_merge_commit_is_compared_when_github_has_one(harness: Harness) -> None:
    fake = harness.fake
    setup_pull(fake, WIDENED, mergeable=True)
    await review(harness)
    assert harness.check(HEAD)["conclusion"] == "failure"
    assert f"test merge commit {MERGE[:7]}" in harness.sticky()["body"]
    downloaded = {
        r["path"].rsplit("/", 1)[-1] for r in fake.requests if r["operation"] == "codeload"
    }
    assert downloaded == {BASE, MERGE}


# ---- failures are never silent ---------------------------------------------------------


async def test_invalid_yaml_fails_with_an_annotation_on_the_line(harness: Harness) -> None:
    broken = db_policy("web").replace(b"  name: db-ingress\n", b"  name: db-ingress: x\n")
    setup_pull(harness.fake, base_tree(**{"policies/db.yaml": broken}))
    await review(harness)

    check = harness.check(HEAD)
    assert check["conclusion"] == "failure"
    [annotation] = check["output"]["annotations"]
    assert (annotation["path"], annotation["start_line"]) == ("policies/db.yaml", 4)
    assert annotation["annotation_level"] == "failure"
    assert "policies/db.yaml" in check["output"]["summary"]
    assert "policies/db.yaml" in harness.sticky()["body"]


async def test_invalid_head_names_the_head_in_the_check(harness: Harness) -> None:
    broken = db_policy("web").replace(b"  name: db-ingress\n", b"  name: db-ingress: x\n")
    setup_pull(harness.fake, base_tree(**{"policies/db.yaml": broken}))
    await review(harness)
    summary = unescape(harness.check(HEAD)["output"]["summary"])
    assert "- head: [`policies/db.yaml:4`]" in summary


async def test_a_pull_request_fixing_a_broken_base_is_reviewed(harness: Harness) -> None:
    broken = db_policy("api").replace(b"  name: db-ingress\n", b"  name: db-ingress: x\n")
    setup_pull(
        harness.fake,
        base_tree(**{"policies/db.yaml": db_policy("api")}),
        base_files=base_tree(**{"policies/db.yaml": broken}),
    )
    await review(harness)
    check = harness.check(HEAD)
    # Not blocked forever, never passed silently: what the head allows needs approval.
    assert check["conclusion"] == "failure"
    assert check["output"]["title"].startswith("Widened:")
    assert check["output"]["title"].endswith("(the base cannot be read: head reviewed on its own)")
    summary = unescape(check["output"]["summary"])
    assert "The base cannot be read" in summary and "base: policies/db.yaml:4" in summary
    body = unescape(harness.sticky()["body"])
    assert "The base cannot be read" in body and "shop/Deployment/web" in body
    harness.fake.add_review(REPO, NUMBER, user="alice", state="APPROVED", commit_id=HEAD)
    await review(harness, "pull_request_review", "submitted", overrides=APPROVED)
    assert harness.check(HEAD)["conclusion"] == "success"


async def test_malformed_policy_fails_with_an_annotation_on_the_line(harness: Harness) -> None:
    setup_pull(harness.fake, base_tree(**{"policies/db.yaml": db_policy("web", (70000,))}))
    await review(harness)
    check = harness.check(HEAD)
    assert check["conclusion"] == "failure"
    [annotation] = check["output"]["annotations"]
    assert (annotation["path"], annotation["start_line"]) == ("policies/db.yaml", 16)
    assert "70000" in annotation["message"]


async def test_malformed_settings_fail_the_check_naming_the_key_and_line(
    harness: Harness,
) -> None:
    bad = b"diagram: true\nrequired_approvals: many\n"
    setup_pull(
        harness.fake,
        {**WIDENED, ".github/reachdiff.yml": bad},
        base_files=base_tree(**{".github/reachdiff.yml": bad}),
    )
    await review(harness)
    check = harness.check(HEAD)
    assert check["conclusion"] == "failure"
    where = "base: [`.github/reachdiff.yml:2`]("
    assert where in check["output"]["summary"] and where in harness.sticky()["body"]
    assert "required_approvals" in unescape(check["output"]["summary"])
    assert "required_approvals" in unescape(harness.sticky()["body"])
    # the head has the same file: the annotation points at the offending key
    [annotation] = check["output"]["annotations"]
    assert (annotation["path"], annotation["start_line"]) == (".github/reachdiff.yml", 2)
    assert "required_approvals: must be a whole number" in annotation["message"]


async def test_malformed_settings_the_head_changes_are_not_annotated(harness: Harness) -> None:
    """An annotation points into the head commit, whose settings file here has other
    lines: the summary alone names the base branch's line."""
    bad = b"diagram: true\nentry_points:\n  - namespace: edge\n  - {namespaces: x}\n"
    setup_pull(
        harness.fake,
        {**WIDENED, ".github/reachdiff.yml": b"diagram: true\n"},
        base_files=base_tree(**{".github/reachdiff.yml": bad}),
    )
    await review(harness)
    check = harness.check(HEAD)
    assert check["conclusion"] == "failure"
    assert "base: [`.github/reachdiff.yml:4`](" in check["output"]["summary"]
    assert not check["output"].get("annotations")


async def test_api_error_fails_the_check_and_the_server_keeps_serving(harness: Harness) -> None:
    fake = harness.fake
    setup_pull(fake, WIDENED)
    fake.fail_next("GET", "/repos/*/compare/*", 404)
    await review(harness)
    check = harness.check(HEAD)
    assert check["conclusion"] == "failure"
    assert "internal error" in check["output"]["summary"]

    # A re-run from the checks tab reviews again, and this time it works.
    await review(harness, "check_suite", "rerequested")
    assert harness.check(HEAD)["conclusion"] == "failure"
    assert harness.check(HEAD)["output"]["title"].startswith("Widened")
    assert (await harness.client.get("/healthz")).status == 200


async def test_analysis_timeout_fails_the_check(make_harness: MakeHarness) -> None:
    harness = await make_harness(analysis_timeout=0.001)
    setup_pull(harness.fake, big_tree(allow=True), base_files=big_tree(allow=False))
    await review(harness)
    check = harness.check(HEAD)
    assert check["conclusion"] == "failure"
    assert "timed out" in check["output"]["title"].lower()


# ---- deliveries --------------------------------------------------------------------------


async def test_bad_signature_is_refused_without_any_api_call(harness: Harness) -> None:
    setup_pull(harness.fake, WIDENED)
    response = await harness.deliver("pull_request", "opened", secret="not-the-secret")
    assert response.status == 401
    await harness.settle()
    assert harness.fake.requests == []
    assert harness.fake.check_runs == []


async def test_duplicate_delivery_gives_one_review(harness: Harness) -> None:
    setup_pull(harness.fake, WIDENED)
    first = await harness.deliver("pull_request", "opened", delivery_id="d-1")
    second = await harness.deliver("pull_request", "opened", delivery_id="d-1")
    assert (first.status, second.status) == (202, 200)
    await harness.settle()
    assert len(harness.bot_reviews()) == 1
    assert len(harness.fake.check_runs_for(REPO, HEAD)) == 1


async def test_two_quick_pushes_end_in_the_latest_heads_state(harness: Harness) -> None:
    fake = harness.fake
    setup_pull(fake, WIDENED)
    await review(harness)
    push(fake, HEAD2, base_tree(**{"policies/db.yaml": db_policy("web", (5432, 5433))}), HEAD)
    assert (await harness.deliver("pull_request", "synchronize", head_sha=HEAD2)).status == 202
    push(fake, HEAD3, base_tree(), HEAD2)  # back to the base: nothing changes
    assert (await harness.deliver("pull_request", "synchronize", head_sha=HEAD3)).status == 202
    await harness.settle()

    assert harness.check(HEAD3)["conclusion"] == "success"
    body = harness.sticky()["body"]
    assert HEAD3[:7] in body and "TCP 5433" not in body
    for run in fake.check_runs_for(REPO, HEAD2):
        assert run["conclusion"] in ("cancelled", "failure")


async def test_check_run_rerequested_reviews_again(harness: Harness) -> None:
    fake = harness.fake
    setup_pull(fake, WIDENED)
    pull = {
        "number": NUMBER,
        "head": {"ref": "change", "sha": HEAD},
        "base": {"ref": "main", "sha": BASE},
        "id": 1,
        "url": "x",
    }
    overrides = {
        "check_run.name": "reachdiff",
        "check_run.app.id": fake.app_id,
        "check_run.pull_requests": [pull],
    }
    await review(harness, "check_run", "rerequested", overrides=overrides)
    assert harness.check(HEAD)["conclusion"] == "failure"

    # Another app's check run is not ours to re-run.
    before = len(fake.check_runs)
    overrides["check_run.app.id"] = fake.app_id + 1
    await review(harness, "check_run", "rerequested", overrides=overrides)
    assert len(fake.check_runs) == before


async def test_edited_pull_request_is_reviewed_only_when_the_base_changed(
    harness: Harness,
) -> None:
    fake = harness.fake
    setup_pull(fake, WIDENED)
    title_only = {"action": "edited", "changes": {"title": {"from": "old"}}}
    await review(harness, overrides=title_only)
    assert fake.check_runs == []
    await review(harness, overrides={**title_only, "changes": {"base": {"ref": {"from": "x"}}}})
    assert harness.check(HEAD)["conclusion"] == "failure"


# ---- size and GitHub's bad days ------------------------------------------------------------


def big_tree(*, allow: bool, workloads: int = 45) -> dict[str, bytes]:
    docs = []
    for i in range(workloads):
        docs.append(
            f"apiVersion: v1\nkind: Pod\nmetadata:\n  name: w{i:03d}\n  namespace: big\n"
            f"  labels: {{app: w{i:03d}}}\nspec:\n  containers:\n  - name: c\n    image: x\n"
        )
    files = {"apps/big.yaml": "---\n".join(docs).encode()}
    if not allow:
        files["policies/deny.yaml"] = (
            b"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n"
            b"  name: deny-all\n  namespace: big\nspec:\n  podSelector: {}\n"
            b"  policyTypes: [Ingress, Egress]\n"
        )
    return files


async def test_very_large_diff_stays_under_the_comment_limit(harness: Harness) -> None:
    setup_pull(harness.fake, big_tree(allow=True), base_files=big_tree(allow=False))
    await review(harness)
    check = harness.check(HEAD)
    assert check["conclusion"] == "failure"
    body = harness.sticky()["body"]
    assert len(body.encode("utf-16-le")) // 2 <= COMMENT_LIMIT
    assert "more" in body  # says what was left out
    assert "check run" in body.lower()
    assert "big/Pod/w000" in body


async def test_5xx_and_secondary_rate_limits_are_retried(harness: Harness) -> None:
    fake = harness.fake
    setup_pull(fake, WIDENED)
    fake.fail_next("POST", "/repos/*/check-runs", 502, times=2)
    fake.fail_next("GET", "/repos/*/tarball/*", 503)
    fake.fail_next_secondary_rate_limit("GET", "/repos/*/pulls/7/files", retry_after=1)
    fake.fail_next_secondary_rate_limit("POST", "/repos/*/pulls/7/reviews", retry_after=1)
    started = time.monotonic()
    await review(harness)

    assert harness.check(HEAD)["conclusion"] == "failure"
    assert len(fake.check_runs_for(REPO, HEAD)) == 1
    assert len(harness.bot_reviews()) == 1
    harness.sticky()
    creates = [r for r in fake.requests if r["operation"] == "checks/create"]
    assert [r["status"] for r in creates] == [502, 502, 201]
    files = [r for r in fake.requests if r["operation"] == "pulls/list-files"]
    assert [r["status"] for r in files] == [403, 200]
    assert files[1]["time"] - files[0]["time"] >= 1.0  # retry-after honoured
    assert time.monotonic() - started < 30


async def test_refused_line_comments_do_not_stop_the_review(harness: Harness) -> None:
    fake = harness.fake
    setup_pull(fake, WIDENED)
    fake.fail_next("POST", "/repos/*/pulls/7/reviews", 422, body={"message": "Unprocessable"})
    await review(harness)
    check = harness.check(HEAD)
    assert check["conclusion"] == "failure"
    assert check["output"]["title"].startswith("Widened")
    assert "shop/Deployment/web" in harness.sticky()["body"]
    assert harness.bot_reviews() == []


async def test_waits_for_github_to_compute_the_test_merge_commit(
    make_harness: MakeHarness,
) -> None:
    harness = await make_harness(mergeable_attempts=20, mergeable_delay=0.05)
    fake = harness.fake
    setup_pull(fake, WIDENED)
    fake.add_commit(REPO, MERGE, WIDENED, parents=[BASE, HEAD])
    fake.update_pull(REPO, NUMBER, mergeable=None)

    async def compute_once_the_review_waits() -> None:
        while not fake.check_runs:  # the review has read the pull (mergeable: null)
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
        fake.update_pull(REPO, NUMBER, mergeable=True, merge_commit_sha=MERGE)

    github_side = asyncio.create_task(compute_once_the_review_waits())
    await review(harness)
    await github_side
    assert f"test merge commit {MERGE[:7]}" in harness.sticky()["body"]
    polls = [r for r in fake.requests if r["operation"] == "pulls/get"]
    assert len(polls) >= 3  # asked again while mergeable was null


async def test_lines_from_a_merge_commit_that_shifted_them_are_not_posted_on_the_head(
    harness: Harness,
) -> None:
    """The base branch added lines above the rule, so the test merge commit's line numbers
    are not the head's: the rule is commented on as a whole file, never on a wrong line."""
    fake = harness.fake
    setup_pull(fake, WIDENED, mergeable=False)
    shifted = b"# owned by the data team\n# see RUNBOOK.md\n" + WIDENED["policies/db.yaml"]
    fake.add_commit(REPO, MERGE, {**WIDENED, "policies/db.yaml": shifted}, parents=[BASE, HEAD])
    fake.set_pull_head(REPO, NUMBER, HEAD, merge_commit_sha=MERGE, mergeable=True)
    await review(harness)

    assert harness.check(HEAD)["conclusion"] == "failure"
    comments = harness.bot_review_comments()
    assert comments and all(c["subject_type"] == "file" and c["line"] is None for c in comments)
    assert {c["path"] for c in comments} == {"policies/db.yaml"}
    # The sticky comment links the rule where its line is: in the analysed merge commit.
    assert f"/blob/{MERGE}/policies/db.yaml#L" in harness.sticky()["body"]
