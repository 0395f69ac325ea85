"""pytest fixtures for the fake GitHub (registered by tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from .server import FakeGitHub


@pytest.fixture
async def fake_github() -> AsyncIterator[FakeGitHub]:
    """A started FakeGitHub on 127.0.0.1 (random port); `.url` is its base URL.

    Its app has `.app_id`, `.private_key_pem` and an installation `.installation_id`.
    """
    fake = FakeGitHub()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.close()
