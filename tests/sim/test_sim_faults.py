"""FaultPlan bookkeeping without a server: pending handshake faults per venue."""

from __future__ import annotations

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
