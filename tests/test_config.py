"""ServerConfig.from_env: every problem reported at once, one line each; serve exits non-zero."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from bot.app.config import ConfigError, ServerConfig
from bot.app.server import serve


@functools.cache
def rsa_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def valid_env(**changes: str) -> dict[str, str]:
    env = {
        "GITHUB_APP_ID": "424242",
        "GITHUB_PRIVATE_KEY": rsa_pem(),
        "GITHUB_WEBHOOK_SECRET": "s3cret",
    }
    env.update(changes)
    return {k: v for k, v in env.items() if v != "<unset>"}


def problems(env: dict[str, str]) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as caught:
        ServerConfig.from_env(env)
    return caught.value.problems


def test_minimal_environment_gets_the_documented_defaults() -> None:
    settings = ServerConfig.from_env(valid_env())
    assert settings.app_id == "424242"
    assert settings.webhook_secret == "s3cret"
    assert settings.api_url == "https://api.github.com"
    assert settings.port == 8080
    assert settings.private_key.startswith("-----BEGIN PRIVATE KEY-----")


def test_every_knob_is_read() -> None:
    settings = ServerConfig.from_env(
        valid_env(
            GITHUB_API_URL="https://ghe.example.com/api/v3/",
            PORT="9000",
            REACHDIFF_ANALYSIS_WORKERS="3",
            REACHDIFF_ANALYSIS_TIMEOUT="12.5",
            REACHDIFF_ANALYSIS_MEMORY_MB="0",
            REACHDIFF_REVIEW_CONCURRENCY="8",
            REACHDIFF_QUEUE_SIZE="10",
            REACHDIFF_MAX_TARBALL_BYTES="1000",
            REACHDIFF_MAX_FILES="5",
            REACHDIFF_MAX_FILE_BYTES="100",
            REACHDIFF_MAX_TOTAL_BYTES="500",
            REACHDIFF_API_MAX_ATTEMPTS="2",
            REACHDIFF_API_MAX_RETRY_WAIT="1.5",
            REACHDIFF_MERGEABLE_ATTEMPTS="4",
            REACHDIFF_MERGEABLE_DELAY="0.25",
        )
    )
    assert settings.api_url == "https://ghe.example.com/api/v3"  # trailing slash dropped
    assert (settings.port, settings.analysis_workers, settings.analysis_timeout) == (9000, 3, 12.5)
    assert (settings.analysis_memory_mb, settings.review_concurrency, settings.queue_size) == (
        0,
        8,
        10,
    )
    assert (settings.max_tarball_bytes, settings.max_files) == (1000, 5)
    assert (settings.max_file_bytes, settings.max_total_bytes) == (100, 500)
    assert (settings.api_max_attempts, settings.api_max_retry_wait) == (2, 1.5)
    assert (settings.mergeable_attempts, settings.mergeable_delay) == (4, 0.25)


def test_all_missing_settings_are_reported_together() -> None:
    found = problems({})
    assert len(found) == 3
    assert found[0].startswith("GITHUB_APP_ID: ")
    assert any(p.startswith("GITHUB_PRIVATE_KEY: ") for p in found)
    assert any(p.startswith("GITHUB_WEBHOOK_SECRET: ") for p in found)
    assert all("\n" not in p for p in found)


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("GITHUB_APP_ID", "my-app", "numeric id"),
        ("GITHUB_APP_ID", "0", "numeric id"),
        ("GITHUB_WEBHOOK_SECRET", "   ", "is not set"),
        ("GITHUB_PRIVATE_KEY", "not a key", "PEM"),
        ("GITHUB_API_URL", "ftp://example.com", "http(s) URL"),
        ("GITHUB_API_URL", "api.github.com", "http(s) URL"),
        ("GITHUB_API_URL", "https://example.com/api?x=1", "query"),
        ("PORT", "eighty", "integer"),
        ("PORT", "70000", "between 1 and 65535"),
        ("PORT", "0", "between 1 and 65535"),
        ("REACHDIFF_ANALYSIS_TIMEOUT", "nan", "finite"),
        ("REACHDIFF_ANALYSIS_TIMEOUT", "0.5", "at least 1"),
        ("REACHDIFF_ANALYSIS_WORKERS", "2.5", "integer"),
        ("REACHDIFF_QUEUE_SIZE", "-1", "at least 1"),
    ],
)
def test_malformed_setting_gets_one_line_naming_it(name: str, value: str, expected: str) -> None:
    [problem] = problems(valid_env(**{name: value}))
    assert problem.startswith(f"{name}: ")
    assert expected in problem
    assert "\n" not in problem


def test_several_malformed_settings_are_all_reported() -> None:
    found = problems(valid_env(GITHUB_APP_ID="x", PORT="x", GITHUB_API_URL="x"))
    assert [p.split(":")[0] for p in found] == ["GITHUB_APP_ID", "GITHUB_API_URL", "PORT"]


def test_private_key_from_a_file(tmp_path: Path) -> None:
    key_file = tmp_path / "app.pem"
    key_file.write_text(rsa_pem())
    env = valid_env(GITHUB_PRIVATE_KEY="<unset>", GITHUB_PRIVATE_KEY_PATH=str(key_file))
    assert ServerConfig.from_env(env).private_key == rsa_pem()


def test_private_key_file_that_cannot_be_read(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    env = valid_env(GITHUB_PRIVATE_KEY="<unset>", GITHUB_PRIVATE_KEY_PATH=str(missing))
    [problem] = problems(env)
    assert problem.startswith("GITHUB_PRIVATE_KEY_PATH: cannot read")
    assert str(missing) in problem


def test_private_key_given_twice_is_ambiguous(tmp_path: Path) -> None:
    key_file = tmp_path / "app.pem"
    key_file.write_text(rsa_pem())
    [problem] = problems(valid_env(GITHUB_PRIVATE_KEY_PATH=str(key_file)))
    assert "not both" in problem


def test_private_key_with_escaped_newlines_is_accepted() -> None:
    one_line = rsa_pem().strip().replace("\n", "\\n")
    assert ServerConfig.from_env(valid_env(GITHUB_PRIVATE_KEY=one_line)).private_key == rsa_pem()


def test_non_rsa_key_is_refused() -> None:
    ec_pem = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    [problem] = problems(valid_env(GITHUB_PRIVATE_KEY=ec_pem))
    assert "RSA" in problem


def test_secrets_stay_out_of_the_repr() -> None:
    text = repr(ServerConfig.from_env(valid_env()))
    assert "s3cret" not in text and "PRIVATE KEY" not in text
    assert "424242" in text


def test_serve_exits_non_zero_with_one_line_per_problem(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("GITHUB_APP_ID", "GITHUB_PRIVATE_KEY", "GITHUB_PRIVATE_KEY_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GITHUB_WEBHOOK_SECRET", "s3cret")
    monkeypatch.setenv("PORT", "http")
    assert serve() == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        "reachdiff serve: GITHUB_APP_ID: is not set",
        "reachdiff serve: GITHUB_PRIVATE_KEY: is not set (nor GITHUB_PRIVATE_KEY_PATH)",
        "reachdiff serve: PORT: must be an integer, got 'http'",
    ]
