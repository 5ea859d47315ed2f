"""The report layer and the one-shot CLI commands, on hand-built snapshots with known values.

Every expected number is worked out by hand in a comment. Golden console output (levels 1 and 2 at
width 100) lives in ``tests/cli/golden/``; the JSON schemas in ``docs/cli-schemas/``; the examples in
``docs/cli.md`` are this file's synthetic snapshots rendered. ``UPDATE_GOLDEN=1`` rewrites all three.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from pathlib import Path

import msgspec
import pytest

import streamer.snapshot
from streamer.cli import main
from streamer.config import ExtremeFundingSettings, RulesSettings
from streamer.model import Funding, Instrument, Liquidation, OpenInterest, OptionTicker, Ticker
from streamer.report import (
    REPORT_TYPES,
    BasisReport,
    FundingReport,
    LiquidationsReport,
    OIReport,
    OptionsReport,
    build_report,
    csv_columns,
    json_schema,
    render,
)
from streamer.snapshot import LongShortRatio, Snapshot, VenueSnapshot

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden"
SCHEMAS = ROOT / "docs" / "cli-schemas"
DOCS = ROOT / "docs" / "cli.md"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"

AS_OF = 1_779_868_800_000  # 2026-05-27 08:00 UTC
H = 3_600_000
DAY = 24 * H
JUN = 1_782_460_800_000  # 2026-06-26 08:00 UTC: 30 days after AS_OF
DEC = 1_798_185_600_000  # 2026-12-25 08:00 UTC: 212 days after AS_OF
CLOSED = VenueSnapshot(exchange="bitmex", status="closed", notes=["BitMEX closed on 2026-09-23 04:00 UTC"])


def approx(x):
    return pytest.approx(x, rel=1e-12, abs=1e-15)


def venue(exchange, events=(), **kw):
    kw.setdefault("status", "ok")
    kw.setdefault("fetched_at_ms", AS_OF - 2_000)
    return VenueSnapshot(exchange=exchange, events=list(events), **kw)


def snap(command, venues, **kw):
    kw.setdefault("bases", ["BTC"])
    return Snapshot(command=command, as_of_ms=AS_OF, venues=venues, elapsed_s=0.8, **kw)


def funding(ex, sym, rate, interval=8.0, ts=AS_OF - 60_000, raw=None, **kw):
    r8 = None if interval is None else rate * 8 / interval
    annual = None if interval is None else rate * 24 / interval * 365
    return Funding(exchange=ex, symbol=sym, raw_symbol=raw or sym, ts=ts, recv_ts=ts, rate=rate, interval_h=interval,
                   rate_8h=r8, annualized=annual, **kw)


def oi(ex, sym, base, usd, ts=AS_OF - 60_000, raw=None, contracts=None):
    return OpenInterest(exchange=ex, symbol=sym, raw_symbol=raw or sym, ts=ts, recv_ts=ts, oi_contracts=contracts,
                        oi_base=base, oi_usd=usd)


def ticker(ex, sym, ts=AS_OF - 60_000, raw=None, **kw):
    return Ticker(exchange=ex, symbol=sym, raw_symbol=raw or sym, ts=ts, recv_ts=ts, **kw)


def inst(ex, raw, kind="perpetual", quote="USDT", settle="USDT", inverse=False, expiry_ms=None):
    return Instrument(exchange=ex, raw_symbol=raw, kind=kind, base="BTC", quote=quote, settle=settle, inverse=inverse,
                      expiry_ms=expiry_ms)


# --------------------------------------------------------------------------- synthetic snapshots


def funding_snapshot():
    nxt = AS_OF + 8 * H
    return snap("funding", [
        venue("binance", [
            funding("binance", "BTC-USDT-PERP", 0.00008, ts=AS_OF - 16 * H, raw="BTCUSDT"),
            funding("binance", "BTC-USDT-PERP", 0.00012, ts=AS_OF - 8 * H, raw="BTCUSDT"),
            funding("binance", "BTC-USDT-PERP", 0.0001, raw="BTCUSDT", next_funding_ts=nxt, mark_price=100_050.0,
                    index_price=100_000.0),
            oi("binance", "BTC-USDT-PERP", 95_000.0, 9.5e9, ts=AS_OF - 60_000 - DAY, raw="BTCUSDT"),
            oi("binance", "BTC-USDT-PERP", 100_000.0, 10e9, raw="BTCUSDT"),
            ticker("binance", "BTC-USDT-PERP", raw="BTCUSDT", volume_24h_usd=20e9),
        ]),
        venue("bybit", [
            funding("bybit", "BTC-USDT-PERP", 0.0006, interval=4.0, raw="BTCUSDT", next_funding_ts=AS_OF + 4 * H),
            oi("bybit", "BTC-USDT-PERP", 50_000.0, 5e9, raw="BTCUSDT"),
            ticker("bybit", "BTC-USDT-PERP", raw="BTCUSDT", volume_24h_usd=10e9),
        ]),
        venue("okx", [
            funding("okx", "BTC-USDT-PERP", -0.00005, raw="BTC-USDT-SWAP", predicted_rate=0.00002, next_funding_ts=nxt),
            oi("okx", "BTC-USDT-PERP", 40_000.0, 4e9, raw="BTC-USDT-SWAP"),
            ticker("okx", "BTC-USDT-PERP", raw="BTC-USDT-SWAP", volume_24h_usd=5e9),
        ], stale=True, from_cache=True, fetched_at_ms=AS_OF - 600_000),
        venue("deribit", [
            funding("deribit", "BTC-USD-PERP", 0.0002, raw="BTC-PERPETUAL"),
            oi("deribit", "BTC-USD-PERP", 10_000.0, 1e9, raw="BTC-PERPETUAL"),
            ticker("deribit", "BTC-USD-PERP", raw="BTC-PERPETUAL", volume_24h_usd=1e9),
        ]),
        CLOSED,
    ])


def oi_snapshot():
    def hist(ex, sym, raw, now, d1, d7, price=100_000.0):
        out = [oi(ex, sym, now, now * price, raw=raw)]
        if d1 is not None:
            out.append(oi(ex, sym, d1, d1 * price, ts=AS_OF - 60_000 - DAY, raw=raw))
        if d7 is not None:
            out.append(oi(ex, sym, d7, d7 * price, ts=AS_OF - 60_000 - 7 * DAY, raw=raw))
        return out

    return snap("oi", [
        venue("binance", hist("binance", "BTC-USDT-PERP", "BTCUSDT", 100_000.0, 95_000.0, 80_000.0),
              instruments=[inst("binance", "BTCUSDT")],
              long_short=[LongShortRatio(exchange="binance", symbol="BTC-USDT-PERP", raw_symbol="BTCUSDT",
                                         ts=AS_OF, ratio=1.5, long_fraction=0.6, short_fraction=0.4)]),
        venue("bybit", hist("bybit", "BTC-USDT-PERP", "BTCUSDT", 50_000.0, 40_000.0, None),
              instruments=[inst("bybit", "BTCUSDT")],
              long_short=[LongShortRatio(exchange="bybit", symbol=None, raw_symbol="BTCUSDT", ts=AS_OF, ratio=0.8,
                                         long_fraction=0.4444, short_fraction=0.5556)]),
        venue("okx", hist("okx", "BTC-USDT-PERP", "BTC-USDT-SWAP", 40_000.0, None, None),
              instruments=[inst("okx", "BTC-USDT-SWAP")]),
        venue("deribit", [oi("deribit", "BTC-USD-PERP", 10_000.0, 1e9, raw="BTC-PERPETUAL", contracts=1e8),
                          oi("deribit", "BTC-USD-PERP", 10_000.0, 1e9, ts=AS_OF - 60_000 - DAY, raw="BTC-PERPETUAL",
                             contracts=1e8)],
              instruments=[inst("deribit", "BTC-PERPETUAL", quote="USD", settle="BTC", inverse=True)]),
        CLOSED,
    ])


def liq(ex, side, usd, price, ts, sym="BTC-USDT-PERP"):
    return Liquidation(exchange=ex, symbol=sym, raw_symbol=sym, ts=ts, recv_ts=ts, side=side, price=price,
                       qty=usd / price, value_usd=usd)


def liquidations_snapshot():
    start = AS_OF - H
    note = "no public liquidation history over REST; ask a running daemon with --daemon URL"
    return snap("liquidations", [
        venue("binance", status="unsupported", coverage="unavailable", notes=[note]),
        venue("bybit", status="unsupported", coverage="unavailable", notes=[note]),
        venue("okx", [
            liq("okx", "long", 2_500_000.0, 99_800.0, AS_OF - 30_000),
            liq("okx", "short", 400_000.0, 100_300.0, AS_OF - 20 * 60_000),
            liq("okx", "long", 300_000.0, 99_900.0, AS_OF - 40 * 60_000),
            liq("okx", "long", 9_000_000.0, 95_000.0, AS_OF - 2 * H),  # before the window
        ], coverage="complete", coverage_from_ms=start - H),
        venue("deribit", [liq("deribit", "long", 50_000.0, 99_950.0, AS_OF - 5 * 60_000, sym="BTC-USD-PERP")],
              coverage="lower_bound", coverage_from_ms=start, notes=["the last 1000 trades only: a lower bound"]),
        CLOSED,
    ], window_ms=H)


def opt(ex, expiry, strike, kind, iv, delta, oi_base, vol, fwd):
    return OptionTicker(exchange=ex, symbol=f"BTC-USD-{expiry.replace('-', '')}-{strike}-{kind}", raw_symbol="x",
                        ts=AS_OF - 1000, recv_ts=AS_OF, underlying="BTC", expiry=expiry, strike=float(strike),
                        kind=kind, mark_iv=iv, delta=delta, open_interest=oi_base, volume_24h=vol,
                        underlying_price=fwd)


def options_snapshot():
    jun, dec = "2026-06-26", "2026-12-25"
    deribit = [
        # strike, kind, iv, delta, OI, volume
        opt("deribit", jun, 90_000, "C", 0.60, 0.80, 10.0, 2.0, 100_500.0),
        opt("deribit", jun, 90_000, "P", 0.62, -0.20, 50.0, 10.0, 100_500.0),
        opt("deribit", jun, 100_000, "C", 0.50, 0.50, 100.0, 20.0, 100_500.0),
        opt("deribit", jun, 100_000, "P", 0.52, -0.50, 80.0, 12.0, 100_500.0),
        opt("deribit", jun, 110_000, "C", 0.56, 0.20, 60.0, 8.0, 100_500.0),
        opt("deribit", jun, 110_000, "P", 0.58, -0.80, 5.0, 2.0, 100_500.0),
        opt("deribit", dec, 100_000, "C", 0.55, 0.60, 20.0, 1.0, 103_000.0),
        opt("deribit", dec, 100_000, "P", 0.55, -0.40, 30.0, 1.0, 103_000.0),
        opt("deribit", dec, 110_000, "C", 0.53, 0.40, 10.0, 1.0, 103_000.0),
        opt("deribit", dec, 110_000, "P", 0.53, -0.60, 0.0, 0.0, 103_000.0),
    ]
    okx = [
        opt("okx", jun, 100_000, "C", 1.05, 0.50, 10.0, 1.0, 100_400.0),
        opt("okx", jun, 100_000, "P", 1.05, -0.50, 10.0, 1.0, 100_400.0),
        opt("okx", jun, 110_000, "C", 1.15, 0.30, 5.0, 1.0, 100_400.0),
        opt("okx", jun, 110_000, "P", 1.15, -0.70, 5.0, 1.0, 100_400.0),
    ]
    return snap("options", [
        venue("binance", status="unsupported", notes=["no options on Binance in this tool"]),
        venue("bybit", status="error", notes=["GET /v5/market/tickers: HTTP 503 after 3 tries"]),
        venue("okx", okx),
        venue("deribit", deribit),
        CLOSED,
    ])


def basis_snapshot():
    return snap("basis", [
        venue("binance", [
            ticker("binance", "BTC-USDT-PERP", raw="BTCUSDT", mark_price=100_050.0, index_price=100_000.0),
            ticker("binance", "BTC-USDT-20260626", raw="BTCUSDT_260626", mark_price=101_000.0, index_price=100_000.0),
        ], instruments=[inst("binance", "BTCUSDT"),
                        inst("binance", "BTCUSDT_260626", kind="future", expiry_ms=JUN)]),
        venue("okx", [ticker("okx", "BTC-USDT-PERP", raw="BTC-USDT-SWAP", mark_price=99_990.0, index_price=100_000.0)],
              instruments=[inst("okx", "BTC-USDT-SWAP")]),
        venue("deribit", [
            ticker("deribit", "BTC-USD-PERP", raw="BTC-PERPETUAL", mark_price=100_020.0, index_price=100_000.0),
            ticker("deribit", "BTC-USD-20260626", raw="BTC-26JUN26", mark_price=100_900.0, index_price=100_000.0),
            ticker("deribit", "BTC-USD-20261225", raw="BTC-25DEC26", mark_price=103_000.0, index_price=100_000.0),
        ], instruments=[inst("deribit", "BTC-PERPETUAL", quote="USD", settle="BTC", inverse=True),
                        inst("deribit", "BTC-26JUN26", kind="future", quote="USD", settle="BTC", inverse=True,
                             expiry_ms=JUN),
                        inst("deribit", "BTC-25DEC26", kind="future", quote="USD", settle="BTC", inverse=True,
                             expiry_ms=DEC)]),
        CLOSED,
    ], bases=["BTC"])


SNAPSHOTS = {
    "funding": funding_snapshot,
    "oi": oi_snapshot,
    "liquidations": liquidations_snapshot,
    "options": options_snapshot,
    "basis": basis_snapshot,
}


# --------------------------------------------------------------------------- exact numbers


def test_funding_report_weights_by_oi_and_volume_and_finds_the_widest_spread():
    r = build_report(funding_snapshot())
    assert isinstance(r, FundingReport)
    rows = {row.exchange: row for row in r.rows}
    assert rows["bybit"].rate_8h == approx(0.0012)  # 0.0006 per 4 h × 8 / 4
    assert rows["bybit"].annualized == approx(0.0006 * 6 * 365)
    # settled history at −16 h and −8 h: (0.00008 + 0.00012) / 2; the current estimate is not in it
    assert rows["binance"].avg_rate_8h_24h == approx(0.0001)
    assert rows["binance"].history_samples == 2
    assert rows["binance"].premium == approx(0.0005)  # 100 050 / 100 000 − 1
    assert rows["okx"].stale
    assert not rows["binance"].stale
    agg = r.aggregates[0]
    # OI-weighted: (10 × 0.0001 + 5 × 0.0012 + 4 × −0.00005 + 1 × 0.0002) / 20 = 0.007 / 20
    assert agg.oi_weighted.rate_8h == approx(0.00035)
    assert agg.oi_weighted.annualized == approx(0.00035 * 1095)
    # volume-weighted: (20 × 0.0001 + 10 × 0.0012 + 5 × −0.00005 + 1 × 0.0002) / 36
    assert agg.volume_weighted.rate_8h == approx(0.01395 / 36)
    assert agg.spread is not None
    assert (agg.spread.high.exchange, agg.spread.low.exchange) == ("bybit", "okx")
    assert agg.spread.spread_8h == approx(0.00125)  # 0.0012 − (−0.00005)
    assert agg.spread.carry_annualized == approx(0.00125 * 3 * 365)
    assert (agg.reference_exchange, agg.reference_rate_8h) == ("binance", 0.0001)  # largest OI
    assert agg.oi_usd == approx(20e9)
    assert agg.oi_change_24h_pct == approx(10e9 / 9.5e9 * 100 - 100)  # only Binance has a 24 h-old value
    assert r.alerts == ["⚠ BTC funding on Bybit is 0.12 % per 8 h, above 0.10 %"]


def test_funding_threshold_comes_from_the_rule_settings():
    rules = RulesSettings(extreme_funding=ExtremeFundingSettings(threshold_pct=0.02))
    r = build_report(funding_snapshot(), rules=rules)
    assert r.threshold_rate_8h == approx(0.0002)
    assert r.alerts == [
        "⚠ BTC funding on Bybit is 0.12 % per 8 h, above 0.02 %",
        "⚠ BTC funding on Deribit is 0.02 % per 8 h, above 0.02 %",
    ]


def test_oi_report_shares_margin_split_changes_and_long_short():
    r = build_report(oi_snapshot())
    assert isinstance(r, OIReport)
    rows = {row.exchange: row for row in r.rows}
    assert rows["binance"].oi_change_24h_pct == approx((100_000 - 95_000) / 95_000 * 100)
    assert rows["binance"].oi_change_7d_pct == approx(25.0)  # 100 000 / 80 000
    assert rows["bybit"].oi_change_24h_pct == approx(25.0)
    assert rows["okx"].oi_change_24h_pct is None
    assert rows["deribit"].oi_contracts == 1e8
    assert (rows["deribit"].margin, rows["binance"].margin) == ("coin", "stablecoin")
    assert (rows["binance"].long_short_ratio, rows["binance"].long_fraction) == (1.5, 0.6)
    assert rows["bybit"].long_short_ratio == 0.8  # matched by raw symbol
    agg = r.aggregates[0]
    bd = agg.breakdown
    assert bd.total_usd == approx(20e9)
    assert [(s.exchange, s.share) for s in bd.by_venue] == [
        ("binance", approx(0.5)), ("bybit", approx(0.25)), ("okx", approx(0.2)), ("deribit", approx(0.05))]
    assert bd.coin_margined_usd == approx(1e9)
    assert bd.stablecoin_margined_usd == approx(19e9)
    assert (agg.coin_margined_share, agg.stablecoin_margined_share) == (approx(0.05), approx(0.95))
    # legs with a 24 h-old value: Binance, Bybit, Deribit: (160 000 − 145 000) / 145 000
    assert agg.oi_change_24h_pct == approx(15_000 / 145_000 * 100)
    assert agg.oi_change_7d_pct == approx(25.0)  # Binance alone has a 7 d-old value
    assert r.alerts == [
        "⚠ BTC open interest rose 10.3 % in 24 h across venues, beyond ±10 %",
        "⚠ BTC open interest on Bybit (BTC-USDT-PERP) rose 25.0 % in 24 h, beyond ±10 %",
    ]


def test_liquidations_report_totals_are_a_lower_bound_when_a_venue_has_no_history():
    r = build_report(liquidations_snapshot())
    assert isinstance(r, LiquidationsReport)
    agg = r.aggregates[0]
    assert not agg.complete
    t = agg.totals
    assert (t.long_usd, t.short_usd, t.long_count, t.short_count) == (2_850_000.0, 400_000.0, 3, 1)
    rows = {row.exchange: row for row in r.rows}
    assert set(rows) == {"binance", "bybit", "okx", "deribit"}
    assert rows["binance"].coverage == "unavailable"
    assert rows["binance"].total_usd == 0.0
    assert rows["okx"].total_usd == 3_200_000.0
    assert [x.value_usd for x in agg.largest] == [2_500_000.0, 400_000.0, 300_000.0, 50_000.0]
    assert agg.heat_bucket_usd == 250.0  # median price 99 900 × 0.25 % = 249.75 → 250
    assert [(b.price_low, b.long_usd, b.short_usd) for b in agg.heatmap] == [
        (99_750.0, 2_850_000.0, 0.0), (100_250.0, 0.0, 400_000.0)]
    longs, shorts = agg.cascade
    # last 60 s: 2.5 M long; the lookback hour before holds 0.35 M (× 60 s / 3600 s) → baseline tiny, floor 5 M
    assert (longs.side, longs.window_usd, longs.threshold_usd, longs.level) == ("long", 2_500_000.0, 5e6, "elevated")
    assert longs.score == approx(0.5)
    assert shorts.level == "low"
    assert r.alerts == ["⚠ $2.5M BTC long liquidated on OKX (BTC-USDT-PERP at 99,800.00), at or above $1.0M"]


def test_options_report_atm_iv_skew_pcr_and_max_pain():
    r = build_report(options_snapshot())
    assert isinstance(r, OptionsReport)
    assert [c.exchange for c in r.chains] == ["deribit", "okx"]  # Deribit first
    jun = next(x for x in r.rows if x.exchange == "deribit" and x.expiry == "2026-06-26")
    # strike IVs (call/put mean): 90k 0.61, 100k 0.51, 110k 0.57; ATM at 100 500: 0.51 + 0.06 × 500 / 10 000
    assert jun.atm_iv == approx(0.513)
    assert jun.days_to_expiry == 30.0
    # 25Δ call between (0.20, 0.56) and (0.50, 0.50): 0.55; put between (−0.50, 0.52) and (−0.20, 0.62): 0.60333
    assert jun.skew.call_iv == approx(0.55)
    assert jun.skew.put_iv == approx(0.52 + 0.10 * 0.25 / 0.30)
    assert jun.skew.skew == approx(0.52 + 0.10 * 0.25 / 0.30 - 0.55)
    assert jun.pcr.open_interest == approx(135 / 170)  # puts 50 + 80 + 5, calls 10 + 100 + 60
    assert jun.pcr.volume == approx(24 / 30)
    # pain(90k) = 80 × 10k + 5 × 20k = 900k; pain(100k) = 10 × 10k + 5 × 10k = 150k; pain(110k) = 1.2 M
    assert jun.max_pain is not None
    assert (jun.max_pain.strike, jun.max_pain.payout_usd) == (100_000.0, 150_000.0)
    assert jun.oi_usd == approx(305 * 100_500.0)  # OI 170 calls + 135 puts, × the forward
    dec = next(x for x in r.rows if x.exchange == "deribit" and x.expiry == "2026-12-25")
    assert dec.atm_iv == approx(0.55 - 0.02 * 0.3)  # at 103 000 between 100k (0.55) and 110k (0.53)
    deribit = r.chains[0]
    assert deribit.pcr.open_interest == approx((135 + 30) / (170 + 30))
    assert [p.expiry for p in deribit.term_structure] == ["2026-06-26", "2026-12-25"]
    okx = next(x for x in r.rows if x.exchange == "okx")
    assert okx.atm_iv == approx(1.05 + 0.10 * 0.04)
    assert okx.iv_extreme is not None
    assert okx.iv_extreme.trigger == "high"
    assert r.alerts == ["⚠ BTC ATM IV on OKX for 2026-06-26 is 105.4 %, above 100 %"]


def test_basis_report_premium_and_simple_annualized_basis():
    r = build_report(basis_snapshot())
    assert isinstance(r, BasisReport)
    perps = {row.exchange: row for row in r.rows if row.kind == "perpetual"}
    assert perps["binance"].basis == approx(0.0005)
    assert perps["okx"].basis == approx(-0.0001)
    futures = [(row.exchange, row.expiry, row.days_to_expiry, row.basis, row.annualized_basis)
               for row in r.rows if row.kind == "future"]
    assert futures == [
        ("binance", "2026-06-26", 30.0, approx(0.01), approx(0.01 * 365 / 30)),
        ("deribit", "2026-06-26", 30.0, approx(0.009), approx(0.009 * 365 / 30)),
        ("deribit", "2026-12-25", 212.0, approx(0.03), approx(0.03 * 365 / 212)),
    ]
    assert [(t.expiry, sorted(t.annualized_basis)) for t in r.term_structure] == [
        ("2026-06-26", ["binance", "deribit"]), ("2026-12-25", ["deribit"])]
    assert r.alerts == []


def test_bitmex_closure_is_one_note_line_even_when_the_fetch_layer_gave_none():
    s = basis_snapshot()
    s.venues[-1] = VenueSnapshot(exchange="bitmex", status="closed")
    r = build_report(s)
    assert [v.notes for v in r.venues if v.exchange == "bitmex"] == [["BitMEX closed on 2026-09-23 04:00 UTC"]]
    text = render(r, 2, "console", 100)
    assert text.count("BitMEX closed on 2026-09-23 04:00 UTC") == 1


# --------------------------------------------------------------------------- console


@pytest.mark.parametrize("command", list(SNAPSHOTS))
@pytest.mark.parametrize("level", [1, 2])
def test_console_output_matches_the_golden_file(command, level):
    text = render(build_report(SNAPSHOTS[command]()), level, "console", 100)
    path = GOLDEN / f"{command}_level{level}.txt"
    if UPDATE:
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    assert text == path.read_text()


def test_level_1_is_the_single_line_of_the_spec():
    lines = {c: render(build_report(f()), 1, "console", 100).splitlines() for c, f in SNAPSHOTS.items()}
    assert all(len(v) == 1 for v in lines.values())
    assert lines["funding"][0] == ("BTC Funding: +0.0100% (Binance) | OI-wtd +0.0350% | spread 0.1250% | "
                                   "OI: $20.0B (+5.3% 24h) | ⚠ 1 alert")


@pytest.mark.parametrize("command", list(SNAPSHOTS))
def test_level_3_dashboard_has_every_section(command):
    text = render(build_report(SNAPSHOTS[command]()), 3, "console", 140)
    assert "alerts" in text
    if command == "liquidations":
        assert "heatmap" in text
    if command in ("options", "basis", "funding"):
        assert "signals:" in text
    if command == "basis":
        assert "Term structure" in text


def test_stale_venue_is_starred_with_a_footnote():
    text = render(build_report(funding_snapshot()), 2, "console", 100)
    assert "OKX*" in text
    assert "* OKX: stale data, 10m00s old" in text


def test_console_colour_only_when_asked():
    report = build_report(funding_snapshot())
    assert "\x1b[" not in render(report, 2, "console", 100)
    assert "\x1b[" in render(report, 2, "console", 100, color=True)


# --------------------------------------------------------------------------- JSON and CSV


@pytest.mark.parametrize("command", list(SNAPSHOTS))
def test_json_decodes_into_its_type_and_validates_against_the_schema_file(command):
    report = build_report(SNAPSHOTS[command]())
    text = render(report, 2, "json", None)
    assert msgspec.json.decode(text, type=REPORT_TYPES[command]) == report
    schema = json_schema(command)
    path = SCHEMAS / f"{command}.json"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
    assert json.loads(path.read_text()) == schema, "docs/cli-schemas is out of date: run with UPDATE_GOLDEN=1"
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(json.loads(text), schema)


@pytest.mark.parametrize("command", list(SNAPSHOTS))
def test_csv_has_a_header_and_one_row_per_venue_or_instrument(command):
    report = build_report(SNAPSHOTS[command]())
    rows = list(csv.DictReader(io.StringIO(render(report, 2, "csv", None))))
    assert len(rows) == len(report.rows)
    assert list(rows[0]) == csv_columns(command)


def test_csv_fields_read_back_as_the_report_numbers():
    rows = list(csv.DictReader(io.StringIO(render(build_report(options_snapshot()), 2, "csv", None))))
    jun = next(r for r in rows if r["exchange"] == "deribit" and r["expiry"] == "2026-06-26")
    assert float(jun["atm_iv"]) == approx(0.513)
    assert float(jun["max_pain.strike"]) == 100_000.0
    assert float(jun["pcr.open_interest"]) == approx(135 / 170)
    assert jun["stale"] == "false"
    funding_rows = list(csv.DictReader(io.StringIO(render(build_report(funding_snapshot()), 2, "csv", None))))
    deribit = next(r for r in funding_rows if r["exchange"] == "deribit")
    assert deribit["next_funding_ts"] == ""  # null → empty cell
    assert float(deribit["rate_8h"]) == 0.0002


# --------------------------------------------------------------------------- CLI


def _fake_take_snapshot(result, calls=None):
    async def take_snapshot(command, bases, exchanges=None, **kw):
        if calls is not None:
            calls.append((command, bases, exchanges, kw))
        return result
    return take_snapshot


def test_cli_prints_only_the_report_on_stdout(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(streamer.snapshot, "take_snapshot", _fake_take_snapshot(funding_snapshot(), calls),
                        raising=False)
    assert main(["funding", "xbt", "--exchange", "bybit", "--exchange", "okx", "--level", "1", "--width", "100"]) == 0
    out, err = capsys.readouterr()
    assert out == render(build_report(funding_snapshot()), 1, "console", 100)
    assert err == ""
    command, bases, exchanges, kw = calls[0]
    assert (command, bases, exchanges) == ("funding", ["BTC"], ["bybit", "okx"])
    assert kw["no_cache"] is False
    assert "settings" in kw


def test_cli_json_and_window(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(streamer.snapshot, "take_snapshot", _fake_take_snapshot(liquidations_snapshot(), calls),
                        raising=False)
    argv = ["liquidations", "BTC", "--window", "4h", "--format", "json", "--daemon", "http://127.0.0.1:9464/"]
    assert main(argv) == 0
    out, _ = capsys.readouterr()
    assert msgspec.json.decode(out, type=LiquidationsReport).window_ms == H
    assert calls[0][3]["window_ms"] == 4 * H
    assert calls[0][3]["daemon_url"] == "http://127.0.0.1:9464"


def test_cli_exits_1_naming_every_venue_when_nothing_could_be_fetched(monkeypatch, capsys):
    down = snap("funding", [
        VenueSnapshot(exchange="binance", status="error", notes=["binance: timeout after 3 tries"]),
        VenueSnapshot(exchange="okx", status="error", notes=["HTTP 429, retried with backoff, gave up"]),
        VenueSnapshot(exchange="bitmex", status="closed"),
    ])
    monkeypatch.setattr(streamer.snapshot, "take_snapshot", _fake_take_snapshot(down), raising=False)
    assert main(["funding"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert err == ("streamer funding: nothing could be fetched for BTC: Binance: timeout after 3 tries | "
                   "OKX: HTTP 429, retried with backoff, gave up | BitMEX: BitMEX closed on 2026-09-23 04:00 UTC\n")


@pytest.mark.parametrize(("argv", "message"), [
    (["liquidations", "--window", "2x"], "argument --window: '2x' is not a window"),
    (["liquidations", "--window", "0m"], "argument --window: '0m' is not a window"),
    (["oi", "--exchange", "kraken"], "argument --exchange: invalid choice: 'kraken'"),
    (["funding", "--level", "4"], "argument --level: invalid choice: 4"),
    (["basis", "--format", "xml"], "argument --format: invalid choice: 'xml'"),
    (["options", "B$C"], "'B$C' is not a base asset"),
    (["liquidations", "--daemon", "127.0.0.1:9464"], "expected the daemon's http:// or https:// URL"),
    (["funding", "--window", "1h"], "unrecognized arguments: --window"),
])
def test_cli_usage_errors_exit_2_with_the_bad_value(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_bad_config_exits_2(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("rules:\n  extreme_funding:\n    threshold_pct: high\n")
    assert main(["funding", "--config", str(cfg)]) == 2
    assert "rules.extreme_funding.threshold_pct = 'high'" in capsys.readouterr().err


@pytest.mark.parametrize("command", list(SNAPSHOTS))
def test_every_subcommand_help_has_examples(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    out = capsys.readouterr().out
    assert "examples:" in out
    assert f"streamer {command}" in out


# --------------------------------------------------------------------------- docs/cli.md examples

_EXAMPLE = re.compile(r"(<!-- example: (\w+) level (\d) -->\n```text\n)(.*?)(```\n)", re.S)


def test_docs_examples_are_real_output():
    text = DOCS.read_text()

    def sub(m):
        return m[1] + render(build_report(SNAPSHOTS[m[2]]()), int(m[3]), "console", 100) + m[5]

    new = _EXAMPLE.sub(sub, text)
    assert len(_EXAMPLE.findall(text)) == 15
    if UPDATE:
        DOCS.write_text(new)
        text = new
    assert new == text, "docs/cli.md examples are out of date: run with UPDATE_GOLDEN=1"


@pytest.mark.parametrize(("argv", "check"), [
    (["funding", "BTC", "--sim", "--level", "1"], lambda out: out.startswith("BTC Funding: ")),
    (["oi", "BTC", "--sim", "--level", "3"], lambda out: "margin: coin" in out),
    (["options", "BTC", "--sim", "--format", "json"], lambda out: msgspec.json.decode(out, type=OptionsReport).rows),
    (["basis", "BTC", "--sim", "--format", "csv"], lambda out: list(csv.DictReader(io.StringIO(out)))),
    (["liquidations", "BTC", "--sim"], lambda out: "cascade risk" in out),
])
def test_cli_answers_from_the_simulator(argv, check, capsys):
    if not hasattr(streamer.snapshot, "sim_snapshot"):
        pytest.skip("the fetch layer (streamer.snapshot.sim_snapshot) is not there yet")
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert check(out)


def test_history_rows_without_an_interval_average_with_the_symbols_current_interval():
    # OKX funding-rate-history rows state no interval (rate_8h null); the current event says 8 h
    s = snap("funding", [
        venue("okx", [
            funding("okx", "BTC-USDT-PERP", 0.0001, ts=AS_OF - 16 * H, raw="BTC-USDT-SWAP", interval=None),
            funding("okx", "BTC-USDT-PERP", 0.0003, ts=AS_OF - 8 * H, raw="BTC-USDT-SWAP", interval=None),
            funding("okx", "BTC-USDT-PERP", 0.0002, raw="BTC-USDT-SWAP", next_funding_ts=AS_OF + 8 * H),
        ]),
        CLOSED,
    ])
    (row,) = build_report(s).rows
    assert row.avg_rate_8h_24h == approx(0.0002)  # (0.0001 + 0.0003) / 2, each per 8 h
    assert row.history_samples == 2
