"""WsSession against a scripted aiohttp WebSocket server on 127.0.0.1 (millisecond timings)."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator

import pytest
from aiohttp import web

from streamer.transport import WsSession, backoff
from tests.transport._util import MS, ServerConn, eventually, running, short_backoff, ws_server

pytestmark = pytest.mark.timeout(15)


def make_session(url, frames: list[tuple[str | bytes, int]] | None = None, **kw) -> WsSession:
    sink = frames if frames is not None else []
    kw.setdefault("subscribe", lambda: ["sub"])
    kw.setdefault("backoff", short_backoff)
    kw.setdefault("ws_ping_interval_s", None)
    kw.setdefault("open_timeout_s", 2.0)
    kw.setdefault("close_timeout_s", 0.5)
    return WsSession(name="test", url=url, on_frame=kw.pop("on_frame", lambda f, t: sink.append((f, t))), **kw)


async def accept_and_serve(conn: ServerConn) -> web.StreamResponse:
    ws = await conn.accept()
    await conn.serve()
    return ws


async def accept_and_close(conn: ServerConn, *, code: int = 1000, send: str | None = None) -> web.StreamResponse:
    ws = await conn.accept()
    if send is not None:
        await ws.send_str(send)
    await ws.close(code=code)
    return ws


def stream_every(interval: float, text: str = "tick"):
    async def sender(ws: web.WebSocketResponse) -> None:
        while True:
            await ws.send_str(text)
            await asyncio.sleep(interval)

    return sender


class RecordingBackoff:
    """A backoff factory that records each call (a reset) and each delay it handed out."""

    def __init__(self) -> None:
        self.calls = 0
        self.delays: list[float] = []

    def __call__(self) -> Iterator[float]:
        self.calls += 1
        return self._gen()

    def _gen(self) -> Iterator[float]:
        for delay in backoff(initial=10 * MS, factor=2.0, cap=1.0, jitter="none"):
            self.delays.append(delay)
            yield delay


async def test_ws_session_delivers_frames_with_receive_time():
    async def script(conn: ServerConn) -> web.StreamResponse:
        ws = await conn.accept()
        await conn.read(1)
        await ws.send_str("a")
        await ws.send_str("b")
        await ws.send_bytes(b"cc")
        await conn.serve()
        return ws

    frames: list[tuple[str | bytes, int]] = []
    async with ws_server(script) as srv:
        session = make_session(srv.url, frames, wall_ms=lambda: 1234)
        async with running(session):
            await session.wait_frames(3)
            stats = session.stats()
    assert frames == [("a", 1234), ("b", 1234), (b"cc", 1234)]
    assert srv.conns[0].received == ["sub"]
    assert (stats.state, stats.connects, stats.frames, stats.bytes) == ("open", 1, 3, 4)
    assert stats.last_frame_ms == 1234
    assert stats.url == srv.url


async def test_ws_session_hands_text_frames_over_as_utf8_bytes_when_asked():
    async def script(conn: ServerConn) -> web.StreamResponse:
        ws = await conn.accept()
        await conn.read(1)
        await ws.send_str('{"p":"1€"}')
        await ws.send_bytes(b"cc")
        await conn.serve()
        return ws

    frames: list[tuple[str | bytes, int]] = []
    async with ws_server(script) as srv:
        session = make_session(srv.url, frames, wall_ms=lambda: 7, text_as_bytes=True)
        async with running(session):
            await session.wait_frames(2)
    assert frames == [('{"p":"1€"}'.encode(), 7), (b"cc", 7)]


async def test_ws_session_resubscribes_after_server_drop():
    subs = ["s1", "s2"]

    async def script(conn: ServerConn) -> web.StreamResponse:
        if conn.index == 0:
            ws = await conn.accept()
            await conn.read(2)
            subs.append("s3")  # the daemon's stored list changed meanwhile
            await ws.send_str("x")
            await ws.close(code=1001, message=b"scheduled restart")
            return ws
        return await accept_and_serve(conn)

    async with ws_server(script) as srv:
        session = make_session(srv.url, subscribe=lambda: list(subs))
        async with running(session):
            await session.wait_connects(2)
            await eventually(lambda: len(srv.conns) == 2 and len(srv.conns[1].received) == 3)
            stats = session.stats()
    assert srv.conns[0].received == ["s1", "s2"]
    assert srv.conns[1].received == ["s1", "s2", "s3"]
    assert stats.reconnects == 1
    assert stats.last_error is not None
    assert "1001" in stats.last_error


async def test_ws_session_reconnects_after_abrupt_abort():
    async def script(conn: ServerConn) -> web.StreamResponse:
        if conn.index == 0:
            ws = await conn.accept()
            await ws.send_str("x")
            assert conn.request.transport is not None
            conn.request.transport.abort()
            return ws
        return await accept_and_serve(conn)

    async with ws_server(script) as srv:
        session = make_session(srv.url)
        async with running(session):
            await session.wait_connects(2)
            await session.wait_open()
            stats = session.stats()
    assert stats.reconnects == 1
    assert stats.errors_retry == 1
    assert stats.last_error is not None
    assert "ConnectionClosedError" in stats.last_error


async def test_ws_session_retries_after_handshake_503():
    async def script(conn: ServerConn) -> web.StreamResponse:
        if conn.index == 0:
            return conn.reject(503)
        return await accept_and_serve(conn)

    async with ws_server(script) as srv:
        session = make_session(srv.url)
        async with running(session):
            await session.wait_open()
            stats = session.stats()
    assert (stats.attempts, stats.connects, stats.reconnects) == (2, 1, 1)
    assert stats.last_error is not None
    assert "503" in stats.last_error
    assert stats.errors_retry == 1


async def test_ws_session_retries_after_handshake_4xx_too():
    async def script(conn: ServerConn) -> web.StreamResponse:
        if conn.index == 0:
            return conn.reject(403)
        return await accept_and_serve(conn)

    async with ws_server(script) as srv:
        session = make_session(srv.url)
        async with running(session):
            await session.wait_open()
            stats = session.stats()
    assert (stats.attempts, stats.connects, stats.errors_fatal) == (2, 1, 1)


async def test_ws_session_reconnects_when_all_streams_go_stale():
    cadence = 50 * MS
    last_sent: list[float] = []

    async def script(conn: ServerConn) -> web.StreamResponse:
        ws = await conn.accept()
        if conn.index == 0:
            for _ in range(3):
                await ws.send_str("mark")
            last_sent.append(asyncio.get_running_loop().time())
            await conn.serve()  # stays open, answers pings, sends nothing
            return ws
        await conn.serve(stream_every(10 * MS, "mark"))
        return ws

    async with ws_server(script) as srv:
        session: WsSession = make_session(
            srv.url, ws_ping_interval_s=20 * MS, ws_ping_timeout_s=1.0,
            on_frame=lambda f, t: session.touch("mark", t),
        )
        session.expect("mark", cadence)
        async with running(session):
            await session.wait_connects(2)
            reconnected_at = asyncio.get_running_loop().time()
            stats = session.stats()
    assert stats.stalls == 1
    assert stats.last_error is not None
    assert "stale" in stats.last_error
    waited = reconnected_at - last_sent[0]
    assert 3 * cadence * 0.9 <= waited < 1.5


async def test_ws_session_quiet_stream_without_cadence_does_not_stall():
    async def script(conn: ServerConn) -> web.StreamResponse:
        ws = await conn.accept()
        await conn.serve(stream_every(5 * MS, "mark"))
        return ws

    async with ws_server(script) as srv:
        session: WsSession = make_session(srv.url, on_frame=lambda f, t: session.touch("mark", t))
        session.expect("mark", 30 * MS)
        session.expect("liquidations", None)
        async with running(session):
            await session.wait_frames(60)  # ~0.3 s: ten times the stale limit of 90 ms
            stats = session.stats()
    assert (stats.connects, stats.stalls) == (1, 0)
    assert stats.streams["liquidations"].stale is False
    assert stats.streams["liquidations"].last_ms is None
    assert stats.streams["mark"].stale is False
    assert stats.streams["mark"].frames >= 60


async def test_ws_session_stall_timeout_catches_a_silent_socket():
    async def script(conn: ServerConn) -> web.StreamResponse:
        return await accept_and_serve(conn)

    async with ws_server(script) as srv:
        session = make_session(srv.url, stall_timeout_s=60 * MS)
        async with running(session):
            await session.wait_connects(2)
            stats = session.stats()
    assert stats.stalls >= 1
    assert stats.last_error is not None
    assert "stalled" in stats.last_error


async def test_ws_session_backoff_grows_while_connections_deliver_nothing():
    async def script(conn: ServerConn) -> web.StreamResponse:
        if conn.index < 4:
            return await accept_and_close(conn)
        if conn.index == 4:
            return await accept_and_close(conn, send="data")
        return await accept_and_serve(conn)

    recorder = RecordingBackoff()
    async with ws_server(script) as srv:
        session = make_session(srv.url, backoff=recorder)
        async with running(session):
            await session.wait_connects(6)
            await session.wait_open()
    assert recorder.delays == [0.01, 0.02, 0.04, 0.08, 0.01]  # reset only after conn 4's data
    assert recorder.calls == 2
    gaps = [b.opened_at - a.opened_at for a, b in zip(srv.conns, srv.conns[1:], strict=False)]
    assert gaps[3] >= 0.08


async def test_ws_session_backoff_does_not_reset_on_frames_no_stream_claims():
    async def script(conn: ServerConn) -> web.StreamResponse:
        if conn.index < 3:
            return await accept_and_close(conn, send='{"error":"bad subscription"}')
        if conn.index == 3:
            return await accept_and_close(conn, send="data")
        return await accept_and_serve(conn)

    recorder = RecordingBackoff()

    def on_frame(frame: str | bytes, recv_ms: int) -> None:
        if frame == "data":
            session.touch("mark", recv_ms)

    async with ws_server(script) as srv:
        session = make_session(srv.url, backoff=recorder, on_frame=on_frame)
        session.expect("mark", None)
        async with running(session):
            await session.wait_connects(5)
            await session.wait_open()
    assert recorder.delays == [0.01, 0.02, 0.04, 0.01]
    assert recorder.calls == 2


async def test_ws_session_replaces_connection_at_max_lifetime():
    async def script(conn: ServerConn) -> web.StreamResponse:
        ws = await conn.accept()
        await conn.serve(stream_every(5 * MS))
        return ws

    async with ws_server(script) as srv:
        session = make_session(srv.url, max_lifetime_s=80 * MS)
        async with running(session):
            await session.wait_connects(3)
            stats = session.stats()
        await eventually(lambda: all(c.closed.is_set() for c in srv.conns))
    assert stats.lifetime_reconnects >= 2
    assert stats.last_error is None
    assert stats.backoff_delay_s == 0.0
    assert [c.received[:1] for c in srv.conns[:2]] == [["sub"], ["sub"]]
    assert srv.conns[0].close_code == 1000


async def test_ws_session_reconnect_request_replaces_connection_at_once():
    async with ws_server(accept_and_serve) as srv:
        session = make_session(srv.url)
        assert session.reconnect("not running") is False
        async with running(session):
            await session.wait_open()
            assert session.reconnect("subscriptions changed") is True
            await session.wait_connects(2)
            stats = session.stats()
    assert (stats.lifetime_reconnects, stats.errors_retry) == (1, 0)


async def test_ws_session_sends_application_ping_at_interval():
    async with ws_server(accept_and_serve) as srv:
        session = make_session(srv.url, ping_payload="ping", ping_interval_s=20 * MS)
        async with running(session):
            await eventually(lambda: bool(srv.conns) and srv.conns[0].received.count("ping") >= 4)
            stats = session.stats()
    conn = srv.conns[0]
    assert conn.received[0] == "sub"
    times = [t for f, t in zip(conn.received, conn.received_at, strict=True) if f == "ping"]
    assert all(b - a >= 15 * MS for a, b in itertools.pairwise(times))
    assert stats.pings_sent >= 4


async def test_ws_session_paces_outgoing_frames():
    async with ws_server(accept_and_serve) as srv:
        session = make_session(srv.url, subscribe=lambda: [f"s{i}" for i in range(5)],
                               subscribe_rate_per_s=50)
        async with running(session):
            await session.wait_open()
            await eventually(lambda: len(srv.conns[0].received) == 5)
    at = srv.conns[0].received_at
    assert srv.conns[0].received == ["s0", "s1", "s2", "s3", "s4"]
    assert at[-1] - at[0] >= 4 * 20 * MS * 0.75


async def test_ws_session_send_queues_when_open_and_drops_when_down():
    async with ws_server(accept_and_serve) as srv:
        session = make_session(srv.url)
        assert session.send("early") is False
        async with running(session):
            await session.wait_open()
            assert session.send('{"method":"public/test"}') is True
            await eventually(lambda: srv.conns[0].received[-1:] == ['{"method":"public/test"}'])
            stats = session.stats()
    assert (stats.send_dropped, stats.sent) == (1, 2)


async def test_ws_session_cancellation_closes_cleanly():
    async with ws_server(accept_and_serve) as srv:
        session = make_session(srv.url)
        task = asyncio.create_task(session.run(), name="test:cancel")
        await session.wait_open()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await eventually(srv.conns[0].closed.is_set)
    assert srv.conns[0].close_code == 1000
    assert session.state == "closed"
    assert session.stats().connected_since_ms is None


async def test_ws_session_on_frame_error_propagates_out_of_run():
    async def script(conn: ServerConn) -> web.StreamResponse:
        ws = await conn.accept()
        await ws.send_str("boom")
        await conn.serve()
        return ws

    def on_frame(frame: str | bytes, recv_ms: int) -> None:
        raise ValueError(f"daemon bug on {frame!r}")

    async with ws_server(script) as srv:
        session = make_session(srv.url, on_frame=on_frame)
        with pytest.raises(ValueError, match="daemon bug"):
            async with asyncio.timeout(5):
                await session.run()
        await eventually(srv.conns[0].closed.is_set)
    assert srv.conns[0].close_code == 1000
    assert session.stats().connects == 1


async def test_ws_session_calls_url_factory_on_every_connect():
    urls: list[str] = []

    async def script(conn: ServerConn) -> web.StreamResponse:
        if conn.index == 0:
            return await accept_and_close(conn, code=1001)
        return await accept_and_serve(conn)

    async with ws_server(script) as srv:

        def url() -> str:
            urls.append(srv.url)
            return srv.url

        session = make_session(url)
        async with running(session):
            await session.wait_connects(2)
    assert len(urls) == 2


async def test_ws_session_refuses_to_run_twice():
    async with ws_server(accept_and_serve) as srv:
        session = make_session(srv.url)
        async with running(session):
            await session.wait_open()
            with pytest.raises(RuntimeError):
                await session.run()


async def test_ws_session_keeps_retrying_while_server_is_down():
    async with ws_server(accept_and_serve) as srv:
        url = srv.url
    session = make_session(url)  # nobody listens on that port any more
    async with running(session):
        await eventually(lambda: session.stats().attempts >= 3)
        stats = session.stats()
    assert stats.connects == 0
    assert stats.state in ("connecting", "backoff")
    assert stats.errors_retry >= 2
    assert session.state == "closed"


async def test_ws_session_one_stale_stream_is_flagged_but_does_not_stall_the_socket():
    async def script(conn: ServerConn) -> web.StreamResponse:
        ws = await conn.accept()
        await conn.serve(stream_every(5 * MS, "fast"))
        return ws

    async with ws_server(script) as srv:
        session: WsSession = make_session(srv.url, on_frame=lambda f, t: session.touch("fast", t))
        session.expect("fast", 30 * MS)
        session.expect("slow", 20 * MS)  # subscribed but silent: a real problem, shown in stats
        async with running(session):
            await session.wait_open()
            assert session.stats().streams["slow"].stale is False  # within its grace period
            await eventually(lambda: session.stats().streams["slow"].stale)
            await session.wait_frames(session.stats().frames + 20)
            stats = session.stats()
    assert (stats.connects, stats.stalls) == (1, 0)
    assert stats.streams["fast"].stale is False


async def test_ws_session_long_lived_connection_resets_backoff_without_touches():
    async def script(conn: ServerConn) -> web.StreamResponse:
        ws = await conn.accept()
        if conn.index < 2:
            return await accept_and_close_after(conn, ws, 0.0)
        if conn.index == 2:
            return await accept_and_close_after(conn, ws, 60 * MS)
        await conn.serve()
        return ws

    async def accept_and_close_after(conn: ServerConn, ws: web.WebSocketResponse, after: float):
        await ws.send_str("pong")  # a control frame the daemon routes to no stream
        await asyncio.sleep(after)
        await ws.close()
        return ws

    recorder = RecordingBackoff()
    async with ws_server(script) as srv:
        session = make_session(srv.url, backoff=recorder, healthy_after_s=40 * MS)
        session.expect("liquidations", None)
        async with running(session):
            await session.wait_connects(4)
            await session.wait_open()
    assert recorder.delays == [0.01, 0.02, 0.01]


async def test_connected_since_ms_is_the_open_connections_start_and_none_while_down():
    async with ws_server(accept_and_serve) as srv:
        session = make_session(srv.url)
        assert session.connected_since_ms is None
        before = int(time.time() * 1000)
        task = asyncio.create_task(session.run(), name="test:since")
        await session.wait_open()
        since = session.connected_since_ms
        assert since is not None
        assert before <= since <= int(time.time() * 1000)
        assert since == session.stats().connected_since_ms
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert session.connected_since_ms is None


async def test_ws_session_declares_a_stall_at_the_stale_limit_not_a_polling_interval_later():
    cadence = 0.2  # stale_factor 2: stalled 0.4 s after the last frame (the old 1/4-interval poll: up to 0.5 s)
    last_sent: list[float] = []

    async def script(conn: ServerConn) -> web.StreamResponse:
        ws = await conn.accept()
        if conn.index == 0:
            for i in range(3):
                if i:
                    await asyncio.sleep(0.05)
                await ws.send_str("mark")
            last_sent.append(time.time())
            await conn.serve()  # stays open, answers pings, sends nothing
            return ws
        await conn.serve(stream_every(10 * MS, "mark"))
        return ws

    async with ws_server(script) as srv:
        session: WsSession = make_session(srv.url, stale_factor=2.0, on_frame=lambda f, t: session.touch("mark", t))
        session.expect("mark", cadence)
        async with running(session):
            await session.wait_connects(2)
            stats = session.stats()
    assert stats.stalls == 1
    assert stats.last_stall_ms is not None
    assert stats.last_stall_quiet_s is not None
    detected_after_s = stats.last_stall_ms / 1000 - last_sent[0]
    assert 2 * cadence <= stats.last_stall_quiet_s < 2 * cadence + 0.05
    assert 2 * cadence - 0.01 <= detected_after_s < 2 * cadence + 0.05
