"""Durable outbox + signed webhook sink: persistence, idempotency, backoff, Retry-After, receiver down then up,
signatures checked by the independent ``standardwebhooks`` package, and kill -9 mid-delivery."""

from __future__ import annotations

import asyncio
import base64
import datetime
import os
import random
import signal
import socket
import sqlite3
import sys
import textwrap
import time
from pathlib import Path
from typing import Literal

import aiohttp
import pytest
from aiohttp import web
from standardwebhooks.webhooks import Webhook

from streamer.alerts.outbox import Outbox
from streamer.alerts.webhook import AlertFilter, WebhookSink, decode_secret, message_id, parse_retry_after, sign
from streamer.bus.memory import QueueConsumer
from streamer.config import ConfigError, load_settings
from streamer.model import Alert, Liquidation
from tests.conftest import eventually

REPO = Path(__file__).resolve().parents[2]
SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
T0 = 1_700_000_000_000


def alert(n: int, status: Literal["firing", "resolved"] = "firing", **kw) -> Alert:
    fields = {
        "id": f"extreme_funding:okx:S{n}:{T0}",
        "rule": "extreme_funding",
        "status": status,
        "severity": "warning",
        "exchange": "okx",
        "symbol": f"S{n}-USDT-PERP",
        "value": 0.0012,
        "threshold": 0.001,
        "window_s": 0.0,
        "started_at": T0,
        "ts": T0 + n,
        "summary": "funding",
        "details": {"rate_8h": 0.0012},
    }
    fields.update(kw)
    return Alert(**fields)


def episode_alerts(n: int) -> list[Alert]:
    """n episodes, interleaved: firing 0..n-1, then resolved 0..n-1."""
    return [alert(i) for i in range(n)] + [alert(i, "resolved") for i in range(n)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver:
    """aiohttp receiver on 127.0.0.1; ``behave(n)`` gives (status, headers) for the n-th request (0-based)."""

    def __init__(self, port: int, behave=None, delay_s: float = 0.0) -> None:
        self.port = port
        self.behave = behave or (lambda n: (200, {}))
        self.delay_s = delay_s
        self.requests: list[tuple[float, dict[str, str], bytes, int]] = []
        self.runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        n = len(self.requests)
        status, headers = self.behave(n)
        self.requests.append((time.monotonic(), dict(request.headers), body, status))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return web.Response(status=status, headers=headers)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    def accepted(self) -> list[tuple[dict[str, str], bytes]]:
        return [(h, b) for _, h, b, st in self.requests if 200 <= st < 300]


def check_exactly_once(receiver: Receiver, alerts: list[Alert]) -> list[str]:
    """Verify every accepted request with standardwebhooks, dedupe on webhook-id; return first-arrival order."""
    wh = Webhook(SECRET)
    order: list[str] = []
    bodies: dict[str, bytes] = {}
    for headers, body in receiver.accepted():
        wh.verify(body, headers)  # raises on a bad signature
        mid = headers["webhook-id"]
        if mid in bodies:
            assert bodies[mid] == body, "a retry must carry the same body"
            continue
        bodies[mid] = body
        order.append(mid)
    expected = {message_id(a.id, a.status) for a in alerts}
    assert set(order) == expected
    assert len(order) == len(expected)
    for a in alerts:  # in order per id: firing before resolved
        if a.status == "resolved":
            assert order.index(message_id(a.id, "firing")) < order.index(message_id(a.id, "resolved"))
    return order


def feed(alerts: list[Alert], extra=()) -> QueueConsumer:
    c = QueueConsumer("webhook", 10_000, "drop_newest", None)
    for ev in (*extra, *alerts):
        c.offer(ev)
    c.close()
    return c


# --------------------------------------------------------------------------- outbox


def test_outbox_persists_across_reopen(tmp_path):
    path = tmp_path / "outbox.sqlite"
    with Outbox(path) as ob:
        for a in episode_alerts(2):
            assert ob.put(a, sink="w")
        ob.delivered(ob.due("w")[0])
        assert ob.stats()["w"]["depth"] == 3
    with Outbox(path) as ob:  # a restart delivers what is left, in order
        left = ob.due("w")
        # firing(1), then resolved(0) (its firing is delivered); resolved(1) waits for firing(1)
        assert [(e.alert_id, e.status) for e in left] == [(alert(1).id, "firing"), (alert(0).id, "resolved")]
        st = ob.stats()["w"]
        assert st["depth"] == 3
        assert st["delivered"] == 1
        assert st["enqueued"] == 4
        assert st["oldest_age_s"] is not None
        assert st["oldest_age_s"] >= 0
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_due_keeps_order_per_alert_id(tmp_path):
    with Outbox(tmp_path / "o.sqlite") as ob:
        ob.put(alert(0), sink="w")
        ob.put(alert(1), sink="w")
        ob.put(alert(0, "resolved"), sink="w")
        first = ob.due("w")
        # resolved(0) is held back while firing(0) is pending
        assert [(e.alert_id, e.status) for e in first] == [(alert(0).id, "firing"), (alert(1).id, "firing")]
        ob.failed(first[0], 60.0)  # firing(0) is parked for a minute
        assert [e.alert_id for e in ob.due("w")] == [alert(1).id]
        assert [e.alert_id for e in ob.due("w", now=time.time() + 61)] == [alert(0).id, alert(1).id]
        ob.delivered(first[0])
        assert [(e.alert_id, e.status) for e in ob.due("w")] == [(alert(1).id, "firing"), (alert(0).id, "resolved")]


def test_put_is_idempotent_and_seen_survives_delivery(tmp_path):
    path = tmp_path / "o.sqlite"
    with Outbox(path) as ob:
        assert ob.put(alert(0), sink="w") is True
        assert ob.put(alert(0), sink="w") is False
        assert ob.put(alert(0), sink="other") is True  # per sink
        assert len(ob.due("w")) == 1
        ob.delivered(ob.due("w")[0])
        assert ob.prune(-1) == 1  # delivered rows may go; the seen keys stay
    with Outbox(path) as ob:  # a replayed episode after a restart is not enqueued again
        assert ob.put(alert(0), sink="w") is False
        assert ob.seen(alert(0).id, "firing")
        assert ob.seen(alert(0).id, "firing", sink="w")
        assert not ob.seen(alert(0).id, "resolved")
        assert ob.due("w") == []
        assert ob.put(alert(0, "resolved"), sink="w") is True


def test_backoff_capped_jittered_and_retry_after(tmp_path):
    now = [T0]
    ob = Outbox(tmp_path / "o.sqlite", initial_backoff_s=1.0, max_backoff_s=8.0, rng=random.Random(7),
                clock_ms=lambda: now[0])
    try:
        ob.put(alert(0), sink="w")
        delays = []
        for _ in range(7):
            (e,) = ob.due("w", now=now[0] / 1000 + 10_000)
            delays.append(ob.failed(e, reason="connect"))
            (e2,) = ob.due("w", now=now[0] / 1000 + 10_000)
            assert e2.next_attempt_ms == now[0] + round(delays[-1] * 1000)
            assert e2.attempts == len(delays)
            assert e2.last_error == "connect"
        for n, d in enumerate(delays):  # equal jitter: base/2 <= d <= base, base = min(8, 2**n)
            base = min(8.0, 2.0**n)
            assert base / 2 <= d <= base
        assert max(delays) <= 8.0
        (e,) = ob.due("w", now=now[0] / 1000 + 10_000)
        assert ob.failed(e, 30.0) == 30.0  # Retry-After wins over the backoff
        assert ob.due("w", now=now[0] / 1000 + 29.9) == []
        assert len(ob.due("w", now=now[0] / 1000 + 30.0)) == 1
        (e,) = ob.due("w", now=now[0] / 1000 + 10_000)
        assert ob.failed(e, 10**9) == 3600.0  # clamped
        assert ob.stats()["w"]["failed"] == 9
    finally:
        ob.close()
    assert parse_retry_after("3", 0.0) == 3.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412470.0) == pytest.approx(10.0)
    assert parse_retry_after("soon", 0.0) is None
    assert parse_retry_after(None, 0.0) is None


# --------------------------------------------------------------------------- signing, filters, config


def test_signature_verifies_with_standardwebhooks():
    key = decode_secret(SECRET)
    body = b'{"type":"alert","id":"x"}'
    ts = int(time.time())
    sig = sign(key, "x:firing", ts, body)
    headers = {"webhook-id": "x:firing", "webhook-timestamp": str(ts), "webhook-signature": sig}
    Webhook(SECRET).verify(body, headers)
    when = datetime.datetime.fromtimestamp(ts, datetime.UTC)
    assert headers["webhook-signature"] == Webhook(SECRET).sign("x:firing", when, body.decode())
    for bad in ("", "secret", "whsec_", "whsec_***"):
        with pytest.raises(ValueError) as info:
            decode_secret(bad)
        assert "***" not in str(info.value)
    assert decode_secret(SECRET.rstrip("=")) == key  # padding optional
    sink = WebhookSink("http://127.0.0.1:1/", SECRET, None, None)  # type: ignore[arg-type]
    assert SECRET[6:] not in repr(sink)
    assert "redacted" in repr(sink)


def test_filters():
    f = AlertFilter.of({"rule": ["extreme_funding"], "severity": ["warning", "critical"], "exchange": ["okx"]})
    assert f.matches(alert(0))
    assert not f.matches(alert(0, rule="large_liquidation"))
    assert not f.matches(alert(0, severity="info"))
    assert not f.matches(alert(0, exchange="binance"))
    assert f.matches(alert(0, exchange=None, details={"venues": ["binance", "okx"]}))
    assert not f.matches(alert(0, exchange=None, details={}))
    assert AlertFilter.of({"symbol": ["S1-USDT-PERP"]}).matches(alert(1))
    assert not AlertFilter.of({"symbol": ["S1-USDT-PERP"]}).matches(alert(2))
    assert AlertFilter().matches(alert(3))


def test_config_webhooks_secret_env_default_and_redacted_errors():
    env = {"STREAMER__SINKS__WEBHOOKS": '[{url: "http://127.0.0.1:9/hook", filters: {severity: [critical]}}]',
           "STREAMER_WEBHOOK_SECRET": SECRET}
    s = load_settings(env=env)
    (w,) = s.sinks.webhooks
    assert w.secret == SECRET
    assert w.filters.severity == ["critical"]
    assert w.key.startswith("url-")
    assert SECRET[6:] not in repr(w)
    bad = "whsec_this is not base64!"
    with pytest.raises(ConfigError) as info:
        load_settings(env={**env, "STREAMER_WEBHOOK_SECRET": bad})
    text = str(info.value)
    assert "sinks.webhooks.0.secret" in text
    assert "whsec_" in text
    assert "STREAMER_WEBHOOK_SECRET" in text
    assert "not valid base64" in text
    assert bad not in text
    with pytest.raises(ConfigError, match=r"sinks\.webhooks\.0\.secret"):
        load_settings(env={"STREAMER__SINKS__WEBHOOKS": '[{url: "http://x/", secret: "plain"}]'})
    with pytest.raises(ConfigError, match=r"sinks\.webhooks\.0\.url"):
        load_settings(env={"STREAMER__SINKS__WEBHOOKS": f'[{{url: "ftp://x/", secret: "{SECRET}"}}]'})


# --------------------------------------------------------------------------- delivery


async def test_receiver_down_then_up_every_alert_exactly_once(tmp_path):
    alerts = episode_alerts(5)
    port = free_port()

    def behave(n: int):
        if n < 3:
            return 503, {}
        if n == 3:
            return 429, {"Retry-After": "1"}
        return 200, {}

    receiver = Receiver(port, behave)
    ob = Outbox(tmp_path / "o.sqlite", initial_backoff_s=0.05, max_backoff_s=0.3)
    liq = Liquidation(exchange="okx", symbol="BTC-USDT-PERP", raw_symbol="BTC-USDT-SWAP", side="long",
                      price=1.0, qty=1.0, value_usd=1.0, ts=T0, recv_ts=T0)
    try:
        async with aiohttp.ClientSession() as session:
            sink = WebhookSink(receiver.url, SECRET, ob, session, name="t", timeout_s=2.0, max_backoff_s=0.3)
            task = asyncio.create_task(sink.run(feed(alerts, [liq])))
            await eventually(lambda: sink.stats()["failures"].get("connect", 0) >= 2, within_s=5)
            assert sink.stats()["outbox_depth"] == len(alerts)  # everything is on disk while it is down
            await receiver.start()
            await asyncio.wait_for(task, 15)
        times = [t for t, *_ in receiver.requests]
        assert times[4] - times[3] >= 0.9, "Retry-After: 1 after the 429 was honoured"
        check_exactly_once(receiver, alerts)
        st = sink.stats()
        assert st["deliveries"] == len(alerts)
        assert st["outbox_depth"] == 0
        assert st["oldest_undelivered_age_s"] is None
        assert st["failures"]["http_5xx"] == 3
        assert st["failures"]["http_429"] == 1
        assert st["skipped"] == 1
    finally:
        ob.close()
        await receiver.stop()


async def test_filtered_alerts_are_not_enqueued_and_rejections_go_dead(tmp_path):
    receiver = Receiver(free_port(), lambda n: (400, {}))
    await receiver.start()
    ob = Outbox(tmp_path / "o.sqlite", initial_backoff_s=0.01, max_backoff_s=0.02)
    try:
        async with aiohttp.ClientSession() as session:
            sink = WebhookSink(receiver.url, SECRET, ob, session, {"severity": ["critical"]}, name="t",
                               max_rejections=3)
            await asyncio.wait_for(sink.run(feed([alert(0), alert(1, severity="critical")])), 10)
        st = sink.stats()
        assert st["filtered"] == 1
        assert st["dead"] == 1
        assert st["failures"]["http_4xx"] == 3
        assert len(receiver.requests) == 3
        assert st["outbox_depth"] == 0
        assert not ob.seen(alert(0).id, "firing")
        assert ob.seen(alert(1).id, "firing")
    finally:
        ob.close()
        await receiver.stop()


CRASH_SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    import aiohttp
    from streamer.alerts.outbox import Outbox
    from streamer.alerts.webhook import WebhookSink
    from streamer.bus.memory import QueueConsumer
    from tests.alerts.test_outbox_webhook import SECRET, episode_alerts

    async def main(path, url, n):
        ob = Outbox(path, initial_backoff_s=0.05, max_backoff_s=0.2)
        c = QueueConsumer("webhook", 10_000, "drop_newest", None)
        for a in episode_alerts(n):  # a restarted daemon replays the same episodes
            c.offer(a)
        c.close()
        async with aiohttp.ClientSession() as session:
            await WebhookSink(url, SECRET, ob, session, name="crash", timeout_s=2.0).run(c)
        print("drained", ob.stats()["crash"], flush=True)
        ob.close()

    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
    """
)


async def test_kill_9_mid_delivery_then_restart_loses_nothing(tmp_path):
    n = 10
    alerts = episode_alerts(n)
    script = tmp_path / "crash_sink.py"
    script.write_text(CRASH_SCRIPT)
    receiver = Receiver(free_port(), delay_s=0.05)  # slow receiver: the kill lands mid-delivery
    await receiver.start()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    args = [str(script), str(tmp_path / "o.sqlite"), receiver.url, str(n)]

    async def start() -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(sys.executable, *args, env=env, cwd=REPO,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)

    proc = await start()
    try:
        await eventually(lambda: len(receiver.requests) >= 6, within_s=10)
        proc.send_signal(signal.SIGKILL)
        await asyncio.wait_for(proc.wait(), 10)
        assert proc.returncode == -signal.SIGKILL
        assert len(receiver.requests) < len(alerts), "the kill must land before the end"

        proc = await start()
        out, err = await asyncio.wait_for(proc.communicate(), 20)
        assert proc.returncode == 0, err.decode()[-2000:]
        assert b"drained" in out
        check_exactly_once(receiver, alerts)
        # at most the request in flight at the kill is sent twice; the replay enqueues nothing new
        assert len(alerts) <= len(receiver.requests) <= len(alerts) + 1
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await receiver.stop()
