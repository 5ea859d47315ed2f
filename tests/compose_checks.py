"""Checks shared by the compose-file tests (tests/deploy for compose.yaml, tests/nats for compose.nats.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def assert_mounts_exist_and_ports_are_loopback(compose: dict[str, Any], deploy: Path) -> None:
    """Every ``./`` bind mount of every service is a file or folder under ``deploy``, and every published port
    is bound to 127.0.0.1 only."""
    for name, svc in compose["services"].items():
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (deploy / source).exists(), f"{name}: {source}"
        for port in svc.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name}: {port}"
