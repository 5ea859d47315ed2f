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
