"""Alert rules: on_event(event, state) -> list[Alert]; hysteresis, cooldown, stable id; pure.

Each rule's class docstring is its exact definition (``docs/alerts.md`` says
the same). Common ground, for every rule:

* **Event time only.** The *clock* of the engine is the largest ``ts`` of the
  market events it has been fed. Windows slide on it and status changes are
  stamped with it (for an event that is not late, that is the event's own
  ``ts``). Nothing here reads the wall clock, so a replay of the same events
  in the same order gives the same alerts, with the same ids, in the same order.
* **One episode fires once and resolves once.** A rule emits exactly one
  ``firing`` and one ``resolved`` alert per episode, both with the same ``id``
  and ``started_at``. Thresholds to resolve are lower than those to fire
  (hysteresis) and, after an episode resolved, a new one for the same key
  cannot open before ``cooldown_s`` of event time have passed (a firing
  condition inside the cooldown is counted as ``suppressed`` and emits nothing;
  the cooldown is at least 1 ms, so an id never repeats).
* **Ids** are ``sha1("rule|exchange|symbol|side|started_at")`` (empty string
  for a null part), first 16 hex digits: deterministic and stable per episode.
* Alert ``value``/``threshold`` are in the rule's unit: USD for liquidation
  rules, a fraction per 8 h for funding rules, a fraction of the earlier OI
  for ``oi_change`` (0.1 = 10 %), an IV fraction for ``iv_extreme`` (1.0 =
  100 %) (config thresholds ending in ``_pct`` are percent and are converted). In a ``resolved`` alert, ``value`` is the
  measurement that fell below the resolve level and ``threshold`` is that level.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterable
from typing import Any, Literal, Protocol

import msgspec

from streamer.aggregate.analytics import FundingSpread, atm_iv, expiry_ms_from_date, funding_spread, reference_price
from streamer.aggregate.state import LiveState, OISample, OpenInterestState
from streamer.aggregate.window import MultiSumWindow, SumWindow
from streamer.model import Alert, Event, Funding, Liquidation, MarketEvent, OpenInterest, OptionTicker, Ticker

__all__ = [
    "CASCADE",
    "EXTREME_FUNDING",
    "FUNDING_DIVERGENCE",
    "IV_EXTREME",
    "LARGE_LIQUIDATION",
    "OI_CHANGE",
    "ExtremeFundingConfig",
    "ExtremeFundingRule",
    "FundingDivergenceConfig",
    "FundingDivergenceRule",
    "IvExtremeConfig",
    "IvExtremeRule",
    "LargeLiquidationConfig",
    "LargeLiquidationRule",
    "LiquidationCascadeConfig",
    "LiquidationCascadeRule",
    "OiChangeConfig",
    "OiChangeRule",
    "Rule",
    "RuleEngine",
    "alert_id",
    "default_rules",
    "format_usd",
    "rules_from_settings",
]

CASCADE = "liquidation_cascade"
LARGE_LIQUIDATION = "large_liquidation"
EXTREME_FUNDING = "extreme_funding"
OI_CHANGE = "oi_change"
IV_EXTREME = "iv_extreme"
FUNDING_DIVERGENCE = "funding_divergence"

Severity = Literal["info", "warning", "critical"]

_BUCKET_MS = 1000


def alert_id(
    rule: str, exchange: str | None, symbol: str | None, side: str | None, started_at: int, nth: int = 1
) -> str:
    """Stable episode id: first 16 hex digits of sha1 of ``rule|exchange|symbol|side|started_at``.

    A null part is the empty string. ``nth`` > 1 appends ``#nth`` to ``started_at``
    (several episodes of one key opening at the same ms).
    """
    started = str(started_at) if nth == 1 else f"{started_at}#{nth}"
    material = f"{rule}|{exchange or ''}|{symbol or ''}|{side or ''}|{started}"
    return hashlib.sha1(material.encode(), usedforsecurity=False).hexdigest()[:16]


def format_usd(value: float) -> str:
    """``$7.2M``, ``$850.0K``, ``$1.2B``, ``$512`` (one human unit, for summaries)."""
    mag = abs(value)
    if mag >= 1e9:
        return f"${value / 1e9:.1f}B"
    if mag >= 1e6:
        return f"${value / 1e6:.1f}M"
    if mag >= 1e3:
        return f"${value / 1e3:.1f}K"
    return f"${value:.0f}"


def _fmt_pct(fraction: float) -> str:
    return f"{fraction * 100:+.4f}%"


class _Config(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of rule configs: unknown keys are an error."""

    def _positive(self, *names: str) -> None:
        for name in names:
            value = getattr(self, name)
            if not value > 0:
                raise ValueError(f"{type(self).__name__}.{name} must be > 0, got {value!r}")

    def _whole_seconds(self, *names: str) -> None:
        for name in names:
            value = getattr(self, name)
            if value != int(value):
                raise ValueError(f"{type(self).__name__}.{name} must be whole seconds, got {value!r}")

    def _ratio(self, name: str) -> None:
        value = getattr(self, name)
        if not 0 < value < 1:
            raise ValueError(f"{type(self).__name__}.{name} must be in (0, 1), got {value!r}")


# --------------------------------------------------------------------------- protocol


class Rule(Protocol):
    """One alert rule. Pure: its output depends only on the events fed, in order."""

    @property
    def name(self) -> str:
        """The ``rule`` field of its alerts."""
        ...

    def on_event(self, event: Event, state: LiveState) -> list[Alert]:
        """Feed one market event (every one, in order); returns the alerts it raises."""
        ...

    def tick(self, now_ms: int, state: LiveState) -> list[Alert]:
        """Re-evaluate open episodes at event time ``now_ms``; returns resolutions."""
        ...

    def active(self) -> list[Alert]:
        """The ``firing`` alert of every open episode."""
        ...

    def stats(self) -> dict[str, int]:
        """Rule-specific counters."""
        ...


class _Clock:
    """Event-time clock of a rule: first and largest ``ts`` seen."""

    def __init__(self) -> None:
        self.origin: int | None = None
        self.now: int | None = None

    def observe(self, ts: int) -> int:
        if self.origin is None:
            self.origin = ts
        if self.now is None or ts > self.now:
            self.now = ts
        return self.now


# --------------------------------------------------------------------------- cascade


class _Episodes:
    """What every episode rule shares: ``active()`` is the firing alert of each open episode, ``stats()``
    the rule's counters plus ``open`` (episodes open now)."""

    _open: dict[Any, Any]
    _counts: dict[str, int]

    def active(self) -> list[Alert]:
        """Firing alerts of the open episodes."""
        return [ep.alert for ep in self._open.values()]

    def stats(self) -> dict[str, int]:
        """The rule's counters (its class docstring) and ``open``."""
        return {**self._counts, "open": len(self._open)}


class LiquidationCascadeConfig(_Config, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Thresholds of :class:`LiquidationCascadeRule`.

    Attributes:
        window_s: rolling window, seconds (whole seconds).
        min_usd: absolute floor of window notional, USD.
        baseline_multiple: window notional must also reach this × the baseline.
        baseline_window_s: lookback of the baseline before the current window, seconds (whole).
        resolve_ratio: resolves below ``resolve_ratio × min_usd``.
        cooldown_s: after resolution, no new episode for the key for this long.
        critical_multiple: severity ``critical`` when firing at ≥ this × ``min_usd``.
    """

    window_s: float = 60.0
    min_usd: float = 5_000_000.0
    baseline_multiple: float = 5.0
    baseline_window_s: float = 3600.0
    resolve_ratio: float = 0.5
    cooldown_s: float = 300.0
    critical_multiple: float = 3.0

    def __post_init__(self) -> None:
        self._positive("window_s", "min_usd", "baseline_multiple", "baseline_window_s", "critical_multiple")
        self._whole_seconds("window_s", "baseline_window_s")
        self._ratio("resolve_ratio")
        if self.cooldown_s < 0:
            raise ValueError(f"LiquidationCascadeConfig.cooldown_s must be >= 0, got {self.cooldown_s!r}")


class _SideWindows:
    """The key's window ``W`` and ``W + L`` (window plus baseline lookback), sharing their buckets."""

    __slots__ = ("_long_ms", "_window_ms", "both", "venues")

    def __init__(self, window_ms: int, baseline_ms: int) -> None:
        self._window_ms = window_ms
        self._long_ms = window_ms + baseline_ms
        self.both = MultiSumWindow((window_ms, window_ms + baseline_ms), _BUCKET_MS)
        self.venues: dict[str, SumWindow] = {}

    def current(self, now_ms: int) -> float:
        """Notional in the window at ``now_ms``."""
        return self.both.totals(self._window_ms, now_ms)[0]

    def current_totals(self, now_ms: int) -> tuple[float, int, int]:
        """``(notional, count, unsized)`` in the window at ``now_ms``."""
        return self.both.totals(self._window_ms, now_ms)

    def long(self, now_ms: int) -> float:
        """Notional in the window and its lookback at ``now_ms``."""
        return self.both.totals(self._long_ms, now_ms)[0]


class _CascadeEpisode:
    __slots__ = ("alert", "count", "peak", "venues")

    def __init__(self, alert: Alert, peak: float, venues: dict[str, float], count: int) -> None:
        self.alert = alert
        self.peak = peak
        self.venues = venues  # notional per venue over the episode, USD
        self.count = count


class LiquidationCascadeRule(_Episodes):
    """``liquidation_cascade``: one-sided liquidation notional of a symbol, across venues.

    Key: ``(symbol, side)``, ``symbol`` the unified symbol (every venue's
    liquidations of ``BTC-USDT-PERP`` add up; one episode per key whatever the
    number of venues), ``side`` the liquidated position. Alerts carry
    ``exchange`` null.

    Let ``W`` = ``window_s``, ``L`` = ``baseline_window_s``, ``t`` the engine clock.

    * ``N(t)``: sum of ``value_usd`` of the key's liquidations in the window
      at ``t``, in 1 s buckets: with ``s = t // 1000``, every ts in
      ``[(s - W + 1)·1000, (s + 1)·1000)``; its start is ``ws = (s - W + 1)·1000``.
      Liquidations with ``value_usd`` null count in ``count`` (and
      ``unsized``), not in ``N``.
    * Baseline ``B(t)``: the average notional per ``W`` seconds over the
      lookback ``[ws - L·1000, ws)`` just before the window, scaled to the part
      of it the engine has seen: with ``o`` the start of the second of the
      first event fed to the engine (any type), ``covered = ws - max(o, ws -
      L·1000)`` ms and ``B = (notional in the lookback) × W·1000 / covered``.
      While ``covered < W·1000`` there is no baseline (null).
    * Threshold ``T(t) = max(min_usd, baseline_multiple × B(t))``, or
      ``min_usd`` alone while ``B`` is null.

    **Fires** when, evaluated at a sized liquidation of the key, ``N(t) ≥
    T(t)``, no episode of the key is open, and the key is not cooling down.
    ``started_at`` = ``ts`` = ``t``; ``value`` = ``N(t)``; ``threshold`` =
    ``T(t)``. Severity ``critical`` when ``N(t) ≥ critical_multiple ×
    min_usd``, else ``warning`` (the resolved alert repeats it).

    **Resolves** at the first event time ``t`` (any event, any symbol: the
    engine ticks open episodes at the first event of every second, which is
    the same as on every event, since ``N`` only falls at bucket boundaries) where ``N(t) < resolve_ratio ×
    min_usd``. A dip below the threshold but not below that level keeps the
    episode open. ``value`` = ``N(t)``, ``threshold`` = ``resolve_ratio ×
    min_usd``.

    **Cooldown**: for ``cooldown_s`` after the resolution time, a firing
    condition on the key opens nothing (counted ``suppressed``); the next
    episode after that has a new ``started_at``, hence a new id.
    """

    name = CASCADE
    events: tuple[type, ...] = (Liquidation,)  # the only events its on_event reads (engine routing)

    def __init__(self, config: LiquidationCascadeConfig | None = None) -> None:
        self.config = cfg = config or LiquidationCascadeConfig()
        self._window_s = int(cfg.window_s)
        self._window_ms = self._window_s * 1000
        self._baseline_ms = int(cfg.baseline_window_s) * 1000
        # At least 1 ms: an episode never reopens in the ms it resolved (its id would repeat).
        self._cooldown_ms = max(1, round(cfg.cooldown_s * 1000))
        self._resolve_usd = cfg.resolve_ratio * cfg.min_usd
        self._clock = _Clock()
        self._keys: dict[tuple[str, str], _SideWindows] = {}
        self._open: dict[tuple[str, str], _CascadeEpisode] = {}
        self._resolved_at: dict[tuple[str, str], int] = {}
        self._counts = {"liquidations": 0, "unsized": 0, "no_symbol": 0, "suppressed": 0}

    # ------------------------------------------------------------------ numbers

    def baseline(self, symbol: str, side: str, now_ms: int) -> float | None:
        """``B(t)``, USD per window (see the class docstring); None without enough history."""
        sides = self._keys.get((symbol, side))
        origin = self._clock.origin
        if origin is None:
            return None
        window_start = (now_ms // _BUCKET_MS - self._window_s + 1) * _BUCKET_MS
        lookback_start = max((origin // _BUCKET_MS) * _BUCKET_MS, window_start - self._baseline_ms)
        covered = window_start - lookback_start
        if covered < self._window_ms:
            return None
        if sides is None:
            return 0.0
        lookback = max(0.0, sides.long(now_ms) - sides.current(now_ms))
        return lookback * self._window_ms / covered

    def threshold(self, symbol: str, side: str, now_ms: int) -> tuple[float, float | None]:
        """``(T(t), B(t))``."""
        base = self.baseline(symbol, side, now_ms)
        if base is None:
            return self.config.min_usd, None
        return max(self.config.min_usd, self.config.baseline_multiple * base), base

    def _venue_totals(self, sides: _SideWindows, now_ms: int) -> dict[str, float]:
        out = {}
        for exchange in sorted(sides.venues):
            total, count, _ = sides.venues[exchange].totals(now_ms)
            if count:
                out[exchange] = total
        return out

    # ------------------------------------------------------------------ rule

    def on_event(self, event: Event, state: LiveState) -> list[Alert]:
        """Add a liquidation to its key's windows and fire if the definition says so."""
        if not isinstance(event, MarketEvent):
            return []
        now = self._clock.observe(event.ts)
        if not isinstance(event, Liquidation):
            return []
        if event.symbol is None:
            self._counts["no_symbol"] += 1
            return []
        self._counts["liquidations"] += 1
        key = (event.symbol, event.side)
        sides = self._keys.get(key)
        if sides is None:
            sides = self._keys[key] = _SideWindows(self._window_ms, self._baseline_ms)
        venue = sides.venues.get(event.exchange)
        if venue is None:
            venue = sides.venues[event.exchange] = SumWindow(self._window_ms, _BUCKET_MS)
        value = event.value_usd
        if value is None:
            self._counts["unsized"] += 1
        sides.both.add(event.ts, value)
        venue.add(event.ts, value)
        episode = self._open.get(key)
        if episode is not None:
            episode.count += 1
            if value is not None:
                episode.venues[event.exchange] = episode.venues.get(event.exchange, 0.0) + value
                episode.peak = max(episode.peak, sides.current(now))
            return []
        if value is None:
            return []  # cannot raise the notional
        notional = sides.current(now)
        if notional < self.config.min_usd:
            return []  # below the floor, so below T(t) = max(floor, multiple × B(t)) too
        threshold, base = self.threshold(event.symbol, event.side, now)
        if notional < threshold:
            return []
        resolved_at = self._resolved_at.get(key)
        if resolved_at is not None and now < resolved_at + self._cooldown_ms:
            self._counts["suppressed"] += 1
            return []
        return [self._fire(key, sides, now, notional, threshold, base)]

    def _fire(
        self,
        key: tuple[str, str],
        sides: _SideWindows,
        now: int,
        notional: float,
        threshold: float,
        base: float | None,
    ) -> Alert:
        cfg = self.config
        symbol, side = key
        _, count, unsized = sides.current_totals(now)
        venues = self._venue_totals(sides, now)
        severity: Severity = "critical" if notional >= cfg.critical_multiple * cfg.min_usd else "warning"
        if base is not None and threshold > cfg.min_usd:
            why = f"threshold {format_usd(threshold)} = {cfg.baseline_multiple:g}× baseline {format_usd(base)}"
        else:
            why = f"floor {format_usd(cfg.min_usd)}"
        alert = Alert(
            id=alert_id(CASCADE, None, symbol, side, now),
            rule=CASCADE,
            status="firing",
            severity=severity,
            exchange=None,
            symbol=symbol,
            value=notional,
            threshold=threshold,
            window_s=float(cfg.window_s),
            started_at=now,
            ts=now,
            summary=f"{symbol}: {format_usd(notional)} of {side}s liquidated in {self._window_s}s ({why})",
            details={
                "side": side,
                "venues": venues,
                "count": count,
                "unsized": unsized,
                "baseline_usd": base,
                "floor_usd": cfg.min_usd,
                "threshold_usd": threshold,
                "resolve_below_usd": self._resolve_usd,
                "window_s": cfg.window_s,
                "baseline_window_s": cfg.baseline_window_s,
            },
        )
        self._open[key] = _CascadeEpisode(alert, notional, dict(venues), count)
        return alert

    def tick(self, now_ms: int, state: LiveState) -> list[Alert]:
        """Resolve every open episode whose window notional fell below the resolve level."""
        now = self._clock.observe(now_ms)
        if not self._open:
            return []
        out: list[Alert] = []
        for key, episode in list(self._open.items()):
            sides = self._keys[key]
            notional = sides.current(now)
            if notional >= self._resolve_usd:
                continue
            del self._open[key]
            self._resolved_at[key] = now
            out.append(self._resolve(key, episode, now, notional))
        return out

    def _resolve(self, key: tuple[str, str], episode: _CascadeEpisode, now: int, notional: float) -> Alert:
        cfg = self.config
        symbol, side = key
        fired = episode.alert
        duration_s = (now - fired.started_at) / 1000
        total = sum(episode.venues.values())
        return msgspec.structs.replace(
            fired,
            status="resolved",
            value=notional,
            threshold=self._resolve_usd,
            ts=now,
            summary=(
                f"{symbol}: {side} liquidation cascade over, {format_usd(notional)} in {self._window_s}s "
                f"(< {format_usd(self._resolve_usd)}); peak {format_usd(episode.peak)}, "
                f"{format_usd(total)} over {duration_s:.0f}s"
            ),
            details={
                "side": side,
                "peak_usd": episode.peak,
                "episode_notional_usd": total,
                "episode_venues": dict(sorted(episode.venues.items())),
                "episode_count": episode.count,
                "duration_s": duration_s,
                "floor_usd": cfg.min_usd,
                "resolve_below_usd": self._resolve_usd,
                "window_s": cfg.window_s,
            },
        )




# --------------------------------------------------------------------------- extreme funding


class ExtremeFundingConfig(_Config, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Thresholds of :class:`ExtremeFundingRule`.

    Attributes:
        threshold_pct: |rate_8h| threshold in PERCENT per 8 h (0.1 = 0.1 % = 0.001).
        resolve_ratio: resolves below ``resolve_ratio × threshold``.
        cooldown_s: after resolution, no new episode for the key for this long.
        critical_multiple: severity ``critical`` when firing at ≥ this × threshold.
    """

    threshold_pct: float = 0.1
    resolve_ratio: float = 0.8
    cooldown_s: float = 300.0
    critical_multiple: float = 3.0

    def __post_init__(self) -> None:
        self._positive("threshold_pct", "critical_multiple")
        self._ratio("resolve_ratio")
        if self.cooldown_s < 0:
            raise ValueError(f"ExtremeFundingConfig.cooldown_s must be >= 0, got {self.cooldown_s!r}")


class _FundingEpisode:
    __slots__ = ("alert", "peak")

    def __init__(self, alert: Alert, peak: float) -> None:
        self.alert = alert
        self.peak = peak  # signed rate_8h with the largest magnitude


def _direction(rate_8h: float) -> str:
    return "longs_pay_shorts" if rate_8h >= 0 else "shorts_pay_longs"


class ExtremeFundingRule(_Episodes):
    """``extreme_funding``: the 8-hour-equivalent funding rate of one venue's symbol is extreme.

    Key: ``(exchange, symbol)``. Measured value: ``|rate_8h|`` of each funding
    event (a fraction per 8 h). ``θ`` = ``threshold_pct / 100``.

    **Fires** at a funding event with ``|rate_8h| ≥ θ`` when no episode of
    the key is open and the key is not cooling down. ``value`` =
    ``|rate_8h|``, ``threshold`` = ``θ``; the signed rate and who pays are in
    ``details``. Severity ``critical`` when ``|rate_8h| ≥ critical_multiple ×
    θ``, else ``warning``.

    **Resolves** at the first funding event of the key with ``|rate_8h| <
    resolve_ratio × θ`` (hysteresis: a value between the two levels changes
    nothing; a sign flip that stays extreme is the same episode). ``value`` =
    ``|rate_8h|``, ``threshold`` = ``resolve_ratio × θ``.

    **Cooldown** as for every rule (``cooldown_s``, default 300 s).

    Events with ``rate_8h`` null (interval unknown) never fire nor resolve;
    they are counted ``rate_8h_null``. Status changes are stamped with the
    engine clock.
    """

    name = EXTREME_FUNDING
    events: tuple[type, ...] = (Funding,)  # the only events its on_event reads (engine routing)

    def __init__(self, config: ExtremeFundingConfig | None = None) -> None:
        self.config = cfg = config or ExtremeFundingConfig()
        self._threshold = cfg.threshold_pct / 100.0
        self._resolve = self._threshold * cfg.resolve_ratio
        # At least 1 ms: an episode never reopens in the ms it resolved (its id would repeat).
        self._cooldown_ms = max(1, round(cfg.cooldown_s * 1000))
        self._clock = _Clock()
        self._open: dict[tuple[str, str], _FundingEpisode] = {}
        self._resolved_at: dict[tuple[str, str], int] = {}
        self._counts = {"events": 0, "rate_8h_null": 0, "no_symbol": 0, "suppressed": 0}

    def on_event(self, event: Event, state: LiveState) -> list[Alert]:
        """Evaluate one funding event (see the class docstring)."""
        if not isinstance(event, MarketEvent):
            return []
        now = self._clock.observe(event.ts)
        if not isinstance(event, Funding):
            return []
        if event.symbol is None:
            self._counts["no_symbol"] += 1
            return []
        self._counts["events"] += 1
        rate = event.rate_8h
        if rate is None:
            self._counts["rate_8h_null"] += 1
            return []
        key = (event.exchange, event.symbol)
        magnitude = abs(rate)
        episode = self._open.get(key)
        if episode is not None:
            if magnitude < self._resolve:
                del self._open[key]
                self._resolved_at[key] = now
                return [self._resolved(episode, event, rate, now)]
            if magnitude > abs(episode.peak):
                episode.peak = rate
            return []
        if magnitude < self._threshold:
            return []
        resolved_at = self._resolved_at.get(key)
        if resolved_at is not None and now < resolved_at + self._cooldown_ms:
            self._counts["suppressed"] += 1
            return []
        alert = self._firing(event, event.symbol, rate, now, state)
        self._open[key] = _FundingEpisode(alert, rate)
        return [alert]

    def _firing(self, event: Funding, symbol: str, rate: float, now: int, state: LiveState) -> Alert:
        cfg = self.config
        magnitude = abs(rate)
        severity: Severity = "critical" if magnitude >= cfg.critical_multiple * self._threshold else "warning"
        avg = state.funding.avg_rate_8h(event.exchange, symbol, now)
        direction = _direction(rate)
        annual = f", {event.annualized * 100:+.1f}% annualized" if event.annualized is not None else ""
        return Alert(
            id=alert_id(EXTREME_FUNDING, event.exchange, symbol, None, now),
            rule=EXTREME_FUNDING,
            status="firing",
            severity=severity,
            exchange=event.exchange,
            symbol=symbol,
            value=magnitude,
            threshold=self._threshold,
            window_s=0.0,
            started_at=now,
            ts=now,
            summary=(
                f"{event.exchange} {symbol}: funding {_fmt_pct(rate)} per 8h "
                f"(|rate| ≥ {self._threshold * 100:.4f}%){annual}; {direction.replace('_', ' ')}"
            ),
            details={
                "rate_8h": rate,
                "rate": event.rate,
                "interval_h": event.interval_h,
                "annualized": event.annualized,
                "predicted_rate": event.predicted_rate,
                "next_funding_ts": event.next_funding_ts,
                "direction": direction,
                "avg_rate_8h_24h": avg,
                "threshold_pct": cfg.threshold_pct,
                "resolve_below": self._resolve,
            },
        )

    def _resolved(self, episode: _FundingEpisode, event: Funding, rate: float, now: int) -> Alert:
        fired = episode.alert
        return msgspec.structs.replace(
            fired,
            status="resolved",
            value=abs(rate),
            threshold=self._resolve,
            ts=now,
            summary=(
                f"{event.exchange} {fired.symbol}: funding back to {_fmt_pct(rate)} per 8h "
                f"(|rate| < {self._resolve * 100:.4f}%); peak {_fmt_pct(episode.peak)}"
            ),
            details={
                "rate_8h": rate,
                "peak_rate_8h": episode.peak,
                "duration_s": (now - fired.started_at) / 1000,
                "threshold_pct": self.config.threshold_pct,
                "resolve_below": self._resolve,
            },
        )

    def tick(self, now_ms: int, state: LiveState) -> list[Alert]:
        """Funding episodes resolve on their own events only; this just moves the clock."""
        self._clock.observe(now_ms)
        return []




# --------------------------------------------------------------------------- large liquidation


class LargeLiquidationConfig(_Config, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Thresholds of :class:`LargeLiquidationRule`.

    Attributes:
        min_usd: a single liquidation at or above this notional alerts, USD.
        critical_usd: severity ``critical`` at or above this notional, USD.
    """

    min_usd: float = 1_000_000.0
    critical_usd: float = 10_000_000.0

    def __post_init__(self) -> None:
        self._positive("min_usd", "critical_usd")


class LargeLiquidationRule:
    """``large_liquidation``: one liquidation with ``value_usd ≥ min_usd``; a point alert.

    Each qualifying liquidation is its own episode and emits two alerts at
    once, in this order: ``firing`` then ``resolved``, with the same ``id``,
    ``started_at`` = ``ts`` = the liquidation's own ``ts``, ``window_s`` 0,
    ``value`` = ``value_usd`` and ``threshold`` = ``min_usd`` in both. So it
    fires once and resolves once like every other rule, and a consumer that
    tracks open alerts never keeps one open. No hysteresis or cooldown
    (every large liquidation is a fact worth its line).

    Key ``(exchange, symbol, side)``; ``exchange`` is set. Severity
    ``critical`` at ``value_usd ≥ critical_usd``, else ``warning``. A
    liquidation with ``value_usd`` null cannot qualify (counted ``unsized``).
    When several qualifying liquidations of one key share a ``ts``, the
    second one's id material gets ``#2`` appended to ``started_at``, and so on
    (deterministic in feed order).
    """

    name = LARGE_LIQUIDATION
    events: tuple[type, ...] = (Liquidation,)  # the only events its on_event reads (engine routing)

    def __init__(self, config: LargeLiquidationConfig | None = None) -> None:
        self.config = config or LargeLiquidationConfig()
        self._last: dict[tuple[str, str | None, str], tuple[int, int]] = {}
        self._counts = {"liquidations": 0, "unsized": 0, "alerts": 0}

    def on_event(self, event: Event, state: LiveState) -> list[Alert]:
        """Alert on one large liquidation (see the class docstring)."""
        if not isinstance(event, Liquidation):
            return []
        self._counts["liquidations"] += 1
        value = event.value_usd
        if value is None:
            self._counts["unsized"] += 1
            return []
        cfg = self.config
        if value < cfg.min_usd:
            return []
        self._counts["alerts"] += 1
        key = (event.exchange, event.symbol, event.side)
        last = self._last.get(key)
        nth = last[1] + 1 if last is not None and last[0] == event.ts else 1
        self._last[key] = (event.ts, nth)
        severity: Severity = "critical" if value >= cfg.critical_usd else "warning"
        where = f" at {event.price:,.2f}" if event.price is not None else ""
        firing = Alert(
            id=alert_id(LARGE_LIQUIDATION, event.exchange, event.symbol, event.side, event.ts, nth),
            rule=LARGE_LIQUIDATION,
            status="firing",
            severity=severity,
            exchange=event.exchange,
            symbol=event.symbol,
            value=value,
            threshold=cfg.min_usd,
            window_s=0.0,
            started_at=event.ts,
            ts=event.ts,
            summary=(
                f"{event.exchange} {event.symbol or event.raw_symbol}: {format_usd(value)} {event.side} "
                f"liquidated{where} (≥ {format_usd(cfg.min_usd)})"
            ),
            details={
                "side": event.side,
                "price": event.price,
                "qty": event.qty,
                "raw_symbol": event.raw_symbol,
                "recv_ts": event.recv_ts,
            },
        )
        return [firing, msgspec.structs.replace(firing, status="resolved")]

    def tick(self, now_ms: int, state: LiveState) -> list[Alert]:
        """Point alerts resolve at once; nothing to do."""
        return []

    def active(self) -> list[Alert]:
        """Never any open episode."""
        return []

    def stats(self) -> dict[str, int]:
        """liquidations, unsized, alerts (episodes)."""
        return dict(self._counts)


# --------------------------------------------------------------------------- open interest change


class OiChangeConfig(_Config, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Thresholds of :class:`OiChangeRule`.

    Attributes:
        window_s: look-back of the change, seconds (whole seconds).
        threshold_pct: |change| in PERCENT of the open interest ``window_s`` ago (10 = 10 %).
        resolve_ratio: resolves below ``resolve_ratio × threshold_pct``.
        cooldown_s: after resolution, no new episode for the key for this long.
        critical_multiple: severity ``critical`` when firing at ≥ this × threshold.
    """

    window_s: float = 3600.0
    threshold_pct: float = 10.0
    resolve_ratio: float = 0.5
    cooldown_s: float = 900.0
    critical_multiple: float = 2.0

    def __post_init__(self) -> None:
        self._positive("window_s", "threshold_pct", "critical_multiple")
        self._whole_seconds("window_s")
        self._ratio("resolve_ratio")
        if self.cooldown_s < 0:
            raise ValueError(f"OiChangeConfig.cooldown_s must be >= 0, got {self.cooldown_s!r}")


class _OiEpisode:
    __slots__ = ("alert", "peak", "unit")

    def __init__(self, alert: Alert, peak: float, unit: str) -> None:
        self.alert = alert
        self.peak = peak  # signed change_pct with the largest magnitude
        self.unit = unit  # "usd" or "base": the unit the episode is measured in


class OiChangeRule(_Episodes):
    """``oi_change``: the open interest of one venue's symbol moved by ``threshold_pct`` over ``window_s``.

    Key: ``(exchange, symbol)``. Inputs: ``open_interest`` events and
    ``ticker`` events that carry ``open_interest``/``open_interest_usd``.
    Measured value at such an event: ``C = (oi_now − oi_then) / oi_then × 100``,
    percent, as computed by ``OpenInterestState.change_pct``: ``oi_now`` is the
    key's latest observation (largest ``ts``) and ``oi_then`` the newest kept
    sample with ``oi_now.ts − W − W/12 ≤ ts ≤ oi_now.ts − W`` (``W`` =
    ``window_s``; history thinned to one sample per ``W/120``). The rule reads
    ``state.open_interest`` when it tracks ``W`` as a horizon (the default
    ``LiveState`` tracks 3600, 86 400 and 604 800 s); otherwise it feeds a
    private ``OpenInterestState`` with horizon ``W`` from the same events.
    **Unit**: ``C`` of USD open interest when known, else of base units
    (``details.unit``: ``usd`` or ``base``); an open episode keeps the unit
    it fired in (an event where that change is null changes nothing). ``C``
    is null (nothing happens) until the history covers ``W``.

    **Fires** at such an event when ``|C| ≥ threshold_pct``, no episode of the
    key is open and the key is not cooling down. ``value`` = ``|C| / 100``,
    ``threshold`` = ``threshold_pct / 100`` (fractions: 0.1 = 10 %);
    ``window_s`` = ``W``. Severity ``critical`` when ``|C| ≥
    critical_multiple × threshold_pct``, else ``warning``.

    **Resolves** at the first such event of the key with ``|C| <
    resolve_ratio × threshold_pct`` (hysteresis: a value between the two
    levels changes nothing; a reversal that stays beyond the threshold is
    the same episode). ``value`` = ``|C| / 100``, ``threshold`` = the resolve
    level as a fraction. ``C`` only changes when the key has a new
    observation, so ``tick`` just moves the clock (correct whether the engine
    ticks on every event or once per second).

    **Cooldown** as for every rule (``cooldown_s``, default 900 s). Status
    changes are stamped with the engine clock.
    """

    name = OI_CHANGE
    events: tuple[type, ...] = (OpenInterest, Ticker)  # the only events its on_event reads (engine routing)

    def __init__(self, config: OiChangeConfig | None = None) -> None:
        self.config = cfg = config or OiChangeConfig()
        self._window_s = int(cfg.window_s)
        self._threshold = cfg.threshold_pct  # percent
        self._resolve = cfg.resolve_ratio * cfg.threshold_pct  # percent
        # At least 1 ms: an episode never reopens in the ms it resolved (its id would repeat).
        self._cooldown_ms = max(1, round(cfg.cooldown_s * 1000))
        self._clock = _Clock()
        self._own: OpenInterestState | None = None  # only when the live state does not track window_s
        self._open: dict[tuple[str, str], _OiEpisode] = {}
        self._resolved_at: dict[tuple[str, str], int] = {}
        self._counts = {"events": 0, "no_change": 0, "no_symbol": 0, "suppressed": 0, "own_history": 0}

    def _history(self, event: OpenInterest | Ticker, state: LiveState) -> OpenInterestState:
        if self._window_s in state.open_interest.horizons_s:
            return state.open_interest
        if self._own is None:
            self._own = OpenInterestState((self._window_s,))
        self._own.on_event(event)
        self._counts["own_history"] += 1
        return self._own

    def on_event(self, event: Event, state: LiveState) -> list[Alert]:
        """Evaluate the key of one OI-carrying event (see the class docstring)."""
        if not isinstance(event, MarketEvent):
            return []
        now = self._clock.observe(event.ts)
        if isinstance(event, OpenInterest):
            if event.oi_base is None and event.oi_usd is None:
                return []
        elif isinstance(event, Ticker):
            if event.open_interest is None and event.open_interest_usd is None:
                return []
        else:
            return []
        if event.symbol is None:
            self._counts["no_symbol"] += 1
            return []
        self._counts["events"] += 1
        history = self._history(event, state)
        key = (event.exchange, event.symbol)
        base_pct, usd_pct = history.change_pct(event.exchange, event.symbol, self._window_s)
        latest = history.latest(event.exchange, event.symbol)
        episode = self._open.get(key)
        if episode is not None:
            change = usd_pct if episode.unit == "usd" else base_pct
            if change is None:
                self._counts["no_change"] += 1
                return []
            if abs(change) < self._resolve:
                del self._open[key]
                self._resolved_at[key] = now
                return [self._resolved(episode, change, latest, now)]
            if abs(change) > abs(episode.peak):
                episode.peak = change
            return []
        unit = "usd" if usd_pct is not None else "base"
        change = usd_pct if usd_pct is not None else base_pct
        if change is None or latest is None:
            self._counts["no_change"] += 1
            return []
        if abs(change) < self._threshold:
            return []
        resolved_at = self._resolved_at.get(key)
        if resolved_at is not None and now < resolved_at + self._cooldown_ms:
            self._counts["suppressed"] += 1
            return []
        alert = self._firing(key, change, unit, latest, now)
        self._open[key] = _OiEpisode(alert, change, unit)
        return [alert]

    def _oi_fields(self, change: float, unit: str, latest: OISample | None) -> dict[str, Any]:
        oi_now = None if latest is None else (latest.oi_usd if unit == "usd" else latest.oi_base)
        # oi_then from the change itself (one implementation of the look-up: OpenInterestState).
        oi_then = None if oi_now is None or change == -100.0 else oi_now / (1.0 + change / 100.0)
        return {"unit": unit, "oi_now": oi_now, "oi_then": oi_then, "oi_now_ts": None if latest is None else latest.ts}

    def _firing(self, key: tuple[str, str], change: float, unit: str, latest: OISample, now: int) -> Alert:
        cfg = self.config
        exchange, symbol = key
        magnitude = abs(change)
        severity: Severity = "critical" if magnitude >= cfg.critical_multiple * self._threshold else "warning"
        direction = "increase" if change > 0 else "decrease"
        fields = self._oi_fields(change, unit, latest)
        if unit == "usd":
            amounts = f"{format_usd(fields['oi_then'] or 0.0)} → {format_usd(fields['oi_now'] or 0.0)}"
        else:
            amounts = f"{fields['oi_then'] or 0.0:,.4g} → {fields['oi_now'] or 0.0:,.4g} base units"
        return Alert(
            id=alert_id(OI_CHANGE, exchange, symbol, None, now),
            rule=OI_CHANGE,
            status="firing",
            severity=severity,
            exchange=exchange,
            symbol=symbol,
            value=magnitude / 100.0,
            threshold=self._threshold / 100.0,
            window_s=float(self._window_s),
            started_at=now,
            ts=now,
            summary=(
                f"{exchange} {symbol}: open interest {change:+.1f}% in {_fmt_span(self._window_s)} "
                f"({amounts}; |change| ≥ {self._threshold:g}%)"
            ),
            details={
                **fields,
                "change_pct": change,
                "direction": direction,
                "window_s": cfg.window_s,
                "threshold_pct": cfg.threshold_pct,
                "resolve_below_pct": self._resolve,
            },
        )

    def _resolved(self, episode: _OiEpisode, change: float, latest: OISample | None, now: int) -> Alert:
        fired = episode.alert
        return msgspec.structs.replace(
            fired,
            status="resolved",
            value=abs(change) / 100.0,
            threshold=self._resolve / 100.0,
            ts=now,
            summary=(
                f"{fired.exchange} {fired.symbol}: open interest change back to {change:+.1f}% in "
                f"{_fmt_span(self._window_s)} (|change| < {self._resolve:g}%); peak {episode.peak:+.1f}%"
            ),
            details={
                **self._oi_fields(change, episode.unit, latest),
                "change_pct": change,
                "peak_change_pct": episode.peak,
                "duration_s": (now - fired.started_at) / 1000,
                "window_s": self.config.window_s,
                "threshold_pct": self.config.threshold_pct,
                "resolve_below_pct": self._resolve,
            },
        )

    def tick(self, now_ms: int, state: LiveState) -> list[Alert]:
        """OI episodes resolve on their key's own observations only; this just moves the clock."""
        self._clock.observe(now_ms)
        return []




def _fmt_span(seconds: int) -> str:
    if seconds % 86_400 == 0:
        return f"{seconds // 86_400}d"
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


# --------------------------------------------------------------------------- IV extreme


class IvExtremeConfig(_Config, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Thresholds of :class:`IvExtremeRule` (IV in PERCENT: 100 = an IV of 1.0).

    Attributes:
        high_pct: fires when ATM IV ≥ this, percent.
        low_pct: fires when ATM IV ≤ this, percent (0 turns the low side off).
        resolve_margin_pct: resolves once IV is back inside by this many percentage points.
        cooldown_s: after resolution, no new episode for the key for this long.
        critical_high_pct: a ``high`` episode is ``critical`` when firing at ≥ this, percent.
    """

    high_pct: float = 100.0
    low_pct: float = 20.0
    resolve_margin_pct: float = 5.0
    cooldown_s: float = 900.0
    critical_high_pct: float = 150.0

    def __post_init__(self) -> None:
        self._positive("high_pct", "resolve_margin_pct", "critical_high_pct")
        if self.low_pct < 0:
            raise ValueError(f"IvExtremeConfig.low_pct must be >= 0, got {self.low_pct!r}")
        if self.high_pct - self.resolve_margin_pct <= max(0.0, self.low_pct + self.resolve_margin_pct):
            raise ValueError(
                "IvExtremeConfig: the resolve levels cross: need low_pct + resolve_margin_pct < "
                f"high_pct - resolve_margin_pct, got low_pct={self.low_pct!r}, high_pct={self.high_pct!r}, "
                f"resolve_margin_pct={self.resolve_margin_pct!r}"
            )
        if self.cooldown_s < 0:
            raise ValueError(f"IvExtremeConfig.cooldown_s must be >= 0, got {self.cooldown_s!r}")


class _IvEpisode:
    __slots__ = ("alert", "peak", "trigger")

    def __init__(self, alert: Alert, trigger: str, peak: float) -> None:
        self.alert = alert
        self.trigger = trigger  # "high" or "low"
        self.peak = peak  # the most extreme ATM IV of the episode (highest for high, lowest for low)


class IvExtremeRule(_Episodes):
    """``iv_extreme``: the ATM implied volatility of one option expiry is extremely high or low.

    Key: ``(exchange, underlying, expiry)``; alert ``symbol`` =
    ``<underlying>-<YYYYMMDD>`` (``BTC-20261225``), ``side`` (in the id) =
    ``high`` or ``low``. Input: ``option_ticker`` events. Measured value:
    ``IV = analytics.atm_iv(state.options[exchange].rows(underlying,
    expiry))``, a fraction: per strike the mean of the call's and put's
    ``mark_iv``, interpolated linearly at the expiry's reference price (the
    latest ``underlying_price``); null (nothing happens) when the price is
    outside the quoted strikes. ``H`` = ``high_pct / 100``, ``L`` =
    ``low_pct / 100``, ``m`` = ``resolve_margin_pct / 100``.

    **When it is evaluated** (option tickers are frequent): at the first
    option ticker of the key in each clock second (``clock // 1000``); a
    ticker of a key already evaluated in that second only marks it pending,
    and pending keys are evaluated at the engine's next tick of a later
    second (the first event of any later second). So each key is evaluated
    at most once per clock second, and its last update of a second is
    evaluated at the start of the next second that has an event.

    **Fires** when ``IV ≥ H`` (trigger ``high``) or, with ``low_pct > 0``,
    ``IV ≤ L`` (trigger ``low``), no episode of the key is open and the key
    is not cooling down. ``value`` = ``IV``, ``threshold`` = ``H`` or ``L``
    (fractions: 1.0 = 100 %); ``window_s`` 0. Severity: ``high`` is
    ``critical`` at ``IV ≥ critical_high_pct / 100``, else ``warning``;
    ``low`` is ``info``.

    **Resolves** at the first evaluation with ``IV < H − m`` (a ``high``
    episode) or ``IV > L + m`` (a ``low`` one); an IV between the fire and
    resolve levels keeps it open. ``value`` = ``IV``, ``threshold`` = that
    resolve level. It also resolves at the first tick at or after the
    expiry's 08:00 UTC on its date (``details.reason`` ``expired``, value =
    the last IV evaluated), since an expired chain has no IV any more.

    **Cooldown** as for every rule, per key (``cooldown_s``, default 900 s).
    """

    name = IV_EXTREME
    events: tuple[type, ...] = (OptionTicker,)  # the only events its on_event reads (engine routing)

    def __init__(self, config: IvExtremeConfig | None = None) -> None:
        self.config = cfg = config or IvExtremeConfig()
        self._high = cfg.high_pct / 100.0
        self._low = cfg.low_pct / 100.0
        self._margin = cfg.resolve_margin_pct / 100.0
        self._critical = cfg.critical_high_pct / 100.0
        # At least 1 ms: an episode never reopens in the ms it resolved (its id would repeat).
        self._cooldown_ms = max(1, round(cfg.cooldown_s * 1000))
        self._clock = _Clock()
        self._evaluated: dict[tuple[str, str, str], int] = {}  # key -> clock second of its last evaluation
        self._pending: dict[tuple[str, str, str], None] = {}  # keys updated since their last evaluation (ordered)
        self._last_iv: dict[tuple[str, str, str], float] = {}
        self._open: dict[tuple[str, str, str], _IvEpisode] = {}
        self._resolved_at: dict[tuple[str, str, str], int] = {}
        self._counts = {"events": 0, "evaluations": 0, "no_iv": 0, "suppressed": 0}

    def on_event(self, event: Event, state: LiveState) -> list[Alert]:
        """Evaluate the key of one option ticker, at most once per clock second (see the class docstring)."""
        if not isinstance(event, MarketEvent):
            return []
        now = self._clock.observe(event.ts)
        if not isinstance(event, OptionTicker):
            return []
        self._counts["events"] += 1
        key = (event.exchange, event.underlying, event.expiry)
        if self._evaluated.get(key) == now // _BUCKET_MS:
            self._pending[key] = None
            return []
        alert = self._evaluate(key, now, state)
        return [] if alert is None else [alert]

    def _evaluate(self, key: tuple[str, str, str], now: int, state: LiveState) -> Alert | None:
        self._pending.pop(key, None)
        self._evaluated[key] = now // _BUCKET_MS
        self._counts["evaluations"] += 1
        exchange, underlying, expiry = key
        chain = state.options.get(exchange)
        rows = [] if chain is None else chain.rows(underlying, expiry)
        iv = atm_iv(rows) if rows else None
        if iv is None:
            self._counts["no_iv"] += 1
            return None
        self._last_iv[key] = iv
        episode = self._open.get(key)
        if episode is not None:
            if episode.trigger == "high":
                level = self._high - self._margin
                if iv >= level:
                    episode.peak = max(episode.peak, iv)
                    return None
            else:
                level = self._low + self._margin
                if iv <= level:
                    episode.peak = min(episode.peak, iv)
                    return None
            return self._resolve(key, episode, iv, level, now, "back_inside")
        if iv >= self._high:
            trigger, threshold = "high", self._high
        elif self._low > 0 and iv <= self._low:
            trigger, threshold = "low", self._low
        else:
            return None
        resolved_at = self._resolved_at.get(key)
        if resolved_at is not None and now < resolved_at + self._cooldown_ms:
            self._counts["suppressed"] += 1
            return None
        alert = self._firing(key, trigger, threshold, iv, rows, now)
        self._open[key] = _IvEpisode(alert, trigger, iv)
        return alert

    def _firing(
        self, key: tuple[str, str, str], trigger: str, threshold: float, iv: float, rows: list[OptionTicker], now: int
    ) -> Alert:
        cfg = self.config
        exchange, underlying, expiry = key
        symbol = _iv_symbol(underlying, expiry)
        if trigger == "high":
            severity: Severity = "critical" if iv >= self._critical else "warning"
            resolve_level = self._high - self._margin
            cmp = "≥"
        else:
            severity = "info"
            resolve_level = self._low + self._margin
            cmp = "≤"
        price = reference_price(rows)
        expiry_ms = _expiry_ms(expiry)
        days = None if expiry_ms is None else max(0.0, (expiry_ms - now) / 86_400_000)
        return Alert(
            id=alert_id(IV_EXTREME, exchange, symbol, trigger, now),
            rule=IV_EXTREME,
            status="firing",
            severity=severity,
            exchange=exchange,
            symbol=symbol,
            value=iv,
            threshold=threshold,
            window_s=0.0,
            started_at=now,
            ts=now,
            summary=(
                f"{exchange} {underlying} {expiry}: ATM IV {iv * 100:.1f}% ({cmp} {threshold * 100:g}%)"
                + ("" if days is None else f", {days:.1f}d to expiry")
            ),
            details={
                "trigger": trigger,
                "underlying": underlying,
                "expiry": expiry,
                "atm_iv": iv,
                "reference_price": price,
                "options": len(rows),
                "days_to_expiry": days,
                "high_pct": cfg.high_pct,
                "low_pct": cfg.low_pct,
                "resolve_level": resolve_level,
            },
        )

    def _resolve(
        self, key: tuple[str, str, str], episode: _IvEpisode, iv: float, level: float, now: int, reason: str
    ) -> Alert:
        del self._open[key]
        self._resolved_at[key] = now
        fired = episode.alert
        _, underlying, expiry = key
        if reason == "expired":
            why = "expiry passed"
        else:
            why = f"back inside ({'<' if episode.trigger == 'high' else '>'} {level * 100:g}%)"
        return msgspec.structs.replace(
            fired,
            status="resolved",
            value=iv,
            threshold=level,
            ts=now,
            summary=(
                f"{fired.exchange} {underlying} {expiry}: ATM IV {iv * 100:.1f}%, {why}; "
                f"{'peak' if episode.trigger == 'high' else 'low'} {episode.peak * 100:.1f}%"
            ),
            details={
                "trigger": episode.trigger,
                "reason": reason,
                "underlying": underlying,
                "expiry": expiry,
                "atm_iv": iv,
                "peak_iv": episode.peak,
                "duration_s": (now - fired.started_at) / 1000,
                "resolve_level": level,
            },
        )

    def tick(self, now_ms: int, state: LiveState) -> list[Alert]:
        """Evaluate pending keys not yet evaluated in this clock second; resolve episodes of expired expiries."""
        now = self._clock.observe(now_ms)
        out: list[Alert] = []
        second = now // _BUCKET_MS
        for key in [k for k in self._pending if self._evaluated.get(k) != second]:
            alert = self._evaluate(key, now, state)
            if alert is not None:
                out.append(alert)
        for key, episode in list(self._open.items()):
            expiry_ms = _expiry_ms(key[2])
            if expiry_ms is None or expiry_ms <= now:
                level = self._high - self._margin if episode.trigger == "high" else self._low + self._margin
                out.append(self._resolve(key, episode, self._last_iv.get(key, episode.peak), level, now, "expired"))
                self._pending.pop(key, None)
        return out


    def stats(self) -> dict[str, int]:
        """events (option tickers), evaluations, no_iv (no ATM IV), suppressed, pending, open."""
        return {**self._counts, "pending": len(self._pending), "open": len(self._open)}


@functools.lru_cache(maxsize=1024)
def _expiry_ms(expiry: str) -> int | None:
    """08:00 UTC of ``YYYY-MM-DD`` in ms (``analytics.expiry_ms_from_date``); None when unparseable."""
    try:
        return expiry_ms_from_date(expiry)
    except ValueError:
        return None


def _iv_symbol(underlying: str, expiry: str) -> str:
    return f"{underlying}-{expiry.replace('-', '')}"


# --------------------------------------------------------------------------- funding divergence


class FundingDivergenceConfig(_Config, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Thresholds of :class:`FundingDivergenceRule`.

    Attributes:
        threshold_pct: spread max − min of ``rate_8h`` across venues, PERCENT per 8 h (0.05 = 0.0005).
        resolve_ratio: resolves below ``resolve_ratio × threshold``.
        max_age_s: a venue's rate counts while at most this old (event time, whole seconds).
        cooldown_s: after resolution, no new episode for the base asset for this long.
        critical_multiple: severity ``critical`` when firing at ≥ this × threshold.
    """

    threshold_pct: float = 0.05
    resolve_ratio: float = 0.5
    max_age_s: float = 900.0
    cooldown_s: float = 900.0
    critical_multiple: float = 3.0

    def __post_init__(self) -> None:
        self._positive("threshold_pct", "max_age_s", "critical_multiple")
        self._whole_seconds("max_age_s")
        self._ratio("resolve_ratio")
        if self.cooldown_s < 0:
            raise ValueError(f"FundingDivergenceConfig.cooldown_s must be >= 0, got {self.cooldown_s!r}")


class _DivergenceEpisode:
    __slots__ = ("alert", "peak")

    def __init__(self, alert: Alert, peak: float) -> None:
        self.alert = alert
        self.peak = peak


def _perp_base(symbol: str) -> str | None:
    """``BTC`` of ``BTC-USDT-PERP``; None for anything but a perpetual."""
    parts = symbol.split("-")
    return parts[0] if len(parts) == 3 and parts[2] == "PERP" else None


class FundingDivergenceRule(_Episodes):
    """``funding_divergence``: perpetual funding of one base asset differs across venues.

    Key: the base asset (``BTC`` of ``BTC-USDT-PERP``); alert ``symbol`` =
    the base, ``exchange`` null. Inputs: ``funding`` events of perpetuals
    (unified symbol ``BASE-QUOTE-PERP``; dated futures and events with
    ``rate_8h`` null are ignored). The rule keeps the latest event (largest
    ``ts``) per ``(exchange, symbol)``.

    At clock ``t`` a rate is **fresh** when ``ts // 1000 ≥ t // 1000 −
    max_age_s`` (whole seconds, so freshness only changes at second
    boundaries and the engine's once-per-second tick is exact). **One rate
    per venue**: the venue's fresh ``BASE-USDT-PERP`` if it has one, else
    its fresh perpetual of that base whose symbol sorts first (``BTC-USD-PERP``
    before ``BTC-USDC-PERP``). Spread ``S(t)`` = ``analytics.funding_spread``
    of those legs: max − min ``rate_8h`` over the venues (a fraction per
    8 h), 0 with fewer than two venues; ``θ`` = ``threshold_pct / 100``.

    **Fires** at a funding event of the base when ``S(t) ≥ θ`` with at least
    two venues, no episode of the base is open and it is not cooling down.
    ``value`` = ``S(t)``, ``threshold`` = ``θ``, ``window_s`` = ``max_age_s``.
    Severity ``critical`` when ``S(t) ≥ critical_multiple × θ``, else
    ``warning``.

    **Resolves** at the first clock value (a funding event of the base, or
    the engine's tick, which drops rates that are no longer fresh) with
    ``S(t) < resolve_ratio × θ``; with one fresh venue left ``S`` is 0, so an
    episode never stays open on stale legs. A spread between the two levels
    keeps it open. ``value`` = ``S(t)``, ``threshold`` = ``resolve_ratio × θ``.

    **Cooldown** as for every rule, per base (``cooldown_s``, default 900 s).
    The carry in ``details`` is ``S × 3 × 365`` (simple, before fees):
    long the low leg, short the high one.
    """

    name = FUNDING_DIVERGENCE
    events: tuple[type, ...] = (Funding,)  # the only events its on_event reads (engine routing)

    def __init__(self, config: FundingDivergenceConfig | None = None) -> None:
        self.config = cfg = config or FundingDivergenceConfig()
        self._threshold = cfg.threshold_pct / 100.0
        self._resolve = self._threshold * cfg.resolve_ratio
        self._max_age_s = int(cfg.max_age_s)
        # At least 1 ms: an episode never reopens in the ms it resolved (its id would repeat).
        self._cooldown_ms = max(1, round(cfg.cooldown_s * 1000))
        self._clock = _Clock()
        self._latest: dict[str, dict[tuple[str, str], Funding]] = {}  # base -> (exchange, symbol) -> latest
        self._open: dict[str, _DivergenceEpisode] = {}
        self._resolved_at: dict[str, int] = {}
        self._counts = {"events": 0, "not_perpetual": 0, "rate_8h_null": 0, "no_symbol": 0, "suppressed": 0}

    def legs(self, base: str, now_ms: int) -> list[Funding]:
        """The one fresh funding per venue of ``base`` at ``now_ms``, by exchange (see the class docstring)."""
        oldest_s = now_ms // _BUCKET_MS - self._max_age_s
        best: dict[str, Funding] = {}
        for (exchange, symbol), ev in self._latest.get(base, {}).items():
            if ev.ts // _BUCKET_MS < oldest_s:
                continue
            kept = best.get(exchange)
            if kept is None or _leg_order(base, symbol) < _leg_order(base, kept.symbol or ""):
                best[exchange] = ev
        return [best[ex] for ex in sorted(best)]

    def _spread(self, base: str, now: int) -> tuple[float, list[Funding], FundingSpread | None]:
        legs = self.legs(base, now)
        spread = funding_spread(legs)
        return (0.0 if spread is None else spread.spread_8h), legs, spread

    def on_event(self, event: Event, state: LiveState) -> list[Alert]:
        """Record one perpetual's funding and evaluate its base asset (see the class docstring)."""
        if not isinstance(event, MarketEvent):
            return []
        now = self._clock.observe(event.ts)
        if not isinstance(event, Funding):
            return []
        if event.symbol is None:
            self._counts["no_symbol"] += 1
            return []
        base = _perp_base(event.symbol)
        if base is None:
            self._counts["not_perpetual"] += 1
            return []
        self._counts["events"] += 1
        if event.rate_8h is None:
            self._counts["rate_8h_null"] += 1
            return []
        venues = self._latest.setdefault(base, {})
        key = (event.exchange, event.symbol)
        prev = venues.get(key)
        if prev is None or event.ts >= prev.ts:
            venues[key] = event
        episode = self._open.get(base)
        if episode is None:
            if all(exchange == event.exchange for exchange, _ in venues):
                return []  # one venue quotes this base: no spread (funding_spread is None), nothing to fire
            # One leg per venue, so the widest pair is max − min: below the threshold, nothing fires.
            rates = [leg.rate_8h for leg in self.legs(base, now)]
            if len(rates) < 2 or max(rates) - min(rates) < self._threshold:  # type: ignore[operator]
                return []
        value, legs, spread = self._spread(base, now)
        if episode is not None:
            if value < self._resolve:
                return [self._resolved(base, episode, value, legs, now)]
            episode.peak = max(episode.peak, value)
            return []
        if spread is None or spread.venues < 2 or value < self._threshold:
            return []
        resolved_at = self._resolved_at.get(base)
        if resolved_at is not None and now < resolved_at + self._cooldown_ms:
            self._counts["suppressed"] += 1
            return []
        alert = self._firing(base, spread, legs, now)
        self._open[base] = _DivergenceEpisode(alert, value)
        return [alert]

    @staticmethod
    def _venues(legs: list[Funding]) -> dict[str, dict[str, Any]]:
        return {ev.exchange: {"symbol": ev.symbol, "rate_8h": ev.rate_8h, "ts": ev.ts} for ev in legs}

    def _firing(self, base: str, spread: FundingSpread, legs: list[Funding], now: int) -> Alert:
        cfg = self.config
        value = spread.spread_8h
        severity: Severity = "critical" if value >= cfg.critical_multiple * self._threshold else "warning"
        hi, lo = spread.high, spread.low
        return Alert(
            id=alert_id(FUNDING_DIVERGENCE, None, base, None, now),
            rule=FUNDING_DIVERGENCE,
            status="firing",
            severity=severity,
            exchange=None,
            symbol=base,
            value=value,
            threshold=self._threshold,
            window_s=float(self._max_age_s),
            started_at=now,
            ts=now,
            summary=(
                f"{base}: perp funding spread {value * 100:.4f}% per 8h across {spread.venues} venues "
                f"(≥ {self._threshold * 100:.4f}%): {hi.exchange} {_fmt_pct(hi.rate_8h)} vs "
                f"{lo.exchange} {_fmt_pct(lo.rate_8h)}, carry {spread.carry_annualized * 100:+.1f}% annualized"
            ),
            details={
                "venues": self._venues(legs),
                "high": {"exchange": hi.exchange, "symbol": hi.symbol, "rate_8h": hi.rate_8h},
                "low": {"exchange": lo.exchange, "symbol": lo.symbol, "rate_8h": lo.rate_8h},
                "spread_8h": value,
                "carry_annualized": spread.carry_annualized,
                "carry_trade": f"short {hi.exchange} {hi.symbol}, long {lo.exchange} {lo.symbol}",
                "max_age_s": cfg.max_age_s,
                "threshold_pct": cfg.threshold_pct,
                "resolve_below": self._resolve,
            },
        )

    def _resolved(
        self, base: str, episode: _DivergenceEpisode, value: float, legs: list[Funding], now: int
    ) -> Alert:
        del self._open[base]
        self._resolved_at[base] = now
        fired = episode.alert
        return msgspec.structs.replace(
            fired,
            status="resolved",
            value=value,
            threshold=self._resolve,
            ts=now,
            summary=(
                f"{base}: perp funding spread back to {value * 100:.4f}% per 8h across {len(legs)} fresh venues "
                f"(< {self._resolve * 100:.4f}%); peak {episode.peak * 100:.4f}%"
            ),
            details={
                "venues": self._venues(legs),
                "spread_8h": value,
                "peak_spread_8h": episode.peak,
                "duration_s": (now - fired.started_at) / 1000,
                "max_age_s": self.config.max_age_s,
                "threshold_pct": self.config.threshold_pct,
                "resolve_below": self._resolve,
            },
        )

    def tick(self, now_ms: int, state: LiveState) -> list[Alert]:
        """Resolve open episodes whose spread over the still-fresh rates fell below the resolve level."""
        now = self._clock.observe(now_ms)
        out: list[Alert] = []
        for base, episode in list(self._open.items()):
            value, legs, _ = self._spread(base, now)
            if value < self._resolve:
                out.append(self._resolved(base, episode, value, legs, now))
        return out




def _leg_order(base: str, symbol: str) -> tuple[bool, str]:
    return (symbol != f"{base}-USDT-PERP", symbol)


# --------------------------------------------------------------------------- engine


def default_rules(
    cascade: LiquidationCascadeConfig | None = None,
    large: LargeLiquidationConfig | None = None,
    funding: ExtremeFundingConfig | None = None,
    oi_change: OiChangeConfig | None = None,
    iv_extreme: IvExtremeConfig | None = None,
    funding_divergence: FundingDivergenceConfig | None = None,
) -> list[Rule]:
    """Every rule, with the given (or default) configs, in engine order."""
    return [
        LiquidationCascadeRule(cascade),
        LargeLiquidationRule(large),
        ExtremeFundingRule(funding),
        OiChangeRule(oi_change),
        IvExtremeRule(iv_extreme),
        FundingDivergenceRule(funding_divergence),
    ]


_SECTIONS: tuple[tuple[str, type[_Config], Callable[[Any], Rule]], ...] = (
    (CASCADE, LiquidationCascadeConfig, LiquidationCascadeRule),
    (LARGE_LIQUIDATION, LargeLiquidationConfig, LargeLiquidationRule),
    (EXTREME_FUNDING, ExtremeFundingConfig, ExtremeFundingRule),
    (OI_CHANGE, OiChangeConfig, OiChangeRule),
    (IV_EXTREME, IvExtremeConfig, IvExtremeRule),
    (FUNDING_DIVERGENCE, FundingDivergenceConfig, FundingDivergenceRule),
)


def rules_from_settings(settings: object) -> list[Rule]:
    """Rules from a settings object with one attribute per rule name (``config.RulesSettings``).

    Each section (a msgspec Struct or a mapping) may carry ``enabled``
    (False leaves the rule out); its other fields are this module's config
    fields by the same names (unknown ones are an error). A missing section
    means the rule with its defaults. Duck-typed: ``alerts`` does not import
    ``config``.
    """
    out: list[Rule] = []
    for name, config_type, rule_type in _SECTIONS:
        section = settings.get(name) if isinstance(settings, dict) else getattr(settings, name, None)
        if section is None:
            out.append(rule_type(None))
            continue
        fields: dict[str, Any] = dict(section) if isinstance(section, dict) else msgspec.structs.asdict(section)
        if not fields.pop("enabled", True):
            continue
        out.append(rule_type(msgspec.convert(fields, config_type)))
    return out


class RuleEngine:
    """Holds rules, feeds them events, returns (and optionally emits) their alerts.

    For each market event: every rule's ``on_event`` in rule order, then
    every rule's ``tick(clock)``, where the clock is the largest event ``ts``
    seen so far, so open episodes of quiet symbols resolve as time moves on
    any stream. Alert events are ignored (the engine's own alerts come back
    through the bus).

    Routing: a rule with an ``events`` attribute (a tuple of event classes) is
    only handed events of those classes; the others would only have moved its
    event-time clock, so the engine shares one clock between all of its rules
    (this module's rules keep it in ``_clock``) and moves it on every market
    event itself. The alerts are the same as feeding every rule every event.

    Args:
        rules: rules in evaluation order (names must be unique).
        state: the live state the rules may read (None: an empty one). Its
            ``on_event`` must run before the engine's on the same event
            (register it on the bus first).
        emit: called with each alert, in order (e.g. ``bus.publish``).
    """

    def __init__(
        self,
        rules: Iterable[Rule],
        state: LiveState | None = None,
        *,
        emit: Callable[[Alert], object] | None = None,
    ) -> None:
        self.rules: list[Rule] = list(rules)
        names = [r.name for r in self.rules]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate rule names: {names}")
        self.state = state if state is not None else LiveState()
        self._emit = emit
        self._clock = _Clock()
        for rule in self.rules:
            if isinstance(getattr(rule, "_clock", None), _Clock):
                rule._clock = self._clock  # type: ignore[attr-defined]
        self._routes: dict[type, tuple[Rule, ...]] = {}
        self.now_ms: int | None = None
        self._tick_second: int | None = None
        self._events = 0
        self._alerts: dict[str, dict[str, int]] = {n: {"firing": 0, "resolved": 0} for n in names}

    def on_event(self, event: Event, state: LiveState | None = None) -> list[Alert]:
        """Bus handler: feed one event; returns the alerts raised, in order.

        ``state`` overrides the engine's own for this call.
        """
        if not isinstance(event, MarketEvent):
            return []
        live = state if state is not None else self.state
        self._events += 1
        ts = event.ts
        if self.now_ms is None or ts > self.now_ms:
            self.now_ms = ts
        clock = self._clock  # _Clock.observe, inlined (once per event)
        if clock.origin is None:
            clock.origin = ts
        if clock.now is None or ts > clock.now:
            clock.now = ts
        rules = self._routes.get(type(event))
        if rules is None:
            rules = self._routes[type(event)] = self._route(type(event))
        out: list[Alert] = []
        for rule in rules:
            alerts = rule.on_event(event, live)
            if alerts:
                out.extend(alerts)
        second = self.now_ms // _BUCKET_MS
        if second != self._tick_second:
            # Rules' windows move in whole 1 s buckets, and within one bucket an event can only add
            # to a window: a tick between bucket boundaries resolves nothing the first tick of the
            # bucket did not (same alerts, same ts). So open episodes are re-evaluated once per second.
            self._tick_second = second
            for rule in self.rules:
                alerts = rule.tick(self.now_ms, live)
                if alerts:
                    out.extend(alerts)
        return self._out(out) if out else out

    def _route(self, cls: type) -> tuple[Rule, ...]:
        """The rules that get events of class ``cls``, in rule order (the class docstring's Routing)."""
        out = []
        for rule in self.rules:
            events = getattr(rule, "events", None)
            own_clock = getattr(rule, "_clock", self._clock) is not self._clock
            if events is None or own_clock or issubclass(cls, events):
                out.append(rule)
        return tuple(out)

    def tick(self, now_ms: int) -> list[Alert]:
        """Re-evaluate open episodes at event time ``max(now_ms, clock)``; returns resolutions."""
        if self.now_ms is None or now_ms > self.now_ms:
            self.now_ms = now_ms
        out: list[Alert] = []
        for rule in self.rules:
            out.extend(rule.tick(self.now_ms, self.state))
        return self._out(out)

    def _out(self, alerts: list[Alert]) -> list[Alert]:
        for alert in alerts:
            self._alerts[alert.rule][alert.status] += 1
            if self._emit is not None:
                self._emit(alert)
        return alerts

    def active(self) -> list[Alert]:
        """The firing alert of every open episode, rule by rule."""
        return [alert for rule in self.rules for alert in rule.active()]

    def counts(self) -> dict[str, dict[str, int]]:
        """Alerts raised so far, ``{rule: {"firing": n, "resolved": n}}`` (metrics)."""
        return {n: dict(c) for n, c in self._alerts.items()}

    def snapshot(self) -> dict[str, Any]:
        """JSON-able view for HTTP: ``now_ms``, ``active`` (open episodes' firing alerts), ``counts``."""
        return {
            "now_ms": self.now_ms,
            "active": [msgspec.to_builtins(a) for a in self.active()],
            "counts": self.counts(),
        }

    def stats(self) -> dict[str, Any]:
        """events, now_ms, alerts {rule: {firing, resolved}}, open {rule: n}, rules {rule: counters}."""
        return {
            "events": self._events,
            "now_ms": self.now_ms,
            "alerts": self.counts(),
            "open": {r.name: len(r.active()) for r in self.rules},
            "rules": {r.name: r.stats() for r in self.rules},
        }
