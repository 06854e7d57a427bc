"""The controller's read side: consistent, cheap views for the API and the telemetry.

Reads use the metrics, ranking and verdicts of the last cadence tick (or evaluation),
never an engine pass of their own, so an API request cannot delay the tick path.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from liveopt.service import leaderboard
from liveopt.service.errors import InvalidRequestError, NotFoundError
from liveopt.service.promotion import params_to_dict
from liveopt.service.views import (
    Alert,
    BudgetStatus,
    EquityCurve,
    FeedStatus,
    GateSummary,
    Health,
    LatencyHistogram,
    OptimizerStatus,
    PromotionRecord,
    TradePage,
    VariantDetail,
    VariantResult,
)
from liveopt.units import NS_PER_SECOND

if TYPE_CHECKING:
    from liveopt.service.controller import LiveOptimizerController

MAX_PAGE = 1000


class ControllerReads:
    """Mixed into ``LiveOptimizerController``: the ``ControllerApi`` reads."""

    def _current(self: LiveOptimizerController) -> np.ndarray:
        if self._metrics is None:
            self._refresh(self._clock_ns())
        assert self._metrics is not None
        return self._metrics

    def _results(self: LiveOptimizerController) -> list[VariantResult]:
        if self._results_cache is None:
            metrics = self._current()
            assert self._ranked is not None
            self._results_cache = leaderboard.build_results(
                metrics, self._ranked, self._verdicts, self._crashed)
        return self._results_cache

    def status(self: LiveOptimizerController) -> OptimizerStatus:
        metrics = self._current()
        now = self._clock_ns()
        active = int(np.count_nonzero(metrics["active"]))
        return OptimizerStatus(
            running=self._running, mode=self.config.mode, symbol=self.config.symbol,
            optimizer_enabled=self.config.optimizer_enabled, variants=len(metrics),
            variants_active=active, ticks_processed=self._batcher.ticks,
            ticks_per_s=self._batcher.rate.rate(now),
            trades_closed=self.engine.trades_closed,
            halted=self._halted, uptime_s=(now - self._started_ns) / NS_PER_SECOND,
            main_config_hash=int(self.engine.variants.config_hash[leaderboard.MAIN_VARIANT]),
            promotions=len(self._promoter.records), feed=self._feed(),
        )

    def results(self: LiveOptimizerController, limit: int | None = None) -> list[VariantResult]:
        rows = self._results()
        if limit is not None:
            if limit < 1:
                raise InvalidRequestError(f"limit: {limit} must be >= 1")
            rows = rows[:limit]
        return list(rows)

    def variant(self: LiveOptimizerController, variant_id: int) -> VariantDetail:
        if isinstance(variant_id, bool) or not 0 <= variant_id < len(self.engine):
            raise NotFoundError(f"no variant {variant_id}")
        row = next(r for r in self._results() if r.variant_id == variant_id)
        metrics = self._current()[variant_id]
        return VariantDetail(
            result=row, params=params_to_dict(self.engine.variants[variant_id]),
            metrics={name: _plain(metrics[name]) for name in metrics.dtype.names},
            equity_curve=self._curve(variant_id),
        )

    def trades(self: LiveOptimizerController, *, main: bool = False,
               variant_id: int | None = None, offset: int = 0, limit: int = 100) -> TradePage:
        if offset < 0:
            raise InvalidRequestError(f"offset: {offset} must be >= 0")
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidRequestError(f"limit: {limit} must be in [1, {MAX_PAGE}]")
        journal: Any = self._journals[main]
        if journal is None or not hasattr(journal, "page"):
            return TradePage(items=[], total=0, offset=offset, limit=limit)
        return journal.page(variant_id=variant_id, offset=offset, limit=limit)

    def gate(self: LiveOptimizerController) -> GateSummary:
        return leaderboard.gate_summary(self.config.gate, self._results(), self._evaluated_at,
                                        self.config.auto_promote)

    def health(self: LiveOptimizerController) -> Health:
        now = self._clock_ns()
        feed = self._feed()
        alerts = self._alerts.active()
        if not self._running:
            state = "stopped"
        elif self._halted:
            state = "halted"
        elif alerts or (self._feed_status is not None and feed.state != "connected"):
            state = "degraded"
        else:
            state = "ok"
        return Health(
            status=state, ticks_per_s=self._batcher.rate.rate(now),
            latency_p50_ms=self._latency.percentile_ms(50),
            latency_p99_ms=self._latency.percentile_ms(99), feed=feed,
            budget=self._budget_status(), memory_rss_mb=self._memory.rss_mb,
            memory_pct=self._memory.percent, errors=self.errors,
            variant_crashes=len(self._crashed), alerts=alerts,
        )

    def alerts(self: LiveOptimizerController) -> list[Alert]:
        return self._alerts.active()

    def latency(self: LiveOptimizerController) -> LatencyHistogram:
        return self._latency.histogram()

    def equity_curves(self: LiveOptimizerController,
                      variant_ids: list[int]) -> list[EquityCurve]:
        for variant in variant_ids:
            if not 0 <= variant < len(self.engine):
                raise NotFoundError(f"no variant {variant}")
        return [self._curve(v) for v in variant_ids]

    def promotions(self: LiveOptimizerController) -> list[PromotionRecord]:
        return list(self._promoter.records)

    # ------------------------------------------------------------------ helpers

    def _curve(self: LiveOptimizerController, variant: int) -> EquityCurve:
        history = self._equity.get(variant, ())
        return EquityCurve(variant_id=variant, ts_ns=[t for t, _ in history],
                           equity=[e for _, e in history])

    def _feed(self: LiveOptimizerController) -> FeedStatus:
        if self._feed_status is not None:
            try:
                return self._feed_status()
            except Exception:  # a broken provider must not break the health read
                self.errors += 1
        batcher = self._batcher
        last = batcher.last_receive_ns
        age = None if last is None else (self._clock_ns() - last) / NS_PER_SECOND
        return FeedStatus(state="connected" if self._attached else "stopped",
                          symbol=self.config.symbol, reconnects=0, gaps=batcher.gaps,
                          duplicates=0, malformed=batcher.rejected, last_event_age_s=age)

    def _budget_status(self: LiveOptimizerController) -> list[BudgetStatus]:
        if self._budget is None:
            return []
        try:
            pools = self._budget.metrics().pools
        except Exception:
            self.errors += 1
            return []
        return [BudgetStatus(pool=p.pool, tokens=float(p.tokens_available),
                             capacity=float(p.capacity),
                             target_utilisation=float(p.target_utilisation),
                             rate_limited=int(p.rate_limited)) for p in pools]


def _plain(value: Any) -> float | int | bool | str | None:
    # numpy scalars to JSON-safe Python values; an undefined figure (NaN) is None.
    if isinstance(value, np.bool_ | bool):
        return bool(value)
    if isinstance(value, np.integer | int):
        return int(value)
    value = float(value)
    return value if math.isfinite(value) else None
