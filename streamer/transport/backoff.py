"""Reconnect and retry policy: a jittered capped exponential delay generator and ``classify(exc)``.

Both pieces are pure: no I/O, no clock, no logging. The WebSocket session and the REST client
combine them with a reset rule of their own (see ``ws.py`` and ``rest.py``).

Delays (``backoff``)
    The n-th delay (n = 0, 1, 2, ...) is drawn from ``base_n = min(cap, initial * factor**n)``:

    - ``"equal"`` jitter (the default): ``base_n / 2 + uniform(0, base_n / 2)``. Every delay is at
      least half its base, so a server that accepts and drops at once can never cause a hot loop,
      and with ``factor >= 2`` the delays never shrink from one attempt to the next.
    - ``"full"`` jitter: ``uniform(0, base_n)``. Spreads a herd of clients best but may yield
      delays close to zero.
    - ``"none"``: exactly ``base_n`` (for tests and for reasoning about bounds).

Retry or fatal (``classify``)
    ``classify`` says whether the same request could succeed if tried again later. Retryable:
    network errors (``OSError``, which includes aiohttp's connection errors), timeouts, a WebSocket
    closed under us (``ConnectionClosed``), a handshake response that could not be read, and HTTP
    status 408, 429 and 5xx (including 418, which the Binance-style APIs use for a temporary IP
    ban). Fatal: every other HTTP status (400 bad symbol, 401, 403, 404 ...), malformed URIs,
    handshakes the server rejects for good, and any other exception.

    A long-lived market-data session never gives up: ``WsSession`` retries *everything* with
    backoff, and ``classify`` only chooses the log level and which error counter is bumped. The
    REST client, which serves one request at a time, raises at once on ``"fatal"``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Literal

import aiohttp
import websockets.exceptions as wse

__all__ = ["Jitter", "Verdict", "backoff", "classify", "classify_status"]

Jitter = Literal["equal", "full", "none"]
Verdict = Literal["retry", "fatal"]


def backoff(
    initial: float = 0.5,
    factor: float = 2.0,
    cap: float = 60.0,
    jitter: Jitter = "equal",
    max_attempts: int | None = None,
    rng: random.Random | None = None,
) -> Iterator[float]:
    """Yield delays in seconds to wait between attempts: jittered, exponential, capped.

    Args:
        initial: Base of the first delay, in seconds (> 0).
        factor: Growth of the base from one delay to the next (>= 1).
        cap: Largest base, in seconds; no delay exceeds it.
        jitter: ``"equal"`` (default), ``"full"`` or ``"none"``; see the module docstring.
        max_attempts: Total number of attempts the caller may make, the first included. The
            generator then yields ``max_attempts - 1`` delays (one before each retry) and stops.
            ``None`` (default) yields forever, which is what a WebSocket session wants.
        rng: Source of randomness (a seeded ``random.Random`` in tests); default the module's.

    Yields:
        The next delay in seconds, ``0 <= delay <= cap``.

    Raises:
        ValueError: On a non-positive ``initial`` or ``cap``, ``factor < 1`` or
            ``max_attempts < 1``.
    """
    if initial <= 0 or cap <= 0:
        raise ValueError(f"backoff: initial ({initial}) and cap ({cap}) must be > 0 seconds")
    if factor < 1:
        raise ValueError(f"backoff: factor ({factor}) must be >= 1")
    if max_attempts is not None and max_attempts < 1:
        raise ValueError(f"backoff: max_attempts ({max_attempts}) must be >= 1 or None")
    uniform = (rng or random).uniform  # the default is the module-level generator
    base = min(initial, cap)
    yielded = 0
    while max_attempts is None or yielded < max_attempts - 1:
        if jitter == "equal":
            yield base / 2 + uniform(0.0, base / 2)
        elif jitter == "full":
            yield uniform(0.0, base)
        else:
            yield base
        yielded += 1
        base = min(cap, base * factor)


def classify_status(status: int) -> Verdict:
    """Tell whether an HTTP status (response or rejected WebSocket handshake) is worth retrying.

    Args:
        status: HTTP status code.

    Returns:
        ``"retry"`` for 408, 418, 429 and 5xx, else ``"fatal"``.
    """
    if status >= 500 or status in (408, 418, 429):
        return "retry"
    return "fatal"


def classify(exc: BaseException) -> Verdict:
    """Tell whether the operation that raised ``exc`` could succeed if tried again later.

    Understands the exceptions of the stdlib, websockets and aiohttp, and any exception with an
    integer ``status`` attribute (``aiohttp.ClientResponseError``, ``RestError``).

    Args:
        exc: The exception raised by a connect, a read or an HTTP request. Do not pass
            ``asyncio.CancelledError``: cancellation is never retried.

    Returns:
        ``"retry"`` or ``"fatal"``; see the module docstring for the table.
    """
    if isinstance(exc, wse.InvalidStatus):
        return classify_status(exc.response.status_code)
    status = getattr(exc, "status", None)
    if isinstance(status, int) and not isinstance(status, bool) and status >= 100:
        return classify_status(status)
    if isinstance(exc, wse.PayloadTooBig | wse.InvalidURI | aiohttp.InvalidURL):
        return "fatal"  # a larger limit or another URL is needed, not time
    if isinstance(exc, OSError | TimeoutError | wse.ConnectionClosed | wse.InvalidMessage):
        return "retry"  # InvalidMessage: the handshake response was cut off or garbled
    if isinstance(exc, wse.ProtocolError | aiohttp.ClientPayloadError | aiohttp.ClientConnectionError):
        return "retry"
    return "fatal"
