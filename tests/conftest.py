"""Shared fixtures: a running simulator on a free loopback port, and an `eventually` poller."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest

from streamer.sim import SimServer


async def eventually(cond: Callable[[], object], within_s: float = 10.0, every_s: float = 0.01) -> None:
    """Poll ``cond`` every few ms until it is truthy; fail after ``within_s`` seconds."""
    deadline = time.monotonic() + within_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within_s} s")
        await asyncio.sleep(every_s)


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    """The exchange simulator, calm market, seed 1, on 127.0.0.1 port 0."""
    server = SimServer(seed=1)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
