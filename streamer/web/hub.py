"""Server-Sent Events fan-out for the live dashboard: one bus consumer, one bounded buffer per browser.

Flow: the hub owns ONE bus consumer (``sse``, types ``alert`` and ``liquidation``, bounded,
``drop_oldest``). Its pump task encodes each event once and offers the bytes to every connected
client. Every ``tick_s`` (1 s) its ticker builds the ``state`` snapshot once (only while a client is
connected), encodes it once, and hands the same bytes to every client.

A client (:class:`SseClient`) holds a bounded deque of encoded events (``max_queue``; when full the
oldest is discarded and counted in ``dropped``) and one slot for the newest ``state`` (a newer
snapshot replaces an unsent older one: counted in ``states_superseded``, not a loss). The HTTP
handler writes whatever is queued; while a slow browser's socket is full, that handler waits on
the socket and the hub keeps going, so a slow browser never slows the bus or the other clients.

Wire format (``text/event-stream``), one frame per event::

    event: <type>\\ndata: <one JSON object>\\n\\n

Types: ``hello`` (once, at connect), ``state`` (each tick), ``alert`` and ``liquidation`` (the
events' JSON form, as on the bus), ``client`` (this client's own counters, each tick).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import msgspec
import orjson

from streamer.bus import ConsumerClosedError
from streamer.bus.memory import MemoryBus, QueueConsumer
from streamer.model import Event, Liquidation

log = logging.getLogger("streamer.web")

SSE_TYPES = ("alert", "liquidation")
"""Bus event types the hub forwards to browsers as they happen."""

DEFAULT_CLIENT_QUEUE = 500
DEFAULT_MAX_CLIENTS = 32
BACKLOG_LIQUIDATIONS = 40
"""Liquidations replayed to a browser when it connects, so the tape is not empty."""

_encoder = msgspec.json.Encoder()


def sse_frame(kind: str, data: bytes) -> bytes:
    """One SSE frame: ``event: <kind>`` and ``data: <data>`` (``data`` is one line of JSON)."""
    return b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n"


def encode_event(event: Event) -> bytes:
    """The SSE frame of a bus event: its ``type`` and its JSON form."""
    return sse_frame(str(type(event).__struct_config__.tag), _encoder.encode(event))


class SseClient:
    """One connected browser: a bounded buffer of encoded frames and the newest state.

    Args:
        cid: client number (for logs and stats).
        max_queue: frames buffered at most (alerts, liquidations); the oldest goes first when full.
    """

    def __init__(self, cid: int, max_queue: int = DEFAULT_CLIENT_QUEUE) -> None:
        if max_queue < 1:
            raise ValueError(f"max_queue {max_queue}: expected >= 1")
        self.cid = cid
        self.max_queue = max_queue
        self._frames: deque[bytes] = deque()
        self._state: bytes | None = None
        self._wake = asyncio.Event()
        self.closed = False
        self.offered = 0
        self.dropped = 0
        self.written = 0
        self.states = 0
        self.states_superseded = 0

    def offer(self, frame: bytes) -> None:
        """Queue one event frame; never waits. Full: the oldest frame is discarded (``dropped`` + 1)."""
        if self.closed:
            return
        self.offered += 1
        if len(self._frames) >= self.max_queue:
            self._frames.popleft()
            self.dropped += 1
        self._frames.append(frame)
        self._wake.set()

    def set_state(self, frame: bytes) -> None:
        """Replace the pending state frame (an unsent older one is superseded: ``states_superseded`` + 1)."""
        if self.closed:
            return
        if self._state is not None:
            self.states_superseded += 1
        self._state = frame
        self.states += 1
        self._wake.set()

    @property
    def queued(self) -> int:
        """Event frames waiting to be written."""
        return len(self._frames)

    def take(self) -> list[bytes]:
        """Everything pending, state first (the client's own counters after it); empties the buffer."""
        out: list[bytes] = []
        if self._state is not None:
            out.append(self._state)
            out.append(sse_frame("client", orjson.dumps(self.stats())))
            self._state = None
        out.extend(self._frames)
        self.written += len(self._frames)
        self._frames.clear()
        self._wake.clear()
        return out

    async def wait(self) -> None:
        """Wait until something is pending or the client is closed."""
        await self._wake.wait()

    def close(self) -> None:
        """End this client's stream (its handler returns once it sees ``closed``)."""
        self.closed = True
        self._wake.set()

    def stats(self) -> dict[str, int]:
        """cid, queued, max_queue, offered, written, dropped, states, states_superseded."""
        return {"cid": self.cid, "queued": len(self._frames), "max_queue": self.max_queue, "offered": self.offered,
                "written": self.written, "dropped": self.dropped, "states": self.states,
                "states_superseded": self.states_superseded}


StateSource = Callable[[], Mapping[str, Any]]


class EventHub:
    """The dashboard's SSE source (see the module docstring).

    Args:
        bus: the bus; the hub registers its consumer ``sse`` at once (nothing published later is missed).
        state: builds the ``state`` snapshot (JSON-able), called once per tick while clients are connected.
        recent_liquidations: the newest liquidations, oldest first (replayed to a new client).
        tick_s: seconds between state snapshots.
        client_queue: event frames buffered per client.
        bus_queue: size of the hub's own bus consumer queue (``drop_oldest``).
        max_clients: connections accepted at once; more are refused (``connect`` returns None).
    """

    def __init__(
        self,
        bus: MemoryBus,
        state: StateSource,
        recent_liquidations: Callable[[], Iterable[Liquidation]] = tuple,
        *,
        tick_s: float = 1.0,
        client_queue: int = DEFAULT_CLIENT_QUEUE,
        bus_queue: int = 10_000,
        max_clients: int = DEFAULT_MAX_CLIENTS,
    ) -> None:
        self.consumer: QueueConsumer = bus.consumer("sse", maxsize=bus_queue, overflow="drop_oldest",
                                                    types=list(SSE_TYPES))
        self._state = state
        self._recent = recent_liquidations
        self.tick_s = tick_s
        self.client_queue = client_queue
        self.max_clients = max_clients
        self.clients: dict[int, SseClient] = {}
        self._ids = itertools.count(1)
        self.forwarded = 0
        self.ticks = 0
        self.refused = 0
        self.state_errors = 0
        self.last_state_ms: float | None = None
        self.dropped_by_gone_clients = 0

    def connect(self) -> SseClient | None:
        """A new client, primed with ``hello``, the latest state and recent liquidations; None when full."""
        if len(self.clients) >= self.max_clients:
            self.refused += 1
            return None
        client = SseClient(next(self._ids), self.client_queue)
        self.clients[client.cid] = client
        client.offer(sse_frame("hello", orjson.dumps({"tick_s": self.tick_s, "cid": client.cid,
                                                      "client_queue": self.client_queue})))
        backlog = list(self._recent())[-BACKLOG_LIQUIDATIONS:]
        for liq in backlog:
            client.offer(encode_event(liq))
        frame = self._state_frame()
        if frame is not None:
            client.set_state(frame)
        return client

    def disconnect(self, client: SseClient) -> None:
        """Forget a client (its stream ended)."""
        client.close()
        if self.clients.pop(client.cid, None) is not None:
            self.dropped_by_gone_clients += client.dropped

    def broadcast(self, event: Event) -> None:
        """Encode ``event`` once and offer it to every client (never waits)."""
        if not self.clients:
            return
        frame = encode_event(event)
        self.forwarded += 1
        for client in self.clients.values():
            client.offer(frame)

    def tick(self) -> None:
        """Build the state once and hand the same frame to every client (nothing without clients)."""
        if not self.clients:
            return
        frame = self._state_frame()
        if frame is None:
            return
        self.ticks += 1
        for client in self.clients.values():
            client.set_state(frame)

    def _state_frame(self) -> bytes | None:
        started = time.perf_counter()
        try:
            data = self._state()
        except Exception:  # a bug in one panel's numbers must not end the stream; counted
            self.state_errors += 1
            log.exception("dashboard state failed")
            return None
        frame = sse_frame("state", orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS))
        self.last_state_ms = (time.perf_counter() - started) * 1000
        return frame

    async def _pump(self) -> None:
        while True:
            try:
                event = await self.consumer.get()
            except ConsumerClosedError:
                return
            self.broadcast(event)

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            self.tick()

    async def run(self) -> None:
        """Pump the bus consumer and tick until cancelled or the bus closes; then close every client."""
        try:
            async with asyncio.TaskGroup() as tg:
                ticker = tg.create_task(self._ticker(), name="sse:ticker")
                await self._pump()  # returns once the bus has closed the consumer and it is drained
                ticker.cancel()
        finally:
            self.close()

    def close(self) -> None:
        """End every client's stream."""
        for client in list(self.clients.values()):
            client.close()

    def stats(self) -> dict[str, Any]:
        """clients (per-client stats), forwarded, ticks, refused, state_errors, dropped (all clients), bus consumer."""
        clients = [c.stats() for c in self.clients.values()]
        return {
            "clients": clients,
            "forwarded": self.forwarded,
            "ticks": self.ticks,
            "refused": self.refused,
            "state_errors": self.state_errors,
            "state_build_ms": self.last_state_ms,
            "dropped": sum(c["dropped"] for c in clients) + self.dropped_by_gone_clients,
            "consumer": self.consumer.stats(),
        }
