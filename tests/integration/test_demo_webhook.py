"""Issue 9's acceptance in the test suite: the demo daemon with a signed webhook whose receiver is down for the
first part of the run. By the end, every alert printed on stdout has arrived at the receiver exactly once after
dedupe by ``webhook-id``, and every signature verifies with the independent ``standardwebhooks`` package."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import socket

import pytest
from aiohttp import web

from streamer.daemon import Daemon
from streamer.demo import demo_settings, demo_webhook
from streamer.sim import SimServer
from tests.conftest import eventually

standardwebhooks = pytest.importorskip("standardwebhooks")

SECRET = "whsec_" + base64.b64encode(b"streamer-demo-test-secret-32byte").decode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_demo_alerts_reach_a_webhook_that_was_down_exactly_once_and_signed(tmp_path):
    port = free_port()
    received: list[tuple[str, dict]] = []
    verifier = standardwebhooks.Webhook(SECRET)

    async def hook(request: web.Request) -> web.Response:
        body = await request.text()
        verifier.verify(body, dict(request.headers))  # raises on a bad signature
        received.append((request.headers["webhook-id"], json.loads(body)))
        return web.Response(status=204)

    out = io.BytesIO()
    sink = demo_webhook(f"http://127.0.0.1:{port}/hook", {"STREAMER_WEBHOOK_SECRET": SECRET})
    async with SimServer(seed=7, scenario="demo", speed=4.0) as sim:
        daemon = Daemon(demo_settings(sim.urls, "127.0.0.1", 0, str(tmp_path), [sink]), out=out)
        stop = asyncio.Event()
        task = asyncio.create_task(daemon.run(stop))
        runner = None
        try:
            # the receiver is down until the cascade has fired (at least one alert is waiting in the outbox)
            await eventually(lambda: b"liquidation_cascade" in out.getvalue(), within_s=25, every_s=0.1)
            await asyncio.sleep(1.0)
            assert received == []
            app = web.Application()
            app.router.add_post("/hook", hook)
            runner = web.AppRunner(app)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port).start()

            def printed() -> list[dict]:
                return [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]

            def all_delivered() -> bool:
                ids = {f"{a['id']}:{a['status']}" for a in printed()}
                return {"liquidation_cascade"} <= {a["rule"] for a in printed()} and ids <= {i for i, _ in received}

            await eventually(all_delivered, within_s=30, every_s=0.2)
        finally:
            stop.set()
            assert await asyncio.wait_for(task, 15) == 0
            if runner is not None:
                await runner.cleanup()
    printed_alerts = [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]
    by_id = {}
    for wid, body in received:
        by_id.setdefault(wid, body)
    # exactly once after dedupe, and the same alert that was printed
    assert {f"{a['id']}:{a['status']}": a for a in printed_alerts}.items() <= by_id.items()
    # firing before resolved for every episode
    order = [wid for wid, _ in received]
    for a in printed_alerts:
        if a["status"] == "resolved":
            assert order.index(f"{a['id']}:firing") < order.index(f"{a['id']}:resolved")
