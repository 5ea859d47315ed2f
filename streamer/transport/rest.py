"""RestClient: one aiohttp session for the app, a weighted token bucket per venue, retries,
429/418 Retry-After, used-weight slow-down, a TTL cache and single-flight GETs.

The client knows no exchange: each venue's budget and weight header arrive as ``VenueLimits``.
Bodies are returned as raw bytes with their receive time; the adapters parse them.

Exceptions::

    RestError                 HTTP error answer, or no answer after all attempts
     ├── RateLimited          429/418 whose Retry-After is longer than we wait, or persists
     └── BodyTooLarge         answer body above ``max_body_bytes`` (not retried, nothing parsed)

Per request (``get``):
    1. A fresh enough cached body (``ttl_s``) is returned without a request.
    2. An identical request already in flight is joined instead of sent again (single-flight).
    3. ``acquire(weight)`` on the venue's bucket (waits while the bucket is paused), then a slot
       of the client-wide ``concurrency`` semaphore.
    4. 2xx: return. 429/418: pause the venue's whole bucket for ``Retry-After`` seconds, retry.
       408/5xx, timeouts and connection errors: wait a backoff delay, retry. Any other 4xx:
       raise ``RestError`` at once (e.g. Binance 400 ``-1121`` invalid symbol). Every retry uses
       one of the bounded attempts (``max_attempts``, the first included).
       A body larger than ``max_body_bytes`` (default ``MAX_BODY_BYTES``, 32 MiB; by its
       Content-Length, or counted while reading) is not read further: ``BodyTooLarge`` at once,
       counted in ``VenueStats.body_too_large`` (an untrusted venue cannot make us buffer more).
    5. When the venue reports its used weight in a header, usage at or above
       ``used_weight_soft`` of the limit drains the bucket in proportion, so that following
       requests wait for refill instead of hitting 429.
"""

from __future__ import annotations

import asyncio
import email.utils
import inspect
import logging
import math
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Self, TypeVar, overload

import aiohttp

from streamer.transport.backoff import backoff as _backoff
from streamer.transport.backoff import classify
from streamer.transport.ws import wall_ms

__all__ = [
    "MAX_BODY_BYTES",
    "BodyTooLarge",
    "RateLimited",
    "RestClient",
    "RestError",
    "RestResponse",
    "TokenBucket",
    "VenueLimits",
    "VenueStats",
    "gather_limited",
    "parse_retry_after",
]

log = logging.getLogger("streamer.transport.rest")

T = TypeVar("T")
Params = Mapping[str, str | int | float]

_EPS = 1e-9

MAX_BODY_BYTES = 32 * 1024 * 1024
"""Default cap of one REST answer body (``RestClient(max_body_bytes=...)``)."""

_READ_CHUNK = 64 * 1024


class RestError(Exception):
    """An HTTP error answer, or no usable answer after all attempts.

    Attributes:
        status: HTTP status; None when no response arrived (the cause is ``__cause__``).
        body: Response body (empty without a response), raw bytes as received.
        url: Requested URL, without the query.
        venue: Venue name the request was made for.
    """

    def __init__(self, status: int | None, body: bytes, url: str, venue: str = "") -> None:
        self.status = status
        self.body = body
        self.url = url
        self.venue = venue
        what = f"HTTP {status}" if status is not None else "no response"
        snippet = body[:200].decode("utf-8", "replace")
        super().__init__(f"{venue} GET {url}: {what}" + (f": {snippet}" if snippet else ""))


class RateLimited(RestError):
    """429/418 we do not wait out: Retry-After beyond ``max_retry_wait_s``, or attempts used up.

    Attributes:
        retry_after_s: Seconds the venue asked us to wait (None when it did not say).
    """

    def __init__(
        self, status: int | None, body: bytes, url: str, venue: str, retry_after_s: float | None
    ) -> None:
        super().__init__(status, body, url, venue)
        self.retry_after_s = retry_after_s


class BodyTooLarge(RestError):
    """The answer body exceeds ``max_body_bytes``; it was not read further (nor retried).

    Attributes:
        limit: The cap in bytes.
        size: Content-Length when the venue announced one, else the bytes read when we stopped.
    """

    def __init__(self, status: int, url: str, venue: str, limit: int, size: int, announced: bool) -> None:
        super().__init__(status, b"", url, venue)
        self.limit = limit
        self.size = size
        how = f"Content-Length {size}" if announced else f"more than {limit} bytes read"
        self.args = (f"{venue} GET {url}: HTTP {status}: response body too large ({how}; "
                     f"max_body_bytes is {limit}); not read, not retried",)


class _LeaderGone(Exception):
    """Set on a single-flight future when the caller making the request was cancelled."""


@dataclass(frozen=True, slots=True)
class VenueLimits:
    """A venue's request budget, as configuration (no exchange knowledge in code).

    Attributes:
        capacity: Bucket size in weight units: the largest burst.
        refill_per_s: Weight units added per second (Binance: 2400 per minute = 40/s).
        used_weight_header: Response header that reports the weight used in the venue's
            current window (Binance ``X-MBX-USED-WEIGHT-1M``); None = not reported.
        used_weight_limit: The limit that header counts against (Binance 2400).
        used_weight_soft: Fraction of the limit from which the client slows down.
        remaining_header: Response header that reports the requests LEFT in the venue's window
            (Bybit ``X-Bapi-Limit-Status``), read with ``remaining_limit_header`` (Bybit
            ``X-Bapi-Limit``) as used = limit − remaining, then the same slow-down.
        remaining_limit_header: The header with that window's limit.
    """

    capacity: float
    refill_per_s: float
    used_weight_header: str | None = None
    used_weight_limit: int | None = None
    used_weight_soft: float = 0.8
    remaining_header: str | None = None
    remaining_limit_header: str | None = None

    def __post_init__(self) -> None:
        if self.capacity <= 0 or self.refill_per_s <= 0:
            raise ValueError(f"VenueLimits: capacity ({self.capacity}) and refill_per_s "
                             f"({self.refill_per_s}) must be > 0")
        if (self.used_weight_header is None) != (self.used_weight_limit is None):
            raise ValueError("VenueLimits: used_weight_header and used_weight_limit go together")


@dataclass(frozen=True, slots=True)
class RestResponse:
    """One successful answer.

    Attributes:
        body: Raw response body.
        recv_ms: When the body was received, ms since epoch (for a cached answer: originally).
        status: HTTP status (2xx).
        url: Requested URL with its query.
        cached: True when served from the TTL cache or joined from an identical request.
        used_weight: The venue's used-weight header value, when configured and present.
    """

    body: bytes
    recv_ms: int
    status: int
    url: str
    cached: bool = False
    used_weight: int | None = None


@dataclass(frozen=True, slots=True)
class VenueStats:
    """Counters of one venue (``RestClient.stats()``); counters only grow.

    Attributes:
        requests: HTTP requests sent.
        ok: 2xx answers.
        retries: Attempts repeated after a retryable failure.
        errors_by_status: Non-2xx answers by status.
        network_errors: Attempts that got no answer (connection error, timeout).
        rate_limited_429: 429 answers.
        banned_418: 418 answers.
        cache_hits: Answers served from the TTL cache.
        coalesced: Calls that joined an identical request in flight.
        slowdowns: Times the used-weight header drained the bucket.
        body_too_large: Answers dropped because their body exceeded ``max_body_bytes``.
        used_weight: Latest used-weight header value; None if never seen.
        tokens: Tokens in the bucket now.
        paused_s: Seconds the bucket stays paused (0 when not paused).
    """

    requests: int
    ok: int
    retries: int
    errors_by_status: dict[int, int]
    network_errors: int
    rate_limited_429: int
    banned_418: int
    cache_hits: int
    coalesced: int
    slowdowns: int
    used_weight: int | None
    tokens: float
    paused_s: float
    body_too_large: int = 0


class TokenBucket:
    """A weighted token bucket with FIFO waiters and a pause.

    Tokens refill continuously at ``refill_per_s`` up to ``capacity``. ``acquire(w)`` takes
    ``w`` tokens, waiting in arrival order: a heavy request at the head is not overtaken by
    lighter ones behind it. ``pause_until(t)`` lets no one through before ``t`` (Retry-After);
    tokens keep refilling during a pause.

    The clock is ``time.monotonic`` by default, the clock of ``loop.time()`` on asyncio's
    standard loops; pass a fake one in tests (the synchronous methods then need no loop).
    """

    def __init__(
        self, capacity: float, refill_per_s: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        """Create a full bucket.

        Args:
            capacity: Largest number of tokens (weight units).
            refill_per_s: Tokens added per second.
            clock: Monotonic clock in seconds.
        """
        if capacity <= 0 or refill_per_s <= 0:
            raise ValueError(f"TokenBucket: capacity ({capacity}) and refill ({refill_per_s}) must be > 0")
        self.capacity = float(capacity)
        self.refill_per_s = float(refill_per_s)
        self._clock = clock
        self._tokens = float(capacity)
        self._last = clock()
        self._paused_until = -math.inf
        self._waiters: deque[tuple[float, asyncio.Future[None]]] = deque()
        self._timer: asyncio.TimerHandle | None = None

    @property
    def tokens(self) -> float:
        """Tokens available now (refilled to the current time)."""
        self._refill(self._clock())
        return self._tokens

    @property
    def waiting(self) -> int:
        """Number of ``acquire`` calls waiting."""
        return len(self._waiters)

    def paused_for(self) -> float:
        """Seconds until the pause ends; 0.0 when not paused."""
        return max(0.0, self._paused_until - self._clock())

    def time_until(self, weight: float) -> float:
        """Seconds until ``weight`` tokens could be taken, ignoring waiters ahead; 0.0 = now."""
        now = self._clock()
        self._refill(now)
        deficit = max(0.0, weight - self._tokens)
        return max(self._paused_until - now, deficit / self.refill_per_s, 0.0)

    def try_acquire(self, weight: float = 1) -> bool:
        """Take ``weight`` tokens if possible right now and nobody is waiting; never blocks."""
        self._check(weight)
        if self._waiters:
            return False
        return self._take(weight)

    async def acquire(self, weight: float = 1) -> None:
        """Take ``weight`` tokens, waiting (FIFO) until they are available and no pause holds.

        Raises:
            ValueError: When ``weight`` exceeds the capacity (it could never be served).
        """
        if self.try_acquire(weight):
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (float(weight), fut)
        self._waiters.append(entry)
        if len(self._waiters) == 1:
            self._arm()
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():  # granted as we were cancelled: give back
                self._tokens = min(self.capacity, self._tokens + weight)
            try:
                self._waiters.remove(entry)
            except ValueError:
                pass
            self._pump()
            raise

    def pause_until(self, t: float) -> None:
        """Let nobody through before ``t`` (bucket clock, seconds); an earlier ``t`` is ignored."""
        if t > self._paused_until:
            self._paused_until = t
            self._arm()

    def pause_for(self, seconds: float) -> None:
        """Let nobody through for ``seconds`` from now."""
        self.pause_until(self._clock() + seconds)

    def drain_to(self, tokens: float) -> None:
        """Lower the available tokens to at most ``tokens`` (server says we used more)."""
        self._refill(self._clock())
        if tokens < self._tokens:
            self._tokens = max(0.0, tokens)
            self._arm()

    # internals

    def _check(self, weight: float) -> None:
        if weight <= 0 or weight > self.capacity:
            raise ValueError(f"TokenBucket: weight {weight} must be in (0, capacity={self.capacity}]")

    def _refill(self, now: float) -> None:
        if now > self._last:
            self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.refill_per_s)
            self._last = now

    def _take(self, weight: float) -> bool:
        now = self._clock()
        self._refill(now)
        if now < self._paused_until or self._tokens + _EPS < weight:
            return False
        self._tokens = max(0.0, self._tokens - weight)
        return True

    def _pump(self) -> None:
        """Grant waiters from the head while tokens last, then re-arm the timer."""
        while self._waiters:
            weight, fut = self._waiters[0]
            if fut.done():
                self._waiters.popleft()
                continue
            if not self._take(weight):
                break
            self._waiters.popleft()
            fut.set_result(None)
        self._arm()

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._waiters:
            return
        delay = self.time_until(self._waiters[0][0])
        self._timer = asyncio.get_running_loop().call_later(delay, self._pump)


class _Venue:
    __slots__ = (
        "banned_418",
        "body_too_large",
        "bucket",
        "cache_hits",
        "coalesced",
        "errors_by_status",
        "limits",
        "name",
        "network_errors",
        "ok",
        "rate_limited_429",
        "requests",
        "retries",
        "slowdowns",
        "used_weight",
    )

    def __init__(self, name: str, limits: VenueLimits, clock: Callable[[], float]) -> None:
        self.name = name
        self.limits = limits
        self.bucket = TokenBucket(limits.capacity, limits.refill_per_s, clock=clock)
        self.requests = 0
        self.ok = 0
        self.retries = 0
        self.errors_by_status: dict[int, int] = {}
        self.network_errors = 0
        self.rate_limited_429 = 0
        self.banned_418 = 0
        self.cache_hits = 0
        self.coalesced = 0
        self.slowdowns = 0
        self.body_too_large = 0
        self.used_weight: int | None = None


@dataclass(slots=True)
class _Cached:
    response: RestResponse
    stored_at: float


def parse_retry_after(value: str | None, now_ms: int) -> float | None:
    """Parse a ``Retry-After`` header into seconds to wait.

    Args:
        value: Header value: delta seconds (``"120"``; fractions tolerated) or an HTTP date.
        now_ms: Current wall time, ms since epoch (for the HTTP-date form).

    Returns:
        Seconds (>= 0), or None when absent or unreadable.
    """
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - now_ms / 1000
    if math.isnan(seconds):
        return None
    return max(0.0, seconds)


def _cache_key(url: str, params: Params | None) -> tuple[str, tuple[tuple[str, str], ...]]:
    items = tuple(sorted((str(k), str(v)) for k, v in (params or {}).items()))
    return (url, items)


class RestClient:
    """The app's one HTTP client: rate-limited, retrying, caching GETs (module docstring).

    Usage::

        async with RestClient({"binance": VenueLimits(2400, 40, "X-MBX-USED-WEIGHT-1M", 2400)}) as rest:
            body, recv_ms = await rest.get_json("binance", url, {"symbol": "BTCUSDT"}, weight=1)
    """

    def __init__(
        self,
        limits: Mapping[str, VenueLimits] | None = None,
        *,
        default_limits: VenueLimits | None = VenueLimits(capacity=10, refill_per_s=5),
        concurrency: int = 16,
        timeout_s: float = 10.0,
        max_attempts: int = 4,
        retry_backoff: Callable[[], Iterator[float]] | None = None,
        max_retry_wait_s: float = 300.0,
        cache_max_entries: int = 4096,
        headers: Mapping[str, str] | None = None,
        session: aiohttp.ClientSession | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_ms: Callable[[], int] = wall_ms,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        """Configure the client; the aiohttp session is created on first use.

        Args:
            limits: Budget per venue name.
            default_limits: Budget for a venue not in ``limits``; None = unknown venues raise
                ``KeyError``.
            concurrency: Most HTTP requests in flight at once, all venues together.
            timeout_s: Total seconds allowed for one attempt (connect, send, read body).
            max_attempts: Attempts per request, the first included (for the default backoff).
            retry_backoff: Factory of retry-delay iterators (seconds); its length bounds the
                retries. Default: equal jitter from 0.25 s, doubling, capped at 5 s,
                ``max_attempts`` attempts.
            max_retry_wait_s: Longest Retry-After we wait out; longer raises ``RateLimited``.
            cache_max_entries: Bound of the TTL cache (oldest entries evicted first).
            headers: Headers sent with every request (e.g. a User-Agent).
            session: An aiohttp session to use instead of our own (not closed by ``close()``).
            clock: Monotonic clock in seconds for buckets and cache ages.
            wall_ms: Receive-time clock, ms since epoch.
            max_body_bytes: Largest answer body read; a larger one raises ``BodyTooLarge``.
        """
        if concurrency < 1 or max_attempts < 1:
            raise ValueError("RestClient: concurrency and max_attempts must be >= 1")
        if max_body_bytes < 1:
            raise ValueError(f"RestClient: max_body_bytes ({max_body_bytes}) must be >= 1")
        self._max_body = max_body_bytes
        self._limits = dict(limits or {})
        self._default_limits = default_limits
        self._venues: dict[str, _Venue] = {}
        self._sem = asyncio.Semaphore(concurrency)
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._retry_backoff = retry_backoff or (
            lambda: _backoff(initial=0.25, factor=2.0, cap=5.0, jitter="equal", max_attempts=max_attempts)
        )
        self._max_retry_wait_s = max_retry_wait_s
        self._cache: OrderedDict[Hashable, _Cached] = OrderedDict()
        self._cache_max = cache_max_entries
        self._inflight: dict[Hashable, asyncio.Future[RestResponse]] = {}
        self._headers = dict(headers or {})
        self._session = session
        self._own_session = session is None
        self._clock = clock
        self._wall_ms = wall_ms
        self._closed = False
        for name in self._limits:
            self._venue(name)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close our aiohttp session (not one passed in). Idempotent."""
        self._closed = True
        if self._session is not None and self._own_session:
            await self._session.close()
        self._session = None

    def set_limits(self, venue: str, limits: VenueLimits) -> None:
        """Set or replace a venue's budget (a replaced bucket starts full; counters restart)."""
        self._limits[venue] = limits
        self._venues.pop(venue, None)
        self._venue(venue)

    def bucket(self, venue: str) -> TokenBucket:
        """The venue's token bucket (e.g. to ``pause_for`` from outside)."""
        return self._venue(venue).bucket

    def stats(self) -> dict[str, VenueStats]:
        """Return per-venue counters: every configured venue, and any other used so far."""
        out = {}
        for name, v in self._venues.items():
            out[name] = VenueStats(
                requests=v.requests,
                ok=v.ok,
                retries=v.retries,
                errors_by_status=dict(v.errors_by_status),
                network_errors=v.network_errors,
                rate_limited_429=v.rate_limited_429,
                banned_418=v.banned_418,
                cache_hits=v.cache_hits,
                coalesced=v.coalesced,
                slowdowns=v.slowdowns,
                used_weight=v.used_weight,
                tokens=v.bucket.tokens,
                paused_s=v.bucket.paused_for(),
                body_too_large=v.body_too_large,
            )
        return out

    async def get_json(
        self,
        venue: str,
        url: str,
        params: Params | None = None,
        *,
        weight: float = 1,
        ttl_s: float | None = None,
        cache_key: Hashable | None = None,
    ) -> tuple[bytes, int]:
        """GET ``url`` and return ``(body, recv_ms)``: raw bytes, receive time in ms since epoch.

        The body is not parsed (the adapters parse it). Same behaviour as ``get``.
        """
        resp = await self.get(venue, url, params, weight=weight, ttl_s=ttl_s, cache_key=cache_key)
        return resp.body, resp.recv_ms

    async def get(
        self,
        venue: str,
        url: str,
        params: Params | None = None,
        *,
        weight: float = 1,
        ttl_s: float | None = None,
        cache_key: Hashable | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> RestResponse:
        """GET ``url`` within ``venue``'s budget, with retries, cache and single-flight.

        Args:
            venue: Venue name selecting the ``VenueLimits`` bucket.
            url: Absolute URL without query.
            params: Query parameters.
            weight: The request's weight in the venue's units (Binance endpoint weight).
            ttl_s: Accept a cached body at most this many seconds old, and cache this answer;
                None = always ask the venue (identical requests in flight are still joined).
            cache_key: Key for cache and single-flight; default ``(url, sorted params)``.
            headers: Extra headers for this request (not part of the cache key).

        Returns:
            The answer; ``cached`` tells whether it came from the cache or another caller.

        Raises:
            RestError: A 4xx other than 408/418/429 (at once), or 5xx/408/network failures
                after all attempts (``status`` None when no answer; cause chained).
            RateLimited: 429/418 that persist after all attempts, or a Retry-After (or an
                existing pause of the bucket) longer than ``max_retry_wait_s``.
            ValueError: When ``weight`` exceeds the venue's bucket capacity.
            RuntimeError: After ``close()``.
        """
        if self._closed:
            raise RuntimeError("RestClient is closed")
        v = self._venue(venue)
        key: Hashable = cache_key if cache_key is not None else _cache_key(url, params)
        if ttl_s is not None:
            hit = self._cache.get(key)
            if hit is not None and self._clock() - hit.stored_at <= ttl_s:
                v.cache_hits += 1
                return _as_cached(hit.response)
        while (shared := self._inflight.get(key)) is not None:
            v.coalesced += 1
            try:
                return _as_cached(await asyncio.shield(shared))  # our own cancel propagates
            except _LeaderGone:
                continue  # the leading caller was cancelled: try again, perhaps as the leader
        fut: asyncio.Future[RestResponse] = asyncio.get_running_loop().create_future()
        self._inflight[key] = fut
        try:
            resp = await self._fetch(v, url, params, weight, headers)
        except BaseException as exc:
            # Followers get the error; a cancelled leader tells them to take over instead.
            fut.set_exception(_LeaderGone() if isinstance(exc, asyncio.CancelledError) else exc)
            fut.exception()  # mark it retrieved: no "never retrieved" noise without followers
            raise
        finally:
            del self._inflight[key]
        fut.set_result(resp)
        if ttl_s is not None:
            self._store(key, resp)
        return resp

    # internals

    def _venue(self, name: str) -> _Venue:
        v = self._venues.get(name)
        if v is None:
            limits = self._limits.get(name, self._default_limits)
            if limits is None:
                raise KeyError(f"RestClient: no VenueLimits for venue {name!r}")
            v = self._venues[name] = _Venue(name, limits, self._clock)
        return v

    def _store(self, key: Hashable, resp: RestResponse) -> None:
        self._cache[key] = _Cached(resp, self._clock())
        self._cache.move_to_end(key)
        while len(self._cache) > self._cache_max:
            self._cache.popitem(last=False)

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(headers=self._headers, timeout=self._timeout)
        return self._session

    def _observe_weight(self, v: _Venue, headers: Mapping[str, str]) -> int | None:
        lim = v.limits
        if lim.remaining_header is not None and lim.remaining_limit_header is not None:
            try:
                remaining = int(headers[lim.remaining_header])
                limit = int(headers[lim.remaining_limit_header])
            except (KeyError, ValueError):
                return None
            if limit <= 0:
                return None
            used, window = max(0, limit - remaining), limit
        else:
            if lim.used_weight_header is None or lim.used_weight_limit is None:
                return None
            raw = headers.get(lim.used_weight_header)
            if raw is None:
                return None
            try:
                used = int(raw)
            except ValueError:
                return None
            window = lim.used_weight_limit
        v.used_weight = used
        share = used / window
        if share >= lim.used_weight_soft:
            before = v.bucket.tokens
            v.bucket.drain_to(v.bucket.capacity * max(0.0, 1.0 - share))
            if v.bucket.tokens < before:
                v.slowdowns += 1
        return used

    def _check_pause(self, v: _Venue, url: str) -> None:
        paused = v.bucket.paused_for()
        if paused > self._max_retry_wait_s:
            raise RateLimited(None, b"", url, v.name, paused)

    async def _fetch(
        self, v: _Venue, url: str, params: Params | None, weight: float, headers: Mapping[str, str] | None
    ) -> RestResponse:
        delays = self._retry_backoff()
        attempt = 0
        while True:
            attempt += 1
            self._check_pause(v, url)
            await v.bucket.acquire(weight)
            async with self._sem:
                v.requests += 1
                try:
                    async with self._get_session().get(
                        url, params=params, headers=headers, timeout=self._timeout
                    ) as r:
                        body = await self._read_capped(v, url, r)
                        status = r.status
                        resp_headers = r.headers
                        full_url = str(r.url)
                except (aiohttp.ClientError, TimeoutError) as exc:
                    failure: BaseException | None = exc
                else:
                    failure = None
            recv_ms = self._wall_ms()
            if failure is not None:
                v.network_errors += 1
                cause = f"{type(failure).__name__}: {failure}"
                if classify(failure) == "fatal":
                    raise RestError(None, b"", url, v.name) from failure
                await self._retry_or_raise(v, url, attempt, delays, cause, RestError(None, b"", url, v.name),
                                           failure)
                continue
            used = self._observe_weight(v, resp_headers)
            if 200 <= status < 300:
                v.ok += 1
                return RestResponse(body, recv_ms, status, full_url, False, used)
            v.errors_by_status[status] = v.errors_by_status.get(status, 0) + 1
            if status in (429, 418):
                if status == 429:
                    v.rate_limited_429 += 1
                else:
                    v.banned_418 += 1
                retry_after = parse_retry_after(resp_headers.get("Retry-After"), recv_ms)
                delay = next(delays, None)
                wait = retry_after if retry_after is not None else delay
                if wait is not None:
                    v.bucket.pause_for(wait)
                if delay is None or (retry_after is not None and retry_after > self._max_retry_wait_s):
                    log.warning("rest %s GET %s: HTTP %d, Retry-After %s; giving up",
                                v.name, url, status, retry_after)
                    raise RateLimited(status, body, url, v.name, retry_after)
                v.retries += 1
                log.warning("rest %s GET %s: HTTP %d; venue paused %.2fs (attempt %d)",
                            v.name, url, status, wait or 0.0, attempt)
                continue  # acquire() waits out the pause
            if status >= 500 or status == 408:
                await self._retry_or_raise(v, url, attempt, delays, f"HTTP {status}",
                                           RestError(status, body, url, v.name), None)
                continue
            raise RestError(status, body, url, v.name)

    async def _read_capped(self, v: _Venue, url: str, r: aiohttp.ClientResponse) -> bytes:
        """Read the body, at most ``max_body_bytes``; above that count and raise ``BodyTooLarge``."""
        limit = self._max_body
        announced = r.content_length
        if announced is not None and announced > limit:
            v.body_too_large += 1
            log.warning("rest %s GET %s: body of %d bytes above max_body_bytes %d; dropped",
                        v.name, url, announced, limit)
            raise BodyTooLarge(r.status, url, v.name, limit, announced, True)
        chunks: list[bytes] = []
        size = 0
        while chunk := await r.content.read(_READ_CHUNK):
            size += len(chunk)
            if size > limit:
                v.body_too_large += 1
                log.warning("rest %s GET %s: body above max_body_bytes %d; dropped", v.name, url, limit)
                raise BodyTooLarge(r.status, url, v.name, limit, size, False)
            chunks.append(chunk)
        return b"".join(chunks)

    async def _retry_or_raise(
        self,
        v: _Venue,
        url: str,
        attempt: int,
        delays: Iterator[float],
        cause: str,
        error: RestError,
        failure: BaseException | None,
    ) -> None:
        delay = next(delays, None)
        if delay is None:
            log.warning("rest %s GET %s: %s; giving up after %d attempts", v.name, url, cause, attempt)
            raise error from failure
        v.retries += 1
        log.warning("rest %s GET %s: %s; retry in %.2fs (attempt %d)", v.name, url, cause, delay, attempt)
        await asyncio.sleep(delay)


def _as_cached(resp: RestResponse) -> RestResponse:
    return RestResponse(resp.body, resp.recv_ms, resp.status, resp.url, True, resp.used_weight)


@overload
async def gather_limited(
    aws: Iterable[Awaitable[T]], limit: int, *, return_exceptions: Literal[False] = ...
) -> list[T]: ...


@overload
async def gather_limited(
    aws: Iterable[Awaitable[T]], limit: int, *, return_exceptions: Literal[True]
) -> list[T | Exception]: ...


async def gather_limited(
    aws: Iterable[Awaitable[T]], limit: int, *, return_exceptions: bool = False
) -> list[Any]:
    """Await ``aws`` with at most ``limit`` of them running at once; results in input order.

    All awaitables are wrapped in named tasks of one TaskGroup up front, and each waits for a
    slot before it starts its work. Coroutines that never got to start (the group was aborted)
    are closed, so none is left un-awaited.

    Args:
        aws: Coroutines or other awaitables.
        limit: Most running at once (>= 1).
        return_exceptions: When True, an ``Exception`` raised by one awaitable becomes its result
            and the others go on; when False (default) the first failure cancels the rest and
            the TaskGroup raises an ``ExceptionGroup``.

    Returns:
        Results (or exceptions, with ``return_exceptions``) in the order of ``aws``.
    """
    if limit < 1:
        raise ValueError(f"gather_limited: limit ({limit}) must be >= 1")
    sem = asyncio.Semaphore(limit)
    pending = list(aws)

    async def one(aw: Awaitable[T]) -> Any:
        async with sem:
            if not return_exceptions:
                return await aw
            try:
                return await aw
            except Exception as exc:  # noqa: BLE001 - returned to the caller, as asked
                return exc

    try:
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(one(aw), name=f"gather_limited:{i}") for i, aw in enumerate(pending)]
    finally:
        for aw in pending:
            if inspect.iscoroutine(aw) and inspect.getcoroutinestate(aw) == inspect.CORO_CREATED:
                aw.close()
    return [t.result() for t in tasks]
