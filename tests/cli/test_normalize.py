"""`streamer normalize` end to end in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

FRAMES = [
    '{"result":null,"id":1}',
    '{"e":"forceOrder","E":1568014460900,"o":{"s":"BTCUSD_PERP","ps":"BTCUSD","S":"SELL","o":"LIMIT","f":"IOC",'
    '"q":"10","p":"49000","ap":"50000","X":"FILLED","l":"10","z":"10","T":1568014460893}}',
    "this is not json",
    '{"stream":"btcusdt@markPrice@1s","data":{"e":"markPriceUpdate","E":1562305380000,"s":"BTCUSDT",'
    '"p":"11794.15","i":"11784.6","P":"11784.2","r":"0.0001","T":1562306400000}}',
]
CM_INFO = {"symbols": [{"symbol": "BTCUSD_PERP", "pair": "BTCUSD", "contractType": "PERPETUAL",
                        "deliveryDate": 4133404800000, "contractSize": 100, "marginAsset": "BTC",
                        "baseAsset": "BTC", "quoteAsset": "USD"}]}


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "streamer", *args], input=stdin, capture_output=True, text=True,
                          timeout=60, check=False)


def test_normalize_prints_one_event_per_line_and_reports_bad_lines(tmp_path: Path):
    frames = tmp_path / "frames.txt"
    frames.write_text("\n".join(FRAMES) + "\n")
    info = tmp_path / "exchangeInfo.json"
    info.write_text(json.dumps(CM_INFO))
    fund = tmp_path / "fundingInfo.json"
    fund.write_text("[]")
    proc = run("normalize", "--exchange", "binance", "--instruments", str(info), "--instruments", str(fund),
               "--recv-ts", "1700000000000", str(frames))
    assert proc.returncode == 0
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert events == [
        {"type": "liquidation", "exchange": "binance", "symbol": "BTC-USD-PERP", "raw_symbol": "BTCUSD_PERP",
         "ts": 1568014460893, "recv_ts": 1700000000000, "side": "long", "price": 50000.0, "qty": 0.02,
         "value_usd": 1000.0},
        {"type": "funding", "exchange": "binance", "symbol": "BTC-USDT-PERP", "raw_symbol": "BTCUSDT",
         "ts": 1562305380000, "recv_ts": 1700000000000, "rate": 0.0001, "interval_h": 8.0, "rate_8h": 0.0001,
         "annualized": 0.0001 * 3 * 365, "predicted_rate": None, "next_funding_ts": 1562306400000,
         "mark_price": 11794.15, "index_price": 11784.6},
        {"type": "ticker", "exchange": "binance", "symbol": "BTC-USDT-PERP", "raw_symbol": "BTCUSDT",
         "ts": 1562305380000, "recv_ts": 1700000000000, "last": None, "bid": None, "ask": None,
         "mark_price": 11794.15, "index_price": 11784.6, "volume_24h_usd": None, "open_interest": None,
         "open_interest_usd": None},
    ]
    assert f"{frames}:3: unreadable frame (json)" in proc.stderr


def test_normalize_reads_standard_input():
    proc = run("normalize", "--exchange", "binance", "--recv-ts", "1", stdin=FRAMES[3] + "\n")
    assert proc.returncode == 0
    assert [json.loads(line)["type"] for line in proc.stdout.splitlines()] == ["funding", "ticker"]


def test_normalize_with_unreadable_instruments_file_exits_2_naming_it(tmp_path: Path):
    bad = tmp_path / "info.json"
    bad.write_text("{nope")
    proc = run("normalize", "--exchange", "binance", "--instruments", str(bad), stdin="")
    assert proc.returncode == 2
    assert str(bad) in proc.stderr


def test_normalize_missing_input_file_exits_2(tmp_path: Path):
    proc = run("normalize", "--exchange", "binance", str(tmp_path / "absent.txt"))
    assert proc.returncode == 2
    assert "absent.txt" in proc.stderr
