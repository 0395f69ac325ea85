"""Files of a Helm chart its templates may read (``.Files``) that the readers did not keep.

The readers keep manifests and the render inputs named in ``bot.inputs.files``; a chart's
other files (``open.flag``, ``config/app.xyz``, a dot-file) never reach the renderer. A
template reading one with ``.Files.Get`` then renders as if it were empty, which can be
the opposite of what the cluster gets: ``{{ if not (.Files.Get "open.flag") }}`` keeps a
default-deny that adding the file removes. So such a file is *not analysed* when a
template of its chart may read it: a ``.Files`` call with a literal path or glob that
covers it, or any other use of ``.Files`` (a computed name may be any file).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Mapping, Sequence

from bot.inputs.helm import CHART_FILE

# `.Files.Get "x"` and its kin with a literal argument; every other mention of `Files`
# (a computed name, `.Files` handed to a helper, `$.Files.Glob $pattern`) may read anything.
_LITERAL_CALL = re.compile(r"\.Files\.(Get|GetBytes|Lines|Glob)\s+\"((?:[^\"\\]|\\.)*)\"")
_ANY_USE = re.compile(r"\bFiles\b")
_NOT_FILES = frozenset({".helmignore", "Chart.lock", "requirements.lock"})


def chart_files_unread(listed: Iterable[str], files: Mapping[str, bytes]) -> list[tuple[str, str]]:
    """(path, chart directory) of each listed file (a blob of the commit, inside the
    reviewed paths) that ``files`` lacks and a template of its chart may read."""
    listed = sorted(listed)
    charts = sorted(
        {posixpath.dirname(p) for p in listed if posixpath.basename(p) == CHART_FILE},
        key=len,
        reverse=True,  # innermost first: a subchart's files are its own, not its parent's
    )
    out: list[tuple[str, str]] = []
    wants: dict[str, tuple[bool, list[re.Pattern[str]]]] = {}
    for path in listed:
        if path in files:
            continue
        chart = next((c for c in charts if _under(path, c)), None)
        if chart is None:
            continue
        rel = path[len(chart) + 1 :] if chart else path
        if rel.startswith(("templates/", "charts/")) or rel in _NOT_FILES:
            # Helm's loader makes templates, dependencies (charts/), the lock and the
            # .helmignore parts of the chart, never members of .Files.
            continue
        if chart not in wants:
            wants[chart] = _wanted(chart, files)
        everything, patterns = wants[chart]
        if everything or any(p.fullmatch(rel) for p in patterns):
            out.append((path, chart or "."))
    return out


def _under(path: str, directory: str) -> bool:
    return directory == "" or path.startswith(directory + "/")


def _wanted(chart: str, files: Mapping[str, bytes]) -> tuple[bool, list[re.Pattern[str]]]:
    """Whether the chart's templates may read any file, else the paths they name."""
    prefix = f"{chart}/templates/" if chart else "templates/"
    patterns: list[re.Pattern[str]] = []
    for path, data in files.items():
        if not path.startswith(prefix):
            continue
        text = data.decode("utf-8", errors="replace")
        literal = list(_LITERAL_CALL.finditer(text))
        if len(_ANY_USE.findall(text)) > len(literal):
            return True, []
        patterns += [_pattern(m.group(1), m.group(2)) for m in literal]
    return False, patterns


def _pattern(call: str, argument: str) -> re.Pattern[str]:
    # Helm globs (gobwas/glob) are read wider, never narrower: every wildcard may cross
    # `/`, and a `[`, `{` or `\` makes the pattern match anything.
    name = argument.removeprefix("./")
    if call != "Glob":
        return re.compile(re.escape(name))
    if any(c in name for c in "[{\\"):
        return re.compile(".*", re.DOTALL)
    return re.compile(
        "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in name),
        re.DOTALL,
    )


# Values files kept next to a chart for its deployments (values-prod.yaml, prod.values.yml);
# values.yaml is the chart's own default, always rendered.
_VALUES_FILE = re.compile(r".*values.*\.ya?ml")


def unrendered_values_changes(
    base_files: Mapping[str, bytes],
    head_files: Mapping[str, bytes],
    helm_values: Mapping[str, Sequence[str]] | None,
) -> list[str]:
    """Values files in a chart's directory that the change adds, removes or edits but no
    ``helm_values`` entry renders the chart with. A deployment (an Argo CD Application's
    ``valueFiles``, a HelmRelease) may use one, and ``deny: false`` there opens what no
    render shows: not analysed, until ``helm_values`` names it."""
    charts = {
        posixpath.dirname(p)
        for files in (base_files, head_files)
        for p in files
        if posixpath.basename(p) == CHART_FILE
    }
    rendered = {v for values in (helm_values or {}).values() for v in values}
    out = []
    for path in sorted(base_files.keys() | head_files.keys()):
        directory, name = posixpath.split(path)
        if (
            directory in charts
            and name != "values.yaml"
            and _VALUES_FILE.fullmatch(name)
            and path not in rendered
            and base_files.get(path) != head_files.get(path)
        ):
            out.append(
                f"{path}: a values file of chart {directory or '.'} that the change edits and "
                "no `helm_values` entry renders the chart with: what a deployment using it "
                "gets is not analysed (name it under `helm_values` in .github/reachdiff.yml)"
            )
    return out
