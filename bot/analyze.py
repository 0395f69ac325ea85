"""The engine run of one review, as a top-level function the process pool can pickle.

``analyze`` never raises for bad input or an overrun: it returns either the diff or an
``AnalysisFailure`` saying what went wrong and where, so the caller can fail the check with
the file and line. It runs in a worker process with an alarm as its deadline, because a
process pool cannot interrupt a running call from outside.
"""

from __future__ import annotations

import os
import signal
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

from analysis.diff import PathChange
from analysis.errors import ManifestError
from analysis.reachability import Endpoint
from bot.environment_diff import diff_environments, load_environments


@dataclass(frozen=True, slots=True)
class DiffResult:
    """What the bot renders from a ``ReachabilityDiff``, without its two reachability maps.

    The maps (every class, connection and compiled rule of both trees) are most of a diff's
    size, and the result crosses a process boundary and sits in a cache.
    """

    opened: tuple[PathChange, ...]
    closed: tuple[PathChange, ...]
    added_endpoints: tuple[Endpoint, ...]
    removed_endpoints: tuple[Endpoint, ...]

    @property
    def widening(self) -> bool:
        return bool(self.opened)


@dataclass(frozen=True, slots=True)
class AnalysisFailure:
    kind: str  # "manifest" (the tree is invalid), "unanalysed", "timeout", "memory", "internal"
    message: str
    tree: str = ""  # "base" or "head" for a manifest error
    file: str = ""
    line: int = 0


class _Deadline(BaseException):  # not Exception: no `except Exception` may swallow it
    pass


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    raise _Deadline


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    if seconds <= 0:
        yield
        return
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def analyze(
    base_files: Mapping[str, bytes],
    head_files: Mapping[str, bytes],
    deadline: float = 0.0,
    kustomize_roots: tuple[str, ...] | None = None,
    helm_values: tuple[tuple[str, tuple[str, ...]], ...] = (),
) -> DiffResult | AnalysisFailure:
    tree_name = "base"
    try:
        with _deadline(deadline):
            # Both sides are rendered with the base branch's settings (the rules of review).
            values = dict(helm_values)
            base = load_environments(
                base_files, kustomize_roots=kustomize_roots, helm_values=values
            )
            tree_name = "head"
            head = load_environments(
                head_files, kustomize_roots=kustomize_roots, helm_values=values
            )
            tree_name = ""
            diff = diff_environments(base, head)
            if diff.unanalysed:
                # Never pass a change that was only partly reviewed (e.g. helm is missing).
                return AnalysisFailure("unanalysed", "\n".join(diff.unanalysed))
            return DiffResult(
                diff.opened, diff.closed, diff.added_endpoints, diff.removed_endpoints
            )
    except ManifestError as err:
        return AnalysisFailure("manifest", err.message, tree_name, err.file, err.line)
    except _Deadline:
        return AnalysisFailure("timeout", f"the analysis took longer than {deadline:g} s")
    except (MemoryError, RecursionError):
        return AnalysisFailure("memory", "the analysis ran out of memory")
    except Exception as err:
        # Anything else is a bug in reachdiff, not in the pull request: keep the trace short.
        where = traceback.extract_tb(err.__traceback__)[-1]
        place = f"{os.path.basename(where.filename)}:{where.lineno}"
        return AnalysisFailure("internal", f"{type(err).__name__}: {err} ({place})")
