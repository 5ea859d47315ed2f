"""Bus Protocol: publish(event); add_handler(sync fn); consumer(name, maxsize, overflow).

The bus is the fan-out point of the flow (DESIGN.md "The flow"):

* **handlers** are sync, in-process callables (aggregators, the rule engine).
  ``publish()`` calls them synchronously, in registration order, and they must
  be O(1) per event and never await. A handler that raises is a bug of ours:
  the exception propagates out of ``publish()``.
* **consumers** are async readers (sinks, SSE clients, the recorder, the NATS
  publisher). Each one owns a bounded queue with a named overflow policy;
  ``publish()`` never waits for a consumer, and every event a full queue
  refuses is counted (STYLE habit 8: the bus never blocks ingest).

Backends: :class:`streamer.bus.memory.MemoryBus` (embedded, default) and
:class:`streamer.bus.nats.NatsBus` (NATS JetStream, the same surface across
processes: ``streamer run --role``; docs/nats.md).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Collection
from typing import Any, Literal, Protocol, get_args

from streamer.model import AnyEvent, Event

__all__ = [
    "EVENT_TYPES",
    "OVERFLOW_POLICIES",
    "Bus",
    "Consumer",
    "ConsumerClosedError",
    "Handler",
    "Overflow",
    "event_type",
]

Overflow = Literal["drop_oldest", "drop_newest"]
"""What a full consumer queue does with one more event.

``drop_oldest``: discard the oldest queued event, enqueue the new one (a live
view: SSE clients, dashboards, where the newest state matters most).
``drop_newest``: keep what is queued and discard the new event (the start of a
burst matters most: the first alerts of an episode). Either way the discarded
event is counted in ``dropped``, and later events are accepted again as soon
as there is room.
"""

OVERFLOW_POLICIES: tuple[str, ...] = get_args(Overflow)

Handler = Callable[[Event], object]
"""A sync in-process handler; its return value is ignored."""

EVENT_TYPES: frozenset[str] = frozenset(cls.__struct_config__.tag for cls in get_args(AnyEvent))
"""Every event ``type`` of the contract (``liquidation``, ``funding``, ..., ``alert``)."""

_TAGS: dict[type, str] = {}


def event_type(event: Event) -> str:
    """The ``type`` tag of an event (``liquidation``, ``alert``, ...)."""
    cls = type(event)
    tag = _TAGS.get(cls)
    if tag is None:
        tag = str(cls.__struct_config__.tag)
        _TAGS[cls] = tag
    return tag


class ConsumerClosedError(Exception):
    """``get()`` on a consumer that was closed and has nothing left to deliver."""


class Consumer(Protocol):
    """One async reader of the bus: ``async for event in consumer`` or ``await consumer.get()``.

    Iteration ends (``StopAsyncIteration``) once the consumer is closed and its
    queue has been drained, so a sink's loop finishes by itself at shutdown.
    """

    @property
    def name(self) -> str:
        """Unique name of the consumer (a bounded metrics label)."""
        ...

    @property
    def maxsize(self) -> int:
        """Queue bound (events)."""
        ...

    @property
    def overflow(self) -> Overflow:
        """Overflow policy."""
        ...

    @property
    def qsize(self) -> int:
        """Events queued now."""
        ...

    @property
    def dropped(self) -> int:
        """Events discarded so far by the overflow policy (or offered after close)."""
        ...

    async def get(self) -> Event:
        """The next event; waits while the queue is empty.

        Raises:
            ConsumerClosedError: the consumer is closed and drained.
        """
        ...

    def close(self) -> None:
        """Accept no more events; readers drain what is queued, then iteration ends."""
        ...

    def __aiter__(self) -> AsyncIterator[Event]:
        """``async for event in consumer``."""
        ...


class Bus(Protocol):
    """The event bus (see the module docstring for the dispatch contract)."""

    def publish(self, event: Event) -> None:
        """Dispatch one event to every handler, then offer it to every consumer; never waits."""
        ...

    def add_handler(self, fn: Handler) -> None:
        """Register a sync handler; handlers run in registration order."""
        ...

    def consumer(
        self,
        name: str,
        maxsize: int = 10_000,
        overflow: Overflow = "drop_oldest",
        *,
        types: Collection[str] | None = None,
    ) -> Consumer:
        """Register an async consumer with a bounded queue.

        Args:
            name: unique consumer name.
            maxsize: queue bound in events (>= 1).
            overflow: ``drop_oldest`` or ``drop_newest``.
            types: event types this consumer wants (e.g. ``{"alert"}``); None means all.
                Filtered events are not queued and not counted as dropped.
        """
        ...

    def close(self) -> None:
        """Close every consumer (they drain, then their iteration ends)."""
        ...

    def stats(self) -> dict[str, Any]:
        """Counters for metrics: published, per-type counts, per-consumer depth/maxsize/dropped."""
        ...
