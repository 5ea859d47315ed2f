"""Instrument metadata at start-up: fetched over REST, cached on disk so a restart works when REST is down.

The raw instrument bodies (exactly what the venue returned) are kept under
``<state_dir>/instruments/<exchange>/<market>_<endpoint>[_<params hash>].json``. Paginated
venues (Bybit) expose ``next_instruments_call(body)``; every page is fetched and cached. On start-up
and on every refresh each body is fetched; on success it replaces the cached
copy (atomically), on failure the cached copy is loaded instead and the
report says so, with its age.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from streamer.exchanges.base import Adapter, FrameError, RestCall

log = logging.getLogger("streamer.instruments")

Fetch = Callable[[RestCall], Awaitable[bytes]]
MAX_PAGES = 200
"""Most follow-up pages loaded per load (Bybit paginates instruments 500-1000 rows a page)."""


@dataclass
class LoadReport:
    """What one load did.

    Attributes:
        fetched: bodies fetched over REST.
        from_cache: bodies read from the disk cache because REST failed, with their age in seconds.
        failed: bodies neither fetched nor cached, with the reason.
        instruments: instruments the adapter knows afterwards.
    """

    fetched: list[str] = field(default_factory=list)
    from_cache: dict[str, float] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    instruments: int = 0


class InstrumentStore:
    """Loads one adapter's metadata from REST with a disk cache behind it."""

    def __init__(self, cache_dir: Path | str) -> None:
        self.cache_dir = Path(cache_dir).expanduser()
        self.loads = 0
        self.cache_reads = 0
        self.failures = 0

    def _path(self, exchange: str, call: RestCall) -> Path:
        market = call.market or "main"
        suffix = ""
        if call.params:
            text = "&".join(f"{k}={v}" for k, v in sorted(call.params.items()))
            suffix = "_" + hashlib.sha1(text.encode()).hexdigest()[:10]
        return self.cache_dir / "instruments" / exchange / f"{market}_{call.endpoint}{suffix}.json"

    def _write(self, path: Path, body: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(body)
        os.replace(tmp, path)

    async def load(self, adapter: Adapter, calls: Sequence[RestCall], fetch: Fetch,
                   on_body: Callable[[RestCall, bytes], None] | None = None) -> LoadReport:
        """Fetch every call's body and load it into the adapter; fall back to the cache per body.

        ``on_body(call, body)`` sees every body just before the adapter loads it (the recorder)."""
        report = LoadReport()
        self.loads += 1
        next_page = getattr(adapter, "next_instruments_call", None)
        queue = list(calls)
        pages = 0
        while queue:
            call = queue.pop(0)
            label = f"{call.market}:{call.endpoint}" if call.market else call.endpoint
            if call.params:
                label += "?" + "&".join(f"{k}={v}" for k, v in sorted(call.params.items()))
            path = self._path(adapter.name, call)
            body: bytes | None = None
            try:
                body = await fetch(call)
                if on_body is not None:
                    on_body(call, body)
                adapter.load_instruments(body, market=call.market)
            except Exception as exc:  # noqa: BLE001 - any failure (HTTP, timeout, bad body) falls back to the cache
                body = None
                reason = f"{type(exc).__name__}: {exc}"
                if path.exists():
                    try:
                        body = path.read_bytes()
                        if on_body is not None:
                            on_body(call, body)
                        adapter.load_instruments(body, market=call.market)
                    except FrameError as cache_exc:
                        report.failed[label] = f"{reason}; cache unreadable: {cache_exc}"
                        self.failures += 1
                        continue
                    age = time.time() - path.stat().st_mtime
                    report.from_cache[label] = age
                    self.cache_reads += 1
                    log.warning("%s %s: REST failed (%s); using cached copy %.0f s old", adapter.name, label,
                                reason, age)
                else:
                    report.failed[label] = reason
                    self.failures += 1
                    log.error("%s %s: REST failed (%s) and no cached copy in %s", adapter.name, label, reason,
                              path.parent)
                    continue
            else:
                self._write(path, body)
                report.fetched.append(label)
            if next_page is not None and body is not None and pages < MAX_PAGES:
                try:
                    follow = next_page(body)
                except FrameError:
                    follow = None
                if follow is not None:
                    pages += 1
                    queue.insert(0, follow)
        report.instruments = len(adapter.instruments())
        return report
