"""ADAPTERS: exchange name -> adapter factory; nothing else."""

from __future__ import annotations

from collections.abc import Callable

from streamer.exchanges.base import Adapter
from streamer.exchanges.binance import BinanceAdapter
from streamer.exchanges.bitmex import BitmexAdapter
from streamer.exchanges.bybit import BybitAdapter
from streamer.exchanges.deribit import DeribitAdapter
from streamer.exchanges.okx import OkxAdapter

ADAPTERS: dict[str, Callable[[], Adapter]] = {
    "binance": BinanceAdapter,
    "bitmex": BitmexAdapter,
    "bybit": BybitAdapter,
    "deribit": DeribitAdapter,
    "okx": OkxAdapter,
}
