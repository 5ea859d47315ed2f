"""The real transport and the Binance adapter against the loopback simulator.

Reconnect after a server close, stall detection, resubscribe, the backoff reset
rule, 429 Retry-After, and the exchange-imposed lifetime close (Binance: 24 h,
shrunk here), each with the simulator speaking Binance's protocol.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from streamer.exchanges.base import FrameError, Stream
from streamer.exchanges.binance import BinanceAdapter
from streamer.model import Funding, Liquidation
from streamer.sim import SimServer
from streamer.sim.venues.binance import BinanceConfig
from streamer.transport.rest import RestClient, VenueLimits
from streamer.transport.ws import WsSession
from tests.conftest import eventually


def fast_backoff() -> Iterator[float]:
    delay = 0.02
    while True:
        yield delay
        delay = min(delay * 2, 0.2)


class Collector:
    """A session + adapter pair as the daemon wires it, recording events and frame errors."""

    def __init__(self, url: str, streams: list[Stream], **kwargs) -> None:
        self.adapter = BinanceAdapter()
        self.events: list = []
        self.frame_errors = 0
        keys = {(s.channel, s.raw_symbol): self.adapter.stream_key(s) for s in streams}
        self.keys = keys

        def on_frame(frame, recv_ms):
            try:
                events = self.adapter.parse(frame, recv_ms)
            except FrameError:
                self.frame_errors += 1
                return
            ch = self.adapter.last_channel
            if ch is not None and (ch, None) in keys:
                self.session.touch(keys[(ch, None)], recv_ms)
            self.events.extend(events)

        self.session = WsSession(name="binance-um-test", url=url, on_frame=on_frame,
                                 subscribe=lambda: self.adapter.subscribe(streams), backoff=fast_backoff,
                                 **kwargs)
        for s in streams:
            self.session.expect(keys[(s.channel, s.raw_symbol)], 1.0 if s.channel == "funding" else None)

    def of(self, kind: type) -> list:
        return [e for e in self.events if isinstance(e, kind)]


MARKS = [Stream("funding", None, "um")]


async def run_with(collector: Collector):
    task = asyncio.create_task(collector.session.run())
    return task


async def stop(task: asyncio.Task) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_session_resubscribes_and_flows_again_after_server_close(sim: SimServer):
    c = Collector(sim.urls["binance_um_ws"] + "/ws", MARKS)
    task = await run_with(c)
    try:
        await eventually(lambda: len(c.of(Funding)) > 0)
        assert await sim.faults.drop_connections("binance.um") == 1
        before = len(c.of(Funding))
        await eventually(lambda: c.session.stats().connects == 2 and len(c.of(Funding)) > before + 5)
        st = c.session.stats()
        assert (st.reconnects, st.state) == (1, "open")
        # the simulator saw the SUBSCRIBE again on the new connection: data flows without a new subscribe call
        assert c.frame_errors == 0
    finally:
        await stop(task)


async def test_abrupt_tcp_reset_is_survived(sim: SimServer):
    c = Collector(sim.urls["binance_um_ws"] + "/ws", MARKS)
    task = await run_with(c)
    try:
        await eventually(lambda: len(c.events) > 0)
        await sim.faults.drop_connections("binance.um", abrupt=True)
        before = len(c.events)
        await eventually(lambda: c.session.stats().connects == 2 and len(c.events) > before)
    finally:
        await stop(task)


async def test_stalled_socket_is_detected_and_replaced(sim: SimServer):
    # the simulator keeps the socket open and answers pings but withholds data
    c = Collector(sim.urls["binance_um_ws"] + "/ws", MARKS)
    task = await run_with(c)
    try:
        await eventually(lambda: len(c.of(Funding)) > 0)
        sim.faults.stall(30.0, "binance.um")
        t0 = time.monotonic()
        await eventually(lambda: c.session.stats().stalls == 1, within_s=10)
        detected_after = time.monotonic() - t0
        # stale after 3 x the 1 s mark-price cadence (plus the watchdog's check interval)
        assert 2.5 <= detected_after < 8.0
        sim.faults.clear()
        before = len(c.of(Funding))
        await eventually(lambda: len(c.of(Funding)) > before)
    finally:
        await stop(task)


async def test_quiet_liquidation_stream_alone_does_not_trip_the_watchdog(sim: SimServer):
    c = Collector(sim.urls["binance_um_ws"] + "/ws", [Stream("liquidations", "NOSUCHUSDT", "um")])
    task = await run_with(c)
    try:
        await c.session.wait_open()
        await asyncio.sleep(2.0)
        st = c.session.stats()
        assert (st.stalls, st.reconnects, st.connects) == (0, 0, 1)
    finally:
        await stop(task)


async def test_exchange_lifetime_close_reconnects_at_once(sim: SimServer):
    c = Collector(sim.urls["binance_um_ws"] + "/ws", MARKS)
    task = await run_with(c)
    try:
        await eventually(lambda: len(c.events) > 0)
        sim.faults.close_after(0.3, "binance.um", new_connections=True)
        await eventually(lambda: c.session.stats().connects >= 3, within_s=10)
        assert len(c.of(Funding)) > 0
    finally:
        await stop(task)


async def test_proactive_lifetime_reconnect_before_the_venue_closes():
    config = BinanceConfig(max_lifetime_s=5.0)
    async with SimServer(seed=2, binance=config) as server:
        c = Collector(server.urls["binance_um_ws"] + "/ws", MARKS, max_lifetime_s=1.0)
        task = await run_with(c)
        try:
            await eventually(lambda: c.session.stats().lifetime_reconnects >= 1, within_s=5)
            assert c.session.stats().state in ("open", "connecting", "subscribing")
        finally:
            await stop(task)


async def test_backoff_resets_only_after_a_connection_delivered_data(sim: SimServer):
    # three handshakes refused in a row: delays grow; then a connection delivers data and the next
    # failure starts again from the first delay.
    sim.faults.reject_handshakes(503, count=3, venue="binance.um")
    c = Collector(sim.urls["binance_um_ws"] + "/ws", MARKS)
    task = await run_with(c)
    try:
        await eventually(lambda: len(c.of(Funding)) > 0, within_s=10)
        grown = c.session.stats().backoff_delay_s
        assert grown is not None
        assert grown >= 0.08 * 0.5  # third delay of 0.02 x 2^n with equal jitter
        await sim.faults.drop_connections("binance.um")
        await eventually(lambda: c.session.stats().connects == 2)
        assert c.session.stats().backoff_delay_s == pytest.approx(0.02)
    finally:
        await stop(task)


async def test_garbage_frames_are_counted_and_the_socket_stays_up(sim: SimServer):
    c = Collector(sim.urls["binance_um_ws"] + "/ws", MARKS)
    task = await run_with(c)
    try:
        await eventually(lambda: len(c.events) > 0)
        for kind in ("truncated", "text", "wrong_types"):
            sim.faults.send_garbage(kind, "binance.um")
        await eventually(lambda: c.frame_errors >= 3)
        before = len(c.events)
        await eventually(lambda: len(c.events) > before)
        assert c.session.stats().connects == 1
    finally:
        await stop(task)


async def test_rest_429_retry_after_is_honoured(sim: SimServer):
    sim.faults.rest_error(429, count=1, path="*openInterest*", retry_after_s=1)
    adapter = BinanceAdapter()
    call = adapter.rest_open_interest("BTCUSDT")
    async with RestClient({"binance": VenueLimits(100, 40, "X-MBX-USED-WEIGHT-1M", 2400)},
                          retry_backoff=lambda: iter([0.01, 0.01, 0.01])) as rest:
        t0 = time.monotonic()
        body, recv_ms = await rest.get_json("binance", sim.urls["binance_um_rest"] + call.path, call.params)
        waited = time.monotonic() - t0
        stats = rest.stats()["binance"]
    [event] = adapter.parse_rest(call.endpoint, body, recv_ms)
    assert waited >= 1.0
    assert (stats.rate_limited_429, stats.requests, stats.ok) == (1, 2, 1)
    assert event.oi_base == pytest.approx(sim.market.state("BTCUSDT").open_interest, rel=1e-3)


async def test_cascade_liquidations_arrive_with_position_sides():
    async with SimServer(seed=3, scenario="cascade", speed=5.0) as server:
        c = Collector(server.urls["binance_um_ws"] + "/ws", [Stream("liquidations", None, "um")])
        task = await run_with(c)
        try:
            await eventually(lambda: sum(1 for e in c.of(Liquidation) if e.raw_symbol == "ETHUSDT") >= 10,
                             within_s=10)
        finally:
            await stop(task)
        eth = [e for e in c.of(Liquidation) if e.raw_symbol == "ETHUSDT"]
        pushed = {p.liquidation.trade_ms: p.liquidation for p in server.market.pushed
                  if p.liquidation.symbol == "ETHUSDT"}
        # the cascade's own (scripted) orders SELL: the positions liquidated are longs; background ones
        # may go either way, and each maps order side -> position side
        scripted = [e for e in eth if pushed[e.ts].scripted]
        assert len(scripted) >= 5
        assert {e.side for e in scripted} == {"long"}
        for e in eth:
            order = pushed[e.ts]  # ts is the order's trade time o.T
            assert e.side == ("long" if order.side == "SELL" else "short")
            assert e.qty == pytest.approx(order.qty, rel=1e-9)
            assert e.value_usd == pytest.approx(order.value_usd, rel=1e-6)
