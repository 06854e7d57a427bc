"""The arithmetic of one rate-limit pool: token bucket, grant log, blocks and corrections.

``_PoolLedger`` is the model ``BudgetScheduler`` keeps per pool (and clones to project grant
instants): a token bucket refilled continuously and pro rata plus the log of the last
window's grants, utilisation degraded on back-off replies and recovered after quiet periods,
blocks after a 429, and the server's ``gw-ratelimit-*`` figures. Package-internal.
"""

from __future__ import annotations

from collections import deque

from liveopt.exchange.budget_config import BudgetConfig

_BPS = 10_000  # utilisations are held in basis points so degrade/recovery steps are exact
_MAX_PROJECTION_STEPS = 1_000_000  # guards the event walk; each step passes one event


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
