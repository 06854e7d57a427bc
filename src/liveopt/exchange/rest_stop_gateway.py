"""``RestStopGateway``: the :class:`StopGateway` protocol over the KuCoin REST client.

Owns the adapter from the transport-free gateway protocol (``stop_types.py``) to
:class:`~liveopt.exchange.rest.KucoinFuturesRest`: priorities of the calls, the reduce-only
stop-market and close orders, and the mapping of the REST client's errors onto the gateway's.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from liveopt.exchange import errors as rest_errors
from liveopt.exchange.priority import Priority
from liveopt.exchange.rest_models import OrderRequest
from liveopt.exchange.stop_types import (
    DuplicateClientOidError,
    ExchangePosition,
    ExchangeStop,
    GatewayRateLimitedError,
    GatewayTimeoutError,
    StopAlreadyGoneError,
    StopGatewayError,
    StopRequest,
)

if TYPE_CHECKING:
    from liveopt.exchange.rest import KucoinFuturesRest

__all__ = ["RestStopGateway"]

# The records keep the name of the public module (log configuration filters on it).
logger = logging.getLogger("liveopt.exchange.stops")


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
    except (rest_errors.TransportError, rest_errors.ServerError) as exc:
        # No answer, or a 5xx after the client's retries: the exchange may have carried
        # the request out (a 500 can come after the order was placed), so the outcome is
        # unknown and a superseded placement must be looked up and cancelled.
        raise GatewayTimeoutError(str(exc)) from exc
    except (rest_errors.NotCancelableError, rest_errors.OrderNotFoundError) as exc:
        if cancel:
            raise StopAlreadyGoneError(str(exc)) from exc
        raise StopGatewayError(str(exc)) from exc
    except rest_errors.DuplicateClientOidError as exc:
        raise DuplicateClientOidError(str(exc)) from exc
    except rest_errors.KucoinError as exc:
        raise StopGatewayError(str(exc)) from exc
