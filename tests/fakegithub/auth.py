"""GitHub App authentication as GitHub checks it: app JWTs and installation tokens.

Rules, from GitHub's "Generating a JSON Web Token (JWT) for a GitHub App":
- the JWT is signed RS256 with the app's private key and `iss` is the app's id;
- `iat` must be in the past (GitHub suggests 60 s back, for clock drift);
- `exp` must be in the future and at most 10 minutes from now.
An installation access token then authenticates every other call and expires after 1 hour.
"""

from __future__ import annotations

import secrets
import string
import time
from functools import cache
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

JWT_MAX_LIFETIME = 10 * 60
TOKEN_LIFETIME = 60 * 60


@cache
def _shared_key() -> rsa.RSAPrivateKey:
    # Key generation costs ~0.1 s; one key per test process keeps the suite fast.
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def generate_app_key(*, fresh: bool = False) -> tuple[str, rsa.RSAPrivateKey]:
    """(PEM of the private key in GitHub's download format (PKCS#1), the key object)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048) if fresh else _shared_key()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    return pem, key


def make_app_jwt(
    key: Any, app_id: int | str, *, iat: int = -60, exp: int = 540, iss: Any = None
) -> str:
    """An app JWT with `iat`/`exp` given as offsets in seconds from now.

    `key` may be the PEM or a key object; a key object avoids re-parsing the PEM, which
    costs ~0.25 s with current `cryptography` because it validates the RSA key each time.
    """
    now = int(time.time())
    claims = {"iat": now + iat, "exp": now + exp, "iss": str(app_id) if iss is None else iss}
    return jwt.encode(claims, key, algorithm="RS256")


def verify_app_jwt(
    token: str, public_key: Any, app_id: int, now: float | None = None
) -> str | None:
    """None when `token` authenticates the app, else GitHub's 401 message for it."""
    now = time.time() if now is None else now
    try:
        claims = jwt.decode(
            token,
            public_key,
            algorithms=["RS256"],
            options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
        )
    except jwt.PyJWTError:
        return "A JSON web token could not be decoded"
    iat, exp, iss = claims.get("iat"), claims.get("exp"), claims.get("iss")
    if not isinstance(iat, int) or isinstance(iat, bool) or iat > now:
        return "'Issued at' claim ('iat') must be an Integer representing a time in the past"
    if not isinstance(exp, int) or isinstance(exp, bool) or exp <= now:
        return (
            "'Expiration time' claim ('exp') must be a numeric value representing the future "
            "time at which the assertion expires"
        )
    if exp > now + JWT_MAX_LIFETIME:
        return "'Expiration time' claim ('exp') is too far in the future"
    if exp <= iat:
        return "'Expiration time' claim ('exp') must be after 'Issued at' claim ('iat')"
    if str(iss) != str(app_id):
        return "'Issuer' claim ('iss') is not this app's id"
    return None


def new_installation_token() -> str:
    alphabet = string.ascii_letters + string.digits
    return "ghs_" + "".join(secrets.choice(alphabet) for _ in range(36))


def bearer(header: str | None) -> tuple[str, str] | None:
    """(scheme, credential) of an Authorization header; scheme lower-cased."""
    if not header:
        return None
    scheme, _, credential = header.strip().partition(" ")
    if not credential:
        return None
    return scheme.lower(), credential.strip()
