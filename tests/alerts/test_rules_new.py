"""oi_change, iv_extreme, funding_divergence on scripted event sequences (docs/alerts.md quoted in the names)."""

from __future__ import annotations

from collections import Counter

import msgspec
import pytest

from streamer.aggregate.state import LiveState
from streamer.alerts.rules import (
    FUNDING_DIVERGENCE,
    IV_EXTREME,
    OI_CHANGE,
    FundingDivergenceConfig,
    FundingDivergenceRule,
    IvExtremeConfig,
    IvExtremeRule,
    OiChangeConfig,
    OiChangeRule,
    RuleEngine,
    alert_id,
    default_rules,
    rules_from_settings,
)
from streamer.config import RulesSettings
from streamer.model import Funding, MarketEvent, OpenInterest, OptionTicker, Ticker, encode_event

T0 = 1_700_000_000_000  # 2023-11-14T22:13:20Z, a whole second
S = 1000
M = 60 * S
BTC = "BTC-USDT-PERP"


def make_engine(*rules, state=None):
    state = state if state is not None else LiveState()
    return RuleEngine(list(rules), state), state


def feed(engine, state, events):
    out = []
    for ev in events:
        state.on_event(ev)
        out.extend(engine.on_event(ev))
    return out


def by_status(alerts, rule=None):
    return Counter((a.id, a.status) for a in alerts if rule is None or a.rule == rule)


def funding(ts, rate_8h, *, exchange="binance", symbol=BTC):
    return Funding(exchange=exchange, symbol=symbol, raw_symbol=symbol.replace("-", ""), ts=ts, recv_ts=ts + 3,
                   rate=0.0 if rate_8h is None else rate_8h, interval_h=None if rate_8h is None else 8.0,
                   rate_8h=rate_8h, annualized=None if rate_8h is None else rate_8h * 3 * 365)


# --------------------------------------------------------------------------- oi_change


def oi(ts, usd, *, base=None, exchange="okx", symbol=BTC):
    return OpenInterest(exchange=exchange, symbol=symbol, raw_symbol="BTC-USDT-SWAP", ts=ts, recv_ts=ts + 5,
                        oi_base=base, oi_usd=usd)


def oi_level(minute: int) -> float:
    """USD OI by minute: flat 1.00B, +12 % at m61, a dip to +7 % at m80-84, then +4 % vs m60 at m120."""
    if minute <= 60:
        return 1.00e9
    if 80 <= minute <= 84:
        return 1.07e9
    if minute == 120:
        return 1.04e9
    if minute > 120:
        return 1.25e9
    return 1.12e9


def oi_script(last_minute=140):
    return [oi(T0 + m * M, oi_level(m)) for m in range(last_minute + 1)]


def test_oi_change_fires_once_when_abs_change_over_window_reaches_threshold_and_resolves_once_below_half():
    engine, state = make_engine(OiChangeRule())
    alerts = feed(engine, state, oi_script(130))

    episode = alert_id(OI_CHANGE, "okx", BTC, None, T0 + 61 * M)
    assert by_status(alerts) == Counter({(episode, "firing"): 1, (episode, "resolved"): 1})
    firing, resolved = alerts
    assert (firing.ts, firing.started_at, firing.exchange, firing.symbol) == (T0 + 61 * M, T0 + 61 * M, "okx", BTC)
    assert firing.value == pytest.approx(0.12)  # fractions: |C| / 100
    assert firing.threshold == pytest.approx(0.10)
    assert firing.window_s == 3600.0
    assert firing.severity == "warning"
    d = firing.details
    assert (d["unit"], d["direction"], d["window_s"]) == ("usd", "increase", 3600.0)
    assert d["change_pct"] == pytest.approx(12.0)
    assert (d["oi_now"], d["oi_then"]) == (pytest.approx(1.12e9), pytest.approx(1.00e9))
    assert "+12.0% in 1h" in firing.summary
    # m120: 1.04B vs 1.00B at m60 = +4 % < 0.5 × 10 %
    assert (resolved.status, resolved.ts, resolved.started_at) == ("resolved", T0 + 120 * M, T0 + 61 * M)
    assert resolved.value == pytest.approx(0.04)
    assert resolved.threshold == pytest.approx(0.05)
    assert resolved.details["peak_change_pct"] == pytest.approx(12.0)


def test_oi_change_hysteresis_a_dip_between_threshold_and_resolve_level_keeps_the_episode_open():
    engine, state = make_engine(OiChangeRule())
    alerts = feed(engine, state, oi_script(119))  # includes the +7 % dip at m80-84
    assert [a.status for a in alerts] == ["firing"]
    assert [a.id for a in engine.active()] == [alerts[0].id]


def test_oi_change_cooldown_suppresses_until_cooldown_s_after_resolution_then_a_new_id():
    rule = OiChangeRule()
    engine, state = make_engine(rule)
    alerts = feed(engine, state, oi_script(140))
    # resolved at m120; +11.6 % from m121 is inside the 900 s cooldown until m135
    assert [(a.status, a.ts) for a in alerts] == [
        ("firing", T0 + 61 * M),
        ("resolved", T0 + 120 * M),
        ("firing", T0 + 135 * M),
    ]
    assert rule.stats()["suppressed"] == 14  # m121..m134
    assert alerts[2].id == alert_id(OI_CHANGE, "okx", BTC, None, T0 + 135 * M) != alerts[0].id


def test_oi_change_uses_base_units_when_usd_is_unknown_and_reads_tickers():
    events = [Ticker(exchange="bybit", symbol=BTC, raw_symbol="BTCUSDT", ts=T0 + m * M, recv_ts=0,
                     open_interest=50_000.0 if m <= 60 else 44_000.0) for m in range(62)]
    engine, state = make_engine(OiChangeRule())
    alerts = feed(engine, state, events)
    assert [a.status for a in alerts] == ["firing"]
    d = alerts[0].details
    assert (d["unit"], d["direction"]) == ("base", "decrease")
    assert d["change_pct"] == pytest.approx(-12.0)
    assert (d["oi_now"], d["oi_then"]) == (pytest.approx(44_000.0), pytest.approx(50_000.0))


def test_oi_change_window_not_tracked_by_live_state_uses_its_own_history_with_the_same_result():
    script = [oi(T0 + m * M, 1e9 if m <= 30 else 1.2e9) for m in range(40)]
    own_rule = OiChangeRule(OiChangeConfig(window_s=1800))
    own = feed(*make_engine(own_rule), script)
    shared = feed(*make_engine(OiChangeRule(OiChangeConfig(window_s=1800)), state=LiveState(oi_horizons_s=(1800,))),
                  script)
    assert own == shared
    assert [(a.status, a.ts) for a in own] == [("firing", T0 + 31 * M)]
    assert own_rule.stats()["own_history"] == 40


def test_oi_change_late_events_an_old_sample_changes_nothing_a_late_newest_one_counts_stamped_with_the_clock():
    events = [*oi_script(61), oi(T0 + 30 * M + 10 * S, 1.0e9), funding(T0 + 61 * M + 5 * S, 0.0001)]
    events += [oi(T0 + 61 * M + 2 * S, 1.0e9)]  # late (clock is m61+5s): the latest, +0 %: resolves at the clock
    engine, state = make_engine(OiChangeRule())
    alerts = feed(engine, state, events)
    assert [(a.status, a.ts) for a in alerts] == [("firing", T0 + 61 * M), ("resolved", T0 + 61 * M + 5 * S)]


# --------------------------------------------------------------------------- iv_extreme

EXPIRY = "2023-12-29"


def opt(ts, iv, *, strike=35_000.0, kind="C", price=35_000.0, exchange="deribit", expiry=EXPIRY):
    return OptionTicker(exchange=exchange, symbol=f"BTC-USD-{expiry.replace('-', '')}-{int(strike)}-{kind}",
                        raw_symbol="BTC-29DEC23-35000-C", ts=ts, recv_ts=ts + 2, underlying="BTC", expiry=expiry,
                        strike=strike, kind=kind, mark_iv=iv, underlying_price=price)


IV_SCRIPT = [
    opt(T0, 0.80),
    opt(T0 + 1 * S, 1.05),  # ≥ 100 %: fires (high)
    opt(T0 + 2 * S, 0.97),  # below 100 % but not below 95 %: stays open
    opt(T0 + 3 * S, 1.20),
    opt(T0 + 4 * S, 0.94),  # < 95 %: resolves
    opt(T0 + 5 * S, 1.10),  # cooldown (900 s): suppressed
    opt(T0 + 905 * S, 1.10),  # cooldown over: new episode
]


def test_iv_extreme_fires_once_at_atm_iv_at_or_above_high_pct_and_resolves_once_inside_by_the_margin():
    engine, state = make_engine(IvExtremeRule())
    alerts = feed(engine, state, IV_SCRIPT[:5])
    episode = alert_id(IV_EXTREME, "deribit", "BTC-20231229", "high", T0 + S)
    assert by_status(alerts) == Counter({(episode, "firing"): 1, (episode, "resolved"): 1})
    firing, resolved = alerts
    assert (firing.exchange, firing.symbol, firing.ts, firing.window_s) == ("deribit", "BTC-20231229", T0 + S, 0.0)
    assert (firing.value, firing.threshold, firing.severity) == (1.05, 1.0, "warning")  # fractions
    assert firing.details["trigger"] == "high"
    assert firing.details["reference_price"] == 35_000.0
    assert "ATM IV 105.0% (≥ 100%)" in firing.summary
    assert (resolved.ts, resolved.value) == (T0 + 4 * S, 0.94)
    assert resolved.threshold == pytest.approx(0.95)
    assert resolved.details["peak_iv"] == 1.20
    assert resolved.details["reason"] == "back_inside"


def test_iv_extreme_hysteresis_iv_between_high_and_high_minus_margin_keeps_it_open():
    engine, state = make_engine(IvExtremeRule())
    alerts = feed(engine, state, IV_SCRIPT[:4])
    assert [a.status for a in alerts] == ["firing"]
    assert len(engine.active()) == 1


def test_iv_extreme_cooldown_suppresses_then_a_new_episode_with_a_new_id():
    rule = IvExtremeRule()
    engine, state = make_engine(rule)
    alerts = feed(engine, state, IV_SCRIPT)
    assert [(a.status, a.ts) for a in alerts] == [
        ("firing", T0 + S), ("resolved", T0 + 4 * S), ("firing", T0 + 905 * S)]
    assert rule.stats()["suppressed"] == 1
    assert alerts[2].id != alerts[0].id


def test_iv_extreme_low_side_fires_at_or_below_low_pct_as_info_and_resolves_above_low_plus_margin():
    script = [opt(T0, 0.30), opt(T0 + S, 0.20), opt(T0 + 2 * S, 0.24), opt(T0 + 3 * S, 0.26)]
    engine, state = make_engine(IvExtremeRule())
    alerts = feed(engine, state, script)
    assert [(a.status, a.ts, a.severity) for a in alerts] == [
        ("firing", T0 + S, "info"), ("resolved", T0 + 3 * S, "info")]
    assert alerts[0].id == alert_id(IV_EXTREME, "deribit", "BTC-20231229", "low", T0 + S)
    assert alerts[0].threshold == pytest.approx(0.20)
    assert alerts[1].threshold == pytest.approx(0.25)


def test_iv_extreme_atm_iv_is_interpolated_between_strikes_at_the_underlying_price():
    script = [opt(T0, 0.90, strike=30_000.0, price=36_000.0), opt(T0 + S, 1.20, strike=40_000.0, price=36_000.0)]
    engine, state = make_engine(IvExtremeRule())
    alerts = feed(engine, state, script)
    # 0.90 + (1.20 - 0.90) × 6000 / 10000 = 1.08
    assert alerts[0].value == pytest.approx(1.08)


def test_iv_extreme_is_evaluated_at_most_once_per_key_per_clock_second_and_pending_at_the_next_tick():
    rule = IvExtremeRule()
    engine, state = make_engine(rule)
    first = feed(engine, state, [opt(T0 + 100, 0.80), opt(T0 + 300, 1.10), opt(T0 + 900, 1.15)])
    assert first == []  # 1.10 at T0+300 only marked the key pending
    assert rule.stats()["evaluations"] == 1
    assert rule.stats()["pending"] == 1
    later = feed(engine, state, [funding(T0 + 1500, 0.0001)])  # first event of the next second: the tick
    assert [(a.status, a.ts, a.value) for a in later] == [("firing", T0 + 1500, 1.15)]
    assert rule.stats()["evaluations"] == 2
    assert engine.tick(T0 + 1700) == []
    assert rule.stats()["evaluations"] == 2


def test_iv_extreme_late_ticker_does_not_overwrite_the_chain_and_episode_resolves_when_the_expiry_passes():
    expiry_ms = 1_703_836_800_000  # 2023-12-29T08:00:00Z
    script = [opt(T0, 1.10), opt(T0 + S, 1.12), opt(T0 + 500, 0.50)]  # the last one is older than the row: ignored
    engine, state = make_engine(IvExtremeRule())
    alerts = feed(engine, state, script)
    assert [a.status for a in alerts] == ["firing"]
    alerts = feed(engine, state, [funding(expiry_ms - S, 0.0001), funding(expiry_ms + 250, 0.0001)])
    assert [(a.status, a.ts, a.details["reason"]) for a in alerts] == [("resolved", expiry_ms + 250, "expired")]
    assert alerts[0].value == 1.12


# --------------------------------------------------------------------------- funding_divergence

DIV_SCRIPT = [
    funding(T0, 0.0001),
    funding(T0 + 1 * S, 0.0004, exchange="okx"),
    funding(T0 + 2 * S, 0.0008, exchange="bybit"),  # 0.08 % − 0.01 % = 0.07 % ≥ 0.05 %: fires
    funding(T0 + 3 * S, 0.0005, exchange="bybit"),  # 0.04 %: below the threshold, not below 0.025 %: open
    funding(T0 + 4 * S, 0.0003, exchange="bybit"),  # 0.03 %: open
    funding(T0 + 5 * S, 0.0002),  # 0.04 − 0.02 = 0.02 % < 0.025 %: resolves
    funding(T0 + 6 * S, -0.0002),  # 0.06 %: inside the 900 s cooldown: suppressed
]


def test_funding_divergence_fires_once_at_spread_of_rate_8h_across_venues_and_resolves_once_below_half():
    engine, state = make_engine(FundingDivergenceRule())
    alerts = feed(engine, state, DIV_SCRIPT[:6])
    episode = alert_id(FUNDING_DIVERGENCE, None, "BTC", None, T0 + 2 * S)
    assert by_status(alerts) == Counter({(episode, "firing"): 1, (episode, "resolved"): 1})
    firing, resolved = alerts
    assert (firing.exchange, firing.symbol, firing.ts, firing.window_s) == (None, "BTC", T0 + 2 * S, 900.0)
    assert firing.value == pytest.approx(0.0007)
    assert firing.threshold == pytest.approx(0.0005)
    d = firing.details
    assert d["high"] == {"exchange": "bybit", "symbol": BTC, "rate_8h": 0.0008}
    assert d["low"] == {"exchange": "binance", "symbol": BTC, "rate_8h": 0.0001}
    assert sorted(d["venues"]) == ["binance", "bybit", "okx"]
    assert d["carry_annualized"] == pytest.approx(0.0007 * 3 * 365)
    assert (resolved.ts, resolved.value) == (T0 + 5 * S, pytest.approx(0.0002))
    assert resolved.threshold == pytest.approx(0.00025)
    assert resolved.details["peak_spread_8h"] == pytest.approx(0.0007)


def test_funding_divergence_hysteresis_spread_between_resolve_level_and_threshold_keeps_it_open():
    engine, state = make_engine(FundingDivergenceRule())
    alerts = feed(engine, state, DIV_SCRIPT[:5])
    assert [a.status for a in alerts] == ["firing"]


def test_funding_divergence_cooldown_suppresses_then_a_new_episode():
    rule = FundingDivergenceRule()
    engine, state = make_engine(rule)
    script = [*DIV_SCRIPT, funding(T0 + 905 * S, -0.0002), funding(T0 + 906 * S, 0.0006, exchange="okx")]
    alerts = feed(engine, state, script)
    assert [(a.status, a.ts) for a in alerts] == [("firing", T0 + 2 * S), ("resolved", T0 + 5 * S),
                                                  ("firing", T0 + 906 * S)]
    assert rule.stats()["suppressed"] == 1  # T0+6s; at T0+905s okx's and bybit's rates are stale: one venue


def test_funding_divergence_needs_two_fresh_venues_and_resolves_on_tick_when_a_leg_goes_stale():
    engine, state = make_engine(FundingDivergenceRule())
    script = [funding(T0, 0.0001), funding(T0 + S, 0.0010, exchange="okx")]  # fires at T0+1s
    # binance keeps publishing; okx's rate (second T0/1000 + 1) is stale from second + 902 on
    script += [funding(T0 + s * S, 0.0001) for s in range(2, 900, 100)] + [funding(T0 + 902 * S + 1, 0.0001)]
    alerts = feed(engine, state, script)
    assert [(a.status, a.ts) for a in alerts] == [("firing", T0 + S), ("resolved", T0 + 902 * S + 1)]
    assert alerts[1].value == 0.0
    assert list(alerts[1].details["venues"]) == ["binance"]


def test_funding_divergence_one_rate_per_venue_prefers_the_usdt_perp_and_ignores_dated_futures():
    rule = FundingDivergenceRule()
    engine, state = make_engine(rule)
    script = [funding(T0, 0.0030, symbol="BTC-USD-PERP"), funding(T0, 0.0001),
              funding(T0, 0.0030, exchange="okx", symbol="BTC-USD-20231229"),
              funding(T0 + S, 0.0002, exchange="okx", symbol="BTC-USD-PERP")]
    assert feed(engine, state, script) == []  # binance's USDT perp (0.01 %) vs okx's only perp (0.02 %)
    assert [(ev.exchange, ev.symbol) for ev in rule.legs("BTC", T0 + S)] == [
        ("binance", BTC), ("okx", "BTC-USD-PERP")]
    assert rule.stats()["not_perpetual"] == 1


def test_funding_divergence_late_event_counts_while_fresh_and_is_stamped_with_the_clock():
    engine, state = make_engine(FundingDivergenceRule())
    script = [funding(T0, 0.0001), funding(T0 + 10 * S, 0.0001, symbol="ETH-USDT-PERP"),
              funding(T0 + 3 * S, 0.0009, exchange="okx")]  # late by 7 s, still fresh
    alerts = feed(engine, state, script)
    assert [(a.status, a.ts, a.started_at) for a in alerts] == [("firing", T0 + 10 * S, T0 + 10 * S)]


# --------------------------------------------------------------------------- all three


def mixed_script() -> list[MarketEvent]:
    events: list[MarketEvent] = [*oi_script(140), *IV_SCRIPT, *DIV_SCRIPT]
    events += [opt(T0 + 1 * S + 200, 0.5, exchange="okx"), funding(T0 + 7 * S + 1, 0.0002, exchange="bitmex")]
    return sorted(events, key=lambda e: e.ts)


def test_replayed_events_give_identical_alerts_same_ids_same_order():
    runs = []
    for _ in range(2):
        engine, state = make_engine(*default_rules())
        runs.append(feed(engine, state, mixed_script()))
    first, second = runs
    assert first == second
    assert [encode_event(a) for a in first] == [encode_event(a) for a in second]
    counts = Counter((a.rule, a.status) for a in first)
    assert counts == Counter({
        (OI_CHANGE, "firing"): 2, (OI_CHANGE, "resolved"): 1,
        (IV_EXTREME, "firing"): 2, (IV_EXTREME, "resolved"): 1,
        (FUNDING_DIVERGENCE, "firing"): 1, (FUNDING_DIVERGENCE, "resolved"): 1,
    })
    assert all(n <= 2 for n in Counter(a.id for a in first).values())


def test_rules_from_settings_builds_the_new_rules_from_rules_settings_and_leaves_disabled_out():
    names = [r.name for r in rules_from_settings(RulesSettings())]
    assert names[-3:] == [OI_CHANGE, IV_EXTREME, FUNDING_DIVERGENCE]
    settings = msgspec.structs.replace(RulesSettings(), iv_extreme=msgspec.convert({"enabled": False},
                                                                                   type(RulesSettings().iv_extreme)))
    rules = rules_from_settings(settings)
    assert IV_EXTREME not in [r.name for r in rules]
    by_name = {r.name: r for r in rules}
    assert by_name[OI_CHANGE].config == OiChangeConfig()
    assert by_name[FUNDING_DIVERGENCE].config == FundingDivergenceConfig()
    iv = rules_from_settings({"iv_extreme": {"high_pct": 80.0, "low_pct": 0.0}})
    assert next(r for r in iv if r.name == IV_EXTREME).config == IvExtremeConfig(high_pct=80.0, low_pct=0.0)


@pytest.mark.parametrize(
    ("config", "kwargs", "match"),
    [
        (OiChangeConfig, {"window_s": 90.5}, "whole seconds"),
        (OiChangeConfig, {"resolve_ratio": 1.0}, "resolve_ratio"),
        (IvExtremeConfig, {"low_pct": 96.0}, "cross"),
        (IvExtremeConfig, {"low_pct": -1.0}, "low_pct"),
        (FundingDivergenceConfig, {"max_age_s": 0.0}, "max_age_s"),
        (FundingDivergenceConfig, {"cooldown_s": -1.0}, "cooldown_s"),
    ],
)
def test_new_rule_configs_reject_values_that_break_the_definition(config, kwargs, match):
    with pytest.raises(ValueError, match=match):
        config(**kwargs)
