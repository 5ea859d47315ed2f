"""Recorded frames and REST bodies -> exact events, for every venue (tests/frames/<venue>/cases/*.json).

Each case file holds the frames (or a REST body), the instrument files to load
first, and the exact expected events (or the FrameError reason a REST error body
must raise); floats compare with rel 1e-9. The cases were written from each
venue's documentation independently of the adapters; see each venue's
DECISIONS.md beside them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streamer.exchanges import ADAPTERS
from streamer.exchanges.base import FrameError
from streamer.model import encode_event

FRAMES = Path(__file__).parent.parent / "frames"
VENUES = sorted(p.name for p in FRAMES.iterdir() if (p / "cases").is_dir())
CASES = [(v, p) for v in VENUES for p in sorted((FRAMES / v / "cases").glob("*.json"))]


def _approx(expected: object) -> object:
    if isinstance(expected, float):
        return pytest.approx(expected, rel=1e-9, abs=1e-12)
    if isinstance(expected, dict):
        return {k: _approx(v) for k, v in expected.items()}
    if isinstance(expected, list):
        return [_approx(v) for v in expected]
    return expected


def run_case(venue: str, case: dict) -> list[dict]:
    adapter = ADAPTERS[venue]()
    root = FRAMES / venue
    for name in case.get("instruments", []):
        adapter.load_instruments((root / name).read_bytes())
    recv_ts = case["recv_ts"]
    if "rest" in case:
        rest = case["rest"]
        body = (root / rest["body_file"]).read_bytes()
        endpoint = rest["endpoint"]
        events = adapter.parse_rest(endpoint, body, recv_ts, **({"params": rest["params"]} if "params" in rest else {}))
    else:
        events = []
        for frame in case["frames"]:
            events.extend(adapter.parse(frame, recv_ts))
    return [json.loads(encode_event(e)) for e in events]


@pytest.mark.parametrize(("venue", "at_least"), [("binance", 40), ("bybit", 30), ("okx", 30), ("deribit", 15),
                                                 ("bitmex", 15)])
def test_there_are_recorded_cases_for_the_venue(venue, at_least):
    assert sum(1 for v, _ in CASES if v == venue) >= at_least


@pytest.mark.parametrize(("venue", "path"), CASES, ids=[f"{v}/{p.stem}" for v, p in CASES])
def test_recorded_case_yields_exact_events(venue: str, path: Path):
    case = json.loads(path.read_text())
    if venue not in ADAPTERS:
        pytest.fail(f"no adapter registered for {venue}")
    if "expected_error" in case:
        with pytest.raises(FrameError) as info:
            run_case(venue, case)
        assert info.value.reason == case["expected_error"]
        return
    assert run_case(venue, case) == _approx(case["expected"]), case.get("description", "")
