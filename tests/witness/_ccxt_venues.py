"""Helpers for the Bybit and OKX ccxt witness tests: ccxt pointed at the simulator with the simulator's
own URL map (``streamer.sim.ccxt_api_urls``), our adapter fed through the real RestClient, and a plain
``websockets`` connection subscribed with the adapter's own frames.

The hand clock, ``move_to`` and ``walk`` are the Binance witness's (``tests/witness/_ccxt.py``). Nothing
here interprets a number: each side parses with its own code, and the tests compare.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import ccxt.async_support as ccxt_async
import ccxt.pro as ccxt_pro
import websockets
from websockets.asyncio.client import ClientConnection

from streamer.exchanges.base import RestCall, Stream
from streamer.exchanges.bybit import BybitAdapter
from streamer.exchanges.okx import OkxAdapter
from streamer.model import Event
from streamer.sim import SimServer, ccxt_api_urls
from streamer.transport.rest import RestClient, VenueLimits
from streamer.transport.ws import wall_ms
from tests.conftest import eventually

Adapter = BybitAdapter | OkxAdapter

LIMITS = {
    "bybit": VenueLimits(capacity=40, refill_per_s=40),  # under the sim's 50 per endpoint per second
    "okx": VenueLimits(capacity=8, refill_per_s=4),  # funding-rate and mark-price: 10 per 2 s per instrument
}


def point_at_sim(exchange: Any, urls: dict[str, str], venue: str) -> Any:
    """Point a ccxt ``bybit``/``okx`` instance (REST or pro) at the simulator: host and prefix only.

    ccxt's own request pacing is off (it only sleeps between requests; Bybit's eleven instruments pages
    would take a second): the tests make a handful of calls, well inside the simulator's budgets.
    """
    exchange.urls["api"].update(ccxt_api_urls(urls, venue))
    exchange.enableRateLimit = False
    return exchange


@contextlib.asynccontextmanager
async def ccxt_rest(venue: str, urls: dict[str, str]) -> AsyncIterator[Any]:
    """``ccxt.async_support.<venue>`` on the simulator, markets loaded; closed on exit."""
    exchange = point_at_sim(getattr(ccxt_async, venue)(), urls, venue)
    try:
        await exchange.load_markets()
        yield exchange
    finally:
        await exchange.close()


@contextlib.asynccontextmanager
async def ccxt_ws(venue: str, urls: dict[str, str]) -> AsyncIterator[Any]:
    """``ccxt.pro.<venue>`` on the simulator, markets loaded; closed on exit."""
    exchange = point_at_sim(getattr(ccxt_pro, venue)(), urls, venue)
    try:
        await exchange.load_markets()
        yield exchange
    finally:
        await exchange.close()


@dataclass
class VenueOurs:
    """Our side: a venue adapter fed by the real RestClient, instruments loaded as the daemon does
    (every page, ``load_instruments(body, market)``)."""

    venue: str
    urls: dict[str, str]
    rest: RestClient
    adapter: Adapter

    def url(self, call: RestCall) -> str:
        return self.urls[f"{self.venue}_rest"] + call.path

    async def body(self, call: RestCall) -> tuple[bytes, int]:
        """The raw body of ``call`` (to feed ccxt's own parser the very same bytes) and its receive time."""
        return await self.rest.get_json(self.venue, self.url(call), call.params, weight=call.weight)

    async def call(self, call: RestCall) -> list[Event]:
        body, recv_ms = await self.body(call)
        return self.adapter.parse_rest(call.endpoint, body, recv_ms, call.params)

    async def load_instruments(self) -> None:
        for first in self.adapter.rest_instruments():
            call: RestCall | None = first
            while call is not None:
                body, _ = await self.body(call)
                self.adapter.load_instruments(body, call.market)
                follow: Callable[[bytes], RestCall | None] | None = getattr(self.adapter, "next_instruments_call", None)
                call = follow(body) if follow is not None else None


@contextlib.asynccontextmanager
async def ours(venue: str, urls: dict[str, str]) -> AsyncIterator[VenueOurs]:
    adapter: Adapter = BybitAdapter() if venue == "bybit" else OkxAdapter()
    async with RestClient({venue: LIMITS[venue]}) as rest:
        side = VenueOurs(venue, urls, rest, adapter)
        await side.load_instruments()
        yield side


def _is_control(venue: str, head: object) -> bool:
    """A subscribe/unsubscribe ack (Bybit ``op``; OKX ``event``), a pong or an error frame."""
    if not isinstance(head, dict):
        return False
    if venue == "bybit":
        return "topic" not in head
    return "event" in head


def _acks_expected(venue: str, requests: list[str]) -> int:
    """Bybit answers each request once; OKX answers each arg of a request."""
    if venue == "bybit":
        return len(requests)
    return sum(len(json.loads(r)["args"]) for r in requests)


@dataclass
class Received:
    """One data frame as received, and what the adapter made of it."""

    text: str
    events: list[Event]


class FrameTap:
    """A plain ``websockets`` connection to the simulator: subscribe with the adapter's own frames,
    feed every frame received to ``adapter.parse``, keep the data frames and the events."""

    def __init__(self, venue: str, adapter: Adapter, url: str, streams: list[Stream]) -> None:
        self.venue = venue
        self.adapter = adapter
        self.url = url
        self.streams = streams
        self.received: list[Received] = []
        self.controls: list[dict[str, Any]] = []
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> FrameTap:
        self._ws = await websockets.connect(self.url, max_size=None)
        requests = self.adapter.subscribe(self.streams)
        self._reader = asyncio.create_task(self._read(), name=f"witness-{self.venue}-tap")
        for frame in requests:
            await self._ws.send(frame)
        expected = _acks_expected(self.venue, requests)
        await eventually(lambda: len(self.controls) >= expected, within_s=5)
        errors = [c for c in self.controls if c.get("success") is False or c.get("event") == "error"]
        assert not errors, errors
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._ws is not None:
            await self._ws.close()

    async def _read(self) -> None:
        assert self._ws is not None
        async for frame in self._ws:
            text = frame if isinstance(frame, str) else frame.decode()
            events = self.adapter.parse(text, wall_ms())
            head = json.loads(text) if text != "pong" else None
            if head is None or _is_control(self.venue, head):
                if isinstance(head, dict):
                    self.controls.append(head)
                continue
            self.received.append(Received(text, events))

    @property
    def events(self) -> list[Event]:
        return [e for r in self.received for e in r.events]

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


def bybit_subscribers(sim: SimServer, topic: str) -> int:
    """How many connections the simulator's Bybit venue has on ``topic``."""
    held = sim.bybit.topics.get(topic)
    return len(held.conns) if held is not None else 0


def okx_subscribers(sim: SimServer, channel: str, key: str) -> int:
    """How many connections the simulator's OKX venue has on ``(channel, key)``."""
    held = sim.okx.subs.get((channel, key))
    return len(held.conns) if held is not None else 0


@dataclass
class Watcher:
    """A ccxt.pro ``watch_*`` loop in a task: every result it returns is kept."""

    coro: Callable[[], Any]
    results: list[Any] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            self.results.append(await self.coro())

    async def __aenter__(self) -> Watcher:
        self._task = asyncio.create_task(self._run(), name="witness-ccxt-watch")
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        if self._task.done() and not self._task.cancelled() and self._task.exception() is not None:
            raise self._task.exception()  # type: ignore[misc]
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
