"""Alertmanager, Slack and Discord sinks: exact payloads, v2 schema, chat limits, pacing, 429s, a real Alertmanager."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from streamer.alerts.alertmanager import VALIDITY_FACTOR, AlertmanagerSink, alertmanager_payload, iso_utc
from streamer.alerts.chat import (
    DISCORD_COLOURS,
    DISCORD_LIMITS,
    SLACK_LIMITS,
    SLACK_MIN_INTERVAL_S,
    ChatSink,
    clip,
    discord_embed_total,
    discord_payload,
    slack_payload,
    utf16_len,
)
from streamer.bus.memory import QueueConsumer
from streamer.config import AlertmanagerSinkSettings, ChatSinkSettings, ConfigError, load_settings
from streamer.model import Alert
from tests.conftest import eventually

T0 = 1_700_000_000_000  # 2023-11-14T22:13:20.000Z
SCHEMA_PATH = Path(__file__).with_name("alertmanager_v2_alerts.schema.json")
AM_BINARY = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


def firing(**kw: Any) -> Alert:
    fields: dict[str, Any] = {
        "id": "ep-1",
        "rule": "extreme_funding",
        "status": "firing",
        "severity": "warning",
        "exchange": "okx",
        "symbol": "BTC-USDT-PERP",
        "value": 0.12,
        "threshold": 0.1,
        "window_s": 0.0,
        "started_at": T0,
        "ts": T0,
        "summary": "okx BTC-USDT-PERP: funding +0.1200% per 8h",
        "details": {"rate_8h": 0.0012, "venues": ["okx"]},
    }
    fields.update(kw)
    return Alert(**fields)


def resolved(**kw: Any) -> Alert:
    return firing(**{"status": "resolved", "ts": T0 + 600_000, **kw})


# --------------------------------------------------------------------------- Alertmanager payloads


def test_alertmanager_payload_firing_exact():
    body = alertmanager_payload(firing(), "http://streamer.local:9464/state", 60.0, now_ms=T0 + 5_000)
    assert body == [
        {
            "labels": {
                "alertname": "extreme_funding",
                "severity": "warning",
                "exchange": "okx",
                "symbol": "BTC-USDT-PERP",
                "streamer_id": "ep-1",
            },
            "annotations": {
                "summary": "okx BTC-USDT-PERP: funding +0.1200% per 8h",
                "description": "extreme_funding firing: value 0.12 vs threshold 0.1",
                "details": '{"rate_8h":0.0012,"venues":["okx"]}',
            },
            "startsAt": "2023-11-14T22:13:20.000Z",
            # now + 4 x 60 s: Alertmanager resolves it by itself unless re-sent before then
            "endsAt": "2023-11-14T22:17:25.000Z",
            "generatorURL": "http://streamer.local:9464/state",
        }
    ]
    assert VALIDITY_FACTOR == 4


def test_alertmanager_payload_resolved_exact_cross_exchange_no_generator():
    alert = resolved(
        rule="liquidation_cascade", severity="critical", exchange=None, symbol="BTC", window_s=60.0, value=7.5e6,
        threshold=5e6, summary="BTC: $7.5M long liquidations in 60 s", details={"side": "long"},
    )
    body = alertmanager_payload(alert, "", 60.0, now_ms=T0 + 999_999_999)
    assert body == [
        {
            "labels": {
                "alertname": "liquidation_cascade",
                "severity": "critical",
                "symbol": "BTC",
                "streamer_id": "ep-1",
            },
            "annotations": {
                "summary": "BTC: $7.5M long liquidations in 60 s",
                "description": "liquidation_cascade resolved: value 7.5e+06 vs threshold 5e+06 over 60 s",
                "details": '{"side":"long"}',
            },
            "startsAt": "2023-11-14T22:13:20.000Z",
            "endsAt": "2023-11-14T22:23:20.000Z",  # the resolved ts, not now
        }
    ]


def _validator(definition: str):
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is needed to validate against the v2 schema")
    schema = json.loads(SCHEMA_PATH.read_text())
    schema = {**schema, "$ref": f"#/definitions/{definition}"}
    return jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker())


def test_alertmanager_payloads_validate_against_v2_openapi_schema():
    validator = _validator("postableAlerts")
    allowed = {"labels", "annotations", "startsAt", "endsAt", "generatorURL"}
    for alert in (firing(), resolved(exchange=None), firing(summary="x" * 10_000, details={"deep": {"a": [1, None]}})):
        for gen in ("http://streamer.local:9464/state", ""):
            body = alertmanager_payload(alert, gen, 30.0)
            validator.validate(body)
            assert set(body[0]) <= allowed  # the schema is open; keep to the fields Alertmanager reads
            for key in ("startsAt", "endsAt"):
                assert datetime.fromisoformat(body[0][key]).utcoffset().total_seconds() == 0
    # the validator does reject what Alertmanager rejects
    assert not validator.is_valid([{"annotations": {}}])
    assert not validator.is_valid([{"labels": {"alertname": 1}}])


def test_iso_utc_is_exact_to_the_millisecond():
    assert iso_utc(T0 + 1) == "2023-11-14T22:13:20.001Z"
    assert iso_utc(0) == "1970-01-01T00:00:00.000Z"


# --------------------------------------------------------------------------- chat payloads


def test_slack_payload_firing_exact():
    assert slack_payload(firing(summary="a <b> & c")) == {
        "text": "[FIRING] warning extreme_funding: a <b> & c",
        "blocks": [
            {
                "type": "header",
                "text": {"type": "plain_text", "text": "FIRING · warning · extreme_funding", "emoji": True},
            },
            {"type": "section", "text": {"type": "mrkdwn", "text": ":large_orange_circle: a &lt;b&gt; &amp; c"}},
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": "*Rule*\nextreme_funding"},
                    {"type": "mrkdwn", "text": "*Severity*\nwarning"},
                    {"type": "mrkdwn", "text": "*Exchange*\nokx"},
                    {"type": "mrkdwn", "text": "*Symbol*\nBTC-USDT-PERP"},
                    {"type": "mrkdwn", "text": "*Value*\n0.12"},
                    {"type": "mrkdwn", "text": "*Threshold*\n0.1"},
                    {"type": "mrkdwn", "text": "*Window*\npoint"},
                    {"type": "mrkdwn", "text": "*Started*\n2023-11-14T22:13:20.000Z"},
                ],
            },
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": '*Details*\n```{"rate_8h":0.0012,"venues":["okx"]}```'},
            },
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "id `ep-1` · 2023-11-14T22:13:20.000Z"}]},
        ],
    }


def test_slack_payload_resolved_is_green():
    p = slack_payload(resolved(severity="critical"))
    assert p["text"].startswith("[RESOLVED] critical extreme_funding")
    assert p["blocks"][0]["text"]["text"] == "RESOLVED · critical · extreme_funding"
    assert p["blocks"][1]["text"]["text"].startswith(":large_green_circle: ")
    assert p["blocks"][4]["elements"][0]["text"] == "id `ep-1` · 2023-11-14T22:23:20.000Z"


def test_discord_payload_resolved_exact():
    alert = resolved(exchange=None, window_s=60.0, summary="@everyone BTC back to normal")
    assert discord_payload(alert) == {
        "content": "[RESOLVED] warning extreme_funding: @everyone BTC back to normal",
        "embeds": [
            {
                "title": "[RESOLVED] extreme_funding · warning",
                "color": 0x2EB67D,
                "fields": [
                    {"name": "Rule", "value": "extreme_funding", "inline": True},
                    {"name": "Severity", "value": "warning", "inline": True},
                    {"name": "Exchange", "value": "all venues", "inline": True},
                    {"name": "Symbol", "value": "BTC-USDT-PERP", "inline": True},
                    {"name": "Value", "value": "0.12", "inline": True},
                    {"name": "Threshold", "value": "0.1", "inline": True},
                    {"name": "Window", "value": "60 s", "inline": True},
                    {"name": "Started", "value": "2023-11-14T22:13:20.000Z", "inline": True},
                ],
                "timestamp": "2023-11-14T22:23:20.000Z",
                "footer": {"text": "streamer · ep-1"},
                "description": '@everyone BTC back to normal\n\n```{"rate_8h":0.0012,"venues":["okx"]}```',
            }
        ],
        "allowed_mentions": {"parse": []},  # the @everyone above pings nobody
    }


@pytest.mark.parametrize(
    ("status", "severity", "colour"),
    [("firing", "critical", 0xE01E5A), ("firing", "warning", 0xECB22E), ("firing", "info", 0x36C5F0),
     ("resolved", "critical", 0x2EB67D)],
)
def test_discord_colour_by_severity_and_status(status, severity, colour):
    embed = discord_payload(firing(status=status, severity=severity))["embeds"][0]
    assert embed["color"] == colour
    assert embed["title"] == f"[{status.upper()}] extreme_funding · {severity}"
    assert DISCORD_COLOURS[severity if status == "firing" else "resolved"] == colour


def test_clip_counts_utf16_and_ends_with_an_ellipsis():
    assert clip("abc", 3) == "abc"
    assert clip("abcd", 3) == "ab…"
    assert utf16_len("😀") == 2
    clipped = clip("😀" * 10, 5)  # 2 emoji (4 units) + ellipsis
    assert clipped == "😀😀…"
    assert utf16_len(clipped) == 5


@pytest.mark.parametrize(
    "alert",
    [
        firing(summary="S" * 20_000, details={"k": "v" * 50_000}),
        firing(summary="😀" * 5_000, details={"k": "😀" * 5_000}, exchange="E" * 5_000, symbol="Y" * 5_000,
               rule="r" * 400, id="i" * 3_000),
        resolved(summary="line\n" * 3_000, details={"k": "line\n" * 3_000}),
    ],
    ids=["long-ascii", "long-emoji-everywhere", "many-lines"],
)
def test_long_summaries_and_details_are_cut_to_the_limits(alert):
    s = slack_payload(alert)
    assert len(s["blocks"]) <= SLACK_LIMITS["blocks"]
    assert utf16_len(s["text"]) <= SLACK_LIMITS["section_text"]
    for block in s["blocks"]:
        if block["type"] == "header":
            assert utf16_len(block["text"]["text"]) <= SLACK_LIMITS["header_text"]
        if block["type"] == "section" and "text" in block:
            assert utf16_len(block["text"]["text"]) <= SLACK_LIMITS["section_text"]
        if block["type"] == "section" and "fields" in block:
            assert len(block["fields"]) <= SLACK_LIMITS["section_fields"]
            assert all(utf16_len(f["text"]) <= SLACK_LIMITS["field_text"] for f in block["fields"])
        if block["type"] == "context":
            assert all(utf16_len(e["text"]) <= SLACK_LIMITS["field_text"] for e in block["elements"])
    summary_text = s["blocks"][1]["text"]["text"]
    assert summary_text.endswith("…")
    details_text = s["blocks"][3]["text"]["text"]
    assert details_text.endswith("…```")  # cut, and the fence stays closed

    d = discord_payload(alert)
    assert utf16_len(d["content"]) <= DISCORD_LIMITS["content"]
    assert d["content"].endswith("…")
    (embed,) = d["embeds"]
    assert utf16_len(embed["title"]) <= DISCORD_LIMITS["title"]
    assert utf16_len(embed["description"]) <= DISCORD_LIMITS["description"]
    assert embed["description"].endswith("…") or embed["description"].endswith("…```")
    assert len(embed["fields"]) <= DISCORD_LIMITS["fields"]
    for f in embed["fields"]:
        assert utf16_len(f["name"]) <= DISCORD_LIMITS["field_name"]
        assert utf16_len(f["value"]) <= DISCORD_LIMITS["field_value"]
    assert utf16_len(embed["footer"]["text"]) <= DISCORD_LIMITS["footer_text"]
    assert discord_embed_total(embed) <= DISCORD_LIMITS["embed_total"]


# --------------------------------------------------------------------------- local receivers


class Receiver:
    """aiohttp app on 127.0.0.1: records (monotonic time, JSON body); ``reply`` picks each response."""

    def __init__(self, reply: Callable[[int], web.Response] | None = None) -> None:
        self.calls: list[tuple[float, Any]] = []
        self.reply = reply or (lambda n: web.Response(status=200))
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.calls.append((time.monotonic(), await request.json()))
        return self.reply(len(self.calls))


@contextlib.asynccontextmanager
async def receiver(reply: Callable[[int], web.Response] | None = None) -> AsyncIterator[Receiver]:
    rec = Receiver(reply)
    app = web.Application()
    app.router.add_post("/{tail:.*}", rec.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    rec.url = f"http://127.0.0.1:{port}/hook"
    try:
        yield rec
    finally:
        await runner.cleanup()


def consumer_with(*alerts: Alert, close: bool = True) -> QueueConsumer:
    q = QueueConsumer("test", 100, "drop_newest", frozenset({"alert"}))
    for a in alerts:
        q.offer(a)
    if close:
        q.close()
    return q


async def test_slack_sink_paces_posts_per_webhook():
    async with receiver() as rec, aiohttp.ClientSession() as session:
        assert ChatSink("slack", rec.url, session).min_interval_s == SLACK_MIN_INTERVAL_S == 1.0
        sink = ChatSink("slack", rec.url, session, min_interval_s=0.3)
        await sink.run(consumer_with(firing(id="a"), firing(id="b"), resolved(id="a")))
    assert [body["text"][:10] for _, body in rec.calls] == ["[FIRING] w", "[FIRING] w", "[RESOLVED]"]
    gaps = [b[0] - a[0] for a, b in zip(rec.calls, rec.calls[1:], strict=False)]
    assert all(g >= 0.28 for g in gaps), gaps
    assert sink.stats() == {"written": 3, "errors": 0, "retries": 0, "rate_limited": 0, "filtered": 0, "skipped": 0}


async def test_slack_sink_honours_retry_after_header_on_429():
    def reply(n: int) -> web.Response:
        return web.Response(status=429, headers={"Retry-After": "1"}) if n == 1 else web.Response(text="ok")

    async with receiver(reply) as rec, aiohttp.ClientSession() as session:
        sink = ChatSink("slack", rec.url, session, min_interval_s=0.0)
        assert await sink.send(firing())
    assert len(rec.calls) == 2
    assert rec.calls[1][0] - rec.calls[0][0] >= 0.95
    assert sink.rate_limited == 1
    assert sink.written == 1


async def test_discord_sink_honours_429_retry_after_and_ratelimit_headers():
    def reply(n: int) -> web.Response:
        if n == 1:
            return web.json_response(
                {"message": "You are being rate limited.", "retry_after": 0.4, "global": False},
                status=429, headers={"Retry-After": "1"},  # JSON float wins over the rounded header
            )
        if n == 2:  # accepted, but the bucket is now empty for 0.3 s
            return web.Response(status=204, headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset-After": "0.3"})
        return web.Response(status=204, headers={"X-RateLimit-Remaining": "4", "X-RateLimit-Reset-After": "1.5"})

    async with receiver(reply) as rec, aiohttp.ClientSession() as session:
        sink = ChatSink("discord", rec.url, session)
        await sink.run(consumer_with(firing(id="a"), firing(id="b"), firing(id="c")))
    times = [t for t, _ in rec.calls]
    assert len(times) == 4
    assert 0.38 <= times[1] - times[0] < 0.9  # retry_after 0.4 s, not the header's 1 s
    assert times[2] - times[1] >= 0.28  # waited X-RateLimit-Reset-After
    assert times[3] - times[2] < 0.25  # bucket not empty: no wait
    assert [b["embeds"][0]["footer"]["text"] for _, b in rec.calls] == [
        "streamer · a", "streamer · a", "streamer · b", "streamer · c"
    ]
    assert sink.stats() == {"written": 3, "errors": 0, "retries": 0, "rate_limited": 1, "filtered": 0, "skipped": 0}


async def test_chat_sink_filters_retries_5xx_and_does_not_retry_4xx():
    def reply(n: int) -> web.Response:
        return {1: web.Response(status=503), 2: web.Response(status=200), 3: web.Response(status=404)}[n]

    async with receiver(reply) as rec, aiohttp.ClientSession() as session:
        sink = ChatSink(
            "slack", rec.url, session, min_interval_s=0.0, backoff_s=0.05,
            filters={"severity": ["critical"], "exchange": [], "rule": None},
        )
        await sink.run(consumer_with(firing(severity="critical"), firing(severity="info"), firing(severity="critical")))
    assert len(rec.calls) == 3
    assert sink.stats() == {"written": 1, "errors": 1, "retries": 1, "rate_limited": 0, "filtered": 1, "skipped": 0}
    with pytest.raises(ValueError, match="unknown chat sink filter"):
        ChatSink("slack", "http://x", session, filters={"venue": ["okx"]})
    with pytest.raises(ValueError, match="slack"):
        ChatSink("teams", "http://x", session)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- Alertmanager sink (fake receiver)


async def test_alertmanager_sink_resends_firing_until_resolved():
    async with receiver() as rec, aiohttp.ClientSession() as session:
        sink = AlertmanagerSink(rec.url.removesuffix("/hook"), session, resend_s=0.2, generator_url="http://g/")
        assert sink.url.endswith("/api/v2/alerts")
        q = consumer_with(firing(id="a"), firing(id="b"), close=False)
        task = asyncio.create_task(sink.run(q))
        await eventually(lambda: len(rec.calls) >= 4, within_s=3)  # 2 first sends + >= 2 re-sends
        resend_bodies = [b for _, b in rec.calls[2:]]
        assert all(sorted(a["labels"]["streamer_id"] for a in b) == ["a", "b"] for b in resend_bodies)
        q.offer(resolved(id="a"))
        await eventually(lambda: sink.stats()["firing"] == 1, within_s=3)
        n = len(rec.calls)
        await eventually(lambda: len(rec.calls) >= n + 2, within_s=3)
        q.close()
        await asyncio.wait_for(task, 3)
    bodies = [b for _, b in rec.calls]
    i_resolved = next(i for i, b in enumerate(bodies) if len(b) == 1 and b[0]["endsAt"] == iso_utc(T0 + 600_000))
    assert all([a["labels"]["streamer_id"] for a in b] == ["b"] for b in bodies[i_resolved + 1:])
    # every re-send pushes endsAt forward
    ends = [datetime.fromisoformat(b[0]["endsAt"]) for b in bodies if b[0]["labels"]["streamer_id"] == "b"]
    assert ends == sorted(ends)
    assert ends[-1] > ends[0]
    st = sink.stats()
    assert st["written"] == 3
    assert st["errors"] == 0
    assert st["resent"] >= 4
    assert st["firing"] == 1


async def test_alertmanager_sink_retries_with_backoff_and_keeps_failed_resolutions():
    state = {"down": True}

    def reply(n: int) -> web.Response:
        return web.Response(status=503 if state["down"] else 200)

    async with receiver(reply) as rec, aiohttp.ClientSession() as session:
        sink = AlertmanagerSink(rec.url, session, resend_s=10.0, max_attempts=3, backoff_s=0.05)
        assert not await sink.deliver(firing())
        assert sink.stats()["retries"] == 2
        assert sink.stats()["errors"] == 1
        assert len(rec.calls) == 3
        assert rec.calls[2][0] - rec.calls[1][0] >= 0.09  # doubled backoff
        assert not await sink.deliver(resolved())
        assert sink.stats()["pending_resolved"] == 1
        assert sink.stats()["firing"] == 0
        state["down"] = False
        assert await sink.resend()
    assert rec.calls[-1][1][0]["endsAt"] == iso_utc(T0 + 600_000)
    assert sink.stats()["pending_resolved"] == 0


async def test_alertmanager_sink_resolves_the_labels_it_fired_with():
    async with receiver() as rec, aiohttp.ClientSession() as session:
        sink = AlertmanagerSink(rec.url, session)
        await sink.deliver(firing(severity="warning"))
        await sink.deliver(resolved(severity="critical"))
    resolved_body = rec.calls[1][1]
    assert [a["labels"]["severity"] for a in resolved_body] == ["critical", "warning"]
    assert all(a["endsAt"] == iso_utc(T0 + 600_000) for a in resolved_body)


# --------------------------------------------------------------------------- settings


def test_sink_settings_parse(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "sinks:\n"
        "  alertmanager:\n"
        "    - url: http://am:9093\n"
        "      resend_s: 30\n"
        "      generator_url: http://streamer:9464/state\n"
        "  chat:\n"
        "    - kind: slack\n"
        "      url: https://hooks.slack.com/services/T/B/X\n"
        "    - kind: discord\n"
        "      url: https://discord.com/api/webhooks/1/abc\n"
        "      filters: {severity: [critical], exchange: [okx]}\n"
    )
    s = load_settings(cfg, env={})
    assert s.sinks.alertmanager == [
        AlertmanagerSinkSettings(url="http://am:9093", resend_s=30.0, generator_url="http://streamer:9464/state")
    ]
    assert [c.kind for c in s.sinks.chat] == ["slack", "discord"]
    assert isinstance(s.sinks.chat[1], ChatSinkSettings)
    assert s.sinks.chat[1].filters.severity == ["critical"]
    assert s.sinks.chat[0].filters.rule == []
    assert load_settings(None, env={}).sinks.alertmanager == []
    cfg.write_text("sinks:\n  chat:\n    - kind: teams\n      url: x\n")
    with pytest.raises(ConfigError, match=r"sinks\.chat"):
        load_settings(cfg, env={})
    cfg.write_text("sinks:\n  alertmanager:\n    - url: x\n      resend_s: 0\n")
    with pytest.raises(ConfigError, match="resend_s"):
        load_settings(cfg, env={})


# --------------------------------------------------------------------------- a real Alertmanager


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def alertmanager(tmp_path) -> AsyncIterator[str]:
    """A real Alertmanager (Debian's prometheus-alertmanager) on a free loopback port; its base URL."""
    if AM_BINARY is None:
        pytest.skip("prometheus-alertmanager binary not found (apt-get install -y prometheus-alertmanager)")
    (tmp_path / "am.yml").write_text("route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n")
    port = _free_port()
    proc = await asyncio.create_subprocess_exec(
        AM_BINARY,
        f"--config.file={tmp_path / 'am.yml'}",
        f"--storage.path={tmp_path / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            deadline = time.monotonic() + 15
            while True:
                try:
                    async with session.get(f"{base}/-/ready") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                if proc.returncode is not None or time.monotonic() > deadline:
                    err = (await proc.stderr.read()).decode()[-2000:] if proc.stderr else ""
                    pytest.fail(f"alertmanager did not become ready: {err}")
                await asyncio.sleep(0.1)
        yield base
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def test_real_alertmanager_round_trip(alertmanager):
    now = int(time.time() * 1000)
    fire = firing(id="rt-1", started_at=now - 60_000, ts=now - 60_000, details={"venues": ["okx"], "side": "long"})
    expected = alertmanager_payload(fire, "http://streamer.test/state", 60.0, now_ms=now)[0]

    async def get_alerts(session: aiohttp.ClientSession) -> list[dict[str, Any]]:
        params = {"filter": 'streamer_id="rt-1"'}
        async with session.get(f"{alertmanager}/api/v2/alerts", params=params) as resp:
            assert resp.status == 200
            return await resp.json()

    async with aiohttp.ClientSession() as session:
        sink = AlertmanagerSink(alertmanager, session, resend_s=60.0, generator_url="http://streamer.test/state")
        q = consumer_with(fire, close=False)
        task = asyncio.create_task(sink.run(q))
        got: list[dict[str, Any]] = []

        async def poll() -> bool:
            got[:] = await get_alerts(session)
            return bool(got)

        deadline = time.monotonic() + 10
        while not await poll():
            assert time.monotonic() < deadline, "alert never showed up in Alertmanager"
            await asyncio.sleep(0.1)
        (am_alert,) = got
        with contextlib.suppress(pytest.skip.Exception):
            _validator("gettableAlerts").validate(got)
        assert am_alert["labels"] == expected["labels"]
        assert am_alert["annotations"] == expected["annotations"]
        assert am_alert["generatorURL"] == "http://streamer.test/state"
        assert am_alert["status"]["state"] == "active"
        assert datetime.fromisoformat(am_alert["startsAt"]) == datetime.fromisoformat(expected["startsAt"])
        ends_in_s = datetime.fromisoformat(am_alert["endsAt"]).timestamp() - time.time()
        assert 200 < ends_in_s <= 4 * 60 + 5  # valid for 4 x resend_s

        q.offer(resolved(id="rt-1", started_at=now - 60_000, ts=now - 1_000))
        deadline = time.monotonic() + 10
        while await poll():  # a resolved alert (endsAt in the past) is no longer listed
            assert time.monotonic() < deadline, f"alert not resolved: {got}"
            await asyncio.sleep(0.1)
        q.close()
        await asyncio.wait_for(task, 5)
    assert sink.stats() == {
        "written": 2, "resent": 0, "errors": 0, "retries": 0, "skipped": 0, "firing": 0, "pending_resolved": 0
    }
