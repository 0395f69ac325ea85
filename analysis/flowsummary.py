"""A bounded summary of observed flows: per (source, destination, protocol, port, verdict)
a count and the first and last time seen, plus what was not counted and why.

``Summarizer`` takes ``analysis.flows`` results one at a time (the reader streams the raw
logs into it), so memory grows with the number of distinct connection patterns, not with
the number of records: pod names lose their random suffix, source ports are dropped, and
past ``MAX_ADDRESSES`` distinct external addresses, new ones are kept as their /24 (IPv6:
/64). Past ``MAX_FLOWS`` patterns the summary refuses to grow (``SummaryTooLarge``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from analysis.flows import (
    DROPPED,
    FLOW_PROTOCOLS,
    FORWARDED,
    FlowEnd,
    FlowKey,
    Observation,
    Parsed,
    Skip,
    format_time,
    parse_time,
)

FORMAT_VERSION = 1
MAX_FLOWS = 500_000
MAX_ADDRESSES = 100_000
MAX_EXAMPLES = 10  # malformed records named by file and line


class SummaryTooLarge(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class FlowStat:
    key: FlowKey
    count: int
    first: int
    last: int


@dataclass(frozen=True, slots=True)
class InputStat:
    file: str
    format: str  # hubble, calico, csv, summary
    records: int


@dataclass(frozen=True, slots=True)
class FlowSummary:
    flows: tuple[FlowStat, ...] = ()  # sorted by key
    inputs: tuple[InputStat, ...] = ()
    skipped: tuple[tuple[str, int], ...] = ()  # reason -> records, by reason
    malformed: int = 0
    malformed_examples: tuple[str, ...] = ()  # "file:line: why"
    aggregated_addresses: bool = False
    # The environment (cluster) the flows were observed in, as the repository's
    # environments are named ("" when the data does not say): docs/traffic.md.
    environment: str = ""

    @property
    def first_seen(self) -> int | None:
        times = [f.first for f in self.flows if f.first]
        return min(times) if times else None

    @property
    def last_seen(self) -> int | None:
        times = [f.last for f in self.flows if f.last]
        return max(times) if times else None

    @property
    def records(self) -> int:
        return sum(i.records for i in self.inputs)

    def window(self) -> str:
        """The observation window in words, for reports."""
        first, last = self.first_seen, self.last_seen
        if first is None or last is None:
            return "no timestamps"
        days = (last - first) / 86400
        span = f"{days:.1f} days" if days >= 1 else f"{(last - first) / 3600:.1f} hours"
        return f"{format_time(first)} to {format_time(last)} ({span})"


MAX_ENVIRONMENT = 253  # a summary's environment name (a path of the repository)


class Summarizer:
    """Accumulates observations (an accumulator for streaming: the only mutable thing
    here; ``result()`` gives the immutable summary)."""

    def __init__(self, max_flows: int = MAX_FLOWS, max_addresses: int = MAX_ADDRESSES) -> None:
        # key -> channel -> [count, first, last]
        self._flows: dict[FlowKey, dict[str, list[int]]] = {}
        self._skipped: dict[str, int] = {}
        self._inputs: list[InputStat] = []
        self._addresses: set[str] = set()
        self._malformed = 0
        self._examples: list[str] = []
        self._aggregated = False
        # The environments of the inputs ("" for raw logs, which do not name one).
        self._environments: set[str] = set()
        self._max_flows = max_flows
        self._max_addresses = max_addresses

    def add(self, parsed: Parsed) -> None:
        if isinstance(parsed, Skip):
            self._skipped[parsed.reason] = self._skipped.get(parsed.reason, 0) + 1
            return
        self.observe(parsed)

    def observe(self, obs: Observation) -> None:
        key = obs.key
        if key.src.ip or key.dst.ip:
            key = replace(key, src=self._bounded(key.src), dst=self._bounded(key.dst))
        channels = self._flows.get(key)
        if channels is None:
            if len(self._flows) >= self._max_flows:
                raise SummaryTooLarge(
                    f"more than {self._max_flows} distinct flows: summarize a shorter window "
                    "or fewer namespaces"
                )
            channels = self._flows[key] = {}
        stat = channels.get(obs.channel)
        if stat is None:
            channels[obs.channel] = [obs.count, obs.first, obs.last]
        else:
            stat[0] += obs.count
            if obs.first and (not stat[1] or obs.first < stat[1]):
                stat[1] = obs.first
            if obs.last > stat[2]:
                stat[2] = obs.last

    def _bounded(self, end: FlowEnd) -> FlowEnd:
        if not end.ip or "/" in end.ip:
            return end
        if end.ip in self._addresses:
            return end
        if len(self._addresses) < self._max_addresses:
            self._addresses.add(end.ip)
            return end
        self._aggregated = True
        address = ipaddress.ip_address(end.ip)
        bits = 24 if address.version == 4 else 64
        return replace(end, ip=str(ipaddress.ip_network(f"{address}/{bits}", strict=False)))

    def malformed(self, where: str) -> None:
        self._malformed += 1
        if len(self._examples) < MAX_EXAMPLES:
            self._examples.append(where)

    def finished_input(self, file: str, fmt: str, records: int) -> None:
        self._inputs.append(InputStat(file, fmt, records))
        if records:
            self._environments.add("")

    def merge(self, summary: FlowSummary) -> None:
        """Add an existing summary (its flows as one channel each)."""
        for stat in summary.flows:
            self.observe(Observation(stat.key, stat.first, stat.last, stat.count, "summary"))
        for reason, n in summary.skipped:
            self._skipped[reason] = self._skipped.get(reason, 0) + n
        self._inputs.extend(summary.inputs)
        self._malformed += summary.malformed
        room = MAX_EXAMPLES - len(self._examples)
        self._examples.extend(summary.malformed_examples[: max(room, 0)])
        self._aggregated |= summary.aggregated_addresses
        self._environments.add(summary.environment)

    def result(self) -> FlowSummary:
        flows = []
        for key, channels in self._flows.items():
            # The most complete channel: each saw every connection it could at most once.
            count = max(c[0] for c in channels.values())
            firsts = [c[1] for c in channels.values() if c[1]]
            last = max(c[2] for c in channels.values())
            flows.append(FlowStat(key, count, min(firsts) if firsts else 0, last))
        flows.sort(key=lambda f: f.key)
        return FlowSummary(
            flows=tuple(flows),
            inputs=tuple(self._inputs),
            skipped=tuple(sorted(self._skipped.items())),
            malformed=self._malformed,
            malformed_examples=tuple(self._examples),
            aggregated_addresses=self._aggregated,
            # Inputs of several environments (or unnamed ones) together name none.
            environment=next(iter(self._environments)) if len(self._environments) == 1 else "",
        )


def summarize(parsed: Iterable[Parsed]) -> FlowSummary:
    s = Summarizer()
    for p in parsed:
        s.add(p)
    return s.result()


# --- JSON -----------------------------------------------------------------------------


def _time(seconds: int) -> str | None:
    return format_time(seconds) if seconds else None


def summary_to_json(summary: FlowSummary) -> dict[str, Any]:
    """The summary file's document (docs/traffic.md); ``reachdiff_flows`` comes first so
    readers can tell a summary from raw logs by its first bytes."""
    return {
        "reachdiff_flows": FORMAT_VERSION,
        "first_seen": _time(summary.first_seen or 0),
        "last_seen": _time(summary.last_seen or 0),
        "records": summary.records,
        "inputs": [
            {"file": i.file, "format": i.format, "records": i.records} for i in summary.inputs
        ],
        "skipped": dict(summary.skipped),
        "malformed": {"count": summary.malformed, "examples": list(summary.malformed_examples)},
        "aggregated_addresses": summary.aggregated_addresses,
        **({"environment": summary.environment} if summary.environment else {}),
        "flows": [
            {
                "src": f.key.src.to_json(),
                "dst": f.key.dst.to_json(),
                "protocol": f.key.protocol,
                "port": f.key.port,
                "verdict": f.key.verdict,
                "count": f.count,
                "first_seen": _time(f.first),
                "last_seen": _time(f.last),
            }
            for f in summary.flows
        ],
    }


def _int(doc: Mapping[str, Any], key: str, low: int = 0, high: int | None = None) -> int:
    value = doc.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ValueError(f"`{key}` must be a whole number")
    if high is not None and value > high:
        raise ValueError(f"`{key}` must be at most {high}")
    return value


def _seen(doc: Mapping[str, Any], key: str) -> int:
    value = doc.get(key)
    return 0 if value is None else parse_time(value)


def summary_from_json(doc: Any) -> FlowSummary:
    """Read a summary document back; ``ValueError`` names what is wrong (the flow index).
    The document may come from a URL: any shape is refused with ``ValueError``."""
    try:
        return _summary_from_json(doc)
    except (TypeError, AttributeError, KeyError) as err:
        raise ValueError(f"a field of the wrong type ({type(err).__name__})") from None


def _summary_from_json(doc: Any) -> FlowSummary:
    if not isinstance(doc, dict) or doc.get("reachdiff_flows") != FORMAT_VERSION:
        raise ValueError(f"not a reachdiff flow summary (version {FORMAT_VERSION})")
    flows = doc.get("flows")
    if not isinstance(flows, list):
        raise ValueError("`flows` must be a list")
    out = []
    for n, f in enumerate(flows):
        try:
            if not isinstance(f, dict) or not isinstance(f.get("src"), dict):
                raise ValueError("a flow must be an object with `src` and `dst`")
            if not isinstance(f.get("dst"), dict):
                raise ValueError("a flow must be an object with `src` and `dst`")
            if f.get("protocol") not in FLOW_PROTOCOLS:
                raise ValueError("`protocol` must be TCP, UDP or SCTP")
            if f.get("verdict") not in (FORWARDED, DROPPED):
                raise ValueError("`verdict` must be FORWARDED or DROPPED")
            key = FlowKey(
                FlowEnd.from_json(f["src"]),
                FlowEnd.from_json(f["dst"]),
                f["protocol"],
                _int(f, "port", 1, 65535),
                f["verdict"],
            )
            out.append(
                FlowStat(key, _int(f, "count"), _seen(f, "first_seen"), _seen(f, "last_seen"))
            )
        except ValueError as err:
            raise ValueError(f"flows[{n}]: {err}") from None
    inputs = [
        InputStat(str(i.get("file", "")), str(i.get("format", "")), int(i.get("records", 0)))
        for i in doc.get("inputs", [])
        if isinstance(i, dict)
    ]
    skipped = doc.get("skipped", {})
    malformed = doc.get("malformed", {})
    if not isinstance(skipped, dict) or not isinstance(malformed, dict):
        raise ValueError("`skipped` and `malformed` must be objects")
    environment = doc.get("environment", "")
    if not isinstance(environment, str) or len(environment) > MAX_ENVIRONMENT:
        raise ValueError(f"`environment` must be a name of at most {MAX_ENVIRONMENT} characters")
    return FlowSummary(
        environment=environment,
        flows=tuple(sorted(out, key=lambda s: s.key)),
        inputs=tuple(inputs),
        skipped=tuple(sorted((str(k), int(v)) for k, v in skipped.items())),
        malformed=int(malformed.get("count", 0)),
        malformed_examples=tuple(str(x) for x in malformed.get("examples", [])),
        aggregated_addresses=bool(doc.get("aggregated_addresses", False)),
    )
