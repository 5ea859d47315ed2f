"""Venue modules of the simulator: each exchange's WebSocket and REST protocol, from the server side.

A venue renders the shared ``Market`` in one exchange's wire format, written from that exchange's
documentation (never from our adapters). ``SimServer`` hosts every venue on one aiohttp app and
drives them all from one clock: after each market step it calls ``on_tick``, which only queues
frames (it never awaits), so a slow client cannot hold up the others.

To add an exchange, write ``venues/<name>.py`` with a class satisfying ``Venue`` and list it in
``streamer.sim.server``. ``WsConnection`` is the plumbing the JSON-over-WebSocket venues share
(Bybit, OKX): an outgoing queue with its own writer task, the fault hooks (``FaultTarget``), an idle
cut and a forced-close deadline. Binance keeps its own (it also sends pings and counts pongs).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Protocol

from aiohttp import WSCloseCode, web

from streamer.sim.faults import FaultPlan, GarbageKind

__all__ = ["Venue", "WsConnection", "handshake_rejection"]


class Venue(Protocol):
    """What the server needs from a venue module."""

    @property
    def name(self) -> str:
        """Short exchange name, the first segment of its URLs and fault keys (``binance``)."""

    def install(self, app: web.Application) -> None:
        """Add the venue's routes (usually sub-apps under ``/<name>/...``) to ``app``."""

    def urls(self, http_root: str, ws_root: str) -> dict[str, str]:
        """Named base URLs, given ``http://host:port`` and ``ws://host:port``."""

    def on_tick(self, now_ms: int) -> None:
        """Queue whatever is due at market time ``now_ms``. Must not block or await."""

    async def close(self) -> None:
        """Close every live connection (server shutdown)."""


async def handshake_rejection(faults: FaultPlan, venue_key: str, request: web.Request) -> web.Response | None:
    """The HTTP answer to an upgrade request that ``faults.reject_handshakes`` wants refused
    (after the fault's ``delay_s``: ``faults.hang_handshakes`` makes the client's handshake time out)."""
    fault = faults.take_handshake_fault(venue_key, request.path)
    if fault is None:
        return None
    await faults.sleep(fault.delay_s)
    headers = {"Retry-After": str(fault.retry_after_s)} if fault.retry_after_s is not None else {}
    return web.Response(status=fault.status, text=f"simulated handshake failure {fault.status}", headers=headers)


class WsConnection:
    """One client WebSocket of a JSON venue: queue, writer, idle cut, fault hooks.

    Market data goes through ``push`` (withheld while ``faults.stall`` covers the venue); control
    answers (acks, pongs, errors) through ``reply``. ``keep_loop`` closes the connection when it has
    been idle for ``idle_timeout_s`` (what counts as activity is the venue's: call ``touch``; data
    written counts by default) with ``idle_close``, or at a fault deadline (``close_at``).
    ``render_garbage`` renders one malformed frame for ``faults.send_garbage``.
    """

    def __init__(
        self,
        venue_key: str,
        ws: web.WebSocketResponse,
        request: web.Request,
        faults: FaultPlan,
        stats: Counter[str],
        *,
        idle_timeout_s: float,
        idle_close: tuple[int, str],
        render_garbage: Callable[[WsConnection, GarbageKind], str | bytes],
        send_queue_max: int = 10_000,
    ) -> None:
        self._venue_key = venue_key
        self.ws = ws
        self.request = request
        self.faults = faults
        self.stats = stats
        self.conn_id = str(uuid.uuid4())
        self.idle_timeout_s = idle_timeout_s
        self.idle_close = idle_close
        self.render_garbage = render_garbage
        self.queue: asyncio.Queue[tuple[bool, str | bytes]] = asyncio.Queue(send_queue_max)
        now = time.monotonic()
        self.opened_mono = now
        self.activity_mono = now
        self.deadline_mono = float("inf")
        self.deadline_code = 1000
        self.deadline_reason = ""
        self.close_request: tuple[int, str] | None = None
        self.wake = asyncio.Event()

    @property
    def venue_key(self) -> str:
        return self._venue_key

    # FaultTarget ------------------------------------------------------------------------------

    async def close(self, code: int, reason: str) -> None:
        await self.ws.close(code=code, message=reason.encode())

    def abort(self) -> None:
        transport = self.request.transport
        if transport is not None:
            transport.abort()

    def inject(self, kind: GarbageKind) -> None:
        self._put(False, self.render_garbage(self, kind))

    def close_at(self, deadline_mono: float, code: int, reason: str) -> None:
        if deadline_mono < self.deadline_mono:
            self.deadline_mono, self.deadline_code, self.deadline_reason = deadline_mono, code, reason
            self.wake.set()

    # activity ---------------------------------------------------------------------------------

    def touch(self) -> None:
        """Record activity that keeps the connection alive (venue rules), and re-arm the idle cut."""
        self.activity_mono = time.monotonic()

    def idle_deadline(self) -> float:
        """When the connection is cut for idleness (``time.monotonic()`` seconds)."""
        return self.activity_mono + self.idle_timeout_s

    # sending ----------------------------------------------------------------------------------

    def push(self, frame: str) -> None:
        """Queue a market-data frame (and, under ``faults.garbage_ratio``, sometimes a spoiled copy)."""
        self._put(True, frame)
        spoiled = self.faults.garbage_for(self._venue_key, frame)
        if spoiled is not None:
            self._put(True, spoiled)

    def reply(self, frame: str) -> None:
        """Queue a control frame (ack, pong, error): never withheld by a stall."""
        self._put(False, frame)

    def _put(self, is_data: bool, frame: str | bytes) -> None:
        try:
            self.queue.put_nowait((is_data, frame))
        except asyncio.QueueFull:
            self.stats["slow_consumer_closes"] += 1
            self.close_request = (WSCloseCode.POLICY_VIOLATION, "slow consumer")
            self.wake.set()

    async def write_loop(self) -> None:
        while True:
            is_data, frame = await self.queue.get()
            if is_data and self.faults.is_stalled(self.venue_key):
                self.stats["stalled_frames_dropped"] += 1
                continue
            try:
                if isinstance(frame, bytes):
                    await self.ws.send_bytes(frame)
                else:
                    await self.ws.send_str(frame)
            except (ConnectionError, RuntimeError):
                return
            if is_data:
                self.activity_mono = time.monotonic()
            self.stats["frames_sent"] += 1

    async def keep_loop(self) -> None:
        """Enforce the idle cut and fault deadlines; honour close requests."""
        while not self.ws.closed:
            now = time.monotonic()
            if self.close_request is not None:
                code, reason = self.close_request
                await self.ws.close(code=code, message=reason.encode())
                return
            if now >= self.deadline_mono:
                self.stats["lifetime_closes"] += 1
                await self.ws.close(code=self.deadline_code, message=self.deadline_reason.encode())
                return
            idle_at = self.idle_deadline()
            if now >= idle_at:
                self.stats["idle_closes"] += 1
                code, reason = self.idle_close
                await self.ws.close(code=code, message=reason.encode())
                return
            wait = min(self.deadline_mono, idle_at) - now
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=max(min(wait, 1.0), 0.001))
