"""OKX v5 derivatives (perpetual swaps, expiry futures, options): wire Structs and parsers.

Sans-I/O (STYLE.md A1): subscribe frames out, frames in, events out. Wire facts
come from OKX's API v5 documentation (Public Data and Order Book Trading
WebSocket/REST pages, Trading Statistics, Error Codes, Overview/WebSocket),
summarized with sources in ``shared/exchanges.md`` §3 and §6:

* One public endpoint ``/ws/v5/public``. Subscribe with
  ``{"id": "<n>", "op": "subscribe", "args": [{"channel": …, "instId"|"instType"|"instFamily": …}]}``;
  the args of one request may total at most 64 KB. Acks/errors/notices are
  ``{"event": …}`` frames; pushes are ``{"arg": {…}, "data": [ … ]}`` (``data``
  always an array). Every number is a string; times are string ms.
* Keep-alive: after < 30 s of silence the client sends the text ``ping`` and
  the server answers the text ``pong`` (OKX closes a connection without
  subscription or data for 30 s).
* Sizes are CONTRACTS: one contract = ``ctVal × ctMult`` units of ``ctValCcy``
  (``GET /api/v5/public/instruments``). Linear (``BTC-USDT-SWAP``): ``ctValCcy``
  is the base coin; inverse (``BTC-USD-SWAP``): ``ctValCcy`` is USD.
* REST bodies are ``{"code": "0", "msg": "", "data": [ … ]}``; ``code`` is a
  STRING and a non-"0" code is an error even under HTTP 200 (``50011`` rate
  limit, ``51001`` unknown instrument).

Decisions where DESIGN.md leaves room (reported to the lead; see the test file
for the behaviours they pin):

* ``index-tickers`` yields no event: an index (``BTC-USD``) is not an
  instrument, and copying its price onto the contracts of its family would make
  events the venue never sent for them. The last index per index id is kept to
  value coin-priced options in USD. Other frames never borrow a cached index:
  the model says a field is what the frame gives.
* Options: ``opt-summary`` yields one ``option_ticker`` per row. It carries no
  mark price, open interest or volume, so the adapter keeps, per option, the
  last ``markPx`` (``mark-price`` channel or REST), ``oiCcy`` (``open-interest``
  channel or REST) and ``volCcy24h`` (``tickers`` channel or REST) it saw, and
  the last index per index id. ``mark_price_usd`` = mark (coin) × index for
  coin-margined options (``settleCcy`` = base), = mark for options settled in a
  stablecoin; ``underlying_price`` = ``fwdPx`` (the forward OKX prices the
  option against). ``mark-price`` and ``tickers`` rows of OPTIONS yield no
  ``ticker`` (their prices are in coin, not in the quote currency); they only
  feed that cache.
* Funding-rate history rows: ``rate`` = ``realizedRate`` (what was charged;
  ``fundingRate`` there is the prediction) when present; ``ts`` =
  ``next_funding_ts`` = ``fundingTime``; ``interval_h`` null (a row states no
  interval, and the gap to a neighbouring row is not stated either).
* Families with a suffixed quote (``BTC-USD_UM`` USDⓈ-margined options,
  ``BTC-USD_UM_XPERP``): unified only from metadata, with QUOTE = ``settleCcy``
  (so they never collide with the coin-margined ``BTC-USD`` family); the naming
  rule alone gives ``symbol: null``.
* ``liquidation-orders`` pushes a batch of recent orders right after
  subscribing (tardis-node drops that first push); it is kept here: natural
  keys dedupe downstream.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Literal

import msgspec

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
    remember,
)
from streamer.exchanges.metadata import InstrumentTable
from streamer.model import (
    STABLECOINS,
    Event,
    Funding,
    Instrument,
    InstrumentKind,
    Liquidation,
    OpenInterest,
    OptionTicker,
    Side,
    Ticker,
    date_from_ms,
    funding_fields,
    yymmdd_to_ms,
)

EXCHANGE = "okx"

Num = str | float
"""A wire number: OKX sends strings; a bare JSON number is read too."""

# --------------------------------------------------------------------------- WebSocket wire messages


class OkxArg(msgspec.Struct, frozen=True, gc=False):
    """``arg`` of a push, ack or subscribe request: the channel and one of instId/instType/instFamily."""

    channel: str = ""
    instId: str = ""
    instType: str = ""
    instFamily: str = ""
    uly: str = ""


class OkxEnvelope(msgspec.Struct, frozen=True, gc=False):
    """Routing fields of any public frame: ``{"event": …}`` control or ``{"arg": …, "data": […]}`` push."""

    event: str | None = None
    arg: OkxArg | None = None
    data: msgspec.Raw = msgspec.Raw(b"")  # empty when absent
    code: str | int | None = None
    msg: str | None = None
    connId: str | None = None


class OkxLiquidationDetail(msgspec.Struct, frozen=True, gc=False):
    """One ``details`` entry of a ``liquidation-orders`` row (Public Data WS, Liquidation orders channel)."""

    side: str = ""  # ORDER side, buy/sell (FUTURES/SWAP)
    posSide: str = ""  # long/short (hedge mode) or net
    bkPx: Num = ""  # bankruptcy price (FUTURES/SWAP)
    sz: Num = ""  # FUTURES/SWAP: contracts; MARGIN: base currency
    bkLoss: Num = ""  # bankruptcy loss
    ccy: str = ""  # MARGIN only
    ts: Num = ""  # liquidation time, ms


class OkxLiquidationRow(msgspec.Struct, frozen=True, gc=False):
    """``liquidation-orders`` push row; also ``GET /api/v5/public/liquidation-orders`` (adds ``totalLoss``)."""

    instId: str = ""
    instType: str = ""
    instFamily: str = ""
    uly: str = ""
    details: list[OkxLiquidationDetail] = msgspec.field(default_factory=list)
    totalLoss: Num = ""


class OkxFundingRateRow(msgspec.Struct, frozen=True, gc=False):
    """``funding-rate`` push row; also ``GET /api/v5/public/funding-rate``.

    ``fundingTime`` is the NEXT settlement, the one ``fundingRate`` will be
    charged at; ``nextFundingTime`` the one after ("users should focus on the
    difference between fundingTime and nextFundingTime to determine the funding
    fee interval"). ``nextFundingRate`` is documented as no longer supported ("").
    """

    instId: str
    instType: str = ""
    method: str = ""
    fundingRate: Num = ""
    nextFundingRate: Num = ""
    fundingTime: Num = ""
    nextFundingTime: Num = ""
    settState: str = ""
    settFundingRate: Num = ""
    premium: Num = ""
    ts: Num = ""  # data return time, ms


class OkxMarkPriceRow(msgspec.Struct, frozen=True, gc=False):
    """``mark-price`` push row; also ``GET /api/v5/public/mark-price``."""

    instId: str
    instType: str = ""
    markPx: Num = ""
    ts: Num = ""


class OkxIndexTickerRow(msgspec.Struct, frozen=True, gc=False):
    """``index-tickers`` push row; also ``GET /api/v5/market/index-tickers`` (``instId`` is an index, ``BTC-USDT``)."""

    instId: str
    idxPx: Num = ""
    ts: Num = ""  # index price update time, ms


class OkxTickerRow(msgspec.Struct, frozen=True, gc=False):
    """``tickers`` push row (Order Book Trading, Market Data); also ``GET /api/v5/market/tickers``.

    Derivatives: ``vol24h`` is contracts, ``volCcy24h`` base currency.
    """

    instId: str
    instType: str = ""
    last: Num = ""
    bidPx: Num = ""
    askPx: Num = ""
    vol24h: Num = ""
    volCcy24h: Num = ""
    ts: Num = ""  # ticker data generation time, ms


class OkxOpenInterestRow(msgspec.Struct, frozen=True, gc=False):
    """``open-interest`` push row; also ``GET /api/v5/public/open-interest``.

    ``oi`` contracts, ``oiCcy`` coin (base), ``oiUsd`` USD.
    """

    instId: str
    instType: str = ""
    oi: Num = ""
    oiCcy: Num = ""
    oiUsd: Num = ""
    ts: Num = ""


class OkxOptSummaryRow(msgspec.Struct, frozen=True, gc=False):
    """``opt-summary`` push row; also ``GET /api/v5/public/opt-summary``.

    Vols are fractions (``markVol`` 0.3675…); ``…BS`` greeks are the Black-Scholes ones.
    """

    instId: str
    instType: str = ""
    uly: str = ""
    delta: Num = ""
    gamma: Num = ""
    vega: Num = ""
    theta: Num = ""
    deltaBS: Num = ""
    gammaBS: Num = ""
    vegaBS: Num = ""
    thetaBS: Num = ""
    markVol: Num = ""
    bidVol: Num = ""
    askVol: Num = ""
    volLv: Num = ""
    fwdPx: Num = ""
    ts: Num = ""


# --------------------------------------------------------------------------- REST wire messages


class OkxRestEnvelope(msgspec.Struct, frozen=True, gc=False):
    """Every REST body: ``{"code": "0", "msg": "", "data": […]}`` (``code`` is a string)."""

    code: str | int | None = None
    msg: str = ""
    data: msgspec.Raw = msgspec.Raw(b"")


class OkxInstrumentRow(msgspec.Struct, frozen=True, gc=False):
    """One ``data`` row of ``GET /api/v5/public/instruments?instType=SWAP|FUTURES|OPTION``."""

    instId: str = ""
    instType: str = ""
    uly: str = ""
    instFamily: str = ""
    settleCcy: str = ""
    ctVal: Num = ""  # contract value
    ctMult: Num = ""  # contract multiplier
    ctValCcy: str = ""  # contract value currency
    ctType: str = ""  # linear / inverse (FUTURES/SWAP)
    optType: str = ""  # C / P (OPTION)
    stk: Num = ""  # strike (OPTION)
    expTime: Num = ""  # delivery/exercise time, ms (FUTURES/OPTION)
    listTime: Num = ""
    state: str = ""


class OkxFundingHistoryRow(msgspec.Struct, frozen=True, gc=False):
    """``GET /api/v5/public/funding-rate-history`` row: ``fundingRate`` predicted, ``realizedRate`` charged."""

    instId: str
    instType: str = ""
    fundingRate: Num = ""
    realizedRate: Num = ""
    fundingTime: Num = ""
    method: str = ""


_ENVELOPE_DEC = msgspec.json.Decoder(OkxEnvelope)
_REST_DEC = msgspec.json.Decoder(OkxRestEnvelope)
_RAW_LIST_DEC = msgspec.json.Decoder(list[msgspec.Raw])
_POSITIONAL_DEC = msgspec.json.Decoder(list[list[Num]])
_ROW_TYPES: dict[str, Any] = {
    "liquidation-orders": OkxLiquidationRow,
    "funding-rate": OkxFundingRateRow,
    "mark-price": OkxMarkPriceRow,
    "index-tickers": OkxIndexTickerRow,
    "tickers": OkxTickerRow,
    "open-interest": OkxOpenInterestRow,
    "opt-summary": OkxOptSummaryRow,
    "instruments": OkxInstrumentRow,
    "funding-rate-history": OkxFundingHistoryRow,
    "open-interest-history": list[Num],  # positional [ts, oi, oiCcy, oiUsd]
}
"""Row type of each channel's / body's ``data`` array."""
_ROW_DECODERS: dict[str, msgspec.json.Decoder[Any]] = {k: msgspec.json.Decoder(t) for k, t in _ROW_TYPES.items()}
_LIST_DECODERS: dict[str, msgspec.json.Decoder[Any]] = {
    k: msgspec.json.Decoder(list[t]) for k, t in _ROW_TYPES.items()  # type: ignore[valid-type]
}

CHANNELS: dict[str, str] = {
    "liquidation-orders": "liquidations",
    "funding-rate": "funding",
    "mark-price": "mark",
    "tickers": "ticker",
    "open-interest": "open_interest",
    "index-tickers": "index",
    "opt-summary": "options",
}
"""OKX channel -> venue-neutral Channel (``last_channel``)."""

CONTROL_EVENTS = frozenset(
    {"subscribe", "unsubscribe", "error", "notice", "login", "channel-conn-count", "channel-conn-count-error"}
)

RATE_LIMIT_CODES = frozenset({"50011", "50013"})
"""50011 "Rate limit reached" (may come inside HTTP 200), 50013 "Systems are busy": back off."""

# --------------------------------------------------------------------------- symbols and units

_NAME_RE = re.compile(
    r"^([A-Z0-9]+)-([A-Z0-9]+(?:_[A-Z0-9_]+)?)-(SWAP|\d{6})(?:-([0-9]{1,15}(?:\.[0-9]{1,15})?)-([CP]))?$"
)
_MAX_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, the last time a date can show
_MS_PER_H = 3_600_000.0
_INST_TYPES: dict[str, InstrumentKind] = {"SWAP": "perpetual", "FUTURES": "future", "OPTION": "option"}


def ms(value: Num, what: str) -> int | None:
    """A time in ms from a wire value; None for ``""``; FrameError when it is not a plausible time."""
    v = num(value, what)
    if v is None:
        return None
    if v < 0 or v > _MAX_MS:
        raise FrameError("value", f"{what}={value!r} is not a time in ms")
    return int(v)


def index_of_family(family: str) -> str | None:
    """The index id of an instrument family: ``BTC-USD_UM_XPERP`` → ``BTC-USD``; ``BTC-USDT`` → itself."""
    parts = family.split("-")
    if len(parts) != 2 or not parts[0] or not parts[1]:
        return None
    return f"{parts[0]}-{parts[1].split('_')[0]}"


def family_of_name(raw_symbol: str) -> str | None:
    """The instrument family an instId names (``BTC-USD-250926-100000-C`` → ``BTC-USD``), else None."""
    m = _NAME_RE.match(raw_symbol)
    return f"{m[1]}-{m[2]}" if m else None


def instrument_from_name(raw_symbol: str) -> Instrument | None:
    """What OKX's naming rule says about an instId, without metadata (no contract size).

    ``BASE-QUOTE-SWAP`` perpetual, ``BASE-QUOTE-YYMMDD`` future,
    ``BASE-QUOTE-YYMMDD-STRIKE-C|P`` option; QUOTE ``USD`` is coin-margined
    (inverse swaps/futures, coin-priced options). A suffixed quote
    (``USD_UM``) or any other name gives None: its quote is not certain.
    """
    m = _NAME_RE.match(raw_symbol)
    if m is None or "_" in m[2]:
        return None
    base, quote, tail = m[1], m[2], m[3]
    coin_margined = quote == "USD"
    settle = base if coin_margined else quote
    if tail == "SWAP":
        if m[4] is not None:
            return None
        return Instrument(exchange=EXCHANGE, raw_symbol=raw_symbol, kind="perpetual", base=base, quote=quote,
                          settle=settle, inverse=coin_margined)
    expiry = yymmdd_to_ms(tail)
    if expiry is None:
        return None
    if m[4] is None:
        return Instrument(exchange=EXCHANGE, raw_symbol=raw_symbol, kind="future", base=base, quote=quote,
                          settle=settle, inverse=coin_margined, expiry_ms=expiry)
    strike = float(m[4])
    if strike <= 0:
        return None
    return Instrument(exchange=EXCHANGE, raw_symbol=raw_symbol, kind="option", base=base, quote=quote,
                      settle=settle, expiry_ms=expiry, strike=strike, option_kind="C" if m[5] == "C" else "P")


def _instrument_from_row(row: OkxInstrumentRow) -> tuple[Instrument, str] | None:
    """(Instrument, family) of one instruments row; None for SPOT/MARGIN, preopen stubs and unreadable rows.

    ``contract_size`` = ctVal × ctMult, kept only where ``ctValCcy`` is what the
    model's unit says (the base coin for linear swaps/futures and options, USD
    or a stablecoin for inverse); otherwise null and the sizes stay unmapped.
    """
    kind = _INST_TYPES.get(row.instType)
    if kind is None or not row.instId:
        return None
    named = _NAME_RE.match(row.instId)
    family = row.instFamily or row.uly or (f"{named[1]}-{named[2]}" if named else "")
    parts = family.split("-")
    if len(parts) != 2 or not parts[0] or not parts[1]:
        return None
    base, quote_part = parts
    settle = row.settleCcy or None
    if "_" in quote_part:
        # USDⓈ-margined families (BTC-USD_UM...): quoted in the stablecoin they settle in.
        if settle is None or settle not in STABLECOINS or settle == "USD":
            return None
        quote = settle
    else:
        quote = quote_part
    inverse = kind != "option" and (row.ctType == "inverse" or (not row.ctType and row.ctValCcy == "USD"))
    ct_val = positive(num(row.ctVal, "ctVal"))
    ct_mult = positive(num(row.ctMult, "ctMult"))
    size = finite(ct_val * ct_mult) if ct_val is not None and ct_mult is not None else None
    unit_ok = row.ctValCcy in STABLECOINS if inverse else row.ctValCcy == base
    expiry: int | None = None
    strike: float | None = None
    option_kind: Literal["C", "P"] | None = None
    if kind != "perpetual":
        expiry = ms(row.expTime, "expTime") or None
        if expiry is None and named is not None and named[3] != "SWAP":
            expiry = yymmdd_to_ms(named[3])
        if expiry is None:
            return None
    if kind == "option":
        strike = positive(num(row.stk, "stk"))
        if strike is None and named is not None and named[4] is not None:
            strike = positive(float(named[4]))
        letter = row.optType or (named[5] if named is not None else None)
        if strike is None or letter not in ("C", "P"):
            return None
        option_kind = "C" if letter == "C" else "P"
    inst = Instrument(
        exchange=EXCHANGE,
        raw_symbol=row.instId,
        kind=kind,
        base=base,
        quote=quote,
        settle=settle,
        inverse=inverse,
        contract_size=size if unit_ok else None,
        expiry_ms=expiry,
        strike=strike,
        option_kind=option_kind,
    )
    return inst, family


def _liquidation_side(pos_side: str, side: str) -> Side:
    """The POSITION liquidated: ``posSide`` long/short, else (net mode) from the ORDER side: sell closes a long."""
    if pos_side == "long":
        return "long"
    if pos_side == "short":
        return "short"
    if pos_side not in ("net", ""):
        raise FrameError("value", f"liquidation posSide={pos_side!r} is not long, short or net")
    if side == "sell":
        return "long"
    if side == "buy":
        return "short"
    raise FrameError("value", f"liquidation side={side!r} is neither buy nor sell")


def _nonneg(value: float | None) -> float | None:
    """A size or amount: None unless finite and >= 0."""
    if value is None or not math.isfinite(value) or value < 0:
        return None
    return value


# --------------------------------------------------------------------------- the adapter


class OkxAdapter:
    """OKX public derivatives adapter (one instance per process).

    Holds instrument metadata and, per instrument, the last mark price, index
    price (per index id), option open interest and option 24 h volume it saw;
    they value open interest where OKX omits ``oiUsd`` and fill option tickers.

    Args:
        option_families: instrument families whose OPTION instruments
            ``rest_instruments()`` fetches and an all-venue ``options`` stream subscribes.
    """

    name = EXCHANGE
    markets: tuple[str, ...] = ("public",)
    LIQUIDATION_FEED: ClassVar[str] = "sampled"
    """Whether the liquidation stream carries every liquidation (exchanges.md):
    at most one order per contract per second, "not the total"."""
    CADENCE_S: ClassVar[dict[str, float | None]] = {
        "funding": 90.0, "mark": 10.0, "index": None, "ticker": None, "book": None, "open_interest": None,
        "liquidations": None, "options": None,
    }
    """Longest documented gap between a channel's pushes (OKX docs): funding-rate every 30-90 s; mark-price
    200 ms on change, else every 10 s. tickers and open-interest push only on a change, liquidation-orders
    only when one happens, opt-summary's cadence is not documented: no cadence (never stale). index-tickers
    pushes at least once a minute but yields no event, so liveness cannot see it: no cadence either."""
    ARGS_LIMIT_BYTES = 64 * 1024 - 1024
    """Subscribe args JSON per request, under OKX's 64 KB limit with room for the envelope."""

    REST_ENDPOINTS = (
        "instruments",
        "funding_rate",
        "funding_rate_history",
        "open_interest",
        "open_interest_history",
        "mark_price",
        "index_tickers",
        "tickers",
        "liquidation_orders",
        "opt_summary",
    )

    def __init__(self, option_families: Sequence[str] = ("BTC-USD", "ETH-USD")) -> None:
        self.meta = InstrumentTable(EXCHANGE)
        self.stats = AdapterStats()
        self.option_families = tuple(option_families)
        self.last_channel: str | None = None
        """Channel of the last data frame parsed (``liquidations``, ``funding``, ``mark``, ``ticker``, ...)."""
        self.last_stream_key: str | None = None
        """``stream_key`` form of the last data frame's ``arg`` (``index-tickers:BTC-USDT``), else None."""
        self.control_events: Counter[str] = Counter()
        """Control frames by ``event`` (``subscribe``, ``error``, ``notice``, ``pong``...)."""
        self.last_error: str | None = None
        """``code msg`` of the last ``{"event":"error"}`` frame (a rejected subscription)."""
        self._req_id = 0
        self._family: dict[str, str] = {}  # raw symbol -> instrument family (metadata)
        self._marks: dict[str, float] = {}
        self._index: dict[str, float] = {}
        self._opt_oi: dict[str, float] = {}
        self._opt_vol: dict[str, float] = {}
        self._handlers: dict[str, Callable[..., None]] = {
            "liquidation-orders": self._liquidation_row,
            "funding-rate": self._funding_row,
            "mark-price": self._mark_row,
            "index-tickers": self._index_row,
            "tickers": self._ticker_row,
            "open-interest": self._oi_row,
            "opt-summary": self._option_row,
        }

    # ----------------------------------------------------------------- streams

    def market_of(self, raw_symbol: str) -> str:
        """Every public channel is on ``/ws/v5/public``."""
        return "public"

    def _inst_type(self, raw_symbol: str) -> str:
        inst = self.instrument(raw_symbol)
        kind = inst.kind if inst is not None else None
        if kind is None:
            m = _NAME_RE.match(raw_symbol)
            kind = None if m is None else ("perpetual" if m[3] == "SWAP" else "option" if m[4] else "future")
        for inst_type, name in _INST_TYPES.items():
            if name == kind:
                return inst_type
        raise ValueError(f"OKX: cannot tell the instType of {raw_symbol!r}")

    def index_id(self, raw_symbol: str) -> str | None:
        """The index an instrument is priced against (``BTC-USDT-SWAP`` → ``BTC-USDT``); an index id is itself."""
        family = self._family.get(raw_symbol) or family_of_name(raw_symbol)
        if family is None and raw_symbol.count("-") == 1:
            family = raw_symbol
        return index_of_family(family) if family else None

    def _args(self, stream: Stream) -> list[dict[str, str]]:
        raw = stream.raw_symbol
        match stream.channel:
            case "liquidations":
                if raw is None:
                    return [{"channel": "liquidation-orders", "instType": t} for t in ("SWAP", "FUTURES")]
                inst_type = self._inst_type(raw)
                if inst_type == "OPTION":
                    raise ValueError(f"OKX option liquidations carry no size or price; not mapped ({raw!r})")
                return [{"channel": "liquidation-orders", "instType": inst_type}]
            case "options":
                families = [raw] if raw is not None else list(self.option_families)
                if not families:
                    raise ValueError("OKX opt-summary is per instrument family: name one")
                out = []
                for name in families:
                    family = name if name.count("-") == 1 else (self._family.get(name) or family_of_name(name))
                    if family is None:
                        raise ValueError(f"OKX: {name!r} names no instrument family")
                    out.append({"channel": "opt-summary", "instFamily": family})
                return out
            case "index":
                if raw is None:
                    raise ValueError("OKX index-tickers needs an instrument or index id")
                index = self.index_id(raw)
                if index is None:
                    raise ValueError(f"OKX: no index for {raw!r}")
                return [{"channel": "index-tickers", "instId": index}]
        channel = {"funding": "funding-rate", "mark": "mark-price", "ticker": "tickers", "book": "tickers",
                   "open_interest": "open-interest"}.get(stream.channel)
        if channel is None:
            raise ValueError(f"OKX has no {stream.channel!r} stream here")
        if raw is None:
            raise ValueError(f"OKX {channel} is per instrument: name an instId")
        return [{"channel": channel, "instId": raw}]

    def stream_key(self, stream: Stream) -> str:
        """``channel:instId|instType|instFamily`` of the stream's subscription (``liquidation-orders`` venue-wide)."""
        if stream.channel == "liquidations" and stream.raw_symbol is None:
            return "liquidation-orders"
        args = self._args(stream)
        first = args[0]
        value = first.get("instId") or first.get("instType") or first.get("instFamily") or ""
        return f"{first['channel']}:{value}"

    def subscribe(self, streams: Sequence[Stream]) -> list[str]:
        """``subscribe`` request frames: args de-duplicated, each request's args under 64 KB, fresh string ids."""
        return self._requests("subscribe", streams)

    def unsubscribe(self, streams: Sequence[Stream]) -> list[str]:
        """``unsubscribe`` request frames (same chunking)."""
        return self._requests("unsubscribe", streams)

    def _requests(self, op: str, streams: Sequence[Stream]) -> list[str]:
        unique: dict[bytes, dict[str, str]] = {}
        for stream in streams:
            for arg in self._args(stream):
                unique.setdefault(msgspec.json.encode(arg), arg)
        frames: list[str] = []
        chunk: list[dict[str, str]] = []
        size = 2
        for encoded, arg in unique.items():
            if chunk and size + len(encoded) + 1 > self.ARGS_LIMIT_BYTES:
                frames.append(self._request(op, chunk))
                chunk, size = [], 2
            chunk.append(arg)
            size += len(encoded) + 1
        if chunk:
            frames.append(self._request(op, chunk))
        return frames

    def _request(self, op: str, args: list[dict[str, str]]) -> str:
        self._req_id += 1
        return msgspec.json.encode({"id": str(self._req_id), "op": op, "args": args}).decode()

    def heartbeat(self) -> HeartbeatSpec:
        """Text ``ping`` every 20 s (OKX: after N < 30 s without a message), answered by text ``pong``.

        OKX documents only the text ping, so protocol pings are off; the
        transport's staleness watchdog covers a silent socket. No documented
        per-connection stream cap or lifetime; 64 KB of args per request.
        """
        return HeartbeatSpec(
            ping_payload="ping",
            ping_interval_s=20.0,
            ws_ping_interval_s=None,
            ws_ping_timeout_s=None,
            max_lifetime_s=None,
            max_streams_per_connection=1000,
            max_messages_per_s=None,
        )

    # ----------------------------------------------------------------- instruments

    def load_instruments(self, body: str | bytes, market: str = "") -> int:
        """Load a raw ``GET /api/v5/public/instruments`` body (SWAP, FUTURES or OPTION); returns rows loaded.

        Every row names its own ``instType``, so ``market`` is not needed. A row
        that cannot be read is skipped and counted (``errors["instrument_row"]``).

        Raises:
            FrameError: not JSON, an error body, or ``data`` not an array.
        """
        data = self._rest_data("instruments", body)
        rows: list[Any] = self._rows("instruments", data) if data is not None else []
        count = 0
        for row in rows:
            try:
                got = _instrument_from_row(row)
            except FrameError:
                self.stats.errors["instrument_row"] += 1
                continue
            if got is None:
                continue
            inst, family = got
            self.meta.add(inst)
            self._family[inst.raw_symbol] = family
            count += 1
        return count

    def instruments(self) -> list[Instrument]:
        """Instruments loaded so far."""
        return self.meta.all()

    def instrument(self, raw_symbol: str) -> Instrument | None:
        """Metadata, else what the naming rule tells (never a contract size then)."""
        inst = self.meta.get(raw_symbol)
        if inst is not None:
            return inst
        return instrument_from_name(raw_symbol)

    def _symbol(self, raw_symbol: str) -> tuple[str | None, Instrument | None]:
        inst = self.instrument(raw_symbol)
        if inst is None:
            self.stats.unmapped["unknown_symbol"] += 1
            return None, None
        return inst.symbol, inst

    # ----------------------------------------------------------------- frames

    @guard_utf8
    def parse(self, frame: str | bytes, recv_ts: int) -> list[Event]:
        """Events in one WebSocket frame (text exactly as received).

        Args:
            frame: the frame.
            recv_ts: local receive time, ms since epoch.

        Returns:
            Events in frame order; [] for ``pong``, ``{"event": …}`` frames and channels we do not map.

        Raises:
            FrameError: the frame is not JSON, or a known channel's data has wrong types or values.
        """
        self.stats.frames += 1
        self.last_channel = None
        self.last_stream_key = None
        try:
            events = self._parse(frame, recv_ts)
        except FrameError as exc:
            self.stats.errors[exc.reason] += 1
            raise
        self.stats.events += len(events)
        return events

    def _parse(self, frame: str | bytes, recv_ts: int) -> list[Event]:
        if frame in ("pong", b"pong"):
            self.stats.control += 1
            self.control_events["pong"] += 1
            return []
        try:
            env = _ENVELOPE_DEC.decode(frame)
        except msgspec.ValidationError as exc:
            raise FrameError("schema", f"envelope: {exc}") from None
        except msgspec.DecodeError as exc:
            raise FrameError("json", str(exc)) from None
        if env.event is not None:
            self.stats.control += 1
            self.control_events[env.event if env.event in CONTROL_EVENTS else "other"] += 1
            if env.event == "error":
                self.last_error = f"{env.code} {env.msg}"
            return []
        arg = env.arg
        if arg is None or arg.channel not in CHANNELS:
            self.stats.ignored += 1  # a channel we do not map (books, trades...) or an unknown message
            return []
        channel = arg.channel
        if not env.data:
            raise FrameError("schema", f"{channel} push without data")
        self.last_channel = CHANNELS[channel]
        self.last_stream_key = f"{channel}:{arg.instId or arg.instType or arg.instFamily}"
        rows = self._rows(channel, env.data)
        out: list[Event] = []
        self._emit(channel, rows, recv_ts, out)
        return out

    def _rows(self, channel: str, data: msgspec.Raw | bytes | str) -> list[Any]:
        """Typed rows of a ``data`` array; a bad row is counted (``errors["element"]``) and skipped."""
        try:
            rows: list[Any] = _LIST_DECODERS[channel].decode(data)
            return rows
        except msgspec.ValidationError:
            pass
        except msgspec.DecodeError as exc:
            raise FrameError("json", f"{channel} data: {exc}") from None
        try:
            raws = _RAW_LIST_DEC.decode(data)
        except msgspec.DecodeError as exc:
            raise FrameError("schema", f"{channel} data is not an array: {exc}") from None
        good: list[Any] = []
        for raw in raws:
            try:
                good.append(_ROW_DECODERS[channel].decode(raw))
            except msgspec.DecodeError:
                self.stats.errors["element"] += 1
        if raws and not good:
            raise FrameError("schema", f"{channel}: no readable row in data")
        return good

    def _emit(self, channel: str, rows: list[Any], recv_ts: int, out: list[Event]) -> None:
        """Rows → events; a row with a bad value is counted and skipped unless it is the only row."""
        handler = self._handlers[channel]
        bad: FrameError | None = None
        for row in rows:
            kept = len(out)
            try:
                handler(row, recv_ts, out)
            except FrameError as exc:
                del out[kept:]  # a row yields all of its events or none
                if len(rows) == 1:
                    raise
                self.stats.errors["element"] += 1
                bad = exc
        if bad is not None and not out and rows:
            raise bad

    # ----------------------------------------------------------------- channels

    def _liquidation_row(self, row: OkxLiquidationRow, recv_ts: int, out: list[Event]) -> None:
        if row.instType not in ("SWAP", "FUTURES", ""):
            # MARGIN rows are spot-margin (base-currency sizes), OPTION rows carry no size or price.
            self.stats.ignored += 1
            return
        if not row.instId:
            raise FrameError("schema", "liquidation row without instId")
        symbol, inst = self._symbol(row.instId)
        for detail in row.details:
            side = _liquidation_side(detail.posSide, detail.side)
            price = positive(num(detail.bkPx, "bkPx"))
            contracts = _nonneg(num(detail.sz, "sz"))
            qty: float | None = None
            value_usd: float | None = None
            size = inst.contract_size if inst is not None else None
            if size is None or contracts is None:
                self.stats.unmapped["contract_size"] += 1
            elif inst is not None and inst.inverse:
                value_usd = finite(contracts * size)
                qty = finite(value_usd / price) if price and value_usd is not None else None
            elif inst is not None:
                qty = finite(contracts * size)
                if inst.quote not in STABLECOINS:
                    self.stats.unmapped["quote_not_usd"] += 1
                elif price is not None and qty is not None:
                    value_usd = finite(qty * price)
            out.append(
                Liquidation(
                    exchange=EXCHANGE,
                    symbol=symbol,
                    raw_symbol=row.instId,
                    ts=ms(detail.ts, "details.ts") or recv_ts,
                    recv_ts=recv_ts,
                    side=side,
                    price=price,
                    qty=qty,
                    value_usd=value_usd,
                )
            )

    def _funding_row(self, row: OkxFundingRateRow, recv_ts: int, out: list[Event]) -> None:
        rate = num(row.fundingRate, "fundingRate")
        if rate is None:
            self.stats.ignored += 1
            return
        funding_ts = ms(row.fundingTime, "fundingTime") or None
        next_ts = ms(row.nextFundingTime, "nextFundingTime") or None
        interval = (next_ts - funding_ts) / _MS_PER_H if funding_ts and next_ts and next_ts > funding_ts else None
        symbol, _inst = self._symbol(row.instId)
        out.append(
            self._funding(row.instId, symbol, ms(row.ts, "ts") or recv_ts, recv_ts, rate, interval,
                          num(row.nextFundingRate, "nextFundingRate"), funding_ts)
        )

    def _funding(
        self,
        raw: str,
        symbol: str | None,
        ts: int,
        recv_ts: int,
        rate: float,
        interval: float | None,
        predicted: float | None,
        next_ts: int | None,
    ) -> Funding:
        if interval is None:
            self.stats.unmapped["funding_interval"] += 1
        rate_8h, annualized = funding_fields(rate, interval)
        return Funding(
            exchange=EXCHANGE,
            symbol=symbol,
            raw_symbol=raw,
            ts=ts,
            recv_ts=recv_ts,
            rate=rate,
            interval_h=interval,
            rate_8h=finite(rate_8h),
            annualized=finite(annualized),
            predicted_rate=predicted,
            next_funding_ts=next_ts,
        )

    def _is_option(self, raw: str, inst_type: str) -> bool:
        if inst_type:
            return inst_type == "OPTION"
        inst = self.instrument(raw)
        return inst is not None and inst.kind == "option"

    def _mark_row(self, row: OkxMarkPriceRow, recv_ts: int, out: list[Event]) -> None:
        if row.instType in ("MARGIN", "SPOT"):
            self.stats.ignored += 1  # spot margin is not tracked
            return
        mark = positive(num(row.markPx, "markPx"))
        if mark is None:
            return
        remember(self._marks, row.instId, mark, self.stats)
        if self._is_option(row.instId, row.instType):
            return  # option marks are in coin: they only value option tickers
        symbol, _inst = self._symbol(row.instId)
        out.append(
            Ticker(exchange=EXCHANGE, symbol=symbol, raw_symbol=row.instId, ts=ms(row.ts, "ts") or recv_ts,
                   recv_ts=recv_ts, mark_price=mark)
        )

    def _index_row(self, row: OkxIndexTickerRow, recv_ts: int, out: list[Event]) -> None:
        """Keep the index (it values coin-priced options); an index is not an instrument: no event."""
        index = positive(num(row.idxPx, "idxPx"))
        if index is not None:
            remember(self._index, row.instId, index, self.stats)

    def _ticker_row(self, row: OkxTickerRow, recv_ts: int, out: list[Event]) -> None:
        if row.instType in ("MARGIN", "SPOT"):
            self.stats.ignored += 1
            return
        if self._is_option(row.instId, row.instType):
            volume = _nonneg(num(row.volCcy24h, "volCcy24h"))
            if volume is not None:
                remember(self._opt_vol, row.instId, volume, self.stats)
            return
        symbol, inst = self._symbol(row.instId)
        last = positive(num(row.last, "last"))
        out.append(
            Ticker(
                exchange=EXCHANGE,
                symbol=symbol,
                raw_symbol=row.instId,
                ts=ms(row.ts, "ts") or recv_ts,
                recv_ts=recv_ts,
                last=last,
                bid=positive(num(row.bidPx, "bidPx")),
                ask=positive(num(row.askPx, "askPx")),
                volume_24h_usd=self._volume_usd(inst, last, _nonneg(num(row.vol24h, "vol24h")),
                                                _nonneg(num(row.volCcy24h, "volCcy24h"))),
            )
        )

    def _volume_usd(
        self, inst: Instrument | None, last: float | None, contracts: float | None, base: float | None
    ) -> float | None:
        """24 h notional in USD: inverse = contracts × face value (exact); linear: null.

        OKX publishes no quote volume for derivatives (``volCcy24h`` is base coin); base × last
        would be an estimate, and DESIGN.md never guesses (docs/decisions.md).
        """
        if inst is None:
            return None
        if inst.inverse:
            if contracts is None or inst.contract_size is None:
                self.stats.unmapped["contract_size"] += 1
                return None
            return finite(contracts * inst.contract_size)
        return None

    def _oi_row(self, row: OkxOpenInterestRow, recv_ts: int, out: list[Event]) -> None:
        symbol, inst = self._symbol(row.instId)
        contracts = _nonneg(num(row.oi, "oi"))
        base, usd = self._oi_amounts(row.instId, inst, contracts, _nonneg(num(row.oiCcy, "oiCcy")),
                                     _nonneg(num(row.oiUsd, "oiUsd")))
        if base is not None and self._is_option(row.instId, row.instType):
            remember(self._opt_oi, row.instId, base, self.stats)
        out.append(
            OpenInterest(exchange=EXCHANGE, symbol=symbol, raw_symbol=row.instId, ts=ms(row.ts, "ts") or recv_ts,
                         recv_ts=recv_ts, oi_contracts=contracts, oi_base=base, oi_usd=usd)
        )

    def _oi_amounts(
        self, raw: str, inst: Instrument | None, contracts: float | None, oi_ccy: float | None, oi_usd: float | None
    ) -> tuple[float | None, float | None]:
        """(oi_base, oi_usd): OKX's ``oiCcy``/``oiUsd`` where given, else computed per DESIGN.md with the last mark."""
        base, usd = oi_ccy, oi_usd
        if (base is not None and usd is not None) or contracts is None:
            return base, usd
        size = inst.contract_size if inst is not None else None
        if inst is None or size is None:
            self.stats.unmapped["contract_size"] += 1
            return base, usd
        mark = self._marks.get(raw)
        if inst.kind == "option":
            return (base if base is not None else finite(contracts * size)), usd
        if inst.inverse:
            usd = usd if usd is not None else finite(contracts * size)
            if base is None and mark and usd is not None:
                base = finite(usd / mark)
            return base, usd
        base = base if base is not None else finite(contracts * size)
        if usd is None and mark is not None and base is not None and inst.quote in STABLECOINS:
            usd = finite(base * mark)
        return base, usd

    def _option_row(self, row: OkxOptSummaryRow, recv_ts: int, out: list[Event]) -> None:
        inst = self.instrument(row.instId)
        named = _NAME_RE.match(row.instId)
        kind: str | None
        if inst is not None and inst.kind == "option" and inst.expiry_ms is not None and inst.strike is not None:
            underlying, expiry_ms, strike, kind = inst.base, inst.expiry_ms, inst.strike, inst.option_kind
        elif named is not None and named[4] is not None and positive(float(named[4])) and yymmdd_to_ms(named[3]):
            underlying, strike, kind = named[1], float(named[4]), named[5]
            expiry_ms = yymmdd_to_ms(named[3]) or 0
        else:
            self.stats.unmapped["unknown_symbol"] += 1
            return
        symbol = inst.symbol if inst is not None else None
        if symbol is None:
            self.stats.unmapped["unknown_symbol"] += 1
        out.append(
            OptionTicker(
                exchange=EXCHANGE,
                symbol=symbol,
                raw_symbol=row.instId,
                ts=ms(row.ts, "ts") or recv_ts,
                recv_ts=recv_ts,
                underlying=underlying,
                expiry=date_from_ms(expiry_ms),
                strike=strike,
                kind="C" if kind == "C" else "P",
                mark_price_usd=self._option_mark_usd(row.instId, inst),
                mark_iv=positive(num(row.markVol, "markVol")),
                bid_iv=positive(num(row.bidVol, "bidVol")),
                ask_iv=positive(num(row.askVol, "askVol")),
                delta=num(row.deltaBS, "deltaBS"),
                gamma=num(row.gammaBS, "gammaBS"),
                vega=num(row.vegaBS, "vegaBS"),
                theta=num(row.thetaBS, "thetaBS"),
                underlying_price=positive(num(row.fwdPx, "fwdPx")),
                open_interest=self._opt_oi.get(row.instId),
                volume_24h=self._opt_vol.get(row.instId),
            )
        )

    def _option_mark_usd(self, raw: str, inst: Instrument | None) -> float | None:
        """Last mark × index for coin-margined options (settled in the base coin), × 1 when settled in USD(T/C)."""
        mark = self._marks.get(raw)
        if mark is None or inst is None or inst.settle is None:
            self.stats.unmapped["option_mark"] += 1
            return None
        if inst.settle in STABLECOINS:
            return mark
        if inst.settle != inst.base:
            self.stats.unmapped["option_mark"] += 1
            return None
        index_id = self.index_id(raw)
        index = self._index.get(index_id) if index_id else None
        if index is None:
            self.stats.unmapped["index_price"] += 1
            return None
        return finite(mark * index)

    # ----------------------------------------------------------------- REST calls

    def rest_cover(self, market: str, symbols: Sequence[str]) -> list[RestCall]:
        """What REST keeps fresh while the socket is down: funding (swaps) and mark price per symbol.

        Without configured symbols: every swap's funding (``instId=ANY``) and mark.
        """
        if not symbols:
            return [self.rest_funding("ANY", ttl_s=5.0), self.rest_mark_price("SWAP", ttl_s=5.0)]
        calls: list[RestCall] = []
        for raw in symbols:
            try:
                inst_type = self._inst_type(raw)
            except ValueError:
                continue
            if inst_type == "SWAP":
                calls.append(self.rest_funding(raw, ttl_s=5.0))
            calls.append(self.rest_mark_price(inst_type, raw_symbol=raw, ttl_s=5.0))
        return calls

    POLL_S: ClassVar[float] = 15.0
    """Period of ``rest_poll`` (option marks, OI and volume move slowly; 4 calls per family)."""

    def rest_poll(self, channels: Sequence[str]) -> list[RestCall]:
        """What the daemon polls every ``POLL_S`` while running, for data no subscribed stream carries.

        With ``options``: per option family that lists options, the option marks, open interest and 24 h volumes
        (``opt-summary`` lacks them) and the family's index, which values coin-priced options in USD.
        """
        if "options" not in channels:
            return []
        listed = {self._family.get(i.raw_symbol) for i in self.instruments() if i.kind == "option"}
        calls: list[RestCall] = []
        for family in (f for f in self.option_families if f in listed):
            calls += [self.rest_index_tickers(index_of_family(family), ttl_s=5.0),
                      self.rest_mark_price("OPTION", inst_family=family, ttl_s=5.0),
                      self.rest_open_interest_family("OPTION", family, ttl_s=5.0),
                      self.rest_tickers("OPTION", family, ttl_s=5.0)]
        return calls

    def rest_instruments(self) -> list[RestCall]:
        """Instruments of SWAP, FUTURES and each option family (20 requests / 2 s per instType)."""
        path = "/api/v5/public/instruments"
        calls = [RestCall("instruments", path, {"instType": t}, market="public") for t in ("SWAP", "FUTURES")]
        calls.extend(
            RestCall("instruments", path, {"instType": "OPTION", "instFamily": family}, market="public")
            for family in self.option_families
        )
        return calls

    def rest_open_interest(self, raw_symbol: str, ttl_s: float = 30.0) -> RestCall:
        """``GET /api/v5/public/open-interest`` of one instrument (20 / 2 s)."""
        params = {"instType": self._inst_type(raw_symbol), "instId": raw_symbol}
        return RestCall("open_interest", "/api/v5/public/open-interest", params, ttl_s=ttl_s, market="public")

    def rest_open_interest_family(self, inst_type: str, inst_family: str, ttl_s: float = 30.0) -> RestCall:
        """``GET /api/v5/public/open-interest`` of a whole family (e.g. every BTC-USD option)."""
        params = {"instType": inst_type, "instFamily": inst_family}
        return RestCall("open_interest", "/api/v5/public/open-interest", params, ttl_s=ttl_s, market="public")

    def rest_open_interest_hist(self, raw_symbol: str, period: str = "1H", limit: int = 100) -> RestCall:
        """``GET /api/v5/rubik/stat/contracts/open-interest-history`` (rows name no instrument).

        The endpoint name carries the instId (``open_interest_history:<instId>``)
        because the positional rows do not. ``period``: 5m/15m/30m/1H/2H/4H/1D…;
        ``limit`` ≤ 100.
        """
        bar = period[:-1] + period[-1].upper() if period[-1:] in ("h", "d", "w") else period
        params = {"instId": raw_symbol, "period": bar, "limit": str(max(1, min(limit, 100)))}
        return RestCall(f"open_interest_history:{raw_symbol}", "/api/v5/rubik/stat/contracts/open-interest-history",
                        params, market="public")

    def rest_funding(self, raw_symbol: str = "ANY", ttl_s: float = 30.0) -> RestCall:
        """``GET /api/v5/public/funding-rate`` of one swap, or ``ANY`` for every swap (10 / 2 s)."""
        return RestCall("funding_rate", "/api/v5/public/funding-rate", {"instId": raw_symbol}, ttl_s=ttl_s,
                        market="public")

    def rest_funding_history(self, raw_symbol: str, limit: int = 100) -> RestCall:
        """``GET /api/v5/public/funding-rate-history`` (last 3 months; newest first)."""
        params = {"instId": raw_symbol, "limit": str(max(1, min(limit, 400)))}
        return RestCall("funding_rate_history", "/api/v5/public/funding-rate-history", params, market="public")

    def rest_mark_price(
        self, inst_type: str, inst_family: str | None = None, raw_symbol: str | None = None, ttl_s: float = 10.0
    ) -> RestCall:
        """``GET /api/v5/public/mark-price`` (e.g. ``OPTION`` + ``BTC-USD`` for option marks)."""
        params = {"instType": inst_type}
        if inst_family:
            params["instFamily"] = inst_family
        if raw_symbol:
            params["instId"] = raw_symbol
        return RestCall("mark_price", "/api/v5/public/mark-price", params, ttl_s=ttl_s, market="public")

    def rest_index_tickers(self, index_id: str | None = None, quote_ccy: str = "USDT", ttl_s: float = 10.0) -> RestCall:
        """``GET /api/v5/market/index-tickers`` of one index, or of every index in a quote currency."""
        params = {"instId": index_id} if index_id else {"quoteCcy": quote_ccy}
        return RestCall("index_tickers", "/api/v5/market/index-tickers", params, ttl_s=ttl_s, market="public")

    def rest_tickers(self, inst_type: str = "SWAP", inst_family: str | None = None, ttl_s: float = 10.0) -> RestCall:
        """``GET /api/v5/market/tickers`` of an instType (and family)."""
        params = {"instType": inst_type}
        if inst_family:
            params["instFamily"] = inst_family
        return RestCall("tickers", "/api/v5/market/tickers", params, ttl_s=ttl_s, market="public")

    def rest_backfill(self, symbols: Sequence[str]) -> list[RestCall]:
        """Recent liquidations over REST, per family of the configured swaps and futures.

        Run at start-up and after each reconnect; the daemon drops what the socket already
        delivered by the liquidation's natural key, so nothing is counted twice.
        """
        calls: list[RestCall] = []
        seen: set[tuple[str, str]] = set()
        for raw in symbols:
            parts = raw.split("-")
            if len(parts) < 3 or parts[-1] in ("C", "P"):
                continue
            inst_type = "SWAP" if parts[-1] == "SWAP" else "FUTURES"
            key = (inst_type, f"{parts[0]}-{parts[1]}")
            if key not in seen:
                seen.add(key)
                calls.append(self.rest_liquidations(*key))
        return calls

    def rest_liquidations(self, inst_type: str, inst_family: str, limit: int = 100) -> RestCall:
        """``GET /api/v5/public/liquidation-orders`` filled orders of one family (recent; 40 / 2 s).

        SWAP/FUTURES need ``instFamily`` (or ``uly``), else OKX answers 50015.
        """
        params = {"instType": inst_type, "instFamily": inst_family, "state": "filled",
                  "limit": str(max(1, min(limit, 100)))}
        return RestCall("liquidation_orders", "/api/v5/public/liquidation-orders", params, market="public")

    def rest_opt_summary(self, inst_family: str, ttl_s: float = 10.0) -> RestCall:
        """``GET /api/v5/public/opt-summary`` of one option family (20 / 2 s)."""
        return RestCall("opt_summary", "/api/v5/public/opt-summary", {"instFamily": inst_family}, ttl_s=ttl_s,
                        market="public")

    def rest_long_short(self, ccy: str, period: str = "5m", ttl_s: float | None = None) -> RestCall:
        """``GET /api/v5/rubik/stat/contracts/long-short-account-ratio`` of one currency (futures and swaps;
        5 requests / 2 s). Rows are ``[ts, ratio]``, newest first."""
        return RestCall("long_short_ratio", "/api/v5/rubik/stat/contracts/long-short-account-ratio",
                        {"ccy": ccy.upper(), "period": period}, ttl_s=ttl_s, market="public")

    def parse_long_short(
        self, body: str | bytes, params: Mapping[str, str] | None = None
    ) -> list[tuple[str, int, float, float | None, float | None]]:
        """Rows ``(ccy, ts, ratio, None, None)`` of a long/short account-ratio body (the rows name no
        instrument: the currency is ``params["ccy"]``; OKX gives no long/short shares).

        Raises:
            FrameError: not JSON, wrong types, or an OKX error code.
        """
        ccy = (params or {}).get("ccy", "")
        data = self._rest_data("long-short-account-ratio", body)
        if data is None:
            return []
        try:
            rows = _POSITIONAL_DEC.decode(data)
        except msgspec.DecodeError as exc:
            raise FrameError("schema", f"long-short-account-ratio: {exc}") from None
        out: list[tuple[str, int, float, float | None, float | None]] = []
        for row in rows:
            if len(row) < 2:
                raise FrameError("schema", f"long-short-account-ratio row {row!r} has no ratio")
            at = ms(row[0], "ts")
            ratio = num(row[1], "ratio")
            if at is None or ratio is None:
                continue
            out.append((ccy, at, ratio, None, None))
        return out

    # ----------------------------------------------------------------- one-shot snapshots

    SNAPSHOT_TTL_S: ClassVar[dict[str, float]] = {
        "funding_rate": 30.0, "mark_price": 30.0, "index_tickers": 30.0, "tickers": 30.0, "opt_summary": 30.0,
        "open_interest": 60.0, "long_short_ratio": 60.0, "funding_rate_history": 300.0,
        "open_interest_history": 300.0, "liquidation_orders": 30.0,
    }
    LIQUIDATION_PAGES: ClassVar[int] = 10
    """Most ``liquidation-orders`` pages a snapshot reads per family (100 orders each)."""

    def _of_bases(self, bases: Sequence[str], kinds: Sequence[str]) -> list[Instrument]:
        wanted = {b.upper() for b in bases}
        return sorted((i for i in self.meta.all() if i.base in wanted and i.kind in kinds),
                      key=lambda i: (i.base, i.inverse, i.kind != "perpetual", i.expiry_ms or 0, i.raw_symbol))

    def _family_of(self, raw: str) -> str | None:
        return self._family.get(raw) or family_of_name(raw)

    @staticmethod
    def _ttl(call: RestCall, ttl_s: float) -> RestCall:
        return RestCall(call.endpoint, call.path, call.params, call.weight, ttl_s, call.market)

    def snapshot_calls(self, command: str, bases: Sequence[str], *, now_ms: int | None = None) -> list[RestCall]:
        """REST calls of a one-shot ``command`` for the loaded instruments of ``bases`` (pure; load instruments first).

        In parse order: index and mark prices before what they value (open interest, option marks); option
        summaries last. ``liquidations``: the first page of filled liquidation orders per SWAP/FUTURES
        family (follow with ``snapshot_next``).
        """
        ttl = self.SNAPSHOT_TTL_S
        calls: list[RestCall] = []
        if command == "funding":
            swaps = self._of_bases(bases, ("perpetual",))
            indexes = sorted({i for s in swaps if (i := self.index_id(s.raw_symbol))})
            calls += [self.rest_index_tickers(i, ttl_s=ttl["index_tickers"]) for i in indexes]
            for inst in swaps:
                raw = inst.raw_symbol
                calls += [self.rest_mark_price("SWAP", raw_symbol=raw, ttl_s=ttl["mark_price"]),
                          self.rest_funding(raw, ttl_s=ttl["funding_rate"]),
                          self.rest_open_interest(raw, ttl_s=ttl["open_interest"]),
                          self._ttl(self.rest_funding_history(raw, limit=30), ttl["funding_rate_history"])]
            families = sorted({f for s in swaps if (f := self._family_of(s.raw_symbol))})
            calls += [self.rest_tickers("SWAP", f, ttl_s=ttl["tickers"]) for f in families]
        elif command == "oi":
            insts = self._of_bases(bases, ("perpetual", "future"))
            for inst in insts:
                kind = "SWAP" if inst.kind == "perpetual" else "FUTURES"
                calls.append(self.rest_mark_price(kind, raw_symbol=inst.raw_symbol, ttl_s=ttl["mark_price"]))
            for inst in insts:
                calls.append(self.rest_open_interest(inst.raw_symbol, ttl_s=ttl["open_interest"]))
                calls.append(self._ttl(self.rest_open_interest_hist(inst.raw_symbol, period="4H", limit=43),
                                       ttl["open_interest_history"]))
            calls += [self.rest_long_short(b, ttl_s=ttl["long_short_ratio"])
                      for b in sorted({i.base for i in insts})]
        elif command == "liquidations":
            seen: set[tuple[str, str]] = set()
            for inst in self._of_bases(bases, ("perpetual", "future")):
                family = self._family_of(inst.raw_symbol)
                key = ("SWAP" if inst.kind == "perpetual" else "FUTURES", family or "")
                if family and key not in seen:
                    seen.add(key)
                    calls.append(self._ttl(self.rest_liquidations(*key), ttl["liquidation_orders"]))
        elif command == "options":
            families = sorted({f for i in self._of_bases(bases, ("option",)) if (f := self._family_of(i.raw_symbol))})
            for family in families:
                calls += [self.rest_index_tickers(index_of_family(family), ttl_s=ttl["index_tickers"]),
                          self.rest_mark_price("OPTION", inst_family=family, ttl_s=ttl["mark_price"]),
                          self.rest_open_interest_family("OPTION", family, ttl_s=ttl["open_interest"]),
                          self.rest_tickers("OPTION", family, ttl_s=ttl["tickers"])]
            calls += [self.rest_opt_summary(f, ttl_s=ttl["opt_summary"]) for f in families]
        elif command == "basis":
            insts = self._of_bases(bases, ("perpetual", "future"))
            indexes = sorted({i for s in insts if (i := self.index_id(s.raw_symbol))})
            calls += [self.rest_index_tickers(i, ttl_s=ttl["index_tickers"]) for i in indexes]
            for inst in insts:
                kind = "SWAP" if inst.kind == "perpetual" else "FUTURES"
                calls.append(self.rest_mark_price(kind, raw_symbol=inst.raw_symbol, ttl_s=ttl["mark_price"]))
        return calls

    def snapshot_next(self, call: RestCall, body: str | bytes, since_ms: int, pages: int) -> RestCall | None:
        """The next page of a paged snapshot call, else None (pure).

        ``liquidation_orders``: older orders (``after`` = the oldest ``ts`` of this page) while the page
        had orders, the oldest is still after ``since_ms`` and fewer than ``LIQUIDATION_PAGES`` were read.
        """
        if call.endpoint != "liquidation_orders" or pages >= self.LIQUIDATION_PAGES:
            return None
        data = self._rest_data("liquidation-orders", body)
        rows = self._rows("liquidation-orders", data) if data is not None else []
        times = [t for row in rows for d in row.details if (t := ms(d.ts, "ts"))]
        if not times or min(times) <= since_ms:
            return None
        return RestCall(call.endpoint, call.path, {**call.params, "after": str(min(times))}, call.weight,
                        call.ttl_s, call.market)

    def snapshot_enrich(self, events: Sequence[Event]) -> list[Event]:
        """Snapshot events with the prices other bodies of the same snapshot carried (pure).

        OKX publishes mark (``mark-price``), index (``index-tickers``) and funding (``funding-rate``) in
        separate bodies: mark tickers get their index, funding events their mark and index.
        """
        out: list[Event] = []
        for ev in events:
            if isinstance(ev, Ticker) and ev.mark_price is not None and ev.index_price is None:
                index = self._index.get(self.index_id(ev.raw_symbol) or "")
                if index is not None:
                    ev = msgspec.structs.replace(ev, index_price=index)
            elif isinstance(ev, Funding) and ev.next_funding_ts is not None and ev.next_funding_ts > ev.ts:
                # current funding (a history row's next_funding_ts is its own ts)
                mark = ev.mark_price if ev.mark_price is not None else self._marks.get(ev.raw_symbol)
                index = ev.index_price if ev.index_price is not None else self._index.get(
                    self.index_id(ev.raw_symbol) or "")
                ev = msgspec.structs.replace(ev, mark_price=mark, index_price=index)
            out.append(ev)
        return out

    # ----------------------------------------------------------------- REST bodies

    def _rest_data(self, channel: str, body: str | bytes) -> msgspec.Raw | None:
        """The raw ``data`` array of a REST body (None when empty); FrameError on an error code."""
        try:
            env = _REST_DEC.decode(body)
        except msgspec.ValidationError as exc:
            raise FrameError("schema", f"{channel}: {exc}") from None
        except msgspec.DecodeError as exc:
            raise FrameError("json", f"{channel}: {exc}") from None
        if env.code is None:
            raise FrameError("schema", f"{channel}: body has no code")
        code = str(env.code)
        if code != "0":
            reason = "rate_limited" if code in RATE_LIMIT_CODES else "rejected"
            raise FrameError(reason, f"{channel}: OKX error {code}: {env.msg}")
        return env.data or None

    @guard_utf8
    def parse_rest(
        self, endpoint: str, body: str | bytes, recv_ts: int, params: Mapping[str, str] | None = None
    ) -> list[Event]:
        """Events in a REST body. ``instruments`` loads metadata and yields none.

        Endpoints: ``instruments``, ``funding_rate``, ``funding_rate_history``,
        ``open_interest``, ``open_interest_history``, ``mark_price``,
        ``index_tickers``, ``tickers``, ``liquidation_orders``, ``opt_summary``.
        Open-interest history rows name no instrument: it comes from the request's
        ``params["instId"]``, or from the endpoint name ``open_interest_history:<instId>``
        that ``rest_open_interest_hist`` issues.

        Raises:
            FrameError: not JSON, wrong types, or an OKX error code (``rate_limited`` for 50011/50013,
                else ``rejected``; the detail names the code and message).
            ValueError: an endpoint name this adapter never issues.
        """
        if endpoint == "instruments" or endpoint.startswith("instruments_"):
            self.load_instruments(body)
            return []
        if endpoint.startswith("open_interest_history"):
            _, _, raw = endpoint.partition(":")
            raw = raw or (params or {}).get("instId", "")
            if not raw:
                raise ValueError("OKX open-interest history rows name no instrument: use 'open_interest_history:<id>'")
            data = self._rest_data("open-interest-history", body)
            return self._rest_oi_hist(raw, self._rows("open-interest-history", data) if data else [], recv_ts)
        channel = {
            "funding_rate": "funding-rate",
            "mark_price": "mark-price",
            "index_tickers": "index-tickers",
            "tickers": "tickers",
            "open_interest": "open-interest",
            "liquidation_orders": "liquidation-orders",
            "opt_summary": "opt-summary",
            "funding_rate_history": "funding-rate-history",
        }.get(endpoint)
        if channel is None:
            raise ValueError(f"unknown OKX REST endpoint {endpoint!r}")
        data = self._rest_data(channel, body)
        rows = self._rows(channel, data) if data is not None else []
        out: list[Event] = []
        if channel == "funding-rate-history":
            self._rest_funding_hist(rows, recv_ts, out)
        elif rows:
            self._emit(channel, rows, recv_ts, out)
        self.stats.events += len(out)
        return out

    def _rest_funding_hist(self, rows: list[OkxFundingHistoryRow], recv_ts: int, out: list[Event]) -> None:
        """One funding event per row: the rate charged at ``fundingTime`` (interval not stated: null)."""
        for row in rows:
            at = ms(row.fundingTime, "fundingTime") or None
            rate = num(row.realizedRate, "realizedRate")
            if rate is None:
                rate = num(row.fundingRate, "fundingRate")
            if rate is None or at is None:
                self.stats.ignored += 1
                continue
            symbol, _inst = self._symbol(row.instId)
            out.append(self._funding(row.instId, symbol, at, recv_ts, rate, None, None, at))

    def _rest_oi_hist(self, raw: str, rows: list[list[Num]], recv_ts: int) -> list[Event]:
        """Positional rows ``[ts, oi, oiCcy, oiUsd]`` (contracts, coin, USD) of one instrument."""
        symbol, _inst = self._symbol(raw)
        out: list[Event] = []
        for row in rows:
            try:
                if len(row) < 2:
                    raise FrameError("schema", f"open interest history row {row!r} has no oi")
                at = ms(row[0], "ts")
                values = [_nonneg(num(v, "oi")) for v in row[1:4]]
            except FrameError:
                self.stats.errors["element"] += 1
                continue
            values += [None] * (3 - len(values))
            out.append(
                OpenInterest(exchange=EXCHANGE, symbol=symbol, raw_symbol=raw, ts=at or recv_ts, recv_ts=recv_ts,
                             oi_contracts=values[0], oi_base=values[1], oi_usd=values[2])
            )
        if rows and not out:
            raise FrameError("schema", "open interest history: no readable row")
        self.stats.events += len(out)
        return out


def unified(raw_symbol: str) -> str | None:
    """Unified symbol by OKX's naming rule alone (no metadata)."""
    inst = instrument_from_name(raw_symbol)
    return inst.symbol if inst else None


__all__ = [
    "CHANNELS",
    "EXCHANGE",
    "OkxAdapter",
    "family_of_name",
    "index_of_family",
    "instrument_from_name",
    "unified",
]
