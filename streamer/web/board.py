"""The dashboard's ``state`` snapshot: every panel's numbers from LiveState and the analytics, once per tick.

No formula lives here or in the page's JS: funding fields come from the events (``rate_8h``,
``annualized`` as the adapters computed them), OI changes from :class:`OpenInterestState`, and the
heatmap, IV term structure, 25-delta skew, basis and funding spread from
:mod:`streamer.aggregate.analytics`. Windows use event time: "now" is ``LiveState.now_ms`` (the
newest event ``ts``). ``wall_ms`` (the daemon's clock when the snapshot was built) is passed in only
so the page can count down to the next funding settlement and show how old the data is.

Sizes are bounded whatever the market (``all_market`` tracks hundreds of symbols): at most
``FUNDING_ROWS_MAX`` funding rows and ``OI_ROWS_MAX`` open-interest rows (the full lists are on
``/state/funding`` and ``/state/state``); the heatmap covers the ``HEAT_ASSETS`` assets with the most
liquidated USD in the window, at most ``HEAT_MAX_BUCKETS`` buckets each.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

from streamer.aggregate.analytics import (
    basis_term_structure,
    funding_spread,
    heatmap_bucket_usd,
    iv_term_structure,
    liquidation_heatmap,
    liquidation_totals,
    liquidations_in_window,
)
from streamer.aggregate.state import LiveState
from streamer.model import Funding, Instrument, Liquidation, Ticker

HEAT_WINDOW_S = 3600
HEAT_ASSETS = 3
HEAT_MAX_BUCKETS = 40
FUNDING_ROWS_MAX = 60
OI_ROWS_MAX = 40
FUNDING_FIELDS = ("exchange", "symbol", "rate", "interval_h", "rate_8h", "annualized", "predicted_rate",
                  "next_funding_ts", "mark_price", "index_price", "avg_rate_8h", "ts", "recv_ts")


def _asset(symbol: str) -> str:
    return symbol.split("-", 1)[0]


def funding_panel(state: LiveState, max_rows: int = FUNDING_ROWS_MAX) -> dict[str, Any]:
    """Funding rows and, per symbol quoted on several venues, the widest venue spread.

    Rows: symbols quoted on several venues first (by symbol, then venue), then single-venue symbols by
    ``|rate_8h|``, largest first (the extremes); at most ``max_rows``, ``total`` counts them all.
    """
    now = state.now_ms if state.now_ms is not None else 0
    rows = [{k: row.get(k) for k in FUNDING_FIELDS} for row in state.funding.snapshot(now)]
    venues: dict[str, list[Funding]] = {}
    for exchange, symbol in state.funding.keys():  # noqa: SIM118 - FundingBoard.keys() is a method, not a dict
        latest = state.funding.latest(exchange, symbol)
        if latest is not None:
            venues.setdefault(symbol, []).append(latest)
    for row in rows:
        row["venues"] = len(venues.get(row["symbol"], ()))
    rows.sort(key=lambda r: (r["venues"] < 2, -abs(r["rate_8h"] or 0.0) if r["venues"] < 2 else 0.0,
                             r["symbol"], r["exchange"]))
    spreads = []
    for symbol, events in sorted(venues.items()):
        spread = funding_spread(events) if len(events) > 1 else None
        if spread is not None:
            spreads.append({"symbol": symbol, **msgspec.to_builtins(spread)})
    return {"rows": rows[:max_rows], "spreads": spreads, "total": len(rows)}


def open_interest_panel(state: LiveState, max_rows: int = OI_ROWS_MAX) -> list[dict[str, Any]]:
    """Latest OI per venue and symbol with its 1 h and 24 h change (percent), largest USD first (``max_rows``)."""
    rows = []
    for row in state.open_interest.snapshot():
        change = row["change"]
        rows.append({
            "exchange": row["exchange"], "symbol": row["symbol"], "ts": row["ts"], "oi_usd": row["oi_usd"],
            "oi_base": row["oi_base"],
            "change_1h_usd_pct": change.get("3600", {}).get("usd_pct"),
            "change_24h_usd_pct": change.get("86400", {}).get("usd_pct"),
            "change_24h_base_pct": change.get("86400", {}).get("base_pct"),
        })
    rows.sort(key=lambda r: (-(r["oi_usd"] or 0.0), r["exchange"], r["symbol"]))
    return rows[:max_rows]


def heatmap_panel(liquidations: Iterable[Liquidation], now_ms: int, window_s: int = HEAT_WINDOW_S,
                  assets: int = HEAT_ASSETS, max_buckets: int = HEAT_MAX_BUCKETS) -> list[dict[str, Any]]:
    """Liquidation USD by price bucket and side over the last ``window_s`` of event time, per asset.

    Perpetuals only (a dated future trades away from the perpetual by its basis and would land in
    the wrong bucket); USD, USDT and USDC quotes share one price axis (a stablecoin counts as 1 USD).
    The bucket width is :func:`heatmap_bucket_usd` of the median liquidation price, widened (0.25 %,
    0.5 %, 1 %, ...) until the range fits in ``max_buckets``.
    """
    recent = liquidations_in_window(liquidations, now_ms, window_s * 1000)
    by_asset: dict[str, list[Liquidation]] = {}
    for liq in recent:
        if liq.symbol is not None and liq.symbol.endswith("-PERP") and liq.price is not None:
            by_asset.setdefault(_asset(liq.symbol), []).append(liq)
    ranked = sorted(by_asset.items(), key=lambda kv: (-sum(x.value_usd or 0.0 for x in kv[1]), kv[0]))
    out = []
    for asset, liqs in ranked[:assets]:
        prices = sorted(x.price for x in liqs if x.price is not None and x.price > 0)
        if not prices:
            continue
        median = prices[len(prices) // 2]
        fraction = 0.0025
        width = heatmap_bucket_usd(median, fraction)
        while (prices[-1] - prices[0]) / width >= max_buckets:
            fraction *= 2
            width = heatmap_bucket_usd(median, fraction)
        totals = liquidation_totals(liqs).overall
        out.append({
            "asset": asset, "window_s": window_s, "bucket_usd": width, "median_price": median,
            "long_usd": totals.long_usd, "short_usd": totals.short_usd, "count": len(liqs),
            "buckets": [msgspec.to_builtins(b) for b in liquidation_heatmap(liqs, width)],
        })
    return out


def options_panel(state: LiveState) -> list[dict[str, Any]]:
    """Per venue and underlying: the ATM IV term structure with each expiry's 25-delta skew (fractions)."""
    now = state.now_ms if state.now_ms is not None else 0
    out = []
    for exchange, chain in sorted(state.options.items()):
        for underlying in chain.underlyings():
            summary = chain.summary(underlying, now)
            by_expiry = {e.expiry: e for e in summary.expiries}
            points = []
            for p in iv_term_structure(summary.expiries):
                skew = by_expiry[p.expiry].skew
                points.append({"expiry": p.expiry, "days": p.days_to_expiry, "atm_iv": p.atm_iv,
                               "skew_25d": skew.skew, "put_iv": skew.put_iv, "call_iv": skew.call_iv})
            price = next((e.underlying_price for e in summary.expiries if e.underlying_price is not None), None)
            out.append({"exchange": exchange, "underlying": underlying, "underlying_price": price, "points": points})
    return out


def basis_panel(state: LiveState, instruments: Iterable[Instrument]) -> list[dict[str, Any]]:
    """Every dated future's basis and annualized basis, nearest expiry first (:func:`basis_term_structure`).

    Prices are the latest mark and index per venue and symbol (``PriceState``, merged from tickers
    and funding), each at the time of its newest field.
    """
    now = state.now_ms if state.now_ms is not None else 0
    futures = [i for i in instruments if i.kind == "future"]
    if not futures:
        return []
    tickers = [
        Ticker(exchange=row["exchange"], symbol=row["symbol"], raw_symbol="", ts=row["ts"], recv_ts=row["ts"],
               mark_price=row["mark"], index_price=row["index"])
        for row in state.prices.snapshot()
    ]
    rows = [msgspec.to_builtins(p) for p in basis_term_structure(tickers, futures, now)]
    for row in rows:
        del row["raw_symbol"]  # PriceState keys by unified symbol; the instrument was found by that
    return rows


def venues_panel(sessions: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per WebSocket session: state, wall-clock age of its last frame, reconnects, stale streams."""
    rows = []
    for name, s in sorted(sessions.items()):
        streams = s.get("streams", {})
        rows.append({
            "session": name, "exchange": s["exchange"], "state": s["state"],
            "last_frame_age_s": s["last_frame_age_s"], "reconnects": s["reconnects"], "stalls": s["stalls"],
            "streams": len(streams), "stale_streams": sum(1 for v in streams.values() if v.get("stale")),
            "last_error": s["last_error"],
        })
    return rows


def dashboard_state(
    state: LiveState,
    *,
    alerts: Mapping[str, Any],
    sessions: Mapping[str, Mapping[str, Any]],
    instruments: Iterable[Instrument],
    wall_ms: int,
) -> dict[str, Any]:
    """The ``state`` SSE event.

    Args:
        state: the daemon's live state.
        alerts: ``RuleEngine.snapshot()`` (``active`` firing alerts, ``counts``).
        sessions: ``Daemon.sessions_snapshot()``.
        instruments: every venue's instruments (the dated futures give the basis term structure).
        wall_ms: the daemon's clock, ms since epoch (countdowns and staleness in the page only).
    """
    now = state.now_ms if state.now_ms is not None else 0
    return {
        "now_ms": state.now_ms,
        "wall_ms": wall_ms,
        "funding": funding_panel(state),
        "open_interest": open_interest_panel(state),
        "heatmap": heatmap_panel(state.recent_liquidations, now),
        "options": options_panel(state),
        "basis": basis_panel(state, instruments),
        "venues": venues_panel(sessions),
        "alerts": {"active": list(alerts.get("active", [])), "counts": alerts.get("counts", {})},
    }
