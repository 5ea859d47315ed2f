"""Alertmanager sink: alerts POSTed to Alertmanager's ``/api/v2/alerts``, re-sent while firing.

Payload (``alertmanager_payload``, pure; schema: ``postableAlerts`` in
``prometheus/alertmanager`` ``api/v2/openapi.yaml``):

- ``labels`` (identify the alert; Alertmanager fingerprints on them):
  ``alertname`` = rule, ``severity``, ``exchange``, ``symbol``, ``streamer_id`` =
  the episode id. A label whose value is null (``exchange`` of a cross-exchange
  rule) is left out: in Alertmanager an empty label value means "no such label".
  Because ``streamer_id`` is a label, each episode is its own Alertmanager alert
  and its ``firing`` and ``resolved`` posts share one fingerprint.
- ``annotations``: ``summary`` (the alert's one line), ``description`` (status,
  value vs threshold, window) and ``details`` (the rule's details as compact
  JSON, keys sorted).
- ``startsAt``: ``started_at`` as ISO-8601 UTC with milliseconds (``...Z``).
- ``endsAt``:

  * firing: wall-clock now + ``VALIDITY_FACTOR`` x ``resend_s``. Alertmanager
    treats an alert whose ``endsAt`` has passed as resolved, so a firing alert
    must be re-sent before then; the sink re-sends every ``resend_s`` and the
    factor (4, as Prometheus does with ``4 x max(resend-delay, eval-interval)``)
    tolerates a few lost re-sends. If the daemon dies, Alertmanager resolves the
    alert by itself at most ``4 x resend_s`` later; it is never stuck firing.
  * resolved: the alert's ``ts`` (the event time it resolved).

- ``generatorURL``: the configured link back to streamer (left out when empty:
  the schema types it ``format: uri``).

``AlertmanagerSink`` keeps the firing set (by episode id), POSTs every alert as
it arrives, re-sends all firing alerts every ``resend_s`` in one request, and
retries failed requests with capped exponential backoff. A resolved alert whose
delivery failed is retried at every re-send tick until Alertmanager accepts it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import msgspec

from streamer.model import Alert, Event

__all__ = ["ALERTS_PATH", "VALIDITY_FACTOR", "AlertmanagerSink", "alertmanager_payload", "iso_utc"]

log = logging.getLogger("streamer.alerts.alertmanager")

ALERTS_PATH = "/api/v2/alerts"
VALIDITY_FACTOR = 4
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ERROR_LOG_SAMPLES = 5


def iso_utc(ms: int) -> str:
    """ISO-8601 / RFC 3339 UTC with milliseconds, ``2023-11-14T22:13:20.000Z`` (exact: no float rounding)."""
    return (_EPOCH + timedelta(milliseconds=int(ms))).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _labels(alert: Alert) -> dict[str, str]:
    labels = {
        "alertname": alert.rule,
        "severity": alert.severity,
        "exchange": alert.exchange,
        "symbol": alert.symbol,
        "streamer_id": alert.id,
    }
    return {k: v for k, v in labels.items() if v}


def _description(alert: Alert) -> str:
    window = f" over {alert.window_s:g} s" if alert.window_s else ""
    return f"{alert.rule} {alert.status}: value {alert.value:g} vs threshold {alert.threshold:g}{window}"


def details_json(alert: Alert) -> str:
    """The alert's details as compact JSON with sorted keys (non-JSON values as strings)."""
    return json.dumps(alert.details, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def alertmanager_payload(
    alert: Alert, generator_url: str | None, resend_s: float, *, now_ms: int | None = None
) -> list[dict[str, Any]]:
    """The body of ``POST /api/v2/alerts`` for one alert (a list of one ``postableAlert``).

    Args:
        alert: the alert (firing or resolved).
        generator_url: link back to the source; omitted from the payload when empty.
        resend_s: the sink's re-send period; a firing alert is valid for ``VALIDITY_FACTOR x resend_s``.
        now_ms: wall-clock now in ms (default: ``time.time()``); only firing alerts use it.
    """
    if alert.status == "firing":
        now = int(time.time() * 1000) if now_ms is None else now_ms
        ends_ms = now + round(VALIDITY_FACTOR * resend_s * 1000)
    else:
        ends_ms = alert.ts
    item: dict[str, Any] = {
        "labels": _labels(alert),
        "annotations": {
            "summary": alert.summary,
            "description": _description(alert),
            "details": details_json(alert),
        },
        "startsAt": iso_utc(alert.started_at),
        "endsAt": iso_utc(ends_ms),
    }
    if generator_url:
        item["generatorURL"] = generator_url
    return [item]


def _alerts_url(url: str) -> str:
    base = url.rstrip("/")
    return base if base.endswith(ALERTS_PATH) else base + ALERTS_PATH


class AlertmanagerSink:
    """POST alerts to one Alertmanager; re-send firing ones every ``resend_s`` until resolved.

    Args:
        url: Alertmanager base URL (``http://alertmanager:9093``) or the full ``.../api/v2/alerts``.
        session: aiohttp session owned by the caller.
        resend_s: re-send period of firing alerts (Prometheus' default ``--rules.alert.resend-delay`` is 1 m).
        generator_url: ``generatorURL`` of every alert ("" leaves it out).
        name: metrics label suffix (``alertmanager:<name>``).
        max_attempts: tries per request before it counts as an error.
        backoff_s / backoff_max_s: first retry delay, doubled per retry, capped.
        timeout_s: per-request timeout.

    ``stats()``: ``written`` (alerts accepted, first send), ``resent`` (alerts
    accepted in re-sends), ``errors`` (requests given up after ``max_attempts``
    or refused with a 4xx), ``retries``, ``skipped`` (non-alert events),
    ``firing`` (alerts being re-sent now), ``pending_resolved``.
    """

    def __init__(
        self,
        url: str,
        session: aiohttp.ClientSession,
        resend_s: float = 60.0,
        *,
        generator_url: str = "",
        name: str = "",
        max_attempts: int = 5,
        backoff_s: float = 0.5,
        backoff_max_s: float = 30.0,
        timeout_s: float = 10.0,
        clock_ms: Callable[[], int] | None = None,
    ) -> None:
        if resend_s <= 0:
            raise ValueError(f"resend_s must be > 0, got {resend_s}")
        self.url = _alerts_url(url)
        self.name = f"alertmanager:{name}" if name else "alertmanager"
        self._session = session
        self.resend_s = resend_s
        self.generator_url = generator_url
        self.max_attempts = max(1, max_attempts)
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._clock_ms = clock_ms or (lambda: int(time.time() * 1000))
        self._firing: dict[str, Alert] = {}
        self._pending_resolved: dict[str, list[Alert]] = {}
        self._lock = asyncio.Lock()
        self.written = 0
        self.resent = 0
        self.errors = 0
        self.retries = 0
        self.skipped = 0

    # ------------------------------------------------------------------ state

    @property
    def firing(self) -> dict[str, Alert]:
        """Firing alerts by episode id (a copy)."""
        return dict(self._firing)

    def _payload(self, alerts: Sequence[Alert]) -> list[dict[str, Any]]:
        now = self._clock_ms()
        out: list[dict[str, Any]] = []
        for a in alerts:
            out.extend(alertmanager_payload(a, self.generator_url, self.resend_s, now_ms=now))
        return out

    def _transition(self, alert: Alert) -> list[Alert]:
        """Update the firing set; the alerts to post for this one."""
        if alert.status == "firing":
            self._firing[alert.id] = alert
            return [alert]
        previous = self._firing.pop(alert.id, None)
        to_send = [alert]
        if previous is not None and _labels(previous) != _labels(alert):
            # labels changed since it fired (e.g. severity): resolve what Alertmanager holds too
            to_send.append(msgspec.structs.replace(previous, status="resolved", ts=alert.ts))
        return to_send

    # ------------------------------------------------------------------ delivery

    async def _post(self, body: list[dict[str, Any]]) -> bool:
        """POST with retries (5xx, 429, network errors); False once given up or refused (4xx)."""
        delay = self.backoff_s
        for attempt in range(1, self.max_attempts + 1):
            try:
                async with self._session.post(self.url, json=body, timeout=self._timeout) as resp:
                    text = await resp.text()
                    if 200 <= resp.status < 300:
                        return True
                    reason = f"HTTP {resp.status}: {text[:200]}"
                    if 400 <= resp.status < 500 and resp.status not in (408, 429):
                        self._error(f"refused, not retried: {reason}")
                        return False
            except (aiohttp.ClientError, TimeoutError) as exc:
                reason = f"{type(exc).__name__}: {exc}"
            if attempt == self.max_attempts:
                self._error(f"gave up after {attempt} attempts: {reason}")
                return False
            self.retries += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.backoff_max_s)
        return False  # pragma: no cover

    def _error(self, msg: str) -> None:
        self.errors += 1
        if self.errors <= _ERROR_LOG_SAMPLES:
            log.warning("%s: POST %s %s", self.name, self.url, msg)

    async def deliver(self, alert: Alert) -> bool:
        """Record the alert's transition and POST it now (with retries)."""
        async with self._lock:
            alerts = self._transition(alert)
            ok = await self._post(self._payload(alerts))
            if ok:
                self.written += 1
            elif alert.status == "resolved":
                self._pending_resolved[alert.id] = alerts
            return ok

    async def resend(self) -> bool:
        """POST every firing alert (fresh ``endsAt``) and every undelivered resolution, in one request."""
        async with self._lock:
            pending = list(self._pending_resolved.items())
            alerts = list(self._firing.values()) + [a for _, group in pending for a in group]
            if not alerts:
                return True
            ok = await self._post(self._payload(alerts))
            if ok:
                self.resent += len(alerts)
                for key, _ in pending:
                    self._pending_resolved.pop(key, None)
            return ok

    async def _resend_loop(self) -> None:
        while True:
            await asyncio.sleep(self.resend_s)
            await self.resend()

    async def run(self, consumer: AsyncIterable[Event]) -> None:
        """Deliver every alert from ``consumer`` and re-send firing ones until it ends (or is cancelled).

        When the consumer ends the re-sending stops too; firing alerts then
        expire in Alertmanager at their ``endsAt`` unless a new run re-sends them.
        """
        ticker = asyncio.create_task(self._resend_loop(), name=f"{self.name}:resend")
        try:
            async for event in consumer:
                if isinstance(event, Alert):
                    await self.deliver(event)
                else:
                    self.skipped += 1
        finally:
            ticker.cancel()
            try:
                await ticker
            except asyncio.CancelledError:
                pass

    def stats(self) -> dict[str, int]:
        """written, resent, errors, retries, skipped, firing, pending_resolved."""
        return {
            "written": self.written,
            "resent": self.resent,
            "errors": self.errors,
            "retries": self.retries,
            "skipped": self.skipped,
            "firing": len(self._firing),
            "pending_resolved": len(self._pending_resolved),
        }
