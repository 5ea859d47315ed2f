"""BitMEX realtime market data (closed 2026-09-23; kept to replay recordings): wire Structs, merge state, parsers.

Sans-I/O (STYLE.md A1): subscribe frames out, frames in, events out. Wire facts
come from BitMEX's API explorer / swagger (definitions ``Instrument``,
``Liquidation``, ``Funding``) and its WebSocket page, summarized with sources in
``shared/exchanges.md`` §5 and §6:

* One endpoint, ``wss://ws.bitmex.com/realtime`` (market ``realtime``). Subscribe
  ``{"op":"subscribe","args":["instrument:XBTUSD","liquidation"]}``; a topic
  without ``:SYMBOL`` covers every symbol. Acks ``{"success":true,"subscribe":…}``,
  the welcome ``{"info":…,"version":…}``, errors ``{"status":…,"error":…}`` and the
  text ``pong`` answering our text ``ping`` are control frames.
* Data ``{"table","action","data":[…]}`` with ``action`` ``partial`` (full rows, first
  after subscribing), ``insert``, ``update`` (key + changed fields only) or ``delete``.
* Times are ISO-8601 strings (``2026-01-01T00:00:00.000Z``); ``fundingInterval`` is a
  timespan written as a datetime offset from 2000-01-01 (``2000-01-01T08:00:00.000Z``
  = 8 h). ``datetime`` is not imported (adapters read no clock): ISO strings are
  converted by arithmetic here.

Decisions (also in the module's tests):

* **Updates before a partial.** BitMEX's docs (and cryptofeed, for books) say to ignore
  a table's messages until its ``partial``. For ``instrument`` we follow the project's
  reading for Bybit tickers (docs/decisions.md): an ``update`` for a symbol with no
  state is merged into empty state and yields what it carries (unseen fields null),
  counted ``unmapped{reason="delta_before_partial"}`` — a recording replayed from the
  middle starts with updates and BitMEX resends no partial on a live connection.
  Events then need instrument metadata from REST for sizes (never guessed).
* **Index price** = ``indicativeSettlePrice`` (for perpetuals the price of the underlying
  index, e.g. ``.BXBT``; tardis-node maps it the same way). ``fairPrice`` is not mapped
  (on perpetuals it is the mark price's input).
* **Liquidations** (DESIGN.md): one event per ``insert`` row, sized by ``leavesQty``;
  ``partial`` (orders inserted before we subscribed, re-sent on each reconnect),
  ``update`` and ``delete`` yield none. Side = order side: Sell → ``long``. ``ts`` =
  ``recv_ts`` (rows carry no time). ``GET /liquidation`` is the book of liquidation
  orders now (not a history): ``parse_rest`` yields one event per row with ``ts`` =
  ``recv_ts``; the caller must not add them to WebSocket inserts of the same orders.
* **Sizes** come from the instrument rows themselves (``partial``/``insert`` rows of the
  ``instrument`` table carry the spec; REST ``/instrument/active`` too):
  inverse (``isInverse``): one contract is ``multiplier / underlyingToSettleMultiplier``
  USD (XBTUSD −1e8 / −1e8 = 1 USD); ``oi_usd`` = contracts × face, ``oi_base`` =
  ``oi_usd`` / mark (index when no mark); liquidation ``value_usd`` = ``leavesQty`` ×
  face, ``qty`` = ``value_usd`` / price. Linear: one contract is
  ``multiplier / quoteToSettleMultiplier`` base units (XBTUSDT 1 / 1e6 = 1e-6 XBT;
  JTOUSDT 1e6 / 1e6 = 1 JTO), else ``1 / underlyingToPositionMultiplier``;
  ``oi_usd``/``value_usd`` = base × price when the quote is a stablecoin. Quanto
  (``isQuanto``, ETHUSD): a contract's base size is not fixed (its value is
  ``multiplier`` satoshi × price), so base and USD fields are null (counted
  ``unmapped{reason="quanto"}``).
* **Names.** With metadata: ``typ`` ``FFWC…`` = perpetual, ``FFCC…`` = dated future
  (date from ``expiry``); base = ``underlying``, quote = ``quoteCurrency``; XBT written
  BTC. Without metadata: ``<BASE>USD``/``USDT``/``USDC`` is a perpetual
  (XBTUSD → BTC-USD-PERP, XBTUSDT → BTC-USDT-PERP, ETHUSD → ETH-USD-PERP) of unknown
  contract size; a future (root + month code + YY, ``XBTZ26``) gives ``symbol: null``
  (its day is in metadata only); anything else (indices ``.BXBT``) null.
* **Funding.** ``instrument`` rows: ``rate`` = ``fundingRate``, ``predicted_rate`` =
  ``indicativeFundingRate``, ``next_funding_ts`` = ``fundingTimestamp``, ``interval_h``
  from ``fundingInterval`` (row/state, else metadata). A funding event needs a known
  ``fundingRate`` (futures carry null: none). ``funding`` table and ``GET /funding``
  rows are settlements: ``ts`` = ``next_funding_ts`` = ``timestamp`` (docs/decisions.md,
  history rows), predicted null.
* **Volume.** ``volume_24h_usd``: inverse ``volume24h`` × face; linear with a stablecoin
  quote ``foreignNotional24h`` (quote notional); else null.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

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
    Side,
    Ticker,
    funding_fields,
)

EXCHANGE = "bitmex"

Num = float | None | UnsetType
Text = str | None | UnsetType
Flag = bool | None | UnsetType

# --------------------------------------------------------------------------- wire messages


class BitmexEnvelope(msgspec.Struct, frozen=True, gc=False):
    """Any realtime frame: table data, subscribe ack, welcome or error (wsAPI page)."""

    table: Any = None
    action: Any = None  # partial | insert | update | delete
    data: msgspec.Raw = msgspec.Raw(b"")
    success: Any = None
    subscribe: Any = None
    unsubscribe: Any = None
    info: Any = None
    status: Any = None
    error: Any = None


class BitmexInstrumentRow(msgspec.Struct, frozen=True, gc=False):
    """One row of the ``instrument`` table / ``GET /instrument`` (swagger ``Instrument``).

    Every field is UNSET when the row omits it (an ``update`` carries the key and what changed).
    """

    symbol: Text = UNSET
    typ: Text = UNSET  # FFWCSX perpetual, FFCCSX future, MRCXXX index...
    state: Text = UNSET
    underlying: Text = UNSET  # XBT
    quoteCurrency: Text = UNSET  # USD
    settlCurrency: Text = UNSET  # XBt, USDt
    expiry: Text = UNSET  # ISO; null for perpetuals
    multiplier: Num = UNSET
    isInverse: Flag = UNSET
    isQuanto: Flag = UNSET
    underlyingToPositionMultiplier: Num = UNSET
    underlyingToSettleMultiplier: Num = UNSET
    quoteToSettleMultiplier: Num = UNSET
    lotSize: Num = UNSET
    fundingRate: Num = UNSET  # fraction per interval
    indicativeFundingRate: Num = UNSET  # predicted next
    fundingTimestamp: Text = UNSET  # ISO, next funding
    fundingInterval: Text = UNSET  # ISO offset from 2000-01-01
    markPrice: Num = UNSET
    fairPrice: Num = UNSET
    indicativeSettlePrice: Num = UNSET
    lastPrice: Num = UNSET
    bidPrice: Num = UNSET
    askPrice: Num = UNSET
    openInterest: Num = UNSET  # contracts
    volume24h: Num = UNSET  # contracts
    foreignNotional24h: Num = UNSET  # quote currency
    timestamp: Text = UNSET  # ISO


class BitmexLiquidationRow(msgspec.Struct, frozen=True, gc=False):
    """One row of the ``liquidation`` table / ``GET /liquidation`` (swagger ``Liquidation``)."""

    symbol: str
    orderID: str = ""
    side: str | None = None  # ORDER side: Sell closes a long
    price: float | None = None
    leavesQty: float | None = None  # contracts


class BitmexFundingRow(msgspec.Struct, frozen=True, gc=False):
    """One row of the ``funding`` table / ``GET /funding`` (swagger ``Funding``)."""

    symbol: str
    timestamp: str
    fundingRate: float | None = None
    fundingInterval: str | None = None
    fundingRateDaily: float | None = None


class BitmexRestError(msgspec.Struct, frozen=True, gc=False):
    """``{"error":{"message":…,"name":…}}``."""

    error: Any


_ENVELOPE_DEC = msgspec.json.Decoder(BitmexEnvelope)
_RAW_LIST_DEC = msgspec.json.Decoder(list[msgspec.Raw])
_INSTRUMENT_DEC = msgspec.json.Decoder(BitmexInstrumentRow)
_LIQUIDATION_DEC = msgspec.json.Decoder(BitmexLiquidationRow)
_FUNDING_DEC = msgspec.json.Decoder(BitmexFundingRow)
_REST_ERROR_DEC = msgspec.json.Decoder(BitmexRestError)

_FIELDS: tuple[str, ...] = BitmexInstrumentRow.__struct_fields__
_TIME_FIELDS = frozenset({"expiry", "fundingTimestamp", "timestamp"})
_FUNDING_KEYS = frozenset({"fundingRate", "indicativeFundingRate", "fundingTimestamp", "fundingInterval"})
_TICKER_KEYS = frozenset({"markPrice", "indicativeSettlePrice", "lastPrice", "bidPrice", "askPrice",
                          "openInterest", "volume24h", "foreignNotional24h"})
_ORDER_SIDE: dict[str, Side] = {"Sell": "long", "Buy": "short"}  # order side -> position liquidated
_INSTRUMENT_CHANNELS = frozenset({"funding", "ticker", "mark", "index", "open_interest", "book"})
_ACTIONS = frozenset({"partial", "insert", "update", "delete"})

# --------------------------------------------------------------------------- time

_ISO_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:Z|\+00:00)?$")
_EPOCH_2000_MS = 946_684_800_000


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def iso_ms(text: object, what: str) -> int | None:
    """ms since epoch of a BitMEX ISO-8601 UTC time; None for null.

    Raises:
        FrameError: not such a time.
    """
    if text is None:
        return None
    m = _ISO_RE.match(text) if isinstance(text, str) else None
    if m is None:
        raise FrameError("value", f"{what}={text!r} is not an ISO-8601 UTC time")
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    days_in_month = (31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
    if not (1 <= month <= 12 and 1 <= day <= days_in_month[month - 1] and hour < 24 and minute < 60
            and second < 60):
        raise FrameError("value", f"{what}={text!r} is not a valid time")
    millis = int((m[7] or "0").ljust(3, "0")[:3])
    seconds = _days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second
    return seconds * 1000 + millis


def interval_hours(text: object, what: str = "fundingInterval") -> float | None:
    """Hours of a timespan written as a datetime offset from 2000-01-01 (``2000-01-01T08:00:00.000Z`` = 8 h).

    None for null or a non-positive span.
    """
    ms = iso_ms(text, what)
    if ms is None or ms <= _EPOCH_2000_MS:
        return None
    return (ms - _EPOCH_2000_MS) / 3_600_000.0


# --------------------------------------------------------------------------- symbols

_FUTURE_RE = re.compile(r"^[A-Z0-9]+[FGHJKMNQUVXZ]\d{2}$")
_PERP_RE = re.compile(r"^([A-Z0-9]{2,}?)(USDT|USDC|USD)$")


def _asset(code: str) -> str:
    """Asset code upper-cased, XBT written BTC, the settlement minor-unit spellings (XBt, USDt) as whole units."""
    up = code.upper()
    return "BTC" if up == "XBT" else up


def instrument_from_name(raw_symbol: str) -> Instrument | None:
    """What a BitMEX name tells without metadata: perpetuals ``<BASE>USD(T|C)``, no contract size.

    Futures (``XBTZ26``) name a month, not a day: None (their date needs ``expiry``); so do
    indices (``.BXBT``) and anything else.
    """
    if _FUTURE_RE.match(raw_symbol):
        return None
    m = _PERP_RE.match(raw_symbol)
    if m is None:
        return None
    return Instrument(exchange=EXCHANGE, raw_symbol=raw_symbol, kind="perpetual", base=_asset(m[1]),
                      quote=m[2])


def unified(raw_symbol: str) -> str | None:
    """Unified symbol by the naming rule alone."""
    inst = instrument_from_name(raw_symbol)
    return inst.symbol if inst else None


def _ratio(num: object, den: object) -> float | None:
    if not isinstance(num, (int, float)) or not isinstance(den, (int, float)) or isinstance(num, bool) \
            or isinstance(den, bool) or den == 0:
        return None
    return positive(finite(float(num) / float(den)))


def instrument_from_row(state: Mapping[str, Any]) -> tuple[Instrument, bool] | None:
    """(Instrument, quanto?) of a full instrument row (module docstring); None when it is no contract we map."""
    raw = state.get("symbol")
    typ = state.get("typ")
    base = state.get("underlying")
    quote = state.get("quoteCurrency")
    if not isinstance(raw, str) or not isinstance(typ, str) or not isinstance(base, str) \
            or not isinstance(quote, str) or not base or not quote:
        return None
    if typ.startswith("FFWC"):
        kind = "perpetual"
        expiry = None
    elif typ.startswith("FFCC"):
        kind = "future"
        expiry = state.get("expiry")
        if not isinstance(expiry, int):
            return None
    else:
        return None
    inverse = state.get("isInverse") is True
    quanto = state.get("isQuanto") is True
    if inverse:
        size = _ratio(state.get("multiplier"), state.get("underlyingToSettleMultiplier"))  # USD per contract
    elif quanto:
        size = None
    else:
        size = _ratio(state.get("multiplier"), state.get("quoteToSettleMultiplier"))
        if size is None:
            size = _ratio(1.0, state.get("underlyingToPositionMultiplier"))
    settle = state.get("settlCurrency")
    interval = state.get("fundingInterval")
    return (
        Instrument(
            exchange=EXCHANGE, raw_symbol=raw, kind=kind, base=_asset(base), quote=_asset(quote),
            settle=_asset(settle) if isinstance(settle, str) and settle else None, inverse=inverse,
            contract_size=size, expiry_ms=expiry,
            funding_interval_h=interval if kind == "perpetual" and isinstance(interval, float) else None,
        ),
        quanto,
    )


def _nonneg(value: object) -> float | None:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    v = finite(float(value))
    return v if v is not None and v >= 0 else None


def _pos(value: object) -> float | None:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    return positive(float(value))


def _row_values(row: BitmexInstrumentRow) -> dict[str, Any]:
    """The fields a row carries, times converted to ms and ``fundingInterval`` to hours.

    Raises:
        FrameError: a bad time.
    """
    out: dict[str, Any] = {}
    for name in _FIELDS:
        value = getattr(row, name)
        if value is UNSET:
            continue
        if name in _TIME_FIELDS:
            value = iso_ms(value, name)
        elif name == "fundingInterval":
            value = interval_hours(value)
        out[name] = value
    return out


# --------------------------------------------------------------------------- the adapter


class BitmexAdapter:
    """BitMEX realtime adapter (one instance per process).

    Holds instrument metadata (REST ``/instrument/active`` or the ``instrument`` table's full
    rows) and the merged ``instrument`` state per symbol (at most ``MAX_STATES``).
    """

    name = EXCHANGE
    markets: tuple[str, ...] = ("realtime",)
    MAX_STATES = 10_000
    REST_ENDPOINTS = ("instruments", "instrument", "funding", "liquidation")
    LIQUIDATION_FEED: ClassVar[str] = "complete"
    """Whether the liquidation stream carries every liquidation (exchanges.md):
    every liquidation order inserted in the liquidation table."""
    CADENCE_S: ClassVar[dict[str, float | None]] = {
        "ticker": 10.0, "funding": None, "liquidations": None,
    }
    """``instrument`` pushes when a field changes (mark price moves continuously); ``liquidation``
    and ``funding`` (settlements) only when something happens."""

    def __init__(self) -> None:
        self.meta = InstrumentTable(EXCHANGE)
        self.stats = AdapterStats()
        self.last_channel: str | None = None
        """Channel of the last data frame parsed (``ticker``, ``liquidations``, ``funding``)."""
        self._quanto: set[str] = set()
        self._states: dict[str, dict[str, Any]] = {}

    # ----------------------------------------------------------------- streams

    def market_of(self, raw_symbol: str) -> str:
        """Always ``realtime`` (one endpoint)."""
        return "realtime"

    def stream_key(self, stream: Stream) -> str:
        """The BitMEX topic: ``liquidation[:SYM]``; funding/ticker/mark/index/OI/book → ``instrument[:SYM]``.

        Raises:
            ValueError: a channel BitMEX does not have (options).
        """
        if stream.channel == "liquidations":
            table = "liquidation"
        elif stream.channel in _INSTRUMENT_CHANNELS:
            table = "instrument"
        else:
            raise ValueError(f"BitMEX has no {stream.channel!r} stream")
        return f"{table}:{stream.raw_symbol}" if stream.raw_symbol else table

    def plan_streams(self, market: str, symbols: Sequence[str], channels: Sequence[str],
                     all_market: bool) -> list[Stream]:
        """One ``liquidation`` and one ``instrument`` (channel ``ticker``) stream, per symbol or venue-wide."""
        wanted = set(channels)
        targets: list[str | None] = [None] if all_market or not symbols else list(symbols)
        streams: list[Stream] = []
        for raw in targets:
            if "liquidations" in wanted:
                streams.append(Stream("liquidations", raw, "realtime"))
            if wanted & _INSTRUMENT_CHANNELS:
                streams.append(Stream("ticker", raw, "realtime"))
        return streams

    def _topics(self, streams: Sequence[Stream]) -> list[str]:
        return list(dict.fromkeys(self.stream_key(s) for s in streams))

    def subscribe(self, streams: Sequence[Stream]) -> list[str]:
        """One ``{"op":"subscribe","args":[…]}`` frame, topics de-duplicated ([] for no streams).

        Raises:
            ValueError: a channel BitMEX does not have.
        """
        topics = self._topics(streams)
        return [msgspec.json.encode({"op": "subscribe", "args": topics}).decode()] if topics else []

    def unsubscribe(self, streams: Sequence[Stream]) -> list[str]:
        """The matching ``unsubscribe`` frame."""
        topics = self._topics(streams)
        return [msgspec.json.encode({"op": "unsubscribe", "args": topics}).decode()] if topics else []

    def heartbeat(self) -> HeartbeatSpec:
        """Text ``ping`` every 30 s, answered by text ``pong`` (wsAPI page, reference client); no WS pings."""
        return HeartbeatSpec(
            ping_payload="ping",
            ping_interval_s=30.0,
            ws_ping_interval_s=None,
            ws_ping_timeout_s=None,
            max_lifetime_s=None,
            max_streams_per_connection=200,
            max_messages_per_s=None,
        )

    # ----------------------------------------------------------------- instruments

    def _add_instrument(self, state: Mapping[str, Any]) -> bool:
        mapped = instrument_from_row(state)
        if mapped is None:
            return False
        inst, quanto = mapped
        self.meta.add(inst)
        if quanto:
            self._quanto.add(inst.raw_symbol)
        else:
            self._quanto.discard(inst.raw_symbol)
        return True

    def load_instruments(self, body: str | bytes, market: str = "") -> int:
        """Load a ``GET /instrument/active`` (or ``/instrument``) body; returns instruments loaded.

        Rows that are no perpetual or future (indices, spot, options) or lack a field the
        mapping needs are skipped and counted (``unmapped{reason="instrument"}``).

        Raises:
            FrameError: not JSON, an error body, or not an array of rows.
        """
        count = 0
        for item in self._rest_rows(body, "instruments"):
            try:
                values = _row_values(_INSTRUMENT_DEC.decode(item))
            except (msgspec.DecodeError, FrameError):
                values = None
            if values is None or not self._add_instrument(values):
                self.stats.unmapped["instrument"] += 1
                continue
            count += 1
        return count

    def instruments(self) -> list[Instrument]:
        """Instruments loaded so far."""
        return self.meta.all()

    def instrument(self, raw_symbol: str) -> Instrument | None:
        """Metadata, else what the naming rule tells (no contract size), else None."""
        inst = self.meta.get(raw_symbol)
        if inst is not None:
            return inst
        return instrument_from_name(raw_symbol)

    def _resolve(self, raw: str) -> tuple[str | None, Instrument | None]:
        inst = self.instrument(raw)
        if inst is None:
            self.stats.unmapped["unknown_symbol"] += 1
            return None, None
        return inst.symbol, inst

    def _sizes(self, inst: Instrument | None, raw: str, contracts: float | None,
               price: float | None) -> tuple[float | None, float | None]:
        """(base units, USD) of a number of contracts at a price (module docstring, Sizes)."""
        if inst is None or contracts is None:
            return None, None
        if raw in self._quanto:
            self.stats.unmapped["quanto"] += 1
            return None, None
        size = inst.contract_size
        if size is None:
            self.stats.unmapped["contract_size"] += 1
            return None, None
        if inst.inverse:
            usd = finite(contracts * size)
            base = finite(usd / price) if usd is not None and price is not None else None
            return base, usd
        base = finite(contracts * size)
        if inst.quote.upper() not in STABLECOINS:
            self.stats.unmapped["quote_not_usd"] += 1
            return base, None
        usd = finite(base * price) if base is not None and price is not None else None
        return base, usd

    # ----------------------------------------------------------------- frames

    @guard_utf8
    def parse(self, frame: str | bytes, recv_ts: int) -> list[Event]:
        """Events in one WebSocket frame (text exactly as received).

        Returns:
            Events in row order; [] for acks, the welcome, errors, ``pong`` and tables we do not map.

        Raises:
            FrameError: not JSON, or a mapped table with missing or wrong fields.
        """
        self.stats.frames += 1
        self.last_channel = None
        try:
            events = self._parse(frame, recv_ts)
        except FrameError as exc:
            self.stats.errors[exc.reason] += 1
            raise
        self.stats.events += len(events)
        return events

    def _parse(self, frame: str | bytes, recv_ts: int) -> list[Event]:
        text = frame.strip() if isinstance(frame, (str, bytes)) else frame
        if text in ("pong", b"pong"):
            self.stats.control += 1
            return []
        try:
            env = _ENVELOPE_DEC.decode(frame)
        except msgspec.ValidationError as exc:
            raise FrameError("schema", f"not a BitMEX frame object: {exc}") from None
        except msgspec.DecodeError as exc:
            raise FrameError("json", str(exc)) from None
        table = env.table
        if table is None:
            if (env.success is not None or env.subscribe is not None or env.unsubscribe is not None
                    or env.info is not None or env.error is not None or env.status is not None):
                self.stats.control += 1
            else:
                self.stats.ignored += 1
            return []
        if not isinstance(table, str):
            raise FrameError("schema", f"table={table!r} is not a string")
        if table not in ("instrument", "liquidation", "funding"):
            self.stats.ignored += 1  # orderBookL2, trade, quote...
            return []
        action = env.action
        if not isinstance(action, str) or action not in _ACTIONS:
            raise FrameError("schema", f"{table} action={action!r} is not partial/insert/update/delete")
        items = self._rows(env.data, table)
        if table == "liquidation":
            self.last_channel = "liquidations"
            if action != "insert":
                return []  # DESIGN.md: one event per liquidation order, at insert
            return self._elements(items, lambda item, out: self._liquidation(item, recv_ts, out))
        if table == "funding":
            self.last_channel = "funding"
            if action not in ("partial", "insert"):
                return []
            return self._elements(items, lambda item, out: self._funding_row(item, recv_ts, out))
        self.last_channel = "ticker"
        return self._elements(items, lambda item, out: self._instrument(item, action, recv_ts, out))

    @staticmethod
    def _rows(data: msgspec.Raw, what: str) -> list[msgspec.Raw]:
        if not data:
            raise FrameError("schema", f"{what} frame has no data")
        try:
            return _RAW_LIST_DEC.decode(data)
        except msgspec.DecodeError as exc:
            raise FrameError("schema", f"{what} data is not an array: {exc}") from None

    def _elements(self, items: list[msgspec.Raw], handle: Callable[[msgspec.Raw, list[Event]], None]) -> list[Event]:
        """Events of each row; a bad one is counted and skipped (``base.read_elements``)."""
        return read_elements(items, handle, self.stats, "row")
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
            raise FrameError(last_error.reason, f"no readable row: {last_error.detail}")
        return out

    # ----------------------------------------------------------------- liquidations

    def _liquidation(self, item: msgspec.Raw, recv_ts: int, out: list[Event]) -> None:
        row = _decode(_LIQUIDATION_DEC, item, "liquidation")
        side = _ORDER_SIDE.get(row.side) if isinstance(row.side, str) else None
        if side is None:
            raise FrameError("value", f"liquidation side={row.side!r} is neither Buy nor Sell")
        symbol, inst = self._resolve(row.symbol)
        price = _pos(row.price)
        base, usd = self._sizes(inst, row.symbol, _nonneg(row.leavesQty), price)
        out.append(Liquidation(
            exchange=EXCHANGE, symbol=symbol, raw_symbol=row.symbol, ts=recv_ts, recv_ts=recv_ts,
            side=side, price=price, qty=base, value_usd=usd,
        ))

    # ----------------------------------------------------------------- funding settlements

    def _funding_row(self, item: msgspec.Raw, recv_ts: int, out: list[Event]) -> None:
        row = _decode(_FUNDING_DEC, item, "funding")
        settled = iso_ms(row.timestamp, "timestamp")
        rate = finite(row.fundingRate) if row.fundingRate is not None else None
        if rate is None or settled is None:
            return
        interval = interval_hours(row.fundingInterval)
        if interval is None:
            interval = self.meta.funding_interval_h(row.symbol)
        symbol, _inst = self._resolve(row.symbol)
        out.append(self._funding(row.symbol, symbol, settled, recv_ts, rate, interval, None, settled, None, None))

    @staticmethod
    def _funding(raw: str, symbol: str | None, ts: int, recv_ts: int, rate: float, interval: float | None,
                 predicted: float | None, next_ts: int | None, mark: float | None,
                 index: float | None) -> Funding:
        rate_8h, annualized = funding_fields(rate, interval)
        return Funding(
            exchange=EXCHANGE, symbol=symbol, raw_symbol=raw, ts=ts, recv_ts=recv_ts, rate=rate,
            interval_h=interval, rate_8h=finite(rate_8h), annualized=finite(annualized), predicted_rate=predicted,
            next_funding_ts=next_ts, mark_price=mark, index_price=index,
        )

    # ----------------------------------------------------------------- instrument table

    def _instrument(self, item: msgspec.Raw, action: str, recv_ts: int, out: list[Event]) -> None:
        row = _decode(_INSTRUMENT_DEC, item, "instrument")
        raw = row.symbol
        if not isinstance(raw, str) or not raw:
            raise FrameError("schema", "instrument row has no symbol")
        values = _row_values(row)
        if action == "delete":
            self._states.pop(raw, None)
            return
        state = self._states.get(raw)
        if state is None or action == "partial":
            if action == "update":
                self.stats.unmapped["delta_before_partial"] += 1
            if len(self._states) >= self.MAX_STATES and raw not in self._states:
                self._states.pop(next(iter(self._states)))
            state = self._states[raw] = {}
        state.update(values)
        if "typ" in values:
            self._add_instrument(state)  # partial/insert rows carry the contract spec
        self._events(raw, state, values.keys(), recv_ts, out)

    def _events(self, raw: str, state: Mapping[str, Any], present: Any, recv_ts: int, out: list[Event]) -> None:
        """Funding / ticker / open_interest events of one merged row, by the fields the row carried."""
        keys = set(present)
        wants_funding = bool(keys & _FUNDING_KEYS)
        wants_ticker = bool(keys & _TICKER_KEYS)
        if not wants_funding and not wants_ticker:
            return
        row_ts = state.get("timestamp") if "timestamp" in keys else None  # an old timestamp is not this fact's
        ts = row_ts if isinstance(row_ts, int) else recv_ts
        symbol, inst = self._resolve(raw)
        mark = _pos(state.get("markPrice"))
        index = _pos(state.get("indicativeSettlePrice"))
        if wants_funding:
            rate = state.get("fundingRate")
            rate = finite(float(rate)) if isinstance(rate, (int, float)) and not isinstance(rate, bool) else None
            if rate is not None:
                interval = state.get("fundingInterval")
                if not isinstance(interval, float):
                    interval = self.meta.funding_interval_h(raw)
                predicted = state.get("indicativeFundingRate")
                predicted = finite(float(predicted)) if isinstance(predicted, (int, float)) \
                    and not isinstance(predicted, bool) else None
                next_ts = state.get("fundingTimestamp")
                out.append(self._funding(raw, symbol, ts, recv_ts, rate, interval, predicted,
                                         next_ts if isinstance(next_ts, int) else None, mark, index))
        if not wants_ticker:
            return
        contracts = _nonneg(state.get("openInterest"))
        oi_base, oi_usd = self._sizes(inst, raw, contracts, mark or index)
        out.append(Ticker(
            exchange=EXCHANGE, symbol=symbol, raw_symbol=raw, ts=ts, recv_ts=recv_ts,
            last=_pos(state.get("lastPrice")), bid=_pos(state.get("bidPrice")), ask=_pos(state.get("askPrice")),
            mark_price=mark, index_price=index, volume_24h_usd=self._volume_usd(raw, state, inst),
            open_interest=oi_base, open_interest_usd=oi_usd,
        ))
        if "openInterest" in keys:
            out.append(OpenInterest(
                exchange=EXCHANGE, symbol=symbol, raw_symbol=raw, ts=ts, recv_ts=recv_ts,
                oi_contracts=contracts, oi_base=oi_base, oi_usd=oi_usd,
            ))

    def _volume_usd(self, raw: str, state: Mapping[str, Any], inst: Instrument | None) -> float | None:
        if inst is None or raw in self._quanto:
            return None
        if inst.inverse:
            volume = _nonneg(state.get("volume24h"))
            size = inst.contract_size
            return finite(volume * size) if volume is not None and size is not None else None
        if inst.quote.upper() in STABLECOINS:
            return _nonneg(state.get("foreignNotional24h"))
        return None

    # ----------------------------------------------------------------- REST calls

    def rest_instruments(self) -> list[RestCall]:
        """``GET /api/v1/instrument/active`` (active instruments and those expired within 24 h)."""
        return [RestCall("instruments", "/api/v1/instrument/active", {}, weight=1, ttl_s=3600.0, market="realtime")]

    def rest_open_interest(self, raw_symbol: str, ttl_s: float = 30.0) -> RestCall:
        """``GET /api/v1/instrument?symbol=`` (the row carries OI, funding and prices)."""
        return RestCall("instrument", "/api/v1/instrument", {"symbol": raw_symbol}, weight=1, ttl_s=ttl_s,
                        market="realtime")

    def rest_funding_history(self, raw_symbol: str, count: int = 100) -> RestCall:
        """``GET /api/v1/funding`` newest first (``count`` ≤ 500)."""
        params = {"symbol": raw_symbol, "reverse": "true", "count": str(max(1, min(count, 500)))}
        return RestCall("funding", "/api/v1/funding", params, weight=1, market="realtime")

    def rest_liquidations(self, raw_symbol: str | None = None) -> RestCall:
        """``GET /api/v1/liquidation``: liquidation orders in the book now (not a history)."""
        params = {"symbol": raw_symbol} if raw_symbol else {}
        return RestCall("liquidation", "/api/v1/liquidation", params, weight=1, ttl_s=5.0, market="realtime")

    # ----------------------------------------------------------------- REST bodies

    def _rest_rows(self, body: str | bytes, what: str) -> list[msgspec.Raw]:
        """Rows of a bare JSON array body; an ``{"error":…}`` body raises FrameError(rejected/rate_limited)."""
        try:
            return _RAW_LIST_DEC.decode(body)
        except msgspec.ValidationError:
            pass
        except msgspec.DecodeError as exc:
            raise FrameError("json", f"{what}: {exc}") from None
        try:
            err = _REST_ERROR_DEC.decode(body)
        except msgspec.DecodeError as exc:
            raise FrameError("schema", f"{what}: neither an array nor an error body: {exc}") from None
        message = err.error.get("message") if isinstance(err.error, dict) else err.error
        reason = "rate_limited" if "rate limit" in str(message).lower() else "rejected"
        raise FrameError(reason, f"{what}: BitMEX error: {str(message)[:200]}")

    @guard_utf8
    def parse_rest(
        self, endpoint: str, body: str | bytes, recv_ts: int, params: Mapping[str, str] | None = None
    ) -> list[Event]:
        """Events in a REST body (``REST_ENDPOINTS``); ``instruments`` loads metadata and yields none.

        ``instrument`` rows are full rows: metadata is loaded from them, they replace the symbol's
        merged state and yield funding / ticker / open_interest as the table does.

        Raises:
            FrameError: not JSON, an error body (``rejected``; ``rate_limited``), or wrong types.
            ValueError: an endpoint this adapter never asked for.
        """
        if endpoint not in self.REST_ENDPOINTS:
            raise ValueError(f"unknown BitMEX REST endpoint {endpoint!r}")
        if endpoint == "instruments":
            self.load_instruments(body)
            return []
        items = self._rest_rows(body, endpoint)
        if not items:
            return []
        match endpoint:
            case "instrument":
                events = self._elements(items, lambda item, out: self._instrument(item, "partial", recv_ts, out))
            case "funding":
                events = self._elements(items, lambda item, out: self._funding_row(item, recv_ts, out))
            case _:
                events = self._elements(items, lambda item, out: self._liquidation(item, recv_ts, out))
        self.stats.events += len(events)
        return events


def _decode(decoder: msgspec.json.Decoder[Any], item: msgspec.Raw | bytes, what: str) -> Any:
    try:
        return decoder.decode(item)
    except msgspec.DecodeError as exc:
        raise FrameError("schema", f"{what}: {exc}") from None


__all__ = [
    "EXCHANGE",
    "BitmexAdapter",
    "instrument_from_name",
    "instrument_from_row",
    "interval_hours",
    "iso_ms",
    "unified",
]
