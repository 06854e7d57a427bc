"""Batch indicator functions: the streaming kernels run over whole arrays.

Each function validates its inputs once, allocates one state row and the output arrays,
and runs :func:`liveopt._core.indicators.run_1d_nb`, which calls the same per-bar update
as the streaming classes and the indicator bank. Outputs are float64 arrays of the input's
length with NaN during warm-up.
"""

from __future__ import annotations

import numpy as np

from liveopt._core import indicators as kernels
from liveopt.indicators.specs import IndicatorSpec, allocate, indicator


def as_series(name: str, values) -> np.ndarray:
    """Return ``values`` as a contiguous 1-D float64 array of finite numbers.

    Raises
    ------
    ValueError
        If the input is not 1-D or holds NaN or infinity (naming the first bad index).
    """
    array = np.ascontiguousarray(values, dtype=np.float64)
    if not array.flags.writeable:
        # The compiled signatures take mutable arrays; a read-only input (such as the
        # frozen columns of Candles) is copied rather than compiled for twice.
        array = array.copy()
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {array.shape}")
    finite = np.isfinite(array)
    if not finite.all():
        index = int(np.argmin(finite))
        raise ValueError(f"{name}[{index}] is not finite: {array[index]!r}")
    return array


def _inputs(**series) -> tuple[np.ndarray, ...]:
    arrays = {name: as_series(name, values) for name, values in series.items()}
    lengths = {name: len(array) for name, array in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"inputs must have equal lengths, got {lengths}")
    return tuple(arrays.values())


def run_spec(spec: IndicatorSpec, high, low, close, volume) -> tuple[np.ndarray, ...]:
    """Run one configuration over validated, equal-length float64 arrays."""
    layout = allocate([spec])
    n_out = len(spec.outputs)
    series = np.empty((n_out, len(close)))
    kernels.run_1d_nb(
        int(layout.kinds[0]), layout.params, layout.state, layout.ring, layout.out,
        high, low, close, volume, series,
    )
    return tuple(series[k] for k in range(n_out))


def _close_only(kind: str, close, **params) -> tuple[np.ndarray, ...]:
    spec = indicator(kind, **params)
    (c,) = _inputs(close=close)
    return run_spec(spec, c, c, c, c)


def _hlc(kind: str, high, low, close, **params) -> tuple[np.ndarray, ...]:
    spec = indicator(kind, **params)
    h, lo, c = _inputs(high=high, low=low, close=close)
    return run_spec(spec, h, lo, c, c)


def sma(close, period: int) -> np.ndarray:
    """Simple moving average of the last ``period`` closes (``talib.SMA``)."""
    return _close_only("sma", close, period=period)[0]


def ema(close, period: int) -> np.ndarray:
    """EMA with ``k = 2 / (period + 1)`` seeded with the first SMA (``talib.EMA``)."""
    return _close_only("ema", close, period=period)[0]


def rsi(close, period: int = 14) -> np.ndarray:
    """Wilder's relative strength index (``talib.RSI``); 50 on a flat window."""
    return _close_only("rsi", close, period=period)[0]


def macd(close, fast: int = 12, slow: int = 26, signal: int = 9):
    """MACD line, signal EMA and histogram (``talib.MACD``): ``(macd, signal, hist)``."""
    return _close_only("macd", close, fast=fast, slow=slow, signal=signal)


def bollinger(close, period: int = 20, k: float = 2.0):
    """Bollinger bands over an SMA with the population std: ``(upper, middle, lower)``."""
    return _close_only("bollinger", close, period=period, k=k)


def stochastic(high, low, close, k_period: int = 14, k_smooth: int = 3, d_period: int = 3):
    """Slow stochastic with SMA smoothing (``talib.STOCH``): ``(k, d)``.

    ``k_smooth=1`` gives the fast stochastic. A flat window gives %K = 50.
    """
    return _hlc(
        "stochastic", high, low, close, k_period=k_period, k_smooth=k_smooth, d_period=d_period
    )


def williams_r(high, low, close, period: int = 14) -> np.ndarray:
    """Williams %R in [-100, 0] (``talib.WILLR``); -50 on a flat window."""
    return _hlc("williams_r", high, low, close, period=period)[0]


def atr(high, low, close, period: int = 14) -> np.ndarray:
    """Wilder's average true range (``talib.ATR``)."""
    return _hlc("atr", high, low, close, period=period)[0]


def adx(high, low, close, period: int = 14) -> np.ndarray:
    """Wilder's average directional index (``talib.ADX``)."""
    return _hlc("adx", high, low, close, period=period)[0]


def obv(close, volume) -> np.ndarray:
    """On-balance volume, starting at the first bar's volume (``talib.OBV``)."""
    spec = indicator("obv")
    c, v = _inputs(close=close, volume=volume)
    return run_spec(spec, c, c, c, v)[0]


def obv_slope(close, volume, period: int = 14) -> np.ndarray:
    """OBV's change over ``period`` bars divided by their volume: in [-1, 1], 0 without
    volume; first value at index ``period``."""
    spec = indicator("obv_slope", period=period)
    c, v = _inputs(close=close, volume=volume)
    return run_spec(spec, c, c, c, v)[0]


def awesome_oscillator(high, low, fast: int = 5, slow: int = 34) -> np.ndarray:
    """SMA(fast) minus SMA(slow) of the median price ``(high + low) / 2``."""
    spec = indicator("awesome_oscillator", fast=fast, slow=slow)
    h, lo = _inputs(high=high, low=low)
    return run_spec(spec, h, lo, h, h)[0]


def kdj(high, low, close, n: int = 9, m1: int = 3, m2: int = 3):
    """KDJ: ``(k, d, j)`` with K and D smoothed from 50 and J = 3K - 2D."""
    return _hlc("kdj", high, low, close, n=n, m1=m1, m2=m2)
