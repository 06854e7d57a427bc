"""The router's exchange calls: placing an order safely, reading the position, cancelling.

``OrderDesk`` owns the REST side of ``MainOrderRouter``: an order is sent with its
deterministic clientOid and repeated on retryable failures (the exchange refuses a second
order under the same clientOid, and ``KucoinFuturesRest.place_order`` returns the first),
an outcome that stays unknown is looked up by clientOid, the position is read until it
shows what an order did, and only orders carrying a router clientOid are ever cancelled.
This module also holds the live-trading guard (:func:`check_destination`).
"""

from __future__ import annotations

import logging
import random
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from liveopt.exchange import errors as rest_errors
from liveopt.exchange.priority import Priority
from liveopt.exchange.rest import KucoinFuturesRest
from liveopt.exchange.rest_models import OrderAck, OrderRequest, Position
from liveopt.exchange.trade_math import ContractSpec, Side, format_decimal, take_profit_price
from liveopt.service.router_types import (
    ROUTER_CLIENT_OID_PREFIXES,
    LiveTradingNotConfirmedError,
    OrderRouted,
    RouterConfig,
)

__all__ = ["FlattenOutcome", "OrderDesk", "OrderFailedError", "check_destination", "describe",
           "is_router_order", "take_profit_request"]

log = logging.getLogger("liveopt.service.router")
_LOOPBACK_HOSTS = ("localhost", "::1")
_MAX_ERROR_CHARS = 200


def describe(exc: BaseException) -> str:
    """``"TypeName: text"`` of an exception, bounded (REST errors carry no secrets)."""
    text = str(exc)[:_MAX_ERROR_CHARS]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _is_loopback(url: str) -> bool:
    host = urllib.parse.urlsplit(url).hostname or ""
    return host in _LOOPBACK_HOSTS or host.startswith("127.")


def check_destination(base_url: str, mode: str, live_confirmed: bool) -> None:
    """Refuse to route to a real exchange without the explicit confirmation.

    Any host that is not the loopback interface counts as real (KuCoin's
    ``api-futures.kucoin.com`` and anything else): it needs ``mode == "live"`` and
    ``live_confirmed``. ``mode == "live"`` always needs ``live_confirmed``, and
    ``live_confirmed`` is refused in another mode. Raises
    :class:`LiveTradingNotConfirmedError` saying what is missing.
    """
    if live_confirmed and mode != "live":
        raise LiveTradingNotConfirmedError(
            f"router: live_confirmed is only accepted with mode 'live', got mode {mode!r}")
    if not _is_loopback(base_url) and mode != "live":
        raise LiveTradingNotConfirmedError(
            f"router: {base_url} is a real exchange; mode {mode!r} routes only to the local "
            f"simulator (use mode 'live' with the confirmation flag)")
    if mode == "live" and not live_confirmed:
        raise LiveTradingNotConfirmedError(
            f"router: real orders to {base_url} need live_confirmed=True (set by the config "
            f"layer only for mode = 'live' with confirm_live)")


def is_router_order(oid: str | None) -> bool:
    """Whether a clientOid marks an order of the main strategy's router."""
    return oid is not None and oid.startswith(ROUTER_CLIENT_OID_PREFIXES)


def take_profit_request(contract: ContractSpec, side: Side, entry_price: float,
                        roi_pct: float, leverage: int, lots: int, oid: str, kind: str,
                        stop_price_type: str) -> OrderRequest:
    """The reduce-only take-profit of a position: a GTC limit order at the target
    (``kind="limit"``) or a stop-market order triggered there (``"stop_market"``). The
    target is rounded away from entry, so reaching it earns at least ``roi_pct``."""
    target = contract.round_target_price(
        side, take_profit_price(side, entry_price, roi_pct, leverage))
    price = format_decimal(target)
    close_side = "sell" if side is Side.LONG else "buy"
    if kind == "limit":
        return OrderRequest.limit(oid, contract.symbol, close_side, lots, price, leverage,
                                  reduce_only=True)
    return OrderRequest(client_oid=oid, symbol=contract.symbol, type="market", side=close_side,
                        size=lots, leverage=leverage,
                        stop="up" if side is Side.LONG else "down", stop_price=price,
                        stop_price_type=stop_price_type, reduce_only=True)


class OrderFailedError(Exception):
    """An order could not be placed after ``attempts`` sends (the cause is chained)."""

    def __init__(self, operation: str, cause: BaseException, attempts: int) -> None:
        self.attempts = attempts
        super().__init__(f"{operation}: {describe(cause)} (after {attempts} attempts)")


class FlattenOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """What :meth:`OrderDesk.flatten` did: orders cancelled, whether it closed a position,
    whether the exchange showed the symbol flat at the end, and every step's failure."""

    cancelled: int
    closed: bool
    flat: bool
    close_order_id: str
    errors: list[str]


class OrderDesk:
    """Order placement, position reads and cancels of one symbol for the router.

    Parameters
    ----------
    rest : KucoinFuturesRest
        The REST client.
    symbol : str
        The contract.
    config : RouterConfig
        ``order_attempts``, back-off, ``position_reads`` and their delay.
    clock_ns, rng, sleep
        Injected time, jitter source and ``await sleep(seconds)``.
    emit : callable
        Receives an :class:`OrderRouted` for every order placed.
    """

    def __init__(self, rest: KucoinFuturesRest, *, symbol: str, config: RouterConfig,
                 clock_ns: Callable[[], int], rng: random.Random,
                 sleep: Callable[[float], Awaitable[None]],
                 emit: Callable[[OrderRouted], None]) -> None:
        self._rest = rest
        self._symbol = symbol
        self._config = config
        self._clock_ns = clock_ns
        self._rng = rng
        self._sleep = sleep
        self._emit = emit
        self.exchange_qty: int | None = None  # the signed position at the last read

    async def send(self, operation: str, request: OrderRequest,
                   priority: Priority) -> OrderAck:
        """Place ``request``; raise :class:`OrderFailedError` when it is not on the exchange.

        The REST client already retries transport and 5xx failures; the desk repeats the
        whole call on top (same clientOid, so never a second order). When the outcome is
        still unknown, the order is looked up by its clientOid."""
        attempts = 0
        while True:
            attempts += 1
            try:
                ack = await self._rest.place_order(request, priority=priority)
                break
            except rest_errors.KucoinError as exc:
                if exc.retryable and attempts < self._config.order_attempts:
                    await self._sleep(self._backoff_s(attempts))
                    continue
                found = await self._existing(request, exc) if exc.retryable else None
                if found is None:
                    raise OrderFailedError(operation, exc, attempts) from exc
                ack = found
                break
        self._emit(OrderRouted(ts_ns=self._clock_ns(), operation=operation,
                               client_oid=request.client_oid, order_id=ack.order_id,
                               side=request.side or "", lots=request.size or 0,
                               existing=ack.existing))
        return ack

    async def _existing(self, request: OrderRequest,
                        failure: rest_errors.KucoinError) -> OrderAck | None:
        try:
            order = await self._rest.order_by_client_oid(request.client_oid,
                                                         priority=Priority.HIGH)
        except rest_errors.KucoinError:
            return None
        log.info("%s: outcome unknown (%s) but order %s exists", request.client_oid,
                 type(failure).__name__, order.id)
        return OrderAck(order_id=order.id, client_oid=order.client_oid, existing=True)

    def _backoff_s(self, attempt: int) -> float:
        config = self._config
        base = min(config.retry_backoff_s * 2 ** (attempt - 1), config.retry_backoff_max_s)
        return base * self._rng.uniform(0.8, 1.2)

    async def position(self, priority: Priority = Priority.HIGH) -> Position:
        """The exchange's position (read once)."""
        position = await self._rest.position(self._symbol, priority=priority)
        self.exchange_qty = position.current_qty
        return position

    async def read_position(self, done: Callable[[Position], bool]) -> Position | None:
        """Read the position until ``done`` holds (``position_reads`` times, pausing
        between reads: a fill can take a moment to show); None when it never did. The last
        read error is raised when no read succeeded at the end."""
        last_error: Exception | None = None
        for number in range(1, self._config.position_reads + 1):
            try:
                position = await self.position()
            except rest_errors.KucoinError as exc:
                last_error = exc
            else:
                last_error = None
                if done(position):
                    return position
            if number < self._config.position_reads:
                await self._sleep(self._config.position_read_delay_s)
        if last_error is not None:
            raise last_error
        return None

    async def cancel_router_orders(self, *, stops: bool = True,
                                   orders: bool = True) -> tuple[int, list[str]]:
        """Cancel the open orders and/or untriggered stops carrying a router clientOid
        (orders placed by hand are left alone). Returns ``(cancelled, errors)``; an order
        found already done is not an error."""
        found: list[str] = []
        if orders:
            found += [o.id for o in await self._rest.all_open_orders(
                self._symbol, priority=Priority.CRITICAL) if is_router_order(o.client_oid)]
        if stops:
            found += [o.id for o in await self._rest.all_stop_orders(
                self._symbol, priority=Priority.CRITICAL) if is_router_order(o.client_oid)]
        cancelled = 0
        errors: list[str] = []
        for order_id in found:
            try:
                await self._rest.cancel_order(order_id, priority=Priority.CRITICAL)
            except (rest_errors.NotCancelableError, rest_errors.OrderNotFoundError):
                continue  # filled or cancelled meanwhile: nothing left to cancel
            except rest_errors.KucoinError as exc:
                errors.append(f"cancel {order_id}: {describe(exc)}")
                continue
            cancelled += 1
        return cancelled, errors

    async def flatten(self, close_oid: str) -> FlattenOutcome:
        """Cancel the router's open orders, close the position reduce-only (``closeOrder``
        with ``close_oid``), cancel the router's stops, then read until flat. A failed step
        is recorded and the next one still runs; nothing is raised."""
        errors: list[str] = []
        # Open orders first (they could add to the position), stops last (they protect the
        # position until it is closed).
        cancelled = self._counted(await _guarded(errors, self.cancel_router_orders(
            stops=False)), errors)
        exchange = await _guarded(errors, self.position(Priority.CRITICAL))
        had_position = exchange is not None and exchange.current_qty != 0
        close_order_id = ""
        if had_position:
            request = OrderRequest(client_oid=close_oid, symbol=self._symbol, type="market",
                                   close_order=True, reduce_only=True)
            ack = await _guarded(errors, self.send("flatten", request, Priority.CRITICAL))
            close_order_id = "" if ack is None else ack.order_id
        cancelled += self._counted(await _guarded(errors, self.cancel_router_orders(
            orders=False)), errors)
        after = await _guarded(errors, self.read_position(lambda p: p.current_qty == 0))
        flat = after is not None
        if not flat and not errors:
            errors.append(f"the exchange still shows {self.exchange_qty} lots")
        return FlattenOutcome(cancelled=cancelled, closed=flat and had_position, flat=flat,
                              close_order_id=close_order_id, errors=errors)

    @staticmethod
    def _counted(result: tuple[int, list[str]] | None, errors: list[str]) -> int:
        if result is None:
            return 0
        errors.extend(result[1])
        return result[0]


async def _guarded(errors: list[str], step: Awaitable[Any]) -> Any:
    # One step of a flatten: its failure is recorded and the next step still runs.
    try:
        return await step
    except Exception as exc:
        errors.append(describe(exc))
        return None
