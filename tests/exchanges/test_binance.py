"""Binance adapter: behaviours named one by one (sides, units, intervals, envelopes, garbage)."""

from __future__ import annotations

import json

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamer.exchanges.base import FrameError, Stream
from streamer.exchanges.binance import BinanceAdapter, instrument_from_name
from streamer.model import Funding, Liquidation, OpenInterest, Ticker

RECV = 1_767_225_600_123

CM_INFO = json.dumps(
    {
        "timezone": "UTC",
        "symbols": [
            {"symbol": "BTCUSD_PERP", "pair": "BTCUSD", "contractType": "PERPETUAL", "deliveryDate": 4133404800000,
             "contractStatus": "TRADING", "contractSize": 100, "marginAsset": "BTC", "baseAsset": "BTC",
             "quoteAsset": "USD"},
            {"symbol": "ETHUSD_PERP", "pair": "ETHUSD", "contractType": "PERPETUAL", "deliveryDate": 4133404800000,
             "contractStatus": "TRADING", "contractSize": 10, "marginAsset": "ETH", "baseAsset": "ETH",
             "quoteAsset": "USD"},
            {"symbol": "BTCUSD_261225", "pair": "BTCUSD", "contractType": "CURRENT_QUARTER",
             "deliveryDate": 1798185600000, "contractStatus": "TRADING", "contractSize": 100, "marginAsset": "BTC",
             "baseAsset": "BTC", "quoteAsset": "USD"},
        ],
    }
)
UM_INFO = json.dumps(
    {
        "symbols": [
            {"symbol": "BTCUSDT", "pair": "BTCUSDT", "contractType": "PERPETUAL", "deliveryDate": 4133404800000,
             "status": "TRADING", "baseAsset": "BTC", "quoteAsset": "USDT", "marginAsset": "USDT"},
            {"symbol": "BTCUSDT_261225", "pair": "BTCUSDT", "contractType": "CURRENT_QUARTER",
             "deliveryDate": 1798185600000, "status": "TRADING", "baseAsset": "BTC", "quoteAsset": "USDT",
             "marginAsset": "USDT"},
        ]
    }
)
FUNDING_INFO = json.dumps(
    [{"symbol": "AXLUSDT", "adjustedFundingRateCap": "0.02", "adjustedFundingRateFloor": "-0.02",
      "fundingIntervalHours": 4, "disclaimer": False}]
)


def force_order(symbol: str, side: str, z: str, ap: str, p: str = "9910", t: int = 1568014460893) -> str:
    return json.dumps(
        {"e": "forceOrder", "E": t + 7, "o": {"s": symbol, "S": side, "o": "LIMIT", "f": "IOC", "q": z, "p": p,
                                                "ap": ap, "X": "FILLED", "l": z, "z": z, "T": t}}
    )


def adapter(*bodies: str) -> BinanceAdapter:
    a = BinanceAdapter()
    for body in bodies:
        a.load_instruments(body)
    return a


def test_binance_sell_force_order_is_long_liquidation():
    [ev] = adapter().parse(force_order("BTCUSDT", "SELL", "0.014", "9910"), RECV)
    assert ev == Liquidation(exchange="binance", symbol="BTC-USDT-PERP", raw_symbol="BTCUSDT", ts=1568014460893,
                             recv_ts=RECV, side="long", price=9910.0, qty=0.014, value_usd=0.014 * 9910.0)


def test_binance_buy_force_order_is_short_liquidation():
    [ev] = adapter().parse(force_order("ETHUSDT", "BUY", "2.5", "3000.5"), RECV)
    assert (ev.side, ev.qty, ev.value_usd) == ("short", 2.5, 2.5 * 3000.5)


def test_liquidation_ts_is_trade_time_not_push_time():
    [ev] = adapter().parse(force_order("BTCUSDT", "SELL", "1", "100", t=1700000000000), RECV)
    assert ev.ts == 1700000000000


def test_zero_average_price_falls_back_to_order_price():
    [ev] = adapter().parse(force_order("BTCUSDT", "SELL", "1", "0", p="9000"), RECV)
    assert (ev.price, ev.value_usd) == (9000.0, 9000.0)


def test_coin_m_liquidation_converts_contracts_to_base_and_usd():
    [ev] = adapter(CM_INFO).parse(force_order("BTCUSD_PERP", "SELL", "10", "59000.5"), RECV)
    assert ev.symbol == "BTC-USD-PERP"
    assert ev.value_usd == 1000.0  # 10 contracts x 100 USD
    assert ev.qty == pytest.approx(1000.0 / 59000.5, rel=1e-12)


def test_coin_m_liquidation_without_metadata_is_emitted_with_null_size():
    a = adapter()
    [ev] = a.parse(force_order("ETHUSD_PERP", "BUY", "3", "2500"), RECV)
    assert (ev.side, ev.price, ev.qty, ev.value_usd, ev.symbol) == ("short", 2500.0, None, None, "ETH-USD-PERP")
    assert a.stats.unmapped["contract_size"] == 1


def test_combined_envelope_and_raw_payload_give_the_same_event():
    raw = force_order("BTCUSDT", "SELL", "0.5", "100")
    combined = json.dumps({"stream": "btcusdt@forceOrder", "data": json.loads(raw)})
    assert adapter().parse(raw, RECV) == adapter().parse(combined, RECV)


MARK = {"e": "markPriceUpdate", "E": 1562305380000, "s": "BTCUSDT", "p": "11794.15000000",
        "i": "11784.62659091", "P": "11784.25641265", "r": "0.00038167", "T": 1562306400000}


def test_mark_price_without_funding_info_leaves_interval_null():
    funding, ticker = adapter().parse(json.dumps(MARK), RECV)
    assert isinstance(funding, Funding)
    assert (funding.rate, funding.interval_h, funding.rate_8h, funding.annualized) == (0.00038167, None, None, None)
    assert funding.next_funding_ts == 1562306400000
    assert isinstance(ticker, Ticker)
    assert (ticker.mark_price, ticker.index_price, ticker.last) == (11794.15, 11784.62659091, None)


def test_funding_info_loaded_means_unlisted_symbol_is_on_8h():
    funding, _ = adapter(FUNDING_INFO).parse(json.dumps(MARK), RECV)
    assert (funding.interval_h, funding.rate_8h) == (8.0, 0.00038167)
    assert funding.annualized == pytest.approx(0.00038167 * 3 * 365, rel=1e-12)


def test_funding_info_interval_scales_rate_8h():
    frame = dict(MARK, s="AXLUSDT", r="0.0005")
    funding, _ = adapter(FUNDING_INFO).parse(json.dumps(frame), RECV)
    assert (funding.interval_h, funding.rate_8h) == (4.0, 0.001)
    assert funding.annualized == pytest.approx(0.0005 * 6 * 365, rel=1e-12)


def test_delivery_contract_mark_price_yields_no_funding():
    frame = dict(MARK, s="BTCUSDT_261225", r="", T=0)
    [ticker] = adapter(UM_INFO).parse(json.dumps(frame), RECV)
    assert isinstance(ticker, Ticker)
    assert (ticker.symbol, ticker.mark_price) == ("BTC-USDT-20261225", 11794.15)


def test_all_market_mark_price_array_yields_events_per_symbol():
    frame = json.dumps([MARK, dict(MARK, s="ETHUSDT", p="3000", i="2999", r="-0.0001")])
    events = adapter().parse(frame, RECV)
    assert [(type(e).__name__, e.raw_symbol) for e in events] == [
        ("Funding", "BTCUSDT"), ("Ticker", "BTCUSDT"), ("Funding", "ETHUSDT"), ("Ticker", "ETHUSDT")]


def test_ticker_volume_usd_is_quote_volume_on_um_and_contracts_times_face_on_cm():
    um = {"e": "24hrTicker", "E": 123456789, "s": "BTCUSDT", "p": "0.1", "P": "0.01", "w": "0.1", "c": "100.5",
          "Q": "10", "o": "0.1", "h": "0.1", "l": "0.1", "v": "1000", "q": "100000.5", "O": 0, "C": 86400000,
          "F": 0, "L": 18150, "n": 18151}
    cm = dict(um, s="BTCUSD_PERP", ps="BTCUSD", v="500", q="8.5")
    [a] = adapter(CM_INFO).parse(json.dumps(um), RECV)
    [b] = adapter(CM_INFO).parse(json.dumps(cm), RECV)
    assert (a.last, a.volume_24h_usd) == (100.5, 100000.5)
    assert b.volume_24h_usd == 50000.0  # 500 contracts x 100 USD


def test_book_ticker_gives_bid_and_ask_at_transaction_time():
    frame = {"e": "bookTicker", "u": 400900217, "E": 1568014460893, "T": 1568014460891, "s": "BNBUSDT",
             "b": "25.35190000", "B": "31.21000000", "a": "25.36520000", "A": "40.66000000"}
    [ev] = adapter().parse(json.dumps(frame), RECV)
    assert (ev.bid, ev.ask, ev.ts, ev.symbol) == (25.3519, 25.3652, 1568014460891, "BNB-USDT-PERP")


@pytest.mark.parametrize(
    "frame",
    [
        '{"result":null,"id":1}',
        '{"result":["btcusdt@forceOrder"],"id":3}',
        '{"error":{"code":2,"msg":"Invalid request"},"id":4}',
        '{"e":"depthUpdate","E":1,"T":1,"s":"BTCUSDT","U":1,"u":2,"pu":0,"b":[],"a":[]}',
        '{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1,"s":"BTCUSDT","a":5,"p":"1","q":"1"}}',
        "[]",
    ],
)
def test_control_and_unmapped_frames_yield_nothing(frame):
    assert adapter().parse(frame, RECV) == []


def test_subscribe_frames_carry_lowercase_streams_and_fresh_ids():
    a = adapter()
    frames = a.subscribe([Stream("liquidations"), Stream("funding", "BTCUSDT"), Stream("ticker")])
    assert json.loads(frames[0]) == {"method": "SUBSCRIBE", "id": 1,
                                     "params": ["!forceOrder@arr", "btcusdt@markPrice@1s", "!ticker@arr"]}
    assert json.loads(a.subscribe([Stream("book", "ETHUSDT")])[0])["id"] == 2


def test_subscribe_is_chunked():
    frames = adapter().subscribe([Stream("funding", f"S{i}USDT") for i in range(250)])
    assert [len(json.loads(f)["params"]) for f in frames] == [100, 100, 50]


def test_rest_open_interest_cm_is_contracts_times_face_value():
    a = adapter(CM_INFO)
    a.parse_rest("premiumIndex", json.dumps(
        [{"symbol": "BTCUSD_PERP", "pair": "BTCUSD", "markPrice": "50000", "indexPrice": "49990",
          "estimatedSettlePrice": "1", "lastFundingRate": "0.0001", "interestRate": "0.0001",
          "nextFundingTime": 1700006400000, "time": 1700000000000}]), RECV)
    [ev] = a.parse_rest("openInterest", json.dumps(
        {"symbol": "BTCUSD_PERP", "pair": "BTCUSD", "openInterest": "1500", "contractType": "PERPETUAL",
         "time": 1700000001000}), RECV)
    assert ev == OpenInterest(exchange="binance", symbol="BTC-USD-PERP", raw_symbol="BTCUSD_PERP",
                              ts=1700000001000, recv_ts=RECV, oi_contracts=1500.0, oi_base=3.0, oi_usd=150000.0)


def test_rest_error_body_is_a_frame_error_naming_the_code():
    with pytest.raises(FrameError, match="-1121"):
        adapter().parse_rest("openInterest", '{"code":-1121,"msg":"Invalid symbol."}', RECV)


@pytest.mark.parametrize(
    ("raw", "unified"),
    [("BTCUSDT", "BTC-USDT-PERP"), ("ETHUSDC", "ETH-USDC-PERP"), ("BTCUSDT_261225", "BTC-USDT-20261225"),
     ("BTCUSD_PERP", "BTC-USD-PERP"), ("ETHUSD_270326", "ETH-USD-20270326"), ("1000PEPEUSDT", "1000PEPE-USDT-PERP")],
)
def test_unified_symbol_from_binance_name(raw, unified):
    inst = instrument_from_name(raw)
    assert inst is not None
    assert inst.symbol == unified


# --------------------------------------------------------------------------- garbage

GOOD = [force_order("BTCUSDT", "SELL", "1", "100"), json.dumps(MARK),
        json.dumps({"stream": "x", "data": [MARK]})]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False) | st.sampled_from(["", "nan", "inf", "-1e400", "SELL", "BUY", "forceOrder"])
    | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["e", "E", "o", "s", "S", "z", "ap", "p", "r", "T", "stream", "data", "result", "id", "i"])
        | st.text(max_size=3), children, max_size=6),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(GOOD), st.integers(min_value=0, max_value=400))
def test_truncated_frames_raise_only_frame_error(frame, cut):
    try:
        adapter(CM_INFO).parse(frame[: min(cut, len(frame))], RECV)
    except FrameError:
        pass


@settings(max_examples=600, deadline=None)
@given(json_values)
def test_arbitrary_json_raises_only_frame_error(value):
    try:
        events = adapter(CM_INFO).parse(msgspec.json.encode(value), RECV)
    except FrameError:
        return
    for ev in events:
        msgspec.json.encode(ev)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(["o.z", "o.ap", "o.S", "o.T", "p", "r", "T", "E", "o"]),
       st.none() | st.sampled_from(["", "nan", "inf", "abc", 1e309, -5, 10**40, [], {}, True]))
def test_wrong_types_in_known_fields_raise_only_frame_error(field, value):
    base = json.loads(GOOD[0]) if field.startswith("o") else dict(MARK)
    if "." in field:
        _, key = field.split(".")
        base["o"][key] = value
    else:
        base[field] = value
    try:
        events = adapter().parse(json.dumps(base), RECV)
    except FrameError:
        return
    for ev in events:
        for name in ("price", "qty", "value_usd", "rate", "mark_price"):
            v = getattr(ev, name, None)
            assert v is None or v == v  # never NaN


def test_empty_funding_info_from_one_market_does_not_default_the_other():
    a = adapter()
    a.load_instruments("[]", market="cm")
    funding, _ = a.parse(json.dumps(MARK), RECV)  # BTCUSDT is a UM symbol: UM fundingInfo never loaded
    assert (funding.interval_h, funding.rate_8h) == (None, None)


# --------------------------------------------------------------------------- one-shot snapshots


def _snapshot_adapter() -> BinanceAdapter:
    from streamer.model import Instrument

    a = BinanceAdapter()
    a.meta.add(Instrument(exchange="binance", raw_symbol="BTCUSDT", kind="perpetual", base="BTC", quote="USDT"))
    a.meta.add(Instrument(exchange="binance", raw_symbol="BTCUSD_PERP", kind="perpetual", base="BTC", quote="USD",
                          inverse=True, contract_size=100.0))
    a.meta.add(Instrument(exchange="binance", raw_symbol="BTCUSD_261225", kind="future", base="BTC", quote="USD",
                          inverse=True, contract_size=100.0, expiry_ms=1_798_185_600_000))
    a.meta.add(Instrument(exchange="binance", raw_symbol="ETHUSDT", kind="perpetual", base="ETH", quote="USDT"))
    return a


def test_snapshot_calls_per_command():
    a = _snapshot_adapter()
    funding = a.snapshot_calls("funding", ["BTC"])
    assert {c.endpoint for c in funding} == {"premiumIndex", "ticker24hr", "openInterest", "fundingRate"}
    assert {c.params["symbol"] for c in funding} == {"BTCUSDT", "BTCUSD_PERP"}  # perpetuals of BTC only
    assert funding[0].endpoint == "premiumIndex"  # marks first: they value open interest
    oi = a.snapshot_calls("oi", ["BTC"])
    assert [c.endpoint for c in oi][:3] == ["premiumIndex"] * 3
    ls = [c for c in oi if c.endpoint == "longShortRatio"]
    assert {(c.market, c.params.get("symbol") or c.params.get("pair")) for c in ls} == {("um", "BTCUSDT"),
                                                                                         ("cm", "BTCUSD")}
    assert all(c.ttl_s for c in oi)
    assert a.snapshot_calls("liquidations", ["BTC"]) == []
    assert a.snapshot_calls("options", ["BTC"]) == []
    assert len(a.snapshot_calls("basis", ["BTC"])) == 3


def test_parse_long_short_um_and_cm():
    a = BinanceAdapter()
    um = json.dumps([{"symbol": "BTCUSDT", "longShortRatio": "1.8105", "longAccount": "0.6442",
                      "shortAccount": "0.3558", "timestamp": 1583139600000}])
    assert a.parse_long_short(um) == [("BTCUSDT", 1583139600000, 1.8105, 0.6442, 0.3558)]
    cm = json.dumps([{"pair": "BTCUSD", "longShortRatio": "0.5", "longAccount": "0.3333", "shortAccount": "0.6667",
                      "timestamp": 1}])
    assert a.parse_long_short(cm)[0][0] == "BTCUSD_PERP"
    with pytest.raises(FrameError, match="-1121"):
        a.parse_long_short('{"code": -1121, "msg": "Invalid symbol."}')
    with pytest.raises(FrameError):
        a.parse_long_short("<html>")
