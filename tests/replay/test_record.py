"""The recorder: hourly files, bounded disk, complete zstd frames per flush, errors counted and never raised."""

from __future__ import annotations

import shutil
import time

import pytest
import zstandard

from streamer.record import Inst, Link, Recorder, Rest, Ws, body_of, frame_of, hour_name, read_records, recording_files

H23 = 1796687999_999  # 2026-12-07 23:59:59.999 UTC
H00 = 1796688000_000  # 2026-12-08 00:00:00.000 UTC


def wait_for(cond, within_s: float = 5.0) -> None:
    deadline = time.monotonic() + within_s
    while not cond():
        assert time.monotonic() < deadline, "condition not met"
        time.sleep(0.01)


def test_files_are_named_by_the_utc_hour_of_the_records_time(tmp_path):
    assert hour_name(H23) == "streamer-20261207T23.jsonl.zst"
    assert hour_name(H00) == "streamer-20261208T00.jsonl.zst"
    rec = Recorder(tmp_path, max_bytes=10**9, flush_s=0.05)
    rec.start()
    rec.ws("binance", "binance-um-0", "um", b'{"a":1}', H23)
    rec.ws("okx", "okx-public-0", "public", "pong", H00)
    rec.close()
    files = recording_files(tmp_path)
    assert [f.name for f in files] == ["streamer-20261207T23.jsonl.zst", "streamer-20261208T00.jsonl.zst"]
    assert list(read_records(files[0])) == [Ws(ms=H23, ex="binance", s="binance-um-0", m="um", f='{"a":1}')]
    (second,) = read_records(files[1])
    assert frame_of(second) == "pong"  # handed over as str, replayed as str
    assert rec.stats.records == 2


def test_bodies_that_are_not_utf8_round_trip_as_base64(tmp_path):
    rec = Recorder(tmp_path, max_bytes=10**9, flush_s=0.05)
    rec.start()
    rec.rest("bybit", "", "tickers", {"category": "linear"}, b"\xff\xfe{}", H23)
    rec.instruments("okx", "public", "instruments", {}, b'{"data":[]}')
    rec.link("okx", "okx-public-0", "public", True, None)
    rec.close()
    rest, inst, link = (r for f in recording_files(tmp_path) for r in read_records(f))
    assert isinstance(rest, Rest)
    assert rest.f is None
    assert body_of(rest) == b"\xff\xfe{}"
    assert (rest.ep, rest.p, rest.ms) == ("tickers", {"category": "linear"}, H23)
    assert isinstance(inst, Inst)
    assert body_of(inst) == b'{"data":[]}'
    assert isinstance(link, Link)
    assert (link.s, link.liq, link.since) == ("okx-public-0", True, None)


def test_every_flush_is_a_complete_zstd_frame_readable_before_close(tmp_path):
    rec = Recorder(tmp_path, max_bytes=10**9, flush_s=0.05)
    rec.start()
    rec.ws("binance", "s", "um", b"1", H23)
    wait_for(lambda: rec.stats.records == 1)
    rec.ws("binance", "s", "um", b"2", H23)
    wait_for(lambda: rec.stats.records == 2)
    # as after a crash: the file is readable up to the last flush, without close()
    (path,) = recording_files(tmp_path)
    assert [r.f for r in read_records(path)] == ["1", "2"]
    rec.close()


def test_the_oldest_files_are_deleted_to_stay_within_max_bytes_and_counted(tmp_path):
    old = tmp_path / "streamer-20261207T21.jsonl.zst"
    old.write_bytes(b"x" * 1000)  # an earlier run's file counts too
    rec = Recorder(tmp_path, max_bytes=1, flush_s=0.05)
    rec.start()
    rec.ws("binance", "s", "um", b"a", H23 - 3_600_000)
    rec.ws("binance", "s", "um", b"b", H23)
    rec.ws("binance", "s", "um", b"c", H00)
    rec.close()
    # the file being written is never deleted, even over the budget; every older one is
    assert [f.name for f in recording_files(tmp_path)] == ["streamer-20261208T00.jsonl.zst"]
    assert rec.stats.files_deleted == 3
    assert rec.stats.records == 3


def test_a_disk_error_is_counted_and_recording_resumes_when_the_disk_is_back(tmp_path):
    directory = tmp_path / "rec"
    rec = Recorder(directory, max_bytes=10**9, flush_s=0.05)
    rec.start()
    shutil.rmtree(directory)
    directory.write_text("not a directory")  # every open() below it fails
    rec.ws("binance", "s", "um", b"lost", H23)
    wait_for(lambda: rec.stats.errors == 1)
    directory.unlink()
    directory.mkdir()
    rec.ws("binance", "s", "um", b"kept", H23)
    rec.close()
    assert [r.f for f in recording_files(directory) for r in read_records(f)] == ["kept"]
    assert (rec.stats.errors, rec.stats.records) == (1, 1)


def test_a_full_queue_drops_and_counts_without_blocking(tmp_path):
    rec = Recorder(tmp_path, max_bytes=10**9, queue_max=2)  # not started: nothing drains the queue
    started = time.monotonic()
    for n in range(5):
        rec.ws("binance", "s", "um", str(n).encode(), H23)
    assert time.monotonic() - started < 0.5
    assert rec.stats.dropped == 3


def test_max_bytes_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match=r"record.max_bytes 0: expected bytes > 0"):
        Recorder(tmp_path, max_bytes=0)


def test_a_record_stamped_in_an_earlier_hour_stays_in_the_current_file(tmp_path):
    rec = Recorder(tmp_path, max_bytes=10**9, flush_s=0.05)
    rec.start()
    rec.ws("binance", "s", "um", b"1", H00)
    rec.ws("binance", "s", "um", b"2", H23)  # the clock stepped back across the hour
    rec.close()
    (path,) = recording_files(tmp_path)
    assert path.name == "streamer-20261208T00.jsonl.zst"
    assert [r.f for r in read_records(path)] == ["1", "2"]


def test_a_file_cut_mid_frame_yields_its_complete_records_and_warns(tmp_path, caplog):
    rec = Recorder(tmp_path, max_bytes=10**9, flush_s=0.05)
    rec.start()
    rec.ws("binance", "s", "um", b"first", H23)
    wait_for(lambda: rec.stats.records == 1)
    rec.ws("binance", "s", "um", b"x" * 5000, H23)
    rec.close()
    (path,) = recording_files(tmp_path)
    data = path.read_bytes()
    obj = zstandard.ZstdDecompressor().decompressobj()
    obj.decompress(data)
    first_frame = len(data) - len(obj.unused_data)
    path.write_bytes(data[: first_frame + 30])  # as if killed while appending the second frame
    assert [r.f for r in read_records(path)] == ["first"]
    assert "the last zstd frame is cut off" in caplog.text


def test_a_directory_that_cannot_be_created_at_start_is_counted_and_retried(tmp_path):
    blocker = tmp_path / "disk"
    blocker.write_text("a file where the directory should be")
    rec = Recorder(blocker / "rec", max_bytes=10**9, flush_s=0.05)
    rec.start()  # no exception: the daemon goes on
    assert rec.stats.errors == 1
    rec.ws("binance", "s", "um", b"lost", H23)
    wait_for(lambda: rec.stats.errors == 2)
    blocker.unlink()
    rec.ws("binance", "s", "um", b"kept", H23)
    rec.close()
    assert [r.f for f in recording_files(blocker / "rec") for r in read_records(f)] == ["kept"]


def test_recorder_counters_reach_metrics_while_recording(tmp_path):
    import msgspec
    from prometheus_client import generate_latest

    from streamer.config import RecordSettings, RulesSettings
    from streamer.daemon import Daemon
    from streamer.replay import replay_settings

    settings = replay_settings(RulesSettings(), str(tmp_path / "state"))
    assert "recorder" not in Daemon(settings).snapshot()
    recording = msgspec.structs.replace(settings, record=RecordSettings(enabled=True, dir=str(tmp_path / "rec")))
    daemon = Daemon(recording)
    assert daemon.recorder is not None
    daemon.recorder.stats.dropped = 3
    assert daemon.snapshot()["recorder"] == {"records": 0, "dropped": 3, "bytes": 0, "files_deleted": 0, "errors": 0}
    assert "streamer_recorder_dropped_total 3.0" in generate_latest(daemon.registry).decode()
