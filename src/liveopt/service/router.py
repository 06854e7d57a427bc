"""``MainOrderRouter``: the main strategy's paper decisions, sent to the exchange.

The main strategy is variant 0 of the engine and trades on paper like every variant. In modes
``sim`` and ``live`` its decisions are also sent to an exchange (the local simulator or
KuCoin); the variants' never are. The router turns the engine's records into orders:

- an entry fill becomes a market order of the same side and whole lots (clientOid
  ``entry-{symbol}-{ts_ns}``, so a repeat can never open a second position), then a
  reduce-only mark-price stop at the protective price, kept by a ``StopReplaceCoordinator``
  (new stop placed before the old one goes), and a reduce-only take-profit;
- a trailing move goes to the coordinator, which coalesces and debounces;
- a closed paper trade becomes a reduce-only ``closeOrder``, then the router's orders are
  cancelled and the exchange is read until it shows the position flat;
- the emergency flatten cancels the router's orders and closes the position reduce-only.

A ``Reconciler`` pass (``run_reconciler``) compares the exchange with what the router
believes; a position the router does not know halts entries until :meth:`resume`.

Nothing here raises into the engine loop: callers schedule the coroutines as tasks, and every
failure is typed, counted, reported to the sink and retried where a repeat is safe (the same
clientOid). ``docs/live-trading.md`` is the user-facing description.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from liveopt.exchange.budget import PingBudgetManager
from liveopt.exchange.client_oid import client_oid
from liveopt.exchange.priority import Priority
from liveopt.exchange.reconcile import (
    PositionDrift,
    ReconcileEvent,
    Reconciler,
    ReconcilerConfig,
    ReconcileReport,
    TradingHalted,
)
from liveopt.exchange.rest import KucoinFuturesRest
from liveopt.exchange.rest_models import OrderRequest
from liveopt.exchange.stops import (
    EmergencyClose,
    RestStopGateway,
    StopEvent,
    StopReplaceCoordinator,
)
from liveopt.exchange.trade_math import (
    ContractSpec,
    Side,
    TradeMathError,
    protective_stop_price,
)
from liveopt.service.router_orders import (
    OrderDesk,
    check_destination,
    describe,
    take_profit_request,
)
from liveopt.service.router_types import (
    EntryFill,
    ExitCompleted,
    OpenPosition,
    RouterConfig,
    RouterEvent,
    RouterFlattened,
    RouterHalted,
    RouterReport,
    RouterResumed,
    RouterStatus,
    fill_ts,
    halt_alert,
    record_field,
    stop_failure_alert,
)
from liveopt.units import NS_PER_SECOND

__all__ = ["MainOrderRouter", "check_destination"]

log = logging.getLogger(__name__)


class MainOrderRouter:
    """Sends the main strategy's (variant 0's) decisions to the exchange and keeps its
    position protected.

    Parameters
    ----------
    rest : KucoinFuturesRest
        The signed REST client (its rate-limit budget, retries and signing apply).
    symbol : str
        The contract traded, e.g. ``"XBTUSDTM"``.
    contract : ContractSpec
        Its spec, from the exchange's contract endpoint (``decode_contract_spec``).
    leverage : int
        Leverage of the orders (1 .. ``contract.max_leverage``).
    budget : PingBudgetManager or None
        The shared budget the REST client uses; only read for :meth:`status`.
    clock_ns : callable
        Current time in integer nanoseconds.
    rng : random.Random
        Jitter of the router's and the stop coordinator's back-off.
    sleep : callable
        ``await sleep(seconds)``; injected so tests do not wait.
    sink : callable or None
        Receives every :data:`RouterEvent`; its exceptions are counted, never raised.
    config : RouterConfig
        Mode, stop-loss and take-profit, retries, reconciler interval.
    live_confirmed : bool
        Must be True to route to a real exchange (see :func:`check_destination`).

    Raises
    ------
    LiveTradingNotConfirmedError
        A real exchange URL without ``mode="live"`` and ``live_confirmed=True``.
    ValueError
        Naming the field, for a symbol that is not the contract's or a bad leverage.
    """

    def __init__(self, rest: KucoinFuturesRest, *, symbol: str, contract: ContractSpec,
                 leverage: int, budget: PingBudgetManager | None = None,
                 clock_ns: Callable[[], int], rng: random.Random,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 sink: Callable[[RouterEvent], None] | None = None,
                 config: RouterConfig | None = None, live_confirmed: bool = False) -> None:
        self._config = config if config is not None else RouterConfig()
        check_destination(rest.base_url, self._config.mode, live_confirmed)
        if symbol != contract.symbol:
            raise ValueError(f"router: symbol {symbol!r} is not the contract's "
                             f"({contract.symbol!r})")
        self._check_leverage(leverage, contract)
        self._symbol = symbol
        self._contract = contract
        self._leverage = leverage
        self._stop_loss_roi = self._config.stop_loss_roi_pct
        self._take_profit_roi = self._config.take_profit_roi_pct
        self._budget = budget
        self._clock_ns = clock_ns
        self._rng = rng
        self._sleep = sleep
        self._report = RouterReport(sink, clock_ns)
        self._desk = OrderDesk(rest, symbol=symbol, config=self._config, clock_ns=clock_ns,
                               rng=rng, sleep=sleep, emit=self._report.emit)
        self._gateway = RestStopGateway(rest, leverage=leverage)
        self._reconciler = Reconciler(
            self._gateway, symbols=[symbol], clock=clock_ns, sleep=sleep,
            config=ReconcilerConfig(interval_ns=int(self._config.reconcile_interval_s
                                                    * NS_PER_SECOND)),
            sink=self._on_reconcile_event)
        # Entries, exits, flattens and reconcile passes never interleave: a pass reading the
        # exchange between an entry's fill and its tracking would see an unknown position.
        self._lock = asyncio.Lock()
        self._position: OpenPosition | None = None
        self._pending_trail: Decimal | str | float | None = None
        self._stop_revision = 0
        self._stopped = False
        self._entry_order_id = ""
        self._take_profit_order_id = ""
        self._exit_order_id = ""
        self._last_stop: tuple[str | None, str | None, str] = (None, None, "")

    @staticmethod
    def _check_leverage(leverage: int, contract: ContractSpec) -> None:
        if isinstance(leverage, bool) or not isinstance(leverage, int) \
                or not 1 <= leverage <= contract.max_leverage:
            raise ValueError(f"router: leverage must be an integer in 1..{contract.max_leverage}"
                             f", got {leverage!r}")

    # ----------------------------------------------------------------- configuration

    def set_risk(self, *, leverage: int | None = None, stop_loss_roi_pct: float | None = None,
                 take_profit_roi_pct: float | None = None) -> None:
        """New main-strategy parameters (after a promotion); they apply from the next entry.
        Raises ValueError naming the field."""
        if leverage is not None:
            self._check_leverage(leverage, self._contract)
        changed = RouterConfig(
            mode=self._config.mode,
            stop_loss_roi_pct=(self._stop_loss_roi if stop_loss_roi_pct is None
                               else stop_loss_roi_pct),
            take_profit_roi_pct=(self._take_profit_roi if take_profit_roi_pct is None
                                 else take_profit_roi_pct))
        self._stop_loss_roi = changed.stop_loss_roi_pct
        self._take_profit_roi = changed.take_profit_roi_pct
        if leverage is not None:
            self._leverage = leverage

    @property
    def reconciler(self) -> Reconciler:
        """The reconciler watching the symbol (its metrics, halt reason)."""
        return self._reconciler

    @property
    def accepts_entries(self) -> bool:
        """False while halted by the reconciler or stopped by a flatten."""
        return not (self._reconciler.halted or self._stopped)

    # ----------------------------------------------------------------- entry

    async def on_entry(self, fill: Any) -> bool:
        """The engine filled variant 0's entry on paper (a ``FILL_DTYPE`` row): open the same
        position on the exchange, hand its stop to the coordinator and place the
        take-profit. Returns whether the entry was placed, without waiting for the stop's
        worker (:meth:`settle` does); never raises."""
        try:
            return await self._entry(fill)
        except Exception as exc:  # reported and counted; the engine loop must not see it
            self._report.fail("entry", exc)
            return False

    async def _entry(self, fill: Any) -> bool:
        try:
            entry = EntryFill.from_record(fill, self._contract)
        except ValueError as exc:
            return self._report.refuse(fill_ts(fill), str(exc))
        ts_ns, side, lots, paper_price = entry.ts_ns, entry.side, entry.lots, entry.price
        try:
            # Checked before sending: an entry whose stop could not be placed stays unsent.
            fallback_stop = protective_stop_price(self._contract, side, paper_price,
                                                  self._stop_loss_roi, self._leverage)
        except TradeMathError as exc:
            return self._report.refuse(ts_ns, f"no protective stop: {exc}")
        async with self._lock:
            if not self.accepts_entries:
                return self._report.refuse(ts_ns, self._refusal_reason())
            if self._position is not None:
                return self._report.refuse(ts_ns, "a position of the main strategy is already open")
            await self._open(ts_ns, side, lots, paper_price, fallback_stop)
        return True

    async def _open(self, ts_ns: int, side: Side, lots: int, paper_price: float,
                    fallback_stop: Decimal) -> None:
        self._pending_trail = None  # a trail of an earlier, failed entry must not carry over
        order_side = "buy" if side is Side.LONG else "sell"
        request = OrderRequest.market(client_oid("entry", self._symbol, ts_ns), self._symbol,
                                      order_side, lots, self._leverage)
        ack = await self._desk.send("entry", request, Priority.HIGH)
        position = OpenPosition(entry_ts_ns=ts_ns, side=side, lots=lots,
                                entry_order_id=ack.order_id)
        self._position = position
        self._entry_order_id = ack.order_id
        self._report.counts["entries"] += 1
        exchange = await self._desk.read_position(lambda p: p.current_qty * side > 0)
        if exchange is None:
            # The reconciler will see whatever the exchange holds, and halt on it.
            raise RuntimeError(f"the exchange shows no {side.name.lower()} position after "
                               f"entry order {ack.order_id}")
        position.position_id = exchange.id or f"{self._symbol}-position"
        entry_price = exchange.avg_entry_price or paper_price
        try:
            stop_price = protective_stop_price(self._contract, side, entry_price,
                                               self._stop_loss_roi, self._leverage)
        except TradeMathError:
            stop_price = fallback_stop  # the paper price's stop, checked before sending
        coordinator = StopReplaceCoordinator(
            self._gateway, symbol=self._symbol, position_id=position.position_id,
            qty=exchange.current_qty, tick_size=self._contract.tick_size, clock=self._clock_ns,
            rng=self._rng, sleep=self._sleep, config=self._config.stop,
            sink=self._on_stop_event, initial_revision=self._stop_revision)
        position.coordinator = coordinator
        self._reconciler.track(coordinator)
        coordinator.submit(stop_price)
        pending, self._pending_trail = self._pending_trail, None
        if pending is not None:
            self._forward_trail(coordinator, pending)
        try:
            await self._place_take_profit(position, abs(exchange.current_qty), entry_price)
        except Exception as exc:  # the stop protects the position; the target is optional
            self._report.fail("take_profit", exc)

    async def _place_take_profit(self, position: OpenPosition, lots: int,
                                 entry_price: float) -> None:
        kind = self._config.take_profit_order
        if kind == "none" or self._take_profit_roi is None:
            return
        request = take_profit_request(
            self._contract, position.side, entry_price, self._take_profit_roi, self._leverage,
            lots, client_oid("tp", self._symbol, position.entry_ts_ns), kind,
            self._config.stop.stop_price_type)
        ack = await self._desk.send("take_profit", request, Priority.HIGH)
        position.take_profit_order_id = ack.order_id
        self._take_profit_order_id = ack.order_id

    # ----------------------------------------------------------------- trailing

    async def on_trail(self, new_stop_price: Decimal | str | float) -> bool:
        """The paper position's stop moved: move the exchange stop (coalesced and debounced
        by the coordinator). Returns whether the move was accepted; never raises."""
        try:
            position = self._position
            if position is None or position.gone_on_exchange:
                self._report.counts["trails_ignored"] += 1
                return False
            coordinator = position.coordinator
            if coordinator is None:  # the entry is under way: applied once the stop exists
                self._pending_trail = new_stop_price
                return True
            return self._forward_trail(coordinator, new_stop_price)
        except Exception as exc:
            self._report.fail("trail", exc)
            return False

    def _forward_trail(self, coordinator: StopReplaceCoordinator,
                       price: Decimal | str | float) -> bool:
        accepted = coordinator.submit(price)
        self._report.counts["trails_forwarded" if accepted else "trails_ignored"] += 1
        return accepted

    # ----------------------------------------------------------------- exit

    async def on_exit(self, trade: Any) -> bool:
        """Variant 0's paper position closed (a ``TRADE_DTYPE`` row or ``ClosedTrade``):
        close the exchange position reduce-only, cancel its stop and take-profit, and check
        that it is flat. Returns whether the exchange was seen flat; never raises."""
        try:
            variant = int(record_field(trade, "variant"))
            if variant != 0:
                raise ValueError(f"trade of variant {variant}: only variant 0 is routed")
            async with self._lock:
                position = self._position
                if position is None:
                    return False  # its entry was never sent (refused or failed)
                return await self._close(position)
        except Exception as exc:
            self._report.fail("exit", exc)
            return False

    async def _close(self, position: OpenPosition) -> bool:
        # Close first: should the close fail, the stop and its coordinator still protect the
        # position (and the reconciler still knows it); retired only once it is closed.
        exchange = await self._desk.position()
        closed_by_order = False
        if exchange.current_qty * position.side > 0:
            request = OrderRequest(
                client_oid=client_oid("exit", self._symbol, position.entry_ts_ns),
                symbol=self._symbol, type="market", close_order=True, reduce_only=True)
            ack = await self._desk.send("exit", request, Priority.CRITICAL)
            self._exit_order_id = ack.order_id
            closed_by_order = True
        await self._retire_coordinator(position)
        cancelled, errors = await self._desk.cancel_router_orders()
        after = await self._desk.read_position(lambda p: p.current_qty == 0)
        flat = after is not None
        self._position = None
        self._report.counts["exits"] += 1
        self._report.emit(ExitCompleted(ts_ns=self._clock_ns(), closed_by_order=closed_by_order,
                                 orders_cancelled=cancelled, flat=flat,
                                 exchange_qty=self._desk.exchange_qty or 0))
        for error in errors:
            self._report.fail("exit", RuntimeError(error))
        if not flat:
            self._report.fail("exit", RuntimeError(
                f"the exchange still shows {self._desk.exchange_qty} lots after the exit"))
        return flat

    async def _retire_coordinator(self, position: OpenPosition) -> None:
        coordinator = position.coordinator
        if coordinator is None:
            return
        if self._reconciler.coordinators.get(self._symbol) is coordinator:
            self._reconciler.untrack(self._symbol)
        self._stop_revision = max(self._stop_revision, coordinator.revision)
        self._remember_stop(coordinator)
        position.coordinator = None
        await coordinator.close()

    # ----------------------------------------------------------------- emergency stop

    async def flatten(self) -> tuple[int, bool]:
        """The emergency stop with flatten: refuse entries from now on (until
        :meth:`resume`), cancel the main strategy's orders, close the position reduce-only,
        then cancel its stops. Returns ``(orders cancelled, position closed)``; never
        raises (failures are in the ``RouterFlattened`` event and the counters)."""
        self._stopped = True
        now = self._clock_ns()
        self._report.emit(RouterHalted(ts_ns=now, source="flatten", reason="emergency stop"))
        errors: list[str] = []
        async with self._lock:
            position, self._position = self._position, None
            if position is not None:
                try:
                    await self._retire_coordinator(position)
                except Exception as exc:  # the flatten goes on
                    errors.append(describe(exc))
            outcome = await self._desk.flatten(client_oid("flatten", self._symbol, now))
        if outcome.close_order_id:
            self._exit_order_id = outcome.close_order_id
        errors += outcome.errors
        for error in errors:
            self._report.fail("flatten", RuntimeError(error))
        self._report.emit(RouterFlattened(
            ts_ns=self._clock_ns(), orders_cancelled=outcome.cancelled,
            position_closed=outcome.closed, flat=outcome.flat, errors=errors))
        return outcome.cancelled, outcome.closed

    def resume(self) -> None:
        """Allow entries again after a reconciler halt or a flatten (an operator decision,
        once the unknown position has been dealt with)."""
        self._reconciler.resume()
        self._stopped = False
        self._report.emit(RouterResumed(ts_ns=self._clock_ns()))

    # ----------------------------------------------------------------- reconciler

    async def reconcile_once(self) -> ReconcileReport:
        """One reconciler pass, never interleaved with an entry, exit or flatten."""
        async with self._lock:
            return await self._reconciler.reconcile()

    async def run_reconciler(self, *, passes: int | None = None) -> None:
        """Reconcile every ``reconcile_interval_s`` (``passes`` times, or until cancelled)."""
        done = 0
        while passes is None or done < passes:
            try:
                await self.reconcile_once()
            except Exception as exc:  # a pass never ends the loop
                self._report.fail("reconcile", exc)
            done += 1
            if passes is not None and done >= passes:
                return
            await self._sleep(self._config.reconcile_interval_s)

    def _on_reconcile_event(self, event: ReconcileEvent) -> None:
        self._report.emit(event)
        position = self._position
        if isinstance(event, PositionDrift) and event.action == "dropped" \
                and position is not None and event.position_id == position.position_id:
            # The exchange closed it (stop or take-profit filled): the coordinator is gone.
            coordinator = position.coordinator
            if coordinator is not None:
                self._stop_revision = max(self._stop_revision, coordinator.revision)
                self._remember_stop(coordinator)
            position.coordinator = None
            position.gone_on_exchange = True
        if isinstance(event, TradingHalted):
            self._report.emit(RouterHalted(ts_ns=event.ts_event, source="reconciler",
                                    reason=event.reason))
            self._report.emit(halt_alert(event))

    def _on_stop_event(self, event: StopEvent) -> None:
        self._report.emit(event)
        if isinstance(event, EmergencyClose) and event.ok:
            self._report.emit(stop_failure_alert(event))

    # ----------------------------------------------------------------- reporting

    def _refusal_reason(self) -> str:
        if self._reconciler.halted:
            return f"halted: {self._reconciler.halt_reason}"
        return "stopped by the emergency stop"

    def _remember_stop(self, coordinator: StopReplaceCoordinator) -> None:
        active = coordinator.active
        self._last_stop = (coordinator.state.value,
                           None if active is None else active.stop_price,
                           "" if active is None else active.order_id)

    def status(self) -> RouterStatus:
        """A snapshot of the router's state and counters."""
        position = self._position
        coordinator = None if position is None else position.coordinator
        if coordinator is not None:
            self._remember_stop(coordinator)
        stop_state, stop_price, stop_order_id = (self._last_stop if position is not None
                                                 else (None, None, ""))
        metrics = self._reconciler.metrics()
        counts = self._report.counts
        return RouterStatus(
            mode=self._config.mode, symbol=self._symbol, leverage=self._leverage,
            halted=self._reconciler.halted, halt_reason=self._reconciler.halt_reason,
            stopped=self._stopped, position_open=position is not None,
            position_id="" if position is None else position.position_id,
            exchange_qty=self._desk.exchange_qty, entry_order_id=self._entry_order_id,
            take_profit_order_id=self._take_profit_order_id,
            exit_order_id=self._exit_order_id, stop_state=stop_state, stop_price=stop_price,
            stop_order_id=stop_order_id, **{name: counts[name] for name in (
                "entries", "exits", "entries_refused", "trails_forwarded", "trails_ignored",
                "sink_errors")},
            errors=sum(self._report.errors_by_operation.values()),
            errors_by_operation=dict(self._report.errors_by_operation),
            last_error=self._report.last_error,
            reconcile_passes=metrics.passes, reconcile_failures=metrics.failures,
            budget_rate_limited=(None if self._budget is None
                                 else self._budget.metrics().rate_limited))

    async def settle(self) -> None:
        """Wait until the protective stop's coordinator has nothing left to do (the latest
        stop target is on the exchange, or it gave up and closed the position)."""
        position = self._position
        coordinator = None if position is None else position.coordinator
        if coordinator is not None:
            await coordinator.settle()

    async def close(self) -> None:
        """Stop the stop coordinator's worker (orders on the exchange stay as they are)."""
        position = self._position
        if position is not None and position.coordinator is not None:
            await self._retire_coordinator(position)

