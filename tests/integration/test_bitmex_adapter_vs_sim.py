"""Our BitMEX adapter read against the simulator's BitMEX venue (written from BitMEX's docs, not from
the adapter): a live session's frames — instrument partial then updates, funding, liquidation
insert/update/delete — give one liquidation event per order, with the side, size and price the
venue's book holds, and funding as the book settles it.

BitMEX closed on 2026-09-23; the daemon leaves it out, but users replay years of recordings through
this adapter, so it is checked like the live venues."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest
from websockets.asyncio.client import connect

from streamer.exchanges.bitmex import BitmexAdapter
from streamer.model import Funding, Liquidation
from streamer.sim import SimServer
from streamer.sim.market import BITMEX_LOTS


async def test_liquidation_orders_become_one_event_each_with_the_books_side_size_and_price():
    async with SimServer(seed=4, scenario="cascade", speed=20.0) as sim:
        adapter = BitmexAdapter()
        url = sim.urls["bitmex_rest"] + "/api/v1/instrument/active"
        async with aiohttp.ClientSession() as http, http.get(url) as resp:
            assert adapter.load_instruments(await resp.read()) >= 4
        frames: list[str] = []
        async with connect(sim.urls["bitmex_ws"]) as ws:
            await ws.send(json.dumps({"op": "subscribe", "args": ["instrument", "liquidation", "funding"]}))
            deadline = time.monotonic() + 6.0
            while time.monotonic() < deadline:
                try:
                    frames.append(await asyncio.wait_for(ws.recv(), 0.5))
                except TimeoutError:
                    continue
        book = sim.market.book("bitmex")
        published = {liq.liquidation.seq: liq.liquidation for liq in book.published()}

    events = [ev for frame in frames for ev in adapter.parse(frame, 1)]
    liqs = [ev for ev in events if isinstance(ev, Liquidation)]
    inserts = [row for frame in frames if (msg := json.loads(frame)).get("table") == "liquidation"
               and msg.get("action") == "insert" for row in msg["data"]]
    assert len(inserts) >= 5, "the simulated market should have liquidated on BitMEX within 6 s"
    # one event per inserted order; updates and deletes of the same orders add none
    assert len(liqs) == len(inserts)
    by_symbol_side_price = sorted((ev.raw_symbol, ev.side, ev.price) for ev in liqs)
    assert by_symbol_side_price == sorted(
        (row["symbol"], "long" if row["side"] == "Sell" else "short", row["price"]) for row in inserts)
    # every event is a liquidation of the book: side (order Sell = long), price, base size and USD
    books = list(published.values())
    for ev in liqs:
        match = [b for b in books if b.symbol == ev.raw_symbol and b.price == ev.price
                 and ("long" if b.side == "SELL" else "short") == ev.side]
        assert match, ev
        b = match[0]
        if ev.raw_symbol == "ETHUSD":  # quanto: no fixed base size (docs/decisions.md)
            assert ev.qty is None
            continue
        assert ev.qty == pytest.approx(b.base_qty, rel=1e-9), (ev, b)
        assert ev.value_usd == pytest.approx(b.value_usd, rel=1e-9), (ev, b)
        assert BITMEX_LOTS[ev.raw_symbol] >= 1


async def test_instrument_table_gives_funding_with_the_books_rate_and_interval():
    async with SimServer(seed=2, speed=2.0) as sim:
        adapter = BitmexAdapter()
        url = sim.urls["bitmex_rest"] + "/api/v1/instrument/active"
        async with aiohttp.ClientSession() as http, http.get(url) as resp:
            adapter.load_instruments(await resp.read())
        async with connect(sim.urls["bitmex_ws"]) as ws:
            await ws.send(json.dumps({"op": "subscribe", "args": ["instrument:XBTUSD"]}))
            funding: list[Funding] = []
            deadline = time.monotonic() + 5.0
            while not funding and time.monotonic() < deadline:
                try:
                    frame = await asyncio.wait_for(ws.recv(), 0.5)
                except TimeoutError:
                    continue
                funding += [ev for ev in adapter.parse(frame, 1) if isinstance(ev, Funding)]
            state = sim.market.book("bitmex").state("XBTUSD")
    assert funding, "no funding from the instrument table"
    ev = funding[-1]
    assert (ev.symbol, ev.interval_h) == ("BTC-USD-PERP", 8.0)
    assert ev.rate == pytest.approx(state.funding_rate, abs=1e-6)  # the venue renders 6 decimals
    assert ev.rate_8h == ev.rate
