"""Orders of the simulated account: the error reply, the order record and body validation.

Owns :class:`SimError` (a KuCoin error code with its message and HTTP status), the
:class:`Order` record the exchange keeps for every order and stop, and
:func:`validate_order`, which turns a ``POST /api/v1/orders`` body into an :class:`Order`
or refuses it with the code KuCoin would give (400100 bad parameter, 300018 repeated
clientOid, 330005 margin mode, 300009 nothing to close, 300011 above maxPrice, 300016
above maxLeverage). The margin check (300003) needs the account and is made by the
exchange after this validation.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Container
from dataclasses import dataclass
from typing import Any

from liveopt.sim.book import Side
from liveopt.sim.contracts import ContractSpec
from liveopt.sim.state import SymbolState

__all__ = [
    "USER_ORDER_ID_BASE",
    "Order",
    "SimError",
    "param_error",
    "validate_order",
]

_CLIENT_OID_RE = re.compile(r"[A-Za-z0-9_-]{1,40}")
# Ids look like KuCoin's numeric ids; the account's orders and the other traders' orders
# draw from separate ranges so they never collide (see matching.MARKET_ORDER_ID_BASE).
USER_ORDER_ID_BASE = 500_000_000_000_000_000


class SimError(Exception):
    """An error reply of the simulated exchange.

    Parameters
    ----------
    code : str
        KuCoin error code, e.g. ``"300018"``.
    message : str
        Human-readable message (``msg`` of the reply); names the offending field.
    http_status : int
        HTTP status the server should use (KuCoin often says 200 with an error code).
    """

    def __init__(self, code: str, message: str, http_status: int = 200) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.http_status = http_status


def param_error(message: str) -> SimError:
    """A 400100 (bad parameter) error naming the offending field."""
    return SimError("400100", message, 400)


@dataclass(slots=True)
class Order:
    """An order (or stop order) of the account, from placement to done."""

    id: str
    client_oid: str
    symbol: str
    side: Side
    type: str
    price_ticks: int | None
    size: int
    leverage: int
    time_in_force: str
    post_only: bool
    reduce_only: bool
    close_order: bool
    stop: str
    stop_price_ticks: int | None
    stop_price_type: str
    remark: str | None
    created_ns: int
    updated_ns: int
    priority: int
    margin_lots: int = 0  # lots of the order that open exposure and so freeze margin
    filled: int = 0
    filled_value: float = 0.0
    stop_triggered: bool = False
    status: str = "open"
    resting: int = 0  # lots currently in the book
    cancelled: bool = False
    end_ns: int | None = None

    @property
    def remaining(self) -> int:
        return self.size - self.filled

    @property
    def is_untriggered_stop(self) -> bool:
        return bool(self.stop) and not self.stop_triggered and self.status == "open"


def validate_order(
    body: dict[str, Any],
    now_ns: int,
    *,
    lookup: Callable[[str], SymbolState],
    taken_client_oids: Container[str],
    order_number: int,
    priority: int,
) -> tuple[Order, SymbolState]:
    """Check an order body and build its :class:`Order`; raise :class:`SimError`.

    Parameters
    ----------
    body : dict
        The request body.
    now_ns : int
        Placement time.
    lookup : callable
        Symbol -> its state; raises :class:`SimError` for an unknown symbol.
    taken_client_oids : container of str
        clientOids already used by the account.
    order_number : int
        The order's number; its id is ``USER_ORDER_ID_BASE + order_number``.
    priority : int
        The order's time priority.

    Returns
    -------
    (Order, SymbolState)
        The order (not yet placed) and the state of its symbol.
    """
    if not isinstance(body, dict):
        raise param_error("body: must be a JSON object")
    client_oid = body.get("clientOid")
    if not isinstance(client_oid, str) or not _CLIENT_OID_RE.fullmatch(client_oid):
        raise param_error(
            "clientOid: required, 1-40 letters, digits, '_' or '-'")
    symbol = body.get("symbol")
    if not isinstance(symbol, str) or not symbol:
        raise param_error("symbol: required")
    state = lookup(symbol)
    spec = state.spec
    if client_oid in taken_client_oids:
        raise SimError("300018", f"clientOid: {client_oid!r} repeated")
    close_order = _bool_field(body, "closeOrder")
    reduce_only = _bool_field(body, "reduceOnly")
    post_only = _bool_field(body, "postOnly")
    for name in ("hidden", "iceberg", "forceHold"):
        _bool_field(body, name)
    margin_mode = body.get("marginMode", "ISOLATED")
    if margin_mode not in ("ISOLATED", "CROSS"):
        raise param_error(f"marginMode: must be ISOLATED or CROSS, got {margin_mode!r}")
    if margin_mode == "CROSS":
        raise SimError(
            "330005", f"marginMode: {symbol} is in ISOLATED mode, the order says CROSS")
    order_type = body.get("type", "limit")
    if order_type not in ("limit", "market"):
        raise param_error(f"type: must be limit or market, got {order_type!r}")
    tif = body.get("timeInForce", "GTC")
    if tif not in ("GTC", "IOC"):
        raise param_error(f"timeInForce: must be GTC or IOC, got {tif!r}")
    if post_only and (order_type == "market" or tif == "IOC"):
        raise param_error("postOnly: not allowed with a market or IOC order")
    remark = body.get("remark")
    if remark is not None and (not isinstance(remark, str) or len(remark) > 100):
        raise param_error("remark: must be a string of at most 100 characters")
    stop = body.get("stop") or ""
    stop_price_ticks: int | None = None
    stop_price_type = ""
    if stop:
        if stop not in ("up", "down"):
            raise param_error(f"stop: must be up or down, got {stop!r}")
        stop_price_type = body.get("stopPriceType") or ""
        if stop_price_type not in ("TP", "MP", "IP"):
            raise param_error("stopPriceType: required with stop, one of TP, MP, IP")
        if body.get("stopPrice") in (None, ""):
            raise param_error("stopPrice: required with stop")
        stop_price_ticks = _price_field(state, body, "stopPrice")
    price_ticks: int | None = None
    if order_type == "limit":
        if body.get("price") in (None, ""):
            raise param_error("price: required for a limit order")
        price_ticks = _price_field(state, body, "price")
    side = body.get("side")
    size: int | None = None
    leverage: int | None = None
    position = state.position
    if close_order:
        reduce_only = True
        if not stop and position.qty == 0:
            raise SimError("300009", f"closeOrder: no position in {symbol} to close")
        if position.qty != 0:
            side = "sell" if position.qty > 0 else "buy"
            size = abs(position.qty)
        elif side not in ("buy", "sell"):
            side = "sell"  # a closeOrder stop without a position is sided when it fires
        leverage = position.leverage if position.qty != 0 else 1
    if side not in ("buy", "sell"):
        raise param_error(f"side: must be buy or sell, got {side!r}")
    if not close_order or "size" in body:
        if "size" not in body and ("qty" in body or "valueQty" in body):
            raise param_error("size: the simulator takes size in lots (qty and valueQty "
                              "are not supported)")
        size_value = body.get("size")
        if isinstance(size_value, str) and size_value.isdigit():
            size_value = int(size_value)
        if not isinstance(size_value, int) or isinstance(size_value, bool) or (
                size_value <= 0):
            raise param_error(f"size: must be a positive integer of lots, got "
                              f"{body.get('size')!r}")
        if size_value % spec.lot_size:
            raise param_error(f"size: must be a multiple of lotSize {spec.lot_size}")
        if size_value > spec.max_order_qty:
            raise param_error(f"size: above maxOrderQty {spec.max_order_qty}")
        if not close_order:
            size = size_value
    if size is None:
        size = 0  # a closeOrder stop without a position; sized when it triggers
    if not close_order:
        leverage = _leverage_field(body, spec)
    assert leverage is not None
    order = Order(
        id=str(USER_ORDER_ID_BASE + order_number), client_oid=client_oid,
        symbol=symbol, side=side, type=order_type, price_ticks=price_ticks, size=size,
        leverage=leverage, time_in_force=tif, post_only=post_only,
        reduce_only=reduce_only, close_order=close_order, stop=stop,
        stop_price_ticks=stop_price_ticks, stop_price_type=stop_price_type,
        remark=remark, created_ns=now_ns, updated_ns=now_ns, priority=priority,
    )
    return order, state


def _price_field(state: SymbolState, body: dict[str, Any], name: str) -> int:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise param_error(f"{name}: must be a decimal string, got {value!r}")
    ticks = state.grid.exact_ticks(value)
    if ticks is None:
        raise param_error(
            f"{name}: {value!r} is not a multiple of tickSize {state.spec.tick_size}")
    if ticks <= 0:
        raise param_error(f"{name}: must be > 0, got {value!r}")
    if state.grid.to_float(ticks) > state.spec.max_price:
        raise SimError("300011", f"{name}: {value!r} above maxPrice {state.spec.max_price}")
    return ticks


def _bool_field(body: dict[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise param_error(f"{name}: must be true or false, got {value!r}")
    return value


def _leverage_field(body: dict[str, Any], spec: ContractSpec) -> int:
    value = body.get("leverage")
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise param_error(f"leverage: not a number: {body.get('leverage')!r}") from None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise param_error(f"leverage: required, a positive integer, got {body.get('leverage')!r}")
    if value < 1:
        raise param_error(f"leverage: must be >= 1, got {value!r}")
    if value > spec.max_leverage:
        raise SimError(
            "300016", f"leverage: {value} above maxLeverage {spec.max_leverage} of {spec.symbol}")
    return value
