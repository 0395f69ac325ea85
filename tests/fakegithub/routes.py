"""Handlers of the GitHub operations the fake serves, keyed by OpenAPI operationId.

Each handler receives a request that already passed routing, authentication and schema
validation, and enforces GitHub's documented semantics on top: limits, references that
must resolve, review comments that must land in the diff. Errors carry GitHub's bodies.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from .diffs import (
    FileChange,
    at_position,
    blob_sha,
    line_count,
    tree_changes,
    unified_diff,
)
from .state import Installation, Pull, Repo, Token, now_iso
from .tarballs import top_directory

if TYPE_CHECKING:
    from .server import FakeGitHub

DOCS = "https://docs.github.com/rest"
COMMENT_BODY_LIMIT = 65536  # characters, for issue comments, reviews and review comments
ANNOTATION_TITLE_LIMIT = 255  # characters
ANNOTATION_TEXT_LIMIT = 64 * 1024  # bytes ("64 KB"), for message and raw_details
PULL_FILES_LIMIT = 3000
# GitHub's own wording when a review comment cannot be anchored in the diff.
LINE_NOT_IN_DIFF = "Pull request review thread line must be part of the diff"
START_LINE_NOT_IN_DIFF = "Pull request review thread start line must be part of the diff"
START_LINE_OTHER_HUNK = (
    "Pull request review thread start line must be part of the same hunk as the line."
)
COMPARE_COMMITS_LIMIT = 250
COMPARE_FILES_LIMIT = 300
# get-commit: "more than 300 files" get pagination link headers, "up to a limit of 3000"
COMMIT_FILES_PAGE = 300
COMMIT_FILES_LIMIT = 3000
# The per_page parameter as the API description has it: default 30, "max 100".
PER_PAGE_DEFAULT = 30
PER_PAGE_MAX = 100


@dataclass
class Reply:
    status: int
    body: Any = None  # JSON value, or bytes/str with content_type
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None


class ApiError(Exception):
    def __init__(self, status: int, message: str, errors: list[Any] | None = None) -> None:
        super().__init__(f"{status} {message}")
        self.status = status
        self.message = message
        self.errors = errors

    def reply(self) -> Reply:
        body: dict[str, Any] = {
            "message": self.message,
            "documentation_url": DOCS,
            "status": str(self.status),
        }
        if self.errors is not None:
            body["errors"] = self.errors
        return Reply(self.status, body)


def unprocessable(*errors: str) -> ApiError:
    return ApiError(422, "Unprocessable Entity", list(errors))


def validation_failed(
    resource: str, field_name: str, code: str, message: str | None = None
) -> ApiError:
    error: dict[str, Any] = {"resource": resource, "code": code, "field": field_name}
    if message is not None:
        error["message"] = message
    return ApiError(422, "Validation Failed", [error])


class Unplaceable(Exception):
    """A review comment that cannot be anchored. The two endpoints word it differently:
    reviews answer `message` as a plain string; `POST /pulls/{n}/comments` answers a
    `pull_request_review_thread.<field>` validation error (GitHub's Rails wording)."""

    def __init__(self, message: str, field_name: str, code: str = "custom") -> None:
        super().__init__(message)
        self.message = message
        self.field_name = field_name
        self.code = code


@dataclass
class Call:
    method: str
    path: str
    operation: str
    params: dict[str, str]
    query: dict[str, str]
    json: Any
    headers: Mapping[str, str]
    installation: Installation | None
    token: Token | None = None

    def wants(self, media: str) -> bool:
        accept = self.headers.get("accept", "")
        return f"vnd.github.{media}" in accept or f"vnd.github.v3.{media}" in accept


Handler = Callable[["FakeGitHub", Call], Reply]
ROUTES: dict[str, Handler] = {}


def route(operation_id: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        ROUTES[operation_id] = fn
        return fn

    return register


# -- shared lookups ------------------------------------------------------------------------------


def _repo(fake: FakeGitHub, call: Call) -> Repo:
    repo = fake.find_repo(f"{call.params['owner']}/{call.params['repo']}")
    if repo is None:
        raise ApiError(404, "Not Found")
    # A repository outside the installation (or the token's narrower scope) is invisible.
    for scope in (
        call.installation.repositories if call.installation else None,
        call.token.repositories if call.token else None,
    ):
        if scope is not None and repo.full_name.lower() not in scope:
            raise ApiError(404, "Not Found")
    return repo


def _pull(repo: Repo, number: str) -> Pull:
    pull = repo.pulls.get(int(number))
    if pull is None:
        raise ApiError(404, "Not Found")
    return pull


def _page(call: Call) -> int:
    try:
        return max(1, int(call.query.get("page", "1")))
    except ValueError:
        return 1


def _paginate(
    fake: FakeGitHub, call: Call, items: list[Any], unasked: int = PER_PAGE_DEFAULT
) -> tuple[list[Any], dict[str, str]]:
    """The page of ``items`` that ``per_page`` (at most 100) and ``page`` ask for, and the
    Link header to the others; ``unasked``: the page size without ``per_page``."""
    try:
        per_page = min(PER_PAGE_MAX, max(1, int(call.query["per_page"])))
    except KeyError:
        per_page = unasked
    except ValueError:
        per_page = PER_PAGE_DEFAULT
    page = _page(call)
    last = max(1, math.ceil(len(items) / per_page))

    def url(number: int) -> str:
        # per_page as asked: without it, the next page is sized as this one
        asked = {"per_page": str(per_page)} if "per_page" in call.query else {}
        params = {**call.query, **asked, "page": str(number)}
        return f"{fake.url}{quote(call.path)}?{urlencode(params)}"

    links = []
    if page < last:
        links += [f'<{url(page + 1)}>; rel="next"', f'<{url(last)}>; rel="last"']
    if page > 1:
        links += [f'<{url(1)}>; rel="first"', f'<{url(min(page - 1, last))}>; rel="prev"']
    headers = {"Link": ", ".join(links)} if links else {}
    start = (page - 1) * per_page
    return items[start : start + per_page], headers


def _check_comment_body(resource: str, body: Any) -> None:
    if not isinstance(body, str) or not body.strip():
        raise validation_failed(resource, "body", "missing_field")
    if len(body) > COMMENT_BODY_LIMIT:
        raise validation_failed(
            resource,
            "body",
            "custom",
            f"Body is too long (maximum is {COMMENT_BODY_LIMIT} characters)",
        )


# -- apps ----------------------------------------------------------------------------------------


@route("apps/create-installation-access-token")
def create_installation_token(fake: FakeGitHub, call: Call) -> Reply:
    installation = fake.installations.get(int(call.params["installation_id"]))
    if installation is None:
        raise ApiError(404, "Not Found")
    body = call.json or {}
    permissions = body.get("permissions") or dict(fake.app_permissions)
    for name, level in permissions.items():
        granted = fake.app_permissions.get(name)
        if (
            granted is None
            or (level == "write" and granted != "write")
            or (level == "admin" and granted != "admin")
        ):
            raise unprocessable("The permissions requested are not granted to this installation.")
    scope: set[str] | None = None
    if "repositories" in body or "repository_ids" in body:
        scope = set()
        by_id = {r.id: r for r in fake._repos.values()}
        wanted = [
            fake.find_repo(f"{installation.account}/{n}") for n in body.get("repositories", [])
        ]
        wanted += [by_id.get(i) for i in body.get("repository_ids", [])]
        for repo in wanted:
            if repo is None or (
                installation.repositories is not None
                and repo.full_name.lower() not in installation.repositories
            ):
                raise unprocessable(
                    "There is at least one repository that does not exist or is not accessible "
                    "to the parent installation."
                )
            scope.add(repo.full_name.lower())
    token = fake.issue_token(installation.id)
    token.repositories = frozenset(scope) if scope is not None else None
    selection = "selected" if scope is not None or installation.repositories is not None else "all"
    return Reply(
        201,
        {
            "token": token.token,
            "expires_at": token.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "permissions": permissions,
            "repository_selection": selection,
        },
    )


# -- pulls ---------------------------------------------------------------------------------------


@route("pulls/get")
def get_pull(fake: FakeGitHub, call: Call) -> Reply:
    repo = _repo(fake, call)
    pull = _pull(repo, call.params["pull_number"])
    if call.wants("diff"):
        return Reply(
            200,
            unified_diff(fake.pull_changes(repo, pull)),
            content_type="text/plain; charset=utf-8",
        )
    return Reply(200, fake.shapes.pull(repo, pull))


@route("pulls/list")
def list_pulls(fake: FakeGitHub, call: Call) -> Reply:
    repo = _repo(fake, call)
    state = call.query.get("state", "open")
    pulls = [p for p in repo.pulls.values() if state == "all" or p.state == state]
    if "head" in call.query:
        owner, _, ref = call.query["head"].rpartition(":")
        pulls = [
            p
            for p in pulls
            if p.head_ref == ref
            and (not owner or p.head_repo.split("/")[0].lower() == owner.lower())
        ]
    if "base" in call.query:
        pulls = [p for p in pulls if p.base_ref == call.query["base"]]
    sort = call.query.get("sort", "created")
    default_direction = "desc" if sort == "created" else "asc"
    descending = call.query.get("direction", default_direction) == "desc"
    key = (
        (lambda p: (p.updated_at, p.number))
        if sort == "updated"
        else (lambda p: (p.created_at, p.number))
    )
    pulls.sort(key=key, reverse=descending)
    page, headers = _paginate(fake, call, pulls)
    return Reply(200, [fake.shapes.pull(repo, p, simple=True) for p in page], headers)


@route("pulls/list-files")
def list_pull_files(fake: FakeGitHub, call: Call) -> Reply:
    repo = _repo(fake, call)
    pull = _pull(repo, call.params["pull_number"])
    changes = fake.pull_changes(repo, pull)[:PULL_FILES_LIMIT]
    page, headers = _paginate(fake, call, changes)
    return Reply(200, [fake.shapes.diff_entry(repo, pull.head_sha, c) for c in page], headers)


# -- contents, archives, commits -----------------------------------------------------------------


@route("repos/get-content")
def get_content(fake: FakeGitHub, call: Call) -> Reply:
    repo = _repo(fake, call)
    ref = call.query.get("ref") or repo.default_branch
    sha = repo.resolve(ref)
    if sha is None:
        raise ApiError(404, f"No commit found for the ref {ref}")
    commit = repo.commits[sha]
    path = call.params["path"].strip("/")
    if path in commit.files:
        data = commit.files[path]
        if call.wants("raw"):
            return Reply(200, data, content_type="application/vnd.github.raw; charset=utf-8")
        return Reply(200, fake.shapes.content_file(repo, path, data, ref))
    if any(p.startswith(path + "/") for p in commit.files):
        return Reply(200, fake.shapes.content_directory(repo, commit, path, ref))
    raise ApiError(404, "Not Found")


@route("repos/download-tarball-archive")
def download_tarball(fake: FakeGitHub, call: Call) -> Reply:
    repo = _repo(fake, call)
    sha = repo.resolve(call.params["ref"])
    if sha is None:
        raise ApiError(404, "Not Found")
    # Like codeload's signed URLs: the download itself needs no Authorization header.
    token = fake.new_codeload_token()
    location = f"{fake.url}/_codeload/{repo.owner}/{repo.name}/legacy.tar.gz/{sha}?token={token}"
    return Reply(302, None, {"Location": location})


def codeload(fake: FakeGitHub, path: str, query: Mapping[str, str]) -> Reply:
    parts = path.split("/")
    # /_codeload/{owner}/{repo}/legacy.tar.gz/{sha}
    if len(parts) != 6 or parts[4] != "legacy.tar.gz":
        raise ApiError(404, "Not Found")
    if query.get("token") not in fake.codeload_tokens:
        raise ApiError(404, "Not Found")
    repo = fake.find_repo(f"{parts[2]}/{parts[3]}")
    if repo is None or parts[5] not in repo.commits:
        raise ApiError(404, "Not Found")
    commit = repo.commits[parts[5]]
    data = fake.archive(repo.full_name, commit.sha)
    filename = top_directory(repo.owner, repo.name, commit.sha) + ".tar.gz"
    return Reply(
        200,
        data,
        {"Content-Disposition": f"attachment; filename={filename}", "ETag": f'"{commit.sha}"'},
        content_type="application/x-gzip",
    )


@route("repos/get-commit")
def get_commit(fake: FakeGitHub, call: Call) -> Reply:
    repo = _repo(fake, call)
    sha = repo.resolve(call.params["ref"])
    if sha is None:
        raise unprocessable(f"No commit found for SHA: {call.params['ref']}")
    commit = repo.commits[sha]
    if call.wants("sha"):  # the id alone, no diff computed
        return Reply(200, commit.sha, content_type="application/vnd.github.sha; charset=utf-8")
    parent = repo.commits[commit.parents[0]].files if commit.parents else {}
    changes = tree_changes(parent, commit.files)
    if call.wants("diff"):  # "pagination query parameters are not supported" for it
        return Reply(200, unified_diff(changes), content_type="text/plain; charset=utf-8")
    # Every page holds the commit; only its file list is paged (300 a page unless asked).
    listed, headers = _paginate(fake, call, changes[:COMMIT_FILES_LIMIT], COMMIT_FILES_PAGE)
    return Reply(200, fake.shapes.commit(repo, commit, changes, listed), headers)


@route("repos/list-pull-requests-associated-with-commit")
def list_pulls_for_commit(fake: FakeGitHub, call: Call) -> Reply:
    """GitHub: the merged pull request that brought a commit into the default branch; for a
    commit not on the default branch, the open and merged pull requests containing it (a
    pull request contains the commits reachable from its head but not from its base)."""
    repo = _repo(fake, call)
    sha = repo.resolve(call.params["commit_sha"])
    if sha is None:
        raise unprocessable(f"No commit found for SHA: {call.params['commit_sha']}")
    default_tip = repo.branches.get(repo.default_branch)
    on_default = default_tip is not None and sha in repo.ancestors(default_tip)
    pulls = [
        p
        for p in repo.pulls.values()
        if (p.merged or (not on_default and p.state == "open"))
        and (p.head_sha == sha or sha in repo.only_in(p.head_sha, p.base_sha))
    ]
    pulls.sort(key=lambda p: -p.number)
    page, headers = _paginate(fake, call, pulls)
    return Reply(200, [fake.shapes.pull(repo, p, simple=True) for p in page], headers)


@route("repos/compare-commits-with-basehead")
def compare(fake: FakeGitHub, call: Call) -> Reply:
    repo = _repo(fake, call)
    basehead = call.params["basehead"]
    three_dot = "..." in basehead
    base_ref, sep, head_ref = basehead.partition("..." if three_dot else "..")
    if not sep:
        raise ApiError(404, "Not Found")
    base_sha = repo.resolve(base_ref.rpartition(":")[2])
    head_sha = repo.resolve(head_ref.rpartition(":")[2])
    if base_sha is None or head_sha is None:
        raise ApiError(404, "Not Found")
    merge_base = repo.merge_base(base_sha, head_sha)
    if merge_base is None:
        raise ApiError(404, f"No common ancestor between {base_ref} and {head_ref}.")
    ahead = repo.only_in(head_sha, base_sha)
    behind = repo.only_in(base_sha, head_sha)
    origin = repo.commits[merge_base if three_dot else base_sha].files
    changes = tree_changes(origin, repo.commits[head_sha].files)
    if call.wants("diff"):
        return Reply(200, unified_diff(changes), content_type="text/plain; charset=utf-8")
    if not ahead and not behind:
        status = "identical"
    elif not behind:
        status = "ahead"
    elif not ahead:
        status = "behind"
    else:
        status = "diverged"
    shapes = fake.shapes
    html = f"https://github.com/{repo.full_name}/compare/{basehead}"
    headers: dict[str, str] = {}
    paged = "per_page" in call.query or "page" in call.query
    if paged:  # the commits a page; the files on the first page only
        commits, headers = _paginate(fake, call, ahead)
        first = _page(call) == 1
    else:  # "limited to 250 commits, and the last ... is the most recent"
        commits, first = ahead[-COMPARE_COMMITS_LIMIT:], True
    files = [shapes.diff_entry(repo, head_sha, c) for c in changes[:COMPARE_FILES_LIMIT]]
    return Reply(
        200,
        {
            "url": f"{fake.url}/repos/{repo.full_name}/compare/{basehead}",
            "html_url": html,
            "permalink_url": (
                f"https://github.com/{repo.full_name}/compare/{repo.owner}:{base_sha}...{repo.owner}:{head_sha}"
            ),
            "diff_url": html + ".diff",
            "patch_url": html + ".patch",
            "base_commit": shapes.commit(repo, repo.commits[base_sha]),
            "merge_base_commit": shapes.commit(repo, repo.commits[merge_base]),
            "status": status,
            "ahead_by": len(ahead),
            "behind_by": len(behind),
            "total_commits": len(ahead),
            "commits": [shapes.commit(repo, repo.commits[s]) for s in commits],
            **({"files": files} if first else {}),
        },
        headers,
    )


# -- check runs ----------------------------------------------------------------------------------


def _check_run_semantics(body: Mapping[str, Any], creating: bool) -> None:
    conclusion = body.get("conclusion")
    if conclusion == "stale":
        raise unprocessable("Conclusion 'stale' can only be set by GitHub.")
    if conclusion is None and (body.get("status") == "completed" or body.get("completed_at")):
        raise validation_failed(
            "CheckRun",
            "conclusion",
            "missing_field",
            "conclusion is required to complete a check run",
        )
    output = body.get("output")
    if output is None:
        return
    if not creating and "title" not in output:
        # The update schema lists only `summary` as required, but documents `title` as
        # "**Required**."; GitHub rejects an output without it.
        raise validation_failed("CheckRun", "output.title", "missing_field")
    for index, annotation in enumerate(output.get("annotations", [])):
        title = annotation.get("title")
        if title is not None and len(title) > ANNOTATION_TITLE_LIMIT:
            raise unprocessable(
                f"annotations[{index}].title is longer than {ANNOTATION_TITLE_LIMIT} characters"
            )
        for key in ("message", "raw_details"):
            text = annotation.get(key)
            if text is not None and len(text.encode()) > ANNOTATION_TEXT_LIMIT:
                raise unprocessable(f"annotations[{index}].{key} is larger than 64 KB")
        columns = "start_column" in annotation or "end_column" in annotation
        if columns and annotation.get("start_line") != annotation.get("end_line"):
            raise unprocessable(
                f"annotations[{index}]: start_column and end_column are only allowed when "
                "start_line and end_line are equal"
            )


def _apply_output(run: dict[str, Any], output: Mapping[str, Any]) -> None:
    for key in ("title", "summary", "text"):
        if key in output:
            run["output"][key] = output[key]
    # Annotations accumulate across updates, as GitHub documents.
    run["output"]["annotations"].extend(dict(a) for a in output.get("annotations", []))
    if "images" in output:
        run["output"]["images"] = list(output["images"])


def _find_run(fake: FakeGitHub, repo: Repo, run_id: str) -> dict[str, Any]:
    for run in fake.check_runs:
        if run["id"] == int(run_id) and run["repo"] == repo.full_name:
            return run
    raise ApiError(404, "Not Found")


@route("checks/create")
def create_check_run(fake: FakeGitHub, call: Call) -> Reply:
    repo = _repo(fake, call)
    body = call.json
    if body["head_sha"] not in repo.commits:
        raise unprocessable(f"No commit found for SHA: {body['head_sha']}")
    _check_run_semantics(body, creating=True)
    now = now_iso()
    conclusion = body.get("conclusion")
    status = "completed" if conclusion else body.get("status", "queued")
    run: dict[str, Any] = {
        "id": fake.ids.next("check_run"),
        "repo": repo.full_name,
        "name": body["name"],
        "head_sha": body["head_sha"],
        "status": status,
        "conclusion": conclusion,
        "started_at": body.get("started_at") or now,
        "completed_at": body.get("completed_at") or (now if status == "completed" else None),
        "details_url": body.get("details_url"),
        "external_id": body.get("external_id"),
        "output": {"title": None, "summary": None, "text": None, "annotations": []},
        "actions": list(body.get("actions", [])),
        "check_suite_id": fake.check_suite_id(repo.full_name, body["head_sha"]),
        "history": [{"method": "POST", "json": body, "at": now}],
    }
    if "output" in body:
        _apply_output(run, body["output"])
    fake.check_runs.append(run)
    return Reply(201, fake.shapes.check_run(run))


@route("checks/update")
def update_check_run(fake: FakeGitHub, call: Call) -> Reply:
    repo = _repo(fake, call)
    run = _find_run(fake, repo, call.params["check_run_id"])
    body = call.json
    _check_run_semantics(body, creating=False)
    now = now_iso()
    for key in ("name", "details_url", "external_id", "started_at"):
        if key in body:
            run[key] = body[key]
    if "actions" in body:
        run["actions"] = list(body["actions"])
    if body.get("conclusion"):
        run["status"] = "completed"
        run["conclusion"] = body["conclusion"]
        run["completed_at"] = body.get("completed_at") or run["completed_at"] or now
    elif "status" in body:
        run["status"] = body["status"]
        run["conclusion"] = None
        run["completed_at"] = None
    if "output" in body:
        _apply_output(run, body["output"])
    run["history"].append({"method": "PATCH", "json": body, "at": now})
    return Reply(200, fake.shapes.check_run(run))


@route("checks/get")
def get_check_run(fake: FakeGitHub, call: Call) -> Reply:
    repo = _repo(fake, call)
    return Reply(200, fake.shapes.check_run(_find_run(fake, repo, call.params["check_run_id"])))


@route("checks/list-for-ref")
def list_check_runs_for_ref(fake: FakeGitHub, call: Call) -> Reply:
    repo = _repo(fake, call)
    sha = repo.resolve(call.params["ref"])
    if sha is None:
        raise unprocessable(f"No commit found for SHA: {call.params['ref']}")
    runs = [r for r in fake.check_runs if r["repo"] == repo.full_name and r["head_sha"] == sha]
    if "check_name" in call.query:
        runs = [r for r in runs if r["name"] == call.query["check_name"]]
    if "status" in call.query:
        runs = [r for r in runs if r["status"] == call.query["status"]]
    if "app_id" in call.query:
        runs = [
            r
            for r in runs
            if str((r.get("foreign_app") or {"id": fake.app_id})["id"]) == call.query["app_id"]
        ]
    runs.sort(key=lambda r: -r["id"])
    if call.query.get("filter", "latest") == "latest":
        seen: set[str] = set()
        latest = []
        for run in runs:
            if run["name"] not in seen:
                seen.add(run["name"])
                latest.append(run)
        runs = latest
    page, headers = _paginate(fake, call, runs)
    return Reply(
        200,
        {"total_count": len(runs), "check_runs": [fake.shapes.check_run(r) for r in page]},
        headers,
    )


# -- issue comments ------------------------------------------------------------------------------


@route("issues/list-comments")
def list_issue_comments(fake: FakeGitHub, call: Call) -> Reply:
    repo = _repo(fake, call)
    number = _pull(repo, call.params["issue_number"]).number
    comments = list(fake.issue_comments.get((repo.full_name, number), []))
    if "since" in call.query:
        comments = [c for c in comments if c["updated_at"] >= call.query["since"]]
    comments.sort(key=lambda c: c["id"])
    page, headers = _paginate(fake, call, comments)
    return Reply(200, [fake.shapes.issue_comment(c) for c in page], headers)


@route("issues/create-comment")
def create_issue_comment(fake: FakeGitHub, call: Call) -> Reply:
    repo = _repo(fake, call)
    number = _pull(repo, call.params["issue_number"]).number
    _check_comment_body("IssueComment", call.json.get("body"))
    now = now_iso()
    record = {
        "id": fake.ids.next("issue_comment"),
        "repo": repo.full_name,
        "issue_number": number,
        "body": call.json["body"],
        "user": fake.bot_login,
        "created_at": now,
        "updated_at": now,
        "history": [],
    }
    fake.issue_comments[(repo.full_name, number)].append(record)
    shaped = fake.shapes.issue_comment(record)
    return Reply(201, shaped, {"Location": shaped["url"]})


@route("issues/update-comment")
def update_issue_comment(fake: FakeGitHub, call: Call) -> Reply:
    repo = _repo(fake, call)
    comment_id = int(call.params["comment_id"])
    for (full_name, _), comments in fake.issue_comments.items():
        if full_name != repo.full_name:
            continue
        for record in comments:
            if record["id"] == comment_id:
                _check_comment_body("IssueComment", call.json.get("body"))
                record["history"].append(record["body"])
                record["body"] = call.json["body"]
                record["updated_at"] = now_iso()
                return Reply(200, fake.shapes.issue_comment(record))
    raise ApiError(404, "Not Found")


# -- reviews -------------------------------------------------------------------------------------


@route("pulls/list-reviews")
def list_reviews(fake: FakeGitHub, call: Call) -> Reply:
    repo = _repo(fake, call)
    number = _pull(repo, call.params["pull_number"]).number
    reviews = [
        r
        for r in fake.reviews
        if r["repo"] == repo.full_name
        and r["pull_number"] == number
        # A pending review is visible to its author only.
        and (r["state"] != "PENDING" or r["user"] == fake.bot_login)
    ]
    reviews.sort(key=lambda r: r["id"])
    page, headers = _paginate(fake, call, reviews)
    return Reply(200, [fake.shapes.review(r) for r in page], headers)


_EVENT_STATES = {
    "APPROVE": "APPROVED",
    "REQUEST_CHANGES": "CHANGES_REQUESTED",
    "COMMENT": "COMMENTED",
    None: "PENDING",
}


@route("pulls/create-review")
def create_review(fake: FakeGitHub, call: Call) -> Reply:
    repo = _repo(fake, call)
    pull = _pull(repo, call.params["pull_number"])
    body = call.json or {}
    commit_id = body.get("commit_id") or pull.head_sha
    if commit_id not in repo.commits:
        raise unprocessable("Commit could not be resolved")
    event = body.get("event")
    state = _EVENT_STATES[event]
    text = body.get("body")
    if event in ("REQUEST_CHANGES", "COMMENT") and not (text or "").strip():
        # Documented: "**Required** when using REQUEST_CHANGES or COMMENT".
        raise unprocessable(f"Review body is required for event {event}")
    if text is not None and len(text) > COMMENT_BODY_LIMIT:
        raise validation_failed(
            "PullRequestReview", "body", "custom", "Body is too long (maximum is 65536 characters)"
        )
    if state == "PENDING" and any(
        r["repo"] == repo.full_name
        and r["pull_number"] == pull.number
        and r["user"] == fake.bot_login
        and r["state"] == "PENDING"
        for r in fake.reviews
    ):
        raise unprocessable("User can only have one pending review per pull request")

    changes = {c.filename: c for c in fake.pull_changes(repo, pull, head_sha=commit_id)}
    try:
        placed = [
            _place_comment(fake, repo, commit_id, changes, c) for c in body.get("comments", [])
        ]
    except Unplaceable as error:
        raise unprocessable(error.message) from None

    record = fake._new_review(repo, pull.number, fake.bot_login, state, commit_id, text or "")
    record["event"] = event
    now = now_iso()
    for comment in placed:
        fake.review_comments.append(
            {
                "id": fake.ids.next("review_comment"),
                "review_id": record["id"],
                "repo": repo.full_name,
                "pull_number": pull.number,
                "commit_id": commit_id,
                "user": fake.bot_login,
                "created_at": now,
                **comment,
            }
        )
    return Reply(200, fake.shapes.review(record))


def _place_comment(
    fake: FakeGitHub,
    repo: Repo,
    commit_id: str,
    changes: Mapping[str, FileChange],
    comment: Mapping[str, Any],
) -> dict[str, Any]:
    """Where a review comment lands, or GitHub's 422 when it cannot be placed."""
    path = comment["path"]
    body = comment["body"]
    if len(body) > COMMENT_BODY_LIMIT:
        raise validation_failed(
            "PullRequestReviewComment",
            "body",
            "custom",
            "Body is too long (maximum is 65536 characters)",
        )
    change = changes.get(path)
    head_files = repo.commits[commit_id].files
    if fake.review_comment_scope == "diff" and change is None:
        raise Unplaceable("Path could not be resolved", "path", "invalid")
    if fake.review_comment_scope == "file" and path not in head_files and change is None:
        raise Unplaceable("Path could not be resolved", "path", "invalid")
    first_hunk = change.patch.hunks[0].header if change is not None and change.patch.hunks else ""
    placed: dict[str, Any] = {
        "path": path,
        "body": body,
        "subject_type": comment.get("subject_type", "line"),
        "line": None,
        "side": None,
        "start_line": None,
        "start_side": None,
        "position": None,
        "diff_hunk": first_hunk,
    }
    if placed["subject_type"] == "file":
        return placed
    if placed["subject_type"] != "line":
        raise unprocessable(f"subject_type must be line or file, not {placed['subject_type']!r}")
    if "line" in comment:
        line, side = comment["line"], comment.get("side", "RIGHT")
    elif "position" in comment:
        found = at_position(change.patch, comment["position"]) if change is not None else None
        if found is None:
            raise Unplaceable("Position could not be resolved", "position")
        line, side = found
    else:
        raise Unplaceable("Line could not be resolved", "line")
    if side not in ("LEFT", "RIGHT"):
        raise unprocessable(f"side must be LEFT or RIGHT, not {side!r}")
    start_line = comment.get("start_line")
    start_side: str | None = None
    if not _commentable(fake, change, head_files.get(path), line, side):
        raise Unplaceable(LINE_NOT_IN_DIFF, "line")
    if start_line is not None:
        start_side = str(comment.get("start_side") or side)
        if not _commentable(fake, change, head_files.get(path), start_line, start_side):
            raise Unplaceable(START_LINE_NOT_IN_DIFF, "start_line")
        if start_side == side and start_line >= line:
            raise Unplaceable(
                "Pull request review thread start line must precede the end line", "start_line"
            )
        if (
            fake.review_comment_scope == "diff"
            and change is not None
            and (change.patch.hunk_of(start_line, start_side) != change.patch.hunk_of(line, side))
        ):
            raise Unplaceable(START_LINE_OTHER_HUNK, "start_line")
    located = change.patch.locate(line, side) if change is not None else None
    placed.update(line=line, side=side, start_line=start_line, start_side=start_side)
    if located is not None:
        placed["position"], placed["diff_hunk"] = located
    return placed


def _commentable(
    fake: FakeGitHub, change: FileChange | None, head: bytes | None, line: int, side: str
) -> bool:
    if fake.review_comment_scope == "diff":
        return change is not None and line in change.patch.commentable(side)
    data = (change.old if change is not None else head) if side == "LEFT" else head
    return 1 <= line <= line_count(data)


@route("pulls/list-review-comments")
def list_review_comments(fake: FakeGitHub, call: Call) -> Reply:
    repo = _repo(fake, call)
    number = _pull(repo, call.params["pull_number"]).number
    comments = [
        c
        for c in fake.review_comments
        if c["repo"] == repo.full_name and c["pull_number"] == number
    ]
    if "since" in call.query:
        comments = [c for c in comments if c["created_at"] >= call.query["since"]]
    comments.sort(key=lambda c: c["id"], reverse=call.query.get("direction") == "desc")
    page, headers = _paginate(fake, call, comments)
    return Reply(200, [fake.shapes.review_comment(c) for c in page], headers)


def _thread_error(error: Unplaceable) -> ApiError:
    """`POST /pulls/{n}/comments` words an unanchorable comment as validation errors on
    `pull_request_review_thread.<field>`, followed, as GitHub does, by the diff hunk it
    could not derive."""
    resource = "PullRequestReviewComment"
    field_name = f"pull_request_review_thread.{error.field_name}"
    first: dict[str, Any] = {"resource": resource, "code": error.code, "field": field_name}
    if error.code != "invalid":
        prefix = f"Pull request review thread {error.field_name.replace('_', ' ')} "
        detail = (
            error.message[len(prefix) :]
            if error.message.startswith(prefix)
            else "could not be resolved"
        )
        first["message"] = f"{field_name} {detail}"
    hunk = {
        "resource": resource,
        "code": "missing_field",
        "field": "pull_request_review_thread.diff_hunk",
    }
    return ApiError(422, "Validation Failed", [first, hunk])


@route("pulls/create-review-comment")
def create_review_comment(fake: FakeGitHub, call: Call) -> Reply:
    repo = _repo(fake, call)
    pull = _pull(repo, call.params["pull_number"])
    body = call.json
    _check_comment_body("PullRequestReviewComment", body["body"])
    if "in_reply_to" in body:
        # Loud rather than wrong: a reply takes its placement from the comment it answers.
        raise ApiError(501, "in_reply_to is not implemented by the fake GitHub")
    commit_id = body["commit_id"]
    # Documented: an older commit of the pull request is accepted (the comment may show
    # as outdated); a commit outside the pull request is not.
    if commit_id not in repo.commits or commit_id not in repo.only_in(pull.head_sha, pull.base_sha):
        field_name = "pull_request_review_thread.end_commit_oid"
        raise ApiError(
            422,
            "Validation Failed",
            [
                {
                    "resource": "PullRequestReviewComment",
                    "code": "custom",
                    "field": field_name,
                    "message": f"{field_name} is not part of the pull request",
                }
            ],
        )
    if body.get("subject_type", "line") == "line" and not ({"line", "position"} & body.keys()):
        # GitHub's own request schema (a oneOf) refuses this before any placement.
        raise ApiError(
            422,
            'Invalid request.\n\nNo subschema in "oneOf" matched.\n"position" wasn\'t '
            'supplied.\n"in_reply_to" wasn\'t supplied.\n"line" wasn\'t supplied.',
        )
    changes = {c.filename: c for c in fake.pull_changes(repo, pull, head_sha=commit_id)}
    try:
        placed = _place_comment(fake, repo, commit_id, changes, body)
    except Unplaceable as error:
        raise _thread_error(error) from None
    # A lone review comment comes with a review of its own, as on GitHub.
    review = fake._new_review(repo, pull.number, fake.bot_login, "COMMENTED", commit_id, "")
    record = {
        "id": fake.ids.next("review_comment"),
        "review_id": review["id"],
        "repo": repo.full_name,
        "pull_number": pull.number,
        "commit_id": commit_id,
        "user": fake.bot_login,
        "created_at": now_iso(),
        **placed,
    }
    fake.review_comments.append(record)
    shaped = fake.shapes.review_comment(record)
    return Reply(201, shaped, {"Location": shaped["url"]})


# -- teams and permissions -----------------------------------------------------------------------


@route("teams/list-members-in-org")
def list_team_members(fake: FakeGitHub, call: Call) -> Reply:
    team = fake.teams.get((call.params["org"].lower(), call.params["team_slug"].lower()))
    if team is None:
        raise ApiError(404, "Not Found")
    role = call.query.get("role", "all")
    members = sorted(
        ((login, r) for login, r in team.members.items() if role == "all" or r == role),
        key=lambda m: m[0].lower(),
    )
    page, headers = _paginate(fake, call, members)
    return Reply(200, [fake.shapes.team_member(login, r) for login, r in page], headers)


@route("teams/get-membership-for-user-in-org")
def get_team_membership(fake: FakeGitHub, call: Call) -> Reply:
    team = fake.teams.get((call.params["org"].lower(), call.params["team_slug"].lower()))
    if team is None:
        raise ApiError(404, "Not Found")
    wanted = call.params["username"].lower()
    for login in team.members:
        if login.lower() == wanted:
            return Reply(200, fake.shapes.team_membership(team, login))
    raise ApiError(404, "Not Found")


@route("repos/get-collaborator-permission-level")
def get_collaborator_permission(fake: FakeGitHub, call: Call) -> Reply:
    repo = _repo(fake, call)
    username = call.params["username"]
    if not fake.users.known(username):
        raise ApiError(404, f"{username} is not a user")
    role = next(
        (r for login, r in repo.collaborators.items() if login.lower() == username.lower()), None
    )
    if username.lower() == repo.owner.lower():
        role = "admin"
    return Reply(200, fake.shapes.collaborator_permission(repo, username, role))


# -- the app and its installations ---------------------------------------------------------------


@route("apps/get-authenticated")
def get_authenticated_app(fake: FakeGitHub, call: Call) -> Reply:
    return Reply(200, fake.shapes.app())


@route("apps/list-installations")
def list_installations(fake: FakeGitHub, call: Call) -> Reply:
    installations = sorted(fake.installations.values(), key=lambda i: i.id)
    page, headers = _paginate(fake, call, installations)
    return Reply(200, [fake.shapes.installation(i) for i in page], headers)


@route("apps/list-repos-accessible-to-installation")
def list_installation_repos(fake: FakeGitHub, call: Call) -> Reply:
    installation = call.installation
    assert installation is not None
    scopes = [s for s in (installation.repositories, call.token and call.token.repositories) if s]
    repos = [
        r
        for r in sorted(fake._repos.values(), key=lambda r: r.id)
        if all(r.full_name.lower() in scope for scope in scopes)
        and (scopes or r.owner.lower() == installation.account.lower())
    ]
    page, headers = _paginate(fake, call, repos)
    selection = "selected" if scopes else "all"
    return Reply(
        200,
        {
            "total_count": len(repos),
            "repository_selection": selection,
            "repositories": [fake.shapes.repository(r) for r in page],
        },
        headers,
    )


# -- git trees and the pulls of a commit ---------------------------------------------------------


@route("git/get-tree")
def get_tree(fake: FakeGitHub, call: Call) -> Reply:
    """A commit's tree (the fake accepts a commit sha or ref where GitHub takes a tree sha,
    as GitHub does). `recursive` lists every entry, truncated beyond `tree_entry_limit`."""
    repo = _repo(fake, call)
    sha = repo.resolve(call.params["tree_sha"])
    if sha is None:
        raise ApiError(404, "Not Found")
    commit = repo.commits[sha]
    entries: dict[str, dict[str, Any]] = {}
    for path, data in commit.files.items():
        entries[path] = {"mode": "100644", "type": "blob", "sha": blob_sha(data), "size": len(data)}
    for path, target in commit.gitlinks.items():
        entries[path] = {"mode": "160000", "type": "commit", "sha": target}
    for path in list(entries):
        parts = path.split("/")
        for depth in range(1, len(parts)):
            directory = "/".join(parts[:depth])
            entries.setdefault(directory, {"mode": "040000", "type": "tree", "sha": "0" * 40})
    recursive = call.query.get("recursive") not in (None, "", "0", "false")
    if not recursive:
        entries = {p: e for p, e in entries.items() if "/" not in p}
    listed = sorted(entries)
    truncated = len(listed) > fake.tree_entry_limit
    api = f"{fake.url}/repos/{repo.full_name}/git"
    tree = []
    for path in listed[: fake.tree_entry_limit]:
        entry = {"path": path, **entries[path]}
        if entry["type"] == "blob":
            entry["url"] = f"{api}/blobs/{entry['sha']}"
        elif entry["type"] == "tree":
            entry["url"] = f"{api}/trees/{entry['sha']}"
        tree.append(entry)
    return Reply(
        200, {"sha": sha, "url": f"{api}/trees/{sha}", "tree": tree, "truncated": truncated}
    )
