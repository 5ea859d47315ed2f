"""Every recorded frame and REST body, spoiled the four ways the chaos run spoils 10 % of the simulator's data
frames (``streamer.sim.faults.spoil``: truncated, huge numbers, wrong types, invalid UTF-8), on an adapter with
and without instruments: events with finite floats, or the counted ``FrameError`` — never anything else."""

from __future__ import annotations

import pytest

from fuzz.core import RECV_TS, VENUES, Target, _check_events
from streamer.exchanges.base import FrameError
from streamer.sim.faults import RATIO_KINDS, spoil

METADATA = ("instruments", "exchangeInfo", "fundingInfo")


@pytest.mark.parametrize("venue", VENUES)
@pytest.mark.parametrize("kind", RATIO_KINDS)
def test_spoiled_recorded_frames_give_events_or_frame_error(venue, kind):
    target = Target(venue)
    checked = 0
    for frame in target.corpus.frames:
        spoiled = spoil(frame, kind)
        for adapter in (target.loaded, target.bare):
            try:
                _check_events(adapter.parse(spoiled if isinstance(spoiled, bytes) else spoiled.encode(), RECV_TS))
            except FrameError:
                pass
            checked += 1
    assert checked == 2 * len(target.corpus.frames) > 0


@pytest.mark.parametrize("venue", VENUES)
@pytest.mark.parametrize("kind", RATIO_KINDS)
def test_spoiled_recorded_rest_bodies_give_events_or_frame_error(venue, kind):
    target = Target(venue, rest=True)
    for index, body in target.corpus.rest_bodies:
        endpoint = target.corpus.rest_endpoints[index]
        spoiled = spoil(body.decode("utf-8", "replace"), kind)
        raw = spoiled if isinstance(spoiled, bytes) else spoiled.encode()
        adapter = target.factory() if endpoint.name.startswith(METADATA) else target.loaded
        try:
            _check_events(adapter.parse_rest(endpoint.name, raw, RECV_TS, params=endpoint.params))
        except FrameError:
            pass


def test_a_huge_number_is_a_value_frame_error_with_a_short_message():
    target = Target("bybit")
    frame = target.corpus.frames[0]
    with pytest.raises(FrameError) as err:
        target.loaded.parse(spoil(frame, "huge_numbers").encode(), RECV_TS)
    assert err.value.reason == "value"
    assert len(str(err.value)) < 200  # the 400-digit value is cut, not echoed whole


def test_finite_numbers_whose_product_overflows_fail_the_frame_not_the_event_contract():
    # found by the fuzz smoke once seeds carried out-of-range numbers: a COIN-M open interest of 9e307 contracts
    # times the 100 USD contract size gave OpenInterest.oi_usd = inf (and oi_base = inf); now FrameError("value")
    target = Target("binance", rest=True)
    adapter = target.loaded
    body = b'{"symbol":"BTCUSD_PERP","pair":"BTCUSD","openInterest":"9e307","contractType":"PERPETUAL","time":1}'
    with pytest.raises(FrameError) as err:
        adapter.parse_rest("openInterest", body, RECV_TS)
    assert err.value.reason == "value"
    assert "OpenInterest." in str(err.value)
    assert "is not finite" in str(err.value)
    assert adapter.stats.errors["value"] >= 1
    ok = adapter.parse_rest("openInterest", body.replace(b"9e307", b"7425896"), RECV_TS)
    assert [ev.oi_contracts for ev in ok] == [7425896.0]
