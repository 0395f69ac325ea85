"""What every ``reachdiff`` command shares: exit codes, the input error, settings and flags.

``InputError`` is ``analysis.errors.InputError``: raise it (or any subclass) for bad input.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import TYPE_CHECKING

from analysis import unmodelled
from analysis.ciliumagent import CiliumAgent
from analysis.customkinds import WorkloadKinds
from analysis.errors import InputError
from analysis.outside import ClusterScope
from bot.inputs.environment_diff import EnvironmentTree, load_environments
from bot.review.cilium_settings import NOT_MODELLED, OPTIONS
from bot.review.settings import MAX_SETTINGS_BYTES, RepoSettings, SettingsError, parse_repo_settings

if TYPE_CHECKING:
    from typing import TypeAlias

    #: What a command module's ``register`` adds its sub-command to.
    Commands: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]

__all__ = ["InputError"]  # re-exported for the command modules

EXIT_OK, EXIT_WIDENED, EXIT_INPUT, EXIT_INTERNAL = 0, 1, 2, 3


def environments(
    files: dict[str, bytes],
    workload_kinds: WorkloadKinds = (),
    cilium_agent: CiliumAgent | None = None,
    settings: RepoSettings | None = None,
) -> list[EnvironmentTree]:
    """The environments of ``files``; the settings' ``kustomize_roots`` and ``helm_values``
    say what to render and with which values, as in the app."""
    return load_environments(
        files,
        workload_kinds=workload_kinds,
        cilium_agent=cilium_agent,
        kustomize_roots=settings.kustomize_roots if settings is not None else None,
        helm_values=dict(settings.helm_values) if settings is not None else None,
    )


def settings_of(args: argparse.Namespace) -> RepoSettings:
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


def scope(args: argparse.Namespace, settings: RepoSettings | None = None) -> ClusterScope:
    """The flag, else the settings' ``cluster_scope`` (``--settings FILE``, or the base
    side's for ``review``), else partial."""
    if args.cluster_scope is not None:
        return ClusterScope(args.cluster_scope)
    return ClusterScope((settings or settings_of(args)).cluster_scope)


def cilium_agent(
    args: argparse.Namespace, settings: RepoSettings | None = None
) -> CiliumAgent | None:
    """The settings' ``cilium_agent`` (``--settings FILE``, or the base side's for
    ``review``), each ``--cilium-agent OPTION=VALUE`` flag overriding its option; None when
    neither names the agent."""
    configured = (settings or settings_of(args)).cilium_agent
    flags = getattr(args, "cilium_agent", None) or []
    if not flags:
        return configured
    values = {}
    for option, value in flags:
        attribute, accepted = OPTIONS[option]
        if value not in accepted:
            choices = ", ".join(a or '""' for a in accepted)
            raise InputError(f"--cilium-agent {option}: must be one of {choices}, got {value!r}")
        if (option, value) in NOT_MODELLED:
            raise InputError(f"--cilium-agent {option}={value}: {NOT_MODELLED[option, value]}")
        values[attribute] = value
    return dataclasses.replace(configured or CiliumAgent(), **values)


def _agent_option(text: str) -> tuple[str, str]:
    option, equals, value = text.partition("=")
    if not equals or option not in OPTIONS:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not OPTION=VALUE with OPTION one of {', '.join(OPTIONS)}"
        )
    return option, value


def scope_flag(p: argparse.ArgumentParser) -> None:
    """The flags saying how the cluster works: its scope and its Cilium agent's options."""
    p.add_argument(
        "--cilium-agent",
        metavar="OPTION=VALUE",
        action="append",
        type=_agent_option,
        default=[],
        help="a Cilium agent option the cluster runs with (enable-policy=default|always|never, "
        "allow-localhost=auto|always|policy; like cilium_agent in .github/reachdiff.yml, "
        "which it overrides); repeatable",
    )
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


def settings_option(p: argparse.ArgumentParser) -> None:
    """``--settings FILE``: every command reading a tree reads the same settings."""
    p.add_argument(
        "--settings",
        metavar="FILE",
        default=None,
        help="read the repository settings (workload_kinds, kustomize_roots, helm_values, "
        "cilium_agent, cluster_scope, ignore_kinds, ...) from this file (the format of "
        ".github/reachdiff.yml)",
    )


def settings_environments(
    args: argparse.Namespace, files: dict[str, bytes]
) -> tuple[RepoSettings, list[EnvironmentTree]]:
    """``--settings FILE`` (else the defaults) and the environments of ``files`` read
    with them, the flags overriding the settings they name."""
    settings = settings_of(args)
    envs = environments(files, settings.workload_kinds, cilium_agent(args, settings), settings)
    return settings, envs


def kind_options(p: argparse.ArgumentParser, *, settings_file: bool) -> None:
    if settings_file:  # review reads the base side's .github/reachdiff.yml instead
        settings_option(p)
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
