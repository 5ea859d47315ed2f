"""A real Prometheus (Debian's `prometheus` binary) scrapes `streamer demo`, evaluates deploy/'s rules, and answers
queries over streamer_* metrics through its HTTP API; the demo's scripted liquidation cascade fires the
Prometheus-side cascade alert, which reaches a real Alertmanager running deploy/'s config."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse

import pytest
import yaml
from deploy_support import DEPLOY, free_port, get, require_tool, running_alertmanager, running_demo, stop


def query(base: str, promql: str) -> list[dict]:
    body = json.loads(get(f"{base}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"))
    assert body["status"] == "success", body
    return body["data"]["result"]


def wait_for(base: str, promql: str, within_s: float) -> list[dict]:
    deadline = time.monotonic() + within_s
    while True:
        try:
            result = query(base, promql)
        except OSError:
            result = []
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"Prometheus returned nothing for {promql!r} within {within_s} s")
        time.sleep(0.25)


@pytest.fixture
def demo(tmp_path):
    """A fresh demo (not the shared one): its scripted cascade (8-18 s into the run) is still ahead or under way."""
    with running_demo(tmp_path / "demo.log") as d:
        yield d


@pytest.fixture
def alertmanager(tmp_path):
    with running_alertmanager(tmp_path) as address:
        yield address


@pytest.fixture
def prometheus(demo, alertmanager, tmp_path):
    """Prometheus on a free loopback port, scraping the demo every second, with deploy/'s rules every second,
    sending alerts to the Alertmanager above."""
    binary = require_tool("prometheus")
    shutil.copy(DEPLOY / "prometheus" / "rules" / "streamer.rules.yml", tmp_path / "streamer.rules.yml")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": ["streamer.rules.yml"],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]},
        "scrape_configs": [{"job_name": "streamer", "static_configs": [{"targets": [f"127.0.0.1:{demo.port}"]}]}],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log_path = tmp_path / "prometheus.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [binary, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{port}"],
            stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc, log_path)


@pytest.mark.timeout(90)
def test_prometheus_scrapes_the_demo_evaluates_the_rules_and_alerts_alertmanager(prometheus, alertmanager, demo):
    up = wait_for(prometheus, 'up{job="streamer"} == 1', within_s=30)
    assert up[0]["metric"]["instance"] == f"127.0.0.1:{demo.port}"

    # every WebSocket session of the demo is open: Binance UM+CM, Bybit linear/inverse/option, OKX, Deribit
    connected = wait_for(prometheus, "streamer_ws_connected", within_s=10)
    by_session = {r["metric"]["session"]: float(r["value"][1]) for r in connected}
    assert by_session == {s: 1.0 for s in ("binance-um-0", "binance-cm-0", "bybit-linear-0", "bybit-inverse-0",
                                           "bybit-option-0", "okx-public-0", "deribit-public-0")}

    frames = query(prometheus, "sum(streamer_ws_frames_total)")
    assert float(frames[0]["value"][1]) > 0

    funding = query(prometheus, 'streamer_funding_rate_8h_ratio{exchange="binance",symbol="BTC-USDT-PERP"}')
    assert len(funding) == 1
    assert -0.01 < float(funding[0]["value"][1]) < 0.01  # a fraction per 8 h, not percent

    # deploy/'s recording rules run in a real Prometheus too: sessions open per venue
    sessions = wait_for(prometheus, "streamer:sessions_open:count", within_s=10)
    assert {r["metric"]["exchange"]: float(r["value"][1]) for r in sessions} == {
        "binance": 2.0, "bybit": 3.0, "okx": 1.0, "deribit": 1.0}
    # ... and every rule of the three groups has been evaluated without an error
    deadline = time.monotonic() + 10
    while True:
        groups = json.loads(get(f"{prometheus}/api/v1/rules"))["data"]["groups"]
        rules = [r for g in groups for r in g["rules"]]
        if all(not r["lastEvaluation"].startswith("0001") for r in rules) or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    assert {g["name"] for g in groups} == {"streamer.recording", "streamer.health", "streamer.market"}
    on_disk = yaml.safe_load((DEPLOY / "prometheus" / "rules" / "streamer.rules.yml").read_text())
    assert len(rules) == sum(len(g["rules"]) for g in on_disk["groups"])
    assert [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"] == []

    # every recording rule matches the demo's series (a label selector or a name that matches nothing would
    # leave it empty); only the parse-error ones stay empty, since the demo's frames all parse
    # (rates need two scrapes in their window, hence the wait)
    expected_empty = {"streamer:parse_errors:rate5m", "streamer:parse_error_ratio:rate5m"}
    deadline = time.monotonic() + 15
    while True:
        empty = {r["name"] for r in rules if r["type"] == "recording" and not query(prometheus, r["name"])}
        if empty == expected_empty or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert empty == expected_empty

    # the demo's scripted cascade (ETH longs liquidated at Binance, Bybit and OKX at once, $14.6M at its peak)
    # crosses the rule's $5M floor summed across venues: the Prometheus-side alert fires for ETH longs only
    cascade = wait_for(prometheus, 'ALERTS{alertname="StreamerLiquidationCascade", alertstate="firing"}',
                       within_s=45)
    assert [(a["metric"]["symbol"], a["metric"]["side"]) for a in cascade] == [("ETH-USDT-PERP", "long")]
    alerts = json.loads(get(f"{prometheus}/api/v1/alerts"))["data"]["alerts"]
    fired = [a for a in alerts if a["labels"]["alertname"] == "StreamerLiquidationCascade"]
    assert float(fired[0]["value"]) >= 5e6
    assert fired[0]["annotations"]["summary"].startswith("ETH-USDT-PERP: $")
    assert fired[0]["annotations"]["summary"].endswith("M of longs liquidated in 60s")

    # ... and Prometheus delivered it to Alertmanager (deploy/'s config: market alerts go to `default`)
    deadline = time.monotonic() + 20
    while True:
        received = [a for a in json.loads(get(f"http://{alertmanager}/api/v2/alerts"))
                    if a["labels"]["alertname"] == "StreamerLiquidationCascade"]
        if received or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    assert [(a["labels"]["symbol"], a["labels"]["kind"], a["status"]["state"]) for a in received] == [
        ("ETH-USDT-PERP", "market", "active")]
    assert [r["name"] for r in received[0]["receivers"]] == ["default"]
