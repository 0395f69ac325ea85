"""The one error type bad input produces: it always names the file, the line and the fix."""

from __future__ import annotations


class ManifestError(Exception):
    def __init__(self, file: str, line: int, message: str) -> None:
        super().__init__(f"{file}:{line}: {message}")
        self.file = file
        self.line = line
        self.message = message

    def __reduce__(self) -> tuple[type[ManifestError], tuple[str, int, str]]:
        # Errors cross process boundaries (the bot analyses in a process pool).
        return (ManifestError, (self.file, self.line, self.message))
