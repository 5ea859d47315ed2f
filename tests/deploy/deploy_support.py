"""Helpers of the deploy/ tests: paths, free ports, tools that CI must have, metric names in PromQL and /metrics."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def require_tool(name: str) -> str:
    """Path of a command-line tool; skip without it, but fail in CI (CI=true), where .ci/run installs it."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed, and CI must run this test (.ci/run installs it)")
        pytest.skip(f"{name} is not installed (Debian: apt-get install prometheus / prometheus-alertmanager)")
    return path


def get(url: str, timeout: float = 2.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return resp.read()


@dataclass(frozen=True)
class Demo:
    """A running `streamer demo` on 127.0.0.1:<port>."""

    port: int
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def metrics_text(self) -> str:
        return get(self.url + "/metrics").decode()


def exported_metric_names(text: str) -> set[str]:
    """Every metric name of a /metrics page: its samples, and its families even when they have no sample yet."""
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            names.add(name)
            if kind == "counter" and not name.endswith("_total"):
                names.add(name + "_total")
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


# Names that PromQL expressions may use without the daemon exporting them: Prometheus's own series.
PROMETHEUS_BUILTINS = frozenset({"up", "ALERTS", "ALERTS_FOR_STATE"})
_NAME = re.compile(r"(?<![\w:\"=~.$])((?:streamer|process)[_:][A-Za-z0-9_:]*|up|ALERTS)\b(?!\s*\()")


def referenced_metric_names(expr: str) -> set[str]:
    """Metric names an expression selects (streamer_*, recorded streamer:*, process_*, up, ALERTS).

    Label values in quotes are dropped first, so `rule="streamer_x"` is not a reference.
    """
    return set(_NAME.findall(re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)))


def recorded_names(rules_doc: dict) -> set[str]:
    """Names of the recording rules of a Prometheus rules file (parsed YAML)."""
    return {r["record"] for g in rules_doc["groups"] for r in g["rules"] if "record" in r}


@contextmanager
def running_demo(log: Path) -> Iterator[Demo]:
    """`python -m streamer demo` (this checkout's code) with its HTTP endpoints on a free loopback port.

    Yields once /metrics shows WebSocket frames (the demo's scripted minute has begun); SIGTERM on exit.
    """
    port = free_port()
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamer", "demo", "--duration", "300", "--http", f"127.0.0.1:{port}"],
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
        terminate(proc)


def terminate(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 20 s (nothing when it has already exited)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def stop(proc: subprocess.Popen[bytes], log: Path) -> None:
    """SIGTERM, then SIGKILL after 20 s; a process that did not exit cleanly fails with its log."""
    terminate(proc)
    assert proc.returncode in (0, -signal.SIGTERM), log.read_text()[-3000:]


@contextmanager
def running_alertmanager(tmp_path: Path) -> Iterator[str]:
    """Debian's prometheus-alertmanager with deploy/alertmanager/alertmanager.yml, no clustering; yields host:port."""
    binary = require_tool("prometheus-alertmanager")
    port = free_port()
    log_path = tmp_path / "alertmanager.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [binary, f"--config.file={DEPLOY / 'alertmanager' / 'alertmanager.yml'}",
             f"--storage.path={tmp_path / 'alertmanager'}", f"--web.listen-address=127.0.0.1:{port}",
             "--cluster.listen-address="],
            stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        yield f"127.0.0.1:{port}"
    finally:
        stop(proc, log_path)
