"""Rolling windows keyed by event ts (ms); O(1) amortized; never awaits, never reads a clock.

Three structures, all driven only by the times passed in (an event's ``ts``):

* :class:`SumWindow`: sum / count of values over the last ``span_ms`` of event
  time, in fixed ``bucket_ms`` buckets (sparse: memory grows with occupied
  buckets, at most ``span_ms / bucket_ms`` of them).
* :class:`RollingMean`: the mean of samples over a long span (24 h funding
  averages), a :class:`SumWindow` with coarse buckets.
* :class:`SampleHistory`: time-indexed samples, thinned to one per
  ``resolution_ms``, answering "the value at or just before t".

**Window definition.** Let ``b`` = ``bucket_ms``, ``n`` = ``span_ms / b`` and
``k(t) = t // b``. A window *at time t* holds every value whose ``ts`` lies in
one of the ``n`` buckets ``k(t) - n + 1 .. k(t)``, i.e. ``ts`` in
``[(k(t) - n + 1)·b, (k(t) + 1)·b)``. With 1 s buckets, the 60 s window at
t = 10:00:30.250 holds ts from 09:59:31.000 to 10:00:30.999.

**Horizon.** Each window remembers the largest time it has seen (an added
``ts`` or a query's ``now_ms``): the horizon. Time never goes back: a query
with ``now_ms`` below the horizon answers for the horizon.

**Late values.** A value whose bucket is still inside the window at the
horizon is added to its own bucket (``late_accepted`` + 1); one whose bucket
has already left the window is dropped (``late_dropped`` + 1). Because a
dropped value could never be part of any later answer, which values a window
holds depends only on the set of values, not on their arrival order.

**Sums** are running sums (add on arrival, subtract on eviction), so a total
can differ from a fresh sum of the same values in the last bits (a replay in
the same order gives the same bits). Values that are exact in binary (whole
dollars) stay exact; an empty window is exactly 0.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_right
from collections import deque
from collections.abc import Sequence

__all__ = ["MultiSumWindow", "RollingMean", "SampleHistory", "SumWindow"]


class SumWindow:
    """Sum, count and missing-count of values over a rolling span of event time.

    ``add(ts, value)`` with ``value=None`` counts a sample whose value is
    unknown: it is in ``count`` and ``missing``, not in ``total``. (A
    liquidation of unknown size still happened.)

    Args:
        span_ms: window length in ms; a multiple of ``bucket_ms``.
        bucket_ms: bucket length in ms (default 1 s).
    """

    __slots__ = (
        "_buckets",
        "_count",
        "_missing",
        "_now",
        "_sum",
        "bucket_ms",
        "late_accepted",
        "late_dropped",
        "n_buckets",
        "span_ms",
    )

    def __init__(self, span_ms: int, bucket_ms: int = 1000) -> None:
        if bucket_ms <= 0 or span_ms <= 0 or span_ms % bucket_ms:
            raise ValueError(f"span_ms ({span_ms}) must be a positive multiple of bucket_ms ({bucket_ms})")
        self.span_ms = span_ms
        self.bucket_ms = bucket_ms
        self.n_buckets = span_ms // bucket_ms
        # Buckets in increasing index order: [index, sum, count, missing].
        self._buckets: deque[list[float]] = deque()
        self._sum = 0.0
        self._count = 0
        self._missing = 0
        self._now: int | None = None
        self.late_accepted = 0
        self.late_dropped = 0

    @property
    def horizon(self) -> int | None:
        """Largest time seen (ms), None before the first add or query."""
        return self._now

    def _advance(self, now_ms: int) -> None:
        if self._now is not None and now_ms <= self._now:
            return
        self._now = now_ms
        self._evict(now_ms // self.bucket_ms - self.n_buckets)

    def _evict(self, cutoff: int) -> None:
        """Drop the buckets ``<= cutoff`` (they left the window)."""
        buckets = self._buckets
        while buckets and buckets[0][0] <= cutoff:
            _, s, c, m = buckets.popleft()
            self._sum -= s
            self._count -= int(c)
            self._missing -= int(m)
        if not buckets:
            self._sum = 0.0  # no drift survives an empty window

    def add(self, ts: int, value: float | None) -> bool:
        """Add one sample at event time ``ts`` (ms); False when it was too late and dropped."""
        k = ts // self.bucket_ms
        buckets = self._buckets
        now = self._now
        if now is None or ts >= now:
            if now is None or ts > now:  # the horizon moves (inlined ``_advance``: this is the hot path)
                self._now = ts
                if buckets and buckets[0][0] <= k - self.n_buckets:
                    self._evict(k - self.n_buckets)
            if buckets and buckets[-1][0] == k:
                bucket = buckets[-1]
            else:
                bucket = [k, 0.0, 0, 0]
                buckets.append(bucket)
        else:
            if k <= now // self.bucket_ms - self.n_buckets:
                self.late_dropped += 1
                return False
            self.late_accepted += 1
            bucket = self._late_bucket(k)
        bucket[2] += 1
        self._count += 1
        if value is None:
            bucket[3] += 1
            self._missing += 1
        else:
            bucket[1] += value
            self._sum += value
        return True

    def _late_bucket(self, k: int) -> list[float]:
        buckets = self._buckets
        for i in range(len(buckets) - 1, -1, -1):
            idx = buckets[i][0]
            if idx == k:
                return buckets[i]
            if idx < k:
                bucket = [k, 0.0, 0, 0]
                buckets.insert(i + 1, bucket)
                return bucket
        bucket = [k, 0.0, 0, 0]
        buckets.appendleft(bucket)
        return bucket

    def total(self, now_ms: int) -> float:
        """Sum of the known values in the window at ``now_ms``."""
        self._advance(now_ms)
        return self._sum

    def count(self, now_ms: int) -> int:
        """Number of samples (known or not) in the window at ``now_ms``."""
        self._advance(now_ms)
        return self._count

    def missing(self, now_ms: int) -> int:
        """Number of samples with unknown value in the window at ``now_ms``."""
        self._advance(now_ms)
        return self._missing

    def totals(self, now_ms: int) -> tuple[float, int, int]:
        """``(total, count, missing)`` at ``now_ms``."""
        self._advance(now_ms)
        return self._sum, self._count, self._missing

    def mean(self, now_ms: int) -> float | None:
        """Mean of the known values at ``now_ms``; None when there are none."""
        self._advance(now_ms)
        known = self._count - self._missing
        return self._sum / known if known else None

    def __len__(self) -> int:
        """Occupied buckets (memory use), as of the horizon."""
        return len(self._buckets)


class MultiSumWindow:
    """Several :class:`SumWindow` spans over one stream of samples, sharing their buckets.

    ``totals(span_ms, now_ms)`` answers exactly what a ``SumWindow(span_ms, bucket_ms)`` fed the
    same samples would (same window definition, horizon and late rules); a sample is added once,
    whatever the number of spans (liquidation windows of 60 s, 5 min and 1 h per key).
    ``late_dropped`` counts, like separate windows would, one drop per span a late sample missed.

    Args:
        spans_ms: window lengths, each a multiple of ``bucket_ms``.
        bucket_ms: bucket length (default 1 s).
    """

    __slots__ = ("_count", "_dqs", "_index", "_k", "_missing", "_n", "_now", "_sum", "bucket_ms", "late_accepted",
                 "late_dropped", "spans_ms")

    def __init__(self, spans_ms: Sequence[int], bucket_ms: int = 1000) -> None:
        spans = sorted(set(spans_ms))
        if not spans or bucket_ms <= 0 or any(s <= 0 or s % bucket_ms for s in spans):
            raise ValueError(f"spans_ms {spans_ms} must be positive multiples of bucket_ms ({bucket_ms})")
        self.spans_ms = tuple(spans)
        self.bucket_ms = bucket_ms
        self._n = [s // bucket_ms for s in spans]
        self._index = {s: j for j, s in enumerate(spans)}
        # one deque per span, shortest first; a bucket list is shared by every span that holds it
        self._dqs: list[deque[list[float]]] = [deque() for _ in spans]
        self._sum = [0.0] * len(spans)
        self._count = [0] * len(spans)
        self._missing = [0] * len(spans)
        self._now: int | None = None
        self._k: int | None = None  # bucket index of the horizon: evictions only happen when it moves
        self.late_accepted = 0
        self.late_dropped = 0

    def _evict(self, j: int, cutoff: int) -> None:
        dq = self._dqs[j]
        while dq and dq[0][0] <= cutoff:
            _, s, c, m = dq.popleft()
            self._sum[j] -= s
            self._count[j] -= int(c)
            self._missing[j] -= int(m)
        if not dq:
            self._sum[j] = 0.0  # no drift survives an empty window

    def _advance(self, now_ms: int) -> None:
        if self._now is not None and now_ms <= self._now:
            return
        self._now = now_ms
        k = now_ms // self.bucket_ms
        if k == self._k:
            return  # same bucket as the last move: every span's cutoff is unchanged, nothing more leaves
        self._k = k
        for j, n in enumerate(self._n):
            dq = self._dqs[j]
            if dq and dq[0][0] <= k - n:
                self._evict(j, k - n)

    def add(self, ts: int, value: float | None) -> bool:
        """Add one sample at event time ``ts`` (ms); False when it was too late for every span."""
        k = ts // self.bucket_ms
        now = self._now
        dqs = self._dqs
        if now is None or ts >= now:
            if now is None or ts > now:
                self._advance(ts)
            longest = dqs[-1]
            if longest and longest[-1][0] == k:
                bucket = longest[-1]
            else:
                bucket = [k, 0.0, 0, 0]
                for dq in dqs:
                    dq.append(bucket)
            spans: range | list[int] = range(len(dqs))
        else:
            now_k = now // self.bucket_ms
            spans = [j for j, n in enumerate(self._n) if k > now_k - n]
            self.late_dropped += len(self._n) - len(spans)
            if not spans:
                return False
            self.late_accepted += 1
            bucket = self._late_bucket(k, spans)
        bucket[2] += 1
        if value is None:
            bucket[3] += 1
            for j in spans:
                self._count[j] += 1
                self._missing[j] += 1
        else:
            bucket[1] += value
            for j in spans:
                self._count[j] += 1
                self._sum[j] += value
        return True

    def _late_bucket(self, k: int, spans: list[int]) -> list[float]:
        """The bucket of index ``k`` in the longest span, created and inserted in order where missing."""
        longest = self._dqs[spans[-1]]
        for b in reversed(longest):
            if b[0] == k:
                return b
            if b[0] < k:
                break
        bucket: list[float] = [k, 0.0, 0, 0]
        for j in spans:
            dq = self._dqs[j]
            i = len(dq)
            while i and dq[i - 1][0] > k:
                i -= 1
            dq.insert(i, bucket)
        return bucket

    def totals(self, span_ms: int, now_ms: int) -> tuple[float, int, int]:
        """``(total, count, missing)`` of one span at ``now_ms`` (KeyError for an untracked span)."""
        j = self._index[span_ms]
        self._advance(now_ms)
        return self._sum[j], self._count[j], self._missing[j]

    def __len__(self) -> int:
        """Occupied buckets of the longest span (memory use), as of the horizon."""
        return len(self._dqs[-1])


class RollingMean:
    """Sample mean over a long span of event time, in coarse buckets, in fixed typed arrays.

    Used for the 24 h average funding rate: every sample weighs the same (a
    venue that publishes every second weighs its seconds, not its settlements).
    Same window definition, horizon and late-value rules as :class:`SumWindow`,
    but stored as a ring of ``n = span_ms / bucket_ms`` slots in three flat
    arrays (24 bytes a slot: 35 kB for 24 h of 1-minute buckets, against
    ~215 kB as a deque of bucket lists), since a live funding stream fills
    every bucket.

    Args:
        span_ms: window length (default 24 h).
        bucket_ms: bucket length (default 1 min: 1440 slots for 24 h).
    """

    __slots__ = ("_count", "_counts", "_ids", "_k", "_now", "_sum", "_sums", "bucket_ms", "late_accepted",
                 "late_dropped", "n_buckets")

    def __init__(self, span_ms: int = 86_400_000, bucket_ms: int = 60_000) -> None:
        if bucket_ms <= 0 or span_ms <= 0 or span_ms % bucket_ms:
            raise ValueError(f"span_ms ({span_ms}) must be a positive multiple of bucket_ms ({bucket_ms})")
        self.bucket_ms = bucket_ms
        self.n_buckets = n = span_ms // bucket_ms
        self._ids = array("q", [-1]) * n  # bucket index held by each slot, -1 when empty
        self._sums = array("d", [0.0]) * n
        self._counts = array("q", [0]) * n
        self._k: int | None = None  # bucket index of the horizon
        self._now = -1  # the horizon, ms
        self._sum = 0.0
        self._count = 0
        self.late_accepted = 0
        self.late_dropped = 0

    def _advance(self, k: int) -> None:
        old = self._k
        if old is not None and k <= old:
            return
        self._k = k
        if old is None or self._count == 0:
            return
        n = self.n_buckets
        ids, sums, counts = self._ids, self._sums, self._counts
        # the window held buckets old-n+1 .. old; those up to k-n leave it (at most n of them)
        for i in range(old - n + 1, min(k - n, old) + 1):
            slot = i % n
            if ids[slot] == i:
                self._sum -= sums[slot]
                self._count -= counts[slot]
                ids[slot] = -1
        if self._count == 0:
            self._sum = 0.0  # no drift survives an empty window

    def add(self, ts: int, value: float) -> bool:
        """Add one sample at event time ``ts``; False when it was too late and dropped."""
        k = ts // self.bucket_ms
        if ts >= self._now:
            self._now = ts
            self._advance(k)
        elif self._k is not None and k <= self._k - self.n_buckets:
            self.late_dropped += 1
            return False
        else:
            self.late_accepted += 1
        slot = k % self.n_buckets
        if self._ids[slot] != k:  # empty, or a bucket that already left the window
            self._ids[slot] = k
            self._sums[slot] = 0.0
            self._counts[slot] = 0
        self._sums[slot] += value
        self._counts[slot] += 1
        self._sum += value
        self._count += 1
        return True

    def mean(self, now_ms: int) -> float | None:
        """Mean of the samples in the window at ``now_ms``, None when empty."""
        self._now = max(self._now, now_ms)
        self._advance(now_ms // self.bucket_ms)
        return self._sum / self._count if self._count else None

    def count(self, now_ms: int) -> int:
        """Samples in the window at ``now_ms``."""
        self._now = max(self._now, now_ms)
        self._advance(now_ms // self.bucket_ms)
        return self._count

    def __len__(self) -> int:
        """Occupied buckets, as of the horizon."""
        k = self._k
        if k is None:
            return 0
        return sum(1 for i in self._ids if i > k - self.n_buckets)


_NAN = math.nan


class SampleHistory:
    """Time-indexed samples of ``width`` float fields, for "value at or before t" lookups.

    Thinning: samples are kept at most one per ``resolution_ms`` bucket
    (``ts // resolution_ms``), the EARLIEST one seen in that bucket, so a
    lookup is never off by more than about one resolution step.

    Retention: everything newer than ``newest - span_ms`` plus the single
    newest sample at or before that edge (so ``at_or_before(newest - span_ms)``
    keeps an answer). Memory is at most ``span_ms / resolution_ms + 2`` samples,
    stored in flat arrays (24 bytes per sample for two fields).

    Out-of-order samples (REST seeding after live data) are inserted in place.

    Args:
        span_ms: how far back lookups must reach.
        resolution_ms: thinning step.
        width: number of float fields per sample (None is stored as NaN).
    """

    __slots__ = ("_head", "_ts", "_vals", "resolution_ms", "span_ms", "width")

    def __init__(self, span_ms: int, resolution_ms: int, width: int = 1) -> None:
        if span_ms <= 0 or resolution_ms <= 0 or width < 1:
            raise ValueError("span_ms, resolution_ms and width must be positive")
        self.span_ms = span_ms
        self.resolution_ms = resolution_ms
        self.width = width
        self._ts: array[int] = array("q")
        self._vals: array[float] = array("d")
        self._head = 0

    def __len__(self) -> int:
        """Samples kept."""
        return len(self._ts) - self._head

    @property
    def newest_ts(self) -> int | None:
        """ts of the newest kept sample."""
        return self._ts[-1] if len(self) else None

    @property
    def oldest_ts(self) -> int | None:
        """ts of the oldest kept sample."""
        return self._ts[self._head] if len(self) else None

    def add(self, ts: int, *values: float | None) -> bool:
        """Add a sample; False when thinning kept an earlier sample of the same bucket instead."""
        if len(values) != self.width:
            raise ValueError(f"expected {self.width} values, got {len(values)}")
        res = self.resolution_ms
        tss = self._ts
        empty = len(tss) == self._head
        if empty or ts > tss[-1]:
            if not empty and tss[-1] // res == ts // res:
                return False  # same bucket as the newest sample, which is earlier (the common case: no row built)
            tss.append(ts)
            self._vals.extend([_NAN if v is None else float(v) for v in values])
        else:
            row = [_NAN if v is None else float(v) for v in values]
            pos = bisect_right(tss, ts, self._head)
            if pos > self._head and tss[pos - 1] // res == ts // res:
                return False  # an earlier (or equal) sample of this bucket is kept
            w = self.width
            if pos < len(tss) and tss[pos] // res == ts // res:
                tss[pos] = ts  # this one is earlier than the kept one: replace
                self._vals[pos * w : pos * w + w] = array("d", row)
            else:
                tss.insert(pos, ts)
                self._vals[pos * w : pos * w] = array("d", row)
        self._evict()
        return True

    def _evict(self) -> None:
        tss = self._ts
        edge = tss[-1] - self.span_ms
        head = self._head
        # Drop the oldest while the next one is still at or before the edge.
        while head + 1 < len(tss) and tss[head + 1] <= edge:
            head += 1
        self._head = head
        # Compact once the dead prefix is an eighth of the arrays (and more than 16 samples): memory
        # stays within ~1.15× of the live samples, at an amortized cost of ~8 moves per eviction.
        if head > 16 and head * 8 > len(tss):
            del tss[:head]
            del self._vals[: head * self.width]
            self._head = 0

    def at_or_before(self, t: int, max_age_ms: int | None = None) -> tuple[int, tuple[float | None, ...]] | None:
        """The newest sample with ``ts <= t`` (and ``ts >= t - max_age_ms`` when given), else None."""
        tss = self._ts
        pos = bisect_right(tss, t, self._head) - 1
        if pos < self._head:
            return None
        ts = tss[pos]
        if max_age_ms is not None and ts < t - max_age_ms:
            return None
        w = self.width
        vals = tuple(None if math.isnan(v) else v for v in self._vals[pos * w : pos * w + w])
        return ts, vals
