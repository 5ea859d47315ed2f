"""Typed settings from YAML plus environment overrides, with errors that name the key, the value and the source.

A config file is YAML; every key is optional (defaults below, documented in
``config/streamer.example.yaml``). Environment variables override the file:
``STREAMER__<SECTION>__<KEY>=value``, path parts separated by double
underscores, values read as YAML scalars (``STREAMER__HTTP__PORT=9000``,
``STREAMER__EXCHANGES__BINANCE__SYMBOLS='[BTCUSDT, ETHUSDT]'``).

Unknown keys are errors (a typo must not silently fall back to a default).
Units are in the key names: ``_s`` seconds, ``_pct`` percent, ``_usd`` US dollars.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import yaml

__all__ = [
    "BinanceSettings",
    "ConfigError",
    "FundingDivergenceSettings",
    "HttpSettings",
    "IvExtremeSettings",
    "OiChangeSettings",
    "RulesSettings",
    "Settings",
    "WebhookSinkSettings",
    "load_settings",
]

ENV_PREFIX = "STREAMER__"


class ConfigError(Exception):
    """A bad configuration value: which key, what value, what was expected, and where it came from."""

    def __init__(self, key: str, value: object, expected: str, source: str) -> None:
        if not key or key.endswith("."):  # an empty key in the document: name it visibly
            key += '""'
        self.key = key
        self.value = _redact_secrets(value, key)
        self.expected = expected
        self.source = source
        super().__init__(f"config error in {source}: {key} = {self.value!r}: expected {expected}")


_SECRET_KEYS = ("secret", "token", "password")
_SECRET_URL_PARTS = ("/services/", "/api/webhooks/")  # Slack and Discord webhook URLs are credentials


def _redact_secrets(value: object, key: str = "") -> object:
    """The value as an error may show it: secrets (keys named secret/token/password, ``whsec_…``
    strings, Slack/Discord webhook URLs) replaced by ``<redacted>``, in nested dicts and lists too."""
    last = key.rsplit(".", 1)[-1].lower()
    if isinstance(value, dict):
        return {k: _redact_secrets(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_secrets(v) for v in value]
    if isinstance(value, str) and (any(p in last for p in _SECRET_KEYS) or value.startswith("whsec_")):
        return "<redacted>"
    if isinstance(value, str) and any(p in value for p in _SECRET_URL_PARTS):
        return value.split("/", 3)[2] + "/<redacted>" if value.count("/") >= 3 else "<redacted>"
    return value


class _Section(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Base of every settings section: unknown keys are errors."""


class HttpSettings(_Section):
    """The HTTP endpoint (/metrics, /healthz, /readyz, /state).

    ``token``: optional bearer token; when set, every endpoint except ``/healthz`` requires
    ``Authorization: Bearer <token>``. When empty, the environment variable ``STREAMER_HTTP_TOKEN`` is
    used; when that is empty too, the API is open (keep it on 127.0.0.1 then). Never logged.
    """

    host: str = "127.0.0.1"
    port: int = 9464
    enabled: bool = True
    token: str = ""


class BinanceSettings(_Section):
    """Binance USDⓈ-M and COIN-M futures.

    ``symbols``: raw Binance symbols (``BTCUSDT``, ``BTCUSD_PERP``) to track per
    symbol (funding, book, open interest, market gauges); ``all_market`` adds the
    venue-wide streams (every liquidation, every mark price).
    """

    enabled: bool = True
    symbols: list[str] = msgspec.field(default_factory=lambda: ["BTCUSDT", "ETHUSDT", "SOLUSDT", "BTCUSD_PERP"])
    all_market: bool = True
    channels: list[Literal["liquidations", "funding", "ticker", "book"]] = msgspec.field(
        default_factory=lambda: ["liquidations", "funding", "ticker"]
    )
    um_ws_url: str = "wss://fstream.binance.com/market/ws"
    cm_ws_url: str = "wss://dstream.binance.com/ws"
    um_rest_url: str = "https://fapi.binance.com"
    cm_rest_url: str = "https://dapi.binance.com"
    open_interest_poll_s: float = 30.0
    instruments_refresh_s: float = 3600.0
    rest_weight_per_min: int = 2400


class BybitSettings(_Section):
    """Bybit v5: linear (USDT/USDC) and inverse contracts; options by base coin.

    ``symbols``: raw Bybit symbols (``BTCUSDT``, ``BTCPERP``, ``BTCUSD``). Bybit has no venue-wide
    liquidation topic: liquidations are subscribed per symbol (``allLiquidation.<SYMBOL>``).
    """

    enabled: bool = False
    symbols: list[str] = msgspec.field(default_factory=lambda: ["BTCUSDT", "ETHUSDT", "SOLUSDT", "BTCUSD"])
    channels: list[Literal["liquidations", "funding", "ticker", "book", "options"]] = msgspec.field(
        default_factory=lambda: ["liquidations", "funding", "ticker"]
    )
    linear_ws_url: str = "wss://stream.bybit.com/v5/public/linear"
    inverse_ws_url: str = "wss://stream.bybit.com/v5/public/inverse"
    option_ws_url: str = "wss://stream.bybit.com/v5/public/option"
    rest_url: str = "https://api.bybit.com"
    instruments_refresh_s: float = 3600.0
    rest_requests_per_s: float = 20.0


class OkxSettings(_Section):
    """OKX v5: swaps, futures and options (instrument ids ``BTC-USDT-SWAP``, ``BTC-USD-SWAP``)."""

    enabled: bool = False
    symbols: list[str] = msgspec.field(default_factory=lambda: ["BTC-USDT-SWAP", "ETH-USDT-SWAP", "BTC-USD-SWAP"])
    all_market: bool = True
    channels: list[Literal["liquidations", "funding", "ticker", "mark", "open_interest", "index", "options"]] = (
        msgspec.field(default_factory=lambda: ["liquidations", "funding", "mark", "open_interest"])
    )
    public_ws_url: str = "wss://ws.okx.com:8443/ws/v5/public"
    rest_url: str = "https://www.okx.com"
    instruments_refresh_s: float = 3600.0
    rest_requests_per_s: float = 10.0


class DeribitSettings(_Section):
    """Deribit v2 (JSON-RPC over WebSocket): perpetuals, futures, options (``BTC-PERPETUAL``, ``BTC-27DEC26``)."""

    enabled: bool = False
    symbols: list[str] = msgspec.field(default_factory=lambda: ["BTC-PERPETUAL", "ETH-PERPETUAL"])
    all_market: bool = True
    channels: list[Literal["liquidations", "funding", "ticker", "options"]] = msgspec.field(
        default_factory=lambda: ["liquidations", "funding", "ticker"]
    )
    ws_url: str = "wss://www.deribit.com/ws/api/v2"
    rest_url: str = "https://www.deribit.com"
    instruments_refresh_s: float = 3600.0
    rest_requests_per_s: float = 10.0


class BitmexSettings(_Section):
    """BitMEX closed on 2026-09-23 04:00 UTC: enabling it only prints that and leaves it out.

    The adapter still reads BitMEX recordings (``streamer normalize --exchange bitmex``).
    """

    enabled: bool = False
    symbols: list[str] = msgspec.field(default_factory=lambda: ["XBTUSD"])


class ExchangesSettings(_Section):
    """One section per venue."""

    binance: BinanceSettings = msgspec.field(default_factory=BinanceSettings)
    bybit: BybitSettings = msgspec.field(default_factory=BybitSettings)
    okx: OkxSettings = msgspec.field(default_factory=OkxSettings)
    deribit: DeribitSettings = msgspec.field(default_factory=DeribitSettings)
    bitmex: BitmexSettings = msgspec.field(default_factory=BitmexSettings)


class CascadeSettings(_Section):
    """``liquidation_cascade``: one-sided liquidation notional over a rolling window."""

    enabled: bool = True
    window_s: float = 60.0
    min_usd: float = 5_000_000.0
    baseline_multiple: float = 5.0
    baseline_window_s: float = 3600.0
    resolve_ratio: float = 0.5
    cooldown_s: float = 300.0


class ExtremeFundingSettings(_Section):
    """``extreme_funding``: |rate_8h| at or above the threshold (percent per 8 h)."""

    enabled: bool = True
    threshold_pct: float = 0.1
    resolve_ratio: float = 0.8
    cooldown_s: float = 300.0


class LargeLiquidationSettings(_Section):
    """``large_liquidation``: one liquidation at or above the USD threshold."""

    enabled: bool = True
    min_usd: float = 1_000_000.0


class OiChangeSettings(_Section):
    """``oi_change``: |open interest change| over ``window_s`` at or above ``threshold_pct`` percent."""

    enabled: bool = True
    window_s: float = 3600.0
    threshold_pct: float = 10.0
    resolve_ratio: float = 0.5
    cooldown_s: float = 900.0


class IvExtremeSettings(_Section):
    """``iv_extreme``: ATM IV of an expiry at or above ``high_pct`` or at or below ``low_pct`` (IV in percent)."""

    enabled: bool = True
    high_pct: float = 100.0
    low_pct: float = 20.0
    resolve_margin_pct: float = 5.0
    cooldown_s: float = 900.0


class FundingDivergenceSettings(_Section):
    """``funding_divergence``: max − min perpetual ``rate_8h`` of one base asset across venues (percent per 8 h)."""

    enabled: bool = True
    threshold_pct: float = 0.05
    resolve_ratio: float = 0.5
    max_age_s: float = 900.0
    cooldown_s: float = 900.0


class RulesSettings(_Section):
    """Alert rules and their thresholds."""

    liquidation_cascade: CascadeSettings = msgspec.field(default_factory=CascadeSettings)
    extreme_funding: ExtremeFundingSettings = msgspec.field(default_factory=ExtremeFundingSettings)
    large_liquidation: LargeLiquidationSettings = msgspec.field(default_factory=LargeLiquidationSettings)
    oi_change: OiChangeSettings = msgspec.field(default_factory=OiChangeSettings)
    iv_extreme: IvExtremeSettings = msgspec.field(default_factory=IvExtremeSettings)
    funding_divergence: FundingDivergenceSettings = msgspec.field(default_factory=FundingDivergenceSettings)


class AlertmanagerSinkSettings(_Section):
    """One Alertmanager (``sinks.alertmanager`` list item): alerts POSTed to ``<url>/api/v2/alerts``.

    ``resend_s``: firing alerts are re-sent this often (each is valid in Alertmanager for 4 x ``resend_s``).
    ``generator_url``: the ``generatorURL`` of every alert ("" for none).
    """

    url: str
    resend_s: Annotated[float, msgspec.Meta(gt=0)] = 60.0
    generator_url: str = ""


class ChatFilterSettings(_Section):
    """Which alerts a chat sink posts: each non-empty list must contain the alert's value."""

    rule: list[str] = msgspec.field(default_factory=list)
    severity: list[Literal["info", "warning", "critical"]] = msgspec.field(default_factory=list)
    exchange: list[str] = msgspec.field(default_factory=list)
    symbol: list[str] = msgspec.field(default_factory=list)


class ChatSinkSettings(_Section):
    """One Slack or Discord incoming webhook (``sinks.chat`` list item); ``url`` is a secret."""

    kind: Literal["slack", "discord"]
    url: str
    filters: ChatFilterSettings = msgspec.field(default_factory=ChatFilterSettings)


class WebhookFilterSettings(_Section):
    """Which alerts a webhook sink takes: each non-empty list must contain the alert's value (empty = all)."""

    rule: list[str] = msgspec.field(default_factory=list)
    severity: list[Literal["info", "warning", "critical"]] = msgspec.field(default_factory=list)
    exchange: list[str] = msgspec.field(default_factory=list)
    symbol: list[str] = msgspec.field(default_factory=list)


class WebhookSinkSettings(_Section):
    """One signed webhook (``sinks.webhooks`` list item), delivered through the durable outbox.

    ``secret``: Standard Webhooks secret ``whsec_<base64>``; when empty, the environment variable
    ``STREAMER_WEBHOOK_SECRET`` is used. Never logged; errors show it redacted.
    ``name``: stable key of the sink in the outbox and the metrics label ``webhook:<name>``; when empty,
    derived from the URL (so reordering the list does not mix up pending deliveries).
    ``timeout_s``: total timeout of one POST; ``max_backoff_s``: cap of the retry delay.
    """

    url: str
    secret: str = ""
    name: str = ""
    filters: WebhookFilterSettings = msgspec.field(default_factory=WebhookFilterSettings)
    timeout_s: float = 10.0
    max_backoff_s: float = 300.0

    @property
    def key(self) -> str:
        """``name``, or ``url-<first 10 hex of sha256(url)>`` when empty."""
        if self.name:
            return self.name
        import hashlib

        return "url-" + hashlib.sha256(self.url.encode()).hexdigest()[:10]

    def __repr__(self) -> str:
        return f"WebhookSinkSettings(url={self.url!r}, name={self.name!r}, secret=<redacted>)"


class SinksSettings(_Section):
    """Where alerts go."""

    stdout: bool = True
    alertmanager: list[AlertmanagerSinkSettings] = msgspec.field(default_factory=list)
    chat: list[ChatSinkSettings] = msgspec.field(default_factory=list)
    webhooks: list[WebhookSinkSettings] = msgspec.field(default_factory=list)


class NatsSettings(_Section):
    """``bus.nats``: the NATS JetStream backend (docs/nats.md).

    ``url`` server; ``stream`` the JetStream stream (created or updated at start, subjects
    ``<subject_prefix>.>``, file storage, ``max_age_s``); ``duplicate_window_s`` how long JetStream
    remembers message ids (redundant ingest and retries are deduplicated within it); ``durable``
    the aggregator's durable consumer name (processes sharing it share the work); ``buffer_size``
    events an ingest process keeps while the server is unreachable (oldest dropped, counted).
    """

    url: str = "nats://127.0.0.1:4222"
    stream: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]+$")] = "STREAMER"
    subject_prefix: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]+$")] = "streamer"
    duplicate_window_s: Annotated[float, msgspec.Meta(gt=0)] = 120.0
    max_age_s: Annotated[float, msgspec.Meta(gt=0)] = 86_400.0
    durable: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]+$")] = "aggregate"
    buffer_size: Annotated[int, msgspec.Meta(ge=1)] = 100_000
    batch: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 256
    ack_wait_s: Annotated[float, msgspec.Meta(gt=0)] = 30.0
    max_ack_pending: Annotated[int, msgspec.Meta(ge=1)] = 20_000
    publish_timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 5.0
    max_backoff_s: Annotated[float, msgspec.Meta(gt=0)] = 5.0


class BusSettings(_Section):
    """The event bus: ``memory`` (in-process) or ``nats`` (JetStream, for ``streamer run --role``)."""

    backend: Literal["memory", "nats"] = "memory"
    consumer_queue_size: int = 10_000
    nats: NatsSettings = msgspec.field(default_factory=NatsSettings)


class RecordSettings(_Section):
    """Recording of raw frames for ``streamer replay`` (``streamer.record``).

    ``dir``: where the hourly ``streamer-YYYYMMDDTHH.jsonl.zst`` files go; ``max_bytes``: the most the
    recordings may take there (the oldest files are deleted first); ``rotate``: ``hour`` (one file per UTC hour).
    """

    enabled: bool = False
    dir: str = "~/.cache/streamer/recordings"
    max_bytes: Annotated[int, msgspec.Meta(gt=0)] = 10 * 1024**3
    rotate: Literal["hour"] = "hour"


class Settings(_Section):
    """Everything the daemon reads."""

    http: HttpSettings = msgspec.field(default_factory=HttpSettings)
    exchanges: ExchangesSettings = msgspec.field(default_factory=ExchangesSettings)
    rules: RulesSettings = msgspec.field(default_factory=RulesSettings)
    sinks: SinksSettings = msgspec.field(default_factory=SinksSettings)
    bus: BusSettings = msgspec.field(default_factory=BusSettings)
    record: RecordSettings = msgspec.field(default_factory=RecordSettings)
    state_dir: str = "~/.cache/streamer"
    log_level: Literal["debug", "info", "warning", "error"] = "info"


# --------------------------------------------------------------------------- loading

_PATH_RE = re.compile(r"`\$((?:\.[A-Za-z0-9_\-]+|\[\d+\])*)`")


def _dig(data: Any, path: list[str]) -> object:
    for part in path:
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return None
    return data


def _error_from_msgspec(exc: msgspec.ValidationError, data: Mapping[str, Any], sources: dict[str, str]) -> ConfigError:
    """Turn msgspec's "Expected `int`, got `str` - at `$.http.port`" into a ConfigError."""
    text = str(exc)
    m = _PATH_RE.search(text)
    path_text = m.group(1) if m else ""
    parts = [p for p in re.split(r"\.|\[|\]", path_text) if p]
    key = ".".join(parts) or "(top level)"
    expected = text.split(" - at ")[0]
    if expected.startswith("Object contains unknown field"):
        field = expected.split("`")[1] if "`" in expected else "?"
        key = ".".join([*parts, field]) if parts else field
        expected = "a known key (see config/streamer.example.yaml); this key does not exist"
        value = _dig(data, [*parts, field])
    else:
        value = _dig(data, parts)
        expected = expected.replace("Expected ", "")
        if expected.startswith("Invalid enum value"):
            expected = "one of the values listed in config/streamer.example.yaml"
    source = sources.get(key) or next((s for k, s in sources.items() if key.startswith(k + ".")), None)
    return ConfigError(key, value, expected, source or sources.get("", "defaults"))


def _env_overrides(env: Mapping[str, str]) -> list[tuple[list[str], Any, str]]:
    out = []
    for name, text in sorted(env.items()):
        if not name.startswith(ENV_PREFIX):
            continue
        path = [p.lower() for p in name[len(ENV_PREFIX) :].split("__") if p]
        if not path:
            continue
        try:
            value = yaml.safe_load(text) if text != "" else ""
        except yaml.YAMLError:
            value = text
        out.append((path, value, f"environment variable {name}"))
    return out


def load_settings(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Read settings from a YAML file (optional) and ``STREAMER__*`` environment variables.

    Raises:
        ConfigError: the file cannot be read or parsed, or a value is invalid.
    """
    env = os.environ if env is None else env
    data: dict[str, Any] = {}
    sources: dict[str, str] = {"": "defaults"}
    if path is not None:
        src = str(path)
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise ConfigError("(file)", src, f"a readable YAML file ({exc.strerror})", src) from None
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            raise ConfigError("(file)", src, f"valid YAML{where}: {getattr(exc, 'problem', exc)}", src) from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError("(top level)", loaded, "a mapping of sections (http:, exchanges:, rules: ...)", src)
        data = loaded
        sources[""] = src
    for parts, value, src in _env_overrides(env):
        node = data
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node[parts[-1]] = value
        sources[".".join(parts)] = src
    try:
        settings = msgspec.convert(data, Settings)
    except msgspec.ValidationError as exc:
        raise _error_from_msgspec(exc, data, sources) from None
    _check_ranges(settings, sources)
    _check_webhooks(settings, sources, env)
    _check_http_token(settings, sources, env)
    return settings


def _check_ranges(settings: Settings, sources: dict[str, str]) -> None:
    def src(key: str) -> str:
        return sources.get(key) or sources.get("", "defaults")

    if not 0 <= settings.http.port <= 65535:
        raise ConfigError("http.port", settings.http.port, "a TCP port 0..65535", src("http.port"))
    b = settings.exchanges.binance
    for key, value in (
        ("exchanges.binance.open_interest_poll_s", b.open_interest_poll_s),
        ("exchanges.binance.instruments_refresh_s", b.instruments_refresh_s),
        ("rules.liquidation_cascade.window_s", settings.rules.liquidation_cascade.window_s),
        ("rules.liquidation_cascade.min_usd", settings.rules.liquidation_cascade.min_usd),
        ("rules.extreme_funding.threshold_pct", settings.rules.extreme_funding.threshold_pct),
        ("rules.large_liquidation.min_usd", settings.rules.large_liquidation.min_usd),
        ("rules.oi_change.window_s", settings.rules.oi_change.window_s),
        ("rules.oi_change.threshold_pct", settings.rules.oi_change.threshold_pct),
        ("rules.iv_extreme.high_pct", settings.rules.iv_extreme.high_pct),
        ("rules.iv_extreme.resolve_margin_pct", settings.rules.iv_extreme.resolve_margin_pct),
        ("rules.funding_divergence.threshold_pct", settings.rules.funding_divergence.threshold_pct),
        ("rules.funding_divergence.max_age_s", settings.rules.funding_divergence.max_age_s),
    ):
        if not value > 0:
            raise ConfigError(key, value, "a number > 0", src(key))
    for key, value in (
        ("rules.liquidation_cascade.resolve_ratio", settings.rules.liquidation_cascade.resolve_ratio),
        ("rules.extreme_funding.resolve_ratio", settings.rules.extreme_funding.resolve_ratio),
        ("rules.oi_change.resolve_ratio", settings.rules.oi_change.resolve_ratio),
        ("rules.funding_divergence.resolve_ratio", settings.rules.funding_divergence.resolve_ratio),
    ):
        if not 0 < value <= 1:
            raise ConfigError(key, value, "a ratio in (0, 1]", src(key))
    iv = settings.rules.iv_extreme
    if not 0 <= iv.low_pct + iv.resolve_margin_pct < iv.high_pct - iv.resolve_margin_pct:
        raise ConfigError("rules.iv_extreme.low_pct", iv.low_pct,
                          "0 <= low_pct, and low_pct + resolve_margin_pct < high_pct - resolve_margin_pct",
                          src("rules.iv_extreme.low_pct"))
    by, ok = settings.exchanges.bybit, settings.exchanges.okx
    for key, value in (
        ("exchanges.bybit.instruments_refresh_s", by.instruments_refresh_s),
        ("exchanges.bybit.rest_requests_per_s", by.rest_requests_per_s),
        ("exchanges.okx.instruments_refresh_s", ok.instruments_refresh_s),
        ("exchanges.okx.rest_requests_per_s", ok.rest_requests_per_s),
    ):
        if not value > 0:
            raise ConfigError(key, value, "a number > 0", src(key))
    for key, url in (
        ("exchanges.binance.um_ws_url", b.um_ws_url),
        ("exchanges.binance.cm_ws_url", b.cm_ws_url),
        ("exchanges.bybit.linear_ws_url", by.linear_ws_url),
        ("exchanges.bybit.inverse_ws_url", by.inverse_ws_url),
        ("exchanges.bybit.option_ws_url", by.option_ws_url),
        ("exchanges.okx.public_ws_url", ok.public_ws_url),
        ("exchanges.deribit.ws_url", settings.exchanges.deribit.ws_url),
    ):
        if not url.startswith(("ws://", "wss://")):
            raise ConfigError(key, url, "a ws:// or wss:// URL", src(key))
    for key, url in (
        ("exchanges.binance.um_rest_url", b.um_rest_url),
        ("exchanges.binance.cm_rest_url", b.cm_rest_url),
        ("exchanges.bybit.rest_url", by.rest_url),
        ("exchanges.okx.rest_url", ok.rest_url),
        ("exchanges.deribit.rest_url", settings.exchanges.deribit.rest_url),
    ):
        if not url.startswith(("http://", "https://")):
            raise ConfigError(key, url, "an http:// or https:// URL", src(key))
    if settings.bus.consumer_queue_size < 1:
        raise ConfigError("bus.consumer_queue_size", settings.bus.consumer_queue_size, "an integer >= 1",
                          src("bus.consumer_queue_size"))


WEBHOOK_SECRET_ENV = "STREAMER_WEBHOOK_SECRET"
HTTP_TOKEN_ENV = "STREAMER_HTTP_TOKEN"


def _check_http_token(settings: Settings, sources: dict[str, str], env: Mapping[str, str]) -> None:
    """Resolve ``http.token`` (config, else ``STREAMER_HTTP_TOKEN``, else none) and validate its form."""
    source = sources.get("http.token") or sources.get("http") or sources.get("", "defaults")
    if not settings.http.token:
        settings.http.token = env.get(HTTP_TOKEN_ENV, "")
        source = f"environment variable {HTTP_TOKEN_ENV}"
    token = settings.http.token
    if token and not re.fullmatch(r"[A-Za-z0-9\-._~+/]+=*", token):
        raise ConfigError("http.token", _redact(token),
                          "a bearer token of letters, digits and -._~+/ (RFC 6750 token68), or empty for none",
                          source)


def _redact(secret: str) -> str:
    """A secret as shown in errors: its form, never its content."""
    if not secret:
        return "<empty>"
    head = "whsec_" if secret.startswith("whsec_") else ""
    return f"{head}<redacted, {len(secret)} chars>"


def _check_webhooks(settings: Settings, sources: dict[str, str], env: Mapping[str, str]) -> None:
    """Resolve each webhook's secret (config, else ``STREAMER_WEBHOOK_SECRET``) and validate the list."""
    import base64
    import binascii

    def src(key: str) -> str:
        parts = key.split(".")
        while parts:
            found = sources.get(".".join(parts))
            if found:
                return found
            parts.pop()
        return sources.get("", "defaults")

    keys: dict[str, int] = {}
    for i, w in enumerate(settings.sinks.webhooks):
        base = f"sinks.webhooks.{i}"
        if not w.url.startswith(("http://", "https://")):
            raise ConfigError(f"{base}.url", w.url, "an http:// or https:// URL", src(f"{base}.url"))
        for name in ("timeout_s", "max_backoff_s"):
            value = getattr(w, name)
            if not value > 0:
                raise ConfigError(f"{base}.{name}", value, "a number > 0", src(f"{base}.{name}"))
        key = f"{base}.secret"
        source = src(key)
        if not w.secret:
            w.secret = env.get(WEBHOOK_SECRET_ENV, "")
            source = f"environment variable {WEBHOOK_SECRET_ENV}"
        expected = (f"a Standard Webhooks secret 'whsec_<base64>' (set it here or in {WEBHOOK_SECRET_ENV}), "
                    "e.g. whsec_ + 24 to 64 random bytes in base64")
        if not w.secret.startswith("whsec_"):
            raise ConfigError(key, _redact(w.secret), expected, source)
        text = w.secret[len("whsec_"):]
        try:
            raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if not raw:
            raise ConfigError(key, _redact(w.secret), expected + "; the part after whsec_ is not valid base64",
                              source)
        if w.key in keys:
            raise ConfigError(f"{base}.name", w.name, f"a name unique among sinks.webhooks (same as item "
                              f"{keys[w.key]})", src(f"{base}.name"))
        keys[w.key] = i
