"""The exchange side of protective stops: the ``StopGateway`` protocol and its records.

Owns what the stop coordinator and the reconciler exchange with a venue, independent of the
transport: the ``StopGateway`` protocol, the wire-side records (``StopRequest``,
``ExchangeStop``, ``ExchangePosition``), the gateway errors, the field checks they share, and
the clientOid prefix that marks a stop as liveopt's (``is_liveopt_stop``).
``docs/exchange/stops.md`` is the specification.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Protocol

import msgspec

from liveopt.exchange.client_oid import is_valid_client_oid

__all__ = [
    "SIDES",
    "STOP_CLIENT_OID_PREFIX",
    "STOP_DIRECTIONS",
    "STOP_PRICE_TYPES",
    "DuplicateClientOidError",
    "ExchangePosition",
    "ExchangeStop",
    "GatewayRateLimitedError",
    "GatewayTimeoutError",
    "StopAlreadyGoneError",
    "StopGateway",
    "StopGatewayError",
    "StopRequest",
    "is_liveopt_stop",
]

#: Every stop liveopt places has a clientOid starting with this (``client_oid("stop", ...)``).
STOP_CLIENT_OID_PREFIX = "stop-"
SIDES = ("buy", "sell")
STOP_DIRECTIONS = ("down", "up")
STOP_PRICE_TYPES = ("MP", "TP", "IP")


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
    """No answer in time, or a server error: the request may or may not have taken
    effect."""


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
