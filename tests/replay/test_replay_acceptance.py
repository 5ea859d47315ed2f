"""Issue 11's acceptance: a recorded demo run, replayed, prints byte-identical alerts (same ids, same order,
same bytes) to what the live run printed on stdout; ``--rules`` with a changed threshold shows what those
thresholds would have raised instead.

One live demo (a real subprocess, stopped by SIGTERM, which must leave valid zstd files) is shared by the
tests of this module.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
import zstandard

from streamer.record import Start, read_records, recording_files

ROOT = Path(__file__).resolve().parents[2]
LIVE_S = 35.0


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def _zstd_frames(path: Path) -> int:
    """Complete zstd frames in a file; fails on a truncated or trailing partial frame."""
    data = path.read_bytes()
    frames = 0
    while data:
        obj = zstandard.ZstdDecompressor().decompressobj()
        obj.decompress(data)
        assert obj.eof, f"{path}: truncated zstd frame after {frames} complete ones"
        data = obj.unused_data
        frames += 1
    return frames


@pytest.fixture(scope="module")
def live_run(tmp_path_factory) -> tuple[bytes, list[Path], Path]:
    """A live demo with --record, stopped by SIGTERM after LIVE_S seconds: (stdout, recording files, dir)."""
    rec = tmp_path_factory.mktemp("rec")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamer", "demo", "--duration", "300", "--http", "127.0.0.1:0", "--record",
         str(rec)],
        cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        time.sleep(LIVE_S)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err.decode()[-2000:]
    return out, recording_files(rec), rec


def _replay(files: list[Path], *extra: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "streamer", "replay", *map(str, files), *extra], cwd=ROOT,
                          env=_env(), capture_output=True, timeout=120, check=False)


@pytest.mark.timeout(180)
def test_sigterm_leaves_every_recording_file_a_complete_zstd_stream(live_run):
    _, files, _ = live_run
    assert files, "the demo recorded nothing"
    for path in files:
        assert _zstd_frames(path) >= 1
    records = [r for path in files for r in read_records(path)]
    assert isinstance(records[0], Start)
    kinds = {type(r).__name__ for r in records}
    assert kinds == {"Start", "Ws", "Rest", "Inst", "Link"}


@pytest.mark.timeout(180)
def test_replay_of_a_recorded_demo_prints_byte_identical_alerts(live_run):
    live, files, _ = live_run
    lines = live.splitlines()
    rules = [json.loads(line)["rule"] for line in lines]
    # the scripted market fires a cascade (with coverage from the link markers) and a funding spike by 35 s
    assert "liquidation_cascade" in rules, rules
    assert "extreme_funding" in rules, rules
    cascade = next(json.loads(line) for line in lines if b"liquidation_cascade" in line)
    assert set(cascade["details"]["coverage"]) >= {"binance", "okx"}
    replayed = _replay(files)
    assert replayed.returncode == 0, replayed.stderr.decode()
    assert replayed.stdout == live
    assert f"alerts {len(lines)} ".encode() in replayed.stderr


@pytest.mark.timeout(180)
def test_replay_with_a_cascade_threshold_out_of_reach_drops_exactly_the_cascade_alerts(live_run, tmp_path):
    live, files, _ = live_run
    start = next(read_records(files[0]))
    assert isinstance(start, Start)
    rules = dict(start.rules)
    rules["liquidation_cascade"] = {**rules["liquidation_cascade"], "min_usd": 1e15}
    config = tmp_path / "other.yaml"
    config.write_text(yaml.safe_dump({"rules": rules}))
    replayed = _replay(files, "--rules", str(config))
    assert replayed.returncode == 0, replayed.stderr.decode()
    expected = [line for line in live.splitlines() if json.loads(line)["rule"] != "liquidation_cascade"]
    assert len(expected) < len(live.splitlines())
    assert replayed.stdout.splitlines() == expected


@pytest.mark.timeout(180)
def test_replay_with_a_lower_funding_threshold_fires_funding_alerts_the_live_run_did_not(live_run, tmp_path):
    live, files, _ = live_run
    start = next(read_records(files[0]))
    rules = dict(start.rules)
    low = rules["extreme_funding"]["threshold_pct"] / 10
    rules["extreme_funding"] = {**rules["extreme_funding"], "threshold_pct": low}
    config = tmp_path / "low.yaml"
    config.write_text(yaml.safe_dump({"rules": rules}))
    replayed = _replay(files, "--rules", str(config))
    assert replayed.returncode == 0, replayed.stderr.decode()
    def firing(out: bytes) -> list[dict]:
        alerts = [json.loads(x) for x in out.splitlines()]
        return [a for a in alerts if a["rule"] == "extreme_funding" and a["status"] == "firing"]

    new = firing(replayed.stdout)
    assert len(new) > len(firing(live))
    for alert in new:  # threshold in the alert is a fraction: threshold_pct / 100
        assert alert["threshold"] == pytest.approx(low / 100)
        assert abs(alert["value"]) >= alert["threshold"]
