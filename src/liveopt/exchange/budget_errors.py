"""The rate-limit budget's refusals: a deadline that cannot be met, a weight that never fits."""

from __future__ import annotations

from liveopt.exchange.priority import Priority

__all__ = ["BudgetCapacityError", "BudgetDeadlineError", "BudgetError"]


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
