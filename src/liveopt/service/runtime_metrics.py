"""Runtime measurements of the daemon: tick-to-decision latency, tick rate, memory.

Every reading takes its time from the caller (an injected clock), so tests drive them
with exact numbers.
"""

from __future__ import annotations

import bisect
import os
import resource
from collections import deque
from collections.abc import Callable, Sequence

import msgspec
import numpy as np

from liveopt.service.views import LatencyHistogram
from liveopt.units import NS_PER_MS, NS_PER_SECOND

#: Default histogram bounds in milliseconds (the last bucket, +inf, is implied).
DEFAULT_LATENCY_BOUNDS_MS: tuple[float, ...] = (
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 1000.0,
)


class LatencyRecorder:
    """Tick-to-decision latencies: a cumulative histogram (Prometheus form) and the
    percentiles of the most recent ``window`` observations.

    Percentiles come from the recent observations themselves, not from bucket
    interpolation, so p99 is exact for the window and follows changes in load.
    """

    def __init__(self, bounds_ms: Sequence[float] = DEFAULT_LATENCY_BOUNDS_MS,
                 window: int = 4096) -> None:
        bounds = [float(b) for b in bounds_ms]
        if not bounds or any(b <= 0 for b in bounds) or bounds != sorted(set(bounds)):
            raise ValueError("bounds_ms: must be positive and strictly increasing")
        if window < 1:
            raise ValueError(f"window: {window} must be >= 1")
        self._bounds = bounds
        self._buckets = [0] * (len(bounds) + 1)  # per bucket, not cumulative
        self._sum_ms = 0.0
        self._count = 0
        self._recent: deque[float] = deque(maxlen=window)

    def observe(self, latency_ns: int, times: int = 1) -> None:
        """Record ``times`` observations of ``latency_ns`` (negative readings count as 0)."""
        ms = max(latency_ns, 0) / NS_PER_MS
        self._buckets[bisect.bisect_left(self._bounds, ms)] += times
        self._sum_ms += ms * times
        self._count += times
        self._recent.append(ms)

    @property
    def count(self) -> int:
        return self._count

    def percentile_ms(self, q: float) -> float | None:
        """The ``q``-th percentile (0-100) of the recent observations; None before any."""
        if not self._recent:
            return None
        return float(np.percentile(np.fromiter(self._recent, float), q))

    def histogram(self) -> LatencyHistogram:
        """The cumulative histogram since the start."""
        counts, total = [], 0
        for n in self._buckets:
            total += n
            counts.append(total)
        return LatencyHistogram(le_ms=[*self._bounds, float("inf")], counts=counts,
                                sum_ms=self._sum_ms, count=self._count)


class RateMeter:
    """Events per second over a sliding window of ``window_s`` seconds."""

    def __init__(self, window_s: float = 10.0) -> None:
        if not window_s > 0:
            raise ValueError(f"window_s: {window_s} must be > 0")
        self._window_ns = int(window_s * NS_PER_SECOND)
        self._marks: deque[tuple[int, int]] = deque()
        self._in_window = 0
        self._first_ns: int | None = None

    def add(self, count: int, now_ns: int) -> None:
        """Record ``count`` events at ``now_ns``."""
        if self._first_ns is None:
            self._first_ns = now_ns
        self._marks.append((now_ns, count))
        self._in_window += count
        self._expire(now_ns)

    def rate(self, now_ns: int) -> float:
        """Events per second over the window (over the time since the first event while
        less than a window has passed)."""
        self._expire(now_ns)
        if self._first_ns is None:
            return 0.0
        span = min(self._window_ns, max(now_ns - self._first_ns, 0))
        return self._in_window * NS_PER_SECOND / span if span > 0 else 0.0

    def _expire(self, now_ns: int) -> None:
        cutoff = now_ns - self._window_ns
        while self._marks and self._marks[0][0] <= cutoff:
            self._in_window -= self._marks.popleft()[1]


class MemoryReading(msgspec.Struct, frozen=True, kw_only=True):
    """Resident memory of this process and the machine's total RAM, in bytes."""

    rss_bytes: int
    total_bytes: int

    @property
    def rss_mb(self) -> float:
        return self.rss_bytes / 2**20

    @property
    def percent(self) -> float:
        return 100.0 * self.rss_bytes / self.total_bytes if self.total_bytes > 0 else 0.0


MemoryReader = Callable[[], MemoryReading]


def read_process_memory() -> MemoryReading:
    """This process's resident set (``/proc/self/status`` VmRSS, else the peak RSS from
    ``resource``) against the machine's RAM (``/proc/meminfo``, else ``sysconf``)."""
    rss = _proc_kib("/proc/self/status", "VmRSS:")
    if rss is None:
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    total = _proc_kib("/proc/meminfo", "MemTotal:")
    if total is None:
        try:
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 1024
        except (ValueError, OSError):
            total = 0
    return MemoryReading(rss_bytes=int(rss) * 1024, total_bytes=int(total) * 1024)


def _proc_kib(path: str, key: str) -> int | None:
    try:
        with open(path, encoding="ascii") as handle:
            for line in handle:
                if line.startswith(key):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None
