"""The simulator's Binance venue, checked with plain websockets/aiohttp clients against Binance's documented
wire formats (never through streamer's own adapters), plus its market, scenarios and fault hooks."""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
import websockets
from websockets.asyncio.client import ClientConnection, connect

from streamer.sim import BinanceConfig, Cascade, Market, SimServer, main, serve
from streamer.sim.faults import GarbageKind
from streamer.sim.market import HOUR_MS

SPEED = 20.0  # 1 s of market time = 50 ms of wall time
FAST = BinanceConfig(ping_interval_s=5.0, pong_timeout_s=30.0, max_lifetime_s=60.0, close_timeout_s=0.5)
MARK_KEYS = {"e", "E", "s", "p", "i", "P", "r", "T"}


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    async with SimServer(seed=7, speed=SPEED, binance=FAST) as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def eventually(cond: Callable[[], bool], wait_s: float = 3.0) -> None:
    deadline = time.monotonic() + wait_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)


async def recv_json(ws: ClientConnection, wait_s: float = 2.0) -> Any:
    return json.loads(await asyncio.wait_for(ws.recv(), wait_s))


async def recv_until(ws: ClientConnection, pred: Callable[[Any], bool], wait_s: float = 3.0) -> Any:
    deadline = time.monotonic() + wait_s
    while True:
        msg = await recv_json(ws, max(0.01, deadline - time.monotonic()))
        if pred(msg):
            return msg


async def until_closed(ws: ClientConnection, wait_s: float = 3.0) -> websockets.ConnectionClosed:
    """Read until the server ends the connection; return how it ended."""

    async def drain() -> websockets.ConnectionClosed:
        try:
            while True:
                await ws.recv()
        except websockets.ConnectionClosed as exc:
            return exc

    return await asyncio.wait_for(drain(), wait_s)


async def get(http: aiohttp.ClientSession, url: str) -> tuple[int, Any, aiohttp.ClientResponse]:
    async with http.get(url) as resp:
        return resp.status, await resp.json(content_type=None), resp


def is_num_str(v: object) -> bool:
    if not isinstance(v, str):
        return False
    float(v)
    return True


def is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


# --------------------------------------------------------------------------------------------
# WebSocket: frames
# --------------------------------------------------------------------------------------------


async def test_combined_stream_delivers_mark_price_with_documented_keys_and_types(sim: SimServer) -> None:
    names = ["btcusdt@markPrice@1s", "ethusdt@markPrice"]
    url = sim.urls["binance_um_ws"] + "/stream?streams=" + "/".join(names)
    seen: dict[str, list[int]] = {n: [] for n in names}
    async with connect(url) as ws:
        while len(seen["ethusdt@markPrice"]) < 2:
            frame = await recv_json(ws)
            assert set(frame) == {"stream", "data"}
            data = frame["data"]
            assert set(data) == MARK_KEYS
            assert data["e"] == "markPriceUpdate"
            assert data["s"] == frame["stream"].split("@")[0].upper()
            assert is_int(data["E"])
            assert is_int(data["T"])
            assert all(is_num_str(data[k]) for k in ("p", "i", "P", "r"))
            assert data["T"] > data["E"]
            seen[frame["stream"]].append(data["E"])
    one_s, three_s = seen["btcusdt@markPrice@1s"], seen["ethusdt@markPrice"]
    assert {b - a for a, b in itertools.pairwise(one_s)} == {1000}
    assert three_s[1] - three_s[0] == 3000


async def test_dated_contracts_send_empty_rate_and_zero_next_funding(sim: SimServer) -> None:
    async with connect(sim.urls["binance_cm_ws"] + "/ws/btcusd@markPrice@1s") as ws:
        rows = await recv_json(ws)
    assert isinstance(rows, list)
    by_symbol = {r["s"]: r for r in rows}
    dated = next(s for s in by_symbol if s != "BTCUSD_PERP")
    assert set(by_symbol) == {"BTCUSD_PERP", dated}
    assert dated.startswith("BTCUSD_")
    assert all(set(r) == MARK_KEYS for r in rows)
    assert by_symbol[dated]["r"] == ""
    assert by_symbol[dated]["T"] == 0
    assert is_num_str(by_symbol["BTCUSD_PERP"]["r"])
    assert by_symbol["BTCUSD_PERP"]["T"] > 0
    um_dated = next(s for s in sim.market.symbols("um") if "_" in s)
    async with connect(sim.urls["binance_um_ws"] + f"/ws/{um_dated.lower()}@markPrice@1s") as ws:
        data = await recv_json(ws)
    assert data["s"] == um_dated
    assert data["r"] == ""
    assert data["T"] == 0


async def test_raw_path_lists_several_streams_and_sends_bare_payloads(sim: SimServer) -> None:
    async with connect(sim.urls["binance_um_ws"] + "/ws/btcusdt@markPrice@1s/ethusdt@ticker") as ws:
        kinds: set[str] = set()
        while kinds != {"markPriceUpdate", "24hrTicker"}:
            frame = await recv_json(ws)
            assert "stream" not in frame
            kinds.add(frame["e"])
            if frame["e"] == "24hrTicker":
                assert set(frame) == set("eEspPwcQohlvqOCFLn")
                assert frame["s"] == "ETHUSDT"
                assert is_num_str(frame["P"])
                assert is_int(frame["n"])


async def test_cm_ticker_and_book_ticker_carry_pair(sim: SimServer) -> None:
    url = sim.urls["binance_cm_ws"] + "/stream?streams=btcusd_perp@ticker/btcusd_perp@bookTicker"
    async with connect(url) as ws:
        ticker = await recv_until(ws, lambda f: f["stream"].endswith("@ticker"))
        book = await recv_until(ws, lambda f: f["stream"].endswith("@bookTicker"))
    assert set(ticker["data"]) == set("eEspPwcQohlvqOCFLn") | {"ps"}
    assert ticker["data"]["ps"] == "BTCUSD"
    assert float(ticker["data"]["v"]).is_integer()
    assert set(book["data"]) == {"e", "u", "s", "ps", "b", "B", "a", "A", "T", "E"}
    assert float(book["data"]["b"]) < float(book["data"]["a"])


async def test_um_market_and_public_routes_split_streams(sim: SimServer) -> None:
    async with connect(sim.urls["binance_um_ws_public"] + "/ws/btcusdt@bookTicker") as ws:
        book = await recv_json(ws)
    assert set(book) == {"e", "u", "E", "T", "s", "b", "B", "a", "A"}
    assert book["e"] == "bookTicker"
    async with connect(sim.urls["binance_um_ws"] + "/stream?streams=btcusdt@bookTicker/btcusdt@markPrice@1s") as ws:
        for _ in range(3):
            assert (await recv_json(ws))["stream"] == "btcusdt@markPrice@1s"
    async with connect(sim.urls["binance_um_ws_legacy"] + "/ws/btcusdt@bookTicker") as ws:
        assert (await recv_json(ws))["e"] == "bookTicker"


# --------------------------------------------------------------------------------------------
# WebSocket: live subscribing
# --------------------------------------------------------------------------------------------


async def test_subscribe_is_acked_then_delivers_data_and_unsubscribe_stops_it(sim: SimServer) -> None:
    async with connect(sim.urls["binance_um_ws"] + "/ws") as ws:
        await ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["solusdt@markPrice@1s"], "id": 1}))
        assert await recv_json(ws) == {"result": None, "id": 1}
        data = await recv_json(ws)
        assert data["e"] == "markPriceUpdate"
        assert data["s"] == "SOLUSDT"
        await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 2}))
        assert await recv_until(ws, lambda f: "id" in f) == {"result": ["solusdt@markPrice@1s"], "id": 2}
        await ws.send(json.dumps({"method": "UNSUBSCRIBE", "params": ["solusdt@markPrice@1s"], "id": 3}))
        assert await recv_until(ws, lambda f: "id" in f) == {"result": None, "id": 3}
        with pytest.raises(TimeoutError):
            await recv_json(ws, wait_s=0.25)  # 5 s of market time: nothing more


async def test_list_subscriptions_includes_url_streams(sim: SimServer) -> None:
    async with connect(sim.urls["binance_cm_ws"] + "/stream?streams=btcusd_perp@forceOrder") as ws:
        await ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["!forceOrder@arr"], "id": 9}))
        assert await recv_until(ws, lambda f: "id" in f) == {"result": None, "id": 9}
        await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 10}))
        reply = await recv_until(ws, lambda f: "id" in f)
    assert reply == {"result": ["btcusd_perp@forceOrder", "!forceOrder@arr"], "id": 10}


@pytest.mark.parametrize(
    ("request_text", "code"),
    [
        ("{not json", 3),
        ('{"method": "SUBSCRIBEX", "params": [], "id": 1}', 2),
        ('{"params": ["btcusdt@markPrice"], "id": 1}', 2),
        ('{"method": "SUBSCRIBE", "params": ["btcusdt@markPrice"]}', 2),
        ('{"method": "SUBSCRIBE", "params": ["btcusdt@markPrice"], "id": "abc"}', 2),
        ('{"method": "SUBSCRIBE", "params": "btcusdt@markPrice", "id": 1}', 2),
        ('{"method": "SET_PROPERTY", "params": ["colour", true], "id": 1}', 0),
        ('{"method": "SET_PROPERTY", "params": ["combined", "yes"], "id": 1}', 1),
    ],
)
async def test_bad_requests_get_binance_error_frames(sim: SimServer, request_text: str, code: int) -> None:
    async with connect(sim.urls["binance_um_ws"] + "/ws") as ws:
        await ws.send(request_text)
        reply = await recv_json(ws)
    assert set(reply) == {"error", "id"}
    assert set(reply["error"]) == {"code", "msg"}
    assert reply["error"]["code"] == code
    assert isinstance(reply["error"]["msg"], str)
    assert reply["error"]["msg"]


async def test_set_property_combined_wraps_payloads(sim: SimServer) -> None:
    async with connect(sim.urls["binance_um_ws"] + "/ws/btcusdt@markPrice@1s") as ws:
        assert "stream" not in await recv_json(ws)
        await ws.send(json.dumps({"method": "SET_PROPERTY", "params": ["combined", True], "id": 5}))
        assert await recv_until(ws, lambda f: "id" in f) == {"result": None, "id": 5}
        await ws.send(json.dumps({"method": "GET_PROPERTY", "params": ["combined"], "id": 6}))
        assert await recv_until(ws, lambda f: "id" in f) == {"result": True, "id": 6}
        frame = await recv_json(ws)
    assert frame["stream"] == "btcusdt@markPrice@1s"
    assert frame["data"]["e"] == "markPriceUpdate"


async def test_max_streams_per_connection_is_enforced() -> None:
    config = BinanceConfig(max_streams=3, close_timeout_s=0.5)
    async with SimServer(seed=1, speed=SPEED, binance=config) as sim:
        params = ["btcusdt@ticker", "ethusdt@ticker", "solusdt@ticker", "xrpusdt@ticker"]
        async with connect(sim.urls["binance_um_ws"] + "/ws") as ws:
            await ws.send(json.dumps({"method": "SUBSCRIBE", "params": params, "id": 1}))
            reply = await recv_until(ws, lambda f: "id" in f)
            assert reply["error"]["code"] == 2
            assert reply["id"] == 1
            await ws.send(json.dumps({"method": "SUBSCRIBE", "params": params[:3], "id": 2}))
            assert await recv_until(ws, lambda f: "id" in f) == {"result": None, "id": 2}
        with pytest.raises(websockets.InvalidStatus) as err:
            async with connect(sim.urls["binance_um_ws"] + "/ws/" + "/".join(params)):
                pass
        assert err.value.response.status_code == 400


async def test_more_than_ten_incoming_messages_a_second_disconnects(sim: SimServer) -> None:
    async with connect(sim.urls["binance_um_ws"] + "/ws") as ws:
        for i in range(12):
            await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}))
        closed = await until_closed(ws)
    assert closed.rcvd is not None
    assert closed.rcvd.code == 1008
    assert sim.binance.stats["rate_limit_closes"] == 1


# --------------------------------------------------------------------------------------------
# Liquidations
# --------------------------------------------------------------------------------------------


async def test_force_order_frames_follow_the_documented_shape(sim: SimServer) -> None:
    async with connect(sim.urls["binance_cm_ws"] + "/ws/!forceOrder@arr") as ws:
        sim.market.schedule(Cascade("BTCUSD_PERP", start_s=sim.market.elapsed_s + 0.5, duration_s=2.0))
        frame = await recv_json(ws)
    assert set(frame) == {"e", "E", "o"}
    assert frame["e"] == "forceOrder"
    order = frame["o"]
    assert set(order) == {"s", "ps", "S", "o", "f", "q", "p", "ap", "X", "l", "z", "T"}
    assert order["S"] in ("BUY", "SELL")
    assert order["o"] == "LIMIT"
    assert order["f"] == "IOC"
    assert float(order["q"]).is_integer()  # CM quantities are contracts
    assert is_int(order["T"])
    assert is_int(frame["E"])
    assert frame["E"] >= order["T"]


async def test_force_order_push_is_capped_at_one_per_symbol_per_second(http: aiohttp.ClientSession) -> None:
    async with (
        SimServer(seed=3, scenario="cascade", speed=SPEED, binance=FAST) as sim,
        connect(sim.urls["binance_um_ws"] + "/stream?streams=!forceOrder@arr") as ws,
    ):
        frames: list[dict[str, Any]] = []
        while sim.market.elapsed_s < 17:
            frames.append((await recv_json(ws))["data"])
    per_window = Counter((f["o"]["s"], f["o"]["T"] // 1000) for f in frames)
    assert max(per_window.values()) == 1
    eth_push_times = [f["E"] for f in frames if f["o"]["s"] == "ETHUSDT"]
    assert len(eth_push_times) >= 8
    assert all(b - a >= 1000 for a, b in itertools.pairwise(eth_push_times))
    # the cap hides orders: the market generated more ETH liquidations than it pushed
    generated = [liq for liq in sim.market.liquidations if liq.symbol == "ETHUSDT"]
    pushed = [p for p in sim.market.pushed if p.liquidation.symbol == "ETHUSDT"]
    assert len(generated) > len(pushed)


async def test_cascade_liquidations_read_by_a_client_total_what_the_market_recorded(sim: SimServer) -> None:
    market = sim.market
    async with connect(sim.urls["binance_um_ws"] + "/ws/ethusdt@forceOrder") as ws:
        cascade = Cascade("ETHUSDT", start_s=market.elapsed_s + 0.5, duration_s=10.0)
        market.schedule(cascade)
        start_ms = market.start_ms + int(cascade.start_s * 1000)
        end_ms = market.start_ms + int(cascade.end_s * 1000)
        read: list[dict[str, Any]] = []
        while market.now_ms < end_ms + 1500:
            try:
                read.append((await recv_json(ws, wait_s=0.5))["o"])
            except TimeoutError:
                break
    in_window = [o for o in read if start_ms <= o["T"] < end_ms]
    client_usd = sum(float(o["z"]) * float(o["ap"]) for o in in_window)
    market_usd = market.total_liquidation_usd("ETHUSDT", start_ms=start_ms, end_ms=end_ms)
    assert client_usd == pytest.approx(market_usd, rel=1e-9)
    assert market_usd > 2_000_000
    assert Counter(o["S"] for o in in_window).most_common(1)[0][0] == "SELL"
    assert market.total_liquidation_usd("ETHUSDT", pushed_only=False, start_ms=start_ms, end_ms=end_ms) > market_usd


# --------------------------------------------------------------------------------------------
# REST
# --------------------------------------------------------------------------------------------


async def test_um_rest_endpoints_return_documented_shapes(sim: SimServer, http: aiohttp.ClientSession) -> None:
    base = sim.urls["binance_um_rest"]
    status, info, _ = await get(http, base + "/fapi/v1/exchangeInfo")
    assert status == 200
    assert {"timezone", "serverTime", "rateLimits", "exchangeFilters", "assets", "symbols"} <= set(info)
    btc = next(s for s in info["symbols"] if s["symbol"] == "BTCUSDT")
    required = {"symbol", "pair", "contractType", "deliveryDate", "onboardDate", "status", "baseAsset", "quoteAsset"}
    assert required | {"marginAsset", "pricePrecision", "quantityPrecision", "filters"} <= set(btc)
    assert btc["contractType"] == "PERPETUAL"
    assert btc["status"] == "TRADING"
    assert "contractSize" not in btc
    assert {f["filterType"] for f in btc["filters"]} >= {"PRICE_FILTER", "LOT_SIZE", "MARKET_LOT_SIZE", "MIN_NOTIONAL"}
    assert any(s["contractType"] == "CURRENT_QUARTER" for s in info["symbols"])
    assert len(info["symbols"]) >= 25

    status, pi, _ = await get(http, base + "/fapi/v1/premiumIndex?symbol=BTCUSDT")
    keys = {"symbol", "markPrice", "indexPrice", "estimatedSettlePrice", "lastFundingRate", "interestRate"}
    assert status == 200
    assert set(pi) == keys | {"nextFundingTime", "time"}
    assert is_num_str(pi["lastFundingRate"])
    assert abs(float(pi["lastFundingRate"])) < 0.001
    assert pi["nextFundingTime"] % (8 * HOUR_MS) == 0
    _, all_pi, _ = await get(http, base + "/fapi/v1/premiumIndex")
    assert isinstance(all_pi, list)
    assert len(all_pi) == len(info["symbols"])

    _, oi, _ = await get(http, base + "/fapi/v1/openInterest?symbol=BTCUSDT")
    assert set(oi) == {"openInterest", "symbol", "time"}
    assert is_num_str(oi["openInterest"])
    assert float(oi["openInterest"]) == pytest.approx(sim.market.state("BTCUSDT").open_interest, rel=0.01)

    _, ticker, _ = await get(http, base + "/fapi/v1/ticker/24hr?symbol=ETHUSDT")
    assert {"symbol", "priceChangePercent", "lastPrice", "volume", "quoteVolume", "openTime", "count"} <= set(ticker)
    _, tickers, _ = await get(http, base + "/fapi/v1/ticker/24hr")
    assert isinstance(tickers, list)
    assert len(tickers) == len(info["symbols"])

    _, funding_info, _ = await get(http, base + "/fapi/v1/fundingInfo")
    intervals = {r["symbol"]: r["fundingIntervalHours"] for r in funding_info}
    assert intervals["WIFUSDT"] == 4
    assert "BTCUSDT" not in intervals
    assert all(
        set(r) == {"symbol", "adjustedFundingRateCap", "adjustedFundingRateFloor", "fundingIntervalHours", "disclaimer"}
        for r in funding_info
    )

    _, history, _ = await get(http, base + "/fapi/v1/fundingRate?symbol=WIFUSDT&limit=5")
    assert len(history) == 5
    assert all(set(r) == {"symbol", "fundingRate", "fundingTime", "markPrice"} for r in history)
    times = [r["fundingTime"] for r in history]
    assert times == sorted(times)
    assert {b - a for a, b in itertools.pairwise(times)} == {4 * HOUR_MS}

    _, oi_hist, _ = await get(http, base + "/futures/data/openInterestHist?symbol=BTCUSDT&period=1h&limit=24")
    assert len(oi_hist) == 24
    row = oi_hist[-1]
    assert {"symbol", "sumOpenInterest", "sumOpenInterestValue", "timestamp"} <= set(row)
    assert is_int(row["timestamp"])
    mark = float(row["sumOpenInterestValue"]) / float(row["sumOpenInterest"])
    assert 50_000 < mark < 150_000  # USD value = base coin × mark price
    assert {b["timestamp"] - a["timestamp"] for a, b in itertools.pairwise(oi_hist)} == {HOUR_MS}


async def test_cm_rest_reports_contracts_and_base_coin(sim: SimServer, http: aiohttp.ClientSession) -> None:
    base = sim.urls["binance_cm_rest"]
    _, info, _ = await get(http, base + "/dapi/v1/exchangeInfo")
    sizes = {s["symbol"]: s["contractSize"] for s in info["symbols"]}
    assert sizes["BTCUSD_PERP"] == 100
    assert sizes["ETHUSD_PERP"] == 10
    assert all(s["contractStatus"] == "TRADING" and "status" not in s for s in info["symbols"])
    _, oi, _ = await get(http, base + "/dapi/v1/openInterest?symbol=BTCUSD_PERP")
    assert set(oi) == {"symbol", "pair", "openInterest", "contractType", "time"}
    assert oi["pair"] == "BTCUSD"
    assert float(oi["openInterest"]).is_integer()
    _, pi, _ = await get(http, base + "/dapi/v1/premiumIndex?symbol=BTCUSD_PERP")
    assert isinstance(pi, list)
    assert pi[0]["pair"] == "BTCUSD"
    url = base + "/futures/data/openInterestHist?pair=BTCUSD&contractType=PERPETUAL&period=5m&limit=3"
    _, rows, _ = await get(http, url)
    assert len(rows) == 3
    for r in rows:
        assert set(r) == {"pair", "contractType", "sumOpenInterest", "sumOpenInterestValue", "timestamp"}
        contracts, coins = float(r["sumOpenInterest"]), float(r["sumOpenInterestValue"])
        assert contracts.is_integer()
        assert 50_000 < contracts * 100 / coins < 150_000
    _, ticker, _ = await get(http, base + "/dapi/v1/ticker/24hr?symbol=BTCUSD_PERP")
    assert isinstance(ticker, list)
    assert {"volume", "baseVolume", "pair"} <= set(ticker[0])
    dated_symbol = next(s for s in sizes if s[-1].isdigit())
    _, dated, _ = await get(http, base + f"/dapi/v1/fundingRate?symbol={dated_symbol}")
    assert dated == []


async def test_weight_header_sums_documented_weights(sim: SimServer, http: aiohttp.ClientSession) -> None:
    um, cm = sim.urls["binance_um_rest"], sim.urls["binance_cm_rest"]
    used = []
    for url in (
        um + "/fapi/v1/premiumIndex?symbol=BTCUSDT",  # 1
        um + "/fapi/v1/premiumIndex",  # 10
        um + "/fapi/v1/ticker/24hr",  # 40
        um + "/fapi/v1/fundingInfo",  # 0
        um + "/fapi/v1/exchangeInfo",  # 1
        cm + "/dapi/v1/premiumIndex",  # 10, CM counted apart
    ):
        _, _, resp = await get(http, url)
        used.append(int(resp.headers["X-MBX-USED-WEIGHT-1M"]))
    assert used == [1, 11, 51, 51, 52, 10]


async def test_unknown_symbol_is_400_invalid_symbol(sim: SimServer, http: aiohttp.ClientSession) -> None:
    for url in (
        sim.urls["binance_um_rest"] + "/fapi/v1/premiumIndex?symbol=NOPEUSDT",
        sim.urls["binance_um_rest"] + "/fapi/v1/openInterest?symbol=BTCUSD_PERP",
        sim.urls["binance_cm_rest"] + "/dapi/v1/openInterest?symbol=BTCUSDT",
    ):
        status, body, resp = await get(http, url)
        assert status == 400
        assert body == {"code": -1121, "msg": "Invalid symbol."}
        assert "X-MBX-USED-WEIGHT-1M" in resp.headers


async def test_exceeding_the_weight_limit_answers_429() -> None:
    config = BinanceConfig(weight_limit_1m=45, close_timeout_s=0.5)
    async with SimServer(seed=1, speed=SPEED, binance=config) as sim, aiohttp.ClientSession() as http:
        url = sim.urls["binance_um_rest"] + "/fapi/v1/ticker/24hr"
        assert (await get(http, url))[0] == 200
        status, body, resp = await get(http, url)
    assert status == 429
    assert body["code"] == -1003
    assert int(resp.headers["Retry-After"]) >= 1


# --------------------------------------------------------------------------------------------
# Faults
# --------------------------------------------------------------------------------------------


async def test_rest_faults_apply_in_order_then_clear(sim: SimServer, http: aiohttp.ClientSession) -> None:
    url = sim.urls["binance_um_rest"] + "/fapi/v1/premiumIndex?symbol=BTCUSDT"
    sim.faults.rest_error(429, retry_after_s=3, path="*/premiumIndex")
    sim.faults.rest_error(418, retry_after_s=120, venue="binance.um")
    sim.faults.rest_error(503)
    status, body, resp = await get(http, url)
    assert (status, body["code"], resp.headers["Retry-After"]) == (429, -1003, "3")
    status, body, resp = await get(http, url)
    assert (status, body["code"], resp.headers["Retry-After"]) == (418, -1003, "120")
    status, body, _ = await get(http, url)
    assert status == 503
    assert body["code"] < 0
    assert (await get(http, url))[0] == 200


async def test_rest_fault_matches_only_its_path_and_venue(sim: SimServer, http: aiohttp.ClientSession) -> None:
    sim.faults.rest_error(500, path="*/openInterest", venue="binance.cm")
    assert (await get(http, sim.urls["binance_um_rest"] + "/fapi/v1/openInterest?symbol=BTCUSDT"))[0] == 200
    assert (await get(http, sim.urls["binance_cm_rest"] + "/dapi/v1/exchangeInfo"))[0] == 200
    assert (await get(http, sim.urls["binance_cm_rest"] + "/dapi/v1/openInterest?symbol=BTCUSD_PERP"))[0] == 500


async def test_rest_slow_delays_the_answer(sim: SimServer, http: aiohttp.ClientSession) -> None:
    sim.faults.rest_slow(0.3)
    t0 = time.monotonic()
    status, _, _ = await get(http, sim.urls["binance_um_rest"] + "/fapi/v1/ping")
    assert status == 200
    assert time.monotonic() - t0 >= 0.3


async def test_stall_sends_no_data_but_answers_pings(sim: SimServer) -> None:
    async with connect(sim.urls["binance_um_ws"] + "/ws/btcusdt@markPrice@1s") as ws:
        await recv_json(ws)
        sim.faults.stall(0.4, venue="binance.um")
        with pytest.raises(TimeoutError):
            await recv_json(ws, wait_s=0.3)  # 6 s of market time, no frame
        pong = await ws.ping()
        await asyncio.wait_for(pong, 0.5)
        frame = await recv_json(ws, wait_s=1.0)
    assert frame["e"] == "markPriceUpdate"
    assert sim.binance.stats["stalled_frames_dropped"] > 0


@pytest.mark.parametrize("abrupt", [False, True])
async def test_drop_connections_closes_clean_or_abrupt(sim: SimServer, abrupt: bool) -> None:
    async with connect(sim.urls["binance_cm_ws"] + "/ws/btcusd_perp@markPrice@1s") as ws:
        await recv_json(ws)
        assert await sim.faults.drop_connections("binance.cm", abrupt=abrupt) == 1
        closed = await until_closed(ws)
    if abrupt:
        assert closed.rcvd is None  # no close frame: 1006
    else:
        assert closed.rcvd is not None
        assert closed.rcvd.code == 1001


@pytest.mark.parametrize("kind", ["truncated", "text", "wrong_types", "unknown_event", "binary"])
async def test_garbage_frames_are_delivered_as_asked(sim: SimServer, kind: GarbageKind) -> None:
    async with connect(sim.urls["binance_um_ws"] + "/stream?streams=btcusdt@markPrice") as ws:
        assert sim.faults.send_garbage(kind) == 1
        raw = await asyncio.wait_for(ws.recv(), 2.0)
    if kind == "binary":
        assert isinstance(raw, bytes)
        return
    assert isinstance(raw, str)
    if kind in ("truncated", "text"):
        with pytest.raises(json.JSONDecodeError):
            json.loads(raw)
    elif kind == "wrong_types":
        data = json.loads(raw)["data"]
        assert isinstance(data["E"], str)
        assert isinstance(data["p"], float)
    else:
        assert json.loads(raw)["data"]["e"] == "simUnknownEvent"


async def test_lifetime_close_with_a_close_frame() -> None:
    config = BinanceConfig(max_lifetime_s=0.3, close_timeout_s=0.5)
    async with (
        SimServer(seed=1, speed=SPEED, binance=config) as sim,
        connect(sim.urls["binance_um_ws"] + "/ws/btcusdt@markPrice@1s") as ws,
    ):
        t0 = time.monotonic()
        closed = await until_closed(ws)
        assert 0.25 < time.monotonic() - t0 < 1.5
    assert closed.rcvd is not None
    assert closed.rcvd.code == 1000


async def test_close_after_forces_close_on_live_and_new_connections(sim: SimServer) -> None:
    url = sim.urls["binance_um_ws"] + "/ws/btcusdt@markPrice@1s"
    async with connect(url) as ws:
        assert sim.faults.close_after(0.2, new_connections=True) == 1
        await until_closed(ws)
    async with connect(url) as ws:
        closed = await until_closed(ws)
    assert closed.rcvd is not None
    assert closed.rcvd.code == 1000


async def test_rejected_handshakes_then_success(sim: SimServer) -> None:
    sim.faults.reject_handshakes(503, count=2, venue="binance.um")
    url = sim.urls["binance_um_ws"] + "/ws/btcusdt@markPrice@1s"
    for _ in range(2):
        with pytest.raises(websockets.InvalidStatus) as err:
            async with connect(url):
                pass
        assert err.value.response.status_code == 503
    async with connect(url) as ws:
        assert (await recv_json(ws))["e"] == "markPriceUpdate"


async def test_server_pings_and_closes_when_no_pong_comes() -> None:
    config = BinanceConfig(ping_interval_s=0.1, pong_timeout_s=0.35, close_timeout_s=0.3)
    async with SimServer(seed=1, speed=SPEED, binance=config) as sim, aiohttp.ClientSession() as http:
        url = sim.urls["binance_um_ws"] + "/ws"
        async with http.ws_connect(url, autoping=False) as ws:
            msg = await ws.receive(timeout=1.0)
            assert msg.type == aiohttp.WSMsgType.PING
            await ws.pong(msg.data)
            t0 = time.monotonic()
            while True:  # stop answering: the server must give up after pong_timeout_s
                msg = await ws.receive(timeout=2.0)
                if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                    break
            assert time.monotonic() - t0 >= 0.3
            assert ws.close_code == 1008
        assert sim.binance.stats["pong_timeout_closes"] == 1


# --------------------------------------------------------------------------------------------
# Market, scenarios, server lifecycle
# --------------------------------------------------------------------------------------------


def test_demo_scenario_runs_to_its_timeline() -> None:
    market = Market(seed=5, start_ms=1_795_500_000_000, scenario="demo")
    t0 = market.start_ms
    sol_normal = market.state("SOLUSDT").funding_rate
    oi0 = market.state("BTCUSDT").open_interest
    market.advance_to(t0 + 25_000)
    assert market.state("SOLUSDT").funding_rate == 0.0025
    market.advance_to(t0 + 36_000)
    assert market.state("BTCUSDT").open_interest / oi0 == pytest.approx(1.2, abs=0.015)
    market.advance_to(t0 + 60_000)
    assert abs(market.state("SOLUSDT").funding_rate - sol_normal) < 0.0002
    scripted = [liq for liq in market.liquidations if liq.scripted]
    assert {liq.symbol for liq in scripted} == {"ETHUSDT"}
    assert {liq.side for liq in scripted} == {"SELL"}
    assert t0 + 8_000 <= min(liq.trade_ms for liq in scripted)
    assert max(liq.trade_ms for liq in scripted) < t0 + 18_000
    assert market.total_liquidation_usd("ETHUSDT", start_ms=t0 + 8_000, end_ms=t0 + 18_000) > 2_000_000


def test_market_is_deterministic_for_a_seed() -> None:
    a, b = (Market(seed=11, start_ms=1_795_500_000_000, scenario="cascade") for _ in range(2))
    for m in (a, b):
        m.advance_to(m.start_ms + 30_000)
    assert a.liquidations == b.liquidations
    assert a.pushed == b.pushed
    assert a.state("BTCUSDT") == b.state("BTCUSDT")
    c = Market(seed=12, start_ms=1_795_500_000_000, scenario="cascade")
    c.advance_to(c.start_ms + 30_000)
    assert c.liquidations != a.liquidations


async def test_funding_settlement_is_recorded_and_served(http: aiohttp.ClientSession) -> None:
    boundary = (1_795_500_000_000 // (4 * HOUR_MS) + 1) * 4 * HOUR_MS
    async with SimServer(seed=2, speed=SPEED, start_ms=boundary - 20_000, binance=FAST) as sim:
        before = sim.market.state("WIFUSDT").next_funding_ms
        assert before == boundary
        await eventually(lambda: sim.market.now_ms > boundary + 500)
        recorded = sim.market.funding_history["WIFUSDT"]
        assert [r.funding_ms for r in recorded] == [boundary]
        _, rows, _ = await get(http, sim.urls["binance_um_rest"] + "/fapi/v1/fundingRate?symbol=WIFUSDT&limit=1")
        assert rows[0]["fundingTime"] == boundary
        assert float(rows[0]["fundingRate"]) == pytest.approx(recorded[0].rate)
        _, pi, _ = await get(http, sim.urls["binance_um_rest"] + "/fapi/v1/premiumIndex?symbol=WIFUSDT")
        assert pi["nextFundingTime"] == boundary + 4 * HOUR_MS


async def test_stop_closes_live_connections_with_a_close_frame() -> None:
    sim = SimServer(seed=1, speed=SPEED, binance=FAST)
    await sim.start()
    async with connect(sim.urls["binance_cm_ws"] + "/ws/btcusd_perp@markPrice@1s") as ws:
        await recv_json(ws)
        stopping = asyncio.create_task(sim.stop())
        closed = await until_closed(ws)
        await stopping
    assert closed.rcvd is not None
    assert closed.rcvd.code == 1001


async def test_serve_prints_named_urls_and_returns_zero() -> None:
    out = io.StringIO()
    assert await serve(duration_s=0.1, out=out) == 0
    lines = dict(line.split(" ", 1) for line in out.getvalue().splitlines())
    assert {"binance_um_rest", "binance_um_ws", "binance_cm_rest", "binance_cm_ws"} <= set(lines)
    assert lines["binance_um_rest"].startswith("http://127.0.0.1:")


async def test_main_accepts_port_seed_and_scenario() -> None:
    assert await asyncio.to_thread(main, ["--seed", "3", "--scenario", "demo", "--duration", "0.1"]) == 0


async def test_global_long_short_account_ratio(sim: SimServer, http: aiohttp.ClientSession) -> None:
    """bn: Long/Short Ratio (globalLongShortAccountRatio): UM by symbol, CM by pair; ascending rows."""
    from streamer.sim.venues.binance import long_account_share

    um, cm = sim.urls["binance_um_rest"], sim.urls["binance_cm_rest"]
    path = "/futures/data/globalLongShortAccountRatio"
    status, rows, _ = await get(http, um + path + "?symbol=BTCUSDT&period=5m&limit=3")
    assert status == 200
    assert len(rows) == 3
    assert [r["timestamp"] for r in rows] == sorted(r["timestamp"] for r in rows)
    row = rows[-1]
    assert set(row) == {"symbol", "longShortRatio", "longAccount", "shortAccount", "timestamp"}
    share = long_account_share("BTCUSDT", row["timestamp"])
    assert float(row["longAccount"]) == pytest.approx(share)
    assert float(row["shortAccount"]) == pytest.approx(1 - share)
    assert float(row["longShortRatio"]) == pytest.approx(share / (1 - share), abs=1e-4)
    assert row["timestamp"] % 300_000 == 0
    status, rows, _ = await get(http, cm + path + "?pair=BTCUSD&period=1h&limit=2")
    assert status == 200
    assert len(rows) == 2
    assert rows[0]["pair"] == "BTCUSD"
    status, err, _ = await get(http, um + path + "?symbol=BTCUSDT")
    assert status == 400
    assert err["code"] < 0


async def test_hung_handshake_times_out_then_success(sim: SimServer) -> None:
    sim.faults.hang_handshakes(1.0, count=1, venue="binance.um")
    url = sim.urls["binance_um_ws"] + "/ws/btcusdt@markPrice@1s"
    with pytest.raises(TimeoutError):
        async with connect(url, open_timeout=0.3):
            pass
    async with connect(url) as ws:
        assert (await recv_json(ws))["e"] == "markPriceUpdate"
    assert sim.faults.stats["handshake_hang"] == 1
