"""Record raw frames; replay them through the pipeline (``streamer.replay``).

A recording is what the pipeline's output depends on, in the order the daemon
processed it: every raw WebSocket frame with its receive time (the ``recv_ms``
handed to ``adapter.parse``), every REST body at the point it is parsed (with
the endpoint, params and market ``adapter.parse_rest`` needs), the instrument
bodies loaded at start and on refresh (REST or cache), and the connection
lifecycle of every session (``link`` markers: when the current connection
opened, or null while down), from which liquidation alerts' ``coverage`` is
computed live and in replay alike.

Files: JSON lines (one ``Record`` each, msgspec-encoded, tagged by ``k``),
zstd-compressed, one file per UTC hour of the records' time
(``streamer-YYYYMMDDTHH.jsonl.zst``; never backwards: a record stamped earlier than the current file's
hour goes in the current file). Every flush (about once a second)
appends one complete zstd frame, so a file is a valid zstd stream up to its
last flush even after a crash. Disk is bounded: once the directory's
recordings exceed ``max_bytes``, the oldest files are deleted (counted).

The daemon's thread never writes: records go through a bounded queue to a
writer thread. A full queue drops the record (counted, logged), a disk error
is logged and counted; frames keep flowing either way.
"""

from __future__ import annotations

import base64
import logging
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import zstandard

log = logging.getLogger("streamer.record")

FILE_PREFIX = "streamer-"
FILE_SUFFIX = ".jsonl.zst"
QUEUE_MAX = 100_000
FLUSH_S = 1.0
ERROR_LOG_SAMPLES = 5
FORMAT_VERSION = 1


# --------------------------------------------------------------------------- records


class Start(msgspec.Struct, tag="start", tag_field="k", kw_only=True, omit_defaults=True):
    """A recording process started. ``rules``: its ``rules:`` settings (replay's default rules)."""

    ms: int
    v: int = FORMAT_VERSION
    rules: dict[str, Any] = msgspec.field(default_factory=dict)
    venues: list[str] = msgspec.field(default_factory=list)


class Ws(msgspec.Struct, tag="ws", tag_field="k", kw_only=True, omit_defaults=True):
    """One WebSocket frame. ``f``: the frame's text; ``b64``: its bytes when not UTF-8;
    ``text``: the session handed it over as ``str`` (else ``bytes``)."""

    ms: int
    ex: str
    s: str
    m: str
    f: str | None = None
    b64: str | None = None
    text: bool = False


class Rest(msgspec.Struct, tag="rest", tag_field="k", kw_only=True, omit_defaults=True):
    """One REST body handed to ``adapter.parse_rest(ep, body, ms, p)``. ``seed``: it seeded open-interest
    history (``LiveState.seed_open_interest``) instead of being published."""

    ms: int
    ex: str
    m: str = ""
    ep: str
    p: dict[str, Any] = msgspec.field(default_factory=dict)
    f: str | None = None
    b64: str | None = None
    seed: bool = False


class Inst(msgspec.Struct, tag="inst", tag_field="k", kw_only=True, omit_defaults=True):
    """One instrument body handed to ``adapter.load_instruments(body, market=m)``."""

    ms: int
    ex: str
    m: str = ""
    ep: str = ""
    p: dict[str, Any] = msgspec.field(default_factory=dict)
    f: str | None = None
    b64: str | None = None


class Link(msgspec.Struct, tag="link", tag_field="k", kw_only=True, omit_defaults=True):
    """A session's connection state changed: ``since`` = when the current connection opened (ms), or
    None while it is down. ``liq``: the session carries a liquidation stream."""

    ms: int
    ex: str
    s: str
    m: str = ""
    liq: bool = False
    since: int | None = None


Record = Start | Ws | Rest | Inst | Link

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Record)


def _text_fields(body: str | bytes) -> tuple[str | None, str | None]:
    """(``f``, ``b64``) for a body: its text when it is UTF-8, else base64 of its bytes."""
    if isinstance(body, str):
        return body, None
    try:
        return body.decode("utf-8"), None
    except UnicodeDecodeError:
        return None, base64.b64encode(body).decode("ascii")


def body_of(rec: Ws | Rest | Inst) -> bytes:
    """The recorded body as bytes."""
    if rec.b64 is not None:
        return base64.b64decode(rec.b64)
    return (rec.f or "").encode("utf-8")


def frame_of(rec: Ws) -> str | bytes:
    """The frame exactly as the session handed it to ``on_frame`` (``str`` or ``bytes``)."""
    if rec.text and rec.f is not None:
        return rec.f
    return body_of(rec)


def hour_name(ms: int) -> str:
    """File name of the UTC hour holding ``ms``: ``streamer-20261207T23.jsonl.zst``."""
    return FILE_PREFIX + time.strftime("%Y%m%dT%H", time.gmtime(ms / 1000)) + FILE_SUFFIX


def read_records(path: str | Path) -> Iterator[Record]:
    """Every record of one recording file, in order (all zstd frames of the file). A file cut mid-frame
    (the process was killed while appending) gives its complete records and a warning.

    Raises:
        ValueError: a line that is not a record, naming the file and line number.
    """
    with open(path, "rb") as raw:
        for number, line in enumerate(_lines(_decompressed(raw, str(path)), str(path)), start=1):
            if not line.strip():
                continue
            try:
                yield _decoder.decode(line)
            except msgspec.ValidationError as exc:
                raise ValueError(f"{path}:{number}: not a streamer record: {exc}") from None
            except msgspec.DecodeError as exc:
                raise ValueError(f"{path}:{number}: not a JSON line: {exc}") from None


def _decompressed(raw: Any, where: str) -> Iterator[bytes]:
    """The content of concatenated zstd frames; warns about a cut or unreadable last frame."""
    dctx = zstandard.ZstdDecompressor()
    obj = dctx.decompressobj()
    pending = False
    while chunk := raw.read(1 << 20):
        data = chunk
        while data:
            try:
                out = obj.decompress(data)
            except zstandard.ZstdError as exc:
                log.warning("%s: unreadable zstd data after the last complete frame (%s); the rest is skipped",
                            where, exc)
                return
            pending = True
            if out:
                yield out
            if obj.eof:
                data = obj.unused_data
                obj = dctx.decompressobj()
                pending = False
            else:
                data = b""
    if pending:
        log.warning("%s: the last zstd frame is cut off (the recorder was stopped mid-write); what it held is "
                    "skipped", where)


def _lines(chunks: Iterator[bytes], where: str) -> Iterator[bytes]:
    """Complete lines; a last line without its newline is dropped with a warning."""
    rest = b""
    for chunk in chunks:
        rest += chunk
        *lines, rest = rest.split(b"\n")
        yield from lines
    if rest:
        log.warning("%s: the last record is cut off (%d bytes); skipped", where, len(rest))


def recording_files(directory: str | Path) -> list[Path]:
    """The recording files of a directory, oldest first (names sort by hour)."""
    return sorted(Path(directory).expanduser().glob(FILE_PREFIX + "*" + FILE_SUFFIX))


# --------------------------------------------------------------------------- connection lifecycle


class LinkBook:
    """Each session's connection state as the ``link`` markers say (live and replay alike)."""

    def __init__(self) -> None:
        self._links: dict[str, tuple[str, bool, int | None]] = {}

    def update(self, session: str, exchange: str, liq: bool, since: int | None) -> bool:
        """Set a session's state; True when it changed (then a marker is due)."""
        new = (exchange, liq, since)
        if self._links.get(session) == new:
            return False
        self._links[session] = new
        return True

    def liquidation_since(self, exchange: str) -> list[int | None]:
        """When each liquidation-carrying session of ``exchange`` connected (None: down), by session name."""
        return [since for _, (ex, liq, since) in sorted(self._links.items()) if ex == exchange and liq]


# --------------------------------------------------------------------------- the recorder


@dataclass
class RecorderStats:
    """Counters (``streamer record`` prints them at exit).

    Attributes:
        records: records written.
        dropped: records dropped because the writer fell behind (queue full) or was closed.
        bytes: compressed bytes written.
        files_deleted: oldest files deleted to stay within ``max_bytes``.
        errors: disk errors (the batch is lost, recording goes on).
    """

    records: int = 0
    dropped: int = 0
    bytes: int = 0
    files_deleted: int = 0
    errors: int = 0


_STOP = object()


class Recorder:
    """Writes records to hourly zstd files from a writer thread.

    Args:
        directory: where the files go (created).
        max_bytes: most bytes the directory's recordings may hold; the oldest files go first.
        queue_max: bound of the queue between the event loop and the writer.
        flush_s: how often the writer appends a zstd frame.
        level: zstd level.
    """

    def __init__(self, directory: str | Path, max_bytes: int, *, queue_max: int = QUEUE_MAX,
                 flush_s: float = FLUSH_S, level: int = 3) -> None:
        if max_bytes <= 0:
            raise ValueError(f"record.max_bytes {max_bytes}: expected bytes > 0")
        self.directory = Path(directory).expanduser()
        self.max_bytes = max_bytes
        self.stats = RecorderStats()
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_max)
        self._flush_s = flush_s
        self._cctx = zstandard.ZstdCompressor(level=level)
        self._thread: threading.Thread | None = None
        self._closed = False
        self._sizes: dict[Path, int] = {}
        self._current: Path | None = None

    # ------------------------------------------------------------------ event-loop side (never blocks)

    def start(self) -> None:
        """Create the directory and start the writer thread (idempotent)."""
        if self._thread is not None:
            return
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            for path in recording_files(self.directory):
                self._sizes[path] = path.stat().st_size
        except OSError as exc:  # the writer retries the directory on every flush
            self._error(f"preparing {self.directory}: {exc}")
        self._thread = threading.Thread(target=self._run, name="streamer-recorder", daemon=True)
        self._thread.start()

    def put(self, record: Record) -> None:
        """Queue one record; dropped (counted) when the writer is behind or closed."""
        if self._closed:
            self.stats.dropped += 1
            return
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self.stats.dropped += 1
            if self.stats.dropped in (1, 1000, 1_000_000):
                log.warning("recorder: writer behind, %d records dropped so far (queue of %d full)",
                            self.stats.dropped, self._queue.maxsize)

    def start_marker(self, rules: dict[str, Any], venues: list[str]) -> None:
        self.put(Start(ms=time.time_ns() // 1_000_000, rules=rules, venues=venues))

    def ws(self, exchange: str, session: str, market: str, frame: str | bytes, recv_ms: int) -> None:
        f, b64 = _text_fields(frame)
        self.put(Ws(ms=recv_ms, ex=exchange, s=session, m=market, f=f, b64=b64, text=isinstance(frame, str)))

    def rest(self, exchange: str, market: str, endpoint: str, params: dict[str, str], body: str | bytes,
             recv_ms: int, *, seed: bool = False) -> None:
        f, b64 = _text_fields(body)
        self.put(Rest(ms=recv_ms, ex=exchange, m=market, ep=endpoint, p=dict(params), f=f, b64=b64, seed=seed))

    def instruments(self, exchange: str, market: str, endpoint: str, params: dict[str, str],
                    body: str | bytes) -> None:
        f, b64 = _text_fields(body)
        self.put(Inst(ms=time.time_ns() // 1_000_000, ex=exchange, m=market, ep=endpoint, p=dict(params), f=f,
                      b64=b64))

    def link(self, exchange: str, session: str, market: str, liq: bool, since: int | None) -> None:
        self.put(Link(ms=since if since is not None else time.time_ns() // 1_000_000, ex=exchange, s=session,
                      m=market, liq=liq, since=since))

    def close(self, timeout_s: float = 10.0) -> None:
        """Write what is queued, close the file (a valid zstd stream), stop the thread."""
        if self._closed:
            return
        self._closed = True
        if self._thread is None:
            return
        while True:  # the sentinel must get in even when the queue is full
            try:
                self._queue.put(_STOP, timeout=timeout_s)
                break
            except queue.Full:
                continue
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            log.error("recorder: writer did not finish within %.0f s; the last second may be missing", timeout_s)
        st = self.stats
        log.log(logging.WARNING if st.dropped or st.errors else logging.INFO,
                "recorder: %d records, %d bytes in %s; %d dropped, %d disk errors, %d old files deleted",
                st.records, st.bytes, self.directory, st.dropped, st.errors, st.files_deleted)

    # ------------------------------------------------------------------ writer thread

    def _run(self) -> None:
        batch: list[tuple[str, Record]] = []
        name = ""
        hour = -1  # files only move forward: a record stamped in an earlier hour (a clock step back) stays in
        # the current file, so reading the files in name order gives the records in the order written
        deadline = time.monotonic() + self._flush_s
        while True:
            try:
                item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                item = None
            if item is _STOP:
                self._flush(batch)
                return
            if item is not None:
                if item.ms // 3_600_000 > hour:
                    hour = item.ms // 3_600_000
                    name = hour_name(hour * 3_600_000)
                batch.append((name, item))
            if time.monotonic() >= deadline or len(batch) >= 50_000:
                self._flush(batch)
                batch = []
                deadline = time.monotonic() + self._flush_s

    def _flush(self, batch: list[tuple[str, Record]]) -> None:
        """Append the batch, one zstd frame per file touched; then enforce ``max_bytes``."""
        by_file: dict[str, list[Record]] = {}
        for name, item in batch:
            by_file.setdefault(name, []).append(item)
        for name, lines in by_file.items():
            path = self.directory / name
            try:
                data = self._cctx.compress(_encoder.encode_lines(lines))
                self.directory.mkdir(parents=True, exist_ok=True)
                with open(path, "ab") as fh:
                    fh.write(data)
            except Exception as exc:  # noqa: BLE001 - OSError mostly; any failure is counted, never raised
                self._error(f"writing {path}: {exc}")
                continue
            self._sizes[path] = self._sizes.get(path, 0) + len(data)
            self._current = path
            self.stats.records += len(lines)
            self.stats.bytes += len(data)
        self._enforce_budget()

    def _enforce_budget(self) -> None:
        total = sum(self._sizes.values())
        for path in sorted(self._sizes):
            if total <= self.max_bytes:
                break
            if path == self._current:
                continue
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:
                self._error(f"deleting {path}: {exc}")
                continue
            total -= self._sizes.pop(path)
            self.stats.files_deleted += 1
            log.info("recorder: deleted %s to stay within max_bytes %d", path.name, self.max_bytes)

    def _error(self, message: str) -> None:
        self.stats.errors += 1
        if self.stats.errors <= ERROR_LOG_SAMPLES:
            log.error("recorder: %s (recording goes on; %d errors so far)", message, self.stats.errors)


__all__ = ["Inst", "Link", "LinkBook", "Record", "Recorder", "RecorderStats", "Rest", "Start", "Ws", "body_of",
           "frame_of", "hour_name", "read_records", "recording_files"]
