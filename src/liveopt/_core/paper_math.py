"""Scalar trade math for paper positions on a linear (USDT-margined) perpetual contract.

Pure functions of floats, compiled with Numba so the variant pass can inline them. Sides are
``+1`` (long) and ``-1`` (short); ROI is in percent of the position's margin; fee rates are
fractions (0.0006 is 0.06 %). Every formula here corrects a defect of the origin system
(origin-system.md C.7) or keeps one of its right formulas (B.3.5):

- fees are a *price* move: the break-even price covers the entry fee and the exit fee on
  the exit's own notional, and is not multiplied by leverage (only the break-even *ROI*
  scales with leverage, because ROI is measured on margin);
- the isolated liquidation price includes the maintenance margin on the correct side:
  ``entry * (1 - 1/leverage + mmr)`` for a long, so it sits *inside* the naive
  ``entry * (1 - 1/leverage)``, never beyond it;
- sizes are whole lots, rounded down, so a position never uses more margin than allotted.
"""

import math

from liveopt._core._jit import njit

_SCALAR = "float64(float64, float64, float64, float64)"


@njit("float64(float64, float64, float64, float64, float64, float64)")
def lots_for_margin_nb(capital, size_pct, leverage, price, multiplier, lot_size):
    """Whole lots (a multiple of ``lot_size``) bought with ``size_pct`` % of ``capital`` as
    margin at ``leverage``: ``floor(capital * pct/100 * leverage / (price * multiplier))``,
    rounded down to the lot size. 0 when the margin does not buy one lot. Exact (the
    floor of the exact quotient) for counts below 1e9 lots, far above any real order."""
    contracts = capital * size_pct / 100.0 * leverage / (price * multiplier)
    # The nudge of a few ulps keeps an exact multiple that the float arithmetic lands just
    # below (500 computed as 499.99999999999994) from losing a lot; it can only round up a
    # quotient that is within float precision of the next whole lot anyway.
    return math.floor(contracts / lot_size * (1.0 + 1e-15)) * lot_size


@njit("float64(float64, float64, float64, float64, float64)")
def position_pnl_nb(side, entry, exit_price, lots, multiplier):
    """Gross PnL in quote currency: ``side * (exit - entry) * lots * multiplier``."""
    return side * (exit_price - entry) * lots * multiplier


@njit("float64(float64, float64)")
def roi_pct_nb(pnl, margin):
    """ROI in percent of the margin: ``pnl / margin * 100``."""
    return pnl / margin * 100.0


@njit(_SCALAR)
def price_at_roi_nb(side, entry, roi_pct, leverage):
    """Price at which the position's gross ROI on margin is ``roi_pct`` (negative for a
    stop-loss): ``entry * (1 + side * roi/leverage/100)``. A long with a -0.5 % ROI stop at
    10x from 100 gives 99.95; a +2 % take-profit gives 100.2."""
    return entry * (1.0 + side * roi_pct / leverage / 100.0)


@njit(_SCALAR)
def break_even_price_nb(side, entry, fee_in, fee_out):
    """Exit price at which the net PnL after both fees is zero.

    Long: ``exit * (1 - fee_out) = entry * (1 + fee_in)``; short:
    ``exit * (1 + fee_out) = entry * (1 - fee_in)``. Each fee is charged on its own side's
    notional, so the exit fee uses the exit price, and leverage does not appear: a 0.06 %
    + 0.06 % round trip needs a price move of about 0.12 % at any leverage.
    """
    if side > 0:
        return entry * (1.0 + fee_in) / (1.0 - fee_out)
    return entry * (1.0 - fee_in) / (1.0 + fee_out)


@njit("float64(float64, float64, float64, float64, float64)")
def break_even_roi_pct_nb(side, entry, fee_in, fee_out, leverage):
    """Gross ROI on margin (percent) at the break-even price: the price move of
    :func:`break_even_price_nb` times the leverage. About ``(fee_in + fee_out) * leverage
    * 100``: 1.2 % at 10x with 0.06 % fees each way, the value the origin's trailing stop
    arms at (plus its buffer)."""
    move = side * (break_even_price_nb(side, entry, fee_in, fee_out) - entry) / entry
    return move * leverage * 100.0


@njit(_SCALAR)
def liquidation_price_nb(side, entry, leverage, maint_margin_rate):
    """Isolated-margin liquidation price: the price at which the loss has eaten the initial
    margin down to the maintenance margin, ``entry * (1 - side * (1/leverage - mmr))``.
    A long at 10,000 with 10x and 0.5 % maintenance margin liquidates at 9,050 (the origin
    put it beyond the naive 9,000, at 8,995)."""
    # Grouped as (1 - side/leverage) + side*mmr: at 1x a long's factor is mmr itself, where
    # 1 - (1/leverage - mmr) would cancel catastrophically.
    return entry * ((1.0 - side / leverage) + side * maint_margin_rate)
