"""In-memory model of the GitHub objects the fake serves: repositories, commits, pulls, teams.

Records that tests assert on (check runs, comments, reviews) are plain dicts kept by
`FakeGitHub`; this module holds the structured objects those records point into.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import ClassVar

PERMISSION_ROLES = ("admin", "maintain", "write", "triage", "read")

# The legacy `permission` field of the collaborator-permission endpoint only knows four
# values; `role_name` carries the fine-grained role.
LEGACY_PERMISSION = {
    "admin": "admin",
    "maintain": "write",
    "write": "write",
    "triage": "read",
    "read": "read",
}


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Ids:
    """Monotonic ids per kind, in distinct ranges so that mixing them up shows in tests."""

    _BASES: ClassVar[dict[str, int]] = {
        "user": 1000,
        "repo": 500000,
        "pull": 90000000,
        "check_run": 4000000000,
        "check_suite": 5000000000,
        "issue_comment": 1100000000,
        "review": 2200000000,
        "review_comment": 3300000000,
        "team": 7000,
    }

    def __init__(self) -> None:
        self._counters = {kind: itertools.count(base + 1) for kind, base in self._BASES.items()}

    def next(self, kind: str) -> int:
        return next(self._counters[kind])


@dataclass
class Commit:
    sha: str
    files: dict[str, bytes]
    parents: tuple[str, ...]
    message: str
    author: str
    date: str
    # Submodules: path -> the commit the gitlink (mode 160000) records. Archives leave their
    # content out; only an empty directory marks where they are.
    gitlinks: dict[str, str] = field(default_factory=dict)
    committer: str | None = None  # GitHub login of the committer; None: same as author


@dataclass
class Pull:
    number: int
    id: int
    base_ref: str
    base_sha: str
    head_ref: str
    head_sha: str
    head_repo: str  # full name; differs from the base repository for pulls from forks
    author: str
    merge_commit_sha: str | None
    mergeable: bool | None
    title: str
    body: str | None
    draft: bool = False
    state: str = "open"
    merged: bool = False
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)
    closed_at: str | None = None
    merged_at: str | None = None


@dataclass
class Repo:
    id: int
    owner: str
    name: str
    default_branch: str
    private: bool
    collaborators: dict[str, str]  # login -> role (admin, maintain, write, triage, read)
    branches: dict[str, str] = field(default_factory=dict)
    commits: dict[str, Commit] = field(default_factory=dict)
    pulls: dict[int, Pull] = field(default_factory=dict)
    created_at: str = field(default_factory=now_iso)

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    def resolve(self, ref: str) -> str | None:
        """A commit sha for a full sha, branch name, `refs/heads/<branch>` or unique prefix."""
        if ref in self.commits:
            return ref
        # GitHub's commit endpoints also take `heads/<branch>` (and `refs/heads/<branch>`).
        branch = ref.removeprefix("refs/").removeprefix("heads/")
        if branch in self.branches:
            return self.branches[branch]
        pull_ref = ref.removeprefix("refs/")
        if pull_ref.startswith("pull/") and pull_ref.endswith("/head"):
            number = pull_ref[len("pull/") : -len("/head")]
            if number.isdigit() and int(number) in self.pulls:
                return self.pulls[int(number)].head_sha
        if len(ref) >= 4 and all(c in "0123456789abcdef" for c in ref):
            found = [sha for sha in self.commits if sha.startswith(ref)]
            if len(found) == 1:
                return found[0]
        return None

    def ancestors(self, sha: str) -> dict[str, int]:
        """Every commit reachable from `sha` (itself included) -> distance in edges."""
        seen: dict[str, int] = {}
        queue: deque[tuple[str, int]] = deque([(sha, 0)])
        while queue:
            current, depth = queue.popleft()
            if current in seen or current not in self.commits:
                continue
            seen[current] = depth
            for parent in self.commits[current].parents:
                queue.append((parent, depth + 1))
        return seen

    def merge_base(self, a: str, b: str) -> str | None:
        """git merge-base: a best common ancestor (one not an ancestor of another)."""
        from_a, from_b = self.ancestors(a), self.ancestors(b)
        common = from_a.keys() & from_b.keys()
        if not common:
            return None
        dominated: set[str] = set()
        for sha in common:
            dominated |= set(self.ancestors(sha)) - {sha}
        best = sorted(common - dominated, key=lambda s: (from_a[s] + from_b[s], s))
        return best[0]

    def only_in(self, head: str, base: str) -> list[str]:
        """Commits reachable from head but not from base, oldest first (GitHub's order)."""
        exclude = self.ancestors(base)
        reach = self.ancestors(head)
        return sorted((s for s in reach if s not in exclude), key=lambda s: -reach[s])


@dataclass
class Team:
    org: str
    slug: str
    id: int
    name: str
    members: dict[str, str]  # login -> "member" | "maintainer"


@dataclass
class Installation:
    id: int
    account: str
    repositories: frozenset[str] | None  # lower-cased full names; None: all repositories


@dataclass
class Token:
    token: str
    installation_id: int
    expires_at: datetime
    repositories: frozenset[str] | None = None  # lower-cased full names; None: installation's


class Users:
    """Logins the fake has heard of, with stable ids; `[bot]` logins are of type Bot."""

    def __init__(self, ids: Ids) -> None:
        self._ids = ids
        self._by_login: dict[str, int] = {}
        self._declared: set[str] = set()
        self.organizations: set[str] = set()

    def declare(self, login: str) -> None:
        """A login that exists on this GitHub (ids are handed out to any login shown)."""
        self._declared.add(login.lower())
        self.id_of(login)

    def id_of(self, login: str) -> int:
        key = login.lower()
        if key not in self._by_login:
            self._by_login[key] = self._ids.next("user")
        return self._by_login[key]

    def type_of(self, login: str) -> str:
        if login.endswith("[bot]"):
            return "Bot"
        if login.lower() in self.organizations:
            return "Organization"
        return "User"

    def known(self, login: str) -> bool:
        return login.lower() in self._declared

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._declared))


def lookup(table: Mapping[str, Repo], full_name: str) -> Repo | None:
    # GitHub matches owner and repository names case-insensitively.
    return table.get(full_name.lower())
