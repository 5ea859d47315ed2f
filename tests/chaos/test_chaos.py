"""Chaos run: the whole daemon against the simulator (all live venues) while the harness keeps injecting faults.

Faults, chosen at random every ``STEP_S`` of wall time: clean closes (codes 1001/1011), abrupt TCP resets
(the client sees 1006), garbage frames of every kind, short stalls (socket open, no data), rejected
handshakes, and REST 429 storms with ``Retry-After``, 418, 5xx and slow answers. A signed webhook receiver is
down for the first half of the run.

The run asserts: the daemon never crashes (it stops cleanly with status 0); every session reconnects after
every drop and is delivering data again at the end; garbage is counted, not fatal; no liquidation reaches
the bus twice (natural keys across reconnect replays, REST backfill and REST cover); every alert printed on
stdout reaches the webhook exactly once after dedupe by ``webhook-id``; bus queues stay bounded.

``STREAMER_CHAOS_S`` sets the duration (CI: 30 s, a few hundred disconnects; the full run:
``STREAMER_CHAOS_S=600 python -m pytest tests/chaos -s`` for ≥ 1,000). The report is printed (``-s``).
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import random
import socket
import time

import pytest
from aiohttp import web

from streamer.daemon import Daemon
from streamer.demo import demo_settings, demo_webhook
from streamer.model import Liquidation
from streamer.sim import SimServer
from streamer.sim.faults import GARBAGE_KINDS
from tests.conftest import eventually

standardwebhooks = pytest.importorskip("standardwebhooks")

DURATION_S = float(os.environ.get("STREAMER_CHAOS_S", "30"))
STEP_S = 0.1
VENUES = ("binance.um", "binance.cm", "bybit", "okx", "deribit")
SECRET = "whsec_" + base64.b64encode(b"chaos-run-secret-0123456789abcdef").decode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def inject(sim: SimServer, rng: random.Random, counts: dict[str, int]) -> None:
    faults = sim.faults
    venue = rng.choice(VENUES)
    roll = rng.random()
    if roll < 0.35:
        n = await faults.drop_connections(venue, code=rng.choice((1001, 1011)))
        counts["drop_clean"] += n
    elif roll < 0.55:
        counts["drop_abrupt"] += await faults.drop_connections(venue, abrupt=True)
    elif roll < 0.75:
        counts["garbage"] += faults.send_garbage(rng.choice(GARBAGE_KINDS), venue)
    elif roll < 0.82:
        faults.stall(rng.uniform(0.5, 2.0), venue)
        counts["stall"] += 1
    elif roll < 0.88:
        faults.reject_handshakes(rng.choice((503, 429, 500)), count=rng.randint(1, 3), venue=venue.split(".")[0],
                                 retry_after_s=1)
        counts["handshake_reject"] += 1
    else:
        status = rng.choice((429, 418, 500, 502, 503, None))
        if status is None:
            faults.rest_slow(rng.uniform(0.2, 1.5), count=2, venue=venue.split(".")[0])
            counts["rest_slow"] += 1
        else:
            faults.rest_error(status, count=rng.randint(1, 5), venue=venue.split(".")[0],
                              retry_after_s=1 if status in (429, 418) else None)
            counts[f"rest_{status}"] += 1


@pytest.mark.timeout(DURATION_S + 240)
async def test_chaos_run_no_crash_no_duplicates_no_lost_alerts(tmp_path):
    rng = random.Random(20261124)
    port = free_port()
    received: list[tuple[str, dict]] = []
    verifier = standardwebhooks.Webhook(SECRET)

    async def hook(request: web.Request) -> web.Response:
        body = await request.text()
        verifier.verify(body, dict(request.headers))
        received.append((request.headers["webhook-id"], json.loads(body)))
        return web.Response(status=204)

    out = io.BytesIO()
    sink = demo_webhook(f"http://127.0.0.1:{port}/hook", {"STREAMER_WEBHOOK_SECRET": SECRET})
    counts: dict[str, int] = {k: 0 for k in ("drop_clean", "drop_abrupt", "garbage", "stall", "handshake_reject",
                                              "rest_slow", "rest_429", "rest_418", "rest_500", "rest_502",
                                              "rest_503")}
    liq_keys: list[tuple] = []
    async with SimServer(seed=11, scenario="demo", speed=2.0) as sim:
        daemon = Daemon(demo_settings(sim.urls, "127.0.0.1", 0, str(tmp_path), [sink]), out=out)
        daemon.bus.add_handler(lambda ev: liq_keys.append((ev.exchange, ev.raw_symbol, ev.ts, ev.side, ev.price,
                                                           ev.qty)) if isinstance(ev, Liquidation) else None)
        stop = asyncio.Event()
        task = asyncio.create_task(daemon.run(stop))
        runner = None
        started = time.monotonic()
        try:
            await eventually(lambda: daemon.readiness()[0], within_s=20)
            while time.monotonic() - started < DURATION_S:
                await inject(sim, rng, counts)
                if runner is None and time.monotonic() - started > DURATION_S / 2:
                    app = web.Application()
                    app.router.add_post("/hook", hook)
                    runner = web.AppRunner(app)
                    await runner.setup()
                    await web.TCPSite(runner, "127.0.0.1", port).start()
                assert not task.done(), f"the daemon stopped during the chaos run: {task}"
                await asyncio.sleep(STEP_S)
            sim.faults.clear()
            # after the faults stop: every session delivers again (a venue that kept rejecting handshakes may
            # sit out its capped backoff, up to 60 s, first), and every printed alert is delivered
            await eventually(lambda: all(s.state == "open" for _, s in daemon.sessions), within_s=90, every_s=0.1)

            def delivered() -> bool:
                printed = [json.loads(x) for x in out.getvalue().splitlines() if x.strip()]
                return {f"{a['id']}:{a['status']}" for a in printed} <= {i for i, _ in received}

            await eventually(delivered, within_s=30, every_s=0.2)
        finally:
            stop.set()
            status = await asyncio.wait_for(task, 20)
            if runner is not None:
                await runner.cleanup()
    assert status == 0
    snap = daemon.snapshot()
    connects = {s["session"]: s["connects"] for s in snap["sessions"]}
    parse_errors = sum(sum(a["errors"].values()) for a in snap["adapters"])
    printed = [json.loads(x) for x in out.getvalue().splitlines() if x.strip()]
    by_id: dict[str, dict] = {}
    for wid, body in received:
        by_id.setdefault(wid, body)
    report = {"duration_s": DURATION_S, "faults": counts, "connects": connects, "parse_errors": parse_errors,
              "liquidations": len(liq_keys), "dedupe_duplicates": daemon.dedupe.duplicates,
              "alerts_printed": len(printed), "webhook_requests": len(received), "webhook_unique": len(by_id),
              "bus_dropped": {n: c["dropped"] for n, c in snap["bus"]["consumers"].items()}}
    print("\nchaos report:", json.dumps(report, indent=1))
    drops = counts["drop_clean"] + counts["drop_abrupt"]
    assert drops >= DURATION_S * 2, report  # a few hundred in CI
    assert sum(connects.values()) > len(connects) + drops // 2, report  # reconnected after the drops
    assert parse_errors > 0, report  # garbage was counted and skipped
    assert len(liq_keys) == len(set(liq_keys)), "a liquidation reached the bus twice"
    assert {f"{a['id']}:{a['status']}": a for a in printed}.items() <= by_id.items(), report
    assert all(c["dropped"] == 0 for c in snap["bus"]["consumers"].values()), report
