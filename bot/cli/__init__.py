"""The ``reachdiff`` command: ``map``, ``diff``, ``explain``, ``review`` and ``serve``.

Exit codes are a contract CI gates on: 0 nothing widened, 1 access widened, 2 bad input
(the message names file, line and the fix), 3 an internal error (a bug: please report it).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from analysis import unmodelled
from analysis.customkinds import WorkloadKinds
from analysis.decision import (
    explain_pair,
    explanation_json,
    explanation_markdown,
    explanation_text,
)
from analysis.errors import ManifestError
from analysis.formats import (
    diff_text,
    map_csv,
    map_dot,
    map_markdown,
    map_text,
    maps_dot,
    md_escape,
)
from analysis.outside import ClusterScope
from analysis.reachability import ReachabilityMap, compute_map
from analysis.report import diff_to_json, json_text, map_to_json
from analysis.unknowns import unknown_matches
from bot.inputs.environment_diff import (
    EnvironmentTree,
    MultiDiff,
    diff_files,
    explain_changes,
    load_environments,
)
from bot.inputs.gitrefs import (
    GitError,
    default_branch,
    find_repository,
    merge_base,
    read_file_at,
    read_ref,
    resolve_commit,
)
from bot.inputs.trees import TreeError, gitmodules_paths, lfs_pointers, read_directory
from bot.review.settings import (
    MAX_SETTINGS_BYTES,
    SETTINGS_PATH,
    RepoSettings,
    SettingsError,
    parse_repo_settings,
    path_ignored,
)
from bot.review.verdict import assess

EXIT_OK, EXIT_WIDENED, EXIT_INPUT, EXIT_INTERNAL = 0, 1, 2, 3
MAX_GITMODULES_BYTES = 1024 * 1024

MAP_FORMATS: dict[str, Callable[[ReachabilityMap], str]] = {
    "text": map_text,
    "json": lambda m: json_text(map_to_json(m)),
    "csv": map_csv,
    "md": map_markdown,
    "dot": map_dot,
}


def _environments(
    files: dict[str, bytes], workload_kinds: WorkloadKinds = ()
) -> list[EnvironmentTree]:
    return load_environments(files, workload_kinds=workload_kinds)


def _settings(args: argparse.Namespace) -> RepoSettings:
    """The settings ``map`` and ``diff`` read: ``--settings FILE``, else the defaults."""
    path = getattr(args, "settings", None)
    if path is None:
        return RepoSettings()
    try:
        with open(path, "rb") as handle:
            text = handle.read(MAX_SETTINGS_BYTES + 1)
    except OSError as err:
        raise SettingsError("", f"cannot read {path}: {err.strerror}") from None
    return parse_repo_settings(text)


def _report_caveats(diff: MultiDiff, ignore_kinds: Sequence[str] = ()) -> int | None:
    """Notes go to stderr; anything left unanalysed makes the run fail closed (exit 2)."""
    for note in diff.notes:
        print(f"reachdiff: note: {note}", file=sys.stderr)
    reasons = [*diff.unanalysed, *(i.message() for i in diff.idle_policies)]
    return _report_unanalysed(reasons, diff.unmodelled, ignore_kinds)


def _report_unanalysed(
    reasons: Sequence[str], findings: Sequence[unmodelled.Finding], ignore_kinds: Sequence[str]
) -> int | None:
    blocking, ignored = unmodelled.split(findings, ignore_kinds)
    if ignored:
        print(f"reachdiff: note: {unmodelled.ignored_summary(ignored)}", file=sys.stderr)
    for reason in [*reasons, *(f.message() for f in blocking)]:
        print(f"reachdiff: not analysed: {reason}", file=sys.stderr)
    return EXIT_INPUT if reasons or blocking else None


def _not_analysed_json(
    findings: Sequence[unmodelled.Finding], ignore_kinds: Sequence[str]
) -> list[dict[str, object]]:
    return [f.to_json(ignored=f.policy.ignored_by(ignore_kinds)) for f in findings]


def _diff_output(
    diff: MultiDiff, fmt: str, ignore_kinds: Sequence[str] = (), **markdown: Any
) -> str:
    if fmt == "json":
        if diff.environments == ("",) and not diff.base_error:
            # plain manifests: exactly the documented contract (fields only added)
            doc = diff_to_json(diff.per_environment[0][1])
        else:
            doc = diff_to_json(diff)
            if diff.base_error:
                doc["base_error"] = diff.base_error
            doc.update(
                environments=list(diff.environments),
                notes=list(diff.notes),
                unanalysed=list(diff.unanalysed),
            )
        doc["not_analysed"] = _not_analysed_json(diff.unmodelled, ignore_kinds)
        doc["unevaluated_policies"] = [i.to_json() for i in diff.idle_policies]
        return json_text(doc)
    if fmt == "md":
        from bot.render.local_review import diff_markdown  # jinja2 and the templates: only here

        return diff_markdown(
            diff, base_error=diff.base_error, ignore_kinds=ignore_kinds, **markdown
        )
    blocking, _ = unmodelled.split(diff.unmodelled, ignore_kinds)
    lines = []
    # The verdict above is only about what was analysed: say so where it is read.
    if blocking:
        lines += ["", "Not analysed (the access above is not what the cluster enforces):"]
        lines += [f"  {f.describe()}" for f in blocking]
    if diff.idle_policies:
        lines += ["", "Changed policies that select no workload in this tree:"]
        lines += [f"  {i.message()}" for i in diff.idle_policies]
    return diff_text(diff, diff.populations) + "".join(f"{line}\n" for line in lines)


MAX_EXPLAINED = 200  # paths explained by `diff --explain` (the rest are counted)


def _with_explanations(diff: MultiDiff, fmt: str, output: str) -> str:
    explained = explain_changes(diff, MAX_EXPLAINED)
    total = len(diff.opened) + len(diff.closed)
    more = total - len(explained)
    if fmt == "json":
        doc = json.loads(output)
        by_pair = {(k, s, d): explanation_json(e) for k, s, d, e in explained}
        for kind in ("opened", "closed"):
            for row in doc[kind]:
                found = by_pair.get((kind, row["src"], row["dst"]))
                if found is not None:
                    row["explanation"] = found
        return json_text(doc)
    if fmt == "md":
        parts = [output, "\n### Why, step by step\n"]
        for kind, s, d, e in explained:
            summary = md_escape(f"{kind}: {s} → {d}")
            parts.append(
                f"<details><summary>{summary}</summary>\n\n{explanation_markdown(e)}\n</details>\n"
            )
        if more > 0:
            parts.append(f"\n…and {more} more paths not explained here.\n")
        return "".join(parts)
    lines = [output, "Why, step by step:", ""]
    for kind, _, _, e in explained:
        lines.append(f"[{kind}] " + explanation_text(e))
    if more > 0:
        lines.append(f"…and {more} more paths not explained here.")
    return "\n".join(lines) + "\n"


def _finish(
    diff: MultiDiff, output: str, unread: Sequence[str] = (), ignore_kinds: Sequence[str] = ()
) -> int:
    sys.stdout.write(output)
    failed = _report_caveats(diff, ignore_kinds)
    # What the readers could not see (submodules, LFS pointers, links): fail closed too.
    for reason in unread:
        print(f"reachdiff: not analysed: {reason}", file=sys.stderr)
    if failed is not None or unread:
        return EXIT_INPUT
    return EXIT_WIDENED if diff.widening else EXIT_OK


def _scope(args: argparse.Namespace, settings: RepoSettings | None = None) -> ClusterScope:
    """The flag, else the settings' ``cluster_scope`` (``--settings FILE``, or the base
    side's for ``review``), else partial."""
    if args.cluster_scope is not None:
        return ClusterScope(args.cluster_scope)
    return ClusterScope((settings or _settings(args)).cluster_scope)


def _unread_in_directory(root: str, files: dict[str, bytes]) -> list[str]:
    """LFS pointers, and submodules named in ``.gitmodules`` that are not checked out."""
    out = [str(u) for u in lfs_pointers(files)]
    try:
        with open(os.path.join(root, ".gitmodules"), "rb") as f:
            gitmodules = f.read(MAX_GITMODULES_BYTES)
    except OSError:
        return out
    for path in gitmodules_paths(gitmodules):
        directory = os.path.join(root, path)
        if not os.path.isdir(directory) or not os.listdir(directory):
            out.append(f"{path}: a git submodule that is not checked out")
    return out


def cmd_map(args: argparse.Namespace) -> int:
    settings = _settings(args)
    envs = _environments(read_directory(args.dir), settings.workload_kinds)
    ignore_kinds = [*settings.ignore_kinds, *args.ignore_kinds]
    findings = [f for e in envs for f in unmodelled.tree_findings(e.tree.unmodelled, e.name)]
    for env in envs:
        label = f"{env.name}: " if env.name else ""
        for warning in (*env.notes, *env.tree.warnings):
            print(f"reachdiff: warning: {label}{warning}", file=sys.stderr)
    scope = _scope(args, settings)
    maps = [(e, compute_map(e.tree, scope=scope)) for e in envs]
    if [e.name for e in envs] == [""]:
        if args.format == "json":
            doc = map_to_json(maps[0][1])
            doc["not_analysed"] = _not_analysed_json(findings, ignore_kinds)
            sys.stdout.write(json_text(doc))
        else:
            sys.stdout.write(MAP_FORMATS[args.format](maps[0][1]))
    else:
        output = _maps_output(maps, args.format)
        if args.format == "json":
            doc = json.loads(output)
            doc["not_analysed"] = _not_analysed_json(findings, ignore_kinds)
            output = json_text(doc)
        sys.stdout.write(output)
    unanalysed = [
        u for e, m in maps for u in (*e.unanalysed, *e.tree.unanalysed, *unknown_matches(m))
    ]
    return _report_unanalysed(unanalysed, findings, ignore_kinds) or EXIT_OK


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


def _read_base(read: Callable[[], dict[str, bytes]]) -> tuple[dict[str, bytes] | None, str]:
    """The base side's files, or None and why they cannot be read: a broken base is
    reported and the head reviewed on its own, so that the change fixing it can land."""
    try:
        return read(), ""
    except TreeError as err:
        return None, f"base: {err}"


def _read_head(read: Callable[[], dict[str, bytes]]) -> dict[str, bytes]:
    try:
        return read()
    except TreeError as err:
        raise InputError(f"head: {err}") from None


class InputError(Exception):
    """Bad input whose message already names its side (``base:`` or ``head:``)."""


def _base_caveat(diff: MultiDiff) -> None:
    if diff.base_error:
        print(
            f"reachdiff: {diff.base_error}\n"
            "reachdiff: the base cannot be read, so the head is reviewed on its own: "
            "every path it allows is counted as opened",
            file=sys.stderr,
        )


def cmd_diff(args: argparse.Namespace) -> int:
    settings = _settings(args)
    ignore_kinds = [*settings.ignore_kinds, *args.ignore_kinds]
    for side, directory in (("base", args.base), ("head", args.head)):
        # A mistyped argument is the caller's error, not a broken base to review around.
        if not os.path.isdir(directory):
            raise InputError(f"{side}: {directory}: not a directory")
    base, why = _read_base(lambda: read_directory(args.base))
    head = _read_head(lambda: read_directory(args.head))
    diff = diff_files(
        base,
        head,
        base_error=why,
        workload_kinds=settings.workload_kinds,
        scope=_scope(args, settings),
    )
    _base_caveat(diff)
    output = _diff_output(diff, args.format, ignore_kinds)
    if args.explain:
        output = _with_explanations(diff, args.format, output)
    unread = (
        [f"{u} (base)" for u in _unread_in_directory(args.base, base)] if base is not None else []
    )
    unread += _unread_in_directory(args.head, head)
    return _finish(diff, output, unread, ignore_kinds)


def cmd_explain(args: argparse.Namespace) -> int:
    envs = _environments(read_directory(args.dir))
    src, dst, env = args.src, args.dst, envs[0]
    if [e.name for e in envs] != [""]:
        # Ids carry their environment, as `map` and `diff` write them: env:namespace/...
        names = {e.name or ".": e for e in envs}
        env_name, _, src = src.rpartition(":") if not src.startswith("ip:") else ("", "", src)
        dst_env, _, dst = dst.rpartition(":") if not dst.startswith("ip:") else ("", "", dst)
        chosen = env_name or dst_env
        if chosen not in names or (env_name and dst_env and env_name != dst_env):
            known = ", ".join(sorted(names))
            raise ExplainError(f"name the environment of SRC and DST as ENV:id (one of: {known})")
        env = names[chosen]
    rmap = compute_map(env.tree, scope=_scope(args))
    try:
        explanation = explain_pair(rmap, src, dst, args.port)
    except ValueError as err:
        raise ExplainError(str(err)) from None
    render = {
        "json": lambda e: json_text(explanation_json(e)),
        "md": explanation_markdown,
        "text": explanation_text,
    }[args.format]
    sys.stdout.write(render(explanation))
    return EXIT_OK


class ExplainError(Exception):
    """SRC, DST or --port that name nothing: bad input (exit 2)."""


def cmd_review(args: argparse.Namespace) -> int:
    repo = find_repository(args.repo)
    base_name = args.base if args.base is not None else default_branch(repo)
    # Like the bot: the rules come from the base branch, never from the change.
    settings_text = read_file_at(repo, base_name, SETTINGS_PATH)
    try:
        settings = parse_repo_settings(settings_text)
    except SettingsError as err:
        raise InputError(f"base: {err}") from None
    base_ref = merge_base(repo, base_name, args.head) if args.merge_base else base_name
    paths = settings.paths or None
    base_tree = None
    try:
        base_tree = read_ref(repo, base_ref, args.path, paths=paths)
        why = ""
    except TreeError as err:
        why = f"base: {err}"
    try:
        head = read_ref(repo, args.head, args.path, paths=paths)
    except TreeError as err:
        raise InputError(f"head: {err}") from None
    for side, tree in (("base", base_tree), ("head", head)):
        for warning in tree.warnings if tree is not None else ():
            print(f"reachdiff: warning: {side}: {warning}", file=sys.stderr)
    diff = diff_files(
        base_tree.files if base_tree is not None else None,
        head.files,
        kustomize_roots=settings.kustomize_roots,
        helm_values=dict(settings.helm_values),
        base_error=why,
        workload_kinds=settings.workload_kinds,
        scope=_scope(args, settings),
    )
    _base_caveat(diff)
    unread: list[str] = []
    for side, tree in (("base", base_tree), ("head", head)):
        for reason in tree.unread if tree is not None else ():
            if path_ignored(settings, reason.split(": ", 1)[0]):
                print(
                    f"reachdiff: note: not analysed, as ignore_paths allows: {reason}",
                    file=sys.stderr,
                )
            else:
                unread.append(f"{reason} (base)" if side == "base" else reason)
    ignore_kinds = [*settings.ignore_kinds, *args.ignore_kinds]
    how = "merge base of" if args.merge_base else "base"
    output = _diff_output(
        diff,
        args.format,
        ignore_kinds,
        base_sha=base_tree.commit_sha if base_tree is not None else resolve_commit(repo, base_ref),
        head_sha=head.commit_sha,
        compared=f"{how} `{base_name}` vs `{args.head}`",
        settings_text=settings_text,
    )
    sys.stdout.write(output)
    failed = _report_caveats(diff, ignore_kinds)
    # What the readers could not see (submodules, LFS pointers, links): fail closed too.
    for reason in unread:
        print(f"reachdiff: not analysed: {reason}", file=sys.stderr)
    if failed is not None:
        return failed
    if unread:
        return EXIT_INPUT
    # The exit code is the bot's check: ignore_namespaces and new_workloads_widen apply,
    # and a change to the settings needs approval like a widening does.
    if read_file_at(repo, base_ref, SETTINGS_PATH) != read_file_at(repo, args.head, SETTINGS_PATH):
        print(
            f"reachdiff: note: the change edits {SETTINGS_PATH}, the rules later reviews are "
            "judged by: the app's check needs approval for it like for a widening",
            file=sys.stderr,
        )
        return EXIT_WIDENED
    return EXIT_WIDENED if assess(diff, settings).needs_approval else EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    from bot.app.server import serve

    return serve(args.port)


def _scope_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--cluster-scope",
        choices=[s.value for s in ClusterScope],
        default=None,
        help="partial (default): pods and namespaces the tree does not define count, as "
        "representatives like ~ns[team=frontend]/*; complete: the tree is the whole cluster "
        "(review: default from .github/reachdiff.yml)",
    )


def _kind(value: str) -> str:
    if not unmodelled.KIND_REFERENCE.fullmatch(value):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a kind (CiliumNetworkPolicy, or NetworkPolicy.projectcalico.org)"
        )
    return value


def _kind_options(p: argparse.ArgumentParser, *, settings_file: bool) -> None:
    if settings_file:  # review reads the base side's .github/reachdiff.yml instead
        p.add_argument(
            "--settings",
            metavar="FILE",
            default=None,
            help="read ignore_kinds and workload_kinds from this file (the format of "
            ".github/reachdiff.yml)",
        )
    p.add_argument(
        "--ignore-kind",
        dest="ignore_kinds",
        metavar="KIND",
        action="append",
        type=_kind,
        default=[],
        help="a policy kind reachdiff does not model whose objects do not fail the run "
        "(like ignore_kinds in .github/reachdiff.yml); repeatable",
    )


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
    _scope_flag(p)
    _kind_options(p, settings_file=True)
    p.set_defaults(run=cmd_map)

    p = sub.add_parser("diff", help="paths opened and closed between two manifest trees")
    p.add_argument("base")
    p.add_argument("head")
    p.add_argument("--format", choices=["text", "json", "md"], default="text")
    p.add_argument(
        "--explain",
        action="store_true",
        help="explain each opened and closed path step by step (JSON: an explanation field)",
    )
    _scope_flag(p)
    _kind_options(p, settings_file=True)
    p.set_defaults(run=cmd_diff)

    p = sub.add_parser(
        "review",
        help="review a branch from git objects (no checkout): what merging HEAD into BASE changes",
    )
    p.add_argument("path", nargs="?", default=None, help="only manifests below this path")
    p.add_argument(
        "--base",
        default=None,
        help="base ref (default: the default branch: origin/HEAD, else main or master)",
    )
    p.add_argument("--head", default="HEAD", help="head ref (default: HEAD)")
    p.add_argument("--repo", default=".", help="git repository (default: .)")
    p.add_argument(
        "--no-merge-base",
        dest="merge_base",
        action="store_false",
        help="compare BASE itself instead of the merge base of BASE and HEAD",
    )
    p.add_argument("--format", choices=["md", "text", "json"], default="md")
    _scope_flag(p)
    _kind_options(p, settings_file=False)
    p.set_defaults(run=cmd_review)

    p = sub.add_parser("explain", help="why one connection is allowed or denied, step by step")
    p.add_argument("dir")
    p.add_argument("src", help="source id as `map` writes it (ns/Kind/name, ~ns[...]/*, ip:...)")
    p.add_argument("dst", help="destination id")
    p.add_argument("--port", default=None, help='one port, e.g. "TCP 5432" (default: every port)')
    p.add_argument("--format", choices=["text", "json", "md"], default="text")
    _scope_flag(p)
    p.set_defaults(run=cmd_explain)

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
    except (ManifestError, TreeError, GitError, SettingsError, InputError, ExplainError) as err:
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
