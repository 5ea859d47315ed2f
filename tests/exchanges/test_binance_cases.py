"""Recorded Binance frames and REST bodies -> exact events (tests/frames/binance/cases/*.json).

Each case file holds the frames (or a REST body), the instrument files to load
first, and the exact expected events; floats compare with rel 1e-9.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streamer.exchanges.binance import BinanceAdapter
from streamer.model import encode_event

FRAMES = Path(__file__).parent.parent / "frames" / "binance"
CASES = sorted((FRAMES / "cases").glob("*.json"))


def _approx(expected: object) -> object:
    if isinstance(expected, float):
        return pytest.approx(expected, rel=1e-9, abs=1e-12)
    if isinstance(expected, dict):
        return {k: _approx(v) for k, v in expected.items()}
    if isinstance(expected, list):
        return [_approx(v) for v in expected]
    return expected


def run_case(case: dict) -> list[dict]:
    adapter = BinanceAdapter()
    for name in case.get("instruments", []):
        adapter.load_instruments((FRAMES / name).read_bytes())
    recv_ts = case["recv_ts"]
    events = []
    if "rest" in case:
        body = (FRAMES / case["rest"]["body_file"]).read_bytes()
        events = adapter.parse_rest(case["rest"]["endpoint"], body, recv_ts)
    else:
        for frame in case["frames"]:
            events.extend(adapter.parse(frame, recv_ts))
    return [json.loads(encode_event(e)) for e in events]


def test_there_are_recorded_binance_cases():
    assert len(CASES) >= 20


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_binance_case_yields_exact_events(path: Path):
    case = json.loads(path.read_text())
    got = run_case(case)
    # ints stay ints: compare types of ts fields exactly, numbers approximately
    assert got == _approx(case["expected"]), case.get("description", "")
