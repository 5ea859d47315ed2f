"""The simulator's OKX v5 venue, checked with plain websockets/aiohttp clients against OKX's documented wire
formats (docs-v5; never through streamer's own adapters): acks and error events, text ping/pong, the 30 s cut,
string-typed pushes and cadences, the sampled liquidation-orders feed and its replay, REST envelopes, errors and
limits; and the scripted cascade read on Binance, Bybit and OKX at once."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
import websockets
from websockets.asyncio.client import ClientConnection, connect

from streamer.sim import Cascade, Market, OkxConfig, SimServer
from streamer.sim.faults import GarbageKind
from streamer.sim.market import HOUR_MS

SPEED = 20.0  # 1 s of market time = 50 ms of wall time
FAST = OkxConfig(close_timeout_s=0.5)
NUM = re.compile(r"^-?\d+(\.\d+)?$")


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    async with SimServer(seed=7, speed=SPEED, okx=FAST) as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def recv(ws: ClientConnection, wait_s: float = 2.0) -> Any:
    raw = await asyncio.wait_for(ws.recv(), wait_s)
    return raw if raw == "pong" else json.loads(raw)


async def recv_until(ws: ClientConnection, pred: Callable[[Any], bool], wait_s: float = 3.0) -> Any:
    deadline = time.monotonic() + wait_s
    while True:
        msg = await recv(ws, max(0.01, deadline - time.monotonic()))
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


async def subscribe(ws: ClientConnection, *args: dict[str, str], req_id: str | None = None) -> list[Any]:
    """Send one subscribe request; return the acks/errors, one per arg."""
    req: dict[str, Any] = {"op": "subscribe", "args": list(args)}
    if req_id is not None:
        req["id"] = req_id
    await ws.send(json.dumps(req))
    return [await recv_until(ws, lambda m: isinstance(m, dict) and "event" in m) for _ in args]


def pushes(channel: str) -> Callable[[Any], bool]:
    return lambda m: isinstance(m, dict) and "data" in m and m["arg"]["channel"] == channel


async def get(http: aiohttp.ClientSession, url: str) -> tuple[int, Any]:
    async with http.get(url) as resp:
        return resp.status, await resp.json(content_type=None)


def all_strings(row: dict[str, Any]) -> bool:
    return all(isinstance(v, str) for v in row.values())


def is_num(v: object) -> bool:
    return isinstance(v, str) and bool(NUM.match(v))


# --------------------------------------------------------------------------------------------
# WebSocket: requests, acks, pings, the idle cut
# --------------------------------------------------------------------------------------------


async def test_subscribe_acks_each_arg_with_event_arg_and_conn_id(sim: SimServer) -> None:
    async with connect(sim.urls["okx_ws_public"]) as ws:
        acks = await subscribe(
            ws,
            {"channel": "mark-price", "instId": "BTC-USDT-SWAP"},
            {"channel": "liquidation-orders", "instType": "SWAP"},
            req_id="req42",
        )
    for ack, arg in zip(acks, ({"channel": "mark-price", "instId": "BTC-USDT-SWAP"},
                               {"channel": "liquidation-orders", "instType": "SWAP"}), strict=True):  # fmt: skip
        assert set(ack) == {"id", "event", "arg", "connId"}
        assert (ack["id"], ack["event"], ack["arg"]) == ("req42", "subscribe", arg)
        assert re.fullmatch(r"[0-9a-f]{8}", ack["connId"])
    assert acks[0]["connId"] == acks[1]["connId"]


@pytest.mark.parametrize(
    ("request_text", "code"),
    [
        ("{not json", "60012"),
        ('{"op": "subscribe"}', "60012"),
        ('{"op": "subscribe", "args": ["tickers"]}', "60012"),
        ('{"id": "has-dash", "op": "subscribe", "args": [{"channel": "tickers", "instId": "BTC-USDT-SWAP"}]}', "60012"),
        ('{"op": "subscrib", "args": [{"channel": "tickers", "instId": "BTC-USDT-SWAP"}]}', "60019"),
        ('{"op": "subscribe", "args": [{"channel": "trades-all", "instId": "BTC-USDT-SWAP"}]}', "60018"),
        ('{"op": "subscribe", "args": [{"channel": "tickers", "instId": "NOPE-USDT-SWAP"}]}', "60018"),
        ('{"op": "subscribe", "args": [{"channel": "tickers"}]}', "60018"),
        ('{"op": "subscribe", "args": [{"channel": "funding-rate", "instId": "BTC-USD-SWAPX"}]}', "60018"),
        ('{"op": "subscribe", "args": [{"channel": "liquidation-orders", "instType": "SPOT"}]}', "60018"),
    ],
)
async def test_bad_requests_get_error_events(sim: SimServer, request_text: str, code: str) -> None:
    async with connect(sim.urls["okx_ws_public"]) as ws:
        await ws.send(request_text)
        reply = await recv(ws)
    assert reply["event"] == "error"
    assert reply["code"] == code
    assert isinstance(reply["msg"], str)
    assert reply["msg"]
    assert "connId" in reply


async def test_funding_rate_is_for_swaps_only(sim: SimServer) -> None:
    future = next(s for s, c in sim.market.okx.contracts.items() if c.kind == "future")
    async with connect(sim.urls["okx_ws_public"]) as ws:
        [error, ok] = await subscribe(
            ws, {"channel": "funding-rate", "instId": future}, {"channel": "mark-price", "instId": future}
        )
    assert (error["event"], error["code"]) == ("error", "60018")
    assert ok["event"] == "subscribe"


async def test_text_ping_gets_text_pong(sim: SimServer) -> None:
    async with connect(sim.urls["okx_ws_public"]) as ws:
        await ws.send("ping")
        assert await asyncio.wait_for(ws.recv(), 1.0) == "pong"


async def test_connection_without_subscription_is_closed_with_4004() -> None:
    config = OkxConfig(idle_timeout_s=0.3, close_timeout_s=0.3)
    async with SimServer(seed=1, speed=SPEED, okx=config) as sim:
        async with connect(sim.urls["okx_ws_public"]) as ws:
            t0 = time.monotonic()
            for _ in range(2):  # pings do not stand in for a subscription
                await ws.send("ping")
                await asyncio.sleep(0.05)
            closed = await until_closed(ws)
            assert 0.25 < time.monotonic() - t0 < 1.5
        assert closed.rcvd is not None
        assert closed.rcvd.code == 4004
        # subscribed to a channel that never pushes: alive while the client pings, cut when it stops
        async with connect(sim.urls["okx_ws_public"]) as ws:
            await subscribe(ws, {"channel": "liquidation-orders", "instType": "OPTION"})
            for _ in range(6):
                await ws.send("ping")
                assert await recv(ws) == "pong"
                await asyncio.sleep(0.1)
            closed = await until_closed(ws)
        assert closed.rcvd is not None
        assert closed.rcvd.code == 4004


async def test_unsubscribe_is_acked_and_stops_pushes(sim: SimServer) -> None:
    arg = {"channel": "tickers", "instId": "ETH-USDT-SWAP"}
    async with connect(sim.urls["okx_ws_public"]) as ws:
        await subscribe(ws, arg)
        await recv_until(ws, pushes("tickers"))
        await ws.send(json.dumps({"id": "u1", "op": "unsubscribe", "args": [arg]}))
        ack = await recv_until(ws, lambda m: "event" in m)
        assert ack == {"id": "u1", "event": "unsubscribe", "arg": arg, "connId": ack["connId"]}
        with pytest.raises(TimeoutError):
            await recv_until(ws, pushes("tickers"), wait_s=0.3)


# --------------------------------------------------------------------------------------------
# WebSocket: channels
# --------------------------------------------------------------------------------------------


async def test_pushes_carry_arg_and_data_with_string_numbers(sim: SimServer) -> None:
    option = next(s for s, c in sim.market.okx.contracts.items() if c.option)
    args = [
        {"channel": "tickers", "instId": "BTC-USDT-SWAP"},
        {"channel": "mark-price", "instId": option},
        {"channel": "open-interest", "instId": "BTC-USD-SWAP"},
        {"channel": "index-tickers", "instId": "BTC-USDT"},
        {"channel": "funding-rate", "instId": "ETH-USDT-SWAP"},
        {"channel": "opt-summary", "instFamily": "BTC-USD"},
    ]
    first: dict[str, dict[str, Any]] = {}
    async with connect(sim.urls["okx_ws_public"]) as ws:
        await ws.send(json.dumps({"op": "subscribe", "args": args}))
        while len(first) < len(args):
            msg = await recv(ws)
            if "data" in msg:
                first.setdefault(msg["arg"]["channel"], msg)
            else:
                assert msg["event"] == "subscribe"
    for arg in args:
        msg = first[arg["channel"]]
        assert set(msg) == {"arg", "data"}
        assert msg["arg"] == arg
        assert isinstance(msg["data"], list)
        for row in msg["data"]:
            assert all_strings(row)
            assert row["ts"].isdigit()
    ticker = first["tickers"]["data"][0]
    assert set(ticker) == {
        "instType", "instId", "last", "lastSz", "askPx", "askSz", "bidPx", "bidSz", "open24h", "high24h", "low24h",
        "volCcy24h", "vol24h", "sodUtc0", "sodUtc8", "ts",
    }  # fmt: skip
    assert float(ticker["volCcy24h"]) == pytest.approx(float(ticker["vol24h"]) * 0.01, rel=1e-4)  # ctVal 0.01 BTC
    oi = first["open-interest"]["data"][0]
    assert set(oi) == {"instType", "instId", "oi", "oiCcy", "oiUsd", "ts"}
    assert float(oi["oiUsd"]) == pytest.approx(float(oi["oi"]) * 100)  # inverse: 100 USD contracts
    assert set(first["index-tickers"]["data"][0]) == {
        "instId", "idxPx", "open24h", "high24h", "low24h", "sodUtc0", "sodUtc8", "ts",
    }  # fmt: skip
    funding = first["funding-rate"]["data"][0]
    assert int(funding["nextFundingTime"]) - int(funding["fundingTime"]) == 8 * HOUR_MS
    assert int(funding["fundingTime"]) % (8 * HOUR_MS) == 0
    assert int(funding["fundingTime"]) > sim.market.now_ms - 1000
    assert {"fundingRate", "settFundingRate", "settState", "method", "premium"} <= set(funding)
    summary = first["opt-summary"]["data"]
    assert len(summary) == 18  # 3 expiries x 3 strikes x C/P
    for row in summary:
        assert 0.05 < float(row["markVol"]) < 3  # fractions
        assert {"deltaBS", "gammaBS", "vegaBS", "thetaBS", "fwdPx", "volLv", "uly"} <= set(row)
        assert all(is_num(v) for k, v in row.items() if k not in ("instType", "instId", "uly", "realVol"))
    assert 0 < float(first["mark-price"]["data"][0]["markPx"]) < 1  # options are priced in BTC


async def test_funding_rate_pushes_every_30_to_90_seconds_scaled() -> None:
    config = OkxConfig(funding_push_ms=(3_000, 9_000), close_timeout_s=0.5)
    async with SimServer(seed=2, speed=SPEED * 2, okx=config) as sim, connect(sim.urls["okx_ws_public"]) as ws:
        await subscribe(ws, {"channel": "funding-rate", "instId": "BTC-USDT-SWAP"})
        stamps = [int((await recv_until(ws, pushes("funding-rate")))["data"][0]["ts"]) for _ in range(4)]
    gaps = [b - a for a, b in itertools.pairwise(stamps[1:])]  # the first push answers the subscription
    assert all(3_000 <= g <= 9_000 for g in gaps)


async def test_mark_price_and_open_interest_cadences(sim: SimServer) -> None:
    async with connect(sim.urls["okx_ws_public"]) as ws:
        await subscribe(
            ws,
            {"channel": "mark-price", "instId": "SOL-USDT-SWAP"},
            {"channel": "open-interest", "instId": "SOL-USDT-SWAP"},
        )
        marks: list[int] = []
        ois: list[int] = []
        while len(ois) < 4:
            msg = await recv_until(ws, lambda m: "data" in m)
            (marks if msg["arg"]["channel"] == "mark-price" else ois).append(int(msg["data"][0]["ts"]))
    assert all((b - a) % 200 == 0 and b > a for a, b in itertools.pairwise(marks[1:]))
    assert all((b - a) % 3_000 == 0 and b > a for a, b in itertools.pairwise(ois[1:]))


# --------------------------------------------------------------------------------------------
# WebSocket: liquidation-orders
# --------------------------------------------------------------------------------------------


async def test_liquidation_orders_are_sampled_one_per_contract_per_second() -> None:
    config = OkxConfig(replay_liquidations=False, close_timeout_s=0.5)
    async with SimServer(seed=3, speed=SPEED, okx=config) as sim, connect(sim.urls["okx_ws_public"]) as ws:
        market, book = sim.market, sim.market.okx
        await subscribe(ws, {"channel": "liquidation-orders", "instType": "SWAP"})
        subscribed_ms = market.now_ms
        cascade = Cascade("ETH-USDT-SWAP", venue="okx", start_s=market.elapsed_s + 0.5, duration_s=6.0)
        market.schedule(cascade)
        start_ms = market.start_ms + int(cascade.start_s * 1000)
        end_ms = market.start_ms + int(cascade.end_s * 1000)
        frames: list[dict[str, Any]] = []
        while market.now_ms < end_ms + 1500:
            frames.append(await recv_until(ws, pushes("liquidation-orders")))
    details: list[tuple[str, dict[str, str]]] = []
    for frame in frames:
        assert frame["arg"] == {"channel": "liquidation-orders", "instType": "SWAP"}
        for item in frame["data"]:
            assert set(item) == {"instType", "instId", "instFamily", "uly", "details"}
            assert item["instType"] == "SWAP"
            assert item["instFamily"] == item["uly"] == item["instId"].removesuffix("-SWAP")
            for d in item["details"]:
                assert set(d) == {"side", "posSide", "bkPx", "sz", "bkLoss", "ccy", "ts"}
                assert all_strings(d)
                assert d["side"] in ("buy", "sell")
                assert d["posSide"] in ("long", "short", "net")
                if d["posSide"] != "net":
                    assert (d["side"], d["posSide"]) in (("sell", "long"), ("buy", "short"))
                details.append((item["instId"], d))
    assert all(int(d["ts"]) >= subscribed_ms - 1000 for _, d in details)  # no replay
    per_second = Counter((inst, int(d["ts"]) // 1000) for inst, d in details)
    assert max(per_second.values()) == 1
    eth = [d for inst, d in details if inst == "ETH-USDT-SWAP" and start_ms <= int(d["ts"]) < end_ms]
    assert len(eth) >= 5
    client_usd = sum(float(d["sz"]) * 0.1 * float(d["bkPx"]) for d in eth)  # ctVal 0.1 ETH
    assert client_usd == pytest.approx(book.total_liquidation_usd("ETH-USDT-SWAP", start_ms=start_ms, end_ms=end_ms))
    generated = book.total_liquidation_usd("ETH-USDT-SWAP", pushed_only=False, start_ms=start_ms, end_ms=end_ms)
    assert generated > client_usd  # "not the total"
    assert {"net", "long"} <= {d["posSide"] for d in eth}


async def test_first_liquidation_push_replays_recent_orders(sim: SimServer) -> None:
    async with connect(sim.urls["okx_ws_public"]) as ws:
        await subscribe(ws, {"channel": "liquidation-orders", "instType": "SWAP"})
        subscribed_ms = sim.market.now_ms
        replay = await recv_until(ws, pushes("liquidation-orders"), wait_s=0.5)
    stamps = [int(d["ts"]) for item in replay["data"] for d in item["details"]]
    assert len(stamps) > 1
    assert min(stamps) < sim.market.start_ms  # orders from before anyone subscribed
    assert max(stamps) <= subscribed_ms
    assert sim.okx.stats["liquidation_replays"] == 1


# --------------------------------------------------------------------------------------------
# REST
# --------------------------------------------------------------------------------------------


async def test_instruments_report_contract_values_and_types(sim: SimServer, http: aiohttp.ClientSession) -> None:
    base = sim.urls["okx_rest"] + "/api/v5/public/instruments"
    status, body = await get(http, base + "?instType=SWAP")
    assert status == 200
    assert set(body) == {"code", "msg", "data"}
    assert (body["code"], body["msg"]) == ("0", "")
    rows = {r["instId"]: r for r in body["data"]}
    assert {k: (r["ctVal"], r["ctValCcy"], r["ctType"]) for k, r in rows.items()} == {
        "BTC-USDT-SWAP": ("0.01", "BTC", "linear"),
        "ETH-USDT-SWAP": ("0.1", "ETH", "linear"),
        "SOL-USDT-SWAP": ("1", "SOL", "linear"),
        "BTC-USD-SWAP": ("100", "USD", "inverse"),
    }
    assert all(r["ctMult"] == "1" and r["expTime"] == "" and r["state"] == "live" for r in rows.values())
    _, futures = await get(http, base + "?instType=FUTURES")
    [future] = futures["data"]
    assert (future["ctType"], future["alias"], future["instFamily"]) == ("inverse", "quarter", "BTC-USD")
    assert int(future["expTime"]) > sim.market.now_ms
    status, missing = await get(http, base + "?instType=OPTION")
    assert (status, missing["code"]) == (400, "50014")
    _, options = await get(http, base + "?instType=OPTION&instFamily=BTC-USD")
    assert len(options["data"]) == 18  # 3 expiries x 3 strikes x C/P
    kinds = {(r["optType"], r["ctValCcy"], r["settleCcy"]) for r in options["data"]}
    assert kinds == {("C", "BTC", "BTC"), ("P", "BTC", "BTC")}
    _, by_uly = await get(http, base + "?instType=OPTION&uly=BTC-USD")
    assert by_uly["data"] == options["data"]
    status, unknown = await get(http, base + "?instType=SWAP&instId=NOPE-USDT-SWAP")
    assert (status, unknown["code"], unknown["data"]) == (200, "51001", [])


async def test_funding_rest_current_and_history(sim: SimServer, http: aiohttp.ClientSession) -> None:
    base = sim.urls["okx_rest"] + "/api/v5/public"
    _, current = await get(http, base + "/funding-rate?instId=BTC-USDT-SWAP")
    [row] = current["data"]
    assert all_strings(row)
    assert float(row["fundingRate"]) == pytest.approx(sim.market.okx.state("BTC-USDT-SWAP").funding_rate, abs=1e-6)
    _, every = await get(http, base + "/funding-rate?instId=ANY")
    assert {r["instId"] for r in every["data"]} == {"BTC-USDT-SWAP", "ETH-USDT-SWAP", "SOL-USDT-SWAP", "BTC-USD-SWAP"}
    _, history = await get(http, base + "/funding-rate-history?instId=BTC-USD-SWAP&limit=3")
    stamps = [int(r["fundingTime"]) for r in history["data"]]
    assert len(stamps) == 3
    assert {a - b for a, b in itertools.pairwise(stamps)} == {8 * HOUR_MS}
    assert all({"fundingRate", "realizedRate", "method", "formulaType"} <= set(r) for r in history["data"])
    _, older = await get(http, base + f"/funding-rate-history?instId=BTC-USD-SWAP&limit=2&after={stamps[-1]}")
    assert [int(r["fundingTime"]) for r in older["data"]] == [stamps[-1] - 8 * HOUR_MS, stamps[-1] - 16 * HOUR_MS]
    future = next(s for s, c in sim.market.okx.contracts.items() if c.kind == "future")
    for url in (f"/funding-rate?instId={future}", "/funding-rate?instId=NOPE-SWAP"):
        status, body = await get(http, base + url)
        assert (status, body["code"]) == (200, "51001")


async def test_market_data_rest_endpoints(sim: SimServer, http: aiohttp.ClientSession) -> None:
    base = sim.urls["okx_rest"] + "/api/v5"
    _, oi = await get(http, base + "/public/open-interest?instType=SWAP&instId=ETH-USDT-SWAP")
    [row] = oi["data"]
    assert float(row["oiCcy"]) == pytest.approx(float(row["oi"]) * 0.1, rel=1e-6)
    _, option_oi = await get(http, base + "/public/open-interest?instType=OPTION&instFamily=BTC-USD")
    assert len(option_oi["data"]) == 18
    _, marks = await get(http, base + "/public/mark-price?instType=SWAP")
    assert {r["instId"] for r in marks["data"]} >= {"BTC-USDT-SWAP", "BTC-USD-SWAP"}
    _, indexes = await get(http, base + "/market/index-tickers?quoteCcy=USDT")
    assert {r["instId"] for r in indexes["data"]} == {"BTC-USDT", "ETH-USDT", "SOL-USDT"}
    _, btc_usd = await get(http, base + "/market/index-tickers?instId=BTC-USD")
    status, neither = await get(http, base + "/market/index-tickers")
    assert (status, neither["code"]) == (400, "50015")
    btc_usdt = next(r for r in indexes["data"] if r["instId"] == "BTC-USDT")
    # the same walk, each index its own basis: close but not identical
    assert float(btc_usd["data"][0]["idxPx"]) == pytest.approx(float(btc_usdt["idxPx"]), rel=1e-3)
    _, tickers = await get(http, base + "/market/tickers?instType=SWAP&instFamily=BTC-USD")
    assert [r["instId"] for r in tickers["data"]] == ["BTC-USD-SWAP"]
    _, ticker = await get(http, base + "/market/ticker?instId=SOL-USDT-SWAP")
    assert ticker["data"][0]["instId"] == "SOL-USDT-SWAP"
    _, summary = await get(http, base + "/public/opt-summary?instFamily=BTC-USD")
    assert len(summary["data"]) == 18
    status, no_family = await get(http, base + "/public/opt-summary")
    assert (status, no_family["code"]) == (400, "50014")
    url = base + "/rubik/stat/contracts/open-interest-history?instId=BTC-USDT-SWAP&period=1H&limit=5"
    _, hist = await get(http, url)
    rows = hist["data"]
    assert len(rows) == 5
    assert all(isinstance(r, list) and len(r) == 4 and all(is_num(v) for v in r) for r in rows)
    stamps = [int(r[0]) for r in rows]
    assert {a - b for a, b in itertools.pairwise(stamps)} == {HOUR_MS}  # newest first
    _, oi_contracts, oi_ccy, oi_usd = (float(v) for v in rows[0])
    assert oi_ccy == pytest.approx(oi_contracts * 0.01, rel=1e-6)
    assert 50_000 < oi_usd / oi_ccy < 150_000


async def test_liquidation_orders_rest(sim: SimServer, http: aiohttp.ClientSession) -> None:
    base = sim.urls["okx_rest"] + "/api/v5/public/liquidation-orders"
    status, missing = await get(http, base + "?instType=SWAP")
    assert (status, missing["code"]) == (400, "50015")
    _, body = await get(http, base + "?instType=SWAP&instFamily=BTC-USDT&state=filled&limit=5")
    [item] = body["data"]
    assert item["instId"] == "BTC-USDT-SWAP"
    assert {"instType", "instFamily", "uly", "totalLoss", "details"} <= set(item)
    stamps = [int(d["ts"]) for d in item["details"]]
    assert len(stamps) == 5
    assert stamps == sorted(stamps, reverse=True)
    _, older = await get(http, base + f"?instType=SWAP&uly=BTC-USDT&after={stamps[-1]}&limit=2")
    assert all(int(d["ts"]) < stamps[-1] for d in older["data"][0]["details"])
    _, unfilled = await get(http, base + "?instType=SWAP&instFamily=BTC-USDT&state=unfilled")
    assert unfilled["data"] == []


async def test_rest_rate_limit_is_429_50011_and_faults_render_okx_shapes(
    sim: SimServer, http: aiohttp.ClientSession
) -> None:
    url = sim.urls["okx_rest"] + "/api/v5/public/funding-rate?instId=SOL-USDT-SWAP"
    statuses = [(await get(http, url))[0] for _ in range(10)]
    status, body = await get(http, url)
    assert statuses == [200] * 10
    assert (status, body) == (429, {"code": "50011", "msg": "Too Many Requests", "data": []})
    other = sim.urls["okx_rest"] + "/api/v5/public/funding-rate?instId=ETH-USDT-SWAP"
    assert (await get(http, other))[0] == 200  # the rule is IP + instrument
    sim.faults.rest_error(200, code=50011, venue="okx")
    sim.faults.rest_error(503, venue="okx.rest", path="*/funding-rate")
    sim.faults.rest_error(429, retry_after_s=2, venue="okx")
    status, body = await get(http, other)
    assert (status, body["code"], body["data"]) == (200, "50011", [])
    assert body["msg"].startswith("Rate limit reached")
    assert (await get(http, other))[1]["code"] == "50001"
    async with http.get(other) as resp:
        assert (resp.status, resp.headers["Retry-After"]) == (429, "2")
    assert (await get(http, other))[1]["code"] == "0"


# --------------------------------------------------------------------------------------------
# Faults
# --------------------------------------------------------------------------------------------


async def test_stall_withholds_pushes_but_answers_ping(sim: SimServer) -> None:
    async with connect(sim.urls["okx_ws_public"]) as ws:
        await subscribe(ws, {"channel": "tickers", "instId": "BTC-USDT-SWAP"})
        await recv_until(ws, pushes("tickers"))
        sim.faults.stall(0.8, venue="okx.public")
        await ws.send("ping")
        # pushes already in flight when the stall began may still arrive before the pong
        frames = [await recv(ws) for _ in range(1)]
        while frames[-1] != "pong":
            assert len(frames) < 10, frames
            frames.append(await recv(ws))
        with pytest.raises(TimeoutError):
            await recv(ws, wait_s=0.25)
        assert (await recv(ws, wait_s=1.5))["arg"]["channel"] == "tickers"


@pytest.mark.parametrize("kind", ["truncated", "text", "wrong_types", "unknown_event", "binary"])
async def test_garbage_frames_are_delivered_as_asked(sim: SimServer, kind: GarbageKind) -> None:
    async with connect(sim.urls["okx_ws_public"]) as ws:
        await subscribe(ws, {"channel": "liquidation-orders", "instType": "OPTION"})
        assert sim.faults.send_garbage(kind, venue="okx") == 1
        raw = await asyncio.wait_for(ws.recv(), 2.0)
    if kind == "binary":
        assert isinstance(raw, bytes)
    elif kind in ("truncated", "text"):
        with pytest.raises(json.JSONDecodeError):
            json.loads(raw)
    elif kind == "wrong_types":
        row = json.loads(raw)["data"][0]
        assert isinstance(row["markPx"], float)
        assert isinstance(row["ts"], int)
    else:
        assert json.loads(raw)["arg"]["channel"] == "sim-unknown-channel"


async def test_drop_close_after_and_rejected_handshakes(sim: SimServer) -> None:
    url = sim.urls["okx_ws_public"]
    async with connect(url) as ws:
        await subscribe(ws, {"channel": "mark-price", "instId": "BTC-USDT-SWAP"})
        assert await sim.faults.drop_connections("okx.public", code=1012) == 1
        closed = await until_closed(ws)
    assert closed.rcvd is not None
    assert closed.rcvd.code == 1012
    sim.faults.reject_handshakes(429, count=1, venue="okx", retry_after_s=1)
    with pytest.raises(websockets.InvalidStatus) as err:
        async with connect(url):
            pass
    assert err.value.response.status_code == 429
    async with connect(url) as ws:
        await subscribe(ws, {"channel": "mark-price", "instId": "BTC-USDT-SWAP"})
        assert sim.faults.close_after(0.2, "okx.public") == 1
        closed = await until_closed(ws)
    assert closed.rcvd is not None


# --------------------------------------------------------------------------------------------
# Three venues, one cascade
# --------------------------------------------------------------------------------------------


def test_demo_cascade_liquidates_eth_on_three_venues() -> None:
    market = Market(seed=5, start_ms=1_795_500_000_000, scenario="demo")
    market.advance_to(market.start_ms + 20_000)
    lo, hi = market.start_ms + 8_000, market.start_ms + 18_000
    binance = sum(liq.value_usd for liq in market.liquidations if liq.scripted)
    bybit = sum(liq.value_usd for liq in market.bybit.liquidations if liq.scripted)
    okx = sum(liq.value_usd for liq in market.okx.liquidations if liq.scripted)
    assert {liq.symbol for liq in market.bybit.liquidations if liq.scripted} == {"ETHUSDT"}
    assert {liq.symbol for liq in market.okx.liquidations if liq.scripted} == {"ETH-USDT-SWAP"}
    for book in (market.bybit, market.okx):
        scripted = [liq for liq in book.liquidations if liq.scripted]
        assert {liq.side for liq in scripted} == {"SELL"}
        assert all(lo <= liq.trade_ms < hi for liq in scripted)
    total = binance + bybit + okx
    assert binance / total == pytest.approx(0.5, abs=0.1)
    assert bybit / total == pytest.approx(0.3, abs=0.1)
    assert okx / total == pytest.approx(0.2, abs=0.08)


async def test_cascade_scenario_read_on_three_venues_totals_the_market_record() -> None:
    async with SimServer(seed=4, scenario="cascade", speed=SPEED, okx=OkxConfig(replay_liquidations=False)) as sim:
        market = sim.market
        binance_ws = await connect(sim.urls["binance_um_ws"] + "/ws/ethusdt@forceOrder")
        bybit_ws = await connect(sim.urls["bybit_ws_linear"])
        okx_ws = await connect(sim.urls["okx_ws_public"])
        await bybit_ws.send(json.dumps({"op": "subscribe", "args": ["allLiquidation.ETHUSDT"]}))
        await subscribe(okx_ws, {"channel": "liquidation-orders", "instType": "SWAP"})
        cascade = market.scenario.effects[0]
        assert isinstance(cascade, Cascade)
        start_ms = market.start_ms + int(cascade.start_s * 1000)
        end_ms = market.start_ms + int(cascade.end_s * 1000)
        read: dict[str, list[tuple[int, float]]] = {"binance": [], "bybit": [], "okx": []}

        async def collect(name: str, ws: ClientConnection) -> None:
            while market.now_ms < end_ms + 2_000:
                try:
                    msg = json.loads(await asyncio.wait_for(ws.recv(), 0.5))
                except TimeoutError:
                    continue
                if name == "binance":
                    o = msg["o"]
                    read[name].append((o["T"], float(o["z"]) * float(o["ap"])))
                elif name == "bybit" and "topic" in msg:
                    read[name] += [(i["T"], float(i["v"]) * float(i["p"])) for i in msg["data"]]
                elif name == "okx" and "data" in msg:
                    read[name] += [
                        (int(d["ts"]), float(d["sz"]) * 0.1 * float(d["bkPx"]))
                        for item in msg["data"]
                        if item["instId"] == "ETH-USDT-SWAP"
                        for d in item["details"]
                    ]

        try:
            await asyncio.gather(collect("binance", binance_ws), collect("bybit", bybit_ws), collect("okx", okx_ws))
        finally:
            for ws in (binance_ws, bybit_ws, okx_ws):
                await ws.close()
    client = {name: sum(usd for ts, usd in rows if start_ms <= ts < end_ms) for name, rows in read.items()}
    record = {
        "binance": market.total_liquidation_usd("ETHUSDT", start_ms=start_ms, end_ms=end_ms),
        "bybit": market.bybit.total_liquidation_usd("ETHUSDT", start_ms=start_ms, end_ms=end_ms),
        "okx": market.okx.total_liquidation_usd("ETH-USDT-SWAP", start_ms=start_ms, end_ms=end_ms),
    }
    for name in read:
        assert client[name] == pytest.approx(record[name], rel=1e-9), name
        assert client[name] > 500_000
    # Bybit's feed is complete; Binance and OKX publish a sample of what was liquidated
    generated_bybit = market.bybit.total_liquidation_usd("ETHUSDT", pushed_only=False, start_ms=start_ms, end_ms=end_ms)
    assert record["bybit"] == pytest.approx(generated_bybit)
    window = {"start_ms": start_ms, "end_ms": end_ms}
    generated_okx = market.okx.total_liquidation_usd("ETH-USDT-SWAP", pushed_only=False, **window)
    assert generated_okx > record["okx"]


async def test_long_short_account_ratio(sim: SimServer) -> None:
    """okx:stat "Get long/short ratio": positional [ts, ratio] rows, newest first; ccy required."""
    from streamer.sim.venues.okx import long_account_share

    base = sim.urls["okx_rest"] + "/api/v5/rubik/stat/contracts/long-short-account-ratio"
    async with aiohttp.ClientSession() as http:
        status, body = await get(http, base + "?ccy=BTC&period=1H")
        assert status == 200
        assert body["code"] == "0"
        rows = body["data"]
        assert len(rows) >= 24
        assert int(rows[0][0]) > int(rows[1][0])
        ts, ratio = int(rows[0][0]), float(rows[0][1])
        share = long_account_share("BTC", ts)
        assert ratio == pytest.approx(share / (1 - share), abs=1e-4)
        _, body = await get(http, base)
        assert body["code"] != "0"  # ccy is required


async def test_hung_handshake_times_out_on_the_client_then_the_next_upgrade_succeeds(sim: SimServer) -> None:
    url = sim.urls["okx_ws_public"]
    sim.faults.hang_handshakes(1.0, count=1, venue="okx")
    with pytest.raises(TimeoutError):
        async with connect(url, open_timeout=0.3):
            pass
    async with connect(url, open_timeout=2) as ws:  # the hang was used up
        await subscribe(ws, {"channel": "mark-price", "instId": "BTC-USDT-SWAP"})
    assert sim.faults.stats["handshake_hang"] == 1
    with pytest.raises(ValueError, match=r"seconds \(0\) must be > 0"):
        sim.faults.hang_handshakes(0)
