"""Memory: RSS of the in-process pipeline with 2,000 instruments and full 24 h windows, and its slope over a soak.

The pipeline is the daemon's own (``streamer.daemon.Daemon`` built from ``Settings``, HTTP off, never
``run``): frames go through each venue's adapter ``parse``, then ``Daemon.publish`` (liquidation dedupe →
``MemoryBus`` → ``LiveState`` and the ``RuleEngine`` as sync handlers → the bounded alert consumer, drained
here as the stdout sink would). The measurement runs in a fresh ``spawn``-ed process so that RSS counts
only the pipeline, whatever ran before in the caller.

**Universe**: Binance USDⓈ-M (40 %), Bybit linear (30 %) and OKX SWAP (30 %) perpetuals, with instrument
metadata loaded from generated REST bodies in each venue's shape (exchangeInfo + fundingInfo,
instruments-info, public/instruments), as the daemon loads them.

**Fill** (event time, all frames of each minute sorted by ``ts``): for the 7 days before the last 24 h, an
open-interest sample per instrument every 84 min (fills the 7-day OI history's whole span, 7 d + 1/12, at
its resolution, so the soak starts in steady state); then
24 h, minute by minute: a Binance ``!markPrice@arr`` frame with every Binance symbol, a Bybit ``tickers``
delta per symbol (funding, mark, last, bid/ask, OI), an OKX ``funding-rate`` and ``open-interest`` frame
per swap (every 30 s in the last hour, the 1 h OI history's resolution), and liquidations (3/s per 2,000
instruments, scaled with the universe) over Zipf-distributed symbols (a few large enough to alert).
Every time-spanning structure then holds its whole span: funding 24 h means (1-minute buckets), OI
histories (1 h, 24 h, 7 d), liquidation windows and cascade baselines (1 h) for the symbols that liquidate.

**Soak**: the same minute-by-minute load continues (event time advancing ``SOAK_STEPS_PER_S`` minutes per
wall second, so windows roll over many times), RSS sampled every few seconds; the slope is a least-squares
fit in MB/min. When it grows, ``tracemalloc`` compares the top allocation sites over a further stretch.
RSS is VmRSS from ``/proc/self/status`` (after ``gc.collect()``).
"""

from __future__ import annotations

import gc
import multiprocessing as mp
import random
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from typing import Any

from rich.table import Table

__all__ = ["rss_bytes", "run", "section", "table"]

FULL: dict[str, Any] = {"instruments": 2_000, "soak_s": 180.0, "sample_s": 5.0}
QUICK: dict[str, Any] = {"instruments": 100, "soak_s": 6.0, "sample_s": 1.0}
TARGET_INSTRUMENTS = 2_000
TARGET_RSS_MB = 250.0
GROWTH_MB_PER_MIN = 0.5  # a slope above this (and over 1 MB of growth in all) counts as growing

SHARES = (("binance", 0.4), ("bybit", 0.3), ("okx", 0.3))
LIQ_PER_MIN_2000 = 180  # liquidations per minute over 2,000 instruments (3/s, a busy day); scaled with the universe
LARGE_EVERY = 400  # one liquidation in this many is ≥ $1.5M (an alert)
SOAK_STEPS_PER_S = 10.0  # event-time minutes per wall second during the soak
TRACE_STEPS = 30  # event-minutes fed under tracemalloc when the soak grows
MIN = 60_000
HOUR = 3_600_000
DAY = 86_400_000
OI_PRE_STEP = 5_040_000  # 7 d / 120: the 7-day OI history's resolution
T_END = 1_790_000_000_000 // MIN * MIN


def rss_bytes() -> int:
    """Resident set size of this process, bytes (VmRSS)."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


# --------------------------------------------------------------------------- the universe


class Universe:
    """Generated instruments and frame builders (each venue's real wire shape)."""

    def __init__(self, n: int, seed: int = 11) -> None:
        self.rng = random.Random(seed)
        counts = [int(n * share) for _, share in SHARES]
        counts[0] += n - sum(counts)
        self.binance = [f"C{i:04d}USDT" for i in range(counts[0])]
        self.bybit = [f"Y{i:04d}USDT" for i in range(counts[1])]
        self.okx = [f"K{i:04d}-USDT-SWAP" for i in range(counts[2])]
        self.n = n
        self.price: dict[str, float] = {s: round(self.rng.uniform(0.05, 900.0), 4)
                                        for s in (*self.binance, *self.bybit, *self.okx)}
        everyone = [("binance", s) for s in self.binance] + [("bybit", s) for s in self.bybit] + \
                   [("okx", s) for s in self.okx]
        self.rng.shuffle(everyone)
        self.liq_pool = everyone
        self.liq_weights = [1.0 / (rank + 1) ** 1.1 for rank in range(len(everyone))]
        self.liquidations = 0
        self.liq_per_min = max(1, round(LIQ_PER_MIN_2000 * n / TARGET_INSTRUMENTS))
        self._cs = 0

    # ------------------------------------------------------------ REST bodies

    def binance_exchange_info(self) -> bytes:
        import orjson

        rows = [{"symbol": s, "pair": s, "contractType": "PERPETUAL", "deliveryDate": 4133404800000,
                 "onboardDate": 1569398400000, "status": "TRADING", "baseAsset": s[:-4], "quoteAsset": "USDT",
                 "marginAsset": "USDT", "pricePrecision": 4, "quantityPrecision": 3} for s in self.binance]
        return orjson.dumps({"timezone": "UTC", "serverTime": T_END, "futuresType": "U_MARGINED", "symbols": rows})

    def bybit_instruments(self) -> bytes:
        import orjson

        rows = [{"symbol": s, "contractType": "LinearPerpetual", "status": "Trading", "baseCoin": s[:-4],
                 "quoteCoin": "USDT", "launchTime": "1585526400000", "deliveryTime": "0", "priceScale": "4",
                 "lotSizeFilter": {"qtyStep": "0.001", "minOrderQty": "0.001"}, "fundingInterval": 480,
                 "settleCoin": "USDT"} for s in self.bybit]
        return orjson.dumps({"retCode": 0, "retMsg": "OK",
                             "result": {"category": "linear", "list": rows, "nextPageCursor": ""}})

    def okx_instruments(self) -> bytes:
        import orjson

        rows = [{"instId": s, "instType": "SWAP", "instFamily": s[:-5], "uly": s[:-5], "ctType": "linear",
                 "ctVal": "1", "ctValCcy": s.split("-")[0], "ctMult": "1", "settleCcy": "USDT", "state": "live",
                 "listTime": "1573557408000", "expTime": "", "lotSz": "1", "tickSz": "0.0001"} for s in self.okx]
        return orjson.dumps({"code": "0", "msg": "", "data": rows})

    # ------------------------------------------------------------ frames: (ts, exchange, frame)

    def minute(self, t0: int, *, oi_half: bool, first: bool) -> list[tuple[int, str, str]]:
        """One minute of event time from ``t0``: funding, tickers, OI and liquidations, sorted by ts."""
        rng = self.rng
        out: list[tuple[int, str, str]] = []
        drift = 1.0 + rng.uniform(-0.003, 0.003)
        ts = t0 + 100
        next_funding = (ts // (8 * HOUR) + 1) * 8 * HOUR
        price = self.price
        rows = [
            f'{{"e":"markPriceUpdate","E":{ts},"s":"{s}","p":"{price[s] * drift:.6f}","ap":"{price[s]:.6f}",'
            f'"P":"{price[s]:.6f}","i":"{price[s] * 1.0001:.6f}","r":"{rng.uniform(-0.0001, 0.0002):.8f}",'
            f'"T":{next_funding},"st":1}}'
            for s in self.binance
        ]
        out.append((ts, "binance", f"[{','.join(rows)}]"))
        for j, s in enumerate(self.bybit):
            ts = t0 + 200 + j * 10 % 6_000
            out.append((ts, "bybit", self._bybit_ticker(s, ts, drift, next_funding, snapshot=first)))
            if oi_half:
                ts += 30_000
                out.append((ts, "bybit", self._bybit_ticker(s, ts, drift, next_funding, snapshot=False,
                                                            oi_only=True)))
        for j, s in enumerate(self.okx):
            ts = t0 + 7_000 + j * 10 % 6_000
            out.append((ts, "okx", self._okx_funding(s, ts, next_funding, rng.uniform(-0.0001, 0.0002))))
            out.append((ts + 7_000, "okx", self._okx_oi(s, ts + 7_000, drift)))
            if oi_half:
                out.append((ts + 37_000, "okx", self._okx_oi(s, ts + 37_000, drift)))
        picks = rng.choices(self.liq_pool, weights=self.liq_weights, k=self.liq_per_min)
        for venue, s in picks:
            ts = t0 + rng.randrange(MIN)
            out.append((ts, venue, self._liquidation(venue, s, ts, drift)))
        out.sort(key=lambda x: x[0])
        return out

    def oi_only(self, t0: int, drift: float = 1.0) -> list[tuple[int, str, str]]:
        """An OI sample per Bybit and OKX symbol (the 7-day history before the last 24 h)."""
        out = [(t0 + j, "bybit", self._bybit_ticker(s, t0 + j, drift, 0, snapshot=True, oi_only=True))
               for j, s in enumerate(self.bybit)]
        out += [(t0 + j, "okx", self._okx_oi(s, t0 + j, drift)) for j, s in enumerate(self.okx)]
        out.sort(key=lambda x: x[0])
        return out

    def _bybit_ticker(self, s: str, ts: int, drift: float, next_funding: int, *, snapshot: bool,
                      oi_only: bool = False) -> str:
        self._cs += 1
        px = self.price[s] * drift
        oi = 1_000_000.0 * drift
        kind = "snapshot" if snapshot else "delta"
        if oi_only:
            data = f'"symbol":"{s}","openInterest":"{oi:.3f}","openInterestValue":"{oi * px:.2f}"'
        else:
            data = (f'"symbol":"{s}","lastPrice":"{px:.4f}","markPrice":"{px:.4f}","indexPrice":"{px * 1.0001:.4f}",'
                    f'"bid1Price":"{px * 0.9999:.4f}","ask1Price":"{px:.4f}","openInterest":"{oi:.3f}",'
                    f'"openInterestValue":"{oi * px:.2f}","fundingRate":"{self.rng.uniform(-0.0001, 0.0002):.7f}",'
                    f'"fundingIntervalHour":"8","nextFundingTime":"{next_funding}"')
        return f'{{"topic":"tickers.{s}","type":"{kind}","data":{{{data}}},"cs":{self._cs},"ts":{ts}}}'

    @staticmethod
    def _okx_funding(s: str, ts: int, next_funding: int, rate: float) -> str:
        return (f'{{"arg":{{"channel":"funding-rate","instId":"{s}"}},"data":[{{"formulaType":"withRate",'
                f'"fundingRate":"{rate:.12f}","fundingTime":"{next_funding}","instId":"{s}","instType":"SWAP",'
                f'"method":"current_period","nextFundingRate":"","nextFundingTime":"{next_funding + 8 * HOUR}",'
                f'"settState":"settled","ts":"{ts}"}}]}}')

    def _okx_oi(self, s: str, ts: int, drift: float) -> str:
        oi = 2_000_000.0 * drift
        px = self.price[s]
        return (f'{{"arg":{{"channel":"open-interest","instId":"{s}"}},"data":[{{"instId":"{s}","instType":"SWAP",'
                f'"oi":"{oi:.2f}","oiCcy":"{oi:.2f}","oiUsd":"{oi * px:.2f}","ts":"{ts}"}}]}}')

    def _liquidation(self, venue: str, s: str, ts: int, drift: float) -> str:
        rng = self.rng
        self.liquidations += 1
        px = self.price[s] * drift
        usd = 1_500_000.0 if self.liquidations % LARGE_EVERY == 0 else rng.uniform(200.0, 60_000.0)
        q = usd / px
        long = rng.random() < 0.5
        if venue == "binance":
            side = "SELL" if long else "BUY"
            return (f'{{"e":"forceOrder","E":{ts},"o":{{"s":"{s}","S":"{side}","o":"LIMIT","f":"IOC",'
                    f'"q":"{q:.3f}","p":"{px:.4f}","ap":"{px:.4f}","X":"FILLED","l":"{q:.3f}","z":"{q:.3f}",'
                    f'"T":{ts}}}}}')
        if venue == "bybit":
            side = "Buy" if long else "Sell"
            return (f'{{"topic":"allLiquidation.{s}","type":"snapshot","ts":{ts},'
                    f'"data":[{{"T":{ts},"s":"{s}","S":"{side}","v":"{q:.3f}","p":"{px:.4f}"}}]}}')
        pos, side = ("long", "sell") if long else ("short", "buy")
        family = s[:-5]
        return (f'{{"arg":{{"channel":"liquidation-orders","instType":"SWAP"}},"data":[{{"details":[{{"bkLoss":"0",'
                f'"bkPx":"{px:.4f}","ccy":"","posSide":"{pos}","side":"{side}","sz":"{q:.0f}","ts":"{ts}"}}],'
                f'"instFamily":"{family}","instId":"{s}","instType":"SWAP","uly":"{family}"}}]}}')


# --------------------------------------------------------------------------- the pipeline


def _settings(u: Universe, state_dir: str) -> Any:
    from streamer.config import (
        BinanceSettings,
        BybitSettings,
        ExchangesSettings,
        HttpSettings,
        OkxSettings,
        Settings,
    )

    dead = "ws://127.0.0.1:9/"
    return Settings(
        http=HttpSettings(enabled=False),
        exchanges=ExchangesSettings(
            binance=BinanceSettings(symbols=list(u.binance), all_market=True, channels=["liquidations", "funding"],
                                    um_ws_url=dead, cm_ws_url=dead, um_rest_url="http://127.0.0.1:9",
                                    cm_rest_url="http://127.0.0.1:9", open_interest_poll_s=0.0),
            bybit=BybitSettings(enabled=True, symbols=list(u.bybit), channels=["liquidations", "funding", "ticker"],
                                linear_ws_url=dead, inverse_ws_url="", option_ws_url="", rest_url="http://127.0.0.1:9"),
            okx=OkxSettings(enabled=True, symbols=list(u.okx), all_market=True,
                            channels=["liquidations", "funding", "open_interest"], public_ws_url=dead,
                            rest_url="http://127.0.0.1:9"),
        ),
        state_dir=state_dir,
    )


class _Pipeline:
    """Daemon-wired pipeline fed frame by frame."""

    def __init__(self, daemon: Any) -> None:
        self.daemon = daemon
        self.parse = {name: a.parse for name, a in daemon.adapters.items()}
        self.frames = 0
        self.alerts = 0

    def feed(self, frames: list[tuple[int, str, str]], recv_ts: int) -> None:
        publish = self.daemon.publish
        parse = self.parse
        for _ts, venue, frame in frames:
            for event in parse[venue](frame, recv_ts):
                publish(event)
        self.frames += len(frames)
        consumer = self.daemon.alert_consumer
        while consumer.get_nowait() is not None:  # the stdout sink's share of the work
            self.alerts += 1


def _structures(daemon: Any) -> dict[str, Any]:
    st = daemon.state.stats()
    return {
        "liquidation_keys": st["liquidations"],
        "funding": st["funding"],
        "open_interest": st["open_interest"],
        "prices": st["prices"],
        "events_by_type": st["events"],
        "bus_published": daemon.bus.stats()["published"],
        "dedupe_keys": len(daemon.dedupe._order),
    }


_SKIP = (type, type(sys), type(len), type(rss_bytes))


def _deep_size(root: object, seen: set[int]) -> int:
    """Bytes of every object reachable from ``root`` not in ``seen`` (modules, types, functions skipped)."""
    total = 0
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, _SKIP):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        stack.extend(gc.get_referents(obj))
    return total


def _breakdown(daemon: Any) -> dict[str, int]:
    """Deep sizes (bytes) of the pipeline's parts, each shared object counted once (in this order)."""
    seen: set[int] = set()
    for shared in (daemon.settings,):
        _deep_size(shared, seen)
    state = daemon.state
    parts: dict[str, object] = {
        "state.liquidations": state.liquidations,
        "state.funding": state.funding,
        "state.open_interest": state.open_interest,
        "state.prices": state.prices,
        "state.other": state,
    }
    for rule in daemon.engine.rules:
        parts[f"rule.{rule.name}"] = rule
    parts["dedupe"] = daemon.dedupe
    for name, adapter in daemon.adapters.items():
        parts[f"adapter.{name}"] = adapter
    parts["bus"] = daemon.bus
    return {name: _deep_size(obj, seen) for name, obj in parts.items()}


def _slope_mb_per_min(samples: list[tuple[float, int]]) -> float | None:
    if len(samples) < 3:
        return None
    xs = [t / 60.0 for t, _ in samples]
    ys = [r / 1e6 for _, r in samples]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else None


def _measure(conn: Connection, instruments: int, soak_s: float, sample_s: float) -> None:
    from streamer.daemon import Daemon

    gc.collect()
    rss_start = rss_bytes()
    u = Universe(instruments)
    with tempfile.TemporaryDirectory(prefix="streamer-bench-mem-") as state_dir:
        daemon = Daemon(_settings(u, state_dir))
        gc.collect()
        rss_empty = rss_bytes()
        daemon.adapters["binance"].load_instruments(u.binance_exchange_info(), "um")
        daemon.adapters["binance"].load_instruments(b"[]", "um")  # fundingInfo: every symbol on 8 h
        daemon.adapters["bybit"].load_instruments(u.bybit_instruments(), "linear")
        daemon.adapters["okx"].load_instruments(u.okx_instruments(), "public")
        pipe = _Pipeline(daemon)
        t_fill = time.perf_counter()
        start = T_END - DAY
        for t0 in range(T_END - 8 * DAY, start, OI_PRE_STEP):
            pipe.feed(u.oi_only(t0), t0)
        for m in range(DAY // MIN):
            t0 = start + m * MIN
            pipe.feed(u.minute(t0, oi_half=t0 >= T_END - HOUR, first=m == 0), t0)
        fill_s = time.perf_counter() - t_fill
        gc.collect()
        rss_full = rss_bytes()
        structures = _structures(daemon)
        breakdown = _breakdown(daemon)
        gc.collect()
        fill_frames = pipe.frames

        # soak: steady load, event time advancing
        samples: list[tuple[float, int]] = []
        t_soak = time.perf_counter()
        next_sample = 0.0
        step = 0
        event_t = T_END
        while True:
            elapsed = time.perf_counter() - t_soak
            if elapsed >= next_sample:
                gc.collect()
                samples.append((elapsed, rss_bytes()))
                next_sample += sample_s
                if elapsed >= soak_s:
                    break
            due = int(elapsed * SOAK_STEPS_PER_S) + 1
            if step < due:
                pipe.feed(u.minute(event_t, oi_half=True, first=False), event_t)
                event_t += MIN
                step += 1
            else:
                time.sleep(min(0.01, 1.0 / SOAK_STEPS_PER_S))
        slope = _slope_mb_per_min(samples)
        growth = samples[-1][1] - samples[0][1]
        growing = bool(slope is not None and slope > GROWTH_MB_PER_MIN and growth > 1_000_000)
        top: list[str] = []
        if growing:
            import tracemalloc

            tracemalloc.start(1)
            before = tracemalloc.take_snapshot()
            for _ in range(TRACE_STEPS):
                pipe.feed(u.minute(event_t, oi_half=True, first=False), event_t)
                event_t += MIN
            after = tracemalloc.take_snapshot()
            tracemalloc.stop()
            top = [str(s) for s in after.compare_to(before, "lineno")[:10]]
        soak_structures = _structures(daemon)
    conn.send({
        "instruments": instruments,
        "venues": {"binance": len(u.binance), "bybit": len(u.bybit), "okx": len(u.okx)},
        "rss_start_bytes": rss_start,
        "rss_empty_pipeline_bytes": rss_empty,
        "rss_full_bytes": rss_full,
        "per_instrument_bytes": (rss_full - rss_empty) / instruments,
        "fill": {"frames": fill_frames, "seconds": round(fill_s, 2), "event_span_h": 24,
                 "oi_prehistory_days": 7, "liquidations_per_min": u.liq_per_min},
        "structures_after_fill": structures,
        "breakdown_bytes": breakdown,
        "liquidations_24h": u.liquidations,
        "soak": {
            "seconds": round(samples[-1][0], 1),
            "steps": step,
            "event_minutes_per_s": SOAK_STEPS_PER_S,
            "frames": pipe.frames - fill_frames,
            "samples": [(round(t, 2), r) for t, r in samples],
            "slope_mb_per_min": slope,
            "growth_bytes": growth,
            "growing": growing,
            "tracemalloc_top": top,
            "structures_after": soak_structures,
        },
        "alerts_drained": pipe.alerts,
    })


def _child(conn: Connection, instruments: int, soak_s: float, sample_s: float) -> None:
    _measure(conn, instruments, soak_s, sample_s)


# --------------------------------------------------------------------------- the section


def run(quick: bool, progress: Any = None) -> dict[str, Any]:
    """Fill, soak and report (in a fresh process); JSON-able results."""
    preset = QUICK if quick else FULL
    say = progress or (lambda _m: None)
    say(f"memory: {preset['instruments']:,} instruments, 24 h of event time, then a {preset['soak_s']:g} s soak")
    ctx = mp.get_context("spawn")
    here, there = ctx.Pipe()
    proc = ctx.Process(target=_child, args=(there, preset["instruments"], preset["soak_s"], preset["sample_s"]),
                       name="bench-memory", daemon=True)
    proc.start()
    try:
        if not here.poll(preset["soak_s"] * 2 + 600):
            raise TimeoutError("the memory measurement did not report")
        res: dict[str, Any] = here.recv()
    finally:
        proc.join(10)
        if proc.is_alive():
            proc.terminate()
    # Projection to 2,000 instruments: the dedupe's keys are capped (LIQUIDATION_KEYS_KEPT), not per instrument;
    # everything else scales with the instruments (liquidations are generated per instrument).
    n = res["instruments"]
    dedupe_keys = res["structures_after_fill"]["dedupe_keys"]
    dedupe_bytes = res["breakdown_bytes"]["dedupe"]
    per_key = dedupe_bytes / dedupe_keys if dedupe_keys else 0.0
    keys_2000 = min(_keys_kept(), res["liquidations_24h"] * TARGET_INSTRUMENTS // n)
    per_instrument = (res["rss_full_bytes"] - res["rss_empty_pipeline_bytes"] - dedupe_bytes) / n
    res["per_instrument_bytes"] = per_instrument
    res["dedupe_bytes_per_key"] = per_key
    projected = res["rss_empty_pipeline_bytes"] + per_instrument * TARGET_INSTRUMENTS + per_key * keys_2000
    res["quick"] = quick
    res["projected_rss_at_2000_bytes"] = projected
    res["target"] = {
        "instruments": TARGET_INSTRUMENTS,
        "limit_mb": TARGET_RSS_MB,
        "rss_mb": round(projected / 1e6, 1),
        "measured_at": res["instruments"],
        "met": projected / 1e6 < TARGET_RSS_MB,
        "soak_flat": not res["soak"]["growing"],
    }
    return res


def _keys_kept() -> int:
    from streamer.daemon import LIQUIDATION_KEYS_KEPT

    return LIQUIDATION_KEYS_KEPT


def _mb(v: float | None) -> str:
    return "-" if v is None else f"{v / 1e6:.1f}"


def table(results: dict[str, Any]) -> Table:
    """RSS before/after the fill, per instrument, and the soak's slope."""
    t = Table(title=f"memory: pipeline with {results['instruments']:,} instruments and full 24 h windows")
    t.add_column("measure")
    t.add_column("value", justify="right")
    t.add_column("note")
    soak = results["soak"]
    fill = results["fill"]
    target = results["target"]
    rows = [
        ("RSS, interpreter + imports", f"{_mb(results['rss_start_bytes'])} MB", ""),
        ("RSS, empty pipeline", f"{_mb(results['rss_empty_pipeline_bytes'])} MB", "Daemon built, no instruments"),
        ("RSS, full windows", f"{_mb(results['rss_full_bytes'])} MB",
         f"{fill['frames']:,} frames over 24 h (+7 d OI) of event time in {fill['seconds']:g} s"),
        ("per instrument", f"{results['per_instrument_bytes'] / 1e3:.1f} kB",
         "(full − empty − liquidation dedupe) / instruments"),
        ("liquidation dedupe", f"{results['structures_after_fill']['dedupe_keys']:,} keys",
         f"{results['dedupe_bytes_per_key']:.0f} B/key; capped at {_keys_kept():,} keys"),
        ("RSS at 2,000 instruments", f"{target['rss_mb']:.1f} MB",
         "measured" if results["instruments"] == TARGET_INSTRUMENTS else
         f"projected from {results['instruments']:,}",),
        ("target RSS < 250 MB", "[green]met[/green]" if target["met"] else "[red]missed[/red]", ""),
        ("soak", f"{soak['seconds']:g} s", f"{soak['steps']:,} event-minutes, {soak['frames']:,} frames"),
        ("soak RSS first → last", f"{_mb(soak['samples'][0][1])} → {_mb(soak['samples'][-1][1])} MB",
         f"{len(soak['samples'])} samples"),
        ("soak slope", "-" if soak["slope_mb_per_min"] is None else f"{soak['slope_mb_per_min']:+.2f} MB/min",
         "[red]growing[/red]" if soak["growing"] else "[green]flat[/green]"),
    ]
    total = sum(results["breakdown_bytes"].values()) or 1
    for name, size in sorted(results["breakdown_bytes"].items(), key=lambda kv: -kv[1])[:8]:
        per = size / results["instruments"] / 1e3
        note = f"{size / total:.0%} of the pipeline's objects; {per:.1f} kB/instr"
        rows.append((f"  {name}", f"{size / 1e6:.1f} MB", note))
    for row in rows:
        t.add_row(*row)
    return t


def section(args: Any, console: Any) -> dict[str, Any]:
    """``python -m bench memory``: run, print the table (and tracemalloc's top sites if growing)."""
    results = run(bool(args.quick), progress=lambda m: console.print(f"  {m}", style="dim"))
    console.print(table(results))
    for line in results["soak"]["tracemalloc_top"]:
        console.print(f"  {line}", highlight=False)
    return results


def main(argv: list[str] | None = None) -> int:
    from bench.standalone import section_main

    return section_main("python -m bench.memory", __doc__.splitlines()[0],
                        "200 instruments (projected to 2,000), a 10 s soak", section, argv)


if __name__ == "__main__":
    sys.exit(main())
