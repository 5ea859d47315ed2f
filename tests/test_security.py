"""Security: the HTTP bearer token, request limits, and no secret in anything the daemon emits."""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import secrets
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from streamer.api import MAX_REQUEST_BYTES, HttpApi
from streamer.config import ChatSinkSettings, ConfigError, WebhookSinkSettings, load_settings
from streamer.daemon import Daemon
from streamer.demo import demo_settings
from streamer.sim import SimServer
from tests.conftest import eventually

TOKEN = "t0k-" + secrets.token_hex(16)


async def _api(token: str = TOKEN) -> HttpApi:
    api = HttpApi(CollectorRegistry(), lambda: (True, {}), {"funding": lambda: {"x": 1}}, port=0, token=token)
    await api.start()
    return api


async def test_token_required_except_healthz():
    api = await _api()
    base = f"http://127.0.0.1:{api.port}"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    try:
        async with aiohttp.ClientSession() as http:
            for path in ("/metrics", "/readyz", "/state", "/state/funding", "/state/nope", "/"):
                async with http.get(base + path) as resp:
                    assert resp.status == 401, path
                    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
                    assert TOKEN not in await resp.text()
                for bad in (f"Bearer {TOKEN}x", f"Basic {TOKEN}", TOKEN, f"Bearer {TOKEN[:-1]}", "Bearer "):
                    async with http.get(base + path, headers={"Authorization": bad}) as resp:
                        assert resp.status == 401, (path, bad)
                async with http.get(base + path, headers=auth) as resp:
                    assert resp.status == (404 if path == "/state/nope" else 200), path
            async with http.get(base + "/healthz") as resp:
                assert (resp.status, await resp.text()) == (200, "ok\n")
            async with http.head(base + "/metrics", headers=auth) as resp:
                assert resp.status == 200
            assert api.scrapes == 2
    finally:
        await api.stop()


async def test_no_token_means_open():
    api = await _api(token="")
    try:
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{api.port}/metrics") as resp:
            assert resp.status == 200
    finally:
        await api.stop()


async def test_only_get_and_request_size_limited():
    api = await _api()
    base = f"http://127.0.0.1:{api.port}"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    try:
        async with aiohttp.ClientSession() as http:
            for method in ("POST", "PUT", "DELETE", "PATCH"):
                for path in ("/metrics", "/state/funding", "/healthz"):
                    async with http.request(method, base + path, headers=auth, data=b"{}") as resp:
                        assert resp.status == 405, (method, path)
            big = b"x" * (MAX_REQUEST_BYTES + 1)
            async with http.get(base + "/state/funding", headers=auth, data=big) as resp:
                assert resp.status == 413
            async with http.get(base + "/healthz", data=big) as resp:
                assert resp.status == 413
            # an oversized header line is refused by aiohttp's parser before any handler
            async with http.get(base + "/healthz", headers={"X-Big": "y" * 20_000}) as resp:
                assert resp.status in (400, 431)
    finally:
        await api.stop()


async def test_non_loopback_bind_without_token_warns(caplog):
    caplog.set_level(logging.WARNING, logger="streamer.api")
    for token, needle in (("", "WITHOUT a token"), (TOKEN, "bearer token required")):
        caplog.clear()
        api = HttpApi(CollectorRegistry(), lambda: (True, {}), {}, host="0.0.0.0", port=0, token=token)
        await api.start()
        await api.stop()
        assert needle in caplog.text
        assert TOKEN not in caplog.text


def test_token_from_environment_and_redacted_in_errors(tmp_path):
    assert load_settings(None, env={}).http.token == ""
    assert load_settings(None, env={"STREAMER_HTTP_TOKEN": TOKEN}).http.token == TOKEN
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"http:\n  token: {TOKEN}\n")
    assert load_settings(cfg, env={"STREAMER_HTTP_TOKEN": "other"}).http.token == TOKEN
    bad = "has space " + secrets.token_hex(8)
    with pytest.raises(ConfigError) as err:
        load_settings(None, env={"STREAMER_HTTP_TOKEN": bad})
    assert err.value.key == "http.token"
    assert bad not in str(err.value)
    assert "STREAMER_HTTP_TOKEN" in str(err.value)


async def _receiver() -> tuple[web.AppRunner, str, list[str]]:
    """Accepts webhook and chat posts; the first two of each answer 503 (so retry/error paths run)."""
    seen: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        seen.append(request.path)
        if sum(1 for p in seen if p.split("/")[1] == request.path.split("/")[1]) <= 2:
            return web.Response(status=503, text="try later")
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}", seen


async def test_secrets_never_leak(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    secret_body = base64.b64encode(secrets.token_bytes(32)).decode()
    webhook_secret = "whsec_" + secret_body
    chat_token = secrets.token_hex(12)
    needles = {"webhook secret": webhook_secret, "webhook secret body": secret_body,
               "webhook key b64 (no padding)": secret_body.rstrip("="),
               "http token": TOKEN, "chat url token": chat_token}
    runner, recv, seen = await _receiver()
    emitted: dict[str, str] = {}
    out = io.BytesIO()
    try:
        async with SimServer(seed=7, scenario="demo", speed=4.0) as sim:
            hook = WebhookSinkSettings(url=recv + "/hook", secret=webhook_secret, name="sec", timeout_s=2.0,
                                       max_backoff_s=0.5)
            settings = demo_settings(sim.urls, "127.0.0.1", 0, str(tmp_path), webhooks=[hook])
            settings.http.token = TOKEN
            settings.sinks.chat = [
                ChatSinkSettings(kind="slack", url=f"{recv}/services/T000/B000/{chat_token}"),
                ChatSinkSettings(kind="discord", url=f"http://127.0.0.1:1/api/webhooks/1/{chat_token}"),
            ]
            daemon = Daemon(settings, out=out)
            stop = asyncio.Event()
            task = asyncio.create_task(daemon.run(stop))
            try:
                await asyncio.wait_for(daemon.started.wait(), 10)
                base = f"http://127.0.0.1:{daemon.api.port}"
                auth = {"Authorization": f"Bearer {TOKEN}"}
                await eventually(lambda: (any(p.startswith("/hook") for p in seen[2:])
                                          and any(p.startswith("/services") for p in seen[2:])) or len(seen) >= 6,
                                 within_s=30, every_s=0.2)
                async with aiohttp.ClientSession() as http:
                    paths = ["/", "/metrics", "/healthz", "/readyz", "/state"]
                    async with http.get(base + "/state", headers=auth) as resp:
                        paths += (await resp.json())["endpoints"]
                    for path in paths:
                        for headers in (auth, {}, {"Authorization": "Bearer wrong"}):
                            async with http.get(base + path, headers=headers) as resp:
                                emitted[f"GET {path} {sorted(headers)} {resp.status}"] = (
                                    str(dict(resp.headers)) + await resp.text())
                    async with http.post(base + "/metrics", headers=auth, data=b"x") as resp:
                        emitted["POST /metrics"] = await resp.text()
                emitted["snapshot"] = repr(daemon.snapshot())
            finally:
                stop.set()
                status = await asyncio.wait_for(task, 15)
            assert status == 0
    finally:
        await runner.cleanup()
    emitted["stdout"] = out.getvalue().decode()
    emitted["logs"] = caplog.text + "\n".join(
        f"{r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in caplog.records)
    for f in Path(tmp_path).rglob("*"):  # noqa: ASYNC240 - after the run, nothing else on the loop
        if f.is_file():
            emitted[f"file {f.name}"] = f.read_bytes().decode("utf-8", "replace")
    # the run did something worth scanning
    assert '"type": "alert"' in emitted["stdout"] or '"type":"alert"' in emitted["stdout"]
    assert any(k.startswith("GET /metrics") and k.endswith(" 200") for k in emitted)
    assert any(k.startswith("GET /metrics") and k.endswith(" 401") for k in emitted)
    assert any(p.startswith("/hook") for p in seen)
    assert any(p.startswith("/services") for p in seen)
    leaks = [(what, where) for where, text in emitted.items() for what, needle in needles.items() if needle in text]
    assert not leaks, leaks
