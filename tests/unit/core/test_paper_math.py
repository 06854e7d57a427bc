"""Trade math for paper positions: the origin's right values, exact twins, properties."""

from __future__ import annotations

import math

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from liveopt._core import paper_math as pm
from tests.reference import paper_math as ref

prices = st.floats(1e-4, 1e6, allow_nan=False, allow_infinity=False)
leverages = st.integers(1, 100).map(float)
fees = st.floats(0.0, 0.005)
sides = st.sampled_from([1.0, -1.0])


# ----------------------------------------------------------------- origin regression values


def test_half_percent_of_ten_thousand_at_10x_buys_500_of_notional():
    # Origin tradeMath test: balance 10000, 0.5 % -> margin 50 -> notional 500.
    assert pm.lots_for_margin_nb(10_000.0, 0.5, 10.0, 100.0, 1.0, 1.0) == 5.0
    assert pm.lots_for_margin_nb(10_000.0, 0.5, 10.0, 1.0, 1.0, 1.0) == 500.0


def test_roi_is_pnl_over_margin_in_percent():
    assert pm.roi_pct_nb(4.0, 50.0) == 8.0


def test_stop_and_target_prices_from_roi_match_the_origin_values():
    assert pm.price_at_roi_nb(1.0, 100.0, -0.5, 10.0) == pytest.approx(99.95, abs=1e-12)
    assert pm.price_at_roi_nb(1.0, 100.0, 2.0, 10.0) == pytest.approx(100.2, abs=1e-12)
    assert pm.price_at_roi_nb(-1.0, 100.0, -0.5, 10.0) == pytest.approx(100.05, abs=1e-12)


def test_long_liquidation_at_10x_with_half_percent_maintenance_is_9050_not_8995():
    assert pm.liquidation_price_nb(1.0, 10_000.0, 10.0, 0.005) == pytest.approx(9050.0)
    assert pm.liquidation_price_nb(-1.0, 10_000.0, 10.0, 0.005) == pytest.approx(10_950.0)


def test_break_even_roi_at_10x_with_taker_fees_both_ways_is_about_1_2_percent():
    # The origin's trailing stop arms at (0.0006 + 0.0006) * 10 * 100 + 0.1 buffer = 1.3.
    roi = pm.break_even_roi_pct_nb(1.0, 100.0, 0.0006, 0.0006, 10.0)
    assert roi == pytest.approx(1.2, rel=1e-3)
    assert roi + 0.1 == pytest.approx(1.3, rel=1e-3)


def test_break_even_price_move_is_not_multiplied_by_leverage():
    # Origin defect C.7: ~1.24 % at 10x instead of ~0.12 %.
    move = pm.break_even_price_nb(1.0, 100.0, 0.0006, 0.0006) / 100.0 - 1.0
    assert 0.0012 < move < 0.00121


# ------------------------------------------------------------------------- exact twins


@settings(max_examples=300, deadline=None)
@given(
    capital=st.floats(10.0, 1e7),
    size_pct=st.floats(0.01, 100.0),
    leverage=leverages,
    price=prices,
    multiplier=st.sampled_from([0.001, 0.01, 1.0, 10.0]),
    lot_size=st.sampled_from([1.0, 10.0, 0.1]),
)
def test_lots_equal_the_exact_decimal_floor_and_never_exceed_the_margin(
    capital, size_pct, leverage, price, multiplier, lot_size
):
    lots = pm.lots_for_margin_nb(capital, size_pct, leverage, price, multiplier, lot_size)
    exact = ref.lot_count(capital, size_pct, leverage, price, multiplier, lot_size)
    assume(exact < 10**9)  # the documented range; beyond it float spacing nears one lot
    # Compare whole lot counts (k * 0.1 is not exact in binary). The float computation may
    # round differently only where the exact count is within float precision (1e-14
    # relative) of a whole number.
    count = lots / lot_size
    assert math.isclose(count, round(count), abs_tol=1e-6)
    floor = int(exact.to_integral_value(rounding="ROUND_FLOOR"))
    near_boundary = abs(float(exact) - round(float(exact))) <= 1e-14 * float(exact)
    assert round(count) == floor or (near_boundary and abs(round(count) - floor) == 1)
    budget = capital * size_pct / 100.0 * leverage
    assert lots * price * multiplier <= budget * (1.0 + 1e-9)


@settings(max_examples=300, deadline=None)
@given(side=sides, entry=prices, fee_in=fees, fee_out=fees)
def test_break_even_price_equals_its_exact_twin_and_nets_zero(side, entry, fee_in, fee_out):
    price = pm.break_even_price_nb(side, entry, fee_in, fee_out)
    assert price == pytest.approx(ref.break_even_price(side, entry, fee_in, fee_out), rel=1e-14)
    net = ref.net_pnl(side, entry, price, 1.0, 1.0, fee_in, fee_out)
    assert abs(float(net)) <= 1e-12 * entry


@settings(max_examples=300, deadline=None)
@given(side=sides, entry=prices, leverage=leverages, mmr=st.floats(0.0, 0.009))
def test_liquidation_leaves_exactly_the_maintenance_margin(side, entry, leverage, mmr):
    price = pm.liquidation_price_nb(side, entry, leverage, mmr)
    assert price == pytest.approx(ref.liquidation_price(side, entry, leverage, mmr), rel=1e-13)
    loss_fraction = side * (entry - price) / entry  # loss per unit of notional
    assert loss_fraction == pytest.approx(1.0 / leverage - mmr, rel=1e-9, abs=1e-15)


# --------------------------------------------------------------------------- properties


@given(side=sides, entry=prices, roi=st.floats(0.01, 99.0), leverage=leverages)
def test_stop_loss_is_on_the_losing_side_and_take_profit_on_the_winning_side(
    side, entry, roi, leverage
):
    stop = pm.price_at_roi_nb(side, entry, -roi, leverage)
    target = pm.price_at_roi_nb(side, entry, roi, leverage)
    assert side * (stop - entry) < 0 < side * (target - entry)


@given(side=sides, entry=prices, leverage=leverages, mmr=st.floats(0.0, 0.009))
def test_liquidation_is_inside_the_naive_price_and_on_the_losing_side(
    side, entry, leverage, mmr
):
    price = pm.liquidation_price_nb(side, entry, leverage, mmr)
    naive = entry * (1.0 - side / leverage)
    assert side * (price - naive) >= -1e-12 * entry
    assert side * (price - entry) <= 0.0


@given(side=sides, entry=prices, roi=st.floats(0.01, 50.0), leverage=st.integers(1, 20))
def test_a_stop_loss_short_of_the_margin_is_hit_before_liquidation(side, entry, roi, leverage):
    mmr = 0.005
    # A stop at -roi % of margin triggers before liquidation when it keeps more than the
    # maintenance margin: roi < (1 - mmr * leverage) * 100.
    if roi >= (1.0 - mmr * leverage) * 100.0:
        return
    stop = pm.price_at_roi_nb(side, entry, -roi, float(leverage))
    liquidation = pm.liquidation_price_nb(side, entry, float(leverage), mmr)
    assert side * (stop - liquidation) > 0


@given(side=sides, fee_in=fees, fee_out=fees, low=st.integers(1, 50), extra=st.integers(1, 50))
def test_break_even_roi_grows_with_leverage(side, fee_in, fee_out, low, extra):
    a = pm.break_even_roi_pct_nb(side, 100.0, fee_in, fee_out, float(low))
    b = pm.break_even_roi_pct_nb(side, 100.0, fee_in, fee_out, float(low + extra))
    assert b >= a >= 0.0
    if fee_in + fee_out > 1e-9:
        assert b > a


@given(side=sides, entry=prices, exit_price=prices, lots=st.integers(0, 1000).map(float))
def test_pnl_sign_follows_the_side_and_the_price_move(side, entry, exit_price, lots):
    pnl = pm.position_pnl_nb(side, entry, exit_price, lots, 0.001)
    if lots == 0 or exit_price == entry:
        assert pnl == 0.0
    else:
        assert math.copysign(1.0, pnl) == side * math.copysign(1.0, exit_price - entry)
