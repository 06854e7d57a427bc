"""An in-memory ``ControllerApi`` for testing the HTTP API, the telemetry feed and the
dashboard without an engine, a feed or an exchange.

Everything is deterministic: values derive from the variant id and from how many times
``advance()`` was called, and time comes from an injected ``clock_ns``. The main strategy is
variant ``MAIN_VARIANT_ID`` (0), as in the real controller.

Test hooks (not part of the protocol):

- ``calls``: every control call in order, e.g. ``("stop", {"flatten": True})``;
- ``advance(ticks)``: ticks flow, every variant's PnL moves, equity curves grow;
- ``set_net_pnl(variant_id, pnl)``: make a variant climb (or fall) in the ranking;
- ``add_trade(record, main=...)``; ``publish(event)``: push a ``ServiceEvent`` to every
  subscriber (safe from another thread than the server's event loop);
- ``fail_next(operation, error)``: the next call of that control operation raises ``error``.
"""

from __future__ import annotations

import asyncio
import hmac
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable

from liveopt.service.errors import ConflictError, NotFoundError
from liveopt.service.events import (
    EmergencyStop,
    MetricsUpdated,
    PromotionApplied,
    ServiceEvent,
    VariantStarted,
)
from liveopt.service.views import (
    Alert,
    BudgetStatus,
    EquityCurve,
    FeedStatus,
    GateSummary,
    GateVerdict,
    Health,
    LatencyHistogram,
    OptimizerStatus,
    PromotionRecord,
    StopReport,
    TradePage,
    TradeRecord,
    VariantDetail,
    VariantResult,
)
from liveopt.units import NS_PER_SECOND

MAIN_VARIANT_ID = 0
START_NS = 1_700_000_000_000_000_000
INITIAL_EQUITY = 1_000.0
#: Variants whose net PnL exceeds this pass the fake promotion gate.
GATE_PNL_THRESHOLD = 40.0
LATENCY_BOUNDS_MS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, float("inf"))


class ManualClock:
    """A nanosecond clock the test moves by hand."""

    def __init__(self, now_ns: int = START_NS) -> None:
        self.now_ns = now_ns

    def __call__(self) -> int:
        return self.now_ns

    def advance(self, seconds: float) -> None:
        self.now_ns += int(seconds * NS_PER_SECOND)


_CLOSED = object()


class FakeSubscription:
    """A bounded event queue that drops its oldest event when full (like the real one)."""

    def __init__(self, maxsize: int, on_close: Callable[[FakeSubscription], None]) -> None:
        self.maxsize = maxsize
        self.dropped = 0
        self._items: deque[object] = deque()
        self._wakeup: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._on_close = on_close
        self.closed = False

    def push(self, event: object) -> None:
        """Queue ``event`` (from any thread)."""
        loop = self._loop
        if loop is not None and _running_loop() is not loop:
            loop.call_soon_threadsafe(self._push_here, event)
        else:
            self._push_here(event)

    def _push_here(self, event: object) -> None:
        if self.closed and event is not _CLOSED:
            return
        if len(self._items) >= self.maxsize and event is not _CLOSED:
            self._items.popleft()
            self.dropped += 1
        self._items.append(event)
        if self._wakeup is not None:
            self._wakeup.set()

    async def _iterate(self) -> AsyncIterator[ServiceEvent]:
        self._loop = asyncio.get_running_loop()
        self._wakeup = asyncio.Event()
        while True:
            while self._items:
                item = self._items.popleft()
                if item is _CLOSED:
                    return
                yield item  # type: ignore[misc]
            self._wakeup.clear()
            await self._wakeup.wait()

    def __aiter__(self) -> AsyncIterator[ServiceEvent]:
        return self._iterate()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._on_close(self)
        self.push(_CLOSED)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class _VariantState:
    """Mutable fake state of one variant (rendered into frozen views on every read)."""

    def __init__(self, variant_id: int, start_ns: int) -> None:
        self.variant_id = variant_id
        self.params: dict[str, float | int | str] = {
            "rsi_period": 10 + variant_id % 7,
            "threshold": round(0.5 + 0.01 * variant_id, 4),
            "timeframe": "1min" if variant_id % 2 == 0 else "5min",
        }
        self.config_hash = 1_000_003 * (variant_id + 1)
        # A deterministic spread of results: some variants win, some lose.
        self.net_pnl = float((variant_id * 37) % 23 - 9) * 5.0
        self.trades = 10 + variant_id % 13
        self.active = True
        self.stop_reason = ""
        self.curve_ts: list[int] = [start_ns]
        self.curve_equity: list[float] = [INITIAL_EQUITY]


class FakeController:
    """A complete in-memory ``ControllerApi`` (see the module docstring for test hooks)."""

    def __init__(self, variants: int = 10, *, clock_ns: Callable[[], int] | None = None,
                 running: bool = False, mode: str = "paper", symbol: str = "XBTUSDTM",
                 trades_per_variant: int = 3, auto_promote: bool = False) -> None:
        self.clock_ns = clock_ns or ManualClock()
        self.mode = mode
        self.symbol = symbol
        self.auto_promote = auto_promote
        self.running = running
        self.halted = False
        self.calls: list[tuple[str, dict[str, object]]] = []
        self.ticks_processed = 0
        self.errors = 0
        self.variant_crashes = 0
        self.alerts_list: list[Alert] = []
        self._variant_count = variants
        self._trades_per_variant = trades_per_variant
        self._lock = threading.RLock()
        self._subscriptions: list[FakeSubscription] = []
        self._failures: dict[str, Exception] = {}
        self._started_ns = self.clock_ns()
        self._build()

    # --- test hooks ------------------------------------------------------------------
    def _build(self) -> None:
        now = self.clock_ns()
        self._variants = {i: _VariantState(i, now) for i in range(self._variant_count)}
        self._promotions: list[PromotionRecord] = []
        self._undo: list[tuple[dict[str, float | int | str], int]] = []
        self._main_trades: list[TradeRecord] = []
        self._experimental_trades: list[TradeRecord] = []
        self._latency_counts = [0] * len(LATENCY_BOUNDS_MS)
        self._latency_sum_ms = 0.0
        for state in self._variants.values():
            for k in range(self._trades_per_variant):
                record = self._trade(state, k, now - (self._trades_per_variant - k) * NS_PER_SECOND)
                if state.variant_id == MAIN_VARIANT_ID:
                    self._main_trades.append(record)
                else:
                    self._experimental_trades.append(record)

    def _trade(self, state: _VariantState, k: int, exit_ns: int) -> TradeRecord:
        pnl = round(state.net_pnl / max(self._trades_per_variant, 1), 6)
        return TradeRecord(
            variant_id=state.variant_id, config_hash=state.config_hash,
            side="long" if k % 2 == 0 else "short", entry_ts_ns=exit_ns - 60 * NS_PER_SECOND,
            exit_ts_ns=exit_ns, entry_price=50_000.0 + k, exit_price=50_000.0 + k + pnl,
            size_lots=1.0, fees=0.06, funding=0.0, net_pnl=pnl, roi_pct=pnl / 10.0,
            exit_reason="take_profit" if pnl > 0 else "stop_loss")

    def advance(self, ticks: int = 100) -> None:
        """Process ``ticks`` fake ticks: PnL moves, equity curves grow, latency fills."""
        with self._lock:
            self.ticks_processed += ticks
            now = self.clock_ns()
            step = self.ticks_processed // max(ticks, 1)
            for state in self._variants.values():
                if not state.active:
                    continue
                state.net_pnl += float((state.variant_id * 7 + step) % 5 - 2)
                state.curve_ts.append(now)
                state.curve_equity.append(INITIAL_EQUITY + state.net_pnl)
            for i in range(ticks):
                sample_ms = LATENCY_BOUNDS_MS[i % 6] * 0.9
                self._latency_sum_ms += sample_ms
                for j, bound in enumerate(LATENCY_BOUNDS_MS):
                    if sample_ms <= bound:
                        self._latency_counts[j] += 1
        self.publish(MetricsUpdated(ts_ns=now, ticks_processed=self.ticks_processed,
                                    trades_closed=self._trades_closed(),
                                    variants_active=self._active()))

    def set_net_pnl(self, variant_id: int, net_pnl: float) -> None:
        """Force a variant's PnL (and append an equity point)."""
        with self._lock:
            state = self._variants[variant_id]
            state.net_pnl = net_pnl
            state.curve_ts.append(self.clock_ns())
            state.curve_equity.append(INITIAL_EQUITY + net_pnl)

    def add_trade(self, record: TradeRecord, *, main: bool = False) -> None:
        """Append a closed trade to the main or the experimental journal."""
        with self._lock:
            (self._main_trades if main else self._experimental_trades).append(record)

    def add_alert(self, alert: Alert) -> None:
        with self._lock:
            self.alerts_list.append(alert)

    def publish(self, event: ServiceEvent) -> None:
        """Deliver ``event`` to every open subscription."""
        with self._lock:
            subscriptions = list(self._subscriptions)
        for subscription in subscriptions:
            subscription.push(event)

    def fail_next(self, operation: str, error: Exception) -> None:
        """Make the next call of control ``operation`` (e.g. "promote") raise ``error``."""
        self._failures[operation] = error

    @property
    def subscriber_count(self) -> int:
        with self._lock:
            return len(self._subscriptions)

    # --- reads -------------------------------------------------------------------------
    def _active(self) -> int:
        return sum(1 for s in self._variants.values() if s.active) if self.running else 0

    def _trades_closed(self) -> int:
        return len(self._main_trades) + len(self._experimental_trades)

    def _feed(self) -> FeedStatus:
        return FeedStatus(state="connected" if self.running else "stopped", symbol=self.symbol,
                          reconnects=2, gaps=1, duplicates=0, malformed=3,
                          last_event_age_s=0.2 if self.running else None)

    def _uptime_s(self) -> float:
        return (self.clock_ns() - self._started_ns) / NS_PER_SECOND

    def status(self) -> OptimizerStatus:
        with self._lock:
            uptime = self._uptime_s()
            return OptimizerStatus(
                running=self.running, mode=self.mode, symbol=self.symbol,
                optimizer_enabled=True, variants=len(self._variants),
                variants_active=self._active(), ticks_processed=self.ticks_processed,
                ticks_per_s=self.ticks_processed / uptime if uptime > 0 else 0.0,
                trades_closed=self._trades_closed(), halted=self.halted, uptime_s=uptime,
                main_config_hash=self._variants[MAIN_VARIANT_ID].config_hash,
                promotions=len(self._promotions), feed=self._feed())

    def _verdict(self, state: _VariantState) -> GateVerdict:
        passed = state.net_pnl > GATE_PNL_THRESHOLD and state.variant_id != MAIN_VARIANT_ID
        return GateVerdict(promoted=passed, p_value=0.01 if passed else 0.4,
                           adjusted_p_value=0.03 if passed else 0.9,
                           deflated_sharpe=1.2 if passed else 0.1,
                           reasons=[] if passed else ["insufficient_evidence"])

    def _ranked(self) -> list[_VariantState]:
        return sorted(self._variants.values(), key=lambda s: (-s.net_pnl, s.variant_id))

    def _row(self, rank: int, state: _VariantState) -> VariantResult:
        equity = INITIAL_EQUITY + state.net_pnl
        return VariantResult(
            rank=rank, variant_id=state.variant_id, config_hash=state.config_hash,
            is_main=state.variant_id == MAIN_VARIANT_ID, score=state.net_pnl / 100.0,
            trades=state.trades, win_rate=0.5 + (state.variant_id % 5) / 20.0,
            net_pnl=state.net_pnl, roi_pct=state.net_pnl / INITIAL_EQUITY * 100.0,
            sharpe=state.net_pnl / 50.0, sortino=None if state.net_pnl < 0 else 1.5,
            max_drawdown=0.02 + (state.variant_id % 4) / 100.0,
            profit_factor=None if state.trades == 0 else 1.0 + state.net_pnl / 100.0,
            equity=equity, side=(state.variant_id % 3) - 1,
            active=state.active and self.running, stop_reason=state.stop_reason,
            gate=self._verdict(state))

    def results(self, limit: int | None = None) -> list[VariantResult]:
        with self._lock:
            rows = [self._row(rank, s) for rank, s in enumerate(self._ranked(), start=1)]
        return rows if limit is None else rows[:limit]

    def variant(self, variant_id: int) -> VariantDetail:
        with self._lock:
            if variant_id not in self._variants:
                raise NotFoundError(f"no variant {variant_id}")
            ranked = self._ranked()
            state = self._variants[variant_id]
            rank = ranked.index(state) + 1
            return VariantDetail(
                result=self._row(rank, state), params=dict(state.params),
                metrics={"net_pnl": state.net_pnl, "trades": state.trades,
                         "active": state.active, "stop_reason": state.stop_reason or None},
                equity_curve=self._curve(state))

    def trades(self, *, main: bool = False, variant_id: int | None = None, offset: int = 0,
               limit: int = 100) -> TradePage:
        with self._lock:
            source = self._main_trades if main else self._experimental_trades
            selected = [t for t in source if variant_id is None or t.variant_id == variant_id]
        selected.sort(key=lambda t: (-t.exit_ts_ns, t.variant_id))
        return TradePage(items=selected[offset:offset + limit], total=len(selected),
                         offset=offset, limit=limit)

    def gate(self) -> GateSummary:
        with self._lock:
            failed: dict[str, int] = {}
            candidates = []
            for state in self._ranked():
                verdict = self._verdict(state)
                if verdict.promoted:
                    candidates.append(state.variant_id)
                for reason in verdict.reasons:
                    failed[reason] = failed.get(reason, 0) + 1
            return GateSummary(evaluated_at_ns=self.clock_ns() if self.ticks_processed else None,
                               test="welch_t", correction="holm", alpha=0.05,
                               candidates=candidates, failed_by_reason=failed,
                               auto_promote=self.auto_promote)

    def health(self) -> Health:
        with self._lock:
            uptime = self._uptime_s()
            if self.halted:
                status = "halted"
            elif not self.running:
                status = "stopped"
            else:
                status = "degraded" if self.alerts_list else "ok"
            return Health(
                status=status,
                ticks_per_s=self.ticks_processed / uptime if uptime > 0 else 0.0,
                latency_p50_ms=0.09 if self.ticks_processed else None,
                latency_p99_ms=4.5 if self.ticks_processed else None,
                feed=self._feed(),
                budget=[BudgetStatus(pool="public", tokens=1500.0, capacity=2000.0,
                                     target_utilisation=0.7, rate_limited=0),
                        BudgetStatus(pool="futures", tokens=820.5, capacity=2000.0,
                                     target_utilisation=0.7, rate_limited=4)],
                memory_rss_mb=123.5, memory_pct=1.5, errors=self.errors,
                variant_crashes=self.variant_crashes, alerts=list(self.alerts_list))

    def alerts(self) -> list[Alert]:
        with self._lock:
            return list(self.alerts_list)

    def latency(self) -> LatencyHistogram:
        with self._lock:
            return LatencyHistogram(le_ms=list(LATENCY_BOUNDS_MS),
                                    counts=list(self._latency_counts),
                                    sum_ms=self._latency_sum_ms,
                                    count=self._latency_counts[-1])

    def _curve(self, state: _VariantState) -> EquityCurve:
        return EquityCurve(variant_id=state.variant_id, ts_ns=list(state.curve_ts),
                           equity=list(state.curve_equity))

    def equity_curves(self, variant_ids: list[int]) -> list[EquityCurve]:
        with self._lock:
            return [self._curve(self._variants[v]) for v in variant_ids if v in self._variants]

    def promotions(self) -> list[PromotionRecord]:
        with self._lock:
            return list(self._promotions)

    def subscribe(self, maxsize: int = 1000) -> FakeSubscription:
        subscription = FakeSubscription(maxsize, self._unsubscribe)
        with self._lock:
            self._subscriptions.append(subscription)
        return subscription

    def _unsubscribe(self, subscription: FakeSubscription) -> None:
        with self._lock:
            if subscription in self._subscriptions:
                self._subscriptions.remove(subscription)

    # --- control -----------------------------------------------------------------------
    def _enter(self, operation: str, **arguments: object) -> None:
        self.calls.append((operation, arguments))
        error = self._failures.pop(operation, None)
        if error is not None:
            raise error

    async def start(self) -> None:
        self._enter("start")
        with self._lock:
            if self.running:
                raise ConflictError("the optimizer is already running")
            self.running = True
            self.halted = False
            ids = sorted(self._variants)
        for variant_id in ids:
            self.publish(VariantStarted(ts_ns=self.clock_ns(), variant_id=variant_id,
                                        config_hash=self._variants[variant_id].config_hash))

    async def stop(self, *, flatten: bool = False) -> StopReport:
        self._enter("stop", flatten=flatten)
        with self._lock:
            if not self.running:
                raise ConflictError("the optimizer is not running")
            self.running = False
            self.halted = True
            now = self.clock_ns()
        self.publish(EmergencyStop(ts_ns=now, flatten=flatten, source="api"))
        return StopReport(stopped_at_ns=now, flatten=flatten,
                          orders_cancelled=2 if flatten else 0, position_closed=flatten,
                          errors=[])

    async def reset(self) -> None:
        self._enter("reset")
        with self._lock:
            if self.running:
                raise ConflictError("cannot reset while the optimizer is running")
            self.halted = False
            self.ticks_processed = 0
            self._build()

    async def promote(self, variant_id: int) -> PromotionRecord:
        self._enter("promote", variant_id=variant_id)
        with self._lock:
            if variant_id not in self._variants:
                raise NotFoundError(f"no variant {variant_id}")
            if variant_id == MAIN_VARIANT_ID:
                raise ConflictError("variant 0 is the main strategy already")
            main = self._variants[MAIN_VARIANT_ID]
            source = self._variants[variant_id]
            record = PromotionRecord(
                ts_ns=self.clock_ns(), action="promote", variant_id=variant_id,
                previous_config_hash=main.config_hash, new_config_hash=source.config_hash,
                previous_params=dict(main.params), new_params=dict(source.params),
                source="api", evidence=self._verdict(source))
            self._undo.append((dict(main.params), main.config_hash))
            main.params = dict(source.params)
            main.config_hash = source.config_hash
            self._promotions.append(record)
        self.publish(PromotionApplied(ts_ns=record.ts_ns, record=record))
        return record

    async def rollback(self) -> PromotionRecord:
        self._enter("rollback")
        with self._lock:
            if not self._undo:
                raise ConflictError("no promotion to roll back")
            params, config_hash = self._undo.pop()
            main = self._variants[MAIN_VARIANT_ID]
            record = PromotionRecord(
                ts_ns=self.clock_ns(), action="rollback", variant_id=MAIN_VARIANT_ID,
                previous_config_hash=main.config_hash, new_config_hash=config_hash,
                previous_params=dict(main.params), new_params=params, source="api",
                evidence=None)
            main.params = dict(params)
            main.config_hash = config_hash
            self._promotions.append(record)
        self.publish(PromotionApplied(ts_ns=record.ts_ns, record=record))
        return record


class StaticToken:
    """An ``ApiTokenLike`` for tests: constant-time comparison with a fixed secret."""

    def __init__(self, secret: str) -> None:
        self._secret = secret.encode()

    def matches(self, candidate: str) -> bool:
        return hmac.compare_digest(self._secret, candidate.encode())

    def __repr__(self) -> str:
        return "StaticToken(<hidden>)"
