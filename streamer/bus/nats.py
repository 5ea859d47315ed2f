"""NATS JetStream bus: the ``Bus`` surface across processes (``bus.backend: nats``).

Wire format: each event is one JetStream message, msgspec **msgpack** of the event Struct
(the same field names as the JSON form, ``type`` tag included), on the subject

    streamer.<type>.<exchange>.<symbol>            market events
    streamer.alert.<rule>.<exchange>.<symbol>      alerts

Tokens are sanitized (``subject_token``): a NATS token cannot hold ``.``, ``*``, ``>`` or
whitespace, so those become ``_``; a null exchange or symbol is ``_``. Unified symbols
(``BTC-USDT-PERP``, ``BTC-USD-20261225-0.625-C``) keep their dashes; an option strike's
decimal point becomes ``_`` (``0_625``).

Every message carries ``Nats-Msg-Id`` from the event's natural key (``msg_id``): the same
fact read by two ingest processes gets the same id, so JetStream keeps it once (stream
``duplicate_window``). ``recv_ts`` is never part of it.

Roles: a bus built with ``publish_market=True`` (ingest, all) sends market events to JetStream
and does NOT dispatch them locally; one built with ``consume=True`` (aggregate, all) reads
them back through a durable pull consumer, dispatches each to the sync handlers and the
bounded consumers exactly as :class:`~streamer.bus.memory.MemoryBus` does, and acks it once
every alert it caused is stored in JetStream (``AckPolicy.ALL``: one ack per processed run of
messages; what was not acked is redelivered after ``ack_wait_s``, e.g. after a ``kill -9``).

Alerts published here go to JetStream first (``<id>:<status>`` as their ``Nats-Msg-Id``) and
reach the local consumers (stdout, webhooks) once the server has stored them; an alert whose
``id:status`` the stream already holds (a redelivery after a crash) is not handed to the local
consumers again.

Publishing never waits and never raises: events go into a bounded buffer (oldest dropped
and counted when full); a task sends them in pipelined batches and retries with backoff
while the server is down; retries are safe because of the message ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
import re
from collections import deque
from collections.abc import Collection
from typing import Any

import msgspec
import nats
from nats.errors import Error as NatsError
from nats.js import api as js_api
from nats.js.errors import Error as JsError

from streamer.bus import EVENT_TYPES, Handler, Overflow, event_type
from streamer.bus.memory import MemoryBus, QueueConsumer
from streamer.model import Alert, AnyEvent, Event, Liquidation

__all__ = ["NatsBus", "NatsOptions", "msg_id", "subject_for", "subject_token"]

log = logging.getLogger("streamer.bus.nats")

_BAD = re.compile(r"[.*>\s]")
_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(AnyEvent)
MARKET_TYPES = tuple(sorted(EVENT_TYPES - {"alert"}))


def subject_token(value: object) -> str:
    """One subject token: ``None`` or empty -> ``_``; ``.``, ``*``, ``>`` and whitespace -> ``_``."""
    if value is None or value == "":
        return "_"
    return _BAD.sub("_", str(value))


def subject_for(event: Event, prefix: str = "streamer") -> str:
    """``<prefix>.<type>.<exchange>.<symbol>``, or ``<prefix>.alert.<rule>.<exchange>.<symbol>``."""
    kind = event_type(event)
    if isinstance(event, Alert):
        where = f"{subject_token(event.exchange)}.{subject_token(event.symbol)}"
        return f"{prefix}.alert.{subject_token(event.rule)}.{where}"
    sym = getattr(event, "symbol", None) or getattr(event, "raw_symbol", None)
    return f"{prefix}.{kind}.{subject_token(getattr(event, 'exchange', None))}.{subject_token(sym)}"


def msg_id(event: Event) -> str:
    """The ``Nats-Msg-Id``: the event's natural key, identical across ingest processes.

    liquidation: ``liquidation:exchange:raw_symbol:ts:side:price:qty``; other market events:
    ``type:exchange:raw_symbol:ts:<digest>``, the digest (blake2b, 8 bytes) of the event's msgpack
    with ``recv_ts`` zeroed, so two updates that share a ``ts`` but differ (two delta frames of one
    millisecond) are both kept while the same update read twice is one; alert: ``id:status``.
    """
    if isinstance(event, Alert):
        return f"{event.id}:{event.status}"
    if isinstance(event, Liquidation):
        return (f"liquidation:{event.exchange}:{event.raw_symbol}:{event.ts}:{event.side}:"
                f"{event.price!r}:{event.qty!r}")
    body = _ENCODER.encode(msgspec.structs.replace(event, recv_ts=0))  # type: ignore[type-var]
    digest = hashlib.blake2b(body, digest_size=8).hexdigest()
    return f"{event_type(event)}:{event.exchange}:{event.raw_symbol}:{event.ts}:{digest}"  # type: ignore[attr-defined]


class NatsOptions(msgspec.Struct, frozen=True, kw_only=True):
    """What the bus needs of ``bus.nats`` in the config (see ``streamer.config.NatsSettings``)."""

    url: str = "nats://127.0.0.1:4222"
    stream: str = "STREAMER"
    subject_prefix: str = "streamer"
    duplicate_window_s: float = 120.0
    max_age_s: float = 86_400.0
    durable: str = "aggregate"
    buffer_size: int = 100_000
    batch: int = 256
    ack_wait_s: float = 30.0
    max_ack_pending: int = 20_000
    publish_timeout_s: float = 5.0
    max_backoff_s: float = 5.0
    alert_history: int = 100_000


class _Out:
    """One event waiting to be stored in JetStream."""

    __slots__ = ("event", "local", "seq")

    def __init__(self, event: Event, seq: int, local: bool) -> None:
        self.event = event
        self.seq = seq
        self.local = local


class NatsBus:
    """JetStream-backed bus with the in-process ``Bus`` surface (see the module docstring).

    Args:
        options: server URL, stream, consumer and buffer settings.
        publish_market: market events given to ``publish`` go to JetStream (ingest, all).
        consume: read market events from the durable consumer and dispatch them here (aggregate, all).
    """

    def __init__(self, options: NatsOptions, *, publish_market: bool = True, consume: bool = True) -> None:
        self.options = options
        self.publish_market = publish_market
        self.consume_market = consume
        self._local = MemoryBus()
        self._out: deque[_Out] = deque()
        self._out_seq = 0
        self._acks: deque[tuple[Any, int]] = deque()
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()
        self._nc: Any = None
        self._js: Any = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self._connected = asyncio.Event()
        self._by_type_out: dict[str, int] = {}
        self._seen_alerts: set[str] = set()
        self._seen_order: deque[str] = deque()
        self.counters: dict[str, int] = {
            "published": 0, "duplicates": 0, "publish_errors": 0, "buffer_dropped": 0, "consumed": 0,
            "acked": 0, "redeliveries": 0, "decode_errors": 0, "alerts_suppressed": 0, "reconnects": 0,
            "handler_errors": 0,
        }

    # ------------------------------------------------------------------ Bus surface

    def add_handler(self, fn: Handler) -> None:
        """Register a sync handler (called for events read from JetStream, and for alerts)."""
        self._local.add_handler(fn)

    def consumer(self, name: str, maxsize: int = 10_000, overflow: Overflow = "drop_oldest", *,
                 types: Collection[str] | None = None) -> QueueConsumer:
        """A bounded local consumer (see ``bus.Bus.consumer``)."""
        return self._local.consumer(name, maxsize, overflow, types=types)

    def publish(self, event: Event) -> None:
        """Market event: to JetStream (ingest/all), not dispatched here. Alert: to JetStream; once stored,
        to the local handlers and consumers (unless its ``id:status`` was shown already)."""
        if isinstance(event, Alert):
            self._enqueue(event, local=True)
        elif self.publish_market:
            self._enqueue(event, local=False)

    def close(self) -> None:
        """Close the local consumers (they drain, then their iteration ends)."""
        self._local.close()

    # ------------------------------------------------------------------ buffer

    def _enqueue(self, event: Event, *, local: bool) -> None:
        if not local and not self.consume_market:
            kind = event_type(event)
            self._by_type_out[kind] = self._by_type_out.get(kind, 0) + 1
        self._out_seq += 1
        self._out.append(_Out(event, self._out_seq, local))
        self._drained.clear()
        if len(self._out) > self.options.buffer_size:
            dropped = self._out.popleft()
            self.counters["buffer_dropped"] += 1
            if dropped.local:
                self._deliver_alert(dropped.event)  # never stored, still shown here
        self._wake.set()

    def _remember_alert(self, key: str) -> bool:
        """False when ``key`` (``id:status``) was seen already."""
        if key in self._seen_alerts:
            return False
        self._seen_alerts.add(key)
        self._seen_order.append(key)
        if len(self._seen_order) > self.options.alert_history:
            self._seen_alerts.discard(self._seen_order.popleft())
        return True

    def _deliver_alert(self, event: Event) -> None:
        if not self._remember_alert(msg_id(event)):
            self.counters["alerts_suppressed"] += 1
            return
        self._local.publish(event)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start connecting (in the background) and the publisher/consumer tasks; returns at once."""
        self._tasks.append(asyncio.create_task(self._connector(), name="nats:connect"))
        self._tasks.append(asyncio.create_task(self._publisher(), name="nats:publish"))
        if self.consume_market:
            self._tasks.append(asyncio.create_task(self._consumer_loop(), name="nats:consume"))
        for task in self._tasks:
            task.add_done_callback(_report_task_end)

    async def wait_connected(self, timeout_s: float) -> bool:
        """True once the stream exists and the bus is connected (tests and bench)."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._connected.wait()
        except TimeoutError:
            return False
        return True

    async def flush(self, timeout_s: float) -> bool:
        """Wait until the buffer is empty (everything stored); False on timeout."""
        if self._out:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout_s):
                    await self._drained.wait()
        return not self._out

    async def aclose(self, flush_timeout_s: float = 5.0) -> None:
        """Stop consuming, send what is buffered (under a deadline), close the connection."""
        self._closing = True
        for task in self._tasks:
            if task.get_name() == "nats:consume":
                task.cancel()
        if self._out and not await self.flush(flush_timeout_s):
            log.warning("nats: %d events still unpublished at shutdown (server unreachable?)", len(self._out))
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        self._ack_ready()
        c = self.counters
        log.info("nats: published %d (%d duplicates, %d publish errors, %d dropped), consumed %d, acked %d, "
                 "%d redelivered", c["published"], c["duplicates"], c["publish_errors"], c["buffer_dropped"],
                 c["consumed"], c["acked"], c["redeliveries"])
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.flush(timeout=1)
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await self._nc.close()

    async def _connector(self) -> None:
        opts = self.options
        delay = 0.2
        while True:
            try:
                nc = await nats.connect(
                    opts.url, name="streamer", allow_reconnect=True, max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5, connect_timeout=2,
                    disconnected_cb=self._on_disconnected, reconnected_cb=self._on_reconnected,
                    error_cb=self._on_error,
                )
            except Exception as exc:  # noqa: BLE001 - any failure to connect is retried
                log.warning("nats: cannot connect to %s (%s); retrying in %.1f s", opts.url, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, opts.max_backoff_s)
                continue
            self._nc = nc
            self._js = nc.jetstream(timeout=opts.publish_timeout_s)
            while True:
                try:
                    await self._ensure_stream()
                    break
                except Exception as exc:  # noqa: BLE001 - server up but JetStream not ready yet
                    log.warning("nats: stream %s not ready (%s); retrying", opts.stream, exc)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, opts.max_backoff_s)
            if self.consume_market:
                await self._load_alert_history()
            log.info("nats: connected to %s, stream %s", opts.url, opts.stream)
            self._connected.set()
            self._wake.set()
            return

    async def _ensure_stream(self) -> None:
        opts = self.options
        config = js_api.StreamConfig(
            name=opts.stream, subjects=[f"{opts.subject_prefix}.>"], storage=js_api.StorageType.FILE,
            duplicate_window=opts.duplicate_window_s, max_age=opts.max_age_s,
        )
        try:
            await self._js.add_stream(config)
        except JsError as exc:
            if "already in use" not in str(exc) and getattr(exc, "err_code", None) != 10058:
                raise
            await self._js.update_stream(config)

    async def _load_alert_history(self) -> None:
        """Alert ids already in the stream: a redelivered event does not show its alert twice."""
        opts = self.options
        try:
            info = await self._js.stream_info(opts.stream, subjects_filter=f"{opts.subject_prefix}.alert.>")
            total: int | None = sum((info.state.subjects or {}).values())
        except Exception as exc:  # noqa: BLE001 - the count only tells when to stop reading
            log.debug("nats: alert count unavailable (%s)", exc)
            total = None
        if total == 0:
            return
        try:
            sub = await self._js.subscribe(
                f"{opts.subject_prefix}.alert.>", stream=opts.stream, ordered_consumer=True,
                deliver_policy=js_api.DeliverPolicy.ALL,
            )
        except Exception as exc:  # noqa: BLE001 - history is a best effort
            log.warning("nats: alert history unavailable (%s)", exc)
            return
        n = 0
        try:
            while True:
                try:
                    msg = await sub.next_msg(timeout=2.0)
                except Exception:  # noqa: BLE001 - timeout: no more history
                    break
                n += 1
                key = (msg.headers or {}).get("Nats-Msg-Id")
                if key:
                    self._remember_alert(key)
                if total is not None and n >= total:
                    break
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        if n:
            log.info("nats: %d alerts already in stream %s", n, opts.stream)

    async def _on_disconnected(self) -> None:
        if not self._closing:
                log.warning("nats: disconnected from %s", self.options.url)

    async def _on_reconnected(self) -> None:
        self.counters["reconnects"] += 1
        log.warning("nats: reconnected to %s", self.options.url)
        self._wake.set()

    async def _on_error(self, exc: Exception) -> None:
        log.debug("nats: %s", exc)

    # ------------------------------------------------------------------ publishing

    async def _publisher(self) -> None:
        opts = self.options
        delay = 0.1
        while True:
            if not self._out:
                self._drained.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            if self._js is None:
                await self._connected.wait()
            batch = [self._out[i] for i in range(min(opts.batch, len(self._out)))]
            try:
                acks = await self._send(batch)
            except Exception as exc:  # whatever failed, the batch stays buffered and is retried
                self.counters["publish_errors"] += 1
                log.warning("nats: publish of %d events failed (%s: %s); %d buffered, retry in %.1f s",
                            len(batch), type(exc).__name__, exc, len(self._out), delay,
                            exc_info=not isinstance(exc, (TimeoutError, NatsError, JsError, OSError)))
                await asyncio.sleep(delay * (0.5 + random.random() / 2))
                delay = min(delay * 2, opts.max_backoff_s)
                continue
            delay = 0.1
            for item, ack in zip(batch, acks, strict=True):
                # items may have been dropped from the head by overflow meanwhile
                if self._out and self._out[0] is item:
                    self._out.popleft()
                self.counters["published"] += 1
                if ack.duplicate:
                    self.counters["duplicates"] += 1
                if item.local:
                    self._deliver_alert(item.event)
            self._ack_ready()

    async def _send(self, batch: list[_Out]) -> list[Any]:
        opts = self.options
        futures = []
        try:
            async with asyncio.timeout(opts.publish_timeout_s):
                for item in batch:
                    event = item.event
                    futures.append(await self._js.publish_async(
                        subject_for(event, opts.subject_prefix), _ENCODER.encode(event),
                        headers={"Nats-Msg-Id": msg_id(event)}))
                return list(await asyncio.gather(*futures))
        finally:
            for fut in futures:
                if not fut.done():
                    fut.cancel()

    # ------------------------------------------------------------------ consuming

    async def _consumer_loop(self) -> None:
        opts = self.options
        await self._connected.wait()
        config = js_api.ConsumerConfig(
            durable_name=opts.durable, ack_policy=js_api.AckPolicy.ALL,
            filter_subjects=[f"{opts.subject_prefix}.{t}.>" for t in MARKET_TYPES],
            ack_wait=opts.ack_wait_s, max_ack_pending=opts.max_ack_pending,
            deliver_policy=js_api.DeliverPolicy.ALL,
        )
        delay = 0.2
        while True:
            try:
                try:
                    await self._js.add_consumer(opts.stream, config)
                except JsError as exc:
                    log.debug("nats: consumer %s: %s", opts.durable, exc)
                psub = await self._js.pull_subscribe_bind(opts.durable, opts.stream)
                break
            except (TimeoutError, NatsError, JsError, OSError) as exc:
                log.warning("nats: durable consumer %s not ready (%s); retrying", opts.durable, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, opts.max_backoff_s)
        while True:
            try:
                msgs = await psub.fetch(opts.batch, timeout=1.0)
            except TimeoutError:
                continue
            except (NatsError, JsError, OSError) as exc:
                log.debug("nats: fetch: %s", exc)
                await asyncio.sleep(0.2)
                continue
            for msg in msgs:
                self._on_message(msg)
            self._ack_ready()
            await asyncio.sleep(0)

    def _on_message(self, msg: Any) -> None:
        self.counters["consumed"] += 1
        try:
            if msg.metadata.num_delivered > 1:
                self.counters["redeliveries"] += 1
        except Exception:  # noqa: BLE001 - metadata is informative only
            pass
        try:
            event = _DECODER.decode(msg.data)
        except msgspec.DecodeError as exc:
            self.counters["decode_errors"] += 1
            log.warning("nats: undecodable message on %s skipped: %s", msg.subject, exc)
            self._acks.append((msg, 0))
            return
        if not isinstance(event, Alert):
            try:
                self._local.publish(event)  # handlers (rules publish alerts into the buffer), then consumers
            except Exception:  # a handler bug: logged and counted; the message is acked (no poison loop)
                self.counters["handler_errors"] += 1
                log.exception("nats: handler failed on %s (message %s)", msg.subject, msg_id(event))
        self._acks.append((msg, self._out_seq))

    def _ack_ready(self) -> None:
        """Ack every message whose alerts are stored (their outbound seq is done)."""
        done = self._out[0].seq - 1 if self._out else self._out_seq  # the buffer is FIFO
        last = None
        while self._acks and self._acks[0][1] <= done:
            last, _ = self._acks.popleft()
            self.counters["acked"] += 1
        if last is not None:  # AckPolicy.ALL: one ack covers every earlier message of this consumer
            task = asyncio.ensure_future(last.ack())
            task.add_done_callback(_ignore_result)

    # ------------------------------------------------------------------ observability

    def stats(self) -> dict[str, Any]:
        """The memory bus's counters plus ``nats``: published, duplicates, buffered, acked, redeliveries..."""
        out = self._local.stats()
        for kind, n in self._by_type_out.items():  # ingest: market events go out, none are dispatched here
            out["by_type"][kind] = out["by_type"].get(kind, 0) + n
            out["published"] += n
        out["nats"] = {
            **self.counters,
            "connected": bool(self._nc is not None and self._nc.is_connected),
            "buffered": len(self._out),
            "buffer_size": self.options.buffer_size,
            "pending_acks": len(self._acks),
        }
        return out


def _report_task_end(task: asyncio.Task[None]) -> None:
    """A bus task that ends other than by cancellation is a bug: say so at once."""
    if not task.cancelled() and task.exception() is not None:
        log.error("nats: task %s died", task.get_name(), exc_info=task.exception())


def _ignore_result(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()
