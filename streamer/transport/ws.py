"""WsSession: one long-lived WebSocket connection that connects, subscribes, keeps alive, reads,
watches liveness and reconnects, until it is cancelled.

The session knows no exchange. The daemon hands it callables (``url``, ``subscribe``,
``on_frame``) and heartbeat settings taken from an adapter's ``HeartbeatSpec``; frames go to
``on_frame`` raw, stamped with their receive time, and are parsed by the daemon.

Life of a session (``run()``)::

    connecting ──► subscribing ──► open ──► (server close, reset, stall, lifetime) ──► backoff ─┐
        ▲  │ handshake failure / timeout                                                      │
        │  └─────────────────────────────────────────────────────────────────────► backoff ───┤
        └─────────────────────────────────────────────────────────────────────────────────────┘
    cancelled (any state) ──► closed

Reconnect policy:
    - Every failure is retried; ``classify`` picks only the log level and the error counter.
    - The delay comes from the ``backoff`` factory's iterator. It is reset (a new iterator)
      only after a connection was *productive*: it delivered a frame the daemon routed to a
      declared stream (``touch``), or any frame when no stream is declared, or it delivered
      frames and lived at least ``healthy_after_s``. Exchanges sometimes accept a connection
      and then close it because of a bad subscription; resetting on open would make that a hot
      loop.
    - A proactive reconnect (shortly before ``max_lifetime_s``, or ``reconnect()``) waits no delay. It is a plain
      close-then-connect: overlapping two connections would hand the daemon duplicate frames,
      which the transport cannot de-duplicate without knowing the exchange.
    - Subscribe frames come from ``subscribe()``, called again on every connect: resubscription
      replays the daemon's stored list, never topics parsed back from frames.

Liveness (all on the monotonic clock; only receive stamps use the wall clock):
    - Protocol pings (``ws_ping_interval_s``/``ws_ping_timeout_s``) are websockets' own
      keepalive: a peer that stops answering is dropped by the library.
    - Application pings (``ping_payload`` every ``ping_interval_s``), for venues that want a
      text ``ping`` from the client.
    - Per-stream staleness: ``expect(stream, cadence_s)`` declares a stream; the daemon calls
      ``touch(stream, recv_ms)`` after routing a frame to it. A stream is stale when its age
      (since its last touch, or since the connection opened if later) exceeds
      ``stale_factor * cadence_s``. When streams with a cadence exist and all of them are
      stale, the connection is stalled and replaced. A stream with ``cadence_s=None`` (a
      liquidation feed) may stay silent forever.
    - ``stall_timeout_s``: no frame at all on the socket for that long is a stall too.

Errors raised by the daemon's own callables (``url``, ``subscribe``, ``on_frame``) are bugs:
they are not retried but propagate out of ``run()`` unchanged, so the daemon's TaskGroup stops.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import websockets.exceptions as wse
from websockets.asyncio.client import ClientConnection, connect

from streamer.transport.backoff import backoff as _backoff
from streamer.transport.backoff import classify

__all__ = ["Frame", "State", "StreamStats", "WsSession", "WsStats", "default_ws_backoff", "wall_ms"]

log = logging.getLogger("streamer.transport.ws")

Frame = str | bytes
State = Literal["connecting", "subscribing", "open", "backoff", "closed"]


def wall_ms() -> int:
    """Return the wall-clock time in integer milliseconds since the Unix epoch (UTC)."""
    return time.time_ns() // 1_000_000


def default_ws_backoff() -> Iterator[float]:
    """Return the default reconnect delays: equal jitter, 0.5 s first base, doubling, 60 s cap."""
    return _backoff(initial=0.5, factor=2.0, cap=60.0, jitter="equal")


@dataclass(frozen=True, slots=True)
class StreamStats:
    """Liveness of one declared stream.

    Attributes:
        cadence_s: Expected maximum interval between frames, seconds; None = may be silent.
        last_ms: Receive time of the last frame routed to it, ms since epoch; None = never.
        frames: Frames routed to it (``touch`` calls).
        stale: Whether its age exceeds ``stale_factor * cadence_s`` (always False without a
            cadence).
    """

    cadence_s: float | None
    last_ms: int | None
    frames: int
    stale: bool


@dataclass(frozen=True, slots=True)
class WsStats:
    """A snapshot of a session's counters (``WsSession.stats()``); counters only grow.

    Attributes:
        name: Session name.
        url: The URL of the latest connect attempt (the callable's result when ``url`` is one).
        state: ``connecting``, ``subscribing``, ``open``, ``backoff`` or ``closed``.
        attempts: Connect attempts (handshakes tried).
        connects: Handshakes that succeeded.
        reconnects: Times the session went back to connecting after a connection or an attempt
            ended (failures, server closes, stalls and proactive reconnects alike).
        frames: Frames received over all connections.
        bytes: Payload received: bytes of binary frames, characters of text frames (equal for
            ASCII JSON).
        last_frame_ms: Receive time of the last frame, ms since epoch; None before the first.
        connected_since_ms: When the current connection opened, ms since epoch; None when down.
        stalls: Connections dropped by the watchdog (all streams stale, or ``stall_timeout_s``).
        lifetime_reconnects: Proactive reconnects (``max_lifetime_s`` or ``reconnect()``).
        pings_sent: Application-level pings queued.
        sent: Frames written (subscribe frames, pings and ``send()`` frames).
        send_dropped: ``send()`` frames dropped because no connection was up or the queue was full.
        errors_retry: Disconnects and failed attempts whose cause ``classify`` calls retryable.
        errors_fatal: The same, classified fatal (retried anyway; logged as errors).
        last_error: ``"<ExceptionType>: <message>"`` of the latest failure; None before any.
        backoff_delay_s: The latest reconnect delay, seconds; None before the first.
        streams: Per declared stream, its ``StreamStats``.
        last_stall_ms: When the watchdog last declared a stall, ms since epoch; None before any.
        last_stall_quiet_s: At that moment, seconds since the latest data on a watched stream (its
            last frame, or the connection's opening if later), or since the socket's last frame for
            a ``stall_timeout_s`` stall.
    """

    name: str
    url: str
    state: State
    attempts: int
    connects: int
    reconnects: int
    frames: int
    bytes: int
    last_frame_ms: int | None
    connected_since_ms: int | None
    stalls: int
    lifetime_reconnects: int
    pings_sent: int
    sent: int
    send_dropped: int
    errors_retry: int
    errors_fatal: int
    last_error: str | None
    backoff_delay_s: float | None
    streams: dict[str, StreamStats]
    last_stall_ms: int | None = None
    last_stall_quiet_s: float | None = None


class _Stream:
    __slots__ = ("cadence_s", "declared_mono", "frames", "last_mono", "last_ms")

    def __init__(self, cadence_s: float | None) -> None:
        self.cadence_s = cadence_s
        self.declared_mono = time.monotonic()
        self.last_ms: int | None = None
        self.last_mono: float | None = None
        self.frames = 0


class _Conn:
    """State of one open connection; dropped when it closes."""

    __slots__ = (
        "closing_reason",
        "frames",
        "kick",
        "kick_reason",
        "last_frame_mono",
        "opened_mono",
        "opened_ms",
        "outbox",
        "subscribe_left",
        "touched",
        "wakeup",
        "ws",
    )

    def __init__(self, ws: ClientConnection, opened_mono: float, opened_ms: int) -> None:
        self.ws = ws
        self.opened_mono = opened_mono
        self.opened_ms = opened_ms
        self.last_frame_mono = opened_mono
        self.frames = 0
        self.touched = False
        self.outbox: deque[Frame] = deque()
        self.wakeup = asyncio.Event()
        self.subscribe_left = 0
        self.kick = asyncio.Event()
        self.kick_reason = ""
        self.closing_reason = "client closing"


class _Reconnect(Exception):
    """Raised inside a connection's TaskGroup to replace the connection on purpose."""

    def __init__(self, reason: str, *, immediate: bool, stalled: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.immediate = immediate
        self.stalled = stalled


class _CallbackFailed(Exception):
    """Carries an exception raised by one of the daemon's callables out of the TaskGroup."""

    def __init__(self, error: Exception) -> None:
        super().__init__(repr(error))
        self.error = error


@dataclass(slots=True)
class _Outcome:
    cause: str
    level: int
    immediate: bool
    productive: bool
    duration_s: float | None
    frames: int


class WsSession:
    """One long-lived WebSocket connection, reconnected forever (see the module docstring).

    Usage::

        session = WsSession(name="okx", url=url, subscribe=lambda: frames, on_frame=handle,
                            ping_payload="ping", ping_interval_s=20)
        async with asyncio.TaskGroup() as tg:
            tg.create_task(session.run(), name="ws:okx")
    """

    def __init__(
        self,
        *,
        name: str,
        url: str | Callable[[], str],
        on_frame: Callable[[Frame, int], None],
        subscribe: Callable[[], Sequence[Frame]] = tuple,
        ping_payload: Frame | None = None,
        ping_interval_s: float | None = None,
        ws_ping_interval_s: float | None = 20.0,
        ws_ping_timeout_s: float | None = 20.0,
        stall_timeout_s: float | None = None,
        max_lifetime_s: float | None = None,
        subscribe_rate_per_s: float | None = None,
        stale_factor: float = 3.0,
        healthy_after_s: float = 60.0,
        backoff: Callable[[], Iterator[float]] = default_ws_backoff,
        wall_ms: Callable[[], int] = wall_ms,
        max_frame_bytes: int | None = 16 * 1024 * 1024,
        open_timeout_s: float | None = 10.0,
        close_timeout_s: float | None = 2.0,
        max_pending_sends: int = 1000,
        compression: Literal["deflate"] | None = "deflate",
        text_as_bytes: bool = False,
    ) -> None:
        """Configure a session; nothing happens until ``run()``.

        Args:
            name: Short name used in logs and stats (e.g. ``"binance-um"``).
            url: ``ws://``/``wss://`` URL, or a callable returning one, called on every connect.
            on_frame: Called synchronously with each raw frame (``str`` for text, ``bytes`` for
                binary) and its receive time in ms since epoch. Must not block or await.
            subscribe: Returns the frames to send after each connect (re-evaluated every time).
            ping_payload: Application-level ping frame the client must send (``"ping"``,
                ``'{"op":"ping"}'``); None = none.
            ping_interval_s: Seconds between application pings (required with ``ping_payload``).
            ws_ping_interval_s: Seconds between protocol ping frames; None disables them.
            ws_ping_timeout_s: Seconds to wait for a protocol pong before dropping; None = forever.
            stall_timeout_s: Seconds without any frame after which the socket counts as stalled.
            max_lifetime_s: The venue's connection lifetime limit in seconds (Binance: 24 h). The
                connection is replaced proactively 5 % earlier, at most 300 s earlier, so the
                venue's figure can be passed as is.
            subscribe_rate_per_s: Cap on outgoing frames per second (subscribe frames, pings and
                ``send()`` alike), e.g. 10 for Binance's inbound message limit; None = no pacing.
            stale_factor: A stream is stale after ``stale_factor * cadence_s`` seconds of silence.
            healthy_after_s: A connection that delivered frames and lived this many seconds
                resets the backoff even if no declared stream was touched.
            backoff: Factory of reconnect-delay iterators (seconds); called again on reset.
            wall_ms: Receive-time clock, ms since epoch.
            max_frame_bytes: Largest accepted incoming message, bytes; None = unlimited.
            open_timeout_s: Seconds allowed for TCP, TLS and the opening handshake.
            close_timeout_s: Seconds to wait for the closing handshake when we close.
            max_pending_sends: Bound of the outgoing queue for ``send()``.
            compression: ``"deflate"`` to offer permessage-deflate, None to disable it.
            text_as_bytes: hand text frames to ``on_frame`` as their UTF-8 bytes, undecoded (msgspec
                parses bytes directly: the decode to ``str`` is work nobody needs on the hot path).

        Raises:
            ValueError: On an application ping without a positive interval, or a non-positive
                rate, factor or timeout.
        """
        if ping_payload is not None and (ping_interval_s is None or ping_interval_s <= 0):
            raise ValueError(f"WsSession {name}: ping_payload needs ping_interval_s > 0")
        if subscribe_rate_per_s is not None and subscribe_rate_per_s <= 0:
            raise ValueError(f"WsSession {name}: subscribe_rate_per_s must be > 0 or None")
        if stale_factor <= 0:
            raise ValueError(f"WsSession {name}: stale_factor must be > 0")
        for label, value in (("stall_timeout_s", stall_timeout_s), ("max_lifetime_s", max_lifetime_s)):
            if value is not None and value <= 0:
                raise ValueError(f"WsSession {name}: {label} must be > 0 seconds or None")
        self.name = name
        self._url = url
        self._on_frame = on_frame
        self._subscribe = subscribe
        self._ping_payload = ping_payload
        self._ping_interval_s = ping_interval_s
        self._ws_ping_interval_s = ws_ping_interval_s
        self._ws_ping_timeout_s = ws_ping_timeout_s
        self._stall_timeout_s = stall_timeout_s
        self._max_lifetime_s = max_lifetime_s
        self._send_interval_s = 1.0 / subscribe_rate_per_s if subscribe_rate_per_s else 0.0
        self._stale_factor = stale_factor
        self._healthy_after_s = healthy_after_s
        self._backoff_factory = backoff
        self._wall_ms = wall_ms
        self._max_frame_bytes = max_frame_bytes
        self._open_timeout_s = open_timeout_s
        self._close_timeout_s = close_timeout_s
        self._max_pending_sends = max_pending_sends
        self._compression = compression
        self._decode = not text_as_bytes

        self._streams: dict[str, _Stream] = {}
        self._conn: _Conn | None = None
        self._running = False
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []

        self._state: State = "closed"
        self._url_str = url if isinstance(url, str) else ""
        self._attempts = 0
        self._connects = 0
        self._reconnects = 0
        self._frames = 0
        self._bytes = 0
        self._last_frame_ms: int | None = None
        self._stalls = 0
        self._lifetime_reconnects = 0
        self._pings_sent = 0
        self._sent = 0
        self._send_dropped = 0
        self._errors_retry = 0
        self._errors_fatal = 0
        self._last_error: str | None = None
        self._backoff_delay_s: float | None = None
        self._last_stall_ms: int | None = None
        self._last_stall_quiet_s: float | None = None

    # ------------------------------------------------------------------ public API

    @property
    def state(self) -> State:
        """The current state (see ``WsStats.state``)."""
        return self._state

    def expect(self, stream: str, cadence_s: float | None) -> None:
        """Declare a stream and the longest interval expected between its frames.

        May be called at any time, also while running; declaring again changes the cadence.

        Args:
            stream: The daemon's name for the stream (e.g. ``"btcusdt@markPrice@1s"``).
            cadence_s: Expected maximum interval between frames, seconds; None when the stream
                may legitimately stay silent (liquidations).
        """
        if cadence_s is not None and cadence_s <= 0:
            raise ValueError(f"WsSession {self.name}: cadence of {stream!r} must be > 0 seconds or None")
        st = self._streams.get(stream)
        if st is None:
            self._streams[stream] = _Stream(cadence_s)
        else:
            st.cadence_s = cadence_s
            st.declared_mono = time.monotonic()

    def forget(self, stream: str) -> None:
        """Stop watching a stream declared with ``expect`` (no error if unknown)."""
        self._streams.pop(stream, None)

    def touch(self, stream: str, recv_ms: int) -> None:
        """Record that a frame was routed to ``stream``; call it from ``on_frame``.

        An undeclared stream is declared on the fly with no cadence.

        Args:
            stream: Stream name as given to ``expect``.
            recv_ms: The frame's receive time, ms since epoch (the value ``on_frame`` got).
        """
        st = self._streams.get(stream)
        if st is None:
            st = self._streams[stream] = _Stream(None)
        st.last_ms = recv_ms
        st.last_mono = time.monotonic()
        st.frames += 1
        conn = self._conn
        if conn is not None:
            conn.touched = True

    def send(self, frame: Frame) -> bool:
        """Queue a frame for the current connection (e.g. an answer to a server's test request).

        Never blocks. Frames queued on a connection that then drops are discarded with it.

        Args:
            frame: Text or binary frame.

        Returns:
            True when queued; False when no connection is up or the queue is full (counted in
            ``send_dropped``).
        """
        conn = self._conn
        if conn is None or len(conn.outbox) >= self._max_pending_sends:
            self._send_dropped += 1
            return False
        conn.outbox.append(frame)
        conn.wakeup.set()
        return True

    def reconnect(self, reason: str = "requested") -> bool:
        """Close the current connection and open a new one at once (no backoff delay).

        Use it after the subscription list changed in a way that frames sent with ``send()``
        cannot express.

        Returns:
            True when a connection was up to be replaced, else False.
        """
        conn = self._conn
        if conn is None:
            return False
        conn.kick_reason = reason
        conn.kick.set()
        return True

    @property
    def connected_since_ms(self) -> int | None:
        """When the current connection opened, ms since epoch; None when down (``stats()`` without the
        per-stream snapshot: the daemon reads it on every liquidation alert)."""
        conn = self._conn
        return conn.opened_ms if conn is not None else None

    def stats(self) -> WsStats:
        """Return a snapshot of the counters and the per-stream liveness."""
        now = time.monotonic()
        conn = self._conn
        streams = {
            name: StreamStats(st.cadence_s, st.last_ms, st.frames, self._is_stale(st, now, conn))
            for name, st in self._streams.items()
        }
        return WsStats(
            name=self.name,
            url=self._url_str,
            state=self._state,
            attempts=self._attempts,
            connects=self._connects,
            reconnects=self._reconnects,
            frames=self._frames,
            bytes=self._bytes,
            last_frame_ms=self._last_frame_ms,
            connected_since_ms=conn.opened_ms if conn is not None else None,
            stalls=self._stalls,
            lifetime_reconnects=self._lifetime_reconnects,
            pings_sent=self._pings_sent,
            sent=self._sent,
            send_dropped=self._send_dropped,
            errors_retry=self._errors_retry,
            errors_fatal=self._errors_fatal,
            last_error=self._last_error,
            backoff_delay_s=self._backoff_delay_s,
            streams=streams,
            last_stall_ms=self._last_stall_ms,
            last_stall_quiet_s=self._last_stall_quiet_s,
        )

    async def wait_open(self) -> None:
        """Wait until a connection is open and all its subscribe frames have been written."""
        await self._wait_for(lambda: self._state == "open")

    async def wait_data(self) -> None:
        """Wait until the current connection (or the next one) has delivered a frame."""
        await self._wait_for(lambda: self._conn is not None and self._conn.frames > 0)

    async def wait_frames(self, n: int) -> None:
        """Wait until at least ``n`` frames have been received in total."""
        await self._wait_for(lambda: self._frames >= n)

    async def wait_connects(self, n: int) -> None:
        """Wait until at least ``n`` handshakes have succeeded in total."""
        await self._wait_for(lambda: self._connects >= n)

    async def run(self) -> None:
        """Connect, subscribe, read and reconnect until cancelled.

        Raises:
            asyncio.CancelledError: When cancelled, after closing the socket (close code 1000).
            RuntimeError: When the session is already running.
            Exception: Whatever ``url``, ``subscribe`` or ``on_frame`` raised (not retried).
        """
        if self._running:
            raise RuntimeError(f"WsSession {self.name} is already running")
        self._running = True
        delays = self._backoff_factory()
        try:
            while True:
                outcome = await self._connect_and_serve()
                if outcome.productive:
                    delays = self._backoff_factory()
                delay = 0.0 if outcome.immediate else self._next_delay(delays)
                if delay < 0:  # the factory's iterator ran out: start it over
                    delays = self._backoff_factory()
                    delay = max(self._next_delay(delays), 0.0)
                self._reconnects += 1
                self._backoff_delay_s = delay
                if outcome.duration_s is None:
                    log.log(outcome.level, "ws %s: connect failed: %s; retry in %.2fs",
                            self.name, outcome.cause, delay)
                else:
                    log.log(outcome.level, "ws %s: disconnected after %.1fs and %d frames: %s; "
                            "reconnect in %.2fs", self.name, outcome.duration_s, outcome.frames,
                            outcome.cause, delay)
                self._set_state("backoff")
                await asyncio.sleep(delay)
        finally:
            self._running = False
            self._set_state("closed")

    # ------------------------------------------------------------------ internals

    @staticmethod
    def _next_delay(delays: Iterator[float]) -> float:
        return next(delays, -1.0)

    def _set_state(self, state: State) -> None:
        self._state = state
        if self._waiters:
            self._notify()

    def _notify(self) -> None:
        for pred, fut in self._waiters:
            if not fut.done() and pred():
                fut.set_result(None)

    async def _wait_for(self, pred: Callable[[], bool]) -> None:
        if pred():
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (pred, fut)
        self._waiters.append(entry)
        try:
            await fut
        finally:
            self._waiters.remove(entry)

    def _is_stale(self, st: _Stream, now: float, conn: _Conn | None) -> bool:
        if st.cadence_s is None:
            return False
        since = self._stale_since(st, conn)
        if since is None:
            return True
        return now - since > self._stale_factor * st.cadence_s

    @staticmethod
    def _stale_since(st: _Stream, conn: _Conn | None) -> float | None:
        """Monotonic time a stream's staleness counts from: its last touch, or the connection's opening."""
        since = st.last_mono
        if conn is not None:
            # a fresh connection, or a stream declared meanwhile, gets a full grace period
            grace_from = max(conn.opened_mono, st.declared_mono)
            if since is None or since < grace_from:
                since = grace_from
        return since

    async def _connect_and_serve(self) -> _Outcome:
        """Make one connect attempt and serve the connection until it ends.

        Returns how it ended; raises only for cancellation and the daemon's callback errors.
        """
        self._set_state("connecting")
        self._attempts += 1
        url = self._url if isinstance(self._url, str) else self._url()  # errors: daemon bugs
        self._url_str = url
        try:
            ws = await connect(
                url,
                open_timeout=self._open_timeout_s,
                ping_interval=self._ws_ping_interval_s,
                ping_timeout=self._ws_ping_timeout_s,
                close_timeout=self._close_timeout_s,
                max_size=self._max_frame_bytes,
                compression=self._compression,
            )
        except Exception as exc:  # noqa: BLE001 - every connect failure is retried; see classify()
            return self._failed(exc, None)
        loop = asyncio.get_running_loop()
        conn = _Conn(ws, time.monotonic(), self._wall_ms())
        self._conn = conn
        self._connects += 1
        log.info("ws %s: connected to %s (attempt %d)", self.name, url, self._attempts)
        try:
            frames = list(self._subscribe())  # errors here are the daemon's bugs: not retried
            conn.outbox.extend(frames)
            conn.subscribe_left = len(frames)
            self._set_state("subscribing" if frames else "open")
            # Children never raise into the group: the first one to fail resolves `ended` and
            # this task cancels the rest. (On 3.11 a child error inside a TaskGroup leaves the
            # parent task's cancelling() count raised, and can swallow an outside cancel.)
            ended: asyncio.Future[Exception] = loop.create_future()
            jobs: list[tuple[str, Callable[[_Conn], Awaitable[None]]]] = [
                ("reader", self._reader),
                ("writer", self._writer),
                ("watchdog", self._watchdog),
                ("lifetime", self._lifetime),
            ]
            if self._ping_payload is not None and self._ping_interval_s is not None:
                jobs.append(("pinger", self._pinger))
            async with asyncio.TaskGroup() as tg:
                tasks = [
                    tg.create_task(self._guard(job, conn, ended), name=f"ws:{self.name}:{label}")
                    for label, job in jobs
                ]
                try:
                    cause = await ended
                finally:
                    for task in tasks:
                        task.cancel()
            if isinstance(cause, _CallbackFailed):
                raise cause.error from None
            return self._ended(conn, cause)
        except asyncio.CancelledError:
            conn.closing_reason = "client shutdown"
            log.info("ws %s: closing (cancelled)", self.name)
            raise
        finally:
            self._conn = None
            await self._close(conn)

    @staticmethod
    async def _guard(
        job: Callable[[_Conn], Awaitable[None]], conn: _Conn, ended: asyncio.Future[Exception]
    ) -> None:
        try:
            await job(conn)
        except Exception as exc:  # noqa: BLE001 - handed to the parent, which decides
            if not ended.done():
                ended.set_result(exc)

    def _ended(self, conn: _Conn, first: Exception) -> _Outcome:
        """Turn the exception that ended a connection into an outcome."""
        if isinstance(first, _Reconnect):
            conn.closing_reason = first.reason[:100]
            if first.stalled:
                self._stalls += 1
                self._errors_retry += 1
                self._last_error = f"stalled: {first.reason}"
                level = logging.WARNING
            else:
                self._lifetime_reconnects += 1
                level = logging.INFO
            return self._outcome(conn, first.reason, level, immediate=first.immediate)
        return self._failed(first, conn)

    def _failed(self, exc: Exception, conn: _Conn | None) -> _Outcome:
        verdict = classify(exc)
        if verdict == "retry":
            self._errors_retry += 1
            level = logging.INFO if isinstance(exc, wse.ConnectionClosedOK) else logging.WARNING
        else:
            self._errors_fatal += 1
            level = logging.ERROR
        cause = _describe(exc)
        self._last_error = f"{type(exc).__name__}: {cause}"
        if conn is None:
            return _Outcome(cause, level, immediate=False, productive=False, duration_s=None, frames=0)
        return self._outcome(conn, cause, level, immediate=False)

    def _outcome(self, conn: _Conn, cause: str, level: int, *, immediate: bool) -> _Outcome:
        duration = time.monotonic() - conn.opened_mono
        productive = conn.frames > 0 and (
            conn.touched or not self._streams or duration >= self._healthy_after_s
        )
        return _Outcome(cause, level, immediate, productive, duration, conn.frames)

    async def _close(self, conn: _Conn) -> None:
        try:
            await conn.ws.close(1000, conn.closing_reason)
        except (OSError, wse.WebSocketException) as exc:
            log.debug("ws %s: error while closing: %r", self.name, exc)

    async def _reader(self, conn: _Conn) -> None:
        recv = conn.ws.recv
        decode = None if self._decode else False  # None: text as str, binary as bytes (websockets' default)
        on_frame = self._on_frame
        clock = self._wall_ms
        mono = time.monotonic
        while True:
            frame = await recv(decode)
            recv_ms = clock()
            conn.last_frame_mono = mono()
            conn.frames += 1
            self._frames += 1
            self._bytes += len(frame)
            self._last_frame_ms = recv_ms
            if self._waiters:
                self._notify()
            try:
                on_frame(frame, recv_ms)
            except Exception as exc:
                raise _CallbackFailed(exc) from exc

    async def _writer(self, conn: _Conn) -> None:
        ws = conn.ws
        loop = asyncio.get_running_loop()
        interval = self._send_interval_s
        next_at = 0.0
        while True:
            if not conn.outbox:
                conn.wakeup.clear()
                await conn.wakeup.wait()
                continue
            if interval:
                now = loop.time()
                if now < next_at:
                    await asyncio.sleep(next_at - now)
                next_at = max(now, next_at) + interval
            frame = conn.outbox.popleft()
            await ws.send(frame)
            self._sent += 1
            if conn.subscribe_left:
                conn.subscribe_left -= 1
                if not conn.subscribe_left:
                    self._set_state("open")

    async def _pinger(self, conn: _Conn) -> None:
        payload, interval = self._ping_payload, self._ping_interval_s
        assert payload is not None
        assert interval is not None
        while True:
            await asyncio.sleep(interval)
            conn.outbox.append(payload)
            conn.wakeup.set()
            self._pings_sent += 1

    async def _lifetime(self, conn: _Conn) -> None:
        limit = self._max_lifetime_s
        replace_after = None if limit is None else limit - min(300.0, 0.05 * limit)
        try:
            async with asyncio.timeout(replace_after):
                await conn.kick.wait()
        except TimeoutError:
            raise _Reconnect(f"lifetime {replace_after:.1f}s reached (venue limit {limit}s)",
                             immediate=True) from None
        raise _Reconnect(f"reconnect requested: {conn.kick_reason}", immediate=True)

    def _check_delay(self, conn: _Conn, now: float) -> float:
        """Seconds until the earliest moment a stall could be declared (at most 1 s), so that a
        stall is detected when it happens, not up to a polling interval later. Touches and newly
        declared streams only move that moment later; re-checking at it is always safe."""
        due: list[float] = []
        if self._stall_timeout_s is not None:
            due.append(conn.last_frame_mono + self._stall_timeout_s)
        latest = None  # all watched streams must be stale: the latest of their deadlines
        for st in self._streams.values():
            if st.cadence_s is not None:
                deadline = (self._stale_since(st, conn) or now) + self._stale_factor * st.cadence_s
                latest = deadline if latest is None else max(latest, deadline)
        if latest is not None:
            due.append(latest)
        if not due:
            return 1.0
        return min(1.0, max(0.001, min(due) - now + 0.001))

    async def _watchdog(self, conn: _Conn) -> None:
        while True:
            await asyncio.sleep(self._check_delay(conn, time.monotonic()))
            now = time.monotonic()
            if self._stall_timeout_s is not None:
                silent = now - conn.last_frame_mono
                if silent > self._stall_timeout_s:
                    self._note_stall(silent)
                    raise _Reconnect(f"no frame for {silent:.2f}s", immediate=False, stalled=True)
            watched = [st for st in self._streams.values() if st.cadence_s is not None]
            if watched and all(self._is_stale(st, now, conn) for st in watched):
                self._note_stall(now - max(self._stale_since(st, conn) or now for st in watched))
                raise _Reconnect(f"all {len(watched)} streams with a cadence are stale",
                                 immediate=False, stalled=True)

    def _note_stall(self, quiet_s: float) -> None:
        self._last_stall_ms = self._wall_ms()
        self._last_stall_quiet_s = quiet_s


def _describe(exc: BaseException) -> str:
    if isinstance(exc, wse.ConnectionClosed):
        if exc.rcvd is not None:
            reason = f" {exc.rcvd.reason!r}" if exc.rcvd.reason else ""
            return f"closed by server with code {exc.rcvd.code}{reason}"
        if exc.sent is not None:  # e.g. 1011 keepalive ping timeout, 1009 message too big
            reason = f" {exc.sent.reason!r}" if exc.sent.reason else ""
            return f"closed by client with code {exc.sent.code}{reason}; no close frame received"
        return "connection lost without a close frame"
    text = str(exc)
    return text if text else type(exc).__name__
