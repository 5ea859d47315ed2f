"""The live dashboard in a real browser: Debian's chromium, headless, driven by Playwright, against ``streamer demo``.

Skips (with the reason) where chromium or Playwright is missing, unless ``CI`` is set: then it fails.
The screenshot is written under pytest's tmp dir (its path is printed); set
``STREAMER_DASHBOARD_SCREENSHOT=docs/dashboard.png`` to refresh the README's copy.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("STREAMER_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ROOT = Path(__file__).resolve().parents[2]
DEMO_S = 60
CASCADE_BY_S = 30  # the demo's scripted cascade fires at ~8-18 s of its timeline


def _require_browser() -> object:
    missing = []
    if not Path(CHROMIUM).exists():
        missing.append(f"chromium not found at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing.append("playwright not installed (pip install -e '.[test]')")
        sync_playwright = None
    if missing:
        if os.environ.get("CI"):
            pytest.fail("; ".join(missing) + " — CI is set, so this is a failure, not a skip")
        pytest.skip("; ".join(missing))
    return sync_playwright


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, within_s: float, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"streamer demo exited with {proc.returncode} before serving {url}")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{url} not up within {within_s} s")


@pytest.fixture
def demo(tmp_path):
    """``python -m streamer demo`` (this checkout's code) on a free loopback port; yields (base URL, start time)."""
    port = _free_port()
    log = (tmp_path / "demo.log").open("wb")
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamer", "demo", "--duration", str(DEMO_S), "--http", f"127.0.0.1:{port}"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        _wait_http(f"http://127.0.0.1:{port}/healthz", 20, proc)
        yield f"http://127.0.0.1:{port}", started
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.mark.timeout(120)
def test_dashboard_fills_funding_tape_heatmap_and_shows_the_cascade_alert_in_chromium(demo, tmp_path):
    sync_playwright = _require_browser()
    base, started = demo
    errors: list[str] = []
    with sync_playwright() as pw:  # type: ignore[operator]
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1680, "height": 1050})
            page.on("console", lambda m: errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
            page.goto(base + "/")
            assert page.title().startswith("streamer")

            # the SSE stream is live and the funding board fills: several venues, numbers with units
            page.wait_for_function("document.querySelectorAll('#funding tbody tr').length >= 8", timeout=20_000)
            assert page.locator("#conn").inner_text() == "live"
            rows = page.locator("#funding tbody tr")
            venues = {rows.nth(i).locator("td").nth(1).inner_text() for i in range(rows.count())}
            assert {"binance", "bybit", "okx", "deribit"} <= venues, venues
            per_8h = [rows.nth(i).locator("td").nth(3).inner_text() for i in range(rows.count())]
            assert all(re.fullmatch(r"[+-]?\d+\.\d{4} %", v) for v in per_8h), per_8h
            annual = rows.first.locator("td").nth(4).inner_text()
            assert re.fullmatch(r"[+-]?\d+\.\d %", annual), annual

            # venue connection state: every demo session open
            page.wait_for_function("document.querySelectorAll('#venues .chip.open, #venues .chip.stale').length >= 7",
                                   timeout=10_000)
            assert page.locator("#venues .chip.down").count() == 0

            # the scripted cascade's alert appears within the demo's timeline
            left_ms = max(1_000, int((CASCADE_BY_S - (time.monotonic() - started)) * 1000))
            page.wait_for_selector("#alerts li.firing", timeout=left_ms)
            first_alert = page.locator("#alerts li.firing").first.inner_text()
            assert "liquidation_cascade" in first_alert, first_alert
            assert "liquidated" in first_alert, first_alert
            alert_at_s = time.monotonic() - started

            # liquidations: the tape has rows with a side and a USD value, the heatmap has buckets of both kinds
            page.wait_for_function("document.querySelectorAll('#tape tbody tr').length >= 10", timeout=10_000)
            tape = page.locator("#tape tbody tr").first.locator("td")
            assert tape.nth(3).inner_text() in ("LONG", "SHORT")
            assert re.fullmatch(r"\$\d+(\.\d+)?[kMB]?", tape.nth(5).inner_text())
            assert page.locator("#heatmap .heat").count() >= 1
            assert page.locator("#heatmap .bar.long").count() >= 3

            # the other panels have data from the demo's simulator
            assert page.locator("#oi tbody tr").count() >= 5
            assert page.locator("#ivchart polyline").count() >= 1
            assert page.locator("#basis tbody tr td").first.inner_text() != "no dated future quoted"

            page.wait_for_timeout(1500)  # one more state tick, so the screenshot shows a settled page
            shot = tmp_path / "dashboard.png"
            page.screenshot(path=str(shot), full_page=True)
            print(f"dashboard screenshot: {shot} (alert shown {alert_at_s:.1f} s after the demo started)")
            target = os.environ.get("STREAMER_DASHBOARD_SCREENSHOT")
            if target:
                shutil.copyfile(shot, ROOT / target)
        finally:
            browser.close()
    assert not errors, errors
