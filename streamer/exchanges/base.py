"""The adapter protocol: streams, heartbeat rules, REST calls, FrameError.

An adapter is sans-I/O (STYLE.md A1): it turns wanted streams into subscribe
frames and received frames (text or bytes plus the receive time) into
normalized events. It opens no socket, reads no clock and logs nothing.
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar

from streamer.model import Event, Instrument

T = TypeVar("T")
V = TypeVar("V")

Channel = Literal["liquidations", "funding", "ticker", "book", "open_interest", "mark", "index", "options"]
"""What a stream carries, venue-neutral.

``liquidations``; ``funding`` (with mark/index where the venue sends them together); ``ticker`` (24 h
ticker); ``book`` (best bid/ask); ``open_interest``; ``mark`` (mark price); ``index`` (index price);
``options`` (option tickers/summaries). A venue maps each to its own stream names; two channels may
map to the same venue stream (Bybit ``tickers.<SYM>`` carries funding, prices and OI) and then the
adapter subscribes it once. A channel a venue does not have raises ValueError naming it.
"""


class FrameError(Exception):
    """The exchange sent something we cannot read (the remote's fault).

    It is counted and the frame skipped; the socket stays up. Any other
    exception raised from an adapter is a bug of ours.

    Attributes:
        reason: a short, bounded label for metrics (``json``, ``schema``, ``value``...).
        detail: a human sentence naming the bad value.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Stream:
    """One wanted subscription.

    Attributes:
        channel: what it carries.
        raw_symbol: the venue's symbol, or None for the venue's all-market stream.
        market: venue sub-market that decides the endpoint (Binance ``um``/``cm``).
    """

    channel: Channel
    raw_symbol: str | None = None
    market: str = ""


@dataclass(frozen=True, slots=True)
class HeartbeatSpec:
    """A venue's keep-alive rules, for the transport.

    Attributes:
        ping_payload: application-level text ping the client must send, or None.
        ping_interval_s: how often to send it.
        ws_ping_interval_s: protocol-level ping interval (None: rely on the server's pings).
        ws_ping_timeout_s: how long to wait for a pong to a protocol ping.
        max_lifetime_s: the venue closes connections after this long (reconnect before).
        max_streams_per_connection: shard subscriptions over several sessions above this.
        max_messages_per_s: inbound message rate the venue allows from a client.
    """

    ping_payload: str | None = None
    ping_interval_s: float | None = None
    ws_ping_interval_s: float | None = 20.0
    ws_ping_timeout_s: float | None = 20.0
    max_lifetime_s: float | None = None
    max_streams_per_connection: int = 200
    max_messages_per_s: float | None = None


@dataclass(frozen=True, slots=True)
class RestCall:
    """A REST request an adapter wants made (the transport makes it).

    Attributes:
        endpoint: the adapter's own name for what the body is (passed back to ``parse_rest``).
        path: path below the venue's REST base URL.
        params: query parameters.
        weight: the venue's request weight.
        ttl_s: how long a body may be served from cache.
        market: venue sub-market that decides the base URL.
    """

    endpoint: str
    path: str
    params: dict[str, str] = field(default_factory=dict)
    weight: int = 1
    ttl_s: float | None = None
    market: str = ""


@dataclass
class AdapterStats:
    """Counters an adapter keeps while parsing (read by metrics).

    Attributes:
        frames: frames handed to ``parse``.
        events: events produced.
        control: control frames (acks, pongs, errors) that yield nothing.
        ignored: data frames of channels we do not map (depth, trades...).
        errors: FrameErrors by reason.
        unmapped: events missing fields that depend on unknown metadata, by reason.
    """

    frames: int = 0
    events: int = 0
    control: int = 0
    ignored: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    unmapped: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, object]:
        """A JSON-able copy."""
        return {
            "frames": self.frames,
            "events": self.events,
            "control": self.control,
            "ignored": self.ignored,
            "errors": dict(self.errors),
            "unmapped": dict(self.unmapped),
        }


class Adapter(Protocol):
    """What every exchange module offers (one instance per venue per process).

    Sub-markets: a venue's ``markets`` name its WebSocket endpoints / REST families (Binance
    ``um``/``cm``; Bybit ``linear``/``inverse``/``option``; OKX ``public``); ``market_of(raw)``
    says which one a symbol belongs to.
    """

    name: str
    stats: AdapterStats
    markets: tuple[str, ...]
    last_channel: str | None
    """Channel of the last data frame ``parse`` read (for per-stream liveness), else None."""

    def market_of(self, raw_symbol: str) -> str:
        """The sub-market (WebSocket endpoint) of a raw symbol."""
        ...

    def subscribe(self, streams: Sequence[Stream]) -> list[str]:
        """Subscribe request frames for these streams (one endpoint), de-duplicated, chunked per venue limits."""
        ...

    def stream_key(self, stream: Stream) -> str:
        """The venue's own name of a stream (for liveness tracking)."""
        ...

    def parse(self, frame: str | bytes, recv_ts: int) -> list[Event]:
        """Events in one received frame; [] for control frames; raises FrameError."""
        ...

    def heartbeat(self) -> HeartbeatSpec:
        """The venue's keep-alive rules."""
        ...

    def load_instruments(self, body: str | bytes, market: str = "") -> int:
        """Load a raw instrument REST body (from ``market`` when the caller knows); returns rows held."""
        ...

    def instruments(self) -> list[Instrument]:
        """Instruments known so far."""
        ...

    def instrument(self, raw_symbol: str) -> Instrument | None:
        """Metadata of one symbol, else what its name tells (no contract size then), else None."""
        ...

    def parse_rest(
        self, endpoint: str, body: str | bytes, recv_ts: int, params: Mapping[str, str] | None = None
    ) -> list[Event]:
        """Events in a REST response body; raises FrameError.

        ``params`` are the request's query parameters, for bodies that do not name their instrument
        (OKX open-interest history); the daemon passes ``RestCall.params``.
        """
        ...

    def rest_instruments(self) -> list[RestCall]:
        """Every instrument-metadata request (all markets)."""
        ...

    def rest_open_interest(self, raw_symbol: str, ttl_s: float = 30.0) -> RestCall:
        """Current open interest of one symbol."""
        ...


def read_elements(
    items: Sequence[T], handle: Callable[[T, list[Event]], None], stats: AdapterStats, noun: str = "element"
) -> list[Event]:
    """Events of each element of an array frame; a bad element is counted and skipped.

    The good elements are kept and ``errors{reason="element"}`` counts the bad ones
    (docs/decisions.md, Liquidations). A lone element's error, or an array with no
    readable element, raises that FrameError.
    """
    if len(items) == 1:
        out: list[Event] = []
        handle(items[0], out)
        return out
    out = []
    last_error: FrameError | None = None
    for item in items:
        mine: list[Event] = []
        try:
            handle(item, mine)
        except FrameError as exc:
            stats.errors["element"] += 1
            last_error = exc
            continue
        out.extend(mine)
    if last_error is not None and not out:
        raise FrameError(last_error.reason, f"no readable {noun}: {last_error.detail}")
    return out


MAX_SYMBOL_STATES = 10_000
"""Most symbols an adapter keeps per-symbol state for (marks, index, option OI...): exchange input is
untrusted, and unknown instruments must not grow memory without bound."""


def remember(cache: dict[str, V], key: str, value: V, stats: AdapterStats, limit: int = MAX_SYMBOL_STATES) -> None:
    """``cache[key] = value`` unless that would hold more than ``limit`` keys: then counted as
    ``unmapped{reason="state_cap"}`` and dropped (known keys are always updated)."""
    if key in cache or len(cache) < limit:
        cache[key] = value
    else:
        stats.unmapped["state_cap"] += 1


def guard_utf8(method: Callable[..., list[Event]]) -> Callable[..., list[Event]]:
    """Wrap an adapter's ``parse``/``parse_rest``: invalid UTF-8 in a ``bytes`` frame or body (msgspec raises
    ``UnicodeDecodeError``, not ``DecodeError``) becomes a counted ``FrameError("utf8")`` like any bad frame;
    and an event with a NaN/inf float (finite wire numbers whose product or quotient overflows, e.g. open
    interest x contract size) fails the whole frame as a counted ``FrameError("value")``."""

    @functools.wraps(method)
    def guarded(self: Any, *args: Any, **kwargs: Any) -> list[Event]:
        try:
            events = method(self, *args, **kwargs)
        except UnicodeDecodeError as exc:
            self.stats.errors["utf8"] += 1
            raise FrameError("utf8", f"invalid UTF-8 at byte {exc.start}") from None
        for ev in events:
            bad = nonfinite_field(ev)
            if bad is not None:
                self.stats.errors["value"] += 1
                raise FrameError("value", f"{type(ev).__name__}.{bad} is not finite (a number out of range)")
        return events

    return guarded


def nonfinite_field(ev: Event) -> str | None:
    """The name of ``ev``'s first float field that is NaN or infinite; None when all are finite."""
    for name in ev.__struct_fields__:
        value = getattr(ev, name)
        if value.__class__ is float and not math.isfinite(value):
            return name
    return None


def finite(value: float | None) -> float | None:
    """The value if it is a finite float, else None (``"nan"``/``"inf"`` coerce through msgspec)."""
    if value is None or not math.isfinite(value):
        return None
    return value


def positive(value: float | None) -> float | None:
    """The value if finite and > 0, else None (a price of 0 means "not given")."""
    if value is None or not math.isfinite(value) or value <= 0:
        return None
    return value


def num(text: str | float | int | None, what: str) -> float | None:
    """A number from a wire value that may be a string, ``""`` or absent.

    ``""`` and None give None; anything else that is not a finite number raises
    FrameError naming the field and the value.
    """
    if text is None or text == "":
        return None
    if isinstance(text, bool):
        raise FrameError("value", f"{what}={text!r} is not a number")
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise FrameError("value", f"{what}={_short(text)} is not a number") from None
    except OverflowError:  # an int beyond float range (a 400-digit JSON number)
        raise FrameError("value", f"{what}={_short(text)} is not finite") from None
    if not math.isfinite(value):
        raise FrameError("value", f"{what}={_short(text)} is not finite")
    return value


def _short(value: object, limit: int = 60) -> str:
    """``repr`` of a wire value, cut to ``limit`` characters (a hostile value can be megabytes)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} chars)"
