"""Latency histogram, tick rate and memory reading."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liveopt.service.runtime_metrics import (
    LatencyRecorder,
    MemoryReading,
    RateMeter,
    read_process_memory,
)
from liveopt.units import NS_PER_MS


@settings(max_examples=60, deadline=None)
@given(latencies=st.lists(st.integers(0, 5_000 * NS_PER_MS), min_size=1, max_size=300))
def test_the_histogram_is_cumulative_and_counts_every_observation(latencies):
    recorder = LatencyRecorder(bounds_ms=(0.1, 1.0, 10.0, 100.0))
    for ns in latencies:
        recorder.observe(ns)
    hist = recorder.histogram()
    ms = np.array(latencies) / NS_PER_MS
    assert hist.count == len(latencies) == hist.counts[-1]
    assert hist.sum_ms == pytest.approx(ms.sum())
    for le, count in zip(hist.le_ms, hist.counts, strict=True):
        assert count == np.count_nonzero(ms <= le)
    assert math.isinf(hist.le_ms[-1])


def test_percentiles_come_from_the_recent_window():
    recorder = LatencyRecorder(window=100)
    assert recorder.percentile_ms(50) is None
    for _ in range(100):
        recorder.observe(50 * NS_PER_MS)
    for k in range(100):  # the window now holds only these
        recorder.observe(k * NS_PER_MS)
    assert recorder.percentile_ms(50) == pytest.approx(np.percentile(np.arange(100.0), 50))
    assert recorder.percentile_ms(99) == pytest.approx(np.percentile(np.arange(100.0), 99))
    assert recorder.count == 200


def test_bad_bounds_are_refused():
    with pytest.raises(ValueError, match="bounds_ms"):
        LatencyRecorder(bounds_ms=(1.0, 0.5))
    with pytest.raises(ValueError, match="window"):
        LatencyRecorder(window=0)


def test_the_rate_covers_the_sliding_window_only():
    s = 1_000_000_000
    meter = RateMeter(window_s=10.0)
    assert meter.rate(0) == 0.0
    meter.add(100, 0)
    meter.add(100, 5 * s)
    assert meter.rate(5 * s) == pytest.approx(200 / 5)  # less than a window so far
    meter.add(300, 12 * s)
    # The first mark (t=0) left the window at t=10 s.
    assert meter.rate(12 * s) == pytest.approx(400 / 10)
    assert meter.rate(30 * s) == 0.0


def test_memory_reading_of_this_process_is_plausible():
    reading = read_process_memory()
    assert 0 < reading.rss_bytes < reading.total_bytes
    assert 0.0 < reading.percent < 100.0
    assert MemoryReading(rss_bytes=1, total_bytes=0).percent == 0.0
