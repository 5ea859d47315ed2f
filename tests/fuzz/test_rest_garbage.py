"""Every adapter's ``parse_rest`` endpoints on arbitrary JSON and mutated recorded bodies: events or
``FrameError``, never another exception (mirrors the garbage tests of tests/exchanges/test_binance.py)."""

from __future__ import annotations

import json

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz.core import FLAG_BARE, VENUES, Target
from streamer.exchanges.base import FrameError

_TARGETS: dict[str, Target] = {}


def target(venue: str) -> Target:
    if venue not in _TARGETS:
        _TARGETS[venue] = Target(venue, rest=True)
    return _TARGETS[venue]


ENDPOINTS = [(v, i) for v in VENUES for i in range(len(target(v).corpus.rest_endpoints))]
IDS = [f"{v}/{target(v).corpus.rest_endpoints[i].name}" for v, i in ENDPOINTS]
KEYS = ["symbol", "instId", "instrument_name", "result", "data", "list", "code", "retCode", "msg", "error",
        "fundingRate", "markPrice", "openInterest", "sumOpenInterest", "time", "timestamp", "ts", "price",
        "side", "qty", "sz", "category", "rows", "details", "lastFundingRate", "nextFundingTime", "id"]
SCALARS = (st.none() | st.booleans() | st.integers(min_value=-(10**30), max_value=10**30) | st.floats()
           | st.sampled_from(["", "nan", "inf", "-1e400", "0", "-1", "1e309", "BTCUSDT", "BTC-USDT-SWAP",
                              "BTC-PERPETUAL", "XBTUSD", "Buy", "sell", "linear"])
           | st.text(max_size=8))
json_values = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=3),
                                                                      children, max_size=6),
    max_leaves=24,
)


def run(venue: str, endpoint: int, body: bytes, bare: bool = False) -> None:
    data = bytes([FLAG_BARE if bare else 0, endpoint]) + body
    try:
        target(venue).call(data)  # also checks the events encode and carry no NaN/inf
    except FrameError:
        pass


def _recorded(venue: str, endpoint: int) -> list[object]:
    return [json.loads(body) for i, body in target(venue).corpus.rest_bodies if i == endpoint]


@pytest.mark.parametrize(("venue", "endpoint"), ENDPOINTS, ids=IDS)
@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(value=json_values, bare=st.booleans())
def test_arbitrary_json_raises_only_frame_error(venue, endpoint, value, bare):
    run(venue, endpoint, msgspec.json.encode(value) if value == value else b"NaN", bare)


@pytest.mark.parametrize(("venue", "endpoint"), ENDPOINTS, ids=IDS)
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(cut=st.integers(min_value=0, max_value=5000), bare=st.booleans())
def test_truncated_recorded_bodies_raise_only_frame_error(venue, endpoint, cut, bare):
    for body in [b for i, b in target(venue).corpus.rest_bodies if i == endpoint][:3]:
        run(venue, endpoint, body[: min(cut, len(body))], bare)


def _paths(value: object, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out.extend(_paths(v, (*prefix, k)))
    elif isinstance(value, list):
        for i, v in enumerate(value[:3]):
            out.extend(_paths(v, (*prefix, i)))
    return out


def _replace(value: object, path: tuple, new: object) -> object:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _replace(value[head], rest, new)}
    copy = list(value)  # type: ignore[call-overload]
    copy[head] = _replace(copy[head], rest, new)
    return copy


@pytest.mark.parametrize(("venue", "endpoint"), ENDPOINTS, ids=IDS)
@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data(), bare=st.booleans())
def test_mutated_recorded_bodies_raise_only_frame_error(venue, endpoint, data, bare):
    bodies = _recorded(venue, endpoint)
    if not bodies:
        pytest.skip("no recorded body for this endpoint")  # arbitrary JSON above still covers it
    body = data.draw(st.sampled_from(bodies))
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        path = data.draw(st.sampled_from(_paths(body)))
        body = _replace(body, path, data.draw(json_values))
    encoded = json.dumps(body, allow_nan=True).encode()
    run(venue, endpoint, encoded, bare)
