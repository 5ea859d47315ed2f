"""Chat sinks: Slack and Discord incoming webhooks, within their documented limits and rate limits.

Payload builders are pure (``slack_payload``, ``discord_payload``); ``ChatSink``
posts them one at a time with pacing and retries. Text over a limit is cut and
ends with an ellipsis (``…``); lengths are counted in UTF-16 code units (what
both services' JavaScript-side validators count), so a summary full of emoji
cannot exceed a limit that a ``len()`` check would pass.

Slack (incoming webhook, https://api.slack.com/messaging/webhooks; Block Kit
reference https://api.slack.com/reference/block-kit/blocks):

- ``blocks``: at most 50 blocks per message; a ``section`` block's ``text`` at
  most 3000 characters, its ``fields`` at most 10 items of at most 2000
  characters each; a ``header`` block's plain text at most 150 characters.
- ``text`` is the notification fallback when ``blocks`` are present.
- Rate limit (https://api.slack.com/docs/rate-limits, "Incoming webhooks"):
  1 message per second per webhook, short bursts tolerated; an HTTP 429 carries
  ``Retry-After`` in seconds. The sink spaces its posts ``SLACK_MIN_INTERVAL_S``
  apart and honours ``Retry-After``.

Discord (execute webhook, https://discord.com/developers/docs/resources/webhook#execute-webhook;
embed limits https://discord.com/developers/docs/resources/message#embed-object-embed-limits):

- ``content`` at most 2000 characters.
- Embed: ``title`` ≤ 256, ``description`` ≤ 4096, ≤ 25 ``fields`` with
  ``name`` ≤ 256 and ``value`` ≤ 1024, ``footer.text`` ≤ 2048, ``author.name``
  ≤ 256, and the sum of title, description, field names and values, footer
  text and author name ≤ 6000 characters.
- Rate limits (https://discord.com/developers/docs/topics/rate-limits): every
  response carries ``X-RateLimit-Remaining`` and ``X-RateLimit-Reset-After``
  (seconds, float); when ``Remaining`` is 0 the sink waits ``Reset-After``
  before its next post. A 429 has a JSON body with ``retry_after`` (seconds,
  float) and ``global``; the sink waits that long and retries the same message.
- ``allowed_mentions: {"parse": []}`` so no summary can ping ``@everyone``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterable, Collection, Mapping
from typing import Any, Literal

import aiohttp

from streamer.alerts.alertmanager import details_json, iso_utc
from streamer.model import Alert, Event

__all__ = [
    "DISCORD_COLOURS",
    "DISCORD_LIMITS",
    "SLACK_LIMITS",
    "SLACK_MIN_INTERVAL_S",
    "ChatSink",
    "clip",
    "discord_embed_total",
    "discord_payload",
    "slack_payload",
    "utf16_len",
]

log = logging.getLogger("streamer.alerts.chat")

ELLIPSIS = "…"
SLACK_MIN_INTERVAL_S = 1.0
SLACK_LIMITS = {"blocks": 50, "section_text": 3000, "section_fields": 10, "field_text": 2000, "header_text": 150}
DISCORD_LIMITS = {
    "content": 2000,
    "title": 256,
    "description": 4096,
    "fields": 25,
    "field_name": 256,
    "field_value": 1024,
    "footer_text": 2048,
    "embed_total": 6000,
}
# firing by severity; resolved is green whatever the severity
DISCORD_COLOURS = {"critical": 0xE01E5A, "warning": 0xECB22E, "info": 0x36C5F0, "resolved": 0x2EB67D}
_SLACK_EMOJI = {"critical": ":red_circle:", "warning": ":large_orange_circle:", "info": ":large_blue_circle:"}
_ERROR_LOG_SAMPLES = 5
_FILTER_KEYS = ("rule", "severity", "exchange", "symbol")


# --------------------------------------------------------------------------- text helpers


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units (characters outside the BMP count 2)."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def clip(text: str, limit: int) -> str:
    """``text`` if it fits in ``limit`` UTF-16 units, else cut so that it plus ``…`` fits."""
    if utf16_len(text) <= limit:
        return text
    if limit <= 0:
        return ""
    budget = limit - 1  # the ellipsis is one unit
    used = 0
    for i, ch in enumerate(text):
        w = 2 if ord(ch) > 0xFFFF else 1
        if used + w > budget:
            return text[:i] + ELLIPSIS
        used += w
    return text + ELLIPSIS  # pragma: no cover


def _code_block(text: str, limit: int, prefix: str = "") -> str:
    """``prefix`` + a ``` fenced block of ``text``, the whole at most ``limit`` units (the fence always closed)."""
    frame = utf16_len(prefix) + 6
    return f"{prefix}```{clip(text, max(0, limit - frame))}```"


def _slack_escape(text: str) -> str:
    # https://api.slack.com/reference/surfaces/formatting#escaping
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _fmt(x: float) -> str:
    return f"{x:,.6g}" if abs(x) < 1e6 else f"{x:,.0f}"


def _status_word(alert: Alert) -> str:
    return "FIRING" if alert.status == "firing" else "RESOLVED"


def _facts(alert: Alert) -> list[tuple[str, str]]:
    """The short name/value pairs both formats show."""
    window = f"{alert.window_s:g} s" if alert.window_s else "point"
    return [
        ("Rule", alert.rule),
        ("Severity", alert.severity),
        ("Exchange", alert.exchange or "all venues"),
        ("Symbol", alert.symbol or "-"),
        ("Value", _fmt(alert.value)),
        ("Threshold", _fmt(alert.threshold)),
        ("Window", window),
        ("Started", iso_utc(alert.started_at)),
    ]


def _fallback(alert: Alert) -> str:
    return f"[{_status_word(alert)}] {alert.severity} {alert.rule}: {alert.summary}"


# --------------------------------------------------------------------------- Slack


def slack_payload(alert: Alert) -> dict[str, Any]:
    """Slack incoming-webhook body: ``text`` fallback + ``blocks`` (header, summary, facts, details, context).

    Every block is within Slack's limits (module docstring); 5 blocks, far under 50.
    """
    lim = SLACK_LIMITS
    emoji = ":large_green_circle:" if alert.status == "resolved" else _SLACK_EMOJI.get(alert.severity, "")
    header = clip(f"{_status_word(alert)} · {alert.severity} · {alert.rule}", lim["header_text"])
    fields = [
        {"type": "mrkdwn", "text": clip(f"*{name}*\n{_slack_escape(value)}", lim["field_text"])}
        for name, value in _facts(alert)
    ][: lim["section_fields"]]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": header, "emoji": True}},
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": clip(f"{emoji} {_slack_escape(alert.summary)}", lim["section_text"])},
        },
        {"type": "section", "fields": fields},
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": _code_block(_slack_escape(details_json(alert)), lim["section_text"], "*Details*\n"),
            },
        },
        {
            "type": "context",
            "elements": [
                {"type": "mrkdwn", "text": clip(f"id `{alert.id}` · {iso_utc(alert.ts)}", lim["field_text"])}
            ],
        },
    ]
    return {"text": clip(_fallback(alert), lim["section_text"]), "blocks": blocks[: lim["blocks"]]}


# --------------------------------------------------------------------------- Discord


def discord_embed_total(embed: Mapping[str, Any]) -> int:
    """Characters Discord counts toward the 6000 embed total (title, description, fields, footer, author)."""
    total = utf16_len(embed.get("title", "")) + utf16_len(embed.get("description", ""))
    for f in embed.get("fields", []):
        total += utf16_len(f["name"]) + utf16_len(f["value"])
    total += utf16_len(embed.get("footer", {}).get("text", ""))
    total += utf16_len(embed.get("author", {}).get("name", ""))
    return total


def discord_payload(alert: Alert) -> dict[str, Any]:
    """Discord execute-webhook body: ``content`` + one embed (colour by severity, green when resolved).

    The description is the summary, then the details as JSON in a code block;
    the details are cut first, then the summary, to keep the description ≤ 4096
    and the embed ≤ 6000 (trailing fields are dropped only if the fields alone
    leave no room).
    """
    lim = DISCORD_LIMITS
    colour = DISCORD_COLOURS["resolved"] if alert.status == "resolved" else DISCORD_COLOURS.get(alert.severity, 0)
    fields = [
        {"name": clip(name, lim["field_name"]), "value": clip(value or "-", lim["field_value"]), "inline": True}
        for name, value in _facts(alert)
    ][: lim["fields"]]
    embed: dict[str, Any] = {
        "title": clip(f"[{_status_word(alert)}] {alert.rule} · {alert.severity}", lim["title"]),
        "color": colour,
        "fields": fields,
        "timestamp": iso_utc(alert.ts),
        "footer": {"text": clip(f"streamer · {alert.id}", lim["footer_text"])},
    }
    while embed["fields"] and lim["embed_total"] - discord_embed_total(embed) < 64:
        embed["fields"].pop()
    budget = max(0, min(lim["description"], lim["embed_total"] - discord_embed_total(embed)))
    description = clip(alert.summary, budget)
    room = budget - utf16_len(description) - 2
    if room > 16:  # enough for a useful (possibly cut) details block
        description += "\n\n" + _code_block(details_json(alert), room)
    embed["description"] = description
    return {
        "content": clip(_fallback(alert), lim["content"]),
        "embeds": [embed],
        "allowed_mentions": {"parse": []},
    }


# --------------------------------------------------------------------------- sink

ChatKind = Literal["slack", "discord"]


def _float_or_none(value: object) -> float | None:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


class ChatSink:
    """Post each alert to a Slack or Discord incoming webhook, paced and retried.

    Args:
        kind: ``slack`` or ``discord``.
        url: the webhook URL (a secret: never logged).
        session: aiohttp session owned by the caller.
        filters: optional ``{"rule"|"severity"|"exchange"|"symbol": [allowed values]}``; an empty
            or missing list admits everything; an alert must pass every key.
        name: metrics label suffix (``slack:<name>``).
        min_interval_s: least time between two posts (default 1 s for Slack, 0 for Discord,
            which is paced by its headers instead).
        max_attempts: tries per message on 5xx / network errors (429 waits do not count,
            up to ``max_rate_limited`` of them).
        backoff_s / backoff_max_s: retry delay, doubled per retry, capped.
        max_wait_s: cap on any single server-requested wait.

    ``stats()``: ``written``, ``errors``, ``retries``, ``rate_limited`` (429s), ``filtered``, ``skipped``.
    """

    def __init__(
        self,
        kind: ChatKind,
        url: str,
        session: aiohttp.ClientSession,
        *,
        filters: Mapping[str, Collection[str] | None] | None = None,
        name: str = "",
        min_interval_s: float | None = None,
        max_attempts: int = 5,
        max_rate_limited: int = 10,
        backoff_s: float = 0.5,
        backoff_max_s: float = 30.0,
        max_wait_s: float = 300.0,
        timeout_s: float = 10.0,
    ) -> None:
        if kind not in ("slack", "discord"):
            raise ValueError(f"chat sink kind must be 'slack' or 'discord', got {kind!r}")
        unknown = set(filters or {}) - set(_FILTER_KEYS)
        if unknown:
            raise ValueError(f"unknown chat sink filter keys {sorted(unknown)}; allowed: {list(_FILTER_KEYS)}")
        self.kind: ChatKind = kind
        self.name = f"{kind}:{name}" if name else kind
        self._url = url
        self._session = session
        self._filters = {k: frozenset(v) for k, v in (filters or {}).items() if v}
        default_interval = SLACK_MIN_INTERVAL_S if kind == "slack" else 0.0
        self.min_interval_s = default_interval if min_interval_s is None else min_interval_s
        self.max_attempts = max(1, max_attempts)
        self.max_rate_limited = max_rate_limited
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.max_wait_s = max_wait_s
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._next_send = 0.0  # monotonic time before which no post goes out
        self.written = 0
        self.errors = 0
        self.retries = 0
        self.rate_limited = 0
        self.filtered = 0
        self.skipped = 0

    def accepts(self, alert: Alert) -> bool:
        """Whether the filters admit this alert."""
        return all(getattr(alert, key) in allowed for key, allowed in self._filters.items())

    def payload(self, alert: Alert) -> dict[str, Any]:
        """The body for this sink's kind."""
        return slack_payload(alert) if self.kind == "slack" else discord_payload(alert)

    async def _pace(self) -> None:
        delay = self._next_send - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)

    def _hold(self, seconds: float) -> None:
        """No post before ``seconds`` from now (keeps the later of the existing and the new bound)."""
        seconds = min(max(0.0, seconds), self.max_wait_s)
        self._next_send = max(self._next_send, time.monotonic() + seconds)

    async def _rate_limit_wait(self, resp: aiohttp.ClientResponse) -> float:
        """Seconds to wait after a 429: Discord's JSON ``retry_after``, else ``Retry-After``, else 1 s."""
        wait: float | None = None
        if self.kind == "discord":
            try:
                body = await resp.json(content_type=None)
            except (ValueError, aiohttp.ClientError):
                body = None
            if isinstance(body, dict):
                wait = _float_or_none(body.get("retry_after"))
        if wait is None:
            wait = _float_or_none(resp.headers.get("Retry-After"))
        return 1.0 if wait is None else wait

    def _after_response(self, resp: aiohttp.ClientResponse) -> None:
        """Pacing for the next post: Slack's fixed interval; Discord's bucket headers."""
        self._hold(self.min_interval_s)
        if self.kind == "discord":
            remaining = _float_or_none(resp.headers.get("X-RateLimit-Remaining"))
            reset_after = _float_or_none(resp.headers.get("X-RateLimit-Reset-After"))
            if remaining is not None and remaining <= 0 and reset_after is not None:
                self._hold(reset_after)

    async def send(self, alert: Alert) -> bool:
        """Post one alert (paced; retried on 429, 5xx and network errors); False when given up."""
        body = self.payload(alert)
        failures = 0
        limited = 0
        delay = self.backoff_s
        while True:
            await self._pace()
            try:
                async with self._session.post(self._url, json=body, timeout=self._timeout) as resp:
                    if resp.status == 429:
                        self.rate_limited += 1
                        limited += 1
                        wait = await self._rate_limit_wait(resp)
                        self._hold(wait)
                        if limited > self.max_rate_limited:
                            return self._give_up(alert, f"still rate limited after {limited} tries")
                        continue
                    text = await resp.text()
                    self._after_response(resp)
                    if 200 <= resp.status < 300:
                        self.written += 1
                        return True
                    reason = f"HTTP {resp.status}: {text[:200]}"
                    if 400 <= resp.status < 500 and resp.status != 408:
                        return self._give_up(alert, f"refused, not retried: {reason}")
            except (aiohttp.ClientError, TimeoutError) as exc:
                reason = f"{type(exc).__name__}: {exc}"
                self._hold(self.min_interval_s)
            failures += 1
            if failures >= self.max_attempts:
                return self._give_up(alert, f"gave up after {failures} attempts: {reason}")
            self.retries += 1
            self._hold(delay)
            delay = min(delay * 2, self.backoff_max_s)

    def _give_up(self, alert: Alert, msg: str) -> bool:
        self.errors += 1
        if self.errors <= _ERROR_LOG_SAMPLES:
            log.warning("%s sink: alert %s not delivered: %s", self.name, alert.id, msg)
        return False

    async def run(self, consumer: AsyncIterable[Event]) -> None:
        """Post every admitted alert from ``consumer``, in order, until it ends (or is cancelled)."""
        async for event in consumer:
            if not isinstance(event, Alert):
                self.skipped += 1
            elif not self.accepts(event):
                self.filtered += 1
            else:
                await self.send(event)

    def stats(self) -> dict[str, int]:
        """written, errors, retries, rate_limited, filtered, skipped."""
        return {
            "written": self.written,
            "errors": self.errors,
            "retries": self.retries,
            "rate_limited": self.rate_limited,
            "filtered": self.filtered,
            "skipped": self.skipped,
        }
