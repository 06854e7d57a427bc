"""The indicator bank: deduplication, row layout, and agreement with the batch functions.

The kernels themselves are checked against TA-Lib and their twins elsewhere; these tests
check the bank's own machinery (dedup, rows grouped by kind, ring offsets, timeframes,
masks) by comparing every row with the batch driver on the same candles, bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import liveopt.indicators as li
from liveopt.indicators.batch import run_spec
from tests.conftest import candles


def random_candles(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    spread = np.abs(rng.normal(0.0, 0.5, n))
    return {
        "high": close + spread,
        "low": close - spread,
        "close": close,
        "volume": rng.lognormal(0.0, 1.0, n),
    }


def expected_row(spec: li.IndicatorSpec, data: dict[str, np.ndarray]) -> np.ndarray:
    # The batch driver's last outputs for spec, padded to the bank's 3 columns.
    series = run_spec(spec, data["high"], data["low"], data["close"], data["volume"])
    row = np.full(3, np.nan)
    row[: len(series)] = [s[-1] for s in series]
    return row


def assert_row_equals(bank: li.IndicatorBank, spec: li.IndicatorSpec, expected: np.ndarray):
    actual = bank.values[bank.row(spec)]
    assert np.array_equal(actual, expected, equal_nan=True), (spec.label(), actual, expected)


def test_default_indicators_are_the_twelve_of_the_signal_model():
    kinds = sorted(spec.kind for spec in li.DEFAULT_INDICATORS)
    assert len(set(li.DEFAULT_INDICATORS)) == 12
    assert kinds == sorted(
        ["rsi", "williams_r", "macd", "awesome_oscillator", "ema", "ema", "stochastic",
         "bollinger", "kdj", "obv", "atr", "adx"]
    )


def test_a_spec_built_directly_is_validated_like_one_built_by_indicator():
    with pytest.raises(ValueError, match="period must be an integer >= 1, got 0"):
        li.IndicatorSpec(kind="sma", params=(0.0,))
    with pytest.raises(ValueError, match="expected 3 parameters"):
        li.IndicatorSpec(kind="macd", params=(12.0, 26.0))
    with pytest.raises(ValueError, match="canonical name '5m'"):
        li.IndicatorSpec(kind="rsi", params=(14.0,), timeframe="5min")
    assert li.indicator("rsi", timeframe="5min") == li.IndicatorSpec(
        kind="rsi", params=(14.0,), timeframe="5m"
    )


def test_bank_deduplicates_identical_specs_into_one_row():
    rsi = li.indicator("rsi", period=14)
    bank = li.IndicatorBank([rsi, li.indicator("rsi", period=14), li.indicator("rsi", period=7)])
    assert len(bank) == 2
    assert bank.row(rsi) == bank.row(li.indicator("rsi", period=14))


def test_bank_of_default_indicators_equals_the_batch_functions_on_real_candles():
    data = {k: v[:3000] for k, v in candles("ftx_btcperp_1m").items()}
    bank = li.IndicatorBank(li.DEFAULT_INDICATORS)
    bank.replay("1m", data["high"], data["low"], data["close"], data["volume"])
    for spec in li.DEFAULT_INDICATORS:
        assert_row_equals(bank, spec, expected_row(spec, data))
    assert bank.candles_seen("1m") == 3000


def test_bank_update_one_candle_at_a_time_is_bit_identical_to_replay():
    data = random_candles(500, seed=1)
    replayed = li.IndicatorBank(li.DEFAULT_INDICATORS)
    replayed.replay("1m", data["high"], data["low"], data["close"], data["volume"])
    stepped = li.IndicatorBank(li.DEFAULT_INDICATORS)
    for t in range(500):
        stepped.update("1m", data["high"][t], data["low"][t], data["close"][t], data["volume"][t])
    assert np.array_equal(stepped.values, replayed.values, equal_nan=True)


def test_update_closed_advances_only_the_timeframes_that_closed():
    fast = li.indicator("ema", period=3, timeframe="1m")
    slow = li.indicator("ema", period=3, timeframe="5m")
    bank = li.IndicatorBank([fast, slow])
    closed = np.array([1, 0], dtype=np.uint8)  # timeframes are ordered shortest first
    candle = np.array([[11.0, 99.0], [9.0, 99.0], [10.0, 99.0], [1.0, 1.0]])
    for _ in range(3):
        bank.update_closed(closed, candle)
    assert bank.timeframes == ("1m", "5m")
    assert bank.value(fast) == 10.0
    assert np.isnan(bank.value(slow))
    assert (bank.candles_seen("1m"), bank.candles_seen("5m")) == (3, 0)


def test_value_reads_a_named_output():
    spec = li.indicator("macd", fast=2, slow=3, signal=2)
    bank = li.IndicatorBank([spec])
    closes = np.arange(1.0, 11.0)
    bank.replay("1m", closes, closes, closes, closes)
    line, signal, hist = (s[-1] for s in li.macd(closes, 2, 3, 2))
    assert bank.value(spec) == line
    assert bank.value(spec, "signal") == signal
    assert bank.value(spec, "hist") == hist


def test_bank_rejects_unknown_timeframes_specs_and_empty_spec_lists():
    bank = li.IndicatorBank([li.indicator("sma", period=2)])
    with pytest.raises(ValueError, match="timeframe '5m' is not in this bank"):
        bank.update("5m", 1.0, 1.0, 1.0, 1.0)
    with pytest.raises(KeyError, match=r"sma\(3\)@1m is not in this bank"):
        bank.row(li.indicator("sma", period=3))
    with pytest.raises(ValueError, match="at least one"):
        li.IndicatorBank([])


def test_bank_update_rejects_a_non_finite_value_and_keeps_its_state():
    spec = li.indicator("sma", period=2)
    bank = li.IndicatorBank([spec])
    bank.update("1m", 1.0, 1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="close is not finite: nan"):
        bank.update("1m", 2.0, 2.0, float("nan"), 1.0)
    bank.update("1m", 3.0, 3.0, 3.0, 1.0)
    assert bank.value(spec) == 2.0
    assert bank.candles_seen("1m") == 2


def test_bank_replay_rejects_non_finite_and_mismatched_inputs():
    bank = li.IndicatorBank([li.indicator("sma", period=2)])
    with pytest.raises(ValueError, match=r"close\[1\] is not finite"):
        bank.replay("1m", [1.0, 2.0], [1.0, 2.0], [1.0, np.nan], [1.0, 1.0])
    with pytest.raises(ValueError, match="equal lengths"):
        bank.replay("1m", [1.0, 2.0], [1.0], [1.0, 2.0], [1.0, 1.0])


_SPEC_CHOICES = (
    lambda p, tf: li.indicator("sma", period=p, timeframe=tf),
    lambda p, tf: li.indicator("ema", period=p, timeframe=tf),
    lambda p, tf: li.indicator("rsi", period=p, timeframe=tf),
    lambda p, tf: li.indicator("macd", fast=p, slow=p + 3, signal=max(1, p - 1), timeframe=tf),
    lambda p, tf: li.indicator("bollinger", period=p, k=1.5, timeframe=tf),
    lambda p, tf: li.indicator("stochastic", k_period=p, k_smooth=2, d_period=3, timeframe=tf),
    lambda p, tf: li.indicator("williams_r", period=p, timeframe=tf),
    lambda p, tf: li.indicator("atr", period=p, timeframe=tf),
    lambda p, tf: li.indicator("adx", period=p, timeframe=tf),
    lambda p, tf: li.indicator("obv", timeframe=tf),
    lambda p, tf: li.indicator("awesome_oscillator", fast=p, slow=p + 4, timeframe=tf),
    lambda p, tf: li.indicator("kdj", n=p, m1=3, m2=2, timeframe=tf),
    lambda p, tf: li.indicator("obv_slope", period=p, timeframe=tf),
)


@settings(max_examples=40, deadline=None)
@given(
    choices=st.lists(
        st.tuples(
            st.integers(0, len(_SPEC_CHOICES) - 1),
            st.integers(1, 12),
            st.sampled_from(["1m", "15m", "4h"]),
        ),
        min_size=1,
        max_size=25,
    ),
    seed=st.integers(0, 2**16),
)
def test_any_mix_of_specs_and_timeframes_gives_each_row_its_batch_value(choices, seed):
    specs = [_SPEC_CHOICES[i](period, tf) for i, period, tf in choices]
    bank = li.IndicatorBank(reversed(specs))
    series = {tf: random_candles(40 + 7 * k, seed + k) for k, tf in enumerate(bank.timeframes)}
    for tf, data in series.items():
        bank.replay(tf, data["high"], data["low"], data["close"], data["volume"])
    for spec in set(specs):
        assert_row_equals(bank, spec, expected_row(spec, series[spec.timeframe]))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_batch_functions_reject_non_finite_input_naming_the_index(bad):
    close = np.array([1.0, 2.0, bad, 4.0])
    with pytest.raises(ValueError, match=r"close\[2\] is not finite"):
        li.rsi(close, 2)
    with pytest.raises(ValueError, match=r"high\[2\] is not finite"):
        li.atr(close, np.ones(4), np.ones(4), 2)


def test_batch_functions_reject_inputs_of_unequal_length_or_rank():
    with pytest.raises(ValueError, match="equal lengths"):
        li.stochastic(np.ones(5), np.ones(4), np.ones(5))
    with pytest.raises(ValueError, match="must be 1-D"):
        li.sma(np.ones((2, 3)), 2)


def test_streaming_update_rejects_non_finite_values():
    rsi = li.RSI(2)
    rsi.update(1.0)
    with pytest.raises(ValueError, match=r"RSI\.update: close is not finite"):
        rsi.update(float("nan"))
    assert rsi.count == 1
