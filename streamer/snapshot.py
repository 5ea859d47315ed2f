"""One-shot REST snapshots behind the CLI commands (``streamer funding|oi|liquidations|options|basis``).

A snapshot is what the venues' public REST endpoints say now, normalized into the same events the
daemon streams (``streamer.model``), per venue, with how fresh and how complete each venue's part is.
The analyses (``streamer.aggregate.analytics``) and the report (``streamer.report``) read it; they never
fetch. ``take_snapshot`` fetches every venue in parallel through ``RestClient`` (per-venue rate limits,
retries with backoff), caches response bodies on disk with per-endpoint TTLs, and never raises for one
venue's failure: that venue's ``status`` and ``notes`` say what went wrong.

This module's data types are the contract between the fetch layer and the report layer.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from streamer.model import Event, Instrument

Command = Literal["funding", "oi", "liquidations", "options", "basis"]
COMMANDS: tuple[Command, ...] = ("funding", "oi", "liquidations", "options", "basis")
VENUES: tuple[str, ...] = ("binance", "bybit", "okx", "deribit", "bitmex")

VenueStatus = Literal["ok", "partial", "error", "unsupported", "closed"]
"""``ok``: every call answered; ``partial``: some calls failed (notes say which); ``error``: nothing
usable (timeouts, rate limits, garbage; notes say why); ``unsupported``: the venue has no public data
for this command (e.g. options on Binance); ``closed``: the venue ceased operating (BitMEX)."""

Coverage = Literal["complete", "lower_bound", "unavailable"]
"""Liquidations only: ``complete`` when the venue publishes every liquidation in the window over REST;
``lower_bound`` when it publishes a sample or a capped page; ``unavailable`` when it has no public
liquidation history (Binance, Bybit) and no daemon was asked (``--daemon URL``)."""


class LongShortRatio(msgspec.Struct, frozen=True, kw_only=True):
    """A venue's published long/short account ratio of one symbol (not an event of the model)."""

    exchange: str
    symbol: str | None
    raw_symbol: str
    ts: int
    ratio: float
    long_fraction: float | None = None
    short_fraction: float | None = None


class VenueSnapshot(msgspec.Struct, kw_only=True):
    """One venue's part of a snapshot.

    Attributes:
        exchange: venue name.
        status: see ``VenueStatus``.
        notes: one-line human notes (an unknown symbol skipped, a call that failed and why, the
            closure of a venue, why liquidations are a lower bound...). Never contains API keys.
        events: normalized events from REST: current ``funding``, funding history (older ``funding``
            events, ``ts`` in the past), ``open_interest`` (current and history), ``ticker``,
            ``option_ticker``, ``liquidation``; whatever the command needs.
        instruments: metadata of the venue's instruments of the requested bases.
        long_short: long/short ratios where the venue publishes one (``oi`` command).
        fetched_at_ms: wall time the oldest body in use was fetched (cache included), ms since epoch.
        from_cache: whether any body came from the on-disk cache.
        stale: whether any body in use is older than its TTL (served because a refetch failed).
        coverage: liquidations only (see ``Coverage``); ``None`` for other commands.
        coverage_from_ms: liquidations only: the oldest time the venue's data reaches back to.
    """

    exchange: str
    status: VenueStatus
    notes: list[str] = msgspec.field(default_factory=list)
    events: list[Event] = msgspec.field(default_factory=list)
    instruments: list[Instrument] = msgspec.field(default_factory=list)
    long_short: list[LongShortRatio] = msgspec.field(default_factory=list)
    fetched_at_ms: int | None = None
    from_cache: bool = False
    stale: bool = False
    coverage: Coverage | None = None
    coverage_from_ms: int | None = None


class Snapshot(msgspec.Struct, kw_only=True):
    """Every requested venue's part, for one command and set of bases.

    Attributes:
        command: the CLI command it was taken for.
        bases: requested base assets (``BTC``), upper-case, XBT written BTC.
        as_of_ms: the time the analyses evaluate at (wall time at the end of the fetch, ms).
        venues: one ``VenueSnapshot`` per requested venue, in ``VENUES`` order.
        window_ms: liquidations only: the requested window.
        elapsed_s: how long the fetch took.
    """

    command: Command
    bases: list[str]
    as_of_ms: int
    venues: list[VenueSnapshot]
    window_ms: int | None = None
    elapsed_s: float = 0.0

    def ok_venues(self) -> list[VenueSnapshot]:
        """Venues with usable data (``ok`` or ``partial``)."""
        return [v for v in self.venues if v.status in ("ok", "partial")]
