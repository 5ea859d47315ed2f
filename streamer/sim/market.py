"""Simulated books of record: prices, open interest, funding, liquidations; scripted scenarios.

The market is venue-neutral state that every venue module renders in its own wire format. It is
deterministic: the same ``seed``, ``start_ms`` and scenario give the same prices, funding rates,
open interest and liquidations, whatever the wall clock does, because time advances on a fixed
grid (multiples of ``step_ms``; ``advance_to`` replays every grid point up to ``now``).

Units (as the exchanges use them, not normalized):

- prices are in the quote currency (USDT for Binance USDⓈ-M, USD for COIN-M);
- ``open_interest``, liquidation ``qty`` and 24 h ``volume`` are in the venue's quantity unit:
  base coin for linear (UM) contracts, contracts for inverse (CM) ones (``contract_size`` USD each);
- funding rates are fractions per funding interval (0.0001 = 0.01 %);
- times are integer milliseconds since the Unix epoch, UTC.

What the market did is kept for tests to compare with what a client read: ``liquidations``
(every generated order), ``pushed`` (the ones a venue may push: the latest order per symbol in
each 1000 ms window, which is Binance's documented cap for ``<symbol>@forceOrder`` and
``!forceOrder@arr``; see exchanges.md §1.2), ``funding_history``, ``oi_history`` and the live
``state(symbol)``.

History is continuous across the sim start: funding settlements up to and including ``start_ms``
are synthesized (deterministically, on request) and those after it are recorded as they happen;
open interest at 5-minute boundaries before ``start_ms`` is synthesized, and from ``start_ms`` on it
is recorded (a start on a boundary records the starting state there). So a settlement or an
open-interest point at exactly ``start_ms`` is listed once, never twice, on every venue.

The other venues (Bybit, OKX) keep their own books (``Market.bybit``, ``Market.okx``:
``VenueBook``) in their own terms (contracts, sides, sampling rules); their indexes follow
Binance's walks of the same base coin with a basis of their own, so cross-venue numbers are close
but not identical, while everything else draws from each book's own random stream (adding a venue
never changes Binance's numbers).

Scenarios are timelines of effects, each starting ``start_s`` seconds after the sim start:
``Cascade`` (one-sided liquidation burst), ``FundingSpike`` and ``OiSurge``. ``SCENARIOS`` holds the
named ones (``calm``, ``cascade``, ``funding_spike``, ``oi_surge``, ``demo``; the ``cascade`` and
``demo`` ETH cascades liquidate on Binance, Bybit and OKX at once), and ``Market.schedule`` adds an
effect at run time. An effect names its venue (``venue``, default ``binance``).
"""

from __future__ import annotations

import calendar
import math
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "BYBIT_BOOK",
    "CROSS_VENUE_LEGS",
    "DAY_MS",
    "DERIBIT_BOOK",
    "HOUR_MS",
    "OI_HISTORY_STEP_MS",
    "OKX_BOOK",
    "PERPETUAL_DELIVERY_MS",
    "PUSH_WINDOW_MS",
    "SCENARIOS",
    "BookRules",
    "Cascade",
    "Clock",
    "Contract",
    "ContractKind",
    "ContractState",
    "Effect",
    "FundingRecord",
    "FundingSpike",
    "IndexState",
    "Instrument",
    "Liquidation",
    "Market",
    "OiPoint",
    "OiSurge",
    "Product",
    "PushedLiquidation",
    "PushedVenueLiquidation",
    "Scenario",
    "Side",
    "SymbolState",
    "VenueBook",
    "VenueLiquidation",
    "build_bybit_contracts",
    "build_deribit_contracts",
    "build_okx_contracts",
    "bybit_expiry_code",
    "get_scenario",
    "quarterly_expiry_ms",
]

Clock = Callable[[], int]
"""A clock returns integer milliseconds since the Unix epoch."""

Side = Literal["BUY", "SELL"]
Product = Literal["um", "cm"]

SECOND_MS = 1_000
MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
PUSH_WINDOW_MS = 1_000
"""Liquidation push window: Binance pushes only the latest liquidation per symbol per 1000 ms."""
OI_HISTORY_STEP_MS = 5 * MINUTE_MS
"""Open interest is recorded every 5 minutes (the finest ``openInterestHist`` period)."""
PERPETUAL_DELIVERY_MS = 4_133_404_800_000
"""The ``deliveryDate`` Binance gives perpetual contracts (2100-12-25 08:00 UTC)."""
HISTORY_DAYS = 30
"""How far back the REST history endpoints answer (Binance: the latest 30 days)."""


# --------------------------------------------------------------------------------------------
# Instruments and state
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Instrument:
    """Static description of one contract, plus the parameters that drive its simulation.

    ``contract_size`` is 1.0 for linear contracts (quantity is base coin) and the USD face value of
    one contract for inverse ones. ``funding_interval_h`` is 0 for dated futures.
    """

    symbol: str
    product: Product
    pair: str
    base_asset: str
    quote_asset: str
    margin_asset: str
    contract_type: str
    delivery_ms: int
    onboard_ms: int
    contract_size: float
    price_decimals: int
    qty_decimals: int
    funding_interval_h: int
    underlying_sub_type: tuple[str, ...]
    start_price: float
    start_oi: float
    vol_per_sqrt_s: float
    liq_rate_per_s: float
    liq_median_usd: float
    funding_mean: float
    adjusted_funding_cap: float | None = None

    @property
    def perpetual(self) -> bool:
        return self.contract_type == "PERPETUAL"

    @property
    def inverse(self) -> bool:
        return self.product == "cm"

    @property
    def tick(self) -> float:
        return 10.0**-self.price_decimals

    @property
    def step(self) -> float:
        return 10.0**-self.qty_decimals

    def round_price(self, price: float) -> float:
        return round(price, self.price_decimals)

    def round_qty(self, qty: float) -> float:
        return round(qty, self.qty_decimals)

    def notional_usd(self, qty: float, price: float) -> float:
        """USD value of ``qty`` venue units at ``price`` (linear: qty × price; inverse: qty × face)."""
        return qty * self.contract_size if self.inverse else qty * price

    def base_qty(self, qty: float, price: float) -> float:
        """Base-coin amount of ``qty`` venue units at ``price``."""
        return qty * self.contract_size / price if self.inverse else qty


@dataclass(slots=True)
class SymbolState:
    """Live state of one contract. Read it; only the market writes it.

    ``volume_24h`` is in venue quantity units (UM base coin, CM contracts); ``quote_volume_24h``
    is UM quote currency, CM base coin (the unit Binance's ``q`` / ``baseVolume`` use).
    """

    index_price: float
    mark_price: float
    last_price: float
    last_qty: float
    bid_price: float
    bid_qty: float
    ask_price: float
    ask_qty: float
    funding_rate: float
    next_funding_ms: int
    open_interest: float
    volume_24h: float
    quote_volume_24h: float
    open_24h: float
    high_24h: float
    low_24h: float
    first_trade_id: int
    last_trade_id: int
    book_update_id: int
    updated_ms: int
    premium: float = 0.0
    oi_target: float = 0.0
    spike_saved_rate: float | None = None
    walk_index: float = 0.0
    """Delivery contracts only: the walk their futures price follows (``index_price`` is the pair's index)."""

    @property
    def trade_count_24h(self) -> int:
        return self.last_trade_id - self.first_trade_id + 1


@dataclass(frozen=True, slots=True)
class Liquidation:
    """One liquidation order as the exchange executed it.

    ``side`` is the ORDER side (SELL closes a long). ``qty`` is the filled quantity in venue units,
    ``avg_price`` the average fill price (rounded to the tick, as sent), ``price`` the order's limit
    price. ``value_usd`` = ``Instrument.notional_usd(qty, avg_price)``.
    """

    seq: int
    symbol: str
    product: Product
    side: Side
    qty: float
    orig_qty: float
    price: float
    avg_price: float
    trade_ms: int
    value_usd: float
    scripted: bool = False


@dataclass(frozen=True, slots=True)
class PushedLiquidation:
    """A liquidation selected for push (latest of its symbol in its 1000 ms window) and when."""

    liquidation: Liquidation
    push_ms: int


@dataclass(frozen=True, slots=True)
class FundingRecord:
    """One funding settlement: the rate charged at ``funding_ms`` and the mark price then."""

    symbol: str
    funding_ms: int
    rate: float
    mark_price: float


@dataclass(frozen=True, slots=True)
class OiPoint:
    """Open interest (venue units) and mark price at a 5-minute boundary ``ts``."""

    ts: int
    open_interest: float
    mark_price: float


# --------------------------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cascade:
    """A one-sided liquidation burst on ``symbol``.

    From ``start_s`` for ``duration_s`` seconds, ``orders_per_s`` liquidation orders per second
    (at least one in every 1000 ms push window) of side ``side`` (``SELL``: longs liquidated),
    log-normal sizes around ``median_usd``; the index moves by ``price_move_pct`` over the burst.

    ``venue`` names whose symbol ``symbol`` is (``binance``, ``bybit``, ``okx``). ``legs`` adds
    other venues liquidating the same underlying at the same time: ``(venue, weight)`` pairs, each
    planned like this leg (same side, rate and timing rules) on that venue's linear perpetual of the
    same base and quote (Bybit ``ETHUSDT``, OKX ``ETH-USDT-SWAP``), with sizes around
    ``median_usd × weight``. So a weight is a leg's notional relative to this one: legs
    ``(("bybit", 0.6), ("okx", 0.4))`` on a Binance cascade give Binance 50 %, Bybit 30 % and OKX
    20 % of the generated total (what each venue then pushes follows its own feed's rules).
    """

    symbol: str = "ETHUSDT"
    start_s: float = 5.0
    duration_s: float = 10.0
    side: Side = "SELL"
    orders_per_s: float = 3.0
    median_usd: float = 450_000.0
    sigma: float = 0.45
    price_move_pct: float = -4.0
    venue: str = "binance"
    legs: tuple[tuple[str, float], ...] = ()

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s


@dataclass(frozen=True, slots=True)
class FundingSpike:
    """``symbol``'s funding rate jumps to ``rate`` (per interval) for ``duration_s``, then returns.

    ``venue`` names whose symbol ``symbol`` is (``binance``, ``bybit``, ``okx``)."""

    symbol: str = "SOLUSDT"
    start_s: float = 5.0
    duration_s: float = 15.0
    rate: float = 0.0025
    venue: str = "binance"

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s


@dataclass(frozen=True, slots=True)
class OiSurge:
    """``symbol``'s open interest rises by ``rise_pct`` percent, linearly over ``duration_s``.

    ``venue`` names whose symbol ``symbol`` is (``binance``, ``bybit``, ``okx``)."""

    symbol: str = "BTCUSDT"
    start_s: float = 5.0
    duration_s: float = 60.0
    rise_pct: float = 20.0
    venue: str = "binance"

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s


Effect = Cascade | FundingSpike | OiSurge


@dataclass(frozen=True, slots=True)
class Scenario:
    """A named timeline of effects (offsets in seconds from the sim start)."""

    name: str
    effects: tuple[Effect, ...] = ()


CROSS_VENUE_LEGS: tuple[tuple[str, float], ...] = (("bybit", 0.6), ("okx", 0.4))
"""The scripted ETH cascade's legs on Bybit and OKX: with the Binance leg, shares 50 / 30 / 20 %."""

SCENARIOS: dict[str, Scenario] = {
    "calm": Scenario("calm"),
    "cascade": Scenario("cascade", (Cascade(symbol="ETHUSDT", start_s=5.0, duration_s=10.0, legs=CROSS_VENUE_LEGS),)),
    "funding_spike": Scenario("funding_spike", (FundingSpike(symbol="SOLUSDT", start_s=5.0, duration_s=15.0),)),
    "oi_surge": Scenario("oi_surge", (OiSurge(symbol="BTCUSDT", start_s=5.0, duration_s=60.0),)),
    # A 60-second run: OI climbs 3-33 s, an ETH cascade 8-18 s on Binance, Bybit and OKX at once,
    # a funding spike 20-35 s; calm after 35 s.
    "demo": Scenario(
        "demo",
        (
            OiSurge(symbol="BTCUSDT", start_s=3.0, duration_s=30.0, rise_pct=20.0),
            Cascade(symbol="ETHUSDT", start_s=8.0, duration_s=10.0, legs=CROSS_VENUE_LEGS),
            FundingSpike(symbol="SOLUSDT", start_s=20.0, duration_s=15.0, rate=0.0025),
        ),
    ),
}


def get_scenario(name: str | Scenario | None) -> Scenario:
    """Look a scenario up by name (``None`` is ``calm``); raises ``KeyError`` naming the choices."""
    if isinstance(name, Scenario):
        return name
    if name is None:
        return SCENARIOS["calm"]
    try:
        return SCENARIOS[name]
    except KeyError:
        raise KeyError(f"unknown scenario {name!r}; choose one of {sorted(SCENARIOS)}") from None


# --------------------------------------------------------------------------------------------
# Instrument universe
# --------------------------------------------------------------------------------------------


def quarterly_expiry_ms(now_ms: int) -> int:
    """The next quarterly expiry after ``now_ms``: last Friday of Mar/Jun/Sep/Dec, 08:00 UTC."""
    year, month = _ym(now_ms)
    for _ in range(6):
        quarter_end = ((month - 1) // 3 + 1) * 3
        expiry = _last_friday_0800(year, quarter_end)
        if expiry > now_ms + DAY_MS:
            return expiry
        month = quarter_end + 1
        if month > 12:
            month, year = 1, year + 1
    raise AssertionError("unreachable")  # pragma: no cover


def _ym(ms: int) -> tuple[int, int]:
    t = time.gmtime(ms / 1000)
    return t.tm_year, t.tm_mon


def _last_friday_0800(year: int, month: int) -> int:
    last_day = calendar.monthrange(year, month)[1]
    weekday = calendar.weekday(year, month, last_day)  # Monday = 0, Friday = 4
    day = last_day - ((weekday - 4) % 7)
    return calendar.timegm((year, month, day, 8, 0, 0, 0, 0, 0)) * 1000


def _decimals_for(price: float) -> int:
    digits = math.floor(math.log10(price)) + 1
    return max(1, min(7, 6 - digits))


_MAJORS: tuple[tuple[str, float, int, float, float, float, tuple[str, ...]], ...] = (
    # base, price, qty decimals, start OI (base coin), vol per sqrt(s), liquidations per s, sub type
    ("BTC", 95_000.0, 3, 82_000.0, 0.00012, 0.25, ("PoW",)),
    ("ETH", 3_400.0, 3, 2_100_000.0, 0.00016, 0.20, ("Layer-1",)),
    ("SOL", 180.0, 2, 8_500_000.0, 0.00020, 0.10, ("Layer-1",)),
    ("XRP", 2.30, 1, 310_000_000.0, 0.00020, 0.06, ("Payment",)),
    ("DOGE", 0.32, 0, 6_200_000_000.0, 0.00024, 0.06, ("Meme",)),
)

_ALTS: tuple[str, ...] = (
    "BNB", "ADA", "AVAX", "LINK", "DOT", "LTC", "BCH", "TRX", "NEAR", "ATOM",
    "UNI", "APT", "ARB", "OP", "FIL", "INJ", "SUI", "TIA", "WIF", "1000PEPE",
)  # fmt: skip

FOUR_HOUR_SYMBOL = "WIFUSDT"
"""The UM perpetual on a 4 h funding interval (listed by ``fundingInfo``)."""
ADJUSTED_CAP_SYMBOL = "1000PEPEUSDT"
"""A UM perpetual on the default 8 h interval but with an adjusted cap (also listed)."""


def build_instruments(seed: int, start_ms: int) -> list[Instrument]:
    """The deterministic universe: UM perpetuals, one UM dated future, CM perpetuals and a CM future."""
    rng = random.Random(f"{seed}:instruments")
    expiry = quarterly_expiry_ms(start_ms)
    suffix = time.strftime("%y%m%d", time.gmtime(expiry / 1000))
    out: list[Instrument] = []
    onboard = 1_569_398_400_000  # 2019-09-25, BTCUSDT's onboard date
    for base, price, qd, oi, vol, liq, sub in _MAJORS:
        out.append(
            Instrument(
                symbol=f"{base}USDT", product="um", pair=f"{base}USDT", base_asset=base,
                quote_asset="USDT", margin_asset="USDT", contract_type="PERPETUAL",
                delivery_ms=PERPETUAL_DELIVERY_MS, onboard_ms=onboard, contract_size=1.0,
                price_decimals=_decimals_for(price), qty_decimals=qd, funding_interval_h=8,
                underlying_sub_type=sub, start_price=price, start_oi=oi, vol_per_sqrt_s=vol,
                liq_rate_per_s=liq, liq_median_usd=15_000.0 if base in ("BTC", "ETH") else 5_000.0,
                funding_mean=0.0001,
            )
        )  # fmt: skip
        onboard += 7 * DAY_MS
    for base in _ALTS:
        price = math.exp(rng.uniform(math.log(0.004), math.log(60.0)))
        if base == "BNB":
            price = 650.0
        digits = math.floor(math.log10(price)) + 1
        symbol = f"{base}USDT"
        interval = 4 if symbol == FOUR_HOUR_SYMBOL else 8
        oi_usd = math.exp(rng.uniform(math.log(20e6), math.log(400e6)))
        out.append(
            Instrument(
                symbol=symbol, product="um", pair=symbol, base_asset=base, quote_asset="USDT",
                margin_asset="USDT", contract_type="PERPETUAL", delivery_ms=PERPETUAL_DELIVERY_MS,
                onboard_ms=onboard, contract_size=1.0, price_decimals=_decimals_for(price),
                qty_decimals=max(0, min(3, digits - 1)), funding_interval_h=interval,
                underlying_sub_type=("Meme",) if base in ("WIF", "1000PEPE") else ("Layer-1",),
                start_price=price, start_oi=oi_usd / price,
                vol_per_sqrt_s=rng.uniform(0.0002, 0.0004), liq_rate_per_s=rng.uniform(0.01, 0.04),
                liq_median_usd=3_000.0, funding_mean=0.0001 * interval / 8,
                adjusted_funding_cap=0.02 if symbol == FOUR_HOUR_SYMBOL
                else 0.03 if symbol == ADJUSTED_CAP_SYMBOL else None,
            )
        )  # fmt: skip
        onboard += 11 * DAY_MS
    btc = out[0]
    out.append(
        Instrument(
            symbol=f"BTCUSDT_{suffix}", product="um", pair="BTCUSDT", base_asset="BTC",
            quote_asset="USDT", margin_asset="USDT", contract_type="CURRENT_QUARTER",
            delivery_ms=expiry, onboard_ms=expiry - 180 * DAY_MS, contract_size=1.0,
            price_decimals=1, qty_decimals=3, funding_interval_h=0, underlying_sub_type=("PoW",),
            start_price=btc.start_price * 1.012, start_oi=4_100.0, vol_per_sqrt_s=btc.vol_per_sqrt_s,
            liq_rate_per_s=0.01, liq_median_usd=8_000.0, funding_mean=0.0,
        )
    )  # fmt: skip
    for base, price, size, oi in (("BTC", 95_000.0, 100.0, 1_150_000.0), ("ETH", 3_400.0, 10.0, 5_200_000.0)):
        out.append(
            Instrument(
                symbol=f"{base}USD_PERP", product="cm", pair=f"{base}USD", base_asset=base,
                quote_asset="USD", margin_asset=base, contract_type="PERPETUAL",
                delivery_ms=PERPETUAL_DELIVERY_MS, onboard_ms=1_597_042_800_000,
                contract_size=size, price_decimals=1 if base == "BTC" else 2, qty_decimals=0,
                funding_interval_h=8, underlying_sub_type=(), start_price=price * 1.0002,
                start_oi=oi, vol_per_sqrt_s=0.00013, liq_rate_per_s=0.05 if base == "BTC" else 0.03,
                liq_median_usd=6_000.0, funding_mean=0.0001,
            )
        )  # fmt: skip
    out.append(
        Instrument(
            symbol=f"BTCUSD_{suffix}", product="cm", pair="BTCUSD", base_asset="BTC",
            quote_asset="USD", margin_asset="BTC", contract_type="CURRENT_QUARTER",
            delivery_ms=expiry, onboard_ms=expiry - 180 * DAY_MS, contract_size=100.0,
            price_decimals=1, qty_decimals=0, funding_interval_h=0, underlying_sub_type=(),
            start_price=95_000.0 * 1.015, start_oi=310_000.0, vol_per_sqrt_s=0.00013,
            liq_rate_per_s=0.008, liq_median_usd=6_000.0, funding_mean=0.0,
        )
    )  # fmt: skip
    return out


# --------------------------------------------------------------------------------------------
# Market
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Burst:
    until_ms: int
    multiplier: float
    side: Side


@dataclass(slots=True)
class _ScheduledOrder:
    trade_ms: int
    symbol: str
    side: Side
    usd: float


@dataclass(slots=True)
class _Active:
    effect: Effect
    start_ms: int
    end_ms: int
    started: bool = False
    ended: bool = False
    orders: list[_ScheduledOrder] = field(default_factory=list)


class Market:
    """The book of record all venues render. Advance it with ``advance_to(now_ms)``.

    Args:
        seed: makes everything reproducible.
        start_ms: sim start, ms since epoch (default: the wall clock now). Scenario offsets count
            from here.
        scenario: a ``Scenario``, a name from ``SCENARIOS``, or ``None`` (calm).
        step_ms: the simulation grid. Every state change happens on a multiple of ``step_ms``.
    """

    def __init__(
        self,
        seed: int = 0,
        start_ms: int | None = None,
        scenario: Scenario | str | None = None,
        *,
        step_ms: int = 100,
    ) -> None:
        if step_ms <= 0:
            raise ValueError(f"step_ms must be positive, got {step_ms}")
        self.seed = seed
        self.start_ms = int(time.time() * 1000) if start_ms is None else start_ms
        self.step_ms = step_ms
        self.scenario = get_scenario(scenario)
        self._rng = random.Random(seed)
        # the grid is aligned to multiples of step_ms, so events fall on whole seconds like Binance's
        self._t = self.start_ms - self.start_ms % step_ms
        self.instruments: dict[str, Instrument] = {i.symbol: i for i in build_instruments(seed, self.start_ms)}
        self._states: dict[str, SymbolState] = {}
        self._phases: dict[str, tuple[float, float, float, float]] = {}
        self._bursts: dict[str, _Burst] = {}
        self.liquidations: list[Liquidation] = []
        """Every liquidation order generated, pushed or not, in trade-time order."""
        self.pushed: list[PushedLiquidation] = []
        """The liquidations a venue pushes: the latest per symbol per 1000 ms window."""
        self.funding_history: dict[str, list[FundingRecord]] = {s: [] for s in self.instruments}
        """Settlements that happened after the sim start (those up to it are synthesized)."""
        self.oi_history: dict[str, list[OiPoint]] = {s: [] for s in self.instruments}
        """5-minute open interest snapshots from the sim start on (earlier ones are synthesized)."""
        self._window_buffer: dict[int, dict[str, Liquidation]] = {}
        self._effects: list[_Active] = []
        self._effect_seq = 0
        for inst in self.instruments.values():
            st = self._states[inst.symbol] = self._initial_state(inst)
            self.oi_history[inst.symbol].extend(_start_oi_points(self.start_ms, st.open_interest, st.mark_price))
        # A delivery contract is priced against its pair's index, the one its perpetual uses
        # (Binance premiumIndex: same ``indexPrice`` for BTCUSD_PERP and BTCUSD_261225); its own walk
        # is its futures price, so the basis (contango) is real and moves.
        self._perp_of: dict[str, str] = {
            i.symbol: p.symbol for i in self.instruments.values() if not i.perpetual
            for p in self.instruments.values() if p.perpetual and p.product == i.product and p.pair == i.pair
        }
        self._sync_delivery_index()
        self.bybit = VenueBook(self, build_bybit_contracts(self.start_ms), BYBIT_BOOK)
        """Bybit v5 contracts (linear, inverse, option) and their records."""
        self.okx = VenueBook(self, build_okx_contracts(self.start_ms), OKX_BOOK)
        """OKX v5 contracts (SWAP, FUTURES, OPTION) and their records."""
        self.deribit = VenueBook(self, build_deribit_contracts(self.start_ms), DERIBIT_BOOK)
        """Deribit v2 contracts (inverse perpetuals and future, BTC options) and their records."""
        self.books: dict[str, VenueBook] = {"bybit": self.bybit, "okx": self.okx, "deribit": self.deribit}
        self.bitmex = BitmexBook(self, build_bitmex_contracts(self.start_ms), BITMEX_BOOK)
        """BitMEX contracts (XBTUSD, XBTUSDT, quanto ETHUSD, a quarterly XBT future) and their records."""
        self.books["bitmex"] = self.bitmex
        for effect in self.scenario.effects:
            self.schedule(effect)

    # -- public reads -----------------------------------------------------------------------

    @property
    def now_ms(self) -> int:
        """The market's own time: the last grid point processed."""
        return self._t

    @property
    def elapsed_s(self) -> float:
        return (self._t - self.start_ms) / 1000.0

    def book(self, venue: str) -> VenueBook:
        """The book of a venue other than Binance (``bybit``, ``okx``); ``KeyError`` names the choices."""
        try:
            return self.books[venue]
        except KeyError:
            raise KeyError(f"unknown venue {venue!r}; choose binance or one of {sorted(self.books)}") from None

    def symbols(self, product: Product | None = None) -> list[str]:
        return [s for s, i in self.instruments.items() if product is None or i.product == product]

    def pairs(self, product: Product) -> list[str]:
        return sorted({i.pair for i in self.instruments.values() if i.product == product})

    def state(self, symbol: str) -> SymbolState:
        """Live state of ``symbol`` (raises ``KeyError`` for an unknown one)."""
        return self._states[symbol]

    def total_liquidation_usd(
        self,
        symbol: str | None = None,
        *,
        pushed_only: bool = True,
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> float:
        """Sum of ``value_usd`` over pushed (default) or all liquidations, by trade time."""
        rows: Iterable[Liquidation] = (p.liquidation for p in self.pushed) if pushed_only else self.liquidations
        return sum(
            liq.value_usd
            for liq in rows
            if (symbol is None or liq.symbol == symbol)
            and (start_ms is None or liq.trade_ms >= start_ms)
            and (end_ms is None or liq.trade_ms < end_ms)
        )

    def effects(self) -> list[tuple[Effect, int, int]]:
        """The scheduled effects with their absolute start and end times (ms)."""
        return [(a.effect, a.start_ms, a.end_ms) for a in self._effects]

    # -- scenario timeline ------------------------------------------------------------------

    def schedule(self, effect: Effect) -> None:
        """Add an effect; its ``start_s`` counts from the sim start (not from now).

        Raises ``KeyError`` for an unknown venue or symbol (also a cascade leg's venue).
        """
        if effect.venue == "binance":
            if effect.symbol not in self.instruments:
                raise KeyError(f"unknown symbol {effect.symbol!r} in {effect!r}")
            inst = self.instruments[effect.symbol]
            base, quote = inst.base_asset, inst.quote_asset
        else:
            book = self.book(effect.venue)
            if effect.symbol not in book.contracts:
                raise KeyError(f"unknown {effect.venue} symbol {effect.symbol!r} in {effect!r}")
            contract = book.contracts[effect.symbol]
            base, quote = contract.base, contract.quote
        start = self.start_ms + int(effect.start_s * 1000)
        end = self.start_ms + int(effect.end_s * 1000)
        active = _Active(effect=effect, start_ms=start, end_ms=end)
        if isinstance(effect, Cascade):
            legs: list[tuple[VenueBook, str, float]] = []
            for venue, weight in effect.legs:
                leg_book = self.book(venue)
                legs.append((leg_book, leg_book.linear_perpetual(base, quote), weight))
            if effect.venue == "binance":
                active.orders = self._plan_cascade(effect, start, end)
            else:
                legs.insert(0, (self.book(effect.venue), effect.symbol, 1.0))
            for leg_book, symbol, weight in legs:
                rng = random.Random(f"{self.seed}:cascade:{self._effect_seq}:{leg_book.venue}:{symbol}")
                leg_book.add_orders(_plan_orders(rng, effect, symbol, start, end, effect.median_usd * weight))
        self._effects.append(active)
        self._effect_seq += 1

    def _plan_cascade(self, c: Cascade, start: int, end: int) -> list[_ScheduledOrder]:
        rng = random.Random(f"{self.seed}:cascade:{self._effect_seq}:{c.symbol}")
        return _plan_orders(rng, c, c.symbol, start, end, c.median_usd)

    # -- time -------------------------------------------------------------------------------

    def advance_to(self, now_ms: int) -> None:
        """Process every grid point up to and including ``now_ms`` (a no-op if in the past)."""
        while self._t + self.step_ms <= now_ms:
            self._step(self._t + self.step_ms)

    def step(self) -> int:
        """Process the next grid point only; returns the new ``now_ms``."""
        self._step(self._t + self.step_ms)
        return self._t

    def _step(self, t: int) -> None:
        prev = self._t
        dt = (t - prev) / 1000.0
        self._apply_effects(prev, t)
        for inst in self.instruments.values():
            self._walk(inst, self._states[inst.symbol], prev, t, dt)
        self._sync_delivery_index()
        first_new = len(self.liquidations)
        self._generate_liquidations(prev, t, dt)
        self._scripted_liquidations(prev, t)
        if len(self.liquidations) - first_new > 1:
            # every new order trades in (prev, t], after all earlier ones: sorting the tail is enough
            self.liquidations[first_new:] = sorted(self.liquidations[first_new:], key=lambda x: (x.trade_ms, x.seq))
        for inst in self.instruments.values():
            st = self._states[inst.symbol]
            if inst.perpetual and st.next_funding_ms <= t:
                self._settle_funding(inst, st)
            boundary = t - t % OI_HISTORY_STEP_MS
            if prev < boundary <= t and boundary > self.start_ms:
                self.oi_history[inst.symbol].append(OiPoint(boundary, st.open_interest, st.mark_price))
            st.updated_ms = t
        self._t = t
        self._finalize_windows(t)
        # the other venues follow Binance's walks and draw from their own random streams
        for book in self.books.values():
            book.step(prev, t, dt)

    # -- internals: state evolution ---------------------------------------------------------

    def _initial_state(self, inst: Instrument) -> SymbolState:
        rng = random.Random(f"{self.seed}:init:{inst.symbol}")
        tau = 2 * math.pi
        self._phases[inst.symbol] = (rng.uniform(0, tau), rng.uniform(0, tau), rng.uniform(0, tau), rng.uniform(0, tau))
        price = inst.start_price
        index = price
        mark = index * (1 + rng.gauss(0, 0.0002))
        change = rng.gauss(0, 0.03)
        open_24h = price / (1 + change)
        qty_per_day = inst.start_oi * rng.uniform(1.2, 3.0)
        quote = (
            qty_per_day * inst.contract_size / price if inst.inverse else qty_per_day * price
        )  # CM: base coin; UM: quote
        trades = int(qty_per_day / max(inst.step, 1e-9) / rng.uniform(50, 400)) + 1000
        first_id = rng.randrange(10_000_000, 900_000_000)
        interval_ms = inst.funding_interval_h * HOUR_MS
        next_funding = 0
        if inst.perpetual:
            next_funding = (self.start_ms // interval_ms + 1) * interval_ms
        funding = inst.funding_mean + rng.gauss(0, 0.00003) if inst.perpetual else 0.0
        bid, ask = self._book(inst, price)
        return SymbolState(
            index_price=index,
            mark_price=mark,
            last_price=price,
            last_qty=inst.step * rng.randint(1, 50),
            bid_price=bid,
            bid_qty=inst.step * rng.randint(1, 500),
            ask_price=ask,
            ask_qty=inst.step * rng.randint(1, 500),
            funding_rate=funding,
            next_funding_ms=next_funding,
            open_interest=inst.round_qty(inst.start_oi),
            volume_24h=qty_per_day,
            quote_volume_24h=quote,
            open_24h=open_24h,
            high_24h=max(price, open_24h) * (1 + abs(rng.gauss(0, 0.01))),
            low_24h=min(price, open_24h) * (1 - abs(rng.gauss(0, 0.01))),
            first_trade_id=first_id,
            last_trade_id=first_id + trades,
            book_update_id=rng.randrange(1_000_000_000, 9_000_000_000),
            updated_ms=self.start_ms,
            premium=(mark / index) - 1,
            oi_target=inst.start_oi,
        )

    @staticmethod
    def _book(inst: Instrument, last: float) -> tuple[float, float]:
        half = max(inst.tick, last * 0.00001)
        bid = inst.round_price(last - half)
        ask = inst.round_price(last + half)
        if ask <= bid:
            ask = inst.round_price(bid + inst.tick)
        return bid, ask

    def _sync_delivery_index(self) -> None:
        """Delivery contracts: ``index_price`` is the perpetual's index, the mark keeps its own walk."""
        for symbol, perp in self._perp_of.items():
            st = self._states[symbol]
            st.walk_index = st.walk_index or st.index_price
            st.index_price = self._states[perp].index_price

    def _walk(self, inst: Instrument, st: SymbolState, prev: int, t: int, dt: float) -> None:
        rng = self._rng
        sq = math.sqrt(dt)
        drift = self._price_drift(inst.symbol, prev, t)
        if st.walk_index:  # a delivery contract: its futures price walks, its index is the perpetual's
            st.walk_index *= math.exp(inst.vol_per_sqrt_s * sq * rng.gauss(0, 1) + drift)
            walked = st.walk_index
        else:
            st.index_price *= math.exp(inst.vol_per_sqrt_s * sq * rng.gauss(0, 1) + drift)
            walked = st.index_price
        st.premium += -0.05 * st.premium * dt + 0.00002 * sq * rng.gauss(0, 1)
        st.mark_price = walked * (1 + st.premium)
        last = st.mark_price * (1 + rng.gauss(0, 0.00003))
        st.last_price = max(inst.tick, inst.round_price(last))
        st.bid_price, st.ask_price = self._book(inst, st.last_price)
        st.bid_qty = inst.step * rng.randint(1, 800)
        st.ask_qty = inst.step * rng.randint(1, 800)
        st.book_update_id += rng.randint(1, 40)
        st.high_24h = max(st.high_24h, st.last_price)
        st.low_24h = min(st.low_24h, st.last_price)
        # rolling 24 h volume: decay plus this step's trading
        decay = dt * 1000 / DAY_MS
        per_step = st.volume_24h * decay * rng.uniform(0.5, 1.5)
        st.volume_24h = st.volume_24h * (1 - decay) + per_step
        traded_quote = per_step * inst.contract_size / st.last_price if inst.inverse else per_step * st.last_price
        st.quote_volume_24h = st.quote_volume_24h * (1 - decay) + traded_quote
        n_trades = rng.randint(0, 5)
        if n_trades:
            st.last_trade_id += n_trades
            st.first_trade_id += rng.randint(0, n_trades)
            st.last_qty = inst.step * rng.randint(1, 200)
        # funding: mean-reverting, small, unless a spike overrides it
        if inst.perpetual and st.spike_saved_rate is None:
            st.funding_rate += (inst.funding_mean - st.funding_rate) * 0.01 * dt
            st.funding_rate += 0.000002 * sq * rng.gauss(0, 1)
            cap = 0.00075 * max(inst.funding_interval_h, 1) / 8
            st.funding_rate = min(cap, max(-cap, st.funding_rate))
        # open interest: noisy, reverting to its (scenario-driven) target
        st.oi_target = self._oi_target(inst, st, t)
        noise = 0.0002 * sq * rng.gauss(0, 1)
        oi = st.open_interest * math.exp(noise) + (st.oi_target - st.open_interest) * min(1.0, dt)
        st.open_interest = max(inst.step, inst.round_qty(oi))

    def _price_drift(self, symbol: str, prev: int, t: int) -> float:
        drift = 0.0
        for a in self._effects:
            e = a.effect
            if isinstance(e, Cascade) and e.venue == "binance" and e.symbol == symbol:
                overlap = min(t, a.end_ms) - max(prev, a.start_ms)
                if overlap > 0:
                    drift += math.log(1 + e.price_move_pct / 100) * overlap / (a.end_ms - a.start_ms)
        return drift

    def _oi_target(self, inst: Instrument, st: SymbolState, t: int) -> float:
        mult = 1.0
        for a in self._effects:
            e = a.effect
            if isinstance(e, OiSurge) and e.venue == "binance" and e.symbol == inst.symbol and t >= a.start_ms:
                frac = min(1.0, (t - a.start_ms) / max(1, a.end_ms - a.start_ms))
                mult *= 1 + e.rise_pct / 100 * frac
        return inst.start_oi * mult

    def _apply_effects(self, prev: int, t: int) -> None:
        for a in self._effects:
            e = a.effect
            if not isinstance(e, FundingSpike) or e.venue != "binance":
                continue
            st = self._states[e.symbol]
            if not a.started and t >= a.start_ms:
                a.started = True
                st.spike_saved_rate = st.funding_rate
                st.funding_rate = e.rate
            if a.started and not a.ended and t >= a.end_ms:
                a.ended = True
                if st.spike_saved_rate is not None:
                    st.funding_rate = st.spike_saved_rate
                st.spike_saved_rate = None

    def _settle_funding(self, inst: Instrument, st: SymbolState) -> None:
        # the charged rate is published with 8 decimals, as Binance does
        rec = FundingRecord(inst.symbol, st.next_funding_ms, round(st.funding_rate, 8), st.mark_price)
        self.funding_history[inst.symbol].append(rec)
        st.next_funding_ms += inst.funding_interval_h * HOUR_MS

    # -- internals: liquidations --------------------------------------------------------------

    def _generate_liquidations(self, prev: int, t: int, dt: float) -> None:
        rng = self._rng
        for inst in self.instruments.values():
            burst = self._bursts.get(inst.symbol)
            if burst is not None and burst.until_ms <= prev:
                del self._bursts[inst.symbol]
                burst = None
            if burst is None and rng.random() < dt / 300.0:
                burst = _Burst(
                    until_ms=t + rng.randint(5_000, 15_000),
                    multiplier=rng.uniform(5.0, 12.0),
                    side="SELL" if rng.random() < 0.5 else "BUY",
                )
                self._bursts[inst.symbol] = burst
            rate = inst.liq_rate_per_s * (burst.multiplier if burst else 1.0)
            for _ in range(_poisson(rng, rate * dt)):
                if burst is not None:
                    side: Side = burst.side if rng.random() < 0.85 else _other(burst.side)
                else:
                    side = "SELL" if rng.random() < 0.5 else "BUY"
                usd = inst.liq_median_usd * math.exp(rng.gauss(0.0, 1.2))
                ts = rng.randrange(prev + 1, t + 1)
                self._emit_liquidation(inst, side, usd, ts, scripted=False)

    def _scripted_liquidations(self, prev: int, t: int) -> None:
        for a in self._effects:
            if not isinstance(a.effect, Cascade):
                continue
            for order in a.orders:
                if prev < order.trade_ms <= t:
                    inst = self.instruments[order.symbol]
                    self._emit_liquidation(inst, order.side, order.usd, order.trade_ms, scripted=True)

    def _emit_liquidation(self, inst: Instrument, side: Side, usd: float, ts: int, *, scripted: bool) -> None:
        st = self._states[inst.symbol]
        rng = self._rng
        # fills slightly worse than mark: a SELL (long closed) fills below it
        slip = abs(rng.gauss(0, 0.0006))
        avg = inst.round_price(st.mark_price * (1 - slip if side == "SELL" else 1 + slip))
        avg = max(inst.tick, avg)
        # the order's limit price (bankruptcy price) is further away than the average fill
        away = rng.uniform(0.0, 0.006)
        price = max(inst.tick, inst.round_price(avg * (1 - away if side == "SELL" else 1 + away)))
        if inst.inverse:
            qty = float(max(1, round(usd / inst.contract_size)))
        else:
            qty = max(inst.step, inst.round_qty(usd / avg))
        liq = Liquidation(
            seq=len(self.liquidations),
            symbol=inst.symbol,
            product=inst.product,
            side=side,
            qty=qty,
            orig_qty=qty,
            price=price,
            avg_price=avg,
            trade_ms=ts,
            value_usd=inst.notional_usd(qty, avg),
            scripted=scripted,
        )
        self.liquidations.append(liq)
        st.open_interest = max(inst.step, inst.round_qty(st.open_interest - qty))
        window = ts - ts % PUSH_WINDOW_MS
        slot = self._window_buffer.setdefault(window, {})
        held = slot.get(inst.symbol)
        if held is None or (liq.trade_ms, liq.seq) >= (held.trade_ms, held.seq):
            slot[inst.symbol] = liq

    def _finalize_windows(self, t: int) -> None:
        for window in sorted(w for w in self._window_buffer if w + PUSH_WINDOW_MS <= t):
            latest = self._window_buffer.pop(window)
            for liq in sorted(latest.values(), key=lambda x: (x.trade_ms, x.seq)):
                self.pushed.append(PushedLiquidation(liq, t))

    # -- history (REST) -----------------------------------------------------------------------

    def funding_records(self, symbol: str, start_ms: int, end_ms: int) -> list[FundingRecord]:
        """Settlements of ``symbol`` with ``start_ms <= funding_ms <= end_ms``, ascending.

        Those up to and including the sim start (a start on a settlement is in the past as soon as
        the sim runs) are synthesized deterministically; later ones are recorded as they happen, so
        each settlement is listed once. Dated futures have none.
        """
        inst = self.instruments[symbol]
        if not inst.perpetual:
            return []
        interval = inst.funding_interval_h * HOUR_MS
        lo = max(start_ms, self._t - HISTORY_DAYS * DAY_MS)
        out: list[FundingRecord] = []
        first = -(-lo // interval) * interval
        ts = first
        while ts <= self.start_ms and ts <= end_ms:
            rate = inst.funding_mean + 0.00006 * self._noise(symbol, "fr", ts)
            out.append(FundingRecord(symbol, ts, rate, self.synthetic_mark(symbol, ts)))
            ts += interval
        out.extend(r for r in self.funding_history[symbol] if lo <= r.funding_ms <= end_ms)
        return out

    def oi_point(self, symbol: str, ts: int) -> OiPoint | None:
        """Open interest at the 5-minute boundary ``ts`` (``None`` if not known yet): synthesized
        before the sim start, recorded from it on (a start on a boundary records its own point)."""
        if ts > self._t:
            return None  # not in the past yet (the start's own point, on a grid that starts before it)
        if ts < self.start_ms:
            inst = self.instruments[symbol]
            factor = self._oi_factor(symbol, ts) / self._oi_factor(symbol, self.start_ms)
            return OiPoint(ts, inst.round_qty(inst.start_oi * factor), self.synthetic_mark(symbol, ts))
        for p in reversed(self.oi_history[symbol]):
            if p.ts == ts:
                return p
            if p.ts < ts:
                break
        return None

    def synthetic_mark(self, symbol: str, ts: int) -> float:
        """A deterministic mark price for a time before the sim start (history endpoints)."""
        inst = self.instruments[symbol]
        p1, p2, _, _ = self._phases[symbol]

        def f(x: int) -> float:
            return (
                1
                + 0.05 * math.sin(2 * math.pi * x / (5 * DAY_MS) + p1)
                + 0.01 * math.sin(2 * math.pi * x / (0.7 * DAY_MS) + p2)
            )

        return inst.start_price * f(ts) / f(self.start_ms)

    def _oi_factor(self, symbol: str, ts: int) -> float:
        _, _, p3, p4 = self._phases[symbol]
        return (
            1
            + 0.06 * math.sin(2 * math.pi * ts / (7 * DAY_MS) + p3)
            + 0.025 * math.sin(2 * math.pi * ts / DAY_MS + p4)
            + 0.004 * self._noise(symbol, "oi", ts)
        )

    def _noise(self, *key: object) -> float:
        """Deterministic uniform noise in [-1, 1) keyed by the seed and ``key``."""
        return random.Random(":".join([str(self.seed), *map(str, key)])).random() * 2 - 1


# --------------------------------------------------------------------------------------------
# Venue books: Bybit and OKX
# --------------------------------------------------------------------------------------------

ContractKind = Literal["perpetual", "future", "option"]

YEAR_MS = 365 * DAY_MS


@dataclass(frozen=True, slots=True)
class BookRules:
    """How a venue publishes what its book records (exchanges.md §0, §2.2, §3.2).

    ``sample_ms``: ``None`` for a complete liquidation feed pushed in ``batch_ms`` batches (Bybit
    ``allLiquidation``: every order, 500 ms batches); otherwise at most one order (the latest) per
    contract per ``sample_ms`` window is published (OKX ``liquidation-orders``: one per contract per
    second, "not the total"). ``rate_decimals``: funding rates are settled at this precision.
    ``history_days``: how far back funding-rate history reaches. ``liquidation_history_s``: how many
    seconds of published liquidations exist before the sim start (synthesized; OKX serves them on
    REST and replays them to a new ``liquidation-orders`` subscriber). ``net_mode_share``: the share
    of OKX liquidations reported with ``posSide`` ``net`` (one-way mode) rather than ``long``/``short``.
    """

    venue: str
    sample_ms: int | None
    batch_ms: int
    rate_decimals: int
    history_days: int
    liquidation_history_s: int = 0
    net_mode_share: float = 0.0


BYBIT_BOOK = BookRules("bybit", sample_ms=None, batch_ms=500, rate_decimals=6, history_days=30)
DERIBIT_BOOK = BookRules("deribit", sample_ms=None, batch_ms=100, rate_decimals=8, history_days=30)
"""Deribit: every liquidation trade is published (``trades.*.100ms``, 100 ms batches); funding
accrues continuously and is recorded hourly (``get_funding_rate_history`` ``interest_1h``)."""
OKX_BOOK = BookRules(
    "okx", sample_ms=1_000, batch_ms=1_000, rate_decimals=8, history_days=92, liquidation_history_s=900,
    net_mode_share=0.4,
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Contract:
    """One contract of a venue book (Bybit, OKX), in that venue's own terms.

    Quantities are in the venue's unit: Bybit linear and options base coin, Bybit inverse USD
    (1 USD contracts); OKX contracts of ``contract_value`` (``ctVal``) units of the base coin
    (linear, options) or USD (inverse). ``quote`` is the currency prices are quoted in (USD for
    inverse contracts); OKX options are priced in the base coin (``price_in_base``). ``index`` names
    the venue index the contract follows (OKX ``BTC-USDT``; Bybit ``BTCUSDT``-style), ``family``
    the OKX ``instFamily``/``uly``. ``funding_interval_h`` is 0 unless perpetual; ``expiry_ms`` 0
    for perpetuals.
    """

    venue: str
    symbol: str
    category: str
    kind: ContractKind
    base: str
    quote: str
    settle: str
    inverse: bool
    contract_value: float
    price_decimals: int
    qty_decimals: int
    funding_interval_h: int
    expiry_ms: int
    launch_ms: int
    start_oi: float
    liq_rate_per_s: float
    liq_median_usd: float
    funding_mean: float
    index: str
    family: str = ""
    funding_cap: float = 0.0
    strike: float = 0.0
    option_type: str = ""
    base_iv: float = 0.0
    price_in_base: bool = False
    alias: str = ""

    @property
    def perpetual(self) -> bool:
        return self.kind == "perpetual"

    @property
    def option(self) -> bool:
        return self.kind == "option"

    @property
    def tick(self) -> float:
        return 10.0**-self.price_decimals

    @property
    def step(self) -> float:
        return 10.0**-self.qty_decimals

    def round_price(self, price: float) -> float:
        return round(price, self.price_decimals)

    def round_qty(self, qty: float) -> float:
        return round(qty, self.qty_decimals)

    def base_qty(self, qty: float, price: float) -> float:
        """Base-coin amount of ``qty`` venue units at ``price`` (quote per base coin)."""
        if self.inverse:
            return qty * self.contract_value / price
        return qty * self.contract_value

    def notional_usd(self, qty: float, price: float) -> float:
        """USD value of ``qty`` venue units at ``price``: inverse contracts × face value; otherwise
        base coin × price (a stablecoin counts as 1 USD). For options pass the index price."""
        if self.inverse:
            return qty * self.contract_value
        return qty * self.contract_value * price


@dataclass(slots=True)
class IndexState:
    """One venue index: price (quote per base) and its 24 h / start-of-day statistics."""

    key: str
    base: str
    quote: str
    ref_symbol: str
    offset: float
    price: float
    open_24h: float
    high_24h: float
    low_24h: float
    sod_utc0: float
    sod_utc8: float
    updated_ms: int
    basis: float = 0.0
    drift: float = 0.0


@dataclass(slots=True)
class ContractState:
    """Live state of one venue contract. Read it; only the book writes it.

    ``open_interest`` is ONE side (the usual definition; Bybit's ``openInterest`` field is both
    sides, twice this), in venue units. ``volume_24h`` is venue units; ``turnover_24h`` is the quote
    currency for linear contracts and options (USD/USDT/USDC), the base coin for inverse ones.
    Option prices (``mark_price``, ``bid_price`` …) are in the contract's price currency (USD for
    Bybit, BTC for OKX); IVs are fractions; greeks are Black-Scholes in USD (delta unitless, gamma
    per USD, vega per vol point, theta per day).
    """

    index_price: float
    mark_price: float
    last_price: float
    last_qty: float
    bid_price: float
    bid_qty: float
    ask_price: float
    ask_qty: float
    funding_rate: float
    next_funding_ms: int
    last_settled_rate: float
    open_interest: float
    volume_24h: float
    turnover_24h: float
    total_volume: float
    open_24h: float
    high_24h: float
    low_24h: float
    price_1h: float
    updated_ms: int
    tick_direction: str = "ZeroPlusTick"
    premium: float = 0.0
    oi_target: float = 0.0
    spike_saved_rate: float | None = None
    mark_iv: float = 0.0
    bid_iv: float = 0.0
    ask_iv: float = 0.0
    delta: float = 0.0
    gamma: float = 0.0
    vega: float = 0.0
    theta: float = 0.0
    forward: float = 0.0


@dataclass(frozen=True, slots=True)
class VenueLiquidation:
    """One liquidation order on a venue book.

    ``side`` is the ORDER side (``SELL`` closes a long, as on Binance); Bybit publishes the
    position side instead (``Buy`` = long liquidated) and OKX both (``side`` plus ``pos_side``:
    ``long``/``short``, or ``net`` in one-way mode). ``qty`` is in venue units, ``price`` the
    bankruptcy price (what both venues publish). ``value_usd`` = ``Contract.notional_usd(qty,
    price)``, ``base_qty`` = ``Contract.base_qty(qty, price)``. ``bk_loss`` is in the settle currency.
    """

    seq: int
    venue: str
    symbol: str
    side: Side
    qty: float
    price: float
    trade_ms: int
    value_usd: float
    base_qty: float
    pos_side: str = ""
    bk_loss: float = 0.0
    scripted: bool = False


@dataclass(frozen=True, slots=True)
class PushedVenueLiquidation:
    """A liquidation the venue publishes, and the market time it is pushed (its batch's end)."""

    liquidation: VenueLiquidation
    push_ms: int


_BYBIT_CONTRACTS: tuple[tuple[str, str, str, str, bool, int, int, int, float, float, float], ...] = (
    # symbol, base, quote(=settle unless inverse), category, inverse, price dec, qty dec,
    # funding interval h, start OI (one side, venue units), liquidations per s, median USD
    ("BTCUSDT", "BTC", "USDT", "linear", False, 2, 3, 8, 52_000.0, 0.22, 12_000.0),
    ("ETHUSDT", "ETH", "USDT", "linear", False, 2, 2, 8, 1_250_000.0, 0.18, 9_000.0),
    ("SOLUSDT", "SOL", "USDT", "linear", False, 3, 1, 4, 6_400_000.0, 0.09, 4_000.0),
    ("BTCPERP", "BTC", "USDC", "linear", False, 1, 3, 8, 3_900.0, 0.03, 6_000.0),
    ("BTCUSD", "BTC", "USD", "inverse", True, 1, 0, 8, 150_000_000.0, 0.05, 5_000.0),
)

_OKX_SWAPS: tuple[tuple[str, str, bool, float, int, int, float, float, float], ...] = (
    # base, quote, inverse, ctVal, price dec, qty dec (lot), start OI (contracts), liq/s, median USD
    ("BTC", "USDT", False, 0.01, 1, 2, 2_600_000.0, 0.20, 10_000.0),
    ("ETH", "USDT", False, 0.1, 2, 2, 3_400_000.0, 0.16, 8_000.0),
    ("SOL", "USDT", False, 1.0, 2, 2, 1_900_000.0, 0.08, 3_500.0),
    ("BTC", "USD", True, 100.0, 1, 0, 2_300_000.0, 0.05, 5_000.0),
)

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_START_PRICE = {m[0]: m[1] for m in _MAJORS}
OPTION_STRIKES_PCT = (-10, 0, 10)
"""Option strikes, in percent around the start price of BTC, rounded to 5000."""


def _strikes(base: str) -> list[float]:
    spot = _START_PRICE[base]
    return [round(spot * (1 + pct / 100) / 5000) * 5000.0 for pct in OPTION_STRIKES_PCT]


def _strike_str(strike: float) -> str:
    return f"{strike:f}".rstrip("0").rstrip(".")


def option_expiries_ms(start_ms: int) -> list[int]:
    """Option expiries of the Bybit, OKX and Deribit books, ascending: the next Friday (weekly), the
    month-end (last Friday of the month, or of the next month when that is past or the same day) and the
    next quarterly, all 08:00 UTC and more than a day after ``start_ms`` (a term structure to test)."""
    quarterly = quarterly_expiry_ms(start_ms)
    t = time.gmtime(start_ms / 1000)
    midnight = calendar.timegm((t.tm_year, t.tm_mon, t.tm_mday, 0, 0, 0, 0, 0, 0)) * 1000
    weekly = midnight + ((4 - t.tm_wday) % 7) * DAY_MS + 8 * HOUR_MS
    while weekly <= start_ms + DAY_MS:
        weekly += 7 * DAY_MS
    year, month = t.tm_year, t.tm_mon
    monthly = _last_friday_0800(year, month)
    while monthly <= weekly:
        month = month % 12 + 1
        year += 1 if month == 1 else 0
        monthly = _last_friday_0800(year, month)
    expiries = sorted({weekly, monthly, quarterly})
    while len(expiries) < 3:  # the month-end is the quarterly: take the month after
        month = month % 12 + 1
        year += 1 if month == 1 else 0
        expiries = sorted({*expiries, _last_friday_0800(year, month)})
    return expiries[:3]


def _yymmdd(expiry_ms: int) -> str:
    return time.strftime("%y%m%d", time.gmtime(expiry_ms / 1000))


def bybit_expiry_code(expiry_ms: int) -> str:
    """Bybit's expiry in symbols: day without a leading zero, month, two-digit year (``6JAN23``)."""
    t = time.gmtime(expiry_ms / 1000)
    return f"{t.tm_mday}{_MONTHS[t.tm_mon - 1]}{t.tm_year % 100:02d}"


def build_bybit_contracts(start_ms: int) -> list[Contract]:
    """Bybit's universe: USDT perpetuals BTC/ETH/SOL, the USDC perpetual ``BTCPERP``, the inverse
    ``BTCUSD``, and USDC-settled BTC options (``BTC-<D><MON><YY>-<strike>-C/P``) at three expiries
    (``option_expiries_ms``: weekly, month-end, quarterly) (exchanges.md §2.4)."""
    out: list[Contract] = []
    launch = 1_585_526_400_000  # 2020-03-30, the instruments page's BTCUSDT launchTime
    for sym, base, quote, cat, inverse, pd, qd, hours, oi, liq, median in _BYBIT_CONTRACTS:
        out.append(
            Contract(
                venue="bybit", symbol=sym, category=cat, kind="perpetual", base=base, quote=quote,
                settle=base if inverse else quote, inverse=inverse, contract_value=1.0, price_decimals=pd,
                qty_decimals=qd, funding_interval_h=hours, expiry_ms=0, launch_ms=launch, start_oi=oi,
                liq_rate_per_s=liq, liq_median_usd=median, funding_mean=0.0001 * hours / 8,
                index=f"{base}{quote}", funding_cap=0.005 if hours == 8 else 0.02,
            )
        )  # fmt: skip
        launch += 30 * DAY_MS
    out.extend(
        Contract(
            venue="bybit", symbol=f"BTC-{bybit_expiry_code(expiry)}-{_strike_str(strike)}-{kind}", category="option",
            kind="option", base="BTC", quote="USD", settle="USDC", inverse=False, contract_value=1.0,
            price_decimals=1, qty_decimals=2, funding_interval_h=0, expiry_ms=expiry,
            launch_ms=expiry - 120 * DAY_MS, start_oi=120.0 + strike / 1000.0, liq_rate_per_s=0.0,
            liq_median_usd=0.0, funding_mean=0.0, index="BTCUSD", strike=strike, option_type=kind,
            base_iv=0.55,
        )
        for expiry in option_expiries_ms(start_ms)
        for strike in _strikes("BTC")
        for kind in ("C", "P")
    )  # fmt: skip
    return out


def build_okx_contracts(start_ms: int) -> list[Contract]:
    """OKX's universe: ``BTC/ETH/SOL-USDT-SWAP`` (ctVal 0.01 / 0.1 / 1 coin), ``BTC-USD-SWAP``
    (inverse, ctVal 100 USD), the quarterly ``BTC-USD-<YYMMDD>`` future and BTC-USD options
    (ctVal 0.01 BTC, priced in BTC) at three expiries (``option_expiries_ms``) (exchanges.md §3.4)."""
    out: list[Contract] = []
    launch = 1_611_100_800_000
    for base, quote, inverse, ct_val, pd, qd, oi, liq, median in _OKX_SWAPS:
        family = f"{base}-{quote}"
        out.append(
            Contract(
                venue="okx", symbol=f"{family}-SWAP", category="SWAP", kind="perpetual", base=base,
                quote=quote, settle=base if inverse else quote, inverse=inverse, contract_value=ct_val,
                price_decimals=pd, qty_decimals=qd, funding_interval_h=8, expiry_ms=0, launch_ms=launch,
                start_oi=oi, liq_rate_per_s=liq, liq_median_usd=median, funding_mean=0.0001, index=family,
                family=family, funding_cap=0.0075 if base == "BTC" else 0.015,
            )
        )  # fmt: skip
        launch += 45 * DAY_MS
    expiry = quarterly_expiry_ms(start_ms)
    code = time.strftime("%y%m%d", time.gmtime(expiry / 1000))
    out.append(
        Contract(
            venue="okx", symbol=f"BTC-USD-{code}", category="FUTURES", kind="future", base="BTC", quote="USD",
            settle="BTC", inverse=True, contract_value=100.0, price_decimals=1, qty_decimals=0,
            funding_interval_h=0, expiry_ms=expiry, launch_ms=expiry - 180 * DAY_MS, start_oi=310_000.0,
            liq_rate_per_s=0.01, liq_median_usd=6_000.0, funding_mean=0.0, index="BTC-USD", family="BTC-USD",
            alias="quarter",
        )
    )  # fmt: skip
    out.extend(
        Contract(
            venue="okx", symbol=f"BTC-USD-{_yymmdd(expiry)}-{_strike_str(strike)}-{kind}", category="OPTION",
            kind="option", base="BTC", quote="USD", settle="BTC", inverse=False, contract_value=0.01,
            price_decimals=4, qty_decimals=0, funding_interval_h=0, expiry_ms=expiry,
            launch_ms=expiry - 120 * DAY_MS, start_oi=9_000.0 + strike / 20.0, liq_rate_per_s=0.0,
            liq_median_usd=0.0, funding_mean=0.0, index="BTC-USD", family="BTC-USD", strike=strike,
            option_type=kind, base_iv=0.53, price_in_base=True,
        )
        for expiry in option_expiries_ms(start_ms)
        for strike in _strikes("BTC")
        for kind in ("C", "P")
    )  # fmt: skip
    return out


_DERIBIT_PERPS: tuple[tuple[str, float, float, float, float], ...] = (
    # base, contract size (USD), start OI (contracts, one side), liquidations per s, median USD
    ("BTC", 10.0, 110_000_000.0, 0.08, 9_000.0),
    ("ETH", 1.0, 600_000_000.0, 0.06, 6_000.0),
)


def build_deribit_contracts(start_ms: int) -> list[Contract]:
    """Deribit's universe: inverse ``BTC-PERPETUAL`` (10 USD contracts) and ``ETH-PERPETUAL`` (1 USD),
    the quarterly inverse ``BTC-<D><MON><YY>`` future, and BTC options ``BTC-<D><MON><YY>-<strike>-C/P``
    (1 BTC each, priced in BTC) at three expiries (``option_expiries_ms``) (exchanges.md §4.4).
    Quantities are in contracts; the venue renders ``amount``/``open_interest`` in USD (contracts × size).
    Funding accrues continuously; the book records it hourly (``funding_interval_h`` 1, hourly mean 0.01 %/8)."""
    out: list[Contract] = []
    launch = 1_534_242_000_000  # 2018-08-14, BTC-PERPETUAL's listing
    for base, size, oi, liq, median in _DERIBIT_PERPS:
        out.append(
            Contract(
                venue="deribit", symbol=f"{base}-PERPETUAL", category="future", kind="perpetual", base=base,
                quote="USD", settle=base, inverse=True, contract_value=size, price_decimals=1 if base == "BTC" else 2,
                qty_decimals=0, funding_interval_h=1, expiry_ms=0, launch_ms=launch, start_oi=oi,
                liq_rate_per_s=liq, liq_median_usd=median, funding_mean=0.0001 / 8, index=f"{base.lower()}_usd",
                funding_cap=0.005 / 8,
            )
        )  # fmt: skip
        launch += 30 * DAY_MS
    expiry = quarterly_expiry_ms(start_ms)
    code = bybit_expiry_code(expiry)  # the same D/MON/YY format (exchanges.md §4.4)
    out.append(
        Contract(
            venue="deribit", symbol=f"BTC-{code}", category="future", kind="future", base="BTC", quote="USD",
            settle="BTC", inverse=True, contract_value=10.0, price_decimals=1, qty_decimals=0,
            funding_interval_h=0, expiry_ms=expiry, launch_ms=expiry - 180 * DAY_MS, start_oi=9_000_000.0,
            liq_rate_per_s=0.01, liq_median_usd=5_000.0, funding_mean=0.0, index="btc_usd",
        )
    )  # fmt: skip
    out.extend(
        Contract(
            venue="deribit", symbol=f"BTC-{bybit_expiry_code(expiry)}-{_strike_str(strike)}-{kind}",
            category="option",
            kind="option", base="BTC", quote="USD", settle="BTC", inverse=False, contract_value=1.0,
            price_decimals=4, qty_decimals=1, funding_interval_h=0, expiry_ms=expiry,
            launch_ms=expiry - 120 * DAY_MS, start_oi=1_500.0 + strike / 500.0, liq_rate_per_s=0.0,
            liq_median_usd=0.0, funding_mean=0.0, index="btc_usd", strike=strike, option_type=kind,
            base_iv=0.52, price_in_base=True,
        )
        for expiry in option_expiries_ms(start_ms)
        for strike in _strikes("BTC")
        for kind in ("C", "P")
    )  # fmt: skip
    return out


_INDEX_OFFSETS = {"USDT": 0.0, "USDC": -0.0001, "USD": -0.0003}
"""Static basis of an index quoted in this currency against Binance's USDT index (fraction)."""


class VenueBook:
    """The book of record of one venue other than Binance (Bybit, OKX): contracts, live state,
    liquidations, funding settlements and open-interest history.

    Its indexes follow Binance's UM perpetual index walk of the same base coin (``BTCUSDT`` …) with
    a small basis of their own, so numbers are close across venues but not identical; everything
    else (premiums, funding, OI, order flow, liquidations) draws from the book's own random stream,
    so adding a venue never changes Binance's numbers. The market steps it after Binance.

    Records for tests: ``liquidations`` (every order, trade-time order), ``pushed`` (what the venue
    publishes, see ``BookRules``), ``history`` (published before the sim start), ``funding_history``
    (settlements after the start; those up to it are synthesized on request) and ``oi_history``
    (from the start on; earlier points are synthesized on request).
    """

    def __init__(self, market: Market, contracts: list[Contract], rules: BookRules) -> None:
        self.market = market
        self.rules = rules
        self.venue = rules.venue
        self.contracts: dict[str, Contract] = {c.symbol: c for c in contracts}
        self._rng = random.Random(f"{market.seed}:{self.venue}")
        self._phases: dict[str, tuple[float, float, float, float]] = {}
        self.indexes: dict[str, IndexState] = {}
        self._states: dict[str, ContractState] = {}
        for c in contracts:
            if c.index not in self.indexes:
                self.indexes[c.index] = self._initial_index(c)
        for c in contracts:
            self._states[c.symbol] = self._initial_state(c)
        self.liquidations: list[VenueLiquidation] = []
        """Every liquidation order since the sim start, in trade-time order."""
        self.pushed: list[PushedVenueLiquidation] = []
        """What the venue publishes, in push order (complete on Bybit, sampled on OKX)."""
        self.history: list[PushedVenueLiquidation] = self._synthesize_history()
        """Published liquidations from before the sim start (``rules.liquidation_history_s``)."""
        self.funding_history: dict[str, list[FundingRecord]] = {s: [] for s in self.contracts}
        """Settlements that happened after the sim start (those up to it are synthesized)."""
        self.oi_history: dict[str, list[OiPoint]] = {s: [] for s in self.contracts}
        """5-minute open interest from the sim start on (earlier points are synthesized; none for options)."""
        for c in contracts:
            st = self._states[c.symbol]
            if not c.option:
                self.oi_history[c.symbol].extend(_start_oi_points(market.start_ms, st.open_interest, st.mark_price))
        self._orders: list[_ScheduledOrder] = []
        self._bursts: dict[str, _Burst] = {}
        self._windows: dict[int, dict[str, list[VenueLiquidation]]] = {}

    # -- reads ------------------------------------------------------------------------------

    def state(self, symbol: str) -> ContractState:
        """Live state of ``symbol`` (``KeyError`` for an unknown one)."""
        return self._states[symbol]

    def symbols(self, category: str | None = None) -> list[str]:
        return [s for s, c in self.contracts.items() if category is None or c.category == category]

    def linear_perpetual(self, base: str, quote: str) -> str:
        """This venue's linear perpetual of ``base``/``quote`` (for cascade legs)."""
        for c in self.contracts.values():
            if c.perpetual and not c.inverse and c.base == base and c.quote == quote:
                return c.symbol
        raise KeyError(f"{self.venue} lists no linear {base}/{quote} perpetual")

    def total_liquidation_usd(
        self,
        symbol: str | None = None,
        *,
        pushed_only: bool = True,
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> float:
        """Sum of ``value_usd`` over published (default) or all liquidations since the start, by
        trade time in ``[start_ms, end_ms)``."""
        rows: Iterable[VenueLiquidation] = (p.liquidation for p in self.pushed) if pushed_only else self.liquidations
        return sum(
            liq.value_usd
            for liq in rows
            if (symbol is None or liq.symbol == symbol)
            and (start_ms is None or liq.trade_ms >= start_ms)
            and (end_ms is None or liq.trade_ms < end_ms)
        )

    def published(self, since_ms: int | None = None) -> list[PushedVenueLiquidation]:
        """Published liquidations (history first), optionally only those traded at or after ``since_ms``."""
        rows = [*self.history, *self.pushed]
        return rows if since_ms is None else [p for p in rows if p.liquidation.trade_ms >= since_ms]

    # -- scenario hooks ---------------------------------------------------------------------

    def add_orders(self, orders: list[_ScheduledOrder]) -> None:
        """Scripted liquidation orders (cascade legs) to execute at their trade times."""
        self._orders.extend(orders)
        self._orders.sort(key=lambda o: o.trade_ms)

    def _effects(self) -> Iterable[_Active]:
        return (a for a in self.market._effects if a.effect.venue == self.venue)

    # -- time -------------------------------------------------------------------------------

    def step(self, prev: int, t: int, dt: float) -> None:
        """Advance from ``prev`` to ``t`` (ms); called by the market after its own step."""
        rng = self._rng
        sq = math.sqrt(dt)
        self._apply_spikes(t)
        for idx in self.indexes.values():
            ref = self.market.state(idx.ref_symbol)
            idx.basis += -0.05 * idx.basis * dt + 0.000006 * sq * rng.gauss(0, 1)
            idx.drift += self._cascade_drift(idx.key, prev, t)
            idx.price = ref.index_price * (1 + idx.offset + idx.basis) * math.exp(idx.drift)
            idx.high_24h = max(idx.high_24h, idx.price)
            idx.low_24h = min(idx.low_24h, idx.price)
            if t // DAY_MS != prev // DAY_MS:
                idx.sod_utc0 = idx.price
            if (t + 8 * HOUR_MS) // DAY_MS != (prev + 8 * HOUR_MS) // DAY_MS:
                idx.sod_utc8 = idx.price
            idx.updated_ms = t
        for c in self.contracts.values():
            self._walk(c, self._states[c.symbol], prev, t, dt)
        self._generate_liquidations(prev, t, dt)
        while self._orders and self._orders[0].trade_ms <= t:
            order = self._orders.pop(0)
            if order.trade_ms > prev:
                self._emit(self.contracts[order.symbol], order.side, order.usd, order.trade_ms, scripted=True)
        for c in self.contracts.values():
            st = self._states[c.symbol]
            if c.perpetual and st.next_funding_ms <= t:
                rate = round(st.funding_rate, self.rules.rate_decimals)
                self.funding_history[c.symbol].append(FundingRecord(c.symbol, st.next_funding_ms, rate, st.mark_price))
                st.last_settled_rate = rate
                st.next_funding_ms += c.funding_interval_h * HOUR_MS
            boundary = t - t % OI_HISTORY_STEP_MS
            if prev < boundary <= t and boundary > self.market.start_ms and not c.option:
                self.oi_history[c.symbol].append(OiPoint(boundary, st.open_interest, st.mark_price))
            st.updated_ms = t
        self._finalize(t)

    # -- internals: state -------------------------------------------------------------------

    def _initial_index(self, c: Contract) -> IndexState:
        ref_symbol = f"{c.base}USDT"
        ref = self.market.state(ref_symbol)
        rng = random.Random(f"{self.market.seed}:{self.venue}:index:{c.index}")
        offset = _INDEX_OFFSETS.get(c.quote, 0.0) + rng.uniform(-0.00005, 0.00005)
        price = ref.index_price * (1 + offset)
        open_24h = price / (1 + rng.gauss(0, 0.025))
        return IndexState(
            key=c.index, base=c.base, quote=c.quote, ref_symbol=ref_symbol, offset=offset, price=price,
            open_24h=open_24h, high_24h=max(price, open_24h) * (1 + abs(rng.gauss(0, 0.008))),
            low_24h=min(price, open_24h) * (1 - abs(rng.gauss(0, 0.008))),
            sod_utc0=price * (1 + rng.gauss(0, 0.01)), sod_utc8=price * (1 + rng.gauss(0, 0.01)),
            updated_ms=self.market.start_ms,
        )  # fmt: skip

    def _initial_state(self, c: Contract) -> ContractState:
        rng = random.Random(f"{self.market.seed}:{self.venue}:init:{c.symbol}")
        tau = 2 * math.pi
        self._phases[c.symbol] = (rng.uniform(0, tau), rng.uniform(0, tau), rng.uniform(0, tau), rng.uniform(0, tau))
        start = self.market.start_ms
        index = self.indexes[c.index].price
        premium = rng.gauss(0, 0.0002)
        funding = c.funding_mean + rng.gauss(0, 0.00003) if c.perpetual else 0.0
        next_funding = 0
        last_settled = 0.0
        if c.perpetual:
            interval = c.funding_interval_h * HOUR_MS
            next_funding = (start // interval + 1) * interval
            # the last settlement (at or before the start) is history: its rate is the one
            # funding_records lists for it. This draw is unused; it stays so that every value
            # drawn after it is unchanged.
            rng.gauss(0, 0.00003)
            last_settled = self._synthetic_rate(c, next_funding - interval)
        st = ContractState(
            index_price=index, mark_price=index, last_price=index, last_qty=c.step, bid_price=index,
            bid_qty=c.step, ask_price=index, ask_qty=c.step, funding_rate=funding, next_funding_ms=next_funding,
            last_settled_rate=last_settled,
            open_interest=c.round_qty(c.start_oi), volume_24h=0.0, turnover_24h=0.0, total_volume=0.0,
            open_24h=0.0, high_24h=0.0, low_24h=0.0, price_1h=0.0, updated_ms=start, premium=premium,
            oi_target=c.start_oi,
        )  # fmt: skip
        self._price(c, st, start)
        last = st.mark_price * (1 + rng.gauss(0, 0.0002))
        st.last_price = max(c.tick, c.round_price(last))
        st.bid_price, st.ask_price = self._book(c, st, start)
        st.bid_qty = c.step * rng.randint(1, 500)
        st.ask_qty = c.step * rng.randint(1, 500)
        st.last_qty = c.step * rng.randint(1, 50)
        change = rng.gauss(0, 0.03)
        st.open_24h = c.round_price(st.last_price / (1 + change))
        st.high_24h = c.round_price(max(st.last_price, st.open_24h) * (1 + abs(rng.gauss(0, 0.01))))
        st.low_24h = c.round_price(min(st.last_price, st.open_24h) * (1 - abs(rng.gauss(0, 0.01))))
        st.price_1h = c.round_price(st.last_price * (1 + rng.gauss(0, 0.004)))
        if c.option:
            st.volume_24h = c.round_qty(c.start_oi * rng.uniform(0.05, 0.3))
            st.turnover_24h = c.notional_usd(st.volume_24h, index)
            st.total_volume = c.round_qty(c.start_oi * rng.uniform(3, 8))
        else:
            st.volume_24h = c.start_oi * rng.uniform(1.2, 3.0)
            st.turnover_24h = c.base_qty(st.volume_24h, st.last_price) * (1 if c.inverse else st.last_price)
        return st

    def _book(self, c: Contract, st: ContractState, t: int) -> tuple[float, float]:
        if c.option:
            lo, hi = _bs_price(c, st.forward, st.bid_iv, t), _bs_price(c, st.forward, st.ask_iv, t)
            scale = 1 / st.index_price if c.price_in_base else 1.0
            bid = c.round_price(lo * scale)
            ask = max(c.round_price(hi * scale), bid + c.tick)
            return (bid if bid >= 2 * c.tick and st.bid_iv > 0 else 0.0), c.round_price(ask)
        half = max(c.tick, st.last_price * 0.00001)
        bid = c.round_price(st.last_price - half)
        ask = c.round_price(st.last_price + half)
        if ask <= bid:
            ask = c.round_price(bid + c.tick)
        return bid, ask

    def _price(self, c: Contract, st: ContractState, t: int) -> None:
        """Index, mark and (options) IVs and greeks at market time ``t``."""
        st.index_price = self.indexes[c.index].price
        if c.option:
            st.forward = st.index_price
            m = math.log(c.strike / st.forward)
            st.mark_iv = max(0.05, c.base_iv * (1 + 0.6 * m * m) - 0.08 * m + st.premium)
            spread = 0.012 + 0.02 * abs(m)
            st.ask_iv = st.mark_iv + spread
            # the deep out-of-the-money put has no bid: the venue sends 0 for its price and IV
            st.bid_iv = 0.0 if (c.option_type == "P" and m < -0.05) else max(0.01, st.mark_iv - spread)
            price, delta, gamma, vega, theta = _black_scholes(st.forward, c.strike, _years(c, t), st.mark_iv,
                                                              call=c.option_type == "C")  # fmt: skip
            st.mark_price = price / st.index_price if c.price_in_base else price
            st.delta, st.gamma, st.vega, st.theta = delta, gamma, vega, theta
            return
        carry = 0.07 * _years(c, t) if c.kind == "future" else 0.0
        st.mark_price = st.index_price * (1 + st.premium + carry)

    def _walk(self, c: Contract, st: ContractState, prev: int, t: int, dt: float) -> None:
        rng = self._rng
        sq = math.sqrt(dt)
        if c.option:
            st.premium += -0.02 * st.premium * dt + 0.0004 * sq * rng.gauss(0, 1)
        else:
            st.premium += -0.05 * st.premium * dt + 0.00002 * sq * rng.gauss(0, 1)
        self._price(c, st, t)
        traded = not c.option or rng.random() < dt / 20.0
        if traded:
            noise = 0.002 if c.option else 0.00003
            last = max(c.tick, c.round_price(st.mark_price * (1 + rng.gauss(0, noise))))
            if last > st.last_price:
                st.tick_direction = "PlusTick"
            elif last < st.last_price:
                st.tick_direction = "MinusTick"
            else:
                st.tick_direction = "ZeroPlusTick" if st.tick_direction.startswith("Plus") else "ZeroMinusTick"
            st.last_price = last
            st.last_qty = c.step * rng.randint(1, 200)
        st.bid_price, st.ask_price = self._book(c, st, t)
        st.bid_qty = c.step * rng.randint(1, 800)
        st.ask_qty = c.step * rng.randint(1, 800)
        st.high_24h = max(st.high_24h, st.last_price)
        st.low_24h = min(st.low_24h, st.last_price)
        st.price_1h += (st.last_price - st.price_1h) * min(1.0, dt / 3600.0)
        decay = dt * 1000 / DAY_MS
        per_step = st.volume_24h * decay * rng.uniform(0.5, 1.5) if traded else 0.0
        st.volume_24h = st.volume_24h * (1 - decay) + per_step
        if c.option:
            st.total_volume += per_step
            st.turnover_24h = st.turnover_24h * (1 - decay) + c.notional_usd(per_step, st.index_price)
        else:
            value = c.base_qty(per_step, st.last_price) * (1 if c.inverse else st.last_price)
            st.turnover_24h = st.turnover_24h * (1 - decay) + value
        if c.perpetual and st.spike_saved_rate is None:
            st.funding_rate += (c.funding_mean - st.funding_rate) * 0.01 * dt
            st.funding_rate += 0.000002 * sq * rng.gauss(0, 1)
            cap = c.funding_cap or 0.0075
            st.funding_rate = min(cap, max(-cap, st.funding_rate))
        st.oi_target = self._oi_target(c, t)
        noise = 0.0002 * sq * rng.gauss(0, 1)
        oi = st.open_interest * math.exp(noise) + (st.oi_target - st.open_interest) * min(1.0, dt)
        st.open_interest = max(c.step, c.round_qty(oi))

    def _oi_target(self, c: Contract, t: int) -> float:
        mult = 1.0
        for a in self._effects():
            e = a.effect
            if isinstance(e, OiSurge) and e.symbol == c.symbol and t >= a.start_ms:
                mult *= 1 + e.rise_pct / 100 * min(1.0, (t - a.start_ms) / max(1, a.end_ms - a.start_ms))
        return c.start_oi * mult

    def _cascade_drift(self, index: str, prev: int, t: int) -> float:
        drift = 0.0
        for a in self._effects():
            e = a.effect
            if isinstance(e, Cascade) and self.contracts[e.symbol].index == index:
                overlap = min(t, a.end_ms) - max(prev, a.start_ms)
                if overlap > 0:
                    drift += math.log(1 + e.price_move_pct / 100) * overlap / (a.end_ms - a.start_ms)
        return drift

    def _apply_spikes(self, t: int) -> None:
        for a in self._effects():
            e = a.effect
            if not isinstance(e, FundingSpike):
                continue
            st = self._states[e.symbol]
            if not a.started and t >= a.start_ms:
                a.started = True
                st.spike_saved_rate = st.funding_rate
                st.funding_rate = e.rate
            if a.started and not a.ended and t >= a.end_ms:
                a.ended = True
                if st.spike_saved_rate is not None:
                    st.funding_rate = st.spike_saved_rate
                st.spike_saved_rate = None

    # -- internals: liquidations --------------------------------------------------------------

    def _generate_liquidations(self, prev: int, t: int, dt: float) -> None:
        rng = self._rng
        for c in self.contracts.values():
            if c.option or c.liq_rate_per_s <= 0:
                continue
            burst = self._bursts.get(c.symbol)
            if burst is not None and burst.until_ms <= prev:
                del self._bursts[c.symbol]
                burst = None
            if burst is None and rng.random() < dt / 300.0:
                side: Side = "SELL" if rng.random() < 0.5 else "BUY"
                burst = _Burst(until_ms=t + rng.randint(5_000, 15_000), multiplier=rng.uniform(5.0, 12.0), side=side)
                self._bursts[c.symbol] = burst
            rate = c.liq_rate_per_s * (burst.multiplier if burst else 1.0)
            for _ in range(_poisson(rng, rate * dt)):
                if burst is not None:
                    side = burst.side if rng.random() < 0.85 else _other(burst.side)
                else:
                    side = "SELL" if rng.random() < 0.5 else "BUY"
                usd = c.liq_median_usd * math.exp(rng.gauss(0.0, 1.2))
                self._emit(c, side, usd, rng.randrange(prev + 1, t + 1), scripted=False)

    def _make_liquidation(
        self, rng: random.Random, c: Contract, side: Side, usd: float, ts: int, mark: float, seq: int, scripted: bool
    ) -> VenueLiquidation:
        # the bankruptcy price lies beyond the mark: below it for a long closed by a SELL
        away = rng.uniform(0.002, 0.012)
        price = max(c.tick, c.round_price(mark * (1 - away if side == "SELL" else 1 + away)))
        if c.inverse:
            qty = float(max(1, round(usd / c.contract_value)))
        else:
            qty = max(c.step, c.round_qty(usd / price / c.contract_value))
        pos_side = ""
        if self.rules.net_mode_share > 0:
            hedge = "long" if side == "SELL" else "short"
            pos_side = "net" if rng.random() < self.rules.net_mode_share else hedge
        value = c.notional_usd(qty, price)
        loss = 0.0
        if rng.random() < 0.15:
            loss = value * rng.uniform(0.0002, 0.002) / (price if c.inverse else 1.0)
        return VenueLiquidation(
            seq=seq, venue=self.venue, symbol=c.symbol, side=side, qty=qty, price=price, trade_ms=ts,
            value_usd=value, base_qty=c.base_qty(qty, price), pos_side=pos_side, bk_loss=loss, scripted=scripted,
        )  # fmt: skip

    def _emit(self, c: Contract, side: Side, usd: float, ts: int, *, scripted: bool) -> None:
        st = self._states[c.symbol]
        liq = self._make_liquidation(self._rng, c, side, usd, ts, st.mark_price, len(self.liquidations), scripted)
        self.liquidations.append(liq)
        st.open_interest = max(c.step, c.round_qty(st.open_interest - liq.qty))
        width = self.rules.sample_ms or self.rules.batch_ms
        slot = self._windows.setdefault(ts - ts % width, {}).setdefault(c.symbol, [])
        if self.rules.sample_ms is None:
            slot.append(liq)
        elif not slot or (liq.trade_ms, liq.seq) >= (slot[0].trade_ms, slot[0].seq):
            slot[:] = [liq]

    def _finalize(self, t: int) -> None:
        width = self.rules.sample_ms or self.rules.batch_ms
        for window in sorted(w for w in self._windows if w + width <= t):
            rows = [liq for per_symbol in self._windows.pop(window).values() for liq in per_symbol]
            for liq in sorted(rows, key=lambda x: (x.trade_ms, x.seq)):
                self.pushed.append(PushedVenueLiquidation(liq, t))

    def _synthesize_history(self) -> list[PushedVenueLiquidation]:
        """Published liquidations in the ``liquidation_history_s`` before the start (deterministic)."""
        span = self.rules.liquidation_history_s
        if span <= 0:
            return []
        rng = random.Random(f"{self.market.seed}:{self.venue}:history")
        start = self.market.start_ms
        width = self.rules.sample_ms or self.rules.batch_ms
        out: list[PushedVenueLiquidation] = []
        for c in self.contracts.values():
            if c.option or c.liq_rate_per_s <= 0:
                continue
            mark = self._states[c.symbol].mark_price
            seen: set[int] = set()
            for _ in range(_poisson(rng, c.liq_rate_per_s * span)):
                ts = rng.randrange(start - span * 1000, start)
                window = ts - ts % width
                side: Side = "SELL" if rng.random() < 0.5 else "BUY"
                usd = c.liq_median_usd * math.exp(rng.gauss(0.0, 1.2))
                liq = self._make_liquidation(rng, c, side, usd, ts, mark, -1, scripted=False)
                if self.rules.sample_ms is not None and window in seen:
                    continue  # the published record keeps one per contract per window
                seen.add(window)
                out.append(PushedVenueLiquidation(liq, min(start, window + width)))
        out.sort(key=lambda p: (p.liquidation.trade_ms, p.liquidation.symbol))
        return out

    # -- history (REST) -----------------------------------------------------------------------

    def funding_records(self, symbol: str, start_ms: int, end_ms: int) -> list[FundingRecord]:
        """Settlements of ``symbol`` with ``start_ms <= funding_ms <= end_ms``, ascending, back to
        ``rules.history_days``; those up to and including the sim start are synthesized, later ones
        recorded as they happen (each listed once). Not perpetual: none."""
        c = self.contracts[symbol]
        if not c.perpetual:
            return []
        interval = c.funding_interval_h * HOUR_MS
        now = self.market.now_ms
        lo = max(start_ms, now - self.rules.history_days * DAY_MS)
        out: list[FundingRecord] = []
        ts = -(-lo // interval) * interval
        while ts <= self.market.start_ms and ts <= end_ms:
            out.append(FundingRecord(symbol, ts, self._synthetic_rate(c, ts), self.synthetic_mark(symbol, ts)))
            ts += interval
        out.extend(r for r in self.funding_history[symbol] if lo <= r.funding_ms <= end_ms)
        return out

    def oi_point(self, symbol: str, ts: int) -> OiPoint | None:
        """Open interest (one side, venue units) at the 5-minute boundary ``ts``; ``None`` if not
        known yet. Synthesized before the sim start, recorded from it on (a start on a boundary
        records its own point)."""
        if ts > self.market.now_ms:
            return None  # not in the past yet (the start's own point, on a grid that starts before it)
        if ts < self.market.start_ms:
            c = self.contracts[symbol]
            factor = self._oi_factor(symbol, ts) / self._oi_factor(symbol, self.market.start_ms)
            return OiPoint(ts, c.round_qty(c.start_oi * factor), self.synthetic_mark(symbol, ts))
        for p in reversed(self.oi_history[symbol]):
            if p.ts == ts:
                return p
            if p.ts < ts:
                break
        return None

    def _synthetic_rate(self, c: Contract, ts: int) -> float:
        """The rate settled at ``ts`` (a settlement up to the sim start), at the venue's precision."""
        noise = self.market._noise(self.venue, c.symbol, "fr", ts)
        return round(c.funding_mean + 0.00006 * noise, self.rules.rate_decimals)

    def synthetic_mark(self, symbol: str, ts: int) -> float:
        """A deterministic mark price for a time before the sim start (history endpoints)."""
        c = self.contracts[symbol]
        p1, p2, _, _ = self._phases[symbol]

        def f(x: int) -> float:
            return (
                1
                + 0.05 * math.sin(2 * math.pi * x / (5 * DAY_MS) + p1)
                + 0.01 * math.sin(2 * math.pi * x / (0.7 * DAY_MS) + p2)
            )

        start_mark = _START_PRICE.get(c.base, self._states[symbol].mark_price)
        return start_mark * f(ts) / f(self.market.start_ms)

    def _oi_factor(self, symbol: str, ts: int) -> float:
        _, _, p3, p4 = self._phases[symbol]
        return (
            1
            + 0.06 * math.sin(2 * math.pi * ts / (7 * DAY_MS) + p3)
            + 0.025 * math.sin(2 * math.pi * ts / DAY_MS + p4)
            + 0.004 * self.market._noise(self.venue, symbol, "oi", ts)
        )


def _start_oi_points(start_ms: int, open_interest: float, mark_price: float) -> list[OiPoint]:
    """What a sim started at ``start_ms`` records for its own start: the starting state if the start
    is on a 5-minute boundary (its steps record only the boundaries after the start), else nothing."""
    return [] if start_ms % OI_HISTORY_STEP_MS else [OiPoint(start_ms, open_interest, mark_price)]


def _years(c: Contract, t: int) -> float:
    return max(c.expiry_ms - t, HOUR_MS) / YEAR_MS if c.expiry_ms else 0.0


def _norm_cdf(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def _black_scholes(
    fwd: float, strike: float, years: float, vol: float, *, call: bool
) -> tuple[float, float, float, float, float]:
    """Black-76 (zero rates) price in USD and greeks: delta, gamma (per USD), vega (per vol point),
    theta (per day)."""
    sd = vol * math.sqrt(years)
    d1 = (math.log(fwd / strike) + 0.5 * sd * sd) / sd
    d2 = d1 - sd
    pdf = math.exp(-0.5 * d1 * d1) / math.sqrt(2 * math.pi)
    if call:
        price, delta = fwd * _norm_cdf(d1) - strike * _norm_cdf(d2), _norm_cdf(d1)
    else:
        price, delta = strike * _norm_cdf(-d2) - fwd * _norm_cdf(-d1), _norm_cdf(d1) - 1
    gamma = pdf / (fwd * sd)
    vega = fwd * pdf * math.sqrt(years) / 100
    theta = -fwd * pdf * vol / (2 * math.sqrt(years)) / 365
    return max(price, 0.0), delta, gamma, vega, theta


def _bs_price(c: Contract, fwd: float, vol: float, t: int) -> float:
    if vol <= 0:
        return 0.0
    return _black_scholes(fwd, c.strike, _years(c, t), vol, call=c.option_type == "C")[0]


def _other(side: Side) -> Side:
    return "BUY" if side == "SELL" else "SELL"


def _poisson(rng: random.Random, lam: float) -> int:
    """Knuth's Poisson sampler; fine for the small rates used here."""
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit = math.exp(-lam)
    k, p = 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def _plan_orders(
    rng: random.Random, c: Cascade, symbol: str, start: int, end: int, median_usd: float
) -> list[_ScheduledOrder]:
    """A cascade leg's orders: at least one in every 1000 ms window, ``orders_per_s`` on average."""
    orders: list[_ScheduledOrder] = []
    window = start - start % PUSH_WINDOW_MS
    while window < end:
        lo, hi = max(window, start), min(window + PUSH_WINDOW_MS, end)
        if hi > lo:
            n = 1 + _poisson(rng, max(0.0, c.orders_per_s - 1.0) * (hi - lo) / 1000.0)
            for _ in range(n):
                ts = rng.randrange(lo, hi)
                usd = median_usd * math.exp(rng.gauss(0.0, c.sigma))
                orders.append(_ScheduledOrder(ts, symbol, c.side, usd))
        window += PUSH_WINDOW_MS
    orders.sort(key=lambda o: o.trade_ms)
    return orders


# --------------------------------------------------------------------------------------------
# Venue book: BitMEX
# --------------------------------------------------------------------------------------------

BITMEX_BOOK = BookRules("bitmex", sample_ms=None, batch_ms=100, rate_decimals=6, history_days=60)
"""BitMEX: every liquidation order is published (table ``liquidation``, an ``insert`` per order);
funding is settled every 8 h and published with 6 decimals (``0.000125``)."""

BITMEX_FUNDING_OFFSET_MS = 4 * HOUR_MS
"""BitMEX perpetuals settle funding at 04:00, 12:00 and 20:00 UTC (``fundingTimestamp``
``2024-11-25T04:00:00.000Z``, ``2018-08-21T20:00:00.000Z`` in recorded frames), not on 00/08/16."""

BITMEX_FUTURE_EXPIRY_HOUR = 12
"""BitMEX quarterly futures expire on the last Friday of the quarter at 12:00 UTC."""

BITMEX_MONTH_CODES = "FGHJKMNQUVXZ"
"""Futures month codes, January to December (``XBTZ26`` = December 2026)."""

BITMEX_LOTS: dict[str, int] = {}
"""Contracts per book unit (``lotSize``) by BitMEX symbol, filled by ``build_bitmex_contracts``."""


def bitmex_future_symbol(root: str, expiry_ms: int) -> str:
    """``root`` + month code + two-digit year (``XBTZ26``)."""
    t = time.gmtime(expiry_ms / 1000)
    return f"{root}{BITMEX_MONTH_CODES[t.tm_mon - 1]}{t.tm_year % 100:02d}"


def bitmex_future_expiry_ms(start_ms: int) -> int:
    """The next quarterly expiry after ``start_ms`` at BitMEX's hour (last Friday, 12:00 UTC)."""
    return quarterly_expiry_ms(start_ms) + (BITMEX_FUTURE_EXPIRY_HOUR - 8) * HOUR_MS


def build_bitmex_contracts(start_ms: int) -> list[Contract]:
    """BitMEX's universe: ``XBTUSD`` (inverse perpetual, 1 USD contracts, lot 100), ``XBTUSDT``
    (linear perpetual, 1 contract = 0.000001 XBT, lot 100), ``ETHUSD`` (quanto perpetual settled in
    XBt, lot 1) and the quarterly inverse ``XBT<M><YY>`` future (lot 100).

    Book quantities (``open_interest``, liquidation ``qty``, volumes) are in LOTS, so every wire
    quantity is a multiple of ``lotSize``: the venue multiplies by ``BITMEX_LOTS[symbol]``.
    ``contract_value`` is per lot: 100 USD for the inverse contracts, 0.0001 BTC for ``XBTUSDT``,
    and for the quanto ``ETHUSD`` (worth 100 XBt × the ETH price in USD, i.e. 1e-6 × ETHUSD XBT) a
    fixed 1e-6 × the BTC start price in ETH (0.095 ETH): ``value_usd`` of ETHUSD liquidations is
    therefore exact at the start prices and approximate afterwards. ``base`` is ``BTC`` (the book's
    indexes follow Binance's ``BTCUSDT``); ``family`` holds BitMEX's root (``XBT``), ``index`` the
    BitMEX index symbol (``.BXBT``), ``category`` the ``typ`` (``FFWCSX`` perpetual, ``FFCCSX`` future).
    """
    btc = _START_PRICE["BTC"]
    perps: tuple[tuple[str, str, str, bool, float, int, int, int, float, float, float, str], ...] = (
        # symbol, base, quote, inverse, value per lot, lot, price dec, listing, OI (lots), liq/s, median USD, index
        ("XBTUSD", "BTC", "USD", True, 100.0, 100, 1, 1_463_140_800_000, 4_100_000.0, 0.04, 8_000.0, ".BXBT"),
        ("XBTUSDT", "BTC", "USDT", False, 0.0001, 100, 1, 1_636_689_600_000, 600_000.0, 0.02, 5_000.0, ".BXBTT"),
        ("ETHUSD", "ETH", "USD", False, 1e-6 * btc, 1, 2, 1_531_915_200_000, 400_000.0, 0.02, 4_000.0, ".BETH"),
    )
    out: list[Contract] = []
    for sym, base, quote, inverse, value, lot, pd, listing, oi, liq, median, index in perps:
        BITMEX_LOTS[sym] = lot
        out.append(
            Contract(
                venue="bitmex", symbol=sym, category="FFWCSX", kind="perpetual", base=base, quote=quote,
                settle="USDT" if quote == "USDT" else "XBT", inverse=inverse, contract_value=value,
                price_decimals=pd, qty_decimals=0, funding_interval_h=8, expiry_ms=0, launch_ms=listing,
                start_oi=oi, liq_rate_per_s=liq, liq_median_usd=median, funding_mean=0.0001, index=index,
                family="ETH" if base == "ETH" else "XBT", funding_cap=0.0075,
            )
        )  # fmt: skip
    expiry = bitmex_future_expiry_ms(start_ms)
    future = bitmex_future_symbol("XBT", expiry)
    BITMEX_LOTS[future] = 100
    out.append(
        Contract(
            venue="bitmex", symbol=future, category="FFCCSX", kind="future", base="BTC", quote="USD", settle="XBT",
            inverse=True, contract_value=100.0, price_decimals=1, qty_decimals=0, funding_interval_h=0,
            expiry_ms=expiry, launch_ms=expiry - 182 * DAY_MS, start_oi=300_000.0, liq_rate_per_s=0.005,
            liq_median_usd=5_000.0, funding_mean=0.0, index=".BXBT", family="XBT",
        )
    )  # fmt: skip
    return out


class BitmexBook(VenueBook):
    """The BitMEX book: a ``VenueBook`` whose perpetuals settle at 04:00/12:00/20:00 UTC
    (``BITMEX_FUNDING_OFFSET_MS``), both live and in the synthesized history."""

    def _initial_state(self, c: Contract) -> ContractState:
        st = super()._initial_state(c)
        if c.perpetual:
            interval = c.funding_interval_h * HOUR_MS
            off = BITMEX_FUNDING_OFFSET_MS
            start = self.market.start_ms
            st.next_funding_ms = ((start - off) // interval + 1) * interval + off
            st.last_settled_rate = self._synthetic_rate(c, st.next_funding_ms - interval)
        return st

    def funding_records(self, symbol: str, start_ms: int, end_ms: int) -> list[FundingRecord]:
        """As ``VenueBook.funding_records``, on BitMEX's settlement grid (04/12/20 UTC)."""
        c = self.contracts[symbol]
        if not c.perpetual:
            return []
        interval = c.funding_interval_h * HOUR_MS
        off = BITMEX_FUNDING_OFFSET_MS
        lo = max(start_ms, self.market.now_ms - self.rules.history_days * DAY_MS)
        out: list[FundingRecord] = []
        ts = -(-(lo - off) // interval) * interval + off
        while ts <= self.market.start_ms and ts <= end_ms:
            out.append(FundingRecord(symbol, ts, self._synthetic_rate(c, ts), self.synthetic_mark(symbol, ts)))
            ts += interval
        out.extend(r for r in self.funding_history[symbol] if lo <= r.funding_ms <= end_ms)
        return out


__all__ += [
    "BITMEX_BOOK",
    "BITMEX_FUNDING_OFFSET_MS",
    "BITMEX_LOTS",
    "BitmexBook",
    "bitmex_future_expiry_ms",
    "bitmex_future_symbol",
    "build_bitmex_contracts",
]
