"""Signed webhook sink (Standard Webhooks) with a durable outbox: at-least-once, in order per alert id.

``await WebhookSink(...).run(consumer)`` runs two loops:

* **intake**: every alert read from the bus consumer that passes the sink's filters is written to
  the :class:`~streamer.alerts.outbox.Outbox` (committed to disk) before any delivery is tried;
* **delivery**: entries that are due, oldest first, are POSTed one at a time. 2xx marks an entry
  delivered. A network error, a timeout, 408, 429 or 5xx means the *endpoint* is unwell: the entry
  is rescheduled (the receiver's ``Retry-After`` when it sent one, else capped exponential backoff
  with jitter) and the whole sink holds until then, so a dead receiver costs one request per
  backoff step rather than one per queued alert. Any other status (400, 401, 404, 410 ...) rejects
  that *message*: it is retried with backoff on its own, other alerts go on, and after
  ``max_rejections`` rejections in a row it is dropped as ``dead`` (counted, kept in the file).

Entries survive restarts and ``kill -9`` (see ``outbox.py``); an entry whose POST was in flight when
the process died is sent again: receivers dedupe on ``webhook-id``.

Signature (https://www.standardwebhooks.com/, spec ``v1``)
    Headers ``webhook-id``, ``webhook-timestamp`` (unix seconds of *this* attempt, so a retry hours
    later still passes the receiver's 5-minute replay window) and ``webhook-signature:
    v1,<base64(HMAC-SHA256(key, "{webhook-id}.{webhook-timestamp}.{body}"))>``, where ``key`` is the
    base64 part of the ``whsec_<base64>`` secret, decoded. The body is the alert's JSON
    (``model.encode_event``), stored in the outbox, byte-identical on every retry. The secret is kept
    only as the decoded key and never logged or shown in ``repr``.

``webhook-id`` choice
    ``"{alert.id}:{alert.status}"``, e.g. ``liquidation_cascade:BTC-USDT-PERP:1700000000000:firing``.
    The alert id names the *episode* (shared by its ``firing`` and ``resolved`` messages); the
    status makes the two messages distinct, and the pair is exactly the outbox's idempotency key,
    so the id is stable across retries and restarts and a receiver that dedupes on it sees each
    message exactly once.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import email.utils
import hashlib
import hmac
import logging
import time
from collections.abc import AsyncIterable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from streamer import __version__
from streamer.alerts.outbox import Entry, Outbox
from streamer.model import Alert, Event

__all__ = ["AlertFilter", "WebhookSink", "decode_secret", "message_id", "sign"]

log = logging.getLogger("streamer.alerts.webhook")

SECRET_PREFIX = "whsec_"
_LOG_SAMPLES = 5


def decode_secret(secret: str) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` secret (padding optional).

    Raises:
        ValueError: no ``whsec_`` prefix, invalid base64, or an empty key. The message never contains
            the secret.
    """
    if not isinstance(secret, str) or not secret.startswith(SECRET_PREFIX):
        raise ValueError("webhook secret must start with 'whsec_' followed by base64")
    text = secret[len(SECRET_PREFIX):]
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("webhook secret: the part after 'whsec_' is not valid base64") from None
    if not key:
        raise ValueError("webhook secret: the key after 'whsec_' is empty")
    return key


def message_id(alert_id: str, status: str) -> str:
    """The ``webhook-id`` of one alert message: ``"{alert_id}:{status}"`` (see the module docstring)."""
    return f"{alert_id}:{status}"


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256 of "{msg_id}.{timestamp}.{body}">`` (Standard Webhooks)."""
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode("ascii")


@dataclass(frozen=True)
class AlertFilter:
    """Which alerts a sink takes: each list empty = all; non-empty = the alert's value must be listed.

    ``exchange`` and cross-exchange alerts (``exchange`` null): such an alert passes a non-empty
    exchange filter when one of the venues in ``details["venues"]`` (if that is a list) is listed.
    """

    rule: tuple[str, ...] = ()
    severity: tuple[str, ...] = ()
    exchange: tuple[str, ...] = ()
    symbol: tuple[str, ...] = ()

    @classmethod
    def of(cls, obj: Any) -> AlertFilter:
        """From None, an AlertFilter, a mapping or any object with rule/severity/exchange/symbol lists."""
        if obj is None:
            return cls()
        if isinstance(obj, AlertFilter):
            return obj
        get = obj.get if isinstance(obj, dict) else (lambda k, d=None: getattr(obj, k, d))
        return cls(*(tuple(get(k) or ()) for k in ("rule", "severity", "exchange", "symbol")))

    def matches(self, alert: Alert) -> bool:
        """Whether ``alert`` passes every non-empty list."""
        if self.rule and alert.rule not in self.rule:
            return False
        if self.severity and alert.severity not in self.severity:
            return False
        if self.symbol and alert.symbol not in self.symbol:
            return False
        if self.exchange:
            if alert.exchange is not None:
                return alert.exchange in self.exchange
            venues = alert.details.get("venues") if isinstance(alert.details, dict) else None
            return isinstance(venues, list) and any(v in self.exchange for v in venues)
        return True


def parse_retry_after(value: str | None, now_s: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date); None when absent/bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - now_s)


@dataclass
class _Counters:
    deliveries: int = 0
    filtered: int = 0
    skipped: int = 0
    duplicates: int = 0
    dead: int = 0
    failures: dict[str, int] = field(default_factory=dict)


class WebhookSink:
    """POST alerts to ``url``, signed, from a durable outbox (see the module docstring).

    Args:
        url: receiver URL.
        secret: ``whsec_<base64>``; decoded at once (ValueError when malformed), never stored as text.
        outbox: the shared :class:`Outbox`; this sink's entries are keyed by ``name``.
        session: aiohttp session (owned by the caller).
        filters: an :class:`AlertFilter`, a mapping or a settings object (see ``AlertFilter.of``).
        name: stable key of this sink in the outbox and metrics label ``webhook:<name>``. Keep it stable
            across restarts, or the entries left by the previous run are not picked up.
        timeout_s: total timeout of one POST.
        max_backoff_s: cap of the retry delay.
        max_rejections: consecutive non-retryable responses (4xx other than 408/429) before an entry is
            dropped as dead.
        idle_poll_s: longest sleep of the delivery loop when nothing is due.
        clock: wall clock (unix seconds); ``webhook-timestamp`` and due times use it.
    """

    def __init__(
        self,
        url: str,
        secret: str,
        outbox: Outbox,
        session: aiohttp.ClientSession,
        filters: Any = None,
        *,
        name: str = "default",
        timeout_s: float = 10.0,
        max_backoff_s: float = 300.0,
        max_rejections: int = 10,
        idle_poll_s: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._key = decode_secret(secret)
        self.url = url
        self.outbox = outbox
        self.session = session
        self.filter = AlertFilter.of(filters)
        self.key = name
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.max_backoff_s = max_backoff_s
        self.max_rejections = max_rejections
        self.idle_poll_s = idle_poll_s
        self._clock = clock
        self._wake = asyncio.Event()
        self._hold_until = 0.0
        self._intake_done = False
        self._c = _Counters()

    def __repr__(self) -> str:
        return f"WebhookSink(name={self.key!r}, url={self.url!r}, secret=<redacted>)"

    @property
    def name(self) -> str:
        """Metrics label ``webhook:<name>``."""
        return f"webhook:{self.key}"

    # ------------------------------------------------------------------ loops

    async def run(self, consumer: AsyncIterable[Event]) -> None:
        """Take alerts from ``consumer`` into the outbox and deliver them.

        Delivery starts at once (entries left by a previous run go first). When the consumer ends
        (bus closed and drained), ``run`` returns as soon as this sink's outbox is empty; while the
        receiver is down it keeps retrying until cancelled: what is left stays in the outbox for the
        next start.
        """
        self._intake_done = False
        delivery = asyncio.create_task(self.deliver_forever(), name=f"{self.name}:delivery")
        try:
            await self.intake(consumer)
            self._intake_done = True
            self._wake.set()
            await delivery
        finally:
            if not delivery.done():
                delivery.cancel()
                try:
                    await delivery
                except asyncio.CancelledError:
                    pass

    async def intake(self, consumer: AsyncIterable[Event]) -> None:
        """Write every alert that passes the filters to the outbox (idempotent), then wake the delivery loop."""
        async for event in consumer:
            if not isinstance(event, Alert):
                self._c.skipped += 1
                continue
            if not self.filter.matches(event):
                self._c.filtered += 1
                continue
            if await self.outbox.aput(event, sink=self.key):
                self._wake.set()
            else:
                self._c.duplicates += 1

    async def deliver_forever(self) -> None:
        """Deliver due entries until the intake has ended and the outbox is empty (or cancelled)."""
        while True:
            self._wake.clear()
            now = self._clock()
            if now >= self._hold_until:
                entries = await self.outbox.adue(self.key, now)
                for entry in entries:
                    if not await self.deliver(entry):
                        break
                if entries:
                    continue  # more may be due (limit) or became due meanwhile
            if self._intake_done and self.outbox.depth(self.key) == 0:
                return
            next_at = await self.outbox.anext_due_at(self.key)
            wait = self.idle_poll_s
            if next_at is not None:
                wait = min(wait, max(next_at, self._hold_until) - self._clock())
            if wait > 0:
                try:
                    async with asyncio.timeout(wait):
                        await self._wake.wait()
                except TimeoutError:
                    pass

    async def deliver(self, entry: Entry) -> bool:
        """POST one entry and record the outcome; False when the endpoint is unwell (stop the batch)."""
        msg_id = message_id(entry.alert_id, entry.status)
        ts = int(self._clock())
        headers = {
            "content-type": "application/json",
            "user-agent": f"streamer/{__version__}",
            "webhook-id": msg_id,
            "webhook-timestamp": str(ts),
            "webhook-signature": sign(self._key, msg_id, ts, entry.body),
        }
        retry_after: float | None = None
        try:
            async with self.session.post(self.url, data=entry.body, headers=headers, timeout=self.timeout) as resp:
                status = resp.status
                if status in (429, 503):
                    retry_after = parse_retry_after(resp.headers.get("Retry-After"), self._clock())
                await resp.read()
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            return await self._endpoint_failure(entry, "timeout", None)
        except (aiohttp.ClientError, OSError) as exc:
            reason = "connect" if isinstance(exc, aiohttp.ClientConnectorError | OSError) else "network"
            return await self._endpoint_failure(entry, reason, None, exc)
        if 200 <= status < 300:
            await self.outbox.adelivered(entry)
            self._c.deliveries += 1
            return True
        if status == 429:
            return await self._endpoint_failure(entry, "http_429", retry_after)
        if status >= 500 or status == 408:
            return await self._endpoint_failure(entry, "http_5xx" if status >= 500 else "http_408", retry_after)
        # the receiver rejects this message (4xx, 3xx): retry it alone, then give up
        reason = f"http_{status // 100}xx"
        self._count(reason)
        dead = entry.attempts + 1 >= self.max_rejections
        await self.outbox.afailed(entry, None, reason=f"http_{status}", max_backoff_s=self.max_backoff_s, dead=dead)
        if dead:
            self._c.dead += 1
            log.error("webhook %s: %s dropped after %d rejections (last HTTP %d)",
                      self.key, message_id(entry.alert_id, entry.status), entry.attempts + 1, status)
        elif self._c.failures.get(reason, 0) <= _LOG_SAMPLES:
            log.warning("webhook %s: HTTP %d for %s; will retry", self.key, status, msg_id)
        return True

    async def _endpoint_failure(
        self, entry: Entry, reason: str, retry_after: float | None, exc: BaseException | None = None
    ) -> bool:
        self._count(reason)
        delay = await self.outbox.afailed(entry, retry_after, reason=reason, max_backoff_s=self.max_backoff_s)
        self._hold_until = self._clock() + delay
        if self._c.failures[reason] <= _LOG_SAMPLES:
            log.warning("webhook %s: delivery failed (%s%s); retrying in %.1f s",
                        self.key, reason, f": {exc}" if exc else "", delay)
        return False

    def _count(self, reason: str) -> None:
        self._c.failures[reason] = self._c.failures.get(reason, 0) + 1

    # ------------------------------------------------------------------ observability

    def stats(self) -> dict[str, Any]:
        """written (= deliveries), deliveries, errors (failed attempts), failures by reason, dead, filtered,
        skipped, duplicates, outbox depth and oldest undelivered age (s, None when empty)."""
        ob = self.outbox.stats().get(self.key, {})
        errors = sum(self._c.failures.values())
        return {
            "written": self._c.deliveries,
            "deliveries": self._c.deliveries,
            "errors": errors,
            "failures": dict(self._c.failures),
            "dead": self._c.dead,
            "filtered": self._c.filtered,
            "skipped": self._c.skipped,
            "duplicates": self._c.duplicates,
            "outbox_depth": ob.get("depth", 0),
            "oldest_undelivered_age_s": ob.get("oldest_age_s"),
        }


def sinks_from(
    webhooks: Iterable[Any], outbox: Outbox, session: aiohttp.ClientSession
) -> list[WebhookSink]:
    """One WebhookSink per ``WebhookSinkSettings`` (already validated by ``config.load_settings``)."""
    return [
        WebhookSink(w.url, w.secret, outbox, session, w.filters, name=w.key, timeout_s=w.timeout_s,
                    max_backoff_s=w.max_backoff_s)
        for w in webhooks
    ]
