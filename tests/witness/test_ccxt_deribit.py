"""Witness: ccxt 4.5.90 (REST) pointed at the simulator reads the same Deribit v2 funding, open interest,
tickers, option greeks/IVs and liquidation trades as our adapter does from the same simulator state
(STYLE.md A2: an independent implementation).

The simulator runs on a hand clock (``_ccxt.HandClock``): while it stands still a ccxt REST read and ours
see one state. Each side reads its own endpoint and parses with its own code; the tests compare.

How ccxt reads Deribit (ccxt/async_support/deribit.py), and what that means here:

- ``load_markets``: ``public/get_currencies`` and, per currency, ``public/get_instruments``. ccxt's default
  (``fetchAllMarkets``) calls ``get_instruments`` without ``currency``, which Deribit documents as required
  (coincise docs/deribit/endpoints/public/get_get_instruments.md: ``currency | true``); the simulator answers
  -32602 as documented, so the tests set ``options['fetchMarkets']['fetchAllMarkets'] = False``.
- ``fetchFundingRate`` reads ``public/get_funding_rate_value`` over the last 8 h, ``fetchFundingRateHistory``
  the ``interest_8h`` of ``public/get_funding_rate_history``; ours reads the ticker's ``funding_8h`` and the
  same ``interest_8h``. ccxt builds its 8 h window from the WALL clock (``self.milliseconds()``); against a
  simulator on its own clock the tests pass the simulator's ``start_timestamp``/``end_timestamp``.
- ``fetchOpenInterest`` reads ``public/get_book_summary_by_instrument``; ours the ticker. ccxt reports an
  inverse contract's ``open_interest`` as ``openInterestValue`` (USD) with ``openInterestAmount`` None; ours
  has ``oi_contracts`` = ``oi_usd`` = the reported USD and ``oi_base`` = USD / mark.
- ``fetchGreeks`` reads ``public/ticker``: greeks as sent; IVs as sent (PERCENT, 52.3); ours are fractions
  (0.523) per DESIGN.md, so ccxt / 100 = ours. A side with no quote: Deribit sends ``bid_iv`` 0 and ccxt
  keeps 0.0; ours is null (DESIGN.md: "an IV side with no quote (the venue sends 0) is null").
- ``fetchLiquidations`` is NOT comparable: ccxt reads ``public/get_last_settlements_by_instrument`` with
  ``type=bankruptcy`` (session bankruptcy settlements, a per-session socialised-loss figure, not liquidation
  trades). Deribit publishes liquidations as trades with a ``liquidation`` flag (coincise
  get_last_trades_by_currency.md: "liquidation ... "M" when maker side of trade was under liquidation, "T"
  when taker side was under liquidation, "MT" when both"), which ours reads. The simulator serves no
  settlements, so ccxt's call fails (-32601). Instead the liquidation test compares ccxt's ``fetchTrades``
  (``public/get_last_trades_by_instrument``) rows that carry the flag with ours: time, price and USD amount
  agree; ccxt's ``side`` is the taker's ``direction`` (it does not read the flag), ours the liquidated
  POSITION, one event per liquidated side (two for ``MT``).

Disagreements found: none in values (ccxt's IV unit and its reading of ``fetchLiquidations`` are conventions,
described above). Our adapter reads every field compared here as Deribit documents it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import ccxt
import ccxt.async_support as ccxt_async
import pytest

from streamer.exchanges.deribit import DeribitAdapter
from streamer.model import Funding, Liquidation, OpenInterest, OptionTicker, Ticker
from streamer.sim import Cascade
from streamer.sim.market import HOUR_MS
from streamer.transport.rest import RestClient, VenueLimits
from tests.witness._ccxt import START_MS, hand_sim, move_to, walk
from tests.witness._ccxt_venues import VenueOurs, point_at_sim

PERPS = {"BTC-PERPETUAL": "BTC/USD:BTC", "ETH-PERPETUAL": "ETH/USD:ETH"}
POSITION_OF_TAKER = {"sell": "long", "buy": "short"}
"""``T``: the taker was liquidated, its side is ``direction``: a sell closes a long."""


@contextlib.asynccontextmanager
async def ccxt_deribit(urls: dict[str, str]) -> AsyncIterator[Any]:
    """``ccxt.async_support.deribit`` on the simulator, markets loaded per currency; closed on exit."""
    exchange = point_at_sim(ccxt_async.deribit(), urls, "deribit")
    exchange.options["fetchMarkets"] = {"fetchAllMarkets": False}
    try:
        await exchange.load_markets()
        yield exchange
    finally:
        await exchange.close()


@contextlib.asynccontextmanager
async def ours_deribit(urls: dict[str, str]) -> AsyncIterator[VenueOurs]:
    """Our adapter behind the real RestClient, instruments loaded as the daemon asks for them."""
    async with RestClient({"deribit": VenueLimits(capacity=20, refill_per_s=20)}) as rest:
        side = VenueOurs("deribit", urls, rest, DeribitAdapter())  # type: ignore[arg-type]
        for call in side.adapter.rest_instruments():  # USDC: an empty list here, loaded as 0 rows
            body, _ = await side.body(call)
            side.adapter.load_instruments(body, call.market)
        yield side


def one(events: list, kind: type) -> Any:
    found = [e for e in events if isinstance(e, kind)]
    assert len(found) == 1, found
    return found[0]


async def test_funding_rate_and_history_agree() -> None:
    async with hand_sim(seed=11) as (sim, clock):
        await move_to(sim, clock, START_MS + 90_000)
        now = sim.market.now_ms
        async with ccxt_deribit(sim.urls) as ex, ours_deribit(sim.urls) as us:
            for raw, sym in PERPS.items():
                mine = one(await us.call(us.adapter.rest_ticker(raw)), Funding)
                window = {"start_timestamp": now - 8 * HOUR_MS, "end_timestamp": now}
                theirs = await ex.fetch_funding_rate(sym, params=window)
                assert theirs["fundingRate"] == mine.rate
                assert theirs["interval"] == "8h"
                assert mine.interval_h == 8.0
                assert mine.next_funding_ts is None
                assert theirs["fundingTimestamp"] is None
                assert theirs["nextFundingRate"] is None
                assert mine.predicted_rate is None

                since = now - 24 * HOUR_MS
                hist = await ex.fetch_funding_rate_history(sym, since=since, params={"until": now})
                mine_hist = await us.call(us.adapter.rest_funding_history(raw, since, now))
                assert len(hist) >= 24
                assert [(h["timestamp"], h["fundingRate"], h["indexPrice"]) for h in hist] == [
                    (f.ts, f.rate, f.index_price) for f in mine_hist
                ]
                # the last hourly row's interest_8h is the funding of the 8 h up to it, = get_funding_rate_value
                last = hist[-1]["timestamp"]
                at_last = await ex.fetch_funding_rate(
                    sym, params={"start_timestamp": last - 8 * HOUR_MS, "end_timestamp": last}
                )
                assert at_last["fundingRate"] == hist[-1]["fundingRate"]


async def test_ticker_and_open_interest_agree() -> None:
    async with hand_sim(seed=12) as (sim, clock):
        await move_to(sim, clock, START_MS + 30_000)
        async with ccxt_deribit(sim.urls) as ex, ours_deribit(sim.urls) as us:
            future = next(s for s, c in sim.market.deribit.contracts.items() if c.kind == "future")
            for raw in (*PERPS, future):
                sym = ex.markets_by_id[raw][0]["symbol"]
                events = await us.call(us.adapter.rest_ticker(raw))
                tick, oi = one(events, Ticker), one(events, OpenInterest)
                t = await ex.fetch_ticker(sym)
                assert (t["timestamp"], t["last"], t["bid"], t["ask"]) == (tick.ts, tick.last, tick.bid, tick.ask)
                assert (t["markPrice"], t["indexPrice"]) == (tick.mark_price, tick.index_price)
                assert t["quoteVolume"] == tick.volume_24h_usd  # volume_notional = volume_usd (USD) for inverse

                o = await ex.fetch_open_interest(sym)
                assert o["openInterestAmount"] is None  # ccxt: inverse OI is a value, not an amount
                assert o["openInterestValue"] == oi.oi_usd == oi.oi_contracts == tick.open_interest_usd
                assert oi.oi_base == pytest.approx(o["openInterestValue"] / t["markPrice"], rel=1e-12)
                assert o["timestamp"] == oi.ts  # the summary's creation_timestamp = the ticker's timestamp here


async def test_option_greeks_and_iv_agree() -> None:
    async with hand_sim(seed=13) as (sim, clock):
        await move_to(sim, clock, START_MS + 30_000)
        async with ccxt_deribit(sim.urls) as ex, ours_deribit(sim.urls) as us:
            options = [s for s, c in sim.market.deribit.contracts.items() if c.kind == "option"]
            assert len(options) == 18  # three expiries × three strikes × call/put
            no_bid = 0
            for raw in options:
                sym = ex.markets_by_id[raw][0]["symbol"]
                mine = one(await us.call(us.adapter.rest_ticker(raw)), OptionTicker)
                g = await ex.fetch_greeks(sym)
                assert (g["delta"], g["gamma"], g["vega"], g["theta"]) == (
                    mine.delta,
                    mine.gamma,
                    mine.vega,
                    mine.theta,
                )
                assert g["timestamp"] == mine.ts
                assert g["underlyingPrice"] == mine.underlying_price
                assert g["markImpliedVolatility"] / 100 == pytest.approx(mine.mark_iv, rel=1e-12)
                assert g["askImpliedVolatility"] / 100 == pytest.approx(mine.ask_iv, rel=1e-12)
                if g["bidImpliedVolatility"] == 0:
                    no_bid += 1
                    assert mine.bid_iv is None  # no quote: Deribit sends 0, DESIGN.md says null
                else:
                    assert g["bidImpliedVolatility"] / 100 == pytest.approx(mine.bid_iv, rel=1e-12)
                index = g["info"]["index_price"]
                assert mine.mark_price_usd == pytest.approx(g["markPrice"] * index, rel=1e-12)  # mark in BTC
                o = await ex.fetch_open_interest(sym)
                assert o["openInterestAmount"] == mine.open_interest  # options: BTC
            assert no_bid >= 1  # the deep out-of-the-money put


async def test_liquidation_trades_agree_and_fetch_liquidations_is_not_comparable() -> None:
    cascade = Cascade(symbol="BTC-PERPETUAL", venue="deribit", start_s=1.0, duration_s=20.0, orders_per_s=4.0)
    async with hand_sim(seed=14, scenario=None) as (sim, clock):
        sim.market.schedule(cascade)
        await walk(sim, clock, START_MS + 25_000)
        async with ccxt_deribit(sim.urls) as ex, ours_deribit(sim.urls) as us:
            mine = [
                e
                for e in await us.call(us.adapter.rest_last_trades("BTC"))
                if isinstance(e, Liquidation) and e.raw_symbol == "BTC-PERPETUAL"
            ]
            trades = await ex.fetch_trades("BTC/USD:BTC", limit=1000)
            flagged = [t for t in trades if "liquidation" in t["info"]]
            assert len(flagged) >= 20
            by_time: dict[tuple[int, float], list[Liquidation]] = {}
            for e in mine:
                by_time.setdefault((e.ts, e.price), []).append(e)
            assert sum(2 if t["info"]["liquidation"] == "MT" else 1 for t in flagged) == len(mine)
            for t in flagged:
                events = by_time[(t["timestamp"], t["price"])]
                flag, taker = t["info"]["liquidation"], t["side"]
                assert taker == t["info"]["direction"]  # ccxt's side: the taker's, the flag unread
                expected = {
                    "T": [POSITION_OF_TAKER[taker]],
                    "M": [{"long": "short", "short": "long"}[POSITION_OF_TAKER[taker]]],
                    "MT": ["long", "short"],
                }[flag]
                assert sorted(e.side for e in events) == sorted(expected)
                for e in events:
                    assert e.value_usd == t["amount"]  # inverse: amount is USD
                    assert e.qty == pytest.approx(t["amount"] / t["price"], rel=1e-12)
                    assert e.qty == pytest.approx(t["cost"], rel=1e-12)  # ccxt's inverse cost: amount / price

            with pytest.raises(ccxt.BaseError):  # get_last_settlements_by_instrument: not a liquidation feed
                await ex.fetch_liquidations("BTC/USD:BTC")
