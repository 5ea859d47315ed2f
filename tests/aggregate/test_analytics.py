"""The shared analyses: every expected value is worked out by hand in the test."""

from __future__ import annotations

import msgspec
import pytest

from streamer.aggregate.analytics import (
    DAY_MS,
    HOUR_MS,
    FundingLeg,
    HeatBucket,
    MaxPain,
    OptionChain,
    VenueShare,
    annualize_rate_8h,
    annualized_basis,
    atm_iv,
    average_rate_8h,
    basis_term_structure,
    cascade_risk,
    change_pct,
    days_to_expiry,
    delta_iv,
    expiry_ms_from_date,
    funding_spread,
    heatmap_bucket_usd,
    iv_extreme,
    iv_term_structure,
    largest_liquidations,
    latest_by_key,
    liquidation_heatmap,
    liquidation_totals,
    liquidations_in_window,
    margin_type,
    max_pain,
    now_and_past,
    oi_breakdown,
    oi_change_pct,
    oi_total_change_pct,
    oi_weights,
    option_oi_usd,
    pain_at,
    percentile_rank,
    premium,
    put_call_ratios,
    reference_price,
    share_of,
    skew_25d,
    strike_ivs,
    total_change_pct,
    volume_weights,
    weighted_funding,
)
from streamer.model import Funding, Instrument, Liquidation, OpenInterest, OptionTicker, Ticker

T0 = 1_780_000_000_000  # 2026-05-28, before every expiry used below
MIN = 60_000
EXP_DEC = 1_798_185_600_000  # 2026-12-25 08:00 UTC = (20812 days × 86 400 + 8 × 3600) × 1000
EXP_JUN = 1_782_460_800_000  # 2026-06-26 08:00 UTC = (20630 days × 86 400 + 8 × 3600) × 1000


def approx(x):
    return pytest.approx(x, rel=1e-12, abs=1e-15)


def funding(exchange, rate_8h, *, symbol="BTC-USDT-PERP", ts=T0):
    return Funding(exchange=exchange, symbol=symbol, raw_symbol=symbol, ts=ts, recv_ts=ts, rate=rate_8h or 0.0,
                   interval_h=8.0, rate_8h=rate_8h)


def oi(exchange, usd, *, symbol="BTC-USDT-PERP", raw=None, ts=T0, base=None):
    return OpenInterest(exchange=exchange, symbol=symbol, raw_symbol=raw or symbol, ts=ts, recv_ts=ts, oi_usd=usd,
                        oi_base=base)


def ticker(exchange, symbol, *, raw=None, ts=T0, **fields):
    return Ticker(exchange=exchange, symbol=symbol, raw_symbol=raw or symbol, ts=ts, recv_ts=ts, **fields)


def opt(strike, kind, *, iv=None, delta=None, oi_base=None, vol=None, price=100_000.0, expiry="2026-12-25", ts=T0,
        exchange="deribit", underlying="BTC"):
    return OptionTicker(exchange=exchange, symbol=f"{underlying}-USD-{expiry}-{strike:g}-{kind}", raw_symbol="x",
                        ts=ts, recv_ts=ts, underlying=underlying, expiry=expiry, strike=float(strike), kind=kind,
                        mark_iv=iv, delta=delta, open_interest=oi_base, volume_24h=vol, underlying_price=price)


def liq(exchange, side, usd, *, ts=T0, price=100_000.0):
    return Liquidation(exchange=exchange, symbol="BTC-USDT-PERP", raw_symbol="BTCUSDT", ts=ts, recv_ts=ts, side=side,
                       price=price, qty=None, value_usd=usd)


# =========================================================================== funding


def test_annualizing_an_8h_rate_is_three_fundings_a_day_for_365_days():
    assert annualize_rate_8h(0.0001) == approx(0.0001 * 1095)  # 0.1095 = 10.95 % a year


def test_oi_weighted_funding_weights_each_leg_by_its_usd_open_interest():
    fundings = [funding("binance", 0.0001), funding("okx", 0.0003, symbol="BTC-USDT-PERP")]
    weights = {("binance", "BTC-USDT-PERP"): 3e9, ("okx", "BTC-USDT-PERP"): 1e9}

    avg = weighted_funding(fundings, weights)

    # (3e9 × 0.0001 + 1e9 × 0.0003) / 4e9 = 6e5 / 4e9 = 0.00015
    assert avg.rate_8h == approx(0.00015)
    assert avg.annualized == approx(0.00015 * 1095)
    assert (avg.weight_total, avg.legs, avg.skipped) == (4e9, 2, 0)


def test_weighted_funding_uses_the_latest_event_per_leg_and_skips_legs_without_rate_or_weight():
    fundings = [
        funding("binance", 0.0009, ts=T0 - MIN),  # superseded by the newer one below
        funding("binance", 0.0001, ts=T0),
        funding("bybit", 0.0002),
        funding("okx", None),  # interval unknown: rate_8h null
        funding("deribit", 0.0005, symbol="BTC-USD-PERP"),  # no weight given
    ]
    weights = {("binance", "BTC-USDT-PERP"): 1.0, ("bybit", "BTC-USDT-PERP"): 3.0, ("okx", "BTC-USDT-PERP"): 5.0}

    avg = weighted_funding(fundings, weights)

    # (1 × 0.0001 + 3 × 0.0002) / 4 = 0.0007 / 4 = 0.000175
    assert avg.rate_8h == approx(0.000175)
    assert (avg.legs, avg.skipped) == (2, 2)


def test_weighted_funding_without_any_weighted_leg_is_null_not_zero():
    avg = weighted_funding([funding("binance", 0.0001)], {("binance", "BTC-USDT-PERP"): 0.0})

    assert (avg.rate_8h, avg.annualized, avg.legs, avg.skipped) == (None, None, 0, 1)


def test_oi_and_volume_weights_take_the_latest_known_value_per_leg():
    events = [
        oi("binance", 5.0, ts=T0 - MIN),
        oi("binance", 7.0, ts=T0),
        oi("binance", None, ts=T0 + MIN),  # unknown: the known 7.0 stays
        ticker("okx", "BTC-USDT-PERP", open_interest_usd=2.0),
    ]
    tickers = [
        ticker("okx", "BTC-USDT-PERP", volume_24h_usd=10.0, ts=T0),
        ticker("okx", "BTC-USDT-PERP", volume_24h_usd=11.0, ts=T0 - 1),
    ]

    assert oi_weights(events) == {("binance", "BTC-USDT-PERP"): 7.0, ("okx", "BTC-USDT-PERP"): 2.0}
    assert volume_weights(tickers) == {("okx", "BTC-USDT-PERP"): 10.0}


def test_latest_by_key_prefers_larger_ts_and_on_a_tie_the_later_arrival():
    a, b, c = funding("okx", 0.1, ts=T0), funding("okx", 0.2, ts=T0), funding("okx", 0.3, ts=T0 - 1)

    assert latest_by_key([a, b, c]) == {("okx", "BTC-USDT-PERP"): b}


def test_funding_spread_is_the_widest_pair_between_different_venues_with_its_annual_carry():
    fundings = [
        funding("binance", 0.0004, symbol="BTC-USDT-PERP"),
        funding("binance", -0.0003, symbol="BTC-USD-PERP"),  # same venue as the max: not a divergence
        funding("bybit", 0.0001),
        funding("okx", -0.0001),
    ]

    spread = funding_spread(fundings)

    # Cross-venue pairs: binance USDT 0.0004 vs okx −0.0001 → 0.0005 (widest);
    # bybit 0.0001 vs binance USD −0.0003 → 0.0004.
    assert spread is not None
    assert spread.high == FundingLeg(exchange="binance", symbol="BTC-USDT-PERP", rate_8h=0.0004)
    assert spread.low == FundingLeg(exchange="okx", symbol="BTC-USDT-PERP", rate_8h=-0.0001)
    assert spread.spread_8h == approx(0.0005)
    assert spread.carry_annualized == approx(0.0005 * 3 * 365)  # 0.5475 = 54.75 % a year
    assert spread.venues == 3


def test_funding_spread_needs_two_venues():
    one_venue = [funding("binance", 0.0004), funding("binance", 0.0001, symbol="BTC-USD-PERP")]

    assert funding_spread(one_venue) is None
    assert funding_spread([]) is None


def test_average_rate_8h_is_the_mean_over_the_left_open_24h_window():
    history = [
        funding("binance", 0.0009, ts=T0 - DAY_MS),  # exactly 24 h old: out
        funding("binance", 0.0001, ts=T0 - DAY_MS + 1),
        funding("binance", 0.0002, ts=T0 - 8 * HOUR_MS),
        funding("binance", None, ts=T0 - HOUR_MS),  # no rate_8h: not a sample
        funding("binance", 0.0006, ts=T0),
        funding("binance", 0.0100, ts=T0 + 1),  # after as_of: out
    ]

    assert average_rate_8h(history, T0) == approx((0.0001 + 0.0002 + 0.0006) / 3)  # 0.0003
    assert average_rate_8h(history, T0 - 2 * DAY_MS) is None


# =========================================================================== open interest


def inst(exchange, raw, *, base="BTC", quote="USDT", settle="USDT", inverse=False, kind="perpetual", expiry_ms=None):
    return Instrument(exchange=exchange, raw_symbol=raw, kind=kind, base=base, quote=quote, settle=settle,
                      inverse=inverse, expiry_ms=expiry_ms)


def test_margin_type_is_coin_when_settled_in_the_base_and_stablecoin_when_in_a_stablecoin():
    assert margin_type(inst("binance", "BTCUSDT")) == "stablecoin"
    assert margin_type(inst("bitmex", "XBTUSD", quote="USD", settle="XBT", inverse=True)) == "coin"  # XBT = BTC
    assert margin_type(inst("bybit", "BTCUSD", quote="USD", settle=None, inverse=True)) == "coin"
    assert margin_type(inst("bitmex", "ETHUSD", base="ETH", quote="USD", settle="BTC")) is None  # quanto
    assert margin_type(inst("okx", "X", settle=None)) is None
    assert margin_type(None) is None


def test_oi_breakdown_sums_venues_gives_shares_and_splits_coin_from_stablecoin_margin():
    events = [
        oi("binance", 6e9, raw="BTCUSDT"),
        oi("binance", 1e9, symbol="BTC-USD-PERP", raw="BTCUSD_PERP"),
        oi("okx", 2e9, raw="BTC-USDT-SWAP"),
        oi("bybit", 1e9, raw="BTCPERP"),  # no instrument metadata
        oi("deribit", None, symbol="BTC-USD-PERP", raw="BTC-PERPETUAL"),  # value unknown
    ]
    instruments = [
        inst("binance", "BTCUSDT"),
        inst("binance", "BTCUSD_PERP", quote="USD", settle="BTC", inverse=True),
        inst("okx", "BTC-USDT-SWAP"),
    ]

    out = oi_breakdown(events, instruments)

    assert out.total_usd == 10e9
    assert out.by_venue == [
        VenueShare(exchange="binance", oi_usd=7e9, share=0.7),
        VenueShare(exchange="okx", oi_usd=2e9, share=0.2),
        VenueShare(exchange="bybit", oi_usd=1e9, share=0.1),
    ]
    assert (out.coin_margined_usd, out.stablecoin_margined_usd, out.unclassified_usd) == (1e9, 8e9, 1e9)
    assert (out.legs, out.skipped) == (4, 1)


def test_oi_breakdown_finds_instruments_by_unified_symbol_too():
    out = oi_breakdown([oi("okx", 5.0, raw="other-raw")], [inst("okx", "BTC-USDT-SWAP")])

    assert out.stablecoin_margined_usd == 5.0


def test_change_pct_compares_now_with_the_newest_sample_at_or_before_now_minus_horizon():
    samples = [
        (T0 - DAY_MS - HOUR_MS, 80.0),  # older than the one below: not used
        (T0 - DAY_MS - 1, 100.0),  # newest at or before T0 − 24 h
        (T0 - DAY_MS + 1, 90.0),  # after the edge: not a past value
        (T0, 110.0),
        (T0 + MIN, None),  # null values are ignored
    ]

    assert change_pct(samples, DAY_MS) == approx(10.0)  # (110 − 100) / 100 × 100


def test_change_pct_sample_exactly_at_the_edge_counts_and_as_of_picks_the_now_sample():
    samples = [(T0 - DAY_MS, 200.0), (T0, 150.0), (T0 + HOUR_MS, 999.0)]

    assert change_pct(samples, DAY_MS, as_of_ms=T0) == approx(-25.0)  # (150 − 200) / 200 × 100


def test_change_pct_refuses_a_past_sample_older_than_the_tolerance():
    samples = [(T0 - DAY_MS - 3 * HOUR_MS, 100.0), (T0, 110.0)]

    # Default tolerance 1/12 of 24 h = 2 h: a sample 3 h before the edge is too old.
    assert change_pct(samples, DAY_MS) is None
    assert change_pct(samples, DAY_MS, tolerance=None) == approx(10.0)
    assert change_pct(samples, DAY_MS, tolerance=0.125) == approx(10.0)  # 3 h allowed


def test_change_pct_is_null_without_history_or_from_zero():
    assert change_pct([(T0, 5.0)], DAY_MS) is None
    assert change_pct([], DAY_MS) is None
    assert change_pct([(T0 - DAY_MS, 0.0), (T0, 5.0)], DAY_MS) is None


def test_oi_change_pct_measures_base_units_or_usd():
    week = 7 * DAY_MS
    events = [
        oi("binance", 50e9, base=1_000_000.0, ts=T0 - week),
        ticker("binance", "BTC-USDT-PERP", open_interest=1_100_000.0, open_interest_usd=44e9, ts=T0),
    ]

    assert oi_change_pct(events, week, unit="base") == approx(10.0)  # 1.1 M / 1.0 M BTC
    assert oi_change_pct(events, week) == approx(-12.0)  # 44 B / 50 B USD


def test_now_and_past_is_the_pair_change_pct_compares():
    samples = [(T0 - DAY_MS - 1, 100.0), (T0 - DAY_MS + 1, 90.0), (T0, 110.0)]

    assert now_and_past(samples, DAY_MS) == (110.0, 100.0)
    assert now_and_past([(T0 - DAY_MS - 3 * HOUR_MS, 100.0), (T0, 1.0)], DAY_MS) is None  # past too old
    assert now_and_past([(T0, 1.0)], DAY_MS) is None


def test_total_change_pct_sums_only_series_with_both_a_now_and_a_past_value():
    a = [(T0 - DAY_MS, 100.0), (T0, 120.0)]
    b = [(T0 - DAY_MS, 300.0), (T0, 280.0)]
    c = [(T0, 5_000.0)]  # no history: left out of both sums, not read as growth

    # (120 + 280 − 100 − 300) / 400 × 100 = 0 ; with a alone: +20 %
    assert total_change_pct([a, b, c], DAY_MS) == approx(0.0)
    assert total_change_pct([a, c], DAY_MS) == approx(20.0)
    assert total_change_pct([c], DAY_MS) is None
    assert total_change_pct([[(T0 - DAY_MS, 0.0), (T0, 1.0)]], DAY_MS) is None


def test_oi_total_change_pct_groups_venue_symbols():
    groups = [
        [oi("binance", 10e9, base=100.0, ts=T0 - DAY_MS), oi("binance", 12e9, base=110.0)],
        [oi("okx", 5e9, base=50.0, ts=T0 - DAY_MS), oi("okx", 4e9, base=40.0)],
    ]

    assert oi_total_change_pct(groups, DAY_MS) == approx((16e9 - 15e9) / 15e9 * 100)
    assert oi_total_change_pct(groups, DAY_MS, unit="base") == approx(0.0)  # 150 → 150 BTC


def test_share_of_is_a_fraction_and_null_of_nothing():
    assert share_of(25.0, 100.0) == 0.25
    assert share_of(1.0, 0.0) is None


# =========================================================================== basis


def test_heatmap_bucket_is_a_round_step_near_a_quarter_percent_of_price():
    assert heatmap_bucket_usd(95_000.0) == 250.0  # raw 237.5
    assert heatmap_bucket_usd(3_400.0) == 10.0  # raw 8.5
    assert heatmap_bucket_usd(150.0) == 0.5  # raw 0.375
    assert heatmap_bucket_usd(80_000.0) == 200.0  # raw exactly 200
    with pytest.raises(ValueError, match="positive"):
        heatmap_bucket_usd(0.0)


def test_premium_is_mark_over_index_minus_one_and_null_without_a_usable_index():
    assert premium(100_100.0, 100_000.0) == approx(0.001)
    assert premium(99_950.0, 100_000.0) == approx(-0.0005)
    assert premium(None, 100_000.0) is None
    assert premium(100.0, 0.0) is None


def test_annualized_basis_is_simple_basis_times_365_over_days():
    assert days_to_expiry(T0 + 36 * DAY_MS + DAY_MS // 2, T0) == 36.5
    assert annualized_basis(0.01, 36.5) == approx(0.1)  # 0.01 × 365 / 36.5, not 1.01^10 − 1
    assert annualized_basis(0.01, 0.0) is None
    assert annualized_basis(None, 10.0) is None


def test_basis_term_structure_lists_unexpired_futures_by_expiry_with_simple_annualized_basis():
    as_of = EXP_JUN - 29 * DAY_MS - DAY_MS // 5  # 29.2 days before the June expiry
    instruments = [
        inst("deribit", "BTC-25DEC26", quote="USD", settle="BTC", inverse=True, kind="future", expiry_ms=EXP_DEC),
        inst("deribit", "BTC-26JUN26", quote="USD", settle="BTC", inverse=True, kind="future", expiry_ms=EXP_JUN),
        inst("deribit", "BTC-27MAR26", kind="future", expiry_ms=as_of),  # expires now: left out
        inst("deribit", "BTC-PERPETUAL", quote="USD", settle="BTC", inverse=True),  # perpetual: left out
    ]
    tickers = [
        ticker("deribit", "BTC-USD-20261225", raw="BTC-25DEC26", mark_price=105_000.0, index_price=100_000.0),
        ticker("deribit", "BTC-USD-20260626", raw="BTC-26JUN26", mark_price=100_800.0, index_price=100_000.0),
        ticker("deribit", "BTC-USD-20260327", raw="BTC-27MAR26", mark_price=1.0, index_price=1.0),
        ticker("deribit", "BTC-USD-PERP", raw="BTC-PERPETUAL", mark_price=1.0, index_price=1.0),
        ticker("okx", "BTC-USD-20261225", raw="UNKNOWN", mark_price=1.0, index_price=1.0),  # no metadata
    ]

    points = basis_term_structure(tickers, instruments, as_of)

    assert [p.raw_symbol for p in points] == ["BTC-26JUN26", "BTC-25DEC26"]
    jun, dec = points
    assert jun.expiry == "2026-06-26"
    assert jun.days_to_expiry == approx(29.2)
    assert jun.basis == approx(0.008)  # (100 800 − 100 000) / 100 000
    assert jun.annualized_basis == approx(0.008 * 365 / 29.2)  # = 0.1
    assert jun.annualized_basis == approx(0.1)
    # Dec: 29.2 + (EXP_DEC − EXP_JUN) / 1 day = 29.2 + 182 = 211.2 days; basis 0.05
    assert dec.days_to_expiry == approx(211.2)
    assert dec.annualized_basis == approx(0.05 * 365 / 211.2)


def test_basis_row_stays_with_a_null_basis_when_a_price_is_missing():
    instruments = [inst("okx", "BTC-USD-261225", kind="future", expiry_ms=EXP_DEC)]
    tickers = [ticker("okx", "BTC-USD-20261225", raw="BTC-USD-261225", mark_price=None, index_price=100_000.0)]

    (point,) = basis_term_structure(tickers, instruments, T0)

    assert (point.basis, point.annualized_basis) == (None, None)


# =========================================================================== options


def test_expiry_date_means_0800_utc_that_day():
    assert expiry_ms_from_date("2026-12-25") == EXP_DEC
    assert expiry_ms_from_date("2026-06-26") == EXP_JUN
    with pytest.raises(ValueError):
        expiry_ms_from_date("26DEC25")


def test_strike_iv_is_the_mean_of_call_and_put_when_both_are_quoted():
    rows = [opt(100_000, "C", iv=0.50), opt(100_000, "P", iv=0.54), opt(90_000, "P", iv=0.60),
            opt(110_000, "C", iv=None)]

    assert strike_ivs(rows) == [(90_000.0, 0.60), (100_000.0, approx(0.52))]


SMILE = [
    opt(90_000, "C", iv=0.58), opt(90_000, "P", iv=0.62),  # 0.60
    opt(100_000, "C", iv=0.50), opt(100_000, "P", iv=0.50),  # 0.50
    opt(110_000, "C", iv=0.45),  # 0.45 (no put quote)
]


def test_atm_iv_interpolates_linearly_in_strike_between_the_bracketing_strikes():
    assert atm_iv(SMILE, 95_000.0) == approx(0.55)  # halfway 0.60 → 0.50
    assert atm_iv(SMILE, 102_500.0) == approx(0.4875)  # 0.50 + (0.45 − 0.50) × 2 500 / 10 000
    assert atm_iv(SMILE, 100_000.0) == approx(0.50)  # on a strike: its own IV


def test_atm_iv_does_not_extrapolate_beyond_the_listed_strikes():
    assert atm_iv(SMILE, 85_000.0) is None
    assert atm_iv(SMILE, 111_000.0) is None
    assert atm_iv([opt(100_000, "C", iv=0.5, price=None)]) is None  # no price known


def test_atm_iv_defaults_to_the_latest_rows_underlying_price():
    rows = [
        opt(90_000, "C", iv=0.60, price=92_000.0, ts=T0 - 1),
        opt(100_000, "C", iv=0.50, price=97_500.0, ts=T0),  # latest: the forward is 97 500
    ]

    assert reference_price(rows) == 97_500.0
    assert atm_iv(rows) == approx(0.525)  # 0.60 + (0.50 − 0.60) × 7 500 / 10 000


SKEW_ROWS = [
    opt(70_000, "P", iv=0.70, delta=-0.10),
    opt(80_000, "P", iv=0.60, delta=-0.20),
    opt(85_000, "P", iv=0.56, delta=-0.30),
    opt(100_000, "P", iv=0.50, delta=-0.50),
    opt(100_000, "C", iv=0.50, delta=0.50),
    opt(115_000, "C", iv=0.48, delta=0.30),
    opt(120_000, "C", iv=0.47, delta=0.20),
    opt(130_000, "C", iv=0.49, delta=0.10),
    opt(140_000, "C", iv=0.52, delta=None),  # no greeks: not a point
]


def test_25_delta_skew_interpolates_put_and_call_iv_linearly_in_delta():
    skew = skew_25d(SKEW_ROWS)

    # put: between −0.30 (0.56) and −0.20 (0.60): 0.56 + 0.04 × 0.05 / 0.10 = 0.58
    # call: between 0.20 (0.47) and 0.30 (0.48): 0.47 + 0.01 × 0.05 / 0.10 = 0.475
    assert skew.put_iv == approx(0.58)
    assert skew.call_iv == approx(0.475)
    assert skew.skew == approx(0.105)


def test_delta_iv_uses_an_exact_delta_and_is_null_when_the_target_is_not_bracketed():
    assert delta_iv(SKEW_ROWS, "P", -0.20) == approx(0.60)
    assert delta_iv(SKEW_ROWS, "C", 0.05) is None
    assert skew_25d([opt(80_000, "P", iv=0.6, delta=-0.2)]).skew is None


def test_put_call_ratios_by_volume_and_by_open_interest():
    rows = [
        opt(90_000, "P", vol=10.0, oi_base=30.0),
        opt(100_000, "P", vol=20.0, oi_base=20.0),
        opt(100_000, "C", vol=15.0, oi_base=60.0),
        opt(110_000, "C", vol=5.0, oi_base=40.0),
        opt(120_000, "C", vol=None, oi_base=None),
    ]

    pcr = put_call_ratios(rows)

    assert pcr.volume == approx(1.5)  # 30 / 20
    assert pcr.open_interest == approx(0.5)  # 50 / 100
    assert (pcr.put_volume, pcr.call_volume, pcr.put_oi, pcr.call_oi) == (30.0, 20.0, 50.0, 100.0)


def test_put_call_ratio_is_null_without_calls():
    pcr = put_call_ratios([opt(90_000, "P", vol=1.0, oi_base=1.0)])

    assert (pcr.volume, pcr.open_interest) == (None, None)


PAIN_ROWS = [
    opt(90, "C", oi_base=10.0), opt(100, "C", oi_base=20.0), opt(110, "C", oi_base=5.0),
    opt(90, "P", oi_base=5.0), opt(100, "P", oi_base=10.0), opt(110, "P", oi_base=20.0),
]


def test_pain_is_the_payout_to_call_and_put_holders_at_a_settlement_price():
    # S = 90:  calls 0;                          puts 10 × (100 − 90) + 20 × (110 − 90) = 100 + 400
    # S = 100: calls 10 × (100 − 90) = 100;      puts 20 × (110 − 100) = 200
    # S = 110: calls 10 × 20 + 20 × 10 = 400;    puts 0
    assert pain_at(PAIN_ROWS, 90.0) == 500.0
    assert pain_at(PAIN_ROWS, 100.0) == 300.0
    assert pain_at(PAIN_ROWS, 110.0) == 400.0


def test_max_pain_is_the_listed_strike_with_the_least_payout():
    assert max_pain(PAIN_ROWS) == MaxPain(strike=100.0, payout_usd=300.0)


def test_max_pain_tie_goes_to_the_lower_strike_and_no_open_interest_means_none():
    rows = [opt(90, "C", oi_base=1.0), opt(110, "P", oi_base=1.0), opt(100, "C")]  # 100 listed, no OI
    # pain(90) = put 1 × 20 = 20; pain(100) = call 1 × 10 + put 1 × 10 = 20; pain(110) = call 1 × 20 = 20: a tie
    assert max_pain(rows) == MaxPain(strike=90.0, payout_usd=20.0)
    assert max_pain([opt(100, "C"), opt(100, "P", oi_base=0.0)]) is None


def test_option_oi_usd_is_base_open_interest_times_the_price():
    assert option_oi_usd(PAIN_ROWS, 100_000.0) == 70.0 * 100_000.0
    assert option_oi_usd(PAIN_ROWS, None) is None


# --------------------------------------------------------------------------- chain


def test_chain_keeps_the_latest_ticker_per_option_and_refuses_other_venues():
    chain = OptionChain("deribit")
    new = opt(100_000, "C", iv=0.5, ts=T0)

    assert chain.update(new)
    assert not chain.update(opt(100_000, "C", iv=0.9, ts=T0 - 1))  # older
    assert chain.update(opt(100_000, "C", iv=0.6, ts=T0))  # same ts, later arrival: wins
    assert not chain.update(opt(100_000, "C", iv=0.7, exchange="okx"))

    assert [r.mark_iv for r in chain.rows("BTC", "2026-12-25")] == [0.6]
    assert len(chain) == 1


def test_chain_lists_expiries_nearest_first_and_rows_by_strike_then_kind():
    chain = OptionChain()
    for ev in [opt(110, "P"), opt(100, "P"), opt(100, "C"), opt(100, "C", expiry="2026-06-26"),
               opt(100, "C", underlying="ETH")]:
        chain.update(ev)

    assert chain.underlyings() == ["BTC", "ETH"]
    assert chain.expiries("BTC") == ["2026-06-26", "2026-12-25"]
    assert [(r.strike, r.kind) for r in chain.rows("BTC", "2026-12-25")] == [(100.0, "C"), (100.0, "P"), (110.0, "P")]
    assert chain.rows("SOL", "2026-12-25") == []
    assert chain.expiries("SOL") == []


def test_chain_summary_gives_every_analysis_per_unexpired_expiry():
    chain = OptionChain("deribit")
    dec = [
        opt(90_000, "C", iv=0.58, delta=0.70, oi_base=10.0, vol=4.0),
        opt(90_000, "P", iv=0.62, delta=-0.30, oi_base=5.0, vol=6.0),
        opt(100_000, "C", iv=0.50, delta=0.50, oi_base=20.0, vol=8.0),
        opt(100_000, "P", iv=0.50, delta=-0.50, oi_base=10.0, vol=2.0),
        opt(110_000, "C", iv=0.44, delta=0.30, oi_base=5.0, vol=8.0),
        opt(110_000, "P", iv=0.46, delta=-0.70, oi_base=20.0, vol=2.0),
    ]
    jun = [opt(100_000, "C", iv=0.40, oi_base=1.0, expiry="2026-06-26", price=100_000.0),
           opt(100_000, "P", iv=0.40, oi_base=3.0, expiry="2026-06-26", price=100_000.0)]
    old = [opt(100_000, "C", iv=0.9, oi_base=99.0, expiry="2026-03-27")]
    for ev in dec + jun + old:
        chain.update(ev)
    as_of = EXP_JUN - 10 * DAY_MS

    summary = chain.summary("BTC", as_of)

    assert [e.expiry for e in summary.expiries] == ["2026-06-26", "2026-12-25"]  # March expired
    j, d = summary.expiries
    assert j.days_to_expiry == 10.0
    assert d.days_to_expiry == 192.0  # 10 + 182
    assert (j.atm_iv, j.oi_usd) == (approx(0.40), 4.0 * 100_000.0)
    assert d.underlying_price == 100_000.0
    assert d.atm_iv == approx(0.50)
    # puts: −0.30 → 0.62, −0.50 → 0.50: no point at or past −0.25 on the upper side → no bracket
    assert d.skew.put_iv is None
    # calls: 0.30 → 0.44, 0.50 → 0.50: 0.25 is not bracketed either
    assert d.skew.call_iv is None
    assert d.pcr.volume == approx(10.0 / 20.0)
    assert d.pcr.open_interest == approx(35.0 / 35.0)
    # pain(90k) = puts 10 × 10k + 20 × 20k = 500k; pain(100k) = calls 10 × 10k + puts 20 × 10k = 300k;
    # pain(110k) = calls 10 × 20k + 20 × 10k = 400k
    assert d.max_pain == MaxPain(strike=100_000.0, payout_usd=300_000.0)
    assert (d.oi_base, d.oi_usd) == (70.0, 7_000_000.0)
    assert (d.strikes, d.options) == (3, 6)
    assert summary.total_oi_usd == 7_400_000.0
    assert summary.pcr.open_interest == approx(38.0 / 36.0)  # puts 35 + 3, calls 35 + 1
    assert [(p.expiry, p.atm_iv) for p in iv_term_structure(summary.expiries)] == [
        ("2026-06-26", approx(0.40)),
        ("2026-12-25", approx(0.50)),
    ]


def test_chain_summary_encodes_to_json_for_the_cli():
    chain = OptionChain("deribit")
    chain.update(opt(100_000, "C", iv=0.5, oi_base=1.0))

    data = msgspec.json.decode(msgspec.json.encode(chain.summary("BTC", T0)))

    assert data["underlying"] == "BTC"
    assert data["exchange"] == "deribit"
    assert data["expiries"][0]["atm_iv"] == 0.5
    assert data["expiries"][0]["max_pain"] == {"strike": 100_000.0, "payout_usd": 0.0}


def test_chain_prune_drops_expiries_at_or_before_their_0800_utc_expiry():
    chain = OptionChain()
    chain.update(opt(100, "C", expiry="2026-06-26"))
    chain.update(opt(100, "P", expiry="2026-06-26"))
    chain.update(opt(100, "C", expiry="2026-12-25"))

    assert chain.prune(EXP_JUN - 1) == 0
    assert chain.prune(EXP_JUN) == 2
    assert chain.expiries("BTC") == ["2026-12-25"]
    assert chain.prune(EXP_DEC) == 1
    assert chain.underlyings() == []


# =========================================================================== IV extreme


def test_percentile_rank_is_the_mid_rank_in_percent():
    history = [0.40, 0.50, 0.50, 0.60]

    assert percentile_rank(0.50, history) == 50.0  # (1 below + ½ × 2 equal) / 4
    assert percentile_rank(0.70, history) == 100.0
    assert percentile_rank(0.30, history) == 0.0
    assert percentile_rank(0.5, []) is None


def test_iv_extreme_flags_absolute_thresholds_first():
    high = iv_extreme(0.95, high=0.90, low=0.30, history=[0.1] * 10, high_percentile=99.0)
    low = iv_extreme(0.25, high=0.90, low=0.30)

    assert (high.extreme, high.trigger, high.threshold, high.percentile) == (True, "high", 0.90, 100.0)
    assert (low.extreme, low.trigger, low.threshold, low.percentile) == (True, "low", 0.30, None)


def test_iv_extreme_flags_percentiles_of_its_own_history():
    history = [0.40 + 0.01 * i for i in range(20)]  # 0.40 .. 0.59

    top = iv_extreme(0.595, history=history, high_percentile=95.0, low_percentile=5.0)
    bottom = iv_extreme(0.40, history=history, high_percentile=95.0, low_percentile=5.0)
    middle = iv_extreme(0.495, history=history, high_percentile=95.0, low_percentile=5.0)

    assert (top.trigger, top.threshold, top.percentile) == ("high_percentile", 95.0, 100.0)
    assert (bottom.trigger, bottom.percentile) == ("low_percentile", 2.5)  # ½ × 1 equal / 20
    assert (middle.extreme, middle.trigger, middle.percentile) == (False, None, 50.0)  # 10 below / 20


def test_iv_extreme_ignores_percentiles_until_the_history_is_long_enough():
    out = iv_extreme(0.9, history=[0.5, 0.6], high_percentile=90.0, min_history=3)

    assert (out.extreme, out.percentile) == (False, None)


# =========================================================================== liquidations


def test_liquidation_window_is_open_on_the_left_and_closed_on_the_right():
    liqs = [liq("okx", "long", 1.0, ts=T0 - HOUR_MS), liq("okx", "long", 2.0, ts=T0 - HOUR_MS + 1),
            liq("okx", "long", 3.0, ts=T0), liq("okx", "long", 4.0, ts=T0 + 1)]

    assert [x.value_usd for x in liquidations_in_window(liqs, T0, HOUR_MS)] == [2.0, 3.0]


def test_liquidation_totals_by_side_and_venue_count_unsized_prints_without_summing_them():
    liqs = [
        liq("binance", "long", 1_000_000.0),
        liq("binance", "long", 250_000.0),
        liq("binance", "short", 500_000.0),
        liq("okx", "short", 2_000_000.0),
        liq("okx", "long", None),
    ]

    out = liquidation_totals(liqs)

    o = out.overall
    assert (o.long_usd, o.short_usd, o.total_usd) == (1_250_000.0, 2_500_000.0, 3_750_000.0)
    assert (o.long_count, o.short_count, o.unsized) == (3, 2, 1)
    assert list(out.by_venue) == ["binance", "okx"]
    b, k = out.by_venue["binance"], out.by_venue["okx"]
    assert (b.long_usd, b.short_usd, b.long_count, b.short_count, b.unsized) == (1_250_000.0, 500_000.0, 2, 1, 0)
    assert (k.long_usd, k.short_usd, k.long_count, k.short_count, k.unsized) == (0.0, 2_000_000.0, 1, 1, 1)


def test_largest_liquidations_are_sorted_by_usd_then_newest_first():
    a = liq("okx", "long", 5.0, ts=T0)
    b = liq("binance", "short", 9.0, ts=T0)
    c = liq("bybit", "long", 5.0, ts=T0 + 1)
    d = liq("bybit", "long", None, ts=T0 + 2)

    assert largest_liquidations([a, b, c, d], 3) == [b, c, a]
    assert largest_liquidations([a, b, c, d], 1) == [b]
    assert largest_liquidations([a], 0) == []


def test_heatmap_sums_usd_by_side_in_half_open_price_buckets():
    liqs = [
        liq("okx", "long", 100.0, price=99_999.0),
        liq("okx", "long", 200.0, price=99_500.0),
        liq("okx", "short", 300.0, price=100_000.0),  # the lower edge belongs to the bucket above
        liq("okx", "short", None, price=100_400.0),
        liq("okx", "long", 999.0, price=None),  # no price: not placed
        liq("okx", "short", 50.0, price=101_250.0),
    ]

    assert liquidation_heatmap(liqs, 500.0) == [
        HeatBucket(price_low=99_500.0, price_high=100_000.0, long_usd=300.0, short_usd=0.0, count=2),
        HeatBucket(price_low=100_000.0, price_high=100_500.0, long_usd=0.0, short_usd=300.0, count=2),
        HeatBucket(price_low=101_000.0, price_high=101_500.0, long_usd=0.0, short_usd=50.0, count=1),
    ]
    with pytest.raises(ValueError):
        liquidation_heatmap(liqs, 0.0)


def _cascade_liqs():
    return [
        liq("binance", "long", 6_000_000.0, ts=T0 - 50 * MIN),  # lookback
        liq("okx", "long", 6_000_000.0, ts=T0 - MIN),  # lookback: its right edge
        liq("okx", "long", 3_000_000.0, ts=T0 - MIN + 1),  # window
        liq("bybit", "long", 1_000_000.0, ts=T0),  # window
        liq("bybit", "short", 7_000_000.0, ts=T0 - 30_000),  # window, other side
        liq("bybit", "long", 50_000_000.0, ts=T0 - 61 * MIN),  # before the lookback
    ]


def test_cascade_risk_scores_window_usd_against_the_cascade_rule_threshold():
    risk = cascade_risk(_cascade_liqs(), T0, side="long")

    # N = 3 M + 1 M = 4 M; lookback 12 M over 3600 s → B = 12 M × 60 / 3600 = 200 k per minute
    # T = max(5 M, 5 × 200 k) = 5 M; score = 4 / 5 = 0.8
    assert risk.window_usd == 4_000_000.0
    assert risk.baseline_usd == approx(200_000.0)
    assert risk.threshold_usd == 5_000_000.0
    assert risk.score == approx(0.8)
    assert risk.level == "elevated"


def test_cascade_risk_threshold_follows_the_baseline_above_the_floor():
    risk = cascade_risk(_cascade_liqs(), T0, side="long", min_usd=100_000.0)

    # T = max(100 k, 5 × 200 k = 1 M) = 1 M; score = 4 M / 1 M = 4
    assert risk.threshold_usd == approx(1_000_000.0)
    assert risk.score == approx(4.0)
    assert risk.level == "high"


def test_cascade_risk_scales_the_baseline_to_the_lookback_actually_covered():
    start = T0 - 31 * MIN  # data from 30 min before the window
    liqs = [x for x in _cascade_liqs() if x.ts >= start]

    # Lookback holds the 6 M at T0 − 1 min: B = 6 M × 60 / 1800 = 200 k
    half = cascade_risk(liqs, T0, side="long", coverage_start_ms=start)
    # Less than one window of lookback: no baseline, threshold = min_usd
    short = cascade_risk(liqs, T0, side="long", coverage_start_ms=T0 - MIN - 59_999, min_usd=1e6)

    assert half.baseline_usd == approx(200_000.0)
    assert (short.baseline_usd, short.threshold_usd, short.score) == (None, 1e6, 4.0)


def test_cascade_risk_of_both_sides_adds_them_and_low_below_half_the_threshold():
    both = cascade_risk(_cascade_liqs(), T0)
    calm = cascade_risk([liq("okx", "short", 1_000_000.0, ts=T0)], T0)

    assert both.window_usd == 11_000_000.0  # 4 M long + 7 M short
    assert both.side is None
    assert (calm.score, calm.level) == (approx(0.2), "low")
    with pytest.raises(ValueError):
        cascade_risk([], T0, min_usd=0.0)
