"""``streamer record --config FILE`` as a process against the simulator, and ``replay --speed`` pacing."""

from __future__ import annotations

import asyncio
import gzip
import io
import os
import signal
import sys
import time
from pathlib import Path

import msgspec
import pytest
import yaml

from streamer.demo import demo_settings
from streamer.record import Inst, Link, Rest, Start, Ws, read_records, recording_files
from streamer.replay import run_replay
from streamer.sim import SimServer

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(90)
async def test_record_process_records_every_venue_and_closes_cleanly_on_sigterm(tmp_path):
    rec = tmp_path / "rec"
    async with SimServer(seed=3, scenario="calm") as sim:
        settings = demo_settings(sim.urls, "127.0.0.1", 0, str(tmp_path / "state"))
        config = tmp_path / "streamer.yaml"
        config.write_text(yaml.safe_dump(msgspec.to_builtins(settings)))
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "streamer", "record", "--config", str(config), "--dir", str(rec),
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        try:
            await asyncio.sleep(8)
            proc.send_signal(signal.SIGTERM)
            _, err = await asyncio.wait_for(proc.communicate(), 30)
        finally:
            if proc.returncode is None:
                proc.kill()
    assert proc.returncode == 0, err.decode()[-2000:]
    assert f"streamer record: recording in {rec}".encode() in err
    # beside `streamer run` on the same config: its own state (instrument cache, episode journal), no HTTP
    assert (tmp_path / "state" / "record" / "instruments").is_dir()
    assert not (tmp_path / "state" / "instruments").exists()
    assert b"HTTP on http://" not in err  # the daemon logs this line (info) when it serves HTTP
    records = [r for path in recording_files(rec) for r in read_records(path)]
    assert isinstance(records[0], Start)
    assert records[0].venues == ["binance", "bybit", "deribit", "okx"]
    assert {r.ex for r in records if isinstance(r, Ws)} == {"binance", "bybit", "deribit", "okx"}
    assert {r.ex for r in records if isinstance(r, Inst)} == {"binance", "bybit", "deribit", "okx"}
    assert any(isinstance(r, Rest) for r in records)
    opened = {r.s for r in records if isinstance(r, Link) and r.since is not None}
    assert {"binance-um-0", "okx-public-0", "deribit-public-0"} <= opened
    # every frame is stamped no earlier than the connection it came on opened
    since = {r.s: r.since for r in records if isinstance(r, Link) and r.since is not None}
    assert all(r.ms >= since[r.s] for r in records if isinstance(r, Ws) and r.s in since)


async def test_speed_paces_the_replay_by_recorded_receive_time(tmp_path):
    msg = '{"table":"liquidation","action":"insert","data":[]}'
    path = tmp_path / "bitmex_2020-03-12.json.gz"
    with gzip.open(path, "wt") as fh:  # 2 s of recorded time
        fh.write(f"2020-03-12T13:00:00.0000000Z {msg}\n2020-03-12T13:00:02.0000000Z {msg}\n")

    async def timed(speed: float | None) -> float:
        started = time.monotonic()
        await run_replay([str(path)], speed=speed, out=io.BytesIO(), progress=False, err=io.StringIO())
        return time.monotonic() - started

    assert await timed(4.0) >= 0.5  # 2 s at 4x
    assert await timed(None) < 0.5
    with pytest.raises(ValueError, match=r"--speed 0: expected a factor > 0"):
        await timed(0)
