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
  rules, a fraction per 8 h for funding (config thresholds ending in ``_pct``
  are percent and are converted). In a ``resolved`` alert, ``value`` is the
  measurement that fell below the resolve level and ``threshold`` is that level.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from typing import Any, Literal, Protocol

import msgspec

from streamer.aggregate.state import LiveState
from streamer.aggregate.window import SumWindow
from streamer.model import Alert, Event, Funding, Liquidation, MarketEvent

__all__ = [
    "CASCADE",
    "EXTREME_FUNDING",
    "LARGE_LIQUIDATION",
    "ExtremeFundingConfig",
    "ExtremeFundingRule",
    "LargeLiquidationConfig",
    "LargeLiquidationRule",
    "LiquidationCascadeConfig",
    "LiquidationCascadeRule",
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
    __slots__ = ("current", "long", "venues")

    def __init__(self, window_ms: int, baseline_ms: int) -> None:
        self.current = SumWindow(window_ms, _BUCKET_MS)
        self.long = SumWindow(window_ms + baseline_ms, _BUCKET_MS)
        self.venues: dict[str, SumWindow] = {}


class _CascadeEpisode:
    __slots__ = ("alert", "count", "peak", "venues")

    def __init__(self, alert: Alert, peak: float, venues: dict[str, float], count: int) -> None:
        self.alert = alert
        self.peak = peak
        self.venues = venues  # notional per venue over the episode, USD
        self.count = count


class LiquidationCascadeRule:
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
        lookback = max(0.0, sides.long.total(now_ms) - sides.current.total(now_ms))
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
        sides.current.add(event.ts, value)
        sides.long.add(event.ts, value)
        venue.add(event.ts, value)
        episode = self._open.get(key)
        if episode is not None:
            episode.count += 1
            if value is not None:
                episode.venues[event.exchange] = episode.venues.get(event.exchange, 0.0) + value
                episode.peak = max(episode.peak, sides.current.total(now))
            return []
        if value is None:
            return []  # cannot raise the notional
        notional = sides.current.total(now)
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
        _, count, unsized = sides.current.totals(now)
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
            notional = sides.current.total(now)
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

    def active(self) -> list[Alert]:
        """Firing alerts of the open episodes."""
        return [ep.alert for ep in self._open.values()]

    def stats(self) -> dict[str, int]:
        """liquidations, unsized (value_usd null), no_symbol, suppressed, open."""
        return {**self._counts, "open": len(self._open)}


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


class ExtremeFundingRule:
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

    def active(self) -> list[Alert]:
        """Firing alerts of the open episodes."""
        return [ep.alert for ep in self._open.values()]

    def stats(self) -> dict[str, int]:
        """events, rate_8h_null, no_symbol, suppressed, open."""
        return {**self._counts, "open": len(self._open)}


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


# --------------------------------------------------------------------------- engine


def default_rules(
    cascade: LiquidationCascadeConfig | None = None,
    large: LargeLiquidationConfig | None = None,
    funding: ExtremeFundingConfig | None = None,
) -> list[Rule]:
    """The rules that exist so far, with the given (or default) configs, in engine order."""
    return [
        LiquidationCascadeRule(cascade),
        LargeLiquidationRule(large),
        ExtremeFundingRule(funding),
    ]


_SECTIONS: tuple[tuple[str, type[_Config], Callable[[Any], Rule]], ...] = (
    (CASCADE, LiquidationCascadeConfig, LiquidationCascadeRule),
    (LARGE_LIQUIDATION, LargeLiquidationConfig, LargeLiquidationRule),
    (EXTREME_FUNDING, ExtremeFundingConfig, ExtremeFundingRule),
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
        if self.now_ms is None or event.ts > self.now_ms:
            self.now_ms = event.ts
        out: list[Alert] = []
        for rule in self.rules:
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
