"""What merging a pull request would produce, when GitHub's test merge commit is not usable.

``merged_files`` is a file-level three-way merge, the part of git's merge that needs no
guessing: a file only one side changed (since the merge base) takes that side's content; a
file both sides changed identically takes it; a file both changed differently is a
conflict. Git might still merge such a file line by line (or follow a rename), but then the
result is something this module would have to guess, so it is reported instead and the
review fails closed ("could not determine what will merge").

The trees are the manifests read from each commit's archive (already filtered to the
repository's ``paths``), so a conflict outside them does not matter here: GitHub would not
merge the pull request at all.
"""

from __future__ import annotations

from collections.abc import Mapping


class MergeConflict(Exception):
    def __init__(self, paths: tuple[str, ...]) -> None:
        super().__init__(paths)
        self.paths = paths  # changed differently on both sides, sorted

    def __str__(self) -> str:
        shown = ", ".join(self.paths[:10])
        more = f" and {len(self.paths) - 10} more" if len(self.paths) > 10 else ""
        return f"both the base branch and the pull request changed {shown}{more}"


def merged_files(
    merge_base: Mapping[str, bytes], base: Mapping[str, bytes], head: Mapping[str, bytes]
) -> dict[str, bytes]:
    """``base`` with the pull request's changes (``merge_base`` → ``head``) applied.

    A missing path is a deleted (or never created) file. Raises ``MergeConflict``.
    """
    merged: dict[str, bytes] = {}
    conflicts: list[str] = []
    for path in sorted(merge_base.keys() | base.keys() | head.keys()):
        was, ours, theirs = merge_base.get(path), base.get(path), head.get(path)
        if theirs == was:  # the pull request left it alone
            result = ours
        elif ours in (was, theirs):  # only the pull request changed it, or both alike
            result = theirs
        else:
            conflicts.append(path)
            continue
        if result is not None:
            merged[path] = result
    if conflicts:
        raise MergeConflict(tuple(conflicts))
    return merged
