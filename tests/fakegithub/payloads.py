"""Webhook deliveries for tests: GitHub's example payloads, adapted, and signed like GitHub.

The examples in tests/fixtures/github/payloads/ are octokit/webhooks' (MIT; see the README
there). They are synthetic (Codertocat/Hello-World, installation 1, head ec26c3e5...), so
tests adapt them with `make_payload` to the repository and commits they set up in the fake.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import re
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

PAYLOAD_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "github" / "payloads"
PUBLIC_API = "https://api.github.com"


def load_payload(event: str, action: str | None = None) -> bytes:
    """The example body of `event`/`action` exactly as stored (e.g. "pull_request", "opened").

    `action` may name a variant ("opened.with-organization"); `ping` needs none.
    """
    name = action or event
    path = PAYLOAD_DIR / event / f"{name}.json"
    if not path.is_file():
        known = (
            sorted(p.stem for p in (PAYLOAD_DIR / event).glob("*.json"))
            if (PAYLOAD_DIR / event).is_dir()
            else []
        )
        raise FileNotFoundError(f"no example payload for {event}/{name}; have {known}")
    return path.read_bytes()


class Payload(NamedTuple):
    data: dict[str, Any]
    body: bytes  # what GitHub would send: compact JSON of `data`


def encode(data: Mapping[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def make_payload(
    event: str,
    action: str | None = None,
    *,
    full_name: str | None = None,
    number: int | None = None,
    head_sha: str | None = None,
    base_sha: str | None = None,
    head_ref: str | None = None,
    base_ref: str | None = None,
    before: str | None = None,
    installation_id: int | None = None,
    author: str | None = None,
    sender: str | None = None,
    api_url: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Payload:
    """An example payload adapted to a test's fake repository.

    - `full_name`: repository (and URLs, owner, labels) rewritten from the example's;
    - `number`: pull request / issue number, in fields and in URLs;
    - `head_sha`/`base_sha`: every occurrence of the example's head/base sha (includes
      `after`, `check_run.head_sha`, `review.commit_id`, `statuses_url`...);
    - `head_ref`/`base_ref`, `before` (synchronize), `author` (pull request user),
      `sender`;
    - `installation_id`: sets `installation` (added when the example lacks one: real App
      deliveries always carry it);
    - `api_url`: replaces https://api.github.com in every URL so that a bot following
      payload URLs talks to the fake, never to the internet;
    - `overrides`: {"dotted.path": value} applied last ("pull_request.draft": True).
    """
    data: dict[str, Any] = json.loads(load_payload(event, action))

    if head_sha is not None:
        old = _first(
            data,
            ("pull_request", "head", "sha"),
            ("check_run", "head_sha"),
            ("check_suite", "head_sha"),
            ("merge_group", "head_sha"),
            ("after",),
        )
        if old:
            data = _replace_all(data, old, head_sha)
    if base_sha is not None:
        old = _first(data, ("pull_request", "base", "sha"), ("merge_group", "base_sha"))
        if old:
            data = _replace_all(data, old, base_sha)
    if before is not None and "before" in data:
        data["before"] = before
    if number is not None:
        data = _renumber(data, number)
    if full_name is not None:
        data = _rename_repository(data, full_name)
    if head_ref is not None or base_ref is not None:
        pull = data.get("pull_request")
        if isinstance(pull, dict):
            for side, ref in (("head", head_ref), ("base", base_ref)):
                if ref is not None:
                    pull[side]["ref"] = ref
                    owner = pull[side]["label"].split(":", 1)[0]
                    pull[side]["label"] = f"{owner}:{ref}"
        for key in ("check_run", "check_suite"):
            holder = data.get(key, {})
            suite = holder.get("check_suite", holder) if key == "check_run" else holder
            if head_ref is not None and isinstance(suite, dict) and "head_branch" in suite:
                suite["head_branch"] = head_ref
    if author is not None:
        for key in ("pull_request", "issue"):
            if isinstance(data.get(key), dict):
                data[key]["user"] = _retarget_user(data[key]["user"], author)
    if sender is not None and isinstance(data.get("sender"), dict):
        data["sender"] = _retarget_user(data["sender"], sender)
    if installation_id is not None:
        installation = data.get("installation")
        if not isinstance(installation, dict):
            installation = {}
            data["installation"] = installation
        installation["id"] = installation_id
        installation.setdefault(
            "node_id", "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9u" + str(installation_id)
        )
    if api_url is not None:
        base = api_url.rstrip("/")
        data = _map_strings(
            data, lambda s: base + s[len(PUBLIC_API) :] if s.startswith(PUBLIC_API) else s
        )
    for dotted, value in (overrides or {}).items():
        set_path(data, dotted, value)
    return Payload(data, encode(data))


def set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    """Set data["a"]["b"][0]["c"] for "a.b.0.c"; intermediate containers must exist."""
    node: Any = data
    parts = dotted.split(".")
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    last = parts[-1]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


def webhook_headers(
    event: str,
    body: bytes,
    secret: str | bytes,
    delivery_id: str | None = None,
    *,
    app_id: int | None = None,
) -> dict[str, str]:
    """The headers GitHub sends with a delivery of `body`, signed with `secret`."""
    key = secret.encode() if isinstance(secret, str) else secret
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/5f5d2a0",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery_id or str(uuid.uuid4()),
        "X-GitHub-Hook-ID": "424242",
        "X-Hub-Signature": "sha1=" + hmac.new(key, body, hashlib.sha1).hexdigest(),
        "X-Hub-Signature-256": "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest(),
    }
    if app_id is not None:
        headers["X-GitHub-Hook-Installation-Target-Type"] = "integration"
        headers["X-GitHub-Hook-Installation-Target-ID"] = str(app_id)
    return headers


# -- rewriting helpers ---------------------------------------------------------------------------


def _map_strings(node: Any, fn: Callable[[str], str]) -> Any:
    if isinstance(node, str):
        return fn(node)
    if isinstance(node, dict):
        return {k: _map_strings(v, fn) for k, v in node.items()}
    if isinstance(node, list):
        return [_map_strings(v, fn) for v in node]
    return node


def _replace_all(data: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    out: dict[str, Any] = _map_strings(data, lambda s: s.replace(old, new))
    return out


def _first(data: Mapping[str, Any], *paths: tuple[str, ...]) -> str | None:
    for path in paths:
        node: Any = data
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, str) and node:
            return node
    return None


def _renumber(data: dict[str, Any], number: int) -> dict[str, Any]:
    old: int | None = None
    for key in ("pull_request", "issue"):
        if isinstance(data.get(key), dict):
            old = data[key]["number"]
            data[key]["number"] = number
    if "number" in data:
        old = data["number"] if old is None else old
        data["number"] = number
    for key in ("check_run", "check_suite"):
        for pull in data.get(key, {}).get("pull_requests", []):
            old = pull["number"] if old is None else old
            pull["number"] = number
    if old is None:
        return data
    pattern = re.compile(rf"/(pulls|issues|pull)/{old}(?=$|[/#?.])")
    out: dict[str, Any] = _map_strings(data, lambda s: pattern.sub(rf"/\g<1>/{number}", s))
    return out


def _rename_repository(data: dict[str, Any], full_name: str) -> dict[str, Any]:
    repository = data.get("repository")
    if not isinstance(repository, dict):
        return data
    old_full = repository["full_name"]
    old_owner = old_full.split("/", 1)[0]
    new_owner, new_name = full_name.split("/", 1)
    data = _map_strings(data, lambda s: s.replace(old_full, full_name))

    def owner_dict(user: dict[str, Any]) -> dict[str, Any]:
        if user.get("login") != old_owner:
            return user
        return _retarget_user(user, new_owner)

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("full_name") == full_name:
                node["name"] = new_name
                if isinstance(node.get("owner"), dict):
                    node["owner"] = owner_dict(node["owner"])
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(data)
    pull = data.get("pull_request")
    if isinstance(pull, dict):
        for side in ("head", "base"):
            part = pull.get(side, {})
            if part.get("repo", {}).get("full_name") == full_name:
                part["user"] = owner_dict(part["user"])
                part["label"] = f"{new_owner}:{part['ref']}"
    if (
        isinstance(data.get("organization"), dict)
        and data["organization"].get("login") == old_owner
    ):
        data["organization"] = _map_strings(
            data["organization"], lambda s: s.replace(old_owner, new_owner)
        )
    return data


def _retarget_user(user: dict[str, Any], login: str) -> dict[str, Any]:
    old = user.get("login", "")
    out = copy.deepcopy(user)
    if old:
        out = _map_strings(out, lambda s: re.sub(rf"(?<=/){re.escape(old)}(?=$|[/{{?#])", login, s))
    out["login"] = login
    out["type"] = "Bot" if login.endswith("[bot]") else user.get("type", "User")
    return out
