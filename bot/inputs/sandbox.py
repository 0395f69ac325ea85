"""Running kustomize and helm over pull-request files without trusting them.

Everything a renderer reads comes from a pull request, so each run gets:

- a fresh temporary directory holding a copy of only the files we were given (the renderer
  never sees the checkout, the bot's own files or anything else on disk), with ``HOME`` and
  every cache and config directory pointing inside it;
- no network: a new network namespace when the kernel lets us create one, and in any case
  proxy variables pointing at a closed loopback port and git forbidden every protocol, so
  neither Go's HTTP client nor a ``git`` that a renderer may spawn can fetch anything;
- a wall-clock timeout after which the whole process group is killed (renderers such as the
  ``kubectl`` dispatcher run their real binary as a child that a plain kill would orphan);
- an address-space bound (``RLIMIT_AS``) and a bound on the size of every file it writes
  (``RLIMIT_FSIZE``), which also bounds its output since stdout goes to a file;
- its stderr turned into one readable sentence with the temporary paths replaced by the
  repository paths they stand for.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import posixpath
import re
import resource
import select
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from analysis.errors import ManifestError

MiB = 1024 * 1024

# unshare(2) flags: a user namespace lets an unprivileged process own a network namespace.
_CLONE_NEWUSER = 0x10000000
_CLONE_NEWNET = 0x40000000

# Port 9 (discard) on loopback: nothing listens there, so a proxied request fails at once.
DEAD_PROXY = "http://127.0.0.1:9"


@dataclass(frozen=True, slots=True)
class Limits:
    timeout: float = 60.0  # seconds of wall-clock time per renderer run
    memory_bytes: int = 2048 * MiB  # address space; Go reserves generously, so not too tight
    output_bytes: int = 64 * MiB  # largest file (stdout included) a renderer may write
    max_message_chars: int = 1500  # of a renderer's error message shown to the user


@dataclass(frozen=True, slots=True)
class Tools:
    """The renderers found on this machine.

    ``kustomize`` is the command prefix that builds a directory given as the next argument
    (``("kustomize", "build")`` or ``("kubectl", "kustomize")``); ``None`` when neither is
    installed. ``isolate_network`` tells whether children can be put in a network namespace
    of their own here.
    """

    kustomize: tuple[str, ...] | None = None
    helm: str | None = None
    isolate_network: bool = False

    @classmethod
    def detect(cls, search_path: str | None = None) -> Tools:
        kustomize_bin = shutil.which("kustomize", path=search_path)
        kubectl_bin = shutil.which("kubectl", path=search_path)
        if kustomize_bin:
            kustomize: tuple[str, ...] | None = (kustomize_bin, "build")
        elif kubectl_bin:
            kustomize = (kubectl_bin, "kustomize")
        else:
            kustomize = None
        return cls(
            kustomize=kustomize,
            helm=shutil.which("helm", path=search_path),
            isolate_network=network_isolation_available(),
        )


class ToolError(Exception):
    """A renderer failed; ``message`` is readable and names repository paths only."""

    def __init__(self, message: str, *, timed_out: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.timed_out = timed_out


@dataclass(slots=True)
class Workspace:
    """A temporary directory: ``tree/`` holds the copied files, ``home/`` is ``$HOME``."""

    root: Path
    tree: Path = field(init=False)
    home: Path = field(init=False)

    def __post_init__(self) -> None:
        self.tree = self.root / "tree"
        self.home = self.root / "home"
        self.tree.mkdir()
        self.home.mkdir()

    def write(self, path: str, content: bytes) -> Path:
        """Copy one repository file in; ``path`` must stay inside the tree."""
        target = self.tree / checked_relative(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL|O_NOFOLLOW: never write through a link, never overwrite a directory.
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(content)
        return target

    def repo_path(self, real: str) -> str:
        """A path the renderer printed, as the repository path it stands for."""
        rel = os.path.relpath(real, self.tree)
        return "." if rel == "." else rel.replace(os.sep, "/")

    def scrub(self, text: str) -> str:
        """Temporary directory names in ``text`` replaced by repository paths."""
        tree = str(self.tree)
        text = re.sub(re.escape(tree) + r"/?", "", text)
        return text.replace(str(self.home), "$HOME").replace(str(self.root), "<tmp>")


@contextlib.contextmanager
def workspace(files: Mapping[str, bytes], paths: Iterable[str]) -> Iterator[Workspace]:
    """A workspace holding ``paths`` (a subset of ``files``), removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="reachdiff-render-") as tmp:
        ws = Workspace(Path(tmp))
        for path in sorted(set(paths)):
            try:
                ws.write(path, files[path])
            except ValueError as exc:
                raise ManifestError(path, 1, f"cannot be rendered: {exc}") from None
            except OSError as exc:
                # e.g. both "a" and "a/b" in one tree: not a tree any renderer could read.
                raise ManifestError(
                    path, 1, f"cannot be copied for rendering: {exc.strerror}"
                ) from None
        yield ws


def checked_relative(path: str) -> str:
    """``path`` if it is a plain relative POSIX path inside the tree; ``ValueError`` if not."""
    if not path or "\x00" in path or path.startswith("/") or "\\" in path:
        raise ValueError(f"{path!r} is not a relative path")
    parts = path.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"{path!r} is not a normalised path inside the tree")
    return path


def normalise(base_dir: str, reference: str) -> str | None:
    """``reference`` (relative to ``base_dir``) as a repository path; ``None`` if outside."""
    if reference.startswith("/"):
        return None
    joined = posixpath.normpath(posixpath.join(base_dir or ".", reference))
    if joined == ".." or joined.startswith("../"):
        return None
    return "" if joined == "." else joined


def tool_environment(ws: Workspace, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a renderer: nothing inherited but ``PATH``."""
    home = str(ws.home)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": home,
        "TMPDIR": home,
        "XDG_CONFIG_HOME": f"{home}/.config",
        "XDG_CACHE_HOME": f"{home}/.cache",
        "XDG_DATA_HOME": f"{home}/.local/share",
        "KUBECONFIG": f"{home}/no-kubeconfig",
        "LANG": "C",
        "LC_ALL": "C",
        # git, should a renderer start it for a remote base: no protocol is allowed, no
        # system or user configuration is read, and it never prompts.
        "GIT_ALLOW_PROTOCOL": "reachdiff-none",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_TERMINAL_PROMPT": "0",
        "NO_PROXY": "",
        "no_proxy": "",
    }
    for name in (
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ):
        env[name] = DEAD_PROXY
    if extra:
        env.update(extra)
    return env


# Resolved here, once: renderers are started from several threads at a time, and the
# child between fork and exec must not load libraries (the dynamic loader's lock may be
# held by another thread at the fork) but only call what is already resolved.
_UNSHARE = ctypes.CDLL(None, use_errno=True).unshare


def _unshare_network() -> bool:
    if int(_UNSHARE(_CLONE_NEWUSER | _CLONE_NEWNET)) == 0:
        return True
    # Without user namespaces, root (CAP_SYS_ADMIN) may still create a network namespace.
    return int(_UNSHARE(_CLONE_NEWNET)) == 0


@cache
def network_isolation_available() -> bool:
    """Whether a child can be given a network namespace of its own on this machine."""
    try:
        result = subprocess.run(
            ["/bin/sh", "-c", "exit 0"],
            preexec_fn=_isolating_preexec(Limits(), isolate=True, required=True),
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return result.returncode == 0


def _isolating_preexec(
    limits: Limits, *, isolate: bool, required: bool = False
) -> Callable[[], None]:
    def preexec() -> None:
        # Runs in the child between fork and exec: only system calls, no Python threads.
        if isolate and not _unshare_network() and required:
            os._exit(111)
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.output_bytes, limits.output_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return preexec


@dataclass(frozen=True, slots=True)
class Completed:
    stdout: str
    stderr: str  # scrubbed of temporary paths


def run_tool(
    argv: list[str],
    ws: Workspace,
    *,
    what: str,
    limits: Limits,
    isolate_network: bool,
    cwd: Path | None = None,
    extra_env: Mapping[str, str] | None = None,
) -> Completed:
    """Run a renderer in ``ws``; ``ToolError`` with a readable message if it fails.

    ``what`` names the run in messages ("kustomize build of overlays/prod").
    """
    out_path = ws.root / "stdout"
    err_path = ws.root / "stderr"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        try:
            proc = subprocess.Popen(
                argv,
                cwd=cwd or ws.tree,
                env=tool_environment(ws, extra_env),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
                preexec_fn=_isolating_preexec(limits, isolate=isolate_network),
                close_fds=True,
            )
        except OSError as exc:
            raise ToolError(f"{what}: could not start {argv[0]}: {exc.strerror}") from None
        try:
            returncode = _wait(proc, limits.timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            raise ToolError(
                f"{what} took longer than {limits.timeout:g} s and was stopped", timed_out=True
            ) from None
        finally:
            # The renderer's children (if any) go with it, whatever happened.
            _kill_group(proc)
    stderr = ws.scrub(_read_text(err_path, limits.output_bytes))
    if out_path.stat().st_size >= limits.output_bytes:
        raise ToolError(f"{what} produced more than {limits.output_bytes // MiB} MiB of output")
    if returncode != 0:
        if returncode < 0 and -returncode in (signal.SIGKILL, signal.SIGSEGV, signal.SIGABRT):
            reason = f"was killed by signal {-returncode} (out of memory?)"
        elif returncode == 111 and not stderr:
            reason = "could not be isolated from the network"
        else:
            reason = "failed"
        message = readable_error(stderr, limits.max_message_chars)
        raise ToolError(f"{what} {reason}" + (f": {message}" if message else ""))
    return Completed(_read_text(out_path, limits.output_bytes), stderr)


def _wait(proc: subprocess.Popen[bytes], timeout: float) -> int:
    """``proc.wait(timeout)``, woken by the exit itself: ``Popen.wait`` with a timeout
    polls with sleeps of up to 50 ms, a tenth of a short render; a pidfd (Linux 5.3+)
    becomes readable the moment the process exits."""
    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # not Linux, an old kernel, or already reaped
        return proc.wait(timeout=timeout)
    try:
        # poll, not select: select cannot watch descriptors numbered 1024 and above.
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        ready = poller.poll(max(0, int(timeout * 1000)))
    finally:
        os.close(fd)
    if not ready:
        raise subprocess.TimeoutExpired(proc.args, timeout)
    return proc.wait()


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


def _read_text(path: Path, limit: int) -> str:
    with open(path, "rb") as fh:
        data = fh.read(limit)
    return data.decode("utf-8", errors="replace")


# klog's prefix, as kubectl prints errors:
#   E1121 23:34:03.873124   15663 run.go:72] "command failed" err="..."
_KLOG = re.compile(r'^[EWIF]\d{4} [\d:.]+\s+\d+ [\w.]+:\d+\] "command failed" err="(.*)"$')


def readable_error(stderr: str, max_chars: int) -> str:
    """The useful part of a renderer's stderr, on one line."""
    lines: list[str] = []
    for raw in stderr.splitlines():
        line = raw.strip()
        if not line:
            continue
        m = _KLOG.match(line)
        if m:
            line = m.group(1).replace('\\"', '"')
        line = re.sub(r"^(Error|error): ", "", line)
        lines.append(line)
    text = "; ".join(lines)
    if len(text) > max_chars:
        text = text[: max_chars - 1] + "…"
    return text
