"""One-shot REST snapshots behind the CLI commands (``streamer funding|oi|liquidations|options|basis``).

A snapshot is what the venues' public REST endpoints say now, normalized into the same events the
daemon streams (``streamer.model``), per venue, with how fresh and how complete each venue's part is.
The analyses (``streamer.aggregate.analytics``) and the report (``streamer.report``) read it; they never
fetch. ``take_snapshot`` fetches every venue in parallel through ``RestClient`` (per-venue rate limits,
retries with backoff), caches response bodies on disk with per-endpoint TTLs, and never raises for one
venue's failure: that venue's ``status`` and ``notes`` say what went wrong.

This module's data types are the contract between the fetch layer and the report layer.

Fetch flow, per venue (all venues concurrently, one ``RestClient``):

1. instrument metadata (``adapter.rest_instruments()``) through ``InstrumentStore`` (its own disk copy is
   the fallback when REST fails), each body served from the body cache while younger than 1 h;
2. ``adapter.snapshot_calls(command, bases)``: the venue's calls for the command (the adapters hold the
   venue knowledge; see their docstrings), fetched concurrently; paged calls follow
   ``adapter.snapshot_next`` (OKX liquidation orders);
3. bodies parsed in the adapter's call order (``parse_rest``; ``parse_long_short`` for long/short
   ratios), then ``adapter.snapshot_enrich`` (OKX: mark/index joined across bodies; Deribit: Black-76
   deltas from ``mark_iv``, since book summaries carry no greeks), then kept to the requested bases.

Body cache (``cache_dir``, default ``$STREAMER_CACHE_DIR`` or ``~/.cache/streamer/snapshots``): one file per
venue + base URL + path + query, its mtime the fetch time. TTLs (each adapter's ``SNAPSHOT_TTL_S``):

======================================================  =======
current funding, mark/index, tickers, option chains     30 s
liquidation pages (OKX orders, Deribit trades)          30 s
open interest, long/short ratios                        60 s
funding history, open-interest history                  5 min
instrument metadata                                     1 h
======================================================  =======

A repeated command within the TTLs makes no HTTP request. ``no_cache=True`` never reads the cache (it
still writes it). A refetch that fails (timeout, rate limit, 5xx, garbage) falls back to a cached body
of any age: ``stale=True`` and a note with its age.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import msgspec

from streamer.config import Settings
from streamer.exchanges import ADAPTERS
from streamer.exchanges.base import Adapter, FrameError, RestCall
from streamer.instruments import InstrumentStore
from streamer.model import Event, Instrument, Liquidation, OptionTicker
from streamer.transport.rest import RateLimited, RestClient, RestError, VenueLimits

Command = Literal["funding", "oi", "liquidations", "options", "basis"]
COMMANDS: tuple[Command, ...] = ("funding", "oi", "liquidations", "options", "basis")
VENUES: tuple[str, ...] = ("binance", "bybit", "okx", "deribit", "bitmex")

VenueStatus = Literal["ok", "partial", "error", "unsupported", "closed"]
"""``ok``: every call answered; ``partial``: some calls failed (notes say which); ``error``: nothing
usable (timeouts, rate limits, garbage; notes say why); ``unsupported``: the venue has no public data
for this command (e.g. options on Binance); ``closed``: the venue ceased operating (BitMEX)."""

Coverage = Literal["complete", "lower_bound", "unavailable"]
"""Liquidations only: ``complete`` when the venue publishes every liquidation in the window over REST;
``lower_bound`` when it publishes a sample or a capped page; ``unavailable`` when it has no public
liquidation history (Binance, Bybit) and no daemon was asked (``--daemon URL``)."""


class LongShortRatio(msgspec.Struct, frozen=True, kw_only=True):
    """A venue's published long/short account ratio of one symbol (not an event of the model)."""

    exchange: str
    symbol: str | None
    raw_symbol: str
    ts: int
    ratio: float
    long_fraction: float | None = None
    short_fraction: float | None = None


class VenueSnapshot(msgspec.Struct, kw_only=True):
    """One venue's part of a snapshot.

    Attributes:
        exchange: venue name.
        status: see ``VenueStatus``.
        notes: one-line human notes (an unknown symbol skipped, a call that failed and why, the
            closure of a venue, why liquidations are a lower bound...). Never contains API keys.
        events: normalized events from REST: current ``funding``, funding history (older ``funding``
            events, ``ts`` in the past), ``open_interest`` (current and history), ``ticker``,
            ``option_ticker``, ``liquidation``; whatever the command needs.
        instruments: metadata of the venue's instruments of the requested bases.
        long_short: long/short ratios where the venue publishes one (``oi`` command).
        fetched_at_ms: wall time the oldest body in use was fetched (cache included), ms since epoch.
        from_cache: whether any body came from the on-disk cache.
        stale: whether any body in use is older than its TTL (served because a refetch failed).
        coverage: liquidations only (see ``Coverage``); ``None`` for other commands.
        coverage_from_ms: liquidations only: the oldest time the venue's data reaches back to.
    """

    exchange: str
    status: VenueStatus
    notes: list[str] = msgspec.field(default_factory=list)
    events: list[Event] = msgspec.field(default_factory=list)
    instruments: list[Instrument] = msgspec.field(default_factory=list)
    long_short: list[LongShortRatio] = msgspec.field(default_factory=list)
    fetched_at_ms: int | None = None
    from_cache: bool = False
    stale: bool = False
    coverage: Coverage | None = None
    coverage_from_ms: int | None = None


class Snapshot(msgspec.Struct, kw_only=True):
    """Every requested venue's part, for one command and set of bases.

    Attributes:
        command: the CLI command it was taken for.
        bases: requested base assets (``BTC``), upper-case, XBT written BTC.
        as_of_ms: the time the analyses evaluate at (wall time at the end of the fetch, ms).
        venues: one ``VenueSnapshot`` per requested venue, in ``VENUES`` order.
        window_ms: liquidations only: the requested window.
        elapsed_s: how long the fetch took.
    """

    command: Command
    bases: list[str]
    as_of_ms: int
    venues: list[VenueSnapshot]
    window_ms: int | None = None
    elapsed_s: float = 0.0

    def ok_venues(self) -> list[VenueSnapshot]:
        """Venues with usable data (``ok`` or ``partial``)."""
        return [v for v in self.venues if v.status in ("ok", "partial")]


# --------------------------------------------------------------------------- fetch layer

INSTRUMENTS_TTL_S = 3600.0
"""How long instrument metadata bodies are served from the body cache."""
DEFAULT_WINDOW_MS = 3_600_000
"""Liquidations window when none is given (1 h)."""
VENUE_DEADLINE_S = 25.0
"""A venue still fetching after this long is cut off (status ``error``, a note says so)."""
CLOSED_VENUES: dict[str, str] = {"bitmex": "BitMEX closed on 2026-09-23 04:00 UTC"}
SIM_URL_KEYS: dict[str, dict[str, str]] = {
    "binance": {"um": "binance_um_rest", "cm": "binance_cm_rest", "": "binance_um_rest"},
    "bybit": {"": "bybit_rest"},
    "okx": {"": "okx_rest"},
    "deribit": {"": "deribit_rest"},
}
"""Base URL per venue sub-market, as keys of ``SimServer.urls``."""
DAEMON_LIQUIDATIONS_PATH = "/state/recent_liquidations"
DAEMON_LIQUIDATION_VENUES = ("binance", "bybit")
"""Venues without a public liquidation history: their liquidations come from a running daemon only."""
SAMPLED_LIQUIDATION_VENUES = frozenset({"binance", "okx"})
"""Venues whose liquidation feed is sampled (exchanges.md §0): their totals are lower bounds."""
MAX_NOTES = 6


def default_cache_dir() -> Path:
    """``$STREAMER_CACHE_DIR``, else ``~/.cache/streamer/snapshots``."""
    return Path(os.environ.get("STREAMER_CACHE_DIR") or "~/.cache/streamer/snapshots").expanduser()


def normalize_bases(bases: Sequence[str]) -> list[str]:
    """Upper-case, XBT written BTC, duplicates dropped (order kept); BTC when empty."""
    out: list[str] = []
    for b in bases or ("BTC",):
        up = b.strip().upper()
        up = "BTC" if up == "XBT" else up
        if up and up not in out:
            out.append(up)
    return out


def _wall_ms() -> int:
    return int(time.time() * 1000)


def rest_bases(settings: Settings | None, sim_urls: Mapping[str, str] | None) -> dict[str, dict[str, str]]:
    """REST base URL per venue and sub-market (``""`` = default) from the simulator's URLs or Settings."""
    if sim_urls is not None:
        return {venue: {m: sim_urls[k] for m, k in keys.items() if k in sim_urls}
                for venue, keys in SIM_URL_KEYS.items()}
    ex = (settings or Settings()).exchanges
    return {
        "binance": {"um": ex.binance.um_rest_url, "cm": ex.binance.cm_rest_url, "": ex.binance.um_rest_url},
        "bybit": {"": ex.bybit.rest_url},
        "okx": {"": ex.okx.rest_url},
        "deribit": {"": ex.deribit.rest_url},
    }


def venue_limits(settings: Settings | None) -> dict[str, VenueLimits]:
    """Per-venue REST budgets, built as the daemon builds them (``daemon.venues_from_settings``)."""
    ex = (settings or Settings()).exchanges
    b, y, o, d = ex.binance, ex.bybit, ex.okx, ex.deribit
    return {
        "binance": VenueLimits(capacity=max(b.rest_weight_per_min / 10, 10), refill_per_s=b.rest_weight_per_min / 60,
                               used_weight_header="X-MBX-USED-WEIGHT-1M", used_weight_limit=b.rest_weight_per_min),
        "bybit": VenueLimits(capacity=max(y.rest_requests_per_s * 2, 5), refill_per_s=y.rest_requests_per_s,
                             remaining_header="X-Bapi-Limit-Status", remaining_limit_header="X-Bapi-Limit"),
        "okx": VenueLimits(capacity=max(o.rest_requests_per_s * 2, 5), refill_per_s=o.rest_requests_per_s),
        "deribit": VenueLimits(capacity=max(d.rest_requests_per_s * 2, 5), refill_per_s=d.rest_requests_per_s),
        "daemon": VenueLimits(capacity=10, refill_per_s=10),
    }


def make_adapter(venue: str, command: str, bases: Sequence[str]) -> Adapter:
    """A fresh adapter; option instruments are loaded only for ``options`` (and then for the bases asked)."""
    if venue == "bybit":
        from streamer.exchanges.bybit import BybitAdapter

        return BybitAdapter(option_bases=tuple(bases) if command == "options" else ())  # type: ignore[return-value]
    if venue == "okx":
        from streamer.exchanges.okx import OkxAdapter

        families = tuple(f"{b}-USD" for b in bases) if command == "options" else ()
        return OkxAdapter(option_families=families)  # type: ignore[return-value]
    return ADAPTERS[venue]()


class BodyCache:
    """Raw response bodies on disk, keyed by venue + base URL + path + query; mtime = fetch time.

    Args:
        root: directory (created on first write).
        read: False bypasses reading (``no_cache``); bodies are still written.
        wall_ms: clock for ages, ms since epoch.
    """

    def __init__(self, root: Path, *, read: bool = True, wall_ms: Callable[[], int] = _wall_ms) -> None:
        self.root = root
        self.read = read
        self.wall_ms = wall_ms
        self.hits = 0
        self.writes = 0

    def path(self, venue: str, base_url: str, call: RestCall) -> Path:
        query = "&".join(f"{k}={v}" for k, v in sorted(call.params.items()))
        digest = hashlib.sha1(f"{base_url.rstrip('/')}{call.path}?{query}".encode()).hexdigest()[:20]
        return self.root / venue / f"{call.endpoint.split(':')[0]}_{digest}.body"

    def get(self, path: Path, ttl_s: float | None) -> tuple[bytes, int] | None:
        """(body, fetched_ms) when cached and at most ``ttl_s`` old (any age with ``ttl_s`` None)."""
        try:
            fetched = int(path.stat().st_mtime * 1000)
            if ttl_s is not None and (not self.read or self.wall_ms() - fetched > ttl_s * 1000):
                return None
            return path.read_bytes(), fetched
        except OSError:
            return None

    def put(self, path: Path, body: bytes, fetched_ms: int) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            tmp.write_bytes(body)
            os.utime(tmp, (fetched_ms / 1000, fetched_ms / 1000))
            os.replace(tmp, path)
            self.writes += 1
        except OSError:
            pass  # a read-only cache only costs speed


@dataclass
class _Body:
    call: RestCall
    body: bytes | None = None
    fetched_ms: int | None = None
    cached: bool = False
    path: Path | None = None
    error: str | None = None


@dataclass
class _VenueRun:
    name: str
    adapter: Adapter
    urls: dict[str, str]
    snap: VenueSnapshot
    calls_done: int = 0
    calls_failed: int = 0
    bodies: list[_Body] = field(default_factory=list)
    notes_dropped: int = 0

    def note(self, text: str) -> None:
        if len(self.snap.notes) < MAX_NOTES:
            self.snap.notes.append(text)
        else:
            self.notes_dropped += 1

    def url(self, call: RestCall) -> str:
        return (self.urls.get(call.market) or self.urls[""]).rstrip("/") + call.path


def _describe(call: RestCall) -> str:
    keep = [f"{k}={v}" for k, v in call.params.items() if k in ("symbol", "instId", "instrument_name", "instFamily",
                                                                   "currency", "baseCoin", "pair", "ccy", "category")]
    return call.endpoint.split(":")[0] + (f" {' '.join(keep)}" if keep else "")


def _reason(exc: BaseException) -> str:
    """One short human reason for a failed call (never a URL with credentials: we send none)."""
    if isinstance(exc, RateLimited):
        return f"rate-limited (HTTP {exc.status or 429}) after retries"
    if isinstance(exc, RestError):
        if exc.status is None:
            cause = exc.__cause__
            return f"no answer after retries ({type(cause).__name__ if cause else 'network'})"
        if exc.status >= 500 or exc.status == 408:
            return f"HTTP {exc.status} after retries"
        snippet = exc.body[:160].decode("utf-8", "replace").strip()
        return f"HTTP {exc.status}" + (f": {snippet}" if snippet else "")
    if isinstance(exc, FrameError):
        if exc.reason in ("rejected", "rate_limited"):
            return exc.detail or exc.reason
        return f"unreadable answer ({exc.reason}: {exc.detail[:120]})"
    if isinstance(exc, TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {str(exc)[:120]}"


def _base_of(ev: Event, adapter: Adapter) -> str | None:
    if isinstance(ev, OptionTicker):
        return ev.underlying.upper()
    symbol = getattr(ev, "symbol", None)
    if symbol:
        return str(symbol).split("-", 1)[0]
    inst = adapter.instrument(getattr(ev, "raw_symbol", ""))
    return inst.base if inst is not None else None


class _Fetcher:
    """One snapshot's shared machinery: the REST client and the body cache."""

    def __init__(self, rest: RestClient, cache: BodyCache, wall_ms: Callable[[], int]) -> None:
        self.rest = rest
        self.cache = cache
        self.wall_ms = wall_ms
        self.http_requests = 0

    async def fetch(self, run: _VenueRun, call: RestCall, ttl_s: float | None) -> _Body:
        """A body from the cache while fresh, else over REST; on failure the error, with any stale copy."""
        url = run.url(call)
        path = self.cache.path(run.name, url[: len(url) - len(call.path)], call)
        out = _Body(call, path=path)
        hit = self.cache.get(path, ttl_s if ttl_s is not None else 0.0)
        if hit is not None:
            out.body, out.fetched_ms, out.cached = hit[0], hit[1], True
            self.cache.hits += 1
            return out
        try:
            self.http_requests += 1
            resp = await self.rest.get(run.name, url, call.params or None, weight=call.weight)
        except (RestError, OSError, TimeoutError) as exc:
            out.error = _reason(exc)
            return out
        out.body, out.fetched_ms = resp.body, resp.recv_ms
        return out


async def _load_instruments(fx: _Fetcher, run: _VenueRun, store: InstrumentStore) -> str | None:
    """Load the venue's metadata; returns an error reason when none could be loaded."""

    async def fetch_body(call: RestCall) -> bytes:
        got = await fx.fetch(run, call, INSTRUMENTS_TTL_S)
        if got.body is None:
            raise RuntimeError(got.error or "no body")
        if got.cached:
            run.snap.from_cache = True
        elif got.path is not None and got.fetched_ms is not None:
            fx.cache.put(got.path, got.body, got.fetched_ms)
        return got.body

    report = await store.load(run.adapter, list(run.adapter.rest_instruments()), fetch_body)
    if report.from_cache:
        oldest = max(report.from_cache.values())
        run.note(f"{run.name}: instrument metadata from the disk copy ({oldest:.0f} s old): REST failed")
    if report.instruments == 0:
        reasons = sorted(set(report.failed.values())) or ["no instruments"]
        return reasons[0].removeprefix("RuntimeError: ")
    return None


async def _fetch_paged(fx: _Fetcher, run: _VenueRun, call: RestCall, since_ms: int) -> list[_Body]:
    pages: list[_Body] = []
    nxt = getattr(run.adapter, "snapshot_next", None)
    current: RestCall | None = call
    while current is not None:
        got = await fx.fetch(run, current, current.ttl_s)
        pages.append(got)
        if got.body is None or nxt is None:
            break
        try:
            current = nxt(current, got.body, since_ms, len(pages))
        except FrameError:
            break
    return pages


def _parse_all(run: _VenueRun, fx: _Fetcher, command: str) -> tuple[list[Event], list[tuple[_Body, list[Event]]]]:
    """Parse every body in call order; failures become notes (a stale cached copy is used where one exists)."""
    adapter = run.adapter
    events: list[Event] = []
    parsed: list[tuple[_Body, list[Event]]] = []
    long_short = getattr(adapter, "parse_long_short", None)
    for got in run.bodies:
        call = got.call
        evs: list[Event] = []
        error = got.error
        if got.body is not None:
            try:
                evs = _parse_one(run, got, long_short)
            except FrameError as exc:
                error = _reason(exc)
            else:
                if not got.cached and got.path is not None and got.fetched_ms is not None:
                    fx.cache.put(got.path, got.body, got.fetched_ms)
        if error is not None and got.path is not None:
            stale = fx.cache.get(got.path, None)
            if stale is not None and stale[0] != got.body:
                try:
                    evs = _parse_one(run, _Body(call, stale[0], stale[1], True, got.path), long_short)
                except FrameError:
                    pass
                else:
                    age = max(0, fx.wall_ms() - stale[1]) / 1000
                    run.snap.stale = True
                    run.note(f"{run.name}: {_describe(call)}: {error}; using a cached copy {age:.0f} s old")
                    got = _Body(call, stale[0], stale[1], True, got.path)
                    error = None
        run.calls_done += 1
        if error is not None:
            run.calls_failed += 1
            run.note(f"{run.name}: {_describe(call)}: {error}")
            continue
        if got.cached:
            run.snap.from_cache = True
        if got.fetched_ms is not None:
            prev = run.snap.fetched_at_ms
            run.snap.fetched_at_ms = got.fetched_ms if prev is None else min(prev, got.fetched_ms)
        events.extend(evs)
        parsed.append((got, evs))
    return events, parsed


def _parse_one(run: _VenueRun, got: _Body, long_short: Callable[..., Any] | None) -> list[Event]:
    call, body = got.call, got.body or b""
    recv = got.fetched_ms or 0
    if long_short is not None and call.endpoint in ("longShortRatio", "account_ratio", "long_short_ratio"):
        for raw, ts, ratio, long_f, short_f in long_short(body, call.params):
            inst = run.adapter.instrument(raw)
            run.snap.long_short.append(LongShortRatio(
                exchange=run.name, symbol=inst.symbol if inst is not None else None, raw_symbol=raw, ts=ts,
                ratio=ratio, long_fraction=long_f, short_fraction=short_f))
        return []
    return list(run.adapter.parse_rest(call.endpoint, body, recv, call.params))


def _finish_status(run: _VenueRun) -> None:
    snap = run.snap
    if run.calls_done == 0:
        snap.status = "error"
    elif run.calls_failed == 0:
        snap.status = "ok"
    elif run.calls_failed < run.calls_done and (snap.events or snap.long_short):
        snap.status = "partial"
    else:
        snap.status = "error"
    if run.notes_dropped:
        snap.notes.append(f"{run.name}: {run.notes_dropped} more failed calls not listed")


async def _venue_snapshot(
    fx: _Fetcher, run: _VenueRun, store: InstrumentStore, command: str, bases: list[str], since_ms: int,
    progress: Callable[[str], None] | None,
) -> None:
    adapter, snap = run.adapter, run.snap
    error = await _load_instruments(fx, run, store)
    if error is not None:
        snap.status = "error"
        run.note(f"{run.name}: instrument metadata unavailable: {error}")
        return
    listed = {i.base for i in adapter.instruments() if i.kind in ("perpetual", "future", "option")}
    present = [b for b in bases if b in listed]
    for b in bases:
        if b not in listed:
            run.note(f"{run.name}: no {b} contracts listed; skipped")
    calls = list(adapter.snapshot_calls(command, present, now_ms=fx.wall_ms())) if present else []  # type: ignore[attr-defined]
    if not calls:
        if present:
            snap.status = "unsupported"
            run.note(f"{run.name}: no {command} data for {', '.join(present)}")
        else:
            snap.status = "error"
        return
    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(_fetch_paged(fx, run, call, since_ms)) for call in calls]
    for task in tasks:
        run.bodies.extend(task.result())
    events, parsed = _parse_all(run, fx, command)
    enrich = getattr(adapter, "snapshot_enrich", None)
    if enrich is not None:
        events = list(enrich(events))
    wanted = set(present)
    snap.events = [ev for ev in events if _base_of(ev, adapter) in wanted]
    snap.instruments = sorted((i for i in adapter.instruments() if i.base in wanted
                               and (i.kind != "option" or command == "options")),
                              key=lambda i: (i.base, i.kind, i.expiry_ms or 0, i.raw_symbol))
    newest: dict[str, LongShortRatio] = {}
    for r in snap.long_short:  # the latest ratio of each symbol (histories are long)
        base = r.symbol.split("-", 1)[0] if r.symbol else r.raw_symbol.upper()
        if (base in wanted or any(r.raw_symbol.startswith(b) for b in wanted)) and (
                r.raw_symbol not in newest or r.ts > newest[r.raw_symbol].ts):
            newest[r.raw_symbol] = r
    snap.long_short = sorted(newest.values(), key=lambda r: r.raw_symbol)
    extra = getattr(adapter, "SNAPSHOT_NOTES", {}).get(command)
    if extra:
        run.note(extra)
    if command == "liquidations":
        _liquidation_coverage(run, parsed, since_ms)
    _finish_status(run)


def _liquidation_coverage(run: _VenueRun, parsed: list[tuple[_Body, list[Event]]], since_ms: int) -> None:
    snap = run.snap
    snap.events = [ev for ev in snap.events if not isinstance(ev, Liquidation) or ev.ts >= since_ms]
    reach = getattr(run.adapter, "snapshot_reach", None)
    complete = True
    oldest_reached: int | None = None
    for got, evs in parsed:
        if reach is not None and got.body is not None:
            try:
                oldest, more = reach(got.call, got.body)
            except FrameError:
                oldest, more = None, True
            if more and oldest is not None and oldest > since_ms:
                complete = False
                oldest_reached = oldest if oldest_reached is None else max(oldest_reached, oldest)
        else:
            times = [ev.ts for ev in evs if isinstance(ev, Liquidation)]
            pages = [g for g, _ in parsed if g.call.endpoint == got.call.endpoint]
            if times and min(times) > since_ms and len(pages) >= getattr(run.adapter, "LIQUIDATION_PAGES", 1):
                oldest_reached = max(oldest_reached or 0, min(times))
    sampled = run.name in SAMPLED_LIQUIDATION_VENUES
    snap.coverage = "complete" if complete and not sampled and oldest_reached is None else "lower_bound"
    snap.coverage_from_ms = oldest_reached if oldest_reached is not None else since_ms
    if sampled:
        run.note(f"{run.name}: liquidation history is sampled by the venue (at most one order per contract "
                 f"per second): totals are lower bounds")
    elif not complete:
        run.note(f"{run.name}: the newest trades page reaches back only to {_hm(snap.coverage_from_ms)}: "
                 f"totals are lower bounds")


def _hm(ms: int) -> str:
    return time.strftime("%H:%M:%S UTC", time.gmtime(ms / 1000))


async def _daemon_liquidations(
    fx: _Fetcher, daemon_url: str, venues: Sequence[str], bases: list[str], since_ms: int,
    runs: Mapping[str, _VenueRun],
) -> None:
    """Binance/Bybit liquidations from a running daemon's ``/state/recent_liquidations``."""
    url = daemon_url.rstrip("/") + DAEMON_LIQUIDATIONS_PATH
    try:
        resp = await fx.rest.get("daemon", url)
        data = msgspec.json.decode(resp.body)
        events = msgspec.convert(data.get("events", []), list[Liquidation])
    except (RestError, OSError, TimeoutError, msgspec.DecodeError, msgspec.ValidationError, AttributeError) as exc:
        for venue in venues:
            run = runs[venue]
            run.snap.status, run.snap.coverage = "error", "unavailable"
            run.note(f"{venue}: no public liquidation history, and the daemon at {daemon_url} did not answer "
                     f"({_reason(exc) if isinstance(exc, BaseException) else exc})")
        return
    started = data.get("since_ms")
    dropped = int(data.get("dropped") or 0)
    wanted = set(bases)
    for venue in venues:
        run = runs[venue]
        mine = [ev for ev in events if ev.exchange == venue and ev.ts >= since_ms
                and (ev.symbol or "").split("-", 1)[0] in wanted]
        run.snap.events = list(mine)
        run.snap.status = "ok"
        run.snap.fetched_at_ms = resp.recv_ms
        reach = int(started) if isinstance(started, int) else None
        covers = reach is not None and reach <= since_ms and not dropped
        complete = covers and venue not in SAMPLED_LIQUIDATION_VENUES
        run.snap.coverage = "complete" if complete else "lower_bound"
        run.snap.coverage_from_ms = max(since_ms, reach) if reach is not None else since_ms
        why = "sampled by the venue" if venue in SAMPLED_LIQUIDATION_VENUES else "the daemon's record is shorter"
        run.note(f"{venue}: liquidations from the daemon at {daemon_url}"
                 + ("" if complete else f" ({why}: totals are lower bounds)"))


async def take_snapshot(
    command: Command,
    bases: Sequence[str],
    exchanges: Sequence[str] | None = None,
    *,
    settings: Settings | None = None,
    sim_urls: Mapping[str, str] | None = None,
    cache_dir: Path | None = None,
    no_cache: bool = False,
    window_ms: int | None = None,
    daemon_url: str | None = None,
    progress: Callable[[str], None] | None = None,
    wall_ms: Callable[[], int] = _wall_ms,
    rest: RestClient | None = None,
) -> Snapshot:
    """Fetch one command's snapshot from every requested venue in parallel; never raises for a venue.

    Args:
        command: ``funding``, ``oi``, ``liquidations``, ``options`` or ``basis``.
        bases: base assets (``BTC``; XBT is read as BTC); empty = BTC.
        exchanges: venues to ask (default all of ``VENUES``); BitMEX answers ``closed``.
        settings: REST URLs and budgets (default ``Settings()``: the venues' public endpoints).
        sim_urls: ``SimServer.urls``: ask the simulator instead.
        cache_dir: body cache (default ``default_cache_dir()``).
        no_cache: do not read cached bodies (fresh answers are still cached).
        window_ms: liquidations window (default 1 h).
        daemon_url: a running daemon (``http://host:port``) for Binance/Bybit liquidations.
        progress: called with one line as each venue finishes (``okx: 12 calls done``).
        wall_ms: clock (ms since epoch) for cache ages, ``as_of_ms`` and windows.
        rest: a RestClient to use (its venue limits are set here); default: a new one, closed after.

    Returns:
        The snapshot: one ``VenueSnapshot`` per requested venue, in ``VENUES`` order.
    """
    if command not in COMMANDS:
        raise ValueError(f"unknown command {command!r}; expected one of {', '.join(COMMANDS)}")
    started = time.monotonic()
    wanted_bases = normalize_bases(bases)
    asked = [v.lower() for v in (exchanges or VENUES)]
    unknown = [v for v in asked if v not in VENUES]
    if unknown:
        raise ValueError(f"unknown exchange(s) {', '.join(unknown)}; expected {', '.join(VENUES)}")
    venues = [v for v in VENUES if v in asked]
    window = window_ms if window_ms is not None else DEFAULT_WINDOW_MS
    since_ms = wall_ms() - window
    root = cache_dir if cache_dir is not None else default_cache_dir()
    cache = BodyCache(root / "bodies", read=not no_cache, wall_ms=wall_ms)
    store = InstrumentStore(root)
    urls = rest_bases(settings, sim_urls)
    limits = venue_limits(settings)
    own_rest = rest is None
    client = rest if rest is not None else RestClient(limits, timeout_s=8.0, max_attempts=3, max_retry_wait_s=10.0)
    if not own_rest:
        known = client.stats()
        for name, lim in limits.items():
            if name not in known:  # set_limits restarts a venue's bucket and counters
                client.set_limits(name, lim)
    fx = _Fetcher(client, cache, wall_ms)
    runs: dict[str, _VenueRun] = {}
    out: list[VenueSnapshot] = []
    for venue in venues:
        snap = VenueSnapshot(exchange=venue, status="ok")
        out.append(snap)
        if venue in CLOSED_VENUES:
            snap.status = "closed"
            snap.notes.append(CLOSED_VENUES[venue])
            continue
        if command == "options" and venue == "binance":
            snap.status = "unsupported"
            snap.notes.append("binance: options are not covered (Binance options are a separate API)")
            continue
        if command == "liquidations" and venue in DAEMON_LIQUIDATION_VENUES:
            snap.coverage = "unavailable"
            if daemon_url is None:
                snap.status = "unsupported"
                snap.notes.append(f"{venue}: no public liquidation history over REST; "
                                  f"run the daemon and pass --daemon URL to include it")
                continue
        if venue not in urls or not urls[venue].get(""):
            snap.status = "error"
            snap.notes.append(f"{venue}: no REST URL configured")
            continue
        runs[venue] = _VenueRun(venue, make_adapter(venue, command, wanted_bases), urls[venue], snap)
    daemon_venues = [v for v in DAEMON_LIQUIDATION_VENUES if v in runs] if (
        command == "liquidations" and daemon_url is not None) else []

    async def one(run: _VenueRun) -> None:
        try:
            async with asyncio.timeout(VENUE_DEADLINE_S):
                await _venue_snapshot(fx, run, store, command, wanted_bases, since_ms, progress)
        except TimeoutError:
            run.snap.status = "error"
            run.note(f"{run.name}: no complete answer within {VENUE_DEADLINE_S:.0f} s")
        if progress is not None:
            failed = f", {run.calls_failed} failed" if run.calls_failed else ""
            progress(f"{run.name}: {run.calls_done} calls done{failed}")

    async def daemon() -> None:
        await _daemon_liquidations(fx, daemon_url or "", daemon_venues, wanted_bases, since_ms, runs)
        if progress is not None:
            progress(f"daemon: liquidations of {', '.join(daemon_venues)} read")

    try:
        async with asyncio.TaskGroup() as tg:
            for venue, run in runs.items():
                if venue not in daemon_venues:
                    tg.create_task(one(run), name=f"snapshot:{venue}")
            if daemon_venues:
                tg.create_task(daemon(), name="snapshot:daemon")
    finally:
        if own_rest:
            await client.close()
    return Snapshot(command=command, bases=wanted_bases, as_of_ms=wall_ms(), venues=out,
                    window_ms=window if command == "liquidations" else None,
                    elapsed_s=round(time.monotonic() - started, 3))


@contextlib.asynccontextmanager
async def sim_market(seed: int = 0, scenario: str | None = "demo", *, speed: float = 1.0) -> AsyncIterator[Any]:
    """A ``SimServer`` running in-process (for ``--sim``), stopped on exit."""
    from streamer.sim import SimServer

    async with SimServer(seed=seed, scenario=scenario, speed=speed) as sim:
        yield sim


async def sim_snapshot(
    command: Command,
    bases: Sequence[str],
    exchanges: Sequence[str] | None = None,
    *,
    seed: int = 0,
    scenario: str | None = "demo",
    speed: float = 1.0,
    warmup_s: float = 0.0,
    cache_dir: Path | None = None,
    window_ms: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> Snapshot:
    """``take_snapshot`` against a simulator started in-process (``--sim``): offline, well under 3 s.

    Bodies are cached in a temporary directory (a simulator's market is not the venues' market) unless
    ``cache_dir`` is given. ``warmup_s`` lets the market run (``speed`` × faster) before the fetch, so that
    trade-based history (Deribit liquidations) has something to show. Times are the simulator's clock.
    """
    async with sim_market(seed, scenario, speed=speed) as sim:
        if warmup_s > 0:
            await asyncio.sleep(warmup_s)
        with tempfile.TemporaryDirectory(prefix="streamer-sim-") as tmp:
            return await take_snapshot(
                command, bases, exchanges, sim_urls=sim.urls, cache_dir=cache_dir or Path(tmp),
                window_ms=window_ms, progress=progress, wall_ms=sim.clock,
            )

