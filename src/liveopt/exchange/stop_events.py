"""What a stop coordinator is told and what it reports: config, states, events, metrics.

Owns ``StopCoordinatorConfig`` (timings and limits), ``StopState`` (the protection state
machine's states), ``PlacedStop`` (a stop known to be on the exchange), the frozen msgspec
events sent to the injected sink (``StopEvent``) and the ``StopMetrics`` snapshot.
"""

from __future__ import annotations

import enum

import msgspec

from liveopt.exchange.stop_types import STOP_PRICE_TYPES, _check_choice, _check_positive_int

__all__ = [
    "EmergencyClose",
    "PlacedStop",
    "StopCancelled",
    "StopCoordinatorConfig",
    "StopEvent",
    "StopMetrics",
    "StopPlaced",
    "StopReplaceFailed",
    "StopState",
    "StopStateChanged",
]


# --------------------------------------------------------------------------- config, state


class StopCoordinatorConfig(msgspec.Struct, frozen=True, kw_only=True,
                            forbid_unknown_fields=True):
    """Timings and limits of a :class:`StopReplaceCoordinator`.

    Parameters
    ----------
    debounce_ns : int
        An update closer than ``min_move_ticks`` to the last accepted target, within this
        long after it, is skipped (1.5 s, the origin's CX StopManager value).
    min_move_ticks : int
        See ``debounce_ns`` (2 ticks); 0 turns debouncing off.
    max_consecutive_failures : int
        Consecutive failed placements (or lookups) before the emergency close (5).
    retry_base_ns, retry_max_ns : int
        Back-off after the k-th consecutive failure: ``min(base * 2**(k-1), max)``,
        then jittered (1 s and 30 s, as the origin).
    retry_jitter : float
        The back-off is multiplied by a uniform factor in ``[1 - j, 1 + j]`` (0.2).
    rate_limited_min_delay_ns : int
        Floor of the back-off after a 429 (10 s: KuCoin blocks an endpoint for 10 s on
        code 200002, so an earlier retry is wasted weight); a longer reset announced by the
        exchange is honoured, up to ``retry_max_ns``.
    max_cancel_attempts : int
        Attempts to cancel a superseded stop before it is left to the reconciler (5).
    emergency_attempts : int
        Attempts of the emergency close itself (3).
    emergency_while_protected : bool
        Whether failures to *move* a stop (an older stop still protects the position) also
        lead to the emergency close (True); False keeps retrying at ``retry_max_ns``.
    call_timeout_ns : int or None
        A gateway call not answered within this is abandoned as a timeout whose outcome is
        unknown (35 s: above the REST client's own 3 attempts of 10 s, so its retries are
        not cut short); None waits for the gateway's own timeouts.
    stop_price_type : {"MP", "TP", "IP"}
        Trigger price of the stops: mark price by default (the origin's CX requirement).
    """

    debounce_ns: int = 1_500_000_000
    min_move_ticks: int = 2
    max_consecutive_failures: int = 5
    retry_base_ns: int = 1_000_000_000
    retry_max_ns: int = 30_000_000_000
    retry_jitter: float = 0.2
    rate_limited_min_delay_ns: int = 10_000_000_000
    max_cancel_attempts: int = 5
    emergency_attempts: int = 3
    emergency_while_protected: bool = True
    call_timeout_ns: int | None = 35_000_000_000
    stop_price_type: str = "MP"

    def __post_init__(self) -> None:
        owner = "stop coordinator config"
        for name in ("debounce_ns", "min_move_ticks", "retry_base_ns"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{owner}: {name} must be an integer >= 0, got {value!r}")
        for name in ("max_consecutive_failures", "max_cancel_attempts", "emergency_attempts",
                     "retry_max_ns"):
            _check_positive_int(owner, name, getattr(self, name))
        if self.retry_base_ns > self.retry_max_ns:
            raise ValueError(f"{owner}: retry_base_ns must not exceed retry_max_ns")
        if not 0 <= self.rate_limited_min_delay_ns <= self.retry_max_ns:
            raise ValueError(f"{owner}: rate_limited_min_delay_ns must be in "
                             f"[0, retry_max_ns], got {self.rate_limited_min_delay_ns!r}")
        if not 0.0 <= self.retry_jitter < 1.0:
            raise ValueError(f"{owner}: retry_jitter must be in [0, 1), "
                             f"got {self.retry_jitter!r}")
        if self.call_timeout_ns is not None:
            _check_positive_int(owner, "call_timeout_ns", self.call_timeout_ns)
        _check_choice(owner, "stop_price_type", self.stop_price_type, STOP_PRICE_TYPES)


class StopState(enum.StrEnum):
    """Protection state of one position.

    PROTECTED: a confirmed stop at the latest target. UPDATING: a confirmed (older) stop
    protects the position while a new one is placed. UNPROTECTED: no confirmed stop (before
    the first one, after a failed placement, or when the reconciler found it missing).
    RECOVERING: no confirmed stop and a placement is under way. CRITICAL: the emergency
    close was sent; the coordinator places nothing more.
    """

    PROTECTED = "PROTECTED"
    UPDATING = "UPDATING"
    UNPROTECTED = "UNPROTECTED"
    RECOVERING = "RECOVERING"
    CRITICAL = "CRITICAL"


class PlacedStop(msgspec.Struct, frozen=True, kw_only=True):
    """A stop the coordinator knows to be on the exchange."""

    order_id: str
    client_oid: str
    revision: int
    side: str
    size: int
    stop: str
    stop_price: str
    ticks: int


# --------------------------------------------------------------------------- events


class _StopEventBase(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    symbol: str
    position_id: str
    ts_event: int
    ts_init: int


class StopStateChanged(_StopEventBase, frozen=True, kw_only=True):
    """The coordinator moved from ``previous`` to ``state``; ``reason`` says why."""

    previous: StopState
    state: StopState
    reason: str


class StopPlaced(_StopEventBase, frozen=True, kw_only=True):
    """A stop is confirmed on the exchange (``found_existing``: an earlier, timed-out attempt
    of the same revision had placed it, found through the duplicate-clientOid answer)."""

    order_id: str
    client_oid: str
    revision: int
    side: str
    size: int
    stop: str
    stop_price: str
    found_existing: bool


class StopCancelled(_StopEventBase, frozen=True, kw_only=True):
    """A superseded stop is gone (``already_gone``: the exchange said it was done)."""

    order_id: str
    client_oid: str
    already_gone: bool
    reason: str


class StopReplaceFailed(_StopEventBase, frozen=True, kw_only=True):
    """A gateway call failed; ``retry_in_ns`` is the back-off before the next attempt
    (0 when the failure is left to a later pass or to the reconciler)."""

    operation: str
    client_oid: str
    revision: int
    attempt: int
    consecutive_failures: int
    error: str
    rate_limited: bool
    retry_in_ns: int


class EmergencyClose(_StopEventBase, frozen=True, kw_only=True):
    """One attempt of the reduce-only market close after repeated stop failures."""

    client_oid: str
    order_id: str
    ok: bool
    attempt: int
    consecutive_failures: int
    error: str


StopEvent = StopStateChanged | StopPlaced | StopCancelled | StopReplaceFailed | EmergencyClose


class StopMetrics(msgspec.Struct, frozen=True, kw_only=True):
    """Counters of one coordinator (a snapshot)."""

    state: StopState
    revision: int
    placements: int
    cancels: int
    place_failures: int
    cancel_failures: int
    rate_limited: int
    timeouts: int
    duplicate_lookups: int
    debounced: int
    superseded: int
    rejected: int
    recoveries: int
    emergency_closes: int
    consecutive_failures: int
    stale_stops: int
    sink_errors: int
