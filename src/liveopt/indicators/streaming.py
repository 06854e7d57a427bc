"""Streaming indicators: one bar in, the latest value(s) out, O(1) work per update.

Each class owns one state row of the kernel layout and calls the same per-bar update as
the batch functions, so feeding bars one at a time gives bit-identical results to the
batch call. Each ``update`` is one compiled call (a few hundred nanoseconds, mostly
Numba's dispatch); to update many indicators per candle use
:class:`liveopt.indicators.IndicatorBank`, which does them all in one call.
"""

from __future__ import annotations

import math

from liveopt._core import indicators as kernels
from liveopt.indicators.specs import IndicatorSpec, allocate, indicator


class StreamingIndicator:
    """Base class: holds one configuration's kernel state and advances it bar by bar."""

    kind: str = ""
    #: Names of the scalar inputs ``update`` takes, in order.
    inputs: tuple[str, ...] = ("close",)

    def __init__(self, **params: float) -> None:
        self.spec: IndicatorSpec = indicator(self.kind, **params)
        self.reset()

    def reset(self) -> None:
        """Forget every bar seen so far."""
        self._layout = allocate([self.spec])
        self._code = int(self._layout.kinds[0])
        self.count = 0

    @property
    def initialized(self) -> bool:
        """True once the warm-up is over and outputs are numbers."""
        return not math.isnan(self._layout.out[0, 0])

    def _check(self, *values: float) -> None:
        # The boundary of the streaming API: a NaN would stay in the running state for good.
        for name, value in zip(self.inputs, values, strict=True):
            if not math.isfinite(value):
                raise ValueError(f"{type(self).__name__}.update: {name} is not finite: {value!r}")

    def _advance(self, high: float, low: float, close: float, volume: float) -> None:
        layout = self._layout
        kernels.update_row_nb(
            self._code, layout.params, layout.state, layout.ring, 0, layout.out, 0,
            float(high), float(low), float(close), float(volume),
        )
        self.count += 1

    def _value(self):
        out = self._layout.out
        n_out = len(self.spec.outputs)
        if n_out == 1:
            return float(out[0, 0])
        return tuple(float(out[0, k]) for k in range(n_out))

    @property
    def value(self):
        """The latest output (a float, or a tuple for multi-output indicators)."""
        return self._value()


class _CloseIndicator(StreamingIndicator):
    def update(self, close: float):
        """Add one close; return the latest value (NaN during warm-up)."""
        self._check(close)
        self._advance(close, close, close, close)
        return self._value()


class _HLCIndicator(StreamingIndicator):
    inputs = ("high", "low", "close")

    def update(self, high: float, low: float, close: float):
        """Add one bar; return the latest value(s) (NaN during warm-up)."""
        self._check(high, low, close)
        self._advance(high, low, close, close)
        return self._value()


class _CloseVolumeIndicator(StreamingIndicator):
    inputs = ("close", "volume")

    def update(self, close: float, volume: float) -> float:
        """Add one bar's close and volume; return the latest value (NaN during warm-up)."""
        self._check(close, volume)
        self._advance(close, close, close, volume)
        return self._value()


class SMA(_CloseIndicator):
    """Streaming :func:`liveopt.indicators.sma`."""

    kind = "sma"

    def __init__(self, period: int) -> None:
        super().__init__(period=period)


class EMA(_CloseIndicator):
    """Streaming :func:`liveopt.indicators.ema`."""

    kind = "ema"

    def __init__(self, period: int) -> None:
        super().__init__(period=period)


class RSI(_CloseIndicator):
    """Streaming :func:`liveopt.indicators.rsi`."""

    kind = "rsi"

    def __init__(self, period: int = 14) -> None:
        super().__init__(period=period)


class MACD(_CloseIndicator):
    """Streaming :func:`liveopt.indicators.macd`; ``update`` returns (macd, signal, hist)."""

    kind = "macd"

    def __init__(self, fast: int = 12, slow: int = 26, signal: int = 9) -> None:
        super().__init__(fast=fast, slow=slow, signal=signal)


class Bollinger(_CloseIndicator):
    """Streaming :func:`liveopt.indicators.bollinger`; returns (upper, middle, lower)."""

    kind = "bollinger"

    def __init__(self, period: int = 20, k: float = 2.0) -> None:
        super().__init__(period=period, k=k)


class Stochastic(_HLCIndicator):
    """Streaming :func:`liveopt.indicators.stochastic`; returns (k, d)."""

    kind = "stochastic"

    def __init__(self, k_period: int = 14, k_smooth: int = 3, d_period: int = 3) -> None:
        super().__init__(k_period=k_period, k_smooth=k_smooth, d_period=d_period)


class WilliamsR(_HLCIndicator):
    """Streaming :func:`liveopt.indicators.williams_r`."""

    kind = "williams_r"

    def __init__(self, period: int = 14) -> None:
        super().__init__(period=period)


class ATR(_HLCIndicator):
    """Streaming :func:`liveopt.indicators.atr`."""

    kind = "atr"

    def __init__(self, period: int = 14) -> None:
        super().__init__(period=period)


class ADX(_HLCIndicator):
    """Streaming :func:`liveopt.indicators.adx`."""

    kind = "adx"

    def __init__(self, period: int = 14) -> None:
        super().__init__(period=period)


class KDJ(_HLCIndicator):
    """Streaming :func:`liveopt.indicators.kdj`; returns (k, d, j)."""

    kind = "kdj"

    def __init__(self, n: int = 9, m1: int = 3, m2: int = 3) -> None:
        super().__init__(n=n, m1=m1, m2=m2)


class OBV(_CloseVolumeIndicator):
    """Streaming :func:`liveopt.indicators.obv`."""

    kind = "obv"

    def __init__(self) -> None:
        super().__init__()


class OBVSlope(_CloseVolumeIndicator):
    """Streaming :func:`liveopt.indicators.obv_slope`."""

    kind = "obv_slope"

    def __init__(self, period: int = 14) -> None:
        super().__init__(period=period)


class AwesomeOscillator(StreamingIndicator):
    """Streaming :func:`liveopt.indicators.awesome_oscillator`."""

    kind = "awesome_oscillator"
    inputs = ("high", "low")

    def __init__(self, fast: int = 5, slow: int = 34) -> None:
        super().__init__(fast=fast, slow=slow)

    def update(self, high: float, low: float) -> float:
        """Add one bar's high and low; return the latest value (NaN during warm-up)."""
        self._check(high, low)
        self._advance(high, low, high, high)
        return self._value()
