"""Deterministic generated frames per venue and kind, in each venue's real wire shape, plus canned REST bodies.

Everything here comes from one seeded ``random.Random``: no wall clock, no network. The shapes follow the
recorded cases in ``tests/frames/<venue>/cases/*.json`` and ``shared/exchanges.md`` (numbers as strings on
Binance, Bybit and OKX; JSON numbers on Deribit and BitMEX; combined-stream envelope on Binance; JSON-RPC
``subscription`` notifications on Deribit; ``partial`` then ``update``/``insert`` tables on BitMEX).

Universe: a few hundred symbols per venue (300 by default); which symbol a frame is about is drawn from a
Zipf distribution (s = 1.1) over the symbols, so BTC and ETH dominate and the tail is long, as on a real feed.
Prices walk randomly per symbol; notional sizes are log-normal with a heavy tail so that the alert rules
(large liquidation, cascades, extreme funding) do fire now and then.

Instrument metadata (contract sizes, funding intervals) comes from canned REST instrument bodies generated
here from the same universe, in each venue's REST shape, loaded into our adapters with
``adapter.load_instruments(body, market=...)`` and served to cryptofeed by a fake HTTP client.
"""

from __future__ import annotations

import math
import random
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import accumulate

import orjson

T0 = 1_790_832_600_000  # 2026-10-01T05:30:00Z, ms: the start of generated time
HOUR_MS = 3_600_000
PERPETUAL_DELIVERY = 4_133_404_800_000  # Binance's deliveryDate for perpetuals (year 2100)
ZIPF_S = 1.1
UNIVERSE = 300

# Real base assets first (the head of the Zipf distribution), then made-up tickers for the tail.
REAL_BASES = (
    "BTC", "ETH", "SOL", "XRP", "DOGE", "BNB", "ADA", "AVAX", "LINK", "TRX", "DOT", "LTC", "BCH", "NEAR",
    "APT", "ARB", "OP", "SUI", "TON", "PEPE", "WIF", "SEI", "INJ", "TIA", "FIL", "ATOM", "ETC", "UNI", "AAVE",
    "WLD", "TRUMP", "ORDI", "ENA", "JUP", "STX", "RENDER", "IMX", "HBAR", "MKR", "LDO",
)
SEED_PRICES = {"BTC": 84_500.0, "ETH": 2_715.0, "SOL": 142.0, "XRP": 0.52, "DOGE": 0.12, "BNB": 590.0}


@dataclass(frozen=True)
class Kind:
    """One benchmarked frame kind.

    Attributes:
        name: ``<venue>.<channel>`` (the row label of the table).
        venue: our adapter's name (``streamer.exchanges.ADAPTERS`` key).
        frames: the frames, as received (bytes).
        recv_ts: receive time of each frame, ms since epoch (same length as ``frames``).
        instruments: (market, REST body) pairs to load into our adapter before parsing.
        note: what the frames are, for the README and the JSON.
    """

    name: str
    venue: str
    frames: tuple[bytes, ...]
    recv_ts: tuple[int, ...]
    instruments: tuple[tuple[str, bytes], ...]
    note: str = ""

    @property
    def bytes_total(self) -> int:
        return sum(len(f) for f in self.frames)


@dataclass
class Venue:
    """A venue's generated universe: symbols, prices, and its canned REST bodies (by endpoint name)."""

    name: str
    symbols: list[str]
    price: dict[str, float]
    rest: dict[str, bytes] = field(default_factory=dict)
    meta: dict[str, dict[str, float]] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------- helpers


def _bases(rng: random.Random, n: int) -> list[str]:
    out = list(REAL_BASES[:n])
    seen = set(out)
    while len(out) < n:
        name = "".join(rng.choice(string.ascii_uppercase) for _ in range(rng.randint(3, 6)))
        if name in seen or "USD" in name or "PERP" in name or name.endswith(("BTC", "ETH")):
            continue
        seen.add(name)
        out.append(name)
    return out


def _price(rng: random.Random, base: str) -> float:
    if base in SEED_PRICES:
        return SEED_PRICES[base]
    return math.exp(rng.uniform(math.log(0.002), math.log(400.0)))


def _dp(price: float) -> int:
    """Decimals a venue would quote this price with (about 5 significant digits)."""
    return max(1, min(8, 4 - math.floor(math.log10(price))))


def _fmt(x: float, dp: int) -> str:
    return f"{x:.{dp}f}"


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def _dumps(obj: object) -> bytes:
    return orjson.dumps(obj)


class _Clock:
    """Generated event time: exponential gaps, and a receive time a few ms later."""

    def __init__(self, rng: random.Random, mean_gap_ms: float = 2.0) -> None:
        self.rng = rng
        self.t = float(T0)
        self.mean = mean_gap_ms

    def tick(self) -> int:
        self.t += self.rng.expovariate(1.0 / self.mean)
        return int(self.t)

    def recv(self, ts: int) -> int:
        return ts + 5 + int(abs(self.rng.gauss(0.0, 20.0)))


class _Zipf:
    def __init__(self, rng: random.Random, n: int) -> None:
        self.rng = rng
        self.cum = list(accumulate(1.0 / (i + 1) ** ZIPF_S for i in range(n)))
        self.idx = range(n)

    def draw(self) -> int:
        return self.rng.choices(self.idx, cum_weights=self.cum, k=1)[0]


def _walk(rng: random.Random, venue: Venue, sym: str, vol: float = 0.0006) -> float:
    p = venue.price[sym] * (1.0 + rng.gauss(0.0, vol))
    venue.price[sym] = p
    return p


def _notional(rng: random.Random) -> float:
    """USD size of a liquidation: median ~5k, heavy tail (a few above 1M)."""
    return min(math.exp(rng.gauss(math.log(5_000.0), 1.6)), 25_000_000.0)


def _funding_rate(rng: random.Random) -> float:
    if rng.random() < 0.01:
        return rng.choice((-1.0, 1.0)) * rng.uniform(0.002, 0.006)  # an extreme print now and then
    return 0.0001 + rng.gauss(0.0, 0.00015)


def _next_funding(ts: int, interval_h: int) -> int:
    step = interval_h * HOUR_MS
    return (ts // step + 1) * step


# --------------------------------------------------------------------------------------------- Binance


def binance_venue(rng: random.Random, n: int) -> Venue:
    bases = _bases(rng, n)
    n_usdc = min(10, n // 10)
    symbols = [b + "USDT" for b in bases[: n - n_usdc]] + [b + "USDC" for b in bases[:n_usdc]]
    v = Venue("binance", symbols, {})
    rows = []
    for sym in symbols:
        quote = "USDC" if sym.endswith("USDC") else "USDT"
        base = sym[: -len(quote)]
        p = v.price.setdefault(sym, _price(rng, base) * (1.0 + rng.gauss(0.0, 0.0003)))
        dp = _dp(p)
        qp = max(0, min(3, 3 - _dp(1000.0 / p) + 1))
        v.meta[sym] = {"dp": dp, "qp": qp}
        rows.append({
            "symbol": sym, "pair": sym, "contractType": "PERPETUAL", "deliveryDate": PERPETUAL_DELIVERY,
            "onboardDate": 1569398400000, "status": "TRADING", "maintMarginPercent": "2.5000",
            "requiredMarginPercent": "5.0000", "baseAsset": base, "quoteAsset": quote, "marginAsset": quote,
            "pricePrecision": dp, "quantityPrecision": qp, "baseAssetPrecision": 8, "quotePrecision": 8,
            "underlyingType": "COIN", "underlyingSubType": [], "settlePlan": 0, "triggerProtect": "0.0500",
            "liquidationFee": "0.012500", "marketTakeBound": "0.05", "maxMoveOrderLimit": 10000,
            "filters": [
                {"minPrice": _fmt(10 ** -dp, dp), "maxPrice": "4529764", "filterType": "PRICE_FILTER",
                 "tickSize": _fmt(10 ** -dp, dp)},
                {"stepSize": _fmt(10 ** -qp, qp) if qp else "1", "filterType": "LOT_SIZE", "maxQty": "1000000",
                 "minQty": _fmt(10 ** -qp, qp) if qp else "1"},
                {"notional": "5", "filterType": "MIN_NOTIONAL"},
            ],
            "orderTypes": ["LIMIT", "MARKET"], "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
        })
    v.rest["exchangeInfo_um"] = _dumps({"timezone": "UTC", "serverTime": T0, "futuresType": "U_MARGINED",
                                        "rateLimits": [], "exchangeFilters": [], "assets": [], "symbols": rows})
    # fundingInfo lists only the symbols off the 8 h default (shared/exchanges.md §1.3).
    adjusted = rng.sample(symbols[5:], k=min(len(symbols) - 5, 40))
    info = []
    for i, sym in enumerate(adjusted):
        hours = 1 if i < 6 else 4
        v.meta[sym]["interval_h"] = hours
        info.append({"symbol": sym, "adjustedFundingRateCap": "0.02000000", "adjustedFundingRateFloor": "-0.02000000",
                     "fundingIntervalHours": hours, "disclaimer": False})
    v.rest["fundingInfo_um"] = _dumps(info)
    return v


def _binance_instruments(v: Venue) -> tuple[tuple[str, bytes], ...]:
    return (("um", v.rest["exchangeInfo_um"]), ("um", v.rest["fundingInfo_um"]))


def _binance_mark(rng: random.Random, v: Venue, sym: str, ts: int) -> dict[str, object]:
    p = _walk(rng, v, sym, 0.0003)
    dp = 8
    hours = int(v.meta[sym].get("interval_h", 8))
    return {"e": "markPriceUpdate", "E": ts, "s": sym, "p": _fmt(p, dp), "ap": _fmt(p * (1 - 0.00005), dp),
            "P": _fmt(p * (1 + 0.0002), dp), "i": _fmt(p * (1 + rng.gauss(0, 0.0002)), dp),
            "r": _fmt(_funding_rate(rng), 8), "T": _next_funding(ts, hours), "st": 1}


def binance_force_order(rng: random.Random, v: Venue, n: int) -> Kind:
    clock, zipf = _Clock(rng, 40.0), _Zipf(rng, len(v.symbols))
    frames, recv = [], []
    for _ in range(n):
        sym = v.symbols[zipf.draw()]
        t = clock.tick()
        p = _walk(rng, v, sym)
        dp, qp = int(v.meta[sym]["dp"]), int(v.meta[sym]["qp"])
        qty = max(_notional(rng) / p, 10 ** -qp)
        side = rng.choice(("SELL", "BUY"))
        order_px = p * (0.995 if side == "SELL" else 1.005)
        filled = qty if rng.random() < 0.8 else qty * rng.uniform(0.2, 0.9)
        data = {"e": "forceOrder", "E": t + rng.randint(3, 60), "o": {
            "s": sym, "S": side, "o": "LIMIT", "f": "IOC", "q": _fmt(qty, qp), "p": _fmt(order_px, dp),
            "ap": _fmt(p, dp), "X": "FILLED" if filled == qty else "PARTIALLY_FILLED",
            "l": _fmt(filled, qp), "z": _fmt(filled, qp), "T": t}}
        frames.append(_dumps({"stream": f"{sym.lower()}@forceOrder", "data": data}))
        recv.append(clock.recv(t))
    return Kind("binance.forceOrder", "binance", tuple(frames), tuple(recv), _binance_instruments(v),
                "USDⓈ-M <sym>@forceOrder, combined-stream envelope")


def binance_mark_price(rng: random.Random, v: Venue, n: int) -> Kind:
    clock, zipf = _Clock(rng, 1.0), _Zipf(rng, len(v.symbols))
    frames, recv = [], []
    for _ in range(n):
        sym = v.symbols[zipf.draw()]
        t = clock.tick()
        frames.append(_dumps({"stream": f"{sym.lower()}@markPrice@1s", "data": _binance_mark(rng, v, sym, t)}))
        recv.append(clock.recv(t))
    return Kind("binance.markPrice", "binance", tuple(frames), tuple(recv), _binance_instruments(v),
                "USDⓈ-M <sym>@markPrice@1s, combined-stream envelope (funding + ticker events)")


def binance_mark_price_arr(rng: random.Random, v: Venue, n: int) -> Kind:
    frames, recv = [], []
    t = T0
    for _ in range(n):
        t += 1000
        frames.append(_dumps({"stream": "!markPrice@arr@1s",
                              "data": [_binance_mark(rng, v, sym, t) for sym in v.symbols]}))
        recv.append(t + 20 + rng.randint(0, 30))
    return Kind("binance.markPrice@arr", "binance", tuple(frames), tuple(recv), _binance_instruments(v),
                f"USDⓈ-M !markPrice@arr@1s: every frame carries all {len(v.symbols)} symbols")


# --------------------------------------------------------------------------------------------- Bybit


def bybit_venue(rng: random.Random, n: int) -> Venue:
    bases = _bases(rng, n)
    symbols = [b + "USDT" for b in bases]
    v = Venue("bybit", symbols, {})
    rows = []
    for i, (sym, base) in enumerate(zip(symbols, bases, strict=True)):
        p = v.price.setdefault(sym, _price(rng, base) * (1.0 + rng.gauss(0.0, 0.0003)))
        dp = _dp(p)
        interval_min = 480 if i < 200 or i % 3 else 240
        v.meta[sym] = {"dp": dp, "qp": max(0, min(3, 3 - _dp(1000.0 / p) + 1)), "interval_min": interval_min}
        rows.append({
            "symbol": sym, "symbolId": i + 5, "contractType": "LinearPerpetual", "status": "Trading",
            "baseCoin": base, "quoteCoin": "USDT", "launchTime": "1585526400000", "deliveryTime": "0",
            "deliveryFeeRate": "", "priceScale": str(dp),
            "leverageFilter": {"minLeverage": "1", "maxLeverage": "50.00", "leverageStep": "0.01"},
            "priceFilter": {"minPrice": _fmt(10 ** -dp, dp), "maxPrice": "1999999.80", "tickSize": _fmt(10 ** -dp, dp)},
            "lotSizeFilter": {"maxOrderQty": "1000000", "minOrderQty": "0.001", "qtyStep": "0.001",
                              "postOnlyMaxOrderQty": "1000000", "maxMktOrderQty": "500000", "minNotionalValue": "5"},
            "unifiedMarginTrade": True, "fundingInterval": interval_min, "settleCoin": "USDT", "copyTrading": "both",
            "upperFundingRate": "0.005", "lowerFundingRate": "-0.005", "displayName": "",
            "forbidUplWithdrawal": False, "riskParameters": {"priceLimitRatioX": "0.01", "priceLimitRatioY": "0.02"},
            "isPreListing": False, "preListingInfo": None, "symbolType": "",
        })
    v.rest["instruments_linear"] = _dumps({"retCode": 0, "retMsg": "OK", "result": {
        "category": "linear", "list": rows, "nextPageCursor": ""}, "retExtInfo": {}, "time": T0})
    v.rest["instruments_spot"] = _dumps({"retCode": 0, "retMsg": "OK", "result": {
        "category": "spot", "list": [], "nextPageCursor": ""}, "retExtInfo": {}, "time": T0})
    return v


def bybit_all_liquidation(rng: random.Random, v: Venue, n: int) -> Kind:
    clock, zipf = _Clock(rng, 30.0), _Zipf(rng, len(v.symbols))
    frames, recv = [], []
    for _ in range(n):
        sym = v.symbols[zipf.draw()]
        t = clock.tick()
        dp, qp = int(v.meta[sym]["dp"]), int(v.meta[sym]["qp"])
        rows = []
        for _ in range(rng.choices((1, 2, 3), weights=(70, 20, 10))[0]):
            p = _walk(rng, v, sym)
            side = rng.choice(("Buy", "Sell"))  # position side: Buy = a long was liquidated
            rows.append({"T": t - rng.randint(0, 480), "s": sym, "S": side,
                         "v": _fmt(max(_notional(rng) / p, 10 ** -qp), qp),
                         "p": _fmt(p * (0.995 if side == "Buy" else 1.005), dp)})
        rows.sort(key=lambda r: r["T"])
        frames.append(_dumps({"topic": f"allLiquidation.{sym}", "type": "snapshot", "ts": t, "data": rows}))
        recv.append(clock.recv(t))
    return Kind("bybit.allLiquidation", "bybit", tuple(frames), tuple(recv),
                (("linear", v.rest["instruments_linear"]),), "v5 linear allLiquidation.<SYM>, 1-3 rows per push")


def _bybit_snapshot(rng: random.Random, v: Venue, sym: str, ts: int) -> dict[str, object]:
    p = v.price[sym]
    dp = int(v.meta[sym]["dp"])
    oi = 5e6 / p * rng.uniform(1, 200)
    hours = int(v.meta[sym]["interval_min"]) // 60
    f = lambda x: _fmt(x, dp)  # noqa: E731
    return {
        "symbol": sym, "tickDirection": "PlusTick", "price24hPcnt": "0.012544", "lastPrice": f(p),
        "prevPrice24h": f(p * 0.99), "highPrice24h": f(p * 1.02), "lowPrice24h": f(p * 0.98),
        "prevPrice1h": f(p * 0.999), "markPrice": f(p), "indexPrice": f(p * 1.0002),
        "openInterest": _fmt(oi, 3), "openInterestValue": _fmt(oi * p, 2),
        "singleOpenInterest": _fmt(oi / 2, 3), "singleOpenInterestValue": _fmt(oi * p / 2, 2),
        "turnover24h": _fmt(oi * p * 3, 4), "volume24h": _fmt(oi * 3, 4), "fundingIntervalHour": str(hours),
        "fundingCap": "0.005", "nextFundingTime": str(_next_funding(ts, hours)),
        "fundingRate": _fmt(_funding_rate(rng), 6),
        "bid1Price": f(p * 0.9999), "bid1Size": "12.5", "ask1Price": f(p * 1.0001), "ask1Size": "8.1",
        "preOpenPrice": "", "preQty": "", "curPreListingPhase": "",
    }


def _bybit_delta(rng: random.Random, v: Venue, sym: str, ts: int) -> dict[str, object]:
    dp = int(v.meta[sym]["dp"])
    p = _walk(rng, v, sym, 0.0003)
    f = lambda x: _fmt(x, dp)  # noqa: E731
    pattern = rng.choices(("book", "trade", "mark", "oi", "funding"), weights=(45, 25, 15, 10, 5))[0]
    d: dict[str, object] = {"symbol": sym}
    if pattern == "book":
        d.update({"price24hPcnt": "0.012544", "bid1Price": f(p * 0.9999), "bid1Size": _fmt(rng.uniform(1, 500), 3),
                  "ask1Price": f(p * 1.0001), "ask1Size": _fmt(rng.uniform(1, 500), 3)})
    elif pattern == "trade":
        d.update({"tickDirection": rng.choice(("PlusTick", "MinusTick", "ZeroPlusTick")), "lastPrice": f(p),
                  "turnover24h": _fmt(rng.uniform(1e6, 1e9), 4), "volume24h": _fmt(rng.uniform(1e3, 1e7), 4)})
    elif pattern == "mark":
        d.update({"markPrice": f(p), "indexPrice": f(p * (1 + rng.gauss(0, 0.0002)))})
    elif pattern == "oi":
        oi = 5e6 / p * rng.uniform(1, 200)
        d.update({"openInterest": _fmt(oi, 3), "openInterestValue": _fmt(oi * p, 2),
                  "singleOpenInterest": _fmt(oi / 2, 3), "singleOpenInterestValue": _fmt(oi * p / 2, 2)})
    else:
        d.update({"fundingRate": _fmt(_funding_rate(rng), 6), "markPrice": f(p)})
    return d


def bybit_tickers(rng: random.Random, v: Venue, n: int) -> Kind:
    clock, zipf = _Clock(rng, 1.0), _Zipf(rng, len(v.symbols))
    frames, recv = [], []
    cs = 20_856_433_578
    for sym in v.symbols:  # a snapshot per symbol on subscribe, then deltas
        t = clock.tick()
        cs += rng.randint(1, 50)
        frames.append(_dumps({"topic": f"tickers.{sym}", "type": "snapshot", "data": _bybit_snapshot(rng, v, sym, t),
                              "cs": cs, "ts": t}))
        recv.append(clock.recv(t))
    for _ in range(max(0, n - len(v.symbols))):
        sym = v.symbols[zipf.draw()]
        t = clock.tick()
        cs += rng.randint(1, 50)
        frames.append(_dumps({"topic": f"tickers.{sym}", "type": "delta", "data": _bybit_delta(rng, v, sym, t),
                              "cs": cs, "ts": t}))
        recv.append(clock.recv(t))
    return Kind("bybit.tickers", "bybit", tuple(frames), tuple(recv), (("linear", v.rest["instruments_linear"]),),
                f"v5 linear tickers.<SYM>: {len(v.symbols)} snapshots, then deltas (book/trade/mark/OI/funding)")


# --------------------------------------------------------------------------------------------- OKX


def okx_venue(rng: random.Random, n: int) -> Venue:
    bases = _bases(rng, n)
    n_inverse = min(20, n // 10)
    symbols = [b + "-USDT-SWAP" for b in bases[: n - n_inverse]] + [b + "-USD-SWAP" for b in bases[:n_inverse]]
    v = Venue("okx", symbols, {})
    rows = []
    for sym in symbols:
        base, quote, _ = sym.split("-")
        p = v.price.setdefault(sym, _price(rng, base) * (1.0 + rng.gauss(0.0, 0.0003)))
        linear = quote == "USDT"
        ct_val = 10.0 ** math.floor(math.log10(1000.0 / p)) if linear else (100.0 if base == "BTC" else 10.0)
        hours = 8 if rng.random() < 0.85 else 4
        v.meta[sym] = {"dp": _dp(p), "ct_val": ct_val, "linear": float(linear), "interval_h": hours}
        ct_text = f"{ct_val:g}" if ct_val >= 1e-4 else f"{ct_val:.10f}".rstrip("0")
        rows.append({
            "alias": "", "auctionEndTime": "", "baseCcy": "", "category": "1", "contTdSwTime": "1611916860000",
            "ctMult": "1", "ctType": "linear" if linear else "inverse", "ctVal": ct_text,
            "ctValCcy": base if linear else "USD", "expTime": "", "futureSettlement": False,
            "instFamily": f"{base}-{quote}", "instId": sym, "instType": "SWAP", "lever": "50",
            "listTime": "1573557408000", "lotSz": "1", "maxLmtSz": "100000000", "maxMktSz": "35000",
            "minSz": "1", "optType": "", "quoteCcy": "", "ruleType": "normal",
            "settleCcy": "USDT" if linear else base, "state": "live", "stk": "",
            "tickSz": _fmt(10 ** -_dp(p), _dp(p)), "uly": f"{base}-{quote}",
        })
    v.rest["instruments_swap"] = _dumps({"code": "0", "msg": "", "data": rows})
    v.rest["instruments_empty"] = _dumps({"code": "0", "msg": "", "data": []})
    return v


def _okx_instruments(v: Venue) -> tuple[tuple[str, bytes], ...]:
    return (("public", v.rest["instruments_swap"]),)


def okx_funding_rate(rng: random.Random, v: Venue, n: int) -> Kind:
    clock, zipf = _Clock(rng, 2.0), _Zipf(rng, len(v.symbols))
    frames, recv = [], []
    for _ in range(n):
        sym = v.symbols[zipf.draw()]
        t = clock.tick()
        hours = int(v.meta[sym]["interval_h"])
        nxt = _next_funding(t, hours)
        rate = _funding_rate(rng)
        row = {"formulaType": "withRate", "fundingRate": _fmt(rate, 16), "fundingTime": str(nxt),
               "impactValue": "20000.0000000000000000", "instId": sym, "instType": "SWAP",
               "interestRate": "0.0001000000000000", "maxFundingRate": "0.00375", "method": "current_period",
               "minFundingRate": "-0.00375", "nextFundingRate": "", "nextFundingTime": str(nxt + hours * HOUR_MS),
               "premium": _fmt(rate - 0.0001, 16), "prevFundingTime": str(nxt - hours * HOUR_MS),
               "settFundingRate": _fmt(_funding_rate(rng), 16), "settState": "settled", "ts": str(t)}
        frames.append(_dumps({"arg": {"channel": "funding-rate", "instId": sym}, "data": [row]}))
        recv.append(clock.recv(t))
    return Kind("okx.funding-rate", "okx", tuple(frames), tuple(recv), _okx_instruments(v),
                "v5 public funding-rate per instId")


def okx_open_interest(rng: random.Random, v: Venue, n: int) -> Kind:
    clock, zipf = _Clock(rng, 2.0), _Zipf(rng, len(v.symbols))
    frames, recv = [], []
    for _ in range(n):
        sym = v.symbols[zipf.draw()]
        t = clock.tick()
        p = _walk(rng, v, sym, 0.0003)
        ct_val = v.meta[sym]["ct_val"]
        usd = rng.uniform(1e5, 5e9) if sym.startswith(("BTC", "ETH")) else rng.uniform(1e4, 5e7)
        if v.meta[sym]["linear"]:
            contracts = usd / p / ct_val
            ccy = contracts * ct_val
        else:
            contracts = usd / ct_val
            ccy = usd / p
        row = {"instId": sym, "instType": "SWAP", "oi": _fmt(contracts, 2), "oiCcy": _fmt(ccy, 8),
               "oiUsd": _fmt(usd, 4), "ts": str(t)}
        frames.append(_dumps({"arg": {"channel": "open-interest", "instId": sym}, "data": [row]}))
        recv.append(clock.recv(t))
    return Kind("okx.open-interest", "okx", tuple(frames), tuple(recv), _okx_instruments(v),
                "v5 public open-interest per instId")


def okx_liquidation_orders(rng: random.Random, v: Venue, n: int) -> Kind:
    clock, zipf = _Clock(rng, 40.0), _Zipf(rng, len(v.symbols))
    frames, recv = [], []
    for _ in range(n):
        t = clock.tick()
        rows = []
        for _ in range(rng.choices((1, 2), weights=(80, 20))[0]):
            sym = v.symbols[zipf.draw()]
            base, quote, _ = sym.split("-")
            ct_val = v.meta[sym]["ct_val"]
            dp = int(v.meta[sym]["dp"])
            details = []
            for _ in range(rng.choices((1, 2), weights=(75, 25))[0]):
                p = _walk(rng, v, sym)
                side = rng.choice(("sell", "buy"))
                pos = rng.choice(("long", "short", "net")) if side == "sell" else rng.choice(("short", "net"))
                if pos == "long" and side == "buy":
                    pos = "net"
                usd = _notional(rng)
                sz = max(1.0, round(usd / p / ct_val if v.meta[sym]["linear"] else usd / ct_val))
                details.append({"bkLoss": "0", "bkPx": _fmt(p * (0.995 if side == "sell" else 1.005), dp), "ccy": "",
                                "posSide": pos, "side": side, "sz": f"{sz:g}", "ts": str(t - rng.randint(0, 900))})
            rows.append({"details": details, "instFamily": f"{base}-{quote}", "instId": sym, "instType": "SWAP",
                         "uly": f"{base}-{quote}"})
        frames.append(_dumps({"arg": {"channel": "liquidation-orders", "instType": "SWAP"}, "data": rows}))
        recv.append(clock.recv(t))
    return Kind("okx.liquidation-orders", "okx", tuple(frames), tuple(recv), _okx_instruments(v),
                "v5 public liquidation-orders instType=SWAP, 1-2 instruments x 1-2 details")


# --------------------------------------------------------------------------------------------- Deribit

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_EXPIRIES = ((2026, 10, 2), (2026, 10, 3), (2026, 10, 9), (2026, 10, 16), (2026, 10, 30), (2026, 11, 27),
             (2026, 12, 25), (2027, 3, 26))


def deribit_venue(rng: random.Random, n: int) -> Venue:
    v = Venue("deribit", [], {"BTC": SEED_PRICES["BTC"], "ETH": SEED_PRICES["ETH"]})
    common = {"taker_commission": 0.0005, "maker_commission": 0.0, "is_active": True, "rfq": False,
              "block_trade_commission": 0.00025, "block_trade_min_trade_amount": 200000,
              "block_trade_tick_size": 0.01, "tick_size_steps": [], "creation_timestamp": 1534242287000}
    by_ccy: dict[str, list[dict[str, object]]] = {"BTC": [], "ETH": [], "USDC": [], "SOL": []}
    perps: list[str] = []
    for i, base in enumerate(("BTC", "ETH")):
        name = f"{base}-PERPETUAL"
        perps.append(name)
        v.price[name] = v.price[base]
        v.meta[name] = {"inverse": 1.0}
        by_ccy[base].append({**common, "tick_size": 0.5 if base == "BTC" else 0.05, "min_trade_amount": 10.0,
                             "kind": "future", "instrument_type": "reversed", "future_type": "reversed",
                             "base_currency": base, "quote_currency": "USD", "counter_currency": "USD",
                             "settlement_currency": base, "contract_size": 10.0 if base == "BTC" else 1.0,
                             "price_index": f"{base.lower()}_usd", "instrument_name": name,
                             "instrument_id": 124972 + i, "settlement_period": "perpetual", "max_leverage": 50,
                             "expiration_timestamp": 32503708800000})
    for i, base in enumerate(_bases(rng, 24)):  # USDC-margined linear perpetuals (Deribit lists about 20)
        name = f"{base}_USDC-PERPETUAL"
        perps.append(name)
        p = v.price.setdefault(name, _price(rng, base))
        size = 10.0 ** math.floor(math.log10(100.0 / p)) if p < 100 else 0.001 if p > 10_000 else 0.01
        v.meta[name] = {"inverse": 0.0}
        by_ccy["USDC"].append({**common, "tick_size": 10 ** -_dp(p), "min_trade_amount": size, "kind": "future",
                               "instrument_type": "linear", "future_type": "linear", "base_currency": base,
                               "quote_currency": "USDC", "counter_currency": "USDC", "settlement_currency": "USDC",
                               "contract_size": size, "price_index": f"{base.lower()}_usdc", "instrument_name": name,
                               "instrument_id": 200000 + i, "settlement_period": "perpetual", "max_leverage": 25,
                               "expiration_timestamp": 32503708800000})
    options: list[str] = []
    per_base = max(2, n // 2)
    for base in ("BTC", "ETH"):
        spot = v.price[base]
        step = 1000.0 if base == "BTC" else 50.0
        per_expiry = max(1, per_base // (2 * len(_EXPIRIES)))
        made = 0
        for y, m, d in _EXPIRIES:
            for j in range(per_expiry):
                offset = (j + 1) // 2 * (1 if j % 2 else -1)  # 0, +1, -1, +2, -2 ... steps around the money
                strike = round(spot / step) * step + offset * step
                for kind in ("C", "P"):
                    if made >= per_base:
                        break
                    made += 1
                    name = f"{base}-{d}{_MONTHS[m - 1]}{str(y)[2:]}-{strike:g}-{kind}"
                    exp_ms = int(datetime(y, m, d, 8, tzinfo=UTC).timestamp() * 1000)
                    v.meta[name] = {"strike": strike, "expiry": float(exp_ms), "call": float(kind == "C")}
                    options.append(name)
                    by_ccy[base].append({**common, "tick_size": 0.0001, "min_trade_amount": 0.1, "kind": "option",
                                         "instrument_type": "reversed", "base_currency": base, "quote_currency": base,
                                         "counter_currency": "USD", "settlement_currency": base, "contract_size": 1.0,
                                         "price_index": f"{base.lower()}_usd", "instrument_name": name,
                                         "instrument_id": 400000 + len(options), "settlement_period": "month",
                                         "strike": strike, "option_type": "call" if kind == "C" else "put",
                                         "expiration_timestamp": exp_ms})
    v.symbols = perps + options
    v.meta["_perps"] = {name: 1.0 for name in perps}
    v.meta["_options"] = {name: 1.0 for name in options}
    for ccy, rows in by_ccy.items():
        v.rest[f"instruments_{ccy}"] = _dumps({"jsonrpc": "2.0", "result": rows, "usIn": T0 * 1000,
                                               "usOut": T0 * 1000 + 4444, "usDiff": 4444, "testnet": False})
    return v


def _deribit_instruments(v: Venue) -> tuple[tuple[str, bytes], ...]:
    return tuple(("public", v.rest[f"instruments_{c}"]) for c in ("BTC", "ETH", "USDC"))


def _rpc(channel: str, data: dict[str, object]) -> bytes:
    return _dumps({"jsonrpc": "2.0", "method": "subscription", "params": {"channel": channel, "data": data}})


def deribit_perp_ticker(rng: random.Random, v: Venue, n: int) -> Kind:
    perps = list(v.meta["_perps"])
    clock, zipf = _Clock(rng, 1.0), _Zipf(rng, len(perps))
    frames, recv = [], []
    for _ in range(n):
        name = perps[zipf.draw()]
        t = clock.tick()
        p = _walk(rng, v, name, 0.0002)
        r = round(p, max(0, _dp(p) - 1))
        oi = rng.uniform(1e6, 9e8) if v.meta[name]["inverse"] else rng.uniform(1e3, 1e6)
        data = {"timestamp": t, "stats": {"volume_usd": round(rng.uniform(1e6, 5e8), 1), "volume": 5123.4567,
                                          "price_change": 1.2345, "low": round(r * 0.98, 2),
                                          "high": round(r * 1.02, 2)},
                "state": "open", "settlement_price": r, "open_interest": round(oi), "min_price": round(r * 0.985, 2),
                "max_price": round(r * 1.015, 2), "mark_price": r, "last_price": r, "interest_value": 0.0412345,
                "instrument_name": name, "index_price": round(p * (1 + rng.gauss(0, 0.0002)), 2),
                "funding_8h": round(_funding_rate(rng), 8), "estimated_delivery_price": round(p, 2),
                "current_funding": round(rng.gauss(0.00001, 0.00002), 8), "best_bid_price": r,
                "best_bid_amount": 125000.0, "best_ask_price": r, "best_ask_amount": 30.0}
        frames.append(_rpc(f"ticker.{name}.100ms", data))
        recv.append(clock.recv(t))
    return Kind("deribit.ticker.perpetual", "deribit", tuple(frames), tuple(recv), _deribit_instruments(v),
                f"v2 ticker.<perp>.100ms over {len(perps)} perpetuals (inverse BTC/ETH + USDC linear)")


def deribit_option_ticker(rng: random.Random, v: Venue, n: int) -> Kind:
    options = list(v.meta["_options"])
    clock, zipf = _Clock(rng, 1.0), _Zipf(rng, len(options))
    frames, recv = [], []
    for _ in range(n):
        name = options[zipf.draw()]
        base = name.split("-")[0]
        t = clock.tick()
        spot = _walk(rng, v, base, 0.0001)
        meta = v.meta[name]
        moneyness = math.log(spot / meta["strike"])
        iv = max(20.0, 50.0 + 80.0 * moneyness * moneyness + rng.gauss(0, 1.0))
        delta = 1 / (1 + math.exp(-4 * moneyness)) - (0.0 if meta["call"] else 1.0)
        mark = max(0.0001, round(abs(delta) * 0.05 + rng.uniform(0, 0.002), 4))
        no_bid = rng.random() < 0.1
        data = {"underlying_price": round(spot * 1.001, 2), "underlying_index": "index_price", "timestamp": t,
                "stats": {"volume": round(rng.uniform(0, 100), 1), "price_change": round(rng.gauss(0, 3), 1),
                          "low": round(mark * 0.9, 4), "high": round(mark * 1.1, 4)},
                "state": "open", "settlement_price": mark, "open_interest": round(rng.uniform(0, 3000), 1),
                "min_price": round(mark * 0.6, 4), "max_price": round(mark * 1.5 + 0.01, 4), "mark_price": mark,
                "mark_iv": round(iv, 2), "last_price": mark, "interest_rate": 0.0, "instrument_name": name,
                "index_price": round(spot, 2),
                "greeks": {"vega": round(rng.uniform(1, 200), 5), "theta": round(-rng.uniform(1, 80), 5),
                           "rho": round(rng.gauss(0, 50), 5), "gamma": round(rng.uniform(1e-6, 5e-5), 7),
                           "delta": round(delta, 5)},
                "estimated_delivery_price": round(spot, 2), "bid_iv": 0.0 if no_bid else round(iv - 1.2, 2),
                "best_bid_price": 0.0 if no_bid else round(mark * 0.98, 4),
                "best_bid_amount": 0.0 if no_bid else 12.3, "best_ask_price": round(mark * 1.02, 4),
                "best_ask_amount": 4.0, "ask_iv": round(iv + 1.3, 2)}
        frames.append(_rpc(f"ticker.{name}.100ms", data))
        recv.append(clock.recv(t))
    return Kind("deribit.ticker.option", "deribit", tuple(frames), tuple(recv), _deribit_instruments(v),
                f"v2 ticker.<option>.100ms over {len(options)} BTC/ETH options (greeks, IVs)")


# --------------------------------------------------------------------------------------------- BitMEX


def bitmex_venue(rng: random.Random, n: int) -> Venue:
    bases = _bases(rng, n)
    symbols = ["XBTUSD", "ETHUSD"] + [("XBT" if b == "BTC" else b) + "USDT" for b in bases[: n - 2]]
    v = Venue("bitmex", symbols, {})
    rows = []
    for sym in symbols:
        if sym == "XBTUSD":
            base, p = "XBT", SEED_PRICES["BTC"]
            extra = {"quoteCurrency": "USD", "settlCurrency": "XBt", "positionCurrency": "USD",
                     "multiplier": -100000000, "isInverse": True, "isQuanto": False,
                     "underlyingToSettleMultiplier": -100000000, "quoteToSettleMultiplier": None,
                     "underlyingToPositionMultiplier": None, "lotSize": 100}
        elif sym == "ETHUSD":
            base, p = "ETH", SEED_PRICES["ETH"]
            extra = {"quoteCurrency": "USD", "settlCurrency": "XBt", "positionCurrency": "",
                     "multiplier": 100, "isInverse": False, "isQuanto": True,
                     "underlyingToSettleMultiplier": None, "quoteToSettleMultiplier": None,
                     "underlyingToPositionMultiplier": None, "lotSize": 1}
        else:
            base = sym[:-4]
            p = SEED_PRICES["BTC"] if base == "XBT" else _price(rng, base)
            size = 10.0 ** math.floor(math.log10(10.0 / p))  # base units per contract
            extra = {"quoteCurrency": "USDT", "settlCurrency": "USDt", "positionCurrency": base,
                     "multiplier": max(1, round(size * 1_000_000)), "isInverse": False, "isQuanto": False,
                     "underlyingToSettleMultiplier": None, "quoteToSettleMultiplier": 1000000,
                     "underlyingToPositionMultiplier": round(1 / size) if size < 1 else 1, "lotSize": 1}
            if size >= 1:
                extra["multiplier"] = round(size * 1_000_000)
        v.price[sym] = p
        dp = _dp(p)
        # USD value of one contract per unit of price: inverse 1 USD flat; quanto 100 sat x XBT/USD; linear size
        v.meta[sym] = {"dp": dp, "usd_per_px": 0.0 if sym == "XBTUSD" else 100e-8 * SEED_PRICES["BTC"]
                       if sym == "ETHUSD" else 10.0 ** math.floor(math.log10(10.0 / p))}
        rows.append({
            "symbol": sym, "rootSymbol": base, "state": "Open", "typ": "FFWCSX",
            "listing": "2016-05-13T12:00:00.000Z", "front": "2016-05-13T12:00:00.000Z", "expiry": None,
            "settle": None, "listedSettle": None, "underlying": base, "underlyingSymbol": f"{base}=",
            "reference": "BMEX", "referenceSymbol": f".B{base}", "maxOrderQty": 10000000, "maxPrice": 1000000,
            "tickSize": 10 ** -dp, **extra, "initMargin": 0.01, "maintMargin": 0.0035, "takerFee": 0.00075,
            "makerFee": -0.0001, "fundingBaseSymbol": f".{base}BON8H", "fundingQuoteSymbol": ".USDBON8H",
            "fundingPremiumSymbol": f".{base}USDPI8H", "fundingTimestamp": _iso(_next_funding(T0, 8)),
            "fundingInterval": "2000-01-01T08:00:00.000Z", "fundingRate": 0.0001, "indicativeFundingRate": 8.5e-05,
            "prevClosePrice": round(p * 0.99, dp), "volume24h": 98765400, "turnover24h": 117600000000,
            "homeNotional24h": 1176.0, "foreignNotional24h": 98765400.0, "prevPrice24h": round(p * 0.99, dp),
            "vwap": round(p, dp), "highPrice": round(p * 1.02, dp), "lowPrice": round(p * 0.98, dp),
            "lastPrice": round(p, dp), "lastPriceProtected": round(p, dp), "lastTickDirection": "PlusTick",
            "lastChangePcnt": 0.0109, "bidPrice": round(p * 0.9999, dp), "midPrice": round(p, dp),
            "askPrice": round(p * 1.0001, dp), "impactBidPrice": round(p * 0.9998, dp),
            "impactMidPrice": round(p, dp), "impactAskPrice": round(p * 1.0002, dp), "hasLiquidity": True,
            "openInterest": rng.randint(1000, 400_000_000), "openValue": rng.randint(10**6, 4 * 10**11),
            "fairMethod": "FundingRate", "fairBasisRate": 0.1095, "fairBasis": 1.23, "fairPrice": round(p, dp),
            "markMethod": "FairPrice", "markPrice": round(p, dp), "indicativeSettlePrice": round(p, dp),
            "settledPrice": None, "timestamp": _iso(T0),
        })
    v.rest["instrument_active"] = _dumps(rows)
    return v


def bitmex_instrument(rng: random.Random, v: Venue, n: int) -> Kind:
    clock, zipf = _Clock(rng, 1.0), _Zipf(rng, len(v.symbols))
    rows = orjson.loads(v.rest["instrument_active"])
    partial = {"table": "instrument", "action": "partial", "keys": ["symbol"],
               "types": {"symbol": "symbol", "markPrice": "float", "openInterest": "long"},
               "foreignKeys": {"inverseLeg": "instrument"}, "attributes": {"symbol": "unique"}, "filter": {},
               "data": rows}
    frames, recv = [_dumps(partial)], [T0 + 30]
    for _ in range(max(0, n - 1)):
        sym = v.symbols[zipf.draw()]
        t = clock.tick()
        dp = int(v.meta[sym]["dp"])
        p = _walk(rng, v, sym, 0.0003)
        pattern = rng.choices(("quote", "mark", "oi", "funding", "stats"), weights=(45, 25, 15, 5, 10))[0]
        row: dict[str, object] = {"symbol": sym}
        if pattern == "quote":
            row.update({"lastPrice": round(p, dp), "bidPrice": round(p * 0.9999, dp), "midPrice": round(p, dp),
                        "askPrice": round(p * 1.0001, dp), "lastTickDirection": "PlusTick"})
        elif pattern == "mark":
            row.update({"fairPrice": round(p, dp), "markPrice": round(p, dp), "indicativeSettlePrice": round(p, dp)})
        elif pattern == "oi":
            row.update({"openInterest": rng.randint(1000, 400_000_000), "openValue": rng.randint(10**6, 4 * 10**11)})
        elif pattern == "funding":
            row.update({"fundingRate": round(_funding_rate(rng), 6),
                        "indicativeFundingRate": round(_funding_rate(rng), 6)})
        else:
            row.update({"volume": rng.randint(1, 10**6), "totalVolume": rng.randint(10**9, 10**12),
                        "turnover": rng.randint(10**6, 10**10), "homeNotional24h": round(rng.uniform(1, 1e4), 4)})
        row["timestamp"] = _iso(t)
        frames.append(_dumps({"table": "instrument", "action": "update", "data": [row]}))
        recv.append(clock.recv(t))
    return Kind("bitmex.instrument", "bitmex", tuple(frames), tuple(recv), (("realtime", v.rest["instrument_active"]),),
                f"realtime instrument: one partial of {len(v.symbols)} rows, then one-row updates")


def bitmex_liquidation(rng: random.Random, v: Venue, n: int) -> Kind:
    clock, zipf = _Clock(rng, 40.0), _Zipf(rng, len(v.symbols))
    partial = {"table": "liquidation", "action": "partial", "keys": ["orderID"],
               "types": {"orderID": "guid", "symbol": "symbol", "side": "symbol", "price": "float",
                         "leavesQty": "long"},
               "foreignKeys": {"symbol": "instrument", "side": "side"}, "attributes": {"orderID": "grouped"},
               "filter": {}, "data": []}
    frames, recv = [_dumps(partial)], [T0 + 30]
    for _ in range(max(0, n - 1)):
        t = clock.tick()
        rows = []
        for _ in range(rng.choices((1, 2, 3), weights=(80, 15, 5))[0]):
            sym = v.symbols[zipf.draw()]
            p = _walk(rng, v, sym)
            dp = int(v.meta[sym]["dp"])
            side = rng.choice(("Sell", "Buy"))
            usd = _notional(rng)
            per_px = v.meta[sym]["usd_per_px"]
            qty = max(1, round(usd if sym == "XBTUSD" else usd / (p * per_px)))
            oid = (f"{rng.getrandbits(32):08x}-{rng.getrandbits(16):04x}-{rng.getrandbits(16):04x}-"
                   f"{rng.getrandbits(16):04x}-{rng.getrandbits(48):012x}")
            rows.append({"orderID": oid, "symbol": sym, "side": side,
                         "price": round(p * (0.995 if side == "Sell" else 1.005), dp), "leavesQty": qty})
        frames.append(_dumps({"table": "liquidation", "action": "insert", "data": rows}))
        recv.append(clock.recv(t))
    return Kind("bitmex.liquidation", "bitmex", tuple(frames), tuple(recv),
                (("realtime", v.rest["instrument_active"]),),
                "realtime liquidation: partial, then inserts of 1-3 orders")


# --------------------------------------------------------------------------------------------- corpus


@dataclass
class Corpus:
    """Every kind's frames and every venue's canned REST bodies."""

    kinds: list[Kind]
    venues: dict[str, Venue]

    def kind(self, name: str) -> Kind:
        return next(k for k in self.kinds if k.name == name)


Builder = Callable[[random.Random, Venue, int], Kind]

KIND_BUILDERS: tuple[tuple[str, Builder, float], ...] = (
    # (venue, builder, frame-count factor relative to --frames)
    ("binance", binance_force_order, 1.0),
    ("binance", binance_mark_price, 1.0),
    ("binance", binance_mark_price_arr, 0.01),
    ("bybit", bybit_all_liquidation, 1.0),
    ("bybit", bybit_tickers, 1.0),
    ("okx", okx_funding_rate, 1.0),
    ("okx", okx_open_interest, 1.0),
    ("okx", okx_liquidation_orders, 1.0),
    ("deribit", deribit_perp_ticker, 1.0),
    ("deribit", deribit_option_ticker, 1.0),
    ("bitmex", bitmex_instrument, 1.0),
    ("bitmex", bitmex_liquidation, 1.0),
)
VENUE_BUILDERS: dict[str, Callable[[random.Random, int], Venue]] = {
    "binance": binance_venue, "bybit": bybit_venue, "okx": okx_venue, "deribit": deribit_venue,
    "bitmex": bitmex_venue,
}
KIND_NAMES = (
    "binance.forceOrder", "binance.markPrice", "binance.markPrice@arr", "bybit.allLiquidation", "bybit.tickers",
    "okx.funding-rate", "okx.open-interest", "okx.liquidation-orders", "deribit.ticker.perpetual",
    "deribit.ticker.option", "bitmex.instrument", "bitmex.liquidation",
)


def build(frames_per_kind: int = 20_000, universe: int = UNIVERSE, seed: int = 7,
          only: Sequence[str] | None = None) -> Corpus:
    """Generate the corpus: every kind (or those named in ``only``), ``frames_per_kind`` frames each
    (``!markPrice@arr`` gets 1 % of that, at least 5, since each of its frames carries every symbol)."""
    venues = {name: make(random.Random(f"{seed}:{name}"), universe) for name, make in VENUE_BUILDERS.items()}
    kinds = []
    for venue, builder, factor in KIND_BUILDERS:
        rng = random.Random(f"{seed}:{builder.__name__}")
        n = max(5, int(frames_per_kind * factor))
        kind = builder(rng, venues[venue], n)
        if only is None or kind.name in only:
            kinds.append(kind)
    return Corpus(kinds, venues)
