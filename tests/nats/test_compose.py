"""deploy/compose.nats.yaml: nats with JetStream, two ingest services on different venues, one aggregator, all from
one config; the file's mounts exist, ports are loopback only; `docker-compose config` accepts it where installed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from streamer.config import load_settings
from tests.compose_checks import assert_mounts_exist_and_ports_are_loopback

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
VENUES = ("binance", "bybit", "okx", "deribit")


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.nats.yaml").read_text())


def settings_of(service: str):
    svc = compose()["services"][service]
    mounts = dict(v.split(":")[:2] for v in svc["volumes"] if v.startswith("./"))
    config_in_container = svc["command"][svc["command"].index("--config") + 1]
    (source,) = [src for src, dst in mounts.items() if dst == config_in_container]
    env = {k: str(v) for k, v in svc.get("environment", {}).items() if k.startswith("STREAMER__")}
    return load_settings(str(DEPLOY / source), env=env)


def enabled(service: str) -> set[str]:
    s = settings_of(service)
    return {v for v in VENUES if getattr(s.exchanges, v).enabled}


def test_compose_runs_nats_two_ingest_services_and_one_aggregator():
    services = compose()["services"]
    assert set(services) == {"nats", "ingest-a", "ingest-b", "aggregate"}
    assert services["nats"]["image"].startswith("nats:")
    assert "-js" in services["nats"]["command"]
    roles = {name: svc["command"][svc["command"].index("--role") + 1] for name, svc in services.items()
             if name != "nats"}
    assert roles == {"ingest-a": "ingest", "ingest-b": "ingest", "aggregate": "aggregate"}


def test_the_two_ingest_services_split_the_venues_and_all_talk_to_the_nats_service():
    assert enabled("ingest-a") == {"binance", "bybit"}
    assert enabled("ingest-b") == {"okx", "deribit"}
    assert enabled("ingest-a") | enabled("ingest-b") == enabled("aggregate")
    for name in ("ingest-a", "ingest-b", "aggregate"):
        s = settings_of(name)
        assert s.bus.backend == "nats"
        assert s.bus.nats.url == "nats://nats:4222"


def test_services_build_the_dockerfile_mount_files_of_deploy_and_publish_loopback_ports_only():
    assert_mounts_exist_and_ports_are_loopback(compose(), DEPLOY)
    for svc in compose()["services"].values():
        if "build" in svc:
            assert (DEPLOY / svc["build"]["context"]).resolve() == ROOT
            assert (ROOT / svc["build"]["dockerfile"]).is_file(), svc["build"]["dockerfile"]


def test_docker_compose_accepts_the_file():
    tool = shutil.which("docker-compose")
    if tool is None:
        pytest.skip("docker-compose is not installed (Debian package docker-compose); structure checked above")
    proc = subprocess.run([tool, "-f", str(DEPLOY / "compose.nats.yaml"), "config", "--quiet"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
