"""Helm charts: finding them, checking their dependencies, and ``helm template`` in a sandbox.

A chart is rendered only when a ``helm`` binary is installed, never downloads anything
(no ``--dependency-update``; dependencies must be vendored under ``charts/``), and runs in
``bot.inputs.sandbox`` like kustomize. Helm releases before 3.11.1 let templates resolve host names
(``getHostByName``), so those are run only where the sandbox can cut the network off.

Rendered objects are traced back to their template through the ``# Source:`` comment Helm
writes before each document; lines are matched from the output to the template text, so
they are approximate (a templated line cannot be matched exactly).

Why one module of 400 lines: finding charts, checking their dependencies, running
``helm template`` and tracing its output back to the templates are one renderer.
"""

from __future__ import annotations

import bisect
import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from analysis.errors import ManifestError
from analysis.yamldoc import LineDict, LineList, YAMLSyntaxError, parse_documents
from bot.inputs.sandbox import Limits, ToolError, Tools, normalise, run_tool, workspace

CHART_FILE = "Chart.yaml"
# The first release whose templates cannot make DNS lookups unless asked (--enable-dns).
DNS_SAFE_VERSION = (3, 11, 1)
# The Kubernetes version charts see as .Capabilities.KubeVersion and are checked against
# (Chart.yaml `kubeVersion`). Without --kube-version, helm template uses the version of the
# client-go it was built with, so the same chart renders differently under, or is refused
# by, another helm release (helm 3.6.2 says v1.20.0 and refuses podinfo's
# `kubeVersion: ">=1.23.0-0"`). A fixed, current version renders alike under every helm;
# --kube-version exists since helm 3.6.0.
KUBE_VERSION = "v1.34.0"
KUBE_VERSION_FLAG_SINCE = (3, 6, 0)
_RELEASE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@dataclass(frozen=True, slots=True)
class Chart:
    dir: str  # repository directory holding Chart.yaml ("" at the root)
    name: str  # the chart's own name (Chart.yaml `name`), as Helm writes it in `# Source:`


def chart_dirs(files: Mapping[str, bytes]) -> list[str]:
    """Directories with a Chart.yaml that no other chart contains (subcharts are parts)."""
    dirs = sorted(
        path.rpartition("/")[0] for path in files if path.rpartition("/")[2] == CHART_FILE
    )
    top: list[str] = []
    for d in dirs:
        if not any(d.startswith(t + "/") or t == "" for t in top):
            top.append(d)
    return top


def in_chart(path: str, charts: Sequence[str]) -> bool:
    return any(c == "" or path.startswith(c + "/") for c in charts)


def _join(directory: str, name: str) -> str:
    return f"{directory}/{name}" if directory else name


def _load_yaml(path: str, content: bytes) -> Any:
    try:
        docs = parse_documents(content.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise ManifestError(path, 1, f"not UTF-8 text ({exc.reason})") from None
    except YAMLSyntaxError as exc:
        raise ManifestError(path, exc.line, exc.message) from None
    return docs[0].data if docs else None


def read_chart(directory: str, files: Mapping[str, bytes]) -> Chart:
    path = _join(directory, CHART_FILE)
    meta = _load_yaml(path, files[path])
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta["name"]:
        raise ManifestError(path, 1, "Chart.yaml needs a `name`")
    return Chart(directory, meta["name"])


def missing_dependencies(directory: str, files: Mapping[str, bytes]) -> list[str]:
    """Dependencies of the chart (and its vendored subcharts) not vendored under charts/."""
    missing: list[str] = []
    chart_path = _join(directory, CHART_FILE)
    meta = _load_yaml(chart_path, files[chart_path])
    deps = meta.get("dependencies") if isinstance(meta, dict) else None
    requirements = _join(directory, "requirements.yaml")
    if deps is None and requirements in files:  # apiVersion v1 charts
        req = _load_yaml(requirements, files[requirements])
        deps = req.get("dependencies") if isinstance(req, dict) else None
    vendored = _vendored(directory, files)
    for dep in deps if isinstance(deps, list) else []:
        if not isinstance(dep, dict) or not isinstance(dep.get("name"), str):
            continue
        name = dep["name"]
        if name not in vendored:
            repo = dep.get("repository")
            where = f" from {repo}" if isinstance(repo, str) and repo else ""
            missing.append(f"{name}{where}")
    for sub_dir in vendored.values():
        if sub_dir is not None:
            missing.extend(missing_dependencies(sub_dir, files))
    return missing


def _vendored(directory: str, files: Mapping[str, bytes]) -> dict[str, str | None]:
    """Names of the charts under ``directory``/charts: unpacked (with their dir) or archives."""
    prefix = _join(directory, "charts/")
    out: dict[str, str | None] = {}
    for path in files:
        if not path.startswith(prefix):
            continue
        rest = path[len(prefix) :]
        parts = rest.split("/")
        if len(parts) == 2 and parts[1] == CHART_FILE:
            sub = prefix + parts[0]
            try:
                out[read_chart(sub, files).name] = sub
            except ManifestError:
                continue
        elif len(parts) == 1 and rest.endswith(".tgz"):
            # name-1.2.3.tgz: the name is everything before the version.
            m = re.match(r"^(.*?)-v?\d+\.\d+", rest)
            out.setdefault(m.group(1) if m else rest[: -len(".tgz")], None)
    return out


def release_name(directory: str) -> str:
    """A valid release name from the chart's directory (``charts/shop`` → ``shop``)."""
    base = posixpath.basename(directory) or "release"
    name = re.sub(r"[^a-z0-9-]+", "-", base.lower()).strip("-")[:53].strip("-")
    return name if _RELEASE_NAME.match(name) else "release"


@cache
def helm_version(helm: str, isolate: bool) -> tuple[int, int, int] | None:
    """The release of a helm binary, ``None`` if it cannot tell."""
    with workspace({}, []) as ws:
        try:
            done = run_tool(
                [helm, "version", "--short"],
                ws,
                what="helm version",
                limits=Limits(timeout=20),
                isolate_network=isolate,
                extra_env=_helm_env(str(ws.home)),
            )
        except ToolError:
            return None
    m = re.search(r"v(\d+)\.(\d+)\.(\d+)", done.stdout)
    return (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None


def _helm_env(home: str) -> dict[str, str]:
    return {
        "HELM_CACHE_HOME": f"{home}/.cache/helm",
        "HELM_CONFIG_HOME": f"{home}/.config/helm",
        "HELM_DATA_HOME": f"{home}/.local/share/helm",
        "HELM_PLUGINS": f"{home}/no-plugins",
        "HELM_NO_PLUGINS": "1",
        "HELM_REGISTRY_CONFIG": f"{home}/no-registry.json",
        "HELM_REPOSITORY_CONFIG": f"{home}/no-repositories.yaml",
        "HELM_REPOSITORY_CACHE": f"{home}/.cache/helm/repository",
    }


@dataclass(frozen=True, slots=True)
class HelmResult:
    objects: tuple[tuple[str, LineDict], ...] = ()
    notes: tuple[str, ...] = ()
    unanalysed: tuple[str, ...] = ()


def template_command(
    helm: str,
    release: str,
    chart_dir: str,
    values: Sequence[str],
    namespace: str,
    kube_version: str | None = KUBE_VERSION,
) -> list[str]:
    """The ``helm template`` command line; every path is inside the sandbox."""
    argv = [helm, "template", release, chart_dir, "--namespace", namespace, "--skip-tests"]
    if kube_version is not None:
        argv += ["--kube-version", kube_version]
    for path in values:
        argv += ["--values", path]
    return argv


def resolve_values(chart_dir: str, values: Sequence[str], files: Mapping[str, bytes]) -> list[str]:
    """Values files as repository paths: as given, else relative to the chart."""
    out: list[str] = []
    for value in values:
        for candidate in (normalise("", value), normalise(chart_dir, value)):
            if candidate is not None and candidate in files:
                out.append(candidate)
                break
        else:
            raise ManifestError(
                _join(chart_dir, CHART_FILE),
                1,
                f"the values file {value!r} configured for {chart_dir or '.'} is not in the "
                "repository",
            )
    return out


def render_chart(
    chart_dir: str,
    files: Mapping[str, bytes],
    *,
    values: Sequence[str] = (),
    namespace: str = "default",
    tools: Tools,
    limits: Limits,
) -> HelmResult:
    """Render one chart; charts that cannot be rendered safely come back unanalysed."""
    shown = chart_dir or "."
    chart = read_chart(chart_dir, files)
    if tools.helm is None:
        return HelmResult(unanalysed=(f"helm is not installed: chart {shown} was not analysed",))
    missing = missing_dependencies(chart_dir, files)
    if missing:
        return HelmResult(
            unanalysed=(
                f"chart {shown} was not analysed: its dependencies {', '.join(missing)} are not "
                "vendored under charts/ (reachdiff never downloads them; run `helm dependency "
                "build` and commit the charts/ directory)",
            )
        )
    version = helm_version(tools.helm, tools.isolate_network)
    if not tools.isolate_network and (version is None or version < DNS_SAFE_VERSION):
        found = ".".join(map(str, version)) if version else "of unknown version"
        return HelmResult(
            unanalysed=(
                f"chart {shown} was not analysed: helm {found} lets templates make DNS "
                "lookups and the network cannot be isolated here (install helm 3.11.1 or "
                "newer)",
            )
        )
    value_paths = resolve_values(chart_dir, values, files)
    needed = [p for p in files if in_chart(p, [chart_dir])] + value_paths
    with workspace(files, needed) as ws:
        root = ws.tree / chart_dir if chart_dir else ws.tree
        argv = template_command(
            tools.helm,
            release_name(chart_dir),
            str(root),
            [str(ws.tree / v) for v in value_paths],
            namespace,
            # A helm too old for the flag (or silent about its release) keeps its default.
            KUBE_VERSION if version is not None and version >= KUBE_VERSION_FLAG_SINCE else None,
        )
        try:
            done = run_tool(
                argv,
                ws,
                what=f"helm template of {shown}",
                limits=limits,
                isolate_network=tools.isolate_network,
                extra_env=_helm_env(str(ws.home)),
            )
        except ToolError as err:
            file, line = _blame(err.message, chart, files)
            message = _NO_KUBECONFIG.sub("", err.message)
            message = message.replace("; Use --debug flag to render out invalid YAML", "")
            if _EXECUTION_ERROR in message:
                message += (
                    " (the chart requires a value its values do not give: name a values "
                    f"file for {shown} under `helm_values` in .github/reachdiff.yml)"
                )
            raise ManifestError(file, line, message) from None
    objects = trace_sources(done.stdout, chart, files)
    notes = (
        (
            f"{shown}: lines in Helm templates are matched from the rendered output to the "
            "template text and are approximate",
        )
        if objects
        else ()
    )
    return HelmResult(objects=objects, notes=notes)


_TEMPLATE_ERROR = re.compile(
    r"(?:template: |parse error at \(|YAML parse error on |execution error at \()"
    r"([^\s:()]+)(?::(\d+))?"
)
# client-go's warning that the sandbox has no kubeconfig (on purpose): noise in an error.
_NO_KUBECONFIG = re.compile(
    r"W\d{4} [\d:.]+\s+\d+ loader\.go:\d+\] Config not found: [^;]*(?:; |$)"
)
# `required` and `fail` in a template: the chart needs a value the values files lack.
_EXECUTION_ERROR = "execution error at ("


def _blame(message: str, chart: Chart, files: Mapping[str, bytes]) -> tuple[str, int]:
    m = _TEMPLATE_ERROR.search(message)
    if m:
        path = source_path(m.group(1), chart, files)
        if path is not None:
            return path, int(m.group(2)) if m.group(2) else 1
    return _join(chart.dir, CHART_FILE), 1


def source_path(source: str, chart: Chart, files: Mapping[str, bytes]) -> str | None:
    """``shop/templates/np.yaml`` (chart-name based, as Helm writes it) as a repository path."""
    parts = source.split("/")
    if not parts or parts[0] != chart.name:
        return None
    directory = chart.dir
    rest = parts[1:]
    # Subcharts appear as <name>/charts/<subchart name>/...: map names to directories.
    while len(rest) >= 2 and rest[0] == "charts":
        vendored = _vendored(directory, files)
        sub = vendored.get(rest[1])
        if sub is None:
            break
        directory, rest = sub, rest[2:]
    path = _join(directory, "/".join(rest))
    return path if path in files else None


_SOURCE = re.compile(r"^# Source: (.+?)\s*$")


def trace_sources(
    output: str, chart: Chart, files: Mapping[str, bytes]
) -> tuple[tuple[str, LineDict], ...]:
    """The objects of ``helm template`` output, with lines pointing into their templates."""
    lines = output.splitlines()
    sources: list[tuple[int, str]] = []  # (1-based line of the comment, source)
    for number, text in enumerate(lines, 1):
        m = _SOURCE.match(text)
        if m:
            sources.append((number, m.group(1)))
    try:
        docs = parse_documents(output)
    except YAMLSyntaxError as exc:
        raise ManifestError(
            _join(chart.dir, CHART_FILE), 1, f"helm output is not valid YAML: {exc.message}"
        ) from None
    chart_file = _join(chart.dir, CHART_FILE)
    starts = [n for n, _ in sources]
    matchers: dict[str, _LineMatcher] = {}
    out: list[tuple[str, LineDict]] = []
    for doc in docs:
        if not isinstance(doc.data, LineDict):
            continue
        i = bisect.bisect_right(starts, doc.line) - 1
        source = sources[i][1] if i >= 0 else None
        path = source_path(source, chart, files) if source else None
        if path is None:
            _set_lines(doc.data, lambda _line: 1)
            out.append((chart_file, doc.data))
            continue
        if path not in matchers:
            matchers[path] = _LineMatcher(files[path].decode("utf-8", errors="replace"))
        mapping = matchers[path].map(lines, starts[i] + 1 if i >= 0 else 1, doc.line)
        _set_lines(doc.data, mapping)
        out.append((path, doc.data))
    return tuple(out)


def _set_lines(node: Any, mapping: Any) -> None:
    stack = [node]
    seen: set[int] = set()
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        if isinstance(n, (LineDict, LineList)):
            n.line = mapping(n.line)
            stack.extend(n.values() if isinstance(n, dict) else n)


_KEY = re.compile(r"^(-\s+)?([^:#]+:)")


class _LineMatcher:
    """Maps lines of rendered output to the template lines they most likely came from."""

    def __init__(self, template: str) -> None:
        self.exact: dict[str, list[int]] = {}
        self.keys: dict[str, list[int]] = {}
        # The template's documents (first line, the lines written in it): a rendered
        # document is matched from the start of the one it shares most lines with, since
        # documents alike at the top (apiVersion, kind) differ further down.
        self.segments: list[tuple[int, set[str]]] = [(1, set())]
        self.used: set[int] = set()
        for number, text in enumerate(template.splitlines(), 1):
            stripped = text.strip()
            if stripped.startswith("---"):
                self.segments.append((number + 1, set()))
                continue
            self.segments[-1][1].add(stripped)
            if not stripped or stripped.startswith("#") or stripped.startswith("{{"):
                continue
            self.exact.setdefault(stripped, []).append(number)
            m = _KEY.match(stripped)
            if m:
                self.keys.setdefault((m.group(1) or "") + m.group(2), []).append(number)

    def map(self, rendered: Sequence[str], first: int, content_start: int) -> Any:
        """A function from rendered line numbers (of this document) to template lines."""
        table: dict[int, int] = {}
        pointer = self._segment(rendered, first, content_start)
        last = pointer
        number = first
        while number <= len(rendered):
            text = rendered[number - 1]
            if number > content_start and (text.startswith("---") or _SOURCE.match(text)):
                break
            stripped = text.strip()
            if stripped:
                found = self._find(self.exact.get(stripped), pointer)
                if found is None:
                    m = _KEY.match(stripped)
                    key = (m.group(1) or "") + m.group(2) if m else None
                    found = self._find(self.keys.get(key) if key else None, pointer)
                if found is not None:
                    last, pointer = found, found + 1
            table[number] = last
            number += 1
        return lambda line: table.get(line, last)

    def _segment(self, rendered: Sequence[str], first: int, content_start: int) -> int:
        """The first line of the template document this rendered one most likely came
        from: most lines in common; among equals, the first not yet matched (helm renders
        a template's documents in order), else the first."""
        written: set[str] = set()
        for number in range(first, len(rendered) + 1):
            text = rendered[number - 1]
            if number > content_start and (text.startswith("---") or _SOURCE.match(text)):
                break
            written.add(text.strip())
        scores = [len(lines & written) for _, lines in self.segments]
        best = max(scores)
        ties = [i for i, score in enumerate(scores) if score == best]
        chosen = next((i for i in ties if i not in self.used), ties[0])
        self.used.add(chosen)
        return self.segments[chosen][0]

    @staticmethod
    def _find(candidates: list[int] | None, pointer: int) -> int | None:
        # The next occurrence at or after the pointer; else (a loop body rendered again)
        # the nearest one before it.
        if not candidates:
            return None
        i = bisect.bisect_left(candidates, pointer)
        if i < len(candidates):
            return candidates[i]
        return candidates[-1]
