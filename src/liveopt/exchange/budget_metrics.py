"""Snapshots the rate-limit budget reports: per pool, per priority class, and overall.

Frozen msgspec structs built by ``BudgetScheduler.metrics``; they hold no behaviour.
"""

from __future__ import annotations

import msgspec

__all__ = ["BudgetMetrics", "HeaderReading", "PoolMetrics", "PriorityMetrics"]


class PriorityMetrics(msgspec.Struct, frozen=True, kw_only=True):
    """Counters of one priority class in one pool; weights are summed endpoint weights.

    ``rejected`` requests were refused on arrival (``try_acquire`` said no, or the deadline
    was already impossible); ``expired`` ones waited and then could not meet their deadline.
    Wait statistics cover granted requests (the last ``wait_samples`` for mean and p95).
    """

    priority: str
    queued: int
    queued_weight: int
    granted: int
    granted_weight: int
    rejected: int
    rejected_weight: int
    expired: int
    expired_weight: int
    cancelled: int
    wait_mean_ns: float
    wait_p95_ns: int
    wait_max_ns: int


class HeaderReading(msgspec.Struct, frozen=True, kw_only=True):
    """The last ``gw-ratelimit-*`` values received for a pool (None: never received)."""

    limit: int | None = None
    remaining: int | None = None
    reset_ms: int | None = None
    received_ns: int | None = None


class PoolMetrics(msgspec.Struct, frozen=True, kw_only=True):
    """State of one pool: ``tokens_available`` is the weight that could be granted now."""

    pool: str
    quota: int
    capacity: int
    target_utilisation: float
    tokens_available: int
    bucket_tokens: float
    window_weight: int
    blocked_until_ns: int | None
    server_remaining: int | None
    rate_limited: int
    last_headers: HeaderReading
    priorities: tuple[PriorityMetrics, ...]


class BudgetMetrics(msgspec.Struct, frozen=True, kw_only=True):
    """A snapshot of the whole budget at ``ts_ns`` (the budget's clock)."""

    ts_ns: int
    pools: tuple[PoolMetrics, ...]
    rate_limited: int
    unknown_endpoint_calls: int
    unknown_endpoints: tuple[str, ...]
    bad_header_values: int
