"""Durable alert outbox: an embedded SQLite file (WAL) that holds every alert per sink until it is delivered.

Flow (DESIGN.md "Alerts", issue 9 "Sinks"): a sink writes an alert here *before* any delivery attempt
(``put``), a delivery loop reads what is due (``due``), and marks each entry ``delivered`` or
``failed`` (retry later, capped exponential backoff with jitter, or the receiver's ``Retry-After``).
A restart reopens the same file and delivers what is left, in the same order.

Durability (why WAL + ``synchronous=FULL``)
    Every write is one transaction, committed before the call returns. In WAL mode a committed
    transaction sits in the ``-wal`` file; ``kill -9`` of the process cannot lose it (the pages are
    in the OS page cache already) and cannot corrupt the database (WAL is append-only and
    checksummed; a torn tail is discarded at the next open). ``synchronous=NORMAL`` would therefore
    suffice for ``kill -9``; we default to ``FULL`` so that a *power loss or kernel crash* does not
    roll back the last alerts either: ``FULL`` fsyncs the WAL at every commit. Alerts are rare (a
    few per minute at worst), so one fsync per alert costs nothing that matters, and it happens on
    the outbox's own thread, never on the event loop. Pass ``synchronous="NORMAL"`` to trade that
    for throughput.

Threading (one worker thread, not ``asyncio.to_thread``)
    The outbox owns one SQLite connection and one single-thread executor. The sync methods
    (``put``, ``due``, ``delivered``, ``failed``, ``seen``...) are thread-safe (a lock around the
    connection) and may be called directly (tests, scripts, startup). Async callers use the ``a*``
    twins (``aput``, ``adue``, ...), which run the same method on the outbox thread. One thread
    rather than ``asyncio.to_thread``: writes are serialized in submission order (an alert's
    ``firing`` is committed before its ``resolved``), the connection never hops threads, and the
    default executor, shared with DNS lookups, is never filled with fsyncs. ``stats()`` reads
    counters cached in memory and never touches the database, so metrics scrapes never block.

Idempotency
    ``put`` is idempotent on (sink, alert id, status): the pair is recorded in a ``seen`` table that
    outlives delivery (``prune`` removes delivered entries, never ``seen`` rows), so a daemon that
    restarts and replays the same episode does not enqueue it twice; ``seen(alert_id, status)``
    answers the same question for the rule engine.

Order
    ``due`` returns entries oldest first, and never an entry while an older entry of the same alert
    id is still pending for that sink: a ``resolved`` is never delivered before its ``firing``.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal, ParamSpec, TypeVar

import msgspec

from streamer.model import Alert, encode_event
from streamer.transport.backoff import backoff

__all__ = ["DEFAULT_SINK", "Entry", "Outbox"]

DEFAULT_SINK = "default"
MAX_RETRY_AFTER_S = 3600.0
"""A ``Retry-After`` longer than this is clamped (a broken header must not park an alert for a day)."""

_P = ParamSpec("_P")
_T = TypeVar("_T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    sink            TEXT    NOT NULL,
    alert_id        TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    body            BLOB    NOT NULL,
    created_ms      INTEGER NOT NULL,
    next_attempt_ms INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    state           TEXT    NOT NULL DEFAULT 'pending',
    last_error      TEXT,
    done_ms         INTEGER,
    UNIQUE (sink, alert_id, status)
);
CREATE INDEX IF NOT EXISTS entries_pending ON entries (sink, state, seq);
CREATE INDEX IF NOT EXISTS entries_by_id ON entries (sink, alert_id, seq);
CREATE TABLE IF NOT EXISTS seen (
    sink     TEXT    NOT NULL,
    alert_id TEXT    NOT NULL,
    status   TEXT    NOT NULL,
    first_ms INTEGER NOT NULL,
    PRIMARY KEY (sink, alert_id, status)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS counters (
    sink      TEXT NOT NULL,
    name      TEXT NOT NULL,
    value     INTEGER NOT NULL,
    PRIMARY KEY (sink, name)
) WITHOUT ROWID;
"""


class Entry(msgspec.Struct, frozen=True, kw_only=True):
    """One pending alert for one sink.

    Attributes:
        seq: insertion order (global, increasing).
        sink: the sink's key.
        alert_id, status: the alert's id and status.
        body: the exact JSON bytes to deliver (``model.encode_event``); identical on every retry.
        created_ms: when it was put, ms since epoch.
        attempts: failed attempts so far.
        next_attempt_ms: not due before this time, ms since epoch.
        last_error: reason of the last failure, or None.
    """

    seq: int
    sink: str
    alert_id: str
    status: str
    body: bytes
    created_ms: int
    attempts: int
    next_attempt_ms: int
    last_error: str | None = None


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Outbox:
    """The on-disk outbox (see the module docstring).

    Args:
        path: SQLite file; created (with its directory) when missing.
        initial_backoff_s: base of the first retry delay.
        max_backoff_s: cap of the retry delay (``failed`` may lower it per call).
        synchronous: ``"FULL"`` (default, survives power loss) or ``"NORMAL"`` (survives ``kill -9``).
        rng: randomness for the jitter (seeded in tests).
        clock_ms: wall clock in ms since epoch (persisted times must survive a restart).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        initial_backoff_s: float = 1.0,
        max_backoff_s: float = 300.0,
        synchronous: Literal["FULL", "NORMAL"] = "FULL",
        rng: random.Random | None = None,
        clock_ms: Callable[[], int] = _now_ms,
    ) -> None:
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"outbox: synchronous must be FULL or NORMAL, got {synchronous!r}")
        if not (initial_backoff_s > 0 and max_backoff_s > 0):
            raise ValueError("outbox: initial_backoff_s and max_backoff_s must be > 0")
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.initial_backoff_s = initial_backoff_s
        self.max_backoff_s = max_backoff_s
        self._rng = rng or random.Random()
        self._clock_ms = clock_ms
        self._lock = threading.Lock()
        # isolation_level=None: autocommit; every write below is one explicit transaction.
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={synchronous}")
        self._db.executescript(_SCHEMA)
        self._executor: ThreadPoolExecutor | None = ThreadPoolExecutor(1, thread_name_prefix="outbox")
        self._cache: dict[str, dict[str, Any]] = {}
        self._closed = False
        with self._lock:
            for (sink,) in self._db.execute("SELECT DISTINCT sink FROM entries UNION SELECT sink FROM counters"):
                self._refresh(sink)

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Stop the worker thread (after queued calls) and close the file. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        with self._lock:
            self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ writes

    def put(self, alert: Alert, *, sink: str = DEFAULT_SINK) -> bool:
        """Enqueue ``alert`` for ``sink``, committed before return; no-op if (sink, id, status) was ever put.

        Returns:
            True when newly enqueued, False when it was seen before (delivered or not).
        """
        body = encode_event(alert)
        now = self._clock_ms()
        with self._lock, self._tx():
            cur = self._db.execute(
                "INSERT OR IGNORE INTO seen (sink, alert_id, status, first_ms) VALUES (?, ?, ?, ?)",
                (sink, alert.id, alert.status, now),
            )
            if cur.rowcount == 0:
                return False
            self._db.execute(
                "INSERT OR IGNORE INTO entries (sink, alert_id, status, body, created_ms, next_attempt_ms)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (sink, alert.id, alert.status, body, now, now),
            )
            self._bump(sink, "enqueued")
            self._refresh(sink)
        return True

    def delivered(self, entry: Entry) -> None:
        """Mark ``entry`` delivered (it leaves the queue; ``seen`` keeps its key)."""
        with self._lock, self._tx():
            cur = self._db.execute(
                "UPDATE entries SET state = 'delivered', done_ms = ? WHERE seq = ? AND state = 'pending'",
                (self._clock_ms(), entry.seq),
            )
            if cur.rowcount:
                self._bump(entry.sink, "delivered")
            self._refresh(entry.sink)

    def failed(
        self,
        entry: Entry,
        retry_after_s: float | None = None,
        *,
        reason: str = "error",
        max_backoff_s: float | None = None,
        dead: bool = False,
    ) -> float:
        """Record a failed attempt and schedule the next one.

        Args:
            entry: the entry that failed.
            retry_after_s: the receiver's ``Retry-After`` in seconds (clamped to 0..1 h); None to back off:
                attempt n (0-based) waits the n-th delay of ``transport.backoff`` (equal jitter, factor 2,
                ``initial_backoff_s``, capped at ``max_backoff_s``).
            reason: short failure reason, stored as ``last_error`` and counted.
            max_backoff_s: cap for this call (default: the outbox's).
            dead: give up on this entry (it leaves the queue as ``dead``; counted, kept for inspection).

        Returns:
            The delay in seconds until the next attempt (0 when dead).
        """
        if dead:
            delay = 0.0
        elif retry_after_s is not None:
            delay = min(max(0.0, float(retry_after_s)), MAX_RETRY_AFTER_S)
        else:
            delay = self.backoff_delay(entry.attempts, max_backoff_s)
        now = self._clock_ms()
        with self._lock, self._tx():
            self._db.execute(
                "UPDATE entries SET attempts = attempts + 1, next_attempt_ms = ?, last_error = ?,"
                " state = CASE WHEN ? THEN 'dead' ELSE state END, done_ms = CASE WHEN ? THEN ? ELSE done_ms END"
                " WHERE seq = ? AND state = 'pending'",
                (now + round(delay * 1000), reason, dead, dead, now, entry.seq),
            )
            self._bump(entry.sink, "failed")
            if dead:
                self._bump(entry.sink, "dead")
            self._refresh(entry.sink)
        return delay

    def backoff_delay(self, attempts: int, max_backoff_s: float | None = None) -> float:
        """The jittered delay before retry number ``attempts + 1`` (``transport.backoff``'s n-th delay)."""
        cap = max_backoff_s if max_backoff_s is not None else self.max_backoff_s
        gen = backoff(initial=min(self.initial_backoff_s, cap), factor=2.0, cap=cap, rng=self._rng)
        # after ~64 doublings every base is the cap: no need to walk further
        return next(itertools.islice(gen, min(attempts, 64), None))

    def prune(self, older_than_s: float) -> int:
        """Delete delivered/dead entries finished more than ``older_than_s`` ago; ``seen`` rows stay."""
        cutoff = self._clock_ms() - round(older_than_s * 1000)
        with self._lock, self._tx():
            cur = self._db.execute("DELETE FROM entries WHERE state != 'pending' AND done_ms < ?", (cutoff,))
            return cur.rowcount

    # ------------------------------------------------------------------ reads

    def due(self, sink: str = DEFAULT_SINK, now: float | None = None, limit: int = 100) -> list[Entry]:
        """Pending entries of ``sink`` whose next attempt is at or before ``now`` (unix s), oldest first.

        An entry is left out while an older entry with the same alert id is pending for the sink.
        """
        now_ms = self._clock_ms() if now is None else round(now * 1000)
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, sink, alert_id, status, body, created_ms, attempts, next_attempt_ms, last_error"
                " FROM entries AS e WHERE sink = ? AND state = 'pending' AND next_attempt_ms <= ?"
                " AND NOT EXISTS (SELECT 1 FROM entries AS o WHERE o.sink = e.sink AND o.alert_id = e.alert_id"
                "                 AND o.state = 'pending' AND o.seq < e.seq)"
                " ORDER BY seq LIMIT ?",
                (sink, now_ms, limit),
            ).fetchall()
        return [
            Entry(seq=r[0], sink=r[1], alert_id=r[2], status=r[3], body=bytes(r[4]), created_ms=r[5],
                  attempts=r[6], next_attempt_ms=r[7], last_error=r[8])
            for r in rows
        ]

    def next_due_at(self, sink: str = DEFAULT_SINK) -> float | None:
        """Unix seconds of the earliest next attempt among pending entries of ``sink``; None when empty."""
        with self._lock:
            (ms,) = self._db.execute(
                "SELECT min(next_attempt_ms) FROM entries WHERE sink = ? AND state = 'pending'", (sink,)
            ).fetchone()
        return None if ms is None else ms / 1000.0

    def seen(self, alert_id: str, status: str, *, sink: str | None = None) -> bool:
        """Whether (alert_id, status) was ever put (for ``sink``, or for any sink when None)."""
        with self._lock:
            if sink is None:
                row = self._db.execute(
                    "SELECT 1 FROM seen WHERE alert_id = ? AND status = ? LIMIT 1", (alert_id, status)
                ).fetchone()
            else:
                row = self._db.execute(
                    "SELECT 1 FROM seen WHERE sink = ? AND alert_id = ? AND status = ?", (sink, alert_id, status)
                ).fetchone()
        return row is not None

    def depth(self, sink: str = DEFAULT_SINK) -> int:
        """Pending entries of ``sink`` (from the in-memory cache)."""
        return int(self._cache.get(sink, {}).get("depth", 0))

    def stats(self, now_ms: int | None = None) -> dict[str, dict[str, Any]]:
        """Per sink: ``depth``, ``oldest_age_s`` (None when empty), ``enqueued``, ``delivered``, ``failed``
        (failed attempts), ``dead``. Served from memory; never touches the database."""
        now = self._clock_ms() if now_ms is None else now_ms
        out: dict[str, dict[str, Any]] = {}
        for sink, c in list(self._cache.items()):
            oldest = c.get("oldest_ms")
            out[sink] = {
                "depth": c.get("depth", 0),
                "oldest_age_s": None if oldest is None else max(0.0, (now - oldest) / 1000.0),
                "enqueued": c.get("enqueued", 0),
                "delivered": c.get("delivered", 0),
                "failed": c.get("failed", 0),
                "dead": c.get("dead", 0),
            }
        return out

    # ------------------------------------------------------------------ async twins (outbox thread)

    async def _call(self, fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        if self._executor is None:
            raise RuntimeError("outbox is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(*args, **kwargs))

    async def aput(self, alert: Alert, *, sink: str = DEFAULT_SINK) -> bool:
        """``put`` on the outbox thread."""
        return await self._call(self.put, alert, sink=sink)

    async def adue(self, sink: str = DEFAULT_SINK, now: float | None = None, limit: int = 100) -> list[Entry]:
        """``due`` on the outbox thread."""
        return await self._call(self.due, sink, now, limit)

    async def adelivered(self, entry: Entry) -> None:
        """``delivered`` on the outbox thread."""
        await self._call(self.delivered, entry)

    async def afailed(self, entry: Entry, retry_after_s: float | None = None, **kwargs: Any) -> float:
        """``failed`` on the outbox thread."""
        return await self._call(self.failed, entry, retry_after_s, **kwargs)

    async def anext_due_at(self, sink: str = DEFAULT_SINK) -> float | None:
        """``next_due_at`` on the outbox thread."""
        return await self._call(self.next_due_at, sink)

    async def aseen(self, alert_id: str, status: str, *, sink: str | None = None) -> bool:
        """``seen`` on the outbox thread."""
        return await self._call(self.seen, alert_id, status, sink=sink)

    # ------------------------------------------------------------------ internals (lock held)

    def _tx(self) -> _Tx:
        return _Tx(self._db)

    def _bump(self, sink: str, name: str) -> None:
        self._db.execute(
            "INSERT INTO counters (sink, name, value) VALUES (?, ?, 1)"
            " ON CONFLICT (sink, name) DO UPDATE SET value = value + 1",
            (sink, name),
        )

    def _refresh(self, sink: str) -> None:
        depth, oldest = self._db.execute(
            "SELECT count(*), min(created_ms) FROM entries WHERE sink = ? AND state = 'pending'", (sink,)
        ).fetchone()
        cache: dict[str, Any] = {"depth": depth, "oldest_ms": oldest}
        cache.update(self._db.execute("SELECT name, value FROM counters WHERE sink = ?", (sink,)).fetchall())
        self._cache[sink] = cache


class _Tx:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error) on an autocommit connection."""

    __slots__ = ("_db",)

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self._db.execute("ROLLBACK" if exc_type is not None else "COMMIT")
