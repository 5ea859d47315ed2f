"""Fixtures of the deploy/ tests: one `streamer demo` process shared by the session.

It takes a few seconds to start; the Grafana, rules and healthcheck tests read the metric names it really
exports or poke its endpoints. The real-Prometheus test starts its own, to know where the demo's minute stands.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from deploy_support import Demo, running_demo


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """One demo for the session (tests that only read its metric names or poke its endpoints)."""
    with running_demo(tmp_path_factory.mktemp("demo") / "demo.log") as d:
        yield d
