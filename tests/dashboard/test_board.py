"""The dashboard's ``state`` snapshot: each panel's numbers from LiveState and the analytics, by event time."""

from __future__ import annotations

import pytest

from streamer.aggregate.state import LiveState
from streamer.model import Funding, Instrument, Liquidation, Ticker
from streamer.web.board import dashboard_state, funding_panel, heatmap_panel, venues_panel

T0 = 1_796_000_000_000
DAY = 86_400_000


def funding(exchange: str, symbol: str, rate_8h: float, ts: int = T0) -> Funding:
    return Funding(exchange=exchange, symbol=symbol, raw_symbol=symbol, ts=ts, recv_ts=ts + 5, rate=rate_8h,
                   interval_h=8.0, rate_8h=rate_8h, annualized=rate_8h * 3 * 365, next_funding_ts=T0 + 3_600_000)


def liq(price: float, usd: float, side: str = "long", *, symbol: str = "ETH-USDT-PERP", ts: int = T0) -> Liquidation:
    return Liquidation(exchange="binance", symbol=symbol, raw_symbol=symbol, ts=ts, recv_ts=ts, side=side,
                       price=price, qty=None, value_usd=usd)


def test_funding_rows_put_multi_venue_symbols_first_then_extremes_with_the_widest_spread():
    state = LiveState()
    for ev in (funding("okx", "BTC-USDT-PERP", 0.0003), funding("binance", "BTC-USDT-PERP", 0.0001),
               funding("binance", "AAA-USDT-PERP", 0.0001), funding("binance", "ZZZ-USDT-PERP", -0.0009)):
        state.on_event(ev)
    panel = funding_panel(state)
    assert [(r["symbol"], r["exchange"], r["venues"]) for r in panel["rows"]] == [
        ("BTC-USDT-PERP", "binance", 2), ("BTC-USDT-PERP", "okx", 2), ("ZZZ-USDT-PERP", "binance", 1),
        ("AAA-USDT-PERP", "binance", 1)]
    assert panel["total"] == 4
    capped = funding_panel(state, max_rows=3)
    assert [r["symbol"] for r in capped["rows"]] == ["BTC-USDT-PERP", "BTC-USDT-PERP", "ZZZ-USDT-PERP"]
    assert capped["total"] == 4
    assert panel["rows"][1]["annualized"] == pytest.approx(0.3285)
    assert panel["rows"][1]["next_funding_ts"] == T0 + 3_600_000
    assert panel["rows"][1]["recv_ts"] == T0 + 5
    (spread,) = panel["spreads"]
    assert (spread["symbol"], spread["high"]["exchange"], spread["low"]["exchange"]) == ("BTC-USDT-PERP", "okx",
                                                                                         "binance")
    assert spread["spread_8h"] == pytest.approx(0.0002)
    assert spread["carry_annualized"] == pytest.approx(0.219)


def test_heatmap_buckets_perpetual_liquidations_of_the_last_hour_by_side():
    liqs = [
        liq(3001.0, 100.0), liq(3004.0, 50.0), liq(3012.0, 70.0, "short"),
        liq(3005.0, 999.0, ts=T0 - 3_600_000),  # outside the hour (window is open on the left)
        liq(3003.0, 999.0, symbol="ETH-USDT-20261225"),  # a dated future: not on the perpetual's axis
    ]
    (eth,) = heatmap_panel(liqs, T0)
    assert (eth["asset"], eth["bucket_usd"], eth["median_price"], eth["count"]) == ("ETH", 10.0, 3004.0, 3)
    assert (eth["long_usd"], eth["short_usd"]) == (150.0, 70.0)
    assert eth["buckets"] == [
        {"price_low": 3000.0, "price_high": 3010.0, "long_usd": 150.0, "short_usd": 0.0, "count": 2},
        {"price_low": 3010.0, "price_high": 3020.0, "long_usd": 0.0, "short_usd": 70.0, "count": 1},
    ]


def test_heatmap_widens_buckets_to_fit_and_keeps_the_assets_with_most_usd():
    wide = [liq(3000.0 + 20 * i, 10.0) for i in range(31)]  # 3000..3600, median 3300: $10 buckets would be 60
    small = [liq(1.0, 1.0, symbol=f"X{i}-USDT-PERP") for i in range(5)]
    panels = heatmap_panel(wide + small, T0, assets=2)
    assert [p["asset"] for p in panels] == ["ETH", "X0"]  # most USD first, then by name
    assert panels[0]["bucket_usd"] == 20.0
    assert len(panels[0]["buckets"]) == 31


def test_basis_and_venues_in_the_state_event():
    instruments = [
        Instrument(exchange="binance", raw_symbol="BTCUSD_261210", kind="future", base="BTC", quote="USD",
                   inverse=True, expiry_ms=T0 + 10 * DAY),
        Instrument(exchange="binance", raw_symbol="BTCUSD_PERP", kind="perpetual", base="BTC", quote="USD",
                   inverse=True),
    ]
    assert [i.symbol for i in instruments] == ["BTC-USD-20261210", "BTC-USD-PERP"]
    state = LiveState()
    state.on_event(Ticker(exchange="binance", symbol="BTC-USD-20261210", raw_symbol="BTCUSD_261210", ts=T0,
                          recv_ts=T0, mark_price=101.0, index_price=100.0))
    state.on_event(Ticker(exchange="binance", symbol="BTC-USD-PERP", raw_symbol="BTCUSD_PERP", ts=T0, recv_ts=T0,
                          mark_price=100.5, index_price=100.0))
    sessions = {"binance-cm-0": {"exchange": "binance", "state": "open", "last_frame_age_s": 0.4, "reconnects": 1,
                                 "stalls": 0, "last_error": None,
                                 "streams": {"a": {"stale": False}, "b": {"stale": True}}}}
    snap = dashboard_state(state, alerts={"active": [], "counts": {}}, sessions=sessions, instruments=instruments,
                           wall_ms=T0 + 1234)
    assert (snap["now_ms"], snap["wall_ms"]) == (T0, T0 + 1234)
    (future,) = snap["basis"]
    assert (future["symbol"], future["days_to_expiry"]) == ("BTC-USD-20261210", 10.0)
    assert future["basis"] == pytest.approx(0.01)
    assert future["annualized_basis"] == pytest.approx(0.365)
    assert snap["venues"] == venues_panel(sessions) == [
        {"session": "binance-cm-0", "exchange": "binance", "state": "open", "last_frame_age_s": 0.4, "reconnects": 1,
         "stalls": 0, "streams": 2, "stale_streams": 1, "last_error": None}]
    assert snap["heatmap"] == []
    assert snap["options"] == []
