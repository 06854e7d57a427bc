"""Stop-loss replacement that never leaves an open position without a stop.

``StopReplaceCoordinator`` owns the protective stop of one position. Moving the stop means:
place the new reduce-only stop FIRST, then cancel the old one. The origin cancelled first and
left a window with no stop at all (origin-system.md B.3.1, defect C.9); here the worst case
is two stops for a moment, which is safe because both are reduce-only (the second one to
trigger finds no position to reduce). ``docs/exchange/stops.md`` is the specification.

What else the coordinator guarantees:

- updates coalesce: one worker task applies the *latest* target; a burst of updates while a
  placement is in flight costs at most one more placement;
- every placement carries the deterministic clientOid ``stop-{symbol}-{positionId}-{rev}``
  (``client_oid("stop", ...)``; ``-`` because the exchange refuses ``:``), with ``rev``
  monotonic per position, so a retry after a timeout cannot create a second stop: the
  exchange answers "duplicate clientOid" and the coordinator looks the order up;
- small moves are debounced, failures retried with jittered exponential back-off (longer
  when rate limited), and after ``max_consecutive_failures`` the position is closed with a
  reduce-only market order (state CRITICAL);
- a position without a stop recovers on its own (UNPROTECTED -> RECOVERING -> PROTECTED);
- every transition and action is a frozen msgspec event sent to an injected sink.

The exchange is reached through :class:`StopGateway`, a small protocol independent of the
transport (``RestStopGateway`` adapts the REST client to it); clock, sleep and random source
are injected.

Module layout: ``stop_types`` (gateway protocol, records, gateway errors), ``stop_events``
(config, states, events, metrics), ``stop_worker`` (the coordinator's state and worker
task), ``rest_stop_gateway`` (the REST adapter); this module holds the coordinator's public
commands and view, and re-exports the public names of the others, so
``liveopt.exchange.stops`` stays the one import point.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from decimal import Decimal
from fractions import Fraction

from liveopt.exchange.rest_stop_gateway import RestStopGateway
from liveopt.exchange.stop_events import (
    EmergencyClose,
    PlacedStop,
    StopCancelled,
    StopCoordinatorConfig,
    StopEvent,
    StopMetrics,
    StopPlaced,
    StopReplaceFailed,
    StopState,
    StopStateChanged,
)
from liveopt.exchange.stop_types import (
    SIDES,
    STOP_CLIENT_OID_PREFIX,
    STOP_DIRECTIONS,
    STOP_PRICE_TYPES,
    DuplicateClientOidError,
    ExchangePosition,
    ExchangeStop,
    GatewayRateLimitedError,
    GatewayTimeoutError,
    StopAlreadyGoneError,
    StopGateway,
    StopGatewayError,
    StopRequest,
    _check_positive_int,
    _check_stop_pairing,
    is_liveopt_stop,
)
from liveopt.exchange.stop_worker import Clock, EventSink, Sleep, StopWorker, _Leftover, _Target
from liveopt.exchange.trade_math import TradeMathError, exact

__all__ = [
    "SIDES",
    "STOP_CLIENT_OID_PREFIX",
    "STOP_DIRECTIONS",
    "STOP_PRICE_TYPES",
    "Clock",
    "DuplicateClientOidError",
    "EmergencyClose",
    "EventSink",
    "ExchangePosition",
    "ExchangeStop",
    "GatewayRateLimitedError",
    "GatewayTimeoutError",
    "PlacedStop",
    "RestStopGateway",
    "Sleep",
    "StopAlreadyGoneError",
    "StopCancelled",
    "StopCoordinatorConfig",
    "StopEvent",
    "StopGateway",
    "StopGatewayError",
    "StopMetrics",
    "StopPlaced",
    "StopReplaceCoordinator",
    "StopReplaceFailed",
    "StopRequest",
    "StopState",
    "StopStateChanged",
    "is_liveopt_stop",
]


class StopReplaceCoordinator(StopWorker):
    """The stop-loss of one open position, replaced without a moment unprotected.

    Parameters
    ----------
    gateway : StopGateway
        The exchange.
    symbol, position_id : str
        The position (``position_id`` is the exchange's id; it goes into the clientOid).
    qty : int
        Signed position size in lots (positive long, negative short); not 0.
    tick_size : Decimal or str
        The contract's price increment; stop prices are rounded to it away from the market
        (a long's down, a short's up), as :meth:`ContractSpec.round_stop_price` does.
    clock : callable
        Returns the current time in integer nanoseconds.
    rng : random.Random
        Source of the back-off jitter.
    sleep : callable
        ``await sleep(seconds)``; ``asyncio.sleep`` by default.
    config : StopCoordinatorConfig
        Timings and limits.
    sink : callable
        Receives every :data:`StopEvent`; exceptions it raises are counted and logged.
    initial_revision : int
        The last revision already used for this position (after a restart), so that new
        clientOids never collide with old ones.

    Notes
    -----
    Use it from one event loop. :meth:`submit` returns at once; one worker task per
    coordinator performs every gateway call, so calls for one position never overlap.
    The constructor, the stop's identity (``side``, ``direction``, the clientOids,
    :meth:`matches`) and the worker task are inherited from
    :class:`~liveopt.exchange.stop_worker.StopWorker`.
    """

    # ----------------------------------------------------------------- read-only view

    @property
    def state(self) -> StopState:
        """The current :class:`StopState`."""
        return self._state

    @property
    def qty(self) -> int:
        """Signed position size in lots."""
        return self._qty

    @property
    def active(self) -> PlacedStop | None:
        """The confirmed stop the coordinator relies on (None when there is none)."""
        return self._active

    @property
    def target(self) -> tuple[str, int] | None:
        """The latest accepted target as ``(stop_price, size)``, None before the first."""
        if self._desired is None:
            return None
        return self._price_text(self._desired.ticks), self._desired.size

    @property
    def leftover_client_oids(self) -> tuple[str, ...]:
        """ClientOids of superseded stops (or possibly placed orders) not yet removed."""
        return tuple(item.client_oid for item in self._leftovers)

    @property
    def stale_order_ids(self) -> tuple[str, ...]:
        """Order ids of superseded stops whose cancel has not succeeded yet."""
        return tuple(item.order_id for item in self._leftovers if item.order_id)

    @property
    def revision(self) -> int:
        """The last revision used in a clientOid."""
        return self._revision

    @property
    def busy(self) -> bool:
        """Whether the worker task is running (a placement, cancel or back-off under way)."""
        return self._task is not None and not self._task.done()

    @property
    def version(self) -> int:
        """Increases on every change of the coordinator's view (lets the reconciler detect
        that the coordinator acted while it was reading the exchange)."""
        return self._version

    @property
    def is_protected(self) -> bool:
        """True in PROTECTED and UPDATING (a confirmed stop is on the exchange)."""
        return self._state in (StopState.PROTECTED, StopState.UPDATING)

    @property
    def needs_attention(self) -> bool:
        """True in UNPROTECTED and CRITICAL."""
        return self._state in (StopState.UNPROTECTED, StopState.CRITICAL)

    def metrics(self) -> StopMetrics:
        """A snapshot of the counters."""
        return StopMetrics(state=self._state, revision=self._revision,
                           consecutive_failures=self._consecutive,
                           stale_stops=len(self._leftovers), **self._counts)

    # ----------------------------------------------------------------- commands

    def submit(self, stop_price: Decimal | str | float | int, *, size: int | None = None,
               mark_price: Decimal | str | float | int | None = None) -> bool:
        """Ask for the stop to be at ``stop_price`` (rounded to a tick away from the market).

        ``size`` defaults to the whole position. With ``mark_price`` the stop is checked to
        lie on the protective side of it (below for a long, above for a short). Returns
        False when the update was debounced or the coordinator is CRITICAL, True when it is
        (or stays) the target; raises ValueError naming the field for bad input. Must be
        called from the event loop; the work happens in the coordinator's worker task.
        """
        if self._closed:
            raise RuntimeError(f"stop coordinator {self.symbol}/{self.position_id} is closed")
        if self._state is StopState.CRITICAL:
            self._counts["rejected"] += 1
            return False
        try:
            target = self._validated_target(stop_price, size, mark_price)
        except ValueError:
            self._counts["rejected"] += 1
            raise
        now = self._clock()
        last = self._last_accepted
        if (last is not None and target.size == last.size
                and abs(target.ticks - last.ticks) < self._config.min_move_ticks
                and now - self._accepted_at_ns < self._config.debounce_ns):
            self._counts["debounced"] += 1
            return False
        pending = self._desired
        if (pending is not None and pending != target and pending != self._active_target()
                and (self._attempt is None or self._attempt.target != pending)):
            # The previous target was never started: it is replaced, not queued (the origin
            # replayed every queued update in order, defect C.9).
            self._counts["superseded"] += 1
        self._desired = target
        self._last_accepted = target
        self._accepted_at_ns = now
        self._changed()
        self._wake()
        return True

    async def update(self, stop_price: Decimal | str | float | int, *, size: int | None = None,
                     mark_price: Decimal | str | float | int | None = None) -> bool:
        """:meth:`submit`, then wait until the worker is idle (see :meth:`settle`)."""
        accepted = self.submit(stop_price, size=size, mark_price=mark_price)
        await self.settle()
        return accepted

    async def settle(self) -> None:
        """Wait until the worker has nothing left to do (target applied, leftovers handled
        or handed to the reconciler, or CRITICAL)."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)

    def resize(self, qty: int) -> None:
        """The position's size changed (same side): the stop follows at the same price."""
        if isinstance(qty, bool) or not isinstance(qty, int) or qty == 0:
            raise ValueError(f"stop coordinator: qty must be a non-zero integer, got {qty!r}")
        if (qty > 0) != (self._qty > 0):
            raise ValueError(f"stop coordinator: qty {qty} flips the side of position "
                             f"{self.position_id} ({self._qty}); that is a new position")
        self._qty = qty
        self._changed()
        if self._desired is not None and self._state is not StopState.CRITICAL:
            self._desired = _Target(self._desired.ticks, abs(qty))
            self._last_accepted = self._desired
            self._accepted_at_ns = self._clock()
            self._wake()

    def adopt(self, stop: ExchangeStop) -> None:
        """Take over a stop already on the exchange (e.g. after a restart) as the confirmed
        stop and the current target; a liveopt clientOid also advances the revision."""
        _check_stop_pairing("adopted stop", stop.side, stop.stop)
        if stop.side != self.side:
            raise ValueError(f"adopted stop: side {stop.side!r} does not protect a "
                             f"{'long' if self._qty > 0 else 'short'} position")
        ticks = self._ticks_of_wire(stop.stop_price, "adopted stop: stop_price")
        revision = self._revision_of(stop.client_oid)
        self._revision = max(self._revision, revision)
        self._active = PlacedStop(order_id=stop.id, client_oid=stop.client_oid,
                                  revision=revision, side=stop.side, size=stop.size,
                                  stop=stop.stop, stop_price=stop.stop_price, ticks=ticks)
        if self._desired is None:
            self._desired = _Target(ticks, stop.size)
            self._last_accepted = self._desired
            self._accepted_at_ns = self._clock()
        self._changed()
        if self._state is not StopState.CRITICAL:
            self._set_state(StopState.PROTECTED, "adopted an existing stop")
            self._wake()

    def invalidate(self, found: ExchangeStop | None, reason: str) -> None:
        """The reconciler found the confirmed stop missing (``found`` None) or wrong on the
        exchange: place the target again under a new revision; a wrong stop stays until the
        new one is confirmed, then it is cancelled."""
        active = self._active
        if active is None or self._state is StopState.CRITICAL:
            self._wake()
            return
        if found is not None:
            self._add_leftover(_Leftover(client_oid=found.client_oid, order_id=found.id))
        self._active = None
        self._attempt = None
        self._lost_protection = True
        self._changed()
        self._set_state(StopState.UNPROTECTED, reason)
        self._wake()

    def discard(self, stop: ExchangeStop) -> None:
        """Cancel an extra stop of this position (found by the reconciler) once the
        confirmed stop is in place; the confirmed stop itself is never discarded."""
        if self._active is not None and stop.id == self._active.order_id:
            return
        self._add_leftover(_Leftover(client_oid=stop.client_oid, order_id=stop.id), retry=True)
        self._changed()
        self._wake()

    async def close(self) -> None:
        """Stop the worker (the exchange's stops are left as they are)."""
        self._closed = True
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # ----------------------------------------------------------------- validation

    def _validated_target(self, stop_price: object, size: int | None,
                          mark_price: object) -> _Target:
        owner = f"stop update for {self.symbol}"
        try:
            price = exact(stop_price, "stop_price")  # type: ignore[arg-type]
        except TradeMathError as exc:
            raise ValueError(f"{owner}: {exc}") from None
        if price <= 0:
            raise ValueError(f"{owner}: stop_price must be positive, got {stop_price!r}")
        ticks = self._round_away_from_market(price)
        if ticks <= 0:
            raise ValueError(f"{owner}: stop_price {stop_price!r} rounds to zero ticks")
        if size is None:
            size = abs(self._qty)
        _check_positive_int(owner, "size", size)
        if size > abs(self._qty):
            raise ValueError(f"{owner}: size {size} exceeds the position ({abs(self._qty)} "
                             f"lots); a reduce-only stop larger than the position is a bug")
        if mark_price is not None:
            try:
                mark = exact(mark_price, "mark_price")  # type: ignore[arg-type]
            except TradeMathError as exc:
                raise ValueError(f"{owner}: {exc}") from None
            stop_value = ticks * self._tick
            if self._qty > 0 and not stop_value < mark:
                raise ValueError(f"{owner}: stop_price {self._price_text(ticks)} of a long "
                                 f"must be below the mark price {mark_price}")
            if self._qty < 0 and not stop_value > mark:
                raise ValueError(f"{owner}: stop_price {self._price_text(ticks)} of a short "
                                 f"must be above the mark price {mark_price}")
        return _Target(ticks, size)

    def _round_away_from_market(self, price: Fraction) -> int:
        # Away from the market, as ContractSpec.round_stop_price: a long's stop rounds down
        # and a short's up, so rounding never moves a stop towards (or through) the price.
        ratio = price / self._tick
        return math.floor(ratio) if self._qty > 0 else math.ceil(ratio)
