"""``reachdiff review``: what merging a branch changes, read from git objects (no checkout),
judged like the app's check (the base branch's ``.github/reachdiff.yml`` applies)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import TYPE_CHECKING

from analysis.check_report import declared_json
from analysis.declared_review import DeclaredReview, review_declared
from analysis.report import json_text
from bot.cli.options import (
    EXIT_INPUT,
    EXIT_OK,
    EXIT_WIDENED,
    InputError,
    cilium_agent,
    kind_options,
    scope,
    scope_flag,
)
from bot.cli.output import base_caveat, diff_output, report_caveats
from bot.inputs.environment_bases import EnvironmentBases
from bot.inputs.environment_diff import diff_files
from bot.inputs.exposure import review_exposure
from bot.inputs.files import FilesError
from bot.inputs.gitrefs import (
    default_branch,
    find_repository,
    merge_base,
    read_file_at,
    read_ref,
    resolve_commit,
)
from bot.render.declared import declared_section
from bot.review.declared import lint_config
from bot.review.gating import exposure_settings
from bot.review.settings import (
    SETTINGS_PATH,
    RepoSettings,
    SettingsError,
    describe_approvers,
    parse_repo_settings,
    path_ignored,
)
from bot.review.verdict import assess

if TYPE_CHECKING:
    from bot.cli.options import Commands


def register(commands: Commands) -> None:
    p = commands.add_parser(
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
    scope_flag(p)
    kind_options(p, settings_file=False)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
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
    except FilesError as err:
        why = f"base: {err}"
    try:
        head = read_ref(repo, args.head, args.path, paths=paths)
    except FilesError as err:
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
        cilium_agent=cilium_agent(args, settings),
        scope=scope(args, settings),
        # Environments whose renders are the same on both sides are not compared.
        bases=EnvironmentBases(),
    )
    base_caveat(diff)
    wanted = exposure_settings(settings)
    if wanted is not None:  # as the bot compares it: only when the settings ask
        base_files = base_tree.files if base_tree is not None else None
        found = review_exposure(
            diff, wanted.entry_points, wanted.crown_jewels, base_files, head.files
        )
        diff = dataclasses.replace(diff, exposure=found)
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
    output = diff_output(
        diff,
        args.format,
        ignore_kinds,
        base_sha=base_tree.commit_sha if base_tree is not None else resolve_commit(repo, base_ref),
        head_sha=head.commit_sha,
        compared=f"{how} `{base_name}` vs `{args.head}`",
        settings_text=settings_text,
    )
    declared = review_declared(
        base_tree.files if base_tree is not None else None,
        head.files,
        [(name, one.base, one.head) for name, one in diff.per_environment],
        scope(args, settings),
        lint_config(settings),
    )
    if declared is not None:  # intents, tests and lint, as the app judges them
        output = with_declared(output, args.format, declared, settings)
    sys.stdout.write(output)
    failed = report_caveats(diff, ignore_kinds)
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
    if declared is not None and (declared.fails or declared.needs_approval):
        return EXIT_WIDENED
    return EXIT_WIDENED if assess(diff, settings).needs_approval else EXIT_OK


def with_declared(output: str, fmt: str, declared: DeclaredReview, settings: RepoSettings) -> str:
    """The review's output with what the app adds about the declared communications:
    its comment section (Markdown and text), or a ``declared`` member (JSON)."""
    if fmt == "json":
        doc = json.loads(output)
        doc["declared"] = declared_json(declared)
        return json_text(doc)
    approvers = describe_approvers(settings, present=True)
    return output.rstrip("\n") + "\n\n" + declared_section(declared, approvers)
