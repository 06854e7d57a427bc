"""Indicator kinds and configurations: parameter names, validation and kernel layout.

This is the boundary for the indicator kernels: every parameter is checked here, once,
and turned into the float64 ``params`` row the kernels read (including derived constants
such as an EMA's smoothing factor).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import msgspec
import numpy as np

from liveopt._core import indicators as kernels
from liveopt.timeframes import canonical_timeframe


class KindInfo(NamedTuple):
    """What the engine needs to know about one indicator kind."""

    code: int
    name: str
    param_names: tuple[str, ...]
    defaults: tuple[float, ...]
    outputs: tuple[str, ...]
    # Builds the kernel's params row from validated parameters (derived constants added).
    layout: Callable[[tuple[float, ...]], tuple[float, ...]]
    check: Callable[[dict[str, float]], None]


def _ema_k(period: float) -> float:
    # TA-Lib's smoothing factor for a period: 2 / (period + 1).
    return 2.0 / (period + 1.0)


def _require_int(name: str, value: float, minimum: int) -> None:
    if not float(value).is_integer() or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value:g}")


def _periods(*names: str, minimum: int = 1) -> Callable[[dict[str, float]], None]:
    def check(params: dict[str, float]) -> None:
        for name in names:
            _require_int(name, params[name], minimum)

    return check


def _check_macd(params: dict[str, float]) -> None:
    _periods("fast", "slow", "signal")(params)
    if params["fast"] >= params["slow"]:
        raise ValueError(
            f"fast must be shorter than slow, got fast={params['fast']:g} slow={params['slow']:g}"
        )


def _check_bollinger(params: dict[str, float]) -> None:
    _require_int("period", params["period"], 1)
    if not (math.isfinite(params["k"]) and params["k"] >= 0.0):
        raise ValueError(f"k must be a finite number >= 0, got {params['k']:g}")


def _identity(values: tuple[float, ...]) -> tuple[float, ...]:
    return values


def _with_reciprocal(values: tuple[float, ...]) -> tuple[float, ...]:
    # [period, 1/period]: kernels multiply instead of dividing on every bar.
    return (values[0], 1.0 / values[0])


def _wilder(values: tuple[float, ...]) -> tuple[float, ...]:
    # [period, 1/period, period - 1] for Wilder's smoothing (avg * (p-1) + x) / p.
    return (values[0], 1.0 / values[0], values[0] - 1.0)


def _check_ao(params: dict[str, float]) -> None:
    _periods("fast", "slow")(params)
    if params["fast"] >= params["slow"]:
        raise ValueError(
            f"fast must be shorter than slow, got fast={params['fast']:g} slow={params['slow']:g}"
        )


KINDS: dict[str, KindInfo] = {
    info.name: info
    for info in (
        KindInfo(
            kernels.SMA, "sma", ("period",), (20,), ("sma",), _with_reciprocal,
            _periods("period"),
        ),
        KindInfo(
            kernels.EMA, "ema", ("period",), (20,), ("ema",),
            lambda p: (p[0], _ema_k(p[0])), _periods("period"),
        ),
        KindInfo(kernels.RSI, "rsi", ("period",), (14,), ("rsi",), _wilder, _periods("period")),
        KindInfo(
            kernels.MACD, "macd", ("fast", "slow", "signal"), (12, 26, 9),
            ("macd", "signal", "hist"),
            lambda p: (*p, _ema_k(p[0]), _ema_k(p[1]), _ema_k(p[2])), _check_macd,
        ),
        KindInfo(
            kernels.BBANDS, "bollinger", ("period", "k"), (20, 2.0),
            ("upper", "middle", "lower"), lambda p: (p[0], p[1], 1.0 / p[0]), _check_bollinger,
        ),
        KindInfo(
            kernels.STOCH, "stochastic", ("k_period", "k_smooth", "d_period"), (14, 3, 3),
            ("k", "d"), lambda p: (*p, 1.0 / p[1], 1.0 / p[2]),
            _periods("k_period", "k_smooth", "d_period"),
        ),
        KindInfo(
            kernels.WILLR, "williams_r", ("period",), (14,), ("williams_r",), _identity,
            _periods("period"),
        ),
        KindInfo(kernels.ATR, "atr", ("period",), (14,), ("atr",), _wilder, _periods("period")),
        KindInfo(kernels.ADX, "adx", ("period",), (14,), ("adx",), _wilder, _periods("period")),
        KindInfo(kernels.OBV, "obv", (), (), ("obv",), _identity, lambda params: None),
        KindInfo(
            kernels.AO, "awesome_oscillator", ("fast", "slow"), (5, 34), ("ao",),
            lambda p: (*p, 1.0 / p[0], 1.0 / p[1]), _check_ao,
        ),
        KindInfo(
            kernels.KDJ, "kdj", ("n", "m1", "m2"), (9, 3, 3), ("k", "d", "j"),
            lambda p: (*p, 1.0 / p[1], 1.0 / p[2]), _periods("n", "m1", "m2"),
        ),
        KindInfo(
            kernels.OBV_SLOPE, "obv_slope", ("period",), (14,), ("obv_slope",), _identity,
            _periods("period"),
        ),
    )
}


class IndicatorSpec(msgspec.Struct, frozen=True, kw_only=True):
    """One indicator configuration: kind, parameters (in ``KindInfo.param_names`` order)
    and the timeframe whose closed candles drive it. Hashable, so specs deduplicate.

    :func:`indicator` builds one from keyword parameters and accepts timeframe aliases;
    a spec built directly is validated just the same, because its parameters size the
    kernel's ring buffers (a zero period would make the kernel write out of bounds).

    Raises
    ------
    ValueError
        On an unknown kind, a wrong number of parameters, an out-of-range value or a
        timeframe that is not a canonical name (``"5m"``, not ``"5min"``).
    """

    kind: str
    params: tuple[float, ...]
    timeframe: str = "1m"

    def __post_init__(self) -> None:
        info = KINDS.get(self.kind)
        if info is None:
            raise ValueError(f"unknown indicator kind {self.kind!r}; known: {', '.join(KINDS)}")
        if len(self.params) != len(info.param_names):
            raise ValueError(
                f"{self.kind}: expected {len(info.param_names)} parameters "
                f"{list(info.param_names)}, got {self.params!r}"
            )
        info.check(dict(zip(info.param_names, self.params, strict=True)))
        if canonical_timeframe(self.timeframe) != self.timeframe:
            raise ValueError(
                f"timeframe {self.timeframe!r} must be given by its canonical name "
                f"{canonical_timeframe(self.timeframe)!r}"
            )

    @property
    def info(self) -> KindInfo:
        return KINDS[self.kind]

    @property
    def outputs(self) -> tuple[str, ...]:
        return KINDS[self.kind].outputs

    def label(self) -> str:
        args = ",".join(f"{p:g}" for p in self.params)
        return f"{self.kind}({args})@{self.timeframe}"


def indicator(kind: str, timeframe: str = "1m", **params: float) -> IndicatorSpec:
    """Return a validated :class:`IndicatorSpec`, for example
    ``indicator("macd", fast=12, slow=26, signal=9, timeframe="5m")``.

    Missing parameters take the kind's defaults.

    Raises
    ------
    ValueError
        On an unknown kind, timeframe or parameter name, or an out-of-range value.
    """
    info = KINDS.get(kind)
    if info is None:
        raise ValueError(f"unknown indicator kind {kind!r}; known: {', '.join(KINDS)}")
    unknown = set(params) - set(info.param_names)
    if unknown:
        raise ValueError(
            f"{kind}: unknown parameter(s) {sorted(unknown)}; expected {list(info.param_names)}"
        )
    values = dict(zip(info.param_names, info.defaults, strict=True))
    for name, value in params.items():
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise ValueError(f"{kind}: {name} must be a number, got {value!r}")
        values[name] = float(value)
    return IndicatorSpec(
        kind=kind,
        params=tuple(float(values[name]) for name in info.param_names),
        timeframe=canonical_timeframe(timeframe),
    )


#: The indicator configurations the signal model reads (docs/signal-model.md), in the
#: order of ``liveopt._core.variant_pass``'s ``R_*`` rows; the engine computes them once per
#: timeframe in use.
SIGNAL_INDICATORS: tuple[IndicatorSpec, ...] = (
    indicator("rsi", period=14),
    indicator("williams_r", period=14),
    indicator("macd", fast=12, slow=26, signal=9),
    indicator("awesome_oscillator", fast=5, slow=34),
    indicator("ema", period=50),
    indicator("ema", period=200),
    indicator("stochastic", k_period=14, k_smooth=3, d_period=3),
    indicator("bollinger", period=20, k=2.0),
    indicator("kdj", n=9, m1=3, m2=3),
    indicator("obv_slope", period=14),
)

#: The twelve default indicators with the origin system's periods (what ``liveopt
#: indicators`` shows): the signal model's first nine, then OBV, ATR and ADX.
DEFAULT_INDICATORS: tuple[IndicatorSpec, ...] = (
    *SIGNAL_INDICATORS[:-1],
    indicator("obv"),
    indicator("atr", period=14),
    indicator("adx", period=14),
)


class KernelLayout(NamedTuple):
    """Arrays for a set of indicator rows, in the layout ``liveopt._core.indicators`` reads."""

    kinds: np.ndarray  # int64[n]
    params: np.ndarray  # float64[n, N_PARAMS]
    state: np.ndarray  # float64[n, STATE_LEN]
    ring: np.ndarray  # float64[total ring slots]
    ring_base: np.ndarray  # int64[n]
    out: np.ndarray  # float64[n, N_OUT]


def allocate(specs: list[IndicatorSpec] | tuple[IndicatorSpec, ...]) -> KernelLayout:
    """Allocate zeroed kernel state for ``specs`` (one row each, in the given order)."""
    n = len(specs)
    kinds = np.empty(n, dtype=np.int64)
    params = np.zeros((n, kernels.N_PARAMS))
    ring_base = np.zeros(n, dtype=np.int64)
    total = 0
    for row, spec in enumerate(specs):
        info = spec.info
        kinds[row] = info.code
        layout = info.layout(spec.params)
        params[row, : len(layout)] = layout
        ring_base[row] = total
        total += kernels.ring_size(info.code, layout)
    out = np.full((n, kernels.N_OUT), np.nan)
    return KernelLayout(
        kinds=kinds,
        params=params,
        state=np.zeros((n, kernels.STATE_LEN)),
        ring=np.zeros(max(total, 1)),
        ring_base=ring_base,
        out=out,
    )
