"""Per-repository settings: ``.github/reachdiff.yml``, read from the base branch.

The file is optional; without it every default below applies and anyone with write access
may approve a widening. The shell must read it from the pull request's *base* commit: a PR
that edits it must not be able to appoint its own approvers.

Example (every key is optional)::

    # which files hold manifests; "**" spans directories, "*" and "?" stay within one
    paths: ["clusters/**", "apps/*/deploy/*.yaml"]
    ignore_paths: ["clusters/vendor/**"]  # accepted as not analysed (submodules, LFS, ...)
    approvers:                 # who may approve a widening; absent: anyone with write access
      users: [alice, bob]      # GitHub logins (case-insensitive, a leading "@" is allowed)
      teams: [acme/netsec]     # "org/team-slug"
    required_approvals: 1      # approvals from the people above the check needs
    new_workloads_widen: true  # false: paths to/from workloads added by the PR need no approval
    exclude_last_pusher: true  # an approval by whoever pushed the head does not count
    ignore_namespaces: [sandbox, "dev-*"]  # paths among these namespaces are not reported
    ignore_kinds: [CiliumNetworkPolicy]    # policy kinds not modelled, to review without
    workload_kinds:            # custom kinds whose objects run pods ("{field.path}" values)
      - kind: Kafka.kafka.strimzi.io
        labels: {strimzi.io/cluster: "{metadata.name}", strimzi.io/kind: Kafka}
        ports: [{port: 9092, name: tcp-clients}]
    max_line_comments: 20      # review comments on responsible rules; 0 turns them off
    diagram: true              # the mermaid graph of changed paths in the PR comment
    cluster_scope: partial     # complete: the tree is the whole cluster (no pods outside it)
    cilium_agent:              # the cluster runs Cilium, configured so (bot.review.cilium_settings)
      enable-policy: default   # default | always | never
      policy-cidr-match-mode: ""  # "" | nodes
      allow-localhost: auto    # auto | always | policy
    lint:                      # least-privilege findings (docs/intents.md); the app lints
                               # pull requests only when this section is present
      fail_on: error           # error | warning | note | never: what fails the check / CLI
      rules: {allows-every-port: off, unselected-workload: error}  # off | note | warning | error
    entry_points: [{namespace: edge}]       # where traffic enters, besides what the tree shows
    crown_jewels: [{podSelector: {matchLabels: {data-class: pci}}}]  # keep far from entry
    exposure_widens: true      # a crown jewel nearer an entry point needs approval
    blast_radius_threshold: 50 # ... and so does a blast radius growing past this
    owners:                    # who approves which paths (bot.owners_config; docs/bot.md)
      - name: payments
        destination: {namespaces: [payments]}
        teams: [acme/payments-owners]
        required_approvals: 2
    keep_approvals_when_delta_unchanged: false  # true: an identical delta keeps approvals
    break_glass: {users: [oncall-lead], teams: [acme/sre]}  # may pass without approvals

Validation is strict, because a typo in a security setting must not silently fall back to
a default: an unknown key, a wrong type or a malformed value raises ``SettingsError``
naming the key and, where known, the line.

Sections with a reading of their own are read in their own modules, with the same YAML
helpers (``bot.review.yamlnodes``): ``owners`` and ``break_glass`` in
``bot.review.owners_config``, ``workload_kinds`` in ``bot.review.workload_kinds_settings``,
``lint`` in ``bot.review.lint_settings``, ``cilium_agent`` in ``bot.review.cilium_settings``,
``helm_values`` and the repository paths in ``bot.review.repo_paths``. (About 420 lines:
half of them are this reference and ``RepoSettings`` with every key's default.)
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml

from analysis.ciliumagent import CiliumAgent
from analysis.customkinds import WorkloadKind
from analysis.entrypoints import WorkloadSelector, parse_workload_selectors
from analysis.errors import InputError, ManifestError
from analysis.unmodelled import KIND_REFERENCE
from analysis.yamldoc import LineDict, LineList
from bot.inputs.files import compile_glob
from bot.review.cilium_settings import read_cilium_agent
from bot.review.lint_settings import read_lint
from bot.review.owners import NO_OWNERS, Owners
from bot.review.owners_config import People, read_owners, read_people
from bot.review.repo_paths import check_repo_path, read_helm_values
from bot.review.workload_kinds_settings import read_workload_kinds
from bot.review.yamlnodes import (
    NodeError,
    NodeReader,
    check_depth,
    check_glob,
    check_login,
    check_namespace,
    check_team,
)
from bot.review.yamlnodes import line as _line
from bot.review.yamlnodes import shown as _shown

SETTINGS_PATH = ".github/reachdiff.yml"
MAX_SETTINGS_BYTES = 64 * 1024
MAX_LIST_ITEMS = 200
MAX_REQUIRED_APPROVALS = 50
MAX_LINE_COMMENTS = 100


@dataclass(frozen=True, slots=True)
class RepoSettings:
    paths: tuple[str, ...] = ()  # glob patterns ("clusters/**"); () = whole repo
    # Globs of what may stay unanalysed inside ``paths`` (submodules, LFS pointers, files
    # the archive leaves out): listed in the comment instead of failing the check.
    ignore_paths: tuple[str, ...] = ()
    approver_users: frozenset[str] = frozenset()  # lowercased GitHub logins
    approver_teams: tuple[str, ...] = ()  # "org/team-slug", lowercased
    required_approvals: int = 1
    new_workloads_widen: bool = True
    exclude_last_pusher: bool = True
    ignore_namespaces: tuple[str, ...] = ()  # names or "*" globs
    max_line_comments: int = 20
    diagram: bool = True
    kustomize_roots: tuple[str, ...] | None = None  # None: overlays no other includes
    helm_values: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (chart dir, values files)
    # partial: pods and namespaces the tree does not define count (analysis.outside)
    cluster_scope: str = "partial"
    # Policy kinds reachdiff does not model (``Kind`` or ``Kind.group``) whose presence
    # does not fail the review; the report says what was ignored.
    ignore_kinds: tuple[str, ...] = ()
    # Custom kinds whose objects run pods: their labels, namespace and ports.
    workload_kinds: tuple[WorkloadKind, ...] = ()
    # Least-privilege lint (analysis.lint): per-rule severity overrides ("off" disables a
    # rule) and the lowest severity that fails (or "never").
    lint_severities: tuple[tuple[str, str], ...] = ()
    lint_fail_on: str = "error"
    lint_enabled: bool = False  # the app lints pull requests only with a `lint` section
    # Exposure (analysis.exposure): where traffic enters besides what the tree shows, what
    # must stay far from it, and whether a change bringing a crown jewel nearer an entry
    # point (or a blast radius past the threshold) needs approval.
    entry_points: tuple[WorkloadSelector, ...] = ()
    crown_jewels: tuple[WorkloadSelector, ...] = ()
    exposure_widens: bool = True
    blast_radius_threshold: int | None = None  # None: blast radius growth is not gated
    # Owner rules: who approves which opened paths; paths none matches go to approvers.
    owners: Owners = NO_OWNERS
    # An approval of an older head counts when the analysed delta is identical.
    keep_approvals_when_delta_unchanged: bool = False
    # Who may pass the check without approvals, on record (None: nobody).
    break_glass: People | None = None

    # Observed traffic (docs/traffic.md): a flow summary on the base branch (``flows_path``)
    # or at an HTTPS URL fetched with the server's token (``flows_url``); closed paths that
    # carried flows then need approval when ``breaking_needs_approval``.
    flows_path: str | None = None
    flows_url: str | None = None
    # The rendered environment the flows were observed in (``flows.environment``); it
    # replaces the summary's own ``environment`` (docs/traffic.md). None: the summary's.
    flows_environment: str | None = None
    breaking_needs_approval: bool = True
    # The Cilium agent's options (analysis.ciliumagent); None: no `cilium_agent` section.
    cilium_agent: CiliumAgent | None = None

    @property
    def restricts_approvers(self) -> bool:
        """False: anyone with write access may approve."""
        return bool(self.approver_users or self.approver_teams)

    def is_approver_user(self, login: str) -> bool:
        return login.lower() in self.approver_users

    def namespace_ignored(self, namespace: str) -> bool:
        return any(_namespace_matcher(p)(namespace) for p in self.ignore_namespaces)


class SettingsError(InputError):
    """A problem in the settings file (of the base side); ``str()`` names the key and what
    to fix."""

    def __init__(self, key: str, message: str, line: int | None = None) -> None:
        super().__init__(key, message, line)
        self.key = key
        self.message = message
        self.line = line
        self.file = SETTINGS_PATH
        self.side = "base"  # the rules come from the base branch

    def __str__(self) -> str:
        where = f"{SETTINGS_PATH}:{self.line}" if self.line else SETTINGS_PATH
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


def path_ignored(settings: RepoSettings, path: str) -> bool:
    """Whether ``ignore_paths`` accepts leaving ``path`` (or a directory above it) unread."""
    parts = path.removeprefix("./").split("/")
    prefixes = ["/".join(parts[:k]) for k in range(len(parts), 0, -1)]
    # "vendor/**" names the directory "vendor" too (a submodule is one entry).
    return any(
        compile_glob(p).fullmatch(candidate) is not None
        for p in settings.ignore_paths
        for prefix in prefixes
        for candidate in (prefix, prefix + "/")
    )


def describe_approvers(settings: RepoSettings, *, present: bool) -> str:
    """Who can approve, as Markdown for ``ReviewContext.approvers_description``.

    Logins and team slugs are validated, so the mentions here are exactly the configured
    approvers: naming them is how the comment asks them to review.
    """
    if not settings.restricts_approvers:
        if present:
            return "anyone with write access (no approvers in .github/reachdiff.yml)"
        return "anyone with write access (no .github/reachdiff.yml)"
    names = [f"@{u}" for u in sorted(settings.approver_users)]
    names += [f"a member of @{t}" for t in settings.approver_teams]
    if len(names) == 1:
        return names[0]
    return f"{', '.join(names[:-1])} or {names[-1]}"


def parse_repo_settings(text: str | bytes | None) -> RepoSettings:
    """Parse and validate the settings file; ``None`` (no file) gives the defaults."""
    if text is None:
        return RepoSettings()
    if len(text) > MAX_SETTINGS_BYTES:
        raise SettingsError("", f"the file is larger than {MAX_SETTINGS_BYTES // 1024} KiB")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as err:
            at = err.object.count(b"\n", 0, err.start) + 1
            raise SettingsError("", f"the file is not UTF-8 (byte {err.start})", at) from None
    loader = yaml.SafeLoader(text)
    try:
        check_depth(text, MAX_DEPTH)
        root = loader.get_single_node()
        return _Reader(loader).settings(root)
    except NodeError as err:
        raise SettingsError(err.key, err.message, err.line) from None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark is not None else None
        raise SettingsError("", f"invalid YAML: {err.problem or err.context}", line) from None
    except yaml.YAMLError as err:
        raise SettingsError("", f"invalid YAML: {err}") from None
    except ValueError as err:  # e.g. an integer with more digits than Python converts
        raise SettingsError("", f"invalid YAML value: {err}") from None
    finally:
        loader.dispose()


_Node = yaml.Node
MAX_DEPTH = 8  # the schema needs 5 (owners.rules[].destination.pod_labels)


class _Reader(NodeReader):
    """Walks the YAML node tree so every error can name its key and line."""

    def __init__(self, loader: yaml.SafeLoader) -> None:
        super().__init__(lambda node: loader.construct_object(node, deep=True))
        self._loader = loader

    def _strings(self, node: _Node, key: str, check: Callable[[str], str]) -> list[str]:
        return self.strings(node, key, check, max_items=MAX_LIST_ITEMS)

    def _with_lines(self, node: _Node, key: str) -> object:
        """The value of ``node`` as the loader constructs it (merge keys merged), each
        mapping and list a ``LineDict`` or ``LineList`` that carries its line, for readers
        of loaded values that report lines (``analysis.validation.Context``). A node that
        stands in several places (an alias) is one value, as the loader makes it."""
        made: dict[int, object] = {}

        def value(node: _Node) -> object:
            if id(node) in made:
                return made[id(node)]
            out: object
            if isinstance(node, yaml.MappingNode):
                self._loader.flatten_mapping(node)
                mapping = made[id(node)] = out = LineDict()
                mapping.line = _line(node)
                for key_node, value_node in node.value:
                    if not isinstance(key_node, yaml.ScalarNode):
                        raise NodeError(key, "mapping keys must be scalars", _line(key_node))
                    mapping[self.scalar(key_node)] = value(value_node)
            elif isinstance(node, yaml.SequenceNode):
                sequence = made[id(node)] = out = LineList()
                sequence.line = _line(node)
                sequence.extend(value(item) for item in node.value)
            else:
                out = made[id(node)] = self.scalar(node)
            return out

        return value(node)

    def settings(self, root: _Node | None) -> RepoSettings:
        if root is None or root.tag == "tag:yaml.org,2002:null":  # empty, or only comments
            return RepoSettings()
        top = self.mapping(root, "", _TOP_KEYS)
        out: dict[str, Any] = {}
        if "paths" in top:
            out["paths"] = tuple(self._strings(top["paths"], "paths", _check_glob))
        if "ignore_paths" in top:
            out["ignore_paths"] = tuple(
                self._strings(top["ignore_paths"], "ignore_paths", _check_glob)
            )
        if "approvers" in top:
            approvers = self.mapping(top["approvers"], "approvers", ("users", "teams"))
            if "users" in approvers:
                users = self._strings(approvers["users"], "approvers.users", check_login)
                out["approver_users"] = frozenset(users)
            if "teams" in approvers:
                teams = self._strings(approvers["teams"], "approvers.teams", check_team)
                out["approver_teams"] = tuple(dict.fromkeys(teams))
        if "required_approvals" in top:
            out["required_approvals"] = self.integer(
                top["required_approvals"], "required_approvals", 1, MAX_REQUIRED_APPROVALS
            )
        for key in ("entry_points", "crown_jewels"):
            if key in top:
                try:
                    value = self._with_lines(top[key], key)
                    out[key] = parse_workload_selectors(value, key)
                except ManifestError as err:  # on the line of the offending entry
                    raise SettingsError(key, err.message, err.line or _line(top[key])) from None
        if "blast_radius_threshold" in top:
            out["blast_radius_threshold"] = self.integer(
                top["blast_radius_threshold"], "blast_radius_threshold", 0, 10**9
            )
        construct = self.scalar
        if "owners" in top:
            out["owners"] = read_owners(top["owners"], construct)
        if "break_glass" in top:
            out["break_glass"] = read_people(top["break_glass"], "break_glass", construct)
        for key in (
            "new_workloads_widen",
            "exclude_last_pusher",
            "diagram",
            "keep_approvals_when_delta_unchanged",
            "exposure_widens",
        ):
            if key in top:
                out[key] = self.boolean(top[key], key)
        if "ignore_namespaces" in top:
            names = self._strings(top["ignore_namespaces"], "ignore_namespaces", check_namespace)
            out["ignore_namespaces"] = tuple(dict.fromkeys(names))
        if "ignore_kinds" in top:
            kinds = self._strings(top["ignore_kinds"], "ignore_kinds", _check_kind)
            out["ignore_kinds"] = tuple(dict.fromkeys(kinds))
        if "workload_kinds" in top:
            out["workload_kinds"] = read_workload_kinds(self, top["workload_kinds"], MAX_LIST_ITEMS)
        if "max_line_comments" in top:
            out["max_line_comments"] = self.integer(
                top["max_line_comments"], "max_line_comments", 0, MAX_LINE_COMMENTS
            )
        if "kustomize_roots" in top:
            out["kustomize_roots"] = tuple(
                self._strings(top["kustomize_roots"], "kustomize_roots", check_repo_path)
            )
        if "helm_values" in top:
            out["helm_values"] = read_helm_values(self, top["helm_values"], MAX_LIST_ITEMS)
        if "cluster_scope" in top:
            node = top["cluster_scope"]
            value = self.scalar(node)
            if value not in CLUSTER_SCOPES:
                raise SettingsError(
                    "cluster_scope",
                    f"must be partial or complete, got {_shown(value)}",
                    _line(node),
                )
            out["cluster_scope"] = value
        if "cilium_agent" in top:
            out["cilium_agent"] = read_cilium_agent(self, top["cilium_agent"])
        if "lint" in top:
            out.update(read_lint(self, top["lint"]))
        if "flows" in top:
            out.update(self._flows(top["flows"]))
        if "breaking_needs_approval" in top:
            out["breaking_needs_approval"] = self.boolean(
                top["breaking_needs_approval"], "breaking_needs_approval"
            )
        settings = RepoSettings(**out)
        _check_satisfiable(settings, top.get("required_approvals"))
        return settings

    def _flows(self, node: _Node) -> dict[str, str]:
        """``flows: {path: FILE}`` (on the base branch) or ``flows: {url: https://...}``,
        with an optional ``environment`` (the rendered environment the flows were seen in)."""
        fields = dict(self.mapping(node, "flows", ("path", "url", "environment")))
        out: dict[str, str] = {}
        environment_node = fields.pop("environment", None)
        if environment_node is not None:
            environment = self.scalar(environment_node)
            if not isinstance(environment, str) or not environment.strip():
                raise SettingsError(
                    "flows.environment",
                    "must be a non-empty string: a rendered environment's name "
                    "(`overlays/prod`, `charts/shop`)",
                    _line(environment_node),
                )
            out["flows_environment"] = environment.strip().strip("/")
        if len(fields) != 1:
            raise SettingsError("flows", "give exactly one of `path` and `url`", _line(node))
        ((key, value_node),) = fields.items()
        value = self.scalar(value_node)
        if not isinstance(value, str) or not value:
            raise SettingsError(f"flows.{key}", "must be a non-empty string", _line(value_node))
        if key == "path":
            try:
                return {**out, "flows_path": check_repo_path(value)}
            except ValueError as err:
                raise SettingsError("flows.path", str(err), _line(value_node)) from None
        if not value.startswith("https://") or any(c.isspace() for c in value):
            raise SettingsError("flows.url", "must be an https:// URL", _line(value_node))
        return {**out, "flows_url": value}


_TOP_KEYS = (
    "paths",
    "ignore_paths",
    "approvers",
    "required_approvals",
    "new_workloads_widen",
    "exclude_last_pusher",
    "ignore_namespaces",
    "ignore_kinds",
    "workload_kinds",
    "max_line_comments",
    "diagram",
    "kustomize_roots",
    "helm_values",
    "cluster_scope",
    "lint",
    "entry_points",
    "crown_jewels",
    "exposure_widens",
    "blast_radius_threshold",
    "owners",
    "keep_approvals_when_delta_unchanged",
    "break_glass",
    "flows",
    "breaking_needs_approval",
    "cilium_agent",
)
CLUSTER_SCOPES = ("partial", "complete")


def _check_satisfiable(settings: RepoSettings, node: _Node | None) -> None:
    # Only users and no teams: more required approvals than users can never be met.
    if settings.approver_teams or not settings.approver_users:
        return
    if settings.required_approvals > len(settings.approver_users):
        raise SettingsError(
            "required_approvals",
            f"{settings.required_approvals} approvals can never come from the "
            f"{len(settings.approver_users)} users in approvers.users",
            _line(node) if node is not None else None,
        )


def _check_kind(value: str) -> str:
    if not KIND_REFERENCE.fullmatch(value):
        raise ValueError(
            f"{_shown(value)} is not a kind: write it as in `kind:` (CiliumNetworkPolicy), "
            "or with its API group (NetworkPolicy.projectcalico.org)"
        )
    return value


def _check_glob(value: str) -> str:
    if value.startswith("/") or ".." in value.split("/"):
        raise ValueError(f"{_shown(value)} must be relative to the repository root, without '..'")
    return check_glob(value)


@functools.lru_cache(maxsize=512)
def _namespace_matcher(pattern: str) -> Callable[[str], bool]:
    """Process-wide memo: a pure function of a short pattern, bounded in entries."""
    regex = re.compile(".*".join(re.escape(part) for part in pattern.split("*")))
    return lambda name: regex.fullmatch(name) is not None
