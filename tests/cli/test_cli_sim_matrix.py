"""Every report command × level × format against the simulator, on a standing market clock, with the
numbers computed here from the simulator's own book state (never from our adapters or analytics):
funding normalization, OI in USD for linear and inverse contracts, annualized basis, and the option
chain's put/call ratio, max pain and ATM IV."""

from __future__ import annotations

import asyncio
import csv
import io
from pathlib import Path

import msgspec
import pytest

from streamer.report import BasisReport, FundingReport, OIReport, OptionsReport, build_report, render
from streamer.sim import SimServer
from streamer.snapshot import COMMANDS, Snapshot, take_snapshot
from streamer.transport.rest import RestClient

START = 1_795_500_000_000  # 2026-11-24 ~04:00 UTC; the market stands still at this time
DAY = 86_400_000


async def _take_all(cache: Path) -> tuple[SimServer, dict[str, Snapshot]]:
    sim = SimServer(seed=5, clock=lambda: START)
    await sim.start()
    rest = RestClient(retry_backoff=lambda: iter([0.01]), timeout_s=5.0)
    try:
        snaps = {c: await take_snapshot(c, ["BTC"], sim_urls=sim.urls, cache_dir=cache, rest=rest,
                                        wall_ms=sim.clock, window_ms=3_600_000) for c in COMMANDS}
    finally:
        await rest.close()
        await sim.stop()
    return sim, snaps  # the market stands still: its state is what the venues answered


@pytest.fixture(scope="module")
def snapshots(tmp_path_factory: pytest.TempPathFactory) -> tuple[SimServer, dict[str, Snapshot]]:
    return asyncio.run(_take_all(tmp_path_factory.mktemp("cache")))


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("level", [1, 2, 3])
@pytest.mark.parametrize("fmt", ["console", "json", "csv"])
def test_every_command_level_and_format_renders_the_simulators_answer(snapshots, command, level, fmt):
    _, snaps = snapshots
    report = build_report(snaps[command])
    out = render(report, level, fmt, width=120)
    assert out.strip()
    if fmt == "json":
        assert msgspec.json.decode(out, type=type(report)) == report
    elif fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(out)))
        assert rows
        assert all(r["exchange"] for r in rows)
    elif level == 1:
        assert out.startswith("BTC ")
        assert len(out.strip().splitlines()) == 1
    else:
        assert "BitMEX closed on 2026-09-23" in out


def test_funding_rate_8h_is_the_books_rate_normalized_to_8_hours(snapshots):
    sim, snaps = snapshots
    report = build_report(snaps["funding"])
    assert isinstance(report, FundingReport)
    rows = {(r.exchange, r.raw_symbol): r for r in report.rows}
    bn = rows[("binance", "BTCUSDT")]
    assert bn.rate == pytest.approx(sim.market.state("BTCUSDT").funding_rate, abs=5e-9)  # 8 decimals on the wire
    assert (bn.interval_h, bn.rate_8h) == (8, pytest.approx(bn.rate))
    assert bn.annualized == pytest.approx(bn.rate * 3 * 365)
    by = rows[("bybit", "BTCUSDT")]
    book = sim.market.book("bybit").state("BTCUSDT")
    assert by.rate == pytest.approx(book.funding_rate, abs=5e-7)  # Bybit prints 6 decimals
    # the OI-weighted average across venues, from each row's own OI in USD
    agg = report.aggregates[0]
    legs = [r for r in report.rows if r.rate_8h is not None and r.oi_usd]
    expected = sum(r.rate_8h * r.oi_usd for r in legs) / sum(r.oi_usd for r in legs)
    assert agg.oi_weighted.rate_8h == pytest.approx(expected, rel=1e-12)


def test_oi_in_usd_for_linear_and_inverse_contracts_from_the_book(snapshots):
    sim, snaps = snapshots
    report = build_report(snaps["oi"])
    assert isinstance(report, OIReport)
    rows = {(r.exchange, r.raw_symbol): r for r in report.rows}
    linear = rows[("binance", "BTCUSDT")]
    st = sim.market.state("BTCUSDT")
    assert linear.oi_base == pytest.approx(st.open_interest, rel=1e-9)
    assert linear.oi_usd == pytest.approx(st.open_interest * st.mark_price, rel=1e-6)
    inverse = rows[("binance", "BTCUSD_PERP")]
    cm = sim.market.state("BTCUSD_PERP")
    assert inverse.oi_contracts == pytest.approx(cm.open_interest)
    assert inverse.oi_usd == pytest.approx(cm.open_interest * 100.0, rel=1e-9)  # 100 USD per contract
    assert inverse.margin == "coin"
    assert linear.margin == "stablecoin"
    okx = rows[("okx", "BTC-USDT-SWAP")]
    ob = sim.market.book("okx").state("BTC-USDT-SWAP")
    assert okx.oi_base == pytest.approx(ob.open_interest * 0.01, rel=1e-9)  # ctVal 0.01 BTC


def test_annualized_basis_of_a_dated_future_from_the_book(snapshots):
    sim, snaps = snapshots
    report = build_report(snaps["basis"])
    assert isinstance(report, BasisReport)
    rows = {(r.exchange, r.raw_symbol): r for r in report.rows}
    (raw,) = [s for s in sim.market.instruments if s.startswith("BTCUSD_") and s != "BTCUSD_PERP"]
    fut = rows[("binance", raw)]
    st = sim.market.state(raw)
    basis = (st.mark_price - st.index_price) / st.index_price
    days = (sim.market.instruments[raw].delivery_ms - START) / DAY
    assert fut.basis == pytest.approx(basis, rel=1e-6, abs=1e-9)
    assert fut.days_to_expiry == pytest.approx(days, rel=1e-9)
    assert fut.annualized_basis == pytest.approx(basis * 365 / days, rel=1e-6)
    assert st.index_price == sim.market.state("BTCUSD_PERP").index_price  # the pair's index


def test_deribit_option_chain_pcr_max_pain_and_atm_iv_from_the_book(snapshots):
    sim, snaps = snapshots
    report = build_report(snaps["options"])
    assert isinstance(report, OptionsReport)
    book = sim.market.book("deribit")
    options = [(c, book.state(s)) for s, c in book.contracts.items() if c.kind == "option"]
    expiries = sorted({c.expiry_ms for c, _ in options})
    rows = [r for r in report.rows if r.exchange == "deribit"]
    assert [r.expiry_ms for r in rows] == expiries
    for row, expiry in zip(rows, expiries, strict=True):
        chain = [(c, st) for c, st in options if c.expiry_ms == expiry]
        puts = sum(st.open_interest for c, st in chain if c.option_type == "P")
        calls = sum(st.open_interest for c, st in chain if c.option_type == "C")
        assert row.pcr.open_interest == pytest.approx(puts / calls, rel=1e-3)  # OI printed to 0.1 BTC
        strikes = sorted({c.strike for c, _ in chain})

        def pain(s: float, chain=chain) -> float:
            return sum(st.open_interest * (max(0.0, s - c.strike) if c.option_type == "C" else max(0.0, c.strike - s))
                       for c, st in chain)

        assert row.max_pain is not None
        assert row.max_pain.strike == min(strikes, key=lambda s: (pain(s), s))
        # ATM IV: mean of call and put mark IV per strike, linear in strike at the forward
        fwd = chain[0][1].forward
        iv = {k: sum(st.mark_iv for c, st in chain if c.strike == k) / 2 for k in strikes}
        lo = max(k for k in strikes if k <= fwd)
        hi = min(k for k in strikes if k >= fwd)
        want = iv[lo] if hi == lo else iv[lo] + (iv[hi] - iv[lo]) * (fwd - lo) / (hi - lo)
        assert row.atm_iv == pytest.approx(want, abs=2e-4)  # Deribit prints IV to 0.01 %
