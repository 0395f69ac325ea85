"""Every GitHub REST call the bot makes, one ``async def verb_noun(gh, ...)`` each.

No decisions here: each function sends one request (or walks one paginated list) and hands
back plain data. Paths follow GitHub's REST reference so that they can be checked against
its OpenAPI description.
"""

from __future__ import annotations

import base64
import http
import re
from dataclasses import dataclass
from typing import Any

import gidgethub

from bot.github.client import DownloadTooLarge, GitHubClient

# GitHub stops listing a pull request's files at 3000; the same cap keeps list walks bounded.
MAX_LISTED = 3000
# Reviews decide approvals: every one is read, up to a bound that only an abuse reaches;
# beyond it the list is refused (``ListTruncated``) rather than read in part.
MAX_REVIEWS = 10_000
# A file read through the contents API (settings, owners): more is refused, not cut.
FILE_BYTES = 1024 * 1024
RAW_MEDIA_TYPE = "application/vnd.github.raw+json"


class ListTruncated(Exception):
    """A list that must be read completely has more items than the bound."""


@dataclass(frozen=True, slots=True)
class Repository:
    owner: str
    name: str

    @classmethod
    def from_payload(cls, repository: dict[str, Any]) -> Repository:
        return cls(repository["owner"]["login"], repository["name"])

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    def vars(self, **more: Any) -> dict[str, Any]:
        return {"owner": self.owner, "repo": self.name, **more}


async def _collect(gh: GitHubClient, url: str, url_vars: dict[str, Any]) -> list[Any]:
    items: list[Any] = []
    async for item in gh.getiter(url, url_vars):
        items.append(item)
        if len(items) >= MAX_LISTED:
            break
    return items


async def create_installation_token(
    gh: GitHubClient, installation_id: int, app_jwt: str
) -> dict[str, Any]:
    url = "/app/installations/{installation_id}/access_tokens"
    data = await gh.post(url, {"installation_id": installation_id}, data=b"", jwt=app_jwt)
    return dict(data)


async def get_pull(gh: GitHubClient, repo: Repository, number: int) -> dict[str, Any]:
    url = "/repos/{owner}/{repo}/pulls/{pull_number}"
    return dict(await gh.getitem(url, repo.vars(pull_number=number)))


async def list_pull_files(gh: GitHubClient, repo: Repository, number: int) -> list[Any]:
    url = "/repos/{owner}/{repo}/pulls/{pull_number}/files{?per_page}"
    return await _collect(gh, url, repo.vars(pull_number=number, per_page=100))


async def list_pull_reviews(gh: GitHubClient, repo: Repository, number: int) -> list[Any]:
    """Every review, following every page; ``ListTruncated`` beyond ``MAX_REVIEWS``: a
    later review (a revocation) must never hide behind a cap."""
    url = "/repos/{owner}/{repo}/pulls/{pull_number}/reviews{?per_page}"
    items: list[Any] = []
    async for item in gh.getiter(url, repo.vars(pull_number=number, per_page=100)):
        items.append(item)
        if len(items) > MAX_REVIEWS:
            raise ListTruncated(f"pull request #{number} has more than {MAX_REVIEWS} reviews")
    return items


async def list_review_comments(gh: GitHubClient, repo: Repository, number: int) -> list[Any]:
    url = "/repos/{owner}/{repo}/pulls/{pull_number}/comments{?per_page}"
    return await _collect(gh, url, repo.vars(pull_number=number, per_page=100))


async def create_review(
    gh: GitHubClient,
    repo: Repository,
    number: int,
    *,
    commit_id: str,
    body: str,
    comments: list[dict[str, Any]],
) -> dict[str, Any]:
    url = "/repos/{owner}/{repo}/pulls/{pull_number}/reviews"
    data = {"commit_id": commit_id, "body": body, "event": "COMMENT", "comments": comments}
    return dict(await gh.post(url, repo.vars(pull_number=number), data=data))


async def create_file_review_comment(
    gh: GitHubClient, repo: Repository, number: int, *, commit_id: str, path: str, body: str
) -> dict[str, Any]:
    """A review comment on a whole file (``subject_type: file``)."""
    url = "/repos/{owner}/{repo}/pulls/{pull_number}/comments"
    data = {"commit_id": commit_id, "path": path, "body": body, "subject_type": "file"}
    return dict(await gh.post(url, repo.vars(pull_number=number), data=data))


async def list_issue_comments(gh: GitHubClient, repo: Repository, number: int) -> list[Any]:
    url = "/repos/{owner}/{repo}/issues/{issue_number}/comments{?per_page}"
    return await _collect(gh, url, repo.vars(issue_number=number, per_page=100))


async def create_issue_comment(
    gh: GitHubClient, repo: Repository, number: int, body: str
) -> dict[str, Any]:
    url = "/repos/{owner}/{repo}/issues/{issue_number}/comments"
    return dict(await gh.post(url, repo.vars(issue_number=number), data={"body": body}))


async def update_issue_comment(
    gh: GitHubClient, repo: Repository, comment_id: int, body: str
) -> dict[str, Any]:
    url = "/repos/{owner}/{repo}/issues/comments/{comment_id}"
    return dict(await gh.patch(url, repo.vars(comment_id=comment_id), data={"body": body}))


async def create_check_run(
    gh: GitHubClient, repo: Repository, data: dict[str, Any]
) -> dict[str, Any]:
    url = "/repos/{owner}/{repo}/check-runs"
    return dict(await gh.post(url, repo.vars(), data=data))


async def update_check_run(
    gh: GitHubClient, repo: Repository, check_run_id: int, data: dict[str, Any]
) -> dict[str, Any]:
    url = "/repos/{owner}/{repo}/check-runs/{check_run_id}"
    return dict(await gh.patch(url, repo.vars(check_run_id=check_run_id), data=data))


async def get_file_content(
    gh: GitHubClient, repo: Repository, path: str, ref: str, *, max_bytes: int = FILE_BYTES
) -> bytes | None:
    """The bytes of one file at ``ref``; None when it does not exist there.

    The contents API inlines files up to 1 MiB; a larger one comes back with
    ``encoding: none`` and is then read again with the raw media type (files up to 100 MB),
    streamed and abandoned past ``max_bytes`` (``DownloadTooLarge``)."""
    url = "/repos/{owner}/{repo}/contents/{+path}{?ref}"
    url_vars = repo.vars(path=path, ref=ref)
    try:
        data = await gh.getitem(url, url_vars)
    except gidgethub.BadRequest as exc:
        if exc.status_code == http.HTTPStatus.NOT_FOUND:
            return None
        raise
    if not isinstance(data, dict) or data.get("type") != "file":
        return None  # a directory or a submodule at that path: no settings file
    size = data.get("size")
    if isinstance(size, int) and size > max_bytes:
        raise DownloadTooLarge(f"{path} is {size} bytes, limit {max_bytes}")
    if data.get("encoding") == "none" and isinstance(size, int) and size > 0:
        return await gh.download(url, url_vars, max_bytes=max_bytes, accept=RAW_MEDIA_TYPE)
    return base64.b64decode(data.get("content") or "")


async def get_tree(gh: GitHubClient, repo: Repository, ref: str) -> dict[str, Any]:
    """Every entry of the commit's tree (``truncated`` when GitHub cut the listing)."""
    url = "/repos/{owner}/{repo}/git/trees/{tree_sha}{?recursive}"
    return dict(await gh.getitem(url, repo.vars(tree_sha=ref, recursive="1")))


async def get_commit(gh: GitHubClient, repo: Repository, ref: str) -> dict[str, Any]:
    # per_page=1: only the commit's parents are used, not its file list.
    url = "/repos/{owner}/{repo}/commits/{ref}{?per_page}"
    return dict(await gh.getitem(url, repo.vars(ref=ref, per_page=1)))


# SHA-1 ids, and SHA-256 ones for repositories in that object format.
_COMMIT_ID = re.compile("[0-9a-f]{40}|[0-9a-f]{64}")
SHA_MEDIA_TYPE = "application/vnd.github.sha"


async def get_branch_head(gh: GitHubClient, repo: Repository, branch: str) -> str:
    """The commit a branch points at now (``heads/<branch>``: never mistaken for a sha).

    Asked as the ``sha`` media type: the commit's JSON holds its diff against its first
    parent, which GitHub computes for every ask (a large merge on the base branch: seconds,
    and a 5xx past its limits) though only the id is used."""
    url = "/repos/{owner}/{repo}/commits/{+ref}"
    data = await gh.download(
        url, repo.vars(ref=f"heads/{branch}"), max_bytes=256, accept=SHA_MEDIA_TYPE
    )
    sha = data.decode("ascii", "replace").strip()
    if not _COMMIT_ID.fullmatch(sha):
        raise gidgethub.GitHubException(f"not a commit id for heads/{branch}: {sha[:80]!r}")
    return sha


async def list_open_pulls(gh: GitHubClient, repo: Repository, base: str) -> list[Any]:
    """The open pull requests into branch ``base``."""
    url = "/repos/{owner}/{repo}/pulls{?state,base,per_page}"
    return await _collect(gh, url, repo.vars(state="open", base=base, per_page=100))


async def list_check_runs(
    gh: GitHubClient, repo: Repository, sha: str, check_name: str, *, app_id: str
) -> list[Any]:
    """Every check run named ``check_name`` that app ``app_id`` made on commit ``sha``,
    newest first. Only the app's own: a workflow's token may create runs of any name."""
    url = "/repos/{owner}/{repo}/commits/{ref}/check-runs{?check_name,filter,per_page}"
    items: list[Any] = []
    url_vars = repo.vars(ref=sha, check_name=check_name, filter="all", per_page=100)
    async for item in gh.getiter(url, url_vars, iterable_key="check_runs"):
        app = item.get("app") if isinstance(item, dict) else None
        if isinstance(app, dict) and str(app.get("id")) == app_id:
            items.append(item)
        if len(items) >= MAX_LISTED:
            break
    return items


async def compare_commits(
    gh: GitHubClient, repo: Repository, base: str, head: str
) -> dict[str, Any]:
    # per_page=1: only merge_base_commit is used, not the commit list.
    url = "/repos/{owner}/{repo}/compare/{basehead}{?per_page}"
    return dict(await gh.getitem(url, repo.vars(basehead=f"{base}...{head}", per_page=1)))


async def download_tarball(
    gh: GitHubClient, repo: Repository, ref: str, *, max_bytes: int
) -> bytes:
    url = "/repos/{owner}/{repo}/tarball/{ref}"
    return await gh.download(url, repo.vars(ref=ref), max_bytes=max_bytes)


async def get_team_membership(
    gh: GitHubClient, org: str, team_slug: str, username: str
) -> dict[str, Any] | None:
    """The membership of ``username`` in a team; None when they are not a member."""
    url = "/orgs/{org}/teams/{team_slug}/memberships/{username}"
    try:
        data = await gh.getitem(url, {"org": org, "team_slug": team_slug, "username": username})
    except gidgethub.BadRequest as exc:
        if exc.status_code == http.HTTPStatus.NOT_FOUND:
            return None
        raise
    return dict(data)


async def get_collaborator_permission(
    gh: GitHubClient, repo: Repository, username: str
) -> dict[str, Any] | None:
    """``{"permission": ..., "role_name": ...}``; None when the user is unknown to GitHub."""
    url = "/repos/{owner}/{repo}/collaborators/{username}/permission"
    try:
        data = await gh.getitem(url, repo.vars(username=username))
    except gidgethub.BadRequest as exc:
        if exc.status_code == http.HTTPStatus.NOT_FOUND:
            return None
        raise
    return dict(data)


# ---- the app itself (authenticated with the app's JWT) ------------------------------------


async def get_authenticated_app(gh: GitHubClient, app_jwt: str) -> dict[str, Any]:
    return dict(await gh.getitem("/app", jwt=app_jwt))


async def list_installations(gh: GitHubClient, app_jwt: str, *, limit: int) -> list[Any]:
    items: list[Any] = []
    async for item in gh.getiter("/app/installations{?per_page}", {"per_page": 100}, jwt=app_jwt):
        items.append(item)
        if len(items) >= limit:
            break
    return items


async def list_installation_repositories(gh: GitHubClient, *, limit: int) -> list[Any]:
    items: list[Any] = []
    url = "/installation/repositories{?per_page}"
    async for item in gh.getiter(url, {"per_page": 100}, iterable_key="repositories"):
        items.append(item)
        if len(items) >= limit:
            break
    return items


async def list_every_open_pull(gh: GitHubClient, repo: Repository, *, limit: int) -> list[Any]:
    """The open pull requests into any branch, up to ``limit``."""
    items: list[Any] = []
    url = "/repos/{owner}/{repo}/pulls{?state,per_page}"
    async for item in gh.getiter(url, repo.vars(state="open", per_page=100)):
        items.append(item)
        if len(items) >= limit:
            break
    return items


async def list_check_runs_for_ref(
    gh: GitHubClient, repo: Repository, ref: str, *, check_name: str, app_id: str
) -> list[Any]:
    """The latest run of ``check_name`` by this app on ``ref`` (GitHub's ``filter=latest``)."""
    url = "/repos/{owner}/{repo}/commits/{ref}/check-runs{?check_name,app_id,filter,per_page}"
    data = await gh.getitem(
        url,
        repo.vars(ref=ref, check_name=check_name, app_id=app_id, filter="latest", per_page=100),
    )
    return list(data.get("check_runs") or []) if isinstance(data, dict) else []
