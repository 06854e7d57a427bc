"""The compiled indicators against their slow pure-Python twins, and streaming against batch.

Every batch function in ``liveopt.indicators`` must equal its twin in
``tests.reference.indicators`` to 1e-12 relative, with NaN at exactly the same positions, on
real candles and on synthetic candles with flat stretches. Feeding the same bars one at a time
to the streaming class must reproduce the batch output bit for bit.

Both data sets keep every price on a binary grid (FTX prices are whole dollars, the synthetic
ones multiples of 0.5), so window sums of prices are exact whatever summation order an
implementation uses; the 1e-12 tolerance then only absorbs the last-ulp differences of the
divisions and square roots. FTX volumes are not on a grid: the OBV twin keeps an exact total,
so an OBV that accumulates rounding error in a plain float sum would show up here.

The EMA seeds are running means in the kernel (exact on constant input) and exact sums in the
twin, so the EMAs may differ in their last ulp, and the kernels multiply by precomputed
reciprocals where the twins divide. Outputs that are differences of two larger quantities
carry an absolute rounding floor of a few ulps of those quantities, so they are compared with
an absolute tolerance of ``DIFFERENCE_ULPS`` ulps of that scale on top of the relative one:
MACD (two price-level EMAs) and the awesome oscillator (two price-level means) at the scale of
the largest price, KDJ (J = 3K - 2D, with K and D in [0, 100]) at the scale of 100.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest

import liveopt.indicators as li
from tests.conftest import candles
from tests.reference import indicators as ref

TWIN_RTOL = 1e-12
#: Absolute tolerance, in ulps of the operands' scale, for outputs that are differences of
#: two larger quantities (see the module docstring).
DIFFERENCE_ULPS = 8


@dataclass(frozen=True)
class Case:
    """One indicator configuration: how to call it in batch, twin and streaming form."""

    name: str
    batch: Callable
    twin: Callable
    stream: type
    inputs: tuple[str, ...]
    params: dict = field(default_factory=dict)
    warmup: int = 0

    @property
    def id(self) -> str:
        args = ",".join(f"{v}" for v in self.params.values())
        return f"{self.name}({args})"

    def run_batch(self, data: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
        return as_tuple(self.batch(*(data[c] for c in self.inputs), **self.params))

    def run_twin(self, data: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
        out = self.twin(*(data[c].tolist() for c in self.inputs), **self.params)
        return tuple(np.asarray(x, dtype=np.float64) for x in as_tuple(out))

    @property
    def n_out(self) -> int:
        return N_OUTPUTS.get(self.name, 1)

    def run_streaming(self, data: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
        indicator = self.stream(**self.params)
        columns = [data[c].tolist() for c in self.inputs]
        rows = [as_tuple(indicator.update(*bar)) for bar in zip(*columns, strict=True)]
        assert all(len(row) == self.n_out for row in rows), self.id
        table = np.array(rows, dtype=np.float64).reshape(len(rows), self.n_out)
        return tuple(np.ascontiguousarray(table[:, k]) for k in range(self.n_out))


N_OUTPUTS = {"macd": 3, "bollinger": 3, "stochastic": 2, "kdj": 3}


def as_tuple(value) -> tuple:
    return value if isinstance(value, tuple) else (value,)


CLOSE = ("close",)
HLC = ("high", "low", "close")


def _case(name, stream, inputs, warmup, **params) -> Case:
    return Case(
        name=name,
        batch=getattr(li, name),
        twin=getattr(ref, name),
        stream=stream,
        inputs=inputs,
        params=params,
        warmup=warmup,
    )


def sma_case(period):
    return _case("sma", li.SMA, CLOSE, period - 1, period=period)


def ema_case(period):
    return _case("ema", li.EMA, CLOSE, period - 1, period=period)


def rsi_case(period=14):
    return _case("rsi", li.RSI, CLOSE, period, period=period)


def macd_case(fast=12, slow=26, signal=9):
    return _case("macd", li.MACD, CLOSE, slow + signal - 2, fast=fast, slow=slow, signal=signal)


def bollinger_case(period=20, k=2.0):
    return _case("bollinger", li.Bollinger, CLOSE, period - 1, period=period, k=k)


def stochastic_case(k_period=14, k_smooth=3, d_period=3):
    warmup = (k_period - 1) + (k_smooth - 1) + (d_period - 1)
    return _case(
        "stochastic",
        li.Stochastic,
        HLC,
        warmup,
        k_period=k_period,
        k_smooth=k_smooth,
        d_period=d_period,
    )


def williams_r_case(period=14):
    return _case("williams_r", li.WilliamsR, HLC, period - 1, period=period)


def atr_case(period=14):
    return _case("atr", li.ATR, HLC, period, period=period)


def adx_case(period=14):
    return _case("adx", li.ADX, HLC, 2 * period - 1, period=period)


def obv_case():
    return _case("obv", li.OBV, ("close", "volume"), 0)


def awesome_oscillator_case(fast=5, slow=34):
    return _case(
        "awesome_oscillator",
        li.AwesomeOscillator,
        ("high", "low"),
        slow - 1,
        fast=fast,
        slow=slow,
    )


def kdj_case(n=9, m1=3, m2=3):
    return _case("kdj", li.KDJ, HLC, n - 1, n=n, m1=m1, m2=m2)


#: One configuration of each of the 12 indicators with the documented default parameters.
DEFAULT_CASES = [
    sma_case(20),
    ema_case(20),
    rsi_case(),
    macd_case(),
    bollinger_case(),
    stochastic_case(),
    williams_r_case(),
    atr_case(),
    adx_case(),
    obv_case(),
    awesome_oscillator_case(),
    kdj_case(),
]

#: Short periods, so that series of a few dozen bars already leave the warm-up.
SHORT_CASES = [
    sma_case(2),
    ema_case(2),
    rsi_case(2),
    macd_case(2, 5, 3),
    bollinger_case(3, 1.5),
    stochastic_case(3, 1, 1),
    stochastic_case(4, 2, 3),
    williams_r_case(3),
    atr_case(1),
    atr_case(3),
    adx_case(2),
    obv_case(),
    awesome_oscillator_case(2, 5),
    kdj_case(3, 2, 4),
]

TWIN_CASES = [
    *DEFAULT_CASES,
    sma_case(200),
    ema_case(2),
    ema_case(50),
    rsi_case(2),
    macd_case(5, 35, 5),
    bollinger_case(10, 1.5),
    stochastic_case(5, 1, 3),
    stochastic_case(9, 3, 1),
    williams_r_case(5),
    atr_case(5),
    adx_case(5),
    adx_case(28),
    awesome_oscillator_case(3, 10),
    kdj_case(5, 1, 1),
]


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


def synthetic_candles(n: int = 3000, seed: int = 20220101) -> dict[str, np.ndarray]:
    """A seeded random walk on a 0.5 grid with flat stretches of several lengths.

    The series opens with a 60-bar flat stretch (so RSI, ADX and the range oscillators start
    on their documented flat values) and holds flat stretches of 2..300 bars later on, long
    enough to flatten every window used here (SMA 200 included). Flat bars have
    open = high = low = close and zero volume.
    """
    rng = np.random.default_rng(seed)
    close = 20_000.0 + 0.5 * np.cumsum(rng.integers(-40, 41, n))
    open_ = np.concatenate(([close[0]], close[:-1]))
    high = np.maximum(open_, close) + 0.5 * rng.integers(0, 12, n)
    low = np.minimum(open_, close) - 0.5 * rng.integers(0, 12, n)
    volume = 0.25 * rng.integers(1, 40_000, n)
    flat_stretches = [(0, 60), (200, 2), (260, 9), (400, 15), (700, 40), (1000, 300), (1900, 35)]
    for start, length in flat_stretches:
        level = close[start - 1] if start else close[0]
        end = start + length
        open_[start:end] = high[start:end] = low[start:end] = close[start:end] = level
        volume[start:end] = 0.0
    # Flat closes inside normal-ranged bars: RSI and OBV see no change, the ranges do.
    close[1500:1530] = close[1499]
    high[1500:1530] = np.maximum(high[1500:1530], close[1499])
    low[1500:1530] = np.minimum(low[1500:1530], close[1499])
    assert np.all(low <= np.minimum(open_, close)) and np.all(high >= np.maximum(open_, close))
    return {"open": open_, "high": high, "low": low, "close": close, "volume": volume}


FTX_SLICE = 5000


@pytest.fixture(scope="module", params=["ftx_btcperp_1m[:5000]", "synthetic_flat_stretches"])
def twin_data(request) -> dict[str, np.ndarray]:
    if request.param == "synthetic_flat_stretches":
        return synthetic_candles()
    data = candles("ftx_btcperp_1m")
    return {name: np.ascontiguousarray(col[:FTX_SLICE]) for name, col in data.items()}


# --------------------------------------------------------------------------------------------
# Assertions
# --------------------------------------------------------------------------------------------


def assert_matches_twin(ours: np.ndarray, twin: np.ndarray, label: str, atol: float = 0.0) -> None:
    assert ours.dtype == np.float64, label
    assert ours.shape == twin.shape, label
    nan_ours = np.isnan(ours)
    nan_twin = np.isnan(twin)
    mismatch = np.flatnonzero(nan_ours != nan_twin)
    assert mismatch.size == 0, (
        f"{label}: NaN positions differ, first at index {mismatch[0]}: "
        f"ours={ours[mismatch[0]]!r} twin={twin[mismatch[0]]!r}"
    )
    np.testing.assert_allclose(
        ours[~nan_twin], twin[~nan_twin], rtol=TWIN_RTOL, atol=atol, err_msg=label
    )


def assert_bit_identical(streamed: np.ndarray, batch: np.ndarray, label: str) -> None:
    assert streamed.shape == batch.shape, label
    if not np.array_equal(streamed, batch, equal_nan=True):
        differ = ~((streamed == batch) | (np.isnan(streamed) & np.isnan(batch)))
        i = int(np.flatnonzero(differ)[0])
        pytest.fail(
            f"{label}: streaming differs from batch at {int(differ.sum())} indices, first "
            f"{i}: streaming={streamed[i]!r} batch={batch[i]!r}"
        )


# --------------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------------


def test_synthetic_candles_hold_the_flat_stretches_they_promise():
    data = synthetic_candles()
    flat = (data["high"] == data["low"]) & (data["volume"] == 0.0)
    assert flat[:60].all() and flat[1000:1300].all()
    assert not flat[1300]


@pytest.mark.parametrize("case", TWIN_CASES, ids=lambda c: c.id)
def test_batch_indicator_equals_its_pure_python_twin(case, twin_data):
    ours = case.run_batch(twin_data)
    twin = case.run_twin(twin_data)
    atol = 0.0
    if case.name in ("macd", "awesome_oscillator"):
        price_scale = max(np.max(np.abs(twin_data[name])) for name in ("high", "close"))
        atol = DIFFERENCE_ULPS * float(np.spacing(price_scale))
    elif case.name == "kdj":
        atol = DIFFERENCE_ULPS * float(np.spacing(100.0))
    assert len(ours) == len(twin)
    for k, (o, t) in enumerate(zip(ours, twin, strict=True)):
        assert_matches_twin(o, t, f"{case.id} output {k}", atol=atol)


@pytest.mark.parametrize("case", TWIN_CASES, ids=lambda c: c.id)
def test_batch_indicator_starts_at_the_documented_warmup_index(case, twin_data):
    for k, out in enumerate(case.run_batch(twin_data)):
        valid = np.flatnonzero(~np.isnan(out))
        assert valid.size, f"{case.id} output {k} is all NaN"
        assert valid[0] == case.warmup, f"{case.id} output {k}"
        assert valid.size == out.size - case.warmup, f"{case.id} output {k} has NaN after warm-up"


@pytest.mark.parametrize("case", TWIN_CASES, ids=lambda c: c.id)
def test_streaming_one_bar_at_a_time_is_bit_identical_to_batch(case, twin_data):
    batch = case.run_batch(twin_data)
    streamed = case.run_streaming(twin_data)
    assert len(streamed) == len(batch)
    for k, (s, b) in enumerate(zip(streamed, batch, strict=True)):
        assert_bit_identical(s, b, f"{case.id} output {k}")


def test_twins_cover_all_twelve_indicators():
    names = {case.name for case in TWIN_CASES}
    assert names == {
        "sma",
        "ema",
        "rsi",
        "macd",
        "bollinger",
        "stochastic",
        "williams_r",
        "atr",
        "adx",
        "obv",
        "awesome_oscillator",
        "kdj",
    }
