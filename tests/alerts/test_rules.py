"""Alert rules on event time: episodes fire once and resolve once; hysteresis, cooldown, baseline, ids."""

from __future__ import annotations

import hashlib
from collections import Counter

import msgspec
import pytest

from streamer.aggregate.state import LiveState
from streamer.alerts.rules import (
    CASCADE,
    EXTREME_FUNDING,
    LARGE_LIQUIDATION,
    ExtremeFundingConfig,
    ExtremeFundingRule,
    LargeLiquidationConfig,
    LargeLiquidationRule,
    LiquidationCascadeConfig,
    LiquidationCascadeRule,
    RuleEngine,
    alert_id,
    default_rules,
    format_usd,
    rules_from_settings,
)
from streamer.model import Alert, Funding, Liquidation, MarketEvent, Ticker, encode_event

T0 = 1_700_000_000_000  # a whole second
S = 1000  # ms per second


def liq(ts, usd, *, symbol="ETH-USDT-PERP", side="long", exchange="binance", price=3000.0):
    return Liquidation(
        exchange=exchange,
        symbol=symbol,
        raw_symbol=symbol.replace("-", ""),
        ts=ts,
        recv_ts=ts + 7,
        side=side,
        price=price,
        qty=None if usd is None else usd / price,
        value_usd=usd,
    )


def funding(ts, rate_8h, *, exchange="binance", symbol="BTC-USDT-PERP"):
    return Funding(
        exchange=exchange,
        symbol=symbol,
        raw_symbol=symbol.replace("-", ""),
        ts=ts,
        recv_ts=ts + 3,
        rate=0.0001 if rate_8h is None else rate_8h,
        interval_h=None if rate_8h is None else 8.0,
        rate_8h=rate_8h,
        annualized=None if rate_8h is None else rate_8h * 3 * 365,
    )


def make_engine(*rules):
    state = LiveState()
    return RuleEngine(list(rules) or default_rules(), state), state


def feed(engine, state, events):
    out = []
    for ev in events:
        state.on_event(ev)
        out.extend(engine.on_event(ev))
    return out


def by_status(alerts, rule=None):
    return Counter((a.id, a.status) for a in alerts if rule is None or a.rule == rule)


# --------------------------------------------------------------------------- cascade

ETH = "ETH-USDT-PERP"

# Three venues push ETH longs over the $5M floor at T0+10s; the window then
# slides on BTC funding events only (ETH goes quiet).
CASCADE_SCRIPT = [
    liq(T0, 2_000_000.0),
    liq(T0 + 5 * S, 2_000_000.0, exchange="okx"),
    liq(T0 + 10 * S, 1_500_000.0, exchange="bybit"),  # N = 5.5M >= 5M: fires
    liq(T0 + 20 * S, 3_000_000.0),  # N = 8.5M
    liq(T0 + 30 * S, 1_000_000.0, exchange="okx"),  # N = 9.5M
    funding(T0 + 40 * S, 0.0001),
    funding(T0 + 61 * S, 0.0001),  # T0 leaves the window: 7.5M
    funding(T0 + 66 * S, 0.0001),  # T0+5s leaves: 5.5M
    funding(T0 + 71 * S, 0.0001),  # T0+10s leaves: 4.0M < floor, >= 2.5M: still open
    funding(T0 + 81 * S, 0.0001),  # T0+20s leaves: 1.0M < 2.5M: resolves
    funding(T0 + 90 * S, 0.0001),
    funding(T0 + 200 * S, 0.0001),
]


def test_cascade_rule_fires_once_and_resolves_once_per_episode():
    engine, state = make_engine(LiquidationCascadeRule())
    alerts = feed(engine, state, CASCADE_SCRIPT)

    expected_id = alert_id(CASCADE, None, ETH, "long", T0 + 10 * S)
    assert by_status(alerts) == Counter({(expected_id, "firing"): 1, (expected_id, "resolved"): 1})
    firing, resolved = alerts
    assert (firing.status, firing.ts, firing.started_at) == ("firing", T0 + 10 * S, T0 + 10 * S)
    assert (resolved.status, resolved.ts, resolved.started_at) == ("resolved", T0 + 81 * S, T0 + 10 * S)
    assert firing.exchange is None
    assert firing.symbol == ETH
    assert firing.value == 5_500_000.0
    assert firing.threshold == 5_000_000.0
    assert firing.window_s == 60.0
    assert resolved.value == 1_000_000.0
    assert resolved.threshold == 2_500_000.0
    assert engine.stats()["alerts"][CASCADE] == {"firing": 1, "resolved": 1}
    assert engine.active() == []


def test_cascade_firing_alert_has_summary_with_units_and_venue_details():
    engine, state = make_engine(LiquidationCascadeRule())
    firing = feed(engine, state, CASCADE_SCRIPT[:3])[0]

    assert firing.summary == "ETH-USDT-PERP: $5.5M of longs liquidated in 60s (floor $5.0M)"
    assert firing.severity == "warning"
    assert firing.details["side"] == "long"
    assert firing.details["venues"] == {"binance": 2_000_000.0, "bybit": 1_500_000.0, "okx": 2_000_000.0}
    assert firing.details["count"] == 3
    assert firing.details["unsized"] == 0
    assert firing.details["baseline_usd"] is None  # less than one window of history
    assert firing.details["window_s"] == 60.0


def test_cascade_resolved_alert_reports_the_whole_episode():
    engine, state = make_engine(LiquidationCascadeRule())
    resolved = feed(engine, state, CASCADE_SCRIPT)[1]

    assert resolved.details["peak_usd"] == 9_500_000.0
    assert resolved.details["episode_venues"] == {"binance": 5_000_000.0, "bybit": 1_500_000.0, "okx": 3_000_000.0}
    assert resolved.details["episode_notional_usd"] == 9_500_000.0
    assert resolved.details["episode_count"] == 5
    assert resolved.details["duration_s"] == 71.0
    assert resolved.severity == "warning"  # repeats the firing severity
    assert resolved.summary == (
        "ETH-USDT-PERP: long liquidation cascade over, $1.0M in 60s (< $2.5M); peak $9.5M, $9.5M over 71s"
    )


def test_cascade_hysteresis_dip_below_floor_but_above_resolve_level_stays_open():
    engine, state = make_engine(LiquidationCascadeRule())
    alerts = feed(engine, state, CASCADE_SCRIPT[:9])  # up to T0+71s: N = 4.0M

    assert [a.status for a in alerts] == ["firing"]
    assert len(engine.active()) == 1
    # At T0+79s the window is seconds 20..79: the $3M of T0+20s keeps it at $4.0M.
    assert engine.tick(T0 + 79 * S) == []
    # At T0+80s it is seconds 21..80: $1.0M < $2.5M.
    assert [(a.status, a.value) for a in engine.tick(T0 + 80 * S)] == [("resolved", 1_000_000.0)]


def test_cascade_quiet_symbol_resolves_as_time_moves_on_other_streams():
    engine, state = make_engine(LiquidationCascadeRule())
    alerts = feed(engine, state, CASCADE_SCRIPT[:5])
    assert [a.status for a in alerts] == ["firing"]

    # Nothing more about ETH: a single BTC ticker far later moves event time.
    later = feed(
        engine,
        state,
        [Ticker(exchange="okx", symbol="BTC-USDT-PERP", raw_symbol="BTC-USDT-SWAP", ts=T0 + 600 * S, recv_ts=0)],
    )

    assert [(a.status, a.symbol, a.ts) for a in later] == [("resolved", ETH, T0 + 600 * S)]
    assert later[0].value == 0.0


def test_cascade_engine_tick_resolves_at_the_given_event_time():
    engine, state = make_engine(LiquidationCascadeRule())
    feed(engine, state, CASCADE_SCRIPT[:5])

    assert engine.tick(T0 + 60 * S) == []  # 7.5M: open
    resolved = engine.tick(T0 + 90 * S)
    assert [(a.status, a.ts) for a in resolved] == [("resolved", T0 + 90 * S)]
    assert engine.tick(T0 + 50 * S) == []  # time never goes back


def test_cascade_cooldown_suppresses_new_episode_until_it_has_passed():
    engine, state = make_engine(rule := LiquidationCascadeRule())
    first = feed(engine, state, CASCADE_SCRIPT[:-1])  # resolves at T0+81s; cooldown until T0+381s
    assert [a.status for a in first] == ["firing", "resolved"]

    inside = feed(engine, state, [liq(T0 + 100 * S, 6_000_000.0), liq(T0 + 380_999, 20_000_000.0)])
    assert inside == []
    assert rule.stats()["suppressed"] == 2

    after = feed(engine, state, [liq(T0 + 381 * S, 1_000_000.0)])  # window: 20M + 1M
    assert [a.status for a in after] == ["firing"]
    assert after[0].started_at == T0 + 381 * S
    assert after[0].id == alert_id(CASCADE, None, ETH, "long", T0 + 381 * S)
    assert after[0].id != first[0].id
    # Baseline: the 15.5M before the window (T0 .. T0+322s) over 322 s of history.
    assert after[0].details["baseline_usd"] == 15_500_000.0 * 60_000 / 322_000
    assert after[0].threshold == 5.0 * (15_500_000.0 * 60_000 / 322_000)


def test_cascade_baseline_multiple_blocks_firing_on_symbol_that_always_has_large_liquidations():
    engine, state = make_engine(LiquidationCascadeRule())
    # SOL: $1M every 15 s for 70 minutes, so every 60 s window holds $4M (under the floor).
    steady = [liq(T0 + k * 15 * S, 1_000_000.0, symbol="SOL-USDT-PERP") for k in range(281)]
    assert feed(engine, state, steady) == []

    burst_ts = T0 + 4201 * S
    sol = feed(engine, state, [liq(burst_ts, 6_000_000.0, symbol="SOL-USDT-PERP")])
    eth = feed(engine, state, [liq(burst_ts, 10_000_000.0, symbol=ETH)])

    rule = engine.rules[0]
    assert isinstance(rule, LiquidationCascadeRule)
    # SOL window: 4M steady + 6M = 10M >= floor, but its baseline is 4M per 60 s: threshold 20M.
    assert sol == []
    assert rule.baseline("SOL-USDT-PERP", "long", burst_ts) == 4_000_000.0
    assert rule.threshold("SOL-USDT-PERP", "long", burst_ts) == (20_000_000.0, 4_000_000.0)
    # ETH had an hour of silence: baseline 0, so the floor decides.
    assert [(a.status, a.symbol, a.threshold) for a in eth] == [("firing", ETH, 5_000_000.0)]
    assert eth[0].details["baseline_usd"] == 0.0
    assert eth[0].severity == "warning"


def test_cascade_floor_alone_applies_before_one_window_of_history():
    rule = LiquidationCascadeRule()
    engine, state = make_engine(rule)
    feed(engine, state, [funding(T0, 0.0001)])

    assert rule.baseline(ETH, "long", T0 + 59 * S) is None
    assert rule.baseline(ETH, "long", T0 + 119 * S) == 0.0  # window starts T0+60s: 60 s covered
    alerts = feed(engine, state, [liq(T0 + 30 * S, 5_000_000.0)])
    assert [(a.status, a.threshold, a.details["baseline_usd"]) for a in alerts] == [("firing", 5_000_000.0, None)]


def test_cascade_is_one_episode_per_symbol_across_venues_and_sides_are_separate():
    engine, state = make_engine(LiquidationCascadeRule())
    events = [
        liq(T0, 5_000_000.0, exchange="binance"),  # fires ETH long
        liq(T0 + 1 * S, 5_000_000.0, exchange="okx"),  # same episode
        liq(T0 + 2 * S, 5_000_000.0, exchange="bybit"),  # same episode
        liq(T0 + 3 * S, 5_000_000.0, side="short", exchange="okx"),  # ETH short: its own episode
    ]
    alerts = feed(engine, state, events)

    assert [(a.status, a.symbol, a.details["side"]) for a in alerts] == [
        ("firing", ETH, "long"),
        ("firing", ETH, "short"),
    ]


def test_cascade_severity_is_critical_at_three_times_the_floor():
    engine, state = make_engine(LiquidationCascadeRule())
    alerts = feed(engine, state, [liq(T0, 15_000_000.0)])

    assert alerts[0].severity == "critical"
    assert alerts[0].summary == "ETH-USDT-PERP: $15.0M of longs liquidated in 60s (floor $5.0M)"


def test_cascade_unsized_liquidations_count_but_add_no_notional():
    rule = LiquidationCascadeRule()
    engine, state = make_engine(rule)
    alerts = feed(engine, state, [liq(T0, None), liq(T0 + S, None), liq(T0 + 2 * S, 5_000_000.0)])

    assert alerts[0].value == 5_000_000.0
    assert alerts[0].details["count"] == 3
    assert alerts[0].details["unsized"] == 2
    assert rule.stats()["unsized"] == 2


def test_cascade_summary_names_baseline_when_it_sets_the_threshold():
    cfg = LiquidationCascadeConfig(window_s=60, min_usd=1_000_000.0, baseline_multiple=2.0)
    engine, state = make_engine(LiquidationCascadeRule(cfg))
    # Two $750K liquidations 70 s apart (no window reaches the $1M floor) ...
    quiet = feed(engine, state, [funding(T0, 0.0001), liq(T0 + 10 * S, 750_000.0), liq(T0 + 80 * S, 750_000.0)])
    assert quiet == []
    # ... make, at T0+179s (window = seconds 120..179, 120 s of history before it),
    # a baseline of 1.5M × 60 / 120 = 750K per window: threshold 2 × 750K = 1.5M.
    alerts = feed(engine, state, [liq(T0 + 179 * S, 1_600_000.0)])

    assert alerts[0].threshold == 1_500_000.0
    assert alerts[0].summary == (
        "ETH-USDT-PERP: $1.6M of longs liquidated in 60s (threshold $1.5M = 2× baseline $750.0K)"
    )


# --------------------------------------------------------------------------- extreme funding


def test_extreme_funding_fires_once_and_resolves_once_across_oscillation():
    engine, state = make_engine(ExtremeFundingRule())
    rates = [0.0005, 0.0012, 0.00095, 0.0013, 0.00085, 0.0009, 0.00081, 0.00079, 0.0005]
    alerts = feed(engine, state, [funding(T0 + i * 60 * S, r) for i, r in enumerate(rates)])

    ident = alert_id(EXTREME_FUNDING, "binance", "BTC-USDT-PERP", None, T0 + 60 * S)
    assert by_status(alerts) == Counter({(ident, "firing"): 1, (ident, "resolved"): 1})
    firing, resolved = alerts
    assert (firing.value, firing.threshold, firing.ts) == (0.0012, 0.001, T0 + 60 * S)
    assert (resolved.value, resolved.threshold, resolved.ts) == (0.00079, 0.0008, T0 + 7 * 60 * S)
    assert firing.exchange == "binance"
    assert firing.window_s == 0.0
    assert resolved.details["peak_rate_8h"] == 0.0013
    assert firing.summary == (
        "binance BTC-USDT-PERP: funding +0.1200% per 8h (|rate| ≥ 0.1000%), +131.4% annualized; longs pay shorts"
    )
    assert resolved.summary == (
        "binance BTC-USDT-PERP: funding back to +0.0790% per 8h (|rate| < 0.0800%); peak +0.1300%"
    )


def test_extreme_funding_threshold_is_inclusive_and_negative_rates_count_by_magnitude():
    engine, state = make_engine(ExtremeFundingRule())
    alerts = feed(engine, state, [funding(T0, 0.001), funding(T0, -0.0015, symbol="ETH-USDT-PERP")])

    assert [(a.symbol, a.value) for a in alerts] == [("BTC-USDT-PERP", 0.001), ("ETH-USDT-PERP", 0.0015)]
    assert alerts[1].details["rate_8h"] == -0.0015
    assert alerts[1].details["direction"] == "shorts_pay_longs"


def test_extreme_funding_sign_flip_that_stays_extreme_is_the_same_episode():
    engine, state = make_engine(ExtremeFundingRule())
    alerts = feed(engine, state, [funding(T0, 0.0011), funding(T0 + S, -0.0013), funding(T0 + 2 * S, 0.0001)])

    assert [a.status for a in alerts] == ["firing", "resolved"]
    assert alerts[1].details["peak_rate_8h"] == -0.0013


def test_extreme_funding_with_null_rate_8h_never_fires_and_is_counted():
    rule = ExtremeFundingRule()
    engine, state = make_engine(rule)
    alerts = feed(engine, state, [funding(T0, None), funding(T0 + S, None)])

    assert alerts == []
    assert rule.stats()["rate_8h_null"] == 2


def test_extreme_funding_cooldown_then_new_episode():
    rule = ExtremeFundingRule(ExtremeFundingConfig(threshold_pct=0.1, cooldown_s=300))
    engine, state = make_engine(rule)
    events = [
        funding(T0, 0.002),  # fires
        funding(T0 + 10 * S, 0.0001),  # resolves at T0+10s
        funding(T0 + 309 * S, 0.002),  # within cooldown: suppressed
        funding(T0 + 310 * S, 0.002),  # cooldown over: new episode
    ]
    alerts = feed(engine, state, events)

    assert [(a.status, a.started_at) for a in alerts] == [
        ("firing", T0),
        ("resolved", T0),
        ("firing", T0 + 310 * S),
    ]
    assert rule.stats()["suppressed"] == 1
    assert alerts[2].severity == "warning"
    assert alerts[0].severity == "warning"  # 0.2 % < 3 × 0.1 %


def test_extreme_funding_details_carry_the_24h_average_from_live_state():
    engine, state = make_engine(ExtremeFundingRule())
    alerts = feed(engine, state, [funding(T0, 0.0002), funding(T0 + 60 * S, 0.0004), funding(T0 + 120 * S, 0.0036)])

    assert alerts[0].details["avg_rate_8h_24h"] == pytest.approx((0.0002 + 0.0004 + 0.0036) / 3)
    assert alerts[0].severity == "critical"  # 0.36 % >= 3 × 0.1 %


# --------------------------------------------------------------------------- large liquidation


def test_large_liquidation_emits_firing_then_resolved_with_same_id_and_ts():
    engine, state = make_engine(LargeLiquidationRule())
    alerts = feed(engine, state, [liq(T0, 999_999.0), liq(T0 + S, 1_000_000.0, exchange="okx", price=3012.5)])

    ident = alert_id(LARGE_LIQUIDATION, "okx", ETH, "long", T0 + S)
    assert [(a.id, a.status, a.ts, a.started_at, a.window_s) for a in alerts] == [
        (ident, "firing", T0 + S, T0 + S, 0.0),
        (ident, "resolved", T0 + S, T0 + S, 0.0),
    ]
    assert alerts[0].summary == "okx ETH-USDT-PERP: $1.0M long liquidated at 3,012.50 (≥ $1.0M)"
    assert alerts[0].severity == "warning"
    assert engine.active() == []


def test_large_liquidations_in_the_same_ms_get_distinct_ids():
    engine, state = make_engine(LargeLiquidationRule())
    alerts = feed(engine, state, [liq(T0, 2e6), liq(T0, 2e6), liq(T0 + 1, 2e6)])

    ids = [a.id for a in alerts if a.status == "firing"]
    assert ids == [
        alert_id(LARGE_LIQUIDATION, "binance", ETH, "long", T0),
        alert_id(LARGE_LIQUIDATION, "binance", ETH, "long", T0, 2),
        alert_id(LARGE_LIQUIDATION, "binance", ETH, "long", T0 + 1),
    ]
    assert len(set(ids)) == 3


def test_large_liquidation_severity_and_unsized():
    rule = LargeLiquidationRule(LargeLiquidationConfig(min_usd=1e6, critical_usd=1e7))
    engine, state = make_engine(rule)
    alerts = feed(engine, state, [liq(T0, None), liq(T0 + S, 10_000_000.0)])

    assert {a.severity for a in alerts} == {"critical"}
    assert rule.stats() == {"liquidations": 2, "unsized": 1, "alerts": 1}


# --------------------------------------------------------------------------- engine


def mixed_script() -> list[MarketEvent]:
    events: list[MarketEvent] = list(CASCADE_SCRIPT)
    rates = [0.0005, 0.0011, 0.00095, 0.0012, 0.00079, 0.0011, 0.0004]
    events += [funding(T0 + 7 * S + i * 30 * S, r, exchange="bybit") for i, r in enumerate(rates)]
    events += [liq(T0 + 12_345, 2_500_000.0, symbol="BTC-USDT-PERP", side="short", exchange="okx")]
    events += [liq(T0 + 500 * S, 7_000_000.0, symbol="BTC-USD-PERP", side="short", exchange="bitmex")]
    events += [funding(T0 + 600 * S, 0.0001, exchange="okx")]
    return sorted(events, key=lambda e: e.ts)


def test_replayed_events_give_identical_alerts_same_ids_same_order():
    first_engine, first_state = make_engine(*default_rules()[:3])  # the liquidation and funding rules
    second_engine, second_state = make_engine(*default_rules()[:3])
    first = feed(first_engine, first_state, mixed_script())
    second = feed(second_engine, second_state, mixed_script())

    assert first == second
    assert [encode_event(a) for a in first] == [encode_event(a) for a in second]
    counts = Counter((a.rule, a.status) for a in first)
    assert counts == Counter(
        {
            (CASCADE, "firing"): 2,
            (CASCADE, "resolved"): 2,
            (LARGE_LIQUIDATION, "firing"): 7,
            (LARGE_LIQUIDATION, "resolved"): 7,
            (EXTREME_FUNDING, "firing"): 1,
            (EXTREME_FUNDING, "resolved"): 1,
        }
    )
    # Every episode: exactly one firing and one resolved.
    assert set(Counter(a.id for a in first).values()) == {2}


def test_alert_id_is_a_sha1_prefix_of_the_episode_key():
    material = f"{CASCADE}||{ETH}|long|{T0}"
    assert alert_id(CASCADE, None, ETH, "long", T0) == hashlib.sha1(material.encode()).hexdigest()[:16]


def test_engine_ignores_alert_events_and_emits_in_order():
    emitted: list[Alert] = []
    engine = RuleEngine(default_rules(), LiveState(), emit=emitted.append)
    alerts = engine.on_event(liq(T0, 20_000_000.0))
    assert [a.rule for a in alerts] == [CASCADE, LARGE_LIQUIDATION, LARGE_LIQUIDATION]
    assert emitted == alerts

    assert engine.on_event(alerts[0]) == []
    assert engine.stats()["events"] == 1
    assert engine.counts() == {
        CASCADE: {"firing": 1, "resolved": 0},
        LARGE_LIQUIDATION: {"firing": 1, "resolved": 1},
        EXTREME_FUNDING: {"firing": 0, "resolved": 0},
        "oi_change": {"firing": 0, "resolved": 0},
        "iv_extreme": {"firing": 0, "resolved": 0},
        "funding_divergence": {"firing": 0, "resolved": 0},
    }
    snap = engine.snapshot()
    assert [a["rule"] for a in snap["active"]] == [CASCADE]
    assert msgspec.json.decode(msgspec.json.encode(snap)) == snap


def test_engine_accepts_state_per_call():
    engine = RuleEngine(default_rules())
    state = LiveState()
    ev = funding(T0, 0.002)
    state.on_event(ev)
    alerts = engine.on_event(ev, state)
    assert alerts[0].details["avg_rate_8h_24h"] == 0.002


def test_engine_rejects_duplicate_rule_names():
    with pytest.raises(ValueError, match="duplicate"):
        RuleEngine([ExtremeFundingRule(), ExtremeFundingRule()], LiveState())


def test_rules_from_settings_reads_sections_and_leaves_disabled_rules_out():
    class Section(msgspec.Struct):
        enabled: bool = True
        window_s: float = 30.0
        min_usd: float = 2_000_000.0

    class Off(msgspec.Struct):
        enabled: bool = False

    class Settings(msgspec.Struct):
        liquidation_cascade: Section = msgspec.field(default_factory=Section)
        extreme_funding: Off = msgspec.field(default_factory=Off)

    rules = rules_from_settings(Settings())
    assert [r.name for r in rules] == [CASCADE, LARGE_LIQUIDATION, "oi_change", "iv_extreme", "funding_divergence"]
    cascade = rules[0]
    assert isinstance(cascade, LiquidationCascadeRule)
    assert cascade.config == LiquidationCascadeConfig(window_s=30.0, min_usd=2_000_000.0)
    assert [r.name for r in rules_from_settings({"large_liquidation": {"min_usd": 5e5}})] == [
        CASCADE,
        LARGE_LIQUIDATION,
        EXTREME_FUNDING,
        "oi_change",
        "iv_extreme",
        "funding_divergence",
    ]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"resolve_ratio": 1.0}, "resolve_ratio"),
        ({"min_usd": 0.0}, "min_usd"),
        ({"window_s": 1.5}, "whole seconds"),
        ({"cooldown_s": -1.0}, "cooldown_s"),
    ],
)
def test_cascade_config_rejects_values_that_break_the_definition(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LiquidationCascadeConfig(**kwargs)


def test_format_usd_uses_one_human_unit():
    assert [format_usd(v) for v in (7_240_000.0, 850_000.0, 1.25e9, 512.4)] == ["$7.2M", "$850.0K", "$1.2B", "$512"]


def test_engine_routes_each_event_class_only_to_the_rules_that_read_it_and_their_clock_still_sees_every_event():
    calls = Counter()

    class CountingFunding(ExtremeFundingRule):
        def on_event(self, event, state):
            calls[type(event).__name__] += 1
            return super().on_event(event, state)

    rule = CountingFunding(ExtremeFundingConfig(threshold_pct=0.1))
    engine = RuleEngine([rule, LargeLiquidationRule(LargeLiquidationConfig(min_usd=1e12))])
    state = engine.state
    for ev in (liq(T0 + 5 * S, 10_000.0), funding(T0 + 1 * S, 0.002)):  # the funding print arrives late
        state.on_event(ev)
        fired = engine.on_event(ev)
    assert calls == {"Funding": 1}  # the liquidation never reached the funding rule
    (alert,) = fired
    # stamped with the clock the liquidation moved, exactly as if the rule had been fed it
    assert (alert.rule, alert.status, alert.ts, alert.started_at) == (EXTREME_FUNDING, "firing", T0 + 5 * S, T0 + 5 * S)
    unrouted = ExtremeFundingRule(ExtremeFundingConfig(threshold_pct=0.1))
    reference = [a for ev in (liq(T0 + 5 * S, 10_000.0), funding(T0 + 1 * S, 0.002))
                 for a in unrouted.on_event(ev, state)]
    assert reference == [alert]
