"""Binance USDⓈ-M (``fapi``, linear) and COIN-M (``dapi``, inverse) futures: wire Structs and parsers.

Sans-I/O (STYLE.md A1): subscribe frames out, frames in, events out. Wire facts
come from Binance's derivatives documentation, summarized with sources in
``shared/exchanges.md`` §1:

* WebSocket streams: ``<sym>@forceOrder`` / ``!forceOrder@arr`` (liquidations,
  at most the latest one per symbol per second), ``<sym>@markPrice[@1s]`` /
  ``!markPrice@arr[@1s]`` (mark, index, funding), ``<sym>@ticker`` /
  ``!ticker@arr`` (24 h), ``<sym>@bookTicker`` (best bid/ask). Raw (``/ws``)
  frames are the payload; combined (``/stream``) frames are
  ``{"stream": name, "data": payload}``. Live subscribing answers
  ``{"result": null, "id": N}``.
* Binance streams no open interest: it comes by REST (``openInterest``).
* UM quantities are base coin; CM quantities are contracts of ``contractSize``
  USD each (exchangeInfo), so base = contracts × contractSize ÷ price.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import msgspec

from streamer.exchanges.base import (
    AdapterStats,
    FrameError,
    HeartbeatSpec,
    RestCall,
    Stream,
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
    Liquidation,
    OpenInterest,
    Ticker,
    funding_fields,
    unified_symbol,
    yymmdd_to_ms,
)

EXCHANGE = "binance"

# --------------------------------------------------------------------------- WebSocket wire messages


class BinanceForceOrderOrder(msgspec.Struct, frozen=True, gc=False):
    """``o`` of a forceOrder event (Liquidation Order Streams)."""

    s: str  # Symbol
    S: str  # Side of the liquidation ORDER: SELL closes a long
    q: str | float = ""  # Original quantity (UM base coin, CM contracts)
    p: str | float = ""  # Price
    ap: str | float = ""  # Average price
    X: str = ""  # Order status
    l: str | float = ""  # Order last filled quantity  # noqa: E741
    z: str | float = ""  # Order filled accumulated quantity
    T: int = 0  # Order trade time, ms


class BinanceForceOrderMsg(msgspec.Struct, frozen=True, gc=False, tag_field="e", tag="forceOrder"):
    """``<symbol>@forceOrder`` / ``!forceOrder@arr`` payload."""

    E: int  # Event time (push time), ms
    o: BinanceForceOrderOrder


class BinanceMarkPriceMsg(msgspec.Struct, frozen=True, gc=False, tag_field="e", tag="markPriceUpdate"):
    """``<symbol>@markPrice[@1s]``, ``!markPrice@arr[@1s]``, CM ``<pair>@markPrice`` payload."""

    E: int  # Event time, ms
    s: str  # Symbol
    p: str | float = ""  # Mark price
    i: str | float = ""  # Index price
    P: str | float = ""  # Estimated settle price
    r: str | float = ""  # Funding rate ("" for delivery contracts)
    T: int = 0  # Next funding time, ms (0 for delivery contracts)


class BinanceTicker24hMsg(msgspec.Struct, frozen=True, gc=False, tag_field="e", tag="24hrTicker"):
    """``<symbol>@ticker`` / ``!ticker@arr`` payload (24 h rolling window)."""

    E: int  # Event time, ms
    s: str  # Symbol
    c: str | float = ""  # Last price
    v: str | float = ""  # UM: base-asset volume; CM: volume in contracts
    q: str | float = ""  # UM: quote-asset volume; CM: base-asset volume


class BinanceBookTickerMsg(msgspec.Struct, frozen=True, gc=False, tag_field="e", tag="bookTicker"):
    """``<symbol>@bookTicker`` payload."""

    s: str  # Symbol
    E: int = 0  # Event time (push), ms
    T: int = 0  # Transaction time (book change), ms
    b: str | float = ""  # Best bid price
    a: str | float = ""  # Best ask price


BinancePayload = BinanceForceOrderMsg | BinanceMarkPriceMsg | BinanceTicker24hMsg | BinanceBookTickerMsg

_KNOWN_EVENTS = frozenset({"forceOrder", "markPriceUpdate", "24hrTicker", "bookTicker"})


class BinanceEnvelope(msgspec.Struct, frozen=True, gc=False):
    """Routing fields of any frame: combined envelope, ack, error, or a raw payload's ``e``."""

    stream: str | None = None
    data: msgspec.Raw = msgspec.Raw(b"")  # empty when absent
    e: Any = None
    result: msgspec.Raw = msgspec.Raw(b"")  # empty when absent; b"null" for an ack
    id: Any = None
    error: Any = None
    code: Any = None


_PAYLOAD_DEC: msgspec.json.Decoder[Any] = msgspec.json.Decoder(BinancePayload | list[BinancePayload])


class _BinanceCombined(msgspec.Struct, frozen=True, gc=False):
    """A combined-stream envelope whose ``data`` is a known payload (the fast path of ``/stream``)."""

    stream: str
    data: BinancePayload | list[BinancePayload]


_COMBINED_DEC: msgspec.json.Decoder[_BinanceCombined] = msgspec.json.Decoder(_BinanceCombined)
_ENVELOPE_DEC: msgspec.json.Decoder[Any] = msgspec.json.Decoder(BinanceEnvelope | list[msgspec.Raw])
_HEAD_DEC: msgspec.json.Decoder[Any] = msgspec.json.Decoder(BinanceEnvelope)

# --------------------------------------------------------------------------- REST wire messages


class BinanceSymbolInfo(msgspec.Struct, frozen=True, gc=False):
    """One ``symbols`` row of ``GET /fapi/v1/exchangeInfo`` or ``GET /dapi/v1/exchangeInfo``."""

    symbol: str
    baseAsset: str
    quoteAsset: str
    pair: str = ""
    contractType: str = ""  # PERPETUAL, CURRENT_QUARTER, NEXT_QUARTER, ... ("" for spot-like rows)
    deliveryDate: int = 0  # ms; 4133404800000 (year 2100) for perpetuals
    marginAsset: str = ""
    contractSize: float | None = None  # CM only: USD per contract


class BinanceExchangeInfo(msgspec.Struct, frozen=True, gc=False):
    """``GET /fapi/v1/exchangeInfo`` / ``GET /dapi/v1/exchangeInfo``."""

    symbols: list[BinanceSymbolInfo]


class BinanceFundingInfo(msgspec.Struct, frozen=True, gc=False):
    """One row of ``GET /fapi/v1/fundingInfo`` (only symbols with adjusted cap/floor/interval)."""

    symbol: str
    fundingIntervalHours: float | None = None


class BinancePremiumIndex(msgspec.Struct, frozen=True, gc=False):
    """``GET /fapi/v1/premiumIndex`` row (CM ``/dapi/v1/premiumIndex`` adds ``pair``)."""

    symbol: str
    markPrice: str = ""
    indexPrice: str = ""
    lastFundingRate: str = ""
    nextFundingTime: int = 0
    time: int = 0


class BinanceOpenInterest(msgspec.Struct, frozen=True, gc=False):
    """``GET /fapi/v1/openInterest`` (UM: base coin) / ``/dapi/v1/openInterest`` (CM: contracts)."""

    symbol: str
    openInterest: str
    time: int = 0


class BinanceTicker24h(msgspec.Struct, frozen=True, gc=False):
    """``GET /fapi/v1/ticker/24hr`` / ``/dapi/v1/ticker/24hr`` row."""

    symbol: str
    lastPrice: str = ""
    volume: str = ""  # UM base coin; CM contracts
    quoteVolume: str = ""  # UM only: quote volume
    baseVolume: str = ""  # CM only: base-coin volume
    closeTime: int = 0


class BinanceFundingRate(msgspec.Struct, frozen=True, gc=False):
    """``GET /fapi/v1/fundingRate`` row (funding-rate history)."""

    symbol: str
    fundingTime: int
    fundingRate: str
    markPrice: str = ""


class BinanceOpenInterestHist(msgspec.Struct, frozen=True, gc=False):
    """``GET /futures/data/openInterestHist`` row.

    UM: ``sumOpenInterest`` base coin, ``sumOpenInterestValue`` USD.
    CM: ``sumOpenInterest`` contracts, ``sumOpenInterestValue`` base coin; rows name
    ``pair`` + ``contractType`` instead of ``symbol``.
    """

    timestamp: int
    sumOpenInterest: str
    sumOpenInterestValue: str = ""
    symbol: str = ""
    pair: str = ""
    contractType: str = ""


class BinanceLongShortRatio(msgspec.Struct, frozen=True, gc=False):
    """``GET /futures/data/globalLongShortAccountRatio`` row (UM names ``symbol``, CM ``pair``).

    ``longShortRatio`` = ``longAccount`` / ``shortAccount``; the two accounts are fractions of accounts.
    """

    timestamp: int
    longShortRatio: str
    longAccount: str = ""
    shortAccount: str = ""
    symbol: str = ""
    pair: str = ""


_INFO_DEC = msgspec.json.Decoder(BinanceExchangeInfo, strict=False)
_FUNDING_INFO_DEC = msgspec.json.Decoder(list[BinanceFundingInfo], strict=False)
_PREMIUM_DEC: msgspec.json.Decoder[Any] = msgspec.json.Decoder(
    BinancePremiumIndex | list[BinancePremiumIndex], strict=False
)
_OI_DEC = msgspec.json.Decoder(BinanceOpenInterest, strict=False)
_TICKER_DEC: msgspec.json.Decoder[Any] = msgspec.json.Decoder(
    BinanceTicker24h | list[BinanceTicker24h], strict=False
)
_FUNDING_HIST_DEC = msgspec.json.Decoder(list[BinanceFundingRate], strict=False)
_OI_HIST_DEC = msgspec.json.Decoder(list[BinanceOpenInterestHist], strict=False)
_LONG_SHORT_DEC = msgspec.json.Decoder(list[BinanceLongShortRatio], strict=False)
_ANY_DEC: msgspec.json.Decoder[Any] = msgspec.json.Decoder()

# --------------------------------------------------------------------------- symbols

_CM_RE = re.compile(r"^([A-Z0-9]+?)USD_(PERP|\d{6})$")
_UM_RE = re.compile(r"^([A-Z0-9]+?)(USDT|USDC|FDUSD|BUSD|BTC)(?:_(\d{6}))?$")
_PERP_EXPIRY_MS = 4_000_000_000_000  # deliveryDate at or beyond this (year 2096+) means perpetual


def is_coin_m(raw_symbol: str) -> bool:
    """True for COIN-M symbols (``BTCUSD_PERP``, ``BTCUSD_261225``)."""
    return _CM_RE.match(raw_symbol) is not None


def instrument_from_name(raw_symbol: str) -> Instrument | None:
    """What Binance's naming rule says about a symbol, without metadata (no contract size).

    UM: ``<BASE><QUOTE>`` perpetual or ``<BASE><QUOTE>_YYMMDD``; CM: ``<BASE>USD_PERP``
    or ``<BASE>USD_YYMMDD``. None when the name does not follow the rule.
    """
    m = _CM_RE.match(raw_symbol)
    if m is not None:
        expiry = None if m[2] == "PERP" else yymmdd_to_ms(m[2])
        if m[2] != "PERP" and expiry is None:
            return None
        return Instrument(
            exchange=EXCHANGE,
            raw_symbol=raw_symbol,
            kind="perpetual" if expiry is None else "future",
            base=m[1],
            quote="USD",
            settle=m[1],
            inverse=True,
            expiry_ms=expiry,
        )
    m = _UM_RE.match(raw_symbol)
    if m is not None:
        expiry = yymmdd_to_ms(m[3]) if m[3] else None
        if m[3] and expiry is None:
            return None
        return Instrument(
            exchange=EXCHANGE,
            raw_symbol=raw_symbol,
            kind="perpetual" if expiry is None else "future",
            base=m[1],
            quote=m[2],
            settle=m[2],
            expiry_ms=expiry,
        )
    return None


def _instrument_from_info(row: BinanceSymbolInfo) -> Instrument | None:
    kind_text = row.contractType.upper()
    if not kind_text:
        return None
    perpetual = "PERPETUAL" in kind_text or row.deliveryDate >= _PERP_EXPIRY_MS or row.deliveryDate <= 0
    inverse = row.contractSize is not None
    return Instrument(
        exchange=EXCHANGE,
        raw_symbol=row.symbol,
        kind="perpetual" if perpetual else "future",
        base=row.baseAsset,
        quote=row.quoteAsset,
        settle=row.marginAsset or None,
        inverse=inverse,
        contract_size=positive(row.contractSize) if inverse else 1.0,
        expiry_ms=None if perpetual else row.deliveryDate,
    )


# --------------------------------------------------------------------------- the adapter


class BinanceAdapter:
    """Binance USDⓈ-M + COIN-M futures adapter (one instance per process).

    Holds instrument metadata and the last mark price per symbol (used to put
    REST open interest in USD); nothing else.
    """

    name = EXCHANGE
    markets = ("um", "cm")
    SUBSCRIBE_CHUNK = 100

    def __init__(self) -> None:
        self.meta = InstrumentTable(EXCHANGE)
        self.stats = AdapterStats()
        self._marks: dict[str, float] = {}
        self._req_id = 0
        self._funding_info_markets: set[str] = set()
        self.last_channel: str | None = None
        """Channel of the last data frame parsed (``liquidations``, ``funding``, ``ticker``, ``book``)."""

    # ----------------------------------------------------------------- streams

    def stream_key(self, stream: Stream) -> str:
        """The Binance stream name (lowercase symbol)."""
        sym = stream.raw_symbol.lower() if stream.raw_symbol else None
        match stream.channel:
            case "liquidations":
                return f"{sym}@forceOrder" if sym else "!forceOrder@arr"
            case "funding":
                return f"{sym}@markPrice@1s" if sym else "!markPrice@arr@1s"
            case "ticker":
                return f"{sym}@ticker" if sym else "!ticker@arr"
            case "book":
                if sym is None:
                    raise ValueError("Binance futures has no all-market bookTicker stream here; name symbols")
                return f"{sym}@bookTicker"
            case "mark":
                return f"{sym}@markPrice@1s" if sym else "!markPrice@arr@1s"
        raise ValueError(f"Binance has no {stream.channel!r} stream (open interest comes by REST)")

    LIQUIDATION_FEED: ClassVar[str] = "sampled"
    """Whether the liquidation stream carries every liquidation (exchanges.md):
    the latest liquidation per symbol per 1000 ms (forceOrder is a snapshot stream)."""
    CADENCE_S: ClassVar[dict[str, float | None]] = {
        "funding": 1.0, "mark": 1.0, "ticker": 2.0, "liquidations": None, "book": None,
    }
    """Expected max interval of each channel's frames (Binance docs: markPrice@1s 1 s, !ticker@arr 1 s,
    <sym>@ticker 2 s UM; forceOrder only when a liquidation happens; bookTicker only on change)."""

    def plan_streams(self, market: str, symbols: Sequence[str], channels: Sequence[str],
                     all_market: bool) -> list[Stream]:
        """The streams of one market: venue-wide ones where Binance has them, else per symbol.

        COIN-M has no all-market mark-price stream (exchanges.md §1.2): funding is per symbol there.
        """
        mine = [s for s in symbols if self.market_of(s) == market]
        streams: list[Stream] = []
        for channel in channels:
            venue_wide = all_market and (
                channel in ("liquidations", "ticker") or (channel in ("funding", "mark") and market == "um")
            )
            if venue_wide:
                streams.append(Stream(channel, None, market))  # type: ignore[arg-type]
            else:
                streams.extend(Stream(channel, s, market) for s in mine)  # type: ignore[arg-type]
        return streams

    def rest_cover(self, market: str, symbols: Sequence[str]) -> list[RestCall]:
        """What REST polls keep fresh while a market's socket is down: premiumIndex (funding, mark, index)."""
        return [self.rest_premium_index(market, ttl_s=5.0)]

    def subscribe(self, streams: Sequence[Stream]) -> list[str]:
        """``SUBSCRIBE`` request frames, at most ``SUBSCRIBE_CHUNK`` streams each, with fresh ids."""
        names = list(dict.fromkeys(self.stream_key(s) for s in streams))
        frames = []
        for start in range(0, len(names), self.SUBSCRIBE_CHUNK):
            self._req_id += 1
            frames.append(
                msgspec.json.encode(
                    {"method": "SUBSCRIBE", "params": names[start : start + self.SUBSCRIBE_CHUNK], "id": self._req_id}
                ).decode()
            )
        return frames

    def unsubscribe(self, streams: Sequence[Stream]) -> list[str]:
        """``UNSUBSCRIBE`` request frames."""
        names = [self.stream_key(s) for s in streams]
        self._req_id += 1
        return [msgspec.json.encode({"method": "UNSUBSCRIBE", "params": names, "id": self._req_id}).decode()]

    def heartbeat(self) -> HeartbeatSpec:
        """Binance pings every 3 min and closes after 10 min without pong; connections live 24 h.

        websockets answers server pings by itself; we also ping (Binance answers
        and accepts unsolicited pongs). 200 streams per connection is the
        conservative side of a documented conflict (1024 vs 200, exchanges.md §1.1);
        10 inbound messages per second.
        """
        return HeartbeatSpec(
            ping_payload=None,
            ping_interval_s=None,
            ws_ping_interval_s=30.0,
            ws_ping_timeout_s=30.0,
            max_lifetime_s=23.5 * 3600,
            max_streams_per_connection=200,
            max_messages_per_s=5.0,
        )

    # ----------------------------------------------------------------- instruments

    def load_instruments(self, body: str | bytes, market: str = "") -> int:
        """Load an exchangeInfo (UM or CM) or fundingInfo body; returns rows loaded.

        Args:
            body: the raw response body.
            market: ``um`` or ``cm`` when the caller knows which endpoint answered (a fundingInfo
                body names no market; an empty one then counts for that market only). Without it,
                the market is read off the body's symbols, and an empty body counts for both.
        """
        try:
            head = _ANY_DEC.decode(body)
        except msgspec.DecodeError as exc:
            raise FrameError("json", f"instrument body is not JSON: {exc}") from None
        try:
            if isinstance(head, dict) and "symbols" in head:
                info = _INFO_DEC.decode(body)
                count = 0
                for row in info.symbols:
                    inst = _instrument_from_info(row)
                    if inst is not None:
                        self.meta.add(inst)
                        count += 1
                return count
            if isinstance(head, list):
                rows = _FUNDING_INFO_DEC.decode(body)
                for frow in rows:
                    if frow.fundingIntervalHours is not None and frow.fundingIntervalHours > 0:
                        self.meta.set_interval(frow.symbol, frow.fundingIntervalHours)
                # fundingInfo lists only symbols off the 8 h default; the body names no market, so the
                # market is read off its symbols (an empty body counts for both markets).
                if market in self.markets:
                    markets = {market}
                else:
                    markets = {self.market_of(frow.symbol) for frow in rows} or {"um", "cm"}
                self._funding_info_markets |= markets
                return len(rows)
        except msgspec.ValidationError as exc:
            raise FrameError("schema", f"instrument body: {exc}") from None
        raise FrameError("schema", "instrument body is neither exchangeInfo nor fundingInfo")

    def instruments(self) -> list[Instrument]:
        """Instruments loaded so far."""
        return self.meta.all()

    def instrument(self, raw_symbol: str) -> Instrument | None:
        """Metadata, else what the naming rule tells (no contract size then)."""
        inst = self.meta.get(raw_symbol)
        if inst is not None:
            return inst
        return instrument_from_name(raw_symbol)

    def funding_interval_h(self, raw_symbol: str) -> float | None:
        """Hours between fundings: fundingInfo's value, else 8 h once that market's fundingInfo is loaded."""
        hours = self.meta.funding_interval_h(raw_symbol)
        if hours is not None:
            return hours
        inst = self.meta.get(raw_symbol)
        if inst is not None and inst.kind != "perpetual":
            return None
        return 8.0 if self.market_of(raw_symbol) in self._funding_info_markets else None

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
            Events in frame order; [] for acks, errors and streams we do not map.

        Raises:
            FrameError: the frame is not JSON or a known message has wrong types.
        """
        self.stats.frames += 1
        self.last_channel = None
        # a combined-stream envelope (``{"stream":…,"data":…}``, /stream endpoints) decodes in one go
        combined = frame.startswith(b'{"stream"' if isinstance(frame, bytes) else '{"stream"')
        try:
            payload: Any = (_COMBINED_DEC if combined else _PAYLOAD_DEC).decode(frame)
            if combined:
                payload = payload.data
        except msgspec.ValidationError:
            payload = None
        except msgspec.DecodeError as exc:
            self.stats.errors["json"] += 1
            raise FrameError("json", str(exc)) from None
        if payload is None:
            payload = self._route(frame)
            if payload is None:
                return []
        events: list[Event] = []
        if isinstance(payload, list):
            for item in payload:
                self._emit(item, recv_ts, events)
        else:
            self._emit(payload, recv_ts, events)
        self.stats.events += len(events)
        return events

    def _route(self, frame: str | bytes) -> Any:
        """The slow path: a combined envelope, a control frame, an unmapped stream, or garbage."""
        try:
            env = _ENVELOPE_DEC.decode(frame)
        except msgspec.DecodeError as exc:
            self.stats.errors["json"] += 1
            raise FrameError("json", str(exc)) from None
        if isinstance(env, list):
            return self._decode_array(env)
        if env.data:
            try:
                return _PAYLOAD_DEC.decode(env.data)
            except msgspec.ValidationError:
                pass
            except msgspec.DecodeError as exc:
                self.stats.errors["json"] += 1
                raise FrameError("json", str(exc)) from None
            try:
                inner = _ENVELOPE_DEC.decode(env.data)
            except msgspec.DecodeError as exc:
                self.stats.errors["schema"] += 1
                raise FrameError("schema", f"stream {env.stream!r}: {exc}") from None
            if isinstance(inner, list):
                return self._decode_array(inner)
            return self._check_unknown(inner, env.stream)
        if env.result or env.error is not None or env.code is not None:
            self.stats.control += 1
            return None
        return self._check_unknown(env, None)

    def _check_unknown(self, env: BinanceEnvelope, stream: str | None) -> None:
        if isinstance(env.e, str) and env.e in _KNOWN_EVENTS:
            self.stats.errors["schema"] += 1
            where = f" on {stream}" if stream else ""
            raise FrameError("schema", f"{env.e} frame{where} has missing or mistyped fields")
        self.stats.ignored += 1
        return None

    def _decode_array(self, items: list[msgspec.Raw]) -> list[Any]:
        """Element-wise decode of an array frame: good elements kept, bad ones counted."""
        out = []
        bad = 0
        for raw in items:
            try:
                out.append(_PAYLOAD_DEC.decode(raw))
            except msgspec.DecodeError:
                try:
                    head = _HEAD_DEC.decode(raw)
                except msgspec.DecodeError:
                    head = None
                if head is not None and isinstance(head.e, str) and head.e not in _KNOWN_EVENTS:
                    self.stats.ignored += 1
                else:
                    bad += 1
                    self.stats.errors["element"] += 1
        if bad and not out:
            raise FrameError("schema", "no readable element in array frame")
        return out

    def _emit(self, msg: Any, recv_ts: int, out: list[Event]) -> None:
        try:
            if isinstance(msg, BinanceMarkPriceMsg):
                self.last_channel = "funding"
                self._mark_price(msg, recv_ts, out)
            elif isinstance(msg, BinanceForceOrderMsg):
                self.last_channel = "liquidations"
                self._force_order(msg, recv_ts, out)
            elif isinstance(msg, BinanceTicker24hMsg):
                self.last_channel = "ticker"
                self._ticker(msg, recv_ts, out)
            elif isinstance(msg, BinanceBookTickerMsg):
                self.last_channel = "book"
                self._book(msg, recv_ts, out)
        except FrameError as exc:
            self.stats.errors[exc.reason] += 1
            raise

    def _force_order(self, msg: BinanceForceOrderMsg, recv_ts: int, out: list[Event]) -> None:
        o = msg.o
        if o.S == "SELL":
            side = "long"
        elif o.S == "BUY":
            side = "short"
        else:
            raise FrameError("value", f"forceOrder o.S={o.S!r} is neither BUY nor SELL")
        price = positive(num(o.ap, "o.ap")) or positive(num(o.p, "o.p"))
        filled = num(o.z, "o.z")
        if filled is None:
            filled = num(o.q, "o.q")
        symbol, inst = self._symbol(o.s)
        qty: float | None = None
        value_usd: float | None = None
        if inst is not None and inst.inverse:
            size = inst.contract_size
            if size is None or filled is None:
                self.stats.unmapped["contract_size"] += 1
            else:
                value_usd = filled * size
                qty = value_usd / price if price else None
        elif inst is not None:
            qty = filled
            if qty is not None and price is not None:
                if inst.quote.upper() in STABLECOINS:
                    value_usd = qty * price
                else:
                    self.stats.unmapped["quote_not_usd"] += 1
        ts = o.T if o.T > 0 else (msg.E if msg.E > 0 else recv_ts)
        out.append(
            Liquidation(
                exchange=EXCHANGE,
                symbol=symbol,
                raw_symbol=o.s,
                ts=ts,
                recv_ts=recv_ts,
                side=side,
                price=price,
                qty=qty,
                value_usd=value_usd,
            )
        )

    def _funding(
        self,
        raw: str,
        symbol: str | None,
        ts: int,
        recv_ts: int,
        rate: float,
        next_ts: int | None,
        mark: float | None,
        index: float | None,
    ) -> Funding:
        interval = self.funding_interval_h(raw)
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
            rate_8h=rate_8h,
            annualized=annualized,
            predicted_rate=None,
            next_funding_ts=next_ts,
            mark_price=mark,
            index_price=index,
        )

    def _mark_price(self, msg: BinanceMarkPriceMsg, recv_ts: int, out: list[Event]) -> None:
        mark = positive(num(msg.p, "p"))
        index = positive(num(msg.i, "i"))
        rate = num(msg.r, "r")
        symbol, _inst = self._symbol(msg.s)
        ts = msg.E if msg.E > 0 else recv_ts
        if mark is not None:
            remember(self._marks, msg.s, mark, self.stats)
        if rate is not None and msg.T > 0:
            out.append(self._funding(msg.s, symbol, ts, recv_ts, rate, msg.T, mark, index))
        out.append(
            Ticker(
                exchange=EXCHANGE,
                symbol=symbol,
                raw_symbol=msg.s,
                ts=ts,
                recv_ts=recv_ts,
                mark_price=mark,
                index_price=index,
            )
        )

    def _volume_usd(self, inst: Instrument | None, volume: float | None, quote_volume: float | None) -> float | None:
        """24 h notional in USD: UM quote volume (stablecoin quote); CM contracts × face value."""
        if inst is None:
            return None
        if inst.inverse:
            if volume is None or inst.contract_size is None:
                self.stats.unmapped["contract_size"] += 1
                return None
            return volume * inst.contract_size
        if quote_volume is not None and inst.quote.upper() in STABLECOINS:
            return quote_volume
        return None

    def _ticker(self, msg: BinanceTicker24hMsg, recv_ts: int, out: list[Event]) -> None:
        symbol, inst = self._symbol(msg.s)
        volume = num(msg.v, "v")
        quote_volume = num(msg.q, "q")
        out.append(
            Ticker(
                exchange=EXCHANGE,
                symbol=symbol,
                raw_symbol=msg.s,
                ts=msg.E if msg.E > 0 else recv_ts,
                recv_ts=recv_ts,
                last=positive(num(msg.c, "c")),
                volume_24h_usd=self._volume_usd(inst, volume, quote_volume),
            )
        )

    def _book(self, msg: BinanceBookTickerMsg, recv_ts: int, out: list[Event]) -> None:
        symbol, _inst = self._symbol(msg.s)
        # ts: T is when the book changed at the exchange (the fact); E is the push time.
        ts = msg.T if msg.T > 0 else (msg.E if msg.E > 0 else recv_ts)
        out.append(
            Ticker(
                exchange=EXCHANGE,
                symbol=symbol,
                raw_symbol=msg.s,
                ts=ts,
                recv_ts=recv_ts,
                bid=positive(num(msg.b, "b")),
                ask=positive(num(msg.a, "a")),
            )
        )

    # ----------------------------------------------------------------- REST

    REST_ENDPOINTS = (
        "exchangeInfo",
        "fundingInfo",
        "premiumIndex",
        "openInterest",
        "ticker24hr",
        "fundingRate",
        "openInterestHist",
    )

    @staticmethod
    def market_of(raw_symbol: str) -> str:
        """``cm`` for COIN-M symbols, else ``um``."""
        return "cm" if is_coin_m(raw_symbol) else "um"

    def rest_instruments(self) -> list[RestCall]:
        """exchangeInfo and fundingInfo for both markets (weights per Binance's docs)."""
        return [
            RestCall("exchangeInfo", "/fapi/v1/exchangeInfo", weight=1, market="um"),
            RestCall("fundingInfo", "/fapi/v1/fundingInfo", weight=1, market="um"),
            RestCall("exchangeInfo", "/dapi/v1/exchangeInfo", weight=1, market="cm"),
            RestCall("fundingInfo", "/dapi/v1/fundingInfo", weight=1, market="cm"),
        ]

    def rest_open_interest(self, raw_symbol: str, ttl_s: float = 30.0) -> RestCall:
        """``openInterest`` of one symbol (Binance streams no open interest)."""
        prefix = "/dapi/v1" if is_coin_m(raw_symbol) else "/fapi/v1"
        return RestCall(
            "openInterest", f"{prefix}/openInterest", {"symbol": raw_symbol}, weight=1, ttl_s=ttl_s,
            market=self.market_of(raw_symbol),
        )

    def rest_premium_index(self, market: str, raw_symbol: str | None = None, ttl_s: float = 60.0) -> RestCall:
        """``premiumIndex`` (current funding, mark, index) for one symbol or the whole market."""
        prefix = "/dapi/v1" if market == "cm" else "/fapi/v1"
        params = {"symbol": raw_symbol} if raw_symbol else {}
        weight = 1 if raw_symbol and market == "um" else 10
        return RestCall("premiumIndex", f"{prefix}/premiumIndex", params, weight=weight, ttl_s=ttl_s, market=market)

    def rest_open_interest_hist(self, raw_symbol: str, period: str = "1h", limit: int = 200) -> RestCall:
        """``openInterestHist`` (last 30 days) to seed OI change windows."""
        if is_coin_m(raw_symbol):
            inst = self.instrument(raw_symbol)
            pair = raw_symbol.split("_")[0]
            ctype = "PERPETUAL" if inst is None or inst.kind == "perpetual" else "CURRENT_QUARTER"
            params = {"pair": pair, "contractType": ctype, "period": period, "limit": str(limit)}
            return RestCall("openInterestHist", "/futures/data/openInterestHist", params, weight=1, market="cm")
        params = {"symbol": raw_symbol, "period": period, "limit": str(limit)}
        return RestCall("openInterestHist", "/futures/data/openInterestHist", params, weight=1, market="um")

    def rest_funding_history(self, raw_symbol: str, limit: int = 50, ttl_s: float | None = None) -> RestCall:
        """``fundingRate`` history of one perpetual (ascending; the last ``limit`` settlements, ≤ 1000)."""
        prefix = "/dapi/v1" if is_coin_m(raw_symbol) else "/fapi/v1"
        params = {"symbol": raw_symbol, "limit": str(max(1, min(limit, 1000)))}
        return RestCall("fundingRate", f"{prefix}/fundingRate", params, weight=1, ttl_s=ttl_s,
                        market=self.market_of(raw_symbol))

    def rest_ticker_24h(self, raw_symbol: str, ttl_s: float | None = None) -> RestCall:
        """``ticker/24hr`` of one symbol (weight 1; 40 without a symbol)."""
        prefix = "/dapi/v1" if is_coin_m(raw_symbol) else "/fapi/v1"
        return RestCall("ticker24hr", f"{prefix}/ticker/24hr", {"symbol": raw_symbol}, weight=1, ttl_s=ttl_s,
                        market=self.market_of(raw_symbol))

    def rest_long_short(self, raw_symbol: str, period: str = "5m", limit: int = 1,
                        ttl_s: float | None = None) -> RestCall:
        """``/futures/data/globalLongShortAccountRatio`` of one perpetual (UM by ``symbol``; CM by ``pair``)."""
        if is_coin_m(raw_symbol):
            params = {"pair": raw_symbol.split("_")[0], "period": period, "limit": str(limit)}
            return RestCall("longShortRatio", "/futures/data/globalLongShortAccountRatio", params, weight=1,
                            ttl_s=ttl_s, market="cm")
        params = {"symbol": raw_symbol, "period": period, "limit": str(limit)}
        return RestCall("longShortRatio", "/futures/data/globalLongShortAccountRatio", params, weight=1,
                        ttl_s=ttl_s, market="um")

    def parse_long_short(
        self, body: str | bytes, params: Mapping[str, str] | None = None
    ) -> list[tuple[str, int, float, float | None, float | None]]:
        """Rows ``(raw_symbol, ts, ratio, long_fraction, short_fraction)`` of a globalLongShortAccountRatio body.

        CM rows name a ``pair``: the raw symbol is its perpetual (``BTCUSD_PERP``).

        Raises:
            FrameError: not JSON, an error body, or wrong types.
        """
        try:
            rows = _LONG_SHORT_DEC.decode(body)
        except msgspec.DecodeError as exc:
            err = _error_body(body)
            if err:
                raise FrameError("rejected", f"longShortRatio: {err}") from None
            raise FrameError("schema", f"longShortRatio: {exc}") from None
        out: list[tuple[str, int, float, float | None, float | None]] = []
        for row in rows:
            ratio = num(row.longShortRatio, "longShortRatio")
            if ratio is None:
                continue
            raw = row.symbol or (f"{row.pair}_PERP" if row.pair else (params or {}).get("symbol", ""))
            out.append((raw, row.timestamp, ratio, num(row.longAccount, "longAccount"),
                        num(row.shortAccount, "shortAccount")))
        return out

    # ----------------------------------------------------------------- one-shot snapshots

    SNAPSHOT_TTL_S: ClassVar[dict[str, float]] = {
        "premiumIndex": 30.0, "ticker24hr": 30.0, "openInterest": 60.0, "longShortRatio": 60.0,
        "fundingRate": 300.0, "openInterestHist": 300.0,
    }

    def _of_bases(self, bases: Sequence[str], kinds: Sequence[str]) -> list[Instrument]:
        wanted = {b.upper() for b in bases}
        return sorted((i for i in self.meta.all() if i.base in wanted and i.kind in kinds),
                      key=lambda i: (i.base, i.inverse, i.kind != "perpetual", i.expiry_ms or 0, i.raw_symbol))

    def snapshot_calls(self, command: str, bases: Sequence[str], *, now_ms: int | None = None) -> list[RestCall]:
        """REST calls of a one-shot ``command`` for the loaded instruments of ``bases`` (pure; load instruments first).

        Calls come in parse order: ``premiumIndex`` first (its marks value open interest in USD).
        ``liquidations``: none (Binance has no public liquidation history); ``options``: none (not covered).
        """
        ttl = self.SNAPSHOT_TTL_S
        calls: list[RestCall] = []
        if command == "funding":
            for inst in self._of_bases(bases, ("perpetual",)):
                raw = inst.raw_symbol
                calls += [self.rest_premium_index(self.market_of(raw), raw, ttl_s=ttl["premiumIndex"]),
                          self.rest_ticker_24h(raw, ttl_s=ttl["ticker24hr"]),
                          self.rest_open_interest(raw, ttl_s=ttl["openInterest"]),
                          self.rest_funding_history(raw, limit=30, ttl_s=ttl["fundingRate"])]
        elif command == "oi":
            insts = self._of_bases(bases, ("perpetual", "future"))
            calls += [self.rest_premium_index(self.market_of(i.raw_symbol), i.raw_symbol, ttl_s=ttl["premiumIndex"])
                      for i in insts]
            for inst in insts:
                raw = inst.raw_symbol
                calls.append(self.rest_open_interest(raw, ttl_s=ttl["openInterest"]))
                hist = self.rest_open_interest_hist(raw, period="1h", limit=169)
                calls.append(RestCall(hist.endpoint, hist.path, hist.params, hist.weight, ttl["openInterestHist"],
                                      hist.market))
                if inst.kind == "perpetual":
                    calls.append(self.rest_long_short(raw, ttl_s=ttl["longShortRatio"]))
        elif command == "basis":
            calls += [self.rest_premium_index(self.market_of(i.raw_symbol), i.raw_symbol, ttl_s=ttl["premiumIndex"])
                      for i in self._of_bases(bases, ("perpetual", "future"))]
        return calls

    @guard_utf8
    def parse_rest(
        self, endpoint: str, body: str | bytes, recv_ts: int, params: Mapping[str, str] | None = None
    ) -> list[Event]:
        """Events in a REST body. ``exchangeInfo``/``fundingInfo`` load metadata and yield none.

        Raises:
            FrameError: not JSON, an error body, or wrong types.
        """
        try:
            match endpoint:
                case "exchangeInfo" | "fundingInfo":
                    self.load_instruments(body)
                    return []
                case "premiumIndex":
                    return self._rest_premium(_PREMIUM_DEC.decode(body), recv_ts)
                case "openInterest":
                    return [self._rest_oi(_OI_DEC.decode(body), recv_ts)]
                case "ticker24hr":
                    return self._rest_ticker(_TICKER_DEC.decode(body), recv_ts)
                case "fundingRate":
                    return self._rest_funding_hist(_FUNDING_HIST_DEC.decode(body), recv_ts)
                case "openInterestHist":
                    return self._rest_oi_hist(_OI_HIST_DEC.decode(body), recv_ts)
        except msgspec.DecodeError as exc:
            err = _error_body(body)
            if err:
                raise FrameError("rejected", f"{endpoint}: {err}") from None
            raise FrameError("schema", f"{endpoint}: {exc}") from None
        raise ValueError(f"unknown Binance REST endpoint {endpoint!r}")

    def _rest_premium(self, rows: Any, recv_ts: int) -> list[Event]:
        out: list[Event] = []
        for row in rows if isinstance(rows, list) else [rows]:
            mark = positive(num(row.markPrice, "markPrice"))
            index = positive(num(row.indexPrice, "indexPrice"))
            rate = num(row.lastFundingRate, "lastFundingRate")
            symbol, _inst = self._symbol(row.symbol)
            ts = row.time if row.time > 0 else recv_ts
            if mark is not None:
                remember(self._marks, row.symbol, mark, self.stats)
            if rate is not None and row.nextFundingTime > 0:
                out.append(self._funding(row.symbol, symbol, ts, recv_ts, rate, row.nextFundingTime, mark, index))
            out.append(
                Ticker(
                    exchange=EXCHANGE, symbol=symbol, raw_symbol=row.symbol, ts=ts, recv_ts=recv_ts,
                    mark_price=mark, index_price=index,
                )
            )
        self.stats.events += len(out)
        return out

    def _oi_amounts(
        self, raw: str, inst: Instrument | None, contracts: float | None
    ) -> tuple[float | None, float | None]:
        """(oi_base, oi_usd) per DESIGN.md's open-interest rules, with the last mark seen."""
        mark = self._marks.get(raw)
        if inst is None or contracts is None:
            return None, None
        if inst.inverse:
            if inst.contract_size is None:
                self.stats.unmapped["contract_size"] += 1
                return None, None
            usd = contracts * inst.contract_size
            return (usd / mark if mark else None), usd
        base = contracts  # UM open interest is in base coin
        usd = base * mark if mark is not None and inst.quote.upper() in STABLECOINS else None
        return base, usd

    def _rest_oi(self, row: BinanceOpenInterest, recv_ts: int) -> Event:
        symbol, inst = self._symbol(row.symbol)
        contracts = num(row.openInterest, "openInterest")
        base, usd = self._oi_amounts(row.symbol, inst, contracts)
        self.stats.events += 1
        return OpenInterest(
            exchange=EXCHANGE,
            symbol=symbol,
            raw_symbol=row.symbol,
            ts=row.time if row.time > 0 else recv_ts,
            recv_ts=recv_ts,
            oi_contracts=contracts,
            oi_base=base,
            oi_usd=usd,
        )

    def _rest_ticker(self, rows: Any, recv_ts: int) -> list[Event]:
        out: list[Event] = []
        for row in rows if isinstance(rows, list) else [rows]:
            symbol, inst = self._symbol(row.symbol)
            out.append(
                Ticker(
                    exchange=EXCHANGE,
                    symbol=symbol,
                    raw_symbol=row.symbol,
                    ts=row.closeTime if row.closeTime > 0 else recv_ts,
                    recv_ts=recv_ts,
                    last=positive(num(row.lastPrice, "lastPrice")),
                    volume_24h_usd=self._volume_usd(
                        inst, num(row.volume, "volume"), num(row.quoteVolume, "quoteVolume")
                    ),
                )
            )
        self.stats.events += len(out)
        return out

    def _rest_funding_hist(self, rows: list[BinanceFundingRate], recv_ts: int) -> list[Event]:
        out: list[Event] = []
        for row in rows:
            rate = num(row.fundingRate, "fundingRate")
            if rate is None:
                continue
            symbol, _inst = self._symbol(row.symbol)
            # A history row is the rate charged at fundingTime: that settlement is its next_funding_ts.
            out.append(
                self._funding(
                    row.symbol, symbol, row.fundingTime, recv_ts, rate, row.fundingTime,
                    positive(num(row.markPrice, "markPrice")), None,
                )
            )
        self.stats.events += len(out)
        return out

    def _rest_oi_hist(self, rows: list[BinanceOpenInterestHist], recv_ts: int) -> list[Event]:
        out: list[Event] = []
        for row in rows:
            contracts = num(row.sumOpenInterest, "sumOpenInterest")
            value = num(row.sumOpenInterestValue, "sumOpenInterestValue")
            raw = row.symbol or self._cm_symbol(row.pair, row.contractType)
            symbol, inst = self._symbol(raw)
            base: float | None
            usd: float | None
            if row.symbol and not is_coin_m(row.symbol):
                base, usd = contracts, value  # UM: base coin and USD value
            else:
                base = value  # CM: sumOpenInterestValue is base coin
                size = inst.contract_size if inst is not None and inst.inverse else None
                if size is None:
                    self.stats.unmapped["contract_size"] += 1
                usd = contracts * size if contracts is not None and size is not None else None
            out.append(
                OpenInterest(
                    exchange=EXCHANGE, symbol=symbol, raw_symbol=raw, ts=row.timestamp, recv_ts=recv_ts,
                    oi_contracts=contracts, oi_base=base, oi_usd=usd,
                )
            )
        self.stats.events += len(out)
        return out

    def _cm_symbol(self, pair: str, contract_type: str) -> str:
        """The CM symbol of a (pair, contractType) row, from metadata where it is a dated contract."""
        if contract_type.upper() == "PERPETUAL":
            return f"{pair}_PERP"
        dated = sorted(
            (i for i in self.meta.all() if i.inverse and i.kind == "future" and i.raw_symbol.startswith(pair + "_")),
            key=lambda i: i.expiry_ms or 0,
        )
        idx = {"CURRENT_QUARTER": 0, "NEXT_QUARTER": 1}.get(contract_type.upper())
        if idx is not None and idx < len(dated):
            return dated[idx].raw_symbol
        return f"{pair}_{contract_type}"


def _error_body(body: str | bytes) -> str | None:
    """``code msg`` of a Binance error body (``{"code": -1121, "msg": "Invalid symbol."}``)."""
    try:
        data = _ANY_DEC.decode(body)
    except msgspec.DecodeError:
        return None
    if isinstance(data, dict) and "code" in data and "msg" in data:
        return f"Binance error {data['code']}: {data['msg']}"
    return None


def unified(raw_symbol: str) -> str | None:
    """Unified symbol by Binance's naming rule alone (no metadata)."""
    inst = instrument_from_name(raw_symbol)
    return inst.symbol if inst else None


__all__ = [
    "EXCHANGE",
    "BinanceAdapter",
    "instrument_from_name",
    "is_coin_m",
    "unified",
    "unified_symbol",
]
