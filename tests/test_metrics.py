"""The Prometheus collector turns a stats snapshot into metric families (fresh registry per test)."""

from __future__ import annotations

from prometheus_client.exposition import generate_latest

from streamer.metrics import make_registry

SNAPSHOT = {
    "sessions": [{"exchange": "binance", "session": "binance-um-0", "state": "open", "connects": 2,
                  "reconnects": 1, "frames": 10, "bytes": 999, "stalls": 0, "last_frame_age_s": 0.25,
                  "streams": {"!markPrice@arr@1s": 0.25, "!forceOrder@arr": None}}],
    "adapters": [{"exchange": "binance", "frames": 10, "events": 20, "errors": {"json": 3}, "unmapped": {}}],
    "rest": [{"exchange": "binance", "requests": 5, "retries": 1, "cache_hits": 0, "rate_limited": 1,
              "errors": {429: 1}}],
    "bus": {"by_type": {"funding": 7}, "consumers": {"stdout": {"depth": 0, "maxsize": 10, "dropped": 2}}},
    "alerts": {"extreme_funding": {"firing": 1, "resolved": 0}},
    "sinks": {"stdout": {"written": 4, "errors": 0},
              "webhook:ops": {"written": 3, "errors": 5, "outbox_depth": 2, "oldest_undelivered_age_s": 42.5}},
    "market": {"funding_rate_8h": [("binance", "BTC-USDT-PERP", 0.0001)],
               "liquidations_usd": [("binance", "BTC-USDT-PERP", "long", 60, 1234.5)]},
    "ready": True,
}


def scrape(snapshot) -> str:
    return generate_latest(make_registry(lambda: snapshot)).decode()


def test_session_stats_become_labelled_series():
    text = scrape(SNAPSHOT)
    for line in (
        'streamer_ws_connection_state{exchange="binance",session="binance-um-0",state="open"} 1.0',
        'streamer_ws_connection_state{exchange="binance",session="binance-um-0",state="backoff"} 0.0',
        'streamer_ws_reconnects_total{exchange="binance",session="binance-um-0"} 1.0',
        'streamer_ws_frames_total{exchange="binance",session="binance-um-0"} 10.0',
        'streamer_ws_last_frame_age_seconds{exchange="binance",session="binance-um-0"} 0.25',
        'streamer_stream_last_frame_age_seconds{exchange="binance",session="binance-um-0",'
        'stream="!markPrice@arr@1s"} 0.25',
        'streamer_parse_errors_total{exchange="binance",reason="json"} 3.0',
        'streamer_rest_errors_total{exchange="binance",status="429"} 1.0',
        'streamer_bus_dropped_total{consumer="stdout"} 2.0',
        'streamer_alerts_total{rule="extreme_funding",status="firing"} 1.0',
        'streamer_funding_rate_8h_ratio{exchange="binance",symbol="BTC-USDT-PERP"} 0.0001',
        'streamer_liquidations_usd{exchange="binance",side="long",symbol="BTC-USDT-PERP",window="60s"} 1234.5',
        "streamer_ready 1.0",
        'streamer_sink_deliveries_total{sink="webhook:ops"} 3.0',
        'streamer_sink_failures_total{sink="webhook:ops"} 5.0',
        'streamer_outbox_depth{sink="webhook:ops"} 2.0',
        'streamer_outbox_oldest_undelivered_age_seconds{sink="webhook:ops"} 42.5',
        'streamer_sink_deliveries_total{sink="stdout"} 4.0',
    ):
        assert line in text
    # a stream that never delivered has no age sample (absent, not 0)
    assert 'stream="!forceOrder@arr"' not in text


def test_empty_snapshot_scrapes_without_error():
    assert "streamer_ready 0.0" in scrape({})


def test_stream_cadence_is_exported_for_streams_that_have_one():
    snapshot = {"sessions": [{**SNAPSHOT["sessions"][0],
                              "stream_cadences": {"!markPrice@arr@1s": 1.0, "!forceOrder@arr": None}}]}
    text = scrape(snapshot)
    assert ('streamer_stream_cadence_seconds{exchange="binance",session="binance-um-0",'
            'stream="!markPrice@arr@1s"} 1.0') in text
    # a stream that may stay silent (liquidations) has no cadence sample, so no staleness rule can match it
    assert "streamer_stream_cadence_seconds{" + 'exchange="binance",session="binance-um-0",stream="!forceOrder@arr"' \
        not in text
