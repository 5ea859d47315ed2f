"""RestClient and TokenBucket: scripted aiohttp server on 127.0.0.1, fake clocks where possible."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
from aiohttp import web

from streamer.transport import (
    MAX_BODY_BYTES,
    BodyTooLarge,
    RateLimited,
    RestClient,
    RestError,
    TokenBucket,
    VenueLimits,
    backoff,
    gather_limited,
    parse_retry_after,
)
from tests.transport._util import MS, FakeClock, eventually, http_server

pytestmark = pytest.mark.timeout(15)

BODY = b'{"symbol":"BTCUSDT","openInterest":"1.5"}'


def fast_retries(attempts: int = 4):
    return lambda: backoff(initial=5 * MS, cap=20 * MS, max_attempts=attempts)


def client(**kw) -> RestClient:
    kw.setdefault("retry_backoff", fast_retries())
    kw.setdefault("timeout_s", 2.0)
    limits = kw.pop("limits", {"v": VenueLimits(capacity=100, refill_per_s=1000)})
    return RestClient(limits, **kw)


async def ok(request: web.Request, n: int) -> web.Response:
    return web.Response(body=BODY)


# ---------------------------------------------------------------- TokenBucket (fake clock)


def test_token_bucket_takes_weights_and_refills_over_time():
    clock = FakeClock()
    bucket = TokenBucket(10, 2, clock=clock)
    assert bucket.try_acquire(6)
    assert not bucket.try_acquire(5)
    assert bucket.time_until(5) == pytest.approx(0.5)
    clock.advance(0.5)
    assert bucket.try_acquire(5)
    assert bucket.tokens == pytest.approx(0)
    clock.advance(100)
    assert bucket.tokens == 10  # never above capacity


def test_token_bucket_pause_blocks_even_with_tokens():
    clock = FakeClock()
    bucket = TokenBucket(10, 1, clock=clock)
    bucket.pause_for(3)
    assert bucket.paused_for() == pytest.approx(3)
    assert not bucket.try_acquire(1)
    assert bucket.time_until(1) == pytest.approx(3)
    bucket.pause_until(clock() + 1)  # an earlier end does not shorten the pause
    clock.advance(3)
    assert bucket.paused_for() == 0
    assert bucket.try_acquire(10)


def test_token_bucket_drain_lowers_tokens_only():
    clock = FakeClock()
    bucket = TokenBucket(10, 1, clock=clock)
    bucket.drain_to(4)
    assert bucket.tokens == pytest.approx(4)
    bucket.drain_to(8)
    assert bucket.tokens == pytest.approx(4)
    assert bucket.time_until(6) == pytest.approx(2)


@pytest.mark.parametrize("weight", [0, -1, 11])
def test_token_bucket_rejects_weights_it_can_never_serve(weight):
    with pytest.raises(ValueError):
        TokenBucket(10, 1, clock=FakeClock()).try_acquire(weight)


async def test_token_bucket_serves_waiters_in_arrival_order():
    bucket = TokenBucket(10, 400)  # 10 tokens in 25 ms
    await bucket.acquire(10)
    done: list[str] = []

    async def take(label: str, weight: float) -> None:
        await bucket.acquire(weight)
        done.append(label)

    async with asyncio.TaskGroup() as tg:
        tg.create_task(take("heavy", 8), name="heavy")
        await eventually(lambda: bucket.waiting == 1)
        tg.create_task(take("light", 1), name="light")
    assert done == ["heavy", "light"]  # the light one did not overtake


async def test_token_bucket_cancelled_waiter_does_not_block_the_queue():
    bucket = TokenBucket(10, 40)
    await bucket.acquire(10)
    heavy = asyncio.create_task(bucket.acquire(10), name="heavy")
    await eventually(lambda: bucket.waiting == 1)
    light = asyncio.create_task(bucket.acquire(1), name="light")
    await eventually(lambda: bucket.waiting == 2)
    heavy.cancel()
    started = time.monotonic()
    await light
    assert time.monotonic() - started < 0.2  # 1 token: 25 ms, not the 250 ms of the heavy one
    assert heavy.cancelled()


async def test_token_bucket_acquire_waits_out_a_pause():
    bucket = TokenBucket(10, 1000)
    bucket.pause_for(0.05)
    started = time.monotonic()
    await bucket.acquire(1)
    assert time.monotonic() - started >= 0.045


def test_parse_retry_after_accepts_seconds_and_http_dates():
    now_ms = 1_700_000_000_000
    assert parse_retry_after("120", now_ms) == 120
    assert parse_retry_after("0.25", now_ms) == 0.25
    assert parse_retry_after("Tue, 14 Nov 2023 22:15:00 GMT", now_ms) == pytest.approx(100)
    assert parse_retry_after(None, now_ms) is None
    assert parse_retry_after("soon", now_ms) is None
    assert parse_retry_after("-5", now_ms) == 0


# ---------------------------------------------------------------- RestClient


async def test_rest_get_json_returns_raw_body_and_receive_time():
    async with http_server(ok) as srv, client(wall_ms=lambda: 42) as rest:
        body, recv_ms = await rest.get_json("v", srv.base + "/oi", {"symbol": "BTCUSDT"})
        resp = await rest.get("v", srv.base + "/oi", {"symbol": "BTCUSDT"})
    assert (body, recv_ms) == (BODY, 42)
    assert srv.hits[0].query == {"symbol": "BTCUSDT"}
    assert (resp.status, resp.cached, resp.url) == (200, False, srv.base + "/oi?symbol=BTCUSDT")
    stats = rest.stats()["v"]
    assert (stats.requests, stats.ok, stats.retries) == (2, 2, 0)


async def test_rest_429_retry_after_pauses_the_venue_then_succeeds():
    async def handler(request: web.Request, n: int) -> web.Response:
        if request.path == "/a" and n == 0:
            return web.Response(status=429, headers={"Retry-After": "1"})
        return web.Response(body=BODY)

    async with http_server(handler) as srv, client() as rest:
        started = time.monotonic()
        first = asyncio.create_task(rest.get_json("v", srv.base + "/a"), name="first")
        await eventually(lambda: srv.count("/a") == 1)
        other = await rest.get_json("v", srv.base + "/b")  # same venue: waits out the pause too
        body, _ = await first
        elapsed = time.monotonic() - started
        stats = rest.stats()["v"]
    assert body == BODY
    assert other[0] == BODY
    assert elapsed >= 1.0
    other_hit = next(h for h in srv.hits if h.path == "/b")
    assert other_hit.at - srv.hits[0].at >= 0.95
    assert (stats.rate_limited_429, stats.retries, stats.errors_by_status) == (1, 1, {429: 1})


async def test_rest_418_honours_retry_after():
    async def handler(request: web.Request, n: int) -> web.Response:
        if n == 0:
            return web.Response(status=418, headers={"Retry-After": "0.2"})
        return web.Response(body=BODY)

    async with http_server(handler) as srv, client() as rest:
        started = time.monotonic()
        body, _ = await rest.get_json("v", srv.base + "/x")
        elapsed = time.monotonic() - started
    assert body == BODY
    assert elapsed >= 0.2
    assert rest.stats()["v"].banned_418 == 1


async def test_rest_ban_longer_than_we_wait_raises_rate_limited_and_holds_the_venue():
    async def handler(request: web.Request, n: int) -> web.Response:
        return web.Response(status=418, headers={"Retry-After": "3600"}, text="banned")

    async with http_server(handler) as srv, client(max_retry_wait_s=10) as rest:
        with pytest.raises(RateLimited) as err:
            await rest.get_json("v", srv.base + "/x")
        assert (err.value.status, err.value.retry_after_s, err.value.body) == (418, 3600, b"banned")
        with pytest.raises(RateLimited):
            await rest.get_json("v", srv.base + "/y")  # refused locally, no request sent
        stats = rest.stats()["v"]
    assert len(srv.hits) == 1
    assert stats.paused_s > 3500


async def test_rest_retries_5xx_then_succeeds():
    async def handler(request: web.Request, n: int) -> web.Response:
        if n < 2:
            return web.Response(status=(503, 502)[n], text="busy")
        return web.Response(body=BODY)

    async with http_server(handler) as srv, client() as rest:
        body, _ = await rest.get_json("v", srv.base + "/x")
        stats = rest.stats()["v"]
    assert body == BODY
    assert len(srv.hits) == 3
    assert (stats.retries, stats.errors_by_status) == (2, {503: 1, 502: 1})


async def test_rest_5xx_forever_raises_after_max_attempts():
    async def handler(request: web.Request, n: int) -> web.Response:
        return web.Response(status=500, text="oops")

    async with http_server(handler) as srv, client(retry_backoff=fast_retries(3)) as rest:
        with pytest.raises(RestError) as err:
            await rest.get_json("v", srv.base + "/x")
    assert (err.value.status, err.value.body) == (500, b"oops")
    assert len(srv.hits) == 3


async def test_rest_400_raises_at_once_with_the_body():
    payload = b'{"code":-1121,"msg":"Invalid symbol."}'

    async def handler(request: web.Request, n: int) -> web.Response:
        return web.Response(status=400, body=payload)

    async with http_server(handler) as srv, client() as rest:
        with pytest.raises(RestError) as err:
            await rest.get_json("v", srv.base + "/fapi/v1/openInterest", {"symbol": "NOPE"})
    assert (err.value.status, err.value.body) == (400, payload)
    assert err.value.url == srv.base + "/fapi/v1/openInterest"
    assert "-1121" in str(err.value)
    assert len(srv.hits) == 1
    assert not isinstance(err.value, RateLimited)


async def test_rest_connection_errors_are_retried_then_raised():
    async with http_server(ok) as srv:
        base = srv.base
    async with client(retry_backoff=fast_retries(3)) as rest:  # nobody listens any more
        with pytest.raises(RestError) as err:
            await rest.get_json("v", base + "/x")
        stats = rest.stats()["v"]
    assert err.value.status is None
    assert isinstance(err.value.__cause__, aiohttp.ClientConnectionError)
    assert (stats.network_errors, stats.retries) == (3, 2)


async def test_rest_ttl_cache_serves_a_fresh_body_without_a_request():
    clock = FakeClock()
    async with http_server(ok) as srv, client(clock=clock) as rest:
        url = srv.base + "/x"
        first = await rest.get("v", url, {"a": 1, "b": "2"}, ttl_s=5)
        clock.advance(4)
        second = await rest.get("v", url, {"b": "2", "a": 1}, ttl_s=5)  # same key in any order
        uncached = await rest.get("v", url, {"a": 1, "b": "2"})  # no ttl: always asks
        clock.advance(2)
        third = await rest.get("v", url, {"a": 1, "b": "2"}, ttl_s=5)
        stats = rest.stats()["v"]
    assert (first.cached, second.cached, uncached.cached, third.cached) == (False, True, False, False)
    assert second.body == BODY
    assert second.recv_ms == first.recv_ms  # the time the body was actually received
    assert len(srv.hits) == 3
    assert stats.cache_hits == 1


async def test_rest_single_flight_coalesces_identical_requests():
    release = asyncio.Event()

    async def handler(request: web.Request, n: int) -> web.Response:
        await release.wait()
        return web.Response(body=BODY)

    async with http_server(handler) as srv, client() as rest:
        url = srv.base + "/x"
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(rest.get("v", url, {"s": "BTC"}), name=f"get{i}") for i in range(5)]
            await eventually(lambda: len(srv.hits) == 1 and rest.stats()["v"].coalesced == 4)
            release.set()
        stats = rest.stats()["v"]
    results = [t.result() for t in tasks]
    assert {r.body for r in results} == {BODY}
    assert sorted(r.cached for r in results) == [False, True, True, True, True]
    assert len(srv.hits) == 1
    assert stats.requests == 1


async def test_rest_single_flight_follower_takes_over_when_the_leader_is_cancelled():
    release = asyncio.Event()

    async def handler(request: web.Request, n: int) -> web.Response:
        await release.wait()
        return web.Response(body=BODY)

    async with http_server(handler) as srv, client() as rest:
        url = srv.base + "/x"
        leader = asyncio.create_task(rest.get_json("v", url), name="leader")
        await eventually(lambda: len(srv.hits) == 1)
        follower = asyncio.create_task(rest.get_json("v", url), name="follower")
        await eventually(lambda: rest.stats()["v"].coalesced == 1)
        leader.cancel()
        await eventually(lambda: len(srv.hits) == 2)
        release.set()
        body, _ = await follower
    assert body == BODY
    assert leader.cancelled()


async def test_rest_single_flight_shares_errors():
    release = asyncio.Event()

    async def handler(request: web.Request, n: int) -> web.Response:
        await release.wait()
        return web.Response(status=404, text="gone")

    async def attempt(rest: RestClient, url: str) -> RestError | None:
        try:
            await rest.get_json("v", url)
        except RestError as exc:
            return exc
        return None

    async with http_server(handler) as srv, client() as rest, asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(attempt(rest, srv.base + "/x"), name=f"get{i}") for i in range(3)]
        await eventually(lambda: rest.stats()["v"].coalesced == 2)
        release.set()
    errors = [t.result() for t in tasks]
    assert [e.status if e else None for e in errors] == [404, 404, 404]
    assert len(srv.hits) == 1


async def test_rest_used_weight_header_drains_the_bucket():
    async def handler(request: web.Request, n: int) -> web.Response:
        return web.Response(body=BODY, headers={"X-MBX-USED-WEIGHT-1M": "2300"})

    limits = {"v": VenueLimits(capacity=10, refill_per_s=100, used_weight_header="X-MBX-USED-WEIGHT-1M",
                               used_weight_limit=2400)}
    async with http_server(handler) as srv, client(limits=limits) as rest:
        first = await rest.get("v", srv.base + "/x", weight=1)
        stats = rest.stats()["v"]
        started = time.monotonic()
        await rest.get("v", srv.base + "/y", weight=5)
        waited = time.monotonic() - started
    assert first.used_weight == 2300
    assert (stats.used_weight, stats.slowdowns) == (2300, 1)
    assert stats.tokens <= 10 * (100 / 2400) + 0.5  # drained to the share left, plus refill since
    assert waited >= 0.04  # ~4.6 tokens at 100/s; a full bucket would not have waited


async def test_rest_remaining_requests_header_drains_the_bucket_like_bybit():
    async def handler(request: web.Request, n: int) -> web.Response:
        return web.Response(body=BODY, headers={"X-Bapi-Limit": "50", "X-Bapi-Limit-Status": "5"})

    limits = {"v": VenueLimits(capacity=10, refill_per_s=100, remaining_header="X-Bapi-Limit-Status",
                               remaining_limit_header="X-Bapi-Limit")}
    async with http_server(handler) as srv, client(limits=limits) as rest:
        first = await rest.get("v", srv.base + "/x")
        stats = rest.stats()["v"]
    assert first.used_weight == 45  # 50 allowed, 5 left
    assert (stats.used_weight, stats.slowdowns) == (45, 1)
    assert stats.tokens <= 10 * (5 / 50) + 0.5


async def test_rest_used_weight_below_the_soft_limit_changes_nothing():
    async def handler(request: web.Request, n: int) -> web.Response:
        return web.Response(body=BODY, headers={"X-Used": "100"})

    limits = {"v": VenueLimits(capacity=10, refill_per_s=100, used_weight_header="X-Used",
                               used_weight_limit=2400)}
    async with http_server(handler) as srv, client(limits=limits) as rest:
        await rest.get("v", srv.base + "/x")
        stats = rest.stats()["v"]
    assert (stats.used_weight, stats.slowdowns) == (100, 0)
    assert stats.tokens >= 9


async def test_rest_concurrency_caps_requests_in_flight():
    release = asyncio.Event()
    in_flight = 0
    peak = 0

    async def handler(request: web.Request, n: int) -> web.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await release.wait()
        in_flight -= 1
        return web.Response(body=BODY)

    async with http_server(handler) as srv, client(concurrency=2) as rest, asyncio.TaskGroup() as tg:
        for i in range(5):
            tg.create_task(rest.get_json("v", f"{srv.base}/x{i}"), name=f"get{i}")
        await eventually(lambda: in_flight == 2)
        await asyncio.sleep(20 * MS)  # give a third request the chance to (wrongly) start
        release.set()
    assert peak == 2
    assert len(srv.hits) == 5


async def test_rest_unknown_venue_uses_default_limits_or_raises():
    async with http_server(ok) as srv:
        async with client(default_limits=VenueLimits(capacity=3, refill_per_s=1)) as rest:
            await rest.get_json("elsewhere", srv.base + "/x")
            assert rest.bucket("elsewhere").capacity == 3
        async with client(default_limits=None) as rest:
            with pytest.raises(KeyError):
                await rest.get_json("elsewhere", srv.base + "/x")


async def test_rest_closed_client_refuses_requests():
    rest = client()
    await rest.close()
    with pytest.raises(RuntimeError):
        await rest.get_json("v", "http://127.0.0.1:1/x")


async def test_gather_limited_caps_concurrency_and_keeps_order():
    active = 0
    peak = 0

    async def job(i: int) -> int:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(2 * MS)
        active -= 1
        return i * i

    assert await gather_limited([job(i) for i in range(10)], 3) == [i * i for i in range(10)]
    assert peak == 3


async def test_gather_limited_can_return_exceptions():
    async def job(i: int) -> int:
        if i == 1:
            raise ValueError("bad symbol")
        return i

    results = await gather_limited([job(i) for i in range(3)], 2, return_exceptions=True)
    assert results[0] == 0
    assert isinstance(results[1], ValueError)
    assert results[2] == 2


async def test_gather_limited_raises_a_group_and_leaves_no_coroutine_unawaited():
    async def job(i: int) -> int:
        if i == 0:
            raise ValueError("boom")
        await asyncio.sleep(1)
        return i

    with pytest.raises(ExceptionGroup):
        await gather_limited([job(i) for i in range(5)], 1)


# ---------------------------------------------------------------- body size cap


async def test_rest_body_above_the_cap_by_content_length_is_refused_counted_and_not_retried():
    big = b"x" * 5000

    async def handler(request: web.Request, n: int) -> web.Response:
        return web.Response(body=big)

    async with http_server(handler) as srv, client(max_body_bytes=4096) as rest:
        with pytest.raises(BodyTooLarge) as err:
            await rest.get_json("v", srv.base + "/big")
        stats = rest.stats()["v"]
    assert len(srv.hits) == 1  # not retried: the same answer would come back
    assert (err.value.status, err.value.limit, err.value.size) == (200, 4096, 5000)
    assert str(err.value) == (f"v GET {srv.base}/big: HTTP 200: response body too large "
                              "(Content-Length 5000; max_body_bytes is 4096); not read, not retried")
    assert isinstance(err.value, RestError)
    assert (stats.body_too_large, stats.ok, stats.retries) == (1, 0, 0)


async def test_rest_chunked_body_above_the_cap_is_cut_while_reading():
    async def handler(request: web.Request, n: int) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.enable_chunked_encoding()  # no Content-Length: counted while read
        await resp.prepare(request)
        for _ in range(100):
            await resp.write(b"y" * 1000)
        await resp.write_eof()
        return resp

    async with http_server(handler) as srv, client(max_body_bytes=10_000) as rest:
        with pytest.raises(BodyTooLarge) as err:
            await rest.get_json("v", srv.base + "/chunked")
        stats = rest.stats()["v"]
    assert err.value.limit == 10_000
    assert 10_000 < err.value.size <= 10_000 + 64 * 1024
    assert "more than 10000 bytes read; max_body_bytes is 10000" in str(err.value)
    assert stats.body_too_large == 1


async def test_rest_body_exactly_at_the_cap_is_returned_whole():
    body = b"z" * 4096

    async def handler(request: web.Request, n: int) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        await resp.write(body[:1000])
        await resp.write(body[1000:])
        await resp.write_eof()
        return resp

    async with http_server(handler) as srv, client(max_body_bytes=4096) as rest:
        got, _ = await rest.get_json("v", srv.base + "/exact")
        stats = rest.stats()["v"]
    assert got == body
    assert (stats.body_too_large, stats.ok) == (0, 1)


def test_rest_default_body_cap_is_32_mib():
    assert MAX_BODY_BYTES == 32 * 1024 * 1024
    with pytest.raises(ValueError, match=r"max_body_bytes \(0\) must be >= 1"):
        RestClient({}, max_body_bytes=0)
