"""GitHub App authentication: the App's JWT and per-installation access tokens.

Invariants:
- The JWT's ``iat`` is 60 s in the past, so a server clock slightly ahead of GitHub's does
  not get "JWT issued in the future"; its ``exp`` stays within GitHub's 10-minute maximum.
- An installation token is reused until it is ``renew_before`` seconds from expiry, then
  renewed; concurrent callers for one installation share one renewal.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

import jwt

CLOCK_SKEW = 60
# GitHub rejects an ``exp`` more than 10 minutes after the moment it checks the token.
JWT_LIFETIME = 9 * 60


def app_jwt(app_id: str, private_key: str, *, now: float | None = None) -> str:
    issued = int(time.time() if now is None else now) - CLOCK_SKEW
    payload = {"iat": issued, "exp": issued + CLOCK_SKEW + JWT_LIFETIME, "iss": app_id}
    return jwt.encode(payload, private_key, algorithm="RS256")


@dataclass(frozen=True, slots=True)
class InstallationToken:
    token: str
    expires_at: float  # epoch seconds


def parse_token_response(data: object) -> InstallationToken:
    """Read GitHub's ``{"token": ..., "expires_at": "2016-07-11T22:14:10Z"}`` answer."""
    if not isinstance(data, dict):
        raise ValueError("installation token response is not an object")
    token, expires = data.get("token"), data.get("expires_at")
    if not isinstance(token, str) or not isinstance(expires, str):
        raise ValueError("installation token response lacks token or expires_at")
    return InstallationToken(token, datetime.fromisoformat(expires).timestamp())


# Exchanges an App JWT for a token of one installation (an HTTP call, injected).
Exchange = Callable[[str, int], Awaitable[InstallationToken]]


class InstallationTokens:
    """A cache of installation tokens, keyed by installation id."""

    def __init__(
        self,
        app_id: str,
        private_key: str,
        exchange: Exchange,
        *,
        renew_before: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._app_id = app_id
        self._private_key = private_key
        self._exchange = exchange
        self._renew_before = renew_before
        self._clock = clock
        self._tokens: dict[int, InstallationToken] = {}
        self._locks: dict[int, asyncio.Lock] = {}

    def jwt(self) -> str:
        return app_jwt(self._app_id, self._private_key, now=self._clock())

    async def token(self, installation_id: int) -> str:
        cached = self._fresh(installation_id)
        if cached is not None:
            return cached
        lock = self._locks.setdefault(installation_id, asyncio.Lock())
        async with lock:
            cached = self._fresh(installation_id)  # another caller may have renewed it
            if cached is not None:
                return cached
            fresh = await self._exchange(self.jwt(), installation_id)
            self._tokens[installation_id] = fresh
            return fresh.token

    async def renew(self, installation_id: int, refused: str) -> str:
        """A new token after GitHub refused ``refused`` (revoked, or expired early)."""
        if self._fresh(installation_id) == refused:
            self._tokens.pop(installation_id, None)
        return await self.token(installation_id)

    def _fresh(self, installation_id: int) -> str | None:
        cached = self._tokens.get(installation_id)
        if cached is None or cached.expires_at - self._clock() <= self._renew_before:
            return None
        return cached.token
