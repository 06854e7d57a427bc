"""Properties of liveopt.indicators on generated candles (hypothesis), plus a drift test.

Candles are finite positive prices with low <= open, close <= high, 0..300 bars long. The
generator mixes arbitrary floats with a few repeated grid prices and repeated whole bars, so
ties, flat windows and zero ranges are common.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import liveopt.indicators as li
from tests.unit.indicators.test_reference_twins import (
    DEFAULT_CASES,
    SHORT_CASES,
    Case,
    adx_case,
    kdj_case,
    rsi_case,
    stochastic_case,
    williams_r_case,
)

ALL_CASES = [*SHORT_CASES, *DEFAULT_CASES]

PROPERTY_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --------------------------------------------------------------------------------------------
# Candle strategy
# --------------------------------------------------------------------------------------------

_GRID_PRICES = [99.5, 100.0, 100.25, 101.0]
_price = st.one_of(
    st.sampled_from(_GRID_PRICES),
    st.floats(min_value=1.0, max_value=1e5, allow_nan=False, allow_infinity=False),
)
_up = st.one_of(st.just(0.0), st.floats(min_value=0.0, max_value=100.0))
_down_fraction = st.one_of(st.just(0.0), st.floats(min_value=0.0, max_value=0.5))
_volume = st.one_of(st.just(0.0), st.floats(min_value=0.0, max_value=1e6))
_bar = st.tuples(_price, _price, _up, _down_fraction, _volume)
# A chunk is one bar or one bar repeated (a flat stretch when its range is zero).
_chunk = st.one_of(
    _bar.map(lambda bar: [bar]),
    st.builds(lambda bar, count: [bar] * count, _bar, st.integers(min_value=2, max_value=40)),
)

MAX_BARS = 300


@st.composite
def candle_arrays(draw) -> dict[str, np.ndarray]:
    chunks = draw(st.lists(_chunk, max_size=60))
    bars = [bar for chunk in chunks for bar in chunk][:MAX_BARS]
    n = len(bars)
    open_ = np.empty(n)
    close = np.empty(n)
    high = np.empty(n)
    low = np.empty(n)
    volume = np.empty(n)
    for i, (o, c, up, down_fraction, v) in enumerate(bars):
        top, bottom = max(o, c), min(o, c)
        open_[i], close[i] = o, c
        high[i] = top + up
        low[i] = bottom - down_fraction * bottom
        volume[i] = v
    return {"open": open_, "high": high, "low": low, "close": close, "volume": volume}


# --------------------------------------------------------------------------------------------
# Streaming and batch agree bit for bit
# --------------------------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(data=candle_arrays())
def test_streaming_equals_batch_bit_for_bit_on_any_candles(data):
    for case in ALL_CASES:
        batch = case.run_batch(data)
        streamed = case.run_streaming(data)
        assert len(batch) == len(streamed) == case.n_out, case.id
        for k, (s, b) in enumerate(zip(streamed, batch, strict=True)):
            assert s.shape == b.shape, f"{case.id} output {k}"
            assert np.array_equal(s, b, equal_nan=True), f"{case.id} output {k}"


# --------------------------------------------------------------------------------------------
# Ranges and orderings
# --------------------------------------------------------------------------------------------


def _valid(values: np.ndarray) -> np.ndarray:
    return values[~np.isnan(values)]


def assert_within(values: np.ndarray, lo: float, hi: float, label: str) -> None:
    v = _valid(values)
    bad = (v < lo) | (v > hi)
    assert not bad.any(), f"{label} outside [{lo}, {hi}]: {v[bad][:5].tolist()!r}"


#: Bars whose close sits on the high (bar 0) and on the low (bar 1) of a range whose width w
#: has w / (w / 100) == 100.00000000000001: a ratio computed as ``x / (w / 100)`` leaves
#: [0, 100] by one ulp there, while ``100 * (x / w)`` never does.
EDGE_OF_RANGE_CANDLES = {
    "open": np.array([1000.0, 1000.0]),
    "high": np.array([1835.7651039198697, 1835.7651039198697]),
    "low": np.array([1000.0, 1000.0]),
    "close": np.array([1835.7651039198697, 1000.0]),
    "volume": np.array([0.0, 0.0]),
}

_RSI_CASES = [rsi_case(2), rsi_case(5), rsi_case(14)]
_STOCH_CASES = [
    stochastic_case(1, 1, 1),
    stochastic_case(3, 1, 1),
    stochastic_case(5, 3, 3),
    stochastic_case(),
]
_KDJ_CASES = [kdj_case(1, 1, 1), kdj_case(3, 2, 4), kdj_case()]
_WILLR_CASES = [williams_r_case(1), williams_r_case(3), williams_r_case()]
_ADX_CASES = [adx_case(2), adx_case(5), adx_case()]


@PROPERTY_SETTINGS
@given(data=candle_arrays())
@example(data=EDGE_OF_RANGE_CANDLES)
def test_rsi_stays_between_0_and_100(data):
    for case in _RSI_CASES:
        assert_within(case.run_batch(data)[0], 0.0, 100.0, case.id)


@PROPERTY_SETTINGS
@given(data=candle_arrays())
@example(data=EDGE_OF_RANGE_CANDLES)
def test_stochastic_k_and_d_stay_between_0_and_100(data):
    for case in _STOCH_CASES:
        k, d = case.run_batch(data)
        assert_within(k, 0.0, 100.0, f"{case.id} K")
        assert_within(d, 0.0, 100.0, f"{case.id} D")


@PROPERTY_SETTINGS
@given(data=candle_arrays())
@example(data=EDGE_OF_RANGE_CANDLES)
def test_kdj_k_and_d_stay_between_0_and_100(data):
    for case in _KDJ_CASES:
        k, d, _j = case.run_batch(data)
        assert_within(k, 0.0, 100.0, f"{case.id} K")
        assert_within(d, 0.0, 100.0, f"{case.id} D")


@PROPERTY_SETTINGS
@given(data=candle_arrays())
@example(data=EDGE_OF_RANGE_CANDLES)
def test_williams_r_stays_between_minus_100_and_0(data):
    for case in _WILLR_CASES:
        assert_within(case.run_batch(data)[0], -100.0, 0.0, case.id)


@PROPERTY_SETTINGS
@given(data=candle_arrays())
@example(data=EDGE_OF_RANGE_CANDLES)
def test_adx_stays_between_0_and_100(data):
    for case in _ADX_CASES:
        assert_within(case.run_batch(data)[0], 0.0, 100.0, case.id)


@PROPERTY_SETTINGS
@given(data=candle_arrays(), period=st.integers(min_value=1, max_value=30))
def test_atr_is_never_negative(data, period):
    out = li.atr(data["high"], data["low"], data["close"], period)
    assert np.all(_valid(out) >= 0.0)


@PROPERTY_SETTINGS
@given(
    data=candle_arrays(),
    period=st.integers(min_value=1, max_value=40),
    k=st.floats(min_value=0.0, max_value=4.0),
)
def test_bollinger_lower_never_exceeds_middle_and_middle_never_exceeds_upper(data, period, k):
    upper, middle, lower = li.bollinger(data["close"], period=period, k=k)
    valid = ~np.isnan(middle)
    assert np.array_equal(valid, ~np.isnan(upper)) and np.array_equal(valid, ~np.isnan(lower))
    assert np.all(lower[valid] <= middle[valid])
    assert np.all(middle[valid] <= upper[valid])


# --------------------------------------------------------------------------------------------
# Constant input
# --------------------------------------------------------------------------------------------


def _after_warmup(case: Case, outputs: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
    for k, out in enumerate(outputs):
        assert np.all(np.isnan(out[: case.warmup])), f"{case.id} output {k} in warm-up"
        assert not np.isnan(out[case.warmup :]).any(), f"{case.id} output {k} after warm-up"
    return tuple(out[case.warmup :] for out in outputs)


_LEVELS = st.one_of(
    st.sampled_from([1.0, 0.1, 46_000.0, 106_038.2]),
    st.floats(min_value=1e-3, max_value=1e6),
)


def _constant_candles(level: float, volume: float, n: int) -> dict[str, np.ndarray]:
    column = np.full(n, level)
    return {
        "open": column,
        "high": column,
        "low": column,
        "close": column,
        "volume": np.full(n, volume),
    }


@PROPERTY_SETTINGS
@given(
    level=_LEVELS,
    volume=st.one_of(st.just(0.0), st.floats(min_value=0.0, max_value=1e6)),
    n=st.integers(min_value=0, max_value=MAX_BARS),
)
def test_constant_input_gives_the_documented_values_without_warnings(level, volume, n):
    data = _constant_candles(level, volume, n)
    expected_exact = {
        "rsi": (50.0,),
        "williams_r": (-50.0,),
        "stochastic": (50.0, 50.0),
        "kdj": (50.0, 50.0, 50.0),
        "atr": (0.0,),
        "adx": (0.0,),
        "obv": (volume,),
    }
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        for case in ALL_CASES:
            outputs = _after_warmup(case, case.run_batch(data))
            if case.name in expected_exact:
                for k, (out, value) in enumerate(
                    zip(outputs, expected_exact[case.name], strict=True)
                ):
                    assert np.all(out == value), f"{case.id} output {k}: {out[:3]!r} != {value}"
            elif case.name in ("sma", "ema"):
                # A mean of copies of `level` may round to a neighbouring double.
                np.testing.assert_allclose(outputs[0], level, rtol=1e-12, atol=0, err_msg=case.id)
            elif case.name == "bollinger":
                upper, middle, lower = outputs
                assert np.array_equal(upper, middle) and np.array_equal(lower, middle), case.id
                np.testing.assert_allclose(middle, level, rtol=1e-12, atol=0, err_msg=case.id)
            elif case.name in ("macd", "awesome_oscillator"):
                # Exactly 0 is checked below; here only that it is 0 up to rounding.
                for k, out in enumerate(outputs):
                    assert np.all(np.abs(out) <= 1e-12 * level), f"{case.id} output {k}"
            else:  # pragma: no cover - every case has an expectation
                pytest.fail(f"no constant-input expectation for {case.id}")


@PROPERTY_SETTINGS
@given(level=_LEVELS, n=st.integers(min_value=0, max_value=120))
def test_macd_on_constant_input_is_exactly_zero(level, n):
    column = np.full(n, level)
    for name, out in zip(("macd", "signal", "hist"), li.macd(column), strict=True):
        assert np.all(_valid(out) == 0.0), f"MACD {name} at {level!r}: {_valid(out)[:1]!r}"
    for name, out in zip(("macd", "signal", "hist"), li.macd(column, 2, 5, 3), strict=True):
        assert np.all(_valid(out) == 0.0), f"MACD(2,5,3) {name} at {level!r}: {_valid(out)[:1]!r}"


@PROPERTY_SETTINGS
@given(level=_LEVELS, n=st.integers(min_value=0, max_value=120))
def test_awesome_oscillator_on_constant_input_is_exactly_zero(level, n):
    column = np.full(n, level)
    for fast, slow in ((5, 34), (2, 5)):
        ao = li.awesome_oscillator(column, column, fast=fast, slow=slow)
        assert np.all(_valid(ao) == 0.0), f"AO({fast},{slow}) at {level!r}: {_valid(ao)[:1]!r}"


# --------------------------------------------------------------------------------------------
# Shapes: empty input, warm-up length
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ALL_CASES, ids=lambda c: c.id)
def test_empty_input_returns_empty_float64_arrays(case):
    empty = np.empty(0, dtype=np.float64)
    outputs = case.run_batch(dict.fromkeys(("open", "high", "low", "close", "volume"), empty))
    assert len(outputs) == case.n_out
    for out in outputs:
        assert isinstance(out, np.ndarray) and out.dtype == np.float64 and out.shape == (0,)


@pytest.mark.parametrize("case", ALL_CASES, ids=lambda c: c.id)
def test_output_has_input_length_and_nan_only_during_the_documented_warmup(case):
    @PROPERTY_SETTINGS
    @given(data=candle_arrays())
    def check(data):
        n = len(data["close"])
        for k, out in enumerate(case.run_batch(data)):
            assert out.shape == (n,), f"{case.id} output {k}"
            leading = min(case.warmup, n)
            assert np.all(np.isnan(out[:leading])), f"{case.id} output {k} in warm-up"
            assert not np.isnan(out[leading:]).any(), f"{case.id} output {k} after warm-up"

    check()


# --------------------------------------------------------------------------------------------
# Invalid parameters and inputs
# --------------------------------------------------------------------------------------------

_X = np.linspace(100.0, 110.0, 50)

INVALID_CALLS = {
    "sma period 0": lambda: li.sma(_X, 0),
    "sma period -3": lambda: li.sma(_X, -3),
    "ema period 0": lambda: li.ema(_X, 0),
    "ema period -1": lambda: li.ema(_X, -1),
    "rsi period 0": lambda: li.rsi(_X, 0),
    "rsi period -14": lambda: li.rsi(_X, -14),
    "macd fast == slow": lambda: li.macd(_X, fast=12, slow=12, signal=9),
    "macd fast > slow": lambda: li.macd(_X, fast=26, slow=12, signal=9),
    "macd fast 0": lambda: li.macd(_X, fast=0, slow=26, signal=9),
    "macd signal 0": lambda: li.macd(_X, fast=12, slow=26, signal=0),
    "macd signal -9": lambda: li.macd(_X, fast=12, slow=26, signal=-9),
    "bollinger period 0": lambda: li.bollinger(_X, period=0),
    "bollinger period -20": lambda: li.bollinger(_X, period=-20),
    "stochastic k_period 0": lambda: li.stochastic(_X, _X, _X, k_period=0),
    "stochastic k_smooth 0": lambda: li.stochastic(_X, _X, _X, k_smooth=0),
    "stochastic d_period -3": lambda: li.stochastic(_X, _X, _X, d_period=-3),
    "williams_r period 0": lambda: li.williams_r(_X, _X, _X, 0),
    "williams_r period -14": lambda: li.williams_r(_X, _X, _X, -14),
    "atr period 0": lambda: li.atr(_X, _X, _X, 0),
    "atr period -14": lambda: li.atr(_X, _X, _X, -14),
    "adx period 0": lambda: li.adx(_X, _X, _X, 0),
    "adx period -14": lambda: li.adx(_X, _X, _X, -14),
    "awesome_oscillator fast 0": lambda: li.awesome_oscillator(_X, _X, fast=0),
    "awesome_oscillator slow -34": lambda: li.awesome_oscillator(_X, _X, slow=-34),
    "kdj n 0": lambda: li.kdj(_X, _X, _X, n=0),
    "kdj m1 0": lambda: li.kdj(_X, _X, _X, m1=0),
    "kdj m2 -3": lambda: li.kdj(_X, _X, _X, m2=-3),
    "SMA(0)": lambda: li.SMA(0),
    "EMA(-1)": lambda: li.EMA(-1),
    "RSI(0)": lambda: li.RSI(period=0),
    "MACD(fast=slow)": lambda: li.MACD(fast=9, slow=9),
    "MACD(fast>slow)": lambda: li.MACD(fast=30, slow=26),
    "Bollinger(0)": lambda: li.Bollinger(period=0),
    "Stochastic(k_period=0)": lambda: li.Stochastic(k_period=0),
    "WilliamsR(-1)": lambda: li.WilliamsR(period=-1),
    "ATR(0)": lambda: li.ATR(period=0),
    "ADX(0)": lambda: li.ADX(period=0),
    "AwesomeOscillator(fast=0)": lambda: li.AwesomeOscillator(fast=0),
    "KDJ(n=0)": lambda: li.KDJ(n=0),
}


@pytest.mark.parametrize("call", INVALID_CALLS.values(), ids=INVALID_CALLS.keys())
def test_invalid_parameters_raise_value_error(call):
    with pytest.raises(ValueError):
        call()


@pytest.mark.parametrize("case", DEFAULT_CASES, ids=lambda c: c.id)
def test_batch_functions_accept_read_only_input_arrays(case):
    rng = np.random.default_rng(7)
    close = 100.0 + np.cumsum(rng.normal(0.0, 1.0, 200))
    data = {
        "open": close,
        "high": close + 1.0,
        "low": close - 1.0,
        "close": close,
        "volume": np.full(200, 3.0),
    }
    writable = case.run_batch({name: col.copy() for name, col in data.items()})
    for col in data.values():
        col.setflags(write=False)
    read_only = case.run_batch(data)
    for a, b in zip(read_only, writable, strict=True):
        assert np.array_equal(a, b, equal_nan=True), case.id


# --------------------------------------------------------------------------------------------
# Drift of the windowed running sums over a million updates
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_sma_and_bollinger_do_not_drift_over_one_million_streaming_updates():
    period = 20
    rng = np.random.default_rng(46_000)
    prices = (46_000.0 + np.cumsum(rng.normal(0.0, 2.0, 1_000_000))).tolist()
    sma = li.SMA(period)
    bands = li.Bollinger(period=period, k=2.0)
    sma_update, bands_update = sma.update, bands.update
    for price in prices[:-1]:
        sma_update(price)
        bands_update(price)
    last_sma = sma_update(prices[-1])
    upper, middle, lower = bands_update(prices[-1])

    window = prices[-period:]
    mean = math.fsum(window) / period
    std = math.sqrt(math.fsum((x - mean) ** 2 for x in window) / period)
    assert std > 0.1
    assert abs(last_sma - mean) / mean < 1e-12
    assert abs(middle - mean) / mean < 1e-12
    assert abs((upper - middle) / 2.0 - std) / std < 1e-9
    assert abs((middle - lower) / 2.0 - std) / std < 1e-9
