#!/usr/bin/env python3
"""Extract the GitHub REST operations reachdiff uses from octokit's OpenAPI description.

Usage:
    cd /tmp && npm pack @octokit/openapi
    python scripts/update_github_openapi.py /tmp/octokit-openapi-<version>.tgz
    # or an unpacked package: .../package/generated/api.github.com.json

The fake GitHub in tests/fakegithub/ validates every request the bot makes against the
subset written to tests/fixtures/github/openapi-subset.json, so the bot is held to GitHub's
published description instead of to what its authors remember of it. The full description
is ~10 MB; the subset keeps only the listed operations and the components they reference
(transitively), with sorted keys so that regenerating it gives a reviewable diff.
"""

from __future__ import annotations

import argparse
import json
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = REPO_ROOT / "tests" / "fixtures" / "github"
OUT_SPEC = OUT_DIR / "openapi-subset.json"
OUT_LICENSE = OUT_DIR / "LICENSE.octokit-openapi"

SPEC_MEMBER = "package/generated/api.github.com.json"
PACKAGE_MEMBER = "package/package.json"
LICENSE_MEMBER = "package/LICENSE"

# (method, path) exactly as GitHub's description spells them.
OPERATIONS: tuple[tuple[str, str], ...] = (
    ("post", "/app/installations/{installation_id}/access_tokens"),
    ("get", "/repos/{owner}/{repo}/pulls/{pull_number}"),
    ("get", "/repos/{owner}/{repo}/pulls"),
    ("get", "/repos/{owner}/{repo}/pulls/{pull_number}/files"),
    ("get", "/repos/{owner}/{repo}/contents/{path}"),
    ("get", "/repos/{owner}/{repo}/tarball/{ref}"),
    ("get", "/repos/{owner}/{repo}/compare/{basehead}"),
    ("get", "/repos/{owner}/{repo}/commits/{ref}"),
    ("get", "/repos/{owner}/{repo}/commits/{commit_sha}/pulls"),
    ("post", "/repos/{owner}/{repo}/check-runs"),
    ("patch", "/repos/{owner}/{repo}/check-runs/{check_run_id}"),
    ("get", "/repos/{owner}/{repo}/check-runs/{check_run_id}"),
    ("get", "/repos/{owner}/{repo}/commits/{ref}/check-runs"),
    ("get", "/repos/{owner}/{repo}/issues/{issue_number}/comments"),
    ("post", "/repos/{owner}/{repo}/issues/{issue_number}/comments"),
    ("patch", "/repos/{owner}/{repo}/issues/comments/{comment_id}"),
    ("get", "/repos/{owner}/{repo}/pulls/{pull_number}/reviews"),
    ("post", "/repos/{owner}/{repo}/pulls/{pull_number}/reviews"),
    ("get", "/repos/{owner}/{repo}/pulls/{pull_number}/comments"),
    ("post", "/repos/{owner}/{repo}/pulls/{pull_number}/comments"),
    ("get", "/orgs/{org}/teams/{team_slug}/members"),
    ("get", "/orgs/{org}/teams/{team_slug}/memberships/{username}"),
    ("get", "/repos/{owner}/{repo}/collaborators/{username}/permission"),
    ("get", "/app"),
    ("get", "/app/installations"),
    ("get", "/installation/repositories"),
    ("get", "/repos/{owner}/{repo}/git/trees/{tree_sha}"),
)

PACKAGE_NAME = "@octokit/openapi"
SPEC_FILE = "generated/api.github.com.json"


def _read_inputs(source: Path) -> tuple[dict[str, Any], dict[str, Any], str]:
    """Return (description, package.json, LICENSE text) from a tarball or an unpacked file."""
    if source.name.endswith((".tgz", ".tar.gz")):
        with tarfile.open(source, "r:gz") as tar:

            def member(name: str) -> bytes:
                f = tar.extractfile(name)
                if f is None:
                    raise SystemExit(f"{source}: {name} is not a regular file")
                return f.read()

            return (
                json.loads(member(SPEC_MEMBER)),
                json.loads(member(PACKAGE_MEMBER)),
                member(LICENSE_MEMBER).decode("utf-8"),
            )
    spec = json.loads(source.read_bytes())
    # An unpacked package keeps package.json and LICENSE two levels above the spec file.
    package_dir = source.resolve().parent.parent
    package_json = package_dir / "package.json"
    license_file = package_dir / "LICENSE"
    if not package_json.is_file() or not license_file.is_file():
        raise SystemExit(
            f"{source}: expected package.json and LICENSE in {package_dir} "
            "(pass the npm tarball or a file inside an unpacked package)"
        )
    return spec, json.loads(package_json.read_bytes()), license_file.read_text("utf-8")


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            yield ref
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _resolve_pointer(spec: dict[str, Any], ref: str) -> tuple[tuple[str, ...], Any]:
    if not ref.startswith("#/"):
        raise SystemExit(f"external $ref not supported: {ref}")
    parts = tuple(p.replace("~1", "/").replace("~0", "~") for p in ref[2:].split("/"))
    node: Any = spec
    for part in parts:
        node = node[part]
    return parts, node


def extract(spec: dict[str, Any], package: dict[str, Any], license_text: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for method, path in OPERATIONS:
        try:
            operation = spec["paths"][path][method]
        except KeyError:
            raise SystemExit(f"{method.upper()} {path} is not in the description") from None
        entry = paths.setdefault(path, {})
        entry[method] = operation
        # Path-level parameters apply to every operation of the path.
        if "parameters" in spec["paths"][path]:
            entry["parameters"] = spec["paths"][path]["parameters"]

    components: dict[str, dict[str, Any]] = {}
    pending = list(_refs(paths))
    seen: set[str] = set()
    while pending:
        ref = pending.pop()
        if ref in seen:
            continue
        seen.add(ref)
        parts, target = _resolve_pointer(spec, ref)
        if len(parts) != 3 or parts[0] != "components":
            raise SystemExit(f"unexpected $ref shape: {ref}")
        components.setdefault(parts[1], {})[parts[2]] = target
        pending.extend(_refs(target))

    version = str(package["version"])
    copyright_line = license_text.strip().splitlines()[0]
    info = dict(spec["info"])
    info["x-reachdiff-source"] = {
        "package": PACKAGE_NAME,
        "version": version,
        "file": SPEC_FILE,
        "license": str(package.get("license", "")),
        "copyright": copyright_line,
        "license-file": OUT_LICENSE.name,
        "operations": [f"{m.upper()} {p}" for m, p in OPERATIONS],
        "generator": "scripts/update_github_openapi.py",
    }
    return {
        "openapi": spec["openapi"],
        "info": info,
        "servers": spec.get("servers", []),
        "paths": paths,
        "components": components,
    }


def license_note(package: dict[str, Any], license_text: str) -> str:
    return (
        f"tests/fixtures/github/{OUT_SPEC.name} is an extract of {SPEC_FILE} from the npm\n"
        f"package {PACKAGE_NAME} version {package['version']} (GitHub's REST API description with\n"
        "octokit's extensions), generated by scripts/update_github_openapi.py.\n"
        f"That package is distributed under the {package.get('license', '')} license below.\n"
        "\n" + license_text.rstrip() + "\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="npm tarball or api.github.com.json")
    parser.add_argument("--out", type=Path, default=OUT_SPEC)
    parser.add_argument("--license-out", type=Path, default=OUT_LICENSE)
    args = parser.parse_args(argv)

    spec, package, license_text = _read_inputs(args.source)
    if package.get("name") != PACKAGE_NAME:
        raise SystemExit(f"{args.source}: package is {package.get('name')!r}, not {PACKAGE_NAME}")
    subset = extract(spec, package, license_text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(subset, indent=1, sort_keys=True, ensure_ascii=False) + "\n", "utf-8"
    )
    args.license_out.write_text(license_note(package, license_text), "utf-8")
    n_ops = sum(1 for p in subset["paths"].values() for k in p if k != "parameters")
    n_comp = sum(len(v) for v in subset["components"].values())
    print(f"wrote {args.out} ({n_ops} operations, {n_comp} components)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
