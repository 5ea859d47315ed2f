"""Fault plan for the simulator: what goes wrong, when, for which venue.

Tests and scenarios drive one ``FaultPlan`` per server (``SimServer.faults``); venue modules
consult it. Venues are named by key, ``"<exchange>.<product>"``: ``"binance.um"``, ``"binance.cm"``
(REST and WebSocket alike), ``"bybit.linear"``, ``"bybit.inverse"``, ``"bybit.option"`` (WebSocket
endpoints), ``"bybit.rest"``, ``"okx.public"`` (WebSocket), ``"okx.rest"``; a selector matches a key
exactly or by its exchange part (``"bybit"``), and ``None`` matches every venue.

WebSocket faults act on live connections, which venues register here (``FaultTarget``):

- ``drop_connections``: close now, cleanly (close frame) or abruptly (TCP abort, no close frame);
- ``stall``: keep sockets open and answering pings, but deliver no market data for N seconds
  (connections opened during the stall are stalled too);
- ``send_garbage``: one frame that is truncated JSON, non-JSON text, valid JSON with wrong types,
  an unknown event, or a binary frame;
- ``close_after``: a forced close after N seconds (the 24 h lifetime, quickly), optionally for
  every connection opened later as well;
- ``garbage_ratio``: from now on, a share of the market-data frames is followed by a garbage copy of
  itself (``RATIO_KINDS``: truncated, numbers made huge, numbers given the wrong type, invalid UTF-8);
- ``reject_handshakes``: the next N upgrade requests get an HTTP error instead of a WebSocket;
- ``hang_handshakes``: the next N upgrade requests get no answer for S seconds (a client with a
  shorter open timeout sees a handshake timeout), then an HTTP 503.

REST faults are queued rules, consumed first-in first-out by the first request they match
(``path`` is an ``fnmatch`` glob over the request path): an error status (429 and 418 with
``Retry-After`` seconds, 403, 500, 502, 503 …) or a slow response. ``code`` asks for a venue error
code in the body, also under HTTP 200 where the venue does that (OKX ``50011`` rate limit, Bybit
``retCode`` ``10006``). ``count=None`` keeps a rule until ``clear()``. Script a different failure
for each retry by queueing several rules.
"""

from __future__ import annotations

import asyncio
import fnmatch
import random
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol, TypeVar

__all__ = ["GARBAGE_KINDS", "RATIO_KINDS", "FaultPlan", "FaultTarget", "GarbageKind", "HandshakeFault", "RestFault"]

GarbageKind = Literal["truncated", "text", "wrong_types", "unknown_event", "binary"]
GARBAGE_KINDS: tuple[GarbageKind, ...] = ("truncated", "text", "wrong_types", "unknown_event", "binary")
RATIO_KINDS = ("truncated", "huge_numbers", "wrong_types", "invalid_utf8")
"""How ``garbage_ratio`` spoils a copy of a real data frame (``spoil``)."""

_NUMBER = re.compile(r'(?<=[:\[,])-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|"-?\d+(?:\.\d+)?"')
HUGE = "9" * 400  # far beyond float64 (1.8e308) and int64


def spoil(frame: str, kind: str) -> str | bytes:
    """A garbage copy of a real data frame: ``truncated`` (first half), ``huge_numbers`` (every number and
    numeric string 400 digits long), ``wrong_types`` (numbers become objects, numeric strings booleans) or
    ``invalid_utf8`` (bytes with ``\\xff\\xfe`` in the middle)."""
    if kind == "truncated":
        return frame[: len(frame) // 2]
    if kind == "huge_numbers":
        return _NUMBER.sub(lambda m: f'"{HUGE}"' if m.group().startswith('"') else HUGE, frame)
    if kind == "wrong_types":
        return _NUMBER.sub(lambda m: "true" if m.group().startswith('"') else "{}", frame)
    if kind == "invalid_utf8":
        raw = frame.encode()
        return raw[: len(raw) // 2] + b"\xff\xfe" + raw[len(raw) // 2:]
    raise ValueError(f"unknown spoil kind {kind!r}; choose one of {RATIO_KINDS}")


class FaultTarget(Protocol):
    """A live WebSocket connection as the fault plan sees it (venues implement this)."""

    @property
    def venue_key(self) -> str: ...

    async def close(self, code: int, reason: str) -> None:
        """Send a close frame and finish the connection."""

    def abort(self) -> None:
        """Drop the TCP connection without a close frame."""

    def inject(self, kind: GarbageKind) -> None:
        """Queue one garbage frame of ``kind`` (the venue renders it in its own framing)."""

    def close_at(self, deadline_mono: float, code: int, reason: str) -> None:
        """Close the connection at ``deadline_mono`` (``time.monotonic()``) unless it ends first."""


@dataclass(slots=True)
class RestFault:
    """One queued REST fault rule. ``status=None`` means: answer normally after ``delay_s``.

    ``code``: the venue's own error code to render in the body (``None``: the venue picks one for
    ``status``)."""

    status: int | None
    path: str = "*"
    venue: str | None = None
    remaining: int | None = 1
    retry_after_s: int | None = None
    delay_s: float = 0.0
    body: str | None = None
    code: int | None = None


@dataclass(slots=True)
class HandshakeFault:
    """Reject the next WebSocket upgrade(s) matching ``venue`` and ``path`` with ``status``,
    answered after ``delay_s`` seconds."""

    status: int
    path: str = "*"
    venue: str | None = None
    remaining: int | None = 1
    retry_after_s: int | None = None
    delay_s: float = 0.0


def venue_matches(selector: str | None, key: str) -> bool:
    """``None`` matches all; ``"binance"`` matches ``"binance.um"``; otherwise exact."""
    return selector is None or selector == key or key.startswith(selector + ".")


class FaultPlan:
    """The set of faults a running simulator applies. All methods are safe to call at any time.

    ``stats`` counts what was applied, by fault name, for tests to assert on.
    """

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._targets: set[FaultTarget] = set()
        self._rest: list[RestFault] = []
        self._handshakes: list[HandshakeFault] = []
        self._stalls: dict[str | None, float] = {}
        self._lifetimes: dict[str | None, tuple[float, int, str]] = {}
        self._ratios: dict[str | None, float] = {}
        self._rng = random.Random(0)
        self.stats: Counter[str] = Counter()

    # -- registry (venues) ----------------------------------------------------------------

    def register(self, target: FaultTarget) -> None:
        """Called by a venue when a WebSocket connection opens; applies standing lifetimes."""
        self._targets.add(target)
        for selector, (seconds, code, reason) in self._lifetimes.items():
            if venue_matches(selector, target.venue_key):
                target.close_at(self._monotonic() + seconds, code, reason)

    def unregister(self, target: FaultTarget) -> None:
        self._targets.discard(target)

    def connections(self, venue: str | None = None) -> list[FaultTarget]:
        """Live connections registered for ``venue`` (all when ``None``)."""
        return [t for t in self._targets if venue_matches(venue, t.venue_key)]

    # -- WebSocket faults -----------------------------------------------------------------

    async def drop_connections(
        self,
        venue: str | None = None,
        *,
        abrupt: bool = False,
        code: int = 1001,
        reason: str = "simulated drop",
    ) -> int:
        """Close every live connection of ``venue`` now; returns how many were dropped.

        ``abrupt=True`` aborts the TCP connection with no close frame (the client sees 1006).
        """
        targets = self.connections(venue)
        for t in targets:
            if abrupt:
                t.abort()
            else:
                await t.close(code, reason)
        self.stats["drop_abrupt" if abrupt else "drop_clean"] += len(targets)
        return len(targets)

    def stall(self, seconds: float, venue: str | None = None) -> None:
        """Deliver no data on ``venue``'s sockets for ``seconds`` (pings are still answered)."""
        self._stalls[venue] = self._monotonic() + seconds
        self.stats["stall"] += 1

    def is_stalled(self, venue_key: str) -> bool:
        """Whether data for ``venue_key`` is being withheld right now."""
        now = self._monotonic()
        return any(venue_matches(sel, venue_key) and now < until for sel, until in self._stalls.items())

    def send_garbage(self, kind: GarbageKind = "truncated", venue: str | None = None) -> int:
        """Queue one garbage frame of ``kind`` on every live connection of ``venue``."""
        if kind not in GARBAGE_KINDS:
            raise ValueError(f"unknown garbage kind {kind!r}; choose one of {GARBAGE_KINDS}")
        targets = self.connections(venue)
        for t in targets:
            t.inject(kind)
        self.stats[f"garbage_{kind}"] += len(targets)
        return len(targets)

    def garbage_ratio(self, ratio: float, venue: str | None = None) -> None:
        """From now on, follow each market-data frame of ``venue`` with a spoiled copy of itself with
        probability ``ratio`` (0 stops it); counted as ``data_frames`` and ``ratio_<kind>`` in ``stats``."""
        if not 0 <= ratio <= 1:
            raise ValueError(f"garbage_ratio: ratio ({ratio}) must be within [0, 1]")
        self._ratios[venue] = ratio

    def garbage_for(self, venue_key: str, frame: str) -> str | bytes | None:
        """Venue hook, called with every market-data frame pushed: its spoiled copy to send after it, or None."""
        if not self._ratios:
            return None
        ratio = max((r for sel, r in self._ratios.items() if venue_matches(sel, venue_key)), default=0.0)
        if ratio <= 0:
            return None
        self.stats["data_frames"] += 1
        if self._rng.random() >= ratio:
            return None
        kind = self._rng.choice(RATIO_KINDS)
        self.stats[f"ratio_{kind}"] += 1
        return spoil(frame, kind)

    def close_after(
        self,
        seconds: float,
        venue: str | None = None,
        *,
        new_connections: bool = False,
        code: int = 1000,
        reason: str = "connection lifetime reached",
    ) -> int:
        """Force a close ``seconds`` from now on live connections (and, if asked, on later ones,
        each ``seconds`` after it opens). Returns how many live connections were scheduled."""
        deadline = self._monotonic() + seconds
        targets = self.connections(venue)
        for t in targets:
            t.close_at(deadline, code, reason)
        if new_connections:
            self._lifetimes[venue] = (seconds, code, reason)
        self.stats["close_after"] += 1
        return len(targets)

    def reject_handshakes(
        self,
        status: int = 503,
        *,
        count: int | None = 1,
        venue: str | None = None,
        path: str = "*",
        retry_after_s: int | None = None,
    ) -> None:
        """Answer the next ``count`` WebSocket upgrades of ``venue`` with HTTP ``status``."""
        self._handshakes.append(HandshakeFault(status, path, venue, count, retry_after_s))

    def hang_handshakes(
        self, seconds: float, *, count: int | None = 1, venue: str | None = None, path: str = "*"
    ) -> None:
        """Leave the next ``count`` WebSocket upgrades of ``venue`` unanswered for ``seconds``
        (then HTTP 503): a client whose open timeout is shorter sees its handshake time out."""
        if seconds <= 0:
            raise ValueError(f"hang_handshakes: seconds ({seconds}) must be > 0")
        self._handshakes.append(HandshakeFault(503, path, venue, count, None, seconds))

    def pending_handshakes(self, venue: str | None = None) -> int:
        """Upgrades still to be rejected or hung for ``venue`` (``None``: all); ``count=None`` rules count 1."""
        return sum(f.remaining or 1 for f in self._handshakes
                   if venue is None or venue_matches(venue, f.venue or venue) or venue_matches(f.venue or venue, venue))

    def take_handshake_fault(self, venue_key: str, path: str) -> HandshakeFault | None:
        """Venue hook: the handshake fault for this upgrade request, if any (consumes one)."""
        fault = _take(self._handshakes, venue_key, path)
        if fault is not None:
            self.stats["handshake_hang" if fault.delay_s > 0 else "handshake_reject"] += 1
        return fault

    # -- REST faults ----------------------------------------------------------------------

    def rest_error(
        self,
        status: int,
        *,
        count: int | None = 1,
        path: str = "*",
        venue: str | None = None,
        retry_after_s: int | None = None,
        body: str | None = None,
        delay_s: float = 0.0,
        code: int | None = None,
    ) -> None:
        """Answer the next ``count`` matching requests with ``status`` (429/418 carry
        ``Retry-After: retry_after_s``; the venue renders its own error body unless ``body``, with
        its error ``code`` if given, e.g. ``rest_error(200, code=50011, venue="okx")``)."""
        if status in (418, 429) and retry_after_s is None:
            retry_after_s = 1
        self._rest.append(RestFault(status, path, venue, count, retry_after_s, delay_s, body, code))

    def rest_slow(self, delay_s: float, *, count: int | None = 1, path: str = "*", venue: str | None = None) -> None:
        """Delay the next ``count`` matching requests by ``delay_s`` seconds, then answer normally."""
        self._rest.append(RestFault(None, path, venue, count, None, delay_s, None))

    def take_rest_fault(self, venue_key: str, path: str) -> RestFault | None:
        """Venue hook: the REST fault for this request, if any (consumes one)."""
        fault = _take(self._rest, venue_key, path)
        if fault is not None:
            self.stats[f"rest_{fault.status or 'slow'}"] += 1
        return fault

    # -- housekeeping ---------------------------------------------------------------------

    def clear(self) -> None:
        """Forget every pending and standing fault (live connections keep their deadlines)."""
        self._rest.clear()
        self._handshakes.clear()
        self._stalls.clear()
        self._lifetimes.clear()
        self._ratios.clear()

    async def sleep(self, seconds: float) -> None:
        """Sleep helper for venues applying ``delay_s`` (a seam for tests)."""
        if seconds > 0:
            await asyncio.sleep(seconds)


_Rule = TypeVar("_Rule", RestFault, HandshakeFault)


def _take(rules: list[_Rule], venue_key: str, path: str) -> _Rule | None:
    for i, rule in enumerate(rules):
        if venue_matches(rule.venue, venue_key) and fnmatch.fnmatchcase(path, rule.path):
            if rule.remaining is not None:
                rule.remaining -= 1
                if rule.remaining <= 0:
                    del rules[i]
            return rule
    return None
