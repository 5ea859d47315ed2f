"""Daemon wiring without sockets: session planning and sharding, liquidation de-duplication."""

from __future__ import annotations

import json

import msgspec

from streamer.config import BinanceSettings, ExchangesSettings, Settings
from streamer.daemon import LiquidationDeduper, plan_sessions, venues_from_settings
from streamer.model import Liquidation


def binance_venue(**kwargs):
    settings = Settings(exchanges=ExchangesSettings(binance=BinanceSettings(**kwargs)))
    [venue] = venues_from_settings(settings)
    return venue


def test_all_market_plan_uses_venue_wide_streams_and_per_symbol_cm_funding():
    venue = binance_venue(symbols=["BTCUSDT", "BTCUSD_PERP"], all_market=True,
                          channels=["liquidations", "funding", "ticker"])
    plans = plan_sessions(venue)
    assert [(p.name, p.url) for p in plans] == [("binance-um-0", "wss://fstream.binance.com/market/ws"),
                                                ("binance-cm-0", "wss://dstream.binance.com/ws")]
    assert list(plans[0].keys.values()) == ["!forceOrder@arr", "!markPrice@arr@1s", "!ticker@arr"]
    assert list(plans[1].keys.values()) == ["!forceOrder@arr", "btcusd_perp@markPrice@1s", "!ticker@arr"]


def test_streams_are_sharded_within_the_per_connection_limit():
    symbols = [f"S{i}USDT" for i in range(150)]
    venue = binance_venue(symbols=symbols, all_market=False, channels=["liquidations", "funding"])
    plans = [p for p in plan_sessions(venue) if p.market == "um"]
    assert [len(p.streams) for p in plans] == [200, 100]
    assert [p.name for p in plans] == ["binance-um-0", "binance-um-1"]
    first = json.loads(venue.adapter.subscribe(plans[1].streams)[0])
    assert first["params"][0] == "s50usdt@markPrice@1s"  # 150 liquidation streams, then funding


def test_liquidation_seen_twice_under_its_natural_key_is_published_once():
    dedupe = LiquidationDeduper(keep=2)
    ev = Liquidation(exchange="okx", symbol="BTC-USDT-PERP", raw_symbol="BTC-USDT-SWAP", ts=1, recv_ts=2,
                     side="long", price=100.0, qty=1.0, value_usd=100.0)
    again = msgspec.structs.replace(ev, recv_ts=99)  # the same fact received again (REST backfill)
    other = msgspec.structs.replace(ev, ts=2)
    assert [dedupe.first_time(e) for e in (ev, again, other)] == [True, False, True]
    assert dedupe.duplicates == 1


async def test_symbols_all_expands_to_every_perpetual_once_instruments_are_loaded(tmp_path):
    from streamer.daemon import Daemon

    settings = Settings(exchanges=ExchangesSettings(binance=BinanceSettings(symbols=["all"], all_market=False,
                                                                            channels=["funding"])),
                        state_dir=str(tmp_path))
    daemon = Daemon(settings)
    assert daemon.sessions == []  # planned only after instruments are known
    adapter = daemon.adapters["binance"]
    adapter.load_instruments(json.dumps({"symbols": [
        {"symbol": "BTCUSDT", "contractType": "PERPETUAL", "deliveryDate": 4133404800000, "baseAsset": "BTC",
         "quoteAsset": "USDT"},
        {"symbol": "BTCUSDT_261225", "contractType": "CURRENT_QUARTER", "deliveryDate": 1798185600000,
         "baseAsset": "BTC", "quoteAsset": "USDT"},
        {"symbol": "ETHUSD_PERP", "contractType": "PERPETUAL", "deliveryDate": 4133404800000, "baseAsset": "ETH",
         "quoteAsset": "USD", "contractSize": 10}]}))
    daemon.plan()
    assert {key for plan, _ in daemon.sessions for key in plan.keys.values()} == {
        "btcusdt@markPrice@1s", "ethusd_perp@markPrice@1s"}
    await daemon.rest.close()


async def test_enabling_closed_bitmex_leaves_it_out_and_runs_the_rest(tmp_path):
    from streamer.config import BitmexSettings
    from streamer.daemon import Daemon, closed_venues

    settings = Settings(exchanges=ExchangesSettings(bitmex=BitmexSettings(enabled=True)), state_dir=str(tmp_path))
    daemon = Daemon(settings)
    assert closed_venues(settings) == ["bitmex"]
    assert sorted(daemon.venues) == ["binance"]
    assert all(plan.exchange == "binance" for plan, _ in daemon.sessions)
    await daemon.rest.close()


def test_deribit_plan_subscribes_tickers_and_venue_wide_liquidation_trades():
    from streamer.config import DeribitSettings

    settings = Settings(exchanges=ExchangesSettings(binance=BinanceSettings(enabled=False),
                                                    deribit=DeribitSettings(enabled=True)))
    [venue] = venues_from_settings(settings)
    [plan] = plan_sessions(venue)
    assert plan.url == "wss://www.deribit.com/ws/api/v2"
    assert sorted(set(plan.keys.values())) == ["ticker.BTC-PERPETUAL.100ms", "ticker.ETH-PERPETUAL.100ms",
                                               "trades.future.BTC.100ms", "trades.future.ETH.100ms"]


# ---------------------------------------------------------------- readiness (fake session stats)

NOW_MS = 1_700_000_100_000


class FakeSession:
    """Stands in for a WsSession: ``stats()`` returns the WsStats given."""

    def __init__(self, **kw) -> None:
        from streamer.transport.ws import StreamStats, WsStats

        streams = {k: StreamStats(cadence, last, 1 if last else 0, stale)
                   for k, (cadence, last, stale) in kw.pop("streams").items()}
        fields = {f: 0 for f in WsStats.__dataclass_fields__}
        fields.update(name="s", url="ws://x", last_error=None, backoff_delay_s=None, connected_since_ms=None,
                      last_frame_ms=None, streams=streams)
        fields.update(kw)
        self._stats = WsStats(**fields)
        self.state = self._stats.state

    def stats(self):
        return self._stats


def daemon_with(tmp_path, sessions):
    from streamer.daemon import Daemon, SessionPlan

    daemon = Daemon(Settings(exchanges=ExchangesSettings(), state_dir=str(tmp_path)))
    daemon.sessions = [(SessionPlan("okx", "swap", name, "ws://x", []), s) for name, s in sessions.items()]
    return daemon


def test_readiness_waits_for_the_first_frame_and_every_cadenced_stream(tmp_path):
    daemon = daemon_with(tmp_path, {
        "okx-0": FakeSession(state="open", last_frame_ms=None, streams={"mark": (1.0, None, False)}),
        "okx-1": FakeSession(state="open", last_frame_ms=NOW_MS, streams={"mark": (1.0, None, False),
                                                                           "liq": (None, None, False)}),
    })
    assert daemon.readiness(NOW_MS) == (False, {"waiting_for": ["okx-0", "okx-1:mark"], "down": []})


def test_readiness_keeps_ready_through_a_drop_shorter_than_the_grace(tmp_path):
    assert daemon_with(tmp_path, {}).ready_grace_s == 30.0  # the documented default
    daemon = daemon_with(tmp_path, {
        "okx-0": FakeSession(state="backoff", last_frame_ms=NOW_MS - 29_000,
                             streams={"mark": (1.0, NOW_MS - 29_500, True), "liq": (None, None, False)}),
    })
    assert daemon.readiness(NOW_MS) == (True, {"waiting_for": [], "down": []})


def test_readiness_is_not_ready_while_a_session_is_down_past_the_grace(tmp_path):
    daemon = daemon_with(tmp_path, {
        "okx-0": FakeSession(state="open", last_frame_ms=NOW_MS, streams={"mark": (1.0, NOW_MS, False)}),
        "okx-1": FakeSession(state="backoff", last_frame_ms=NOW_MS - 45_000,
                             streams={"mark": (1.0, NOW_MS - 45_000, True)}),
    })
    assert daemon.readiness(NOW_MS) == (
        False, {"waiting_for": [], "down": ["okx-1: backoff, no data for 45 s (grace 30 s)"]})


def test_readiness_counts_an_open_session_whose_cadenced_streams_are_all_stale_as_down(tmp_path):
    # pongs/heartbeats keep last_frame_ms fresh, but no data arrived on any cadenced stream for 40 s
    daemon = daemon_with(tmp_path, {
        "okx-0": FakeSession(state="open", last_frame_ms=NOW_MS - 1_000,
                             streams={"mark": (1.0, NOW_MS - 40_000, True), "oi": (3.0, NOW_MS - 41_000, True)}),
    })
    assert daemon.readiness(NOW_MS) == (
        False, {"waiting_for": [], "down": ["okx-0: open, all cadenced streams stale, no data for 40 s (grace 30 s)"]})
    daemon.ready_grace_s = 60
    assert daemon.readiness(NOW_MS)[0] is True


def test_readiness_one_stale_stream_of_an_open_session_is_not_down(tmp_path):
    daemon = daemon_with(tmp_path, {
        "okx-0": FakeSession(state="open", last_frame_ms=NOW_MS,
                             streams={"mark": (1.0, NOW_MS - 40_000, True), "oi": (3.0, NOW_MS, False)}),
    })
    assert daemon.readiness(NOW_MS)[0] is True


def test_readiness_session_without_cadences_uses_its_last_frame(tmp_path):
    daemon = daemon_with(tmp_path, {
        "okx-0": FakeSession(state="connecting", last_frame_ms=NOW_MS - 31_000, streams={"liq": (None, None, False)}),
    })
    assert daemon.readiness(NOW_MS) == (
        False, {"waiting_for": [], "down": ["okx-0: connecting, no data for 31 s (grace 30 s)"]})


def test_readiness_with_no_sessions_is_not_ready(tmp_path):
    assert daemon_with(tmp_path, {}).readiness(NOW_MS) == (False, {"waiting_for": [], "down": []})
