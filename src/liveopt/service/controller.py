"""``LiveOptimizerController``: the daemon's core (docs/controller.md).

One engine runs the main strategy (variant 0) and the experimental variants in one pass.
Market events arrive through :meth:`LiveOptimizerController.on_market_event` and are
processed in micro-batches (:mod:`liveopt.service.batcher`); after each pass the closed
trades go to the journals and out as events, and the main strategy's fills to the order
router (:mod:`liveopt.service.router_queue`). At the telemetry cadence the controller
ranks the variants, runs the promotion gate (every ``evaluate_every_s``), samples equity
and evaluates the alerts. Promotion copies a variant's parameters into variant 0 in the
engine and writes an audit record (:mod:`liveopt.service.promotion`).

Everything with a side effect is injected (engine factory, journals, router, budget, feed
status, clock, sleep, memory reader), so tests run it without network or wall time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import numpy as np

from liveopt.engine import STOP_REASON_NAMES, Engine
from liveopt.optimizer import VariantParams
from liveopt.service import leaderboard
from liveopt.service.alerts import AlertInputs, AlertMonitor
from liveopt.service.batcher import MicroBatcher
from liveopt.service.controller_config import ControllerConfig, EngineFactory
from liveopt.service.controller_reads import ControllerReads
from liveopt.service.errors import ConflictError, InvalidRequestError, NotFoundError
from liveopt.service.events import (
    AlertRaised,
    EmergencyStop,
    MetricsUpdated,
    PromotionApplied,
    PromotionCandidate,
    ServiceEvent,
    TradeExecuted,
    VariantStarted,
    VariantStopped,
)
from liveopt.service.promotion import Promoter
from liveopt.service.router_queue import MainOrderRouter, RouterQueue
from liveopt.service.runtime_metrics import (
    LatencyRecorder,
    MemoryReader,
    MemoryReading,
    RateMeter,
    read_process_memory,
)
from liveopt.service.subscriptions import EventHub, Subscription
from liveopt.service.views import (
    Alert,
    FeedStatus,
    GateVerdict,
    PromotionRecord,
    StopReport,
    TradeRecord,
)
from liveopt.units import NS_PER_SECOND

log = logging.getLogger("liveopt.controller")
MAIN = leaderboard.MAIN_VARIANT
# The engine's stop-reason code of a variant stopped by the caller (the emergency stop).
_STOPPED_BY_CALLER = next(c for c, name in STOP_REASON_NAMES.items() if name == "stopped")


class TradeSink(Protocol):
    """A journal: ``liveopt.service.journal.TradeJournal`` or anything with ``append``
    (and ``page`` for :meth:`LiveOptimizerController.trades`)."""

    def append(self, record: TradeRecord) -> None: ...


class BudgetSource(Protocol):
    """``PingBudgetManager``: only its metrics are read."""

    def metrics(self) -> Any: ...


class LiveOptimizerController(ControllerReads):
    """Implements ``liveopt.service.protocol.ControllerApi``.

    Parameters
    ----------
    config : ControllerConfig
    engine_factory : callable
        ``factory(main_params) -> Engine``; called now and on every :meth:`reset`.
    data_dir : path
        Where ``promotions.jsonl`` lives.
    main_params : VariantParams or None
        The configured main strategy (None: the optimizer config's defaults). If the
        audit log holds promotions, the last one's parameters replace it in variant 0.
    main_journal, experimental_journal : TradeSink or None
        Where closed trades of variant 0 and of the other variants go.
    router : MainOrderRouter or None
        Receives variant 0's fills in ``sim`` and ``live`` mode (never in ``paper``).
    budget : object with ``metrics()`` or None
    feed_status : callable returning FeedStatus, or None
    trade_hook : callable or None
        Per-trade handling in Python (validation, a strategy extension...): if it raises
        for a variant's trade, that variant is stopped as crashed; the rest continue.
    after_promotion : callable or None
        Called with each applied promotion or rollback (API or automatic) before the
        call returns, e.g. to snapshot the state at once: the tick log cannot replay a
        change of parameters.
    engine_input : callable or None
        ``engine_input(engine)`` returns what market events are pushed into instead of
        the engine (same ``on_trade``/``on_quote``/``on_depth`` calls), e.g.
        ``lambda e: RecordingInput(e, store)`` for the write-ahead tick log.
    clock_ns, sleep, memory_reader : injected time, waiting and memory reading.
    """

    def __init__(self, config: ControllerConfig, *, engine_factory: EngineFactory,
                 data_dir: str | os.PathLike[str], main_params: VariantParams | None = None,
                 main_journal: TradeSink | None = None,
                 experimental_journal: TradeSink | None = None,
                 router: MainOrderRouter | None = None, budget: BudgetSource | None = None,
                 feed_status: Callable[[], FeedStatus] | None = None,
                 trade_hook: Callable[[TradeRecord], None] | None = None,
                 engine_input: Callable[[Engine], Any] | None = None,
                 after_promotion: Callable[[PromotionRecord], None] | None = None,
                 clock_ns: Callable[[], int] = time.time_ns,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 memory_reader: MemoryReader = read_process_memory) -> None:
        self.config = config
        self._factory = engine_factory
        self._configured_main = main_params
        self._journals = {True: main_journal, False: experimental_journal}
        self._router = RouterQueue(router) if router is not None else None
        self._budget = budget
        self._feed_status = feed_status
        self._trade_hook = trade_hook
        self._after_promotion = after_promotion
        self._clock_ns = clock_ns
        self._sleep = sleep
        self._memory_reader = memory_reader
        self._hub = EventHub()
        self._alerts = AlertMonitor(config.alerts)
        self._latency = LatencyRecorder()
        self._promoter = Promoter(data_dir, clock_ns)
        self._started_ns = clock_ns()
        self._running = False
        self._attached = False  # fed since the first start
        self._emergency = False
        self._cadence_task: asyncio.Task[None] | None = None
        self._memory = MemoryReading(rss_bytes=0, total_bytes=0)
        # Counters (cumulative over resets).
        self.errors = 0
        self.journal_errors = 0
        self.router_suppressed = 0
        self.ignored_before_start = 0
        engine = self._build_engine()
        self._batcher = MicroBatcher(
            engine, clock_ns=clock_ns, interval_s=config.batch_interval_s,
            max_ticks=config.batch_max_ticks, latency=self._latency,
            rate=RateMeter(config.rate_window_s), after_pass=self._after_pass,
            engine_input=engine_input,
        )
        self._reset_run_state()

    # ------------------------------------------------------------------ engine

    @property
    def engine(self) -> Engine:
        """The engine (for the recovery snapshots and embedding; not for the API)."""
        return self._batcher.engine

    def _build_engine(self) -> Engine:
        engine = self._factory(self._configured_main)
        try:  # the audit log says what variant 0 runs now
            self._promoter.reapply(engine)
        except ValueError as error:
            self.errors += 1
            log.error("promotions.jsonl: cannot re-apply the main parameters: %s", error)
        return engine

    def _reset_run_state(self) -> None:
        self._crashed: dict[int, str] = {}
        self._inactive: set[int] = set()
        self._metrics: np.ndarray | None = None
        self._ranked: np.ndarray | None = None
        self._verdicts: dict[int, GateVerdict] = {}
        self._notified: set[int] = set()
        self._evaluated_at: int | None = None
        self._last_auto_ns: int | None = None
        self._equity: dict[int, deque[tuple[int, float]]] = {}
        self._results_cache = None
        self._halted = False

    # ------------------------------------------------------------------ events

    def subscribe(self, maxsize: int = 1000) -> Subscription:
        return self._hub.subscribe(maxsize)

    def raise_alert(self, alert: Alert) -> None:
        """An alert from another part of the process (the order router): active in
        :meth:`alerts` and health, and published once, until :meth:`clear_alert`."""
        if self._alerts.raise_external(alert):
            self._publish(AlertRaised(alert=alert))

    def clear_alert(self, kind: str) -> None:
        """End an alert raised with :meth:`raise_alert`."""
        self._alerts.clear_external(kind)

    def _publish(self, event: ServiceEvent) -> None:
        self._hub.publish(event)

    # ------------------------------------------------------------------ tick path

    def on_market_event(self, event: object) -> None:
        """The feed's sink (synchronous, from the event loop). Before the first
        :meth:`start` events are counted and ignored."""
        if not self._attached:
            self.ignored_before_start += 1
            return
        self._batcher.on_market_event(event)

    def flush(self) -> None:
        """Process the pending market events now."""
        self._batcher.flush()

    def _after_pass(self) -> None:
        engine = self.engine
        batch = engine.drain_fills()
        if not (len(batch.trades) or len(batch.fills)):
            return
        now = self._clock_ns()
        hashes = engine.variants.config_hash
        main_trades: list[np.void] = []
        for row in batch.trades:
            variant = int(row["variant"])
            try:
                record = leaderboard.trade_record(row, int(hashes[variant]))
                if self._trade_hook is not None:
                    self._trade_hook(record)
            except Exception as error:  # isolated: only this variant stops
                self._crash(variant, error, now)
                continue
            main = variant == MAIN
            self._journal(main, record)
            self._publish(TradeExecuted(ts_ns=now, main=main, trade=record))
            if main:
                main_trades.append(row.copy())
        if self._router is not None and self.config.mode != "paper":
            self._route_main(batch.fills, main_trades)

    def _journal(self, main: bool, record: TradeRecord) -> None:
        sink = self._journals[main]
        if sink is None:
            return
        try:
            sink.append(record)
        except Exception as error:  # a journal failure is an error, not a variant crash
            self.journal_errors += 1
            self.errors += 1
            log.error("journal append failed (%s): %r", "main" if main else "variants", error)

    def _route_main(self, fills: np.ndarray, main_trades: list[np.void]) -> None:
        # Variant 0's fills in time order; each exit fill stands for the next closed trade.
        assert self._router is not None
        exits = iter(main_trades)
        for fill in fills[fills["variant"] == MAIN]:
            if not self._running:  # halted: the emergency stop decides what is sent
                self.router_suppressed += 1
                continue
            if fill["entry"]:
                self._router.entry(fill.copy())
            else:
                trade = next(exits, None)
                if trade is not None:
                    self._router.exit(trade)

    def _crash(self, variant: int, error: BaseException, now: int) -> None:
        self.errors += 1
        if variant in self._crashed:
            return
        reason = f"crashed: {type(error).__name__}: {error}"
        self._crashed[variant] = reason
        self._inactive.add(variant)
        self.engine.stop([variant])
        log.error("variant %d %s", variant, reason)
        self._publish(VariantStopped(ts_ns=now, variant_id=variant, reason=reason))

    # ------------------------------------------------------------------ cadence

    async def _cadence_loop(self) -> None:
        while True:
            await self._sleep(self.config.cadence_s)
            try:
                self.tick()
            except Exception as error:  # the loop must survive any one bad tick
                self.errors += 1
                log.exception("cadence tick failed: %r", error)

    def tick(self) -> None:
        """One telemetry cadence: process pending events, refresh metrics and ranking,
        run the gate when due, sample equity, evaluate alerts, emit MetricsUpdated."""
        self.flush()
        now = self._clock_ns()
        metrics = self._refresh(now)
        due = self._evaluated_at is None or (
            now - self._evaluated_at >= self.config.evaluate_every_s * NS_PER_SECOND)
        if due:
            self._evaluate(metrics, now)
        self._sample_equity(metrics, now)
        self._memory = self._memory_reader()
        self._evaluate_alerts(now)
        self._publish(MetricsUpdated(
            ts_ns=now, ticks_processed=self._batcher.ticks,
            trades_closed=self.engine.trades_closed,
            variants_active=int(np.count_nonzero(metrics["active"])),
        ))

    def _refresh(self, now: int) -> np.ndarray:
        metrics = self.engine.metrics()
        self._metrics = metrics
        self._halted = self.engine.halted  # cheap now: metrics() ran the buffered events
        self._ranked = self.config.scoring.rank(metrics)
        self._results_cache = None
        for variant in np.flatnonzero(~metrics["active"]):
            variant = int(variant)
            if variant not in self._inactive:
                self._inactive.add(variant)
                reason = leaderboard.stop_reason(metrics[variant], self._crashed)
                self._publish(VariantStopped(ts_ns=now, variant_id=variant, reason=reason))
        return metrics

    def evaluate(self) -> None:
        """Run the promotion gate now over the current metrics; announce new candidates
        and, with ``auto_promote``, apply the best one."""
        self.flush()
        now = self._clock_ns()
        self._evaluate(self._refresh(now), now)

    def _evaluate(self, metrics: np.ndarray, now: int) -> None:
        decisions = (self.config.gate.evaluate_metrics(metrics, baseline=MAIN)
                     if len(metrics) > 1 else [])
        self._verdicts = {d.variant: leaderboard.gate_verdict(d) for d in decisions}
        self._evaluated_at = now
        self._results_cache = None
        candidates = self.gate().candidates
        for variant in candidates:
            if variant not in self._notified:
                self._publish(PromotionCandidate(ts_ns=now, variant_id=variant,
                                                 verdict=self._verdicts[variant]))
        self._notified = set(candidates)
        if self.config.auto_promote and self._running:
            self._auto_promote(candidates, now)

    def _auto_promote(self, candidates: list[int], now: int) -> None:
        cooldown = self.config.auto_promote_cooldown_s * NS_PER_SECOND
        if self._last_auto_ns is not None and now - self._last_auto_ns < cooldown:
            return
        hashes = self.engine.variants.config_hash
        for variant in candidates:  # best first
            if variant not in self._crashed and hashes[variant] != hashes[MAIN]:
                self._apply_promotion(variant, "auto")
                self._last_auto_ns = now
                return

    def _sample_equity(self, metrics: np.ndarray, now: int) -> None:
        assert self._ranked is not None
        leaders = [int(v) for v in self._ranked["variant"][: self.config.equity_leaders]]
        for variant in {MAIN, *leaders}:
            history = self._equity.get(variant)
            if history is None:
                history = self._equity[variant] = deque(maxlen=self.config.equity_points)
            history.append((now, float(metrics["equity"][variant])))

    def _evaluate_alerts(self, now: int) -> None:
        metrics = self._metrics
        rate_limited = 0
        if self._budget is not None:
            try:
                rate_limited = int(self._budget.metrics().rate_limited)
            except Exception as error:
                self.errors += 1
                log.error("budget metrics failed: %r", error)
        inputs = AlertInputs(
            variants=len(self.engine), crashed=len(self._crashed),
            memory_pct=self._memory.percent, rate_limited_total=rate_limited,
            emergency_stopped=self._emergency,
            all_roi_negative=bool(metrics is not None and len(metrics)
                                  and np.all(metrics["roi_pct"] < 0.0)),
            router_failures_total=self._router.failures if self._router else 0,
        )
        for alert in self._alerts.evaluate(inputs, now):
            self._publish(AlertRaised(alert=alert))

    # ------------------------------------------------------------------ control

    async def start(self) -> None:
        if self._running:
            raise ConflictError("the optimizer is already running")
        now = self._clock_ns()
        engine = self.engine
        if not self._attached:
            started = list(range(len(engine)))
            self._attached = True
        else:  # after an emergency stop: what it stopped runs again, crashes stay down
            stopped = self.engine.metrics()["stop_reason"]
            started = [v for v in np.flatnonzero(stopped == _STOPPED_BY_CALLER).tolist()
                       if v not in self._crashed]
            if started:
                engine.resume(started)
            self._inactive -= set(started)
        self._running = True
        self._emergency = False
        router = self._router.router if self._router else None
        if router is not None and hasattr(router, "resume"):
            router.resume()
        hashes = engine.variants.config_hash
        for variant in started:
            self._publish(VariantStarted(ts_ns=now, variant_id=variant,
                                         config_hash=int(hashes[variant])))
        if self._cadence_task is None or self._cadence_task.done():
            self._cadence_task = asyncio.get_running_loop().create_task(
                self._cadence_loop(), name="liveopt-cadence")
        self._refresh(now)
        log.info("optimizer started: %d variants, mode %s", len(engine), self.config.mode)

    async def stop(self, *, flatten: bool = False, source: str = "api") -> StopReport:
        if not self._running:
            raise ConflictError("the optimizer is not running")
        self.flush()
        engine = self.engine
        engine.stop(np.arange(len(engine)))
        self._running = False
        self._emergency = True
        now = self._clock_ns()
        if self._router is not None:
            self.router_suppressed += self._router.clear()
        self._publish(EmergencyStop(ts_ns=now, flatten=flatten, source=source))
        log.warning("EMERGENCY STOP (%s, flatten=%s)", source, flatten)
        self._refresh(now)
        self._evaluate_alerts(now)
        cancelled, closed, errors = 0, False, []
        if flatten and self._router is not None and self.config.mode != "paper":
            try:
                cancelled, closed = await self._router.router.flatten()
            except Exception as error:
                self.errors += 1
                errors.append(f"{type(error).__name__}: {error}")
                log.error("flatten failed: %r", error)
        return StopReport(stopped_at_ns=now, flatten=flatten, orders_cancelled=int(cancelled),
                          position_closed=bool(closed), errors=errors)

    async def reset(self) -> None:
        if self._running:
            raise ConflictError("stop the optimizer before resetting it")
        main = self.engine.variants[MAIN]
        engine = self._factory(self._configured_main)
        if engine.variants.config_hash[MAIN] != self.engine.variants.config_hash[MAIN]:
            try:  # keep the promoted main strategy
                engine.set_variant_params(MAIN, main)
            except ValueError as error:
                raise ConflictError(f"the main strategy cannot run after a reset: {error}"
                                    ) from None
        self._batcher.replace_engine(engine)
        self._attached = False
        self._emergency = False
        self._reset_run_state()
        log.info("optimizer reset: %d fresh variants", len(engine))

    async def promote(self, variant_id: int) -> PromotionRecord:
        return self._apply_promotion(self._variant_id(variant_id), "api")

    def _apply_promotion(self, variant: int, source: str) -> PromotionRecord:
        self.flush()
        record = self._promoter.promote(self.engine, variant, source,
                                        self._verdicts.get(variant))
        return self._applied(record)

    async def rollback(self) -> PromotionRecord:
        self.flush()
        return self._applied(self._promoter.rollback(self.engine))

    def _applied(self, record: PromotionRecord) -> PromotionRecord:
        if self._after_promotion is not None:
            self._after_promotion(record)
        self._publish(PromotionApplied(ts_ns=record.ts_ns, record=record))
        self._refresh(record.ts_ns)
        return record

    def _variant_id(self, variant_id: object) -> int:
        if isinstance(variant_id, bool) or not isinstance(variant_id, int | np.integer):
            raise InvalidRequestError(f"variantId: {variant_id!r} must be an integer")
        if not 0 <= int(variant_id) < len(self.engine):
            raise NotFoundError(f"no variant {variant_id}")
        return int(variant_id)

    async def aclose(self) -> None:
        """Stop the background tasks (daemon shutdown); pending events are processed."""
        self.flush()
        if self._cadence_task is not None:
            self._cadence_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._cadence_task
            self._cadence_task = None
        if self._router is not None:
            await self._router.close()
