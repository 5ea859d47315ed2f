"""Witness: ccxt 4.5.90 (REST and ccxt.pro) pointed at the simulator reads the same Bybit v5 funding,
open interest, tickers and liquidations as our adapter does from the same simulator state (STYLE.md A2:
an independent implementation); both are also held to the simulator's own record (``sim.market.bybit``).

The simulator runs on a hand clock (``_ccxt.HandClock``): while it stands still a ccxt REST read and ours
see one state, and a WebSocket frame stamped ``ts = t`` is the book's state at ``t``.

Agreements (same strings, same floats): funding rate, next funding time (ccxt ``fundingTimestamp`` =
our ``next_funding_ts`` = ``nextFundingTime``, the settlement the rate is charged at), ``interval``
(ccxt ``'8h'``/``'4h'`` from instruments-info ``fundingInterval`` minutes; ours 8.0/4.0), mark and
index from ``/v5/market/tickers``; funding history; open-interest timestamps; last, bid, ask, mark and
index of the ``tickers.<SYMBOL>`` stream after a snapshot and dozens of deltas (both merge a delta into
the last state, per Bybit's ticker page: "If a response param is not found in the message, then its
value has not changed"); liquidation count per symbol, ``T``, bankruptcy price ``p`` and size ``v``.

Disagreements, and who is right:

1. Open interest is BOTH sides in ccxt, ONE side in ours. Bybit documents ``openInterest`` as the sum of
   both sides (bbd: docs/v5/market/open-interest.mdx "The value is the sum of both sides"; ticker.mdx
   "(both sides)") and publishes ``singleOpenInterest`` for one side. ccxt 4.5.90 reports ``openInterest``
   as is (linear ``openInterestAmount`` base coin, inverse ``openInterestValue`` USD) and ignores
   ``singleOpenInterest``; ours reports one side (docs/decisions.md, Bybit). The factor is exactly 2,
   checked on every REST row and every stream state. Convention, not an error in either, but ccxt's Bybit
   number is twice what ccxt reports for the same positions on Binance or OKX (one side there): ours is
   the comparable one.
2. ccxt's ``fetch_open_interest`` asks ``intervalTime=1h`` unless told ``params={'interval': '5m'}``, so
   by default it returns the last full hour's row, up to an hour old; ours asks ``5min``. Both are
   Bybit's numbers; ours is fresher. Not an error.
3. Inverse 24 h volume: ccxt's ``parse_ticker`` puts ``volume24h`` in ``baseVolume`` and ``turnover24h``
   in ``quoteVolume`` for every category. For inverse contracts ``volume24h`` is USD (contracts of 1 USD)
   and ``turnover24h`` is coin (ccxt's own docstring example for BTCUSD: volume24h "49337318",
   turnover24h "2352.94950046"; exchanges.md §2.2), so ccxt's BTC/USD:BTC ``baseVolume`` is USD,
   ``quoteVolume`` BTC and its ``vwap`` (quote / base) a meaningless 1e-5. ccxt is wrong; ours
   (``volume_24h_usd`` = ``volume24h``) is right.
4. REST ticker time: ccxt's ``fetch_ticker`` has ``timestamp`` None (a tickers row has no time; ccxt does
   not read the envelope's ``time``); ours stamps the body's ``time`` (docs/decisions.md, REST ts).
   Ours is fuller; ``fetch_funding_rate`` does use ``time`` and agrees with ours.
5. Funding on the stream: ccxt.pro 4.5.90 has no ``watch_funding_rate`` for Bybit; ``fundingRate`` and
   ``nextFundingTime`` stay in the merged ticker's ``info``. Our ``funding`` event equals those values.
6. Liquidation side. Bybit's ``S`` is the POSITION side (bbd: all-liquidation.mdx; ``Buy`` = a long was
   liquidated). ccxt's ``side`` is ``S`` lower-cased, so ccxt says ``buy`` for a liquidated long here,
   while on Binance (order side) and OKX (order side) ccxt says ``sell`` for the same event: ccxt's
   ``side`` means different things per venue. Ours is ``long`` on every venue (DESIGN.md). Ours is right;
   ccxt is inconsistent.
7. ccxt bug: every WS liquidation has ``contractSize``, ``baseValue`` and ``quoteValue`` None:
   ``parse_ws_liquidation`` (ccxt/pro/bybit.py) sets ``contractSize`` then calls ``safe_liquidation``
   without the market, which overwrites it (the same bug as on Binance). Inverse ``contracts`` is the USD
   size, right for 1 USD contracts; ours adds qty (base) = ``v`` / ``p`` and value_usd = ``v``.
8. Simulator bug (not ccxt, not us): ``GET /v5/market/open-interest`` prints ``singleOpenInterest`` with
   ``_trim(single, qty_decimals)`` (streamer/sim/venues/bybit.py, ``BybitVenue._open_interest``), and
   ``_trim`` strips trailing zeros even with 0 decimals, so BTCUSD's 150000000 goes out as ``"15"``.
   ccxt does not read the field; ours does (one side) and so reads 15 USD.
   ``test_inverse_rest_open_interest_single_side_is_half_of_ccxts_both_sides`` asserts what Bybit would
   answer (fixed: the simulator now keeps an integer's zeros). (Its newest row is the point at the
   sim start, a 5-minute boundary, 150000000 USD one side, which the simulator lists since its
   start-boundary fix; the ticker stream prints the same field with ``_d`` and is right.)
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from streamer.exchanges.base import Stream
from streamer.model import Funding, Liquidation, OpenInterest, Ticker
from streamer.sim.market import HOUR_MS, OI_HISTORY_STEP_MS
from tests.conftest import eventually
from tests.witness._ccxt import START_MS, hand_sim, move_to, walk
from tests.witness._ccxt_venues import (
    FrameTap,
    Watcher,
    bybit_subscribers,
    ccxt_rest,
    ccxt_ws,
    ours,
)

RATE_PRINTED = 5e-7 + 1e-12
"""The simulator prints Bybit funding rates with 6 decimals."""
POSITION_OF_ORDER = {"SELL": "long", "BUY": "short"}
"""The sim records the liquidation ORDER side; a SELL closes a long (Bybit sends ``S: Buy`` for it)."""
LINEAR = {
    "BTCUSDT": "BTC/USDT:USDT",
    "ETHUSDT": "ETH/USDT:USDT",
    "SOLUSDT": "SOL/USDT:USDT",
    "BTCPERP": "BTC/USDC:USDC",
}
INVERSE = {"BTCUSD": "BTC/USD:BTC"}


def one(events: list, kind: type):
    found = [e for e in events if isinstance(e, kind)]
    assert len(found) == 1, found
    return found[0]


def half_unit(decimals: int) -> float:
    """How far a number printed with ``decimals`` decimals may be from the float it was printed from."""
    return 0.5 * 10.0**-decimals + 1e-9


# --------------------------------------------------------------------------- 1. funding (REST)


@pytest.mark.parametrize(
    ("unified", "raw", "market", "hours"),
    [
        ("BTC/USDT:USDT", "BTCUSDT", "linear", 8),
        ("SOL/USDT:USDT", "SOLUSDT", "linear", 4),
        ("BTC/USD:BTC", "BTCUSD", "inverse", 8),
    ],
)
async def test_funding_rate_matches_ccxt_fetch_funding_rate_and_the_sim(unified, raw, market, hours):
    """ccxt emulates ``fetch_funding_rate`` with ``/v5/market/tickers``, the body our ``rest_tickers``
    reads: same rate, settlement time, mark and index. ccxt's ``interval`` string comes from
    instruments-info ``fundingInterval`` (minutes); ours from the ticker's ``fundingIntervalHour``."""
    async with hand_sim(seed=31) as (sim, clock):
        await move_to(sim, clock, START_MS + 5_000)
        async with ccxt_rest("bybit", sim.urls) as ex, ours("bybit", sim.urls) as us:
            theirs = await ex.fetch_funding_rate(unified)
            funding = one(await us.call(us.adapter.rest_tickers(market, raw)), Funding)
            book = sim.market.bybit
            c, st = book.contracts[raw], book.state(raw)

            assert theirs["symbol"] == unified
            assert funding.raw_symbol == raw
            assert funding.rate == theirs["fundingRate"]
            assert funding.next_funding_ts == theirs["fundingTimestamp"]
            assert funding.mark_price == theirs["markPrice"]
            assert funding.index_price == theirs["indexPrice"]
            assert funding.ts == theirs["timestamp"] == sim.market.now_ms
            assert theirs["interval"] == f"{hours}h"
            assert funding.interval_h == float(hours) == c.funding_interval_h
            assert funding.predicted_rate is None
            assert theirs["nextFundingRate"] is None
            assert funding.rate_8h == pytest.approx(funding.rate * 8 / hours, rel=1e-12)

            assert funding.rate == pytest.approx(st.funding_rate, abs=RATE_PRINTED)
            assert funding.mark_price == pytest.approx(st.mark_price, abs=half_unit(c.price_decimals))
            assert funding.index_price == pytest.approx(st.index_price, abs=half_unit(c.price_decimals))
            assert funding.next_funding_ts == st.next_funding_ms
            assert st.next_funding_ms - START_MS == hours * HOUR_MS - HOUR_MS  # a 01:00 start


@pytest.mark.parametrize(("unified", "raw"), [("BTC/USDT:USDT", "BTCUSDT"), ("BTC/USD:BTC", "BTCUSD")])
async def test_funding_history_matches_ccxt_fetch_funding_rate_history(unified, raw):
    """``/v5/market/funding/history``: ccxt's ``timestamp`` and our ``ts`` are ``fundingRateTimestamp``;
    our ``next_funding_ts`` is that settlement too (docs/decisions.md)."""
    async with hand_sim(seed=32) as (sim, clock):
        await move_to(sim, clock, START_MS + 5_000)
        async with ccxt_rest("bybit", sim.urls) as ex, ours("bybit", sim.urls) as us:
            theirs = await ex.fetch_funding_rate_history(unified, limit=6)
            mine = sorted(
                (e for e in await us.call(us.adapter.rest_funding_history(raw, 6)) if isinstance(e, Funding)),
                key=lambda e: e.ts,
            )
        truth = sim.market.bybit.funding_records(raw, 0, sim.market.now_ms)[-6:]
        assert len(theirs) == len(mine) == len(truth) == 6
        for row, f, rec in zip(theirs, mine, truth, strict=True):
            assert row["symbol"] == unified
            assert f.ts == f.next_funding_ts == row["timestamp"] == rec.funding_ms
            assert f.rate == row["fundingRate"] == pytest.approx(rec.rate, abs=1e-12)
            assert f.interval_h == 8.0


# --------------------------------------------------------------------------- 2. open interest (REST)


async def test_open_interest_linear_ccxt_reports_both_sides_ours_one_side():
    """``/v5/market/open-interest`` BTCUSDT: ccxt ``openInterestAmount`` = ``openInterest`` (both sides,
    base coin); ours ``oi_contracts`` = ``oi_base`` = ``singleOpenInterest``, exactly half; the sim's
    book holds one side. ccxt gives no value; ours ``oi_usd`` = one side × the last mark."""
    async with hand_sim(seed=33, start_ms=START_MS + 4 * 60_000) as (sim, clock):  # 01:04
        await move_to(sim, clock, START_MS + 5 * 60_000 + 30_000)  # the latest 5-minute row, 01:05, is live
        async with ccxt_rest("bybit", sim.urls) as ex, ours("bybit", sim.urls) as us:
            theirs = await ex.fetch_open_interest("BTC/USDT:USDT", params={"interval": "5m"})
            hourly = await ex.fetch_open_interest("BTC/USDT:USDT")  # ccxt's default: intervalTime=1h
            mark = one(await us.call(us.adapter.rest_tickers("linear", "BTCUSDT")), Funding).mark_price
            oi = one(await us.call(us.adapter.rest_open_interest("BTCUSDT")), OpenInterest)
        point = sim.market.bybit.oi_point("BTCUSDT", oi.ts)
        assert point is not None

        assert oi.ts == theirs["timestamp"] == START_MS + OI_HISTORY_STEP_MS
        assert theirs["symbol"] == "BTC/USDT:USDT"
        assert theirs["openInterestAmount"] == 2 * oi.oi_contracts  # both sides = exactly twice one side
        assert float(theirs["info"]["singleOpenInterest"]) == oi.oi_contracts  # ccxt leaves it in info
        assert oi.oi_contracts == oi.oi_base == pytest.approx(point.open_interest, abs=half_unit(3))
        assert theirs["openInterestValue"] is None
        assert theirs["baseVolume"] is None
        assert mark is not None
        assert oi.oi_usd == pytest.approx(oi.oi_base * mark, rel=1e-12)

        assert hourly["timestamp"] == START_MS  # the last full hour (01:00): 5 minutes older than ours here
        assert hourly["timestamp"] % HOUR_MS == 0
        assert hourly["timestamp"] < oi.ts


async def test_open_interest_history_linear_matches_ccxt_times_two():
    """``fetch_open_interest_history`` (5m) against ours: same rows, ccxt's twice ours, ours the sim's
    one-side record. The sim starts on a 5-minute boundary (01:00): that point is listed, as Bybit
    would list it, and the earlier ones are the book's synthesized history."""
    async with hand_sim(seed=34) as (sim, clock):
        await move_to(sim, clock, START_MS + 1_000)
        async with ccxt_rest("bybit", sim.urls) as ex, ours("bybit", sim.urls) as us:
            theirs = await ex.fetch_open_interest_history("SOL/USDT:USDT", "5m", limit=4)
            mine = sorted(
                (
                    e
                    for e in await us.call(us.adapter.rest_open_interest_hist("SOLUSDT", "5m", 4))
                    if isinstance(e, OpenInterest)
                ),
                key=lambda e: e.ts,
            )
        step = OI_HISTORY_STEP_MS
        assert [row["timestamp"] - START_MS for row in theirs] == [-3 * step, -2 * step, -step, 0]
        assert [oi.ts for oi in mine] == [row["timestamp"] for row in theirs]
        for row, oi in zip(theirs, mine, strict=True):
            point = sim.market.bybit.oi_point("SOLUSDT", oi.ts)
            assert point is not None
            assert row["openInterestAmount"] == 2 * oi.oi_contracts
            assert oi.oi_contracts == oi.oi_base == pytest.approx(point.open_interest, abs=half_unit(1))


async def test_inverse_rest_open_interest_single_side_is_half_of_ccxts_both_sides():
    """BTCUSD ``/v5/market/open-interest``: ccxt ``openInterestValue`` = ``openInterest`` (both sides,
    USD: ccxt calls a USD amount a value, fair for 1 USD contracts); ours ``oi_contracts`` = ``oi_usd`` =
    ``singleOpenInterest``, which must be half of it and the sim's one-side record (150000000 at start)."""
    async with hand_sim(seed=35) as (sim, clock):
        await move_to(sim, clock, START_MS + 1_000)
        async with ccxt_rest("bybit", sim.urls) as ex, ours("bybit", sim.urls) as us:
            theirs = await ex.fetch_open_interest_history("BTC/USD:BTC", "5m", limit=3)
            mine = sorted(
                (
                    e
                    for e in await us.call(us.adapter.rest_open_interest_hist("BTCUSD", "5m", 3))
                    if isinstance(e, OpenInterest)
                ),
                key=lambda e: e.ts,
            )
        assert [row["timestamp"] - START_MS for row in theirs] == [-2 * OI_HISTORY_STEP_MS, -OI_HISTORY_STEP_MS, 0]
        for row, oi in zip(theirs, mine, strict=True):
            point = sim.market.bybit.oi_point("BTCUSD", oi.ts)
            assert point is not None
            assert row["openInterestAmount"] is None
            assert row["openInterestValue"] == 2 * point.open_interest  # ccxt: both sides, right
            assert oi.ts == row["timestamp"]
            assert oi.oi_contracts == oi.oi_usd == point.open_interest  # ours: one side (fails: sim prints "15")


# --------------------------------------------------------------------------- 3. tickers (REST and WebSocket)


@pytest.mark.parametrize(
    ("unified", "raw", "market"), [("BTC/USDT:USDT", "BTCUSDT", "linear"), ("BTC/USD:BTC", "BTCUSD", "inverse")]
)
async def test_rest_ticker_matches_ccxt_fetch_ticker_but_ccxt_swaps_inverse_volumes(unified, raw, market):
    """Same last, bid, ask, mark and index. ccxt's ``timestamp`` is None (the row has no time); ours is the
    body's ``time``. Volumes: linear ``volume24h`` base / ``turnover24h`` USDT, as ccxt says; inverse
    ``volume24h`` USD / ``turnover24h`` BTC, which ccxt labels base / quote the other way round."""
    async with hand_sim(seed=36) as (sim, clock):
        await move_to(sim, clock, START_MS + 5_000)
        async with ccxt_rest("bybit", sim.urls) as ex, ours("bybit", sim.urls) as us:
            theirs = await ex.fetch_ticker(unified)
            ticker = one(await us.call(us.adapter.rest_tickers(market, raw)), Ticker)
        c, st = sim.market.bybit.contracts[raw], sim.market.bybit.state(raw)

        assert (ticker.last, ticker.bid, ticker.ask) == (theirs["last"], theirs["bid"], theirs["ask"])
        assert (ticker.mark_price, ticker.index_price) == (theirs["markPrice"], theirs["indexPrice"])
        assert ticker.last == pytest.approx(st.last_price, abs=half_unit(c.price_decimals))
        assert theirs["timestamp"] is None
        assert ticker.ts == sim.market.now_ms
        if market == "linear":
            assert ticker.volume_24h_usd == theirs["quoteVolume"]  # USDT turnover
            assert theirs["baseVolume"] == pytest.approx(st.volume_24h, abs=half_unit(4))  # base coin
        else:
            assert ticker.volume_24h_usd == theirs["baseVolume"]  # ccxt "base" volume: USD contracts
            assert ticker.volume_24h_usd == pytest.approx(st.volume_24h, abs=half_unit(4))
            assert theirs["quoteVolume"] == pytest.approx(st.turnover_24h, abs=half_unit(4))  # ccxt "quote": BTC
            assert theirs["quoteVolume"] < theirs["baseVolume"] / 1000  # BTC, not USD
            assert theirs["vwap"] < 1e-3  # ccxt's quote / base: BTC per USD, not a price


@pytest.mark.parametrize(
    ("unified", "raw", "market", "ws_key"),
    [
        ("BTC/USDT:USDT", "BTCUSDT", "linear", "bybit_ws_linear"),
        ("BTC/USD:BTC", "BTCUSD", "inverse", "bybit_ws_inverse"),
    ],
)
async def test_ticker_stream_snapshot_and_deltas_merge_alike_in_ccxt_watch_ticker_and_ours(
    unified, raw, market, ws_key
):
    """``tickers.<SYMBOL>``: a snapshot, then a delta every 100 ms with only the changed keys. After each
    second (ten deltas) ccxt's merged ticker and our latest ticker/funding state are compared field by
    field, and with the book. ccxt keeps funding and open interest in ``info`` only; its
    ``openInterest`` is both sides, ours one."""
    async with hand_sim(seed=37) as (sim, clock), ccxt_ws("bybit", sim.urls) as ex, ours("bybit", sim.urls) as us:
        stream = Stream("ticker", raw, market)
        topic = us.adapter.stream_key(stream)
        assert topic == f"tickers.{raw}"
        book = sim.market.bybit
        c = book.contracts[raw]
        async with (
            FrameTap("bybit", us.adapter, sim.urls[ws_key], [stream]) as tap,
            Watcher(lambda: ex.watch_ticker(unified)),
        ):
            await eventually(lambda: bybit_subscribers(sim, topic) == 2)
            for k in range(1, 6):
                t = START_MS + k * 1000
                await move_to(sim, clock, t)
                await eventually(
                    lambda t=t: (
                        ex.tickers.get(unified, {}).get("timestamp") == t
                        and any(json.loads(r.text)["ts"] == t for r in tap.received)
                    )
                )
                theirs = ex.tickers[unified]
                ticker = tap.of(Ticker)[-1]
                funding = tap.of(Funding)[-1]  # the merged state: nothing changed after its frame
                st = book.state(raw)
                info = theirs["info"]

                assert ticker.ts == t
                assert theirs["symbol"] == unified
                assert (ticker.last, ticker.bid, ticker.ask) == (theirs["last"], theirs["bid"], theirs["ask"])
                assert (ticker.mark_price, ticker.index_price) == (theirs["markPrice"], theirs["indexPrice"])
                assert funding.rate == float(info["fundingRate"])
                assert funding.next_funding_ts == int(info["nextFundingTime"]) == st.next_funding_ms
                assert funding.interval_h == float(info["fundingIntervalHour"]) == 8.0
                assert "fundingRate" not in theirs  # a ccxt ticker has no funding field

                single = float(info["singleOpenInterest"])
                assert float(info["openInterest"]) == 2 * single  # the venue's both sides
                if market == "linear":
                    assert ticker.open_interest == single  # ours: one side, base coin
                else:
                    assert ticker.open_interest_usd == single  # ours: one side, USD
                    assert ticker.open_interest == float(info["singleOpenInterestValue"])  # BTC

                pd = c.price_decimals
                assert ticker.last == pytest.approx(st.last_price, abs=half_unit(pd))
                assert ticker.mark_price == pytest.approx(st.mark_price, abs=half_unit(pd))
                assert ticker.index_price == pytest.approx(st.index_price, abs=half_unit(pd))
                assert funding.rate == pytest.approx(st.funding_rate, abs=RATE_PRINTED)
                assert single == pytest.approx(st.open_interest, abs=half_unit(c.qty_decimals))

        frames = [json.loads(r.text) for r in tap.received]
        assert frames[0]["type"] == "snapshot"
        deltas = [f["data"] for f in frames if f["type"] == "delta"]
        assert len(deltas) >= 40  # ten grid steps a second, one delta each when anything moved
        # the settlement time and interval never change here, so only the snapshot carries them: the
        # values compared above were merged, on both sides; the rate is left out whenever it held still
        assert not any("nextFundingTime" in d or "fundingIntervalHour" in d for d in deltas)
        assert any("fundingRate" not in d for d in deltas)


# --------------------------------------------------------------------------- 4. liquidations (WebSocket)


async def test_liquidations_cascade_match_ccxt_watch_liquidations_and_the_sim():
    """``allLiquidation.<SYMBOL>`` on four linear perpetuals and the inverse BTCUSD over the ``cascade``
    scenario (its Bybit leg: ETHUSDT, 5-15 s): the same liquidations per symbol as the book pushed (the
    feed is complete), same ``T``, bankruptcy price and size. ccxt's ``side`` is Bybit's POSITION side
    lower-cased (``buy`` = long liquidated); ours says ``long``."""
    async with (
        hand_sim(seed=21, scenario="cascade") as (sim, clock),
        ccxt_ws("bybit", sim.urls) as ex,
        ours("bybit", sim.urls) as us,
    ):
        linear = [Stream("liquidations", raw, "linear") for raw in LINEAR]
        inverse = [Stream("liquidations", raw, "inverse") for raw in INVERSE]
        topics = [us.adapter.stream_key(s) for s in linear + inverse]
        assert topics == [f"allLiquidation.{raw}" for raw in [*LINEAR, *INVERSE]]
        watchers = [Watcher(lambda u=u: ex.watch_liquidations(u)) for u in [*LINEAR.values(), *INVERSE.values()]]
        async with (
            FrameTap("bybit", us.adapter, sim.urls["bybit_ws_linear"], linear) as tap_linear,
            FrameTap("bybit", us.adapter, sim.urls["bybit_ws_inverse"], inverse) as tap_inverse,
        ):
            for w in watchers:
                await w.__aenter__()
            try:
                await eventually(lambda: all(bybit_subscribers(sim, t) == 2 for t in topics))
                cursor = len(sim.market.bybit.pushed)
                await walk(sim, clock, START_MS + 20_000)
                pushed = sim.market.bybit.pushed[cursor:]

                def theirs() -> list:
                    return list(ex.liquidations or [])

                def mine() -> list:
                    return tap_linear.of(Liquidation) + tap_inverse.of(Liquidation)

                await eventually(lambda: len(mine()) >= len(pushed) and len(theirs()) >= len(pushed))
            finally:
                for w in watchers:
                    await w.__aexit__()

    cascade = [p for p in pushed if p.liquidation.scripted]
    assert len(cascade) >= 20
    assert {p.liquidation.symbol for p in cascade} == {"ETHUSDT"}
    truth = Counter(p.liquidation.symbol for p in pushed)
    assert set(truth) >= {"ETHUSDT", "BTCUSD"}  # the cascade and at least one inverse liquidation
    assert Counter(e.raw_symbol for e in mine()) == truth
    assert Counter(c["info"]["s"] for c in theirs()) == truth
    assert Counter(c["symbol"] for c in theirs()) == Counter((LINEAR | INVERSE)[s] for s in truth.elements())

    def key(raw: str, ts: int, price: float, size: float) -> tuple:
        return raw, ts, price, size

    records = sorted(
        pushed, key=lambda p: key(p.liquidation.symbol, p.liquidation.trade_ms, p.liquidation.price, p.liquidation.qty)
    )
    ours_sorted = sorted(
        mine(), key=lambda e: key(e.raw_symbol, e.ts, e.price, e.value_usd if e.raw_symbol in INVERSE else e.qty)
    )
    theirs_sorted = sorted(theirs(), key=lambda c: key(c["info"]["s"], c["timestamp"], c["price"], c["contracts"]))
    scripted_sides: set[tuple[str, str]] = set()
    for p, e, c in zip(records, ours_sorted, theirs_sorted, strict=True):
        liq = p.liquidation
        contract = sim.market.bybit.contracts[liq.symbol]
        assert e.raw_symbol == c["info"]["s"] == liq.symbol
        assert e.ts == c["timestamp"] == liq.trade_ms
        assert e.price == c["price"] == pytest.approx(liq.price, abs=half_unit(contract.price_decimals))
        assert c["side"] == ("buy" if liq.side == "SELL" else "sell")  # ccxt: Bybit's S, the position side
        assert e.side == POSITION_OF_ORDER[liq.side]  # ours: the position, named
        assert (c["contractSize"], c["baseValue"], c["quoteValue"]) == (None, None, None)  # ccxt bug
        if liq.symbol in INVERSE:
            assert c["contracts"] == e.value_usd == liq.qty  # v: USD (1 USD contracts)
            assert e.qty == pytest.approx(liq.base_qty, rel=1e-12)  # ours: v / p, base coin
        else:
            assert c["contracts"] == e.qty == pytest.approx(liq.qty, abs=half_unit(contract.qty_decimals))
            assert e.value_usd == pytest.approx(e.qty * e.price, rel=1e-12)
            assert e.value_usd == pytest.approx(liq.value_usd, rel=1e-9)
        if liq.scripted:
            scripted_sides.add((e.side, c["side"]))
    # the scripted cascade sells: every order closed a long, which ccxt calls "buy" here ("sell" on Binance)
    assert scripted_sides == {("long", "buy")}
