"""Rate-limit pools ("Rate limit 2.0", kucoin-protocol.md section 3.3).

Each pool has a quota of weight per window (VIP0: Futures 2000 and Public 2000 per 30 s).
A client's window starts at its first request in that pool; each request deducts its
endpoint's weight. Public endpoints are counted per client IP, private ones per API key.
Every reply carries ``gw-ratelimit-limit``, ``gw-ratelimit-remaining`` and
``gw-ratelimit-reset`` (milliseconds until the window resets).
"""

from __future__ import annotations

import msgspec

FUTURES = "futures"
PUBLIC = "public"


class EndpointCost(msgspec.Struct, frozen=True):
    """The pool an endpoint draws from and its weight."""

    pool: str
    weight: int


# (method, route template) -> cost, from the reference's x-api-rate-limit-weight table.
ENDPOINT_COSTS: dict[tuple[str, str], EndpointCost] = {
    ("POST", "/api/v1/bullet-public"): EndpointCost(PUBLIC, 10),
    ("POST", "/api/v1/bullet-private"): EndpointCost(FUTURES, 10),
    ("GET", "/api/v1/contracts/active"): EndpointCost(PUBLIC, 3),
    ("GET", "/api/v1/contracts/{symbol}"): EndpointCost(PUBLIC, 3),
    ("GET", "/api/v1/ticker"): EndpointCost(PUBLIC, 2),
    ("GET", "/api/v1/level2/snapshot"): EndpointCost(PUBLIC, 3),
    ("GET", "/api/v1/level2/depth20"): EndpointCost(PUBLIC, 5),
    ("GET", "/api/v1/level2/depth100"): EndpointCost(PUBLIC, 5),
    ("GET", "/api/v1/kline/query"): EndpointCost(PUBLIC, 3),
    ("GET", "/api/v1/timestamp"): EndpointCost(PUBLIC, 2),
    ("GET", "/api/v1/account-overview"): EndpointCost(FUTURES, 5),
    ("POST", "/api/v1/orders"): EndpointCost(FUTURES, 2),
    ("POST", "/api/v1/orders/test"): EndpointCost(FUTURES, 2),
    ("DELETE", "/api/v1/orders/{orderId}"): EndpointCost(FUTURES, 1),
    ("DELETE", "/api/v1/orders/client-order/{clientOid}"): EndpointCost(FUTURES, 1),
    ("DELETE", "/api/v3/orders"): EndpointCost(FUTURES, 10),
    ("DELETE", "/api/v1/stopOrders"): EndpointCost(FUTURES, 15),
    ("GET", "/api/v1/orders"): EndpointCost(FUTURES, 2),
    ("GET", "/api/v1/orders/{orderId}"): EndpointCost(FUTURES, 5),
    ("GET", "/api/v1/orders/byClientOid"): EndpointCost(FUTURES, 5),
    ("GET", "/api/v1/stopOrders"): EndpointCost(FUTURES, 6),
    ("GET", "/api/v1/position"): EndpointCost(FUTURES, 2),
    ("GET", "/api/v1/positions"): EndpointCost(FUTURES, 2),
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
