"""The jinja2 environment over the ``templates`` data directory.

Templates are found through ``importlib.resources``, so they load the same from a source
checkout and from an installed wheel (``templates`` is a namespace package of ``*.j2`` data
files, listed as package data in pyproject.toml).

Escaping is on by default: every ``{{ value }}`` that is not already ``Md`` (the output of
one of the filters below) is escaped as plain text, so a template cannot forget to escape
a name from a manifest. Filters:

- ``code`` / ``cell``: an inline code span (``cell`` is safe inside a table cell);
- ``text``: escaped plain text; ``mentions``: the same with ``@login`` left live;
- ``link(url)``: ``[label](url)`` around already-escaped Markdown;
- ``mermaid``: a quoted mermaid label;
- ``plural(word)``: ``1 path`` / ``2 paths``;
- ``ident``: an identifier the app made (a mermaid node id), checked, printed as is.
"""

from __future__ import annotations

import functools
import importlib
import os
import pathlib
import re
from collections.abc import Callable
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

import jinja2

from analysis import markdown
from analysis.wording import counted

TEMPLATE_PACKAGE = "templates"
_IDENT = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\.j2")


class Md(str):
    """Markdown that is already escaped (or written by the app itself)."""

    __slots__ = ()


class ResourceLoader(jinja2.BaseLoader):
    """Loads ``<name>.j2`` from the ``templates`` package's files."""

    def __init__(self, package: str = TEMPLATE_PACKAGE) -> None:
        self.package = package

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str | None, Callable[[], bool] | None]:
        if not _NAME.fullmatch(template):
            raise jinja2.TemplateNotFound(template)
        for root in _roots(self.package):
            resource = root.joinpath(template)
            if resource.is_file():
                # The templates ship with the code: they never change while the process runs.
                return resource.read_text(encoding="utf-8"), str(resource), lambda: True
        raise jinja2.TemplateNotFound(template)

    def list_templates(self) -> list[str]:
        return sorted(
            {
                p.name
                for root in _roots(self.package)
                for p in root.iterdir()
                if _NAME.fullmatch(p.name)
            }
        )


def _roots(package: str) -> list[Traversable]:
    try:
        return [resources.files(package)]
    except NotADirectoryError:
        # Python 3.11 refuses a namespace package whose __path__ holds a non-directory, as
        # the path hook of an editable install (pip install -e) adds: use its directories.
        module = importlib.import_module(package)
        return [pathlib.Path(p) for p in module.__path__ if os.path.isdir(p)]


def _finalize(value: Any) -> str:
    if isinstance(value, Md):
        return value
    if isinstance(value, bool) or value is None:
        # "True"/"None" in a comment is always a template bug.
        raise TypeError(f"template printed {value!r}")
    if isinstance(value, int):
        return str(value)
    return markdown.text(value)


def _escaped(value: Any) -> str:
    return value if isinstance(value, Md) else markdown.text(value)


def _ident(value: str) -> Md:
    if not _IDENT.fullmatch(value):
        raise ValueError(f"not an identifier the app made: {value!r}")
    return Md(value)


def _plural(n: int, word: str, plural: str | None = None) -> Md:
    return Md(counted(n, word, plural))


@functools.cache
def environment() -> jinja2.Environment:
    """The one jinja2 environment of the process: built from the packaged templates
    alone (no input), and rendering with it mutates nothing of it."""
    env = jinja2.Environment(
        loader=ResourceLoader(),
        autoescape=False,  # Markdown, not HTML: escaping is done by _finalize and filters
        finalize=_finalize,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        code=lambda v: Md(markdown.code(v)),
        cell=lambda v: Md(markdown.code(v, cell=True)),
        text=lambda v: Md(markdown.text(v)),
        mentions=lambda v: Md(markdown.text(v, mentions=True)),
        link=lambda label, target: Md(markdown.link(_escaped(label), target)),
        mermaid=lambda v: Md(markdown.mermaid_label(v)),
        # Inside <summary> and other HTML blocks GitHub reads no Markdown.
        html_text=lambda v: Md(markdown.html_text(v)),
        html_code=lambda v: Md(markdown.html_code(v)),
        plural=_plural,
        ident=_ident,
    )
    return env


def render(name: str, **values: Any) -> str:
    return environment().get_template(name).render(**values)
