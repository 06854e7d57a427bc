"""The process-wide REST rate-limit budget for KuCoin's resource pools (kucoin-protocol.md 3.3).

``docs/exchange/rate-limits.md`` is the specification. Two layers:

* ``BudgetScheduler``: a synchronous core with an injected clock that decides every grant,
  expiry and rejection; it never sleeps, so tests drive it with simulated time.
* ``PingBudgetManager``: the async front end shared by every component of a process
  (``acquire`` before a request, ``record_response`` after it). It only waits for the times
  the core computes; it takes no decision of its own.

Each pool is modelled twice, and a request needs both: a token bucket refilled continuously
and pro rata (capacity = quota x target utilisation per window), and a log of the grants of
the last window whose sum may never pass that capacity. A bare bucket of capacity C and
refill C per window lets 2C through in one window (a full bucket, then its refill); the log
is what guarantees that no window ever carries more than the target.

Module layout: ``budget_config`` (settings, quotas, the endpoint weight table),
``budget_ledger`` (one pool's arithmetic), ``budget_scheduler`` (the synchronous core),
``budget_metrics`` and ``budget_errors`` (what it reports and raises); this module holds the
async front end and re-exports the public names of the others, so ``liveopt.exchange.budget``
stays the one import point.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Mapping

from liveopt.exchange.budget_config import (
    BACK_OFF_CODES,
    DEFAULT_BUDGET_CONFIG,
    ENDPOINT_WEIGHTS,
    FUTURES_POOL,
    FUTURES_QUOTA_BY_VIP,
    IP_WIDE_CODES,
    POOLS,
    PUBLIC_POOL,
    PUBLIC_QUOTA,
    BudgetConfig,
    EndpointCost,
    EndpointTable,
)
from liveopt.exchange.budget_errors import BudgetCapacityError, BudgetDeadlineError, BudgetError
from liveopt.exchange.budget_metrics import (
    BudgetMetrics,
    HeaderReading,
    PoolMetrics,
    PriorityMetrics,
)
from liveopt.exchange.budget_scheduler import BudgetScheduler, BudgetTicket, TicketState
from liveopt.exchange.priority import Priority
from liveopt.units import NS_PER_SECOND

__all__ = [
    "BACK_OFF_CODES",
    "DEFAULT_BUDGET_CONFIG",
    "ENDPOINT_WEIGHTS",
    "FUTURES_POOL",
    "FUTURES_QUOTA_BY_VIP",
    "IP_WIDE_CODES",
    "POOLS",
    "PUBLIC_POOL",
    "PUBLIC_QUOTA",
    "BudgetCapacityError",
    "BudgetConfig",
    "BudgetDeadlineError",
    "BudgetError",
    "BudgetMetrics",
    "BudgetScheduler",
    "BudgetTicket",
    "EndpointCost",
    "EndpointTable",
    "HeaderReading",
    "PingBudgetManager",
    "PoolMetrics",
    "PriorityMetrics",
    "TicketState",
]


class PingBudgetManager:
    """The rate-limit budget shared by every component of a process (one event loop).

    ``acquire`` waits until the request's pool can afford it and every request ranked ahead
    has gone; ``record_response`` feeds back each reply. All decisions are the
    ``BudgetScheduler``'s; this class only sleeps until the instants it computes, and wakes
    its waiters whenever a call changes the plan.

    Parameters
    ----------
    config : BudgetConfig
        The budget's settings.
    clock_ns : callable
        Monotonic clock in integer nanoseconds (inject a fake one in tests).
    sleep : callable
        ``await sleep(seconds)``; inject a virtual-time sleep in tests.
    """

    def __init__(self, config: BudgetConfig = DEFAULT_BUDGET_CONFIG, *,
                 clock_ns: Callable[[], int] = time.monotonic_ns,
                 sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> None:
        self._core = BudgetScheduler(config, clock_ns)
        self._clock_ns = clock_ns
        self._sleep = sleep
        self._event: asyncio.Event | None = None
        self._event_loop: asyncio.AbstractEventLoop | None = None

    @property
    def scheduler(self) -> BudgetScheduler:
        """The synchronous core (for inspection and tests)."""
        return self._core

    def cost(self, endpoint: str) -> tuple[str, int]:
        """Return ``(pool, weight)`` for an endpoint key such as ``"POST /api/v1/orders"``."""
        cost = self._core.cost(endpoint)
        return cost.pool, cost.weight

    async def acquire(self, endpoint: str, priority: Priority, *,
                      timeout_s: float | None = None) -> None:
        """Wait until ``endpoint`` may be sent at ``priority``.

        Raises
        ------
        BudgetDeadlineError
            When it cannot be granted within ``timeout_s``: at once if that is already
            certain, otherwise as soon as it becomes so, never after the deadline.
        BudgetCapacityError
            When the endpoint's weight exceeds its pool's usable capacity.
        ValueError
            Naming the argument, for a malformed endpoint, priority or timeout.
        """
        deadline_ns = None
        if timeout_s is not None:
            if not (isinstance(timeout_s, int | float) and math.isfinite(timeout_s)
                    and timeout_s >= 0):
                raise ValueError(f"timeout_s: expected a finite number >= 0 or None, "
                                 f"got {timeout_s!r}")
            deadline_ns = self._core.now() + round(timeout_s * NS_PER_SECOND)
        try:
            ticket = self._core.submit(endpoint, priority, deadline_ns=deadline_ns)
        finally:
            self._settle()
        try:
            while ticket.pending:
                changed = self._change_event()
                projected = ticket.projected_ns
                delay_ns = 0 if projected is None else max(0, projected - self._core.now())
                await self._wait(delay_ns, changed)
                self._settle()
        except asyncio.CancelledError:
            self._core.cancel(ticket)
            self._settle()
            raise
        if ticket.error is not None:
            raise ticket.error

    def try_acquire(self, endpoint: str, priority: Priority) -> bool:
        """Take the budget now if possible, without waiting or passing anyone ranked ahead."""
        granted = self._core.try_acquire(endpoint, priority)
        self._settle()
        return granted

    def record_response(self, endpoint: str, status: int, headers: Mapping[str, str],
                        code: str | None = None) -> None:
        """Learn from a reply: HTTP status, ``gw-ratelimit-*`` headers and envelope code."""
        self._core.record_response(endpoint, status, headers, code)
        self._settle()

    def metrics(self) -> BudgetMetrics:
        """Return a frozen snapshot of the budget."""
        return self._core.metrics()

    def _settle(self) -> None:
        if self._core.poll() and self._event is not None:
            self._event.set()  # wake every waiter; each re-reads its ticket
            self._event = None

    def _change_event(self) -> asyncio.Event:
        loop = asyncio.get_running_loop()
        if self._event is None or self._event_loop is not loop:
            self._event = asyncio.Event()
            self._event_loop = loop
        return self._event

    async def _wait(self, delay_ns: int, changed: asyncio.Event) -> None:
        sleeper = asyncio.ensure_future(self._sleep(delay_ns / NS_PER_SECOND))
        watcher = asyncio.ensure_future(changed.wait())
        try:
            await asyncio.wait((sleeper, watcher), return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            watcher.cancel()
