"""FaultPlan bookkeeping without a server: pending handshake faults per venue."""

from __future__ import annotations

import pytest

from streamer.sim.faults import FaultPlan


def test_pending_handshakes_counts_what_is_left_per_venue_and_shrinks_as_upgrades_take_them():
    plan = FaultPlan()
    plan.reject_handshakes(503, count=3, venue="deribit")
    plan.hang_handshakes(11.0, count=1, venue="bybit.linear")
    assert (plan.pending_handshakes("deribit"), plan.pending_handshakes("bybit"),
            plan.pending_handshakes("okx"), plan.pending_handshakes()) == (3, 1, 0, 4)
    fault = plan.take_handshake_fault("deribit.public", "/ws/api/v2")
    assert fault is not None
    assert (fault.status, fault.delay_s) == (503, 0.0)
    assert plan.pending_handshakes("deribit") == 2
    hung = plan.take_handshake_fault("bybit.linear", "/v5/public/linear")
    assert hung is not None
    assert (hung.status, hung.delay_s) == (503, 11.0)
    assert plan.take_handshake_fault("bybit.inverse", "/v5/public/inverse") is None
    assert (plan.pending_handshakes("bybit"), plan.stats["handshake_hang"], plan.stats["handshake_reject"]) == (0, 1, 1)


def test_pending_handshakes_counts_a_rule_for_every_venue_against_each_venue():
    plan = FaultPlan()
    plan.reject_handshakes(500, count=2)  # venue=None: any venue's next two upgrades
    assert (plan.pending_handshakes("okx"), plan.pending_handshakes()) == (2, 2)


FRAME = '{"e":"markPriceUpdate","E":1700000000000,"s":"BTCUSDT","p":"43000.5","r":-0.0001,"a":[1,2.5]}'


def test_spoil_makes_each_kind_of_garbage_from_a_real_frame():
    from streamer.sim.faults import HUGE, spoil

    assert spoil(FRAME, "truncated") == FRAME[:46]
    assert spoil(FRAME, "huge_numbers") == (f'{{"e":"markPriceUpdate","E":{HUGE},"s":"BTCUSDT","p":"{HUGE}",'
                                            f'"r":{HUGE},"a":[{HUGE},{HUGE}]}}')
    assert spoil(FRAME, "wrong_types") == '{"e":"markPriceUpdate","E":{},"s":"BTCUSDT","p":true,"r":{},"a":[{},{}]}'
    raw = spoil(FRAME, "invalid_utf8")
    assert isinstance(raw, bytes)
    assert raw.replace(b"\xff\xfe", b"") == FRAME.encode()
    with pytest.raises(UnicodeDecodeError):
        raw.decode()


def test_garbage_ratio_spoils_about_that_share_of_a_venues_data_frames_and_counts_them():
    plan = FaultPlan()
    assert plan.garbage_for("okx.public", FRAME) is None  # off by default: not even counted
    plan.garbage_ratio(0.1, venue="okx")
    spoiled = [plan.garbage_for("okx.public", FRAME) for _ in range(10_000)]
    assert all(plan.garbage_for("bybit.linear", FRAME) is None for _ in range(100))
    n = sum(s is not None for s in spoiled)
    assert 900 < n < 1100
    assert plan.stats["data_frames"] == 10_000
    assert sum(plan.stats[f"ratio_{k}"] for k in ("truncated", "huge_numbers", "wrong_types", "invalid_utf8")) == n
    plan.clear()
    assert plan.garbage_for("okx.public", FRAME) is None
    with pytest.raises(ValueError, match=r"ratio \(1.5\) must be within \[0, 1\]"):
        plan.garbage_ratio(1.5)
