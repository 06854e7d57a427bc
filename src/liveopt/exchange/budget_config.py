"""Configuration of the REST rate-limit budget: pools, quotas, endpoint weights.

Owns ``BudgetConfig`` (every tunable of the budget, ``docs/exchange/rate-limits.md``), the
documented quotas and back-off codes (kucoin-protocol.md 3.2/3.3), the endpoint weight table
``ENDPOINT_WEIGHTS`` and ``EndpointTable``, which maps a ``"METHOD /path"`` key to its
``EndpointCost``. Pure data and lookups: no clock, no state.
"""

from __future__ import annotations

import math

import msgspec

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
    "BudgetConfig",
    "EndpointCost",
    "EndpointTable",
]

FUTURES_POOL = "futures"
PUBLIC_POOL = "public"
POOLS: tuple[str, ...] = (FUTURES_POOL, PUBLIC_POOL)


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
