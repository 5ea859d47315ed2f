"""Deribit v2, server side: the JSON-RPC WebSocket (``/ws/api/v2``) and public REST market data.

Written from Deribit's API v2 documentation (docs.deribit.com; cited ``dr:sub`` = subscriptions
and notifications, ``dr:hb`` = public/set_heartbeat and the heartbeat notification, ``dr:tick`` =
public/ticker, ``dr:tr`` = trades, ``dr:inst`` = public/get_instruments, ``dr:bs`` =
get_book_summary_by_currency, ``dr:fh`` = get_funding_rate_history) and the shared notes
(/work/shared/exchanges.md §4). It must not import our adapters.

URLs: ``{ws}/deribit/ws/api/v2`` and ``{http}/deribit/api/v2/public/<method>`` (GET, query params).

JSON-RPC 2.0: a request ``{"jsonrpc":"2.0","id":…,"method":…,"params":{…}}`` is answered
``{"jsonrpc":"2.0","id":…,"result":…,"usIn","usOut","usDiff","testnet":false}`` or with an
``error`` object ``{"code","message"}`` (unknown method -32601 "Method not found", bad params
-32602 "Invalid params", unknown instrument 13020 "not_found", ``raw`` interval without
authorisation 13778). ``public/subscribe`` answers the list of channels subscribed. Over WS the
REST methods are callable too. ``public/set_heartbeat`` (``interval`` ≥ 10 s) ⇒ every interval
the server sends ``{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}``; if
no request at all (``public/test`` is the expected one) arrives before the next heartbeat is due,
the connection is closed (``DeribitConfig.heartbeat_close``).

Channels (notifications ``{"jsonrpc":"2.0","method":"subscription","params":{"channel","data"}}``):

- ``ticker.<inst>.<100ms|agg2>``: every 100 ms / 2 s of market time. Perps: ``current_funding``
  (instantaneous: the premium outside a ±0.05 % dead band), ``funding_8h`` (8 × the hourly rate
  accruing now); ``open_interest`` USD for inverse contracts, coin for options; ``stats.volume``
  coin, ``volume_usd``, ``price_change`` percent; options ``mark_iv``/``bid_iv``/``ask_iv`` in
  PERCENT, ``greeks``, ``underlying_price``/``underlying_index``, prices in BTC.
- ``trades.<kind>.<currency>.<interval>`` (kind ``future``/``any``) and ``trades.<inst>.<interval>``:
  ``data`` an array of trades; ``amount`` USD for inverse contracts, ``direction`` the taker side;
  liquidation trades carry ``liquidation`` ``T`` (taker liquidated: direction = the liquidated
  order's side), ``M`` (maker liquidated: direction opposite) or ``MT`` (both).

Checked against Deribit's documentation (docs.deribit.com, mirrored as markdown in
rosssaunders/coincise ``docs/deribit/``; its examples on deribit.mintlify.app) and real-shaped frames
kept by other clients (nautechsystems/nautilus_trader ``crates/adapters/deribit/test_data``). Fixes:

1. ``get_funding_rate_history`` ``interest_8h`` is the funding of the 8 hours up to the row (the sum of
   their ``interest_1h``), not 8 × ``interest_1h``: the documented example has interest_8h
   -0.0000923 next to interest_1h -0.00000047, and successive rows move by the hour that enters minus
   the one that leaves (deribit.mintlify.app public-get_funding_rate_history). The ticker's ``funding_8h``
   is the same trailing-8 h funding, so both agree with ``get_funding_rate_value`` (below).
2. ``public/get_funding_rate_value`` added ("interest rate value for requested period", result a bare
   number; coincise get_funding_rate_value.md): the funding accrued over ``(start, end]``.
3. ``public/get_currencies``, ``public/get_instrument`` and ``public/get_book_summary_by_instrument``
   added (coincise get_currencies.md, get_instrument, get_book_summary_by_instrument.md; what ccxt's
   loadMarkets, fetchOpenInterest and fetchOption call).
4. ``get_instruments``: coin-settled options are ``instrument_type`` ``reversed`` like the inverse
   futures (nautilus ``http_get_instruments.json``; gocryptotrader's recorded ETH option rows);
   ``tick_size`` 0.5 for BTC perpetual/futures and 0.05 for ETH-PERPETUAL (nautilus fixture; ETH quotes
   3107.2/3107.25 in recorded ``quote`` frames), 0.0001 for options with ``tick_size_steps``
   ``[{"above_price":0.005,"tick_size":0.0005}]``; futures ``maker_commission`` 0.0,
   ``max_liquidation_commission``, ``tick_size_steps`` ``[]``, ``max_leverage`` and ``future_type`` on
   futures only, ``block_trade_tick_size`` 0.01/0.0001 (nautilus fixture).
5. Published order-book, trade and 24 h high/low prices lie on that tick grid (bids down, asks up);
   ``mark_price`` of futures has 2 decimals, off the grid, as in recorded tickers (nautilus
   ``ws_ticker.json``: tick 0.5, mark 92281.78).
6. ``trade_id`` is unique per currency: a number for BTC, ``ETH-<n>`` for ETH ("Number for BTC trades,
   or hyphen name in ex. "ETH-15"", coincise get_last_trades_by_currency.md ``start_id``; nautilus
   ``http_get_last_trades.json``).
7. ``trades.<kind>.<currency>.<interval>`` accepts every documented kind (future, option, spot,
   future_combo, option_combo, combo, any) and currency (BTC, ETH, USDC, USDT, EURR, any) and filters
   rows by kind (dr:sub); before, ``option`` and the stablecoin currencies were silently dropped.
8. ``stats.volume_notional`` / summary ``volume_notional`` only for futures ("futures and spots only",
   coincise get_book_summary_by_currency.md); an option with no bid sends ``best_bid_amount`` 0 too.

Checked and unchanged: the JSON-RPC envelope (``usIn``/``usOut``/``usDiff``/``testnet``) and error object
(coincise response_formats.md, error_codes.md: 13020 not_found, 13778, -32602 with ``data``), the
subscribe result (array of channels), ``heartbeat``/``test_request`` and ``public/test``
(post_set_heartbeat.md), ticker fields and units (get_ticker.md: ``open_interest`` USD for perpetual and
inverse futures, base coin for options; ``price_change`` percent; greeks; IV in percent, e.g.
``"mark_iv":132.26`` in recorded option tickers), trade rows (get_last_trades_by_currency.md: ``amount``
USD for perpetual/inverse futures, ``contracts``, ``direction``, ``liquidation`` M/T/MT, ``tick_direction``
0-3) and ``get_last_trades_by_currency`` ``{"trades","has_more"}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
import zlib
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import WSCloseCode, WSMsgType, web

from streamer.sim.faults import FaultPlan, GarbageKind
from streamer.sim.market import Contract, ContractState, Market, VenueBook, VenueLiquidation
from streamer.sim.venues import WsConnection, handshake_rejection

__all__ = ["DeribitConfig", "DeribitVenue", "instrument_row", "liquidation_flag", "ticker_row"]

Json = dict[str, Any]

NAME = "deribit"
WS_KEY = f"{NAME}.ws"
REST_KEY = f"{NAME}.rest"
INTERVALS = {"100ms": 100, "agg2": 2_000}
CURRENCIES = ("BTC", "ETH")
OTHER_CURRENCIES = ("USDC", "USDT", "EURR")
"""Currencies Deribit accepts in ``currency`` params and ``trades.<kind>.<currency>`` channels; the sim
lists no instrument of theirs."""
TRADE_KINDS = ("future", "option", "spot", "future_combo", "option_combo", "combo", "any")


@dataclass(frozen=True, slots=True)
class DeribitConfig:
    """Documented limits; shrink them in tests. ``min_heartbeat_s``: the smallest
    ``set_heartbeat`` interval accepted (Deribit: 10). ``heartbeat_close``: close a connection
    that left a ``test_request`` unanswered for one interval. ``trade_prob``: chance per 100 ms
    step that a future/perpetual prints an ordinary trade. Socket times are wall-clock seconds."""

    min_heartbeat_s: float = 10.0
    heartbeat_close: bool = True
    trade_prob: float = 0.2
    trades_kept: int = 1_000
    send_queue_max: int = 10_000
    close_timeout_s: float = 2.0


class _RpcError(Exception):
    def __init__(self, code: int, message: str, data: Json | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.data = code, message, data

    def body(self) -> Json:
        err: Json = {"code": self.code, "message": self.message}
        if self.data is not None:
            err["data"] = self.data
        return err


def _invalid(param: str, reason: str = "must be present") -> _RpcError:
    return _RpcError(-32602, "Invalid params", {"reason": reason, "param": param})


# --------------------------------------------------------------------------------------------
# Wire payloads
# --------------------------------------------------------------------------------------------


def _settlement_period(c: Contract) -> str:
    return "perpetual" if c.perpetual else "month"


_TICKS = {"BTC": 0.5, "ETH": 0.05}
"""Price tick of the inverse perpetuals and futures per base coin (BTC-PERPETUAL 0.5 USD, ETH-PERPETUAL
0.05 USD), coarser than the book's decimal grid: the venue puts every published order-book and trade
price on it."""
OPTION_TICK = 0.0001
OPTION_STEPS: tuple[tuple[float, float], ...] = ((0.005, 0.0005),)
"""Coin-settled options: 0.0001 BTC, 0.0005 BTC above 0.005 BTC (``tick_size_steps``)."""


def tick_size(c: Contract) -> float:
    """The ``tick_size`` of ``c`` (the lowest step for options; see ``OPTION_STEPS``)."""
    return OPTION_TICK if c.option else _TICKS.get(c.base, c.tick)


def on_tick(c: Contract, price: float, how: str = "near") -> float:
    """``price`` on ``c``'s tick grid: ``down`` for bids, ``up`` for asks, else the nearest."""
    tick = tick_size(c)
    if c.option:
        for above, step in OPTION_STEPS:
            if price > above:
                tick = step
    n = price / tick
    k = math.floor(n + 1e-9) if how == "down" else math.ceil(n - 1e-9) if how == "up" else round(n)
    return round(k * tick, 8)


def instrument_row(c: Contract) -> Json:
    """One ``get_instruments`` row (dr:inst): ``instrument_type`` ``reversed`` for coin-settled
    contracts (inverse perpetuals/futures AND BTC options), ``contract_size`` USD (inverse) or coin
    (options), ``min_trade_amount`` in ``amount`` units."""
    option = c.option
    row: Json = {
        "instrument_name": c.symbol,
        "instrument_id": zlib.crc32(c.symbol.encode()) % 1_000_000,
        "kind": "option" if option else "future",
        "instrument_type": "reversed" if c.settle == c.base else "linear",
        "base_currency": c.base,
        "quote_currency": c.base if option else "USD",
        "counter_currency": "USD",
        "settlement_currency": c.settle,
        "price_index": c.index,
        "contract_size": int(c.contract_value) if c.contract_value >= 1 else c.contract_value,
        "min_trade_amount": c.contract_value if c.inverse else c.step,
        "tick_size": tick_size(c),
        "tick_size_steps": [{"above_price": a, "tick_size": t} for a, t in OPTION_STEPS] if option else [],
        "maker_commission": 0.0003 if option else 0.0,
        "taker_commission": 0.0003 if option else 0.0005,
        "max_liquidation_commission": 0.0075,
        "settlement_period": _settlement_period(c),
        "expiration_timestamp": c.expiry_ms or 32_503_708_800_000,
        "creation_timestamp": c.launch_ms,
        "is_active": True,
        "rfq": False,
        "block_trade_commission": 0.00025,
        "block_trade_min_trade_amount": 25 if option else 200_000,
        "block_trade_tick_size": 0.0001 if option else 0.01,
    }
    if not option:
        row["max_leverage"] = 50
        row["future_type"] = "reversed" if c.inverse else "linear"
    else:
        row["strike"] = c.strike
        row["option_type"] = "call" if c.option_type == "C" else "put"
    return row


def _current_funding(st: ContractState) -> float:
    premium = st.mark_price / st.index_price - 1
    return round(max(0.0005, premium) + min(-0.0005, premium), 8)


HOUR_MS = 3_600_000


def funding_between(book: VenueBook, c: Contract, start_ms: int, end_ms: int) -> float:
    """Funding accrued by perpetual ``c`` over ``(start_ms, end_ms]`` (capped at market time): each hourly
    record (``interest_1h``) covers the hour before its timestamp, pro rata where the window cuts it; the
    hour in progress accrues the current hourly rate. What ``get_funding_rate_value`` answers; the ticker's
    ``funding_8h`` and the history's ``interest_8h`` are it over the trailing 8 h."""
    now = book.market.now_ms
    end = min(end_ms, now)
    if end <= start_ms:
        return 0.0
    total = 0.0
    last = None
    for rec in book.funding_records(c.symbol, start_ms, end + HOUR_MS):
        if rec.funding_ms > now:
            break
        last = rec.funding_ms
        overlap = min(rec.funding_ms, end) - max(rec.funding_ms - HOUR_MS, start_ms)
        if overlap > 0:
            total += rec.rate * overlap / HOUR_MS
    accrue_from = max(start_ms, last if last is not None else now - now % HOUR_MS)
    if end > accrue_from:
        total += book.state(c.symbol).funding_rate * (end - accrue_from) / HOUR_MS
    return round(total, 12)


def ticker_row(book: VenueBook, c: Contract, now_ms: int) -> Json:
    """``ticker`` data (dr:tick): JSON numbers, ``timestamp`` int ms; OI USD for inverse contracts;
    order-book and trade prices on the instrument's tick grid."""
    st = book.state(c.symbol)
    idx = book.indexes[c.index]
    size = c.contract_value
    if c.option:
        oi, volume, volume_usd = st.open_interest, st.volume_24h, st.turnover_24h
    else:
        oi = st.open_interest * size
        volume, volume_usd = st.turnover_24h, st.volume_24h * size
    mark = round(st.mark_price, 8) if c.option else round(st.mark_price, 2)
    band = 0.05 if not c.option else 0.5
    bid = on_tick(c, st.bid_price, "down") if st.bid_price else 0.0
    stats: Json = {
        "high": on_tick(c, st.high_24h),
        "low": on_tick(c, st.low_24h),
        "volume": round(volume, 4),
        "volume_usd": round(volume_usd, 2),
        "price_change": round((st.last_price / st.open_24h - 1) * 100, 4) if st.open_24h else None,
    }
    if not c.option:
        stats["volume_notional"] = round(volume_usd, 2)
    row: Json = {
        "instrument_name": c.symbol,
        "state": "open",
        "timestamp": now_ms,
        "best_bid_price": bid,
        "best_bid_amount": (st.bid_qty * size if c.inverse else st.bid_qty) if bid else 0.0,
        "best_ask_price": on_tick(c, st.ask_price, "up"),
        "best_ask_amount": st.ask_qty * size if c.inverse else st.ask_qty,
        "last_price": on_tick(c, st.last_price),
        "mark_price": mark,
        "index_price": round(idx.price, 2),
        "min_price": on_tick(c, mark * (1 - band), "up"),
        "max_price": on_tick(c, mark * (1 + band), "down"),
        "settlement_price": round(st.open_24h, 2) if not c.option else round(st.open_24h, 8),
        "estimated_delivery_price": round(idx.price, 2),
        "open_interest": round(oi, 1),
        "stats": stats,
    }
    if c.perpetual:
        row["current_funding"] = _current_funding(st)
        row["funding_8h"] = funding_between(book, c, now_ms - 8 * HOUR_MS, now_ms)
        row["interest_value"] = round(8 * st.funding_rate * 3, 8)
    if c.option:
        row.update(
            {
                "mark_iv": round(st.mark_iv * 100, 2),
                "bid_iv": round(st.bid_iv * 100, 2),
                "ask_iv": round(st.ask_iv * 100, 2),
                "underlying_price": round(st.forward, 2),
                "underlying_index": "index_price",
                "interest_rate": 0.0,
                "greeks": {
                    "delta": round(st.delta, 5),
                    "gamma": round(st.gamma, 5),
                    "vega": round(st.vega, 5),
                    "theta": round(st.theta, 5),
                    "rho": round(st.delta * st.forward * max(c.expiry_ms - now_ms, 0) / 3.1536e10 / 100, 5),
                },
            }
        )
    return row


def summary_row(book: VenueBook, c: Contract, now_ms: int) -> Json:
    """A ``get_book_summary_by_currency`` row (dr:bs): no greeks, no bid/ask IV."""
    t = ticker_row(book, c, now_ms)
    row: Json = {
        "instrument_name": c.symbol,
        "base_currency": c.base,
        "quote_currency": "USD" if not c.option else c.base,
        "creation_timestamp": now_ms,
        "mark_price": t["mark_price"],
        "bid_price": t["best_bid_price"] or None,
        "ask_price": t["best_ask_price"],
        "mid_price": (t["best_bid_price"] + t["best_ask_price"]) / 2 if t["best_bid_price"] else None,
        "last": t["last_price"],
        "high": t["stats"]["high"],
        "low": t["stats"]["low"],
        "open_interest": t["open_interest"],
        "volume": t["stats"]["volume"],
        "volume_usd": t["stats"]["volume_usd"],
        "price_change": t["stats"]["price_change"],
        "estimated_delivery_price": t["estimated_delivery_price"],
    }
    if not c.option:
        row["volume_notional"] = t["stats"]["volume_notional"]
    if c.perpetual:
        row["current_funding"] = t["current_funding"]
        row["funding_8h"] = t["funding_8h"]
    if c.option:
        row.update(
            mark_iv=t["mark_iv"], underlying_price=t["underlying_price"], underlying_index="index_price",
            interest_rate=0.0,
        )  # fmt: skip
    return row


_CURRENCY_NAMES = {"BTC": ("Bitcoin", 8, 0.0001), "ETH": ("Ethereum", 8, 0.0006)}


def _currency_row(cur: str) -> Json:
    """A ``get_currencies`` row (dr:cur)."""
    name, decimals, fee = _CURRENCY_NAMES[cur]
    return {
        "currency": cur, "currency_long": name,
        "decimals": decimals, "fee_precision": 4, "min_confirmations": 1, "min_withdrawal_fee": fee,
        "withdrawal_fee": fee, "withdrawal_priorities": [], "in_cross_collateral_pool": True,
        "network_currency": cur, "network_fee": fee,
    }  # fmt: skip


def liquidation_flag(seed: int, liq: VenueLiquidation) -> str:
    """Who was liquidated in this trade: ``T`` (taker, 70 %), ``M`` (maker, 20 %), ``MT`` (both)."""
    u = random.Random(f"{seed}:deribit:liqflag:{liq.seq}:{liq.symbol}").random()
    return "T" if u < 0.7 else ("M" if u < 0.9 else "MT")


# --------------------------------------------------------------------------------------------
# Connections
# --------------------------------------------------------------------------------------------


class _Conn(WsConnection):
    def __init__(self, venue: DeribitVenue, ws: web.WebSocketResponse, request: web.Request) -> None:
        super().__init__(
            WS_KEY, ws, request, venue.faults, venue.stats, idle_timeout_s=math.inf,
            idle_close=(1000, "idle"), render_garbage=venue.garbage, send_queue_max=venue.config.send_queue_max,
        )  # fmt: skip
        self.channels: set[str] = set()
        self.heartbeat_s: float | None = None
        self.answered = True
        self.heartbeat_task: asyncio.Task[None] | None = None


class DeribitVenue:
    """Deribit v2 on the simulator's app. See the module docstring for URLs and behaviour."""

    def __init__(self, market: Market, faults: FaultPlan, config: DeribitConfig | None = None) -> None:
        self.market = market
        self.book: VenueBook = market.deribit
        self.faults = faults
        self.config = config or DeribitConfig()
        self.connections: set[_Conn] = set()
        self.stats: Counter[str] = Counter()
        self._cursor = len(self.book.pushed)
        self._rng = random.Random(f"{market.seed}:deribit:trades")
        self._trade_id: Counter[str] = Counter({cur: 310_000_000 for cur in CURRENCIES})
        self._trade_seq: Counter[str] = Counter()
        self.trades: dict[str, deque[Json]] = {cur: deque(maxlen=self.config.trades_kept) for cur in CURRENCIES}
        """Recent trades per currency (futures and perpetuals), oldest first: what REST serves."""
        self.methods: dict[str, Callable[[Json], Any]] = {
            "public/get_instruments": self._get_instruments,
            "public/ticker": self._ticker,
            "public/get_book_summary_by_currency": self._book_summary,
            "public/get_book_summary_by_instrument": self._book_summary_instrument,
            "public/get_instrument": lambda p: instrument_row(self._contract(p)),
            "public/get_currencies": lambda _p: [_currency_row(cur) for cur in CURRENCIES],
            "public/get_funding_rate_history": self._funding_history,
            "public/get_funding_rate_value": self._funding_value,
            "public/get_last_trades_by_currency": self._last_trades,
            "public/get_last_trades_by_instrument": self._last_trades_instrument,
            "public/get_time": lambda _p: self.market.now_ms,
            "public/test": lambda _p: {"version": "1.2.26"},
        }

    @property
    def name(self) -> str:
        return NAME

    def install(self, app: web.Application) -> None:
        sub = web.Application()
        sub.router.add_get("/ws/api/v2", self._ws_session)
        sub.router.add_get("/api/v2/public/{method}", self._rest)
        app.add_subapp(f"/{NAME}", sub)

    def urls(self, http_root: str, ws_root: str) -> dict[str, str]:
        return {"deribit_rest": f"{http_root}/{NAME}", "deribit_ws": f"{ws_root}/{NAME}/ws/api/v2"}

    async def close(self) -> None:
        for conn in list(self.connections):
            with contextlib.suppress(ConnectionError, RuntimeError):
                await conn.close(WSCloseCode.GOING_AWAY, "server shutdown")

    # -- ticking ----------------------------------------------------------------------------

    def on_tick(self, now_ms: int) -> None:
        new: list[Json] = []
        pushed = self.book.pushed
        while self._cursor < len(pushed):
            new.append(self._liquidation_trade(pushed[self._cursor].liquidation))
            self._cursor += 1
        prob = self.config.trade_prob
        new.extend(
            self._normal_trade(c, now_ms)
            for c in self.book.contracts.values()
            if not c.option and self._rng.random() < prob
        )
        new.sort(key=lambda r: r["timestamp"])  # stable: creation order among equal times
        for row in new:
            self.trades[self._currency(row["instrument_name"])].append(row)
        if not self.connections:
            return
        for conn in self.connections:
            for channel in conn.channels:
                parts = channel.split(".")
                interval = INTERVALS[parts[-1]]
                if parts[0] == "ticker":
                    if now_ms % interval == 0:
                        c = self.book.contracts[parts[1]]
                        conn.push(_notification(channel, ticker_row(self.book, c, now_ms)))
                elif parts[0] == "trades":
                    rows = [r for r in new if self._matches(parts, r)]
                    if rows:
                        conn.push(_notification(channel, rows))

    @staticmethod
    def _currency(symbol: str) -> str:
        return symbol.split("-", 1)[0]

    def _matches(self, parts: list[str], row: Json) -> bool:
        if len(parts) == 3:
            return bool(row["instrument_name"] == parts[1])
        kind = "option" if self.book.contracts[row["instrument_name"]].option else "future"
        return parts[1] in ("any", kind) and parts[2] in ("any", self._currency(row["instrument_name"]))

    def _next_id(self, c: Contract) -> tuple[str, int]:
        """``trade_id`` is unique per currency: a number for BTC, ``ETH-<n>`` for ETH (dr:tr)."""
        self._trade_id[c.base] += 1
        self._trade_seq[c.symbol] += 1
        n = self._trade_id[c.base]
        return (str(n) if c.base == "BTC" else f"{c.base}-{n}"), self._trade_seq[c.symbol]

    def _liquidation_trade(self, liq: VenueLiquidation) -> Json:
        c = self.book.contracts[liq.symbol]
        st = self.book.state(c.symbol)
        flag = liquidation_flag(self.market.seed, liq)
        side = liq.side.lower()
        direction = side if flag != "M" else ("buy" if side == "sell" else "sell")
        trade_id, seq = self._next_id(c)
        return {
            "trade_seq": seq, "trade_id": trade_id, "timestamp": liq.trade_ms,
            "tick_direction": 0 if side == "buy" else 2,
            "price": on_tick(c, liq.price), "mark_price": round(st.mark_price, 2), "instrument_name": c.symbol,
            "index_price": round(st.index_price, 2), "direction": direction,
            "amount": liq.qty * c.contract_value if c.inverse else liq.qty, "contracts": liq.qty, "liquidation": flag,
        }  # fmt: skip

    def _normal_trade(self, c: Contract, now_ms: int) -> Json:
        st = self.book.state(c.symbol)
        rng = self._rng
        direction = "buy" if rng.random() < 0.5 else "sell"
        contracts = float(rng.randint(1, 300))
        trade_id, seq = self._next_id(c)
        return {
            "trade_seq": seq, "trade_id": trade_id, "timestamp": now_ms - rng.randrange(0, 100),
            "tick_direction": 0 if direction == "buy" else 2,
            "price": on_tick(c, st.ask_price, "up") if direction == "buy" else on_tick(c, st.bid_price, "down"),
            "mark_price": round(st.mark_price, 2),
            "instrument_name": c.symbol, "index_price": round(st.index_price, 2), "direction": direction,
            "amount": contracts * c.contract_value, "contracts": contracts,
        }  # fmt: skip

    # -- JSON-RPC ---------------------------------------------------------------------------

    def _envelope(self, req_id: Any, us_in: int, *, result: Any = None, error: _RpcError | None = None) -> Json:
        body: Json = {"jsonrpc": "2.0"}
        if req_id is not None:
            body["id"] = req_id
        if error is not None:
            body["error"] = error.body()
        else:
            body["result"] = result
        us_out = time.time_ns() // 1000
        body.update({"usIn": us_in, "usOut": us_out, "usDiff": us_out - us_in, "testnet": False})
        return body

    def call(self, method: str, params: Json) -> Any:
        fn = self.methods.get(method)
        if fn is None:
            raise _RpcError(-32601, "Method not found")
        return fn(params)

    def _contract(self, params: Json) -> Contract:
        name = params.get("instrument_name")
        if not name:
            raise _invalid("instrument_name")
        c = self.book.contracts.get(str(name))
        if c is None:
            raise _RpcError(13020, "not_found")
        return c

    def _currency_param(self, params: Json) -> str:
        cur = params.get("currency")
        if not cur:
            raise _invalid("currency")
        if cur not in (*CURRENCIES, *OTHER_CURRENCIES, "any"):
            raise _invalid("currency", "wrong format")
        return str(cur)

    def _selected(self, params: Json) -> list[Contract]:
        cur = self._currency_param(params)
        kind = params.get("kind")
        if kind not in (None, "", "future", "option", "spot", "future_combo", "option_combo"):
            raise _invalid("kind", "wrong format")
        return [
            c
            for c in self.book.contracts.values()
            if cur in (c.base, "any") and (not kind or kind == ("option" if c.option else "future"))
        ]

    def _get_instruments(self, params: Json) -> list[Json]:
        return [instrument_row(c) for c in self._selected(params)]

    def _ticker(self, params: Json) -> Json:
        return ticker_row(self.book, self._contract(params), self.market.now_ms)

    def _book_summary(self, params: Json) -> list[Json]:
        now = self.market.now_ms
        return [summary_row(self.book, c, now) for c in self._selected(params)]

    def _book_summary_instrument(self, params: Json) -> list[Json]:
        """``get_book_summary_by_instrument``: the same row, in a one-element array."""
        return [summary_row(self.book, self._contract(params), self.market.now_ms)]

    def _window(self, params: Json) -> tuple[int, int]:
        try:
            return int(params["start_timestamp"]), int(params["end_timestamp"])
        except KeyError as exc:
            raise _invalid(str(exc.args[0])) from None
        except (TypeError, ValueError):
            raise _invalid("start_timestamp", "wrong format") from None

    def _perpetual(self, params: Json) -> Contract:
        c = self._contract(params)
        if not c.perpetual:
            raise _invalid("instrument_name", "not a perpetual")
        return c

    def _funding_value(self, params: Json) -> float:
        """``get_funding_rate_value``: the funding accrued over the window (a bare number)."""
        c = self._perpetual(params)
        start, end = self._window(params)
        return funding_between(self.book, c, start, end)

    def _funding_history(self, params: Json) -> list[Json]:
        """Hourly rows (dr:fh): ``interest_1h`` the hour's funding, ``interest_8h`` the funding of the
        8 hours up to the row (their sum, as the documented example shows: interest_8h ≠ 8 × interest_1h),
        ``index_price`` then and ``prev_index_price`` an hour earlier."""
        c = self._perpetual(params)
        start, end = self._window(params)
        rows: list[Json] = []
        prev_index: float | None = None
        window: deque[float] = deque(maxlen=8)
        for rec in self.book.funding_records(c.symbol, start - 8 * HOUR_MS, end):
            if rec.funding_ms > self.market.now_ms:
                break
            index = round(rec.mark_price, 2)  # the book records the mark; close to the index for a perp
            window.append(rec.rate)
            if rec.funding_ms >= start:
                rows.append(
                    {
                        "timestamp": rec.funding_ms, "index_price": index,
                        "prev_index_price": prev_index if prev_index is not None else index,
                        "interest_8h": round(sum(window), 12),
                        "interest_1h": rec.rate,
                    }
                )  # fmt: skip
            prev_index = index
        return rows

    def _last_trades(self, params: Json) -> Json:
        cur = self._currency_param(params)
        kind = params.get("kind") or "any"
        try:
            count = int(params.get("count", 10))
        except ValueError:
            raise _invalid("count", "wrong format") from None
        if not 1 <= count <= 1000:
            raise _invalid("count", "must be between 1 and 1000")
        rows: list[Json] = []
        if kind in ("future", "any"):
            for c in CURRENCIES if cur == "any" else (cur,):
                rows.extend(self.trades.get(c, ()))
        rows.sort(key=lambda r: r["timestamp"])  # stable: each currency's rows stay in trade order
        newest_first = params.get("sorting", "desc") != "asc"
        picked = rows[-count:]
        if newest_first:
            picked = picked[::-1]
        return {"trades": picked, "has_more": len(rows) > count}

    def _last_trades_instrument(self, params: Json) -> Json:
        """``get_last_trades_by_instrument``: the same rows, one instrument's (options: none)."""
        c = self._contract(params)
        picked = self._last_trades({**params, "currency": c.base, "kind": "future", "count": "1000"})
        rows = [r for r in picked["trades"] if r["instrument_name"] == c.symbol]
        try:
            count = int(params.get("count", 10))
        except ValueError:
            raise _invalid("count", "wrong format") from None
        return {"trades": rows[:count], "has_more": len(rows) > count}

    # -- REST -------------------------------------------------------------------------------

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        us_in = time.time_ns() // 1000
        method = f"public/{request.match_info['method']}"
        fault = self.faults.take_rest_fault(REST_KEY, request.path)
        if fault is not None and fault.delay_s > 0:
            await self.faults.sleep(fault.delay_s)
        if fault is not None and fault.status is not None:
            err = _RpcError(fault.code or 10028, "too_many_requests" if fault.status == 429 else "internal_error")
            return _json(self._envelope(None, us_in, error=err), fault.status)
        try:
            result = self.call(method, dict(request.query))
        except _RpcError as err:
            return _json(self._envelope(None, us_in, error=err), 400)
        return _json(self._envelope(None, us_in, result=result), 200)

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
        writer = asyncio.create_task(conn.write_loop(), name=f"sim-deribit-write-{id(conn):x}")
        keeper = asyncio.create_task(conn.keep_loop(), name=f"sim-deribit-keep-{id(conn):x}")
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self._handle(conn, msg.data)
        finally:
            tasks = [t for t in (writer, keeper, conn.heartbeat_task) if t is not None]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.faults.unregister(conn)
            self.connections.discard(conn)
        return ws

    def _handle(self, conn: _Conn, text: str) -> None:
        us_in = time.time_ns() // 1000
        conn.answered = True
        try:
            req = orjson.loads(text)
        except orjson.JSONDecodeError:
            conn.reply(_frame(self._envelope(None, us_in, error=_RpcError(-32700, "Parse error"))))
            return
        if not isinstance(req, dict) or not isinstance(req.get("method"), str):
            conn.reply(_frame(self._envelope(None, us_in, error=_RpcError(-32600, "Invalid Request"))))
            return
        req_id = req.get("id")
        params = req.get("params") or {}
        if not isinstance(params, dict):
            conn.reply(_frame(self._envelope(req_id, us_in, error=_invalid("params", "must be an object"))))
            return
        try:
            result = self._ws_call(conn, req["method"], params)
        except _RpcError as err:
            conn.reply(_frame(self._envelope(req_id, us_in, error=err)))
            return
        conn.reply(_frame(self._envelope(req_id, us_in, result=result)))

    def _ws_call(self, conn: _Conn, method: str, params: Json) -> Any:
        if method == "public/subscribe":
            return self._subscribe(conn, params)
        if method == "public/unsubscribe":
            channels = _channels(params)
            gone = [ch for ch in channels if ch in conn.channels]
            conn.channels.difference_update(gone)
            return gone
        if method == "public/unsubscribe_all":
            conn.channels.clear()
            return "ok"
        if method == "public/set_heartbeat":
            return self._set_heartbeat(conn, params)
        if method == "public/disable_heartbeat":
            conn.heartbeat_s = None
            if conn.heartbeat_task is not None:
                conn.heartbeat_task.cancel()
                conn.heartbeat_task = None
            return "ok"
        return self.call(method, params)

    def _subscribe(self, conn: _Conn, params: Json) -> list[str]:
        channels = _channels(params)
        ok: list[str] = []
        for ch in channels:
            if ch.endswith(".raw"):
                raise _RpcError(13778, "raw_subscriptions_not_available_for_unauthorized")
            if self._valid_channel(ch):
                ok.append(ch)
        conn.channels.update(ok)
        return ok

    def _valid_channel(self, ch: str) -> bool:
        parts = ch.split(".")
        if parts[-1] not in INTERVALS:
            return False
        if parts[0] == "ticker" and len(parts) == 3:
            return parts[1] in self.book.contracts
        if parts[0] == "trades" and len(parts) == 3:
            return parts[1] in self.book.contracts and not self.book.contracts[parts[1]].option
        if parts[0] == "trades" and len(parts) == 4:
            return parts[1] in TRADE_KINDS and parts[2] in (*CURRENCIES, *OTHER_CURRENCIES, "any")
        return False

    def _set_heartbeat(self, conn: _Conn, params: Json) -> str:
        try:
            interval = float(params["interval"])
        except (KeyError, TypeError, ValueError):
            raise _invalid("interval") from None
        if interval < self.config.min_heartbeat_s:
            raise _invalid("interval", f"must be at least {self.config.min_heartbeat_s:g}")
        conn.heartbeat_s = interval
        if conn.heartbeat_task is not None:
            conn.heartbeat_task.cancel()
        conn.heartbeat_task = asyncio.get_running_loop().create_task(self._heartbeat(conn, interval))
        return "ok"

    async def _heartbeat(self, conn: _Conn, interval: float) -> None:
        """dr:hb: a ``test_request`` every ``interval``; unanswered by the next one ⇒ close."""
        frame = _frame({"jsonrpc": "2.0", "method": "heartbeat", "params": {"type": "test_request"}})
        while not conn.ws.closed:
            conn.answered = False
            conn.reply(frame)
            await asyncio.sleep(interval)
            if not conn.answered and self.config.heartbeat_close:
                self.stats["heartbeat_closes"] += 1
                conn.close_request = (1000, "heartbeat timeout: no response to test_request")
                conn.wake.set()
                return

    def garbage(self, _conn: WsConnection, kind: GarbageKind) -> str | bytes:
        if kind == "binary":
            return b"\x00\x9fsimulated binary garbage\xff"
        if kind == "text":
            return "<html><body>502 Bad Gateway</body></html>"
        if kind == "unknown_event":
            return _frame({"jsonrpc": "2.0", "method": "sim_unknown", "params": {}})
        frame = _notification("ticker.BTC-PERPETUAL.100ms", {"instrument_name": "BTC-PERPETUAL", "mark_price": "x"})
        return frame if kind == "wrong_types" else frame[: len(frame) // 2]


def _channels(params: Json) -> list[str]:
    channels = params.get("channels")
    if not isinstance(channels, list) or not channels or not all(isinstance(c, str) for c in channels):
        raise _invalid("channels")
    return channels


def _notification(channel: str, data: Any) -> str:
    return _frame({"jsonrpc": "2.0", "method": "subscription", "params": {"channel": channel, "data": data}})


def _frame(body: Json) -> str:
    return orjson.dumps(body).decode()


def _json(body: Json, status: int) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")
