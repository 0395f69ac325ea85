"""Reading the flow data a repository's settings name (docs/traffic.md), bounded.

The settings come from the base branch, never from the pull request, so a change cannot
point the app at other data. ``flows.path`` is read from the base branch through the
contents API (past the 1 MiB it inlines, with the raw media type) within
``MAX_FLOWS_BYTES``. ``flows.url`` is fetched only when the server allows its host
(``REACHDIFF_FLOWS_HOSTS``, comma-separated), over HTTPS, without following redirects,
with the server's token (``REACHDIFF_FLOWS_TOKEN``: a fixed name, so a repository cannot
make the app send any other secret), within ``MAX_FLOWS_BYTES`` and ``FETCH_SECONDS``.
Any failure is a ``FlowData`` problem the comment states: the review goes on, and says
that what the change breaks is unknown.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import urllib.parse

import aiohttp

from analysis.flowsummary import FlowSummary, summary_from_json
from bot.github import rest as github
from bot.github.client import DownloadTooLarge, GitHubClient
from bot.review.breaks import FlowData
from bot.review.settings import RepoSettings

MAX_FLOWS_BYTES = 64 * 1024 * 1024
FETCH_SECONDS = 20.0
HOSTS_VARIABLE = "REACHDIFF_FLOWS_HOSTS"
TOKEN_VARIABLE = "REACHDIFF_FLOWS_TOKEN"


def _parse(data: bytes) -> FlowSummary:
    try:
        return summary_from_json(json.loads(data))
    except (ValueError, RecursionError) as err:
        raise ValueError(f"not a reachdiff flow summary: {str(err)[:200]}") from None


async def read_flow_data(
    session: aiohttp.ClientSession,
    gh: GitHubClient,
    repo: github.Repository,
    settings: RepoSettings,
    ref: str,
) -> tuple[FlowSummary | None, FlowData | None]:
    """The summary and how it was read; (None, None) when the settings name none. A
    ``flows.environment`` setting names the environment the flows were observed in,
    whatever the summary says (``observed_in``)."""
    summary, data = await _read(session, gh, repo, settings, ref)
    return observed_in(summary, settings), data


def observed_in(summary: FlowSummary | None, settings: RepoSettings) -> FlowSummary | None:
    """The summary as observed in the settings' ``flows.environment``, when one is set."""
    if summary is None or not settings.flows_environment:
        return summary
    return dataclasses.replace(summary, environment=settings.flows_environment)


async def _read(
    session: aiohttp.ClientSession,
    gh: GitHubClient,
    repo: github.Repository,
    settings: RepoSettings,
    ref: str,
) -> tuple[FlowSummary | None, FlowData | None]:
    if settings.flows_path is not None:
        data = FlowData(settings.flows_path)
        try:
            raw = await github.get_file_content(
                gh, repo, settings.flows_path, ref, max_bytes=MAX_FLOWS_BYTES
            )
        except DownloadTooLarge:
            return None, FlowData(data.source, f"larger than {MAX_FLOWS_BYTES // 2**20} MiB")
        except Exception as err:  # a GitHub error must not fail the review: say it
            return None, FlowData(data.source, f"the base branch file: {type(err).__name__}")
        if raw is None:
            return None, FlowData(data.source, "no such file on the base branch")
        if not raw:
            return None, FlowData(data.source, "empty")
        try:
            return _parse(raw), data
        except ValueError as err:
            return None, FlowData(data.source, str(err))
    if settings.flows_url is not None:
        return await _fetch(session, settings.flows_url)
    return None, None


async def _fetch(
    session: aiohttp.ClientSession, url: str
) -> tuple[FlowSummary | None, FlowData | None]:
    shown = url.split("?", 1)[0]  # a query may carry credentials: never echo it
    host = urllib.parse.urlsplit(url).hostname or ""
    allowed = {
        h.strip().lower() for h in os.environ.get(HOSTS_VARIABLE, "").split(",") if h.strip()
    }
    if not url.startswith("https://") or host.lower() not in allowed:
        why = f"the server does not allow fetching from {host or 'that URL'} ({HOSTS_VARIABLE})"
        return None, FlowData(shown, why)
    headers = {"Accept": "application/json"}
    token = os.environ.get(TOKEN_VARIABLE)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        async with asyncio.timeout(FETCH_SECONDS):
            async with session.get(url, headers=headers, allow_redirects=False) as response:
                if response.status != 200:
                    return None, FlowData(shown, f"HTTP {response.status}")
                body = await response.content.read(MAX_FLOWS_BYTES + 1)
    except TimeoutError:
        return None, FlowData(shown, f"no answer within {FETCH_SECONDS:g} s")
    except aiohttp.ClientError as err:
        return None, FlowData(shown, f"{type(err).__name__}")
    if len(body) > MAX_FLOWS_BYTES:
        return None, FlowData(shown, f"larger than {MAX_FLOWS_BYTES // 2**20} MiB")
    try:
        return _parse(body), FlowData(shown)
    except ValueError as err:
        return None, FlowData(shown, str(err))
