"""``streamer run --role ingest|aggregate`` as separate processes through a real nats-server.

The simulator's Binance feed (all-market liquidations) is the book of record: ``market.pushed``
lists every liquidation it pushed and when. The aggregator's ``large_liquidation`` rule runs with
``min_usd`` 0.001, so each liquidation it processes is one alert (firing + resolved, id from the
liquidation): its alerts count the liquidations it saw. The three tests check, end to end:

(a) two redundant ingest processes + one aggregator: each liquidation counted once;
(b) ``kill -9`` of the aggregator, restart: it resumes without loss and without a duplicate alert;
(c) nats-server restarted mid-run: the ingest buffers and retries, nothing is lost.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import msgspec
import nats
import pytest

from streamer.config import BusSettings, LargeLiquidationSettings, NatsSettings
from streamer.demo import demo_settings
from streamer.sim import SimServer
from tests.conftest import eventually
from tests.nats.conftest import free_port

pytestmark = pytest.mark.timeout(90)

SIDE = {"SELL": "long", "BUY": "short"}


def write_config(tmp: Path, sim: SimServer, nats_url: str) -> Path:
    binance_only = {k: v for k, v in sim.urls.items() if k.startswith("binance")}
    s = demo_settings(binance_only, "127.0.0.1", 0, str(tmp / "unused"))
    rules = msgspec.structs.replace(s.rules, large_liquidation=LargeLiquidationSettings(min_usd=0.001))
    bus = BusSettings(backend="nats", nats=NatsSettings(url=nats_url, ack_wait_s=3.0, duplicate_window_s=300.0,
                                                        publish_timeout_s=1.0, max_backoff_s=1.0))
    s = msgspec.structs.replace(s, rules=rules, bus=bus)
    path = tmp / "streamer.json"  # JSON is YAML
    path.write_bytes(msgspec.json.encode(s))
    return path


class Proc:
    """One ``python -m streamer run --role ...`` with its own state dir, HTTP port and stdout file."""

    def __init__(self, tmp: Path, config: Path, role: str, name: str) -> None:
        self.port = free_port()
        self.out = tmp / f"{name}.jsonl"
        self.err = tmp / f"{name}.log"
        env = {**os.environ, "STREAMER__STATE_DIR": str(tmp / f"state-{name}"), "STREAMER__LOG_LEVEL": "info"}
        with open(self.out, "ab") as out, open(self.err, "ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "streamer", "run", "--role", role, "--config", str(config),
                 "--http", f"127.0.0.1:{self.port}"], env=env, stdout=out, stderr=err)

    async def get(self, path: str) -> tuple[int, str]:
        try:
            async with aiohttp.ClientSession() as http, http.get(
                    f"http://127.0.0.1:{self.port}{path}", timeout=aiohttp.ClientTimeout(total=2)) as resp:
                return resp.status, await resp.text()
        except (aiohttp.ClientError, OSError, TimeoutError):
            return 0, ""

    async def ready(self) -> bool:
        return (await self.get("/readyz"))[0] == 200

    async def metric(self, name: str) -> float:
        _, text = await self.get("/metrics")
        m = re.search(rf"^{name} (\S+)$", text, re.M)
        return float(m.group(1)) if m else -1.0

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(5)


def alerts(*procs: Proc) -> list[dict]:
    rows = []
    for p in procs:
        if p.out.exists():
            rows += [json.loads(line) for line in p.out.read_bytes().splitlines() if line.strip()]
    return rows


def liquidation_keys(rows: list[dict]) -> list[tuple[str, int, str]]:
    """(raw_symbol, ts, side) of every large_liquidation firing."""
    return [(a["details"]["raw_symbol"], a["ts"], a["details"]["side"]) for a in rows
            if a["rule"] == "large_liquidation" and a["status"] == "firing"]


def pushed(sim: SimServer, start_ms: int | None = None, end_ms: int | None = None) -> set[tuple[str, int, str]]:
    return {(p.liquidation.symbol, p.liquidation.trade_ms, SIDE[p.liquidation.side]) for p in sim.market.pushed
            if (start_ms is None or p.push_ms >= start_ms) and (end_ms is None or p.push_ms <= end_ms)}


async def stream_alert_ids(url: str) -> list[str]:
    """Every ``Nats-Msg-Id`` on ``streamer.alert.>`` in the stream (what JetStream stored)."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        sub = await js.subscribe("streamer.alert.>", stream="STREAMER", ordered_consumer=True)
        ids = []
        while True:
            try:
                msg = await sub.next_msg(timeout=1.0)
            except nats.errors.TimeoutError:
                break
            ids.append(msg.headers["Nats-Msg-Id"])
        return ids
    finally:
        await nc.close()


async def wait_ready(*procs: Proc, within_s: float = 30) -> None:
    """Every process answers /readyz 200 (ingest: every stream delivered; aggregate: connected)."""
    deadline = asyncio.get_running_loop().time() + within_s
    while not all([await p.ready() for p in procs]):
        if asyncio.get_running_loop().time() > deadline:
            logs = {p.err.name: p.err.read_text()[-1500:] for p in procs}
            raise AssertionError(f"not ready within {within_s} s: {logs}")
        await asyncio.sleep(0.2)


def stop_all(*procs: Proc) -> None:
    for p in procs:
        p.stop(signal.SIGKILL)


async def test_two_ingest_processes_and_one_aggregator_count_each_liquidation_once(nats_server, tmp_path):
    async with SimServer(seed=7, scenario="cascade") as sim:
        config = write_config(tmp_path, sim, nats_server.url)
        agg = Proc(tmp_path, config, "aggregate", "agg")
        ing1 = Proc(tmp_path, config, "ingest", "ingest1")
        ing2 = Proc(tmp_path, config, "ingest", "ingest2")
        try:
            await wait_ready(ing1, ing2, agg)
            start_ms = sim.clock() + 1000  # both sessions are open and subscribed from here on
            await asyncio.sleep(14)  # through the scripted ETH cascade (5-15 s)
            end_ms = sim.clock() - 1000
            expected = pushed(sim, start_ms, end_ms)
            await eventually(lambda: expected <= set(liquidation_keys(alerts(agg))), within_s=20, every_s=0.2)
            duplicates = sum([await p.metric("streamer_nats_duplicates_total") for p in (ing1, ing2)])
            assert ing1.stop() == 0
            assert ing2.stop() == 0
            await asyncio.sleep(1.0)
            assert agg.stop() == 0
        finally:
            stop_all(agg, ing1, ing2)
        everything = pushed(sim)
    keys = liquidation_keys(alerts(agg))
    assert len(expected) >= 10  # liquidations in the window (Binance pushes <= 1 per symbol per second)
    assert len(keys) == len(set(keys))  # each liquidation once, although both ingests published it
    assert set(keys) <= everything  # nothing that the venue did not push
    # both ingests published the liquidations of the window: JetStream refused one copy of each
    assert duplicates >= len(expected)
    ids = await stream_alert_ids(nats_server.url)
    # the alert subject holds exactly what the aggregator printed, each id:status once
    assert sorted(ids) == sorted(f"{a['id']}:{a['status']}" for a in alerts(agg))


async def test_aggregator_killed_and_restarted_resumes_without_loss_or_duplicate_alerts(nats_server, tmp_path):
    async with SimServer(seed=7, scenario="cascade") as sim:
        config = write_config(tmp_path, sim, nats_server.url)
        ingest = Proc(tmp_path, config, "ingest", "ingest")
        first = Proc(tmp_path, config, "aggregate", "agg")
        second = None
        try:
            await wait_ready(ingest, first)
            start_ms = sim.clock() + 1000
            # kill -9 in the middle of the cascade, once it has printed a few liquidations
            await eventually(lambda: len(liquidation_keys(alerts(first))) >= 10, within_s=30, every_s=0.05)
            first.stop(signal.SIGKILL)
            printed_before = alerts(first)
            await asyncio.sleep(2.0)  # liquidations keep coming; they wait in JetStream
            second = Proc(tmp_path, config, "aggregate", "agg")  # same state dir, same durable consumer
            await asyncio.sleep(8)
            end_ms = sim.clock() - 1000
            expected = pushed(sim, start_ms, end_ms)
            # redeliveries of what the killed process had not acked come after ack_wait_s (3 s)
            await eventually(lambda: expected <= set(liquidation_keys(alerts(second))), within_s=25, every_s=0.2)
            assert ingest.stop() == 0
            assert second.stop() == 0
        finally:
            stop_all(ingest, first, *([second] if second else []))
    rows = alerts(second)  # the same file: both runs appended to agg.jsonl
    assert printed_before == rows[: len(printed_before)]
    keys = liquidation_keys(rows)
    assert set(keys) >= expected  # no loss across the kill
    assert len(keys) == len(set(keys))  # no liquidation alerted twice
    pairs = [(a["id"], a["status"]) for a in rows]
    assert len(pairs) == len(set(pairs))  # no id:status printed twice on stdout
    ids = await stream_alert_ids(nats_server.url)
    assert len(ids) == len(set(ids))  # JetStream holds each id:status once
    assert {f"{i}:{s}" for i, s in pairs} <= set(ids)


async def test_nats_server_restart_mid_run_loses_no_liquidation(nats_server, tmp_path):
    async with SimServer(seed=7, scenario="cascade") as sim:
        config = write_config(tmp_path, sim, nats_server.url)
        ingest = Proc(tmp_path, config, "ingest", "ingest")
        agg = Proc(tmp_path, config, "aggregate", "agg")
        try:
            await wait_ready(ingest, agg)
            start_ms = sim.clock() + 1000
            await asyncio.sleep(4)  # the cascade starts at 5 s
            nats_server.stop()
            await asyncio.sleep(3)  # the cascade goes on; the ingest buffers (publish timeout 1 s)
            buffered = await ingest.metric("streamer_nats_buffered")
            nats_server.start()
            await asyncio.sleep(6)
            end_ms = sim.clock() - 1000
            expected = pushed(sim, start_ms, end_ms)
            await eventually(lambda: expected <= set(liquidation_keys(alerts(agg))), within_s=25, every_s=0.2)
            errors = await ingest.metric("streamer_nats_publish_errors_total")
            assert ingest.stop() == 0
            assert agg.stop() == 0
        finally:
            stop_all(ingest, agg)
    keys = liquidation_keys(alerts(agg))
    assert len(expected) >= 10
    assert set(keys) >= expected
    assert len(keys) == len(set(keys))
    assert buffered > 0  # events waited in the buffer while the server was down
    assert errors > 0  # and the publisher retried


async def test_role_all_on_nats_publishes_consumes_and_alerts_in_one_process(nats_server, tmp_path):
    import io

    from streamer.config import load_settings
    from streamer.daemon import Daemon

    async with SimServer(seed=7, scenario="cascade") as sim:
        settings = load_settings(str(write_config(tmp_path, sim, nats_server.url)))
        settings = msgspec.structs.replace(settings, state_dir=str(tmp_path / "state"),
                                           http=msgspec.structs.replace(settings.http, enabled=False))
        out = io.BytesIO()
        daemon = Daemon(settings, out=out, role="all")
        stop = asyncio.Event()
        task = asyncio.create_task(daemon.run(stop))
        try:
            await eventually(lambda: out.getvalue().count(b'"large_liquidation"') >= 6, within_s=30, every_s=0.1)
        finally:
            stop.set()
            assert await asyncio.wait_for(task, 20) == 0
    nats_stats = daemon.bus.stats()["nats"]
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    keys = liquidation_keys(rows)
    assert len(keys) == len(set(keys))
    # every liquidation the rules saw came back from JetStream, none straight from the sessions
    assert nats_stats["consumed"] >= len(keys)
    assert daemon.engine.counts()["large_liquidation"]["firing"] == len(keys)
