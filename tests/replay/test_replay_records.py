"""Replay of hand-made recordings: each ``start`` record begins a new pipeline, as a restarted process did."""

from __future__ import annotations

import io
import json

import msgspec

from streamer.config import LargeLiquidationSettings, RulesSettings
from streamer.record import Recorder
from streamer.replay import run_replay

T0 = 1796684700000
LIQ = ('{"stream":"btcusdt@forceOrder","data":{"e":"forceOrder","E":%d,"o":{"s":"BTCUSDT","S":"SELL","o":"LIMIT",'
       '"f":"IOC","q":"2","p":"60000","ap":"60000","X":"FILLED","l":"2","z":"2","T":%d}}}')


def rules(min_usd: float) -> dict:
    return msgspec.to_builtins(RulesSettings(large_liquidation=LargeLiquidationSettings(min_usd=min_usd)))


def record_two_runs(directory, first_min_usd: float, second_min_usd: float) -> list[str]:
    """Two recording processes in one directory; each receives the same $120K liquidation (a REST backfill
    repeating what the socket already delivered, say)."""
    rec = Recorder(directory, max_bytes=10**9, flush_s=0.05)
    rec.start()
    for run, min_usd in enumerate((first_min_usd, second_min_usd)):
        rec.start_marker(rules(min_usd), ["binance"])
        rec.link("binance", "binance-um-0", "um", True, T0 + run * 60_000)
        frame = (LIQ % (T0 + 1000, T0 + 1000)).encode()
        rec.ws("binance", "binance-um-0", "um", frame, T0 + run * 60_000 + 1500)
    rec.close()
    return sorted(str(p) for p in directory.iterdir())


async def replay(files, **kw) -> list[dict]:
    out = io.BytesIO()
    await run_replay(files, out=out, progress=False, err=io.StringIO(), **kw)
    return [json.loads(line) for line in out.getvalue().splitlines()]


async def test_each_start_record_begins_a_fresh_pipeline_with_that_runs_rules(tmp_path):
    files = record_two_runs(tmp_path, first_min_usd=50_000, second_min_usd=500_000)
    alerts = await replay(files)
    # run 1 ($50K floor) alerts on the $120K liquidation; run 2 ($500K floor) does not
    assert [(a["status"], a["value"], a["threshold"]) for a in alerts] == [
        ("firing", 120_000.0, 50_000.0), ("resolved", 120_000.0, 50_000.0)]


async def test_a_restarted_pipeline_forgets_the_liquidations_it_deduplicated(tmp_path):
    files = record_two_runs(tmp_path, first_min_usd=50_000, second_min_usd=50_000)
    alerts = await replay(files)
    # two processes each printed the alert: the second had its own deduper (one pipeline would drop it)
    assert [a["status"] for a in alerts] == ["firing", "resolved", "firing", "resolved"]
    assert alerts[0]["id"] == alerts[2]["id"]
    # coverage from each run's own link marker: run 1's socket opened 1 s before the liquidation's event time
    # (the whole 1 s window), run 2's only after it
    assert alerts[0]["details"]["coverage"]["binance"]["socket_up_share"] == 1.0
    assert alerts[2]["details"]["coverage"]["binance"]["socket_up_share"] == 0.0


async def test_rules_given_on_the_command_line_apply_to_every_run(tmp_path):
    files = record_two_runs(tmp_path, first_min_usd=50_000, second_min_usd=500_000)
    alerts = await replay(files, rules=RulesSettings(large_liquidation=LargeLiquidationSettings(min_usd=100_000)))
    assert [(a["status"], a["threshold"]) for a in alerts] == [
        ("firing", 100_000.0), ("resolved", 100_000.0), ("firing", 100_000.0), ("resolved", 100_000.0)]
