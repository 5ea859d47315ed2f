"""Bybit adapter: behaviours named one by one (sides, units, merge state, intervals, envelopes, garbage).

Frames and bodies are Bybit's own documentation examples (repository bybit-exchange/docs,
docs/v5/...), changed only where a test needs another value; the changes are named.
Bybit documents no ticker ``delta`` example: deltas here keep the snapshot example's
envelope and carry only changed keys, as ticker.mdx describes.
"""

from __future__ import annotations

import copy
import json
import math

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamer.exchanges.base import FrameError, Stream
from streamer.exchanges.bybit import BybitAdapter, instrument_from_name, market_from_name
from streamer.model import Funding, Liquidation, OpenInterest, OptionTicker, Ticker

RECV = 1_767_225_600_123

# --------------------------------------------------------------------------- documentation examples

# docs/v5/websocket/public/all-liquidation.mdx
ALL_LIQ = {"topic": "allLiquidation.ROSEUSDT", "type": "snapshot", "ts": 1739502303204,
           "data": [{"T": 1739502302929, "s": "ROSEUSDT", "S": "Sell", "v": "20000", "p": "0.04499"}]}

# docs/v5/websocket/public/liquidation.mdx at 1190f5447 (deprecated topic)
OLD_LIQ = {"topic": "liquidation.BTCUSDT", "type": "snapshot", "ts": 1703485237953,
           "data": {"updatedTime": 1703485237953, "symbol": "BTCUSDT", "side": "Sell", "size": "0.003",
                    "price": "43511.70"}}

# docs/v5/websocket/public/ticker.mdx, LinearPerpetual
SNAPSHOT = {
    "topic": "tickers.BTCUSDT", "type": "snapshot",
    "data": {"symbol": "BTCUSDT", "tickDirection": "MinusTick", "price24hPcnt": "-0.158315", "lastPrice": "66666.60",
             "prevPrice24h": "79206.20", "highPrice24h": "79266.30", "lowPrice24h": "65076.90",
             "prevPrice1h": "66666.60", "markPrice": "66666.60", "indexPrice": "115418.19",
             "openInterest": "492373.72", "openInterestValue": "32824881841.75", "turnover24h": "4936790807.6521",
             "volume24h": "73191.3870", "fundingIntervalHour": "8", "fundingCap": "0.005",
             "nextFundingTime": "1760342400000", "fundingRate": "-0.005", "bid1Price": "66666.60",
             "bid1Size": "23789.165", "ask1Price": "66666.70", "ask1Size": "23775.469", "preOpenPrice": "",
             "preQty": "", "curPreListingPhase": ""},
    "cs": 9532239429, "ts": 1760325052630,
}

# ticker.mdx, LinearFutures
FUTURES_SNAPSHOT = {
    "topic": "tickers.BTC-26DEC25", "type": "snapshot",
    "data": {"symbol": "BTC-26DEC25", "tickDirection": "ZeroMinusTick", "price24hPcnt": "0", "lastPrice": "109401.50",
             "prevPrice24h": "109401.50", "highPrice24h": "109401.50", "lowPrice24h": "109401.50",
             "prevPrice1h": "109401.50", "markPrice": "121144.63", "indexPrice": "114132.51", "openInterest": "6.622",
             "openInterestValue": "802219.74", "turnover24h": "0.0000", "volume24h": "0.0000",
             "deliveryTime": "2025-12-26T08:00:00Z", "basisRate": "0.06129209", "deliveryFeeRate": "0",
             "predictedDeliveryPrice": "0.00", "basis": "-4730.84", "basisRateYear": "0.30655351",
             "nextFundingTime": "", "fundingRate": "", "bid1Price": "111254.50", "bid1Size": "0.176",
             "ask1Price": "131001.00", "ask1Size": "0.580"},
    "cs": 31337927919, "ts": 1760409119857,
}

# ticker.mdx, Option
OPTION = {
    "id": "tickers.BTC-6JAN23-17500-C-2480334983-1672917511074", "topic": "tickers.BTC-6JAN23-17500-C",
    "ts": 1672917511074,
    "data": {"symbol": "BTC-6JAN23-17500-C", "bidPrice": "0", "bidSize": "0", "bidIv": "0", "askPrice": "10",
             "askSize": "5.1", "askIv": "0.514", "lastPrice": "10", "highPrice24h": "25", "lowPrice24h": "5",
             "markPrice": "7.86976724", "indexPrice": "16823.73", "markPriceIv": "0.4896",
             "underlyingPrice": "16815.1", "openInterest": "49.85", "turnover24h": "446802.8473",
             "volume24h": "26.55", "totalVolume": "86", "totalTurnover": "1437431", "delta": "0.047831",
             "gamma": "0.00021453", "vega": "0.81351067", "theta": "-19.9115368", "predictedDeliveryPrice": "0",
             "change24h": "-0.33333334"},
    "type": "snapshot",
}

# docs/v5/market/tickers.mdx, Inverse
REST_INVERSE_TICKERS = {
    "retCode": 0, "retMsg": "OK",
    "result": {"category": "inverse", "list": [
        {"symbol": "BTCUSD", "lastPrice": "120635.50", "indexPrice": "114890.92", "markPrice": "114898.43",
         "prevPrice24h": "105595.90", "price24hPcnt": "0.142425", "highPrice24h": "131309.30",
         "lowPrice24h": "102007.60", "prevPrice1h": "119806.10", "openInterest": "240113967",
         "openInterestValue": "2089.79", "turnover24h": "115.6907", "volume24h": "13713832.0000",
         "fundingRate": "0.0001", "nextFundingTime": "1760371200000", "predictedDeliveryPrice": "",
         "basisRate": "", "deliveryFeeRate": "", "deliveryTime": "0", "ask1Size": "9854", "bid1Price": "103401.00",
         "ask1Price": "109152.80", "bid1Size": "1063", "basis": "", "preOpenPrice": "", "preQty": "",
         "curPreListingPhase": "", "fundingIntervalHour": "8", "basisRateYear": "", "fundingCap": "0.005"}]},
    "retExtInfo": {}, "time": 1760352369814,
}

# tickers.mdx, Option
REST_OPTION_TICKERS = {
    "retCode": 0, "retMsg": "OK",
    "result": {"category": "option", "list": [
        {"symbol": "BTC-30DEC22-18000-C", "bid1Price": "0", "bid1Size": "0", "bid1Iv": "0", "ask1Price": "435",
         "ask1Size": "0.66", "ask1Iv": "5", "lastPrice": "435", "highPrice24h": "435", "lowPrice24h": "165",
         "markPrice": "0.00000009", "indexPrice": "16600.55", "markIv": "0.7567", "underlyingPrice": "16590.42",
         "openInterest": "6.3", "turnover24h": "2482.73", "volume24h": "0.15", "totalVolume": "99",
         "totalTurnover": "1967653", "delta": "0.00000001", "gamma": "0.00000001", "vega": "0.00000004",
         "theta": "-0.00000152", "predictedDeliveryPrice": "0", "change24h": "86"}]},
    "retExtInfo": {}, "time": 1672376592395,
}

# docs/v5/market/open-interest.mdx
REST_OI = {
    "retCode": 0, "retMsg": "OK",
    "result": {"symbol": "BTCUSD", "category": "inverse", "list": [
        {"openInterest": "63910691.00000000", "singleOpenInterest": "31955346", "timestamp": "1780963200000"},
        {"openInterest": "63910691.00000000", "singleOpenInterest": "31955346", "timestamp": "1780876800000"},
        {"openInterest": "63942311.00000000", "singleOpenInterest": "31971156", "timestamp": "1780704000000"}],
        "nextPageCursor": "lastid%3D19408935%26lasttime%3D1780617600"},
    "retExtInfo": {}, "time": 1780994051392,
}

# docs/v5/market/history-fund-rate.mdx
REST_FUNDING = {
    "retCode": 0, "retMsg": "OK",
    "result": {"category": "linear", "list": [
        {"symbol": "ETHPERP", "fundingRate": "0.0001", "fundingRateTimestamp": "1672041600000"}]},
    "retExtInfo": {}, "time": 1672051897447,
}

# docs/v5/market/instrument.mdx, linear (official USDT perpetual)
BTCUSDT_ROW = {
    "symbol": "BTCUSDT", "symbolId": 5, "contractType": "LinearPerpetual", "status": "Trading", "baseCoin": "BTC",
    "quoteCoin": "USDT", "launchTime": "1585526400000", "deliveryTime": "0", "deliveryFeeRate": "", "priceScale": "2",
    "leverageFilter": {"minLeverage": "1", "maxLeverage": "100.00", "leverageStep": "0.01"},
    "priceFilter": {"minPrice": "0.10", "maxPrice": "1999999.80", "tickSize": "0.10"},
    "lotSizeFilter": {"maxOrderQty": "1190.000", "minOrderQty": "0.001", "qtyStep": "0.001",
                      "postOnlyMaxOrderQty": "1190.000", "maxMktOrderQty": "500.000", "minNotionalValue": "5"},
    "unifiedMarginTrade": True, "fundingInterval": 480, "settleCoin": "USDT", "copyTrading": "both",
    "upperFundingRate": "0.00375", "lowerFundingRate": "-0.00375", "isPreListing": False, "preListingInfo": None,
    "riskParameters": {"priceLimitRatioX": "0.01", "priceLimitRatioY": "0.02"}, "symbolType": "",
}
# instrument.mdx, option (USDT-settled)
OPTION_ROW = {
    "symbol": "BTC-27MAR26-70000-P-USDT", "status": "Trading", "baseCoin": "BTC", "quoteCoin": "USDT",
    "settleCoin": "USDT", "optionsType": "Put", "launchTime": "1743669649256", "deliveryTime": "1774598400000",
    "deliveryFeeRate": "0.00015", "priceFilter": {"minPrice": "5", "maxPrice": "1110000", "tickSize": "5"},
    "lotSizeFilter": {"maxOrderQty": "500", "minOrderQty": "0.01", "qtyStep": "0.01"},
    "displayName": "BTCUSDT-27MAR26-70000-P",
}
# instrument.mdx at 16b7b4958, option (USDC-settled: quoteCoin USD)
USDC_OPTION_ROW = {
    "symbol": "ETH-3JAN23-1250-P", "status": "Trading", "baseCoin": "ETH", "quoteCoin": "USD", "settleCoin": "USDC",
    "optionsType": "Put", "launchTime": "1672560000000", "deliveryTime": "1672732800000", "deliveryFeeRate": "0.00015",
    "priceFilter": {"minPrice": "0.1", "maxPrice": "10000000", "tickSize": "0.1"},
    "lotSizeFilter": {"maxOrderQty": "1500", "minOrderQty": "0.1", "qtyStep": "0.1"},
}


def body(rows: list[dict], category: str, cursor: str = "") -> str:
    return json.dumps({"retCode": 0, "retMsg": "OK",
                       "result": {"category": category, "list": rows, "nextPageCursor": cursor},
                       "retExtInfo": {}, "time": 1735809771618})


def inverse_row(symbol: str, contract: str, delivery: str, interval: int) -> dict:
    """An inverse row built from the field table (the docs show no inverse example)."""
    return dict(BTCUSDT_ROW, symbol=symbol, contractType=contract, quoteCoin="USD", settleCoin="BTC",
                deliveryTime=delivery, fundingInterval=interval)


LINEAR_INFO = body([BTCUSDT_ROW, dict(BTCUSDT_ROW, symbol="WLDUSDT", baseCoin="WLD", fundingInterval=240)], "linear")
INVERSE_INFO = body([inverse_row("BTCUSD", "InversePerpetual", "0", 480),
                     inverse_row("BTCUSDH26", "InverseFutures", "1774598400000", 0)], "inverse")


def adapter(*bodies: str) -> BybitAdapter:
    a = BybitAdapter()
    for b in bodies:
        a.load_instruments(b)
    return a


def frame(obj: dict) -> str:
    return json.dumps(obj)


def delta(data: dict, ts: int = 1760325052730, symbol: str = "BTCUSDT") -> str:
    return json.dumps({"topic": f"tickers.{symbol}", "type": "delta", "data": {"symbol": symbol, **data},
                       "cs": 9532239430, "ts": ts})


# --------------------------------------------------------------------------- liquidations


def test_bybit_sell_all_liquidation_is_short_liquidation():
    [ev] = adapter().parse(frame(ALL_LIQ), RECV)
    assert ev == Liquidation(exchange="bybit", symbol="ROSE-USDT-PERP", raw_symbol="ROSEUSDT", ts=1739502302929,
                             recv_ts=RECV, side="short", price=0.04499, qty=20000.0, value_usd=20000 * 0.04499)


def test_bybit_buy_all_liquidation_is_long_liquidation():
    f = copy.deepcopy(ALL_LIQ)
    f["data"][0]["S"] = "Buy"
    [ev] = adapter().parse(frame(f), RECV)
    assert ev.side == "long"


def test_all_liquidation_ts_is_row_time_not_push_time():
    [ev] = adapter().parse(frame(ALL_LIQ), RECV)
    assert ev.ts == 1739502302929 != ALL_LIQ["ts"]


def test_all_liquidation_batch_yields_one_event_per_row():
    f = copy.deepcopy(ALL_LIQ)
    f["data"].append({"T": 1739502303001, "s": "ROSEUSDT", "S": "Buy", "v": "150", "p": "0.045"})
    events = adapter().parse(frame(f), RECV)
    assert [(e.side, e.qty, e.ts) for e in events] == [
        ("short", 20000.0, 1739502302929), ("long", 150.0, 1739502303001)]


def test_all_liquidation_data_as_one_object_is_read_too():
    f = copy.deepcopy(ALL_LIQ)
    f["data"] = f["data"][0]  # the field table says Object; the example is an array
    assert adapter().parse(frame(f), RECV) == adapter().parse(frame(ALL_LIQ), RECV)


def test_inverse_liquidation_size_in_usd_converts_to_base():
    f = {"topic": "allLiquidation.BTCUSD", "type": "snapshot", "ts": 1739502303204,
         "data": [{"T": 1739502302929, "s": "BTCUSD", "S": "Buy", "v": "5000", "p": "50000"}]}
    [ev] = adapter().parse(frame(f), RECV)
    assert (ev.symbol, ev.side, ev.price, ev.qty, ev.value_usd) == ("BTC-USD-PERP", "long", 50000.0, 0.1, 5000.0)


def test_inverse_futures_liquidation_without_metadata_has_units_but_no_symbol():
    f = {"topic": "allLiquidation.BTCUSDH26", "type": "snapshot", "ts": 1739502303204,
         "data": [{"T": 1739502302929, "s": "BTCUSDH26", "S": "Sell", "v": "2000", "p": "40000"}]}
    a = adapter()
    [ev] = a.parse(frame(f), RECV)
    assert (ev.symbol, ev.side, ev.qty, ev.value_usd) == (None, "short", 0.05, 2000.0)
    assert a.stats.unmapped["unknown_symbol"] == 1
    [ev] = adapter(INVERSE_INFO).parse(frame(f), RECV)
    assert ev.symbol == "BTC-USD-20260327"


def test_unknown_symbol_liquidation_is_still_emitted_with_null_size():
    f = copy.deepcopy(ALL_LIQ)
    f["data"][0]["s"] = "FOO"
    a = adapter()
    [ev] = a.parse(frame(f), RECV)
    assert (ev.symbol, ev.side, ev.price, ev.qty, ev.value_usd) == (None, "short", 0.04499, None, None)


def test_deprecated_liquidation_topic_side_is_the_position_side():
    [ev] = adapter().parse(frame(OLD_LIQ), RECV)
    assert ev == Liquidation(exchange="bybit", symbol="BTC-USDT-PERP", raw_symbol="BTCUSDT", ts=1703485237953,
                             recv_ts=RECV, side="short", price=43511.7, qty=0.003, value_usd=0.003 * 43511.7)
    f = copy.deepcopy(OLD_LIQ)
    f["data"]["side"] = "Buy"
    assert adapter().parse(frame(f), RECV)[0].side == "long"


def test_liquidation_side_outside_buy_sell_is_a_frame_error():
    f = copy.deepcopy(ALL_LIQ)
    f["data"][0]["S"] = "None"
    with pytest.raises(FrameError, match="S="):
        adapter().parse(frame(f), RECV)


def test_bad_row_in_liquidation_batch_is_skipped_and_counted():
    f = copy.deepcopy(ALL_LIQ)
    f["data"].append({"T": 1, "s": "ROSEUSDT", "S": "Buy", "v": "abc", "p": "1"})
    a = adapter()
    [ev] = a.parse(frame(f), RECV)
    assert ev.qty == 20000.0
    assert a.stats.errors["element"] == 1


# --------------------------------------------------------------------------- tickers: snapshot + delta


def test_ticker_snapshot_yields_funding_then_ticker():
    funding, ticker = adapter().parse(frame(SNAPSHOT), RECV)
    assert funding == Funding(exchange="bybit", symbol="BTC-USDT-PERP", raw_symbol="BTCUSDT", ts=1760325052630,
                              recv_ts=RECV, rate=-0.005, interval_h=8.0, rate_8h=-0.005, annualized=-0.005 * 3 * 365,
                              predicted_rate=None, next_funding_ts=1760342400000, mark_price=66666.6,
                              index_price=115418.19)
    assert ticker == Ticker(exchange="bybit", symbol="BTC-USDT-PERP", raw_symbol="BTCUSDT", ts=1760325052630,
                            recv_ts=RECV, last=66666.6, bid=66666.6, ask=66666.7, mark_price=66666.6,
                            index_price=115418.19, volume_24h_usd=4936790807.6521,
                            open_interest=492373.72 / 2, open_interest_usd=32824881841.75 / 2)


def test_snapshot_and_delta_merge_yields_events_from_merged_state():
    a = adapter()
    a.parse(frame(SNAPSHOT), RECV)
    funding, ticker = a.parse(delta({"fundingRate": "-0.004", "lastPrice": "66700.10", "bid1Price": "66700.00"}), RECV)
    assert (funding.rate, funding.next_funding_ts, funding.interval_h, funding.mark_price) == (
        -0.004, 1760342400000, 8.0, 66666.6)
    assert (ticker.last, ticker.bid, ticker.ask, ticker.mark_price, ticker.open_interest) == (
        66700.1, 66700.0, 66666.7, 66666.6, 492373.72 / 2)
    assert ticker.ts == funding.ts == 1760325052730


def test_delta_with_only_a_price_yields_a_ticker_but_no_funding():
    a = adapter()
    a.parse(frame(SNAPSHOT), RECV)
    [ticker] = a.parse(delta({"markPrice": "66700.00"}), RECV)
    assert isinstance(ticker, Ticker)
    assert (ticker.mark_price, ticker.last, ticker.volume_24h_usd) == (66700.0, 66666.6, 4936790807.6521)


def test_delta_with_only_funding_fields_yields_funding_but_no_ticker():
    a = adapter()
    a.parse(frame(SNAPSHOT), RECV)
    [funding] = a.parse(delta({"nextFundingTime": "1760371200000"}), RECV)
    assert isinstance(funding, Funding)
    assert (funding.rate, funding.next_funding_ts, funding.mark_price) == (-0.005, 1760371200000, 66666.6)


def test_delta_with_unmapped_fields_only_yields_nothing():
    a = adapter()
    a.parse(frame(SNAPSHOT), RECV)
    assert a.parse(delta({"price24hPcnt": "-0.1", "tickDirection": "PlusTick"}), RECV) == []


def test_missing_key_never_becomes_zero():
    a = adapter()
    [ticker] = a.parse(delta({"markPrice": "66700.00"}), RECV)  # a delta before any snapshot
    assert ticker == Ticker(exchange="bybit", symbol="BTC-USDT-PERP", raw_symbol="BTCUSDT", ts=1760325052730,
                            recv_ts=RECV, mark_price=66700.0)
    assert a.stats.unmapped["delta_before_snapshot"] == 1
    [ticker] = a.parse(delta({"lastPrice": "66701.00"}), RECV)  # merged anyway
    assert (ticker.mark_price, ticker.last, ticker.bid, ticker.open_interest) == (66700.0, 66701.0, None, None)
    assert a.stats.unmapped["delta_before_snapshot"] == 1


def test_new_snapshot_replaces_the_merged_state():
    a = adapter()
    a.parse(frame(SNAPSHOT), RECV)
    fresh = copy.deepcopy(SNAPSHOT)
    del fresh["data"]["lastPrice"]
    _, ticker = a.parse(frame(fresh), RECV)
    assert ticker.last is None


def test_empty_value_in_a_delta_clears_the_field():
    a = adapter()
    a.parse(frame(SNAPSHOT), RECV)
    [ticker] = a.parse(delta({"bid1Price": ""}), RECV)
    assert (ticker.bid, ticker.ask) == (None, 66666.7)


def test_single_side_open_interest_is_preferred_to_half_of_both_sides():
    f = copy.deepcopy(SNAPSHOT)
    f["data"].update(singleOpenInterest="246186.86", singleOpenInterestValue="16412440920.87")
    _, ticker = adapter().parse(frame(f), RECV)
    assert (ticker.open_interest, ticker.open_interest_usd) == (246186.86, 16412440920.87)


def test_linear_open_interest_usd_is_computed_from_mark_when_no_value_is_given():
    f = copy.deepcopy(SNAPSHOT)
    del f["data"]["openInterestValue"]
    _, ticker = adapter().parse(frame(f), RECV)
    assert ticker.open_interest_usd == pytest.approx(492373.72 / 2 * 66666.6, rel=1e-12)


def test_futures_ticker_yields_no_funding():
    [ticker] = adapter().parse(frame(FUTURES_SNAPSHOT), RECV)
    assert isinstance(ticker, Ticker)
    assert (ticker.symbol, ticker.mark_price, ticker.open_interest, ticker.volume_24h_usd) == (
        "BTC-USDC-20251226", 121144.63, 6.622 / 2, 0.0)


def test_ticker_state_is_bounded():
    a = adapter()
    a.MAX_TICKER_STATES = 2
    for sym in ("AUSDT", "BUSDT", "CUSDT"):
        a.parse(delta({"markPrice": "1"}, symbol=sym), RECV)
    assert a.evicted_states == 1


# --------------------------------------------------------------------------- funding interval


def test_interval_from_funding_interval_hour_beats_metadata():
    f = copy.deepcopy(SNAPSHOT)
    f["data"].update(symbol="WLDUSDT", fundingIntervalHour="1")
    f["topic"] = "tickers.WLDUSDT"
    funding, _ = adapter(LINEAR_INFO).parse(frame(f), RECV)
    assert (funding.interval_h, funding.rate_8h) == (1.0, -0.04)


def test_interval_from_metadata_when_the_ticker_omits_it():
    f = copy.deepcopy(SNAPSHOT)
    del f["data"]["fundingIntervalHour"]  # recordings before 2025-10-23 have no fundingIntervalHour
    f["data"].update(symbol="WLDUSDT", fundingRate="0.0005")
    f["topic"] = "tickers.WLDUSDT"
    funding, _ = adapter(LINEAR_INFO).parse(frame(f), RECV)
    assert (funding.interval_h, funding.rate_8h) == (4.0, 0.001)
    assert funding.annualized == pytest.approx(0.0005 * 6 * 365, rel=1e-12)


def test_interval_unknown_leaves_rate_8h_and_annualized_null():
    f = copy.deepcopy(SNAPSHOT)
    del f["data"]["fundingIntervalHour"]
    a = adapter()
    funding, _ = a.parse(frame(f), RECV)
    assert (funding.rate, funding.interval_h, funding.rate_8h, funding.annualized) == (-0.005, None, None, None)
    assert a.stats.unmapped["funding_interval"] == 1


# --------------------------------------------------------------------------- options


def test_option_ticker_iv_fractions_and_greeks():
    a = adapter()
    [ev] = a.parse(frame(OPTION), RECV)
    assert ev == OptionTicker(
        exchange="bybit", symbol="BTC-USD-20230106-17500-C", raw_symbol="BTC-6JAN23-17500-C", ts=1672917511074,
        recv_ts=RECV, underlying="BTC", expiry="2023-01-06", strike=17500.0, kind="C", mark_price_usd=7.86976724,
        mark_iv=0.4896, bid_iv=None, ask_iv=0.514, delta=0.047831, gamma=0.00021453, vega=0.81351067,
        theta=-19.9115368, underlying_price=16815.1, open_interest=49.85, volume_24h=26.55)
    assert a.last_channel == "options"


def test_option_iv_without_a_quote_is_null_even_when_nonzero():
    f = copy.deepcopy(OPTION)
    f["data"].update(askPrice="0", askIv="0.514")
    [ev] = adapter().parse(frame(f), RECV)
    assert (ev.bid_iv, ev.ask_iv) == (None, None)


def test_usdt_option_symbol_and_metadata():
    f = copy.deepcopy(OPTION)
    f["topic"] = "tickers.BTC-27MAR26-70000-P-USDT"
    f["data"]["symbol"] = "BTC-27MAR26-70000-P-USDT"
    [ev] = adapter(body([OPTION_ROW], "option")).parse(frame(f), RECV)
    assert (ev.symbol, ev.expiry, ev.strike, ev.kind, ev.underlying) == (
        "BTC-USDT-20260327-70000-P", "2026-03-27", 70000.0, "P", "BTC")


def test_rest_option_tickers_use_rest_field_names():
    [ev] = adapter().parse_rest("tickers", json.dumps(REST_OPTION_TICKERS), RECV)
    assert (ev.symbol, ev.ts, ev.mark_iv, ev.bid_iv, ev.ask_iv, ev.mark_price_usd, ev.theta) == (
        "BTC-USD-20221230-18000-C", 1672376592395, 0.7567, None, 5.0, 0.00000009, -0.00000152)


def test_unknown_option_name_yields_no_event_and_is_counted():
    f = copy.deepcopy(OPTION)
    f["data"]["symbol"] = "BTC-31FEB23-17500-C"
    f["topic"] = "tickers.BTC-31FEB23-17500-C"
    a = adapter()
    assert a.parse(frame(f), RECV) == []
    assert a.stats.unmapped["unknown_symbol"] == 1


# --------------------------------------------------------------------------- control frames


@pytest.mark.parametrize(
    "text",
    [
        '{"success":true,"ret_msg":"","conn_id":"3cd84cb1-4d06-4a05-930a-2efe5fc70f0f","req_id":"","op":"subscribe"}',
        '{"success":true,"conn_id":"aa01fbfffe80af37-00000001-000b37b9-7147f432704fd28c-00e1c172",'
        '"data":{"failTopics":[],"successTopics":["orderbook.100.BTC-6JAN23-18000-C"]},"type":"COMMAND_RESP"}',
        '{"success":true,"ret_msg":"pong","conn_id":"465772b1-7630-4fdc-a492-e003e6f0f260","req_id":"","op":"ping"}',
        '{"args":["1672916271846"],"op":"pong"}',
        '{"success":false,"ret_msg":"error:handler not found,topic:tickers.FOO","conn_id":"c","req_id":"3",'
        '"op":"subscribe"}',
    ],
)
def test_acks_pongs_and_errors_yield_nothing_and_count_as_control(text):
    a = adapter()
    assert a.parse(text, RECV) == []
    assert (a.stats.control, a.last_channel) == (1, None)


@pytest.mark.parametrize(
    "text",
    [
        '{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1672304486868,"data":[{"T":1672304486865,'
        '"s":"BTCUSDT","S":"Buy","v":"0.001","p":"16578.50","L":"PlusTick","i":"x","BT":false}]}',
        '{"topic":"orderbook.1.BTCUSDT","type":"snapshot","ts":1,"data":{"s":"BTCUSDT","b":[],"a":[],"u":1}}',
        "{}",
    ],
)
def test_unmapped_topics_yield_nothing_and_count_as_ignored(text):
    a = adapter()
    assert a.parse(text, RECV) == []
    assert a.stats.ignored == 1


# --------------------------------------------------------------------------- REST


def test_rest_error_envelope_is_rejected_naming_code_and_message():
    text = '{"retCode":10001,"retMsg":"Not supported symbols","result":{},"retExtInfo":{},"time":1672376592395}'
    with pytest.raises(FrameError, match=r"10001.*Not supported symbols") as info:
        adapter().parse_rest("tickers", text, RECV)
    assert info.value.reason == "rejected"
    with pytest.raises(FrameError, match="10001"):
        adapter().load_instruments(text)


@pytest.mark.parametrize(
    ("text", "reason"),
    [("<html>403 access too frequent</html>", "json"), ('{"retMsg":"OK"}', "schema"), ("[]", "schema"),
     ('{"retCode":0,"retMsg":"OK","time":1}', "schema")],
)
def test_rest_bodies_that_are_not_v5_envelopes_are_frame_errors(text, reason):
    with pytest.raises(FrameError) as info:
        adapter().parse_rest("open_interest", text, RECV)
    assert info.value.reason == reason


def test_rest_inverse_tickers_put_open_interest_in_usd_and_base():
    funding, ticker = adapter().parse_rest("tickers", json.dumps(REST_INVERSE_TICKERS), RECV)
    assert (funding.symbol, funding.rate, funding.interval_h, funding.next_funding_ts, funding.ts) == (
        "BTC-USD-PERP", 0.0001, 8.0, 1760371200000, 1760352369814)
    assert ticker.open_interest_usd == 240113967 / 2  # USD contracts, one side
    assert ticker.open_interest == 2089.79 / 2  # openInterestValue is base coin on inverse
    assert ticker.volume_24h_usd == 13713832.0  # inverse volume24h is USD


def test_rest_open_interest_rows_are_one_side_and_newest_is_priced():
    a = adapter()
    a.parse_rest("tickers", json.dumps(REST_INVERSE_TICKERS), RECV)  # mark 114898.43
    events = a.parse_rest("open_interest", json.dumps(REST_OI), RECV)
    assert events[0] == OpenInterest(exchange="bybit", symbol="BTC-USD-PERP", raw_symbol="BTCUSD", ts=1780963200000,
                                     recv_ts=RECV, oi_contracts=31955346.0, oi_base=31955346 / 114898.43,
                                     oi_usd=31955346.0)
    assert [(e.ts, e.oi_usd, e.oi_base) for e in events[1:]] == [
        (1780876800000, 31955346.0, None), (1780704000000, 31971156.0, None)]


def test_rest_open_interest_without_single_side_halves_both_sides():
    old = copy.deepcopy(REST_OI)
    old["result"].update(symbol="BTCUSDT", category="linear")
    old["result"]["list"] = [{"openInterest": "461134384.00000000", "timestamp": "1669571400000"}]
    [ev] = adapter().parse_rest("open_interest", json.dumps(old), RECV)
    assert (ev.oi_contracts, ev.oi_base, ev.oi_usd) == (230567192.0, 230567192.0, None)


def test_rest_funding_history_rate_applies_at_its_settlement():
    [ev] = adapter().parse_rest("funding_history", json.dumps(REST_FUNDING), RECV)
    assert (ev.symbol, ev.rate, ev.ts, ev.next_funding_ts, ev.interval_h) == (
        "ETH-USDC-PERP", 0.0001, 1672041600000, 1672041600000, None)


def test_unknown_rest_endpoint_is_our_bug():
    with pytest.raises(ValueError, match="premiumIndex"):
        adapter().parse_rest("premiumIndex", "{}", RECV)


# --------------------------------------------------------------------------- instruments


def test_instruments_load_every_category():
    a = adapter(LINEAR_INFO, INVERSE_INFO, body([OPTION_ROW, USDC_OPTION_ROW], "option"))
    assert {i.raw_symbol: i.symbol for i in a.instruments()} == {
        "BTCUSDT": "BTC-USDT-PERP", "WLDUSDT": "WLD-USDT-PERP", "BTCUSD": "BTC-USD-PERP",
        "BTCUSDH26": "BTC-USD-20260327", "BTC-27MAR26-70000-P-USDT": "BTC-USDT-20260327-70000-P",
        "ETH-3JAN23-1250-P": "ETH-USD-20230103-1250-P"}
    assert a.funding_interval_h("BTCUSDT") == 8.0
    assert a.funding_interval_h("WLDUSDT") == 4.0
    assert a.funding_interval_h("BTCUSDH26") is None
    assert a.instrument("BTCUSD").inverse is True
    assert [a.market_of(s) for s in ("BTCUSDT", "BTCUSDH26", "ETH-3JAN23-1250-P")] == ["linear", "inverse", "option"]


def test_instrument_row_of_unknown_contract_type_is_skipped_and_counted():
    a = adapter()
    assert a.load_instruments(body([dict(BTCUSDT_ROW, contractType="LinearSomething"), BTCUSDT_ROW], "linear")) == 1
    assert a.stats.unmapped["instrument"] == 1


def test_perpetual_delivery_time_is_a_delisting_not_an_expiry():
    a = adapter(body([dict(BTCUSDT_ROW, deliveryTime="1774598400000")], "linear"))
    assert a.instrument("BTCUSDT").symbol == "BTC-USDT-PERP"


def test_next_instruments_call_follows_the_cursor():
    a = adapter()
    page = body([BTCUSDT_ROW], "linear", cursor="first%3DBIOUSDT%26last%3DBIOUSDT")
    call = a.next_instruments_call(page)
    assert call is not None
    assert (call.endpoint, call.path, call.params, call.market) == (
        "instruments", "/v5/market/instruments-info",
        {"category": "linear", "limit": "1000", "cursor": "first%3DBIOUSDT%26last%3DBIOUSDT"}, "linear")
    assert a.next_instruments_call(body([BTCUSDT_ROW], "linear")) is None
    option_page = a.next_instruments_call(body([OPTION_ROW], "option", cursor="abc"))
    assert option_page is not None
    assert option_page.params["baseCoin"] == "BTC"


def test_rest_instruments_cover_every_category():
    calls = BybitAdapter(option_bases=("BTC", "ETH")).rest_instruments()
    assert [(c.params["category"], c.params.get("baseCoin")) for c in calls] == [
        ("linear", None), ("inverse", None), ("option", "BTC"), ("option", "ETH")]
    assert all(c.params["limit"] == "1000" for c in calls)


def test_parse_rest_instruments_loads_and_yields_nothing():
    a = adapter()
    assert a.parse_rest("instruments", LINEAR_INFO, RECV) == []
    assert len(a.instruments()) == 2


# --------------------------------------------------------------------------- subscriptions, REST calls


def test_ticker_borne_channels_share_one_tickers_topic():
    a = adapter()
    streams = [Stream(ch, "BTCUSDT", "linear") for ch in ("liquidations", "funding", "ticker", "mark", "index",
                                                          "open_interest", "book")]
    [text] = a.subscribe(streams)
    assert json.loads(text) == {"req_id": "1", "op": "subscribe", "args": ["allLiquidation.BTCUSDT", "tickers.BTCUSDT"]}
    assert json.loads(a.subscribe([Stream("ticker", "ETHUSDT")])[0])["req_id"] == "2"


def test_subscribe_is_chunked_per_request():
    frames = adapter().subscribe([Stream("funding", f"S{i}USDT") for i in range(25)])
    assert [len(json.loads(f)["args"]) for f in frames] == [10, 10, 5]


def test_subscribe_refuses_more_args_than_one_connection_allows():
    with pytest.raises(ValueError, match="21000"):
        adapter().subscribe([Stream("ticker", f"SYMBOL{i:06d}USDT") for i in range(1000)])


def test_all_market_liquidations_do_not_exist_on_bybit():
    with pytest.raises(ValueError, match="no all-market liquidation topic"):
        adapter().stream_key(Stream("liquidations"))
    with pytest.raises(ValueError, match="all-market"):
        adapter().stream_key(Stream("funding"))


def test_option_streams_are_tickers_on_the_option_endpoint_only():
    a = adapter()
    assert a.stream_key(Stream("options", "BTC-27MAR26-70000-P-USDT", "option")) == "tickers.BTC-27MAR26-70000-P-USDT"
    with pytest.raises(ValueError, match="option symbols"):
        a.stream_key(Stream("options", "BTCUSDT"))
    with pytest.raises(ValueError, match="options carry only"):
        a.stream_key(Stream("liquidations", "BTC-6JAN23-17500-C"))


def test_plan_streams_gives_one_ticker_stream_per_symbol_and_market():
    a = adapter()
    symbols = ["BTCUSDT", "BTCUSD", "BTC-6JAN23-17500-C"]
    channels = ["liquidations", "funding", "ticker", "options"]
    assert a.plan_streams("linear", symbols, channels, True) == [
        Stream("liquidations", "BTCUSDT", "linear"), Stream("ticker", "BTCUSDT", "linear")]
    assert a.plan_streams("inverse", symbols, channels, False) == [
        Stream("liquidations", "BTCUSD", "inverse"), Stream("ticker", "BTCUSD", "inverse")]
    assert a.plan_streams("option", symbols, channels, False) == [Stream("options", "BTC-6JAN23-17500-C", "option")]


def test_options_channel_without_listed_options_subscribes_the_loaded_chain_of_listed_bases():
    a = adapter(LINEAR_INFO, body([OPTION_ROW, USDC_OPTION_ROW], "option"))
    channels = ["liquidations", "options"]
    # BTCUSDT names base BTC: every loaded BTC option, not the ETH one
    assert a.plan_streams("option", ["BTCUSDT", "WLDUSDT"], channels, False) == [
        Stream("options", "BTC-27MAR26-70000-P-USDT", "option")]
    # a listed option is taken as the whole wish
    assert a.plan_streams("option", ["BTCUSDT", "ETH-3JAN23-1250-P"], channels, False) == [
        Stream("options", "ETH-3JAN23-1250-P", "option")]
    # no options channel, no option streams
    assert a.plan_streams("option", ["BTCUSDT"], ["liquidations"], False) == []


def test_last_channel_names_the_planned_stream():
    a = adapter()
    a.parse(frame(SNAPSHOT), RECV)
    assert (a.last_channel, a.last_symbol) == ("ticker", "BTCUSDT")
    a.parse(frame(ALL_LIQ), RECV)
    assert (a.last_channel, a.last_symbol) == ("liquidations", "ROSEUSDT")
    a.parse('{"op":"pong","args":["1"]}', RECV)
    assert (a.last_channel, a.last_symbol) == (None, None)


def test_heartbeat_is_an_application_ping_every_20_s():
    hb = adapter().heartbeat()
    assert (json.loads(hb.ping_payload), hb.ping_interval_s, hb.ws_ping_interval_s) == ({"op": "ping"}, 20.0, None)


def test_rest_calls_name_category_symbol_and_interval():
    a = adapter()
    oi = a.rest_open_interest("BTCUSD", ttl_s=15.0)
    assert (oi.endpoint, oi.path, oi.params, oi.ttl_s, oi.market) == (
        "open_interest", "/v5/market/open-interest",
        {"category": "inverse", "symbol": "BTCUSD", "intervalTime": "5min", "limit": "1"}, 15.0, "inverse")
    assert a.rest_open_interest_hist("BTCUSDT", period="1h", limit=500).params["limit"] == "200"
    assert a.rest_tickers("linear", "BTCUSDT").params == {"category": "linear", "symbol": "BTCUSDT"}
    assert a.rest_tickers("option", base_coin="ETH").params == {"category": "option", "baseCoin": "ETH"}
    with pytest.raises(ValueError, match="symbol or a base coin"):
        a.rest_tickers("option")
    assert a.rest_funding_history("BTCPERP").params == {"category": "linear", "symbol": "BTCPERP", "limit": "200"}
    assert [c.params for c in a.rest_cover("inverse", ["BTCUSD"])] == [{"category": "inverse", "symbol": "BTCUSD"}]


# --------------------------------------------------------------------------- symbols


@pytest.mark.parametrize(
    ("raw", "unified", "market"),
    [
        ("BTCUSDT", "BTC-USDT-PERP", "linear"),
        ("1000PEPEUSDT", "1000PEPE-USDT-PERP", "linear"),
        ("BTCUSDT-21FEB25", "BTC-USDT-20250221", "linear"),
        ("BTCPERP", "BTC-USDC-PERP", "linear"),
        ("BTC-24MAR23", "BTC-USDC-20230324", "linear"),
        ("BTCUSD", "BTC-USD-PERP", "inverse"),
        ("BTC-6JAN23-17500-C", "BTC-USD-20230106-17500-C", "option"),
        ("BTC-27MAR26-70000-P-USDT", "BTC-USDT-20260327-70000-P", "option"),
    ],
)
def test_unified_symbol_from_bybit_name(raw, unified, market):
    inst = instrument_from_name(raw)
    assert inst is not None
    assert (inst.symbol, market_from_name(raw)) == (unified, market)


def test_inverse_futures_name_tells_market_but_not_the_delivery_day():
    assert (instrument_from_name("BTCUSDH23"), market_from_name("BTCUSDH23")) == (None, "inverse")
    assert instrument_from_name("BTC-31FEB23-100-C") is None


# --------------------------------------------------------------------------- garbage

GOOD = [frame(ALL_LIQ), frame(OLD_LIQ), frame(SNAPSHOT), delta({"markPrice": "1"}), frame(OPTION),
        frame(FUTURES_SNAPSHOT)]
REST_GOOD = [("tickers", json.dumps(REST_INVERSE_TICKERS)), ("tickers", json.dumps(REST_OPTION_TICKERS)),
             ("open_interest", json.dumps(REST_OI)), ("funding_history", json.dumps(REST_FUNDING)),
             ("instruments", LINEAR_INFO)]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False) | st.sampled_from(["", "nan", "inf", "-1e400", "1e308", "Buy", "Sell", "snapshot",
                                                     "delta", "tickers.BTCUSDT", "allLiquidation.BTCUSD",
                                                     "liquidation.X", "tickers.BTC-6JAN23-17500-C"])
    | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["topic", "type", "ts", "data", "op", "success", "T", "s", "S", "v", "p", "symbol",
                         "markPrice", "fundingRate", "openInterest", "nextFundingTime", "side", "size", "price",
                         "updatedTime", "retCode", "result", "list", "category"]) | st.text(max_size=3),
        children, max_size=6),
    max_leaves=20,
)


def _check(events: list) -> None:
    for ev in events:
        msgspec.json.encode(ev)
        for name in ev.__struct_fields__:
            v = getattr(ev, name)
            if isinstance(v, float):
                assert math.isfinite(v), name  # never NaN or inf


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(GOOD), st.integers(min_value=0, max_value=600))
def test_truncated_frames_raise_only_frame_error(text, cut):
    try:
        _check(adapter(LINEAR_INFO).parse(text[: min(cut, len(text))], RECV))
    except FrameError:
        pass


@settings(max_examples=600, deadline=None)
@given(json_values)
def test_arbitrary_json_raises_only_frame_error(value):
    a = adapter(LINEAR_INFO)
    try:
        _check(a.parse(msgspec.json.encode(value), RECV))
    except FrameError:
        pass
    for endpoint in ("tickers", "open_interest", "funding_history", "instruments"):
        try:
            _check(a.parse_rest(endpoint, msgspec.json.encode({"retCode": 0, "result": value}), RECV))
        except FrameError:
            pass


BAD_VALUES = st.none() | st.sampled_from(["", "nan", "inf", "abc", "1e400", 1e308, -5, 10**40, [], {}, True, "-1"])


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(["T", "s", "S", "v", "p"]), BAD_VALUES)
def test_wrong_types_in_liquidation_fields_raise_only_frame_error(key, value):
    f = copy.deepcopy(ALL_LIQ)
    f["data"][0][key] = value
    try:
        _check(adapter().parse(json.dumps(f), RECV))
    except FrameError:
        pass


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(["markPrice", "fundingRate", "nextFundingTime", "fundingIntervalHour", "openInterest",
                        "openInterestValue", "turnover24h", "lastPrice", "symbol", "ts", "type", "data"]),
       BAD_VALUES)
def test_wrong_types_in_ticker_fields_raise_only_frame_error(key, value):
    a = adapter()
    a.parse(frame(SNAPSHOT), RECV)
    f = json.loads(delta({"markPrice": "1"}))
    if key in ("ts", "type", "data"):
        f[key] = value
    else:
        f["data"][key] = value
    try:
        _check(a.parse(json.dumps(f), RECV))
    except FrameError:
        pass
    _check(a.parse(delta({"lastPrice": "2"}), RECV))  # a rejected delta leaves the state usable


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(["markPriceIv", "bidIv", "askIv", "delta", "theta", "markPrice", "symbol", "openInterest"]),
       BAD_VALUES)
def test_wrong_types_in_option_fields_raise_only_frame_error(key, value):
    f = copy.deepcopy(OPTION)
    f["data"][key] = value
    try:
        _check(adapter().parse(json.dumps(f), RECV))
    except FrameError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(REST_GOOD), st.integers(min_value=0, max_value=900))
def test_truncated_rest_bodies_raise_only_frame_error(case, cut):
    endpoint, text = case
    try:
        _check(adapter().parse_rest(endpoint, text[: min(cut, len(text))], RECV))
    except FrameError:
        pass


# --------------------------------------------------------------------------- one-shot snapshots


def test_snapshot_calls_and_account_ratio():
    from streamer.model import Instrument

    a = BybitAdapter()
    a.meta.add(Instrument(exchange="bybit", raw_symbol="BTCUSDT", kind="perpetual", base="BTC", quote="USDT"))
    a.meta.add(Instrument(exchange="bybit", raw_symbol="BTCUSD", kind="perpetual", base="BTC", quote="USD",
                          inverse=True, contract_size=1.0))
    a.meta.add(Instrument(exchange="bybit", raw_symbol="BTC-26DEC26-100000-C", kind="option", base="BTC", quote="USD",
                          expiry_ms=1_798_272_000_000, strike=100000.0, option_kind="C"))
    funding = a.snapshot_calls("funding", ["BTC"])
    assert [c.endpoint for c in funding] == ["tickers", "funding_history", "tickers", "funding_history"]
    oi = a.snapshot_calls("oi", ["BTC"])
    assert [c.endpoint for c in oi][:2] == ["tickers", "tickers"]  # prices first: they value OI history
    hist = [c for c in oi if c.endpoint == "open_interest"]
    assert all(c.params["intervalTime"] == "1h" and c.params["limit"] == "169" for c in hist)
    ratio = [c for c in oi if c.endpoint == "account_ratio"]
    assert {(c.params["category"], c.params["symbol"]) for c in ratio} == {("linear", "BTCUSDT"),
                                                                           ("inverse", "BTCUSD")}
    [opt] = a.snapshot_calls("options", ["BTC", "ETH"])
    assert opt.params == {"category": "option", "baseCoin": "BTC"}
    assert a.snapshot_calls("liquidations", ["BTC"]) == []
    body = json.dumps({"retCode": 0, "retMsg": "OK", "result": {"list": [
        {"symbol": "BTCUSDT", "buyRatio": "0.6", "sellRatio": "0.4", "timestamp": "1695772800000"}],
        "nextPageCursor": ""}, "time": 1})
    [(raw, ts, r, long_f, short_f)] = a.parse_long_short(body)
    assert (raw, ts, long_f, short_f) == ("BTCUSDT", 1695772800000, 0.6, 0.4)
    assert r == pytest.approx(1.5)
    with pytest.raises(FrameError, match="10001"):
        a.parse_long_short(json.dumps({"retCode": 10001, "retMsg": "params error", "result": {}}))
