"""Who may approve a widening, answered from the repository settings and GitHub.

With approvers configured, a reviewer is authorized when they are one of the listed users
or an *active* member of one of the listed teams (a pending invitation does not count).
Without, anyone with write access (write, maintain or admin) is. Lookups happen only for
the reviewers whose approval could count (``approvals.reviewers_to_check``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from bot.github import rest as github
from bot.github.client import GitHubClient
from bot.review.settings import RepoSettings

WRITE_ROLES = frozenset({"admin", "maintain", "write"})


def has_write_access(permission: Mapping[str, Any] | None) -> bool:
    """From ``GET .../collaborators/{u}/permission``: ``role_name`` is the exact role,
    ``permission`` the legacy one (maintain shows as write there)."""
    if permission is None:
        return False
    role = str(permission.get("role_name") or "").lower()
    legacy = str(permission.get("permission") or "").lower()
    return role in WRITE_ROLES or legacy in ("admin", "write")


def is_active_member(membership: Mapping[str, Any] | None) -> bool:
    return membership is not None and membership.get("state") == "active"


async def authorized_reviewers(
    gh: GitHubClient, repo: github.Repository, settings: RepoSettings, logins: Iterable[str]
) -> set[str]:
    authorized: set[str] = set()
    for login in sorted(set(logins)):
        if await _is_authorized(gh, repo, settings, login):
            authorized.add(login)
    return authorized


async def _is_authorized(
    gh: GitHubClient, repo: github.Repository, settings: RepoSettings, login: str
) -> bool:
    if not settings.restricts_approvers:
        return has_write_access(await github.get_collaborator_permission(gh, repo, login))
    if settings.is_approver_user(login):
        return True
    for team in settings.approver_teams:
        org, _, slug = team.partition("/")
        if is_active_member(await github.get_team_membership(gh, org, slug, login)):
            return True
    return False
