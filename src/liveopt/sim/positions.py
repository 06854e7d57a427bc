"""Position, margin and liquidation arithmetic of the simulated account (isolated margin).

Owns the numbers: the mark price, position and maintenance margin, unrealised PnL, the
liquidation and bankruptcy prices, the margin an order freezes and needs, and the
average-entry accounting of a fill into a position. Pure functions of the records in
:mod:`liveopt.sim.state` and :mod:`liveopt.sim.orders`; only :func:`apply_to_position`
and :func:`margin_check` change anything (the position, the order's ``margin_lots``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from liveopt.sim.book import Side
from liveopt.sim.orders import Order
from liveopt.sim.state import SymbolState

__all__ = [
    "apply_to_position",
    "bankrupt_price",
    "liquidation_price",
    "maint_margin",
    "margin_check",
    "mark",
    "order_margin",
    "position_margin",
    "total_position_margin",
    "unrealised",
]


def mark(state: SymbolState) -> float:
    """The mark price of a symbol."""
    # Mark price = mid of the other traders' best bid and ask; the last trade when a
    # side is empty; the contract's start price before anything happened.
    bid = state.book.best_market_price("buy")
    ask = state.book.best_market_price("sell")
    if bid is not None and ask is not None:
        return state.grid.to_float(bid + ask) / 2.0
    if state.last_price_ticks is not None:
        return state.grid.to_float(state.last_price_ticks)
    return state.spec.start_price


def position_margin(state: SymbolState) -> float:
    """Margin held by the position: cost at entry over its leverage."""
    pos = state.position
    return abs(pos.qty) * pos.entry * state.spec.multiplier / pos.leverage


def total_position_margin(states: Mapping[str, SymbolState]) -> float:
    """Position margin of all symbols."""
    return sum(position_margin(st) for st in states.values())


def maint_margin(state: SymbolState) -> float:
    """Maintenance margin of the position."""
    pos = state.position
    return abs(pos.qty) * pos.entry * state.spec.multiplier * state.spec.maintain_margin


def unrealised(state: SymbolState) -> float:
    """Unrealised PnL of the position at the mark price."""
    pos = state.position
    if pos.qty == 0:
        return 0.0
    return (mark(state) - pos.entry) * pos.qty * state.spec.multiplier


def liquidation_price(state: SymbolState) -> float:
    """Isolated liquidation price of the position (0 when flat)."""
    pos = state.position
    if pos.qty == 0:
        return 0.0
    mmr = state.spec.maintain_margin
    if pos.qty > 0:
        return pos.entry * (1.0 - 1.0 / pos.leverage + mmr)
    return pos.entry * (1.0 + 1.0 / pos.leverage - mmr)


def bankrupt_price(state: SymbolState) -> float:
    """Price at which the position margin is gone (0 when flat)."""
    pos = state.position
    if pos.qty > 0:
        return pos.entry * (1.0 - 1.0 / pos.leverage)
    if pos.qty < 0:
        return pos.entry * (1.0 + 1.0 / pos.leverage)
    return 0.0


def opening_lots(state: SymbolState, order: Order) -> int:
    """Lots of the order that open exposure (beyond closing the opposite position)."""
    qty = state.position.qty
    direction = 1 if order.side == "buy" else -1
    if qty * direction < 0:
        return max(0, order.size - abs(qty))
    return order.size


def margin_per_lot(state: SymbolState, order: Order) -> float:
    """Margin one opening lot of the order needs (at its price, or the best opposite
    price / mark for a market order)."""
    if order.price_ticks is not None:
        price = state.grid.to_float(order.price_ticks)
    else:
        opposite: Side = "sell" if order.side == "buy" else "buy"
        best = state.book.best_market_price(opposite)
        price = state.grid.to_float(best) if best is not None else mark(state)
    return price * state.spec.multiplier / order.leverage


def order_margin(open_orders: Iterable[Order], states: Mapping[str, SymbolState]) -> float:
    """Margin frozen by the opening part of the resting limit orders."""
    total = 0.0
    for order in open_orders:
        if order.resting and order.margin_lots and order.price_ticks is not None:
            state = states[order.symbol]
            lots = min(order.remaining, order.margin_lots)
            total += lots * state.grid.to_float(order.price_ticks) * (
                state.spec.multiplier / order.leverage)
    return total


def margin_check(
    state: SymbolState,
    order: Order,
    wallet: float,
    states: Mapping[str, SymbolState],
    open_orders: Iterable[Order],
) -> tuple[float, float]:
    """Margin the order's opening part needs, and what the account has available; sets
    the order's ``margin_lots`` (the lots that open exposure)."""
    order.margin_lots = opening_lots(state, order)
    required = order.margin_lots * margin_per_lot(state, order)
    available = wallet - total_position_margin(states) - order_margin(open_orders, states)
    return required, available


def apply_to_position(state: SymbolState, side: str, price: float, size: int,
                      leverage: int, ts_ns: int) -> float:
    """Apply a fill to the symbol's position; return the gross PnL realised."""
    # Average-entry accounting; returns the gross PnL realised by the closing part.
    pos = state.position
    direction = 1 if side == "buy" else -1
    multiplier = state.spec.multiplier
    realised = 0.0
    remaining = size
    if pos.qty * direction < 0:
        closing = min(remaining, abs(pos.qty))
        realised = (price - pos.entry) * closing * multiplier * (1 if pos.qty > 0 else -1)
        pos.qty += closing * direction
        pos.realised_gross += realised
        remaining -= closing
        if pos.qty == 0:
            pos.entry = 0.0
    if remaining > 0:
        if pos.qty == 0:
            pos.entry = price
            pos.leverage = leverage
            pos.opening_ns = ts_ns
            pos.realised_gross = 0.0
            pos.fees = 0.0
        else:
            old = abs(pos.qty)
            pos.entry = (pos.entry * old + price * remaining) / (old + remaining)
        pos.qty += remaining * direction
    return realised
