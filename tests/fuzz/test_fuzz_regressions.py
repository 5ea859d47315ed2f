"""Crashes the fuzzer found (fuzz/README.md), fixed: each frame now ends as events or a counted FrameError."""

from __future__ import annotations

import pytest

from streamer.exchanges import ADAPTERS
from streamer.exchanges.base import FrameError

CASES = [
    # bitmex.py: `action not in _ACTIONS` with a list action raised TypeError (unhashable)
    pytest.param("bitmex", '{"table":"instrument","action":[],"data":[{"symbol":"XBTUSD","openInterest":1}]}',
                 id="bitmex-action-list"),
    # bybit.py `_ms` → base.num: a 400-digit integer `ts` raised OverflowError (float(int)); found by the chaos
    # run's huge-number garbage, now FrameError("value")
    pytest.param("bybit", '{"topic":"allLiquidation.BTCUSD","type":"snapshot","ts":' + "9" * 400
                 + ',"data":[{"T":1790832602931,"s":"BTCUSD","S":"Sell","v":"12000","p":"84950.50"}]}',
                 id="bybit-huge-ts"),
    # invalid UTF-8 in a bytes frame: msgspec raises UnicodeDecodeError, now FrameError("utf8") everywhere
    *[pytest.param(v, frame, id=f"{v}-invalid-utf8")
      for v, frame in [("binance", b'{"e":"\xd2"}'), ("bybit", b'{"topic":"\xd2"}'), ("okx", b'{"event":"\xd2"}'),
                       ("deribit", b'{"jsonrpc":"\xd2"}'), ("bitmex", b'{"table":"\xd2"}')]],
]


@pytest.mark.parametrize(("venue", "frame"), CASES)
def test_fuzz_crash_frame_raises_only_frame_error(venue, frame):
    adapter = ADAPTERS[venue]()
    try:
        adapter.parse(frame, 1_700_000_000_000)
    except FrameError:
        pass
