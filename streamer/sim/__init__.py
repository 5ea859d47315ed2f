"""Loopback exchange simulator: each exchange's real WS and REST protocol, scripted market scenarios,
fault injection.

Written from the exchanges' documentation and never from our adapters (nothing here imports the
rest of ``streamer``), so that it catches their misreadings. Start one with
``async with SimServer(seed=0, scenario="demo") as sim:`` and point clients at ``sim.urls``;
``sim.market`` is the book of record to compare against, ``sim.faults`` the fault plan.
"""

from streamer.sim.faults import FaultPlan
from streamer.sim.market import SCENARIOS, Cascade, FundingSpike, Liquidation, Market, OiSurge, Scenario
from streamer.sim.server import ScaledClock, SimServer, main, serve
from streamer.sim.venues.binance import BinanceConfig

__all__ = [
    "SCENARIOS",
    "BinanceConfig",
    "Cascade",
    "FaultPlan",
    "FundingSpike",
    "Liquidation",
    "Market",
    "OiSurge",
    "ScaledClock",
    "Scenario",
    "SimServer",
    "main",
    "serve",
]
