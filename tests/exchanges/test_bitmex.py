"""BitMEX adapter: behaviours named one by one (sides, merge state, sizes, names, times, envelopes, garbage).

Rows are shaped as BitMEX's swagger (``Instrument``, ``Liquidation``, ``Funding``) and its
WebSocket page describe them. The JTOUSDT row is a real ``GET /instrument`` row (2024-03-02,
trimmed); its ``openValue`` (16716835800 USDt minor units) checks our linear size rule.
XBTUSD / XBTUSDT / ETHUSD / XBTZ26 rows carry BitMEX's published contract specs
(XBTUSD multiplier −1e8, underlyingToSettleMultiplier −1e8; XBTUSDT multiplier 1,
underlyingToPositionMultiplier 1e6, quoteToSettleMultiplier 1e6; ETHUSD quanto multiplier 100)
with prices and sizes changed to round test values.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamer.exchanges.base import FrameError, Stream
from streamer.exchanges.bitmex import BitmexAdapter, instrument_from_name, interval_hours, iso_ms, unified
from streamer.model import Funding, Liquidation, OpenInterest, Ticker

RECV = 1_709_347_451_500
TS = 1_709_347_450_789  # 2024-03-02T02:44:10.789Z
NEXT_FUNDING = 1_709_352_000_000  # 2024-03-02T04:00:00.000Z

XBTUSD = {
    "symbol": "XBTUSD", "rootSymbol": "XBT", "state": "Open", "typ": "FFWCSX",
    "listing": "2016-05-13T12:00:00.000Z", "expiry": None, "positionCurrency": "USD", "underlying": "XBT",
    "quoteCurrency": "USD", "reference": "BMEX", "referenceSymbol": ".BXBT", "lotSize": 100, "tickSize": 0.5,
    "multiplier": -100000000, "settlCurrency": "XBt", "underlyingToPositionMultiplier": None,
    "underlyingToSettleMultiplier": -100000000, "quoteToSettleMultiplier": None, "isQuanto": False,
    "isInverse": True, "fundingTimestamp": "2024-03-02T04:00:00.000Z", "fundingInterval": "2000-01-01T08:00:00.000Z",
    "fundingRate": 0.0001, "indicativeFundingRate": 0.00015, "volume24h": 250000000, "openInterest": 400000000,
    "lastPrice": 62001.5, "bidPrice": 62000.5, "askPrice": 62001.0, "fairPrice": 62000.0, "markPrice": 62000.0,
    "indicativeSettlePrice": 61990.0, "timestamp": "2024-03-02T02:44:10.789Z",
}

JTOUSDT = {
    "symbol": "JTOUSDT", "rootSymbol": "JTO", "state": "Open", "typ": "FFWCSX", "positionCurrency": "JTO",
    "underlying": "JTO", "quoteCurrency": "USDT", "lotSize": 10, "tickSize": 1e-05, "multiplier": 1000000,
    "settlCurrency": "USDt", "underlyingToPositionMultiplier": 1, "quoteToSettleMultiplier": 1000000,
    "isQuanto": False, "isInverse": False, "fundingTimestamp": "2024-03-02T04:00:00.000Z",
    "fundingInterval": "2000-01-01T08:00:00.000Z", "fundingRate": 0.0001, "indicativeFundingRate": 0.0001,
    "volume24h": 450, "homeNotional24h": 450, "foreignNotional24h": 1171.5003, "lastPrice": 2.55424,
    "bidPrice": 2.46605, "askPrice": 2.47932, "openInterest": 6780, "openValue": 16716835800, "fairPrice": 2.46561,
    "markPrice": 2.46561, "indicativeSettlePrice": 2.46557, "timestamp": "2024-03-02T02:44:10.789Z",
}

XBTUSDT = {
    "symbol": "XBTUSDT", "typ": "FFWCSX", "underlying": "XBT", "quoteCurrency": "USDT", "multiplier": 1,
    "settlCurrency": "USDt", "underlyingToPositionMultiplier": 1000000, "quoteToSettleMultiplier": 1000000,
    "isQuanto": False, "isInverse": False, "lotSize": 1000, "fundingInterval": "2000-01-01T08:00:00.000Z",
    "fundingRate": -0.0002, "openInterest": 5000000, "markPrice": 60000.0, "timestamp": "2024-03-02T02:44:10.789Z",
}

ETHUSD = {
    "symbol": "ETHUSD", "typ": "FFWCSX", "underlying": "ETH", "quoteCurrency": "USD", "multiplier": 100,
    "settlCurrency": "XBt", "underlyingToPositionMultiplier": None, "underlyingToSettleMultiplier": None,
    "quoteToSettleMultiplier": None, "isQuanto": True, "isInverse": False,
    "fundingInterval": "2000-01-01T08:00:00.000Z", "fundingRate": 0.0001, "openInterest": 300000,
    "markPrice": 3400.0, "timestamp": "2024-03-02T02:44:10.789Z",
}

XBTZ26 = {
    "symbol": "XBTZ26", "typ": "FFCCSX", "underlying": "XBT", "quoteCurrency": "USD",
    "expiry": "2026-12-25T12:00:00.000Z", "multiplier": -100000000, "underlyingToSettleMultiplier": -100000000,
    "settlCurrency": "XBt", "isQuanto": False, "isInverse": True, "fundingRate": None, "fundingInterval": None,
    "fundingTimestamp": None, "openInterest": 1000000, "markPrice": 70000.0, "timestamp": "2024-03-02T02:44:10.789Z",
}

INDEX = {"symbol": ".BXBT", "typ": "MRCXXX", "underlying": "XBT", "quoteCurrency": "USD", "markPrice": 61990.0,
         "timestamp": "2024-03-02T02:44:10.789Z"}


def table(name: str, action: str, rows: list[dict], **extra: object) -> str:
    return json.dumps({"table": name, "action": action, "data": rows, **extra})


def partial(*rows: dict) -> str:
    return table("instrument", "partial", list(rows), keys=["symbol"], filter={"symbol": rows[0]["symbol"]})


def liq(action: str = "insert", side: str = "Sell", symbol: str = "XBTUSD", price: float = 62000.0,
        leaves: float = 31000) -> str:
    row = {"orderID": "57cc3b8c-a1a9-7b1c-7a3c-ba2b1d6e4a1f", "symbol": symbol, "side": side, "price": price,
           "leavesQty": leaves}
    return table("liquidation", action, [row])


def of(events: list, kind: type) -> list:
    return [e for e in events if isinstance(e, kind)]


# --------------------------------------------------------------------------- streams, heartbeat, control


def test_subscribe_frame_is_one_op_with_deduplicated_topics():
    a = BitmexAdapter()
    frames = a.subscribe([Stream("funding", "XBTUSD"), Stream("ticker", "XBTUSD"), Stream("liquidations")])
    assert [json.loads(f) for f in frames] == [{"op": "subscribe", "args": ["instrument:XBTUSD", "liquidation"]}]
    assert a.subscribe([]) == []
    assert a.stream_key(Stream("liquidations", "XBTUSD")) == "liquidation:XBTUSD"
    with pytest.raises(ValueError):
        a.stream_key(Stream("options", "XBTUSD"))


def test_plan_streams_maps_instrument_channels_to_one_ticker_stream():
    a = BitmexAdapter()
    streams = a.plan_streams("realtime", ["XBTUSD"], ["funding", "open_interest", "liquidations"], False)
    assert streams == [Stream("liquidations", "XBTUSD", "realtime"), Stream("ticker", "XBTUSD", "realtime")]
    assert a.plan_streams("realtime", [], ["liquidations"], True) == [Stream("liquidations", None, "realtime")]


def test_heartbeat_is_text_ping_every_30s():
    hb = BitmexAdapter().heartbeat()
    assert hb.ping_payload == "ping"
    assert hb.ping_interval_s == 30.0
    assert BitmexAdapter().markets == ("realtime",)
    assert BitmexAdapter().market_of("XBTUSD") == "realtime"


@pytest.mark.parametrize("frame", [
    "pong",
    '{"info":"Welcome to the BitMEX Realtime API.","version":"2.0.0","timestamp":"2024-03-02T02:44:10.789Z",'
    '"docs":"https://www.bitmex.com/app/wsAPI","limit":{"remaining":39}}',
    '{"success":true,"subscribe":"instrument:XBTUSD","request":{"op":"subscribe","args":["instrument:XBTUSD"]}}',
    '{"status":400,"error":"Unknown table: instrumentt","meta":{},"request":{"op":"subscribe",'
    '"args":["instrumentt"]}}',
])
def test_control_frames_yield_nothing(frame):
    a = BitmexAdapter()
    assert a.parse(frame, RECV) == []
    assert a.stats.control == 1
    assert a.last_channel is None


def test_unmapped_tables_are_ignored():
    a = BitmexAdapter()
    frame = table("orderBookL2_25", "update", [{"symbol": "XBTUSD", "id": 8799, "side": "Buy", "size": 10}])
    assert a.parse(frame, RECV) == []
    assert a.stats.ignored == 1


# --------------------------------------------------------------------------- times


def test_iso_timestamps_become_ms():
    assert iso_ms("2024-03-02T02:44:10.789Z", "t") == TS
    assert iso_ms("2024-03-02T04:00:00.000Z", "t") == NEXT_FUNDING
    assert iso_ms("2026-12-25T12:00:00.000Z", "t") == 1_798_200_000_000
    assert iso_ms(None, "t") is None
    with pytest.raises(FrameError):
        iso_ms("2024-02-30T00:00:00.000Z", "t")
    with pytest.raises(FrameError):
        iso_ms(1709347450789, "t")


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=7_258_118_400_000))  # 1970 .. 2200
def test_iso_ms_agrees_with_datetime(ms):
    when = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=ms)
    text = when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
    assert iso_ms(text, "t") == ms


def test_funding_interval_timespan_is_hours_from_2000_01_01():
    assert interval_hours("2000-01-01T08:00:00.000Z") == 8.0
    assert interval_hours("2000-01-01T04:00:00.000Z") == 4.0
    assert interval_hours("2000-01-02T00:00:00.000Z") == 24.0
    assert interval_hours(None) is None
    assert interval_hours("2000-01-01T00:00:00.000Z") is None


# --------------------------------------------------------------------------- names


def test_xbt_is_written_btc_and_names_without_metadata():
    assert unified("XBTUSD") == "BTC-USD-PERP"
    assert unified("XBTUSDT") == "BTC-USDT-PERP"
    assert unified("ETHUSD") == "ETH-USD-PERP"
    assert unified("SOLUSDT") == "SOL-USDT-PERP"
    assert unified("XBTZ26") is None  # a month code names no day: never guessed
    assert unified("ETHUSDZ26") is None
    assert unified(".BXBT") is None
    assert instrument_from_name("XBTUSD").contract_size is None  # size only from metadata


def test_future_symbol_from_metadata_expiry():
    a = BitmexAdapter()
    events = a.parse(partial(XBTZ26), RECV)
    assert {e.symbol for e in events} == {"BTC-USD-20261225"}
    assert of(events, Funding) == []  # fundingRate null: no funding event
    inst = a.instrument("XBTZ26")
    assert inst.kind == "future"
    assert inst.inverse
    assert inst.contract_size == 1.0
    assert inst.expiry_ms == 1_798_200_000_000
    oi = of(events, OpenInterest)[0]
    assert oi.oi_contracts == 1_000_000
    assert oi.oi_usd == 1_000_000
    assert oi.oi_base == pytest.approx(1_000_000 / 70000)


# --------------------------------------------------------------------------- instrument table


def test_partial_yields_funding_ticker_and_open_interest():
    a = BitmexAdapter()
    events = a.parse(partial(XBTUSD), RECV)
    assert [type(e) for e in events] == [Funding, Ticker, OpenInterest]
    assert a.last_channel == "ticker"
    funding, ticker, oi = events
    assert funding == Funding(
        exchange="bitmex", symbol="BTC-USD-PERP", raw_symbol="XBTUSD", ts=TS, recv_ts=RECV, rate=0.0001,
        interval_h=8.0, rate_8h=0.0001, annualized=pytest.approx(0.0001 * 3 * 365), predicted_rate=0.00015,
        next_funding_ts=NEXT_FUNDING, mark_price=62000.0, index_price=61990.0,
    )
    assert ticker.last == 62001.5
    assert ticker.bid == 62000.5
    assert ticker.ask == 62001.0
    assert ticker.mark_price == 62000.0
    assert ticker.index_price == 61990.0
    assert ticker.volume_24h_usd == 250_000_000.0  # inverse contracts are 1 USD
    assert ticker.open_interest_usd == 400_000_000.0
    assert ticker.open_interest == pytest.approx(400_000_000 / 62000.0)
    assert (oi.oi_contracts, oi.oi_usd) == (400_000_000.0, 400_000_000.0)
    assert oi.oi_base == pytest.approx(400_000_000 / 62000.0)
    assert oi.ts == TS


def test_inverse_open_interest_contracts_are_usd():
    a = BitmexAdapter()
    inst = a.parse(partial(XBTUSD), RECV) and a.instrument("XBTUSD")
    assert inst.inverse is True
    assert inst.contract_size == 1.0
    assert inst.base == "BTC"
    assert inst.settle == "BTC"  # XBt written BTC
    assert inst.funding_interval_h == 8.0


def test_update_is_merged_and_yields_only_the_types_it_carries():
    a = BitmexAdapter()
    a.parse(partial(XBTUSD), RECV)
    update = table("instrument", "update", [{"symbol": "XBTUSD", "markPrice": 64000.0, "fairPrice": 64000.0,
                                             "timestamp": "2024-03-02T02:44:11.000Z"}])
    events = a.parse(update, RECV + 1)
    assert [type(e) for e in events] == [Ticker]
    ticker = events[0]
    assert ticker.ts == 1_709_347_451_000
    assert ticker.mark_price == 64000.0
    assert ticker.last == 62001.5  # from the partial
    assert ticker.open_interest_usd == 400_000_000.0
    assert ticker.open_interest == pytest.approx(400_000_000 / 64000.0)  # merged OI at the new mark

    funding_only = table("instrument", "update", [{"symbol": "XBTUSD", "indicativeFundingRate": 0.0003,
                                                   "timestamp": "2024-03-02T02:44:12.000Z"}])
    events = a.parse(funding_only, RECV + 2)
    assert [type(e) for e in events] == [Funding]
    assert events[0].rate == 0.0001
    assert events[0].predicted_rate == 0.0003
    assert events[0].mark_price == 64000.0
    assert events[0].next_funding_ts == NEXT_FUNDING
    assert events[0].interval_h == 8.0

    oi_update = table("instrument", "update", [{"symbol": "XBTUSD", "openInterest": 410000000,
                                                "timestamp": "2024-03-02T02:44:13.000Z"}])
    events = a.parse(oi_update, RECV + 3)
    assert [type(e) for e in events] == [Ticker, OpenInterest]
    assert events[1].oi_contracts == 410_000_000.0

    # a row carrying only its key and timestamp yields nothing
    assert a.parse(table("instrument", "update", [{"symbol": "XBTUSD", "timestamp": "2024-03-02T02:44:14.000Z"}]),
                   RECV) == []


def test_update_without_timestamp_uses_recv_ts():
    a = BitmexAdapter()
    a.parse(partial(XBTUSD), RECV)
    events = a.parse(table("instrument", "update", [{"symbol": "XBTUSD", "lastPrice": 1.5}]), RECV + 9)
    assert events[0].ts == RECV + 9


def test_update_before_partial_is_merged_into_empty_state_and_counted():
    a = BitmexAdapter()
    events = a.parse(table("instrument", "update", [{"symbol": "XBTUSD", "markPrice": 64000.0,
                                                     "openInterest": 1000, "timestamp": "2024-03-02T02:44:11.000Z"}]),
                     RECV)
    ticker, oi = events
    assert ticker.symbol == "BTC-USD-PERP"
    assert ticker.mark_price == 64000.0
    assert ticker.last is None
    assert oi.oi_contracts == 1000.0
    assert oi.oi_usd is None
    assert a.stats.unmapped["delta_before_partial"] == 1


def test_delete_drops_state():
    a = BitmexAdapter()
    a.parse(partial(XBTUSD), RECV)
    assert a.parse(table("instrument", "delete", [{"symbol": "XBTUSD"}]), RECV) == []
    events = a.parse(table("instrument", "update", [{"symbol": "XBTUSD", "markPrice": 1.0}]), RECV)
    assert events[0].last is None


def test_linear_open_interest_uses_multiplier_over_quote_to_settle():
    a = BitmexAdapter()
    funding, ticker, oi = a.parse(partial(JTOUSDT), RECV)
    assert a.instrument("JTOUSDT").contract_size == 1.0
    assert oi.symbol == "JTO-USDT-PERP"
    assert oi.oi_base == 6780.0
    assert oi.oi_usd == pytest.approx(16716835800 / 1e6)  # the row's openValue in USDT
    assert ticker.volume_24h_usd == 1171.5003  # foreignNotional24h, USDT
    assert funding.rate == 0.0001
    assert funding.interval_h == 8.0

    _f, _t, oi = a.parse(partial(XBTUSDT), RECV)
    assert oi.symbol == "BTC-USDT-PERP"
    assert oi.oi_base == pytest.approx(5.0)  # 5e6 contracts of 1e-6 XBT
    assert oi.oi_usd == pytest.approx(300_000.0)
    assert _f.rate == -0.0002
    assert _f.rate_8h == -0.0002


def test_quanto_sizes_are_null_and_counted():
    a = BitmexAdapter()
    events = a.parse(partial(ETHUSD), RECV)
    assert {e.symbol for e in events} == {"ETH-USD-PERP"}
    oi = of(events, OpenInterest)[0]
    assert oi.oi_contracts == 300000.0
    assert oi.oi_base is None
    assert oi.oi_usd is None
    assert a.stats.unmapped["quanto"] >= 1


# --------------------------------------------------------------------------- liquidations


def test_sell_liquidation_is_a_long_sized_by_leaves_qty_inverse():
    a = BitmexAdapter()
    a.parse(partial(XBTUSD), RECV)
    [event] = a.parse(liq(side="Sell", price=62000.0, leaves=31000), RECV)
    assert event == Liquidation(exchange="bitmex", symbol="BTC-USD-PERP", raw_symbol="XBTUSD", ts=RECV,
                                recv_ts=RECV, side="long", price=62000.0, qty=0.5, value_usd=31000.0)
    assert a.last_channel == "liquidations"


def test_buy_liquidation_is_a_short():
    a = BitmexAdapter()
    [event] = a.parse(liq(side="Buy"), RECV)
    assert event.side == "short"


def test_liquidations_only_at_insert():
    a = BitmexAdapter()
    for action in ("partial", "update", "delete"):
        assert a.parse(liq(action=action), RECV) == []
    assert len(a.parse(liq(action="insert"), RECV)) == 1


def test_liquidation_without_metadata_keeps_side_and_price():
    a = BitmexAdapter()
    [event] = a.parse(liq(side="Sell", symbol="XBTUSD"), RECV)
    assert (event.symbol, event.side, event.price, event.qty, event.value_usd) == (
        "BTC-USD-PERP", "long", 62000.0, None, None)
    assert a.stats.unmapped["contract_size"] == 1
    [future] = a.parse(liq(symbol="XBTZ26"), RECV)
    assert future.symbol is None


def test_linear_liquidation_qty_is_base():
    a = BitmexAdapter()
    a.parse(partial(XBTUSDT), RECV)
    [event] = a.parse(liq(side="Buy", symbol="XBTUSDT", price=60000.0, leaves=2_000_000), RECV)
    assert event.side == "short"
    assert event.qty == pytest.approx(2.0)
    assert event.value_usd == pytest.approx(120_000.0)


def test_bad_liquidation_side_raises_frame_error():
    a = BitmexAdapter()
    with pytest.raises(FrameError):
        a.parse(liq(side="Hold"), RECV)
    assert a.stats.errors["value"] == 1


def test_one_bad_row_among_good_rows_is_skipped():
    a = BitmexAdapter()
    rows = [{"orderID": "a", "symbol": "XBTUSD", "side": "Sell", "price": 1.0, "leavesQty": 1},
            {"orderID": "b", "symbol": "XBTUSD", "side": 7, "price": 1.0, "leavesQty": 1}]
    assert len(a.parse(table("liquidation", "insert", rows), RECV)) == 1
    assert a.stats.errors["element"] == 1


# --------------------------------------------------------------------------- funding settlements

FUNDING_ROW = {"timestamp": "2024-03-02T04:00:00.000Z", "symbol": "XBTUSD",
               "fundingInterval": "2000-01-01T08:00:00.000Z", "fundingRate": 0.0001, "fundingRateDaily": 0.0003}


def test_funding_table_rows_are_settlements():
    a = BitmexAdapter()
    [event] = a.parse(table("funding", "insert", [FUNDING_ROW]), RECV)
    assert event == Funding(exchange="bitmex", symbol="BTC-USD-PERP", raw_symbol="XBTUSD", ts=NEXT_FUNDING,
                            recv_ts=RECV, rate=0.0001, interval_h=8.0, rate_8h=0.0001,
                            annualized=pytest.approx(0.1095), predicted_rate=None, next_funding_ts=NEXT_FUNDING)
    assert a.last_channel == "funding"


# --------------------------------------------------------------------------- REST


def test_load_instruments_skips_indices():
    a = BitmexAdapter()
    assert a.load_instruments(json.dumps([XBTUSD, JTOUSDT, ETHUSD, XBTZ26, INDEX])) == 4
    assert [i.symbol for i in a.instruments()] == ["BTC-USD-PERP", "JTO-USDT-PERP", "ETH-USD-PERP",
                                                    "BTC-USD-20261225"]
    assert a.stats.unmapped["instrument"] == 1
    # metadata then sizes a bare liquidation
    [event] = a.parse(liq(leaves=6200), RECV)
    assert event.value_usd == 6200.0
    assert event.qty == pytest.approx(0.1)


def test_rest_instrument_row_yields_events_like_a_partial():
    a = BitmexAdapter()
    events = a.parse_rest("instrument", json.dumps([XBTUSD]), RECV, {"symbol": "XBTUSD"})
    assert [type(e) for e in events] == [Funding, Ticker, OpenInterest]
    assert events[2].oi_usd == 400_000_000.0


def test_rest_funding_and_liquidation_bodies():
    a = BitmexAdapter()
    [f] = a.parse_rest("funding", json.dumps([FUNDING_ROW]), RECV)
    assert f.rate == 0.0001
    assert f.ts == NEXT_FUNDING
    [liquidation] = a.parse_rest("liquidation", json.dumps(
        [{"orderID": "x", "symbol": "XBTUSD", "side": "Sell", "price": 62000.0, "leavesQty": 100}]), RECV)
    assert liquidation.side == "long"
    assert liquidation.ts == RECV
    assert a.parse_rest("liquidation", "[]", RECV) == []


def test_rest_error_bodies_raise():
    a = BitmexAdapter()
    with pytest.raises(FrameError) as exc:
        a.parse_rest("instrument", '{"error":{"message":"Rate limit exceeded, retry in 1 seconds.",'
                                   '"name":"RateLimitError"}}', RECV)
    assert exc.value.reason == "rate_limited"
    with pytest.raises(FrameError) as exc:
        a.parse_rest("funding", '{"error":{"message":"Unknown symbol","name":"HTTPError"}}', RECV)
    assert exc.value.reason == "rejected"
    with pytest.raises(ValueError):
        a.parse_rest("orderBook", "[]", RECV)


def test_rest_calls():
    a = BitmexAdapter()
    [call] = a.rest_instruments()
    assert (call.endpoint, call.path) == ("instruments", "/api/v1/instrument/active")
    oi = a.rest_open_interest("XBTUSD")
    assert (oi.endpoint, oi.path, oi.params) == ("instrument", "/api/v1/instrument", {"symbol": "XBTUSD"})
    assert a.rest_funding_history("XBTUSD").params["reverse"] == "true"


# --------------------------------------------------------------------------- garbage


def _check(events: list) -> None:
    for e in events:
        for name in e.__struct_fields__:
            value = getattr(e, name)
            if isinstance(value, float):
                assert math.isfinite(value)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200)))
def test_garbage_raises_only_frame_error(frame):
    try:
        _check(BitmexAdapter().parse(frame, RECV))
    except FrameError:
        pass


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(["instrument", "liquidation", "funding"]),
       st.sampled_from(["partial", "insert", "update", "delete", "bogus"]),
       st.sampled_from(sorted(set(XBTUSD) | {"orderID", "side", "price", "leavesQty"})),
       JSON_VALUES)
def test_wrong_types_in_rows_raise_only_frame_error(name, action, key, value):
    a = BitmexAdapter()
    a.parse(partial(XBTUSD), RECV)
    row = copy.deepcopy(XBTUSD) if name == "instrument" else (
        {"orderID": "x", "symbol": "XBTUSD", "side": "Sell", "price": 1.0, "leavesQty": 1} if name == "liquidation"
        else dict(FUNDING_ROW))
    row[key] = value
    try:
        _check(a.parse(table(name, action, [row]), RECV))
    except FrameError:
        pass
    try:
        _check(a.parse_rest(name, json.dumps([row]), RECV))
    except FrameError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([("instrument", json.dumps([XBTUSD, JTOUSDT])), ("instruments", json.dumps([XBTZ26])),
                        ("funding", json.dumps([FUNDING_ROW])), ("liquidation", liq())]),
       st.integers(min_value=0, max_value=2000))
def test_truncated_bodies_raise_only_frame_error(case, cut):
    endpoint, text = case
    try:
        _check(BitmexAdapter().parse_rest(endpoint, text[:cut], RECV))
    except FrameError:
        pass
