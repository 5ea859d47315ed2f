"""Deribit adapter: behaviours named one by one (liquidation sides, USD amounts, IV units, funding, heartbeat).

Frames follow Deribit's API v2 documentation examples (public/subscribe ``ticker.BTC-PERPETUAL.raw`` and
``trades.BTC-PERPETUAL.raw`` notifications, kept with their values); where a case needs a field the example
lacks (the ``liquidation`` flag, an option's IVs and greeks), the change is named next to it.
"""

from __future__ import annotations

import json
import math

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamer.exchanges.base import FrameError, Stream
from streamer.exchanges.deribit import DeribitAdapter, instrument_from_name, liquidation_sides, unified
from streamer.model import Funding, Liquidation, OpenInterest, OptionTicker, Ticker

RECV = 1_767_225_600_123


def note(channel: str, data: object) -> str:
    return json.dumps({"jsonrpc": "2.0", "method": "subscription", "params": {"channel": channel, "data": data}})


def rest(result: object) -> str:
    return json.dumps({"jsonrpc": "2.0", "result": result, "usIn": 1, "usOut": 2, "usDiff": 1, "testnet": False})


# Deribit docs, public/subscribe, ticker.{instrument_name}.{interval} notification example.
PERP_TICKER = {
    "timestamp": 1623060194301,
    "stats": {"volume_usd": 284061480, "volume": 7871.02139035, "price_change": 0.7229, "low": 35213.5,
              "high": 36824.5},
    "state": "open", "settlement_price": 36169.49, "open_interest": 502097590, "min_price": 35898.37,
    "max_price": 36991.72, "mark_price": 36446.51, "last_price": 36457.5, "interest_value": 1.7362511643080387,
    "instrument_name": "BTC-PERPETUAL", "index_price": 36441.64, "funding_8h": 0.0000211,
    "estimated_delivery_price": 36441.64, "current_funding": 0, "best_bid_price": 36442.5, "best_bid_amount": 5000,
    "best_ask_price": 36443, "best_ask_amount": 100,
}


# Deribit docs, public/subscribe, trades.{instrument_name}.{interval} notification example (+ liquidation flag).
def trade(flag: str | None, direction: str = "sell", **over: object) -> dict:
    row = {"trade_seq": 30289442, "trade_id": "48079269", "timestamp": 1590484156350, "tick_direction": 2,
           "price": 8950, "mark_price": 8948.9, "instrument_name": "BTC-PERPETUAL", "index_price": 8955.88,
           "direction": direction, "amount": 10}
    if flag is not None:
        row["liquidation"] = flag
    row.update(over)
    return row


def option_ticker(**over: object) -> dict:
    """A ticker of a BTC option with the documented option fields (IVs percent, greeks, underlying)."""
    row = {"timestamp": 1623060194301, "state": "open", "instrument_name": "BTC-27DEC26-100000-C",
           "mark_price": 0.0525, "index_price": 60000.0, "underlying_price": 61000.0, "underlying_index": "BTC-27DEC26",
           "mark_iv": 55.3, "bid_iv": 0, "ask_iv": 57.5, "best_bid_price": 0, "best_ask_price": 0.055,
           "last_price": 0.05, "open_interest": 123.4, "interest_rate": 0,
           "greeks": {"delta": 0.45, "gamma": 0.00002, "vega": 150.5, "theta": -12.25, "rho": 30.1},
           "stats": {"volume": 12.5, "volume_usd": 40000, "price_change": -1.5, "low": 0.05, "high": 0.06}}
    row.update(over)
    return row


def parse(adapter: DeribitAdapter, frame: str) -> list:
    return adapter.parse(frame, RECV)


# ---------------------------------------------------------------- names


@pytest.mark.parametrize(("raw", "symbol"), [
    ("BTC-PERPETUAL", "BTC-USD-PERP"),
    ("ETH-PERPETUAL", "ETH-USD-PERP"),
    ("BTC_USDC-PERPETUAL", "BTC-USDC-PERP"),
    ("BTC-27DEC26", "BTC-USD-20261227"),
    ("BTC-5AUG23", "BTC-USD-20230805"),
    ("BTC-27DEC26-100000-C", "BTC-USD-20261227-100000-C"),
    ("BTC-25MAR23-420-P", "BTC-USD-20230325-420-P"),
    ("XRP_USDC-30JUN23-0d625-C", "XRP-USD-20230630-0.625-C"),
    ("BTC_USDC", None),
    ("BTC-FS-27DEC26_PERP", None),
    ("BTC-31FOO26", None),
])
def test_unified_names(raw, symbol):
    assert unified(raw) == symbol


def test_inverse_and_linear_from_name():
    assert instrument_from_name("BTC-PERPETUAL").inverse is True
    assert instrument_from_name("BTC_USDC-PERPETUAL").inverse is False
    opt = instrument_from_name("XRP_USDC-30JUN23-0d625-C")
    assert (opt.strike, opt.settle, opt.option_kind) == (0.625, "USDC", "C")


# ---------------------------------------------------------------- frames out


def test_subscribe_frames_are_json_rpc_with_channel_names():
    a = DeribitAdapter()
    frames = a.subscribe([Stream("funding", "BTC-PERPETUAL"), Stream("ticker", "BTC-PERPETUAL"),
                          Stream("options", "BTC-27DEC26-100000-C"), Stream("liquidations", None),
                          Stream("liquidations", "BTC_USDC-PERPETUAL")])
    assert [json.loads(f) for f in frames] == [{
        "jsonrpc": "2.0", "id": 1, "method": "public/subscribe",
        "params": {"channels": ["ticker.BTC-PERPETUAL.100ms", "ticker.BTC-27DEC26-100000-C.100ms",
                                "trades.future.BTC.100ms", "trades.future.ETH.100ms", "trades.future.USDC.100ms"]},
    }]
    assert a.stream_key(Stream("open_interest", "ETH-PERPETUAL")) == "ticker.ETH-PERPETUAL.100ms"
    with pytest.raises(ValueError, match="index"):
        a.subscribe([Stream("index", "BTC-PERPETUAL")])


def test_subscribe_chunks_channels():
    a = DeribitAdapter()
    frames = a.subscribe([Stream("ticker", f"BTC-{d}DEC26-{k}-C") for d in (1, 2) for k in range(1, 101)])
    assert [len(json.loads(f)["params"]["channels"]) for f in frames] == [100, 100]
    assert [json.loads(f)["id"] for f in frames] == [1, 2]


def test_heartbeat_set_on_connect_and_test_request_answered():
    a = DeribitAdapter()
    assert a.heartbeat().ping_payload is None
    (hb,) = a.on_connect_frames()
    assert json.loads(hb) == {"jsonrpc": "2.0", "id": 1, "method": "public/set_heartbeat", "params": {"interval": 30}}
    test_request = '{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}'
    (reply,) = a.replies(test_request)
    assert json.loads(reply) == {"jsonrpc": "2.0", "id": 2, "method": "public/test", "params": {}}
    assert a.replies('{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"heartbeat"}}') == []
    assert a.replies(note("ticker.BTC-PERPETUAL.100ms", PERP_TICKER)) == []
    assert a.replies(b"not json heartbeat") == []
    assert parse(a, test_request) == []
    assert a.stats.control == 1


def test_responses_and_errors_are_control():
    a = DeribitAdapter()
    ack = '{"jsonrpc":"2.0","id":1,"result":["ticker.BTC-PERPETUAL.100ms"],"usIn":1,"usOut":2,"usDiff":1}'
    err = '{"jsonrpc":"2.0","id":2,"error":{"code":10028,"message":"too_many_requests"}}'
    assert parse(a, ack) == []
    assert parse(a, err) == []
    assert a.stats.control == 2
    assert a.last_error == "10028 too_many_requests"


# ---------------------------------------------------------------- tickers


def test_perpetual_ticker_gives_funding_8h_ticker_and_oi_in_usd():
    a = DeribitAdapter()
    funding, ticker, oi = parse(a, note("ticker.BTC-PERPETUAL.100ms", PERP_TICKER))
    assert funding == Funding(exchange="deribit", symbol="BTC-USD-PERP", raw_symbol="BTC-PERPETUAL",
                              ts=1623060194301, recv_ts=RECV, rate=0.0000211, interval_h=8.0, rate_8h=0.0000211,
                              annualized=pytest.approx(0.0000211 * 3 * 365), predicted_rate=None,
                              next_funding_ts=None, mark_price=36446.51, index_price=36441.64)
    assert isinstance(ticker, Ticker)
    assert (ticker.last, ticker.bid, ticker.ask) == (36457.5, 36442.5, 36443)
    assert ticker.volume_24h_usd == 284061480
    assert ticker.open_interest_usd == 502097590
    assert ticker.open_interest == pytest.approx(502097590 / 36446.51)
    assert oi == OpenInterest(exchange="deribit", symbol="BTC-USD-PERP", raw_symbol="BTC-PERPETUAL",
                              ts=1623060194301, recv_ts=RECV, oi_contracts=502097590,
                              oi_base=pytest.approx(502097590 / 36446.51), oi_usd=502097590)
    assert a.last_stream_key == "ticker.BTC-PERPETUAL.100ms"
    assert a.last_channel == "ticker"


def test_future_ticker_has_no_funding():
    row = dict(PERP_TICKER, instrument_name="BTC-27DEC26")
    del row["funding_8h"], row["current_funding"]
    events = parse(DeribitAdapter(), note("ticker.BTC-27DEC26.100ms", row))
    assert [type(e) for e in events] == [Ticker, OpenInterest]
    assert events[0].symbol == "BTC-USD-20261227"


def test_linear_usdc_perpetual_oi_is_coin():
    row = dict(PERP_TICKER, instrument_name="BTC_USDC-PERPETUAL", open_interest=12.5, mark_price=36000.0)
    _f, ticker, oi = parse(DeribitAdapter(), note("ticker.BTC_USDC-PERPETUAL.100ms", row))
    assert (ticker.open_interest, ticker.open_interest_usd) == (12.5, 450000.0)
    assert (oi.oi_base, oi.oi_usd, oi.symbol) == (12.5, 450000.0, "BTC-USDC-PERP")


def test_option_ticker_iv_percent_to_fraction_and_mark_in_usd():
    a = DeribitAdapter()
    (opt,) = parse(a, note("ticker.BTC-27DEC26-100000-C.100ms", option_ticker()))
    assert opt == OptionTicker(exchange="deribit", symbol="BTC-USD-20261227-100000-C",
                               raw_symbol="BTC-27DEC26-100000-C", ts=1623060194301, recv_ts=RECV, underlying="BTC",
                               expiry="2026-12-27", strike=100000.0, kind="C",
                               mark_price_usd=pytest.approx(0.0525 * 60000.0), mark_iv=pytest.approx(0.553),
                               bid_iv=None, ask_iv=pytest.approx(0.575), delta=0.45, gamma=0.00002, vega=150.5,
                               theta=-12.25, underlying_price=61000.0, open_interest=123.4, volume_24h=12.5)
    assert a.last_channel == "options"


def test_usdc_option_mark_is_already_usd():
    row = option_ticker(instrument_name="XRP_USDC-30JUN23-0d625-C", mark_price=0.0123, index_price=0.5)
    (opt,) = parse(DeribitAdapter(), note("ticker.XRP_USDC-30JUN23-0d625-C.100ms", row))
    assert (opt.mark_price_usd, opt.strike, opt.underlying, opt.expiry) == (0.0123, 0.625, "XRP", "2023-06-30")


# ---------------------------------------------------------------- liquidations


@pytest.mark.parametrize(("flag", "direction", "sides"), [
    ("T", "sell", ["long"]),
    ("T", "buy", ["short"]),
    ("M", "buy", ["long"]),
    ("M", "sell", ["short"]),
    ("MT", "sell", ["long", "short"]),
    ("MT", "buy", ["short", "long"]),  # taker first: the taker bought -> its short was liquidated
])
def test_liquidation_sides(flag, direction, sides):
    events = parse(DeribitAdapter(), note("trades.future.BTC.100ms", [trade(flag, direction)]))
    assert [e.side for e in events] == sides
    assert liquidation_sides(flag, direction) == sides


def test_inverse_liquidation_amount_is_usd():
    (liq,) = parse(DeribitAdapter(), note("trades.future.BTC.100ms", [trade("T", "sell")]))
    assert liq == Liquidation(exchange="deribit", symbol="BTC-USD-PERP", raw_symbol="BTC-PERPETUAL",
                              ts=1590484156350, recv_ts=RECV, side="long", price=8950.0,
                              qty=pytest.approx(10 / 8950), value_usd=10.0)


def test_linear_liquidation_amount_is_coin():
    row = trade("M", "sell", instrument_name="BTC_USDC-PERPETUAL", amount=0.5)
    (liq,) = parse(DeribitAdapter(), note("trades.future.USDC.100ms", [row]))
    assert (liq.side, liq.qty, liq.value_usd, liq.symbol) == ("short", 0.5, 4475.0, "BTC-USDC-PERP")


def test_trades_without_flag_yield_nothing_and_unknown_instrument_keeps_fact():
    a = DeribitAdapter()
    assert parse(a, note("trades.future.BTC.100ms", [trade(None), trade(None, "buy")])) == []
    (liq,) = parse(a, note("trades.future.BTC.100ms", [trade("T", "buy", instrument_name="WEIRD")]))
    assert (liq.symbol, liq.side, liq.price, liq.qty, liq.value_usd) == (None, "short", 8950.0, None, None)
    assert a.stats.unmapped["unknown_symbol"] == 1


def test_bad_liquidation_flag_is_frame_error():
    with pytest.raises(FrameError):
        parse(DeribitAdapter(), note("trades.future.BTC.100ms", [trade("X")]))


# ---------------------------------------------------------------- REST


INSTRUMENTS = rest([
    {"instrument_name": "BTC-PERPETUAL", "kind": "future", "instrument_type": "reversed",
     "settlement_period": "perpetual", "contract_size": 10, "base_currency": "BTC", "quote_currency": "USD",
     "counter_currency": "USD", "settlement_currency": "BTC", "expiration_timestamp": 32503708800000,
     "is_active": True, "tick_size": 0.5, "min_trade_amount": 10},
    {"instrument_name": "BTC-27DEC26-100000-C", "kind": "option", "instrument_type": "reversed",
     "settlement_period": "month", "contract_size": 1, "base_currency": "BTC", "quote_currency": "BTC",
     "counter_currency": "USD", "settlement_currency": "BTC", "expiration_timestamp": 1798358400000,
     "strike": 100000, "option_type": "call", "is_active": True},
    {"instrument_name": "BTC_USDC", "kind": "spot", "base_currency": "BTC", "quote_currency": "USDC"},
    {"instrument_name": 7},
])


def test_load_instruments():
    a = DeribitAdapter()
    assert a.load_instruments(INSTRUMENTS) == 2
    assert a.stats.errors["instrument_row"] == 1
    perp = a.instrument("BTC-PERPETUAL")
    assert (perp.kind, perp.inverse, perp.contract_size, perp.expiry_ms, perp.symbol) == (
        "perpetual", True, 10.0, None, "BTC-USD-PERP")
    assert a.instrument("BTC-27DEC26-100000-C").symbol == "BTC-USD-20261227-100000-C"
    assert a.parse_rest("instruments", INSTRUMENTS, RECV) == []


def test_options_channel_with_all_market_subscribes_the_chain_of_listed_underlyings():
    a = DeribitAdapter()
    a.load_instruments(INSTRUMENTS)
    channels = ["funding", "options"]
    assert a.plan_streams("public", ["BTC-PERPETUAL"], channels, True) == [
        Stream("ticker", "BTC-PERPETUAL", "public"), Stream("options", "BTC-27DEC26-100000-C", "public")]
    # listed explicitly: not twice
    assert a.plan_streams("public", ["BTC-PERPETUAL", "BTC-27DEC26-100000-C"], channels, True) == [
        Stream("ticker", "BTC-PERPETUAL", "public"), Stream("options", "BTC-27DEC26-100000-C", "public")]
    # without all_market only listed options
    assert a.plan_streams("public", ["BTC-PERPETUAL"], channels, False) == [Stream("ticker", "BTC-PERPETUAL", "public")]
    assert a.stream_key(Stream("options", "BTC-27DEC26-100000-C", "public")) == "ticker.BTC-27DEC26-100000-C.100ms"


def test_rest_ticker_and_errors():
    a = DeribitAdapter()
    events = a.parse_rest("ticker", rest(PERP_TICKER), RECV)
    assert [type(e) for e in events] == [Funding, Ticker, OpenInterest]
    with pytest.raises(FrameError) as limited:
        a.parse_rest("ticker", '{"jsonrpc":"2.0","error":{"code":10028,"message":"too_many_requests"}}', RECV)
    assert limited.value.reason == "rate_limited"
    with pytest.raises(FrameError) as rejected:
        a.parse_rest("ticker", '{"jsonrpc":"2.0","error":{"code":13020,"message":"not_found"}}', RECV)
    assert rejected.value.reason == "rejected"


def test_rest_book_summary_options_have_no_greeks():
    row = {"instrument_name": "BTC-27DEC26-100000-C", "creation_timestamp": 1623060194301, "mark_price": 0.05,
           "mark_iv": 60.0, "bid_price": None, "ask_price": 0.055, "open_interest": 3.0, "volume": 1.0,
           "volume_usd": 3000, "underlying_price": 61000.0, "estimated_delivery_price": 60000.0,
           "base_currency": "BTC", "quote_currency": "BTC", "price_change": None, "last": None}
    (opt,) = DeribitAdapter().parse_rest("book_summary", rest([row]), RECV)
    assert (opt.mark_iv, opt.mark_price_usd, opt.delta, opt.bid_iv, opt.open_interest) == (
        0.6, pytest.approx(3000.0), None, None, 3.0)


def test_rest_funding_history_interest_8h():
    body = rest([{"timestamp": 1569891600000, "index_price": 8222.87, "prev_index_price": 8305.72,
                  "interest_8h": -0.00009234260068476106, "interest_1h": -4.739622041017375e-7}])
    a = DeribitAdapter()
    call = a.rest_funding_history("BTC-PERPETUAL", 1569888000000, 1569902400000)
    (f,) = a.parse_rest("funding_rate_history", body, RECV, call.params)
    assert (f.rate, f.interval_h, f.ts, f.next_funding_ts, f.index_price) == (
        -0.00009234260068476106, 8.0, 1569891600000, None, 8222.87)
    with pytest.raises(ValueError, match="instrument"):
        a.parse_rest("funding_rate_history", body, RECV)


def test_rest_last_trades_backfill():
    body = rest({"trades": [trade(None), trade("MT", "buy")], "has_more": False})
    events = DeribitAdapter().parse_rest("last_trades", body, RECV)
    assert [e.side for e in events] == ["short", "long"]  # MT, taker bought: taker's short, then maker's long


def test_rest_calls():
    a = DeribitAdapter()
    assert a.rest_open_interest("BTC-PERPETUAL").path == "/api/v2/public/ticker"
    assert a.rest_book_summary("BTC").params == {"currency": "BTC", "kind": "option"}
    assert a.rest_last_trades("ETH").params == {"currency": "ETH", "kind": "future", "count": "1000"}
    assert {c.params["currency"] for c in a.rest_instruments()} == {"BTC", "ETH", "USDC"}
    assert [c.params["currency"] for c in a.rest_backfill(["BTC-PERPETUAL", "BTC-27DEC26"])] == ["BTC"]
    with pytest.raises(ValueError, match="endpoint"):
        a.parse_rest("nope", rest([]), RECV)


# ---------------------------------------------------------------- garbage


@settings(max_examples=300, deadline=None)
@given(st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200),
    st.recursive(st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=20),
                 lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=12), c, max_size=5),
                 max_leaves=20).map(lambda v: json.dumps(v)),
    st.builds(lambda ch, d: note(ch, d),
              st.sampled_from(["ticker.BTC-PERPETUAL.100ms", "trades.future.BTC.100ms",
                               "ticker.BTC-27DEC26-100000-C.100ms"]),
              st.recursive(st.none() | st.booleans() | st.floats(allow_nan=False, allow_infinity=False)
                           | st.integers(min_value=-(2**63), max_value=2**63 - 1) | st.sampled_from(
                               ["T", "M", "MT", "buy", "sell", "BTC-PERPETUAL", "x"]),
                           lambda c: st.lists(c, max_size=4) | st.dictionaries(st.sampled_from(
                               ["instrument_name", "timestamp", "price", "amount", "direction", "liquidation",
                                "mark_price", "index_price", "open_interest", "funding_8h", "mark_iv", "greeks",
                                "stats", "volume_usd"]), c, max_size=8),
                           max_leaves=30)),
))
def test_garbage_only_frame_error(frame):
    a = DeribitAdapter()
    try:
        events = a.parse(frame, RECV)
    except FrameError:
        return
    for e in events:
        for v in msgspec.structs.asdict(e).values():
            assert not (isinstance(v, float) and not math.isfinite(v))


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(["ticker", "book_summary", "funding_rate_history", "last_trades", "instruments"]),
       st.recursive(st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=10),
                    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=10), c, max_size=5),
                    max_leaves=20))
def test_rest_garbage_only_frame_error(endpoint, result):
    try:
        DeribitAdapter().parse_rest(endpoint, rest(result), RECV, {"instrument_name": "BTC-PERPETUAL"})
    except FrameError:
        pass


def test_overflowing_products_are_null_not_inf():
    row = dict(PERP_TICKER, funding_8h=1e307, open_interest=1e308, mark_price=1e-300)
    funding, ticker, oi = parse(DeribitAdapter(), note("ticker.BTC-PERPETUAL.100ms", row))
    assert (funding.annualized, ticker.open_interest, oi.oi_base) == (None, None, None)


# --------------------------------------------------------------------------- one-shot snapshots


def test_snapshot_calls_reach_and_black76_deltas():
    from streamer.exchanges.deribit import black76_delta
    from streamer.model import Instrument

    a = DeribitAdapter()
    a.meta.add(Instrument(exchange="deribit", raw_symbol="BTC-PERPETUAL", kind="perpetual", base="BTC", quote="USD",
                          settle="BTC", inverse=True, contract_size=10.0))
    a.meta.add(Instrument(exchange="deribit", raw_symbol="BTC-26DEC26-100000-C", kind="option", base="BTC",
                          quote="BTC", settle="BTC", expiry_ms=1_798_272_000_000, strike=100000.0, option_kind="C"))
    now = 1_790_000_000_000
    funding = a.snapshot_calls("funding", ["BTC"], now_ms=now)
    assert [c.endpoint for c in funding] == ["ticker", "funding_rate_history"]
    hist = funding[1].params
    assert int(hist["end_timestamp"]) - int(hist["start_timestamp"]) == 25 * 3_600_000
    assert int(hist["end_timestamp"]) % 3_600_000 == 0  # a cache key stable within the hour
    [liq] = a.snapshot_calls("liquidations", ["BTC"])
    assert liq.params == {"currency": "BTC", "kind": "future", "count": "1000", "sorting": "desc"}
    body = json.dumps({"jsonrpc": "2.0", "result": {"trades": [
        {"instrument_name": "BTC-PERPETUAL", "timestamp": 5, "price": 1.0, "amount": 10, "direction": "buy"},
        {"instrument_name": "BTC-PERPETUAL", "timestamp": 3, "price": 1.0, "amount": 10, "direction": "buy"}],
        "has_more": True}})
    assert a.snapshot_reach(liq, body) == (3, True)
    [opt] = a.snapshot_calls("options", ["BTC"])
    assert opt.params == {"currency": "BTC", "kind": "option"}
    # Black-76: ATM forward call delta just above 0.5; put = call - 1
    d = black76_delta("C", 100000.0, 100000.0, 0.5, 0.25)
    assert d == pytest.approx(0.5497, abs=1e-3)
    assert black76_delta("P", 100000.0, 100000.0, 0.5, 0.25) == pytest.approx(d - 1)
    assert black76_delta("C", None, 100000.0, 0.5, 0.25) is None
    row = OptionTicker(exchange="deribit", symbol=None, raw_symbol="BTC-26DEC26-100000-C", ts=now, recv_ts=now,
                       underlying="BTC", expiry="2026-12-26", strike=100000.0, kind="C", mark_iv=0.5,
                       underlying_price=100000.0)
    [enriched] = a.snapshot_enrich([row])
    years = (1_798_272_000_000 - now) / 31_536_000_000
    assert enriched.delta == pytest.approx(black76_delta("C", 100000.0, 100000.0, 0.5, years))
