"""The container's config (deploy/streamer.yaml) runs: `streamer run` with it, as the image's CMD does, against the
simulator (only the venue URLs, the state dir and the Alertmanager address overridden through the environment)
connects every venue it enables, becomes ready, and its own alerts reach a real Alertmanager running deploy/'s
config."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
import yaml
from deploy_support import DEPLOY, ROOT, free_port, get, running_alertmanager, stop


@pytest.fixture
def sim_urls(tmp_path):
    """`streamer sim` (the demo scenario: an ETH liquidation cascade 8-18 s in) on a free port; its URLs by name."""
    log = tmp_path / "sim.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamer", "sim", "--port", str(free_port()), "--scenario", "demo"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=err, text=True,
        )
    try:
        urls = {}
        while len(urls) < 18:  # one "name url" line per endpoint
            line = proc.stdout.readline()
            assert line, f"streamer sim printed no URLs: {log.read_text()[-2000:]}"
            name, url = line.split()
            urls[name] = url
        yield urls
    finally:
        stop(proc, log)
        proc.stdout.close()


def sim_overrides(urls: dict[str, str]) -> dict[str, str]:
    """STREAMER__... variables that point the config's venues at the simulator (same mapping as the demo)."""
    ex = "STREAMER__EXCHANGES__"
    return {
        ex + "BINANCE__UM_WS_URL": urls["binance_um_ws"] + "/ws",
        ex + "BINANCE__CM_WS_URL": urls["binance_cm_ws"] + "/ws",
        ex + "BINANCE__UM_REST_URL": urls["binance_um_rest"],
        ex + "BINANCE__CM_REST_URL": urls["binance_cm_rest"],
        ex + "BYBIT__LINEAR_WS_URL": urls["bybit_ws_linear"],
        ex + "BYBIT__INVERSE_WS_URL": urls["bybit_ws_inverse"],
        ex + "BYBIT__OPTION_WS_URL": urls["bybit_ws_option"],
        ex + "BYBIT__REST_URL": urls["bybit_rest"],
        ex + "OKX__PUBLIC_WS_URL": urls["okx_ws_public"],
        ex + "OKX__REST_URL": urls["okx_rest"],
        ex + "DERIBIT__WS_URL": urls["deribit_ws"],
        ex + "DERIBIT__REST_URL": urls["deribit_rest"],
    }


@pytest.mark.timeout(120)
def test_container_config_runs_against_the_simulator_and_alerts_reach_alertmanager(sim_urls, tmp_path):
    config = yaml.safe_load((DEPLOY / "streamer.yaml").read_text())
    enabled = {name for name, venue in config["exchanges"].items() if venue.get("enabled")}
    assert enabled == {"binance", "bybit", "okx", "deribit"}

    with running_alertmanager(tmp_path) as am:
        port = free_port()
        env = dict(os.environ, PYTHONUNBUFFERED="1", STREAMER__STATE_DIR=str(tmp_path / "state"),
                   STREAMER__SINKS__ALERTMANAGER=f'[{{url: "http://{am}", resend_s: 60}}]', **sim_overrides(sim_urls))
        log = tmp_path / "streamer.log"
        # the image's CMD, with a loopback address instead of 0.0.0.0
        with log.open("wb") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "streamer", "run", "--config", str(DEPLOY / "streamer.yaml"),
                 "--http", f"127.0.0.1:{port}"],
                cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=err,
            )
        try:
            deadline = time.monotonic() + 30
            while True:
                assert proc.poll() is None, f"streamer run exited {proc.returncode}: {log.read_text()[-3000:]}"
                try:
                    if get(f"http://127.0.0.1:{port}/readyz") is not None:
                        break
                except OSError:
                    pass
                assert time.monotonic() < deadline, f"not ready within 30 s: {log.read_text()[-3000:]}"
                time.sleep(0.25)
            sessions = json.loads(get(f"http://127.0.0.1:{port}/state/sessions"))
            assert {s["exchange"] for s in sessions.values()} == enabled
            assert {s["state"] for s in sessions.values()} == {"open"}

            # the simulator's cascade crosses the daemon's default liquidation_cascade rule ($5M one-sided in
            # 60 s); the Alertmanager sink delivers it, and deploy/'s routes send it to `default`
            received: list[dict] = []
            deadline = time.monotonic() + 45
            while not received and time.monotonic() < deadline:
                received = [a for a in json.loads(get(f"http://{am}/api/v2/alerts"))
                            if a["labels"]["alertname"] == "liquidation_cascade"]
                time.sleep(0.5)
            assert received, f"no liquidation_cascade alert in Alertmanager: {log.read_text()[-3000:]}"
            assert received[0]["labels"]["symbol"] == "ETH-USDT-PERP"
            assert [r["name"] for r in received[0]["receivers"]] == ["default"]
        finally:
            stop(proc, log)
