"""Helpers for the ccxt witness tests: a hand-moved simulator clock, ccxt pointed at the simulator,
our adapter fed through the real RestClient and a plain ``websockets`` connection.

Nothing here interprets a number: each side parses with its own code, and the tests compare.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import ccxt.async_support as ccxt_async
import ccxt.pro as ccxt_pro
import websockets
from websockets.asyncio.client import ClientConnection

from streamer.exchanges.base import RestCall, Stream
from streamer.exchanges.binance import BinanceAdapter
from streamer.model import Event
from streamer.sim import SimServer
from streamer.transport.rest import RestClient, VenueLimits
from streamer.transport.ws import wall_ms
from tests.conftest import eventually

START_MS = 1_767_229_200_000
"""2026-01-01 01:00:00 UTC: a 4 h symbol's next funding is 04:00, an 8 h symbol's 08:00."""
STEP_MS = 100
"""The simulator's market grid (``SimServer(step_ms=...)`` default)."""
DRIVER_SPEED = 100.0
"""Only sets how often the sim driver wakes (every 2 ms); the hand clock decides sim time."""
BINANCE_LIMITS = VenueLimits(
    capacity=2400, refill_per_s=40, used_weight_header="X-MBX-USED-WEIGHT-1M", used_weight_limit=2400
)


class HandClock:
    """A simulator clock (ms since epoch) that moves only when a test moves it.

    While it stands still the market does not change, so a REST read by ccxt and one by us a few
    milliseconds apart see the same state, and ``sim.market.state()`` is that state.
    """

    def __init__(self, start_ms: int = START_MS) -> None:
        self.now_ms = start_ms

    def __call__(self) -> int:
        return self.now_ms


async def move_to(sim: SimServer, clock: HandClock, target_ms: int) -> None:
    """Set the clock to ``target_ms`` (a multiple of the grid) and wait until the market is there."""
    assert target_ms % STEP_MS == 0, target_ms
    clock.now_ms = max(clock.now_ms, target_ms)
    await eventually(lambda: sim.market.now_ms >= target_ms, within_s=10)


async def walk(sim: SimServer, clock: HandClock, to_ms: int, every_ms: int = 1000) -> None:
    """Move the clock in ``every_ms`` steps up to ``to_ms``, letting frames flow between steps."""
    t = clock.now_ms
    while t < to_ms:
        t = min(to_ms, t + every_ms)
        await move_to(sim, clock, t)
        await asyncio.sleep(0.005)


@contextlib.asynccontextmanager
async def hand_sim(
    seed: int, scenario: Any = None, start_ms: int = START_MS
) -> AsyncIterator[tuple[SimServer, HandClock]]:
    """A simulator on 127.0.0.1:0 whose time stands still at ``start_ms`` until moved."""
    clock = HandClock(start_ms)
    sim = SimServer(seed=seed, scenario=scenario, speed=DRIVER_SPEED, clock=clock)
    await sim.start()
    try:
        yield sim, clock
    finally:
        await sim.stop()


def point_at_sim(exchange: Any, urls: dict[str, str]) -> Any:
    """Point a ccxt binance instance at the simulator: the keys ccxt 4.5.90 reads for public
    USDⓈ-M/COIN-M REST (``fapiPublic``, ``fapiData``, ``dapiPublic``, ``dapiData``; V2/V3 too, unused
    here) and the linear/inverse stream roots. ccxt itself rewrites a linear root ending in ``/ws`` to
    ``<root>/market/ws`` for markPrice/forceOrder (``get_ws_url``), which the simulator serves.
    """
    um, cm = urls["binance_um_rest"], urls["binance_cm_rest"]
    api = exchange.urls["api"]
    api["fapiPublic"] = um + "/fapi/v1"
    api["fapiPublicV2"] = um + "/fapi/v2"
    api["fapiPublicV3"] = um + "/fapi/v3"
    api["fapiData"] = um + "/futures/data"
    api["dapiPublic"] = cm + "/dapi/v1"
    api["dapiData"] = cm + "/futures/data"
    if "ws" in api:  # ccxt.pro only
        api["ws"]["linear"] = urls["binance_um_ws_legacy"] + "/ws"
        api["ws"]["inverse"] = urls["binance_cm_ws"] + "/ws"
    exchange.options["fetchMarkets"] = {"types": ["linear", "inverse"]}  # the sim serves no spot
    return exchange


@contextlib.asynccontextmanager
async def ccxt_rest(urls: dict[str, str]) -> AsyncIterator[Any]:
    """``ccxt.async_support.binance`` on the simulator, markets loaded; closed on exit."""
    exchange = point_at_sim(ccxt_async.binance(), urls)
    try:
        await exchange.load_markets()
        yield exchange
    finally:
        await exchange.close()


@contextlib.asynccontextmanager
async def ccxt_ws(urls: dict[str, str]) -> AsyncIterator[Any]:
    """``ccxt.pro.binance`` on the simulator, markets loaded; closed on exit."""
    exchange = point_at_sim(ccxt_pro.binance(), urls)
    try:
        await exchange.load_markets()
        yield exchange
    finally:
        await exchange.close()


@dataclass
class Ours:
    """Our side: the Binance adapter fed by the real RestClient, instruments loaded as the daemon does."""

    urls: dict[str, str]
    rest: RestClient
    adapter: BinanceAdapter = field(default_factory=BinanceAdapter)

    def url(self, call: RestCall) -> str:
        base = self.urls["binance_cm_rest"] if call.market == "cm" else self.urls["binance_um_rest"]
        return base + call.path

    async def call(self, call: RestCall) -> list[Event]:
        body, recv_ms = await self.rest.get_json("binance", self.url(call), call.params, weight=call.weight)
        return self.adapter.parse_rest(call.endpoint, body, recv_ms)

    async def load_instruments(self) -> None:
        for call in self.adapter.rest_instruments():
            await self.call(call)


@contextlib.asynccontextmanager
async def ours(urls: dict[str, str]) -> AsyncIterator[Ours]:
    async with RestClient({"binance": BINANCE_LIMITS}) as rest:
        side = Ours(urls, rest)
        await side.load_instruments()
        yield side


class FrameTap:
    """A plain ``websockets`` connection to the simulator: subscribe with the adapter's own frames,
    feed every frame received to ``BinanceAdapter.parse``, keep the frames and the events."""

    def __init__(self, adapter: BinanceAdapter, url: str, streams: list[Stream]) -> None:
        self.adapter = adapter
        self.url = url
        self.streams = streams
        self.frames: list[str] = []
        self.events: list[Event] = []
        self.acks = 0
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> FrameTap:
        self._ws = await websockets.connect(self.url, max_size=None)
        requests = self.adapter.subscribe(self.streams)
        for frame in requests:
            await self._ws.send(frame)
        self._reader = asyncio.create_task(self._read(), name="witness-frame-tap")
        await eventually(lambda: self.acks >= len(requests), within_s=5)
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
            head = json.loads(text)
            if isinstance(head, dict) and "result" in head and "id" in head:
                self.acks += 1
                continue
            self.frames.append(text)
            self.events.extend(events)

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


def subscribers(sim: SimServer, product: str, stream: str) -> int:
    """How many connections the simulator's Binance venue has on ``stream`` (``um``/``cm``)."""
    prod = sim.binance.um if product == "um" else sim.binance.cm
    return len(prod.subs.get(stream, ()))
