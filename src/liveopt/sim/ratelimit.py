"""Rate-limit pools ("Rate limit 2.0", kucoin-protocol.md section 3.3).

Each pool has a quota of weight per window (VIP0: Futures 2000 and Public 2000 per 30 s).
A client's window starts at its first request in that pool; each request deducts its
endpoint's weight. Public endpoints are counted per client IP, private ones per API key.
Every reply carries ``gw-ratelimit-limit``, ``gw-ratelimit-remaining`` and
``gw-ratelimit-reset`` (milliseconds until the window resets).
"""

from __future__ import annotations

import msgspec

from liveopt.exchange.budget_config import ENDPOINT_WEIGHTS
from liveopt.exchange.budget_config import FUTURES_POOL as FUTURES
from liveopt.exchange.budget_config import PUBLIC_POOL as PUBLIC


class EndpointCost(msgspec.Struct, frozen=True):
    """The pool an endpoint draws from and its weight."""

    pool: str
    weight: int


# The routes the simulator serves, priced from the reference's x-api-rate-limit-weight
# table (one copy of it, in liveopt.exchange.budget_config, shared with the client's
# budget). The table has no weight for the account overview; the simulator charges it 5
# from the Futures pool.
_SERVED = (
    "POST /api/v1/bullet-public", "POST /api/v1/bullet-private",
    "GET /api/v1/contracts/active", "GET /api/v1/contracts/{symbol}", "GET /api/v1/ticker",
    "GET /api/v1/level2/snapshot", "GET /api/v1/level2/depth20",
    "GET /api/v1/level2/depth100", "GET /api/v1/kline/query", "GET /api/v1/timestamp",
    "GET /api/v1/account-overview", "POST /api/v1/orders", "POST /api/v1/orders/test",
    "DELETE /api/v1/orders/{orderId}", "DELETE /api/v1/orders/client-order/{clientOid}",
    "DELETE /api/v3/orders", "DELETE /api/v1/stopOrders", "GET /api/v1/orders",
    "GET /api/v1/orders/{orderId}", "GET /api/v1/orders/byClientOid",
    "GET /api/v1/stopOrders", "GET /api/v1/position", "GET /api/v1/positions",
)
_WEIGHTS = {key: EndpointCost(pool, weight) for key, pool, weight in ENDPOINT_WEIGHTS}
_WEIGHTS["GET /api/v1/account-overview"] = EndpointCost(FUTURES, 5)

# (method, route template) -> cost.
ENDPOINT_COSTS: dict[tuple[str, str], EndpointCost] = {
    tuple(key.split(" ", 1)): _WEIGHTS[key] for key in _SERVED  # type: ignore[misc]
}

# A request the router does not know still gets headers: it is counted as public, weight 1.
UNKNOWN_ENDPOINT_COST = EndpointCost(PUBLIC, 1)


class RateDecision(msgspec.Struct, frozen=True):
    """The outcome of charging one request: whether it may run, and the header values."""

    allowed: bool
    limit: int
    remaining: int
    reset_ms: int

    def headers(self) -> dict[str, str]:
        """The ``gw-ratelimit-*`` headers for the reply."""
        return {
            "gw-ratelimit-limit": str(self.limit),
            "gw-ratelimit-remaining": str(self.remaining),
            "gw-ratelimit-reset": str(self.reset_ms),
        }


class _Window:
    __slots__ = ("start_ns", "used")

    def __init__(self, start_ns: int) -> None:
        self.start_ns = start_ns
        self.used = 0


class RateLimiter:
    """Fixed windows per (pool, client). Pure bookkeeping: the caller passes the time."""

    def __init__(self, quotas: dict[str, int], window_s: float) -> None:
        for pool, quota in quotas.items():
            if quota <= 0:
                raise ValueError(f"rate limit: quota of pool {pool!r} must be > 0, got {quota}")
        if window_s <= 0:
            raise ValueError(f"rate limit: window_s must be > 0, got {window_s}")
        self._quotas = dict(quotas)
        self._window_ns = int(window_s * 1e9)
        self._windows: dict[tuple[str, str], _Window] = {}
        self.rejected = 0

    def _window(self, pool: str, client: str, now_ns: int) -> _Window:
        if pool not in self._quotas:
            raise KeyError(f"rate limit: unknown pool {pool!r}")
        window = self._windows.get((pool, client))
        if window is None or now_ns - window.start_ns >= self._window_ns:
            window = _Window(now_ns)
            self._windows[(pool, client)] = window
        return window

    def _decision(self, pool: str, window: _Window, allowed: bool, now_ns: int) -> RateDecision:
        quota = self._quotas[pool]
        reset_ns = max(0, window.start_ns + self._window_ns - now_ns)
        return RateDecision(allowed, quota, max(0, quota - window.used), -(-reset_ns // 1_000_000))

    def charge(self, cost: EndpointCost, client: str, now_ns: int) -> RateDecision:
        """Deduct ``cost`` from the client's window when it fits; a request that does not
        fit is refused (and counted) without deducting anything."""
        window = self._window(cost.pool, client, now_ns)
        if window.used + cost.weight > self._quotas[cost.pool]:
            self.rejected += 1
            return self._decision(cost.pool, window, False, now_ns)
        window.used += cost.weight
        return self._decision(cost.pool, window, True, now_ns)

    def peek(self, pool: str, client: str, now_ns: int) -> RateDecision:
        """The current state of a client's window without charging it."""
        window = self._window(pool, client, now_ns)
        return self._decision(pool, window, window.used < self._quotas[pool], now_ns)
