"""The whole daemon against the simulator: events flow, alerts reach stdout, /metrics and /readyz answer,
SIGTERM exits 0."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import subprocess
import sys
import time

import aiohttp
import pytest

from streamer.daemon import Daemon
from streamer.demo import demo_settings
from streamer.sim import SimServer
from tests.conftest import eventually


def alerts_in(buf: io.BytesIO) -> list[dict]:
    return [json.loads(line) for line in buf.getvalue().splitlines() if line.strip()]


async def test_daemon_fires_and_resolves_demo_alerts_and_serves_metrics(tmp_path):
    out = io.BytesIO()
    async with SimServer(seed=7, scenario="demo", speed=4.0) as sim:
        daemon = Daemon(demo_settings(sim.urls, "127.0.0.1", 0, str(tmp_path)), out=out)
        stop = asyncio.Event()
        task = asyncio.create_task(daemon.run(stop))
        try:
            await asyncio.wait_for(daemon.started.wait(), 10)
            base = f"http://127.0.0.1:{daemon.api.port}"
            async with aiohttp.ClientSession() as http:
                await eventually(lambda: daemon.readiness()[0], within_s=10)
                async with http.get(base + "/readyz") as resp:
                    assert resp.status == 200
                async with http.get(base + "/healthz") as resp:
                    assert (resp.status, await resp.text()) == (200, "ok\n")

                def done() -> bool:
                    seen = {(a["rule"], a["status"]) for a in alerts_in(out)}
                    return {("liquidation_cascade", "firing"), ("liquidation_cascade", "resolved"),
                            ("extreme_funding", "firing"), ("extreme_funding", "resolved")} <= seen

                await eventually(done, within_s=25, every_s=0.1)
                async with http.get(base + "/metrics") as resp:
                    metrics = await resp.text()
                async with http.get(base + "/state/funding") as resp:
                    funding = await resp.json()
        finally:
            stop.set()
            status = await asyncio.wait_for(task, 10)
    assert status == 0
    alerts = alerts_in(out)
    # one episode fires once and resolves once, per id
    by_id: dict[str, list[str]] = {}
    for a in alerts:
        by_id.setdefault(a["id"], []).append(a["status"])
    for rule in ("liquidation_cascade", "extreme_funding"):
        ids = {a["id"] for a in alerts if a["rule"] == rule}
        assert ids
        assert all(by_id[i] == ["firing", "resolved"] for i in ids)
    cascade = next(a for a in alerts if a["rule"] == "liquidation_cascade")
    assert (cascade["symbol"], cascade["details"]["side"]) == ("ETH-USDT-PERP", "long")
    # coverage: Binance and OKX sample their liquidation feeds (exchanges.md), Bybit's is complete
    coverage = cascade["details"]["coverage"]
    assert {v: c["feed"] for v, c in coverage.items()} == {"binance": "sampled", "bybit": "complete",
                                                          "okx": "sampled"}
    assert all(0.0 < c["socket_up_share"] <= 1.0 for c in coverage.values())
    assert cascade["details"]["lower_bound"] is True
    # one episode for the symbol although three venues report it
    resolved = next(a for a in alerts if a["rule"] == "liquidation_cascade" and a["status"] == "resolved")
    assert set(resolved["details"]["episode_venues"]) == {"binance", "bybit", "okx"}
    spike = next(a for a in alerts if a["rule"] == "extreme_funding")
    assert (spike["symbol"], spike["exchange"]) == ("SOL-USDT-PERP", "binance")
    assert spike["value"] == pytest.approx(0.0025)  # 0.25 % per 8 h interval
    for name in ('streamer_ws_connection_state{exchange="binance",session="binance-um-0",state="open"} 1.0',
                 'streamer_ws_frames_total{exchange="binance",session="binance-um-0"}',
                 'streamer_ws_reconnects_total{exchange="binance",session="binance-um-0"} 0.0',
                 'streamer_stream_last_frame_age_seconds{exchange="binance",session="binance-um-0",'
                 'stream="!markPrice@arr@1s"}',
                 'streamer_alerts_total{rule="liquidation_cascade",status="firing"} 1.0',
                 'streamer_ws_connected{exchange="bybit",session="bybit-linear-0"} 1.0',
                 'streamer_ws_connected{exchange="bybit",session="bybit-inverse-0"} 1.0',
                 'streamer_ws_connected{exchange="okx",session="okx-public-0"} 1.0',
                 'streamer_ready 1.0'):
        assert name in metrics
    assert funding


def test_demo_process_exits_0_on_sigterm_and_prints_json_lines():
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "streamer", "demo", "--duration", "120", "--http",
                             "127.0.0.1:0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        deadline = time.monotonic() + 30
        line = b""
        while b"metrics on" not in line:
            assert time.monotonic() < deadline, "demo did not start"
            line = proc.stderr.readline()
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        out, _err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    for raw in out.splitlines():
        assert json.loads(raw)["type"] == "alert"


async def test_rest_covers_funding_while_the_socket_is_stalled(tmp_path, monkeypatch):
    import streamer.daemon as daemon_mod

    monkeypatch.setattr(daemon_mod, "COVER_CHECK_S", 0.2)
    async with SimServer(seed=5, speed=1.0) as sim:
        daemon = Daemon(demo_settings(sim.urls, "127.0.0.1", 0, str(tmp_path)), out=io.BytesIO())
        funding_seen: list[int] = []
        daemon.bus.add_handler(lambda ev: funding_seen.append(ev.recv_ts) if ev.__struct_config__.tag == "funding"
                               else None)
        stop = asyncio.Event()
        task = asyncio.create_task(daemon.run(stop))
        try:
            await eventually(lambda: daemon.readiness()[0], within_s=10)
            sim.faults.stall(20.0, "binance.um")
            await eventually(lambda: daemon.cover_polls.get("binance", 0) >= 2, within_s=10)
            polled_at = len(funding_seen)
            await eventually(lambda: len(funding_seen) > polled_at, within_s=5)
        finally:
            stop.set()
            assert await asyncio.wait_for(task, 10) == 0


async def test_okx_liquidations_from_socket_replay_and_rest_backfill_are_counted_once(tmp_path, monkeypatch):
    import streamer.daemon as daemon_mod
    from streamer.model import Liquidation

    monkeypatch.setattr(daemon_mod, "COVER_CHECK_S", 0.2)
    async with SimServer(seed=11, scenario="cascade", speed=4.0) as sim:
        daemon = Daemon(demo_settings(sim.urls, "127.0.0.1", 0, str(tmp_path)), out=io.BytesIO())
        okx: list[Liquidation] = []
        daemon.bus.add_handler(lambda ev: okx.append(ev) if isinstance(ev, Liquidation) and ev.exchange == "okx"
                               else None)
        stop = asyncio.Event()
        task = asyncio.create_task(daemon.run(stop))
        try:
            await eventually(lambda: daemon.backfills.get("okx", 0) >= 2 and len(okx) >= 5, within_s=15)
            okx_session = next(s for p, s in daemon.sessions if p.exchange == "okx")
            await sim.faults.drop_connections("okx.public")  # reconnect: OKX replays, the daemon backfills
            await eventually(lambda: okx_session.stats().connects >= 2 and daemon.backfills["okx"] >= 3,
                             within_s=15)
            await asyncio.sleep(0.5)
        finally:
            stop.set()
            assert await asyncio.wait_for(task, 10) == 0
    keys = [(e.raw_symbol, e.ts, e.side, e.price, e.qty) for e in okx]
    assert len(keys) == len(set(keys))  # every liquidation on the bus once
    assert daemon.dedupe.duplicates > 0  # the replayed push and the REST backfill did repeat some


async def test_option_chains_of_deribit_okx_and_bybit_reach_live_state_and_state_options(tmp_path):
    async with SimServer(seed=3, speed=2.0) as sim:
        daemon = Daemon(demo_settings(sim.urls, "127.0.0.1", 0, str(tmp_path)), out=io.BytesIO())
        stop = asyncio.Event()
        task = asyncio.create_task(daemon.run(stop))

        def full() -> bool:
            chains = daemon.state.options
            return all(ex in chains and all(r.open_interest is not None and r.mark_price_usd is not None
                                            for e in chains[ex].expiries("BTC") for r in chains[ex].rows("BTC", e))
                       and len(chains[ex]) >= 18 for ex in ("deribit", "okx", "bybit"))

        try:
            await eventually(full, within_s=25, every_s=0.2)
            url = f"http://127.0.0.1:{daemon.api.port}/state/options"
            async with aiohttp.ClientSession() as http, http.get(url) as resp:
                summaries = await resp.json()
        finally:
            stop.set()
            assert await asyncio.wait_for(task, 10) == 0
    assert sorted(s["exchange"] for s in summaries) == ["bybit", "deribit", "okx"]
    for venue in ("deribit", "okx", "bybit"):
        chain = daemon.state.options[venue]
        assert len(chain.expiries("BTC")) == 3  # the simulator lists a weekly, a monthly and a quarterly
        rows = [row for expiry in chain.expiries("BTC") for row in chain.rows("BTC", expiry)]
        for row in rows:
            # what the venue's book held (IVs fractions, OI base coin: Bybit and Deribit 1 BTC, OKX 0.01)
            book = sim.market.book(venue).state(row.raw_symbol)
            assert 0.2 < row.mark_iv < 1.5, (venue, row)
            assert abs(row.mark_iv - book.mark_iv) < 0.05, (venue, row)
            size = 0.01 if venue == "okx" else 1.0
            assert row.open_interest == pytest.approx(book.open_interest * size, rel=0.05), (venue, row)
        summary = next(s for s in summaries if s["exchange"] == venue)
        assert summary["expiries"][0]["atm_iv"] is not None
        assert summary["total_oi_usd"] > 0
