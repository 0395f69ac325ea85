"""The ``reachdiff`` command: ``map``, ``diff``, ``review`` and ``serve``.

Exit codes are a contract CI gates on: 0 nothing widened, 1 access widened, 2 bad input
(the message names file, line and the fix), 3 an internal error (a bug: please report it).
"""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Callable, Sequence
from typing import Any

from analysis.errors import ManifestError
from analysis.formats import diff_text, map_csv, map_dot, map_markdown, map_text, maps_dot
from analysis.reachability import ReachabilityMap, compute_map
from analysis.report import diff_to_json, json_text, map_to_json
from bot.environment_diff import (
    EnvironmentTree,
    MultiDiff,
    diff_environments,
    diff_plain_files,
    is_plain,
    load_environments,
)
from bot.gitrefs import GitError, find_repository, merge_base, read_file_at, read_ref
from bot.settings import SETTINGS_PATH, SettingsError
from bot.trees import TreeError, read_directory

EXIT_OK, EXIT_WIDENED, EXIT_INPUT, EXIT_INTERNAL = 0, 1, 2, 3

MAP_FORMATS: dict[str, Callable[[ReachabilityMap], str]] = {
    "text": map_text,
    "json": lambda m: json_text(map_to_json(m)),
    "csv": map_csv,
    "md": map_markdown,
    "dot": map_dot,
}


def _environments(files: dict[str, bytes]) -> list[EnvironmentTree]:
    return load_environments(files)


def _report_caveats(diff: MultiDiff) -> int | None:
    """Notes go to stderr; anything left unanalysed makes the run fail closed (exit 2)."""
    for note in diff.notes:
        print(f"reachdiff: note: {note}", file=sys.stderr)
    for reason in diff.unanalysed:
        print(f"reachdiff: not analysed: {reason}", file=sys.stderr)
    return EXIT_INPUT if diff.unanalysed else None


def _diff_output(diff: MultiDiff, fmt: str, **markdown: Any) -> str:
    if fmt == "json":
        if diff.environments == ("",):  # plain manifests: exactly the documented contract
            return json_text(diff_to_json(diff.per_environment[0][1]))
        doc = diff_to_json(diff)
        doc.update(
            environments=list(diff.environments),
            notes=list(diff.notes),
            unanalysed=list(diff.unanalysed),
        )
        return json_text(doc)
    if fmt == "md":
        from bot.local_review import diff_markdown  # jinja2 and the templates: only here

        return diff_markdown(diff, **markdown)
    return diff_text(diff)


def _finish(diff: MultiDiff, output: str) -> int:
    sys.stdout.write(output)
    failed = _report_caveats(diff)
    if failed is not None:
        return failed
    return EXIT_WIDENED if diff.widening else EXIT_OK


def cmd_map(args: argparse.Namespace) -> int:
    envs = _environments(read_directory(args.dir))
    if [e.name for e in envs] == [""]:
        sys.stdout.write(MAP_FORMATS[args.format](compute_map(envs[0].tree)))
        return EXIT_OK
    sys.stdout.write(_maps_output([(e, compute_map(e.tree)) for e in envs], args.format))
    unanalysed = [u for e in envs for u in e.unanalysed]
    for reason in unanalysed:
        print(f"reachdiff: not analysed: {reason}", file=sys.stderr)
    return EXIT_INPUT if unanalysed else EXIT_OK


def _maps_output(maps: list[tuple[EnvironmentTree, ReachabilityMap]], fmt: str) -> str:
    """Several environments' maps: every endpoint id carries its environment, as in a diff,
    so no two endpoints (or headings) of different environments look the same."""
    if fmt == "json":
        # The documented top-level shape holds every environment; ``environments`` adds
        # each one's own map (ids as inside the environment), kept from earlier releases.
        doc: dict[str, Any] = {"endpoints": [], "connections": []}
        for env, rmap in maps:
            part = map_to_json(rmap, env.name)
            doc["endpoints"] += part["endpoints"]
            doc["connections"] += part["connections"]
        doc["environments"] = [
            {"environment": env.name, "kind": env.kind, **map_to_json(rmap)} for env, rmap in maps
        ]
        doc["unanalysed"] = [u for env, _ in maps for u in env.unanalysed]
        return json_text(doc)
    if fmt == "dot":
        return maps_dot([(rmap, env.name) for env, rmap in maps])
    if fmt == "csv":
        return "".join(map_csv(rmap, env.name, header=n == 0) for n, (env, rmap) in enumerate(maps))
    if fmt == "md":
        return "\n".join(map_markdown(rmap, env.name) for env, rmap in maps)
    return "\n".join(
        f"== environment {env.name or '(plain manifests)'} ({env.kind}) ==\n"
        + map_text(rmap, env.name)
        for env, rmap in maps
    )


def _diff_files(base: dict[str, bytes], head: dict[str, bytes]) -> MultiDiff:
    if is_plain(base) and is_plain(head):
        return diff_plain_files(base, head)
    return diff_environments(_environments(base), _environments(head))


def cmd_diff(args: argparse.Namespace) -> int:
    diff = _diff_files(read_directory(args.base), read_directory(args.head))
    return _finish(diff, _diff_output(diff, args.format))


def cmd_review(args: argparse.Namespace) -> int:
    repo = find_repository(args.repo)
    base_ref = merge_base(repo, args.base, args.head) if args.merge_base else args.base
    base = read_ref(repo, base_ref, args.path)
    head = read_ref(repo, args.head, args.path)
    for warning in base.warnings + head.warnings:
        print(f"reachdiff: warning: {warning}", file=sys.stderr)
    diff = _diff_files(base.files, head.files)
    how = "merge base of" if args.merge_base else "base"
    output = _diff_output(
        diff,
        args.format,
        base_sha=base.commit_sha,
        head_sha=head.commit_sha,
        compared=f"{how} `{args.base}` vs `{args.head}`",
        # Like the bot: the rules come from the base side, never from the change.
        settings_text=read_file_at(repo, base_ref, SETTINGS_PATH),
    )
    return _finish(diff, output)


def cmd_serve(args: argparse.Namespace) -> int:
    from bot.server import serve

    return serve(args.port)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reachdiff",
        description="Exact Kubernetes NetworkPolicy reachability: map a manifest tree, "
        "diff two, review a branch. Exit 0: nothing widened; 1: access widened; 2: bad input.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("map", help="who may connect to whom in one manifest tree")
    p.add_argument("dir")
    p.add_argument("--format", choices=sorted(MAP_FORMATS), default="text")
    p.set_defaults(run=cmd_map)

    p = sub.add_parser("diff", help="paths opened and closed between two manifest trees")
    p.add_argument("base")
    p.add_argument("head")
    p.add_argument("--format", choices=["text", "json", "md"], default="text")
    p.set_defaults(run=cmd_diff)

    p = sub.add_parser(
        "review",
        help="review a branch from git objects (no checkout): what merging HEAD into BASE changes",
    )
    p.add_argument("path", nargs="?", default=None, help="only manifests below this path")
    p.add_argument("--base", default="main", help="base ref (default: main)")
    p.add_argument("--head", default="HEAD", help="head ref (default: HEAD)")
    p.add_argument("--repo", default=".", help="git repository (default: .)")
    p.add_argument(
        "--no-merge-base",
        dest="merge_base",
        action="store_false",
        help="compare BASE itself instead of the merge base of BASE and HEAD",
    )
    p.add_argument("--format", choices=["md", "text", "json"], default="md")
    p.set_defaults(run=cmd_review)

    p = sub.add_parser("serve", help="run the GitHub App webhook server")
    p.add_argument("--port", type=int, default=None, help="default: $PORT or 8080")
    p.set_defaults(run=cmd_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    collecting = gc.isenabled()
    if args.run is not cmd_serve:
        # A run builds millions of long-lived objects and exits: the cycle collector would
        # scan them again and again (a fifth of the run) for garbage the analysis does not
        # make (it frees by reference counting).
        gc.disable()
    try:
        code: int = args.run(args)
        return code
    except (ManifestError, TreeError, GitError, SettingsError) as err:
        print(f"reachdiff: error: {err}", file=sys.stderr)
        return EXIT_INPUT
    except BrokenPipeError:
        return EXIT_OK
    except Exception as err:  # a bug: say so plainly, without a traceback wall
        print(f"reachdiff: internal error: {type(err).__name__}: {err}", file=sys.stderr)
        return EXIT_INTERNAL
    finally:
        if collecting:
            gc.enable()


if __name__ == "__main__":
    raise SystemExit(main())
