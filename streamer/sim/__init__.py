"""Loopback exchange simulator: each exchange's real WS and REST protocol, scripted market scenarios,
fault injection.

Written from the exchanges' documentation and never from our adapters (nothing here imports the
rest of ``streamer``), so that it catches their misreadings. Start one with
``async with SimServer(seed=0, scenario="demo") as sim:`` and point clients at ``sim.urls``;
``sim.market`` is the book of record to compare against (Binance itself; ``sim.market.bybit`` and
``sim.market.okx`` for the other venues), ``sim.faults`` the fault plan.
"""

from streamer.sim.faults import FaultPlan
from streamer.sim.market import (
    SCENARIOS,
    Cascade,
    Contract,
    FundingSpike,
    Liquidation,
    Market,
    OiSurge,
    Scenario,
    VenueBook,
    VenueLiquidation,
)
from streamer.sim.server import ScaledClock, SimServer, ccxt_api_urls, main, serve
from streamer.sim.venues.binance import BinanceConfig
from streamer.sim.venues.bybit import BybitConfig
from streamer.sim.venues.okx import OkxConfig

__all__ = [
    "SCENARIOS",
    "BinanceConfig",
    "BybitConfig",
    "Cascade",
    "Contract",
    "FaultPlan",
    "FundingSpike",
    "Liquidation",
    "Market",
    "OiSurge",
    "OkxConfig",
    "ScaledClock",
    "Scenario",
    "SimServer",
    "VenueBook",
    "VenueLiquidation",
    "ccxt_api_urls",
    "main",
    "serve",
]
