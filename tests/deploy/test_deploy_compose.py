"""deploy/compose.yaml: the four services, mounts of files that exist, loopback-only ports, wiring that matches the
Prometheus, Alertmanager and streamer configs; `docker-compose config` accepts it where installed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import PurePosixPath

import pytest
import yaml
from deploy_support import DEPLOY, ROOT

from streamer.config import load_settings
from tests.compose_checks import assert_mounts_exist_and_ports_are_loopback


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def test_compose_runs_streamer_prometheus_alertmanager_and_grafana():
    assert set(compose()["services"]) == {"streamer", "prometheus", "alertmanager", "grafana"}


def test_every_bind_mount_is_a_file_of_deploy_and_every_port_is_loopback_only():
    assert_mounts_exist_and_ports_are_loopback(compose(), DEPLOY)


def test_streamer_service_builds_the_dockerfile_and_mounts_the_config_the_image_runs():
    svc = compose()["services"]["streamer"]
    context = (DEPLOY / svc["build"]["context"]).resolve()
    assert context == ROOT
    assert (context / svc["build"]["dockerfile"]).is_file()
    assert "./streamer.yaml:/etc/streamer/streamer.yaml:ro" in svc["volumes"]
    assert svc["stop_signal"] == "SIGTERM"
    settings = load_settings(str(DEPLOY / "streamer.yaml"))
    # the daemon sends its own alerts to the stack's Alertmanager, by service name and port
    assert [s.url for s in settings.sinks.alertmanager] == ["http://alertmanager:9093"]


def test_prometheus_scrapes_the_streamer_service_and_loads_the_mounted_rules():
    prom = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    jobs = {j["job_name"]: j for j in prom["scrape_configs"]}
    assert jobs["streamer"]["static_configs"][0]["targets"] == ["streamer:9464"]
    assert prom["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["alertmanager:9093"]
    mounts = dict(v.split(":")[:2] for v in compose()["services"]["prometheus"]["volumes"] if v.startswith("./"))
    config_dir = PurePosixPath(mounts["./prometheus/prometheus.yml"]).parent
    for pattern in prom["rule_files"]:
        in_container = config_dir / pattern
        assert str(in_container.parent) == mounts["./prometheus/rules"]
        assert list((DEPLOY / "prometheus" / "rules").glob(in_container.name)), pattern


def test_docker_compose_accepts_the_file():
    tool = shutil.which("docker-compose")
    if tool is None:
        pytest.skip("docker-compose is not installed (Debian package docker-compose); structure checked above")
    proc = subprocess.run([tool, "-f", str(DEPLOY / "compose.yaml"), "config", "--quiet"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
