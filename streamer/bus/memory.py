"""In-memory bus: synchronous dispatch to handlers + bounded per-consumer queues, overflow counted.

Dispatch order for one ``publish(event)``:

1. every handler, in registration order (an exception propagates: it is a bug);
2. every consumer whose ``types`` filter admits the event, in registration order,
   without awaiting (a full queue applies its overflow policy and counts the drop).

A handler may itself publish (the rule engine publishes the alerts it raises).
Such a nested ``publish()`` is queued and dispatched right after the current
event has reached every handler and consumer, so each consumer sees events in
causal order: the liquidation first, then the alert it triggered.

All of this runs on the event loop's thread; ``publish()`` is not thread-safe.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Collection
from typing import Any

from streamer.bus import (
    EVENT_TYPES,
    OVERFLOW_POLICIES,
    ConsumerClosedError,
    Handler,
    Overflow,
    event_type,
)
from streamer.model import Event

__all__ = ["MemoryBus", "QueueConsumer"]


class QueueConsumer:
    """A bounded FIFO of events read by one async task (implements ``bus.Consumer``).

    ``offer()`` is the bus side (sync, never waits); ``get()`` and ``async for``
    are the reader side.
    """

    __slots__ = (
        "_closed",
        "_delivered",
        "_dropped",
        "_items",
        "_maxsize",
        "_name",
        "_overflow",
        "_types",
        "_waiters",
    )

    def __init__(
        self,
        name: str,
        maxsize: int,
        overflow: Overflow,
        types: frozenset[str] | None = None,
    ) -> None:
        if maxsize < 1:
            raise ValueError(f"consumer {name!r}: maxsize must be >= 1, got {maxsize}")
        if overflow not in OVERFLOW_POLICIES:
            raise ValueError(f"consumer {name!r}: overflow must be one of {OVERFLOW_POLICIES}, got {overflow!r}")
        self._name = name
        self._maxsize = maxsize
        self._overflow: Overflow = overflow
        self._types = types
        self._items: deque[Event] = deque()
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._dropped = 0
        self._delivered = 0
        self._closed = False

    # ------------------------------------------------------------------ properties

    @property
    def name(self) -> str:
        """Unique consumer name."""
        return self._name

    @property
    def maxsize(self) -> int:
        """Queue bound in events."""
        return self._maxsize

    @property
    def overflow(self) -> Overflow:
        """Overflow policy."""
        return self._overflow

    @property
    def types(self) -> frozenset[str] | None:
        """Event types admitted, None for all."""
        return self._types

    @property
    def qsize(self) -> int:
        """Events queued now."""
        return len(self._items)

    @property
    def dropped(self) -> int:
        """Events discarded by the overflow policy, plus any offered after ``close()``."""
        return self._dropped

    @property
    def delivered(self) -> int:
        """Events handed to the reader so far."""
        return self._delivered

    @property
    def closed(self) -> bool:
        """True once ``close()`` was called."""
        return self._closed

    def wants(self, type_name: str) -> bool:
        """Whether the ``types`` filter admits events of this type."""
        return self._types is None or type_name in self._types

    # ------------------------------------------------------------------ bus side

    def offer(self, event: Event) -> bool:
        """Enqueue without waiting; False when this event (not another) was dropped.

        A full queue under ``drop_oldest`` discards its oldest event and accepts
        this one (returns True, ``dropped`` + 1); under ``drop_newest`` it keeps
        its content and refuses this one (returns False, ``dropped`` + 1).
        """
        if self._closed:
            self._dropped += 1
            return False
        if len(self._items) >= self._maxsize:
            self._dropped += 1
            if self._overflow == "drop_newest":
                return False
            self._items.popleft()
        self._items.append(event)
        self._wake_one()
        return True

    def close(self) -> None:
        """Accept no more events; readers drain the queue, then iteration ends."""
        self._closed = True
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    # ------------------------------------------------------------------ reader side

    def get_nowait(self) -> Event | None:
        """The next queued event, or None when the queue is empty."""
        if not self._items:
            return None
        self._delivered += 1
        return self._items.popleft()

    async def get(self) -> Event:
        """The next event; waits while the queue is empty.

        Raises:
            ConsumerClosedError: closed and drained.
        """
        while not self._items:
            if self._closed:
                raise ConsumerClosedError(self._name)
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                waiter.cancel()
                try:
                    self._waiters.remove(waiter)
                except ValueError:
                    pass
                # We were woken and then cancelled: pass the wake-up on.
                if self._items and not waiter.cancelled():
                    self._wake_one()
                raise
        self._delivered += 1
        return self._items.popleft()

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        try:
            return await self.get()
        except ConsumerClosedError:
            raise StopAsyncIteration from None

    def stats(self) -> dict[str, Any]:
        """depth, maxsize, overflow, dropped, delivered, closed, types."""
        return {
            "depth": len(self._items),
            "maxsize": self._maxsize,
            "overflow": self._overflow,
            "dropped": self._dropped,
            "delivered": self._delivered,
            "closed": self._closed,
            "types": None if self._types is None else sorted(self._types),
        }


class MemoryBus:
    """The embedded bus (implements ``bus.Bus``; see the module docstring for the order)."""

    def __init__(self) -> None:
        self._handlers: list[Handler] = []
        self._consumers: dict[str, QueueConsumer] = {}
        self._consumer_list: list[QueueConsumer] = []
        self._published = 0
        self._by_type: dict[str, int] = {}
        self._pending: deque[Event] = deque()
        self._dispatching = False
        # per event class: its type name and the consumers that want it (cleared when one is added)
        self._routes: dict[type, tuple[str, tuple[QueueConsumer, ...]]] = {}

    def add_handler(self, fn: Handler) -> None:
        """Register a sync handler (called in registration order)."""
        self._handlers.append(fn)

    def consumer(
        self,
        name: str,
        maxsize: int = 10_000,
        overflow: Overflow = "drop_oldest",
        *,
        types: Collection[str] | None = None,
    ) -> QueueConsumer:
        """Register a consumer (see ``bus.Bus.consumer``).

        Raises:
            ValueError: duplicate name, maxsize < 1, unknown overflow policy or event type.
        """
        if name in self._consumers:
            raise ValueError(f"consumer {name!r} already exists")
        wanted: frozenset[str] | None = None
        if types is not None:
            wanted = frozenset(types)
            unknown = wanted - EVENT_TYPES
            if unknown:
                raise ValueError(
                    f"consumer {name!r}: unknown event types {sorted(unknown)}; known: {sorted(EVENT_TYPES)}"
                )
        cons = QueueConsumer(name, maxsize, overflow, wanted)
        self._consumers[name] = cons
        self._consumer_list.append(cons)
        self._routes.clear()
        return cons

    def publish(self, event: Event) -> None:
        """Dispatch to handlers, then offer to consumers; nested publishes run after this one."""
        if self._dispatching:
            self._pending.append(event)
            return
        self._dispatching = True
        try:
            self._dispatch(event)
            pending = self._pending
            while pending:
                self._dispatch(pending.popleft())
        finally:
            self._dispatching = False
            self._pending.clear()

    def _dispatch(self, event: Event) -> None:
        cls = type(event)
        route = self._routes.get(cls)
        if route is None:
            kind = event_type(event)
            route = self._routes[cls] = (kind, tuple(c for c in self._consumer_list if c.wants(kind)))
        kind, consumers = route
        self._published += 1
        by_type = self._by_type
        by_type[kind] = by_type.get(kind, 0) + 1
        for fn in self._handlers:
            fn(event)
        if consumers:
            for cons in consumers:
                cons.offer(event)

    def close(self) -> None:
        """Close every consumer."""
        for cons in self._consumer_list:
            cons.close()

    def stats(self) -> dict[str, Any]:
        """``published``, ``by_type`` {type: n}, ``handlers`` n, ``consumers`` {name: consumer stats}."""
        return {
            "published": self._published,
            "by_type": dict(sorted(self._by_type.items())),
            "handlers": len(self._handlers),
            "consumers": {c.name: c.stats() for c in self._consumer_list},
        }
