"""``streamer replay``: recordings through the same adapters, ``Daemon.ingest``, live state and rules.

Input files, told apart by their content:

- streamer recordings (``streamer.record``, zstd JSON lines): frames, REST bodies, instrument bodies
  and link markers are fed in recorded order to the very methods the live daemon used
  (``Daemon.ingest`` / ``Daemon.ingest_rest`` / ``adapter.load_instruments`` / ``Daemon.links``), so
  the alerts are byte-identical to what the live run printed (same ids, same order).
- tardis.dev raw data feeds (gzip or zstd, or plain): one line per message,
  ``<28-char ISO 8601 local timestamp> <exchange-native message JSON>``; an empty line marks a
  disconnect. The venue comes from ``--exchange`` or from the tardis exchange id in the file name
  (``TARDIS_EXCHANGES``). See docs/replay.md for what stays null without instrument bodies.

Rules: the recording's own ``rules:`` (its ``start`` record), or ``--rules FILE`` (a YAML config; its
``rules:`` section). The episode journal lives in a fresh temporary directory, so nothing of an earlier
run or replay leaks in. Time: event time only; ``--speed N`` paces the feed by recorded receive time.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import gzip
import logging
import re
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import msgspec
import zstandard

from streamer.config import (
    BinanceSettings,
    BitmexSettings,
    BybitSettings,
    DeribitSettings,
    ExchangesSettings,
    HttpSettings,
    OkxSettings,
    RulesSettings,
    Settings,
)
from streamer.daemon import Daemon
from streamer.exchanges import ADAPTERS
from streamer.exchanges.base import FrameError, RestCall
from streamer.model import Alert, Event
from streamer.record import Inst, Link, Record, Rest, Start, Ws, body_of, frame_of, read_records

log = logging.getLogger("streamer.replay")

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
GZIP_MAGIC = b"\x1f\x8b"
TARDIS_TS_LEN = 28
"""tardis.dev writes every local timestamp with 7 fractional digits: ``2024-03-01T00:00:00.1234567Z``."""

TARDIS_EXCHANGES: dict[str, tuple[str, str]] = {
    "binance-futures": ("binance", "um"),
    "binance-delivery": ("binance", "cm"),
    "bybit": ("bybit", "linear"),
    "bybit-options": ("bybit", "option"),
    "okex-swap": ("okx", "public"),
    "okex-futures": ("okx", "public"),
    "okex-options": ("okx", "public"),
    "deribit": ("deribit", "public"),
    "bitmex": ("bitmex", "realtime"),
}
"""tardis.dev exchange id -> (our venue, its sub-market)."""


@dataclass
class ReplayStats:
    """What one replay did (printed on stderr at the end)."""

    files: int = 0
    records: int = 0
    frames: int = 0
    rest: int = 0
    instruments: int = 0
    links: int = 0
    unreadable: int = 0
    alerts: int = 0
    by_status: dict[str, int] = field(default_factory=dict)


def tardis_exchange(path: str | Path) -> str | None:
    """The tardis exchange id in a file's name (the longest that matches), or None."""
    name = Path(path).name
    for ex in sorted(TARDIS_EXCHANGES, key=len, reverse=True):
        if re.search(rf"(^|[^a-z-]){re.escape(ex)}($|[^a-z-])", name):
            return ex
    return None


def _open_text(path: Path) -> BinaryIO:
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head.startswith(GZIP_MAGIC):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    if head == ZSTD_MAGIC:
        raw = open(path, "rb")  # noqa: SIM115 - the reader closes it
        return zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True, closefd=True)  # type: ignore[return-value]
    return open(path, "rb")


def is_streamer_recording(path: str | Path) -> bool:
    """Whether a file is a streamer recording (zstd whose first line is a streamer record)."""
    with open(path, "rb") as fh:
        if fh.read(4) != ZSTD_MAGIC:
            return False
    with _open_text(Path(path)) as reader:
        first = reader.read(64)
    return first.startswith(b'{"k":')


def tardis_ms(stamp: bytes, where: str) -> int:
    """ms since epoch of a tardis local timestamp (``2024-03-01T00:00:00.1234567Z``)."""
    text = stamp.decode("ascii", "replace")
    try:
        day = _dt.datetime.strptime(text[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=_dt.UTC)
        frac = text[20:-1] if len(text) > 20 and text[19] == "." and text.endswith("Z") else None
        if frac is None or not frac.isdigit():
            raise ValueError
    except ValueError:
        raise ValueError(f"{where}: {text!r} is not a tardis.dev local timestamp "
                         "(YYYY-MM-DDTHH:MM:SS.fffffffZ)") from None
    return int(day.timestamp()) * 1000 + int((frac + "000")[:3])


def tardis_records(path: Path, tardis_id: str) -> Iterator[Record]:
    """A tardis.dev raw data file as records: one session named after the file, a ``link`` marker
    at its first message and after every disconnect (empty line), then the messages as frames."""
    venue, market = TARDIS_EXCHANGES[tardis_id]
    session = f"tardis:{path.name}"
    up = False
    last_ms = 0
    with _open_text(path) as reader:
        for number, raw_line in enumerate(reader, start=1):
            line = raw_line.rstrip(b"\r\n")
            if len(line) <= 1:  # tardis: a disconnect
                if up:
                    up = False
                    yield Link(ms=last_ms, ex=venue, s=session, m=market, liq=True, since=None)
                continue
            if len(line) <= TARDIS_TS_LEN + 1 or line[TARDIS_TS_LEN:TARDIS_TS_LEN + 1] != b" ":
                raise ValueError(f"{path}:{number}: expected '<timestamp> <message>' (tardis.dev raw data), "
                                 f"got {line[:60]!r}")
            ms = tardis_ms(line[:TARDIS_TS_LEN], f"{path}:{number}")
            last_ms = ms
            if not up:
                up = True
                yield Link(ms=ms, ex=venue, s=session, m=market, liq=True, since=ms)
            yield Ws(ms=ms, ex=venue, s=session, m=market, f=line[TARDIS_TS_LEN + 1:].decode("utf-8", "replace"))


def records_of(path: Path, exchange: str | None) -> Iterator[Record]:
    """Records of one input file (a streamer recording, else a tardis.dev file)."""
    if is_streamer_recording(path):
        yield from read_records(path)
        return
    tardis_id = exchange or tardis_exchange(path)
    if tardis_id is None or tardis_id not in TARDIS_EXCHANGES:
        raise ValueError(f"{path}: not a streamer recording, and no tardis.dev exchange "
                         f"{'--exchange ' + repr(exchange) if exchange else 'id in its name'}; known: "
                         f"{', '.join(sorted(TARDIS_EXCHANGES))}")
    yield from tardis_records(path, tardis_id)


def replay_settings(rules: RulesSettings, state_dir: str) -> Settings:
    """A daemon with no venues of its own (replay adds adapters as the recording names them)."""
    off = ExchangesSettings(binance=BinanceSettings(enabled=False), bybit=BybitSettings(enabled=False),
                            okx=OkxSettings(enabled=False), deribit=DeribitSettings(enabled=False),
                            bitmex=BitmexSettings(enabled=False))
    return Settings(http=HttpSettings(enabled=False), exchanges=off, rules=rules, state_dir=state_dir)


class Replayer:
    """Feeds records through a ``Daemon``'s ingest path; alerts are written as the stdout sink writes them.

    Args:
        rules: rules to apply; None = the recording's own (its first ``start`` record), else defaults.
        out: where alert JSON lines go.
        speed: None = as fast as possible; N = N times the recorded pace.
    """

    def __init__(self, rules: RulesSettings | None, out: BinaryIO, speed: float | None = None) -> None:
        if speed is not None and speed <= 0:
            raise ValueError(f"--speed {speed}: expected a factor > 0")
        self.rules = rules
        self.out = out
        self.speed = speed
        self.stats = ReplayStats()
        self.daemon: Daemon | None = None
        self._tmp = tempfile.TemporaryDirectory(prefix="streamer-replay-")
        self._first_ms: int | None = None
        self._preloads: list[tuple[str, bytes, str]] = []
        self._started = 0.0

    def _daemon(self, start: Start | None) -> Daemon:
        """The pipeline; a ``start`` record (a recording process started) begins a new one, as the live
        process did, keeping the episode journal's directory (``state_dir``) like a restart does."""
        if self.daemon is None or start is not None:
            rules = self.rules
            if rules is None and start is not None:
                rules = msgspec.convert(start.rules, RulesSettings)
            elif rules is None:
                log.warning("replay: no start record before the first data (a tardis.dev file, or a recording's "
                            "later hour): the default rules apply; --rules FILE chooses others")
                rules = RulesSettings()
            daemon = Daemon(replay_settings(rules, self._tmp.name), out=self.out)
            daemon.bus.add_handler(self._on_event)
            self.daemon = daemon
            for venue, body, where in self._preloads:
                self._load(venue, body, where)
        return self.daemon

    def _on_event(self, event: Event) -> None:
        if isinstance(event, Alert):
            assert self.daemon is not None
            self.daemon.sink.write(event)
            self.stats.alerts += 1
            self.stats.by_status[event.status] = self.stats.by_status.get(event.status, 0) + 1

    def _adapter(self, exchange: str, where: str) -> Any:
        assert self.daemon is not None
        adapter = self.daemon.adapters.get(exchange)
        if adapter is None:
            if exchange not in ADAPTERS:
                raise ValueError(f"{where}: unknown venue {exchange!r}; known: {', '.join(sorted(ADAPTERS))}")
            adapter = self.daemon.adapters[exchange] = ADAPTERS[exchange]()
        return adapter

    def preload(self, venue: str, body: bytes, where: str) -> None:
        """An instrument body given on the command line (tardis files carry none).

        Raises:
            ValueError: the body is not the venue's instrument response, naming ``where``.
        """
        self._preloads.append((venue, body, where))  # loaded again into every new pipeline (start records)
        self.stats.instruments += 1
        if self.daemon is None:
            self._daemon(None)
        else:
            self._load(venue, body, where)

    def _load(self, venue: str, body: bytes, where: str) -> None:
        try:
            self._adapter(venue, where).load_instruments(body)
        except FrameError as exc:
            raise ValueError(f"{where}: not a {venue} instrument response: {exc}") from None

    async def feed(self, records: Iterator[Record], where: str) -> None:
        """Feed one file's records, pacing by recorded time under ``speed``."""
        stats = self.stats
        for rec in records:
            stats.records += 1
            if isinstance(rec, Start):
                self._daemon(rec)
                continue
            daemon = self._daemon(None)
            if self.speed is not None:
                await self._pace(rec.ms)
            elif stats.records % 5000 == 0:
                await asyncio.sleep(0)  # let a progress display or a signal in
            if isinstance(rec, Ws):
                self._adapter(rec.ex, where)
                stats.frames += 1
                if daemon.ingest(rec.ex, rec.s, rec.m, frame_of(rec), rec.ms) is None:
                    stats.unreadable += 1
            elif isinstance(rec, Rest):
                self._adapter(rec.ex, where)
                stats.rest += 1
                call = RestCall(endpoint=rec.ep, path="", params=dict(rec.p), market=rec.m)
                try:
                    daemon.ingest_rest(rec.ex, call, body_of(rec), rec.ms, seed=rec.seed)
                except FrameError:
                    stats.unreadable += 1  # the live daemon logged and skipped it too
            elif isinstance(rec, Inst):
                stats.instruments += 1
                try:
                    self._adapter(rec.ex, where).load_instruments(body_of(rec), market=rec.m)
                except FrameError:
                    stats.unreadable += 1  # live: the store fell back to its cache (recorded next)
            elif isinstance(rec, Link):
                stats.links += 1
                daemon.links.update(rec.s, rec.ex, rec.liq, rec.since)

    async def _pace(self, ms: int) -> None:
        if self._first_ms is None:
            self._first_ms = ms
            self._started = time.monotonic()
            return
        assert self.speed is not None
        due = self._started + (ms - self._first_ms) / 1000 / self.speed
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)

    def close(self) -> None:
        self._tmp.cleanup()


async def run_replay(paths: Sequence[str], *, rules: RulesSettings | None = None, speed: float | None = None,
                     exchange: str | None = None, instruments: Sequence[str] = (), out: BinaryIO | None = None,
                     progress: bool | None = None, err: Any = None) -> ReplayStats:
    """Replay ``paths`` in the order given; alerts go to ``out`` (stdout), a summary to ``err`` (stderr).

    ``instruments``: instrument response bodies (files) of ``exchange``'s venue, loaded first (tardis files).

    Raises:
        ValueError: a file that is missing, unreadable or in neither format, naming it.
    """
    err = sys.stderr if err is None else err
    out = sys.stdout.buffer if out is None else out
    files = [Path(p) for p in paths]
    for path in files:
        if not path.is_file():
            raise ValueError(f"{path}: no such file")
    if exchange is not None and exchange not in TARDIS_EXCHANGES:
        raise ValueError(f"--exchange {exchange!r}: expected a tardis.dev exchange id, one of "
                         f"{', '.join(sorted(TARDIS_EXCHANGES))}")
    if instruments and exchange is None:
        raise ValueError("--instruments needs --exchange (the venue the bodies belong to)")
    replayer = Replayer(rules, out, speed)
    for name in instruments:
        try:
            body = await asyncio.to_thread(Path(name).read_bytes)
        except OSError as exc:
            raise ValueError(f"--instruments {name}: {exc.strerror}") from None
        assert exchange is not None
        replayer.preload(TARDIS_EXCHANGES[exchange][0], body, f"--instruments {name}")
    show = err.isatty() if progress is None else progress
    started = time.monotonic()
    try:
        if show:
            await _with_progress(replayer, files, exchange, err)
        else:
            for path in files:
                await replayer.feed(records_of(path, exchange), str(path))
                replayer.stats.files += 1
    finally:
        replayer.close()
        out.flush()
    s = replayer.stats
    print(f"replay: {s.files} files, {s.records} records ({s.frames} frames, {s.rest} REST bodies, "
          f"{s.instruments} instrument bodies, {s.links} link markers, {s.unreadable} unreadable) in "
          f"{time.monotonic() - started:.1f} s; alerts {s.alerts} ({s.by_status.get('firing', 0)} firing, "
          f"{s.by_status.get('resolved', 0)} resolved)", file=err, flush=True)
    return s


async def _with_progress(replayer: Replayer, files: list[Path], exchange: str | None, err: Any) -> None:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=Console(file=err), transient=True) as bar:
        task = bar.add_task("replay", total=len(files))

        async def ticker() -> None:
            while True:
                s = replayer.stats
                bar.update(task, description=f"replay: {s.records:,} records, {s.alerts} alerts")
                await asyncio.sleep(0.2)

        tick = asyncio.create_task(ticker())
        try:
            for path in files:
                await replayer.feed(records_of(path, exchange), str(path))
                replayer.stats.files += 1
                bar.advance(task)
        finally:
            tick.cancel()


__all__ = ["TARDIS_EXCHANGES", "ReplayStats", "Replayer", "records_of", "run_replay", "tardis_exchange",
           "tardis_records"]
