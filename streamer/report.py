"""The one-shot reports behind ``streamer funding|oi|liquidations|options|basis``: build, then render.

``build_report(snapshot)`` turns a :class:`streamer.snapshot.Snapshot` into one msgspec Struct per
command (``FundingReport``, ``OIReport``, ``LiquidationsReport``, ``OptionsReport``,
``BasisReport``): per-venue rows and cross-venue aggregates, every number computed by
``streamer.aggregate.analytics`` (this module has no formula of its own), with the events' field
names and units: ratios are fractions (0.0001 = 0.01 %), changes named ``*_pct`` are percent, times
are ms since epoch (UTC), money is USD. Each report carries its venues' statuses and notes, the
staleness of their data, and ``alerts``: one human line per extreme value.

``render(report, level, fmt, width)`` is the only place where numbers are rounded and formatted:
console (rich; level 1 one line per base, 2 the standard tables, 3 the full dashboard), JSON
(``msgspec.json.encode(report)``; schemas in ``docs/cli-schemas/``, see :func:`json_schema`) and
CSV (one row per venue/instrument; the row's fields, nested ones as dotted names).
"""

from __future__ import annotations

import csv
import datetime as _dt
import inspect
import io
import re
from collections.abc import Iterable, Sequence
from typing import Any, Literal

import msgspec
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from streamer.aggregate.analytics import (
    DAY_MS,
    CascadeRisk,
    ExpirySummary,
    FundingAverage,
    FundingSpread,
    HeatBucket,
    IvExtreme,
    OIBreakdown,
    OptionChain,
    PutCallRatios,
    SideTotals,
    TermPoint,
    average_rate_8h,
    basis_term_structure,
    cascade_risk,
    funding_spread,
    heatmap_bucket_usd,
    iv_extreme,
    iv_term_structure,
    largest_liquidations,
    latest_by_key,
    liquidation_heatmap,
    liquidation_totals,
    liquidations_in_window,
    margin_type,
    oi_breakdown,
    oi_change_pct,
    oi_total_change_pct,
    oi_weights,
    premium,
    share_of,
    volume_weights,
    weighted_funding,
)
from streamer.config import RulesSettings
from streamer.model import Funding, Instrument, Liquidation, OpenInterest, OptionTicker, Ticker, funding_fields
from streamer.snapshot import Coverage, LongShortRatio, Snapshot, VenueStatus

__all__ = [
    "IV_EXTREME_HIGH",
    "IV_EXTREME_LOW",
    "OI_CHANGE_ALERT_PCT",
    "REPORT_TYPES",
    "BasisReport",
    "BasisRow",
    "BasisTermRow",
    "FundingAggregate",
    "FundingReport",
    "FundingRow",
    "LiquidationAggregate",
    "LiquidationVenueRow",
    "LiquidationsReport",
    "OIAggregate",
    "OIReport",
    "OIRow",
    "OptionsChainSummary",
    "OptionsExpiryRow",
    "OptionsReport",
    "Report",
    "VenueInfo",
    "build_report",
    "csv_columns",
    "json_schema",
    "render",
    "venue_failure_summary",
]

OI_CHANGE_ALERT_PCT = 10.0
"""Alert when a venue symbol's (or the total) open interest moved this much in 24 h, percent of
``oi_base`` (positions, not price). No rule setting exists for it yet (``oi_change`` rule)."""
IV_EXTREME_HIGH = 1.0
"""Alert when an expiry's ATM IV is at or above this (fraction: 1.0 = 100 %)."""
IV_EXTREME_LOW = 0.2
"""Alert when an expiry's ATM IV is at or below this (fraction: 0.2 = 20 %)."""
LARGEST_N = 10
"""Largest liquidation prints kept in the report (level 2 shows 5)."""
BITMEX_CLOSED = "BitMEX closed on 2026-09-23 04:00 UTC"

VENUE_NAMES = {"binance": "Binance", "bybit": "Bybit", "okx": "OKX", "deribit": "Deribit", "bitmex": "BitMEX"}
OPTION_VENUE_ORDER = ("deribit", "okx", "bybit", "binance", "bitmex")
"""Options: Deribit is the primary venue, then OKX, then Bybit."""


# =========================================================================== report types


class VenueInfo(msgspec.Struct, frozen=True, kw_only=True):
    """One requested venue: how its part of the snapshot went.

    Attributes:
        status: ``ok``, ``partial``, ``error``, ``unsupported`` or ``closed`` (``streamer.snapshot.VenueStatus``).
        notes: one-line human notes (a skipped symbol, a failed call, the closure of BitMEX...).
        stale: data older than its TTL (served from cache because a refetch failed); marked ``*``.
        from_cache: some response came from the on-disk cache.
        fetched_at_ms: when the oldest response in use was fetched, ms since epoch.
        age_s: ``as_of_ms - fetched_at_ms`` in seconds.
        coverage, coverage_from_ms: liquidations only (``complete``, ``lower_bound``, ``unavailable``;
            oldest time covered, ms).
    """

    exchange: str
    status: VenueStatus
    notes: list[str]
    stale: bool = False
    from_cache: bool = False
    fetched_at_ms: int | None = None
    age_s: float | None = None
    coverage: Coverage | None = None
    coverage_from_ms: int | None = None


class _Report(msgspec.Struct, frozen=True, kw_only=True):
    """Fields every report has: what was asked, when, how the venues answered, the alerts."""

    bases: list[str]
    as_of_ms: int
    elapsed_s: float
    venues: list[VenueInfo]
    alerts: list[str]


class FundingRow(msgspec.Struct, frozen=True, kw_only=True):
    """One perpetual's funding on one venue (the latest ``funding`` event of ``(exchange, symbol)``).

    Attributes:
        rate, interval_h, rate_8h, annualized, predicted_rate, next_funding_ts, mark_price,
            index_price: as in the ``funding`` event (fractions; ms).
        ts: the event time of that rate, ms.
        avg_rate_8h_24h: mean ``rate_8h`` of the settled history in the last 24 h
            (``analytics.average_rate_8h``; the current estimate excluded); ``history_samples`` counted.
        premium: ``(mark - index) / index`` (``analytics.premium``).
        oi_usd: USD open interest of the symbol (``analytics.oi_weights``): the OI weight.
        volume_24h_usd: 24 h USD volume (``analytics.volume_weights``): the volume weight.
        stale: the venue's data is older than its TTL.
    """

    exchange: str
    base: str
    symbol: str
    raw_symbol: str
    ts: int
    rate: float
    interval_h: float | None
    rate_8h: float | None
    annualized: float | None
    avg_rate_8h_24h: float | None
    history_samples: int
    predicted_rate: float | None
    next_funding_ts: int | None
    mark_price: float | None
    index_price: float | None
    premium: float | None
    oi_usd: float | None
    volume_24h_usd: float | None
    stale: bool


class FundingAggregate(msgspec.Struct, frozen=True, kw_only=True):
    """Funding of one base across venues.

    Attributes:
        reference_exchange, reference_symbol, reference_rate_8h: the leg with the largest USD open
            interest (the first venue with a rate when no OI is known): the level-1 headline.
        oi_weighted: ``analytics.weighted_funding`` with ``oi_weights`` (USD OI).
        volume_weighted: ``analytics.weighted_funding`` with ``volume_weights`` (24 h USD volume).
        spread: ``analytics.funding_spread``: the widest pair between venues and its annualized carry.
        oi_usd: total USD open interest of the legs (``analytics.oi_breakdown``); null without any.
        oi_change_24h_pct: ``analytics.oi_total_change_pct`` of ``oi_usd`` over 24 h, percent.
    """

    base: str
    venues: int
    reference_exchange: str | None
    reference_symbol: str | None
    reference_rate_8h: float | None
    oi_weighted: FundingAverage
    volume_weighted: FundingAverage
    spread: FundingSpread | None
    oi_usd: float | None
    oi_change_24h_pct: float | None


class FundingReport(_Report, frozen=True, kw_only=True):
    """``streamer funding``: per-venue funding rows and per-base aggregates."""

    command: Literal["funding"] = "funding"
    threshold_rate_8h: float
    rows: list[FundingRow]
    aggregates: list[FundingAggregate]


class OIRow(msgspec.Struct, frozen=True, kw_only=True):
    """One instrument's open interest on one venue (latest ``open_interest`` event, else ``ticker``).

    Attributes:
        oi_contracts, oi_base, oi_usd: as in the ``open_interest`` event (contracts as reported; base
            units; USD).
        oi_change_24h_pct, oi_change_7d_pct: ``analytics.oi_change_pct`` of ``oi_base`` (positions,
            not price), percent.
        long_short_ratio, long_fraction, short_fraction: the venue's published long/short account
            ratio, where it publishes one.
        margin: ``coin`` or ``stablecoin`` (``analytics.margin_type``); null when unknown.
    """

    exchange: str
    base: str
    symbol: str
    raw_symbol: str
    ts: int
    oi_contracts: float | None
    oi_base: float | None
    oi_usd: float | None
    oi_change_24h_pct: float | None
    oi_change_7d_pct: float | None
    long_short_ratio: float | None
    long_fraction: float | None
    short_fraction: float | None
    margin: Literal["coin", "stablecoin"] | None
    stale: bool


class OIAggregate(msgspec.Struct, frozen=True, kw_only=True):
    """Open interest of one base across venues.

    Attributes:
        breakdown: ``analytics.oi_breakdown``: total USD, each venue's share, coin/stablecoin split.
        coin_margined_share, stablecoin_margined_share: those USD over the total (``analytics.share_of``).
        oi_change_24h_pct, oi_change_7d_pct: ``analytics.oi_total_change_pct`` of ``oi_base``, percent.
    """

    base: str
    breakdown: OIBreakdown
    coin_margined_share: float | None
    stablecoin_margined_share: float | None
    oi_change_24h_pct: float | None
    oi_change_7d_pct: float | None


class OIReport(_Report, frozen=True, kw_only=True):
    """``streamer oi``: per-instrument rows and per-base aggregates."""

    command: Literal["oi"] = "oi"
    change_threshold_pct: float
    rows: list[OIRow]
    aggregates: list[OIAggregate]


class LiquidationVenueRow(msgspec.Struct, frozen=True, kw_only=True):
    """One venue's liquidations of one base in the window (``analytics.liquidation_totals``).

    Attributes:
        coverage: ``complete``, ``lower_bound`` or ``unavailable`` (no public history, no ``--daemon``).
        long_usd, short_usd, total_usd: Σ ``value_usd`` of liquidated longs / shorts, USD.
        long_count, short_count: liquidations; ``unsized``: those with ``value_usd`` null.
    """

    exchange: str
    base: str
    status: VenueStatus
    coverage: Coverage | None
    coverage_from_ms: int | None
    long_usd: float
    short_usd: float
    total_usd: float
    long_count: int
    short_count: int
    unsized: int
    stale: bool


class LiquidationAggregate(msgspec.Struct, frozen=True, kw_only=True):
    """Liquidations of one base across venues in ``(as_of_ms - window_ms, as_of_ms]``.

    Attributes:
        complete: every venue asked published every liquidation of the window; otherwise the totals
            are a lower bound (shown ``≥``).
        totals: ``analytics.liquidation_totals`` overall.
        largest: the largest prints (``analytics.largest_liquidations``), events as the daemon emits them.
        heat_bucket_usd: price bucket width of ``heatmap`` (``analytics.heatmap_bucket_usd``).
        heatmap: ``analytics.liquidation_heatmap``: USD by price bucket and side.
        cascade: ``analytics.cascade_risk`` for longs and for shorts, with the
            ``liquidation_cascade`` rule's settings.
    """

    base: str
    window_ms: int
    complete: bool
    coverage_from_ms: int | None
    totals: SideTotals
    largest: list[Liquidation]
    heat_bucket_usd: float | None
    heatmap: list[HeatBucket]
    cascade: list[CascadeRisk]


class LiquidationsReport(_Report, frozen=True, kw_only=True):
    """``streamer liquidations``: per-venue totals and per-base aggregates."""

    command: Literal["liquidations"] = "liquidations"
    window_ms: int
    large_liquidation_usd: float
    rows: list[LiquidationVenueRow]
    aggregates: list[LiquidationAggregate]


class OptionsExpiryRow(ExpirySummary, frozen=True, kw_only=True):
    """One expiry of one underlying on one venue: ``analytics.ExpirySummary`` (its fields and units) plus
    the venue, the underlying and the IV-extreme flag.

    Attributes:
        iv_extreme: ``analytics.iv_extreme`` of ``atm_iv`` against ``IV_EXTREME_HIGH``/``LOW``.
    """

    exchange: str
    underlying: str
    iv_extreme: IvExtreme | None
    stale: bool


class OptionsChainSummary(msgspec.Struct, frozen=True, kw_only=True):
    """One venue's whole chain of one underlying (``OptionChain.summary``)."""

    exchange: str
    underlying: str
    expiries: int
    pcr: PutCallRatios
    total_oi_usd: float
    term_structure: list[TermPoint]


class OptionsReport(_Report, frozen=True, kw_only=True):
    """``streamer options``: per-expiry rows and per-venue chain summaries (Deribit first)."""

    command: Literal["options"] = "options"
    iv_high: float
    iv_low: float
    rows: list[OptionsExpiryRow]
    chains: list[OptionsChainSummary]


class BasisRow(msgspec.Struct, frozen=True, kw_only=True):
    """One perpetual or dated future on one venue.

    Attributes:
        kind: ``perpetual`` or ``future``.
        basis: ``(mark - index) / index`` (``analytics.premium``): the premium of a perpetual, the
            basis of a future (fraction).
        annualized_basis: futures only: ``basis × 365 / days_to_expiry`` (``analytics.annualized_basis``).
    """

    exchange: str
    base: str
    kind: Literal["perpetual", "future"]
    symbol: str | None
    raw_symbol: str
    expiry: str | None
    expiry_ms: int | None
    days_to_expiry: float | None
    mark_price: float | None
    index_price: float | None
    basis: float | None
    annualized_basis: float | None
    stale: bool


class BasisTermRow(msgspec.Struct, frozen=True, kw_only=True):
    """One expiry date side by side: ``annualized_basis`` per venue (``null`` where the venue quotes no price)."""

    base: str
    expiry: str
    days_to_expiry: float
    annualized_basis: dict[str, float | None]


class BasisReport(_Report, frozen=True, kw_only=True):
    """``streamer basis``: perpetual premiums and futures basis per venue, and the term structure."""

    command: Literal["basis"] = "basis"
    rows: list[BasisRow]
    term_structure: list[BasisTermRow]


Report = FundingReport | OIReport | LiquidationsReport | OptionsReport | BasisReport
REPORT_TYPES: dict[str, type[Any]] = {
    "funding": FundingReport,
    "oi": OIReport,
    "liquidations": LiquidationsReport,
    "options": OptionsReport,
    "basis": BasisReport,
}
_ROW_TYPES: dict[str, type[Any]] = {
    "funding": FundingRow,
    "oi": OIRow,
    "liquidations": LiquidationVenueRow,
    "options": OptionsExpiryRow,
    "basis": BasisRow,
}


# =========================================================================== building


def build_report(snapshot: Snapshot, *, rules: RulesSettings | None = None) -> Report:
    """The report of ``snapshot.command``; thresholds from ``rules`` (default: ``RulesSettings()``)."""
    rules = rules if rules is not None else RulesSettings()
    builders: dict[str, Any] = {
        "funding": _build_funding,
        "oi": _build_oi,
        "liquidations": _build_liquidations,
        "options": _build_options,
        "basis": _build_basis,
    }
    report: Report = builders[snapshot.command](snapshot, rules)
    return report


def _venue_info(snap: Snapshot) -> list[VenueInfo]:
    out = []
    for v in snap.venues:
        notes = list(v.notes)
        if v.exchange == "bitmex" and v.status == "closed" and not any("closed" in n for n in notes):
            notes.insert(0, BITMEX_CLOSED)
        age = (snap.as_of_ms - v.fetched_at_ms) / 1000.0 if v.fetched_at_ms is not None else None
        out.append(VenueInfo(exchange=v.exchange, status=v.status, notes=notes, stale=v.stale,
                             from_cache=v.from_cache, fetched_at_ms=v.fetched_at_ms, age_s=age,
                             coverage=v.coverage, coverage_from_ms=v.coverage_from_ms))
    return out


def _base_of(symbol: str | None) -> str | None:
    return symbol.split("-", 1)[0] if symbol else None


def _events(snap: Snapshot, kind: type[Any], bases: Sequence[str]) -> list[Any]:
    """Events of ``kind`` from usable venues whose base (or option underlying) is requested."""
    wanted = set(bases)
    out = []
    for v in snap.ok_venues():
        for ev in v.events:
            if not isinstance(ev, kind):
                continue
            base = ev.underlying if isinstance(ev, OptionTicker) else _base_of(ev.symbol)
            if base in wanted:
                out.append(ev)
    return out


def _instruments(snap: Snapshot) -> list[Instrument]:
    return [inst for v in snap.ok_venues() for inst in v.instruments]


def _stale(snap: Snapshot) -> set[str]:
    return {v.exchange for v in snap.venues if v.stale}


def _group(events: Iterable[Any]) -> dict[tuple[str, str], list[Any]]:
    out: dict[tuple[str, str], list[Any]] = {}
    for ev in events:
        if ev.symbol is not None:
            out.setdefault((ev.exchange, ev.symbol), []).append(ev)
    return out


def _oi_series(snap: Snapshot, bases: Sequence[str]) -> dict[tuple[str, str], list[OpenInterest | Ticker]]:
    """Open-interest history per venue symbol: ``open_interest`` events, else tickers that carry OI."""
    series: dict[tuple[str, str], list[OpenInterest | Ticker]] = _group(_events(snap, OpenInterest, bases))
    for key, tickers in _group(_events(snap, Ticker, bases)).items():
        if key not in series:
            with_oi = [t for t in tickers if t.open_interest is not None or t.open_interest_usd is not None]
            if with_oi:
                series[key] = with_oi
    return series


def _venue_order(exchange: str) -> int:
    order = ("binance", "bybit", "okx", "deribit", "bitmex")
    return order.index(exchange) if exchange in order else len(order)


def _row_key(exchange: str, symbol: str) -> tuple[int, str, str]:
    return (_venue_order(exchange), exchange, symbol)


def _fmt_threshold_pct(fraction: float) -> str:
    return f"{fraction * 100:.2f} %"


# --------------------------------------------------------------------------- funding


def _with_interval(ev: Funding, interval_h: float | None) -> Funding:
    """A history row that states no interval (OKX funding-rate-history) normalized with the symbol's
    current interval (assumed unchanged over the 24 h the average covers)."""
    if ev.rate_8h is not None or not interval_h:
        return ev
    rate_8h, annualized = funding_fields(ev.rate, interval_h)
    return msgspec.structs.replace(ev, interval_h=interval_h, rate_8h=rate_8h, annualized=annualized)


def _build_funding(snap: Snapshot, rules: RulesSettings) -> FundingReport:
    threshold = rules.extreme_funding.threshold_pct / 100.0
    stale = _stale(snap)
    fundings = _events(snap, Funding, snap.bases)
    series = _oi_series(snap, snap.bases)
    oi_events = [ev for evs in series.values() for ev in evs]
    oi_w = oi_weights(oi_events)
    vol_w = volume_weights(_events(snap, Ticker, snap.bases))
    history = _group(fundings)
    rows = []
    for (ex, sym), cur in sorted(latest_by_key(fundings).items(), key=lambda kv: _row_key(*kv[0])):
        settled = [_with_interval(ev, cur.interval_h) for ev in history[(ex, sym)] if ev is not cur]
        window = [ev for ev in settled if snap.as_of_ms - DAY_MS < ev.ts <= snap.as_of_ms and ev.rate_8h is not None]
        rows.append(FundingRow(
            exchange=ex, base=_base_of(sym) or "", symbol=sym, raw_symbol=cur.raw_symbol, ts=cur.ts, rate=cur.rate,
            interval_h=cur.interval_h, rate_8h=cur.rate_8h, annualized=cur.annualized,
            avg_rate_8h_24h=average_rate_8h(settled, snap.as_of_ms), history_samples=len(window),
            predicted_rate=cur.predicted_rate, next_funding_ts=cur.next_funding_ts, mark_price=cur.mark_price,
            index_price=cur.index_price, premium=premium(cur.mark_price, cur.index_price), oi_usd=oi_w.get((ex, sym)),
            volume_24h_usd=vol_w.get((ex, sym)), stale=ex in stale,
        ))
    aggregates = []
    alerts = []
    for base in snap.bases:
        base_f = [ev for ev in fundings if _base_of(ev.symbol) == base]
        base_rows = [r for r in rows if r.base == base]
        base_series = {k: v for k, v in series.items() if _base_of(k[1]) == base}
        with_rate = [r for r in base_rows if r.rate_8h is not None]
        ref = max(with_rate, key=lambda r: (r.oi_usd or 0.0, -_venue_order(r.exchange)), default=None)
        breakdown = oi_breakdown([ev for evs in base_series.values() for ev in evs]) if base_series else None
        aggregates.append(FundingAggregate(
            base=base, venues=len({r.exchange for r in with_rate}),
            reference_exchange=ref.exchange if ref else None, reference_symbol=ref.symbol if ref else None,
            reference_rate_8h=ref.rate_8h if ref else None,
            oi_weighted=weighted_funding(base_f, oi_w), volume_weighted=weighted_funding(base_f, vol_w),
            spread=funding_spread(base_f),
            oi_usd=breakdown.total_usd if breakdown is not None and breakdown.legs else None,
            oi_change_24h_pct=oi_total_change_pct(base_series.values(), DAY_MS, as_of_ms=snap.as_of_ms),
        ))
        per_venue = {r.exchange: sum(1 for x in base_rows if x.exchange == r.exchange) for r in base_rows}
        for r in with_rate:
            rate = r.rate_8h or 0.0
            if abs(rate) >= threshold:
                where = VENUE_NAMES.get(r.exchange, r.exchange)
                if per_venue[r.exchange] > 1:
                    where += f" ({r.symbol})"
                side = (f"above {_fmt_threshold_pct(threshold)}" if rate > 0
                        else f"below {_fmt_threshold_pct(-threshold)}")
                alerts.append(f"⚠ {base} funding on {where} is {rate * 100:.2f} % per 8 h, {side}")
    return FundingReport(bases=list(snap.bases), as_of_ms=snap.as_of_ms, elapsed_s=snap.elapsed_s,
                         venues=_venue_info(snap), alerts=alerts, threshold_rate_8h=threshold, rows=rows,
                         aggregates=aggregates)


# --------------------------------------------------------------------------- open interest


def _instrument_lookup(instruments: Iterable[Instrument]) -> dict[tuple[str, str], Instrument]:
    index: dict[tuple[str, str], Instrument] = {}
    for inst in instruments:
        index[(inst.exchange, inst.raw_symbol)] = inst
        index.setdefault((inst.exchange, inst.symbol), inst)
    return index


def _build_oi(snap: Snapshot, rules: RulesSettings) -> OIReport:
    stale = _stale(snap)
    series = _oi_series(snap, snap.bases)
    instruments = _instruments(snap)
    index = _instrument_lookup(instruments)
    ratios: dict[tuple[str, str], LongShortRatio] = {}
    for v in snap.ok_venues():
        for ratio in sorted(v.long_short, key=lambda x: x.ts):
            for name in {ratio.symbol, ratio.raw_symbol} - {None}:
                ratios[(v.exchange, str(name))] = ratio
    rows = []
    for (ex, sym), evs in sorted(series.items(), key=lambda kv: _row_key(*kv[0])):
        cur = latest_by_key(evs)[(ex, sym)]
        lsr = ratios.get((ex, sym)) or ratios.get((ex, cur.raw_symbol))
        inst = index.get((ex, cur.raw_symbol)) or index.get((ex, sym))
        if isinstance(cur, OpenInterest):
            contracts, base_units, usd = cur.oi_contracts, cur.oi_base, cur.oi_usd
        else:
            contracts, base_units, usd = None, cur.open_interest, cur.open_interest_usd
        rows.append(OIRow(
            exchange=ex, base=_base_of(sym) or "", symbol=sym, raw_symbol=cur.raw_symbol, ts=cur.ts,
            oi_contracts=contracts, oi_base=base_units, oi_usd=usd,
            oi_change_24h_pct=oi_change_pct(evs, DAY_MS, unit="base", as_of_ms=snap.as_of_ms),
            oi_change_7d_pct=oi_change_pct(evs, 7 * DAY_MS, unit="base", as_of_ms=snap.as_of_ms),
            long_short_ratio=lsr.ratio if lsr else None, long_fraction=lsr.long_fraction if lsr else None,
            short_fraction=lsr.short_fraction if lsr else None, margin=margin_type(inst), stale=ex in stale,
        ))
    aggregates = []
    alerts = []
    limit = OI_CHANGE_ALERT_PCT
    for base in snap.bases:
        groups = [evs for (_, sym), evs in series.items() if _base_of(sym) == base]
        bd = oi_breakdown([ev for evs in groups for ev in evs], instruments)
        agg = OIAggregate(
            base=base, breakdown=bd, coin_margined_share=share_of(bd.coin_margined_usd, bd.total_usd),
            stablecoin_margined_share=share_of(bd.stablecoin_margined_usd, bd.total_usd),
            oi_change_24h_pct=oi_total_change_pct(groups, DAY_MS, unit="base", as_of_ms=snap.as_of_ms),
            oi_change_7d_pct=oi_total_change_pct(groups, 7 * DAY_MS, unit="base", as_of_ms=snap.as_of_ms),
        )
        aggregates.append(agg)
        if agg.oi_change_24h_pct is not None and abs(agg.oi_change_24h_pct) >= limit:
            verb = "rose" if agg.oi_change_24h_pct > 0 else "fell"
            alerts.append(f"⚠ {base} open interest {verb} {abs(agg.oi_change_24h_pct):.1f} % in 24 h across venues, "
                          f"beyond ±{limit:g} %")
        for r in rows:
            if r.base == base and r.oi_change_24h_pct is not None and abs(r.oi_change_24h_pct) >= limit:
                verb = "rose" if r.oi_change_24h_pct > 0 else "fell"
                alerts.append(f"⚠ {base} open interest on {VENUE_NAMES.get(r.exchange, r.exchange)} ({r.symbol}) "
                              f"{verb} {abs(r.oi_change_24h_pct):.1f} % in 24 h, beyond ±{limit:g} %")
    return OIReport(bases=list(snap.bases), as_of_ms=snap.as_of_ms, elapsed_s=snap.elapsed_s, venues=_venue_info(snap),
                    alerts=alerts, change_threshold_pct=limit, rows=rows, aggregates=aggregates)


# --------------------------------------------------------------------------- liquidations


def _build_liquidations(snap: Snapshot, rules: RulesSettings) -> LiquidationsReport:
    cfg = rules.liquidation_cascade
    large = rules.large_liquidation.min_usd
    window_ms = snap.window_ms or 3_600_000
    stale = _stale(snap)
    every = _events(snap, Liquidation, snap.bases)
    in_window = liquidations_in_window(every, snap.as_of_ms, window_ms)
    usable = {v.exchange for v in snap.ok_venues()}
    # A venue without public history (``unsupported``/``unavailable``) leaves the totals a lower bound too.
    asked = [v for v in snap.venues if v.status != "closed"]
    complete = bool(asked) and all(v.exchange in usable and v.coverage == "complete" for v in asked)
    starts = [v.coverage_from_ms for v in snap.venues if v.exchange in usable and v.coverage_from_ms is not None]
    coverage_from = max(starts) if starts else None
    rows = []
    aggregates = []
    alerts: list[str] = []
    for base in snap.bases:
        liqs = [liq for liq in in_window if _base_of(liq.symbol) == base]
        totals = liquidation_totals(liqs)
        empty = SideTotals(long_usd=0.0, short_usd=0.0, total_usd=0.0, long_count=0, short_count=0, unsized=0)
        for v in snap.venues:
            if v.status == "closed":
                continue
            t = totals.by_venue.get(v.exchange, empty)
            rows.append(LiquidationVenueRow(
                exchange=v.exchange, base=base, status=v.status, coverage=v.coverage,
                coverage_from_ms=v.coverage_from_ms, long_usd=t.long_usd, short_usd=t.short_usd,
                total_usd=t.total_usd, long_count=t.long_count, short_count=t.short_count, unsized=t.unsized,
                stale=v.exchange in stale,
            ))
        prices = sorted(liq.price for liq in liqs if liq.price is not None)
        bucket = heatmap_bucket_usd(prices[len(prices) // 2]) if prices else None
        base_all = [liq for liq in every if _base_of(liq.symbol) == base]
        cascade = [
            cascade_risk(base_all, snap.as_of_ms, side=side, window_ms=int(cfg.window_s * 1000),
                         baseline_ms=int(cfg.baseline_window_s * 1000), min_usd=cfg.min_usd,
                         baseline_multiple=cfg.baseline_multiple, coverage_start_ms=coverage_from)
            for side in ("long", "short")
        ]
        aggregates.append(LiquidationAggregate(
            base=base, window_ms=window_ms, complete=complete, coverage_from_ms=coverage_from, totals=totals.overall,
            largest=largest_liquidations(liqs, LARGEST_N), heat_bucket_usd=bucket,
            heatmap=liquidation_heatmap(liqs, bucket) if bucket else [], cascade=cascade,
        ))
        alerts.extend(
            f"⚠ {base} {c.side} liquidation cascade risk is high: {_usd(c.window_usd)} in the last "
            f"{cfg.window_s:g} s, threshold {_usd(c.threshold_usd)}"
            for c in cascade
            if c.level == "high"
        )
        big = [liq for liq in largest_liquidations(liqs, len(liqs)) if (liq.value_usd or 0.0) >= large]
        for liq in big[:5]:
            at = f" at {liq.price:,.2f}" if liq.price is not None else ""
            alerts.append(f"⚠ {_usd(liq.value_usd or 0.0)} {base} {liq.side} liquidated on "
                          f"{VENUE_NAMES.get(liq.exchange, liq.exchange)} ({liq.symbol}{at}), "
                          f"at or above {_usd(large)}")
        if len(big) > 5:
            alerts.append(f"⚠ and {len(big) - 5} more {base} liquidations at or above {_usd(large)}")
    return LiquidationsReport(bases=list(snap.bases), as_of_ms=snap.as_of_ms, elapsed_s=snap.elapsed_s,
                              venues=_venue_info(snap), alerts=alerts, window_ms=window_ms,
                              large_liquidation_usd=large, rows=rows, aggregates=aggregates)


# --------------------------------------------------------------------------- options


def _build_options(snap: Snapshot, rules: RulesSettings) -> OptionsReport:
    stale = _stale(snap)
    rows = []
    chains = []
    alerts = []
    venues = sorted(snap.ok_venues(), key=lambda v: OPTION_VENUE_ORDER.index(v.exchange)
                    if v.exchange in OPTION_VENUE_ORDER else len(OPTION_VENUE_ORDER))
    for base in snap.bases:
        for v in venues:
            chain = OptionChain(v.exchange)
            for ev in v.events:
                if isinstance(ev, OptionTicker) and ev.underlying == base:
                    chain.update(ev)
            if not len(chain):
                continue
            summary = chain.summary(base, snap.as_of_ms)
            for e in summary.expiries:
                flag = iv_extreme(e.atm_iv, high=IV_EXTREME_HIGH, low=IV_EXTREME_LOW) if e.atm_iv is not None else None
                rows.append(OptionsExpiryRow(**msgspec.structs.asdict(e), exchange=v.exchange, underlying=base,
                                             iv_extreme=flag, stale=v.exchange in stale))
                if flag is not None and flag.extreme and flag.threshold is not None:
                    rel = "above" if flag.trigger == "high" else "below"
                    alerts.append(f"⚠ {base} ATM IV on {VENUE_NAMES.get(v.exchange, v.exchange)} for {e.expiry} is "
                                  f"{flag.value * 100:.1f} %, {rel} {flag.threshold * 100:g} %")
            chains.append(OptionsChainSummary(
                exchange=v.exchange, underlying=base, expiries=len(summary.expiries), pcr=summary.pcr,
                total_oi_usd=summary.total_oi_usd, term_structure=iv_term_structure(summary.expiries),
            ))
    return OptionsReport(bases=list(snap.bases), as_of_ms=snap.as_of_ms, elapsed_s=snap.elapsed_s,
                         venues=_venue_info(snap), alerts=alerts, iv_high=IV_EXTREME_HIGH, iv_low=IV_EXTREME_LOW,
                         rows=rows, chains=chains)


# --------------------------------------------------------------------------- basis


def _build_basis(snap: Snapshot, rules: RulesSettings) -> BasisReport:
    stale = _stale(snap)
    instruments = _instruments(snap)
    index = _instrument_lookup(instruments)
    tickers = _events(snap, Ticker, snap.bases)
    rows = []
    # Perpetual premium: the latest ticker or funding event carrying both prices (a tie goes to the ticker).
    priced: dict[tuple[str, str], tuple[int, str, float | None, float | None]] = {}
    for ev in [*_events(snap, Funding, snap.bases), *tickers]:
        if ev.symbol is None or ev.mark_price is None or ev.index_price is None:
            continue
        inst = index.get((ev.exchange, ev.raw_symbol)) or index.get((ev.exchange, ev.symbol))
        perp = inst.kind == "perpetual" if inst is not None else ev.symbol.endswith("-PERP")
        if not perp:
            continue
        key = (ev.exchange, ev.symbol)
        prev = priced.get(key)
        if prev is None or ev.ts >= prev[0]:
            priced[key] = (ev.ts, ev.raw_symbol, ev.mark_price, ev.index_price)
    for (ex, sym), (_, raw, mark, idx) in sorted(priced.items(), key=lambda kv: _row_key(*kv[0])):
        rows.append(BasisRow(exchange=ex, base=_base_of(sym) or "", kind="perpetual", symbol=sym, raw_symbol=raw,
                             expiry=None, expiry_ms=None, days_to_expiry=None, mark_price=mark, index_price=idx,
                             basis=premium(mark, idx), annualized_basis=None, stale=ex in stale))
    points = basis_term_structure(tickers, instruments, snap.as_of_ms)
    term: list[BasisTermRow] = []
    for p in points:
        base = _base_of(p.symbol) or ""
        rows.append(BasisRow(exchange=p.exchange, base=base, kind="future", symbol=p.symbol, raw_symbol=p.raw_symbol,
                             expiry=p.expiry, expiry_ms=p.expiry_ms, days_to_expiry=p.days_to_expiry,
                             mark_price=p.mark_price, index_price=p.index_price, basis=p.basis,
                             annualized_basis=p.annualized_basis, stale=p.exchange in stale))
    for base in snap.bases:
        by_expiry: dict[str, BasisTermRow] = {}
        for p in points:
            if _base_of(p.symbol) != base:
                continue
            row = by_expiry.get(p.expiry)
            if row is None:
                row = by_expiry[p.expiry] = BasisTermRow(base=base, expiry=p.expiry, days_to_expiry=p.days_to_expiry,
                                                         annualized_basis={})
            row.annualized_basis.setdefault(p.exchange, p.annualized_basis)
        term.extend(by_expiry[e] for e in sorted(by_expiry))
    alerts = [
        f"⚠ {r.base} {r.expiry} future on {VENUE_NAMES.get(r.exchange, r.exchange)} is in backwardation: "
        f"{r.annualized_basis * 100:+.2f} % a year"
        for r in rows
        if r.kind == "future" and r.annualized_basis is not None and r.annualized_basis < 0
    ]
    return BasisReport(bases=list(snap.bases), as_of_ms=snap.as_of_ms, elapsed_s=snap.elapsed_s,
                       venues=_venue_info(snap), alerts=alerts, rows=rows, term_structure=term)


# =========================================================================== JSON and CSV


def json_schema(command: str) -> dict[str, Any]:
    """The JSON Schema of one command's report (``docs/cli-schemas/<command>.json``).

    Descriptions are the Structs' docstrings, cleaned with ``inspect.cleandoc`` here: msgspec 0.23 started
    cleaning them itself (earlier versions kept the indentation), and the schema must not depend on that.
    """
    return _clean_descriptions(msgspec.json.schema(REPORT_TYPES[command]))


def _clean_descriptions(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: inspect.cleandoc(v) if k == "description" and isinstance(v, str) else _clean_descriptions(v)
                for k, v in node.items()}
    if isinstance(node, list):
        return [_clean_descriptions(v) for v in node]
    return node


def _columns(tp: type[Any], prefix: str = "") -> list[str]:
    """Dotted column names of a row type: nested Structs (optional or not) are flattened."""
    out = []
    for f in msgspec.structs.fields(tp):
        nested = _struct_of(msgspec.inspect.type_info(f.type))
        if nested is not None:
            out.extend(_columns(nested, f"{prefix}{f.encode_name}."))
        else:
            out.append(prefix + f.encode_name)
    return out


def _struct_of(info: msgspec.inspect.Type) -> type[Any] | None:
    if isinstance(info, msgspec.inspect.StructType):
        return info.cls
    if isinstance(info, msgspec.inspect.UnionType):
        structs = [t for t in info.types if isinstance(t, msgspec.inspect.StructType)]
        others = [t for t in info.types if not isinstance(t, msgspec.inspect.StructType | msgspec.inspect.NoneType)]
        if len(structs) == 1 and not others:
            return structs[0].cls
    return None


def csv_columns(command: str) -> list[str]:
    """The CSV header of one command: its row type's fields, nested ones dotted (``skew.put_iv``)."""
    return _columns(_ROW_TYPES[command])


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    for name in value.__struct_fields__:
        item = getattr(value, name)
        if isinstance(item, msgspec.Struct):
            _flatten(item, f"{prefix}{name}.", out)
        else:
            out[prefix + name] = item


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _render_csv(report: Report) -> str:
    columns = csv_columns(report.command)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in report.rows:
        flat: dict[str, Any] = {}
        _flatten(row, "", flat)
        writer.writerow({c: _csv_cell(flat.get(c)) for c in columns})
    return buf.getvalue()


# =========================================================================== console formatting


def _usd(value: float | None) -> str:
    """``$18.5B``, ``$7.2M``, ``$850.0K``, ``$512``; ``-`` when unknown."""
    if value is None:
        return "-"
    mag = abs(value)
    sign = "-" if value < 0 else ""
    if mag >= 1e9:
        return f"{sign}${mag / 1e9:.1f}B"
    if mag >= 1e6:
        return f"{sign}${mag / 1e6:.1f}M"
    if mag >= 1e3:
        return f"{sign}${mag / 1e3:.1f}K"
    return f"{sign}${mag:.0f}"


def _pct(fraction: float | None, digits: int = 4, sign: bool = True) -> str:
    """A fraction as percent: ``+0.0150%``; ``-`` when unknown."""
    if fraction is None:
        return "-"
    return f"{fraction * 100:+.{digits}f}%" if sign else f"{fraction * 100:.{digits}f}%"


def _chg(pct: float | None) -> str:
    """A change already in percent: ``+2.3%``."""
    return "-" if pct is None else f"{pct:+.1f}%"


def _num(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _qty(value: float | None) -> str:
    """Base units: 2 decimals below 1 000, none above."""
    if value is None:
        return "-"
    return f"{value:,.2f}" if abs(value) < 1000 else f"{value:,.0f}"


def _price(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.2f}" if abs(value) < 1000 else f"{value:,.1f}"


def _utc(ms: int | None, fmt: str = "%Y-%m-%d %H:%M UTC") -> str:
    if ms is None:
        return "-"
    return _dt.datetime.fromtimestamp(ms / 1000, tz=_dt.UTC).strftime(fmt)


def _duration(ms: int) -> str:
    s = max(0, ms) // 1000
    if s >= 86_400:
        return f"{s // 86_400}d{s % 86_400 // 3600:02d}h"
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


def _window(ms: int) -> str:
    if ms % DAY_MS == 0 and ms >= DAY_MS and ms != DAY_MS:
        return f"{ms // DAY_MS}d"
    if ms % 3_600_000 == 0:
        return f"{ms // 3_600_000}h"
    if ms % 60_000 == 0:
        return f"{ms // 60_000}m"
    return f"{ms // 1000}s"


def _venue(report: Report, exchange: str) -> str:
    """Display name, with ``*`` when that venue's data is stale."""
    name = VENUE_NAMES.get(exchange, exchange)
    return name + "*" if any(v.exchange == exchange and v.stale for v in report.venues) else name


def _cell(text: str, style: str | None = None) -> Text:
    return Text(text, style=style or "")


def _table(title: str | None, columns: Sequence[tuple[str, str]]) -> Table:
    """A table; each column ``(header, justify)``: ``l`` left, ``r`` right (numbers)."""
    t = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False,
              title_style="bold", header_style="bold")
    for header, just in columns:
        t.add_column(header, justify="right" if just == "r" else "left", no_wrap=True)
    return t


_NAME_MIN_WIDTH = 10
"""On a narrow console a name column (symbol, expiry) is cut to no less than this; numbers are never cut."""


def _print_table(console: Console, t: Table) -> None:
    """Print ``t``: number columns (and the first) keep their widest cell; other names may be cut with ``…``."""
    for i, col in enumerate(t.columns):
        widths = [cell.cell_len if isinstance(cell, Text) else len(str(cell)) for cell in col.cells]
        widest = max([len(str(col.header)), *widths])
        col.min_width = widest if col.justify == "right" or i == 0 else min(widest, _NAME_MIN_WIDTH)
    console.print(t)


def _header(report: Report, what: str) -> Text:
    ok = sum(1 for v in report.venues if v.status in ("ok", "partial"))
    return Text(f"{' '.join(report.bases)} {what} · {_utc(report.as_of_ms, '%Y-%m-%d %H:%M:%S UTC')} · "
                f"{ok}/{len(report.venues)} venues · fetched in {report.elapsed_s:.1f} s", style="bold")


def _footer(console: Console, report: Report) -> None:
    stale = [v for v in report.venues if v.stale]
    if stale:
        for v in stale:
            age = f"{_duration(int(v.age_s * 1000))} old" if v.age_s is not None else "older than its TTL"
            console.print(Text(f"* {VENUE_NAMES.get(v.exchange, v.exchange)}: stale data, {age} "
                               "(served from cache after a failed refetch)", style="yellow"))
    notes = [(v, n) for v in report.venues for n in v.notes]
    if notes:
        console.print(Text("notes:", style="bold"))
        for v, n in notes:
            name = VENUE_NAMES.get(v.exchange, v.exchange)
            console.print(Text(f"  {name} ({v.status}): {_note(v.exchange, n)}"))
    silent = [v for v in report.venues if v.status in ("error", "unsupported", "closed") and not v.notes]
    for v in silent:
        console.print(Text(f"  {VENUE_NAMES.get(v.exchange, v.exchange)}: {v.status}"))
    if report.alerts:
        console.print(Text("alerts:", style="bold red"))
        for line in report.alerts:
            console.print(Text(f"  {line}", style="red"))
    else:
        console.print(Text("alerts: none", style="green"))


def _note(exchange: str, note: str) -> str:
    """A venue note without a leading ``<venue>: `` (the line already names the venue)."""
    prefix = f"{exchange}: "
    return note[len(prefix):] if note.lower().startswith(prefix) else note


def _alert_tail(report: Report, base: str) -> str:
    """`` | ⚠ 2 alerts``: the count of alert lines about ``base``."""
    word = re.compile(rf"\b{re.escape(base)}\b")
    n = sum(1 for line in report.alerts if word.search(line))
    return f" | ⚠ {n} alert{'s' if n != 1 else ''}" if n else ""


# --------------------------------------------------------------------------- funding console


def _funding_line(report: FundingReport, agg: FundingAggregate) -> str:
    if agg.reference_rate_8h is None or agg.reference_exchange is None:
        head = f"{agg.base} Funding: n/a"
    else:
        head = f"{agg.base} Funding: {_pct(agg.reference_rate_8h)} ({_venue(report, agg.reference_exchange)})"
    if agg.venues > 1 and agg.oi_weighted.rate_8h is not None:
        head += f" | OI-wtd {_pct(agg.oi_weighted.rate_8h)}"
    if agg.spread is not None:
        head += f" | spread {_pct(agg.spread.spread_8h, sign=False)}"
    oi = f" | OI: {_usd(agg.oi_usd)}" if agg.oi_usd is not None else ""
    if oi and agg.oi_change_24h_pct is not None:
        oi += f" ({_chg(agg.oi_change_24h_pct)} 24h)"
    return head + oi


def _rate_style(rate: float | None, threshold: float) -> str | None:
    return "bold red" if rate is not None and abs(rate) >= threshold else None


def _render_funding(console: Console, r: FundingReport, level: int) -> None:
    if level == 1:
        for agg in r.aggregates:
            console.print(Text(_funding_line(r, agg) + _alert_tail(r, agg.base)), soft_wrap=True)
        return
    console.print(_header(r, "funding"))
    t = _table(None, [("Venue", "l"), ("Symbol", "l"), ("Int", "r"), ("Rate 8h", "r"), ("Annual", "r"),
                      ("Avg 24h", "r"), ("Predicted", "r"), ("Next", "r"), ("OI", "r")])
    for row in r.rows:
        style = _rate_style(row.rate_8h, r.threshold_rate_8h)
        nxt = "-" if row.next_funding_ts is None else f"in {_duration(row.next_funding_ts - r.as_of_ms)}"
        t.add_row(_cell(_venue(r, row.exchange)), _cell(row.symbol),
                  _cell("-" if row.interval_h is None else f"{row.interval_h:g}h"), _cell(_pct(row.rate_8h), style),
                  _cell(_pct(row.annualized, 2), style), _cell(_pct(row.avg_rate_8h_24h)),
                  _cell(_pct(row.predicted_rate)), _cell(nxt), _cell(_usd(row.oi_usd)))
    _print_table(console, t)
    if level >= 3:
        d = _table("Rates as charged, prices and volume", [
            ("Venue", "l"), ("Symbol", "l"), ("Rate", "r"), ("Next (UTC)", "r"), ("Volume 24h", "r"),
            ("Mark", "r"), ("Index", "r"), ("Premium", "r")])
        for row in r.rows:
            d.add_row(_cell(_venue(r, row.exchange)), _cell(row.symbol), _cell(_pct(row.rate)),
                      _cell(_utc(row.next_funding_ts, "%m-%d %H:%M")), _cell(_usd(row.volume_24h_usd)),
                      _cell(_price(row.mark_price)), _cell(_price(row.index_price)),
                      _cell(_pct(row.premium)))
        _print_table(console, d)
    for agg in r.aggregates:
        oi_w, vol_w = agg.oi_weighted, agg.volume_weighted
        console.print(Text(f"{agg.base} across {agg.venues} venue{'s' if agg.venues != 1 else ''}: "
                           f"OI-weighted {_pct(oi_w.rate_8h)}/8h ({_pct(oi_w.annualized, 2)}/yr), "
                           f"volume-weighted {_pct(vol_w.rate_8h)}/8h ({_pct(vol_w.annualized, 2)}/yr)"))
        if agg.spread is not None:
            s = agg.spread
            console.print(Text(
                f"  spread {_pct(s.spread_8h, sign=False)}/8h: short {_venue(r, s.high.exchange)} "
                f"{_pct(s.high.rate_8h)}, long {_venue(r, s.low.exchange)} {_pct(s.low.rate_8h)}: "
                f"carry {_pct(s.carry_annualized, 2, sign=False)}/yr before fees"))
        if level >= 3:
            chg = f" ({_chg(agg.oi_change_24h_pct)} 24h)" if agg.oi_change_24h_pct is not None else ""
            console.print(Text(f"  OI {_usd(agg.oi_usd)}{chg}; "
                               f"OI weights on {oi_w.legs} legs ({oi_w.skipped} skipped), "
                               f"volume weights on {vol_w.legs} ({vol_w.skipped} skipped)"))
    if level >= 3:
        _funding_signals(console, r)
    _footer(console, r)


def _funding_signals(console: Console, r: FundingReport) -> None:
    console.print(Text("signals:", style="bold"))
    for agg in r.aggregates:
        rates = [row for row in r.rows if row.base == agg.base and row.rate_8h is not None]
        pos = sum(1 for row in rates if (row.rate_8h or 0.0) > 0)
        neg = sum(1 for row in rates if (row.rate_8h or 0.0) < 0)
        mood = "longs pay shorts" if pos > neg else "shorts pay longs" if neg > pos else "balanced"
        console.print(Text(f"  {agg.base}: {mood} ({pos} positive, {neg} negative of {len(rates)} symbols)"))
        trend = [row for row in rates if row.avg_rate_8h_24h is not None]
        rising = sum(1 for row in trend if (row.rate_8h or 0.0) > (row.avg_rate_8h_24h or 0.0))
        if trend:
            console.print(Text(f"  {agg.base}: current above its 24 h average on {rising} of {len(trend)} symbols"))


# --------------------------------------------------------------------------- OI console


def _oi_line(r: OIReport, agg: OIAggregate) -> str:
    bd = agg.breakdown
    line = f"{agg.base} OI: {_usd(bd.total_usd)}"
    changes = [f"{_chg(p)} {h}" for p, h in ((agg.oi_change_24h_pct, "24h"), (agg.oi_change_7d_pct, "7d"))
               if p is not None]
    if changes:
        line += f" ({', '.join(changes)})"
    if bd.by_venue:
        line += " | " + " · ".join(f"{_venue(r, s.exchange)} {_pct(s.share, 0, sign=False)}" for s in bd.by_venue)
    if agg.coin_margined_share is not None:
        line += (f" | coin {_pct(agg.coin_margined_share, 0, sign=False)} / "
                 f"stable {_pct(agg.stablecoin_margined_share, 0, sign=False)}")
    return line


def _render_oi(console: Console, r: OIReport, level: int) -> None:
    if level == 1:
        for agg in r.aggregates:
            console.print(Text(_oi_line(r, agg) + _alert_tail(r, agg.base)), soft_wrap=True)
        return
    console.print(_header(r, "open interest"))
    t = _table(None, [("Venue", "l"), ("Symbol", "l"), ("Margin", "l"), ("Contracts", "r"), ("Base", "r"),
                      ("USD", "r"), ("24h", "r"), ("7d", "r"), ("L/S", "r")])
    for row in r.rows:
        big = row.oi_change_24h_pct is not None and abs(row.oi_change_24h_pct) >= r.change_threshold_pct
        margin = {"coin": "coin", "stablecoin": "stable"}.get(row.margin or "", "-")
        t.add_row(_cell(_venue(r, row.exchange)), _cell(row.symbol), _cell(margin),
                  _cell(_num(row.oi_contracts, 0)), _cell(_qty(row.oi_base)), _cell(_usd(row.oi_usd)),
                  _cell(_chg(row.oi_change_24h_pct), "bold yellow" if big else None), _cell(_chg(row.oi_change_7d_pct)),
                  _cell(_num(row.long_short_ratio, 2)))
    _print_table(console, t)
    if level >= 3:
        d = _table("Positioning and freshness", [("Venue", "l"), ("Symbol", "l"), ("Raw symbol", "l"),
                                                 ("Long accts", "r"), ("Short accts", "r"), ("As of (UTC)", "r")])
        for row in r.rows:
            d.add_row(_cell(_venue(r, row.exchange)), _cell(row.symbol), _cell(row.raw_symbol),
                      _cell(_pct(row.long_fraction, 1, sign=False)), _cell(_pct(row.short_fraction, 1, sign=False)),
                      _cell(_utc(row.ts, "%m-%d %H:%M:%S")))
        _print_table(console, d)
    for agg in r.aggregates:
        bd = agg.breakdown
        console.print(Text(f"{agg.base} total {_usd(bd.total_usd)} ({_chg(agg.oi_change_24h_pct)} 24h, "
                           f"{_chg(agg.oi_change_7d_pct)} 7d) over {bd.legs} instruments"))
        shares = " · ".join(f"{_venue(r, s.exchange)} {_pct(s.share, 1, sign=False)}" for s in bd.by_venue)
        if shares:
            console.print(Text(f"  share: {shares}"))
        console.print(Text(
            f"  margin: coin {_usd(bd.coin_margined_usd)} ({_pct(agg.coin_margined_share, 1, sign=False)}), "
            f"stablecoin {_usd(bd.stablecoin_margined_usd)} ({_pct(agg.stablecoin_margined_share, 1, sign=False)})"
            + (f", unclassified {_usd(bd.unclassified_usd)}" if bd.unclassified_usd else "")))
        if level >= 3:
            lsr = [row for row in r.rows if row.base == agg.base and row.long_short_ratio is not None]
            if lsr:
                crowd = sum(1 for row in lsr if (row.long_short_ratio or 0.0) > 1)
                console.print(Text(f"  positioning: more long than short accounts on {crowd} of {len(lsr)} venues "
                                   "that publish a ratio"))
    _footer(console, r)


# --------------------------------------------------------------------------- liquidations console


def _risk_style(level: str) -> str | None:
    return {"high": "bold red", "elevated": "yellow"}.get(level)


def _liq_line(r: LiquidationsReport, agg: LiquidationAggregate) -> str:
    ge = "" if agg.complete else "≥"
    t = agg.totals
    line = (f"{agg.base} Liquidations {_window(agg.window_ms)}: {ge}{_usd(t.total_usd)} "
            f"(longs {_usd(t.long_usd)} / shorts {_usd(t.short_usd)})")
    if agg.largest:
        top = agg.largest[0]
        line += f" | largest {_usd(top.value_usd)} {top.side} on {_venue(r, top.exchange)}"
    worst = max(agg.cascade, key=lambda c: c.score, default=None)
    if worst is not None:
        line += f" | cascade risk: {worst.level}"
    return line


def _render_liquidations(console: Console, r: LiquidationsReport, level: int) -> None:
    if level == 1:
        for agg in r.aggregates:
            console.print(Text(_liq_line(r, agg) + _alert_tail(r, agg.base)), soft_wrap=True)
        return
    console.print(_header(r, f"liquidations, last {_window(r.window_ms)}"))
    t = _table(None, [("Venue", "l"), ("Base", "l"), ("Coverage", "l"), ("Longs", "r"), ("#", "r"), ("Shorts", "r"),
                      ("#", "r"), ("Total", "r")])
    for row in r.rows:
        known = row.coverage not in (None, "unavailable") and row.status in ("ok", "partial")
        cov = (row.coverage or ("unavailable" if not known else "-")).replace("_", " ")
        if row.coverage_from_ms is not None and level >= 3:
            cov += f" from {_utc(row.coverage_from_ms, '%H:%M')}"
        ge = "≥" if row.coverage != "complete" else ""

        def usd(value: float, ge: str = ge, known: bool = known) -> Text:
            return _cell(ge + _usd(value) if known else "n/a")

        t.add_row(_cell(_venue(r, row.exchange)), _cell(row.base), _cell(cov), usd(row.long_usd),
                  _cell(str(row.long_count) if known else "-"), usd(row.short_usd),
                  _cell(str(row.short_count) if known else "-"), usd(row.total_usd))
    _print_table(console, t)
    for agg in r.aggregates:
        tt = agg.totals
        ge = "" if agg.complete else "≥"
        what = "complete" if agg.complete else "a lower bound (see Coverage)"
        console.print(Text(f"{agg.base} total {ge}{_usd(tt.total_usd)}: longs {ge}{_usd(tt.long_usd)} "
                           f"({tt.long_count}), shorts {ge}{_usd(tt.short_usd)} ({tt.short_count}); {what}"))
        risks = ", ".join(f"{c.side}s {c.level} {_usd(c.window_usd)} of {_usd(c.threshold_usd)}" for c in agg.cascade)
        worst = max((c.level for c in agg.cascade), key=_LEVELS.index, default="low")
        console.print(Text(f"  cascade risk, last minute: {risks}", style=_risk_style(worst) or ""))
        n = 5 if level == 2 else LARGEST_N
        if agg.largest:
            lt = _table(f"{agg.base} largest liquidations", [("Time (UTC)", "l"), ("Venue", "l"), ("Symbol", "l"),
                                                             ("Side", "l"), ("Price", "r"), ("Qty", "r"), ("USD", "r")])
            for liq in agg.largest[:n]:
                big = (liq.value_usd or 0.0) >= r.large_liquidation_usd
                lt.add_row(_cell(_utc(liq.ts, "%H:%M:%S")), _cell(_venue(r, liq.exchange)), _cell(liq.symbol or "-"),
                           _cell(liq.side), _cell(_price(liq.price)), _cell(_num(liq.qty, 3)),
                           _cell(_usd(liq.value_usd), "bold red" if big else None))
            _print_table(console, lt)
        if level >= 3 and agg.heatmap:
            _heatmap(console, agg, width=console.width)
        if level >= 3:
            for c in agg.cascade:
                base = "no baseline yet" if c.baseline_usd is None else f"baseline {_usd(c.baseline_usd)}/min"
                console.print(Text(f"  {c.side}s: score {c.score:.2f} ({_usd(c.window_usd)} / threshold "
                                   f"{_usd(c.threshold_usd)}; {base})"))
    _footer(console, r)


_LEVELS = ["low", "elevated", "high"]


def _heatmap(console: Console, agg: LiquidationAggregate, width: int) -> None:
    peak = max(max(b.long_usd, b.short_usd) for b in agg.heatmap) or 1.0
    bar_w = max(4, (width - 44) // 2)
    t = _table(f"{agg.base} heatmap: USD liquidated by price (bucket {_price(agg.heat_bucket_usd)})",
               [("Price from", "r"), ("Longs", "r"), ("", "r"), ("", "l"), ("Shorts", "l"), ("#", "r")])
    for b in reversed(agg.heatmap):
        lbar = "█" * round(bar_w * b.long_usd / peak)
        sbar = "█" * round(bar_w * b.short_usd / peak)
        t.add_row(_cell(_price(b.price_low)), _cell(_usd(b.long_usd)), _cell(lbar, "red"), _cell(sbar, "green"),
                  _cell(_usd(b.short_usd)), _cell(str(b.count)))
    _print_table(console, t)


# --------------------------------------------------------------------------- options console


def _options_line(r: OptionsReport, base: str) -> str:
    chain = next((c for c in r.chains if c.underlying == base), None)
    if chain is None:
        return f"{base} Options: n/a"
    rows = [row for row in r.rows if row.exchange == chain.exchange and row.underlying == base]
    front = next((row for row in rows if row.atm_iv is not None), None)
    line = f"{base} Options ({_venue(r, chain.exchange)}):"
    if front is not None:
        line += f" ATM IV {_pct(front.atm_iv, 1, sign=False)} ({front.expiry}, {front.days_to_expiry:.0f}d)"
        if front.skew.skew is not None:
            line += f" | 25Δ skew {front.skew.skew * 100:+.1f} pts"
    if chain.pcr.open_interest is not None:
        line += f" | PCR {chain.pcr.open_interest:.2f} OI"
    pain = next((row for row in rows if row.max_pain is not None), None)
    if pain is not None and pain.max_pain is not None:
        line += f" | max pain {pain.max_pain.strike:,.0f} ({pain.expiry})"
    return line + f" | OI {_usd(chain.total_oi_usd)}"


def _render_options(console: Console, r: OptionsReport, level: int) -> None:
    if level == 1:
        for base in r.bases:
            console.print(Text(_options_line(r, base) + _alert_tail(r, base)), soft_wrap=True)
        return
    console.print(_header(r, "options"))
    for chain in r.chains:
        n = chain.expiries
        t = _table(f"{_venue(r, chain.exchange)} {chain.underlying}: {n} expir{'ies' if n != 1 else 'y'}, "
                   f"OI {_usd(chain.total_oi_usd)}, PCR {_num(chain.pcr.open_interest)} by OI, "
                   f"{_num(chain.pcr.volume)} by volume",
                   [("Expiry", "l"), ("Days", "r"), ("ATM IV", "r"), ("25Δ skew", "r"), ("PCR OI", "r"),
                    ("PCR vol", "r"), ("Max pain", "r"), ("OI", "r")])
        rows = [row for row in r.rows if row.exchange == chain.exchange and row.underlying == chain.underlying]
        for row in rows:
            extreme = row.iv_extreme is not None and row.iv_extreme.extreme
            skew = "-" if row.skew.skew is None else f"{row.skew.skew * 100:+.1f} pts"
            t.add_row(_cell(row.expiry), _cell(f"{row.days_to_expiry:.1f}"),
                      _cell(_pct(row.atm_iv, 1, sign=False), "bold red" if extreme else None), _cell(skew),
                      _cell(_num(row.pcr.open_interest)), _cell(_num(row.pcr.volume)),
                      _cell(_num(row.max_pain.strike if row.max_pain else None, 0)), _cell(_usd(row.oi_usd)))
        _print_table(console, t)
        if level >= 3:
            d = _table(None, [("Expiry", "l"), ("Forward", "r"), ("Put 25Δ IV", "r"), ("Call 25Δ IV", "r"),
                              ("Payout at max pain", "r"), ("OI base", "r"), ("Strikes", "r"), ("Options", "r")])
            for row in rows:
                d.add_row(_cell(row.expiry), _cell(_price(row.underlying_price)),
                          _cell(_pct(row.skew.put_iv, 1, sign=False)), _cell(_pct(row.skew.call_iv, 1, sign=False)),
                          _cell(_usd(row.max_pain.payout_usd if row.max_pain else None)), _cell(_num(row.oi_base, 1)),
                          _cell(str(row.strikes)), _cell(str(row.options)))
            _print_table(console, d)
    if level >= 3 and len(r.chains) > 1:
        _options_side_by_side(console, r)
    if level >= 3:
        console.print(Text("signals:", style="bold"))
        for chain in r.chains:
            ts = chain.term_structure
            if len(ts) >= 2:
                shape = "contango (far IV above near)" if ts[-1].atm_iv > ts[0].atm_iv else "backwardation (near IV " \
                    "above far: stress priced in the front)"
                console.print(Text(f"  {_venue(r, chain.exchange)} {chain.underlying}: IV term structure in {shape}"))
            skews = [row.skew.skew for row in r.rows if row.exchange == chain.exchange and row.skew.skew is not None]
            if skews:
                rich_side = "puts" if skews[0] > 0 else "calls"
                console.print(Text(f"  {_venue(r, chain.exchange)} {chain.underlying}: front 25Δ {rich_side} richer "
                                   f"({skews[0] * 100:+.1f} pts)"))
    _footer(console, r)


def _options_side_by_side(console: Console, r: OptionsReport) -> None:
    venues = [c.exchange for c in r.chains]
    expiries = sorted({row.expiry for row in r.rows})
    t = _table("ATM IV by expiry and venue", [("Expiry", "l"), *[(_venue(r, v), "r") for v in dict.fromkeys(venues)]])
    for e in expiries:
        cells = [_cell(e)]
        for v in dict.fromkeys(venues):
            row = next((x for x in r.rows if x.exchange == v and x.expiry == e), None)
            cells.append(_cell(_pct(row.atm_iv if row else None, 1, sign=False)))
        t.add_row(*cells)
    _print_table(console, t)


# --------------------------------------------------------------------------- basis console


def _basis_line(r: BasisReport, base: str) -> str:
    perps = [row for row in r.rows if row.base == base and row.kind == "perpetual" and row.basis is not None]
    futures = [row for row in r.rows if row.base == base and row.kind == "future" and row.annualized_basis is not None]
    parts = []
    if perps:
        parts.append(f"perp {_pct(perps[0].basis)} ({_venue(r, perps[0].exchange)})")
    if futures:
        near = futures[0]
        far = next(f for f in futures if f.expiry == futures[-1].expiry)
        parts.extend(
            f"{f.expiry} {_pct(f.basis, 2)} = {_pct(f.annualized_basis, 1)}/yr ({_venue(r, f.exchange)})"
            for f in ((near, far) if far.expiry != near.expiry else (near,))
        )
    return f"{base} Basis: " + (" | ".join(parts) if parts else "n/a")


def _render_basis(console: Console, r: BasisReport, level: int) -> None:
    if level == 1:
        for base in r.bases:
            console.print(Text(_basis_line(r, base) + _alert_tail(r, base)), soft_wrap=True)
        return
    console.print(_header(r, "basis"))
    perps = [row for row in r.rows if row.kind == "perpetual"]
    if perps:
        t = _table("Perpetual premium (mark vs index)", [("Venue", "l"), ("Symbol", "l"), ("Mark", "r"),
                                                         ("Index", "r"), ("Premium", "r")])
        for row in perps:
            t.add_row(_cell(_venue(r, row.exchange)), _cell(row.symbol or row.raw_symbol),
                      _cell(_price(row.mark_price)), _cell(_price(row.index_price)), _cell(_pct(row.basis)))
        _print_table(console, t)
    futures = [row for row in r.rows if row.kind == "future"]
    if futures:
        t = _table("Dated futures", [("Venue", "l"), ("Symbol", "l"), ("Expiry", "l"), ("Days", "r"), ("Mark", "r"),
                                     ("Index", "r"), ("Basis", "r"), ("Annualized", "r")])
        for row in futures:
            style = "bold red" if row.annualized_basis is not None and row.annualized_basis < 0 else None
            t.add_row(_cell(_venue(r, row.exchange)), _cell(row.symbol or row.raw_symbol), _cell(row.expiry or "-"),
                      _cell(_num(row.days_to_expiry, 1)), _cell(_price(row.mark_price)), _cell(_price(row.index_price)),
                      _cell(_pct(row.basis, 3)), _cell(_pct(row.annualized_basis, 2), style))
        _print_table(console, t)
    else:
        console.print(Text("no dated futures quoted"))
    if level >= 3 and r.term_structure:
        venues = list(dict.fromkeys(v for tr in r.term_structure for v in sorted(tr.annualized_basis,
                                                                                  key=_venue_order)))
        t = _table("Term structure (annualized basis)",
                   [("Base", "l"), ("Expiry", "l"), ("Days", "r"), *[(_venue(r, v), "r") for v in venues]])
        for tr in r.term_structure:
            t.add_row(_cell(tr.base), _cell(tr.expiry), _cell(f"{tr.days_to_expiry:.1f}"),
                      *[_cell(_pct(tr.annualized_basis.get(v), 2)) if v in tr.annualized_basis else _cell("")
                        for v in venues])
        _print_table(console, t)
        console.print(Text("signals:", style="bold"))
        for base in r.bases:
            ann = [row.annualized_basis for row in futures if row.base == base and row.annualized_basis is not None]
            if ann:
                shape = "contango" if all(a > 0 for a in ann) else "backwardation" if all(a < 0 for a in ann) \
                    else "mixed"
                console.print(Text(f"  {base}: futures curve in {shape}; annualized basis {_pct(min(ann), 2)} to "
                                   f"{_pct(max(ann), 2)}"))
    _footer(console, r)


# =========================================================================== render

_RENDERERS: dict[str, Any] = {
    "funding": _render_funding,
    "oi": _render_oi,
    "liquidations": _render_liquidations,
    "options": _render_options,
    "basis": _render_basis,
}


def render(
    report: Report,
    level: Literal[1, 2, 3] = 2,
    fmt: Literal["console", "json", "csv"] = "console",
    width: int | None = None,
    *,
    color: bool = False,
) -> str:
    """The report as text.

    Args:
        level: console detail: 1 one line per base, 2 the standard tables, 3 the full dashboard.
            JSON and CSV always hold everything.
        fmt: ``console`` (rich), ``json`` (``msgspec.json.encode``, schema :func:`json_schema`), ``csv``
            (header + one row per venue/instrument, columns :func:`csv_columns`).
        width: console width in characters (default 100).
        color: emit ANSI colours (for a terminal); plain text otherwise.

    Raises:
        ValueError: an unknown level or format.
    """
    if fmt == "json":
        return msgspec.json.encode(report).decode() + "\n"
    if fmt == "csv":
        return _render_csv(report)
    if fmt != "console":
        raise ValueError(f"unknown format {fmt!r}: expected console, json or csv")
    if level not in (1, 2, 3):
        raise ValueError(f"unknown level {level!r}: expected 1, 2 or 3")
    buf = io.StringIO()
    console = Console(file=buf, width=width or 100, force_terminal=color, color_system="standard" if color else None,
                      no_color=not color, highlight=False, emoji=False, markup=False, legacy_windows=False,
                      force_jupyter=False, force_interactive=False)
    _RENDERERS[report.command](console, report, level)
    text = buf.getvalue()
    if color:
        return text
    return "".join(line.rstrip() + "\n" for line in text.splitlines())


def venue_failure_summary(snapshot: Snapshot) -> str:
    """One line saying why nothing could be fetched: every venue's status and notes."""
    parts = []
    for v in snapshot.venues:
        notes = list(v.notes)
        if v.exchange == "bitmex" and v.status == "closed" and not any("closed" in n for n in notes):
            notes.insert(0, BITMEX_CLOSED)
        notes = notes or [v.status]
        parts.append(f"{VENUE_NAMES.get(v.exchange, v.exchange)}: {'; '.join(_note(v.exchange, n) for n in notes)}")
    return " | ".join(parts) if parts else "no venue was asked"
