"""`FakeGitHub`: an in-memory GitHub REST API on loopback, held to GitHub's OpenAPI description.

Every request is recorded, checked against tests/fixtures/github/openapi-subset.json
(mismatches land in `validation_errors`), authenticated like GitHub authenticates a GitHub
App, and answered from in-memory state that tests set up with the `add_*` helpers and
assert on afterwards. See README.md in this package for the full interface.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from . import auth
from .diffs import FileChange, tree_changes
from .faults import SECONDARY_RATE_LIMIT_BODY, Faults, Pause
from .openapi import OpenAPISubset, default_subset
from .routes import ROUTES, ApiError, Call, Reply, codeload
from .shapes import Shapes
from .state import (
    PERMISSION_ROLES,
    Commit,
    Ids,
    Installation,
    Pull,
    Repo,
    Team,
    Token,
    Users,
    now_iso,
)
from .tarballs import build_tarball

API_VERSIONS = ("2022-11-28",)
MAX_REQUEST_BODY = 25 * 1024 * 1024
REVIEW_STATES = ("APPROVED", "CHANGES_REQUESTED", "COMMENTED", "DISMISSED", "PENDING")

# Permissions the fake's app is installed with (what a reachdiff installation asks for).
DEFAULT_APP_PERMISSIONS = {
    "checks": "write",
    "contents": "read",
    "issues": "write",
    "metadata": "read",
    "members": "read",
    "pull_requests": "write",
}


# Operations GitHub authenticates with the app's JWT rather than an installation token.
APP_OPERATIONS = frozenset(
    {"apps/create-installation-access-token", "apps/get-authenticated", "apps/list-installations"}
)


class FakeGitHub:
    def __init__(
        self,
        *,
        app_id: int = 424242,
        app_slug: str = "reachdiff",
        app_owner: str = "reachdiff-dev",
        installation_id: int = 31337,
        installation_account: str = "octo-org",
        validate_responses: bool = True,
        spec: OpenAPISubset | None = None,
    ) -> None:
        self.spec = spec or default_subset()
        self.app_id = app_id
        self.app_slug = app_slug
        self.app_owner = app_owner
        self.app_permissions = dict(DEFAULT_APP_PERMISSIONS)
        self.private_key_pem, self.private_key = auth.generate_app_key()
        self._public_key = self.private_key.public_key()
        self.ids = Ids()
        self.users = Users(self.ids)
        self.shapes = Shapes(self)
        self.validate_responses = validate_responses
        # "diff": like GitHub, review comments must target lines inside the pull request's
        # diff hunks. "file": any line of the file (laxer; for tests that need it).
        self.review_comment_scope = "diff"
        # GitHub truncates a recursive tree listing beyond 100,000 entries (or 7 MB).
        self.tree_entry_limit = 100_000
        # Archives by (repository, commit), built once: a commit never changes, and
        # codeload serves archives from a cache too (benchmarks build them before the clock).
        self.archives: dict[tuple[str, str], bytes] = {}

        self._repos: dict[str, Repo] = {}
        self.teams: dict[tuple[str, str], Team] = {}
        self.installations: dict[int, Installation] = {}
        self.tokens: dict[str, Token] = {}
        self.token_issuances = 0
        self.installation_id = installation_id
        self.add_installation(installation_id, account=installation_account)

        # Recorded state tests assert on.
        self.requests: list[dict[str, Any]] = []
        self.validation_errors: list[dict[str, Any]] = []
        self.response_errors: list[dict[str, Any]] = []
        self.check_runs: list[dict[str, Any]] = []
        self.issue_comments: defaultdict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
        self.reviews: list[dict[str, Any]] = []
        self.review_comments: list[dict[str, Any]] = []

        self.faults = Faults()
        self._pauses: list[Pause] = []
        self.codeload_tokens: set[str] = set()
        self._check_suites: dict[tuple[str, str], int] = {}
        self._rate_used: dict[str, int] = defaultdict(int)

        self.app = web.Application(client_max_size=MAX_REQUEST_BODY)
        self.app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner: web.AppRunner | None = None
        self.url = ""

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = self._runner.addresses[0]
        self.url = f"http://{bound[0]}:{bound[1]}"
        return self.url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeGitHub:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @contextlib.contextmanager
    def serve_in_thread(self) -> Iterator[FakeGitHub]:
        """Serve from a background thread's event loop, for synchronous tests and subprocesses."""
        loop = asyncio.new_event_loop()
        started = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(self.start())
            started.set()
            loop.run_forever()

        thread = threading.Thread(target=run, name="fake-github", daemon=True)
        thread.start()
        if not started.wait(10):
            raise RuntimeError("fake GitHub did not start")
        try:
            yield self
        finally:
            asyncio.run_coroutine_threadsafe(self.close(), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            loop.close()

    # -- setup helpers ------------------------------------------------------------------------

    def add_installation(
        self,
        installation_id: int,
        *,
        account: str = "octo-org",
        repositories: list[str] | None = None,
    ) -> Installation:
        """An installation of the app; `repositories` (full names) limits what its tokens see."""
        scope = None if repositories is None else frozenset(r.lower() for r in repositories)
        installation = Installation(installation_id, account, scope)
        self.installations[installation_id] = installation
        return installation

    def add_repo(
        self,
        full_name: str,
        *,
        default_branch: str = "main",
        collaborators: Mapping[str, str] | None = None,
        private: bool = False,
    ) -> dict[str, Any]:
        """A repository. `collaborators` maps login -> role (admin/maintain/write/triage/read)."""
        owner, _, name = full_name.partition("/")
        if not owner or not name or "/" in name:
            raise ValueError(f"not an owner/name: {full_name!r}")
        collab = dict(collaborators or {})
        for login, role in collab.items():
            if role not in PERMISSION_ROLES:
                raise ValueError(f"{login}: role must be one of {PERMISSION_ROLES}, not {role!r}")
            self.users.declare(login)
        self.users.declare(owner)
        repo = Repo(self.ids.next("repo"), owner, name, default_branch, private, collab)
        self._repos[full_name.lower()] = repo
        return self.shapes.repository(repo)

    def repo(self, full_name: str) -> Repo:
        repo = self._repos.get(full_name.lower())
        if repo is None:
            raise KeyError(f"unknown repository {full_name!r}; call add_repo first")
        return repo

    def find_repo(self, full_name: str) -> Repo | None:
        return self._repos.get(full_name.lower())

    def archive(self, full_name: str, sha: str) -> bytes:
        """The ``.tar.gz`` of a commit, as codeload serves it."""
        repo = self.find_repo(full_name)
        if repo is None or sha not in repo.commits:
            raise KeyError(f"{full_name}@{sha}")
        key = (repo.full_name, sha)
        if key not in self.archives:
            commit = repo.commits[sha]
            self.archives[key] = build_tarball(
                repo.owner, repo.name, commit.sha, commit.files, commit.date, commit.gitlinks
            )
        return self.archives[key]

    def add_commit(
        self,
        full_name: str,
        sha: str,
        files: Mapping[str, bytes],
        parents: tuple[str, ...] | list[str] = (),
        *,
        message: str = "commit",
        author: str | None = None,
        date: str | None = None,
        branch: str | None = None,
        gitlinks: Mapping[str, str] | None = None,
        committer: str | None = None,
    ) -> None:
        """A commit whose tree is exactly `files` (path -> bytes) plus `gitlinks` (submodule
        path -> commit sha, mode 160000). The first commit of a repository also becomes the
        tip of its default branch; `branch=` moves a branch."""
        repo = self.repo(full_name)
        if not re.fullmatch(r"[0-9a-f]{40}", sha):
            raise ValueError(f"commit sha must be 40 lowercase hex digits: {sha!r}")
        for parent in parents:
            if parent not in repo.commits:
                raise ValueError(f"parent {parent} of {sha} is not a commit of {full_name}")
        for path, data in files.items():
            if not isinstance(data, bytes):
                raise TypeError(f"{path}: file contents must be bytes")
            if path.startswith("/") or path.endswith("/") or "//" in path or not path:
                raise ValueError(f"not a repository path: {path!r}")
        commit = Commit(
            sha,
            dict(files),
            tuple(parents),
            message,
            author or repo.owner,
            date or now_iso(),
            gitlinks=dict(gitlinks or {}),
            committer=committer,
        )
        repo.commits[sha] = commit
        if branch is not None:
            repo.branches[branch] = sha
        elif repo.default_branch not in repo.branches:
            repo.branches[repo.default_branch] = sha

    def set_branch(self, full_name: str, branch: str, sha: str) -> None:
        repo = self.repo(full_name)
        if sha not in repo.commits:
            raise ValueError(f"{sha} is not a commit of {full_name}")
        repo.branches[branch] = sha

    def add_pull(
        self,
        full_name: str,
        number: int,
        *,
        base_ref: str,
        base_sha: str,
        head_sha: str,
        author: str,
        merge_commit_sha: str | None = None,
        mergeable: bool | None = None,
        head_ref: str | None = None,
        head_repo: str | None = None,
        title: str | None = None,
        body: str | None = None,
        draft: bool = False,
        state: str = "open",
    ) -> dict[str, Any]:
        """An open pull request; returns its `GET /pulls/{number}` representation.

        `head_repo` names the fork a pull request comes from (default: the same repository);
        its commits must still be added to the base repository, as GitHub keeps them there
        under refs/pull/N/head.
        """
        repo = self.repo(full_name)
        for sha in (base_sha, head_sha):
            if sha not in repo.commits:
                raise ValueError(f"{sha} is not a commit of {full_name}; add_commit first")
        if number in repo.pulls:
            raise ValueError(f"{full_name}#{number} exists")
        self.users.declare(author)
        pull = Pull(
            number=number,
            id=self.ids.next("pull"),
            base_ref=base_ref,
            base_sha=base_sha,
            head_ref=head_ref or f"change-{number}",
            head_sha=head_sha,
            head_repo=head_repo or repo.full_name,
            author=author,
            merge_commit_sha=merge_commit_sha,
            mergeable=mergeable,
            title=title or f"Change #{number}",
            body=body,
            draft=draft,
            state=state,
        )
        repo.pulls[number] = pull
        repo.branches.setdefault(base_ref, base_sha)
        if pull.head_repo.lower() == repo.full_name.lower():
            repo.branches[pull.head_ref] = head_sha
        return self.shapes.pull(repo, pull)

    def pull(self, full_name: str, number: int) -> Pull:
        return self.repo(full_name).pulls[number]

    def set_pull_head(
        self,
        full_name: str,
        number: int,
        head_sha: str,
        merge_commit_sha: str | None = None,
        *,
        mergeable: bool | None = None,
    ) -> dict[str, Any]:
        """A push to the pull request's branch; mergeability is unknown again until set."""
        repo = self.repo(full_name)
        if head_sha not in repo.commits:
            raise ValueError(f"{head_sha} is not a commit of {full_name}; add_commit first")
        pull = repo.pulls[number]
        pull.head_sha = head_sha
        pull.merge_commit_sha = merge_commit_sha
        pull.mergeable = mergeable
        pull.updated_at = now_iso()
        if pull.head_repo.lower() == repo.full_name.lower():
            repo.branches[pull.head_ref] = head_sha
        return self.shapes.pull(repo, pull)

    def merge_pull(
        self, full_name: str, number: int, sha: str, files: Mapping[str, bytes] | None = None
    ) -> None:
        """The merge button: commit `sha` (tree `files`, default the head's) with parents
        [base branch tip, head] becomes the base branch's tip; the pull request is merged
        and closed. Other pull requests keep their (now stale) test merge commits, as on
        GitHub until it recomputes them."""
        repo = self.repo(full_name)
        pull = repo.pulls[number]
        tip = repo.branches[pull.base_ref]
        tree = dict(files) if files is not None else repo.commits[pull.head_sha].files
        self.add_commit(
            full_name, sha, tree, parents=(tip, pull.head_sha), message=f"Merge #{number}"
        )
        repo.branches[pull.base_ref] = sha
        pull.merged, pull.state = True, "closed"
        pull.merged_at = pull.closed_at = now_iso()
        pull.updated_at = now_iso()

    def update_pull(self, full_name: str, number: int, **fields: Any) -> dict[str, Any]:
        """Change other pull request fields (base_sha, base_ref, draft, state, title, body...)."""
        repo = self.repo(full_name)
        pull = repo.pulls[number]
        for key, value in fields.items():
            if not hasattr(pull, key) or key in ("number", "id"):
                raise AttributeError(f"pull requests have no settable field {key!r}")
            setattr(pull, key, value)
        if fields.get("state") == "closed" and pull.closed_at is None:
            pull.closed_at = now_iso()
        pull.updated_at = now_iso()
        return self.shapes.pull(repo, pull)

    def add_foreign_check_run(
        self,
        full_name: str,
        head_sha: str,
        name: str,
        conclusion: str,
        *,
        app_id: int = 15368,
        app_slug: str = "github-actions",
    ) -> dict[str, Any]:
        """A completed check run another app made (by default a workflow's, which may use
        any name): branch protection pinned to our app ignores it, and so must the bot."""
        repo = self.repo(full_name)
        now = now_iso()
        run: dict[str, Any] = {
            "id": self.ids.next("check_run"),
            "repo": repo.full_name,
            "name": name,
            "head_sha": head_sha,
            "status": "completed",
            "conclusion": conclusion,
            "started_at": now,
            "completed_at": now,
            "details_url": None,
            "external_id": None,
            "output": {"title": "forged", "summary": "forged", "text": None, "annotations": []},
            "actions": [],
            "check_suite_id": self.check_suite_id(repo.full_name, head_sha),
            "history": [],
            "foreign_app": {"id": app_id, "slug": app_slug},
        }
        self.check_runs.append(run)
        return run

    def add_issue_comment(
        self, full_name: str, number: int, *, user: str, body: str, via_app: bool = False
    ) -> dict[str, Any]:
        """A comment someone else wrote (`via_app`: `performed_via_github_app` is this app,
        as for a user acting through it); the bot's own come from its API calls."""
        repo = self.repo(full_name)
        now = now_iso()
        record = {
            "id": self.ids.next("issue_comment"),
            "repo": repo.full_name,
            "issue_number": number,
            "body": body,
            "user": user,
            "via_app": via_app,
            "created_at": now,
            "updated_at": now,
            "history": [],
        }
        self.issue_comments[(repo.full_name, number)].append(record)
        return record

    def add_review(
        self,
        full_name: str,
        number: int,
        *,
        user: str,
        state: str,
        commit_id: str,
        body: str = "",
    ) -> dict[str, Any]:
        """A review by someone else (state APPROVED, CHANGES_REQUESTED, COMMENTED, DISMISSED)."""
        if state not in REVIEW_STATES:
            raise ValueError(f"state must be one of {REVIEW_STATES}")
        repo = self.repo(full_name)
        if number not in repo.pulls:
            raise KeyError(f"{full_name}#{number} does not exist")
        self.users.declare(user)
        record = self._new_review(repo, number, user, state, commit_id, body)
        return self.shapes.review(record)

    def _new_review(
        self, repo: Repo, number: int, user: str, state: str, commit_id: str | None, body: str
    ) -> dict[str, Any]:
        record = {
            "id": self.ids.next("review"),
            "repo": repo.full_name,
            "pull_number": number,
            "user": user,
            "state": state,
            "body": body,
            "commit_id": commit_id,
            "submitted_at": None if state == "PENDING" else now_iso(),
            "event": None,
        }
        self.reviews.append(record)
        return record

    def dismiss_review(
        self, full_name: str, number: int, review_id: int, message: str = ""
    ) -> dict[str, Any]:
        for record in self.reviews:
            if (
                record["id"] == review_id
                and record["pull_number"] == number
                and (record["repo"].lower() == full_name.lower())
            ):
                record["state"] = "DISMISSED"
                record["dismissal_message"] = message
                return self.shapes.review(record)
        raise KeyError(f"no review {review_id} on {full_name}#{number}")

    def add_team(self, org: str, slug: str, members: list[str] | Mapping[str, str]) -> None:
        """A team of `org`; `members` is a list of logins or login -> "member"/"maintainer"."""
        roles = dict(members) if isinstance(members, Mapping) else dict.fromkeys(members, "member")
        for login, role in roles.items():
            if role not in ("member", "maintainer"):
                raise ValueError(f"{login}: team role must be member or maintainer")
            self.users.declare(login)
        self.users.declare(org)
        self.users.organizations.add(org.lower())
        name = slug.replace("-", " ").title()
        self.teams[(org.lower(), slug.lower())] = Team(
            org, slug, self.ids.next("team"), name, roles
        )

    def add_user(self, login: str) -> None:
        """Make a login exist (for the collaborator-permission endpoint, which 404s otherwise)."""
        self.users.declare(login)

    # -- auth ---------------------------------------------------------------------------------

    def expire_tokens(self) -> None:
        """Expire every installation token issued so far (to test the bot's refresh)."""
        past = datetime.now(UTC) - timedelta(seconds=1)
        for token in self.tokens.values():
            token.expires_at = past

    def app_jwt(self, *, iat: int = -60, exp: int = 540, iss: Any = None) -> str:
        """A JWT for this app, `iat`/`exp` in seconds from now (defaults pass GitHub's rules)."""
        return auth.make_app_jwt(self.private_key, self.app_id, iat=iat, exp=exp, iss=iss)

    def issue_token(self, installation_id: int) -> Token:
        token = Token(
            auth.new_installation_token(),
            installation_id,
            datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=auth.TOKEN_LIFETIME),
        )
        self.tokens[token.token] = token
        self.token_issuances += 1
        return token

    # -- fault injection ----------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        path_pattern: str | re.Pattern[str],
        status: int = 502,
        times: int = 1,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
    ) -> None:
        """The next `times` requests matching `method` ("*" for any) and `path_pattern` (a
        glob over the path, e.g. "/repos/*/check-runs*", or a compiled regex) get `status`."""
        self.faults.add(method, path_pattern, status, times, dict(headers or {}), body)

    def pause_next(self, method: str, path_pattern: str | re.Pattern[str]) -> Pause:
        """Hold the next request matching `method`/`path_pattern` until `release.set()`;
        `arrived` is set when it comes. Patterns as for `fail_next`."""
        pause = Pause(method.upper(), path_pattern)
        self._pauses.append(pause)
        return pause

    def fail_next_secondary_rate_limit(
        self, method: str, path_pattern: str | re.Pattern[str], times: int = 1, retry_after: int = 1
    ) -> None:
        self.fail_next(
            method,
            path_pattern,
            403,
            times,
            headers={"retry-after": str(retry_after), "x-ratelimit-remaining": "4990"},
            body=SECONDARY_RATE_LIMIT_BODY,
        )

    # -- queries used by routes and shapes ----------------------------------------------------

    @property
    def bot_login(self) -> str:
        return f"{self.app_slug}[bot]"

    def pull_changes(self, repo: Repo, pull: Pull, head_sha: str | None = None) -> list[FileChange]:
        """The pull request's files: merge base of base and head, against head."""
        head = head_sha or pull.head_sha
        merge_base = repo.merge_base(pull.base_sha, head)
        base_files = repo.commits[merge_base].files if merge_base else {}
        return tree_changes(base_files, repo.commits[head].files)

    def check_suite_id(self, full_name: str, head_sha: str) -> int:
        key = (full_name.lower(), head_sha)
        if key not in self._check_suites:
            self._check_suites[key] = self.ids.next("check_suite")
        return self._check_suites[key]

    def comments_on(self, full_name: str, number: int) -> list[dict[str, Any]]:
        return list(self.issue_comments.get((self.repo(full_name).full_name, number), []))

    def check_runs_for(self, full_name: str, head_sha: str | None = None) -> list[dict[str, Any]]:
        name = self.repo(full_name).full_name
        return [
            r for r in self.check_runs if r["repo"] == name and head_sha in (None, r["head_sha"])
        ]

    # -- request handling ---------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        query = list(request.query.items())
        parsed: Any = None
        bad_json = False
        if raw:
            try:
                parsed = json.loads(raw)
            except (ValueError, UnicodeDecodeError):
                bad_json = True
        record: dict[str, Any] = {
            "method": request.method,
            "path": request.path,
            "query": dict(query),
            "json": parsed,
            "headers": headers,
            "operation": None,
            "status": None,
            "time": time.time(),
        }
        self.requests.append(record)
        for pause in self._pauses:
            if pause.matches(request.method, request.path):
                self._pauses.remove(pause)
                pause.arrived.set()
                await pause.release.wait()
                break

        if request.path.startswith("/_codeload/"):
            record["operation"] = "codeload"
            response = self._to_response(
                self._guard(lambda: codeload(self, request.path, dict(query)))
            )
            record["status"] = response.status
            return response

        found = self.spec.match(request.method, request.path)
        record["operation"] = found.operation.operation_id if found else None
        problems = self.spec.validate_request(
            request.method,
            request.path,
            query,
            headers,
            parsed,
            has_body=bool(raw) and not bad_json,
        )
        if bad_json:
            problems.append(f"{request.method} {request.path}: body is not valid JSON")
        if "user-agent" not in headers:
            problems.append(
                f"{request.method} {request.path}: no User-Agent header (GitHub rejects these)"
            )
        version = headers.get("x-github-api-version")
        if version is not None and version not in API_VERSIONS:
            problems.append(
                f"{request.method} {request.path}: unsupported X-GitHub-Api-Version {version!r}"
            )
        if problems:
            self.validation_errors.append(
                {
                    "method": request.method,
                    "path": request.path,
                    "operation": record["operation"],
                    "problems": problems,
                }
            )

        fault = self.faults.take(request.method, request.path)
        if fault is not None:
            data, content_type = fault.payload()
            response = web.Response(status=fault.status, body=data)
            response.headers.update(self._standard_headers(None))
            response.headers["Content-Type"] = content_type
            response.headers.update(fault.headers)
            record["status"] = fault.status
            return response

        token: Token | None = None

        def dispatch() -> Reply:
            nonlocal token
            if found is None:
                raise ApiError(404, "Not Found")
            if "user-agent" not in headers:
                raise ApiError(
                    403,
                    "Request forbidden by administrative rules. Please make sure your request "
                    "has a User-Agent header.",
                )
            if version is not None and version not in API_VERSIONS:
                raise ApiError(400, f"API version {version!r} is not supported.")
            installation = None
            if found.operation.operation_id in APP_OPERATIONS:
                self._authenticate_app(headers.get("authorization"))
            else:
                installation, token = self._authenticate_installation(headers.get("authorization"))
            path_problems = [p for p in problems if "path parameter" in p]
            if path_problems:
                raise ApiError(404, "Not Found")
            if bad_json:
                raise ApiError(400, "Problems parsing JSON")
            body_problems = [
                p for p in problems if ": body " in p or "request body is required" in p
            ]
            if body_problems:
                raise ApiError(422, "Invalid request.\n\n" + "\n".join(body_problems))
            call = Call(
                method=request.method,
                path=request.path,
                operation=found.operation.operation_id,
                params=dict(found.path_params),
                query=dict(query),
                json=parsed,
                headers=headers,
                installation=installation,
                token=token,
            )
            return ROUTES[found.operation.operation_id](self, call)

        reply = self._guard(dispatch)
        response = self._to_response(reply, token.token if token else None)
        record["status"] = response.status
        if self.validate_responses and isinstance(reply.body, (dict, list)) and found is not None:
            response_problems = self.spec.validate_response(
                request.method, request.path, reply.status, reply.body
            )
            if response_problems:
                self.response_errors.append(
                    {"method": request.method, "path": request.path, "problems": response_problems}
                )
        return response

    def _guard(self, fn: Any) -> Reply:
        try:
            reply: Reply = fn()
        except ApiError as error:
            reply = error.reply()
        return reply

    def _authenticate_app(self, header: str | None) -> None:
        credential = auth.bearer(header)
        if credential is None:
            raise ApiError(401, "A JSON web token could not be decoded")
        scheme, token = credential
        if scheme != "bearer":
            raise ApiError(401, "A JSON web token could not be decoded")
        problem = auth.verify_app_jwt(token, self._public_key, self.app_id)
        if problem is not None:
            raise ApiError(401, problem)

    def _authenticate_installation(self, header: str | None) -> tuple[Installation, Token]:
        credential = auth.bearer(header)
        if credential is None:
            raise ApiError(401, "Requires authentication")
        scheme, value = credential
        token = self.tokens.get(value) if scheme in ("token", "bearer") else None
        if token is None or token.expires_at <= datetime.now(UTC):
            raise ApiError(401, "Bad credentials")
        self._rate_used[value] += 1
        return self.installations[token.installation_id], token

    def _standard_headers(self, token: str | None) -> dict[str, str]:
        used = self._rate_used[token] if token else 0
        return {
            "X-GitHub-Request-Id": uuid.uuid4().hex[:20].upper(),
            "X-GitHub-Api-Version-Selected": API_VERSIONS[0],
            "X-GitHub-Media-Type": "github.v3; format=json",
            "X-RateLimit-Limit": "5000",
            "X-RateLimit-Remaining": str(max(0, 5000 - used)),
            "X-RateLimit-Used": str(used),
            "X-RateLimit-Reset": str(int(time.time()) + 3600),
            "X-RateLimit-Resource": "core",
        }

    def _to_response(self, reply: Reply, token: str | None = None) -> web.Response:
        headers = CIMultiDict(self._standard_headers(token))
        if isinstance(reply.body, (bytes, str)):
            body = reply.body.encode() if isinstance(reply.body, str) else reply.body
            headers["Content-Type"] = reply.content_type or "application/octet-stream"
        elif reply.body is None:
            body = b""
        else:
            body = json.dumps(reply.body).encode()
            headers["Content-Type"] = reply.content_type or "application/json; charset=utf-8"
        headers.update(reply.headers)
        return web.Response(status=reply.status, body=body, headers=headers)

    def new_codeload_token(self) -> str:
        token = secrets.token_urlsafe(24)
        self.codeload_tokens.add(token)
        return token


@contextlib.asynccontextmanager
async def running_fake(**kwargs: Any) -> AsyncIterator[FakeGitHub]:
    fake = FakeGitHub(**kwargs)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.close()
