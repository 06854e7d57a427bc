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
"""

from __future__ import annotations

import asyncio
import bisect
import enum
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping

import msgspec

from liveopt.exchange.priority import Priority

log = logging.getLogger(__name__)

FUTURES_POOL = "futures"
PUBLIC_POOL = "public"
POOLS: tuple[str, ...] = (FUTURES_POOL, PUBLIC_POOL)

NS_PER_MS = 1_000_000
NS_PER_SECOND = 1_000_000_000
_BPS = 10_000  # utilisations are held in basis points so degrade/recovery steps are exact

#: Futures pool quota per 30 s by VIP level (kucoin-protocol.md 3.3); a level between two
#: documented ones gets the lower one's quota, so the budget never assumes more than is known.
FUTURES_QUOTA_BY_VIP: tuple[tuple[int, int], ...] = ((0, 2000), (2, 4000), (12, 20000))
#: The Public pool is limited per IP, 2000 per 30 s; the reference gives no VIP scaling.
PUBLIC_QUOTA = 2000

#: Envelope codes that mean "back off", whatever the HTTP status (kucoin-protocol.md 3.2/3.3).
BACK_OFF_CODES: frozenset[str] = frozenset({"429000", "200002", "1015"})
#: 1015 is Cloudflare's per-IP limit: it stops every pool of the process, not just one.
IP_WIDE_CODES: frozenset[str] = frozenset({"1015"})

#: (endpoint key, pool, weight) from kucoin-protocol.md 3.3. ``{...}`` is a path parameter.
ENDPOINT_WEIGHTS: tuple[tuple[str, str, int], ...] = (
    ("POST /api/v1/orders", FUTURES_POOL, 2),
    ("POST /api/v1/orders/test", FUTURES_POOL, 2),
    ("POST /api/v1/st-orders", FUTURES_POOL, 2),
    ("POST /api/v1/orders/multi", FUTURES_POOL, 20),
    ("DELETE /api/v1/orders/{orderId}", FUTURES_POOL, 1),
    ("DELETE /api/v1/orders/client-order/{clientOid}", FUTURES_POOL, 1),
    ("DELETE /api/v1/orders/multi-cancel", FUTURES_POOL, 20),
    ("DELETE /api/v3/orders", FUTURES_POOL, 10),
    ("DELETE /api/v1/orders", FUTURES_POOL, 800),
    ("DELETE /api/v1/stopOrders", FUTURES_POOL, 15),
    ("GET /api/v1/stopOrders", FUTURES_POOL, 6),
    ("GET /api/v1/orders", FUTURES_POOL, 2),
    ("GET /api/v1/orders/{orderId}", FUTURES_POOL, 5),
    ("GET /api/v1/orders/byClientOid", FUTURES_POOL, 5),
    ("GET /api/v1/recentDoneOrders", FUTURES_POOL, 5),
    ("GET /api/v1/fills", FUTURES_POOL, 5),
    ("GET /api/v1/openOrderStatistics", FUTURES_POOL, 10),
    ("GET /api/v1/position", FUTURES_POOL, 2),
    ("GET /api/v1/positions", FUTURES_POOL, 2),
    ("GET /api/v2/position/getMarginMode", FUTURES_POOL, 2),
    ("GET /api/v1/contracts/{symbol}", PUBLIC_POOL, 3),
    ("GET /api/v1/contracts/active", PUBLIC_POOL, 3),
    ("GET /api/v1/ticker", PUBLIC_POOL, 2),
    ("GET /api/v1/level2/snapshot", PUBLIC_POOL, 3),
    ("GET /api/v1/level2/depth20", PUBLIC_POOL, 5),
    ("GET /api/v1/level2/depth100", PUBLIC_POOL, 5),
    ("GET /api/v1/kline/query", PUBLIC_POOL, 3),
    ("GET /api/v1/timestamp", PUBLIC_POOL, 2),
    ("POST /api/v1/bullet-public", PUBLIC_POOL, 10),
    ("POST /api/v1/bullet-private", FUTURES_POOL, 10),
)

_MAX_UNKNOWN_KEYS = 64  # distinct unknown endpoints remembered by name (all are counted)
_MAX_PROJECTION_STEPS = 1_000_000  # guards the event walk; each step passes one event


class EndpointCost(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What one call of an endpoint costs: its pool and its weight.

    Raises
    ------
    ValueError
        Naming the field, for an unknown pool or a weight below 1.
    """

    pool: str
    weight: int

    def __post_init__(self) -> None:
        if self.pool not in POOLS:
            raise ValueError(f"endpoint cost: pool must be one of {POOLS}, got {self.pool!r}")
        if self.weight < 1:
            raise ValueError(f"endpoint cost: weight must be >= 1, got {self.weight}")


class BudgetConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Settings of the rate-limit budget; ``docs/exchange/rate-limits.md`` explains each rule.

    Parameters
    ----------
    vip_level : int
        KuCoin VIP level; selects the Futures quota from ``FUTURES_QUOTA_BY_VIP``.
    futures_quota, public_quota : int or None
        Pool quotas per window; ``None`` takes the documented value (VIP table / 2000).
    window_ns : int
        Length of the quota window (KuCoin: 30 s).
    target_utilisation : float
        Share of the quota the budget plans to use (0.70: 1400 of 2000).
    degrade_step : float
        Utilisation removed per back-off reply (429).
    utilisation_floor : float
        Lowest utilisation degrade can reach.
    recovery_step : float
        Utilisation given back per quiet period without a back-off reply.
    quiet_period_ns : int
        Length of that quiet period (one minute).
    aging_ns : int
        Waiting time that earns a request one priority class (the aging rule).
    unknown_pool, unknown_weight :
        Cost of an endpoint missing from the table: by default the Futures pool and 20, the
        largest weight of a current endpoint, so an unknown call is over-counted, not under.
    endpoint_overrides : dict[str, EndpointCost]
        Extra or corrected table entries, keyed like ``"GET /api/v1/account-overview"``.
    block_without_reset_ns : int
        How long a back-off reply without a ``gw-ratelimit-reset`` header stops the pool.
    same_window_tolerance_ns : int
        Two header readings whose reset instants differ by no more than this describe the
        same server window (the lower ``remaining`` wins); a later one starts a new window.
    wait_samples : int
        Recent wait times kept per pool and priority for the wait statistics.

    Raises
    ------
    ValueError
        Naming the field, on a value outside its meaning.
    """

    vip_level: int = 0
    futures_quota: int | None = None
    public_quota: int | None = None
    window_ns: int = 30 * NS_PER_SECOND
    target_utilisation: float = 0.70
    degrade_step: float = 0.15
    utilisation_floor: float = 0.40
    recovery_step: float = 0.05
    quiet_period_ns: int = 60 * NS_PER_SECOND
    aging_ns: int = 5 * NS_PER_SECOND
    unknown_pool: str = FUTURES_POOL
    unknown_weight: int = 20
    endpoint_overrides: dict[str, EndpointCost] = msgspec.field(default_factory=dict)
    block_without_reset_ns: int = 30 * NS_PER_SECOND
    same_window_tolerance_ns: int = NS_PER_SECOND
    wait_samples: int = 512

    def __post_init__(self) -> None:
        if self.vip_level < 0:
            raise ValueError(f"budget config: vip_level must be >= 0, got {self.vip_level}")
        for name in ("futures_quota", "public_quota"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"budget config: {name} must be >= 1 or None, got {value}")
        for name in ("window_ns", "quiet_period_ns", "aging_ns", "block_without_reset_ns",
                     "wait_samples", "unknown_weight"):
            if getattr(self, name) < 1:
                raise ValueError(f"budget config: {name} must be >= 1, got {getattr(self, name)}")
        if self.same_window_tolerance_ns < 0:
            raise ValueError("budget config: same_window_tolerance_ns must be >= 0, got "
                             f"{self.same_window_tolerance_ns}")
        for name in ("target_utilisation", "degrade_step", "utilisation_floor", "recovery_step"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0.0 < value <= 1.0):
                raise ValueError(f"budget config: {name} must be in (0, 1], got {value}")
        if self.utilisation_floor > self.target_utilisation:
            raise ValueError(
                f"budget config: utilisation_floor ({self.utilisation_floor}) must not exceed "
                f"target_utilisation ({self.target_utilisation})")
        if self.unknown_pool not in POOLS:
            raise ValueError(
                f"budget config: unknown_pool must be one of {POOLS}, got {self.unknown_pool!r}")
        for key in self.endpoint_overrides:
            _split_endpoint(key)

    def quota(self, pool: str) -> int:
        """Return the configured quota of ``pool`` per window."""
        if pool == FUTURES_POOL:
            if self.futures_quota is not None:
                return self.futures_quota
            return max(q for level, q in FUTURES_QUOTA_BY_VIP if level <= self.vip_level)
        if pool == PUBLIC_POOL:
            return PUBLIC_QUOTA if self.public_quota is None else self.public_quota
        raise ValueError(f"budget config: unknown pool {pool!r}")


DEFAULT_BUDGET_CONFIG = BudgetConfig()


# ---- metrics ------------------------------------------------------------------------------


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


# ---- errors -------------------------------------------------------------------------------


class BudgetError(Exception):
    """Base class of the budget's refusals."""


class BudgetDeadlineError(BudgetError):
    """A request cannot be granted by its deadline (raised at once when that is already
    certain, or as soon as later events make it so, never after the deadline)."""

    def __init__(self, endpoint: str, priority: Priority, deadline_ns: int,
                 earliest_grant_ns: int | None, now_ns: int) -> None:
        self.endpoint = endpoint
        self.priority = priority
        self.deadline_ns = deadline_ns
        self.earliest_grant_ns = earliest_grant_ns
        self.failed_ns = now_ns
        earliest = ("never (weight above the pool's usable capacity)"
                    if earliest_grant_ns is None else
                    f"{earliest_grant_ns} ns (in {(earliest_grant_ns - now_ns) / 1e9:.3f} s)")
        super().__init__(
            f"rate-limit budget: {endpoint} at priority {priority.name} cannot be granted by "
            f"its deadline {deadline_ns} ns (in {(deadline_ns - now_ns) / 1e9:.3f} s); "
            f"earliest possible grant: {earliest}")


class BudgetCapacityError(BudgetError):
    """An endpoint's weight exceeds its pool's usable capacity, so it can never be granted."""

    def __init__(self, endpoint: str, priority: Priority, pool: str, weight: int,
                 max_capacity: int) -> None:
        self.endpoint = endpoint
        self.priority = priority
        self.pool = pool
        self.weight = weight
        self.max_capacity = max_capacity
        super().__init__(
            f"rate-limit budget: {endpoint} (priority {priority.name}) weighs {weight}, more "
            f"than the {pool} pool's usable capacity {max_capacity}")


# ---- endpoint table -----------------------------------------------------------------------


def _split_endpoint(endpoint: str) -> tuple[str, tuple[str, ...]]:
    if not isinstance(endpoint, str):
        raise ValueError(f"endpoint: expected 'METHOD /path', got {endpoint!r}")
    method, _, path = endpoint.strip().partition(" ")
    path = path.strip().split("?", 1)[0]
    if not method or not path.startswith("/"):
        raise ValueError(f"endpoint: expected 'METHOD /path', got {endpoint!r}")
    segments = tuple(part for part in path.split("/") if part)
    return method.upper(), segments


def _is_parameter(segment: str) -> bool:
    return segment.startswith("{") and segment.endswith("}")


class EndpointTable:
    """Maps ``"METHOD /path"`` (a template or a concrete path, query ignored) to its cost.

    A literal entry wins over a template (``/api/v1/orders/byClientOid`` is not an order id);
    among templates, the one with most literal segments wins. Unknown endpoints get the
    configured default and are counted by the scheduler.
    """

    def __init__(self, config: BudgetConfig) -> None:
        entries = {key: EndpointCost(pool=pool, weight=weight)
                   for key, pool, weight in ENDPOINT_WEIGHTS}
        entries.update(config.endpoint_overrides)
        self._exact: dict[tuple[str, tuple[str, ...]], EndpointCost] = {}
        self._templates: list[tuple[str, tuple[str, ...], EndpointCost]] = []
        for key, cost in entries.items():
            method, segments = _split_endpoint(key)
            if any(_is_parameter(s) for s in segments):
                self._templates.append((method, segments, cost))
            self._exact[(method, segments)] = cost
        # most literal segments first, so the most specific template matches first
        self._templates.sort(key=lambda t: -sum(not _is_parameter(s) for s in t[1]))
        self.unknown = EndpointCost(pool=config.unknown_pool, weight=config.unknown_weight)

    def lookup(self, endpoint: str) -> EndpointCost | None:
        """Return the endpoint's cost, or None when the table does not know it."""
        method, segments = _split_endpoint(endpoint)
        exact = self._exact.get((method, segments))
        if exact is not None:
            return exact
        for t_method, t_segments, cost in self._templates:
            if t_method == method and len(t_segments) == len(segments) and all(
                    _is_parameter(t) or t == s for t, s in zip(t_segments, segments, strict=True)):
                return cost
        return None


# ---- one pool's ledger ---------------------------------------------------------------------


class _PoolLedger:
    # The arithmetic state of one pool at time ``t``. Bucket tokens are scaled by window_ns
    # so the pro-rata refill (capacity per window) is exact integer arithmetic.
    __slots__ = ("anchor_ns", "base_bps", "blocked_until", "cfg_quota", "down_bps",
                 "floor_bps", "grants", "header_limit", "quiet_ns", "server_remaining",
                 "server_reset_at", "t", "tokens_scaled", "u_bps", "up_bps", "window_ns",
                 "window_sum")

    def __init__(self, config: BudgetConfig, quota: int, now: int) -> None:
        self.window_ns = config.window_ns
        self.base_bps = round(config.target_utilisation * _BPS)
        self.floor_bps = round(config.utilisation_floor * _BPS)
        self.down_bps = round(config.degrade_step * _BPS)
        self.up_bps = max(1, round(config.recovery_step * _BPS))
        self.quiet_ns = config.quiet_period_ns
        self.cfg_quota = quota
        self.header_limit: int | None = None
        self.t = now
        self.u_bps = self.base_bps
        self.anchor_ns = now
        self.tokens_scaled = self.capacity() * self.window_ns
        self.grants: deque[tuple[int, int]] = deque()
        self.window_sum = 0
        self.blocked_until: int | None = None
        self.server_remaining: int | None = None
        self.server_reset_at: int | None = None

    def clone(self) -> _PoolLedger:
        other = object.__new__(_PoolLedger)
        for name in _PoolLedger.__slots__:
            setattr(other, name, getattr(self, name))
        other.grants = self.grants.copy()
        return other

    def quota(self) -> int:
        return self.cfg_quota if self.header_limit is None else min(self.cfg_quota,
                                                                    self.header_limit)

    def capacity(self) -> int:
        return self.quota() * self.u_bps // _BPS

    def max_capacity(self) -> int:
        return self.quota() * self.base_bps // _BPS

    def _refill(self, t: int) -> None:
        if t > self.t:
            cap = self.capacity()
            self.tokens_scaled = min(cap * self.window_ns,
                                     self.tokens_scaled + cap * (t - self.t))
            self.t = t

    def advance(self, t: int) -> None:
        if t <= self.t:
            return
        # recovery: +up per quiet period since the last back-off (or the last step)
        while self.u_bps < self.base_bps and self.anchor_ns + self.quiet_ns <= t:
            step_at = self.anchor_ns + self.quiet_ns
            self._refill(step_at)
            self.u_bps = min(self.base_bps, self.u_bps + self.up_bps)
            self.anchor_ns = step_at
        self._refill(t)
        # a grant at g counts in the windows (t - W, t], i.e. while t < g + W
        while self.grants and self.grants[0][0] + self.window_ns <= t:
            self.window_sum -= self.grants.popleft()[1]
        if self.blocked_until is not None and t >= self.blocked_until:
            self.blocked_until = None
        if self.server_reset_at is not None and t >= self.server_reset_at:
            self.server_remaining = None
            self.server_reset_at = None

    def can_afford(self, weight: int) -> bool:
        return (self.blocked_until is None
                and self.window_sum + weight <= self.capacity()
                and self.tokens_scaled >= weight * self.window_ns
                and (self.server_remaining is None or self.server_remaining >= weight))

    def available(self) -> int:
        if self.blocked_until is not None:
            return 0
        room = min(self.tokens_scaled // self.window_ns, self.capacity() - self.window_sum)
        if self.server_remaining is not None:
            room = min(room, self.server_remaining)
        return max(0, room)

    def _next_event(self, weight: int) -> int | None:
        # the first instant after t at which something that blocks ``weight`` can change
        t = self.t
        cap = self.capacity()
        candidates = []
        if self.blocked_until is not None:
            candidates.append(self.blocked_until)
        if self.server_remaining is not None and self.server_remaining < weight:
            candidates.append(self.server_reset_at)
        if self.u_bps < self.base_bps:
            candidates.append(self.anchor_ns + self.quiet_ns)
        if self.grants and self.window_sum + weight > cap:
            candidates.append(self.grants[0][0] + self.window_ns)
        need = weight * self.window_ns - self.tokens_scaled
        if need > 0 and 0 < weight <= cap:
            candidates.append(t + -(-need // cap))
        later = [c for c in candidates if c is not None and c > t]
        return min(later) if later else None

    def earliest(self, weight: int, t_from: int) -> int | None:
        """The first instant >= t_from at which ``weight`` fits, absent new events."""
        if weight > self.max_capacity():
            return None
        probe = self.clone()
        probe.advance(t_from)
        for _ in range(_MAX_PROJECTION_STEPS):
            if probe.can_afford(weight):
                return probe.t
            step = probe._next_event(weight)
            if step is None:
                return None
            probe.advance(step)
        raise RuntimeError("rate-limit budget: projection did not converge")

    def consume(self, t: int, weight: int) -> None:
        self.advance(t)
        self.tokens_scaled -= weight * self.window_ns
        self.grants.append((self.t, weight))
        self.window_sum += weight
        if self.server_remaining is not None:
            self.server_remaining -= weight

    def degrade(self, now: int) -> None:
        self.advance(now)
        self.u_bps = max(self.floor_bps, self.u_bps - self.down_bps)
        self.anchor_ns = now
        self.tokens_scaled = min(self.tokens_scaled, self.capacity() * self.window_ns)

    def block(self, now: int, until: int) -> None:
        self.advance(now)
        if until > now:
            self.blocked_until = max(until, self.blocked_until or until)
            self.server_remaining = 0
            self.server_reset_at = max(until, self.server_reset_at or until)

    def correct(self, now: int, limit: int | None, remaining: int | None, reset_at: int,
                tolerance_ns: int) -> None:
        self.advance(now)
        if limit is not None and limit > 0:
            self.header_limit = limit
            self.tokens_scaled = min(self.tokens_scaled, self.capacity() * self.window_ns)
        if remaining is None:
            return
        same_window = (self.server_reset_at is not None
                       and reset_at <= self.server_reset_at + tolerance_ns)
        if same_window:
            # a late reply of the same window may carry an older, higher figure: keep the lower
            assert self.server_remaining is not None
            self.server_remaining = min(self.server_remaining, remaining)
            self.server_reset_at = max(self.server_reset_at or reset_at, reset_at)
        elif reset_at > now:
            self.server_remaining = remaining
            self.server_reset_at = reset_at


# ---- the scheduler --------------------------------------------------------------------------


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


# ---- the async front end --------------------------------------------------------------------


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
