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
import dataclasses
import functools
import logging
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal

import aiohttp
import msgspec

from streamer.aggregate.state import LiveState
from streamer.alerts.alertmanager import AlertmanagerSink
from streamer.alerts.chat import ChatSink
from streamer.alerts.lifecycle import EpisodeJournal
from streamer.alerts.outbox import Outbox
from streamer.alerts.rules import RuleEngine, rules_from_settings
from streamer.alerts.sinks import StdoutSink
from streamer.alerts.webhook import sinks_from
from streamer.api import HttpApi
from streamer.bus.memory import MemoryBus, QueueConsumer
from streamer.config import Settings
from streamer.exchanges import ADAPTERS
from streamer.exchanges.base import Adapter, FrameError, RestCall, Stream
from streamer.instruments import InstrumentStore
from streamer.metrics import make_registry
from streamer.model import Alert, Event, Liquidation
from streamer.record import LinkBook, Recorder
from streamer.transport.rest import RestClient, RestError, VenueLimits
from streamer.transport.ws import WsSession, wall_ms
from streamer.web.board import dashboard_state
from streamer.web.hub import EventHub

log = logging.getLogger("streamer.daemon")

# Expected cadence of a channel's frames when the adapter does not say (``CADENCE_S``), seconds;
# None: may be silent for minutes (liquidations).
DEFAULT_CADENCE_S: dict[str, float | None] = {
    "funding": 2.0, "mark": 2.0, "ticker": 2.0, "open_interest": 10.0, "index": 10.0, "book": None,
    "liquidations": None, "options": 10.0,
}
FRAME_ERROR_SAMPLES = 20
COVER_CHECK_S = 5.0
LIQUIDATION_KEYS_KEPT = 100_000
STALE_FACTOR = 2.0  # a session whose cadenced streams are all silent for 2x their cadence is stalled: reconnect
READY_GRACE_S = 30.0  # /readyz: a session down (or all its cadenced streams stale) longer than this = not ready


Role = Literal["ingest", "aggregate", "all"]
ROLES: tuple[str, ...] = ("ingest", "aggregate", "all")


def bus_from_settings(settings: Settings, role: Role = "all") -> Any:
    """The bus of ``bus.backend`` for a process role (docs/nats.md).

    ``memory`` runs only as ``all``. ``nats``: ingest publishes market events to JetStream,
    aggregate consumes them (durable consumer) and publishes alerts, all does both.

    Raises:
        ValueError: a split role on the in-memory bus, or an unknown role.
    """
    if role not in ROLES:
        raise ValueError(f"--role {role!r}: expected one of {', '.join(ROLES)}")
    if settings.bus.backend == "memory":
        if role != "all":
            raise ValueError(f"--role {role} needs bus.backend: nats (the in-memory bus connects nothing "
                             "across processes); see docs/nats.md")
        return MemoryBus()
    from streamer.bus.nats import NatsBus, NatsOptions

    options = NatsOptions(**msgspec.structs.asdict(settings.bus.nats))
    return NatsBus(options, publish_market=role != "aggregate", consume=role != "ingest")


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

    @functools.cached_property
    def carries_liquidations(self) -> bool:
        """Whether a liquidation stream is among the session's streams (its uptime is alert coverage)."""
        return any(s.channel == "liquidations" for s in self.streams)


@dataclass
class VenueWiring:
    """What the daemon needs of one venue: its adapter and where to reach it.

    Attributes:
        name: venue name.
        adapter: the venue's adapter.
        ws_urls: WebSocket URL per sub-market (``adapter.markets``); a market without a URL is not used.
        rest_urls: REST base URL per sub-market; ``""`` is the default for every market.
        symbols: raw symbols configured.
        channels: channels configured.
        all_market: use venue-wide streams where the venue has them.
        limits: REST budget.
        instruments_refresh_s: metadata refresh period.
        open_interest_poll_s: REST open-interest poll period, for venues that stream none (Binance).
    """

    name: str
    adapter: Adapter
    ws_urls: dict[str, str]
    rest_urls: dict[str, str]
    symbols: list[str]
    channels: list[str]
    all_market: bool
    limits: VenueLimits
    instruments_refresh_s: float
    open_interest_poll_s: float | None = None

    def rest_url(self, market: str) -> str:
        return self.rest_urls.get(market) or self.rest_urls[""]


def venues_from_settings(settings: Settings) -> list[VenueWiring]:
    """The enabled venues, each with a fresh adapter."""
    ex = settings.exchanges
    out: list[VenueWiring] = []
    if ex.binance.enabled:
        b = ex.binance
        out.append(VenueWiring(
            "binance", ADAPTERS["binance"](), {"um": b.um_ws_url, "cm": b.cm_ws_url},
            {"um": b.um_rest_url, "cm": b.cm_rest_url, "": b.um_rest_url}, list(b.symbols), list(b.channels),
            b.all_market,
            VenueLimits(capacity=max(b.rest_weight_per_min / 10, 10), refill_per_s=b.rest_weight_per_min / 60,
                        used_weight_header="X-MBX-USED-WEIGHT-1M", used_weight_limit=b.rest_weight_per_min),
            b.instruments_refresh_s, b.open_interest_poll_s,
        ))
    if ex.bybit.enabled and "bybit" in ADAPTERS:
        y = ex.bybit
        out.append(VenueWiring(
            "bybit", ADAPTERS["bybit"](),
            {"linear": y.linear_ws_url, "inverse": y.inverse_ws_url, "option": y.option_ws_url},
            {"": y.rest_url}, list(y.symbols), list(y.channels), False,
            VenueLimits(capacity=max(y.rest_requests_per_s * 2, 5), refill_per_s=y.rest_requests_per_s,
                        remaining_header="X-Bapi-Limit-Status", remaining_limit_header="X-Bapi-Limit"),
            y.instruments_refresh_s,
        ))
    if ex.okx.enabled and "okx" in ADAPTERS:
        o = ex.okx
        out.append(VenueWiring(
            "okx", ADAPTERS["okx"](), {"public": o.public_ws_url}, {"": o.rest_url}, list(o.symbols),
            list(o.channels), o.all_market,
            VenueLimits(capacity=max(o.rest_requests_per_s * 2, 5), refill_per_s=o.rest_requests_per_s),
            o.instruments_refresh_s,
        ))
    if ex.deribit.enabled and "deribit" in ADAPTERS:
        d = ex.deribit
        out.append(VenueWiring(
            "deribit", ADAPTERS["deribit"](), {"public": d.ws_url}, {"": d.rest_url}, list(d.symbols),
            list(d.channels), d.all_market,
            VenueLimits(capacity=max(d.rest_requests_per_s * 2, 5), refill_per_s=d.rest_requests_per_s),
            d.instruments_refresh_s,
        ))
    return out


LIQUIDATION_RULES = frozenset({"liquidation_cascade", "large_liquidation"})
"""Rules whose alerts carry liquidation ``coverage`` in ``details`` (``Daemon._with_coverage``)."""

CLOSED_VENUES = {"bitmex": "BitMEX closed on 2026-09-23 04:00 UTC (its announcement of 2026-07-23)"}


def closed_venues(settings: Settings) -> list[str]:
    """Venues enabled in the config that have ceased operating: they are left out, with a warning."""
    return [name for name in CLOSED_VENUES if getattr(settings.exchanges, name).enabled]


def plan_streams(venue: VenueWiring, market: str) -> list[Stream]:
    """The adapter's own plan where it has one, else venue-wide streams when asked, else per symbol."""
    adapter = venue.adapter
    planner = getattr(adapter, "plan_streams", None)
    if planner is not None:
        return list(planner(market, venue.symbols, venue.channels, venue.all_market))
    mine = [s for s in venue.symbols if adapter.market_of(s) == market]
    streams: list[Stream] = []
    for channel in venue.channels:
        if venue.all_market:
            try:
                adapter.stream_key(Stream(channel, None, market))  # type: ignore[arg-type]
            except ValueError:
                pass
            else:
                streams.append(Stream(channel, None, market))  # type: ignore[arg-type]
                continue
        for raw in mine:
            try:
                adapter.stream_key(Stream(channel, raw, market))  # type: ignore[arg-type]
            except ValueError as exc:
                log.warning("%s: %s", venue.name, exc)
                break
            streams.append(Stream(channel, raw, market))  # type: ignore[arg-type]
    return streams


def plan_sessions(venue: VenueWiring) -> list[SessionPlan]:
    """Sessions per sub-market, sharded within the venue's streams-per-connection limit."""
    per_conn = venue.adapter.heartbeat().max_streams_per_connection
    plans: list[SessionPlan] = []
    for market in venue.adapter.markets:
        url = venue.ws_urls.get(market)
        if not url:
            continue
        keyed: dict[str, Stream] = {}
        for s in plan_streams(venue, market):
            keyed.setdefault(venue.adapter.stream_key(s), s)
        streams = list(keyed.values())
        for index in range(0, len(streams), per_conn):
            chunk = streams[index : index + per_conn]
            plan = SessionPlan(venue.name, market, f"{venue.name}-{market}-{index // per_conn}", url, chunk)
            for s in chunk:
                plan.keys[(s.channel, s.raw_symbol)] = venue.adapter.stream_key(s)
            plans.append(plan)
    return plans


def _wants_all(venue: VenueWiring) -> bool:
    """``symbols: [all]``: every perpetual the venue lists (known once instruments are loaded)."""
    return any(s.lower() == "all" for s in venue.symbols)


def _plans_from_instruments(venue: VenueWiring) -> bool:
    """Whether the venue's streams depend on its instrument list: ``all`` symbols or option chains."""
    return _wants_all(venue) or "options" in venue.channels


class LiquidationDeduper:
    """Drops a liquidation already seen under its natural key (REST backfill/cover vs the socket).

    Key: (exchange, raw_symbol, ts, side, price, qty); the last ``keep`` keys are remembered.
    """

    def __init__(self, keep: int = LIQUIDATION_KEYS_KEPT) -> None:
        self._seen: set[tuple[object, ...]] = set()
        self._order: deque[tuple[object, ...]] = deque()
        self._keep = keep
        self.duplicates = 0

    def first_time(self, ev: Liquidation) -> bool:
        key = (ev.exchange, ev.raw_symbol, ev.ts, ev.side, ev.price, ev.qty)
        if key in self._seen:
            self.duplicates += 1
            return False
        self._seen.add(key)
        self._order.append(key)
        if len(self._order) > self._keep:
            self._seen.discard(self._order.popleft())
        return True


class Daemon:
    """The wired graph. Build it, then ``await run(stop)``.

    Args:
        settings: typed settings.
        out: where the stdout sink writes alert JSON lines.
        ws_backoff: reconnect-delay factory for the sessions (tests shrink it).
        role: ``all`` (everything in one process), ``ingest`` (sessions and REST publish to the bus; no
            rules, no sinks) or ``aggregate`` (live state, rules and sinks on what the bus delivers; no
            sessions). Split roles need ``bus.backend: nats``.
        bus: the bus to use (default: ``bus_from_settings(settings, role)``).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        out: BinaryIO | None = None,
        ws_backoff: Callable[[], Any] | None = None,
        role: Role = "all",
        bus: Any = None,
    ) -> None:
        self.settings = settings
        self.role = role
        rec = settings.record
        self.recorder = Recorder(rec.dir, rec.max_bytes) if rec.enabled else None
        self.links = LinkBook()  # sessions' connection state, as recorded (liquidation coverage)
        self.bus = bus if bus is not None else bus_from_settings(settings, role)
        self.state = LiveState()
        self.engine = RuleEngine(rules_from_settings(settings.rules))
        self.journal = EpisodeJournal(settings.state_dir)  # open episodes survive a restart (no re-fire)
        self.dedupe = LiquidationDeduper()
        self.ready_grace_s = READY_GRACE_S
        if role != "ingest":
            self.bus.add_handler(self.state.on_event)
            self.bus.add_handler(self._on_event_for_rules)
        self.alert_consumer = self.bus.consumer(
            "stdout", maxsize=settings.bus.consumer_queue_size, overflow="drop_newest", types=["alert"]
        )
        self.sink = StdoutSink(out if out is not None else sys.stdout.buffer)
        # Delivery sinks (webhooks through the durable outbox, Alertmanager, Slack/Discord): each has
        # its own bounded consumer, registered now so no alert published before run() is missed.
        sinks = settings.sinks
        self.outbox = (Outbox(Path(settings.state_dir).expanduser() / "alerts-outbox.sqlite")
                       if sinks.webhooks else None)
        named: list[tuple[str, Any]] = [(f"webhook:{w.key}", w) for w in sinks.webhooks]
        named += [(f"alertmanager:{i}", a) for i, a in enumerate(sinks.alertmanager)]
        named += [(f"chat:{c.kind}-{i}", c) for i, c in enumerate(sinks.chat)]
        if role == "ingest":
            named = []  # alerts are the aggregator's (its stdout consumer above never gets one here)
        self._sink_consumers: list[tuple[str, Any, QueueConsumer]] = [
            (name, spec, self.bus.consumer(name, maxsize=settings.bus.consumer_queue_size, overflow="drop_newest",
                                           types=["alert"]))
            for name, spec in named
        ]
        self.delivery_sinks: dict[str, Any] = {}
        for name in closed_venues(settings):
            log.warning("%s: %s; it is left out (no sessions, no reconnects). Recordings of it still "
                        "normalize: streamer normalize --exchange %s", name, CLOSED_VENUES[name], name)
        self.venues = {v.name: v for v in venues_from_settings(settings)}
        self._gauge_venues = dict(self.venues)  # configured symbols label the gauges, in every role
        if role == "aggregate":
            self.venues = {}  # the ingest processes own the venues
        self.adapters: dict[str, Adapter] = {name: v.adapter for name, v in self.venues.items()}
        self.sessions: list[tuple[SessionPlan, WsSession]] = []
        self.frame_error_samples = 0
        self.rest = RestClient({name: v.limits for name, v in self.venues.items()})
        self.store = InstrumentStore(Path(settings.state_dir).expanduser())
        self.rest_errors = 0
        self.cover_polls: dict[str, int] = {}
        self.backfills: dict[str, int] = {}
        self.registry = make_registry(self.snapshot)
        # the dashboard's SSE hub (its bus consumer exists only when the HTTP server does)
        self.events = (EventHub(self.bus, self.dashboard_state, lambda: self.state.recent_liquidations,
                                bus_queue=settings.bus.consumer_queue_size)
                       if settings.http.enabled else None)
        self.api = HttpApi(
            self.registry,
            self.readiness,
            {
                "funding": self.state.funding_snapshot,
                "options": self.state.options_snapshot,
                "state": self.state.snapshot,
                "sessions": self.sessions_snapshot,
                "alerts": self.engine.snapshot,
                "recent_liquidations": self.recent_liquidations,
                **({"dashboard": self.events.stats} if self.events is not None else {}),
            },
            host=settings.http.host,
            port=settings.http.port,
            token=settings.http.token,
            events=self.events,
        )
        self._ws_backoff = ws_backoff
        self.started = asyncio.Event()
        self.started_ms = int(time.time() * 1000)
        if not any(_plans_from_instruments(v) for v in self.venues.values()):
            self.plan()

    def recent_liquidations(self) -> dict[str, Any]:
        """``/state/recent_liquidations``: the ring of recent liquidations, and ``since_ms``, from when it holds
        every one received (the daemon's start while nothing was dropped, else the oldest held)."""
        data = self.state.recent_liquidations_snapshot()
        data["since_ms"] = self.started_ms if not data["dropped"] else data["oldest_ms"]
        return data

    def dashboard_state(self) -> dict[str, Any]:
        """The dashboard's ``state`` event (``streamer.web.board``); the clock is read only for countdowns/ages."""
        return dashboard_state(self.state, alerts=self.engine.snapshot(), sessions=self.sessions_snapshot(),
                               instruments=[i for a in self.adapters.values() for i in a.instruments()],
                               wall_ms=time.time_ns() // 1_000_000)

    def plan(self) -> None:
        """Build the WebSocket sessions (after instruments are loaded when a venue asks for ``all`` or options)."""
        if self.sessions:
            return
        for venue in self.venues.values():
            if _wants_all(venue):
                explicit = [s for s in venue.symbols if s.lower() != "all"]
                perps = [i.raw_symbol for i in venue.adapter.instruments() if i.kind == "perpetual"]
                venue.symbols = list(dict.fromkeys([*explicit, *perps]))
                log.info("%s: tracking all %d perpetuals", venue.name, len(venue.symbols))
            for plan in plan_sessions(venue):
                self.sessions.append((plan, self._session(plan, venue.adapter)))

    # ------------------------------------------------------------------ wiring

    def _on_event_for_rules(self, event: Event) -> None:
        alerts = self.engine.on_event(event, self.state)
        if alerts or self.journal.pending:
            alerts = [self._with_coverage(a) if a.rule in LIQUIDATION_RULES else a for a in alerts]
            for alert in self.journal.process(alerts, self.engine.now_ms):
                self.bus.publish(alert)

    def _with_coverage(self, alert: Alert) -> Alert:
        """Liquidation alerts carry, per venue involved, whether its feed is complete or sampled by the
        exchange and the share of the alert's window its liquidation socket has been up (the current
        connection's age over the window: a reconnect inside the window counts as down since then).
        ``lower_bound`` is true when a venue is sampled or was not up for the whole window."""
        details = dict(alert.details)
        venues = details.get("venues")
        names = sorted(venues) if isinstance(venues, dict) else [alert.exchange] if alert.exchange else []
        window_ms = max(alert.window_s, 1.0) * 1000
        coverage: dict[str, dict[str, object]] = {}
        self._sync_links()
        for name in names:
            adapter = self.adapters.get(name)
            shares = [0.0 if since is None else min(1.0, max(0.0, (alert.ts - since) / window_ms))
                      for since in self.links.liquidation_since(name)]
            coverage[name] = {"feed": getattr(adapter, "LIQUIDATION_FEED", "unknown"),
                              "socket_up_share": min(shares) if shares else None}
        details["coverage"] = coverage
        if alert.symbol is not None:
            moves = {name: self.state.prices.mark_move_pct(name, alert.symbol, int(window_ms), alert.ts)
                     for name in names}
            details["mark_move_pct"] = {name: move for name, move in moves.items() if move is not None}
        window_s = int(alert.window_s)
        if alert.symbol is not None and window_s in self.state.liquidations.windows_s:
            # both sides of the symbol across venues over the alert's window (live state's own windows)
            details["notional_by_side_usd"] = {
                side: self.state.liquidations.symbol_totals(alert.symbol, side, window_s, alert.ts).notional_usd
                for side in ("long", "short")}
        details["lower_bound"] = any(c["feed"] != "complete" or c["socket_up_share"] != 1.0
                                     for c in coverage.values())
        return msgspec.structs.replace(alert, details=details)

    def ingest(self, exchange: str, session: str, market: str, frame: str | bytes, recv_ms: int) -> list[Event] | None:
        """One raw WebSocket frame, live or replayed: recorded, parsed by the venue's adapter, its events
        published; None when the frame is unreadable (logged, sampled)."""
        if self.recorder is not None:
            self.recorder.ws(exchange, session, market, frame, recv_ms)
        try:
            events = self.adapters[exchange].parse(frame, recv_ms)
        except FrameError as exc:
            if self.frame_error_samples < FRAME_ERROR_SAMPLES:
                self.frame_error_samples += 1
                log.warning("%s: unreadable frame skipped (%s): %s; frame starts %r", session, exc.reason,
                            exc.detail, frame[:200])
            return None
        for event in events:
            self.publish(event)
        return events

    def ingest_rest(self, exchange: str, call: RestCall, body: bytes, recv_ms: int, *,
                    seed: bool = False) -> list[Event]:
        """One REST body, live or replayed: recorded, parsed, published (``seed``: seeds open-interest history
        instead). Raises FrameError on an unreadable body."""
        if self.recorder is not None:
            self.recorder.rest(exchange, call.market, call.endpoint, call.params, body, recv_ms, seed=seed)
        events = self.adapters[exchange].parse_rest(call.endpoint, body, recv_ms, call.params)
        if seed:
            self.state.seed_open_interest(events)
            return events
        for event in events:
            self.publish(event)
        return events

    def _sync_links(self) -> None:
        """Bring ``links`` up to date with the sessions, recording each change (a ``link`` marker)."""
        for plan, session in self.sessions:
            liq = plan.carries_liquidations
            since = session.connected_since_ms
            if self.links.update(plan.name, plan.exchange, liq, since) and self.recorder is not None:
                self.recorder.link(plan.exchange, plan.name, plan.market, liq, since)

    def publish(self, event: Event) -> None:
        """Put one market event on the bus (liquidations once per natural key)."""
        if isinstance(event, Liquidation) and not self.dedupe.first_time(event):
            return
        self.bus.publish(event)

    def _session(self, plan: SessionPlan, adapter: Adapter) -> WsSession:
        hb = adapter.heartbeat()
        keys = plan.keys
        all_keys = {ch: key for (ch, sym), key in keys.items() if sym is None}
        key_set = set(keys.values())
        ingest = self.ingest
        cadences = {**DEFAULT_CADENCE_S, **getattr(adapter, "CADENCE_S", {})}

        replies = getattr(adapter, "replies", None)  # frames the venue wants answered (Deribit test_request)
        on_connect = getattr(adapter, "on_connect_frames", None)  # sent before subscribing (Deribit heartbeat)

        def on_frame(frame: str | bytes, recv_ms: int) -> None:
            if replies is not None:
                for reply in replies(frame):
                    session.send(reply)
            events = ingest(plan.exchange, plan.name, plan.market, frame, recv_ms)
            if events is None:
                return
            # Which stream the frame came on: the adapter's own stream key where it keeps one (OKX),
            # else its channel, venue-wide or for the frame's symbol.
            key = getattr(adapter, "last_stream_key", None)
            if key not in key_set:
                key = None
                channel = adapter.last_channel
                if channel is not None:
                    key = all_keys.get(channel)
                    if key is None:
                        symbol = getattr(adapter, "last_symbol", None)
                        if symbol is None and events:
                            symbol = getattr(events[0], "raw_symbol", None)
                        key = keys.get((channel, symbol))
            if key is not None:
                session.touch(key, recv_ms)

        def subscribe() -> list[Any]:
            self._sync_links()  # just connected: the link marker precedes the connection's frames
            return [*(on_connect() if on_connect is not None else ()), *adapter.subscribe(plan.streams)]

        kwargs: dict[str, Any] = {"stale_factor": STALE_FACTOR}
        if self._ws_backoff is not None:
            kwargs["backoff"] = self._ws_backoff
        session = WsSession(
            name=plan.name,
            url=plan.url,
            on_frame=on_frame,
            subscribe=subscribe,
            ping_payload=hb.ping_payload,
            ping_interval_s=hb.ping_interval_s,
            ws_ping_interval_s=hb.ws_ping_interval_s,
            ws_ping_timeout_s=hb.ws_ping_timeout_s,
            max_lifetime_s=hb.max_lifetime_s,
            subscribe_rate_per_s=hb.max_messages_per_s,
            text_as_bytes=True,
            **kwargs,
        )
        for s in plan.streams:
            session.expect(keys[(s.channel, s.raw_symbol)], cadences.get(s.channel))
        return session

    async def fetch(self, exchange: str, call: RestCall) -> tuple[bytes, int]:
        """One adapter RestCall through the rate-limited client."""
        url = self.venues[exchange].rest_url(call.market).rstrip("/") + call.path
        return await self.rest.get_json(exchange, url, call.params or None, weight=call.weight, ttl_s=call.ttl_s)

    async def fetch_and_publish(self, exchange: str, call: RestCall) -> list[Event]:
        """Fetch, parse with the adapter, publish; errors are logged and counted, never raised."""
        try:
            body, recv_ms = await self.fetch(exchange, call)
            return self.ingest_rest(exchange, call, body, recv_ms)
        except (RestError, FrameError, OSError, TimeoutError) as exc:
            self.rest_errors += 1
            log.warning("%s %s %s: %s", exchange, call.endpoint, call.params, exc)
            return []

    # ------------------------------------------------------------------ tasks

    async def load_instruments(self, venue: VenueWiring) -> None:
        adapter = venue.adapter

        async def fetch_body(call: RestCall) -> bytes:
            body, _ = await self.fetch(venue.name, call)
            return body

        calls = list(adapter.rest_instruments())
        recorder = self.recorder
        on_body = (None if recorder is None else
                   lambda call, body: recorder.instruments(venue.name, call.market, call.endpoint, call.params, body))
        report = await self.store.load(adapter, calls, fetch_body, on_body)
        log.info("%s instruments: %d known (fetched %s, from cache %s, failed %s)", venue.name,
                 report.instruments, report.fetched, list(report.from_cache), list(report.failed))

    async def _instruments_refresher(self, venue: VenueWiring) -> None:
        while True:
            await asyncio.sleep(venue.instruments_refresh_s)
            await self.load_instruments(venue)

    async def _open_interest_poller(self, venue: VenueWiring, period_s: float) -> None:
        """For a venue that streams no open interest: poll each configured symbol, spread over the period."""
        adapter = venue.adapter
        symbols = list(venue.symbols)
        if not symbols:
            return
        hist = getattr(adapter, "rest_open_interest_hist", None)
        if hist is not None:
            for raw in symbols:
                await self._seed_oi_history(venue, hist(raw, period="1h", limit=169))
        pause = period_s / len(symbols)
        while True:
            for raw in symbols:
                await self.fetch_and_publish(venue.name, adapter.rest_open_interest(raw, ttl_s=period_s / 2))
                await asyncio.sleep(pause)

    async def _seed_oi_history(self, venue: VenueWiring, call: RestCall) -> None:
        try:
            body, recv_ms = await self.fetch(venue.name, call)
            self.ingest_rest(venue.name, call, body, recv_ms, seed=True)
        except (RestError, FrameError, OSError, TimeoutError) as exc:
            log.info("%s %s: no open-interest history (%s); changes fill in as the process runs", venue.name,
                     call.params, exc)

    async def _rest_poll(self, venue: VenueWiring) -> None:
        """Calls the adapter wants polled all the time (``rest_poll``: OKX option marks, OI, volume)."""
        poll = getattr(venue.adapter, "rest_poll", None)
        calls = list(poll(venue.channels)) if poll is not None else []
        if not calls:
            return
        period = float(getattr(venue.adapter, "POLL_S", 15.0))
        while True:
            for call in calls:
                await self.fetch_and_publish(venue.name, call)
            await asyncio.sleep(period)

    async def _rest_cover(self, venue: VenueWiring) -> None:
        """REST keeps funding and mark fresh at start-up and while a market's socket is down or stalled;
        where the venue has a liquidation history (OKX), it backfills at start-up and after every reconnect."""
        cover = getattr(venue.adapter, "rest_cover", None)
        backfill = getattr(venue.adapter, "rest_backfill", None)
        if cover is None and backfill is None:
            return
        plans = [(plan, session) for plan, session in self.sessions if plan.exchange == venue.name]
        markets = sorted({plan.market for plan, _ in plans})
        first = True
        connects = -1
        while True:
            total = sum(s.stats().connects for _, s in plans)
            if backfill is not None and total != connects:
                connects = total
                for call in backfill(venue.symbols):
                    await self.fetch_and_publish(venue.name, call)
                self.backfills[venue.name] = self.backfills.get(venue.name, 0) + 1
            for market in markets if cover is not None else ():
                assert cover is not None
                sessions = [s for p, s in plans if p.market == market]
                down = any(s.state != "open" or any(st.stale for st in s.stats().streams.values())
                           for s in sessions)
                if first or down:
                    symbols = [s for s in venue.symbols if venue.adapter.market_of(s) == market]
                    for call in cover(market, symbols):
                        await self.fetch_and_publish(venue.name, call)
                    if not first:
                        self.cover_polls[venue.name] = self.cover_polls.get(venue.name, 0) + 1
            first = False
            self._sync_links()  # closed connections reach the recording within seconds
            await asyncio.sleep(COVER_CHECK_S)

    async def run(self, stop: asyncio.Event) -> int:
        """Run until ``stop`` is set; returns the exit status (0)."""
        if self.settings.http.enabled:
            await self.api.start()
        bus_start = getattr(self.bus, "start", None)
        if bus_start is not None:
            await bus_start()
        self.started.set()
        sink_task = asyncio.create_task(self.sink.run(self.alert_consumer), name="sink:stdout")
        for name, _spec, consumer in self._sink_consumers:
            if name.startswith(("webhook:", "alertmanager:")):
                # episodes open at the last stop: an alert published just before a crash may never have
                # reached the outbox (the outbox drops what it has already seen; Alertmanager dedupes)
                for alert in self.journal.restored_at_start:
                    consumer.offer(alert)
        http = aiohttp.ClientSession() if self._sink_consumers else None
        delivery_tasks = [asyncio.create_task(self._make_sink(name, spec, http).run(consumer), name=f"sink:{name}")
                          for name, spec, consumer in self._sink_consumers if http is not None]
        if self.recorder is not None:
            self.recorder.start()
            self.recorder.start_marker(msgspec.to_builtins(self.settings.rules), sorted(self.venues))
        try:
            for venue in self.venues.values():
                await self.load_instruments(venue)
            self.plan()
            self._sync_links()
            async with asyncio.TaskGroup() as tg:
                for plan, session in self.sessions:
                    tg.create_task(session.run(), name=f"ws:{plan.name}")
                for venue in self.venues.values():
                    tg.create_task(self._rest_cover(venue), name=f"rest:{venue.name}:cover")
                    tg.create_task(self._rest_poll(venue), name=f"rest:{venue.name}:poll")
                    tg.create_task(self._instruments_refresher(venue), name=f"rest:{venue.name}:instruments")
                    if venue.open_interest_poll_s:
                        tg.create_task(self._open_interest_poller(venue, venue.open_interest_poll_s),
                                       name=f"rest:{venue.name}:oi")
                # The stop signal is awaited in the group's body, not in a child: on Python 3.11 a child
                # that raises while the body sits in __aexit__ leaves this task's cancel count raised.
                await stop.wait()
                raise _Stop
        except* _Stop:
            log.info("stopping")
        finally:
            bus_close = getattr(self.bus, "aclose", None)
            if bus_close is not None:
                await bus_close()  # stop consuming, publish what is buffered (5 s at most)
            self.bus.close()
            try:
                async with asyncio.timeout(5):
                    await sink_task
            except TimeoutError:
                sink_task.cancel()
                log.error("stdout sink did not drain within 5 s")
            if delivery_tasks:
                # a receiver that is down keeps its alerts in the outbox for the next start
                _, pending = await asyncio.wait(delivery_tasks, timeout=5)
                for task in pending:
                    task.cancel()
                await asyncio.gather(*delivery_tasks, return_exceptions=True)
                if pending:
                    log.warning("alert sinks still delivering at shutdown: %s (webhook alerts stay in the outbox)",
                                ", ".join(t.get_name() for t in pending))
            if http is not None:
                await http.close()
            if self.outbox is not None:
                self.outbox.close()
            await self.rest.close()
            await self.api.stop()
            if self.recorder is not None:
                await asyncio.to_thread(self.recorder.close)
        return 0

    def _make_sink(self, name: str, spec: Any, http: aiohttp.ClientSession) -> Any:
        """The delivery sink of one ``sinks.*`` config item."""
        if name.startswith("webhook:"):
            assert self.outbox is not None
            (sink,) = sinks_from([spec], self.outbox, http)
        elif name.startswith("alertmanager:"):
            sink = AlertmanagerSink(spec.url, http, resend_s=spec.resend_s, generator_url=spec.generator_url,
                                    name=name)
        else:
            sink = ChatSink(spec.kind, spec.url, http, filters=msgspec.structs.asdict(spec.filters), name=name)
        self.delivery_sinks[name] = sink
        return sink

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

    def readiness(self, now_ms: int | None = None) -> tuple[bool, dict[str, Any]]:
        """Ready when every session delivers, and none has been down past ``ready_grace_s``.

        Before its first delivery a session (and each of its streams with an expected cadence) is
        ``waiting_for``. After it, a session counts as down while it is not open, or while every
        stream with a cadence is stale; once its last data (the latest frame of a cadenced stream,
        or any frame for a session without cadences) is older than ``ready_grace_s`` (default
        ``READY_GRACE_S``, 30 s) it is listed under ``down`` and the daemon is not ready, until the
        session is open and delivering again. Short drops and reconnects within the grace keep it ready.

        Args:
            now_ms: Wall time, ms since epoch (default: now); the sessions' receive times are wall times.
        """
        if self.role == "aggregate":
            nats_stats = self.bus.stats().get("nats", {})
            connected = bool(nats_stats.get("connected"))
            return connected, {"waiting_for": [] if connected else ["nats"], "down": []}
        now = wall_ms() if now_ms is None else now_ms
        waiting: list[str] = []
        down: list[str] = []
        for plan, session in self.sessions:
            st = session.stats()
            if st.last_frame_ms is None:
                waiting.append(plan.name)
                continue
            cadenced = [s for s in st.streams.values() if s.cadence_s is not None]
            waiting.extend(
                f"{plan.name}:{key}" for key, s in st.streams.items() if s.cadence_s is not None and s.last_ms is None
            )
            if st.state == "open" and not (cadenced and all(s.stale for s in cadenced)):
                continue
            last = max((s.last_ms for s in cadenced if s.last_ms is not None), default=st.last_frame_ms)
            gone_s = (now - last) / 1000
            if gone_s > self.ready_grace_s:
                what = st.state if st.state != "open" else "open, all cadenced streams stale"
                down.append(f"{plan.name}: {what}, no data for {gone_s:.0f} s (grace {self.ready_grace_s:g} s)")
        return not waiting and not down and bool(self.sessions), {"waiting_for": waiting, "down": down}

    def snapshot(self) -> dict[str, Any]:
        """The stats snapshot the Prometheus collector reads (schema in ``streamer.metrics``)."""
        sessions = []
        for name, s in self.sessions_snapshot().items():
            sessions.append({**s, "session": name, "streams": {k: v["age_s"] for k, v in s["streams"].items()},
                             "stream_cadences": {k: v["cadence_s"] for k, v in s["streams"].items()}})
        adapters = [{"exchange": name, **a.stats.as_dict()} for name, a in self.adapters.items()]
        rest = [
            {"exchange": venue, "requests": v.requests, "retries": v.retries, "cache_hits": v.cache_hits,
             "rate_limited": v.rate_limited_429 + v.banned_418,
             "errors": {**v.errors_by_status, **({"body_too_large": v.body_too_large} if v.body_too_large else {})}}
            for venue, v in self.rest.stats().items()
        ]
        ready, _ = self.readiness()
        return {
            "sessions": sessions,
            "adapters": adapters,
            "rest": rest,
            "bus": self.bus.stats(),
            "alerts": self.engine.counts(),
            "sinks": {"stdout": self.sink.stats(), **{n: k.stats() for n, k in self.delivery_sinks.items()}},
            "market": self.state.market_gauges(self._gauge_symbols()),
            "ready": ready,
            **({"recorder": dataclasses.asdict(self.recorder.stats)} if self.recorder is not None else {}),
        }

    def _gauge_symbols(self) -> set[tuple[str, str]]:
        """(exchange, raw_symbol) pairs that get market gauges: the configured symbols (bounded labels)."""
        return {(name, s) for name, v in self._gauge_venues.items() for s in v.symbols}


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


async def run_daemon(settings: Settings, role: Role = "all") -> int:
    """``streamer run``: the daemon until SIGTERM/SIGINT."""
    stop = asyncio.Event()
    install_signal_handlers(stop)
    daemon = Daemon(settings, role=role)
    return await daemon.run(stop)
