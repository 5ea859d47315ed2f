"""Funding and open-interest history across the simulator's start, on every venue.

The simulator makes up the history before its start and records the history after it. The two
must join with no gap and no duplicate, whether the sim starts on a boundary (a funding settlement,
a 5-minute open-interest boundary) or between boundaries. A settlement or OI point at exactly
``start_ms`` is listed once, as soon as it is in the past, and its values never change after that.
The REST endpoints count ``limit`` in rows returned.

Checked on the books (``Market`` for Binance, ``Market.bybit``, ``Market.okx``) and through each
venue's REST history endpoints, with a hand-moved clock.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from streamer.sim import Market, SimServer
from streamer.sim.market import DAY_MS, HOUR_MS, OI_HISTORY_STEP_MS, FundingRecord, OiPoint
from tests.conftest import eventually

MINUTE_MS = 60_000
FIVE_MIN = OI_HISTORY_STEP_MS
START_ON = 1_767_225_600_000
"""2026-01-01 00:00 UTC: a funding settlement for 4 h and 8 h contracts and a 5-minute boundary."""
START_OFF = START_ON + HOUR_MS + 2 * MINUTE_MS + 3_400
"""01:02:03.4 UTC: neither a settlement nor a 5-minute boundary."""
SEED = 5

SYMBOLS: dict[str, tuple[str, ...]] = {
    "binance": ("BTCUSDT", "WIFUSDT", "BTCUSD_PERP"),  # 8 h, 4 h, COIN-M 8 h
    "bybit": ("BTCUSDT", "SOLUSDT", "BTCUSD"),  # 8 h, 4 h, inverse 8 h
    "okx": ("BTC-USDT-SWAP", "BTC-USD-SWAP"),  # 8 h, inverse 8 h
}
Key = tuple[str, str]


def book(m: Market, venue: str) -> Any:
    """Binance's book is the market itself; the others are ``Market.book(venue)``."""
    return m if venue == "binance" else m.book(venue)


def interval_ms(m: Market, venue: str, symbol: str) -> int:
    contracts = m.instruments if venue == "binance" else m.book(venue).contracts
    return contracts[symbol].funding_interval_h * HOUR_MS


def floor_to(ts: int, step: int) -> int:
    return ts - ts % step


# --------------------------------------------------------------------------------------------
# The books
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    """What the books listed at one market time ``now``."""

    now: int
    funding: dict[Key, list[FundingRecord]]
    """``funding_records`` over the two days up to now."""
    oi: dict[Key, dict[int, OiPoint | None]]
    """``oi_point`` at every 5-minute boundary from 30 minutes before the start to the first after now."""
    recorded_funding: dict[Key, list[FundingRecord]]
    recorded_oi: dict[Key, list[OiPoint]]


@dataclass(frozen=True)
class Timeline:
    start: int
    intervals: dict[Key, int]
    starting: dict[Key, tuple[float, float]]
    """Open interest and mark price of every contract when the market was created."""
    last_settled: dict[str, float]
    """OKX ``last_settled_rate`` (``settFundingRate``) of each perpetual when created."""
    seen: list[Seen]


def _observe(m: Market) -> Seen:
    now = m.now_ms
    seen = Seen(now, {}, {}, {}, {})
    first = floor_to(m.start_ms, FIVE_MIN) - 6 * FIVE_MIN
    boundaries = range(first, floor_to(now, FIVE_MIN) + FIVE_MIN + 1, FIVE_MIN)
    for venue, symbols in SYMBOLS.items():
        b = book(m, venue)
        for s in symbols:
            key = (venue, s)
            seen.funding[key] = b.funding_records(s, now - 2 * DAY_MS, now)
            seen.oi[key] = {ts: b.oi_point(s, ts) for ts in boundaries}
            seen.recorded_funding[key] = list(b.funding_history[s])
            seen.recorded_oi[key] = list(b.oi_history[s])
    return seen


@functools.cache
def timeline(start: int, step: int, span_ms: int) -> Timeline:
    """A calm market from ``start`` on a ``step`` grid, observed when created, one minute in, one
    minute past the first 5-minute boundary after the start, and at ``start + span_ms``."""
    m = Market(seed=SEED, start_ms=start, step_ms=step)
    keys = [(venue, s) for venue, symbols in SYMBOLS.items() for s in symbols]
    intervals = {(v, s): interval_ms(m, v, s) for v, s in keys}
    starting = {(v, s): (book(m, v).state(s).open_interest, book(m, v).state(s).mark_price) for v, s in keys}
    last_settled = {s: m.okx.state(s).last_settled_rate for s in SYMBOLS["okx"]}
    seen = [_observe(m)]
    for t in sorted({start + MINUTE_MS, floor_to(start, FIVE_MIN) + FIVE_MIN + MINUTE_MS, start + span_ms}):
        m.advance_to(t)
        seen.append(_observe(m))
    return Timeline(start, intervals, starting, last_settled, seen)


CASES = [
    # start, grid, span. A start on a settlement and one off every boundary, run across the next
    # settlement (8 h); and two starts on a boundary that a 7 s grid does not reach (7 s does not
    # divide 5 minutes: the market's first grid point is before the start, its first step after).
    pytest.param(START_ON, 10_000, 8 * HOUR_MS + 6 * MINUTE_MS, id="on-settlement"),
    pytest.param(START_OFF, 10_000, 8 * HOUR_MS + 6 * MINUTE_MS, id="off-boundary"),
    pytest.param(START_ON + 8 * HOUR_MS, 7_000, 11 * MINUTE_MS, id="on-settlement-odd-grid"),
    pytest.param(START_ON + FIVE_MIN, 7_000, 11 * MINUTE_MS, id="on-5m-odd-grid"),
]


def test_the_cases_are_what_their_names_say() -> None:
    assert START_ON % (8 * HOUR_MS) == 0
    assert START_OFF % FIVE_MIN
    assert START_OFF % (4 * HOUR_MS)
    assert (START_ON + 8 * HOUR_MS) % 7_000
    assert (START_ON + FIVE_MIN) % 7_000


@pytest.mark.parametrize("venue", sorted(SYMBOLS))
@pytest.mark.parametrize(("start", "step", "span"), CASES)
def test_funding_history_is_continuous_across_the_start(venue: str, start: int, step: int, span: int) -> None:
    tl = timeline(start, step, span)
    for seen in tl.seen:
        for s in SYMBOLS[venue]:
            key, every = (venue, s), tl.intervals[(venue, s)]
            stamps = [r.funding_ms for r in seen.funding[key]]
            # every settlement of the two days up to now, each once, the latest one included
            lo = seen.now - 2 * DAY_MS
            assert stamps == list(range(-(-lo // every) * every, seen.now + 1, every)), (seen.now, s)
            if start % every == 0:
                assert stamps.count(start) == (1 if seen.now >= start else 0)
            # made up to the start, recorded after it
            assert all(r.funding_ms > start for r in seen.recorded_funding[key])
            assert [r for r in seen.funding[key] if r.funding_ms > start] == seen.recorded_funding[key]
    for s in SYMBOLS[venue]:
        # a settlement once listed never changes (the one at the start included)
        first_seen: dict[int, FundingRecord] = {}
        for seen in tl.seen:
            for r in seen.funding[(venue, s)]:
                assert first_seen.setdefault(r.funding_ms, r) == r
        if span > 8 * HOUR_MS:  # the run crossed the next settlement
            assert tl.seen[-1].recorded_funding[(venue, s)], s


@pytest.mark.parametrize("venue", sorted(SYMBOLS))
@pytest.mark.parametrize(("start", "step", "span"), CASES)
def test_open_interest_history_is_continuous_across_the_start(venue: str, start: int, step: int, span: int) -> None:
    tl = timeline(start, step, span)
    for seen in tl.seen:
        for s in SYMBOLS[venue]:
            key, points = (venue, s), seen.oi[(venue, s)]
            # a point at every boundary up to now (the start's own included), none after it
            assert [ts for ts, p in points.items() if p is None] == [floor_to(seen.now, FIVE_MIN) + FIVE_MIN]
            assert all(p is None or p.ts == ts for ts, p in points.items())
            recorded = [p.ts for p in seen.recorded_oi[key]]
            assert recorded == list(range(floor_to(start + FIVE_MIN - 1, FIVE_MIN), seen.now + 1, FIVE_MIN)) or (
                seen.now < start and recorded == [start]
            )
            if start % FIVE_MIN == 0 and seen.now >= start:
                # a start on a boundary: its point is the starting state
                oi, mark = tl.starting[key]
                assert points[start] == OiPoint(start, oi, mark)
    for s in SYMBOLS[venue]:
        # a point once listed never changes
        first_seen: dict[int, OiPoint] = {}
        for seen in tl.seen:
            for ts, p in seen.oi[(venue, s)].items():
                if p is not None:
                    assert first_seen.setdefault(ts, p) == p


@pytest.mark.parametrize(("start", "step", "span"), CASES)
def test_okx_last_settled_rate_is_the_last_listed_settlement(start: int, step: int, span: int) -> None:
    """``settFundingRate`` (the last settled rate) when the sim starts is the rate the history lists
    for the last settlement at or before the start, whether or not the start is on it."""
    tl = timeline(start, step, span)
    for s in SYMBOLS["okx"]:
        records = [r for r in tl.seen[-1].funding[("okx", s)] if r.funding_ms <= start]
        assert records[-1].funding_ms == floor_to(start, 8 * HOUR_MS)
        assert tl.last_settled[s] == records[-1].rate


# --------------------------------------------------------------------------------------------
# The venues' REST history endpoints
# --------------------------------------------------------------------------------------------

REST_STEP = 10_000
"""A coarse grid, so that minutes of market time pass quickly."""
STARTS = [pytest.param(START_ON, id="on-settlement"), pytest.param(START_OFF, id="off-boundary")]


class HandClock:
    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


@contextlib.asynccontextmanager
async def sim_six_minutes_in(start: int) -> AsyncIterator[tuple[SimServer, aiohttp.ClientSession]]:
    """A calm sim from ``start``, moved six minutes on (past the first 5-minute boundary after the
    start) before any request; then its clock stands still."""
    clock = HandClock(start)
    async with SimServer(seed=SEED, clock=clock, speed=1_000.0, step_ms=REST_STEP) as sim:
        target = floor_to(start + 6 * MINUTE_MS, REST_STEP)
        clock.now_ms = target
        await eventually(lambda: sim.market.now_ms >= target)
        async with aiohttp.ClientSession() as http:
            yield sim, http


async def get(http: aiohttp.ClientSession, url: str) -> Any:
    async with http.get(url) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json(content_type=None)


def expected(start: int, now: int, every: int) -> tuple[list[int], list[int]]:
    """Oldest first: the last two settlements at or before ``start`` (``every`` apart), and the last
    three 5-minute boundaries at or before ``now``."""
    settled, boundary = floor_to(start, every), floor_to(now, FIVE_MIN)
    return [settled - every, settled], [boundary - 2 * FIVE_MIN, boundary - FIVE_MIN, boundary]


def test_expected_is_the_bug_reports_answer() -> None:
    """The reported case, a start on 00:00 UTC on an 8 h contract: funding ``[-8 h, 0]``, not
    ``[-16 h, -8 h]``; 5-minute OI through the start's own point."""
    funding, oi = expected(START_ON, START_ON + 6 * MINUTE_MS, 8 * HOUR_MS)
    assert [ts - START_ON for ts in funding] == [-8 * HOUR_MS, 0]
    assert [ts - START_ON for ts in oi] == [-FIVE_MIN, 0, FIVE_MIN]


@pytest.mark.parametrize("start", STARTS)
async def test_binance_rest_history_joins_at_the_start(start: int) -> None:
    async with sim_six_minutes_in(start) as (sim, http):
        m = sim.market
        for root, api, symbol, oi_query in (
            (sim.urls["binance_um_rest"], "/fapi/v1", "BTCUSDT", "symbol=BTCUSDT"),
            (sim.urls["binance_um_rest"], "/fapi/v1", "WIFUSDT", "symbol=WIFUSDT"),
            (sim.urls["binance_cm_rest"], "/dapi/v1", "BTCUSD_PERP", "pair=BTCUSD&contractType=PERPETUAL"),
        ):
            funding_want, oi_want = expected(start, m.now_ms, interval_ms(m, "binance", symbol))
            rows = await get(http, f"{root}{api}/fundingRate?symbol={symbol}&limit=2")
            assert [r["fundingTime"] for r in rows] == funding_want, symbol
            hist = f"{root}/futures/data/openInterestHist?{oi_query}&period=5m&limit=3"
            rows = await get(http, hist)
            assert [r["timestamp"] for r in rows] == oi_want, symbol  # limit counts the rows returned
            assert await get(http, f"{hist}&startTime={oi_want[0]}") == rows
        if start % FIVE_MIN == 0:
            url = sim.urls["binance_um_rest"] + "/futures/data/openInterestHist?symbol=BTCUSDT&period=5m"
            [row] = await get(http, f"{url}&startTime={start}&endTime={start}")
            assert float(row["sumOpenInterest"]) == m.oi_history["BTCUSDT"][0].open_interest


@pytest.mark.parametrize("start", STARTS)
async def test_bybit_rest_history_joins_at_the_start(start: int) -> None:
    async with sim_six_minutes_in(start) as (sim, http):
        m, rest = sim.market, sim.urls["bybit_rest"] + "/v5/market"
        for category, symbol in (("linear", "BTCUSDT"), ("linear", "SOLUSDT"), ("inverse", "BTCUSD")):
            funding_want, oi_want = expected(start, m.now_ms, interval_ms(m, "bybit", symbol))
            q = f"category={category}&symbol={symbol}"
            body = await get(http, f"{rest}/funding/history?{q}&limit=2")
            assert [int(r["fundingRateTimestamp"]) for r in body["result"]["list"]] == funding_want[::-1], symbol
            body = await get(http, f"{rest}/open-interest?{q}&intervalTime=5min&limit=3")
            assert [int(r["timestamp"]) for r in body["result"]["list"]] == oi_want[::-1], symbol
        if start % FIVE_MIN == 0:
            q = f"category=linear&symbol=BTCUSDT&intervalTime=5min&startTime={start}&endTime={start}"
            [row] = (await get(http, f"{rest}/open-interest?{q}"))["result"]["list"]
            assert float(row["singleOpenInterest"]) == m.bybit.oi_history["BTCUSDT"][0].open_interest


@pytest.mark.parametrize("start", STARTS)
async def test_okx_rest_history_joins_at_the_start(start: int) -> None:
    async with sim_six_minutes_in(start) as (sim, http):
        m, rest = sim.market, sim.urls["okx_rest"] + "/api/v5"
        for symbol in SYMBOLS["okx"]:
            funding_want, oi_want = expected(start, m.now_ms, interval_ms(m, "okx", symbol))
            history = (await get(http, f"{rest}/public/funding-rate-history?instId={symbol}&limit=2"))["data"]
            assert [int(r["fundingTime"]) for r in history] == funding_want[::-1], symbol
            url = f"{rest}/rubik/stat/contracts/open-interest-history?instId={symbol}&period=5m&limit=3"
            assert [int(r[0]) for r in (await get(http, url))["data"]] == oi_want[::-1], symbol
            # the current funding: its last settled rate is the newest settlement the history lists
            [current] = (await get(http, f"{rest}/public/funding-rate?instId={symbol}"))["data"]
            assert float(current["settFundingRate"]) == float(history[0]["realizedRate"])
            assert int(current["fundingTime"]) == funding_want[-1] + 8 * HOUR_MS
