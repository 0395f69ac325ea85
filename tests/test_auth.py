"""The App JWT and the per-installation token cache."""

from __future__ import annotations

import asyncio
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from bot.app.context import BotContext
from bot.app.server import BOT, make_app
from bot.github.auth import (
    CLOCK_SKEW,
    InstallationToken,
    InstallationTokens,
    app_jwt,
    parse_token_response,
)
from bot.github.rest import Repository, get_collaborator_permission
from tests.botharness import settings_for
from tests.fakegithub.server import FakeGitHub
from tests.test_config import rsa_pem

NOW = 1_700_000_000.0


def public_key() -> bytes:
    private = serialization.load_pem_private_key(rsa_pem().encode(), password=None)
    return private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def test_jwt_is_issued_a_minute_in_the_past_and_expires_within_ten_minutes() -> None:
    token = app_jwt("424242", rsa_pem(), now=NOW)
    claims = jwt.decode(
        token,
        public_key(),
        algorithms=["RS256"],
        options={"verify_exp": False, "verify_iat": False},
    )
    assert claims["iss"] == "424242"
    assert claims["iat"] == NOW - CLOCK_SKEW
    assert NOW < claims["exp"] <= NOW + 600
    assert jwt.get_unverified_header(token)["alg"] == "RS256"


def test_jwt_verifies_now_with_a_real_clock() -> None:
    claims = jwt.decode(app_jwt("7", rsa_pem()), public_key(), algorithms=["RS256"])
    assert claims["iss"] == "7"


def test_token_response_is_parsed() -> None:
    token = parse_token_response({"token": "ghs_x", "expires_at": "2023-11-14T22:13:20Z"})
    assert token == InstallationToken("ghs_x", NOW)


@pytest.mark.parametrize(
    "data", [None, [], {"token": "x"}, {"expires_at": "2023-11-14T22:13:20Z"}, {"token": 1}]
)
def test_malformed_token_response_is_an_error(data: object) -> None:
    with pytest.raises(ValueError):
        parse_token_response(data)


class Exchanges:
    """A stand-in for GitHub's token endpoint, with a controllable clock."""

    def __init__(self, lifetime: float = 3600.0) -> None:
        self.now = NOW
        self.lifetime = lifetime
        self.calls: list[tuple[str, int]] = []
        self.gate: asyncio.Event | None = None

    def clock(self) -> float:
        return self.now

    async def __call__(self, app_jwt: str, installation_id: int) -> InstallationToken:
        self.calls.append((app_jwt, installation_id))
        if self.gate is not None:
            await self.gate.wait()
        return InstallationToken(
            f"tok-{installation_id}-{len(self.calls)}", self.now + self.lifetime
        )


def tokens(exchange: Exchanges) -> InstallationTokens:
    return InstallationTokens("424242", rsa_pem(), exchange, renew_before=300, clock=exchange.clock)


async def test_token_is_cached_per_installation() -> None:
    exchange = Exchanges()
    cache = tokens(exchange)
    assert await cache.token(1) == "tok-1-1"
    assert await cache.token(1) == "tok-1-1"
    assert await cache.token(2) == "tok-2-2"
    assert [i for _, i in exchange.calls] == [1, 2]
    # The exchange is authenticated with the App's JWT.
    claims = jwt.decode(
        exchange.calls[0][0],
        public_key(),
        algorithms=["RS256"],
        options={"verify_exp": False, "verify_iat": False},
    )
    assert claims["iss"] == "424242"


async def test_token_is_renewed_before_it_expires() -> None:
    exchange = Exchanges(lifetime=3600)
    cache = tokens(exchange)
    assert await cache.token(1) == "tok-1-1"
    exchange.now += 3600 - 301  # 301 s left: still good
    assert await cache.token(1) == "tok-1-1"
    exchange.now += 2  # 299 s left: inside the renewal margin
    assert await cache.token(1) == "tok-1-2"


async def test_concurrent_callers_share_one_renewal() -> None:
    exchange = Exchanges()
    exchange.gate = asyncio.Event()
    cache = tokens(exchange)
    waiting = [asyncio.create_task(cache.token(5)) for _ in range(5)]
    await asyncio.sleep(0)
    exchange.gate.set()
    assert await asyncio.gather(*waiting) == ["tok-5-1"] * 5
    assert len(exchange.calls) == 1


async def test_refused_token_is_renewed_once() -> None:
    exchange = Exchanges()
    cache = tokens(exchange)
    refused = await cache.token(1)
    assert await cache.renew(1, refused) == "tok-1-2"
    # A second caller that saw the same refusal gets the renewed token, not a third one.
    assert await cache.renew(1, refused) == "tok-1-2"
    assert len(exchange.calls) == 2


async def test_a_token_github_refuses_is_renewed_and_the_call_retried(
    fake_github: FakeGitHub, aiohttp_client: Any
) -> None:
    client = await aiohttp_client(make_app(settings_for(fake_github)))
    bot: BotContext = client.app[BOT]
    fake_github.add_repo("octo-org/gitops")
    gh = await bot.client(fake_github.installation_id)
    first = gh.oauth_token
    await get_collaborator_permission(gh, Repository("octo-org", "gitops"), "octo-org")
    assert fake_github.token_issuances == 1

    fake_github.expire_tokens()  # GitHub now answers 401 Bad credentials
    await get_collaborator_permission(gh, Repository("octo-org", "gitops"), "octo-org")
    assert fake_github.token_issuances == 2
    assert gh.oauth_token != first
    statuses = [r["status"] for r in fake_github.requests if "collaborators" in r["path"]]
    assert statuses == [200, 401, 200]
    # Later clients get the renewed token from the cache.
    assert (await bot.client(fake_github.installation_id)).oauth_token == gh.oauth_token
    assert fake_github.validation_errors == []
