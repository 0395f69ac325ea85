"""Tests of the fake GitHub itself: that it holds clients to GitHub's published API."""

from __future__ import annotations

import base64
import gzip
import hashlib
import hmac
import io
import json
import re
import tarfile
import urllib.request
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from gidgethub import sansio
from gidgethub.aiohttp import GitHubAPI

from scripts import update_github_openapi as updater
from tests.fakegithub import (
    SECONDARY_RATE_LIMIT_BODY,
    FakeGitHub,
    load_payload,
    make_payload,
    validate_request,
    validate_response,
    webhook_headers,
)
from tests.fakegithub.auth import generate_app_key, make_app_jwt
from tests.fakegithub.diffs import make_patch
from tests.fakegithub.openapi import SUBSET_PATH, default_subset

A, B, C, D = ("a" * 40, "b" * 40, "c" * 40, "d" * 40)
UA = {"User-Agent": "reachdiff-tests"}
POLICY_BASE = "".join(f"line {i}\n" for i in range(1, 21)).encode()
POLICY_HEAD = POLICY_BASE.replace(b"line 10\n", b"line ten\n")


def seed(fake: FakeGitHub) -> None:
    """A on main; B (the pull request's head) and C (main moved on) both branch from A."""
    fake.add_repo("acme/web", collaborators={"alice": "write", "tia": "triage"})
    fake.add_commit("acme/web", A, {"k8s/np.yaml": POLICY_BASE, "README.md": b"hello\n"})
    fake.add_commit(
        "acme/web",
        B,
        {"k8s/np.yaml": POLICY_HEAD, "README.md": b"hello\n", "k8s/new.yaml": b"kind: X\n"},
        parents=(A,),
    )
    fake.add_commit(
        "acme/web", C, {"k8s/np.yaml": POLICY_BASE, "README.md": b"hello, world\n"}, parents=(A,)
    )
    fake.set_branch("acme/web", "main", C)
    fake.add_pull(
        "acme/web", 7, base_ref="main", base_sha=C, head_sha=B, author="bob", head_ref="tighten"
    )
    fake.add_team("acme", "netsec", {"alice": "maintainer", "carol": "member"})


def app_jwt(
    fake: FakeGitHub, *, iat: int = -60, exp: int = 540, iss: Any = None, key: Any = None
) -> str:
    if key is None:
        return fake.app_jwt(iat=iat, exp=exp, iss=iss)
    return make_app_jwt(key, fake.app_id, iat=iat, exp=exp, iss=iss)


class Client:
    def __init__(self, session: aiohttp.ClientSession, fake: FakeGitHub) -> None:
        self.session = session
        self.fake = fake
        self.token = ""

    async def login(self) -> str:
        status, body, _ = await self.call(
            "POST",
            f"/app/installations/{self.fake.installation_id}/access_tokens",
            auth=f"Bearer {app_jwt(self.fake)}",
        )
        assert status == 201, body
        self.token = body["token"]
        return self.token

    async def call(
        self,
        method: str,
        path: str,
        json_body: Any = None,
        *,
        auth: str | None = None,
        headers: dict[str, str] | None = None,
        raw: bool = False,
    ) -> tuple[int, Any, Any]:
        hdrs = {**UA, **(headers or {})}
        credential = auth if auth is not None else (f"token {self.token}" if self.token else None)
        if credential:
            hdrs["Authorization"] = credential
        async with self.session.request(
            method, self.fake.url + path, json=json_body, headers=hdrs, allow_redirects=False
        ) as response:
            data = await response.read()
            if raw or not data:
                return response.status, data, response.headers
            try:
                return response.status, json.loads(data), response.headers
            except ValueError:
                return response.status, data, response.headers


@pytest.fixture
async def client(fake_github: FakeGitHub) -> AsyncIterator[Client]:
    seed(fake_github)
    async with aiohttp.ClientSession() as session:
        c = Client(session, fake_github)
        await c.login()
        yield c


# -- the OpenAPI subset and its generator --------------------------------------------------------


def _synthetic_spec() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for method, path in updater.OPERATIONS:
        paths.setdefault(path, {})[method] = {"operationId": f"{method}{path}", "responses": {}}
    first_method, first_path = updater.OPERATIONS[0]
    paths[first_path][first_method]["responses"] = {
        "200": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/a"}}}}
    }
    paths["/unrelated"] = {"get": {"operationId": "unrelated", "responses": {}}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "t", "version": "9.9.9"},
        "paths": paths,
        "components": {
            "schemas": {
                "a": {"type": "object", "properties": {"b": {"$ref": "#/components/schemas/b"}}},
                "b": {"type": "string"},
                "unused": {"type": "integer"},
            }
        },
    }


def test_update_script_extracts_operations_and_transitive_refs(tmp_path: Path) -> None:
    spec = _synthetic_spec()
    package = {"name": "@octokit/openapi", "version": "9.9.9", "license": "MIT"}
    tarball = tmp_path / "octokit-openapi-9.9.9.tgz"
    with tarfile.open(tarball, "w:gz") as tar:
        for name, data in (
            (updater.SPEC_MEMBER, json.dumps(spec).encode()),
            (updater.PACKAGE_MEMBER, json.dumps(package).encode()),
            (
                updater.LICENSE_MEMBER,
                b"MIT License Copyright (c) 2020 Octokit contributors\n\nText.\n",
            ),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    out, license_out = tmp_path / "subset.json", tmp_path / "LICENSE.x"
    assert updater.main([str(tarball), "--out", str(out), "--license-out", str(license_out)]) == 0

    subset = json.loads(out.read_text())
    assert sorted(subset["components"]["schemas"]) == ["a", "b"]
    assert "/unrelated" not in subset["paths"]
    assert sum(len(ops) for ops in subset["paths"].values()) == len(updater.OPERATIONS)
    source = subset["info"]["x-reachdiff-source"]
    assert (source["package"], source["version"], source["license"]) == (
        "@octokit/openapi",
        "9.9.9",
        "MIT",
    )
    assert "9.9.9" in license_out.read_text() and "Octokit contributors" in license_out.read_text()
    # Stable output: regenerating gives identical bytes.
    first = out.read_bytes()
    updater.main([str(tarball), "--out", str(out), "--license-out", str(license_out)])
    assert out.read_bytes() == first


def test_update_script_rejects_a_missing_operation() -> None:
    spec = _synthetic_spec()
    del spec["paths"]["/repos/{owner}/{repo}/check-runs"]
    with pytest.raises(SystemExit, match="check-runs"):
        updater.extract(spec, {"version": "1", "license": "MIT"}, "MIT License\n")


def test_committed_subset_is_complete_sorted_and_self_contained() -> None:
    text = SUBSET_PATH.read_text()
    document = json.loads(text)
    assert text == json.dumps(document, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    operations = {
        (m, p) for p, item in document["paths"].items() for m in item if m != "parameters"
    }
    assert operations == set(updater.OPERATIONS)
    source = document["info"]["x-reachdiff-source"]
    assert source["package"] == "@octokit/openapi" and source["license"] == "MIT"
    license_text = (SUBSET_PATH.parent / "LICENSE.octokit-openapi").read_text()
    assert source["version"] in license_text and "Permission is hereby granted" in license_text
    refs = set(re.findall(r'"\$ref": "#/components/([^/"]+)/([^"]+)"', text))
    missing = [ref for ref in refs if ref[1] not in document["components"].get(ref[0], {})]
    assert refs and missing == []


# -- request validation --------------------------------------------------------------------------


def test_validation_flags_unknown_operations_and_methods() -> None:
    assert validate_request("GET", "/repos/o/r/pulls/1") == []
    assert "no such operation" in validate_request("GET", "/repos/o/r/branches")[0]
    assert "method not defined" in validate_request("DELETE", "/repos/o/r/pulls/1")[0]


def test_validation_checks_bodies_params_and_query() -> None:
    good = {"name": "reachdiff", "head_sha": A, "output": {"title": "t", "summary": "s"}}
    assert validate_request("POST", "/repos/o/r/check-runs", body=good) == []
    problems = validate_request("POST", "/repos/o/r/check-runs", body={**good, "name": 5})
    assert len(problems) == 1 and "$.name" in problems[0] and "'string'" in problems[0]
    missing = validate_request("POST", "/repos/o/r/check-runs", body={"name": "x"})
    assert any("'head_sha' is a required property" in p for p in missing)
    assert any(
        "request body is required" in p for p in validate_request("POST", "/repos/o/r/check-runs")
    )
    bad_enum = validate_request("POST", "/repos/o/r/check-runs", body={**good, "status": "done"})
    assert any("$.status" in p for p in bad_enum)
    bad_time = validate_request(
        "POST", "/repos/o/r/check-runs", body={**good, "started_at": "yesterday"}
    )
    assert any("date-time" in p for p in bad_time)
    assert any(
        "path parameter 'pull_number'" in p
        for p in validate_request("GET", "/repos/o/r/pulls/seven")
    )
    query = validate_request(
        "GET", "/repos/o/r/pulls", query={"state": "merged", "per_page": "x", "pagesize": "5"}
    )
    assert any("'state'" in p for p in query)
    assert any("'per_page'" in p for p in query)
    assert any("unknown query parameter 'pagesize'" in p for p in query)
    assert any(
        "takes no request body" in p for p in validate_request("GET", "/repos/o/r/pulls/1", body={})
    )
    # PATCH check-runs: status completed needs a conclusion (the schema's anyOf).
    assert validate_request("PATCH", "/repos/o/r/check-runs/1", body={"status": "completed"})
    assert (
        validate_request(
            "PATCH",
            "/repos/o/r/check-runs/1",
            body={"status": "completed", "conclusion": "success"},
        )
        == []
    )


def test_nullable_schemas_accept_null_and_reject_other_types() -> None:
    subset = default_subset()
    run = {
        "type": "object",
        "properties": {"conclusion": {"type": "string", "nullable": True, "enum": ["success"]}},
    }
    assert subset.schema_problems(run, {"conclusion": None}, "x") == []
    assert subset.schema_problems(run, {"conclusion": "success"}, "x") == []
    assert subset.schema_problems(run, {"conclusion": "bogus"}, "x")
    assert subset.schema_problems(run, {"conclusion": 3}, "x")
    user_ref = {"$ref": "#/components/schemas/nullable-simple-user"}
    assert subset.schema_problems(user_ref, None, "x") == []
    assert subset.schema_problems(user_ref, {"login": "x"}, "x")  # required fields missing


def test_examples_of_the_description_validate_against_its_schemas() -> None:
    """Sanity check of the OpenAPI→JSON Schema conversion on GitHub's own examples."""
    subset = default_subset()
    checked = 0
    known_stale = {"content-file-response-if-content-is-a-file"}  # refreshed upstream only
    for op in subset.operations:
        for status, response in op.spec["responses"].items():
            media = (subset._deref(response).get("content") or {}).get("application/json")
            if not media or "schema" not in media:
                continue
            for name, example in (media.get("examples") or {}).items():
                ref_name = example.get("$ref", "").rsplit("/", 1)[-1]
                value = subset._deref(example)["value"] if "$ref" in example else example["value"]
                problems = subset.schema_problems(
                    media["schema"], value, f"{op.operation_id} {status} {name}"
                )
                checked += 1
                if ref_name not in known_stale:
                    # Upstream examples lag their schemas by a few fields; types must agree.
                    assert not [p for p in problems if "is not of type" in p], problems
    assert checked >= 20


# -- authentication ------------------------------------------------------------------------------


async def test_installation_token_requires_a_valid_app_jwt(fake_github: FakeGitHub) -> None:
    seed(fake_github)
    path = f"/app/installations/{fake_github.installation_id}/access_tokens"
    _, other_key = generate_app_key(fresh=True)
    async with aiohttp.ClientSession() as session:
        c = Client(session, fake_github)
        cases = {
            "none": None,
            "not a jwt": "Bearer not.a.jwt",
            "token scheme": f"token {app_jwt(fake_github)}",
            "other key": f"Bearer {app_jwt(fake_github, key=other_key)}",
            "wrong iss": f"Bearer {app_jwt(fake_github, iss='1')}",
            "iat in future": f"Bearer {app_jwt(fake_github, iat=120, exp=500)}",
            "exp too far": f"Bearer {app_jwt(fake_github, iat=-60, exp=11 * 60)}",
            "expired": f"Bearer {app_jwt(fake_github, iat=-700, exp=-100)}",
        }
        for label, credential in cases.items():
            status, body, _ = await c.call("POST", path, auth=credential or "")
            assert status == 401, (label, body)
        assert fake_github.token_issuances == 0

        status, body, _ = await c.call(
            "POST", "/app/installations/999/access_tokens", auth=f"Bearer {app_jwt(fake_github)}"
        )
        assert status == 404

        before = datetime.now(UTC)
        status, body, _ = await c.call("POST", path, auth=f"Bearer {app_jwt(fake_github)}")
        assert status == 201 and body["token"].startswith("ghs_")
        expires = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
        assert 3590 <= (expires - before).total_seconds() <= 3601
        assert fake_github.token_issuances == 1
    assert fake_github.validation_errors == []


def test_app_key_pem_matches_the_key_the_fake_verifies_with(fake_github: FakeGitHub) -> None:
    from tests.fakegithub.auth import verify_app_jwt

    token = make_app_jwt(fake_github.private_key_pem, fake_github.app_id)
    assert fake_github.private_key_pem.startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert verify_app_jwt(token, fake_github.private_key.public_key(), fake_github.app_id) is None
    assert (
        verify_app_jwt(token, fake_github.private_key.public_key(), fake_github.app_id + 1)
        is not None
    )


async def test_api_calls_require_an_installation_token(client: Client) -> None:
    fake = client.fake
    status, body, _ = await client.call("GET", "/repos/acme/web/pulls/7", auth="")
    assert (status, body["message"]) == (401, "Requires authentication")
    status, body, _ = await client.call("GET", "/repos/acme/web/pulls/7", auth="token ghs_bogus")
    assert (status, body["message"]) == (401, "Bad credentials")
    status, _, _ = await client.call(
        "GET", "/repos/acme/web/pulls/7", auth=f"Bearer {app_jwt(fake)}"
    )
    assert status == 401
    assert (await client.call("GET", "/repos/acme/web/pulls/7"))[0] == 200
    assert (await client.call("GET", "/repos/acme/web/pulls/7", auth=f"Bearer {client.token}"))[
        0
    ] == 200
    fake.expire_tokens()
    assert (await client.call("GET", "/repos/acme/web/pulls/7"))[0] == 401
    await client.login()
    assert (await client.call("GET", "/repos/acme/web/pulls/7"))[0] == 200
    assert fake.token_issuances == 2


async def test_repositories_outside_the_installation_are_invisible(client: Client) -> None:
    fake = client.fake
    fake.add_repo("other/secret")
    fake.add_installation(77, account="acme", repositories=["acme/web"])
    status, body, _ = await client.call(
        "POST", "/app/installations/77/access_tokens", auth=f"Bearer {app_jwt(fake)}"
    )
    assert status == 201 and body["repository_selection"] == "selected"
    client.token = body["token"]
    assert (await client.call("GET", "/repos/acme/web/pulls/7"))[0] == 200
    assert (await client.call("GET", "/repos/other/secret/pulls"))[0] == 404


async def test_gidgethub_app_flow_works_end_to_end(fake_github: FakeGitHub) -> None:
    from gidgethub import apps

    seed(fake_github)
    async with aiohttp.ClientSession() as session:
        gh = GitHubAPI(session, "reachdiff-tests", base_url=fake_github.url)
        token = await apps.get_installation_access_token(
            gh,
            installation_id=str(fake_github.installation_id),
            app_id=str(fake_github.app_id),
            private_key=fake_github.private_key_pem,
        )
        gh = GitHubAPI(
            session, "reachdiff-tests", oauth_token=token["token"], base_url=fake_github.url
        )
        pull = await gh.getitem(
            "/repos/{owner}/{repo}/pulls/{number}", {"owner": "acme", "repo": "web", "number": 7}
        )
        assert (pull["head"]["sha"], pull["base"]["sha"], pull["user"]["login"]) == (B, C, "bob")
    assert fake_github.validation_errors == [] and fake_github.response_errors == []


# -- malformed requests --------------------------------------------------------------------------


async def test_malformed_requests_are_recorded_and_rejected(client: Client) -> None:
    fake = client.fake
    status, body, _ = await client.call(
        "POST", "/repos/acme/web/check-runs", {"name": 1, "head_sha": B}
    )
    assert status == 422 and "$.name" in body["message"]
    assert fake.check_runs == []
    status, _, _ = await client.call("GET", "/repos/acme/web/branches/main")
    assert status == 404
    status, _, _ = await client.call("GET", "/repos/acme/web/pulls/seven")
    assert status == 404
    status, _, _ = await client.call("GET", "/repos/acme/web/pulls?per_page=10&color=red")
    assert status == 200  # GitHub ignores unknown parameters, the fake reports them
    async with client.session.post(
        fake.url + "/repos/acme/web/issues/7/comments",
        data=b"{not json",
        headers={**UA, "Authorization": f"token {client.token}"},
    ) as response:
        assert response.status == 400
    async with client.session.get(
        fake.url + "/repos/acme/web/pulls/7",
        headers={"Authorization": f"token {client.token}"},
        skip_auto_headers=["User-Agent"],
    ) as response:
        assert response.status == 403
    status, _, _ = await client.call(
        "GET", "/repos/acme/web/pulls/7", headers={"X-GitHub-Api-Version": "2019-01-01"}
    )
    assert status == 400

    by_path = {(e["method"], e["path"]): e["problems"] for e in fake.validation_errors}
    assert any("$.name" in p for p in by_path[("POST", "/repos/acme/web/check-runs")])
    assert "no such operation" in by_path[("GET", "/repos/acme/web/branches/main")][0]
    assert any("pull_number" in p for p in by_path[("GET", "/repos/acme/web/pulls/seven")])
    assert any("'color'" in p for p in by_path[("GET", "/repos/acme/web/pulls")])
    assert any(
        "not valid JSON" in p for p in by_path[("POST", "/repos/acme/web/issues/7/comments")]
    )
    every = [p for e in fake.validation_errors for p in e["problems"]]
    assert any("User-Agent" in p for p in every)
    assert any("X-GitHub-Api-Version" in p for p in every)
    assert [r["status"] for r in fake.requests][-7:] == [422, 404, 404, 200, 400, 403, 400]


# -- tarballs, contents, commits, compare ------------------------------------------------------


async def test_tarball_redirects_to_codeload_with_the_commit_tree(client: Client) -> None:
    fake = client.fake
    status, _, headers = await client.call("GET", "/repos/acme/web/tarball/tighten")
    assert status == 302
    location = headers["Location"]
    assert location.startswith(fake.url + "/_codeload/acme/web/legacy.tar.gz/" + B)
    # Like codeload's signed URL: fetched without the API token.
    async with client.session.get(location) as response:
        assert response.status == 200
        data = await response.read()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        assert tar.pax_headers.get("comment") == B
        members = {m.name: m for m in tar.getmembers()}
        top = "acme-web-" + B[:7]
        assert set(members) == {
            top,
            f"{top}/README.md",
            f"{top}/k8s",
            f"{top}/k8s/np.yaml",
            f"{top}/k8s/new.yaml",
        }
        assert members[f"{top}/k8s"].isdir()
        extracted = tar.extractfile(f"{top}/k8s/np.yaml")
        assert extracted is not None and extracted.read() == POLICY_HEAD
    assert gzip.decompress(data)[:100]  # a real gzip stream

    async with client.session.get(location.split("?")[0]) as response:
        assert response.status == 404  # no signed token
    assert (await client.call("GET", "/repos/acme/web/tarball/nope"))[0] == 404
    assert fake.validation_errors == []


async def test_contents_returns_base64_directories_raw_and_404(client: Client) -> None:
    status, body, _ = await client.call("GET", f"/repos/acme/web/contents/k8s/np.yaml?ref={B}")
    assert status == 200 and body["encoding"] == "base64"
    assert base64.b64decode(body["content"]) == POLICY_HEAD
    assert body["sha"] == hashlib.sha1(b"blob %d\0" % len(POLICY_HEAD) + POLICY_HEAD).hexdigest()
    status, body, _ = await client.call(
        "GET", "/repos/acme/web/contents/k8s/np.yaml"
    )  # default branch
    assert base64.b64decode(body["content"]) == POLICY_BASE
    status, body, _ = await client.call("GET", f"/repos/acme/web/contents/k8s?ref={B}")
    assert status == 200 and [e["name"] for e in body] == ["new.yaml", "np.yaml"]
    status, body, _ = await client.call(
        "GET",
        f"/repos/acme/web/contents/k8s/np.yaml?ref={B}",
        headers={"Accept": "application/vnd.github.raw+json"},
        raw=True,
    )
    assert status == 200 and body == POLICY_HEAD
    assert (await client.call("GET", f"/repos/acme/web/contents/k8s/new.yaml?ref={A}"))[0] == 404
    assert (await client.call("GET", "/repos/acme/web/contents/k8s/np.yaml?ref=nobranch"))[0] == 404
    assert client.fake.validation_errors == []


async def test_compare_finds_the_merge_base_in_the_parents_graph(client: Client) -> None:
    fake = client.fake
    fake.add_commit(
        "acme/web", D, {**fake.repo("acme/web").commits[B].files, "x.yaml": b"x\n"}, parents=(B, C)
    )
    status, body, _ = await client.call("GET", f"/repos/acme/web/compare/main...{B}")
    assert status == 200
    assert body["merge_base_commit"]["sha"] == A and body["base_commit"]["sha"] == C
    assert (body["status"], body["ahead_by"], body["behind_by"]) == ("diverged", 1, 1)
    assert [f["filename"] for f in body["files"]] == [
        "k8s/new.yaml",
        "k8s/np.yaml",
    ]  # not README.md
    status, body, _ = await client.call("GET", f"/repos/acme/web/compare/{C}...{D}")
    assert body["merge_base_commit"]["sha"] == C and body["status"] == "ahead"
    assert [c["sha"] for c in body["commits"]] == [B, D]
    status, body, _ = await client.call("GET", f"/repos/acme/web/compare/{D}...{A}")
    assert body["merge_base_commit"]["sha"] == A and body["status"] == "behind"
    fake.add_commit("acme/web", "e" * 40, {"other": b""})  # unrelated root
    status, _, _ = await client.call("GET", f"/repos/acme/web/compare/{A}...{'e' * 40}")
    assert status == 404
    assert fake.validation_errors == [] and fake.response_errors == []


def _sha(n: int) -> str:
    return f"{n:040x}"


async def test_a_commit_lists_its_files_by_page(client: Client) -> None:
    """get-commit pages the commit's files only: 300 a page when per_page is not asked
    (more get link headers), else per_page (at most 100); every page holds the commit."""
    fake = client.fake
    many = {f"k8s/{i:03}.yaml": b"x\n" for i in range(305)}
    fake.add_commit("acme/web", D, {**fake.repo("acme/web").commits[C].files, **many}, (C,))
    status, body, headers = await client.call("GET", f"/repos/acme/web/commits/{D}")
    assert status == 200 and len(body["files"]) == 300 and body["parents"][0]["sha"] == C
    assert body["stats"]["additions"] == 305  # the whole commit's, on every page
    assert re.search(r"[?&]page=2>; rel=\"next\"", headers["Link"])
    assert "per_page" not in headers["Link"]
    _, rest, _ = await client.call("GET", f"/repos/acme/web/commits/{D}?page=2")
    assert [f["filename"] for f in rest["files"]] == [f"k8s/{i}.yaml" for i in range(300, 305)]
    _, one, headers = await client.call("GET", f"/repos/acme/web/commits/{D}?per_page=1")
    assert [f["filename"] for f in one["files"]] == ["k8s/000.yaml"]
    assert one["parents"][0]["sha"] == C and 'page=305>; rel="last"' in headers["Link"]
    _, capped, _ = await client.call("GET", f"/repos/acme/web/commits/{D}?per_page=500&page=4")
    assert [f["filename"] for f in capped["files"]] == [f"k8s/{i}.yaml" for i in range(300, 305)]
    # every page, followed by a paging client, lists each file once
    gh = GitHubAPI(client.session, "reachdiff-tests", oauth_token=client.token, base_url=fake.url)
    pages = [
        p
        async for p in gh.getiter(f"/repos/acme/web/commits/{D}?per_page=100", iterable_key="files")
    ]
    assert len(pages) == 305 and len({f["filename"] for f in pages}) == 305
    assert fake.validation_errors == [] and fake.response_errors == []


async def test_compare_pages_its_commits_when_asked(client: Client) -> None:
    """Unpaged: the last 250 commits ahead, the newest last; paged: per_page commits a
    page (default 30), the changed files on the first page only."""
    fake = client.fake
    parent = C
    for n in range(1, 261):
        files = {**fake.repo("acme/web").commits[C].files, f"c/{n}.yaml": b"x\n"}
        fake.add_commit("acme/web", _sha(n), files, (parent,))
        parent = _sha(n)
    path = f"/repos/acme/web/compare/{C}...{_sha(260)}"
    _, whole, headers = await client.call("GET", path)
    assert [c["sha"] for c in whole["commits"]] == [_sha(n) for n in range(11, 261)]
    assert whole["total_commits"] == 260 and "Link" not in headers
    assert [f["filename"] for f in whole["files"]] == ["c/260.yaml"]
    _, first, headers = await client.call("GET", path + "?per_page=1")
    assert [c["sha"] for c in first["commits"]] == [_sha(1)]
    assert first["merge_base_commit"]["sha"] == C and len(first["files"]) == 1
    assert 'page=260>; rel="last"' in headers["Link"]
    _, later, _ = await client.call("GET", path + "?page=2")
    assert [c["sha"] for c in later["commits"]] == [_sha(n) for n in range(31, 61)]
    assert "files" not in later and later["merge_base_commit"]["sha"] == C
    assert fake.validation_errors == [] and fake.response_errors == []


async def test_pulls_of_a_commit_are_the_open_ones_containing_it_paginated(
    client: Client,
) -> None:
    fake = client.fake
    fake.add_pull("acme/web", 8, base_ref="release", base_sha=A, head_sha=B, author="eve")
    fake.add_pull("acme/web", 9, base_ref="main", base_sha=C, head_sha=B, author="eve")
    fake.update_pull("acme/web", 9, state="closed")
    status, body, headers = await client.call(
        "GET", f"/repos/acme/web/commits/{B}/pulls?per_page=1"
    )
    assert status == 200 and [p["number"] for p in body] == [8]
    assert 'rel="next"' in headers["Link"]
    status, body, _ = await client.call(
        "GET", f"/repos/acme/web/commits/{B}/pulls?page=2&per_page=1"
    )
    assert [(p["number"], p["head"]["sha"], p["base"]["ref"]) for p in body] == [(7, B, "main")]
    # A commit of the default branch: only the merged pull request that brought it.
    status, body, _ = await client.call("GET", f"/repos/acme/web/commits/{C}/pulls")
    assert (status, body) == (200, [])
    status, body, _ = await client.call("GET", "/repos/acme/web/commits/heads/main?per_page=1")
    assert status == 200 and body["sha"] == C
    # The sha media type: the commit id alone (what the bot asks for a branch head).
    status, body, headers = await client.call(
        "GET",
        "/repos/acme/web/commits/heads/main",
        headers={"Accept": "application/vnd.github.sha"},
        raw=True,
    )
    assert (status, body) == (200, C.encode())
    assert headers["Content-Type"].startswith("application/vnd.github.sha")
    assert fake.validation_errors == [] and fake.response_errors == []


async def test_pull_files_are_the_diff_from_the_merge_base(client: Client) -> None:
    status, body, _ = await client.call("GET", "/repos/acme/web/pulls/7/files")
    assert status == 200
    files = {f["filename"]: f for f in body}
    assert set(files) == {"k8s/np.yaml", "k8s/new.yaml"}
    assert files["k8s/new.yaml"]["status"] == "added"
    assert files["k8s/np.yaml"]["patch"] == (
        "@@ -7,7 +7,7 @@\n line 7\n line 8\n line 9\n-line 10\n+line ten\n"
        " line 11\n line 12\n line 13"
    )
    assert (files["k8s/np.yaml"]["additions"], files["k8s/np.yaml"]["deletions"]) == (1, 1)
    status, body, _ = await client.call(
        "GET",
        "/repos/acme/web/pulls/7",
        headers={"Accept": "application/vnd.github.diff"},
        raw=True,
    )
    assert body.decode().startswith(
        "diff --git a/k8s/new.yaml b/k8s/new.yaml\nnew file mode 100644"
    )


def test_patches_mark_missing_final_newlines_and_detect_renames() -> None:
    patch = make_patch(b"a\nb", b"a\nc")
    assert (
        patch.text
        == "@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+c\n\\ No newline at end of file"
    )
    from tests.fakegithub.diffs import tree_changes

    changes = tree_changes({"old.yaml": b"x\n", "gone": b"1\n"}, {"new.yaml": b"x\n"})
    assert [(c.filename, c.status, c.previous_filename) for c in changes] == [
        ("gone", "removed", None),
        ("new.yaml", "renamed", "old.yaml"),
    ]


# -- check runs ----------------------------------------------------------------------------------


def _annotation(i: int, **extra: Any) -> dict[str, Any]:
    return {
        "path": "k8s/np.yaml",
        "start_line": 10,
        "end_line": 10,
        "annotation_level": "warning",
        "message": f"m{i}",
        **extra,
    }


async def test_check_runs_record_history_and_accumulate_annotations(client: Client) -> None:
    fake = client.fake
    status, run, _ = await client.call(
        "POST",
        "/repos/acme/web/check-runs",
        {"name": "reachdiff", "head_sha": B, "status": "in_progress"},
    )
    assert status == 201 and run["status"] == "in_progress" and run["conclusion"] is None
    assert [p["number"] for p in run["pull_requests"]] == [7]
    for batch in range(2):
        output = {
            "title": "t",
            "summary": "s",
            "annotations": [_annotation(batch * 50 + i) for i in range(50)],
        }
        status, _, _ = await client.call(
            "PATCH", f"/repos/acme/web/check-runs/{run['id']}", {"output": output}
        )
        assert status == 200
    status, body, _ = await client.call(
        "PATCH",
        f"/repos/acme/web/check-runs/{run['id']}",
        {"conclusion": "failure", "output": {"title": "T", "summary": "S", "text": "X"}},
    )
    assert (
        body["status"] == "completed"
        and body["completed_at"]
        and body["output"]["annotations_count"] == 100
    )
    record = fake.check_runs[0]
    assert record["output"]["title"] == "T" and record["output"]["text"] == "X"
    assert [a["message"] for a in record["output"]["annotations"]] == [f"m{i}" for i in range(100)]
    assert [h["method"] for h in record["history"]] == ["POST", "PATCH", "PATCH", "PATCH"]

    await client.call("POST", "/repos/acme/web/check-runs", {"name": "reachdiff", "head_sha": B})
    await client.call("POST", "/repos/acme/web/check-runs", {"name": "other", "head_sha": B})
    status, listing, _ = await client.call("GET", f"/repos/acme/web/commits/{B}/check-runs")
    assert listing["total_count"] == 2 and {r["name"] for r in listing["check_runs"]} == {
        "reachdiff",
        "other",
    }
    status, listing, _ = await client.call(
        "GET", "/repos/acme/web/commits/tighten/check-runs?filter=all&check_name=reachdiff"
    )
    assert listing["total_count"] == 2
    status, got, _ = await client.call("GET", f"/repos/acme/web/check-runs/{run['id']}")
    assert got["conclusion"] == "failure"
    assert fake.validation_errors == [] and fake.response_errors == []


async def test_check_run_limits_answer_422(client: Client) -> None:
    fake = client.fake
    status, run, _ = await client.call(
        "POST", "/repos/acme/web/check-runs", {"name": "reachdiff", "head_sha": B}
    )
    url = f"/repos/acme/web/check-runs/{run['id']}"
    ok = {"title": "t", "summary": "s"}
    rejected = {
        "51 annotations": {"output": {**ok, "annotations": [_annotation(i) for i in range(51)]}},
        "annotation title": {"output": {**ok, "annotations": [_annotation(0, title="x" * 256)]}},
        "annotation message": {
            "output": {**ok, "annotations": [_annotation(0, message="é" * 40000)]}
        },
        "columns on a range": {
            "output": {
                **ok,
                "annotations": [_annotation(0, end_line=11, start_column=1, end_column=2)],
            }
        },
        "summary": {"output": {"title": "t", "summary": "x" * 65536}},
        "text": {"output": {**ok, "text": "x" * 65536}},
        "no title on update": {"output": {"summary": "s"}},
        "completed without conclusion": {"status": "completed"},
        "completed_at without conclusion": {"completed_at": "2024-01-01T00:00:00Z"},
        "stale": {"conclusion": "stale"},
        "4 actions": {
            "actions": [{"label": "l", "description": "d", "identifier": str(i)} for i in range(4)]
        },
    }
    for label, body in rejected.items():
        status, answer, _ = await client.call("PATCH", url, body)
        assert status == 422, (label, answer)
    accepted = {
        "50 annotations": {"output": {**ok, "annotations": [_annotation(i) for i in range(50)]}},
        "title of 255": {"output": {**ok, "annotations": [_annotation(0, title="x" * 255)]}},
        "summary of 65535": {"output": {"title": "t", "summary": "x" * 65535}},
        "columns on one line": {
            "output": {**ok, "annotations": [_annotation(0, start_column=1, end_column=2)]}
        },
    }
    for label, body in accepted.items():
        status, answer, _ = await client.call("PATCH", url, body)
        assert status == 200, (label, answer)
    status, _, _ = await client.call(
        "POST", "/repos/acme/web/check-runs", {"name": "x", "head_sha": "f" * 40}
    )
    assert status == 422
    assert len(fake.check_runs[0]["history"]) == 1 + len(accepted)
    # Schema-level limits are also validation errors; semantic ones are not.
    schema_level = {e["problems"][0].split("$")[-1].split(":")[0] for e in fake.validation_errors}
    assert ".output.annotations" in schema_level and ".output.summary" in schema_level


async def test_issue_comment_body_limit(client: Client) -> None:
    fake = client.fake
    status, body, _ = await client.call(
        "POST", "/repos/acme/web/issues/7/comments", {"body": "x" * 65537}
    )
    assert status == 422 and "65536" in body["errors"][0]["message"]
    assert (await client.call("POST", "/repos/acme/web/issues/7/comments", {"body": "  "}))[
        0
    ] == 422
    status, comment, headers = await client.call(
        "POST", "/repos/acme/web/issues/7/comments", {"body": "y" * 65536}
    )
    assert status == 201 and headers["Location"] == comment["url"]
    assert comment["user"]["login"] == fake.bot_login and comment["user"]["type"] == "Bot"
    status, _, _ = await client.call(
        "PATCH", f"/repos/acme/web/issues/comments/{comment['id']}", {"body": "x" * 65537}
    )
    assert status == 422
    status, edited, _ = await client.call(
        "PATCH", f"/repos/acme/web/issues/comments/{comment['id']}", {"body": "edited"}
    )
    assert status == 200 and edited["body"] == "edited"
    [record] = fake.issue_comments[("acme/web", 7)]
    assert record["body"] == "edited" and record["history"] == ["y" * 65536]
    assert (await client.call("POST", "/repos/acme/web/issues/8/comments", {"body": "x"}))[0] == 404
    assert (await client.call("PATCH", "/repos/acme/web/issues/comments/1", {"body": "x"}))[
        0
    ] == 404


# -- reviews -------------------------------------------------------------------------------------


async def test_review_comments_must_land_in_the_diff(client: Client) -> None:
    fake = client.fake
    url = "/repos/acme/web/pulls/7/reviews"

    def review(*comments: dict[str, Any]) -> dict[str, Any]:
        return {"event": "COMMENT", "body": "reachdiff", "commit_id": B, "comments": list(comments)}

    line = {"path": "k8s/np.yaml", "body": "opens 5432"}
    rejected = {
        "path not in the pull request": review(
            {**line, "path": "README.md", "line": 1, "side": "RIGHT"}
        ),
        "path unknown": review({**line, "path": "nope.yaml", "subject_type": "file"}),
        "line outside the hunks": review({**line, "line": 2, "side": "RIGHT"}),
        "start line outside the hunks": review(
            {**line, "line": 10, "start_line": 1, "side": "RIGHT"}
        ),
        "line beyond the file": review({**line, "line": 99, "side": "RIGHT"}),
        "no line": review(dict(line)),
        "start after line": review({**line, "line": 9, "start_line": 11, "side": "RIGHT"}),
        "comment without body": {**review(), "event": "COMMENT", "body": ""},
        "changes without body": {"event": "REQUEST_CHANGES"},
    }
    for label, body in rejected.items():
        status, answer, _ = await client.call("POST", url, body)
        assert status == 422, (label, answer)
    assert fake.reviews == [] and fake.review_comments == []
    status, answer, _ = await client.call("POST", url, rejected["line outside the hunks"])
    assert answer["errors"] == ["Pull request review thread line must be part of the diff"]

    # Two hunks (lines 1-6 and 15-20): a multi-line comment may not span them.
    two_hunks = POLICY_BASE.replace(b"line 3\n", b"line three\n").replace(
        b"line 18\n", b"line 18!\n"
    )
    fake.add_commit(
        "acme/web", D, {"k8s/np.yaml": two_hunks, "README.md": b"hello\n"}, parents=(A,)
    )
    fake.add_pull("acme/web", 9, base_ref="main", base_sha=A, head_sha=D, author="bob")
    spanning = {**review({**line, "line": 16, "start_line": 5, "side": "RIGHT"}), "commit_id": D}
    status, answer, _ = await client.call("POST", "/repos/acme/web/pulls/9/reviews", spanning)
    assert status == 422 and "same hunk" in answer["errors"][0]
    within = {**review({**line, "line": 20, "start_line": 15, "side": "RIGHT"}), "commit_id": D}
    assert (await client.call("POST", "/repos/acme/web/pulls/9/reviews", within))[0] == 200
    fake.reviews.clear()
    fake.review_comments.clear()

    status, posted, _ = await client.call(
        "POST",
        url,
        review(
            {**line, "line": 10, "side": "RIGHT"},
            {**line, "line": 10, "side": "LEFT"},
            {**line, "line": 13, "start_line": 7, "side": "RIGHT"},
            {"path": "k8s/new.yaml", "subject_type": "file", "body": "new file"},
        ),
    )
    assert status == 200 and posted["state"] == "COMMENTED"
    got = [
        (c["path"], c["line"], c["side"], c["subject_type"], c["start_line"])
        for c in fake.review_comments
    ]
    assert got == [
        ("k8s/np.yaml", 10, "RIGHT", "line", None),
        ("k8s/np.yaml", 10, "LEFT", "line", None),
        ("k8s/np.yaml", 13, "RIGHT", "line", 7),
        ("k8s/new.yaml", None, None, "file", None),
    ]
    assert fake.review_comments[0]["diff_hunk"].endswith("+line ten")
    status, listed, _ = await client.call("GET", "/repos/acme/web/pulls/7/comments")
    assert [c["id"] for c in listed] == [c["id"] for c in fake.review_comments]

    fake.review_comment_scope = "file"
    status, _, _ = await client.call("POST", url, review({**line, "line": 2, "side": "RIGHT"}))
    assert status == 200
    status, _, _ = await client.call("POST", url, review({**line, "line": 21, "side": "RIGHT"}))
    assert status == 422
    assert fake.validation_errors == [] and fake.response_errors == []


async def test_single_review_comments_are_held_to_the_pull_request(client: Client) -> None:
    """`POST /pulls/{n}/comments`: GitHub's placement rules, its validation-error wording."""
    fake = client.fake
    url = "/repos/acme/web/pulls/7/comments"
    base = {"commit_id": B, "path": "k8s/np.yaml", "body": "opens 5432"}

    def thread_error(answer: dict[str, Any]) -> tuple[str, str, str | None]:
        first = answer["errors"][0]
        return first["code"], first["field"], first.get("message")

    # C is main's tip: a commit of the repository, not of the pull request.
    status, answer, _ = await client.call("POST", url, {**base, "commit_id": C, "line": 10})
    assert status == 422 and thread_error(answer) == (
        "custom",
        "pull_request_review_thread.end_commit_oid",
        "pull_request_review_thread.end_commit_oid is not part of the pull request",
    )
    status, answer, _ = await client.call(
        "POST", url, {**base, "path": "README.md", "subject_type": "file"}
    )
    assert status == 422
    assert thread_error(answer) == ("invalid", "pull_request_review_thread.path", None)
    status, answer, _ = await client.call("POST", url, {**base, "line": 2, "side": "RIGHT"})
    assert status == 422 and thread_error(answer) == (
        "custom",
        "pull_request_review_thread.line",
        "pull_request_review_thread.line must be part of the diff",
    )
    assert answer["errors"][1]["field"] == "pull_request_review_thread.diff_hunk"
    status, answer, _ = await client.call("POST", url, {**base, "line": 10, "start_line": 1})
    assert status == 422 and thread_error(answer)[1] == "pull_request_review_thread.start_line"
    status, answer, _ = await client.call("POST", url, dict(base))  # a line comment needs a line
    assert status == 422 and '"line" wasn\'t supplied' in answer["message"]
    status, answer, _ = await client.call("POST", url, {**base, "subject_type": "file", "body": ""})
    assert status == 422 and answer["errors"][0]["field"] == "body"
    assert fake.review_comments == [] and fake.reviews == []
    assert fake.validation_errors == []

    # What the OpenAPI description itself forbids is a validation error too.
    status, _, _ = await client.call("POST", url, {"path": "k8s/np.yaml", "body": "x", "line": 10})
    assert status == 422
    [problem] = fake.validation_errors
    assert problem["operation"] == "pulls/create-review-comment"
    assert any("commit_id" in p for p in problem["problems"])
    fake.validation_errors.clear()

    # A file comment carries no line; a line comment lands on a line of the hunk.
    status, on_file, headers = await client.call(
        "POST", url, {**base, "subject_type": "file", "line": 2}
    )
    assert status == 201 and on_file["subject_type"] == "file" and "line" not in on_file
    assert headers["Location"] == on_file["url"]
    status, on_line, _ = await client.call("POST", url, {**base, "line": 10, "side": "RIGHT"})
    assert status == 201 and (on_line["line"], on_line["side"]) == (10, "RIGHT")
    assert on_line["diff_hunk"].endswith("+line ten")
    got = [(c["path"], c["subject_type"], c["line"], c["commit_id"]) for c in fake.review_comments]
    assert got == [("k8s/np.yaml", "file", None, B), ("k8s/np.yaml", "line", 10, B)]
    # Each lone comment comes with a COMMENTED review of its own, as on GitHub.
    reviews = {r["id"]: r for r in fake.reviews}
    assert [reviews[c["review_id"]]["state"] for c in fake.review_comments] == ["COMMENTED"] * 2
    status, listed, _ = await client.call("GET", url)
    assert [(c["id"], c["subject_type"]) for c in listed] == [
        (on_file["id"], "file"),
        (on_line["id"], "line"),
    ]

    # An older commit of the pull request is accepted (the comment shows as outdated).
    fake.add_commit("acme/web", D, {"k8s/np.yaml": POLICY_HEAD}, parents=(B,))
    fake.set_pull_head("acme/web", 7, D)
    status, _, _ = await client.call("POST", url, {**base, "subject_type": "file"})
    assert status == 201
    gone = {**base, "commit_id": D, "path": "k8s/new.yaml", "subject_type": "file"}
    status, answer, _ = await client.call("POST", url, gone)
    # k8s/new.yaml is gone again in D: no longer a file of the pull request.
    assert status == 422 and thread_error(answer)[1] == "pull_request_review_thread.path"
    assert fake.validation_errors == [] and fake.response_errors == []

    # Replies are not modelled: refused loudly, never answered as if placed.
    status, _, _ = await client.call("POST", url, {**base, "in_reply_to": on_line["id"]})
    assert status == 501 and len(fake.review_comments) == 3
    assert fake.validation_errors == [] and fake.response_errors == []


async def test_reviews_from_helpers_and_the_bot_are_listed(client: Client) -> None:
    fake = client.fake
    approved = fake.add_review("acme/web", 7, user="alice", state="APPROVED", commit_id=B)
    fake.add_review("acme/web", 7, user="carol", state="CHANGES_REQUESTED", commit_id=A)
    dismissed = fake.dismiss_review("acme/web", 7, approved["id"], message="outdated")
    assert dismissed["state"] == "DISMISSED"
    await client.call(
        "POST", "/repos/acme/web/pulls/7/reviews", {"event": "APPROVE", "commit_id": B}
    )
    _, listed, _ = await client.call("GET", "/repos/acme/web/pulls/7/reviews")
    assert [(r["user"]["login"], r["state"], r["commit_id"]) for r in listed] == [
        ("alice", "DISMISSED", B),
        ("carol", "CHANGES_REQUESTED", A),
        (fake.bot_login, "APPROVED", B),
    ]
    assert fake.response_errors == []


# -- teams and permissions -----------------------------------------------------------------------


async def test_teams_and_collaborator_permissions(client: Client) -> None:
    fake = client.fake
    fake.add_user("dave")
    status, members, _ = await client.call("GET", "/orgs/acme/teams/netsec/members")
    assert [(m["login"], m["role"]) for m in members] == [
        ("alice", "maintainer"),
        ("carol", "member"),
    ]
    status, members, _ = await client.call("GET", "/orgs/acme/teams/netsec/members?role=maintainer")
    assert [m["login"] for m in members] == ["alice"]
    status, membership, _ = await client.call("GET", "/orgs/acme/teams/netsec/memberships/carol")
    assert (status, membership["state"], membership["role"]) == (200, "active", "member")
    assert (await client.call("GET", "/orgs/acme/teams/netsec/memberships/bob"))[0] == 404
    assert (await client.call("GET", "/orgs/acme/teams/nobody/members"))[0] == 404
    expected = {
        "alice": ("write", "write"),
        "tia": ("read", "triage"),
        "dave": ("read", "read"),
        "acme": ("admin", "admin"),
    }
    for login, (permission, role) in expected.items():
        status, body, _ = await client.call(
            "GET", f"/repos/acme/web/collaborators/{login}/permission"
        )
        assert (status, body["permission"], body["role_name"]) == (200, permission, role), login
    assert (await client.call("GET", "/repos/acme/web/collaborators/ghost/permission"))[0] == 404
    fake.add_repo("acme/private", private=True)
    status, body, _ = await client.call("GET", "/repos/acme/private/collaborators/dave/permission")
    assert body["permission"] == "none"
    assert fake.validation_errors == [] and fake.response_errors == []


# -- pagination and pulls listing ----------------------------------------------------------------


async def test_lists_paginate_with_link_headers(client: Client) -> None:
    fake = client.fake
    for i in range(35):
        await client.call("POST", "/repos/acme/web/issues/7/comments", {"body": f"c{i}"})
    status, first, headers = await client.call("GET", "/repos/acme/web/issues/7/comments")
    assert status == 200 and len(first) == 30 and 'rel="next"' in headers["Link"]
    gh = GitHubAPI(client.session, "reachdiff-tests", oauth_token=client.token, base_url=fake.url)
    bodies = [c["body"] async for c in gh.getiter("/repos/acme/web/issues/7/comments?per_page=10")]
    assert bodies == [f"c{i}" for i in range(35)]
    fake.add_pull(
        "acme/web", 8, base_ref="main", base_sha=C, head_sha=C, author="carol", state="closed"
    )
    _, pulls, _ = await client.call("GET", "/repos/acme/web/pulls")
    assert [p["number"] for p in pulls] == [7]
    _, pulls, _ = await client.call("GET", "/repos/acme/web/pulls?state=all&direction=asc")
    assert [p["number"] for p in pulls] == [7, 8]
    _, pulls, _ = await client.call("GET", "/repos/acme/web/pulls?head=acme:tighten")
    assert [p["number"] for p in pulls] == [7]
    assert fake.validation_errors == [] and fake.response_errors == []


# -- fault injection -----------------------------------------------------------------------------


async def test_fail_next_injects_errors_then_recovers(client: Client) -> None:
    fake = client.fake
    fake.fail_next("GET", "/repos/*/pulls/*", status=502, times=2)
    fake.fail_next("POST", "/repos/acme/web/check-runs")
    assert (await client.call("POST", "/repos/acme/web/pulls/7/reviews", {"event": "APPROVE"}))[
        0
    ] == 200
    assert (await client.call("GET", "/repos/acme/web/pulls/7"))[0] == 502
    assert (await client.call("GET", "/repos/acme/web/pulls/7"))[0] == 502
    assert (await client.call("GET", "/repos/acme/web/pulls/7"))[0] == 200
    status, body, _ = await client.call(
        "POST", "/repos/acme/web/check-runs", {"name": "r", "head_sha": B}
    )
    assert status == 502 and fake.check_runs == []
    assert (await client.call("POST", "/repos/acme/web/check-runs", {"name": "r", "head_sha": B}))[
        0
    ] == 201

    fake.fail_next_secondary_rate_limit("POST", re.compile(r"/issues/\d+/comments$"))
    status, body, headers = await client.call(
        "POST", "/repos/acme/web/issues/7/comments", {"body": "x"}
    )
    assert (
        status == 403 and headers["retry-after"] == "1" and headers["x-ratelimit-remaining"] != "0"
    )
    assert body == SECONDARY_RATE_LIMIT_BODY and "secondary rate limit" in body["message"]
    assert fake.issue_comments[("acme/web", 7)] == []
    assert (await client.call("POST", "/repos/acme/web/issues/7/comments", {"body": "x"}))[0] == 201
    fake.fail_next(
        "*",
        "/repos/acme/web/pulls/7",
        status=500,
        body=b"<html>boom</html>",
        headers={"X-Custom": "1"},
    )
    status, body, headers = await client.call("GET", "/repos/acme/web/pulls/7", raw=True)
    assert (status, body, headers["X-Custom"]) == (500, b"<html>boom</html>", "1")
    assert fake.faults.pending == 0 and len(fake.faults.injected) == 5


# -- responses against the documented schemas ----------------------------------------------------


async def test_every_operation_answers_in_its_documented_shape(client: Client) -> None:
    """Drive all operations and validate each response body against its schema."""
    fake = client.fake
    _, run, _ = await client.call(
        "POST",
        "/repos/acme/web/check-runs",
        {"name": "r", "head_sha": B, "output": {"title": "t", "summary": "s"}},
    )
    _, comment, _ = await client.call("POST", "/repos/acme/web/issues/7/comments", {"body": "x"})
    fake.add_review("acme/web", 7, user="alice", state="APPROVED", commit_id=B)
    calls: list[tuple[str, str, Any]] = [
        ("GET", "/repos/acme/web/pulls/7", None),
        ("GET", "/repos/acme/web/pulls?state=all", None),
        ("GET", "/repos/acme/web/pulls/7/files", None),
        ("GET", f"/repos/acme/web/contents/k8s/np.yaml?ref={B}", None),
        ("GET", f"/repos/acme/web/contents/k8s?ref={B}", None),
        ("GET", "/repos/acme/web/tarball/main", None),
        ("GET", f"/repos/acme/web/compare/main...{B}", None),
        ("GET", f"/repos/acme/web/commits/{B}", None),
        ("GET", f"/repos/acme/web/commits/{A}", None),
        ("GET", f"/repos/acme/web/commits/{B}/pulls", None),
        (
            "PATCH",
            f"/repos/acme/web/check-runs/{run['id']}",
            {
                "conclusion": "neutral",
                "output": {"title": "t", "summary": "s", "annotations": [_annotation(1)]},
            },
        ),
        ("GET", f"/repos/acme/web/check-runs/{run['id']}", None),
        ("GET", f"/repos/acme/web/commits/{B}/check-runs", None),
        ("GET", "/repos/acme/web/issues/7/comments", None),
        ("PATCH", f"/repos/acme/web/issues/comments/{comment['id']}", {"body": "y"}),
        (
            "POST",
            "/repos/acme/web/pulls/7/reviews",
            {
                "event": "COMMENT",
                "body": "b",
                "comments": [{"path": "k8s/np.yaml", "line": 10, "side": "RIGHT", "body": "c"}],
            },
        ),
        ("GET", "/repos/acme/web/pulls/7/reviews", None),
        (
            "POST",
            "/repos/acme/web/pulls/7/comments",
            {"commit_id": B, "path": "k8s/new.yaml", "subject_type": "file", "body": "f"},
        ),
        ("GET", "/repos/acme/web/pulls/7/comments", None),
        ("GET", "/orgs/acme/teams/netsec/members", None),
        ("GET", "/orgs/acme/teams/netsec/memberships/alice", None),
        ("GET", "/repos/acme/web/collaborators/alice/permission", None),
        ("GET", f"/repos/acme/web/git/trees/{B}?recursive=1", None),
        ("GET", "/installation/repositories", None),
        ("GET", "/repos/acme/web/pulls/99", None),
    ]
    for method, path, body in calls:
        status, answer, _ = await client.call(method, path, body)
        assert status < 400 or path.endswith("/99"), (path, answer)
        problems = validate_response(
            method, path.split("?")[0], status, answer if isinstance(answer, (dict, list)) else None
        )
        assert problems == [], problems
    jwt = fake.app_jwt()
    for path in ("/app", "/app/installations"):
        status, answer, _ = await client.call("GET", path, None, auth=f"Bearer {jwt}")
        assert status == 200, answer
        assert validate_response("GET", path, status, answer) == []
    exercised = {r["operation"] for r in fake.requests if r["status"] and r["status"] < 400}
    assert exercised >= {op.operation_id for op in default_subset().operations}
    assert fake.response_errors == [] and fake.validation_errors == []


def test_response_validation_catches_unrealistic_shapes() -> None:
    assert validate_response("GET", "/repos/o/r/pulls/1", 200, {"number": 1})  # missing fields
    team = {"url": "https://x/y", "role": "member", "state": "active"}
    assert validate_response("GET", "/orgs/o/teams/t/memberships/u", 200, team) == []
    assert validate_response("GET", "/orgs/o/teams/t/memberships/u", 200, {**team, "state": "gone"})
    assert validate_response("POST", "/repos/o/r/check-runs", 200, {}) == [
        "POST /repos/{owner}/{repo}/check-runs -> 200: status not documented"
    ]


# -- webhook payloads ----------------------------------------------------------------------------


def test_load_payload_returns_the_stored_bytes() -> None:
    raw = load_payload("pull_request", "opened")
    assert json.loads(raw)["action"] == "opened"
    assert json.loads(load_payload("ping"))["zen"]
    with pytest.raises(FileNotFoundError, match="opened"):
        load_payload("pull_request", "edited")


def test_make_payload_adapts_the_example_to_the_fake() -> None:
    payload = make_payload(
        "pull_request",
        "synchronize",
        full_name="acme/web",
        number=7,
        head_sha=B,
        base_sha=C,
        head_ref="tighten",
        base_ref="main",
        before=A,
        installation_id=31337,
        author="bob",
        sender="bob",
        api_url="http://127.0.0.1:9",
        overrides={"pull_request.draft": True},
    )
    data = payload.data
    assert json.loads(payload.body) == data
    pull = data["pull_request"]
    assert (
        data["repository"]["full_name"],
        data["repository"]["name"],
        data["repository"]["owner"]["login"],
    ) == ("acme/web", "web", "acme")
    assert (pull["number"], data["number"], pull["head"]["sha"], pull["base"]["sha"]) == (
        7,
        7,
        B,
        C,
    )
    assert (data["after"], data["before"]) == (B, A)
    assert (pull["head"]["ref"], pull["base"]["ref"], pull["base"]["label"]) == (
        "tighten",
        "main",
        "acme:main",
    )
    assert pull["base"]["repo"]["full_name"] == "acme/web" and pull["user"]["login"] == "bob"
    assert (
        data["sender"]["login"] == "bob"
        and data["installation"]["id"] == 31337
        and pull["draft"] is True
    )
    assert pull["url"] == "http://127.0.0.1:9/repos/acme/web/pulls/7"
    text = payload.body.decode()
    assert "api.github.com" not in text and "Codertocat/Hello-World" not in text
    assert "ec26c3e57ca3a959ca5aad62de7213c562f8c821" not in text

    # Examples without `installation` get one (real App deliveries always carry it).
    run = make_payload("check_run", "completed", installation_id=5, head_sha=B).data
    assert run["installation"]["id"] == 5 and run["check_run"]["head_sha"] == B


def test_webhook_headers_sign_like_github() -> None:
    body = make_payload("pull_request", "opened", installation_id=1).body
    headers = webhook_headers("pull_request", body, "s3cret", delivery_id="d-1", app_id=42)
    expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert headers["X-Hub-Signature-256"] == expected and headers["X-GitHub-Delivery"] == "d-1"
    event = sansio.Event.from_http(
        {k.lower(): v for k, v in headers.items()}, body, secret="s3cret"
    )
    assert (event.event, event.delivery_id, event.data["action"]) == (
        "pull_request",
        "d-1",
        "opened",
    )
    from gidgethub import ValidationFailure

    with pytest.raises(ValidationFailure):
        sansio.Event.from_http(
            {k.lower(): v for k, v in headers.items()}, body + b" ", secret="s3cret"
        )


# -- running outside an event loop ---------------------------------------------------------------


def test_serve_in_thread_serves_synchronous_clients() -> None:
    fake = FakeGitHub()
    with fake.serve_in_thread():
        request = urllib.request.Request(fake.url + "/repos/acme/web/pulls/1", headers=UA)
        with pytest.raises(urllib.error.HTTPError) as failure:
            urllib.request.urlopen(request, timeout=5)
        assert failure.value.code == 401
    assert fake.requests[0]["status"] == 401


# -- submodules, export-ignore and git trees ------------------------------------------------------


async def test_archives_leave_out_submodules_and_export_ignored_files(client: Client) -> None:
    fake = client.fake
    E = "e" * 40
    files = {
        ".gitattributes": b"hidden/** export-ignore\nsecret.yaml export-ignore\n",
        "k8s/np.yaml": b"kind: NetworkPolicy\n",
        "k8s/secret.yaml": b"x: 1\n",
        "hidden/a.yaml": b"x: 2\n",
    }
    fake.add_commit("acme/web", E, files, parents=[A], gitlinks={"k8s/vendor": D})
    status, _, headers = await client.call("GET", f"/repos/acme/web/tarball/{E}")
    async with client.session.get(headers["Location"]) as response:
        data = await response.read()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        members = {m.name.split("/", 1)[1]: m for m in tar.getmembers() if "/" in m.name}
    assert "k8s/np.yaml" in members and ".gitattributes" in members
    assert "k8s/secret.yaml" not in members and "hidden/a.yaml" not in members
    assert members["k8s/vendor"].isdir()
    assert not [n for n in members if n.startswith("k8s/vendor/")]

    status, tree, _ = await client.call("GET", f"/repos/acme/web/git/trees/{E}?recursive=1")
    assert status == 200 and tree["truncated"] is False
    by_path = {e["path"]: e for e in tree["tree"]}
    assert by_path["k8s/vendor"] == {
        "path": "k8s/vendor",
        "mode": "160000",
        "type": "commit",
        "sha": D,
    }
    assert by_path["k8s/secret.yaml"]["type"] == "blob" and by_path["k8s"]["type"] == "tree"
    fake.tree_entry_limit = 2
    status, tree, _ = await client.call("GET", f"/repos/acme/web/git/trees/{E}?recursive=1")
    assert tree["truncated"] is True and len(tree["tree"]) == 2
    fake.tree_entry_limit = 100_000
    status, top, _ = await client.call("GET", f"/repos/acme/web/git/trees/{E}")
    assert {e["path"] for e in top["tree"]} == {".gitattributes", "k8s", "hidden"}
    assert fake.validation_errors == [] and fake.response_errors == []
