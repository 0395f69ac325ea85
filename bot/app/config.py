"""The server's configuration, read once from the environment at start-up.

"Configuration" is the operator's (environment variables of one server); "settings" are a
repository's (``.github/reachdiff.yml``, ``bot.review.settings.RepoSettings``).

Invariant: a ``ServerConfig`` value is complete and valid. ``ServerConfig.from_env`` checks
every variable and reports every problem at once (one line each) through ``ConfigError``, so
an operator fixes a broken deployment in one round instead of one restart per mistake.
Nothing here is read at import time.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

DEFAULT_API_URL = "https://api.github.com"
MiB = 1024 * 1024
DEFAULT_MAX_TARBALL_BYTES = 100 * MiB
DEFAULT_MAX_FILES = 20_000
DEFAULT_MAX_FILE_BYTES = 2 * MiB
DEFAULT_MAX_TOTAL_BYTES = 200 * MiB

T = TypeVar("T", int, float)


class ConfigError(Exception):
    """Every problem found in the environment, one human-readable line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = tuple(problems)


@dataclass(frozen=True, slots=True)
class ServerConfig:
    app_id: str
    private_key: str = field(repr=False)
    webhook_secret: str = field(repr=False)
    api_url: str = DEFAULT_API_URL
    port: int = 8080
    # Concurrency of the process pool running the engine (CPU-bound work).
    analysis_workers: int = 2
    # Wall-clock budget for one engine run; past it the check fails with "timed out".
    analysis_timeout: float = 120.0
    # Address-space cap for each analysis process, so one hostile tree cannot exhaust the host.
    analysis_memory_mb: int = 2048
    # How many reviews run concurrently (they are mostly waiting on GitHub).
    review_concurrency: int = 4
    # Pending reviews beyond this are refused with 503 (coalescing keeps it small in practice).
    queue_size: int = 256
    # Bounds on what a repository may make us download and unpack.
    max_tarball_bytes: int = DEFAULT_MAX_TARBALL_BYTES
    max_files: int = DEFAULT_MAX_FILES
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES
    # Retries of a GitHub call on 5xx or a secondary rate limit, and the longest single wait.
    api_max_attempts: int = 5
    api_max_retry_wait: float = 60.0
    # How often / how long to wait for GitHub to compute a PR's test merge commit.
    mergeable_attempts: int = 3
    mergeable_delay: float = 1.0
    # Seconds between reconciliation passes (the first runs at start-up); 0 turns them off.
    reconcile_interval: float = 600.0
    # Where audit events (break-glass, merges past a check that was not green) go besides
    # the log: a JSON-lines file, and a URL each is POSTed to. The operator's, never a
    # repository's: "" turns each off.
    audit_file: str = ""
    audit_webhook_url: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ServerConfig:
        """Read the settings; raise ``ConfigError`` listing every missing or malformed one."""
        env = os.environ if env is None else env
        reader = _Reader(env)

        app_id = reader.required("GITHUB_APP_ID")
        if app_id is not None and not (app_id.isascii() and app_id.isdigit() and int(app_id) > 0):
            reader.problem("GITHUB_APP_ID", f"must be the App's numeric id, got {app_id!r}")
        private_key = reader.private_key()
        secret = reader.required("GITHUB_WEBHOOK_SECRET")
        api_url = reader.api_url()

        values = cls(
            app_id=app_id or "",
            private_key=private_key or "",
            webhook_secret=secret or "",
            api_url=api_url,
            port=reader.number("PORT", int, 8080, low=1, high=65535),
            analysis_workers=reader.number("REACHDIFF_ANALYSIS_WORKERS", int, 2, low=1, high=64),
            analysis_timeout=reader.number("REACHDIFF_ANALYSIS_TIMEOUT", float, 120.0, low=1),
            analysis_memory_mb=reader.number(
                "REACHDIFF_ANALYSIS_MEMORY_MB", int, 2048, low=0, high=1 << 20
            ),
            review_concurrency=reader.number("REACHDIFF_REVIEW_CONCURRENCY", int, 4, low=1),
            queue_size=reader.number("REACHDIFF_QUEUE_SIZE", int, 256, low=1),
            max_tarball_bytes=reader.number(
                "REACHDIFF_MAX_TARBALL_BYTES", int, DEFAULT_MAX_TARBALL_BYTES, low=1
            ),
            max_files=reader.number("REACHDIFF_MAX_FILES", int, DEFAULT_MAX_FILES, low=1),
            max_file_bytes=reader.number(
                "REACHDIFF_MAX_FILE_BYTES", int, DEFAULT_MAX_FILE_BYTES, low=1
            ),
            max_total_bytes=reader.number(
                "REACHDIFF_MAX_TOTAL_BYTES", int, DEFAULT_MAX_TOTAL_BYTES, low=1
            ),
            api_max_attempts=reader.number("REACHDIFF_API_MAX_ATTEMPTS", int, 5, low=1, high=20),
            api_max_retry_wait=reader.number("REACHDIFF_API_MAX_RETRY_WAIT", float, 60.0, low=0),
            mergeable_attempts=reader.number(
                "REACHDIFF_MERGEABLE_ATTEMPTS", int, 3, low=1, high=20
            ),
            mergeable_delay=reader.number("REACHDIFF_MERGEABLE_DELAY", float, 1.0, low=0),
            reconcile_interval=reader.number("REACHDIFF_RECONCILE_INTERVAL", float, 600.0, low=0),
            audit_file=reader.get("REACHDIFF_AUDIT_FILE") or "",
            audit_webhook_url=reader.url("REACHDIFF_AUDIT_WEBHOOK_URL"),
        )
        if reader.problems:
            raise ConfigError(reader.problems)
        return values


class _Reader:
    """Collects problems instead of stopping at the first one."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []

    def problem(self, name: str, message: str) -> None:
        self.problems.append(f"{name}: {message}")

    def get(self, name: str) -> str | None:
        value = self.env.get(name)
        if value is None or not value.strip():
            return None
        return value.strip()

    def required(self, name: str) -> str | None:
        value = self.get(name)
        if value is None:
            self.problem(name, "is not set")
        return value

    def number(
        self,
        name: str,
        kind: Callable[[str], T],
        default: T,
        *,
        low: T | None = None,
        high: T | None = None,
    ) -> T:
        raw = self.get(name)
        if raw is None:
            return default
        try:
            value = kind(raw)
        except ValueError:
            what = "an integer" if kind is int else "a number"
            self.problem(name, f"must be {what}, got {raw!r}")
            return default
        if value != value or value in (float("inf"), float("-inf")):  # NaN / infinity
            self.problem(name, f"must be a finite number, got {raw!r}")
            return default
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"at least {low}" if high is None else f"between {low} and {high}"
            self.problem(name, f"must be {bounds}, got {raw!r}")
            return default
        return value

    def url(self, name: str) -> str:
        """An optional http(s) URL ("" when unset)."""
        raw = self.get(name)
        if raw is None:
            return ""
        parsed = urllib.parse.urlsplit(raw)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            self.problem(name, f"must be an http(s) URL, got {raw!r}")
            return ""
        return raw

    def api_url(self) -> str:
        raw = self.get("GITHUB_API_URL")
        if raw is None:
            return DEFAULT_API_URL
        parsed = urllib.parse.urlsplit(raw)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            self.problem("GITHUB_API_URL", f"must be an http(s) URL, got {raw!r}")
            return DEFAULT_API_URL
        if parsed.query or parsed.fragment:
            self.problem("GITHUB_API_URL", "must not have a query or fragment")
        return raw.rstrip("/")

    def private_key(self) -> str | None:
        inline = self.get("GITHUB_PRIVATE_KEY")
        path = self.get("GITHUB_PRIVATE_KEY_PATH")
        if inline is not None and path is not None:
            self.problem("GITHUB_PRIVATE_KEY", "set either it or GITHUB_PRIVATE_KEY_PATH, not both")
            return None
        if inline is None and path is None:
            self.problem("GITHUB_PRIVATE_KEY", "is not set (nor GITHUB_PRIVATE_KEY_PATH)")
            return None
        name = "GITHUB_PRIVATE_KEY"
        if path is not None:
            name = "GITHUB_PRIVATE_KEY_PATH"
            try:
                inline = Path(path).read_text(encoding="ascii")
            except (OSError, UnicodeDecodeError) as exc:
                reason = getattr(exc, "strerror", None) or "not an ASCII PEM file"
                self.problem(name, f"cannot read {path}: {reason}")
                return None
        assert inline is not None
        # Container secrets are often injected with literal "\n" sequences on one line.
        pem = inline.replace("\\n", "\n").strip() + "\n"
        try:
            key = load_pem_private_key(pem.encode("ascii"), password=None)
        except (ValueError, TypeError, UnicodeEncodeError):
            self.problem(name, "is not a PEM-encoded, unencrypted private key")
            return None
        if not isinstance(key, RSAPrivateKey):
            self.problem(name, "must be an RSA key (GitHub Apps sign their JWTs with RS256)")
            return None
        return pem
