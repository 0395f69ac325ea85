"""JSON representations of the fake's objects, in the shapes GitHub's schemas describe.

API URLs point at the fake (bots follow them); `html_url`s point at github.com, as they
would in production, and are never fetched by the fake or its tests.
"""

from __future__ import annotations

import base64
import hashlib
from typing import TYPE_CHECKING, Any

from .diffs import FileChange, blob_sha
from .state import Commit, Installation, Pull, Repo, Team

if TYPE_CHECKING:
    from .server import FakeGitHub

HTML = "https://github.com"

# GitHub refuses to inline files above 1 MB in the contents API (it returns an empty
# content with encoding "none" up to 100 MB).
CONTENTS_INLINE_LIMIT = 1024 * 1024


def node_id(kind: str, number: int) -> str:
    return base64.b64encode(f"0:{kind}{number}".encode()).decode().rstrip("=")


class Shapes:
    def __init__(self, fake: FakeGitHub) -> None:
        self.fake = fake

    @property
    def api(self) -> str:
        return self.fake.url

    # -- people --------------------------------------------------------------------------------

    def user(self, login: str) -> dict[str, Any]:
        uid = self.fake.users.id_of(login)
        api = f"{self.api}/users/{login}"
        return {
            "login": login,
            "id": uid,
            "node_id": node_id("User", uid),
            "avatar_url": f"https://avatars.githubusercontent.com/u/{uid}?v=4",
            "gravatar_id": "",
            "url": api,
            "html_url": f"{HTML}/{login}",
            "followers_url": f"{api}/followers",
            "following_url": f"{api}/following{{/other_user}}",
            "gists_url": f"{api}/gists{{/gist_id}}",
            "starred_url": f"{api}/starred{{/owner}}{{/repo}}",
            "subscriptions_url": f"{api}/subscriptions",
            "organizations_url": f"{api}/orgs",
            "repos_url": f"{api}/repos",
            "events_url": f"{api}/events{{/privacy}}",
            "received_events_url": f"{api}/received_events",
            "type": self.fake.users.type_of(login),
            "user_view_type": "public",
            "site_admin": False,
        }

    def author_association(self, repo: Repo, login: str) -> str:
        if login.lower() == repo.owner.lower():
            return "OWNER"
        if any(login.lower() == c.lower() for c in repo.collaborators):
            return "COLLABORATOR"
        return "CONTRIBUTOR" if any(p.author == login for p in repo.pulls.values()) else "NONE"

    def app(self) -> dict[str, Any]:
        fake = self.fake
        return {
            "id": fake.app_id,
            "slug": fake.app_slug,
            "client_id": f"Iv1.{fake.app_id:016x}",
            "node_id": node_id("Integration", fake.app_id),
            "owner": self.user(fake.app_owner),
            "name": fake.app_slug,
            "description": "reachdiff test app",
            "external_url": f"{HTML}/apps/{fake.app_slug}",
            "html_url": f"{HTML}/apps/{fake.app_slug}",
            "created_at": "2024-01-01T00:00:00Z",
            "updated_at": "2024-01-01T00:00:00Z",
            "permissions": dict(fake.app_permissions),
            "events": ["pull_request", "pull_request_review", "check_run", "check_suite"],
        }

    def run_app(self, run: dict[str, Any]) -> dict[str, Any]:
        """The app that made a check run: ours, or another (a workflow's `github-actions`)."""
        other = run.get("foreign_app")
        if other is None:
            return self.app()
        return {
            **self.app(),
            "id": other["id"],
            "slug": other["slug"],
            "name": other["slug"],
            "node_id": node_id("Integration", other["id"]),
        }

    def installation(self, installation: Installation) -> dict[str, Any]:
        fake = self.fake
        api = f"{self.api}/app/installations/{installation.id}"
        return {
            "id": installation.id,
            "app_id": fake.app_id,
            "app_slug": fake.app_slug,
            "target_id": fake.users.id_of(installation.account),
            "target_type": "Organization",
            "single_file_name": None,
            "repository_selection": "all" if installation.repositories is None else "selected",
            "access_tokens_url": f"{api}/access_tokens",
            "html_url": f"{HTML}/organizations/{installation.account}/settings/installations/"
            f"{installation.id}",
            "repositories_url": f"{self.api}/installation/repositories",
            "events": self.app()["events"],
            # The description makes `account` allOf(simple-user, enterprise) (a quirk of
            # octokit's generator; GitHub means either), so it carries both's fields.
            "account": {
                **self.user(installation.account),
                "name": installation.account,
                "slug": installation.account.lower(),
                "created_at": "2024-01-01T00:00:00Z",
                "updated_at": "2024-01-01T00:00:00Z",
            },
            "permissions": dict(fake.app_permissions),
            "created_at": "2024-01-01T00:00:00Z",
            "updated_at": "2024-01-01T00:00:00Z",
            "suspended_by": None,
            "suspended_at": None,
        }

    # -- repositories --------------------------------------------------------------------------

    def repository(self, repo: Repo | None, full_name: str | None = None) -> dict[str, Any]:
        """`repo` may be None for a fork the fake only knows by name (pull request heads)."""
        if repo is not None:
            full_name = repo.full_name
        assert full_name is not None
        owner, name = full_name.split("/", 1)
        rid = (
            repo.id
            if repo is not None
            else 900000 + int(hashlib.sha1(full_name.encode()).hexdigest()[:6], 16)
        )
        api = f"{self.api}/repos/{full_name}"
        created = repo.created_at if repo is not None else "2024-01-01T00:00:00Z"
        return {
            "id": rid,
            "node_id": node_id("Repository", rid),
            "name": name,
            "full_name": full_name,
            "owner": self.user(owner),
            "private": repo.private if repo is not None else False,
            "html_url": f"{HTML}/{full_name}",
            "description": None,
            "fork": repo is None,
            "url": api,
            "archive_url": f"{api}/{{archive_format}}{{/ref}}",
            "assignees_url": f"{api}/assignees{{/user}}",
            "blobs_url": f"{api}/git/blobs{{/sha}}",
            "branches_url": f"{api}/branches{{/branch}}",
            "collaborators_url": f"{api}/collaborators{{/collaborator}}",
            "comments_url": f"{api}/comments{{/number}}",
            "commits_url": f"{api}/commits{{/sha}}",
            "compare_url": f"{api}/compare/{{base}}...{{head}}",
            "contents_url": f"{api}/contents/{{+path}}",
            "contributors_url": f"{api}/contributors",
            "deployments_url": f"{api}/deployments",
            "downloads_url": f"{api}/downloads",
            "events_url": f"{api}/events",
            "forks_url": f"{api}/forks",
            "git_commits_url": f"{api}/git/commits{{/sha}}",
            "git_refs_url": f"{api}/git/refs{{/sha}}",
            "git_tags_url": f"{api}/git/tags{{/sha}}",
            "git_url": f"git://github.com/{full_name}.git",
            "issue_comment_url": f"{api}/issues/comments{{/number}}",
            "issue_events_url": f"{api}/issues/events{{/number}}",
            "issues_url": f"{api}/issues{{/number}}",
            "keys_url": f"{api}/keys{{/key_id}}",
            "labels_url": f"{api}/labels{{/name}}",
            "languages_url": f"{api}/languages",
            "merges_url": f"{api}/merges",
            "milestones_url": f"{api}/milestones{{/number}}",
            "notifications_url": f"{api}/notifications{{?since,all,participating}}",
            "pulls_url": f"{api}/pulls{{/number}}",
            "releases_url": f"{api}/releases{{/id}}",
            "ssh_url": f"git@github.com:{full_name}.git",
            "stargazers_url": f"{api}/stargazers",
            "statuses_url": f"{api}/statuses/{{sha}}",
            "subscribers_url": f"{api}/subscribers",
            "subscription_url": f"{api}/subscription",
            "tags_url": f"{api}/tags",
            "teams_url": f"{api}/teams",
            "trees_url": f"{api}/git/trees{{/sha}}",
            "clone_url": f"{HTML}/{full_name}.git",
            "mirror_url": None,
            "hooks_url": f"{api}/hooks",
            "svn_url": f"{HTML}/{full_name}",
            "homepage": None,
            "language": None,
            "forks_count": 0,
            "forks": 0,
            "stargazers_count": 0,
            "watchers_count": 0,
            "watchers": 0,
            "size": 0,
            "default_branch": repo.default_branch if repo is not None else "main",
            "open_issues_count": sum(p.state == "open" for p in repo.pulls.values()) if repo else 0,
            "open_issues": sum(p.state == "open" for p in repo.pulls.values()) if repo else 0,
            "is_template": False,
            "topics": [],
            "has_issues": True,
            "has_projects": True,
            "has_wiki": True,
            "has_pages": False,
            "has_downloads": True,
            "has_discussions": False,
            "archived": False,
            "disabled": False,
            "visibility": "private" if repo is not None and repo.private else "public",
            "pushed_at": created,
            "created_at": created,
            "updated_at": created,
            "allow_forking": True,
            "web_commit_signoff_required": False,
            "license": None,
        }

    # -- commits -------------------------------------------------------------------------------

    def git_user(self, commit: Commit) -> dict[str, Any]:
        return {
            "name": commit.author,
            "email": f"{commit.author}@users.noreply.github.com",
            "date": commit.date,
        }

    def commit(
        self,
        repo: Repo,
        commit: Commit,
        files: list[FileChange] | None = None,
        listed: list[FileChange] | None = None,
    ) -> dict[str, Any]:
        """``files``: the commit's changes (its ``stats``); ``listed``: the page of them
        that ``files`` lists (default: all)."""
        api = f"{self.api}/repos/{repo.full_name}"
        out: dict[str, Any] = {
            "sha": commit.sha,
            "node_id": node_id("Commit", int(commit.sha[:8], 16)),
            "url": f"{api}/commits/{commit.sha}",
            "html_url": f"{HTML}/{repo.full_name}/commit/{commit.sha}",
            "comments_url": f"{api}/commits/{commit.sha}/comments",
            "commit": {
                "url": f"{api}/git/commits/{commit.sha}",
                "author": self.git_user(commit),
                "committer": self.git_user(commit),
                "message": commit.message,
                "tree": {"sha": _tree_sha(commit), "url": f"{api}/git/trees/{_tree_sha(commit)}"},
                "comment_count": 0,
                "verification": {
                    "verified": False,
                    "reason": "unsigned",
                    "signature": None,
                    "payload": None,
                    "verified_at": None,
                },
            },
            "author": self.user(commit.author),
            "committer": self.user(commit.committer or commit.author),
            "parents": [
                {
                    "sha": p,
                    "url": f"{api}/commits/{p}",
                    "html_url": f"{HTML}/{repo.full_name}/commit/{p}",
                }
                for p in commit.parents
            ],
        }
        if files is not None:
            shown = files if listed is None else listed
            out["files"] = [self.diff_entry(repo, commit.sha, c) for c in shown]
            additions = sum(c.patch.additions for c in files)
            deletions = sum(c.patch.deletions for c in files)
            out["stats"] = {
                "additions": additions,
                "deletions": deletions,
                "total": additions + deletions,
            }
        return out

    def diff_entry(self, repo: Repo, ref_sha: str, change: FileChange) -> dict[str, Any]:
        from urllib.parse import quote

        path = quote(change.filename)
        out: dict[str, Any] = {
            "sha": change.sha,
            "filename": change.filename,
            "status": change.status,
            "additions": change.patch.additions,
            "deletions": change.patch.deletions,
            "changes": change.patch.additions + change.patch.deletions,
            "blob_url": f"{HTML}/{repo.full_name}/blob/{ref_sha}/{path}",
            "raw_url": f"{HTML}/{repo.full_name}/raw/{ref_sha}/{path}",
            "contents_url": f"{self.api}/repos/{repo.full_name}/contents/{path}?ref={ref_sha}",
        }
        if change.patch.text is not None:
            out["patch"] = change.patch.text
        if change.previous_filename is not None:
            out["previous_filename"] = change.previous_filename
        return out

    # -- contents ------------------------------------------------------------------------------

    def _content_common(
        self, repo: Repo, path: str, sha: str, size: int, kind: str, ref: str
    ) -> dict[str, Any]:
        api = f"{self.api}/repos/{repo.full_name}"
        self_url = f"{api}/contents/{path}?ref={ref}"
        git_url = f"{api}/git/{'trees' if kind == 'dir' else 'blobs'}/{sha}"
        html_url = f"{HTML}/{repo.full_name}/{'tree' if kind == 'dir' else 'blob'}/{ref}/{path}"
        return {
            "type": kind,
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "sha": sha,
            "size": size,
            "url": self_url,
            "html_url": html_url,
            "git_url": git_url,
            "download_url": (
                f"https://raw.githubusercontent.com/{repo.full_name}/{ref}/{path}"
                if kind == "file"
                else None
            ),
            "_links": {"self": self_url, "git": git_url, "html": html_url},
        }

    def content_file(self, repo: Repo, path: str, data: bytes, ref: str) -> dict[str, Any]:
        out = self._content_common(repo, path, blob_sha(data), len(data), "file", ref)
        if len(data) > CONTENTS_INLINE_LIMIT:
            out.update(content="", encoding="none")
        else:
            encoded = base64.b64encode(data).decode()
            # GitHub wraps the base64 text at 60 characters, with a trailing newline.
            lines = [encoded[i : i + 60] for i in range(0, len(encoded), 60)]
            out.update(content="".join(line + "\n" for line in lines), encoding="base64")
        return out

    def content_directory(
        self, repo: Repo, commit: Commit, path: str, ref: str
    ) -> list[dict[str, Any]]:
        prefix = path.rstrip("/") + "/"
        children: dict[str, bytes | None] = {}
        for file_path, data in commit.files.items():
            if file_path.startswith(prefix):
                rest = file_path[len(prefix) :]
                head = rest.split("/", 1)[0]
                children[head] = data if "/" not in rest else None
        entries = []
        for name in sorted(children):
            blob = children[name]
            child = prefix + name
            if blob is None:
                sub_sha = hashlib.sha1(f"tree:{commit.sha}:{child}".encode()).hexdigest()
                entries.append(self._content_common(repo, child, sub_sha, 0, "dir", ref))
            else:
                entries.append(
                    self._content_common(repo, child, blob_sha(blob), len(blob), "file", ref)
                )
        return entries

    # -- pull requests -------------------------------------------------------------------------

    def pull(self, repo: Repo, pull: Pull, *, simple: bool = False) -> dict[str, Any]:
        api = f"{self.api}/repos/{repo.full_name}"
        number = pull.number
        head_repo_obj = repo if pull.head_repo.lower() == repo.full_name.lower() else None
        head_owner = pull.head_repo.split("/", 1)[0]
        links = {
            "self": {"href": f"{api}/pulls/{number}"},
            "html": {"href": f"{HTML}/{repo.full_name}/pull/{number}"},
            "issue": {"href": f"{api}/issues/{number}"},
            "comments": {"href": f"{api}/issues/{number}/comments"},
            "review_comments": {"href": f"{api}/pulls/{number}/comments"},
            "review_comment": {"href": f"{api}/pulls/comments{{/number}}"},
            "commits": {"href": f"{api}/pulls/{number}/commits"},
            "statuses": {"href": f"{api}/statuses/{pull.head_sha}"},
        }
        out: dict[str, Any] = {
            "url": f"{api}/pulls/{number}",
            "id": pull.id,
            "node_id": node_id("PullRequest", pull.id),
            "html_url": f"{HTML}/{repo.full_name}/pull/{number}",
            "diff_url": f"{HTML}/{repo.full_name}/pull/{number}.diff",
            "patch_url": f"{HTML}/{repo.full_name}/pull/{number}.patch",
            "issue_url": f"{api}/issues/{number}",
            "commits_url": f"{api}/pulls/{number}/commits",
            "review_comments_url": f"{api}/pulls/{number}/comments",
            "review_comment_url": f"{api}/pulls/comments{{/number}}",
            "comments_url": f"{api}/issues/{number}/comments",
            "statuses_url": f"{api}/statuses/{pull.head_sha}",
            "number": number,
            "state": pull.state,
            "locked": False,
            "title": pull.title,
            "user": self.user(pull.author),
            "body": pull.body,
            "labels": [],
            "milestone": None,
            "active_lock_reason": None,
            "created_at": pull.created_at,
            "updated_at": pull.updated_at,
            "closed_at": pull.closed_at,
            "merged_at": pull.merged_at,
            "merge_commit_sha": pull.merge_commit_sha,
            "assignee": None,
            "assignees": [],
            "requested_reviewers": [],
            "requested_teams": [],
            "head": {
                "label": f"{head_owner}:{pull.head_ref}",
                "ref": pull.head_ref,
                "sha": pull.head_sha,
                "user": self.user(head_owner),
                "repo": self.repository(head_repo_obj, pull.head_repo),
            },
            "base": {
                "label": f"{repo.owner}:{pull.base_ref}",
                "ref": pull.base_ref,
                "sha": pull.base_sha,
                "user": self.user(repo.owner),
                "repo": self.repository(repo),
            },
            "_links": links,
            "author_association": self.author_association(repo, pull.author),
            "auto_merge": None,
            "draft": pull.draft,
        }
        if simple:
            return out
        changes = self.fake.pull_changes(repo, pull)
        additions = sum(c.patch.additions for c in changes)
        deletions = sum(c.patch.deletions for c in changes)
        merge_base = repo.merge_base(pull.base_sha, pull.head_sha)
        commits = len(repo.only_in(pull.head_sha, merge_base)) if merge_base else 1
        if pull.mergeable is None:
            mergeable_state = "unknown"
        else:
            mergeable_state = ("draft" if pull.draft else "clean") if pull.mergeable else "dirty"
        out.update(
            {
                "merged": pull.merged,
                "mergeable": pull.mergeable,
                "rebaseable": pull.mergeable,
                "mergeable_state": mergeable_state,
                "merged_by": None,
                "comments": len(self.fake.issue_comments.get((repo.full_name, pull.number), [])),
                "review_comments": sum(
                    1
                    for c in self.fake.review_comments
                    if c["repo"] == repo.full_name and c["pull_number"] == pull.number
                ),
                "maintainer_can_modify": head_repo_obj is None,
                "commits": commits,
                "additions": additions,
                "deletions": deletions,
                "changed_files": len(changes),
            }
        )
        return out

    def pull_minimal(self, repo: Repo, pull: Pull) -> dict[str, Any]:
        api = f"{self.api}/repos/{repo.full_name}"
        head_name = pull.head_repo.split("/", 1)[1]
        same = pull.head_repo.lower() == repo.full_name.lower()
        head_id = repo.id if same else self.repository(None, pull.head_repo)["id"]
        return {
            "id": pull.id,
            "number": pull.number,
            "url": f"{api}/pulls/{pull.number}",
            "head": {
                "ref": pull.head_ref,
                "sha": pull.head_sha,
                "repo": {
                    "id": head_id,
                    "url": f"{self.api}/repos/{pull.head_repo}",
                    "name": head_name,
                },
            },
            "base": {
                "ref": pull.base_ref,
                "sha": pull.base_sha,
                "repo": {"id": repo.id, "url": api, "name": repo.name},
            },
        }

    # -- checks --------------------------------------------------------------------------------

    def check_run(self, run: dict[str, Any]) -> dict[str, Any]:
        repo = self.fake.repo(run["repo"])
        api = f"{self.api}/repos/{repo.full_name}"
        output = run["output"]
        pulls = [
            self.pull_minimal(repo, p)
            for p in sorted(repo.pulls.values(), key=lambda p: p.number)
            if p.head_sha == run["head_sha"] and p.state == "open"
        ]
        return {
            "id": run["id"],
            "head_sha": run["head_sha"],
            "node_id": node_id("CheckRun", run["id"]),
            "external_id": run["external_id"] or "",
            "url": f"{api}/check-runs/{run['id']}",
            "html_url": f"{HTML}/{repo.full_name}/runs/{run['id']}",
            "details_url": run["details_url"] or f"{HTML}/apps/{self.fake.app_slug}",
            "status": run["status"],
            "conclusion": run["conclusion"],
            "started_at": run["started_at"],
            "completed_at": run["completed_at"],
            "output": {
                "title": output["title"],
                "summary": output["summary"],
                "text": output["text"],
                "annotations_count": len(output["annotations"]),
                "annotations_url": f"{api}/check-runs/{run['id']}/annotations",
            },
            "name": run["name"],
            "check_suite": {"id": run["check_suite_id"]},
            "app": self.run_app(run),
            "pull_requests": pulls,
        }

    # -- conversations -------------------------------------------------------------------------

    def issue_comment(self, record: dict[str, Any]) -> dict[str, Any]:
        repo = self.fake.repo(record["repo"])
        api = f"{self.api}/repos/{repo.full_name}"
        return {
            "id": record["id"],
            "node_id": node_id("IssueComment", record["id"]),
            "url": f"{api}/issues/comments/{record['id']}",
            "html_url": (
                f"{HTML}/{repo.full_name}/pull/{record['issue_number']}#issuecomment-{record['id']}"
            ),
            "body": record["body"],
            "user": self.user(record["user"]),
            "created_at": record["created_at"],
            "updated_at": record["updated_at"],
            "issue_url": f"{api}/issues/{record['issue_number']}",
            "author_association": self.author_association(repo, record["user"]),
            "performed_via_github_app": self.app()
            if record["user"] == self.fake.bot_login or record.get("via_app")
            else None,
            "reactions": self._reactions(f"{api}/issues/comments/{record['id']}/reactions"),
        }

    def _reactions(self, url: str) -> dict[str, Any]:
        counts = dict.fromkeys(
            ("+1", "-1", "laugh", "confused", "heart", "hooray", "eyes", "rocket"), 0
        )
        return {"url": url, "total_count": 0, **counts}

    def review(self, record: dict[str, Any]) -> dict[str, Any]:
        repo = self.fake.repo(record["repo"])
        number = record["pull_number"]
        html = f"{HTML}/{repo.full_name}/pull/{number}#pullrequestreview-{record['id']}"
        out = {
            "id": record["id"],
            "node_id": node_id("PullRequestReview", record["id"]),
            "user": self.user(record["user"]),
            "body": record["body"],
            "state": record["state"],
            "html_url": html,
            "pull_request_url": f"{self.api}/repos/{repo.full_name}/pulls/{number}",
            "_links": {
                "html": {"href": html},
                "pull_request": {"href": f"{self.api}/repos/{repo.full_name}/pulls/{number}"},
            },
            "commit_id": record["commit_id"],
            "author_association": self.author_association(repo, record["user"]),
        }
        if record["submitted_at"] is not None:
            out["submitted_at"] = record["submitted_at"]
        return out

    def review_comment(self, record: dict[str, Any]) -> dict[str, Any]:
        repo = self.fake.repo(record["repo"])
        api = f"{self.api}/repos/{repo.full_name}"
        number = record["pull_number"]
        html = f"{HTML}/{repo.full_name}/pull/{number}#discussion_r{record['id']}"
        out: dict[str, Any] = {
            "url": f"{api}/pulls/comments/{record['id']}",
            "pull_request_review_id": record["review_id"],
            "id": record["id"],
            "node_id": node_id("PullRequestReviewComment", record["id"]),
            "diff_hunk": record["diff_hunk"],
            "path": record["path"],
            "commit_id": record["commit_id"],
            "original_commit_id": record["commit_id"],
            "user": self.user(record["user"]),
            "body": record["body"],
            "created_at": record["created_at"],
            "updated_at": record["created_at"],
            "html_url": html,
            "pull_request_url": f"{api}/pulls/{number}",
            "author_association": self.author_association(repo, record["user"]),
            "_links": {
                "self": {"href": f"{api}/pulls/comments/{record['id']}"},
                "html": {"href": html},
                "pull_request": {"href": f"{api}/pulls/{number}"},
            },
            "subject_type": record["subject_type"],
            "reactions": self._reactions(f"{api}/pulls/comments/{record['id']}/reactions"),
        }
        if record["subject_type"] == "line":
            out.update(
                {
                    "line": record["line"],
                    "original_line": record["line"],
                    "side": record["side"],
                    "start_line": record["start_line"],
                    "original_start_line": record["start_line"],
                    "start_side": record["start_side"],
                    "position": record["position"],
                    "original_position": record["position"],
                }
            )
        return out

    # -- teams and permissions -----------------------------------------------------------------

    def team_member(self, login: str, role: str) -> dict[str, Any]:
        return {**self.user(login), "role": role}

    def team_membership(self, team: Team, login: str) -> dict[str, Any]:
        return {
            "url": (
                f"{self.api}/organizations/{self.fake.users.id_of(team.org)}"
                f"/team/{team.id}/memberships/{login}"
            ),
            "role": team.members[login],
            "state": "active",
        }

    def collaborator_permission(self, repo: Repo, login: str, role: str | None) -> dict[str, Any]:
        from .state import LEGACY_PERMISSION, PERMISSION_ROLES

        if role is None:
            # Anyone may read a public repository; nobody else has a role on a private one.
            legacy, role_name = ("none", "none") if repo.private else ("read", "read")
        else:
            legacy, role_name = LEGACY_PERMISSION[role], role
        rank = (
            PERMISSION_ROLES.index(role_name)
            if role_name in PERMISSION_ROLES
            else len(PERMISSION_ROLES)
        )
        user = self.user(login)
        user["permissions"] = {
            "admin": rank <= 0,
            "maintain": rank <= 1,
            "push": rank <= 2,
            "triage": rank <= 3,
            "pull": rank <= 4,
        }
        user["role_name"] = role_name
        return {"permission": legacy, "role_name": role_name, "user": user}


def _tree_sha(commit: Commit) -> str:
    listing = "\n".join(f"{p} {blob_sha(d)}" for p, d in sorted(commit.files.items()))
    return hashlib.sha1(listing.encode()).hexdigest()
