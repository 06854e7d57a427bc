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
transport (``RestStopGateway`` at the end of this module adapts the REST client to it);
clock, sleep and random source are injected.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import math
import random
from collections.abc import Awaitable, Callable, Iterator, Mapping
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import TYPE_CHECKING, Protocol, TypeVar

import msgspec

from liveopt.exchange import errors as rest_errors
from liveopt.exchange.client_oid import client_oid, is_valid_client_oid
from liveopt.exchange.priority import Priority
from liveopt.exchange.rest_models import OrderRequest
from liveopt.exchange.trade_math import TradeMathError, exact, format_decimal

if TYPE_CHECKING:
    from liveopt.exchange.rest import KucoinFuturesRest

__all__ = [
    "STOP_CLIENT_OID_PREFIX",
    "DuplicateClientOidError",
    "EmergencyClose",
    "ExchangePosition",
    "ExchangeStop",
    "GatewayRateLimitedError",
    "GatewayTimeoutError",
    "PlacedStop",
    "RestStopGateway",
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

logger = logging.getLogger(__name__)

NS_PER_SECOND = 1_000_000_000
#: Every stop liveopt places has a clientOid starting with this (``client_oid("stop", ...)``).
STOP_CLIENT_OID_PREFIX = "stop-"
SIDES = ("buy", "sell")
STOP_DIRECTIONS = ("down", "up")
STOP_PRICE_TYPES = ("MP", "TP", "IP")
_MAX_ERROR_CHARS = 200

T = TypeVar("T")


def is_liveopt_stop(client_oid_value: str) -> bool:
    """Whether a stop order's clientOid says liveopt placed it."""
    return client_oid_value.startswith(STOP_CLIENT_OID_PREFIX)


# --------------------------------------------------------------------------- gateway errors


class StopGatewayError(Exception):
    """A gateway call failed: the exchange refused it or the transport broke."""


class GatewayRateLimitedError(StopGatewayError):
    """The exchange answered 429 / rate limited: back off longer before retrying.

    ``retry_after_ns`` is how long the exchange said the quota needs to reset (from the
    ``gw-ratelimit-reset`` header), None when it did not say."""

    def __init__(self, message: str = "", *, retry_after_ns: int | None = None) -> None:
        super().__init__(message)
        self.retry_after_ns = retry_after_ns


class GatewayTimeoutError(StopGatewayError):
    """No answer in time: the request may or may not have taken effect."""


class StopAlreadyGoneError(StopGatewayError):
    """A cancel found the order already done, cancelled or unknown ("not cancelable")."""


class DuplicateClientOidError(StopGatewayError):
    """A placement was refused because an order with this clientOid exists already."""


# --------------------------------------------------------------------------- wire-side records


def _check_choice(owner: str, field: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{owner}: {field} must be one of {allowed}, got {value!r}")


def _check_positive_int(owner: str, field: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{owner}: {field} must be a positive integer, got {value!r}")


def _check_price_text(owner: str, field: str, value: object) -> None:
    if not isinstance(value, str):
        raise ValueError(f"{owner}: {field} must be a decimal string, got {value!r}")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"{owner}: {field} is not a decimal number: {value!r}") from None
    if not number.is_finite() or number <= 0:
        raise ValueError(f"{owner}: {field} must be positive and finite, got {value!r}")


def _check_stop_pairing(owner: str, side: str, stop: str) -> None:
    # A protective stop of a long sells when the price falls ("down"); of a short, buys when
    # it rises ("up"). The other pairings are entries or take-profits, never a stop-loss.
    if (side, stop) not in (("sell", "down"), ("buy", "up")):
        raise ValueError(
            f"{owner}: a stop-loss is side 'sell' with stop 'down' (long) or side 'buy' with "
            f"stop 'up' (short), got side={side!r} stop={stop!r}"
        )


class StopRequest(msgspec.Struct, frozen=True, kw_only=True):
    """One reduce-only stop-loss order to place (``POST /api/v1/orders`` with ``stop``).

    Parameters
    ----------
    symbol : str
        Contract symbol, e.g. ``"XBTUSDTM"``.
    side : {"buy", "sell"}
        ``"sell"`` protects a long, ``"buy"`` a short.
    size : int
        Lots (whole contracts), positive.
    stop : {"down", "up"}
        Trigger direction: ``"down"`` for a long's stop, ``"up"`` for a short's.
    stop_price : str
        Trigger price, already a tick multiple, as the wire string.
    client_oid : str
        Deterministic id (``stop-{symbol}-{positionId}-{revision}``).
    stop_price_type : {"MP", "TP", "IP"}
        Mark price (default), last trade price or index price.
    reduce_only : bool
        Always True: a stop must never open or grow a position; False is refused.
    """

    symbol: str
    side: str
    size: int
    stop: str
    stop_price: str
    client_oid: str
    stop_price_type: str = "MP"
    reduce_only: bool = True

    def __post_init__(self) -> None:
        owner = "stop request"
        if not self.symbol:
            raise ValueError(f"{owner}: symbol must not be empty")
        _check_choice(owner, "side", self.side, SIDES)
        _check_choice(owner, "stop", self.stop, STOP_DIRECTIONS)
        _check_choice(owner, "stop_price_type", self.stop_price_type, STOP_PRICE_TYPES)
        _check_stop_pairing(owner, self.side, self.stop)
        _check_positive_int(owner, "size", self.size)
        _check_price_text(owner, "stop_price", self.stop_price)
        if not is_valid_client_oid(self.client_oid):
            raise ValueError(f"{owner}: client_oid is not a valid exchange id: "
                             f"{self.client_oid!r}")
        if self.reduce_only is not True:
            raise ValueError(f"{owner}: reduce_only must be True for a stop-loss")


class ExchangeStop(msgspec.Struct, frozen=True, kw_only=True):
    """An untriggered stop order as the exchange lists it (``GET /api/v1/stopOrders``)."""

    id: str
    client_oid: str
    side: str
    size: int
    stop: str
    stop_price: str
    symbol: str = ""
    reduce_only: bool = True
    stop_price_type: str = "MP"


class ExchangePosition(msgspec.Struct, frozen=True, kw_only=True):
    """A position as the exchange reports it; ``qty`` is signed lots (negative: short)."""

    symbol: str
    id: str
    qty: int
    avg_entry_price: float = 0.0


class StopGateway(Protocol):
    """What the coordinator and the reconciler need from the exchange.

    Failures raise :class:`StopGatewayError` subclasses (other exceptions are treated as
    failures too): :class:`GatewayRateLimitedError` on 429, :class:`GatewayTimeoutError`
    when the outcome is unknown, :class:`DuplicateClientOidError` when a placement's
    clientOid exists, :class:`StopAlreadyGoneError` when a cancel finds the order done.
    """

    async def place_stop(self, request: StopRequest) -> str:
        """Place ``request``; return the exchange's order id."""
        ...

    async def cancel(self, symbol: str, order_id: str) -> None:
        """Cancel one order; raise :class:`StopAlreadyGoneError` if it is already done."""
        ...

    async def open_stops(self, symbol: str) -> list[ExchangeStop]:
        """The untriggered stop orders of ``symbol``."""
        ...

    async def position(self, symbol: str) -> ExchangePosition:
        """The position of ``symbol`` (``qty == 0`` when flat)."""
        ...

    async def close_position(self, symbol: str, client_oid: str) -> str:
        """Close the whole position with a reduce-only market order; return its order id."""
        ...


# --------------------------------------------------------------------------- config, state


class StopCoordinatorConfig(msgspec.Struct, frozen=True, kw_only=True,
                            forbid_unknown_fields=True):
    """Timings and limits of a :class:`StopReplaceCoordinator`.

    Parameters
    ----------
    debounce_ns : int
        An update closer than ``min_move_ticks`` to the last accepted target, within this
        long after it, is skipped (1.5 s, the origin's CX StopManager value).
    min_move_ticks : int
        See ``debounce_ns`` (2 ticks); 0 turns debouncing off.
    max_consecutive_failures : int
        Consecutive failed placements (or lookups) before the emergency close (5).
    retry_base_ns, retry_max_ns : int
        Back-off after the k-th consecutive failure: ``min(base * 2**(k-1), max)``,
        then jittered (1 s and 30 s, as the origin).
    retry_jitter : float
        The back-off is multiplied by a uniform factor in ``[1 - j, 1 + j]`` (0.2).
    rate_limited_min_delay_ns : int
        Floor of the back-off after a 429 (10 s: KuCoin blocks an endpoint for 10 s on
        code 200002, so an earlier retry is wasted weight); a longer reset announced by the
        exchange is honoured, up to ``retry_max_ns``.
    max_cancel_attempts : int
        Attempts to cancel a superseded stop before it is left to the reconciler (5).
    emergency_attempts : int
        Attempts of the emergency close itself (3).
    emergency_while_protected : bool
        Whether failures to *move* a stop (an older stop still protects the position) also
        lead to the emergency close (True); False keeps retrying at ``retry_max_ns``.
    call_timeout_ns : int or None
        A gateway call not answered within this is abandoned as a timeout whose outcome is
        unknown (35 s: above the REST client's own 3 attempts of 10 s, so its retries are
        not cut short); None waits for the gateway's own timeouts.
    stop_price_type : {"MP", "TP", "IP"}
        Trigger price of the stops: mark price by default (the origin's CX requirement).
    """

    debounce_ns: int = 1_500_000_000
    min_move_ticks: int = 2
    max_consecutive_failures: int = 5
    retry_base_ns: int = 1_000_000_000
    retry_max_ns: int = 30_000_000_000
    retry_jitter: float = 0.2
    rate_limited_min_delay_ns: int = 10_000_000_000
    max_cancel_attempts: int = 5
    emergency_attempts: int = 3
    emergency_while_protected: bool = True
    call_timeout_ns: int | None = 35_000_000_000
    stop_price_type: str = "MP"

    def __post_init__(self) -> None:
        owner = "stop coordinator config"
        for name in ("debounce_ns", "min_move_ticks", "retry_base_ns"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{owner}: {name} must be an integer >= 0, got {value!r}")
        for name in ("max_consecutive_failures", "max_cancel_attempts", "emergency_attempts",
                     "retry_max_ns"):
            _check_positive_int(owner, name, getattr(self, name))
        if self.retry_base_ns > self.retry_max_ns:
            raise ValueError(f"{owner}: retry_base_ns must not exceed retry_max_ns")
        if not 0 <= self.rate_limited_min_delay_ns <= self.retry_max_ns:
            raise ValueError(f"{owner}: rate_limited_min_delay_ns must be in "
                             f"[0, retry_max_ns], got {self.rate_limited_min_delay_ns!r}")
        if not 0.0 <= self.retry_jitter < 1.0:
            raise ValueError(f"{owner}: retry_jitter must be in [0, 1), "
                             f"got {self.retry_jitter!r}")
        if self.call_timeout_ns is not None:
            _check_positive_int(owner, "call_timeout_ns", self.call_timeout_ns)
        _check_choice(owner, "stop_price_type", self.stop_price_type, STOP_PRICE_TYPES)


class StopState(enum.StrEnum):
    """Protection state of one position.

    PROTECTED: a confirmed stop at the latest target. UPDATING: a confirmed (older) stop
    protects the position while a new one is placed. UNPROTECTED: no confirmed stop (before
    the first one, after a failed placement, or when the reconciler found it missing).
    RECOVERING: no confirmed stop and a placement is under way. CRITICAL: the emergency
    close was sent; the coordinator places nothing more.
    """

    PROTECTED = "PROTECTED"
    UPDATING = "UPDATING"
    UNPROTECTED = "UNPROTECTED"
    RECOVERING = "RECOVERING"
    CRITICAL = "CRITICAL"


class PlacedStop(msgspec.Struct, frozen=True, kw_only=True):
    """A stop the coordinator knows to be on the exchange."""

    order_id: str
    client_oid: str
    revision: int
    side: str
    size: int
    stop: str
    stop_price: str
    ticks: int


# --------------------------------------------------------------------------- events


class _StopEventBase(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    symbol: str
    position_id: str
    ts_event: int
    ts_init: int


class StopStateChanged(_StopEventBase, frozen=True, kw_only=True):
    """The coordinator moved from ``previous`` to ``state``; ``reason`` says why."""

    previous: StopState
    state: StopState
    reason: str


class StopPlaced(_StopEventBase, frozen=True, kw_only=True):
    """A stop is confirmed on the exchange (``found_existing``: an earlier, timed-out attempt
    of the same revision had placed it, found through the duplicate-clientOid answer)."""

    order_id: str
    client_oid: str
    revision: int
    side: str
    size: int
    stop: str
    stop_price: str
    found_existing: bool


class StopCancelled(_StopEventBase, frozen=True, kw_only=True):
    """A superseded stop is gone (``already_gone``: the exchange said it was done)."""

    order_id: str
    client_oid: str
    already_gone: bool
    reason: str


class StopReplaceFailed(_StopEventBase, frozen=True, kw_only=True):
    """A gateway call failed; ``retry_in_ns`` is the back-off before the next attempt
    (0 when the failure is left to a later pass or to the reconciler)."""

    operation: str
    client_oid: str
    revision: int
    attempt: int
    consecutive_failures: int
    error: str
    rate_limited: bool
    retry_in_ns: int


class EmergencyClose(_StopEventBase, frozen=True, kw_only=True):
    """One attempt of the reduce-only market close after repeated stop failures."""

    client_oid: str
    order_id: str
    ok: bool
    attempt: int
    consecutive_failures: int
    error: str


StopEvent = StopStateChanged | StopPlaced | StopCancelled | StopReplaceFailed | EmergencyClose


class StopMetrics(msgspec.Struct, frozen=True, kw_only=True):
    """Counters of one coordinator (a snapshot)."""

    state: StopState
    revision: int
    placements: int
    cancels: int
    place_failures: int
    cancel_failures: int
    rate_limited: int
    timeouts: int
    duplicate_lookups: int
    debounced: int
    superseded: int
    rejected: int
    recoveries: int
    emergency_closes: int
    consecutive_failures: int
    stale_stops: int
    sink_errors: int


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


# --------------------------------------------------------------------------- coordinator


class StopReplaceCoordinator:
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
    def side(self) -> str:
        """The stop's order side: ``"sell"`` for a long, ``"buy"`` for a short."""
        return "sell" if self._qty > 0 else "buy"

    @property
    def direction(self) -> str:
        """The stop's trigger direction: ``"down"`` for a long, ``"up"`` for a short."""
        return "down" if self._qty > 0 else "up"

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

    def stop_client_oid(self, revision: int) -> str:
        """The clientOid of ``revision`` of this position's stop."""
        return client_oid("stop", self.symbol, self.position_id, revision)

    @property
    def emergency_client_oid(self) -> str:
        """The clientOid of this position's emergency close."""
        return client_oid("emergency", self.symbol, self.position_id)

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


# --------------------------------------------------------------------------- REST adapter


class RestStopGateway:
    """:class:`StopGateway` on :class:`~liveopt.exchange.rest.KucoinFuturesRest`.

    Stop placement, cancels and the emergency close go out with priority CRITICAL (they
    protect an open position); the lookups (open stops, position) with ``lookup_priority``.
    The REST client's typed errors become the gateway's: ``RateLimitedError`` ->
    :class:`GatewayRateLimitedError`, ``TransportError`` -> :class:`GatewayTimeoutError`
    (the outcome is unknown), ``NotCancelableError`` / ``OrderNotFoundError`` on a cancel ->
    :class:`StopAlreadyGoneError`, ``DuplicateClientOidError`` (a *different* order under the
    clientOid; the client resolves a same-order duplicate itself) -> the gateway's
    :class:`DuplicateClientOidError`, any other ``KucoinError`` -> :class:`StopGatewayError`.

    Parameters
    ----------
    rest : KucoinFuturesRest
        The REST client (its rate-limit budget, retries and signing apply).
    leverage : int or mapping of symbol to int
        The ``leverage`` field the exchange requires on a (reduce-only) stop order; it
        freezes no margin for a reduce-only order. Default 1.
    lookup_priority : Priority
        Priority of ``open_stops`` and ``position`` (default MEDIUM, the sync class).
    """

    def __init__(self, rest: KucoinFuturesRest, *, leverage: int | Mapping[str, int] = 1,
                 lookup_priority: Priority | None = None) -> None:
        self._rest = rest
        self._leverage = leverage
        self._lookup_priority = Priority.MEDIUM if lookup_priority is None else lookup_priority
        self.skipped_items = 0

    def _leverage_of(self, symbol: str) -> int:
        if isinstance(self._leverage, int):
            return self._leverage
        try:
            return self._leverage[symbol]
        except KeyError:
            raise ValueError(f"rest stop gateway: no leverage configured for {symbol}") from None

    async def place_stop(self, request: StopRequest) -> str:
        """Place a reduce-only stop-market order; return its order id."""
        order = OrderRequest.stop_market(
            request.client_oid, request.symbol, request.side, request.size, request.stop,
            request.stop_price, self._leverage_of(request.symbol),
            stop_price_type=request.stop_price_type, reduce_only=True)
        with _translated_errors():
            ack = await self._rest.place_order(order, priority=Priority.CRITICAL)
        return ack.order_id

    async def cancel(self, symbol: str, order_id: str) -> None:
        """Cancel one order by id."""
        with _translated_errors(cancel=True):
            await self._rest.cancel_order(order_id, priority=Priority.CRITICAL)

    async def open_stops(self, symbol: str) -> list[ExchangeStop]:
        """Every untriggered stop order of ``symbol``."""
        with _translated_errors():
            orders = await self._rest.all_stop_orders(symbol, priority=self._lookup_priority)
        stops: list[ExchangeStop] = []
        for order in orders:
            if order.stop is None or order.stop_price is None or order.size <= 0:
                # Not a usable stop record (documented fields missing): counted, not used.
                self.skipped_items += 1
                logger.warning("stop order %s of %s lacks stop/stopPrice/size; skipped",
                               order.id, symbol)
                continue
            stops.append(ExchangeStop(
                id=order.id, client_oid=order.client_oid or "", side=order.side,
                size=order.size, stop=order.stop, stop_price=order.stop_price,
                symbol=order.symbol, reduce_only=order.reduce_only,
                stop_price_type=order.stop_price_type or ""))
        return stops

    async def position(self, symbol: str) -> ExchangePosition:
        """The position of ``symbol`` (``qty`` 0 when flat)."""
        with _translated_errors():
            position = await self._rest.position(symbol, priority=self._lookup_priority)
        return ExchangePosition(symbol=position.symbol or symbol, id=position.id or "",
                                qty=position.current_qty,
                                avg_entry_price=position.avg_entry_price or 0.0)

    async def close_position(self, symbol: str, client_oid: str) -> str:
        """Close the whole position: a reduce-only market ``closeOrder``."""
        order = OrderRequest(client_oid=client_oid, symbol=symbol, type="market",
                             close_order=True, reduce_only=True)
        with _translated_errors():
            ack = await self._rest.place_order(order, priority=Priority.CRITICAL)
        return ack.order_id


@contextlib.contextmanager
def _translated_errors(*, cancel: bool = False) -> Iterator[None]:
    # The REST client's error classes mapped onto the transport-free gateway errors; the
    # original stays attached as __cause__ (its text carries no secrets, see errors.py).
    try:
        yield
    except rest_errors.RateLimitedError as exc:
        retry_after = None if exc.reset_ms is None else exc.reset_ms * 1_000_000
        raise GatewayRateLimitedError(str(exc), retry_after_ns=retry_after) from exc
    except rest_errors.TransportError as exc:
        raise GatewayTimeoutError(str(exc)) from exc
    except (rest_errors.NotCancelableError, rest_errors.OrderNotFoundError) as exc:
        if cancel:
            raise StopAlreadyGoneError(str(exc)) from exc
        raise StopGatewayError(str(exc)) from exc
    except rest_errors.DuplicateClientOidError as exc:
        raise DuplicateClientOidError(str(exc)) from exc
    except rest_errors.KucoinError as exc:
        raise StopGatewayError(str(exc)) from exc
