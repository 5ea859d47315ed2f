"""Live state handlers: liquidation windows, funding board, OI change, prices, snapshot."""

from __future__ import annotations

import json
import random

import pytest

from streamer.aggregate.state import LiveState, WindowTotals
from streamer.model import Alert, Funding, Liquidation, OpenInterest, OptionTicker, Ticker

T0 = 1_699_999_980_000  # a whole minute
S = 1000
M = 60 * S
H = 60 * M
ETH = "ETH-USDT-PERP"


def liq(ts, usd, *, exchange="binance", symbol=ETH, side="long"):
    return Liquidation(
        exchange=exchange,
        symbol=symbol,
        raw_symbol=symbol.removesuffix("-PERP").replace("-", "") if symbol else "???",
        ts=ts,
        recv_ts=ts,
        side=side,
        price=3000.0,
        qty=None,
        value_usd=usd,
    )


def funding(ts, rate_8h, *, exchange="binance", symbol="BTC-USDT-PERP", mark=None, index=None):
    return Funding(
        exchange=exchange,
        symbol=symbol,
        raw_symbol="BTCUSDT",
        ts=ts,
        recv_ts=ts,
        rate=0.0001,
        interval_h=None if rate_8h is None else 8.0,
        rate_8h=rate_8h,
        mark_price=mark,
        index_price=index,
    )


def oi(ts, base, usd=None, *, exchange="okx", symbol="BTC-USDT-PERP"):
    return OpenInterest(
        exchange=exchange, symbol=symbol, raw_symbol="BTC-USDT-SWAP", ts=ts, recv_ts=ts, oi_base=base, oi_usd=usd
    )


def feed(state, events):
    for ev in events:
        state.on_event(ev)


# --------------------------------------------------------------------------- liquidations


def test_liquidations_add_up_per_venue_and_across_venues_by_unified_symbol():
    state = LiveState()
    feed(
        state,
        [
            liq(T0, 1_000_000.0),
            liq(T0 + 10 * S, 2_000_000.0, exchange="okx"),
            liq(T0 + 20 * S, 500_000.0, exchange="okx", side="short"),
            liq(T0 + 30 * S, 3_000_000.0, exchange="bybit", symbol="BTC-USDT-PERP"),
        ],
    )
    lw = state.liquidations
    now = T0 + 30 * S

    assert lw.venue_totals("okx", ETH, "long", 60, now) == WindowTotals(2_000_000.0, 1, 0)
    assert lw.symbol_totals(ETH, "long", 60, now) == WindowTotals(3_000_000.0, 2, 0)
    assert lw.symbol_totals(ETH, "short", 60, now) == WindowTotals(500_000.0, 1, 0)
    assert lw.symbol_totals("SOL-USDT-PERP", "long", 60, now) == WindowTotals(0.0, 0, 0)
    with pytest.raises(KeyError, match="not tracked"):
        lw.symbol_totals(ETH, "long", 120, now)


def test_unsized_liquidation_counts_but_adds_no_notional():
    state = LiveState()
    feed(state, [liq(T0, None), liq(T0 + S, 1_000_000.0)])

    assert state.liquidations.symbol_totals(ETH, "long", 60, T0 + S) == WindowTotals(1_000_000.0, 2, 1)
    assert state.liquidations.stats()["unsized"] == 1


def test_each_liquidation_window_evicts_at_its_own_boundary():
    state = LiveState(liquidation_windows_s=(60, 300, 3600))
    state.on_event(liq(T0, 1_000_000.0))
    lw = state.liquidations

    def notionals(now):
        return [lw.symbol_totals(ETH, "long", w, now).notional_usd for w in (60, 300, 3600)]

    assert notionals(T0 + 59_999) == [1e6, 1e6, 1e6]
    assert notionals(T0 + 60_000) == [0.0, 1e6, 1e6]
    assert notionals(T0 + 299_999) == [0.0, 1e6, 1e6]
    assert notionals(T0 + 300_000) == [0.0, 0.0, 1e6]
    assert notionals(T0 + 3_599_999) == [0.0, 0.0, 1e6]
    assert notionals(T0 + 3_600_000) == [0.0, 0.0, 0.0]


# --------------------------------------------------------------------------- funding


def test_funding_board_keeps_latest_by_ts_and_a_24h_average():
    state = LiveState()
    t0 = T0 - T0 % (5 * M)  # the start of a 5-minute bucket
    feed(state, [funding(t0, 0.0001), funding(t0 + 5 * M, 0.0003), funding(t0 + 30 * S, 0.0002)])
    board = state.funding

    assert board.latest("binance", "BTC-USDT-PERP").ts == t0 + 5 * M  # the late one is not "latest"
    assert board.avg_rate_8h("binance", "BTC-USDT-PERP", t0 + 5 * M) == pytest.approx(0.0002)
    # 24 h later the 5 minutes from t0 (with t0 and t0+30s) have left: only 0.0003 remains.
    assert board.avg_rate_8h("binance", "BTC-USDT-PERP", t0 + 24 * H) == pytest.approx(0.0003, rel=1e-12)
    assert board.avg_rate_8h("binance", "BTC-USDT-PERP", t0 + 24 * H + 5 * M) is None


def test_funding_with_null_rate_8h_updates_latest_but_not_the_average():
    state = LiveState()
    feed(state, [funding(T0, 0.0004), funding(T0 + S, None)])

    assert state.funding.latest("binance", "BTC-USDT-PERP").rate_8h is None
    assert state.funding.avg_rate_8h("binance", "BTC-USDT-PERP", T0 + S) == 0.0004
    assert state.funding.stats()["rate_8h_null"] == 1
    row = state.funding_snapshot()[0]
    assert (row["avg_rate_8h"], row["avg_samples"], row["avg_window_s"]) == (0.0004, 1, 86_400)


# --------------------------------------------------------------------------- open interest


def test_oi_change_over_one_hour_from_live_events():
    state = LiveState()
    feed(state, [oi(T0 + minute * M, 1000.0 + minute, 6e7 + minute * 1e5) for minute in range(121)])
    ois = state.open_interest

    base_pct, usd_pct = ois.change_pct("okx", "BTC-USDT-PERP", 3600)
    assert base_pct == (1120.0 - 1060.0) / 1060.0 * 100.0
    assert usd_pct == ((6e7 + 120 * 1e5) - (6e7 + 60 * 1e5)) / (6e7 + 60 * 1e5) * 100.0
    assert ois.change_pct("okx", "BTC-USDT-PERP", 86_400) == (None, None)  # not covered yet


def test_oi_change_is_null_until_history_covers_the_horizon():
    state = LiveState()
    feed(state, [oi(T0 + minute * M, 1000.0) for minute in range(60)])  # 59 minutes of history

    assert state.open_interest.change_pct("okx", "BTC-USDT-PERP", 3600) == (None, None)
    state.on_event(oi(T0 + 60 * M, 1100.0))
    assert state.open_interest.change_pct("okx", "BTC-USDT-PERP", 3600) == (10.0, None)


def test_oi_seed_rows_give_24h_and_7d_change_before_the_process_has_run_a_day():
    state = LiveState()
    live_ts = T0 + 168 * H + 10 * M
    state.on_event(oi(live_ts, 2000.0))  # live first: seeds then arrive out of order
    rows = [(T0 + h * H, 1000.0 + h, None) for h in range(169)]
    random.Random(7).shuffle(rows)

    taken = state.open_interest.seed("okx", "BTC-USDT-PERP", rows)

    ois = state.open_interest
    assert taken == 169
    assert ois.latest("okx", "BTC-USDT-PERP").ts == live_ts  # the live value stays latest
    assert ois.change_pct("okx", "BTC-USDT-PERP", 604_800) == (100.0, None)
    assert ois.change_pct("okx", "BTC-USDT-PERP", 86_400) == ((2000.0 - 1144.0) / 1144.0 * 100.0, None)
    # 1 h back is T0+167h10m; the nearest row is 10 min older than that, beyond the 5 min tolerance.
    assert ois.change_pct("okx", "BTC-USDT-PERP", 3600) == (None, None)


def test_seed_open_interest_takes_rest_history_events():
    state = LiveState()
    events = [oi(T0 + h * H, 500.0 + 5 * h) for h in range(25)]

    assert state.seed_open_interest(events) == 25
    assert state.open_interest.latest("okx", "BTC-USDT-PERP").source == "seed"
    assert state.open_interest.change_pct("okx", "BTC-USDT-PERP", 86_400) == (24.0, None)


def test_ticker_open_interest_fields_feed_the_oi_state():
    state = LiveState()
    state.on_event(
        Ticker(
            exchange="bybit",
            symbol="BTC-USDT-PERP",
            raw_symbol="BTCUSDT",
            ts=T0,
            recv_ts=T0,
            open_interest=100.0,
            open_interest_usd=6e6,
        )
    )

    latest = state.open_interest.latest("bybit", "BTC-USDT-PERP")
    assert (latest.oi_base, latest.oi_usd, latest.source) == (100.0, 6e6, "ticker")


# --------------------------------------------------------------------------- prices


def test_prices_merge_ticker_and_funding_and_a_null_keeps_the_known_value():
    state = LiveState()
    feed(
        state,
        [
            Ticker(
                exchange="binance",
                symbol="BTC-USDT-PERP",
                raw_symbol="BTCUSDT",
                ts=T0,
                recv_ts=T0,
                last=100.0,
                bid=99.0,
                ask=101.0,
                mark_price=100.5,
            ),
            funding(T0 + S, 0.0001, mark=100.7, index=100.6),
            Ticker(
                exchange="binance", symbol="BTC-USDT-PERP", raw_symbol="BTCUSDT", ts=T0 + 2 * S, recv_ts=0, last=102.0
            ),
            Ticker(exchange="binance", symbol="BTC-USDT-PERP", raw_symbol="BTCUSDT", ts=T0, recv_ts=0, last=50.0),
        ],
    )

    assert state.prices.get("binance", "BTC-USDT-PERP") == {
        "mark": 100.7,
        "index": 100.6,
        "last": 102.0,  # the late 50.0 is older than the kept value
        "bid": 99.0,
        "ask": 101.0,
    }
    assert state.prices.snapshot()[0]["ts"] == T0 + 2 * S


# --------------------------------------------------------------------------- bundle


def test_snapshot_is_plain_json_sorted_and_evaluated_at_the_latest_event_time():
    state = LiveState()
    feed(
        state,
        [
            liq(T0, 1_000_000.0, exchange="okx"),
            liq(T0, 2_000_000.0, exchange="binance"),
            funding(T0, 0.0001, exchange="okx"),
            funding(T0, 0.0002, exchange="binance"),
            oi(T0, 10.0),
            funding(T0 + 90 * S, 0.0001, exchange="okx"),
        ],
    )
    snap = state.snapshot()

    assert json.loads(json.dumps(snap)) == snap
    assert snap["now_ms"] == T0 + 90 * S
    assert [r["exchange"] for r in snap["funding"]] == ["binance", "okx"]
    assert [r["exchange"] for r in snap["liquidations"]["by_venue"]] == ["binance", "okx"]
    by_symbol = snap["liquidations"]["by_symbol"][0]
    assert by_symbol["windows"]["60"] == {"notional_usd": 0.0, "count": 0, "unsized": 0}  # slid past
    assert by_symbol["windows"]["300"] == {"notional_usd": 3_000_000.0, "count": 2, "unsized": 0}
    assert snap["open_interest"][0]["change"]["3600"] == {"base_pct": None, "usd_pct": None}


def test_events_without_symbol_are_counted_not_aggregated():
    state = LiveState()
    feed(state, [liq(T0, 1e6, symbol=None), funding(T0, 0.001, symbol=None)])

    assert state.liquidations.stats()["no_symbol"] == 1
    assert state.funding.stats()["no_symbol"] == 1
    assert state.snapshot()["liquidations"]["by_symbol"] == []


def _opt(exchange: str, strike: float, kind: str, ts: int, iv: float, expiry: str = "2026-12-25",
         delta: float = 0.5, oi: float = 10.0) -> OptionTicker:
    return OptionTicker(exchange=exchange, symbol=f"BTC-USD-{expiry.replace('-', '')}-{strike:g}-{kind}",
                        raw_symbol=f"raw-{strike:g}-{kind}", ts=ts, recv_ts=ts, underlying="BTC", expiry=expiry,
                        strike=strike, kind=kind, mark_iv=iv, delta=delta if kind == "C" else delta - 1.0,
                        underlying_price=95_000.0, open_interest=oi, volume_24h=1.0)


def test_option_tickers_build_one_chain_per_venue_and_a_summary():
    state = LiveState()
    # 2026-12-01 00:00 UTC: the 2026-12-25 expiry is live
    t = 1_796_083_200_000
    feed(state, [_opt("deribit", 90_000.0, "C", t, 0.50), _opt("deribit", 90_000.0, "P", t, 0.52),
                 _opt("deribit", 100_000.0, "C", t, 0.56), _opt("deribit", 100_000.0, "P", t, 0.58),
                 _opt("okx", 90_000.0, "C", t, 0.70)])
    # an older ticker of a known key is not taken over the newer one
    state.on_event(_opt("deribit", 90_000.0, "C", t - 1, 0.99))
    assert state.stats()["options"] == {"deribit": 4, "okx": 1}
    assert state.stats()["events"] == {"option_ticker": 6}
    (deribit, okx) = state.options_snapshot()
    assert (deribit["exchange"], deribit["underlying"], okx["exchange"]) == ("deribit", "BTC", "okx")
    (expiry,) = deribit["expiries"]
    assert expiry["expiry"] == "2026-12-25"
    # ATM at 95 000: half-way between the 90k (0.51 mean) and 100k (0.57 mean) strikes
    assert expiry["atm_iv"] == pytest.approx(0.54)


def test_expired_option_expiries_are_pruned_by_event_time():
    state = LiveState()
    t = 1_796_083_200_000  # 2026-12-01
    state.on_event(_opt("deribit", 90_000.0, "C", t, 0.5, expiry="2026-12-02"))
    state.on_event(_opt("deribit", 90_000.0, "C", t, 0.5, expiry="2026-12-25"))
    assert state.stats()["options"] == {"deribit": 2}
    # two days later (another hour): the 2026-12-02 08:00 UTC expiry is gone
    state.on_event(_opt("deribit", 100_000.0, "C", t + 2 * 86_400_000, 0.5))
    assert state.options["deribit"].expiries("BTC") == ["2026-12-25"]


def test_alerts_are_ignored():
    state = LiveState()
    state.on_event(Alert(id="x", rule="large_liquidation", status="firing", severity="info", exchange=None,
                         symbol=None, value=1.0, threshold=1.0, window_s=0, started_at=T0, ts=T0, summary="s",
                         details={}))
    assert state.stats()["events"] == {}
    assert state.now_ms is None


def test_market_gauges_select_by_raw_or_unified_symbol():
    state = LiveState(liquidation_windows_s=(60,))
    feed(state, [funding(T0, 0.0002, mark=100.0), liq(T0, 5e5, symbol="BTC-USDT-PERP")])

    gauges = state.market_gauges({("binance", "BTCUSDT"), ("okx", "NOPE")})
    assert gauges["funding_rate_8h"] == [("binance", "BTC-USDT-PERP", 0.0002)]
    assert gauges["mark_price"] == [("binance", "BTC-USDT-PERP", 100.0)]
    assert gauges["liquidations_usd"] == [
        ("binance", "BTC-USDT-PERP", "long", 60, 5e5),
        ("binance", "BTC-USDT-PERP", "short", 60, 0.0),
    ]
    assert state.market_gauges({("binance", "BTC-USDT-PERP")}) == gauges


def test_mark_move_over_a_window_from_the_ten_second_mark_history():
    state = LiveState()
    for i, mark in enumerate((100.0, 101.0, 102.0, 99.0)):
        state.on_event(Ticker(exchange="binance", symbol="BTC-USDT-PERP", raw_symbol="BTCUSDT", ts=T0 + i * 20 * S,
                              recv_ts=T0, mark_price=mark))
    # now T0+60s (mark 99) against the newest at or before T0+0s (mark 100)
    assert state.prices.mark_move_pct("binance", "BTC-USDT-PERP", 60 * S, T0 + 60 * S) == pytest.approx(-1.0)
    # against T0+20s (101) over 40 s
    move = state.prices.mark_move_pct("binance", "BTC-USDT-PERP", 40 * S, T0 + 60 * S)
    assert move == pytest.approx((99.0 - 101.0) / 101.0 * 100)
    assert state.prices.mark_move_pct("binance", "BTC-USDT-PERP", 61 * S, T0 + 60 * S) is None  # before the history
    assert state.prices.mark_move_pct("okx", "BTC-USDT-PERP", 60 * S, T0 + 60 * S) is None
