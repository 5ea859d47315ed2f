"""Bybit v5, server side: public WebSocket streams (linear, inverse, option) and REST market data.

Written from Bybit's documentation (repo bybit-exchange/docs, cited below as ``bbd:``: ``v5/ws`` =
docs/v5/websocket/wss-authentication.mdx "Connect", ``v5/ws/ticker`` = …/websocket/public/ticker.mdx,
``v5/ws/all-liquidation`` = …/websocket/public/all-liquidation.mdx, ``v5/market/<page>`` =
docs/v5/market/<page>.mdx, ``v5/rate-limit``, ``v5/error``) and the shared notes
(/work/shared/exchanges.md §2). It must not import our adapters: it exists to catch their misreadings.

URL layout. Everything sits under one prefix so that a client (ccxt included) is pointed at it by
host and prefix alone, with Bybit's own paths below it:

======================================  ===============================================
``{http}/bybit/v5/market/…``            REST (``api.bybit.com``): instruments-info,
                                        tickers, open-interest, funding/history, time
``{ws}/bybit/v5/public/linear``         USDT/USDC perpetuals (``stream.bybit.com`` paths)
``{ws}/bybit/v5/public/inverse``        inverse contracts
``{ws}/bybit/v5/public/option``         USDC options
======================================  ===============================================

WebSocket behaviour (bbd:v5/ws): ``{"req_id","op":"subscribe"|"unsubscribe","args":[topics]}``;
linear/inverse answer ``{"success","ret_msg","conn_id","req_id","op"}`` (``req_id`` echoed, ``""``
when absent; ``success:false`` naming the refused topics: unknown symbol, unknown topic, already
subscribed; the valid topics of the same request are subscribed all the same), the option endpoint
``{"success","conn_id","data":{"successTopics","failTopics"},"type":"COMMAND_RESP"}``;
``{"op":"ping"}`` gets ``{"success":true,"ret_msg":"pong","conn_id","req_id","op":"ping"}``
(linear/inverse) or ``{"args":["<ms>"],"op":"pong"}`` (option). A connection with neither an
``op:ping`` from the client nor data from the server for ``idle_timeout_s`` (10 min) is closed
(protocol-level ping frames are answered but do not count). Args limits: at most 21 000 characters
of subscribed topics per connection, at most 2000 option topics.

Topics and cadences (market time):

- ``allLiquidation.<SYMBOL>`` (linear, inverse; bbd:v5/ws/all-liquidation): EVERY liquidation,
  pushed in 500 ms batches, ``type`` always ``snapshot``, ``data`` an array of ``{T, s, S, v, p}``
  with ``S`` the POSITION side (``Buy``: a long was liquidated), ``v`` the size (linear base coin,
  inverse USD), ``p`` the bankruptcy price; nothing is sent for an empty batch.
- ``tickers.<SYMBOL>`` linear/inverse (bbd:v5/ws/ticker): a ``snapshot`` on subscribe, then every
  100 ms a ``delta`` carrying ``symbol`` plus ONLY the keys whose value changed (none changed: no
  frame), with ``cs`` (cross sequence) and ``ts``; all values strings. ``openInterest`` and
  ``openInterestValue`` are both sides, ``singleOpenInterest``/``…Value`` one side; linear sizes base
  coin and values quote, inverse sizes USD and values (``openInterestValue``, ``turnover24h``) coin.
- ``tickers.<SYMBOL>`` option: ``snapshot`` only, with ``id``; IVs are fractions; pushed every
  100 ms while something changed.

REST (envelope ``{"retCode","retMsg","result","retExtInfo","time"}``, HTTP 200 for API errors;
bbd:v5/market/…): an unknown symbol is ``retCode`` 10001 "Not supported symbols"; instruments-info
filters instead (an unknown symbol gives an empty list) and pages with ``nextPageCursor``.
Every response carries ``X-Bapi-Limit``, ``X-Bapi-Limit-Status`` (remaining) and
``X-Bapi-Limit-Reset-Timestamp`` for a per-endpoint, per-second budget (``endpoint_limit_per_s``;
over it: ``retCode`` 10006 "Too many visits!"); more than ``ip_limit_per_5s`` requests in 5 s is
HTTP 403 "access too frequent" (bbd:v5/rate-limit).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import urllib.parse
import zlib
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from aiohttp import WSCloseCode, WSMsgType, web
from aiohttp.typedefs import Handler, Middleware

from streamer.sim.faults import FaultPlan, GarbageKind, RestFault
from streamer.sim.market import (
    DAY_MS,
    HOUR_MS,
    OI_HISTORY_STEP_MS,
    Contract,
    ContractState,
    Market,
    PushedVenueLiquidation,
    VenueBook,
    bybit_expiry_code,
)
from streamer.sim.venues import WsConnection, handshake_rejection

__all__ = [
    "BybitConfig",
    "BybitVenue",
    "instrument_row",
    "liquidation_item",
    "option_ticker_rest",
    "option_ticker_ws",
    "ticker_fields",
    "ticker_rest",
]

Json = dict[str, Any]
Category = Literal["linear", "inverse", "option"]
CATEGORIES: tuple[Category, ...] = ("linear", "inverse", "option")

NAME = "bybit"
REST_KEY = f"{NAME}.rest"


@dataclass(frozen=True, slots=True)
class BybitConfig:
    """Documented limits and timers, Bybit's defaults; shrink them in tests.

    Times here are wall-clock seconds (they act on sockets); ``ticker_ms`` is market time.
    ``instruments_max_limit`` caps a page of instruments-info below Bybit's 1000 (a small value
    makes any client, ccxt included, paginate).
    """

    idle_timeout_s: float = 600.0
    ticker_ms: int = 100
    max_args_chars: int = 21_000
    option_max_args: int = 2_000
    instruments_default_limit: int = 500
    instruments_max_limit: int = 1_000
    endpoint_limit_per_s: int = 50
    ip_limit_per_5s: int = 600
    send_queue_max: int = 10_000
    close_timeout_s: float = 2.0


# --------------------------------------------------------------------------------------------
# Wire payloads (pure functions of market state)
# --------------------------------------------------------------------------------------------


def _d(x: float, decimals: int) -> str:
    return f"{x:.{decimals}f}"


def _trim(x: float, decimals: int = 8) -> str:
    """A number without trailing zeros (``0.0001``, ``95000``)."""
    text = f"{x:.{decimals}f}"
    if "." in text:  # only a fraction's zeros are trailing: 150000000 with 0 decimals stays whole
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _oi_value(c: Contract, contracts: float, mark: float) -> float:
    """Open interest value: linear in quote (size × mark), inverse in coin (USD size / mark)."""
    return contracts / mark if c.inverse else contracts * mark


def ticker_fields(c: Contract, st: ContractState) -> dict[str, str]:
    """``tickers.<SYMBOL>`` linear/inverse data, every value a string (bbd:v5/ws/ticker table).

    ``openInterest``/``openInterestValue`` are both sides (twice the one-side record), the
    ``single…`` pair one side; ``volume24h`` base coin (inverse: USD), ``turnover24h`` quote
    (inverse: coin); ``price24hPcnt`` is a fraction; ``nextFundingTime`` string ms.
    """
    pd, qd = c.price_decimals, c.qty_decimals
    single = st.open_interest
    prev24 = st.open_24h
    return {
        "symbol": c.symbol,
        "tickDirection": st.tick_direction,
        "price24hPcnt": _d(st.last_price / prev24 - 1 if prev24 else 0.0, 6),
        "lastPrice": _d(st.last_price, pd),
        "prevPrice24h": _d(prev24, pd),
        "highPrice24h": _d(st.high_24h, pd),
        "lowPrice24h": _d(st.low_24h, pd),
        "prevPrice1h": _d(st.price_1h, pd),
        "markPrice": _d(st.mark_price, pd),
        "indexPrice": _d(st.index_price, pd),
        "openInterest": _d(2 * single, qd),
        "openInterestValue": _d(_oi_value(c, 2 * single, st.mark_price), 2),
        "singleOpenInterest": _d(single, qd),
        "singleOpenInterestValue": _d(_oi_value(c, single, st.mark_price), 2),
        "turnover24h": _d(st.turnover_24h, 4),
        "volume24h": _d(st.volume_24h, 4),
        "fundingIntervalHour": str(c.funding_interval_h),
        "fundingCap": _trim(c.funding_cap),
        "nextFundingTime": str(st.next_funding_ms),
        "fundingRate": _trim(st.funding_rate, 6),
        "bid1Price": _d(st.bid_price, pd),
        "bid1Size": _d(st.bid_qty, qd),
        "ask1Price": _d(st.ask_price, pd),
        "ask1Size": _d(st.ask_qty, qd),
        "preOpenPrice": "",
        "preQty": "",
        "curPreListingPhase": "",
    }


def ticker_rest(c: Contract, st: ContractState) -> Json:
    """One ``/v5/market/tickers`` linear/inverse row (bbd:v5/market/tickers; futures-only fields empty)."""
    f = ticker_fields(c, st)
    return {
        "symbol": c.symbol,
        "lastPrice": f["lastPrice"],
        "indexPrice": f["indexPrice"],
        "markPrice": f["markPrice"],
        "prevPrice24h": f["prevPrice24h"],
        "price24hPcnt": f["price24hPcnt"],
        "highPrice24h": f["highPrice24h"],
        "lowPrice24h": f["lowPrice24h"],
        "prevPrice1h": f["prevPrice1h"],
        "openInterest": f["openInterest"],
        "openInterestValue": f["openInterestValue"],
        "singleOpenInterest": f["singleOpenInterest"],
        "singleOpenInterestValue": f["singleOpenInterestValue"],
        "turnover24h": f["turnover24h"],
        "volume24h": f["volume24h"],
        "fundingRate": f["fundingRate"],
        "nextFundingTime": f["nextFundingTime"],
        "predictedDeliveryPrice": "",
        "basisRate": "",
        "deliveryFeeRate": "",
        "deliveryTime": "0",
        "ask1Size": f["ask1Size"],
        "bid1Price": f["bid1Price"],
        "ask1Price": f["ask1Price"],
        "bid1Size": f["bid1Size"],
        "basis": "",
        "preOpenPrice": "",
        "preQty": "",
        "curPreListingPhase": "",
        "fundingIntervalHour": f["fundingIntervalHour"],
        "basisRateYear": "",
        "fundingCap": f["fundingCap"],
    }


def _option_common(c: Contract, st: ContractState) -> dict[str, str]:
    pd, qd = c.price_decimals, c.qty_decimals
    return {
        "lastPrice": _d(st.last_price, pd),
        "highPrice24h": _d(st.high_24h, pd),
        "lowPrice24h": _d(st.low_24h, pd),
        "markPrice": _d(st.mark_price, 8),
        "indexPrice": _d(st.index_price, 2),
        "underlyingPrice": _d(st.forward, 2),
        "openInterest": _d(st.open_interest, qd),
        "turnover24h": _d(st.turnover_24h, 4),
        "volume24h": _d(st.volume_24h, qd),
        "totalVolume": _d(st.total_volume, 0),
        "totalTurnover": _d(st.total_volume * st.index_price, 0),
        "delta": _d(st.delta, 8),
        "gamma": _d(st.gamma, 8),
        "vega": _d(st.vega, 8),
        "theta": _d(st.theta, 8),
        "predictedDeliveryPrice": "0",
        "change24h": _d(st.last_price / st.open_24h - 1 if st.open_24h else 0.0, 8),
    }


def _bid_side(c: Contract, st: ContractState) -> tuple[str, str, str]:
    """Bid price, size and IV: all ``"0"`` when there is no bid (bbd:v5/ws/ticker option example)."""
    if st.bid_price <= 0:
        return "0", "0", "0"
    return _d(st.bid_price, c.price_decimals), _d(st.bid_qty, c.qty_decimals), _d(st.bid_iv, 4)


def option_ticker_ws(c: Contract, st: ContractState) -> dict[str, str]:
    """``tickers.<OPTION>`` data (bbd:v5/ws/ticker, Option tab): ``bidIv``/``askIv``/``markPriceIv``
    fractions; greeks Black-Scholes in USD."""
    bid, bid_size, bid_iv = _bid_side(c, st)
    common = _option_common(c, st)
    out = {
        "symbol": c.symbol,
        "bidPrice": bid,
        "bidSize": bid_size,
        "bidIv": bid_iv,
        "askPrice": _d(st.ask_price, c.price_decimals),
        "askSize": _d(st.ask_qty, c.qty_decimals),
        "askIv": _d(st.ask_iv, 4),
        "lastPrice": common["lastPrice"],
        "highPrice24h": common["highPrice24h"],
        "lowPrice24h": common["lowPrice24h"],
        "markPrice": common["markPrice"],
        "indexPrice": common["indexPrice"],
        "markPriceIv": _d(st.mark_iv, 4),
    }
    out.update({k: v for k, v in common.items() if k not in out})
    return out


def option_ticker_rest(c: Contract, st: ContractState) -> Json:
    """One ``/v5/market/tickers?category=option`` row: REST names differ from the stream's
    (``bid1Price``, ``bid1Iv``, ``markIv`` …; bbd:v5/market/tickers, Option tab)."""
    bid, bid_size, bid_iv = _bid_side(c, st)
    common = _option_common(c, st)
    out: Json = {
        "symbol": c.symbol,
        "bid1Price": bid,
        "bid1Size": bid_size,
        "bid1Iv": bid_iv,
        "ask1Price": _d(st.ask_price, c.price_decimals),
        "ask1Size": _d(st.ask_qty, c.qty_decimals),
        "ask1Iv": _d(st.ask_iv, 4),
        "lastPrice": common["lastPrice"],
        "highPrice24h": common["highPrice24h"],
        "lowPrice24h": common["lowPrice24h"],
        "markPrice": common["markPrice"],
        "indexPrice": common["indexPrice"],
        "markIv": _d(st.mark_iv, 4),
    }
    out.update({k: v for k, v in common.items() if k not in out})
    return out


def liquidation_item(liq_symbol: str, side: str, qty: str, price: str, trade_ms: int) -> Json:
    """One ``allLiquidation`` item ``{T, s, S, v, p}`` (bbd:v5/ws/all-liquidation). ``side`` is the
    ORDER side of the record; ``S`` is the POSITION side: a SELL order closes a long, so ``Buy``."""
    return {"T": trade_ms, "s": liq_symbol, "S": "Buy" if side == "SELL" else "Sell", "v": qty, "p": price}


def _liquidation_items(book: VenueBook, rows: Iterable[PushedVenueLiquidation]) -> list[Json]:
    out = []
    for p in rows:
        liq = p.liquidation
        c = book.contracts[liq.symbol]
        out.append(
            liquidation_item(
                liq.symbol, liq.side, _d(liq.qty, c.qty_decimals), _d(liq.price, c.price_decimals), liq.trade_ms
            )
        )
    return out


def instrument_row(c: Contract, symbol_id: int) -> Json:
    """One instruments-info row (bbd:v5/market/instrument; ``fundingInterval`` in minutes)."""
    pd, qd = c.price_decimals, c.qty_decimals
    tick = _d(c.tick, pd)
    step = _d(c.step, qd) if qd else "1"
    price_filter = {"minPrice": tick, "maxPrice": _d(2_000_000 - c.tick, pd), "tickSize": tick}
    if c.option:
        return {
            "symbol": c.symbol,
            "symbolId": symbol_id,
            "optionsType": "Call" if c.option_type == "C" else "Put",
            "status": "Trading",
            "baseCoin": c.base,
            "quoteCoin": c.quote,
            "settleCoin": c.settle,
            "launchTime": str(c.launch_ms),
            "deliveryTime": str(c.expiry_ms),
            "deliveryFeeRate": "0.00015",
            "priceFilter": price_filter,
            "lotSizeFilter": {"maxOrderQty": "500", "minOrderQty": step, "qtyStep": step},
            "displayName": c.symbol.replace(f"{c.base}-", f"{c.base}{c.quote}-", 1),
        }
    return {
        "symbol": c.symbol,
        "symbolId": symbol_id,
        "contractType": "InversePerpetual" if c.inverse else "LinearPerpetual",
        "status": "Trading",
        "baseCoin": c.base,
        "quoteCoin": c.quote,
        "symbolType": "",
        "launchTime": str(c.launch_ms),
        "deliveryTime": "0",
        "deliveryFeeRate": "",
        "priceScale": str(pd),
        "leverageFilter": {"minLeverage": "1", "maxLeverage": "100.00", "leverageStep": "0.01"},
        "priceFilter": price_filter,
        "lotSizeFilter": {
            "maxOrderQty": "1190.000" if not c.inverse else "1000000",
            "minOrderQty": step,
            "qtyStep": step,
            "postOnlyMaxOrderQty": "1190.000" if not c.inverse else "1000000",
            "maxMktOrderQty": "500.000" if not c.inverse else "500000",
            "minNotionalValue": "5" if not c.inverse else "",
        },
        "unifiedMarginTrade": True,
        "fundingInterval": c.funding_interval_h * 60,
        "settleCoin": c.settle,
        "copyTrading": "both" if c.quote == "USDT" else "none",
        "upperFundingRate": _trim(c.funding_cap),
        "lowerFundingRate": _trim(-c.funding_cap),
        "displayName": f"{c.base}USDC" if c.symbol.endswith("PERP") else "",
        "forbidUplWithdrawal": False,
        "riskParameters": {"priceLimitRatioX": "0.01", "priceLimitRatioY": "0.02"},
        "isPreListing": False,
        "preListingInfo": None,
    }


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class _ApiError(Exception):
    """A Bybit API error: HTTP 200 with ``retCode`` ``code`` (bbd:v5/error)."""

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg


def _not_supported() -> _ApiError:
    return _ApiError(10001, "Not supported symbols")


def _param(msg: str) -> _ApiError:
    return _ApiError(10001, f"params error: {msg}")


_RET_MESSAGES: dict[int, str] = {
    10000: "Server Timeout",
    10001: "Request parameter error",
    10006: "Too many visits!",
    10016: "Server error.",
    10429: "System level frequency protection",
}


# --------------------------------------------------------------------------------------------
# Connections
# --------------------------------------------------------------------------------------------


class _Conn(WsConnection):
    """One client of a Bybit public endpoint: its topics and, per ticker topic, what it last saw."""

    def __init__(self, venue: BybitVenue, category: Category, ws: web.WebSocketResponse, request: web.Request) -> None:
        cfg = venue.config
        super().__init__(
            f"{NAME}.{category}",
            ws,
            request,
            venue.faults,
            venue.stats,
            idle_timeout_s=cfg.idle_timeout_s,
            idle_close=(1000, f"no ping and no data for {cfg.idle_timeout_s:g} s"),
            render_garbage=venue.garbage,
            send_queue_max=cfg.send_queue_max,
        )
        self.category: Category = category
        self.topics: dict[str, None] = {}
        self.seen: dict[str, dict[str, str]] = {}


@dataclass(slots=True)
class _Topic:
    """Subscribers of one topic and its publishing state."""

    kind: Literal["liquidation", "ticker"]
    symbol: str
    conns: set[_Conn] = field(default_factory=set)
    cs: int = 0
    last: dict[str, str] | None = None


class _Meter:
    """Requests in a rolling window of ``span_s`` seconds."""

    def __init__(self, span_s: float) -> None:
        self.span_s = span_s
        self.times: deque[float] = deque()

    def add(self, now: float) -> int:
        while self.times and now - self.times[0] >= self.span_s:
            self.times.popleft()
        self.times.append(now)
        return len(self.times)

    def reset_in_s(self, now: float) -> float:
        return max(0.0, self.times[0] + self.span_s - now) if self.times else 0.0


# --------------------------------------------------------------------------------------------
# The venue
# --------------------------------------------------------------------------------------------


class BybitVenue:
    """Bybit v5 on the simulator's app. See the module docstring for URLs and behaviour."""

    def __init__(self, market: Market, faults: FaultPlan, config: BybitConfig | None = None) -> None:
        self.market = market
        self.book: VenueBook = market.bybit
        self.faults = faults
        self.config = config or BybitConfig()
        self.connections: set[_Conn] = set()
        self.topics: dict[str, _Topic] = {}
        self.stats: Counter[str] = Counter()
        self._cursor = len(self.book.pushed)
        self._ip_meter = _Meter(5.0)
        self._endpoint_meters: dict[str, _Meter] = {}
        self._msg_seq = 0

    @property
    def name(self) -> str:
        return NAME

    # -- wiring -----------------------------------------------------------------------------

    def install(self, app: web.Application) -> None:
        sub = web.Application(middlewares=[self._rest_middleware()])
        routes: dict[str, Callable[[web.Request], Json]] = {
            "/v5/market/instruments-info": self._instruments_info,
            "/v5/market/tickers": self._tickers,
            "/v5/market/open-interest": self._open_interest,
            "/v5/market/funding/history": self._funding_history,
            "/v5/market/account-ratio": self._account_ratio,
            "/v5/market/time": self._time,
        }
        for path, fn in routes.items():
            sub.router.add_get(path, _json_handler(fn, self.market))
        for category in CATEGORIES:
            sub.router.add_get(f"/v5/public/{category}", self._ws_handler(category))
        app.add_subapp(f"/{NAME}", sub)

    def urls(self, http_root: str, ws_root: str) -> dict[str, str]:
        return {
            "bybit_rest": f"{http_root}/{NAME}",
            "bybit_ws": f"{ws_root}/{NAME}",
            "bybit_ws_linear": f"{ws_root}/{NAME}/v5/public/linear",
            "bybit_ws_inverse": f"{ws_root}/{NAME}/v5/public/inverse",
            "bybit_ws_option": f"{ws_root}/{NAME}/v5/public/option",
        }

    async def close(self) -> None:
        for conn in list(self.connections):
            with contextlib.suppress(ConnectionError, RuntimeError):
                await conn.close(WSCloseCode.GOING_AWAY, "server shutdown")

    # -- ticking ----------------------------------------------------------------------------

    def on_tick(self, now_ms: int) -> None:
        self._push_liquidations()
        if now_ms % self.config.ticker_ms:
            return
        for name, topic in self.topics.items():
            if topic.kind != "ticker" or not topic.conns:
                continue
            c = self.book.contracts[topic.symbol]
            st = self.book.state(topic.symbol)
            if c.option:
                fields = option_ticker_ws(c, st)
                if fields == topic.last:
                    continue
                topic.last = fields
                frame = self._option_frame(name, fields, now_ms)
                for conn in topic.conns:
                    conn.push(frame)
                continue
            fields = ticker_fields(c, st)
            topic.cs += 1
            for conn in topic.conns:
                seen = conn.seen.setdefault(name, {})
                changed = {k: v for k, v in fields.items() if seen.get(k) != v}
                if not changed:
                    continue
                seen.update(changed)
                data = {"symbol": c.symbol, **changed}
                conn.push(_frame({"topic": name, "type": "delta", "data": data, "cs": topic.cs, "ts": now_ms}))

    def _push_liquidations(self) -> None:
        pushed = self.book.pushed
        new = pushed[self._cursor :]
        self._cursor = len(pushed)
        batches: dict[tuple[str, int], list[PushedVenueLiquidation]] = {}
        for p in new:
            batches.setdefault((p.liquidation.symbol, p.push_ms), []).append(p)
        for (symbol, push_ms), rows in batches.items():
            name = f"allLiquidation.{symbol}"
            topic = self.topics.get(name)
            if topic is None or not topic.conns:
                continue
            frame = _frame(
                {"topic": name, "type": "snapshot", "ts": push_ms, "data": _liquidation_items(self.book, rows)}
            )
            for conn in topic.conns:
                conn.push(frame)

    def _option_frame(self, name: str, fields: dict[str, str], now_ms: int) -> str:
        self._msg_seq += 1
        return _frame(
            {"id": f"{name}-{self._msg_seq}-{now_ms}", "topic": name, "ts": now_ms, "data": fields, "type": "snapshot"}
        )

    def _snapshot(self, conn: _Conn, name: str, topic: _Topic) -> None:
        if topic.kind != "ticker":
            return
        now = self.market.now_ms
        c = self.book.contracts[topic.symbol]
        st = self.book.state(topic.symbol)
        if c.option:
            conn.push(self._option_frame(name, option_ticker_ws(c, st), now))
            return
        fields = ticker_fields(c, st)
        conn.seen[name] = dict(fields)
        topic.cs += 1
        conn.push(_frame({"topic": name, "type": "snapshot", "data": fields, "cs": topic.cs, "ts": now}))

    # -- subscriptions ----------------------------------------------------------------------

    def parse_topic(self, name: str, category: Category) -> tuple[Literal["liquidation", "ticker"], str] | str:
        """``(kind, symbol)`` for a topic this endpoint serves, else the refusal message."""
        prefix, _, symbol = name.partition(".")
        kind: Literal["liquidation", "ticker"]
        if prefix == "tickers":
            kind = "ticker"
        elif prefix == "allLiquidation" and category != "option":
            kind = "liquidation"
        else:
            return f"error:handler not found,topic:{name}"
        c = self.book.contracts.get(symbol)
        if c is None or c.category != category:
            return f"Invalid symbol :[{name}]"
        return kind, symbol

    def _subscribe(self, conn: _Conn, args: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
        ok: list[str] = []
        failed: list[tuple[str, str]] = []
        used = sum(len(t) for t in conn.topics)
        for name in args:
            parsed = self.parse_topic(name, conn.category)
            if isinstance(parsed, str):
                failed.append((name, parsed))
                continue
            if name in conn.topics:
                failed.append((name, f"error:already subscribed,topic:{name}"))
                continue
            if used + len(name) > self.config.max_args_chars or (
                conn.category == "option" and len(conn.topics) >= self.config.option_max_args
            ):
                failed.append((name, f"error:args limit exceeded,topic:{name}"))
                continue
            used += len(name)
            conn.topics[name] = None
            topic = self.topics.setdefault(name, _Topic(parsed[0], parsed[1]))
            topic.conns.add(conn)
            ok.append(name)
        return ok, failed

    def _unsubscribe(self, conn: _Conn, names: Iterable[str]) -> None:
        for name in list(names):
            conn.topics.pop(name, None)
            conn.seen.pop(name, None)
            topic = self.topics.get(name)
            if topic is not None:
                topic.conns.discard(conn)
                if not topic.conns:
                    del self.topics[name]

    # -- WebSocket --------------------------------------------------------------------------

    def _ws_handler(self, category: Category) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handler(request: web.Request) -> web.StreamResponse:
            return await self._ws_session(request, category)

        return handler

    async def _ws_session(self, request: web.Request, category: Category) -> web.StreamResponse:
        rejection = await handshake_rejection(self.faults, f"{NAME}.{category}", request)
        if rejection is not None:
            return rejection
        ws = web.WebSocketResponse(autoping=True, compress=False, timeout=self.config.close_timeout_s)
        await ws.prepare(request)
        conn = _Conn(self, category, ws, request)
        self.connections.add(conn)
        self.faults.register(conn)
        self.stats["connections"] += 1
        writer = asyncio.create_task(conn.write_loop(), name=f"sim-bybit-write-{id(conn):x}")
        keeper = asyncio.create_task(conn.keep_loop(), name=f"sim-bybit-keep-{id(conn):x}")
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self._control(conn, msg.data)
                elif msg.type == WSMsgType.BINARY:
                    conn.reply(_frame(self._error(conn, "error:request not supported", "", "")))
        finally:
            writer.cancel()
            keeper.cancel()
            await asyncio.gather(writer, keeper, return_exceptions=True)
            self._unsubscribe(conn, list(conn.topics))
            self.faults.unregister(conn)
            self.connections.discard(conn)
        return ws

    def _error(self, conn: _Conn, msg: str, req_id: object, op: object) -> Json:
        return {"success": False, "ret_msg": msg, "conn_id": conn.conn_id, "req_id": req_id, "op": op}

    def _control(self, conn: _Conn, text: str) -> None:
        """Answer one request (bbd:v5/ws: subscribe, unsubscribe, ping)."""
        try:
            req = orjson.loads(text)
        except orjson.JSONDecodeError:
            conn.reply(_frame(self._error(conn, "error:request not json", "", "")))
            return
        if not isinstance(req, dict):
            conn.reply(_frame(self._error(conn, "error:request not supported", "", "")))
            return
        op = req.get("op")
        req_id = req.get("req_id", "")
        if op == "ping":
            conn.touch()
            if conn.category == "option":
                conn.reply(_frame({"args": [str(self.market.now_ms)], "op": "pong"}))
            else:
                pong = {"success": True, "ret_msg": "pong", "conn_id": conn.conn_id, "req_id": req_id, "op": "ping"}
                conn.reply(_frame(pong))
            return
        if op not in ("subscribe", "unsubscribe"):
            conn.reply(_frame(self._error(conn, f"error:unsupported op {op}", req_id, op)))
            return
        args = req.get("args")
        if not isinstance(args, list) or not args or not all(isinstance(a, str) for a in args):
            conn.reply(_frame(self._error(conn, "error:args must be a non-empty array of topics", req_id, op)))
            return
        failed: list[tuple[str, str]] = []
        if op == "unsubscribe":
            self._unsubscribe(conn, args)
            ok = list(args)
        else:
            ok, failed = self._subscribe(conn, args)
        if conn.category == "option":
            ack: Json = {
                "success": not failed,
                "conn_id": conn.conn_id,
                "data": {"failTopics": [name for name, _ in failed], "successTopics": ok},
                "type": "COMMAND_RESP",
            }
        else:
            msg = "; ".join(reason for _, reason in failed)
            ack = {"success": not failed, "ret_msg": msg, "conn_id": conn.conn_id, "req_id": req_id, "op": op}
        conn.reply(_frame(ack))
        if op == "subscribe":
            for name in ok:
                self._snapshot(conn, name, self.topics[name])

    def garbage(self, conn: WsConnection, kind: GarbageKind) -> str | bytes:
        """One malformed frame of ``kind`` (faults.send_garbage)."""
        if kind == "binary":
            return b"\x00\x9fsimulated binary garbage\xff"
        if kind == "text":
            return "<html><body>502 Bad Gateway</body></html>"
        category = conn.category if isinstance(conn, _Conn) else "linear"
        symbol = next(s for s, c in self.book.contracts.items() if c.category == category)
        now = self.market.now_ms
        if kind == "wrong_types":
            st = self.book.state(symbol)
            return _frame(
                {
                    "topic": f"tickers.{symbol}",
                    "type": "snapshot",
                    "data": {"symbol": symbol, "lastPrice": st.last_price, "markPrice": None, "fundingRate": 1},
                    "cs": "x",
                    "ts": str(now),
                }
            )
        if kind == "unknown_event":
            return _frame({"topic": f"simUnknownTopic.{symbol}", "type": "snapshot", "ts": now, "data": {}})
        c = self.book.contracts[symbol]
        data = option_ticker_ws(c, self.book.state(symbol)) if c.option else ticker_fields(c, self.book.state(symbol))
        frame = _frame({"topic": f"tickers.{symbol}", "type": "snapshot", "data": data, "cs": 1, "ts": now})
        return frame[: len(frame) // 2]

    # -- REST -------------------------------------------------------------------------------

    def _rest_middleware(self) -> Middleware:
        @web.middleware
        async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
            if request.headers.get("Upgrade", "").lower() == "websocket":
                return await handler(request)
            now = time.monotonic()
            fault = self.faults.take_rest_fault(REST_KEY, request.path)
            if fault is not None and fault.delay_s > 0:
                await self.faults.sleep(fault.delay_s)
            in_5s = self._ip_meter.add(now)
            meter = self._endpoint_meters.setdefault(request.path, _Meter(1.0))
            used = meter.add(now)
            limit = self.config.endpoint_limit_per_s
            resp: web.StreamResponse
            if fault is not None and fault.status is not None:
                resp = self._fault_response(fault)
            elif in_5s > self.config.ip_limit_per_5s:
                self.stats["ip_limit_403"] += 1
                resp = web.Response(status=403, text="access too frequent", content_type="text/plain")
            elif used > limit:
                self.stats["endpoint_limit_10006"] += 1
                resp = _envelope_error(10006, _RET_MESSAGES[10006], self.market.now_ms)
            else:
                try:
                    resp = await handler(request)
                except _ApiError as err:
                    resp = _envelope_error(err.code, err.msg, self.market.now_ms)
                except web.HTTPException as exc:
                    resp = web.Response(status=exc.status, text=exc.text or exc.reason)
            wall_ms = int(time.time() * 1000)
            reset = wall_ms + int(meter.reset_in_s(now) * 1000) if used > limit else wall_ms
            resp.headers["X-Bapi-Limit"] = str(limit)
            resp.headers["X-Bapi-Limit-Status"] = str(max(0, limit - used))
            resp.headers["X-Bapi-Limit-Reset-Timestamp"] = str(reset)
            return resp

        return middleware

    def _fault_response(self, fault: RestFault) -> web.Response:
        """A scripted failure in Bybit's shapes: 403 "access too frequent" (IP limit), 429 with
        ``retCode`` 10429, HTTP 200 with the fault's ``code`` (e.g. 10006), 5xx (bbd:v5/error)."""
        status = fault.status or 500
        headers = {"Retry-After": str(fault.retry_after_s)} if fault.retry_after_s is not None else {}
        if fault.body is not None:
            return web.Response(status=status, text=fault.body, headers=headers, content_type="application/json")
        if status == 403:
            return web.Response(status=403, text="access too frequent", headers=headers, content_type="text/plain")
        if status in (502, 504):
            text = f"<html><head><title>{status}</title></head><body><h1>{status}</h1></body></html>"
            return web.Response(status=status, text=text, headers=headers, content_type="text/html")
        code = fault.code
        if code is None:
            code = 10429 if status in (418, 429) else 10016 if status >= 500 else 10001
        resp = _envelope_error(code, _RET_MESSAGES.get(code, "error"), self.market.now_ms, status=status)
        resp.headers.update(headers)
        return resp

    def _category(self, request: web.Request, allowed: tuple[str, ...]) -> str:
        category = request.query.get("category")
        if category is None or category not in allowed:
            raise _param("Illegal category" if category else "category is required")
        return category

    def _contract(self, category: str, symbol: str | None) -> Contract:
        if not symbol:
            raise _param("symbol is required")
        c = self.book.contracts.get(symbol)
        if c is None or c.category != category:
            raise _not_supported()
        return c

    def _time(self, _request: web.Request) -> Json:
        now = self.market.now_ms
        return {"timeSecond": str(now // 1000), "timeNano": str(now * 1_000_000)}

    def _instruments_info(self, request: web.Request) -> Json:
        """bbd:v5/market/instrument: ``category`` required; ``symbol``, ``status`` (default Trading),
        ``baseCoin`` (linear/inverse: matches both categories, as documented; option: default BTC),
        ``limit`` (1..1000, default 500) and ``cursor`` (``nextPageCursor``). Spot: no pagination."""
        category = self._category(request, ("spot", "linear", "inverse", "option"))
        if category == "spot":
            return {"category": "spot", "list": []}
        q = request.query
        cfg = self.config
        limit = _int(q, "limit", cfg.instruments_default_limit)
        if limit < 1 or limit > 1000:
            raise _param("limit must be in [1, 1000]")
        limit = min(limit, cfg.instruments_max_limit)
        base = q.get("baseCoin")
        if category == "option":
            rows = [c for c in self.book.contracts.values() if c.category == "option" and c.base == (base or "BTC")]
        elif base is not None:
            rows = [c for c in self.book.contracts.values() if c.category != "option" and c.base == base]
        else:
            rows = [c for c in self.book.contracts.values() if c.category == category]
        if "symbol" in q:
            rows = [c for c in rows if c.symbol == q["symbol"]]
        status = q.get("status")
        if status is not None and status != "Trading":
            rows = []
        rows.sort(key=lambda c: c.symbol)
        start = 0
        cursor = q.get("cursor")
        if cursor:
            last = urllib.parse.parse_qs(urllib.parse.unquote(cursor)).get("last", [""])[0]
            after = [i for i, c in enumerate(rows) if c.symbol == last]
            if not after:
                raise _param("cursor is invalid")
            start = after[0] + 1
        page = rows[start : start + limit]
        more = start + limit < len(rows)
        next_cursor = urllib.parse.quote(f"first={page[0].symbol}&last={page[-1].symbol}", safe="") if more else ""
        ids = {s: i + 1 for i, s in enumerate(self.book.contracts)}
        return {
            "category": category,
            "list": [instrument_row(c, ids[c.symbol]) for c in page],
            "nextPageCursor": next_cursor,
        }

    def _tickers(self, request: web.Request) -> Json:
        """bbd:v5/market/tickers: linear/inverse by optional ``symbol``; option needs ``symbol`` or
        ``baseCoin`` (optional ``expDate`` ``25DEC22``)."""
        category = self._category(request, ("spot", "linear", "inverse", "option"))
        q = request.query
        if category == "spot":
            return {"category": "spot", "list": []}
        book = self.book
        if category == "option":
            if "symbol" in q:
                rows = [self._contract("option", q["symbol"])]
            elif "baseCoin" in q:
                rows = [c for c in book.contracts.values() if c.option and c.base == q["baseCoin"]]
                exp = q.get("expDate")
                if exp is not None:
                    rows = [c for c in rows if bybit_expiry_code(c.expiry_ms).zfill(7) == exp.zfill(7)]
            else:
                raise _param("symbol or baseCoin is required")
            return {"category": "option", "list": [option_ticker_rest(c, book.state(c.symbol)) for c in rows]}
        if "symbol" in q:
            rows = [self._contract(category, q["symbol"])]
        else:
            rows = [c for c in book.contracts.values() if c.category == category]
        return {"category": category, "list": [ticker_rest(c, book.state(c.symbol)) for c in rows]}

    def _open_interest(self, request: web.Request) -> Json:
        """bbd:v5/market/open-interest: ``openInterest`` the sum of both sides, ``singleOpenInterest``
        one side (inverse USD, linear base coin); newest first; ``limit`` 1..200 (default 50);
        ``cursor`` pages back in time."""
        category = self._category(request, ("linear", "inverse"))
        q = request.query
        c = self._contract(category, q.get("symbol"))
        interval = _INTERVALS.get(q.get("intervalTime", ""))
        if interval is None:
            raise _param("intervalTime is invalid" if "intervalTime" in q else "intervalTime is required")
        limit = _int(q, "limit", 50)
        if not 1 <= limit <= 200:
            raise _param("limit must be in [1, 200]")
        now = self.market.now_ms
        end = min(now, _int(q, "endTime", now))
        start = max(_int(q, "startTime", c.launch_ms), c.launch_ms)
        cursor = q.get("cursor")
        if cursor:
            try:
                end = min(end, int(urllib.parse.parse_qs(urllib.parse.unquote(cursor))["lasttime"][0]) * 1000 - 1)
            except (KeyError, ValueError):
                raise _param("cursor is invalid") from None
        rows: list[Json] = []
        ts = end - end % interval
        while ts >= start and len(rows) < limit:
            point = self.book.oi_point(c.symbol, ts)
            if point is not None:
                single = point.open_interest
                rows.append(
                    {
                        "openInterest": _d(2 * single, 8),
                        "singleOpenInterest": _trim(single, c.qty_decimals),
                        "timestamp": str(ts),
                    }
                )
            ts -= interval
        more = len(rows) == limit and ts >= start
        next_cursor = urllib.parse.quote(f"lasttime={int(rows[-1]['timestamp']) // 1000}", safe="") if more else ""
        return {"symbol": c.symbol, "category": category, "list": rows, "nextPageCursor": next_cursor}

    def _account_ratio(self, request: web.Request) -> Json:
        """bbd:v5/market/long-short-ratio (``GET /v5/market/account-ratio``): ``category`` linear or
        inverse, ``symbol``, ``period`` 5min/15min/30min/1h/4h/1d all required; ``limit`` 1..500
        (default 50); ``startTime``/``endTime``; newest first. ``buyRatio``/``sellRatio`` are the shares
        of accounts net long/short (strings); ``timestamp`` a string of ms."""
        category = self._category(request, ("linear", "inverse"))
        q = request.query
        c = self._contract(category, q.get("symbol"))
        interval = _INTERVALS.get(q.get("period", ""))
        if interval is None:
            raise _param("period is invalid" if "period" in q else "period is required")
        limit = _int(q, "limit", 50)
        if not 1 <= limit <= 500:
            raise _param("limit must be in [1, 500]")
        now = self.market.now_ms
        end = min(now, _int(q, "endTime", now))
        start = max(_int(q, "startTime", c.launch_ms), c.launch_ms)
        rows: list[Json] = []
        ts = end - end % interval
        while ts >= start and len(rows) < limit:
            buy = long_account_share(c.symbol, ts)
            rows.append({"symbol": c.symbol, "buyRatio": f"{buy:.4f}", "sellRatio": f"{1 - buy:.4f}",
                         "timestamp": str(ts)})
            ts -= interval
        return {"list": rows, "nextPageCursor": ""}

    def _funding_history(self, request: web.Request) -> Json:
        """bbd:v5/market/history-fund-rate: perpetuals only; ``startTime`` alone is an error;
        ``endTime`` alone or neither: the latest ``limit`` (1..200, default 200) up to it; newest
        first."""
        category = self._category(request, ("linear", "inverse"))
        q = request.query
        c = self._contract(category, q.get("symbol"))
        if "startTime" in q and "endTime" not in q:
            raise _param("endTime is required when startTime is passed")
        limit = _int(q, "limit", 200)
        if not 1 <= limit <= 200:
            raise _param("limit must be in [1, 200]")
        now = self.market.now_ms
        end = _int(q, "endTime", now)
        start = _int(q, "startTime", 0)
        records = self.book.funding_records(c.symbol, start, end)
        records = records[-limit:][::-1]
        return {
            "category": category,
            "list": [
                {"symbol": r.symbol, "fundingRate": _trim(r.rate, 8), "fundingRateTimestamp": str(r.funding_ms)}
                for r in records
            ],
        }


_INTERVALS: dict[str, int] = {
    "5min": OI_HISTORY_STEP_MS,
    "15min": 3 * OI_HISTORY_STEP_MS,
    "30min": 6 * OI_HISTORY_STEP_MS,
    "1h": HOUR_MS,
    "4h": 4 * HOUR_MS,
    "1d": DAY_MS,
}


def _frame(body: Json) -> str:
    return orjson.dumps(body).decode()


def _int(query: Any, name: str, default: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise _param(f"{name} is invalid") from None


def _envelope(result: Json, now_ms: int) -> Json:
    return {"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {}, "time": now_ms}


def _envelope_error(code: int, msg: str, now_ms: int, status: int = 200) -> web.Response:
    body = {"retCode": code, "retMsg": msg, "result": {}, "retExtInfo": {}, "time": now_ms}
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def long_account_share(symbol: str, ts: int) -> float:
    """Share of accounts net long of ``symbol`` at ``ts`` (the book keeps no positions, so a
    deterministic slow wave between 0.40 and 0.70, per symbol; the same on every call)."""
    phase = (zlib.crc32(symbol.encode()) % 1000) / 1000 * 2 * math.pi
    return round(0.55 + 0.15 * math.sin(ts / (5 * 3_600_000) + phase), 4)


def _json_handler(
    fn: Callable[[web.Request], Json], market: Market
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(request: web.Request) -> web.StreamResponse:
        result = fn(request)
        return web.Response(body=orjson.dumps(_envelope(result, market.now_ms)), content_type="application/json")

    return handler
