"""Alert sinks: StdoutSink (JSON lines); the interface webhook sinks will share.

A sink is an async consumer loop: ``await sink.run(consumer)`` reads events
from a bus consumer (any async iterable of events) until it ends or the task
is cancelled, delivers the alerts and skips anything else. It keeps counters
for metrics in ``stats()``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterable
from typing import BinaryIO, Protocol

from streamer.model import Alert, Event, encode_event

__all__ = ["Sink", "StdoutSink"]

log = logging.getLogger("streamer.alerts.sinks")

_ERROR_LOG_SAMPLES = 5


class Sink(Protocol):
    """One alert destination."""

    @property
    def name(self) -> str:
        """Bounded metrics label (``stdout``, ``webhook:<name>``)."""
        ...

    async def run(self, consumer: AsyncIterable[Event]) -> None:
        """Deliver every alert read from ``consumer`` until it ends (or the task is cancelled)."""
        ...

    def stats(self) -> dict[str, int]:
        """Counters: at least ``written`` and ``errors``."""
        ...


class StdoutSink:
    """Each alert as one JSON line (``model.encode_event`` + ``\\n``), flushed at once.

    Args:
        stream: binary stream to write to (default ``sys.stdout.buffer``).

    A failed write (closed pipe, full disk) is counted in ``errors`` and the
    loop goes on with the next alert; the first few failures are logged.
    Non-alert events are counted in ``skipped``.
    """

    name = "stdout"

    def __init__(self, stream: BinaryIO | None = None) -> None:
        self._stream: BinaryIO = stream if stream is not None else sys.stdout.buffer
        self.written = 0
        self.errors = 0
        self.skipped = 0

    def write(self, alert: Alert) -> bool:
        """Write and flush one alert line; False (and counted) when the stream refused it."""
        line = encode_event(alert) + b"\n"
        try:
            self._stream.write(line)
            self._stream.flush()
        except (OSError, ValueError) as exc:  # ValueError: write to a closed file
            self.errors += 1
            if self.errors <= _ERROR_LOG_SAMPLES:
                log.warning("stdout sink: alert %s not written: %s", alert.id, exc)
            return False
        self.written += 1
        return True

    async def run(self, consumer: AsyncIterable[Event]) -> None:
        """Write every alert from ``consumer`` until it ends (bus closed and drained)."""
        async for event in consumer:
            if isinstance(event, Alert):
                self.write(event)
            else:
                self.skipped += 1

    def stats(self) -> dict[str, int]:
        """written, errors, skipped."""
        return {"written": self.written, "errors": self.errors, "skipped": self.skipped}
