"""Slow exact twins of ``liveopt._core.paper_math``, in decimal arithmetic (40 digits)."""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal, localcontext


def _d(x: float) -> Decimal:
    return Decimal(repr(x))


def lot_count(capital, size_pct, leverage, price, multiplier, lot_size) -> Decimal:
    """The exact, unrounded number of lots the margin buys."""
    with localcontext() as ctx:
        ctx.prec = 40
        margin = _d(capital) * _d(size_pct) / 100
        contracts = margin * _d(leverage) / (_d(price) * _d(multiplier))
        return contracts / _d(lot_size)


def lots_for_margin(capital, size_pct, leverage, price, multiplier, lot_size) -> float:
    count = lot_count(capital, size_pct, leverage, price, multiplier, lot_size)
    return float(count.to_integral_value(rounding=ROUND_FLOOR) * _d(lot_size))


def break_even_price(side, entry, fee_in, fee_out) -> float:
    with localcontext() as ctx:
        ctx.prec = 40
        if side > 0:
            return float(_d(entry) * (1 + _d(fee_in)) / (1 - _d(fee_out)))
        return float(_d(entry) * (1 - _d(fee_in)) / (1 + _d(fee_out)))


def net_pnl(side, entry, exit_price, lots, multiplier, fee_in, fee_out) -> Decimal:
    """Net PnL with each fee on its own side's notional, exactly."""
    with localcontext() as ctx:
        ctx.prec = 40
        qty = _d(lots) * _d(multiplier)
        gross = _d(side) * (_d(exit_price) - _d(entry)) * qty
        fees = _d(entry) * qty * _d(fee_in) + _d(exit_price) * qty * _d(fee_out)
        return gross - fees


def liquidation_price(side, entry, leverage, mmr) -> float:
    with localcontext() as ctx:
        ctx.prec = 40
        return float(_d(entry) * (1 - _d(side) * (1 / _d(leverage) - _d(mmr))))
