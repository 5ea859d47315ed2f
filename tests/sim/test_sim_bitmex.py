"""The simulator's BitMEX venue, checked with plain websockets/aiohttp clients against BitMEX's documented
and recorded wire formats (bitmex.com/app/wsAPI, the official swagger and recorded frames; never through
streamer's own adapter): welcome, per-topic acks and errors, partial-then-delta tables, the liquidation
order life cycle, funding settlements, ping/pong and the REST bodies.

Most tests stand the market clock still (``HandClock``) so that every value can be derived exactly from
the book's state, then move it by hand."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from websockets.asyncio.client import ClientConnection, connect

from streamer.sim import Cascade, SimServer, ccxt_api_urls
from streamer.sim.venues.bitmex import BitmexConfig, liquidation_order_id

SEED = 7
START = 1_790_000_000_000
"""2026-09-21T14:13:20Z: between the 12:00 and 20:00 UTC settlements; the quarterly future is XBTU26."""
BEFORE_NOON = 1_789_991_998_000
"""2026-09-21T11:59:58Z: two seconds before a settlement."""
EIGHT_HOURS = "2000-01-01T08:00:00.000Z"


class HandClock:
    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


def iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


async def eventually(pred: Callable[[], bool], wait_s: float = 3.0) -> None:
    deadline = time.monotonic() + wait_s
    while not pred():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


async def move_to(sim: SimServer, clock: HandClock, ms: int) -> None:
    clock.now_ms = ms
    await eventually(lambda: sim.market.now_ms + sim.market.step_ms > ms)


@pytest.fixture
async def frozen() -> AsyncIterator[tuple[SimServer, HandClock]]:
    clock = HandClock(START)
    async with SimServer(seed=SEED, clock=clock, speed=10.0) as sim:
        yield sim, clock


async def recv(ws: ClientConnection, wait_s: float = 3.0) -> Any:
    raw = await asyncio.wait_for(ws.recv(), wait_s)
    return raw if raw == "pong" else json.loads(raw)


async def recv_until(ws: ClientConnection, pred: Callable[[Any], bool], wait_s: float = 3.0) -> Any:
    deadline = time.monotonic() + wait_s
    while True:
        msg = await recv(ws, max(0.01, deadline - time.monotonic()))
        if pred(msg):
            return msg


async def drain(ws: ClientConnection, quiet_s: float = 0.4) -> list[Any]:
    """Every frame until none has come for ``quiet_s``."""
    out: list[Any] = []
    while True:
        try:
            out.append(await recv(ws, quiet_s))
        except TimeoutError:
            return out


async def subscribe(ws: ClientConnection, *topics: str) -> dict[str, Any]:
    req = {"op": "subscribe", "args": list(topics)}
    await ws.send(json.dumps(req))
    return req


async def get(http: aiohttp.ClientSession, url: str, **params: Any) -> tuple[int, Any, Any]:
    async with http.get(url, params={k: str(v) for k, v in params.items()}) as resp:
        return resp.status, await resp.json(content_type=None), resp.headers


# --------------------------------------------------------------------------------------------
# WebSocket
# --------------------------------------------------------------------------------------------


async def test_connect_is_greeted_with_the_welcome_message(frozen: tuple[SimServer, HandClock]) -> None:
    sim, _ = frozen
    assert sim.urls["bitmex_ws"].endswith("/bitmex/realtime")
    async with connect(sim.urls["bitmex_ws"]) as ws:
        welcome = await recv(ws)
    assert welcome == {
        "info": "Welcome to the BitMEX Realtime API.",
        "version": "2.0.0",
        "timestamp": iso(sim.market.now_ms),
        "docs": "https://www.bitmex.com/app/wsAPI",
        "heartbeatEnabled": False,
        "limit": {"remaining": 719},
    }


async def test_each_topic_is_acked_with_the_request_then_its_partial(frozen: tuple[SimServer, HandClock]) -> None:
    sim, _ = frozen
    async with connect(sim.urls["bitmex_ws"]) as ws:
        await recv(ws)
        req = await subscribe(ws, "instrument:XBTUSD", "funding:XBTUSD", "liquidation")
        frames = [await recv(ws) for _ in range(6)]
    assert [f.get("subscribe") or (f["table"], f["action"]) for f in frames] == [
        "instrument:XBTUSD", ("instrument", "partial"),
        "funding:XBTUSD", ("funding", "partial"),
        "liquidation", ("liquidation", "partial"),
    ]  # fmt: skip
    assert frames[0] == {"success": True, "subscribe": "instrument:XBTUSD", "request": req}
    inst = frames[1]
    assert inst["keys"] == ["symbol"]
    assert inst["filter"] == {"symbol": "XBTUSD"}
    assert inst["attributes"] == {"symbol": "unique"}
    assert inst["foreignKeys"] == {}
    assert inst["types"]["fundingInterval"] == "timespan"
    assert inst["types"]["openValue"] == "long"
    assert inst["types"]["timestamp"] == "timestamp"
    assert set(inst["types"]) == set(inst["data"][0])
    funding = frames[3]
    assert funding["keys"] == ["timestamp", "symbol"]
    assert funding["filter"] == {"symbol": "XBTUSD"}
    assert funding["foreignKeys"] == {"symbol": "instrument"}
    assert funding["attributes"] == {"timestamp": "sorted", "symbol": "grouped"}
    last = sim.market.bitmex.funding_records("XBTUSD", START - 8 * 3_600_000, START)[-1]
    assert funding["data"] == [
        {
            "timestamp": "2026-09-21T12:00:00.000Z",
            "symbol": "XBTUSD",
            "fundingInterval": EIGHT_HOURS,
            "fundingRate": last.rate,
            "fundingRateDaily": round(last.rate * 3, 8),
        }
    ]
    assert frames[5] == {
        "table": "liquidation",
        "action": "partial",
        "keys": ["orderID"],
        "types": {"orderID": "guid", "symbol": "symbol", "side": "symbol", "price": "float", "leavesQty": "long"},
        "filter": {},
        "data": [],
    }


async def test_instrument_partial_row_is_derived_from_the_book(frozen: tuple[SimServer, HandClock]) -> None:
    sim, _ = frozen
    async with connect(sim.urls["bitmex_ws"]) as ws:
        await recv(ws)
        await subscribe(ws, "instrument:XBTUSD")
        row = (await recv_until(ws, lambda m: m.get("action") == "partial"))["data"][0]
    st = sim.market.bitmex.state("XBTUSD")
    mark = round(st.mark_price, 2)
    oi = round(st.open_interest) * 100
    assert {k: row[k] for k in (
        "symbol", "typ", "state", "multiplier", "settlCurrency", "isInverse", "isQuanto", "lotSize", "tickSize",
        "underlyingToSettleMultiplier", "quoteToSettleMultiplier", "underlyingToPositionMultiplier",
        "fundingInterval", "fundingTimestamp", "referenceSymbol", "expiry",
    )} == {
        "symbol": "XBTUSD", "typ": "FFWCSX", "state": "Open", "multiplier": -100_000_000, "settlCurrency": "XBt",
        "isInverse": True, "isQuanto": False, "lotSize": 100, "tickSize": 0.1,
        "underlyingToSettleMultiplier": -100_000_000, "quoteToSettleMultiplier": None,
        "underlyingToPositionMultiplier": None, "fundingInterval": EIGHT_HOURS,
        "fundingTimestamp": "2026-09-21T20:00:00.000Z", "referenceSymbol": ".BXBT", "expiry": None,
    }  # fmt: skip
    assert row["markPrice"] == mark
    assert row["fairPrice"] == mark
    assert row["indicativeSettlePrice"] == round(st.index_price, 2)
    assert row["lastPrice"] == st.last_price
    assert (row["bidPrice"], row["askPrice"]) == (st.bid_price, st.ask_price)
    assert row["openInterest"] == oi
    assert row["openInterest"] % 100 == 0
    assert row["openValue"] == round(oi * 100_000_000 / mark)  # satoshi: inverse contracts are 1 USD each
    assert row["fundingRate"] == round(st.funding_rate, 6)
    assert row["fairBasisRate"] == round(row["fundingRate"] * 1095, 6)
    assert row["timestamp"] == iso(START - START % 100)


async def test_updates_follow_the_partial_and_carry_only_changed_fields(frozen: tuple[SimServer, HandClock]) -> None:
    sim, clock = frozen
    async with connect(sim.urls["bitmex_ws"]) as ws:
        await recv(ws)
        await subscribe(ws, "instrument:XBTUSD")
        await recv(ws)  # ack
        partial = await recv(ws)
        assert partial["action"] == "partial"
        await move_to(sim, clock, START + 1_000)
        update = await recv_until(ws, lambda m: m.get("table") == "instrument")
    assert update["action"] == "update"
    assert set(update) == {"table", "action", "data"}
    [delta] = update["data"]
    before = partial["data"][0]
    now = sim.bitmex.published["XBTUSD"]
    changed = {k for k in now if k not in ("symbol", "timestamp") and now[k] != before[k]}
    assert set(delta) == {"symbol", "timestamp"} | changed
    assert {"markPrice", "lastPrice", "openValue"} <= changed
    assert not {"multiplier", "lotSize", "typ", "settlCurrency", "fundingInterval"} & set(delta)
    assert delta["symbol"] == "XBTUSD"
    assert delta["timestamp"] == iso(sim.market.now_ms - sim.market.now_ms % 1_000)
    st = sim.market.bitmex.state("XBTUSD")
    assert delta["markPrice"] == round(st.mark_price, 2)
    assert {**before, **delta} == now


async def test_whole_table_partial_lists_contracts_and_indices(frozen: tuple[SimServer, HandClock]) -> None:
    sim, _ = frozen
    async with connect(sim.urls["bitmex_ws"]) as ws:
        await recv(ws)
        await subscribe(ws, "instrument")
        partial = await recv_until(ws, lambda m: m.get("action") == "partial")
    assert partial["filter"] == {}
    assert [r["symbol"] for r in partial["data"]] == [
        "XBTUSD",
        "XBTUSDT",
        "ETHUSD",
        "XBTU26",
        ".BXBT",
        ".BXBTT",
        ".BETH",
    ]
    index = partial["data"][4]
    assert (index["typ"], index["state"]) == ("MRCXXX", "Unlisted")
    assert index["markPrice"] == index["lastPrice"] == round(sim.market.bitmex.indexes[".BXBT"].price, 2)


async def test_liquidation_order_is_inserted_updated_then_deleted_once() -> None:
    clock = HandClock(START)
    cfg = BitmexConfig(update_prob=1.0, rest_ms=(400, 1_200))
    cascade = Cascade(symbol="XBTUSD", venue="bitmex", start_s=0.5, duration_s=3.0, orders_per_s=3.0, side="SELL")
    async with SimServer(seed=SEED, clock=clock, speed=10.0, bitmex=cfg) as sim, connect(sim.urls["bitmex_ws"]) as ws:
        sim.market.schedule(cascade)
        await recv(ws)
        await subscribe(ws, "liquidation:XBTUSD")
        await recv(ws)
        assert (await recv(ws))["action"] == "partial"
        await move_to(sim, clock, START + 8_000)
        frames = [f for f in await drain(ws) if f.get("table") == "liquidation"]
        book = sim.market.bitmex
        by_id = {liquidation_order_id(SEED, liq): liq for liq in book.liquidations if liq.symbol == "XBTUSD"}
        assert sim.bitmex.orders == {}
    events: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for frame in frames:
        [row] = frame["data"]
        events.setdefault(row["orderID"], []).append((frame["action"], row))
    assert len(events) == len(by_id) >= 9  # every book liquidation of XBTUSD, each its own order
    for oid, seq in events.items():
        liq = by_id[oid]
        assert [action for action, _ in seq] == ["insert", "update", "delete"]
        (_, ins), (_, upd), (_, dele) = seq
        assert ins == {"orderID": oid, "symbol": "XBTUSD", "side": "Sell", "price": liq.price,
                       "leavesQty": round(liq.qty) * 100}  # fmt: skip
        assert {"orderID", "symbol"} < set(upd) <= {"orderID", "symbol", "price", "leavesQty"}
        assert upd["orderID"] == oid
        if "leavesQty" in upd:
            assert 0 < upd["leavesQty"] < ins["leavesQty"]
            assert upd["leavesQty"] % 100 == 0
        if "price" in upd:
            assert upd["price"] < ins["price"]  # a sell order chasing a falling market
        assert dele == {"orderID": oid, "symbol": "XBTUSD"}
    inserted = sum(row["leavesQty"] for seq in events.values() for action, row in seq if action == "insert")
    assert inserted == sum(round(liq.qty) * 100 for liq in by_id.values())


async def test_funding_settlement_is_inserted_and_moves_the_funding_timestamp() -> None:
    clock = HandClock(BEFORE_NOON)
    async with SimServer(seed=SEED, clock=clock, speed=10.0) as sim, connect(sim.urls["bitmex_ws"]) as ws:
        await recv(ws)
        await subscribe(ws, "funding:XBTUSD", "instrument:XBTUSD")
        frames = [await recv(ws) for _ in range(4)]
        assert frames[1]["data"][0]["timestamp"] == "2026-09-21T04:00:00.000Z"
        assert frames[3]["data"][0]["fundingTimestamp"] == "2026-09-21T12:00:00.000Z"
        await move_to(sim, clock, BEFORE_NOON + 3_000)
        insert = await recv_until(ws, lambda m: m.get("table") == "funding")
        update = await recv_until(ws, lambda m: m.get("table") == "instrument" and "fundingTimestamp" in m["data"][0])
        [settled] = sim.market.bitmex.funding_history["XBTUSD"]
    assert insert == {
        "table": "funding",
        "action": "insert",
        "data": [
            {
                "timestamp": "2026-09-21T12:00:00.000Z",
                "symbol": "XBTUSD",
                "fundingInterval": EIGHT_HOURS,
                "fundingRate": settled.rate,
                "fundingRateDaily": round(settled.rate * 3, 8),
            }
        ],
    }
    assert update["data"][0]["fundingTimestamp"] == "2026-09-21T20:00:00.000Z"


async def test_ping_text_is_answered_with_pong_text(frozen: tuple[SimServer, HandClock]) -> None:
    sim, _ = frozen
    async with connect(sim.urls["bitmex_ws"]) as ws:
        await recv(ws)
        await ws.send("ping")
        assert await asyncio.wait_for(ws.recv(), 3.0) == "pong"
    assert sim.bitmex.stats["pongs"] == 1


async def test_bad_subscriptions_get_errors_and_good_ones_still_subscribe(frozen: tuple[SimServer, HandClock]) -> None:
    sim, _ = frozen
    async with connect(sim.urls["bitmex_ws"]) as ws:
        await recv(ws)
        req = await subscribe(ws, "tradeBin5dm", "instrument:NOPE", "position", "liquidation:XBTUSDT")
        answers = [await recv(ws) for _ in range(5)]
        again = await subscribe(ws, "liquidation:XBTUSDT")
        dup = await recv(ws)
        await ws.send("hello")
        unrecognized = await recv(ws)
    assert answers[:3] == [
        {"status": 400, "error": "Unknown table: tradeBin5dm", "meta": {}, "request": req},
        {"status": 400, "error": "Unknown or expired symbol.", "meta": {}, "request": req},
        {"status": 401, "error": "User requested an account-locked subscription but has not authenticated.",
         "meta": {}, "request": req},
    ]  # fmt: skip
    assert answers[3] == {"success": True, "subscribe": "liquidation:XBTUSDT", "request": req}
    assert answers[4]["action"] == "partial"
    assert dup == {
        "status": 400,
        "error": "You are already subscribed to this topic: liquidation:XBTUSDT",
        "meta": {},
        "request": again,
    }
    assert unrecognized == {
        "status": 400,
        "error": "Unrecognized request. See the docs or send 'help' for more details. "
        "Please see the documentation at https://www.bitmex.com/app/wsAPI.",
        "meta": {},
        "request": {},
    }


async def test_unsubscribe_stops_the_table(frozen: tuple[SimServer, HandClock]) -> None:
    sim, clock = frozen
    async with connect(sim.urls["bitmex_ws"]) as ws:
        await recv(ws)
        await subscribe(ws, "instrument:XBTUSD")
        await recv(ws)
        await recv(ws)
        req = {"op": "unsubscribe", "args": "instrument:XBTUSD"}
        await ws.send(json.dumps(req))
        assert await recv(ws) == {"success": True, "unsubscribe": "instrument:XBTUSD", "request": req}
        await move_to(sim, clock, START + 2_000)
        assert await drain(ws, 0.3) == []


async def test_url_subscribe_parameter_subscribes_on_connect(frozen: tuple[SimServer, HandClock]) -> None:
    sim, _ = frozen
    async with connect(sim.urls["bitmex_ws"] + "?subscribe=instrument:ETHUSD,liquidation") as ws:
        frames = [await recv(ws) for _ in range(5)]
    assert frames[0]["info"] == "Welcome to the BitMEX Realtime API."
    assert [f.get("subscribe") for f in frames[1::2]] == ["instrument:ETHUSD", "liquidation"]
    assert frames[2]["data"][0]["symbol"] == "ETHUSD"


# --------------------------------------------------------------------------------------------
# REST
# --------------------------------------------------------------------------------------------


async def test_rest_instrument_rows_carry_each_contract_spec(frozen: tuple[SimServer, HandClock]) -> None:
    sim, _ = frozen
    base = f"{sim.urls['bitmex_rest']}/api/v1"
    book = sim.market.bitmex
    async with aiohttp.ClientSession() as http:
        status, active, headers = await get(http, f"{base}/instrument/active")
        _, [eth], _ = await get(http, f"{base}/instrument", symbol="ethusd")
        _, [usdt], _ = await get(http, f"{base}/instrument", symbol="XBTUSDT")
        _, [future], _ = await get(http, f"{base}/instrument", symbol="XBT")
        _, unknown, _ = await get(http, f"{base}/instrument", symbol="NOPE")
    assert status == 200
    assert headers["x-ratelimit-limit"] == "120"
    assert headers["x-ratelimit-remaining"] == "119"
    assert [r["symbol"] for r in active] == ["XBTUSD", "XBTUSDT", "ETHUSD", "XBTU26"]
    assert unknown == []

    st = book.state("ETHUSD")
    mark = round(st.mark_price, 2)
    assert (eth["multiplier"], eth["isQuanto"], eth["isInverse"], eth["settlCurrency"], eth["lotSize"]) == (
        100, True, False, "XBt", 1,
    )  # fmt: skip
    assert eth["openInterest"] == round(st.open_interest)
    assert eth["openValue"] == round(eth["openInterest"] * 100 * mark)  # satoshi: 100 XBt per USD of price

    st = book.state("XBTUSDT")
    mark = round(st.mark_price, 2)
    keys = ("multiplier", "underlyingToPositionMultiplier", "quoteToSettleMultiplier", "underlyingToSettleMultiplier",
            "settlCurrency", "lotSize", "positionCurrency")  # fmt: skip
    spec = {k: usdt[k] for k in keys}
    assert spec == {
        "multiplier": 1, "underlyingToPositionMultiplier": 1_000_000, "quoteToSettleMultiplier": 1_000_000,
        "underlyingToSettleMultiplier": None, "settlCurrency": "USDt", "lotSize": 100, "positionCurrency": "XBT",
    }  # fmt: skip
    assert usdt["openInterest"] == round(st.open_interest) * 100
    assert usdt["openValue"] == round(usdt["openInterest"] * mark)  # USDt (1e-6 USDT) for 1e-6 XBT contracts

    assert future["symbol"] == "XBTU26"
    assert (future["typ"], future["expiry"], future["multiplier"]) == (
        "FFCCSX",
        "2026-09-25T12:00:00.000Z",
        -100_000_000,
    )
    assert future["fundingRate"] is None
    assert future["fundingInterval"] is None
    assert future["fundingTimestamp"] is None


async def test_rest_funding_history_is_oldest_first_unless_reversed(frozen: tuple[SimServer, HandClock]) -> None:
    sim, _ = frozen
    url = f"{sim.urls['bitmex_rest']}/api/v1/funding"
    recs = sim.market.bitmex.funding_records("XBTUSD", 0, START)
    async with aiohttp.ClientSession() as http:
        _, newest, _ = await get(http, url, symbol="XBTUSD", reverse="true", count=3)
        _, oldest, _ = await get(http, url, symbol="XBTUSD", count=2)
        status, err, _ = await get(http, url, symbol="XBTUSD", count=0)
    assert [r["timestamp"] for r in newest] == [
        "2026-09-21T12:00:00.000Z", "2026-09-21T04:00:00.000Z", "2026-09-20T20:00:00.000Z",
    ]  # fmt: skip
    assert newest[0] == {
        "timestamp": "2026-09-21T12:00:00.000Z",
        "symbol": "XBTUSD",
        "fundingInterval": EIGHT_HOURS,
        "fundingRate": recs[-1].rate,
        "fundingRateDaily": round(recs[-1].rate * 3, 8),
    }
    assert [r["fundingRate"] for r in newest] == [r.rate for r in recs[-3:][::-1]]
    assert [r["timestamp"] for r in oldest] == [iso(recs[0].funding_ms), iso(recs[1].funding_ms)]
    assert recs[0].funding_ms >= START - 60 * 86_400_000
    assert status == 400
    assert err == {"error": {"message": "count must be a positive integer", "name": "ValidationError"}}


async def test_rest_liquidation_lists_only_resting_orders() -> None:
    clock = HandClock(START)
    cfg = BitmexConfig(update_prob=0.0, rest_ms=(5_000, 5_000))
    cascade = Cascade(symbol="ETHUSD", venue="bitmex", start_s=0.5, duration_s=1.0, orders_per_s=2.0, side="BUY")
    async with SimServer(seed=SEED, clock=clock, speed=10.0, bitmex=cfg) as sim, aiohttp.ClientSession() as http:
        sim.market.schedule(cascade)
        url = f"{sim.urls['bitmex_rest']}/api/v1/liquidation"
        await move_to(sim, clock, START + 2_000)
        _, resting, _ = await get(http, url, symbol="ETHUSD")
        expected = [
            {"orderID": liquidation_order_id(SEED, p.liquidation), "symbol": "ETHUSD", "side": "Buy",
             "price": p.liquidation.price, "leavesQty": round(p.liquidation.qty)}
            for p in sim.market.bitmex.pushed if p.liquidation.symbol == "ETHUSD"
        ]  # fmt: skip
        await move_to(sim, clock, START + 10_000)
        _, after, _ = await get(http, url, symbol="ETHUSD")
    assert len(resting) >= 2
    assert resting == expected
    assert after == []


async def test_rest_faults_use_bitmex_error_bodies(frozen: tuple[SimServer, HandClock]) -> None:
    sim, _ = frozen
    sim.faults.rest_error(503, venue="bitmex")
    async with aiohttp.ClientSession() as http:
        status, body, _ = await get(http, f"{sim.urls['bitmex_rest']}/api/v1/instrument/active")
    assert status == 503
    assert body == {
        "error": {"message": "The system is currently overloaded. Please try again later.", "name": "HTTPError"}
    }


def test_ccxt_urls_point_public_private_and_ws_at_the_sim() -> None:
    urls = {"bitmex_rest": "http://h:1/bitmex", "bitmex_ws": "ws://h:1/bitmex/realtime"}
    assert ccxt_api_urls(urls, "bitmex") == {
        "public": "http://h:1/bitmex",
        "private": "http://h:1/bitmex",
        "ws": "ws://h:1/bitmex/realtime",
    }
