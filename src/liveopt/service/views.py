"""What the daemon shows: typed read models the controller hands to the API, the telemetry
feed and the dashboard.

Every struct here is frozen and encodes to JSON with numbers as numbers (never strings);
timestamps are integer nanoseconds (``*_ns``), durations seconds (``*_s``) or
milliseconds (``*_ms``) as named. The controller builds them; the API serialises them
as they are, so ``docs/api.md`` and ``/openapi.json`` describe exactly these shapes.
"""

from __future__ import annotations

import msgspec

#: Trading modes. ``paper``: every strategy on paper only, no exchange orders.
#: ``sim``: the main strategy's orders go to the local simulator. ``live``: to KuCoin
#: (needs keys and the explicit confirmation flag).
MODES = ("paper", "sim", "live")


class FeedStatus(msgspec.Struct, frozen=True, kw_only=True):
    """The market-data feed as the engine sees it."""

    state: str  # "connected", "connecting", "disconnected", "stopped"
    symbol: str
    reconnects: int
    gaps: int
    duplicates: int
    malformed: int
    last_event_age_s: float | None  # None before the first event


class BudgetStatus(msgspec.Struct, frozen=True, kw_only=True):
    """One rate-limit pool of the shared PingBudgetManager."""

    pool: str
    tokens: float
    capacity: float
    target_utilisation: float
    rate_limited: int  # 429-class answers seen


class Alert(msgspec.Struct, frozen=True, kw_only=True):
    """A condition an operator must see (dashboard, log line, event)."""

    kind: str  # "variant_crash_rate", "memory", "rate_limit", "emergency_stop", "negative_roi"
    severity: str  # "warning" or "critical"
    message: str
    ts_ns: int
    active: bool = True


class OptimizerStatus(msgspec.Struct, frozen=True, kw_only=True):
    """``GET /api/optimizer/status``."""

    running: bool
    mode: str
    symbol: str
    optimizer_enabled: bool
    variants: int
    variants_active: int
    ticks_processed: int
    ticks_per_s: float
    trades_closed: int
    halted: bool
    uptime_s: float
    main_config_hash: int
    promotions: int
    feed: FeedStatus


class GateSummary(msgspec.Struct, frozen=True, kw_only=True):
    """The promotion gate's last evaluation over all variants."""

    evaluated_at_ns: int | None
    test: str
    correction: str
    alpha: float
    candidates: list[int]  # variant ids that passed every check, best first
    failed_by_reason: dict[str, int]  # reason name -> variants failing it
    auto_promote: bool


class GateVerdict(msgspec.Struct, frozen=True, kw_only=True):
    """One variant's gate decision (``liveopt.scoring.GateDecision`` as shown)."""

    promoted: bool
    p_value: float | None
    adjusted_p_value: float | None
    deflated_sharpe: float | None
    reasons: list[str]


class VariantResult(msgspec.Struct, frozen=True, kw_only=True):
    """One leaderboard row (``GET /api/optimizer/results``, telemetry)."""

    rank: int
    variant_id: int
    config_hash: int
    is_main: bool
    score: float | None
    trades: int
    win_rate: float | None
    net_pnl: float
    roi_pct: float
    sharpe: float | None
    sortino: float | None
    max_drawdown: float
    profit_factor: float | None
    equity: float
    side: int
    active: bool
    stop_reason: str
    gate: GateVerdict | None


class EquityCurve(msgspec.Struct, frozen=True, kw_only=True):
    """Sampled equity of one variant (bounded history, oldest first)."""

    variant_id: int
    ts_ns: list[int]
    equity: list[float]


class VariantDetail(msgspec.Struct, frozen=True, kw_only=True):
    """``GET /api/optimizer/variants/{id}``."""

    result: VariantResult
    params: dict[str, float | int | str]
    metrics: dict[str, float | int | bool | str | None]
    equity_curve: EquityCurve


class TradeRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One closed trade, as journaled (``trades.jsonl``, ``experimental-trades.jsonl``) and
    served by ``GET /api/trades/experimental``."""

    variant_id: int
    config_hash: int
    side: str  # "long" or "short"
    entry_ts_ns: int
    exit_ts_ns: int
    entry_price: float
    exit_price: float
    size_lots: float
    fees: float
    funding: float
    net_pnl: float
    roi_pct: float
    exit_reason: str


class TradePage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[TradeRecord]
    total: int
    offset: int
    limit: int


class Health(msgspec.Struct, frozen=True, kw_only=True):
    """``GET /api/health`` and the dashboard's health panel."""

    status: str  # "ok", "degraded", "halted", "stopped"
    ticks_per_s: float
    latency_p50_ms: float | None  # tick received -> decision taken
    latency_p99_ms: float | None
    feed: FeedStatus
    budget: list[BudgetStatus]
    memory_rss_mb: float
    memory_pct: float
    errors: int
    variant_crashes: int
    alerts: list[Alert]


class LatencyHistogram(msgspec.Struct, frozen=True, kw_only=True):
    """Tick-to-decision latency (a tick received -> the engine pass that consumed it done),
    cumulative since start, in Prometheus form: ``counts[i]`` observations <= ``le_ms[i]``
    (the last bound is +inf)."""

    le_ms: list[float]
    counts: list[int]
    sum_ms: float
    count: int


class PromotionRecord(msgspec.Struct, frozen=True, kw_only=True):
    """An applied promotion or rollback (audit log ``promotions.jsonl``)."""

    ts_ns: int
    action: str  # "promote" or "rollback"
    variant_id: int
    previous_config_hash: int
    new_config_hash: int
    previous_params: dict[str, float | int | str]
    new_params: dict[str, float | int | str]
    source: str  # "api", "auto"
    evidence: GateVerdict | None


class StopReport(msgspec.Struct, frozen=True, kw_only=True):
    """What ``POST /api/optimizer/stop`` did."""

    stopped_at_ns: int
    flatten: bool
    orders_cancelled: int
    position_closed: bool
    errors: list[str]
