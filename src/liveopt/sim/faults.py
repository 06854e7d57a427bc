"""Fault injection: the decisions behind each ``FaultConfig`` switch, and their counters.

``FaultInjector`` is pure: the server passes the time and the injector draws from its own
seeded random source, so a run with the same seed injects the same faults. The switches
can be replaced while the simulator runs (``RunningSim.set_faults``).
"""

from __future__ import annotations

import random

import msgspec

from liveopt.sim.config import FaultConfig
from liveopt.units import NS_PER_SECOND


class FaultCounts(msgspec.Struct, frozen=True):
    """How many times each fault has been injected so far."""

    connections_dropped: int = 0
    frames_delayed: int = 0
    rest_429_bursts: int = 0
    frames_malformed: int = 0
    sequence_gaps: int = 0
    order_failures: int = 0


class FaultInjector:
    """Decides, per opportunity, whether a fault happens.

    Periodic faults (connection drops, 429 bursts) are measured from ``start_ns``: drops at
    ``start + k*N`` for k >= 1, bursts during ``[start + k*N, start + k*N + M)`` for k >= 1.
    """

    def __init__(self, config: FaultConfig, rng: random.Random, start_ns: int) -> None:
        self._config = config
        self._rng = rng
        self._start_ns = start_ns
        self._next_drop_ns = self._first_drop(start_ns)
        self._counts: dict[str, int] = dict.fromkeys(FaultCounts.__struct_fields__, 0)
        self._last_burst_index = 0

    @property
    def config(self) -> FaultConfig:
        """The switches in force."""
        return self._config

    def reconfigure(self, config: FaultConfig, now_ns: int) -> None:
        """Replace the switches; periodic faults restart their period from ``now_ns``."""
        self._config = config
        self._start_ns = now_ns
        self._next_drop_ns = self._first_drop(now_ns)
        self._last_burst_index = 0

    def counts(self) -> FaultCounts:
        """A snapshot of the counters."""
        return FaultCounts(**self._counts)

    def _first_drop(self, now_ns: int) -> int | None:
        every = self._config.drop_connections_every_s
        return None if every <= 0 else now_ns + int(every * NS_PER_SECOND)

    def connections_to_drop(self, now_ns: int) -> bool:
        """True once per period when the connection-drop switch is on."""
        if self._next_drop_ns is None or now_ns < self._next_drop_ns:
            return False
        every_ns = int(self._config.drop_connections_every_s * NS_PER_SECOND)
        while self._next_drop_ns <= now_ns:
            self._next_drop_ns += every_ns
        return True

    def count_dropped(self, connections: int) -> None:
        """Record connections closed by the drop switch."""
        self._counts["connections_dropped"] += connections

    def in_429_burst(self, now_ns: int) -> bool:
        """True while a forced-429 burst is running."""
        every, duration = self._config.burst_429_every_s, self._config.burst_429_duration_s
        if every <= 0 or duration <= 0:
            return False
        elapsed = now_ns - self._start_ns
        every_ns = int(every * NS_PER_SECOND)
        index, offset = divmod(elapsed, every_ns)
        if index < 1 or offset >= int(duration * NS_PER_SECOND):
            return False
        if index != self._last_burst_index:
            self._last_burst_index = index
            self._counts["rest_429_bursts"] += 1
        return True

    def frame_delay_s(self) -> float:
        """How long to hold the next market-data frame (0 = send at once)."""
        delay = self._config.frame_delay_ms
        if delay > 0:
            self._counts["frames_delayed"] += 1
        return delay / 1000.0

    def corrupt_frame(self) -> bool:
        """True when the next market-data frame should be sent malformed."""
        rate = self._config.malformed_frame_rate
        if rate > 0 and self._rng.random() < rate:
            self._counts["frames_malformed"] += 1
            return True
        return False

    def skip_sequence(self) -> bool:
        """True when the next sequenced frame should be withheld (a gap)."""
        rate = self._config.sequence_gap_rate
        if rate > 0 and self._rng.random() < rate:
            self._counts["sequence_gaps"] += 1
            return True
        return False

    def fail_order(self) -> int | None:
        """The HTTP status an order request should fail with, or None to serve it."""
        rate = self._config.order_failure_rate
        if rate > 0 and (rate >= 1.0 or self._rng.random() < rate):
            self._counts["order_failures"] += 1
            return self._config.order_failure_status
        return None


def malformed(frame: bytes) -> bytes:
    """A deterministic corruption of a frame: its first half, so it is not valid JSON."""
    return frame[: max(1, len(frame) // 2)]
