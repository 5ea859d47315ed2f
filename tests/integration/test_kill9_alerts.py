"""``kill -9`` of the daemon right after an alert fired, while its webhook receiver is down; restart: the alert
is delivered exactly once (after dedupe by ``webhook-id``) and the episode is not fired again as a new one —
its ``resolved`` arrives under the same id (issue 9: "nothing lost, nothing re-fired as new")."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest
from aiohttp import web

from streamer.config import WebhookSinkSettings
from streamer.demo import demo_settings
from streamer.sim import SimServer
from tests.conftest import eventually

standardwebhooks = pytest.importorskip("standardwebhooks")

SECRET = "whsec_" + base64.b64encode(b"kill-nine-test-secret-0123456789").decode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_daemon(config: Path, out: Path) -> subprocess.Popen:
    env = {**os.environ, "STREAMER_WEBHOOK_SECRET": SECRET}
    with open(out, "ab") as fh:
        return subprocess.Popen([sys.executable, "-m", "streamer", "run", "--config", str(config)], env=env,
                                stdout=fh, stderr=subprocess.DEVNULL)


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_bytes().splitlines() if line.strip()] if path.exists() else []


async def test_kill_9_after_a_firing_then_restart_delivers_it_once_and_never_refires(tmp_path):
    port = free_port()
    received: list[tuple[str, dict]] = []
    verifier = standardwebhooks.Webhook(SECRET)

    async def hook(request: web.Request) -> web.Response:
        body = await request.text()
        verifier.verify(body, dict(request.headers))
        received.append((request.headers["webhook-id"], json.loads(body)))
        return web.Response(status=204)

    sink = WebhookSinkSettings(url=f"http://127.0.0.1:{port}/hook", name="t", timeout_s=2.0, max_backoff_s=1.0)
    out1, out2 = tmp_path / "run1.jsonl", tmp_path / "run2.jsonl"
    async with SimServer(seed=7, scenario="demo", speed=2.0) as sim:
        settings = demo_settings(sim.urls, "127.0.0.1", 0, str(tmp_path / "state"), [sink])
        settings = msgspec.structs.replace(settings, http=msgspec.structs.replace(settings.http, enabled=False))
        config = tmp_path / "streamer.json"  # JSON is YAML
        config.write_bytes(msgspec.json.encode(settings))
        first = start_daemon(config, out1)
        try:
            await eventually(lambda: any(a["rule"] == "liquidation_cascade" for a in lines(out1)), within_s=40,
                             every_s=0.05)
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        fired = next(a for a in lines(out1) if a["rule"] == "liquidation_cascade")
        assert fired["status"] == "firing"
        second = start_daemon(config, out2)
        app = web.Application()
        app.router.add_post("/hook", hook)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            await eventually(lambda: f"{fired['id']}:resolved" in {i for i, _ in received}, within_s=60,
                             every_s=0.1)
            await asyncio.sleep(0.5)
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(20)
            await runner.cleanup()
    ids = [i for i, _ in received]
    # the pre-crash firing arrived (from the restored journal / outbox) before its resolution
    assert f"{fired['id']}:firing" in ids
    assert ids.index(f"{fired['id']}:firing") < ids.index(f"{fired['id']}:resolved")
    # no second episode for the same key was delivered as new
    cascades = {b["id"] for _, b in received if b["rule"] == "liquidation_cascade"
                and (b["symbol"], b["details"].get("side")) == (fired["symbol"], fired["details"]["side"])}
    assert cascades == {fired["id"]}
    # after the restart, stdout did not print another firing for that episode either
    assert not [a for a in lines(out2) if a["rule"] == "liquidation_cascade" and a["status"] == "firing"
                and a["symbol"] == fired["symbol"]]
