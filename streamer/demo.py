"""``streamer demo``: the simulator and the daemon against it, offline, in one process.

The demo's rule thresholds are scaled to the simulator's scripted market so
that a one-minute run shows a liquidation cascade and a funding spike firing
and resolving (a 10-second cascade window instead of 60; see ``demo_settings``).
Everything else is the daemon exactly as ``streamer run`` builds it.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Sequence

import msgspec

from streamer.alerts.webhook import decode_secret
from streamer.config import (
    BinanceSettings,
    BybitSettings,
    CascadeSettings,
    DeribitSettings,
    ExchangesSettings,
    ExtremeFundingSettings,
    HttpSettings,
    LargeLiquidationSettings,
    OkxSettings,
    RecordSettings,
    RulesSettings,
    Settings,
    SinksSettings,
    WebhookSinkSettings,
)
from streamer.daemon import Daemon, install_signal_handlers
from streamer.sim import SimServer

DEMO_SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "BTCUSD_PERP", "ETHUSD_PERP"]
DEMO_BYBIT = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "BTCUSD"]
DEMO_OKX = ["BTC-USDT-SWAP", "ETH-USDT-SWAP", "SOL-USDT-SWAP", "BTC-USD-SWAP"]
DEMO_DERIBIT = ["BTC-PERPETUAL", "ETH-PERPETUAL"]


def parse_hostport(spec: str) -> tuple[str, int]:
    """``HOST:PORT`` -> (host, port); raises ValueError naming the value."""
    host, sep, port = spec.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"--http {spec!r}: expected HOST:PORT, e.g. 127.0.0.1:9464")
    return host or "127.0.0.1", int(port)


def demo_webhook(url: str, env: dict[str, str] | None = None) -> WebhookSinkSettings:
    """``--webhook URL``: a signed webhook sink with the secret from ``STREAMER_WEBHOOK_SECRET``.

    The demo retries at most every 5 s (a real run backs off up to 5 min), so a receiver that comes
    back during a short run gets everything before the run ends. Raises ValueError naming what is wrong
    (never the secret).
    """
    environ = os.environ if env is None else env
    secret = environ.get("STREAMER_WEBHOOK_SECRET", "")
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"--webhook {url!r}: expected an http:// or https:// URL")
    if not secret:
        raise ValueError("--webhook needs the signing secret in STREAMER_WEBHOOK_SECRET (whsec_<base64>)")
    try:
        decode_secret(secret)
    except ValueError as exc:
        raise ValueError(f"STREAMER_WEBHOOK_SECRET: {exc}") from None
    return WebhookSinkSettings(url=url, secret=secret, name="demo", timeout_s=5.0, max_backoff_s=5.0)


def demo_settings(urls: dict[str, str], host: str, port: int, state_dir: str,
                  webhooks: Sequence[WebhookSinkSettings] = ()) -> Settings:
    """Settings pointing at the simulator's URLs, with thresholds scaled to its scripted market."""
    binance = BinanceSettings(
        symbols=list(DEMO_SYMBOLS),
        all_market=True,
        channels=["liquidations", "funding", "ticker"],
        um_ws_url=urls["binance_um_ws"] + "/ws",
        cm_ws_url=urls["binance_cm_ws"] + "/ws",
        um_rest_url=urls["binance_um_rest"],
        cm_rest_url=urls["binance_cm_rest"],
        open_interest_poll_s=5.0,
        instruments_refresh_s=600.0,
    )
    bybit = BybitSettings(
        enabled="bybit_rest" in urls,
        symbols=list(DEMO_BYBIT),
        channels=["liquidations", "funding", "ticker", "options"],
        linear_ws_url=urls.get("bybit_ws_linear", "ws://127.0.0.1:1/"),
        inverse_ws_url=urls.get("bybit_ws_inverse", "ws://127.0.0.1:1/"),
        option_ws_url=urls.get("bybit_ws_option", "ws://127.0.0.1:1/"),
        rest_url=urls.get("bybit_rest", "http://127.0.0.1:1/"),
        instruments_refresh_s=600.0,
    )
    okx = OkxSettings(
        enabled="okx_rest" in urls,
        symbols=list(DEMO_OKX),
        all_market=True,
        channels=["liquidations", "funding", "mark", "open_interest", "options"],
        public_ws_url=urls.get("okx_ws_public", "ws://127.0.0.1:1/"),
        rest_url=urls.get("okx_rest", "http://127.0.0.1:1/"),
        instruments_refresh_s=600.0,
    )
    deribit = DeribitSettings(
        enabled="deribit_ws" in urls,
        symbols=list(DEMO_DERIBIT),
        all_market=True,
        channels=["liquidations", "funding", "ticker", "options"],
        ws_url=urls.get("deribit_ws", "ws://127.0.0.1:1/"),
        rest_url=urls.get("deribit_rest", "http://127.0.0.1:1/"),
        instruments_refresh_s=600.0,
    )
    rules = RulesSettings(
        liquidation_cascade=CascadeSettings(window_s=10.0, min_usd=2_000_000.0, baseline_multiple=5.0,
                                            baseline_window_s=600.0, resolve_ratio=0.5, cooldown_s=120.0),
        extreme_funding=ExtremeFundingSettings(threshold_pct=0.1, resolve_ratio=0.8, cooldown_s=120.0),
        large_liquidation=LargeLiquidationSettings(min_usd=1_000_000.0),
    )
    return Settings(
        http=HttpSettings(host=host, port=port),
        exchanges=ExchangesSettings(binance=binance, bybit=bybit, okx=okx, deribit=deribit),
        rules=rules,
        sinks=SinksSettings(webhooks=list(webhooks)),
        state_dir=state_dir,
    )


def _err(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


async def _progress(daemon: Daemon, started: float, every_s: float = 10.0) -> None:
    await daemon.started.wait()
    _err(f"demo: dashboard on http://{daemon.api.host}:{daemon.api.port}/  metrics on .../metrics  "
         f"(also /readyz, /state/funding, /state/alerts)")
    while True:
        await asyncio.sleep(every_s)
        snap = daemon.snapshot()
        frames = sum(s["frames"] for s in snap["sessions"])
        states = ", ".join(f"{s['session']} {s['state']}" for s in snap["sessions"])
        counts = snap["alerts"]
        firing = sum(v.get("firing", 0) for v in counts.values())
        resolved = sum(v.get("resolved", 0) for v in counts.values())
        _err(f"demo {time.monotonic() - started:4.0f}s: {states}; {frames} frames, "
             f"{snap['bus']['published']} events, alerts {firing} firing / {resolved} resolved")


async def run_demo(duration_s: float = 60.0, http: str = "127.0.0.1:9464", scenario: str = "demo",
                   seed: int = 7, webhook: str | None = None, record: str | None = None) -> int:
    """Run the simulator and the daemon for ``duration_s`` seconds (or until a signal); exit status.

    ``record``: a directory to record the run's raw frames in, for ``streamer replay``."""
    host, port = parse_hostport(http)
    webhooks = [demo_webhook(webhook)] if webhook else []
    if duration_s <= 0:
        raise ValueError(f"--duration {duration_s}: expected seconds > 0")
    try:
        sim = SimServer(seed=seed, scenario=scenario)
    except KeyError as exc:
        raise ValueError(str(exc).strip("'\"")) from None
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="streamer-demo-") as state_dir:
        async with sim:
            _err(f"demo: simulator on {sim.urls['binance_um_rest'].rsplit('/', 2)[0]} "
                 f"(scenario {scenario!r}, seed {seed}); running {duration_s:g} s; alerts follow on stdout")
            settings = demo_settings(sim.urls, host, port, state_dir, webhooks)
            if record:
                settings = msgspec.structs.replace(settings, record=RecordSettings(enabled=True, dir=record))
                _err(f"demo: recording raw frames in {record} (replay: streamer replay {record}/*)")
            if webhooks:
                _err(f"demo: alerts also go to {webhook} (signed, via the outbox in {state_dir})")
            daemon = Daemon(settings)
            stop = asyncio.Event()
            install_signal_handlers(stop)
            timer = asyncio.get_running_loop().call_later(duration_s, stop.set)
            progress = asyncio.create_task(_progress(daemon, started), name="demo:progress")
            try:
                status = await daemon.run(stop)
            finally:
                timer.cancel()
                progress.cancel()
                try:
                    await progress
                except asyncio.CancelledError:
                    pass
    counts = daemon.engine.counts()
    summary = ", ".join(f"{rule} {by.get('firing', 0)}/{by.get('resolved', 0)}" for rule, by in sorted(counts.items()))
    _err(f"demo: done after {time.monotonic() - started:.0f} s; alerts fired/resolved: {summary or 'none'}")
    return status


__all__ = ["demo_settings", "run_demo"]
