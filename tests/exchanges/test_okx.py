"""OKX adapter: behaviours named one by one (sides, contracts, funding times, options, envelopes, garbage).

Frames are OKX's documentation examples (Public Data / Order Book Trading WebSocket
and REST pages, v5), kept as published; where a case needs another instrument
or value, the change is named next to it. Instrument rows follow the documented
``GET /api/v5/public/instruments`` fields with OKX's contract values.
"""

from __future__ import annotations

import json
import math

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamer.exchanges.base import FrameError, Stream
from streamer.exchanges.okx import OkxAdapter, instrument_from_name, unified
from streamer.model import Funding, Liquidation, OpenInterest, OptionTicker, Ticker

RECV = 1_767_225_600_123


def body(*rows: dict) -> str:
    return json.dumps({"code": "0", "msg": "", "data": list(rows)})


def swap(inst_id: str, ct_val: str, ct_val_ccy: str, ct_type: str, settle: str, ct_mult: str = "1") -> dict:
    family = inst_id.rsplit("-", 1)[0]
    return {"instType": "SWAP", "instId": inst_id, "uly": family, "instFamily": family, "settleCcy": settle,
            "ctVal": ct_val, "ctMult": ct_mult, "ctValCcy": ct_val_ccy, "ctType": ct_type, "optType": "",
            "stk": "", "expTime": "", "listTime": "1606468572000", "state": "live", "lever": "100",
            "tickSz": "0.1", "lotSz": "1", "minSz": "1", "alias": "", "baseCcy": "", "quoteCcy": ""}


SWAPS = body(
    swap("BTC-USDT-SWAP", "0.01", "BTC", "linear", "USDT"),
    swap("BTC-USD-SWAP", "100", "USD", "inverse", "BTC"),
    swap("LTC-USD-SWAP", "10", "USD", "inverse", "LTC"),
    swap("IOST-USDT-SWAP", "1000", "IOST", "linear", "USDT"),
)
FUTURES = body(
    dict(swap("BTC-USD-250926", "100", "USD", "inverse", "BTC"), instType="FUTURES", instFamily="BTC-USD",
         uly="BTC-USD", expTime="1758873600000", alias="quarter"),
    dict(swap("BTC-USDT-250926", "0.01", "BTC", "linear", "USDT"), instType="FUTURES", instFamily="BTC-USDT",
         uly="BTC-USDT", expTime="1758873600000", alias="quarter"),
    # ctMult other than 1, to pin that one contract is ctVal x ctMult (0.1 x 10 = 1 ETH).
    dict(swap("ETH-USDT-250926", "0.1", "ETH", "linear", "USDT", ct_mult="10"), instType="FUTURES",
         instFamily="ETH-USDT", uly="ETH-USDT", expTime="1758873600000", alias="quarter"),
)
OPTIONS = body(
    dict(swap("BTC-USD-241013-70000-P", "0.01", "BTC", "", "BTC"), instType="OPTION", instFamily="BTC-USD",
         uly="BTC-USD", optType="P", stk="70000", expTime="1728806400000"),
)


def adapter(*bodies: str) -> OkxAdapter:
    a = OkxAdapter()
    for b in bodies:
        a.load_instruments(b)
    return a


def push(channel: str, arg_key: str, arg_value: str, *rows: dict) -> str:
    return json.dumps({"arg": {"channel": channel, arg_key: arg_value}, "data": list(rows)})


# Public Data WS, Liquidation orders channel, push example (as published).
LIQ_DOC = push("liquidation-orders", "instType", "SWAP", {
    "details": [{"bkLoss": "0", "bkPx": "0.007831", "ccy": "", "posSide": "short", "side": "buy", "sz": "13",
                 "ts": "1692266434010"}],
    "instFamily": "IOST-USDT", "instId": "IOST-USDT-SWAP", "instType": "SWAP", "uly": "IOST-USDT"})


def liq(inst_id: str, pos_side: str, side: str, sz: str, bk_px: str, ts: str = "1692266434010",
        inst_type: str = "SWAP") -> str:
    family = "-".join(inst_id.split("-")[:2])
    return push("liquidation-orders", "instType", inst_type, {
        "details": [{"bkLoss": "0", "bkPx": bk_px, "ccy": "", "posSide": pos_side, "side": side, "sz": sz,
                     "ts": ts}],
        "instFamily": family, "instId": inst_id, "instType": inst_type, "uly": family})


# --------------------------------------------------------------------------- liquidations


def test_okx_doc_liquidation_converts_contracts_to_base_and_usd():
    [ev] = adapter(SWAPS).parse(LIQ_DOC, RECV)
    assert ev == Liquidation(exchange="okx", symbol="IOST-USDT-PERP", raw_symbol="IOST-USDT-SWAP",
                             ts=1692266434010, recv_ts=RECV, side="short", price=0.007831,
                             qty=13_000.0, value_usd=pytest.approx(13_000 * 0.007831, rel=1e-12))


def test_okx_net_mode_sell_liquidation_is_long():
    [ev] = adapter(SWAPS).parse(liq("BTC-USDT-SWAP", "net", "sell", "25", "84500.1"), RECV)
    assert (ev.side, ev.qty) == ("long", 0.25)
    assert ev.value_usd == pytest.approx(0.25 * 84500.1, rel=1e-12)


def test_okx_net_mode_buy_liquidation_is_short():
    [ev] = adapter(SWAPS).parse(liq("BTC-USDT-SWAP", "net", "buy", "1", "84500.1"), RECV)
    assert ev.side == "short"


def test_okx_pos_side_overrides_the_order_side():
    a = adapter(SWAPS)
    [long_] = a.parse(liq("BTC-USDT-SWAP", "long", "buy", "1", "100"), RECV)
    [short] = a.parse(liq("BTC-USDT-SWAP", "short", "sell", "1", "100"), RECV)
    assert (long_.side, short.side) == ("long", "short")


def test_okx_liquidation_base_qty_is_contracts_times_ct_val_times_ct_mult():
    [ev] = adapter(FUTURES).parse(liq("ETH-USDT-250926", "net", "sell", "3", "2715.5", inst_type="FUTURES"), RECV)
    assert (ev.symbol, ev.qty) == ("ETH-USDT-20250926", 3.0)  # 3 contracts x 0.1 ETH x 10
    assert ev.value_usd == pytest.approx(3 * 2715.5, rel=1e-12)


def test_okx_inverse_liquidation_usd_value_is_contracts_times_face_value():
    [ev] = adapter(SWAPS).parse(liq("BTC-USD-SWAP", "net", "sell", "3", "60000.5"), RECV)
    assert (ev.symbol, ev.side, ev.price, ev.value_usd) == ("BTC-USD-PERP", "long", 60000.5, 300.0)
    assert ev.qty == pytest.approx(300.0 / 60000.5, rel=1e-12)


def test_okx_inverse_future_liquidation_uses_its_own_face_value():
    [ev] = adapter(FUTURES).parse(liq("BTC-USD-250926", "short", "buy", "7", "59000", inst_type="FUTURES"), RECV)
    assert (ev.symbol, ev.side, ev.value_usd) == ("BTC-USD-20250926", "short", 700.0)


def test_okx_liquidation_without_instruments_is_emitted_with_null_size():
    a = adapter()
    [ev] = a.parse(LIQ_DOC, RECV)
    assert (ev.symbol, ev.side, ev.price, ev.qty, ev.value_usd) == ("IOST-USDT-PERP", "short", 0.007831, None, None)
    assert a.stats.unmapped["contract_size"] == 1


def test_okx_liquidation_ts_is_the_detail_time_and_each_detail_is_an_event():
    frame = json.loads(liq("BTC-USDT-SWAP", "net", "sell", "1", "100", ts="1700000000001"))
    frame["data"][0]["details"].append(dict(frame["data"][0]["details"][0], ts="1700000000002", side="buy"))
    events = adapter(SWAPS).parse(json.dumps(frame), RECV)
    assert [(e.ts, e.side) for e in events] == [(1700000000001, "long"), (1700000000002, "short")]


def test_okx_first_liquidation_push_after_subscribing_is_kept():
    a = adapter(SWAPS)
    a.parse('{"event":"subscribe","arg":{"channel":"liquidation-orders","instType":"SWAP"},"connId":"a4d3ae55"}',
            RECV)
    assert len(a.parse(LIQ_DOC, RECV)) == 1


def test_okx_margin_and_option_liquidation_rows_are_not_mapped():
    a = adapter(SWAPS)
    margin = liq("BTC-USDT", "net", "sell", "0.5", "", inst_type="MARGIN")
    assert a.parse(margin, RECV) == []
    assert a.stats.ignored == 1


def test_okx_rest_liquidation_orders_body_gives_the_same_events():
    rest = body({"details": [{"bkLoss": "0", "bkPx": "60000.5", "ccy": "", "posSide": "net", "side": "sell",
                              "sz": "3", "ts": "1692266434010"}],
                 "instFamily": "BTC-USD", "instId": "BTC-USD-SWAP", "instType": "SWAP", "totalLoss": "",
                 "uly": "BTC-USD"})
    a = adapter(SWAPS)
    assert a.parse_rest("liquidation_orders", rest, RECV) == a.parse(
        liq("BTC-USD-SWAP", "net", "sell", "3", "60000.5"), RECV)


# --------------------------------------------------------------------------- funding

# Public Data WS, Funding rate channel, push example (as published).
FUNDING_DOC = {"fundingRate": "0.0001875391284828", "fundingTime": "1700726400000", "instId": "BTC-USD-SWAP",
               "instType": "SWAP", "method": "current_period", "maxFundingRate": "0.00375",
               "minFundingRate": "-0.00375", "nextFundingRate": "", "nextFundingTime": "1700755200000",
               "premium": "0.0001233824646391", "settFundingRate": "0.0001699799259033", "settState": "settled",
               "ts": "1700724675402"}


def test_okx_funding_interval_comes_from_the_two_funding_times():
    [ev] = adapter().parse(push("funding-rate", "instId", "BTC-USD-SWAP", FUNDING_DOC), RECV)
    assert ev == Funding(exchange="okx", symbol="BTC-USD-PERP", raw_symbol="BTC-USD-SWAP", ts=1700724675402,
                         recv_ts=RECV, rate=0.0001875391284828, interval_h=8.0, rate_8h=0.0001875391284828,
                         annualized=pytest.approx(0.0001875391284828 * 3 * 365, rel=1e-12), predicted_rate=None,
                         next_funding_ts=1700726400000)


def test_okx_funding_next_settlement_is_funding_time_not_next_funding_time():
    [ev] = adapter().parse(push("funding-rate", "instId", "BTC-USD-SWAP", FUNDING_DOC), RECV)
    assert ev.next_funding_ts == 1700726400000  # 08:00 UTC, 29 min after ts; nextFundingTime is 16:00


def test_okx_four_hour_funding_scales_rate_8h():
    row = dict(FUNDING_DOC, fundingRate="0.0005", nextFundingTime=str(1700726400000 + 4 * 3_600_000))
    [ev] = adapter().parse(push("funding-rate", "instId", "BTC-USD-SWAP", row), RECV)
    assert (ev.interval_h, ev.rate_8h) == (4.0, 0.001)
    assert ev.annualized == pytest.approx(0.0005 * 6 * 365, rel=1e-12)


def test_okx_predicted_rate_is_next_funding_rate_where_present():
    row = dict(FUNDING_DOC, nextFundingRate="0.00015")
    [ev] = adapter().parse(push("funding-rate", "instId", "BTC-USD-SWAP", row), RECV)
    assert ev.predicted_rate == 0.00015


def test_okx_funding_without_next_funding_time_has_null_interval():
    a = adapter()
    [ev] = a.parse(push("funding-rate", "instId", "BTC-USD-SWAP", dict(FUNDING_DOC, nextFundingTime="")), RECV)
    assert (ev.interval_h, ev.rate_8h, ev.annualized) == (None, None, None)
    assert a.stats.unmapped["funding_interval"] == 1


def test_okx_rest_funding_rate_body_reads_like_the_channel():
    # Public Data REST, Get funding rate, response example (as published).
    rest = body({"fundingRate": "0.0000792386885340", "fundingTime": "1703088000000", "instId": "BTC-USDT-SWAP",
                 "instType": "SWAP", "method": "current_period", "maxFundingRate": "0.00375",
                 "minFundingRate": "-0.00375", "nextFundingRate": "", "nextFundingTime": "1703116800000",
                 "premium": "0.0001233824646391", "settFundingRate": "0.0001418433662153", "settState": "settled",
                 "ts": "1703070685309"})
    [ev] = adapter().parse_rest("funding_rate", rest, RECV)
    assert (ev.symbol, ev.rate, ev.interval_h, ev.next_funding_ts, ev.ts) == (
        "BTC-USDT-PERP", 0.000079238688534, 8.0, 1703088000000, 1703070685309)


def test_okx_funding_history_rows_are_the_realized_rate_at_each_settlement():
    # Public Data REST, Get funding rate history, response example (as published).
    rest = body({"fundingRate": "0.0000746604960499", "fundingTime": "1703059200000", "instId": "BTC-USD-SWAP",
                 "instType": "SWAP", "method": "next_period", "realizedRate": "0.0000746572360545"},
                {"fundingRate": "0.000227985782722", "fundingTime": "1703030400000", "instId": "BTC-USD-SWAP",
                 "instType": "SWAP", "method": "next_period", "realizedRate": "0.0002279755647389"})
    newer, older = adapter().parse_rest("funding_rate_history", rest, RECV)
    assert (newer.rate, newer.ts, newer.next_funding_ts) == (0.0000746572360545, 1703059200000, 1703059200000)
    assert older.rate == 0.0002279755647389
    # A history row states no interval (no nextFundingTime), so it is not assumed.
    assert {(e.interval_h, e.rate_8h, e.annualized, e.predicted_rate) for e in (newer, older)} == {
        (None, None, None, None)}


# --------------------------------------------------------------------------- prices, volume, open interest


def test_okx_mark_price_yields_a_ticker_with_mark_only():
    # Public Data WS, Mark price channel, push example (as published).
    frame = push("mark-price", "instId", "LTC-USD-190628",
                 {"instType": "FUTURES", "instId": "LTC-USD-190628", "markPx": "0.1", "ts": "1597026383085"})
    [ev] = adapter().parse(frame, RECV)
    assert ev == Ticker(exchange="okx", symbol="LTC-USD-20190628", raw_symbol="LTC-USD-190628", ts=1597026383085,
                        recv_ts=RECV, mark_price=0.1)


def test_okx_linear_ticker_volume_usd_is_null_as_okx_publishes_no_quote_volume():
    # Order Book Trading WS, Tickers channel, push example; instId/instType changed from the spot pair.
    row = {"instType": "SWAP", "instId": "BTC-USDT-SWAP", "last": "9999.99", "lastSz": "0.1", "askPx": "9999.99",
           "askSz": "11", "bidPx": "8888.88", "bidSz": "5", "open24h": "9000", "high24h": "10000",
           "low24h": "8888.88", "volCcy24h": "2222", "vol24h": "2222", "sodUtc0": "2222", "sodUtc8": "2222",
           "ts": "1597026383085"}
    [ev] = adapter(SWAPS).parse(push("tickers", "instId", "BTC-USDT-SWAP", row), RECV)
    assert (ev.last, ev.bid, ev.ask, ev.ts) == (9999.99, 8888.88, 9999.99, 1597026383085)
    assert ev.volume_24h_usd is None  # volCcy24h is base coin; base x last would be a guess (docs/decisions.md)


def test_okx_inverse_ticker_volume_usd_is_contracts_times_face_value():
    # Order Book Trading REST, Get tickers, response example (as published).
    row = {"instType": "SWAP", "last": "9999.99", "lastSz": "1", "askPx": "9999.99", "askSz": "11",
           "bidPx": "8888.88", "bidSz": "5", "open24h": "9000", "high24h": "10000", "low24h": "8888.88",
           "volCcy24h": "2222", "vol24h": "2222", "sodUtc0": "0.1", "sodUtc8": "0.1", "ts": "1597026383085"}
    rest = body(dict(row, instId="LTC-USD-SWAP"), dict(row, instId="BTC-USD-SWAP"))
    ltc, btc = adapter(SWAPS).parse_rest("tickers", rest, RECV)
    assert (ltc.symbol, ltc.volume_24h_usd) == ("LTC-USD-PERP", 22_220.0)  # 2222 contracts x 10 USD
    assert (btc.symbol, btc.volume_24h_usd) == ("BTC-USD-PERP", 222_200.0)  # 2222 contracts x 100 USD
    assert adapter().parse_rest("tickers", rest, RECV)[1].volume_24h_usd is None


def test_okx_open_interest_uses_the_venue_units_where_given():
    # Public Data REST, Get open interest, response example (as published).
    rest = body({"instType": "SWAP", "instId": "BTC-USDT-SWAP", "oi": "5000", "oiCcy": "555.55", "oiUsd": "50000",
                 "ts": "1597026383085"})
    [ev] = adapter().parse_rest("open_interest", rest, RECV)
    assert ev == OpenInterest(exchange="okx", symbol="BTC-USDT-PERP", raw_symbol="BTC-USDT-SWAP",
                              ts=1597026383085, recv_ts=RECV, oi_contracts=5000.0, oi_base=555.55, oi_usd=50000.0)


def test_okx_open_interest_channel_without_oi_usd_computes_inverse_usd_from_face_value():
    # Public Data WS, Open interest channel, push example (as published: no oiUsd).
    frame = push("open-interest", "instId", "LTC-USD-SWAP",
                 {"instType": "SWAP", "instId": "LTC-USD-SWAP", "oi": "5000", "oiCcy": "555.55",
                  "ts": "1597026383085"})
    [ev] = adapter(SWAPS).parse(frame, RECV)
    assert (ev.oi_contracts, ev.oi_base, ev.oi_usd) == (5000.0, 555.55, 50_000.0)  # 5000 x 10 USD
    [bare] = adapter().parse(frame, RECV)
    assert (bare.oi_base, bare.oi_usd) == (555.55, None)


def test_okx_open_interest_history_reads_positional_arrays():
    # Trading Statistics REST, Get contract open interest history: rows are [ts, oi, oiCcy, oiUsd].
    rest = body(["1700000000000", "1500000", "15000", "550000000"],
                ["1699996400000", "1490000", "14900", "546000000"])
    a = adapter()
    call = a.rest_open_interest_hist("BTC-USDT-SWAP", period="1h", limit=169)
    assert call.params == {"instId": "BTC-USDT-SWAP", "period": "1H", "limit": "100"}
    first, second = a.parse_rest(call.endpoint, rest, RECV)
    assert first == OpenInterest(exchange="okx", symbol="BTC-USDT-PERP", raw_symbol="BTC-USDT-SWAP",
                                 ts=1700000000000, recv_ts=RECV, oi_contracts=1_500_000.0, oi_base=15_000.0,
                                 oi_usd=550_000_000.0)
    assert (second.ts, second.oi_base) == (1699996400000, 14_900.0)
    by_params = a.parse_rest("open_interest_history", rest, RECV, params={"instId": "BTC-USDT-SWAP", "period": "1H"})
    assert by_params == [first, second]


def test_okx_index_ticker_is_not_an_instrument_and_yields_nothing():
    # Market Data REST, Get index tickers, response example (as published); WS push rows are the same.
    rest = body({"instId": "BTC-USDT", "idxPx": "43350", "high24h": "43649.7", "sodUtc0": "43444.1",
                 "open24h": "43640.8", "low24h": "43261.9", "sodUtc8": "43328.7", "ts": "1649419644492"})
    a = adapter(SWAPS, FUTURES)
    assert a.parse_rest("index_tickers", rest, RECV) == []
    assert a.parse(push("index-tickers", "instId", "BTC-USDT", json.loads(rest)["data"][0]), RECV) == []
    assert a.last_channel == "index"


# --------------------------------------------------------------------------- options

OPT = "BTC-USD-241013-70000-P"
# Public Data WS, Option summary channel, push example (as published).
OPT_SUMMARY_DOC = {"instType": "OPTION", "instId": OPT, "uly": "BTC-USD", "delta": "-1.1180902625",
                   "gamma": "2.2361957091", "vega": "0.0000000001", "theta": "0.0000032334", "lever": "8.465747567",
                   "markVol": "0.3675503331", "bidVol": "0", "askVol": "1.1669998535", "realVol": "",
                   "deltaBS": "-0.9999672034", "gammaBS": "0.0000000002", "thetaBS": "28.2649858387",
                   "vegaBS": "0.0000114332", "ts": "1728703155650", "fwdPx": "62604.6993093463",
                   "volLv": "0.2044711229"}


def test_okx_option_summary_has_fraction_ivs_and_black_scholes_greeks():
    [ev] = adapter(OPTIONS).parse(push("opt-summary", "instFamily", "BTC-USD", OPT_SUMMARY_DOC), RECV)
    assert ev == OptionTicker(
        exchange="okx", symbol="BTC-USD-20241013-70000-P", raw_symbol=OPT, ts=1728703155650, recv_ts=RECV,
        underlying="BTC", expiry="2024-10-13", strike=70000.0, kind="P", mark_price_usd=None,
        mark_iv=0.3675503331, bid_iv=None, ask_iv=1.1669998535, delta=-0.9999672034, gamma=0.0000000002,
        vega=0.0000114332, theta=28.2649858387, underlying_price=62604.6993093463, open_interest=None,
        volume_24h=None)


def side_events_of(a, frames):
    return [e for f in frames for e in a.parse(f, RECV)]


def test_okx_option_mark_usd_is_coin_mark_times_index_with_oi_and_volume_in_base():
    a = adapter(OPTIONS)
    # Channel push shapes as documented; values for this option.
    side_frames = [
        push("mark-price", "instId", OPT, {"instType": "OPTION", "instId": OPT, "markPx": "0.1185",
                                            "ts": "1728703155000"}),
        push("index-tickers", "instId", "BTC-USD", {"instId": "BTC-USD", "idxPx": "62600.5", "high24h": "63000",
                                                     "low24h": "62000", "open24h": "62500", "sodUtc0": "62400",
                                                     "sodUtc8": "62450", "ts": "1728703155100"}),
        push("open-interest", "instId", OPT, {"instType": "OPTION", "instId": OPT, "oi": "120", "oiCcy": "1.2",
                                               "oiUsd": "75120.6", "ts": "1728703155200"}),
        push("tickers", "instId", OPT, {"instType": "OPTION", "instId": OPT, "last": "0.118", "askPx": "0.119",
                                         "bidPx": "0.1175", "vol24h": "350", "volCcy24h": "3.5",
                                         "ts": "1728703155300"}),
    ]
    side_events = side_events_of(a, side_frames)
    # Option mark and ticker rows are in coin and the index is no instrument: only the OI row yields an event.
    assert [(type(e).__name__, e.raw_symbol) for e in side_events] == [("OpenInterest", OPT)]
    [ev] = a.parse(push("opt-summary", "instFamily", "BTC-USD", OPT_SUMMARY_DOC), RECV)
    assert ev.mark_price_usd == pytest.approx(0.1185 * 62600.5, rel=1e-12)
    assert (ev.open_interest, ev.volume_24h) == (1.2, 3.5)


def test_okx_rest_option_marks_and_index_value_the_option_in_usd():
    a = adapter(OPTIONS)
    # Public Data REST, Get mark price, response shape as documented; values for this option.
    a.parse_rest("mark_price", body({"instType": "OPTION", "instId": OPT, "markPx": "0.1185", "ts": "1"}), RECV)
    a.parse_rest("index_tickers", body({"instId": "BTC-USD", "idxPx": "62600.5", "ts": "2"}), RECV)
    [ev] = a.parse_rest("opt_summary", body(OPT_SUMMARY_DOC), RECV)
    assert ev.mark_price_usd == pytest.approx(0.1185 * 62600.5, rel=1e-12)


def test_okx_option_without_metadata_keeps_name_fields_and_rest_reads_the_same():
    rest = body(OPT_SUMMARY_DOC)
    [ev] = adapter().parse_rest("opt_summary", rest, RECV)
    assert (ev.symbol, ev.underlying, ev.expiry, ev.strike, ev.kind) == (
        "BTC-USD-20241013-70000-P", "BTC", "2024-10-13", 70000.0, "P")


def test_okx_usd_margined_option_family_is_unified_only_from_metadata():
    um = "BTC-USD_UM-260321-70000-C"
    row = dict(OPT_SUMMARY_DOC, instId=um, uly="BTC-USD")
    [bare] = adapter().parse(push("opt-summary", "instFamily", "BTC-USD_UM", row), RECV)
    assert (bare.symbol, bare.underlying, bare.expiry, bare.kind) == (None, "BTC", "2026-03-21", "C")
    meta = body(dict(swap(um, "0.01", "BTC", "", "USDT"), instType="OPTION", instFamily="BTC-USD_UM",
                     uly="BTC-USD", optType="C", stk="70000", expTime="1774080000000"))
    [ev] = adapter(meta).parse(push("opt-summary", "instFamily", "BTC-USD_UM", row), RECV)
    assert ev.symbol == "BTC-USDT-20260321-70000-C"


# --------------------------------------------------------------------------- instruments and symbols


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("BTC-USDT-SWAP", "BTC-USDT-PERP"), ("BTC-USD-SWAP", "BTC-USD-PERP"), ("ETH-USDC-SWAP", "ETH-USDC-PERP"),
     ("BTC-USD-250926", "BTC-USD-20250926"), ("BTC-USDT-261225", "BTC-USDT-20261225"),
     ("BTC-USD-250926-100000-C", "BTC-USD-20250926-100000-C"), ("ETH-USD-250926-2500.5-P", "ETH-USD-20250926-2500.5-P"),
     ("1INCH-USDT-SWAP", "1INCH-USDT-PERP"), ("BTC-USD_UM_XPERP-310404", None), ("BTC-USDT", None),
     ("BTC-USD-251399", None), ("btc-usdt-swap", None), ("", None)],
)
def test_okx_unified_symbol_from_the_naming_rule(raw, expected):
    assert unified(raw) == expected


def test_okx_name_alone_never_gives_a_contract_size():
    inst = instrument_from_name("BTC-USD-SWAP")
    assert inst is not None
    assert (inst.inverse, inst.contract_size, inst.settle) == (True, None, "BTC")


def test_okx_instruments_give_contract_sizes_and_expiries():
    a = adapter(SWAPS, FUTURES, OPTIONS)
    btc_usd = a.instrument("BTC-USD-SWAP")
    fut = a.instrument("BTC-USD-250926")
    opt = a.instrument(OPT)
    assert btc_usd is not None
    assert fut is not None
    assert opt is not None
    assert (btc_usd.inverse, btc_usd.contract_size, btc_usd.symbol) == (True, 100.0, "BTC-USD-PERP")
    assert (fut.kind, fut.expiry_ms, fut.symbol) == ("future", 1758873600000, "BTC-USD-20250926")
    assert (opt.kind, opt.strike, opt.option_kind, opt.contract_size, opt.settle) == ("option", 70000.0, "P", 0.01,
                                                                                      "BTC")
    assert len(a.instruments()) == 8


def test_okx_instrument_rows_that_cannot_be_read_are_skipped():
    bad = body(dict(swap("BTC-USDT-SWAP", "0.01", "BTC", "linear", "USDT"), ctVal="abc"),
               swap("BTC-USD-SWAP", "100", "USD", "inverse", "BTC"),
               {"instType": "SPOT", "instId": "BTC-USDT", "baseCcy": "BTC", "quoteCcy": "USDT"})
    a = OkxAdapter()
    assert a.load_instruments(bad) == 1
    assert a.stats.errors["instrument_row"] == 1


# --------------------------------------------------------------------------- REST envelopes


def test_okx_rest_error_code_is_a_string_and_rejected_naming_code_and_message():
    err = '{"code":"51001","msg":"Instrument ID, Instrument ID code or Spread ID doesn\'t exist.","data":[]}'
    with pytest.raises(FrameError, match="51001") as info:
        adapter().parse_rest("open_interest", err, RECV)
    assert info.value.reason == "rejected"
    assert "doesn't exist" in info.value.detail


def test_okx_rate_limit_inside_http_200_is_rate_limited():
    err = '{"code":"50011","msg":"Rate limit reached. Please refer to API documentation and throttle requests ' \
          'accordingly.","data":[]}'
    with pytest.raises(FrameError) as info:
        adapter().parse_rest("funding_rate", err, RECV)
    assert info.value.reason == "rate_limited"


def test_okx_rest_instruments_error_body_is_not_loaded():
    with pytest.raises(FrameError):
        OkxAdapter().load_instruments('{"code":"50011","msg":"Too Many Requests","data":[]}')


def test_okx_rest_calls_name_the_documented_paths():
    a = adapter(SWAPS)
    assert [(c.endpoint, c.path, c.params) for c in a.rest_instruments()] == [
        ("instruments", "/api/v5/public/instruments", {"instType": "SWAP"}),
        ("instruments", "/api/v5/public/instruments", {"instType": "FUTURES"}),
        ("instruments", "/api/v5/public/instruments", {"instType": "OPTION", "instFamily": "BTC-USD"}),
        ("instruments", "/api/v5/public/instruments", {"instType": "OPTION", "instFamily": "ETH-USD"})]
    oi = a.rest_open_interest("BTC-USD-250926", ttl_s=5)
    assert (oi.path, oi.params) == ("/api/v5/public/open-interest", {"instType": "FUTURES", "instId": "BTC-USD-250926"})
    assert a.rest_funding("BTC-USDT-SWAP").params == {"instId": "BTC-USDT-SWAP"}
    liq_call = a.rest_liquidations("SWAP", "BTC-USDT")
    assert (liq_call.path, liq_call.params) == ("/api/v5/public/liquidation-orders",
                                                {"instType": "SWAP", "instFamily": "BTC-USDT", "state": "filled",
                                                 "limit": "100"})
    assert a.rest_opt_summary("BTC-USD").params == {"instFamily": "BTC-USD"}


# --------------------------------------------------------------------------- control frames and subscriptions


@pytest.mark.parametrize(
    "frame",
    [
        "pong",
        b"pong",
        '{"event":"subscribe","arg":{"channel":"open-interest","instId":"LTC-USD-SWAP"},"connId":"a4d3ae55"}',
        '{"event":"unsubscribe","arg":{"channel":"tickers","instId":"BTC-USDT"},"connId":"a4d3ae55"}',
        '{"event":"error","code":"60012","msg":"Invalid request: {\\"op\\": \\"subscribe\\", \\"argss\\":[]}",'
        '"connId":"a4d3ae55"}',
        '{"event":"notice","code":"64008","msg":"The connection will soon be closed for a service upgrade. '
        'Please reconnect.","connId":"a4d3ae55"}',
    ],
)
def test_okx_pong_and_event_frames_are_counted_control(frame):
    a = adapter()
    assert a.parse(frame, RECV) == []
    assert (a.stats.control, a.stats.events, a.last_channel) == (1, 0, None)


def test_okx_error_event_is_kept_for_the_caller():
    a = adapter()
    a.parse('{"event":"error","code":"60018","msg":"Wrong URL or channel:x doesn\'t exist.","connId":"1"}', RECV)
    assert a.control_events["error"] == 1
    assert a.last_error is not None
    assert a.last_error.startswith("60018")


def test_okx_unmapped_channel_is_ignored():
    a = adapter()
    frame = push("trades", "instId", "BTC-USDT", {"instId": "BTC-USDT", "tradeId": "9", "px": "0.016", "sz": "50",
                                                   "side": "buy", "ts": "1597026383085"})
    assert a.parse(frame, RECV) == []
    assert a.stats.ignored == 1


def test_okx_known_channel_push_without_data_is_a_frame_error():
    with pytest.raises(FrameError, match="funding-rate"):
        adapter().parse('{"arg":{"channel":"funding-rate","instId":"BTC-USD-SWAP"}}', RECV)


def test_okx_rest_cover_polls_funding_and_mark_of_the_configured_symbols():
    a = adapter(SWAPS, FUTURES)
    calls = a.rest_cover("public", ["BTC-USDT-SWAP", "BTC-USD-250926"])
    assert [(c.endpoint, c.params) for c in calls] == [
        ("funding_rate", {"instId": "BTC-USDT-SWAP"}),
        ("mark_price", {"instType": "SWAP", "instId": "BTC-USDT-SWAP"}),
        ("mark_price", {"instType": "FUTURES", "instId": "BTC-USD-250926"}),
    ]


def test_okx_subscribe_maps_channels_dedupes_and_uses_string_ids():
    a = adapter(SWAPS, FUTURES)
    [frame] = a.subscribe([
        Stream("liquidations"), Stream("funding", "BTC-USDT-SWAP"), Stream("funding", "BTC-USDT-SWAP"),
        Stream("ticker", "BTC-USD-SWAP"), Stream("book", "BTC-USD-SWAP"), Stream("mark", "BTC-USD-250926"),
        Stream("open_interest", "BTC-USDT-SWAP"), Stream("index", "BTC-USDT-SWAP"), Stream("index", "BTC-USDT-250926"),
        Stream("options", "BTC-USD"), Stream("liquidations", "BTC-USD-250926"),
    ])
    assert json.loads(frame) == {"id": "1", "op": "subscribe", "args": [
        {"channel": "liquidation-orders", "instType": "SWAP"},
        {"channel": "liquidation-orders", "instType": "FUTURES"},
        {"channel": "funding-rate", "instId": "BTC-USDT-SWAP"},
        {"channel": "tickers", "instId": "BTC-USD-SWAP"},
        {"channel": "mark-price", "instId": "BTC-USD-250926"},
        {"channel": "open-interest", "instId": "BTC-USDT-SWAP"},
        {"channel": "index-tickers", "instId": "BTC-USDT"},
        {"channel": "opt-summary", "instFamily": "BTC-USD"},
    ]}
    assert json.loads(a.subscribe([Stream("liquidations", "BTC-USDT-SWAP")])[0]) == {
        "id": "2", "op": "subscribe", "args": [{"channel": "liquidation-orders", "instType": "SWAP"}]}


def test_okx_subscribe_keeps_each_request_under_64_kb_of_args():
    streams = [Stream("funding", f"COIN{i}-USDT-SWAP") for i in range(3000)]
    frames = OkxAdapter().subscribe(streams)
    assert len(frames) > 1
    args = [arg for f in frames for arg in json.loads(f)["args"]]
    assert [a["instId"] for a in args] == [s.raw_symbol for s in streams]
    assert all(len(json.dumps(json.loads(f)["args"], separators=(",", ":"))) <= 64 * 1024 for f in frames)


def test_okx_streams_without_an_instrument_where_okx_needs_one_raise():
    with pytest.raises(ValueError, match="funding-rate"):
        OkxAdapter().subscribe([Stream("funding")])


def test_okx_stream_keys_name_the_subscription():
    a = adapter(SWAPS)
    assert a.stream_key(Stream("liquidations")) == "liquidation-orders"
    assert a.stream_key(Stream("index", "BTC-USD-SWAP")) == "index-tickers:BTC-USD"
    a.parse(push("index-tickers", "instId", "BTC-USD", {"instId": "BTC-USD", "idxPx": "1", "ts": "1"}), RECV)
    assert (a.last_channel, a.last_stream_key) == ("index", "index-tickers:BTC-USD")


def test_okx_heartbeat_is_a_text_ping_inside_30_seconds():
    hb = OkxAdapter().heartbeat()
    assert hb.ping_payload == "ping"
    assert hb.ping_interval_s is not None
    assert 0 < hb.ping_interval_s < 30


def test_okx_bad_row_is_skipped_and_the_others_kept():
    a = adapter()
    frame = push("funding-rate", "instId", "BTC-USD-SWAP", dict(FUNDING_DOC, fundingRate="abc"), FUNDING_DOC)
    [ev] = a.parse(frame, RECV)
    assert ev.rate == 0.0001875391284828
    assert a.stats.errors["element"] == 1


# --------------------------------------------------------------------------- garbage

GOOD = [LIQ_DOC, push("funding-rate", "instId", "BTC-USD-SWAP", FUNDING_DOC),
        push("opt-summary", "instFamily", "BTC-USD", OPT_SUMMARY_DOC),
        push("open-interest", "instId", "LTC-USD-SWAP", {"instType": "SWAP", "instId": "LTC-USD-SWAP", "oi": "5000",
                                                          "oiCcy": "555.55", "ts": "1597026383085"})]
KEYS = ["arg", "data", "event", "channel", "instId", "instType", "instFamily", "details", "side", "posSide", "bkPx",
        "sz", "ts", "fundingRate", "fundingTime", "nextFundingTime", "markPx", "idxPx", "oi", "markVol", "code"]
CHANNEL_NAMES = ["liquidation-orders", "funding-rate", "mark-price", "tickers", "open-interest", "index-tickers",
                 "opt-summary"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(10**30), max_value=10**30) | st.floats(allow_nan=False)
    | st.sampled_from(["", "nan", "inf", "-1e400", "1e30", "sell", "buy", "net", "long", *CHANNEL_NAMES,
                       "BTC-USD-SWAP", "BTC-USD-241013-70000-P"])
    | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(KEYS) | st.text(max_size=3), children, max_size=6),
    max_leaves=20,
)


def _events_are_clean(events):
    for ev in events:
        msgspec.json.encode(ev)
        for name in msgspec.structs.asdict(ev):
            v = getattr(ev, name)
            assert not isinstance(v, float) or math.isfinite(v), (name, v)  # never NaN or inf


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(GOOD), st.integers(min_value=0, max_value=600))
def test_okx_truncated_frames_raise_only_frame_error(frame, cut):
    try:
        adapter(SWAPS, OPTIONS).parse(frame[: min(cut, len(frame))], RECV)
    except FrameError:
        pass


@settings(max_examples=600, deadline=None)
@given(json_values)
def test_okx_arbitrary_json_raises_only_frame_error(value):
    try:
        events = adapter(SWAPS, OPTIONS).parse(msgspec.json.encode(value), RECV)
    except FrameError:
        return
    _events_are_clean(events)


@settings(max_examples=600, deadline=None)
@given(st.sampled_from(CHANNEL_NAMES), st.lists(st.dictionaries(st.sampled_from(KEYS), json_values, max_size=6),
                                                max_size=3))
def test_okx_arbitrary_rows_of_known_channels_raise_only_frame_error(channel, rows):
    frame = msgspec.json.encode({"arg": {"channel": channel, "instId": "BTC-USD-SWAP"}, "data": rows})
    try:
        events = adapter(SWAPS, OPTIONS).parse(frame, RECV)
    except FrameError:
        return
    _events_are_clean(events)


BAD_VALUES = st.none() | st.sampled_from(["", "nan", "inf", "abc", "1e400", "-5", "1e30", "1e308", 1e308, -5,
                                          10**40, [], {}, True, "0"])


@settings(max_examples=600, deadline=None)
@given(st.sampled_from(range(len(GOOD))), st.sampled_from(KEYS), BAD_VALUES)
def test_okx_wrong_values_in_known_fields_raise_only_frame_error(which, key, value):
    frame = json.loads(GOOD[which])
    row = frame["data"][0]
    target = row["details"][0] if "details" in row and key in row["details"][0] else row
    target[key] = value
    try:
        events = adapter(SWAPS, OPTIONS).parse(json.dumps(frame), RECV)
    except FrameError:
        return
    _events_are_clean(events)


REST_BODIES = {
    "funding_rate": body(FUNDING_DOC),
    "open_interest": body({"instType": "SWAP", "instId": "BTC-USDT-SWAP", "oi": "5000", "oiCcy": "555.55",
                           "oiUsd": "50000", "ts": "1597026383085"}),
    "open_interest_history:BTC-USDT-SWAP": body(["1700000000000", "1500000", "15000", "550000000"]),
    "opt_summary": body(OPT_SUMMARY_DOC),
    "instruments": SWAPS,
}


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(sorted(REST_BODIES)), st.integers(min_value=0, max_value=800) | json_values)
def test_okx_rest_garbage_raises_only_frame_error(endpoint, garbage):
    text = REST_BODIES[endpoint]
    frame = text[: min(garbage, len(text))] if isinstance(garbage, int) and not isinstance(garbage, bool) else (
        msgspec.json.encode({"code": "0", "msg": "", "data": garbage}).decode())
    try:
        events = adapter(SWAPS).parse_rest(endpoint, frame, RECV)
    except FrameError:
        return
    _events_are_clean(events)


def test_rest_poll_keeps_option_marks_oi_volume_and_index_fresh_for_listed_families_only():
    a = adapter(OPTIONS)  # BTC-USD options only; ETH-USD is a default family with nothing listed
    calls = a.rest_poll(["liquidations", "options"])
    assert [(c.endpoint, c.path, c.params) for c in calls] == [
        ("index_tickers", "/api/v5/market/index-tickers", {"instId": "BTC-USD"}),
        ("mark_price", "/api/v5/public/mark-price", {"instType": "OPTION", "instFamily": "BTC-USD"}),
        ("open_interest", "/api/v5/public/open-interest", {"instType": "OPTION", "instFamily": "BTC-USD"}),
        ("tickers", "/api/v5/market/tickers", {"instType": "OPTION", "instFamily": "BTC-USD"}),
    ]
    assert a.rest_poll(["liquidations", "funding"]) == []
    assert adapter().rest_poll(["options"]) == []


# --------------------------------------------------------------------------- one-shot snapshots


def _okx_snapshot_adapter() -> OkxAdapter:
    from streamer.model import Instrument

    a = OkxAdapter()
    a.meta.add(Instrument(exchange="okx", raw_symbol="BTC-USDT-SWAP", kind="perpetual", base="BTC", quote="USDT",
                          contract_size=0.01))
    a.meta.add(Instrument(exchange="okx", raw_symbol="BTC-USD-261225", kind="future", base="BTC", quote="USD",
                          inverse=True, contract_size=100.0, expiry_ms=1_798_185_600_000))
    return a


def test_snapshot_calls_liquidation_paging_and_long_short():
    a = _okx_snapshot_adapter()
    liq = a.snapshot_calls("liquidations", ["BTC"])
    assert [(c.params["instType"], c.params["instFamily"], c.params["state"]) for c in liq] == [
        ("SWAP", "BTC-USDT", "filled"), ("FUTURES", "BTC-USD", "filled")]
    page = json.dumps({"code": "0", "msg": "", "data": [{"instId": "BTC-USDT-SWAP", "instType": "SWAP", "details": [
        {"side": "sell", "posSide": "long", "bkPx": "90000", "sz": "2", "ts": "1700000005000"},
        {"side": "buy", "posSide": "short", "bkPx": "90010", "sz": "1", "ts": "1700000001000"}]}]})
    nxt = a.snapshot_next(liq[0], page, since_ms=1_699_999_000_000, pages=1)
    assert nxt is not None
    assert nxt.params["after"] == "1700000001000"
    assert a.snapshot_next(liq[0], page, since_ms=1_700_000_002_000, pages=1) is None  # window reached
    assert a.snapshot_next(liq[0], page, since_ms=0, pages=a.LIQUIDATION_PAGES) is None  # page cap
    assert a.snapshot_next(liq[0], json.dumps({"code": "0", "data": []}), since_ms=0, pages=1) is None
    oi = a.snapshot_calls("oi", ["BTC"])
    [ls] = [c for c in oi if c.endpoint == "long_short_ratio"]
    body = json.dumps({"code": "0", "msg": "", "data": [["1630502100000", "1.25"]]})
    assert a.parse_long_short(body, ls.params) == [("BTC", 1630502100000, 1.25, None, None)]
    assert [c.endpoint for c in oi][:2] == ["mark_price", "mark_price"]


def test_snapshot_enrich_joins_mark_and_index():
    a = _okx_snapshot_adapter()
    a.parse_rest("index_tickers", json.dumps({"code": "0", "data": [{"instId": "BTC-USDT", "idxPx": "95000",
                                                                     "ts": "1"}]}), RECV)
    evs = a.parse_rest("mark_price", json.dumps({"code": "0", "data": [
        {"instId": "BTC-USDT-SWAP", "instType": "SWAP", "markPx": "95100", "ts": "2"}]}), RECV)
    evs += a.parse_rest("funding_rate", json.dumps({"code": "0", "data": [
        {"instId": "BTC-USDT-SWAP", "fundingRate": "0.0001", "fundingTime": "1700006400000",
         "nextFundingTime": "1700035200000", "ts": "1700000000000"}]}), RECV)
    ticker, funding = a.snapshot_enrich(evs)
    assert isinstance(ticker, Ticker)
    assert (ticker.mark_price, ticker.index_price) == (95100.0, 95000.0)
    assert isinstance(funding, Funding)
    assert (funding.mark_price, funding.index_price) == (95100.0, 95000.0)
