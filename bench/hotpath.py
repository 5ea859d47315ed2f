"""CPU cost per frame of the daemon's two hot paths, measured without a paced feed: ``python -m bench.hotpath``.

The latency section measures the daemon under load, but on a shared machine its wall-clock numbers are noisy.
This tool measures what decides capacity, CPU time per frame, on the latency section's own frame mix
(``bench.latency.make_frames``: Binance ``!forceOrder@arr`` and ``!markPrice@arr@1s``, Bybit
``allLiquidation`` and ``tickers`` deltas, OKX liquidations, funding and open interest):

* ``callback``: the daemon's own frame callbacks (``Daemon._session``'s ``on_frame``: ingest, parse, dedupe,
  bus, ``LiveState``, rules, stream touch), built exactly as the latency section builds the daemon, with
  instruments loaded from the simulator; each frame goes to the callback of its venue's session. Alerts
  are drained from the stdout consumer's queue (not written).
* ``ws``: ``WsSession``'s receive path alone: a child process serves the frames over a loopback WebSocket
  as fast as it can (aiohttp, no permessage-deflate, as the latency feeder) and the session hands them to a
  callback that only counts. CPU time of this process only (the server runs in the child).

It prints CPU µs per frame (``resource.getrusage``: user + system of this process) and the implied
single-core capacity. For a deterministic count, run it twice under callgrind with different ``--frames``
and divide the difference of the collected instructions by the difference of frames, e.g.::

    valgrind --tool=callgrind --callgrind-out-file=/dev/null python -m bench.hotpath callback --frames 20000
    valgrind --tool=callgrind --callgrind-out-file=/dev/null python -m bench.hotpath callback --frames 10000
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import resource
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from typing import Any

import msgspec

from bench.latency import BINANCE, BYBIT, OKX, VENUES, daemon_settings, make_frames

__all__ = ["callback_cost", "main", "ws_cost"]


def _cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


async def _callbacks(state_dir: str, rules: Any = None) -> tuple[Any, dict[int, Any]]:
    """A daemon built as the latency section builds it (``rules``: other ``RulesSettings``), instruments loaded;
    its on_frame per venue slot."""
    from streamer.daemon import Daemon
    from streamer.sim import SimServer

    start_ms = 1_760_000_000_000
    sim = SimServer(seed=7, clock=lambda: start_ms)
    await sim.start()
    try:
        urls = dict(sim.urls)
        for key in ("bench_binance_um_ws", "bench_binance_cm_ws", "bench_bybit_linear_ws", "bench_okx_ws"):
            urls[key] = "ws://127.0.0.1:9/unused"
        settings = daemon_settings(urls, state_dir)
        if rules is not None:
            settings = msgspec.structs.replace(settings, rules=rules)
        daemon = Daemon(settings, out=_NullOut())
        for venue in daemon.venues.values():
            await daemon.load_instruments(venue)
        await daemon.rest.close()  # REST was for the instrument lists only
    finally:
        await sim.stop()
    daemon.plan()
    slots = {"binance": BINANCE, "bybit": BYBIT, "okx": OKX}
    by_slot: dict[int, Any] = {}
    for plan, session in daemon.sessions:
        slot = slots.get(plan.exchange)
        if slot is None or (plan.exchange == "binance" and plan.market != "um"):
            continue
        if plan.exchange == "bybit" and plan.market != "linear":
            continue
        by_slot.setdefault(slot, session._on_frame)  # the callback the daemon wired, as the session calls it
    missing = [VENUES[s] for s in range(len(VENUES)) if s not in by_slot]
    if missing:
        raise RuntimeError(f"bench.hotpath: no WebSocket session planned for {missing}")
    return daemon, by_slot


class _NullOut:
    def write(self, data: bytes) -> int:
        return len(data)

    def flush(self) -> None:
        return None


def callback_cost(n: int) -> dict[str, Any]:
    """Feed ``n`` frames of the latency mix to the daemon's frame callbacks; CPU time and counts."""
    t0_ms = 1_760_000_000_000 + 3_600_000
    fs = make_frames(n, t0_ms)
    with tempfile.TemporaryDirectory(prefix="streamer-hotpath-") as state_dir:
        daemon, by_slot = asyncio.run(_callbacks(state_dir))
        calls = [by_slot[v] for v in fs.venue]
        consumer = daemon.alert_consumer
        alerts = 0
        c0 = _cpu_s()
        for i, (call, frame) in enumerate(zip(calls, fs.frames, strict=True)):
            call(frame, t0_ms + i)
            if consumer.qsize:
                while consumer.get_nowait() is not None:
                    alerts += 1
        cpu = _cpu_s() - c0
        published = daemon.bus.stats()["published"]
    return {"frames": n, "cpu_s": cpu, "events_published": published, "alerts": alerts}


# --------------------------------------------------------------------------- ws receive path


async def _serve(conn: Connection, n: int, rate: float, deflate: bool) -> None:
    from aiohttp import WSMsgType, web

    fs = make_frames(n, 1_760_003_600_000)
    done = asyncio.Event()

    async def serve(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True, max_msg_size=0, compress=deflate)
        await ws.prepare(request)
        send = ws.send_frame
        if rate:  # paced as the latency feeder paces: every ~1 ms tick sends every frame due by then
            clock = time.perf_counter
            t0 = clock()
            i = 0
            while i < n:
                due = min(n, int((clock() - t0) * rate) + 1)
                while i < due:
                    await send(fs.frames[i], WSMsgType.TEXT)
                    i += 1
                await asyncio.sleep(0.001)
        else:
            for frame in fs.frames:
                await send(frame, WSMsgType.TEXT)
        async for _msg in ws:  # until the client closes
            pass
        done.set()
        return ws

    app = web.Application()
    app.router.add_get("/", serve)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    conn.send(runner.addresses[0][1])
    try:
        async with asyncio.timeout(600):
            await done.wait()
    finally:
        await runner.cleanup()


def _server_main(conn: Connection, n: int, rate: float, deflate: bool) -> None:
    asyncio.run(_serve(conn, n, rate, deflate))


async def _receive(port: int, n: int) -> float:
    from streamer.transport.ws import WsSession

    got = 0
    c0 = 0.0
    finished = asyncio.Event()

    def on_frame(frame: str | bytes, recv_ms: int) -> None:
        nonlocal got, c0
        got += 1
        if got == 1:
            c0 = _cpu_s()
        elif got == n:
            finished.set()

    session = WsSession(name="hotpath", url=f"ws://127.0.0.1:{port}/", on_frame=on_frame, text_as_bytes=True,
                        ws_ping_interval_s=None)
    task = asyncio.create_task(session.run(), name="ws:hotpath")
    try:
        async with asyncio.timeout(600):
            await finished.wait()
        return _cpu_s() - c0
    finally:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass


def ws_cost(n: int, rate: float = 0.0, deflate: bool = False) -> dict[str, Any]:
    """Receive ``n`` frames of the latency mix through ``WsSession`` from a child-process server, as fast as it
    can send (``rate`` 0) or paced at ``rate`` frames/s in ~1 ms ticks; ``deflate``: the server accepts the
    session's permessage-deflate offer (the latency feeder declines it)."""
    ctx = mp.get_context("spawn")
    here, there = ctx.Pipe()
    server = ctx.Process(target=_server_main, args=(there, n, rate, deflate), name="hotpath-server", daemon=True)
    server.start()
    try:
        if not here.poll(60):
            raise TimeoutError("bench.hotpath: the WebSocket server did not start within 60 s")
        port = here.recv()
        cpu = asyncio.run(_receive(port, n))
    finally:
        server.join(10)
        if server.is_alive():
            server.terminate()
            server.join(5)
    return {"frames": n - 1, "cpu_s": cpu}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.hotpath", description=__doc__.splitlines()[0])
    p.add_argument("part", nargs="?", default="both", choices=("callback", "ws", "both"))
    p.add_argument("--frames", type=int, default=100_000)
    p.add_argument("--rate", type=float, default=0.0, help="ws: pace the server at this many frames/s (0: flat out)")
    p.add_argument("--deflate", action="store_true", help="ws: the server accepts permessage-deflate")
    args = p.parse_args(argv)
    parts = ("callback", "ws") if args.part == "both" else (args.part,)
    total_us = 0.0
    for part in parts:
        t = time.perf_counter()
        r = callback_cost(args.frames) if part == "callback" else ws_cost(args.frames, args.rate, args.deflate)
        us = r["cpu_s"] / r["frames"] * 1e6
        total_us += us
        extra = (f"; {r['events_published']:,} events, {r['alerts']} alert lines" if part == "callback" else "")
        print(f"{part:8s} {us:6.2f} µs CPU/frame over {r['frames']:,} frames "
              f"({r['cpu_s']:.2f} s CPU, {time.perf_counter() - t:.1f} s wall{extra})")
    if len(parts) == 2:
        print(f"total    {total_us:6.2f} µs CPU/frame → ~{1e6 / total_us:,.0f} frames/s on one core")
    return 0


if __name__ == "__main__":
    sys.exit(main())
