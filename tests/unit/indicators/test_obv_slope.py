"""OBV slope: the net signed share of a window's volume, in [-1, 1]."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import liveopt.indicators as li
from tests.conftest import candles
from tests.reference import indicators as ref


@pytest.mark.parametrize("period", [1, 5, 14, 50])
def test_obv_slope_equals_its_exact_twin_on_real_candles(period):
    data = candles("ftx_btcperp_1m")
    close, volume = data["close"][:5000], data["volume"][:5000]
    ours = li.obv_slope(close, volume, period)
    twin = np.array(ref.obv_slope(close.tolist(), volume.tolist(), period))
    assert np.array_equal(np.isnan(ours), np.isnan(twin))
    assert int(np.argmax(~np.isnan(ours))) == period
    np.testing.assert_allclose(ours[period:], twin[period:], rtol=1e-12, atol=1e-15)


def test_obv_slope_streaming_is_bit_identical_to_batch():
    data = candles("ftx_btcperp_1m")
    close, volume = data["close"][:3000], data["volume"][:3000]
    stream = li.OBVSlope(14)
    streamed = np.array([stream.update(c, v) for c, v in zip(close, volume, strict=True)])
    assert np.array_equal(streamed, li.obv_slope(close, volume, 14), equal_nan=True)


def test_obv_slope_is_plus_one_on_rising_closes_minus_one_on_falling_and_zero_when_flat():
    volume = np.full(30, 3.0)
    assert np.all(li.obv_slope(np.arange(1.0, 31.0), volume, 5)[5:] == 1.0)
    assert np.all(li.obv_slope(np.arange(30.0, 0.0, -1.0), volume, 5)[5:] == -1.0)
    assert np.all(li.obv_slope(np.full(30, 7.0), volume, 5)[5:] == 0.0)


def test_obv_slope_of_a_window_without_volume_is_zero():
    assert np.all(li.obv_slope(np.arange(1.0, 21.0), np.zeros(20), 4)[4:] == 0.0)


def test_obv_slope_rejects_a_zero_period():
    with pytest.raises(ValueError, match="period must be an integer >= 1, got 0"):
        li.obv_slope(np.ones(5), np.ones(5), 0)


@settings(max_examples=100, deadline=None)
@given(
    close=hnp.arrays(np.float64, st.integers(0, 200), elements=st.floats(1.0, 1e5)),
    period=st.integers(1, 30),
    seed=st.integers(0, 2**16),
)
def test_obv_slope_stays_between_minus_one_and_one(close, period, seed):
    volume = np.random.default_rng(seed).lognormal(0.0, 2.0, len(close))
    values = li.obv_slope(close, volume, period)
    valid = values[~np.isnan(values)]
    assert np.all((valid >= -1.0) & (valid <= 1.0))
    assert len(valid) == max(0, len(close) - period)
