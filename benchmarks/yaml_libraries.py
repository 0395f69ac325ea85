"""Which YAML library should read manifests: CPU time and fidelity on one generated tree.

Every candidate parses the same files (read into memory first, so disk time is not
measured); the CPU time (``time.process_time``) of the best of ``--repeat`` passes is
reported, with the cycle collector off during a pass as in reachdiff's own analysis.
Each candidate's documents are then compared with PyYAML's ``CSafeLoader`` (what the
exact path builds on), empty documents dropped on both sides and ``1`` told from ``1.0``
and ``True``. Libraries reachdiff does not depend on are installed into their own
virtualenv, ``benchmarks/out/yaml-venv``, and measured there by this same file run as a
worker (``--worker``, JSON in and out), so the project's environment is never touched.

    python -m benchmarks.yaml_libraries [--tree DIR] [--repeat N] [--no-venv]

The slow pure-Python parsers run on every tenth file only; their time for the whole tree
is extrapolated from their ratio to ``CSafeLoader`` on that same sample.

This file must stay importable by a bare interpreter (the worker's venv has neither
reachdiff nor PyYAML): project imports live inside the functions that need them.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import hashlib
import importlib.util
import json
import math
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "benchmarks" / "out"
DEFAULT_WORKLOADS = 10_000
DEFAULT_TREE = DEFAULT_OUT / f"w{DEFAULT_WORKLOADS}-s0" / "base"
VENV = DEFAULT_OUT / "yaml-venv"
# distribution -> module that proves it is installed
VENV_PACKAGES = {
    "rapidyaml": "ryml",
    "ruamel.yaml": "ruamel.yaml",
    "ruamel.yaml.clib": "_ruamel_yaml",  # the C parser typ="safe" uses when present
    "pyfastyaml": "pyfastyaml",
}
SAMPLE_EVERY = 10
YAML_SUFFIXES = (".yaml", ".yml", ".json")
# Kubernetes' reader (sigs.k8s.io/yaml on go-yaml v2) follows YAML 1.1: yes -> true,
# 017 -> 15. YAML 1.2's core schema reads them as "yes" and 17. go-yaml v2 also reads a
# lone y or n as a bool, which PyYAML's 1.1 resolver does not.
VERSION_PROBE = "a: yes\nb: 017\nc: y\n"

Parse = Callable[[str], Any]
Documents = Callable[[Any], "list[Any] | None"]  # a parse result -> its documents


# --------------------------------------------------------------------------- fidelity


def canonical(value: Any) -> Any:
    """A JSON form of parsed YAML in which every difference a consumer could see survives:
    ``1``, ``1.0`` and ``True`` stay apart, mapping order does not count."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return {"!float": repr(value)}  # also keeps nan and inf representable
    if isinstance(value, dict):
        pairs = [[canonical(k), canonical(v)] for k, v in value.items()]
        pairs.sort(key=lambda kv: json.dumps(kv[0], sort_keys=True))
        return {"!map": pairs}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    return {"!" + type(value).__name__: str(value)}  # dates, bytes, sets


def digest(documents: list[Any]) -> str:
    text = json.dumps(canonical(documents), sort_keys=True, ensure_ascii=False)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def present(documents: list[Any]) -> list[Any]:
    """Empty documents dropped, as reachdiff drops them (and yaml-rs keeps some)."""
    return [d for d in documents if d is not None]


def first_difference(ours: Any, theirs: Any, path: str = "$") -> str | None:
    """Where two canonical forms first differ, as ``path: CSafeLoader X, candidate Y``."""
    if isinstance(ours, dict) and isinstance(theirs, dict) and "!map" in ours and "!map" in theirs:
        left = {json.dumps(k): v for k, v in ours["!map"]}
        right = {json.dumps(k): v for k, v in theirs["!map"]}
        for key in [*left, *[k for k in right if k not in left]]:
            where = f"{path}[{key}]"
            if key not in right:
                return f"{where}: only in CSafeLoader's document"
            if key not in left:
                return f"{where}: only in the candidate's document"
            found = first_difference(left[key], right[key], where)
            if found:
                return found
        return None
    if isinstance(ours, list) and isinstance(theirs, list):
        if len(ours) != len(theirs):
            return f"{path}: CSafeLoader has {len(ours)} items, the candidate {len(theirs)}"
        for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            found = first_difference(a, b, f"{path}[{i}]")
            if found:
                return found
        return None
    if ours != theirs:
        return f"{path}: CSafeLoader {_short(ours)}, candidate {_short(theirs)}"
    return None


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 100 else text[:97] + "..."


def yaml_version(documents: list[Any] | None) -> str:
    """Which YAML version the probe's result shows."""
    if not documents or not isinstance(documents[0], dict):
        return f"? ({documents!r})"
    doc = documents[0]
    a, b, c = doc.get("a"), doc.get("b"), doc.get("c")
    shown = f"yes→{a!r}, 017→{b!r}, y→{c!r}"
    if a is True and b == 15:
        return f"1.1 ({shown})"
    if a == "yes" and b == 17 and not isinstance(b, bool):
        return f"1.2 ({shown})"
    return f"neither ({shown})"


# --------------------------------------------------------------------------- measuring


@dataclass
class Candidate:
    name: str
    parse: Parse
    documents: Documents  # None: the candidate declined the file (reachdiff's fast path)
    lines: str
    sample: bool = False  # too slow for the whole tree: every SAMPLE_EVERY-th file
    note: str = ""
    # More than one reading of a result may be right (yaml-rs returns one document as
    # itself and several as a list); the file matches if any reading does.
    readings: Callable[[Any], list[list[Any]]] | None = None


@dataclass
class Result:
    name: str
    seconds: float  # best pass, on the files measured
    files: int
    bytes: int
    refused: int  # files the candidate raised on
    declined: int  # files it returned None for (left to another parser)
    differ: int  # files whose documents differ from CSafeLoader's
    compared: int
    lines: str
    version: str
    sample: bool
    note: str = ""
    example: str = ""
    extrapolated: float | None = None  # seconds for the whole tree, for sampled candidates
    extra: dict[str, Any] = field(default_factory=dict)


def best_time(parse: Parse, texts: Sequence[str], repeat: int) -> tuple[float, int]:
    """CPU seconds of the fastest pass over ``texts``, and how many files raised."""
    best, refused = math.inf, 0
    for _ in range(repeat):
        gc.collect()
        gc.disable()  # as in an analysis: the engine turns the cycle collector off too
        refused = 0
        start = time.process_time()
        try:
            for text in texts:
                try:
                    parse(text)
                except Exception:
                    refused += 1
            elapsed = time.process_time() - start
        finally:
            gc.enable()
        best = min(best, elapsed)
    return best, refused


def measure(
    candidate: Candidate,
    names: Sequence[str],
    texts: Sequence[str],
    reference: Sequence[str],
    repeat: int,
) -> Result:
    """Time ``candidate`` and compare its documents with the reference digests."""
    picked = range(0, len(texts), SAMPLE_EVERY) if candidate.sample else range(len(texts))
    chosen = [texts[i] for i in picked]
    seconds, refused = best_time(candidate.parse, chosen, repeat)
    declined = differ = compared = 0
    example: tuple[int, list[Any]] | None = None
    for i in picked:
        try:
            docs = candidate.documents(candidate.parse(texts[i]))
        except Exception as exc:
            if reference[i].startswith("refused"):  # both refuse it: they agree
                compared += 1
                continue
            docs = [{"!refused": type(exc).__name__}]
        if docs is None:
            declined += 1
            continue
        compared += 1
        readings = candidate.readings(docs) if candidate.readings else [docs]
        if any(digest(present(r)) == reference[i] for r in readings):
            continue
        differ += 1
        if example is None:
            example = (i, present(readings[0]))
    try:
        probe = candidate.documents(candidate.parse(VERSION_PROBE))
        if candidate.readings and probe is not None:
            probe = candidate.readings(probe)[0]
    except Exception as exc:
        probe = [f"refused: {exc}"]
    result = Result(
        name=candidate.name,
        seconds=seconds,
        files=len(chosen),
        bytes=sum(len(t.encode()) for t in chosen),
        refused=refused,
        declined=declined,
        differ=differ,
        compared=compared,
        lines=candidate.lines,
        version=yaml_version(probe),
        sample=candidate.sample,
        note=candidate.note,
    )
    if example is not None:
        at, docs = example
        try:
            result.example = f"{names[at]}: {explain(texts[at], canonical(docs))}"
        except ImportError:  # a worker's venv without PyYAML: the caller explains it
            result.extra = {"file": names[at], "canonical": canonical(docs)}
    return result


def explain(text: str, theirs: Any) -> str:
    """The first difference between CSafeLoader's documents and a candidate's canonical
    ones (raises ImportError where PyYAML is missing)."""
    try:
        ours = present(_reference_documents(text))
    except ImportError:
        raise
    except Exception as exc:
        return f"CSafeLoader refused it ({type(exc).__name__}); the candidate did not"
    return first_difference(canonical(ours), theirs) or "(equal?)"


def _reference_documents(text: str) -> list[Any]:
    import yaml

    return list(yaml.load_all(text, Loader=yaml.CSafeLoader))


# --------------------------------------------------------------------------- candidates


def yaml_rs_readings(parsed: Any) -> list[list[Any]]:
    """yaml-rs returns a lone document as itself and several as a list of them."""
    return [[parsed], parsed] if isinstance(parsed, list) else [[parsed]]


def local_candidates() -> list[Candidate]:
    """The parsers in reachdiff's own environment."""
    import yaml
    import yaml_rs

    from analysis import yamldoc

    def csafe(text: str) -> list[Any]:
        return list(yaml.load_all(text, Loader=yaml.CSafeLoader))

    def pure(text: str) -> list[Any]:
        return list(yaml.load_all(text, Loader=yaml.SafeLoader))

    def fast_or_exact(text: str) -> list[yamldoc.Document]:
        return yamldoc.parse_documents_fast(text) or yamldoc.parse_documents(text)

    def rs(text: str) -> Any:
        return yaml_rs.loads(text, parse_datetime=False)

    def datas(docs: list[yamldoc.Document] | None) -> list[Any] | None:
        return None if docs is None else [d.data for d in docs]

    marks = "yes (node start marks: line and column)"
    return [
        Candidate("PyYAML CSafeLoader (libyaml)", csafe, lambda r: r, marks),
        Candidate("PyYAML SafeLoader (pure Python)", pure, lambda r: r, marks, sample=True),
        Candidate(
            "reachdiff exact: parse_documents (CSafeLoader + LineDict)",
            yamldoc.parse_documents,
            datas,
            "yes (every mapping and sequence)",
        ),
        Candidate(
            "reachdiff fast: parse_documents_fast (yaml-rs, screened)",
            yamldoc.parse_documents_fast,
            datas,
            "first line of each document only",
            note="None (declined) sends a file to the exact path",
        ),
        Candidate(
            "reachdiff fast, exact where declined",
            fast_or_exact,
            datas,
            "first lines; exact where declined",
            note="what the engine's reader pays before its YAML 1.1 value screen",
        ),
        Candidate(
            "yaml-rs loads(parse_datetime=False)",
            rs,
            lambda r: r,
            "no",
            readings=yaml_rs_readings,
        ),
    ]


# rapidyaml gives a tree of strings; building Python objects is left to the caller, who
# must resolve plain scalars itself. This follows YAML 1.2's core schema.
_NULL = re.compile(r"~|null|Null|NULL|")
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False}
_BOOL["FALSE"] = False
_INT = re.compile(r"[-+]?[0-9]+")
_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_SPECIAL_FLOAT = {".inf": math.inf, ".Inf": math.inf, ".INF": math.inf}
_SPECIAL_FLOAT.update({"+.inf": math.inf, "+.Inf": math.inf, "+.INF": math.inf})
_SPECIAL_FLOAT.update({"-.inf": -math.inf, "-.Inf": -math.inf, "-.INF": -math.inf})
_SPECIAL_FLOAT.update({".nan": math.nan, ".NaN": math.nan, ".NAN": math.nan})


def resolve_core(text: str) -> Any:
    if _NULL.fullmatch(text):
        return None
    if text in _BOOL:
        return _BOOL[text]
    if _INT.fullmatch(text):
        return int(text)
    if text.startswith("0o") and text[2:] and all(c in "01234567" for c in text[2:]):
        return int(text[2:], 8)
    if text.startswith("0x") and text[2:]:
        try:
            return int(text[2:], 16)
        except ValueError:
            return text
    if _FLOAT.fullmatch(text):
        return float(text)
    return _SPECIAL_FLOAT.get(text, text)


def ryml_candidates() -> list[Candidate]:
    import ryml  # type: ignore[import-not-found]

    def scalar(raw: Any, plain: bool) -> Any:
        if raw is None:
            return None
        text = bytes(raw).decode()
        return resolve_core(text) if plain else text

    def build(tree: Any, node: int) -> Any:
        if tree.is_map(node):
            out = {}
            child = tree.first_child(node)
            while child != ryml.NONE:
                key = scalar(tree.key(child), tree.is_key_plain(child))
                out[key] = build(tree, child)
                child = tree.next_sibling(child)
            return out
        if tree.is_seq(node):
            items = []
            child = tree.first_child(node)
            while child != ryml.NONE:
                items.append(build(tree, child))
                child = tree.next_sibling(child)
            return items
        if not tree.has_val(node) or tree.val_is_null(node):
            return None
        return scalar(tree.val(node), tree.is_val_plain(node))

    def parse_tree(text: str) -> Any:
        tree = ryml.parse_in_arena(text.encode())
        if "*" in text or "<<" in text:
            tree.resolve()  # aliases and merge keys
        return tree

    def documents(tree: Any) -> list[Any]:
        root = tree.root_id()
        nodes = list(ryml.children(tree, root)) if tree.is_stream(root) else [root]
        return [build(tree, n) for n in nodes]

    exposes = [n for n in ("location", "lookup_location") if hasattr(ryml.Tree, n)]
    lines = (
        f"Python binding: {', '.join(exposes)}"
        if exposes
        else "no: the C++ library can (ParserOptions.locations), the Python binding "
        "exposes locations only in parse errors"
    )
    return [
        Candidate(
            "rapidyaml: parse only (C++ tree, no Python objects)",
            parse_tree,
            documents,
            lines,
            note="lower bound: nothing usable yet",
        ),
        Candidate(
            "rapidyaml + Python tree walk (YAML 1.2 core scalars)",
            lambda text: documents(parse_tree(text)),
            lambda r: r,
            lines,
            note="the walk and scalar resolution are this benchmark's, as any user's would be",
        ),
    ]


def ruamel_candidates() -> list[Candidate]:
    from ruamel.yaml import YAML  # type: ignore[import-not-found]

    safe = YAML(typ="safe")
    safe11 = YAML(typ="safe")
    rt11 = YAML(typ="rt")

    def load_11(loader: Any, text: str) -> list[Any]:
        # Set for every file: the round-trip parser forgets the version after a `---`.
        loader.version = (1, 1)
        return list(loader.load_all(text))

    parser = getattr(safe.Parser, "__name__", str(safe.Parser))
    return [
        Candidate(
            'ruamel.yaml typ="safe"',
            lambda text: list(safe.load_all(text)),
            lambda r: r,
            "no",
            note=f"parser: {parser}",
        ),
        Candidate(
            'ruamel.yaml typ="safe", version=(1, 1)',
            lambda text: load_11(safe11, text),
            lambda r: r,
            "no",
            note=f"parser: {parser}",
        ),
        Candidate(
            'ruamel.yaml typ="rt", version=(1, 1)',
            lambda text: load_11(rt11, text),
            lambda r: r,
            "yes (.lc.line / .lc.key() on every collection)",
            sample=True,
            note=f"parser: {getattr(rt11.Parser, '__name__', rt11.Parser)} (pure Python)",
        ),
    ]


def pyfastyaml_candidates() -> list[Candidate]:
    import pyfastyaml  # type: ignore[import-not-found]

    has_events = hasattr(pyfastyaml, "parse_events")
    lines = "events only: parse_events() has spans, load_all() none" if has_events else "no"
    return [Candidate("pyfastyaml load_all", pyfastyaml.load_all, lambda r: r, lines)]


WORKER_GROUPS: dict[str, Callable[[], list[Candidate]]] = {
    "ryml": ryml_candidates,
    "ruamel.yaml": ruamel_candidates,
    "pyfastyaml": pyfastyaml_candidates,
}


def worker() -> int:
    """Measure the third-party candidates installed here; JSON job on stdin, results out."""
    job = json.load(sys.stdin)
    names: list[str] = job["files"]
    texts = [_read(n) for n in names]
    results: list[dict[str, Any]] = []
    for module, group in WORKER_GROUPS.items():
        if importlib.util.find_spec(module) is None:
            results.append({"missing": module})
            continue
        version = _distribution_version(module)
        for candidate in group():
            candidate.note = "; ".join(x for x in (version, candidate.note) if x)
            print(f"  {candidate.name} ...", file=sys.stderr, flush=True)
            result = measure(candidate, names, texts, job["reference"], job["repeat"])
            results.append(result.__dict__)
    json.dump(results, sys.stdout)
    return 0


def _distribution_version(module: str) -> str:
    from importlib import metadata

    dist = {"ryml": "rapidyaml"}.get(module, module)
    try:
        return f"{dist} {metadata.version(dist)}"
    except metadata.PackageNotFoundError:
        return ""


def _read(path: str) -> str:
    with open(path, "rb") as f:
        return f.read().decode("utf-8")


# --------------------------------------------------------------------------- the venv


def ensure_venv(echo: Callable[[str], None]) -> list[str]:
    """Create ``yaml-venv`` and install what is missing; the distributions that failed."""
    python = VENV / "bin" / "python"
    if not python.exists():
        import venv

        echo(f"creating {VENV}")
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    probe = ";".join(
        f"print({module!r}, importlib.util.find_spec({module!r}) is not None)"
        for module in VENV_PACKAGES.values()
    )
    done = subprocess.run(
        [str(python), "-c", f"import importlib.util;{probe}"],
        capture_output=True,
        text=True,
        check=True,
    )
    present_modules = {line.split()[0] for line in done.stdout.splitlines() if "True" in line}
    failed = []
    for dist, module in VENV_PACKAGES.items():
        if module in present_modules:
            continue
        echo(f"installing {dist} into {VENV}")
        install = subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", dist],
            capture_output=True,
            text=True,
            check=False,
        )
        if install.returncode != 0:
            echo(f"  {dist} did not install: {install.stderr.strip().splitlines()[-1:]}")
            failed.append(dist)
    return failed


def run_worker(names: Sequence[str], reference: Sequence[str], repeat: int) -> list[dict[str, Any]]:
    job = json.dumps({"files": list(names), "reference": list(reference), "repeat": repeat})
    done = subprocess.run(
        [str(VENV / "bin" / "python"), str(Path(__file__).resolve()), "--worker"],
        input=job,
        stdout=subprocess.PIPE,
        text=True,
        check=True,
        cwd=str(DEFAULT_OUT),  # not the repository: the worker must not import reachdiff
    )
    return list(json.loads(done.stdout))


# --------------------------------------------------------------------------- report


def yaml_files(tree: Path) -> list[str]:
    found: list[str] = []
    for root, dirs, files in os.walk(tree):
        dirs.sort()
        found.extend(os.path.join(root, f) for f in sorted(files) if f.endswith(YAML_SUFFIXES))
    return found


def report(results: list[Result], baseline: Result, missing: list[str], tree: Path) -> str:
    out = [
        f"{baseline.files} files, {baseline.bytes / 1e6:.1f} MB under {tree}",
        "",
        "| library | CPU s | ratio to CSafeLoader | refused | declined | documents ≠ CSafeLoader"
        " | line numbers | YAML | notes |",
        "|---|---:|---:|---:|---:|---|---|---|---|",
    ]
    for r in results:
        seconds = r.extrapolated if r.extrapolated is not None else r.seconds
        shown = f"{seconds:.2f}"
        if r.sample:
            shown = f"~{seconds:.1f} (sample: {r.seconds:.2f} s, {r.files} files)"
        ratio = seconds / baseline.seconds if baseline.seconds else math.nan
        differ = f"{r.differ} of {r.compared}" + (" (sample)" if r.sample else "")
        version = r.version.split(" ", 1)
        out.append(
            f"| {r.name} | {shown} | {ratio:.2f} | {r.refused} | {r.declined} | {differ}"
            f" | {r.lines} | {version[0]} {version[1] if len(version) > 1 else ''} | {r.note} |"
        )
    for dist in missing:
        out.append(f"| {dist} | not installed | | | | | | | |")
    examples = [
        f"- {r.name}: {r.example.replace(f'{tree}{os.sep}', '')}" for r in results if r.example
    ]
    if examples:
        out += ["", "First difference from CSafeLoader, per candidate:", *examples]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.yaml_libraries",
        description="Time YAML libraries on a generated tree and compare their documents.",
    )
    parser.add_argument(
        "--tree", type=Path, help=f"directory of manifests (default {DEFAULT_TREE})"
    )
    parser.add_argument("--repeat", type=int, default=3, help="passes per candidate; best counts")
    parser.add_argument("--no-venv", action="store_true", help="only reachdiff's own libraries")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker()

    def echo(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    tree: Path = (args.tree or DEFAULT_TREE).resolve()  # the worker runs elsewhere
    if args.tree is None and not tree.exists():
        from benchmarks.run import ensure_trees

        echo(f"generating {tree}")
        ensure_trees(DEFAULT_OUT, DEFAULT_WORKLOADS, 0, ["widen-rule"])
    names = yaml_files(tree)
    if not names:
        parser.error(f"no YAML files under {tree}")
    texts = [_read(n) for n in names]
    reference = []
    for text in texts:
        try:
            reference.append(digest(present(_reference_documents(text))))
        except Exception as exc:
            reference.append(f"refused: {type(exc).__name__}")

    results: list[Result] = []
    for candidate in local_candidates():
        echo(f"  {candidate.name} ...")
        results.append(measure(candidate, names, texts, reference, args.repeat))
    baseline = results[0]
    sample = [texts[i] for i in range(0, len(texts), SAMPLE_EVERY)]
    sample_baseline, _ = best_time(local_candidates()[0].parse, sample, args.repeat)

    missing: list[str] = []
    if not args.no_venv:
        missing = ensure_venv(echo)
        for data in run_worker(names, reference, args.repeat):
            if "missing" in data:
                missing.append(data["missing"])
                continue
            result = Result(**data)
            if "canonical" in result.extra:  # the worker had no PyYAML to explain it
                path = result.extra.pop("file")
                theirs = result.extra.pop("canonical")
                result.example = f"{path}: {explain(_read(path), theirs)}"
            results.append(result)
    for r in results:
        if r.sample:
            r.extrapolated = r.seconds / sample_baseline * baseline.seconds
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(
        f"Python {sys.version.split()[0]}, {os.cpu_count()} cores, {stamp}; best of "
        f"{args.repeat} passes, CPU time, cycle collector off; sampled rows ran on every "
        f"{SAMPLE_EVERY}th file and are extrapolated by their ratio to CSafeLoader there "
        f"(CSafeLoader on the sample: {sample_baseline:.2f} s)."
    )
    print(report(results, baseline, sorted(set(missing)), tree))
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ for r in results], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
