"""Alert lifecycle across restarts: an episode delivered as ``firing`` is never re-fired as a new one.

The rule engine keeps its episodes in memory. After a restart it starts empty, so an episode that was
open when the process stopped would, if its condition still holds, open again with a new ``started_at``
and therefore a new ``id``: a second ``firing`` for what the receivers know as one episode. The
``EpisodeJournal`` prevents that:

* It persists the open episodes (their ``firing`` alerts) to ``alerts-active.json`` in ``state_dir``,
  atomically, whenever the set changes.
* At start it loads them as *restored* episodes, keyed by ``(rule, exchange, symbol, side)`` (``side``
  from ``details`` where the rule has one).
* A ``firing`` alert whose key matches a restored episode is a **continuation**: it is not published;
  the journal remembers that the new id stands for the old one. When that episode resolves, the
  ``resolved`` alert is published with the old ``id`` and ``started_at``, so receivers see one
  episode: one ``firing`` (before the restart) and one ``resolved``.
* A restored episode whose condition does not fire again within ``grace_ms`` of event time after the
  first event seen (default 10 min: longer than every rule's window of evidence) is resolved by the
  journal with ``details.reason = "not seen again after restart"``, so nothing stays firing forever
  downstream.

Only the event-time clock is used (the first event's ``ts`` starts the grace period).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import msgspec

from streamer.model import Alert

log = logging.getLogger(__name__)

Key = tuple[str, str | None, str | None, str | None]

FILE_NAME = "alerts-active.json"


def episode_key(alert: Alert) -> Key:
    """``(rule, exchange, symbol, side)`` of an alert's episode."""
    side = alert.details.get("side") if isinstance(alert.details, dict) else None
    return (alert.rule, alert.exchange, alert.symbol, side if isinstance(side, str) else None)


class EpisodeJournal:
    """Persists open episodes and turns post-restart re-fires into continuations (module docstring).

    Args:
        state_dir: where ``alerts-active.json`` lives (None: in memory only, nothing persisted).
        grace_ms: event time after the first event within which a restored episode may continue.
    """

    def __init__(self, state_dir: str | Path | None, grace_ms: int = 600_000) -> None:
        self.path = Path(state_dir).expanduser() / FILE_NAME if state_dir is not None else None
        self.grace_ms = grace_ms
        self._active: dict[str, Alert] = {}  # id -> firing alert of an open episode (as published)
        self._restored: dict[Key, Alert] = {}
        self._alias: dict[str, Alert] = {}  # new id -> the restored firing alert it continues
        self._first_ts: int | None = None
        self.restored_at_start: list[Alert] = []
        """The firing alerts restored at start (the daemon re-offers them to durable sinks: an alert
        published just before a crash may not have reached the outbox; the outbox dedupes the rest)."""
        self.continued = 0
        self.expired = 0
        self._load()

    # ------------------------------------------------------------------ persistence

    def _load(self) -> None:
        if self.path is None or not self.path.exists():
            return
        try:
            alerts = msgspec.json.decode(self.path.read_bytes(), type=list[Alert])
        except (OSError, msgspec.DecodeError) as exc:
            log.warning("alerts: cannot read %s (%s); starting without restored episodes", self.path, exc)
            return
        for alert in alerts:
            self._restored[episode_key(alert)] = alert
            self._active[alert.id] = alert
        self.restored_at_start = list(alerts)
        if alerts:
            log.info("alerts: %d open episode(s) restored from %s", len(alerts), self.path)

    def _save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_bytes(msgspec.json.encode(list(self._active.values())))
        os.replace(tmp, self.path)

    # ------------------------------------------------------------------ flow

    def process(self, alerts: Iterable[Alert], now_ms: int | None) -> list[Alert]:
        """The alerts to publish for the engine's ``alerts`` at event time ``now_ms``, in order."""
        out: list[Alert] = []
        changed = False
        before = len(self._active)
        added: list[str] = []  # ids of episodes opened in this call
        for alert in alerts:
            if alert.status == "firing":
                restored = self._restored.pop(episode_key(alert), None)
                if restored is not None:
                    self._alias[alert.id] = restored
                    self.continued += 1
                    continue  # the receivers already have this episode's firing alert
                self._active[alert.id] = alert
                added.append(alert.id)
                changed = True
                out.append(alert)
            else:
                restored = self._alias.pop(alert.id, None)
                if restored is not None:
                    alert = msgspec.structs.replace(alert, id=restored.id, started_at=restored.started_at)
                if self._active.pop(alert.id, None) is not None:
                    changed = True
                out.append(alert)
        if now_ms is not None:
            out.extend(self._expire(now_ms))
        if changed and not (len(self._active) == before and not any(i in self._active for i in added)):
            # skipped only when every episode opened here also closed here (a large liquidation's firing and
            # resolved come together) and none closed before: the file would be rewritten byte for byte
            self._save()
        return out

    def _expire(self, now_ms: int) -> list[Alert]:
        if not self._restored:
            return []
        if self._first_ts is None:
            self._first_ts = now_ms
        if now_ms - self._first_ts < self.grace_ms:
            return []
        out = []
        for key, alert in list(self._restored.items()):
            del self._restored[key]
            self._active.pop(alert.id, None)
            self.expired += 1
            out.append(msgspec.structs.replace(
                alert, status="resolved", ts=now_ms,
                summary=f"{alert.summary} — resolved: not seen again within {self.grace_ms // 1000} s after a restart",
                details={**(alert.details if isinstance(alert.details, dict) else {}),
                         "reason": "not seen again after restart"},
            ))
        if out:
            self._save()
        return out

    @property
    def pending(self) -> bool:
        """Whether restored episodes still wait for a continuation (``process`` must see every event)."""
        return bool(self._restored)

    def stats(self) -> dict[str, Any]:
        """active (open episodes), restored (awaiting continuation), continued, expired."""
        return {"active": len(self._active), "restored": len(self._restored), "continued": self.continued,
                "expired": self.expired}
