"""Paths inside the repository that ``.github/reachdiff.yml`` names (``kustomize_roots``,
``helm_values``, ``flows.path``): relative to the repository's root, never leaving it.

A settings file names what the bot reads from the base branch; a path that climbs out
(``..``), starts at ``/`` or uses ``\\`` is an error naming the key and line, never read.
"""

from __future__ import annotations

import yaml

from bot.review.yamlnodes import NodeError, NodeReader, line


def check_repo_path(value: str) -> str:
    """A path inside the repository, relative to its root (``./`` and a final ``/`` are
    dropped); a ``ValueError`` says what is wrong."""
    clean = value.strip().removeprefix("./").rstrip("/")
    if not clean or clean.startswith("/") or ".." in clean.split("/") or "\\" in clean:
        raise ValueError(f"{value!r} must be a path inside the repository, like overlays/prod")
    return clean


def read_helm_values(
    reader: NodeReader, node: yaml.Node, max_items: int
) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``helm_values``: chart directory -> its values files, in the order given."""
    if not isinstance(node, yaml.MappingNode):
        raise NodeError(
            "helm_values", "must map chart directories to lists of values files", line(node)
        )
    out = []
    for key_node, value_node in node.value:
        chart = reader.scalar(key_node)
        key = f"helm_values.{chart}"
        if not isinstance(chart, str):
            raise NodeError("helm_values", "chart directories must be strings", line(key_node))
        try:
            chart = check_repo_path(chart)
        except ValueError as err:
            raise NodeError(key, str(err), line(key_node)) from None
        values = reader.strings(value_node, key, check_repo_path, max_items=max_items)
        out.append((chart, tuple(values)))
    return tuple(out)
