"""The msgspec floor: one typed Struct per benchmarked kind with just the fields we need, decoders built once.

This is the cheapest way to get the needed values out of a frame in Python: ``msgspec.json.Decoder`` of a
frozen, ``gc=False`` Struct, numeric strings converted to ``float``/``int`` while decoding
(``strict=False``), every other field skipped. No envelope dispatch, no normalization, no events: that is
what our adapter adds on top, and what the "pipeline / floor" ratio is about.
"""

from __future__ import annotations

from typing import Any

import msgspec

S = msgspec.Struct


class _Base(S, frozen=True, gc=False):
    pass


# --- Binance USDⓈ-M
class BnOrder(_Base, frozen=True, gc=False):
    s: str
    S: str
    q: float
    p: float
    ap: float
    X: str
    z: float
    T: int


class BnForceOrderData(_Base, frozen=True, gc=False):
    E: int
    o: BnOrder


class BnForceOrder(_Base, frozen=True, gc=False):
    stream: str
    data: BnForceOrderData


class BnMark(_Base, frozen=True, gc=False):
    E: int
    s: str
    p: float
    i: float
    r: float
    T: int


class BnMarkPrice(_Base, frozen=True, gc=False):
    stream: str
    data: BnMark


class BnMarkPriceArr(_Base, frozen=True, gc=False):
    stream: str
    data: list[BnMark]


# --- Bybit v5
class ByLiq(_Base, frozen=True, gc=False):
    T: int
    s: str
    S: str
    v: float
    p: float


class ByAllLiquidation(_Base, frozen=True, gc=False):
    topic: str
    ts: int
    data: list[ByLiq]


class ByTickerData(_Base, frozen=True, gc=False):
    symbol: str
    lastPrice: float | None = None
    markPrice: float | None = None
    indexPrice: float | None = None
    bid1Price: float | None = None
    ask1Price: float | None = None
    openInterest: float | None = None
    openInterestValue: float | None = None
    turnover24h: float | None = None
    fundingRate: float | None = None
    nextFundingTime: int | None = None
    fundingIntervalHour: int | None = None


class ByTickers(_Base, frozen=True, gc=False):
    topic: str
    type: str
    ts: int
    data: ByTickerData


# --- OKX v5
class OkArg(_Base, frozen=True, gc=False):
    channel: str
    instId: str = ""
    instType: str = ""


class OkFunding(_Base, frozen=True, gc=False):
    instId: str
    fundingRate: float
    nextFundingRate: str
    fundingTime: int
    nextFundingTime: int
    ts: int


class OkFundingRate(_Base, frozen=True, gc=False):
    arg: OkArg
    data: list[OkFunding]


class OkOi(_Base, frozen=True, gc=False):
    instId: str
    oi: float
    oiCcy: float
    oiUsd: float
    ts: int


class OkOpenInterest(_Base, frozen=True, gc=False):
    arg: OkArg
    data: list[OkOi]


class OkLiqDetail(_Base, frozen=True, gc=False):
    side: str
    posSide: str
    bkPx: float
    sz: float
    ts: int


class OkLiqRow(_Base, frozen=True, gc=False):
    instId: str
    details: list[OkLiqDetail]


class OkLiquidationOrders(_Base, frozen=True, gc=False):
    arg: OkArg
    data: list[OkLiqRow]


# --- Deribit v2
class DrStats(_Base, frozen=True, gc=False):
    volume: float | None = None
    volume_usd: float | None = None


class DrGreeks(_Base, frozen=True, gc=False):
    delta: float | None = None
    gamma: float | None = None
    vega: float | None = None
    theta: float | None = None


class DrPerp(_Base, frozen=True, gc=False):
    instrument_name: str
    timestamp: int
    mark_price: float | None = None
    index_price: float | None = None
    last_price: float | None = None
    best_bid_price: float | None = None
    best_ask_price: float | None = None
    open_interest: float | None = None
    funding_8h: float | None = None
    current_funding: float | None = None
    stats: DrStats | None = None


class DrPerpParams(_Base, frozen=True, gc=False):
    channel: str
    data: DrPerp


class DrPerpTicker(_Base, frozen=True, gc=False):
    method: str
    params: DrPerpParams


class DrOption(_Base, frozen=True, gc=False):
    instrument_name: str
    timestamp: int
    mark_price: float | None = None
    mark_iv: float | None = None
    bid_iv: float | None = None
    ask_iv: float | None = None
    underlying_price: float | None = None
    index_price: float | None = None
    open_interest: float | None = None
    greeks: DrGreeks | None = None
    stats: DrStats | None = None


class DrOptionParams(_Base, frozen=True, gc=False):
    channel: str
    data: DrOption


class DrOptionTicker(_Base, frozen=True, gc=False):
    method: str
    params: DrOptionParams


# --- BitMEX
class BmInstrumentRow(_Base, frozen=True, gc=False):
    symbol: str
    lastPrice: float | None = None
    bidPrice: float | None = None
    askPrice: float | None = None
    markPrice: float | None = None
    openInterest: float | None = None
    fundingRate: float | None = None
    indicativeFundingRate: float | None = None
    timestamp: str | None = None


class BmInstrument(_Base, frozen=True, gc=False):
    table: str
    action: str
    data: list[BmInstrumentRow]


class BmLiqRow(_Base, frozen=True, gc=False):
    orderID: str
    symbol: str
    side: str | None = None
    price: float | None = None
    leavesQty: float | None = None


class BmLiquidation(_Base, frozen=True, gc=False):
    table: str
    action: str
    data: list[BmLiqRow]


TYPES: dict[str, type[Any]] = {
    "binance.forceOrder": BnForceOrder,
    "binance.markPrice": BnMarkPrice,
    "binance.markPrice@arr": BnMarkPriceArr,
    "bybit.allLiquidation": ByAllLiquidation,
    "bybit.tickers": ByTickers,
    "okx.funding-rate": OkFundingRate,
    "okx.open-interest": OkOpenInterest,
    "okx.liquidation-orders": OkLiquidationOrders,
    "deribit.ticker.perpetual": DrPerpTicker,
    "deribit.ticker.option": DrOptionTicker,
    "bitmex.instrument": BmInstrument,
    "bitmex.liquidation": BmLiquidation,
}

DECODERS: dict[str, msgspec.json.Decoder[Any]] = {
    name: msgspec.json.Decoder(t, strict=False) for name, t in TYPES.items()
}
