"""Normalized events, sides, instruments, unified symbols and ms-time helpers.

This module is the event contract of ``DESIGN.md`` ("Normalized events"): one
frozen msgspec Struct per event type, a tagged union on ``type``. The JSON form
of an event uses exactly the field names declared here, in this order, with
``null`` for every value that is unknown (never 0 or "").

Units, everywhere:

* times are integer milliseconds since the Unix epoch, UTC;
* ratios are fractions (0.0001 = 0.01 %), never percent;
* prices are in the quote currency; quantities in base-asset units unless a
  field name says contracts; ``*_usd`` in US dollars (a stablecoin counts as 1 USD).
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from typing import Literal

import msgspec

__all__ = [
    "EXCHANGES",
    "STABLECOINS",
    "Alert",
    "AnyEvent",
    "Event",
    "Funding",
    "Instrument",
    "Liquidation",
    "MarketEvent",
    "OpenInterest",
    "OptionTicker",
    "Side",
    "Ticker",
    "date_from_ms",
    "decode_event",
    "encode_event",
    "funding_fields",
    "option_symbol",
    "unified_symbol",
]

Exchange = Literal["binance", "bybit", "okx", "deribit", "bitmex"]
EXCHANGES: tuple[str, ...] = ("binance", "bybit", "okx", "deribit", "bitmex")

Side = Literal["long", "short"]
"""The POSITION that was liquidated (a SELL liquidation order closes a long)."""

STABLECOINS = frozenset({"USDT", "USDC", "BUSD", "FDUSD", "USD", "TUSD", "USDE", "DAI"})
"""Quote/settle currencies that count as 1 USD (DESIGN.md: a stablecoin counts as 1 USD)."""


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", gc=False):
    """Base of every event; ``type`` is the msgspec tag."""


class MarketEvent(Event, frozen=True, kw_only=True, gc=False):
    """Fields common to every market event.

    Attributes:
        exchange: ``binance``, ``bybit``, ``okx``, ``deribit`` or ``bitmex``.
        symbol: unified symbol (``BTC-USDT-PERP``), null when it cannot be derived.
        raw_symbol: the exchange's own symbol.
        ts: when the fact happened at the exchange, ms since epoch.
        recv_ts: local receive time, ms since epoch.
    """

    exchange: str
    symbol: str | None
    raw_symbol: str
    ts: int
    recv_ts: int


class Liquidation(MarketEvent, frozen=True, kw_only=True, tag="liquidation", gc=False):
    """A forced liquidation.

    Attributes:
        side: the POSITION liquidated, ``long`` or ``short``.
        price: average fill price where given, else the venue's price (quote currency).
        qty: filled quantity in base-asset units; null when a contract size is unknown.
        value_usd: notional in USD; null when it cannot be known with certainty.
    """

    side: Side
    price: float | None
    qty: float | None
    value_usd: float | None


class Funding(MarketEvent, frozen=True, kw_only=True, tag="funding", gc=False):
    """The funding rate that will be charged at ``next_funding_ts``.

    Attributes:
        rate: per funding interval, fraction, as the exchange reports it.
        interval_h: funding interval in hours; null when not known.
        rate_8h: rate × 8 / interval_h; null when the interval is unknown.
        annualized: rate × 24 / interval_h × 365; null when the interval is unknown.
        predicted_rate: the exchange's forecast for the interval after that, else null.
        next_funding_ts: ms since epoch of the next settlement; null for continuous funding.
        mark_price: mark price where the frame gives it.
        index_price: index price where the frame gives it.
    """

    rate: float
    interval_h: float | None = None
    rate_8h: float | None = None
    annualized: float | None = None
    predicted_rate: float | None = None
    next_funding_ts: int | None = None
    mark_price: float | None = None
    index_price: float | None = None


class Ticker(MarketEvent, frozen=True, kw_only=True, tag="ticker", gc=False):
    """Prices, 24 h volume and open interest of one instrument (null where the frame has none).

    Attributes:
        volume_24h_usd: traded notional over 24 h, USD.
        open_interest: base units.
        open_interest_usd: USD.
    """

    last: float | None = None
    bid: float | None = None
    ask: float | None = None
    mark_price: float | None = None
    index_price: float | None = None
    volume_24h_usd: float | None = None
    open_interest: float | None = None
    open_interest_usd: float | None = None


class OpenInterest(MarketEvent, frozen=True, kw_only=True, tag="open_interest", gc=False):
    """Open interest.

    Attributes:
        oi_contracts: as reported by the venue (its own contract unit).
        oi_base: base-asset units.
        oi_usd: USD.
    """

    oi_contracts: float | None = None
    oi_base: float | None = None
    oi_usd: float | None = None


class OptionTicker(MarketEvent, frozen=True, kw_only=True, tag="option_ticker", gc=False):
    """One option's mark, IVs (fractions: 0.55 = 55 %) and greeks."""

    underlying: str
    expiry: str
    strike: float
    kind: Literal["C", "P"]
    mark_price_usd: float | None = None
    mark_iv: float | None = None
    bid_iv: float | None = None
    ask_iv: float | None = None
    delta: float | None = None
    gamma: float | None = None
    vega: float | None = None
    theta: float | None = None
    underlying_price: float | None = None
    open_interest: float | None = None
    volume_24h: float | None = None


class Alert(Event, frozen=True, kw_only=True, tag="alert", gc=False):
    """An alert (DESIGN.md "Alerts").

    Attributes:
        id: stable for one episode; the idempotency key.
        rule: ``liquidation_cascade``, ``large_liquidation``, ``extreme_funding``, ...
        status: ``firing`` or ``resolved``.
        severity: ``info``, ``warning`` or ``critical``.
        exchange: venue, or null for cross-exchange rules.
        value: the measured value that the rule compared (rule's unit).
        threshold: the threshold it was compared with (same unit).
        window_s: the rule's window in seconds (0 for point rules).
        started_at: ms since epoch when the episode opened.
        ts: event time of this status change, ms since epoch.
        summary: one human line.
        details: rule-specific.
    """

    id: str
    rule: str
    status: Literal["firing", "resolved"]
    severity: Literal["info", "warning", "critical"]
    exchange: str | None
    symbol: str | None
    value: float
    threshold: float
    window_s: float
    started_at: int
    ts: int
    summary: str
    details: dict[str, object] = msgspec.field(default_factory=dict)


AnyEvent = Liquidation | Funding | Ticker | OpenInterest | OptionTicker | Alert

_ENCODER = msgspec.json.Encoder()
_DECODER: msgspec.json.Decoder[AnyEvent] = msgspec.json.Decoder(AnyEvent)


def encode_event(event: Event) -> bytes:
    """JSON bytes of one event (DESIGN.md field names, ``type`` first)."""
    return _ENCODER.encode(event)


def decode_event(data: bytes | str) -> AnyEvent:
    """Decode one event from its JSON form."""
    return _DECODER.decode(data)


# --------------------------------------------------------------------------- instruments

InstrumentKind = Literal["perpetual", "future", "option", "spot"]


class Instrument(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Contract metadata of one instrument, as a venue's instrument REST response says.

    Attributes:
        exchange: venue name.
        raw_symbol: the venue's own symbol.
        kind: ``perpetual``, ``future`` or ``option``.
        base: base asset (BTC, never XBT).
        quote: currency the price is quoted in (USD for inverse contracts).
        settle: settlement/margin currency.
        inverse: True for coin-margined, USD-face contracts.
        contract_size: one contract = this many base units (linear) or USD (inverse);
            null when the venue does not say.
        expiry_ms: delivery/expiry time, ms since epoch; null for perpetuals.
        strike: option strike, else null.
        option_kind: ``C``/``P`` for options, else null.
        funding_interval_h: hours between fundings when the metadata says so.
    """

    exchange: str
    raw_symbol: str
    kind: InstrumentKind
    base: str
    quote: str
    settle: str | None = None
    inverse: bool = False
    contract_size: float | None = None
    expiry_ms: int | None = None
    strike: float | None = None
    option_kind: Literal["C", "P"] | None = None
    funding_interval_h: float | None = None

    @property
    def symbol(self) -> str:
        """The unified symbol (DESIGN.md "Unified symbols")."""
        if self.kind == "option" and self.expiry_ms is not None and self.strike is not None:
            return option_symbol(self.base, self.quote, self.expiry_ms, self.strike, self.option_kind or "C")
        return unified_symbol(self.base, self.quote, None if self.kind == "perpetual" else self.expiry_ms)


# --------------------------------------------------------------------------- symbols and time


def _asset(name: str) -> str:
    """Normalize an asset code: upper case, XBT written BTC."""
    up = name.upper()
    return "BTC" if up == "XBT" else up


def date_from_ms(ms: int) -> str:
    """``YYYY-MM-DD`` (UTC) of a time in ms since epoch."""
    return _dt.datetime.fromtimestamp(ms / 1000, tz=_dt.UTC).strftime("%Y-%m-%d")


def unified_symbol(base: str, quote: str, expiry_ms: int | None = None) -> str:
    """``BASE-QUOTE-PERP`` for a perpetual, ``BASE-QUOTE-YYYYMMDD`` for a dated future."""
    if expiry_ms is None:
        return f"{_asset(base)}-{_asset(quote)}-PERP"
    return f"{_asset(base)}-{_asset(quote)}-{date_from_ms(expiry_ms).replace('-', '')}"


def format_strike(strike: float) -> str:
    """A strike without trailing zeros (``0.625``, ``100000``)."""
    if math.isfinite(strike) and strike == int(strike):
        return str(int(strike))
    text = repr(float(strike))
    return text.rstrip("0").rstrip(".") if "e" not in text else text


def option_symbol(base: str, quote: str, expiry_ms: int, strike: float, kind: str) -> str:
    """``BASE-QUOTE-YYYYMMDD-STRIKE-C/P``."""
    day = date_from_ms(expiry_ms).replace("-", "")
    return f"{_asset(base)}-{_asset(quote)}-{day}-{format_strike(strike)}-{kind}"


_YYMMDD = re.compile(r"^(\d{2})(\d{2})(\d{2})$")


def yymmdd_to_ms(text: str) -> int | None:
    """08:00 UTC of a ``YYMMDD`` date (Binance's delivery hour); None when it is not a date.

    Only the date part is used in unified symbols, so the hour is informative.
    """
    m = _YYMMDD.match(text)
    if m is None:
        return None
    try:
        day = _dt.datetime(2000 + int(m[1]), int(m[2]), int(m[3]), 8, tzinfo=_dt.UTC)
    except ValueError:
        return None
    return int(day.timestamp() * 1000)


# --------------------------------------------------------------------------- funding helpers


def funding_fields(rate: float, interval_h: float | None) -> tuple[float | None, float | None]:
    """``(rate_8h, annualized)`` of a per-interval rate; both null when the interval is unknown.

    DESIGN.md: rate_8h = rate × 8 / interval_h; annualized = rate × 24 / interval_h × 365.
    """
    if interval_h is None or interval_h <= 0:
        return None, None
    return rate * 8.0 / interval_h, rate * 24.0 / interval_h * 365.0
