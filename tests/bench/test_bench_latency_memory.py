"""The latency and memory benchmarks run in quick mode and report every field; timings are never checked."""

from __future__ import annotations

import json

from rich.console import Console

from bench import latency, memory

DIST_FIELDS = {"n", "p50_ms", "p99_ms", "max_ms"}


def _render(table) -> str:
    console = Console(width=240, record=True)
    console.print(table)
    return console.export_text()


def test_quick_latency_reports_every_rate_and_field():
    res = latency.run(quick=True)
    json.dumps(res)  # JSON-able
    assert [r["offered_fps"] for r in res["rates"]][: len(latency.QUICK["rates"])] == list(latency.QUICK["rates"])
    for r in res["rates"]:
        assert r["error"] is None, r["error"]
        for key in ("achieved_fps", "kept_up_fps", "frames_sent", "frames_on_bus", "frames_lost", "events_published",
                    "alerts_expected", "alerts_firing_seen", "alerts_missing", "consumer_dropped", "adapter_errors",
                    "sessions", "adapters", "holds"):
            assert key in r, key
        assert r["frames_sent"] > r["warmup_frames"] > 0
        assert r["frames_on_bus"] > 0
        assert r["alerts_expected"] > 0
        assert set(r["frame_to_bus"]) == DIST_FIELDS
        assert set(r["frame_to_alert"]) == DIST_FIELDS
        assert r["frame_to_bus"]["n"] > 0
        assert set(r["sessions"]) >= {"binance-um-0", "bybit-linear-0", "okx-public-0"}
    assert "saturation_fps" in res
    assert "first_failing_fps" in res
    assert {"rate_fps", "p99_frame_to_alert_ms", "limit_ms", "met"} <= set(res["target"])
    text = _render(latency.table(res))
    assert "saturation" in text
    assert "alert p99" in text


def test_quick_memory_reports_rss_breakdown_and_soak():
    res = memory.run(quick=True)
    json.dumps(res)
    assert res["instruments"] == memory.QUICK["instruments"]
    assert res["rss_full_bytes"] > res["rss_empty_pipeline_bytes"] > 0
    assert res["per_instrument_bytes"] > 0
    assert res["projected_rss_at_2000_bytes"] > 0
    assert {"state.funding", "state.liquidations", "state.open_interest", "dedupe"} <= set(res["breakdown_bytes"])
    structures = res["structures_after_fill"]
    assert structures["funding"]["keys"] == res["instruments"]
    assert structures["liquidation_keys"]["events"] > 0
    assert structures["open_interest"]["keys"] > 0
    soak = res["soak"]
    assert len(soak["samples"]) >= 3
    assert soak["slope_mb_per_min"] is not None
    assert isinstance(soak["growing"], bool)
    assert {"limit_mb", "rss_mb", "met", "soak_flat"} <= set(res["target"])
    text = _render(memory.table(res))
    assert "per instrument" in text
    assert "soak slope" in text
