"""Which files of a chart its templates may read (bot.inputs.chartfiles)."""

from __future__ import annotations

from bot.inputs.chartfiles import chart_files_unread, unrendered_values_changes

FILES = {
    "lit/Chart.yaml": b"",
    "lit/templates/a.yaml": b'{{ if not (.Files.Get "open.flag") }}x{{ end }}\n'
    b'{{ (.Files.Glob "conf/*.ini").AsConfig }}\n',
    "any/Chart.yaml": b"",
    "any/templates/a.yaml": b"{{ $.Files.Get .Values.name }}\n",
    "none/Chart.yaml": b"",
    "none/templates/a.yaml": b"kind: ConfigMap\n",
}


def test_files_a_literal_call_names_or_any_use_may_read_are_unread() -> None:
    listed = [
        *FILES,
        "lit/open.flag",
        "lit/README.md",  # no call names it
        "lit/conf/a.ini",
        "lit/conf/deep/b.ini",  # wildcards are read wider: they may cross `/`
        "any/README.md",
        "any/.secret",
        "any/templates/NOTES.bin",  # templates are rendered, not read with .Files
        "any/charts/sub/Chart.yaml",
        "any/charts/sub/data.bin",  # the subchart's own file; its templates read none
        "any/charts/dep-1.0.0.tgz",  # a vendored dependency: never in .Files
        "any/Chart.lock",
        "none/open.flag",
    ]
    found = chart_files_unread(listed, {**FILES, "any/charts/sub/Chart.yaml": b""})
    assert found == [
        ("any/.secret", "any"),
        ("any/README.md", "any"),
        ("lit/conf/a.ini", "lit"),
        ("lit/conf/deep/b.ini", "lit"),
        ("lit/open.flag", "lit"),
    ]


def test_files_the_readers_kept_are_never_unread() -> None:
    listed = [*FILES, "any/values-prod.yaml"]
    kept = {**FILES, "any/values-prod.yaml": b"a: 1\n"}
    assert chart_files_unread(listed, kept) == []


def test_values_files_edited_but_never_rendered_are_named() -> None:
    base = {"c/Chart.yaml": b"", "c/values.yaml": b"a: 1\n", "c/values-prod.yaml": b"a: 1\n"}
    head = {
        **base,
        "c/values.yaml": b"a: 2\n",  # the default: always rendered
        "c/values-prod.yaml": b"a: 2\n",
        "c/values-dev.yml": b"a: 3\n",  # added
        "c/templates/values-like.yaml": b"x\n",  # a template, not in the chart's directory
    }
    found = unrendered_values_changes(base, head, {"c": ["c/values-dev.yml"]})
    assert [line.split(":")[0] for line in found] == ["c/values-prod.yaml"]
    assert unrendered_values_changes(base, base, None) == []
