"""deploy/prometheus and deploy/alertmanager: promtool and amtool accept them, the rules' unit tests pass, and the
rules select only metrics the daemon really exports."""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.request

import yaml
from deploy_support import (
    DEPLOY,
    PROMETHEUS_BUILTINS,
    exported_metric_names,
    get,
    recorded_names,
    referenced_metric_names,
    require_tool,
    running_alertmanager,
)

PROM = DEPLOY / "prometheus"
RULES = PROM / "rules" / "streamer.rules.yml"
RULE_TESTS = sorted((PROM / "tests").glob("*.test.yml"))


def run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def rules_doc() -> dict:
    return yaml.safe_load(RULES.read_text())


def alerting_rules() -> list[dict]:
    return [r for g in rules_doc()["groups"] for r in g["rules"] if "alert" in r]


def test_promtool_accepts_the_prometheus_config_and_finds_the_rules():
    proc = run(require_tool("promtool"), "check", "config", str(PROM / "prometheus.yml"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS: 1 rule files found" in proc.stdout + proc.stderr


def test_promtool_accepts_the_rules():
    proc = run(require_tool("promtool"), "check", "rules", str(RULES))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    n = sum(len(g["rules"]) for g in rules_doc()["groups"])
    assert f"SUCCESS: {n} rules found" in proc.stdout


def test_promtool_rule_unit_tests_pass():
    assert [p.name for p in RULE_TESTS] == ["health.test.yml", "market.test.yml"]
    proc = run(require_tool("promtool"), "test", "rules", *map(str, RULE_TESTS))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("SUCCESS") == len(RULE_TESTS)


def test_every_alert_has_a_unit_test_where_it_fires_and_one_where_it_does_not():
    fired: set[str] = set()
    quiet: set[str] = set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (fired if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {r["alert"] for r in alerting_rules()}
    assert names - fired == set(), "alerts never shown firing in deploy/prometheus/tests"
    assert names - quiet == set(), "alerts never shown not firing in deploy/prometheus/tests"


def test_every_alert_carries_severity_kind_summary_and_description():
    for rule in alerting_rules():
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["labels"]["kind"] in ("health", "market"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert rule["annotations"]["description"], rule["alert"]
        assert rule["alert"].startswith("Streamer"), rule["alert"]


def test_rules_select_only_metrics_the_daemon_exports(demo):
    exported = exported_metric_names(demo.metrics_text())
    known = exported | recorded_names(rules_doc()) | PROMETHEUS_BUILTINS
    exprs = [r["expr"] for g in rules_doc()["groups"] for r in g["rules"]]
    referenced = set().union(*map(referenced_metric_names, exprs))
    assert referenced - known == set()
    # the metrics each family of rule is about are among them (the check above is not vacuous)
    assert {"streamer_ws_connected", "streamer_stream_last_frame_age_seconds", "streamer_stream_cadence_seconds",
            "streamer_parse_errors_total", "streamer_outbox_depth", "streamer_outbox_oldest_undelivered_age_seconds",
            "streamer_ws_reconnects_total", "streamer_bus_dropped_total", "streamer_funding_rate_8h_ratio",
            "streamer_liquidations_usd"} <= referenced


def test_alertmanager_config_is_valid():
    proc = run(require_tool("amtool"), "check-config", str(DEPLOY / "alertmanager" / "alertmanager.yml"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_alertmanager_routes_health_alerts_to_ops_and_the_rest_to_default():
    amtool = require_tool("amtool")
    config = str(DEPLOY / "alertmanager" / "alertmanager.yml")
    cases = [
        (["alertname=StreamerVenueDown", "kind=health", "severity=critical", "exchange=okx"], "ops"),
        (["alertname=StreamerLiquidationCascade", "kind=market", "severity=warning"], "default"),
        # the daemon's own alerts (sinks.alertmanager) carry no kind label
        (["alertname=liquidation_cascade", "severity=warning", "symbol=ETH-USDT-PERP"], "default"),
    ]
    for labels, receiver in cases:
        proc = run(amtool, "config", "routes", "test", f"--config.file={config}", f"--verify.receivers={receiver}",
                   *labels)
        assert proc.returncode == 0, (labels, proc.stdout, proc.stderr)
        assert proc.stdout.strip() == receiver, labels


def test_market_alerts_use_the_daemons_default_thresholds():
    from streamer.config import RulesSettings

    defaults = RulesSettings()
    exprs = {r["alert"]: r["expr"] for r in alerting_rules()}

    def threshold(alert: str) -> float:
        match = re.search(r">=\s*([0-9.e+-]+)\s*$", exprs[alert].strip())
        assert match, exprs[alert]
        return float(match.group(1))

    assert threshold("StreamerExtremeFunding") == defaults.extreme_funding.threshold_pct / 100
    assert threshold("StreamerFundingDivergence") == defaults.funding_divergence.threshold_pct / 100
    assert threshold("StreamerLiquidationCascade") == defaults.liquidation_cascade.min_usd
    assert f'window="{int(defaults.liquidation_cascade.window_s)}s"' in exprs["StreamerLiquidationCascade"]


def test_alertmanager_inhibits_session_and_stale_alerts_of_a_venue_that_is_down(tmp_path):
    def alert(name: str, **labels: str) -> dict:
        return {"labels": {"alertname": name, "kind": "health", **labels}}

    with running_alertmanager(tmp_path) as am:
        posted = [
            alert("StreamerVenueDown", severity="critical", exchange="okx"),
            alert("StreamerSessionDown", severity="warning", exchange="okx", session="okx-public-0"),
            alert("StreamerStreamStale", severity="warning", exchange="okx", session="okx-public-0", stream="x"),
            alert("StreamerSessionDown", severity="warning", exchange="binance", session="binance-cm-0"),
        ]
        deadline = time.monotonic() + 20
        while True:  # the API may not answer yet
            try:
                request = urllib.request.Request(f"http://{am}/api/v2/alerts", data=json.dumps(posted).encode(),
                                                 headers={"Content-Type": "application/json"}, method="POST")
                with urllib.request.urlopen(request, timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline, "Alertmanager did not accept alerts within 20 s"
                time.sleep(0.2)
        expected = {("StreamerVenueDown", "okx"): "active", ("StreamerSessionDown", "okx"): "suppressed",
                    ("StreamerStreamStale", "okx"): "suppressed", ("StreamerSessionDown", "binance"): "active"}
        deadline = time.monotonic() + 10
        while True:
            states = {(a["labels"]["alertname"], a["labels"]["exchange"]): a["status"]["state"]
                      for a in json.loads(get(f"http://{am}/api/v2/alerts"))}
            if states == expected or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert states == expected
