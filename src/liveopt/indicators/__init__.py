"""Streaming technical indicators, their batch form, and the indicator bank.

Batch functions take float64 arrays and return arrays of the same length with NaN during
warm-up; streaming classes take one bar per ``update``; both run the same compiled kernel
(``liveopt._core.indicators``), so they agree bit for bit. Every indicator TA-Lib has
matches TA-Lib to 1e-9 relative on real data, except where documented in
``docs/indicators.md``: the values on perfectly flat windows (neutral instead of TA-Lib's
0), and MACD within about 1e-4 of zero, where both sides carry an absolute rounding floor
of a few ulps of the price.
"""

from liveopt.indicators.bank import IndicatorBank
from liveopt.indicators.batch import (
    adx,
    atr,
    awesome_oscillator,
    bollinger,
    ema,
    kdj,
    macd,
    obv,
    obv_slope,
    rsi,
    sma,
    stochastic,
    williams_r,
)
from liveopt.indicators.specs import DEFAULT_INDICATORS, KINDS, IndicatorSpec, indicator
from liveopt.indicators.streaming import (
    ADX,
    ATR,
    EMA,
    KDJ,
    MACD,
    OBV,
    RSI,
    SMA,
    AwesomeOscillator,
    Bollinger,
    OBVSlope,
    Stochastic,
    StreamingIndicator,
    WilliamsR,
)

__all__ = [
    "ADX",
    "ATR",
    "DEFAULT_INDICATORS",
    "EMA",
    "KDJ",
    "KINDS",
    "MACD",
    "OBV",
    "RSI",
    "SMA",
    "AwesomeOscillator",
    "Bollinger",
    "IndicatorBank",
    "IndicatorSpec",
    "OBVSlope",
    "Stochastic",
    "StreamingIndicator",
    "WilliamsR",
    "adx",
    "atr",
    "awesome_oscillator",
    "bollinger",
    "ema",
    "indicator",
    "kdj",
    "macd",
    "obv",
    "obv_slope",
    "rsi",
    "sma",
    "stochastic",
    "williams_r",
]
