"""The HTTP client for GitHub's REST API: gidgethub plus bounded retries and raw downloads.

Retries happen for answers that mean "try again later": 5xx, and rate limits (a 403 or 429
with ``retry-after``, a "secondary rate limit" message, or an exhausted primary limit whose
reset is near). ``retry-after`` is honoured; every wait is capped and so is the number of
attempts, so a failing GitHub ends a review with an error instead of hanging it.
"""

from __future__ import annotations

import http
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import gidgethub
import gidgethub.aiohttp
from gidgethub import sansio

log = logging.getLogger(__name__)

USER_AGENT = "reachdiff"
# Pin the REST API version so that GitHub's changes reach us only when we opt in.
API_VERSION = "2022-11-28"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 5
    max_wait: float = 60.0
    base_backoff: float = 0.5


def retry_delay(
    status: int,
    headers: Mapping[str, str],
    message: str,
    attempt: int,
    policy: RetryPolicy,
    *,
    now: float | None = None,
) -> float | None:
    """Seconds to wait before attempt ``attempt + 1``, or None when not to retry."""
    if attempt >= policy.max_attempts:
        return None
    retry_after = headers.get("retry-after")
    if status in (403, 429) and retry_after is not None:
        try:
            wait = float(retry_after)
        except ValueError:
            return None
    elif status in (403, 429) and "secondary rate limit" in message.lower():
        # GitHub: without retry-after, wait at least a minute before retrying.
        wait = 60.0
    elif status in (403, 429) and headers.get("x-ratelimit-remaining") == "0":
        reset = headers.get("x-ratelimit-reset", "")
        if not reset.isdigit():
            return None
        wait = int(reset) - (time.time() if now is None else now) + 1
    elif status >= 500:
        wait = policy.base_backoff * 2 ** (attempt - 1)
    else:
        return None
    wait = max(wait, 0.0)
    return wait if wait <= policy.max_wait else None


class DownloadTooLarge(Exception):
    pass


# Given the token GitHub refused, fetches a fresh installation token.
TokenRenewal = Callable[[str], Awaitable[str]]


class GitHubClient(gidgethub.aiohttp.GitHubAPI):
    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        oauth_token: str | None = None,
        base_url: str = sansio.DOMAIN,
        retry: RetryPolicy = RetryPolicy(),
        renew_token: TokenRenewal | None = None,
    ) -> None:
        super().__init__(session, USER_AGENT, oauth_token=oauth_token, base_url=base_url)
        self.retry = retry
        self._renew_token = renew_token
        self._renewed = False

    async def _request(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes = b""
    ) -> tuple[int, Mapping[str, str], bytes]:
        sent = {**headers, "x-github-api-version": API_VERSION}
        if self.oauth_token is not None and "authorization" in sent:
            # gidgethub builds headers once per call; a renewed token must reach the retry.
            sent["authorization"] = f"token {self.oauth_token}"
        return await super()._request(method, url, sent, body)

    async def handle_rate_limit_error(
        self,
        *,
        method: str,
        url: str,
        exception: gidgethub.HTTPException,
        attempt: int,
    ) -> bool:
        refused = self.oauth_token
        if int(exception.status_code) == 401 and self._renew_token and refused is not None:
            if self._renewed:
                return False
            # Revoked or expired early (the installation was suspended and restored, say).
            self._renewed = True
            self.oauth_token = await self._renew_token(refused)
            return True
        message = " ".join(str(a) for a in exception.args[1:])
        headers = exception.headers or {}
        wait = retry_delay(int(exception.status_code), headers, message, attempt, self.retry)
        if wait is None:
            return False
        log.warning(
            "GitHub answered %s to %s %s; retry %d in %.1fs",
            int(exception.status_code),
            method,
            url,
            attempt,
            wait,
        )
        await self.sleep(wait)
        return True

    async def download(
        self,
        url: str,
        url_vars: Mapping[str, Any] | None = None,
        *,
        max_bytes: int,
        accept: str = sansio.accept_format(),
    ) -> bytes:
        """GET a binary resource (a tarball, a file's raw bytes), following GitHub's
        redirect to the archive host.

        gidgethub decodes every body as text or JSON, so these take this separate path.
        The body is read in chunks and abandoned once it exceeds ``max_bytes``.
        """
        full_url = sansio.format_url(url, url_vars, base_url=self.base_url)
        headers = sansio.create_headers(USER_AGENT, accept=accept, oauth_token=self.oauth_token)
        headers["x-github-api-version"] = API_VERSION
        attempt = 0
        while True:
            attempt += 1
            async with self._session.get(full_url, headers=headers) as response:
                if response.status == 200:
                    return await _read_bounded(response, max_bytes)
                body = await response.read()
                message = body.decode("utf-8", "replace")[:500]
                wait = retry_delay(response.status, response.headers, message, attempt, self.retry)
                if wait is None:
                    sansio.decipher_response(response.status, response.headers, body)
                    raise gidgethub.HTTPException(
                        http.HTTPStatus(response.status)
                    )  # an unexpected 2xx
            log.warning("GitHub answered %s to GET %s; retry in %.1fs", response.status, url, wait)
            await self.sleep(wait)


async def _read_bounded(response: aiohttp.ClientResponse, max_bytes: int) -> bytes:
    if response.content_length is not None and response.content_length > max_bytes:
        raise DownloadTooLarge(f"archive is {response.content_length} bytes, limit {max_bytes}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(1 << 16):
        size += len(chunk)
        if size > max_bytes:
            raise DownloadTooLarge(f"archive exceeds the limit of {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
