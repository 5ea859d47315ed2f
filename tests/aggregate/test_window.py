"""Rolling windows on event time: bucket boundaries, late values, exact sums, bounded histories."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamer.aggregate.window import RollingMean, SampleHistory, SumWindow

S = 1000
M = 60 * S


# --------------------------------------------------------------------------- SumWindow


def test_window_holds_the_last_n_buckets_including_the_current_one():
    w = SumWindow(60 * S, S)
    w.add(0, 1.0)  # bucket 0
    w.add(59_999, 2.0)  # bucket 59

    assert w.total(59_999) == 3.0  # buckets 0..59
    assert w.total(60_000) == 2.0  # buckets 1..60: bucket 0 left
    assert w.total(118_999) == 2.0  # buckets 59..118
    assert w.total(119_000) == 0.0  # buckets 60..119: bucket 59 left


def test_window_evicts_exactly_at_bucket_boundaries():
    w = SumWindow(60 * S, S)
    w.add(10_500, 4.0)  # bucket 10

    assert w.totals(69_999) == (4.0, 1, 0)  # buckets 10..69
    assert w.totals(70_000) == (0.0, 0, 0)  # buckets 11..70
    assert len(w) == 0


def test_eviction_moves_only_with_event_time_passed_in():
    w = SumWindow(5 * S, S)
    w.add(1_000, 1.0)
    # Nothing but the times we pass moves the window: no clock is read.
    assert w.total(1_000) == 1.0
    assert w.total(5_999) == 1.0
    assert w.total(6_000) == 0.0


def test_bucket_sums_are_exact_and_values_of_one_bucket_share_it():
    w = SumWindow(10 * S, S)
    for ts, value in [(2_000, 1.5), (2_999, 2.25), (3_000, 0.125), (11_999, 8.0)]:
        w.add(ts, value)

    assert len(w) == 3  # buckets 2, 3, 11
    assert w.totals(11_999) == (11.875, 4, 0)  # buckets 2..11
    assert w.totals(12_000) == (8.125, 2, 0)  # bucket 2 left
    assert w.totals(13_000) == (8.0, 1, 0)  # bucket 3 left


def test_query_before_the_horizon_answers_for_the_horizon():
    w = SumWindow(10 * S, S)
    w.add(0, 1.0)
    w.add(15_000, 2.0)

    assert w.horizon == 15_000
    assert w.total(3_000) == 2.0  # time never goes back


def test_late_value_inside_the_window_goes_to_its_own_bucket():
    w = SumWindow(10 * S, S)
    w.add(20_000, 1.0)
    assert w.add(12_500, 4.0) is True  # bucket 12 is inside buckets 11..20

    assert w.late_accepted == 1
    assert w.total(20_000) == 5.0
    assert w.total(21_999) == 5.0  # buckets 12..21
    assert w.total(22_000) == 1.0  # bucket 12 left on its own schedule


def test_late_value_older_than_the_window_is_dropped_and_counted():
    w = SumWindow(10 * S, S)
    w.add(20_000, 1.0)

    assert w.add(10_999, 4.0) is False  # bucket 10 is out (window is 11..20)
    assert w.add(11_000, 2.0) is True
    assert (w.late_dropped, w.late_accepted) == (1, 1)
    assert w.total(20_000) == 3.0


def test_late_value_before_every_kept_bucket_is_placed_first():
    w = SumWindow(10 * S, S)
    w.add(18_000, 1.0)
    w.add(20_000, 1.0)
    w.add(15_000, 1.0)  # between nothing and 18: goes first
    w.add(19_000, 1.0)  # between 18 and 20

    assert w.totals(24_999) == (4.0, 4, 0)  # buckets 15..24: 15, 18, 19, 20
    assert w.totals(25_000) == (3.0, 3, 0)  # buckets 16..25: 18, 19, 20
    assert w.totals(28_000) == (2.0, 2, 0)  # buckets 19..28: 19, 20
    assert len(w) == 2


def test_missing_values_count_but_do_not_sum():
    w = SumWindow(10 * S, S)
    w.add(1_000, None)
    w.add(1_500, 3.0)

    assert w.totals(1_500) == (3.0, 2, 1)
    assert w.mean(1_500) == 3.0
    assert w.missing(12_000) == 0


def test_running_sum_is_exactly_zero_once_the_window_empties():
    w = SumWindow(2 * S, S)
    w.add(0, 0.1)
    w.add(1_000, 0.2)
    w.add(1_500, -0.3)

    assert w.total(10_000) == 0.0
    assert w.mean(10_000) is None


def test_span_must_be_a_whole_number_of_buckets():
    with pytest.raises(ValueError, match="multiple"):
        SumWindow(1_500, 1_000)


@given(
    st.lists(st.tuples(st.integers(0, 200_000), st.integers(-1_000, 1_000)), max_size=60),
    st.randoms(use_true_random=False),
)
def test_answer_depends_on_the_set_of_values_not_on_arrival_order(values, rnd):
    span, bucket = 30 * S, S
    shuffled = list(values)
    rnd.shuffle(shuffled)
    w = SumWindow(span, bucket)
    for ts, v in shuffled:
        w.add(ts, float(v))
    end = max((ts for ts, _ in values), default=0)
    k = end // bucket
    expected = [v for ts, v in values if k - span // bucket < ts // bucket <= k]

    assert w.totals(end) == (float(sum(expected)), len(expected), 0)
    assert len(w) <= span // bucket


# --------------------------------------------------------------------------- RollingMean


def test_rolling_mean_ring_agrees_with_a_sum_window_on_random_late_and_gapped_samples():
    import random

    rng = random.Random(3)
    span, bucket = 60 * M, M
    ring, ref = RollingMean(span, bucket), SumWindow(span, bucket)
    t = 0
    for _ in range(5_000):
        t += rng.choice([0, 1, 7 * S, 3 * M, 2 * 60 * M])  # same bucket, next ones, gaps past the span
        ts = max(0, t - rng.choice([0, 0, 0, 30 * S, 20 * M, 70 * M]))  # some late, some too late
        value = rng.uniform(-1e-3, 1e-3)
        assert ring.add(ts, value) == ref.add(ts, value)
        if rng.random() < 0.2:
            now = t + rng.choice([0, 30 * S, 59 * M])
            assert ring.count(now) == ref.count(now)
            want = ref.mean(now)
            got = ring.mean(now)
            assert (got is None) == (want is None)
            if want is not None:
                assert got == pytest.approx(want, rel=1e-6, abs=1e-12)
    assert (ring.late_accepted, ring.late_dropped) == (ref.late_accepted, ref.late_dropped)


def test_rolling_mean_over_24h_in_minute_buckets():
    mean = RollingMean(24 * 60 * M, M)
    mean.add(0, 0.0001)
    mean.add(30 * S, 0.0003)
    mean.add(12 * 60 * M, 0.0005)

    assert mean.mean(12 * 60 * M) == pytest.approx(0.0003)
    assert mean.count(24 * 60 * M - 1) == 3  # minute 0 still in (minutes 0..1439)
    assert mean.mean(24 * 60 * M) == 0.0005  # minute 0 left
    assert mean.mean(36 * 60 * M) is None
    assert len(mean) == 0


# --------------------------------------------------------------------------- SampleHistory


def test_history_answers_value_at_or_just_before_t():
    h = SampleHistory(60 * M, M, width=2)
    h.add(0, 100.0, 1_000.0)
    h.add(10 * M, 110.0, None)
    h.add(20 * M, 120.0, 1_200.0)

    assert h.at_or_before(10 * M) == (10 * M, (110.0, None))
    assert h.at_or_before(19 * M) == (10 * M, (110.0, None))
    assert h.at_or_before(-1) is None
    assert h.at_or_before(19 * M, max_age_ms=5 * M) is None  # 9 minutes old
    assert h.at_or_before(14 * M, max_age_ms=5 * M) == (10 * M, (110.0, None))


def test_history_keeps_the_earliest_sample_of_each_resolution_bucket():
    h = SampleHistory(60 * M, M)
    assert h.add(5 * S, 1.0) is True
    assert h.add(50 * S, 2.0) is False  # same minute: the earlier one stays
    assert h.add(2 * S, 3.0) is True  # same minute but earlier: replaces
    assert h.add(61 * S, 4.0) is True

    assert len(h) == 2
    assert h.at_or_before(59 * S) == (2 * S, (3.0,))


def test_history_inserts_out_of_order_samples_in_place():
    h = SampleHistory(60 * M, M)
    h.add(30 * M, 3.0)
    h.add(10 * M, 1.0)
    h.add(20 * M, 2.0)

    assert [h.at_or_before(t * M) for t in (10, 20, 30)] == [(10 * M, (1.0,)), (20 * M, (2.0,)), (30 * M, (3.0,))]
    assert (h.oldest_ts, h.newest_ts) == (10 * M, 30 * M)


def test_history_memory_is_bounded_but_keeps_one_sample_at_or_before_the_edge():
    h = SampleHistory(60 * M, M)
    for minute in range(10 * 60):  # ten hours, one sample a minute
        h.add(minute * M + 7 * S, float(minute))

    newest = 599 * M + 7 * S
    assert len(h) == 61  # the 60 minutes after the edge + the one at or before it
    assert h.oldest_ts == 539 * M + 7 * S
    assert h.at_or_before(newest - 60 * M) == (539 * M + 7 * S, (539.0,))
    assert h.at_or_before(newest - 61 * M) is None


def test_history_rejects_wrong_number_of_values():
    with pytest.raises(ValueError, match="expected 2 values"):
        SampleHistory(M, S, width=2).add(0, 1.0)


# --------------------------------------------------------------------------- MultiSumWindow


def test_multi_sum_window_answers_as_separate_sum_windows_on_random_late_gapped_and_unsized_samples():
    import random

    from streamer.aggregate.window import MultiSumWindow

    rng = random.Random(11)
    spans = (60 * S, 300 * S, 3600 * S)
    multi = MultiSumWindow(spans, S)
    refs = {span: SumWindow(span, S) for span in spans}
    t = 0
    for _ in range(20_000):
        t += rng.choice([0, 1, 250, S, 7 * S, 90 * S, 2 * 3600 * S])
        ts = max(0, t - rng.choice([0, 0, 0, 0, 2 * S, 100 * S, 900 * S, 5000 * S]))  # some late, some too late
        value = None if rng.random() < 0.05 else float(rng.randrange(1, 10_000))
        got = multi.add(ts, value)
        want = [ref.add(ts, value) for ref in refs.values()]
        assert got == any(want)
        if rng.random() < 0.3:
            now = t + rng.choice([0, 500, 59 * S, 301 * S])
            for span, ref in refs.items():
                assert multi.totals(span, now) == ref.totals(now), (span, now)
    assert multi.late_dropped == sum(r.late_dropped for r in refs.values())
    assert len(multi) == len(refs[3600 * S])
