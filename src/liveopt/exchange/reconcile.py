"""The reconciler: the exchange's positions and stops against what liveopt believes.

Local state drifts from the exchange: a stop triggers or is cancelled by hand, an answer is
lost, a process restarts, someone trades on the account. The reconciler reads each watched
symbol's position and open stops and applies fixed rules (``docs/exchange/stops.md``):

- a position on the exchange that liveopt does not know: HALT trading (``halted`` with the
  reason and a :class:`TradingHalted` event); it is never adopted silently;
- a local position the exchange does not have: :class:`PositionDrift`, the local copy is
  dropped;
- a missing or wrong stop (size, price, side, direction, reduce-only): repaired through the
  position's :class:`~liveopt.exchange.stops.StopReplaceCoordinator` (new stop first);
- extra liveopt stops of a known position are cancelled through its coordinator (after
  the confirmed stop); liveopt stops (clientOid ``stop-...``) of a flat symbol are
  orphans and are cancelled directly. Stops liveopt did not place are left alone.

It runs on demand (:meth:`Reconciler.reconcile`) and on an interval (:meth:`Reconciler.run`)
with an injected clock and sleep. A symbol whose coordinator is busy, or acted while the
exchange was being read, is skipped for that pass (its view is about to change anyway).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable

import msgspec

from liveopt.exchange.stops import (
    ExchangePosition,
    ExchangeStop,
    StopAlreadyGoneError,
    StopGateway,
    StopReplaceCoordinator,
    StopState,
    is_liveopt_stop,
)
from liveopt.units import NS_PER_SECOND

__all__ = [
    "OrphanStopCancelled",
    "PositionDrift",
    "ReconcileEvent",
    "ReconcileFailed",
    "ReconcileReport",
    "Reconciler",
    "ReconcilerConfig",
    "ReconcilerMetrics",
    "StopDiscrepancy",
    "TradingHalted",
]

logger = logging.getLogger(__name__)
_MAX_ERROR_CHARS = 200


class ReconcilerConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Settings of a :class:`Reconciler`.

    Parameters
    ----------
    interval_ns : int
        Time between passes of :meth:`Reconciler.run` (30 s).
    """

    interval_ns: int = 30_000_000_000

    def __post_init__(self) -> None:
        if isinstance(self.interval_ns, bool) or not isinstance(self.interval_ns, int) \
                or self.interval_ns <= 0:
            raise ValueError(f"reconciler config: interval_ns must be a positive integer, "
                             f"got {self.interval_ns!r}")


class _ReconcileEventBase(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    symbol: str
    ts_event: int
    ts_init: int


class TradingHalted(_ReconcileEventBase, frozen=True, kw_only=True):
    """The exchange has a position liveopt does not know: trading must stop."""

    position_id: str
    qty: int
    reason: str


class PositionDrift(_ReconcileEventBase, frozen=True, kw_only=True):
    """Local and exchange position differ; ``action`` is ``"dropped"`` (the local copy of a
    position the exchange does not have) or ``"resized"`` (the stop follows the exchange's
    size)."""

    position_id: str
    local_qty: int
    exchange_qty: int
    action: str


class StopDiscrepancy(_ReconcileEventBase, frozen=True, kw_only=True):
    """A known position's stop is ``"missing"``, ``"wrong"`` or ``"extra"``, or it has no
    stop target at all (``"no_target"``); ``action`` is what was done (``"replaced"``,
    ``"cancelled"``, ``"none"``), ``detail`` what differed."""

    position_id: str
    problem: str
    action: str
    order_id: str
    detail: str


class OrphanStopCancelled(_ReconcileEventBase, frozen=True, kw_only=True):
    """A liveopt stop of a flat symbol was cancelled (``ok`` False: the cancel failed and is
    retried on the next pass)."""

    order_id: str
    client_oid: str
    ok: bool
    error: str


class ReconcileFailed(_ReconcileEventBase, frozen=True, kw_only=True):
    """Reading ``symbol`` from the exchange failed; it is checked again on the next pass."""

    error: str


ReconcileEvent = (TradingHalted | PositionDrift | StopDiscrepancy | OrphanStopCancelled
                  | ReconcileFailed)


class ReconcileReport(msgspec.Struct, frozen=True, kw_only=True):
    """What one pass found and did."""

    ts_event: int
    checked: tuple[str, ...]
    skipped: tuple[str, ...]
    events: tuple[ReconcileEvent, ...]
    halted: bool


class ReconcilerMetrics(msgspec.Struct, frozen=True, kw_only=True):
    """Counters of a reconciler (a snapshot)."""

    passes: int
    failures: int
    skipped: int
    halts: int
    drifts: int
    repairs: int
    orphans_cancelled: int
    sink_errors: int


Clock = Callable[[], int]
Sleep = Callable[[float], Awaitable[None]]


def _describe(exc: BaseException) -> str:
    text = str(exc)[:_MAX_ERROR_CHARS]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Reconciler:
    """Compares local positions and stops with the exchange and repairs the difference.

    Parameters
    ----------
    gateway : StopGateway
        The exchange.
    symbols : iterable of str
        Symbols to watch even without a local position (to notice unknown positions and
        orphan stops there).
    clock : callable
        Current time in integer nanoseconds.
    sleep : callable
        ``await sleep(seconds)``; ``asyncio.sleep`` by default.
    config : ReconcilerConfig
        The interval of :meth:`run`.
    sink : callable
        Receives every :data:`ReconcileEvent`.
    """

    def __init__(self, gateway: StopGateway, *, symbols: Iterable[str] = (), clock: Clock,
                 sleep: Sleep = asyncio.sleep, config: ReconcilerConfig | None = None,
                 sink: Callable[[ReconcileEvent], None] | None = None) -> None:
        self._gateway = gateway
        self._symbols = set(symbols)
        self._clock = clock
        self._sleep = sleep
        self._config = config or ReconcilerConfig()
        self._sink = sink
        self._coordinators: dict[str, StopReplaceCoordinator] = {}
        self._halt_reasons: list[str] = []
        self._halted_positions: set[tuple[str, str]] = set()
        self._lock = asyncio.Lock()
        self._counts = dict.fromkeys(("passes", "failures", "skipped", "halts", "drifts",
                                      "repairs", "orphans_cancelled", "sink_errors"), 0)

    # ----------------------------------------------------------------- local view

    def track(self, coordinator: StopReplaceCoordinator) -> None:
        """Register the local position (and its stop) of ``coordinator.symbol``."""
        current = self._coordinators.get(coordinator.symbol)
        if current is not None and current is not coordinator:
            raise ValueError(f"reconciler: {coordinator.symbol} already has position "
                             f"{current.position_id}; untrack it first")
        self._coordinators[coordinator.symbol] = coordinator
        self._symbols.add(coordinator.symbol)

    def untrack(self, symbol: str) -> StopReplaceCoordinator | None:
        """Forget the local position of ``symbol`` (the symbol stays watched)."""
        return self._coordinators.pop(symbol, None)

    @property
    def coordinators(self) -> dict[str, StopReplaceCoordinator]:
        """The local positions by symbol (a copy)."""
        return dict(self._coordinators)

    @property
    def halted(self) -> bool:
        """True once a position liveopt does not know was found; trading must stop."""
        return bool(self._halt_reasons)

    @property
    def halt_reason(self) -> str:
        """Why trading is halted (every reason, ``"; "``-joined), ``""`` when it is not."""
        return "; ".join(self._halt_reasons)

    def resume(self) -> None:
        """Clear the halt (an operator decision, after dealing with the unknown position)."""
        self._halt_reasons.clear()
        self._halted_positions.clear()

    def metrics(self) -> ReconcilerMetrics:
        """A snapshot of the counters."""
        return ReconcilerMetrics(**self._counts)

    # ----------------------------------------------------------------- passes

    async def run(self, *, passes: int | None = None) -> None:
        """Reconcile every ``interval_ns`` (``passes`` times, or until cancelled)."""
        done = 0
        while passes is None or done < passes:
            await self.reconcile()
            done += 1
            if passes is not None and done >= passes:
                return
            await self._sleep(self._config.interval_ns / NS_PER_SECOND)

    async def reconcile(self) -> ReconcileReport:
        """One pass over every watched symbol; never raises for an exchange failure."""
        async with self._lock:
            events: list[ReconcileEvent] = []
            checked: list[str] = []
            skipped: list[str] = []
            for symbol in sorted(self._symbols):
                try:
                    done = await self._reconcile_symbol(symbol, events)
                except Exception as exc:  # one symbol's failure must not stop the others
                    self._counts["failures"] += 1
                    logger.warning("reconcile of %s failed: %s", symbol, _describe(exc))
                    self._emit(events, ReconcileFailed, symbol=symbol, error=_describe(exc))
                    continue
                (checked if done else skipped).append(symbol)
            self._counts["passes"] += 1
            self._counts["skipped"] += len(skipped)
            return ReconcileReport(ts_event=self._clock(), checked=tuple(checked),
                                   skipped=tuple(skipped), events=tuple(events),
                                   halted=self.halted)

    async def _reconcile_symbol(self, symbol: str, events: list[ReconcileEvent]) -> bool:
        coordinator = self._coordinators.get(symbol)
        version = coordinator.version if coordinator is not None else 0
        position = await self._gateway.position(symbol)
        stops = await self._gateway.open_stops(symbol)
        if self._coordinators.get(symbol) is not coordinator:
            return False  # tracked or untracked while the exchange was read
        if coordinator is not None and (coordinator.busy or coordinator.version != version):
            return False  # the coordinator is acting; judge it on a quieter pass
        ours = [stop for stop in stops if is_liveopt_stop(stop.client_oid)]

        if coordinator is not None and (position.qty == 0
                                        or position.id != coordinator.position_id):
            # The exchange does not have the local position: drop the local copy.
            self._counts["drifts"] += 1
            self._emit(events, PositionDrift, symbol=symbol,
                       position_id=coordinator.position_id, local_qty=coordinator.qty,
                       exchange_qty=position.qty if position.id == coordinator.position_id
                       else 0, action="dropped")
            self._coordinators.pop(symbol, None)
            await coordinator.close()
            coordinator = None
        if position.qty == 0:
            for stop in ours:
                await self._cancel_orphan(symbol, stop, events)
            return True
        if coordinator is None:
            self._halt(symbol, position, events)
            return True
        if coordinator.state is StopState.CRITICAL:
            return True  # the emergency close is under way; orphans go once it is flat
        if position.qty != coordinator.qty:
            return self._resize(coordinator, position, events)
        self._check_stops(coordinator, ours, events)
        return True

    def _halt(self, symbol: str, position: ExchangePosition,
              events: list[ReconcileEvent]) -> None:
        key = (symbol, position.id)
        if key in self._halted_positions:
            return  # already reported; the halt stands until resume()
        reason = (f"unknown position on the exchange: {symbol} id {position.id!r} "
                  f"qty {position.qty}")
        self._halted_positions.add(key)
        self._halt_reasons.append(reason)
        self._counts["halts"] += 1
        logger.error("trading halted: %s", reason)
        self._emit(events, TradingHalted, symbol=symbol, position_id=position.id,
                   qty=position.qty, reason=reason)

    def _resize(self, coordinator: StopReplaceCoordinator, position: ExchangePosition,
                events: list[ReconcileEvent]) -> bool:
        self._counts["drifts"] += 1
        local_qty = coordinator.qty
        try:
            coordinator.resize(position.qty)
        except ValueError:
            # The side flipped under the same id: this is not the position liveopt knows.
            self._emit(events, PositionDrift, symbol=coordinator.symbol,
                       position_id=coordinator.position_id, local_qty=local_qty,
                       exchange_qty=position.qty, action="dropped")
            self._coordinators.pop(coordinator.symbol, None)
            self._halt(coordinator.symbol, position, events)
            return True
        self._emit(events, PositionDrift, symbol=coordinator.symbol,
                   position_id=coordinator.position_id, local_qty=local_qty,
                   exchange_qty=position.qty, action="resized")
        return True

    def _check_stops(self, coordinator: StopReplaceCoordinator, ours: list[ExchangeStop],
                     events: list[ReconcileEvent]) -> None:
        symbol = coordinator.symbol
        active = coordinator.active
        if active is None:
            problem = "missing" if coordinator.target is not None else "no_target"
            action = "replaced" if coordinator.target is not None else "none"
            self._emit(events, StopDiscrepancy, symbol=symbol,
                       position_id=coordinator.position_id, problem=problem, action=action,
                       order_id="", detail="the position has no confirmed stop")
            if coordinator.target is not None:
                self._counts["repairs"] += 1
                coordinator.invalidate(None, "reconciler: no confirmed stop")
            return
        on_exchange = next((stop for stop in ours if stop.id == active.order_id), None)
        if on_exchange is None:
            self._counts["repairs"] += 1
            self._emit(events, StopDiscrepancy, symbol=symbol,
                       position_id=coordinator.position_id, problem="missing",
                       action="replaced", order_id=active.order_id,
                       detail=f"stop {active.client_oid} is not open on the exchange")
            coordinator.invalidate(None, "reconciler: stop missing on the exchange")
        elif not coordinator.matches(on_exchange, active):
            self._counts["repairs"] += 1
            self._emit(events, StopDiscrepancy, symbol=symbol,
                       position_id=coordinator.position_id, problem="wrong",
                       action="replaced", order_id=on_exchange.id,
                       detail=(f"exchange has {on_exchange.side} {on_exchange.size} "
                               f"{on_exchange.stop} @ {on_exchange.stop_price}, expected "
                               f"{active.side} {active.size} {active.stop} @ "
                               f"{active.stop_price}"))
            coordinator.invalidate(on_exchange, "reconciler: stop differs on the exchange")
        for stop in ours:
            if stop.id == active.order_id:
                continue
            self._counts["repairs"] += 1
            self._emit(events, StopDiscrepancy, symbol=symbol,
                       position_id=coordinator.position_id, problem="extra",
                       action="cancelled", order_id=stop.id,
                       detail=f"extra liveopt stop {stop.client_oid} @ {stop.stop_price}")
            coordinator.discard(stop)

    async def _cancel_orphan(self, symbol: str, stop: ExchangeStop,
                             events: list[ReconcileEvent]) -> None:
        try:
            await self._gateway.cancel(symbol, stop.id)
        except StopAlreadyGoneError:
            pass
        except Exception as exc:  # retried on the next pass
            self._counts["failures"] += 1
            self._emit(events, OrphanStopCancelled, symbol=symbol, order_id=stop.id,
                       client_oid=stop.client_oid, ok=False, error=_describe(exc))
            return
        self._counts["orphans_cancelled"] += 1
        self._emit(events, OrphanStopCancelled, symbol=symbol, order_id=stop.id,
                   client_oid=stop.client_oid, ok=True, error="")

    def _emit(self, events: list[ReconcileEvent], kind: type[ReconcileEvent],
              **fields: object) -> None:
        now = self._clock()
        event = kind(ts_event=now, ts_init=now, **fields)  # type: ignore[arg-type]
        events.append(event)
        if self._sink is None:
            return
        try:
            self._sink(event)
        except Exception:  # a broken sink must not stop reconciliation
            self._counts["sink_errors"] += 1
            logger.exception("reconcile event sink failed on %s", type(event).__name__)
