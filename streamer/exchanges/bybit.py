"""Bybit v5 public market data (linear, inverse, option): wire Structs, ticker merge state and parsers.

Sans-I/O (STYLE.md A1): subscribe frames out, frames in, events out. Wire facts
come from Bybit's v5 documentation (repository bybit-exchange/docs, summarized
with sources in ``shared/exchanges.md`` §2 and §6):

* Endpoints (docs/v5/websocket/wss-authentication.mdx, "Connect"):
  ``/v5/public/linear`` (USDT/USDC perpetuals and futures), ``/v5/public/inverse``,
  ``/v5/public/option``. Subscribe ``{"req_id","op":"subscribe","args":[...]}``;
  the client pings ``{"op":"ping"}`` (every 20 s recommended) and the server
  cuts a connection after 10 min with neither ping nor data.
* ``allLiquidation.<SYMBOL>`` (all-liquidation.mdx): every liquidation, pushed in
  500 ms batches; ``data`` is an array of ``{T, s, S, v, p}``. ``S`` is the
  POSITION side: ``Buy`` means a long was liquidated. ``p`` is the bankruptcy
  price. ``v`` is the executed size: base coin on linear contracts, USD on
  inverse ones (contracts of 1 USD).
* ``liquidation.<SYMBOL>`` (deprecated 2025-02-20, page removed 2025-11-19, read
  at commit 1190f5447): one object ``{updatedTime, symbol, side, size, price}``,
  at most one per second per symbol. Its ``side`` is documented as the
  POSITION side too ("When you receive a Buy update, this means that a long
  position has been liquidated", since the 2023-08-31 doc revision; before it
  the page said "Order side"). The revision announced no behaviour change and
  tardis-node quotes Bybit support confirming Buy = long liquidated, so every
  recording is read with Buy -> ``long``.
* ``tickers.<SYMBOL>`` linear/inverse (ticker.mdx): a ``snapshot`` first, then
  ``delta`` frames that carry only the keys that changed ("If a response param
  is not found in the message, then its value has not changed"). The adapter
  keeps one merged dict per symbol (bounded). ``tickers.<SYMBOL>`` on the
  option endpoint: snapshots only, IVs and greeks as published.

Open interest (exchanges.md §6 trap 4). Bybit documents ``openInterest`` and
``openInterestValue`` as "(both sides)" and, since 2026-06-11,
``singleOpenInterest``/``singleOpenInterestValue`` as "(single side)"; the REST
open-interest page says "The value is the sum of both sides" (wording since
2023-11-14, "improve the description", no behaviour change announced). Every
open contract has one long and one short holder, so the long side equals the
short side and "the sum of both sides" is exactly twice one side (the docs'
own example: 63910691 both sides, 31955346 single side). The contract's
``open_interest`` (and Binance's and OKX's) is the single side: the number of
contracts outstanding. So ``open_interest``/``oi_contracts`` is
``singleOpenInterest`` where the venue sends it, else ``openInterest`` / 2 —
a computation from the documented definition, not an estimate — and the
same for the values. Units: linear sizes are base coin and values quote
(``openInterestValue`` = size × mark); inverse sizes are USD and values base
coin (``openInterestValue`` = USD / mark).

Times: liquidation ``ts`` = row ``T`` (old topic ``updatedTime``); tickers
``ts`` = envelope ``ts`` ("the timestamp that the system generates the data");
REST ``ts`` = the body's ``time``, except history rows, which carry their own
(``timestamp``, ``fundingRateTimestamp``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, ClassVar, Literal

import msgspec
from msgspec import UNSET, UnsetType

from streamer.exchanges.base import (
    AdapterStats,
    FrameError,
    HeartbeatSpec,
    RestCall,
    Stream,
    finite,
    guard_utf8,
    num,
    positive,
    read_elements,
)
from streamer.exchanges.metadata import InstrumentTable
from streamer.model import (
    STABLECOINS,
    Event,
    Funding,
    Instrument,
    Liquidation,
    OpenInterest,
    OptionTicker,
    Side,
    Ticker,
    date_from_ms,
    funding_fields,
    yymmdd_to_ms,
)

EXCHANGE = "bybit"

_MAX_MS = 10**14  # any wire time at or past this (year 5138) is not a time in ms

Wire = str | float | None | UnsetType
"""A ticker field of a delta frame: a numeric string (or number; null read as unknown), or UNSET when omitted."""

# --------------------------------------------------------------------------- WebSocket wire messages


class BybitEnvelope(msgspec.Struct, frozen=True, gc=False):
    """Routing fields of any public frame: data push, subscribe ack, pong or error (page "Connect").

    Data pushes have ``topic``, ``type``, ``ts`` and ``data``; acks and pongs have ``op`` and/or
    ``success`` (linear/inverse) or ``type: COMMAND_RESP`` (option); the option pong is
    ``{"op":"pong","args":[...]}``.
    """

    topic: Any = None
    type: Any = None  # snapshot | delta | COMMAND_RESP
    ts: Any = None  # ms, when the system generated the data
    data: msgspec.Raw = msgspec.Raw(b"")  # empty when absent
    op: Any = None
    success: Any = None


class BybitAllLiquidationData(msgspec.Struct, frozen=True, gc=False):
    """One row of ``allLiquidation.<SYMBOL>`` ``data`` (docs/v5/websocket/public/all-liquidation.mdx)."""

    s: str  # Symbol name
    S: str  # Position side: Buy = a long position was liquidated, Sell = a short
    v: str | float = ""  # Executed size: linear base coin, inverse USD
    p: str | float = ""  # Bankruptcy price
    T: int = 0  # The updated timestamp, ms


class BybitLiquidationData(msgspec.Struct, frozen=True, gc=False):
    """``data`` of the deprecated ``liquidation.<SYMBOL>`` (liquidation.mdx at 1190f5447)."""

    symbol: str
    side: str  # Position side: Buy = a long position was liquidated
    size: str | float = ""  # Executed size (linear base coin, inverse USD)
    price: str | float = ""  # Bankruptcy price
    updatedTime: int = 0  # ms (the example's spelling)
    updateTime: int = 0  # ms (the field table's spelling)


class BybitTickerData(msgspec.Struct, frozen=True, gc=False):
    """``data`` of ``tickers.<SYMBOL>`` linear/inverse (ticker.mdx) and one row of ``GET /v5/market/tickers``.

    Every field is UNSET when the frame omits it (a delta carries only what changed).
    All values are strings; ``""`` means empty (futures send ``fundingRate: ""``).
    """

    symbol: str | UnsetType = UNSET
    lastPrice: Wire = UNSET
    markPrice: Wire = UNSET
    indexPrice: Wire = UNSET
    bid1Price: Wire = UNSET
    ask1Price: Wire = UNSET
    turnover24h: Wire = UNSET  # quote value (linear) / base coin (inverse)
    volume24h: Wire = UNSET  # base coin (linear) / USD (inverse)
    openInterest: Wire = UNSET  # size, both sides
    openInterestValue: Wire = UNSET  # value, both sides
    singleOpenInterest: Wire = UNSET  # size, single side (since 2026-06-11)
    singleOpenInterestValue: Wire = UNSET  # value, single side
    fundingRate: Wire = UNSET  # fraction per interval; "" for futures
    nextFundingTime: Wire = UNSET  # ms as a string; "" for futures
    fundingIntervalHour: Wire = UNSET  # hours; perpetuals only


class BybitOptionTickerData(msgspec.Struct, frozen=True, gc=False):
    """``data`` of ``tickers.<optionSymbol>`` on ``/v5/public/option`` (ticker.mdx, Option tab)."""

    symbol: str
    bidPrice: str | float = ""  # Best bid price
    bidIv: str | float = ""  # Best bid IV, fraction ("0" with no bid)
    askPrice: str | float = ""
    askIv: str | float = ""
    markPrice: str | float = ""  # quote currency (USD for USDC options, USDT)
    markPriceIv: str | float = ""  # fraction
    indexPrice: str | float = ""
    underlyingPrice: str | float = ""
    openInterest: str | float = ""  # base coin
    volume24h: str | float = ""  # base coin
    delta: str | float = ""
    gamma: str | float = ""
    vega: str | float = ""
    theta: str | float = ""


# --------------------------------------------------------------------------- REST wire messages


class BybitRestEnvelope(msgspec.Struct, frozen=True, gc=False):
    """Every v5 REST body: ``{"retCode":0,"retMsg":"OK","result":{...},"retExtInfo":{},"time":ms}``."""

    retCode: int
    retMsg: Any = ""
    result: msgspec.Raw = msgspec.Raw(b"")
    time: Any = None  # ms


class BybitInstrumentRow(msgspec.Struct, frozen=True, gc=False):
    """One ``list`` row of ``GET /v5/market/instruments-info`` (instrument.mdx)."""

    symbol: str
    contractType: str = ""  # LinearPerpetual | LinearFutures | InversePerpetual | InverseFutures
    optionsType: str = ""  # option rows: Call | Put
    status: str = ""
    baseCoin: str = ""
    quoteCoin: str = ""  # USD for inverse contracts and USDC options
    settleCoin: str = ""
    deliveryTime: str | int = ""  # ms; "0" for perpetuals (or their delisting time)
    fundingInterval: int = 0  # minutes


class BybitInstrumentsResult(msgspec.Struct, frozen=True, gc=False):
    """``result`` of ``GET /v5/market/instruments-info`` (one page)."""

    category: str = ""
    rows: list[msgspec.Raw] = msgspec.field(default_factory=list, name="list")
    nextPageCursor: str = ""


class BybitTickersResult(msgspec.Struct, frozen=True, gc=False):
    """``result`` of ``GET /v5/market/tickers`` (rows decoded per category)."""

    category: str = ""
    rows: list[msgspec.Raw] = msgspec.field(default_factory=list, name="list")


class BybitRestOptionTicker(msgspec.Struct, frozen=True, gc=False):
    """Option row of ``GET /v5/market/tickers?category=option`` (names differ from the WebSocket's)."""

    symbol: str
    bid1Price: str | float = ""
    bid1Iv: str | float = ""
    ask1Price: str | float = ""
    ask1Iv: str | float = ""
    markPrice: str | float = ""
    markIv: str | float = ""
    indexPrice: str | float = ""
    underlyingPrice: str | float = ""
    openInterest: str | float = ""
    volume24h: str | float = ""
    delta: str | float = ""
    gamma: str | float = ""
    vega: str | float = ""
    theta: str | float = ""


class BybitOpenInterestRow(msgspec.Struct, frozen=True, gc=False):
    """One ``list`` row of ``GET /v5/market/open-interest`` (open-interest.mdx)."""

    openInterest: str | float = ""  # sum of both sides; linear base coin, inverse USD
    singleOpenInterest: str | float = ""  # single side, same unit
    timestamp: str | int = ""  # ms


class BybitOpenInterestResult(msgspec.Struct, frozen=True, gc=False):
    """``result`` of ``GET /v5/market/open-interest``."""

    symbol: str
    category: str = ""
    rows: list[BybitOpenInterestRow] = msgspec.field(default_factory=list, name="list")
    nextPageCursor: str = ""


class BybitFundingHistoryRow(msgspec.Struct, frozen=True, gc=False):
    """One ``list`` row of ``GET /v5/market/funding/history`` (history-fund-rate.mdx)."""

    symbol: str
    fundingRate: str | float = ""
    fundingRateTimestamp: str | int = ""  # ms


class BybitFundingHistoryResult(msgspec.Struct, frozen=True, gc=False):
    """``result`` of ``GET /v5/market/funding/history``."""

    category: str = ""
    rows: list[BybitFundingHistoryRow] = msgspec.field(default_factory=list, name="list")


class BybitAccountRatioRow(msgspec.Struct, frozen=True, gc=False):
    """One ``list`` row of ``GET /v5/market/account-ratio`` (long-short-ratio.mdx): shares of accounts."""

    symbol: str = ""
    buyRatio: str | float = ""  # fraction of accounts net long
    sellRatio: str | float = ""  # fraction of accounts net short
    timestamp: str | int = ""  # ms


class BybitAccountRatioResult(msgspec.Struct, frozen=True, gc=False):
    """``result`` of ``GET /v5/market/account-ratio``."""

    rows: list[BybitAccountRatioRow] = msgspec.field(default_factory=list, name="list")
    nextPageCursor: str = ""


_ENVELOPE_DEC = msgspec.json.Decoder(BybitEnvelope)
_RAW_LIST_DEC = msgspec.json.Decoder(list[msgspec.Raw])
_ALL_LIQ_DEC = msgspec.json.Decoder(BybitAllLiquidationData, strict=False)
_OLD_LIQ_DEC = msgspec.json.Decoder(BybitLiquidationData, strict=False)
_TICKER_DEC = msgspec.json.Decoder(BybitTickerData, strict=False)
_OPTION_TICKER_DEC = msgspec.json.Decoder(BybitOptionTickerData, strict=False)
_REST_ENV_DEC = msgspec.json.Decoder(BybitRestEnvelope, strict=False)
_INSTRUMENTS_DEC = msgspec.json.Decoder(BybitInstrumentsResult, strict=False)
_INSTRUMENT_ROW_DEC = msgspec.json.Decoder(BybitInstrumentRow, strict=False)
_TICKERS_DEC = msgspec.json.Decoder(BybitTickersResult, strict=False)
_REST_OPTION_DEC = msgspec.json.Decoder(BybitRestOptionTicker, strict=False)
_OI_DEC = msgspec.json.Decoder(BybitOpenInterestResult, strict=False)
_FUNDING_HIST_DEC = msgspec.json.Decoder(BybitFundingHistoryResult, strict=False)
_ACCOUNT_RATIO_DEC = msgspec.json.Decoder(BybitAccountRatioResult, strict=False)

assert BybitTickerData.__struct_fields__[0] == "symbol"  # _present reads the values after it, in order
_TICKER_FIELDS: tuple[str, ...] = BybitTickerData.__struct_fields__[1:]
_FUNDING_KEYS = frozenset({"fundingRate", "nextFundingTime", "fundingIntervalHour"})
"""A frame carrying any of these yields a ``funding`` event (DESIGN.md: present, changed or not)."""
_TICKER_KEYS = frozenset(
    {"lastPrice", "bid1Price", "ask1Price", "markPrice", "indexPrice", "turnover24h", "volume24h",
     "openInterest", "openInterestValue", "singleOpenInterest", "singleOpenInterestValue"}
)
"""A frame carrying any of these yields a ``ticker`` event."""
_TIME_KEYS = frozenset({"nextFundingTime"})
_POSITION_SIDE: dict[str, Side] = {"Buy": "long", "Sell": "short"}  # S/side is the POSITION side (all-liquidation.mdx)
_OPTION_KIND: dict[str, Literal["C", "P"]] = {"Call": "C", "Put": "P"}
_TICKER_CHANNELS = frozenset({"funding", "ticker", "mark", "index", "open_interest", "book"})

# --------------------------------------------------------------------------- symbols

_MONTHS = {m: i for i, m in enumerate(
    ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), start=1)}
_OPTION_RE = re.compile(r"^([A-Z0-9]+)-(\d{1,2})([A-Z]{3})(\d{2})-(\d+(?:\.\d+)?)-([CP])(?:-(USDT|USDC))?$")
_LINEAR_DATED_RE = re.compile(r"^([A-Z0-9]+)(USDT|USDC)-(\d{1,2})([A-Z]{3})(\d{2})$")
_USDC_DATED_RE = re.compile(r"^([A-Z0-9]+)-(\d{1,2})([A-Z]{3})(\d{2})$")
_USDC_PERP_RE = re.compile(r"^([A-Z0-9]+)PERP$")
_INVERSE_DATED_RE = re.compile(r"^([A-Z0-9]+)USD[HMUZ]\d{2}$")
_LINEAR_PERP_RE = re.compile(r"^([A-Z0-9]+)(USDT|USDC)$")
_INVERSE_PERP_RE = re.compile(r"^([A-Z0-9]+)USD$")


def _expiry(day: str, month: str, year: str) -> int | None:
    """08:00 UTC (Bybit's delivery hour) of ``6JAN23``-style date parts; None when not a date."""
    number = _MONTHS.get(month)
    if number is None:
        return None
    return yymmdd_to_ms(f"{year}{number:02d}{int(day):02d}")


def instrument_from_name(raw_symbol: str) -> Instrument | None:
    """What Bybit's naming rule (docs/v5/enum.mdx "symbol") says about a symbol, without metadata.

    USDT perpetual ``BTCUSDT``; USDT futures ``BTCUSDT-21FEB25``; USDC perpetual ``BTCPERP``;
    USDC futures ``BTC-24MAR23``; inverse perpetual ``BTCUSD``; options ``BTC-6JAN23-17500-C``
    (USDC-settled, quoted in USD as instruments-info says) and ``BTC-27MAR26-70000-P-USDT``.
    Inverse futures (``BTCUSDH23``) name only the quarter, not the delivery day, so they give
    None here: their unified symbol needs instrument metadata. None for any other name.
    """
    m = _OPTION_RE.match(raw_symbol)
    if m is not None:
        expiry = _expiry(m[2], m[3], m[4])
        strike = finite(float(m[5]))
        if expiry is None or strike is None or strike <= 0:
            return None
        settle = m[7] or "USDC"
        return Instrument(
            exchange=EXCHANGE, raw_symbol=raw_symbol, kind="option", base=m[1],
            quote="USD" if settle == "USDC" else settle, settle=settle, contract_size=1.0,
            expiry_ms=expiry, strike=strike, option_kind="C" if m[6] == "C" else "P",
        )
    m = _LINEAR_DATED_RE.match(raw_symbol)
    if m is not None:
        expiry = _expiry(m[3], m[4], m[5])
        if expiry is None:
            return None
        return Instrument(exchange=EXCHANGE, raw_symbol=raw_symbol, kind="future", base=m[1], quote=m[2],
                          settle=m[2], contract_size=1.0, expiry_ms=expiry)
    m = _USDC_DATED_RE.match(raw_symbol)
    if m is not None:
        expiry = _expiry(m[2], m[3], m[4])
        if expiry is None:
            return None
        return Instrument(exchange=EXCHANGE, raw_symbol=raw_symbol, kind="future", base=m[1], quote="USDC",
                          settle="USDC", contract_size=1.0, expiry_ms=expiry)
    m = _USDC_PERP_RE.match(raw_symbol)
    if m is not None:
        return Instrument(exchange=EXCHANGE, raw_symbol=raw_symbol, kind="perpetual", base=m[1], quote="USDC",
                          settle="USDC", contract_size=1.0)
    if _INVERSE_DATED_RE.match(raw_symbol):
        return None
    m = _LINEAR_PERP_RE.match(raw_symbol)
    if m is not None:
        return Instrument(exchange=EXCHANGE, raw_symbol=raw_symbol, kind="perpetual", base=m[1], quote=m[2],
                          settle=m[2], contract_size=1.0)
    m = _INVERSE_PERP_RE.match(raw_symbol)
    if m is not None:
        return Instrument(exchange=EXCHANGE, raw_symbol=raw_symbol, kind="perpetual", base=m[1], quote="USD",
                          settle=m[1], inverse=True, contract_size=1.0)
    return None


def market_from_name(raw_symbol: str) -> str | None:
    """``option``, ``inverse`` or ``linear`` by the naming rule; None when the name follows none."""
    if _OPTION_RE.match(raw_symbol):
        return "option"
    if _INVERSE_DATED_RE.match(raw_symbol) or _INVERSE_PERP_RE.match(raw_symbol):
        return "inverse"
    if instrument_from_name(raw_symbol) is not None:
        return "linear"
    return None


def unified(raw_symbol: str) -> str | None:
    """Unified symbol by Bybit's naming rule alone (no metadata)."""
    inst = instrument_from_name(raw_symbol)
    return inst.symbol if inst else None


def _ms(value: object, what: str) -> int | None:
    """A time in ms from a wire value (int or numeric string); None for ``""``, 0 or absent.

    Raises:
        FrameError: not a number, or not a plausible time in ms.
    """
    if value is None or value is UNSET or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise FrameError("value", f"{what}={value!r} is not a time in ms")
    number = num(value, what)
    if number is None or number == 0:
        return None
    if not 0 < number < _MAX_MS:
        raise FrameError("value", f"{what}={value!r} is not a time in ms")
    return int(number)


def _instrument_from_row(row: BybitInstrumentRow) -> tuple[Instrument, str] | None:
    """(Instrument, category) of one instruments-info row; None when the row cannot be mapped with certainty."""
    named = instrument_from_name(row.symbol)
    if row.optionsType or row.contractType == "":
        kind = _OPTION_KIND.get(row.optionsType)
        if kind is None or named is None or named.kind != "option":
            return None  # an option's strike is only in its name
        expiry = _ms(row.deliveryTime, "deliveryTime") or named.expiry_ms
        # DESIGN.md: an option's QUOTE is its strike currency, USD for USDC options (instruments-info says USD).
        quote = row.quoteCoin or named.quote
        quote = "USD" if quote == "USDC" else quote
        return (
            Instrument(
                exchange=EXCHANGE, raw_symbol=row.symbol, kind="option", base=row.baseCoin or named.base,
                quote=quote, settle=row.settleCoin or named.settle, contract_size=1.0, expiry_ms=expiry,
                strike=named.strike, option_kind=kind,
            ),
            "option",
        )
    contract = row.contractType
    if contract not in ("LinearPerpetual", "LinearFutures", "InversePerpetual", "InverseFutures"):
        return None
    perpetual = contract.endswith("Perpetual")
    inverse = contract.startswith("Inverse")
    base = row.baseCoin or (named.base if named else "")
    quote = row.quoteCoin or (named.quote if named else "")
    if not base or not quote:
        return None
    expiry = None
    if not perpetual:  # a perpetual's deliveryTime is its delisting time, not an expiry
        expiry = _ms(row.deliveryTime, "deliveryTime") or (named.expiry_ms if named else None)
        if expiry is None:
            return None
    interval = row.fundingInterval / 60.0 if perpetual and row.fundingInterval > 0 else None
    return (
        Instrument(
            exchange=EXCHANGE, raw_symbol=row.symbol, kind="perpetual" if perpetual else "future", base=base,
            quote=quote, settle=row.settleCoin or None, inverse=inverse,
            contract_size=1.0,  # linear: sizes are base coin; inverse: 1 contract = 1 USD (exchanges.md §2.4)
            expiry_ms=expiry, funding_interval_h=interval,
        ),
        "inverse" if inverse else "linear",
    )


def _nonneg(value: float | None) -> float | None:
    return value if value is not None and value >= 0 else None


def _half(single: float | None, both: float | None) -> float | None:
    """One side of Bybit open interest: the single-side field, else the both-sides sum / 2."""
    if single is not None:
        return _nonneg(single)
    return _nonneg(both / 2.0) if both is not None else None


# --------------------------------------------------------------------------- the adapter


class BybitAdapter:
    """Bybit v5 linear + inverse + option adapter (one instance per process).

    Holds instrument metadata, the merged ``tickers`` state per linear/inverse
    symbol (one dict each, at most ``MAX_TICKER_STATES``), and the last mark
    and index price per symbol (to put REST open interest in USD or base).
    """

    name = EXCHANGE
    markets: tuple[str, ...] = ("linear", "inverse", "option")
    SUBSCRIBE_CHUNK = 10
    """Args per subscribe request: 10 is the strictest documented per-request limit (spot);
    linear, inverse and option document none."""
    ARGS_CHARS_PER_CONNECTION = 21_000
    """"you cannot have length of "args" array over 21,000 characters" per public connection (Connect page)."""
    MAX_TICKER_STATES = 10_000
    REST_ENDPOINTS = ("instruments", "tickers", "open_interest", "funding_history")
    LIQUIDATION_FEED: ClassVar[str] = "complete"
    """Whether the liquidation stream carries every liquidation (exchanges.md):
    allLiquidation pushes every liquidation in 500 ms batches."""
    CADENCE_S: ClassVar[dict[str, float | None]] = {
        "ticker": 5.0, "funding": 5.0, "mark": 5.0, "index": 5.0, "open_interest": 5.0, "book": None,
        "liquidations": None, "options": 10.0,
    }
    """Expected max gap between frames: tickers push every 100 ms when something changed (mark and index
    move continuously); allLiquidation only when a liquidation happens."""

    def __init__(self, option_bases: Sequence[str] = ("BTC", "ETH", "SOL")) -> None:
        self.meta = InstrumentTable(EXCHANGE)
        self.stats = AdapterStats()
        self.option_bases = tuple(option_bases)
        self.last_channel: str | None = None
        """Channel of the last data frame parsed (``liquidations``, ``ticker``, ``options``)."""
        self.last_symbol: str | None = None
        """Raw symbol of the last data frame's topic (a tickers delta may yield no event yet be alive)."""
        self.evicted_states = 0
        self._req_id = 0
        self._category: dict[str, str] = {}
        self._tickers: dict[str, dict[str, float | None]] = {}
        self._prices: dict[str, tuple[float | None, float | None]] = {}  # raw -> (mark, index)

    # ----------------------------------------------------------------- streams

    def market_of(self, raw_symbol: str) -> str:
        """``linear``, ``inverse`` or ``option``: metadata's category, else the naming rule (linear by default)."""
        return self._category.get(raw_symbol) or market_from_name(raw_symbol) or "linear"

    def stream_key(self, stream: Stream) -> str:
        """The Bybit topic of a stream.

        Funding, ticker, mark, index, open interest and book all travel in ``tickers.<SYMBOL>``;
        liquidations in ``allLiquidation.<SYMBOL>``; options in ``tickers.<optionSymbol>``.

        Raises:
            ValueError: an all-market stream (Bybit has none) or a channel the symbol's market lacks.
        """
        raw = stream.raw_symbol
        channel = stream.channel
        if raw is None:
            if channel == "liquidations":
                raise ValueError(
                    "Bybit has no all-market liquidation topic: allLiquidation.<SYMBOL> is per symbol; name the symbols"
                )
            raise ValueError(f"Bybit has no all-market {channel!r} topic; name the symbols")
        market = self.market_of(raw)
        if channel == "options":
            if market != "option":
                raise ValueError(f"the options channel takes option symbols (BTC-27MAR26-70000-P-USDT), not {raw!r}")
            return f"tickers.{raw}"
        if market == "option":
            raise ValueError(f"Bybit options carry only the 'options' channel (tickers), not {channel!r} ({raw})")
        if channel == "liquidations":
            return f"allLiquidation.{raw}"
        if channel in _TICKER_CHANNELS:
            return f"tickers.{raw}"
        raise ValueError(f"Bybit has no {channel!r} stream")

    def plan_streams(self, market: str, symbols: Sequence[str], channels: Sequence[str],
                     all_market: bool) -> list[Stream]:
        """The streams of one market, one per topic: Bybit has no venue-wide topics (``all_market`` is moot).

        Every ticker-borne channel (funding, ticker, mark, index, open_interest, book) becomes one
        ``ticker`` stream per symbol, so ``last_channel`` (``ticker``) names the stream a
        ``tickers`` frame keeps alive. With the ``options`` channel and no option symbol listed, the
        option market subscribes every loaded option of the base coins of the listed symbols.
        """
        wanted = set(channels)
        streams: list[Stream] = []
        for raw in symbols:
            if self.market_of(raw) != market:
                continue
            if market == "option":
                if "options" in wanted:
                    streams.append(Stream("options", raw, market))
                continue
            if "liquidations" in wanted:
                streams.append(Stream("liquidations", raw, market))
            if wanted & _TICKER_CHANNELS:
                streams.append(Stream("ticker", raw, market))
        if market == "option" and "options" in wanted and not streams:
            # no option named: the whole loaded chain of every base coin named by a listed symbol
            bases = {inst.base for raw in symbols if (inst := self.instrument(raw)) is not None}
            streams.extend(Stream("options", inst.raw_symbol, market) for inst in self.instruments()
                           if inst.kind == "option" and inst.base in bases)
        return streams

    def rest_cover(self, market: str, symbols: Sequence[str]) -> list[RestCall]:
        """What REST polls keep fresh while a market's socket is down: tickers (funding, mark, OI; options)."""
        if not symbols:
            return []
        if len(symbols) > 20 and market != "option":
            return [self.rest_tickers(market, None, ttl_s=5.0)]
        return [self.rest_tickers(market, raw, ttl_s=5.0) for raw in symbols]

    def _topics(self, streams: Sequence[Stream]) -> list[str]:
        topics = list(dict.fromkeys(self.stream_key(s) for s in streams))
        chars = sum(len(t) + 3 for t in topics)  # quotes and comma
        if chars > self.ARGS_CHARS_PER_CONNECTION:
            raise ValueError(
                f"{len(topics)} Bybit topics take {chars} characters of args, over the "
                f"{self.ARGS_CHARS_PER_CONNECTION} one connection allows; shard them over more sessions"
            )
        return topics

    def _requests(self, op: str, topics: list[str]) -> list[str]:
        frames = []
        for start in range(0, len(topics), self.SUBSCRIBE_CHUNK):
            self._req_id += 1
            frames.append(msgspec.json.encode(
                {"req_id": str(self._req_id), "op": op, "args": topics[start : start + self.SUBSCRIBE_CHUNK]}
            ).decode())
        return frames

    def subscribe(self, streams: Sequence[Stream]) -> list[str]:
        """``subscribe`` request frames of one connection: topics de-duplicated, ``SUBSCRIBE_CHUNK`` per request.

        Raises:
            ValueError: a stream Bybit does not have, or more topics than one connection's args limit.
        """
        return self._requests("subscribe", self._topics(streams))

    def unsubscribe(self, streams: Sequence[Stream]) -> list[str]:
        """``unsubscribe`` request frames."""
        return self._requests("unsubscribe", self._topics(streams))

    def heartbeat(self) -> HeartbeatSpec:
        """Client ``{"op":"ping"}`` every 20 s (Connect page); the server cuts after 10 min of silence.

        Bybit documents its application ping as the heartbeat and says nothing of
        protocol pings, so none are sent (a dead socket is caught by the staleness
        watchdog). No lifetime limit. 400 topics per connection keeps the args
        under 21 000 characters for symbols up to 49 characters.
        """
        return HeartbeatSpec(
            ping_payload='{"op":"ping"}',
            ping_interval_s=20.0,
            ws_ping_interval_s=None,
            ws_ping_timeout_s=None,
            max_lifetime_s=None,
            max_streams_per_connection=400,
            max_messages_per_s=None,
        )

    # ----------------------------------------------------------------- instruments

    def load_instruments(self, body: str | bytes, market: str = "") -> int:
        """Load one page of ``GET /v5/market/instruments-info`` (any category); returns instruments loaded.

        ``market`` is accepted for the protocol and not needed: each row's category is read off its
        ``contractType``/``optionsType`` (a ``baseCoin`` query returns linear and inverse rows together).
        Rows that cannot be mapped with certainty (unknown ``contractType``, no expiry) are
        skipped and counted (``unmapped{reason="instrument"}``).

        Raises:
            FrameError: not JSON, a non-zero ``retCode``, or not an instruments body.
        """
        result, _ = self._rest_result(body, "instruments")
        try:
            page = _INSTRUMENTS_DEC.decode(result)
        except msgspec.DecodeError as exc:
            raise FrameError("schema", f"instruments: {exc}") from None
        count = 0
        for raw_row in page.rows:
            try:
                mapped = _instrument_from_row(_INSTRUMENT_ROW_DEC.decode(raw_row))
            except (msgspec.DecodeError, FrameError):
                mapped = None
            if mapped is None:
                self.stats.unmapped["instrument"] += 1
                continue
            inst, category = mapped
            self.meta.add(inst)
            self._category[inst.raw_symbol] = category
            count += 1
        return count

    def next_instruments_call(self, body: str | bytes) -> RestCall | None:
        """The request for the page after this instruments-info page, or None when it is the last.

        Raises:
            FrameError: not an instruments body.
        """
        result, _ = self._rest_result(body, "instruments")
        try:
            page = _INSTRUMENTS_DEC.decode(result)
        except msgspec.DecodeError as exc:
            raise FrameError("schema", f"instruments: {exc}") from None
        if not page.nextPageCursor:
            return None
        category = page.category
        if category not in self.markets:
            raise FrameError("schema", f"instruments page category {category!r} is not linear, inverse or option")
        params = {"category": category, "limit": "1000", "cursor": page.nextPageCursor}
        if category == "option" and page.rows:
            try:
                first = _INSTRUMENT_ROW_DEC.decode(page.rows[0])
            except msgspec.DecodeError:
                first = None
            if first is not None and first.baseCoin:
                params["baseCoin"] = first.baseCoin  # option pages are per base coin (BTC by default)
        return RestCall("instruments", "/v5/market/instruments-info", params, weight=1, market=category)

    def instruments(self) -> list[Instrument]:
        """Instruments loaded so far."""
        return self.meta.all()

    def instrument(self, raw_symbol: str) -> Instrument | None:
        """Metadata, else what the naming rule tells, else None."""
        inst = self.meta.get(raw_symbol)
        if inst is not None:
            return inst
        return instrument_from_name(raw_symbol)

    def _resolve(self, raw: str) -> tuple[str | None, Instrument | None, bool | None]:
        """(unified symbol, instrument, inverse?) of a raw symbol; inverse is None when unknown."""
        inst = self.instrument(raw)
        if inst is not None:
            return inst.symbol, inst, inst.inverse
        self.stats.unmapped["unknown_symbol"] += 1
        category = self._category.get(raw)
        if category is not None:
            return None, None, category == "inverse"
        if _INVERSE_DATED_RE.match(raw):
            return None, None, True  # inverse futures: 1 USD contracts, delivery day unknown without metadata
        return None, None, None

    def funding_interval_h(self, raw_symbol: str, state: dict[str, float | None] | None = None) -> float | None:
        """Hours between fundings: the ticker's ``fundingIntervalHour``, else instruments-info ``fundingInterval``."""
        if state is None:
            state = self._tickers.get(raw_symbol)
        hours = positive(state.get("fundingIntervalHour")) if state else None
        if hours is not None:
            return hours
        return self.meta.funding_interval_h(raw_symbol)

    # ----------------------------------------------------------------- frames

    @guard_utf8
    def parse(self, frame: str | bytes, recv_ts: int) -> list[Event]:
        """Events in one WebSocket frame (text exactly as received).

        Args:
            frame: the frame.
            recv_ts: local receive time, ms since epoch.

        Returns:
            Events in frame order; [] for acks, pongs, errors and topics we do not map.

        Raises:
            FrameError: the frame is not JSON or a known message has missing or wrong fields.
        """
        self.stats.frames += 1
        self.last_channel = None
        self.last_symbol = None
        try:
            events = self._parse(frame, recv_ts)
        except FrameError as exc:
            self.stats.errors[exc.reason] += 1
            raise
        self.stats.events += len(events)
        return events

    def _parse(self, frame: str | bytes, recv_ts: int) -> list[Event]:
        try:
            env = _ENVELOPE_DEC.decode(frame)
        except msgspec.ValidationError as exc:
            raise FrameError("schema", f"not a Bybit frame object: {exc}") from None
        except msgspec.DecodeError as exc:
            raise FrameError("json", str(exc)) from None
        topic = env.topic
        if topic is None:
            if env.op is not None or env.success is not None or env.type == "COMMAND_RESP":
                self.stats.control += 1  # subscribe acks/errors, pongs (both shapes)
            else:
                self.stats.ignored += 1
            return []
        if not isinstance(topic, str):
            raise FrameError("schema", f"topic={topic!r} is not a string")
        head, _, sym = topic.partition(".")
        if head not in ("allLiquidation", "liquidation", "tickers"):
            self.stats.ignored += 1  # orderbook, publicTrade, kline...
            return []
        if not sym:
            raise FrameError("schema", f"topic {topic!r} names no symbol")
        if not env.data:
            raise FrameError("schema", f"{topic} frame has no data")
        env_ts = _ms(env.ts, "ts")  # a number; a numeric string is read too
        self.last_symbol = sym
        if head == "allLiquidation":
            self.last_channel = "liquidations"
            return self._each(env.data, lambda item, out: self._all_liquidation(item, env_ts, recv_ts, out))
        if head == "liquidation":
            self.last_channel = "liquidations"
            return self._each(env.data, lambda item, out: self._old_liquidation(item, env_ts, recv_ts, out))
        ts = env_ts or recv_ts
        if self.market_of(sym) == "option":
            self.last_channel = "options"
            return self._each(env.data, lambda item, out: self._option_ticker(
                _decode(_OPTION_TICKER_DEC, item, topic), ts, recv_ts, out))
        if env.type not in ("snapshot", "delta"):
            raise FrameError("schema", f"{topic} type={env.type!r} is neither snapshot nor delta")
        self.last_channel = "ticker"
        snapshot = env.type == "snapshot"
        return self._each(env.data, lambda item, out: self._ticker(item, sym, snapshot, ts, recv_ts, out))

    def _each(self, data: msgspec.Raw, handle: Callable[[msgspec.Raw, list[Event]], None]) -> list[Event]:
        """Run ``handle`` on each element of an array ``data``, or on an object ``data``."""
        try:
            items = _RAW_LIST_DEC.decode(data)
        except msgspec.DecodeError:
            out: list[Event] = []
            handle(data, out)
            return out
        return self._elements(items, handle)

    def _elements(self, items: list[msgspec.Raw], handle: Callable[[msgspec.Raw, list[Event]], None]) -> list[Event]:
        """Events of each element; a bad one is counted and skipped (``base.read_elements``)."""
        return read_elements(items, handle, self.stats, "element")
        out = []
        last_error: FrameError | None = None
        for item in items:
            mine: list[Event] = []
            try:
                handle(item, mine)
            except FrameError as exc:
                self.stats.errors["element"] += 1
                last_error = exc
                continue
            out.extend(mine)
        if last_error is not None and not out:
            raise FrameError(last_error.reason, f"no readable element: {last_error.detail}")
        return out

    # ----------------------------------------------------------------- liquidations

    def _all_liquidation(self, item: msgspec.Raw, env_ts: int | None, recv_ts: int, out: list[Event]) -> None:
        row = _decode(_ALL_LIQ_DEC, item, "allLiquidation")
        side = _POSITION_SIDE.get(row.S)
        if side is None:
            raise FrameError("value", f"allLiquidation S={row.S!r} is neither Buy nor Sell")
        ts = _ms(row.T, "T") or env_ts or recv_ts
        out.append(self._liquidation(row.s, side, positive(num(row.p, "p")), _nonneg(num(row.v, "v")), ts, recv_ts))

    def _old_liquidation(self, item: msgspec.Raw, env_ts: int | None, recv_ts: int, out: list[Event]) -> None:
        row = _decode(_OLD_LIQ_DEC, item, "liquidation")
        side = _POSITION_SIDE.get(row.side)
        if side is None:
            raise FrameError("value", f"liquidation side={row.side!r} is neither Buy nor Sell")
        ts = _ms(row.updatedTime, "updatedTime") or _ms(row.updateTime, "updateTime") or env_ts or recv_ts
        out.append(self._liquidation(
            row.symbol, side, positive(num(row.price, "price")), _nonneg(num(row.size, "size")), ts, recv_ts))

    def _liquidation(
        self, raw: str, side: Side, price: float | None, size: float | None, ts: int, recv_ts: int
    ) -> Liquidation:
        """Linear: size is base coin, value = size × price (stablecoin quote). Inverse: size is USD."""
        symbol, inst, inverse = self._resolve(raw)
        qty: float | None = None
        value_usd: float | None = None
        if inverse is True:
            value_usd = size  # contracts of 1 USD
            qty = finite(size / price) if size is not None and price is not None else None
        elif inverse is False:
            qty = size
            if inst is not None and inst.quote.upper() in STABLECOINS:
                value_usd = finite(size * price) if size is not None and price is not None else None
            else:
                self.stats.unmapped["quote_not_usd"] += 1
        return Liquidation(
            exchange=EXCHANGE, symbol=symbol, raw_symbol=raw, ts=ts, recv_ts=recv_ts,
            side=side, price=price, qty=qty, value_usd=value_usd,
        )

    # ----------------------------------------------------------------- tickers

    def _present(self, data: BybitTickerData) -> dict[str, float | None]:
        """The fields a ticker frame carries, as numbers (None for ``""``); validated before any merge."""
        present: dict[str, float | None] = {}
        for name, value in zip(_TICKER_FIELDS, msgspec.structs.astuple(data)[1:], strict=True):  # [0]: symbol
            if value is UNSET:
                continue
            if name in _TIME_KEYS:
                ms = _ms(value, name)
                present[name] = float(ms) if ms is not None else None
            else:
                present[name] = num(value, name)
        return present

    def _ticker(
        self, item: msgspec.Raw, topic_symbol: str, snapshot: bool, ts: int, recv_ts: int, out: list[Event]
    ) -> None:
        data = _decode(_TICKER_DEC, item, f"tickers.{topic_symbol}")
        raw = data.symbol if isinstance(data.symbol, str) and data.symbol else topic_symbol
        present = self._present(data)
        state = self._tickers.get(raw)
        if state is None:
            if not snapshot:
                self.stats.unmapped["delta_before_snapshot"] += 1  # merged anyway: fields stay null until known
            if len(self._tickers) >= self.MAX_TICKER_STATES:
                del self._tickers[next(iter(self._tickers))]
                self.evicted_states += 1
            state = self._tickers[raw] = {}
        if snapshot:
            state.clear()
        state.update(present)
        self._linear_events(raw, state, present.keys(), ts, recv_ts, out)

    def _remember_prices(self, raw: str, mark: float | None, index: float | None) -> None:
        if mark is None and index is None:
            return
        if raw not in self._prices and len(self._prices) >= self.MAX_TICKER_STATES:
            del self._prices[next(iter(self._prices))]
        self._prices[raw] = (mark, index)

    def _linear_events(
        self, raw: str, state: dict[str, float | None], keys: Collection[str], ts: int, recv_ts: int,
        out: list[Event],
    ) -> None:
        """Funding and/or ticker of a linear/inverse symbol from its (merged) state, per the keys the frame carried."""
        symbol, inst, inverse = self._resolve(raw)
        mark = positive(state.get("markPrice"))
        index = positive(state.get("indexPrice"))
        self._remember_prices(raw, mark, index)
        if not _FUNDING_KEYS.isdisjoint(keys):
            rate = state.get("fundingRate")
            if rate is not None and (inst is None or inst.kind == "perpetual"):
                out.append(self._funding(raw, symbol, ts, recv_ts, rate, self.funding_interval_h(raw, state),
                                         _int_ms(state.get("nextFundingTime")), mark, index))
        if not _TICKER_KEYS.isdisjoint(keys):
            oi_base, oi_usd = self._ticker_oi(state, inst, inverse, mark, index)
            out.append(Ticker(
                exchange=EXCHANGE, symbol=symbol, raw_symbol=raw, ts=ts, recv_ts=recv_ts,
                last=positive(state.get("lastPrice")),
                bid=positive(state.get("bid1Price")),
                ask=positive(state.get("ask1Price")),
                mark_price=mark,
                index_price=index,
                volume_24h_usd=self._volume_usd(state, inst, inverse),
                open_interest=oi_base,
                open_interest_usd=oi_usd,
            ))

    def _funding(
        self, raw: str, symbol: str | None, ts: int, recv_ts: int, rate: float, interval: float | None,
        next_ts: int | None, mark: float | None, index: float | None,
    ) -> Funding:
        if interval is None:
            self.stats.unmapped["funding_interval"] += 1
        rate_8h, annualized = funding_fields(rate, interval)
        return Funding(
            exchange=EXCHANGE, symbol=symbol, raw_symbol=raw, ts=ts, recv_ts=recv_ts, rate=rate,
            interval_h=interval, rate_8h=finite(rate_8h), annualized=finite(annualized), predicted_rate=None,
            next_funding_ts=next_ts, mark_price=mark, index_price=index,
        )

    def _ticker_oi(
        self, state: dict[str, float | None], inst: Instrument | None, inverse: bool | None,
        mark: float | None, index: float | None,
    ) -> tuple[float | None, float | None]:
        """(open interest in base units, in USD), one side (module docstring)."""
        size = _half(state.get("singleOpenInterest"), state.get("openInterest"))
        value = _half(state.get("singleOpenInterestValue"), state.get("openInterestValue"))
        price = mark or index
        if inverse is True:
            usd = size  # USD contracts of 1 USD
            base = value  # inverse openInterestValue is base coin (= USD / mark)
            if base is None and usd is not None and price is not None:
                base = finite(usd / price)
            return base, usd
        if inverse is False:
            if inst is None or inst.quote.upper() not in STABLECOINS:
                self.stats.unmapped["quote_not_usd"] += 1
                return size, None
            usd = value  # linear openInterestValue is quote (= size × mark)
            if usd is None and size is not None and price is not None:
                usd = finite(size * price)
            return size, usd
        return None, None

    def _volume_usd(
        self, state: dict[str, float | None], inst: Instrument | None, inverse: bool | None
    ) -> float | None:
        """Inverse: ``volume24h`` is USD (1 USD contracts); linear: ``turnover24h`` (quote) for a stablecoin quote."""
        if inverse is True:
            return _nonneg(state.get("volume24h"))
        if inverse is False and inst is not None and inst.quote.upper() in STABLECOINS:
            return _nonneg(state.get("turnover24h"))
        return None

    # ----------------------------------------------------------------- options

    def _option_ticker(self, data: BybitOptionTickerData, ts: int, recv_ts: int, out: list[Event]) -> None:
        raw = data.symbol
        inst = self.instrument(raw)
        if inst is None or inst.kind != "option" or inst.expiry_ms is None or inst.strike is None \
                or inst.option_kind is None:
            self.stats.unmapped["unknown_symbol"] += 1  # underlying, expiry and strike unknown: no event
            return
        mark = positive(num(data.markPrice, "markPrice"))
        if inst.quote.upper() in STABLECOINS:
            mark_usd = mark  # Bybit options are quoted in USD(C) or USDT
        else:
            mark_usd = None
            self.stats.unmapped["quote_not_usd"] += 1
        bid = positive(num(data.bidPrice, "bidPrice"))
        ask = positive(num(data.askPrice, "askPrice"))
        bid_iv = positive(num(data.bidIv, "bidIv"))
        ask_iv = positive(num(data.askIv, "askIv"))
        out.append(OptionTicker(
            exchange=EXCHANGE, symbol=inst.symbol, raw_symbol=raw, ts=ts, recv_ts=recv_ts,
            underlying=inst.base.upper(),
            expiry=date_from_ms(inst.expiry_ms),
            strike=inst.strike,
            kind=inst.option_kind,
            mark_price_usd=mark_usd,
            mark_iv=positive(num(data.markPriceIv, "markPriceIv")),
            bid_iv=bid_iv if bid is not None else None,  # an IV side with no quote is null, not 0
            ask_iv=ask_iv if ask is not None else None,
            delta=num(data.delta, "delta"),
            gamma=num(data.gamma, "gamma"),
            vega=num(data.vega, "vega"),
            theta=num(data.theta, "theta"),
            underlying_price=positive(num(data.underlyingPrice, "underlyingPrice")),
            open_interest=_nonneg(num(data.openInterest, "openInterest")),
            volume_24h=_nonneg(num(data.volume24h, "volume24h")),
        ))

    # ----------------------------------------------------------------- REST calls

    def rest_instruments(self) -> list[RestCall]:
        """First pages of instruments-info: linear, inverse, and options per base coin (BTC is the default).

        Follow each body with ``next_instruments_call`` until it returns None (>500 linear symbols).
        """
        path = "/v5/market/instruments-info"
        calls = [
            RestCall("instruments", path, {"category": "linear", "limit": "1000"}, weight=1, market="linear"),
            RestCall("instruments", path, {"category": "inverse", "limit": "1000"}, weight=1, market="inverse"),
        ]
        calls.extend(
            RestCall("instruments", path, {"category": "option", "baseCoin": base, "limit": "1000"}, weight=1,
                     market="option")
            for base in self.option_bases
        )
        return calls

    def _contract_market(self, raw_symbol: str) -> str:
        market = self.market_of(raw_symbol)
        if market == "option":
            raise ValueError(f"{raw_symbol!r} is an option: Bybit publishes open interest and funding per contract")
        return market

    def rest_open_interest(self, raw_symbol: str, ttl_s: float = 30.0) -> RestCall:
        """Latest 5-minute open-interest row of one linear/inverse symbol (Bybit's OI endpoint is a history)."""
        market = self._contract_market(raw_symbol)
        params = {"category": market, "symbol": raw_symbol, "intervalTime": "5min", "limit": "1"}
        return RestCall("open_interest", "/v5/market/open-interest", params, weight=1, ttl_s=ttl_s, market=market)

    _INTERVALS: ClassVar[dict[str, str]] = {
        "5m": "5min", "15m": "15min", "30m": "30min", "1h": "1h", "4h": "4h", "1d": "1d",
    }

    def rest_open_interest_hist(self, raw_symbol: str, period: str = "1h", limit: int = 200) -> RestCall:
        """Open-interest history (to seed OI change windows); ``period`` 5m/15m/30m/1h/4h/1d, ``limit`` ≤ 200."""
        market = self._contract_market(raw_symbol)
        interval = self._INTERVALS.get(period, period)
        if interval not in self._INTERVALS.values():
            raise ValueError(f"Bybit open-interest intervalTime has no {period!r}")
        params = {"category": market, "symbol": raw_symbol, "intervalTime": interval,
                  "limit": str(max(1, min(limit, 200)))}
        return RestCall("open_interest", "/v5/market/open-interest", params, weight=1, market=market)

    def rest_tickers(
        self, market: str, raw_symbol: str | None = None, ttl_s: float = 5.0, base_coin: str | None = None
    ) -> RestCall:
        """``GET /v5/market/tickers`` of one symbol or a whole category (options need a symbol or a base coin)."""
        if market not in self.markets:
            raise ValueError(f"Bybit has no market {market!r}")
        params = {"category": market}
        if raw_symbol:
            params["symbol"] = raw_symbol
        elif base_coin:
            params["baseCoin"] = base_coin
        elif market == "option":
            raise ValueError("Bybit option tickers need a symbol or a base coin")
        return RestCall("tickers", "/v5/market/tickers", params, weight=1, ttl_s=ttl_s, market=market)

    def rest_funding_history(self, raw_symbol: str, limit: int = 200) -> RestCall:
        """Funding-rate history of one perpetual (newest first, ``limit`` ≤ 200)."""
        market = self._contract_market(raw_symbol)
        params = {"category": market, "symbol": raw_symbol, "limit": str(max(1, min(limit, 200)))}
        return RestCall("funding_history", "/v5/market/funding/history", params, weight=1, market=market)

    def rest_account_ratio(self, raw_symbol: str, period: str = "5min", limit: int = 1,
                           ttl_s: float | None = None) -> RestCall:
        """``GET /v5/market/account-ratio``: long/short account ratio of one linear/inverse symbol."""
        market = self._contract_market(raw_symbol)
        params = {"category": market, "symbol": raw_symbol, "period": period, "limit": str(max(1, min(limit, 500)))}
        return RestCall("account_ratio", "/v5/market/account-ratio", params, weight=1, ttl_s=ttl_s, market=market)

    def parse_long_short(
        self, body: str | bytes, params: Mapping[str, str] | None = None
    ) -> list[tuple[str, int, float, float | None, float | None]]:
        """Rows ``(raw_symbol, ts, ratio, long_fraction, short_fraction)`` of an account-ratio body
        (ratio = ``buyRatio`` / ``sellRatio``; a row with a zero short share is skipped).

        Raises:
            FrameError: not JSON, a non-zero ``retCode``, or wrong types.
        """
        result, _time = self._rest_result(body, "account_ratio")
        try:
            page = _ACCOUNT_RATIO_DEC.decode(result)
        except msgspec.DecodeError as exc:
            raise FrameError("schema", f"account_ratio: {exc}") from None
        out: list[tuple[str, int, float, float | None, float | None]] = []
        for row in page.rows:
            buy = num(row.buyRatio, "buyRatio")
            sell = num(row.sellRatio, "sellRatio")
            ts = _ms(row.timestamp, "timestamp")
            if buy is None or not sell or ts is None:
                continue
            out.append((row.symbol or (params or {}).get("symbol", ""), ts, buy / sell, buy, sell))
        return out

    # ----------------------------------------------------------------- one-shot snapshots

    SNAPSHOT_TTL_S: ClassVar[dict[str, float]] = {
        "tickers": 30.0, "account_ratio": 60.0, "funding_history": 300.0, "open_interest": 300.0,
    }

    def _of_bases(self, bases: Sequence[str], kinds: Sequence[str]) -> list[Instrument]:
        wanted = {b.upper() for b in bases}
        return sorted((i for i in self.meta.all() if i.base in wanted and i.kind in kinds),
                      key=lambda i: (i.base, i.inverse, i.kind != "perpetual", i.expiry_ms or 0, i.raw_symbol))

    def snapshot_calls(self, command: str, bases: Sequence[str], *, now_ms: int | None = None) -> list[RestCall]:
        """REST calls of a one-shot ``command`` for the loaded instruments of ``bases`` (pure; load instruments first).

        ``tickers`` come first: their mark/index put open-interest history in USD. ``liquidations``: none
        (Bybit has no public liquidation history).
        """
        ttl = self.SNAPSHOT_TTL_S
        calls: list[RestCall] = []
        if command == "funding":
            for inst in self._of_bases(bases, ("perpetual",)):
                raw = inst.raw_symbol
                calls.append(self.rest_tickers(self._contract_market(raw), raw, ttl_s=ttl["tickers"]))
                hist = self.rest_funding_history(raw, limit=30)
                calls.append(RestCall(hist.endpoint, hist.path, hist.params, hist.weight, ttl["funding_history"],
                                      hist.market))
        elif command == "oi":
            insts = self._of_bases(bases, ("perpetual", "future"))
            calls += [self.rest_tickers(self._contract_market(i.raw_symbol), i.raw_symbol, ttl_s=ttl["tickers"])
                      for i in insts]
            for inst in insts:
                hist = self.rest_open_interest_hist(inst.raw_symbol, period="1h", limit=169)
                calls.append(RestCall(hist.endpoint, hist.path, hist.params, hist.weight, ttl["open_interest"],
                                      hist.market))
                if inst.kind == "perpetual":
                    calls.append(self.rest_account_ratio(inst.raw_symbol, ttl_s=ttl["account_ratio"]))
        elif command == "basis":
            calls += [self.rest_tickers(self._contract_market(i.raw_symbol), i.raw_symbol, ttl_s=ttl["tickers"])
                      for i in self._of_bases(bases, ("perpetual", "future"))]
        elif command == "options":
            wanted = {b.upper() for b in bases}
            listed = sorted({i.base for i in self.meta.all() if i.kind == "option" and i.base in wanted})
            calls += [self.rest_tickers("option", ttl_s=ttl["tickers"], base_coin=b) for b in listed]
        return calls

    # ----------------------------------------------------------------- REST bodies

    def _rest_result(self, body: str | bytes, what: str) -> tuple[msgspec.Raw, int | None]:
        """``result`` and ``time`` of a v5 body; a non-zero ``retCode`` is a FrameError("rejected")."""
        try:
            env = _REST_ENV_DEC.decode(body)
        except msgspec.ValidationError as exc:
            raise FrameError("schema", f"{what}: not a Bybit v5 body: {exc}") from None
        except msgspec.DecodeError as exc:
            raise FrameError("json", f"{what}: {exc}") from None
        if env.retCode != 0:
            # 10006 "Too many visits" and 10429 system protection are rate limits: the caller backs off.
            reason = "rate_limited" if env.retCode in (10006, 10018, 10429) else "rejected"
            raise FrameError(reason, f"{what}: Bybit retCode {env.retCode}: {env.retMsg}")
        if not env.result:
            raise FrameError("schema", f"{what}: body has no result")
        time = env.time if isinstance(env.time, (int, str)) and not isinstance(env.time, bool) else None
        return env.result, _ms(time, "time")

    @guard_utf8
    def parse_rest(
        self, endpoint: str, body: str | bytes, recv_ts: int, params: Mapping[str, str] | None = None
    ) -> list[Event]:
        """Events in a REST body (``REST_ENDPOINTS``); ``instruments`` loads metadata and yields none.

        Raises:
            FrameError: not JSON, a non-zero ``retCode`` (reason ``rejected``; ``rate_limited`` for
                10006/10018/10429), or wrong types.
            ValueError: an endpoint this adapter never asked for.
        """
        if endpoint not in self.REST_ENDPOINTS:
            raise ValueError(f"unknown Bybit REST endpoint {endpoint!r}")
        if endpoint == "instruments":
            self.load_instruments(body)
            return []
        result, time = self._rest_result(body, endpoint)
        ts = time or recv_ts
        try:
            match endpoint:
                case "tickers":
                    events = self._rest_tickers(result, ts, recv_ts)
                case "open_interest":
                    events = self._rest_open_interest(_OI_DEC.decode(result), ts, recv_ts)
                case _:
                    events = self._rest_funding_history(_FUNDING_HIST_DEC.decode(result), recv_ts)
        except msgspec.DecodeError as exc:
            raise FrameError("schema", f"{endpoint}: {exc}") from None
        self.stats.events += len(events)
        return events

    def _rest_tickers(self, result: msgspec.Raw, ts: int, recv_ts: int) -> list[Event]:
        page = _TICKERS_DEC.decode(result)
        category = page.category
        if category not in self.markets:
            raise FrameError("schema", f"tickers category {category!r} is not linear, inverse or option")

        def handle(item: msgspec.Raw, out: list[Event]) -> None:
            if category == "option":
                self._option_ticker(_option_from_rest(_decode(_REST_OPTION_DEC, item, "tickers")), ts, recv_ts, out)
                return
            data = _decode(_TICKER_DEC, item, "tickers")
            if not isinstance(data.symbol, str) or not data.symbol:
                raise FrameError("schema", "tickers row has no symbol")
            present = self._present(data)  # a REST row is a full snapshot: nothing is merged
            if data.symbol not in self._category and len(self._category) < self.MAX_TICKER_STATES:
                self._category[data.symbol] = category
            self._linear_events(data.symbol, present, present.keys(), ts, recv_ts, out)

        return self._elements(page.rows, handle) if page.rows else []

    def _rest_open_interest(self, page: BybitOpenInterestResult, ts: int, recv_ts: int) -> list[Event]:
        raw = page.symbol
        if page.category in ("linear", "inverse"):
            self._category.setdefault(raw, page.category)
        symbol, inst, inverse = self._resolve(raw)
        rows = [(_ms(row.timestamp, "timestamp") or ts, row) for row in page.rows]
        newest = max((t for t, _ in rows), default=None)
        mark, index = self._prices.get(raw, (None, None))
        out: list[Event] = []
        for row_ts, row in rows:
            contracts = _half(num(row.singleOpenInterest, "singleOpenInterest"),
                              num(row.openInterest, "openInterest"))
            # The last price seen is today's: only the newest row is converted with it (older rows keep null).
            price = (mark or index) if row_ts == newest else None
            base: float | None = None
            usd: float | None = None
            if inverse is True:
                usd = contracts  # USD contracts of 1 USD
                base = finite(usd / price) if usd is not None and price is not None else None
            elif inverse is False:
                base = contracts  # base coin
                if inst is not None and inst.quote.upper() in STABLECOINS:
                    usd = finite(base * price) if base is not None and price is not None else None
                else:
                    self.stats.unmapped["quote_not_usd"] += 1
            out.append(OpenInterest(
                exchange=EXCHANGE, symbol=symbol, raw_symbol=raw, ts=row_ts, recv_ts=recv_ts,
                oi_contracts=contracts, oi_base=base, oi_usd=usd,
            ))
        return out

    def _rest_funding_history(self, page: BybitFundingHistoryResult, recv_ts: int) -> list[Event]:
        out: list[Event] = []
        for row in page.rows:
            rate = num(row.fundingRate, "fundingRate")
            settled = _ms(row.fundingRateTimestamp, "fundingRateTimestamp")
            if rate is None or settled is None:
                continue
            symbol, _inst, _inverse = self._resolve(row.symbol)
            # A history row is the rate charged at fundingRateTimestamp: that settlement is its next_funding_ts
            # (docs/decisions.md, Funding).
            out.append(self._funding(row.symbol, symbol, settled, recv_ts, rate, self.funding_interval_h(row.symbol),
                                     settled, None, None))
        return out


def _decode(decoder: msgspec.json.Decoder[Any], item: msgspec.Raw | bytes, what: str) -> Any:
    try:
        return decoder.decode(item)
    except msgspec.DecodeError as exc:
        raise FrameError("schema", f"{what}: {exc}") from None


def _int_ms(value: float | None) -> int | None:
    return int(value) if value is not None and value > 0 else None


def _option_from_rest(row: BybitRestOptionTicker) -> BybitOptionTickerData:
    """A REST option row under the WebSocket's field names (bid1Iv -> bidIv, markIv -> markPriceIv...)."""
    return BybitOptionTickerData(
        symbol=row.symbol, bidPrice=row.bid1Price, bidIv=row.bid1Iv, askPrice=row.ask1Price, askIv=row.ask1Iv,
        markPrice=row.markPrice, markPriceIv=row.markIv, indexPrice=row.indexPrice,
        underlyingPrice=row.underlyingPrice, openInterest=row.openInterest, volume24h=row.volume24h,
        delta=row.delta, gamma=row.gamma, vega=row.vega, theta=row.theta,
    )


__all__ = [
    "EXCHANGE",
    "BybitAdapter",
    "instrument_from_name",
    "market_from_name",
    "unified",
]
