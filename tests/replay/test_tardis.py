"""tardis.dev raw data files through ``streamer replay``.

The input files are written here by hand from tardis.dev's documented raw format (no real tardis download is
available offline): one line per message, ``<28-char ISO 8601 local timestamp> <exchange-native JSON>``,
gzip-compressed; an empty line marks a disconnect. The messages are the venues' own documented frames (the
same ones the adapters' frame tests use).
"""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pytest

from streamer.config import LargeLiquidationSettings, RulesSettings
from streamer.record import Link, Ws
from streamer.replay import TARDIS_EXCHANGES, run_replay, tardis_exchange, tardis_ms, tardis_records

ROOT = Path(__file__).resolve().parents[2]

ETH_SHORT = ('{"stream":"ethusdt@forceOrder","data":{"e":"forceOrder","E":1772323200200,"o":{"s":"ETHUSDT",'
             '"S":"BUY","o":"LIMIT","f":"IOC","q":"3.518","p":"2731.86","ap":"2722.37","X":"FILLED","l":"1.200",'
             '"z":"3.518","T":1772323200150}}}')
BTC_LONG = ('{"stream":"btcusdt@forceOrder","data":{"e":"forceOrder","E":1772323205600,"o":{"s":"BTCUSDT",'
            '"S":"SELL","o":"LIMIT","f":"IOC","q":"2","p":"60000","ap":"60000","X":"FILLED","l":"2","z":"2",'
            '"T":1772323205550}}}')
XBT_SHORT = ('{"table":"liquidation","action":"insert","data":[{"orderID":"dd9cea25-207c-0dab-15b5-b88da776f500",'
             '"symbol":"XBTUSD","side":"Buy","price":5106,"leavesQty":2500000}]}')

WELCOME = ('{"info":"Welcome to the BitMEX Realtime API.","version":"2020-03-11T19:51:55.000Z",'
           '"timestamp":"2020-03-12T13:00:00.000Z","docs":"https://www.bitmex.com/app/wsAPI"}')


def write_gz(path: Path, lines: list[str]) -> Path:
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(lines) + "\n")
    return path


def rules(min_usd: float) -> RulesSettings:
    return RulesSettings(large_liquidation=LargeLiquidationSettings(min_usd=min_usd))


async def replay(paths, **kw) -> list[dict]:
    out = io.BytesIO()
    await run_replay([str(p) for p in paths], out=out, progress=False, err=io.StringIO(), **kw)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_tardis_exchange_ids_map_to_venues_including_bitmex():
    assert TARDIS_EXCHANGES["binance-futures"] == ("binance", "um")
    assert TARDIS_EXCHANGES["binance-delivery"] == ("binance", "cm")
    assert TARDIS_EXCHANGES["okex-swap"][0] == TARDIS_EXCHANGES["okex-options"][0] == "okx"
    assert TARDIS_EXCHANGES["bitmex"] == ("bitmex", "realtime")
    assert tardis_exchange("binance-futures_2026-03-01.json.gz") == "binance-futures"
    assert tardis_exchange("bybit-options_2024-01-01.json.gz") == "bybit-options"
    assert tardis_exchange("/data/bitmex_2020-03-12.json.gz") == "bitmex"
    assert tardis_exchange("trades.json.gz") is None


def test_tardis_timestamps_keep_milliseconds_and_reject_other_formats():
    assert tardis_ms(b"2026-03-01T00:00:05.5000000Z", "f:1") == 1772323205500
    assert tardis_ms(b"2026-03-01T00:00:00.0019999Z", "f:1") == 1772323200001
    with pytest.raises(ValueError, match=r"f:3: '2026-03-01 00:00:05' is not a tardis.dev local timestamp"):
        tardis_ms(b"2026-03-01 00:00:05", "f:3")


def test_a_disconnect_line_closes_the_session_and_the_next_message_reopens_it(tmp_path):
    path = write_gz(tmp_path / "binance-futures_2026-03-01.json.gz",
                    [f"2026-03-01T00:00:00.1000000Z {ETH_SHORT}", "", f"2026-03-01T00:00:05.5000000Z {BTC_LONG}"])
    records = list(tardis_records(path, "binance-futures"))
    session = "tardis:binance-futures_2026-03-01.json.gz"
    assert records == [
        Link(ms=1772323200100, ex="binance", s=session, m="um", liq=True, since=1772323200100),
        Ws(ms=1772323200100, ex="binance", s=session, m="um", f=ETH_SHORT),
        Link(ms=1772323200100, ex="binance", s=session, m="um", liq=True, since=None),
        Link(ms=1772323205500, ex="binance", s=session, m="um", liq=True, since=1772323205500),
        Ws(ms=1772323205500, ex="binance", s=session, m="um", f=BTC_LONG),
    ]


async def test_binance_futures_liquidations_from_a_tardis_file_raise_large_liquidation_alerts(tmp_path):
    path = write_gz(tmp_path / "binance-futures_2026-03-01.json.gz",
                    [f"2026-03-01T00:00:00.1000000Z {ETH_SHORT}", "", f"2026-03-01T00:00:05.5000000Z {BTC_LONG}"])
    alerts = await replay([path], rules=rules(50_000))
    assert [(a["status"], a["symbol"], a["value"]) for a in alerts] == [
        ("firing", "BTC-USDT-PERP", 120_000.0), ("resolved", "BTC-USDT-PERP", 120_000.0)]
    # coverage from the file's own connection markers: up since the message after the disconnect, 50 ms
    # before the liquidation's event time, over a point rule's 1 s window
    assert alerts[0]["details"]["coverage"] == {"binance": {"feed": "sampled", "socket_up_share": 0.05}}
    assert alerts[0]["ts"] == 1772323205550


async def test_a_lower_threshold_on_the_same_tardis_file_also_catches_the_smaller_liquidation(tmp_path):
    path = write_gz(tmp_path / "binance-futures_2026-03-01.json.gz",
                    [f"2026-03-01T00:00:00.1000000Z {ETH_SHORT}", f"2026-03-01T00:00:05.5000000Z {BTC_LONG}"])
    alerts = await replay([path], rules=rules(5_000))
    firing = [(a["symbol"], a["value"]) for a in alerts if a["status"] == "firing"]
    assert firing == [("ETH-USDT-PERP", pytest.approx(3.518 * 2722.37)), ("BTC-USDT-PERP", 120_000.0)]


async def test_bitmex_liquidations_need_the_instrument_body_for_a_usd_value(tmp_path):
    path = write_gz(tmp_path / "bitmex_2020-03-12.json.gz", [f"2020-03-12T13:00:00.0000000Z {WELCOME}",
                                                             f"2020-03-12T13:00:01.2500000Z {XBT_SHORT}"])
    assert await replay([path], rules=rules(1_000_000)) == []  # no multiplier: value_usd null, nothing to compare
    body = ROOT / "tests/frames/bitmex/http_instrument_active.json"
    alerts = await replay([path], rules=rules(1_000_000), exchange="bitmex", instruments=[str(body)])
    assert [(a["status"], a["exchange"], a["symbol"]) for a in alerts] == [
        ("firing", "bitmex", "BTC-USD-PERP"), ("resolved", "bitmex", "BTC-USD-PERP")]
    # XBTUSD is inverse, 1 USD per contract: 2,500,000 contracts = $2.5M, 2.5M / 5106 BTC
    assert alerts[0]["value"] == 2_500_000.0
    assert alerts[0]["details"]["qty"] == pytest.approx(2_500_000 / 5106)
    # connected (the welcome message) 1.25 s before the liquidation: up for the whole 1 s window
    assert alerts[0]["details"]["coverage"] == {"bitmex": {"feed": "complete", "socket_up_share": 1.0}}


async def test_a_file_in_neither_format_is_refused_naming_it(tmp_path):
    path = write_gz(tmp_path / "trades.json.gz", [f"2020-03-12T13:00:01.2500000Z {XBT_SHORT}"])
    with pytest.raises(ValueError, match=r"trades.json.gz: not a streamer recording, and no tardis.dev exchange id"):
        await replay([path])
    bad = write_gz(tmp_path / "bitmex_x.json.gz", ['{"table":"liquidation"}'])
    with pytest.raises(ValueError, match=r"bitmex_x.json.gz:1: expected '<timestamp> <message>'"):
        await replay([bad])
    stamp = write_gz(tmp_path / "bitmex_y.json.gz", [f"2020-03-12 13:00:01.2500000Z {XBT_SHORT}"])
    with pytest.raises(ValueError, match=r"bitmex_y.json.gz:1: '2020-03-12 13:00:01.2500000Z' is not a tardis"):
        await replay([stamp])


async def test_the_progress_display_changes_nothing_on_stdout_and_ends_with_the_summary(tmp_path):
    path = write_gz(tmp_path / "binance-futures_2026-03-01.json.gz",
                    [f"2026-03-01T00:00:00.1000000Z {ETH_SHORT}", f"2026-03-01T00:00:05.5000000Z {BTC_LONG}"])
    plain, shown = io.BytesIO(), io.BytesIO()
    err = io.StringIO()
    await run_replay([str(path)], rules=rules(5_000), out=plain, progress=False, err=io.StringIO())
    await run_replay([str(path)], rules=rules(5_000), out=shown, progress=True, err=err)
    assert shown.getvalue() == plain.getvalue()
    assert len(plain.getvalue().splitlines()) == 4
    assert err.getvalue().splitlines()[-1].startswith("replay: 1 files, 3 records (2 frames, 0 REST bodies")
