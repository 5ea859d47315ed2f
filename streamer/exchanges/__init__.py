"""ADAPTERS: exchange name -> adapter factory; nothing else."""

from __future__ import annotations

from collections.abc import Callable

from streamer.exchanges.base import Adapter
from streamer.exchanges.binance import BinanceAdapter

ADAPTERS: dict[str, Callable[[], Adapter]] = {
    "binance": BinanceAdapter,
}
