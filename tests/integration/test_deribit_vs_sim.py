"""Deribit through the daemon against the simulator: the heartbeat is set on connect and every
test_request is answered (the simulator closes connections that do not answer), tickers flow."""

from __future__ import annotations

import asyncio
import io

from streamer.config import BinanceSettings, DeribitSettings, ExchangesSettings, HttpSettings, Settings
from streamer.daemon import Daemon
from streamer.model import Funding, OpenInterest
from streamer.sim import SimServer
from streamer.sim.venues.deribit import DeribitConfig
from tests.conftest import eventually


async def test_deribit_session_answers_test_requests_and_stays_connected(tmp_path, monkeypatch):
    import streamer.exchanges.deribit as deribit_mod

    async with SimServer(seed=3, deribit=DeribitConfig(min_heartbeat_s=0.3)) as sim:
        settings = Settings(
            http=HttpSettings(enabled=False),
            exchanges=ExchangesSettings(
                binance=BinanceSettings(enabled=False),
                deribit=DeribitSettings(enabled=True, ws_url=sim.urls["deribit_ws"], rest_url=sim.urls["deribit_rest"]),
            ),
            state_dir=str(tmp_path),
        )
        daemon = Daemon(settings, out=io.BytesIO())
        monkeypatch.setattr(deribit_mod, "HEARTBEAT_INTERVAL_S", 0.5)  # the simulator's minimum is 0.3 s
        seen: list[object] = []
        daemon.bus.add_handler(seen.append)
        stop = asyncio.Event()
        task = asyncio.create_task(daemon.run(stop))
        try:
            await eventually(lambda: any(isinstance(e, Funding) for e in seen), within_s=10)
            [(_plan, session)] = daemon.sessions
            sent_before = session.stats().sent
            await asyncio.sleep(2.5)  # five heartbeat intervals: unanswered, the simulator would close
            st = session.stats()
            assert (st.connects, st.state) == (1, "open")
            assert st.sent - sent_before >= 3  # public/test replies to test_request
        finally:
            stop.set()
            assert await asyncio.wait_for(task, 10) == 0
    funding = [e for e in seen if isinstance(e, Funding) and e.raw_symbol == "BTC-PERPETUAL"]
    assert funding
    assert {(f.interval_h, f.next_funding_ts) for f in funding} == {(8.0, None)}
    assert any(isinstance(e, OpenInterest) for e in seen)
