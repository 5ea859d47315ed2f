"""Venue modules of the simulator: each exchange's WebSocket and REST protocol, from the server side.

A venue renders the shared ``Market`` in one exchange's wire format, written from that exchange's
documentation (never from our adapters). ``SimServer`` hosts every venue on one aiohttp app and
drives them all from one clock: after each market step it calls ``on_tick``, which only queues
frames (it never awaits), so a slow client cannot hold up the others.

To add an exchange, write ``venues/<name>.py`` with a class satisfying ``Venue`` and list it in
``streamer.sim.server``.
"""

from __future__ import annotations

from typing import Protocol

from aiohttp import web

__all__ = ["Venue"]


class Venue(Protocol):
    """What the server needs from a venue module."""

    @property
    def name(self) -> str:
        """Short exchange name, the first segment of its URLs and fault keys (``binance``)."""

    def install(self, app: web.Application) -> None:
        """Add the venue's routes (usually sub-apps under ``/<name>/...``) to ``app``."""

    def urls(self, http_root: str, ws_root: str) -> dict[str, str]:
        """Named base URLs, given ``http://host:port`` and ``ws://host:port``."""

    def on_tick(self, now_ms: int) -> None:
        """Queue whatever is due at market time ``now_ms``. Must not block or await."""

    async def close(self) -> None:
        """Close every live connection (server shutdown)."""
