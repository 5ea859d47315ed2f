"""The simulator's server: one aiohttp app on 127.0.0.1 hosting every venue's WS + REST; returns base URLs.

``SimServer`` owns a ``Market`` (the book of record), a ``FaultPlan`` and the venue modules
(``venues/``). One background task drives them: every market step it advances the market to the
clock's time and lets each venue queue what is due. Each WebSocket connection has its own writer
task, so a slow client never delays another.

Time: the market runs on sim time, ms since epoch, from an injectable ``clock``. By default that
is the wall clock running ``speed`` times faster from ``start_ms`` (default: now); tests use a
high ``speed`` so that 3-second mark-price cadences and 10-second scenarios take milliseconds.
Socket-level times (ping interval, pong timeout, connection lifetime: ``BinanceConfig``; idle
cuts: ``BybitConfig``, ``OkxConfig``) are wall-clock seconds.

Venues: Binance USDⓈ-M and COIN-M (``venues/binance.py``), Bybit v5 (``venues/bybit.py``) and
OKX v5 (``venues/okx.py``) and Deribit v2 (``venues/deribit.py``) and BitMEX (``venues/bitmex.py``), each
under its own prefix (``/binance/um``, ``/binance/cm``, ``/bybit``, ``/okx``, ``/deribit``, ``/bitmex``) with
the exchange's own paths below it.

``main(argv)`` is ``streamer sim``: it prints ``name url`` lines and serves until Ctrl-C or
SIGTERM, then exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self, TextIO

from aiohttp import web

from streamer.sim.faults import FaultPlan
from streamer.sim.market import SCENARIOS, Clock, Market, Scenario
from streamer.sim.venues import Venue
from streamer.sim.venues.binance import BinanceConfig, BinanceVenue
from streamer.sim.venues.bitmex import BitmexConfig, BitmexVenue
from streamer.sim.venues.bybit import BybitConfig, BybitVenue
from streamer.sim.venues.deribit import DeribitConfig, DeribitVenue
from streamer.sim.venues.okx import OkxConfig, OkxVenue

__all__ = ["ScaledClock", "SimServer", "ccxt_api_urls", "main", "serve"]

log = logging.getLogger(__name__)


class ScaledClock:
    """Wall time that runs ``speed`` times faster, starting at ``start_ms`` (ms since epoch)."""

    def __init__(
        self,
        speed: float = 1.0,
        start_ms: int | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be positive, got {speed}")
        self.speed = speed
        self.start_ms = int(time.time() * 1000) if start_ms is None else start_ms
        self._monotonic = monotonic
        self._mono0 = monotonic()

    def __call__(self) -> int:
        return self.start_ms + int((self._monotonic() - self._mono0) * 1000 * self.speed)


class SimServer:
    """Loopback exchange simulator. Use ``async with SimServer(...) as sim:`` or start()/stop().

    Args:
        seed: makes the market reproducible.
        scenario: a name from ``streamer.sim.market.SCENARIOS`` or a ``Scenario`` (``None``: calm).
        host, port: where to listen; port 0 picks a free port (read ``urls`` after ``start``).
        speed: sim-time speed-up of the default clock.
        start_ms: sim start time (default: now), e.g. just before a funding settlement.
        clock: replaces the default clock entirely (ms since epoch).
        step_ms: market grid step; also how often the driver wakes (in sim time).
        binance: documented Binance limits and timers (``BinanceConfig``).
        bybit: documented Bybit limits and timers (``BybitConfig``).
        okx: documented OKX limits, timers and cadences (``OkxConfig``).
        deribit: Deribit heartbeat rules and trade flow (``DeribitConfig``).
        bitmex: BitMEX cadences and limits (``BitmexConfig``).

    Attributes ``market`` and ``faults`` are live; ``urls`` is filled by ``start``. Its keys:
    ``binance_um_rest``, ``binance_um_ws``, ``binance_um_ws_public``, ``binance_um_ws_legacy``,
    ``binance_cm_rest``, ``binance_cm_ws``; ``bybit_rest``, ``bybit_ws`` (the base of the three
    public endpoints), ``bybit_ws_linear``, ``bybit_ws_inverse``, ``bybit_ws_option``;
    ``okx_rest``, ``okx_ws`` (the ``/ws/v5`` base), ``okx_ws_public``; ``deribit_rest`` (the base of
    ``/api/v2/public/<method>``), ``deribit_ws`` (``/deribit/ws/api/v2``);
    ``bitmex_rest`` (the base of ``/api/v1/<path>``), ``bitmex_ws`` (``/bitmex/realtime``).
    """

    def __init__(
        self,
        seed: int = 0,
        scenario: str | Scenario | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        speed: float = 1.0,
        start_ms: int | None = None,
        clock: Clock | None = None,
        step_ms: int = 100,
        binance: BinanceConfig | None = None,
        bybit: BybitConfig | None = None,
        okx: OkxConfig | None = None,
        deribit: DeribitConfig | None = None,
        bitmex: BitmexConfig | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.speed = speed
        self._clock: Clock = clock if clock is not None else ScaledClock(speed, start_ms)
        self.market = Market(seed, self._clock(), scenario, step_ms=step_ms)
        self.faults = FaultPlan()
        self.binance = BinanceVenue(self.market, self.faults, binance)
        self.bybit = BybitVenue(self.market, self.faults, bybit)
        self.okx = OkxVenue(self.market, self.faults, okx)
        self.deribit = DeribitVenue(self.market, self.faults, deribit)
        self.bitmex = BitmexVenue(self.market, self.faults, bitmex)
        self.venues: list[Venue] = [self.binance, self.bybit, self.okx, self.deribit, self.bitmex]
        self.urls: dict[str, str] = {}
        self._runner: web.AppRunner | None = None
        self._driver: asyncio.Task[None] | None = None

    @property
    def clock(self) -> Clock:
        return self._clock

    async def start(self) -> dict[str, str]:
        """Listen, start the driver, and return the named base URLs (see ``urls``)."""
        if self._runner is not None:
            raise RuntimeError("SimServer already started")
        app = web.Application()
        app.router.add_get("/", self._index)
        for venue in self.venues:
            venue.install(app)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        host = f"[{self.host}]" if ":" in self.host else self.host
        http_root, ws_root = f"http://{host}:{self.port}", f"ws://{host}:{self.port}"
        self.urls = {}
        for venue in self.venues:
            self.urls.update(venue.urls(http_root, ws_root))
        self._drive_once()
        self._driver = asyncio.create_task(self._drive(), name="sim-driver")
        self._driver.add_done_callback(_report_driver_failure)
        return dict(self.urls)

    async def stop(self) -> None:
        """Stop the driver, close every WebSocket with a close frame, stop listening."""
        driver, self._driver = self._driver, None
        if driver is not None:
            driver.cancel()
            try:
                await driver  # a driver that died of a bug re-raises here
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise
        for venue in self.venues:
            await venue.close()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def _drive_once(self) -> None:
        """Bring the market up to the clock one grid step at a time, letting venues emit after each
        step, so that cadences and event times stay exact even when the driver wakes late."""
        market = self.market
        target = self._clock()
        while market.now_ms + market.step_ms <= target:
            now = market.step()
            for venue in self.venues:
                venue.on_tick(now)

    async def _drive(self) -> None:
        period = max(0.002, self.market.step_ms / 1000.0 / self.speed)
        while True:
            self._drive_once()
            await asyncio.sleep(period)

    async def _index(self, _request: web.Request) -> web.Response:
        return web.json_response(self.urls)


def ccxt_api_urls(urls: dict[str, str], exchange: str) -> dict[str, Any]:
    """Entries for a ccxt (or ccxt.pro) exchange's ``urls['api']`` that point it at the simulator.

    ``urls`` is ``SimServer.urls``; ``exchange`` is ``"bybit"`` or ``"okx"``. Use
    ``ex.urls["api"].update(ccxt_api_urls(sim.urls, "okx"))``. Only the host and prefix change: the
    paths below them are the exchange's own. Bybit's ``ws`` entry keeps public streams only.
    """
    if exchange == "bybit":
        rest = urls["bybit_rest"]
        public = {kind: f"{urls['bybit_ws']}/v5/public/{kind}" for kind in ("spot", "linear", "inverse", "option")}
        return {**{key: rest for key in ("spot", "futures", "v2", "public", "private")}, "ws": {"public": public}}
    if exchange == "okx":
        return {"rest": urls["okx_rest"], "ws": urls["okx_ws"]}
    if exchange == "deribit":
        return {"rest": urls["deribit_rest"], "ws": urls["deribit_ws"]}
    if exchange == "bitmex":  # ccxt requests urls['api'][public|private] + '/api/v1/<path>'
        return {"public": urls["bitmex_rest"], "private": urls["bitmex_rest"], "ws": urls["bitmex_ws"]}
    raise ValueError(f"no ccxt URL map for {exchange!r}; choose bybit or okx")


def _report_driver_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("simulator driver died; no more market data", exc_info=task.exception())


async def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    seed: int = 0,
    scenario: str | None = None,
    speed: float = 1.0,
    duration_s: float | None = None,
    binance: BinanceConfig | None = None,
    bybit: BybitConfig | None = None,
    okx: OkxConfig | None = None,
    out: TextIO = sys.stdout,
) -> int:
    """Run a simulator until SIGINT/SIGTERM (or ``duration_s``), printing ``name url`` lines first."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (ValueError, RuntimeError, NotImplementedError):  # not the main thread, or no signals here
            continue
        signals.append(sig)
    try:
        async with SimServer(seed, scenario, host, port, speed=speed, binance=binance, bybit=bybit, okx=okx) as sim:
            for name, url in sim.urls.items():
                out.write(f"{name} {url}\n")
            out.flush()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=duration_s)
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``streamer sim``: start the simulator, print its URLs, serve until Ctrl-C/SIGTERM; exit 0."""
    parser = argparse.ArgumentParser(
        prog="streamer sim",
        description="Loopback exchange simulator: Binance USDⓈ-M and COIN-M, Bybit v5 and OKX v5 (WebSocket + REST).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="listen address (default: %(default)s)")
    parser.add_argument("--port", type=int, default=0, help="listen port; 0 picks a free one (default)")
    parser.add_argument("--seed", type=int, default=0, help="market seed (default: %(default)s)")
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="calm", help="scripted scenario")
    parser.add_argument("--speed", type=float, default=1.0, help="sim-time speed-up (default: %(default)s)")
    parser.add_argument("--duration", type=float, default=None, help="exit after this many seconds")
    parser.add_argument("--ping-interval", type=float, default=180.0, help="WS ping interval, seconds")
    parser.add_argument("--max-lifetime", type=float, default=86_400.0, help="WS connection lifetime, seconds")
    args = parser.parse_args(argv)
    config = BinanceConfig(ping_interval_s=args.ping_interval, max_lifetime_s=args.max_lifetime)
    return asyncio.run(
        serve(
            host=args.host,
            port=args.port,
            seed=args.seed,
            scenario=args.scenario,
            speed=args.speed,
            duration_s=args.duration,
            binance=config,
        )
    )
