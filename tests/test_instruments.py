"""Instrument metadata: fetched over REST, cached on disk, loaded from the cache when REST is down."""

from __future__ import annotations

import json

from streamer.exchanges.base import RestCall
from streamer.exchanges.binance import BinanceAdapter
from streamer.instruments import InstrumentStore

CM_INFO = json.dumps({"symbols": [{"symbol": "BTCUSD_PERP", "pair": "BTCUSD", "contractType": "PERPETUAL",
                                   "deliveryDate": 4133404800000, "contractSize": 100, "marginAsset": "BTC",
                                   "baseAsset": "BTC", "quoteAsset": "USD"}]}).encode()
CALLS = [RestCall("exchangeInfo", "/dapi/v1/exchangeInfo", market="cm")]


async def test_fetched_body_is_loaded_and_cached(tmp_path):
    store = InstrumentStore(tmp_path)
    adapter = BinanceAdapter()

    async def fetch(call):
        return CM_INFO

    report = await store.load(adapter, CALLS, fetch)
    assert (report.fetched, report.instruments) == (["cm:exchangeInfo"], 1)
    assert (tmp_path / "instruments" / "binance" / "cm_exchangeInfo.json").read_bytes() == CM_INFO
    assert adapter.instrument("BTCUSD_PERP").contract_size == 100.0


async def test_restart_with_rest_down_loads_the_cached_copy(tmp_path):
    async def ok(call):
        return CM_INFO

    async def down(call):
        raise OSError("connection refused")

    await InstrumentStore(tmp_path).load(BinanceAdapter(), CALLS, ok)
    adapter = BinanceAdapter()
    report = await InstrumentStore(tmp_path).load(adapter, CALLS, down)
    assert list(report.from_cache) == ["cm:exchangeInfo"]
    assert report.failed == {}
    assert adapter.instrument("BTCUSD_PERP").contract_size == 100.0


async def test_rest_down_and_no_cache_is_reported_not_raised(tmp_path):
    async def down(call):
        raise TimeoutError

    report = await InstrumentStore(tmp_path).load(BinanceAdapter(), CALLS, down)
    assert list(report.failed) == ["cm:exchangeInfo"]
    assert report.instruments == 0


async def test_an_error_body_does_not_replace_a_good_cache(tmp_path):
    async def ok(call):
        return CM_INFO

    async def error_body(call):
        return b'{"code":-1000,"msg":"An unknown error occured while processing the request."}'

    await InstrumentStore(tmp_path).load(BinanceAdapter(), CALLS, ok)
    adapter = BinanceAdapter()
    report = await InstrumentStore(tmp_path).load(adapter, CALLS, error_body)
    assert list(report.from_cache) == ["cm:exchangeInfo"]
    assert (tmp_path / "instruments" / "binance" / "cm_exchangeInfo.json").read_bytes() == CM_INFO
