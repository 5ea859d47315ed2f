"""deploy/systemd/streamer.service: restart on failure, SIGTERM stop, a dedicated user, hardening, verified."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from deploy_support import DEPLOY

UNIT = DEPLOY / "systemd" / "streamer.service"
INSTALLED_STREAMER = "/opt/streamer/venv/bin/streamer"


def unit_keys() -> dict[str, dict[str, list[str]]]:
    """section -> key -> every value (systemd allows a key more than once)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        assert current is not None, f"{UNIT}: {line!r} outside a section"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def service(key: str) -> str:
    values = unit_keys()["Service"].get(key)
    assert values, f"{UNIT}: no {key}= in [Service]"
    return values[-1]


def test_unit_restarts_on_failure_and_stops_with_sigterm_within_a_deadline():
    assert service("Restart") == "on-failure"
    assert service("KillSignal") == "SIGTERM"
    assert 10 <= int(service("TimeoutStopSec")) <= 120
    unit = unit_keys()["Unit"]
    assert unit["StartLimitBurst"] == ["10"]
    assert unit["After"] == ["network-online.target"]


def test_unit_runs_the_daemon_as_a_dedicated_user_with_its_config_under_etc():
    assert service("User") == "streamer"
    assert service("Group") == "streamer"
    assert service("ExecStart") == f"{INSTALLED_STREAMER} run --config /etc/streamer/streamer.yaml"
    assert service("StateDirectory") == "streamer"
    # the config's state_dir (default ~/.cache/streamer, hidden by ProtectHome) is overridden to the writable one
    env = unit_keys()["Service"]["Environment"]
    assert "STREAMER__STATE_DIR=/var/lib/streamer" in env


def test_unit_is_hardened_and_can_write_only_its_state_dir():
    assert service("NoNewPrivileges") == "yes"
    assert service("ProtectSystem") == "strict"
    assert service("ProtectHome") == "yes"
    assert service("PrivateTmp") == "yes"
    assert service("ReadWritePaths") == "/var/lib/streamer"
    assert set(service("RestrictAddressFamilies").split()) == {"AF_INET", "AF_INET6", "AF_UNIX"}
    assert service("CapabilityBoundingSet") == ""
    assert service("SystemCallFilter") == "~@privileged @resources"
    # ProcSubset=pid would hide /proc/stat, and prometheus_client then exports no process_* metric at all
    assert "ProcSubset" not in unit_keys()["Service"]


def installed_copy(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at this machine's streamer (systemd-analyze checks it exists)."""
    exe = shutil.which("streamer") or str(Path(sys.executable).with_name("streamer"))
    if not Path(exe).exists():
        pytest.skip("no streamer console script on this machine to stand in for /opt/streamer/venv/bin/streamer")
    copy = tmp_path / "streamer.service"
    copy.write_text(UNIT.read_text().replace(INSTALLED_STREAMER, exe))
    return copy


def systemd_analyze() -> str:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd); the static checks above still ran")
    return tool


def test_systemd_analyze_verify_reports_nothing(tmp_path):
    tool = systemd_analyze()
    proc = subprocess.run([tool, "verify", str(installed_copy(tmp_path))], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == "", proc.stderr  # unknown keys and bad values are warnings on stderr


def test_systemd_exposure_score_is_ok(tmp_path):
    tool = systemd_analyze()
    proc = subprocess.run([tool, "security", "--offline=yes", "--no-pager", str(installed_copy(tmp_path))],
                          capture_output=True, text=True, timeout=60)
    if "--offline" in proc.stderr and proc.returncode != 0:
        pytest.skip(f"this systemd-analyze has no offline security scoring: {proc.stderr.strip()[:200]}")
    match = re.search(r"Overall exposure level for streamer\.service: ([0-9.]+)", proc.stdout)
    assert match, proc.stdout[-1000:] + proc.stderr[-1000:]
    assert float(match.group(1)) <= 2.0  # systemd's scale: 0 (locked down) .. 10 (unprotected); "OK" is below 2
