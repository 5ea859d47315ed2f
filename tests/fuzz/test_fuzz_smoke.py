"""The fuzz loop of ``python -m fuzz`` run in-process on every adapter for a few seconds in all.

Driven by the pure-Python mutation loop (atheris ends its process, so it cannot run inside pytest),
on valid UTF-8 only: invalid UTF-8 in ``bytes`` frames is a known crash class, pinned separately in
test_fuzz_regressions.py.
"""

from __future__ import annotations

import pytest

from fuzz.core import VENUES, Target, random_loop

SECONDS = 0.7  # per adapter and mode: 10 runs, ~7 s in all


@pytest.mark.parametrize("rest", [False, True], ids=["ws", "rest"])
@pytest.mark.parametrize("venue", VENUES)
def test_fuzz_loop_raises_only_frame_error(venue: str, rest: bool):
    target = Target(venue, rest=rest, text_only=True)
    target.on_crash = lambda crash: None  # collected below, not written to fuzz/crashes
    random_loop(target, seconds=SECONDS, seed=1234)
    assert target.inputs > 50
    assert not target.crashes, "\n\n".join(f"{c.signature}: input {c.data[:300]!r}\n{c.traceback}"
                                           for c in target.crashes.values())
