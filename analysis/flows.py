"""One observed flow record, read from Hubble, Calico or the documented CSV (docs/traffic.md).

Pure: each function takes one decoded record and returns either an ``Observation`` (what
was seen: the two ends, protocol, destination port, verdict, when, how many) or a ``Skip``
(why the record is not a connection to count). The streaming reader (``bot/inputs/flowfiles``)
decodes lines and feeds them here; ``analysis/flowsummary`` aggregates.

Sources of the schemas (facts only, no code taken):
- Hubble: cilium/cilium ``api/v1/flow/flow.proto`` and ``api/v1/observer/observer.proto``
  (Apache-2.0); ``hubble observe -o json`` prints each Flow (or a GetFlowsResponse holding
  one under ``flow``) with the protobuf field names.
- Calico: the "Flow log data types" reference of docs.tigera.io (start_time, end_time,
  action, source_/dest_ namespace, name_aggr, type, ip, port, labels, proto, reporter,
  num_flows).

Why one module of 550 lines: the three record formats (Hubble, Calico, CSV) map to
the same ``FlowEnd``/``Observation`` with the same rules for ends, ports and times; each
reader is short, and apart they would repeat or import those rules back and forth.
"""

from __future__ import annotations

import datetime
import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

FORWARDED, DROPPED = "FORWARDED", "DROPPED"
FLOW_PROTOCOLS = ("TCP", "UDP", "SCTP")

# Kubernetes' random name suffixes (apimachinery utilrand) use this alphabet: no vowels,
# no 0, 1, 3 so that generated names never spell words.
_RAND = "[bcdfghjklmnpqrstvwxz2456789]"
_RANDOM_ID = re.compile(rf"^(?P<base>.+)-{_RAND}{{5}}$")
_DEPLOYMENT_POD = re.compile(rf"^(?P<name>.+)-(?P<hash>{_RAND}{{1,10}})-(?:{_RAND}{{5}}|\*)$")
_CRONJOB_POD = re.compile(rf"^(?P<name>.+)-(?P<schedule>\d{{1,12}})-(?:{_RAND}{{5}}|\*)$")
_SUFFIXED_POD = re.compile(rf"^(?P<name>.+)-(?:{_RAND}{{5}}|\*)$")
_STATEFULSET_POD = re.compile(r"^(?P<name>.+)-(?:0|[1-9]\d{0,8})$")

# Labels that differ between pods of one workload or between its revisions: they are
# dropped so that one workload's pods aggregate into one end.
_VOLATILE_LABELS = frozenset(
    {
        "pod-template-hash",
        "controller-revision-hash",
        "statefulset.kubernetes.io/pod-name",
        "apps.kubernetes.io/pod-index",
        "controller-uid",
        "batch.kubernetes.io/controller-uid",
        "job-name",
        "batch.kubernetes.io/job-name",
        "batch.kubernetes.io/job-completion-index",
        "pod-template-generation",
    }
)
# Hubble's k8s labels also carry Cilium's own facts about the pod, not pod labels.
_CILIUM_PREFIX = "io.cilium.k8s."
_NAMESPACE_LABEL = "io.kubernetes.pod.namespace"
_SERVICE_ACCOUNT_LABEL = "io.cilium.k8s.policy.serviceaccount"
NAMESPACE_LABELS_PREFIX = "io.cilium.k8s.namespace.labels."


@dataclass(frozen=True, slots=True, order=True)
class FlowEnd:
    """One side of a flow, as much as the record says. A pod is ``namespace`` with its
    ``workload`` (``Kind/name``, when the CNI resolved it) or its ``pod`` name (random
    suffix as ``*``) and, when neither names its owner, its ``labels``. A non-pod is an
    ``ip`` (an address, or a prefix when the summary had to aggregate) or ``reserved``
    (``host``, ``remote-node``, ``kube-apiserver``…: the nodes, not pods)."""

    namespace: str = ""
    workload: str = ""
    pod: str = ""
    labels: tuple[tuple[str, str], ...] = ()
    ip: str = ""
    reserved: str = ""
    namespace_labels: tuple[tuple[str, str], ...] = ()
    # The pod's service account, when the record says (Hubble's endpoint labels do):
    # Cilium and Calico selectors may split pods the tree does not define by it.
    service_account: str = ""

    @property
    def is_pod(self) -> bool:
        return bool(self.namespace) and not self.reserved and not self.ip

    def __str__(self) -> str:
        if self.reserved:
            return f"reserved:{self.reserved}" + (f" ({self.ip})" if self.ip else "")
        if self.ip and not self.namespace:
            return self.ip
        who = self.workload or self.pod or ",".join(f"{k}={v}" for k, v in self.labels)
        return f"{self.namespace}/{who or '?'}"

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {}
        for key in ("namespace", "workload", "pod", "ip", "reserved", "service_account"):
            value = getattr(self, key)
            if value:
                doc[key] = value
        if self.labels:
            doc["labels"] = dict(self.labels)
        if self.namespace_labels:
            doc["namespace_labels"] = dict(self.namespace_labels)
        return doc

    @staticmethod
    def from_json(doc: Mapping[str, Any]) -> FlowEnd:
        def text(key: str) -> str:
            value = doc.get(key, "")
            if not isinstance(value, str):
                raise ValueError(f"`{key}` must be a string")
            return value

        def labels(key: str) -> tuple[tuple[str, str], ...]:
            value = doc.get(key, {})
            if not isinstance(value, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in value.items()
            ):
                raise ValueError(f"`{key}` must map strings to strings")
            return tuple(sorted(value.items()))

        return FlowEnd(
            text("namespace"),
            text("workload"),
            text("pod"),
            labels("labels"),
            text("ip"),
            text("reserved"),
            labels("namespace_labels"),
            text("service_account"),
        )


@dataclass(frozen=True, slots=True, order=True)
class FlowKey:
    """What the summary counts: one connection pattern (the source port is not kept:
    it is ephemeral)."""

    src: FlowEnd
    dst: FlowEnd
    protocol: str  # TCP, UDP, SCTP
    port: int
    verdict: str  # FORWARDED or DROPPED


@dataclass(frozen=True, slots=True)
class Observation:
    key: FlowKey
    first: int  # unix seconds
    last: int
    count: int
    # Where the record was observed. Each channel sees a connection at most once, but
    # one connection is seen on several channels (at the source's node and at the
    # destination's), so a summary counts the most complete channel, never their sum.
    channel: str


@dataclass(frozen=True, slots=True)
class Skip:
    reason: str  # a fixed phrase: summaries count records per reason


class BadRecord(ValueError):
    """A record that is not of the format it claims to be; ``str()`` says what is wrong."""


Parsed = Observation | Skip

# --- names ----------------------------------------------------------------------------


def pod_pattern(name: str) -> str:
    """A pod name with its random per-pod suffix as ``*`` (``web-7d9f8-x2x9z`` ->
    ``web-7d9f8-*``), so that one workload's pods, and their restarts, are one end."""
    if name.endswith("-*"):
        return name
    found = _RANDOM_ID.match(name)
    return f"{found.group('base')}-*" if found else name


def owner_candidates(pod: str) -> tuple[tuple[str, str], ...]:
    """The (kind, name) of the workloads that could have made a pod of this name (or
    pattern), most specific first: the pod itself, a Deployment (``name-<hash>-<id>``),
    a CronJob (``name-<scheduled minute>-<id>``), a StatefulSet (``name-<ordinal>``), a
    DaemonSet, Job, ReplicaSet or ReplicationController (``name-<id>``)."""
    if not pod:
        return ()
    out: list[tuple[str, str]] = [("Pod", pod)] if "*" not in pod else []
    found = _DEPLOYMENT_POD.match(pod)
    if found:
        out.append(("Deployment", found.group("name")))
    found = _CRONJOB_POD.match(pod)
    if found:
        out.append(("CronJob", found.group("name")))
    found = _STATEFULSET_POD.match(pod)
    if found:
        out.append(("StatefulSet", found.group("name")))
    found = _SUFFIXED_POD.match(pod)
    if found:
        base = found.group("name")
        if pod.endswith("-*"):  # an aggregated name (Calico's) also covers ordinals
            out.append(("StatefulSet", base))
        out += [(kind, base) for kind in ("DaemonSet", "Job", "ReplicaSet")]
        out.append(("ReplicationController", base))
    return tuple(dict.fromkeys(out))


def stable_labels(labels: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in labels.items() if k not in _VOLATILE_LABELS))


# --- time -----------------------------------------------------------------------------

_MINUTES: dict[str, int] = {}


def parse_time(value: object) -> int:
    """Unix seconds from RFC 3339 text (any fraction, ``Z`` or an offset) or a number."""
    if isinstance(value, bool):
        raise BadRecord("a time must be RFC 3339 text or unix seconds")
    if isinstance(value, int | float):
        return int(value)
    if not isinstance(value, str):
        raise BadRecord("a time must be RFC 3339 text or unix seconds")
    if value.isdigit():
        return int(value)
    if len(value) < 20 or value[10] not in "Tt ":
        raise BadRecord(f"time {value[:40]!r} is not RFC 3339")
    minute = value[:16]
    base = _MINUTES.get(minute)
    try:
        if base is None:
            moment = datetime.datetime.fromisoformat(minute + ":00+00:00")
            base = _MINUTES[minute] = int(moment.timestamp())
            if len(_MINUTES) > 100_000:  # a cache, bounded
                _MINUTES.clear()
        seconds = int(value[17:19])
        zone = value[19:].lstrip("0123456789.")
        if zone in ("Z", "z"):
            offset = 0
        else:
            sign = {"+": -1, "-": 1}[zone[0]]
            offset = sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    except (ValueError, KeyError, IndexError):
        raise BadRecord(f"time {value[:40]!r} is not RFC 3339") from None
    return base + seconds + offset


def format_time(seconds: int) -> str:
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# Process-wide memos of pure functions of short strings (an address as written -> its
# canonical form; a Hubble endpoint's namespace, pod, labels and workload -> its frozen
# FlowEnd): no reader can see another's entries, only the same answers sooner. Cleared
# when full, so at most _CACHE_BOUND entries each whatever a log holds.
_ADDRESSES: dict[str, str] = {}
_ENDS: dict[tuple[object, ...], FlowEnd] = {}
_CACHE_BOUND = 200_000  # entries per cache; cleared when full (a cache, not a record)


def _address(value: object, what: str) -> str:
    if not isinstance(value, str) or not value:
        return ""
    found = _ADDRESSES.get(value)
    if found is not None:
        return found
    try:
        found = str(ipaddress.ip_address(value))
    except ValueError:
        raise BadRecord(f"{what} {value[:60]!r} is not an IP address") from None
    if len(_ADDRESSES) >= _CACHE_BOUND:
        _ADDRESSES.clear()
    _ADDRESSES[value] = found
    return found


def _hubble_end_of(doc: object, raw_ip: object, what: str) -> FlowEnd:
    """``_hubble_end``, memoized: a log repeats the same endpoints millions of times."""
    if not isinstance(doc, dict):
        return _hubble_end(doc, _address(raw_ip, what))
    labels = doc.get("labels")
    workloads = doc.get("workloads")
    first = workloads[0] if isinstance(workloads, list) and workloads else None
    key = (
        doc.get("namespace"),
        doc.get("pod_name"),
        tuple(labels) if isinstance(labels, list) else labels,
        (first.get("kind"), first.get("name")) if isinstance(first, dict) else first,
    )
    try:
        end = _ENDS.get(key)
    except TypeError:  # something unhashable where a string belongs: parse it to say so
        return _hubble_end(doc, _address(raw_ip, what))
    if end is None:
        end = _hubble_end(doc, "")
        if len(_ENDS) >= _CACHE_BOUND:
            _ENDS.clear()
        _ENDS[key] = end
    if end.is_pod:
        return end
    ip = _address(raw_ip, what)
    if end.reserved == "world":
        return FlowEnd(ip=ip) if ip else end
    return FlowEnd(ip=ip, reserved=end.reserved)


def _port(value: object, what: str) -> int:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 65535:
        raise BadRecord(f"{what} must be a port number (0-65535)")
    return value


# --- Hubble ---------------------------------------------------------------------------

_EVENT_DROP, _EVENT_TRACE, _EVENT_POLICY_VERDICT = 1, 4, 5
_POLICY_DROPS = frozenset({"POLICY_DENIED", "POLICY_DENY", 133, 181})
_DELIVERED_TO_POD = "TO_ENDPOINT"
# Points where a packet for a destination that is not a pod leaves the source's node.
_LEAVES_NODE = frozenset({"TO_STACK", "TO_NETWORK"})


def _hubble_end(doc: object, ip: str) -> FlowEnd:
    if not isinstance(doc, dict):
        return FlowEnd(ip=ip) if ip else FlowEnd(reserved="unknown")
    raw = doc.get("labels") or []
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise BadRecord("endpoint `labels` must be a list of strings")
    pod_labels: dict[str, str] = {}
    ns_labels: dict[str, str] = {}
    reserved = account = ""
    for label in raw:
        source, _, rest = label.partition(":")
        key, _, value = rest.partition("=")
        if source == "reserved":
            reserved = reserved or key
        elif source == "k8s":
            if key.startswith(NAMESPACE_LABELS_PREFIX):
                ns_labels[key[len(NAMESPACE_LABELS_PREFIX) :]] = value
            elif key == _SERVICE_ACCOUNT_LABEL:
                account = value
            elif not key.startswith(_CILIUM_PREFIX) and key != _NAMESPACE_LABEL:
                pod_labels[key] = value
    namespace = doc.get("namespace") or ""
    pod = doc.get("pod_name") or ""
    if not isinstance(namespace, str) or not isinstance(pod, str):
        raise BadRecord("endpoint `namespace` and `pod_name` must be strings")
    if reserved.startswith("world") or (not namespace and not reserved):
        return FlowEnd(ip=ip) if ip else FlowEnd(reserved="world")
    if not namespace:
        return FlowEnd(ip=ip, reserved=reserved)
    workload = ""
    workloads = doc.get("workloads") or []
    if isinstance(workloads, list) and workloads and isinstance(workloads[0], dict):
        kind, name = workloads[0].get("kind"), workloads[0].get("name")
        if isinstance(kind, str) and isinstance(name, str) and kind and name:
            workload = f"{kind}/{name}"
    # Labels are kept (stable ones are one set per workload: bounded): they place a pod
    # the tree does not define, and are the fallback when no name leads to a workload.
    return FlowEnd(
        namespace=namespace,
        workload=workload,
        pod="" if workload else pod_pattern(pod),
        labels=stable_labels(pod_labels),
        namespace_labels=tuple(sorted(ns_labels.items())),
        service_account=account,
    )


def parse_hubble(doc: object) -> Parsed:
    """One line of ``hubble observe -o json`` (a Flow, or a GetFlowsResponse with one)."""
    if not isinstance(doc, dict):
        raise BadRecord("a Hubble line must be a JSON object")
    if "flow" in doc:
        doc = doc["flow"]
        if not isinstance(doc, dict):
            raise BadRecord("`flow` must be an object")
    elif any(k in doc for k in ("node_status", "lost_events", "agent_event", "debug_event")):
        return Skip("not a flow (node status, lost or agent events)")
    verdict = doc.get("verdict")
    if not isinstance(verdict, str):
        raise BadRecord("a flow needs `verdict` (FORWARDED, DROPPED, …)")
    is_reply = doc.get("is_reply")
    if is_reply is None:  # absent: unknown; the deprecated `reply` may still say it
        is_reply = doc.get("reply")
    if is_reply is True:
        return Skip("reply direction")
    if doc.get("Type") == "L7":
        return Skip("L7 record (its connection is counted from its L3/L4 events)")
    l4 = doc.get("l4")
    if not isinstance(l4, dict) or not l4:
        return Skip("no L4 header")
    protocol = next((p for p in FLOW_PROTOCOLS if p in l4), None)
    if protocol is None:
        return Skip("ICMP or another protocol NetworkPolicy does not govern")
    layer = l4[protocol]
    if not isinstance(layer, dict):
        raise BadRecord(f"`l4.{protocol}` must be an object")
    port = _port(layer.get("destination_port", 0), f"l4.{protocol}.destination_port")
    if port == 0:
        return Skip("no destination port")
    ip = doc.get("IP") or {}
    if not isinstance(ip, dict):
        raise BadRecord("`IP` must be an object")
    dst = _hubble_end_of(doc.get("destination"), ip.get("destination"), "IP.destination")
    event = doc.get("event_type") or {}
    event_type = event.get("type", 0) if isinstance(event, dict) else 0
    point = doc.get("trace_observation_point") or ""
    direction = doc.get("traffic_direction") or ""
    if verdict == "DROPPED":
        reason = doc.get("drop_reason_desc", doc.get("drop_reason"))
        if reason not in _POLICY_DROPS:
            return Skip("dropped for a reason other than policy")
        channel = f"drop:{event_type}:{direction}"
    elif verdict in ("FORWARDED", "AUDIT"):
        # Count a forwarded connection where its delivery is certain: at the destination
        # pod (trace TO_ENDPOINT, or its ingress policy verdict), or, for a destination
        # that is not a pod, where it leaves the source's node. Other trace points are
        # the same packets on their way (and an egress verdict may still meet an
        # ingress drop).
        if dst.is_pod:
            delivered = (event_type == _EVENT_TRACE and point == _DELIVERED_TO_POD) or (
                event_type == _EVENT_POLICY_VERDICT and direction == "INGRESS"
            )
        else:
            delivered = (event_type == _EVENT_TRACE and point in _LEAVES_NODE) or (
                event_type == _EVENT_POLICY_VERDICT and direction == "EGRESS"
            )
        if not delivered:
            return Skip("trace-point duplicate (counted where it is delivered)")
        verdict = FORWARDED
        channel = f"{event_type}:{point}:{direction}"
    else:
        return Skip(f"verdict {verdict[:20]} (neither forwarded nor dropped)")
    src = _hubble_end_of(doc.get("source"), ip.get("source"), "IP.source")
    when = parse_time(doc.get("time")) if doc.get("time") is not None else 0
    key = FlowKey(src, dst, protocol, port, verdict if verdict == FORWARDED else DROPPED)
    return Observation(key, when, when, 1, channel)


# --- Calico ---------------------------------------------------------------------------

_IANA = {"6": "TCP", "17": "UDP", "132": "SCTP", "tcp": "TCP", "udp": "UDP", "sctp": "SCTP"}


def _calico_end(doc: Mapping[str, Any], side: str) -> FlowEnd:
    kind = doc.get(f"{side}_type") or ""
    namespace = doc.get(f"{side}_namespace") or ""
    name = doc.get(f"{side}_name_aggr") or doc.get(f"{side}_name") or ""
    ip = _address(doc.get(f"{side}_ip"), f"{side}_ip")
    if not all(isinstance(v, str) for v in (kind, namespace, name)):
        raise BadRecord(f"`{side}_type`, `{side}_namespace` and `{side}_name_aggr` must be text")
    if kind == "hep":
        return FlowEnd(ip=ip, reserved="host")
    if kind != "wep" or namespace in ("", "-"):
        # ns (a NetworkSet), net (a network): not pods. Aggregated records lose the IP.
        return FlowEnd(ip=ip) if ip else FlowEnd(reserved=f"{name or 'network'} (aggregated)")
    labels: dict[str, str] = {}
    raw = doc.get(f"{side}_labels")
    if isinstance(raw, dict):
        raw = raw.get("labels")
    if isinstance(raw, list):
        for label in raw:
            if isinstance(label, str) and "=" in label:
                key, _, value = label.partition("=")
                labels[key] = value
    return FlowEnd(namespace, "", pod_pattern(name), stable_labels(labels))


def parse_calico(doc: object) -> Parsed:
    """One Calico flow log record (JSON)."""
    if not isinstance(doc, dict):
        raise BadRecord("a Calico flow log line must be a JSON object")
    proto = str(doc.get("proto", "")).lower()
    protocol = _IANA.get(proto)
    if protocol is None:
        if proto in ("1", "58", "icmp", "icmp6", "icmpv6"):
            return Skip("ICMP or another protocol NetworkPolicy does not govern")
        raise BadRecord("`proto` must be tcp, udp, sctp (or 6, 17, 132)")
    port = _port(doc.get("dest_port"), "`dest_port`")
    if port == 0:
        return Skip("no destination port")
    action, reporter = doc.get("action"), doc.get("reporter")
    if action not in ("allow", "deny") or reporter not in ("src", "dst"):
        raise BadRecord("`action` must be allow or deny and `reporter` src or dst")
    src, dst = _calico_end(doc, "source"), _calico_end(doc, "dest")
    # Both nodes report a connection between pods. The destination's report decides it
    # (an egress allow may meet an ingress deny); the source's decides when it denies, or
    # when the destination is no pod (nobody reports for it).
    if action == "allow" and reporter == "src" and dst.is_pod:
        return Skip("reported by both sides (counted at the destination)")
    count = doc.get("num_flows", 1)
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise BadRecord("`num_flows` must be a whole number")
    if count == 0:
        return Skip("no flows in the interval")
    first = parse_time(doc.get("start_time", 0))
    last = parse_time(doc.get("end_time", doc.get("start_time", 0)))
    verdict = FORWARDED if action == "allow" else DROPPED
    return Observation(FlowKey(src, dst, protocol, port, verdict), first, last, count, reporter)


# --- CSV ------------------------------------------------------------------------------

CSV_COLUMNS = (
    "src_namespace",
    "src_workload",
    "src_ip",
    "dst_namespace",
    "dst_workload",
    "dst_ip",
    "protocol",
    "port",
    "verdict",
    "count",
    "first_seen",
    "last_seen",
)
_CSV_VERDICTS = {"forwarded": FORWARDED, "allow": FORWARDED, "allowed": FORWARDED}
_CSV_VERDICTS |= {"dropped": DROPPED, "deny": DROPPED, "denied": DROPPED}


def csv_header(row: Sequence[str]) -> dict[str, int]:
    """Column positions of a CSV header; every documented column must be there."""
    where = {name.strip().lower(): n for n, name in enumerate(row)}
    missing = [c for c in CSV_COLUMNS if c not in where]
    if missing:
        raise BadRecord(
            "the CSV header lacks " + ", ".join(missing) + f" (columns: {','.join(CSV_COLUMNS)})"
        )
    return where


def _csv_end(namespace: str, workload: str, ip: str, side: str) -> FlowEnd:
    if namespace:
        if "/" in workload:
            return FlowEnd(namespace, workload=workload)
        if not workload:
            raise BadRecord(f"{side}_workload is empty for a namespaced {side}")
        return FlowEnd(namespace, pod=pod_pattern(workload))
    address = _address(ip, f"{side}_ip")
    if not address:
        raise BadRecord(f"give {side}_namespace and {side}_workload, or {side}_ip")
    return FlowEnd(ip=address)


def parse_csv_row(where: Mapping[str, int], row: Sequence[str]) -> Parsed:
    """One CSV row (see ``CSV_COLUMNS``); ``where`` from ``csv_header``."""
    if len(row) < len(where):
        raise BadRecord(f"{len(row)} columns, the header has {len(where)}")
    cell = {c: row[where[c]].strip() for c in CSV_COLUMNS}
    protocol = cell["protocol"].upper()
    if protocol not in FLOW_PROTOCOLS:
        raise BadRecord("protocol must be TCP, UDP or SCTP")
    verdict = _CSV_VERDICTS.get(cell["verdict"].lower())
    if verdict is None:
        raise BadRecord("verdict must be FORWARDED or DROPPED (or allow/deny)")
    port = _port(cell["port"], "port")
    if port == 0:
        raise BadRecord("port must be 1-65535")
    count = int(cell["count"]) if cell["count"].isdigit() else -1
    if count < 0:
        raise BadRecord("count must be a whole number")
    src = _csv_end(cell["src_namespace"], cell["src_workload"], cell["src_ip"], "src")
    dst = _csv_end(cell["dst_namespace"], cell["dst_workload"], cell["dst_ip"], "dst")
    first = parse_time(cell["first_seen"]) if cell["first_seen"] else 0
    last = parse_time(cell["last_seen"]) if cell["last_seen"] else first
    return Observation(FlowKey(src, dst, protocol, port, verdict), first, last, count, "csv")
