"""backoff() delays and classify() verdicts: pure, no I/O."""

from __future__ import annotations

import itertools
import random

import aiohttp
import pytest
import websockets.exceptions as wse
from hypothesis import given
from hypothesis import strategies as st
from websockets.datastructures import Headers
from websockets.frames import Close
from websockets.http11 import Response

from streamer.transport import RestError, backoff, classify, classify_status


def take(it, n):
    return list(itertools.islice(it, n))


def test_backoff_without_jitter_doubles_up_to_the_cap():
    assert take(backoff(initial=0.5, factor=2, cap=4, jitter="none"), 6) == [0.5, 1, 2, 4, 4, 4]


def test_backoff_is_endless_by_default():
    assert len(take(backoff(initial=0.001, cap=0.002), 1000)) == 1000


@pytest.mark.parametrize(("attempts", "delays"), [(1, 0), (2, 1), (4, 3)])
def test_backoff_max_attempts_yields_one_delay_per_retry(attempts, delays):
    assert len(list(backoff(initial=0.1, max_attempts=attempts))) == delays


@given(
    initial=st.floats(0.001, 10),
    factor=st.floats(1, 4),
    cap=st.floats(0.001, 100),
    seed=st.integers(0, 2**32),
)
def test_backoff_equal_jitter_stays_between_half_base_and_base(initial, factor, cap, seed):
    rng = random.Random(seed)
    delays = take(backoff(initial=initial, factor=factor, cap=cap, jitter="equal", rng=rng), 30)
    bases = take(backoff(initial=initial, factor=factor, cap=cap, jitter="none"), 30)
    for delay, base in zip(delays, bases, strict=True):
        assert base / 2 <= delay <= base <= cap


@given(seed=st.integers(0, 2**32))
def test_backoff_equal_jitter_never_shrinks_with_factor_two(seed):
    delays = take(backoff(initial=0.01, factor=2, cap=1e9, jitter="equal", rng=random.Random(seed)), 20)
    assert delays == sorted(delays)


@given(seed=st.integers(0, 2**32))
def test_backoff_full_jitter_stays_below_base(seed):
    delays = take(backoff(initial=1, factor=3, cap=20, jitter="full", rng=random.Random(seed)), 20)
    bases = take(backoff(initial=1, factor=3, cap=20, jitter="none"), 20)
    assert all(0 <= d <= b for d, b in zip(delays, bases, strict=True))


@pytest.mark.parametrize("kwargs", [{"initial": 0}, {"cap": -1}, {"factor": 0.5}, {"max_attempts": 0}])
def test_backoff_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        next(backoff(**kwargs))


def rejected(status: int) -> wse.InvalidStatus:
    return wse.InvalidStatus(Response(status, "x", Headers(), b""))


@pytest.mark.parametrize(
    ("exc", "verdict"),
    [
        (ConnectionResetError(), "retry"),
        (OSError("dns"), "retry"),
        (TimeoutError(), "retry"),
        (wse.ConnectionClosedError(None, None), "retry"),
        (wse.ConnectionClosedOK(Close(1001, "bye"), None), "retry"),
        (wse.InvalidMessage("did not receive a valid HTTP response"), "retry"),
        (rejected(503), "retry"),
        (rejected(500), "retry"),
        (rejected(429), "retry"),
        (rejected(408), "retry"),
        (rejected(403), "fatal"),
        (rejected(404), "fatal"),
        (wse.InvalidURI("http://x", "scheme"), "fatal"),
        (wse.PayloadTooBig(2**25, 2**24), "fatal"),
        (aiohttp.ServerDisconnectedError(), "retry"),
        (aiohttp.ClientPayloadError("cut"), "retry"),
        (aiohttp.InvalidURL("nope"), "fatal"),
        (RestError(400, b'{"code":-1121}', "https://x"), "fatal"),
        (RestError(502, b"", "https://x"), "retry"),
        (RestError(418, b"", "https://x"), "retry"),
        (ValueError("a bug"), "fatal"),
    ],
)
def test_classify(exc, verdict):
    assert classify(exc) == verdict


@pytest.mark.parametrize(("status", "verdict"), [(200, "fatal"), (400, "fatal"), (401, "fatal"),
                                                  (408, "retry"), (418, "retry"), (429, "retry"),
                                                  (500, "retry"), (599, "retry")])
def test_classify_status(status, verdict):
    assert classify_status(status) == verdict
