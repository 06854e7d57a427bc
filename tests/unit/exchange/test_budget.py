"""The rate-limit budget: pools, weights, aging, deadlines, degrade, header correction."""

from __future__ import annotations

import asyncio
import heapq
import math
from collections.abc import Awaitable

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from liveopt.exchange.budget import (
    ENDPOINT_WEIGHTS,
    FUTURES_POOL,
    POOLS,
    PUBLIC_POOL,
    BudgetCapacityError,
    BudgetConfig,
    BudgetDeadlineError,
    BudgetMetrics,
    BudgetScheduler,
    BudgetTicket,
    EndpointCost,
    PingBudgetManager,
    TicketState,
)
from liveopt.exchange.priority import Priority
from liveopt.units import NS_PER_MS, NS_PER_SECOND

ORDER = "POST /api/v1/orders"  # futures, 2
CANCEL = "DELETE /api/v1/orders/{orderId}"  # futures, 1
ORDER_STATUS = "GET /api/v1/orders/{orderId}"  # futures, 5
POSITIONS = "GET /api/v1/positions"  # futures, 2
CONTRACT = "GET /api/v1/contracts/{symbol}"  # public, 3
UNKNOWN = "GET /api/v1/account-overview"  # not in the table


class FakeClock:
    """A settable nanosecond clock."""

    def __init__(self, now_ns: int = 0) -> None:
        self.now_ns = now_ns

    def __call__(self) -> int:
        return self.now_ns

    def advance(self, ns: int) -> None:
        self.now_ns += ns


class VirtualTime:
    """A clock plus an ``asyncio`` sleep that only ends when the test advances the clock."""

    def __init__(self) -> None:
        self.now_ns = 0
        self.sleep_calls = 0
        self._sleepers: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = 0

    def clock_ns(self) -> int:
        return self.now_ns

    async def sleep(self, seconds: float) -> None:
        self.sleep_calls += 1
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._seq += 1
        heapq.heappush(self._sleepers,
                       (self.now_ns + math.ceil(seconds * NS_PER_SECOND), self._seq, future))
        await future

    async def settle(self) -> None:
        for _ in range(30):
            await asyncio.sleep(0)

    async def run_until(self, tasks: list[asyncio.Task], max_steps: int = 10_000) -> None:
        """Advance to each next sleeper's wake time until every task is done."""
        for _ in range(max_steps):
            await self.settle()
            if all(task.done() for task in tasks):
                return
            while self._sleepers and self._sleepers[0][2].done():
                heapq.heappop(self._sleepers)
            assert self._sleepers, "tasks wait but nobody sleeps: the budget would hang"
            wake, _, future = heapq.heappop(self._sleepers)
            self.now_ns = max(self.now_ns, wake)
            future.set_result(None)
        raise AssertionError("virtual time did not finish the tasks")


def run(coro: Awaitable[object]) -> object:
    # the real-time limit only turns a budget that would hang into a failure; it is never hit
    return asyncio.run(asyncio.wait_for(coro, timeout=10.0))


def small_config(**overrides: object) -> BudgetConfig:
    fields: dict[str, object] = {"futures_quota": 100, "public_quota": 100}
    fields.update(overrides)
    return BudgetConfig(**fields)  # type: ignore[arg-type]


def capacity_of(config: BudgetConfig, pool: str, utilisation: float | None = None) -> int:
    share = config.target_utilisation if utilisation is None else utilisation
    return config.quota(pool) * round(share * 10_000) // 10_000


def pool_metrics(scheduler: BudgetScheduler, pool: str = FUTURES_POOL):
    return next(p for p in scheduler.metrics().pools if p.pool == pool)


def class_metrics(scheduler: BudgetScheduler, priority: Priority, pool: str = FUTURES_POOL):
    return next(c for c in pool_metrics(scheduler, pool).priorities
                if c.priority == priority.name)


def drain_futures(scheduler: BudgetScheduler, endpoint: str = CANCEL) -> int:
    """Spend the whole usable capacity of the endpoint's pool now; return the weight spent."""
    weight = scheduler.cost(endpoint).weight
    spent = 0
    while scheduler.try_acquire(endpoint, Priority.CRITICAL):
        spent += weight
    return spent


# ---- the endpoint table ----------------------------------------------------------------------


@pytest.mark.parametrize(("key", "pool", "weight"), ENDPOINT_WEIGHTS)
def test_every_reference_endpoint_costs_its_pool_and_weight(key, pool, weight):
    manager = PingBudgetManager()
    assert manager.cost(key) == (pool, weight)


@pytest.mark.parametrize(("concrete", "template"), [
    ("DELETE /api/v1/orders/5bd6e9286d99522a52e458de", CANCEL),
    ("GET /api/v1/contracts/XBTUSDTM", CONTRACT),
    ("DELETE /api/v1/orders/client-order/stop-XBTUSDTM-1-3",
     "DELETE /api/v1/orders/client-order/{clientOid}"),
    ("GET /api/v1/position?symbol=XBTUSDTM", "GET /api/v1/position"),
    ("get /api/v1/orders/5bd6e9286d99522a52e458de", ORDER_STATUS),
])
def test_concrete_paths_and_query_strings_cost_like_their_template(concrete, template):
    manager = PingBudgetManager()
    assert manager.cost(concrete) == manager.cost(template)


def test_a_literal_path_wins_over_a_template_of_the_same_shape():
    manager = PingBudgetManager()
    assert manager.cost("DELETE /api/v1/orders/multi-cancel") == (FUTURES_POOL, 20)
    assert manager.cost("DELETE /api/v1/orders/some-order-id") == (FUTURES_POOL, 1)


def test_unknown_endpoints_get_the_configured_default_and_are_counted():
    config = BudgetConfig(unknown_pool=PUBLIC_POOL, unknown_weight=7)
    manager = PingBudgetManager(config, clock_ns=FakeClock())
    assert manager.cost(UNKNOWN) == (PUBLIC_POOL, 7)
    assert manager.try_acquire(UNKNOWN, Priority.LOW)
    assert manager.try_acquire(UNKNOWN + "?currency=USDT", Priority.LOW)
    metrics = manager.metrics()
    assert metrics.unknown_endpoint_calls == 2
    assert metrics.unknown_endpoints == (UNKNOWN,)
    public = next(p for p in metrics.pools if p.pool == PUBLIC_POOL)
    assert public.window_weight == 2 * 7


def test_endpoint_overrides_extend_the_table():
    config = BudgetConfig(endpoint_overrides={UNKNOWN: EndpointCost(pool=FUTURES_POOL, weight=5)})
    assert PingBudgetManager(config).cost(UNKNOWN) == (FUTURES_POOL, 5)


@pytest.mark.parametrize("endpoint", ["", "POST", "/api/v1/orders", "POST api/v1/orders"])
def test_a_malformed_endpoint_is_refused_naming_the_field(endpoint):
    with pytest.raises(ValueError, match="endpoint"):
        PingBudgetManager().cost(endpoint)


def test_an_unknown_priority_is_refused_naming_the_field():
    with pytest.raises(ValueError, match="priority"):
        PingBudgetManager().try_acquire(ORDER, 7)  # type: ignore[arg-type]


# ---- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(("field", "value"), [
    ("vip_level", -1), ("futures_quota", 0), ("public_quota", -5), ("window_ns", 0),
    ("target_utilisation", 1.5), ("target_utilisation", 0.0), ("degrade_step", -0.1),
    ("utilisation_floor", float("nan")), ("recovery_step", 0.0), ("quiet_period_ns", 0),
    ("aging_ns", 0), ("unknown_pool", "spot"), ("unknown_weight", 0),
    ("block_without_reset_ns", 0), ("same_window_tolerance_ns", -1), ("wait_samples", 0),
])
def test_config_rejects_bad_values_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        BudgetConfig(**{field: value})


def test_config_refuses_a_floor_above_the_target():
    with pytest.raises(ValueError, match="utilisation_floor"):
        BudgetConfig(target_utilisation=0.5, utilisation_floor=0.6)


def test_config_decodes_from_json_with_unknown_fields_refused():
    config = msgspec.json.decode(b'{"vip_level": 2, "aging_ns": 1000}', type=BudgetConfig)
    assert config.quota(FUTURES_POOL) == 4000
    with pytest.raises(msgspec.ValidationError, match="nonsense"):
        msgspec.json.decode(b'{"nonsense": 1}', type=BudgetConfig)


@pytest.mark.parametrize(("vip", "expected"), [(0, 2000), (1, 2000), (2, 4000), (11, 4000),
                                               (12, 20000)])
def test_futures_quota_follows_the_vip_level_without_guessing_above_documented_levels(
        vip, expected):
    assert BudgetConfig(vip_level=vip).quota(FUTURES_POOL) == expected
    assert BudgetConfig(vip_level=vip).quota(PUBLIC_POOL) == 2000


def test_default_pools_plan_seventy_percent_of_the_vip0_quota():
    metrics = PingBudgetManager(clock_ns=FakeClock()).metrics()
    for pool in metrics.pools:
        assert pool.quota == 2000
        assert pool.capacity == capacity_of(BudgetConfig(), pool.pool)
        assert pool.capacity == pool.tokens_available
        assert pool.target_utilisation == pytest.approx(0.70)


# ---- buckets and windows ---------------------------------------------------------------------


def test_the_bucket_refills_pro_rata_over_the_window():
    clock = FakeClock()
    config = small_config()
    scheduler = BudgetScheduler(config, clock)
    spent = drain_futures(scheduler)
    capacity = capacity_of(config, FUTURES_POOL)
    assert spent == capacity
    clock.advance(config.window_ns // 4)
    bucket = pool_metrics(scheduler).bucket_tokens
    assert bucket == pytest.approx(capacity / 4)


def test_a_refilled_bucket_cannot_push_a_window_past_the_target():
    # a bare bucket would let half a capacity out, then after half a window a full bucket
    clock = FakeClock()
    config = small_config()
    scheduler = BudgetScheduler(config, clock)
    capacity = capacity_of(config, FUTURES_POOL)
    half = capacity // 2
    for _ in range(half):
        assert scheduler.try_acquire(CANCEL, Priority.HIGH)
    clock.advance(config.window_ns // 2)
    assert pool_metrics(scheduler).bucket_tokens == pytest.approx(capacity)
    granted = 0
    while scheduler.try_acquire(CANCEL, Priority.HIGH):
        granted += 1
    assert half + granted == capacity
    clock.advance(config.window_ns // 2)  # the first half leaves the window
    assert scheduler.try_acquire(CANCEL, Priority.HIGH)


def test_a_weight_above_the_usable_capacity_is_refused_at_once():
    scheduler = BudgetScheduler(small_config(), FakeClock())
    with pytest.raises(BudgetCapacityError, match="DELETE /api/v1/orders"):
        scheduler.submit("DELETE /api/v1/orders", Priority.CRITICAL)  # weight 800 > 70
    assert class_metrics(scheduler, Priority.CRITICAL).rejected == 1


def test_try_acquire_behind_a_queued_request_is_refused_and_counted():
    clock = FakeClock()
    scheduler = BudgetScheduler(small_config(), clock)
    drain_futures(scheduler)
    queued = scheduler.submit(ORDER, Priority.CRITICAL)
    assert queued.pending
    assert not scheduler.try_acquire(ORDER, Priority.HIGH)
    assert class_metrics(scheduler, Priority.HIGH).rejected == 1
    assert class_metrics(scheduler, Priority.CRITICAL).queued == 1


# ---- priority and aging ----------------------------------------------------------------------


def test_waiting_requests_are_granted_critical_first_then_high_medium_low():
    clock = FakeClock()
    config = small_config(futures_quota=3)  # capacity 2: one order per window
    scheduler = BudgetScheduler(config, clock)
    assert scheduler.try_acquire(ORDER, Priority.CRITICAL)
    tickets = [scheduler.submit(ORDER, p) for p in sorted(Priority, reverse=True)]
    while scheduler.pending():
        clock.now_ns = scheduler.next_wake_ns()
        scheduler.poll()
    granted = sorted(tickets, key=lambda t: t.finished_seq)
    assert [t.priority for t in granted] == sorted(Priority)
    assert all(t.state is TicketState.GRANTED for t in tickets)


@pytest.mark.parametrize("offset_ns", [-1, 0, 1])
def test_a_low_request_ranks_like_a_fresh_critical_one_after_three_aging_periods(offset_ns):
    clock = FakeClock()
    config = small_config(futures_quota=3)
    scheduler = BudgetScheduler(config, clock)
    assert scheduler.try_acquire(ORDER, Priority.CRITICAL)
    low = scheduler.submit(ORDER, Priority.LOW)
    clock.advance(int(Priority.LOW) * config.aging_ns + offset_ns)
    critical = scheduler.submit(ORDER, Priority.CRITICAL)
    while scheduler.pending():
        clock.now_ns = scheduler.next_wake_ns()
        scheduler.poll()
    low_first = low.finished_seq < critical.finished_seq
    # equal keys are served in arrival order, so LOW goes first unless CRITICAL's key is smaller
    assert low_first == (offset_ns >= 0)


def test_low_requests_are_served_during_a_critical_flood_that_strict_priority_would_starve():
    # CRITICAL demand of 5 weight/s against a refill of 70 per 30 s: the backlog grows for the
    # whole run, so strict priority would never serve LOW before the flood is over.
    clock = FakeClock()
    config = small_config()
    scheduler = BudgetScheduler(config, clock)
    flood: list[BudgetTicket] = []
    lows: list[BudgetTicket] = []
    low_times = {10 * NS_PER_SECOND, 60 * NS_PER_SECOND, 120 * NS_PER_SECOND}
    end_ns = 400 * NS_PER_SECOND
    while clock.now_ns < end_ns:
        if clock.now_ns in low_times:
            lows.append(scheduler.submit(POSITIONS, Priority.LOW))
        flood.append(scheduler.submit(ORDER_STATUS, Priority.CRITICAL))
        clock.advance(NS_PER_SECOND)
        scheduler.poll()
    assert sum(t.pending for t in flood) > 0  # still overloaded at the end
    for low in lows:
        assert low.state is TicketState.GRANTED
        assert low.finished_ns < end_ns
        overtaking = [t for t in flood if t.submitted_ns > low.key_ns
                      and t.state is TicketState.GRANTED and t.finished_seq < low.finished_seq]
        assert overtaking == []


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(load=st.floats(0.1, 0.9), phase_ms=st.integers(0, 999),
       low_at_s=st.lists(st.integers(0, 170), min_size=1, max_size=5, unique=True),
       aging_s=st.integers(1, 10))
def test_under_critical_and_high_load_below_capacity_every_low_request_is_granted_within_bound(
        load, phase_ms, low_at_s, aging_s):
    # Load: CRITICAL and HIGH orders (weight 2) alternate, evenly spaced at ``load`` times the
    # pool's refill rate. Bound: a LOW request waits at most 3 aging periods plus one window.
    config = small_config(aging_ns=aging_s * NS_PER_SECOND)
    clock = FakeClock()
    scheduler = BudgetScheduler(config, clock)
    capacity = capacity_of(config, FUTURES_POOL)
    spacing_ns = round(2 * config.window_ns / (load * capacity))
    arrivals = [(phase_ms * NS_PER_MS + i * spacing_ns, "stream", i)
                for i in range(200 * NS_PER_SECOND // spacing_ns)]
    arrivals += [(s * NS_PER_SECOND, "low", i) for i, s in enumerate(low_at_s)]
    lows = []
    for at_ns, kind, i in sorted(arrivals):
        clock.now_ns = max(clock.now_ns, at_ns)
        if kind == "low":
            lows.append(scheduler.submit(POSITIONS, Priority.LOW))
        else:
            scheduler.submit(ORDER, Priority.CRITICAL if i % 2 else Priority.HIGH)
    while scheduler.pending():
        clock.now_ns = scheduler.next_wake_ns()
        scheduler.poll()
    bound_ns = int(Priority.LOW) * config.aging_ns + config.window_ns
    for low in lows:
        assert low.state is TicketState.GRANTED
        assert low.finished_ns - low.submitted_ns <= bound_ns


# ---- deadlines -------------------------------------------------------------------------------


def test_an_impossible_deadline_fails_at_once_with_a_clear_error():
    clock = FakeClock(5 * NS_PER_SECOND)
    config = small_config()
    scheduler = BudgetScheduler(config, clock)
    drain_futures(scheduler)
    deadline = clock.now_ns + NS_PER_SECOND
    with pytest.raises(BudgetDeadlineError) as caught:
        scheduler.submit(ORDER, Priority.HIGH, deadline_ns=deadline)
    error = caught.value
    assert error.endpoint == ORDER and error.priority is Priority.HIGH
    assert error.deadline_ns == deadline
    assert error.earliest_grant_ns is not None and error.earliest_grant_ns > deadline
    assert error.failed_ns == clock.now_ns
    for text in (ORDER, "HIGH", str(deadline), str(error.earliest_grant_ns)):
        assert text in str(error)
    assert class_metrics(scheduler, Priority.HIGH).rejected == 1
    assert scheduler.pending() == 0


def test_a_deadline_is_impossible_because_of_the_queue_ahead_not_just_the_tokens():
    clock = FakeClock()
    config = small_config(futures_quota=3)  # one order per window
    scheduler = BudgetScheduler(config, clock)
    ahead = scheduler.submit(ORDER, Priority.CRITICAL)
    assert ahead.state is TicketState.GRANTED
    second = scheduler.submit(ORDER, Priority.CRITICAL)
    assert second.projected_ns == config.window_ns
    # the pool is free again at one window, but the queued CRITICAL takes that slot
    with pytest.raises(BudgetDeadlineError) as caught:
        scheduler.submit(ORDER, Priority.HIGH, deadline_ns=config.window_ns + NS_PER_SECOND)
    assert caught.value.earliest_grant_ns == 2 * config.window_ns


def test_a_waiter_pushed_past_its_deadline_by_a_higher_priority_arrival_fails_immediately():
    clock = FakeClock()
    config = small_config(futures_quota=3)
    scheduler = BudgetScheduler(config, clock)
    assert scheduler.try_acquire(ORDER, Priority.CRITICAL)
    deadline = config.window_ns + NS_PER_SECOND
    low = scheduler.submit(ORDER, Priority.LOW, deadline_ns=deadline)
    assert low.pending
    clock.advance(NS_PER_SECOND)
    scheduler.submit(ORDER, Priority.CRITICAL)
    assert low.state is TicketState.EXPIRED
    assert low.finished_ns == clock.now_ns < deadline
    assert isinstance(low.error, BudgetDeadlineError)
    assert class_metrics(scheduler, Priority.LOW).expired == 1


def test_a_request_granted_exactly_at_its_deadline_succeeds():
    clock = FakeClock()
    config = small_config(futures_quota=3)
    scheduler = BudgetScheduler(config, clock)
    assert scheduler.try_acquire(ORDER, Priority.CRITICAL)
    ticket = scheduler.submit(ORDER, Priority.HIGH, deadline_ns=config.window_ns)
    clock.now_ns = config.window_ns
    scheduler.poll()
    assert ticket.state is TicketState.GRANTED and ticket.finished_ns == ticket.deadline_ns


# ---- 429, degrade and recovery ---------------------------------------------------------------


@pytest.mark.parametrize(("status", "code"), [
    (429, None), (429, "429000"), (200, "429000"), (200, "200002"), (403, "1015"),
    (200, 429000), (503, " 200002 "),
])
def test_a_back_off_reply_is_recognised_whatever_its_shape(status, code):
    clock = FakeClock()
    scheduler = BudgetScheduler(small_config(), clock)
    scheduler.record_response(ORDER, status, {}, code)
    pool = pool_metrics(scheduler)
    assert pool.rate_limited == 1
    assert pool.target_utilisation == pytest.approx(0.70 - 0.15)
    assert pool.blocked_until_ns is not None and pool.tokens_available == 0


@pytest.mark.parametrize(("status", "code"), [(200, "200000"), (400, "400100"), (500, None),
                                              (200, None)])
def test_ordinary_replies_do_not_degrade(status, code):
    scheduler = BudgetScheduler(small_config(), FakeClock())
    scheduler.record_response(ORDER, status, {}, code)
    pool = pool_metrics(scheduler)
    assert pool.rate_limited == 0 and pool.target_utilisation == pytest.approx(0.70)


def test_degrade_steps_down_per_429_to_the_floor_then_recovers_per_quiet_minute():
    clock = FakeClock()
    config = BudgetConfig()
    scheduler = BudgetScheduler(config, clock)
    expected = config.target_utilisation
    seen = []
    for _ in range(4):
        scheduler.record_response(ORDER, 429, {"gw-ratelimit-reset": "0"})
        expected = max(config.utilisation_floor, expected - config.degrade_step)
        seen.append(pool_metrics(scheduler).target_utilisation)
        assert seen[-1] == pytest.approx(expected)
        assert pool_metrics(scheduler).capacity == capacity_of(config, FUTURES_POOL, expected)
    assert seen[-1] == pytest.approx(config.utilisation_floor)
    clock.advance(config.quiet_period_ns - 1)
    assert pool_metrics(scheduler).target_utilisation == pytest.approx(expected)
    clock.advance(10 * config.quiet_period_ns)
    pool = pool_metrics(scheduler)
    assert pool.target_utilisation == pytest.approx(config.target_utilisation)
    assert pool.rate_limited == 4  # a total, not the consecutive count


def test_recovery_is_one_step_per_quiet_period():
    clock = FakeClock()
    config = BudgetConfig()
    scheduler = BudgetScheduler(config, clock)
    for _ in range(2):
        scheduler.record_response(ORDER, 429, {"gw-ratelimit-reset": "0"})
    degraded = pool_metrics(scheduler).target_utilisation
    for minutes in range(1, 6):
        clock.advance(config.quiet_period_ns)
        assert pool_metrics(scheduler).target_utilisation == pytest.approx(
            min(config.target_utilisation, degraded + minutes * config.recovery_step))


def test_a_new_429_restarts_the_quiet_period():
    clock = FakeClock()
    config = BudgetConfig()
    scheduler = BudgetScheduler(config, clock)
    scheduler.record_response(ORDER, 429, {"gw-ratelimit-reset": "0"})
    clock.advance(config.quiet_period_ns - NS_PER_SECOND)
    scheduler.record_response(ORDER, 429, {"gw-ratelimit-reset": "0"})
    clock.advance(config.quiet_period_ns - NS_PER_SECOND)
    assert pool_metrics(scheduler).target_utilisation == pytest.approx(
        config.target_utilisation - 2 * config.degrade_step)


def test_a_429_blocks_the_pool_until_the_reset_the_server_gives():
    clock = FakeClock()
    scheduler = BudgetScheduler(small_config(), clock)
    reset_ms = 4_000
    scheduler.record_response(ORDER, 429, {"gw-ratelimit-limit": "100",
                                           "gw-ratelimit-remaining": "0",
                                           "gw-ratelimit-reset": str(reset_ms)}, "429000")
    assert pool_metrics(scheduler).blocked_until_ns == reset_ms * NS_PER_MS
    clock.now_ns = reset_ms * NS_PER_MS - 1
    assert not scheduler.try_acquire(CANCEL, Priority.CRITICAL)
    assert scheduler.try_acquire(CONTRACT, Priority.LOW)  # the public pool is not blocked
    clock.now_ns = reset_ms * NS_PER_MS
    assert scheduler.try_acquire(CANCEL, Priority.CRITICAL)


def test_a_429_without_reset_header_blocks_for_the_configured_time():
    clock = FakeClock()
    config = small_config(block_without_reset_ns=7 * NS_PER_SECOND)
    scheduler = BudgetScheduler(config, clock)
    scheduler.record_response(ORDER, 429, {})
    assert pool_metrics(scheduler).blocked_until_ns == config.block_without_reset_ns


def test_a_reset_longer_than_a_window_is_capped_at_one_window():
    clock = FakeClock()
    config = small_config()
    scheduler = BudgetScheduler(config, clock)
    scheduler.record_response(ORDER, 429, {"gw-ratelimit-reset": "1234567890"})
    assert pool_metrics(scheduler).blocked_until_ns == config.window_ns


def test_cloudflare_1015_blocks_every_pool():
    scheduler = BudgetScheduler(small_config(), FakeClock())
    scheduler.record_response(CONTRACT, 403, {}, "1015")
    for pool in POOLS:
        assert pool_metrics(scheduler, pool).blocked_until_ns is not None
        assert pool_metrics(scheduler, pool).rate_limited == 1
    assert scheduler.metrics().rate_limited == len(POOLS)


def test_a_429_fails_waiters_it_makes_late_at_once_and_delays_the_others():
    clock = FakeClock()
    config = small_config(futures_quota=3)
    scheduler = BudgetScheduler(config, clock)
    assert scheduler.try_acquire(ORDER, Priority.CRITICAL)
    patient = scheduler.submit(ORDER, Priority.HIGH)
    hurried = scheduler.submit(ORDER, Priority.LOW, deadline_ns=3 * config.window_ns)
    assert hurried.projected_ns <= hurried.deadline_ns
    clock.advance(NS_PER_SECOND)
    scheduler.record_response(ORDER, 429, {"gw-ratelimit-reset": "30000"})
    assert hurried.state is TicketState.EXPIRED and hurried.finished_ns < hurried.deadline_ns
    assert patient.pending and patient.projected_ns >= clock.now_ns + config.window_ns


# ---- header correction -----------------------------------------------------------------------


def test_the_budget_never_believes_more_than_the_server_says_remains():
    clock = FakeClock()
    config = small_config()
    scheduler = BudgetScheduler(config, clock)
    remaining = 6
    reset_ms = 10_000
    scheduler.record_response(CANCEL, 200, {"gw-ratelimit-limit": "100",
                                            "gw-ratelimit-remaining": str(remaining),
                                            "gw-ratelimit-reset": str(reset_ms)}, "200000")
    assert pool_metrics(scheduler).tokens_available == remaining
    granted = 0
    while scheduler.try_acquire(CANCEL, Priority.CRITICAL):
        granted += 1
    assert granted == remaining
    clock.now_ns = reset_ms * NS_PER_MS  # the server's window resets
    assert scheduler.try_acquire(CANCEL, Priority.CRITICAL)
    assert pool_metrics(scheduler).server_remaining is None


def test_header_names_are_matched_without_regard_to_case():
    scheduler = BudgetScheduler(small_config(), FakeClock())
    scheduler.record_response(CANCEL, 200, {"GW-RateLimit-Remaining": "3",
                                            "Gw-Ratelimit-Reset": "500"}, "200000")
    pool = pool_metrics(scheduler)
    assert pool.tokens_available == 3
    assert pool.last_headers.remaining == 3 and pool.last_headers.reset_ms == 500


def test_a_lower_server_limit_lowers_the_quota_and_a_higher_one_is_not_trusted():
    clock = FakeClock()
    config = small_config()
    scheduler = BudgetScheduler(config, clock)
    scheduler.record_response(CANCEL, 200, {"gw-ratelimit-limit": "50"}, "200000")
    assert pool_metrics(scheduler).quota == 50
    assert pool_metrics(scheduler).capacity == 50 * 7_000 // 10_000
    scheduler.record_response(CANCEL, 200, {"gw-ratelimit-limit": "5000"}, "200000")
    assert pool_metrics(scheduler).quota == config.quota(FUTURES_POOL)


def test_a_late_reply_from_the_same_server_window_cannot_raise_the_remaining_figure():
    clock = FakeClock()
    scheduler = BudgetScheduler(small_config(), clock)
    scheduler.record_response(CANCEL, 200, {"gw-ratelimit-remaining": "4",
                                            "gw-ratelimit-reset": "9000"}, "200000")
    clock.advance(100 * NS_PER_MS)
    scheduler.record_response(CANCEL, 200, {"gw-ratelimit-remaining": "30",
                                            "gw-ratelimit-reset": "8950"}, "200000")
    assert pool_metrics(scheduler).server_remaining == 4
    clock.advance(9 * NS_PER_SECOND)  # a reading from the next server window replaces it
    scheduler.record_response(CANCEL, 200, {"gw-ratelimit-remaining": "30",
                                            "gw-ratelimit-reset": "29000"}, "200000")
    assert pool_metrics(scheduler).server_remaining == 30


def test_malformed_header_values_are_counted_and_ignored():
    scheduler = BudgetScheduler(small_config(), FakeClock())
    scheduler.record_response(CANCEL, 200, {"gw-ratelimit-remaining": "lots",
                                            "gw-ratelimit-reset": "-4"}, "200000")
    metrics = scheduler.metrics()
    assert metrics.bad_header_values == 2
    assert pool_metrics(scheduler).server_remaining is None


# ---- metrics ---------------------------------------------------------------------------------


def test_metrics_are_a_frozen_snapshot_with_every_pool_and_priority():
    clock = FakeClock()
    config = small_config(futures_quota=3)
    scheduler = BudgetScheduler(config, clock)
    assert scheduler.try_acquire(ORDER, Priority.CRITICAL)
    scheduler.submit(ORDER, Priority.MEDIUM)
    scheduler.submit(ORDER, Priority.LOW)
    metrics = scheduler.metrics()
    assert isinstance(metrics, BudgetMetrics)
    with pytest.raises(AttributeError):
        metrics.ts_ns = 1  # type: ignore[misc]
    assert [p.pool for p in metrics.pools] == list(POOLS)
    futures = metrics.pools[0]
    assert [c.priority for c in futures.priorities] == [p.name for p in Priority]
    depth = {c.priority: c.queued for c in futures.priorities}
    assert depth == {"CRITICAL": 0, "HIGH": 0, "MEDIUM": 1, "LOW": 1}
    decoded = msgspec.json.decode(msgspec.json.encode(metrics), type=BudgetMetrics)
    assert decoded == metrics


def test_wait_statistics_describe_granted_requests():
    clock = FakeClock()
    config = small_config(futures_quota=3)
    scheduler = BudgetScheduler(config, clock)
    assert scheduler.try_acquire(ORDER, Priority.HIGH)
    scheduler.submit(ORDER, Priority.HIGH)
    clock.now_ns = scheduler.next_wake_ns()
    scheduler.poll()
    high = class_metrics(scheduler, Priority.HIGH)
    assert high.granted == 2 and high.granted_weight == 4
    assert high.wait_max_ns == config.window_ns
    assert high.wait_mean_ns == pytest.approx(config.window_ns / 2)
    assert high.wait_p95_ns == config.window_ns


# ---- property tests on the synchronous core ----------------------------------------------------

PROPERTY_ENDPOINTS = (ORDER, CANCEL, ORDER_STATUS, "GET /api/v1/stopOrders", CONTRACT,
                      "POST /api/v1/bullet-public", UNKNOWN)
REPLY_KINDS = ("headers", "429", "200002", "1015")

submits = st.tuples(st.just("submit"), st.sampled_from(PROPERTY_ENDPOINTS),
                   st.sampled_from(Priority), st.none() | st.integers(0, 40_000))
# submits are drawn three times as often as other operations, so that queues actually form
operations = st.lists(st.one_of(
    submits, submits, submits,
    st.tuples(st.just("try"), st.sampled_from(PROPERTY_ENDPOINTS), st.sampled_from(Priority)),
    st.tuples(st.just("advance"), st.integers(0, 15_000)),
    st.tuples(st.just("reply"), st.sampled_from(PROPERTY_ENDPOINTS), st.sampled_from(REPLY_KINDS),
              st.integers(0, 60), st.none() | st.integers(0, 40_000)),
), min_size=10, max_size=60)


def _expected_utilisation_bps(config: BudgetConfig, back_offs: list[tuple[int, int]],
                              op: int, t: int) -> int:
    # independent model of degrade and recovery from the (op index, time) of each back-off
    base = round(config.target_utilisation * 10_000)
    down = round(config.degrade_step * 10_000)
    up = round(config.recovery_step * 10_000)
    floor = round(config.utilisation_floor * 10_000)
    u, anchor = base, 0
    for back_op, back_t in back_offs:
        if back_op > op:
            break
        u = min(base, u + up * ((back_t - anchor) // config.quiet_period_ns))
        u, anchor = max(floor, u - down), back_t
    return min(base, u + up * ((t - anchor) // config.quiet_period_ns))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations, futures_quota=st.integers(29, 90), public_quota=st.integers(29, 90),
       aging_s=st.integers(1, 10))
def test_budget_invariants_hold_for_any_workload(ops, futures_quota, public_quota, aging_s):
    config = BudgetConfig(futures_quota=futures_quota, public_quota=public_quota,
                          aging_ns=aging_s * NS_PER_SECOND)
    clock = FakeClock(1_000 * NS_PER_SECOND)
    scheduler = BudgetScheduler(config, clock)
    tickets: list[BudgetTicket] = []
    rejections: list[BudgetDeadlineError] = []
    grants: dict[str, list[tuple[int, int, int]]] = {p: [] for p in POOLS}  # (op, t, weight)
    back_offs: dict[str, list[tuple[int, int]]] = {p: [] for p in POOLS}
    blocks: dict[str, list[tuple[int, int, int]]] = {p: [] for p in POOLS}  # (op, from, until)
    # (op, until, remaining) of each header reading
    readings: dict[str, list[tuple[int, int, int]]] = {p: [] for p in POOLS}
    replies: dict[str, list[int]] = {p: [] for p in POOLS}
    seen_finished: set[int] = set()

    def collect(op: int) -> None:
        fresh = [t for t in tickets
                 if t.state is TicketState.GRANTED and id(t) not in seen_finished]
        for ticket in sorted(fresh, key=lambda t: t.finished_seq):  # in the order granted
            seen_finished.add(id(ticket))
            grants[ticket.pool].append((op, ticket.finished_ns, ticket.weight))
        for pool in POOLS:
            metrics = pool_metrics(scheduler, pool)
            assert metrics.tokens_available >= 0 and metrics.bucket_tokens >= 0

    for op, action in enumerate(ops):
        now = clock.now_ns
        if action[0] == "submit":
            _, endpoint, priority, timeout_ms = action
            deadline = None if timeout_ms is None else now + timeout_ms * NS_PER_MS
            try:
                tickets.append(scheduler.submit(endpoint, priority, deadline_ns=deadline))
            except BudgetDeadlineError as error:
                rejections.append(error)
        elif action[0] == "try":
            _, endpoint, priority = action
            if scheduler.try_acquire(endpoint, priority):
                pool, weight = scheduler.cost(endpoint).pool, scheduler.cost(endpoint).weight
                grants[pool].append((op, now, weight))
        elif action[0] == "advance":
            # the front end wakes every waiter at its projected grant instant: so does this
            target = now + action[1] * NS_PER_MS
            while (wake := scheduler.next_wake_ns()) is not None and wake <= target:
                clock.now_ns = max(clock.now_ns, wake)
                scheduler.poll()
                collect(op)
            clock.now_ns = target
            scheduler.poll()
        else:
            _, endpoint, kind, remaining, reset_ms = action
            pool = scheduler.cost(endpoint).pool
            headers = {} if reset_ms is None else {"gw-ratelimit-reset": str(reset_ms)}
            reset_ns = None if reset_ms is None else min(reset_ms * NS_PER_MS, config.window_ns)
            if kind == "headers":
                headers["gw-ratelimit-remaining"] = str(remaining)
                headers["gw-ratelimit-limit"] = str(config.quota(pool))
                scheduler.record_response(endpoint, 200, headers, "200000")
                replies[pool].append(op)
                until = now + (config.window_ns if reset_ns is None else reset_ns)
                readings[pool].append((op, until, remaining))
            else:
                status, code = {"429": (429, "429000"), "200002": (200, "200002"),
                                "1015": (403, "1015")}[kind]
                scheduler.record_response(endpoint, status, headers, code)
                hit = POOLS if kind == "1015" else (pool,)
                block = config.block_without_reset_ns if reset_ns is None else reset_ns
                for p in hit:
                    back_offs[p].append((op, now))
                    blocks[p].append((op, now, now + block))
                    replies[p].append(op)
        collect(op)

    # drain: with no new arrivals every pending request is settled in finite time
    end_op = len(ops)
    for _ in range(10_000):
        wake = scheduler.next_wake_ns()
        if wake is None:
            break
        clock.now_ns = max(clock.now_ns, wake)
        scheduler.poll()
    collect(end_op)
    assert scheduler.pending() == 0

    for pool in POOLS:
        log = grants[pool]
        quota = config.quota(pool)
        for i, (op, t, _) in enumerate(log):
            in_window = sum(w for _, g, w in log[:i + 1] if g > t - config.window_ns)
            target_bps = _expected_utilisation_bps(config, back_offs[pool], op, t)
            assert in_window <= quota * target_bps // 10_000 <= quota
            for block_op, start, until in blocks[pool]:
                assert not (op > block_op and start <= t < until)
        for reading_op, until, remaining in readings[pool]:
            later = [r for r in replies[pool] if r > reading_op]
            stop = later[0] if later else end_op + 1
            spent = sum(w for op, t, w in log if reading_op < op < stop and t < until)
            assert spent <= remaining

    for ticket in tickets:
        if ticket.deadline_ns is None:
            assert ticket.state is TicketState.GRANTED  # no starvation, no loss
        else:
            assert ticket.finished_ns <= ticket.deadline_ns
            if ticket.state is TicketState.EXPIRED:
                assert ticket.error.earliest_grant_ns is None or \
                    ticket.error.earliest_grant_ns > ticket.deadline_ns
    for error in rejections:
        assert error.earliest_grant_ns is None or error.earliest_grant_ns > error.deadline_ns
        assert error.failed_ns <= error.deadline_ns

    # aging order: a granted request never passed a waiting one with a smaller key
    for a in tickets:
        if a.state is not TicketState.GRANTED:
            continue
        for b in tickets:
            if b is a or b.pool != a.pool or b.seq > a.finished_seq:
                continue
            if b.finished_seq is not None and b.finished_seq < a.finished_seq:
                continue
            assert (a.key_ns, a.seq) < (b.key_ns, b.seq)


# ---- the async front end ----------------------------------------------------------------------


def test_concurrent_acquirers_are_granted_in_priority_order():
    async def scenario() -> list[tuple[Priority, int]]:
        vt = VirtualTime()
        manager = PingBudgetManager(small_config(futures_quota=3), clock_ns=vt.clock_ns,
                                    sleep=vt.sleep)
        assert manager.try_acquire(ORDER, Priority.CRITICAL)
        done: list[tuple[Priority, int]] = []

        async def client(priority: Priority) -> None:
            await manager.acquire(ORDER, priority)
            done.append((priority, vt.now_ns))

        tasks = []
        for priority in sorted(Priority, reverse=True):  # LOW arrives first
            tasks.append(asyncio.create_task(client(priority)))
            await vt.settle()
        await vt.run_until(tasks)
        return done

    done = run(scenario())
    assert [p for p, _ in done] == sorted(Priority)
    times = [t for _, t in done]
    assert times == sorted(times) and len(set(times)) == len(times)


def test_acquire_with_an_impossible_deadline_raises_without_waiting():
    async def scenario() -> VirtualTime:
        vt = VirtualTime()
        manager = PingBudgetManager(small_config(futures_quota=3), clock_ns=vt.clock_ns,
                                    sleep=vt.sleep)
        assert manager.try_acquire(ORDER, Priority.CRITICAL)
        with pytest.raises(BudgetDeadlineError, match="HIGH"):
            await manager.acquire(ORDER, Priority.HIGH, timeout_s=1.0)
        return vt

    vt = run(scenario())
    assert vt.sleep_calls == 0 and vt.now_ns == 0


def test_acquire_fails_as_soon_as_a_429_makes_its_deadline_impossible():
    async def scenario() -> tuple[int, float]:
        vt = VirtualTime()
        config = small_config(futures_quota=3)
        manager = PingBudgetManager(config, clock_ns=vt.clock_ns, sleep=vt.sleep)
        assert manager.try_acquire(ORDER, Priority.CRITICAL)
        timeout_s = 1.5 * config.window_ns / NS_PER_SECOND
        waiter = asyncio.create_task(manager.acquire(ORDER, Priority.HIGH, timeout_s=timeout_s))
        await vt.settle()
        vt.now_ns = NS_PER_SECOND
        manager.record_response(ORDER, 429, {"gw-ratelimit-reset": "30000"}, "429000")
        await vt.settle()
        assert waiter.done()
        with pytest.raises(BudgetDeadlineError):
            waiter.result()
        return vt.now_ns, timeout_s

    failed_at, timeout_s = run(scenario())
    assert failed_at < timeout_s * NS_PER_SECOND


def test_a_cancelled_acquire_leaves_the_queue():
    async def scenario() -> BudgetMetrics:
        vt = VirtualTime()
        manager = PingBudgetManager(small_config(futures_quota=3), clock_ns=vt.clock_ns,
                                    sleep=vt.sleep)
        assert manager.try_acquire(ORDER, Priority.CRITICAL)
        waiter = asyncio.create_task(manager.acquire(ORDER, Priority.MEDIUM))
        await vt.settle()
        assert manager.metrics().pools[0].priorities[Priority.MEDIUM].queued == 1
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        return manager.metrics()

    medium = run(scenario()).pools[0].priorities[Priority.MEDIUM]
    assert medium.queued == 0 and medium.cancelled == 1 and medium.granted == 0


def test_acquire_waits_on_the_real_clock_and_loop():
    # a 5 ms window keeps the real wait short; only the outcome is asserted, never the time
    config = small_config(futures_quota=3, window_ns=5 * NS_PER_MS)

    async def scenario() -> list[Priority]:
        manager = PingBudgetManager(config)
        assert manager.try_acquire(ORDER, Priority.HIGH)  # the pool is empty for 5 ms
        order: list[Priority] = []

        async def client(priority: Priority) -> None:
            await manager.acquire(ORDER, priority, timeout_s=5.0)
            order.append(priority)

        await asyncio.gather(client(Priority.LOW), client(Priority.CRITICAL))
        return order

    assert run(scenario()) == [Priority.CRITICAL, Priority.LOW]


def test_acquire_rejects_a_bad_timeout_naming_it():
    async def scenario() -> None:
        with pytest.raises(ValueError, match="timeout_s"):
            await PingBudgetManager().acquire(ORDER, Priority.HIGH, timeout_s=-1.0)

    run(scenario())
