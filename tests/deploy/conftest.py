"""Fixtures of the deploy/ tests: one `streamer demo` process shared by the session.

It takes a few seconds to start: the Grafana and rules tests read the metric names it really exports, the
Prometheus test scrapes it.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from deploy_support import ROOT, Demo, free_port


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """`python -m streamer demo` (this checkout's code) with its HTTP endpoints on a free loopback port.

    Yields once /metrics shows WebSocket frames; stops it with SIGTERM at the end of the session.
    """
    port = free_port()
    log = tmp_path_factory.mktemp("demo") / "demo.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamer", "demo", "--duration", "600", "--http", f"127.0.0.1:{port}"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err, env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
    demo = Demo(port, proc)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"streamer demo exited with {proc.returncode}: {log.read_text()[-2000:]}")
            try:
                text = demo.metrics_text()
            except OSError:
                text = ""
            if re.search(r"^streamer_ws_frames_total\{.*\} [1-9]", text, re.M):
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"streamer demo served no frames within 30 s: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield demo
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
