"""The live slots' quiet band (``variant_pass._set_quiet_band``).

The fast passes skip the exact marks of a slot whose span stays strictly inside its quiet
band, and only move its equity. That is exact only if no price inside the band is a
trigger, a new equity peak, a new worst drawdown or an equity below the safety floor, as
the exact tests compute them (``_slot_holds``, ``_mark``, ``_deepen``, ``_hold``): checked
here on accounts from tiny to huge positions, at prices across the band and at the
closest prices to its edges, where the band's margin is all that keeps rounding out.
"""

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from liveopt._core import variant_pass as vp

CAPITAL = 10_000.0


def _band(side, base, slope, peak, worst, low, high, active, floor, max_drawdown):
    slot_f = np.zeros((vp.N_SLOT_F, 1))
    slot_i = np.zeros((vp.N_SLOT_I, 1), dtype=np.int64)
    slot_f[vp.SL_BASE, 0], slot_f[vp.SL_SLOPE, 0] = base, slope
    slot_f[vp.SL_PEAK, 0], slot_f[vp.SL_WORST, 0] = peak, worst
    slot_f[vp.SL_LOW, 0], slot_f[vp.SL_HIGH, 0] = low, high
    slot_i[vp.SLI_SIDE, 0], slot_i[vp.SLI_ACTIVE, 0] = side, int(active)
    engine_settings = np.zeros(vp.N_SETTINGS)
    engine_settings[vp.S_EQUITY_FLOOR] = floor
    engine_settings[vp.S_MAX_DRAWDOWN] = max_drawdown
    vp._set_quiet_band(slot_f, slot_i, 0, engine_settings)
    return slot_f[vp.SL_QUIET_LOW, 0], slot_f[vp.SL_QUIET_HIGH, 0]


def log_uniform(low: float, high: float):
    return st.floats(math.log(low), math.log(high)).map(math.exp)


@st.composite
def accounts(draw):
    """A slot as _load_slot builds it, after some trading: cash near the capital, a
    position from 1e-6 to 100 times the capital in notional, any entry price, marks from
    an earlier equity path, triggers around the entry (or none), limits on or off."""
    side = draw(st.sampled_from([1, -1]))
    entry = draw(log_uniform(1e-4, 1e6))
    notional = CAPITAL * draw(log_uniform(1e-6, 100.0))
    cash = CAPITAL * draw(st.floats(0.2, 3.0))
    units = notional / entry  # lots x multiplier
    base, slope = cash - side * units * entry, side * units
    peak = cash * draw(st.floats(0.5, 2.0))
    worst = draw(st.floats(0.0, 0.99))
    stop, target = (entry * (1.0 - side * draw(st.floats(0.0, 0.9))),
                    entry * (1.0 + side * draw(st.floats(0.0, 5.0))))
    low, high = (stop, target) if side > 0 else (target, stop)
    if draw(st.booleans()):
        low, high = -math.inf, math.inf  # no trigger on either side (a test of the marks)
    active = draw(st.booleans())
    floor = CAPITAL * draw(st.floats(0.0, 1.5)) if draw(st.booleans()) else -math.inf
    max_drawdown = draw(st.floats(0.0, 1.0)) if draw(st.booleans()) else math.inf
    return side, base, slope, peak, worst, low, high, active, floor, max_drawdown


def _prices_inside(low, high, fractions):
    """The closest prices to both edges, and prices across the band."""
    inside = [math.nextafter(low, math.inf), math.nextafter(high, -math.inf)]
    if math.isfinite(low) and math.isfinite(high):
        inside += [low + f * (high - low) for f in fractions]
    return [p for p in inside if low < p < high and 0.0 < p < math.inf]


@settings(max_examples=400, deadline=None)
@given(account=accounts(), fractions=st.lists(st.floats(0.0, 1.0), max_size=8))
def test_no_price_inside_the_quiet_band_moves_a_mark_or_reaches_a_trigger_or_limit(
        account, fractions):
    _, base, slope, peak, worst, low, high, active, floor, max_drawdown = account
    quiet_low, quiet_high = _band(*account)
    assert quiet_low >= low and quiet_high <= high  # the triggers are outside it
    for price in _prices_inside(quiet_low, quiet_high, fractions):
        equity = base + slope * price  # as the fast passes compute it
        assert low < price < high
        assert vp._mark(peak, worst, equity) == (peak, worst)
        if active:
            assert equity >= floor
            assert worst <= max_drawdown


def test_the_band_is_empty_without_a_side_or_past_the_drawdown_limit():
    long = (1, 9_000.0, 0.01, CAPITAL, 0.05, 80_000.0, 120_000.0)
    low, high = _band(*long, True, -math.inf, 0.10)
    assert low < high
    low, high = _band(0, *long[1:], True, -math.inf, 0.10)
    assert not low < high
    low, high = _band(*long, True, -math.inf, 0.04)  # worst 5 % > the 4 % limit
    assert not low < high
    low, high = _band(*long, False, -math.inf, 0.04)  # a stopped variant has no limits
    assert low < high


def test_a_long_band_runs_from_the_worst_drawdown_price_to_the_peak_price():
    # Equity = 9,000 + 0.01 x price: the peak 10,000 is at 100,000, the worst drawdown
    # 5 % (equity 9,500) at 50,000; the triggers are wider than both.
    low, high = _band(1, 9_000.0, 0.01, CAPITAL, 0.05, 20_000.0, 200_000.0, True,
                      -math.inf, math.inf)
    assert 50_000.0 < low < 50_000.0 * (1 + 1e-6)
    assert 100_000.0 * (1 - 1e-6) < high < 100_000.0
    # The safety floor, when higher than the worst drawdown's equity, raises the low edge.
    low, _ = _band(1, 9_000.0, 0.01, CAPITAL, 0.05, 20_000.0, 200_000.0, True, 9_700.0,
                   math.inf)
    assert 70_000.0 < low < 70_000.0 * (1 + 1e-6)
