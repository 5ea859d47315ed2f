"""Latency: the real daemon against a loopback WebSocket feed at a fixed offered rate; frame→bus and frame→alert.

Two processes per offered rate, pinned to different cores (``os.sched_setaffinity``) so that they never
share an event loop or a CPU:

* **feeder**: a bench-owned aiohttp WebSocket server speaking just enough of each venue's protocol (Binance
  USDⓈ-M ``SUBSCRIBE`` → ``{"result":null,"id":N}`` on the combined ``/stream`` endpoint, Bybit v5
  ``op: subscribe``/``ping`` acks and pongs, OKX v5 per-arg ``event: subscribe`` acks and text ``pong``),
  plus the simulator (``streamer.sim.SimServer``, clock frozen) for the REST instrument lists the daemon
  loads at start. The simulator pushes market-driven frames on its own schedule and cannot be driven at a
  fixed frame rate, hence the bench server. It pre-generates every frame in the venues' real wire shapes
  (Binance combined-stream ``!forceOrder@arr`` and ``!markPrice@arr@1s`` with 5 symbols per frame; Bybit
  ``allLiquidation.<SYM>`` and ``tickers.<SYM>`` deltas after a snapshot; OKX ``liquidation-orders``,
  ``funding-rate`` and ``open-interest``), then paces them: every ~1 ms tick it sends every frame due by
  ``elapsed × rate`` (a batch per tick), and reports the rate actually achieved. It declines
  permessage-deflate (``compress=False``), so frames travel as plain text and neither side pays for zlib.
* **daemon**: ``streamer.daemon.Daemon`` built from ``Settings`` exactly as ``streamer run`` builds it
  (HTTP off), its WebSocket URLs pointed at the feeder and its REST URLs at the simulator.

**How send time reaches the daemon.** Frame number ``seq`` carries event time ``ts = T0 + seq`` ms in
every time field the adapters read (Binance ``o.T``/``E``, Bybit ``T``/``ts``, OKX ``ts``), with ``T0``
an hour after the simulator's frozen clock so that no REST event can collide and every bench event is the
newest the windows have seen. Event time therefore runs at ``rate`` ms per wall second: the windows and
rules do their normal work, just on a fast clock. The feeder stores ``time.time_ns()`` taken just before
each frame's ``send_frame`` in an array indexed by ``seq``; the daemon stores ``time.time_ns()`` per
``seq`` the first time an event with that ``ts`` reaches a handler added with ``daemon.bus.add_handler``
(it runs after LiveState and the rule engine, so frame→bus covers read, parse, dedupe, state and rules),
and the time each alert line reaches the sink (``out=`` is a file-like whose ``write()`` stamps
``time.time_ns()``). An alert's ``ts`` is its liquidation's ``ts``, so alert lines map back to frames too.
Both processes read the same host clock (CLOCK_REALTIME).

**Alerts.** Every ``LARGE_EVERY``-th liquidation frame is ≥ $1.5M, which fires ``large_liquidation``
(no hysteresis or cooldown: each one emits a ``firing`` and a ``resolved`` line at once, see
``streamer/alerts/rules.py``); frame→alert is measured on the ``firing`` line. The cascade floor is
raised so that only those alerts fire; funding stays under the extreme-funding threshold.

**Saturation.** A rate *holds* when the feeder achieved ≥ 98 % of it, the daemon kept up (frames
reached the bus at ≥ 98 % of the offered rate, measured from the first send to the last frame on the
bus, so a backlog drained after the feed stopped does not count as keeping up), and nothing was lost or
dropped (every frame reached the bus, every large liquidation reached the sink, no bus consumer dropped,
no frame error). The saturation rate is the highest rate of a short ascending ramp that holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing as mp
import os
import random
import sys
import tempfile
import time
from array import array
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from rich.table import Table

__all__ = ["run", "section", "table"]

# --------------------------------------------------------------------------- presets

FULL: dict[str, Any] = {
    "rates": (5_000, 20_000, 50_000),
    "ramp": (5_000, 7_500, 10_000, 12_500, 15_000, 17_500, 20_000, 25_000, 30_000, 40_000, 50_000, 65_000, 80_000),
    "duration_s": 4.0,
}
QUICK: dict[str, Any] = {"rates": (2_000,), "ramp": (2_000, 6_000), "duration_s": 1.5}
TARGET_RATE = 20_000
TARGET_P99_ALERT_MS = 2.0
HOLD_RATIO = 0.98

WARMUP_RATE = 2_000
WARMUP_S = 0.5
TICK_S = 0.001
LARGE_EVERY = 50  # every 50th liquidation frame is large enough to alert
LARGE_USD = 1_500_000.0
MARK_ARR_ENTRIES = 5
STARTUP_TIMEOUT_S = 30.0

# venue slots of the feeder's connections
BINANCE, BYBIT, OKX = 0, 1, 2
VENUES = ("binance", "bybit", "okx")

# Frame mix per 100 frames: (kind, venue, weight).
MIX: tuple[tuple[str, int, int], ...] = (
    ("binance_force_order", BINANCE, 30),
    ("binance_mark_price_arr", BINANCE, 4),
    ("bybit_all_liquidation", BYBIT, 12),
    ("bybit_tickers_delta", BYBIT, 22),
    ("okx_liquidation_orders", OKX, 12),
    ("okx_funding_rate", OKX, 10),
    ("okx_open_interest", OKX, 10),
)
LIQUIDATION_KINDS = frozenset({"binance_force_order", "bybit_all_liquidation", "okx_liquidation_orders"})

# Binance UM: resolved by the naming rule (metadata from the simulator covers the first three).
_BINANCE_BASES = (
    "BTC", "ETH", "SOL", "XRP", "DOGE", "BNB", "ADA", "AVAX", "LINK", "DOT", "TRX", "LTC", "BCH", "NEAR", "APT",
    "ARB", "OP", "SUI", "SEI", "TIA", "INJ", "WIF", "PEPE", "TRUMP", "WLD", "FIL", "ATOM", "ETC", "UNI", "AAVE",
    "MKR", "LDO", "RUNE", "ORDI", "ENA", "JUP", "PYTH", "STX", "IMX", "FET", "RNDR", "GALA", "SAND", "MANA", "AXS",
    "CRV", "DYDX", "GMX", "BLUR",
)
_PRICE = {"BTC": 84_500.0, "ETH": 2_710.0, "SOL": 141.3, "XRP": 2.11, "DOGE": 0.172, "BNB": 598.0}
BYBIT_SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")  # the simulator's linear USDT perpetuals
OKX_SWAPS: tuple[tuple[str, str, float, bool], ...] = (  # instId, family, ctVal, inverse (simulator's SWAPs)
    ("BTC-USDT-SWAP", "BTC-USDT", 0.01, False),
    ("ETH-USDT-SWAP", "ETH-USDT", 0.1, False),
    ("SOL-USDT-SWAP", "SOL-USDT", 1.0, False),
    ("BTC-USD-SWAP", "BTC-USD", 100.0, True),
)


def _base_price(base: str, rng: random.Random) -> float:
    return _PRICE.get(base) or round(rng.uniform(0.05, 60.0), 4)


# --------------------------------------------------------------------------- frames


@dataclass
class FrameSet:
    """Pre-generated frames: ``frames[seq]`` goes to connection ``venue[seq]``; ``ts = t0_ms + seq``."""

    frames: list[bytes]
    venue: bytes
    large: list[int]  # seqs of the liquidations that must alert
    kinds: dict[str, int]


def make_frames(n: int, t0_ms: int, seed: int = 7) -> FrameSet:
    """``n`` frames in the venues' real wire shapes, the first ones Bybit ticker snapshots (deltas need them)."""
    rng = random.Random(seed)
    schedule = [kind for kind, _, w in MIX for _ in range(w)]
    rng.shuffle(schedule)
    venue_of = {kind: v for kind, v, _ in MIX}
    bn_syms = [(f"{b}USDT", _base_price(b, rng)) for b in _BINANCE_BASES]
    by_px = {"BTCUSDT": 84_500.0, "ETHUSDT": 2_710.0, "SOLUSDT": 141.3}
    ok_px = {"BTC-USDT-SWAP": 84_500.0, "ETH-USDT-SWAP": 2_710.0, "SOL-USDT-SWAP": 141.3, "BTC-USD-SWAP": 84_480.0}
    next_funding = (t0_ms // 28_800_000 + 1) * 28_800_000 + 28_800_000
    frames: list[bytes] = []
    venue = bytearray()
    large: list[int] = []
    kinds: dict[str, int] = {}
    liq_count = 0
    for seq, raw in enumerate(BYBIT_SYMBOLS):  # snapshots first
        ts = t0_ms + seq
        px = by_px[raw]
        frames.append((
            f'{{"topic":"tickers.{raw}","type":"snapshot","data":{{"symbol":"{raw}","tickDirection":"PlusTick",'
            f'"price24hPcnt":"0.012871","lastPrice":"{px:.2f}","prevPrice24h":"{px * 0.99:.2f}",'
            f'"highPrice24h":"{px * 1.01:.2f}","lowPrice24h":"{px * 0.98:.2f}","markPrice":"{px:.2f}",'
            f'"indexPrice":"{px:.2f}","openInterest":"104533.562","openInterestValue":"{104533.562 * px:.2f}",'
            f'"turnover24h":"5483177290.3521","volume24h":"65012.437","fundingIntervalHour":"8",'
            f'"fundingCap":"0.005","nextFundingTime":"{next_funding}","fundingRate":"0.0000632",'
            f'"bid1Price":"{px - 0.1:.2f}","bid1Size":"3.184","ask1Price":"{px:.2f}","ask1Size":"0.912"}},'
            f'"cs":{793092207231 + seq},"ts":{ts}}}'
        ).encode())
        venue.append(BYBIT)
        kinds["bybit_tickers_snapshot"] = kinds.get("bybit_tickers_snapshot", 0) + 1
    for seq in range(len(frames), n):
        ts = t0_ms + seq
        kind = schedule[seq % len(schedule)]
        is_large = False
        if kind in LIQUIDATION_KINDS:
            liq_count += 1
            is_large = liq_count % LARGE_EVERY == 0
        drift = 1.0 + rng.uniform(-0.002, 0.002)
        if kind == "binance_force_order":
            sym, px = bn_syms[min(int(rng.paretovariate(1.2)) - 1, len(bn_syms) - 1)]
            px *= drift
            usd = LARGE_USD if is_large else rng.uniform(500.0, 40_000.0)
            q = usd / px
            side = "SELL" if seq & 1 else "BUY"
            frame = (
                f'{{"stream":"!forceOrder@arr","data":{{"e":"forceOrder","E":{ts},"o":{{"s":"{sym}","S":"{side}",'
                f'"o":"LIMIT","f":"IOC","q":"{q:.3f}","p":"{px * 0.998:.4f}","ap":"{px:.4f}","X":"FILLED",'
                f'"l":"{q:.3f}","z":"{q:.3f}","T":{ts},"ps":"{sym}","st":1}}}}}}'
            )
        elif kind == "binance_mark_price_arr":
            rows = []
            for sym, px in rng.sample(bn_syms, MARK_ARR_ENTRIES):
                p = px * drift
                rows.append(
                    f'{{"e":"markPriceUpdate","E":{ts},"s":"{sym}","p":"{p:.8f}","ap":"{p * 0.9999:.8f}",'
                    f'"P":"{p * 1.0001:.8f}","i":"{p * 1.0002:.8f}","r":"{rng.uniform(-0.0002, 0.0003):.8f}",'
                    f'"T":{next_funding},"st":1}}'
                )
            frame = f'{{"stream":"!markPrice@arr@1s","data":[{",".join(rows)}]}}'
        elif kind == "bybit_all_liquidation":
            raw = BYBIT_SYMBOLS[seq % len(BYBIT_SYMBOLS)]
            px = by_px[raw] * drift
            usd = LARGE_USD if is_large else rng.uniform(500.0, 40_000.0)
            side = "Buy" if seq & 1 else "Sell"
            frame = (
                f'{{"topic":"allLiquidation.{raw}","type":"snapshot","ts":{ts},'
                f'"data":[{{"T":{ts},"s":"{raw}","S":"{side}","v":"{usd / px:.3f}","p":"{px:.2f}"}}]}}'
            )
        elif kind == "bybit_tickers_delta":
            raw = BYBIT_SYMBOLS[seq % len(BYBIT_SYMBOLS)]
            px = by_px[raw] * drift
            funding = f',"fundingRate":"{rng.uniform(-0.0001, 0.0002):.7f}"' if seq % 4 == 0 else ""
            frame = (
                f'{{"topic":"tickers.{raw}","type":"delta","data":{{"symbol":"{raw}","lastPrice":"{px:.2f}",'
                f'"markPrice":"{px:.2f}","indexPrice":"{px * 1.0001:.2f}","bid1Price":"{px - 0.1:.2f}",'
                f'"bid1Size":"1.312","ask1Price":"{px:.2f}","ask1Size":"2.418"{funding}}},'
                f'"cs":{793092207231 + seq},"ts":{ts}}}'
            )
        elif kind == "okx_liquidation_orders":
            inst, family, ct_val, inverse = OKX_SWAPS[seq % len(OKX_SWAPS)]
            px = ok_px[inst] * drift
            usd = LARGE_USD if is_large else rng.uniform(500.0, 40_000.0)
            sz = usd / ct_val if inverse else usd / (px * ct_val)
            pos, side = ("long", "sell") if seq & 1 else ("short", "buy")
            frame = (
                f'{{"arg":{{"channel":"liquidation-orders","instType":"SWAP"}},"data":[{{"details":[{{"bkLoss":"0",'
                f'"bkPx":"{px:.1f}","ccy":"","posSide":"{pos}","side":"{side}","sz":"{sz:.0f}","ts":"{ts}"}}],'
                f'"instFamily":"{family}","instId":"{inst}","instType":"SWAP","uly":"{family}"}}]}}'
            )
        elif kind == "okx_funding_rate":
            inst = OKX_SWAPS[seq % len(OKX_SWAPS)][0]
            rate = rng.uniform(-0.0001, 0.0002)
            frame = (
                f'{{"arg":{{"channel":"funding-rate","instId":"{inst}"}},"data":[{{"formulaType":"withRate",'
                f'"fundingRate":"{rate:.16f}","fundingTime":"{next_funding}","impactValue":"20000.0000000000000000",'
                f'"instId":"{inst}","instType":"SWAP","interestRate":"0.0001000000000000","maxFundingRate":"0.00375",'
                f'"method":"current_period","minFundingRate":"-0.00375","nextFundingRate":"",'
                f'"nextFundingTime":"{next_funding + 28_800_000}","premium":"-0.0003162394871022",'
                f'"prevFundingTime":"{next_funding - 28_800_000}","settFundingRate":"0.0000512031841402",'
                f'"settState":"settled","ts":"{ts}"}}]}}'
            )
        else:  # okx_open_interest
            inst, _family, ct_val, inverse = OKX_SWAPS[seq % len(OKX_SWAPS)]
            px = ok_px[inst]
            oi = 2_712_543.21 * drift
            ccy = oi * ct_val / px if inverse else oi * ct_val
            usd = oi * ct_val if inverse else ccy * px
            frame = (
                f'{{"arg":{{"channel":"open-interest","instId":"{inst}"}},"data":[{{"instId":"{inst}",'
                f'"instType":"SWAP","oi":"{oi:.2f}","oiCcy":"{ccy:.4f}","oiUsd":"{usd:.4f}","ts":"{ts}"}}]}}'
            )
        if is_large:
            large.append(seq)
        frames.append(frame.encode())
        venue.append(venue_of[kind])
        kinds[kind] = kinds.get(kind, 0) + 1
    return FrameSet(frames, bytes(venue), large, kinds)


# --------------------------------------------------------------------------- pinning


def _pin(cpu: int | None) -> int | None:
    """Pin this process to ``cpu``; returns it, or None where that is not possible."""
    if cpu is None or not hasattr(os, "sched_setaffinity"):
        return None
    try:
        os.sched_setaffinity(0, {cpu})
    except OSError:
        return None
    return cpu


def _cpus() -> tuple[int | None, int | None]:
    """(daemon CPU, feeder CPU): two different cores where there are two."""
    n = os.cpu_count() or 1
    if n < 2 or not hasattr(os, "sched_setaffinity"):
        return None, None
    return 0, 1


# --------------------------------------------------------------------------- feeder process


class _Feed:
    """The bench WebSocket server: venue handshakes, then paced frames."""

    def __init__(self) -> None:
        self.conns: dict[int, Any] = {}
        self.subscribed: dict[str, int] = {}
        self.pings = 0
        self.changed = asyncio.Event()

    def handler(self, name: str, slot: int | None) -> Any:
        from aiohttp import WSMsgType, web

        async def serve(request: web.Request) -> web.WebSocketResponse:
            ws = web.WebSocketResponse(autoping=True, max_msg_size=0, compress=False)
            await ws.prepare(request)
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                for reply in self._replies(name, msg.data):
                    await ws.send_str(reply)
                if name not in self.subscribed and "subscribe" in msg.data.lower():
                    self.subscribed[name] = len(self.subscribed)
                    if slot is not None:
                        self.conns.setdefault(slot, ws)
                    self.changed.set()
            return ws

        return serve

    def _replies(self, name: str, text: str) -> list[str]:
        import orjson

        if name == "okx" and text == "ping":
            self.pings += 1
            return ["pong"]
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            return []
        if name.startswith("binance"):  # {"method":"SUBSCRIBE","params":[...],"id":N}
            return [orjson.dumps({"result": None, "id": msg.get("id")}).decode()]
        if name == "bybit":
            op = msg.get("op")
            if op == "ping":
                self.pings += 1
                return [orjson.dumps({"success": True, "ret_msg": "pong", "conn_id": "bench",
                                      "req_id": msg.get("req_id", ""), "op": "ping"}).decode()]
            return [orjson.dumps({"success": True, "ret_msg": "", "conn_id": "bench",
                                  "req_id": msg.get("req_id", ""), "op": op}).decode()]
        if name == "okx":
            head = {"id": msg["id"]} if "id" in msg else {}
            return [orjson.dumps({**head, "event": msg.get("op"), "arg": arg, "connId": "bench"}).decode()
                    for arg in msg.get("args", [])]
        return []

    async def pace(self, fs: FrameSet, send_ns: array[int], start: int, stop: int, rate: float) -> tuple[float, float]:
        """Send ``frames[start:stop]`` at ``rate`` frames/s (each ~1 ms tick sends every frame due)."""
        from aiohttp import WSMsgType

        text = WSMsgType.TEXT
        sends = [self.conns[slot].send_frame for slot in range(len(VENUES))]
        frames, venue = fs.frames, fs.venue
        clock, wall = time.perf_counter, time.time_ns
        n = stop - start
        i = start
        t_first = t_last = clock()
        t0 = t_first
        while i < stop:
            due = start + min(n, int((clock() - t0) * rate) + 1)
            while i < due:
                send_ns[i] = wall()
                await sends[venue[i]](frames[i], text)
                i += 1
            t_last = clock()
            if i < stop:
                await asyncio.sleep(TICK_S)
        return t_first, t_last


async def _feed(conn: Connection, rate: float, duration_s: float) -> None:
    from aiohttp import web

    from streamer.sim import SimServer

    start_ms = time.time_ns() // 1_000_000
    sim = SimServer(seed=7, clock=lambda: start_ms)  # frozen: REST (instruments) only, no market steps
    await sim.start()
    feed = _Feed()
    app = web.Application()
    routes = {
        "/binance/um/stream": ("binance_um", BINANCE),
        "/binance/cm/stream": ("binance_cm", None),
        "/bybit/v5/public/linear": ("bybit", BYBIT),
        "/okx/ws/v5/public": ("okx", OKX),
    }
    for path, (name, slot) in routes.items():
        app.router.add_get(path, feed.handler(name, slot))
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    ws_root = f"ws://127.0.0.1:{port}"
    urls = dict(sim.urls)
    urls.update({
        "bench_binance_um_ws": ws_root + "/binance/um/stream",
        "bench_binance_cm_ws": ws_root + "/binance/cm/stream",
        "bench_bybit_linear_ws": ws_root + "/bybit/v5/public/linear",
        "bench_okx_ws": ws_root + "/okx/ws/v5/public",
    })
    t0_ms = start_ms + 3_600_000
    conn.send({"urls": urls, "t0_ms": t0_ms})
    warm = int(WARMUP_RATE * WARMUP_S)
    measured = int(rate * duration_s)
    fs = make_frames(warm + measured, t0_ms)
    send_ns = array("q", bytes(8 * len(fs.frames)))
    error = None
    try:
        async with asyncio.timeout(STARTUP_TIMEOUT_S):
            while len(feed.conns) < len(VENUES) or len(feed.subscribed) < len(routes):
                feed.changed.clear()
                await feed.changed.wait()
        await asyncio.sleep(0.3)  # the rest of the subscribe requests and their acks
        await feed.pace(fs, send_ns, 0, warm, WARMUP_RATE)
        t_first, t_last = await feed.pace(fs, send_ns, warm, len(fs.frames), rate)
    except TimeoutError:
        error = f"the daemon did not connect and subscribe on every venue within {STARTUP_TIMEOUT_S:g} s " \
                f"(subscribed: {sorted(feed.subscribed)})"
        t_first = t_last = 0.0
    span = t_last - t_first
    conn.send({
        "error": error,
        "warm": warm,
        "frames": len(fs.frames),
        "send_ns": send_ns.tobytes(),
        "large": fs.large,
        "kinds": fs.kinds,
        "achieved_fps": (measured - 1) / span if span > 0 else None,
        "pings": feed.pings,
    })
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    loop.add_reader(conn.fileno(), done.set)  # the parent says "exit"
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(60):
            await done.wait()
    loop.remove_reader(conn.fileno())
    for ws in list(feed.conns.values()):
        with contextlib.suppress(Exception):  # the daemon may be gone already
            await ws.close()
    await runner.cleanup()
    await sim.stop()


def _feeder_main(conn: Connection, cpu: int | None, rate: float, duration_s: float) -> None:
    _pin(cpu)
    logging.basicConfig(level=logging.ERROR)
    asyncio.run(_feed(conn, rate, duration_s))


# --------------------------------------------------------------------------- daemon process


class _AlertTap:
    """The stdout sink's stream: stamps each alert line with ``time.time_ns()`` as it is written."""

    def __init__(self) -> None:
        self.lines: list[tuple[int, bytes]] = []

    def write(self, data: bytes) -> int:
        self.lines.append((time.time_ns(), bytes(data)))
        return len(data)

    def flush(self) -> None:
        return None


class _CountWarnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0
        self.samples: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        if len(self.samples) < 5:
            self.samples.append(f"{record.name}: {record.getMessage()}"[:300])


def daemon_settings(urls: dict[str, str], state_dir: str) -> Any:
    """The daemon's settings: WebSockets at the bench feeder, REST at the simulator, only large liquidations alert."""
    from streamer.config import (
        BinanceSettings,
        BybitSettings,
        CascadeSettings,
        ExchangesSettings,
        HttpSettings,
        LargeLiquidationSettings,
        OkxSettings,
        RulesSettings,
        Settings,
    )

    return Settings(
        http=HttpSettings(enabled=False),
        exchanges=ExchangesSettings(
            binance=BinanceSettings(
                symbols=["BTCUSDT", "ETHUSDT", "SOLUSDT"], all_market=True, channels=["liquidations", "funding"],
                um_ws_url=urls["bench_binance_um_ws"], cm_ws_url=urls["bench_binance_cm_ws"],
                um_rest_url=urls["binance_um_rest"], cm_rest_url=urls["binance_cm_rest"],
                open_interest_poll_s=0.0, instruments_refresh_s=3600.0,
            ),
            bybit=BybitSettings(
                enabled=True, symbols=list(BYBIT_SYMBOLS), channels=["liquidations", "funding", "ticker"],
                linear_ws_url=urls["bench_bybit_linear_ws"], inverse_ws_url="", option_ws_url="",
                rest_url=urls["bybit_rest"], instruments_refresh_s=3600.0,
            ),
            okx=OkxSettings(
                enabled=True, symbols=[s[0] for s in OKX_SWAPS], all_market=True,
                channels=["liquidations", "funding", "open_interest"], public_ws_url=urls["bench_okx_ws"],
                rest_url=urls["okx_rest"], instruments_refresh_s=3600.0,
            ),
        ),
        rules=RulesSettings(
            liquidation_cascade=CascadeSettings(min_usd=1e15),
            large_liquidation=LargeLiquidationSettings(min_usd=1_000_000.0),
        ),
        state_dir=state_dir,
        log_level="warning",
    )


async def _serve_daemon(conn: Connection, urls: dict[str, str], t0_ms: int) -> None:
    import msgspec

    from streamer.daemon import Daemon

    warnings = _CountWarnings()
    logging.getLogger().addHandler(warnings)
    logging.getLogger().setLevel(logging.WARNING)
    tap = _AlertTap()
    with tempfile.TemporaryDirectory(prefix="streamer-bench-") as state_dir:
        daemon = Daemon(daemon_settings(urls, state_dir), out=tap)  # type: ignore[arg-type]
        seen: dict[int, int] = {}
        wall = time.time_ns

        def on_bus(event: Any) -> None:
            ts = event.ts
            if ts not in seen:
                seen[ts] = wall()

        daemon.bus.add_handler(on_bus)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        asked = asyncio.Event()
        loop.add_reader(conn.fileno(), asked.set)
        task = asyncio.create_task(daemon.run(stop), name="bench:daemon")
        waiter = asyncio.create_task(asked.wait(), name="bench:stop")
        await asyncio.wait([task, waiter], return_when=asyncio.FIRST_COMPLETED)
        loop.remove_reader(conn.fileno())
        if task.done():  # the daemon ended on its own: a bug; report it
            waiter.cancel()
            exc = task.exception()
            conn.send({"error": f"daemon ended early: {exc!r}"})
            return
        conn.recv()
        # drain: wait until the bus has been quiet for 0.25 s
        last = -1
        deadline = time.monotonic() + 60.0
        while time.monotonic() < deadline:
            published = daemon.bus.stats()["published"]
            if published == last:
                break
            last = published
            await asyncio.sleep(0.25)
        snap = daemon.snapshot()
        sink = daemon.sink.stats()
        stop.set()
        await task
    keys = array("q")
    vals = array("q")
    for ts, ns in seen.items():
        if ts >= t0_ms:
            keys.append(ts - t0_ms)
            vals.append(ns)
    alerts = []
    for ns, line in tap.lines:
        a = msgspec.json.decode(line)
        alerts.append((a.get("rule"), a.get("status"), int(a.get("ts") or 0) - t0_ms, ns))
    consumers = snap["bus"]["consumers"]
    conn.send({
        "error": None,
        "bus_seq": keys.tobytes(),
        "bus_ns": vals.tobytes(),
        "alerts": alerts,
        "published": snap["bus"]["published"],
        "consumer_dropped": {name: c["dropped"] for name, c in consumers.items()},
        "sessions": {s["session"]: {"frames": s["frames"], "reconnects": s["reconnects"], "state": s["state"]}
                     for s in snap["sessions"]},
        "adapters": {a["exchange"]: {k: a.get(k) for k in ("frames", "events", "errors", "unmapped", "control")}
                     for a in snap["adapters"]},
        "sink": sink,
        "frame_errors_logged": daemon.frame_error_samples,
        "duplicates": daemon.dedupe.duplicates,
        "warnings": warnings.count,
        "warning_samples": warnings.samples,
    })


def _daemon_main(conn: Connection, cpu: int | None, urls: dict[str, str], t0_ms: int) -> None:
    _pin(cpu)
    asyncio.run(_serve_daemon(conn, urls, t0_ms))


# --------------------------------------------------------------------------- one rate


def _recv(conn: Connection, timeout_s: float, what: str) -> Any:
    if not conn.poll(timeout_s):
        raise TimeoutError(f"no {what} within {timeout_s:g} s")
    return conn.recv()


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return values[min(len(values) - 1, int(q * len(values)))]


def _dist(values: list[float]) -> dict[str, float | None]:
    values.sort()
    return {
        "n": len(values),
        "p50_ms": _pct(values, 0.50),
        "p99_ms": _pct(values, 0.99),
        "max_ms": values[-1] if values else None,
    }


def _error_count(adapters: dict[str, Any]) -> int:
    total = 0
    for a in adapters.values():
        errors = a.get("errors") or {}
        total += sum(errors.values()) if isinstance(errors, dict) else int(errors)
    return total


def run_rate(rate: int, duration_s: float) -> dict[str, Any]:
    """One offered rate: fresh feeder and daemon processes; returns the measurements (JSON-able)."""
    ctx = mp.get_context("spawn")
    daemon_cpu, feeder_cpu = _cpus()
    f_here, f_there = ctx.Pipe()
    d_here, d_there = ctx.Pipe()
    feeder = ctx.Process(target=_feeder_main, args=(f_there, feeder_cpu, float(rate), duration_s),
                         name="bench-feeder", daemon=True)
    feeder.start()
    daemon_proc = None
    try:
        hello = _recv(f_here, STARTUP_TIMEOUT_S, "feeder URLs")
        t0_ms = hello["t0_ms"]
        daemon_proc = ctx.Process(target=_daemon_main, args=(d_there, daemon_cpu, hello["urls"], t0_ms),
                                  name="bench-daemon", daemon=True)
        daemon_proc.start()
        fed = _recv(f_here, STARTUP_TIMEOUT_S + duration_s * 3 + 30, "feeder result")
        d_here.send("stop")
        seen = _recv(d_here, 90, "daemon result")
        f_here.send("exit")
    finally:
        for proc in (feeder, daemon_proc):
            if proc is None:
                continue
            proc.join(10)
            if proc.is_alive():
                proc.terminate()
                proc.join(5)
    if fed["error"] or seen["error"]:
        return {"offered_fps": rate, "error": fed["error"] or seen["error"], "holds": False}
    warm, total = fed["warm"], fed["frames"]
    send_ns = array("q")
    send_ns.frombytes(fed["send_ns"])
    bus_seq, bus_ns = array("q"), array("q")
    bus_seq.frombytes(seen["bus_seq"])
    bus_ns.frombytes(seen["bus_ns"])
    on_bus = dict(zip(bus_seq, bus_ns, strict=True))
    bus_ms = [(on_bus[s] - send_ns[s]) / 1e6 for s in range(warm, total) if s in on_bus]
    reached = sum(1 for s in range(total) if s in on_bus)
    last_bus = max((on_bus[s] for s in range(warm, total) if s in on_bus), default=0)
    first_send = send_ns[warm]
    kept_fps = (total - warm) / ((last_bus - first_send) / 1e9) if last_bus > first_send else None
    firing = {seq: ns for rule, status, seq, ns in seen["alerts"]
              if rule == "large_liquidation" and status == "firing" and 0 <= seq < total}
    large = [s for s in fed["large"] if s >= warm]
    alert_ms = [(firing[s] - send_ns[s]) / 1e6 for s in large if s in firing]
    missing_alerts = sum(1 for s in fed["large"] if s not in firing)
    other_alerts = sum(1 for rule, *_ in seen["alerts"] if rule != "large_liquidation")
    dropped = sum(seen["consumer_dropped"].values())
    errors = _error_count(seen["adapters"])
    reconnects = sum(s["reconnects"] for s in seen["sessions"].values())
    achieved = fed["achieved_fps"]
    lost = total - reached
    holds = bool(
        achieved is not None and achieved >= HOLD_RATIO * rate
        and kept_fps is not None and kept_fps >= HOLD_RATIO * rate
        and lost == 0 and missing_alerts == 0 and dropped == 0 and errors == 0 and reconnects == 0
    )
    return {
        "offered_fps": rate,
        "duration_s": duration_s,
        "achieved_fps": round(achieved, 1) if achieved else None,
        "kept_up_fps": round(kept_fps, 1) if kept_fps else None,
        "frames_sent": total,
        "warmup_frames": warm,
        "frames_on_bus": reached,
        "frames_lost": lost,
        "events_published": seen["published"],
        "alerts_expected": len(fed["large"]),
        "alerts_firing_seen": len(firing),
        "alerts_missing": missing_alerts,
        "other_alerts": other_alerts,
        "consumer_dropped": seen["consumer_dropped"],
        "adapter_errors": errors,
        "adapters": seen["adapters"],
        "sessions": seen["sessions"],
        "sink": seen["sink"],
        "duplicates_dropped": seen["duplicates"],
        "daemon_warnings": seen["warnings"],
        "daemon_warning_samples": seen["warning_samples"],
        "pings_answered": fed["pings"],
        "frame_mix": fed["kinds"],
        "frame_to_bus": _dist(bus_ms),
        "frame_to_alert": _dist(alert_ms),
        "holds": holds,
        "error": None,
    }


# --------------------------------------------------------------------------- the section


def run(quick: bool, progress: Any = None) -> dict[str, Any]:
    """Table rates, then a short ascending ramp to the saturation rate; JSON-able results."""
    preset = QUICK if quick else FULL
    say = progress or (lambda _m: None)
    rates: list[int] = sorted(set(preset["rates"]) | set(preset["ramp"]))
    results: dict[int, dict[str, Any]] = {}
    failed = False
    for rate in rates:
        if failed and rate not in preset["rates"]:
            continue
        say(f"latency: offering {rate:,} frames/s for {preset['duration_s']:g} s")
        res = run_rate(rate, preset["duration_s"])
        results[rate] = res
        if not res["holds"]:
            failed = True
    holding = [r for r, res in results.items() if res["holds"] and r in preset["ramp"]]
    saturation = max(holding) if holding else None
    first_fail = min((r for r, res in results.items() if not res["holds"] and r in preset["ramp"]), default=None)
    at_target = results.get(TARGET_RATE)
    p99 = at_target["frame_to_alert"]["p99_ms"] if at_target and not at_target.get("error") else None
    daemon_cpu, feeder_cpu = _cpus()
    return {
        "quick": quick,
        "config": {
            "duration_s": preset["duration_s"],
            "table_rates": list(preset["rates"]),
            "ramp": list(preset["ramp"]),
            "warmup": {"rate": WARMUP_RATE, "seconds": WARMUP_S},
            "mix_per_100_frames": {kind: w for kind, _, w in MIX},
            "large_liquidation_every": LARGE_EVERY,
            "mark_price_arr_entries": MARK_ARR_ENTRIES,
            "hold_ratio": HOLD_RATIO,
            "daemon_cpu": daemon_cpu,
            "feeder_cpu": feeder_cpu,
            "send_time_method": "ts = T0 + seq in every event-time field; feeder time_ns() before send_frame; "
                                "daemon time_ns() in a bus handler (after state and rules) and in the sink's write()",
        },
        "rates": [results[r] for r in sorted(results)],
        "saturation_fps": saturation,
        "first_failing_fps": first_fail,
        "target": {
            "rate_fps": TARGET_RATE,
            "p99_frame_to_alert_ms": p99,
            "limit_ms": TARGET_P99_ALERT_MS,
            "met": None if p99 is None else bool(p99 < TARGET_P99_ALERT_MS and at_target and at_target["holds"]),
        },
    }


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def _k(v: float | None) -> str:
    return "-" if v is None else f"{v / 1000:.1f}k"


def table(results: dict[str, Any]) -> Table:
    """One row per offered rate, then the saturation rate and the target."""
    t = Table(title="latency: daemon over loopback WebSocket (feeder and daemon in separate processes and cores)")
    for col in ("offered/s", "achieved/s", "kept up/s", "frames", "lost", "events", "alerts",
                "q drop", "errors", "bus p50", "bus p99", "bus max", "alert p50", "alert p99", "alert max", "holds"):
        t.add_column(col, justify="right")
    for r in results["rates"]:
        if r.get("error"):
            t.add_row(_k(r["offered_fps"]), *(["-"] * 14), f"[red]error: {r['error']}[/red]")
            continue
        b, a = r["frame_to_bus"], r["frame_to_alert"]
        t.add_row(
            _k(r["offered_fps"]), _k(r["achieved_fps"]), _k(r["kept_up_fps"]), f"{r['frames_sent']:,}",
            str(r["frames_lost"]), f"{r['events_published']:,}",
            f"{r['alerts_firing_seen']}/{r['alerts_expected']}", str(sum(r["consumer_dropped"].values())),
            str(r["adapter_errors"]), _ms(b["p50_ms"]), _ms(b["p99_ms"]), _ms(b["max_ms"]),
            _ms(a["p50_ms"]), _ms(a["p99_ms"]), _ms(a["max_ms"]),
            "[green]yes[/green]" if r["holds"] else "[red]no[/red]",
        )
    target = results["target"]
    sat = results["saturation_fps"]
    met = target["met"]
    verdict = "not measured" if met is None else ("[green]met[/green]" if met else "[red]missed[/red]")
    t.caption = (
        f"latencies in ms; saturation (highest ramp rate that holds): {_k(sat) if sat else 'none'}"
        + (f", first failing {_k(results['first_failing_fps'])}" if results["first_failing_fps"] else "")
        + f"; target p99 frame→alert < {target['limit_ms']:g} ms at {_k(target['rate_fps'])}/s: "
        + (f"{_ms(target['p99_frame_to_alert_ms'])} ms, " if target["p99_frame_to_alert_ms"] is not None else "")
        + verdict
    )
    return t


def section(args: Any, console: Any) -> dict[str, Any]:
    """``python -m bench latency``: run, print the table, return the JSON part."""
    results = run(bool(args.quick), progress=lambda m: console.print(f"  {m}", style="dim"))
    console.print(table(results))
    return results


def main(argv: list[str] | None = None) -> int:
    from bench.standalone import section_main

    return section_main("python -m bench.latency", __doc__.splitlines()[0],
                        "one small rate and a two-step ramp", section, argv)


if __name__ == "__main__":
    sys.exit(main())
