"""deploy/grafana: the dashboard loads, every panel query is valid PromQL over real metric names, the datasource uid
is the provisioned one, and the provisioning points where compose mounts the dashboards."""

from __future__ import annotations

import json
import subprocess

import yaml
from deploy_support import (
    DEPLOY,
    PROMETHEUS_BUILTINS,
    exported_metric_names,
    recorded_names,
    referenced_metric_names,
    require_tool,
)

GRAFANA = DEPLOY / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "streamer.json"
RULES = DEPLOY / "prometheus" / "rules" / "streamer.rules.yml"

# Grafana's variables, replaced by what Grafana would put there (a regex for the multi-value $exchange).
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h", "$exchange": ".*"}


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def panels() -> list[dict]:
    return [p for p in dashboard()["panels"] if p["type"] != "row"]


def targets() -> list[tuple[dict, dict]]:
    return [(p, t) for p in panels() for t in p["targets"]]


def as_promql(expr: str) -> str:
    for var, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(var, value)
    assert "$" not in expr.replace('"$1"', ""), f"unknown Grafana variable in {expr!r}"
    return expr


def test_dashboard_panels_have_unique_ids_and_fit_the_grid():
    ids = [p["id"] for p in dashboard()["panels"]]
    assert len(ids) == len(set(ids))
    for p in dashboard()["panels"]:
        pos = p["gridPos"]
        assert pos["x"] + pos["w"] <= 24, p["title"]
    refs = [(p["id"], t["refId"]) for p, t in targets()]
    assert len(refs) == len(set(refs))


def test_panels_use_core_grafana_panel_types_and_units():
    # Grafana's built-in panels (no plugin to install) and unit ids of its value formats
    core_panels = {"row", "timeseries", "table", "stat", "bargauge", "gauge", "state-timeline", "text"}
    units = {"short", "none", "percentunit", "currencyUSD", "bytes", "s"}
    for p in dashboard()["panels"]:
        assert p["type"] in core_panels, p["title"]
        unit = p.get("fieldConfig", {}).get("defaults", {}).get("unit")
        assert unit is None or unit in units or unit.startswith("suffix:"), (p["title"], unit)
        for override in p.get("fieldConfig", {}).get("overrides", []):
            for prop in override["properties"]:
                if prop["id"] == "unit":
                    assert prop["value"] in units, (p["title"], prop["value"])


def test_every_panel_and_variable_uses_the_provisioned_datasource_uid():
    provisioned = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yaml").read_text())
    uids = {d["uid"] for d in provisioned["datasources"] if d["type"] == "prometheus"}
    assert uids == {"prometheus"}
    for p in panels():
        assert p["datasource"] == {"type": "prometheus", "uid": "prometheus"}, p["title"]
        for t in p["targets"]:
            assert t["datasource"]["uid"] in uids, p["title"]
    for var in dashboard()["templating"]["list"]:
        assert var["datasource"]["uid"] in uids, var["name"]


def test_dashboard_covers_funding_oi_liquidations_and_pipeline_health():
    rows = [p["title"] for p in dashboard()["panels"] if p["type"] == "row"]
    assert rows == ["Funding board", "Open interest", "Liquidations", "Pipeline health"]
    used = set().union(*(referenced_metric_names(t["expr"]) for _, t in targets()))
    for name in ("streamer_funding_rate_8h_ratio", "streamer_open_interest_usd", "streamer_liquidations_usd",
                 "streamer_ws_connected", "streamer_ws_frames_total", "streamer_parse_errors_total",
                 "streamer_ws_reconnects_total", "streamer_bus_queue_depth", "streamer_alerts_total"):
        assert name in used, name


def test_every_panel_query_is_valid_promql(tmp_path):
    # promtool parses PromQL when it checks rules: each query becomes a recording rule of a scratch file.
    rules = [{"record": f"grafana_panel_{p['id']}_{t['refId']}", "expr": as_promql(t["expr"])}
             for p, t in targets()]
    scratch = tmp_path / "panels.rules.yml"
    scratch.write_text(yaml.safe_dump({"groups": [{"name": "grafana_panels", "rules": rules}]}))
    proc = subprocess.run([require_tool("promtool"), "check", "rules", str(scratch)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(rules)} rules found" in proc.stdout


def test_promql_check_of_panels_catches_a_broken_query(tmp_path):
    scratch = tmp_path / "broken.rules.yml"
    scratch.write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": [
        {"record": "x", "expr": "sum by (exchange) (rate(streamer_ws_frames_total[1m])"}]}]}))
    proc = subprocess.run([require_tool("promtool"), "check", "rules", str(scratch)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode != 0


def test_every_metric_a_panel_reads_is_exported_by_the_daemon_or_recorded_by_the_rules(demo):
    known = (exported_metric_names(demo.metrics_text()) | recorded_names(yaml.safe_load(RULES.read_text()))
             | PROMETHEUS_BUILTINS)
    for p, t in targets():
        missing = referenced_metric_names(t["expr"]) - known
        assert missing == set(), f"panel {p['title']!r}: {sorted(missing)}"
    for var in dashboard()["templating"]["list"]:
        assert referenced_metric_names(var["definition"]) <= known, var["name"]


def test_provisioning_loads_the_dashboard_from_where_compose_mounts_it():
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "streamer.yaml").read_text())["providers"][0]
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    mounts = dict(v.split(":")[:2] for v in compose["services"]["grafana"]["volumes"] if v.startswith("./"))
    assert mounts["./grafana/dashboards"] == provider["options"]["path"]
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
    assert dashboard()["uid"] == "streamer-overview"
