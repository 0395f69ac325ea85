"""Bad input, as every reader reports it: what is wrong, where (side, file, line), the fix.

``InputError`` is the one base: the manifest loader's ``ManifestError``, the tree and git
readers', the settings parser's and the command line's own errors all derive from it, so
the CLI catches one type and exits 2, and nothing a user can fix is mistaken for a bug
(exit 3). ``str()`` is the whole message; the attributes say where, for annotations.
"""

from __future__ import annotations


class InputError(Exception):
    """Bad input. ``file`` and ``line`` (None: not one line) say where, ``side`` on which
    side of a diff (``base``, ``head``, or "" for neither), ``fix`` what to do when the
    message does not already say."""

    file: str = ""
    line: int | None = None
    side: str = ""
    fix: str = ""


class ManifestError(InputError):
    """A manifest that cannot be read as Kubernetes objects; always names file and line."""

    line: int

    def __init__(self, file: str, line: int, message: str) -> None:
        super().__init__(f"{file}:{line}: {message}")
        self.file = file
        self.line = line
        self.message = message

    def __reduce__(self) -> tuple[type[ManifestError], tuple[str, int, str]]:
        # Errors cross process boundaries (the bot analyses in a process pool).
        return (ManifestError, (self.file, self.line, self.message))


class DuplicateObjectError(ManifestError):
    """An object defined twice in one tree: at ``file``:``line``, and first at
    ``first_file``:``first_line``. Defined in two files, the files are alternative
    deliverables (``bot.inputs.alternatives`` reviews each on its own); in one file, the
    file contradicts itself and stays an error."""

    def __init__(self, file: str, line: int, message: str, first_file: str, first_line: int):
        super().__init__(file, line, message)
        self.first_file = first_file
        self.first_line = first_line

    @property
    def across_files(self) -> bool:
        return self.first_file != self.file

    def __reduce__(  # type: ignore[override]
        self,
    ) -> tuple[type[DuplicateObjectError], tuple[str, int, str, str, int]]:
        return (
            DuplicateObjectError,
            (self.file, self.line, self.message, self.first_file, self.first_line),
        )
