"""Binance USDⓈ-M (UM) and COIN-M (CM) futures, server side: WebSocket market streams and REST market data.

Written from Binance's documentation (developers.binance.com/docs/derivatives/…, cited per
function below as ``bn:um/…`` = ``usds-margined-futures/…`` and ``bn:cm/…`` =
``coin-margined-futures/…``) and the shared notes (/work/shared/exchanges.md §1). It must not
import our adapters: it exists to catch their misreadings.

URL layout. Each product has one base that serves both its REST host and its stream host
(``fapi`` + ``fstream`` for UM, ``dapi`` + ``dstream`` for CM), so a client is pointed at it by base
URL and every path below is Binance's own:

=====================================  ==========================================================
``{base}/binance/um/fapi/v1/…``        UM REST (``fapiPublic`` in ccxt); ``…/futures/data/…`` too
``{base}/binance/um/market/ws[/s…]``   UM raw streams, post-2026 "market" route (markPrice, ticker,
                                       forceOrder …); several streams as ``/ws/a/b``
``{base}/binance/um/market/stream``    UM combined streams, ``?streams=a/b/c``
``{base}/binance/um/public/ws|stream`` UM "public" route: ``<symbol>@bookTicker`` only
``{base}/binance/um/ws|stream``        UM legacy root (every stream), as before the split
``{base}/binance/cm/dapi/v1/…``        CM REST; ``…/futures/data/…`` too
``{base}/binance/cm/ws|stream``        CM raw / combined streams (CM was not split)
=====================================  ==========================================================

WebSocket behaviour (bn:um/websocket-market-streams, "Connect" and "Live Subscribing" pages):
raw streams send the bare payload, combined ones ``{"stream":<name>,"data":<payload>}``; the
symbol in a stream name is lowercase (an uppercase or unknown name is accepted and stays silent,
and so does a stream on the wrong UM route); ``SUBSCRIBE``/``UNSUBSCRIBE`` answer
``{"result":null,"id":N}``, ``LIST_SUBSCRIPTIONS`` ``{"result":[…],"id":N}``, ``SET_PROPERTY`` /
``GET_PROPERTY`` handle ``combined``; a bad request gets ``{"error":{"code":C,"msg":M},"id":N}``
with the documented codes (0 unknown property, 1 bad value type, 2 invalid request, 3 invalid
JSON). Limits: at most ``max_streams`` (1024) streams per connection, at most
``max_incoming_per_s`` (10) incoming frames a second (text, ping or pong) or the connection is
closed; the server sends a ping frame every ``ping_interval_s`` (3 min), closes a connection that
has sent no pong for ``pong_timeout_s`` (10 min) and closes every connection at
``max_lifetime_s`` (24 h) with a close frame.

Streams and cadences (market time):

- ``<symbol>@forceOrder``, ``!forceOrder@arr``: the latest liquidation per symbol per 1000 ms,
  nothing when none (bn:um/websocket-market-streams/Liquidation-Order-Streams,
  …/All-Market-Liquidation-Order-Streams; CM the same plus ``o.ps``). ``E`` is the push time,
  ``o.T`` the trade time.
- ``<symbol>@markPrice`` 3 s, ``…@markPrice@1s`` 1 s (bn:um/…/Mark-Price-Stream); UM
  ``!markPrice@arr[@1s]`` (…/Mark-Price-Stream-for-All-market); CM ``<pair>@markPrice[@1s]``, an
  array for every symbol of the pair (bn:cm/…/Mark-Price-of-All-Symbols-of-a-Pair). Dated
  contracts send ``"r":""`` and ``"T":0`` as the CM page documents.
- ``<symbol>@ticker``: UM 2000 ms, CM 500 ms; ``!ticker@arr`` 1000 ms
  (…/Individual-Symbol-Ticker-Streams, …/All-Market-Tickers-Streams). CM ``v`` is contracts and
  ``q`` base-asset volume; UM ``v`` is base and ``q`` quote.
- ``<symbol>@bookTicker``: on every market step (…/Individual-Symbol-Book-Ticker-Streams).

REST (bare JSON; errors ``{"code":<negative>,"msg":…}``; every response carries
``X-MBX-USED-WEIGHT-1M``, the documented request weights summed over a rolling minute; over
``weight_limit_1m`` the answer is 429 ``-1003``): ``exchangeInfo``, ``fundingInfo``,
``premiumIndex``, ``openInterest``, ``ticker/24hr``, ``fundingRate`` and
``/futures/data/openInterestHist`` (bn:um/market-data/rest-api/…, bn:cm/market-data/rest-api/…).
An unknown symbol is HTTP 400 ``{"code":-1121,"msg":"Invalid symbol."}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import zlib
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from aiohttp import WSCloseCode, WSMsgType, web
from aiohttp.typedefs import Handler, Middleware

from streamer.sim.faults import FaultPlan, GarbageKind, RestFault
from streamer.sim.market import (
    DAY_MS,
    HOUR_MS,
    OI_HISTORY_STEP_MS,
    FundingRecord,
    Instrument,
    Liquidation,
    Market,
    Product,
    SymbolState,
)

__all__ = [
    "BinanceConfig",
    "BinanceVenue",
    "book_ticker_payload",
    "exchange_info",
    "force_order_payload",
    "mark_price_payload",
    "parse_stream",
    "premium_index_row",
    "ticker_payload",
    "ticker_row",
]

Json = dict[str, Any]
Category = Literal["market", "public", "legacy", "cm"]

NAME = "binance"


@dataclass(frozen=True, slots=True)
class BinanceConfig:
    """Documented limits, with the defaults Binance publishes; shrink the times in tests.

    Times here are wall-clock seconds (they act on real sockets); stream cadences are market time.
    """

    ping_interval_s: float = 180.0
    pong_timeout_s: float = 600.0
    max_lifetime_s: float = 86_400.0
    lifetime_close_code: int = 1000
    max_streams: int = 1024
    max_incoming_per_s: int = 10
    weight_limit_1m: int = 2400
    legacy_um_paths: bool = True
    send_queue_max: int = 10_000
    close_timeout_s: float = 2.0


# --------------------------------------------------------------------------------------------
# Stream names
# --------------------------------------------------------------------------------------------

StreamKind = Literal["force", "force_all", "mark", "mark_all", "mark_pair", "ticker", "ticker_all", "book"]
EVERY_STEP = 1
"""Cadence meaning "on every market step" (bookTicker is real-time)."""


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """A parsed stream name: what it carries (``kind``), for whom (``target``) and how often."""

    kind: StreamKind
    target: str
    cadence_ms: int


def parse_stream(name: str, market: Market, product: Product, category: Category) -> StreamSpec | None:
    """Parse a Binance stream name for a product and route; ``None`` if Binance would send nothing.

    Symbols in stream names are lowercase (bn:um/websocket-market-streams "All symbols for streams
    are lowercase"); event names keep Binance's camelCase (``@forceOrder``, ``@markPrice``).
    """
    head, _, rest = name.partition("@")
    if not rest:
        return None
    spec: StreamSpec | None = None
    if head.startswith("!"):
        spec = {
            ("!forceOrder", "arr"): StreamSpec("force_all", "", 0),
            ("!ticker", "arr"): StreamSpec("ticker_all", "", 1000),
            ("!markPrice", "arr"): StreamSpec("mark_all", "", 3000) if product == "um" else None,
            ("!markPrice", "arr@1s"): StreamSpec("mark_all", "", 1000) if product == "um" else None,
        }.get((head, rest))
    elif head == head.lower():
        upper = head.upper()
        inst = market.instruments.get(upper)
        if inst is not None and inst.product == product:
            if rest == "forceOrder":
                spec = StreamSpec("force", upper, 0)
            elif rest in ("markPrice", "markPrice@1s"):
                spec = StreamSpec("mark", upper, 1000 if rest.endswith("@1s") else 3000)
            elif rest == "ticker":
                spec = StreamSpec("ticker", upper, 2000 if product == "um" else 500)
            elif rest == "bookTicker":
                spec = StreamSpec("book", upper, EVERY_STEP)
        elif product == "cm" and upper in market.pairs("cm") and rest in ("markPrice", "markPrice@1s"):
            spec = StreamSpec("mark_pair", upper, 1000 if rest.endswith("@1s") else 3000)
    if spec is None:
        return None
    if category == "market" and spec.kind == "book":
        return None
    if category == "public" and spec.kind != "book":
        return None
    return spec


# --------------------------------------------------------------------------------------------
# Wire payloads (pure functions of market state)
# --------------------------------------------------------------------------------------------


def _d(x: float, decimals: int) -> str:
    return f"{x:.{decimals}f}"


def _f8(x: float) -> str:
    return f"{x:.8f}"


def force_order_payload(inst: Instrument, liq: Liquidation, event_ms: int) -> Json:
    """``forceOrder`` event (bn:um/…/Liquidation-Order-Streams; bn:cm/… adds ``o.ps``).

    UM quantities are base coin, CM quantities contracts; ``p`` is the order price and ``ap`` the
    average fill price; ``T`` is the trade time, ``E`` the push time.
    """
    order: Json = {"s": inst.symbol}
    if inst.product == "cm":
        order["ps"] = inst.pair
    order.update(
        {
            "S": liq.side,
            "o": "LIMIT",
            "f": "IOC",
            "q": _d(liq.orig_qty, inst.qty_decimals),
            "p": _d(liq.price, inst.price_decimals),
            "ap": _d(liq.avg_price, inst.price_decimals),
            "X": "FILLED" if liq.qty >= liq.orig_qty else "PARTIALLY_FILLED",
            "l": _d(liq.qty, inst.qty_decimals),
            "z": _d(liq.qty, inst.qty_decimals),
            "T": liq.trade_ms,
        }
    )
    return {"e": "forceOrder", "E": event_ms, "o": order}


def _settle_estimate(st: SymbolState) -> float:
    return st.index_price * (1 + st.premium * 0.1)


def mark_price_payload(inst: Instrument, st: SymbolState, event_ms: int) -> Json:
    """``markPriceUpdate`` (bn:um/…/Mark-Price-Stream: ``e,E,s,p,i,P,r,T``; bn:cm/…: same keys).

    For delivery contracts ``r`` is ``""`` and ``T`` is 0 (bn:cm/…/Mark-Price-Stream).
    """
    return {
        "e": "markPriceUpdate",
        "E": event_ms,
        "s": inst.symbol,
        "p": _f8(st.mark_price),
        "i": _f8(st.index_price),
        "P": _f8(_settle_estimate(st)),
        "r": _f8(st.funding_rate) if inst.perpetual else "",
        "T": st.next_funding_ms if inst.perpetual else 0,
    }


def _vwap(inst: Instrument, st: SymbolState) -> float:
    """24 h volume-weighted average price (CM: contracts × size over base volume)."""
    if st.volume_24h <= 0 or st.quote_volume_24h <= 0:
        return st.last_price
    if inst.inverse:
        return st.volume_24h * inst.contract_size / st.quote_volume_24h
    return st.quote_volume_24h / st.volume_24h


def _price_change(st: SymbolState) -> tuple[float, float]:
    change = st.last_price - st.open_24h
    return change, (change / st.open_24h * 100 if st.open_24h else 0.0)


def ticker_payload(inst: Instrument, st: SymbolState, event_ms: int) -> Json:
    """``24hrTicker`` (bn:um/…/Individual-Symbol-Ticker-Streams; bn:cm/… adds ``ps``).

    ``P`` is a percent. UM: ``v`` base, ``q`` quote; CM: ``v`` contracts, ``q`` base coin.
    """
    change, pct = _price_change(st)
    pd = inst.price_decimals
    out: Json = {"e": "24hrTicker", "E": event_ms, "s": inst.symbol}
    if inst.product == "cm":
        out["ps"] = inst.pair
    out.update(
        {
            "p": _d(change, pd),
            "P": _d(pct, 3),
            "w": _d(_vwap(inst, st), pd),
            "c": _d(st.last_price, pd),
            "Q": _d(st.last_qty, inst.qty_decimals),
            "o": _d(st.open_24h, pd),
            "h": _d(st.high_24h, pd),
            "l": _d(st.low_24h, pd),
            "v": _d(st.volume_24h, inst.qty_decimals),
            "q": _d(st.quote_volume_24h, 8 if inst.inverse else 2),
            "O": event_ms - DAY_MS,
            "C": event_ms,
            "F": st.first_trade_id,
            "L": st.last_trade_id,
            "n": st.trade_count_24h,
        }
    )
    return out


def book_ticker_payload(inst: Instrument, st: SymbolState, event_ms: int) -> Json:
    """``bookTicker`` (bn:um/…/Individual-Symbol-Book-Ticker-Streams: ``e,u,E,T,s,b,B,a,A``;
    bn:cm/…: ``e,u,s,ps,b,B,a,A,T,E``)."""
    pd, qd = inst.price_decimals, inst.qty_decimals
    if inst.product == "cm":
        return {
            "e": "bookTicker",
            "u": st.book_update_id,
            "s": inst.symbol,
            "ps": inst.pair,
            "b": _d(st.bid_price, pd),
            "B": _d(st.bid_qty, qd),
            "a": _d(st.ask_price, pd),
            "A": _d(st.ask_qty, qd),
            "T": st.updated_ms,
            "E": event_ms,
        }
    return {
        "e": "bookTicker",
        "u": st.book_update_id,
        "E": event_ms,
        "T": st.updated_ms,
        "s": inst.symbol,
        "b": _d(st.bid_price, pd),
        "B": _d(st.bid_qty, qd),
        "a": _d(st.ask_price, pd),
        "A": _d(st.ask_qty, qd),
    }


def premium_index_row(inst: Instrument, st: SymbolState, now_ms: int) -> Json:
    """One ``premiumIndex`` row (bn:um/market-data/rest-api/Mark-Price; bn:cm/…/Index-Price-and-Mark-Price
    adds ``pair``; for delivery contracts ``lastFundingRate``/``interestRate`` are ``""`` and
    ``nextFundingTime`` 0)."""
    row: Json = {"symbol": inst.symbol}
    if inst.product == "cm":
        row["pair"] = inst.pair
    row.update(
        {
            "markPrice": _f8(st.mark_price),
            "indexPrice": _f8(st.index_price),
            "estimatedSettlePrice": _f8(_settle_estimate(st)),
            "lastFundingRate": _f8(st.funding_rate) if inst.perpetual else "",
            "interestRate": "0.00010000" if inst.perpetual else "",
            "nextFundingTime": st.next_funding_ms if inst.perpetual else 0,
            "time": now_ms,
        }
    )
    return row


def ticker_row(inst: Instrument, st: SymbolState, now_ms: int) -> Json:
    """One ``ticker/24hr`` row (bn:um/market-data/rest-api/24hr-Ticker-Price-Change-Statistics;
    CM adds ``pair`` and reports ``volume`` in contracts plus ``baseVolume`` in base coin)."""
    change, pct = _price_change(st)
    pd, qd = inst.price_decimals, inst.qty_decimals
    row: Json = {"symbol": inst.symbol}
    if inst.product == "cm":
        row["pair"] = inst.pair
    row.update(
        {
            "priceChange": _d(change, pd),
            "priceChangePercent": _d(pct, 3),
            "weightedAvgPrice": _d(_vwap(inst, st), pd),
            "lastPrice": _d(st.last_price, pd),
            "lastQty": _d(st.last_qty, qd),
            "openPrice": _d(st.open_24h, pd),
            "highPrice": _d(st.high_24h, pd),
            "lowPrice": _d(st.low_24h, pd),
            "volume": _d(st.volume_24h, qd),
        }
    )
    if inst.product == "cm":
        row["baseVolume"] = _d(st.quote_volume_24h, 8)
    else:
        row["quoteVolume"] = _d(st.quote_volume_24h, 2)
    row.update(
        {
            "openTime": now_ms - DAY_MS,
            "closeTime": now_ms,
            "firstId": st.first_trade_id,
            "lastId": st.last_trade_id,
            "count": st.trade_count_24h,
        }
    )
    return row


def _filters(inst: Instrument) -> list[Json]:
    tick = _d(inst.tick, inst.price_decimals)
    step = _d(inst.step, inst.qty_decimals)
    max_price = _d(inst.start_price * 20, inst.price_decimals)
    out: list[Json] = [
        {"filterType": "PRICE_FILTER", "minPrice": tick, "maxPrice": max_price, "tickSize": tick},
        {"filterType": "LOT_SIZE", "stepSize": step, "maxQty": "1000000", "minQty": step},
        {"filterType": "MARKET_LOT_SIZE", "stepSize": step, "maxQty": "120000", "minQty": step},
        {"filterType": "MAX_NUM_ORDERS", "limit": 200},
        {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
    ]
    if inst.product == "um":
        out.append({"filterType": "MIN_NOTIONAL", "notional": "5"})
    out.append(
        {"filterType": "PERCENT_PRICE", "multiplierUp": "1.0500", "multiplierDown": "0.9500", "multiplierDecimal": "4"}
    )
    return out


_ORDER_TYPES = ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"]


def _symbol_row(inst: Instrument) -> Json:
    common: Json = {
        "symbol": inst.symbol,
        "pair": inst.pair,
        "contractType": inst.contract_type,
        "deliveryDate": inst.delivery_ms,
        "onboardDate": inst.onboard_ms,
    }
    if inst.product == "um":
        common.update({"status": "TRADING"})
    else:
        common.update({"contractStatus": "TRADING", "contractSize": int(inst.contract_size)})
    common.update(
        {
            "maintMarginPercent": "2.5000",
            "requiredMarginPercent": "5.0000",
            "baseAsset": inst.base_asset,
            "quoteAsset": inst.quote_asset,
            "marginAsset": inst.margin_asset,
            "pricePrecision": inst.price_decimals,
            "quantityPrecision": inst.qty_decimals,
            "baseAssetPrecision": 8,
            "quotePrecision": 8,
            "underlyingType": "COIN",
            "underlyingSubType": list(inst.underlying_sub_type),
            "triggerProtect": "0.0500",
            "liquidationFee": "0.012500" if inst.product == "um" else "0.010000",
            "marketTakeBound": "0.05",
            "filters": _filters(inst),
            "orderTypes": _ORDER_TYPES,
            "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
        }
    )
    if inst.product == "um":
        common.update({"settlePlan": 0, "maxMoveOrderLimit": 10000})
    else:
        common["equalQtyPrecision"] = 4
    return common


def exchange_info(market: Market, product: Product, now_ms: int, weight_limit: int) -> Json:
    """``exchangeInfo`` (bn:um/market-data/rest-api/Exchange-Information; bn:cm/… has no
    ``assets``, and its symbols carry ``contractStatus`` and ``contractSize`` instead of ``status``)."""
    limits: list[Json] = [
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": weight_limit},
        {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
    ]
    body: Json = {"timezone": "UTC", "serverTime": now_ms}
    if product == "um":
        limits.append({"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300})
        body["futuresType"] = "U_MARGINED"
    body["rateLimits"] = limits
    body["exchangeFilters"] = []
    if product == "um":
        body["assets"] = [
            {"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"},
            {"asset": "BTC", "marginAvailable": True, "autoAssetExchange": "-0.10000000"},
            {"asset": "BNB", "marginAvailable": True, "autoAssetExchange": "-10"},
            {"asset": "ETH", "marginAvailable": True, "autoAssetExchange": "-5"},
            {"asset": "USDC", "marginAvailable": True, "autoAssetExchange": "-10000"},
        ]
    body["symbols"] = [_symbol_row(i) for i in market.instruments.values() if i.product == product]
    return body


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class _ApiError(Exception):
    """A Binance REST error: HTTP ``status`` with body ``{"code": code, "msg": msg}``."""

    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(msg)
        self.status = status
        self.code = code
        self.msg = msg


def _invalid_symbol() -> _ApiError:
    return _ApiError(400, -1121, "Invalid symbol.")


def _mandatory(name: str) -> _ApiError:
    return _ApiError(400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def _not_valid(name: str) -> _ApiError:
    return _ApiError(400, -1130, f"Data sent for parameter '{name}' is not valid.")


_FAULT_BODIES: dict[int, tuple[str, str]] = {
    429: (
        "application/json",
        '{"code":-1003,"msg":"Too many requests; current limit of IP(127.0.0.1) is %(limit)d requests per'
        ' minute. Please use the websocket for live updates to avoid polling the API."}',
    ),
    418: (
        "application/json",
        '{"code":-1003,"msg":"Way too many requests; IP(127.0.0.1) banned until %(until)d. Please use the'
        ' websocket for live updates to avoid bans."}',
    ),
    500: ("application/json", '{"code":-1000,"msg":"An unknown error occured while processing the request."}'),
    502: ("text/html", "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"),
    503: (
        "application/json",
        '{"code":-1008,"msg":"Server is currently overloaded with other requests. Please try again in a few minutes."}',
    ),
    504: ("text/html", "<html><head><title>504 Gateway Time-out</title></head><body></body></html>"),
}


# --------------------------------------------------------------------------------------------
# Connections
# --------------------------------------------------------------------------------------------

_QueueItem = tuple[bool, str | bytes]  # (is market data, frame)


class _Conn:
    """One client WebSocket: subscriptions, an outgoing queue, and its ping/lifetime keeper."""

    def __init__(
        self,
        venue: BinanceVenue,
        product: _Product,
        category: Category,
        ws: web.WebSocketResponse,
        request: web.Request,
        combined: bool,
    ) -> None:
        self.venue = venue
        self.product = product
        self.category = category
        self.ws = ws
        self.request = request
        self.combined = combined
        self.streams: dict[str, None] = {}
        self.queue: asyncio.Queue[_QueueItem] = asyncio.Queue(venue.config.send_queue_max)
        cfg = venue.config
        now = time.monotonic()
        self.opened_mono = now
        self.last_pong_mono = now
        self.deadline_mono = now + cfg.max_lifetime_s
        self.deadline_code = cfg.lifetime_close_code
        self.deadline_reason = "connection lifetime reached"
        self.close_request: tuple[int, str] | None = None
        self.wake = asyncio.Event()
        self.incoming: deque[float] = deque()
        self.pings_sent = 0

    @property
    def venue_key(self) -> str:
        return self.product.key

    # FaultTarget --------------------------------------------------------------------------

    async def close(self, code: int, reason: str) -> None:
        await self.ws.close(code=code, message=reason.encode())

    def abort(self) -> None:
        transport = self.request.transport
        if transport is not None:
            transport.abort()

    def inject(self, kind: GarbageKind) -> None:
        self._put(False, self.venue.garbage(self, kind))

    def close_at(self, deadline_mono: float, code: int, reason: str) -> None:
        if deadline_mono < self.deadline_mono:
            self.deadline_mono, self.deadline_code, self.deadline_reason = deadline_mono, code, reason
            self.wake.set()

    # sending ------------------------------------------------------------------------------

    def push(self, stream: str, payload: str) -> None:
        """Queue a market-data payload from ``stream`` (enveloped on combined connections)."""
        frame = _envelope(stream, payload) if self.combined else payload
        self._put(True, frame)
        spoiled = self.venue.faults.garbage_for(self.venue_key, frame)
        if spoiled is not None:
            self._put(True, spoiled)

    def reply(self, body: Json) -> None:
        self._put(False, orjson.dumps(body).decode())

    def _put(self, is_data: bool, frame: str | bytes) -> None:
        try:
            self.queue.put_nowait((is_data, frame))
        except asyncio.QueueFull:
            self.venue.stats["slow_consumer_closes"] += 1
            self.close_request = (WSCloseCode.POLICY_VIOLATION, "slow consumer")
            self.wake.set()

    async def write_loop(self) -> None:
        faults = self.venue.faults
        while True:
            is_data, frame = await self.queue.get()
            if is_data and faults.is_stalled(self.venue_key):
                self.venue.stats["stalled_frames_dropped"] += 1
                continue
            try:
                if isinstance(frame, bytes):
                    await self.ws.send_bytes(frame)
                else:
                    await self.ws.send_str(frame)
            except (ConnectionError, RuntimeError):
                return
            self.venue.stats["frames_sent"] += 1

    async def keep_loop(self) -> None:
        """Send pings, enforce the pong timeout and the lifetime, honour close requests."""
        cfg = self.venue.config
        next_ping = self.opened_mono + cfg.ping_interval_s
        while not self.ws.closed:
            now = time.monotonic()
            if self.close_request is not None:
                code, reason = self.close_request
                await self.ws.close(code=code, message=reason.encode())
                return
            if now >= self.deadline_mono:
                self.venue.stats["lifetime_closes"] += 1
                await self.ws.close(code=self.deadline_code, message=self.deadline_reason.encode())
                return
            if now - self.last_pong_mono >= cfg.pong_timeout_s:
                self.venue.stats["pong_timeout_closes"] += 1
                await self.ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"pong timeout")
                return
            if now >= next_ping:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await self.ws.ping(str(int(time.time() * 1000)).encode())
                self.pings_sent += 1
                next_ping = now + cfg.ping_interval_s
            wait = min(next_ping, self.deadline_mono, self.last_pong_mono + cfg.pong_timeout_s) - now
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=max(wait, 0.001))

    def count_incoming(self) -> bool:
        """Record one incoming frame; ``False`` when the per-second limit is exceeded."""
        now = time.monotonic()
        self.incoming.append(now)
        while self.incoming and now - self.incoming[0] >= 1.0:
            self.incoming.popleft()
        return len(self.incoming) <= self.venue.config.max_incoming_per_s


# --------------------------------------------------------------------------------------------
# Products and the venue
# --------------------------------------------------------------------------------------------


class _WeightMeter:
    """Request weight used over a rolling minute (``X-MBX-USED-WEIGHT-1M``)."""

    def __init__(self) -> None:
        self._events: deque[tuple[float, int]] = deque()
        self.used = 0

    def add(self, weight: int, now: float) -> int:
        self._prune(now)
        self._events.append((now, weight))
        self.used += weight
        return self.used

    def retry_after_s(self, limit: int, now: float) -> int:
        """Seconds until the rolling sum drops to ``limit`` or below."""
        total = self.used
        for t, w in self._events:
            if total <= limit:
                break
            total -= w
            if total <= limit:
                return max(1, int(t + 60 - now) + 1)
        return 1

    def _prune(self, now: float) -> None:
        while self._events and now - self._events[0][0] >= 60.0:
            _, w = self._events.popleft()
            self.used -= w


class _Product:
    """Per-product state: subscribers by stream name, cadence bookkeeping, weights."""

    def __init__(self, name: Product, market: Market) -> None:
        self.name: Product = name
        self.key = f"{NAME}.{name}"
        self.prefix = f"/{NAME}/{name}"
        self.subs: dict[str, set[_Conn]] = {}
        self.specs: dict[str, StreamSpec | None] = {}
        self.next_due: dict[str, int] = {}
        self.cursor = len(market.pushed)
        self.meter = _WeightMeter()

    def spec(self, name: str, market: Market, category: Category) -> StreamSpec | None:
        key = f"{category}|{name}"
        if key not in self.specs:
            self.specs[key] = parse_stream(name, market, self.name, category)
        return self.specs[key]


class BinanceVenue:
    """Binance UM and CM on the simulator's app. See the module docstring for URLs and behaviour."""

    def __init__(self, market: Market, faults: FaultPlan, config: BinanceConfig | None = None) -> None:
        self.market = market
        self.faults = faults
        self.config = config or BinanceConfig()
        self.um = _Product("um", market)
        self.cm = _Product("cm", market)
        self.connections: set[_Conn] = set()
        self.stats: Counter[str] = Counter()

    @property
    def name(self) -> str:
        return NAME

    # -- wiring -----------------------------------------------------------------------------

    def install(self, app: web.Application) -> None:
        for prod in (self.um, self.cm):
            sub = web.Application(middlewares=[self._rest_middleware(prod)])
            self._add_rest_routes(sub, prod)
            self._add_ws_routes(sub, prod)
            app.add_subapp(prod.prefix, sub)

    def urls(self, http_root: str, ws_root: str) -> dict[str, str]:
        out = {
            "binance_um_rest": f"{http_root}{self.um.prefix}",
            "binance_um_ws": f"{ws_root}{self.um.prefix}/market",
            "binance_um_ws_public": f"{ws_root}{self.um.prefix}/public",
        }
        if self.config.legacy_um_paths:
            out["binance_um_ws_legacy"] = f"{ws_root}{self.um.prefix}"
        out["binance_cm_rest"] = f"{http_root}{self.cm.prefix}"
        out["binance_cm_ws"] = f"{ws_root}{self.cm.prefix}"
        return out

    async def close(self) -> None:
        for conn in list(self.connections):
            with contextlib.suppress(ConnectionError, RuntimeError):
                await conn.close(WSCloseCode.GOING_AWAY, "server shutdown")

    # -- ticking ----------------------------------------------------------------------------

    def on_tick(self, now_ms: int) -> None:
        market = self.market
        t = market.now_ms
        for prod in (self.um, self.cm):
            self._push_liquidations(prod)
            cache: dict[tuple[StreamKind, str], str] = {}
            for name, conns in prod.subs.items():
                if not conns:
                    continue
                due = prod.next_due.get(name)
                if due is None or t < due:
                    continue
                spec = self._any_spec(prod, name, conns)
                if spec is None or spec.cadence_ms == 0:
                    continue
                prod.next_due[name] = (t // spec.cadence_ms + 1) * spec.cadence_ms
                key = (spec.kind, spec.target)
                payload = cache.get(key)
                if payload is None:
                    payload = orjson.dumps(self._build(prod, spec, t)).decode()
                    cache[key] = payload
                for conn in conns:
                    if prod.spec(name, market, conn.category) is not None:
                        conn.push(name, payload)

    def _any_spec(self, prod: _Product, name: str, conns: Iterable[_Conn]) -> StreamSpec | None:
        for conn in conns:
            spec = prod.spec(name, self.market, conn.category)
            if spec is not None:
                return spec
        return None

    def _build(self, prod: _Product, spec: StreamSpec, t: int) -> Json | list[Json]:
        m = self.market
        if spec.kind == "mark":
            return mark_price_payload(m.instruments[spec.target], m.state(spec.target), t)
        if spec.kind == "mark_all":
            return [mark_price_payload(m.instruments[s], m.state(s), t) for s in m.symbols(prod.name)]
        if spec.kind == "mark_pair":
            return [
                mark_price_payload(i, m.state(i.symbol), t)
                for i in m.instruments.values()
                if i.product == prod.name and i.pair == spec.target
            ]
        if spec.kind == "ticker":
            return ticker_payload(m.instruments[spec.target], m.state(spec.target), t)
        if spec.kind == "ticker_all":
            return [ticker_payload(m.instruments[s], m.state(s), t) for s in m.symbols(prod.name)]
        if spec.kind == "book":
            return book_ticker_payload(m.instruments[spec.target], m.state(spec.target), t)
        raise AssertionError(f"not a periodic stream: {spec}")

    def _push_liquidations(self, prod: _Product) -> None:
        pushed = self.market.pushed
        new = pushed[prod.cursor :]
        prod.cursor = len(pushed)
        for p in new:
            liq = p.liquidation
            if liq.product != prod.name:
                continue
            inst = self.market.instruments[liq.symbol]
            payload: str | None = None
            for name in (f"{liq.symbol.lower()}@forceOrder", "!forceOrder@arr"):
                for conn in prod.subs.get(name, ()):
                    if prod.spec(name, self.market, conn.category) is None:
                        continue
                    if payload is None:
                        payload = orjson.dumps(force_order_payload(inst, liq, p.push_ms)).decode()
                    conn.push(name, payload)

    # -- subscriptions ----------------------------------------------------------------------

    def _subscribe(self, conn: _Conn, names: Iterable[str]) -> None:
        prod = conn.product
        for name in names:
            if name in conn.streams:
                continue
            conn.streams[name] = None
            spec = prod.spec(name, self.market, conn.category)
            if spec is None:
                self.stats["silent_streams"] += 1
            elif spec.cadence_ms and name not in prod.next_due:
                t = self.market.now_ms
                prod.next_due[name] = (t // spec.cadence_ms + 1) * spec.cadence_ms
            prod.subs.setdefault(name, set()).add(conn)

    def _unsubscribe(self, conn: _Conn, names: Iterable[str]) -> None:
        prod = conn.product
        for name in list(names):
            conn.streams.pop(name, None)
            subs = prod.subs.get(name)
            if subs is not None:
                subs.discard(conn)
                if not subs:
                    del prod.subs[name]
                    prod.next_due.pop(name, None)

    # -- WebSocket endpoints ----------------------------------------------------------------

    def _add_ws_routes(self, app: web.Application, prod: _Product) -> None:
        def handler(category: Category, combined: bool) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
            async def ws_handler(request: web.Request) -> web.StreamResponse:
                return await self._ws_session(request, prod, category, combined)

            return ws_handler

        if prod.name == "um":
            roots: list[tuple[str, Category]] = [("/market", "market"), ("/public", "public")]
            if self.config.legacy_um_paths:
                roots.append(("", "legacy"))
        else:
            roots = [("", "cm")]
        for root, category in roots:
            app.router.add_get(f"{root}/ws", handler(category, False))
            app.router.add_get(f"{root}/ws/{{streams:.+}}", handler(category, False))
            app.router.add_get(f"{root}/stream", handler(category, True))

    async def _ws_session(
        self, request: web.Request, prod: _Product, category: Category, combined: bool
    ) -> web.StreamResponse:
        fault = self.faults.take_handshake_fault(prod.key, request.path)
        if fault is not None:
            await self.faults.sleep(fault.delay_s)
            headers = {"Retry-After": str(fault.retry_after_s)} if fault.retry_after_s is not None else {}
            return web.Response(
                status=fault.status, text=f"simulated handshake failure {fault.status}", headers=headers
            )
        if combined:
            names = [n for n in request.query.get("streams", "").split("/") if n]
        else:
            names = [n for n in request.match_info.get("streams", "").split("/") if n]
        if len(names) > self.config.max_streams:
            return web.Response(
                status=400,
                text=f"Too many streams: at most {self.config.max_streams} per connection.",
            )
        ws = web.WebSocketResponse(
            autoping=False, compress=False, timeout=self.config.close_timeout_s, max_msg_size=1 << 20
        )
        await ws.prepare(request)
        conn = _Conn(self, prod, category, ws, request, combined)
        self.connections.add(conn)
        self._subscribe(conn, names)
        self.faults.register(conn)
        self.stats["connections"] += 1
        writer = asyncio.create_task(conn.write_loop(), name=f"sim-binance-write-{id(conn):x}")
        keeper = asyncio.create_task(conn.keep_loop(), name=f"sim-binance-keep-{id(conn):x}")
        try:
            await self._read_loop(conn)
        finally:
            writer.cancel()
            keeper.cancel()
            await asyncio.gather(writer, keeper, return_exceptions=True)
            self._unsubscribe(conn, list(conn.streams))
            self.faults.unregister(conn)
            self.connections.discard(conn)
        return ws

    async def _read_loop(self, conn: _Conn) -> None:
        ws = conn.ws
        while True:
            msg = await ws.receive()
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                return
            if not conn.count_incoming():
                self.stats["rate_limit_closes"] += 1
                await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"Too many messages")
                return
            if msg.type == WSMsgType.PING:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await ws.pong(msg.data)
            elif msg.type == WSMsgType.PONG:
                conn.last_pong_mono = time.monotonic()
            elif msg.type == WSMsgType.TEXT:
                conn.reply(self._control(conn, msg.data))
            else:
                conn.reply(_ws_error(3, "Invalid JSON: expected value at line 1 column 1", None))

    def _control(self, conn: _Conn, text: str) -> Json:
        """Answer one live-subscription request.

        bn:um/websocket-market-streams/Live-Subscribing-Unsubscribing-to-streams; error codes as in
        the "Error Messages" table there (0 unknown property, 1 bad value type, 2 invalid request,
        3 invalid JSON); the futures pages define ``id`` as an unsigned integer.
        """
        try:
            req = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            return _ws_error(3, f"Invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", None)
        if not isinstance(req, dict):
            return _ws_error(2, "Invalid request: expected a JSON object", None)
        raw_id = req.get("id")
        echo_id = raw_id if isinstance(raw_id, int | str) or raw_id is None else None
        if "method" not in req:
            return _ws_error(2, f"Invalid request: missing field `method` at line 1 column {len(text)}", echo_id)
        method = req["method"]
        methods = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")
        if not isinstance(method, str) or method not in methods:
            return _ws_error(
                2,
                f"Invalid request: unknown variant `{method}`, expected one of `SUBSCRIBE`, `UNSUBSCRIBE`, "
                "`LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, `GET_PROPERTY` at line 1 column 28",
                echo_id,
            )
        if isinstance(raw_id, bool) or not isinstance(raw_id, int) or not 0 <= raw_id < 2**64:
            return _ws_error(2, "Invalid request: request ID must be an unsigned integer", echo_id)
        params = req.get("params", [])
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
                return _ws_error(2, "Invalid request: params must be an array of stream names", raw_id)
            if method == "SUBSCRIBE":
                new = [p for p in dict.fromkeys(params) if p not in conn.streams]
                if len(conn.streams) + len(new) > self.config.max_streams:
                    return _ws_error(
                        2, f"Invalid request: too many streams; the limit is {self.config.max_streams}", raw_id
                    )
                self._subscribe(conn, new)
            else:
                self._unsubscribe(conn, params)
            return {"result": None, "id": raw_id}
        if method == "LIST_SUBSCRIPTIONS":
            return {"result": list(conn.streams), "id": raw_id}
        if not isinstance(params, list) or not params or not isinstance(params[0], str):
            return _ws_error(2, "Invalid request: property name must be a string", raw_id)
        if params[0] != "combined":
            return _ws_error(0, "Unknown property", raw_id)
        if method == "GET_PROPERTY":
            return {"result": conn.combined, "id": raw_id}
        if len(params) != 2 or not isinstance(params[1], bool):
            return _ws_error(1, "Invalid value type: expected Boolean", raw_id)
        conn.combined = params[1]
        return {"result": None, "id": raw_id}

    def garbage(self, conn: _Conn, kind: GarbageKind) -> str | bytes:
        """One malformed frame of ``kind`` for ``conn`` (faults.send_garbage)."""
        m = self.market
        symbol = m.symbols(conn.product.name)[0]
        stream = next(iter(conn.streams), f"{symbol.lower()}@markPrice")
        payload = orjson.dumps(mark_price_payload(m.instruments[symbol], m.state(symbol), m.now_ms)).decode()
        if kind == "binary":
            return b"\x00\x9fsimulated binary garbage\xff"
        if kind == "text":
            return "<html><body>502 Bad Gateway</body></html>"
        if kind == "wrong_types":
            st = m.state(symbol)
            payload = orjson.dumps(
                {
                    "e": "markPriceUpdate",
                    "E": str(m.now_ms),
                    "s": symbol,
                    "p": st.mark_price,
                    "i": None,
                    "r": 1,
                    "T": "x",
                }
            ).decode()
        elif kind == "unknown_event":
            payload = orjson.dumps({"e": "simUnknownEvent", "E": m.now_ms, "s": symbol}).decode()
        frame = _envelope(stream, payload) if conn.combined else payload
        if kind == "truncated":
            return frame[: len(frame) // 2]
        return frame

    # -- REST -------------------------------------------------------------------------------

    def _rest_middleware(self, prod: _Product) -> Middleware:
        @web.middleware
        async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
            if request.headers.get("Upgrade", "").lower() == "websocket":
                return await handler(request)
            now = time.monotonic()
            used = prod.meter.add(self._weight(prod, request), now)
            fault = self.faults.take_rest_fault(prod.key, request.path)
            if fault is not None and fault.delay_s > 0:
                await self.faults.sleep(fault.delay_s)
            resp: web.StreamResponse
            if fault is not None and fault.status is not None:
                resp = self._fault_response(fault)
            elif used > self.config.weight_limit_1m:
                self.stats["weight_limit_429"] += 1
                limit = self.config.weight_limit_1m
                resp = web.Response(
                    status=429,
                    text=_FAULT_BODIES[429][1] % {"limit": limit},
                    content_type="application/json",
                    headers={"Retry-After": str(prod.meter.retry_after_s(limit, now))},
                )
            else:
                try:
                    resp = await handler(request)
                except _ApiError as err:
                    resp = web.Response(
                        body=orjson.dumps({"code": err.code, "msg": err.msg}),
                        status=err.status,
                        content_type="application/json",
                    )
                except web.HTTPException as exc:
                    resp = web.Response(status=exc.status, text=exc.text or exc.reason)
            resp.headers["X-MBX-USED-WEIGHT-1M"] = str(used)
            return resp

        return middleware

    def _fault_response(self, fault: RestFault) -> web.Response:
        status = fault.status or 500
        headers = {"Retry-After": str(fault.retry_after_s)} if fault.retry_after_s is not None else {}
        if fault.body is not None:
            return web.Response(status=status, text=fault.body, headers=headers, content_type="application/json")
        content_type, template = _FAULT_BODIES.get(status, _FAULT_BODIES[500])
        until = int(time.time() * 1000) + 1000 * (fault.retry_after_s or 0)
        text = template % {"limit": self.config.weight_limit_1m, "until": until} if "%(" in template else template
        return web.Response(status=status, text=text, headers=headers, content_type=content_type)

    def _weight(self, prod: _Product, request: web.Request) -> int:
        """Documented request weights (bn:um/market-data/rest-api/…; bn:cm/…)."""
        rel = request.path[len(prod.prefix) :]
        endpoint = rel.rsplit("/v1/", 1)[-1] if "/v1/" in rel else rel
        has_symbol = "symbol" in request.query or (prod.name == "cm" and "pair" in request.query)
        if endpoint == "premiumIndex":
            return 1 if prod.name == "um" and has_symbol else 10
        if endpoint == "ticker/24hr":
            return 1 if has_symbol else 40
        if endpoint in ("fundingInfo",):
            return 0
        if endpoint == "fundingRate" or rel.startswith("/futures/data/"):
            return 0 if prod.name == "um" else 1  # UM: separate 500/5 min and 1000/5 min IP limits
        return 1

    def _add_rest_routes(self, app: web.Application, prod: _Product) -> None:
        api = "/fapi/v1" if prod.name == "um" else "/dapi/v1"
        routes: dict[str, Callable[[web.Request, _Product], Json | list[Json]]] = {
            f"{api}/ping": lambda _r, _p: {},
            f"{api}/time": lambda _r, _p: {"serverTime": self.market.now_ms},
            f"{api}/exchangeInfo": lambda _r, p: exchange_info(
                self.market, p.name, self.market.now_ms, self.config.weight_limit_1m
            ),
            f"{api}/fundingInfo": self._funding_info,
            f"{api}/premiumIndex": self._premium_index,
            f"{api}/openInterest": self._open_interest,
            f"{api}/ticker/24hr": self._ticker_24hr,
            f"{api}/fundingRate": self._funding_rate,
            "/futures/data/openInterestHist": self._open_interest_hist,
            "/futures/data/globalLongShortAccountRatio": self._long_short_account_ratio,
        }
        for path, fn in routes.items():
            app.router.add_get(path, _json_handler(fn, prod))

    # REST handlers ---------------------------------------------------------------------------

    def _instrument(self, prod: _Product, symbol: str) -> Instrument:
        inst = self.market.instruments.get(symbol)
        if inst is None or inst.product != prod.name:
            raise _invalid_symbol()
        return inst

    def _funding_info(self, _request: web.Request, prod: _Product) -> list[Json]:
        """bn:um/market-data/rest-api/Get-Funding-Rate-Info: only symbols with an adjusted cap/floor
        or funding interval are listed."""
        rows: list[Json] = []
        for i in self.market.instruments.values():
            cap = i.adjusted_funding_cap
            if i.product == prod.name and i.perpetual and cap is not None:
                rows.append(
                    {
                        "symbol": i.symbol,
                        "adjustedFundingRateCap": _f8(cap),
                        "adjustedFundingRateFloor": _f8(-cap),
                        "fundingIntervalHours": i.funding_interval_h,
                        "disclaimer": False,
                    }
                )
        return rows

    def _selected(self, request: web.Request, prod: _Product) -> list[Instrument]:
        symbol = request.query.get("symbol")
        pair = request.query.get("pair") if prod.name == "cm" else None
        if symbol is not None and pair is not None:
            raise _ApiError(400, -1128, "Combination of optional parameters invalid.")
        if symbol is not None:
            return [self._instrument(prod, symbol)]
        insts = [i for i in self.market.instruments.values() if i.product == prod.name]
        if pair is not None:
            insts = [i for i in insts if i.pair == pair]
            if not insts:
                raise _invalid_symbol()
        return insts

    def _premium_index(self, request: web.Request, prod: _Product) -> Json | list[Json]:
        m = self.market
        rows = [premium_index_row(i, m.state(i.symbol), m.now_ms) for i in self._selected(request, prod)]
        if prod.name == "um" and "symbol" in request.query:
            return rows[0]
        return rows

    def _ticker_24hr(self, request: web.Request, prod: _Product) -> Json | list[Json]:
        m = self.market
        rows = [ticker_row(i, m.state(i.symbol), m.now_ms) for i in self._selected(request, prod)]
        if prod.name == "um" and "symbol" in request.query:
            return rows[0]
        return rows

    def _open_interest(self, request: web.Request, prod: _Product) -> Json:
        """bn:um/market-data/rest-api/Open-Interest (base coin); bn:cm/… (contracts, plus pair and
        contractType)."""
        symbol = request.query.get("symbol")
        if not symbol:
            raise _mandatory("symbol")
        inst = self._instrument(prod, symbol)
        st = self.market.state(symbol)
        oi = _d(st.open_interest, inst.qty_decimals)
        if prod.name == "um":
            return {"openInterest": oi, "symbol": symbol, "time": self.market.now_ms}
        return {
            "symbol": symbol,
            "pair": inst.pair,
            "openInterest": oi,
            "contractType": inst.contract_type,
            "time": self.market.now_ms,
        }

    def _funding_rate(self, request: web.Request, prod: _Product) -> list[Json]:
        """bn:um/market-data/rest-api/Get-Funding-Rate-History (rows with ``markPrice``; symbol
        optional; default limit 100, max 1000, ascending); bn:cm/…/Get-Funding-Rate-History-of-
        Perpetual-Futures (symbol required; empty for delivery contracts)."""
        m = self.market
        symbol = request.query.get("symbol")
        if prod.name == "cm" and not symbol:
            raise _mandatory("symbol")
        start = _int_param(request, "startTime")
        end = _int_param(request, "endTime")
        limit = _limit(request, default=100, maximum=1000)
        insts = (
            [self._instrument(prod, symbol)]
            if symbol
            else [i for i in m.instruments.values() if i.product == prod.name and i.perpetual]
        )
        records: list[FundingRecord] = []
        for inst in insts:
            records.extend(m.funding_records(inst.symbol, start if start is not None else 0, end or m.now_ms))
        records.sort(key=lambda r: (r.funding_ms, r.symbol))
        records = records[:limit] if start is not None else records[-limit:]
        if prod.name == "um":
            return [
                {
                    "symbol": r.symbol,
                    "fundingRate": _f8(r.rate),
                    "fundingTime": r.funding_ms,
                    "markPrice": _f8(r.mark_price),
                }
                for r in records
            ]
        return [{"symbol": r.symbol, "fundingTime": r.funding_ms, "fundingRate": _f8(r.rate)} for r in records]

    def _long_short_account_ratio(self, request: web.Request, prod: _Product) -> list[Json]:
        """bn:um/market-data/rest-api/Long-Short-Ratio (``GET /futures/data/globalLongShortAccountRatio``):
        UM by ``symbol``, CM by ``pair`` (rows then name the ``pair``); ``period`` 5m…1d required;
        ``limit`` default 30, max 500; ``startTime``/``endTime``; the latest 30 days; ascending.
        ``longAccount``/``shortAccount`` are shares of accounts, ``longShortRatio`` their quotient."""
        m = self.market
        if "period" not in request.query:
            raise _mandatory("period")
        period_ms = _PERIODS.get(request.query["period"])
        if period_ms is None:
            raise _not_valid("period")
        limit = _limit(request, default=30, maximum=500)
        start = _int_param(request, "startTime")
        end = _int_param(request, "endTime")
        if prod.name == "um":
            symbol = request.query.get("symbol")
            if not symbol:
                raise _mandatory("symbol")
            key, name_field = self._instrument(prod, symbol).symbol, "symbol"
        else:
            pair = request.query.get("pair")
            if not pair:
                raise _mandatory("pair")
            if pair not in m.pairs("cm"):
                raise _invalid_symbol()
            key, name_field = pair, "pair"
        lo = max(m.now_ms - 30 * DAY_MS, start if start is not None else 0)
        hi = min(m.now_ms, end if end is not None else m.now_ms)
        stamps = list(range(-(-lo // period_ms) * period_ms, hi - hi % period_ms + 1, period_ms))
        stamps = stamps[:limit] if start is not None else stamps[-limit:]
        rows: list[Json] = []
        for ts in stamps:
            long_share = long_account_share(key, ts)
            rows.append({
                name_field: key, "longShortRatio": f"{long_share / (1 - long_share):.4f}",
                "longAccount": f"{long_share:.4f}", "shortAccount": f"{1 - long_share:.4f}", "timestamp": ts,
            })
        return rows

    def _open_interest_hist(self, request: web.Request, prod: _Product) -> list[Json]:
        """bn:um/market-data/rest-api/Open-Interest-Statistics (``sumOpenInterest`` base coin,
        ``sumOpenInterestValue`` USD); bn:cm/… by ``pair`` and optional ``contractType``
        (``sumOpenInterest`` contracts, ``sumOpenInterestValue`` base coin). Last 30 days;
        default limit 30, max 500; ascending."""
        m = self.market
        period_ms = _PERIODS.get(request.query.get("period", ""))
        if "period" not in request.query:
            raise _mandatory("period")
        if period_ms is None:
            raise _not_valid("period")
        limit = _limit(request, default=30, maximum=500)
        start = _int_param(request, "startTime")
        end = _int_param(request, "endTime")
        if prod.name == "um":
            symbol = request.query.get("symbol")
            if not symbol:
                raise _mandatory("symbol")
            insts = [self._instrument(prod, symbol)]
            contract_type = ""
        else:
            pair = request.query.get("pair")
            if not pair:
                raise _mandatory("pair")
            if pair not in m.pairs("cm"):
                raise _invalid_symbol()
            contract_type = request.query.get("contractType", "ALL")
            if contract_type not in ("ALL", "PERPETUAL", "CURRENT_QUARTER", "NEXT_QUARTER"):
                raise _not_valid("contractType")
            insts = [
                i
                for i in m.instruments.values()
                if i.product == "cm" and i.pair == pair and contract_type in ("ALL", i.contract_type)
            ]
        lo = max(m.now_ms - 30 * DAY_MS, start if start is not None else 0)
        hi = min(m.now_ms, end if end is not None else m.now_ms)
        # startTime: the first ``limit`` rows from it; otherwise the latest ``limit`` up to endTime.
        # ``limit`` counts rows returned, so a period with no point yet does not use one up.
        stamps = range(-(-lo // period_ms) * period_ms, hi - hi % period_ms + 1, period_ms)
        rows: list[Json] = []
        for ts in stamps if start is not None else reversed(stamps):
            if len(rows) == limit:
                break
            points = [(i, m.oi_point(i.symbol, ts)) for i in insts]
            if not points or any(p is None for _, p in points):
                continue
            if prod.name == "um":
                inst, p = points[0]
                assert p is not None
                rows.append(
                    {
                        "symbol": inst.symbol,
                        "sumOpenInterest": _f8(p.open_interest),
                        "sumOpenInterestValue": _f8(p.open_interest * p.mark_price),
                        "CMCCirculatingSupply": _f8(_circulating_supply(inst)),
                        "timestamp": ts,
                    }
                )
            else:
                contracts = sum(p.open_interest for _, p in points if p is not None)
                base = sum(i.base_qty(p.open_interest, p.mark_price) for i, p in points if p is not None)
                rows.append(
                    {
                        "pair": request.query["pair"],
                        "contractType": contract_type,
                        "sumOpenInterest": _d(contracts, 0),
                        "sumOpenInterestValue": _f8(base),
                        "timestamp": ts,
                    }
                )
        return rows if start is not None else rows[::-1]


_PERIODS: dict[str, int] = {
    "5m": OI_HISTORY_STEP_MS,
    "15m": 3 * OI_HISTORY_STEP_MS,
    "30m": 6 * OI_HISTORY_STEP_MS,
    "1h": HOUR_MS,
    "2h": 2 * HOUR_MS,
    "4h": 4 * HOUR_MS,
    "6h": 6 * HOUR_MS,
    "12h": 12 * HOUR_MS,
    "1d": DAY_MS,
}


def _circulating_supply(inst: Instrument) -> float:
    return inst.start_oi * 40


def _envelope(stream: str, payload: str) -> str:
    """Combined-stream wrapper ``{"stream":<name>,"data":<payload>}`` (bn:um/websocket-market-streams)."""
    return f'{{"stream":{orjson.dumps(stream).decode()},"data":{payload}}}'


def _ws_error(code: int, msg: str, req_id: object) -> Json:
    return {"error": {"code": code, "msg": msg}, "id": req_id}


def _int_param(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise _not_valid(name) from None


def _limit(request: web.Request, *, default: int, maximum: int) -> int:
    value = _int_param(request, "limit")
    if value is None:
        return default
    if value <= 0:
        raise _not_valid("limit")
    return min(value, maximum)


def long_account_share(symbol: str, ts: int) -> float:
    """Share of accounts net long of ``symbol`` at ``ts`` (the book keeps no positions, so a
    deterministic slow wave between 0.40 and 0.70, per symbol; the same on every call)."""
    phase = (zlib.crc32(symbol.encode()) % 1000) / 1000 * 2 * math.pi
    return round(0.55 + 0.15 * math.sin(ts / (5 * 3_600_000) + phase), 4)


def _json_handler(
    fn: Callable[[web.Request, _Product], Json | list[Json]], prod: _Product
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(request: web.Request) -> web.StreamResponse:
        body = orjson.dumps(fn(request, prod))
        return web.Response(body=body, content_type="application/json")

    return handler
