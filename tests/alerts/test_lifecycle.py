"""A restart does not re-fire an episode that was already delivered: ``EpisodeJournal`` (module docstring of
``streamer.alerts.lifecycle``) persists open episodes, turns a post-restart re-fire into a continuation, and
resolves restored episodes that are not seen again within the grace period."""

from __future__ import annotations

import json

from streamer.alerts.lifecycle import FILE_NAME, EpisodeJournal
from streamer.alerts.rules import ExtremeFundingConfig, ExtremeFundingRule, RuleEngine
from streamer.model import Funding

T0 = 1_790_000_000_000


def funding(ts: int, rate_8h: float) -> Funding:
    return Funding(exchange="binance", symbol="BTC-USDT-PERP", raw_symbol="BTCUSDT", ts=ts, recv_ts=ts,
                   rate=rate_8h, interval_h=8.0, rate_8h=rate_8h, annualized=rate_8h * 1095)


def run(engine: RuleEngine, journal: EpisodeJournal, events: list[Funding]) -> list:
    out = []
    for ev in events:
        out += journal.process(engine.on_event(ev), engine.now_ms)
    return out


def engine() -> RuleEngine:
    return RuleEngine([ExtremeFundingRule(ExtremeFundingConfig(threshold_pct=0.1, cooldown_s=300))])


def test_an_episode_open_at_a_restart_is_not_fired_again(tmp_path):
    before = run(engine(), EpisodeJournal(tmp_path), [funding(T0, 0.0001), funding(T0 + 1000, 0.002)])
    (fired,) = before
    assert (fired.status, fired.started_at) == ("firing", T0 + 1000)
    assert [a["id"] for a in json.loads((tmp_path / FILE_NAME).read_text())] == [fired.id]

    # restart: a fresh engine sees the rate still extreme and opens "a new" episode; it is not published
    journal = EpisodeJournal(tmp_path)
    after = run(engine(), journal, [funding(T0 + 60_000, 0.0025), funding(T0 + 61_000, 0.0024)])
    assert after == []
    assert journal.stats() == {"active": 1, "restored": 0, "continued": 1, "expired": 0}


def test_continuation_resolves_with_the_restored_id(tmp_path):
    (fired,) = run(engine(), EpisodeJournal(tmp_path), [funding(T0, 0.002)])
    journal = EpisodeJournal(tmp_path)
    eng = engine()
    assert run(eng, journal, [funding(T0 + 60_000, 0.0025)]) == []
    (resolved,) = run(eng, journal, [funding(T0 + 120_000, 0.0001)])
    assert (resolved.status, resolved.id, resolved.started_at) == ("resolved", fired.id, fired.started_at)
    assert resolved.ts == T0 + 120_000
    assert json.loads((tmp_path / FILE_NAME).read_text()) == []
    # a third start restores nothing
    assert EpisodeJournal(tmp_path).stats()["restored"] == 0


def test_a_restored_episode_not_seen_again_resolves_after_the_grace_period(tmp_path):
    (fired,) = run(engine(), EpisodeJournal(tmp_path), [funding(T0, 0.002)])
    journal = EpisodeJournal(tmp_path, grace_ms=600_000)
    eng = engine()
    assert run(eng, journal, [funding(T0 + 3_600_000, 0.0001)]) == []  # back to normal: the rule opens nothing
    assert run(eng, journal, [funding(T0 + 3_600_000 + 599_000, 0.0001)]) == []
    (resolved,) = run(eng, journal, [funding(T0 + 3_600_000 + 600_000, 0.0001)])
    assert (resolved.status, resolved.id, resolved.started_at) == ("resolved", fired.id, fired.started_at)
    assert resolved.details["reason"] == "not seen again after restart"
    assert journal.stats() == {"active": 0, "restored": 0, "continued": 0, "expired": 1}
    assert json.loads((tmp_path / FILE_NAME).read_text()) == []


def test_a_different_key_after_a_restart_is_a_new_episode(tmp_path):
    run(engine(), EpisodeJournal(tmp_path), [funding(T0, 0.002)])
    journal = EpisodeJournal(tmp_path)
    other = Funding(exchange="okx", symbol="BTC-USDT-PERP", raw_symbol="BTC-USDT-SWAP", ts=T0 + 60_000,
                    recv_ts=T0 + 60_000, rate=0.002, interval_h=8.0, rate_8h=0.002, annualized=2.19)
    eng = engine()
    (new,) = journal.process(eng.on_event(other), eng.now_ms)
    assert (new.status, new.exchange) == ("firing", "okx")
    assert journal.stats()["restored"] == 1


def test_an_unreadable_journal_starts_empty(tmp_path):
    (tmp_path / FILE_NAME).write_text("{not json")
    assert EpisodeJournal(tmp_path).stats() == {"active": 0, "restored": 0, "continued": 0, "expired": 0}


def test_a_firing_resolved_in_the_same_batch_does_not_rewrite_the_journal_but_a_lone_firing_does(tmp_path):
    from streamer.alerts.rules import LargeLiquidationConfig, LargeLiquidationRule
    from streamer.model import Liquidation

    def liq(ts: int, usd: float) -> Liquidation:
        return Liquidation(exchange="binance", symbol="BTC-USDT-PERP", raw_symbol="BTCUSDT", ts=ts, recv_ts=ts,
                           side="long", price=100_000.0, qty=usd / 100_000.0, value_usd=usd)

    journal = EpisodeJournal(tmp_path)
    eng = RuleEngine([ExtremeFundingRule(ExtremeFundingConfig(threshold_pct=0.1, cooldown_s=300)),
                      LargeLiquidationRule(LargeLiquidationConfig(min_usd=1_000_000.0))])
    (fired,) = journal.process(eng.on_event(funding(T0, 0.002)), eng.now_ms)  # opens an episode: saved
    path = tmp_path / FILE_NAME
    inode, content = path.stat().st_ino, path.read_bytes()
    # a large liquidation fires and resolves at once: the open episodes are unchanged, so is the file
    pair = journal.process(eng.on_event(liq(T0 + 1000, 2_000_000.0)), eng.now_ms)
    assert [(a.rule, a.status) for a in pair] == [("large_liquidation", "firing"), ("large_liquidation", "resolved")]
    assert (path.stat().st_ino, path.read_bytes()) == (inode, content)
    assert [a["id"] for a in json.loads(content)] == [fired.id]
    # the funding episode resolving is a change: the file is replaced (atomically: a new inode)
    (resolved,) = journal.process(eng.on_event(funding(T0 + 2000, 0.0001)), eng.now_ms)
    assert resolved.status == "resolved"
    assert path.stat().st_ino != inode
    assert json.loads(path.read_text()) == []
