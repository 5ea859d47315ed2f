"""The chaos run: the whole daemon against the simulator (all live venues) under injected faults, measured.

Two phases, one report (``run_chaos``; ``python -m tests.chaos --duration 600`` prints it, the test asserts it):

1. **In-process daemon** for ``duration_s`` under random faults every ``STEP_S``: clean closes (1001, 1011),
   abrupt TCP resets (the client sees 1006), garbage frames, short stalls, rejected and hung handshakes
   (handshake timeouts), REST 429/418 (``Retry-After``), 5xx and slow answers; a signed webhook receiver down
   for the first half. Scripted episodes on top, each with its venue kept out of the random faults:

   - *measured stalls* (Binance UM/CM, Bybit linear/inverse): data withheld for ``2 x cadence + 1.5 s`` while the
     sessions are open; the time from the moment the simulator stopped sending to the session's stall
     detection is measured against 2 x the cadence of the session's slowest watched stream;
   - *a failure run* on Deribit: its connection dropped and the next ``FAIL_RUN`` handshakes rejected, so the
     reconnect backoff must visibly grow; with ``ready_grace_s`` set to ``READY_GRACE_S`` /readyz must answer 503
     naming the session while it is down past the grace, and 200 once it is back;
   - *slow metrics clients* for the middle of the run: ``SLOWLORIS`` connections that trickle request headers and
     ``SLOW_READERS`` clients reading /metrics 64 bytes at a time through a 4 KiB receive buffer, while an event
     loop lag probe and a normal /metrics client measure the pipeline.

2. **``kill -9`` and restart**: ``python -m streamer run --config`` as a subprocess against a fresh simulator
   (faults go on), webhook receiver down; after its first alert it is killed with SIGKILL, a second process
   starts on the same state directory and the receiver comes up. Every alert printed by either process must
   reach the receiver (0 lost) and no episode may be fired twice under different ids (0 duplicated).

Secrets: the webhook secret and the HTTP token are set in both phases; everything the processes emitted (stdout,
every log record, stderr, /metrics, /state/*, /readyz) is grepped for them.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import itertools
import json
import logging
import math
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
from aiohttp import web

from streamer.daemon import Daemon
from streamer.demo import demo_settings, demo_webhook
from streamer.model import Liquidation
from streamer.sim import SimServer
from streamer.sim.faults import GARBAGE_KINDS

STEP_S = 0.08
VENUES = ("binance.um", "binance.cm", "bybit", "okx", "deribit")
STALL_VENUES = ("binance.um", "bybit.linear", "binance.cm", "bybit.inverse")
SECRET = "whsec_" + base64.b64encode(b"chaos-run-secret-0123456789abcdef").decode()
TOKEN = "chaos-http-token-5f1d0c9e7a"
READY_GRACE_S = 5.0  # the run's readiness grace (the daemon's default is 30 s): short enough to see it trip
FAIL_RUN = 5  # consecutive rejected handshakes on Deribit
BACKOFF_FLOOR_S = 0.25  # the smallest delay of the default reconnect backoff (0.5 s base, equal jitter)
SLOWLORIS = 20
SLOW_READERS = 5
HANG_S = 11.0
GARBAGE_RATIO = 0.10  # the "10 % garbage frames": a spoiled copy after 10 % of the data frames
QS = (0.5, 0.99, 1.0)  # a hung handshake: longer than the session's 10 s open timeout


def finite(ev: Any) -> bool:
    """No NaN/inf in an event's float fields (huge numbers must not become inf prices)."""
    return all(math.isfinite(v) for v in msgspec.structs.astuple(ev) if isinstance(v, float))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int | None = None) -> float:
    """Resident set size of ``pid`` (default: this process), MB, from /proc."""
    with open(f"/proc/{pid or 'self'}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc status")


async def eventually(cond: Callable[[], object], within_s: float, every_s: float = 0.05, what: str = "") -> None:
    deadline = time.monotonic() + within_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"chaos run: {what or 'condition'} not met within {within_s} s")
        await asyncio.sleep(every_s)


class SecretScan:
    """Greps every text it is fed for the secrets; counts bytes scanned and hits by source."""

    def __init__(self, secrets: list[str]) -> None:
        self.secrets = [s for s in secrets if s]
        self.bytes = 0
        self.hits: Counter[str] = Counter()
        self.sources: Counter[str] = Counter()

    def feed(self, source: str, text: str | bytes) -> None:
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        self.bytes += len(text)
        self.sources[source] += len(text)
        for s in self.secrets:
            if s in text:
                self.hits[source] += text.count(s)


class LogCapture(logging.Handler):
    """Every log record of the in-process phase: formatted (with tracebacks) into the secret scan, and the
    WebSocket session records kept as (time, template, args) for the reconnect timings."""

    def __init__(self, scan: SecretScan) -> None:
        super().__init__(logging.DEBUG)
        self.scan = scan
        self.ws: list[tuple[float, str, tuple[Any, ...]]] = []
        self.records = 0
        self.errors: list[str] = []
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.records += 1
        text = self.format(record)
        self.scan.feed("logs", text)
        if record.name == "streamer.transport.ws" and isinstance(record.args, tuple):
            self.ws.append((record.created, str(record.msg), record.args))
        if record.levelno >= logging.ERROR and len(self.errors) < 50:
            self.errors.append(text[:500])


# ------------------------------------------------------------------------------------------ reconnect timings

_CONNECTED = "ws %s: connected to %s (attempt %d)"
_FAILED = "ws %s: connect failed: %s; retry in %.2fs"
_DISCONNECTED = "ws %s: disconnected after %.1fs and %d frames: %s; reconnect in %.2fs"


def cause_kind(cause: str) -> str:
    """What ended a connection or an attempt, from the session's log."""
    if "closed by server with code" in cause:
        return "close_" + cause.split("closed by server with code", 1)[1].split()[0]
    if "without a close frame" in cause or "no close frame" in cause:
        return "close_1006"
    if "stale" in cause or "no frame for" in cause:
        return "stall"
    if "timed out" in cause.lower() or cause.startswith("TimeoutError") or "timeout" in cause.lower():
        return "handshake_timeout"
    if "HTTP" in cause or "rejected" in cause:
        return "handshake_rejected"
    return "other"


def reconnect_timings(records: list[tuple[float, str, tuple[Any, ...]]]) -> dict[str, Any]:
    """Gaps between an attempt's end and the next attempt, backoff growth over consecutive failures, causes."""
    by_session: dict[str, list[tuple[float, str, float | None, str]]] = defaultdict(list)
    for t, msg, args in records:
        if msg == _CONNECTED:
            by_session[args[0]].append((t, "ok", None, ""))
        elif msg == _FAILED:
            by_session[args[0]].append((t, "fail", float(args[2]), str(args[1])))
        elif msg == _DISCONNECTED:
            by_session[args[0]].append((t, "disc", float(args[4]), str(args[3])))
    causes: Counter[str] = Counter()
    min_gap = float("inf")
    short_gaps = 0
    late: list[float] = []
    longest: tuple[str, list[float], list[float]] = ("", [], [])
    not_growing = 0
    max_delay = 0.0
    for name, events in by_session.items():
        run_delays: list[float] = []
        run_gaps: list[float] = []
        for i, (t, kind, delay, cause) in enumerate(events):
            if kind == "ok":
                run_delays, run_gaps = [], []
                continue
            causes[cause_kind(cause)] += 1
            assert delay is not None
            max_delay = max(max_delay, delay)
            if i + 1 < len(events):
                gap = events[i + 1][0] - t
                if delay > 0:  # 0 = a proactive (lifetime) reconnect, not a failure
                    min_gap = min(min_gap, gap)
                    short_gaps += gap < BACKOFF_FLOOR_S
                    late.append(gap - delay)
            if kind == "fail":
                if run_delays and delay < run_delays[-1] and run_delays[-1] < 30:
                    not_growing += 1
                run_delays.append(delay)
                if i + 1 < len(events):
                    run_gaps.append(events[i + 1][0] - t)
                if len(run_delays) > len(longest[1]):
                    longest = (name, list(run_delays), list(run_gaps))
    return {
        "causes": dict(sorted(causes.items())),
        "min_gap_s": round(min_gap, 3) if min_gap != float("inf") else None,
        "gaps_below_floor": short_gaps,
        "gap_minus_delay_min_s": round(min(late), 3) if late else None,
        "max_delay_s": round(max_delay, 2),
        "longest_failure_run": {"session": longest[0], "delays_s": [round(d, 2) for d in longest[1]],
                                "gaps_s": [round(g, 2) for g in longest[2]]},
        "failure_runs_not_growing": not_growing,
    }


def failure_run_delays(records: list[tuple[float, str, tuple[Any, ...]]], session: str,
                       since: float | None) -> dict[str, list[float]]:
    """The reconnect delays and actual gaps of ``session``'s consecutive failed attempts after ``since``."""
    delays: list[float] = []
    gaps: list[float] = []
    if since is None:
        return {"delays_s": delays, "gaps_s": gaps}
    mine = [(t, m, a) for t, m, a in records if t >= since and a and a[0] == session]
    for i, (t, msg, args) in enumerate(mine):
        if msg == _CONNECTED and delays:
            break
        if msg == _FAILED:
            delays.append(round(float(args[2]), 2))
            if i + 1 < len(mine):
                gaps.append(round(mine[i + 1][0] - t, 2))
    return {"delays_s": delays, "gaps_s": gaps}


# ------------------------------------------------------------------------------------------ phase 1 pieces


@dataclass
class StallProbe:
    venue: str
    start_ms: int
    until_mono: float
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)


def sessions_of(daemon: Daemon, venue: str) -> list[tuple[str, Any]]:
    """The daemon's sessions a simulator venue selector covers (``binance.um`` → ``binance-um-*``)."""
    prefix = venue.replace(".", "-") + "-" if "." in venue else venue + "-"
    return [(plan.name, s) for plan, s in daemon.sessions if plan.name.startswith(prefix)]


def watched_cadence(session: Any) -> float | None:
    cadences = [st.cadence_s for st in session.stats().streams.values() if st.cadence_s is not None]
    return max(cadences) if cadences else None


async def slowloris(host: str, port: int, stop: asyncio.Event, held: list[int]) -> None:
    """Open a connection and trickle a request header, one byte a second, never finishing it."""
    try:
        _reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        return
    held[0] += 1
    try:
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        await writer.drain()
        while not stop.is_set():
            writer.write(b"a")
            await writer.drain()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
    except OSError:
        pass
    finally:
        held[0] -= 1
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def slow_reader(host: str, port: int, stop: asyncio.Event, got: list[int]) -> None:
    """Fetch /metrics again and again through a 4 KiB receive buffer, reading 64 bytes every 50 ms."""
    while not stop.is_set():
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        try:
            await asyncio.get_running_loop().sock_connect(sock, (host, port))
            reader, writer = await asyncio.open_connection(sock=sock, limit=4096)
        except OSError:
            sock.close()
            return
        try:
            writer.write(f"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
                         "Connection: close\r\n\r\n".encode())
            await writer.drain()
            while not stop.is_set():
                chunk = await reader.read(64)
                if not chunk:
                    break
                got[0] += len(chunk)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.05)
        except OSError:
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def lag_probe(samples: list[tuple[float, float]], stop: asyncio.Event) -> None:
    """How late a 50 ms sleep wakes up: the event loop's lag, sampled all run."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        t0 = loop.time()
        await asyncio.sleep(0.05)
        samples.append((time.monotonic(), loop.time() - t0 - 0.05))


def pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def overlaps(a: str, b: str) -> bool:
    """Whether two simulator venue selectors share a venue (``bybit`` and ``bybit.linear`` do)."""
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


async def inject(sim: SimServer, rng: random.Random, counts: Counter[str], excluded: set[str],
                 hang_until: list[float]) -> None:
    """One random fault (the mix of the module docstring) on a venue not taken by a scripted episode."""
    faults = sim.faults
    venue = rng.choice(VENUES)
    exchange = venue.split(".")[0]
    roll = rng.random()
    if roll >= 0.84:  # REST faults
        status = rng.choice((429, 418, 500, 502, 503, None))
        if status is None:
            faults.rest_slow(rng.uniform(0.2, 1.5), count=2, venue=exchange)
            counts["rest_slow"] += 1
        else:
            faults.rest_error(status, count=rng.randint(1, 5), venue=exchange,
                              retry_after_s=1 if status in (429, 418) else None)
            counts[f"rest_{status}"] += 1
        return
    if any(overlaps(venue, e) or overlaps(exchange, e) for e in excluded):
        return
    if roll < 0.35:
        counts["drop_clean"] += await faults.drop_connections(venue, code=rng.choice((1001, 1011)))
    elif roll < 0.60:
        counts["drop_abrupt"] += await faults.drop_connections(venue, abrupt=True)
    elif roll < 0.72:
        counts["garbage"] += faults.send_garbage(rng.choice(GARBAGE_KINDS), venue)
    elif roll < 0.76:
        faults.stall(rng.uniform(0.5, 2.0), venue)
        counts["stall_short"] += 1
    elif faults.pending_handshakes(exchange):  # rejections pile up while a session backs off: one batch at a time
        counts["drop_clean"] += await faults.drop_connections(venue, code=1001)
    elif roll < 0.82:
        faults.reject_handshakes(rng.choice((503, 429, 500)), count=rng.randint(1, 3), venue=exchange,
                                 retry_after_s=1)
        counts["handshake_reject"] += 1
    elif time.monotonic() > hang_until[0]:  # one hung handshake at a time (each holds a session ~10 s)
        faults.hang_handshakes(HANG_S, count=1, venue=venue)
        counts["drop_for_hang"] += await faults.drop_connections(venue, code=1001)
        counts["handshake_hang"] += 1
        hang_until[0] = time.monotonic() + 15


async def fetch(http: aiohttp.ClientSession, url: str) -> tuple[int, str, float]:
    t0 = time.monotonic()
    async with http.get(url, headers={"Authorization": f"Bearer {TOKEN}"}) as resp:
        return resp.status, await resp.text(), time.monotonic() - t0


async def scan_http(http: aiohttp.ClientSession, base: str, scan: SecretScan, source: str) -> dict[str, int]:
    """GET /metrics, /readyz, /healthz, /state and every /state/* into the secret scan; their statuses."""
    statuses = {}
    status, text, _ = await fetch(http, base + "/state")
    scan.feed(source, text)
    paths = ["/metrics", "/readyz", "/healthz", "/state", *json.loads(text).get("endpoints", [])]
    for path in paths:
        status, text, _ = await fetch(http, base + path)
        statuses[path] = status
        scan.feed(source, text)
    return statuses


class Receiver:
    """The signed webhook receiver on a fixed port; down until ``start``."""

    def __init__(self, port: int) -> None:
        import standardwebhooks

        self.port = port
        self.verifier = standardwebhooks.Webhook(SECRET)
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.runner: web.AppRunner | None = None

    async def hook(self, request: web.Request) -> web.Response:
        body = await request.text()
        self.verifier.verify(body, dict(request.headers))
        self.received.append((request.headers["webhook-id"], json.loads(body)))
        return web.Response(status=204)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self.hook)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    def ids(self) -> set[str]:
        return {i for i, _ in self.received}


def episode_key(alert: dict[str, Any]) -> tuple[Any, ...]:
    """What makes two firings the same fact: the episode for windowed rules, the event for point rules."""
    side = (alert.get("details") or {}).get("side")
    if alert.get("window_s"):
        return (alert["rule"], alert.get("exchange"), alert.get("symbol"), side)
    return (alert["rule"], alert.get("exchange"), alert.get("symbol"), side, alert.get("ts"), alert.get("value"))


def delivery_figures(printed: list[dict[str, Any]], received: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """Alerts printed vs delivered: lost (printed, never received), duplicated (one fact, several ids)."""
    want = {f"{a['id']}:{a['status']}" for a in printed}
    got = {i for i, _ in received}
    # one episode = one id: a second id for the same key is a duplicate when it fired before the first
    # one's resolution (a later episode after resolve + cooldown is a new fact, not a duplicate)
    firing: dict[tuple[Any, ...], dict[str, int]] = defaultdict(dict)
    resolved: dict[str, int] = {}
    for _wid, body in received:
        if body.get("status") == "firing":
            firing[episode_key(body)].setdefault(body["id"], int(body.get("started_at") or body.get("ts") or 0))
        else:
            resolved.setdefault(body["id"], int(body.get("ts") or 0))
    duplicated = []
    for key, ids in firing.items():
        order = sorted(ids.items(), key=lambda kv: kv[1])
        for (first, _), (second, started) in itertools.pairwise(order):
            if started < resolved.get(first, 2**62):
                duplicated.append(f"{key}: {first} and {second}")
    return {
        "alerts_printed": len(want),
        "webhook_requests": len(received),
        "webhook_unique_ids": len(got),
        "redelivered_same_id": len(received) - len(got),
        "lost": sorted(want - got),
        "duplicated": duplicated,
    }


# ------------------------------------------------------------------------------------------ phase 1


async def phase_inprocess(duration_s: float, tmp: Path, scan: SecretScan, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    receiver = Receiver(free_port())
    counts: Counter[str] = Counter()
    capture = LogCapture(scan)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(capture)
    root.setLevel(logging.INFO)
    out = io.BytesIO()
    liq_keys: list[tuple[Any, ...]] = []
    nonfinite: list[str] = []
    sink = demo_webhook(f"http://127.0.0.1:{receiver.port}/hook", {"STREAMER_WEBHOOK_SECRET": SECRET})
    rss_start = rss_mb()
    rss_max = rss_start
    rss_trace: list[tuple[float, float]] = []
    max_depth: dict[str, int] = {}
    maxsize: dict[str, int] = {}
    probes: list[StallProbe] = []
    active_probe: StallProbe | None = None
    reserved: tuple[str, float] | None = None
    stall_idx = 0
    next_stall = 3.0
    excluded: set[str] = set()
    hang_until = [0.0]
    scripted_hang = False
    lag: list[tuple[float, float]] = []
    stop_aux = asyncio.Event()
    ready_samples = [0, 0]  # samples, not ready
    readyz: dict[str, Any] = {"down_503": None, "ok_after": None}
    fail_run: dict[str, Any] = {"started": None, "ended": None}
    slow: dict[str, Any] = {}
    async with SimServer(seed=11, scenario="demo", speed=2.0) as sim, aiohttp.ClientSession() as http:
        settings = demo_settings(sim.urls, "127.0.0.1", 0, str(tmp / "state1"), [sink])
        settings = msgspec.structs.replace(settings, http=msgspec.structs.replace(settings.http, token=TOKEN))
        daemon = Daemon(settings, out=out)
        daemon.ready_grace_s = READY_GRACE_S
        daemon.bus.add_handler(lambda ev: liq_keys.append((ev.exchange, ev.raw_symbol, ev.ts, ev.side, ev.price,
                                                           ev.qty)) if isinstance(ev, Liquidation) else None)
        daemon.bus.add_handler(lambda ev: nonfinite.append(type(ev).__name__) if not finite(ev) else None)
        sim.faults.garbage_ratio(GARBAGE_RATIO)
        stop = asyncio.Event()
        task = asyncio.create_task(daemon.run(stop))
        aux: list[asyncio.Task[Any]] = [asyncio.create_task(lag_probe(lag, stop_aux))]
        slow_stop = asyncio.Event()
        held, got = [0], [0]
        status = None
        try:
            await eventually(lambda: daemon.readiness()[0], within_s=30, what="first readiness")
            base = f"http://127.0.0.1:{daemon.api.port}"
            started = time.monotonic()
            published0 = daemon.bus.stats()["published"]
            while (elapsed := time.monotonic() - started) < duration_s:
                now = time.monotonic()
                # --- scripted: measured stalls
                if active_probe is None and reserved is None and next_stall <= elapsed < duration_s - 20:
                    reserved = (STALL_VENUES[stall_idx % len(STALL_VENUES)], elapsed)  # no random faults on it
                    excluded.add(reserved[0])
                    stall_idx += 1
                if reserved is not None:
                    venue = reserved[0]
                    group = sessions_of(daemon, venue)
                    healthy = group and all(
                        s.state == "open" and not any(st.stale for st in s.stats().streams.values())
                        and (s.stats().connected_since_ms or 0) < time.time() * 1000 - 1000 for _, s in group)
                    if healthy:
                        bound = max(2 * (watched_cadence(s) or 0) for _, s in group)
                        sim.faults.stall(bound + 1.5, venue)
                        active_probe = StallProbe(venue, int(time.time() * 1000), now + bound + 1.5)
                        for name, s in group:
                            st = s.stats()
                            active_probe.sessions[name] = {"stalls_before": st.stalls,
                                                           "bound_s": 2 * (watched_cadence(s) or 0),
                                                           "detected_ms": None, "quiet_s": None}
                        reserved = None
                    elif elapsed - reserved[1] > 30:  # never healthy (a long backoff): skip this slot
                        counts["stall_probe_skipped"] += 1
                        excluded.discard(venue)
                        reserved = None
                if active_probe is not None:
                    for name, s in sessions_of(daemon, active_probe.venue):
                        rec = active_probe.sessions.get(name)
                        st = s.stats()
                        if rec is not None and rec["detected_ms"] is None and st.stalls > rec["stalls_before"]:
                            rec["detected_ms"], rec["quiet_s"] = st.last_stall_ms, st.last_stall_quiet_s
                    if now > active_probe.until_mono + 0.3:
                        probes.append(active_probe)
                        excluded.discard(active_probe.venue)
                        active_probe = None
                        next_stall = elapsed + 2.0
                # --- scripted: Deribit failure run (backoff growth, readiness)
                if fail_run["started"] is None and elapsed >= duration_s * 0.1:
                    excluded.add("deribit")  # reserved: no random faults until it has been open a while
                    if all(s.state == "open" and (s.stats().connected_since_ms or 0) < time.time() * 1000 - 2000
                           for _, s in sessions_of(daemon, "deribit")):
                        sim.faults.reject_handshakes(503, count=FAIL_RUN, venue="deribit")
                        counts["drop_for_fail_run"] += await sim.faults.drop_connections("deribit", code=1001)
                        fail_run["started"] = time.time()
                if fail_run["started"] is not None and fail_run["ended"] is None:
                    ready, detail = daemon.readiness()
                    down = [d for d in detail["down"] if d.startswith("deribit")]
                    if down and readyz["down_503"] is None:
                        st, text, _ = await fetch(http, base + "/readyz")
                        readyz["down_503"] = {"status": st, "body": json.loads(text),
                                              "after_s": round(time.time() - fail_run["started"], 2)}
                    back = all(s.state == "open" and s.stats().connected_since_ms
                               for _, s in sessions_of(daemon, "deribit"))
                    if readyz["down_503"] is not None and back:
                        fail_run["ended"] = time.time()
                        excluded.discard("deribit")
                # --- scripted: one handshake timeout for sure (Bybit options reconnect fast)
                if not scripted_hang and elapsed >= duration_s * 0.2 and not sim.faults.pending_handshakes("bybit"):
                    sim.faults.hang_handshakes(HANG_S, count=1, venue="bybit.option")
                    counts["drop_for_hang"] += await sim.faults.drop_connections("bybit.option", code=1001)
                    counts["handshake_hang"] += 1
                    scripted_hang = True
                # --- scripted: slow metrics clients in the middle of the run
                if not slow and elapsed >= duration_s * 0.3:
                    slow["started"] = time.monotonic()
                    slow["published0"] = daemon.bus.stats()["published"]
                    aux += [asyncio.create_task(slowloris("127.0.0.1", daemon.api.port, slow_stop, held))
                            for _ in range(SLOWLORIS)]
                    aux += [asyncio.create_task(slow_reader("127.0.0.1", daemon.api.port, slow_stop, got))
                            for _ in range(SLOW_READERS)]
                if slow and "ended" not in slow:
                    if elapsed >= duration_s * 0.3 + 3 and "normal_fetch_s" not in slow:
                        slow["held_at_probe"] = held[0]
                        code, _text, took = await fetch(http, base + "/metrics")
                        slow["normal_fetch_s"], slow["normal_fetch_status"] = round(took, 3), code
                    if elapsed >= duration_s * 0.7:
                        slow["ended"] = time.monotonic()
                        slow["published1"] = daemon.bus.stats()["published"]
                        slow_stop.set()
                # --- random faults
                await inject(sim, rng, counts, excluded, hang_until)
                if elapsed > duration_s / 2 and receiver.runner is None:
                    await receiver.start()
                # --- samples
                for name, c in daemon.bus.stats()["consumers"].items():
                    max_depth[name] = max(max_depth.get(name, 0), c["depth"])
                    maxsize[name] = c["maxsize"]
                ready, detail = daemon.readiness()
                ready_samples[0] += 1
                ready_samples[1] += not ready
                rss_now = rss_mb()
                rss_max = max(rss_max, rss_now)
                rss_trace.append((elapsed, rss_now))
                if task.done():
                    raise AssertionError(f"the daemon stopped during the chaos run: {task!r}")
                await asyncio.sleep(STEP_S)
            published_total = daemon.bus.stats()["published"] - published0
            garbage = {k: v for k, v in sim.faults.stats.items() if k.startswith("ratio_") or k == "data_frames"}
            sim.faults.clear()
            excluded.clear()
            slow_stop.set()
            recovered_at = time.monotonic()
            await eventually(lambda: all(s.state == "open" for _, s in daemon.sessions), within_s=90,
                             what="every session open again after the faults stop")
            recovery_s = time.monotonic() - recovered_at
            if receiver.runner is None:
                await receiver.start()

            def delivered() -> bool:
                printed = [json.loads(x) for x in out.getvalue().splitlines() if x.strip()]
                return {f"{a['id']}:{a['status']}" for a in printed} <= receiver.ids()

            await eventually(delivered, within_s=30, every_s=0.2, what="every printed alert delivered")
            await eventually(lambda: daemon.readiness()[0], within_s=30, what="ready again after the faults stop")
            st_ok, text, _ = await fetch(http, base + "/readyz")
            readyz["ok_after"] = {"status": st_ok, "body": json.loads(text)}
            http_statuses = await scan_http(http, base, scan, "http_phase1")
        finally:
            stop.set()
            stop_aux.set()
            slow_stop.set()
            with contextlib.suppress(TimeoutError):
                status = await asyncio.wait_for(task, 20)
            for t in aux:
                t.cancel()
            await asyncio.gather(*aux, return_exceptions=True)
            await receiver.stop()
            root.removeHandler(capture)
            root.setLevel(old_level)
        snap = daemon.snapshot()
        sim_stats = dict(sim.faults.stats)
    scan.feed("stdout", out.getvalue())
    scan.feed("snapshot", json.dumps(snap, default=str))
    printed = [json.loads(x) for x in out.getvalue().splitlines() if x.strip()]
    rss_end = rss_mb()
    # stalls: every measured one, detected and how fast
    stall_rows = []
    for p in probes:
        for name, rec in p.sessions.items():
            det = rec["detected_ms"]
            stall_rows.append({"venue": p.venue, "session": name, "bound_s": rec["bound_s"],
                               "detected": det is not None,
                               "from_stall_start_s": None if det is None else round((det - p.start_ms) / 1000, 3),
                               "quiet_s": None if rec["quiet_s"] is None else round(rec["quiet_s"], 3)})
    lag_all = [v for _, v in lag]
    lag_slow = [v for t, v in lag if slow and slow["started"] <= t <= slow.get("ended", t)]
    slow_s = slow.get("ended", 0) - slow.get("started", 0)
    connects = {s["session"]: s["connects"] for s in snap["sessions"]}
    drops = counts["drop_clean"] + counts["drop_abrupt"] + counts["drop_for_hang"] + counts["drop_for_fail_run"]
    return {
        "exit_status": status,
        "duration_s": duration_s,
        "faults_injected": dict(sorted(counts.items())),
        "forced_disconnects": drops,
        "sim_fault_stats": dict(sorted(sim_stats.items())),
        "connects": connects,
        "stalls_detected": {s["session"]: s["stalls"] for s in snap["sessions"]},
        "reconnects": reconnect_timings(capture.ws),
        "recovery_after_faults_s": round(recovery_s, 2),
        "parse_errors": sum(sum(a["errors"].values()) for a in snap["adapters"]),
        "garbage_ratio": {"data_frames": garbage.get("data_frames", 0),
                          "spoiled": {k.removeprefix("ratio_"): v for k, v in sorted(garbage.items())
                                      if k != "data_frames"},
                          "share": round(sum(v for k, v in garbage.items() if k != "data_frames")
                                         / max(1, garbage.get("data_frames", 0)), 4)},
        "events_with_nonfinite_floats": len(nonfinite),
        "liquidations_on_bus": len(liq_keys),
        "liquidations_twice_on_bus": len(liq_keys) - len(set(liq_keys)),
        "liquidation_duplicates_dropped": daemon.dedupe.duplicates,
        "stall_probes": stall_rows,
        "deribit_failure_run": failure_run_delays(capture.ws, "deribit-public-0", fail_run["started"]),
        "readiness": {"grace_s": READY_GRACE_S, "samples": ready_samples[0], "not_ready_samples": ready_samples[1],
                      "fail_run_s": None if fail_run["ended"] is None or fail_run["started"] is None
                      else round(fail_run["ended"] - fail_run["started"], 2),
                      "readyz_while_down": readyz["down_503"], "readyz_after": readyz["ok_after"]},
        "slow_clients": {"slowloris": SLOWLORIS, "slow_readers": SLOW_READERS,
                         "held_at_probe": slow.get("held_at_probe"), "slow_reader_bytes": got[0],
                         "normal_metrics_fetch_s": slow.get("normal_fetch_s"),
                         "normal_metrics_status": slow.get("normal_fetch_status"),
                         "events_per_s_during": round((slow.get("published1", 0) - slow.get("published0", 0))
                                                      / slow_s, 1) if slow_s > 0 else None,
                         "events_per_s_whole_run": round(published_total / duration_s, 1),
                         "loop_lag_ms_p50_p99_max_during": [round(pct(lag_slow, q) * 1000, 1) for q in QS],
                         "loop_lag_ms_p50_p99_max_run": [round(pct(lag_all, q) * 1000, 1) for q in QS]},
        "memory": {"rss_mb_start": round(rss_start, 1), "rss_mb_max": round(rss_max, 1),
                   "rss_mb_end": round(rss_end, 1),
                   "rss_mb_at_25_50_75_100pct": [round(next((r for t, r in rss_trace if t >= q * duration_s),
                                                            rss_trace[-1][1]), 1) for q in (0.25, 0.5, 0.75, 0.999)],
                   "queue_max_depth": max_depth, "queue_maxsize": maxsize,
                   "queue_dropped": {n: c["dropped"] for n, c in snap["bus"]["consumers"].items()}},
        "alerts": delivery_figures(printed, receiver.received),
        "http_statuses": http_statuses,
        "error_logs": capture.errors[:10],
        "log_records": capture.records,
    }


# ------------------------------------------------------------------------------------------ phase 2: kill -9


def start_daemon(config: Path, out: Path, err: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "STREAMER_WEBHOOK_SECRET": SECRET, "STREAMER_HTTP_TOKEN": TOKEN}
    with open(out, "ab") as fo, open(err, "ab") as fe:
        return subprocess.Popen([sys.executable, "-m", "streamer", "run", "--config", str(config)],
                                env=env, stdout=fo, stderr=fe)


def alert_lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_bytes().splitlines() if x.strip()]


async def phase_kill9(tmp: Path, scan: SecretScan, seed: int, restart_s: float) -> dict[str, Any]:
    rng = random.Random(seed + 1)
    receiver = Receiver(free_port())
    http_port = free_port()
    counts: Counter[str] = Counter()
    out1, out2, err1, err2 = (tmp / n for n in ("run1.jsonl", "run2.jsonl", "run1.err", "run2.err"))
    result: dict[str, Any] = {}
    async with SimServer(seed=7, scenario="demo", speed=2.0) as sim, aiohttp.ClientSession() as http:
        sink = msgspec.structs.replace(demo_webhook(f"http://127.0.0.1:{receiver.port}/hook",
                                                    {"STREAMER_WEBHOOK_SECRET": SECRET}), secret="")
        settings = demo_settings(sim.urls, "127.0.0.1", http_port, str(tmp / "state2"), [sink])
        config = tmp / "streamer.json"  # JSON is YAML; the secrets come from the environment only
        config.write_bytes(msgspec.json.encode(settings))
        assert SECRET.encode() not in config.read_bytes()
        assert TOKEN.encode() not in config.read_bytes()
        base = f"http://127.0.0.1:{http_port}"
        sim.faults.garbage_ratio(GARBAGE_RATIO)
        first = start_daemon(config, out1, err1)
        second: subprocess.Popen[bytes] | None = None
        hang_until = [time.monotonic() + 1e9]  # no hung handshakes here: keep the phase short
        try:
            t0 = time.monotonic()
            while not any(a["status"] == "firing" for a in alert_lines(out1)):
                if time.monotonic() - t0 > 60:
                    raise AssertionError("kill -9 phase: the first daemon printed no alert within 60 s")
                if first.poll() is not None:
                    raise AssertionError(f"kill -9 phase: the first daemon exited with {first.returncode}")
                if time.monotonic() - t0 > 5:
                    await inject(sim, rng, counts, set(), hang_until)
                await asyncio.sleep(STEP_S)
            await asyncio.sleep(1.0)  # a little more happens (and is queued in the outbox) before the kill
            result["rss_mb_run1_at_kill"] = round(rss_mb(first.pid), 1)
            first.send_signal(signal.SIGKILL)
            first.wait(10)
            result["killed_after_s"] = round(time.monotonic() - t0, 1)
            result["run1_exit"] = first.returncode
            second = start_daemon(config, out2, err2)
            await receiver.start()
            t1 = time.monotonic()
            rss2: list[tuple[float, float]] = []
            while (since := time.monotonic() - t1) < restart_s:
                if not rss2 or since - rss2[-1][0] >= 1.0:
                    rss2.append((since, rss_mb(second.pid)))
                await inject(sim, rng, counts, set(), hang_until)
                if second.poll() is not None:
                    raise AssertionError(f"kill -9 phase: the restarted daemon exited with {second.returncode}")
                await asyncio.sleep(STEP_S)
            sim.faults.clear()
            result["restarted_ran_s"] = round(restart_s, 1)
            result["rss_mb_run2_at_0_25_50_75_100pct"] = [
                round(next((r for t, r in rss2 if t >= q * restart_s), rss2[-1][1]), 1)
                for q in (0, 0.25, 0.5, 0.75, 0.99)]

            def delivered() -> bool:
                want = {f"{a['id']}:{a['status']}" for a in alert_lines(out1) + alert_lines(out2)}
                return want <= receiver.ids()

            await eventually(delivered, within_s=60, every_s=0.2, what="every alert of both runs delivered")
            await asyncio.sleep(1.0)  # anything delivered twice arrives now
            result["http_statuses"] = await scan_http(http, base, scan, "http_run2")
            result["rss_mb_run2_end"] = round(rss_mb(second.pid), 1)
        finally:
            for proc in (first, second):
                if proc is not None and proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            if second is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    second.wait(20)
                result["run2_exit"] = second.returncode
            if first.poll() is None:
                first.kill()
            await receiver.stop()
    for path, source in ((out1, "stdout_run1"), (out2, "stdout_run2"), (err1, "stderr_run1"), (err2, "stderr_run2")):
        if path.exists():
            scan.feed(source, path.read_bytes())
    run1, run2 = alert_lines(out1), alert_lines(out2)
    fired1 = {a["id"] for a in run1 if a["status"] == "firing"}
    refired = sorted(a["id"] for a in run2 if a["status"] == "firing" and a["id"] in fired1)
    result.update({
        "faults_injected": dict(sorted(counts.items())),
        "alerts_run1": len(run1), "alerts_run2": len(run2),
        "refired_after_restart": refired,
        **delivery_figures(run1 + run2, receiver.received),
        "stderr_tracebacks": sum(p.read_bytes().count(b"Traceback") for p in (err1, err2) if p.exists()),
    })
    return result


# ------------------------------------------------------------------------------------------ the run


async def run_chaos(duration_s: float, tmp: Path, *, seed: int = 20261124) -> dict[str, Any]:
    """Both phases; returns the report (see the module docstring)."""
    scan = SecretScan([SECRET, SECRET.removeprefix("whsec_"), TOKEN])
    started = time.monotonic()
    report: dict[str, Any] = {"started_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())}
    report["inprocess"] = await phase_inprocess(duration_s, tmp, scan, seed)
    report["kill9"] = await phase_kill9(tmp, scan, seed, max(15.0, duration_s / 4))
    report["secrets"] = {"bytes_scanned": scan.bytes, "by_source": dict(scan.sources), "found": dict(scan.hits)}
    report["wall_s"] = round(time.monotonic() - started, 1)
    return report


def summary(report: dict[str, Any]) -> str:
    """The figures the issue names, one per line."""
    p1, k9 = report["inprocess"], report["kill9"]
    probes = p1["stall_probes"]
    worst = max(probes, key=lambda r: (r["from_stall_start_s"] or 1e9) / r["bound_s"], default=None)
    rc = p1["reconnects"]
    lines = [
        f"crashes: in-process exit {p1['exit_status']}, ERROR logs {len(p1['error_logs'])}; "
        f"kill -9 phase run1 {k9.get('run1_exit')} (SIGKILL), run2 exit {k9.get('run2_exit')}, "
        f"tracebacks {k9['stderr_tracebacks']}",
        f"forced disconnects: {p1['forced_disconnects']} ({p1['faults_injected']})",
        f"garbage: {p1['garbage_ratio']}, counted FrameErrors {p1['parse_errors']}, "
        f"events with NaN/inf {p1['events_with_nonfinite_floats']}",
        f"close causes seen by the sessions: {rc['causes']}",
        f"stalls measured: {len(probes)}, detected {sum(r['detected'] for r in probes)}; worst "
        + (f"{worst['from_stall_start_s']} s from stall start, {worst['quiet_s']} s quiet, bound 2x cadence "
           f"{worst['bound_s']} s ({worst['session']})" if worst else "n/a"),
        f"reconnect gaps: min {rc['min_gap_s']} s (floor {BACKOFF_FLOOR_S} s, below it {rc['gaps_below_floor']}), "
        f"longest failure run {rc['longest_failure_run']}, max delay {rc['max_delay_s']} s, "
        f"all open {p1['recovery_after_faults_s']} s after the faults stopped",
        f"readiness: {p1['readiness']}",
        f"slow clients: {p1['slow_clients']}",
        f"memory: {p1['memory']}; kill -9 phase RSS run1 {k9.get('rss_mb_run1_at_kill')} MB, "
        f"run2 {k9.get('rss_mb_run2_end')} MB",
        f"liquidations: {p1['liquidations_on_bus']} on the bus, {p1['liquidations_twice_on_bus']} twice, "
        f"{p1['liquidation_duplicates_dropped']} replays dropped by natural key",
        f"alerts in-process: {p1['alerts']}",
        f"alerts across kill -9: {({k: v for k, v in k9.items() if k not in ('http_statuses',)})}",
        f"secrets: {report['secrets']}",
    ]
    return "\n".join(lines)


STALL_SLACK_S = 0.25  # event-loop scheduling slack on a loaded machine for the stall bound (observed: < 15 ms)


def check(report: dict[str, Any], duration_s: float) -> None:
    """Assert every figure the issue names (AssertionError naming the figure and its values)."""
    p1, k9 = report["inprocess"], report["kill9"]

    # 0 crashes: the daemon stopped cleanly, nothing logged at ERROR; the restarted process exited 0
    assert p1["exit_status"] == 0
    assert p1["error_logs"] == []
    assert (k9["run1_exit"], k9["run2_exit"], k9["stderr_tracebacks"]) == (-9, 0, 0)

    # the faults happened: disconnects of every kind the issue names, as the sessions saw them
    # CI: ~2.5 a second; the full run (600 s): the 1,000
    assert p1["forced_disconnects"] >= max(1.5 * duration_s, 1000 if duration_s >= 600 else 0), p1["faults_injected"]
    causes = p1["reconnects"]["causes"]
    for kind in ("close_1001", "close_1011", "close_1006", "handshake_rejected", "handshake_timeout", "stall"):
        assert causes.get(kind, 0) > 0, (kind, causes)
    assert p1["parse_errors"] > 0  # garbage counted, not fatal
    share = p1["garbage_ratio"]["share"]
    assert 0.09 <= share <= 0.11, p1["garbage_ratio"]  # 10 % of the data frames came with a spoiled copy
    assert set(p1["garbage_ratio"]["spoiled"]) == {"truncated", "huge_numbers", "wrong_types", "invalid_utf8"}
    assert p1["events_with_nonfinite_floats"] == 0

    # every stall detected within 2x the cadence of the session's slowest watched stream
    probes = p1["stall_probes"]
    assert len(probes) >= 2
    for row in probes:
        assert row["detected"], row
        # from the last data frame, and from the stall's start (frames in flight then count as sent), with
        # STALL_SLACK_S for the event loop's scheduling on a loaded machine (observed: < 15 ms)
        assert row["quiet_s"] <= row["bound_s"] + STALL_SLACK_S, row
        assert row["from_stall_start_s"] <= row["bound_s"] + STALL_SLACK_S, row

    # reconnects never give up (all open again) and never hot-loop (backoff floor; delays grow over failures)
    rc = p1["reconnects"]
    assert rc["gaps_below_floor"] == 0, rc
    assert rc["min_gap_s"] >= BACKOFF_FLOOR_S
    assert rc["failure_runs_not_growing"] == 0, rc
    run = p1["deribit_failure_run"]  # FAIL_RUN rejected handshakes in a row: 0.5-1, 1-2, 2-4, 4-8, 8-16 s
    assert len(run["delays_s"]) == FAIL_RUN, run
    assert all(b >= a for a, b in zip(run["delays_s"], run["delays_s"][1:], strict=False)), run
    assert run["delays_s"][-1] >= 8 * run["delays_s"][0] / 2, run
    assert all(g >= d - 0.01 for g, d in zip(run["gaps_s"], run["delays_s"], strict=False)), run
    assert all(n > 1 for n in p1["connects"].values()), p1["connects"]

    # readiness reflects reality: 503 naming Deribit while it was down past the grace, 200 after
    ready = p1["readiness"]
    down = ready["readyz_while_down"]
    assert down["status"] == 503, ready
    assert down["body"]["ready"] is False, ready
    [entry] = [d for d in down["body"]["down"] if d.startswith("deribit-")]
    assert float(entry.split("no data for ")[1].split(" s")[0]) >= READY_GRACE_S, entry
    assert ready["readyz_after"]["status"] == 200

    # a slow metrics client does not slow the pipeline
    slow = p1["slow_clients"]
    assert slow["held_at_probe"] == SLOWLORIS, slow
    assert slow["slow_reader_bytes"] > 0
    assert slow["normal_metrics_status"] == 200, slow
    assert slow["normal_metrics_fetch_s"] < 2.0, slow
    assert slow["loop_lag_ms_p50_p99_max_during"][1] < 250, slow
    assert slow["events_per_s_during"] > 0.5 * slow["events_per_s_whole_run"], slow

    # memory bounded: queues never above their bound, nothing dropped, RSS flat
    mem = p1["memory"]
    assert all(mem["queue_max_depth"][n] <= mem["queue_maxsize"][n] for n in mem["queue_maxsize"]), mem
    assert all(n == 0 for n in mem["queue_dropped"].values()), mem
    assert mem["rss_mb_end"] < mem["rss_mb_start"] + 150, mem
    rss2 = k9["rss_mb_run2_at_0_25_50_75_100pct"]  # the restarted `streamer run` process alone
    assert rss2[-1] < 150, rss2

    # no liquidation counted twice across reconnects, REST backfill and REST cover
    assert p1["liquidations_on_bus"] > 0
    assert p1["liquidations_twice_on_bus"] == 0

    # 0 alerts lost, 0 duplicated: in-process and across kill -9 + restart
    for figures in (p1["alerts"], k9):
        assert figures["alerts_printed"] > 0, figures
        assert figures["lost"] == [], figures
        assert figures["duplicated"] == [], figures
    assert k9["refired_after_restart"] == []

    # no secret in anything the processes emitted
    assert report["secrets"]["found"] == {}, report["secrets"]
    assert report["secrets"]["bytes_scanned"] > 100_000
