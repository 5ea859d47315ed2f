"""Fixtures of the deploy/ tests: one `streamer demo` process per test module that needs one.

The Grafana, rules and healthcheck tests read the metric names it really exports or poke its endpoints. Module
scope, not session: the demo must not keep running (and taking CPU) through the rest of the suite. The
real-Prometheus test starts its own, to know where the demo's scripted minute stands.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from deploy_support import Demo, running_demo


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """One demo for the module (tests that only read its metric names or poke its endpoints)."""
    with running_demo(tmp_path_factory.mktemp("demo") / "demo.log") as d:
        yield d
