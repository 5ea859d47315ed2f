"""Adapters are sans-I/O: no module under streamer/exchanges imports a clock, a socket or a logger."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import streamer.exchanges

BANNED = {"asyncio", "socket", "aiohttp", "websockets", "time", "random", "logging", "datetime", "urllib", "requests"}
MODULES = sorted(Path(streamer.exchanges.__file__).parent.glob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=[p.name for p in MODULES])
def test_exchange_module_imports_no_io(path: Path):
    tree = ast.parse(path.read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module.split(".")[0])
    assert imported & BANNED == set()


def test_per_symbol_state_from_exchange_input_is_capped_and_counted():
    from streamer.exchanges.base import AdapterStats, remember

    stats = AdapterStats()
    cache: dict[str, float] = {}
    for i in range(5):
        remember(cache, f"SYM{i}", float(i), stats, limit=3)
    remember(cache, "SYM0", 9.0, stats, limit=3)  # a known key is always updated
    assert cache == {"SYM0": 9.0, "SYM1": 1.0, "SYM2": 2.0}
    assert stats.unmapped["state_cap"] == 2
