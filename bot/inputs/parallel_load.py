"""Read a large tree on two cores: a forked child reads part of the files while this
process reads the rest.

Reading (parsing and modelling) is most of a CLI diff of a big repository, and it is one
independent job per file. The child inherits the file contents by ``fork`` (nothing is
copied to it) and sends back only the models, which cost about a tenth of reading them to
unpickle. Anything unusual (a bad file, no ``fork``, one core, a small tree) reads the
tree in this process, so errors are exactly those of ``load_state``.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from analysis.ciliumagent import CiliumAgent
from analysis.customkinds import WorkloadKinds
from analysis.errors import ManifestError
from analysis.manifests import MANIFEST_SUFFIXES
from analysis.parsecache import ParseCache
from analysis.treestate import FileEntry, TreeState, load_state, read_file

PARALLEL_FROM = 2_000  # manifest files; below this a child costs more than it saves
CHILD_SHARE = 0.45  # the child also pickles what it read: give it a little less

_files: Mapping[str, bytes] = {}  # what the forked child reads from
_kinds: WorkloadKinds = ()  # and with which custom workload kinds


def load_state_parallel(
    files: Mapping[str, bytes],
    workload_kinds: WorkloadKinds = (),
    cilium_agent: CiliumAgent | None = None,
) -> TreeState:
    """``load_state(files)``, reading about half of the files in a forked child."""
    paths = [p for p in sorted(files) if p.endswith(MANIFEST_SUFFIXES)]
    if (
        len(paths) < PARALLEL_FROM
        or (os.cpu_count() or 1) < 2
        or "fork" not in multiprocessing.get_all_start_methods()
    ):
        return load_state(files, workload_kinds=workload_kinds, cilium_agent=cilium_agent)
    global _files, _kinds
    _files, _kinds = files, workload_kinds
    cut = int(len(paths) * CHILD_SHARE)
    cache = ParseCache()  # the state's: what this process reads (the child's stays there)
    try:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
            theirs = pool.submit(_read, paths[:cut])
            ours = _read(paths[cut:], cache)
            read = theirs.result()
    except (OSError, BrokenProcessPool):  # no child to be had, or it died: read it here
        read, ours = {}, {}
    finally:
        _files, _kinds = {}, ()
    if read is None or ours is None:
        # A file is bad: the full reader names the first error.
        return load_state(
            files, workload_kinds=workload_kinds, cache=cache, cilium_agent=cilium_agent
        )
    return load_state(
        files,
        {**read, **ours},
        workload_kinds=workload_kinds,
        cache=cache,
        cilium_agent=cilium_agent,
    )


def _read(paths: Sequence[str], cache: ParseCache | None = None) -> dict[str, FileEntry] | None:
    try:
        return {p: read_file(p, _files[p], _kinds, cache) for p in paths}
    except ManifestError:
        return None
