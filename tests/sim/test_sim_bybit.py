"""The simulator's Bybit v5 venue, checked with plain websockets/aiohttp clients against Bybit's documented
wire formats (bybit-exchange/docs v5; never through streamer's own adapters): acks, pings, snapshot-then-delta
tickers, the complete allLiquidation feed in 500 ms batches, REST envelopes, pagination, limits and faults."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
import websockets
from websockets.asyncio.client import ClientConnection, connect

from streamer.sim import BybitConfig, Cascade, Market, SimServer
from streamer.sim.faults import GarbageKind
from streamer.sim.market import HOUR_MS

SPEED = 20.0  # 1 s of market time = 50 ms of wall time
FAST = BybitConfig(close_timeout_s=0.5)
ACK_KEYS = {"success", "ret_msg", "conn_id", "req_id", "op"}
LINEAR_TICKER_KEYS = {
    "symbol", "tickDirection", "price24hPcnt", "lastPrice", "prevPrice24h", "highPrice24h", "lowPrice24h",
    "prevPrice1h", "markPrice", "indexPrice", "openInterest", "openInterestValue", "singleOpenInterest",
    "singleOpenInterestValue", "turnover24h", "volume24h", "fundingIntervalHour", "fundingCap", "nextFundingTime",
    "fundingRate", "bid1Price", "bid1Size", "ask1Price", "ask1Size", "preOpenPrice", "preQty", "curPreListingPhase",
}  # fmt: skip
OPTION_TICKER_KEYS = {
    "symbol", "bidPrice", "bidSize", "bidIv", "askPrice", "askSize", "askIv", "lastPrice", "highPrice24h",
    "lowPrice24h", "markPrice", "indexPrice", "markPriceIv", "underlyingPrice", "openInterest", "turnover24h",
    "volume24h", "totalVolume", "totalTurnover", "delta", "gamma", "vega", "theta", "predictedDeliveryPrice",
    "change24h",
}  # fmt: skip


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    async with SimServer(seed=7, speed=SPEED, bybit=FAST) as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def recv_json(ws: ClientConnection, wait_s: float = 2.0) -> Any:
    return json.loads(await asyncio.wait_for(ws.recv(), wait_s))


async def recv_until(ws: ClientConnection, pred: Callable[[Any], bool], wait_s: float = 3.0) -> Any:
    deadline = time.monotonic() + wait_s
    while True:
        msg = await recv_json(ws, max(0.01, deadline - time.monotonic()))
        if pred(msg):
            return msg


async def until_closed(ws: ClientConnection, wait_s: float = 3.0) -> websockets.ConnectionClosed:
    async def drain() -> websockets.ConnectionClosed:
        try:
            while True:
                await ws.recv()
        except websockets.ConnectionClosed as exc:
            return exc

    return await asyncio.wait_for(drain(), wait_s)


async def subscribe(ws: ClientConnection, *topics: str, req_id: str = "r1") -> Any:
    await ws.send(json.dumps({"req_id": req_id, "op": "subscribe", "args": list(topics)}))
    return await recv_until(ws, lambda m: "topic" not in m)


async def get(http: aiohttp.ClientSession, url: str) -> tuple[int, Any, aiohttp.ClientResponse]:
    async with http.get(url) as resp:
        text = await resp.text()
        try:
            body = json.loads(text)
        except json.JSONDecodeError:
            body = text
        return resp.status, body, resp


def is_num_str(v: object) -> bool:
    if not isinstance(v, str):
        return False
    float(v)
    return True


def is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def option_symbol(sim: SimServer, kind: str = "C") -> str:
    return next(s for s, c in sim.market.bybit.contracts.items() if c.option and c.option_type == kind)


# --------------------------------------------------------------------------------------------
# WebSocket: acks and pings
# --------------------------------------------------------------------------------------------


async def test_linear_subscribe_is_acked_with_the_documented_shape(sim: SimServer) -> None:
    async with connect(sim.urls["bybit_ws_linear"]) as ws:
        ack = await subscribe(ws, "tickers.BTCUSDT", "allLiquidation.ETHUSDT", req_id="abc")
    assert set(ack) == ACK_KEYS
    assert ack["success"] is True
    assert ack["ret_msg"] == ""
    assert ack["req_id"] == "abc"
    assert ack["op"] == "subscribe"
    assert isinstance(ack["conn_id"], str)
    assert ack["conn_id"]


@pytest.mark.parametrize(
    "topic",
    ["tickers.NOPEUSDT", "orderbook.1.BTCUSDT", "tickers.BTCUSD", "allLiquidation.BTC", "tickers"],
)
async def test_invalid_topics_are_refused_with_success_false(sim: SimServer, topic: str) -> None:
    async with connect(sim.urls["bybit_ws_linear"]) as ws:
        ack = await subscribe(ws, topic)
        assert set(ack) == ACK_KEYS
        assert ack["success"] is False
        assert topic in ack["ret_msg"]
        with pytest.raises(TimeoutError):
            await recv_json(ws, wait_s=0.2)  # 4 s of market time: nothing for a refused topic


async def test_duplicate_subscription_is_refused_but_keeps_the_first(sim: SimServer) -> None:
    async with connect(sim.urls["bybit_ws_inverse"]) as ws:
        assert (await subscribe(ws, "tickers.BTCUSD"))["success"] is True
        snapshot = await recv_json(ws)
        assert snapshot["type"] == "snapshot"
        again = await subscribe(ws, "tickers.BTCUSD")
        assert again["success"] is False
        assert "already subscribed" in again["ret_msg"]
        assert (await recv_json(ws))["type"] == "delta"


async def test_option_endpoint_acks_with_command_resp(sim: SimServer) -> None:
    good = f"tickers.{option_symbol(sim)}"
    async with connect(sim.urls["bybit_ws_option"]) as ws:
        ack = await subscribe(ws, good, "tickers.BTC-1JAN99-1-C", "allLiquidation.BTCUSDT")
    assert set(ack) == {"success", "conn_id", "data", "type"}
    assert ack["type"] == "COMMAND_RESP"
    assert ack["success"] is False
    assert ack["data"] == {"failTopics": ["tickers.BTC-1JAN99-1-C", "allLiquidation.BTCUSDT"], "successTopics": [good]}


@pytest.mark.parametrize("endpoint", ["bybit_ws_linear", "bybit_ws_inverse"])
async def test_ping_gets_the_linear_inverse_pong(sim: SimServer, endpoint: str) -> None:
    async with connect(sim.urls[endpoint]) as ws:
        await ws.send(json.dumps({"req_id": "p7", "op": "ping"}))
        pong = await recv_json(ws)
        await ws.send(json.dumps({"op": "ping"}))
        bare = await recv_json(ws)
    assert set(pong) == ACK_KEYS
    assert (pong["success"], pong["ret_msg"], pong["op"], pong["req_id"]) == (True, "pong", "ping", "p7")
    assert bare["req_id"] == ""


async def test_ping_gets_the_option_pong(sim: SimServer) -> None:
    async with connect(sim.urls["bybit_ws_option"]) as ws:
        await ws.send(json.dumps({"req_id": "p1", "op": "ping"}))
        pong = await recv_json(ws)
    assert set(pong) == {"args", "op"}
    assert pong["op"] == "pong"
    assert len(pong["args"]) == 1
    assert pong["args"][0].isdigit()
    assert abs(int(pong["args"][0]) - sim.market.now_ms) < 5_000


async def test_unknown_op_and_bad_json_are_answered_not_fatal(sim: SimServer) -> None:
    async with connect(sim.urls["bybit_ws_linear"]) as ws:
        await ws.send("{not json")
        assert (await recv_json(ws))["success"] is False
        await ws.send(json.dumps({"op": "auth", "args": []}))
        reply = await recv_json(ws)
        assert (reply["success"], reply["op"]) == (False, "auth")
        assert (await subscribe(ws, "tickers.ETHUSDT"))["success"] is True


async def test_unsubscribe_stops_the_topic(sim: SimServer) -> None:
    async with connect(sim.urls["bybit_ws_linear"]) as ws:
        await subscribe(ws, "tickers.SOLUSDT")
        await recv_json(ws)
        await ws.send(json.dumps({"req_id": "u", "op": "unsubscribe", "args": ["tickers.SOLUSDT"]}))
        ack = await recv_until(ws, lambda m: "topic" not in m)
        assert (ack["success"], ack["op"], ack["req_id"]) == (True, "unsubscribe", "u")
        with pytest.raises(TimeoutError):
            await recv_json(ws, wait_s=0.25)


async def test_idle_connection_is_cut_unless_the_client_pings() -> None:
    config = BybitConfig(idle_timeout_s=0.8, close_timeout_s=0.3)  # generous: CI machines are loaded
    async with SimServer(seed=1, speed=SPEED, bybit=config) as sim:
        async with connect(sim.urls["bybit_ws_linear"]) as quiet:
            t0 = time.monotonic()
            closed = await until_closed(quiet)
            assert 0.75 < time.monotonic() - t0 < 3.0
        assert closed.rcvd is not None
        async with connect(sim.urls["bybit_ws_option"]) as pinging:
            for _ in range(6):
                await pinging.send(json.dumps({"op": "ping"}))
                assert (await recv_json(pinging))["op"] == "pong"
                await asyncio.sleep(0.1)
        assert sim.bybit.stats["idle_closes"] == 1


# --------------------------------------------------------------------------------------------
# WebSocket: tickers
# --------------------------------------------------------------------------------------------


async def test_linear_ticker_sends_a_snapshot_then_deltas_of_changed_keys_only(sim: SimServer) -> None:
    async with connect(sim.urls["bybit_ws_linear"]) as ws:
        await subscribe(ws, "tickers.BTCUSDT")
        snapshot = await recv_json(ws)
        deltas = [await recv_json(ws) for _ in range(12)]
    assert set(snapshot) == {"topic", "type", "data", "cs", "ts"}
    assert (snapshot["topic"], snapshot["type"]) == ("tickers.BTCUSDT", "snapshot")
    assert set(snapshot["data"]) == LINEAR_TICKER_KEYS
    assert all(isinstance(v, str) for v in snapshot["data"].values())
    assert is_int(snapshot["cs"])
    assert is_int(snapshot["ts"])
    state = dict(snapshot["data"])
    assert state["fundingIntervalHour"] == "8"
    assert int(state["nextFundingTime"]) % (8 * HOUR_MS) == 0
    assert abs(float(state["fundingRate"])) < 0.005
    assert float(state["openInterest"]) == pytest.approx(2 * float(state["singleOpenInterest"]))
    assert float(state["openInterestValue"]) == pytest.approx(
        float(state["openInterest"]) * float(state["markPrice"]), rel=1e-4
    )
    seen_keys: set[str] = set()
    for frame in deltas:
        assert frame["type"] == "delta"
        assert frame["topic"] == "tickers.BTCUSDT"
        data = frame["data"]
        assert data["symbol"] == "BTCUSDT"
        assert set(data) < LINEAR_TICKER_KEYS
        for key, value in data.items():
            assert isinstance(value, str)
            if key != "symbol":
                assert state[key] != value, f"{key} sent in a delta but unchanged"
        state.update(data)
        seen_keys |= set(data)
    # fields that did not move never appear in a delta
    assert {"nextFundingTime", "fundingIntervalHour", "fundingCap", "preOpenPrice"}.isdisjoint(seen_keys)
    assert "markPrice" in seen_keys
    times = [f["ts"] for f in deltas]
    assert all(b > a and (b - a) % 100 == 0 for a, b in itertools.pairwise(times))
    assert [f["cs"] for f in deltas] == sorted({f["cs"] for f in deltas})
    st = sim.market.bybit.state("BTCUSDT")
    assert float(state["markPrice"]) == pytest.approx(st.mark_price, rel=1e-3)


async def test_inverse_ticker_sizes_are_usd_and_values_are_coin(sim: SimServer) -> None:
    async with connect(sim.urls["bybit_ws_inverse"]) as ws:
        await subscribe(ws, "tickers.BTCUSD")
        data = (await recv_json(ws))["data"]
    oi, value, mark = float(data["openInterest"]), float(data["openInterestValue"]), float(data["markPrice"])
    assert oi.is_integer()  # 1 USD contracts
    assert oi == 2 * float(data["singleOpenInterest"])
    assert value == pytest.approx(oi / mark, rel=1e-3)  # coin
    assert float(data["turnover24h"]) == pytest.approx(float(data["volume24h"]) / mark, rel=0.1)
    book_oi = sim.market.bybit.state("BTCUSD").open_interest
    assert float(data["singleOpenInterest"]) == pytest.approx(book_oi, rel=1e-3)


async def test_option_tickers_are_snapshots_with_iv_fractions(sim: SimServer) -> None:
    call = option_symbol(sim, "C")
    deep_put = min(
        (s for s, c in sim.market.bybit.contracts.items() if c.option and c.option_type == "P"),
        key=lambda s: sim.market.bybit.contracts[s].strike,
    )
    async with connect(sim.urls["bybit_ws_option"]) as ws:
        await subscribe(ws, f"tickers.{call}", f"tickers.{deep_put}")
        frames = [await recv_json(ws) for _ in range(6)]
    by_symbol = {f["data"]["symbol"]: f for f in frames}
    assert set(by_symbol) == {call, deep_put}
    for frame in frames:
        assert set(frame) == {"id", "topic", "ts", "data", "type"}
        assert frame["type"] == "snapshot"
        assert frame["id"].startswith(frame["topic"])
        assert set(frame["data"]) == OPTION_TICKER_KEYS
        assert all(is_num_str(v) for k, v in frame["data"].items() if k != "symbol")
    data = by_symbol[call]["data"]
    assert 0.05 < float(data["markPriceIv"]) < 3  # a fraction, not percent
    assert 0 < float(data["bidIv"]) < float(data["markPriceIv"]) < float(data["askIv"])
    assert 0 < float(data["delta"]) < 1
    assert float(data["theta"]) < 0
    put = by_symbol[deep_put]["data"]
    assert (put["bidPrice"], put["bidIv"]) == ("0", "0")  # no bid: the venue sends 0
    assert float(put["delta"]) < 0


# --------------------------------------------------------------------------------------------
# WebSocket: allLiquidation
# --------------------------------------------------------------------------------------------


async def test_all_liquidation_pushes_every_order_in_500ms_batches(sim: SimServer) -> None:
    market = sim.market
    book = market.bybit
    async with connect(sim.urls["bybit_ws_linear"]) as ws:
        await subscribe(ws, "allLiquidation.ETHUSDT")
        cascade = Cascade("ETHUSDT", venue="bybit", start_s=market.elapsed_s + 0.5, duration_s=4.0, orders_per_s=6.0)
        market.schedule(cascade)
        start_ms = market.start_ms + int(cascade.start_s * 1000)
        end_ms = market.start_ms + int(cascade.end_s * 1000)
        frames: list[dict[str, Any]] = []
        while market.now_ms < end_ms + 1500:
            try:
                frames.append(await recv_json(ws, wait_s=0.5))
            except TimeoutError:
                break
    assert frames
    items: list[dict[str, Any]] = []
    for frame in frames:
        assert set(frame) == {"topic", "type", "ts", "data"}
        assert (frame["topic"], frame["type"]) == ("allLiquidation.ETHUSDT", "snapshot")
        assert frame["ts"] % 500 == 0
        assert isinstance(frame["data"], list)
        assert frame["data"]
        for item in frame["data"]:
            assert set(item) == {"T", "s", "S", "v", "p"}
            assert is_int(item["T"])
            assert frame["ts"] - 500 <= item["T"] < frame["ts"]
            assert item["s"] == "ETHUSDT"
            assert item["S"] in ("Buy", "Sell")
            assert is_num_str(item["v"])
            assert is_num_str(item["p"])
        items.extend(frame["data"])
    assert max(len(f["data"]) for f in frames) > 1  # several orders in one batch: nothing is dropped
    in_window = [i for i in items if start_ms <= i["T"] < end_ms]
    recorded = [liq for liq in book.liquidations if liq.symbol == "ETHUSDT" and start_ms <= liq.trade_ms < end_ms]
    assert len(in_window) == len(recorded)
    client_usd = sum(float(i["v"]) * float(i["p"]) for i in in_window)
    assert client_usd == pytest.approx(book.total_liquidation_usd("ETHUSDT", start_ms=start_ms, end_ms=end_ms))
    # the cascade liquidates longs: SELL orders, which Bybit reports as position side Buy
    assert sum(i["S"] == "Buy" for i in in_window) > 0.8 * len(in_window)
    scripted = [liq for liq in recorded if liq.scripted]
    assert scripted
    assert {liq.side for liq in scripted} == {"SELL"}


# --------------------------------------------------------------------------------------------
# REST
# --------------------------------------------------------------------------------------------


async def test_instruments_info_paginates_with_next_page_cursor(sim: SimServer, http: aiohttp.ClientSession) -> None:
    base = sim.urls["bybit_rest"] + "/v5/market/instruments-info?category=linear&limit=3"
    symbols: list[str] = []
    cursor = ""
    pages = 0
    while True:
        status, body, _ = await get(http, base + (f"&cursor={cursor}" if cursor else ""))
        assert status == 200
        assert set(body) == {"retCode", "retMsg", "result", "retExtInfo", "time"}
        assert (body["retCode"], body["retMsg"], body["retExtInfo"]) == (0, "OK", {})
        assert is_int(body["time"])
        result = body["result"]
        assert set(result) == {"category", "list", "nextPageCursor"}
        assert len(result["list"]) <= 3
        symbols += [row["symbol"] for row in result["list"]]
        pages += 1
        cursor = result["nextPageCursor"]
        if not cursor:
            break
    assert pages == 2
    assert sorted(symbols) == ["BTCPERP", "BTCUSDT", "ETHUSDT", "SOLUSDT"]
    _, body, _ = await get(http, sim.urls["bybit_rest"] + "/v5/market/instruments-info?category=linear")
    rows = {r["symbol"]: r for r in body["result"]["list"]}
    assert body["result"]["nextPageCursor"] == ""
    assert rows["SOLUSDT"]["fundingInterval"] == 240  # minutes
    assert rows["BTCUSDT"]["fundingInterval"] == 480
    assert rows["BTCPERP"]["quoteCoin"] == rows["BTCPERP"]["settleCoin"] == "USDC"
    assert all(r["contractType"] == "LinearPerpetual" and r["status"] == "Trading" for r in rows.values())
    assert {"priceFilter", "lotSizeFilter", "leverageFilter", "launchTime", "priceScale"} <= set(rows["BTCUSDT"])


async def test_instruments_info_inverse_option_and_filters(sim: SimServer, http: aiohttp.ClientSession) -> None:
    base = sim.urls["bybit_rest"] + "/v5/market/instruments-info"
    _, inverse, _ = await get(http, base + "?category=inverse")
    [row] = inverse["result"]["list"]
    assert (row["symbol"], row["contractType"], row["settleCoin"], row["quoteCoin"]) == (
        "BTCUSD",
        "InversePerpetual",
        "BTC",
        "USD",
    )
    _, options, _ = await get(http, base + "?category=option")
    rows = options["result"]["list"]
    assert len(rows) == 18  # 3 expiries x 3 strikes x C/P
    assert {r["optionsType"] for r in rows} == {"Call", "Put"}
    assert all((r["baseCoin"], r["quoteCoin"], r["settleCoin"]) == ("BTC", "USD", "USDC") for r in rows)
    assert all(r["symbol"].startswith("BTC-") and r["symbol"][-2:] in ("-C", "-P") for r in rows)
    _, eth_options, _ = await get(http, base + "?category=option&baseCoin=ETH")
    assert eth_options["result"]["list"] == []
    _, by_base, _ = await get(http, base + "?category=linear&baseCoin=BTC")
    # documented: by baseCoin, linear and inverse contracts come back together
    assert {r["symbol"] for r in by_base["result"]["list"]} == {"BTCUSDT", "BTCPERP", "BTCUSD"}
    _, unknown, _ = await get(http, base + "?category=linear&symbol=NOPEUSDT")
    assert (unknown["retCode"], unknown["result"]["list"]) == (0, [])
    _, no_category, _ = await get(http, base)
    assert no_category["retCode"] == 10001


async def test_tickers_rest_rows_and_unknown_symbol(sim: SimServer, http: aiohttp.ClientSession) -> None:
    base = sim.urls["bybit_rest"] + "/v5/market/tickers"
    _, linear, _ = await get(http, base + "?category=linear")
    rows = {r["symbol"]: r for r in linear["result"]["list"]}
    assert set(rows) == {"BTCUSDT", "ETHUSDT", "SOLUSDT", "BTCPERP"}
    btc = rows["BTCUSDT"]
    assert {"fundingRate", "nextFundingTime", "openInterest", "singleOpenInterest", "fundingIntervalHour"} <= set(btc)
    assert all(isinstance(v, str) for v in btc.values())
    _, one, _ = await get(http, base + "?category=linear&symbol=ETHUSDT")
    assert [r["symbol"] for r in one["result"]["list"]] == ["ETHUSDT"]
    for query in ("?category=linear&symbol=NOPEUSDT", "?category=inverse&symbol=BTCUSDT", "?category=option"):
        status, body, _ = await get(http, base + query)
        assert status == 200
        assert body["retCode"] == 10001
        assert body["result"] == {}
    _, options, _ = await get(http, base + "?category=option&baseCoin=BTC")
    row = options["result"]["list"][0]
    assert {"bid1Iv", "ask1Iv", "markIv", "delta", "underlyingPrice"} <= set(row)
    assert "markPriceIv" not in row  # REST names differ from the stream's


async def test_open_interest_rest_is_newest_first_both_sides_and_pages(
    sim: SimServer, http: aiohttp.ClientSession
) -> None:
    url = sim.urls["bybit_rest"] + "/v5/market/open-interest?category=linear&symbol=BTCUSDT&intervalTime=1h&limit=4"
    _, body, _ = await get(http, url)
    result = body["result"]
    assert (result["symbol"], result["category"]) == ("BTCUSDT", "linear")
    rows = result["list"]
    assert len(rows) == 4
    stamps = [int(r["timestamp"]) for r in rows]
    assert stamps == sorted(stamps, reverse=True)
    assert {a - b for a, b in itertools.pairwise(stamps)} == {HOUR_MS}
    for r in rows:
        assert set(r) == {"openInterest", "singleOpenInterest", "timestamp"}
        assert float(r["openInterest"]) == pytest.approx(2 * float(r["singleOpenInterest"]))
    _, page2, _ = await get(http, url + "&cursor=" + result["nextPageCursor"])
    assert int(page2["result"]["list"][0]["timestamp"]) == stamps[-1] - HOUR_MS
    _, bad, _ = await get(http, url.replace("1h", "2h"))
    assert bad["retCode"] == 10001


async def test_funding_history_rest_rules(sim: SimServer, http: aiohttp.ClientSession) -> None:
    base = sim.urls["bybit_rest"] + "/v5/market/funding/history?category=linear"
    _, body, _ = await get(http, base + "&symbol=SOLUSDT&limit=5")
    rows = body["result"]["list"]
    assert len(rows) == 5
    assert all(set(r) == {"symbol", "fundingRate", "fundingRateTimestamp"} for r in rows)
    stamps = [int(r["fundingRateTimestamp"]) for r in rows]
    assert {a - b for a, b in itertools.pairwise(stamps)} == {4 * HOUR_MS}  # newest first, 4 h interval
    _, start_only, _ = await get(http, base + f"&symbol=SOLUSDT&startTime={stamps[-1]}")
    assert start_only["retCode"] == 10001
    _, ranged, _ = await get(http, base + f"&symbol=SOLUSDT&startTime={stamps[-1]}&endTime={stamps[1]}")
    assert [int(r["fundingRateTimestamp"]) for r in ranged["result"]["list"]] == stamps[1:]
    _, unknown, _ = await get(http, base + "&symbol=BTCUSD")
    assert unknown["retCode"] == 10001


async def test_rate_limit_headers_and_too_many_visits() -> None:
    config = BybitConfig(endpoint_limit_per_s=3, close_timeout_s=0.5)
    async with SimServer(seed=1, speed=SPEED, bybit=config) as sim, aiohttp.ClientSession() as http:
        url = sim.urls["bybit_rest"] + "/v5/market/tickers?category=linear&symbol=BTCUSDT"
        seen = []
        for _ in range(4):
            _, body, resp = await get(http, url)
            seen.append((body["retCode"], resp.headers["X-Bapi-Limit"], resp.headers["X-Bapi-Limit-Status"]))
            assert is_num_str(resp.headers["X-Bapi-Limit-Reset-Timestamp"])
        other = await get(http, sim.urls["bybit_rest"] + "/v5/market/time")
    assert seen == [(0, "3", "2"), (0, "3", "1"), (0, "3", "0"), (10006, "3", "0")]
    assert other[1]["retCode"] == 0  # the budget is per endpoint


async def test_ip_limit_answers_403_access_too_frequent() -> None:
    config = BybitConfig(ip_limit_per_5s=2, close_timeout_s=0.5)
    async with SimServer(seed=1, speed=SPEED, bybit=config) as sim, aiohttp.ClientSession() as http:
        url = sim.urls["bybit_rest"] + "/v5/market/time"
        statuses = [(await get(http, url))[0] for _ in range(3)]
        _, text, _ = await get(http, url)
    assert statuses == [200, 200, 403]
    assert "access too frequent" in text


# --------------------------------------------------------------------------------------------
# Faults
# --------------------------------------------------------------------------------------------


async def test_rest_faults_render_bybit_shapes(sim: SimServer, http: aiohttp.ClientSession) -> None:
    url = sim.urls["bybit_rest"] + "/v5/market/tickers?category=linear&symbol=BTCUSDT"
    sim.faults.rest_error(403, venue="bybit")
    sim.faults.rest_error(429, retry_after_s=2, venue="bybit.rest", path="*/tickers")
    sim.faults.rest_error(200, code=10006, venue="bybit")
    sim.faults.rest_error(503, venue="bybit")
    sim.faults.rest_error(500, venue="binance")  # another venue's fault is not ours
    status, text, _ = await get(http, url)
    assert (status, text) == (403, "access too frequent")
    status, body, resp = await get(http, url)
    assert (status, body["retCode"], resp.headers["Retry-After"]) == (429, 10429, "2")
    status, body, _ = await get(http, url)
    assert (status, body["retCode"], body["retMsg"]) == (200, 10006, "Too many visits!")
    status, body, _ = await get(http, url)
    assert (status, body["retCode"]) == (503, 10016)
    status, body, _ = await get(http, url)
    assert (status, body["retCode"]) == (200, 0)


async def test_stall_withholds_data_but_answers_pings(sim: SimServer) -> None:
    async with connect(sim.urls["bybit_ws_linear"]) as ws:
        await subscribe(ws, "tickers.ETHUSDT")
        await recv_json(ws)
        sim.faults.stall(0.4, venue="bybit.linear")
        await ws.send(json.dumps({"op": "ping"}))
        assert (await recv_json(ws))["ret_msg"] == "pong"
        with pytest.raises(TimeoutError):
            await recv_json(ws, wait_s=0.25)
        assert (await recv_json(ws, wait_s=1.0))["topic"] == "tickers.ETHUSDT"
    assert sim.bybit.stats["stalled_frames_dropped"] > 0


@pytest.mark.parametrize("abrupt", [False, True])
async def test_drop_connections_by_endpoint_key(sim: SimServer, abrupt: bool) -> None:
    async with connect(sim.urls["bybit_ws_inverse"]) as inverse, connect(sim.urls["bybit_ws_linear"]) as linear:
        await subscribe(inverse, "tickers.BTCUSD")
        await subscribe(linear, "tickers.BTCUSDT")
        assert await sim.faults.drop_connections("bybit.inverse", abrupt=abrupt) == 1
        closed = await until_closed(inverse)
        assert (await recv_json(linear))["topic"] == "tickers.BTCUSDT"
    assert (closed.rcvd is None) is abrupt


@pytest.mark.parametrize("kind", ["truncated", "text", "wrong_types", "unknown_event", "binary"])
async def test_garbage_frames_are_delivered_as_asked(sim: SimServer, kind: GarbageKind) -> None:
    async with connect(sim.urls["bybit_ws_linear"]) as ws:
        await subscribe(ws, "allLiquidation.SOLUSDT")
        assert sim.faults.send_garbage(kind, venue="bybit") == 1
        raw = await asyncio.wait_for(ws.recv(), 2.0)
    if kind == "binary":
        assert isinstance(raw, bytes)
    elif kind in ("truncated", "text"):
        with pytest.raises(json.JSONDecodeError):
            json.loads(raw)
    elif kind == "wrong_types":
        frame = json.loads(raw)
        assert isinstance(frame["ts"], str)
        assert isinstance(frame["data"]["lastPrice"], float)
    else:
        assert json.loads(raw)["topic"].startswith("simUnknownTopic.")


async def test_close_after_and_rejected_handshakes(sim: SimServer) -> None:
    sim.faults.reject_handshakes(503, count=1, venue="bybit.option")
    with pytest.raises(websockets.InvalidStatus) as err:
        async with connect(sim.urls["bybit_ws_option"]):
            pass
    assert err.value.response.status_code == 503
    async with connect(sim.urls["bybit_ws_option"]) as ws:
        assert sim.faults.close_after(0.2, "bybit") == 1
        closed = await until_closed(ws)
    assert closed.rcvd is not None
    assert closed.rcvd.code == 1000


# --------------------------------------------------------------------------------------------
# Market
# --------------------------------------------------------------------------------------------


def test_bybit_book_follows_binance_walks_with_its_own_numbers() -> None:
    market = Market(seed=5, start_ms=1_795_500_000_000)
    market.advance_to(market.start_ms + 20_000)
    binance, bybit = market.state("BTCUSDT"), market.bybit.state("BTCUSDT")
    assert bybit.index_price == pytest.approx(binance.index_price, rel=5e-4)
    assert bybit.index_price != binance.index_price
    assert bybit.funding_rate != binance.funding_rate
    assert bybit.open_interest != binance.open_interest
    inverse = market.bybit.state("BTCUSD")
    assert inverse.index_price == pytest.approx(binance.index_price, rel=1e-3)
    other = Market(seed=5, start_ms=1_795_500_000_000)
    other.advance_to(other.start_ms + 20_000)
    assert other.bybit.liquidations == market.bybit.liquidations
    assert other.bybit.state("ETHUSDT") == market.bybit.state("ETHUSDT")


async def test_account_ratio(sim: SimServer, http: aiohttp.ClientSession) -> None:
    """bbd:v5/market/long-short-ratio: buyRatio/sellRatio strings, newest first, period required."""
    from streamer.sim.venues.bybit import long_account_share

    base = sim.urls["bybit_rest"] + "/v5/market/account-ratio"
    _, body, _ = await get(http, base + "?category=linear&symbol=BTCUSDT&period=1h&limit=3")
    assert body["retCode"] == 0
    rows = body["result"]["list"]
    assert len(rows) == 3
    assert [int(r["timestamp"]) for r in rows] == sorted((int(r["timestamp"]) for r in rows),
                                                                            reverse=True)
    r = rows[0]
    assert float(r["buyRatio"]) == pytest.approx(long_account_share("BTCUSDT", int(r["timestamp"])))
    assert float(r["buyRatio"]) + float(r["sellRatio"]) == pytest.approx(1.0)
    _, body, _ = await get(http, base + "?category=inverse&symbol=BTCUSD&period=5min&limit=1")
    assert body["retCode"] == 0
    assert body["result"]["list"][0]["symbol"] == "BTCUSD"
    _, body, _ = await get(http, base + "?category=linear&symbol=BTCUSDT")
    assert body["retCode"] != 0  # period is required
