"""Every alert the pipeline raises on the bench corpora, as JSON lines: ``python -m bench.oracle > alerts.jsonl``.

A performance change must not change any output. This writes, for one code version, every alert (the bus
event, JSON-encoded, in order) and the final ``LiveState.snapshot()``, from:

1. each kind of the throughput corpus (``bench.frames``, ``--frames`` per kind) through a fresh daemon with
   default settings (``Daemon.publish`` per event, as the throughput section's pipeline);
2. the latency section's frame mix through the daemon's own frame callbacks (``bench.hotpath``), default rules;
3. the same mix with a low cascade floor and a low funding-divergence threshold, so those rules fire and resolve.

Every daemon gets an empty temporary state dir. Run it on two versions and compare the bytes::

    git stash; python -m bench.oracle > /tmp/before.jsonl; git stash pop
    python -m bench.oracle > /tmp/after.jsonl; cmp /tmp/before.jsonl /tmp/after.jsonl
"""

from __future__ import annotations

import argparse
import asyncio
import io
import sys
import tempfile
from collections import Counter
from typing import Any

import msgspec

from bench import hotpath
from bench.frames import build
from bench.latency import make_frames
from bench.throughput import _loaded_adapter

__all__ = ["lines", "main"]

T0_MS = 1_760_003_600_000


def _corpus(frames_per_kind: int, state_root: str) -> list[bytes]:
    from streamer.config import Settings
    from streamer.daemon import Daemon
    from streamer.exchanges.base import FrameError

    out: list[bytes] = []
    for kind in build(frames_per_kind).kinds:
        daemon = Daemon(Settings(state_dir=tempfile.mkdtemp(dir=state_root)), out=io.BytesIO())
        adapter, consumer = _loaded_adapter(kind), daemon.alert_consumer
        for frame, ts in zip(kind.frames, kind.recv_ts, strict=True):
            try:
                events = adapter.parse(frame, ts)
            except FrameError:
                continue
            for event in events:
                daemon.publish(event)
            while (alert := consumer.get_nowait()) is not None:
                out.append(msgspec.json.encode(alert))
        out.append(f"# {kind.name}: state".encode())
        out.append(msgspec.json.encode(daemon.state.snapshot()))
    return out


def _mix(n: int, rules: Any, state_root: str, label: str) -> list[bytes]:
    fs = make_frames(n, T0_MS)
    daemon, by_slot = asyncio.run(hotpath._callbacks(tempfile.mkdtemp(dir=state_root), rules))
    consumer = daemon.alert_consumer
    out: list[bytes] = []
    for i, (slot, frame) in enumerate(zip(fs.venue, fs.frames, strict=True)):
        by_slot[slot](frame, T0_MS + i)
        while (alert := consumer.get_nowait()) is not None:
            out.append(msgspec.json.encode(alert))
    out.append(f"# {label}: state".encode())
    out.append(msgspec.json.encode(daemon.state.snapshot()))
    return out


def lines(frames_per_kind: int = 20_000, mix_frames: int = 60_000) -> list[bytes]:
    """The oracle's lines (see the module docstring)."""
    from streamer.config import CascadeSettings, FundingDivergenceSettings, Settings

    defaults = Settings().rules
    low = msgspec.structs.replace(defaults, funding_divergence=FundingDivergenceSettings(threshold_pct=0.012),
                                  liquidation_cascade=CascadeSettings(min_usd=200_000.0))
    with tempfile.TemporaryDirectory(prefix="streamer-oracle-") as root:
        return [*_corpus(frames_per_kind, root), *_mix(mix_frames, defaults, root, "latency mix, default rules"),
                *_mix(mix_frames, low, root, "latency mix, low cascade and divergence thresholds")]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.oracle", description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=20_000, help="frames per kind of the throughput corpus")
    p.add_argument("--mix", type=int, default=60_000, help="frames of the latency mix")
    args = p.parse_args(argv)
    out = lines(args.frames, args.mix)
    sys.stdout.buffer.write(b"\n".join(out) + b"\n")
    rules = Counter(msgspec.json.decode(line).get("rule") for line in out if line.startswith(b'{"type":"alert"'))
    print(f"{len(out)} lines; alerts by rule: {dict(sorted(rules.items()))}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
