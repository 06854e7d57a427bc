"""What ``MainOrderRouter`` is told and what it reports.

The router (``liveopt.service.router``) sends the main strategy's paper decisions to the
exchange. This module holds its frozen, validated configuration (``RouterConfig``), the
checked entry record (``EntryFill``), the typed events it sends to its sink and the alerts
among them, the read model of its state (``RouterStatus``), its counters and sink
(``RouterReport``), its internal view of the open position (``OpenPosition``) and the error
its constructor raises. ``docs/live-trading.md`` describes the behaviour.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from liveopt.exchange.reconcile import ReconcileEvent, TradingHalted
from liveopt.exchange.stops import (
    EmergencyClose,
    StopCoordinatorConfig,
    StopEvent,
    StopReplaceCoordinator,
)
from liveopt.exchange.trade_math import ContractSpec, Side
from liveopt.service.events import AlertRaised
from liveopt.service.views import Alert

__all__ = [
    "ROUTED_MODES",
    "ROUTER_CLIENT_OID_PREFIXES",
    "TAKE_PROFIT_ORDERS",
    "EntryFill",
    "EntryRefused",
    "ExitCompleted",
    "LiveTradingNotConfirmedError",
    "OpenPosition",
    "OrderRouted",
    "RouteFailed",
    "RouterConfig",
    "RouterEvent",
    "RouterFlattened",
    "RouterHalted",
    "RouterReport",
    "RouterResumed",
    "RouterStatus",
    "fill_ts",
    "halt_alert",
    "record_field",
    "stop_failure_alert",
]

#: Modes in which the main strategy's orders reach an exchange ("paper" routes nothing).
ROUTED_MODES = ("sim", "live")
#: How the take-profit rests on the exchange: a reduce-only GTC limit order at the target
#: (maker fee, exact price), a reduce-only stop-market order triggered at the target (taker
#: fee, like the engine's ``take_profit_order = "market"``), or no take-profit order.
TAKE_PROFIT_ORDERS = ("limit", "stop_market", "none")
#: First part of every clientOid the main strategy's orders carry; only orders with one of
#: these are cancelled by an exit or a flatten (orders placed by hand are left alone).
ROUTER_CLIENT_OID_PREFIXES = ("entry-", "tp-", "exit-", "flatten-", "stop-", "emergency-")


class LiveTradingNotConfirmedError(ValueError):
    """A router for a real exchange URL was built without ``mode="live"`` and the explicit
    ``live_confirmed=True`` (the config layer sets it only with ``confirm_live``)."""


def _positive(owner: str, field: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{owner}: {field} must be a finite number > 0, got {value!r}")


class RouterConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Settings of a :class:`~liveopt.service.router.MainOrderRouter`.

    Parameters
    ----------
    mode : {"sim", "live"}
        Where the orders go: the local simulator or KuCoin (``live`` also needs the
        router's ``live_confirmed`` argument).
    stop_loss_roi_pct : float
        The main strategy's stop-loss as a loss of margin in percent (0.5); the protective
        stop sits at :func:`~liveopt.exchange.trade_math.protective_stop_price`.
    take_profit_roi_pct : float or None
        The take-profit as a gain on margin in percent (2.0); None places none.
    take_profit_order : {"limit", "stop_market", "none"}
        How the take-profit rests on the exchange (see :data:`TAKE_PROFIT_ORDERS`).
    order_attempts : int
        Times the router sends one order (each time with the same clientOid, so a repeat
        can never make a second order) when the REST client's own retries gave up on a
        retryable failure (3).
    retry_backoff_s, retry_backoff_max_s : float
        Delay before the router's k-th repeat: ``min(base * 2**(k-1), max)``, jittered
        by +-20 % with the injected random source (0.5 s, 5 s).
    position_reads : int
        Reads of the exchange's position after a market order until it shows the fill (5).
    position_read_delay_s : float
        Pause between those reads (0.2 s).
    reconcile_interval_s : float
        Period of the reconciler's passes in :meth:`MainOrderRouter.run_reconciler` (30 s).
    stop : StopCoordinatorConfig
        Timings of the protective stop's coordinator.
    """

    mode: str = "sim"
    stop_loss_roi_pct: float = 0.5
    take_profit_roi_pct: float | None = 2.0
    take_profit_order: str = "limit"
    order_attempts: int = 3
    retry_backoff_s: float = 0.5
    retry_backoff_max_s: float = 5.0
    position_reads: int = 5
    position_read_delay_s: float = 0.2
    reconcile_interval_s: float = 30.0
    stop: StopCoordinatorConfig = msgspec.field(default_factory=StopCoordinatorConfig)

    def __post_init__(self) -> None:
        owner = "router config"
        if self.mode not in ROUTED_MODES:
            raise ValueError(f"{owner}: mode must be one of {ROUTED_MODES} (paper mode routes "
                             f"nothing, so it has no router), got {self.mode!r}")
        _positive(owner, "stop_loss_roi_pct", self.stop_loss_roi_pct)
        if self.take_profit_roi_pct is not None:
            _positive(owner, "take_profit_roi_pct", self.take_profit_roi_pct)
        if self.take_profit_order not in TAKE_PROFIT_ORDERS:
            raise ValueError(f"{owner}: take_profit_order must be one of {TAKE_PROFIT_ORDERS}, "
                             f"got {self.take_profit_order!r}")
        for name in ("order_attempts", "position_reads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{owner}: {name} must be an integer >= 1, got {value!r}")
        for name in ("retry_backoff_s", "retry_backoff_max_s", "position_read_delay_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value) or value < 0:
                raise ValueError(f"{owner}: {name} must be a finite number >= 0, got {value!r}")
        if self.retry_backoff_max_s < self.retry_backoff_s:
            raise ValueError(f"{owner}: retry_backoff_max_s must not be below retry_backoff_s")
        _positive(owner, "reconcile_interval_s", self.reconcile_interval_s)


# --------------------------------------------------------------------------- records


class EntryFill(msgspec.Struct, frozen=True, kw_only=True):
    """A paper entry fill of the main strategy, checked for routing: variant 0, an entry,
    side +1/-1 and at least one whole lot (the paper lots rounded down to the lot size)."""

    ts_ns: int
    side: Side
    lots: int
    price: float

    @classmethod
    def from_record(cls, record: Any, contract: ContractSpec) -> EntryFill:
        """Check an engine ``FILL_DTYPE`` row (or its struct twin); ValueError saying why it
        is not routed (a foreign variant, an exit fill, a malformed field...)."""
        try:
            ts_ns = int(record_field(record, "ts"))
            variant = int(record_field(record, "variant"))
            side = int(record_field(record, "side"))
            is_entry = bool(record_field(record, "entry"))
            price = float(record_field(record, "price"))
            lots = contract.round_down_to_lot(float(record_field(record, "lots")))
        except (ValueError, TypeError, OverflowError) as exc:
            raise ValueError(f"malformed fill: {exc}") from None
        if variant != 0:
            raise ValueError(f"fill of variant {variant}: only variant 0 is routed")
        if not is_entry:
            raise ValueError("not an entry fill")
        if side not in (1, -1):
            raise ValueError(f"fill side must be +1 or -1, got {side}")
        if lots < 1:
            raise ValueError("less than one whole lot")
        if not math.isfinite(price) or price <= 0:
            raise ValueError(f"fill price must be a positive number, got {price}")
        return cls(ts_ns=ts_ns, side=Side(side), lots=lots, price=price)


def fill_ts(record: Any) -> int:
    """The ``ts`` of an engine record for a report, 0 when even that is unreadable."""
    try:
        return int(record_field(record, "ts"))
    except (ValueError, TypeError, OverflowError):
        return 0


def record_field(record: Any, name: str) -> Any:
    """Field ``name`` of an engine record: a numpy row of ``FILL_DTYPE``/``TRADE_DTYPE``
    or its typed struct twin (``ClosedTrade``); ValueError naming a missing field."""
    try:
        return record[name]
    except (TypeError, KeyError, ValueError, IndexError):
        pass
    try:
        return getattr(record, name)
    except AttributeError:
        raise ValueError(f"missing field {name!r}") from None


# --------------------------------------------------------------------------- events


class OrderRouted(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """An order of the main strategy is on the exchange. ``operation`` is ``"entry"``,
    ``"take_profit"``, ``"exit"`` or ``"flatten"``; ``existing``: an earlier attempt with
    the same clientOid had placed it (its answer was lost)."""

    ts_ns: int
    operation: str
    client_oid: str
    order_id: str
    side: str
    lots: int
    existing: bool


class RouteFailed(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """One router operation failed for good (after its retries); ``error`` is the exception
    type and its text (never a secret: the REST client's errors carry none)."""

    ts_ns: int
    operation: str
    error: str
    attempts: int


class EntryRefused(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """An entry fill of the paper account was not sent; ``reason`` says why (halted,
    stopped, a position already open, not variant 0, less than one lot, ...)."""

    ts_ns: int
    fill_ts_ns: int
    reason: str


class ExitCompleted(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """The main strategy's exchange position was closed (or found closed) and its orders
    cancelled; ``flat`` is what the exchange showed afterwards."""

    ts_ns: int
    closed_by_order: bool
    orders_cancelled: int
    flat: bool
    exchange_qty: int


class RouterFlattened(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """The emergency flatten ran: orders cancelled, whether a position was closed."""

    ts_ns: int
    orders_cancelled: int
    position_closed: bool
    flat: bool
    errors: list[str]


class RouterHalted(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """No more entries until :meth:`MainOrderRouter.resume` (``source``: ``"reconciler"``
    for an unknown position, ``"flatten"`` after the emergency stop)."""

    ts_ns: int
    source: str
    reason: str


class RouterResumed(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """Entries are allowed again (an operator's decision)."""

    ts_ns: int


RouterEvent = (OrderRouted | RouteFailed | EntryRefused | ExitCompleted | RouterFlattened
               | RouterHalted | RouterResumed | AlertRaised | StopEvent | ReconcileEvent)
"""Everything the router sends to its sink: its own events, an ``AlertRaised`` for what an
operator must see, and the stop coordinator's and reconciler's events as they are."""


def halt_alert(event: TradingHalted) -> AlertRaised:
    """The operator alert for a reconciler halt (a position the router does not know)."""
    return AlertRaised(alert=Alert(kind="unknown_position", severity="critical",
                                   ts_ns=event.ts_event,
                                   message=f"main strategy halted: {event.reason}"))


def stop_failure_alert(event: EmergencyClose) -> AlertRaised:
    """The operator alert for a position closed because its stop could not be placed."""
    return AlertRaised(alert=Alert(
        kind="stop_failure", severity="critical", ts_ns=event.ts_event,
        message=f"{event.consecutive_failures} stop placements failed on {event.symbol}: "
                f"position closed by {event.client_oid}"))


# --------------------------------------------------------------------------- state


@dataclass(slots=True)
class OpenPosition:
    """The router's view of the main strategy's exchange position (internal, mutable:
    the coordinator and order ids are filled in as the entry proceeds)."""

    entry_ts_ns: int
    side: Side
    lots: int
    entry_order_id: str
    position_id: str = ""
    coordinator: StopReplaceCoordinator | None = None
    take_profit_order_id: str = ""
    gone_on_exchange: bool = False  # the exchange closed it (its stop or target filled)


class RouterStatus(msgspec.Struct, frozen=True, kw_only=True):
    """A snapshot of the router (``MainOrderRouter.status()``).

    ``exchange_qty`` is the signed position in lots as last read from the exchange (None
    before the first read); ``stop_state`` the protective stop's
    :class:`~liveopt.exchange.stops.StopState` (None without a position); ``halted`` the
    reconciler's halt (an unknown position), ``stopped`` the halt after a flatten; while
    either holds, entries are refused.
    """

    mode: str
    symbol: str
    leverage: int
    halted: bool
    halt_reason: str
    stopped: bool
    position_open: bool
    position_id: str
    exchange_qty: int | None
    entry_order_id: str
    take_profit_order_id: str
    exit_order_id: str
    stop_state: str | None
    stop_price: str | None
    stop_order_id: str
    entries: int
    exits: int
    entries_refused: int
    trails_forwarded: int
    trails_ignored: int
    errors: int
    errors_by_operation: dict[str, int]
    last_error: str
    reconcile_passes: int
    reconcile_failures: int
    sink_errors: int
    budget_rate_limited: int | None = None  # 429-class answers seen by the shared budget


# --------------------------------------------------------------------------- reporting

_log = logging.getLogger("liveopt.service.router")
_MAX_ERROR_CHARS = 200


class RouterReport:
    """The router's counters and its way out: every event goes to the sink (a failing sink
    is counted, never raised), every failure is counted by operation, logged and reported
    as a :class:`RouteFailed`, every refused entry as an :class:`EntryRefused`."""

    def __init__(self, sink: Callable[[RouterEvent], None] | None,
                 clock_ns: Callable[[], int]) -> None:
        self._sink = sink
        self._clock_ns = clock_ns
        self.counts = dict.fromkeys(("entries", "exits", "entries_refused", "trails_forwarded",
                                     "trails_ignored", "sink_errors"), 0)
        self.errors_by_operation: dict[str, int] = {}
        self.last_error = ""

    def emit(self, event: RouterEvent) -> None:
        """Send ``event`` to the sink."""
        if self._sink is None:
            return
        try:
            self._sink(event)
        except Exception:  # a broken consumer must not stop order routing
            self.counts["sink_errors"] += 1
            _log.exception("router event sink failed on %s", type(event).__name__)

    def refuse(self, fill_ts_ns: int, reason: str) -> bool:
        """Count and report an entry that is not routed; returns False."""
        self.counts["entries_refused"] += 1
        _log.info("main strategy entry not routed: %s", reason)
        self.emit(EntryRefused(ts_ns=self._clock_ns(), fill_ts_ns=fill_ts_ns, reason=reason))
        return False

    def fail(self, operation: str, exc: BaseException) -> None:
        """Count, log and report a failed ``operation`` (``attempts`` from the error when
        it carries them)."""
        text = str(exc)[:_MAX_ERROR_CHARS]
        text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
        self.errors_by_operation[operation] = self.errors_by_operation.get(operation, 0) + 1
        self.last_error = f"{operation}: {text}"
        _log.warning("main strategy %s failed: %s", operation, text)
        self.emit(RouteFailed(ts_ns=self._clock_ns(), operation=operation, error=text,
                              attempts=getattr(exc, "attempts", 1)))
