"""NatsBus against a real nats-server: subjects, message ids, dedup, durable resume, buffering."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from streamer.bus.nats import NatsBus, NatsOptions, msg_id, subject_for, subject_token
from streamer.model import Alert, Funding, Liquidation, OptionTicker
from tests.conftest import eventually


def liq(ts: int, *, recv_ts: int = 0, price: float = 100.0, exchange: str = "binance") -> Liquidation:
    return Liquidation(exchange=exchange, symbol="BTC-USDT-PERP", raw_symbol="BTCUSDT", ts=ts, recv_ts=recv_ts,
                       side="long", price=price, qty=0.5, value_usd=price * 0.5)


def alert(status: str = "firing") -> Alert:
    return Alert(id="abc123", rule="large_liquidation", status=status, severity="warning", exchange="binance",
                 symbol="BTC-USDT-PERP", value=2e6, threshold=1e6, window_s=0, started_at=1, ts=1, summary="x")


def test_subjects_sanitize_tokens_and_null_exchange():
    opt = OptionTicker(exchange="okx", symbol="BTC-USD-20261225-0.625-C", raw_symbol="BTC-USD-261225-0.625-C",
                       ts=1, recv_ts=2, underlying="BTC", expiry="2026-12-25", strike=0.625, kind="C")
    assert subject_for(liq(1)) == "streamer.liquidation.binance.BTC-USDT-PERP"
    assert subject_for(opt) == "streamer.option_ticker.okx.BTC-USD-20261225-0_625-C"
    cross = Alert(id="i", rule="funding_divergence", status="firing", severity="info", exchange=None,
                  symbol="BTC-USDT-PERP", value=1, threshold=1, window_s=0, started_at=1, ts=1, summary="")
    assert subject_for(cross) == "streamer.alert.funding_divergence._.BTC-USDT-PERP"
    assert subject_token("a b*c>d.e") == "a_b_c_d_e"
    assert subject_token(None) == "_"


def test_message_id_is_the_natural_key_without_receive_time():
    assert msg_id(liq(1000, recv_ts=5)) == msg_id(liq(1000, recv_ts=9))
    assert msg_id(liq(1000)) == "liquidation:binance:BTCUSDT:1000:long:100.0:0.5"
    assert msg_id(liq(1000, price=101.0)) != msg_id(liq(1000))
    fund = Funding(exchange="bybit", symbol="BTC-USDT-PERP", raw_symbol="BTCUSDT", ts=7, recv_ts=8, rate=0.0001)
    assert msg_id(fund).startswith("funding:bybit:BTCUSDT:7:")
    assert msg_id(fund) == msg_id(msgspec.structs.replace(fund, recv_ts=99))  # read by another ingest
    assert msg_id(fund) != msg_id(msgspec.structs.replace(fund, rate=0.0002))  # another update, same ms
    assert msg_id(alert("resolved")) == "abc123:resolved"


def options(url: str, **kw: object) -> NatsOptions:
    return NatsOptions(url=url, max_backoff_s=0.5, publish_timeout_s=1.0, **kw)  # type: ignore[arg-type]


async def test_two_publishers_of_the_same_events_are_stored_once_and_consumed_once(nats_server):
    a = NatsBus(options(nats_server.url), consume=False)
    b = NatsBus(options(nats_server.url), consume=False)
    agg = NatsBus(options(nats_server.url), publish_market=False)
    seen: list[Liquidation] = []
    agg.add_handler(lambda ev: seen.append(ev) if isinstance(ev, Liquidation) else None)
    for bus in (a, b, agg):
        await bus.start()
    try:
        for ts in range(1000, 1100):
            a.publish(liq(ts, recv_ts=1))
            b.publish(liq(ts, recv_ts=2))  # the same facts, read at another time
        assert await a.flush(10)
        assert await b.flush(10)
        await eventually(lambda: len(seen) >= 100, within_s=10)
        await asyncio.sleep(0.5)
        assert sorted(ev.ts for ev in seen) == list(range(1000, 1100))
        stats_a, stats_b = a.stats()["nats"], b.stats()["nats"]
        assert stats_a["published"] + stats_b["published"] == 200
        assert stats_a["duplicates"] + stats_b["duplicates"] == 100
        await eventually(lambda: agg.stats()["nats"]["acked"] == 100, within_s=5)
        assert a.stats()["by_type"] == {"liquidation": 100}
    finally:
        for bus in (a, b, agg):
            await bus.aclose()


async def test_durable_consumer_resumes_after_the_last_ack(nats_server):
    pub = NatsBus(options(nats_server.url), consume=False)
    await pub.start()
    first: list[int] = []
    agg = NatsBus(options(nats_server.url), publish_market=False)
    agg.add_handler(lambda ev: first.append(ev.ts))
    await agg.start()
    try:
        for ts in range(10):
            pub.publish(liq(ts))
        await eventually(lambda: len(first) == 10 and agg.stats()["nats"]["acked"] == 10, within_s=10)
        await agg.aclose()
        for ts in range(10, 25):
            pub.publish(liq(ts))
        assert await pub.flush(10)
        second: list[int] = []
        agg = NatsBus(options(nats_server.url), publish_market=False)
        agg.add_handler(lambda ev: second.append(ev.ts))
        await agg.start()
        await eventually(lambda: len(second) >= 15, within_s=10)
        await asyncio.sleep(0.3)
        assert second == list(range(10, 25))
    finally:
        await pub.aclose()
        await agg.aclose()


async def test_alerts_reach_local_consumers_once_per_id_and_status(nats_server):
    agg = NatsBus(options(nats_server.url), publish_market=False)
    out = agg.consumer("stdout", types=["alert"])
    await agg.start()
    try:
        agg.publish(alert("firing"))
        agg.publish(alert("firing"))  # the same id:status again (a redelivered event re-raised it)
        agg.publish(alert("resolved"))
        got = [await asyncio.wait_for(out.get(), 10) for _ in range(2)]
        assert [(a.id, a.status) for a in got] == [("abc123", "firing"), ("abc123", "resolved")]
        await agg.flush(5)
        assert agg.stats()["nats"]["alerts_suppressed"] == 1
    finally:
        await agg.aclose()
    # a restarted aggregator knows what the stream holds: the same alert is not shown again
    again = NatsBus(options(nats_server.url), publish_market=False)
    out2 = again.consumer("stdout", types=["alert"])
    await again.start()
    try:
        assert await again.wait_connected(10)
        again.publish(alert("firing"))
        assert await again.flush(5)
        assert out2.qsize == 0
        assert again.stats()["nats"]["alerts_suppressed"] == 1
    finally:
        await again.aclose()


async def test_events_not_acked_before_a_crash_are_redelivered_and_their_alerts_not_shown_twice(nats_server):
    pub = NatsBus(options(nats_server.url), consume=False)
    await pub.start()
    for ts in range(5):
        pub.publish(liq(ts))
    assert await pub.flush(10)
    await pub.aclose()

    def aggregator() -> tuple[NatsBus, object]:
        bus = NatsBus(options(nats_server.url, ack_wait_s=1.0), publish_market=False)
        out = bus.consumer("stdout", types=["alert"])

        def rule(ev: object) -> None:  # one alert per liquidation, id from the liquidation
            if isinstance(ev, Liquidation):
                bus.publish(msgspec.structs.replace(alert(), id=f"liq-{ev.ts}", ts=ev.ts))

        bus.add_handler(rule)
        return bus, out

    first, out1 = aggregator()
    first._ack_ready = lambda: None  # the crash: processed, alerts stored, never acked
    await first.start()
    await eventually(lambda: out1.qsize == 5, within_s=10)
    assert await first.flush(5)
    await first.aclose()
    second, out2 = aggregator()
    await second.start()
    try:
        await eventually(lambda: second.stats()["nats"]["redeliveries"] == 5, within_s=10)
        assert await second.flush(5)
        await eventually(lambda: second.stats()["nats"]["acked"] == 5, within_s=5)
        assert out2.qsize == 0  # the alerts of the redelivered events were shown before the crash
        assert second.stats()["nats"]["alerts_suppressed"] == 5
    finally:
        await second.aclose()


async def test_a_handler_that_raises_is_counted_and_the_next_events_still_flow(nats_server):
    pub = NatsBus(options(nats_server.url), consume=False)
    agg = NatsBus(options(nats_server.url), publish_market=False)
    seen: list[int] = []

    def handler(ev: Liquidation) -> None:
        if ev.ts == 2:
            raise RuntimeError("bug")
        seen.append(ev.ts)

    agg.add_handler(handler)
    await pub.start()
    await agg.start()
    try:
        for ts in range(5):
            pub.publish(liq(ts))
        await eventually(lambda: agg.stats()["nats"]["acked"] == 5, within_s=10)
        assert seen == [0, 1, 3, 4]
        assert agg.stats()["nats"]["handler_errors"] == 1
    finally:
        await pub.aclose()
        await agg.aclose()


async def test_publisher_buffers_while_the_server_is_down_and_sends_after(nats_server):
    pub = NatsBus(options(nats_server.url), consume=False)
    await pub.start()
    try:
        assert await pub.wait_connected(10)
        nats_server.stop()
        for ts in range(50):
            pub.publish(liq(ts))
        await asyncio.sleep(1.0)
        assert pub.stats()["nats"]["buffered"] == 50
        nats_server.start()
        assert await pub.flush(20)
        got: list[int] = []
        agg = NatsBus(options(nats_server.url), publish_market=False)
        agg.add_handler(lambda ev: got.append(ev.ts))
        await agg.start()
        await eventually(lambda: len(got) >= 50, within_s=10)
        assert sorted(got) == list(range(50))
        await agg.aclose()
    finally:
        await pub.aclose()


async def test_a_full_buffer_drops_the_oldest_and_counts_it(nats_server):
    nats_server.stop()
    pub = NatsBus(options(nats_server.url, buffer_size=10), consume=False)
    await pub.start()
    try:
        for ts in range(25):
            pub.publish(liq(ts))
        stats = pub.stats()["nats"]
        assert (stats["buffered"], stats["buffer_dropped"]) == (10, 15)
    finally:
        await pub.aclose(flush_timeout_s=0.1)


@pytest.mark.parametrize("bad", ["a.b", "x y"])
def test_config_rejects_a_stream_name_nats_cannot_hold(tmp_path, bad):
    from streamer.config import ConfigError, load_settings

    path = tmp_path / "c.yaml"
    path.write_text(f"bus: {{backend: nats, nats: {{stream: '{bad}'}}}}")
    with pytest.raises(ConfigError, match=r"bus\.nats\.stream"):
        load_settings(str(path))


@pytest.mark.parametrize("role", ["ingest", "aggregate"])
def test_a_split_role_on_the_memory_bus_stops_with_exit_2_naming_the_fix(role):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "streamer", "run", "--role", role], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == (f"streamer run: --role {role} needs bus.backend: nats (the in-memory bus "
                                   "connects nothing across processes); see docs/nats.md")


def test_metrics_expose_the_nats_counters_of_the_snapshot():
    from prometheus_client import generate_latest

    from streamer.metrics import make_registry

    registry = make_registry(lambda: {"bus": {"nats": {"published": 7, "duplicates": 3, "buffered": 2,
                                                       "connected": True}}})
    text = generate_latest(registry).decode()
    assert "streamer_nats_published_total 7.0" in text
    assert "streamer_nats_duplicates_total 3.0" in text
    assert "streamer_nats_buffered 2.0" in text
    assert "streamer_nats_connected 1.0" in text
    assert "streamer_nats_buffer_dropped_total 0.0" in text
