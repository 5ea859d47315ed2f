"""Instrument metadata of one venue, queried by raw symbol (pure, no I/O).

Built from the venue's raw instrument REST responses by the venue's adapter
(``load_instruments``); fetching and the on-disk cache live in
``streamer.instruments``. What the metadata cannot tell is returned as None and
the caller leaves the dependent fields null (DESIGN.md: never guessed).
"""

from __future__ import annotations

from streamer.model import Instrument


class InstrumentTable:
    """Instruments of one venue by raw symbol, plus funding intervals.

    Funding intervals may come from a different endpoint than the instruments
    (Binance ``fundingInfo``), so they are kept apart and merged on lookup.
    """

    def __init__(self, exchange: str) -> None:
        self.exchange = exchange
        self._by_raw: dict[str, Instrument] = {}
        self._intervals: dict[str, float] = {}
        self._default_interval_h: float | None = None

    def __len__(self) -> int:
        return len(self._by_raw)

    def add(self, instrument: Instrument) -> None:
        """Add or replace one instrument."""
        self._by_raw[instrument.raw_symbol] = instrument

    def get(self, raw_symbol: str) -> Instrument | None:
        """The instrument, or None when it was never loaded."""
        return self._by_raw.get(raw_symbol)

    def all(self) -> list[Instrument]:
        """Every instrument, in load order."""
        return list(self._by_raw.values())

    def find(self, predicate: object) -> Instrument | None:
        """The first instrument for which ``predicate(instrument)`` is true."""
        for inst in self._by_raw.values():
            if callable(predicate) and predicate(inst):
                return inst
        return None

    def set_interval(self, raw_symbol: str, hours: float) -> None:
        """A funding interval published for one symbol."""
        self._intervals[raw_symbol] = hours

    def set_default_interval(self, hours: float) -> None:
        """The interval of every perpetual the interval source does not list.

        Binance's fundingInfo lists only symbols off the 8 h default, so once it
        is loaded an absent perpetual is on 8 h (DESIGN.md, Funding).
        """
        self._default_interval_h = hours

    def funding_interval_h(self, raw_symbol: str) -> float | None:
        """Hours between fundings, or None when no source says."""
        hours = self._intervals.get(raw_symbol)
        if hours is not None:
            return hours
        inst = self._by_raw.get(raw_symbol)
        if inst is not None:
            if inst.funding_interval_h is not None:
                return inst.funding_interval_h
            if inst.kind != "perpetual":
                return None
        return self._default_interval_h
