"""The synchronous core of the rate-limit budget: ``BudgetScheduler`` and its tickets.

It decides every grant, expiry and rejection at an injected clock and never sleeps, so tests
drive it with simulated time; ``PingBudgetManager`` (``budget.py``) is its async front end.
Requests queue per pool in aging-key order (``TicketState``, ``BudgetTicket``); each pool's
arithmetic is a ``_PoolLedger`` (``budget_ledger.py``).
"""

from __future__ import annotations

import bisect
import enum
import logging
from collections import deque
from collections.abc import Callable, Mapping

from liveopt.exchange.budget_config import (
    BACK_OFF_CODES,
    IP_WIDE_CODES,
    POOLS,
    BudgetConfig,
    EndpointCost,
    EndpointTable,
    _split_endpoint,
)
from liveopt.exchange.budget_errors import BudgetCapacityError, BudgetDeadlineError, BudgetError
from liveopt.exchange.budget_ledger import _BPS, _PoolLedger
from liveopt.exchange.budget_metrics import (
    BudgetMetrics,
    HeaderReading,
    PoolMetrics,
    PriorityMetrics,
)
from liveopt.exchange.priority import Priority
from liveopt.units import NS_PER_MS, NS_PER_SECOND

__all__ = ["BudgetScheduler", "BudgetTicket", "TicketState"]

# The records keep the name of the public module (log configuration filters on it).
log = logging.getLogger("liveopt.exchange.budget")

_MAX_UNKNOWN_KEYS = 64  # distinct unknown endpoints remembered by name (all are counted)


class TicketState(enum.Enum):
    """Where a request stands in the budget."""

    PENDING = "pending"
    GRANTED = "granted"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class BudgetTicket:
    """The scheduler's handle on one queued request (mutable, owned by the scheduler).

    ``key_ns`` orders the queue: ``submitted_ns + priority * aging_ns`` (the aging rule).
    ``projected_ns`` is the grant instant the scheduler currently expects.
    """

    __slots__ = ("deadline_ns", "endpoint", "error", "finished_ns", "finished_seq", "key_ns",
                 "pool", "priority", "projected_ns", "seq", "state", "submitted_ns", "weight")

    def __init__(self, endpoint: str, priority: Priority, pool: str, weight: int,
                 submitted_ns: int, deadline_ns: int | None, key_ns: int, seq: int) -> None:
        self.endpoint = endpoint
        self.priority = priority
        self.pool = pool
        self.weight = weight
        self.submitted_ns = submitted_ns
        self.deadline_ns = deadline_ns
        self.key_ns = key_ns
        self.seq = seq
        self.state = TicketState.PENDING
        self.projected_ns: int | None = None
        self.finished_ns: int | None = None
        self.finished_seq: int | None = None
        self.error: BudgetError | None = None

    @property
    def pending(self) -> bool:
        """Whether the request is still waiting."""
        return self.state is TicketState.PENDING

    def __repr__(self) -> str:
        return (f"BudgetTicket({self.endpoint!r}, {self.priority.name}, {self.state.value}, "
                f"weight={self.weight}, key_ns={self.key_ns}, projected_ns={self.projected_ns})")


class _ClassStats:
    __slots__ = ("cancelled", "expired", "expired_weight", "granted", "granted_weight",
                 "rejected", "rejected_weight", "wait_max", "waits")

    def __init__(self, samples: int) -> None:
        self.granted = self.granted_weight = 0
        self.rejected = self.rejected_weight = 0
        self.expired = self.expired_weight = 0
        self.cancelled = 0
        self.wait_max = 0
        self.waits: deque[int] = deque(maxlen=samples)


class BudgetScheduler:
    """The synchronous core: decides grants, expiries and rejections at ``clock_ns()``.

    It never sleeps. A request is submitted (``submit``) and then granted by the scheduler
    itself, inside any call, at the first instant its pool can afford it and every request
    ahead of it (smaller aging key) has been granted; ``poll`` settles the current instant.

    Parameters
    ----------
    config : BudgetConfig
        The budget's settings.
    clock_ns : callable
        Monotonic clock in integer nanoseconds.
    """

    def __init__(self, config: BudgetConfig, clock_ns: Callable[[], int]) -> None:
        self._config = config
        self._clock_ns = clock_ns
        self._table = EndpointTable(config)
        self._now = clock_ns()
        self._ledgers = {pool: _PoolLedger(config, config.quota(pool), self._now)
                         for pool in POOLS}
        self._queues: dict[str, list[tuple[int, int, BudgetTicket]]] = {p: [] for p in POOLS}
        self._stats = {(pool, priority): _ClassStats(config.wait_samples)
                       for pool in POOLS for priority in Priority}
        self._rate_limited = dict.fromkeys(POOLS, 0)
        self._headers = {pool: HeaderReading() for pool in POOLS}
        self._unknown_calls = 0
        self._unknown_keys: dict[str, int] = {}
        self._bad_headers = 0
        self._seq = 0
        self._changed = False

    @property
    def config(self) -> BudgetConfig:
        """The settings this scheduler runs with."""
        return self._config

    def now(self) -> int:
        """Read the clock, never going backwards."""
        self._now = max(self._now, self._clock_ns())
        return self._now

    def cost(self, endpoint: str) -> EndpointCost:
        """Return the endpoint's cost (the documented default when it is unknown)."""
        return self._table.lookup(endpoint) or self._table.unknown

    def _charge(self, endpoint: str) -> EndpointCost:
        cost = self._table.lookup(endpoint)
        if cost is not None:
            return cost
        self._unknown_calls += 1
        method, segments = _split_endpoint(endpoint)
        key = f"{method} /{'/'.join(segments)}"
        if key not in self._unknown_keys and len(self._unknown_keys) < _MAX_UNKNOWN_KEYS:
            self._unknown_keys[key] = 0
            log.warning("rate-limit budget: %s is not in the weight table; charged %d to the "
                        "%s pool", key, self._table.unknown.weight, self._table.unknown.pool)
        if key in self._unknown_keys:
            self._unknown_keys[key] += 1
        return self._table.unknown

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def submit(self, endpoint: str, priority: Priority, *,
               deadline_ns: int | None = None) -> BudgetTicket:
        """Queue a request; it may be granted before this returns.

        Raises
        ------
        BudgetDeadlineError
            At once, when the deadline cannot be met given the requests ahead.
        BudgetCapacityError
            When the weight exceeds the pool's usable capacity.
        ValueError
            Naming the argument, for a malformed endpoint or priority.
        """
        priority = _as_priority(priority)
        cost = self._charge(endpoint)
        now = self.now()
        ledger = self._ledgers[cost.pool]
        ledger.advance(now)
        stats = self._stats[(cost.pool, priority)]
        if cost.weight > ledger.max_capacity():
            stats.rejected += 1
            stats.rejected_weight += cost.weight
            raise BudgetCapacityError(endpoint, priority, cost.pool, cost.weight,
                                      ledger.max_capacity())
        ticket = BudgetTicket(endpoint, priority, cost.pool, cost.weight, now, deadline_ns,
                              now + int(priority) * self._config.aging_ns, self._next_seq())
        bisect.insort(self._queues[cost.pool], (ticket.key_ns, ticket.seq, ticket))
        self._changed = True
        self._project(cost.pool, now, newcomer=ticket)
        if ticket.error is not None:
            raise ticket.error
        return ticket

    def try_acquire(self, endpoint: str, priority: Priority) -> bool:
        """Grant at once if the pool can afford it now without passing a request that
        ranks ahead (smaller aging key); otherwise refuse (counted as rejected)."""
        priority = _as_priority(priority)
        cost = self._charge(endpoint)
        now = self.now()
        self._project(cost.pool, now)
        ledger = self._ledgers[cost.pool]
        key = now + int(priority) * self._config.aging_ns
        queue = self._queues[cost.pool]
        stats = self._stats[(cost.pool, priority)]
        if (queue and queue[0][0] <= key) or not ledger.can_afford(cost.weight):
            stats.rejected += 1
            stats.rejected_weight += cost.weight
            return False
        ledger.consume(now, cost.weight)
        stats.granted += 1
        stats.granted_weight += cost.weight
        stats.waits.append(0)
        self._next_seq()
        self._changed = True
        self._project(cost.pool, now)
        return True

    def cancel(self, ticket: BudgetTicket) -> None:
        """Withdraw a pending request (its waiter went away); no-op once it is settled."""
        if not ticket.pending:
            return
        queue = self._queues[ticket.pool]
        queue.pop(bisect.bisect_left(queue, (ticket.key_ns, ticket.seq)))
        now = self.now()
        self._finish(ticket, TicketState.CANCELLED, now)
        self._stats[(ticket.pool, ticket.priority)].cancelled += 1
        self._project(ticket.pool, now)

    def poll(self) -> bool:
        """Grant and expire what is due now; return whether any request changed since the
        last poll (state or projected grant instant)."""
        now = self.now()
        for pool in POOLS:
            self._project(pool, now)
        changed, self._changed = self._changed, False
        return changed

    def next_wake_ns(self) -> int | None:
        """The earliest projected grant among pending requests (None when idle)."""
        heads = [queue[0][2].projected_ns for queue in self._queues.values() if queue]
        heads = [h for h in heads if h is not None]
        return min(heads) if heads else None

    def pending(self) -> int:
        """Number of requests waiting in all pools."""
        return sum(len(queue) for queue in self._queues.values())

    def record_response(self, endpoint: str, status: int, headers: Mapping[str, str],
                        code: str | int | None = None) -> None:
        """Learn from a reply: back off on 429-like replies, correct from the headers."""
        cost = self._table.lookup(endpoint) or self._table.unknown
        now = self.now()
        limit, remaining, reset_ms = self._read_headers(headers)
        if limit is not None or remaining is not None or reset_ms is not None:
            self._headers[cost.pool] = HeaderReading(limit=limit, remaining=remaining,
                                                     reset_ms=reset_ms, received_ns=now)
        window = self._config.window_ns
        # a reset beyond one window is not a quota window (the SDK fixture sends 1234567890)
        reset_ns = None if reset_ms is None else min(reset_ms * NS_PER_MS, window)
        code_text = None if code is None else str(code).strip()
        if status == 429 or code_text in BACK_OFF_CODES:
            pools = POOLS if code_text in IP_WIDE_CODES else (cost.pool,)
            block_ns = self._config.block_without_reset_ns if reset_ns is None else reset_ns
            for pool in pools:
                self._rate_limited[pool] += 1
                ledger = self._ledgers[pool]
                ledger.degrade(now)
                ledger.block(now, now + block_ns)
            log.warning("rate-limit budget: back-off reply to %s (HTTP %d, code %s); %s "
                        "blocked for %.3f s", endpoint, status, code_text, "/".join(pools),
                        block_ns / NS_PER_SECOND)
        elif limit is not None or remaining is not None:
            self._ledgers[cost.pool].correct(
                now, limit, remaining, now + (window if reset_ns is None else reset_ns),
                self._config.same_window_tolerance_ns)
        self._changed = True
        for pool in POOLS:
            self._project(pool, now)

    def _read_headers(self, headers: Mapping[str, str]) -> tuple[int | None, ...]:
        wanted = {"gw-ratelimit-limit": None, "gw-ratelimit-remaining": None,
                  "gw-ratelimit-reset": None}
        for name, value in headers.items():
            lowered = str(name).lower()
            if lowered in wanted:
                try:
                    number = int(str(value).strip())
                except ValueError:
                    number = -1
                if number < 0:
                    self._bad_headers += 1
                    log.debug("rate-limit budget: ignored header %s=%r", lowered, value)
                    continue
                wanted[lowered] = number
        return (wanted["gw-ratelimit-limit"], wanted["gw-ratelimit-remaining"],
                wanted["gw-ratelimit-reset"])

    def _project(self, pool: str, now: int, newcomer: BudgetTicket | None = None) -> None:
        # Walk the queue in key order on a copy of the ledger: each request's grant instant
        # is the first one at which it fits after every request ahead of it has been served.
        # A request whose instant passes its deadline leaves the queue (it would never run);
        # one whose instant is now is granted on the real ledger.
        ledger = self._ledgers[pool]
        ledger.advance(now)
        queue = self._queues[pool]
        if not queue:
            return
        plan = ledger.clone()
        t_prev = now
        kept: list[tuple[int, int, BudgetTicket]] = []
        for entry in queue:
            ticket = entry[2]
            at = plan.earliest(ticket.weight, t_prev)
            if at is None or (ticket.deadline_ns is not None and at > ticket.deadline_ns):
                self._fail(ticket, at, now, rejected=ticket is newcomer)
                continue
            plan.consume(at, ticket.weight)
            t_prev = at
            if at <= now:
                ledger.consume(now, ticket.weight)
                stats = self._stats[(pool, ticket.priority)]
                stats.granted += 1
                stats.granted_weight += ticket.weight
                wait = now - ticket.submitted_ns
                stats.waits.append(wait)
                stats.wait_max = max(stats.wait_max, wait)
                ticket.projected_ns = now
                self._finish(ticket, TicketState.GRANTED, now)
                continue
            if ticket.projected_ns != at:
                ticket.projected_ns = at
                self._changed = True
            kept.append(entry)
        queue[:] = kept

    def _fail(self, ticket: BudgetTicket, earliest: int | None, now: int,
              rejected: bool) -> None:
        stats = self._stats[(ticket.pool, ticket.priority)]
        if rejected:
            stats.rejected += 1
            stats.rejected_weight += ticket.weight
        else:
            stats.expired += 1
            stats.expired_weight += ticket.weight
        if ticket.deadline_ns is None:  # the pool's quota shrank below the weight
            ticket.error = BudgetCapacityError(ticket.endpoint, ticket.priority, ticket.pool,
                                               ticket.weight,
                                               self._ledgers[ticket.pool].max_capacity())
        else:
            ticket.error = BudgetDeadlineError(ticket.endpoint, ticket.priority,
                                               ticket.deadline_ns, earliest, now)
        self._finish(ticket, TicketState.EXPIRED, now)

    def _finish(self, ticket: BudgetTicket, state: TicketState, now: int) -> None:
        ticket.state = state
        ticket.finished_ns = now
        ticket.finished_seq = self._next_seq()
        self._changed = True

    def metrics(self) -> BudgetMetrics:
        """Return a frozen snapshot of every pool."""
        now = self.now()
        pools = []
        for pool in POOLS:
            ledger = self._ledgers[pool]
            ledger.advance(now)
            queued = {priority: [0, 0] for priority in Priority}
            for _, _, ticket in self._queues[pool]:
                queued[ticket.priority][0] += 1
                queued[ticket.priority][1] += ticket.weight
            priorities = []
            for priority in Priority:
                stats = self._stats[(pool, priority)]
                waits = sorted(stats.waits)
                priorities.append(PriorityMetrics(
                    priority=priority.name, queued=queued[priority][0],
                    queued_weight=queued[priority][1],
                    granted=stats.granted, granted_weight=stats.granted_weight,
                    rejected=stats.rejected, rejected_weight=stats.rejected_weight,
                    expired=stats.expired, expired_weight=stats.expired_weight,
                    cancelled=stats.cancelled,
                    wait_mean_ns=sum(waits) / len(waits) if waits else 0.0,
                    wait_p95_ns=waits[min(len(waits) - 1, (95 * len(waits)) // 100)]
                    if waits else 0,
                    wait_max_ns=stats.wait_max))
            pools.append(PoolMetrics(
                pool=pool, quota=ledger.quota(), capacity=ledger.capacity(),
                target_utilisation=ledger.u_bps / _BPS, tokens_available=ledger.available(),
                bucket_tokens=ledger.tokens_scaled / ledger.window_ns,
                window_weight=ledger.window_sum, blocked_until_ns=ledger.blocked_until,
                server_remaining=ledger.server_remaining, rate_limited=self._rate_limited[pool],
                last_headers=self._headers[pool], priorities=tuple(priorities)))
        return BudgetMetrics(
            ts_ns=now, pools=tuple(pools), rate_limited=sum(self._rate_limited.values()),
            unknown_endpoint_calls=self._unknown_calls,
            unknown_endpoints=tuple(self._unknown_keys), bad_header_values=self._bad_headers)


def _as_priority(priority: Priority | int) -> Priority:
    try:
        return Priority(priority)
    except ValueError:
        raise ValueError(f"priority: expected one of {[p.name for p in Priority]}, "
                         f"got {priority!r}") from None
