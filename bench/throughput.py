"""Throughput section: frames/s per kind for five methods, interleaved in one process.

Methods (see bench/README.md):

- ``orjson``: ``orjson.loads(frame)``, the floor of just decoding JSON.
- ``msgspec``: a typed ``msgspec.json.Decoder`` of a Struct with just the fields we need (``bench.floor``),
  the floor of decoding what we need.
- ``adapter``: our adapter alone, ``adapter.parse(frame, recv_ts)``, events consumed (counted).
- ``pipeline``: the daemon's in-process path: ``adapter.parse`` then ``Daemon.publish`` for each event
  (liquidation de-duplication, ``MemoryBus`` dispatch to ``LiveState.on_event`` and the ``RuleEngine`` built by
  ``rules_from_settings`` from default settings, alert consumer queue), on a fresh ``streamer.daemon.Daemon``
  per pass.
- ``cryptofeed``: its real feed class's ``message_handler`` with a counting async callback (``bench.peers``).

Each repetition runs every method once per kind, in an order rotated by one per repetition; the table shows
the median and the range (min-max) over repetitions.
"""

from __future__ import annotations

import gc
import io
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from bench import floor
from bench.frames import Corpus, Kind, build
from streamer.exchanges import ADAPTERS
from streamer.exchanges.base import Adapter, FrameError

METHODS = ("orjson", "msgspec", "adapter", "pipeline", "cryptofeed")
ADAPTER_VS_CRYPTOFEED = 5.0  # target: adapter >= 5x cryptofeed on every kind both parse
PIPELINE_VS_FLOOR = 1 / 3  # target: pipeline >= 1/3 of the msgspec typed-decode floor on every kind

FULL = {"frames": 20_000, "reps": 7}
QUICK = {"frames": 400, "reps": 3}


@dataclass
class Result:
    """Timings of one kind: frames/s per method and repetition, plus what each pass produced."""

    kind: Kind
    fps: dict[str, list[float]] = field(default_factory=dict)
    outputs: dict[str, int] = field(default_factory=dict)  # events / callbacks / alerts per pass
    cryptofeed_ok: bool = False
    cryptofeed_note: str = ""

    def median(self, method: str) -> float | None:
        runs = self.fps.get(method)
        return statistics.median(runs) if runs else None

    def ratio(self, num: str, den: str) -> float | None:
        a, b = self.median(num), self.median(den)
        return a / b if a and b else None


def _loaded_adapter(kind: Kind) -> Adapter:
    adapter: Adapter = ADAPTERS[kind.venue]()
    for market, body in kind.instruments:
        adapter.load_instruments(body, market=market)
    return adapter


_STATE_DIRS: list[tempfile.TemporaryDirectory[str]] = []


def _new_daemon() -> Any:
    """A daemon with default settings but its own empty state dir: the default (``~/.cache/streamer``) would
    persist open alert episodes between passes (and runs), and a restored episode makes every event pass
    through the episode journal."""
    from streamer.config import Settings
    from streamer.daemon import Daemon

    while _STATE_DIRS:  # the previous pass's daemon is done with its directory
        _STATE_DIRS.pop().cleanup()
    state = tempfile.TemporaryDirectory(prefix="streamer-bench-")
    _STATE_DIRS.append(state)
    return Daemon(Settings(state_dir=state.name), out=io.BytesIO())


def _time_loads(loads: Callable[[bytes], Any], frames: Sequence[bytes]) -> int:
    t0 = time.perf_counter_ns()
    for frame in frames:
        loads(frame)
    return time.perf_counter_ns() - t0


def _time_adapter(adapter: Adapter, frames: Sequence[bytes], recv: Sequence[int]) -> tuple[int, int]:
    parse = adapter.parse
    n = 0
    t0 = time.perf_counter_ns()
    for frame, ts in zip(frames, recv, strict=True):
        n += len(parse(frame, ts))
    return time.perf_counter_ns() - t0, n


def _time_pipeline(adapter: Adapter, daemon: Any, frames: Sequence[bytes], recv: Sequence[int]) -> int:
    """The core of ``Daemon._session.on_frame``: parse (FrameError counted and skipped), publish each event."""
    parse = adapter.parse
    publish = daemon.publish
    t0 = time.perf_counter_ns()
    for frame, ts in zip(frames, recv, strict=True):
        try:
            events = parse(frame, ts)
        except FrameError:
            continue
        for event in events:
            publish(event)
    return time.perf_counter_ns() - t0


def run(
    frames_per_kind: int,
    reps: int,
    *,
    kinds: Sequence[str] | None = None,
    universe: int = 300,
    seed: int = 7,
    with_cryptofeed: bool = True,
    progress: Callable[[str], None] | None = None,
) -> tuple[list[Result], dict[str, Any]]:
    """Time every method on every kind; returns the results and the run's configuration."""
    say = progress or (lambda _msg: None)
    t_build = time.perf_counter()
    corpus: Corpus = build(frames_per_kind, universe=universe, seed=seed, only=kinds)
    say(f"generated {sum(len(k.frames) for k in corpus.kinds):,} frames over {len(corpus.kinds)} kinds "
        f"in {time.perf_counter() - t_build:.1f} s")

    peer = None
    peer_error = ""
    if with_cryptofeed:
        try:
            from bench.peers import Cryptofeed

            peer = Cryptofeed(corpus)
        except ImportError as exc:
            peer_error = f"cryptofeed not installed ({exc}); pip install -e '.[bench]'"
    else:
        peer_error = "cryptofeed skipped (--no-cryptofeed)"

    results: list[Result] = []
    for kind in corpus.kinds:
        res = Result(kind)
        adapter = _loaded_adapter(kind)
        dec = floor.DECODERS[kind.name].decode
        frames, recv = kind.frames, kind.recv_ts
        recv_s = [r / 1000 for r in recv]
        methods = list(METHODS)
        if peer is not None:
            res.cryptofeed_ok, res.cryptofeed_note = peer.probe(kind)
        else:
            res.cryptofeed_note = peer_error
        if not res.cryptofeed_ok:
            methods.remove("cryptofeed")

        # Warm-up (caches, adapter state, lazy imports), untimed.
        warm = min(len(frames), 200)
        _time_loads(orjson.loads, frames[:warm])
        _time_loads(dec, frames[:warm])
        _time_adapter(_loaded_adapter(kind), frames[:warm], recv[:warm])
        _time_pipeline(_loaded_adapter(kind), _new_daemon(), frames[:warm], recv[:warm])

        for rep in range(reps):
            shift = rep % len(methods)
            for method in methods[shift:] + methods[:shift]:
                daemon = _new_daemon() if method == "pipeline" else None
                gc.collect()
                if method == "orjson":
                    ns = _time_loads(orjson.loads, frames)
                elif method == "msgspec":
                    ns = _time_loads(dec, frames)
                elif method == "adapter":
                    ns, res.outputs["adapter_events"] = _time_adapter(adapter, frames, recv)
                elif method == "pipeline":
                    ns = _time_pipeline(adapter, daemon, frames, recv)
                    stats = daemon.bus.stats()
                    res.outputs["pipeline_published"] = stats["published"]
                    res.outputs["pipeline_alerts"] = stats["by_type"].get("alert", 0)
                else:
                    assert peer is not None
                    ns, res.outputs["cryptofeed_callbacks"] = peer.time(kind, recv_s)
                res.fps.setdefault(method, []).append(len(frames) / (ns / 1e9))
        say(f"{kind.name}: " + ", ".join(f"{m} {res.median(m) or 0:,.0f}/s" for m in METHODS if m in res.fps))
        results.append(res)
    if peer is not None:
        peer.close()
    config = {"frames_per_kind": frames_per_kind, "reps": reps, "universe": universe, "seed": seed,
              "zipf_s": 1.1, "cryptofeed": peer_error or "driven"}
    return results, config


# ------------------------------------------------------------------------------------------------ report


def _k(x: float) -> str:
    if x >= 1e6:
        return f"{x / 1e6:.2f}M"
    if x >= 1e4:
        return f"{x / 1e3:.0f}k"
    if x >= 1e3:
        return f"{x / 1e3:.1f}k"
    return f"{x:.0f}"


def _cell(runs: list[float] | None) -> str:
    if not runs:
        return "—"
    return f"{_k(statistics.median(runs))} ({_k(min(runs))}–{_k(max(runs))})"


def verdicts(res: Result) -> dict[str, bool | None]:
    """Target checks of one kind: None where the comparison does not apply."""
    a_cf = res.ratio("adapter", "cryptofeed")
    p_fl = res.ratio("pipeline", "msgspec")
    return {
        "adapter_vs_cryptofeed": None if a_cf is None else a_cf >= ADAPTER_VS_CRYPTOFEED,
        "pipeline_vs_floor": None if p_fl is None else p_fl >= PIPELINE_VS_FLOOR,
    }


def table(results: list[Result]) -> Any:
    from rich.table import Table

    t = Table(title="Throughput, frames/s: median (min–max) over repetitions", title_justify="left")
    t.add_column("kind")
    t.add_column("frames", justify="right")
    for m in METHODS:
        t.add_column(m, justify="right")
    t.add_column(f"adapter/cryptofeed ≥{ADAPTER_VS_CRYPTOFEED:g}×", justify="right")
    t.add_column("pipeline/msgspec ≥0.33", justify="right")
    for res in results:
        v = verdicts(res)
        a_cf, p_fl = res.ratio("adapter", "cryptofeed"), res.ratio("pipeline", "msgspec")
        t.add_row(
            res.kind.name,
            f"{len(res.kind.frames):,}",
            *(_cell(res.fps.get(m)) if m != "cryptofeed" or res.cryptofeed_ok else "n/a" for m in METHODS),
            "—" if a_cf is None else f"{a_cf:.1f}× {'✓' if v['adapter_vs_cryptofeed'] else '✗'}",
            "—" if p_fl is None else f"{p_fl:.2f} {'✓' if v['pipeline_vs_floor'] else '✗'}",
        )
    return t


def notes(results: list[Result]) -> list[str]:
    """Footnotes: kinds cryptofeed cannot parse (and why), and what it yields where it parses less."""
    out = [f"cryptofeed n/a on {r.kind.name}: {r.cryptofeed_note}" for r in results if not r.cryptofeed_ok]
    out.extend(f"cryptofeed on {r.kind.name} yields: {r.cryptofeed_note}" for r in results
               if r.cryptofeed_ok and r.cryptofeed_note)
    return out


def summary(results: list[Result]) -> dict[str, Any]:
    misses = {
        "adapter_vs_cryptofeed": [r.kind.name for r in results if verdicts(r)["adapter_vs_cryptofeed"] is False],
        "pipeline_vs_floor": [r.kind.name for r in results if verdicts(r)["pipeline_vs_floor"] is False],
    }
    return {"all_targets_met": not any(misses.values()), "missed": misses}


def to_json(results: list[Result], config: dict[str, Any]) -> dict[str, Any]:
    kinds = {}
    for res in results:
        methods = {
            m: {"median_fps": statistics.median(runs), "min_fps": min(runs), "max_fps": max(runs), "runs_fps": runs}
            for m, runs in res.fps.items()
        }
        kinds[res.kind.name] = {
            "venue": res.kind.venue,
            "what": res.kind.note,
            "frames": len(res.kind.frames),
            "bytes": res.kind.bytes_total,
            "methods": methods,
            "outputs_per_pass": res.outputs,
            "ratios": {"adapter_vs_cryptofeed": res.ratio("adapter", "cryptofeed"),
                       "pipeline_vs_msgspec_floor": res.ratio("pipeline", "msgspec")},
            "targets": verdicts(res),
            "cryptofeed": {"supported": res.cryptofeed_ok, "note": res.cryptofeed_note},
        }
    return {
        "config": config,
        "methods": list(METHODS),
        "targets": {"adapter_vs_cryptofeed_min": ADAPTER_VS_CRYPTOFEED,
                    "pipeline_vs_msgspec_floor_min": PIPELINE_VS_FLOOR},
        "kinds": kinds,
        "summary": summary(results),
    }


def section(args: Any, console: Any) -> dict[str, Any]:
    """``python -m bench throughput``: run, print the table and notes, return the JSON part."""
    preset = QUICK if args.quick else FULL
    frames = args.frames or preset["frames"]
    reps = args.reps or preset["reps"]
    kinds = args.kinds.split(",") if args.kinds else None
    console.print(f"[bold]throughput[/bold]: {frames:,} frames per kind, {reps} repetitions, methods interleaved, "
                  "order rotated per repetition")
    results, config = run(frames, reps, kinds=kinds, with_cryptofeed=not args.no_cryptofeed,
                          progress=lambda m: console.print(f"  {m}", style="dim"))
    config["quick"] = bool(args.quick)
    console.print(table(results))
    for line in notes(results):
        console.print(f"  • {line}", highlight=False)
    s = summary(results)
    if s["all_targets_met"]:
        console.print("[green]every throughput target met[/green]")
    else:
        for target, names in s["missed"].items():
            if names:
                console.print(f"[red]target {target} missed on: {', '.join(names)}[/red]")
    return to_json(results, config)
