"""The dashboard's SSE hub and endpoints: bounded per-client buffers, one state build per tick, token in the query."""

from __future__ import annotations

import asyncio
import io
import json
import secrets
import socket

import aiohttp
import pytest
from prometheus_client import CollectorRegistry

from streamer.api import HttpApi
from streamer.bus.memory import MemoryBus
from streamer.model import Alert, Liquidation
from streamer.web.hub import EventHub, SseClient, sse_frame
from tests.conftest import eventually

T0 = 1_796_000_000_000
TOKEN = "t0k-" + secrets.token_hex(16)


def liq(i: int, *, raw: str = "BTCUSDT") -> Liquidation:
    return Liquidation(exchange="binance", symbol="BTC-USDT-PERP", raw_symbol=raw, ts=T0 + i, recv_ts=T0 + i,
                       side="long" if i % 2 else "short", price=95_000.0 + i, qty=0.5, value_usd=47_500.0)


def alert(status: str = "firing") -> Alert:
    return Alert(id="a1", rule="liquidation_cascade", status=status, severity="warning", exchange=None,
                 symbol="BTC-USDT-PERP", value=3e6, threshold=2e6, window_s=10.0, started_at=T0, ts=T0,
                 summary="BTC-USDT-PERP: $3.0M of longs liquidated in 10s", details={})


def frames(blob: bytes) -> list[tuple[str, dict]]:
    """Parse SSE frames (``event:`` + one ``data:`` line each)."""
    out = []
    for block in blob.decode().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in lines:
            out.append((lines["event"], json.loads(lines["data"])))
    return out


def test_full_client_buffer_drops_the_oldest_and_counts_each_drop():
    client = SseClient(1, max_queue=3)
    for i in range(10):
        client.offer(f"f{i}".encode())
    assert client.queued == 3
    assert (client.offered, client.dropped) == (10, 7)
    assert client.take() == [b"f7", b"f8", b"f9"]
    assert (client.written, client.queued) == (3, 0)


def test_newer_state_replaces_an_unsent_one_and_comes_first():
    client = SseClient(1, max_queue=10)
    client.offer(b"liq")
    client.set_state(sse_frame("state", b'{"n":1}'))
    client.set_state(sse_frame("state", b'{"n":2}'))
    out = client.take()
    assert out[0] == sse_frame("state", b'{"n":2}')
    assert frames(out[1])[0][0] == "client"
    assert out[2:] == [b"liq"]
    assert (client.states, client.states_superseded, client.dropped) == (2, 1, 0)


def test_state_is_built_once_per_tick_for_all_clients_and_not_at_all_without_clients():
    calls = []

    def build():
        calls.append(1)
        return {"n": len(calls)}

    hub = EventHub(MemoryBus(), build)
    hub.tick()
    assert calls == []  # nobody connected: nothing built
    clients = [hub.connect() for _ in range(3)]
    assert len(calls) == 3  # each new client is primed with the state as of its connect
    hub.tick()
    assert len(calls) == 4
    states = [c.take()[0] for c in clients]
    assert states[0] is states[1] is states[2]  # one frame, encoded once, shared
    assert frames(states[0]) == [("state", {"n": 4})]


def test_connect_primes_hello_recent_liquidations_and_refuses_past_max_clients():
    recent = [liq(i) for i in range(60)]
    hub = EventHub(MemoryBus(), lambda: {"ok": True}, lambda: recent, max_clients=2)
    first = hub.connect()
    assert first is not None
    got = frames(b"".join(first.take()))
    assert [k for k, _ in got[:3]] == ["state", "client", "hello"]
    tape = [d for k, d in got if k == "liquidation"]
    assert [d["ts"] for d in tape] == [T0 + i for i in range(20, 60)]  # the newest 40, oldest first
    assert hub.connect() is not None
    assert hub.connect() is None
    assert hub.refused == 1


async def test_client_that_never_reads_stays_bounded_while_the_bus_keeps_publishing():
    bus = MemoryBus()
    hub = EventHub(bus, lambda: {}, client_queue=100)
    stalled = hub.connect()
    assert stalled is not None
    stalled.take()  # hello and state: from here on it only fills
    task = asyncio.create_task(hub.run())
    try:
        for i in range(5000):
            bus.publish(liq(i))
            if i % 250 == 0:
                await asyncio.sleep(0)
        await eventually(lambda: hub.consumer.qsize == 0)
        assert stalled.queued == 100
        assert stalled.offered == 5001  # hello + the 5000 liquidations
        assert stalled.dropped == 4900
        assert stalled.written == 1
        assert frames(b"".join(stalled.take()))[0][1]["ts"] == T0 + 4900  # the newest 100 kept
        assert bus.stats()["published"] == 5000
        assert hub.consumer.dropped == 0  # the pipeline side kept up
    finally:
        task.cancel()
        await asyncio.wait([task])


async def _api(bus: MemoryBus, hub: EventHub, token: str = "") -> HttpApi:
    api = HttpApi(CollectorRegistry(), lambda: (True, {}), {"dashboard": hub.stats}, port=0, token=token, events=hub)
    await api.start()
    return api


async def test_events_stream_sends_hello_state_alerts_and_liquidations():
    bus = MemoryBus()
    hub = EventHub(bus, lambda: {"now_ms": T0}, tick_s=0.05)
    api = await _api(bus, hub)
    try:
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{api.port}/events") as resp:
            assert resp.headers["Content-Type"] == "text/event-stream"
            assert await resp.content.readuntil(b"\n\n") == b"retry: 2000\n\n"
            await eventually(lambda: hub.clients)
            bus.publish(liq(1))
            bus.publish(alert())
            seen: list[tuple[str, dict]] = []
            while not {"alert", "liquidation", "state"} <= {k for k, _ in seen}:
                seen += frames(await asyncio.wait_for(resp.content.readuntil(b"\n\n"), 5))
        kinds = [k for k, _ in seen]
        assert kinds[0] == "state"
        assert "hello" in kinds
        assert next(d for k, d in seen if k == "alert")["rule"] == "liquidation_cascade"
        assert next(d for k, d in seen if k == "liquidation")["ts"] == T0 + 1
        assert next(d for k, d in seen if k == "state") == {"now_ms": T0}
        await eventually(lambda: not hub.clients, within_s=5)  # the closed stream is forgotten
    finally:
        await api.stop()


async def test_a_stalled_socket_does_not_hold_up_another_browser_and_its_buffer_stays_bounded():
    bus = MemoryBus()
    hub = EventHub(bus, lambda: {}, client_queue=200, tick_s=0.05)
    api = await _api(bus, hub)
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        stalled.connect(("127.0.0.1", api.port))
        stalled.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")  # and never read a byte
        await eventually(lambda: len(hub.clients) == 1)
        slow = next(iter(hub.clients.values()))
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{api.port}/events") as resp:
            await eventually(lambda: len(hub.clients) == 2)
            for i in range(30_000):  # ~9 MB of frames: far more than the stalled socket's buffers
                bus.publish(liq(i))
                if i % 200 == 0:
                    await asyncio.sleep(0)
            bus.publish(liq(10**6, raw="MARKER"))
            got = b""
            while b"MARKER" not in got:  # the reading browser gets the newest event
                got += await asyncio.wait_for(resp.content.readany(), 10)
            assert slow.dropped > 0
            assert slow.queued <= 200
            assert slow.offered == slow.written + slow.dropped + slow.queued
            assert hub.consumer.dropped == 0
            assert hub.stats()["dropped"] >= slow.dropped
    finally:
        stalled.close()
        await api.stop()


async def test_query_token_opens_only_the_dashboard_paths():
    bus = MemoryBus()
    hub = EventHub(bus, lambda: {})
    api = await _api(bus, hub, token=TOKEN)
    base = f"http://127.0.0.1:{api.port}"
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/?token={TOKEN}") as resp:
                assert resp.status == 200
                page = await resp.text()
                assert TOKEN not in page
                assert "EventSource" in page
                assert "script-src 'sha256-" in resp.headers["Content-Security-Policy"]
            async with http.get(f"{base}/events?token={TOKEN}") as resp:
                assert resp.status == 200
                assert await resp.content.readuntil(b"\n\n") == b"retry: 2000\n\n"
            for path in ("/", "/events"):
                for query in ("", "?token=", f"?token={TOKEN}x"):
                    async with http.get(base + path + query) as resp:
                        assert resp.status == 401, (path, query)
            for path in ("/metrics", "/state", "/state/dashboard", "/readyz"):
                async with http.get(f"{base}{path}?token={TOKEN}") as resp:
                    assert resp.status == 401, path
            async with http.get(f"{base}/events", headers={"Authorization": f"Bearer {TOKEN}"}) as resp:
                assert resp.status == 200
    finally:
        await api.stop()


async def test_events_is_503_past_max_clients_and_404_without_a_hub():
    bus = MemoryBus()
    hub = EventHub(bus, lambda: {}, max_clients=1)
    api = await _api(bus, hub)
    bare = HttpApi(CollectorRegistry(), lambda: (True, {}), {}, port=0)
    await bare.start()
    try:
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{api.port}/events") as first:
            assert first.status == 200
            async with http.get(f"http://127.0.0.1:{api.port}/events") as second:
                assert second.status == 503
                assert "max 1" in (await second.json())["error"]
            async with http.get(f"http://127.0.0.1:{bare.port}/events") as none:
                assert none.status == 404
            async with http.head(f"http://127.0.0.1:{api.port}/events") as head:
                assert head.status == 200
                assert head.headers["Content-Type"] == "text/event-stream"
            assert len(hub.clients) == 1  # the HEAD opened no stream
    finally:
        await api.stop()
        await bare.stop()


@pytest.mark.timeout(20)
async def test_stop_ends_open_streams_promptly():
    bus = MemoryBus()
    hub = EventHub(bus, lambda: {}, tick_s=0.05)
    api = await _api(bus, hub)
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{api.port}/events") as resp:
        await resp.content.readuntil(b"\n\n")
        loop = asyncio.get_running_loop()
        started = loop.time()
        await asyncio.wait_for(api.stop(), 5)
        assert loop.time() - started < 2
        assert hub.clients == {}


async def test_daemon_serves_live_state_and_the_cascade_alert_on_events(tmp_path):
    from streamer.daemon import Daemon
    from streamer.demo import demo_settings
    from streamer.sim import SimServer

    async with SimServer(seed=7, scenario="demo", speed=4.0) as sim:
        daemon = Daemon(demo_settings(sim.urls, "127.0.0.1", 0, str(tmp_path)), out=io.BytesIO())
        stop = asyncio.Event()
        task = asyncio.create_task(daemon.run(stop))
        try:
            await asyncio.wait_for(daemon.started.wait(), 10)
            url = f"http://127.0.0.1:{daemon.api.port}/events"
            seen: dict[str, list[dict]] = {}
            async with aiohttp.ClientSession() as http, http.get(url) as resp:
                while "alert" not in seen:
                    for kind, data in frames(await asyncio.wait_for(resp.content.readuntil(b"\n\n"), 15)):
                        seen.setdefault(kind, []).append(data)
            state = seen["state"][-1]
            assert {r["exchange"] for r in state["funding"]["rows"]} >= {"binance", "bybit", "okx", "deribit"}
            assert {v["state"] for v in state["venues"]} == {"open"}
            assert seen["alert"][0]["rule"] == "liquidation_cascade"
            assert seen["liquidation"]
            assert daemon.bus.stats()["consumers"]["sse"]["types"] == ["alert", "liquidation"]
        finally:
            stop.set()
            assert await asyncio.wait_for(task, 15) == 0
