"""Manifest trees read straight from git objects at a ref, without a checkout.

A checkout would write hostile files to disk and run filters, hooks and the fsmonitor named
in the repository's own config. Reading objects does none of that: ``rev-parse`` names the
commit, ``ls-tree`` lists its files with their blob ids and sizes, and one ``cat-file
--batch`` process streams the blobs. Git runs with an environment of our own (no system or
global config, no pager, no prompts, no network transport), so nothing in the repository
decides what gets executed.

Blob ids come back with the files: identical content has the same id on both sides of a
diff, so callers can cache parsed files by it.

Why one module of 420 lines: every call to ``git`` the product makes (resolving refs,
listing and reading trees in batches), all run with the one environment above.
"""

from __future__ import annotations

import os
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

from analysis.errors import InputError
from bot.inputs.files import (
    DEFAULT_LIMITS,
    MANIFEST_SUFFIXES,
    FileLimits,
    FilesError,
    is_hidden,
    is_manifest_path,
    path_filter,
    within_file_limit,
)
from bot.inputs.tarball import MAX_HIDDEN
from bot.inputs.unread import hidden_objects, lfs_pointers, skipped_but_read_elsewhere

GIT_TIMEOUT_SECONDS = 120

_MODE_SYMLINK = "120000"
_MODE_SUBMODULE = "160000"

# -c options given before every command. fsmonitor is the one setting a plumbing read could
# still run a program for; the others keep an odd repository config from reaching anything
# outside the object store (lazy fetches of a partial clone, hooks).
_SAFE_CONFIG = (
    "-c", "core.fsmonitor=false",
    "-c", "core.hooksPath=" + os.devnull,
    "-c", "protocol.allow=never",
    "-c", "core.pager=cat",
)  # fmt: skip


class GitError(InputError):
    """Git could not give us the tree: not a repository, unknown ref, corrupt objects."""


class GitTreeError(FilesError, GitError):
    """A tree over the limits: a ``FilesError`` naming the file, as from any other reader."""


@dataclass(frozen=True, slots=True)
class CommitFiles:
    """The manifests of one commit: contents and blob id per path relative to the repo root."""

    commit_sha: str
    files: dict[str, bytes] = field(hash=False)
    blob_shas: dict[str, str] = field(hash=False)
    warnings: tuple[str, ...] = ()
    # "path: why" of what lies below the reviewed path but was not read (submodules,
    # symlinks, LFS pointers): a review that does not see them must not pass.
    unread: tuple[str, ...] = ()


def _environment(repo: Path, *, discover: bool = False) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "LC_ALL": "C",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_ATTR_NOSYSTEM": "1",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_PAGER": "cat",
        "PAGER": "cat",
        "GIT_OPTIONAL_LOCKS": "0",
        "GIT_NO_REPLACE_OBJECTS": "1",  # review the objects the commit really names
        "GIT_LITERAL_PATHSPECS": "1",  # a path is a path, never ':(magic)'
        "GIT_PROTOCOL_FROM_USER": "0",
    }
    if not discover:
        # Never walk up into an enclosing repository when repo_dir itself is not one.
        env["GIT_CEILING_DIRECTORIES"] = str(repo.parent)
    return env


def _run(repo: Path, *args: str, discover: bool = False) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            ["git", *_SAFE_CONFIG, *args],
            cwd=repo,
            env=_environment(repo, discover=discover),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=GIT_TIMEOUT_SECONDS,
            check=False,
        )
    except FileNotFoundError:
        raise GitError("git is not installed") from None
    except subprocess.TimeoutExpired:
        raise GitError(f"git {args[0]} took longer than {GIT_TIMEOUT_SECONDS}s") from None


def _stderr(proc: subprocess.CompletedProcess[bytes]) -> str:
    return proc.stderr.decode("utf-8", "replace").strip()


def _repository(repo_dir: str | os.PathLike[str]) -> Path:
    repo = Path(repo_dir).resolve()
    if not repo.is_dir():
        raise GitError(f"{repo_dir} is not a directory")
    proc = _run(repo, "rev-parse", "--git-dir")
    if proc.returncode != 0:
        raise GitError(f"{repo_dir} is not a git repository: {_stderr(proc)}")
    return repo


def find_repository(start: str | os.PathLike[str]) -> Path:
    """The repository containing ``start``: its work tree's top, or the git dir if bare.

    The readers below insist on being handed the repository itself, so that a directory
    that is not one can never be read through some enclosing repository. This is for a
    person at a terminal, who may run ``reachdiff review`` from any subdirectory.
    """
    here = Path(start).resolve()
    if not here.is_dir():
        raise GitError(f"{start} is not a directory")
    proc = _run(here, "rev-parse", "--is-bare-repository", "--absolute-git-dir", discover=True)
    if proc.returncode != 0:
        raise GitError(f"{start} is not in a git repository: {_stderr(proc)}")
    bare, git_dir = proc.stdout.decode("utf-8", "surrogateescape").splitlines()[:2]
    if bare == "true":
        return Path(git_dir)
    proc = _run(here, "rev-parse", "--show-toplevel", discover=True)
    if proc.returncode != 0:
        raise GitError(f"{start} is not in a git work tree: {_stderr(proc)}")
    return Path(proc.stdout.decode("utf-8", "surrogateescape").strip())


def _resolve(repo: Path, ref: str) -> str:
    # A ref starting with '-' would be read as an option by commands that lack
    # --end-of-options; no branch or tag can start with '-'.
    if not ref or ref.startswith("-") or "\0" in ref:
        raise GitError(f"invalid ref {ref!r}")
    proc = _run(repo, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}")
    sha = proc.stdout.decode("ascii", "replace").strip()
    if proc.returncode != 0 or not sha:
        raise GitError(f"{ref!r} does not name a commit in {repo}")
    return sha


def resolve_commit(repo_dir: str | os.PathLike[str], ref: str) -> str:
    """The full commit id a ref (branch, tag, sha, ``HEAD~2``) names."""
    return _resolve(_repository(repo_dir), ref)


def merge_base(repo_dir: str | os.PathLike[str], a: str, b: str) -> str:
    """The best common ancestor of two refs: the base a pull request's diff is taken from."""
    repo = _repository(repo_dir)
    sha_a, sha_b = _resolve(repo, a), _resolve(repo, b)
    proc = _run(repo, "merge-base", sha_a, sha_b)
    if proc.returncode != 0:
        detail = _stderr(proc)
        raise GitError(
            f"{a!r} and {b!r} have no common ancestor" + (f": {detail}" if detail else "")
        )
    return proc.stdout.decode("ascii").strip()


MISSING = -1  # the size ls-tree cannot tell of a blob missing from the object store


@dataclass(frozen=True, slots=True)
class _Entry:
    mode: str
    kind: str
    sha: str
    size: int | None
    path: str


def _list_tree(repo: Path, commit: str, path: str | None) -> list[_Entry]:
    args = ["ls-tree", "-r", "-z", "--long", "--full-tree", commit]
    if path is not None:
        args += ["--", path]
    proc = _run(repo, *args)
    if proc.returncode != 0:
        raise GitError(f"cannot list {commit}: {_stderr(proc)}")
    entries: list[_Entry] = []
    for record in proc.stdout.split(b"\0"):
        if not record:
            continue
        meta, sep, name = record.partition(b"\t")
        fields = meta.split()
        if not sep or len(fields) != 4:
            raise GitError(f"unexpected ls-tree output: {record[:200]!r}")
        mode, kind, sha, size = (f.decode("ascii") for f in fields)
        entries.append(
            _Entry(
                mode=mode,
                kind=kind,
                sha=sha,
                # "-": not a blob; "BAD": a blob this repository does not hold (a partial
                # clone whose promisor cannot be reached, a mirror missing large objects).
                size=None if size == "-" else MISSING if size == "BAD" else int(size),
                path=name.decode("utf-8", "surrogateescape"),
            )
        )
    return entries


def _normalise_path(path: str | None) -> str | None:
    if path is None:
        return None
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts or "\0" in path:
        raise GitError(f"invalid path {path!r}")
    return "/".join(parts) or None


def _under(entry_path: str, path: str | None) -> bool:
    return path is None or entry_path == path or entry_path.startswith(path + "/")


def read_ref(
    repo_dir: str | os.PathLike[str],
    ref: str,
    path: str | None = None,
    *,
    paths: tuple[str, ...] | None = None,
    limits: FileLimits = DEFAULT_LIMITS,
) -> CommitFiles:
    """The manifests of ``ref`` (optionally only below ``path``), keyed by repo-root path.

    ``paths`` are the settings' globs (``clusters/**``), selecting as the tarball reader
    does; files they leave out count against no limit.

    Only files with manifest names outside hidden directories are read, as from a
    directory or a tarball. Symlinks and submodules are not followed; the ones that would
    have mattered are listed in ``unread``, with LFS pointers. A ``path`` that does not
    exist at the ref gives an empty tree with a warning: a pull request may add or delete
    the whole directory.
    """
    path = _normalise_path(path)
    selected = path_filter(paths) if paths is not None else None
    repo = _repository(repo_dir)
    commit = _resolve(repo, ref)
    warnings: list[str] = []
    unread: list[str] = []
    wanted: list[_Entry] = []
    count = total = 0
    listed = _list_tree(repo, commit, path)
    blob_paths: list[str] = []  # every file: what the readers skip may still matter
    hidden: list[_Entry] = []  # hidden manifest-named files, looked into for objects
    for entry in listed:
        # ls-tree pathspecs match whole components already; this guards against a pathspec
        # behaviour change ever widening what we read.
        if not _under(entry.path, path):
            continue
        if entry.mode == _MODE_SUBMODULE:
            if not is_manifest_path(entry.path + "/x.yaml"):
                continue  # a hidden submodule: nothing we would read anyway
            unread.append(
                f"{entry.path}: a git submodule (commit {entry.sha[:7]}): its content is "
                "not in the repository"
            )
            continue
        if (
            entry.kind == "blob"
            and entry.mode != _MODE_SYMLINK
            and (selected is None or selected(entry.path))
        ):
            blob_paths.append(entry.path)
            if (
                is_hidden(entry.path)
                and entry.path.endswith(MANIFEST_SUFFIXES)
                and len(hidden) < MAX_HIDDEN
            ):
                hidden.append(entry)
        if not is_manifest_path(entry.path):
            continue
        if entry.mode == _MODE_SYMLINK:
            unread.append(f"{entry.path}: a symlink (not followed)")
            continue
        if entry.kind != "blob" or entry.size is None:
            warnings.append(f"{entry.path}: {entry.kind} entry skipped")
            continue
        if selected is not None and not selected(entry.path):
            continue
        if entry.size == MISSING:
            raise GitTreeError(
                entry.path,
                f"blob {entry.sha[:12]} is missing from the repository's objects (a partial "
                "or damaged clone): fetch it (git fetch, or clone without --filter) and run "
                "again",
            )
        if entry.size > limits.max_read_bytes:
            raise GitTreeError(
                entry.path, f"file is {entry.size} bytes, over the limit of {limits.max_file_bytes}"
            )
        count += 1
        total += entry.size
        if count > limits.max_files:
            raise GitTreeError(entry.path, f"more than {limits.max_files} files in the tree")
        if total > limits.max_total_bytes:
            raise GitTreeError(
                entry.path, f"tree holds more than {limits.max_total_bytes} bytes of manifests"
            )
        wanted.append(entry)
    if path is not None and not listed:
        warnings.append(f"{path}: does not exist at {ref}")
    blobs = _cat_blobs(repo, sorted({e.sha: e.size or 0 for e in wanted}.items()))
    try:
        files = {e.path: within_file_limit(e.path, blobs[e.sha], limits) for e in wanted}
    except FilesError as err:
        raise GitTreeError(err.path, err.message) from None
    shas = {e.path: e.sha for e in wanted}
    unread += [str(u) for u in lfs_pointers(files)]
    unread += [str(u) for u in skipped_but_read_elsewhere(blob_paths, files)]
    small = [e for e in hidden if e.size is not None and 0 <= e.size <= limits.max_file_bytes]
    contents = _cat_blobs(repo, sorted({e.sha: e.size or 0 for e in small}.items()))
    found = {e.path: contents.get(e.sha) if e in small else None for e in hidden}
    unread += [str(u) for u in hidden_objects(found)]
    return CommitFiles(
        commit_sha=commit,
        files=files,
        blob_shas=shas,
        warnings=tuple(warnings),
        unread=tuple(unread),
    )


def _cat_blobs(repo: Path, wanted: list[tuple[str, int]]) -> dict[str, bytes]:
    """Blob contents by id from one ``cat-file --batch`` process, one request at a time.

    Asking for one blob and reading its answer before the next keeps both pipes from
    filling up; the size announced by ls-tree is checked against the object header so a
    replaced object can never make us read more than the limits allowed.
    """
    if not wanted:
        return {}
    try:
        proc = subprocess.Popen(
            ["git", *_SAFE_CONFIG, "cat-file", "--batch"],
            cwd=repo,
            env=_environment(repo),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # errors come on stdout ("<sha> missing")
        )
    except FileNotFoundError:
        raise GitError("git is not installed") from None
    assert proc.stdin is not None and proc.stdout is not None
    # Reads on the pipe have no timeout of their own: a stalled git is killed, which ends
    # the read with a short answer.
    watchdog = threading.Timer(GIT_TIMEOUT_SECONDS, proc.kill)
    watchdog.start()
    blobs: dict[str, bytes] = {}
    try:
        for sha, size in wanted:
            proc.stdin.write(sha.encode("ascii") + b"\n")
            proc.stdin.flush()
            header = proc.stdout.readline(256).decode("ascii", "replace").split()
            if len(header) != 3 or header[0] != sha or header[1] != "blob":
                raise GitError(f"cannot read blob {sha}: {' '.join(header) or 'no answer'}")
            if int(header[2]) != size:
                raise GitError(f"blob {sha} is {header[2]} bytes, listed as {size}")
            data = proc.stdout.read(size)
            if len(data) != size or proc.stdout.read(1) != b"\n":
                raise GitError(f"truncated blob {sha}")
            blobs[sha] = data
        proc.stdin.close()
        proc.wait(timeout=GIT_TIMEOUT_SECONDS)
    except (BrokenPipeError, subprocess.TimeoutExpired) as err:
        raise GitError(f"git cat-file failed: {err}") from None
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        if not proc.stdin.closed:
            proc.stdin.close()
    return blobs


def default_branch(repo_dir: str | os.PathLike[str]) -> str:
    """The branch pull requests go to: what ``origin/HEAD`` points at (as a clone sets it
    from the server), else a ``main`` or ``master`` branch, local first."""
    repo = _repository(repo_dir)
    proc = _run(repo, "symbolic-ref", "--quiet", "refs/remotes/origin/HEAD")
    target = proc.stdout.decode("utf-8", "surrogateescape").strip()
    if proc.returncode == 0 and target.startswith("refs/remotes/"):
        name = target.removeprefix("refs/remotes/")
        if _exists(repo, name):
            return name
    for name in ("main", "master", "origin/main", "origin/master"):
        if _exists(repo, name):
            return name
    raise GitError(
        "cannot find the default branch (no origin/HEAD, main or master): name it with --base"
    )


def _exists(repo: Path, ref: str) -> bool:
    proc = _run(repo, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}")
    return proc.returncode == 0


def read_file_at(repo_dir: str | os.PathLike[str], ref: str, path: str) -> bytes | None:
    """One file's bytes at ``ref`` (None when the file does not exist there)."""
    repo = _repository(repo_dir)
    commit = _resolve(repo, ref)
    proc = _run(repo, "cat-file", "blob", f"{commit}:{path}")
    return proc.stdout if proc.returncode == 0 else None
