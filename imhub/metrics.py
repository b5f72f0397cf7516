"""Every Prometheus metric of imhub, in one place (see docs/operations.md).

Instrumented code makes one-line calls on these objects. The fan-out loop
(:meth:`imhub.gateway.hub.Hub.deliver`), the socket flush
(:meth:`imhub.gateway.connection.Connection._flush`), the per-frame count of the
socket handler and its open/close counts are the hottest code in the server, so they
never touch a prometheus object: they add to the plain integers of :data:`HOT` (one attribute or dict add per
envelope / write / frame), and :func:`sync_hot` moves the deltas into the real counters
once a second and before every scrape.

Several workers (``imhub serve --workers N``): the supervisor points
``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory before the workers start; each worker
then writes its values to files there, and ``/metrics`` on any worker reports the sum
over all of them (gauges: live workers only). One process needs nothing.
"""

from __future__ import annotations

import os
from bisect import bisect_left

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

_LATENCY = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_BATCH = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)

# --- connections ------------------------------------------------------------------------
connections_open = Gauge(
    "imhub_connections_open", "WebSocket connections open now.", multiprocess_mode="livesum"
)
connections_opened = Counter("imhub_connections_opened_total", "WebSocket connections accepted.")
connections_closed = Counter(
    "imhub_connections_closed_total", "WebSocket connections closed, by reason.", ["reason"]
)
handshakes_refused = Counter(
    "imhub_handshakes_refused_total", "WebSocket handshakes refused before the upgrade, by reason.", ["reason"]
)
frames_in = Counter("imhub_frames_in_total", "WebSocket frames received, by cmd ('invalid': refused).", ["cmd"])
slow_consumer_closes = Counter(
    "imhub_slow_consumer_closes_total", "Connections closed because their send buffer overflowed (4008)."
)

# --- messages ---------------------------------------------------------------------------
messages_stored = Counter("imhub_messages_stored_total", "Messages stored (not counting duplicate resends).")
messages_not_stored = Counter(
    "imhub_messages_not_stored_total",
    "Sends answered with an error because the store failed, by the error the client got "
    "('overloaded': retryable, 'internal': a bug or a broken database; both are logged).",
    ["error"],
)
messages_duplicate = Counter("imhub_messages_duplicate_total", "Resends answered with the original ack.")
push_sent = Counter(
    "imhub_push_sent_total",
    "Web Pushes to browsers of offline users, by outcome ('gone': a 404/410, subscription removed).",
    ["outcome"],
)
push_dropped = Counter("imhub_push_dropped_total", "Messages not pushed because the push queue was full.")
push_skipped_online = Counter(
    "imhub_push_skipped_online_total",
    "Chat messages not pushed because their 1:1 recipient was online when the push worker got to them.",
)
send_ack_seconds = Histogram(
    "imhub_send_ack_seconds", "From a send frame's arrival to its ack (store + publish).", buckets=_LATENCY
)
deliver_seconds = Histogram(
    "imhub_deliver_seconds",
    "From the start of a message's local fan-out to the end of its socket writes.",
    buckets=_LATENCY,
)
deliveries = Counter("imhub_deliveries_total", "Message frames queued to sockets by fan-out.")
delivery_bytes = Counter("imhub_delivery_bytes_total", "Bytes of message frames queued to sockets by fan-out.")
sent_bytes = Counter("imhub_sent_bytes_total", "Bytes written to WebSocket connections (all frames).")
socket_writes = Counter("imhub_socket_writes_total", "Coalesced socket writes (one per connection per loop turn).")

# --- database ---------------------------------------------------------------------------
db_commit_batch = Histogram("imhub_db_commit_batch_size", "Messages per group commit.", buckets=_BATCH)
db_commit_seconds = Histogram("imhub_db_commit_seconds", "Time of one group commit.", buckets=_LATENCY)
db_commit_failures = Counter("imhub_db_commit_failures_total", "Group commits that failed.")

# --- bus --------------------------------------------------------------------------------
bus_published = Counter("imhub_bus_published_total", "Bus messages published.", ["bus"])
bus_publish_failures = Counter("imhub_bus_publish_failures_total", "Publishes that failed (clients will sync).")
bus_outbox_dropped = Counter(
    "imhub_bus_outbox_dropped_total", "Bus messages dropped from a full outbox while Redis was unreachable."
)
bus_received = Counter("imhub_bus_received_total", "Bus messages received from other processes.", ["bus"])
bus_shard_up = Gauge(
    "imhub_bus_shard_up",
    "1 while every live process is subscribed on this Redis shard (URL without password), else 0.",
    ["shard"],
    multiprocess_mode="livemin",
)
messages_held = Counter(
    "imhub_messages_held_total", "Messages held back until the earlier seqs of their conversation arrived."
)
messages_gap_released = Counter(
    "imhub_messages_gap_released_total", "Held messages let through after the gap wait with the gap still open."
)
messages_late = Counter(
    "imhub_messages_late_total",
    "Messages that arrived after their gap was given up on: delivered after newer ones (out of order).",
)
requests_overloaded = Counter(
    "imhub_requests_overloaded_total",
    "WebSocket frames answered 5030 overloaded because a database read or write timed out or failed transiently.",
)
baseline_read_failures = Counter(
    "imhub_baseline_read_failures_total",
    "Sequencer baseline reads that failed and were retried (the conversation's messages held meanwhile).",
)
bus_lag_seconds = Histogram(
    "imhub_bus_lag_seconds",
    "Message store time to its arrival from the bus in another process (wall clocks).",
    buckets=_LATENCY,
)

# --- media ------------------------------------------------------------------------------
uploads = Counter("imhub_uploads_total", "Uploads stored, by kind.", ["kind"])
upload_bytes = Counter("imhub_upload_bytes_total", "Bytes of uploads stored, by kind.", ["kind"])

# --- lifecycle --------------------------------------------------------------------------
draining = Gauge("imhub_draining", "1 while this worker drains for a restart.", multiprocess_mode="livemax")


class Hot:
    """Plain integers bumped on the hot paths; :func:`sync_hot` exports them."""

    __slots__ = (
        "closed", "deliveries", "delivery_bytes", "frames_in", "opened", "sent_bytes", "writes",
    )

    def __init__(self) -> None:
        self.deliveries = 0
        self.delivery_bytes = 0
        self.sent_bytes = 0
        self.writes = 0
        # cmd label -> frames received (a labelled counter's .labels() per frame cost
        # ~7 % of a worker answering heartbeats)
        self.frames_in: dict[str, int] = {}
        # WebSocket connections accepted, and closed by reason (close_reason): four
        # multiprocess-file updates per reconnect were ~2.5 % of a worker in a storm.
        # imhub_connections_open is exported as opened - closed.
        self.opened = 0
        self.closed: dict[str, int] = {}


HOT = Hot()
_exported = Hot()


def sync_hot() -> None:
    """Move what the hot paths counted since the last call into the counters."""
    for name, counter in (
        ("deliveries", deliveries),
        ("delivery_bytes", delivery_bytes),
        ("sent_bytes", sent_bytes),
        ("writes", socket_writes),
    ):
        now = getattr(HOT, name)
        delta = now - getattr(_exported, name)
        if delta:
            counter.inc(delta)
            setattr(_exported, name, now)
    for cmd, n in tuple(HOT.frames_in.items()):
        delta = n - _exported.frames_in.get(cmd, 0)
        if delta:
            frames_in.labels(cmd).inc(delta)
            _exported.frames_in[cmd] = n
    opened = HOT.opened - _exported.opened
    if opened:
        connections_opened.inc(opened)
        _exported.opened = HOT.opened
    closed = 0
    for reason, n in tuple(HOT.closed.items()):
        delta = n - _exported.closed.get(reason, 0)
        if delta:
            connections_closed.labels(reason).inc(delta)
            _exported.closed[reason] = n
            closed += delta
    if opened != closed:
        connections_open.inc(opened - closed)


def observe_many(histogram: Histogram, values: list[float]) -> None:
    """``histogram.observe(v)`` for each value (an unlabelled histogram), taking each
    touched bucket's lock once instead of two locks per value: the message path
    observes once per message, in batches."""
    bounds = getattr(histogram, "_upper_bounds", None)
    buckets = getattr(histogram, "_buckets", None)
    total = getattr(histogram, "_sum", None)
    if bounds is None or buckets is None or total is None:  # not the client version we know
        for v in values:
            histogram.observe(v)
        return
    counts = [0] * len(bounds)
    for v in values:
        counts[bisect_left(bounds, v)] += 1  # the first bucket with v <= bound, as observe()
    total.inc(sum(values))
    for i, n in enumerate(counts):
        if n:
            buckets[i].inc(n)


_CLOSE_REASONS = {
    1000: "normal",
    1001: "going_away",
    1006: "abnormal",
    1008: "policy",
    1009: "too_big",
    1012: "service_restart",
    4000: "idle",
    4001: "revoked",
    4002: "kicked",
    4008: "slow_consumer",
}


def close_reason(code: int | None) -> str:
    """A bounded label for a WebSocket close code (clients may send any code)."""
    if code is None:
        return "abnormal"
    return _CLOSE_REASONS.get(code, "other")


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def render() -> tuple[bytes, str]:
    """The exposition text of this process, or of every worker in multiprocess mode."""
    sync_hot()
    path = multiprocess_dir()
    if path is None:
        return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=path)  # type: ignore[no-untyped-call]
    return generate_latest(registry), CONTENT_TYPE_LATEST


def mark_process_dead(pid: int) -> None:
    """Supervisor side: drop a dead worker's live gauges (its counters keep counting)."""
    path = multiprocess_dir()
    if path is None:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, path)  # type: ignore[no-untyped-call]
