"""OKX v5, server side: the public WebSocket (``/ws/v5/public``) and REST market data.

Written from OKX's API v5 documentation (www.okx.com/docs-v5/en/, mirrored as markdown in repo
rosssaunders/coincise docs/okx/; cited below as ``okx:ws`` = public-data WebSocket channels and the
"Connect"/"Subscribe" sections, ``okx:pd`` = Public Data REST, ``okx:md`` = Market Data REST and the
tickers channel, ``okx:stat`` = Trading Statistics, ``okx:err`` = Error Codes) and the shared notes
(/work/shared/exchanges.md §3). It must not import our adapters: it exists to catch their misreadings.

URL layout, OKX's own paths under one prefix (point ccxt's ``urls['api']['rest']`` at
``{http}/okx`` and ``urls['api']['ws']`` at ``{ws}/okx/ws/v5``):

==================================  =========================================================
``{http}/okx/api/v5/public/…``      instruments, funding-rate, funding-rate-history,
                                    open-interest, mark-price, liquidation-orders,
                                    opt-summary, time, underlying
``{http}/okx/api/v5/market/…``      tickers, ticker, index-tickers
``{http}/okx/api/v5/rubik/stat/…``  contracts/open-interest-history (positional arrays)
``{ws}/okx/ws/v5/public``           public channels
==================================  =========================================================

WebSocket behaviour (okx:ws "Connect", "Subscribe"): ``{"id","op":"subscribe"|"unsubscribe",
"args":[{"channel", "instId"|"instType"|"instFamily"}]}``; each arg is answered
``{"id","event":"subscribe","arg":{…},"connId"}`` or ``{"id","event":"error","code":"60018",
"msg":…,"connId"}`` (unknown channel or instrument); a malformed request is ``60012``, an unknown op
``60019``, more than 480 subscribe/unsubscribe requests an hour ``60014`` (``id`` is echoed when
given). Text ``ping`` gets text ``pong``. The connection is closed (code 4004, okx:err close
frames) when no subscription has been held for ``idle_timeout_s`` (30 s), or when nothing (no push,
no pong) went out for that long. Every push is ``{"arg":{…},"data":[…]}``, all numbers strings,
``ts`` string ms; each channel sends its current state right after the ack (liquidation-orders:
see below).

Channels and cadences (market time; okx:ws, okx:md):

- ``tickers`` (instId): at most every 100 ms, only when the trade or best bid/ask changed;
  ``vol24h`` contracts, ``volCcy24h`` base coin.
- ``funding-rate`` (SWAP instId): every 30–90 s (``funding_push_ms``); ``fundingTime`` is the coming
  settlement, ``nextFundingTime`` the one after (the interval is their difference).
- ``mark-price`` (instId): every 200 ms when the mark changed, else every 10 s.
- ``open-interest`` (instId): every 3 s when changed; ``oi`` contracts, ``oiCcy`` coin, ``oiUsd``.
- ``index-tickers`` (index instId, e.g. ``BTC-USDT``): every 100 ms when changed, else once a minute.
- ``opt-summary`` (instFamily): the whole family at once, every ``opt_summary_ms``; vols fractions,
  ``delta``… in coin terms, ``deltaBS``… Black-Scholes.
- ``liquidation-orders`` (instType): SAMPLED, at most one order per contract per second ("not the
  total"); ``data`` items ``{instType, instId, instFamily, uly, details:[{side, posSide, bkPx, sz,
  bkLoss, ccy, ts}]}`` with ``sz`` in contracts and ``posSide`` ``long``/``short`` (hedge mode) or
  ``net``. With ``replay_liquidations`` (default on; tardis-node drops this first push) the first
  push after subscribing replays the most recent published orders of that instType.

REST (okx:pd, okx:md, okx:stat): envelope ``{"code":"0","msg":"","data":[…]}`` with ``code`` a
string; an unknown instrument is ``51001`` (HTTP 200), a missing parameter ``50014``, a
missing either/or parameter ``50015`` and a bad one ``51000`` (HTTP 400). Each endpoint has its
documented "N requests per 2 seconds" budget keyed by its rate-limit rule (IP, or IP + instrument);
over it: HTTP 429 ``50011`` "Too Many Requests". ``faults.rest_error(200, code=50011)`` returns the
same code inside HTTP 200, as some endpoints do.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import re
import time
import uuid
import zlib
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

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
    IndexState,
    Market,
    PushedVenueLiquidation,
    VenueBook,
)
from streamer.sim.venues import WsConnection, handshake_rejection

__all__ = [
    "CHANNELS",
    "OkxConfig",
    "OkxVenue",
    "funding_rate_row",
    "index_ticker_row",
    "instrument_row",
    "liquidation_row",
    "mark_price_row",
    "open_interest_row",
    "opt_summary_row",
    "ticker_row",
]

Json = dict[str, Any]

NAME = "okx"
WS_KEY = f"{NAME}.public"
REST_KEY = f"{NAME}.rest"

CHANNELS: dict[str, str] = {
    "tickers": "instId",
    "funding-rate": "instId",
    "mark-price": "instId",
    "open-interest": "instId",
    "index-tickers": "instId",
    "opt-summary": "instFamily",
    "liquidation-orders": "instType",
}
"""Public channels served, with the arg key each one takes (okx:ws)."""

LIQUIDATION_INST_TYPES = ("SWAP", "FUTURES", "MARGIN", "OPTION")
INST_TYPES = ("SPOT", "MARGIN", "SWAP", "FUTURES", "OPTION")


@dataclass(frozen=True, slots=True)
class OkxConfig:
    """Documented limits and cadences, OKX's defaults; shrink them in tests.

    ``idle_timeout_s`` is wall-clock seconds (it acts on sockets); cadences are market time.
    ``funding_push_ms``: the funding-rate channel pushes every uniform(lo, hi) ms ("30s to 90s").
    ``opt_summary_ms``: OKX only says the whole family is "pushed at once"; this is our cadence.
    ``replay_liquidations``: the first liquidation-orders push after subscribing replays up to
    ``replay_max`` recent orders (tardis-node treats it so). ``rest_limits``: apply the documented
    per-endpoint budgets.
    """

    idle_timeout_s: float = 30.0
    funding_push_ms: tuple[int, int] = (30_000, 90_000)
    tickers_ms: int = 100
    mark_price_ms: int = 200
    mark_price_heartbeat_ms: int = 10_000
    open_interest_ms: int = 3_000
    index_tickers_ms: int = 100
    index_tickers_heartbeat_ms: int = 60_000
    opt_summary_ms: int = 1_000
    replay_liquidations: bool = True
    replay_max: int = 50
    ops_per_hour: int = 480
    rest_limits: bool = True
    send_queue_max: int = 10_000
    close_timeout_s: float = 2.0


# --------------------------------------------------------------------------------------------
# Wire payloads (pure functions of market state)
# --------------------------------------------------------------------------------------------


def _d(x: float, decimals: int) -> str:
    return f"{x:.{decimals}f}"


def _trim(x: float, decimals: int = 10) -> str:
    text = f"{x:.{decimals}f}"
    if "." in text:  # only a fraction's zeros are trailing: 150000000 with 0 decimals stays whole
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _inst_type(c: Contract) -> str:
    return c.category


def _ct_val(c: Contract) -> str:
    return _trim(c.contract_value)


def instrument_row(c: Contract, code: int) -> Json:
    """One ``/api/v5/public/instruments`` row (okx:pd "Get instruments"): ``ctVal`` × ``ctMult`` units
    of ``ctValCcy`` per contract; ``lotSz``/``minSz`` in contracts; ``expTime`` empty for swaps."""
    lot = _trim(c.step)
    option = c.option
    return {
        "instType": c.category,
        "instId": c.symbol,
        "uly": c.family,
        "instFamily": c.family,
        "category": "1",
        "baseCcy": "",
        "quoteCcy": "",
        "settleCcy": c.settle,
        "ctVal": _ct_val(c),
        "ctMult": "1",
        "ctValCcy": "USD" if c.inverse else c.base,
        "optType": c.option_type if option else "",
        "stk": _trim(c.strike) if option else "",
        "listTime": str(c.launch_ms),
        "auctionEndTime": "",
        "contTdSwTime": "",
        "preMktSwTime": "",
        "openType": "",
        "expTime": str(c.expiry_ms) if c.expiry_ms else "",
        "lever": "" if option else ("125" if c.base == "BTC" else "100"),
        "tickSz": _trim(c.tick),
        "lotSz": lot,
        "minSz": lot,
        "ctType": "" if option else ("inverse" if c.inverse else "linear"),
        "alias": c.alias,
        "state": "live",
        "ruleType": "normal",
        "maxLmtSz": "100000000",
        "maxMktSz": "10000" if not option else "5000",
        "maxLmtAmt": "20000000",
        "maxMktAmt": "",
        "maxTwapSz": "10000",
        "maxIcebergSz": "100000000",
        "maxTriggerSz": "100000000",
        "maxStopSz": "10000",
        "futureSettlement": False,
        "tradeQuoteCcyList": [],
        "instIdCode": code,
    }


def ticker_row(c: Contract, st: ContractState, idx: IndexState, ts: int) -> Json:
    """``tickers`` data / ``/api/v5/market/tickers`` row (okx:md): ``vol24h`` contracts, ``volCcy24h``
    base coin (derivatives); sizes in contracts."""
    pd, qd = c.price_decimals, c.qty_decimals
    ratio = st.mark_price / idx.price if not c.option else st.mark_price
    sod0 = idx.sod_utc0 * ratio if not c.option else st.open_24h
    sod8 = idx.sod_utc8 * ratio if not c.option else st.open_24h
    return {
        "instType": _inst_type(c),
        "instId": c.symbol,
        "last": _d(st.last_price, pd),
        "lastSz": _trim(st.last_qty, qd),
        "askPx": _d(st.ask_price, pd),
        "askSz": _trim(st.ask_qty, qd),
        "bidPx": _d(st.bid_price, pd) if st.bid_price > 0 else "",
        "bidSz": _trim(st.bid_qty, qd) if st.bid_price > 0 else "",
        "open24h": _d(st.open_24h, pd),
        "high24h": _d(st.high_24h, pd),
        "low24h": _d(st.low_24h, pd),
        "volCcy24h": _trim(c.base_qty(st.volume_24h, st.last_price), 6),
        "vol24h": _trim(st.volume_24h, max(qd, 2)),
        "sodUtc0": _d(sod0, pd),
        "sodUtc8": _d(sod8, pd),
        "ts": str(ts),
    }


def mark_price_row(c: Contract, st: ContractState, ts: int) -> Json:
    """``mark-price`` data / ``/api/v5/public/mark-price`` row: ``instType, instId, markPx, ts``."""
    decimals = 8 if c.option else c.price_decimals + 1
    return {"instType": _inst_type(c), "instId": c.symbol, "markPx": _trim(st.mark_price, decimals), "ts": str(ts)}


def open_interest_row(c: Contract, st: ContractState, ts: int) -> Json:
    """``open-interest`` data / REST row: ``oi`` contracts, ``oiCcy`` coin, ``oiUsd`` USD."""
    oi = st.open_interest
    price = st.index_price if c.option else st.mark_price
    return {
        "instType": _inst_type(c),
        "instId": c.symbol,
        "oi": _trim(oi, max(c.qty_decimals, 2)),
        "oiCcy": _trim(c.base_qty(oi, price), 8),
        "oiUsd": _trim(c.notional_usd(oi, price), 4),
        "ts": str(ts),
    }


def funding_rate_row(c: Contract, st: ContractState, ts: int) -> Json:
    """``funding-rate`` data / ``/api/v5/public/funding-rate`` row (okx:ws, okx:pd): ``fundingRate``
    is the current rate for the coming settlement at ``fundingTime``; ``nextFundingTime`` is one
    interval later; ``settFundingRate`` the last settled rate."""
    interval = c.funding_interval_h * HOUR_MS
    cap = c.funding_cap
    return {
        "instType": "SWAP",
        "instId": c.symbol,
        "method": "current_period",
        "formulaType": "withRate",
        "fundingRate": _trim(st.funding_rate, 10),
        "nextFundingRate": "",
        "fundingTime": str(st.next_funding_ms),
        "nextFundingTime": str(st.next_funding_ms + interval),
        "minFundingRate": _trim(-cap),
        "maxFundingRate": _trim(cap),
        "interestRate": "0.0001",
        "impactValue": "20000.0000000000000000",
        "settState": "settled",
        "settFundingRate": _trim(st.last_settled_rate, 10),
        "premium": _trim(st.premium, 8),
        "ts": str(ts),
    }


def index_ticker_row(idx: IndexState, decimals: int, ts: int) -> Json:
    """``index-tickers`` data / ``/api/v5/market/index-tickers`` row (okx:ws, okx:md)."""
    return {
        "instId": idx.key,
        "idxPx": _d(idx.price, decimals),
        "open24h": _d(idx.open_24h, decimals),
        "high24h": _d(idx.high_24h, decimals),
        "low24h": _d(idx.low_24h, decimals),
        "sodUtc0": _d(idx.sod_utc0, decimals),
        "sodUtc8": _d(idx.sod_utc8, decimals),
        "ts": str(ts),
    }


def opt_summary_row(c: Contract, st: ContractState, atm_vol: float, ts: int) -> Json:
    """``opt-summary`` data / ``/api/v5/public/opt-summary`` row (okx:ws): vols are fractions;
    ``deltaBS``… Black-Scholes (USD), ``delta``… in coin terms (price in BTC)."""
    index = st.index_price
    mark_btc = st.mark_price
    return {
        "instType": "OPTION",
        "instId": c.symbol,
        "uly": c.family,
        "delta": _d(st.delta - mark_btc, 8),
        "gamma": _d(st.gamma * index, 8),
        "vega": _d(st.vega / index, 8),
        "theta": _d(st.theta / index, 8),
        "deltaBS": _d(st.delta, 8),
        "gammaBS": _d(st.gamma, 10),
        "vegaBS": _d(st.vega, 8),
        "thetaBS": _d(st.theta, 8),
        "lever": _d(1 / mark_btc if mark_btc > 0 else 0.0, 4),
        "markVol": _d(st.mark_iv, 8),
        "bidVol": _d(st.bid_iv, 8) if st.bid_iv > 0 else "0",
        "askVol": _d(st.ask_iv, 8),
        "realVol": "",
        "volLv": _d(atm_vol, 8),
        "fwdPx": _d(st.forward, 2),
        "ts": str(ts),
    }


def liquidation_row(book: VenueBook, symbol: str, rows: Iterable[PushedVenueLiquidation]) -> Json:
    """One ``liquidation-orders`` data item (okx:ws): the instrument and its ``details``, newest
    first. ``side`` is the ORDER side (lowercase); ``sz`` contracts; ``bkPx`` the bankruptcy price;
    ``bkLoss`` in the settle currency; ``ccy`` empty (MARGIN only)."""
    c = book.contracts[symbol]
    details = []
    for p in sorted(rows, key=lambda p: (p.liquidation.trade_ms, p.liquidation.seq), reverse=True):
        liq = p.liquidation
        details.append(
            {
                "side": liq.side.lower(),
                "posSide": liq.pos_side,
                "bkPx": _d(liq.price, c.price_decimals),
                "sz": _trim(liq.qty, c.qty_decimals),
                "bkLoss": _trim(liq.bk_loss, 8),
                "ccy": "",
                "ts": str(liq.trade_ms),
            }
        )
    return {"instType": c.category, "instId": c.symbol, "instFamily": c.family, "uly": c.family, "details": details}


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class _ApiError(Exception):
    """An OKX REST error: HTTP ``status`` with ``{"code": code, "msg": msg, "data": []}`` (okx:err)."""

    def __init__(self, code: int, msg: str, status: int = 200) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.status = status


class _Refusal(Exception):
    """A refused WebSocket request: ``{"event":"error","code":code,"msg":msg}`` (okx:err 600xx)."""

    def __init__(self, code: str, msg: str) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg


def _no_instrument() -> _ApiError:
    return _ApiError(51001, "Instrument ID, Instrument ID code or Spread ID doesn't exist.")


def _empty(name: str) -> _ApiError:
    return _ApiError(50014, f"Parameter {name} can not be empty.", 400)


def _bad(name: str) -> _ApiError:
    return _ApiError(51000, f"Parameter {name} error", 400)


_MESSAGES: dict[int, str] = {
    50001: "Service temporarily unavailable. Please try again later.",
    50004: "API endpoint request timeout. (does not mean that the request was successful or failed, please check the request result).",  # noqa: E501
    50011: "Rate limit reached. Please refer to API documentation and throttle requests accordingly.",
    50013: "Systems are busy. Please try again later.",
    50026: "System error. Try again later",
}

REST_LIMITS: dict[str, tuple[int, str]] = {
    "/api/v5/public/instruments": (20, "instType"),
    "/api/v5/public/funding-rate": (10, "instId"),
    "/api/v5/public/funding-rate-history": (10, "instId"),
    "/api/v5/public/open-interest": (20, "instId"),
    "/api/v5/public/mark-price": (10, "instId"),
    "/api/v5/public/liquidation-orders": (40, ""),
    "/api/v5/public/opt-summary": (20, "instFamily"),
    "/api/v5/public/time": (10, ""),
    "/api/v5/public/underlying": (20, ""),
    "/api/v5/market/tickers": (20, ""),
    "/api/v5/market/ticker": (20, ""),
    "/api/v5/market/index-tickers": (20, ""),
    "/api/v5/rubik/stat/contracts/open-interest-history": (10, "instId"),
    "/api/v5/rubik/stat/contracts/long-short-account-ratio": (5, "ccy"),
}
"""Documented budgets, requests per 2 seconds, and the parameter their rule adds to the IP."""

_ID_RE = re.compile(r"^[A-Za-z0-9]{1,32}$")


# --------------------------------------------------------------------------------------------
# Connections and subscriptions
# --------------------------------------------------------------------------------------------

SubKey = tuple[str, str]
"""(channel, instId | instType | instFamily)."""


class _Conn(WsConnection):
    """One client of ``/ws/v5/public``: its subscriptions and the OKX idle rule."""

    def __init__(self, venue: OkxVenue, ws: web.WebSocketResponse, request: web.Request) -> None:
        cfg = venue.config
        super().__init__(
            WS_KEY,
            ws,
            request,
            venue.faults,
            venue.stats,
            idle_timeout_s=cfg.idle_timeout_s,
            idle_close=(4004, f"No data received in {cfg.idle_timeout_s:g}s"),
            render_garbage=venue.garbage,
            send_queue_max=cfg.send_queue_max,
        )
        self.conn_id = uuid.uuid4().hex[:8]
        self.subs: dict[SubKey, None] = {}
        self.unsubscribed_mono: float = self.opened_mono
        self.ops: deque[float] = deque()

    def idle_deadline(self) -> float:
        """okx:ws "Connect": cut when no subscription is established, or nothing was pushed, for
        ``idle_timeout_s``; a pong counts as something pushed."""
        if not self.subs:
            return self.unsubscribed_mono + self.idle_timeout_s
        return self.activity_mono + self.idle_timeout_s


@dataclass(slots=True)
class _Sub:
    """Subscribers of one (channel, key) and its publishing state."""

    channel: str
    key: str
    conns: set[_Conn] = field(default_factory=set)
    next_due: int = 0
    last: str | None = None
    last_push: int = 0


# --------------------------------------------------------------------------------------------
# The venue
# --------------------------------------------------------------------------------------------


class OkxVenue:
    """OKX v5 on the simulator's app. See the module docstring for URLs and behaviour."""

    def __init__(self, market: Market, faults: FaultPlan, config: OkxConfig | None = None) -> None:
        self.market = market
        self.book: VenueBook = market.okx
        self.faults = faults
        self.config = config or OkxConfig()
        self.connections: set[_Conn] = set()
        self.subs: dict[SubKey, _Sub] = {}
        self.stats: Counter[str] = Counter()
        self._cursor = len(self.book.pushed)
        self._rng = random.Random(f"{market.seed}:okx:cadence")
        self._meters: dict[tuple[str, str], deque[float]] = {}

    @property
    def name(self) -> str:
        return NAME

    # -- wiring -----------------------------------------------------------------------------

    def install(self, app: web.Application) -> None:
        sub = web.Application(middlewares=[self._rest_middleware()])
        routes: dict[str, Callable[[web.Request], list[Any]]] = {
            "/api/v5/public/instruments": self._instruments,
            "/api/v5/public/funding-rate": self._funding_rate,
            "/api/v5/public/funding-rate-history": self._funding_rate_history,
            "/api/v5/public/open-interest": self._open_interest,
            "/api/v5/public/mark-price": self._mark_price,
            "/api/v5/public/liquidation-orders": self._liquidation_orders,
            "/api/v5/public/opt-summary": self._opt_summary,
            "/api/v5/public/time": lambda _r: [{"ts": str(self.market.now_ms)}],
            "/api/v5/public/underlying": self._underlying,
            "/api/v5/market/tickers": self._tickers,
            "/api/v5/market/ticker": self._ticker,
            "/api/v5/market/index-tickers": self._index_tickers,
            "/api/v5/rubik/stat/contracts/open-interest-history": self._oi_history,
            "/api/v5/rubik/stat/contracts/long-short-account-ratio": self._long_short_ratio,
        }
        for path, fn in routes.items():
            sub.router.add_get(path, _json_handler(fn))
        sub.router.add_get("/ws/v5/public", self._ws_session)
        app.add_subapp(f"/{NAME}", sub)

    def urls(self, http_root: str, ws_root: str) -> dict[str, str]:
        return {
            "okx_rest": f"{http_root}/{NAME}",
            "okx_ws": f"{ws_root}/{NAME}/ws/v5",
            "okx_ws_public": f"{ws_root}/{NAME}/ws/v5/public",
        }

    async def close(self) -> None:
        for conn in list(self.connections):
            with contextlib.suppress(ConnectionError, RuntimeError):
                await conn.close(WSCloseCode.GOING_AWAY, "server shutdown")

    # -- rendering --------------------------------------------------------------------------

    def _index_decimals(self, idx: IndexState) -> int:
        return max(c.price_decimals for c in self.book.contracts.values() if c.index == idx.key and not c.option)

    def _atm_vol(self, family: str) -> float:
        opts = [c for c in self.book.contracts.values() if c.option and c.family == family]
        if not opts:
            return 0.0
        fwd = self.book.state(opts[0].symbol).forward
        atm = min(opts, key=lambda c: abs(c.strike - fwd))
        return self.book.state(atm.symbol).mark_iv

    def render(self, channel: str, key: str, ts: int) -> list[Json]:
        """The ``data`` array of one push of ``channel`` for ``key`` at market time ``ts``."""
        book = self.book
        if channel == "index-tickers":
            idx = book.indexes[key]
            return [index_ticker_row(idx, self._index_decimals(idx), ts)]
        if channel == "opt-summary":
            vol = self._atm_vol(key)
            return [
                opt_summary_row(c, book.state(c.symbol), vol, ts)
                for c in book.contracts.values()
                if c.option and c.family == key
            ]
        c = book.contracts[key]
        st = book.state(key)
        if channel == "tickers":
            return [ticker_row(c, st, book.indexes[c.index], ts)]
        if channel == "mark-price":
            return [mark_price_row(c, st, ts)]
        if channel == "open-interest":
            return [open_interest_row(c, st, ts)]
        if channel == "funding-rate":
            return [funding_rate_row(c, st, ts)]
        raise AssertionError(f"not a periodic channel: {channel}")

    @staticmethod
    def _content(data: list[Json]) -> str:
        """What a change test compares: the data without its time stamps."""
        return orjson.dumps([{k: v for k, v in row.items() if k != "ts"} for row in data]).decode()

    def _push(self, sub: _Sub, data: list[Json], conns: Iterable[_Conn]) -> None:
        arg = {"channel": sub.channel, CHANNELS[sub.channel]: sub.key}
        frame = _frame({"arg": arg, "data": data})
        for conn in conns:
            conn.push(frame)

    # -- ticking ----------------------------------------------------------------------------

    def on_tick(self, now_ms: int) -> None:
        self._push_liquidations()
        cfg = self.config
        for sub in self.subs.values():
            if not sub.conns or sub.channel == "liquidation-orders" or now_ms < sub.next_due:
                continue
            if sub.channel == "funding-rate":
                lo, hi = cfg.funding_push_ms
                sub.next_due = now_ms + self._rng.randint(lo, hi)
                self._push(sub, self.render(sub.channel, sub.key, now_ms), sub.conns)
                continue
            cadence, heartbeat = self._cadence(sub.channel)
            sub.next_due = (now_ms // cadence + 1) * cadence
            data = self.render(sub.channel, sub.key, now_ms)
            content = self._content(data)
            changed = content != sub.last or sub.channel == "opt-summary"
            if changed or (heartbeat and now_ms - sub.last_push >= heartbeat):
                sub.last = content
                sub.last_push = now_ms
                self._push(sub, data, sub.conns)

    def _cadence(self, channel: str) -> tuple[int, int]:
        """(push period when changed, heartbeat period when not; 0: none), market ms (okx:ws)."""
        cfg = self.config
        return {
            "tickers": (cfg.tickers_ms, 0),
            "mark-price": (cfg.mark_price_ms, cfg.mark_price_heartbeat_ms),
            "open-interest": (cfg.open_interest_ms, 0),
            "index-tickers": (cfg.index_tickers_ms, cfg.index_tickers_heartbeat_ms),
            "opt-summary": (cfg.opt_summary_ms, 0),
        }[channel]

    def _push_liquidations(self) -> None:
        pushed = self.book.pushed
        new = pushed[self._cursor :]
        self._cursor = len(pushed)
        groups: dict[tuple[str, int], dict[str, list[PushedVenueLiquidation]]] = {}
        for p in new:
            inst_type = self.book.contracts[p.liquidation.symbol].category
            groups.setdefault((inst_type, p.push_ms), {}).setdefault(p.liquidation.symbol, []).append(p)
        for (inst_type, _), by_symbol in groups.items():
            sub = self.subs.get(("liquidation-orders", inst_type))
            if sub is None or not sub.conns:
                continue
            data = [liquidation_row(self.book, symbol, rows) for symbol, rows in by_symbol.items()]
            self._push(sub, data, sub.conns)

    def _initial(self, conn: _Conn, sub: _Sub) -> None:
        """What a new subscriber gets at once: the current state, or the liquidation replay."""
        now = self.market.now_ms
        if sub.channel != "liquidation-orders":
            self._push(sub, self.render(sub.channel, sub.key, now), (conn,))
            return
        if not self.config.replay_liquidations:
            return
        recent = [p for p in self.book.published() if self.book.contracts[p.liquidation.symbol].category == sub.key][
            -self.config.replay_max :
        ]
        if not recent:
            return
        by_symbol: dict[str, list[PushedVenueLiquidation]] = {}
        for p in recent:
            by_symbol.setdefault(p.liquidation.symbol, []).append(p)
        self.stats["liquidation_replays"] += 1
        self._push(sub, [liquidation_row(self.book, s, rows) for s, rows in by_symbol.items()], (conn,))

    # -- subscriptions ----------------------------------------------------------------------

    def _validate(self, arg: object) -> tuple[SubKey, Json]:
        """``((channel, key), echoed arg)``; raises ``_Refusal`` (okx:err 60012, 60018)."""
        if not isinstance(arg, dict) or not isinstance(arg.get("channel"), str):
            raise _Refusal("60012", f"Invalid request: {orjson.dumps(arg).decode()}")
        channel = arg["channel"]
        key_name = CHANNELS.get(channel)
        value = arg.get(key_name) if key_name else None
        if key_name is None or not isinstance(value, str) or not self._exists(channel, value):
            detail = f"channel:{channel}" + (f",{key_name}:{value}" if key_name else "")
            raise _Refusal(
                "60018",
                f"Wrong URL or {detail} doesn't exist. Please use the correct URL, channel and parameters "
                "referring to API document.",
            )
        return (channel, value), {"channel": channel, key_name: value}

    def _exists(self, channel: str, value: str) -> bool:
        book = self.book
        if channel == "index-tickers":
            return value in book.indexes
        if channel == "opt-summary":
            return any(c.option and c.family == value for c in book.contracts.values())
        if channel == "liquidation-orders":
            return value in LIQUIDATION_INST_TYPES
        c = book.contracts.get(value)
        if c is None:
            return False
        return c.perpetual if channel == "funding-rate" else True

    def _control(self, conn: _Conn, text: str) -> None:
        """Answer one request (okx:ws "Subscribe", "Unsubscribe"; okx:err 60012, 60014, 60018, 60019)."""
        if text == "ping":
            conn.touch()
            conn.reply("pong")
            return
        try:
            req = orjson.loads(text)
        except orjson.JSONDecodeError:
            conn.reply(self._error(conn, None, "60012", f"Invalid request: {text[:200]}"))
            return
        if not isinstance(req, dict):
            conn.reply(self._error(conn, None, "60012", f"Invalid request: {text[:200]}"))
            return
        req_id = req.get("id")
        if req_id is not None and (not isinstance(req_id, str) or not _ID_RE.match(req_id)):
            conn.reply(self._error(conn, None, "60012", f"Invalid request: {text[:200]}"))
            return
        op = req.get("op")
        if op not in ("subscribe", "unsubscribe"):
            conn.reply(self._error(conn, req_id, "60019", f"Invalid op: {op}"))
            return
        args = req.get("args")
        if not isinstance(args, list) or not args:
            conn.reply(self._error(conn, req_id, "60012", f"Invalid request: {text[:200]}"))
            return
        now = time.monotonic()
        conn.ops.append(now)
        while conn.ops and now - conn.ops[0] >= 3600.0:
            conn.ops.popleft()
        if len(conn.ops) > self.config.ops_per_hour:
            conn.reply(self._error(conn, req_id, "60014", "Requests too frequent"))
            return
        for arg in args:
            try:
                key, echo = self._validate(arg)
            except _Refusal as refusal:
                conn.reply(self._error(conn, req_id, refusal.code, refusal.msg))
                continue
            ack: Json = {"id": req_id} if req_id is not None else {}
            ack.update({"event": op, "arg": echo, "connId": conn.conn_id})
            conn.reply(_frame(ack))
            if op == "subscribe":
                self._subscribe(conn, key)
            else:
                self._unsubscribe(conn, key)

    def _error(self, conn: _Conn, req_id: object, code: str, msg: str) -> str:
        body: Json = {"id": req_id} if req_id is not None else {}
        body.update({"event": "error", "code": code, "msg": msg, "connId": conn.conn_id})
        return _frame(body)

    def _subscribe(self, conn: _Conn, key: SubKey) -> None:
        if key in conn.subs:
            return
        conn.subs[key] = None
        sub = self.subs.get(key)
        if sub is None:
            sub = self.subs[key] = _Sub(key[0], key[1])
            now = self.market.now_ms
            if sub.channel == "funding-rate":
                lo, hi = self.config.funding_push_ms
                sub.next_due = now + self._rng.randint(lo, hi)
            elif sub.channel != "liquidation-orders":
                cadence, _ = self._cadence(sub.channel)
                sub.next_due = (now // cadence + 1) * cadence
                sub.last_push = now
                sub.last = self._content(self.render(sub.channel, sub.key, now))
        sub.conns.add(conn)
        self._initial(conn, sub)

    def _unsubscribe(self, conn: _Conn, key: SubKey) -> None:
        if conn.subs.pop(key, 0) == 0:
            return
        if not conn.subs:
            conn.unsubscribed_mono = time.monotonic()
        sub = self.subs.get(key)
        if sub is not None:
            sub.conns.discard(conn)
            if not sub.conns:
                del self.subs[key]

    # -- WebSocket --------------------------------------------------------------------------

    async def _ws_session(self, request: web.Request) -> web.StreamResponse:
        rejection = await handshake_rejection(self.faults, WS_KEY, request)
        if rejection is not None:
            return rejection
        ws = web.WebSocketResponse(autoping=True, compress=False, timeout=self.config.close_timeout_s)
        await ws.prepare(request)
        conn = _Conn(self, ws, request)
        self.connections.add(conn)
        self.faults.register(conn)
        self.stats["connections"] += 1
        writer = asyncio.create_task(conn.write_loop(), name=f"sim-okx-write-{id(conn):x}")
        keeper = asyncio.create_task(conn.keep_loop(), name=f"sim-okx-keep-{id(conn):x}")
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self._control(conn, msg.data)
                elif msg.type == WSMsgType.BINARY:
                    conn.reply(self._error(conn, None, "60012", "Invalid request: binary frame"))
        finally:
            writer.cancel()
            keeper.cancel()
            await asyncio.gather(writer, keeper, return_exceptions=True)
            for key in list(conn.subs):
                self._unsubscribe(conn, key)
            self.faults.unregister(conn)
            self.connections.discard(conn)
        return ws

    def garbage(self, _conn: WsConnection, kind: GarbageKind) -> str | bytes:
        """One malformed frame of ``kind`` (faults.send_garbage)."""
        if kind == "binary":
            return b"\x00\x9fsimulated binary garbage\xff"
        if kind == "text":
            return "<html><body>502 Bad Gateway</body></html>"
        symbol = "BTC-USDT-SWAP"
        st = self.book.state(symbol)
        now = self.market.now_ms
        if kind == "wrong_types":
            row = {"instType": "SWAP", "instId": symbol, "markPx": st.mark_price, "ts": now}
            return _frame({"arg": {"channel": "mark-price", "instId": symbol}, "data": [row]})
        if kind == "unknown_event":
            return _frame({"arg": {"channel": "sim-unknown-channel", "instId": symbol}, "data": [{"ts": str(now)}]})
        frame = _frame(
            {"arg": {"channel": "mark-price", "instId": symbol}, "data": self.render("mark-price", symbol, now)}
        )
        return frame[: len(frame) // 2]

    # -- REST -------------------------------------------------------------------------------

    def _rest_middleware(self) -> Middleware:
        @web.middleware
        async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
            if request.headers.get("Upgrade", "").lower() == "websocket":
                return await handler(request)
            fault = self.faults.take_rest_fault(REST_KEY, request.path)
            if fault is not None and fault.delay_s > 0:
                await self.faults.sleep(fault.delay_s)
            if fault is not None and fault.status is not None:
                return self._fault_response(fault)
            if self.config.rest_limits and self._over_limit(request):
                self.stats["rest_limit_429"] += 1
                return _error_response(50011, "Too Many Requests", 429)
            try:
                return await handler(request)
            except _ApiError as err:
                return _error_response(err.code, err.msg, err.status)
            except web.HTTPException as exc:
                return web.Response(status=exc.status, text=exc.text or exc.reason)

        return middleware

    def _over_limit(self, request: web.Request) -> bool:
        rel = request.path[len(NAME) + 1 :]
        limit, rule = REST_LIMITS.get(rel, (20, ""))
        key = (rel, request.query.get(rule, "") if rule else "")
        window = self._meters.setdefault(key, deque())
        now = time.monotonic()
        while window and now - window[0] >= 2.0:
            window.popleft()
        window.append(now)
        return len(window) > limit

    def _fault_response(self, fault: RestFault) -> web.Response:
        """A scripted failure in OKX's shapes (okx:err): 429 ``50011``; HTTP 200 with the fault's
        ``code`` (``50011`` "Rate limit reached…"); 503 ``50001``; 500 ``50026``; 502/504 HTML."""
        status = fault.status or 500
        headers = {"Retry-After": str(fault.retry_after_s)} if fault.retry_after_s is not None else {}
        if fault.body is not None:
            resp = web.Response(status=status, text=fault.body, content_type="application/json")
        elif status in (502, 504):
            text = f"<html><head><title>{status}</title></head><body><h1>{status}</h1></body></html>"
            resp = web.Response(status=status, text=text, content_type="text/html")
        else:
            code = fault.code
            if code is None:
                code = {429: 50011, 418: 50011, 503: 50001, 500: 50026, 504: 50004}.get(status, 50026)
            msg = "Too Many Requests" if (code == 50011 and status == 429) else _MESSAGES.get(code, "Operation failed.")
            resp = _error_response(code, msg, status)
        resp.headers.update(headers)
        return resp

    # REST handlers ---------------------------------------------------------------------------

    def _contract(self, inst_id: str | None, name: str = "instId") -> Contract:
        if not inst_id:
            raise _empty(name)
        c = self.book.contracts.get(inst_id)
        if c is None:
            raise _no_instrument()
        return c

    def _inst_type(self, request: web.Request, allowed: tuple[str, ...] = INST_TYPES) -> str:
        inst_type = request.query.get("instType")
        if not inst_type:
            raise _empty("instType")
        if inst_type not in allowed:
            raise _bad("instType")
        return inst_type

    def _selected(self, request: web.Request, inst_type: str) -> list[Contract]:
        """Contracts of ``inst_type``, narrowed by ``instFamily`` (or ``uly``) and ``instId``."""
        q = request.query
        family = q.get("instFamily") or q.get("uly")
        rows = [c for c in self.book.contracts.values() if c.category == inst_type]
        if family is not None:
            rows = [c for c in rows if c.family == family]
        if "instId" in q:
            c = self._contract(q["instId"])
            if c.category != inst_type or (family is not None and c.family != family):
                raise _no_instrument()
            rows = [c]
        return rows

    def _instruments(self, request: web.Request) -> list[Json]:
        """okx:pd "Get instruments": ``instType`` required; OPTION needs ``instFamily`` (ccxt sends
        the older ``uly``, which is accepted too); SPOT/MARGIN: none listed here."""
        inst_type = self._inst_type(request)
        q = request.query
        if inst_type == "OPTION" and not (q.get("instFamily") or q.get("uly")):
            raise _empty("instFamily")
        codes = {s: 10_000 + i for i, s in enumerate(self.book.contracts)}
        return [instrument_row(c, codes[c.symbol]) for c in self._selected(request, inst_type)]

    def _funding_rate(self, request: web.Request) -> list[Json]:
        """okx:pd "Get funding rate": ``instId`` of a SWAP, or ``ANY`` for every swap."""
        inst_id = request.query.get("instId")
        now = self.market.now_ms
        if inst_id == "ANY":
            rows = [c for c in self.book.contracts.values() if c.perpetual]
        else:
            c = self._contract(inst_id)
            if not c.perpetual:
                raise _no_instrument()
            rows = [c]
        return [funding_rate_row(c, self.book.state(c.symbol), now) for c in rows]

    def _funding_rate_history(self, request: web.Request) -> list[Json]:
        """okx:pd "Get funding rate history": newest first; ``after``/``before`` page by
        ``fundingTime`` (older / newer than); ``limit`` ≤ 400 (default 400); up to three months."""
        q = request.query
        c = self._contract(q.get("instId"))
        if not c.perpetual:
            raise _no_instrument()
        limit = min(_int(q, "limit", 400), 400)
        after = _int(q, "after", 0)
        before = _int(q, "before", 0)
        records = self.book.funding_records(c.symbol, 0, self.market.now_ms)
        if after:
            records = [r for r in records if r.funding_ms < after]
        if before:
            records = [r for r in records if r.funding_ms > before]
        records = records[:limit] if before and not after else records[-limit:]
        return [
            {
                "instType": "SWAP",
                "instId": c.symbol,
                "formulaType": "withRate",
                "fundingRate": _trim(r.rate),
                "realizedRate": _trim(r.rate),
                "fundingTime": str(r.funding_ms),
                "method": "current_period",
            }
            for r in reversed(records)
        ]

    def _open_interest(self, request: web.Request) -> list[Json]:
        """okx:pd "Get open interest": ``instType`` SWAP/FUTURES/OPTION (OPTION needs ``instFamily``)."""
        inst_type = self._inst_type(request, ("SWAP", "FUTURES", "OPTION"))
        if inst_type == "OPTION" and not (request.query.get("instFamily") or request.query.get("uly")):
            raise _empty("instFamily")
        now = self.market.now_ms
        return [open_interest_row(c, self.book.state(c.symbol), now) for c in self._selected(request, inst_type)]

    def _mark_price(self, request: web.Request) -> list[Json]:
        """okx:pd "Get mark price": ``instType`` MARGIN/SWAP/FUTURES/OPTION."""
        inst_type = self._inst_type(request, ("MARGIN", "SWAP", "FUTURES", "OPTION"))
        now = self.market.now_ms
        return [mark_price_row(c, self.book.state(c.symbol), now) for c in self._selected(request, inst_type)]

    def _tickers(self, request: web.Request) -> list[Json]:
        """okx:md "Get tickers": ``instType`` required, optional ``instFamily``."""
        inst_type = self._inst_type(request, ("SPOT", "SWAP", "FUTURES", "OPTION"))
        now = self.market.now_ms
        book = self.book
        return [
            ticker_row(c, book.state(c.symbol), book.indexes[c.index], now) for c in self._selected(request, inst_type)
        ]

    def _ticker(self, request: web.Request) -> list[Json]:
        """okx:md "Get ticker": one ``instId``."""
        c = self._contract(request.query.get("instId"))
        return [ticker_row(c, self.book.state(c.symbol), self.book.indexes[c.index], self.market.now_ms)]

    def _index_tickers(self, request: web.Request) -> list[Json]:
        """okx:md "Get index tickers": ``quoteCcy`` or ``instId`` (``BTC-USDT``) required."""
        q = request.query
        quote, inst_id = q.get("quoteCcy"), q.get("instId")
        if not quote and not inst_id:
            raise _ApiError(50015, "Either parameter quoteCcy or instId is required", 400)
        rows = [
            i
            for i in self.book.indexes.values()
            if (not inst_id or i.key == inst_id) and (not quote or i.quote == quote)
        ]
        if inst_id and not rows:
            raise _no_instrument()
        now = self.market.now_ms
        return [index_ticker_row(i, self._index_decimals(i), now) for i in rows]

    def _liquidation_orders(self, request: web.Request) -> list[Json]:
        """okx:pd "Get liquidation orders" (exchanges.md §3.3): ``instType`` required; SWAP/FUTURES
        need ``uly`` or ``instFamily`` (else 50015); ``state`` filled (default) or unfilled (none
        here); ``before``/``after`` by ``ts``; ``limit`` ≤ 100. Serves the published (sampled)
        orders of the last day, newest first, one item per instrument."""
        q = request.query
        inst_type = self._inst_type(request, LIQUIDATION_INST_TYPES)
        family = q.get("instFamily") or q.get("uly")
        if inst_type in ("SWAP", "FUTURES") and not family:
            raise _ApiError(50015, "Either parameter uly or instFamily is required", 400)
        state = q.get("state", "filled")
        if state not in ("filled", "unfilled"):
            raise _bad("state")
        limit = min(_int(q, "limit", 100), 100)
        after, before = _int(q, "after", 0), _int(q, "before", 0)
        if state == "unfilled":
            return []
        since = self.market.now_ms - DAY_MS
        rows = [
            p
            for p in self.book.published(since)
            if (c := self.book.contracts[p.liquidation.symbol]).category == inst_type
            and (family is None or c.family == family)
            and (not q.get("alias") or c.alias == q["alias"])
            and (not after or p.liquidation.trade_ms < after)
            and (not before or p.liquidation.trade_ms > before)
        ]
        rows = rows[:limit] if before and not after else rows[-limit:]
        by_symbol: dict[str, list[PushedVenueLiquidation]] = {}
        for p in rows:
            by_symbol.setdefault(p.liquidation.symbol, []).append(p)
        out = []
        for symbol, items in by_symbol.items():
            loss = sum(p.liquidation.bk_loss for p in items)
            out.append({**liquidation_row(self.book, symbol, items), "totalLoss": _trim(loss, 8)})
        return out

    def _opt_summary(self, request: web.Request) -> list[Json]:
        """okx:pd "Get option market data": ``instFamily`` required; ``expTime`` ``YYMMDD``."""
        q = request.query
        family = q.get("instFamily") or q.get("uly")
        if not family:
            raise _empty("instFamily")
        opts = [c for c in self.book.contracts.values() if c.option and c.family == family]
        if not opts:
            raise _bad("instFamily")
        exp = q.get("expTime")
        if exp:
            opts = [c for c in opts if time.strftime("%y%m%d", time.gmtime(c.expiry_ms / 1000)) == exp]
        vol = self._atm_vol(family)
        now = self.market.now_ms
        return [opt_summary_row(c, self.book.state(c.symbol), vol, now) for c in opts]

    def _underlying(self, request: web.Request) -> list[Any]:
        """okx:pd "Get underlying": one array of the families of ``instType``."""
        inst_type = self._inst_type(request, ("SWAP", "FUTURES", "OPTION"))
        families = sorted({c.family for c in self.book.contracts.values() if c.category == inst_type})
        return [families]

    def _long_short_ratio(self, request: web.Request) -> list[Any]:
        """okx:stat "Get long/short ratio" (``GET /api/v5/rubik/stat/contracts/long-short-account-ratio``):
        ``ccy`` required; ``period`` 5m (default), 1H or 1D (5m reaches back 2 days, 1H 30 days, 1D 180
        days); ``begin``/``end``; rows are positional ``[ts, ratio]`` strings, newest first. The ratio is of
        accounts net long to net short over the currency's futures and swaps."""
        q = request.query
        ccy = q.get("ccy")
        if not ccy:
            raise _empty("ccy")
        if not any(c.base == ccy and not c.option for c in self.book.contracts.values()):
            raise _bad("ccy")
        period = q.get("period", "5m")
        reach = {"5m": 2 * DAY_MS, "1H": 30 * DAY_MS, "1D": 180 * DAY_MS}.get(period)
        step = _PERIODS.get(period)
        if reach is None or step is None:
            raise _bad("period")
        now = self.market.now_ms
        end = min(now, _int(q, "end", now))
        start = max(now - reach, _int(q, "begin", 0))
        rows: list[Any] = []
        ts = end - end % step
        while ts >= start:
            share = long_account_share(ccy, ts)
            rows.append([str(ts), f"{share / (1 - share):.4f}"])
            ts -= step
        return rows

    def _oi_history(self, request: web.Request) -> list[Any]:
        """okx:stat "Get contract open interest history": rows are positional arrays
        ``[ts, oi, oiCcy, oiUsd]``, newest first; ``period`` 5m…1D (UTC+8 bars from 6H up; ``…utc``
        variants UTC); ``begin``/``end``; ``limit`` ≤ 100 (default 100); SWAP/FUTURES only."""
        q = request.query
        c = self._contract(q.get("instId"))
        if c.option:
            raise _no_instrument()
        period = q.get("period", "5m")
        step = _PERIODS.get(period.removesuffix("utc") if period.endswith("utc") else period)
        if step is None or (period.endswith("utc") and step < 6 * HOUR_MS):
            raise _bad("period")
        offset = 8 * HOUR_MS if step >= 6 * HOUR_MS and not period.endswith("utc") else 0
        limit = min(_int(q, "limit", 100), 100)
        now = self.market.now_ms
        end = _int(q, "end", 0) or now + 1
        begin = _int(q, "begin", 0)
        rows: list[list[str]] = []
        ts = (end - 1) - ((end - 1 + offset) % step)
        while ts > begin and len(rows) < limit and ts >= now - 1440 * step:
            point = self.book.oi_point(c.symbol, ts)
            if point is not None:
                oi = point.open_interest
                rows.append(
                    [
                        str(ts),
                        _trim(oi, 4),
                        _trim(c.base_qty(oi, point.mark_price), 8),
                        _trim(c.notional_usd(oi, point.mark_price), 4),
                    ]
                )
            ts -= step
        return rows


_PERIODS: dict[str, int] = {
    "5m": OI_HISTORY_STEP_MS,
    "15m": 3 * OI_HISTORY_STEP_MS,
    "30m": 6 * OI_HISTORY_STEP_MS,
    "1H": HOUR_MS,
    "2H": 2 * HOUR_MS,
    "4H": 4 * HOUR_MS,
    "6H": 6 * HOUR_MS,
    "12H": 12 * HOUR_MS,
    "1D": DAY_MS,
}


def _frame(body: Json) -> str:
    return orjson.dumps(body).decode()


def _int(query: Any, name: str, default: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _bad(name) from None
    if value < 0:
        raise _bad(name)
    return value


def _error_response(code: int, msg: str, status: int) -> web.Response:
    body = {"code": str(code), "msg": msg, "data": []}
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def long_account_share(symbol: str, ts: int) -> float:
    """Share of accounts net long of ``symbol`` at ``ts`` (the book keeps no positions, so a
    deterministic slow wave between 0.40 and 0.70, per symbol; the same on every call)."""
    phase = (zlib.crc32(symbol.encode()) % 1000) / 1000 * 2 * math.pi
    return round(0.55 + 0.15 * math.sin(ts / (5 * 3_600_000) + phase), 4)


def _json_handler(fn: Callable[[web.Request], list[Any]]) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(request: web.Request) -> web.StreamResponse:
        body = {"code": "0", "msg": "", "data": fn(request)}
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    return handler
