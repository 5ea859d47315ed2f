"""Deribit API v2 (perpetuals, dated futures, options; inverse and USDC-linear): wire Structs and parsers.

Sans-I/O (STYLE.md A1): subscribe frames out, frames in, events out. Wire facts
come from Deribit's API v2 documentation (public/subscribe, public/set_heartbeat,
public/ticker, public/get_instruments, public/get_book_summary_by_currency,
public/get_last_trades_by_currency, public/get_funding_rate_history),
summarized with sources in ``shared/exchanges.md`` §4 and §6:

* JSON-RPC 2.0 over one WebSocket (``wss://www.deribit.com/ws/api/v2``).
  Requests ``{"jsonrpc":"2.0","id":N,"method":…,"params":{…}}``; responses
  ``{"id":N,"result":…}`` or ``{"id":N,"error":{"code","message"}}``;
  notifications ``{"method":"subscription","params":{"channel","data"}}``.
* Keep-alive: the client calls ``public/set_heartbeat`` (interval ≥ 10 s); the
  server then sends ``{"method":"heartbeat","params":{"type":"heartbeat"|"test_request"}}``
  and closes the connection unless a ``test_request`` is answered by a
  ``public/test`` call. ``on_connect_frames()`` and ``replies(frame)`` give the frames.
* Numbers are JSON numbers; times int ms. ``open_interest`` and trade ``amount``
  are USD for perpetuals and inverse futures, coin for options and USDC-linear
  instruments. Option prices of coin-settled options are in the base coin.
  IVs are percent (55.3 = 55.3 %).

Decisions (reported to the lead; the test file pins them):

* Funding: Deribit funds continuously; ``rate`` = ``funding_8h``, ``interval_h`` 8,
  ``next_funding_ts`` null, ``predicted_rate`` null (DESIGN.md).
* Options stream on ``ticker.<option>.100ms`` (IVs and greeks are only there);
  option tickers yield ``option_ticker`` only (their prices are in coin, not in
  the quote currency), never a ``ticker``.
* ``mark_price_usd`` = option mark (coin) × the row's ``index_price`` for
  coin-settled options, = mark for USDC-settled ones. Book summaries carry no
  ``index_price``; there ``estimated_delivery_price`` (Deribit: the index until
  the settlement window) is used, else null.
* ``oi_contracts`` = ``open_interest`` as Deribit reports it (its own amount
  unit: USD for inverse, coin for linear/options), not divided by a contract size.
* Liquidations: ``trades.future.<CURRENCY>.100ms`` per currency (a raw symbol's
  currency: ``BTC`` for ``BTC-PERPETUAL``, ``USDC`` for ``BTC_USDC-PERPETUAL``);
  every liquidation of that currency is emitted, not only the named symbol's.
  ``MT`` (both sides liquidated) gives two events, one per side, each for the
  full ``amount``; the taker's position first (it executed the trade).
* Inverse vs linear is read from Deribit's naming rule (``BASE_USDC-…`` linear,
  ``BASE-…`` inverse) when no metadata is loaded: the rule is documented and
  unambiguous, and sizes in USD need no contract size.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
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
    positive,
)
from streamer.exchanges.metadata import InstrumentTable
from streamer.model import (
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

EXCHANGE = "deribit"

# --------------------------------------------------------------------------- WebSocket wire messages


class DrError(msgspec.Struct, frozen=True, gc=False):
    """``error`` of a JSON-RPC response."""

    code: int | None = None
    message: str = ""


class DrParams(msgspec.Struct, frozen=True, gc=False):
    """``params`` of a notification: ``subscription`` (channel + data) or ``heartbeat`` (type)."""

    channel: str = ""
    data: msgspec.Raw = msgspec.Raw(b"")
    type: str = ""


class DrEnvelope(msgspec.Struct, frozen=True, gc=False):
    """Any JSON-RPC frame: a response (``id`` + ``result``/``error``) or a notification (``method``)."""

    jsonrpc: str = ""
    id: int | str | None = None
    method: str | None = None
    params: DrParams | None = None
    result: msgspec.Raw = msgspec.Raw(b"")
    error: DrError | None = None


class DrStats(msgspec.Struct, frozen=True, gc=False):
    """``stats`` of a ticker: ``volume`` base coin, ``volume_usd`` USD, ``price_change`` percent."""

    volume: float | None = None
    volume_usd: float | None = None
    price_change: float | None = None
    high: float | None = None
    low: float | None = None


class DrGreeks(msgspec.Struct, frozen=True, gc=False):
    """``greeks`` of an option ticker."""

    delta: float | None = None
    gamma: float | None = None
    vega: float | None = None
    theta: float | None = None
    rho: float | None = None


class DrTicker(msgspec.Struct, frozen=True, gc=False):
    """``ticker.<instrument>.<interval>`` data; also ``public/ticker`` result."""

    instrument_name: str
    timestamp: int | None = None
    state: str = ""
    best_bid_price: float | None = None
    best_ask_price: float | None = None
    last_price: float | None = None
    mark_price: float | None = None
    index_price: float | None = None
    open_interest: float | None = None
    stats: DrStats | None = None
    funding_8h: float | None = None
    current_funding: float | None = None
    mark_iv: float | None = None
    bid_iv: float | None = None
    ask_iv: float | None = None
    underlying_price: float | None = None
    underlying_index: str | float | None = None
    greeks: DrGreeks | None = None
    estimated_delivery_price: float | str | None = None


class DrTrade(msgspec.Struct, frozen=True, gc=False):
    """One ``trades.*`` row; also a ``get_last_trades_by_*`` row. ``direction`` is the TAKER's side."""

    instrument_name: str
    timestamp: int
    price: float
    amount: float
    direction: str
    liquidation: str | None = None
    trade_id: str | int | None = None
    index_price: float | None = None
    mark_price: float | None = None


# --------------------------------------------------------------------------- REST wire messages


class DrInstrumentRow(msgspec.Struct, frozen=True, gc=False):
    """One ``public/get_instruments`` row."""

    instrument_name: str
    kind: str = ""
    instrument_type: str = ""  # linear / reversed
    settlement_period: str = ""  # perpetual / day / week / month
    contract_size: float | None = None
    base_currency: str = ""
    quote_currency: str = ""
    counter_currency: str = ""
    settlement_currency: str = ""
    expiration_timestamp: int | None = None
    strike: float | None = None
    option_type: str = ""  # call / put
    is_active: bool = True


class DrBookSummary(msgspec.Struct, frozen=True, gc=False):
    """One ``public/get_book_summary_by_currency`` row (no greeks, no bid/ask IV)."""

    instrument_name: str
    creation_timestamp: int | None = None
    mark_price: float | None = None
    mark_iv: float | None = None
    bid_price: float | None = None
    ask_price: float | None = None
    last: float | None = None
    open_interest: float | None = None
    volume: float | None = None
    volume_usd: float | None = None
    underlying_price: float | None = None
    estimated_delivery_price: float | str | None = None
    funding_8h: float | None = None
    current_funding: float | None = None


class DrFundingHistoryRow(msgspec.Struct, frozen=True, gc=False):
    """One ``public/get_funding_rate_history`` row (hourly)."""

    timestamp: int
    interest_8h: float | None = None
    interest_1h: float | None = None
    index_price: float | None = None
    prev_index_price: float | None = None


class DrTradesResult(msgspec.Struct, frozen=True, gc=False):
    """``result`` of ``public/get_last_trades_by_currency``."""

    trades: list[DrTrade] = msgspec.field(default_factory=list)
    has_more: bool = False


_ENVELOPE_DEC = msgspec.json.Decoder(DrEnvelope)
_TICKER_DEC = msgspec.json.Decoder(DrTicker)
_TRADES_DEC = msgspec.json.Decoder(list[DrTrade])
_RAW_LIST_DEC = msgspec.json.Decoder(list[msgspec.Raw])
_TRADE_DEC = msgspec.json.Decoder(DrTrade)
_INSTRUMENTS_DEC = msgspec.json.Decoder(list[msgspec.Raw])
_INSTRUMENT_DEC = msgspec.json.Decoder(DrInstrumentRow)
_SUMMARY_DEC = msgspec.json.Decoder(list[DrBookSummary])
_FUNDING_HIST_DEC = msgspec.json.Decoder(list[DrFundingHistoryRow])
_TRADES_RESULT_DEC = msgspec.json.Decoder(DrTradesResult)

RATE_LIMIT_CODES = frozenset({10028})
"""10028 too_many_requests (Deribit then terminates the session)."""

HEARTBEAT_INTERVAL_S = 30
"""``public/set_heartbeat`` interval (Deribit's minimum is 10 s)."""

# --------------------------------------------------------------------------- names and units

_MONTHS = {m: i + 1 for i, m in enumerate(
    ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"))}
_NAME_RE = re.compile(
    r"^([A-Z0-9]+)(?:_([A-Z0-9]+))?-(?:(PERPETUAL)|(\d{1,2})([A-Z]{3})(\d{2}))(?:-(\d+(?:d\d+)?)-([CP]))?$"
)


def expiry_of(day: str, month: str, year: str) -> int | None:
    """08:00 UTC (Deribit's expiry hour) of ``D``/``MMM``/``YY``; None when it is not a date."""
    mm = _MONTHS.get(month)
    if mm is None:
        return None
    return yymmdd_to_ms(f"{year}{mm:02d}{int(day):02d}")


def instrument_from_name(raw_symbol: str) -> Instrument | None:
    """What Deribit's naming rule says about an instrument (no contract size).

    ``BTC-PERPETUAL`` inverse perpetual (settles BTC, quoted USD), ``BTC-27DEC26`` inverse future,
    ``BTC-27DEC26-100000-C`` coin-settled option; ``BTC_USDC-PERPETUAL`` linear (quoted and settled in
    USDC), ``XRP_USDC-30JUN23-0d625-C`` USDC option (``d`` is the decimal point). Options are quoted in
    USD (DESIGN.md). Anything else (spot, combos) gives None.
    """
    m = _NAME_RE.match(raw_symbol)
    if m is None:
        return None
    base, quote_ccy = m[1], m[2]
    linear = quote_ccy is not None
    settle = quote_ccy if linear else base
    quote = quote_ccy if linear else "USD"
    if m[3]:
        if m[7] is not None:
            return None
        return Instrument(exchange=EXCHANGE, raw_symbol=raw_symbol, kind="perpetual", base=base, quote=quote,
                          settle=settle, inverse=not linear)
    expiry = expiry_of(m[4], m[5], m[6])
    if expiry is None:
        return None
    if m[7] is None:
        return Instrument(exchange=EXCHANGE, raw_symbol=raw_symbol, kind="future", base=base, quote=quote,
                          settle=settle, inverse=not linear, expiry_ms=expiry)
    strike = float(m[7].replace("d", "."))
    if strike <= 0:
        return None
    return Instrument(exchange=EXCHANGE, raw_symbol=raw_symbol, kind="option", base=base, quote="USD",
                      settle=settle, expiry_ms=expiry, strike=strike, option_kind="C" if m[8] == "C" else "P")


def unified(raw_symbol: str) -> str | None:
    """Unified symbol by Deribit's naming rule alone (no metadata)."""
    inst = instrument_from_name(raw_symbol)
    return inst.symbol if inst else None


def _instrument_from_row(row: DrInstrumentRow) -> Instrument | None:
    """Instrument of one ``get_instruments`` row; None for spot, combos and unreadable rows."""
    named = instrument_from_name(row.instrument_name)
    if row.kind == "future":
        kind: Literal["perpetual", "future", "option"] = (
            "perpetual" if row.settlement_period == "perpetual" or (named and named.kind == "perpetual") else "future"
        )
    elif row.kind == "option":
        kind = "option"
    else:
        return None
    base = row.base_currency or (named.base if named else "")
    if not base:
        return None
    inverse = kind != "option" and (
        row.instrument_type == "reversed" if row.instrument_type else bool(named and named.inverse)
    )
    settle = row.settlement_currency or (named.settle if named else None)
    if kind == "option" or inverse:
        quote = "USD"
    else:
        quote = row.quote_currency or (named.quote if named else "")
        if not quote:
            return None
    expiry: int | None = None
    strike: float | None = None
    option_kind: Literal["C", "P"] | None = None
    if kind != "perpetual":
        expiry = row.expiration_timestamp if row.expiration_timestamp and row.expiration_timestamp > 0 else None
        if expiry is None and named is not None:
            expiry = named.expiry_ms
        if expiry is None:
            return None
    if kind == "option":
        strike = positive(finite(row.strike)) or (named.strike if named else None)
        letter = {"call": "C", "put": "P"}.get(row.option_type) or (named.option_kind if named else None)
        if strike is None or letter not in ("C", "P"):
            return None
        option_kind = "C" if letter == "C" else "P"
    return Instrument(exchange=EXCHANGE, raw_symbol=row.instrument_name, kind=kind, base=base, quote=quote,
                      settle=settle, inverse=inverse, contract_size=positive(finite(row.contract_size)),
                      expiry_ms=expiry, strike=strike, option_kind=option_kind)


_TAKER_LONG = {"sell": "long", "buy": "short"}  # T: the taker's order closed its position
_MAKER_LONG = {"buy": "long", "sell": "short"}  # M: the maker was on the opposite side


def liquidation_sides(flag: str, direction: str) -> list[Side]:
    """Positions liquidated by one trade (DESIGN.md): ``T`` taker, ``M`` maker, ``MT`` both (taker first)."""
    if direction not in _TAKER_LONG:
        raise FrameError("value", f"trade direction={direction!r} is neither buy nor sell")
    if flag == "T":
        return [_TAKER_LONG[direction]]  # type: ignore[list-item]
    if flag == "M":
        return [_MAKER_LONG[direction]]  # type: ignore[list-item]
    if flag in ("MT", "TM"):
        return [_TAKER_LONG[direction], _MAKER_LONG[direction]]  # type: ignore[list-item]
    raise FrameError("value", f"trade liquidation={flag!r} is not M, T or MT")


def _iv(value: float | None) -> float | None:
    """An IV in percent → fraction; 0 (no quote) or non-finite → None.

    Rounded to 12 decimals so that 51.96 % reads 0.5196, not the binary quotient 0.5196000000000001
    (the wire carries at most a few decimals of a percent; nothing real is lost).
    """
    v = positive(finite(value))
    return round(v / 100.0, 12) if v is not None else None


def _fnum(value: float | str | None) -> float | None:
    """A number field that may come as a string (``estimated_delivery_price`` is ``"expired"`` after expiry)."""
    if isinstance(value, str) or value is None:
        return None
    return finite(value)


def _nonneg(value: float | None) -> float | None:
    if value is None or not math.isfinite(value) or value < 0:
        return None
    return value


def _check_ts(value: int | None, what: str) -> int | None:
    if value is None:
        return None
    if value < 0 or value > 253_402_300_799_999:
        raise FrameError("value", f"{what}={value!r} is not a time in ms")
    return value


def black76_delta(kind: str, forward: float | None, strike: float, iv: float | None, years: float) -> float | None:
    """Black-76 delta (undiscounted) of a call/put on ``forward``; None when an input is missing or degenerate."""
    if forward is None or iv is None or forward <= 0 or strike <= 0 or iv <= 0 or years <= 0:
        return None
    d1 = (math.log(forward / strike) + 0.5 * iv * iv * years) / (iv * math.sqrt(years))
    call = 0.5 * (1.0 + math.erf(d1 / math.sqrt(2.0)))
    return call if kind == "C" else call - 1.0


# --------------------------------------------------------------------------- the adapter


class DeribitAdapter:
    """Deribit public adapter (one instance per process): one endpoint, JSON-RPC."""

    name = EXCHANGE
    markets: tuple[str, ...] = ("public",)
    LIQUIDATION_FEED: ClassVar[str] = "complete"
    """Whether the liquidation stream carries every liquidation (exchanges.md):
    every trade carries the liquidation flag."""
    CADENCE_S: ClassVar[dict[str, float | None]] = {
        "funding": None, "mark": None, "index": None, "ticker": None, "book": None, "open_interest": None,
        "liquidations": None, "options": None,
    }
    """``ticker.*.100ms`` pushes only on a change and Deribit documents no longest gap: no cadence."""
    CHANNELS_PER_REQUEST = 100
    """Channels per ``public/subscribe`` request (keeps each request small; Deribit states no hard cap)."""
    LIQUIDATION_CURRENCIES = ("BTC", "ETH")
    """Currencies of the venue-wide liquidation stream (``raw_symbol`` None)."""

    def __init__(self) -> None:
        self.meta = InstrumentTable(EXCHANGE)
        self.stats = AdapterStats()
        self.last_channel: str | None = None
        self.last_stream_key: str | None = None
        """The Deribit channel of the last data frame (``ticker.BTC-PERPETUAL.100ms``), = ``stream_key``."""
        self.control_events: Counter[str] = Counter()
        self.last_error: str | None = None
        """``code message`` of the last JSON-RPC error response (10028: Deribit ends the session)."""
        self._req_id = 0

    # ----------------------------------------------------------------- streams

    def market_of(self, raw_symbol: str) -> str:
        """Every public channel is on the one endpoint."""
        return "public"

    def _currency(self, raw_symbol: str) -> tuple[str, str]:
        """(trades kind, currency) of an instrument: ``BTC-PERPETUAL`` → (future, BTC); ``X_USDC-…`` → USDC."""
        inst = self.instrument(raw_symbol)
        if inst is None:
            raise ValueError(f"Deribit: cannot tell the currency of {raw_symbol!r}")
        kind = "option" if inst.kind == "option" else "future"
        return kind, (inst.settle or inst.base)

    def _channels(self, stream: Stream) -> list[str]:
        raw = stream.raw_symbol
        if stream.channel == "liquidations":
            if raw is None:
                return [f"trades.future.{c}.100ms" for c in self.LIQUIDATION_CURRENCIES]
            kind, currency = self._currency(raw)
            return [f"trades.{kind}.{currency}.100ms"]
        if stream.channel in ("funding", "ticker", "mark", "open_interest", "book", "options"):
            if raw is None:
                raise ValueError(f"Deribit {stream.channel} is per instrument (ticker.<instrument>): name one")
            return [f"ticker.{raw}.100ms"]
        raise ValueError(f"Deribit has no {stream.channel!r} stream here")

    def stream_key(self, stream: Stream) -> str:
        """The Deribit channel name (the first, for the two-currency venue-wide liquidation stream)."""
        return self._channels(stream)[0]

    def plan_streams(self, market: str, symbols: Sequence[str], channels: Sequence[str],
                     all_market: bool) -> list[Stream]:
        """One ``ticker`` stream per symbol for every ticker-borne channel; liquidations per currency.

        With the ``options`` channel and ``all_market``, every loaded option of each underlying named
        by a listed symbol gets its own ``ticker`` stream (Deribit has no chain-wide ticker channel).
        """
        wanted = set(channels)
        streams: list[Stream] = []
        if "liquidations" in wanted and (all_market or not symbols):
            # venue-wide: one trades channel per currency, each its own stream (liveness per channel)
            streams.extend(Stream("liquidations", f"{cur}-PERPETUAL", "public") for cur in ("BTC", "ETH"))
        listed_options: set[str] = set()
        for raw in symbols:
            inst = self.instrument(raw)
            if inst is not None and inst.kind == "option":
                if "options" in wanted:
                    streams.append(Stream("options", raw, "public"))
                    listed_options.add(raw)
                continue
            if "liquidations" in wanted and not all_market:
                streams.append(Stream("liquidations", raw, "public"))
            if wanted & {"funding", "ticker", "mark", "open_interest", "book", "index"}:
                streams.append(Stream("ticker", raw, "public"))
        if "options" in wanted and all_market:
            # the whole option chain of every underlying named by a listed symbol (BTC-PERPETUAL -> BTC)
            bases = {inst.base for raw in symbols if (inst := self.instrument(raw)) is not None}
            streams.extend(Stream("options", inst.raw_symbol, "public") for inst in self.instruments()
                           if inst.kind == "option" and inst.base in bases and inst.raw_symbol not in listed_options)
        return streams

    def _request(self, method: str, params: dict[str, Any]) -> str:
        self._req_id += 1
        return msgspec.json.encode({"jsonrpc": "2.0", "id": self._req_id, "method": method,
                                    "params": params}).decode()

    def subscribe(self, streams: Sequence[Stream]) -> list[str]:
        """``public/subscribe`` requests, channels de-duplicated, ``CHANNELS_PER_REQUEST`` per request."""
        return self._subscription("public/subscribe", streams)

    def unsubscribe(self, streams: Sequence[Stream]) -> list[str]:
        """``public/unsubscribe`` requests."""
        return self._subscription("public/unsubscribe", streams)

    def _subscription(self, method: str, streams: Sequence[Stream]) -> list[str]:
        channels = list(dict.fromkeys(c for s in streams for c in self._channels(s)))
        n = self.CHANNELS_PER_REQUEST
        return [self._request(method, {"channels": channels[i:i + n]}) for i in range(0, len(channels), n)]

    def heartbeat(self) -> HeartbeatSpec:
        """No text ping: Deribit's keep-alive is ``public/set_heartbeat`` + answering ``test_request``.

        The transport sends ``on_connect_frames()`` after connecting and, for every frame, sends
        what ``replies(frame)`` returns. Protocol pings are left to the server.
        """
        return HeartbeatSpec(ping_payload=None, ping_interval_s=None, ws_ping_interval_s=None,
                             ws_ping_timeout_s=None, max_lifetime_s=None, max_streams_per_connection=500,
                             max_messages_per_s=20.0)

    def on_connect_frames(self) -> list[str]:
        """Frames to send right after connecting (before subscribing): ``public/set_heartbeat``."""
        return [self._request("public/set_heartbeat", {"interval": HEARTBEAT_INTERVAL_S})]

    def replies(self, frame: str | bytes) -> list[str]:
        """Frames to send back for a received frame: a ``public/test`` call for a ``test_request``, else []."""
        if (b"heartbeat" if isinstance(frame, bytes) else "heartbeat") not in frame:
            return []
        try:
            env = _ENVELOPE_DEC.decode(frame)
        except msgspec.DecodeError:
            return []
        if env.method == "heartbeat" and env.params is not None and env.params.type == "test_request":
            return [self._request("public/test", {})]
        return []

    # ----------------------------------------------------------------- instruments

    def load_instruments(self, body: str | bytes, market: str = "") -> int:
        """Load a raw ``public/get_instruments`` body; returns rows loaded (spot and combos skipped).

        A row that cannot be read is counted (``errors["instrument_row"]``) and skipped.

        Raises:
            FrameError: not JSON, an error body, or ``result`` not an array.
        """
        result = self._rest_result("instruments", body)
        try:
            raws = _INSTRUMENTS_DEC.decode(result)
        except msgspec.DecodeError as exc:
            raise FrameError("schema", f"instruments: result is not an array: {exc}") from None
        count = 0
        for raw in raws:
            try:
                inst = _instrument_from_row(_INSTRUMENT_DEC.decode(raw))
            except (msgspec.DecodeError, FrameError):
                self.stats.errors["instrument_row"] += 1
                continue
            if inst is not None:
                self.meta.add(inst)
                count += 1
        return count

    def instruments(self) -> list[Instrument]:
        """Instruments loaded so far."""
        return self.meta.all()

    def instrument(self, raw_symbol: str) -> Instrument | None:
        """Metadata, else what the naming rule tells (never a contract size then)."""
        return self.meta.get(raw_symbol) or instrument_from_name(raw_symbol)

    def _lookup(self, raw_symbol: str) -> tuple[str | None, Instrument | None]:
        inst = self.instrument(raw_symbol)
        if inst is None:
            self.stats.unmapped["unknown_symbol"] += 1
            return None, None
        return inst.symbol, inst

    # ----------------------------------------------------------------- frames

    @guard_utf8
    def parse(self, frame: str | bytes, recv_ts: int) -> list[Event]:
        """Events in one WebSocket frame; [] for responses, errors, heartbeats and unmapped channels.

        Raises:
            FrameError: not JSON, or a known channel's data has wrong types or values.
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
        try:
            env = _ENVELOPE_DEC.decode(frame)
        except msgspec.ValidationError as exc:
            raise FrameError("schema", f"envelope: {exc}") from None
        except msgspec.DecodeError as exc:
            raise FrameError("json", str(exc)) from None
        if env.method is None:
            if env.error is not None:
                self.control_events["error"] += 1
                self.last_error = f"{env.error.code} {env.error.message}"
            elif env.id is not None:
                self.control_events["response"] += 1
            else:
                raise FrameError("schema", "frame is neither a response nor a notification")
            self.stats.control += 1
            return []
        if env.method == "heartbeat":
            self.stats.control += 1
            self.control_events["heartbeat"] += 1
            return []
        if env.method != "subscription" or env.params is None or not env.params.channel:
            self.stats.ignored += 1
            return []
        channel = env.params.channel
        if not env.params.data:
            raise FrameError("schema", f"{channel} notification without data")
        head = channel.split(".", 1)[0]
        out: list[Event] = []
        if head == "ticker":
            try:
                row = _TICKER_DEC.decode(env.params.data)
            except msgspec.DecodeError as exc:
                raise FrameError("schema", f"{channel}: {exc}") from None
            self.last_stream_key = channel
            self._ticker(row, recv_ts, out)
            self.last_channel = "options" if out and isinstance(out[0], OptionTicker) else "ticker"
        elif head == "trades":
            self.last_stream_key = channel
            self.last_channel = "liquidations"
            self._trades(self._trade_rows(channel, env.params.data), recv_ts, out)
        else:
            self.stats.ignored += 1
        return out

    def _trade_rows(self, what: str, data: msgspec.Raw | bytes) -> list[DrTrade]:
        """Typed trade rows; a bad row is counted (``errors["element"]``) and skipped unless all are bad."""
        try:
            return _TRADES_DEC.decode(data)
        except msgspec.ValidationError:
            pass
        except msgspec.DecodeError as exc:
            raise FrameError("json", f"{what}: {exc}") from None
        try:
            raws = _RAW_LIST_DEC.decode(data)
        except msgspec.DecodeError as exc:
            raise FrameError("schema", f"{what}: data is not an array: {exc}") from None
        good: list[DrTrade] = []
        for raw in raws:
            try:
                good.append(_TRADE_DEC.decode(raw))
            except msgspec.DecodeError:
                self.stats.errors["element"] += 1
        if raws and not good:
            raise FrameError("schema", f"{what}: no readable trade")
        return good

    def _trades(self, rows: list[DrTrade], recv_ts: int, out: list[Event]) -> None:
        bad: FrameError | None = None
        for row in rows:
            if row.liquidation is None:
                continue
            try:
                self._liquidation(row, recv_ts, out)
            except FrameError as exc:
                if len(rows) == 1:
                    raise
                self.stats.errors["element"] += 1
                bad = exc
        if bad is not None and not out:
            raise bad

    def _liquidation(self, row: DrTrade, recv_ts: int, out: list[Event]) -> None:
        sides = liquidation_sides(row.liquidation or "", row.direction)
        ts = _check_ts(row.timestamp, "timestamp") or recv_ts
        price = positive(finite(row.price))
        amount = _nonneg(finite(row.amount))
        symbol, inst = self._lookup(row.instrument_name)
        qty: float | None = None
        value: float | None = None
        if inst is not None and amount is not None:
            if inst.kind != "option" and inst.inverse:
                value = amount  # USD
                qty = finite(amount / price) if price else None
            elif inst.kind == "option":
                qty = amount
                if inst.settle == inst.base:  # coin-priced: price (coin) x index
                    index = positive(finite(row.index_price))
                    value = finite(amount * price * index) if price and index else None
                else:
                    value = finite(amount * price) if price else None
            else:
                qty = amount
                value = finite(amount * price) if price else None
        if qty is None:
            self.stats.unmapped["liquidation_size"] += 1
        out.extend(Liquidation(exchange=EXCHANGE, symbol=symbol, raw_symbol=row.instrument_name, ts=ts,
                               recv_ts=recv_ts, side=side, price=price, qty=qty, value_usd=value) for side in sides)

    def _ticker(self, row: DrTicker, recv_ts: int, out: list[Event]) -> None:
        raw = row.instrument_name
        ts = _check_ts(row.timestamp, "timestamp") or recv_ts
        symbol, inst = self._lookup(raw)
        mark = positive(finite(row.mark_price))
        index = positive(finite(row.index_price))
        stats = row.stats or DrStats()
        if inst is not None and inst.kind == "option":
            greeks = row.greeks or DrGreeks()
            out.append(self._option(raw, symbol, inst, ts, recv_ts, mark, index, row.mark_iv, row.bid_iv,
                                    row.ask_iv, greeks, row.underlying_price, row.open_interest, stats.volume))
            return
        if inst is not None and inst.kind == "perpetual" and row.funding_8h is not None:
            out.append(self._funding(raw, symbol, ts, recv_ts, row.funding_8h, mark, index))
        oi_base, oi_usd = self._oi(inst, row.open_interest, mark or index)
        out.append(Ticker(exchange=EXCHANGE, symbol=symbol, raw_symbol=raw, ts=ts, recv_ts=recv_ts,
                          last=positive(finite(row.last_price)), bid=positive(finite(row.best_bid_price)),
                          ask=positive(finite(row.best_ask_price)), mark_price=mark, index_price=index,
                          volume_24h_usd=_nonneg(finite(stats.volume_usd)), open_interest=oi_base,
                          open_interest_usd=oi_usd))
        if row.open_interest is not None:
            out.append(OpenInterest(exchange=EXCHANGE, symbol=symbol, raw_symbol=raw, ts=ts, recv_ts=recv_ts,
                                    oi_contracts=_nonneg(finite(row.open_interest)), oi_base=oi_base,
                                    oi_usd=oi_usd))

    def _oi(self, inst: Instrument | None, reported: float | None, price: float | None
            ) -> tuple[float | None, float | None]:
        """(base, USD) of a perp/future ``open_interest``: USD for inverse, coin for linear."""
        oi = _nonneg(finite(reported))
        if oi is None:
            return None, None
        if inst is None:
            self.stats.unmapped["open_interest"] += 1
            return None, None
        if inst.inverse:
            return (finite(oi / price) if price else None), oi
        return oi, (finite(oi * price) if price else None)

    def _funding(self, raw: str, symbol: str | None, ts: int, recv_ts: int, rate: float,
                 mark: float | None, index: float | None) -> Funding:
        value = finite(rate)
        if value is None:
            raise FrameError("value", f"funding_8h={rate!r} is not finite")
        rate_8h, annualized = funding_fields(value, 8.0)
        rate_8h, annualized = finite(rate_8h), finite(annualized)
        return Funding(exchange=EXCHANGE, symbol=symbol, raw_symbol=raw, ts=ts, recv_ts=recv_ts, rate=value,
                       interval_h=8.0, rate_8h=rate_8h, annualized=annualized, predicted_rate=None,
                       next_funding_ts=None, mark_price=mark, index_price=index)

    def _option(self, raw: str, symbol: str | None, inst: Instrument, ts: int, recv_ts: int,
                mark: float | None, index: float | None, mark_iv: float | None, bid_iv: float | None,
                ask_iv: float | None, greeks: DrGreeks, underlying: float | None, oi: float | None,
                volume: float | None) -> OptionTicker:
        if mark is None:
            mark_usd = None
        elif inst.settle == inst.base:  # coin-settled: mark in coin
            mark_usd = finite(mark * index) if index is not None else None
            if index is None:
                self.stats.unmapped["option_index"] += 1
        else:
            mark_usd = mark
        if inst.expiry_ms is None or inst.strike is None or inst.option_kind is None:
            raise FrameError("value", f"{raw}: option without expiry/strike/kind")
        return OptionTicker(exchange=EXCHANGE, symbol=symbol, raw_symbol=raw, ts=ts, recv_ts=recv_ts,
                            underlying=inst.base, expiry=date_from_ms(inst.expiry_ms), strike=inst.strike,
                            kind=inst.option_kind, mark_price_usd=mark_usd, mark_iv=_iv(mark_iv),
                            bid_iv=_iv(bid_iv), ask_iv=_iv(ask_iv), delta=finite(greeks.delta),
                            gamma=finite(greeks.gamma), vega=finite(greeks.vega), theta=finite(greeks.theta),
                            underlying_price=positive(finite(underlying)), open_interest=_nonneg(finite(oi)),
                            volume_24h=_nonneg(finite(volume)))

    # ----------------------------------------------------------------- REST calls

    def rest_instruments(self) -> list[RestCall]:
        """``public/get_instruments`` of BTC, ETH and USDC (linear) futures and options."""
        return [RestCall("instruments", "/api/v2/public/get_instruments", {"currency": c, "kind": k},
                         ttl_s=3600.0, market="public")
                for c in ("BTC", "ETH", "USDC") for k in ("future", "option")]

    def rest_ticker(self, raw_symbol: str, ttl_s: float = 5.0) -> RestCall:
        """``public/ticker`` of one instrument (funding, mark, index, OI; option IVs and greeks)."""
        return RestCall("ticker", "/api/v2/public/ticker", {"instrument_name": raw_symbol}, ttl_s=ttl_s,
                        market="public")

    def rest_open_interest(self, raw_symbol: str, ttl_s: float = 30.0) -> RestCall:
        """Open interest comes with ``public/ticker``."""
        return self.rest_ticker(raw_symbol, ttl_s)

    def rest_book_summary(self, currency: str, kind: str = "option", ttl_s: float = 10.0) -> RestCall:
        """``public/get_book_summary_by_currency`` (one call per currency: the whole option chain)."""
        return RestCall("book_summary", "/api/v2/public/get_book_summary_by_currency",
                        {"currency": currency, "kind": kind}, ttl_s=ttl_s, market="public")

    def rest_funding_history(self, raw_symbol: str, start_ms: int, end_ms: int) -> RestCall:
        """``public/get_funding_rate_history`` (hourly rows; they name no instrument: it is in ``params``)."""
        return RestCall("funding_rate_history", "/api/v2/public/get_funding_rate_history",
                        {"instrument_name": raw_symbol, "start_timestamp": str(start_ms),
                         "end_timestamp": str(end_ms)}, market="public")

    def rest_last_trades(self, currency: str, kind: str = "future", count: int = 1000) -> RestCall:
        """``public/get_last_trades_by_currency`` (liquidation backfill: rows with ``liquidation``)."""
        return RestCall("last_trades", "/api/v2/public/get_last_trades_by_currency",
                        {"currency": currency, "kind": kind, "count": str(max(1, min(count, 1000)))},
                        market="public")

    def rest_cover(self, market: str, symbols: Sequence[str]) -> list[RestCall]:
        """What REST keeps fresh while the socket is down: one ``public/ticker`` per symbol."""
        return [self.rest_ticker(raw) for raw in symbols]

    def rest_backfill(self, symbols: Sequence[str]) -> list[RestCall]:
        """Recent liquidations per currency of the symbols (BTC and ETH without symbols)."""
        currencies: list[str] = []
        for raw in symbols:
            try:
                kind, currency = self._currency(raw)
            except ValueError:
                continue
            if kind == "future" and currency not in currencies:
                currencies.append(currency)
        return [self.rest_last_trades(c) for c in currencies or list(self.LIQUIDATION_CURRENCIES)]

    # ----------------------------------------------------------------- one-shot snapshots

    SNAPSHOT_TTL_S: ClassVar[dict[str, float]] = {
        "ticker": 30.0, "book_summary": 30.0, "last_trades": 30.0, "funding_rate_history": 300.0,
    }
    OI_TTL_S: ClassVar[float] = 60.0
    SNAPSHOT_NOTES: ClassVar[dict[str, str]] = {
        "oi": "deribit: publishes no open-interest history (no 24 h / 7 d change) and no long/short ratio",
    }

    def _of_bases(self, bases: Sequence[str], kinds: Sequence[str]) -> list[Instrument]:
        wanted = {b.upper() for b in bases}
        return sorted((i for i in self.meta.all() if i.base in wanted and i.kind in kinds),
                      key=lambda i: (i.base, not i.inverse, i.kind != "perpetual", i.expiry_ms or 0, i.raw_symbol))

    def snapshot_calls(self, command: str, bases: Sequence[str], *, now_ms: int | None = None) -> list[RestCall]:
        """REST calls of a one-shot ``command`` for the loaded instruments of ``bases`` (pure; load instruments first).

        ``public/ticker`` per perpetual/future (funding, mark, index, OI); funding history over the 25 hours
        up to the next full hour of ``now_ms`` (a stable cache key within the hour; none without ``now_ms``);
        ``get_book_summary_by_currency`` for option chains (no greeks: ``snapshot_enrich`` adds deltas);
        ``get_last_trades_by_currency`` (newest 1000 future trades) for liquidations. Deribit publishes
        no open-interest history and no long/short ratio.
        """
        ttl = self.SNAPSHOT_TTL_S
        calls: list[RestCall] = []
        if command == "funding":
            for inst in self._of_bases(bases, ("perpetual",)):
                calls.append(self.rest_ticker(inst.raw_symbol, ttl_s=ttl["ticker"]))
                if now_ms is not None:
                    end = now_ms - now_ms % 3_600_000 + 3_600_000
                    hist = self.rest_funding_history(inst.raw_symbol, end - 25 * 3_600_000, end)
                    calls.append(RestCall(hist.endpoint, hist.path, hist.params, hist.weight,
                                          ttl["funding_rate_history"], hist.market))
        elif command in ("oi", "basis"):
            ttl_s = self.OI_TTL_S if command == "oi" else ttl["ticker"]
            insts = self._of_bases(bases, ("perpetual", "future"))
            calls += [self.rest_ticker(i.raw_symbol, ttl_s=ttl_s) for i in insts]
        elif command == "liquidations":
            currencies = sorted({i.base for i in self._of_bases(bases, ("perpetual", "future")) if i.inverse})
            for cur in currencies:
                call = self.rest_last_trades(cur, "future", 1000)
                calls.append(RestCall(call.endpoint, call.path, {**call.params, "sorting": "desc"}, call.weight,
                                      ttl["last_trades"], call.market))
        elif command == "options":
            currencies = sorted({i.base for i in self._of_bases(bases, ("option",)) if i.settle == i.base})
            calls += [self.rest_book_summary(c, "option", ttl_s=ttl["book_summary"]) for c in currencies]
        return calls

    def snapshot_reach(self, call: RestCall, body: str | bytes) -> tuple[int | None, bool]:
        """``(oldest trade time, more trades exist)`` of a ``last_trades`` body, for liquidation coverage (pure)."""
        if call.endpoint != "last_trades":
            return None, False
        try:
            page = _TRADES_RESULT_DEC.decode(self._rest_result(call.endpoint, body))
        except msgspec.DecodeError as exc:
            raise FrameError("schema", f"last_trades: {exc}") from None
        oldest = min((t.timestamp for t in page.trades), default=None)
        return oldest, page.has_more

    def snapshot_enrich(self, events: Sequence[Event]) -> list[Event]:
        """Option tickers without a delta (book summaries carry no greeks) get the Black-76 delta of their
        ``mark_iv`` on ``underlying_price`` (the forward Deribit prices the option against), undiscounted
        (book summaries show ``interest_rate`` 0), at the event's ``ts`` (pure)."""
        out: list[Event] = []
        for ev in events:
            if isinstance(ev, OptionTicker) and ev.delta is None:
                inst = self.instrument(ev.raw_symbol)
                if inst is not None and inst.expiry_ms is not None:
                    delta = black76_delta(ev.kind, ev.underlying_price, ev.strike, ev.mark_iv,
                                          (inst.expiry_ms - ev.ts) / 31_536_000_000)
                    if delta is not None:
                        ev = msgspec.structs.replace(ev, delta=delta)
            out.append(ev)
        return out

    # ----------------------------------------------------------------- REST bodies

    def _rest_result(self, what: str, body: str | bytes) -> msgspec.Raw:
        try:
            env = _ENVELOPE_DEC.decode(body)
        except msgspec.ValidationError as exc:
            raise FrameError("schema", f"{what}: {exc}") from None
        except msgspec.DecodeError as exc:
            raise FrameError("json", f"{what}: {exc}") from None
        if env.error is not None:
            reason = "rate_limited" if env.error.code in RATE_LIMIT_CODES else "rejected"
            raise FrameError(reason, f"{what}: Deribit error {env.error.code}: {env.error.message}")
        if not env.result:
            raise FrameError("schema", f"{what}: body has no result")
        return env.result

    @guard_utf8
    def parse_rest(
        self, endpoint: str, body: str | bytes, recv_ts: int, params: Mapping[str, str] | None = None
    ) -> list[Event]:
        """Events in a REST body. ``instruments`` loads metadata and yields none.

        Endpoints: ``instruments``, ``ticker``, ``open_interest`` (a ticker body), ``book_summary``,
        ``funding_rate_history`` (needs ``params["instrument_name"]``), ``last_trades``.

        Raises:
            FrameError: not JSON, wrong types, or a JSON-RPC error (``rate_limited`` for 10028, else
                ``rejected``).
            ValueError: an endpoint this adapter never issues, or funding history without an instrument.
        """
        if endpoint == "instruments":
            self.load_instruments(body)
            return []
        if endpoint not in ("ticker", "open_interest", "book_summary", "funding_rate_history", "last_trades"):
            raise ValueError(f"unknown Deribit REST endpoint {endpoint!r}")
        raw_name = (params or {}).get("instrument_name", "")
        if endpoint == "funding_rate_history" and not raw_name:
            raise ValueError("Deribit funding history rows name no instrument: pass params['instrument_name']")
        result = self._rest_result(endpoint, body)
        out: list[Event] = []
        try:
            if endpoint in ("ticker", "open_interest"):
                self._ticker(_TICKER_DEC.decode(result), recv_ts, out)
            elif endpoint == "book_summary":
                for row in _SUMMARY_DEC.decode(result):
                    self._summary(row, recv_ts, out)
            elif endpoint == "funding_rate_history":
                symbol, _inst = self._lookup(raw_name)
                for hist in _FUNDING_HIST_DEC.decode(result):
                    if hist.interest_8h is None:
                        self.stats.ignored += 1
                        continue
                    ts = _check_ts(hist.timestamp, "timestamp") or recv_ts
                    out.append(self._funding(raw_name, symbol, ts, recv_ts, hist.interest_8h, None,
                                             positive(finite(hist.index_price))))
            else:
                self._trades(_TRADES_RESULT_DEC.decode(result).trades, recv_ts, out)
        except msgspec.ValidationError as exc:
            raise FrameError("schema", f"{endpoint}: {exc}") from None
        except msgspec.DecodeError as exc:
            raise FrameError("json", f"{endpoint}: {exc}") from None
        self.stats.events += len(out)
        return out

    def _summary(self, row: DrBookSummary, recv_ts: int, out: list[Event]) -> None:
        """A book-summary row: options → ``option_ticker`` (no greeks, no bid/ask IV); else ticker + OI."""
        raw = row.instrument_name
        ts = _check_ts(row.creation_timestamp, "creation_timestamp") or recv_ts
        symbol, inst = self._lookup(raw)
        mark = positive(finite(row.mark_price))
        index = positive(_fnum(row.estimated_delivery_price))
        if inst is not None and inst.kind == "option":
            out.append(self._option(raw, symbol, inst, ts, recv_ts, mark, index, row.mark_iv, None, None,
                                    DrGreeks(), row.underlying_price, row.open_interest, row.volume))
            return
        if inst is not None and inst.kind == "perpetual" and row.funding_8h is not None:
            out.append(self._funding(raw, symbol, ts, recv_ts, row.funding_8h, mark, None))
        oi_base, oi_usd = self._oi(inst, row.open_interest, mark)
        out.append(Ticker(exchange=EXCHANGE, symbol=symbol, raw_symbol=raw, ts=ts, recv_ts=recv_ts,
                          last=positive(finite(row.last)), bid=positive(finite(row.bid_price)),
                          ask=positive(finite(row.ask_price)), mark_price=mark, index_price=None,
                          volume_24h_usd=_nonneg(finite(row.volume_usd)), open_interest=oi_base,
                          open_interest_usd=oi_usd))
        if row.open_interest is not None:
            out.append(OpenInterest(exchange=EXCHANGE, symbol=symbol, raw_symbol=raw, ts=ts, recv_ts=recv_ts,
                                    oi_contracts=_nonneg(finite(row.open_interest)), oi_base=oi_base,
                                    oi_usd=oi_usd))


__all__ = [
    "EXCHANGE",
    "DeribitAdapter",
    "instrument_from_name",
    "liquidation_sides",
    "unified",
]
