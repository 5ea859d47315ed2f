"""cryptofeed driven offline: its real feed classes and message handlers, metadata from canned REST bodies.

How it is driven (and nothing else is changed in cryptofeed):

- Symbol metadata: cryptofeed loads instruments once per exchange class through the class attribute
  ``Exchange.http_sync`` (``HTTPSync.read(address, json=True)``). We replace it with ``CannedHTTPSync``, whose
  ``read`` answers each instruments URL with the venue's canned body from ``bench.frames`` (the same bodies our
  adapters load) and passes it through cryptofeed's own ``process_response`` (``yapic.json``,
  ``parse_float=Decimal``). Any other URL raises: there is no network.
- Feeds: ``BinanceFutures``, ``Bybit``, ``OKX``, ``Deribit`` and ``Bitmex`` are built with the venue's whole
  universe and the channels that carry the benchmarked kinds, and a counting ``async`` callback on every data
  type. Their connections come from the feed's own ``connect()`` (which only builds them); a stub stands in
  for the socket (``write`` records, ``uuid``/``address``/``subscription`` copied from the real connection),
  and the feed's own ``subscribe(conn)`` runs once, as after a connect, to reset its per-connection state.
- Timing: ``await feed.message_handler(frame, conn, recv_s)`` for every frame in a loop inside one running
  event loop, as cryptofeed's ``ConnectionHandler`` does per received message (minus the socket read).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.frames import Corpus, Kind

# Why cryptofeed cannot parse a kind, from reading its source (cryptofeed 2.4.x, exchanges/*.py).
UNSUPPORTED_WHY = {
    "binance.markPrice@arr": (
        "BinanceFutures.message_handler reads every combined-stream payload as one object "
        "(msg['data'].get('e')); the !markPrice@arr payload is an array, so it raises AttributeError. "
        "cryptofeed subscribes <sym>@markPrice per symbol instead."
    ),
    "bybit.allLiquidation": (
        "Bybit.message_handler routes only topics starting with 'liquidation' (the old liquidation.<SYM> "
        "stream, deprecated 2025-02-20); allLiquidation.<SYM> falls through to 'Unhandled message type' "
        "and yields nothing."
    ),
    "okx.liquidation-orders": (
        "OKX takes liquidations only by polling REST public/liquidation-orders (OKX._liquidations); the WS "
        "channel has no handler: 'orders' in 'liquidation-orders' sends it to the private _order handler, "
        "which raises KeyError."
    ),
}
# What cryptofeed yields on kinds it does parse, where it is less than what our adapter yields.
PARTIAL_NOTES = {
    "binance.forceOrder": "Liquidation with the order's q and p (not the filled z and average ap); Decimal",
    "deribit.ticker.option": "Ticker (bid/ask) and OpenInterest only: no mark, IV or greeks",
    "bitmex.instrument": "OpenInterest only, from rows that carry openInterest: no funding, mark or prices",
    "okx.funding-rate": "Funding without interval or next funding time",
}

FEEDS: dict[str, tuple[str, str]] = {
    "binance": ("cryptofeed.exchanges.binance_futures", "BinanceFutures"),
    "bybit": ("cryptofeed.exchanges.bybit", "Bybit"),
    "okx": ("cryptofeed.exchanges.okx", "OKX"),
    "deribit": ("cryptofeed.exchanges.deribit", "Deribit"),
    "bitmex": ("cryptofeed.exchanges.bitmex", "Bitmex"),
}


def version() -> str | None:
    """cryptofeed's version, or None when it is not installed."""
    try:
        from importlib.metadata import version as v

        return v("cryptofeed")
    except Exception:  # noqa: BLE001 - any failure means "not available"
        return None


def _route(corpus: Corpus, address: str) -> bytes:
    """The canned instruments body for one of cryptofeed's instrument URLs."""
    v = corpus.venues
    if "fapi/v1/exchangeInfo" in address:
        return v["binance"].rest["exchangeInfo_um"]
    if "bybit.com/v5/market/instruments-info" in address:
        return v["bybit"].rest["instruments_linear" if "category=linear" in address else "instruments_spot"]
    if "okx.com/api/v5/public/instruments" in address:
        return v["okx"].rest["instruments_swap" if "instType=SWAP" in address else "instruments_empty"]
    if "deribit.com/api/v2/public/get_instruments" in address:
        ccy = address.rsplit("currency=", 1)[1].split("&")[0]
        return v["deribit"].rest[f"instruments_{ccy}"]
    if "bitmex.com/api/v1/instrument/active" in address:
        return v["bitmex"].rest["instrument_active"]
    raise RuntimeError(f"bench: cryptofeed asked for {address}; the benchmark has no network")


class _CannedResponse:
    def __init__(self, body: bytes) -> None:
        self.text = body.decode()

    def raise_for_status(self) -> None:
        return None


class _StubConn:
    """Stands in for a cryptofeed connection: what its handlers read, and a write that records."""

    def __init__(self, uuid: str, address: str, subscription: dict[str, Any]) -> None:
        self.uuid = uuid
        self.id = uuid
        self.address = address
        self.subscription = subscription
        self.sent: list[str] = []

    async def write(self, data: str) -> None:
        self.sent.append(data)


@dataclass
class Driver:
    """One cryptofeed feed ready to be fed frames."""

    venue: str
    feed: Any
    conn: _StubConn
    count: list[int] = field(default_factory=lambda: [0])

    async def run(self, frames: Sequence[bytes], recv_s: Sequence[float]) -> int:
        """Feed every frame; returns the elapsed ns (measured inside the running loop)."""
        handler = self.feed.message_handler
        conn = self.conn
        t0 = time.perf_counter_ns()
        for frame, ts in zip(frames, recv_s, strict=True):
            await handler(frame, conn, ts)
        return time.perf_counter_ns() - t0


class Cryptofeed:
    """Builds a Driver per venue on canned metadata and probes which kinds it can parse."""

    def __init__(self, corpus: Corpus) -> None:
        from cryptofeed import exchange
        from cryptofeed.connection import HTTPSync
        from cryptofeed.symbols import Symbols

        class CannedHTTPSync(HTTPSync):  # type: ignore[misc]
            def read(self, address: str, params: Any = None, headers: Any = None, json: bool = False,
                     text: bool = True, uuid: Any = None) -> Any:
                return self.process_response(_CannedResponse(_route(corpus, address)), address, json=json,
                                             text=text, uuid=uuid)

        exchange.Exchange.http_sync = CannedHTTPSync()
        Symbols.clear()
        logging.getLogger("feedhandler").setLevel(logging.CRITICAL)  # its per-frame warnings on kinds it drops
        self.corpus = corpus
        self.drivers: dict[str, Driver] = {}
        self.loop = asyncio.new_event_loop()

    def close(self) -> None:
        self.loop.close()

    def driver(self, venue: str) -> Driver:
        if venue not in self.drivers:
            self.drivers[venue] = self._build(venue)
        return self.drivers[venue]

    def _build(self, venue: str) -> Driver:
        from cryptofeed.defines import FUNDING, LIQUIDATIONS, OPEN_INTEREST, TICKER

        module, cls_name = FEEDS[venue]
        cls = getattr(importlib.import_module(module), cls_name)
        raw = set(self.corpus.venues[venue].symbols)
        std = [s for s, r in cls.symbol_mapping().items() if r in raw]
        channels = {
            "binance": [LIQUIDATIONS, FUNDING],
            "bybit": [TICKER, FUNDING, OPEN_INTEREST],
            "okx": [FUNDING, OPEN_INTEREST],
            "deribit": [FUNDING, OPEN_INTEREST],
            "bitmex": [OPEN_INTEREST, LIQUIDATIONS],
        }[venue]
        count = [0]

        async def on_data(obj: object, receipt_timestamp: float) -> None:
            count[0] += 1

        callbacks = {ch: on_data for ch in (LIQUIDATIONS, FUNDING, TICKER, OPEN_INTEREST)}
        feed = cls(symbols=std, channels=channels, callbacks=callbacks)
        conns = feed.connect()
        real = conns[0][0]
        if venue == "bybit":  # the linear endpoint carries the USDT perpetuals
            real = next(c for c, *_ in conns if getattr(c, "address", "").endswith("/linear"))
        subscription: dict[str, Any] = {k: list(v) for k, v in (real.subscription or feed.subscription).items()}
        conn = _StubConn(real.id, getattr(real, "address", ""), subscription)
        self.loop.run_until_complete(feed.subscribe(conn))
        return Driver(venue, feed, conn, count)

    def probe(self, kind: Kind, n: int = 50) -> tuple[bool, str]:
        """Whether cryptofeed parses this kind (runs, and calls back), and if not, why."""
        try:
            drv = self.driver(kind.venue)
        except Exception as exc:  # noqa: BLE001 - report, do not crash the benchmark
            return False, f"feed could not be built offline: {exc!r}"
        before = drv.count[0]
        frames = kind.frames[:n]
        recv = [r / 1000 for r in kind.recv_ts[:n]]
        try:
            self.loop.run_until_complete(drv.run(frames, recv))
        except Exception as exc:  # noqa: BLE001
            why = UNSUPPORTED_WHY.get(kind.name, "")
            return False, f"{why} (probe: {type(exc).__name__}: {exc})".strip()
        if drv.count[0] == before:
            return False, UNSUPPORTED_WHY.get(kind.name, "its handler ran but called back nothing")
        return True, PARTIAL_NOTES.get(kind.name, "")

    def time(self, kind: Kind, recv_s: Sequence[float]) -> tuple[int, int]:
        """(elapsed ns, callbacks) for one pass over the kind's frames."""
        drv = self.driver(kind.venue)
        before = drv.count[0]
        ns = self.loop.run_until_complete(drv.run(kind.frames, recv_s))
        return ns, drv.count[0] - before
