"""Prometheus collectors: one ``StreamerCollector`` turns the daemon's stats snapshot into metric families.

Metrics are read, not pushed (STYLE.md habit 9): components keep plain
counters and expose ``stats()``; the daemon assembles them into one snapshot
(the schema below), and this collector turns it into metric families at scrape
time, on the daemon's own ``CollectorRegistry``. This module imports nothing
from the rest of ``streamer``.

Snapshot schema (every key optional)::

    sessions: [{exchange, session, url, state, connects, reconnects, frames, bytes, stalls,
                last_frame_age_s, streams: {stream: age_s | None}, stream_cadences: {stream: cadence_s | None}}]
    adapters: [{exchange, frames, events, control, ignored, errors: {reason: n}, unmapped: {reason: n}}]
    rest:     [{exchange, requests, retries, cache_hits, rate_limited, errors: {status: n}}]
    bus:      {published, by_type: {type: n}, consumers: {name: {depth, maxsize, dropped}},
               nats?: {published, duplicates, publish_errors, buffer_dropped, consumed, acked, redeliveries,
                       alerts_suppressed, reconnects, handler_errors, buffered, pending_acks, connected}}
    alerts:   {rule: {status: n}}
    sinks:    {sink: {written, errors, outbox_depth?, oldest_undelivered_age_s?}}
    market:   {funding_rate_8h: [(exchange, symbol, value)], open_interest_usd: [...],
               mark_price: [...], liquidations_usd: [(exchange, symbol, side, window_s, value)]}
    recorder: {records, dropped, bytes, files_deleted, errors}   (only while recording)
    ready: bool
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

PREFIX = "streamer_"
STATES = ("connecting", "subscribing", "open", "backoff", "closed")

Snapshot = Mapping[str, Any]

NATS_COUNTERS = {
    "published": "Events stored in JetStream by this process (duplicates included)",
    "duplicates": "Publishes JetStream reported as duplicates (another ingest or a retry stored it first)",
    "publish_errors": "Failed publish batches (retried with backoff)",
    "buffer_dropped": "Events dropped because the publish buffer was full (server unreachable too long)",
    "consumed": "Messages read from the durable consumer",
    "acked": "Messages acked after processing",
    "redeliveries": "Messages delivered more than once (not acked in time, or after a restart)",
    "alerts_suppressed": "Alerts not shown again because their id:status is already in the stream",
    "reconnects": "Reconnections to the NATS server",
    "handler_errors": "Events whose handler raised (a bug; logged, the message is acked)",
}
NATS_GAUGES = {
    "buffered": "Events waiting to be published to JetStream",
    "pending_acks": "Messages processed, waiting for their alerts to be stored before the ack",
    "connected": "1 when connected to the NATS server",
}


def _gauge(name: str, doc: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(PREFIX + name, doc, labels=labels)


def _counter(name: str, doc: str, labels: list[str]) -> CounterMetricFamily:
    return CounterMetricFamily(PREFIX + name, doc, labels=labels)


class StreamerCollector(Collector):
    """Reads ``snapshot()`` on every scrape and yields fresh metric families."""

    def __init__(self, snapshot: Callable[[], Snapshot]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        snap = self._snapshot()
        yield from self._sessions(snap.get("sessions", []))
        yield from self._adapters(snap.get("adapters", []))
        yield from self._rest(snap.get("rest", []))
        yield from self._bus(snap.get("bus", {}))
        yield from self._alerts(snap.get("alerts", {}))
        yield from self._sinks(snap.get("sinks", {}))
        yield from self._market(snap.get("market", {}))
        if "recorder" in snap:
            yield from self._recorder(snap["recorder"])
        ready = _gauge("ready", "1 once every configured stream has delivered data", [])
        ready.add_metric([], 1.0 if snap.get("ready") else 0.0)
        yield ready

    @staticmethod
    def _sessions(sessions: list[Mapping[str, Any]]) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        labels = ["exchange", "session"]
        state = _gauge("ws_connection_state", "WebSocket session state (1 for the current state)",
                       [*labels, "state"])
        up = _gauge("ws_connected", "1 when the WebSocket session is open", labels)
        connects = _counter("ws_connects", "WebSocket connections opened", labels)
        reconnects = _counter("ws_reconnects", "WebSocket reconnections after a failure or close", labels)
        frames = _counter("ws_frames", "WebSocket frames received", labels)
        nbytes = _counter("ws_received_bytes", "WebSocket bytes received", labels)
        stalls = _counter("ws_stalls", "Stalls detected by the staleness watchdog", labels)
        age = _gauge("ws_last_frame_age_seconds", "Seconds since the session's last frame", labels)
        stream_age = _gauge("stream_last_frame_age_seconds", "Seconds since the last frame of one stream",
                            [*labels, "stream"])
        cadence = _gauge("stream_cadence_seconds",
                         "Expected longest gap between frames of one stream (streams that may stay silent: absent)",
                         [*labels, "stream"])
        for s in sessions:
            lv = [str(s.get("exchange", "")), str(s.get("session", ""))]
            cur = s.get("state", "")
            for name in STATES:
                state.add_metric([*lv, name], 1.0 if cur == name else 0.0)
            up.add_metric(lv, 1.0 if cur == "open" else 0.0)
            connects.add_metric(lv, float(s.get("connects", 0)))
            reconnects.add_metric(lv, float(s.get("reconnects", 0)))
            frames.add_metric(lv, float(s.get("frames", 0)))
            nbytes.add_metric(lv, float(s.get("bytes", 0)))
            stalls.add_metric(lv, float(s.get("stalls", 0)))
            if s.get("last_frame_age_s") is not None:
                age.add_metric(lv, float(s["last_frame_age_s"]))
            for stream, stream_age_s in (s.get("streams") or {}).items():
                if stream_age_s is not None:
                    stream_age.add_metric([*lv, stream], float(stream_age_s))
            for stream, cadence_s in (s.get("stream_cadences") or {}).items():
                if cadence_s is not None:
                    cadence.add_metric([*lv, stream], float(cadence_s))
        yield from (state, up, connects, reconnects, frames, nbytes, stalls, age, stream_age, cadence)

    @staticmethod
    def _adapters(adapters: list[Mapping[str, Any]]) -> Iterator[CounterMetricFamily]:
        frames = _counter("adapter_frames", "Frames handed to the exchange adapter", ["exchange"])
        events = _counter("events_parsed", "Normalized events produced by the adapter", ["exchange"])
        errors = _counter("parse_errors", "Frames the adapter could not read (counted and skipped)",
                          ["exchange", "reason"])
        unmapped = _counter("unmapped", "Events with fields left null for want of instrument metadata",
                            ["exchange", "reason"])
        for a in adapters:
            ex = str(a.get("exchange", ""))
            frames.add_metric([ex], float(a.get("frames", 0)))
            events.add_metric([ex], float(a.get("events", 0)))
            for reason, n in (a.get("errors") or {}).items():
                errors.add_metric([ex, str(reason)], float(n))
            for reason, n in (a.get("unmapped") or {}).items():
                unmapped.add_metric([ex, str(reason)], float(n))
        yield from (frames, events, errors, unmapped)

    @staticmethod
    def _rest(rest: list[Mapping[str, Any]]) -> Iterator[CounterMetricFamily]:
        requests = _counter("rest_requests", "REST requests sent", ["exchange"])
        retries = _counter("rest_retries", "REST retries", ["exchange"])
        hits = _counter("rest_cache_hits", "REST answers served from the TTL cache", ["exchange"])
        limited = _counter("rest_rate_limited", "REST 429/418 answers", ["exchange"])
        errors = _counter("rest_errors", "REST error answers by HTTP status", ["exchange", "status"])
        for r in rest:
            ex = str(r.get("exchange", ""))
            requests.add_metric([ex], float(r.get("requests", 0)))
            retries.add_metric([ex], float(r.get("retries", 0)))
            hits.add_metric([ex], float(r.get("cache_hits", 0)))
            limited.add_metric([ex], float(r.get("rate_limited", 0)))
            for status, n in (r.get("errors") or {}).items():
                errors.add_metric([ex, str(status)], float(n))
        yield from (requests, retries, hits, limited, errors)

    @staticmethod
    def _bus(bus: Mapping[str, Any]) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        published = _counter("bus_events", "Events published on the bus by type", ["type"])
        for typ, n in (bus.get("by_type") or {}).items():
            published.add_metric([str(typ)], float(n))
        depth = _gauge("bus_queue_depth", "Events waiting in a consumer's queue", ["consumer"])
        size = _gauge("bus_queue_capacity", "A consumer queue's bound", ["consumer"])
        dropped = _counter("bus_dropped", "Events dropped by a consumer's overflow policy", ["consumer"])
        for name, c in (bus.get("consumers") or {}).items():
            depth.add_metric([name], float(c.get("depth", 0)))
            size.add_metric([name], float(c.get("maxsize", 0)))
            dropped.add_metric([name], float(c.get("dropped", 0)))
        yield from (published, depth, size, dropped)
        nats = bus.get("nats")
        if nats:  # bus.backend: nats (streamer.bus.nats)
            for key, doc in NATS_COUNTERS.items():
                fam = _counter(f"nats_{key}", doc, [])
                fam.add_metric([], float(nats.get(key, 0)))
                yield fam
            for key, doc in NATS_GAUGES.items():
                fam = _gauge(f"nats_{key}", doc, [])
                fam.add_metric([], float(nats.get(key, 0)))
                yield fam

    @staticmethod
    def _alerts(alerts: Mapping[str, Mapping[str, int]]) -> Iterator[CounterMetricFamily]:
        fam = _counter("alerts", "Alerts raised by rule and status", ["rule", "status"])
        for rule, by_status in alerts.items():
            for status, n in by_status.items():
                fam.add_metric([rule, status], float(n))
        yield fam

    @staticmethod
    def _sinks(sinks: Mapping[str, Mapping[str, Any]]) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        written = _counter("sink_deliveries", "Alerts a sink delivered (written, posted and accepted)", ["sink"])
        errors = _counter("sink_failures", "Failed delivery attempts of a sink (retried)", ["sink"])
        depth = _gauge("outbox_depth", "Alerts in the durable outbox not yet delivered, per webhook sink", ["sink"])
        age = _gauge("outbox_oldest_undelivered_age_seconds", "Age of the oldest undelivered alert", ["sink"])
        for name, st in sinks.items():
            written.add_metric([name], float(st.get("written", 0)))
            errors.add_metric([name], float(st.get("errors", 0)))
            if "outbox_depth" in st:
                depth.add_metric([name], float(st["outbox_depth"]))
                oldest = st.get("oldest_undelivered_age_s")
                age.add_metric([name], float(oldest) if oldest is not None else 0.0)
        yield from (written, errors, depth, age)

    @staticmethod
    def _recorder(st: Mapping[str, Any]) -> Iterator[CounterMetricFamily]:
        specs = (
            ("records", "recorder_records", "Records written by the recorder"),
            ("dropped", "recorder_dropped", "Records dropped: the writer was behind (queue full) or closed"),
            ("bytes", "recorder_written_bytes", "Compressed bytes written by the recorder"),
            ("files_deleted", "recorder_files_deleted", "Oldest recording files deleted to stay within max_bytes"),
            ("errors", "recorder_errors", "Recorder disk errors (that batch lost, recording goes on)"),
        )
        for key, name, doc in specs:
            family = _counter(name, doc, [])
            family.add_metric([], float(st.get(key, 0)))
            yield family

    @staticmethod
    def _market(market: Mapping[str, Any]) -> Iterator[GaugeMetricFamily]:
        labels = ["exchange", "symbol"]
        specs = (
            ("funding_rate_8h", "funding_rate_8h_ratio", "Funding rate per 8 h, fraction"),
            ("open_interest_usd", "open_interest_usd", "Open interest, USD"),
            ("mark_price", "mark_price", "Mark price, quote currency"),
        )
        for key, name, doc in specs:
            fam = _gauge(name, doc, labels)
            for exchange, symbol, value in market.get(key, []):
                if value is not None:
                    fam.add_metric([exchange, symbol], float(value))
            yield fam
        liq = _gauge("liquidations_usd", "Liquidated notional over a rolling window, USD",
                     [*labels, "side", "window"])
        for exchange, symbol, side, window_s, value in market.get("liquidations_usd", []):
            liq.add_metric([exchange, symbol, side, f"{int(window_s)}s"], float(value))
        yield liq


def make_registry(snapshot: Callable[[], Snapshot]) -> CollectorRegistry:
    """The daemon's own registry: the streamer collector and the process collector (not the global registry)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StreamerCollector(snapshot))
    ProcessCollector(namespace="", registry=registry)  # process_cpu_seconds_total, process_resident_memory_bytes
    return registry
