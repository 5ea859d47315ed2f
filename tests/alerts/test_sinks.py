"""StdoutSink: one parseable JSON line per alert, flushed; failures counted; end to end from the bus."""

from __future__ import annotations

import asyncio
import io
import json
from typing import Literal

from streamer.aggregate.state import LiveState
from streamer.alerts.rules import RuleEngine, default_rules
from streamer.alerts.sinks import StdoutSink
from streamer.bus.memory import MemoryBus
from streamer.model import Alert, Liquidation, decode_event

T0 = 1_700_000_000_000


def alert(n: int, status: Literal["firing", "resolved"] = "firing") -> Alert:
    return Alert(
        id=f"id{n}",
        rule="extreme_funding",
        status=status,
        severity="warning",
        exchange="okx",
        symbol="BTC-USDT-PERP",
        value=0.0012,
        threshold=0.001,
        window_s=0.0,
        started_at=T0,
        ts=T0 + n,
        summary="okx BTC-USDT-PERP: funding +0.1200% per 8h",
        details={"rate_8h": 0.0012},
    )


class FlushCountingStream(io.BytesIO):
    def __init__(self):
        super().__init__()
        self.flushes = 0
        self.lines_at_flush: list[int] = []

    def flush(self):
        self.flushes += 1
        self.lines_at_flush.append(self.getvalue().count(b"\n"))
        super().flush()


class BrokenStream(io.BytesIO):
    def __init__(self, fail_first: int):
        super().__init__()
        self.fail_first = fail_first

    def write(self, data):
        if self.fail_first:
            self.fail_first -= 1
            raise BrokenPipeError("reader went away")
        return super().write(data)


async def events(*items):
    for item in items:
        yield item


async def test_stdout_sink_writes_one_parseable_json_line_per_alert_and_flushes_each():
    stream = FlushCountingStream()
    sink = StdoutSink(stream)

    await sink.run(events(alert(1), alert(2, "resolved")))

    lines = stream.getvalue().split(b"\n")
    assert lines[-1] == b""
    parsed = [json.loads(line) for line in lines[:-1]]
    assert [(p["type"], p["id"], p["status"]) for p in parsed] == [
        ("alert", "id1", "firing"),
        ("alert", "id2", "resolved"),
    ]
    assert decode_event(lines[0]) == alert(1)
    assert stream.lines_at_flush == [1, 2]
    assert sink.stats() == {"written": 2, "errors": 0, "skipped": 0}


async def test_stdout_sink_counts_failed_writes_and_goes_on():
    stream = BrokenStream(fail_first=1)
    sink = StdoutSink(stream)

    await sink.run(events(alert(1), alert(2)))

    assert [json.loads(line)["id"] for line in stream.getvalue().splitlines()] == ["id2"]
    assert sink.stats() == {"written": 1, "errors": 1, "skipped": 0}


async def test_stdout_sink_skips_events_that_are_not_alerts():
    stream = io.BytesIO()
    sink = StdoutSink(stream)
    liq = Liquidation(
        exchange="binance",
        symbol="BTC-USDT-PERP",
        raw_symbol="BTCUSDT",
        ts=T0,
        recv_ts=T0,
        side="long",
        price=1.0,
        qty=1.0,
        value_usd=1.0,
    )

    await sink.run(events(liq, alert(1)))

    assert stream.getvalue().count(b"\n") == 1
    assert sink.stats()["skipped"] == 1


async def test_alerts_flow_from_rules_through_the_bus_to_the_sink():
    bus = MemoryBus()
    state = LiveState()
    engine = RuleEngine(default_rules(), state, emit=bus.publish)
    bus.add_handler(state.on_event)
    bus.add_handler(engine.on_event)
    consumer = bus.consumer("stdout", maxsize=1000, overflow="drop_newest", types=["alert"])
    stream = io.BytesIO()
    sink = StdoutSink(stream)
    task = asyncio.create_task(sink.run(consumer), name="sink:stdout")

    bus.publish(
        Liquidation(
            exchange="bybit",
            symbol="ETH-USDT-PERP",
            raw_symbol="ETHUSDT",
            ts=T0,
            recv_ts=T0,
            side="short",
            price=3000.0,
            qty=2000.0,
            value_usd=6_000_000.0,
        )
    )
    bus.close()
    await asyncio.wait_for(task, timeout=2)

    written = [decode_event(line) for line in stream.getvalue().splitlines()]
    assert [(a.rule, a.status) for a in written] == [
        ("liquidation_cascade", "firing"),
        ("large_liquidation", "firing"),
        ("large_liquidation", "resolved"),
    ]
    assert bus.stats()["by_type"] == {"alert": 3, "liquidation": 1}
    assert consumer.dropped == 0
