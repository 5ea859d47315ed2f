"""BitMEX, server side: the Realtime WebSocket (``/realtime``) and public REST ``/api/v1``.

Written from BitMEX's public documentation and recorded frames, never from our adapter. Sources
(cited below by key):

- ``bm:ws``: https://www.bitmex.com/app/wsAPI (WebSocket API: connecting, ``{"op","args"}``
  commands, subscriptions, heartbeats) and https://testnet.bitmex.com/app/wsAPI;
- ``bm:sw``: the official swagger, repo BitMEX/api-connectors ``swagger.json`` (2024-05-29):
  definitions ``Instrument``, ``Funding``, ``Liquidation``, ``Error``; paths ``/instrument``,
  ``/instrument/active``, ``/funding``, ``/liquidation`` (``count`` default 100, ``start``,
  ``reverse`` newest-first, ``startTime``/``endTime``); the ``typ`` codes (``FFWCSX`` perpetual,
  ``FFCCSX`` futures, ``MRCXXX`` crypto index);
- ``bm:fx``: recorded frames in BitMEX/api-connectors ``official-ws/nodejs/test/fixtures/data.js``
  (welcome, ``success`` acks echoing ``request``, ``partial`` with ``keys``/``types``/
  ``foreignKeys``/``attributes``/``filter``, the ``websocketHelp`` topic lists) and the reference
  clients ``official-ws/python/bitmex_websocket.py`` (merge ``update``/``delete`` rows by the
  partial's ``keys``) and ``official-ws/nodejs/README.md`` (client sends ``"ping"``, gets ``"pong"``);
- ``bm:rec``: a 2024-11-13 session against ``wss://ws.bitmex.com/realtime`` recorded in a public
  client (welcome with ``"version":"2.0.0"``, ``"heartbeatEnabled":false``; the ``Unrecognized
  request`` error; one ``success`` + one ``partial`` per ``liquidation:<SYM>`` topic with
  ``"filter":{}``; insert/update/delete rows), a 2020-07-22 ``instrument:XBTUSD`` partial and
  updates (mst_gateway tests), BitMEX.NET's error sample (``"Unknown table: …"``), nautilus_trader's
  ``test_data`` (2024 XBTUSD instrument row, funding row, REST error body) and a 2018 ETHUSD row;
- witnesses of field shapes only: cryptofeed ``cryptofeed/exchanges/bitmex.py`` (funding partial:
  keys ``timestamp``+``symbol``, filter by symbol; one liquidation event per ``insert``),
  tardis-node ``src/mappers/bitmex.ts``, ccxt ``bitmex`` (REST ``/api/v1/<path>`` under
  ``urls['api']['public']``; ``instrument/activeAndIndices`` for markets);
- shared notes: /work/shared/exchanges.md §5.

URLs: ``{ws}/bitmex/realtime`` (also ``?subscribe=topic,topic``) and ``{http}/bitmex/api/v1/...``.

WebSocket (bm:ws, bm:fx, bm:rec). On connect the server sends
``{"info":"Welcome to the BitMEX Realtime API.","version":"2.0.0","timestamp":<ISO>,
"docs":"https://www.bitmex.com/app/wsAPI","heartbeatEnabled":false,"limit":{"remaining":N}}``
(``N``: connections left in the rolling hour, ``BitmexConfig.connections_per_hour``; past it the
upgrade is refused with HTTP 429 ⚠ status not documented). Commands ``{"op":"subscribe"|
"unsubscribe","args":[topics]}`` (``args`` may also be one string). Each topic gets its own answer,
echoing the whole request: ``{"success":true,"subscribe":"<topic>","request":{…}}`` and then, for
a simulated table, its ``partial``; a refused topic gets ``{"status":<code>,"error":"<text>",
"meta":{},"request":{…}}`` while the valid topics of the same request are subscribed (⚠ reading:
per-topic answers as in bm:rec). Error texts: ``Unknown table: <t>`` (BitMEX.NET sample),
``Unknown or expired symbol.`` (recorded in a public Elixir client), ``You are already subscribed
to this topic: <topic>`` (prefix recorded in a public Rust client; the suffix is ours),
``You are not subscribed to this topic: <topic>`` (⚠ ours), 401 ``User requested an account-locked
subscription but has not authenticated.`` for private tables (⚠ from memory, not re-read), and
anything that is not a command (bad JSON, unknown ``op``) gets the bm:rec text ``Unrecognized
request. See the docs or send 'help' for more details. Please see the documentation at
https://www.bitmex.com/app/wsAPI.`` with ``"request":{}`` when the frame was not JSON. The text
``ping`` is answered with the text ``pong`` (bm:ws "Heartbeats": the CLIENT pings when it has
received nothing for 5 s; the server never pings and never cuts an idle socket here); protocol ping
frames are answered too. The text ``help`` (or ``{"op":"help"}``) returns the topic lists of bm:fx.

Tables (``{"table","action","data":[…]}``; ``partial`` adds ``keys``, ``types``, ``filter`` and, for
instrument/funding, ``foreignKeys`` and ``attributes``). Every time is ISO-8601 UTC with
milliseconds and ``Z``; the market clock is the time source.

- ``instrument`` / ``instrument:<SYM>``: ``partial`` = the current row(s) (``keys ["symbol"]``,
  ``attributes {"symbol":"unique"}``, ``foreignKeys {}`` (we carry no leg fields), ``filter
  {"symbol":SYM}`` or ``{}`` for the whole table, which also holds the index rows ``.BXBT``,
  ``.BXBTT``, ``.BETH``: ``typ`` ``MRCXXX``, ``state`` ``Unlisted``, prices only). Then every
  ``BitmexConfig.instrument_interval_ms`` of market time an ``update`` whose rows hold ``symbol``,
  ONLY the fields whose value changed since the last published row, and ``timestamp`` (no change:
  no row; bm:rec 2020 updates). Readings: ``fundingRate`` is the rate charged at
  ``fundingTimestamp`` as it stands now (the sim lets it move until the settlement; ⚠ on BitMEX it
  is fixed one interval ahead), ``indicativeFundingRate`` the forecast for the interval after
  (here ``mean + (rate − mean) / 2``); ``fundingInterval`` is a timespan written as a date from
  2000-01-01 (``2000-01-01T08:00:00.000Z`` = 8 h; bm:sw, bm:rec); settlements at 04:00, 12:00,
  20:00 UTC (bm:rec 2018/2024 ``fundingTimestamp`` values). ``markPrice`` = ``fairPrice``
  (``markMethod`` ``FairPrice``), ``fairBasisRate`` = ``fundingRate`` × 1095 (bm:rec 2024: 0.00011
  ↔ 0.12045), ``indicativeSettlePrice`` = the index. ``openInterest`` is in contracts;
  ``openValue`` in settlement minor units (XBt = satoshi, USDt = 1e-6 USDT): inverse
  ``OI × 1e8 / markPrice``, linear and quanto ``OI × multiplier × markPrice`` (checked against the
  recorded XBTUSD 2020/2024, ETHUSD 2018 and JTOUSDT 2024 rows). ``volume24h`` contracts,
  ``turnover24h`` settlement minor units, ``homeNotional24h`` base coin, ``foreignNotional24h``
  quote currency.
- ``funding`` / ``funding:<SYM>``: ``partial`` (``keys ["timestamp","symbol"]``, cryptofeed's
  recorded partial) holding the latest settlement of each selected perpetual, then one ``insert`` per
  settlement: ``{timestamp, symbol, fundingInterval, fundingRate, fundingRateDaily}`` with
  ``fundingRateDaily`` = rate × 24 / 8 (nautilus 0.0001 ↔ 0.0003, cryptofeed −0.000561 ↔ −0.001683).
- ``liquidation`` / ``liquidation:<SYM>``: ``partial`` (``keys ["orderID"]``, ``types`` only, ``"filter":{}``
  even for one symbol, as recorded) with the liquidation orders resting now; then each liquidation
  order of the book is an ``insert`` ``{orderID, symbol, side, price, leavesQty}`` (``side`` the ORDER
  side: ``Sell`` closes a long; ``leavesQty`` contracts, a multiple of ``lotSize``), optionally
  ONE ``update`` (``orderID``, ``symbol`` and the changed ``price`` and/or ``leavesQty``: a partial
  fill lowers it; ``BitmexConfig.update_prob``) and a ``delete`` ``{orderID, symbol}`` when it is gone,
  after resting ``BitmexConfig.rest_ms`` of market time. A client counting one event per ``insert``
  counts each book liquidation once.

REST (bm:sw; errors ``{"error":{"message","name"}}``, ``name`` ``HTTPError`` or ``ValidationError``):
``GET /api/v1/instrument`` (``symbol`` exact, case-insensitive, or a bare root ``XBT`` = the nearest
expiring contract of that series; without it every instrument and index; ``count`` ≤ 1000 (⚠ the
maximum is not in the swagger), ``start``, ``reverse``), ``/instrument/active`` (contracts only),
``/instrument/indices``, ``/instrument/activeAndIndices`` (what ccxt loads),
``/funding`` (``symbol``, ``count``, ``start``, ``reverse``, ``startTime``/``endTime``; oldest first
unless ``reverse=true``, so a client that wants the latest must ask for reverse; history reaches
``BITMEX_BOOK.history_days`` back), ``/liquidation`` (the orders resting now, not a history).
An unknown symbol gives ``[]``. Every answer carries ``x-ratelimit-limit``, ``x-ratelimit-remaining``
and ``x-ratelimit-reset`` (unix seconds); past ``rest_limit_per_min`` requests in a minute: 429 with
``Retry-After`` (exchanges.md §5.3). Scripted faults (``faults.add_rest_fault`` for ``bitmex``):
the status with a BitMEX-shaped error body (503: "The system is currently overloaded. Please try
again later.").
"""

from __future__ import annotations

import asyncio
import calendar
import contextlib
import math
import random
import time
import uuid
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import WSCloseCode, WSMsgType, web

from streamer.sim.faults import FaultPlan, GarbageKind, RestFault
from streamer.sim.market import (
    BITMEX_LOTS,
    HOUR_MS,
    Contract,
    FundingRecord,
    IndexState,
    Market,
    VenueBook,
    VenueLiquidation,
)
from streamer.sim.venues import WsConnection, handshake_rejection

__all__ = [
    "BitmexConfig",
    "BitmexVenue",
    "funding_row",
    "index_row",
    "instrument_row",
    "iso",
    "liquidation_order_id",
    "timespan",
]

Json = dict[str, Any]

NAME = "bitmex"
WS_KEY = f"{NAME}.ws"
REST_KEY = f"{NAME}.rest"
EPOCH_2000_MS = 946_684_800_000
"""2000-01-01T00:00:00Z: BitMEX writes a timespan as a datetime this far from it."""
SIMULATED_TABLES = ("instrument", "funding", "liquidation")
PUBLIC_TABLES = (
    "announcement", "connected", "chat", "publicNotifications", "instrument", "settlement", "funding",
    "insurance", "liquidation", "orderBookL2", "orderBookL2_25", "orderBook10", "quote", "trade",
    "quoteBin1m", "quoteBin5m", "quoteBin1h", "quoteBin1d", "tradeBin1m", "tradeBin5m", "tradeBin1h",
    "tradeBin1d",
)  # fmt: skip
"""bm:fx ``websocketHelp.subscriptionSubjects.public``."""
PRIVATE_TABLES = (
    "privateNotifications", "account", "wallet", "affiliate", "margin", "position", "transact", "order",
    "execution",
)  # fmt: skip
UNRECOGNIZED = (
    "Unrecognized request. See the docs or send 'help' for more details. "
    "Please see the documentation at https://www.bitmex.com/app/wsAPI."
)
WELCOME_INFO = "Welcome to the BitMEX Realtime API."
DOCS_URL = "https://www.bitmex.com/app/wsAPI"
HELP: Json = {
    "info": "See https://www.bitmex.com/app/wsAPI and https://www.bitmex.com/explorer for more documentation.",
    "usage": 'Send a message in the format: {"op": string, "args": Array<string>}',
    "ops": ["authKey", "authKeyExpires", "cancelAllAfter", "subscribe", "unsubscribe"],
    "subscribe": 'To subscribe, send: {"op": "subscribe", "args": [subscriptionTopic, ...]}.',
    "subscriptionSubjects": {"authenticationRequired": list(PRIVATE_TABLES), "public": list(PUBLIC_TABLES)},
}


@dataclass(frozen=True, slots=True)
class BitmexConfig:
    """Cadences (market ms) and limits; shrink them in tests.

    ``instrument_interval_ms``: how often ``instrument`` updates are published. ``update_prob``:
    the chance that a liquidation order gets one ``update`` before its ``delete``. ``rest_ms``: how
    long a liquidation order rests in the book (uniform in the range). ``connections_per_hour``:
    the welcome's ``limit.remaining`` budget. ``rest_limit_per_min``: REST requests per rolling
    minute before 429 (0: unlimited). Socket times are wall-clock seconds."""

    instrument_interval_ms: int = 1_000
    update_prob: float = 0.5
    rest_ms: tuple[int, int] = (300, 3_000)
    connections_per_hour: int = 720
    rest_limit_per_min: int = 120
    rest_max_count: int = 1_000
    send_queue_max: int = 10_000
    close_timeout_s: float = 2.0


# --------------------------------------------------------------------------------------------
# Static metadata (bm:rec rows; ⚠ marks values not seen in a recorded row)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Spec:
    typ: str
    position_currency: str
    underlying_symbol: str
    multiplier: int
    settl: str
    u2pos: int | None
    u2settle: int | None
    q2settle: int | None
    quanto: bool
    inverse: bool
    max_order_qty: int
    init_margin: float
    maint_margin: float
    risk_limit: int
    risk_step: int
    funding_symbols: tuple[str, str, str] | None


def _spec(c: Contract) -> _Spec:
    """BitMEX's contract spec for a book contract (XBTUSD 2020/2024 rows, ETHUSD 2018 row,
    JTOUSDT 2024 row as the model for XBTUSDT; XBTUSDT's ``underlyingToPositionMultiplier``
    1000000 and ``lotSize`` 100 as probed 2026-05-30 in a public client)."""
    if c.kind == "future":
        return _Spec("FFCCSX", "USD", "XBT=", -100_000_000, "XBt", None, -100_000_000, None, False, True,
                     10_000_000, 0.02, 0.01, 20_000_000_000, 15_000_000_000, None)  # fmt: skip
    if c.symbol == "XBTUSD":
        return _Spec("FFWCSX", "USD", "XBT=", -100_000_000, "XBt", None, -100_000_000, None, False, True,
                     10_000_000, 0.01, 0.005, 20_000_000_000, 15_000_000_000,
                     (".XBTBON8H", ".USDBON8H", ".XBTUSDPI8H"))  # fmt: skip
    if c.quote == "USDT":
        return _Spec("FFWCSX", "XBT", "XBTT=", 1, "USDt", 1_000_000, None, 1_000_000, False, False,
                     1_000_000_000, 0.01, 0.005, 1_000_000_000_000, 1_000_000_000_000,
                     (".XBTBON8H", ".USDTBON8H", ".XBTUSDTPI8H"))  # fmt: skip
    return _Spec("FFWCSX", "", "ETH=", 100, "XBt", None, None, None, True, False, 10_000_000, 0.02, 0.01,
                 5_000_000_000, 5_000_000_000, (".ETHBON8H", ".USDBON8H", ".ETHUSDPI8H"))  # fmt: skip


INSTRUMENT_TYPES: dict[str, str] = {
    "symbol": "symbol", "rootSymbol": "symbol", "state": "symbol", "typ": "symbol", "listing": "timestamp",
    "front": "timestamp", "expiry": "timestamp", "settle": "timestamp", "listedSettle": "timestamp",
    "positionCurrency": "symbol", "underlying": "symbol", "quoteCurrency": "symbol", "underlyingSymbol": "symbol",
    "reference": "symbol", "referenceSymbol": "symbol", "calcInterval": "timespan", "publishInterval": "timespan",
    "publishTime": "timespan", "maxOrderQty": "long", "maxPrice": "float", "lotSize": "long", "tickSize": "float",
    "multiplier": "long", "settlCurrency": "symbol", "underlyingToPositionMultiplier": "long",
    "underlyingToSettleMultiplier": "long", "quoteToSettleMultiplier": "long", "isQuanto": "boolean",
    "isInverse": "boolean", "initMargin": "float", "maintMargin": "float", "riskLimit": "long", "riskStep": "long",
    "limit": "float", "taxed": "boolean", "deleverage": "boolean", "makerFee": "float", "takerFee": "float",
    "settlementFee": "float", "fundingBaseSymbol": "symbol", "fundingQuoteSymbol": "symbol",
    "fundingPremiumSymbol": "symbol", "fundingTimestamp": "timestamp", "fundingInterval": "timespan",
    "fundingRate": "float", "indicativeFundingRate": "float", "rebalanceTimestamp": "timestamp",
    "rebalanceInterval": "timespan", "prevClosePrice": "float", "limitDownPrice": "float", "limitUpPrice": "float",
    "volume24h": "long", "turnover24h": "long", "homeNotional24h": "float", "foreignNotional24h": "float",
    "prevPrice24h": "float", "vwap": "float", "highPrice": "float", "lowPrice": "float", "lastPrice": "float",
    "lastPriceProtected": "float", "lastTickDirection": "symbol", "lastChangePcnt": "float", "bidPrice": "float",
    "midPrice": "float", "askPrice": "float", "impactBidPrice": "float", "impactMidPrice": "float",
    "impactAskPrice": "float", "hasLiquidity": "boolean", "openInterest": "long", "openValue": "long",
    "fairMethod": "symbol", "fairBasisRate": "float", "fairBasis": "float", "fairPrice": "float",
    "markMethod": "symbol", "markPrice": "float", "indicativeSettlePrice": "float",
    "settledPriceAdjustmentRate": "float", "settledPrice": "float", "instantPnl": "boolean", "minTick": "float",
    "timestamp": "timestamp",
}  # fmt: skip
"""Wire types of the instrument columns (bm:rec 2020 partial; newer columns typed like their peers)."""
FUNDING_TYPES = {
    "timestamp": "timestamp", "symbol": "symbol", "fundingInterval": "timespan", "fundingRate": "float",
    "fundingRateDaily": "float",
}  # fmt: skip
LIQUIDATION_TYPES = {"orderID": "guid", "symbol": "symbol", "side": "symbol", "price": "float", "leavesQty": "long"}


# --------------------------------------------------------------------------------------------
# Wire rows
# --------------------------------------------------------------------------------------------


def iso(ms: int) -> str:
    """``2024-11-24T23:33:19.034Z``: ISO-8601 UTC with milliseconds."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def timespan(ms: int) -> str:
    """A BitMEX timespan: the datetime ``ms`` after 2000-01-01 (8 h = ``2000-01-01T08:00:00.000Z``)."""
    return iso(EPOCH_2000_MS + ms)


def parse_iso(text: str) -> int:
    """ms since the epoch for ``2024-11-25`` or ``2024-11-25T04:00:00[.000][Z]``; ``ValueError`` if not."""
    text = text.strip().removesuffix("Z")
    date, _, clock = text.partition("T")
    y, mo, d = (int(x) for x in date.split("-"))
    hh = mm = 0
    ss = 0.0
    if clock:
        parts = clock.split(":")
        hh, mm = int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
        ss = float(parts[2]) if len(parts) > 2 else 0.0
    return calendar.timegm((y, mo, d, hh, mm, 0, 0, 0, 0)) * 1000 + round(ss * 1000)


def lot_of(c: Contract) -> int:
    """Contracts per book unit (``lotSize``)."""
    return BITMEX_LOTS[c.symbol]


def _side(side: str) -> str:
    return "Sell" if side == "SELL" else "Buy"


def indicative_rate(c: Contract, rate: float) -> float:
    """The forecast for the interval after the next settlement: halfway back to the mean."""
    return round(c.funding_mean + (round(rate, 6) - c.funding_mean) / 2, 6)


def instrument_row(book: VenueBook, c: Contract, now_ms: int) -> Json:
    """One ``Instrument`` row (bm:sw) from the book's live state. See the module docstring."""
    st = book.state(c.symbol)
    sp = _spec(c)
    lot = lot_of(c)
    mark = round(st.mark_price, 2)
    index = round(st.index_price, 2)
    oi = round(st.open_interest) * lot
    open_value = round(oi * 1e8 / mark) if sp.inverse else round(oi * sp.multiplier * mark)
    volume = round(st.volume_24h * lot)
    home = c.base_qty(st.volume_24h, st.last_price)
    if sp.inverse:
        foreign = float(volume)
        turnover = round(st.turnover_24h * 1e8)
    elif sp.quanto:
        foreign = home * st.last_price
        turnover = round(volume * sp.multiplier * st.last_price)
    else:
        foreign = st.turnover_24h
        turnover = round(foreign * 1e6)
    rate = round(st.funding_rate, 6) if c.perpetual else None
    tick = c.tick
    mid = round((st.bid_price + st.ask_price) / 2, c.price_decimals + 1)
    years_left = max(c.expiry_ms - now_ms, HOUR_MS) / (365 * 24 * HOUR_MS) if c.expiry_ms else 0.0
    basis_rate = round(rate * 1095, 6) if rate is not None else round((mark / index - 1) / years_left, 4)
    listing = iso(c.launch_ms)
    fs = sp.funding_symbols
    return {
        "symbol": c.symbol,
        "rootSymbol": c.family,
        "state": "Open",
        "typ": sp.typ,
        "listing": listing,
        "front": listing if c.perpetual else iso(c.expiry_ms - 91 * 24 * HOUR_MS),
        "expiry": iso(c.expiry_ms) if c.expiry_ms else None,
        "settle": iso(c.expiry_ms) if c.expiry_ms else None,
        "listedSettle": iso(c.expiry_ms) if c.expiry_ms else None,
        "positionCurrency": sp.position_currency,
        "underlying": c.family,
        "quoteCurrency": c.quote,
        "underlyingSymbol": sp.underlying_symbol,
        "reference": "BMEX",
        "referenceSymbol": c.index,
        "calcInterval": None,
        "publishInterval": None,
        "publishTime": None,
        "maxOrderQty": sp.max_order_qty,
        "maxPrice": 1_000_000,
        "lotSize": lot,
        "tickSize": tick,
        "multiplier": sp.multiplier,
        "settlCurrency": sp.settl,
        "underlyingToPositionMultiplier": sp.u2pos,
        "underlyingToSettleMultiplier": sp.u2settle,
        "quoteToSettleMultiplier": sp.q2settle,
        "isQuanto": sp.quanto,
        "isInverse": sp.inverse,
        "initMargin": sp.init_margin,
        "maintMargin": sp.maint_margin,
        "riskLimit": sp.risk_limit,
        "riskStep": sp.risk_step,
        "limit": None,
        "taxed": True,
        "deleverage": True,
        "makerFee": 0.0005,
        "takerFee": 0.0005,
        "settlementFee": 0,
        "fundingBaseSymbol": fs[0] if fs else "",
        "fundingQuoteSymbol": fs[1] if fs else "",
        "fundingPremiumSymbol": fs[2] if fs else "",
        "fundingTimestamp": iso(st.next_funding_ms) if c.perpetual else None,
        "fundingInterval": timespan(c.funding_interval_h * HOUR_MS) if c.perpetual else None,
        "fundingRate": rate,
        "indicativeFundingRate": indicative_rate(c, st.funding_rate) if c.perpetual else None,
        "rebalanceTimestamp": None,
        "rebalanceInterval": None,
        "prevClosePrice": st.open_24h,
        "limitDownPrice": None,
        "limitUpPrice": None,
        "volume24h": volume,
        "turnover24h": turnover,
        "homeNotional24h": round(home, 8),
        "foreignNotional24h": round(foreign, 4),
        "prevPrice24h": st.open_24h,
        "vwap": round((st.high_24h + st.low_24h + st.last_price) / 3, c.price_decimals + 2),
        "highPrice": st.high_24h,
        "lowPrice": st.low_24h,
        "lastPrice": st.last_price,
        "lastPriceProtected": st.last_price,
        "lastTickDirection": st.tick_direction,
        "lastChangePcnt": round(st.last_price / st.open_24h - 1, 4) if st.open_24h else 0,
        "bidPrice": st.bid_price,
        "midPrice": mid,
        "askPrice": st.ask_price,
        "impactBidPrice": st.bid_price,
        "impactMidPrice": mid,
        "impactAskPrice": st.ask_price,
        "hasLiquidity": True,
        "openInterest": oi,
        "openValue": open_value,
        "fairMethod": "FundingRate" if c.perpetual else "ImpactMidPrice",
        "fairBasisRate": basis_rate,
        "fairBasis": round(mark - index, 2),
        "fairPrice": mark,
        "markMethod": "FairPrice",
        "markPrice": mark,
        "indicativeSettlePrice": index,
        "settledPriceAdjustmentRate": None,
        "settledPrice": None,
        "instantPnl": c.perpetual,
        "minTick": round(tick / 10, 8),
        "timestamp": iso(now_ms),
    }


def index_row(idx: IndexState, now_ms: int) -> Json:
    """An index instrument (``.BXBT``): a thin price row (typ ``MRCXXX``, state ``Unlisted``)."""
    price = round(idx.price, 2)
    root = "ETH" if idx.base == "ETH" else "XBT"
    return {
        "symbol": idx.key,
        "rootSymbol": root,
        "state": "Unlisted",
        "typ": "MRCXXX",
        "underlying": root,
        "quoteCurrency": idx.quote,
        "reference": "BMI",
        "referenceSymbol": idx.key,
        "tickSize": 0.01,
        "prevPrice24h": round(idx.open_24h, 2),
        "highPrice": round(idx.high_24h, 2),
        "lowPrice": round(idx.low_24h, 2),
        "lastPrice": price,
        "lastChangePcnt": round(idx.price / idx.open_24h - 1, 4),
        "markPrice": price,
        "timestamp": iso(now_ms),
    }


def funding_row(rec: FundingRecord, interval_h: int) -> Json:
    """One ``Funding`` row (bm:sw): ``fundingRateDaily`` = rate × 24 / interval."""
    return {
        "timestamp": iso(rec.funding_ms),
        "symbol": rec.symbol,
        "fundingInterval": timespan(interval_h * HOUR_MS),
        "fundingRate": rec.rate,
        "fundingRateDaily": round(rec.rate * 24 / interval_h, 8),
    }


def liquidation_order_id(seed: int, liq: VenueLiquidation) -> str:
    """A stable guid per book liquidation (``orderID``)."""
    bits = random.Random(f"{seed}:bitmex:order:{liq.seq}:{liq.symbol}").getrandbits(128)
    return str(uuid.UUID(int=bits, version=4))


# --------------------------------------------------------------------------------------------
# Liquidation orders
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Order:
    """A resting liquidation order and what is still to happen to it (market ms)."""

    row: Json
    liquidation: VenueLiquidation
    update_ms: int | None
    update: Json | None
    delete_ms: int


def _plan_order(seed: int, c: Contract, liq: VenueLiquidation, push_ms: int, cfg: BitmexConfig) -> _Order:
    rng = random.Random(f"{seed}:bitmex:liqplan:{liq.seq}:{liq.symbol}")
    lot = lot_of(c)
    lots = round(liq.qty)
    order_id = liquidation_order_id(seed, liq)
    row = {
        "orderID": order_id,
        "symbol": c.symbol,
        "side": _side(liq.side),
        "price": liq.price,
        "leavesQty": lots * lot,
    }
    lo, hi = cfg.rest_ms
    rest = max(2, rng.randint(lo, max(lo, hi)))
    update_ms: int | None = None
    update: Json | None = None
    if rng.random() < cfg.update_prob:
        update = {"orderID": order_id, "symbol": c.symbol}
        kind = rng.choice(("qty", "price", "both"))
        if kind in ("qty", "both") and lots >= 2:
            update["leavesQty"] = (lots - rng.randint(1, lots - 1)) * lot
        if kind in ("price", "both") or "leavesQty" not in update:
            ticks = rng.randint(1, 5) * (-1 if liq.side == "SELL" else 1)  # the order chases the market
            update["price"] = max(c.tick, c.round_price(liq.price + ticks * c.tick))
        update_ms = push_ms + max(1, rest // 2)
    return _Order(row=row, liquidation=liq, update_ms=update_ms, update=update, delete_ms=push_ms + rest)


# --------------------------------------------------------------------------------------------
# Connections
# --------------------------------------------------------------------------------------------


class _Conn(WsConnection):
    def __init__(self, venue: BitmexVenue, ws: web.WebSocketResponse, request: web.Request) -> None:
        super().__init__(
            WS_KEY, ws, request, venue.faults, venue.stats, idle_timeout_s=math.inf,
            idle_close=(1000, "idle"), render_garbage=venue.garbage, send_queue_max=venue.config.send_queue_max,
        )  # fmt: skip
        self.topics: set[str] = set()
        self.tables: dict[str, set[str] | None] = {}
        """Simulated table → selected symbols (``None``: the whole table)."""

    def wants(self, table: str, symbol: str) -> bool:
        if table not in self.tables:
            return False
        chosen = self.tables[table]
        return chosen is None or symbol in chosen


class _TopicError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class BitmexVenue:
    """BitMEX on the simulator's app. See the module docstring for URLs and behaviour."""

    def __init__(self, market: Market, faults: FaultPlan, config: BitmexConfig | None = None) -> None:
        self.market = market
        self.book: VenueBook = market.bitmex
        self.faults = faults
        self.config = config or BitmexConfig()
        self.connections: set[_Conn] = set()
        self.stats: Counter[str] = Counter()
        self.orders: dict[str, _Order] = {}
        """Liquidation orders resting now (``GET /liquidation``, the ``liquidation`` partial)."""
        self.published: dict[str, Json] = {}
        """The ``instrument`` table as last published (what a ``partial`` shows), by symbol."""
        self._liq_cursor = len(self.book.pushed)
        self._funding_cursor = {s: len(rows) for s, rows in self.book.funding_history.items()}
        self._opened: deque[float] = deque()
        self._rest_window: deque[float] = deque()
        self._refresh_table(market.now_ms)

    @property
    def name(self) -> str:
        return NAME

    def install(self, app: web.Application) -> None:
        sub = web.Application()
        sub.router.add_get("/realtime", self._ws_session)
        for path, handler in (
            ("/api/v1/instrument", self._instrument),
            ("/api/v1/instrument/active", self._instrument_active),
            ("/api/v1/instrument/indices", self._instrument_indices),
            ("/api/v1/instrument/activeAndIndices", self._instrument_active_and_indices),
            ("/api/v1/funding", self._funding),
            ("/api/v1/liquidation", self._liquidation),
        ):
            sub.router.add_get(path, self._rest(handler))
        app.add_subapp(f"/{NAME}", sub)

    def urls(self, http_root: str, ws_root: str) -> dict[str, str]:
        return {"bitmex_rest": f"{http_root}/{NAME}", "bitmex_ws": f"{ws_root}/{NAME}/realtime"}

    async def close(self) -> None:
        for conn in list(self.connections):
            with contextlib.suppress(ConnectionError, RuntimeError):
                await conn.close(WSCloseCode.GOING_AWAY, "server shutdown")

    # -- rows -------------------------------------------------------------------------------

    def contract_symbols(self) -> list[str]:
        return list(self.book.contracts)

    def current_rows(self, now_ms: int) -> dict[str, Json]:
        """Every instrument and index row at ``now_ms``, contracts first."""
        rows = {c.symbol: instrument_row(self.book, c, now_ms) for c in self.book.contracts.values()}
        rows.update({key: index_row(idx, now_ms) for key, idx in self.book.indexes.items()})
        return rows

    def _refresh_table(self, now_ms: int) -> list[Json]:
        """Publish the rows at ``now_ms``; returns the ``update`` rows (changed fields only)."""
        changes: list[Json] = []
        for symbol, row in self.current_rows(now_ms).items():
            old = self.published.get(symbol)
            if old is not None:
                diff = {k: v for k, v in row.items() if k not in ("symbol", "timestamp") and old.get(k) != v}
                if diff:
                    changes.append({"symbol": symbol, **diff, "timestamp": row["timestamp"]})
                    self.published[symbol] = row
            else:
                self.published[symbol] = row
        return changes

    def latest_funding(self, symbol: str) -> list[Json]:
        c = self.book.contracts.get(symbol)
        if c is None or not c.perpetual:
            return []
        now = self.market.now_ms
        recs = self.book.funding_records(symbol, now - c.funding_interval_h * HOUR_MS, now)
        return [funding_row(recs[-1], c.funding_interval_h)] if recs else []

    # -- ticking ----------------------------------------------------------------------------

    def on_tick(self, now_ms: int) -> None:
        frames: list[tuple[str, str, list[Json]]] = []  # (table, action, rows) in order
        seed = self.market.seed
        pushed = self.book.pushed
        while self._liq_cursor < len(pushed):
            p = pushed[self._liq_cursor]
            self._liq_cursor += 1
            order = _plan_order(seed, self.book.contracts[p.liquidation.symbol], p.liquidation, p.push_ms, self.config)
            self.orders[order.row["orderID"]] = order
            frames.append(("liquidation", "insert", [dict(order.row)]))
        for oid, order in list(self.orders.items()):
            if order.update is not None and order.update_ms is not None and order.update_ms <= now_ms:
                order.row.update(order.update)
                frames.append(("liquidation", "update", [order.update]))
                order.update = None
            if order.delete_ms <= now_ms:
                del self.orders[oid]
                frames.append(("liquidation", "delete", [{"orderID": oid, "symbol": order.row["symbol"]}]))
        for symbol, records in self.book.funding_history.items():
            seen = self._funding_cursor.get(symbol, 0)
            if len(records) > seen:
                hours = self.book.contracts[symbol].funding_interval_h
                frames.append(("funding", "insert", [funding_row(r, hours) for r in records[seen:]]))
                self._funding_cursor[symbol] = len(records)
        if now_ms % self.config.instrument_interval_ms == 0:
            changes = self._refresh_table(now_ms)
            if changes:
                frames.append(("instrument", "update", changes))
        if not self.connections or not frames:
            return
        for conn in self.connections:
            for table, action, data in frames:
                mine = [r for r in data if conn.wants(table, r["symbol"])]
                if mine:
                    conn.push(_frame({"table": table, "action": action, "data": mine}))

    # -- WebSocket --------------------------------------------------------------------------

    def _remaining(self) -> int:
        now = time.monotonic()
        while self._opened and now - self._opened[0] >= 3600.0:
            self._opened.popleft()
        return self.config.connections_per_hour - len(self._opened)

    async def _ws_session(self, request: web.Request) -> web.StreamResponse:
        rejection = await handshake_rejection(self.faults, WS_KEY, request)
        if rejection is not None:
            return rejection
        if self._remaining() <= 0:
            self.stats["connection_limit_429"] += 1
            return web.Response(status=429, text="Too many connections", headers={"Retry-After": "60"})
        self._opened.append(time.monotonic())
        ws = web.WebSocketResponse(autoping=True, compress=False, timeout=self.config.close_timeout_s)
        await ws.prepare(request)
        conn = _Conn(self, ws, request)
        self.connections.add(conn)
        self.faults.register(conn)
        self.stats["connections"] += 1
        writer = asyncio.create_task(conn.write_loop(), name=f"sim-bitmex-write-{id(conn):x}")
        keeper = asyncio.create_task(conn.keep_loop(), name=f"sim-bitmex-keep-{id(conn):x}")
        conn.reply(
            _frame(
                {
                    "info": WELCOME_INFO, "version": "2.0.0", "timestamp": iso(self.market.now_ms), "docs": DOCS_URL,
                    "heartbeatEnabled": False, "limit": {"remaining": self._remaining()},
                }
            )
        )  # fmt: skip
        url_topics = [t for t in request.query.get("subscribe", "").split(",") if t]
        if url_topics:
            self._command(conn, {"op": "subscribe", "args": url_topics})
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self._handle(conn, msg.data)
        finally:
            for task in (writer, keeper):
                task.cancel()
            await asyncio.gather(writer, keeper, return_exceptions=True)
            self.faults.unregister(conn)
            self.connections.discard(conn)
        return ws

    def _handle(self, conn: _Conn, text: str) -> None:
        if text == "ping":
            self.stats["pongs"] += 1
            conn.reply("pong")
            return
        if text == "help":
            conn.reply(_frame(HELP))
            return
        try:
            req = orjson.loads(text)
        except orjson.JSONDecodeError:
            conn.reply(_error(400, UNRECOGNIZED, {}))
            return
        if not isinstance(req, dict):
            conn.reply(_error(400, UNRECOGNIZED, {}))
            return
        self._command(conn, req)

    def _command(self, conn: _Conn, req: Json) -> None:
        op = req.get("op")
        if op == "help":
            conn.reply(_frame(HELP))
            return
        args = req.get("args")
        topics = [args] if isinstance(args, str) else args
        if op not in ("subscribe", "unsubscribe") or not isinstance(topics, list) or not topics:
            conn.reply(_error(400, UNRECOGNIZED, req))
            return
        for topic in topics:
            if not isinstance(topic, str):
                conn.reply(_error(400, UNRECOGNIZED, req))
                continue
            try:
                if op == "subscribe":
                    self._subscribe(conn, topic, req)
                else:
                    self._unsubscribe(conn, topic, req)
            except _TopicError as err:
                self.stats["topic_errors"] += 1
                conn.reply(_error(err.status, err.message, req))

    def _parse_topic(self, topic: str) -> tuple[str, str | None]:
        table, _, symbol = topic.partition(":")
        if table in PRIVATE_TABLES:
            raise _TopicError(401, "User requested an account-locked subscription but has not authenticated.")
        if table not in PUBLIC_TABLES:
            raise _TopicError(400, f"Unknown table: {table}")
        if not symbol:
            return table, None
        known = self.published if table == "instrument" else self.book.contracts
        if table in SIMULATED_TABLES and symbol not in known:
            raise _TopicError(400, "Unknown or expired symbol.")
        return table, symbol

    def _subscribe(self, conn: _Conn, topic: str, req: Json) -> None:
        table, symbol = self._parse_topic(topic)
        if topic in conn.topics:
            raise _TopicError(400, f"You are already subscribed to this topic: {topic}")
        conn.topics.add(topic)
        conn.reply(_frame({"success": True, "subscribe": topic, "request": req}))
        if table not in SIMULATED_TABLES:
            return  # a real table the simulator does not produce: acknowledged, silent
        self._select_tables(conn)
        conn.push(_frame(self._partial(table, symbol)))

    def _unsubscribe(self, conn: _Conn, topic: str, req: Json) -> None:
        self._parse_topic(topic)
        if topic not in conn.topics:
            raise _TopicError(400, f"You are not subscribed to this topic: {topic}")
        conn.topics.discard(topic)
        self._select_tables(conn)
        conn.reply(_frame({"success": True, "unsubscribe": topic, "request": req}))

    @staticmethod
    def _select_tables(conn: _Conn) -> None:
        """Derive what a connection receives from its topics (a whole-table topic wins)."""
        tables: dict[str, set[str] | None] = {}
        for topic in conn.topics:
            table, _, symbol = topic.partition(":")
            if table not in SIMULATED_TABLES:
                continue
            if not symbol:
                tables[table] = None
            elif table not in tables:
                tables[table] = {symbol}
            else:
                chosen = tables[table]
                if chosen is not None:
                    chosen.add(symbol)
        conn.tables = tables

    def _partial(self, table: str, symbol: str | None) -> Json:
        def pick(symbols: Iterable[str]) -> list[str]:
            return [s for s in symbols if symbol is None or s == symbol]

        if table == "instrument":
            return {
                "table": "instrument", "action": "partial", "keys": ["symbol"], "types": INSTRUMENT_TYPES,
                "foreignKeys": {}, "attributes": {"symbol": "unique"},
                "filter": {"symbol": symbol} if symbol else {},
                "data": [self.published[s] for s in pick(self.published)],
            }  # fmt: skip
        if table == "funding":
            rows = [row for s in pick(self.book.contracts) for row in self.latest_funding(s)]
            return {
                "table": "funding", "action": "partial", "keys": ["timestamp", "symbol"], "types": FUNDING_TYPES,
                "foreignKeys": {"symbol": "instrument"}, "attributes": {"timestamp": "sorted", "symbol": "grouped"},
                "filter": {"symbol": symbol} if symbol else {}, "data": rows,
            }  # fmt: skip
        rows = [dict(o.row) for o in self.orders.values() if symbol is None or o.row["symbol"] == symbol]
        return {
            "table": "liquidation", "action": "partial", "keys": ["orderID"], "types": LIQUIDATION_TYPES,
            "filter": {}, "data": rows,
        }  # fmt: skip

    def garbage(self, _conn: WsConnection, kind: GarbageKind) -> str | bytes:
        if kind == "binary":
            return b"\x00\x9fsimulated binary garbage\xff"
        if kind == "text":
            return "<html><body>502 Bad Gateway</body></html>"
        if kind == "unknown_event":
            return _frame({"table": "simUnknown", "action": "insert", "data": [{"symbol": "XBTUSD"}]})
        frame = _frame(
            {"table": "instrument", "action": "update",
             "data": [{"symbol": "XBTUSD", "markPrice": "x", "timestamp": iso(self.market.now_ms)}]}
        )  # fmt: skip
        return frame if kind == "wrong_types" else frame[: len(frame) // 2]

    # -- REST -------------------------------------------------------------------------------

    def _rate_headers(self) -> tuple[dict[str, str], bool]:
        limit = self.config.rest_limit_per_min
        now = time.monotonic()
        window = self._rest_window
        while window and now - window[0] >= 60.0:
            window.popleft()
        window.append(now)
        if limit <= 0:
            return {}, False
        reset = int(time.time()) + (60 - int(now - window[0]))
        headers = {
            "x-ratelimit-limit": str(limit),
            "x-ratelimit-remaining": str(max(0, limit - len(window))),
            "x-ratelimit-reset": str(reset),
        }
        return headers, len(window) > limit

    def _rest(
        self, handler: Callable[[web.Request], list[Json]]
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def wrapped(request: web.Request) -> web.StreamResponse:
            self.stats["rest_requests"] += 1
            fault = self.faults.take_rest_fault(REST_KEY, request.path)
            if fault is not None and fault.delay_s > 0:
                await self.faults.sleep(fault.delay_s)
            if fault is not None and fault.status is not None:
                return _fault_response(fault)
            headers, over = self._rate_headers()
            if over:
                self.stats["rest_limit_429"] += 1
                resp = _error_response(429, "Rate limit exceeded, retry in 1 seconds.", "RateLimitError")
                resp.headers.update({**headers, "Retry-After": "1"})
                return resp
            try:
                body = handler(request)
            except _RestError as err:
                resp = _error_response(err.status, err.message, err.name)
            else:
                resp = web.Response(body=orjson.dumps(body), content_type="application/json")
            resp.headers.update(headers)
            return resp

        return wrapped

    def _paging(self, request: web.Request) -> tuple[int, int, bool]:
        q = request.query
        count = _int_param(q, "count", 100)
        if count < 1:
            raise _RestError(400, "count must be a positive integer", "ValidationError")
        if count > self.config.rest_max_count:
            raise _RestError(400, f"count must be <= {self.config.rest_max_count}", "ValidationError")
        start = _int_param(q, "start", 0)
        if start < 0:
            raise _RestError(400, "start must be a non-negative integer", "ValidationError")
        reverse = q.get("reverse", "false").lower()
        if reverse not in ("true", "false"):
            raise _RestError(400, "reverse must be a boolean", "ValidationError")
        return count, start, reverse == "true"

    def _select(self, raw: str | None, universe: Iterable[str]) -> list[str]:
        """bm:sw ``symbol``: exact (case-insensitive) or a bare series root = the nearest expiring contract."""
        names = list(universe)
        if raw is None or raw == "":
            return names
        want = raw.upper()
        exact = [s for s in names if s.upper() == want]
        if exact:
            return exact
        dated = sorted(
            (c.expiry_ms, c.symbol) for c in self.book.contracts.values() if c.family == want and c.expiry_ms
        )
        return [dated[0][1]] if dated and dated[0][1] in names else []

    def _page(self, request: web.Request, rows: list[Json]) -> list[Json]:
        count, start, reverse = self._paging(request)
        if reverse:
            rows = rows[::-1]
        return rows[start : start + count]

    def _instrument(self, request: web.Request) -> list[Json]:
        rows = self.current_rows(self.market.now_ms)
        return self._page(request, [rows[s] for s in self._select(request.query.get("symbol"), rows)])

    def _instrument_active(self, request: web.Request) -> list[Json]:
        now = self.market.now_ms
        return [instrument_row(self.book, c, now) for c in self.book.contracts.values()]

    def _instrument_indices(self, request: web.Request) -> list[Json]:
        now = self.market.now_ms
        return [index_row(idx, now) for idx in self.book.indexes.values()]

    def _instrument_active_and_indices(self, request: web.Request) -> list[Json]:
        return list(self.current_rows(self.market.now_ms).values())

    def _funding(self, request: web.Request) -> list[Json]:
        q = request.query
        now = self.market.now_ms
        try:
            lo = parse_iso(q["startTime"]) if q.get("startTime") else 0
            hi = parse_iso(q["endTime"]) if q.get("endTime") else now
        except (ValueError, IndexError):
            raise _RestError(400, "Invalid startTime or endTime", "ValidationError") from None
        perps = [s for s, c in self.book.contracts.items() if c.perpetual]
        rows: list[tuple[int, str, Json]] = []
        for symbol in self._select(q.get("symbol"), perps):
            hours = self.book.contracts[symbol].funding_interval_h
            rows.extend(
                (r.funding_ms, symbol, funding_row(r, hours)) for r in self.book.funding_records(symbol, lo, hi)
            )
        rows.sort(key=lambda x: (x[0], x[1]))
        return self._page(request, [r for _, _, r in rows])

    def _liquidation(self, request: web.Request) -> list[Json]:
        symbols = set(self._select(request.query.get("symbol"), self.book.contracts))
        rows = [dict(o.row) for o in self.orders.values() if o.row["symbol"] in symbols]
        return self._page(request, rows)


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


class _RestError(Exception):
    def __init__(self, status: int, message: str, name: str = "HTTPError") -> None:
        super().__init__(message)
        self.status, self.message, self.name = status, message, name


def _int_param(query: Any, name: str, default: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise _RestError(400, f"{name} must be an integer", "ValidationError") from None


_FAULT_MESSAGES = {
    429: "Rate limit exceeded, retry in 1 seconds.",
    403: "Forbidden",
    500: "Internal server error",
    502: "Bad Gateway",
    503: "The system is currently overloaded. Please try again later.",
    504: "Gateway Timeout",
}


def _fault_response(fault: RestFault) -> web.Response:
    status = fault.status or 500
    headers = {"Retry-After": str(fault.retry_after_s)} if fault.retry_after_s is not None else {}
    if fault.body is not None:
        resp = web.Response(status=status, text=fault.body, content_type="application/json")
    else:
        resp = _error_response(status, _FAULT_MESSAGES.get(status, "Error"), "HTTPError")
    resp.headers.update(headers)
    return resp


def _error_response(status: int, message: str, name: str) -> web.Response:
    body = {"error": {"message": message, "name": name}}
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def _error(status: int, message: str, request: Json) -> str:
    return _frame({"status": status, "error": message, "meta": {}, "request": request})


def _frame(body: Json) -> str:
    return orjson.dumps(body).decode()
