"""Live per-kind state: liquidation windows, funding board, OI history, prices; one ``LiveState``.

Every ``on_event(event)`` here is a sync bus handler: O(1) amortized per event,
never awaits, never reads a clock. Windows slide on event time (``ts``); the
"now" of a snapshot is the largest event ``ts`` the state has seen.

Events whose ``symbol`` is null (an instrument that could not be mapped) are
not aggregated; they are counted as ``no_symbol`` in ``stats()``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import msgspec

from streamer.aggregate.analytics import OptionChain
from streamer.aggregate.window import MultiSumWindow, RollingMean, SampleHistory
from streamer.model import Event, Funding, Liquidation, OpenInterest, OptionTicker, Ticker

RECENT_LIQUIDATIONS = 5000
"""Liquidations kept in ``LiveState.recent_liquidations`` (the newest; older ones are dropped and counted)."""

__all__ = [
    "FundingBoard",
    "LiquidationWindows",
    "LiveState",
    "OISample",
    "OpenInterestState",
    "PriceState",
    "WindowTotals",
]


class WindowTotals(msgspec.Struct, frozen=True, gc=False):
    """Liquidations in one window.

    Attributes:
        notional_usd: sum of ``value_usd`` of the sized liquidations, USD.
        count: every liquidation, sized or not.
        unsized: liquidations whose ``value_usd`` is null (in ``count``, not in ``notional_usd``).
    """

    notional_usd: float
    count: int
    unsized: int


_EMPTY = WindowTotals(0.0, 0, 0)


def _multi_totals(windows: MultiSumWindow | None, window_s: int, now_ms: int) -> WindowTotals:
    if windows is None:
        return _EMPTY
    total, count, missing = windows.totals(window_s * 1000, now_ms)
    return WindowTotals(total, count, missing)


# --------------------------------------------------------------------------- liquidations


class LiquidationWindows:
    """Liquidation notional and counts over rolling windows of event time.

    Keys: per venue ``(exchange, symbol, side)`` and across venues ``(symbol,
    side)`` (unified symbol: Binance and OKX ``BTC-USDT-PERP`` add up; the
    inverse ``BTC-USD-PERP`` is its own key). Each key has one
    :class:`MultiSumWindow` holding every length in ``windows_s``.

    Args:
        windows_s: window lengths in seconds (default 60, 300, 3600).
        bucket_ms: bucket length of every window (default 1 s).
    """

    def __init__(self, windows_s: Sequence[int] = (60, 300, 3600), bucket_ms: int = 1000) -> None:
        if not windows_s:
            raise ValueError("windows_s must not be empty")
        self.windows_s: tuple[int, ...] = tuple(sorted(set(windows_s)))
        self.bucket_ms = bucket_ms
        self._venue: dict[tuple[str, str, str], MultiSumWindow] = {}
        self._symbol: dict[tuple[str, str], MultiSumWindow] = {}
        self.events = 0
        self.unsized = 0
        self.no_symbol = 0

    def _new(self) -> MultiSumWindow:
        return MultiSumWindow([w * 1000 for w in self.windows_s], self.bucket_ms)

    def on_event(self, event: Event) -> None:
        """Bus handler: adds liquidations, ignores anything else."""
        if isinstance(event, Liquidation):
            self.add(event)

    def add(self, liq: Liquidation) -> None:
        """Add one liquidation (``value_usd`` null: counted, and counted as unsized)."""
        if liq.symbol is None:
            self.no_symbol += 1
            return
        self.events += 1
        if liq.value_usd is None:
            self.unsized += 1
        vkey = (liq.exchange, liq.symbol, liq.side)
        venue = self._venue.get(vkey)
        if venue is None:
            venue = self._venue[vkey] = self._new()
        skey = (liq.symbol, liq.side)
        sym = self._symbol.get(skey)
        if sym is None:
            sym = self._symbol[skey] = self._new()
        venue.add(liq.ts, liq.value_usd)
        sym.add(liq.ts, liq.value_usd)

    def venue_totals(self, exchange: str, symbol: str, side: str, window_s: int, now_ms: int) -> WindowTotals:
        """Totals of one venue's ``symbol``/``side`` over ``window_s`` at ``now_ms``.

        Raises:
            KeyError: ``window_s`` is not one of ``windows_s``.
        """
        self._check(window_s)
        return _multi_totals(self._venue.get((exchange, symbol, side)), window_s, now_ms)

    def symbol_totals(self, symbol: str, side: str, window_s: int, now_ms: int) -> WindowTotals:
        """Totals of ``symbol``/``side`` across venues over ``window_s`` at ``now_ms``."""
        self._check(window_s)
        return _multi_totals(self._symbol.get((symbol, side)), window_s, now_ms)

    def _check(self, window_s: int) -> None:
        if window_s not in self.windows_s:
            raise KeyError(f"window_s {window_s} not tracked; tracked: {self.windows_s}")

    def _rows(self, windows: MultiSumWindow, now_ms: int) -> dict[str, dict[str, float | int]] | None:
        out: dict[str, dict[str, float | int]] = {}
        for w in self.windows_s:
            t = _multi_totals(windows, w, now_ms)
            out[str(w)] = {"notional_usd": t.notional_usd, "count": t.count, "unsized": t.unsized}
        longest = out[str(self.windows_s[-1])]
        return out if longest["count"] else None

    def snapshot(self, now_ms: int) -> dict[str, Any]:
        """Non-empty keys at ``now_ms``, sorted: ``{"windows_s", "by_symbol", "by_venue"}``."""
        by_symbol = []
        for (symbol, side), windows in sorted(self._symbol.items()):
            rows = self._rows(windows, now_ms)
            if rows is not None:
                by_symbol.append({"symbol": symbol, "side": side, "windows": rows})
        by_venue = []
        for (exchange, symbol, side), windows in sorted(self._venue.items()):
            rows = self._rows(windows, now_ms)
            if rows is not None:
                by_venue.append({"exchange": exchange, "symbol": symbol, "side": side, "windows": rows})
        return {"windows_s": list(self.windows_s), "by_symbol": by_symbol, "by_venue": by_venue}

    def stats(self) -> dict[str, int]:
        """events, unsized, no_symbol, keys, late_dropped (summed over windows)."""
        late = sum(w.late_dropped for w in self._venue.values())
        late += sum(w.late_dropped for w in self._symbol.values())
        return {
            "events": self.events,
            "unsized": self.unsized,
            "no_symbol": self.no_symbol,
            "venue_keys": len(self._venue),
            "symbol_keys": len(self._symbol),
            "late_dropped": late,
        }


# --------------------------------------------------------------------------- funding


def _event_dict(event: Event) -> dict[str, Any]:
    data: dict[str, Any] = msgspec.to_builtins(event)
    data.pop("type", None)
    return data


class FundingBoard:
    """Latest funding per ``(exchange, symbol)`` and the rolling average of ``rate_8h``.

    "Latest" is the event with the largest ``ts`` (a tie goes to the later
    arrival). The average is the sample mean of the non-null ``rate_8h``
    values over ``avg_window_s`` (default 24 h), in 5-minute buckets (the window's edge moves
    in 5-minute steps; 288 slots, 7 kB per symbol).
    Events with ``rate_8h`` null update "latest" but not the average
    (counted ``rate_8h_null``).
    """

    def __init__(self, avg_window_s: int = 86_400, avg_bucket_s: int = 300) -> None:
        self.avg_window_s = avg_window_s
        self._avg_bucket_ms = avg_bucket_s * 1000
        self._latest: dict[tuple[str, str], Funding] = {}
        self._avg: dict[tuple[str, str], RollingMean] = {}
        self.events = 0
        self.rate_8h_null = 0
        self.no_symbol = 0

    def on_event(self, event: Event) -> None:
        """Bus handler: takes funding events, ignores anything else."""
        if isinstance(event, Funding):
            self.add(event)

    def add(self, ev: Funding) -> None:
        """Record one funding event."""
        if ev.symbol is None:
            self.no_symbol += 1
            return
        self.events += 1
        key = (ev.exchange, ev.symbol)
        prev = self._latest.get(key)
        if prev is None or ev.ts >= prev.ts:
            self._latest[key] = ev
        if ev.rate_8h is None:
            self.rate_8h_null += 1
            return
        avg = self._avg.get(key)
        if avg is None:
            avg = self._avg[key] = RollingMean(self.avg_window_s * 1000, self._avg_bucket_ms)
        avg.add(ev.ts, ev.rate_8h)

    def latest(self, exchange: str, symbol: str) -> Funding | None:
        """The latest funding event of one venue's symbol."""
        return self._latest.get((exchange, symbol))

    def avg_rate_8h(self, exchange: str, symbol: str, now_ms: int) -> float | None:
        """Mean ``rate_8h`` (fraction) over the average window at ``now_ms``; None without samples."""
        avg = self._avg.get((exchange, symbol))
        return None if avg is None else avg.mean(now_ms)

    def keys(self) -> list[tuple[str, str]]:
        """``(exchange, symbol)`` pairs seen, sorted."""
        return sorted(self._latest)

    def snapshot(self, now_ms: int) -> list[dict[str, Any]]:
        """One row per ``(exchange, symbol)``: the latest event's fields + ``avg_rate_8h``, ``avg_samples``."""
        rows = []
        for key in self.keys():
            row = _event_dict(self._latest[key])
            avg = self._avg.get(key)
            row["avg_rate_8h"] = None if avg is None else avg.mean(now_ms)
            row["avg_samples"] = 0 if avg is None else avg.count(now_ms)
            row["avg_window_s"] = self.avg_window_s
            rows.append(row)
        return rows

    def stats(self) -> dict[str, int]:
        """events, rate_8h_null, no_symbol, keys."""
        return {
            "events": self.events,
            "rate_8h_null": self.rate_8h_null,
            "no_symbol": self.no_symbol,
            "keys": len(self._latest),
        }


# --------------------------------------------------------------------------- open interest


class OISample(NamedTuple):
    """One open-interest observation.

    Attributes:
        ts: ms since epoch.
        oi_base: base units (null when unknown).
        oi_usd: USD (null when unknown).
        oi_contracts: as reported (null for tickers and seeds).
        source: ``open_interest``, ``ticker`` or ``seed``.
    """

    ts: int
    oi_base: float | None
    oi_usd: float | None
    oi_contracts: float | None
    source: str


def _pct_change(now: float | None, past: float | None) -> float | None:
    if now is None or past is None or past == 0:
        return None
    return (now - past) / past * 100.0


class _OIKey:
    __slots__ = ("histories", "latest")

    def __init__(self, histories: dict[int, SampleHistory]) -> None:
        self.latest: OISample | None = None
        self.histories = histories


class OpenInterestState:
    """Latest open interest per ``(exchange, symbol)`` and its change over fixed horizons.

    Sources: ``open_interest`` events, and ``ticker`` events whose
    ``open_interest``/``open_interest_usd`` is not null; REST history rows via
    :meth:`seed`. "Latest" is the observation with the largest ``ts``.

    Change over horizon ``h`` (default 1 h, 24 h, 7 d), in percent::

        change_pct(h) = (latest - past) / past × 100

    where ``past`` is the newest kept sample with
    ``latest.ts - h - h/12 <= ts <= latest.ts - h``; null when there is none
    (history does not cover it), or when either value is null or past is 0.
    Computed separately for ``oi_base`` and ``oi_usd`` (the base change is
    the position change; the USD one also moves with price).

    History per horizon is a :class:`SampleHistory` thinned to one sample per
    ``h/120`` (30 s for 1 h, 12 min for 24 h, 84 min for 7 d): about 130 samples
    per horizon and key, whatever the event rate.
    """

    def __init__(self, horizons_s: Sequence[int] = (3600, 86_400, 604_800)) -> None:
        self.horizons_s: tuple[int, ...] = tuple(sorted(set(horizons_s)))
        self._keys: dict[tuple[str, str], _OIKey] = {}
        self.events = 0
        self.seeded = 0
        self.no_symbol = 0

    def _key(self, exchange: str, symbol: str) -> _OIKey:
        entry = self._keys.get((exchange, symbol))
        if entry is None:
            hist = {}
            for h in self.horizons_s:
                h_ms = h * 1000
                hist[h] = SampleHistory(h_ms + h_ms // 12, max(1, h_ms // 120), width=2)
            entry = self._keys[(exchange, symbol)] = _OIKey(hist)
        return entry

    def on_event(self, event: Event) -> None:
        """Bus handler: takes ``open_interest`` and ``ticker`` events with OI fields."""
        if isinstance(event, OpenInterest):
            if event.oi_base is None and event.oi_usd is None:
                return
            if event.symbol is None:
                self.no_symbol += 1
                return
            self.update(
                OISample(event.ts, event.oi_base, event.oi_usd, event.oi_contracts, "open_interest"),
                event.exchange,
                event.symbol,
            )
        elif isinstance(event, Ticker):
            if event.open_interest is None and event.open_interest_usd is None:
                return
            if event.symbol is None:
                self.no_symbol += 1
                return
            self.update(
                OISample(event.ts, event.open_interest, event.open_interest_usd, None, "ticker"),
                event.exchange,
                event.symbol,
            )

    def update(self, sample: OISample, exchange: str, symbol: str) -> None:
        """Record one observation (latest if newest, and into every horizon's history)."""
        self.events += 1
        entry = self._key(exchange, symbol)
        if entry.latest is None or sample.ts >= entry.latest.ts:
            entry.latest = sample
        for hist in entry.histories.values():
            hist.add(sample.ts, sample.oi_base, sample.oi_usd)

    def seed(self, exchange: str, symbol: str, rows: Iterable[tuple[int, float | None, float | None]]) -> int:
        """Add REST history rows ``(ts ms, oi_base, oi_usd)``, any order; returns rows taken.

        Seeds fill the histories so a change is known before the process has
        run for a whole horizon; the newest row also becomes "latest" when no
        newer live observation exists. Rows with both values null are skipped.
        """
        taken = 0
        for ts, oi_base, oi_usd in sorted(rows, key=lambda r: r[0]):
            if oi_base is None and oi_usd is None:
                continue
            entry = self._key(exchange, symbol)
            if entry.latest is None or ts > entry.latest.ts:
                entry.latest = OISample(ts, oi_base, oi_usd, None, "seed")
            for hist in entry.histories.values():
                hist.add(ts, oi_base, oi_usd)
            taken += 1
        self.seeded += taken
        return taken

    def latest(self, exchange: str, symbol: str) -> OISample | None:
        """The latest observation of one venue's symbol."""
        entry = self._keys.get((exchange, symbol))
        return None if entry is None else entry.latest

    def change_pct(self, exchange: str, symbol: str, horizon_s: int) -> tuple[float | None, float | None]:
        """``(oi_base change %, oi_usd change %)`` over ``horizon_s`` (see the class docstring).

        Raises:
            KeyError: ``horizon_s`` is not one of ``horizons_s``.
        """
        if horizon_s not in self.horizons_s:
            raise KeyError(f"horizon_s {horizon_s} not tracked; tracked: {self.horizons_s}")
        entry = self._keys.get((exchange, symbol))
        if entry is None or entry.latest is None:
            return None, None
        latest = entry.latest
        h_ms = horizon_s * 1000
        found = entry.histories[horizon_s].at_or_before(latest.ts - h_ms, h_ms // 12)
        if found is None:
            return None, None
        _, (past_base, past_usd) = found
        return _pct_change(latest.oi_base, past_base), _pct_change(latest.oi_usd, past_usd)

    def snapshot(self) -> list[dict[str, Any]]:
        """One row per ``(exchange, symbol)``: latest values and ``change`` {"3600": {base_pct, usd_pct}}."""
        rows = []
        for (exchange, symbol), entry in sorted(self._keys.items()):
            latest = entry.latest
            if latest is None:
                continue
            change = {}
            for h in self.horizons_s:
                base_pct, usd_pct = self.change_pct(exchange, symbol, h)
                change[str(h)] = {"base_pct": base_pct, "usd_pct": usd_pct}
            rows.append(
                {
                    "exchange": exchange,
                    "symbol": symbol,
                    "ts": latest.ts,
                    "oi_base": latest.oi_base,
                    "oi_usd": latest.oi_usd,
                    "oi_contracts": latest.oi_contracts,
                    "source": latest.source,
                    "change": change,
                }
            )
        return rows

    def stats(self) -> dict[str, int]:
        """events, seeded, no_symbol, keys."""
        return {"events": self.events, "seeded": self.seeded, "no_symbol": self.no_symbol, "keys": len(self._keys)}


# --------------------------------------------------------------------------- prices

PRICE_FIELDS: tuple[str, ...] = ("mark", "index", "last", "bid", "ask")


class PriceState:
    """Mark, index, last, bid and ask per ``(exchange, symbol)``, merged from tickers and funding.

    Each field keeps the newest non-null value by event ``ts``: a null field
    leaves the known value in place, and a value older than the one kept is
    ignored. Funding events contribute ``mark`` and ``index`` only.
    """

    MARK_HISTORY_MS = 3_600_000
    MARK_RESOLUTION_MS = 10_000

    def __init__(self) -> None:
        # (exchange, symbol) -> field -> (value, ts)
        self._prices: dict[tuple[str, str], dict[str, tuple[float, int]]] = {}
        # (exchange, symbol) -> mark over the last hour, one sample per 10 s (price moves for alerts)
        self._marks: dict[tuple[str, str], SampleHistory] = {}
        self.events = 0
        self.no_symbol = 0

    def on_event(self, event: Event) -> None:
        """Bus handler: takes ticker and funding events."""
        if isinstance(event, Ticker):
            self._merge(
                event,
                (
                    ("mark", event.mark_price),
                    ("index", event.index_price),
                    ("last", event.last),
                    ("bid", event.bid),
                    ("ask", event.ask),
                ),
            )
        elif isinstance(event, Funding):
            self._merge(event, (("mark", event.mark_price), ("index", event.index_price)))

    def _merge(self, event: Ticker | Funding, values: tuple[tuple[str, float | None], ...]) -> None:
        for _, v in values:
            if v is not None:
                break
        else:
            return  # no price in it
        if event.symbol is None:
            self.no_symbol += 1
            return
        self.events += 1
        key = (event.exchange, event.symbol)
        fields = self._prices.get(key)
        if fields is None:
            fields = self._prices[key] = {}
        ts = event.ts
        for name, value in values:
            if value is None:
                continue
            kept = fields.get(name)
            if kept is None or ts >= kept[1]:
                fields[name] = (value, ts)
        mark = values[0][1]
        if mark is not None:
            history = self._marks.get(key)
            if history is None:
                history = self._marks[key] = SampleHistory(self.MARK_HISTORY_MS, self.MARK_RESOLUTION_MS)
            history.add(ts, mark)

    def mark_move_pct(self, exchange: str, symbol: str, window_ms: int, now_ms: int) -> float | None:
        """Mark price change over ``window_ms`` up to ``now_ms``, percent: the newest mark at or before
        ``now_ms`` against the newest at or before ``now_ms - window_ms`` (10 s resolution, 1 h back);
        None without both."""
        history = self._marks.get((exchange, symbol))
        if history is None:
            return None
        now = history.at_or_before(now_ms)
        then = history.at_or_before(now_ms - window_ms)
        if now is None or then is None or not then[1][0]:
            return None
        return (now[1][0] - then[1][0]) / then[1][0] * 100.0  # type: ignore[operator]

    def get(self, exchange: str, symbol: str) -> dict[str, float | None]:
        """``{"mark", "index", "last", "bid", "ask"}`` (null where never seen)."""
        fields = self._prices.get((exchange, symbol), {})
        return {name: fields[name][0] if name in fields else None for name in PRICE_FIELDS}

    def snapshot(self) -> list[dict[str, Any]]:
        """One row per ``(exchange, symbol)``: the five prices and ``ts`` (newest field update)."""
        rows = []
        for (exchange, symbol), fields in sorted(self._prices.items()):
            row: dict[str, Any] = {"exchange": exchange, "symbol": symbol}
            row.update(self.get(exchange, symbol))
            row["ts"] = max(ts for _, ts in fields.values())
            rows.append(row)
        return rows

    def stats(self) -> dict[str, int]:
        """events, no_symbol, keys."""
        return {"events": self.events, "no_symbol": self.no_symbol, "keys": len(self._prices)}


# --------------------------------------------------------------------------- bundle


class LiveState:
    """All live state behind one bus handler, ``on_event``, and one ``snapshot()``.

    Args:
        liquidation_windows_s: window lengths of :class:`LiquidationWindows`.
        funding_avg_s: span of the funding average (default 24 h).
        oi_horizons_s: horizons of :class:`OpenInterestState`.
    """

    def __init__(
        self,
        *,
        liquidation_windows_s: Sequence[int] = (60, 300, 3600),
        funding_avg_s: int = 86_400,
        oi_horizons_s: Sequence[int] = (3600, 86_400, 604_800),
    ) -> None:
        self.liquidations = LiquidationWindows(liquidation_windows_s)
        self.funding = FundingBoard(funding_avg_s)
        self.open_interest = OpenInterestState(oi_horizons_s)
        self.prices = PriceState()
        self.options: dict[str, OptionChain] = {}
        """One live option chain per venue (underlying → expiry → strike/kind), for ``options`` and ``iv_extreme``."""
        self.recent_liquidations: deque[Liquidation] = deque(maxlen=RECENT_LIQUIDATIONS)
        """The latest liquidations received (a bounded ring), for ``/state/recent_liquidations`` (the CLI's
        ``liquidations --daemon URL``: Binance and Bybit publish no liquidation history over REST)."""
        self.recent_liquidations_dropped = 0
        self._options_pruned_h = 0
        self.now_ms: int | None = None
        self._by_type: dict[str, int] = {}
        self._tags: dict[type, str] = {}  # event class -> its type tag
        self._unified: dict[tuple[str, str], str] = {}  # (exchange, raw_symbol) -> symbol

    def on_event(self, event: Event) -> None:
        """Bus handler: routes each market event to the parts that use it (alerts are ignored)."""
        if isinstance(event, Liquidation):
            self.liquidations.add(event)
            if len(self.recent_liquidations) == self.recent_liquidations.maxlen:
                self.recent_liquidations_dropped += 1
            self.recent_liquidations.append(event)
        elif isinstance(event, Funding):
            self.funding.add(event)
            self.prices.on_event(event)
        elif isinstance(event, Ticker):
            self.prices.on_event(event)
            self.open_interest.on_event(event)
        elif isinstance(event, OpenInterest):
            self.open_interest.on_event(event)
        elif isinstance(event, OptionTicker):
            chain = self.options.get(event.exchange)
            if chain is None:
                chain = self.options[event.exchange] = OptionChain(event.exchange)
            chain.update(event)
            hour = event.ts // 3_600_000
            if hour != self._options_pruned_h:  # expired expiries leave once an hour (event time)
                self._options_pruned_h = hour
                for c in self.options.values():
                    c.prune(event.ts)
        else:
            return  # alerts
        cls = type(event)
        kind = self._tags.get(cls)
        if kind is None:
            kind = self._tags[cls] = str(cls.__struct_config__.tag)
        self._by_type[kind] = self._by_type.get(kind, 0) + 1
        if self.now_ms is None or event.ts > self.now_ms:
            self.now_ms = event.ts
        if event.symbol is not None and (event.exchange, event.raw_symbol) not in self._unified:
            self._unified[(event.exchange, event.raw_symbol)] = event.symbol

    def recent_liquidations_snapshot(self) -> dict[str, Any]:
        """The ring of recent liquidations: ``events`` (oldest first, event JSON form), ``dropped`` (evicted
        so far), ``capacity`` and ``oldest_ms`` (event time of the oldest held)."""
        ring = list(self.recent_liquidations)
        return {
            "capacity": self.recent_liquidations.maxlen,
            "dropped": self.recent_liquidations_dropped,
            "oldest_ms": ring[0].ts if ring else None,
            "events": [msgspec.to_builtins(ev) for ev in ring],
        }

    def seed_open_interest(self, events: Iterable[Event]) -> int:
        """Seed OI history from REST history parsed into ``open_interest`` events; returns rows taken.

        Other event types and events without a symbol are skipped.
        """
        rows: dict[tuple[str, str], list[tuple[int, float | None, float | None]]] = {}
        for ev in events:
            if isinstance(ev, OpenInterest) and ev.symbol is not None:
                rows.setdefault((ev.exchange, ev.symbol), []).append((ev.ts, ev.oi_base, ev.oi_usd))
                self._unified.setdefault((ev.exchange, ev.raw_symbol), ev.symbol)
        return sum(self.open_interest.seed(ex, sym, r) for (ex, sym), r in rows.items())

    def options_snapshot(self) -> list[dict[str, Any]]:
        """Per venue and underlying: the chain summary (ATM IV per expiry, skew, PCRs, max pain, OI USD)."""
        now = self.now_ms if self.now_ms is not None else 0
        return [msgspec.to_builtins(chain.summary(underlying, now))
                for _, chain in sorted(self.options.items()) for underlying in chain.underlyings()]

    def funding_snapshot(self) -> list[dict[str, Any]]:
        """The funding board alone (``/state/funding``), at ``now_ms``."""
        return self.funding.snapshot(self.now_ms if self.now_ms is not None else 0)

    def market_gauges(self, symbols: Iterable[tuple[str, str]]) -> dict[str, list[tuple[Any, ...]]]:
        """Per-symbol values for metrics, limited to ``symbols`` (bounded label sets).

        Args:
            symbols: ``(exchange, raw_symbol)`` or ``(exchange, unified symbol)`` pairs.

        Returns:
            ``funding_rate_8h``, ``open_interest_usd``, ``mark_price``: lists of
            ``(exchange, symbol, value)``; ``liquidations_usd``: list of
            ``(exchange, symbol, side, window_s, notional_usd)``. ``symbol`` is
            the unified one; a pair never seen yields nothing.
        """
        now = self.now_ms if self.now_ms is not None else 0
        known = {(ex, sym) for (ex, _), sym in self._unified.items()}
        wanted = sorted({(ex, self._unified.get((ex, sym), sym)) for ex, sym in symbols} & known)
        funding: list[tuple[Any, ...]] = []
        oi: list[tuple[Any, ...]] = []
        mark: list[tuple[Any, ...]] = []
        liq: list[tuple[Any, ...]] = []
        for exchange, symbol in wanted:
            fund = self.funding.latest(exchange, symbol)
            if fund is not None and fund.rate_8h is not None:
                funding.append((exchange, symbol, fund.rate_8h))
            latest_oi = self.open_interest.latest(exchange, symbol)
            if latest_oi is not None and latest_oi.oi_usd is not None:
                oi.append((exchange, symbol, latest_oi.oi_usd))
            price = self.prices.get(exchange, symbol)["mark"]
            if price is not None:
                mark.append((exchange, symbol, price))
            for side in ("long", "short"):
                for window_s in self.liquidations.windows_s:
                    t = self.liquidations.venue_totals(exchange, symbol, side, window_s, now)
                    liq.append((exchange, symbol, side, window_s, t.notional_usd))
        return {"funding_rate_8h": funding, "open_interest_usd": oi, "mark_price": mark, "liquidations_usd": liq}

    def snapshot(self) -> dict[str, Any]:
        """Plain JSON-able dict for ``/state``: everything, evaluated at ``now_ms``."""
        now = self.now_ms if self.now_ms is not None else 0
        return {
            "now_ms": self.now_ms,
            "liquidations": self.liquidations.snapshot(now),
            "funding": self.funding.snapshot(now),
            "open_interest": self.open_interest.snapshot(),
            "prices": self.prices.snapshot(),
            "options": self.options_snapshot(),
        }

    def stats(self) -> dict[str, Any]:
        """Events taken by type, and each part's counters."""
        return {
            "events": dict(sorted(self._by_type.items())),
            "now_ms": self.now_ms,
            "liquidations": self.liquidations.stats(),
            "funding": self.funding.stats(),
            "open_interest": self.open_interest.stats(),
            "prices": self.prices.stats(),
            "options": {exchange: len(chain) for exchange, chain in sorted(self.options.items())},
        }
