"""MemoryBus: sync dispatch order, bounded consumer queues, overflow counted exactly, never waits."""

from __future__ import annotations

import asyncio

import pytest

from streamer.bus import EVENT_TYPES, Bus, ConsumerClosedError, event_type
from streamer.bus.memory import MemoryBus
from streamer.model import Alert, Funding, Liquidation

T0 = 1_700_000_000_000


def liq(n: int) -> Liquidation:
    return Liquidation(
        exchange="binance",
        symbol="BTC-USDT-PERP",
        raw_symbol="BTCUSDT",
        ts=T0 + n,
        recv_ts=T0 + n,
        side="long",
        price=60_000.0,
        qty=0.1,
        value_usd=6_000.0,
    )


def fund(n: int) -> Funding:
    return Funding(
        exchange="okx", symbol="BTC-USDT-PERP", raw_symbol="BTC-USDT-SWAP", ts=T0 + n, recv_ts=T0 + n, rate=1e-4
    )


def alert(n: int) -> Alert:
    return Alert(
        id=f"a{n}",
        rule="large_liquidation",
        status="firing",
        severity="warning",
        exchange="binance",
        symbol="BTC-USDT-PERP",
        value=1e6,
        threshold=1e6,
        window_s=0.0,
        started_at=T0 + n,
        ts=T0 + n,
        summary="s",
    )


def drain(consumer) -> list:
    out = []
    while (ev := consumer.get_nowait()) is not None:
        out.append(ev)
    return out


def test_handlers_run_in_registration_order_before_consumers_are_offered():
    bus = MemoryBus()
    seen: list[str] = []
    cons = bus.consumer("c", maxsize=10)
    bus.add_handler(lambda ev: seen.append(f"first:{cons.qsize}"))
    bus.add_handler(lambda ev: seen.append(f"second:{cons.qsize}"))

    bus.publish(liq(1))

    assert seen == ["first:0", "second:0"]
    assert cons.qsize == 1


def test_handler_exception_propagates_and_the_bus_keeps_working():
    bus = MemoryBus()
    calls: list[int] = []

    def boom(ev):
        if ev.ts == T0 + 1:
            raise RuntimeError("bug")
        calls.append(ev.ts)

    bus.add_handler(boom)
    with pytest.raises(RuntimeError, match="bug"):
        bus.publish(liq(1))
    bus.publish(liq(2))

    assert calls == [T0 + 2]


def test_drop_oldest_discards_the_oldest_and_counts_each_drop():
    bus = MemoryBus()
    cons = bus.consumer("sse", maxsize=3, overflow="drop_oldest")

    for n in range(5):
        bus.publish(liq(n))

    assert cons.dropped == 2
    assert cons.qsize == 3
    assert [ev.ts for ev in drain(cons)] == [T0 + 2, T0 + 3, T0 + 4]


def test_drop_newest_keeps_the_queued_prefix_and_counts_each_drop():
    bus = MemoryBus()
    cons = bus.consumer("recorder", maxsize=3, overflow="drop_newest")

    for n in range(5):
        bus.publish(liq(n))

    assert cons.dropped == 2
    assert [ev.ts for ev in drain(cons)] == [T0 + 0, T0 + 1, T0 + 2]
    bus.publish(liq(9))  # room again
    assert [ev.ts for ev in drain(cons)] == [T0 + 9]
    assert cons.dropped == 2


def test_drops_are_counted_per_consumer():
    bus = MemoryBus()
    small = bus.consumer("small", maxsize=1, overflow="drop_newest")
    large = bus.consumer("large", maxsize=100, overflow="drop_oldest")

    for n in range(4):
        bus.publish(liq(n))

    assert (small.dropped, large.dropped) == (3, 0)
    assert (small.qsize, large.qsize) == (1, 4)


def test_type_filter_queues_only_wanted_types_and_filtered_events_are_not_drops():
    bus = MemoryBus()
    alerts = bus.consumer("stdout", maxsize=2, overflow="drop_newest", types=["alert"])

    bus.publish(liq(1))
    bus.publish(fund(2))
    bus.publish(alert(3))

    assert [type(ev).__name__ for ev in drain(alerts)] == ["Alert"]
    assert alerts.dropped == 0


def test_publish_from_a_handler_is_dispatched_after_the_current_event():
    bus = MemoryBus()
    cons = bus.consumer("all", maxsize=10)
    handled: list[str] = []

    def engine(ev):
        handled.append(event_type(ev))
        if isinstance(ev, Liquidation):
            bus.publish(alert(ev.ts - T0))

    def state(ev):
        handled.append("state:" + event_type(ev))

    bus.add_handler(engine)
    bus.add_handler(state)
    bus.publish(liq(1))

    # The liquidation reaches every handler and consumer before the alert does.
    assert handled == ["liquidation", "state:liquidation", "alert", "state:alert"]
    assert [event_type(ev) for ev in drain(cons)] == ["liquidation", "alert"]


def test_stats_report_published_per_type_and_consumer_depth_maxsize_dropped():
    bus = MemoryBus()
    bus.add_handler(lambda ev: None)
    bus.consumer("a", maxsize=2, overflow="drop_oldest")
    bus.consumer("b", maxsize=5, overflow="drop_newest", types={"funding"})

    for n in range(3):
        bus.publish(liq(n))
    bus.publish(fund(3))

    stats = bus.stats()
    assert stats["published"] == 4
    assert stats["by_type"] == {"funding": 1, "liquidation": 3}
    assert stats["handlers"] == 1
    assert stats["consumers"]["a"] == {
        "depth": 2,
        "maxsize": 2,
        "overflow": "drop_oldest",
        "dropped": 2,
        "delivered": 0,
        "closed": False,
        "types": None,
    }
    assert stats["consumers"]["b"]["depth"] == 1
    assert stats["consumers"]["b"]["types"] == ["funding"]


def test_consumer_arguments_are_validated():
    bus: Bus = MemoryBus()  # MemoryBus implements the Bus protocol (checked by mypy)
    bus.consumer("x")
    with pytest.raises(ValueError, match="already exists"):
        bus.consumer("x")
    with pytest.raises(ValueError, match="maxsize"):
        bus.consumer("y", maxsize=0)
    with pytest.raises(ValueError, match="overflow"):
        bus.consumer("z", overflow="block")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown event types"):
        bus.consumer("w", types=["alerts"])
    assert "alert" in EVENT_TYPES


async def test_async_for_reads_in_order_and_ends_after_close_and_drain():
    bus = MemoryBus()
    cons = bus.consumer("sink", maxsize=10)
    for n in range(3):
        bus.publish(liq(n))
    bus.close()
    bus.publish(liq(99))  # after close: refused and counted

    got = [ev.ts async for ev in cons]

    assert got == [T0, T0 + 1, T0 + 2]
    assert cons.dropped == 1
    assert cons.delivered == 3
    with pytest.raises(ConsumerClosedError):
        await cons.get()


async def test_get_waits_for_the_next_publish():
    bus = MemoryBus()
    cons = bus.consumer("sink", maxsize=10)
    asyncio.get_running_loop().call_later(0.01, bus.publish, liq(7))

    ev = await asyncio.wait_for(cons.get(), timeout=2)

    assert ev.ts == T0 + 7


async def test_close_wakes_a_waiting_reader():
    bus = MemoryBus()
    cons = bus.consumer("sink", maxsize=10)
    asyncio.get_running_loop().call_later(0.01, bus.close)

    got = [ev async for ev in cons]

    assert got == []


async def test_cancelled_get_loses_no_event():
    bus = MemoryBus()
    cons = bus.consumer("sink", maxsize=10)
    waiter = asyncio.ensure_future(cons.get())
    await asyncio.wait([waiter], timeout=0.01)  # it is now waiting
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter

    bus.publish(liq(1))

    assert (await asyncio.wait_for(cons.get(), timeout=2)).ts == T0 + 1
