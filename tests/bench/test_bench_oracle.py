"""``bench.oracle`` (the alerts-unchanged check of performance work) must be deterministic: two runs in one
process give the same bytes, whatever a previous run left in the default state dir."""

from __future__ import annotations

import msgspec

from bench.oracle import lines


def test_oracle_is_byte_for_byte_repeatable_and_covers_the_liquidation_and_funding_rules():
    first = lines(frames_per_kind=300, mix_frames=3000)
    second = lines(frames_per_kind=300, mix_frames=3000)
    assert first == second
    rules = {msgspec.json.decode(line)["rule"] for line in first if line.startswith(b'{"type":"alert"')}
    assert rules == {"extreme_funding", "funding_divergence", "large_liquidation", "liquidation_cascade"}
    # one state snapshot per throughput kind and per latency-mix run
    assert sum(1 for line in first if line.startswith(b"# ")) == 12 + 2
