"""The worker half of ``StopReplaceCoordinator``: its state and the task that acts.

``StopWorker`` owns the state of one position's stop (confirmed stop, target, attempt,
leftovers, counters) and the single worker task that performs every gateway call: place the
new stop first, resolve a duplicate clientOid by lookup, cancel superseded stops only once
the new one is confirmed, back off with jitter, and close the position after repeated
failures. It emits every transition and action as an event. The public commands and views
are :class:`~liveopt.exchange.stops.StopReplaceCoordinator`'s (``stops.py``), a subclass;
its docstring documents the constructor.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from decimal import Decimal
from fractions import Fraction
from typing import TypeVar

import msgspec

from liveopt.exchange.client_oid import client_oid
from liveopt.exchange.stop_events import (
    EmergencyClose,
    PlacedStop,
    StopCancelled,
    StopCoordinatorConfig,
    StopEvent,
    StopPlaced,
    StopReplaceFailed,
    StopState,
    StopStateChanged,
)
from liveopt.exchange.stop_types import (
    DuplicateClientOidError,
    ExchangeStop,
    GatewayRateLimitedError,
    GatewayTimeoutError,
    StopAlreadyGoneError,
    StopGateway,
    StopGatewayError,
    StopRequest,
)
from liveopt.exchange.trade_math import TradeMathError, exact, format_decimal
from liveopt.units import NS_PER_SECOND

__all__ = ["Clock", "EventSink", "Sleep", "StopWorker"]

# The records keep the name of the public module (log configuration filters on it).
logger = logging.getLogger("liveopt.exchange.stops")

_MAX_ERROR_CHARS = 200

T = TypeVar("T")


class _Target(msgspec.Struct, frozen=True):
    ticks: int
    size: int


class _Attempt(msgspec.Struct):
    target: _Target
    revision: int
    client_oid: str
    tries: int = 0
    maybe_placed: bool = False


class _Leftover(msgspec.Struct):
    # A stop (known id) or a possibly placed order (client oid only) still to be removed.
    client_oid: str
    order_id: str = ""
    attempts: int = 0


Clock = Callable[[], int]
Sleep = Callable[[float], Awaitable[None]]
EventSink = Callable[[StopEvent], None]


def _describe(exc: BaseException) -> str:
    text = str(exc)[:_MAX_ERROR_CHARS]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class StopWorker:
    """State and worker task of one position's stop: the base of ``StopReplaceCoordinator``.

    Not used on its own: :class:`~liveopt.exchange.stops.StopReplaceCoordinator` adds the
    commands (``submit``, ``resize``, ``adopt``, ``invalidate``, ...) and the read-only view,
    and documents the constructor's parameters.
    """

    def __init__(self, gateway: StopGateway, *, symbol: str, position_id: str, qty: int,
                 tick_size: Decimal | str, clock: Clock, rng: random.Random,
                 sleep: Sleep = asyncio.sleep, config: StopCoordinatorConfig | None = None,
                 sink: EventSink | None = None, initial_revision: int = 0) -> None:
        if not symbol:
            raise ValueError("stop coordinator: symbol must not be empty")
        if not position_id:
            raise ValueError("stop coordinator: position_id must not be empty")
        if isinstance(qty, bool) or not isinstance(qty, int) or qty == 0:
            raise ValueError(f"stop coordinator: qty must be a non-zero integer, got {qty!r}")
        try:
            tick = exact(tick_size, "tick_size")
        except TradeMathError as exc:
            raise ValueError(f"stop coordinator: {exc}") from None
        if tick <= 0:
            raise ValueError(f"stop coordinator: tick_size must be positive, got {tick_size!r}")
        if isinstance(initial_revision, bool) or not isinstance(initial_revision, int) \
                or initial_revision < 0:
            raise ValueError(f"stop coordinator: initial_revision must be an integer >= 0, "
                             f"got {initial_revision!r}")
        self._gateway = gateway
        self.symbol = symbol
        self.position_id = position_id
        self._qty = qty
        self._tick = tick
        self._clock = clock
        self._rng = rng
        self._sleep = sleep
        self._config = config or StopCoordinatorConfig()
        self._sink = sink
        self._revision = initial_revision

        self._state = StopState.UNPROTECTED
        self._active: PlacedStop | None = None
        self._leftovers: list[_Leftover] = []
        self._desired: _Target | None = None
        self._last_accepted: _Target | None = None
        self._accepted_at_ns = 0
        self._attempt: _Attempt | None = None
        self._consecutive = 0
        self._lost_protection = False
        self._version = 0
        self._task: asyncio.Task[None] | None = None
        self._wakeup = asyncio.Event()
        self._closed = False
        self._counts = dict.fromkeys(
            ("placements", "cancels", "place_failures", "cancel_failures", "rate_limited",
             "timeouts", "duplicate_lookups", "debounced", "superseded", "rejected",
             "recoveries", "emergency_closes", "sink_errors"), 0)

    # ----------------------------------------------------------------- the stop's identity

    @property
    def side(self) -> str:
        """The stop's order side: ``"sell"`` for a long, ``"buy"`` for a short."""
        return "sell" if self._qty > 0 else "buy"

    @property
    def direction(self) -> str:
        """The stop's trigger direction: ``"down"`` for a long, ``"up"`` for a short."""
        return "down" if self._qty > 0 else "up"

    def stop_client_oid(self, revision: int) -> str:
        """The clientOid of ``revision`` of this position's stop."""
        return client_oid("stop", self.symbol, self.position_id, revision)

    @property
    def emergency_client_oid(self) -> str:
        """The clientOid of this position's emergency close."""
        return client_oid("emergency", self.symbol, self.position_id)

    # ----------------------------------------------------------------- prices and ids

    def _ticks_of_wire(self, text: str, field: str) -> int:
        try:
            ratio = exact(text, field) / self._tick
        except TradeMathError as exc:
            raise ValueError(str(exc)) from None
        if ratio.denominator != 1:
            raise ValueError(f"{field} {text!r} is not a multiple of the tick")
        return ratio.numerator

    def _price_text(self, ticks: int) -> str:
        value = Fraction(ticks) * self._tick
        return format_decimal(Decimal(value.numerator) / Decimal(value.denominator))

    def _revision_of(self, oid: str) -> int:
        head, _, tail = oid.rpartition("-")
        if head and tail.isdigit() and self.stop_client_oid(int(tail)) == oid:
            return int(tail)
        return 0

    def matches(self, stop: ExchangeStop, placed: PlacedStop) -> bool:
        """Whether the exchange's ``stop`` is exactly ``placed`` (side, size, direction,
        price, reduce-only)."""
        try:
            ticks = self._ticks_of_wire(stop.stop_price, "stop_price")
        except ValueError:
            return False
        return (stop.side == placed.side and stop.size == placed.size
                and stop.stop == placed.stop and ticks == placed.ticks and stop.reduce_only)

    # ----------------------------------------------------------------- worker

    def _active_target(self) -> _Target | None:
        active = self._active
        return None if active is None else _Target(active.ticks, active.size)

    def _changed(self) -> None:
        self._version += 1

    def _wake(self) -> None:
        self._wakeup.set()
        if self._closed or self._state is StopState.CRITICAL:
            return
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    def _add_leftover(self, item: _Leftover, *, retry: bool = False) -> None:
        for existing in self._leftovers:
            if existing.client_oid == item.client_oid and (
                    not existing.order_id or existing.order_id == item.order_id):
                existing.order_id = existing.order_id or item.order_id
                if retry:
                    existing.attempts = 0  # asked again (reconciler): a fresh set of tries
                return
        self._leftovers.append(item)

    async def _run(self) -> None:
        while self._state is not StopState.CRITICAL and not self._closed:
            self._wakeup.clear()
            target = self._desired
            if self._attempt is not None and self._attempt.target != target:
                self._retire_attempt()
            if target is not None and self._active_target() != target:
                await self._place(target)
            elif self._active is not None and self._pending_leftovers():
                await self._clean_leftovers()
            else:
                break
        if self._active is not None and self._state not in (StopState.CRITICAL,
                                                            StopState.PROTECTED):
            self._set_state(StopState.PROTECTED, "stop confirmed at the target")

    def _pending_leftovers(self) -> list[_Leftover]:
        limit = self._config.max_cancel_attempts
        return [item for item in self._leftovers if item.attempts < limit]

    async def _call(self, awaitable: Awaitable[T]) -> T:
        timeout_ns = self._config.call_timeout_ns
        if timeout_ns is None:
            return await awaitable
        try:
            return await asyncio.wait_for(awaitable, timeout_ns / NS_PER_SECOND)
        except TimeoutError:
            raise GatewayTimeoutError("no answer within the call timeout") from None

    def _retire_attempt(self) -> None:
        # The target changed while an attempt was being retried. If the attempt timed out it
        # may exist on the exchange: it is looked up and cancelled once a stop is confirmed.
        attempt = self._attempt
        if attempt is not None and attempt.maybe_placed:
            self._add_leftover(_Leftover(client_oid=attempt.client_oid))
        self._attempt = None
        self._changed()

    async def _place(self, target: _Target) -> None:
        attempt = self._attempt
        if attempt is None:
            self._revision += 1
            attempt = _Attempt(target, self._revision, self.stop_client_oid(self._revision))
            self._attempt = attempt
            self._changed()
        attempt.tries += 1
        if self._active is None:
            self._set_state(StopState.RECOVERING, f"placing revision {attempt.revision}")
        else:
            self._set_state(StopState.UPDATING, f"placing revision {attempt.revision}")
        request = StopRequest(symbol=self.symbol, side=self.side, size=target.size,
                              stop=self.direction, stop_price=self._price_text(target.ticks),
                              client_oid=attempt.client_oid,
                              stop_price_type=self._config.stop_price_type)
        found_existing = False
        try:
            try:
                order_id = await self._call(self._gateway.place_stop(request))
            except DuplicateClientOidError:
                # This revision was placed by an earlier attempt whose answer was lost.
                self._counts["duplicate_lookups"] += 1
                order_id = await self._find_existing(attempt, request)
                found_existing = True
        except Exception as exc:  # any gateway failure is retried, never fatal
            if isinstance(exc, GatewayTimeoutError):
                attempt.maybe_placed = True
            self._counts["place_failures"] += 1
            await self._failed("place", exc, attempt)
            return
        old = self._active
        self._active = PlacedStop(order_id=order_id, client_oid=attempt.client_oid,
                                  revision=attempt.revision, side=request.side,
                                  size=request.size, stop=request.stop,
                                  stop_price=request.stop_price, ticks=target.ticks)
        self._attempt = None
        self._consecutive = 0
        self._counts["placements"] += 1
        if old is None and self._lost_protection:
            self._counts["recoveries"] += 1
            self._lost_protection = False
        self._changed()
        self._emit(StopPlaced, order_id=order_id, client_oid=attempt.client_oid,
                   revision=attempt.revision, side=request.side, size=request.size,
                   stop=request.stop, stop_price=request.stop_price,
                   found_existing=found_existing)
        if self._desired == target:
            self._set_state(StopState.PROTECTED, f"revision {attempt.revision} confirmed")
        else:
            self._set_state(StopState.UPDATING, "a newer target is waiting")
        if old is not None:
            # Only now, with the new stop confirmed, does the old one go.
            await self._cancel(_Leftover(client_oid=old.client_oid, order_id=old.order_id),
                               "replaced")

    async def _find_existing(self, attempt: _Attempt, request: StopRequest) -> str:
        stops = await self._call(self._gateway.open_stops(self.symbol))
        for stop in stops:
            if stop.client_oid != attempt.client_oid:
                continue
            if self.matches(stop, PlacedStop(order_id=stop.id, client_oid=stop.client_oid,
                                             revision=attempt.revision, side=request.side,
                                             size=request.size, stop=request.stop,
                                             stop_price=request.stop_price,
                                             ticks=attempt.target.ticks)):
                return stop.id
            # Ours, but not this target (a revision reused after a restart): keep it until
            # a new stop is confirmed, and move on to a fresh revision.
            self._add_leftover(_Leftover(client_oid=stop.client_oid, order_id=stop.id))
            break
        # The revision exists but is not open (triggered, cancelled, or not this target):
        # it can never be placed again, so the next attempt uses a new revision.
        self._attempt = None
        raise StopGatewayError(f"clientOid {attempt.client_oid} exists but is not an open "
                               f"stop at the target")

    def _backoff_ns(self, failures: int, rate_limited: bool, retry_after_ns: int = 0) -> int:
        config = self._config
        base = min(config.retry_base_ns * 2 ** min(failures - 1, 62), config.retry_max_ns)
        if rate_limited:
            base = max(base, config.rate_limited_min_delay_ns, retry_after_ns)
        jitter = config.retry_jitter
        factor = self._rng.uniform(1.0 - jitter, 1.0 + jitter) if jitter else 1.0
        return min(int(base * factor), config.retry_max_ns)

    async def _failed(self, operation: str, exc: Exception, attempt: _Attempt) -> None:
        config = self._config
        self._consecutive += 1
        rate_limited = isinstance(exc, GatewayRateLimitedError)
        if rate_limited:
            self._counts["rate_limited"] += 1
        if isinstance(exc, GatewayTimeoutError):
            self._counts["timeouts"] += 1
        emergency = self._consecutive >= config.max_consecutive_failures and (
            self._active is None or config.emergency_while_protected)
        retry_after = getattr(exc, "retry_after_ns", None) or 0
        delay = 0 if emergency else self._backoff_ns(self._consecutive, rate_limited,
                                                      retry_after)
        logger.warning("stop %s %s/%s revision %d failed (%d in a row): %s", operation,
                       self.symbol, self.position_id, attempt.revision, self._consecutive,
                       _describe(exc))
        self._emit(StopReplaceFailed, operation=operation, client_oid=attempt.client_oid,
                   revision=attempt.revision, attempt=attempt.tries,
                   consecutive_failures=self._consecutive, error=_describe(exc),
                   rate_limited=rate_limited, retry_in_ns=delay)
        if self._active is None:
            self._lost_protection = True
            self._set_state(StopState.UNPROTECTED, f"{operation} failed: {type(exc).__name__}")
        if emergency:
            await self._emergency_close()
            return
        # Not interruptible: a newer target does not make the exchange answer sooner.
        await self._sleep(delay / NS_PER_SECOND)

    async def _emergency_close(self) -> None:
        self._set_state(StopState.CRITICAL,
                        f"{self._consecutive} consecutive stop failures: emergency close")
        oid = self.emergency_client_oid
        for number in range(1, self._config.emergency_attempts + 1):
            try:
                try:
                    order_id = await self._call(self._gateway.close_position(self.symbol, oid))
                except DuplicateClientOidError:
                    order_id = ""  # an earlier attempt already sent it
            except Exception as exc:  # keep trying, then report
                logger.error("emergency close of %s/%s failed (attempt %d): %s", self.symbol,
                             self.position_id, number, _describe(exc))
                self._emit(EmergencyClose, client_oid=oid, order_id="", ok=False,
                           attempt=number, consecutive_failures=self._consecutive,
                           error=_describe(exc))
                if number < self._config.emergency_attempts:
                    await self._sleep(self._backoff_ns(number, isinstance(
                        exc, GatewayRateLimitedError)) / NS_PER_SECOND)
                continue
            self._counts["emergency_closes"] += 1
            logger.error("emergency close of %s/%s sent (%s)", self.symbol, self.position_id,
                         oid)
            self._emit(EmergencyClose, client_oid=oid, order_id=order_id, ok=True,
                       attempt=number, consecutive_failures=self._consecutive, error="")
            # The stops stay: until the exchange shows the position flat they still protect
            # it, and the reconciler removes them as orphans afterwards.
            return

    async def _cancel(self, item: _Leftover, reason: str) -> bool:
        try:
            await self._call(self._gateway.cancel(self.symbol, item.order_id))
            already_gone = False
        except StopAlreadyGoneError:
            already_gone = True
        except Exception as exc:  # the stop stays a leftover, retried later
            item.attempts += 1
            self._counts["cancel_failures"] += 1
            if isinstance(exc, GatewayRateLimitedError):
                self._counts["rate_limited"] += 1
            self._add_leftover(item)
            self._changed()
            exhausted = item.attempts >= self._config.max_cancel_attempts
            logger.warning("cancel of superseded stop %s (%s) failed: %s", item.order_id,
                           self.symbol, _describe(exc))
            self._emit(StopReplaceFailed, operation="cancel", client_oid=item.client_oid,
                       revision=self._revision_of(item.client_oid), attempt=item.attempts,
                       consecutive_failures=self._consecutive, error=_describe(exc),
                       rate_limited=isinstance(exc, GatewayRateLimitedError),
                       retry_in_ns=0 if exhausted else self._backoff_ns(
                           item.attempts, isinstance(exc, GatewayRateLimitedError)))
            return False
        self._leftovers = [x for x in self._leftovers
                           if x is not item and x.order_id != item.order_id]
        self._counts["cancels"] += 1
        self._changed()
        self._emit(StopCancelled, order_id=item.order_id, client_oid=item.client_oid,
                   already_gone=already_gone, reason=reason)
        return True

    async def _clean_leftovers(self) -> None:
        active_id = self._active.order_id if self._active is not None else ""
        # The confirmed stop is never a leftover (it could be one only by a stale report).
        self._leftovers = [x for x in self._leftovers if not x.order_id or x.order_id != active_id]
        pending = self._pending_leftovers()
        if not pending:
            return
        worst = max(item.attempts for item in pending)
        if worst > 0:
            # Interruptible: a new target is placed first, the cleanup resumes after it.
            await self._pause(self._backoff_ns(worst, False))
            if self._desired is not None and self._active_target() != self._desired:
                return
        unknown = [item for item in pending if not item.order_id]
        if unknown:
            try:
                stops = await self._call(self._gateway.open_stops(self.symbol))
            except Exception as exc:  # retried on the next pass
                for item in unknown:
                    item.attempts += 1
                logger.warning("stop lookup for %s failed: %s", self.symbol, _describe(exc))
                return
            by_oid = {stop.client_oid: stop for stop in stops}
            for item in unknown:
                stop = by_oid.get(item.client_oid)
                if stop is None:
                    # Never placed (or already gone); the reconciler catches a late one.
                    self._leftovers = [x for x in self._leftovers if x is not item]
                    self._changed()
                else:
                    item.order_id = stop.id
        for item in self._pending_leftovers():
            if item.order_id and self._active is not None \
                    and item.order_id != self._active.order_id:
                await self._cancel(item, "superseded")

    async def _pause(self, delay_ns: int) -> None:
        if delay_ns <= 0 or self._wakeup.is_set():
            return
        sleeper = asyncio.ensure_future(self._sleep(delay_ns / NS_PER_SECOND))
        waker = asyncio.ensure_future(self._wakeup.wait())
        try:
            await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeper, waker):
                task.cancel()

    # ----------------------------------------------------------------- events

    def _set_state(self, state: StopState, reason: str) -> None:
        previous = self._state
        if previous is state:
            return
        self._state = state
        self._changed()
        self._emit(StopStateChanged, previous=previous, state=state, reason=reason)

    def _emit(self, kind: type[StopEvent], **fields: object) -> None:
        if self._sink is None:
            return
        now = self._clock()
        event = kind(symbol=self.symbol, position_id=self.position_id, ts_event=now,
                     ts_init=now, **fields)  # type: ignore[arg-type]
        try:
            self._sink(event)
        except Exception:  # a broken sink must not stop stop management
            self._counts["sink_errors"] += 1
            logger.exception("stop event sink failed on %s", type(event).__name__)
