"""Test helpers for the transport: polling, a scripted WebSocket server, a fake clock."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestServer

from streamer.transport import WsSession, backoff

MS = 0.001


async def eventually(cond: Callable[[], bool], within: float = 3.0, interval: float = 0.005) -> None:
    """Poll ``cond`` every few milliseconds until it holds; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(interval)


def short_backoff() -> Iterator[float]:
    """The real backoff generator scaled down to milliseconds."""
    return backoff(initial=10 * MS, factor=2.0, cap=50 * MS, jitter="equal")


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@dataclass
class ServerConn:
    """One connection attempt as the scripted server saw it."""

    index: int
    request: web.Request
    ws: web.WebSocketResponse | None = None
    received: list[str | bytes] = field(default_factory=list)
    received_at: list[float] = field(default_factory=list)
    opened_at: float = 0.0
    close_code: int | None = None
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    async def accept(self) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(self.request)
        self.ws = ws
        self.opened_at = time.monotonic()
        return ws

    def reject(self, status: int) -> web.Response:
        return web.Response(status=status, text=f"scripted {status}")

    async def read(self, n: int | None = None) -> None:
        """Record incoming frames until ``n`` more arrived, or until the client closes."""
        assert self.ws is not None
        target = None if n is None else len(self.received) + n
        while target is None or len(self.received) < target:
            msg = await self.ws.receive()
            if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                self.received.append(msg.data)
                self.received_at.append(time.monotonic())
            elif msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                self.close_code = self.ws.close_code
                self.closed.set()
                return

    async def serve(self, sender: Callable[[web.WebSocketResponse], Awaitable[None]] | None = None) -> None:
        """Record incoming frames until the client closes, running ``sender`` alongside."""
        assert self.ws is not None
        if sender is None:
            await self.read()
            return
        ws = self.ws

        async def send_quietly() -> None:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await sender(ws)

        task = asyncio.create_task(send_quietly(), name=f"server-sender:{self.index}")
        try:
            await self.read()
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


Script = Callable[[ServerConn], Awaitable[web.StreamResponse]]


class WsServer:
    """An aiohttp server on 127.0.0.1:0 whose ``/ws`` handler runs ``script`` per connection."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.conns: list[ServerConn] = []
        app = web.Application()
        app.router.add_get("/ws", self._handler)
        self.server = TestServer(app, host="127.0.0.1", port=0)

        self.url = ""

    async def _handler(self, request: web.Request) -> web.StreamResponse:
        conn = ServerConn(len(self.conns), request)
        self.conns.append(conn)
        return await self.script(conn)

    def accepted(self) -> list[ServerConn]:
        return [c for c in self.conns if c.ws is not None]


@contextlib.asynccontextmanager
async def ws_server(script: Script) -> AsyncIterator[WsServer]:
    srv = WsServer(script)
    await srv.server.start_server()
    srv.url = str(srv.server.make_url("/ws")).replace("http://", "ws://", 1)
    try:
        yield srv
    finally:
        await srv.server.close()


@contextlib.asynccontextmanager
async def running(session: WsSession) -> AsyncIterator[asyncio.Task[None]]:
    """Run ``session.run()`` in a task; cancel it and wait for it on exit."""
    task = asyncio.create_task(session.run(), name=f"test:{session.name}")
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@dataclass
class Hit:
    path: str
    query: dict[str, str]
    at: float


Handler = Callable[[web.Request, int], Awaitable[web.StreamResponse]]


class HttpServer:
    """An aiohttp server on 127.0.0.1:0; ``handler(request, n)`` answers the n-th hit of a path."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.hits: list[Hit] = []
        self.base = ""
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._handle)
        self.server = TestServer(app, host="127.0.0.1", port=0)

    def count(self, path: str) -> int:
        return sum(1 for h in self.hits if h.path == path)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        n = self.count(request.path)
        self.hits.append(Hit(request.path, dict(request.query), time.monotonic()))
        return await self.handler(request, n)


@contextlib.asynccontextmanager
async def http_server(handler: Handler) -> AsyncIterator[HttpServer]:
    srv = HttpServer(handler)
    await srv.server.start_server()
    srv.base = str(srv.server.make_url("")).rstrip("/")
    try:
        yield srv
    finally:
        await srv.server.close()
