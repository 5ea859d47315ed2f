"""Every derived analysis, once: funding, open interest, basis, options, liquidations, IV extremes.

The daemon's aggregators and the one-shot CLI both compute their numbers here,
so the two always agree (issue 8). Everything is pure: functions of the events
(``streamer.model`` Structs) and plain floats passed in, no I/O, no clock.
"Now" is always an argument (``as_of_ms``, event time in ms since epoch) or the
newest event ``ts`` in the input, never the wall clock.

Conventions, module-wide:

* Ratios are fractions (0.0001 = 0.01 %), as in the events. The one
  exception is a *change* named ``*_pct``, which is in percent (as in
  ``OpenInterestState.change_pct``).
* Funding is compared as ``rate_8h`` (the per-8-hour rate of
  :func:`streamer.model.funding_fields`); annualizing an 8 h rate is
  ``rate_8h × 3 × 365`` (simple, not compounded).
* A value that cannot be known is ``None``, never 0; inputs with a null
  field that a formula needs are skipped (and counted where a count is
  returned), never guessed.
* "Latest" per key is the event with the largest ``ts``; a tie goes to the
  one later in the input (the later arrival), as in ``FundingBoard``.
* Results are frozen msgspec Structs (``msgspec.json.encode`` gives the CLI's
  JSON form); lists in results are sorted deterministically.
* A time window ``(as_of_ms - window_ms, as_of_ms]`` is open on the left and
  closed on the right, exact to the ms (the daemon's ``SumWindow`` rounds the
  same window to its 1 s buckets).
"""

from __future__ import annotations

import datetime as _dt
import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal, TypeVar

import msgspec

from streamer.model import (
    STABLECOINS,
    Funding,
    Instrument,
    Liquidation,
    MarketEvent,
    OpenInterest,
    OptionTicker,
    Ticker,
    date_from_ms,
)

__all__ = [
    "DAY_MS",
    "HOUR_MS",
    "BasisPoint",
    "CascadeRisk",
    "ChainSummary",
    "ExpirySummary",
    "FundingAverage",
    "FundingLeg",
    "FundingSpread",
    "HeatBucket",
    "IvExtreme",
    "LiquidationTotals",
    "MaxPain",
    "OIBreakdown",
    "OptionChain",
    "PutCallRatios",
    "SideTotals",
    "Skew25",
    "TermPoint",
    "VenueShare",
    "annualize_rate_8h",
    "annualized_basis",
    "atm_iv",
    "average_rate_8h",
    "basis_term_structure",
    "cascade_risk",
    "change_pct",
    "days_to_expiry",
    "delta_iv",
    "expiry_ms_from_date",
    "expiry_summary",
    "funding_spread",
    "heatmap_bucket_usd",
    "iv_extreme",
    "iv_term_structure",
    "largest_liquidations",
    "latest_by_key",
    "liquidation_heatmap",
    "liquidation_totals",
    "liquidations_in_window",
    "margin_type",
    "max_pain",
    "now_and_past",
    "oi_breakdown",
    "oi_change_pct",
    "oi_total_change_pct",
    "oi_weights",
    "option_oi_usd",
    "pain_at",
    "percentile_rank",
    "premium",
    "put_call_ratios",
    "reference_price",
    "share_of",
    "skew_25d",
    "strike_ivs",
    "total_change_pct",
    "volume_weights",
    "weighted_funding",
]

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
DAYS_PER_YEAR = 365.0
FUNDINGS_PER_DAY_8H = 3.0
OPTION_EXPIRY_HOUR_UTC = 8
"""Deribit, OKX and Bybit options expire at 08:00 UTC on their expiry date."""

_E = TypeVar("_E", bound=MarketEvent)


def _asset(name: str) -> str:
    up = name.upper()
    return "BTC" if up == "XBT" else up


def latest_by_key(events: Iterable[_E]) -> dict[tuple[str, str], _E]:
    """The latest event per ``(exchange, symbol)``; events with a null ``symbol`` are left out.

    Latest = largest ``ts``; on a tie, the one later in ``events``.
    """
    out: dict[tuple[str, str], _E] = {}
    for ev in events:
        if ev.symbol is None:
            continue
        key = (ev.exchange, ev.symbol)
        prev = out.get(key)
        if prev is None or ev.ts >= prev.ts:
            out[key] = ev
    return out


# =========================================================================== funding


def annualize_rate_8h(rate_8h: float) -> float:
    """Simple annualization of a per-8-hour rate: ``rate_8h × 3 × 365``.

    Same as ``Funding.annualized`` (``rate × 24 / interval_h × 365``) once the
    rate is normalized to 8 h by :func:`streamer.model.funding_fields`.
    """
    return rate_8h * FUNDINGS_PER_DAY_8H * DAYS_PER_YEAR


class FundingAverage(msgspec.Struct, frozen=True, kw_only=True):
    """A weighted cross-venue average of ``rate_8h``.

    Attributes:
        rate_8h: ``Σ wᵢ·rate_8hᵢ / Σ wᵢ`` over the legs used; null when no leg has weight.
        annualized: ``rate_8h × 3 × 365``; null with it.
        weight_total: ``Σ wᵢ`` (USD for OI or volume weights).
        legs: ``(exchange, symbol)`` legs used.
        skipped: legs left out: ``rate_8h`` null, or weight missing, null or ≤ 0.
    """

    rate_8h: float | None
    annualized: float | None
    weight_total: float
    legs: int
    skipped: int


def weighted_funding(fundings: Iterable[Funding], weights: Mapping[tuple[str, str], float | None]) -> FundingAverage:
    """Weighted average of the latest ``rate_8h`` per ``(exchange, symbol)``.

    ``weights`` is keyed ``(exchange, symbol)`` like the legs: OI-weighted
    with :func:`oi_weights` (USD open interest), volume-weighted with
    :func:`volume_weights` (24 h USD volume). Only the latest funding event of
    each key counts (:func:`latest_by_key`).
    """
    num = 0.0
    den = 0.0
    legs = 0
    skipped = 0
    for key, ev in sorted(latest_by_key(fundings).items()):
        w = weights.get(key)
        if ev.rate_8h is None or w is None or not w > 0:
            skipped += 1
            continue
        num += w * ev.rate_8h
        den += w
        legs += 1
    if legs == 0:
        return FundingAverage(rate_8h=None, annualized=None, weight_total=0.0, legs=0, skipped=skipped)
    rate = num / den
    return FundingAverage(rate_8h=rate, annualized=annualize_rate_8h(rate), weight_total=den, legs=legs,
                          skipped=skipped)


def oi_weights(events: Iterable[OpenInterest | Ticker]) -> dict[tuple[str, str], float]:
    """USD open interest per ``(exchange, symbol)``: of the latest event that has one.

    Takes ``OpenInterest.oi_usd`` and ``Ticker.open_interest_usd``; events
    where it is null are ignored (an older known value is kept).
    """
    valued: list[tuple[MarketEvent, float]] = []
    for ev in events:
        usd = ev.oi_usd if isinstance(ev, OpenInterest) else ev.open_interest_usd
        if usd is not None:
            valued.append((ev, usd))
    return _latest_values(valued)


def volume_weights(tickers: Iterable[Ticker]) -> dict[tuple[str, str], float]:
    """24 h USD volume per ``(exchange, symbol)``: of the latest ticker that has one."""
    return _latest_values([(t, t.volume_24h_usd) for t in tickers if t.volume_24h_usd is not None])


def _latest_values(valued: Iterable[tuple[MarketEvent, float]]) -> dict[tuple[str, str], float]:
    best: dict[tuple[str, str], tuple[int, float]] = {}
    for ev, value in valued:
        if ev.symbol is None:
            continue
        key = (ev.exchange, ev.symbol)
        prev = best.get(key)
        if prev is None or ev.ts >= prev[0]:
            best[key] = (ev.ts, value)
    return {key: value for key, (_, value) in best.items()}


class FundingLeg(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One venue's funding: ``exchange``, unified ``symbol``, ``rate_8h`` (fraction per 8 h)."""

    exchange: str
    symbol: str
    rate_8h: float


class FundingSpread(msgspec.Struct, frozen=True, kw_only=True):
    """The widest funding pair between two different venues.

    Attributes:
        high: the leg with the higher ``rate_8h`` (the carry trade is SHORT here).
        low: the leg with the lower ``rate_8h`` (the carry trade is LONG here).
        spread_8h: ``high.rate_8h - low.rate_8h``, fraction per 8 h (≥ 0).
        carry_annualized: ``spread_8h × 3 × 365``, simple, before fees and price moves.
        venues: distinct exchanges that had a ``rate_8h``.
    """

    high: FundingLeg
    low: FundingLeg
    spread_8h: float
    carry_annualized: float
    venues: int


def funding_spread(fundings: Iterable[Funding]) -> FundingSpread | None:
    """Max − min ``rate_8h`` between venues, and the annualized carry of that pair.

    Legs are the latest event per ``(exchange, symbol)`` with ``rate_8h``
    known. The pair is the two legs ON DIFFERENT EXCHANGES with the largest
    ``hi - lo`` (two symbols of one venue are not a divergence); ties go to
    the pair first in ``(exchange, symbol)`` order. A trader long the low leg
    and short the high one receives ``hi`` and pays ``lo`` per 8 h:
    ``carry = (hi - lo) × 3 × 365``. None with fewer than two venues.
    """
    legs = [
        FundingLeg(exchange=ex, symbol=sym, rate_8h=ev.rate_8h)
        for (ex, sym), ev in sorted(latest_by_key(fundings).items())
        if ev.rate_8h is not None
    ]
    best: tuple[float, FundingLeg, FundingLeg] | None = None
    for hi in legs:
        for lo in legs:
            if hi.exchange == lo.exchange:
                continue
            spread = hi.rate_8h - lo.rate_8h
            if spread < 0:
                continue
            if best is None or spread > best[0]:
                best = (spread, hi, lo)
    if best is None:
        return None
    spread, hi, lo = best
    return FundingSpread(high=hi, low=lo, spread_8h=spread, carry_annualized=annualize_rate_8h(spread),
                         venues=len({leg.exchange for leg in legs}))


def average_rate_8h(history: Iterable[Funding], as_of_ms: int, window_ms: int = DAY_MS) -> float | None:
    """Arithmetic mean of ``rate_8h`` over ``(as_of_ms - window_ms, as_of_ms]`` (default 24 h).

    ``history`` is one venue symbol's funding events (REST settlements or live
    updates); each event with ``rate_8h`` known counts once, unweighted. None
    without a sample. (The daemon's ``FundingBoard`` takes the same mean over
    1-minute buckets.)
    """
    start = as_of_ms - window_ms
    rates = [ev.rate_8h for ev in history if ev.rate_8h is not None and start < ev.ts <= as_of_ms]
    return math.fsum(rates) / len(rates) if rates else None


# =========================================================================== open interest


def margin_type(instrument: Instrument | None) -> Literal["coin", "stablecoin"] | None:
    """How a contract is margined, from ``Instrument.settle``.

    ``coin`` when the settle currency is the base asset (XBT = BTC), or when
    settle is unknown but the contract is inverse (inverse contracts settle in
    their base coin by construction); ``stablecoin`` when settle is one of
    :data:`streamer.model.STABLECOINS`; None otherwise (settled in another
    coin, e.g. a BitMEX quanto, or no metadata).
    """
    if instrument is None:
        return None
    settle = instrument.settle
    if settle is None:
        return "coin" if instrument.inverse else None
    settle = _asset(settle)
    if settle == _asset(instrument.base):
        return "coin"
    if settle in STABLECOINS:
        return "stablecoin"
    return None


class VenueShare(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One venue's USD open interest and its ``share`` of the total (fraction; null when the total is 0)."""

    exchange: str
    oi_usd: float
    share: float | None


class OIBreakdown(msgspec.Struct, frozen=True, kw_only=True):
    """Open interest across venues.

    Attributes:
        total_usd: Σ ``oi_usd`` of the legs (latest per ``(exchange, symbol)``).
        by_venue: per exchange (its symbols summed), largest first, then by name.
        coin_margined_usd: legs whose :func:`margin_type` is ``coin``.
        stablecoin_margined_usd: legs whose :func:`margin_type` is ``stablecoin``.
        unclassified_usd: legs with no instrument metadata or another settle coin.
        legs: ``(exchange, symbol)`` legs with a known ``oi_usd``.
        skipped: legs whose latest value has ``oi_usd`` null.
    """

    total_usd: float
    by_venue: list[VenueShare]
    coin_margined_usd: float
    stablecoin_margined_usd: float
    unclassified_usd: float
    legs: int
    skipped: int


def _instrument_index(instruments: Iterable[Instrument]) -> dict[tuple[str, str], Instrument]:
    index: dict[tuple[str, str], Instrument] = {}
    for inst in instruments:
        index[(inst.exchange, inst.raw_symbol)] = inst
        index.setdefault((inst.exchange, inst.symbol), inst)
    return index


def _find(index: Mapping[tuple[str, str], Instrument], ev: MarketEvent) -> Instrument | None:
    found = index.get((ev.exchange, ev.raw_symbol))
    if found is None and ev.symbol is not None:
        found = index.get((ev.exchange, ev.symbol))
    return found


def oi_breakdown(events: Iterable[OpenInterest | Ticker], instruments: Iterable[Instrument] = ()) -> OIBreakdown:
    """Total USD open interest, each venue's share, and the coin/stablecoin-margined split.

    Each ``(exchange, symbol)`` counts once, with its latest event
    (``OpenInterest.oi_usd`` or ``Ticker.open_interest_usd``). ``share`` =
    venue USD / total USD. The margin split looks up each leg's instrument by
    ``(exchange, raw_symbol)``, else ``(exchange, unified symbol)``.
    """
    index = _instrument_index(instruments)
    venues: dict[str, float] = {}
    coin = stable = other = 0.0
    legs = skipped = 0
    for _, ev in sorted(latest_by_key(events).items()):
        usd = ev.oi_usd if isinstance(ev, OpenInterest) else ev.open_interest_usd
        if usd is None:
            skipped += 1
            continue
        legs += 1
        venues[ev.exchange] = venues.get(ev.exchange, 0.0) + usd
        kind = margin_type(_find(index, ev))
        if kind == "coin":
            coin += usd
        elif kind == "stablecoin":
            stable += usd
        else:
            other += usd
    total = math.fsum(venues.values())
    by_venue = [
        VenueShare(exchange=ex, oi_usd=usd, share=usd / total if total > 0 else None)
        for ex, usd in sorted(venues.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    return OIBreakdown(total_usd=total, by_venue=by_venue, coin_margined_usd=coin, stablecoin_margined_usd=stable,
                       unclassified_usd=other, legs=legs, skipped=skipped)


def change_pct(
    samples: Iterable[tuple[int, float | None]],
    horizon_ms: int,
    *,
    as_of_ms: int | None = None,
    tolerance: float | None = 1 / 12,
) -> float | None:
    """Percent change of a value over ``horizon_ms``, by event time.

    ``samples`` are ``(ts, value)`` in any order; null values are ignored.

    * now: the newest sample with ``ts <= as_of_ms`` (the newest of all when
      ``as_of_ms`` is None), at time ``t``;
    * past: the newest sample with ``ts <= t - horizon_ms`` and, unless
      ``tolerance`` is None, ``ts >= t - horizon_ms - tolerance × horizon_ms``
      (default 1/12 of the horizon: 2 h for 24 h, 14 h for 7 d, as the daemon's
      ``OpenInterestState``);
    * ``change_pct = (now - past) / past × 100``.

    None when there is no now or past sample, or past is 0.
    """
    pair = now_and_past(samples, horizon_ms, as_of_ms=as_of_ms, tolerance=tolerance)
    if pair is None or pair[1] == 0:
        return None
    now, past = pair
    return (now - past) / past * 100.0


def now_and_past(
    samples: Iterable[tuple[int, float | None]],
    horizon_ms: int,
    *,
    as_of_ms: int | None = None,
    tolerance: float | None = 1 / 12,
) -> tuple[float, float] | None:
    """The ``(now, past)`` values :func:`change_pct` compares (same selection); None when either is missing."""
    points = sorted((ts, v) for ts, v in samples if v is not None)
    if as_of_ms is not None:
        points = [p for p in points if p[0] <= as_of_ms]
    if not points:
        return None
    t, now = points[-1]
    edge = t - horizon_ms
    oldest = None if tolerance is None else edge - tolerance * horizon_ms
    for ts, v in reversed(points):
        if ts <= edge:
            if oldest is None or ts >= oldest:
                return now, v
            return None
    return None


def total_change_pct(
    series: Iterable[Iterable[tuple[int, float | None]]],
    horizon_ms: int,
    *,
    as_of_ms: int | None = None,
    tolerance: float | None = 1 / 12,
) -> float | None:
    """Percent change of a SUM of several series (e.g. one venue symbol's OI each) over ``horizon_ms``.

    Each series contributes its :func:`now_and_past` pair; a series without
    both is left out of both sums (so a venue without history does not read
    as growth). ``(Σ now - Σ past) / Σ past × 100``; None without a pair or
    when ``Σ past`` is 0.
    """
    now_sum: list[float] = []
    past_sum: list[float] = []
    for samples in series:
        pair = now_and_past(samples, horizon_ms, as_of_ms=as_of_ms, tolerance=tolerance)
        if pair is not None:
            now_sum.append(pair[0])
            past_sum.append(pair[1])
    past = math.fsum(past_sum)
    if not past_sum or past == 0:
        return None
    return (math.fsum(now_sum) - past) / past * 100.0


def share_of(part: float, total: float) -> float | None:
    """``part / total`` (a fraction, as ``VenueShare.share``); None when ``total <= 0``."""
    return part / total if total > 0 else None


def oi_change_pct(
    events: Iterable[OpenInterest | Ticker],
    horizon_ms: int,
    *,
    unit: Literal["usd", "base"] = "usd",
    as_of_ms: int | None = None,
    tolerance: float | None = 1 / 12,
) -> float | None:
    """:func:`change_pct` of one ``(exchange, symbol)``'s open interest history.

    ``unit`` ``base`` (``oi_base`` / ``Ticker.open_interest``) measures the
    position change; ``usd`` (``oi_usd`` / ``open_interest_usd``) also moves
    with price. The caller passes the events of one venue symbol.
    """
    return change_pct(_oi_samples(events, unit), horizon_ms, as_of_ms=as_of_ms, tolerance=tolerance)


def _oi_samples(
    events: Iterable[OpenInterest | Ticker], unit: Literal["usd", "base"]
) -> list[tuple[int, float | None]]:
    samples: list[tuple[int, float | None]] = []
    for ev in events:
        if isinstance(ev, OpenInterest):
            samples.append((ev.ts, ev.oi_usd if unit == "usd" else ev.oi_base))
        else:
            samples.append((ev.ts, ev.open_interest_usd if unit == "usd" else ev.open_interest))
    return samples


def oi_total_change_pct(
    groups: Iterable[Iterable[OpenInterest | Ticker]],
    horizon_ms: int,
    *,
    unit: Literal["usd", "base"] = "usd",
    as_of_ms: int | None = None,
    tolerance: float | None = 1 / 12,
) -> float | None:
    """:func:`total_change_pct` of several venue symbols' open interest (one group of events per symbol)."""
    return total_change_pct((_oi_samples(g, unit) for g in groups), horizon_ms, as_of_ms=as_of_ms,
                            tolerance=tolerance)


# =========================================================================== basis


def premium(mark: float | None, index: float | None) -> float | None:
    """``(mark - index) / index`` (fraction): the perpetual premium, or a dated future's basis.

    None when either price is null or ``index <= 0``.
    """
    if mark is None or index is None or not index > 0:
        return None
    return (mark - index) / index


def days_to_expiry(expiry_ms: int, as_of_ms: int) -> float:
    """``(expiry_ms - as_of_ms) / 86 400 000``: fractional days (negative once expired)."""
    return (expiry_ms - as_of_ms) / DAY_MS


def annualized_basis(basis: float | None, days: float) -> float | None:
    """SIMPLE annualization: ``basis × 365 / days`` (not ``(1 + basis)^(365/days) - 1``).

    None when ``basis`` is null or ``days <= 0`` (expired or expiring now).
    """
    if basis is None or not days > 0:
        return None
    return basis * DAYS_PER_YEAR / days


class BasisPoint(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A dated future's basis at ``as_of_ms``.

    Attributes:
        expiry: ``YYYY-MM-DD`` (UTC) of ``expiry_ms``.
        days_to_expiry: :func:`days_to_expiry`.
        basis: :func:`premium` of ``mark_price`` over ``index_price`` (fraction); null when a price is.
        annualized_basis: :func:`annualized_basis` (fraction per year, simple).
    """

    exchange: str
    symbol: str | None
    raw_symbol: str
    expiry: str
    expiry_ms: int
    days_to_expiry: float
    mark_price: float | None
    index_price: float | None
    basis: float | None
    annualized_basis: float | None


def basis_term_structure(
    tickers: Iterable[Ticker], instruments: Iterable[Instrument], as_of_ms: int
) -> list[BasisPoint]:
    """Basis and annualized basis of every dated future, sorted by expiry (then exchange, symbol).

    Each future is the latest ticker per ``(exchange, symbol)`` whose
    instrument (found by ``(exchange, raw_symbol)``, else unified symbol) is
    ``kind == "future"`` with an ``expiry_ms`` after ``as_of_ms``. Perpetuals,
    unknown instruments and expired futures are left out. Uses ``mark_price``
    and the ticker's own ``index_price``; a null price gives a null basis (the
    row stays, so a missing quote shows).
    """
    index = _instrument_index(instruments)
    out = []
    for t in latest_by_key(tickers).values():
        inst = _find(index, t)
        if inst is None or inst.kind != "future" or inst.expiry_ms is None or inst.expiry_ms <= as_of_ms:
            continue
        days = days_to_expiry(inst.expiry_ms, as_of_ms)
        basis = premium(t.mark_price, t.index_price)
        out.append(
            BasisPoint(
                exchange=t.exchange, symbol=t.symbol, raw_symbol=t.raw_symbol, expiry=date_from_ms(inst.expiry_ms),
                expiry_ms=inst.expiry_ms, days_to_expiry=days, mark_price=t.mark_price, index_price=t.index_price,
                basis=basis, annualized_basis=annualized_basis(basis, days),
            )
        )
    out.sort(key=lambda p: (p.expiry_ms, p.exchange, p.symbol or "", p.raw_symbol))
    return out


# =========================================================================== options


def expiry_ms_from_date(expiry: str, hour_utc: int = OPTION_EXPIRY_HOUR_UTC) -> int:
    """ms since epoch of ``YYYY-MM-DD`` (``OptionTicker.expiry``) at ``hour_utc`` (default 08:00 UTC).

    Raises:
        ValueError: ``expiry`` is not a ``YYYY-MM-DD`` date.
    """
    day = _dt.datetime.strptime(expiry, "%Y-%m-%d").replace(hour=hour_utc, tzinfo=_dt.UTC)
    return int(day.timestamp()) * 1000


def reference_price(rows: Iterable[OptionTicker]) -> float | None:
    """The expiry's forward/underlying price: ``underlying_price`` of the latest row that has one.

    Latest = largest ``ts``; ties go to the higher strike, then ``P`` over
    ``C`` (an arbitrary but fixed order). Deribit quotes the expiry's forward
    here; other venues the index.
    """
    best: tuple[int, float, str, float] | None = None
    for r in rows:
        if r.underlying_price is None:
            continue
        cand = (r.ts, r.strike, r.kind, r.underlying_price)
        if best is None or cand[:3] > best[:3]:
            best = cand
    return None if best is None else best[3]


def strike_ivs(rows: Iterable[OptionTicker]) -> list[tuple[float, float]]:
    """``(strike, iv)`` sorted by strike, from ``mark_iv``.

    Per strike: the mean of the call's and the put's ``mark_iv`` when both are
    known, else the one that is. Strikes with neither are left out.
    """
    by_strike: dict[float, dict[str, float]] = {}
    for r in rows:
        if r.mark_iv is not None:
            by_strike.setdefault(r.strike, {})[r.kind] = r.mark_iv
    return [(k, sum(ivs.values()) / len(ivs)) for k, ivs in sorted(by_strike.items())]


def _interpolate(points: Sequence[tuple[float, float]], x: float) -> float | None:
    """Linear interpolation on ``points`` sorted by x; exact hits average; None outside the range."""
    exact = [y for px, y in points if px == x]
    if exact:
        return sum(exact) / len(exact)
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        if x0 < x < x1:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return None


def atm_iv(rows: Iterable[OptionTicker], price: float | None = None) -> float | None:
    """At-the-money IV of one expiry (fraction).

    ``price`` defaults to :func:`reference_price`. With per-strike IVs from
    :func:`strike_ivs` (call/put mean), the IV at ``price`` interpolated
    linearly in strike between the two listed strikes bracketing it
    (``iv = iv₀ + (iv₁ - iv₀)·(price - K₀)/(K₁ - K₀)``); a strike equal to
    ``price`` gives its own IV. None when ``price`` is unknown or outside the
    strikes with an IV (no extrapolation).
    """
    rows = list(rows)
    if price is None:
        price = reference_price(rows)
    if price is None:
        return None
    return _interpolate(strike_ivs(rows), price)


def delta_iv(rows: Iterable[OptionTicker], kind: Literal["C", "P"], target_delta: float) -> float | None:
    """``mark_iv`` of ``kind`` at ``target_delta``, interpolated linearly in delta.

    Points are the ``kind`` rows with ``delta`` and ``mark_iv`` known, sorted
    by delta. A row at exactly ``target_delta`` gives its IV (several: their
    mean); otherwise the IV is interpolated between the two neighbours whose
    deltas bracket the target. None when no pair brackets it.
    """
    points = sorted(
        (r.delta, r.mark_iv) for r in rows if r.kind == kind and r.delta is not None and r.mark_iv is not None
    )
    return _interpolate(points, target_delta)


class Skew25(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """25-delta skew (fractions of IV).

    Attributes:
        put_iv: IV of the −0.25-delta put (:func:`delta_iv`).
        call_iv: IV of the +0.25-delta call.
        skew: ``put_iv - call_iv`` (positive: downside protection richer); null unless both known.
    """

    put_iv: float | None
    call_iv: float | None
    skew: float | None


def skew_25d(rows: Iterable[OptionTicker]) -> Skew25:
    """25-delta skew of one expiry: IV(25Δ put) − IV(25Δ call), each by :func:`delta_iv`.

    Deltas are the venue's Black-Scholes deltas as published (puts negative).
    """
    rows = list(rows)
    put = delta_iv(rows, "P", -0.25)
    call = delta_iv(rows, "C", 0.25)
    skew = None if put is None or call is None else put - call
    return Skew25(put_iv=put, call_iv=call, skew=skew)


class PutCallRatios(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Put/call ratios of one expiry or chain (base units).

    Attributes:
        volume: Σ put ``volume_24h`` / Σ call ``volume_24h``; null when the call sum is 0.
        open_interest: Σ put ``open_interest`` / Σ call ``open_interest``; null when the call sum is 0.
        put_volume, call_volume, put_oi, call_oi: the sums (null fields count as absent).
    """

    volume: float | None
    open_interest: float | None
    put_volume: float
    call_volume: float
    put_oi: float
    call_oi: float


def put_call_ratios(rows: Iterable[OptionTicker]) -> PutCallRatios:
    """Put/call ratio by 24 h volume and by open interest (see :class:`PutCallRatios`)."""
    pv = cv = po = co = 0.0
    for r in rows:
        vol = r.volume_24h or 0.0
        oi = r.open_interest or 0.0
        if r.kind == "P":
            pv += vol
            po += oi
        else:
            cv += vol
            co += oi
    return PutCallRatios(
        volume=pv / cv if cv > 0 else None,
        open_interest=po / co if co > 0 else None,
        put_volume=pv, call_volume=cv, put_oi=po, call_oi=co,
    )


def pain_at(rows: Iterable[OptionTicker], settlement: float) -> float:
    """Total payout to option holders if the expiry settles at ``settlement`` (USD).

    ``pain(S) = Σ_calls OI·max(0, S - K) + Σ_puts OI·max(0, K - S)``, OI in
    base units (null OI counts as 0), so the payout is in the quote currency.
    """
    total = 0.0
    for r in rows:
        oi = r.open_interest
        if not oi:
            continue
        intrinsic = settlement - r.strike if r.kind == "C" else r.strike - settlement
        if intrinsic > 0:
            total += oi * intrinsic
    return total


class MaxPain(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """The max-pain ``strike`` and the holders' total ``payout_usd`` there (:func:`pain_at`)."""

    strike: float
    payout_usd: float


def max_pain(rows: Iterable[OptionTicker]) -> MaxPain | None:
    """The listed strike S minimizing :func:`pain_at` (holders' payout); ties go to the lower strike.

    Candidates are every strike listed in ``rows`` (with or without OI). None
    when no row has open interest.
    """
    rows = list(rows)
    if not any(r.open_interest for r in rows):
        return None
    best: MaxPain | None = None
    for strike in sorted({r.strike for r in rows}):
        pain = pain_at(rows, strike)
        if best is None or pain < best.payout_usd:
            best = MaxPain(strike=strike, payout_usd=pain)
    return best


def option_oi_usd(rows: Iterable[OptionTicker], price: float | None) -> float | None:
    """Σ ``open_interest`` (base units, null = 0) × ``price`` (the expiry's reference price); None without a price."""
    if price is None:
        return None
    return math.fsum(r.open_interest or 0.0 for r in rows) * price


class ExpirySummary(msgspec.Struct, frozen=True, kw_only=True):
    """One expiry of one underlying at ``as_of_ms``.

    Attributes:
        expiry: ``YYYY-MM-DD``; ``expiry_ms`` at 08:00 UTC that day.
        days_to_expiry: :func:`days_to_expiry`.
        underlying_price: :func:`reference_price` (forward on Deribit).
        atm_iv: :func:`atm_iv` at ``underlying_price``.
        skew: :func:`skew_25d`.
        pcr: :func:`put_call_ratios`.
        max_pain: :func:`max_pain`.
        oi_base: Σ open interest, base units; ``oi_usd`` = that × ``underlying_price``.
        strikes: listed strikes; ``options``: rows (calls + puts).
    """

    expiry: str
    expiry_ms: int
    days_to_expiry: float
    underlying_price: float | None
    atm_iv: float | None
    skew: Skew25
    pcr: PutCallRatios
    max_pain: MaxPain | None
    oi_base: float
    oi_usd: float | None
    strikes: int
    options: int


def expiry_summary(
    rows: Sequence[OptionTicker], expiry: str, as_of_ms: int, price: float | None = None
) -> ExpirySummary:
    """Every per-expiry analysis of ``rows`` (one underlying, one expiry); ``price`` defaults to the reference."""
    expiry_ms = expiry_ms_from_date(expiry)
    if price is None:
        price = reference_price(rows)
    return ExpirySummary(
        expiry=expiry,
        expiry_ms=expiry_ms,
        days_to_expiry=days_to_expiry(expiry_ms, as_of_ms),
        underlying_price=price,
        atm_iv=atm_iv(rows, price),
        skew=skew_25d(rows),
        pcr=put_call_ratios(rows),
        max_pain=max_pain(rows),
        oi_base=math.fsum(r.open_interest or 0.0 for r in rows),
        oi_usd=option_oi_usd(rows, price),
        strikes=len({r.strike for r in rows}),
        options=len(rows),
    )


class ChainSummary(msgspec.Struct, frozen=True, kw_only=True):
    """One underlying's option chain at ``as_of_ms``.

    Attributes:
        expiries: unexpired expiries, nearest first (the IV term structure is their ``atm_iv``).
        pcr: put/call ratios over all those expiries.
        total_oi_usd: Σ of the expiries' ``oi_usd`` (an expiry without a price adds nothing).
    """

    underlying: str
    exchange: str | None
    as_of_ms: int
    expiries: list[ExpirySummary]
    pcr: PutCallRatios
    total_oi_usd: float


class TermPoint(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One point of the ATM IV term structure."""

    expiry: str
    days_to_expiry: float
    atm_iv: float


def iv_term_structure(expiries: Iterable[ExpirySummary]) -> list[TermPoint]:
    """ATM IV per expiry, nearest first; expiries without an ATM IV are left out."""
    points = [
        TermPoint(expiry=e.expiry, days_to_expiry=e.days_to_expiry, atm_iv=e.atm_iv)
        for e in expiries
        if e.atm_iv is not None
    ]
    points.sort(key=lambda p: (p.days_to_expiry, p.expiry))
    return points


class OptionChain:
    """Latest option tickers: underlying → expiry → ``(strike, kind)`` → :class:`OptionTicker`.

    ``update`` is O(1) and keeps, per key, the ticker with the largest ``ts``
    (a tie goes to the later arrival). One chain holds one venue's options:
    give ``exchange`` and tickers from other venues are refused (``update``
    returns False), since two venues' same strike would overwrite each other.
    (A venue listing one strike twice for an underlying, like Bybit's USDC and
    USDT options, also shares a key: the latest wins.)
    """

    def __init__(self, exchange: str | None = None) -> None:
        self.exchange = exchange
        self._chain: dict[str, dict[str, dict[tuple[float, str], OptionTicker]]] = {}

    def update(self, ev: OptionTicker) -> bool:
        """Store ``ev`` if it is the latest of its key; False when older, or from another venue."""
        if self.exchange is not None and ev.exchange != self.exchange:
            return False
        expiries = self._chain.get(ev.underlying)
        if expiries is None:
            expiries = self._chain[ev.underlying] = {}
        rows = expiries.get(ev.expiry)
        if rows is None:
            rows = expiries[ev.expiry] = {}
        key = (ev.strike, ev.kind)
        prev = rows.get(key)
        if prev is not None and ev.ts < prev.ts:
            return False
        rows[key] = ev
        return True

    def __len__(self) -> int:
        """Options held."""
        return sum(len(rows) for expiries in self._chain.values() for rows in expiries.values())

    def underlyings(self) -> list[str]:
        """Underlyings held, sorted."""
        return sorted(self._chain)

    def expiries(self, underlying: str) -> list[str]:
        """Expiries held for ``underlying``, nearest first (``YYYY-MM-DD`` sorts by date)."""
        return sorted(self._chain.get(underlying, {}))

    def rows(self, underlying: str, expiry: str) -> list[OptionTicker]:
        """The latest ticker of each option of one expiry, by strike then kind (C before P)."""
        rows = self._chain.get(underlying, {}).get(expiry, {})
        return [rows[key] for key in sorted(rows)]

    def prune(self, as_of_ms: int) -> int:
        """Drop expiries whose 08:00 UTC expiry is at or before ``as_of_ms``; returns options dropped."""
        dropped = 0
        for underlying in list(self._chain):
            expiries = self._chain[underlying]
            for expiry in list(expiries):
                if _expired(expiry, as_of_ms):
                    dropped += len(expiries.pop(expiry))
            if not expiries:
                del self._chain[underlying]
        return dropped

    def summary(self, underlying: str, as_of_ms: int) -> ChainSummary:
        """:func:`expiry_summary` of every unexpired expiry of ``underlying``, nearest first."""
        expiries = []
        every: list[OptionTicker] = []
        for expiry in self.expiries(underlying):
            if _expired(expiry, as_of_ms):
                continue
            rows = self.rows(underlying, expiry)
            every.extend(rows)
            expiries.append(expiry_summary(rows, expiry, as_of_ms))
        total = math.fsum(e.oi_usd for e in expiries if e.oi_usd is not None)
        return ChainSummary(underlying=underlying, exchange=self.exchange, as_of_ms=as_of_ms, expiries=expiries,
                            pcr=put_call_ratios(every), total_oi_usd=total)


def _expired(expiry: str, as_of_ms: int) -> bool:
    """True once ``expiry`` (08:00 UTC) is at or before ``as_of_ms``; an unparseable expiry counts as expired."""
    try:
        return expiry_ms_from_date(expiry) <= as_of_ms
    except ValueError:
        return True


# =========================================================================== IV extreme


def percentile_rank(value: float, history: Sequence[float]) -> float | None:
    """Mid-rank percentile of ``value`` in ``history``, 0..100.

    ``100 × (#{h < value} + ½·#{h == value}) / n``; None when ``history`` is empty.
    """
    if not history:
        return None
    below = sum(1 for h in history if h < value)
    equal = sum(1 for h in history if h == value)
    return 100.0 * (below + 0.5 * equal) / len(history)


class IvExtreme(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Whether an ATM IV is extreme.

    Attributes:
        extreme: True when a threshold was crossed.
        trigger: ``high``, ``low`` (absolute IV), ``high_percentile``, ``low_percentile``, or null.
        value: the ATM IV tested (fraction).
        threshold: the crossed threshold (IV fraction for ``high``/``low``, percent
            for the percentile triggers); null when none was crossed.
        percentile: :func:`percentile_rank` of ``value`` in the history; null without one.
    """

    extreme: bool
    trigger: Literal["high", "low", "high_percentile", "low_percentile"] | None
    value: float
    threshold: float | None
    percentile: float | None


def iv_extreme(
    iv: float,
    *,
    high: float | None = None,
    low: float | None = None,
    history: Sequence[float] = (),
    high_percentile: float | None = None,
    low_percentile: float | None = None,
    min_history: int = 1,
) -> IvExtreme:
    """Flag an ATM IV against absolute thresholds and/or its own history.

    Checked in this order, the first hit wins: ``iv >= high``; ``iv <= low``;
    then, when ``history`` has at least ``min_history`` values,
    ``percentile_rank(iv, history) >= high_percentile`` and ``<= low_percentile``
    (percent, 0..100). Every threshold left None is not checked.
    """
    pct = percentile_rank(iv, history) if len(history) >= max(1, min_history) else None
    p = math.nan if pct is None else pct  # NaN compares False: no percentile, no percentile trigger
    checks: list[tuple[Literal["high", "low", "high_percentile", "low_percentile"], float | None, bool]] = [
        ("high", high, high is not None and iv >= high),
        ("low", low, low is not None and iv <= low),
        ("high_percentile", high_percentile, high_percentile is not None and p >= high_percentile),
        ("low_percentile", low_percentile, low_percentile is not None and p <= low_percentile),
    ]
    for trigger, threshold, hit in checks:
        if hit:
            return IvExtreme(extreme=True, trigger=trigger, value=iv, threshold=threshold, percentile=pct)
    return IvExtreme(extreme=False, trigger=None, value=iv, threshold=None, percentile=pct)


# =========================================================================== liquidations


def liquidations_in_window(liqs: Iterable[Liquidation], as_of_ms: int, window_ms: int) -> list[Liquidation]:
    """The liquidations with ``as_of_ms - window_ms < ts <= as_of_ms``, in input order."""
    start = as_of_ms - window_ms
    return [liq for liq in liqs if start < liq.ts <= as_of_ms]


class SideTotals(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Liquidation totals by liquidated position side.

    Attributes:
        long_usd, short_usd: Σ ``value_usd`` of sized long / short liquidations.
        total_usd: ``long_usd + short_usd``.
        long_count, short_count: every liquidation, sized or not.
        unsized: liquidations with ``value_usd`` null (counted, not summed).
    """

    long_usd: float
    short_usd: float
    total_usd: float
    long_count: int
    short_count: int
    unsized: int


class LiquidationTotals(msgspec.Struct, frozen=True, kw_only=True):
    """``overall`` totals and ``by_venue`` (exchange → totals, sorted by exchange)."""

    overall: SideTotals
    by_venue: dict[str, SideTotals]


def _side_totals(liqs: Iterable[Liquidation]) -> SideTotals:
    usd = {"long": 0.0, "short": 0.0}
    count = {"long": 0, "short": 0}
    unsized = 0
    for liq in liqs:
        count[liq.side] += 1
        if liq.value_usd is None:
            unsized += 1
        else:
            usd[liq.side] += liq.value_usd
    return SideTotals(long_usd=usd["long"], short_usd=usd["short"], total_usd=usd["long"] + usd["short"],
                      long_count=count["long"], short_count=count["short"], unsized=unsized)


def liquidation_totals(liqs: Iterable[Liquidation]) -> LiquidationTotals:
    """Totals by side, overall and per venue, of the given liquidations (window them first)."""
    liqs = list(liqs)
    venues: dict[str, list[Liquidation]] = {}
    for liq in liqs:
        venues.setdefault(liq.exchange, []).append(liq)
    return LiquidationTotals(
        overall=_side_totals(liqs),
        by_venue={ex: _side_totals(venues[ex]) for ex in sorted(venues)},
    )


def largest_liquidations(liqs: Iterable[Liquidation], n: int) -> list[Liquidation]:
    """The ``n`` largest by ``value_usd`` (unsized ones left out); ties: newer first, then by exchange."""
    sized = [liq for liq in liqs if liq.value_usd is not None]
    sized.sort(key=lambda liq: (-(liq.value_usd or 0.0), -liq.ts, liq.exchange))
    return sized[: max(0, n)]


class HeatBucket(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Liquidations with ``price_low <= price < price_high``: USD by side, and ``count`` (sized or not)."""

    price_low: float
    price_high: float
    long_usd: float
    short_usd: float
    count: int


def heatmap_bucket_usd(price: float, fraction: float = 0.0025) -> float:
    """A round price-bucket width near ``price × fraction`` (default 0.25 %): the smallest of
    1, 2, 2.5, 5 × 10^k at or above it (95 000 → 250; 3 400 → 10; 150 → 0.5).

    Raises:
        ValueError: ``price`` or ``fraction`` is not positive.
    """
    if not price > 0 or not fraction > 0:
        raise ValueError(f"price and fraction must be positive, got {price!r}, {fraction!r}")
    raw = price * fraction
    scale = 10.0 ** math.floor(math.log10(raw))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        if step * scale >= raw * (1 - 1e-12):
            return step * scale
    return 10.0 * scale  # pragma: no cover - the loop ends at 10 × scale > raw


def liquidation_heatmap(liqs: Iterable[Liquidation], bucket_usd: float) -> list[HeatBucket]:
    """Liquidation USD by price bucket and side, lowest price first; only non-empty buckets.

    Bucket ``i = floor(price / bucket_usd)`` spans ``[i·w, (i+1)·w)``.
    Liquidations with a null price are left out; a null ``value_usd`` adds to
    ``count`` only.

    Raises:
        ValueError: ``bucket_usd`` is not positive.
    """
    if not bucket_usd > 0:
        raise ValueError(f"bucket_usd must be positive, got {bucket_usd!r}")
    cells: dict[int, list[float]] = {}  # i -> [long_usd, short_usd, count]
    for liq in liqs:
        if liq.price is None:
            continue
        cell = cells.setdefault(math.floor(liq.price / bucket_usd), [0.0, 0.0, 0.0])
        cell[2] += 1
        if liq.value_usd is not None:
            cell[0 if liq.side == "long" else 1] += liq.value_usd
    return [
        HeatBucket(price_low=i * bucket_usd, price_high=(i + 1) * bucket_usd, long_usd=c[0], short_usd=c[1],
                   count=int(c[2]))
        for i, c in sorted(cells.items())
    ]


class CascadeRisk(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Cascade risk of one side (or both) at ``as_of_ms``.

    Attributes:
        window_usd: ``N``, liquidation USD in the window.
        baseline_usd: ``B``, the lookback's USD per window length; null without enough lookback.
        threshold_usd: ``T = max(min_usd, baseline_multiple × B)`` (``min_usd`` while B is null).
        score: ``N / T``; ≥ 1 is where the ``liquidation_cascade`` rule's firing condition holds.
        level: ``low`` (score < 0.5), ``elevated`` (0.5 ≤ score < 1), ``high`` (≥ 1).
    """

    side: Literal["long", "short"] | None
    window_usd: float
    baseline_usd: float | None
    threshold_usd: float
    score: float
    level: Literal["low", "elevated", "high"]


def cascade_risk(
    liqs: Iterable[Liquidation],
    as_of_ms: int,
    *,
    side: Literal["long", "short"] | None = None,
    window_ms: int = 60_000,
    baseline_ms: int = 3_600_000,
    min_usd: float = 5_000_000.0,
    baseline_multiple: float = 5.0,
    coverage_start_ms: int | None = None,
) -> CascadeRisk:
    """Liquidation cascade risk: the window's notional against the ``liquidation_cascade`` threshold.

    Same definition as the rule (defaults = its defaults), exact to the ms:

    * ``N`` = Σ ``value_usd`` of ``side`` (both when None) in ``(as_of - W, as_of]``;
    * lookback ``(as_of - W - L, as_of - W]``, of which ``covered`` ms were
      observed: ``L``, or ``(as_of - W) - coverage_start_ms`` when the data
      starts later; ``B = lookback USD × W / covered``, null while ``covered < W``;
    * ``T = max(min_usd, baseline_multiple × B)``; ``score = N / T``.

    Raises:
        ValueError: ``window_ms``, ``baseline_ms`` or ``min_usd`` is not positive.
    """
    if window_ms <= 0 or baseline_ms <= 0 or not min_usd > 0:
        raise ValueError("window_ms, baseline_ms and min_usd must be positive")
    window_start = as_of_ms - window_ms
    lookback_start = window_start - baseline_ms
    n_usd = 0.0
    lookback = 0.0
    for liq in liqs:
        if liq.value_usd is None or (side is not None and liq.side != side):
            continue
        if window_start < liq.ts <= as_of_ms:
            n_usd += liq.value_usd
        elif lookback_start < liq.ts <= window_start:
            lookback += liq.value_usd
    covered = baseline_ms if coverage_start_ms is None else min(baseline_ms, window_start - coverage_start_ms)
    baseline = lookback * window_ms / covered if covered >= window_ms else None
    threshold = min_usd if baseline is None else max(min_usd, baseline_multiple * baseline)
    score = n_usd / threshold
    level: Literal["low", "elevated", "high"] = "high" if score >= 1 else "elevated" if score >= 0.5 else "low"
    return CascadeRisk(side=side, window_usd=n_usd, baseline_usd=baseline, threshold_usd=threshold, score=score,
                       level=level)
