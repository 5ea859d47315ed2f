"""One-shot snapshots against the simulator: numbers checked against the simulator's own market state."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from streamer.model import Funding, Liquidation, OpenInterest, OptionTicker, Ticker
from streamer.sim import SimServer
from streamer.sim.venues.binance import long_account_share
from streamer.snapshot import Snapshot, VenueSnapshot, sim_snapshot, take_snapshot
from streamer.transport.rest import RestClient

REL = 2e-3  # the market moves between the fetch and the check (speed 1: milliseconds)


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    server = SimServer(seed=3, scenario="demo")
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def fast_rest() -> RestClient:
    """Retries without waiting: a failing venue gives up in milliseconds."""
    return RestClient(retry_backoff=lambda: iter([0.01, 0.01]), timeout_s=2.0, max_retry_wait_s=1.0)


async def snap(sim: SimServer, command: str, tmp_path: Path, bases: list[str] | None = None,
               rest: RestClient | None = None, **kw: object) -> Snapshot:
    own = rest is None
    client = rest or fast_rest()
    try:
        return await take_snapshot(command, bases or ["BTC"], sim_urls=sim.urls, cache_dir=tmp_path,  # type: ignore[arg-type]
                                   rest=client, wall_ms=sim.clock, **kw)  # type: ignore[arg-type]
    finally:
        if own:
            await client.close()


def venue(s: Snapshot, name: str) -> VenueSnapshot:
    return next(v for v in s.venues if v.exchange == name)


def current(v: VenueSnapshot, cls: type, raw: str) -> object:
    """The newest event of a type and raw symbol."""
    evs = [e for e in v.events if isinstance(e, cls) and e.raw_symbol == raw]
    assert evs, f"{v.exchange}: no {cls.__name__} for {raw}"
    return max(evs, key=lambda e: e.ts)


async def test_funding_normalized_per_interval(sim: SimServer, tmp_path: Path) -> None:
    s = await snap(sim, "funding", tmp_path, ["BTC", "SOL", "WIF"])
    assert s.command == "funding"
    assert s.bases == ["BTC", "SOL", "WIF"]
    assert [v.exchange for v in s.venues] == ["binance", "bybit", "okx", "deribit", "bitmex"]
    assert venue(s, "bitmex").status == "closed"
    assert "2026-09-23" in venue(s, "bitmex").notes[0]
    bn = venue(s, "binance")
    assert bn.status == "ok", bn.notes
    # Binance BTCUSDT: 8 h; WIFUSDT: 4 h (fundingInfo) -> rate_8h doubles the rate
    btc = current(bn, Funding, "BTCUSDT")
    assert btc.rate == pytest.approx(sim.market.state("BTCUSDT").funding_rate, rel=REL)
    assert btc.interval_h == 8
    assert btc.rate_8h == pytest.approx(btc.rate)
    assert btc.annualized == pytest.approx(btc.rate * 3 * 365)
    assert btc.next_funding_ts == sim.market.state("BTCUSDT").next_funding_ms
    wif = [e for e in bn.events if isinstance(e, Funding) and e.raw_symbol == "WIFUSDT"
           and e.ts > e.next_funding_ts - 1]
    wif_now = current(bn, Funding, "WIFUSDT")
    assert wif_now.interval_h == 4
    assert wif_now.rate_8h == pytest.approx(2 * wif_now.rate)
    history = [e for e in bn.events if isinstance(e, Funding) and e.raw_symbol == "BTCUSDT"
               and e.ts < s.as_of_ms - 1000]
    assert len(history) >= 3, "24 h of funding history"
    assert wif  # history rows of the 4 h symbol too
    # Bybit SOLUSDT: 4 h interval (instruments-info fundingInterval)
    by = venue(s, "bybit")
    sol = current(by, Funding, "SOLUSDT")
    assert sol.rate == pytest.approx(sim.market.book("bybit").state("SOLUSDT").funding_rate, abs=1e-6)  # 6 dp
    assert sol.interval_h == 4
    assert sol.rate_8h == pytest.approx(2 * sol.rate)
    # OKX: rate per 8 h from fundingTime / nextFundingTime, mark joined from mark-price
    ok = venue(s, "okx")
    okf = [e for e in ok.events if isinstance(e, Funding) and e.raw_symbol == "BTC-USDT-SWAP"
           and e.next_funding_ts and e.next_funding_ts > e.ts]
    assert okf
    assert okf[0].interval_h == 8
    book = sim.market.book("okx").state("BTC-USDT-SWAP")
    assert okf[0].rate == pytest.approx(book.funding_rate, rel=REL)
    assert okf[0].mark_price == pytest.approx(book.mark_price, rel=REL)
    # Deribit: continuous funding -> funding_8h, interval 8 h, no next time
    dr = current(venue(s, "deribit"), Funding, "BTC-PERPETUAL")
    assert dr.interval_h == 8
    assert dr.next_funding_ts is None
    # 24 h volume and OI for weighting
    assert any(isinstance(e, Ticker) and e.volume_24h_usd for e in bn.events)
    assert any(isinstance(e, OpenInterest) for e in bn.events)
    # WIF is listed only on Binance: a note on the others, their BTC data still there
    assert any("no WIF contracts" in n for n in ok.notes)
    assert ok.status == "ok"


async def test_oi_usd_for_linear_and_inverse(sim: SimServer, tmp_path: Path) -> None:
    s = await snap(sim, "oi", tmp_path)
    bn = venue(s, "binance")
    assert bn.status == "ok", bn.notes
    # inverse COIN-M: contracts x 100 USD
    cm = current(bn, OpenInterest, "BTCUSD_PERP")
    state = sim.market.state("BTCUSD_PERP")
    assert cm.oi_contracts == pytest.approx(state.open_interest, rel=REL)
    assert cm.oi_usd == pytest.approx(cm.oi_contracts * 100)
    assert cm.oi_base == pytest.approx(cm.oi_usd / state.mark_price, rel=REL)
    # linear UM: base coin x mark
    um = current(bn, OpenInterest, "BTCUSDT")
    st = sim.market.state("BTCUSDT")
    assert um.oi_base == pytest.approx(st.open_interest, rel=REL)
    assert um.oi_usd == pytest.approx(st.open_interest * st.mark_price, rel=REL)
    assert len([e for e in bn.events if isinstance(e, OpenInterest) and e.raw_symbol == "BTCUSDT"]) >= 100  # 7 d
    # OKX linear swap: contracts x ctVal 0.01
    ok = venue(s, "okx")
    okx_oi = [e for e in ok.events if isinstance(e, OpenInterest) and e.raw_symbol == "BTC-USDT-SWAP"]
    newest = max(okx_oi, key=lambda e: e.ts)
    assert newest.oi_base == pytest.approx(newest.oi_contracts * 0.01, rel=1e-6)
    assert min(e.ts for e in okx_oi) <= s.as_of_ms - 7 * 86_400_000 + 4 * 3_600_000
    # Bybit inverse: USD contracts
    by = venue(s, "bybit")
    inv = current(by, OpenInterest, "BTCUSD")
    assert inv.oi_usd == pytest.approx(inv.oi_contracts)
    # long/short account ratios where published
    ls = {(r.exchange, r.raw_symbol): r for v in s.venues for r in v.long_short}
    r = ls[("binance", "BTCUSDT")]
    share = long_account_share("BTCUSDT", r.ts)
    assert r.long_fraction == pytest.approx(share)
    assert r.ratio == pytest.approx(share / (1 - share), rel=1e-3)
    assert ("bybit", "BTCUSDT") in ls
    assert ("okx", "BTC") in ls
    assert any("no open-interest history" in n for n in venue(s, "deribit").notes)


async def test_basis_inputs(sim: SimServer, tmp_path: Path) -> None:
    s = await snap(sim, "basis", tmp_path)
    dr = venue(s, "deribit")
    future = next(i for i in dr.instruments if i.kind == "future")
    t = current(dr, Ticker, future.raw_symbol)
    st = sim.market.book("deribit").state(future.raw_symbol)
    assert t.mark_price == pytest.approx(st.mark_price, rel=REL)
    assert t.index_price == pytest.approx(st.index_price, rel=REL)
    ok = venue(s, "okx")
    fut = next(i for i in ok.instruments if i.kind == "future")
    okt = current(ok, Ticker, fut.raw_symbol)
    assert okt.mark_price, "OKX mark"
    assert okt.index_price, "OKX mark joined with its index"
    assert okt.index_price == pytest.approx(sim.market.book("okx").state(fut.raw_symbol).index_price, rel=REL)
    bn = venue(s, "binance")
    q = next(i for i in bn.instruments if i.kind == "future" and i.inverse)
    bt = current(bn, Ticker, q.raw_symbol)
    assert bt.mark_price == pytest.approx(sim.market.state(q.raw_symbol).mark_price, rel=REL)


async def test_options_three_expiries_with_deltas(sim: SimServer, tmp_path: Path) -> None:
    s = await snap(sim, "options", tmp_path)
    assert venue(s, "binance").status == "unsupported"
    for name in ("bybit", "okx", "deribit"):
        v = venue(s, name)
        rows = [e for e in v.events if isinstance(e, OptionTicker)]
        assert v.status == "ok", v.notes
        assert len({r.expiry for r in rows}) == 3, name
        assert all(r.mark_iv and r.delta is not None for r in rows), name
    dr = [e for e in venue(s, "deribit").events if isinstance(e, OptionTicker)]
    for r in dr:
        st = sim.market.book("deribit").state(r.raw_symbol)
        assert r.delta == pytest.approx(st.delta, abs=0.02)  # Black-76 from mark_iv vs the book's own greeks


async def test_liquidations_coverage_and_daemon(sim: SimServer, tmp_path: Path) -> None:
    s = await snap(sim, "liquidations", tmp_path, window_ms=3_600_000)
    for name in ("binance", "bybit"):
        v = venue(s, name)
        assert v.status == "unsupported"
        assert v.coverage == "unavailable"
        assert v.notes
    ok = venue(s, "okx")
    assert ok.coverage == "lower_bound"
    assert ok.coverage_from_ms is not None
    liqs = [e for e in ok.events if isinstance(e, Liquidation)]
    published = [p.liquidation for p in sim.market.book("okx").published()
                 if p.liquidation.trade_ms >= s.as_of_ms - 3_600_000 and p.liquidation.symbol.startswith("BTC-")]
    assert liqs
    assert len(liqs) == len(published)
    assert venue(s, "deribit").coverage in ("complete", "lower_bound")

    # a daemon serving /state/recent_liquidations
    now = sim.clock()
    row = {"type": "liquidation", "exchange": "bybit", "symbol": "BTC-USDT-PERP", "raw_symbol": "BTCUSDT",
           "ts": now - 1000, "recv_ts": now, "side": "long", "price": 95000.0, "qty": 0.5, "value_usd": 47500.0}

    async def state(_r: web.Request) -> web.Response:
        return web.json_response({"events": [row], "dropped": 0, "since_ms": now - 7_200_000, "capacity": 5000})

    app = web.Application()
    app.router.add_get("/state/recent_liquidations", state)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        s2 = await snap(sim, "liquidations", tmp_path, ["BTC"], daemon_url=f"http://127.0.0.1:{port}",
                        exchanges=["binance", "bybit"])
    finally:
        await runner.cleanup()
    by = venue(s2, "bybit")
    assert by.status == "ok"
    assert by.coverage == "complete"
    assert len(by.events) == 1
    assert venue(s2, "binance").coverage == "lower_bound"
    assert not venue(s2, "binance").events


async def test_cache_hit_no_cache_and_stale(sim: SimServer, tmp_path: Path) -> None:
    rest = fast_rest()
    try:
        first = await snap(sim, "funding", tmp_path, rest=rest)
        sent = sum(v.requests for v in rest.stats().values())
        assert sent > 0
        assert all(v.status in ("ok", "closed") for v in first.venues)
        second = await snap(sim, "funding", tmp_path, rest=rest)
        assert sum(v.requests for v in rest.stats().values()) == sent, "within the TTLs: no HTTP at all"
        assert all(v.from_cache for v in second.ok_venues())
        third = await snap(sim, "funding", tmp_path, rest=rest, no_cache=True)
        assert sum(v.requests for v in rest.stats().values()) > sent
        assert not any(v.stale for v in third.venues)
        # the venue fails now: the cached body is served, flagged stale
        sim.faults.rest_error(503, count=None, venue="okx")
        fourth = await snap(sim, "funding", tmp_path, rest=rest, no_cache=True, exchanges=["okx"])
    finally:
        await rest.close()
    ok = venue(fourth, "okx")
    assert ok.stale
    assert ok.status == "ok"
    assert any("cached copy" in n for n in ok.notes)


async def test_failing_venues_are_notes_not_exceptions(sim: SimServer, tmp_path: Path) -> None:
    await snap(sim, "options", tmp_path)  # instruments cached (1 h): the faults below hit the data calls
    sim.faults.rest_error(429, count=None, venue="okx", retry_after_s=0)
    sim.faults.rest_error(502, count=None, venue="deribit")
    sim.faults.rest_error(200, count=None, venue="bybit", body="<html>not json")
    s = await snap(sim, "basis", tmp_path)
    ok, dr, by = venue(s, "okx"), venue(s, "deribit"), venue(s, "bybit")
    assert ok.status == "error"
    assert any("rate-limited" in n for n in ok.notes)
    assert dr.status == "error"
    assert any("HTTP 502" in n for n in dr.notes)
    assert by.status == "error"
    assert any("unreadable" in n for n in by.notes)
    assert venue(s, "binance").status == "ok"


async def test_all_venues_down(sim: SimServer, tmp_path: Path) -> None:
    sim.faults.rest_error(503, count=None)
    s = await snap(sim, "funding", tmp_path / "empty")
    assert [v.status for v in s.venues] == ["error", "error", "error", "error", "closed"]
    assert all(v.notes for v in s.venues)
    assert not s.ok_venues()


async def test_unknown_symbol_answer_is_a_note(sim: SimServer, tmp_path: Path) -> None:
    await snap(sim, "basis", tmp_path, exchanges=["binance"])
    sim.faults.rest_error(400, count=None, venue="binance", path="*globalLongShortAccountRatio", code=-1121)
    s = await snap(sim, "oi", tmp_path, exchanges=["binance"])
    bn = venue(s, "binance")
    assert bn.status == "partial"
    assert any("HTTP 400" in n for n in bn.notes)
    assert any(isinstance(e, OpenInterest) for e in bn.events)


async def test_sim_snapshot_is_quick() -> None:
    s = await sim_snapshot("options", ["BTC"])
    assert s.elapsed_s < 3.0
    assert venue(s, "deribit").status == "ok"
