"""The daemon: builds the graph from Settings, runs it in one TaskGroup, stops in order and exits 0.

Flow (DESIGN.md): WebSocket sessions and REST pollers hand raw frames/bodies
to the venue adapters; their events go on the bus; sync handlers (live state,
rule engine) see every event; alerts go back on the bus and reach the sinks
through bounded consumers. Metrics and HTTP read ``stats()`` snapshots.

Shutdown: SIGTERM or SIGINT set an Event; the TaskGroup's body, which waits
for it, raises ``_Stop``, which ends the TaskGroup (sessions close their sockets as they are
cancelled); then the bus is closed, the sinks drain their queues under a
deadline, the HTTP server and the REST client close, and ``run`` returns 0.
A second SIGINT exits at once (status 130).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from streamer.aggregate.state import LiveState
from streamer.alerts.rules import RuleEngine, rules_from_settings
from streamer.alerts.sinks import StdoutSink
from streamer.api import HttpApi
from streamer.bus.memory import MemoryBus
from streamer.config import Settings
from streamer.exchanges.base import FrameError, RestCall, Stream
from streamer.exchanges.binance import BinanceAdapter
from streamer.instruments import InstrumentStore
from streamer.metrics import make_registry
from streamer.model import Event
from streamer.transport.rest import RestClient, RestError, VenueLimits
from streamer.transport.ws import WsSession

log = logging.getLogger("streamer.daemon")

# Expected cadence of each channel's frames, seconds (None: may be silent for minutes).
# Binance docs: markPrice@1s every 1 s, !ticker@arr every 1 s, forceOrder only when there is a liquidation.
CADENCE_S: dict[str, float | None] = {"funding": 1.0, "ticker": 2.0, "liquidations": None, "book": None}
FRAME_ERROR_SAMPLES = 20


class _Stop(Exception):
    """Raised in the TaskGroup's body once the stop Event is set."""


@dataclass
class SessionPlan:
    """One WebSocket session of a venue: its URL and the streams it carries."""

    exchange: str
    market: str
    name: str
    url: str
    streams: list[Stream]
    keys: dict[tuple[str, str | None], str] = field(default_factory=dict)


def plan_binance(settings: Settings, adapter: BinanceAdapter) -> list[SessionPlan]:
    """Sessions for Binance: per market (UM, CM), all-market streams plus per-symbol ones, sharded."""
    cfg = settings.exchanges.binance
    per_conn = adapter.heartbeat().max_streams_per_connection
    plans: list[SessionPlan] = []
    for market, url in (("um", cfg.um_ws_url), ("cm", cfg.cm_ws_url)):
        symbols = [s for s in cfg.symbols if adapter.market_of(s) == market]
        streams: list[Stream] = []
        for channel in cfg.channels:
            # CM has no all-market mark-price stream (exchanges.md §1.2): funding is per symbol there.
            all_market = cfg.all_market and (channel in ("liquidations", "ticker") or (
                channel == "funding" and market == "um"))
            if all_market:
                streams.append(Stream(channel, None, market))
            elif channel == "book" or symbols:
                streams.extend(Stream(channel, s, market) for s in symbols)
        if not streams or (market == "cm" and not symbols and not cfg.all_market):
            continue
        for index in range(0, len(streams), per_conn):
            chunk = streams[index : index + per_conn]
            plan = SessionPlan("binance", market, f"binance-{market}-{index // per_conn}", url, chunk)
            for s in chunk:
                plan.keys[(s.channel, s.raw_symbol)] = adapter.stream_key(s)
            plans.append(plan)
    return plans


class Daemon:
    """The wired graph. Build it, then ``await run(stop)``.

    Args:
        settings: typed settings.
        out: where the stdout sink writes alert JSON lines.
        rest_limits: per-venue REST budgets (tests shrink them).
        ws_backoff: reconnect-delay factory for the sessions (tests shrink it).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        out: BinaryIO | None = None,
        ws_backoff: Callable[[], Any] | None = None,
    ) -> None:
        self.settings = settings
        self.started_ms = time.time_ns() // 1_000_000
        self.bus = MemoryBus()
        self.state = LiveState()
        self.engine = RuleEngine(rules_from_settings(settings.rules))
        self.bus.add_handler(self.state.on_event)
        self.bus.add_handler(self._on_event_for_rules)
        self.alert_consumer = self.bus.consumer(
            "stdout", maxsize=settings.bus.consumer_queue_size, overflow="drop_newest", types=["alert"]
        )
        self.sink = StdoutSink(out if out is not None else sys.stdout.buffer)
        self.adapters: dict[str, BinanceAdapter] = {}
        self.sessions: list[tuple[SessionPlan, WsSession]] = []
        self.frame_error_samples = 0
        self.rest = RestClient(
            {
                "binance": VenueLimits(
                    capacity=max(settings.exchanges.binance.rest_weight_per_min / 10, 10),
                    refill_per_s=settings.exchanges.binance.rest_weight_per_min / 60,
                    used_weight_header="X-MBX-USED-WEIGHT-1M",
                    used_weight_limit=settings.exchanges.binance.rest_weight_per_min,
                )
            }
        )
        self.store = InstrumentStore(Path(settings.state_dir).expanduser())
        self.rest_errors = 0
        self.registry = make_registry(self.snapshot)
        self.api = HttpApi(
            self.registry,
            self.readiness,
            {
                "funding": self.state.funding_snapshot,
                "state": self.state.snapshot,
                "sessions": self.sessions_snapshot,
                "alerts": self.engine.snapshot,
            },
            host=settings.http.host,
            port=settings.http.port,
        )
        self._ws_backoff = ws_backoff
        self.started = asyncio.Event()
        if settings.exchanges.binance.enabled:
            adapter = BinanceAdapter()
            self.adapters["binance"] = adapter
            for plan in plan_binance(settings, adapter):
                self.sessions.append((plan, self._session(plan, adapter)))

    # ------------------------------------------------------------------ wiring

    def _on_event_for_rules(self, event: Event) -> None:
        for alert in self.engine.on_event(event, self.state):
            self.bus.publish(alert)

    def _session(self, plan: SessionPlan, adapter: BinanceAdapter) -> WsSession:
        hb = adapter.heartbeat()
        keys = plan.keys
        all_keys = {ch: key for (ch, sym), key in keys.items() if sym is None}
        publish = self.bus.publish

        def on_frame(frame: str | bytes, recv_ms: int) -> None:
            try:
                events = adapter.parse(frame, recv_ms)
            except FrameError as exc:
                if self.frame_error_samples < FRAME_ERROR_SAMPLES:
                    self.frame_error_samples += 1
                    log.warning("%s: unreadable frame skipped (%s): %s; frame starts %r", plan.name, exc.reason,
                                exc.detail, frame[:200])
                return
            channel = adapter.last_channel
            if channel is not None:
                key = all_keys.get(channel)
                if key is None and events:
                    key = keys.get((channel, events[0].raw_symbol))  # type: ignore[attr-defined]
                if key is not None:
                    session.touch(key, recv_ms)
            for event in events:
                publish(event)

        kwargs: dict[str, Any] = {}
        if self._ws_backoff is not None:
            kwargs["backoff"] = self._ws_backoff
        session = WsSession(
            name=plan.name,
            url=plan.url,
            on_frame=on_frame,
            subscribe=lambda: adapter.subscribe(plan.streams),
            ping_payload=hb.ping_payload,
            ping_interval_s=hb.ping_interval_s,
            ws_ping_interval_s=hb.ws_ping_interval_s,
            ws_ping_timeout_s=hb.ws_ping_timeout_s,
            max_lifetime_s=hb.max_lifetime_s,
            subscribe_rate_per_s=hb.max_messages_per_s,
            **kwargs,
        )
        for s in plan.streams:
            session.expect(keys[(s.channel, s.raw_symbol)], CADENCE_S.get(s.channel))
        return session

    def _rest_base(self, exchange: str, market: str) -> str:
        cfg = self.settings.exchanges.binance
        return cfg.cm_rest_url if market == "cm" else cfg.um_rest_url

    async def fetch(self, exchange: str, call: RestCall) -> tuple[bytes, int]:
        """One adapter RestCall through the rate-limited client."""
        url = self._rest_base(exchange, call.market).rstrip("/") + call.path
        return await self.rest.get_json(exchange, url, call.params or None, weight=call.weight, ttl_s=call.ttl_s)

    async def fetch_and_publish(self, exchange: str, call: RestCall) -> list[Event]:
        """Fetch, parse with the adapter, publish; errors are logged and counted, never raised."""
        adapter = self.adapters[exchange]
        try:
            body, recv_ms = await self.fetch(exchange, call)
            events = adapter.parse_rest(call.endpoint, body, recv_ms)
        except (RestError, FrameError, OSError, TimeoutError) as exc:
            self.rest_errors += 1
            log.warning("%s %s %s: %s", exchange, call.endpoint, call.params, exc)
            return []
        for event in events:
            self.bus.publish(event)
        return events

    # ------------------------------------------------------------------ tasks

    async def load_instruments(self) -> None:
        for name, adapter in self.adapters.items():

            async def fetch_body(call: RestCall, name: str = name) -> bytes:
                body, _ = await self.fetch(name, call)
                return body

            report = await self.store.load(adapter, adapter.rest_instruments(), fetch_body)
            log.info("%s instruments: %d known (fetched %s, from cache %s, failed %s)", name, report.instruments,
                     report.fetched, list(report.from_cache), list(report.failed))

    async def _instruments_refresher(self) -> None:
        interval = self.settings.exchanges.binance.instruments_refresh_s
        while True:
            await asyncio.sleep(interval)
            await self.load_instruments()

    async def _open_interest_poller(self) -> None:
        """Binance streams no open interest: poll each configured symbol, spread over the interval."""
        cfg = self.settings.exchanges.binance
        adapter = self.adapters["binance"]
        symbols = list(cfg.symbols)
        if not symbols:
            return
        for raw in symbols:
            await self._seed_oi_history(adapter, raw)
        pause = cfg.open_interest_poll_s / len(symbols)
        while True:
            for raw in symbols:
                call = adapter.rest_open_interest(raw, ttl_s=cfg.open_interest_poll_s / 2)
                await self.fetch_and_publish("binance", call)
                await asyncio.sleep(pause)

    async def _seed_oi_history(self, adapter: BinanceAdapter, raw: str) -> None:
        call = adapter.rest_open_interest_hist(raw, period="1h", limit=169)
        try:
            body, recv_ms = await self.fetch("binance", call)
            events = adapter.parse_rest(call.endpoint, body, recv_ms)
        except (RestError, FrameError, OSError, TimeoutError) as exc:
            log.info("binance %s: no open-interest history (%s); changes fill in as the process runs", raw, exc)
            return
        self.state.seed_open_interest(events)

    async def _initial_rest(self) -> None:
        """Funding, mark and index over REST before the first WebSocket frame arrives."""
        adapter = self.adapters["binance"]
        for market in ("um", "cm"):
            await self.fetch_and_publish("binance", adapter.rest_premium_index(market))

    async def run(self, stop: asyncio.Event) -> int:
        """Run until ``stop`` is set; returns the exit status (0)."""
        if self.settings.http.enabled:
            await self.api.start()
        self.started.set()
        sink_task = asyncio.create_task(self.sink.run(self.alert_consumer), name="sink:stdout")
        try:
            if self.adapters:
                await self.load_instruments()
            async with asyncio.TaskGroup() as tg:
                for plan, session in self.sessions:
                    tg.create_task(session.run(), name=f"ws:{plan.name}")
                if "binance" in self.adapters:
                    tg.create_task(self._initial_rest(), name="rest:binance:premium")
                    tg.create_task(self._open_interest_poller(), name="rest:binance:oi")
                    tg.create_task(self._instruments_refresher(), name="rest:binance:instruments")
                # The stop signal is awaited in the group's body, not in a child: on Python 3.11 a child
                # that raises while the body sits in __aexit__ leaves this task's cancel count raised.
                await stop.wait()
                raise _Stop
        except* _Stop:
            log.info("stopping")
        finally:
            self.bus.close()
            try:
                async with asyncio.timeout(5):
                    await sink_task
            except TimeoutError:
                sink_task.cancel()
                log.error("stdout sink did not drain within 5 s")
            await self.rest.close()
            await self.api.stop()
        return 0

    # ------------------------------------------------------------------ observability

    def sessions_snapshot(self) -> dict[str, Any]:
        now = time.time_ns() // 1_000_000
        out = {}
        for plan, session in self.sessions:
            st = session.stats()
            out[plan.name] = {
                "exchange": plan.exchange,
                "url": st.url,
                "state": st.state,
                "connects": st.connects,
                "reconnects": st.reconnects,
                "frames": st.frames,
                "bytes": st.bytes,
                "stalls": st.stalls,
                "last_error": st.last_error,
                "last_frame_age_s": (now - st.last_frame_ms) / 1000 if st.last_frame_ms else None,
                "streams": {
                    k: {"cadence_s": v.cadence_s, "frames": v.frames, "stale": v.stale,
                        "age_s": (now - v.last_ms) / 1000 if v.last_ms else None}
                    for k, v in st.streams.items()
                },
            }
        return out

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Ready once every session is open and every stream with an expected cadence has delivered data.

        Streams that may be silent for minutes (liquidations) only need their
        session to have delivered any frame.
        """
        waiting = []
        for plan, session in self.sessions:
            st = session.stats()
            if st.last_frame_ms is None:
                waiting.append(plan.name)
                continue
            waiting.extend(
                f"{plan.name}:{key}" for key, s in st.streams.items() if s.cadence_s is not None and s.last_ms is None
            )
        return not waiting and bool(self.sessions), {"waiting_for": waiting}

    def snapshot(self) -> dict[str, Any]:
        """The stats snapshot the Prometheus collector reads (schema in ``streamer.metrics``)."""
        sessions = []
        for name, s in self.sessions_snapshot().items():
            sessions.append({**s, "session": name, "streams": {k: v["age_s"] for k, v in s["streams"].items()}})
        adapters = [{"exchange": name, **a.stats.as_dict()} for name, a in self.adapters.items()]
        rest = [
            {"exchange": venue, "requests": v.requests, "retries": v.retries, "cache_hits": v.cache_hits,
             "rate_limited": v.rate_limited_429 + v.banned_418, "errors": v.errors_by_status}
            for venue, v in self.rest.stats().items()
        ]
        ready, _ = self.readiness()
        return {
            "sessions": sessions,
            "adapters": adapters,
            "rest": rest,
            "bus": self.bus.stats(),
            "alerts": self.engine.counts(),
            "market": self.state.market_gauges(self._gauge_symbols()),
            "ready": ready,
        }

    def _gauge_symbols(self) -> set[tuple[str, str]]:
        """(exchange, raw_symbol) pairs that get market gauges: the configured symbols (bounded labels)."""
        return {("binance", s) for s in self.settings.exchanges.binance.symbols}


def install_signal_handlers(stop: asyncio.Event) -> None:
    """First SIGTERM/SIGINT: graceful stop. Second SIGINT: exit at once with 130."""
    loop = asyncio.get_running_loop()
    seen = {"int": 0}

    def on_term() -> None:
        stop.set()

    def on_int() -> None:
        seen["int"] += 1
        if seen["int"] > 1:
            os._exit(130)
        stop.set()

    with contextlib.suppress(NotImplementedError):
        loop.add_signal_handler(signal.SIGTERM, on_term)
        loop.add_signal_handler(signal.SIGINT, on_int)


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


async def run_daemon(settings: Settings) -> int:
    """``streamer run``: the daemon until SIGTERM/SIGINT."""
    stop = asyncio.Event()
    install_signal_handlers(stop)
    daemon = Daemon(settings)
    return await daemon.run(stop)
